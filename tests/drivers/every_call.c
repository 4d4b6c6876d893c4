/*
 * every_call.c - a test driver that makes every call and uses every macro
 * ndisemu's <ndis.h> and <fwpsk.h> declare, once, the way driver code writes
 * them, and frees everything it allocated.  Built with -Wall -Wextra -Werror.
 *
 * Each step returns its number on failure, 0 when all passed, so a test
 * names the first call that misbehaved.
 */
#include <ndis.h>
#include <fwpsk.h>

#define TAG 'tseT'
#define CHECK(step, condition) do { if (!(condition)) return (step); } while (0)

typedef struct _RECEIVE_RECORD {
    ULONG Cookie;
    NET_BUFFER_LIST *Nbl;
} RECEIVE_RECORD;

static ULONG allocated_by_handler;

static _Function_class_(NET_BUFFER_ALLOCATE_MDL) MDL *allocate_mdl(_Inout_ ULONG *BufferSize)
{
    PVOID buffer = NdisAllocateMemoryWithTagPriority(NULL, *BufferSize, TAG, NormalPagePriority);
    MDL *mdl;
    if (!buffer)
        return NULL;
    mdl = NdisAllocateMdl(NULL, buffer, *BufferSize);
    if (!mdl) {
        NdisFreeMemoryWithTagPriority(NULL, buffer, TAG);
        return NULL;
    }
    allocated_by_handler++;
    return mdl;
}

static _Function_class_(NET_BUFFER_FREE_MDL) VOID free_mdl(_In_ MDL *Mdl)
{
    PVOID buffer = MmGetMdlVirtualAddress(Mdl);
    NdisFreeMdl(Mdl);
    NdisFreeMemoryWithTagPriority(NULL, buffer, TAG);
    allocated_by_handler--;
}

static ULONG memory_and_mdls(void)
{
    PUCHAR buffer, va;
    PVOID other;
    MDL *mdl, *io, *next;
    ULONG length, offset;
    UCHAR storage[sizeof(MDL) + 4 * sizeof(PFN_NUMBER)];

    buffer = NdisAllocateMemoryWithTagPriority(NULL, 64, TAG, NormalPagePriority);
    CHECK(101, buffer != NULL);
    RtlFillMemory(buffer, 64, 0xAB);
    CHECK(102, NdisAllocateMemoryWithTag(&other, 16, TAG) == NDIS_STATUS_SUCCESS);
    NdisFreeMemory(other, 16, 0);
    other = ExAllocatePoolWithTag(NonPagedPoolNx, 24, TAG);
    CHECK(103, other != NULL);
    ExFreePoolWithTag(other, TAG);
    other = ExAllocatePool(NonPagedPool, 8);
    CHECK(104, other != NULL);
    ExFreePool(other);

    mdl = NdisAllocateMdl(NULL, buffer, 64);
    CHECK(105, mdl != NULL && MmGetMdlByteCount(mdl) == 64);
    CHECK(106, MmGetMdlVirtualAddress(mdl) == buffer);
    CHECK(107, MmGetMdlByteOffset(mdl) == BYTE_OFFSET(buffer));
    NdisQueryMdl(mdl, &va, &length, NormalPagePriority | MdlMappingNoExecute);
    CHECK(108, va == buffer && length == 64);
    NdisQueryMdlOffset(mdl, &offset, &length);
    CHECK(109, offset == BYTE_OFFSET(buffer) && length == 64);
    NdisAdjustMdlLength(mdl, 32);
    CHECK(110, MmGetMdlByteCount(mdl) == 32);
    NdisAdjustMdlLength(mdl, 64);

    io = IoAllocateMdl(buffer + 16, 16, FALSE, FALSE, NULL);
    CHECK(111, io != NULL && (io->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA) == 0);
    MmBuildMdlForNonPagedPool(io);
    CHECK(112, MmGetSystemAddressForMdlSafe(io, HighPagePriority) == buffer + 16);
    CHECK(113, MmGetMdlPfnArray(io)[0] != 0);
    MmInitializeMdl(io, buffer + 20, 8);
    CHECK(114, MmGetMdlByteCount(io) == 8 && MmSizeOfMdl(buffer, 8) >= sizeof(MDL));
    NDIS_MDL_LINKAGE(mdl) = io;
    NdisGetNextMdl(mdl, &next);
    CHECK(115, next == io);
    NDIS_MDL_LINKAGE(mdl) = NULL;
    IoFreeMdl(io);
    NdisFreeMdl(mdl);
    NdisFreeMemoryWithTagPriority(NULL, buffer, TAG);
    UNREFERENCED_PARAMETER(storage);
    return 0;
}

