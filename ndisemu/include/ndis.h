/*
 * ndis.h - ndisemu's WDK-compatible <ndis.h> for driver code run on
 * emulated NET_BUFFER_LISTs (see ndisemu.driver.build and `ndisemu include`).
 *
 * It gives driver sources, under the WDK's names:
 *   - the Windows integer and pointer types (ULONG is 32 bits, as on Windows);
 *   - the NBL, NB, MDL and context structs, as the driver view of the NDIS
 *     version the WDK's selection macros pick (NDIS630, NDIS684_MINIPORT, ...;
 *     the newest, 6.87, when none is defined), declared once in cdefs/;
 *   - every constant with the WDK's spelling and type;
 *   - the accessor macros as the WDK writes them (lvalues);
 *   - the MDL macros, the memory and byte-order helpers, Interlocked*,
 *     NT_SUCCESS, ASSERT/NT_ASSERT, IRQL and spin locks;
 *   - every NDIS/Io/Mm/Ex call ndisemu emulates, with its WDK signature.
 * FWPS calls are in <fwpsk.h>.
 *
 * What does not carry over from a Windows build: `long` stays 64 bits on the
 * host, so code must use the Windows typedefs (ULONG, LONG), as drivers do;
 * there is no structured exception handling (__try/__except); MSVC's tagged
 * anonymous structs need -fms-extensions (the build helper passes it).
 */
#ifndef NDISEMU_DRIVER_NDIS_H
#define NDISEMU_DRIVER_NDIS_H

#define NDISEMU_DRIVER 1
#define NDISEMU_ABI_X64 1

/* The NDIS view: ndis/version.h's selection macros, newest first.  The glue
 * ndisemu generates for a driver module (NDISEMU_RUNTIME_VIEW) sees what
 * memory holds, ndis.sys's own view; a driver sees a prefix of it. */
#ifndef NDISEMU_NDIS_VERSION
#if defined(NDISEMU_RUNTIME_VIEW)
#define NDISEMU_NDIS_VERSION 687
#define NDIS_WRAPPER 1
#elif defined(NDIS687) || defined(NDIS687_MINIPORT)
#define NDISEMU_NDIS_VERSION 687
#elif defined(NDIS686) || defined(NDIS686_MINIPORT)
#define NDISEMU_NDIS_VERSION 686
#elif defined(NDIS685) || defined(NDIS685_MINIPORT)
#define NDISEMU_NDIS_VERSION 685
#elif defined(NDIS684) || defined(NDIS684_MINIPORT)
#define NDISEMU_NDIS_VERSION 684
#elif defined(NDIS683) || defined(NDIS683_MINIPORT)
#define NDISEMU_NDIS_VERSION 683
#elif defined(NDIS682) || defined(NDIS682_MINIPORT)
#define NDISEMU_NDIS_VERSION 682
#elif defined(NDIS681) || defined(NDIS681_MINIPORT)
#define NDISEMU_NDIS_VERSION 681
#elif defined(NDIS680) || defined(NDIS680_MINIPORT)
#define NDISEMU_NDIS_VERSION 680
#elif defined(NDIS670) || defined(NDIS670_MINIPORT)
#define NDISEMU_NDIS_VERSION 670
#elif defined(NDIS660) || defined(NDIS660_MINIPORT)
#define NDISEMU_NDIS_VERSION 660
#elif defined(NDIS650) || defined(NDIS650_MINIPORT)
#define NDISEMU_NDIS_VERSION 650
#elif defined(NDIS640) || defined(NDIS640_MINIPORT)
#define NDISEMU_NDIS_VERSION 640
#elif defined(NDIS630) || defined(NDIS630_MINIPORT)
#define NDISEMU_NDIS_VERSION 630
#elif defined(NDIS620) || defined(NDIS620_MINIPORT)
#define NDISEMU_NDIS_VERSION 620
#elif defined(NDIS61) || defined(NDIS61_MINIPORT)
#define NDISEMU_NDIS_VERSION 601
#elif defined(NDIS60) || defined(NDIS60_MINIPORT)
#define NDISEMU_NDIS_VERSION 600
#else
#define NDISEMU_NDIS_VERSION 687
#endif
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "sal.h"
#include "ndisemu_api.h"

/* ---- language ------------------------------------------------------------ */

#ifndef NULL
#define NULL ((void *)0)
#endif
#define TRUE 1
#define FALSE 0
#define IN
#define OUT
#define OPTIONAL
#define CONST const
#define NTAPI
#define NTSYSAPI
#define NTKERNELAPI
#define NDIS_EXPORTED_ROUTINE
#ifdef __cplusplus
#define EXTERN_C extern "C"
#define EXTERN_C_START extern "C" {
#define EXTERN_C_END }
#else
#define EXTERN_C
#define EXTERN_C_START
#define EXTERN_C_END
#endif
/* ntdef.h: __unaligned on x64, which MSVC ignores there; nothing here.  An
 * odd-address access through such a pointer is fine on x64, and what
 * UBSan's alignment check reports in a sanitized build. */
#define UNALIGNED
#define UNALIGNED64
#ifndef __unaligned
#define __unaligned
#endif
#define __inline inline
#define __forceinline inline __attribute__((always_inline))
#define FORCEINLINE static inline __attribute__((always_inline))
#define DECLSPEC_NOINLINE __attribute__((noinline))
#define DECLSPEC_NORETURN __attribute__((noreturn))
#define DECLSPEC_CACHEALIGN __attribute__((aligned(64)))
#define UNREFERENCED_PARAMETER(P) ((void)(P))
#define UNREFERENCED_LOCAL_VARIABLE(V) ((void)(V))
#define PAGED_CODE()
#define PAGED_CODE_LOCKED()
#define FIELD_OFFSET(type, field) ((LONG)offsetof(type, field))
#define RTL_FIELD_SIZE(type, field) (sizeof(((type *)0)->field))
#define CONTAINING_RECORD(address, type, field) \
    ((type *)((PCHAR)(address) - (ULONG_PTR)(&((type *)0)->field)))
