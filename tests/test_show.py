"""k.show(), k.dt(), k.addr(), k.ptr() and repr() of views: golden text
(display addresses make every byte of it the same run to run), every flag
and bit-field decoded by name, and views that never raise on corruption."""

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ndisemu
from ndisemu import cli, ffi, layout, ndiskd
from ndisemu.constants import for_version


@pytest.fixture
def built(k, pool):
    """An NBL of two NBs over 4- and 8-byte MDLs, 2 bytes of backfill each."""
    nbl = k.build_nbl(pool, [b"hello, world", b"NB2"], mdl_sizes=[4, 8], data_offset=2)
    yield nbl
    k.free_built(nbl)


NBL_VIEW = """\
NET_BUFFER_LIST 0xffffe000000000e0
    Next NBL            NULL                        FirstNetBuffer      0xffffe00000000280
    Context             NULL                        ParentNetBufferList NULL
    ChildRefCount       0x0                         Pool                0xffffe000000000a0 'Test'
    SourceHandle        NULL                        Status              0x0 NDIS_STATUS_SUCCESS
    NblFlags            0x0                         Flags               0x0
    Allocated by        build_nbl"""

NBL_CHAIN_DATA = NBL_VIEW + """
    NET_BUFFER 0xffffe00000000280: DataLength 0xc, DataOffset 0x2, CurrentMdl 0xffffe00000000380 +0x2
          MDL                 ByteCount   ByteOffset  MappedSystemVa      MdlFlags
        > 0xffffe00000000380  0x4         0x350       0xffffe00000000350  0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
          0xffffe00000000410  0x8         0x3e0       0xffffe000000003e0  0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
          0xffffe000000004a0  0x2         0x470       0xffffe00000000470  0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
        Data: 0xc bytes from DataOffset 0x2:
            0000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64              hello, world
    NET_BUFFER 0xffffe00000000620: DataLength 0x3, DataOffset 0x2, CurrentMdl 0xffffe00000000530 +0x2
          MDL                 ByteCount   ByteOffset  MappedSystemVa      MdlFlags
        > 0xffffe00000000530  0x4         0x500       0xffffe00000000500  0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
          0xffffe000000005c0  0x1         0x590       0xffffe00000000590  0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
        Data: 0x3 bytes from DataOffset 0x2:
            0000  4e 42 32                                          NB2"""  # noqa: E501

NB_VIEW = """\
NET_BUFFER 0xffffe00000000280
    Next NB             0xffffe00000000620          DataLength          0xc
    MdlChain            0xffffe00000000380          DataOffset          0x2
    CurrentMdl          0xffffe00000000380          CurrentMdlOffset    0x2
    Pool                0xffffe000000000a0 'Test'   ChecksumBias        0x0
    Allocated by        build_nbl (inside NET_BUFFER_LIST 0xffffe000000000e0)
      MDL                 ByteCount   ByteOffset  MappedSystemVa      MdlFlags
    > 0xffffe00000000380  0x4         0x350       0xffffe00000000350  0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
      0xffffe00000000410  0x8         0x3e0       0xffffe000000003e0  0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
      0xffffe000000004a0  0x2         0x470       0xffffe00000000470  0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
    Data: 0xc bytes from DataOffset 0x2:
        0000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64              hello, world"""  # noqa: E501

MDL_VIEW = """\
MDL 0xffffe00000000380
    Next                0xffffe00000000410          Size                0x38
    ByteCount           0x4                         ByteOffset          0x350
    StartVa             0xffffe00000000000          MappedSystemVa      0xffffe00000000350
    Process             NULL
    MdlFlags            0x4 (MDL_SOURCE_IS_NONPAGED_POOL)
    Allocated by        build_nbl
    Chain:
        0xffffe00000000410  ByteCount 0x8
        0xffffe000000004a0  ByteCount 0x2
    Data: 0x4 bytes:
        0000  b0 b1 68 65                                       ..he"""

POOL_VIEW = """\
NBL pool 0xffffe000000000a0
    Tag                 'Test'                      ProtocolId          0x0
    fAllocateNetBuffer  TRUE                        ContextSize         0x0
    DataSize            0x0                         Flags               0x0
    Structure size      0x180                       Allocation size     0x250
    Live                0x1                         Allocated           0x1
    Allocated by        NdisAllocateNetBufferListPool"""