static ULONG pools_and_nbls(NDIS_HANDLE nbl_pool, NDIS_HANDLE nb_pool)
{
    NET_BUFFER_POOL_PARAMETERS data_params;
    NDIS_HANDLE data_pool;
    NET_BUFFER_LIST *nbl;
    NET_BUFFER *nb, *extra;
    PUCHAR context;

    nbl = NdisAllocateNetBufferList(nbl_pool, 16, 16);
    CHECK(201, nbl != NULL && NET_BUFFER_LIST_FIRST_NB(nbl) != NULL);
    CHECK(202, NdisGetPoolFromNetBufferList(nbl) == nbl_pool);
    CHECK(203, NET_BUFFER_LIST_CONTEXT_DATA_SIZE(nbl) == 32);
    context = NET_BUFFER_LIST_CONTEXT_DATA_START(nbl);
    RtlZeroMemory(context, 16);
    CHECK(204, NdisAllocateNetBufferListContext(nbl, 8, 0, TAG) == NDIS_STATUS_SUCCESS);
    CHECK(205, NET_BUFFER_LIST_CONTEXT_DATA_START(nbl) == context - 8);
    NdisFreeNetBufferListContext(nbl, 8);

    NdisSetNblFlag(nbl, NDIS_NBL_FLAGS_IS_IPV4);
    CHECK(206, NdisTestNblFlag(nbl, NDIS_NBL_FLAGS_IS_IPV4));
    CHECK(207, NdisTestNblFlags(nbl, NDIS_NBL_FLAGS_IS_IPV4));
    NdisClearNblFlag(nbl, NDIS_NBL_FLAGS_IS_IPV4);
    CHECK(208, NET_BUFFER_LIST_NBL_FLAGS(nbl) == 0);
    NBL_SET_FLAG(nbl, NBL_FLAGS_SCRATCH);
    CHECK(209, NBL_TEST_FLAG(nbl, NBL_FLAGS_SCRATCH));
    NBL_CLEAR_FLAG(nbl, NBL_FLAGS_SCRATCH);
    CHECK(210, NET_BUFFER_LIST_FLAGS(nbl) == 0);
    NET_BUFFER_LIST_STATUS(nbl) = NDIS_STATUS_SUCCESS;
    NET_BUFFER_LIST_SET_HASH_VALUE(nbl, 0x1234);
    CHECK(211, NET_BUFFER_LIST_GET_HASH_VALUE(nbl) == 0x1234);
    CHECK(212, NET_BUFFER_LIST_GET_HASH_TYPE(nbl) == 0 &&
               NET_BUFFER_LIST_GET_HASH_FUNCTION(nbl) == 0);
    NdisSetNetBufferListProtocolId(nbl, NDIS_PROTOCOL_ID_TCP_IP);
    CHECK(213, NdisGetNetBufferListProtocolId(nbl) == NDIS_PROTOCOL_ID_TCP_IP);
    NET_BUFFER_LIST_MINIPORT_RESERVED(nbl)[0] = nbl;
    NET_BUFFER_LIST_PROTOCOL_RESERVED(nbl)[0] = NULL;

    extra = NdisAllocateNetBuffer(nb_pool, NULL, 0, 0);
    CHECK(214, extra != NULL && NdisGetPoolFromNetBuffer(extra) == nb_pool);
    NET_BUFFER_NEXT_NB(NET_BUFFER_LIST_FIRST_NB(nbl)) = extra;
    NET_BUFFER_NEXT_NB(NET_BUFFER_LIST_FIRST_NB(nbl)) = NULL;
    NdisFreeNetBuffer(extra);
    NdisFreeNetBufferList(nbl);

    RtlZeroMemory(&data_params, sizeof data_params);
    data_params.Header.Type = NDIS_OBJECT_TYPE_DEFAULT;
    data_params.Header.Revision = NET_BUFFER_POOL_PARAMETERS_REVISION_1;
    data_params.Header.Size = NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1;
    data_params.PoolTag = TAG;
    data_params.DataSize = 128;
    data_pool = NdisAllocateNetBufferPool(NULL, &data_params);
    CHECK(215, data_pool != NULL);
    nb = NdisAllocateNetBufferMdlAndData(data_pool);
    CHECK(216, nb != NULL && NET_BUFFER_DATA_LENGTH(nb) == 128 && NET_BUFFER_DATA_OFFSET(nb) == 0);
    CHECK(217, NET_BUFFER_CURRENT_MDL(nb) == NET_BUFFER_FIRST_MDL(nb) &&
               NET_BUFFER_CURRENT_MDL_OFFSET(nb) == 0);
    NET_BUFFER_CHECKSUM_BIAS(nb) = 0;
    NET_BUFFER_MINIPORT_RESERVED(nb)[0] = NULL;
    NET_BUFFER_PROTOCOL_RESERVED(nb)[0] = NULL;
    NdisFreeNetBuffer(nb);
    NdisFreeNetBufferPool(data_pool);
    return 0;
}

