"""`ndisemu layout check` and layout.compare(): users' own definitions (C,
WinDbg dt dumps, JSON, ctypes, dicts) against the truth.

Every input format is tried correct (exit 0) and with each kind of error
(exit 1, message checked), built as a mutation of the correct text, in the
table-driven style of the rest of the suite.
"""

import ctypes
import json
import subprocess
import sys

import pytest

from ndisemu import cli, layout, wincc


def run(capsys, *args):
    """(exit status, stdout lines, stderr) of an in-process CLI call."""
    status = cli.main(list(args))
    out = capsys.readouterr()
    return status, out.out.splitlines(), out.err


@pytest.fixture(scope="module")
def windows_cc():
    """The C cases need the Windows-targeting compiler: fail, never skip."""
    why = wincc.available()
    assert why is None, f"layout check on C cannot run here: {why}"


# ---------------------------------------------------------------------------
# C

# As a debugger extension might write it: its own base types, `unsigned
# long` for ULONG (32 bits on Windows, so no difference), DECLSPEC_ALIGN
# spelled as the WDK spells it.
C_BASE = """\
#define DECLSPEC_ALIGN(x) __declspec(align(x))
typedef unsigned char UCHAR;
typedef unsigned short USHORT;
typedef unsigned long ULONG;
typedef long LONG;
typedef unsigned __int64 ULONGLONG;
typedef unsigned int UINT32;
typedef void *PVOID;
typedef LONG NDIS_STATUS;

typedef union DECLSPEC_ALIGN(16) _SLIST_HEADER {
    struct { ULONGLONG Alignment; ULONGLONG Region; };
    struct {
        ULONGLONG Depth : 16;
        ULONGLONG Sequence : 48;
        ULONGLONG Reserved : 4;
        ULONGLONG NextEntry : 60;
    } HeaderX64;
} SLIST_HEADER;

typedef struct _NET_BUFFER NET_BUFFER;
typedef struct _NET_BUFFER_LIST_CONTEXT {
    struct _NET_BUFFER_LIST_CONTEXT *Next;
    USHORT Size;
    USHORT Offset;
    DECLSPEC_ALIGN(16) UCHAR ContextData[];
} NET_BUFFER_LIST_CONTEXT;

typedef struct _NET_BUFFER_LIST_DATA {
    struct _NET_BUFFER_LIST *Next;
    NET_BUFFER *FirstNetBuffer;
} NET_BUFFER_LIST_DATA;

typedef union _NET_BUFFER_LIST_HEADER {
    NET_BUFFER_LIST_DATA;            /* MSVC's tagged anonymous member */
    SLIST_HEADER Link;
} NET_BUFFER_LIST_HEADER;

typedef struct _NET_BUFFER_LIST {
    union {
        struct {
            struct _NET_BUFFER_LIST *Next;
            NET_BUFFER *FirstNetBuffer;
        };
        SLIST_HEADER Link;
        NET_BUFFER_LIST_HEADER NetBufferListHeader;
    };
    NET_BUFFER_LIST_CONTEXT *Context;
    struct _NET_BUFFER_LIST *ParentNetBufferList;
    PVOID NdisPoolHandle;
    DECLSPEC_ALIGN(16) PVOID NdisReserved[2];
    DECLSPEC_ALIGN(16) PVOID ProtocolReserved[4];
    DECLSPEC_ALIGN(16) PVOID MiniportReserved[2];
    PVOID Scratch;
    PVOID SourceHandle;
    ULONG NblFlags;
    LONG ChildRefCount;
    ULONG Flags;
    union {
        NDIS_STATUS Status;
        ULONG NdisReserved2;
    };
    PVOID NetBufferListInfo[27];
} NET_BUFFER_LIST, *PNET_BUFFER_LIST;

typedef struct _NDIS_NET_BUFFER_LIST_8021Q_INFO {
    union {
        struct {
            UINT32 UserPriority : 3;
            UINT32 CanonicalFormatId : 1;
            UINT32 VlanId : 12;
            UINT32 Reserved : 16;
        } TagHeader;
        PVOID Value;
    };
} NDIS_NET_BUFFER_LIST_8021Q_INFO;

struct _NOT_NDIS { int x; };
"""

