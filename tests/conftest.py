import os

import pytest
from hypothesis import settings

import ndisemu
from ndisemu import ffi

# pytester runs the pytest plugin (ndis_kernel) on generated test files.
pytest_plugins = ["pytester"]

# make test-sanitize runs this suite against a sanitized copy of the package:
# make sure that is the one imported (a stray path would test the plain build).
if os.environ.get("NDISEMU_EXPECT_SANITIZED"):
    assert os.environ["NDISEMU_EXPECT_SANITIZED"] in ndisemu.__file__, ndisemu.__file__

# The suite is deterministic by default (same examples every run, as CI
# needs).  NDISEMU_FUZZ=1 (make fuzz) draws fresh examples, FUZZ_SCALE times
# as many: every test states its own budget through examples(), which the
# profile scales, since a test's own max_examples would override a profile's.
FUZZ = bool(os.environ.get("NDISEMU_FUZZ"))
FUZZ_SCALE = int(os.environ.get("NDISEMU_FUZZ_SCALE", "20"))


def examples(n: int) -> int:
    """A test's Hypothesis budget: `n` examples in make test, FUZZ_SCALE * n
    under make fuzz."""
    return n * FUZZ_SCALE if FUZZ else n


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: runs Hypothesis inside the test (make fuzz "
                                       "selects these and Hypothesis's own tests)")


settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", max_examples=examples(100), deadline=None, print_blob=True)
settings.load_profile("fuzz" if FUZZ else "ci")


@pytest.fixture
def k():
    return ndisemu.Kernel(arena_size=16 << 20)


@pytest.fixture(scope="session")
def driver_cache(tmp_path_factory):
    """Driver modules are built into a cache of this test session's own
    (modules that build drivers use it: pytestmark usefixtures)."""
    path = tmp_path_factory.mktemp("driver-cache")
    old = os.environ.get("NDISEMU_CACHE")
    os.environ["NDISEMU_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("NDISEMU_CACHE", None)
    else:
        os.environ["NDISEMU_CACHE"] = old


def _pool_fixture(k, allocate, free, params):
    """A pool that must be empty again when the test ends (freeing it is the
    leak check: a live object left behind is BugCheck 0x7C/0x27)."""
    handle = allocate(None, params)
    yield handle
    try:
        free(handle)
    except ndisemu.BugCheck as error:
        if error.parameters[0] == 0x27:
            raise AssertionError(f"test leaked objects from its pool: {error}") from None
        # the test freed the pool itself (double free): fine


@pytest.fixture
def pool(k):
    """An NBL pool whose NBLs come with one NB (no data)."""
    yield from _pool_fixture(k, k.NdisAllocateNetBufferListPool, k.NdisFreeNetBufferListPool,
                             {"fAllocateNetBuffer": True, "PoolTag": 0x74736554})


@pytest.fixture
def nbl_pool(k):
    """An NBL pool without preallocated NBs."""
    yield from _pool_fixture(k, k.NdisAllocateNetBufferListPool, k.NdisFreeNetBufferListPool,
                             {"PoolTag": 0x4C424E54})


@pytest.fixture
def nb_pool(k):
    yield from _pool_fixture(k, k.NdisAllocateNetBufferPool, k.NdisFreeNetBufferPool,
                             {"PoolTag": 0x42424E54})


def mdl_list(nb):
    """The MDLs of an NB's chain, in order (raw cdata: the chain must be sound)."""
    out, m = [], nb.MdlChain
    while m != ffi.NULL:
        out.append(m)
        m = m.Next
    return out


def nb_list(nbl):
    out, nb = [], nbl.FirstNetBuffer
    while nb != ffi.NULL:
        out.append(nb)
        nb = nb.Next
    return out


def chain(head):
    """The NBLs of a Next-linked chain from `head`, as a list."""
    out = []
    while head:
        out.append(head)
        head = head.Next
    return out


def live(k):
    """The live-object counts of stats(), without the byte counters."""
    s = k.stats()
    return {key: s[key] for key in ("nbl", "nb", "mdl", "context", "memory", "data",
                                    "nbl_pool", "nb_pool")}


def expect_bugcheck(fn, subcode, *words, code=0x7C):
    """Runs fn, expects BugCheck `code` with parameter 1 == subcode and every
    word in the message; returns the exception."""
    with pytest.raises(ndisemu.BugCheck) as info:
        fn()
    err = info.value
    assert err.code == code, str(err)
    if subcode is not None:
        assert err.parameters[0] == subcode, str(err)
    for word in words:
        assert word in str(err), str(err)
    return err
