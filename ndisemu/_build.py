"""cffi build module: compiles ndisemu/include/cdefs/ and ndisemu/native/ into ndisemu._native.

Run by setuptools through ``cffi_modules``.  Nothing here states an offset:

* the runtime structs (x64, ndis.sys's wrapper view) are handed to cffi as the
  preprocessed text of cdefs/ndis.h, with the structs whose layout depends on
  alignment attributes marked partial, so cffi takes their layout from the
  compiler;
* every one of the 45 layout profiles (3 ABIs x 15 NDIS views) is compiled as
  its own translation unit from the same cdefs/ndis.h; this module only
  enumerates field *names* (by parsing the preprocessed declarations with
  pycparser) and emits offsetof/sizeof/_Alignof expressions for the compiler to
  evaluate.  Bit-field positions are found at run time by setting each
  bit-field to all ones in a zeroed struct.
"""


import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import cffi
import pycparser
from pycparser import c_ast

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "ndisemu" / "include"
CDEFS = INCLUDE / "cdefs"
NATIVE = ROOT / "ndisemu" / "native"
GENERATED = ROOT / "build" / "ndisemu_gen"

ABIS = ("x64", "x86", "arm64")
VERSIONS = ("6.0", "6.1", "6.20", "6.30", "6.40", "6.50", "6.60", "6.70",
            "6.80", "6.81", "6.82", "6.83", "6.84", "6.87", "wrapper")

# The structs `ndisemu layout` reports, in report order (docs/layout.md).
STRUCTS = (
    "NET_BUFFER_LIST", "NET_BUFFER", "MDL", "NET_BUFFER_LIST_CONTEXT",
    "SLIST_HEADER", "PHYSICAL_ADDRESS", "PVOID", "NET_BUFFER_DATA",
    "NET_BUFFER_HEADER", "NET_BUFFER_LIST_DATA", "NET_BUFFER_LIST_HEADER",
    "NET_BUFFER_SHARED_MEMORY", "NET_BUFFER_LIST_POOL_PARAMETERS",
    "NET_BUFFER_POOL_PARAMETERS", "NDIS_OBJECT_HEADER",
    "NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO",
    "NDIS_NET_BUFFER_LIST_8021Q_INFO",
    "NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO",
)
ENUMS = ("NDIS_NET_BUFFER_LIST_INFO", "MM_PAGE_PRIORITY")

# Base types and how WinDbg's dt prints them.
_DT_NAMES = {
    "UCHAR": "UChar", "BOOLEAN": "UChar", "USHORT": "Uint2B", "WORD": "Uint2B",
    "CSHORT": "Int2B", "ULONG": "Uint4B", "LONG": "Int4B", "UINT32": "Uint4B",
    "ULONGLONG": "Uint8B", "LONGLONG": "Int8B", "NDIS_STATUS": "Int4B",
    "NTSTATUS": "Int4B",
}


def profile_id(abi: str, version: str) -> str:
    return f"{abi}_{version.replace('.', '_')}"


def profile_macros(abi: str, version: str) -> list[tuple[str, str]]:
    """The macros that select one ABI and one NDIS view in cdefs/abi.h."""
    if version == "wrapper":
        number, wrapper = 687, 1      # ndis.sys is built at the newest version
    else:
        major, minor = version.split(".")
        number = int(major) * 100 + int(minor)   # 6.1 -> 601, 6.20 -> 620
        wrapper = 0
    return [(f"NDISEMU_ABI_{abi.upper()}", "1"),
            ("NDISEMU_NDIS_VERSION", str(number)),
            ("NDIS_WRAPPER", str(wrapper))]


def _cc() -> list[str]:
    return shlex.split(os.environ.get("CC", "cc"))


def preprocess(abi: str, version: str, mode: str | None = None,
               extra: tuple[str, ...] = ()) -> str:
    """cdefs/ndis.h preprocessed for one profile (mode: CDEF, PARSE or None)."""
    args = [*_cc(), "-E", "-P", "-x", "c", f"-I{CDEFS}", *extra]
    args += [f"-D{name}={value}" for name, value in profile_macros(abi, version)]
    if mode:
        args.append(f"-DNDISEMU_{mode}")
    args.append(str(CDEFS / "ndis.h"))
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def constant_names(abi: str, version: str) -> list[str]:
    """Object-like macros that cdefs/ (not abi.h) defines for this profile."""
    declared: set[str] = set()
    for header in CDEFS.glob("*.h"):
        if header.name == "abi.h":
            continue
        declared |= set(re.findall(r"^\s*#\s*define\s+([A-Za-z]\w*)(?![\w(])",
                                   header.read_text(), re.MULTILINE))
    text = preprocess(abi, version, extra=("-dM",))
    active = re.findall(r"^#define ([A-Za-z]\w*)(?![\w(])", text, re.MULTILINE)
    return sorted(n for n in set(active) & declared if not n.startswith("NDISEMU"))