#define RTL_NUMBER_OF(A) (sizeof(A) / sizeof((A)[0]))
#define ARRAYSIZE(A) RTL_NUMBER_OF(A)
#define ALIGN_DOWN_BY(length, alignment) \
    ((ULONG_PTR)(length) & ~((ULONG_PTR)(alignment) - 1))
#define ALIGN_UP_BY(length, alignment) \
    (ALIGN_DOWN_BY(((ULONG_PTR)(length) + (alignment) - 1), alignment))
#define PtrToUlong(p) ((ULONG)(ULONG_PTR)(p))
#define PtrToLong(p) ((LONG)(LONG_PTR)(p))
#define UlongToPtr(u) ((PVOID)(ULONG_PTR)(ULONG)(u))
#define ULongToPtr(u) UlongToPtr(u)
#define LongToPtr(l) ((PVOID)(LONG_PTR)(LONG)(l))
#ifndef min
#define min(a, b) (((a) < (b)) ? (a) : (b))
#endif
#ifndef max
#define max(a, b) (((a) > (b)) ? (a) : (b))
#endif
#define MAXULONG 0xFFFFFFFFu
#define MAXUSHORT 0xFFFFu
#define MAXUCHAR 0xFFu
#define MAXLONG 0x7FFFFFFF

/* ---- statuses ---------------------------------------------------------- */

#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)
#define STATUS_PENDING                  NDISEMU_NTSTATUS(0x00000103)
#define STATUS_INTEGER_OVERFLOW         NDISEMU_NTSTATUS(0xC0000095)
#define STATUS_BUFFER_TOO_SMALL         NDISEMU_NTSTATUS(0xC0000023)
#define STATUS_NOT_SUPPORTED            NDISEMU_NTSTATUS(0xC00000BB)
#define STATUS_NO_MEMORY                NDISEMU_NTSTATUS(0xC0000017)
#define STATUS_ASSERTION_FAILURE        NDISEMU_NTSTATUS(0xC0000420)
#define STATUS_BUFFER_OVERFLOW          NDISEMU_NTSTATUS(0x80000005)
#define STATUS_INVALID_HANDLE           NDISEMU_NTSTATUS(0xC0000008)
#define STATUS_DEVICE_NOT_READY         NDISEMU_NTSTATUS(0xC00000A3)
#define STATUS_CANCELLED                NDISEMU_NTSTATUS(0xC0000120)
#define STATUS_INVALID_DEVICE_STATE     NDISEMU_NTSTATUS(0xC0000184)
#define STATUS_INVALID_BUFFER_SIZE      NDISEMU_NTSTATUS(0xC0000206)
#define STATUS_NOT_FOUND                NDISEMU_NTSTATUS(0xC0000225)
#define STATUS_HOPLIMIT_EXCEEDED        NDISEMU_NTSTATUS(0xC000A012)
#define NDIS_STATUS_BUFFER_OVERFLOW     ((NDIS_STATUS)STATUS_BUFFER_OVERFLOW)
#define NDIS_STATUS_NOT_SUPPORTED       NDISEMU_NDIS_STATUS(0xC00000BB)
#define NDIS_STATUS_BUFFER_TOO_SHORT    NDISEMU_NDIS_STATUS(0xC0000023)
#define KMODE_EXCEPTION_NOT_HANDLED     0x1E
#define KERNEL_SECURITY_CHECK_FAILURE   0x139
#define FAST_FAIL_CORRUPT_LIST_ENTRY    3

/* ---- NET_BUFFER_LIST / NET_BUFFER accessors (nblaccessors.h) ---------------- */

#define NET_BUFFER_LIST_NEXT_NBL(_NBL)          ((_NBL)->Next)
#define NET_BUFFER_LIST_FIRST_NB(_NBL)          ((_NBL)->FirstNetBuffer)
#define NET_BUFFER_LIST_FLAGS(_NBL)             ((_NBL)->Flags)
#define NET_BUFFER_LIST_NBL_FLAGS(_NBL)         ((_NBL)->NblFlags)
#define NET_BUFFER_LIST_STATUS(_NBL)            ((_NBL)->Status)
#define NET_BUFFER_LIST_INFO(_NBL, _Id)         ((_NBL)->NetBufferListInfo[(_Id)])
#define NET_BUFFER_LIST_MINIPORT_RESERVED(_NBL) ((_NBL)->MiniportReserved)
#define NET_BUFFER_LIST_PROTOCOL_RESERVED(_NBL) ((_NBL)->ProtocolReserved)
#define NET_BUFFER_LIST_CONTEXT_DATA_START(_NBL) \
    ((PUCHAR)(((_NBL)->Context) + 1) + (_NBL)->Context->Offset)
#define NET_BUFFER_LIST_CONTEXT_DATA_SIZE(_NBL) (((_NBL)->Context)->Size)
#define NET_BUFFER_NEXT_NB(_NB)                 ((_NB)->Next)
#define NET_BUFFER_FIRST_MDL(_NB)               ((_NB)->MdlChain)
#define NET_BUFFER_DATA_LENGTH(_NB)             ((_NB)->DataLength)
#define NET_BUFFER_DATA_OFFSET(_NB)             ((_NB)->DataOffset)
#define NET_BUFFER_CURRENT_MDL(_NB)             ((_NB)->CurrentMdl)
#define NET_BUFFER_CURRENT_MDL_OFFSET(_NB)      ((_NB)->CurrentMdlOffset)
#define NET_BUFFER_CHECKSUM_BIAS(_NB)           ((_NB)->ChecksumBias)
#define NET_BUFFER_MINIPORT_RESERVED(_NB)       ((_NB)->MiniportReserved)
#define NET_BUFFER_PROTOCOL_RESERVED(_NB)       ((_NB)->ProtocolReserved)
#define NET_BUFFER_DATA_PHYSICAL_ADDRESS(_NB)   ((_NB)->DataPhysicalAddress)

