import pytest

import ndisemu


@pytest.fixture
def k():
    return ndisemu.Kernel(arena_size=16 << 20)


@pytest.fixture
def pool(k):
    """An NBL pool whose NBLs come with one NB (no data)."""
    handle = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True,
                                                    "PoolTag": 0x74736554})
    yield handle


@pytest.fixture
def nbl_pool(k):
    """An NBL pool without preallocated NBs."""
    return k.NdisAllocateNetBufferListPool(None, {"PoolTag": 0x4C424E54})


@pytest.fixture
def nb_pool(k):
    return k.NdisAllocateNetBufferPool(None, {"PoolTag": 0x42424E54})


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
