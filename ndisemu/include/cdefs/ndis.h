/*
 * ndis.h - the NDIS 6.x packet-buffer structures (ndis/nbl.h, nblinfo.h,
 * nblapi.h, objectheader.h, nblchecksum.h, nbl8021q.h, nbllso.h) and their
 * constants, declared once.  abi.h selects the ABI and the NDIS version;
 * NDIS_WRAPPER=1 gives ndis.sys's own view (two more info slots).
 *
 * Written from the published WDK headers' definitions; member order, types
 * and version gates follow them.  DECLSPEC_ALIGN on the reserved arrays and
 * ContextData is in the headers (and in ndis.sys's symbols) although the
 * online reference pages omit it.
 */
#ifndef NDISEMU_NDIS_H
#define NDISEMU_NDIS_H

#include "abi.h"
#include "wdm.h"

/* ---- objectheader.h ---------------------------------------------------- */

typedef struct _NDIS_OBJECT_HEADER {
    UCHAR Type;
    UCHAR Revision;
    USHORT Size;
} NDIS_OBJECT_HEADER;

#define NDIS_OBJECT_TYPE_DEFAULT        0x80

/* ---- nblinfo.h --------------------------------------------------------- */

typedef enum _NDIS_NET_BUFFER_LIST_INFO {
    TcpIpChecksumNetBufferListInfo,
    TcpOffloadBytesTransferred = TcpIpChecksumNetBufferListInfo,
    IPsecOffloadV1NetBufferListInfo,
#if NDIS_SUPPORT_NDIS61
    IPsecOffloadV2NetBufferListInfo = IPsecOffloadV1NetBufferListInfo,
#endif
    TcpLargeSendNetBufferListInfo,
    TcpReceiveNoPush = TcpLargeSendNetBufferListInfo,
    ClassificationHandleNetBufferListInfo,
    Ieee8021QNetBufferListInfo,
    NetBufferListCancelId,
    MediaSpecificInformation,
    NetBufferListFrameType,
    NetBufferListProtocolId = NetBufferListFrameType,
    NetBufferListHashValue,
    NetBufferListHashInfo,
    WfpNetBufferListInfo,
#if NDIS_SUPPORT_NDIS61
    IPsecOffloadV2TunnelNetBufferListInfo,
    IPsecOffloadV2HeaderNetBufferListInfo,
#endif
#if NDIS_SUPPORT_NDIS620
    NetBufferListCorrelationId,
    NetBufferListFilteringInfo,
    MediaSpecificInformationEx,
    NblOriginalInterfaceIfIndex,
    NblReAuthWfpFlowContext = NblOriginalInterfaceIfIndex,
    TcpReceiveBytesTransferred,
    NrtNameResolutionId = TcpReceiveBytesTransferred,
#if NDIS_SUPPORT_NDIS684
    UdpRecvSegCoalesceOffloadInfo = TcpReceiveBytesTransferred,
#endif
#if NDIS_SUPPORT_NDIS630
#if NDISEMU_64BIT_ENUMS
    SwitchForwardingReserved,
    SwitchForwardingDetail,
    VirtualSubnetInfo,
#endif
    IMReserved,
    TcpRecvSegCoalesceInfo,
#if NDIS_SUPPORT_NDIS683
    UdpSegmentationOffloadInfo = TcpRecvSegCoalesceInfo,
#endif
    RscTcpTimestampDelta,
    TcpSendOffloadsSupplementalNetBufferListInfo = RscTcpTimestampDelta,
#if NDIS_SUPPORT_NDIS650
#if NDISEMU_64BIT_ENUMS
    GftOffloadInformation,
    GftFlowEntryId,
#endif
#if NDIS_SUPPORT_NDIS680
#if NDISEMU_WIN64
    NetBufferListInfoReserved3,
#else
    NetBufferListInfoReserved3,
    NetBufferListInfoReserved4,
#endif
#endif /* 680 */
#endif /* 650 */
#endif /* 630 */
#endif /* 620 */
#if NDIS_SUPPORT_NDIS682
#if !NDISEMU_64BIT_ENUMS
    /* 32-bit only, appended so that the older indices never move. */
    SwitchForwardingReserved,
    SwitchForwardingDetail_b0_to_b31,
    SwitchForwardingDetail_b32_to_b63,
    VirtualSubnetInfo,
#endif
#endif
#if NDIS_WRAPPER == 1
    NetBufferListInfoReserved1,
    NetBufferListInfoReserved2,
#endif
    MaxNetBufferListInfo
} NDIS_NET_BUFFER_LIST_INFO;

