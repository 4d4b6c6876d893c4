/*
 * ndisemu_api.h - the table through which driver code reaches the emulated
 * NDIS, Io, Mm, Ke and FWPS calls, written once for both sides.
 *
 * A driver module built by ndisemu.driver.build() gets, for every entry of
 * NDISEMU_API_LIST, a function with the WDK's name and signature that calls
 * through one table of function pointers; the native core fills that table
 * (ndisemu/native/driver.c) and hands it to each module when a Kernel loads
 * it.  So several driver modules and several Kernels share one core, and
 * the module needs no symbol of the core at link time.
 *
 * The Windows types the calls need are in ndisemu_types.h.
 */
#ifndef NDISEMU_API_H
#define NDISEMU_API_H

#include <setjmp.h>
#include "ndisemu_types.h"

#ifndef VOID
#define VOID void
#endif

#include "ndisemu_types.h"

/* ---- the calls --------------------------------------------------------- */
/*
 * X(return type, name, (parameters), (arguments)) for calls that return a
 * value, V(name, (parameters), (arguments)) for VOID ones.  Signatures are
 * the WDK's (nblapi.h, ndis.h, wdm.h, fwpsk.h).  The last group is ndisemu's
 * own support for the header's macros (assertions, debug print, IRQL).
 */
#define NDISEMU_API_LIST(X, V)                                                              \
    /* pools (the parameters come by value: the inline callers copy them) */                \
    X(NDIS_HANDLE, ndisemu_allocate_nbl_pool, (NET_BUFFER_LIST_POOL_PARAMETERS Parameters), \
      (Parameters))                                                                         \
    V(NdisFreeNetBufferListPool, (NDIS_HANDLE PoolHandle), (PoolHandle))                    \
    X(NDIS_HANDLE, ndisemu_allocate_nb_pool, (NET_BUFFER_POOL_PARAMETERS Parameters),       \
      (Parameters))                                                                         \
    V(NdisFreeNetBufferPool, (NDIS_HANDLE PoolHandle), (PoolHandle))                        \
    X(NDIS_HANDLE, NdisGetPoolFromNetBufferList, (const NET_BUFFER_LIST *NetBufferList),    \
      (NetBufferList))                                                                      \
    X(NDIS_HANDLE, NdisGetPoolFromNetBuffer, (const NET_BUFFER *NetBuffer), (NetBuffer))   \
    /* NBLs, NBs and contexts */                                                            \
    X(NET_BUFFER_LIST *, NdisAllocateNetBufferList,                                         \
      (NDIS_HANDLE PoolHandle, USHORT ContextSize, USHORT ContextBackFill),                 \
      (PoolHandle, ContextSize, ContextBackFill))                                           \
    X(NET_BUFFER_LIST *, NdisAllocateNetBufferAndNetBufferList,                             \
      (NDIS_HANDLE PoolHandle, USHORT ContextSize, USHORT ContextBackFill, MDL *MdlChain,   \
       ULONG DataOffset, SIZE_T DataLength),                                                \
      (PoolHandle, ContextSize, ContextBackFill, MdlChain, DataOffset, DataLength))         \
    V(NdisFreeNetBufferList, (NET_BUFFER_LIST *NetBufferList), (NetBufferList))            \
    X(NET_BUFFER *, NdisAllocateNetBuffer,                                                  \
      (NDIS_HANDLE PoolHandle, MDL *MdlChain, ULONG DataOffset, SIZE_T DataLength),         \
      (PoolHandle, MdlChain, DataOffset, DataLength))                                       \
    X(NET_BUFFER *, NdisAllocateNetBufferMdlAndData, (NDIS_HANDLE PoolHandle), (PoolHandle)) \
    V(NdisFreeNetBuffer, (NET_BUFFER *NetBuffer), (NetBuffer))                              \
    X(NDIS_STATUS, NdisAllocateNetBufferListContext,                                        \
      (NET_BUFFER_LIST *NetBufferList, USHORT ContextSize, USHORT ContextBackFill,          \
       ULONG PoolTag),                                                                      \
      (NetBufferList, ContextSize, ContextBackFill, PoolTag))                               \
    V(NdisFreeNetBufferListContext, (NET_BUFFER_LIST *NetBufferList, USHORT ContextSize),   \
      (NetBufferList, ContextSize))                                                         \
    /* derived NBLs */                                                                      \
    X(NET_BUFFER_LIST *, NdisAllocateCloneNetBufferList,                                    \
      (NET_BUFFER_LIST *OriginalNetBufferList, NDIS_HANDLE NetBufferListPoolHandle,         \
       NDIS_HANDLE NetBufferPoolHandle, ULONG AllocateCloneFlags),                          \
      (OriginalNetBufferList, NetBufferListPoolHandle, NetBufferPoolHandle,                 \
       AllocateCloneFlags))                                                                 \
    V(NdisFreeCloneNetBufferList, (NET_BUFFER_LIST *CloneNetBufferList, ULONG FreeCloneFlags), \
      (CloneNetBufferList, FreeCloneFlags))                                                 \
    X(NET_BUFFER_LIST *, NdisAllocateFragmentNetBufferList,                                 \
      (NET_BUFFER_LIST *OriginalNetBufferList, NDIS_HANDLE NetBufferListPool,               \
       NDIS_HANDLE NetBufferPool, ULONG StartOffset, ULONG MaximumLength,                   \
       ULONG DataOffsetDelta, ULONG DataBackFill, ULONG AllocateFragmentFlags),             \
      (OriginalNetBufferList, NetBufferListPool, NetBufferPool, StartOffset, MaximumLength, \
       DataOffsetDelta, DataBackFill, AllocateFragmentFlags))                               \
    V(NdisFreeFragmentNetBufferList,                                                        \
      (NET_BUFFER_LIST *FragmentNetBufferList, ULONG DataOffsetDelta,                       \
       ULONG FreeFragmentFlags),                                                            \
      (FragmentNetBufferList, DataOffsetDelta, FreeFragmentFlags))                          \
    X(NET_BUFFER_LIST *, NdisAllocateReassembledNetBufferList,                              \
      (NET_BUFFER_LIST *FragmentNetBufferList, NDIS_HANDLE NetBufferAndNetBufferListPoolHandle, \
       ULONG StartOffset, ULONG DataOffsetDelta, ULONG DataBackFill,                        \
       ULONG AllocateReassembleFlags),                                                      \
      (FragmentNetBufferList, NetBufferAndNetBufferListPoolHandle, StartOffset,             \
       DataOffsetDelta, DataBackFill, AllocateReassembleFlags))                             \
    V(NdisFreeReassembledNetBufferList,                                                     \
      (NET_BUFFER_LIST *ReassembledNetBufferList, ULONG DataOffsetDelta,                    \
       ULONG FreeReassembleFlags),                                                          \
      (ReassembledNetBufferList, DataOffsetDelta, FreeReassembleFlags))                     \
    /* data space */                                                                        \
    X(NDIS_STATUS, NdisRetreatNetBufferDataStart,                                           \
      (NET_BUFFER *NetBuffer, ULONG DataOffsetDelta, ULONG DataBackFill,                    \
       NET_BUFFER_ALLOCATE_MDL *AllocateMdlHandler),                                        \
      (NetBuffer, DataOffsetDelta, DataBackFill, AllocateMdlHandler))                       \
    V(NdisAdvanceNetBufferDataStart,                                                        \
      (NET_BUFFER *NetBuffer, ULONG DataOffsetDelta, BOOLEAN FreeMdl,                       \
       NET_BUFFER_FREE_MDL *FreeMdlHandler),                                                \
      (NetBuffer, DataOffsetDelta, FreeMdl, FreeMdlHandler))                                \
    X(NDIS_STATUS, NdisRetreatNetBufferListDataStart,                                       \
      (NET_BUFFER_LIST *NetBufferList, ULONG DataOffsetDelta, ULONG DataBackFill,           \
       NET_BUFFER_ALLOCATE_MDL *AllocateMdlHandler, NET_BUFFER_FREE_MDL *FreeMdlHandler),   \
      (NetBufferList, DataOffsetDelta, DataBackFill, AllocateMdlHandler, FreeMdlHandler))   \
    V(NdisAdvanceNetBufferListDataStart,                                                    \
      (NET_BUFFER_LIST *NetBufferList, ULONG DataOffsetDelta, BOOLEAN FreeMdl,              \
       NET_BUFFER_FREE_MDL *FreeMdlMdlHandler),                                             \
      (NetBufferList, DataOffsetDelta, FreeMdl, FreeMdlMdlHandler))                         \
    V(NdisAdjustNetBufferCurrentMdl, (NET_BUFFER *NetBuffer), (NetBuffer))                  \
    X(NDISEMU_DATA_RESULT, ndisemu_get_data_buffer,                                         \
      (NET_BUFFER *NetBuffer, ULONG BytesNeeded, PVOID Storage, ULONG AlignMultiple,        \
       ULONG AlignOffset),                                                                  \
      (NetBuffer, BytesNeeded, Storage, AlignMultiple, AlignOffset))                        \
    X(NDISEMU_COPY_RESULT, ndisemu_copy_nb_to_nb,                                           \
      (NET_BUFFER *Destination, ULONG DestinationOffset, ULONG BytesToCopy,                 \
       const NET_BUFFER *Source, ULONG SourceOffset),                                       \
      (Destination, DestinationOffset, BytesToCopy, Source, SourceOffset))                  \
    V(NdisCopySendNetBufferListInfo,                                                        \
      (NET_BUFFER_LIST *DestNetBufferList, const NET_BUFFER_LIST *SrcNetBufferList),        \
      (DestNetBufferList, SrcNetBufferList))                                                \
    V(NdisCopyReceiveNetBufferListInfo,                                                     \
      (NET_BUFFER_LIST *DestNetBufferList, const NET_BUFFER_LIST *SrcNetBufferList),        \
      (DestNetBufferList, SrcNetBufferList))                                                \
    X(UCHAR, NdisGetNetBufferListProtocolId, (const NET_BUFFER_LIST *NetBufferList),        \
      (NetBufferList))                                                                      \
    V(NdisSetNetBufferListProtocolId, (NET_BUFFER_LIST *NetBufferList, UCHAR ProtocolId),   \
      (NetBufferList, ProtocolId))                                                          \
    /* memory and MDLs */                                                                   \
    X(PVOID, NdisAllocateMemoryWithTagPriority,                                             \
      (NDIS_HANDLE NdisHandle, UINT Length, ULONG Tag, EX_POOL_PRIORITY Priority),          \
      (NdisHandle, Length, Tag, Priority))                                                  \
    V(NdisFreeMemoryWithTagPriority, (NDIS_HANDLE NdisHandle, PVOID VirtualAddress, ULONG Tag), \
      (NdisHandle, VirtualAddress, Tag))                                                    \
    V(NdisFreeMemory, (PVOID VirtualAddress, UINT Length, UINT MemoryFlags),                \
      (VirtualAddress, Length, MemoryFlags))                                                \
    X(PVOID, ExAllocatePoolWithTag, (POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag),  \
      (PoolType, NumberOfBytes, Tag))                                                       \
    V(ExFreePoolWithTag, (PVOID P, ULONG Tag), (P, Tag))                                    \
    V(ExFreePool, (PVOID P), (P))                                                           \
    X(PMDL, NdisAllocateMdl, (NDIS_HANDLE NdisHandle, PVOID VirtualAddress, UINT Length),   \
      (NdisHandle, VirtualAddress, Length))                                                 \
    V(NdisFreeMdl, (PMDL Mdl), (Mdl))                                                       \
    X(PMDL, IoAllocateMdl,                                                                  \
      (PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,    \
       PIRP Irp),                                                                           \
      (VirtualAddress, Length, SecondaryBuffer, ChargeQuota, Irp))                          \
    V(IoFreeMdl, (PMDL Mdl), (Mdl))                                                         \
    V(MmBuildMdlForNonPagedPool, (PMDL MemoryDescriptorList), (MemoryDescriptorList))       \
    X(PVOID, MmGetSystemAddressForMdlSafe, (PMDL Mdl, ULONG Priority), (Mdl, Priority))     \
    V(MmInitializeMdl, (PMDL MemoryDescriptorList, PVOID BaseVa, SIZE_T Length),            \
      (MemoryDescriptorList, BaseVa, Length))                                               \
    V(NdisAdjustMdlLength, (PMDL Mdl, UINT Length), (Mdl, Length))                          \
    /* WFP (fwpsk.h); the unsuffixed names are macros there, as in the WDK */               \
    X(NDISEMU_NBL_RESULT, ndisemu_fwps_clone,                                               \
      (NET_BUFFER_LIST *originalNetBufferList, NDIS_HANDLE netBufferListPoolHandle,         \
       NDIS_HANDLE netBufferPoolHandle, ULONG allocateCloneFlags),                          \
      (originalNetBufferList, netBufferListPoolHandle, netBufferPoolHandle,                 \
       allocateCloneFlags))                                                                 \
    X(NDISEMU_NBL_RESULT, ndisemu_fwps_deep_clone,                                          \
      (NET_BUFFER_LIST *originalNetBufferList, NDIS_HANDLE netBufferListPoolHandle,         \
       NDIS_HANDLE netBufferPoolHandle),                                                    \
      (originalNetBufferList, netBufferListPoolHandle, netBufferPoolHandle))                \
    V(FwpsFreeCloneNetBufferList0, (NET_BUFFER_LIST *netBufferList, ULONG freeCloneFlags),  \
      (netBufferList, freeCloneFlags))                                                      \
    X(NDISEMU_NBL_RESULT, ndisemu_fwps_allocate_nbl,                                        \
      (NDIS_HANDLE poolHandle, USHORT contextSize, USHORT contextBackFill, MDL *mdlChain,   \
       ULONG dataOffset, SIZE_T dataLength),                                                \
      (poolHandle, contextSize, contextBackFill, mdlChain, dataOffset, dataLength))         \
    V(FwpsFreeNetBufferList0, (NET_BUFFER_LIST *netBufferList), (netBufferList))            \
    V(FwpsReferenceNetBufferList0, (NET_BUFFER_LIST *netBufferList, BOOLEAN intendToModify), \
      (netBufferList, intendToModify))                                                      \
    V(FwpsDereferenceNetBufferList0, (NET_BUFFER_LIST *netBufferList, BOOLEAN dispatchLevel), \
      (netBufferList, dispatchLevel))                                                       \
    /* the binding's send, receive, completion and return calls (ndis.h); the    */         \
    /* emulated binding lives in Python (ndisemu/binding.py): these call into it */         \
    V(NdisSendNetBufferLists,                                                               \
      (NDIS_HANDLE NdisBindingHandle, PNET_BUFFER_LIST NetBufferLists,                      \
       NDIS_PORT_NUMBER PortNumber, ULONG SendFlags),                                       \
      (NdisBindingHandle, NetBufferLists, PortNumber, SendFlags))                           \
    V(NdisFSendNetBufferLists,                                                              \
      (NDIS_HANDLE NdisFilterHandle, PNET_BUFFER_LIST NetBufferList,                        \
       NDIS_PORT_NUMBER PortNumber, ULONG SendFlags),                                       \
      (NdisFilterHandle, NetBufferList, PortNumber, SendFlags))                             \
    V(NdisMSendNetBufferListsComplete,                                                      \
      (NDIS_HANDLE MiniportAdapterHandle, PNET_BUFFER_LIST NetBufferLists,                  \
       ULONG SendCompleteFlags),                                                            \
      (MiniportAdapterHandle, NetBufferLists, SendCompleteFlags))                           \
    V(NdisFSendNetBufferListsComplete,                                                      \
      (NDIS_HANDLE NdisFilterHandle, PNET_BUFFER_LIST NetBufferList,                        \
       ULONG SendCompleteFlags),                                                            \
      (NdisFilterHandle, NetBufferList, SendCompleteFlags))                                 \
    V(NdisMIndicateReceiveNetBufferLists,                                                   \
      (NDIS_HANDLE MiniportAdapterHandle, PNET_BUFFER_LIST NetBufferLists,                  \
       NDIS_PORT_NUMBER PortNumber, ULONG NumberOfNetBufferLists, ULONG ReceiveFlags),      \
      (MiniportAdapterHandle, NetBufferLists, PortNumber, NumberOfNetBufferLists,           \
       ReceiveFlags))                                                                       \
    V(NdisFIndicateReceiveNetBufferLists,                                                   \
      (NDIS_HANDLE NdisFilterHandle, PNET_BUFFER_LIST NetBufferLists,                       \
       NDIS_PORT_NUMBER PortNumber, ULONG NumberOfNetBufferLists, ULONG ReceiveFlags),      \
      (NdisFilterHandle, NetBufferLists, PortNumber, NumberOfNetBufferLists, ReceiveFlags)) \
    V(NdisReturnNetBufferLists,                                                             \
      (NDIS_HANDLE NdisBindingHandle, PNET_BUFFER_LIST NetBufferLists, ULONG ReturnFlags),  \
      (NdisBindingHandle, NetBufferLists, ReturnFlags))                                     \
    V(NdisFReturnNetBufferLists,                                                            \
      (NDIS_HANDLE NdisFilterHandle, PNET_BUFFER_LIST NetBufferLists, ULONG ReturnFlags),   \
      (NdisFilterHandle, NetBufferLists, ReturnFlags))                                      \
    V(NdisCancelSendNetBufferLists, (NDIS_HANDLE NdisBindingHandle, PVOID CancelId),       \
      (NdisBindingHandle, CancelId))                                                        \
    V(NdisFCancelSendNetBufferLists, (NDIS_HANDLE NdisFilterHandle, PVOID CancelId),       \
      (NdisFilterHandle, CancelId))                                                         \
    X(UCHAR, NdisGeneratePartialCancelId, (void), ())                                       \
    /* IRQL and spin locks */                                                               \
    X(KIRQL, KeGetCurrentIrql, (void), ())                                                  \
    X(KIRQL, KfRaiseIrql, (KIRQL NewIrql), (NewIrql))                                       \
    V(KeLowerIrql, (KIRQL NewIrql), (NewIrql))                                              \
    /* what the header's ASSERT, DbgPrint and bug-check macros call */                      \
    V(ndisemu_assert_failed, (const char *Expression, const char *File, ULONG Line),        \
      (Expression, File, Line))                                                             \
    V(ndisemu_debug_print, (const char *Text), (Text))                                      \
    V(KeBugCheckEx,                                                                         \
      (ULONG BugCheckCode, ULONG_PTR Parameter1, ULONG_PTR Parameter2,                      \
       ULONG_PTR Parameter3, ULONG_PTR Parameter4),                                         \
      (BugCheckCode, Parameter1, Parameter2, Parameter3, Parameter4))