NB_POOL_VIEW = """\
NB pool 0xffffe00000000070 (the Kernel's default pool)
    Tag                 'DNBB'                      DataSize            0x0
    Flags               0x0                         Structure size      0xb0
    Allocation size     0xb0                        Live                0x1
    Allocated           0x1                         Allocated by        NdisAllocateNetBufferPool"""

NBL_DT = """\
ndis!_NET_BUFFER_LIST 0xffffe000000000e0 (x64, NDIS 6.87)
   +0x000 Next                : (null)
   +0x008 FirstNetBuffer      : 0xffffe00000000280 _NET_BUFFER
   +0x000 Link                : _SLIST_HEADER
   +0x000 NetBufferListHeader : _NET_BUFFER_LIST_HEADER
   +0x010 Context             : (null)
   +0x018 ParentNetBufferList : (null)
   +0x020 NdisPoolHandle      : 0xffffe000000000a0
   +0x030 NdisReserved        : [2] Ptr64 Void
   +0x040 ProtocolReserved    : [4] Ptr64 Void
   +0x060 MiniportReserved    : [2] Ptr64 Void
   +0x070 Scratch             : (null)
   +0x078 SourceHandle        : (null)
   +0x080 NblFlags            : 0x0
   +0x084 ChildRefCount       : 0n0
   +0x088 Flags               : 0x0
   +0x08c Status              : 0n0
   +0x08c NdisReserved2       : 0x0
   +0x090 NetBufferListInfo   : [27] Ptr64 Void"""


# -- golden views ------------------------------------------------------------------

@pytest.mark.parametrize("target, options, expected", [
    ("nbl", {}, NBL_VIEW),
    ("nbl", {"chain": True, "data": True}, NBL_CHAIN_DATA),
    ("nb", {"chain": True, "data": True}, NB_VIEW),
    ("mdl", {"chain": True, "data": True}, MDL_VIEW),
    ("pool", {}, POOL_VIEW),
    ("nb_pool", {}, NB_POOL_VIEW),
])
def test_golden_views(k, pool, built, target, options, expected):
    objects = {"nbl": built, "nb": built.FirstNetBuffer, "mdl": built.FirstNetBuffer.MdlChain,
               "pool": pool, "nb_pool": k.default_nb_pool}
    assert k.show(objects[target], **options) == expected
    assert k.show(k.view(objects[target]) if target in ("nbl", "nb", "mdl")
                  else objects[target], **options) == expected


def test_golden_dt(k, built):
    assert k.dt(built) == NBL_DT
    assert k.dt(k.view(built)) == NBL_DT
    assert k.dt("NET_BUFFER_LIST") == layout.dt("NET_BUFFER_LIST", "x64", "6.87")
    assert k.dt("_MDL") == layout.dt("MDL", "x64", "6.87")
    with pytest.raises(ValueError, match="unknown struct"):
        k.dt("NET_BUFFER_LISTS")


def test_dt_values_by_type(k, pool):
    """Unsigned hex, signed 0n, bit-fields 0y, nested -r1 members, a pool
    handle listed as its parameters, a freed object with a note."""
    handle = k.NdisAllocateNetBufferListPool(None, {"ContextSize": 32, "PoolTag": 0x6c6f6f50})
    text = k.dt(handle)
    assert text.splitlines()[:5] == [
        "ndis!_NET_BUFFER_LIST_POOL_PARAMETERS 0xffffe000000000e0 (x64, NDIS 6.87)",
        "   +0x000 Header             : _NDIS_OBJECT_HEADER",
        "      +0x000 Type     : 0x80",
        "      +0x001 Revision : 0x1",
        "      +0x002 Size     : 0x10"]
    assert "+0x006 ContextSize        : 0x20" in text and "PoolTag            : 0x6c6f6f50" in text
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    nbl.ChildRefCount = -2
    assert "ChildRefCount       : 0n-2" in k.dt(nbl)
    nbl.ChildRefCount = 0
    nb = nbl.FirstNetBuffer
    assert "+0x0a0 DataPhysicalAddress : _LARGE_INTEGER\n      +0x000 LowPart  : 0x0" in k.dt(nb)
    memory = k.NdisAllocateMemoryWithTagPriority(None, 8, 0x6f666e49, 16)
    info = ffi.new("NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO *")
    info.Transmit.TcpHeaderOffset = 0x22
    ffi.memmove(memory, info, 8)
    text = k.dt(k.ptr(k.addr(memory), "NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO"))
    assert "      +0x000 TcpHeaderOffset         : 0y0000100010" in text
    assert "      +0x000 IsIPv4                  : 0y0" in text
    k.NdisFreeNetBufferList(nbl)
    freed = k.dt(nbl)
    assert "freed NET_BUFFER_LIST, freed by NdisFreeNetBufferList; the bytes memory holds" \
        in freed.splitlines()[0]
    k.NdisFreeMemoryWithTagPriority(None, memory, 0x6f666e49)
    k.NdisFreeNetBufferListPool(handle)