#define NdisSetNblFlag(_NBL, _F)        ((_NBL)->NblFlags |= (_F))
#define NdisClearNblFlag(_NBL, _F)      ((_NBL)->NblFlags &= ~(_F))
#define NdisTestNblFlag(_NBL, _F)       (((_NBL)->NblFlags & (_F)) != 0)
#define NdisTestNblFlags(_NBL, _F)      (((_NBL)->NblFlags & (_F)) == (_F))
#define NBL_TEST_FLAG(_NBL, _F)         (((_NBL)->Flags & (_F)) != 0)
#define NBL_SET_FLAG(_NBL, _F)          ((_NBL)->Flags |= (_F))
#define NBL_CLEAR_FLAG(_NBL, _F)        ((_NBL)->Flags &= ~(_F))
/* Only the protocol-reserved bits of Flags are touched (nblaccessors.h). */
#define NBL_SET_PROTOCOL_RSVD_FLAG(_NBL, _F) \
    ((_NBL)->Flags |= ((_F) & NBL_FLAGS_PROTOCOL_RESERVED))
#define NBL_CLEAR_PROTOCOL_RSVD_FLAG(_NBL, _F) \
    ((_NBL)->Flags &= ~((_F) & NBL_FLAGS_PROTOCOL_RESERVED))
#define NBL_TEST_PROTOCOL_RSVD_FLAG(_NBL, _F) \
    (((_NBL)->Flags & ((_F) & NBL_FLAGS_PROTOCOL_RESERVED)) != 0)
#define NBL_PROT_RSVD_FLAGS             NBL_FLAGS_PROTOCOL_RESERVED
#define NBL_SET_PROT_RSVD_FLAG(_NBL, _F)   NBL_SET_PROTOCOL_RSVD_FLAG(_NBL, _F)
#define NBL_CLEAR_PROT_RSVD_FLAG(_NBL, _F) NBL_CLEAR_PROTOCOL_RSVD_FLAG(_NBL, _F)
#define NBL_TEST_PROT_RSVD_FLAG(_NBL, _F)  NBL_TEST_PROTOCOL_RSVD_FLAG(_NBL, _F)
#if NDIS_SUPPORT_NDIS620
#define NET_BUFFER_FIRST_SHARED_MEM_INFO(_NB)    ((_NB)->SharedMemoryInfo)
#define NET_BUFFER_SHARED_MEM_NEXT_SEGMENT(_SHI) ((_SHI)->NextSharedMemorySegment)
#define NET_BUFFER_SHARED_MEM_FLAGS(_SHI)        ((_SHI)->SharedMemoryFlags)
#define NET_BUFFER_SHARED_MEM_HANDLE(_SHI)       ((_SHI)->SharedMemoryHandle)
#define NET_BUFFER_SHARED_MEM_OFFSET(_SHI)       ((_SHI)->SharedMemoryOffset)
#define NET_BUFFER_SHARED_MEM_LENGTH(_SHI)       ((_SHI)->SharedMemoryLength)
#define NET_BUFFER_SCATTER_GATHER_LIST(_NB)      ((_NB)->ScatterGatherList)
#endif

/* The send, send-complete, receive and return flags (nblsend.h,
 * nblreceive.h): a test is true when every bit asked for is set. */
#define NDIS_TEST_SEND_FLAG(_Flags, _Fl)            (((_Flags) & (_Fl)) == (_Fl))
#define NDIS_SET_SEND_FLAG(_Flags, _Fl)             ((_Flags) |= (_Fl))
#define NDIS_TEST_SEND_AT_DISPATCH_LEVEL(_Flags) \
    NDIS_TEST_SEND_FLAG((_Flags), NDIS_SEND_FLAGS_DISPATCH_LEVEL)
#define NDIS_TEST_SEND_COMPLETE_FLAG(_Flags, _Fl)   (((_Flags) & (_Fl)) == (_Fl))
#define NDIS_SET_SEND_COMPLETE_FLAG(_Flags, _Fl)    ((_Flags) |= (_Fl))
#define NDIS_TEST_SEND_COMPLETE_AT_DISPATCH_LEVEL(_Flags) \
    NDIS_TEST_SEND_COMPLETE_FLAG((_Flags), NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL)
#define NDIS_TEST_RECEIVE_FLAG(_Flags, _Fl)         (((_Flags) & (_Fl)) == (_Fl))
#define NDIS_SET_RECEIVE_FLAG(_Flags, _Fl)          ((_Flags) |= (_Fl))
#define NDIS_TEST_RECEIVE_AT_DISPATCH_LEVEL(_Flags) \
    NDIS_TEST_RECEIVE_FLAG((_Flags), NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL)
#define NDIS_TEST_RECEIVE_CANNOT_PEND(_Flags) \
    NDIS_TEST_RECEIVE_FLAG((_Flags), NDIS_RECEIVE_FLAGS_RESOURCES)
#define NDIS_TEST_RECEIVE_CAN_PEND(_Flags) \
    (((_Flags) & NDIS_RECEIVE_FLAGS_RESOURCES) == 0)
#define NDIS_TEST_RETURN_FLAG(_Flags, _Fl)          (((_Flags) & (_Fl)) == (_Fl))
#define NDIS_SET_RETURN_FLAG(_Flags, _Fl)           ((_Flags) |= (_Fl))
#define NDIS_TEST_RETURN_AT_DISPATCH_LEVEL(_Flags) \
    NDIS_TEST_RETURN_FLAG((_Flags), NDIS_RETURN_FLAGS_DISPATCH_LEVEL)

