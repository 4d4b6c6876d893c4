/*
 * fwpsk.h - ndisemu's WDK-compatible <fwpsk.h>: the WFP calls that work on
 * NET_BUFFER_LISTs (clone, deep clone, allocate/free, reference).  Their
 * prototypes come with <ndis.h>; the unsuffixed names are macros for the
 * version-0 calls, as in the WDK.
 */
#ifndef NDISEMU_DRIVER_FWPSK_H
#define NDISEMU_DRIVER_FWPSK_H

#include "ndis.h"

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