P = "(x64, NDIS 6.87)"
# (name, replace this, with this, messages expected, in order)
C_ERRORS = [
    ("offset", "DECLSPEC_ALIGN(16) PVOID NdisReserved[2];", "PVOID NdisReserved[2];",
     [f"NET_BUFFER_LIST.NdisReserved: offset 0x28, truth 0x30 {P}"]),
    ("size", "ULONG NdisReserved2;", "USHORT NdisReserved2;",
     [f"NET_BUFFER_LIST.NdisReserved2: size 0x2, truth 0x4 {P}"]),
    ("bit-field", "UINT32 VlanId : 12;\n            UINT32 Reserved : 16;",
     "UINT32 VlanId : 11;\n            UINT32 Reserved : 17;",
     [f"NDIS_NET_BUFFER_LIST_8021Q_INFO.TagHeader.VlanId: bit_size 11, truth 12 {P}",
      f"NDIS_NET_BUFFER_LIST_8021Q_INFO.TagHeader.Reserved: bit_offset 15, truth 16 {P}",
      f"NDIS_NET_BUFFER_LIST_8021Q_INFO.TagHeader.Reserved: bit_size 17, truth 16 {P}"]),
    ("struct size", "PVOID NetBufferListInfo[27];", "PVOID NetBufferListInfo[25];",
     [f"NET_BUFFER_LIST: struct size 0x160, truth 0x170 {P}",
      f"NET_BUFFER_LIST.NetBufferListInfo: size 0xc8, truth 0xd8 {P}"]),
    ("struct align", "typedef union DECLSPEC_ALIGN(16) _SLIST_HEADER",
     "typedef union _SLIST_HEADER",
     [f"SLIST_HEADER: struct align 8, truth 16 {P}",
      f"NET_BUFFER_LIST_HEADER: struct align 8, truth 16 {P}"]),
    ("unknown field", "LONG ChildRefCount;", "LONG RefCount;",
     [f"NET_BUFFER_LIST.RefCount: unknown field at offset 0x84, truth has ChildRefCount "
      f"there {P}"]),
]