#define NDIS_DEFAULT_PORT_NUMBER ((NDIS_PORT_NUMBER)0)

/* ---- Ethernet addresses (ndis.h) ------------------------------------------ */

/* The packet filter's frame types, as receive paths classify frames. */
#define NDIS_PACKET_TYPE_DIRECTED       0x00000001
#define NDIS_PACKET_TYPE_MULTICAST      0x00000002
#define NDIS_PACKET_TYPE_ALL_MULTICAST  0x00000004
#define NDIS_PACKET_TYPE_BROADCAST      0x00000008
#define NDIS_PACKET_TYPE_SOURCE_ROUTING 0x00000010
#define NDIS_PACKET_TYPE_PROMISCUOUS    0x00000020
#define NDIS_PACKET_TYPE_SMT            0x00000040
#define NDIS_PACKET_TYPE_ALL_LOCAL      0x00000080
#define NDIS_PACKET_TYPE_GROUP          0x00001000
#define NDIS_PACKET_TYPE_ALL_FUNCTIONAL 0x00002000
#define NDIS_PACKET_TYPE_FUNCTIONAL     0x00004000
#define NDIS_PACKET_TYPE_MAC_FRAME      0x00008000
#define NDIS_PACKET_TYPE_NO_LOCAL       0x00010000

#define ETH_LENGTH_OF_ADDRESS           6
/* As the WDK writes them: multicast is the group bit of the first byte
 * (broadcast included); broadcast looks at the first two bytes only. */
#define ETH_IS_MULTICAST(Address) \
    (BOOLEAN)(((PUCHAR)(Address))[0] & ((UCHAR)0x01))
#define ETH_IS_BROADCAST(Address) \
    ((((PUCHAR)(Address))[0] == ((UCHAR)0xff)) && (((PUCHAR)(Address))[1] == ((UCHAR)0xff)))
/* A block, as in the WDK; the 6 bytes are copied without the WDK's
 * unaligned ULONG/USHORT loads, so UBSan has nothing to report. */
#define ETH_COPY_NETWORK_ADDRESS(_D, _S) \
    { memcpy((PUCHAR)(_D), (const UCHAR *)(_S), ETH_LENGTH_OF_ADDRESS); }
/* *_Result = 0 when equal, 1 when not. */
#define ETH_COMPARE_NETWORK_ADDRESSES_EQ(_A, _B, _Result) \
    { *(_Result) = memcmp((_A), (_B), ETH_LENGTH_OF_ADDRESS) != 0; }

/* The cancel ID of a send (NdisCancelSendNetBufferLists): an info slot. */
#define NDIS_SET_NET_BUFFER_LIST_CANCEL_ID(_NBL, _CancelId) \
    (NET_BUFFER_LIST_INFO(_NBL, NetBufferListCancelId) = (PVOID)(_CancelId))
#define NDIS_GET_NET_BUFFER_LIST_CANCEL_ID(_NBL) \
    (NET_BUFFER_LIST_INFO(_NBL, NetBufferListCancelId))

#define NET_BUFFER_LIST_GET_HASH_VALUE(_NBL) \
    (PtrToUlong(NET_BUFFER_LIST_INFO(_NBL, NetBufferListHashValue)))
#define NET_BUFFER_LIST_SET_HASH_VALUE(_NBL, _HashValue) \
    (NET_BUFFER_LIST_INFO(_NBL, NetBufferListHashValue) = UlongToPtr(_HashValue))
#define NET_BUFFER_LIST_GET_HASH_TYPE(_NBL) \
    (PtrToUlong(NET_BUFFER_LIST_INFO(_NBL, NetBufferListHashInfo)) & NDIS_HASH_TYPE_MASK)
#define NET_BUFFER_LIST_GET_HASH_FUNCTION(_NBL) \
    (PtrToUlong(NET_BUFFER_LIST_INFO(_NBL, NetBufferListHashInfo)) & NDIS_HASH_FUNCTION_MASK)

/* ---- MDLs (wdm.h, ndis.h) ------------------------------------------------- */

#define MmGetMdlByteCount(Mdl)          ((Mdl)->ByteCount)
#define MmGetMdlByteOffset(Mdl)         ((Mdl)->ByteOffset)
#define MmGetMdlVirtualAddress(Mdl)     ((PVOID)((PCHAR)((Mdl)->StartVa) + (Mdl)->ByteOffset))
#define MmGetMdlPfnArray(Mdl)           ((PPFN_NUMBER)((Mdl) + 1))
#define MmGetSystemAddressForMdl(Mdl)   MmGetSystemAddressForMdlSafe((Mdl), NormalPagePriority)
#define NDIS_MDL_LINKAGE(_Mdl)          ((_Mdl)->Next)
#define NdisQueryMdl(_Mdl, _VirtualAddress, _Length, _Priority)                  \
    do {                                                                         \
        *(PVOID *)(_VirtualAddress) = MmGetSystemAddressForMdlSafe((_Mdl), (_Priority)); \
        *(_Length) = MmGetMdlByteCount(_Mdl);                                    \
    } while (0)
#define NdisQueryMdlOffset(_Mdl, _Offset, _Length)                               \
    do {                                                                         \
        *(_Offset) = MmGetMdlByteOffset(_Mdl);                                   \
        *(_Length) = MmGetMdlByteCount(_Mdl);                                    \
    } while (0)
#define NdisGetNextMdl(_CurrentMdl, _NextMdl)                                    \
    do { *(_NextMdl) = (_CurrentMdl)->Next; } while (0)
#define BYTE_OFFSET(Va)                 ((ULONG)((ULONG_PTR)(Va) & (PAGE_SIZE - 1)))
#define PAGE_ALIGN(Va)                  ((PVOID)((ULONG_PTR)(Va) & ~(ULONG_PTR)(PAGE_SIZE - 1)))
#define ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Size) \
    ((BYTE_OFFSET(Va) + ((SIZE_T)(Size)) + (PAGE_SIZE - 1)) >> PAGE_SHIFT)
