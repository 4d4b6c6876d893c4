"""Derived NBLs (docs/derived.md): clones, FWPS clones, deep clones, fragments,
reassembly; shared data, offsets, counts and every free rule."""

import pytest
from conftest import examples, expect_bugcheck, live, mdl_list, nb_list
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ndisemu
from ndisemu import ffi
from ndisemu.strategies import nbl_shapes

USE_ORIGINAL = ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS


mdls_of = mdl_list
nbs_of = nb_list


def test_clone_shares_data_and_covers_used_bytes(k, pool):
    orig = k.build_nbl(pool, [b"ABCDEFGHIJ", b"klmn"], mdl_sizes=[3], data_offset=4)
    before = live(k)
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    assert k.nbl_bytes(clone) == [b"ABCDEFGHIJ", b"klmn"]
    first = clone.FirstNetBuffer
    assert first.DataOffset == 0 and first.CurrentMdl == first.MdlChain
    assert first.CurrentMdlOffset == 0
    assert [m.ByteCount for m in mdls_of(first)] == [2, 3, 3, 2]
    for m in mdls_of(first):
        assert m.MdlFlags & ndisemu.MDL_PARTIAL
        assert m.MdlFlags & ndisemu.MDL_SOURCE_IS_NONPAGED_POOL
    # partial MDLs describe the original's bytes: no copy
    assert mdls_of(first)[0].MappedSystemVa == ffi.cast(
        "uint8_t *", mdls_of(orig.FirstNetBuffer)[1].MappedSystemVa) + 1
    assert clone.Context == ffi.NULL
    assert clone.ParentNetBufferList == ffi.NULL and orig.ChildRefCount == 0
    assert k.stats()["bytes_copied"] == 0
    k.check_nbl(clone)
    # writes through the clone are seen in the original
    assert k.NdisGetDataBuffer(first, 4, None, 1, 0) == ffi.NULL   # spans two MDLs
    buf = k.NdisGetDataBuffer(first, 2, None, 1, 0)
    assert buf != ffi.NULL
    ffi.memmove(buf, b"wx", 2)
    assert k.nbl_bytes(orig)[0] == b"wxCDEFGHIJ"
    k.NdisFreeCloneNetBufferList(clone, 0)
    assert live(k) == {**before}
    k.free_built(orig)


def test_clone_with_original_mdls(k, pool):
    orig = k.build_nbl(pool, [b"0123456789"], mdl_sizes=[4], data_offset=6)
    mdl_count = live(k)["mdl"]
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, USE_ORIGINAL)
    assert live(k)["mdl"] == mdl_count
    nb, src = clone.FirstNetBuffer, orig.FirstNetBuffer
    assert nb != src and nb.MdlChain == src.MdlChain
    assert (nb.DataOffset, nb.DataLength, nb.CurrentMdl, nb.CurrentMdlOffset) == (
        src.DataOffset, src.DataLength, src.CurrentMdl, src.CurrentMdlOffset)
    assert k.nbl_bytes(clone) == [b"0123456789"]
    expect_bugcheck(lambda: k.NdisFreeCloneNetBufferList(clone, 0), 0x89, "FreeCloneFlags")
    k.NdisFreeCloneNetBufferList(clone, USE_ORIGINAL)
    assert live(k)["mdl"] == mdl_count          # the original's MDLs survive
    assert k.nbl_bytes(orig) == [b"0123456789"]
    k.free_built(orig)


def test_clone_flag_mismatch_the_other_way(k, pool):
    orig = k.build_nbl(pool, [b"abc"])
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    err = expect_bugcheck(lambda: k.NdisFreeCloneNetBufferList(clone, USE_ORIGINAL), 0x89)
    assert err.parameters[2:] == (USE_ORIGINAL, 0)
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.free_built(orig)


