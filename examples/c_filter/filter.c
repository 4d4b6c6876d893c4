/*
 * filter.c - the send path of a lightweight filter that sends a clone of
 * every NBL on a second path (port 1) and completes the original to the
 * protocol only when the clone's send completes, written as NDIS 6 filters
 * are.  Two classic bugs behind macros:
 *
 *   BUG_COMPLETES_PARENT_EARLY  the original is completed as soon as its
 *                               clone is sent, while the clone still uses it
 *   BUG_LOSES_STATUS            the clone's completion status is not copied
 *                               to the original
 */
#include <ndis.h>

#define FILTER_TAG 'tliF'
#define CLONE_PORT 1

typedef struct _FILTER_CONTEXT {
    NDIS_HANDLE FilterHandle;          /* from FilterAttach */
    NDIS_HANDLE ClonePool;             /* the NBLs of this filter's clones */
    LONG ClonesOutstanding;
} FILTER_CONTEXT, *PFILTER_CONTEXT;

static FILTER_CONTEXT Filter;

/* What FilterAttach would do: keep the handle, allocate the clone pool. */
PVOID FilterAttachContext(NDIS_HANDLE FilterHandle)
{
    NET_BUFFER_LIST_POOL_PARAMETERS params;
    NdisZeroMemory(&Filter, sizeof Filter);
    NdisZeroMemory(&params, sizeof params);
    params.Header.Type = NDIS_OBJECT_TYPE_DEFAULT;
    params.Header.Revision = NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    params.Header.Size = NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    params.PoolTag = FILTER_TAG;
    Filter.FilterHandle = FilterHandle;
    Filter.ClonePool = NdisAllocateNetBufferListPool(FilterHandle, &params);
    return Filter.ClonePool ? &Filter : NULL;
}

/* What FilterDetach would do. */
LONG FilterDetachContext(PVOID FilterModuleContext)
{
    PFILTER_CONTEXT filter = FilterModuleContext;
    NdisFreeNetBufferListPool(filter->ClonePool);
    return filter->ClonesOutstanding;
}

VOID FilterSendNetBufferLists(NDIS_HANDLE FilterModuleContext, PNET_BUFFER_LIST NetBufferLists,
                              NDIS_PORT_NUMBER PortNumber, ULONG SendFlags)
{
    PFILTER_CONTEXT filter = FilterModuleContext;
    ULONG completeFlags = NDIS_TEST_SEND_AT_DISPATCH_LEVEL(SendFlags)
                              ? NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL : 0;
    PNET_BUFFER_LIST nbl, next, clones = NULL, *tail = &clones;
    UNREFERENCED_PARAMETER(PortNumber);

    for (nbl = NetBufferLists; nbl != NULL; nbl = next) {
        PNET_BUFFER_LIST clone;
        next = NET_BUFFER_LIST_NEXT_NBL(nbl);
        NET_BUFFER_LIST_NEXT_NBL(nbl) = NULL;

        clone = NdisAllocateCloneNetBufferList(nbl, filter->ClonePool, NULL, 0);
        if (clone == NULL) {
            /* out of resources: this send fails, the others go on */
            NET_BUFFER_LIST_STATUS(nbl) = NDIS_STATUS_RESOURCES;
            NdisFSendNetBufferListsComplete(filter->FilterHandle, nbl, completeFlags);
            continue;
        }
        /* An NDIS clone's caller links it to its parent itself. */
        clone->ParentNetBufferList = nbl;
        InterlockedIncrement(&nbl->ChildRefCount);
        clone->SourceHandle = filter->FilterHandle;
        InterlockedIncrement(&filter->ClonesOutstanding);
        *tail = clone;
        tail = &NET_BUFFER_LIST_NEXT_NBL(clone);
#ifdef BUG_COMPLETES_PARENT_EARLY
        NdisFSendNetBufferListsComplete(filter->FilterHandle, nbl, completeFlags);
#endif
    }
    if (clones != NULL)
        NdisFSendNetBufferLists(filter->FilterHandle, clones, CLONE_PORT, SendFlags);
}

VOID FilterSendNetBufferListsComplete(NDIS_HANDLE FilterModuleContext,
                                      PNET_BUFFER_LIST NetBufferLists, ULONG SendCompleteFlags)
{
    PFILTER_CONTEXT filter = FilterModuleContext;
    PNET_BUFFER_LIST clone, next;

    /* Only this filter's own clones come back to it: their parents it
     * kept, and completes now. */
    for (clone = NetBufferLists; clone != NULL; clone = next) {
        PNET_BUFFER_LIST parent = clone->ParentNetBufferList;
        next = NET_BUFFER_LIST_NEXT_NBL(clone);
        NET_BUFFER_LIST_NEXT_NBL(clone) = NULL;
#ifndef BUG_LOSES_STATUS
        NET_BUFFER_LIST_STATUS(parent) = NET_BUFFER_LIST_STATUS(clone);
#endif
        NdisFreeCloneNetBufferList(clone, 0);
        InterlockedDecrement(&parent->ChildRefCount);
        InterlockedDecrement(&filter->ClonesOutstanding);
        NdisFSendNetBufferListsComplete(filter->FilterHandle, parent, SendCompleteFlags);
    }
}