# ---------------------------------------------------------------------------
# Field enumeration (names and declared types, never offsets)

_STDINT = "".join(f"typedef int {t};\n" for t in (
    "uint8_t", "int8_t", "uint16_t", "int16_t", "uint32_t", "int32_t",
    "uint64_t", "int64_t"))


@dataclass
class Field:
    path: str            # dotted member designator, e.g. "Transmit.IsIPv4"
    dt_type: str         # WinDbg-style type description
    bits: int | None     # bit-field width, None for ordinary members
    c_type: str = ""     # declared type of a bit-field (its storage unit)
    flexible: bool = False  # flexible array member: sizeof is 0


@dataclass
class StructInfo:
    name: str
    fields: list[Field] = field(default_factory=list)


class _Declarations:
    """The typedefs and tagged struct/union bodies of one preprocessed text."""

    def __init__(self, text: str, ptr_name: str):
        self.ast = pycparser.CParser().parse(_STDINT + text)
        self.ptr_name = ptr_name
        self.typedefs: dict[str, c_ast.Node] = {}
        self.tagged: dict[str, c_ast.Node] = {}
        self.enums: dict[str, list[str]] = {}
        for node in self.ast.ext:
            self._collect(node)

    def _collect(self, node: c_ast.Node) -> None:
        if isinstance(node, c_ast.Typedef):
            self.typedefs[node.name] = node.type
            self._collect_type(node.type)
        elif isinstance(node, c_ast.Decl):
            self._collect_type(node.type)

    def _collect_type(self, node: c_ast.Node) -> None:
        while isinstance(node, (c_ast.TypeDecl, c_ast.PtrDecl, c_ast.ArrayDecl)):
            node = node.type
        if isinstance(node, (c_ast.Struct, c_ast.Union)) and node.decls is not None and node.name:
            self.tagged[node.name] = node
        if isinstance(node, c_ast.Enum) and node.values is not None:
            names = [e.name for e in node.values.enumerators]
            self.enums[node.name] = names
            for typedef, target in self.typedefs.items():
                if isinstance(target, c_ast.TypeDecl) and target.type is node:
                    self.enums[typedef] = names

    def body(self, name: str) -> c_ast.Node | None:
        """The struct/union body a typedef or tag name stands for."""
        node = self.typedefs.get(name)
        while isinstance(node, c_ast.TypeDecl):
            node = node.type
            if isinstance(node, c_ast.IdentifierType):
                return self.body(node.names[-1])
        if isinstance(node, (c_ast.Struct, c_ast.Union)):
            if node.decls is None and node.name:
                return self.tagged.get(node.name)
            return node
        return None

    def describe(self, node: c_ast.Node) -> str:
        """A dt-style description of a declared type."""
        if isinstance(node, c_ast.ArrayDecl):
            # "[#]": the length is an enumerator; layout.py fills in the
            # count the compiler computed.
            dim = node.dim.value if isinstance(node.dim, c_ast.Constant) else (
                "0" if node.dim is None else "#")
            return f"[{dim}] {self.describe(node.type)}"
        if isinstance(node, c_ast.PtrDecl):
            return f"{self.ptr_name} {self._pointee(node.type)}"
        if isinstance(node, c_ast.TypeDecl):
            return self._named(node.type)
        return "?"

    def _pointee(self, node: c_ast.Node) -> str:
        if isinstance(node, c_ast.TypeDecl):
            inner = node.type
            if isinstance(inner, c_ast.IdentifierType) and inner.names == ["void"]:
                return "Void"
            return self._named(inner)
        return self.describe(node)

    def _named(self, node: c_ast.Node) -> str:
        if isinstance(node, c_ast.IdentifierType):
            name = node.names[-1]
            if name in _DT_NAMES:
                return _DT_NAMES[name]
            if name in ("PVOID", "NDIS_HANDLE"):
                return f"{self.ptr_name} Void"
            if name in ("SIZE_T", "ULONG_PTR", "PFN_NUMBER"):
                return "Uint8B" if self.ptr_name == "Ptr64" else "Uint4B"
            target = self.typedefs.get(name)
            if isinstance(target, c_ast.TypeDecl):
                inner = target.type
                if isinstance(inner, (c_ast.Struct, c_ast.Union)) and inner.name:
                    return inner.name
                if isinstance(inner, c_ast.Enum):
                    return inner.name or name
                if isinstance(inner, c_ast.IdentifierType):
                    return self._named(inner)
            return name
        if isinstance(node, (c_ast.Struct, c_ast.Union)):
            return node.name or ("<anonymous-union>" if isinstance(node, c_ast.Union)
                                 else "<anonymous-struct>")
        if isinstance(node, c_ast.Enum):
            return node.name or "Enum"
        return "?"

    def fields(self, name: str) -> list[Field]:
        """Members of `name`, anonymous members flattened, named inline
        struct/union members followed by their dotted members."""
        body = self.body(name)
        if body is None:
            return []
        out: list[Field] = []
        self._walk(body, "", out)
        return out

    def _walk(self, body: c_ast.Node, prefix: str, out: list[Field]) -> None:
        for decl in body.decls or ():
            inline = decl.type
            if isinstance(inline, c_ast.TypeDecl):
                inline = inline.type
            anonymous_body = (isinstance(decl.type, (c_ast.Struct, c_ast.Union))
                              and decl.name is None)
            if anonymous_body:
                self._walk(decl.type, prefix, out)
                continue
            bits = int(decl.bitsize.value, 0) if decl.bitsize is not None else None
            path = prefix + decl.name
            if bits is not None:
                out.append(Field(path, f"Pos ?, {bits} Bit", bits,
                                 c_type=" ".join(inline.names)))
                continue
            flexible = isinstance(decl.type, c_ast.ArrayDecl) and decl.type.dim is None
            out.append(Field(path, self.describe(decl.type), None, flexible=flexible))
            if (isinstance(inline, (c_ast.Struct, c_ast.Union))
                    and inline.decls is not None and inline.name is None):
                self._walk(inline, path + ".", out)


