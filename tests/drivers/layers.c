/*
 * layers.c - a filter, a miniport and a protocol written as NDIS drivers
 * write them, for the emulated binding: each handler takes its driver's
 * context first and makes the binding's calls (NdisFSendNetBufferLists,
 * NdisMSendNetBufferListsComplete, ...) with the handle its attach routine
 * stored.  FILTER_BUG selects a filter that breaks an ownership rule.
 */
#include <ndis.h>

/* ---- the filter ------------------------------------------------------------ */

enum { FILTER_PASSES, FILTER_COMPLETES_WHAT_IT_SENT, FILTER_FREES_WHAT_IT_SENT };

typedef struct _FILTER_CONTEXT {
    NDIS_HANDLE FilterHandle;
    ULONG Bug;
    ULONG Sent, Completed, Received, Returned, Cancelled;
} FILTER_CONTEXT;

static FILTER_CONTEXT filter;

PVOID filter_context(void) { return &filter; }

VOID filter_attach(PVOID FilterModuleContext, NDIS_HANDLE FilterHandle, ULONG Bug)
{
    FILTER_CONTEXT *f = FilterModuleContext;
    NdisZeroMemory(f, sizeof *f);
    f->FilterHandle = FilterHandle;
    f->Bug = Bug;
}

ULONG filter_count(PVOID FilterModuleContext, ULONG Which)
{
    FILTER_CONTEXT *f = FilterModuleContext;
    ULONG counts[5] = { f->Sent, f->Completed, f->Received, f->Returned, f->Cancelled };
    return Which < 5 ? counts[Which] : 0;
}

static ULONG chain_length(PNET_BUFFER_LIST NetBufferLists)
{
    ULONG n = 0;
    for (; NetBufferLists; NetBufferLists = NET_BUFFER_LIST_NEXT_NBL(NetBufferLists))
        n++;
    return n;
}

VOID FilterSendNetBufferLists(NDIS_HANDLE FilterModuleContext, PNET_BUFFER_LIST NetBufferLists,
                              NDIS_PORT_NUMBER PortNumber, ULONG SendFlags)
{
    FILTER_CONTEXT *f = FilterModuleContext;
    f->Sent += chain_length(NetBufferLists);
    NdisFSendNetBufferLists(f->FilterHandle, NetBufferLists, PortNumber, SendFlags);
    if (f->Bug == FILTER_COMPLETES_WHAT_IT_SENT)    /* it belongs to the miniport now */
        NdisFSendNetBufferListsComplete(f->FilterHandle, NetBufferLists, 0);
    else if (f->Bug == FILTER_FREES_WHAT_IT_SENT)
        NdisFreeNetBufferList(NetBufferLists);
}

VOID FilterSendNetBufferListsComplete(NDIS_HANDLE FilterModuleContext,
                                      PNET_BUFFER_LIST NetBufferLists, ULONG SendCompleteFlags)
{
    FILTER_CONTEXT *f = FilterModuleContext;
    f->Completed += chain_length(NetBufferLists);
    NdisFSendNetBufferListsComplete(f->FilterHandle, NetBufferLists, SendCompleteFlags);
}

VOID FilterReceiveNetBufferLists(NDIS_HANDLE FilterModuleContext,
                                 PNET_BUFFER_LIST NetBufferLists, NDIS_PORT_NUMBER PortNumber,
                                 ULONG NumberOfNetBufferLists, ULONG ReceiveFlags)
{
    FILTER_CONTEXT *f = FilterModuleContext;
    f->Received += NumberOfNetBufferLists;
    NdisFIndicateReceiveNetBufferLists(f->FilterHandle, NetBufferLists, PortNumber,
                                       NumberOfNetBufferLists, ReceiveFlags);
}

VOID FilterReturnNetBufferLists(NDIS_HANDLE FilterModuleContext,
                                PNET_BUFFER_LIST NetBufferLists, ULONG ReturnFlags)
{
    FILTER_CONTEXT *f = FilterModuleContext;
    f->Returned += chain_length(NetBufferLists);
    NdisFReturnNetBufferLists(f->FilterHandle, NetBufferLists, ReturnFlags);
}

/* Cancels pass through, counted: the filter holds no sends of its own. */
VOID FilterCancelSendNetBufferLists(NDIS_HANDLE FilterModuleContext, PVOID CancelId)
{
    FILTER_CONTEXT *f = FilterModuleContext;
    f->Cancelled++;
    NdisFCancelSendNetBufferLists(f->FilterHandle, CancelId);
}

/* A cancel ID as a driver makes one: NdisGeneratePartialCancelId's byte on
 * top, its own counter below; the NBL marked with it. */
ULONG_PTR mark_for_cancel(PNET_BUFFER_LIST NetBufferList, ULONG Low)
{
    ULONG_PTR id = ((ULONG_PTR)NdisGeneratePartialCancelId() << 24) | (Low & 0xFFFFFF);
    NDIS_SET_NET_BUFFER_LIST_CANCEL_ID(NetBufferList, id);
    return (ULONG_PTR)NDIS_GET_NET_BUFFER_LIST_CANCEL_ID(NetBufferList);
}