/* ---- nbl.h ------------------------------------------------------------- */

typedef struct _NET_BUFFER NET_BUFFER;
typedef struct _NET_BUFFER_LIST_CONTEXT NET_BUFFER_LIST_CONTEXT;
typedef struct _NET_BUFFER_LIST NET_BUFFER_LIST;

/*
 * The legacy names (NDIS_INCLUDE_LEGACY_NAMES, on by default in abi.h): the
 * headers keep NET_BUFFER_DATA, NET_BUFFER_HEADER, NET_BUFFER_LIST_DATA and
 * NET_BUFFER_LIST_HEADER, and the NetBufferHeader / NetBufferListHeader
 * members that overlay the first NB/NBL bytes, for source compatibility.
 * C reaches their inner members through MSVC's tagged anonymous members
 * (`NET_BUFFER_DATA;` inside NET_BUFFER_HEADER), C++ through the names
 * NetBufferData, NbDataLength and NetBufferListData; ndis.sys's symbols
 * (C++) list the latter.  Each legacy type below declares both at the same
 * offsets: the C++-named member and, beside it in a union, the same members
 * anonymous, so one declaration gives every name either language sees.
 */

/* NET_BUFFER_DATA's members, which NET_BUFFER repeats anonymously (and
 * NET_BUFFER_HEADER, in C).  `length_alias` adds a member to the
 * DataLength union: NET_BUFFER_DATA's C++ name for it. */
#define NDISEMU_NET_BUFFER_DATA_MEMBERS(length_alias) \
    NDISEMU_PTR(NET_BUFFER) Next;                     \
    NDISEMU_PTR(MDL) CurrentMdl;                      \
    ULONG CurrentMdlOffset;                           \
    union {                                           \
        ULONG DataLength;                             \
        SIZE_T stDataLength;                          \
        length_alias                                  \
    };                                                \
    NDISEMU_PTR(MDL) MdlChain;                        \
    ULONG DataOffset;

#if NDIS_INCLUDE_LEGACY_NAMES
typedef union _NET_BUFFER_DATA_LENGTH {
    ULONG DataLength;
    SIZE_T stDataLength;
} NET_BUFFER_DATA_LENGTH;

typedef struct _NET_BUFFER_DATA {
    NDISEMU_NET_BUFFER_DATA_MEMBERS(NET_BUFFER_DATA_LENGTH NbDataLength;)
} NET_BUFFER_DATA;

typedef union _NET_BUFFER_HEADER {
    struct { NDISEMU_NET_BUFFER_DATA_MEMBERS() };     /* C: NET_BUFFER_DATA; */
    SLIST_HEADER Link;
    NET_BUFFER_DATA NetBufferData;                    /* C++ */
    NDISEMU_LAYOUT_FROM_COMPILER
} NET_BUFFER_HEADER;
#endif

/* Gated on NDIS 6.20 in the headers; declared for every view here so that
 * `ndisemu layout` reports the same struct set everywhere.  Only the NB's
 * SharedMemoryInfo member below keeps the 6.20 gate. */
