"""Data-space operations (issue 5): retreat/advance, NdisGetDataBuffer,
NB-to-NB copies, info copies, protocol id and hash helpers.  Table-driven
cases in the style of DPDK's test_mbuf.c / KUnit, then a Hypothesis state
machine with a bytes oracle."""

import numpy as np
import pytest
from conftest import examples, mdl_list
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import ndisemu
from ndisemu import ffi
from ndisemu.strategies import nbl_shapes

SUCCESS = ndisemu.NDIS_STATUS_SUCCESS
RESOURCES = ndisemu.NDIS_STATUS_RESOURCES
TAG = 0x74736554  # "Test"
COUNTED = ("nbl", "nb", "mdl", "data", "memory", "context")


def counts(k):
    s = k.stats()
    return {key: s[key] for key in COUNTED}


def addr(p):
    return int(ffi.cast("uintptr_t", p))


def fields(nb):
    """Every field a data-space call may touch."""
    return (addr(nb.MdlChain), addr(nb.CurrentMdl), nb.CurrentMdlOffset, nb.DataOffset,
            nb.DataLength)


chain = mdl_list


def pattern(n):
    """build_nbl's backfill pattern for the first n bytes of the data space."""
    return bytes(0xB0 | (i & 0x0F) for i in range(n))




class HandlerMdls:
    """An AllocateMdlHandler / FreeMdlHandler pair over
    NdisAllocateMemoryWithTagPriority + NdisAllocateMdl."""

    def __init__(self, k, extra=0, fail_on=None):
        self.k, self.extra, self.fail_on = k, extra, fail_on
        self.calls, self.live, self.sizes = 0, {}, []

    def allocate(self, size):
        self.calls += 1
        self.sizes.append(size)
        if self.fail_on is not None and self.calls == self.fail_on:
            return None
        va = self.k.NdisAllocateMemoryWithTagPriority(None, size + self.extra, TAG,
                                                      ndisemu.NormalPagePriority)
        if va == ffi.NULL:                  # low resources: as a driver's handler would
            return None
        ffi.memmove(va, b"\x5a" * (size + self.extra), size + self.extra)
        mdl = self.k.NdisAllocateMdl(None, va, size + self.extra)
        if mdl == ffi.NULL:
            self.k.NdisFreeMemoryWithTagPriority(None, va, TAG)
            return None
        self.live[addr(mdl)] = va
        return mdl

    def free(self, mdl):
        va = self.live.pop(addr(mdl))
        self.k.NdisFreeMdl(mdl)
        self.k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def manual_nb(k, sizes, data_offset, data_length, nb_pool):
    """An NB over caller MDLs of `sizes` (zero-length ones allowed), bytes
    0, 1, 2, ... across the data space.  Returns (nb, cleanup)."""
    mems, mdls, at = [], [], 0
    for size in sizes:
        va = k.NdisAllocateMemoryWithTagPriority(None, max(size, 1), TAG,
                                                 ndisemu.NormalPagePriority)
        ffi.memmove(va, bytes((at + i) & 0xFF for i in range(size)), size)
        at += size
        mdl = k.NdisAllocateMdl(None, va, size)
        if mdls:
            mdls[-1].Next = mdl
        mems.append(va)
        mdls.append(mdl)
    nb = k.NdisAllocateNetBuffer(nb_pool, mdls[0] if mdls else None, data_offset, data_length)

    def cleanup():
        k.NdisFreeNetBuffer(nb)
        for mdl in mdls:
            mdl.Next = ffi.NULL
            k.NdisFreeMdl(mdl)
        for va in mems:
            k.NdisFreeMemoryWithTagPriority(None, va, TAG)

    return nb, cleanup


# -- retreat then advance: a round trip restores every field -------------------

# (payload length, mdl_sizes, data_offset, delta, backfill)
ROUND_TRIPS = [
    (10, None, 0, 0, 0),        # no-op
    (10, None, 8, 8, 0),        # delta == DataOffset: no allocation
    (10, None, 8, 3, 0),        # within the current MDL
    (10, [4], 8, 6, 0),         # back across an MDL boundary
    (10, [4], 8, 4, 0),         # lands exactly at an MDL start
    (10, [4], 4, 4, 16),        # DataOffset at an MDL end, delta reaches the chain start
    (10, [1], 5, 5, 0),         # 1-byte MDLs
    (10, [1], 5, 2, 0),
    (10, None, 0, 14, 0),       # allocation, no backfill
    (10, None, 0, 14, 32),      # allocation with backfill
    (10, [3], 5, 9, 7),         # allocation; old unused bytes become used
    (10, [1], 3, 20, 1),        # allocation over 1-byte MDLs
    (0, None, 0, 6, 2),         # empty NB (NULL MdlChain)
    (0, None, 4, 9, 0),         # no used data, some unused
]


@pytest.mark.parametrize("length, sizes, offset, delta, backfill", ROUND_TRIPS)
def test_retreat_advance_round_trip(k, pool, length, sizes, offset, delta, backfill):
    payload = bytes(range(0x41, 0x41 + length))
    nbl = k.build_nbl(pool, [payload], mdl_sizes=sizes, data_offset=offset)
    nb = nbl.FirstNetBuffer
    before, start = fields(nb), counts(k)
    assert k.NdisRetreatNetBufferDataStart(nb, delta, backfill, None) == SUCCESS
    k.check_nb(nb)
    assert nb.DataLength == length + delta
    data = k.nb_bytes(nb)
    assert data[delta:] == payload
    if delta <= offset:
        assert counts(k) == start
        assert nb.DataOffset == offset - delta
        assert addr(nb.MdlChain) == before[0]
        assert data[:delta] == pattern(offset)[offset - delta:]
    else:
        assert counts(k)["mdl"] == start["mdl"] + 1
        assert nb.DataOffset == backfill
        assert chain(nb)[0].ByteCount == delta - offset + backfill
        assert data[:delta] == bytes(delta - offset) + pattern(offset)
    k.NdisAdvanceNetBufferDataStart(nb, delta, True, None)
    k.check_nb(nb)
    assert k.nb_bytes(nb) == payload
    assert fields(nb)[0] == before[0] and fields(nb)[3:] == before[3:]
    assert counts(k) == start
    k.free_built(nbl)