/* ---- the miniport: completes every send, indicates frames it builds ---------- */

typedef struct _ADAPTER {
    NDIS_HANDLE MiniportAdapterHandle;
    NDIS_HANDLE NblPool;
    ULONG Indicated, Returned;
} ADAPTER;

static ADAPTER adapter;

PVOID adapter_context(void) { return &adapter; }

NDIS_STATUS adapter_attach(PVOID MiniportAdapterContext, NDIS_HANDLE MiniportAdapterHandle)
{
    ADAPTER *a = MiniportAdapterContext;
    NET_BUFFER_LIST_POOL_PARAMETERS params;
    NdisZeroMemory(a, sizeof *a);
    a->MiniportAdapterHandle = MiniportAdapterHandle;
    NdisZeroMemory(&params, sizeof params);
    params.Header.Type = NDIS_OBJECT_TYPE_DEFAULT;
    params.Header.Revision = NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    params.Header.Size = NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    params.fAllocateNetBuffer = TRUE;
    params.PoolTag = 'pniM';
    a->NblPool = NdisAllocateNetBufferListPool(NULL, &params);
    return a->NblPool ? NDIS_STATUS_SUCCESS : NDIS_STATUS_RESOURCES;
}

VOID adapter_detach(PVOID MiniportAdapterContext)
{
    ADAPTER *a = MiniportAdapterContext;
    NdisFreeNetBufferListPool(a->NblPool);
}

VOID MiniportSendNetBufferLists(NDIS_HANDLE MiniportAdapterContext,
                                PNET_BUFFER_LIST NetBufferLists, NDIS_PORT_NUMBER PortNumber,
                                ULONG SendFlags)
{
    ADAPTER *a = MiniportAdapterContext;
    PNET_BUFFER_LIST nbl;
    UNREFERENCED_PARAMETER(PortNumber);
    for (nbl = NetBufferLists; nbl; nbl = NET_BUFFER_LIST_NEXT_NBL(nbl))
        NET_BUFFER_LIST_STATUS(nbl) = NDIS_STATUS_SUCCESS;
    NdisMSendNetBufferListsComplete(a->MiniportAdapterHandle, NetBufferLists,
                                    NDIS_TEST_SEND_AT_DISPATCH_LEVEL(SendFlags)
                                        ? NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL : 0);
}

/* A received frame of `Length` bytes filled with `Fill`, indicated up: the
 * NBL, its MDL and its buffer are the miniport's until they come back. */
NDIS_STATUS adapter_receive(PVOID MiniportAdapterContext, ULONG Length, UCHAR Fill)
{
    ADAPTER *a = MiniportAdapterContext;
    PUCHAR data = NdisAllocateMemoryWithTagPriority(a->MiniportAdapterHandle, Length, 'pniM',
                                                    NormalPoolPriority);
    PMDL mdl;
    PNET_BUFFER_LIST nbl;
    if (!data)
        return NDIS_STATUS_RESOURCES;
    NdisFillMemory(data, Length, Fill);
    mdl = NdisAllocateMdl(a->MiniportAdapterHandle, data, Length);
    nbl = mdl ? NdisAllocateNetBufferAndNetBufferList(a->NblPool, 0, 0, mdl, 0, Length) : NULL;
    if (!nbl) {
        if (mdl)
            NdisFreeMdl(mdl);
        NdisFreeMemory(data, 0, 0);
        return NDIS_STATUS_RESOURCES;
    }
    nbl->SourceHandle = a->MiniportAdapterHandle;
    a->Indicated++;
    NdisMIndicateReceiveNetBufferLists(a->MiniportAdapterHandle, nbl, NDIS_DEFAULT_PORT_NUMBER,
                                       1, 0);
    return NDIS_STATUS_SUCCESS;
}

VOID MiniportReturnNetBufferLists(NDIS_HANDLE MiniportAdapterContext,
                                  PNET_BUFFER_LIST NetBufferLists, ULONG ReturnFlags)
{
    ADAPTER *a = MiniportAdapterContext;
    PNET_BUFFER_LIST nbl = NetBufferLists, next;
    UNREFERENCED_PARAMETER(ReturnFlags);
    for (; nbl; nbl = next) {
        PMDL mdl = NET_BUFFER_FIRST_MDL(NET_BUFFER_LIST_FIRST_NB(nbl));
        PVOID data = MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority);
        next = NET_BUFFER_LIST_NEXT_NBL(nbl);
        NET_BUFFER_LIST_NEXT_NBL(nbl) = NULL;
        NdisFreeNetBufferList(nbl);
        NdisFreeMdl(mdl);
        NdisFreeMemory(data, 0, 0);
        a->Returned++;
    }
}

ULONG adapter_count(PVOID MiniportAdapterContext, ULONG Which)
{
    ADAPTER *a = MiniportAdapterContext;
    return Which == 0 ? a->Indicated : a->Returned;
}
