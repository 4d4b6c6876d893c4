"""NBLs, NBs and contexts (docs/net-buffer.md, docs/net-buffer-list.md):
initial values, what each free releases, context LIFO, and build_nbl shapes."""

import pytest
from conftest import expect_bugcheck, live

import ndisemu
from ndisemu import ffi


def test_new_nbl_initial_fields(k):
    pool = k.NdisAllocateNetBufferListPool(None, {"ProtocolId": ndisemu.NDIS_PROTOCOL_ID_TCP_IP,
                                                  "fAllocateNetBuffer": True})
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert nbl.NdisPoolHandle == pool
    assert nbl.ParentNetBufferList == ffi.NULL and nbl.ChildRefCount == 0
    assert nbl.Next == ffi.NULL and nbl.Scratch == ffi.NULL and nbl.Context == ffi.NULL
    assert (nbl.NblFlags, nbl.Flags, nbl.Status) == (0, 0, 0)
    slot = ndisemu.NetBufferListProtocolId
    assert int(ffi.cast("uintptr_t", nbl.NetBufferListInfo[slot])) == 2
    assert all(nbl.NetBufferListInfo[i] == ffi.NULL for i in range(29) if i != slot)
    nb = nbl.FirstNetBuffer
    assert nb != ffi.NULL and nb.Next == ffi.NULL and nb.MdlChain == ffi.NULL
    assert (nb.DataOffset, nb.DataLength, nb.CurrentMdlOffset) == (0, 0, 0)
    assert nb.NdisPoolHandle == pool
    assert k.display(nbl) % 16 == 0 and k.display(nb) % 16 == 0
    k.NdisFreeNetBufferList(nbl)
    assert live(k)["nbl"] == live(k)["nb"] == 0
    k.NdisFreeNetBufferListPool(pool)


def test_pool_without_nb(k, nbl_pool):
    nbl = k.NdisAllocateNetBufferList(nbl_pool, 0, 0)
    assert nbl.FirstNetBuffer == ffi.NULL
    k.NdisFreeNetBufferList(nbl)


def test_data_pool_gives_nb_mdl_and_data(k):
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True, "DataSize": 1514})
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    nb = nbl.FirstNetBuffer
    mdl = nb.MdlChain
    assert mdl != ffi.NULL and mdl.ByteCount == 1514 and mdl.Next == ffi.NULL
    assert mdl.MdlFlags & ndisemu.MDL_SOURCE_IS_NONPAGED_POOL
    assert (nb.DataOffset, nb.DataLength, nb.CurrentMdl, nb.CurrentMdlOffset) == (0, 1514, mdl, 0)
    assert live(k)["mdl"] == 1 and live(k)["data"] == 1
    k.check_nb(nb)
    # NDIS owns this MDL: freeing it by hand is the wrong call
    expect_bugcheck(lambda: k.NdisFreeMdl(mdl), 0x84)
    expect_bugcheck(lambda: k.NdisFreeNetBuffer(nb), 0x84, "preallocated")
    k.NdisFreeNetBufferList(nbl)
    assert live(k)["mdl"] == live(k)["data"] == 0
    # stale inner pointers are caught too
    expect_bugcheck(lambda: k.NdisFreeNetBuffer(nb), 0x82)
    expect_bugcheck(lambda: k.check_nb(nb), 0x83)
    k.NdisFreeNetBufferListPool(pool)


def test_nb_pool_mdl_and_data(k):
    pool = k.NdisAllocateNetBufferPool(None, {"DataSize": 256})
    nb = k.NdisAllocateNetBufferMdlAndData(pool)
    assert nb.DataLength == 256 and nb.MdlChain.ByteCount == 256
    expect_bugcheck(lambda: k.NdisAllocateNetBuffer(pool, None, 0, 0), 0x8C,
                    "NdisAllocateNetBufferMdlAndData")
    k.NdisFreeNetBuffer(nb)
    assert live(k)["mdl"] == 0 and live(k)["nb"] == 0
    k.NdisFreeNetBufferPool(pool)
    plain = k.NdisAllocateNetBufferPool(None, {})
    expect_bugcheck(lambda: k.NdisAllocateNetBufferMdlAndData(plain), 0x8C, "DataSize 0")