static ULONG data_space(NDIS_HANDLE nbl_pool, NDIS_HANDLE nb_pool, NET_BUFFER_LIST *orig)
{
    NET_BUFFER *nb = NET_BUFFER_LIST_FIRST_NB(orig), *copy_nb;
    NET_BUFFER_LIST *copy;
    UCHAR storage[16];
    PUCHAR bytes;
    ULONG copied;
    PVOID buffer;
    MDL *mdl;

    bytes = NdisGetDataBuffer(nb, 6, storage, 1, 0);          /* spans two MDLs: copied */
    CHECK(301, bytes == storage && bytes[0] == 'a' && bytes[5] == 'f');
    bytes = NdisGetDataBuffer(nb, 1, NULL, 1, 0);             /* contiguous: in place */
    CHECK(302, bytes != NULL && bytes[0] == 'a');

    CHECK(303, NdisRetreatNetBufferDataStart(nb, 14, 0, NULL) == NDIS_STATUS_SUCCESS);
    CHECK(304, NET_BUFFER_DATA_LENGTH(nb) == 14 + 10);
    NdisAdvanceNetBufferDataStart(nb, 14, TRUE, NULL);
    CHECK(305, NET_BUFFER_DATA_LENGTH(nb) == 10);
    CHECK(306, NdisRetreatNetBufferDataStart(nb, 20, 4, allocate_mdl) == NDIS_STATUS_SUCCESS);
    CHECK(307, allocated_by_handler == 1);
    NdisAdvanceNetBufferDataStart(nb, 20, TRUE, free_mdl);
    CHECK(308, allocated_by_handler == 0);
    CHECK(309, NdisRetreatNetBufferListDataStart(orig, 8, 0, allocate_mdl, free_mdl) ==
               NDIS_STATUS_SUCCESS);
    NdisAdvanceNetBufferListDataStart(orig, 8, TRUE, free_mdl);
    CHECK(310, allocated_by_handler == 0 && NET_BUFFER_DATA_LENGTH(nb) == 10);
    NdisAdjustNetBufferCurrentMdl(nb);

    buffer = NdisAllocateMemoryWithTagPriority(NULL, 32, TAG, NormalPagePriority);
    mdl = NdisAllocateMdl(NULL, buffer, 32);
    CHECK(311, buffer != NULL && mdl != NULL);
    copy = NdisAllocateNetBufferAndNetBufferList(nbl_pool, 0, 0, mdl, 0, 32);
    CHECK(312, copy != NULL);
    copy_nb = NET_BUFFER_LIST_FIRST_NB(copy);
    CHECK(313, NdisCopyFromNetBufferToNetBuffer(copy_nb, 0, 10, nb, 0, &copied) ==
               NDIS_STATUS_SUCCESS && copied == 10);
    CHECK(314, RtlEqualMemory(buffer, "abcdefghij", 10) &&
               RtlCompareMemory(buffer, "abcdefghXX", 10) == 8);
    NET_BUFFER_LIST_INFO(orig, Ieee8021QNetBufferListInfo) = UlongToPtr(0x123);
    NET_BUFFER_LIST_INFO(orig, TcpIpChecksumNetBufferListInfo) = UlongToPtr(1);
    NdisCopySendNetBufferListInfo(copy, orig);
    CHECK(315, PtrToUlong(NET_BUFFER_LIST_INFO(copy, Ieee8021QNetBufferListInfo)) == 0x123);
    NdisCopyReceiveNetBufferListInfo(copy, orig);
    CHECK(316, PtrToUlong(NET_BUFFER_LIST_INFO(copy, TcpIpChecksumNetBufferListInfo)) == 1);
    NdisFreeNetBufferList(copy);
    NdisFreeMdl(mdl);
    NdisFreeMemoryWithTagPriority(NULL, buffer, TAG);
    (void)nb_pool;
    return 0;
}