@pytest.mark.parametrize("flags", [ndisemu.NDIS_CLONE_FLAGS_RESERVED, 4, 3])
def test_reserved_clone_flags_rejected(k, pool, flags):
    orig = k.build_nbl(pool, [b"abc"])
    before = live(k)
    with pytest.raises(ValueError, match="RESERVED"):
        k.NdisAllocateCloneNetBufferList(orig, None, None, flags)
    assert live(k) == before
    k.free_built(orig)


def test_clone_uses_given_pools(k, pool):
    clone_pool = k.NdisAllocateNetBufferListPool(None, {"ProtocolId": 6, "PoolTag": 0x31})
    nb_pool = k.NdisAllocateNetBufferPool(None, {"PoolTag": 0x32})
    orig = k.build_nbl(pool, [b"a", b"b"])
    clone = k.NdisAllocateCloneNetBufferList(orig, clone_pool, nb_pool, 0)
    assert k.NdisGetPoolFromNetBufferList(clone) == clone_pool
    assert k.NdisGetPoolFromNetBuffer(clone.FirstNetBuffer) == nb_pool
    assert k.NdisGetNetBufferListProtocolId(clone) == 6
    assert k.pool_info(nb_pool)["live"] == 2
    expect_bugcheck(lambda: k.NdisFreeNetBufferPool(nb_pool), 0x27)
    k.NdisFreeCloneNetBufferList(clone, 0)
    default = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    assert k.NdisGetPoolFromNetBufferList(default) == k.default_nbl_pool
    k.NdisFreeCloneNetBufferList(default, 0)
    k.NdisFreeNetBufferPool(nb_pool)
    k.NdisFreeNetBufferListPool(clone_pool)
    k.free_built(orig)


def test_clone_is_freed_with_its_own_call(k, pool):
    orig = k.build_nbl(pool, [b"abc"])
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(clone), 0x84, "NdisFreeCloneNetBufferList")
    expect_bugcheck(lambda: k.FwpsFreeCloneNetBufferList0(clone, 0), 0x84)
    expect_bugcheck(lambda: k.NdisFreeNetBuffer(clone.FirstNetBuffer), 0x84, "clone")
    expect_bugcheck(lambda: k.NdisFreeCloneNetBufferList(orig, 0), 0x84)
    k.NdisFreeCloneNetBufferList(clone, 0)
    expect_bugcheck(lambda: k.NdisFreeCloneNetBufferList(clone, 0), 0x82)
    k.free_built(orig)


def test_offset_inheritance(k, pool):
    """Inject pattern: retreat the original by the IP header, clone, advance
    the original back; the clone keeps the retreated start."""
    orig = k.build_nbl(pool, [b"PAYLOAD"], data_offset=20)
    nb = orig.FirstNetBuffer
    assert k.NdisRetreatNetBufferDataStart(nb, 20, 0, None) == ndisemu.NDIS_STATUS_SUCCESS
    header = bytes(k.nb_bytes(nb)[:20])
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    k.NdisAdvanceNetBufferDataStart(nb, 20, False, None)
    assert k.nb_bytes(nb) == b"PAYLOAD"
    assert k.nbl_bytes(clone) == [header + b"PAYLOAD"]
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.free_built(orig)


def test_fwps_clone_links_parent_and_counts(k, pool):
    orig = k.build_nbl(pool, [b"abcdef"], mdl_sizes=[2])
    status, a = k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0)
    assert status == ndisemu.STATUS_SUCCESS
    status, b = k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0)
    assert a.ParentNetBufferList == orig and orig.ChildRefCount == 2
    assert k.nbl_bytes(b) == [b"abcdef"]
    expect_bugcheck(lambda: k.free_built(orig), 0x85)
    expect_bugcheck(lambda: k.NdisFreeCloneNetBufferList(a, 0), 0x84)
    k.FwpsFreeCloneNetBufferList0(a, 0)
    assert orig.ChildRefCount == 1
    k.FwpsFreeCloneNetBufferList0(b)
    assert orig.ChildRefCount == 0
    with pytest.raises(ValueError):
        k.FwpsAllocateCloneNetBufferList0(orig, None, None, 2)
    with pytest.raises(ValueError):
        k.FwpsFreeCloneNetBufferList0(orig, 1)
    k.free_built(orig)


