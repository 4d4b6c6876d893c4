"""k.trace: the per-object event log the core records, and the events every
BugCheck message carries while it is on."""

import pytest
from conftest import expect_bugcheck

import ndisemu
from ndisemu import ffi, lib, trace
from ndisemu.verifier import from_native


def texts(k, ptr):
    return [f"{e['call']}: {e['text']}" for e in k.trace_log(ptr)]


@pytest.fixture
def traced(k):
    k.trace = True
    return k


def test_clone_retreat_free_sequence(traced, pool):
    k = traced
    nbl = k.build_nbl(pool, [b"hello, world"], mdl_sizes=[4], data_offset=2)
    nb = nbl.FirstNetBuffer
    clone = k.NdisAllocateCloneNetBufferList(nbl, None, None, 0)
    k.NdisRetreatNetBufferDataStart(nb, 2, 0, None)        # into the backfill
    k.NdisRetreatNetBufferDataStart(nb, 6, 8, None)        # a new MDL at the head
    k.NdisAdvanceNetBufferDataStart(nb, 8, True, None)     # which the advance frees
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.free_built(nbl)
    assert texts(k, nbl) == [
        "build_nbl: allocated",
        "NdisAllocateCloneNetBufferList: NDIS clone 0xffffe00000000590 derived from it",
        "free_built: freed"]
    assert texts(k, nb) == [
        "build_nbl: allocated inside NET_BUFFER_LIST 0xffffe000000000e0",
        "NdisRetreatNetBufferDataStart: retreated by 0x2: DataOffset 0x0",
        "NdisRetreatNetBufferDataStart: retreated by 0x6: MDL 0xffffe000000009b0 added, "
        "DataOffset 0x8",
        "NdisAdvanceNetBufferDataStart: advanced by 0x8: DataOffset 0x2, 1 MDL freed",
        "free_built: freed with NET_BUFFER_LIST 0xffffe000000000e0"]
    assert texts(k, clone) == [
        "NdisAllocateCloneNetBufferList: allocated",
        "NdisAllocateCloneNetBufferList: derived from NET_BUFFER_LIST 0xffffe000000000e0 "
        "(NDIS clone, AllocateCloneFlags 0x0)",
        "NdisFreeCloneNetBufferList: freed"]
    assert texts(k, k.ptr(0xffffe000000009b0, "MDL")) == [
        "NdisRetreatNetBufferDataStart: allocated",
        "NdisAdvanceNetBufferDataStart: freed"]
    log = k.trace_log()
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert k.trace_log(nb, last=2) == k.trace_log(nb)[-2:]
    assert k.show(nb, log=True).endswith(
        "    Log:\n"
        "        #3  build_nbl: allocated inside NET_BUFFER_LIST 0xffffe000000000e0\n"
        "        #20 NdisRetreatNetBufferDataStart: retreated by 0x2: DataOffset 0x0\n"
        "        #23 NdisRetreatNetBufferDataStart: retreated by 0x6: MDL 0xffffe000000009b0 "
        "added, DataOffset 0x8\n"
        "        #26 NdisAdvanceNetBufferDataStart: advanced by 0x8: DataOffset 0x2, 1 MDL freed\n"
        "        #42 free_built: freed with NET_BUFFER_LIST 0xffffe000000000e0")


def _derived(k, pool):
    nbl = k.build_nbl(pool, [b"0123456789"], mdl_sizes=[4])
    made = []
    made.append(k.NdisAllocateCloneNetBufferList(nbl, None, None,
                                                 ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS))
    made.append(k.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)[1])
    made.append(k.FwpsAllocateDeepCloneNetBufferList0(nbl, None, None)[1])
    made.append(k.NdisAllocateFragmentNetBufferList(nbl, None, None, 0, 4, 2, 6, 0))
    made.append(k.NdisAllocateReassembledNetBufferList(nbl, None, 0, 2, 6, 0))
    return nbl, made