def test_retreat_within_unused_space_moves_only_the_four_fields(k, pool):
    nbl = k.build_nbl(pool, [b"x" * 20], mdl_sizes=[6], data_offset=14)
    nb = nbl.FirstNetBuffer
    raw = bytes(ffi.buffer(nb, ffi.sizeof("NET_BUFFER")))
    assert k.NdisRetreatNetBufferDataStart(nb, 9, 100, None) == SUCCESS
    after = bytes(ffi.buffer(nb, ffi.sizeof("NET_BUFFER")))
    changed = {i for i in range(len(raw)) if raw[i] != after[i]}
    allowed = set()
    for name in ("CurrentMdl", "CurrentMdlOffset", "DataLength", "DataOffset"):
        off = ffi.offsetof("NET_BUFFER", name)
        allowed |= set(range(off, off + 8 if name == "CurrentMdl" else off + 4))
    assert changed and changed <= allowed
    assert (nb.DataOffset, nb.CurrentMdlOffset, nb.DataLength) == (5, 5, 29)
    k.free_built(nbl)


def test_repeated_retreats_stack_and_advance_frees_all(k, pool):
    nbl = k.build_nbl(pool, [b"payload"], data_offset=2)
    nb = nbl.FirstNetBuffer
    start, before = counts(k), fields(nb)
    for delta, backfill in ((5, 1), (4, 0), (10, 3)):
        assert k.NdisRetreatNetBufferDataStart(nb, delta, backfill, None) == SUCCESS
        k.check_nb(nb)
    assert counts(k)["mdl"] == start["mdl"] + 3     # each went beyond DataOffset
    assert [m.ByteCount for m in chain(nb)] == [13, 3, 4, 9]
    assert k.nb_bytes(nb)[-7:] == b"payload"
    # Without FreeMdl nothing is freed; the MDLs stay for later retreats.
    k.NdisAdvanceNetBufferDataStart(nb, 19, False, None)
    assert len(chain(nb)) == 4 and k.nb_bytes(nb) == b"payload"
    k.NdisRetreatNetBufferDataStart(nb, 19, 0, None)
    assert len(chain(nb)) == 4 and counts(k)["mdl"] == start["mdl"] + 3
    k.NdisAdvanceNetBufferDataStart(nb, 19, True, None)
    assert fields(nb) == before and counts(k) == start
    k.free_built(nbl)


def test_advance_frees_only_wholly_unused_retreat_mdls(k, pool):
    nbl = k.build_nbl(pool, [b"abcdef"])
    nb = nbl.FirstNetBuffer
    start = counts(k)
    assert k.NdisRetreatNetBufferDataStart(nb, 10, 0, None) == SUCCESS   # head MDL of 10
    k.NdisAdvanceNetBufferDataStart(nb, 9, True, None)                   # 1 byte still used
    assert counts(k)["mdl"] == start["mdl"] + 1
    k.NdisAdvanceNetBufferDataStart(nb, 1, True, None)                   # now wholly unused
    assert counts(k) == start and nb.DataOffset == 0 and k.nb_bytes(nb) == b"abcdef"
    k.free_built(nbl)


# -- zero-length and 1-byte MDLs over caller memory ---------------------------

# (MDL sizes, DataOffset, DataLength, retreat delta)
MANUAL_SHAPES = [
    ([0, 4, 0, 0, 3], 4, 3, 4),     # offset exactly at an MDL end, zero-length MDLs after it
    ([0, 4, 0, 0, 3], 4, 3, 2),
    ([0, 0, 5], 0, 5, 3),           # zero-length MDLs in front, allocating retreat
    ([1, 1, 1, 0, 1], 2, 2, 1),     # 1-byte MDLs
    ([1, 1, 1, 0, 1], 3, 1, 3),     # CurrentMdl after a zero-length MDL
    ([2, 0, 2], 2, 2, 5),
    ([3, 0], 3, 0, 1),              # no used data, ends on a zero-length MDL
]


@pytest.mark.parametrize("sizes, offset, length, delta", MANUAL_SHAPES)
def test_zero_length_and_one_byte_mdls(k, sizes, offset, length, delta):
    nb_pool = k.NdisAllocateNetBufferPool(None, {})
    nb, cleanup = manual_nb(k, sizes, offset, length, nb_pool)
    space = bytes(range(sum(sizes)))
    k.check_nb(nb)
    before, start = fields(nb), counts(k)
    assert k.nb_bytes(nb) == space[offset:offset + length]
    for step in range(1, length + 1):     # advance byte by byte, then back
        k.NdisAdvanceNetBufferDataStart(nb, 1, True, None)
        k.check_nb(nb)
        assert k.nb_bytes(nb) == space[offset + step:offset + length]
    k.NdisRetreatNetBufferDataStart(nb, length, 0, None)
    assert fields(nb)[3:] == before[3:]
    assert k.NdisRetreatNetBufferDataStart(nb, delta, 3, None) == SUCCESS
    k.check_nb(nb)
    got = k.nb_bytes(nb)
    assert got[delta:] == space[offset:offset + length]
    if delta <= offset:
        assert got[:delta] == space[offset - delta:offset]
    k.NdisAdvanceNetBufferDataStart(nb, delta, True, None)
    k.check_nb(nb)
    assert fields(nb)[0] == before[0] and fields(nb)[3:] == before[3:]
    assert counts(k) == start
    # The caller's MDLs are all still live: free them as the caller would.
    cleanup()
    k.NdisFreeNetBufferPool(nb_pool)


# -- handlers -------------------------------------------------------------------