def test_context_and_memory_views(k):
    pool = k.NdisAllocateNetBufferListPool(None, {"ContextSize": 32, "PoolTag": 0x4C424E54})
    nbl = k.NdisAllocateNetBufferList(pool, 16, 16)
    assert k.NdisAllocateNetBufferListContext(nbl, 8, 0, 0x78746354) == 0
    context = ndisemu.NET_BUFFER_LIST_CONTEXT_DATA_START(nbl)
    ffi.memmove(context, b"ctx!", 4)
    assert k.show(nbl.Context, data=True) == (
        "NET_BUFFER_LIST_CONTEXT 0xffffe00000000280\n"
        "    Next                NULL                        Size                0x20\n"
        "    Offset              0x8                         Used                0x18 bytes\n"
        "    Allocated by        NdisAllocateNetBufferList (inside NET_BUFFER_LIST "
        "0xffffe000000000e0)\n"
        "    Data: 0x18 bytes:\n"
        "        0000  63 74 78 21 00 00 00 00  00 00 00 00 00 00 00 00  ctx!............\n"
        "        0010  00 00 00 00 00 00 00 00                           ........")
    k.NdisFreeNetBufferListContext(nbl, 8)
    k.NdisFreeNetBufferList(nbl)
    k.NdisFreeNetBufferListPool(pool)
    memory = k.NdisAllocateMemoryWithTagPriority(None, 3, 0x6d654d54, 16)
    ffi.memmove(memory, b"abc", 3)
    assert k.show(memory, data=True) == (
        "memory block 0xffffe000000002d0\n"
        "    Tag                 'TMem'                      Size                0x3\n"
        "    Allocated by        NdisAllocateMemoryWithTagPriority\n"
        "    Data: 0x3 bytes:\n"
        "        0000  61 62 63                                          abc")
    k.NdisFreeMemoryWithTagPriority(None, memory, 0x6d654d54)
    assert k.show(memory) == ("memory block 0xffffe000000002d0: freed by "
                              "NdisFreeMemoryWithTagPriority\n"
                              "    Tag                 'TMem'                      Size"
                              "                0x3\n"
                              "    Allocated by        NdisAllocateMemoryWithTagPriority")


def test_pool_counts_live_and_total(k):
    pool = k.NdisAllocateNetBufferListPool(None, {"PoolTag": 0x54534554, "ProtocolId": 6,
                                                  "Flags": 1, "DataSize": 0})
    nbls = [k.NdisAllocateNetBufferList(pool, 0, 0) for _ in range(3)]
    k.NdisFreeNetBufferList(nbls.pop())
    text = k.show(pool)
    assert "Live                0x2 " in text and "Allocated           0x3" in text
    assert "ProtocolId          0x6" in text
    assert "Flags               0x1 (NET_BUFFER_LIST_POOL_FLAG_VERIFY)" in text
    for nbl in nbls:
        k.NdisFreeNetBufferList(nbl)
    assert "Live                0x0 " in k.show(pool)
    k.NdisFreeNetBufferListPool(pool)
    assert k.show(pool) == ("NBL pool 0xffffe000000000a0: freed NBL pool, freed by "
                            "NdisFreeNetBufferListPool\n"
                            "    Allocated by        NdisAllocateNetBufferListPool")


# -- every flag and bit-field decoded -----------------------------------------------

C = for_version("6.87")
NBL_FLAGS = sorted(n for n in C if n.startswith("NDIS_NBL_FLAGS_"))
MDL_FLAGS = sorted(n for n in C if n.startswith("MDL_"))
OWNERS = sorted(n for n in C if n.startswith("NBL_FLAGS_"))