def test_every_derivation_is_named(traced, pool):
    k = traced
    nbl, (clone, fwps, deep, fragment, reassembled) = _derived(k, pool)
    assert [texts(k, p)[-1].split(": ", 1)[1] for p in (clone, fwps, deep, fragment,
                                                          reassembled)] == [
        "derived from NET_BUFFER_LIST 0xffffe000000000e0 (NDIS clone, AllocateCloneFlags 0x2)",
        "derived from NET_BUFFER_LIST 0xffffe000000000e0 (FWPS clone)",
        "derived from NET_BUFFER_LIST 0xffffe000000000e0 (deep clone)",
        "derived from NET_BUFFER_LIST 0xffffe000000000e0 (fragment, DataOffsetDelta 0x2)",
        "derived from NET_BUFFER_LIST 0xffffe000000000e0 (reassembled NBL, DataOffsetDelta 0x2)"]
    parent = texts(k, nbl)
    assert [line.split(" 0x")[0] for line in parent[1:]] == [
        "NdisAllocateCloneNetBufferList: NDIS clone",
        "FwpsAllocateCloneNetBufferList0: FWPS clone",
        "FwpsAllocateDeepCloneNetBufferList0: deep clone",
        "NdisAllocateFragmentNetBufferList: fragment",
        "NdisAllocateReassembledNetBufferList: reassembled NBL"]
    k.NdisFreeReassembledNetBufferList(reassembled, 2, 0)
    k.NdisFreeFragmentNetBufferList(fragment, 2, 0)
    k.FwpsFreeCloneNetBufferList0(deep, 0)
    k.FwpsFreeCloneNetBufferList0(fwps, 0)
    k.NdisFreeCloneNetBufferList(clone, ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS)
    assert texts(k, nbl)[-2:] == [
        f"FwpsFreeCloneNetBufferList0: FWPS clone {k.addr(deep):#x} freed: ChildRefCount 0x1",
        f"FwpsFreeCloneNetBufferList0: FWPS clone {k.addr(fwps):#x} freed: ChildRefCount 0x0"]
    k.free_built(nbl)


def test_context_reference_and_mdl_length_events(traced, pool):
    k = traced
    nbl = k.NdisAllocateNetBufferList(pool, 16, 16)      # Size 0x20, Offset 0x10
    k.NdisAllocateNetBufferListContext(nbl, 8, 0, 0x20202020)     # from the backfill
    k.NdisAllocateNetBufferListContext(nbl, 32, 8, 0x20202020)    # a new block
    block = k.addr(nbl.Context)
    k.NdisFreeNetBufferListContext(nbl, 32)
    k.NdisFreeNetBufferListContext(nbl, 8)
    k.FwpsReferenceNetBufferList0(nbl, False)
    k.FwpsDereferenceNetBufferList0(nbl, False)
    assert texts(k, nbl)[1:] == [
        "NdisAllocateNetBufferListContext: context of 0x8 bytes allocated: Offset 0x8",
        f"NdisAllocateNetBufferListContext: context of 0x20 bytes allocated: block "
        f"{block:#x} allocated",
        f"NdisFreeNetBufferListContext: context of 0x20 bytes freed: block {block:#x} freed",
        "NdisFreeNetBufferListContext: context of 0x8 bytes freed: Offset 0x10",
        "FwpsReferenceNetBufferList0: referenced: 1 reference left",
        "FwpsDereferenceNetBufferList0: dereferenced: 0 references left"]
    k.NdisFreeNetBufferList(nbl)
    memory = k.NdisAllocateMemoryWithTagPriority(None, 64, 0x20202020, 16)
    mdl = k.NdisAllocateMdl(None, memory, 64)
    k.NdisAdjustMdlLength(mdl, 16)
    k.NdisAdjustMdlLength(mdl, 64)
    assert texts(k, mdl)[1:] == ["NdisAdjustMdlLength: ByteCount 0x40 -> 0x10",
                                 "NdisAdjustMdlLength: ByteCount 0x10 -> 0x40"]
    k.NdisFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, memory, 0x20202020)