def test_handler_allocates_and_frees(k, pool):
    nbl = k.build_nbl(pool, [b"data"], data_offset=2)
    nb = nbl.FirstNetBuffer
    h = HandlerMdls(k)
    before, start = fields(nb), counts(k)
    assert k.NdisRetreatNetBufferDataStart(nb, 6, 8, h.allocate) == SUCCESS
    assert h.sizes == [6 - 2 + 8]
    k.check_nb(nb)
    assert k.nb_bytes(nb) == b"\x5a" * 4 + pattern(2) + b"data"
    k.NdisAdvanceNetBufferDataStart(nb, 6, True, h.free)
    assert not h.live and fields(nb) == before and counts(k) == start
    k.free_built(nbl)


def test_handler_larger_mdl_puts_the_extra_in_front(k, pool):
    nbl = k.build_nbl(pool, [b"data"])
    nb = nbl.FirstNetBuffer
    h = HandlerMdls(k, extra=5)
    assert k.NdisRetreatNetBufferDataStart(nb, 3, 2, h.allocate) == SUCCESS
    assert nb.DataOffset == 2 + 5 and nb.DataLength == 7
    k.check_nb(nb)
    k.NdisAdvanceNetBufferDataStart(nb, 3, True, h.free)
    assert not h.live and nb.DataOffset == 0
    k.free_built(nbl)


def test_handler_returning_none_changes_nothing(k, pool):
    nbl = k.build_nbl(pool, [b"data"], data_offset=1)
    nb = nbl.FirstNetBuffer
    raw, start = bytes(ffi.buffer(nb, ffi.sizeof("NET_BUFFER"))), counts(k)
    status = k.NdisRetreatNetBufferDataStart(nb, 9, 0, lambda size: None)
    assert status == RESOURCES
    assert bytes(ffi.buffer(nb, ffi.sizeof("NET_BUFFER"))) == raw and counts(k) == start
    k.free_built(nbl)


@pytest.mark.parametrize("bad", ["small", "freed", "not_mdl", "linked"])
def test_bad_handler_mdl_is_a_bugcheck_and_changes_nothing(k, pool, bad):
    nbl = k.build_nbl(pool, [b"data", b"more"])
    nb = nbl.FirstNetBuffer
    h = HandlerMdls(k)

    def handler(size):
        if bad == "small":
            return h.allocate(size - 1) if size > 1 else h.allocate(0)
        if bad == "freed":
            mdl = h.allocate(size)
            h.free(mdl)
            return mdl
        if bad == "not_mdl":
            return ffi.cast("MDL *", nbl)
        return nb.Next.MdlChain if bad == "linked" else None

    if bad == "linked":   # another NB's single MDL has Next NULL: make it a chain
        other = HandlerMdls(k).allocate(1)
        nb.Next.MdlChain.Next = other
    raw = bytes(ffi.buffer(nb, ffi.sizeof("NET_BUFFER")))
    with pytest.raises(ndisemu.BugCheck) as err:
        k.NdisRetreatNetBufferDataStart(nb, 4, 0, handler)
    assert err.value.code == 0x7C
    assert "NdisRetreatNetBufferDataStart" in str(err.value)
    assert bytes(ffi.buffer(nb, ffi.sizeof("NET_BUFFER"))) == raw
    if bad == "linked":
        nb.Next.MdlChain.Next = ffi.NULL
    k.free_built(nbl)


def test_wrong_freer_is_a_bugcheck(k, pool):
    nbl = k.build_nbl(pool, [b"data"])
    nb = nbl.FirstNetBuffer
    h = HandlerMdls(k)
    k.NdisRetreatNetBufferDataStart(nb, 4, 0, h.allocate)
    before = fields(nb)
    with pytest.raises(ndisemu.BugCheck) as err:
        k.NdisAdvanceNetBufferDataStart(nb, 4, True, None)    # handler MDL, default freer
    assert err.value.parameters[0] == 0x84 and fields(nb) == before
    k.NdisAdvanceNetBufferDataStart(nb, 4, True, h.free)
    k.NdisRetreatNetBufferDataStart(nb, 4, 0, None)
    before = fields(nb)
    with pytest.raises(ndisemu.BugCheck) as err:
        k.NdisAdvanceNetBufferDataStart(nb, 4, True, h.free)  # default MDL, handler
    assert err.value.parameters[0] == 0x84 and fields(nb) == before
    k.NdisAdvanceNetBufferDataStart(nb, 4, True, None)
    k.free_built(nbl)


def test_advance_never_frees_a_callers_mdl(k, pool):
    nbl = k.build_nbl(pool, [b"abcdefgh"], mdl_sizes=[2], data_offset=2)
    nb = nbl.FirstNetBuffer
    start = counts(k)
    freed = []
    k.NdisAdvanceNetBufferDataStart(nb, 8, True, freed.append)
    assert freed == [] and counts(k) == start and len(chain(nb)) == 5
    assert nb.DataOffset == 10 and nb.DataLength == 0
    k.check_nb(nb)
    k.free_built(nbl)


def test_advance_past_data_length_is_bugcheck_0x88(k, pool):
    nbl = k.build_nbl(pool, [b"abc"], data_offset=4)
    nb = nbl.FirstNetBuffer
    before = fields(nb)
    with pytest.raises(ndisemu.BugCheck) as err:
        k.NdisAdvanceNetBufferDataStart(nb, 4, False, None)
    assert err.value.code == 0x7C and err.value.parameters[0] == 0x88
    assert err.value.parameters[1] == k.display(nb)
    assert err.value.parameters[2:] == (4, 3)
    assert "NdisAdvanceNetBufferDataStart" in str(err.value)
    assert fields(nb) == before
    k.free_built(nbl)


def test_failure_injection_leaves_nb_unchanged(k, pool):
    nbl = k.build_nbl(pool, [b"abc"], data_offset=4)
    nb = nbl.FirstNetBuffer
    raw, start = bytes(ffi.buffer(nb, ffi.sizeof("NET_BUFFER"))), counts(k)
    k.inject_failures(1.0)
    assert k.NdisRetreatNetBufferDataStart(nb, 5, 0, None) == RESOURCES
    assert k.NdisRetreatNetBufferDataStart(nb, 4, 0, None) == SUCCESS   # no allocation needed
    k.inject_failures(0.0)
    k.NdisAdvanceNetBufferDataStart(nb, 4, True, None)
    assert bytes(ffi.buffer(nb, ffi.sizeof("NET_BUFFER"))) == raw and counts(k) == start
    k.free_built(nbl)


