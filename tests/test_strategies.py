"""ndisemu.strategies: the shapes reach what breaks offset arithmetic
(measured on built NBLs), keep their limits, shrink small and print in a
form build_nbl takes; nbls and derived_nbls build live NBLs whose bytes are
known and free them when the example ends."""

import pytest
from conftest import examples, live
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from shape_reach import FEATURES, first_hits

import ndisemu
from ndisemu import ffi
from ndisemu.strategies import (
    DERIVED_KINDS,
    FRAME_LENGTHS,
    DerivedNbl,
    Payload,
    derived_nbls,
    failures_paused,
    nbl_shapes,
    nbls,
    release_all,
)

# Measured: on these seeds every feature first appears by example 90 (40, 90, 53)
# (python tests/shape_reach.py prints the spread over more seeds).
REACH_SEEDS = (0, 1, 2)
REACH_BOUND = 300


@pytest.mark.parametrize("seed", REACH_SEEDS)
def test_shapes_reach_every_feature_within_the_bound(seed):
    hits = first_hits(seed, REACH_BOUND)
    assert sorted(set(FEATURES) - set(hits)) == []


LIMITS = [
    {},
    {"min_nbs": 3, "max_nbs": 3},
    {"min_len": 14, "max_len": 60, "max_mdls": 1},
    {"max_len": 0, "max_data_offset": 0},
    {"min_len": 1500, "max_len": 1600, "max_mdls": 3, "max_data_offset": 200},
    {"max_nbs": 1, "max_len": 9000, "max_mdls": 2},
]


@pytest.mark.fuzz
@pytest.mark.parametrize("limits", LIMITS, ids=str)
def test_shapes_keep_their_limits(limits):
    k = ndisemu.Kernel(arena_size=32 << 20)
    bounds = {"min_nbs": 1, "max_nbs": 4, "min_len": 0, "max_len": 65535, "max_mdls": 8,
              "max_data_offset": 64, **limits}

    @settings(max_examples=examples(40), deadline=None)
    @given(nbl_shapes(**limits))
    def check(shape):
        assert set(shape) == {"payloads", "mdl_sizes", "data_offset"}
        assert bounds["min_nbs"] <= len(shape["payloads"]) <= bounds["max_nbs"]
        assert all(bounds["min_len"] <= len(p) <= bounds["max_len"] for p in shape["payloads"])
        assert 0 <= shape["data_offset"] <= bounds["max_data_offset"]
        assert len(shape["mdl_sizes"]) <= bounds["max_mdls"]
        nbl = k.build_nbl(k.default_nbl_pool, **shape)
        from shape_reach import features
        features(nbl, bounds["max_mdls"])      # asserts the MDL count of every NB
        assert k.nbl_bytes(nbl) == [bytes(p) for p in shape["payloads"]]
        k.free_built(nbl)

    check()


@settings(max_examples=examples(60), deadline=None)
@given(nbl_shapes())
def test_shapes_print_as_dicts_build_nbl_takes(shape):
    pasted = eval(repr(shape))  # noqa: S307 - our own repr, meant to be pasted
    assert pasted == shape and all(type(p) is bytes for p in pasted["payloads"])
    assert len(repr(shape)) < 2000          # even with 65535-byte payloads


def test_payload_repr_is_short_and_exact():
    cases = [(b"", 0, 0), (b"", 3, 0), (b"E\x00", 1514, 0), (b"\x00" * 40, 40, 9),
             (b"ab", 65535, 200), (b"\x07" * 10, 300, 1)]
    for chosen, length, salt in cases:
        payload = Payload(chosen, length, salt)
        assert len(payload) == length and payload.startswith(chosen)
        assert eval(repr(payload)) == payload  # noqa: S307
        assert len(repr(payload)) <= max(len(bytes.__repr__(payload)), 80)
    # the counting tail: a read at the wrong offset gets other bytes
    tail = Payload(b"", 600, 5)
    assert tail[0] == 5 and tail[300] == (300 + 5) & 0xFF


# What each failure shrinks to: (predicate on the built NBL's features or
# on the shape, the most payload bytes the minimal shape may have).
SHRINK = [
    ("an MDL boundary in the first data bytes",
     lambda s, f: "MDL boundary in the first 14 data bytes" in f, 2),
    ("CurrentMdl other than the first", lambda s, f: "CurrentMdl not the first" in f, 1),
    # one payload byte: with none, the NB's data start is the chain's end,
    # which CurrentMdl marks inside the last MDL, not at the next one
    ("DataOffset at an MDL end", lambda s, f: "DataOffset at an MDL end" in f, 1),
    ("three NBs, one of them empty", lambda s, f: len(s["payloads"]) == 3 and "empty NB" in f,
     0),
    ("a full Ethernet frame", lambda s, f: "payload of 1514 bytes" in f, 1514),
]


