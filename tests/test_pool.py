"""Pools: NdisAllocateNetBufferListPool / NdisAllocateNetBufferPool (docs/pools.md)."""

import pytest
from conftest import expect_bugcheck, live

import ndisemu
from ndisemu import ffi


def test_nbl_pool_from_dict_fills_header(k):
    pool = k.NdisAllocateNetBufferListPool(None, {"ProtocolId": 2, "ContextSize": 32,
                                                  "PoolTag": 0x61626364})
    info = k.pool_info(pool)
    assert info["kind"] == "NBL" and info["ProtocolId"] == 2 and info["ContextSize"] == 32
    assert info["PoolTag"] == 0x61626364 and info["live"] == 0
    assert live(k)["nbl_pool"] == 1
    k.NdisFreeNetBufferListPool(pool)
    assert live(k)["nbl_pool"] == 0


def test_pool_from_cdata_parameters(k):
    p = ffi.new("NET_BUFFER_LIST_POOL_PARAMETERS *")
    p.Header.Type = ndisemu.NDIS_OBJECT_TYPE_DEFAULT
    p.Header.Revision = ndisemu.NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1
    p.Header.Size = ndisemu.NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1
    p.fAllocateNetBuffer = 1
    pool = k.NdisAllocateNetBufferListPool(None, p)
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert nbl.FirstNetBuffer != ffi.NULL
    k.NdisFreeNetBufferList(nbl)
    k.NdisFreeNetBufferListPool(pool)


BAD_HEADERS = [
    ({"Type": 0x81, "Revision": 1, "Size": 16}, "Header.Type"),
    ({"Type": 0x80, "Revision": 3, "Size": 20}, "Header.Revision"),
    ({"Type": 0x80, "Revision": 1, "Size": 15}, "Header.Size"),
    ({"Type": 0x80, "Revision": 2, "Size": 16}, "Header.Size"),
]


@pytest.mark.parametrize("header,word", BAD_HEADERS)
def test_bad_object_header_is_0x7c_0x21(k, header, word):
    before = live(k)
    expect_bugcheck(lambda: k.NdisAllocateNetBufferListPool(None, {"Header": header}),
                    0x21, "NdisAllocateNetBufferListPool", word)
    assert live(k) == before


@pytest.mark.parametrize("header", [{"Type": 0, "Revision": 1, "Size": 12},
                                    {"Type": 0x80, "Revision": 1, "Size": 11}])
def test_nb_pool_bad_header(k, header):
    expect_bugcheck(lambda: k.NdisAllocateNetBufferPool(None, {"Header": header}), 0x21,
                    "NdisAllocateNetBufferPool")


@pytest.mark.parametrize("params,word", [
    ({"DataSize": 128}, "fAllocateNetBuffer"),
    ({"ContextSize": 8}, "MEMORY_ALLOCATION_ALIGNMENT"),
    ({"Flags": 2}, "undefined bits"),
])
def test_forbidden_parameter_combinations(k, params, word):
    expect_bugcheck(lambda: k.NdisAllocateNetBufferListPool(None, params), 0x8F, word)


def test_parameter_type_and_range_errors(k):
    with pytest.raises(TypeError):
        k.NdisAllocateNetBufferListPool(None, [1, 2])
    with pytest.raises(ValueError, match="no field"):
        k.NdisAllocateNetBufferListPool(None, {"Bogus": 1})
    with pytest.raises(ValueError):
        k.NdisAllocateNetBufferListPool(None, {"ContextSize": 1 << 20})
    with pytest.raises(TypeError):
        k.NdisAllocateNetBufferListPool(None, ffi.new("NET_BUFFER_POOL_PARAMETERS *"))
    assert live(k)["nbl_pool"] == 0


def test_free_pool_with_live_nbl_is_leaked_nbl(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferListPool(pool), 0x27,
                          "NdisFreeNetBufferListPool", "still live")
    assert err.parameters[1] == 1 and err.parameters[2:] == (0, 0)
    k.NdisFreeNetBufferList(nbl)
    k.NdisFreeNetBufferListPool(pool)


def test_free_nb_pool_with_live_nb_is_leaked(k, nb_pool):
    nb = k.NdisAllocateNetBuffer(nb_pool, None, 0, 0)
    err = expect_bugcheck(lambda: k.NdisFreeNetBufferPool(nb_pool), 0x27)
    assert err.parameters[1] == 1
    k.NdisFreeNetBuffer(nb)
    k.NdisFreeNetBufferPool(nb_pool)


def test_double_free_of_pool(k, nb_pool):
    k.NdisFreeNetBufferPool(nb_pool)
    expect_bugcheck(lambda: k.NdisFreeNetBufferPool(nb_pool), 0x82, "freed twice")


def test_wrong_kind_of_pool_handle(k, pool, nb_pool):
    expect_bugcheck(lambda: k.NdisFreeNetBufferPool(pool), 0x81, "NB pool",
                    "found a live NBL pool")
    expect_bugcheck(lambda: k.NdisAllocateNetBuffer(pool, None, 0, 0), 0x81)
    expect_bugcheck(lambda: k.NdisAllocateNetBufferList(nb_pool, 0, 0), 0x81)


def test_get_pool_from_objects(k, pool, nb_pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    nb = k.NdisAllocateNetBuffer(nb_pool, None, 0, 0)
    assert k.NdisGetPoolFromNetBufferList(nbl) == pool
    assert k.NdisGetPoolFromNetBuffer(nb) == nb_pool
    assert k.NdisGetPoolFromNetBuffer(nbl.FirstNetBuffer) == pool
    k.NdisFreeNetBuffer(nb)
    k.NdisFreeNetBufferList(nbl)
    expect_bugcheck(lambda: k.NdisGetPoolFromNetBufferList(nbl), 0x83, "after it was freed")


def test_lookaside_reuses_freed_nbl(k, pool):
    first = k.NdisAllocateNetBufferList(pool, 0, 0)
    k.NdisFreeNetBufferList(first)
    second = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert second == first           # LIFO lookaside, as a lookaside list would
    k.NdisFreeNetBufferList(second)


def test_verify_flag_never_reuses(k):
    pool = k.NdisAllocateNetBufferListPool(None, {"Flags": ndisemu.NET_BUFFER_LIST_POOL_FLAG_VERIFY,
                                                  "fAllocateNetBuffer": True})
    assert k.pool_info(pool)["Flags"] == 1
    first = k.NdisAllocateNetBufferList(pool, 0, 0)
    k.NdisFreeNetBufferList(first)
    second = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert second != first
    # the stale pointer stays detectable
    expect_bugcheck(lambda: k.NdisFreeNetBufferList(first), 0x82)
    k.NdisFreeNetBufferList(second)
    k.NdisFreeNetBufferListPool(pool)


def test_nb_pool_verify_flag(k):
    pool = k.NdisAllocateNetBufferPool(None, {"Flags": ndisemu.NET_BUFFER_POOL_FLAG_VERIFY})
    first = k.NdisAllocateNetBuffer(pool, None, 0, 0)
    k.NdisFreeNetBuffer(first)
    second = k.NdisAllocateNetBuffer(pool, None, 0, 0)
    assert second != first
    k.NdisFreeNetBuffer(second)


def test_default_pools_cannot_be_freed(k):
    expect_bugcheck(lambda: k.NdisFreeNetBufferListPool(k.default_nbl_pool), 0x84, "default")
    expect_bugcheck(lambda: k.NdisFreeNetBufferPool(k.default_nb_pool), 0x84, "default")
    assert k.pool_info(k.default_nbl_pool)["default"] == 1