def _chain(k, sizes):
    """Caller-owned MDLs over one NdisAllocateMemory block."""
    total = sum(sizes)
    va = k.NdisAllocateMemoryWithTagPriority(None, max(total, 1), 1, 16)
    mdls, at = [], 0
    for size in sizes:
        mdls.append(k.NdisAllocateMdl(None, ffi.cast("uint8_t *", va) + at, size))
        at += size
    for a, b in zip(mdls, mdls[1:], strict=False):
        a.Next = b
    return va, mdls


def _free_chain(k, va, mdls):
    for m in mdls:
        m.Next = ffi.NULL
        k.NdisFreeMdl(m)
    k.NdisFreeMemoryWithTagPriority(None, va, 1)


# (MDL sizes, DataOffset, DataLength, index of CurrentMdl, CurrentMdlOffset)
PLACEMENT = [
    ([10], 0, 10, 0, 0),
    ([10], 4, 6, 0, 4),
    ([10], 10, 0, 0, 10),            # no used data: end of the last MDL
    ([4, 6], 4, 6, 1, 0),            # DataOffset exactly at an MDL boundary
    ([4, 0, 6], 4, 6, 2, 0),         # zero-length MDL skipped
    ([1, 1, 1, 1], 3, 1, 3, 0),      # 1-byte MDLs
    ([0, 0, 5], 0, 5, 2, 0),
    ([4, 6], 5, 3, 1, 1),
]


@pytest.mark.parametrize("sizes,offset,length,index,in_mdl", PLACEMENT)
def test_allocate_net_buffer_places_current_mdl(k, nb_pool, sizes, offset, length, index,
                                                in_mdl):
    va, mdls = _chain(k, sizes)
    nb = k.NdisAllocateNetBuffer(nb_pool, mdls[0], offset, length)
    assert nb.MdlChain == mdls[0]
    assert (nb.DataOffset, nb.DataLength) == (offset, length)
    assert nb.CurrentMdl == mdls[index] and nb.CurrentMdlOffset == in_mdl
    k.check_nb(nb)
    nb.CurrentMdl = mdls[0]
    nb.CurrentMdlOffset = 0
    k.NdisAdjustNetBufferCurrentMdl(nb)
    assert nb.CurrentMdl == mdls[index] and nb.CurrentMdlOffset == in_mdl
    k.NdisFreeNetBuffer(nb)
    _free_chain(k, va, mdls)


def test_null_chain_needs_zero_lengths(k, nb_pool, pool):
    nb = k.NdisAllocateNetBuffer(nb_pool, None, 0, 0)
    assert nb.CurrentMdl == ffi.NULL
    k.check_nb(nb)
    k.NdisFreeNetBuffer(nb)
    before = live(k)
    expect_bugcheck(lambda: k.NdisAllocateNetBuffer(nb_pool, None, 1, 0), 0x8F, "NULL")
    expect_bugcheck(lambda: k.NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, None, 0, 5),
                    0x8F)
    assert live(k) == before


def test_lengths_beyond_the_chain_are_refused(k, nb_pool):
    va, mdls = _chain(k, [8])
    before = live(k)
    expect_bugcheck(lambda: k.NdisAllocateNetBuffer(nb_pool, mdls[0], 4, 5), 0x8F, "exceeds")
    assert live(k) == before
    _free_chain(k, va, mdls)


def test_allocate_nb_and_nbl(k, pool, nbl_pool):
    va, mdls = _chain(k, [20, 30])
    nbl = k.NdisAllocateNetBufferAndNetBufferList(pool, 16, 0, mdls[0], 25, 20)
    nb = nbl.FirstNetBuffer
    assert nb.CurrentMdl == mdls[1] and nb.CurrentMdlOffset == 5 and nb.DataLength == 20
    assert nbl.Context != ffi.NULL
    assert ndisemu.NET_BUFFER_LIST_CONTEXT_DATA_SIZE(nbl) == 16
    k.NdisFreeNetBufferList(nbl)
    # the caller's MDLs are the caller's: still live
    assert live(k)["mdl"] == 2
    expect_bugcheck(lambda: k.NdisAllocateNetBufferAndNetBufferList(nbl_pool, 0, 0, None, 0, 0),
                    0x8C, "fAllocateNetBuffer")
    _free_chain(k, va, mdls)


