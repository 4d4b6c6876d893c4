/*
 * patterns.c - the packet-path patterns found in public NDIS and WFP
 * drivers (see docs/driver.md, "What real driver code was tried"), written
 * afresh for ndisemu's tests: a copy loop over the MDL chain from the
 * current MDL, frame classification on the destination address, NBL/NB
 * walks, copy-into-an-own-NBL with a protocol-reserved marker and a
 * spin-locked queue through ProtocolReserved, advance/peek/retreat, an
 * IPv4/UDP parse that puts the data start back, a clone-and-rewrite of a
 * UDP port, an NBL built over a pool buffer with IoAllocateMdl and freed by
 * walking its MDLs, and the list, lock and flag helpers they lean on.
 * Built with -Wall -Wextra -Werror.
 */
#include <ntddk.h>
#include <ndis.h>
#include <fwpsk.h>
#include <fwpmk.h>
#include <ntintsafe.h>

#define TAG 'ttaP'

#include <pshpack1.h>
typedef struct _ETH_FRAME_HEADER {
    UCHAR Destination[ETH_LENGTH_OF_ADDRESS];
    UCHAR Source[ETH_LENGTH_OF_ADDRESS];
    USHORT EtherType;                    /* network order */
} ETH_FRAME_HEADER;
#include <poppack.h>
C_ASSERT(sizeof(ETH_FRAME_HEADER) == 14);

typedef struct _IPV4_HEADER {
    UCHAR VersionAndLength;
    UCHAR TypeOfService;
    USHORT TotalLength;
    USHORT Identification;
    USHORT FragmentOffset;
    UCHAR TimeToLive;
    UCHAR Protocol;
    USHORT Checksum;
    ULONG Source;
    ULONG Destination;
} IPV4_HEADER;

typedef struct _UDP_PORTS {
    USHORT SourcePort;
    USHORT DestinationPort;
    USHORT Length;
    USHORT Checksum;
} UDP_PORTS;

/* ---- MDL walks ------------------------------------------------------------ */

/* Copies up to Capacity bytes of the frame, starting CurrentMdlOffset bytes
 * into the current MDL, one MDL at a time; returns the bytes copied, or
 * MAXULONG when a mapping fails. */
ULONG copy_frame(PNET_BUFFER NetBuffer, PUCHAR Out, ULONG Capacity)
{
    PMDL mdl = NET_BUFFER_CURRENT_MDL(NetBuffer);
    ULONG skip = NET_BUFFER_CURRENT_MDL_OFFSET(NetBuffer);
    ULONG left = min(Capacity, NET_BUFFER_DATA_LENGTH(NetBuffer));
    ULONG done = 0;

    while (mdl != NULL && left > 0) {
        PUCHAR va = NULL;
        UINT bytes = 0;
        ULONG take;
        NdisQueryMdl(mdl, &va, &bytes, NormalPagePriority | MdlMappingNoExecute);
        if (va == NULL)
            return MAXULONG;
        take = min(bytes - skip, left);
        NdisMoveMemory(Out + done, va + skip, take);
        done += take;
        left -= take;
        skip = 0;
        NdisGetNextMdl(mdl, &mdl);
    }
    return done;
}

/* The same walk with MmGetSystemAddressForMdlSafe and NDIS_MDL_LINKAGE, as
 * a ones'-complement sum of the bytes (a checksum over odd MDL pieces). */
USHORT sum_frame(PNET_BUFFER NetBuffer)
{
    PMDL mdl = NET_BUFFER_CURRENT_MDL(NetBuffer);
    ULONG offset = NET_BUFFER_CURRENT_MDL_OFFSET(NetBuffer);
    ULONG left = NET_BUFFER_DATA_LENGTH(NetBuffer);
    ULONG sum = 0, index = 0;

    for (; mdl != NULL && left > 0; mdl = NDIS_MDL_LINKAGE(mdl), offset = 0) {
        PUCHAR va = MmGetSystemAddressForMdlSafe(mdl, LowPagePriority | MdlMappingNoExecute);
        ULONG count = MmGetMdlByteCount(mdl) - offset, i;
        if (va == NULL)
            return 0;
        count = min(count, left);
        for (i = 0; i < count; i++, index++)
            sum += (index & 1) ? va[offset + i] : (ULONG)va[offset + i] << 8;
        left -= count;
    }
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (USHORT)~sum;
}

/* ---- classification and NBL walks ---------------------------------------- */