static ULONG derived(NDIS_HANDLE nbl_pool, NDIS_HANDLE nb_pool, NET_BUFFER_LIST *orig)
{
    NET_BUFFER_LIST *clone, *frag, *whole, *wfp;
    NTSTATUS status;

    clone = NdisAllocateCloneNetBufferList(orig, nbl_pool, nb_pool, 0);
    CHECK(401, clone != NULL && NET_BUFFER_DATA_LENGTH(NET_BUFFER_LIST_FIRST_NB(clone)) == 10);
    NdisFreeCloneNetBufferList(clone, 0);
    clone = NdisAllocateCloneNetBufferList(orig, NULL, NULL, NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS);
    CHECK(402, clone != NULL);
    NdisFreeCloneNetBufferList(clone, NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS);

    frag = NdisAllocateFragmentNetBufferList(orig, NULL, NULL, 2, 4, 8, 2, 0);
    CHECK(403, frag != NULL && NET_BUFFER_DATA_LENGTH(NET_BUFFER_LIST_FIRST_NB(frag)) == 4 + 8);
    whole = NdisAllocateReassembledNetBufferList(frag, NULL, 8, 0, 0, 0);
    CHECK(404, whole != NULL && NET_BUFFER_DATA_LENGTH(NET_BUFFER_LIST_FIRST_NB(whole)) == 8);
    NdisFreeReassembledNetBufferList(whole, 0, 0);
    NdisFreeFragmentNetBufferList(frag, 8, 0);

    status = FwpsAllocateCloneNetBufferList(orig, NULL, NULL, 0, &wfp);
    CHECK(405, NT_SUCCESS(status) && wfp->ParentNetBufferList == orig &&
               orig->ChildRefCount == 1);
    FwpsReferenceNetBufferList(wfp, TRUE);
    FwpsDereferenceNetBufferList(wfp, FALSE);
    FwpsFreeCloneNetBufferList(wfp, 0);
    status = FwpsAllocateDeepCloneNetBufferList0(orig, NULL, NULL, &wfp);
    CHECK(406, status == STATUS_SUCCESS && orig->ChildRefCount == 1);
    FwpsFreeCloneNetBufferList0(wfp, 0);
    CHECK(407, orig->ChildRefCount == 0);
    status = FwpsAllocateNetBufferAndNetBufferList(nbl_pool, 0, 0, NULL, 0, 0, &wfp);
    CHECK(408, NT_SUCCESS(status) && wfp != NULL);
    FwpsFreeNetBufferList(wfp);
    return 0;
}

