"""Nothing a driver writes can crash the emulator: each class of hostile input
that once ended in a segfault now ends in a precise bug check.

1. Allocator state in freed payloads (a write through a stale pointer).
2. A pointer check reading past the end of the arena.
3. A free that walks a structure after freeing part of it.
Plus special pool (0xD5 for writes after the free, 0xC1 for overruns), frees
refused while a derived NBL still describes the bytes, and signed counters
at their limit.  The crash-prone ones run in a subprocess, so a regression
fails the test instead of killing pytest.
"""

import subprocess
import sys
import textwrap

import pytest
from conftest import expect_bugcheck, live, mdl_list

import ndisemu
from ndisemu import ffi

TAG = 0x74736554  # "Test"


def poke(address, data):
    """A driver's write through a raw pointer."""
    ffi.memmove(ffi.cast("uint8_t *", address), data, len(data))


def nothing_live(k):
    """No object left but pools."""
    return {kind: n for kind, n in live(k).items() if not kind.endswith("pool")} == \
        dict.fromkeys(("nbl", "nb", "mdl", "context", "memory", "data"), 0)


def run_isolated(script):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                         text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()


# ---- 1. nothing the allocator trusts lives in a freed payload -----------------

def test_stale_write_then_allocation_is_0xd5_not_a_wild_write(k):
    va = k.NdisAllocateMemoryWithTagPriority(None, 64, TAG, 16)
    shown = k.display(va)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)
    # Where a free-list link once lived: an address far outside the arena.
    poke(va, (0x4141414141414141).to_bytes(8, "little"))
    before = live(k)
    err = expect_bugcheck(lambda: k.NdisAllocateMemoryWithTagPriority(None, 64, TAG, 16),
                          None, "stale pointer", "'Test'", "freed by NdisFreeMemoryWithTag",
                          "+0x0 changed from 0xDD to 0x41", code=0xD5)
    assert err.parameters == (shown, 1, 0, 0)
    assert live(k) == before
    # The corrupted block is retired; the pool goes on working.
    again = k.NdisAllocateMemoryWithTagPriority(None, 64, TAG, 16)
    assert again != ffi.NULL and k.display(again) != shown
    k.NdisFreeMemoryWithTagPriority(None, again, TAG)


@pytest.mark.parametrize("offset", [0, 8, 63, 100])
def test_first_changed_byte_is_p1(k, offset):
    va = k.NdisAllocateMemoryWithTagPriority(None, 128, TAG, 16)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)
    poke(ffi.cast("uint8_t *", va) + offset, b"\x00")
    err = expect_bugcheck(lambda: k.NdisAllocateMemoryWithTagPriority(None, 128, TAG, 16),
                          None, code=0xD5)
    assert err.parameters[0] == k.display(va) + offset


def test_stale_write_into_a_pool_nbl_is_found_at_its_reuse(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    k.NdisFreeNetBufferList(nbl)
    nbl.Status = 0x1234          # a completion routine writing a freed NBL
    err = expect_bugcheck(lambda: k.NdisAllocateNetBufferList(pool, 0, 0), None,
                          "NdisFreeNetBufferList", code=0xD5)
    assert err.parameters[0] == k.display(nbl) + ffi.offsetof("NET_BUFFER_LIST", "Status")
    fresh = k.NdisAllocateNetBufferList(pool, 0, 0)
    k.NdisFreeNetBufferList(fresh)


def test_without_the_verifier_a_stale_write_cannot_redirect_the_allocator():
    k = ndisemu.Kernel(arena_size=1 << 20, verifier=False)
    blocks = [k.NdisAllocateMemoryWithTagPriority(None, 48, TAG, 16) for _ in range(4)]
    for va in blocks:
        k.NdisFreeMemoryWithTagPriority(None, va, TAG)
        poke(va, bytes([0xFF]) * 48)   # garbage where links would have been
    again = [k.NdisAllocateMemoryWithTagPriority(None, 48, TAG, 16) for _ in range(6)]
    shown = {k.display(v) for v in again}
    assert len(shown) == 6 and {k.display(v) for v in blocks} <= shown
    for va in again:
        k.NdisFreeMemoryWithTagPriority(None, va, TAG)
    assert k.stats()["memory"] == 0


def test_pool_headers_are_an_imprint_nothing_trusts(k, pool):
    """Overwriting every pool header in the arena changes no outcome."""
    nbl = k.build_nbl(pool, [bytes(range(40))], mdl_sizes=[7], data_offset=3)
    clone = k.NdisAllocateCloneNetBufferList(nbl, None, None, 0)
    objects = [o["pointer"] for o in k.live_objects()]
    for obj in objects:
        poke(int(ffi.cast("uintptr_t", obj)) - 32, bytes([0xA5]) * 32)
    assert k.nbl_bytes(clone) == [bytes(range(40))]
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.free_built(nbl)
    assert live(k)["nbl"] == 0 and live(k)["mdl"] == 0 and live(k)["data"] == 0


def test_pool_handle_payload_is_not_the_pool(k):
    p = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True, "PoolTag": TAG})
    poke(p, bytes([0xEE]) * 16)        # a driver scribbling on its handle
    nbl = k.NdisAllocateNetBufferList(p, 0, 0)
    assert nbl.FirstNetBuffer != ffi.NULL and k.pool_info(p)["live"] == 1
    k.NdisFreeNetBufferList(nbl)
    k.NdisFreeNetBufferListPool(p)