ULONG frame_type(PNET_BUFFER NetBuffer)
{
    ETH_FRAME_HEADER storage;
    ETH_FRAME_HEADER *header = NdisGetDataBuffer(NetBuffer, sizeof storage, &storage, 1, 0);
    if (header == NULL)
        return 0;
    if (ETH_IS_BROADCAST(header->Destination))
        return NDIS_PACKET_TYPE_BROADCAST;
    if (ETH_IS_MULTICAST(header->Destination))
        return NDIS_PACKET_TYPE_MULTICAST;
    return NDIS_PACKET_TYPE_DIRECTED;
}

/* NBs over the whole chain of NBLs; *Bytes gets their data lengths' sum. */
ULONG count_nbs(PNET_BUFFER_LIST NetBufferLists, PULONG Bytes)
{
    PNET_BUFFER_LIST nbl;
    ULONG count = 0;
    *Bytes = 0;
    for (nbl = NetBufferLists; nbl != NULL; nbl = NET_BUFFER_LIST_NEXT_NBL(nbl)) {
        PNET_BUFFER nb;
        for (nb = NET_BUFFER_LIST_FIRST_NB(nbl); nb != NULL; nb = NET_BUFFER_NEXT_NB(nb)) {
            count++;
            if (!NT_SUCCESS(RtlULongAdd(*Bytes, NET_BUFFER_DATA_LENGTH(nb), Bytes)))
                return MAXULONG;
        }
    }
    return count;
}

/* ---- copy into an own NBL, queued through ProtocolReserved ---------------- */

#define COPY_MARK 0x10000000              /* a protocol-reserved Flags bit */

typedef struct _QUEUE_LINK {
    LIST_ENTRY Link;
    PNET_BUFFER_LIST Nbl;
} QUEUE_LINK;
C_ASSERT(sizeof(QUEUE_LINK) <= sizeof(((NET_BUFFER_LIST *)0)->ProtocolReserved));

#define LINK_OF(_Nbl) ((QUEUE_LINK *)NET_BUFFER_LIST_PROTOCOL_RESERVED(_Nbl))

static PNET_BUFFER_LIST copy_to_own_nbl(NDIS_HANDLE Pool, PNET_BUFFER Source)
{
    ULONG length = NET_BUFFER_DATA_LENGTH(Source), copied = 0;
    PVOID data = NULL;
    PMDL mdl;
    PNET_BUFFER_LIST copy;

    if (NdisAllocateMemoryWithTag(&data, length ? length : 1, TAG) != NDIS_STATUS_SUCCESS)
        return NULL;
    mdl = NdisAllocateMdl(NULL, data, length);
    if (mdl == NULL) {
        NdisFreeMemory(data, 0, 0);
        return NULL;
    }
    copy = NdisAllocateNetBufferAndNetBufferList(Pool, 0, 0, mdl, 0, length);
    if (copy == NULL ||
        NdisCopyFromNetBufferToNetBuffer(NET_BUFFER_LIST_FIRST_NB(copy), 0, length, Source, 0,
                                         &copied) != NDIS_STATUS_SUCCESS || copied != length) {
        if (copy)
            NdisFreeNetBufferList(copy);
        NdisFreeMdl(mdl);
        NdisFreeMemory(data, 0, 0);
        return NULL;
    }
    NBL_SET_PROT_RSVD_FLAG(copy, COPY_MARK);
    return copy;
}

static VOID free_own_nbl(PNET_BUFFER_LIST Nbl)
{
    PMDL mdl = NET_BUFFER_FIRST_MDL(NET_BUFFER_LIST_FIRST_NB(Nbl));
    PVOID data = NULL;
    UINT length = 0;
    NT_ASSERT(NBL_TEST_PROT_RSVD_FLAG(Nbl, COPY_MARK));
    NdisQueryMdl(mdl, &data, &length, NormalPagePriority | MdlMappingNoExecute);
    NdisFreeNetBufferList(Nbl);
    NdisFreeMdl(mdl);
    NdisFreeMemory(data, 0, 0);
}

/* Copies every NBL's first NB, queues the copies under a spin lock, then
 * drains the queue comparing each copy with its source and freeing it.
 * Returns the copies that matched; 0xFFFF0000 | step on a failed check. */
