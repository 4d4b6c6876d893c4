"""The arena, stats, failure injection and determinism (Hypothesis-driven)."""

import subprocess
import sys

import pytest
from conftest import examples, live
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import ndisemu
from ndisemu import ffi


def test_kernel_arguments():
    with pytest.raises(ValueError, match="NDIS version"):
        ndisemu.Kernel(ndis_version="7.0")
    with pytest.raises(ValueError):
        ndisemu.Kernel(arena_size=100)
    with pytest.raises(TypeError):
        ndisemu.Kernel(arena_size="big")


def test_arena_is_numpy_and_objects_live_in_it(k, pool):
    assert k.arena.dtype.name == "uint8" and k.arena.size == k.arena_size
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    offset = k.display(nbl) - 0xFFFFE00000000000
    nbl.ChildRefCount = 0x11223344
    child = ffi.offsetof("NET_BUFFER_LIST", "ChildRefCount")
    assert bytes(k.arena[offset + child: offset + child + 4]) == bytes.fromhex("44332211")
    assert k.from_display(k.display(nbl)) == nbl
    nbl.ChildRefCount = 0
    k.NdisFreeNetBufferList(nbl)


def test_arena_exhaustion_returns_null_and_nothing_changes():
    k = ndisemu.Kernel(arena_size=1 << 16)
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True, "DataSize": 9000})
    got = []
    while True:
        nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
        if nbl == ffi.NULL:
            break
        got.append(nbl)
    assert 1 <= len(got) < 10
    before = live(k)
    assert k.build_nbl(k.default_nbl_pool, [bytes(60000)]) == ffi.NULL
    assert live(k) == before
    for nbl in got:
        k.NdisFreeNetBufferList(nbl)
    # the arena never moves: freed blocks are reused
    again = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert again != ffi.NULL
    k.NdisFreeNetBufferList(again)


def test_inject_failures_is_seeded(pool):
    def run():
        k = ndisemu.Kernel(arena_size=1 << 20, seed=7)
        p = k.NdisAllocateNetBufferListPool(None, {})
        k.inject_failures(0.3)
        results = []
        for _ in range(50):
            nbl = k.NdisAllocateNetBufferList(p, 0, 0)
            results.append(nbl != ffi.NULL)
            if nbl != ffi.NULL:
                k.NdisFreeNetBufferList(nbl)
        return results, k.stats()["failures_injected"]
    first, second = run(), run()
    assert first == second and 5 < first[1] < 30
    with pytest.raises(ValueError):
        ndisemu.Kernel().inject_failures(1.5)


def test_failed_calls_leave_nothing(k, pool, nb_pool):
    va = k.NdisAllocateMemoryWithTagPriority(None, 64, 1, 16)
    k.inject_failures(1.0)
    before = live(k)
    assert k.NdisAllocateNetBufferList(pool, 0, 0) == ffi.NULL
    assert k.NdisAllocateNetBuffer(nb_pool, None, 0, 0) == ffi.NULL
    assert k.NdisAllocateMdl(None, va, 64) == ffi.NULL
    assert k.NdisAllocateMemoryWithTagPriority(None, 8, 1, 16) == ffi.NULL
    assert k.NdisAllocateNetBufferPool(None, {}) == ffi.NULL
    assert k.build_nbl(pool, [b"abc", b"def"], mdl_sizes=[1]) == ffi.NULL
    assert live(k) == before
    k.inject_failures(0.0)
    k.NdisFreeMemoryWithTagPriority(None, va, 1)


@settings(max_examples=examples(25), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.9))
def test_build_nbl_under_random_failures_never_leaks(seed, rate):
    k = ndisemu.Kernel(arena_size=1 << 20)
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    k.inject_failures(rate, seed)
    for _ in range(5):
        nbl = k.build_nbl(pool, [b"a" * 30, b"b" * 7], mdl_sizes=[3, 1], data_offset=5)
        if nbl != ffi.NULL:
            assert k.nbl_bytes(nbl) == [b"a" * 30, b"b" * 7]
            k.free_built(nbl)
    k.inject_failures(0.0)
    k.NdisFreeNetBufferListPool(pool)
    assert all(v == 0 for v in live(k).values())


# A random lifecycle: allocate and free NBLs, NBs, MDLs, memory and contexts
# in any order, with allocation failures switched on and off ("fail": a rate
# of n/1000) as Driver Verifier's low-resources simulation would; a failed
# allocation returns NULL or NDIS_STATUS_RESOURCES and leaves nothing behind.
# At the end everything is freed and the counts are zero.
OPS = st.lists(st.tuples(st.sampled_from(["nbl", "nb", "mdl", "mem", "ctx", "built", "free",
                                          "fail"]),
                         st.integers(0, 1000)), max_size=40)