def _c_file(tmp_path, text, name="mine.h"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_c_correct_header(tmp_path, capsys, windows_cc):
    status, out, err = run(capsys, "layout", "check", _c_file(tmp_path, C_BASE))
    assert status == 0, out
    summary = out[-1]
    assert "0 differences in 7 structs" in summary      # PVOID too
    assert "ignored: _NOT_NDIS" in summary
    assert "x86_64-pc-windows-msvc" in summary
    # Declared: no difference; the legacy C++ name is not declared (C sees
    # NET_BUFFER_LIST_DATA's members instead).
    assert "NET_BUFFER_LIST_HEADER.NetBufferListData: not declared" in out
    assert not [line for line in out[:-1] if not line.endswith(": not declared")]


@pytest.mark.parametrize("name,old,new,messages", C_ERRORS, ids=[c[0] for c in C_ERRORS])
def test_c_errors(tmp_path, capsys, windows_cc, name, old, new, messages):
    assert old in C_BASE
    status, out, _ = run(capsys, "layout", "check", _c_file(tmp_path, C_BASE.replace(old, new)))
    assert status == 1
    differences = [line for line in out[:-1] if not line.endswith(": not declared")]
    assert differences == messages
    assert f"{len(messages)} difference" in out[-1]


def test_c_unsigned_long_is_32_bits(tmp_path, capsys, windows_cc):
    """The host compiler's long is 64 bits; Windows' is not."""
    text = C_BASE.replace("typedef unsigned long ULONG;", "typedef unsigned int ULONG;")
    status_int, out_int, _ = run(capsys, "layout", "check", _c_file(tmp_path, text))
    status_long, out_long, _ = run(capsys, "layout", "check", _c_file(tmp_path, C_BASE))
    assert status_int == status_long == 0
    assert out_int[:-1] == out_long[:-1]


def test_c_other_abis_compile_for_their_target(tmp_path, capsys, windows_cc):
    # The x64 header checked for arm64 is right but for the SLIST_HEADER
    # member's name; for x86 its hard-coded 16-byte alignments are wrong.
    path = _c_file(tmp_path, C_BASE)
    status, out, _ = run(capsys, "layout", "check", path, "--abi", "arm64")
    assert status == 1 and "aarch64-pc-windows-msvc" in out[-1]
    assert [line for line in out[:-1] if not line.endswith("not declared")] == [
        "SLIST_HEADER.HeaderX64: unknown field at offset 0x0, truth has Alignment there "
        "(arm64, NDIS 6.87)"]
    status, out, _ = run(capsys, "layout", "check", path, "--abi", "x86")
    assert status == 1 and "i686-pc-windows-msvc" in out[-1]
    assert "NET_BUFFER_LIST.NdisReserved: offset 0x20, truth 0x18 (x86, NDIS 6.87)" in out


WINDOWS_H = """\
#include <windows.h>
/* SAL from the WDK on the members: defined empty for the compile. */
typedef struct _NET_BUFFER_SHARED_MEMORY {
    _Field_size_(1) struct _NET_BUFFER_SHARED_MEMORY *NextSharedMemorySegment;
    ULONG SharedMemoryFlags;
    __drv_aliasesMem HANDLE SharedMemoryHandle;
    ULONG SharedMemoryOffset;
    ULONG SharedMemoryLength;
} NET_BUFFER_SHARED_MEMORY;

typedef struct _NDIS_OBJECT_HEADER { UCHAR Type; UCHAR Revision; USHORT Size; } NDIS_OBJECT_HEADER;

typedef struct _NET_BUFFER_LIST_POOL_PARAMETERS {
    NDIS_OBJECT_HEADER Header;
    UCHAR ProtocolId;
    BOOLEAN fAllocateNetBuffer;
    USHORT ContextSize;
    ULONG PoolTag;
    ULONG DataSize;
    ULONG Flags;
} NET_BUFFER_LIST_POOL_PARAMETERS;

_IRQL_requires_max_(DISPATCH_LEVEL) void Helper(_In_ NET_BUFFER_SHARED_MEMORY *Memory);
"""


def test_c_with_windows_h_and_sal(tmp_path, capsys, windows_cc):
    status, out, _ = run(capsys, "layout", "check", _c_file(tmp_path, WINDOWS_H, "w.c"),
                         "--abi", "x86")
    assert status == 0, out
    assert "0 differences in 3 structs" in out[-1]
    assert not any("not declared" in line for line in out[:-1])


def test_cdefs_compiled_for_windows_targets_match_the_truth(tmp_path, windows_cc):
    """The truth is compiled by the host compiler (x86 with pointers as
    32-bit integers); clang's MSVC targets, real pointers and all, agree on
    every member of every struct."""
    from pathlib import Path
    cdefs = Path(__file__).resolve().parent.parent / "ndisemu" / "include" / "cdefs" / "ndis.h"
    for abi, version, number, wrapper in [(abi, v, n, w) for abi in layout.ABIS
                                          for v, n, w in [("6.0", 600, 0), ("6.87", 687, 0),
                                                          ("wrapper", 687, 1)]]:
        header = tmp_path / f"cdefs_{abi}_{number}_{wrapper}.h"
        header.write_text(f"#define NDISEMU_ABI_{abi.upper()} 1\n"
                          f"#define NDISEMU_NDIS_VERSION {number}\n"
                          f"#define NDIS_WRAPPER {wrapper}\n#include \"{cdefs}\"\n")
        found = wincc.layouts(str(header), abi, layout.struct_names())
        declared = {layout.canonical_name(n): d for n, d in found.structs.items()}
        assert sorted(declared) == sorted(layout.struct_names())
        result = layout.check(declared, abi, version)
        assert result["differences"] == [], (abi, version)
        assert result["not_declared"] == [], (abi, version)


@pytest.mark.parametrize("text,needle", [
    ("typedef struct _MDL { PVOID Next; } MDL;\n", "unknown type name 'PVOID'"),
    ("struct _MDL { int x; \n", "expected"),
])
def test_c_compile_error_is_one_line(tmp_path, capsys, windows_cc, text, needle):
    path = _c_file(tmp_path, text, "bad.h")
    status, out, err = run(capsys, "layout", "check", path)
    assert status == 2 and out == []
    assert len(err.strip().splitlines()) == 1
    assert needle in err and path in err


def test_c_defining_no_reported_struct_exits_2(tmp_path, capsys, windows_cc):
    status, _, err = run(capsys, "layout", "check", _c_file(tmp_path, "struct A { int x; };\n"))
    assert status == 2 and "defines none of the structs" in err


# ---------------------------------------------------------------------------
# WinDbg dt dumps, both listing styles

DT_PLAIN = """\
0: kd> dt ndis!_NET_BUFFER_LIST
   +0x000 Next             : Ptr64 _NET_BUFFER_LIST
   +0x008 FirstNetBuffer   : Ptr64 _NET_BUFFER
   +0x000 Link             : _SLIST_HEADER
   +0x000 NetBufferListHeader : _NET_BUFFER_LIST_HEADER
   +0x010 Context          : Ptr64 _NET_BUFFER_LIST_CONTEXT
   +0x018 ParentNetBufferList : Ptr64 _NET_BUFFER_LIST
   +0x020 NdisPoolHandle   : Ptr64 Void
   +0x030 NdisReserved     : [2] Ptr64 Void
   +0x040 ProtocolReserved : [4] Ptr64 Void
   +0x060 MiniportReserved : [2] Ptr64 Void
   +0x070 Scratch          : Ptr64 Void
   +0x078 SourceHandle     : Ptr64 Void
   +0x080 NblFlags         : Uint4B
   +0x084 ChildRefCount    : Int4B
   +0x088 Flags            : Uint4B
   +0x08c Status           : Int4B
   +0x08c NdisReserved2    : Uint4B
   +0x090 NetBufferListInfo : [29] Ptr64 Void
0: kd> dt -r ndis!_NDIS_NET_BUFFER_LIST_8021Q_INFO
   +0x000 TagHeader        : <unnamed-tag>
      +0x000 UserPriority     : Pos 0, 3 Bits
      +0x000 CanonicalFormatId : Pos 3, 1 Bit
      +0x000 VlanId           : Pos 4, 12 Bits
      +0x000 Reserved         : Pos 16, 16 Bits
   +0x000 Value            : Ptr64 Void
"""

DT_V = """\
0: kd> dt -v ndis!_NET_BUFFER
struct _NET_BUFFER, 16 elements, 0xb0 bytes
   +0x000 Next             : Ptr64 to struct _NET_BUFFER, 16 elements, 0xb0 bytes
   +0x008 CurrentMdl       : Ptr64 to struct _MDL, 8 elements, 0x30 bytes
   +0x010 CurrentMdlOffset : Uint4B
   +0x018 DataLength       : Uint4B
   +0x018 stDataLength     : Uint8B
   +0x020 MdlChain         : Ptr64 to struct _MDL, 8 elements, 0x30 bytes
   +0x028 DataOffset       : Uint4B
   +0x000 Link             : union _SLIST_HEADER, 4 elements, 0x10 bytes
   +0x000 NetBufferHeader  : union _NET_BUFFER_HEADER, 3 elements, 0x30 bytes
   +0x030 ChecksumBias     : Uint2B
   +0x032 Reserved         : Uint2B
   +0x038 NdisPoolHandle   : Ptr64 to Void
   +0x040 NdisReserved     : [2] Ptr64 to Void
   +0x050 ProtocolReserved : [6] Ptr64 to Void
   +0x080 MiniportReserved : [4] Ptr64 to Void
   +0x0a0 DataPhysicalAddress : union _LARGE_INTEGER, 4 elements, 0x8 bytes
   +0x0a8 SharedMemoryInfo : Ptr64 to struct _NET_BUFFER_SHARED_MEMORY, 5 elements, 0x28 bytes
   +0x0a8 ScatterGatherList : Ptr64 to struct _SCATTER_GATHER_LIST, 3 elements, 0x10 bytes
0: kd> dt -v nt!_KEVENT
struct _KEVENT, 1 elements, 0x18 bytes
   +0x000 Header           : struct _DISPATCHER_HEADER, 30 elements, 0x18 bytes
"""

W = "(x64, NDIS wrapper)"
DT_CASES = [
    # (name, dump, replace, with, --ndis, messages)
    ("plain correct", DT_PLAIN, None, None, "wrapper", []),
    ("plain offset", DT_PLAIN, "+0x030 NdisReserved", "+0x028 NdisReserved", "wrapper",
     [f"NET_BUFFER_LIST.NdisReserved: offset 0x28, truth 0x30 {W}"]),
    ("plain size", DT_PLAIN, None, None, "6.87",
     ["NET_BUFFER_LIST.NetBufferListInfo: size 0xe8, truth 0xd8 (x64, NDIS 6.87)"]),
    ("plain bit-field", DT_PLAIN, "VlanId           : Pos 4", "VlanId           : Pos 5",
     "wrapper",
     [f"NDIS_NET_BUFFER_LIST_8021Q_INFO.TagHeader.VlanId: bit_offset 5, truth 4 {W}"]),
    ("plain unknown field", DT_PLAIN, "ChildRefCount    : Int4B", "RefCount         : Int4B",
     "wrapper",
     [f"NET_BUFFER_LIST.RefCount: unknown field at offset 0x84, truth has ChildRefCount "
      f"there {W}"]),
    ("-v correct", DT_V, None, None, "6.87", []),
    ("-v struct size", DT_V, "16 elements, 0xb0 bytes\n   +0x000", "16 elements, 0xa8 bytes\n"
     "   +0x000", "6.87", ["NET_BUFFER: struct size 0xa8, truth 0xb0 (x64, NDIS 6.87)"]),
    ("-v size", DT_V, "+0x018 stDataLength     : Uint8B", "+0x018 stDataLength     : Uint4B",
     "6.87", ["NET_BUFFER.stDataLength: size 0x4, truth 0x8 (x64, NDIS 6.87)"]),
    ("-v nested size", DT_V, "_NET_BUFFER_HEADER, 3 elements, 0x30", "_NET_BUFFER_HEADER, "
     "3 elements, 0x28", "6.87", ["NET_BUFFER.NetBufferHeader: size 0x28, truth 0x30 "
                                  "(x64, NDIS 6.87)"]),
]


@pytest.mark.parametrize("name,dump,old,new,ndis,messages", DT_CASES,
                         ids=[c[0] for c in DT_CASES])
def test_dt_dumps(tmp_path, capsys, name, dump, old, new, ndis, messages):
    if old is not None:
        assert old in dump
        dump = dump.replace(old, new)
    path = tmp_path / "dump.txt"
    path.write_text(dump)
    status, out, err = run(capsys, "layout", "check", str(path), "--ndis", ndis)
    assert status == (1 if messages else 0), err
    assert [line for line in out[:-1] if not line.endswith(": not declared")] == messages
    if name.startswith("-v"):
        assert "ignored: nt!_KEVENT" in out[-1]


def test_dt_dump_of_ndisemu_own_listing_names_its_profile(tmp_path, capsys):
    """`ndisemu layout` text checks clean against the profile its headers name."""
    for abi, ndis in [("x86", "6.0"), ("arm64", "wrapper"), ("x64", "6.87")]:
        path = tmp_path / f"{abi}-{ndis}.txt"
        path.write_text("\n\n".join(layout.dt(n, abi, ndis) for n in layout.struct_names()))
        status, out, _ = run(capsys, "layout", "check", str(path))
        assert status == 0, out
        assert f"against {abi}, NDIS {ndis}; 0 truth fields not declared" in out[-1]


def test_dt_member_before_any_header_exits_2(tmp_path, capsys):
    path = tmp_path / "bare.txt"
    path.write_text("   +0x000 Next : Ptr64 _NET_BUFFER\n")
    status, out, err = run(capsys, "layout", "check", str(path))
    assert status == 2 and out == []
    assert err.count("\n") == 1 and "bare.txt:1:" in err


# ---------------------------------------------------------------------------
# JSON

def _json_case(mutate):
    data = {"abi": "x86", "ndis": "6.20",
            "structs": {"NET_BUFFER": json.loads(json.dumps(layout.struct("NET_BUFFER", "x86",
                                                                          "6.20")))}}
    mutate(data["structs"]["NET_BUFFER"])
    return data


X86 = "(x86, NDIS 6.20)"
JSON_CASES = [
    ("correct", lambda s: None, []),
    ("subset", lambda s: s.update(fields={"DataOffset": {"offset": 0x14}}), []),
    ("offset", lambda s: s["fields"]["MdlChain"].update(offset=0x14),
     [f"NET_BUFFER.MdlChain: offset 0x14, truth 0x10 {X86}"]),
    ("size", lambda s: s["fields"]["NdisReserved"].update(size=4),
     [f"NET_BUFFER.NdisReserved: size 0x4, truth 0x8 {X86}"]),
    ("bit-field", lambda s: s["fields"]["DataOffset"].update(bit_offset=0, bit_size=20),
     [f"NET_BUFFER.DataOffset: bit_offset 0, truth none {X86}",
      f"NET_BUFFER.DataOffset: bit_size 20, truth none {X86}"]),
    ("struct size", lambda s: s.update(size=0x58),
     [f"NET_BUFFER: struct size 0x58, truth 0x60 {X86}"]),
    ("unknown field", lambda s: s["fields"].update(Extra={"offset": 0x1C, "size": 4}),
     [f"NET_BUFFER.Extra: unknown field at offset 0x1c, truth has NdisPoolHandle there {X86}"]),
]


@pytest.mark.parametrize("name,mutate,messages", JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json(tmp_path, capsys, name, mutate, messages):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_json_case(mutate)))
    status, out, _ = run(capsys, "layout", "check", str(path))
    assert status == (1 if messages else 0)
    assert [line for line in out[:-1] if not line.endswith(": not declared")] == messages