def test_irql_above_dispatch_is_0xc4(k, pool):
    nbl = k.build_nbl(pool, [b"abc"], data_offset=4)
    k.irql = 3
    with pytest.raises(ndisemu.BugCheck) as err:
        k.NdisRetreatNetBufferDataStart(nbl.FirstNetBuffer, 1, 0, None)
    assert err.value.code == 0xC4
    k.irql = 0
    k.free_built(nbl)


@pytest.mark.parametrize("call, args, error", [
    ("NdisRetreatNetBufferDataStart", (-1, 0, None), ValueError),
    ("NdisRetreatNetBufferDataStart", (1, 1 << 32, None), ValueError),
    ("NdisRetreatNetBufferDataStart", (1, 0, 5), TypeError),
    ("NdisAdvanceNetBufferDataStart", ("1", False, None), TypeError),
    ("NdisAdvanceNetBufferDataStart", (1, None, None), TypeError),
    ("NdisGetDataBuffer", (1, None, 3, 0), ValueError),
    ("NdisGetDataBuffer", (1, None, 16384, 0), ValueError),
    ("NdisGetDataBuffer", (1, None, 0, 0), ValueError),
    ("NdisGetDataBuffer", (1, None, 4, 4), ValueError),
    ("NdisGetDataBuffer", (4, b"read-only", 1, 0), TypeError),
    ("NdisGetDataBuffer", (4, bytearray(3), 1, 0), ValueError),
    ("NdisGetDataBuffer", (4, "text", 1, 0), TypeError),
])
def test_argument_errors_change_nothing(k, pool, call, args, error):
    nbl = k.build_nbl(pool, [b"abcdef"], data_offset=1)
    nb = nbl.FirstNetBuffer
    before = fields(nb)
    with pytest.raises(error):
        getattr(k, call)(nb, *args)
    assert fields(nb) == before
    k.free_built(nbl)


# -- NBL variants ------------------------------------------------------------------


def test_nbl_retreat_is_all_or_nothing(k, pool):
    nbl = k.build_nbl(pool, [b"one", b"two", b"three"], data_offset=1)
    nbs = [nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next, nbl.FirstNetBuffer.Next.Next]
    before, start = [fields(nb) for nb in nbs], counts(k)
    h = HandlerMdls(k, fail_on=2)
    status = k.NdisRetreatNetBufferListDataStart(nbl, 5, 0, h.allocate, h.free)
    assert status == RESOURCES
    assert h.calls == 2 and not h.live
    assert [fields(nb) for nb in nbs] == before and counts(k) == start
    k.check_nbl(nbl)
    # The default allocator failing on the 2nd NB rolls back the 1st as well.
    k.inject_failures(1.0)
    assert k.NdisRetreatNetBufferListDataStart(nbl, 5, 0, None, None) == RESOURCES
    k.inject_failures(0.0)
    assert [fields(nb) for nb in nbs] == before and counts(k) == start
    # And the whole NBL when it works.
    h = HandlerMdls(k)
    assert k.NdisRetreatNetBufferListDataStart(nbl, 5, 2, h.allocate, h.free) == SUCCESS
    assert len(h.live) == 3
    assert k.nbl_bytes(nbl) == [b"\x5a" * 4 + pattern(1) + p for p in (b"one", b"two", b"three")]
    k.NdisAdvanceNetBufferListDataStart(nbl, 5, True, h.free)
    assert not h.live and [fields(nb) for nb in nbs] == before and counts(k) == start
    k.free_built(nbl)


def test_nbl_retreat_handler_exception_rolls_back(k, pool):
    nbl = k.build_nbl(pool, [b"one", b"two"])
    nbs = [nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next]
    before, start = [fields(nb) for nb in nbs], counts(k)
    h = HandlerMdls(k)

    def allocate(size):
        if h.calls == 1:
            raise RuntimeError("handler failed")
        return h.allocate(size)

    with pytest.raises(RuntimeError):
        k.NdisRetreatNetBufferListDataStart(nbl, 4, 0, allocate, h.free)
    assert not h.live and [fields(nb) for nb in nbs] == before and counts(k) == start
    k.free_built(nbl)


def test_nbl_retreat_failure_mid_list_with_default_allocator(k, pool):
    nbl = k.build_nbl(pool, [b"aa", b"bb"], data_offset=8)
    second = nbl.FirstNetBuffer.Next
    # The 2nd NB has no backfill left, so only it needs an allocation.
    k.NdisRetreatNetBufferDataStart(second, 8, 0, None)
    before, start = [fields(nbl.FirstNetBuffer), fields(second)], counts(k)
    k.inject_failures(1.0)
    assert k.NdisRetreatNetBufferListDataStart(nbl, 3, 0, None, None) == RESOURCES
    k.inject_failures(0.0)
    assert [fields(nbl.FirstNetBuffer), fields(second)] == before and counts(k) == start
    k.free_built(nbl)


def test_nbl_advance_checks_every_nb_first(k, pool):
    nbl = k.build_nbl(pool, [b"long enough", b"ab"])
    before = [fields(nb) for nb in (nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next)]
    with pytest.raises(ndisemu.BugCheck) as err:
        k.NdisAdvanceNetBufferListDataStart(nbl, 3, False, None)
    assert err.value.parameters[0] == 0x88
    assert "NdisAdvanceNetBufferListDataStart" in str(err.value)
    assert [fields(nb) for nb in (nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next)] == before
    k.free_built(nbl)


# -- NdisGetDataBuffer ----------------------------------------------------------------