typedef struct _NET_BUFFER_SHARED_MEMORY NET_BUFFER_SHARED_MEMORY;
struct _NET_BUFFER_SHARED_MEMORY {
    NDISEMU_PTR(NET_BUFFER_SHARED_MEMORY) NextSharedMemorySegment;
    ULONG SharedMemoryFlags;
    NDIS_HANDLE SharedMemoryHandle;
    ULONG SharedMemoryOffset;
    ULONG SharedMemoryLength;
};

struct _NET_BUFFER {
    union {
        struct { NDISEMU_NET_BUFFER_DATA_MEMBERS() };
        SLIST_HEADER Link;
#if NDIS_INCLUDE_LEGACY_NAMES
        NET_BUFFER_HEADER NetBufferHeader;
#endif
    };
    USHORT ChecksumBias;
    USHORT Reserved;
    NDIS_HANDLE NdisPoolHandle;
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID NdisReserved[2];
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID ProtocolReserved[6];
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID MiniportReserved[4];
    PHYSICAL_ADDRESS DataPhysicalAddress;
#if NDIS_SUPPORT_NDIS620
    union {
        NDISEMU_PTR(NET_BUFFER_SHARED_MEMORY) SharedMemoryInfo;
        NDISEMU_PTR(struct _SCATTER_GATHER_LIST) ScatterGatherList;
    };
#endif
    NDISEMU_LAYOUT_FROM_COMPILER
};

struct _NET_BUFFER_LIST_CONTEXT {
    NDISEMU_PTR(NET_BUFFER_LIST_CONTEXT) Next;
    USHORT Size;
    USHORT Offset;
    NDISEMU_LAYOUT_FROM_COMPILER
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) UCHAR ContextData[];
};

/* NET_BUFFER_LIST_DATA's members, which NET_BUFFER_LIST repeats
 * anonymously (and NET_BUFFER_LIST_HEADER, in C). */
#define NDISEMU_NET_BUFFER_LIST_DATA_MEMBERS          \
    NDISEMU_PTR(NET_BUFFER_LIST) Next;                \
    NDISEMU_PTR(NET_BUFFER) FirstNetBuffer;

#if NDIS_INCLUDE_LEGACY_NAMES
typedef struct _NET_BUFFER_LIST_DATA {
    NDISEMU_NET_BUFFER_LIST_DATA_MEMBERS
} NET_BUFFER_LIST_DATA;

typedef union _NET_BUFFER_LIST_HEADER {
    struct { NDISEMU_NET_BUFFER_LIST_DATA_MEMBERS };  /* C: NET_BUFFER_LIST_DATA; */
    SLIST_HEADER Link;
    NET_BUFFER_LIST_DATA NetBufferListData;           /* C++ */
    NDISEMU_LAYOUT_FROM_COMPILER
} NET_BUFFER_LIST_HEADER;
#endif

struct _NET_BUFFER_LIST {
    union {
        struct { NDISEMU_NET_BUFFER_LIST_DATA_MEMBERS };
        SLIST_HEADER Link;
#if NDIS_INCLUDE_LEGACY_NAMES
        NET_BUFFER_LIST_HEADER NetBufferListHeader;
#endif
    };
    NDISEMU_PTR(NET_BUFFER_LIST_CONTEXT) Context;
    NDISEMU_PTR(NET_BUFFER_LIST) ParentNetBufferList;
    NDIS_HANDLE NdisPoolHandle;
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID NdisReserved[2];
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID ProtocolReserved[4];
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID MiniportReserved[2];
    PVOID Scratch;
    NDIS_HANDLE SourceHandle;
    ULONG NblFlags;
    LONG ChildRefCount;
    ULONG Flags;
    union {
        NDIS_STATUS Status;
        ULONG NdisReserved2;
    };
    PVOID NetBufferListInfo[NDISEMU_ENUM_LEN(MaxNetBufferListInfo)];
    NDISEMU_LAYOUT_FROM_COMPILER
};