FORCEINLINE SIZE_T MmSizeOfMdl(PVOID Base, SIZE_T Length)
{
    return sizeof(MDL) + sizeof(PFN_NUMBER) * ADDRESS_AND_SIZE_TO_SPAN_PAGES(Base, Length);
}

/* Pool types and priorities: every one is nonpaged memory of the arena. */
#define NonPagedPool            0
#define NonPagedPoolNx          512
#define NonPagedPoolNxCacheAligned 516
#define PagedPool               1
/* EX_POOL_PRIORITY (wdm.h): NdisAllocateMemoryWithTagPriority takes any. */
enum {
    LowPoolPriority,
    LowPoolPrioritySpecialPoolOverrun = 8,
    LowPoolPrioritySpecialPoolUnderrun = 9,
    NormalPoolPriority = 16,
    NormalPoolPrioritySpecialPoolOverrun = 24,
    NormalPoolPrioritySpecialPoolUnderrun = 25,
    HighPoolPriority = 32,
    HighPoolPrioritySpecialPoolOverrun = 40,
    HighPoolPrioritySpecialPoolUnderrun = 41
};

/* ---- memory and byte order ------------------------------------------------ */

#define RtlCopyMemory(Destination, Source, Length)  memcpy((Destination), (Source), (Length))
#define RtlMoveMemory(Destination, Source, Length)  memmove((Destination), (Source), (Length))
#define RtlFillMemory(Destination, Length, Fill)    memset((Destination), (Fill), (Length))
#define RtlZeroMemory(Destination, Length)          memset((Destination), 0, (Length))
#define RtlEqualMemory(A, B, Length)                (!memcmp((A), (B), (Length)))
#define NdisMoveMemory(Destination, Source, Length) RtlCopyMemory(Destination, Source, Length)
#define NdisZeroMemory(Destination, Length)         RtlZeroMemory(Destination, Length)
#define NdisFillMemory(Destination, Length, Fill)   RtlFillMemory(Destination, Length, Fill)
#define NdisEqualMemory(A, B, Length)               RtlEqualMemory(A, B, Length)
#define NdisRetrieveUlong(D, S)                     RtlCopyMemory((D), (S), sizeof(ULONG))
/* Zeroing the compiler may not drop (wdm.h): a volatile store per byte. */
FORCEINLINE PVOID RtlSecureZeroMemory(PVOID Ptr, SIZE_T Cnt)
{
    volatile UCHAR *p = (volatile UCHAR *)Ptr;
    while (Cnt--)
        *p++ = 0;
    return Ptr;
}
#define NdisStoreUlong(D, V)                        do { ULONG ndisemu_v_ = (V); \
                                                         RtlCopyMemory((D), &ndisemu_v_, \
                                                                       sizeof(ULONG)); } while (0)
FORCEINLINE SIZE_T RtlCompareMemory(const VOID *A, const VOID *B, SIZE_T Length)
{
    SIZE_T i = 0;
    while (i < Length && ((const UCHAR *)A)[i] == ((const UCHAR *)B)[i])
        i++;
    return i;
}

#define _byteswap_ushort(x)     __builtin_bswap16((USHORT)(x))
#define _byteswap_ulong(x)      __builtin_bswap32((ULONG)(x))
#define _byteswap_uint64(x)     __builtin_bswap64((ULONGLONG)(x))
#define RtlUshortByteSwap(x)    _byteswap_ushort(x)
#define RtlUlongByteSwap(x)     _byteswap_ulong(x)
#define RtlUlonglongByteSwap(x) _byteswap_uint64(x)

/* ntintsafe.h: the checked arithmetic drivers use on lengths. */
#define NDISEMU_SAFE_OP(name, type, op)                                              \
    FORCEINLINE NTSTATUS name(type a, type b, type *result)                          \
    {                                                                                \
        type r;                                                                      \
        if (__builtin_##op##_overflow(a, b, &r)) {                                   \
            *result = (type)-1;                                                      \
            return STATUS_INTEGER_OVERFLOW;                                          \
        }                                                                            \
        *result = r;                                                                 \
        return STATUS_SUCCESS;                                                       \
    }
NDISEMU_SAFE_OP(RtlUShortAdd, USHORT, add)
NDISEMU_SAFE_OP(RtlUShortSub, USHORT, sub)
NDISEMU_SAFE_OP(RtlULongAdd, ULONG, add)
NDISEMU_SAFE_OP(RtlULongSub, ULONG, sub)
NDISEMU_SAFE_OP(RtlULongMult, ULONG, mul)
NDISEMU_SAFE_OP(RtlSizeTAdd, SIZE_T, add)
NDISEMU_SAFE_OP(RtlSizeTSub, SIZE_T, sub)
NDISEMU_SAFE_OP(RtlSizeTMult, SIZE_T, mul)
NDISEMU_SAFE_OP(RtlULongLongAdd, ULONGLONG, add)
#undef NDISEMU_SAFE_OP

/* ---- Interlocked ---------------------------------------------------------- */

#define InterlockedIncrement(p)         __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)
#define InterlockedDecrement(p)         __atomic_sub_fetch((p), 1, __ATOMIC_SEQ_CST)
#define InterlockedExchangeAdd(p, v)    __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedAdd(p, v)            __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedExchange(p, v)       __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedAnd(p, v)            __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedOr(p, v)             __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedXor(p, v)            __atomic_fetch_xor((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedIncrement64          InterlockedIncrement
#define InterlockedDecrement64          InterlockedDecrement
#define InterlockedExchangeAdd64        InterlockedExchangeAdd
#define InterlockedExchange64           InterlockedExchange
#define InterlockedExchangePointer      InterlockedExchange
#define InterlockedIncrementNoFence     InterlockedIncrement
#define InterlockedDecrementNoFence     InterlockedDecrement
#define InterlockedCompareExchange(p, exchange, comparand) \
    __sync_val_compare_and_swap((p), (comparand), (exchange))