@dataclass
class Profile:
    abi: str
    version: str
    structs: list[StructInfo]
    enums: dict[str, list[str]]
    constants: list[str]

    @property
    def ident(self) -> str:
        return profile_id(self.abi, self.version)


def describe_profile(abi: str, version: str) -> Profile:
    decls = _Declarations(preprocess(abi, version, "PARSE"),
                          "Ptr32" if abi == "x86" else "Ptr64")
    structs = []
    for name in STRUCTS:
        if name == "PVOID":
            structs.append(StructInfo(name, []))
        else:
            structs.append(StructInfo(name, decls.fields(name)))
    enums = {e: decls.enums.get(e, []) for e in ENUMS}
    return Profile(abi, version, structs, enums, constant_names(abi, version))


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate_profile_source(profile: Profile) -> str:
    """One translation unit that evaluates one profile's layout."""
    lines = ["/* Generated by ndisemu/_build.py: do not edit. */"]
    for name, value in profile_macros(profile.abi, profile.version):
        lines.append(f"#define {name} {value}")
    lines += ['#include "ndis.h"', '#include "layout_facts.h"',
              '#include "layout_table.h"', ""]
    lines.append("static const ndisemu_layout_struct structs[] = {")
    for s in profile.structs:
        lines.append(f"    {{ {_c_string(s.name)}, sizeof({s.name}), _Alignof({s.name}) }},")
    lines.append("};")
    lines.append("static const ndisemu_layout_field fields[] = {")
    bitfields = []
    field_index = -1
    for index, s in enumerate(profile.structs):
        for f in s.fields:
            field_index += 1
            if f.bits is None:
                size = "0" if f.flexible else f"sizeof((({s.name} *)0)->{f.path})"
                lines.append(
                    f"    {{ {index}, {_c_string(f.path)}, {_c_string(f.dt_type)}, "
                    f"offsetof({s.name}, {f.path}), {size}, 0 }},")
            else:
                bitfields.append((field_index, s.name, f.path))
                lines.append(
                    f"    {{ {index}, {_c_string(f.path)}, {_c_string(f.dt_type)}, "
                    f"0, sizeof({f.c_type}), {f.bits} }},")
    lines.append("};")
    lines.append("/* Sets the bit-field that is fields[n] to all ones. */")
    lines.append("static void set_bitfield(void *p, int n)\n{")
    lines.append("    volatile ULONGLONG ones = ~(ULONGLONG)0;")
    lines.append("    switch (n) {")
    for number, sname, path in bitfields:
        lines.append(f"    case {number}: (({sname} *)p)->{path} = ones; break;")
    lines.append("    default: break;\n    }\n}")
    lines.append("static const ndisemu_layout_constant enums[] = {")
    for ename, members in profile.enums.items():
        for member in members:
            lines.append(f"    {{ {_c_string(ename)}, {_c_string(member)}, "
                         f"(long long)({member}) }},")
    lines.append("};")
    lines.append("static const ndisemu_layout_constant constants[] = {")
    for const in profile.constants:
        lines.append(f"    {{ \"\", {_c_string(const)}, (long long)({const}) }},")
    lines.append("};")
    lines.append(f"const ndisemu_layout_profile ndisemu_layout_{profile.ident} = {{")
    lines.append(f"    {_c_string(profile.abi)}, {_c_string(profile.version)},")
    lines.append("    structs, sizeof structs / sizeof structs[0],")
    lines.append("    fields, sizeof fields / sizeof fields[0], set_bitfield,")
    lines.append("    enums, sizeof enums / sizeof enums[0],")
    lines.append("    constants, sizeof constants / sizeof constants[0],")
    lines.append("};")
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate_layout_sources() -> list[str]:
    """Writes one source per profile plus the profile index; returns paths."""
    GENERATED.mkdir(parents=True, exist_ok=True)
    paths = []
    idents = []
    for abi in ABIS:
        for version in VERSIONS:
            profile = describe_profile(abi, version)
            path = GENERATED / f"layout_{profile.ident}.c"
            _write_if_changed(path, generate_profile_source(profile))
            paths.append(str(path.relative_to(ROOT)))
            idents.append(profile.ident)
    index = ["/* Generated by ndisemu/_build.py: do not edit. */",
             '#include "layout_table.h"']
    index += [f"extern const ndisemu_layout_profile ndisemu_layout_{i};" for i in idents]
    index.append("const ndisemu_layout_profile *const ndisemu_layout_profiles[] = {")
    index += [f"    &ndisemu_layout_{i}," for i in idents]
    index.append("};")
    index.append(f"const int ndisemu_layout_profile_count = {len(idents)};")
    path = GENERATED / "layout_index.c"
    _write_if_changed(path, "\n".join(index) + "\n")
    paths.append(str(path.relative_to(ROOT)))
    return paths


