"""Layouts of every profile, checked against ndis.sys symbol facts and the
WDK headers' definitions (table-driven, in the style of KUnit suites)."""

import ctypes
import json
import subprocess
import sys

import pytest

from ndisemu import ffi, layout

ALL_PROFILES = [(abi, v) for abi in layout.ABIS for v in layout.VERSIONS]

# (abi, ndis, struct, field or None for sizeof, expected) -- reference points
# from ndis.sys's symbol files (NDIS_WRAPPER view) and the public headers.
FACTS = [
    # x64, NDIS 6.87 (driver view)
    ("x64", "6.87", "NET_BUFFER_LIST", "Next", 0x00),
    ("x64", "6.87", "NET_BUFFER_LIST", "FirstNetBuffer", 0x08),
    ("x64", "6.87", "NET_BUFFER_LIST", "Link", 0x00),
    ("x64", "6.87", "NET_BUFFER_LIST", "Context", 0x10),
    ("x64", "6.87", "NET_BUFFER_LIST", "ParentNetBufferList", 0x18),
    ("x64", "6.87", "NET_BUFFER_LIST", "NdisPoolHandle", 0x20),
    ("x64", "6.87", "NET_BUFFER_LIST", "NdisReserved", 0x30),
    ("x64", "6.87", "NET_BUFFER_LIST", "ProtocolReserved", 0x40),
    ("x64", "6.87", "NET_BUFFER_LIST", "MiniportReserved", 0x60),
    ("x64", "6.87", "NET_BUFFER_LIST", "Scratch", 0x70),
    ("x64", "6.87", "NET_BUFFER_LIST", "SourceHandle", 0x78),
    ("x64", "6.87", "NET_BUFFER_LIST", "NblFlags", 0x80),
    ("x64", "6.87", "NET_BUFFER_LIST", "ChildRefCount", 0x84),
    ("x64", "6.87", "NET_BUFFER_LIST", "Flags", 0x88),
    ("x64", "6.87", "NET_BUFFER_LIST", "Status", 0x8C),
    ("x64", "6.87", "NET_BUFFER_LIST", "NdisReserved2", 0x8C),
    ("x64", "6.87", "NET_BUFFER_LIST", "NetBufferListInfo", 0x90),
    ("x64", "6.87", "NET_BUFFER_LIST", None, 0x170),
    ("x64", "6.87", "NET_BUFFER", "Next", 0),
    ("x64", "6.87", "NET_BUFFER", "CurrentMdl", 8),
    ("x64", "6.87", "NET_BUFFER", "CurrentMdlOffset", 16),
    ("x64", "6.87", "NET_BUFFER", "DataLength", 24),
    ("x64", "6.87", "NET_BUFFER", "stDataLength", 24),
    ("x64", "6.87", "NET_BUFFER", "MdlChain", 32),
    ("x64", "6.87", "NET_BUFFER", "DataOffset", 40),
    ("x64", "6.87", "NET_BUFFER", "ChecksumBias", 48),
    ("x64", "6.87", "NET_BUFFER", "Reserved", 50),
    ("x64", "6.87", "NET_BUFFER", "NdisPoolHandle", 56),
    ("x64", "6.87", "NET_BUFFER", "NdisReserved", 64),
    ("x64", "6.87", "NET_BUFFER", "ProtocolReserved", 80),
    ("x64", "6.87", "NET_BUFFER", "MiniportReserved", 128),
    ("x64", "6.87", "NET_BUFFER", "DataPhysicalAddress", 160),
    ("x64", "6.87", "NET_BUFFER", "SharedMemoryInfo", 168),
    ("x64", "6.87", "NET_BUFFER", "ScatterGatherList", 168),
    ("x64", "6.87", "NET_BUFFER", None, 0xB0),
    ("x64", "6.87", "MDL", "Next", 0),
    ("x64", "6.87", "MDL", "Size", 8),
    ("x64", "6.87", "MDL", "MdlFlags", 10),
    ("x64", "6.87", "MDL", "Process", 16),
    ("x64", "6.87", "MDL", "MappedSystemVa", 24),
    ("x64", "6.87", "MDL", "StartVa", 32),
    ("x64", "6.87", "MDL", "ByteCount", 40),
    ("x64", "6.87", "MDL", "ByteOffset", 44),
    ("x64", "6.87", "MDL", None, 0x30),
    ("x64", "6.87", "NET_BUFFER_LIST_CONTEXT", "Size", 8),
    ("x64", "6.87", "NET_BUFFER_LIST_CONTEXT", "Offset", 10),
    ("x64", "6.87", "NET_BUFFER_LIST_CONTEXT", "ContextData", 16),
    ("x64", "6.87", "NET_BUFFER_LIST_CONTEXT", None, 16),
    ("x64", "6.87", "SLIST_HEADER", None, 16),
    ("x64", "6.87", "NET_BUFFER_LIST_POOL_PARAMETERS", "ProtocolId", 4),
    ("x64", "6.87", "NET_BUFFER_LIST_POOL_PARAMETERS", "fAllocateNetBuffer", 5),
    ("x64", "6.87", "NET_BUFFER_LIST_POOL_PARAMETERS", "ContextSize", 6),
    ("x64", "6.87", "NET_BUFFER_LIST_POOL_PARAMETERS", "PoolTag", 8),
    ("x64", "6.87", "NET_BUFFER_LIST_POOL_PARAMETERS", "DataSize", 12),
    ("x64", "6.87", "NET_BUFFER_LIST_POOL_PARAMETERS", "Flags", 16),
    ("x64", "6.87", "NET_BUFFER_POOL_PARAMETERS", "PoolTag", 4),
    ("x64", "6.87", "NET_BUFFER_POOL_PARAMETERS", "DataSize", 8),
    ("x64", "6.87", "NET_BUFFER_POOL_PARAMETERS", "Flags", 12),
    ("x64", "6.87", "NDIS_OBJECT_HEADER", "Size", 2),
    ("x64", "6.87", "NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO", None, 8),
    ("x64", "6.87", "NDIS_NET_BUFFER_LIST_8021Q_INFO", None, 8),
    ("x64", "6.87", "NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO", None, 8),
    # ndis.sys's own view
    ("x64", "wrapper", "NET_BUFFER_LIST", None, 0x180),
    ("x86", "wrapper", "NET_BUFFER_LIST", None, 0xC8),
    ("arm64", "wrapper", "NET_BUFFER_LIST", None, 0x180),
    ("arm64", "wrapper", "NET_BUFFER_LIST", "NdisReserved", 0x30),
    ("arm64", "wrapper", "NET_BUFFER_LIST", "ChildRefCount", 0x84),
    ("arm64", "wrapper", "NET_BUFFER_LIST", "Status", 0x8C),
    ("arm64", "wrapper", "NET_BUFFER_LIST", "NetBufferListInfo", 0x90),
    ("arm64", "wrapper", "NET_BUFFER", None, 0xB0),
    ("arm64", "wrapper", "NET_BUFFER", "DataOffset", 40),
    ("arm64", "wrapper", "NET_BUFFER", "NdisReserved", 64),
    ("arm64", "wrapper", "MDL", None, 0x30),
    ("arm64", "wrapper", "MDL", "ByteOffset", 44),
    ("arm64", "wrapper", "SLIST_HEADER", None, 16),
    ("arm64", "wrapper", "NET_BUFFER_LIST_CONTEXT", "ContextData", 16),
    # x86, NDIS 6.87
    ("x86", "6.87", "NET_BUFFER_LIST", "FirstNetBuffer", 0x04),
    ("x86", "6.87", "NET_BUFFER_LIST", "Context", 0x08),
    ("x86", "6.87", "NET_BUFFER_LIST", "ParentNetBufferList", 0x0C),
    ("x86", "6.87", "NET_BUFFER_LIST", "NdisPoolHandle", 0x10),
    ("x86", "6.87", "NET_BUFFER_LIST", "NdisReserved", 0x18),
    ("x86", "6.87", "NET_BUFFER_LIST", "ProtocolReserved", 0x20),
    ("x86", "6.87", "NET_BUFFER_LIST", "MiniportReserved", 0x30),
    ("x86", "6.87", "NET_BUFFER_LIST", "Scratch", 0x38),
    ("x86", "6.87", "NET_BUFFER_LIST", "NblFlags", 0x40),
    ("x86", "6.87", "NET_BUFFER_LIST", "ChildRefCount", 0x44),
    ("x86", "6.87", "NET_BUFFER_LIST", "Status", 0x4C),
    ("x86", "6.87", "NET_BUFFER_LIST", "NetBufferListInfo", 0x50),
    ("x86", "6.87", "NET_BUFFER_LIST", None, 0xC0),
    ("x86", "6.87", "NET_BUFFER", "DataLength", 0x0C),
    ("x86", "6.87", "NET_BUFFER", "MdlChain", 0x10),
    ("x86", "6.87", "NET_BUFFER", "DataOffset", 0x14),
    ("x86", "6.87", "NET_BUFFER", "NdisPoolHandle", 0x1C),
    ("x86", "6.87", "NET_BUFFER", "NdisReserved", 0x20),
    ("x86", "6.87", "NET_BUFFER", "ProtocolReserved", 0x28),
    ("x86", "6.87", "NET_BUFFER", "MiniportReserved", 0x40),
    ("x86", "6.87", "NET_BUFFER", "DataPhysicalAddress", 0x50),
    ("x86", "6.87", "NET_BUFFER", "SharedMemoryInfo", 0x58),
    ("x86", "6.87", "NET_BUFFER", None, 0x60),
    ("x86", "6.87", "MDL", "Size", 4),
    ("x86", "6.87", "MDL", "MdlFlags", 6),
    ("x86", "6.87", "MDL", "Process", 8),
    ("x86", "6.87", "MDL", "MappedSystemVa", 12),
    ("x86", "6.87", "MDL", "StartVa", 16),
    ("x86", "6.87", "MDL", "ByteCount", 20),
    ("x86", "6.87", "MDL", "ByteOffset", 24),
    ("x86", "6.87", "MDL", None, 0x1C),
    ("x86", "6.87", "NET_BUFFER_LIST_CONTEXT", "ContextData", 8),
    ("x86", "6.87", "SLIST_HEADER", None, 8),
    ("x86", "6.0", "NET_BUFFER", None, 0x58),
    ("x86", "6.1", "NET_BUFFER", None, 0x58),
    ("x86", "6.20", "NET_BUFFER", None, 0x60),
    # x64, NDIS 6.0: 11 info slots, no SharedMemoryInfo
    ("x64", "6.0", "NET_BUFFER_LIST", "NetBufferListInfo", 0x90),
    ("x64", "6.0", "NET_BUFFER_LIST", None, 0xF0),  # 0x90 + 11 * 8, rounded to 16
    ("x64", "6.0", "NET_BUFFER_LIST", "ChildRefCount", 0x84),
    ("x64", "6.0", "NET_BUFFER", None, 0xB0),
    ("x64", "6.0", "NET_BUFFER", "DataPhysicalAddress", 160),
    ("x64", "6.0", "MDL", None, 0x30),
    ("x64", "6.0", "NET_BUFFER_LIST_CONTEXT", "ContextData", 16),
    ("x64", "6.0", "NET_BUFFER_LIST_POOL_PARAMETERS", "DataSize", 12),
]