/* NET_BUFFER_LIST::Flags.  Bits 0x3 went to protocols in NDIS 6.30. */
#if NDIS_SUPPORT_NDIS630
#define NBL_FLAGS_PROTOCOL_RESERVED     0xFFF00003
#define NBL_FLAGS_MINIPORT_RESERVED     0x0000F000
#define NBL_FLAGS_SCRATCH               0x000F0000
#define NBL_FLAGS_NDIS_RESERVED         0x00000FFC
#else
#define NBL_FLAGS_PROTOCOL_RESERVED     0xFFF00000
#define NBL_FLAGS_MINIPORT_RESERVED     0x0000F000
#define NBL_FLAGS_SCRATCH               0x000F0000
#define NBL_FLAGS_NDIS_RESERVED         0x00000FFF
#endif

/* NET_BUFFER_LIST::NblFlags.  Bits 0x04-0x80 are NDIS's own. */
#define NDIS_NBL_FLAGS_SEND_READ_ONLY   0x00000001
#define NDIS_NBL_FLAGS_RECV_READ_ONLY   0x00000002
#if NDIS_SUPPORT_NDIS61
#define NDIS_NBL_FLAGS_HD_SPLIT         0x00000100
#define NDIS_NBL_FLAGS_IS_IPV4          0x00000200
#define NDIS_NBL_FLAGS_IS_IPV6          0x00000400
#define NDIS_NBL_FLAGS_IS_TCP           0x00000800
#define NDIS_NBL_FLAGS_IS_UDP           0x00001000
#define NDIS_NBL_FLAGS_SPLIT_AT_UPPER_LAYER_PROTOCOL_HEADER  0x00002000
#define NDIS_NBL_FLAGS_SPLIT_AT_UPPER_LAYER_PROTOCOL_PAYLOAD 0x00004000
#endif
#define NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET 0x00008000
#if NDIS_SUPPORT_NDIS682
#define NDIS_NBL_FLAGS_CAPTURE_TIMESTAMP_ON_TRANSMIT 0x00010000
#endif

/* ---- nblapi.h: pools, clones ------------------------------------------- */

typedef struct _NET_BUFFER_LIST_POOL_PARAMETERS {
    NDIS_OBJECT_HEADER Header;
    UCHAR ProtocolId;
    BOOLEAN fAllocateNetBuffer;
    USHORT ContextSize;
    ULONG PoolTag;
    ULONG DataSize;
    ULONG Flags;                        /* revision 2 */
} NET_BUFFER_LIST_POOL_PARAMETERS;

typedef struct _NET_BUFFER_POOL_PARAMETERS {
    NDIS_OBJECT_HEADER Header;
    ULONG PoolTag;
    ULONG DataSize;
    ULONG Flags;                        /* revision 2 */
} NET_BUFFER_POOL_PARAMETERS;

#define RTL_SIZEOF_THROUGH_FIELD(T, F) (offsetof(T, F) + sizeof(((T *)0)->F))

#define NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 1
#define NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_2 2
#define NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 \
        RTL_SIZEOF_THROUGH_FIELD(NET_BUFFER_LIST_POOL_PARAMETERS, DataSize)
#define NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_2 \
        RTL_SIZEOF_THROUGH_FIELD(NET_BUFFER_LIST_POOL_PARAMETERS, Flags)
#define NET_BUFFER_LIST_POOL_FLAG_VERIFY 0x00000001

#define NET_BUFFER_POOL_PARAMETERS_REVISION_1 1
#define NET_BUFFER_POOL_PARAMETERS_REVISION_2 2
#define NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1 \
        RTL_SIZEOF_THROUGH_FIELD(NET_BUFFER_POOL_PARAMETERS, DataSize)
#define NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_2 \
        RTL_SIZEOF_THROUGH_FIELD(NET_BUFFER_POOL_PARAMETERS, Flags)
#define NET_BUFFER_POOL_FLAG_VERIFY     0x00000001

#define NDIS_CLONE_FLAGS_RESERVED       0x00000001
#define NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS 0x00000002