def test_fwps_clone_changes_must_be_undone(k, pool, nb_pool):
    orig = k.build_nbl(pool, [b"abcdef", b"gh"])
    _, clone = k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0)
    first, second = nbs_of(clone)
    # drop the second NB, replace the first NB's chain: not undone -> bug check
    first.Next = ffi.NULL
    expect_bugcheck(lambda: k.FwpsFreeCloneNetBufferList0(clone, 0), 0x8A, "restored")
    first.Next = second
    saved = (first.MdlChain, first.CurrentMdl, first.DataLength)
    extra = k.NdisAllocateNetBuffer(nb_pool, None, 0, 0)
    clone.FirstNetBuffer = extra
    expect_bugcheck(lambda: k.FwpsFreeCloneNetBufferList0(clone, 0), 0x8A)
    clone.FirstNetBuffer = first
    # a retreat that allocated must be advanced back first
    assert k.NdisRetreatNetBufferDataStart(first, 8, 0, None) == 0
    expect_bugcheck(lambda: k.FwpsFreeCloneNetBufferList0(clone, 0), 0x8A, "retreat")
    k.NdisAdvanceNetBufferDataStart(first, 8, True, None)
    assert (first.MdlChain, first.CurrentMdl, first.DataLength) == saved
    k.FwpsFreeCloneNetBufferList0(clone, 0)
    assert orig.ChildRefCount == 0
    k.NdisFreeNetBuffer(extra)
    k.free_built(orig)


def test_deep_clone_copies(k, pool):
    orig = k.build_nbl(pool, [b"hello", b"", b"world!"], mdl_sizes=[1], data_offset=3)
    status, deep = k.FwpsAllocateDeepCloneNetBufferList0(orig, None, None)
    assert status == 0 and deep.ParentNetBufferList == orig and orig.ChildRefCount == 1
    assert k.nbl_bytes(deep) == [b"hello", b"", b"world!"]
    assert k.stats()["bytes_copied"] == 11
    nbs = nbs_of(deep)
    assert [len(mdls_of(nb)) for nb in nbs] == [1, 0, 1]
    assert nbs[1].MdlChain == ffi.NULL
    assert deep.Context != ffi.NULL and deep.Context.Offset == deep.Context.Size >= 16
    # not shared: writing the copy leaves the original alone
    ffi.memmove(nbs[0].MdlChain.MappedSystemVa, b"J", 1)
    assert k.nbl_bytes(deep)[0] == b"Jello" and k.nbl_bytes(orig)[0] == b"hello"
    expect_bugcheck(lambda: k.NdisFreeCloneNetBufferList(deep, 0), 0x84)
    k.FwpsFreeCloneNetBufferList0(deep, 0)
    assert orig.ChildRefCount == 0
    k.free_built(orig)


def test_fragments(k, pool):
    payload = bytes(range(100))
    orig = k.build_nbl(pool, [payload, b"xyz"], mdl_sizes=[7, 1, 0 + 13], data_offset=5)
    frag = k.NdisAllocateFragmentNetBufferList(orig, None, None, 10, 32, 14, 2)
    pieces = k.nbl_bytes(frag)
    assert [len(p) for p in pieces] == [14 + 32, 14 + 32, 14 + 26]
    assert b"".join(p[14:] for p in pieces) == payload[10:]
    for nb in nbs_of(frag):
        assert nb.DataOffset == 2
        k.check_nb(nb)
    assert frag.ParentNetBufferList == ffi.NULL and orig.ChildRefCount == 0
    expect_bugcheck(lambda: k.NdisFreeFragmentNetBufferList(frag, 13), 0x8F, "DataOffsetDelta")
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(frag), 0x84, "NdisFreeFragment")
    k.NdisFreeFragmentNetBufferList(frag, 14)
    with pytest.raises(ValueError):
        k.NdisAllocateFragmentNetBufferList(orig, None, None, 0, 0, 0, 0)
    with pytest.raises(ValueError):
        k.NdisAllocateFragmentNetBufferList(orig, None, None, 0, 8, 0, 0, 1)
    k.free_built(orig)


