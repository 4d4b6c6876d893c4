/*
 * fwpsk.h - ndisemu's WDK-compatible <fwpsk.h>: the WFP calls that work on
 * NET_BUFFER_LISTs (clone, deep clone, allocate/free, reference).  Their
 * prototypes come with <ndis.h>; the unsuffixed names are macros for the
 * version-0 calls, as in the WDK.  Classify, injection (FwpsInject*,
 * FwpsConstructIpHeaderForTransportPacket), flow contexts and the stream
 * layer are not emulated and not declared.
 */
#ifndef NDISEMU_DRIVER_FWPSK_H
#define NDISEMU_DRIVER_FWPSK_H

#include "ndis.h"

/* What <fwpsk.h> brings from ws2def.h and ws2ipdef.h for packet parsers:
 * the address families and the IP protocol numbers. */
typedef USHORT ADDRESS_FAMILY;
#define AF_UNSPEC 0
#define AF_INET 2
#define AF_INET6 23
typedef enum {
    IPPROTO_HOPOPTS = 0,
    IPPROTO_ICMP = 1,
    IPPROTO_IGMP = 2,
    IPPROTO_GGP = 3,
    IPPROTO_IPV4 = 4,
    IPPROTO_ST = 5,
    IPPROTO_TCP = 6,
    IPPROTO_CBT = 7,
    IPPROTO_EGP = 8,
    IPPROTO_IGP = 9,
    IPPROTO_PUP = 12,
    IPPROTO_UDP = 17,
    IPPROTO_IDP = 22,
    IPPROTO_RDP = 27,
    IPPROTO_IPV6 = 41,
    IPPROTO_ROUTING = 43,
    IPPROTO_FRAGMENT = 44,
    IPPROTO_ESP = 50,
    IPPROTO_AH = 51,
    IPPROTO_ICMPV6 = 58,
    IPPROTO_NONE = 59,
    IPPROTO_DSTOPTS = 60,
    IPPROTO_ND = 77,
    IPPROTO_ICLFXBM = 78,
    IPPROTO_PIM = 103,
    IPPROTO_PGM = 113,
    IPPROTO_L2TP = 115,
    IPPROTO_SCTP = 132,
    IPPROTO_RAW = 255,
    IPPROTO_MAX = 256
} IPPROTO, *PIPPROTO;

FORCEINLINE NTSTATUS FwpsAllocateCloneNetBufferList0(NET_BUFFER_LIST *originalNetBufferList,
                                                     NDIS_HANDLE netBufferListPoolHandle,
                                                     NDIS_HANDLE netBufferPoolHandle,
                                                     ULONG allocateCloneFlags,
                                                     NET_BUFFER_LIST **netBufferList)
{
    NDISEMU_NBL_RESULT r = ndisemu_fwps_clone(originalNetBufferList, netBufferListPoolHandle,
                                              netBufferPoolHandle, allocateCloneFlags);
    *netBufferList = r.NetBufferList;
    return r.Status;
}

FORCEINLINE NTSTATUS FwpsAllocateDeepCloneNetBufferList0(NET_BUFFER_LIST *originalNetBufferList,
                                                         NDIS_HANDLE netBufferListPoolHandle,
                                                         NDIS_HANDLE netBufferPoolHandle,
                                                         NET_BUFFER_LIST **netBufferList)
{
    NDISEMU_NBL_RESULT r = ndisemu_fwps_deep_clone(originalNetBufferList,
                                                   netBufferListPoolHandle,
                                                   netBufferPoolHandle);
    *netBufferList = r.NetBufferList;
    return r.Status;
}

FORCEINLINE NTSTATUS FwpsAllocateNetBufferAndNetBufferList0(NDIS_HANDLE poolHandle,
                                                            USHORT contextSize,
                                                            USHORT contextBackFill,
                                                            MDL *mdlChain, ULONG dataOffset,
                                                            SIZE_T dataLength,
                                                            NET_BUFFER_LIST **netBufferList)
{
    NDISEMU_NBL_RESULT r = ndisemu_fwps_allocate_nbl(poolHandle, contextSize, contextBackFill,
                                                     mdlChain, dataOffset, dataLength);
    *netBufferList = r.NetBufferList;
    return r.Status;
}

#define FwpsAllocateCloneNetBufferList      FwpsAllocateCloneNetBufferList0
#define FwpsAllocateDeepCloneNetBufferList  FwpsAllocateDeepCloneNetBufferList0
#define FwpsFreeCloneNetBufferList          FwpsFreeCloneNetBufferList0
#define FwpsAllocateNetBufferAndNetBufferList FwpsAllocateNetBufferAndNetBufferList0
#define FwpsFreeNetBufferList               FwpsFreeNetBufferList0
#define FwpsReferenceNetBufferList          FwpsReferenceNetBufferList0
#define FwpsDereferenceNetBufferList        FwpsDereferenceNetBufferList0

#endif /* NDISEMU_DRIVER_FWPSK_H */
