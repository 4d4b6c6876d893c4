"""Memory and MDLs (docs/mdl.md): wdm.h fields, who frees what."""

import pytest
from conftest import expect_bugcheck, live

import ndisemu
from ndisemu import ffi

TAG = 0x6D656D54


def memory(k, length):
    va = k.NdisAllocateMemoryWithTagPriority(None, length, TAG, ndisemu.NormalPagePriority)
    assert va != ffi.NULL
    return va


def test_allocate_memory_is_zeroed_and_tagged(k):
    va = memory(k, 100)
    assert bytes(ffi.buffer(va, 100)) == bytes(100)
    assert k.display(va) % 16 == 0
    assert live(k)["memory"] == 1
    expect_bugcheck(lambda: k.NdisFreeMemoryWithTagPriority(None, va, TAG + 1), 0x84, "tag")
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)
    assert live(k)["memory"] == 0
    expect_bugcheck(lambda: k.NdisFreeMemoryWithTagPriority(None, va, TAG), 0x82, "twice")


@pytest.mark.parametrize("offset,length,pages", [
    (0, 0, 0), (0, 1, 1), (0, 4096, 1), (1, 4096, 2), (4095, 2, 2), (16, 9000, 3),
])
def test_ndis_allocate_mdl_fields(k, offset, length, pages):
    base = memory(k, 16384)
    # place the buffer `offset` bytes into a page
    page = (k.display(base) + 4095) & ~4095
    va = ffi.cast("uint8_t *", base) + (page - k.display(base)) + offset
    mdl = k.NdisAllocateMdl(None, va, length)
    assert mdl.Next == ffi.NULL
    assert mdl.Size == ffi.sizeof("MDL") + 8 * pages == k.MmSizeOfMdl(va, length)
    assert mdl.MdlFlags & ndisemu.MDL_SOURCE_IS_NONPAGED_POOL
    assert mdl.MappedSystemVa == va
    assert int(ffi.cast("uintptr_t", mdl.StartVa)) % 4096 == 0
    assert mdl.ByteOffset == offset and mdl.ByteCount == length
    assert k.MmGetMdlVirtualAddress(mdl) == va
    assert k.MmGetMdlByteCount(mdl) == length and k.MmGetMdlByteOffset(mdl) == offset
    pfn = ffi.cast("uint64_t *", mdl + 1)
    first = k.display(mdl.StartVa) >> 12
    assert [pfn[i] for i in range(pages)] == list(range(first, first + pages))
    assert k.NdisQueryMdl(mdl) == (va, length)
    assert k.NdisQueryMdlOffset(mdl) == (offset, length)
    k.NdisFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, base, TAG)


def test_ndis_allocate_mdl_requires_live_pool_memory(k):
    va = memory(k, 64)
    expect_bugcheck(lambda: k.NdisAllocateMdl(None, va, 65), 0x8E, "nonpaged pool")
    outside = ffi.from_buffer(bytearray(64))
    expect_bugcheck(lambda: k.NdisAllocateMdl(None, outside, 8), 0x8E)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)
    expect_bugcheck(lambda: k.NdisAllocateMdl(None, va, 8), 0x8E)
    assert live(k)["mdl"] == 0


def test_io_allocate_mdl_then_build(k):
    va = memory(k, 3000)
    mdl = k.IoAllocateMdl(va, 3000, False, False, None)
    assert mdl.MdlFlags == ndisemu.MDL_ALLOCATED_FIXED_SIZE
    assert mdl.MappedSystemVa == ffi.NULL and mdl.ByteCount == 3000
    k.MmBuildMdlForNonPagedPool(mdl)
    assert mdl.MdlFlags & ndisemu.MDL_SOURCE_IS_NONPAGED_POOL and mdl.MappedSystemVa == va
    assert k.MmGetSystemAddressForMdlSafe(mdl, ndisemu.NormalPagePriority) == va
    expect_bugcheck(lambda: k.NdisFreeMdl(mdl), 0x84, "IoFreeMdl")
    k.IoFreeMdl(mdl)
    expect_bugcheck(lambda: k.IoFreeMdl(mdl), 0x82, "twice")
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def test_io_allocate_mdl_maps_on_demand(k):
    va = memory(k, 100)
    mdl = k.IoAllocateMdl(va, 100, False, False, None)
    assert k.MmGetSystemAddressForMdlSafe(mdl, ndisemu.NormalPagePriority) == va
    assert mdl.MdlFlags & ndisemu.MDL_MAPPED_TO_SYSTEM_VA
    k.IoFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def test_io_allocate_mdl_arguments(k):
    va = memory(k, 16)
    with pytest.raises(ValueError, match="Irp"):
        k.IoAllocateMdl(va, 16, False, False, object())
    with pytest.raises(ValueError, match="ChargeQuota"):
        k.IoAllocateMdl(va, 16, False, True, None)
    with pytest.raises(ValueError, match="SecondaryBuffer"):
        k.IoAllocateMdl(va, 16, True, False, None)
    with pytest.raises(TypeError):
        k.IoAllocateMdl(va, "16", False, False, None)
    assert k.IoAllocateMdl(va, (1 << 32) - 1, False, False, None) == ffi.NULL
    assert live(k)["mdl"] == 0
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def test_build_rejects_memory_outside_pool(k):
    outside = ffi.from_buffer(bytearray(64))
    mdl = k.IoAllocateMdl(outside, 64, False, False, None)
    expect_bugcheck(lambda: k.MmBuildMdlForNonPagedPool(mdl), 0x8E)
    assert k.MmGetSystemAddressForMdlSafe(mdl, ndisemu.NormalPagePriority) == ffi.NULL
    k.IoFreeMdl(mdl)