@settings(max_examples=examples(60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.booleans())
def test_random_lifecycles_leave_stats_at_zero(ops, verify):
    k = ndisemu.Kernel(arena_size=1 << 20)
    flags = {"Flags": 1} if verify else {}
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True,
                                                  "ContextSize": 16, **flags})
    nb_pool = k.NdisAllocateNetBufferPool(None, {"DataSize": 100, **flags})
    live_objects = []          # (kind, object, extra)

    def keep(kind, obj, extra=None):
        if obj == ffi.NULL:          # an injected failure: nothing allocated (`before`
            assert live(k) == before  # is the loop's count from before this op)
            event("an injected failure refused an allocation")
        else:
            live_objects.append((kind, obj, extra))

    for op, n in ops:
        before = live(k)
        if op == "nbl":
            keep("nbl", k.NdisAllocateNetBufferList(pool, 16 * (n % 3), 16 * (n % 2)), [])
        elif op == "nb":
            keep("nb", k.NdisAllocateNetBufferMdlAndData(nb_pool))
        elif op == "mem":
            keep("mem", k.NdisAllocateMemoryWithTagPriority(None, n, 3, 16))
        elif op == "mdl":
            va = k.NdisAllocateMemoryWithTagPriority(None, n + 1, 4, 16)
            mdl = k.NdisAllocateMdl(None, va, n + 1) if va != ffi.NULL else ffi.NULL
            if mdl == ffi.NULL and va != ffi.NULL:
                k.NdisFreeMemoryWithTagPriority(None, va, 4)
            keep("mdl", mdl, va)
        elif op == "built":
            keep("built", k.build_nbl(pool, [bytes(n % 50)] * (1 + n % 3),
                                      mdl_sizes=[1 + n % 7]))
        elif op == "ctx":
            nbls = [o for o in live_objects if o[0] == "nbl"]
            if nbls:
                kind, nbl, sizes = nbls[n % len(nbls)]
                size = 8 * (1 + n % 4)
                status = k.NdisAllocateNetBufferListContext(nbl, size, 8 * (n % 3), 5)
                if status == 0:
                    sizes.append(size)
                else:
                    assert status == ndisemu.NDIS_STATUS_RESOURCES and live(k) == before
        elif op == "free" and live_objects:
            _free(k, live_objects.pop(n % len(live_objects)))
        elif op == "fail":
            k.inject_failures(n / 1000, n)
    k.inject_failures(0.0)
    while live_objects:
        _free(k, live_objects.pop())
    k.NdisFreeNetBufferListPool(pool)
    k.NdisFreeNetBufferPool(nb_pool)
    assert all(v == 0 for v in live(k).values()), live(k)
    # and the arena is still usable
    p = k.NdisAllocateNetBufferListPool(None, {})
    k.NdisFreeNetBufferList(k.NdisAllocateNetBufferList(p, 0, 0))
    k.NdisFreeNetBufferListPool(p)


def _free(k, entry):
    kind, obj, extra = entry
    if kind == "nbl":
        for size in reversed(extra):
            k.NdisFreeNetBufferListContext(obj, size)
        k.NdisFreeNetBufferList(obj)
    elif kind == "nb":
        k.NdisFreeNetBuffer(obj)
    elif kind == "mem":
        k.NdisFreeMemoryWithTagPriority(None, obj, 3)
    elif kind == "mdl":
        k.NdisFreeMdl(obj)
        k.NdisFreeMemoryWithTagPriority(None, extra, 4)
    elif kind == "built":
        k.free_built(obj)


DETERMINISM = """
import hashlib, ndisemu
k = ndisemu.Kernel(arena_size=1 << 20, seed=3)
pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True, "ContextSize": 16})
k.inject_failures(0.2)
kept = []
for i in range(40):
    nbl = k.build_nbl(pool, [bytes([i]) * i, b"xy"], mdl_sizes=[1 + i % 5], data_offset=i % 7)
    if nbl != ndisemu.ffi.NULL and i % 3:
        k.free_built(nbl)
    elif nbl != ndisemu.ffi.NULL:
        kept.append(nbl)
print(hashlib.sha256(k.arena.tobytes()).hexdigest(), [hex(k.display(n)) for n in kept])
"""


def test_same_seed_and_calls_give_the_same_bytes():
    runs = [subprocess.run([sys.executable, "-c", DETERMINISM], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and runs[0]