# build_nbl buffers are 16-byte aligned, so the data start is at data_offset % 16.
# (mdl_sizes, data_offset, BytesNeeded, storage?, AlignMultiple, AlignOffset, expect)
GET_DATA = [
    (None, 4, 6, False, 1, 0, "pointer"),
    (None, 4, 6, False, 4, 0, "pointer"),
    (None, 4, 6, False, 8, 4, "pointer"),
    (None, 4, 6, False, 8, 0, "null"),      # contiguous but misaligned: not contiguous
    (None, 4, 6, True, 8, 0, "storage"),
    ([6], 4, 6, False, 1, 0, "null"),       # spans two MDLs, no Storage
    ([6], 4, 6, True, 1, 0, "storage"),
    ([6], 4, 2, False, 1, 0, "pointer"),    # the two bytes left in the first MDL
    ([4], 4, 4, False, 1, 0, "pointer"),    # data starts at an MDL boundary
    (None, 4, 11, True, 1, 0, "null"),      # more than DataLength
    (None, 4, 0, False, 1, 0, "pointer"),   # [UNSPEC] 0 bytes: the data start
    (None, 4, 0, False, 8, 0, "null"),
    (None, 4, 0, True, 8, 0, "storage"),
    (None, 0, 10, False, 16, 0, "pointer"),
]


@pytest.mark.parametrize("sizes, offset, needed, storage, multiple, align, expect", GET_DATA)
def test_get_data_buffer(k, pool, sizes, offset, needed, storage, multiple, align, expect):
    payload = b"0123456789"
    nbl = k.build_nbl(pool, [payload], mdl_sizes=sizes, data_offset=offset)
    nb = nbl.FirstNetBuffer
    before = fields(nb)
    buf = bytearray(16) if storage else None
    p = k.NdisGetDataBuffer(nb, needed, buf, multiple, align)
    if expect == "null":
        assert p == ffi.NULL
    elif expect == "storage":
        assert addr(p) == addr(ffi.from_buffer(buf))
        assert bytes(buf[:needed]) == payload[:needed]
    else:
        assert p != ffi.NULL and addr(p) % multiple == align
        assert ffi.buffer(p, needed)[:] == payload[:needed]
        if buf is not None:
            assert buf == bytearray(16)
    assert fields(nb) == before
    k.free_built(nbl)


@pytest.mark.parametrize("make", [
    lambda k: ffi.new("uint8_t[32]"),
    lambda k: np.zeros(32, dtype=np.uint8),
    lambda k: bytearray(32),
    lambda k: ffi.cast("uint8_t *", k.NdisAllocateMemoryWithTagPriority(
        None, 32, TAG, ndisemu.NormalPagePriority)),
])
def test_get_data_buffer_storage_kinds(k, pool, make):
    nbl = k.build_nbl(pool, [b"abcdefghij"], mdl_sizes=[3])
    storage = make(k)
    p = k.NdisGetDataBuffer(nbl.FirstNetBuffer, 10, storage, 1, 0)
    assert ffi.buffer(p, 10)[:] == b"abcdefghij"
    if isinstance(storage, ffi.CData) and ffi.typeof(storage).kind == "pointer":
        k.NdisFreeMemoryWithTagPriority(None, storage, TAG)
    k.free_built(nbl)


def test_get_data_buffer_from_an_mdl_end(k, pool):
    """CurrentMdl may be left at the end of an MDL (CurrentMdlOffset ==
    ByteCount); the bytes are then taken from the next MDL."""
    nbl = k.build_nbl(pool, [b"abcd"], mdl_sizes=[4], data_offset=4)
    nb = nbl.FirstNetBuffer
    nb.CurrentMdl, nb.CurrentMdlOffset = nb.MdlChain, 4
    k.check_nb(nb)
    p = k.NdisGetDataBuffer(nb, 4, None, 1, 0)
    assert p != ffi.NULL and ffi.buffer(p, 4)[:] == b"abcd"
    assert nb.CurrentMdl == nb.MdlChain and nb.CurrentMdlOffset == 4
    k.free_built(nbl)


def test_get_data_buffer_checks_current_mdl_first(k, pool):
    nbl = k.build_nbl(pool, [b"abcdef"], mdl_sizes=[2])
    nb = nbl.FirstNetBuffer
    nb.CurrentMdlOffset = 1     # DataOffset still 0: inconsistent
    with pytest.raises(ndisemu.BugCheck) as err:
        k.NdisGetDataBuffer(nb, 2, None, 1, 0)
    assert err.value.parameters[0] == 0x87 and "NdisGetDataBuffer" in str(err.value)
    nb.CurrentMdlOffset = 0
    saved = nb.CurrentMdl
    nb.CurrentMdl = ffi.cast("MDL *", nbl)
    with pytest.raises(ndisemu.BugCheck):
        k.NdisGetDataBuffer(nb, 2, None, 1, 0)
    nb.CurrentMdl = saved
    k.free_built(nbl)


def test_get_data_buffer_without_verifier_still_checks_pointers():
    k = ndisemu.Kernel(verifier=False)
    p = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    nbl = k.build_nbl(p, [b"abcdef"], mdl_sizes=[2], data_offset=1)
    nb = nbl.FirstNetBuffer
    assert bytes(ffi.buffer(k.NdisGetDataBuffer(nb, 1, None, 1, 0), 1)) == b"a"
    buf = bytearray(6)
    assert addr(k.NdisGetDataBuffer(nb, 6, buf, 1, 0)) == addr(ffi.from_buffer(buf))
    assert buf == b"abcdef"
    nb.DataLength = 7           # more than the MDLs hold from CurrentMdl
    with pytest.raises(ndisemu.BugCheck) as err:
        k.NdisGetDataBuffer(nb, 7, buf + bytearray(1), 1, 0)
    assert err.value.parameters[0] == 0x87
    nb.DataLength = 6
    saved, nb.CurrentMdl = nb.CurrentMdl, ffi.cast("MDL *", nbl)
    with pytest.raises(ndisemu.BugCheck):
        k.NdisGetDataBuffer(nb, 1, None, 1, 0)
    nb.CurrentMdl = saved
    k.free_built(nbl)
    k.NdisFreeNetBufferListPool(p)