ULONG queue_copies(PNET_BUFFER_LIST NetBufferLists, ULONG ReceiveFlags)
{
    NDIS_SPIN_LOCK lock;
    LIST_ENTRY queue;
    PNET_BUFFER_LIST nbl;
    NDIS_HANDLE pool;
    NET_BUFFER_LIST_POOL_PARAMETERS params;
    PLIST_ENTRY entry;
    ULONG matched = 0, queued = 0, returnFlags = 0;
    BOOLEAN dispatch = NDIS_TEST_RECEIVE_AT_DISPATCH_LEVEL(ReceiveFlags);

    if (NDIS_TEST_RECEIVE_CAN_PEND(ReceiveFlags) == NDIS_TEST_RECEIVE_CANNOT_PEND(ReceiveFlags))
        return 0xFFFF0001;
    if (dispatch)
        NDIS_SET_RETURN_FLAG(returnFlags, NDIS_RETURN_FLAGS_DISPATCH_LEVEL);
    if (NDIS_TEST_RETURN_AT_DISPATCH_LEVEL(returnFlags) != dispatch)
        return 0xFFFF0002;

    RtlZeroMemory(&params, sizeof params);
    params.Header.Type = NDIS_OBJECT_TYPE_DEFAULT;
    params.Header.Revision = NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    params.Header.Size = NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    params.fAllocateNetBuffer = TRUE;
    params.PoolTag = TAG;
    pool = NdisAllocateNetBufferListPool(NULL, &params);
    if (pool == NULL)
        return 0xFFFF0003;

    NdisAllocateSpinLock(&lock);
    InitializeListHead(&queue);
    for (nbl = NetBufferLists; nbl != NULL; nbl = NET_BUFFER_LIST_NEXT_NBL(nbl)) {
        PNET_BUFFER_LIST copy = copy_to_own_nbl(pool, NET_BUFFER_LIST_FIRST_NB(nbl));
        if (copy == NULL)
            break;
        NBL_CLEAR_PROT_RSVD_FLAG(nbl, NBL_PROT_RSVD_FLAGS);   /* the source is not ours */
        LINK_OF(copy)->Nbl = nbl;
        if (NdisInterlockedInsertTailList(&queue, &LINK_OF(copy)->Link, &lock) == NULL &&
            queued != 0)
            return 0xFFFF0004;
        queued++;
    }

    while ((entry = NdisInterlockedRemoveHeadList(&queue, &lock)) != NULL) {
        QUEUE_LINK *link = CONTAINING_RECORD(entry, QUEUE_LINK, Link);
        PNET_BUFFER_LIST copy = CONTAINING_RECORD((PVOID *)link, NET_BUFFER_LIST,
                                                  ProtocolReserved[0]);
        PNET_BUFFER mine = NET_BUFFER_LIST_FIRST_NB(copy);
        PNET_BUFFER theirs = NET_BUFFER_LIST_FIRST_NB(link->Nbl);
        UCHAR a[64], b[64];
        ULONG n = min(NET_BUFFER_DATA_LENGTH(mine), (ULONG)sizeof a);
        if (NBL_TEST_PROT_RSVD_FLAG(link->Nbl, COPY_MARK))
            return 0xFFFF0005;
        if (copy_frame(mine, a, n) == n && copy_frame(theirs, b, n) == n &&
            RtlEqualMemory(a, b, n) && NET_BUFFER_DATA_LENGTH(mine) ==
                                           NET_BUFFER_DATA_LENGTH(theirs))
            matched++;
        free_own_nbl(copy);
    }
    NdisFreeSpinLock(&lock);
    NdisFreeNetBufferListPool(pool);
    return matched;
}

/* ---- advance / peek / retreat -------------------------------------------- */

/* Size bytes at Index (counted from the end when negative), through
 * advance and retreat: TRUE when they were there; the NB is put back. */
BOOL peek_at(PNET_BUFFER NetBuffer, LONG Index, PUCHAR Out, ULONG Size)
{
    LONG length = (LONG)NET_BUFFER_DATA_LENGTH(NetBuffer);
    PUCHAR data;
    BOOL found = FALSE;

    if (Index < 0)
        Index += length;
    if (Index < 0 || Index > length - (LONG)Size)
        return FALSE;
    if (Index > 0)
        NdisAdvanceNetBufferDataStart(NetBuffer, (ULONG)Index, FALSE, NULL);
    data = NdisGetDataBuffer(NetBuffer, Size, NULL, 1, 0);      /* in place when contiguous */
    if (data == NULL)
        data = NdisGetDataBuffer(NetBuffer, Size, Out, 1, 0);   /* else gathered into Out */
    if (data != NULL) {
        if (data != Out)
            RtlCopyMemory(Out, data, Size);
        found = TRUE;
    }
    if (Index > 0 &&
        NdisRetreatNetBufferDataStart(NetBuffer, (ULONG)Index, 0, NULL) != NDIS_STATUS_SUCCESS)
        return FALSE;
    return found;
}