def test_json_profile_precedence(tmp_path, capsys):
    """The command line wins over the file's keys, which win over x64/6.87."""
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_json_case(lambda s: None)))
    assert run(capsys, "layout", "check", str(path))[0] == 0                      # x86 6.20
    status, out, _ = run(capsys, "layout", "check", str(path), "--ndis", "6.1")
    assert status == 1 and "NET_BUFFER: struct size 0x60, truth 0x58 (x86, NDIS 6.1)" in out
    status, out, _ = run(capsys, "layout", "check", str(path), "--abi", "x64")
    assert status == 1 and "(x64, NDIS 6.20)" in out[0]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"structs": {"_MDL": {"size": 0x30}}}))
    status, out, _ = run(capsys, "layout", "check", str(bare))
    assert status == 0 and "against x64, NDIS 6.87" in out[-1]


def test_json_output(tmp_path, capsys):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_json_case(lambda s: s.update(size=0x58))))
    status, out, _ = run(capsys, "layout", "check", str(path), "--json")
    result = json.loads("\n".join(out))
    assert status == 1
    assert result["profile"] == {"abi": "x86", "ndis": "6.20"}
    assert result["differences"] == [{"struct": "NET_BUFFER", "field": None,
                                      "what": "struct size", "file": 0x58, "truth": 0x60}]
    assert result["not_declared"] == []