#define NDIS_PROTOCOL_ID_DEFAULT        0x00
#define NDIS_PROTOCOL_ID_TCP_IP         0x02
#define NDIS_PROTOCOL_ID_IPX            0x06
#define NDIS_PROTOCOL_ID_NBF            0x07
#define NDIS_PROTOCOL_ID_MAX            0x0F
#define NDIS_PROTOCOL_ID_MASK           0x0F

/* ---- per-NBL OOB information structures -------------------------------- */

typedef struct _NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO {
    union {
        struct {
            ULONG IsIPv4 : 1;
            ULONG IsIPv6 : 1;
            ULONG TcpChecksum : 1;
            ULONG UdpChecksum : 1;
            ULONG IpHeaderChecksum : 1;
            ULONG Reserved : 11;
            ULONG TcpHeaderOffset : 10;
        } Transmit;
        struct {
            ULONG TcpChecksumFailed : 1;
            ULONG UdpChecksumFailed : 1;
            ULONG IpChecksumFailed : 1;
            ULONG TcpChecksumSucceeded : 1;
            ULONG UdpChecksumSucceeded : 1;
            ULONG IpChecksumSucceeded : 1;
            ULONG Loopback : 1;
#if NDIS_SUPPORT_NDIS630
            ULONG TcpChecksumValueInvalid : 1;
            ULONG IpChecksumValueInvalid : 1;
#endif
        } Receive;
        PVOID Value;
    };
} NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO;

typedef struct _NDIS_NET_BUFFER_LIST_8021Q_INFO {
    union {
        struct {
            UINT32 UserPriority : 3;
            UINT32 CanonicalFormatId : 1;
            UINT32 VlanId : 12;
            UINT32 Reserved : 16;
        } TagHeader;
        struct {
            UINT32 UserPriority : 3;
            UINT32 CanonicalFormatId : 1;
            UINT32 VlanId : 12;
            UINT32 WMMInfo : 4;
            UINT32 Reserved : 12;
        } WLanTagHeader;
        PVOID Value;
    };
} NDIS_NET_BUFFER_LIST_8021Q_INFO;

#define NDIS_TCP_LARGE_SEND_OFFLOAD_V1_TYPE 0
#define NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE 1
#define NDIS_TCP_LARGE_SEND_OFFLOAD_IPv4    0
#define NDIS_TCP_LARGE_SEND_OFFLOAD_IPv6    1
#define NDIS_LARGE_SEND_OFFLOAD_MAX_HEADER_LENGTH 128

typedef struct _NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO {
    union {
        struct {
            ULONG Unused : 30;
            ULONG Type : 1;
            ULONG Reserved2 : 1;
        } Transmit;
        struct {
            ULONG MSS : 20;
            ULONG TcpHeaderOffset : 10;
            ULONG Type : 1;
            ULONG Reserved2 : 1;
        } LsoV1Transmit;
        struct {
            ULONG TcpPayload : 30;
            ULONG Type : 1;
            ULONG Reserved2 : 1;
        } LsoV1TransmitComplete;
        struct {
            ULONG MSS : 20;
            ULONG TcpHeaderOffset : 10;
            ULONG Type : 1;
            ULONG IPVersion : 1;
        } LsoV2Transmit;
        struct {
            ULONG Reserved : 30;
            ULONG Type : 1;
            ULONG Reserved2 : 1;
        } LsoV2TransmitComplete;
        PVOID Value;
    };
} NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO;

/* ---- statuses and send/receive flags ----------------------------------- */

/* Typed as the WDK types them in driver code (abi.h, NDISEMU_NDIS_STATUS). */