/* Where a call from Python into driver code stands: the unwind point a bug
 * check in the driver jumps back to, and what to restore then.  Lives in the
 * trampoline's stack frame (ndisemu.driver generates one per function). */
typedef struct _NDISEMU_FRAME {
    jmp_buf Unwind;
    struct _NDISEMU_FRAME *Previous;
    void *PreviousKernel;
    ULONG Irql;
    ULONG Unwound;
    SIZE_T Scratch;
} NDISEMU_FRAME;

#define NDISEMU_API_VERSION 2

#define NDISEMU_API_MEMBER(ret, name, params, args) ret (*name) params;
#define NDISEMU_API_VOID_MEMBER(name, params, args) VOID (*name) params;
typedef struct _NDISEMU_API {
    ULONG Version;                   /* NDISEMU_API_VERSION */
    ULONG Size;                      /* sizeof(NDISEMU_API) */
    /* The trampolines: make `kernel` the machine this thread's NDIS calls
     * act on, with `frame` as the unwind point; and back. */
    VOID (*Enter)(void *kernel, NDISEMU_FRAME *frame);
    VOID (*Leave)(void *kernel, NDISEMU_FRAME *frame);
    NDISEMU_API_LIST(NDISEMU_API_MEMBER, NDISEMU_API_VOID_MEMBER)
} NDISEMU_API;
#undef NDISEMU_API_MEMBER
#undef NDISEMU_API_VOID_MEMBER

#endif /* NDISEMU_API_H */