def test_bookkeeping_after_an_nbl_is_out_of_reach(k, pool):
    """Writing past the end of NET_BUFFER_LIST (an info index too far, in C)
    lands in the next object's header imprint or padding, never in state."""
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    size = ffi.sizeof("NET_BUFFER_LIST")
    poke(int(ffi.cast("uintptr_t", nbl)) + size, bytes([0x41]) * 64)
    assert k.NdisGetPoolFromNetBufferList(nbl) == pool
    k.NdisFreeNetBufferList(nbl)


# ---- 2. pointer checks never read past the arena ------------------------------

FULL_ARENA = """
    import ndisemu
    from ndisemu import ffi
    k = ndisemu.Kernel(arena_size=1 << 16)
    pool = k.NdisAllocateNetBufferListPool(None, {})
    # Fill the arena to its last byte (each block has a 32-byte header).
    while (rest := k.arena_size - k.stats()["arena_bytes_used"]):
        size = 4096 if rest >= 4096 + 32 + 48 else rest - 32
        assert k.NdisAllocateMemoryWithTagPriority(None, size, 1, 16) != ffi.NULL
    assert k.NdisAllocateMemoryWithTagPriority(None, 1, 1, 16) == ffi.NULL
    end = k._base + k.arena_size
    caught = 0
    for address in [end - d for d in range(1, 65)] + [end, end + 16, end + 4096]:
        for ctype, calls in (
            ("NET_BUFFER_LIST *", lambda p: (k.NdisFreeNetBufferList(p), k.check_nbl(p),
                                             k.nbl_bytes(p), k.view(p).Next,
                                             ndisemu.NET_BUFFER_LIST_FIRST_NB(p))),
            ("NET_BUFFER *", lambda p: (k.NdisFreeNetBuffer(p), k.nb_bytes(p))),
            ("MDL *", lambda p: (k.NdisFreeMdl(p), k.view(p).ByteCount,
                                 k.MmGetSystemAddressForMdlSafe(p, 16))),
            ("void *", lambda p: (k.NdisFreeMemoryWithTagPriority(None, p, 1),
                                  k.NdisFreeNetBufferListPool(p))),
        ):
            p = ffi.cast(ctype, address)
            try:
                calls(p)
            except ndisemu.BugCheck:
                caught += 1
    print("survived", caught)
"""


def test_pointers_at_and_past_a_full_arenas_end():
    word, caught = run_isolated(FULL_ARENA)
    assert word == "survived" and int(caught) == 67 * 4


# ---- 3. frees never follow what they freed ------------------------------------

def test_free_built_with_an_mdl_shared_between_nbs(k, pool):
    nbl = k.build_nbl(pool, [bytes(10), bytes(10)], mdl_sizes=[4])
    first, second = nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next
    own = second.MdlChain
    second.MdlChain = second.CurrentMdl = first.MdlChain     # both NBs, one chain
    k.free_built(nbl)                  # each object freed once, `own` too
    assert nothing_live(k)
    expect_bugcheck(lambda: k.view(own).ByteCount, None, code=0x50)


def test_free_built_with_mdls_shared_between_nbls(k, pool):
    a = k.build_nbl(pool, [bytes(8)], mdl_sizes=[3])
    b = k.build_nbl(pool, [bytes(8)], mdl_sizes=[3])
    b_chain = b.FirstNetBuffer.MdlChain
    b.FirstNetBuffer.MdlChain = b.FirstNetBuffer.CurrentMdl = a.FirstNetBuffer.MdlChain
    mdl_list(a.FirstNetBuffer)[-1].Next = b_chain            # and a loop across NBLs
    k.free_built(a)
    k.free_built(b)
    assert nothing_live(k)