/* (source port << 16) | destination port of an IPv4/UDP datagram, host
 * order; 0 when it is not one.  The data start ends where it began. */
ULONG parse_udp(PNET_BUFFER NetBuffer)
{
    ULONG start = NET_BUFFER_DATA_OFFSET(NetBuffer), headerLength, result = 0;
    IPV4_HEADER ipStorage;
    UDP_PORTS udpStorage;
    IPV4_HEADER *ip;
    UDP_PORTS *udp;

    if (NET_BUFFER_DATA_LENGTH(NetBuffer) < sizeof ipStorage)
        return 0;
    ip = NdisGetDataBuffer(NetBuffer, sizeof ipStorage, &ipStorage, 1, 0);
    if (ip == NULL || (ip->VersionAndLength >> 4) != 4 || ip->Protocol != IPPROTO_UDP)
        return 0;
    headerLength = (ip->VersionAndLength & 0xF) * sizeof(ULONG);
    if (headerLength < sizeof ipStorage ||
        headerLength + sizeof udpStorage > NET_BUFFER_DATA_LENGTH(NetBuffer))
        return 0;
    NdisAdvanceNetBufferDataStart(NetBuffer, headerLength, FALSE, NULL);
    udp = NdisGetDataBuffer(NetBuffer, sizeof udpStorage, &udpStorage, 1, 0);
    if (udp != NULL)
        result = ((ULONG)RtlUshortByteSwap(udp->SourcePort) << 16) |
                 RtlUshortByteSwap(udp->DestinationPort);
    if (!NT_SUCCESS(NdisRetreatNetBufferDataStart(NetBuffer, headerLength, 0, NULL)))
        return 0;
    NT_ASSERT(NET_BUFFER_DATA_OFFSET(NetBuffer) == start);
    return result;
}

/* ---- clone and rewrite (WFP) --------------------------------------------- */

/* Clones the NBL of UDP datagrams (data starting at the UDP header) and
 * sets every datagram's destination port and a zero checksum through the
 * clone, which shares the original's MDLs; the clone is freed. */
NTSTATUS rewrite_udp_port(PNET_BUFFER_LIST NetBufferList, USHORT Port)
{
    PNET_BUFFER_LIST clone = NULL;
    PNET_BUFFER nb;
    NTSTATUS status = FwpsAllocateCloneNetBufferList(NetBufferList, NULL, NULL, 0, &clone);
    if (!NT_SUCCESS(status))
        return status;
    for (nb = NET_BUFFER_LIST_FIRST_NB(clone); nb != NULL; nb = NET_BUFFER_NEXT_NB(nb)) {
        UDP_PORTS *udp = NdisGetDataBuffer(nb, sizeof *udp, NULL, sizeof(USHORT), 0);
        if (udp == NULL) {
            status = STATUS_INVALID_BUFFER_SIZE;     /* not contiguous and 2-aligned */
            break;
        }
        udp->DestinationPort = RtlUshortByteSwap(Port);
        udp->Checksum = 0;
    }
    FwpsFreeCloneNetBufferList(clone, 0);
    return status;
}

/* The inbound variant: retreat the original by HeaderBytes, clone it (the
 * clone inherits the offset), advance the original back; the clone's data
 * start is reported, then it is freed. */
ULONG clone_from_header(PNET_BUFFER_LIST NetBufferList, ULONG HeaderBytes)
{
    PNET_BUFFER nb = NET_BUFFER_LIST_FIRST_NB(NetBufferList);
    PNET_BUFFER_LIST clone = NULL;
    ULONG cloneOffset;
    NTSTATUS status;

    if (NdisRetreatNetBufferDataStart(nb, HeaderBytes, 0, NULL) != NDIS_STATUS_SUCCESS)
        return MAXULONG;
    status = FwpsAllocateCloneNetBufferList(NetBufferList, NULL, NULL, 0, &clone);
    NdisAdvanceNetBufferDataStart(nb, HeaderBytes, FALSE, NULL);
    if (!NT_SUCCESS(status))
        return MAXULONG;
    cloneOffset = NET_BUFFER_DATA_OFFSET(NET_BUFFER_LIST_FIRST_NB(clone));
    FwpsFreeCloneNetBufferList(clone, 0);
    return cloneOffset;
}