def test_free_nbl_leaves_attached_nbs(k, nbl_pool, nb_pool):
    nbl = k.NdisAllocateNetBufferList(nbl_pool, 0, 0)
    nb = k.NdisAllocateNetBuffer(nb_pool, None, 0, 0)
    nbl.FirstNetBuffer = nb
    k.NdisFreeNetBufferList(nbl)
    assert live(k)["nb"] == 1          # documented: free it yourself
    k.NdisFreeNetBuffer(nb)


def test_context_size_arguments(k, pool):
    with pytest.raises(ValueError, match="multiple of 16"):
        k.NdisAllocateNetBufferList(pool, 8, 0)
    with pytest.raises(TypeError):
        k.NdisAllocateNetBufferList(pool, 16.0, 0)
    with pytest.raises(ValueError):
        k.NdisAllocateNetBufferList(pool, 0, -16)


def test_allocation_context_layout(k):
    pool = k.NdisAllocateNetBufferListPool(None, {"ContextSize": 32})
    plain = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert plain.Context.Size == 32 and plain.Context.Offset == 32   # all backfill
    used = k.NdisAllocateNetBufferList(pool, 32, 0)
    start = ndisemu.NET_BUFFER_LIST_CONTEXT_DATA_START(used)
    assert start == ffi.cast("uint8_t *", used.Context) + 16
    assert int(ffi.cast("uintptr_t", start)) % 16 == 0
    bigger = k.NdisAllocateNetBufferList(pool, 48, 16)
    assert (bigger.Context.Size, bigger.Context.Offset) == (64, 16)
    for nbl in (plain, used, bigger):
        k.NdisFreeNetBufferList(nbl)
    assert live(k)["context"] == 0


def test_context_lifo(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert nbl.Context == ffi.NULL
    ok = ndisemu.NDIS_STATUS_SUCCESS
    assert k.NdisAllocateNetBufferListContext(nbl, 16, 32, 0x78746374) == ok
    first = nbl.Context
    assert (first.Size, first.Offset) == (48, 32)
    assert k.NdisAllocateNetBufferListContext(nbl, 24, 0, 1) == ok   # from the backfill
    assert nbl.Context == first and first.Offset == 8
    assert k.NdisAllocateNetBufferListContext(nbl, 16, 0, 1) == ok   # new block in front
    assert nbl.Context != first and nbl.Context.Next == first
    assert live(k)["context"] == 2
    expect_bugcheck(lambda: k.NdisFreeNetBufferListContext(nbl, 24), 0x86, "out of order")
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x86, "not freed first")
    k.NdisFreeNetBufferListContext(nbl, 16)
    assert nbl.Context == first
    k.NdisFreeNetBufferListContext(nbl, 24)
    assert first.Offset == 32
    k.NdisFreeNetBufferListContext(nbl, 16)
    assert nbl.Context == ffi.NULL and live(k)["context"] == 0
    expect_bugcheck(lambda: k.NdisFreeNetBufferListContext(nbl, 16), 0x86, "no ")
    k.NdisFreeNetBufferList(nbl)


def test_preallocated_context_is_not_freed_by_context_call(k):
    pool = k.NdisAllocateNetBufferListPool(None, {"ContextSize": 16})
    nbl = k.NdisAllocateNetBufferList(pool, 16, 0)
    expect_bugcheck(lambda: k.NdisFreeNetBufferListContext(nbl, 16), 0x86, "allocation")
    k.NdisFreeNetBufferList(nbl)