@pytest.mark.parametrize("name", NBL_FLAGS)
def test_every_nbl_flag_is_decoded(k, pool, name):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    ndisemu.NdisSetNblFlag(nbl, C[name])
    assert f"NblFlags            {C[name]:#x} ({name})" in k.show(nbl)
    k.NdisFreeNetBufferList(nbl)


@pytest.mark.parametrize("name", MDL_FLAGS)
def test_every_mdl_flag_is_decoded(k, name):
    memory = k.NdisAllocateMemoryWithTagPriority(None, 16, 0x20202020, 16)
    mdl = k.NdisAllocateMdl(None, memory, 16)
    mdl.MdlFlags = C[name] - (C[name] >> 15 << 16)     # a CSHORT: 0x8000 is negative
    text = k.show(mdl)
    aliases = sorted(n for n in MDL_FLAGS if C[n] == C[name])
    assert f"MdlFlags            {C[name]:#x} ({'/'.join(aliases)})" in text
    assert name in ndiskd.mdl_flags(C[name])
    mdl.MdlFlags = 0x4
    k.NdisFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, memory, 0x20202020)


@pytest.mark.parametrize("name", OWNERS)
def test_nbl_flags_field_is_split_by_owner(k, pool, name):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    low = C[name] & -C[name]            # the region's lowest bit
    ndisemu.NBL_SET_FLAG(nbl, low)
    assert f"Flags               {low:#x} ({name} {low:#x})" in k.show(nbl)
    k.NdisFreeNetBufferList(nbl)


def test_flag_decoding_edges():
    assert ndiskd.decode_flags(0, {1: ["A"]}) == "0x0"
    assert ndiskd.decode_flags(0x9, {1: ["A"]}) == "0x9 (A | 0x8)"
    assert ndiskd.mdl_flags(0x4100) == (
        "0x4100 (MDL_LOCKED_PAGE_TABLES/MDL_PARENT_MAPPED_SYSTEM_VA"
        " | MDL_ALLOCATED_MUST_SUCCEED/MDL_PAGE_CONTENTS_INVARIANT)")
    assert ndiskd.nbl_ownership_flags(0x00101004) == (
        "0x101004 (NBL_FLAGS_MINIPORT_RESERVED 0x1000, NBL_FLAGS_NDIS_RESERVED 0x4, "
        "NBL_FLAGS_PROTOCOL_RESERVED 0x100000)")
    assert ndiskd.tag_text(0x74736554) == "'Test'"
    assert ndiskd.tag_text(0x01) == "'\\x01\\x00\\x00\\x00'"


def _bit_fields(struct):
    """(view, field, bit offset, width) of every bit-field of an info struct."""
    return [(path.split(".")[0], path.split(".")[1], f["bit_offset"], f["bit_size"])
            for path, f in layout.struct(struct)["fields"].items() if "bit_size" in f]


INFO_FIELDS = [("TcpIpChecksumNetBufferListInfo", *field)
               for field in _bit_fields("NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO")] + \
              [("Ieee8021QNetBufferListInfo", *field)
               for field in _bit_fields("NDIS_NET_BUFFER_LIST_8021Q_INFO")] + \
              [("TcpLargeSendNetBufferListInfo", *field)
               for field in _bit_fields("NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO")
               if field[0].startswith("Lso")]


@pytest.mark.parametrize("slot, view, field, bit, width", INFO_FIELDS,
                         ids=[f"{s}.{v}.{f}" for s, v, f, _, _ in INFO_FIELDS])
def test_every_info_bit_field_is_decoded(k, pool, slot, view, field, bit, width):
    """Each bit-field set to its maximum shows by name in the slot's decoded
    lines (LSO's views chosen by Type: V1 when 0, V2 when 1; a view that
    repeats an earlier one's fields and values is left out)."""
    value = ((1 << width) - 1) << bit
    if view.startswith("LsoV2"):
        value |= 1 << 30
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, C[slot], value)
    lines = k.show(nbl, info=True).splitlines()
    at = next(i for i, line in enumerate(lines) if f"] {slot}" in line)
    assert lines[at].endswith(f": {value:#x}")
    decoded = []
    for line in lines[at + 1:]:
        if not line.startswith(" " * 15):
            break
        decoded.append(line.strip())
    assert any(f"{field} {(1 << width) - 1:#x}" in line for line in decoded), decoded
    assert ndiskd.decode_info(slot, value) == decoded
    k.NdisFreeNetBufferList(nbl)