def test_failed_nbl_retreat_is_undone_in_the_log(traced, pool):
    k = traced
    nbl = k.build_nbl(pool, [b"abc", b"def"])
    first, second = nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next
    calls = []

    def handler(size):     # gives an MDL for the first NB, none for the second
        calls.append(size)
        return None if len(calls) > 1 else k.NdisAllocateMdl(None, buffer, size)

    buffer = k.NdisAllocateMemoryWithTagPriority(None, 64, 0x20202020, 16)
    freed = []
    status = k.NdisRetreatNetBufferListDataStart(nbl, 4, 0, handler, freed.append)
    assert status == ndisemu.NDIS_STATUS_RESOURCES
    log = texts(k, first)
    assert log[-2].startswith("NdisRetreatNetBufferDataStart: retreated by 0x4: MDL 0x")
    assert log[-1] == (f"NdisRetreatNetBufferDataStart: retreat undone: DataOffset 0x0, MDL "
                       f"{k.addr(freed[0]):#x} taken off")
    assert texts(k, second) == ["build_nbl: allocated"]
    k.NdisFreeMdl(freed[0])
    k.NdisFreeMemoryWithTagPriority(None, buffer, 0x20202020)
    k.free_built(nbl)


def test_handover_event(traced, pool):
    """The binding's hand-overs: recorded by the native function the
    binding calls, under the call it names."""
    k = traced
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    source = ffi.new("int *")                    # a handle outside the arena: as it is
    target = k.ptr(k.addr(pool), "void")         # one inside: its display address
    k._trace_handover(nbl, source, target, "NdisFSendNetBufferLists")
    lib.ndisemu_trace_handover(k._k, nbl, ffi.NULL, ffi.NULL, ffi.NULL)   # the current call
    log = k.trace_log(nbl)
    assert log[-2]["call"] == "NdisFSendNetBufferLists" and log[-2]["event"] == "handed over"
    assert log[-2]["text"] == (f"handed over from {int(ffi.cast('uintptr_t', source)):#x} "
                               f"to {k.addr(pool):#x}")
    assert log[-1]["call"] == "NdisAllocateNetBufferList"
    assert log[-1]["text"] == "handed over from NULL to NULL"
    k.NdisFreeNetBufferList(nbl)
    k._trace_handover(nbl, source, target, "NdisFSendNetBufferLists")     # not live: nothing
    assert k.trace_log(nbl)[-1]["event"] == "freed"


def test_recorded_in_the_core(traced, pool):
    """Calls that reach the core without the Python wrappers (as driver C
    code's do) are traced the same."""
    k = traced
    out = ffi.new("NET_BUFFER_LIST **")
    assert lib.ndisemu_allocate_nbl(k._k, pool, 0, 0, out) == 0
    assert lib.ndisemu_free_nbl(k._k, out[0]) == 0
    assert texts(k, out[0]) == ["NdisAllocateNetBufferList: allocated",
                                "NdisFreeNetBufferList: freed"]


def test_a_reused_record_does_not_inherit_events(traced, pool):
    k = traced
    first = k.NdisAllocateNetBufferList(pool, 0, 0)
    old_nb = first.FirstNetBuffer
    k.NdisFreeNetBufferList(first)
    again = k.NdisAllocateNetBufferList(pool, 0, 0)      # the same block, from the lookaside
    assert again == first and again.FirstNetBuffer == old_nb
    assert texts(k, again) == ["NdisAllocateNetBufferList: allocated"]
    # The NB's record was released with the block and a new one made for
    # the new NB at the same address: the address shows the new NB's life.
    assert texts(k, again.FirstNetBuffer) == [
        f"NdisAllocateNetBufferList: allocated inside NET_BUFFER_LIST {k.addr(again):#x}"]
    k.NdisFreeNetBufferList(again)


def test_a_record_reused_while_recording_is_off_does_not_inherit(traced, pool):
    """The log is kept for reading after k.trace = False; an object
    allocated since, in a reused record, still has no events of the old."""
    k = traced
    first = k.NdisAllocateNetBufferList(pool, 0, 0)
    k.NdisFreeNetBufferList(first)
    k.trace = False
    again = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert again == first
    assert k.trace_log(again) == [] and k.trace_log(again.FirstNetBuffer) == []
    assert len(k.trace_log()) == 5           # the pool's, the old NBL's and NB's: kept
    k.NdisFreeNetBufferList(again)


