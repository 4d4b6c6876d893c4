"""k.read: bytes at a raw address, bounded by what live MDLs describe and
what memory blocks hold, never by the arena (docs/mdl.md)."""

from pathlib import Path

import pytest
from conftest import expect_bugcheck, mdl_list

import ndisemu
from ndisemu import ffi

PAGE_FAULT = 0x50


def u8(p, offset=0):
    return ffi.cast("uint8_t *", p) + offset


def refused(k, address, n, first_bad, *words):
    """k.read(address, n) is BugCheck 0x50 with P1 the first bad byte."""
    err = expect_bugcheck(lambda: k.read(address, n), None, *words, code=PAGE_FAULT)
    assert err.parameters[0] == k.display(first_bad), str(err)
    return err


def built_mdl(k, pool, size=20):
    nbl = k.build_nbl(pool, [bytes(range(size))])
    return nbl, nbl.FirstNetBuffer.MdlChain


def test_reads_what_an_mdl_describes_and_not_one_byte_more(k, pool):
    nbl, m = built_mdl(k, pool)
    va = m.MappedSystemVa
    assert k.read(va, 20) == bytes(range(20))
    assert k.read(u8(va, 5), 15) == bytes(range(5, 20))
    assert k.read(int(ffi.cast("uintptr_t", va)), 3) == bytes(range(3))
    refused(k, va, 21, u8(va, 20), "byte 20 of the 21-byte read", "past the length")
    refused(k, u8(va, 19), 2, u8(va, 20))
    k.free_built(nbl)


def test_one_byte_into_a_pool_header_is_refused(k, pool):
    nbl, m = built_mdl(k, pool)
    refused(k, u8(m.MappedSystemVa, -1), 2, u8(m.MappedSystemVa, -1), "pool header")
    va = k.NdisAllocateMemoryWithTagPriority(None, 32, 7, 16)
    refused(k, u8(va, -1), 1, u8(va, -1), "pool header")
    k.NdisFreeMemoryWithTagPriority(None, va, 7)
    k.free_built(nbl)


def test_memory_blocks_read_to_their_requested_length(k):
    va = k.NdisAllocateMemoryWithTagPriority(None, 10, 7, 16)
    assert k.read(va, 10) == bytes(10)          # no MDL needed: the caller's own memory
    refused(k, va, 11, u8(va, 10), "past the length")
    k.NdisFreeMemoryWithTagPriority(None, va, 7)
    refused(k, va, 1, va, "freed memory")


def test_the_bytes_of_several_mdls_join_and_a_freed_mdl_stops_counting(k, pool):
    """Bytes 5..20 of a buffer are described only by two caller MDLs once
    the built MDL is shortened to 5: the read runs across all three."""
    nbl, m = built_mdl(k, pool)
    va = m.MappedSystemVa
    k.NdisAdjustMdlLength(m, 5)
    first = k.NdisAllocateMdl(None, va, 10)
    second = k.NdisAllocateMdl(None, u8(va, 10), 10)
    assert k.read(u8(va, 3), 17) == bytes(range(3, 20))
    k.NdisFreeMdl(second)
    refused(k, u8(va, 3), 17, u8(va, 10), "no live MDL describes")
    k.NdisFreeMdl(first)
    refused(k, va, 6, u8(va, 5))
    k.NdisAdjustMdlLength(m, 20)
    k.free_built(nbl)


def test_a_clone_partial_mdl_reads_within_the_original_buffer(k, pool):
    orig = k.build_nbl(pool, [b"abcdefgh"], data_offset=3)
    clone = k.NdisAllocateCloneNetBufferList(orig, None, None, 0)
    part = clone.FirstNetBuffer.MdlChain
    assert k.read(part.MappedSystemVa, 8) == b"abcdefgh"
    # the original's MDL still describes the backfill in front of it
    assert k.read(u8(part.MappedSystemVa, -3), 3) == bytes(k.read(
        orig.FirstNetBuffer.MdlChain.MappedSystemVa, 3))
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.free_built(orig)


def test_an_mdl_pointed_at_ndis_structures_does_not_make_them_readable(k, pool):
    """MDL fields are the driver's to write: an MDL aimed at an NBL (or a
    pool header) must not turn those into readable bytes."""
    nbl, m = built_mdl(k, pool)
    saved = (m.StartVa, m.ByteOffset, m.MappedSystemVa)
    for target in (nbl, u8(nbl, -16)):
        m.StartVa = m.MappedSystemVa = ffi.cast("void *", target)
        m.ByteOffset = 0
        refused(k, target, 8, target)
    m.StartVa, m.ByteOffset, m.MappedSystemVa = saved
    k.free_built(nbl)