static ULONG irql_locks_and_helpers(void)
{
    NDIS_SPIN_LOCK lock;
    KSPIN_LOCK ke_lock;
    KIRQL old;
    LONG volatile counter = 0;
    LONG64 volatile wide = 0;
    PVOID volatile slot = NULL;
    ULONG sum;
    USHORT be = 0x0800;
    RECEIVE_RECORD record, other, *back;
    UCHAR storage_for_count[3] = { 0 };

    CHECK(501, KeGetCurrentIrql() == PASSIVE_LEVEL);
    NdisAllocateSpinLock(&lock);
    NdisAcquireSpinLock(&lock);
    CHECK(502, KeGetCurrentIrql() == DISPATCH_LEVEL && NDIS_CURRENT_IRQL() == DISPATCH_LEVEL);
    NdisDprReleaseSpinLock(&lock);
    NdisDprAcquireSpinLock(&lock);
    NdisReleaseSpinLock(&lock);
    NdisFreeSpinLock(&lock);
    KeInitializeSpinLock(&ke_lock);
    KeAcquireSpinLock(&ke_lock, &old);
    KeReleaseSpinLockFromDpcLevel(&ke_lock);
    KeAcquireSpinLockAtDpcLevel(&ke_lock);
    KeReleaseSpinLock(&ke_lock, old);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeLowerIrql(old);
    old = KeRaiseIrqlToDpcLevel();
    KeLowerIrql(old);
    CHECK(503, KeGetCurrentIrql() == PASSIVE_LEVEL);

    CHECK(504, InterlockedIncrement(&counter) == 1 && InterlockedDecrement(&counter) == 0);
    CHECK(505, InterlockedExchangeAdd(&counter, 5) == 0 && InterlockedExchange(&counter, 7) == 5);
    CHECK(506, InterlockedCompareExchange(&counter, 9, 7) == 7 && counter == 9);
    CHECK(507, InterlockedAnd(&counter, 1) == 9 && InterlockedOr(&counter, 2) == 1);
    CHECK(508, InterlockedIncrement64(&wide) == 1);
    CHECK(509, InterlockedExchangePointer(&slot, &record) == NULL &&
               InterlockedCompareExchangePointer(&slot, NULL, &record) == &record);
    KeMemoryBarrier();

    CHECK(510, RtlUshortByteSwap(be) == 0x0008 && _byteswap_ulong(0x01020304) == 0x04030201);
    CHECK(511, RtlUlonglongByteSwap(1ull) == (1ull << 56) && _byteswap_uint64(0) == 0);
    CHECK(512, NT_SUCCESS(RtlULongAdd(1, 2, &sum)) && sum == 3);
    CHECK(513, RtlULongAdd(MAXULONG, 1, &sum) == STATUS_INTEGER_OVERFLOW);
    CHECK(514, !NT_SUCCESS(STATUS_INSUFFICIENT_RESOURCES) && NT_SUCCESS(STATUS_PENDING));

    record.Cookie = 42;
    back = CONTAINING_RECORD(&record.Nbl, RECEIVE_RECORD, Nbl);
    CHECK(515, back == &record && FIELD_OFFSET(RECEIVE_RECORD, Nbl) == 8 &&
               RTL_NUMBER_OF(storage_for_count) == 3 && ARRAYSIZE(storage_for_count) == 3);
    CHECK(516, min(3, 4) == 3 && max(3, 4) == 4);
    NdisZeroMemory(&record, sizeof record);
    NdisMoveMemory(&other, &record, sizeof record);
    RtlMoveMemory(&record, &other, sizeof record);
    NdisFillMemory(&record, sizeof record, 0);
    CHECK(517, NdisEqualMemory(&record, &record, sizeof record));
    ASSERT(record.Cookie == 0);
    NT_ASSERT(record.Nbl == NULL);
    DbgPrint("every_call: %s\n", "helpers done");
    KdPrint(("every_call: %d\n", 1));
    return 0;
}