@pytest.mark.parametrize("name,content,needle", [
    ("missing.json", None, "cannot read"),
    ("broken.json", '{"structs": {', "broken.json:1:"),
    ("wrong.json", '{"structs": {"MDL": {"fields": {"Next": "zero"}}}}',
     "structs.MDL.fields.Next must be an offset"),
    ("all.json", '{"profiles": {}}', "several profiles"),
    ("missing.h", None, "cannot read"),
    ("empty.txt", "nothing here\n", "no dt listing"),
])
def test_unreadable_input_exits_2_with_one_line(tmp_path, capsys, name, content, needle):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    status, out, err = run(capsys, "layout", "check", str(path))
    assert (status, out) == (2, [])
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_bad_profile_option_exits_2(tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text('{"structs": {}}')
    status, _, err = run(capsys, "layout", "check", str(path), "--abi", "mips")
    assert status == 2 and "x64, x86, arm64" in err


# ---------------------------------------------------------------------------
# layout.compare(): ctypes classes and dicts

@pytest.mark.parametrize("abi,ndis", [("x64", "6.87"), ("x86", "6.0"), ("arm64", "wrapper")])
def test_compare_ndisemu_own_ctypes_classes(abi, ndis):
    for name in layout.struct_names():
        assert layout.compare(layout.ctypes_struct(name, abi, ndis), name, abi, ndis) == [], name


class _Tag(ctypes.Structure):
    _fields_ = [("UserPriority", ctypes.c_uint32, 3), ("CanonicalFormatId", ctypes.c_uint32, 1),
                ("VlanId", ctypes.c_uint32, 11), ("Reserved", ctypes.c_uint32, 17)]


class _Info(ctypes.Union):
    _fields_ = [("TagHeader", _Tag), ("Value", ctypes.c_uint64)]


class _Mdl(ctypes.Structure):
    # A speakeasy-style mistake: the union member misspelled, a field short.
    _fields_ = [("Next", ctypes.c_uint64), ("Size", ctypes.c_int16), ("Flags", ctypes.c_int16),
                ("_pad", ctypes.c_uint8 * 4), ("Process", ctypes.c_uint64),
                ("MappedSystemVa", ctypes.c_uint64), ("StartVa", ctypes.c_uint64),
                ("ByteCount", ctypes.c_uint32), ("ByteOffset", ctypes.c_uint16)]


def test_compare_user_ctypes():
    found = layout.compare(_Info, "_NDIS_NET_BUFFER_LIST_8021Q_INFO")
    assert [(d["field"], d["what"], d["file"], d["truth"]) for d in found] == [
        ("TagHeader.VlanId", "bit_size", 11, 12),
        ("TagHeader.Reserved", "bit_offset", 15, 16),
        ("TagHeader.Reserved", "bit_size", 17, 16)]
    found = layout.compare(_Mdl(), "MDL")
    assert [(d["field"], d["what"]) for d in found] == [
        ("Flags", "unknown field"), ("ByteOffset", "size")]


@pytest.mark.parametrize("given,expected", [
    ({"Next": 0, "ByteCount": 0x28, "__size__": 0x30}, []),
    ({"ByteCount": {"offset": 0x28, "size": 4}, "ByteOffset": {"offset": 0x2C, "size": 2}},
     [("ByteOffset", "size", 2, 4)]),
    ({"MdlFlags": 12, "__size__": 0x28, "__align__": 4},
     [(None, "struct size", 0x28, 0x30), (None, "struct align", 4, 8),
      ("MdlFlags", "offset", 12, 10)]),
])
def test_compare_dicts(given, expected):
    found = layout.compare(given, "MDL", "x64", "6.87")
    assert [(d["field"], d["what"], d["file"], d["truth"]) for d in found] == expected


def test_compare_bad_input():
    with pytest.raises(layout.LayoutError, match="NET_BUFFER_LIST"):
        layout.compare({}, "NOT_A_STRUCT")
    with pytest.raises(TypeError):
        layout.compare(42, "MDL")
    with pytest.raises(TypeError):
        layout.compare({"Next": "zero"}, "MDL")


# ---------------------------------------------------------------------------
# layout diff

def _diff(capsys, a, b, *structs):
    status, out, err = run(capsys, "layout", "diff", a, b, *structs, "--json")
    assert status == 0, err
    changes = json.loads("\n".join(out))["changes"]
    return {(c["name"], c["change"]): (c["a"], c["b"]) for c in changes}


def _info_slots(abi, ndis):
    return layout.profile(abi, ndis)["enums"]["NDIS_NET_BUFFER_LIST_INFO"]["MaxNetBufferListInfo"]


def test_diff_x64_60_to_687(capsys):
    changes = _diff(capsys, "x64:6.0", "x64:6.87")
    assert changes[("NET_BUFFER_LIST", "size")] == (0xF0, 0x170)
    assert changes[("NET_BUFFER_LIST.NetBufferListInfo", "size")] == (11 * 8, 27 * 8)
    assert changes[("NDIS_NET_BUFFER_LIST_INFO.MaxNetBufferListInfo", "value")] == (
        _info_slots("x64", "6.0"), _info_slots("x64", "6.87"))
    assert changes[("NET_BUFFER.SharedMemoryInfo", "added")][1]["offset"] == 0xA8
    assert ("NET_BUFFER", "size") not in changes          # 0xb0 either way on x64
    assert changes[("NBL_FLAGS_PROTOCOL_RESERVED", "value")] == (0xFFF00000, 0xFFF00003)


def test_diff_x86_to_x64(capsys):
    changes = _diff(capsys, "x86:6.87", "x64:6.87")
    assert changes[("NET_BUFFER_LIST", "size")] == (0xC0, 0x170)
    assert changes[("NET_BUFFER", "size")] == (0x60, 0xB0)
    assert changes[("NET_BUFFER_LIST.NdisReserved", "offset")] == (0x18, 0x30)
    assert changes[("NET_BUFFER_LIST.SourceHandle", "offset")] == (0x3C, 0x78)
    assert changes[("NET_BUFFER_LIST.Next", "size")] == (4, 8)
    assert ("NDIS_NET_BUFFER_LIST_INFO.MaxNetBufferListInfo", "value") not in changes  # 27
    assert changes[("NDIS_NET_BUFFER_LIST_INFO.VirtualSubnetInfo", "value")] == (26, 20)


def test_diff_687_to_wrapper(capsys):
    changes = _diff(capsys, "x64:6.87", "x64:wrapper")
    assert changes[("NET_BUFFER_LIST", "size")] == (0x170, 0x180)
    assert changes[("NDIS_NET_BUFFER_LIST_INFO.MaxNetBufferListInfo", "value")] == (27, 29)
    assert changes[("NDIS_NET_BUFFER_LIST_INFO.NetBufferListInfoReserved1", "added")] == (None, 27)
    assert not [k for k in changes if k[0].startswith("NET_BUFFER.")]
    only_nb = _diff(capsys, "x86:6.1", "x86:6.20", "NET_BUFFER")
    assert only_nb[("NET_BUFFER", "size")] == (0x58, 0x60)
    assert all(name.startswith("NET_BUFFER") for name, _ in only_nb)


def test_diff_text_and_bad_profiles(capsys):
    status, out, _ = run(capsys, "layout", "diff", "x64:6.87", "x64:wrapper", "NET_BUFFER_LIST")
    assert status == 0
    # The type changed too ([27] -> [29]), but a size change says it.
    assert out == ["NET_BUFFER_LIST: size 0x170 -> 0x180",
                   "NET_BUFFER_LIST.NetBufferListInfo: size 0xd8 -> 0xe8",
                   "x64:6.87 -> x64:wrapper: 2 changes"]
    for bad, needle in [("x64", "ABI:VERSION"), ("x65:6.87", "x64, x86, arm64"),
                        ("x64:6.85", "6.0, 6.1")]:
        status, _, err = run(capsys, "layout", "diff", bad, "x64:6.87")
        assert status == 2 and needle in err and err.count("\n") == 1


# ---------------------------------------------------------------------------
# The command line around it

def _proc(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "ndisemu", *args], capture_output=True,
                          text=True, check=False, **kwargs)