@pytest.mark.parametrize("abi,ndis,name,field,expected", FACTS)
def test_reference_facts(abi, ndis, name, field, expected):
    if field is None:
        assert layout.sizeof(name, abi, ndis) == expected
    else:
        assert layout.offsetof(name, field, abi, ndis) == expected


# MaxNetBufferListInfo per ABI and view (nblinfo.h's gates; x86 and x64 differ).
MAX_INFO = {
    "6.0": (11, 11), "6.1": (13, 13), "6.20": (18, 18), "6.30": (24, 21),
    "6.40": (24, 21), "6.50": (26, 21), "6.60": (26, 21), "6.70": (26, 21),
    "6.80": (27, 23), "6.81": (27, 23), "6.82": (27, 27), "6.83": (27, 27),
    "6.84": (27, 27), "6.87": (27, 27), "wrapper": (29, 29),
}


@pytest.mark.parametrize("abi,ndis", ALL_PROFILES)
def test_info_slots_and_nbl_size(abi, ndis):
    wide = abi != "x86"
    p = layout.profile(abi, ndis)
    slots = p["enums"]["NDIS_NET_BUFFER_LIST_INFO"]["MaxNetBufferListInfo"]
    assert slots == MAX_INFO[ndis][0 if wide else 1]
    nbl = p["structs"]["NET_BUFFER_LIST"]
    info = nbl["fields"]["NetBufferListInfo"]
    ptr = 8 if wide else 4
    assert info["size"] == slots * ptr
    assert info["type"] == f"[{slots}] Ptr{ptr * 8} Void"
    align = 16 if wide else 8
    assert nbl["align"] == align
    assert nbl["size"] == -(-(info["offset"] + info["size"]) // align) * align


def test_x86_switch_slots_move_at_682():
    e = layout.profile("x86", "6.82")["enums"]["NDIS_NET_BUFFER_LIST_INFO"]
    assert e["SwitchForwardingDetail_b32_to_b63"] == 25
    assert "SwitchForwardingDetail_b0_to_b31" not in layout.profile("x86", "6.81")["enums"][
        "NDIS_NET_BUFFER_LIST_INFO"]
    x64 = layout.profile("x64", "6.82")["enums"]["NDIS_NET_BUFFER_LIST_INFO"]
    assert x64["SwitchForwardingDetail"] == 19 and x64["VirtualSubnetInfo"] == 20
    assert e["VirtualSubnetInfo"] == 26


@pytest.mark.parametrize("ndis,has", [("6.1", False), ("6.20", True), ("wrapper", True)])
def test_shared_memory_info_from_620(ndis, has):
    for abi in layout.ABIS:
        assert ("SharedMemoryInfo" in layout.struct("NET_BUFFER", abi, ndis)["fields"]) == has


VERSION_CONSTANTS = [
    ("6.20", "NBL_FLAGS_PROTOCOL_RESERVED", 0xFFF00000),
    ("6.30", "NBL_FLAGS_PROTOCOL_RESERVED", 0xFFF00003),
    ("6.20", "NBL_FLAGS_NDIS_RESERVED", 0x00000FFF),
    ("6.30", "NBL_FLAGS_NDIS_RESERVED", 0x00000FFC),
    ("6.81", "NDIS_NBL_FLAGS_CAPTURE_TIMESTAMP_ON_TRANSMIT", None),
    ("6.82", "NDIS_NBL_FLAGS_CAPTURE_TIMESTAMP_ON_TRANSMIT", 0x10000),
    ("6.0", "NDIS_NBL_FLAGS_IS_IPV4", None),
    ("6.1", "NDIS_NBL_FLAGS_IS_IPV4", 0x200),
    ("6.70", "NDIS_HASH_UDP_IPV4", None),
    ("6.80", "NDIS_HASH_UDP_IPV4", 0x4000),
    ("6.87", "NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS", 2),
    ("6.87", "MDL_MAPPED_TO_SYSTEM_VA", 1),
    ("6.87", "MDL_SOURCE_IS_NONPAGED_POOL", 4),
    ("6.87", "NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1", 16),
    ("6.87", "NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_2", 20),
    ("6.87", "NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1", 12),
    ("6.87", "NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_2", 16),
    ("6.87", "NDIS_STATUS_RESOURCES", 0xC000009A),
    ("6.87", "NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE", 1),
]


@pytest.mark.parametrize("ndis,name,value", VERSION_CONSTANTS)
def test_versioned_constants(ndis, name, value):
    for abi in layout.ABIS:
        assert layout.profile(abi, ndis)["constants"].get(name) == value


def test_checksum_receive_bits_grow_at_630():
    before = layout.struct("NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO", "x64", "6.20")["fields"]
    after = layout.struct("NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO", "x64", "6.30")["fields"]
    assert "Receive.IpChecksumValueInvalid" not in before
    assert after["Receive.IpChecksumValueInvalid"] == {
        "offset": 0, "size": 4, "bit_offset": 8, "bit_size": 1, "type": "Pos 8, 1 Bit"}


BITFIELDS = [
    ("NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO", "Transmit.IsIPv4", 0, 1),
    ("NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO", "Transmit.TcpHeaderOffset", 16, 10),
    ("NDIS_NET_BUFFER_LIST_8021Q_INFO", "TagHeader.UserPriority", 0, 3),
    ("NDIS_NET_BUFFER_LIST_8021Q_INFO", "TagHeader.VlanId", 4, 12),
    ("NDIS_NET_BUFFER_LIST_8021Q_INFO", "WLanTagHeader.WMMInfo", 16, 4),
    ("NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO", "LsoV2Transmit.MSS", 0, 20),
    ("NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO", "LsoV2Transmit.TcpHeaderOffset", 20, 10),
    ("NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO", "LsoV2Transmit.IPVersion", 31, 1),
    ("SLIST_HEADER", "HeaderX64.Sequence", 16, 48),
    ("SLIST_HEADER", "HeaderX64.NextEntry", 4, 60),
]


@pytest.mark.parametrize("name,path,bit_offset,bit_size", BITFIELDS)
def test_bitfields(name, path, bit_offset, bit_size):
    f = layout.struct(name, "x64", "6.87")["fields"][path]
    assert (f["bit_offset"], f["bit_size"]) == (bit_offset, bit_size)


def test_slist_header_shape_per_abi():
    assert "HeaderX64.Depth" in layout.struct("SLIST_HEADER", "x64")["fields"]
    assert "HeaderArm64.Depth" in layout.struct("SLIST_HEADER", "arm64")["fields"]
    x86 = layout.struct("SLIST_HEADER", "x86")["fields"]
    assert x86["CpuId"]["offset"] == 6 and x86["Next"]["type"] == "Ptr32 Void"
    nextentry = layout.struct("SLIST_HEADER", "x64")["fields"]["HeaderX64.NextEntry"]
    assert nextentry["offset"] == 8


def test_runtime_structs_are_the_wrapper_view():
    """The executable x64 structs are ndis.sys's own layout (docs/kernel.md)."""
    wrapper = layout.profile("x64", "wrapper")["structs"]
    for name in ("NET_BUFFER_LIST", "NET_BUFFER", "MDL", "NET_BUFFER_LIST_CONTEXT",
                 "NET_BUFFER_LIST_POOL_PARAMETERS", "NET_BUFFER_POOL_PARAMETERS"):
        assert ffi.sizeof(name) == wrapper[name]["size"]
        for path, f in wrapper[name]["fields"].items():
            if "." not in path and "bit_size" not in f:
                assert ffi.offsetof(name, path) == f["offset"], (name, path)


def _ctypes_offset(cls, path):
    """Offset of a (possibly dotted, possibly anonymous-union) member."""
    offset = 0
    for part in path.split("."):
        offset += getattr(cls, part).offset
        for name, ftype, *_ in cls._fields_:
            if name == part:
                cls = ftype
                break
        else:
            # Reached through an anonymous member: find its type by walking.
            cls = _member_type(cls, part)
    return offset


def _member_type(cls, part):
    for name, ftype, *_ in cls._fields_:
        if name == part:
            return ftype
        if name in getattr(cls, "_anonymous_", ()):
            found = _member_type(ftype, part)
            if found is not None:
                return found
    return None


@pytest.mark.parametrize("abi,ndis", ALL_PROFILES)
def test_ctypes_export_matches_compiled_layout(abi, ndis):
    for name, s in layout.profile(abi, ndis)["structs"].items():
        cls = layout.ctypes_struct(name, abi, ndis)
        assert ctypes.sizeof(cls) == s["size"], name
        for path, f in s["fields"].items():
            if "bit_size" in f:
                continue
            assert _ctypes_offset(cls, path) == f["offset"], (name, path)
            assert ctypes.sizeof(_member_type(cls, path.split(".")[-1]) if "." in path
                                 else _member_type(cls, path)) == f["size"], (name, path)


def test_ctypes_roundtrip_through_bytes():
    """Bytes written through the ctypes class land where cffi's struct reads."""
    cls = layout.ctypes_struct("NET_BUFFER_LIST", "x64", "wrapper")
    obj = cls()
    obj.ChildRefCount = 3
    obj.Status = -5
    obj.NetBufferListInfo[7] = 0x1234
    raw = bytes(obj)
    nbl = ffi.cast("NET_BUFFER_LIST *", ffi.from_buffer(bytearray(raw)))
    assert (nbl.ChildRefCount, nbl.Status) == (3, -5)
    assert int(ffi.cast("uintptr_t", nbl.NetBufferListInfo[7])) == 0x1234


def _run(*args):
    return subprocess.run([sys.executable, "-m", "ndisemu", *args],
                          check=False, capture_output=True, text=True)


def test_cli_dt_text():
    out = _run("layout", "NET_BUFFER_LIST")
    assert out.returncode == 0
    assert "+0x090 NetBufferListInfo" in out.stdout
    assert ": [27] Ptr64 Void" in out.stdout


def test_cli_json_matches_api():
    out = _run("layout", "--json", "--abi", "x86", "--ndis", "wrapper")
    data = json.loads(out.stdout)
    assert data["abi"] == "x86" and data["ndis"] == "wrapper"
    assert data == json.loads(json.dumps(layout.profile("x86", "wrapper")))
    assert data["structs"]["NET_BUFFER_LIST"]["size"] == 0xC8
    assert data["enums"]["NDIS_NET_BUFFER_LIST_INFO"]["MaxNetBufferListInfo"] == 29


@pytest.mark.parametrize("args,needle", [
    (["--abi", "mips"], "x64, x86, arm64"),
    (["--ndis", "6.85"], "6.0, 6.1, 6.20"),
    (["NOT_A_STRUCT"], "NET_BUFFER_LIST"),
])
def test_cli_bad_input(args, needle):
    out = _run("layout", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_api_bad_input_is_value_error():
    with pytest.raises(ValueError, match="x64, x86, arm64"):
        layout.profile("sparc", "6.87")
    with pytest.raises(ValueError, match="has no field"):
        layout.offsetof("MDL", "Nope")


def test_field_at_names_innermost_member():
    assert layout.field_at("NET_BUFFER_LIST", 0x86) == "ChildRefCount"
    assert layout.field_at("NET_BUFFER_LIST", 0x8C) in ("Status", "NdisReserved2")
    assert layout.field_at("NET_BUFFER_LIST", 0x98) == "NetBufferListInfo"


# The legacy names (NDIS_INCLUDE_LEGACY_NAMES): the header overlays and, in
# the legacy types, both the members C sees through the tagged anonymous
# members and the C++ names.
NB_DATA_MEMBERS = ("Next", "CurrentMdl", "CurrentMdlOffset", "DataLength", "stDataLength",
                   "MdlChain", "DataOffset")
NBL_DATA_MEMBERS = ("Next", "FirstNetBuffer")
LEGACY = [
    # (struct, overlay member, its type, the legacy data struct, its members, C++ name)
    ("NET_BUFFER", "NetBufferHeader", "NET_BUFFER_HEADER", "NET_BUFFER_DATA",
     NB_DATA_MEMBERS, "NetBufferData"),
    ("NET_BUFFER_LIST", "NetBufferListHeader", "NET_BUFFER_LIST_HEADER", "NET_BUFFER_LIST_DATA",
     NBL_DATA_MEMBERS, "NetBufferListData"),
]


@pytest.mark.parametrize("abi,ndis", ALL_PROFILES)
@pytest.mark.parametrize("owner,overlay,header,data,members,cxx_name", LEGACY)
def test_legacy_names(abi, ndis, owner, overlay, header, data, members, cxx_name):
    structs = layout.profile(abi, ndis)["structs"]
    owner_fields = structs[owner]["fields"]
    header_fields = structs[header]["fields"]
    data_fields = structs[data]["fields"]
    assert owner_fields[overlay]["offset"] == 0
    assert owner_fields[overlay]["size"] == structs[header]["size"]
    assert owner_fields[overlay]["type"] == f"_{header}"
    assert header_fields[cxx_name] == {"offset": 0, "size": structs[data]["size"],
                                       "type": f"_{data}"}
    assert header_fields["Link"]["offset"] == 0
    for member in members:
        # The same member at the same place in the struct, in the header
        # union (C's anonymous NET_BUFFER_DATA) and in the data struct.
        expected = {k: data_fields[member][k] for k in ("offset", "size", "type")}
        assert {k: owner_fields[member][k] for k in expected} == expected, member
        assert {k: header_fields[member][k] for k in expected} == expected, member


@pytest.mark.parametrize("abi,ndis", ALL_PROFILES)
def test_nb_data_length_cxx_name(abi, ndis):
    fields = layout.struct("NET_BUFFER_DATA", abi, ndis)["fields"]
    size_t = 4 if abi == "x86" else 8
    assert fields["NbDataLength"] == {"offset": fields["DataLength"]["offset"], "size": size_t,
                                      "type": "_NET_BUFFER_DATA_LENGTH"}
    assert "NbDataLength" not in layout.struct("NET_BUFFER", abi, ndis)["fields"]


def test_legacy_names_match_ndis_sys_symbols():
    """x64 ndis.sys: NetBufferHeader +0x000 (size 0x30), NbDataLength +0x018."""
    assert layout.struct("NET_BUFFER", "x64", "wrapper")["fields"]["NetBufferHeader"][
        "size"] == 0x30
    assert layout.offsetof("NET_BUFFER_DATA", "NbDataLength", "x64", "wrapper") == 0x18
    assert layout.sizeof("NET_BUFFER_LIST_HEADER", "x64", "wrapper") == 0x10