static ULONG lists_and_packet_helpers(NET_BUFFER_LIST *orig)
{
    LIST_ENTRY head, one, two, three;
    KSPIN_LOCK lock;
    KLOCK_QUEUE_HANDLE handle;
    NDIS_SPIN_LOCK ndis_lock;
    ULONG total = 1, flags = 0;
    LONG refs = 0;
    LARGE_INTEGER stat;
    UCHAR broadcast[ETH_LENGTH_OF_ADDRESS], mac[ETH_LENGTH_OF_ADDRESS] = { 1, 2, 3, 4, 5, 6 };
    UINT differ = 1;
    PUCHAR zeroed;

    InitializeListHead(&head);
    NdisInitializeListHead(&head);
    InsertTailList(&head, &two);
    InsertHeadList(&head, &one);
    InsertTailList(&head, &three);
    CHECK(601, !IsListEmpty(&head) && RemoveEntryList(&two) == FALSE);
    CHECK(602, RemoveHeadList(&head) == &one && RemoveTailList(&head) == &three &&
               IsListEmpty(&head));
    InitializeListHead(&one);                       /* one as a head, then appended */
    InsertTailList(&one, &two);
    InitializeListHead(&head);
    InsertTailList(&head, &three);
    AppendTailList(&head, &one);
    CHECK(603, head.Flink == &three && three.Flink == &one && one.Flink == &two &&
               head.Blink == &two);
    KeInitializeSpinLock(&lock);
    InitializeListHead(&head);
    CHECK(604, ExInterlockedInsertTailList(&head, &one, &lock) == NULL &&
               ExInterlockedInsertHeadList(&head, &two, &lock) == &one &&
               ExInterlockedRemoveHeadList(&head, &lock) == &two &&
               ExInterlockedAddUlong(&total, 2, &lock) == 1 && total == 3);
    NdisAllocateSpinLock(&ndis_lock);
    CHECK(605, NdisInterlockedInsertTailList(&head, &three, &ndis_lock) == &one &&
               NdisInterlockedInsertHeadList(&head, &two, &ndis_lock) == &one &&
               NdisInterlockedRemoveHeadList(&head, &ndis_lock) == &two &&
               NdisInterlockedAddUlong(&total, 4, &ndis_lock) == 3 && total == 7);
    NdisFreeSpinLock(&ndis_lock);
    CHECK(606, NdisInterlockedIncrement(&refs) == 1 && NdisInterlockedDecrement(&refs) == 0);
    stat.QuadPart = 5;
    NdisInterlockedAddLargeStatistic(&stat, 5);
    CHECK(607, stat.QuadPart == 10);

    KeAcquireInStackQueuedSpinLock(&lock, &handle);
    CHECK(608, KeGetCurrentIrql() == DISPATCH_LEVEL);
    KeReleaseInStackQueuedSpinLock(&handle);
    KeRaiseIrql(DISPATCH_LEVEL, &handle.OldIrql);
    KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &handle);
    KeReleaseInStackQueuedSpinLockFromDpcLevel(&handle);
    KeLowerIrql(PASSIVE_LEVEL);

    zeroed = ExAllocatePoolZero(NonPagedPoolNx, 16, TAG);
    CHECK(609, zeroed != NULL && zeroed[0] == 0 && zeroed[15] == 0);
    RtlFillMemory(zeroed, 16, 0xEE);
    RtlSecureZeroMemory(zeroed, 16);
    CHECK(610, zeroed[7] == 0);
    ExFreePoolWithTag(zeroed, TAG);
    zeroed = ExAllocatePoolUninitialized(NonPagedPoolNx, 8, TAG);
    CHECK(611, zeroed != NULL);
    ExFreePoolWithTag(zeroed, TAG);
    zeroed = NdisAllocateMemoryWithTagPriority(NULL, 4, TAG, HighPoolPriority);
    CHECK(612, zeroed != NULL);
    NdisFreeMemoryWithTagPriority(NULL, zeroed, TAG);

    RtlFillMemory(broadcast, sizeof broadcast, 0xFF);
    CHECK(613, ETH_IS_BROADCAST(broadcast) && ETH_IS_MULTICAST(broadcast) &&
               ETH_IS_MULTICAST(mac) && !ETH_IS_BROADCAST(mac));
    ETH_COPY_NETWORK_ADDRESS(broadcast, mac);
    ETH_COMPARE_NETWORK_ADDRESSES_EQ(broadcast, mac, &differ);
    CHECK(614, differ == 0);

    NBL_SET_PROT_RSVD_FLAG(orig, 0x00100000 | NBL_FLAGS_SCRATCH);   /* only the first sticks */
    CHECK(615, NBL_TEST_PROT_RSVD_FLAG(orig, 0x00100000) &&
               !NBL_TEST_FLAG(orig, NBL_FLAGS_SCRATCH));
    NBL_CLEAR_PROT_RSVD_FLAG(orig, NBL_PROT_RSVD_FLAGS);
    NBL_SET_PROTOCOL_RSVD_FLAG(orig, 0x00200000);
    CHECK(616, NBL_TEST_PROTOCOL_RSVD_FLAG(orig, 0x00200000));
    NBL_CLEAR_PROTOCOL_RSVD_FLAG(orig, 0x00200000);
    CHECK(617, NET_BUFFER_LIST_FLAGS(orig) == 0);
    CHECK(618, NET_BUFFER_FIRST_SHARED_MEM_INFO(NET_BUFFER_LIST_FIRST_NB(orig)) == NULL &&
               NET_BUFFER_SCATTER_GATHER_LIST(NET_BUFFER_LIST_FIRST_NB(orig)) == NULL);

    NDIS_SET_SEND_FLAG(flags, NDIS_SEND_FLAGS_DISPATCH_LEVEL);
    CHECK(619, NDIS_TEST_SEND_AT_DISPATCH_LEVEL(flags) &&
               NDIS_TEST_SEND_FLAG(flags, NDIS_SEND_FLAGS_DISPATCH_LEVEL));
    NDIS_SET_SEND_COMPLETE_FLAG(flags, NDIS_SEND_COMPLETE_FLAGS_SINGLE_QUEUE);
    CHECK(620, NDIS_TEST_SEND_COMPLETE_FLAG(flags, NDIS_SEND_COMPLETE_FLAGS_SINGLE_QUEUE) &&
               NDIS_TEST_SEND_COMPLETE_AT_DISPATCH_LEVEL(flags));
    flags = 0;
    NDIS_SET_RECEIVE_FLAG(flags, NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL);
    CHECK(621, NDIS_TEST_RECEIVE_AT_DISPATCH_LEVEL(flags) && NDIS_TEST_RECEIVE_CAN_PEND(flags) &&
               !NDIS_TEST_RECEIVE_CANNOT_PEND(flags) &&
               NDIS_TEST_RECEIVE_FLAG(flags, NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL));
    flags = 0;
    NDIS_SET_RETURN_FLAG(flags, NDIS_RETURN_FLAGS_DISPATCH_LEVEL);
    CHECK(622, NDIS_TEST_RETURN_AT_DISPATCH_LEVEL(flags) &&
               NDIS_TEST_RETURN_FLAG(flags, NDIS_RETURN_FLAGS_DISPATCH_LEVEL));
    CHECK(623, NDIS_PACKET_TYPE_DIRECTED == 1 && NDIS_DEFAULT_PORT_NUMBER == 0 &&
               IPPROTO_UDP == 17 && AF_INET == 2);
    return 0;
}