def test_info_slots_named_and_decoded(k, pool):
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    vlan = ffi.new("NDIS_NET_BUFFER_LIST_8021Q_INFO *")
    vlan.TagHeader.VlanId = 42
    vlan.TagHeader.UserPriority = 5
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, C["Ieee8021QNetBufferListInfo"], vlan.Value)
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, C["NetBufferListHashValue"], 0x1234)
    nbl.NetBufferListInfo[28] = ffi.cast("void *", 7)    # past the 6.87 driver view
    text = k.show(nbl, info=True)
    assert text.split("NetBufferListInfo (slots that are not 0):\n")[1].splitlines() == [
        "        [0x04] Ieee8021QNetBufferListInfo: 0x2a5",
        "               TagHeader: UserPriority 0x5, VlanId 0x2a",
        "        [0x08] NetBufferListHashValue: 0x1234",
        "        [0x1c] NetBufferListInfoReserved2: 0x7"]
    nbl.NetBufferListInfo[28] = ffi.NULL
    k.NdisFreeNetBufferList(nbl)
    empty = k.NdisAllocateNetBufferList(pool, 0, 0)
    assert "    NetBufferListInfo: every slot is 0" in k.show(empty, info=True)
    k.NdisFreeNetBufferList(empty)


def test_hexdump_format():
    assert ndiskd.hexdump(bytes(range(0x41, 0x41 + 18)), "") == [
        "0000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  ABCDEFGHIJKLMNOP",
        "0010  51 52                                             QR"]
    assert ndiskd.hexdump(b"") == []


# -- addresses both ways, repr --------------------------------------------------------

def test_addr_and_ptr_round_trip(k, built):
    nb = built.FirstNetBuffer
    assert k.addr(built) == 0xffffe000000000e0 == k.addr(k.view(built)) == k.display(built)
    assert k.addr(None) == 0
    back = k.ptr(0xffffe000000000e0, "NET_BUFFER_LIST")
    assert back == built and ffi.typeof(back) is ffi.typeof("NET_BUFFER_LIST *")
    assert k.ptr("0xffffe000`00000280", "_NET_BUFFER *") == nb
    assert k.ptr(k.addr(nb), "void") == ffi.cast("void *", nb)
    for bad, error in [((0x1000, "MDL"), ValueError), ((2**64, "MDL"), ValueError),
                       ((0xffffe000000000e0, "NBL"), ValueError), (("zz", "MDL"), ValueError),
                       ((1.5, "MDL"), TypeError), ((0xffffe000000000e0, 5), TypeError)]:
        with pytest.raises(error):
            k.ptr(*bad)
    with pytest.raises(TypeError):
        k.addr(1234)


def test_repr_of_views(k, pool, built):
    assert repr(k.view(built)) == ("<NET_BUFFER_LIST 0xffffe000000000e0: FirstNetBuffer "
                                   "0xffffe00000000280, Next NULL, ChildRefCount 0x0, "
                                   "NblFlags 0x0>")
    assert repr(k.view(built).FirstNetBuffer) == (
        "<NET_BUFFER 0xffffe00000000280: DataLength 0xc, DataOffset 0x2, "
        "MdlChain 0xffffe00000000380, CurrentMdl 0xffffe00000000380 +0x2>")
    assert repr(k.view(built).FirstNetBuffer.MdlChain) == (
        "<MDL 0xffffe00000000380: ByteCount 0x4, ByteOffset 0x350, MdlFlags 0x4, "
        "Next 0xffffe00000000410>")
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    view = k.view(nbl)
    k.NdisFreeNetBufferList(nbl)
    assert repr(view) == ("<NET_BUFFER_LIST 0xffffe000000006f0 (freed NET_BUFFER_LIST, "
                          "freed by NdisFreeNetBufferList)>")
    context_pool = k.NdisAllocateNetBufferListPool(None, {"ContextSize": 16})
    with_context = k.NdisAllocateNetBufferList(context_pool, 0, 0)
    assert repr(k.view(with_context).Context) == (
        "<NET_BUFFER_LIST_CONTEXT 0xffffe00000000b40: Size 0x10, Offset 0x10, Next NULL>")
    k.NdisFreeNetBufferList(with_context)
    k.NdisFreeNetBufferListPool(context_pool)