/* ---- NBLs over driver memory -------------------------------------------- */

/* An NBL over a zeroed pool buffer of Length bytes, filled with Fill,
 * described by IoAllocateMdl + MmBuildMdlForNonPagedPool. */
PNET_BUFFER_LIST wrap_buffer(NDIS_HANDLE Pool, ULONG Length, UCHAR Fill)
{
    PUCHAR buffer = ExAllocatePoolZero(NonPagedPoolNx, Length, TAG);
    PMDL mdl;
    PNET_BUFFER_LIST nbl = NULL;
    NTSTATUS status;

    if (buffer == NULL)
        return NULL;
    if (buffer[Length - 1] != 0)
        return NULL;
    RtlFillMemory(buffer, Length, Fill);
    mdl = IoAllocateMdl(buffer, Length, FALSE, FALSE, NULL);
    if (mdl == NULL) {
        ExFreePoolWithTag(buffer, TAG);
        return NULL;
    }
    MmBuildMdlForNonPagedPool(mdl);
    status = FwpsAllocateNetBufferAndNetBufferList(Pool, 0, 0, mdl, 0, Length, &nbl);
    if (!NT_SUCCESS(status)) {
        IoFreeMdl(mdl);
        ExFreePoolWithTag(buffer, TAG);
        return NULL;
    }
    return nbl;
}

/* Frees such an NBL by walking every NB's MDLs: the memory each describes,
 * then the MDL, then the NBL. */
VOID free_wrapped(PNET_BUFFER_LIST NetBufferList)
{
    PNET_BUFFER nb;
    for (nb = NET_BUFFER_LIST_FIRST_NB(NetBufferList); nb != NULL; nb = NET_BUFFER_NEXT_NB(nb)) {
        PMDL mdl, next;
        for (mdl = NET_BUFFER_FIRST_MDL(nb); mdl != NULL; mdl = next) {
            PVOID data = MmGetSystemAddressForMdlSafe(mdl, LowPagePriority | MdlMappingNoExecute);
            next = mdl->Next;
            IoFreeMdl(mdl);
            if (data != NULL)
                ExFreePool(data);
        }
    }
    FwpsFreeNetBufferList(NetBufferList);
}

/* ---- lists, locks, flags, addresses -------------------------------------- */

#define CHECK(step, condition) do { if (!(condition)) return (step); } while (0)