def test_fragment_without_retreat_and_past_the_end(k, pool):
    orig = k.build_nbl(pool, [b"abcdefgh", b"ij"])
    frag = k.NdisAllocateFragmentNetBufferList(orig, None, None, 3, 4, 0, 0)
    assert k.nbl_bytes(frag) == [b"defg", b"h"]          # the 2-byte NB gives nothing
    assert frag.FirstNetBuffer.DataOffset == 0
    k.NdisFreeFragmentNetBufferList(frag, 0)
    empty = k.NdisAllocateFragmentNetBufferList(orig, None, None, 50, 4, 0, 0)
    assert empty.FirstNetBuffer == ffi.NULL
    k.NdisFreeFragmentNetBufferList(empty, 0)
    k.free_built(orig)


def test_reassembly(k, pool):
    orig = k.build_nbl(pool, [b"HDR1part-one,", b"HDR2part-two"], mdl_sizes=[5])
    joined = k.NdisAllocateReassembledNetBufferList(orig, None, 4, 8, 8)
    (data,) = k.nbl_bytes(joined)
    assert data[8:] == b"part-one,part-two" and len(data) == 8 + 17
    assert joined.FirstNetBuffer.DataOffset == 8 and joined.FirstNetBuffer.Next == ffi.NULL
    k.check_nbl(joined)
    k.NdisFreeReassembledNetBufferList(joined, 8)
    bad_pool = k.NdisAllocateNetBufferListPool(None, {})
    expect_bugcheck(lambda: k.NdisAllocateReassembledNetBufferList(orig, bad_pool, 0, 0, 0),
                    0x8C)
    good_pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    joined = k.NdisAllocateReassembledNetBufferList(orig, good_pool, 0, 0, 0)
    assert k.NdisGetPoolFromNetBufferList(joined) == good_pool
    assert k.nbl_bytes(joined) == [b"HDR1part-one,HDR2part-two"]
    k.NdisFreeReassembledNetBufferList(joined, 0)
    k.NdisFreeNetBufferListPool(good_pool)
    k.NdisFreeNetBufferListPool(bad_pool)
    k.free_built(orig)


def test_clones_of_clones_and_of_fragments_any_free_order(k, pool):
    orig = k.build_nbl(pool, [bytes(range(40)), b"tail"], mdl_sizes=[1, 3], data_offset=2)
    start = live(k)
    frag = k.NdisAllocateFragmentNetBufferList(orig, None, None, 0, 16, 4, 0)
    _, fc = k.FwpsAllocateCloneNetBufferList0(frag, None, None, 0)
    c1 = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    c2 = k.NdisAllocateCloneNetBufferList(c1, None, None, USE_ORIGINAL)
    _, c3 = k.FwpsAllocateCloneNetBufferList0(c2, None, None, 0)
    _, d1 = k.FwpsAllocateDeepCloneNetBufferList0(c3, None, None)
    for derived in (fc, c1, c2, c3, d1):
        assert b"".join(k.nbl_bytes(derived)) in (b"".join(k.nbl_bytes(orig)),
                                                   b"".join(k.nbl_bytes(frag)))
    assert (frag.ChildRefCount, c2.ChildRefCount, c3.ChildRefCount) == (1, 1, 1)
    expect_bugcheck(lambda: k.NdisFreeCloneNetBufferList(c2, USE_ORIGINAL), 0x85)
    expect_bugcheck(lambda: k.NdisFreeFragmentNetBufferList(frag, 4), 0x85)
    k.FwpsFreeCloneNetBufferList0(d1, 0)
    k.FwpsFreeCloneNetBufferList0(fc, 0)
    k.NdisFreeFragmentNetBufferList(frag, 4)
    k.FwpsFreeCloneNetBufferList0(c3, 0)
    k.NdisFreeCloneNetBufferList(c2, USE_ORIGINAL)
    k.NdisFreeCloneNetBufferList(c1, 0)
    assert live(k) == start and orig.ChildRefCount == 0
    k.free_built(orig)