# -- never a crash, never an exception ----------------------------------------------

def test_views_say_what_is_wrong(k, pool, nbl_pool):
    nbl = k.NdisAllocateNetBufferList(nbl_pool, 0, 0)
    nbl.FirstNetBuffer = ffi.cast("NET_BUFFER *", 0x4141414141)
    nbl.Next = nbl
    nbl.Context = ffi.cast("NET_BUFFER_LIST_CONTEXT *", nbl)   # an NBL, not a context
    text = k.show(nbl, chain=True, data=True, info=True, log=True)
    assert "FirstNetBuffer      0x4141414141 (not a live NET_BUFFER: outside the arena)" in text
    assert f"Context             {k.addr(nbl):#x} (not a live NET_BUFFER_LIST_CONTEXT: a live " \
           "NET_BUFFER_LIST)" in text
    assert text.endswith(f"... {k.addr(nbl):#x} again: the NBL chain loops")
    nbl.Next = nbl.Context = nbl.FirstNetBuffer = ffi.NULL
    k.NdisFreeNetBufferList(nbl)

    built = k.build_nbl(pool, [b"abcdef"], mdl_sizes=[2])
    nb = built.FirstNetBuffer
    second = nb.MdlChain.Next
    second.Next.Next = nb.MdlChain                # the chain loops
    nb.DataOffset = 1                             # and disagrees with CurrentMdlOffset
    text = k.show(nb, chain=True, data=True)
    assert "again: the chain loops" in text
    assert "Inconsistent        " in text
    assert "Data: cannot be read: " in text
    second.Next.Next = ffi.NULL
    nb.DataOffset = 0
    k.free_built(built)
    assert k.show(built, chain=True, data=True, info=True, log=True) == (
        "NET_BUFFER_LIST 0xffffe000000002c0: freed NET_BUFFER_LIST, freed by free_built\n"
        "    Allocated by        build_nbl\n"
        "    Log: tracing is off (k.trace = True records events)")
    assert k.show(nb).startswith("NET_BUFFER 0xffffe00000000460: freed NET_BUFFER, "
                                 "freed by free_built")
    assert k.show(None) == "NULL"
    assert k.show(ffi.cast("void *", 0x1234)) == "0x1234: outside the arena"
    assert k.show(k.ptr(k.addr(pool) + 16, "void")).endswith(": no object starts here")
    assert k.show(ffi.cast("MDL *", 0x4141414141)) == \
        "MDL 0x4141414141: not a live MDL: outside the arena"
    assert k.show(ffi.cast("MDL *", built)).startswith(
        "MDL 0xffffe000000002c0: not a live MDL: a freed NET_BUFFER_LIST, freed by free_built")


def test_inconsistent_nb_is_named(k, pool):
    built = k.build_nbl(pool, [b"abcdef"], mdl_sizes=[2])
    nb = built.FirstNetBuffer
    nb.CurrentMdlOffset = 1
    assert ("    Inconsistent        DataOffset: differs from the bytes before CurrentMdl + "
            "CurrentMdlOffset (found 0x0, expected 0x1)") in k.show(nb)
    nb.CurrentMdlOffset = 0
    k.free_built(built)


def test_log_when_tracing_is_off(k, built):
    assert k.show(built, log=True).endswith(
        "    Log: tracing is off (k.trace = True records events)")
    k.trace = True
    assert k.show(built, log=True).endswith("    Log: no events recorded")


# A field of an NBL, NB or MDL overwritten with one of these: wild, NULL, the
# object itself, inside or between objects of the arena, huge lengths.
_WILD = st.sampled_from([0, 1, 0x18, 0x4141414141, 2**47 - 16, 2**64 - 1])
_FIELDS = {
    "NET_BUFFER_LIST": ["Next", "FirstNetBuffer", "Context", "ParentNetBufferList",
                        "NdisPoolHandle", "ChildRefCount", "NblFlags", "Flags", "Status"],
    "NET_BUFFER": ["Next", "CurrentMdl", "CurrentMdlOffset", "DataLength", "MdlChain",
                   "DataOffset", "NdisPoolHandle"],
    "MDL": ["Next", "Size", "MdlFlags", "MappedSystemVa", "StartVa", "ByteCount",
            "ByteOffset"],
}