#define InterlockedCompareExchange64    InterlockedCompareExchange
#define InterlockedCompareExchangePointer InterlockedCompareExchange
#define ReadNoFence(p)                  __atomic_load_n((p), __ATOMIC_RELAXED)
#define WriteNoFence(p, v)              __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define KeMemoryBarrier()               __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define NdisInterlockedIncrement(Addend) InterlockedIncrement(Addend)
#define NdisInterlockedDecrement(Addend) InterlockedDecrement(Addend)
#define InterlockedAddLargeStatistic(Addend, Increment) \
    ((void)InterlockedExchangeAdd64(&((PLARGE_INTEGER)(Addend))->QuadPart, (LONG)(Increment)))
#define NdisInterlockedAddLargeStatistic(Addend, Increment) \
    InterlockedAddLargeStatistic((PLARGE_INTEGER)(Addend), Increment)

/* ---- IRQL, spin locks ----------------------------------------------------- */

#define KeRaiseIrql(NewIrql, OldIrql)   (*(OldIrql) = KfRaiseIrql(NewIrql))
#define KeRaiseIrqlToDpcLevel()         KfRaiseIrql(DISPATCH_LEVEL)
#define KeAcquireSpinLock(SpinLock, OldIrql) \
    (*(OldIrql) = KeAcquireSpinLockRaiseToDpc(SpinLock))
#define NDIS_CURRENT_IRQL()             KeGetCurrentIrql()
#define NDIS_RAISE_IRQL_TO_DISPATCH(_pIrql) KeRaiseIrql(DISPATCH_LEVEL, _pIrql)
#define NDIS_LOWER_IRQL(_OldIrql, _CurIrql) KeLowerIrql(_OldIrql)

/* ---- assertions, debug output, bug checks --------------------------------- */

/* A failed assertion stops the driver as on a checked Windows build: bug
 * check 0x1E (KMODE_EXCEPTION_NOT_HANDLED), P1 STATUS_ASSERTION_FAILURE,
 * raised from the Python call that entered the driver. */