@pytest.mark.parametrize("what,predicate,most", SHRINK, ids=[row[0] for row in SHRINK])
def test_failures_shrink_to_small_shapes(what, predicate, most):
    from hypothesis import find
    from shape_reach import features
    k = ndisemu.Kernel(arena_size=32 << 20)

    def fails(shape):
        nbl = k.build_nbl(k.default_nbl_pool, **shape)
        try:
            return predicate(shape, features(nbl))
        finally:
            k.free_built(nbl)

    shape = find(nbl_shapes(), fails, settings=settings(database=None, max_examples=2000))
    assert sum(map(len, shape["payloads"])) <= most, shape
    assert len(shape["mdl_sizes"]) <= 3 and shape["data_offset"] <= 2, shape
    assert len(repr(shape)) < 160, repr(shape)


@pytest.mark.parametrize("limits", [
    {"min_nbs": 0}, {"min_nbs": 3, "max_nbs": 2}, {"min_len": 5, "max_len": 4},
    {"max_mdls": 0}, {"max_len": -1}, {"max_nbs": 1.5}, {"max_len": 1 << 32},
])
def test_bad_limits(limits):
    with pytest.raises(InvalidArgument):
        nbl_shapes(**limits)
    with pytest.raises(InvalidArgument):
        derived_nbls(ndisemu.Kernel(arena_size=1 << 16), **limits)


def test_bad_kinds():
    k = ndisemu.Kernel(arena_size=1 << 16)
    for kinds in ((), ("clone", "photocopy")):
        with pytest.raises(InvalidArgument, match="choose from"):
            derived_nbls(k, kinds)


@pytest.mark.fuzz
def test_derived_nbls_reach_every_kind_and_read_their_bytes():
    k = ndisemu.Kernel(arena_size=32 << 20)
    seen = set()

    @settings(max_examples=examples(150), deadline=None)
    @given(st.data())
    def check(data):
        assert live(k)["nbl"] == 0               # the last example's NBLs were freed
        derived = data.draw(derived_nbls(k, max_len=1600))
        nbl, expected = derived
        assert isinstance(derived, DerivedNbl) and (derived.nbl, derived.expected) == (
            nbl, expected)
        k.check_nbl(nbl)
        assert k.nbl_bytes(nbl) == expected, derived
        assert repr(derived) == f"DerivedNbl(kind={derived.kind!r}, recipe={derived.recipe!r})"
        seen.add(derived.kind)

    check()
    assert seen == set(DERIVED_KINDS)
    assert all(v == 0 for v in live(k).values()), live(k)


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", DERIVED_KINDS)
def test_each_kind_alone(kind):
    k = ndisemu.Kernel(arena_size=32 << 20)

    @settings(max_examples=examples(15), deadline=None)
    @given(st.data())
    def check(data):
        derived = data.draw(derived_nbls(k, kinds=[kind], max_len=300))
        assert derived.kind == kind
        assert k.nbl_bytes(derived.nbl) == derived.expected

    check()
    assert all(v == 0 for v in live(k).values()), live(k)


@pytest.mark.fuzz
def test_nbls_use_the_pool_given_and_are_freed(k, pool):
    @settings(max_examples=examples(20), deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.data())
    def check(data):
        nbl = data.draw(nbls(k, pool, max_len=64))
        assert k.NdisGetPoolFromNetBufferList(nbl) == pool
        assert k.pool_info(pool)["live"] == 1

    check()
    assert k.pool_info(pool)["live"] == 0


def test_drawn_outside_a_test_release_all_frees_them():
    """.example() has no example to end: release_all (the fixture's call)
    frees what the strategies built."""
    import warnings
    k = ndisemu.Kernel(arena_size=8 << 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # .example() is for the console
        nbls(k, max_len=10).example()
    assert release_all(k) == [] and live(k)["nbl"] == 0


def test_inputs_are_built_with_failures_paused_and_the_sequence_kept():
    def pattern(k, pause_between):
        out = []
        for i in range(30):
            va = k.NdisAllocateMemoryWithTagPriority(None, 8, 1, 16)
            out.append(va != ffi.NULL)
            if va != ffi.NULL:
                k.NdisFreeMemoryWithTagPriority(None, va, 1)
            if pause_between and i % 5 == 0:
                with failures_paused(k):
                    nbl = k.build_nbl(k.default_nbl_pool, [bytes(100)] * 3, mdl_sizes=[7])
                    assert nbl != ffi.NULL
                    k.free_built(nbl)
        return out

    runs = []
    for pause in (False, True):
        k = ndisemu.Kernel(arena_size=4 << 20)
        k.inject_failures(0.5, 11)
        runs.append(pattern(k, pause))
        assert k.stats()["failures_injected"] == runs[-1].count(False)
    assert runs[0] == runs[1] and 0 < sum(runs[0]) < 30


def test_frame_lengths_are_the_documented_ones():
    assert FRAME_LENGTHS == (0, 1, 14, 20, 1514, 9000, 65535)