def test_adjust_mdl_length_rules(k):
    va = memory(k, 100)
    mdl = k.NdisAllocateMdl(None, va, 100)
    k.NdisAdjustMdlLength(mdl, 10)
    assert mdl.ByteCount == 10
    expect_bugcheck(lambda: k.NdisAdjustMdlLength(mdl, 101), 0x8D, "beyond")
    expect_bugcheck(lambda: k.NdisFreeMdl(mdl), 0x8D, "not restored")
    k.NdisAdjustMdlLength(mdl, 100)
    k.NdisFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def test_mm_initialize_mdl(k):
    va = memory(k, 8192)
    mdl = k.IoAllocateMdl(va, 8192, False, False, None)
    k.MmInitializeMdl(mdl, ffi.cast("uint8_t *", va) + 4, 100)
    assert mdl.ByteCount == 100 and mdl.MdlFlags == 0 and mdl.Next == ffi.NULL
    assert k.MmGetMdlVirtualAddress(mdl) == ffi.cast("uint8_t *", va) + 4
    expect_bugcheck(lambda: k.MmInitializeMdl(mdl, va, 1 << 20), 0x8F, "MmSizeOfMdl")
    k.IoFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def test_next_mdl_and_macros_check_pointers(k):
    va = memory(k, 10)
    a = k.NdisAllocateMdl(None, va, 5)
    b = k.NdisAllocateMdl(None, ffi.cast("uint8_t *", va) + 5, 5)
    a.Next = b
    assert k.NdisGetNextMdl(a) == b and k.NdisGetNextMdl(b) == ffi.NULL
    a.Next = ffi.NULL
    k.NdisFreeMdl(b)
    expect_bugcheck(lambda: k.MmGetMdlByteCount(b), None, "MmGetMdlByteCount", code=0x50)
    expect_bugcheck(lambda: k.NdisGetNextMdl(ffi.cast("MDL *", 0x1234)), None, code=0x50)
    k.NdisFreeMdl(a)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)


def test_mm_size_of_mdl_matches_header_rule():
    assert ndisemu.Kernel.MmSizeOfMdl(0, 0) == 48
    assert ndisemu.Kernel.MmSizeOfMdl(0x1FFF, 2) == 48 + 16
    assert ndisemu.Kernel.MmSizeOfMdl(0x1000, 0x1000) == 48 + 8


def test_mdl_may_describe_data_only(k, pool):
    """An MDL over memory holding NDIS structures is refused: a copy into its
    bytes could otherwise overwrite the MDL chain being walked."""
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    expect_bugcheck(lambda: k.NdisAllocateMdl(None, nbl, 16), 0x8E)
    va = memory(k, 5)
    expect_bugcheck(lambda: k.NdisAllocateMdl(None, ffi.cast("uint8_t *", va) + 6, 1), 0x8E)
    mdl = k.NdisAllocateMdl(None, ffi.cast("uint8_t *", va) + 5, 0)   # the end is fine
    k.NdisFreeMdl(mdl)
    # the data a pool preallocates is data
    data_pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True,
                                                       "DataSize": 64})
    with_data = k.NdisAllocateNetBufferList(data_pool, 0, 0)
    inner = with_data.FirstNetBuffer.MdlChain.MappedSystemVa
    mdl = k.NdisAllocateMdl(None, inner, 64)
    expect_bugcheck(lambda: k.NdisAllocateMdl(None, inner, 65), 0x8E)
    k.NdisFreeMdl(mdl)
    k.NdisFreeNetBufferList(with_data)
    k.NdisFreeNetBufferListPool(data_pool)
    k.NdisFreeNetBufferList(nbl)
    k.NdisFreeMemoryWithTagPriority(None, va, TAG)