def test_context_allocation_failure_changes_nothing(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    k.inject_failures(1.0)
    assert k.NdisAllocateNetBufferListContext(nbl, 16, 0, 1) == ndisemu.NDIS_STATUS_RESOURCES
    assert nbl.Context == ffi.NULL
    k.inject_failures(0.0)
    k.NdisFreeNetBufferList(nbl)


def test_context_alignment_is_pointer_size(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    with pytest.raises(ValueError, match="multiple of 8"):
        k.NdisAllocateNetBufferListContext(nbl, 12, 0, 1)
    assert k.NdisAllocateNetBufferListContext(nbl, 8, 8, 1) == 0
    k.NdisFreeNetBufferListContext(nbl, 8)
    k.NdisFreeNetBufferList(nbl)


BUILD_SHAPES = [
    # payloads, mdl_sizes, data_offset, expected MDL byte counts of the first NB
    ([b"abcdef"], None, 0, [6]),
    ([b"abcdef"], [1], 0, [1] * 6),
    ([b"abcdef"], [2, 1], 3, [2, 1, 1, 1, 1, 1, 1, 1]),
    ([b"abcdef"], [4], 4, [4, 4, 2]),            # data_offset at an MDL boundary
    ([b"abcdef"], [2], 5, [2, 2, 2, 2, 2, 1]),   # current MDL is not the first
    ([b""], None, 0, []),
    ([b""], None, 3, [3]),
    ([b"x", b"yz", b""], [1], 1, [1, 1]),
]


@pytest.mark.parametrize("payloads,sizes,offset,counts", BUILD_SHAPES)
def test_build_nbl_shapes(k, pool, payloads, sizes, offset, counts):
    before = live(k)
    nbl = k.build_nbl(pool, payloads, mdl_sizes=sizes, data_offset=offset)
    assert k.nbl_bytes(nbl) == [bytes(p) for p in payloads]
    nb = nbl.FirstNetBuffer
    got, m = [], nb.MdlChain
    while m != ffi.NULL:
        got.append(m.ByteCount)
        assert int(ffi.cast("uintptr_t", m.MappedSystemVa)) % 16 == 0
        m = m.Next
    assert got == counts
    if counts:
        backfill = bytes(ffi.buffer(nb.MdlChain.MappedSystemVa, min(offset, counts[0])))
        assert all(backfill)                     # non-zero pattern
    k.check_nbl(nbl)
    k.free_built(nbl)
    assert live(k) == before


def test_build_nbl_empty_list_and_nbl_pool_without_nb(k, pool, nbl_pool):
    nbl = k.build_nbl(pool, [])
    assert nbl.FirstNetBuffer == ffi.NULL
    k.free_built(nbl)
    nbl = k.build_nbl(nbl_pool, [b"a", b"b"])
    assert k.nbl_bytes(nbl) == [b"a", b"b"]
    k.free_built(nbl)
    assert live(k)["nb"] == 0


def test_build_nbl_arguments(k, pool):
    with pytest.raises(TypeError):
        k.build_nbl(pool, b"abc")
    with pytest.raises(TypeError):
        k.build_nbl(pool, ["abc"])
    with pytest.raises(ValueError, match="last size"):
        k.build_nbl(pool, [b"abc"], mdl_sizes=[1, 0])
    assert live(k)["nbl"] == 0


def test_built_nbl_is_freed_with_free_built(k, pool):
    nbl = k.build_nbl(pool, [b"abc"])
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x84, "free_built")
    expect_bugcheck(lambda: k.NdisFreeMdl(nbl.FirstNetBuffer.MdlChain), 0x84, "free_built")
    k.free_built(nbl)


def test_nb_bytes_of_1_byte_mdls_at_offsets(k, pool):
    payload = bytes(range(1, 40))
    nbl = k.build_nbl(pool, [payload], mdl_sizes=[1], data_offset=7)
    assert k.nb_bytes(nbl.FirstNetBuffer) == payload
    k.free_built(nbl)


def test_freeing_an_nb_with_retreat_mdls_is_refused(k, pool, nb_pool):
    nb = k.NdisAllocateNetBuffer(nb_pool, None, 0, 0)
    assert k.NdisRetreatNetBufferDataStart(nb, 10, 0, None) == ndisemu.NDIS_STATUS_SUCCESS
    expect_bugcheck(lambda: k.NdisFreeNetBuffer(nb), 0x84, "retreat")
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert k.NdisRetreatNetBufferListDataStart(nbl, 4, 0, None, None) == 0
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x84, "would leak")
    k.NdisAdvanceNetBufferListDataStart(nbl, 4, True, None)
    k.NdisAdvanceNetBufferDataStart(nb, 10, True, None)
    k.NdisFreeNetBufferList(nbl)
    k.NdisFreeNetBuffer(nb)
    assert live(k)["mdl"] == 0 and live(k)["data"] == 0