def test_every_described_byte_of_a_random_chain_reads_back(k, pool):
    nbl = k.build_nbl(pool, [bytes(range(40)), b"xyz"], mdl_sizes=[7, 1, 0, 9], data_offset=5)
    nb = nbl.FirstNetBuffer
    while nb != ffi.NULL:
        seen = b""
        for m in mdl_list(nb):
            seen += k.read(m.MappedSystemVa, m.ByteCount)
            if m.ByteCount:
                refused(k, m.MappedSystemVa, m.ByteCount + 1, u8(m.MappedSystemVa, m.ByteCount))
        assert seen[nb.DataOffset:nb.DataOffset + nb.DataLength] == k.nb_bytes(nb)
        nb = nb.Next
    k.free_built(nbl)


def test_outside_the_arena_and_empty_reads(k):
    refused(k, 0x1000, 4, ffi.cast("void *", 0x1000), "outside the arena")
    assert k.read(0x1000, 0) == b""              # nothing read, nothing checked
    expect_bugcheck(lambda: k.read(k.from_display(0xFFFFE00000000000), k.arena_size + 1),
                    None, code=PAGE_FAULT)


@pytest.mark.parametrize("address,n,error", [
    ("0x10", 1, TypeError), (True, 1, TypeError), (-1, 1, ValueError), (0, -1, ValueError),
    (0, 1.5, TypeError), (1 << 64, 1, ValueError),
])
def test_read_arguments(k, address, n, error):
    with pytest.raises(error):
        k.read(address, n)


# Every raw read of memory in the package, and why it is bounded: a new one
# must be added here with its reason (or go through k.read).
BOUNDED_READS = {
    ("inspection.py", "return ffi.buffer(va, count)[:]"):
        "View.bytes: the MDL's own ByteCount, the range checked live data first",
    ("kernel.py", "self.arena = np.frombuffer(ffi.buffer(self._base_cdata, arena_size), "
                  "dtype=np.uint8)"): "k.arena: the arena itself, unchecked by design",
    ("kernel.py", 'self._frees = memoryview(ffi.buffer(lib.ndisemu_free_count(self._k), 8))'
                  '.cast("Q")'): "the core's free count: a uint64 outside the arena",
    ("nbl.py", "self.view = ffi.buffer(self.data)        # slicing it gives bytes"):
        "nbl_bytes and k.read: their own buffer, filled by the core (sliced to what it wrote)",
    ("nbl.py", 'self.lens = memoryview(ffi.buffer(self.lengths)).cast("Q")   # the quickest reads'):
        "nbl_bytes: its own NB lengths array, filled by the core",
    ("netbuffer.py", "return ffi.buffer(out, length)[:]"):
        "nb_bytes: its own buffer, filled by the core",
    ("dt.py", 'raw = ffi.buffer(ffi.cast("uint8_t *", target), s["size"])[:]'):
        "k.dt of a pointer: the struct's size, checked to lie in the arena first",
    ("ndiskd.py", 'out += _data_rows(ffi.buffer(start, used)[:], "    ")'):
        "k.show of a context: the used bytes, clamped to what its record says was allocated",
    ("ndiskd.py", 'out += _data_rows(ffi.buffer(ffi.cast("uint8_t *", ptr), int(rec.size))[:], '
                  '"    ")'):
        "k.show of a memory block or data buffer: a live block's own requested length",
    ("binding.py", "self.nbl = _cut(ffi.buffer(nbl, _NBL_SIZE)[:], _nbl_ranges(k.ndis_version))"):
        "binding snapshot: an NBL ndisemu_check_nbl passed (object, NBs and MDLs)",
    ("binding.py", "nbs.append((_key(nb), _cut(ffi.buffer(nb, _NB_SIZE)[:], _NB_RANGES)))"):
        "binding snapshot: an NB of that checked NBL",
    ("binding.py", "mdls.append((_key(mdl), _cut(ffi.buffer(mdl, _MDL_SIZE)[:], _MDL_RANGES),"):
        "binding snapshot: an MDL of that checked NBL's NBs",
}


def test_no_helper_reads_arena_bytes_without_a_bound():
    package = Path(ndisemu.__file__).parent
    found = {(path.name, line.strip()) for path in package.glob("*.py")
             for line in path.read_text().splitlines() if "ffi.buffer(" in line}
    assert found == set(BOUNDED_READS)


def test_a_bad_read_names_the_byte_not_an_object(k):
    err = refused(k, 0x2000, 1, ffi.cast("void *", 0x2000))
    assert "address 0x0000000000002000" in str(err) and ndisemu.BugCheck is type(err)
