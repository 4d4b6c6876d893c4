"""Checked views and the module-level macros."""

import pytest
from conftest import expect_bugcheck

import ndisemu
from ndisemu import ffi


def test_view_walks_and_writes(k, pool):
    nbl = k.build_nbl(pool, [b"hello"], mdl_sizes=[2], data_offset=1)
    v = k.view(nbl)
    nb = v.FirstNetBuffer
    assert isinstance(nb, ndisemu.View) and nb == nbl.FirstNetBuffer
    assert nb.DataLength == 5 and nb.DataOffset == 1
    assert nb.MdlChain.bytes() == b"\xb0h"
    assert nb.MdlChain.Next.bytes() == b"el" and nb.MdlChain.Next.Next.bytes() == b"lo"
    assert v.Next is None and v.Context is None and v.ParentNetBufferList is None
    v.ChildRefCount = 3
    assert nbl.ChildRefCount == 3
    v.ChildRefCount = 0
    v.Scratch = ffi.cast("void *", 0x1234)
    assert int(ffi.cast("uintptr_t", nbl.Scratch)) == 0x1234
    assert "FirstNetBuffer" in dir(v) and "0xffffe" in repr(v)
    k.free_built(nbl)


def test_view_of_null_first_nb_is_none(k, nbl_pool):
    nbl = k.NdisAllocateNetBufferList(nbl_pool, 0, 0)
    assert k.view(nbl).FirstNetBuffer is None
    k.NdisFreeNetBufferList(nbl)


@pytest.mark.parametrize("address", [0x18, 0x4141414141, 2**47 - 16])
def test_view_of_wild_pointer_is_0x50(k, nbl_pool, address):
    nbl = k.NdisAllocateNetBufferList(nbl_pool, 0, 0)
    nbl.FirstNetBuffer = ffi.cast("NET_BUFFER *", address)
    err = expect_bugcheck(lambda: k.view(nbl).FirstNetBuffer.DataLength, None,
                          "NET_BUFFER.DataLength", code=0x50)
    assert err.parameters[0] == address
    nbl.FirstNetBuffer = ffi.NULL
    k.NdisFreeNetBufferList(nbl)


def test_view_of_freed_object_is_0x50(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    nb = k.view(nbl).FirstNetBuffer
    k.NdisFreeNetBufferList(nbl)
    err = expect_bugcheck(lambda: nb.DataLength, None, code=0x50)
    assert err.parameters[0] == k.display(nb.ptr)
    with pytest.raises(ndisemu.BugCheck):
        nb.DataLength = 4


def test_view_arguments(k):
    with pytest.raises(TypeError):
        k.view(1234)
    with pytest.raises(TypeError):
        k.view(ffi.new("int *"))


def test_macros(k, pool):
    nbl = k.build_nbl(pool, [b"abc", b"de"], data_offset=2)
    nb = ndisemu.NET_BUFFER_LIST_FIRST_NB(nbl)
    assert ndisemu.NET_BUFFER_DATA_LENGTH(nb) == 3 and ndisemu.NET_BUFFER_DATA_OFFSET(nb) == 2
    assert ndisemu.NET_BUFFER_CURRENT_MDL(nb) == ndisemu.NET_BUFFER_FIRST_MDL(nb)
    assert ndisemu.NET_BUFFER_CURRENT_MDL_OFFSET(nb) == 2
    second = ndisemu.NET_BUFFER_NEXT_NB(nb)
    assert ndisemu.NET_BUFFER_DATA_LENGTH(second) == 2
    assert ndisemu.NET_BUFFER_NEXT_NB(second) == ffi.NULL
    assert ndisemu.NET_BUFFER_LIST_NEXT_NBL(nbl) == ffi.NULL
    ndisemu.NdisSetNblFlag(nbl, ndisemu.NDIS_NBL_FLAGS_IS_IPV4 | ndisemu.NDIS_NBL_FLAGS_IS_TCP)
    assert ndisemu.NdisTestNblFlag(nbl, ndisemu.NDIS_NBL_FLAGS_IS_TCP | 0x1)
    assert not ndisemu.NdisTestNblFlags(nbl, ndisemu.NDIS_NBL_FLAGS_IS_TCP | 0x1)
    assert ndisemu.NdisTestNblFlags(nbl, ndisemu.NDIS_NBL_FLAGS_IS_TCP)
    ndisemu.NdisClearNblFlag(nbl, ndisemu.NDIS_NBL_FLAGS_IS_TCP)
    assert ndisemu.NET_BUFFER_LIST_NBL_FLAGS(nbl) == ndisemu.NDIS_NBL_FLAGS_IS_IPV4
    ndisemu.NBL_SET_FLAG(nbl, 0x00100000)
    assert ndisemu.NET_BUFFER_LIST_FLAGS(nbl) == 0x00100000
    assert ndisemu.NBL_TEST_FLAG(nbl, 0x00100000)
    nbl.Status = -1073741670      # 0xC000009A as the signed field holds it
    assert ndisemu.NET_BUFFER_LIST_STATUS(nbl) == ndisemu.NDIS_STATUS_RESOURCES
    k.free_built(nbl)
    expect_bugcheck(lambda: ndisemu.NET_BUFFER_LIST_FIRST_NB(nbl), None,
                    "NET_BUFFER_LIST_FIRST_NB", code=0x50)
    expect_bugcheck(lambda: ndisemu.NET_BUFFER_DATA_LENGTH(ffi.cast("NET_BUFFER *", 64)), None,
                    code=0x50)


def test_info_slots_bounded_by_kernel_version(pool):
    for version, limit in [("6.0", 11), ("6.87", 27), ("wrapper", 29)]:
        k = ndisemu.Kernel(arena_size=1 << 20, ndis_version=version)
        assert k.constants["MaxNetBufferListInfo"] == limit
        p = k.NdisAllocateNetBufferListPool(None, {})
        nbl = k.NdisAllocateNetBufferList(p, 0, 0)
        ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, limit - 1, 0xABC)
        assert int(ffi.cast("uintptr_t", ndisemu.NET_BUFFER_LIST_INFO(nbl, limit - 1))) == 0xABC
        with pytest.raises(ValueError, match="MaxNetBufferListInfo"):
            ndisemu.NET_BUFFER_LIST_INFO(nbl, limit)
        with pytest.raises(ValueError):
            ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, limit, 1)
        k.NdisFreeNetBufferList(nbl)