def test_free_built_after_nbs_were_unlinked_and_relinked(k, pool):
    nbl = k.build_nbl(pool, [b"a" * 5, b"b" * 5, b"c" * 5])
    nbs = [nbl.FirstNetBuffer, nbl.FirstNetBuffer.Next, nbl.FirstNetBuffer.Next.Next]
    nbl.FirstNetBuffer = nbs[2]
    nbs[2].Next = nbs[2]                                     # a loop, and two NBs dropped
    k.free_built(nbl)
    assert nothing_live(k)


def test_free_built_after_a_retreat_frees_the_retreat_mdl_once(k, pool):
    nbl = k.build_nbl(pool, [bytes(4), bytes(4)])
    nb = nbl.FirstNetBuffer
    k.NdisRetreatNetBufferDataStart(nb, 16, 0, None)
    nb.Next.MdlChain = nb.Next.CurrentMdl = nb.MdlChain      # both reach the retreat MDL
    nb.Next.DataOffset, nb.Next.CurrentMdlOffset = nb.DataOffset, nb.CurrentMdlOffset
    k.free_built(nbl)
    assert nothing_live(k)


# ---- special pool ---------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 13, 100])
def test_overrun_into_slack_is_0xc1_at_the_free(k, length):
    va = k.NdisAllocateMemoryWithTagPriority(None, length, TAG, 16)
    poke(ffi.cast("uint8_t *", va) + length, b"X")
    err = expect_bugcheck(lambda: k.NdisFreeMemoryWithTagPriority(None, va, TAG), None,
                          "past the end", f"{length}-byte buffer tagged 'Test'",
                          "0xFD to 0x58", code=0xC1)
    assert err.parameters == (k.display(va), k.display(va) + length, 0, 0x24)
    assert live(k)["memory"] == 1                   # refused: still allocated
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)  # reported once, then freeable


def test_overrun_of_a_built_buffer_is_caught_by_free_built(k, pool):
    nbl = k.build_nbl(pool, [bytes(5)])
    mdl = nbl.FirstNetBuffer.MdlChain
    poke(ffi.cast("uint8_t *", mdl.MappedSystemVa) + 5, b"\x01")
    err = expect_bugcheck(lambda: k.free_built(nbl), None, code=0xC1)
    assert err.parameters[1] == k.display(mdl.MappedSystemVa) + 5
    k.free_built(nbl)


def test_verify_pool_quarantine_is_scanned_at_pool_free(k):
    p = k.NdisAllocateNetBufferListPool(None, {"Flags": ndisemu.NET_BUFFER_LIST_POOL_FLAG_VERIFY,
                                               "PoolTag": TAG})
    nbl = k.NdisAllocateNetBufferList(p, 0, 0)
    k.NdisFreeNetBufferList(nbl)
    k.scan_quarantine()                             # clean: nothing to report
    nbl.ChildRefCount = 7                           # a write through a stale pointer
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferListPool(p), None, "stale pointer",
                          "'Test'", code=0xD5)
    assert err.parameters[0] == k.display(nbl) + ffi.offsetof("NET_BUFFER_LIST",
                                                              "ChildRefCount")
    k.NdisFreeNetBufferListPool(p)                  # reported once; the pool goes


def test_scan_quarantine_reports_before_the_pool_goes(k):
    p = k.NdisAllocateNetBufferPool(None, {"Flags": ndisemu.NET_BUFFER_POOL_FLAG_VERIFY})
    nb = k.NdisAllocateNetBuffer(p, None, 0, 0)
    k.NdisFreeNetBuffer(nb)
    nb.DataLength = 1
    expect_bugcheck(k.scan_quarantine, None, code=0xD5)
    k.scan_quarantine()
    k.NdisFreeNetBufferPool(p)


# ---- frees refused while a derived NBL describes the bytes --------------------

@pytest.mark.parametrize("flags", [0, ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS])
def test_original_freed_before_its_ndis_clone(k, pool, flags):
    orig = k.build_nbl(pool, [bytes(range(30))], mdl_sizes=[11])
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, flags)
    before = live(k)
    err = expect_bugcheck(lambda: k.free_built(orig), 0x90, "NdisAllocateCloneNetBufferList")
    assert err.parameters[3] == k.display(clone) and live(k) == before
    assert k.nbl_bytes(clone) == [bytes(range(30))]
    k.NdisFreeCloneNetBufferList(clone, flags)      # the clone can still be freed
    k.free_built(orig)