def _write(k, target, struct, name, value):
    """Writes `value` into a field as its type holds it (a negative value:
    that arena offset, as an address)."""
    if value < 0:
        value = k._base + (-value - 1)
    field = dict(ffi.typeof(struct).fields)[name]
    if field.type.kind == "pointer":
        setattr(target, name, ffi.cast(field.type, value))
        return
    bits = ffi.sizeof(field.type) * 8
    value &= (1 << bits) - 1
    if field.type.cname.startswith("int"):          # int16_t, int32_t: signed
        value -= (value >> (bits - 1)) << bits
    setattr(target, name, value)


@given(st.lists(st.tuples(st.sampled_from(sorted(_FIELDS)), st.integers(0, 8),
                          st.one_of(_WILD, st.integers(0, 0xFFFF),
                                    st.integers(0, 0x3000).map(lambda o: -o - 1))),
                min_size=1, max_size=6))
def test_show_never_raises_on_corruption(fields):
    """Random field writes on an NBL, its NBs and MDLs (negative numbers
    stand for arena offsets, pointing anywhere into it): every view, with
    every option, returns text and the machine still works after."""
    k = ndisemu.Kernel(arena_size=1 << 20)
    k.trace = True
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
    nbl = k.build_nbl(pool, [b"abcdefgh", b"ij"], mdl_sizes=[3, 1], data_offset=2)
    objects = {"NET_BUFFER_LIST": [nbl], "NET_BUFFER": [], "MDL": []}
    nb = nbl.FirstNetBuffer
    while nb != ffi.NULL:
        objects["NET_BUFFER"].append(nb)
        mdl = nb.MdlChain
        while mdl != ffi.NULL:
            objects["MDL"].append(mdl)
            mdl = mdl.Next
        nb = nb.Next
    saved = {key: [ffi.buffer(o, ffi.sizeof(key))[:] for o in objs]
             for key, objs in objects.items()}
    for struct, index, value in fields:
        target = objects[struct][index % len(objects[struct])]
        _write(k, target, struct, _FIELDS[struct][index % len(_FIELDS[struct])], value)
    for objs in objects.values():
        for obj in objs:
            for options in ({}, {"chain": True, "data": True, "info": True, "log": True}):
                assert k.show(obj, **options)
            assert k.dt(obj) and repr(k.view(obj))
    for key, objs in objects.items():
        for obj, data in zip(objs, saved[key], strict=True):
            ffi.memmove(obj, data, len(data))
    k.free_built(nbl)
    k.NdisFreeNetBufferListPool(pool)


# -- ndisemu show --demo ----------------------------------------------------------

def test_show_demo_is_the_same_every_run():
    runs = [subprocess.run([sys.executable, "-m", "ndisemu", "show", "--demo"],
                           capture_output=True, text=True, check=False, timeout=60)
            for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0] and runs[0].stderr == ""
    assert runs[0].stdout == runs[1].stdout == ndiskd.demo() + "\n"
    text = runs[0].stdout
    for needle in ["# An NBL with two NBs, one MDL per header (build_nbl)",
                   "NblFlags            0xa00 (NDIS_NBL_FLAGS_IS_IPV4 | NDIS_NBL_FLAGS_IS_TCP)",
                   "Transmit: IsIPv4 0x1, TcpChecksum 0x1, TcpHeaderOffset 0x22",
                   "TagHeader: UserPriority 0x5, VlanId 0x2a",
                   "0x14 (MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL)",
                   "0030  fa f0 00 00 00 00 47 45  54 20 2f 20 48 54 54 50  ......GET / HTTP",
                   "derived from NET_BUFFER_LIST 0xffffe000000000e0 (deep clone)",
                   "Live                0x1 "]:
        assert needle in text, needle
    # two NBs over four MDLs each in the original and the NDIS clone, one in the deep clone
    assert text.count("    NET_BUFFER 0x") == 6
    assert text.count("(MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL)") == 8


def test_show_needs_demo(capsys):
    assert cli.main(["show"]) == 2
    assert "give --demo" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["show", "--help"])
    assert "--demo" in capsys.readouterr().out