/* Runs every step; 0 when all passed and nothing is left allocated. */
ULONG every_call(PNET_BUFFER_LIST orig)
{
    NET_BUFFER_LIST_POOL_PARAMETERS params;
    NET_BUFFER_POOL_PARAMETERS nb_params;
    NDIS_HANDLE nbl_pool, nb_pool;
    ULONG failed;

    PAGED_CODE();
    RtlZeroMemory(&params, sizeof params);
    params.Header.Type = NDIS_OBJECT_TYPE_DEFAULT;
    params.Header.Revision = NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    params.Header.Size = NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    params.fAllocateNetBuffer = TRUE;
    params.ContextSize = 0;
    params.PoolTag = TAG;
    nbl_pool = NdisAllocateNetBufferListPool(NULL, &params);
    RtlZeroMemory(&nb_params, sizeof nb_params);
    nb_params.Header.Type = NDIS_OBJECT_TYPE_DEFAULT;
    nb_params.Header.Revision = NET_BUFFER_POOL_PARAMETERS_REVISION_1;
    nb_params.Header.Size = NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1;
    nb_params.PoolTag = TAG;
    nb_pool = NdisAllocateNetBufferPool(NULL, &nb_params);
    if (!nbl_pool || !nb_pool)
        return 1;
    failed = memory_and_mdls();
    if (!failed)
        failed = pools_and_nbls(nbl_pool, nb_pool);
    if (!failed)
        failed = data_space(nbl_pool, nb_pool, orig);
    if (!failed)
        failed = derived(nbl_pool, nb_pool, orig);
    if (!failed)
        failed = irql_locks_and_helpers();
    if (!failed)
        failed = lists_and_packet_helpers(orig);
    NdisFreeNetBufferPool(nb_pool);
    NdisFreeNetBufferListPool(nbl_pool);
    return failed;
}