def test_all_profiles_in_one_process(capsys):
    status, out, _ = run(capsys, "layout", "--abi", "all", "--ndis", "all", "--json")
    data = json.loads("\n".join(out))["profiles"]
    assert status == 0
    assert sorted(data) == sorted(layout.ABIS)
    assert all(sorted(data[abi]) == sorted(layout.VERSIONS) for abi in layout.ABIS)
    assert data["x86"]["wrapper"]["structs"]["NET_BUFFER_LIST"]["size"] == 0xC8
    status, out, _ = run(capsys, "layout", "MDL", "--abi", "all")
    assert status == 0 and sum(line.startswith("nt!_MDL (") for line in out) == 3


def test_layout_does_not_import_numpy_or_build_a_kernel():
    code = ("import sys; from ndisemu import cli; cli.main(['layout', '--abi', 'all', "
            "'--ndis', 'all', '--json']); "
            "print('numpy' in sys.modules, 'ndisemu.kernel' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stderr.split() == ["False", "False"]


def test_closed_pipe_exits_quietly():
    command = f"{sys.executable} -m ndisemu layout --abi all --ndis all --json | head -c 10"
    done = subprocess.run(["bash", "-c", f"{command}; echo \" ${{PIPESTATUS[0]}}\""],
                          capture_output=True, text=True, check=True)
    assert done.stderr == ""
    assert done.stdout.endswith(f" {cli.EXIT_PIPE}\n")


def test_no_arguments_prints_usage_and_version():
    done = _proc()
    assert done.returncode == 2 and "usage: ndisemu" in done.stderr and "layout" in done.stderr
    done = _proc("--version")
    assert done.returncode == 0 and done.stdout.startswith("ndisemu ")


@pytest.mark.parametrize("args,needles", [
    (["layout"], ["NET_BUFFER_LIST_CONTEXT", "arm64", "wrapper", "default: x64",
                  "default: 6.87", "layout check", "layout diff"]),
    (["layout", "check"], ["FILE", "dt -v", "JSON", "default: what the file says, else x64"]),
    (["layout", "diff"], ["ABI:VERSION", "x64:6.0", "NDIS_OBJECT_HEADER"]),
    (["bench"], ["deep_clone", "floor_clone", "view_read", "default: 1,4,16", "default: 9"]),
])
def test_help_lists_choices_and_defaults(capsys, args, needles):
    with pytest.raises(SystemExit) as done:
        cli.main([*args, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in needles:
        assert needle in text, needle


def test_bench_plot_needs_matplotlib_before_running(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from ndisemu import cli; "
            f"sys.exit(cli.main(['bench', '--quick', '--plot', {str(tmp_path / 'p.png')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 2
    assert "--plot needs matplotlib" in done.stderr
    assert "calibrating" not in done.stderr          # no run happened first