ULONG helpers(void)
{
    LIST_ENTRY head, a, b, c;
    KSPIN_LOCK lock;
    KLOCK_QUEUE_HANDLE handle;
    NDIS_SPIN_LOCK ndisLock;
    ULONG counter = 5, flags = 0;
    LONG refs = 0;
    LARGE_INTEGER stat;
    UCHAR mac[ETH_LENGTH_OF_ADDRESS] = { 0x02, 0, 0, 0, 0, 1 }, copy[ETH_LENGTH_OF_ADDRESS];
    UINT differ = 7;
    USHORT UNALIGNED *word;
    UCHAR bytes[4] = { 0, 0x12, 0x34, 0 };
    volatile UCHAR secret[8];
    ADDRESS_FAMILY family = AF_INET6;

    InitializeListHead(&head);
    CHECK(1, IsListEmpty(&head) && RemoveHeadList(&head) == &head);
    InsertTailList(&head, &b);
    InsertHeadList(&head, &a);
    InsertTailList(&head, &c);
    CHECK(2, head.Flink == &a && a.Flink == &b && b.Flink == &c && c.Flink == &head);
    CHECK(3, head.Blink == &c && c.Blink == &b && b.Blink == &a && a.Blink == &head);
    CHECK(4, RemoveEntryList(&b) == FALSE && a.Flink == &c);
    CHECK(5, RemoveTailList(&head) == &c && RemoveHeadList(&head) == &a && IsListEmpty(&head));
    InsertTailList(&head, &a);
    CHECK(6, RemoveEntryList(&a) == TRUE);

    KeInitializeSpinLock(&lock);
    CHECK(7, ExInterlockedInsertTailList(&head, &a, &lock) == NULL);
    CHECK(8, ExInterlockedInsertHeadList(&head, &b, &lock) == &a);
    CHECK(9, ExInterlockedInsertTailList(&head, &c, &lock) == &a && lock == 0);
    CHECK(10, ExInterlockedRemoveHeadList(&head, &lock) == &b);
    CHECK(11, ExInterlockedRemoveHeadList(&head, &lock) == &a);
    CHECK(12, ExInterlockedRemoveHeadList(&head, &lock) == &c);
    CHECK(13, ExInterlockedRemoveHeadList(&head, &lock) == NULL);

    KeAcquireInStackQueuedSpinLock(&lock, &handle);
    CHECK(14, KeGetCurrentIrql() == DISPATCH_LEVEL && lock != 0);
    KeReleaseInStackQueuedSpinLock(&handle);
    CHECK(15, KeGetCurrentIrql() == PASSIVE_LEVEL && lock == 0);
    KeRaiseIrql(DISPATCH_LEVEL, &handle.OldIrql);
    KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &handle);
    KeReleaseInStackQueuedSpinLockFromDpcLevel(&handle);
    KeLowerIrql(PASSIVE_LEVEL);

    NdisAllocateSpinLock(&ndisLock);
    CHECK(16, NdisInterlockedAddUlong(&counter, 3, &ndisLock) == 5 && counter == 8);
    NdisFreeSpinLock(&ndisLock);
    CHECK(17, NdisInterlockedIncrement(&refs) == 1 && NdisInterlockedDecrement(&refs) == 0);
    stat.QuadPart = 1;
    NdisInterlockedAddLargeStatistic(&stat, 41);
    CHECK(18, stat.QuadPart == 42);

    NDIS_SET_SEND_FLAG(flags, NDIS_SEND_FLAGS_DISPATCH_LEVEL | NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK);
    CHECK(19, NDIS_TEST_SEND_AT_DISPATCH_LEVEL(flags) &&
              NDIS_TEST_SEND_FLAG(flags, NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK) &&
              !NDIS_TEST_SEND_FLAG(flags, NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK |
                                          NDIS_SEND_FLAGS_SINGLE_QUEUE));
    flags = 0;
    NDIS_SET_SEND_COMPLETE_FLAG(flags, NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL);
    CHECK(20, NDIS_TEST_SEND_COMPLETE_AT_DISPATCH_LEVEL(flags));
    flags = 0;
    NDIS_SET_RECEIVE_FLAG(flags, NDIS_RECEIVE_FLAGS_RESOURCES);
    CHECK(21, NDIS_TEST_RECEIVE_CANNOT_PEND(flags) && !NDIS_TEST_RECEIVE_CAN_PEND(flags) &&
              !NDIS_TEST_RECEIVE_AT_DISPATCH_LEVEL(flags));

    ETH_COPY_NETWORK_ADDRESS(copy, mac);
    ETH_COMPARE_NETWORK_ADDRESSES_EQ(copy, mac, &differ);
    CHECK(22, differ == 0 && !ETH_IS_MULTICAST(copy) && !ETH_IS_BROADCAST(copy));
    copy[5] = 2;
    ETH_COMPARE_NETWORK_ADDRESSES_EQ(copy, mac, &differ);
    CHECK(23, differ == 1);

    word = (USHORT UNALIGNED *)&bytes[1];
    CHECK(24, RtlUshortByteSwap(*word) == 0x1234);      /* x64: unaligned is fine */
    RtlFillMemory((PVOID)secret, sizeof secret, 0x5A);
    RtlSecureZeroMemory((PVOID)secret, sizeof secret);
    CHECK(25, secret[0] == 0 && secret[7] == 0);
    CHECK(26, family == 23 && IPPROTO_TCP == 6 && IPPROTO_ICMPV6 == 58 &&
              NDIS_DEFAULT_PORT_NUMBER == 0);
    CHECK(27, NT_SUCCESS(STATUS_BUFFER_OVERFLOW) == FALSE &&
              NDIS_STATUS_BUFFER_OVERFLOW == (NDIS_STATUS)0x80000005L);
    return 0;
}

/* A queued entry taken off twice: the second removal finds links that no
 * longer point back, bug check 0x139 (P1 3). */
VOID remove_twice(void)
{
    LIST_ENTRY head, a, b;
    InitializeListHead(&head);
    InsertTailList(&head, &a);
    InsertTailList(&head, &b);
    RemoveEntryList(&a);
    RemoveEntryList(&b);
    InsertTailList(&head, &b);
    RemoveEntryList(&a);                 /* a's neighbours moved on */
}