#define NT_ASSERT(_exp) \
    ((_exp) ? (void)0 : ndisemu_assert_failed(#_exp, __FILE__, __LINE__))
#define NT_ASSERTMSG(_msg, _exp) \
    ((_exp) ? (void)0 : ndisemu_assert_failed(_msg ": " #_exp, __FILE__, __LINE__))
#define NT_VERIFY(_exp) NT_ASSERT(_exp)
#define ASSERT(_exp) NT_ASSERT(_exp)
#define ASSERTMSG(_msg, _exp) NT_ASSERTMSG(_msg, _exp)
#define NT_FRE_ASSERT(_exp) NT_ASSERT(_exp)
#define C_ASSERT(e) _Static_assert((e), #e)

/* DbgPrint(format, ...) to the Kernel's debug output (stderr). */
#define DbgPrint(...) ndisemu_dbg_print(__VA_ARGS__)
#define DbgPrintEx(ComponentId, Level, ...) ndisemu_dbg_print(__VA_ARGS__)
#define KdPrint(_x_) DbgPrint _x_
#define KdPrintEx(_x_) DbgPrintEx _x_
#define DPFLTR_IHVNETWORK_ID 0
#define DPFLTR_ERROR_LEVEL 0
#define DPFLTR_WARNING_LEVEL 1
#define DPFLTR_TRACE_LEVEL 2
#define DPFLTR_INFO_LEVEL 3

/* ---- the calls ------------------------------------------------------------ */

#define NDISEMU_PROTOTYPE(ret, name, params, args) ret name params;
#define NDISEMU_VOID_PROTOTYPE(name, params, args) VOID name params;
EXTERN_C_START
NDISEMU_API_LIST(NDISEMU_PROTOTYPE, NDISEMU_VOID_PROTOTYPE)
EXTERN_C_END
#undef NDISEMU_PROTOTYPE
#undef NDISEMU_VOID_PROTOTYPE

/* The calls with out parameters or structures passed by pointer: the WDK's
 * signatures, with every access to the caller's memory made here, in the
 * driver's own code (the core only follows pointers into the arena). */
FORCEINLINE NDIS_HANDLE NdisAllocateNetBufferListPool(NDIS_HANDLE NdisHandle,
                                                      const NET_BUFFER_LIST_POOL_PARAMETERS *Parameters)
{
    NET_BUFFER_LIST_POOL_PARAMETERS copy;
    (void)NdisHandle;
    memset(&copy, 0, sizeof copy);
    memcpy(&copy, Parameters, Parameters->Header.Size < sizeof copy ? Parameters->Header.Size
                                                                    : sizeof copy);
    return ndisemu_allocate_nbl_pool(copy);
}

FORCEINLINE NDIS_HANDLE NdisAllocateNetBufferPool(NDIS_HANDLE NdisHandle,
                                                  const NET_BUFFER_POOL_PARAMETERS *Parameters)
{
    NET_BUFFER_POOL_PARAMETERS copy;
    (void)NdisHandle;
    memset(&copy, 0, sizeof copy);
    memcpy(&copy, Parameters, Parameters->Header.Size < sizeof copy ? Parameters->Header.Size
                                                                    : sizeof copy);
    return ndisemu_allocate_nb_pool(copy);
}

FORCEINLINE PVOID NdisGetDataBuffer(NET_BUFFER *NetBuffer, ULONG BytesNeeded, PVOID Storage,
                                    ULONG AlignMultiple, ULONG AlignOffset)
{
    NDISEMU_DATA_RESULT r = ndisemu_get_data_buffer(NetBuffer, BytesNeeded, Storage,
                                                    AlignMultiple, AlignOffset);
    /* Storage is tested too: inlined with a literal NULL Storage, as
     * drivers call it, gcc -O1 -Wall would see memcpy(NULL, ...). */
    if (r.CopyFrom && Storage)
        memcpy(Storage, r.CopyFrom, BytesNeeded);
    return r.Data;
}

FORCEINLINE NDIS_STATUS NdisCopyFromNetBufferToNetBuffer(NET_BUFFER *Destination,
                                                         ULONG DestinationOffset,
                                                         ULONG BytesToCopy,
                                                         const NET_BUFFER *Source,
                                                         ULONG SourceOffset, ULONG *BytesCopied)
{
    NDISEMU_COPY_RESULT r = ndisemu_copy_nb_to_nb(Destination, DestinationOffset, BytesToCopy,
                                                  Source, SourceOffset);
    *BytesCopied = r.BytesCopied;
    return r.Status;
}

FORCEINLINE NDIS_STATUS NdisAllocateMemoryWithTag(PVOID *VirtualAddress, UINT Length, ULONG Tag)
{
    *VirtualAddress = NdisAllocateMemoryWithTagPriority(NULL, Length, Tag, NormalPagePriority);
    return *VirtualAddress ? NDIS_STATUS_SUCCESS : NDIS_STATUS_RESOURCES;
}
#define ExAllocatePool(PoolType, NumberOfBytes) \
    ExAllocatePoolWithTag((PoolType), (NumberOfBytes), 0x656e6f4e /* "None" */)
/* wdm.h's inline: zeroed memory, or NULL. */
FORCEINLINE PVOID ExAllocatePoolZero(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    PVOID p = ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag);
    if (p)
        RtlZeroMemory(p, NumberOfBytes);
    return p;
}
#define ExAllocatePoolUninitialized(PoolType, NumberOfBytes, Tag) \
    ExAllocatePoolWithTag((PoolType), (NumberOfBytes), (Tag))

/* Spin locks live in the driver's memory; taking one raises the emulated
 * IRQL to DISPATCH_LEVEL and keeps the IRQL to go back to, as on Windows. */
FORCEINLINE VOID NdisAllocateSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    SpinLock->SpinLock = 0;
    SpinLock->OldIrql = PASSIVE_LEVEL;
}
FORCEINLINE VOID NdisFreeSpinLock(PNDIS_SPIN_LOCK SpinLock) { (void)SpinLock; }
FORCEINLINE VOID NdisAcquireSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    SpinLock->OldIrql = KfRaiseIrql(DISPATCH_LEVEL);
    SpinLock->SpinLock = 1;
}
FORCEINLINE VOID NdisReleaseSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    SpinLock->SpinLock = 0;
    KeLowerIrql(SpinLock->OldIrql);
}
FORCEINLINE VOID NdisDprAcquireSpinLock(PNDIS_SPIN_LOCK SpinLock) { SpinLock->SpinLock = 1; }
FORCEINLINE VOID NdisDprReleaseSpinLock(PNDIS_SPIN_LOCK SpinLock) { SpinLock->SpinLock = 0; }
FORCEINLINE VOID KeInitializeSpinLock(PKSPIN_LOCK SpinLock) { *SpinLock = 0; }
FORCEINLINE KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock)
{
    *SpinLock = 1;
    return KfRaiseIrql(DISPATCH_LEVEL);
}
FORCEINLINE VOID KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
    *SpinLock = 0;
    KeLowerIrql(NewIrql);
}
FORCEINLINE VOID KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock) { *SpinLock = 1; }
FORCEINLINE VOID KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock) { *SpinLock = 0; }
/* In-stack queued spin locks: the handle records the lock and the IRQL. */
FORCEINLINE VOID KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock,
                                                PKLOCK_QUEUE_HANDLE LockHandle)
{
    LockHandle->LockQueue.Next = NULL;
    LockHandle->LockQueue.Lock = SpinLock;
    LockHandle->OldIrql = KfRaiseIrql(DISPATCH_LEVEL);
    *SpinLock = 1;
}
FORCEINLINE VOID KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle)
{
    *LockHandle->LockQueue.Lock = 0;
    KeLowerIrql(LockHandle->OldIrql);
}
FORCEINLINE VOID KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock,
                                                          PKLOCK_QUEUE_HANDLE LockHandle)
{
    LockHandle->LockQueue.Next = NULL;
    LockHandle->LockQueue.Lock = SpinLock;
    *SpinLock = 1;
}
FORCEINLINE VOID KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle)
{
    *LockHandle->LockQueue.Lock = 0;
}

/* ---- lists (wdm.h) -------------------------------------------------------- */

/* The WDK's inline list functions, with their integrity checks: a link
 * that does not point back (an entry removed twice, a head never
 * initialised, memory overwritten) is a fast fail, bug check 0x139
 * KERNEL_SECURITY_CHECK_FAILURE with P1 3 (FAST_FAIL_CORRUPT_LIST_ENTRY). */
FORCEINLINE VOID ndisemu_list_corrupt(PLIST_ENTRY Entry)
{
    KeBugCheckEx(KERNEL_SECURITY_CHECK_FAILURE, FAST_FAIL_CORRUPT_LIST_ENTRY,
                 (ULONG_PTR)Entry, 0, 0);
}
FORCEINLINE VOID InitializeListHead(PLIST_ENTRY ListHead)
{
    ListHead->Flink = ListHead->Blink = ListHead;
}
FORCEINLINE BOOLEAN IsListEmpty(const LIST_ENTRY *ListHead)
{
    return (BOOLEAN)(ListHead->Flink == ListHead);
}
/* Every insert and removal is one of these two steps, each checking every
 * link it relies on (of these, each WDK function tests the ones its own
 * reads do not already guarantee); `Report` is the entry the WDK names in
 * its fast fail. */
