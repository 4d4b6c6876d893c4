"""The verifier: every misuse is a precise bug check, never a crash."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import expect_bugcheck, live

import ndisemu
from ndisemu import ffi, verifier


def test_irql_above_dispatch_is_0xc4(k, pool):
    k.irql = ndisemu.DISPATCH_LEVEL
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)      # allowed at DISPATCH_LEVEL
    k.irql = 3
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), verifier.VERIFIER_IRQL,
                          "NdisFreeNetBufferList", "IRQL", code=0xC4)
    assert err.parameters[2:] == (3, 2)
    expect_bugcheck(lambda: k.NdisAllocateNetBufferList(pool, 0, 0), None, code=0xC4)
    assert live(k)["nbl"] == 1
    k.irql = ndisemu.PASSIVE_LEVEL
    k.NdisFreeNetBufferList(nbl)
    with pytest.raises(ValueError):
        k.irql = 16


@pytest.mark.parametrize("make", [
    lambda k: ffi.cast("NET_BUFFER_LIST *", 0),
    lambda k: ffi.cast("NET_BUFFER_LIST *", 0x10),
    lambda k: ffi.cast("NET_BUFFER_LIST *", 0xDEADBEEF0000),
    lambda k: ffi.cast("NET_BUFFER_LIST *", k._base + 0x123),
    lambda k: ffi.cast("NET_BUFFER_LIST *", k._base + k.arena_size - 16),
    lambda k: ffi.cast("NET_BUFFER_LIST *", ffi.new("char[512]")),
])
def test_wild_nbl_pointers_are_refused(k, make):
    bad = make(k)
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(bad), 0x81, "NdisFreeNetBufferList")
    expect_bugcheck(lambda: k.check_nbl(bad), 0x81)
    expect_bugcheck(lambda: k.NdisAllocateNetBufferListContext(bad, 8, 0, 1), 0x81)


def test_wrong_kind_names_both(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    as_nb = ffi.cast("NET_BUFFER *", nbl)
    expect_bugcheck(lambda: k.NdisFreeNetBuffer(as_nb), 0x81, "NET_BUFFER at 0xffffe",
                    "found a live NET_BUFFER_LIST")
    k.NdisFreeNetBufferList(nbl)


def test_use_after_free_and_double_free(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    shown = k.display(nbl)
    k.NdisFreeNetBufferList(nbl)
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x82, "freed twice")
    assert err.parameters[1] == shown and f"{shown:#018x}" in str(err)
    expect_bugcheck(lambda: k.NdisAllocateNetBufferListContext(nbl, 8, 0, 1), 0x83,
                    "after it was freed")


def test_freed_memory_is_poisoned(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    raw = ffi.buffer(nbl, ffi.sizeof("NET_BUFFER_LIST"))
    k.NdisFreeNetBufferList(nbl)
    # every byte: no allocator state lives in a freed payload
    assert set(bytes(raw)) == {0xDD}


def test_verifier_off_skips_poison_keeps_pointer_checks(pool):
    k = ndisemu.Kernel(arena_size=1 << 20, verifier=False)
    p = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    nbl = k.NdisAllocateNetBufferList(p, 0, 0)
    nbl.ChildRefCount = 0
    raw = ffi.buffer(nbl, 8)
    k.NdisFreeNetBufferList(nbl)
    assert set(bytes(raw)) != {0xDD}
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(nbl), 0x82)
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(ffi.cast("NET_BUFFER_LIST *", 8)), 0x81)


def test_free_with_children_outstanding(k, pool):
    parent = k.NdisAllocateNetBufferList(pool, 0, 0)
    parent.ChildRefCount = 2
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferList(parent), 0x85, "ChildRefCount")
    assert err.parameters[2] == 2
    parent.ChildRefCount = 0
    k.NdisFreeNetBufferList(parent)


# Corruptions of a consistent NB and the field check_nb must name.
CORRUPTIONS = [
    (lambda nb, m: setattr(nb, "DataOffset", nb.DataOffset - 1), "DataOffset"),
    (lambda nb, m: setattr(nb, "CurrentMdlOffset", 40), "CurrentMdlOffset"),
    (lambda nb, m: setattr(nb, "DataLength", 10_000), "DataLength"),
    (lambda nb, m: setattr(nb, "CurrentMdl", m), "CurrentMdl"),
    (lambda nb, m: setattr(nb, "MdlChain", ffi.NULL), "DataOffset/DataLength"),
]


@pytest.mark.parametrize("corrupt,field", CORRUPTIONS)
def test_check_nb_names_first_inconsistent_field(k, pool, corrupt, field):
    nbl = k.build_nbl(pool, [bytes(20)], mdl_sizes=[8], data_offset=10)
    nb = nbl.FirstNetBuffer
    k.check_nb(nb)
    saved = (nb.MdlChain, nb.CurrentMdl, nb.CurrentMdlOffset, nb.DataOffset, nb.DataLength)
    foreign = k.build_nbl(pool, [b"x"])
    corrupt(nb, foreign.FirstNetBuffer.MdlChain)
    err = expect_bugcheck(lambda: k.check_nb(nb), 0x87, f"{field}:")
    assert err.parameters[1] == k.display(nb)
    expect_bugcheck(lambda: k.nb_bytes(nb), 0x87)
    (nb.MdlChain, nb.CurrentMdl, nb.CurrentMdlOffset, nb.DataOffset, nb.DataLength) = saved
    k.free_built(foreign)
    k.free_built(nbl)


def test_mdl_chain_loop_and_wild_mdl(k, pool):
    nbl = k.build_nbl(pool, [bytes(4)], mdl_sizes=[2])
    nb = nbl.FirstNetBuffer
    last = nb.MdlChain.Next
    last.Next = nb.MdlChain
    expect_bugcheck(lambda: k.check_nb(nb), 0x87, "loops")
    last.Next = ffi.cast("MDL *", 0x4141414141)
    err = expect_bugcheck(lambda: k.check_nb(nb), 0x81)
    assert err.parameters[1] == k.display(nb) and err.parameters[2] == 0x4141414141
    last.Next = ffi.NULL
    k.free_built(nbl)


def test_mdl_over_freed_memory_is_caught(k, nb_pool):
    va = k.NdisAllocateMemoryWithTagPriority(None, 64, 7, 16)
    mdl = k.NdisAllocateMdl(None, va, 64)
    nb = k.NdisAllocateNetBuffer(nb_pool, mdl, 0, 64)
    k.NdisFreeMemoryWithTagPriority(None, va, 7)
    expect_bugcheck(lambda: k.nb_bytes(nb), 0x8E, "outside any live pool block")
    k.NdisFreeNetBuffer(nb)
    k.NdisFreeMdl(mdl)


CRASH_SCRIPT = textwrap.dedent("""
    import ndisemu
    from ndisemu import ffi
    k = ndisemu.Kernel(arena_size=1 << 20)
    pool = k.NdisAllocateNetBufferListPool(None, {})
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    caught = 0
    # raw cdata would segfault on nbl.FirstNetBuffer.DataLength; the view raises
    try:
        k.view(nbl).FirstNetBuffer.DataLength
    except AttributeError:
        caught += 1
    wild = [ffi.cast("NET_BUFFER_LIST *", a) for a in (0, 8, 0x41414141, 2**47 - 64)]
    wild += [ffi.cast("NET_BUFFER_LIST *", int(ffi.cast("uintptr_t", nbl)) + 3)]
    for bad in wild:
        for call in (lambda: k.NdisFreeNetBufferList(bad), lambda: k.check_nbl(bad),
                     lambda: k.nbl_bytes(bad), lambda: k.view(bad).ChildRefCount,
                     lambda: ndisemu.NET_BUFFER_LIST_FIRST_NB(bad),
                     lambda: k.NdisGetPoolFromNetBufferList(bad)):
            try:
                call()
            except ndisemu.BugCheck:
                caught += 1
    nb = ffi.cast("NET_BUFFER *", nbl)
    nbl.FirstNetBuffer = ffi.cast("NET_BUFFER *", 0x1000)
    for call in (lambda: k.check_nbl(nbl), lambda: k.nbl_bytes(nbl),
                 lambda: k.view(nbl).FirstNetBuffer.DataLength):
        try:
            call()
        except ndisemu.BugCheck:
            caught += 1
    print("survived", caught)
""")


def test_wrong_pointers_cannot_crash_the_interpreter():
    out = subprocess.run([sys.executable, "-c", CRASH_SCRIPT], capture_output=True, text=True,
                         check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["survived", str(1 + 5 * 6 + 3)]


def test_subcode_table_is_documented():
    table = verifier.subcode_table()
    for code in verifier.SUBCODES:
        assert f"{code:#04x}" in table
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name, _ in verifier.SUBCODES.values():
        assert name in readme, f"README lacks subcode {name}"


@pytest.mark.parametrize("seed", [*range(12), 55])   # 55 found the MDL-range bug
def test_random_corruption_never_crashes(seed):
    """Random field corruption followed by random calls (tests/scripts/chaos.py)."""
    script = __file__.replace("test_verifier.py", "scripts/chaos.py")
    out = subprocess.run([sys.executable, script, str(seed)], capture_output=True, text=True,
                         check=False, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    word, caught = out.stdout.split()
    assert word == "ok" and int(caught) > 100