def test_info_set_accepts_pointer_and_int(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    slot = ndisemu.Ieee8021QNetBufferListInfo
    info = ffi.new("NDIS_NET_BUFFER_LIST_8021Q_INFO *")
    info.TagHeader.VlanId = 42
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, slot, info.Value)
    raw = ffi.new("NDIS_NET_BUFFER_LIST_8021Q_INFO *")
    raw.Value = ndisemu.NET_BUFFER_LIST_INFO(nbl, slot)
    assert raw.TagHeader.VlanId == 42
    with pytest.raises(TypeError):
        ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, slot, "x")
    k.NdisFreeNetBufferList(nbl)


def test_module_constants_are_x64_687():
    assert ndisemu.NDIS_STATUS_RESOURCES == 0xC000009A
    assert ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS == 2
    assert ndisemu.Ieee8021QNetBufferListInfo == 4
    assert ndisemu.NormalPagePriority == 16
    assert ndisemu.MaxNetBufferListInfo == 27
    assert ndisemu.MDL_MAPPED_TO_SYSTEM_VA == 1


def _calls_taking_views(k, pool):
    """(name, call) pairs: every kind of pointer parameter given a view."""
    v = k.view
    nbl = k.build_nbl(pool, [b"abcdef", b"gh"], mdl_sizes=[3])
    nb = nbl.FirstNetBuffer
    storage = bytearray(8)
    return nbl, [
        ("nbl_bytes", lambda: k.nbl_bytes(v(nbl)) == [b"abcdef", b"gh"]),
        ("nb_bytes", lambda: k.nb_bytes(v(nb)) == b"abcdef"),
        ("check_nbl", lambda: k.check_nbl(v(nbl)) is None),
        ("check_nb", lambda: k.check_nb(v(nb)) is None),
        ("MmGetMdlByteCount", lambda: k.MmGetMdlByteCount(v(nb.MdlChain)) == 3),
        ("NdisGetNextMdl", lambda: k.NdisGetNextMdl(v(nb.MdlChain.Next)) == ffi.NULL),
        ("NdisQueryMdl", lambda: k.NdisQueryMdl(v(nb.MdlChain))[1] == 3),
        ("NdisGetDataBuffer", lambda: bytes(ffi.buffer(
            k.NdisGetDataBuffer(v(nb), 5, storage, 1, 0), 5)) == b"abcde"),
        ("NdisRetreatNetBufferDataStart",
         lambda: k.NdisRetreatNetBufferDataStart(v(nb), 0, 0, None) == 0),
        ("NdisAdvanceNetBufferListDataStart",
         lambda: k.NdisAdvanceNetBufferListDataStart(v(nbl), 0, False, None) is None),
        ("NdisGetPoolFromNetBufferList",
         lambda: k.NdisGetPoolFromNetBufferList(v(nbl)) == pool),
        ("NdisCopyFromNetBufferToNetBuffer",
         lambda: k.NdisCopyFromNetBufferToNetBuffer(v(nb), 0, 1, v(nb), 0)[1] == 1),
        ("NdisCopySendNetBufferListInfo",
         lambda: k.NdisCopySendNetBufferListInfo(v(nbl), v(nbl)) is None),
        ("NET_BUFFER_DATA_LENGTH", lambda: ndisemu.NET_BUFFER_DATA_LENGTH(v(nb)) == 6),
        ("clone pair", lambda: k.NdisFreeCloneNetBufferList(
            v(k.NdisAllocateCloneNetBufferList(v(nbl), None, None, 0)), 0) is None),
        ("FWPS clone pair", lambda: k.FwpsFreeCloneNetBufferList0(
            v(k.FwpsAllocateCloneNetBufferList0(v(nbl), None, None, 0)[1]), 0) is None),
        ("deep clone pair", lambda: k.FwpsFreeCloneNetBufferList0(
            v(k.FwpsAllocateDeepCloneNetBufferList0(v(nbl), pool, None)[1]), 0) is None),
        ("fragment pair", lambda: k.NdisFreeFragmentNetBufferList(
            v(k.NdisAllocateFragmentNetBufferList(v(nbl), None, None, 0, 4, 0, 0, 0)), 0, 0)
         is None),
        ("FWPS reference pair", lambda: (k.FwpsReferenceNetBufferList0(v(nbl), False),
                                         k.FwpsDereferenceNetBufferList0(v(nbl), False))
         == (None, None)),
        ("show/dt/addr", lambda: k.show(v(nbl)) == k.show(nbl) and k.dt(v(nb)) == k.dt(nb)
         and k.addr(v(nbl)) == k.display(nbl)),
    ]


def test_views_are_accepted_wherever_pointers_are(k, pool):
    nbl, calls = _calls_taking_views(k, pool)
    for name, call in calls:
        assert call(), name
    k.free_built(k.view(nbl))
    with pytest.raises(TypeError):
        k.NdisFreeCloneNetBufferList(1234, 0)          # a wrong type is still TypeError
    with pytest.raises(TypeError):
        k.NdisAllocateCloneNetBufferList("nbl", None, None, 0)