def test_get_data_buffer_storage_pointer_must_be_live(k, pool):
    nbl = k.build_nbl(pool, [b"abcdef"], mdl_sizes=[2])
    with pytest.raises(ValueError):
        k.NdisGetDataBuffer(nbl.FirstNetBuffer, 6, ffi.cast("void *", 0x1000), 1, 0)
    k.free_built(nbl)


# -- NdisCopyFromNetBufferToNetBuffer -------------------------------------------------

# (dst payload, dst backfill/extra, DestinationOffset, BytesToCopy, SourceOffset, copied)
COPIES = [
    (b"........", 0, 0, 4, 0, 4),
    (b"........", 0, 2, 4, 3, 4),
    (b"........", 0, 6, 4, 0, 2),      # stops at the destination's end
    (b"........", 0, 0, 20, 5, 5),     # stops at the source's end
    (b"........", 0, 8, 4, 0, 0),      # destination offset at the end
    (b"........", 0, 9, 4, 0, 0),      # past the end
    (b"........", 0, 0, 4, 10, 0),     # source offset at the end
    (b"........", 0, 0, 0, 0, 0),
    (b"", 0, 0, 4, 0, 0),              # empty destination
]


@pytest.mark.parametrize("dst_payload, _extra, dst_off, count, src_off, copied", COPIES)
def test_copy_nb_to_nb(k, pool, dst_payload, _extra, dst_off, count, src_off, copied):
    src_payload = b"0123456789"
    nbl = k.build_nbl(pool, [src_payload, dst_payload], mdl_sizes=[3], data_offset=2)
    src, dst = nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next
    before = (fields(src), fields(dst))
    status, n = k.NdisCopyFromNetBufferToNetBuffer(dst, dst_off, count, src, src_off)
    assert (status, n) == (SUCCESS, copied)
    want = bytearray(dst_payload)
    want[dst_off:dst_off + n] = src_payload[src_off:src_off + n]
    assert k.nb_bytes(dst) == bytes(want) and k.nb_bytes(src) == src_payload
    assert (fields(src), fields(dst)) == before
    k.free_built(nbl)


def test_copy_destination_bounded_by_mdl_chain_not_data_length(k, pool):
    nbl = k.build_nbl(pool, [b"0123456789", b"ab"], mdl_sizes=[4], data_offset=1)
    src, dst = nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next
    # Give the destination room after its data: advance then shrink DataLength.
    dst.DataLength = 0
    status, n = k.NdisCopyFromNetBufferToNetBuffer(dst, 0, 10, src, 0)
    assert (status, n) == (SUCCESS, 2)          # chain holds 1 + 2 bytes, 1 is backfill
    dst.DataLength = 2
    assert k.nb_bytes(dst) == b"01"
    k.free_built(nbl)


@pytest.mark.parametrize("dst_off, src_off", [(0, 3), (3, 0), (2, 2)])
def test_copy_overlapping_is_memmove(k, pool, dst_off, src_off):
    payload = b"0123456789"
    nbl = k.build_nbl(pool, [payload], mdl_sizes=[3])
    nb = nbl.FirstNetBuffer
    status, n = k.NdisCopyFromNetBufferToNetBuffer(nb, dst_off, 6, nb, src_off)
    want = bytearray(payload)
    want[dst_off:dst_off + n] = payload[src_off:src_off + n]
    assert (status, n) == (SUCCESS, 6) and k.nb_bytes(nb) == bytes(want)
    k.free_built(nbl)


# -- info copies, protocol id and hash helpers -------------------------------------------

SEND_687 = {0, 1, 2, 4, 5, 6, 7, 11, 12, 14, 20}
RECEIVE_687 = {0, 1, 2, 4, 6, 7, 8, 9, 11, 12, 14, 20}


@pytest.mark.parametrize("version, call, expected", [
    ("6.87", "NdisCopySendNetBufferListInfo", SEND_687),
    ("6.87", "NdisCopyReceiveNetBufferListInfo", RECEIVE_687),
    ("6.20", "NdisCopySendNetBufferListInfo", SEND_687 - {20}),
    ("6.20", "NdisCopyReceiveNetBufferListInfo", RECEIVE_687 - {20}),
    ("6.0", "NdisCopySendNetBufferListInfo", {0, 1, 2, 4, 5, 6, 7}),
    ("6.0", "NdisCopyReceiveNetBufferListInfo", {0, 1, 2, 4, 6, 7, 8, 9}),
])
def test_info_copy_slot_lists(version, call, expected):
    k = ndisemu.Kernel(ndis_version=version)
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    src, dst = k.build_nbl(pool, [b"a"]), k.build_nbl(pool, [b"b"])
    slots = len(src.NetBufferListInfo)
    for i in range(slots):
        src.NetBufferListInfo[i] = ffi.cast("void *", 0x1000 + i)
        dst.NetBufferListInfo[i] = ffi.NULL
    flags = dst.NblFlags
    src.NblFlags = 0x55
    getattr(k, call)(dst, src)
    copied = {i for i in range(slots) if dst.NetBufferListInfo[i] != ffi.NULL}
    assert copied == expected
    assert all(addr(dst.NetBufferListInfo[i]) == 0x1000 + i for i in copied)
    assert dst.NblFlags == flags
    k.free_built(src)
    k.free_built(dst)
    k.NdisFreeNetBufferListPool(pool)


def test_protocol_id(k, pool):
    nbl = k.build_nbl(pool, [b"a"])
    slot = ndisemu.NetBufferListProtocolId
    nbl.NetBufferListInfo[slot] = ffi.cast("void *", 0x12345678)
    assert k.NdisGetNetBufferListProtocolId(nbl) == 0x78
    k.NdisSetNetBufferListProtocolId(nbl, 0xAB)
    assert addr(nbl.NetBufferListInfo[slot]) == 0x123456AB
    with pytest.raises(ValueError):
        k.NdisSetNetBufferListProtocolId(nbl, 0x100)
    with pytest.raises(ndisemu.BugCheck):
        k.NdisGetNetBufferListProtocolId(ffi.cast("NET_BUFFER_LIST *", nbl.FirstNetBuffer))
    k.free_built(nbl)