def struct_cdef() -> str:
    """cdef text of the runtime structs: x64, ndis.sys's wrapper view (what
    driver modules share with ndisemu._native through ffi.include)."""
    structs = preprocess("x64", "wrapper", "CDEF")
    return re.sub(r"^\s*typedef\s+(u?int\d+_t)\s+\1\s*;\s*$", "", structs, flags=re.MULTILINE)


def runtime_cdef() -> str:
    """cdef text: the x64 wrapper-view structs, then the native core's API."""
    core = [(NATIVE / "layout_table.h"), (NATIVE / "core.h")]
    api = "\n".join(_strip_preprocessor(p.read_text()) for p in core)
    return struct_cdef() + "\n" + api


def _strip_preprocessor(text: str) -> str:
    """Keeps a cdef header's declarations and integer #defines (cffi reads
    those as constants); drops guards, includes and comments."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    keep = re.compile(r"#define\s+\w+\s+-?(0x[0-9A-Fa-f]+|\d+)\s*$")
    return "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith("#") or keep.match(line.strip()))


def native_sources() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in NATIVE.glob("*.c"))


# The sanitized core (make test-sanitize).  CPython builds extensions with
# -fwrapv, which makes signed overflow defined and so hides it from UBSan.
SANITIZE_FLAGS = ["-O1", "-g", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-fno-wrapv"]


def build_ffi(sanitize: bool = False) -> cffi.FFI:
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(runtime_cdef())
    ffibuilder.set_source(
        "ndisemu._native",
        '#include "core.h"\n',
        # setuptools wants paths relative to the project; cffi's own
        # compile() (the sanitized build) runs in its tmpdir and needs them whole
        sources=[str(ROOT / s) if sanitize else s
                 for s in native_sources() + generate_layout_sources()],
        # cdefs/ first: the core's "ndis.h" is the declarations, not the
        # driver-facing header of ndisemu/include/
        include_dirs=[str(CDEFS), str(NATIVE), str(INCLUDE)],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-unused-function",
                            # calls between the core's own files need no PLT:
                            # only PyInit is exported (PyMODINIT_FUNC)
                            "-fvisibility=hidden", *(SANITIZE_FLAGS if sanitize else [])],
        extra_link_args=["-fsanitize=address,undefined"] if sanitize else [],
    )
    return ffibuilder


def build_sanitized(target: Path) -> Path:
    """A copy of the package in `target`/ndisemu with the native core built
    under ASan and UBSan, never touching the module `make test` uses.  Put
    `target` first on PYTHONPATH and run under `ndisemu sanitized`."""
    import shutil
    package = target / "ndisemu"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(ROOT / "ndisemu", package,
                    ignore=shutil.ignore_patterns("_native*", "__pycache__", "*.o"))
    built = build_ffi(sanitize=True).compile(tmpdir=str(target / "tmp"))
    shutil.copy2(built, package / Path(built).name)
    return package


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["--sanitize"] and len(sys.argv) == 3:
        print(build_sanitized(Path(sys.argv[2]).resolve()))
    else:
        build_ffi().compile(verbose=True)
elif __name__ == "__cffi__":          # setup.py's cffi_modules runs this file so
    ffibuilder = build_ffi()
# (imported as ndisemu._build, by ndisemu.driver, nothing is built)