def test_the_log_is_bounded(traced, pool):
    k = traced
    for _ in range(trace.TRACE_EVENTS // 2 + 10):
        k.NdisFreeNetBufferList(k.NdisAllocateNetBufferList(pool, 0, 0))
    log = k.trace_log()
    assert len(log) == trace.TRACE_EVENTS
    assert log[-1]["seq"] - log[0]["seq"] == trace.TRACE_EVENTS - 1
    assert log[0]["seq"] > 1


def test_on_off_and_a_new_log(k, pool):
    assert k.trace is False
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert k.trace_log() == [] and k.trace_log(nbl) == []
    k.trace = True
    assert k.trace is True
    k.NdisFreeNetBufferList(nbl)
    assert texts(k, nbl) == ["NdisFreeNetBufferList: freed"]
    k.trace = False                                     # stops recording, keeps the log
    assert [e["text"] for e in k.trace_log()] == ["freed", "freed with NET_BUFFER_LIST "
                                                  f"{k.addr(nbl):#x}"]
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)      # the same block: a new lifetime
    assert texts(k, nbl) == []
    k.trace = True                                      # a new log
    assert k.trace_log() == []
    k.NdisFreeNetBufferList(nbl)
    assert [e["seq"] for e in k.trace_log()] == [1, 2]
    with pytest.raises(ValueError):
        k.trace_log(last=-1)


# -- BugCheck messages carry the trace ----------------------------------------------

def test_bugcheck_message_names_the_objects_last_events(traced, pool):
    k = traced
    nbl = k.build_nbl(pool, [b"abc"])
    k.free_built(nbl)
    err = expect_bugcheck(lambda: k.free_built(nbl), 0x82, "NET_BUFFER_LIST freed twice")
    head, *trail = str(err).split("\n")
    assert head == ("free_built: NET_BUFFER_LIST freed twice: NET_BUFFER_LIST at "
                    "0xffffe000000000e0 [bug check 0x7c BUGCODE_NDIS_DRIVER (0x82, "
                    "0xffffe000000000e0, 0x1, 0x1)]")
    assert trail == ["  last events of NET_BUFFER_LIST 0xffffe000000000e0:",
                     "    #2 build_nbl: allocated",
                     "    #8 free_built: freed"]


def test_bugcheck_message_names_the_derived_nbl_too(traced, pool):
    """0x90 names the buffer being freed and, in P4, the clone that still
    describes it: the events of both."""
    k = traced
    nbl = k.build_nbl(pool, [b"abc"])
    clone = k.NdisAllocateCloneNetBufferList(nbl, None, None, 0)
    err = expect_bugcheck(lambda: k.free_built(nbl), 0x90)
    text = str(err)
    assert f"  last events of NET_BUFFER_LIST {k.addr(clone):#x}:\n" in text
    assert f"NdisAllocateCloneNetBufferList: derived from NET_BUFFER_LIST {k.addr(nbl):#x}" \
        in text
    assert "  last events of data buffer 0xffffe00000000350:\n    #4 build_nbl: allocated" \
        in text
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.free_built(nbl)


def test_bugcheck_message_keeps_the_last_five(traced, pool):
    k = traced
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    for _ in range(4):
        k.FwpsReferenceNetBufferList0(nbl, False)
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x8B)
    trail = str(err).split("\n")[1:]
    assert len(trail) == 1 + trace.BUGCHECK_EVENTS
    assert trail[-1].endswith("FwpsReferenceNetBufferList0: referenced: 4 references left")
    for _ in range(4):
        k.FwpsDereferenceNetBufferList0(nbl, False)
    k.NdisFreeNetBufferList(nbl)


def test_no_trace_no_appendix(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    k.NdisFreeNetBufferList(nbl)
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x82)
    assert "\n" not in str(err)
    k.trace = True
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x82)
    assert "\n" not in str(err)            # on, but nothing recorded for it
    assert str(from_native("X", k._bug)) == str(err).replace("NdisFreeNetBufferList", "X")