def test_hash_helpers(k, pool):
    nbl = k.build_nbl(pool, [b"a"])
    value, info = ndisemu.NetBufferListHashValue, ndisemu.NetBufferListHashInfo
    nbl.NetBufferListInfo[value] = ffi.cast("void *", 0x1_DEADBEEF)
    assert ndisemu.NET_BUFFER_LIST_GET_HASH_VALUE(nbl) == 0xDEADBEEF
    ndisemu.NET_BUFFER_LIST_SET_HASH_VALUE(nbl, 0x1234)
    assert addr(nbl.NetBufferListInfo[value]) == 0x1234
    nbl.NetBufferListInfo[info] = ffi.cast("void *", 0xFF_0102_07)
    assert ndisemu.NET_BUFFER_LIST_GET_HASH_TYPE(nbl) == 0x010200
    assert ndisemu.NET_BUFFER_LIST_GET_HASH_FUNCTION(nbl) == 0x07
    ndisemu.NET_BUFFER_LIST_SET_HASH_TYPE(nbl, ndisemu.NDIS_HASH_TCP_IPV4 | 0xFF000001)
    assert addr(nbl.NetBufferListInfo[info]) == 0x000207
    ndisemu.NET_BUFFER_LIST_SET_HASH_FUNCTION(nbl, 0x1_01)
    assert addr(nbl.NetBufferListInfo[info]) == 0x000201
    assert ndisemu.NET_BUFFER_LIST_GET_HASH_TYPE(nbl) == ndisemu.NDIS_HASH_TCP_IPV4
    with pytest.raises(ndisemu.BugCheck):
        ndisemu.NET_BUFFER_LIST_GET_HASH_VALUE(nbl.FirstNetBuffer)
    k.free_built(nbl)


def test_hash_setters_need_ndis_630():
    k = ndisemu.Kernel(ndis_version="6.20")
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    nbl = k.build_nbl(pool, [b"a"])
    assert ndisemu.NET_BUFFER_LIST_GET_HASH_FUNCTION(nbl) == 0
    with pytest.raises(ValueError):
        ndisemu.NET_BUFFER_LIST_SET_HASH_TYPE(nbl, 0x100)
    k.free_built(nbl)
    k.NdisFreeNetBufferListPool(pool)


# -- state machine with a bytes oracle --------------------------------------------------