FORCEINLINE VOID ndisemu_list_link(PLIST_ENTRY Prev, PLIST_ENTRY Entry, PLIST_ENTRY Next,
                                   PLIST_ENTRY Report)
{
    if (Prev->Flink != Next || Next->Blink != Prev)
        ndisemu_list_corrupt(Report);
    Entry->Flink = Next;
    Entry->Blink = Prev;
    Prev->Flink = Entry;
    Next->Blink = Entry;
}
FORCEINLINE VOID ndisemu_list_unlink(PLIST_ENTRY Prev, PLIST_ENTRY Entry, PLIST_ENTRY Next,
                                     PLIST_ENTRY Report)
{
    if (Prev->Flink != Entry || Entry->Blink != Prev || Entry->Flink != Next ||
        Next->Blink != Entry)
        ndisemu_list_corrupt(Report);
    Prev->Flink = Next;
    Next->Blink = Prev;
}
FORCEINLINE BOOLEAN RemoveEntryList(PLIST_ENTRY Entry)
{
    PLIST_ENTRY Next = Entry->Flink, Prev = Entry->Blink;
    ndisemu_list_unlink(Prev, Entry, Next, Entry);
    return (BOOLEAN)(Prev == Next);
}
/* On an empty list these return the head itself, as in the WDK. */
FORCEINLINE PLIST_ENTRY RemoveHeadList(PLIST_ENTRY ListHead)
{
    PLIST_ENTRY Entry = ListHead->Flink;
    ndisemu_list_unlink(ListHead, Entry, Entry->Flink, ListHead);
    return Entry;
}
FORCEINLINE PLIST_ENTRY RemoveTailList(PLIST_ENTRY ListHead)
{
    PLIST_ENTRY Entry = ListHead->Blink;
    ndisemu_list_unlink(Entry->Blink, Entry, ListHead, ListHead);
    return Entry;
}
FORCEINLINE VOID InsertHeadList(PLIST_ENTRY ListHead, PLIST_ENTRY Entry)
{
    ndisemu_list_link(ListHead, Entry, ListHead->Flink, ListHead);
}
FORCEINLINE VOID InsertTailList(PLIST_ENTRY ListHead, PLIST_ENTRY Entry)
{
    ndisemu_list_link(ListHead->Blink, Entry, ListHead, ListHead);
}
FORCEINLINE VOID AppendTailList(PLIST_ENTRY ListHead, PLIST_ENTRY ListToAppend)
{
    PLIST_ENTRY ListEnd = ListHead->Blink;
    ListHead->Blink->Flink = ListToAppend;
    ListHead->Blink = ListToAppend->Blink;
    ListToAppend->Blink->Flink = ListHead;
    ListToAppend->Blink = ListEnd;
}

/* ExInterlocked*List hold the spin lock for the one operation, at any
 * IRQL (Windows disables interrupts; nothing else runs here).  They return
 * the entry that was first/last before (NULL for an empty list), or the
 * entry removed (NULL when empty). */
FORCEINLINE PLIST_ENTRY ExInterlockedInsertHeadList(PLIST_ENTRY ListHead, PLIST_ENTRY ListEntry,
                                                    PKSPIN_LOCK Lock)
{
    PLIST_ENTRY First;
    *Lock = 1;
    First = IsListEmpty(ListHead) ? NULL : ListHead->Flink;
    InsertHeadList(ListHead, ListEntry);
    *Lock = 0;
    return First;
}
FORCEINLINE PLIST_ENTRY ExInterlockedInsertTailList(PLIST_ENTRY ListHead, PLIST_ENTRY ListEntry,
                                                    PKSPIN_LOCK Lock)
{
    PLIST_ENTRY Last;
    *Lock = 1;
    Last = IsListEmpty(ListHead) ? NULL : ListHead->Blink;
    InsertTailList(ListHead, ListEntry);
    *Lock = 0;
    return Last;
}
FORCEINLINE PLIST_ENTRY ExInterlockedRemoveHeadList(PLIST_ENTRY ListHead, PKSPIN_LOCK Lock)
{
    PLIST_ENTRY Entry = NULL;
    *Lock = 1;
    if (!IsListEmpty(ListHead))
        Entry = RemoveHeadList(ListHead);
    *Lock = 0;
    return Entry;
}
/* Returns the value before the addition. */
FORCEINLINE ULONG ExInterlockedAddUlong(PULONG Addend, ULONG Increment, PKSPIN_LOCK Lock)
{
    ULONG Old;
    *Lock = 1;
    Old = *Addend;
    *Addend = Old + Increment;
    *Lock = 0;
    return Old;
}
#define NdisInterlockedInsertHeadList(_ListHead, _ListEntry, _SpinLock) \
    ExInterlockedInsertHeadList(_ListHead, _ListEntry, &(_SpinLock)->SpinLock)
#define NdisInterlockedInsertTailList(_ListHead, _ListEntry, _SpinLock) \
    ExInterlockedInsertTailList(_ListHead, _ListEntry, &(_SpinLock)->SpinLock)
#define NdisInterlockedRemoveHeadList(_ListHead, _SpinLock) \
    ExInterlockedRemoveHeadList(_ListHead, &(_SpinLock)->SpinLock)
#define NdisInterlockedAddUlong(_Addend, _Increment, _SpinLock) \
    ExInterlockedAddUlong(_Addend, _Increment, &(_SpinLock)->SpinLock)
#define NdisInitializeListHead(_ListHead) InitializeListHead(_ListHead)

/* Formats into a buffer and hands it to the Kernel's debug output. */
#include <stdarg.h>
#include <stdio.h>
static inline __attribute__((format(printf, 1, 2), unused)) ULONG
ndisemu_dbg_print(const char *format, ...)
{
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    ndisemu_debug_print(text);
    return 0;
}

#endif /* NDISEMU_DRIVER_NDIS_H */