def test_parent_freed_first_is_refused_while_a_clone_describes_it(k, pool):
    orig = k.build_nbl(pool, [b"abc"])
    _, clone = k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0)
    orig.ChildRefCount = 0            # a driver breaking the bookkeeping by hand
    before = live(k)
    err = expect_bugcheck(lambda: k.free_built(orig), 0x90, "still describes",
                          "FwpsAllocateCloneNetBufferList0")
    assert err.parameters[3] == k.display(clone)
    assert live(k) == before          # refused: nothing freed
    orig.ChildRefCount = 1
    k.FwpsFreeCloneNetBufferList0(clone, 0)
    k.free_built(orig)


def test_parent_freed_first_without_the_verifier_is_caught_at_the_clone(k, pool):
    k.verifier = False                # no record of described bytes is kept
    orig = k.build_nbl(pool, [b"abc"])
    _, clone = k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0)
    orig.ChildRefCount = 0
    k.free_built(orig)
    expect_bugcheck(lambda: k.FwpsFreeCloneNetBufferList0(clone, 0), 0x83, "parent")


@pytest.mark.parametrize("call", ["clone", "original", "fwps", "deep", "fragment", "reassemble"])
def test_failed_allocation_changes_nothing(k, pool, call):
    orig = k.build_nbl(pool, [bytes(300), bytes(20)], mdl_sizes=[50])
    before = live(k)
    k.inject_failures(1.0)
    result = {
        "clone": lambda: k.NdisAllocateCloneNetBufferList(orig, None, None, 0),
        "original": lambda: k.NdisAllocateCloneNetBufferList(orig, None, None, USE_ORIGINAL),
        "fwps": lambda: k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0),
        "deep": lambda: k.FwpsAllocateDeepCloneNetBufferList0(orig, None, None),
        "fragment": lambda: k.NdisAllocateFragmentNetBufferList(orig, None, None, 0, 64, 8, 8),
        "reassemble": lambda: k.NdisAllocateReassembledNetBufferList(orig, None, 0, 8, 0),
    }[call]()
    k.inject_failures(0.0)
    if isinstance(result, tuple):
        assert result == (ndisemu.STATUS_INSUFFICIENT_RESOURCES, ffi.NULL)
    else:
        assert result == ffi.NULL
    assert live(k) == before and orig.ChildRefCount == 0
    assert k.pool_info(k.default_nbl_pool)["live"] == 0
    k.free_built(orig)


def test_fwps_allocate_and_free_nbl(k, pool):
    va = k.NdisAllocateMemoryWithTagPriority(None, 32, 9, 16)
    mdl = k.NdisAllocateMdl(None, va, 32)
    status, nbl = k.FwpsAllocateNetBufferAndNetBufferList0(pool, 0, 0, mdl, 4, 28)
    assert status == 0 and nbl.FirstNetBuffer.DataLength == 28
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x84, "FwpsFreeNetBufferList0")
    k.FwpsFreeNetBufferList0(nbl)
    assert live(k)["mdl"] == 1         # the caller's chain is not freed
    k.NdisFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, va, 9)


def test_fwps_reference_keeps_nbl(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    k.FwpsReferenceNetBufferList0(nbl, True)
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x8B, "references")
    expect_bugcheck(lambda: k.FwpsDereferenceNetBufferList0(nbl, True), 0x8F, "DISPATCH")
    k.FwpsDereferenceNetBufferList0(nbl, False)
    expect_bugcheck(lambda: k.FwpsDereferenceNetBufferList0(nbl, False), 0x8B, "without")
    k.irql = ndisemu.DISPATCH_LEVEL
    k.FwpsReferenceNetBufferList0(nbl, False)
    k.FwpsDereferenceNetBufferList0(nbl, True)
    k.irql = 0
    k.NdisFreeNetBufferList(nbl)