#define NDIS_STATUS_SUCCESS             NDISEMU_NDIS_STATUS(0x00000000)
#define NDIS_STATUS_PENDING             NDISEMU_NDIS_STATUS(0x00000103)
#define NDIS_STATUS_FAILURE             NDISEMU_NDIS_STATUS(0xC0000001)
#define NDIS_STATUS_INVALID_PARAMETER   NDISEMU_NDIS_STATUS(0xC000000D)
#define NDIS_STATUS_RESOURCES           NDISEMU_NDIS_STATUS(0xC000009A)
#define NDIS_STATUS_INVALID_LENGTH      NDISEMU_NDIS_STATUS(0xC0010014)
#define NDIS_STATUS_RESET_IN_PROGRESS   NDISEMU_NDIS_STATUS(0xC001000D)
#define NDIS_STATUS_SEND_ABORTED        NDISEMU_NDIS_STATUS(0xC023000C)
#define NDIS_STATUS_PAUSED              NDISEMU_NDIS_STATUS(0xC023002A)

#define NDIS_SEND_FLAGS_DISPATCH_LEVEL          0x00000001
#define NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK      0x00000002
#define NDIS_SEND_FLAGS_SINGLE_QUEUE            0x00000004
#define NDIS_SEND_FLAGS_SWITCH_DESTINATION_GROUP 0x00000010
#define NDIS_SEND_FLAGS_SWITCH_SINGLE_SOURCE    0x00000020
#define NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL 0x00000001
#define NDIS_SEND_COMPLETE_FLAGS_SINGLE_QUEUE   0x00000002
#define NDIS_SEND_COMPLETE_FLAGS_SWITCH_SINGLE_SOURCE 0x00000004
#define NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL       0x00000001
#define NDIS_RECEIVE_FLAGS_RESOURCES            0x00000002
#define NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE    0x00000100
#define NDIS_RECEIVE_FLAGS_SINGLE_VLAN          0x00000200
#define NDIS_RECEIVE_FLAGS_PERFECT_FILTERED     0x00000400
#define NDIS_RECEIVE_FLAGS_SINGLE_QUEUE         0x00000800
#define NDIS_RECEIVE_FLAGS_SHARED_MEMORY_INFO_VALID 0x00001000
#define NDIS_RECEIVE_FLAGS_MORE_NBLS            0x00002000
#define NDIS_RECEIVE_FLAGS_SWITCH_DESTINATION_GROUP 0x00004000
#define NDIS_RECEIVE_FLAGS_SWITCH_SINGLE_SOURCE 0x00008000
#define NDIS_RETURN_FLAGS_DISPATCH_LEVEL        0x00000001
#define NDIS_RETURN_FLAGS_SINGLE_QUEUE          0x00000002
#define NDIS_RETURN_FLAGS_SWITCH_SINGLE_SOURCE  0x00000004

/* ---- RSS hash ------------------------------------------------------------ */

#define NDIS_HASH_FUNCTION_MASK         0x000000FF
#define NDIS_HASH_TYPE_MASK             0x00FFFF00
#define NdisHashFunctionToeplitz        0x00000001
#define NdisHashFunctionReserved1       0x00000002
#define NdisHashFunctionReserved2       0x00000004
#define NdisHashFunctionReserved3       0x00000008
#define NDIS_HASH_IPV4                  0x00000100
#define NDIS_HASH_TCP_IPV4              0x00000200
#define NDIS_HASH_IPV6                  0x00000400
#define NDIS_HASH_IPV6_EX               0x00000800
#define NDIS_HASH_TCP_IPV6              0x00001000
#define NDIS_HASH_TCP_IPV6_EX           0x00002000
#if NDIS_SUPPORT_NDIS680
#define NDIS_HASH_UDP_IPV4              0x00004000
#define NDIS_HASH_UDP_IPV6              0x00008000
#define NDIS_HASH_UDP_IPV6_EX           0x00010000
#endif

#define BUGCODE_NDIS_DRIVER             0x7C
#define BUGCODE_NDIS_DRIVER_LIVE_DUMP   0x15E
#define DRIVER_VERIFIER_DETECTED_VIOLATION 0xC4
#define PAGE_FAULT_IN_NONPAGED_AREA     0x50

#endif /* NDISEMU_NDIS_H */