def test_memory_under_a_clone_cannot_be_freed(k, pool):
    va = k.NdisAllocateMemoryWithTagPriority(None, 64, TAG, 16)
    mdl = k.NdisAllocateMdl(None, va, 64)
    nbl = k.NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, mdl, 0, 64)
    frag = k.NdisAllocateFragmentNetBufferList(nbl, None, None, 0, 16, 0, 0)
    expect_bugcheck(lambda: k.NdisFreeMemoryWithTagPriority(None, va, TAG), 0x90, "still")
    k.NdisFreeFragmentNetBufferList(frag, 0)
    k.NdisFreeNetBufferList(nbl)
    k.NdisFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def test_shared_mdl_cannot_be_freed_under_an_original_mdls_clone(k, pool):
    va = k.NdisAllocateMemoryWithTagPriority(None, 32, TAG, 16)
    mdl = k.NdisAllocateMdl(None, va, 32)
    nbl = k.NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, mdl, 0, 32)
    clone = k.NdisAllocateCloneNetBufferList(nbl, None, None,
                                             ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS)
    expect_bugcheck(lambda: k.NdisFreeMdl(mdl), 0x90)
    k.NdisFreeCloneNetBufferList(clone, ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS)
    k.NdisFreeNetBufferList(nbl)
    k.NdisFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def test_advance_that_would_free_a_retreat_buffer_a_clone_describes(k, pool):
    """Inject pattern done wrong: the retreat allocated, the clone describes the
    new header bytes, then the original is advanced back with FreeMdl."""
    orig = k.build_nbl(pool, [b"PAYLOAD"])
    nb = orig.FirstNetBuffer
    k.NdisRetreatNetBufferDataStart(nb, 20, 0, None)
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    expect_bugcheck(lambda: k.NdisAdvanceNetBufferDataStart(nb, 20, True, None), 0x90)
    assert k.nb_bytes(nb)[20:] == b"PAYLOAD"        # refused: nothing moved
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.NdisAdvanceNetBufferDataStart(nb, 20, True, None)
    k.free_built(orig)


def test_clone_of_a_clone_pins_the_first_clone(k, pool):
    orig = k.build_nbl(pool, [bytes(20)], mdl_sizes=[6])
    c1 = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    c2 = k.NdisAllocateCloneNetBufferList(c1, None, None,
                                          ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS)
    expect_bugcheck(lambda: k.NdisFreeCloneNetBufferList(c1, 0), 0x90)
    k.NdisFreeCloneNetBufferList(c2, ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS)
    k.NdisFreeCloneNetBufferList(c1, 0)
    k.free_built(orig)


# ---- signed counters at their limits --------------------------------------------

@pytest.mark.parametrize("call", ["fwps", "deep"])
def test_child_ref_count_at_long_max(k, pool, call):
    orig = k.build_nbl(pool, [b"x"])
    allocate = {"fwps": lambda: k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0),
                "deep": lambda: k.FwpsAllocateDeepCloneNetBufferList0(orig, None, None)}[call]
    orig.ChildRefCount = 0x7FFFFFFE        # a driver's own counting, near the top
    _, child = allocate()
    assert orig.ChildRefCount == 0x7FFFFFFF
    before = live(k)
    err = expect_bugcheck(allocate, 0x91, "LONG_MAX")
    assert err.parameters[2] == 0x7FFFFFFF and live(k) == before
    k.FwpsFreeCloneNetBufferList0(child, 0)
    assert orig.ChildRefCount == 0x7FFFFFFE
    orig.ChildRefCount = 0
    k.free_built(orig)


# ---- leak reports ---------------------------------------------------------------

def test_live_objects_name_kind_tag_and_allocating_call(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    va = k.NdisAllocateMemoryWithTagPriority(None, 10, TAG, 16)
    objects = {o["address"]: o for o in k.live_objects()}
    mine = objects[k.display(nbl)]
    assert (mine["kind"], mine["tag"], mine["call"], mine["inner"]) == \
        ("NET_BUFFER_LIST", "Test", "NdisAllocateNetBufferList", False)
    assert objects[k.display(nbl.FirstNetBuffer)]["inner"]
    assert objects[k.display(va)]["call"] == "NdisAllocateMemoryWithTagPriority"
    assert objects[k.display(pool)]["kind"] == "NBL pool"
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)
    k.NdisFreeNetBufferList(nbl)
    assert {o["kind"] for o in k.live_objects()} == {"NBL pool"}