def test_clone_source_must_be_consistent(k, pool):
    orig = k.build_nbl(pool, [b"abcdef"], mdl_sizes=[2])
    nb = orig.FirstNetBuffer
    nb.DataLength = 100
    expect_bugcheck(lambda: k.NdisAllocateCloneNetBufferList(orig, None, None, 0), 0x87,
                    "DataLength")
    k.verifier = False       # the light check still refuses to walk off the chain
    expect_bugcheck(lambda: k.NdisAllocateCloneNetBufferList(orig, None, None, 0), 0x87)
    expect_bugcheck(lambda: k.FwpsAllocateDeepCloneNetBufferList0(orig, None, None), 0x87)
    k.verifier = True
    nb.DataLength = 6
    k.free_built(orig)


# -- property: every derived NBL reads back what the documentation says ----

SHAPES = nbl_shapes(max_len=90, max_mdls=6, max_data_offset=24)


@settings(max_examples=examples(120), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(SHAPES, st.integers(0, 40), st.integers(1, 40), st.integers(0, 12), st.integers(0, 12))
def test_derived_nbls_read_back_documented_bytes(shape, start, max_len, delta, backfill):
    k = ndisemu.Kernel(arena_size=4 << 20)
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    orig = k.build_nbl(pool, **shape)
    payloads = [bytes(p) for p in shape["payloads"]]
    start_counts = live(k)

    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    assert k.nbl_bytes(clone) == payloads
    shared = k.NdisAllocateCloneNetBufferList(orig, None, None, USE_ORIGINAL)
    assert k.nbl_bytes(shared) == payloads
    _, fwps = k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0)
    assert k.nbl_bytes(fwps) == payloads
    _, deep = k.FwpsAllocateDeepCloneNetBufferList0(orig, None, None)
    assert k.nbl_bytes(deep) == payloads
    frag = k.NdisAllocateFragmentNetBufferList(orig, None, None, start, max_len, delta,
                                               backfill)
    expected = [p[start:][i:i + max_len] for p in payloads if len(p) > start
                for i in range(0, len(p) - start, max_len)]
    got = k.nbl_bytes(frag)
    assert [g[delta:] for g in got] == expected
    assert all(len(g) == len(e) + delta for g, e in zip(got, expected, strict=True))
    joined = k.NdisAllocateReassembledNetBufferList(orig, None, start, delta, backfill)
    (whole,) = k.nbl_bytes(joined)
    assert whole[delta:] == b"".join(p[start:] for p in payloads)
    for nbl in (clone, shared, fwps, deep, frag, joined):
        k.check_nbl(nbl)
    assert orig.ChildRefCount == 2

    k.NdisFreeReassembledNetBufferList(joined, delta)
    k.FwpsFreeCloneNetBufferList0(deep, 0)
    k.NdisFreeFragmentNetBufferList(frag, delta)
    k.NdisFreeCloneNetBufferList(shared, USE_ORIGINAL)
    k.FwpsFreeCloneNetBufferList0(fwps, 0)
    k.NdisFreeCloneNetBufferList(clone, 0)
    assert live(k) == start_counts and orig.ChildRefCount == 0
    assert k.nbl_bytes(orig) == payloads
    k.free_built(orig)
    k.NdisFreeNetBufferListPool(pool)
    assert all(v == 0 for v in live(k).values())


@pytest.mark.parametrize("flags,error", [(-1, ValueError), (1 << 32, ValueError),
                                         ("0", TypeError), (None, TypeError)])
def test_free_clone_flag_arguments(k, pool, flags, error):
    orig = k.build_nbl(pool, [b"abc"])
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    with pytest.raises(error):
        k.NdisFreeCloneNetBufferList(clone, flags)
    with pytest.raises(error):
        k.NdisAllocateCloneNetBufferList(orig, None, None, flags)
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.free_built(orig)