class DataSpaceMachine(RuleBasedStateMachine):
    """Random retreat/advance/get-data-buffer/copy over random shapes, with
    allocation failures switched on and off between steps.  The model of
    each NB: its whole data space (bytes), DataOffset, DataLength and the
    sizes of the MDLs retreats put at the head.  A call that fails for want
    of memory must return NDIS_STATUS_RESOURCES and change nothing."""

    @initialize(shape=nbl_shapes(max_nbs=3, max_len=24, max_mdls=4, max_data_offset=12),
                handlers=st.booleans())
    def build(self, shape, handlers):
        payloads, offset = [bytes(p) for p in shape["payloads"]], shape["data_offset"]
        self.k = ndisemu.Kernel(arena_size=4 << 20)
        self.pool = self.k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
        self.start = counts(self.k)
        self.rate = 0.0
        self.nbl = self.k.build_nbl(self.pool, **shape)
        self.nbs, nb = [], self.nbl.FirstNetBuffer
        while nb != ffi.NULL:
            self.nbs.append(nb)
            nb = nb.Next
        # One allocator for the whole run, so every freer matches its MDLs.
        self.h = HandlerMdls(self.k) if handlers else None
        self.alloc = self.h.allocate if handlers else None
        self.free = self.h.free if handlers else None
        self.fill = 0x5A if handlers else 0x00
        self.model = []
        for p in payloads:
            space = pattern(offset) + p
            self.model.append({"space": bytearray(space), "off": offset if space else 0,
                               "len": len(p), "heads": []})

    def used(self, i):
        m = self.model[i]
        return bytes(m["space"][m["off"]:m["off"] + m["len"]])

    def model_retreat(self, i, delta, backfill):
        m = self.model[i]
        if delta > m["off"]:
            size = delta - m["off"] + backfill
            m["space"][:0] = bytes([self.fill]) * size
            m["heads"].insert(0, size)
            m["off"] = backfill
        else:
            m["off"] -= delta
        m["len"] += delta

    def model_advance(self, i, delta, free):
        m = self.model[i]
        m["off"] += delta
        m["len"] -= delta
        while free and m["heads"] and m["heads"][0] <= m["off"]:
            size = m["heads"].pop(0)
            del m["space"][:size]
            m["off"] -= size

    @rule(rate=st.sampled_from([0.0, 0.2, 0.6, 1.0]), seed=st.integers(0, 2**16))
    def failures(self, rate, seed):
        """Low resources from now on (or no longer), like Driver Verifier's."""
        self.rate = rate
        self.k.inject_failures(rate, seed)

    def retreated(self, status, before, retreating):
        """Checks a retreat's status: RESOURCES (only with failures on, only
        when an NB needed a new MDL) changes nothing; SUCCESS moves the
        model of every NB in `retreating` ({index: (delta, backfill)})."""
        needs = any(d > self.model[i]["off"] for i, (d, _) in retreating.items())
        if status == RESOURCES:
            assert needs and self.rate > 0, "RESOURCES without a failed allocation"
            assert counts(self.k) == before
            event("retreat refused: NDIS_STATUS_RESOURCES")
            return
        assert status == SUCCESS, hex(status)
        for i, (delta, backfill) in retreating.items():
            self.model_retreat(i, delta, backfill)

    @rule(data=st.data(), delta=st.integers(0, 30), backfill=st.integers(0, 8))
    def retreat(self, data, delta, backfill):
        i = data.draw(st.integers(0, len(self.nbs) - 1))
        before = counts(self.k)
        status = self.k.NdisRetreatNetBufferDataStart(self.nbs[i], delta, backfill, self.alloc)
        self.retreated(status, before, {i: (delta, backfill)})

    @rule(data=st.data(), free=st.booleans())
    def advance(self, data, free):
        i = data.draw(st.integers(0, len(self.nbs) - 1))
        delta = data.draw(st.integers(0, self.model[i]["len"]))
        self.k.NdisAdvanceNetBufferDataStart(self.nbs[i], delta, free, self.free)
        self.model_advance(i, delta, free)

    @rule(delta=st.integers(0, 20), backfill=st.integers(0, 8))
    def retreat_nbl(self, delta, backfill):
        before = counts(self.k)
        status = self.k.NdisRetreatNetBufferListDataStart(self.nbl, delta, backfill, self.alloc,
                                                          self.free)
        self.retreated(status, before, {i: (delta, backfill) for i in range(len(self.nbs))})

    @rule(delta=st.integers(0, 20), backfill=st.integers(0, 8))
    def retreat_nbl_failing(self, delta, backfill):
        """Every allocation fails: all NBs change, or none does."""
        needs = any(delta > m["off"] for m in self.model)
        before = counts(self.k)
        if self.h is None:
            self.k.inject_failures(1.0)
            status = self.k.NdisRetreatNetBufferListDataStart(self.nbl, delta, backfill, None,
                                                              None)
            self.k.inject_failures(self.rate)
        else:
            failing = HandlerMdls(self.k, fail_on=1 + sum(
                delta > m["off"] for m in self.model) // 2)
            status = self.k.NdisRetreatNetBufferListDataStart(self.nbl, delta, backfill,
                                                              failing.allocate, failing.free)
            assert not failing.live
        assert status == (RESOURCES if needs else SUCCESS)
        if needs:
            assert counts(self.k) == before
        else:
            for i in range(len(self.nbs)):
                self.model_retreat(i, delta, backfill)

    @rule(data=st.data(), free=st.booleans())
    def advance_nbl(self, data, free):
        delta = data.draw(st.integers(0, min(m["len"] for m in self.model)))
        self.k.NdisAdvanceNetBufferListDataStart(self.nbl, delta, free, self.free)
        for i in range(len(self.nbs)):
            self.model_advance(i, delta, free)

    @rule(data=st.data())
    def advance_too_far(self, data):
        i = data.draw(st.integers(0, len(self.nbs) - 1))
        try:
            self.k.NdisAdvanceNetBufferDataStart(self.nbs[i], self.model[i]["len"] + 1, True,
                                                 None)
        except ndisemu.BugCheck as e:
            assert e.parameters[0] == 0x88
        else:
            raise AssertionError("advance past DataLength did not bug check")

    @rule(data=st.data(), storage=st.booleans(), shift=st.integers(0, 3))
    def get_data_buffer(self, data, storage, shift):
        i = data.draw(st.integers(0, len(self.nbs) - 1))
        needed = data.draw(st.integers(0, self.model[i]["len"] + 2))
        multiple = 1 << shift
        buf = bytearray(max(needed, 1)) if storage else None
        p = self.k.NdisGetDataBuffer(self.nbs[i], needed, buf, multiple, 0)
        used = self.used(i)
        if needed > len(used):
            assert p == ffi.NULL
        elif p != ffi.NULL:
            assert ffi.buffer(p, needed)[:] == used[:needed]
            if storage and addr(p) == addr(ffi.from_buffer(buf)):
                assert bytes(buf[:needed]) == used[:needed]
            else:
                assert addr(p) % multiple == 0
        else:
            assert not storage

    @rule(data=st.data(), count=st.integers(0, 30))
    def copy(self, data, count):
        i = data.draw(st.integers(0, len(self.nbs) - 1))
        j = data.draw(st.integers(0, len(self.nbs) - 1))
        src_off = data.draw(st.integers(0, self.model[i]["len"] + 1))
        dm = self.model[j]
        room = len(dm["space"]) - dm["off"]
        dst_off = data.draw(st.integers(0, room + 1))
        status, n = self.k.NdisCopyFromNetBufferToNetBuffer(self.nbs[j], dst_off, count,
                                                            self.nbs[i], src_off)
        if status == RESOURCES:          # the staging buffer of an overlapping copy
            assert self.rate > 0 and n == 0
            return
        chunk = self.used(i)[src_off:src_off + count]
        chunk = chunk[:max(room - dst_off, 0)]
        assert (status, n) == (SUCCESS, len(chunk))
        at = dm["off"] + dst_off
        dm["space"][at:at + n] = chunk

    @invariant()
    def consistent(self):
        if not hasattr(self, "nbl"):
            return
        self.k.check_nbl(self.nbl)
        for i, nb in enumerate(self.nbs):
            self.k.check_nb(nb)
            m = self.model[i]
            assert (nb.DataOffset, nb.DataLength) == (m["off"], m["len"])
            assert self.k.nb_bytes(nb) == self.used(i)

    def teardown(self):
        if hasattr(self, "nbl"):
            self.k.inject_failures(0.0)
            # Advance every NB back over what retreats added, freeing it all.
            for i, nb in enumerate(self.nbs):
                m = self.model[i]
                back = sum(m["heads"]) - m["off"]
                if m["heads"] and 0 < back <= m["len"]:
                    self.k.NdisAdvanceNetBufferDataStart(nb, back, True, self.free)
                    self.model_advance(i, back, True)
                    assert not m["heads"]
            self.consistent()
            self.k.free_built(self.nbl)
            if self.h is not None:
                for address in list(self.h.live):
                    self.h.free(ffi.cast("MDL *", address))
            assert counts(self.k) == self.start
            self.k.NdisFreeNetBufferListPool(self.pool)


DataSpaceMachine.TestCase.settings = settings(max_examples=examples(60),
                                              stateful_step_count=25, deadline=None)
test_data_space_machine = DataSpaceMachine.TestCase
