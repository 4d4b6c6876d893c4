"""Struct layouts of ndis.h/wdm.h for every ABI and NDIS view, as compiled.

Every number here comes from the tables the C compiler filled in when it
compiled cdefs/ndis.h once per profile (see ndisemu/_build.py); nothing is
restated by hand.  Profiles: ABIS x VERSIONS, 45 in all.

    >>> from ndisemu import layout
    >>> layout.offsetof("NET_BUFFER_LIST", "NetBufferListInfo", abi="x86")
    80
"""

from __future__ import annotations

import ctypes
import functools
import re
from typing import Any

from ndisemu._native import ffi, lib

ABIS: tuple[str, ...] = ("x64", "x86", "arm64")
VERSIONS: tuple[str, ...] = ("6.0", "6.1", "6.20", "6.30", "6.40", "6.50", "6.60", "6.70",
                             "6.80", "6.81", "6.82", "6.83", "6.84", "6.87", "wrapper")
DEFAULT_ABI = "x64"
DEFAULT_NDIS = "6.87"


class LayoutError(ValueError):
    """An unknown ABI, NDIS version, struct or field name."""


def _string(ptr: Any) -> str:
    return ffi.string(ptr).decode()


@functools.cache
def _profiles() -> dict[tuple[str, str], Any]:
    found = {}
    for index in range(lib.ndisemu_layout_profile_total()):
        profile = lib.ndisemu_layout_profile_at(index)
        found[(_string(profile.abi), _string(profile.version))] = profile
    return found


def check_profile(abi: str, ndis: str) -> None:
    """Raises LayoutError naming the valid choices for a bad ABI or version."""
    if abi not in ABIS:
        raise LayoutError(f"unknown ABI {abi!r} (choose from {', '.join(ABIS)})")
    if ndis not in VERSIONS:
        raise LayoutError(f"unknown NDIS version {ndis!r} (choose from {', '.join(VERSIONS)})")


def _dt_array(dt_type: str, size: int) -> str:
    """Fills in the length of an array whose bound is an enumerator."""
    if not dt_type.startswith("[#]"):
        return dt_type
    element = dt_type[4:]
    width = 8 if element.startswith("Ptr64") else 4 if element.startswith("Ptr32") else 1
    return f"[{size // width}] {element}"


@functools.cache
def profile(abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> dict[str, Any]:
    """The whole profile, in the shape `ndisemu layout --json` prints.

    Fields are keyed by their member designator: anonymous union members under
    their own names, named members of inline structs/unions dotted
    (``Transmit.IsIPv4``).  Bit-fields carry ``bit_offset`` (within the storage
    unit at ``offset``) and ``bit_size``.  Every field also has ``type``, the
    text WinDbg's dt prints for it.
    """
    check_profile(abi, ndis)
    native = _profiles()[(abi, ndis)]
    structs: dict[str, Any] = {}
    names = []
    for i in range(native.nstructs):
        entry = native.structs[i]
        name = _string(entry.name)
        names.append(name)
        structs[name] = {"size": entry.size, "align": entry.align, "fields": {}}
    first_bit = ffi.new("unsigned int *")
    for i in range(native.nfields):
        f = native.fields[i]
        record: dict[str, Any] = {"offset": f.offset, "size": f.size}
        dt_type = _dt_array(_string(f.dt_type), f.size)
        if f.bits:
            width = lib.ndisemu_layout_bitfield(native, i, first_bit)
            if width != f.bits:          # the compiler and the parse disagree
                raise AssertionError(f"bit-field {_string(f.path)}: {width} != {f.bits}")
            unit_bits = f.size * 8
            record["offset"] = first_bit[0] // unit_bits * f.size
            record["bit_offset"] = first_bit[0] - record["offset"] * 8
            record["bit_size"] = f.bits
            dt_type = f"Pos {record['bit_offset']}, {f.bits} Bit"
        record["type"] = dt_type
        structs[names[f.struct_index]]["fields"][_string(f.path)] = record
    enums: dict[str, dict[str, int]] = {}
    for i in range(native.nenums):
        c = native.enums[i]
        enums.setdefault(_string(c.group), {})[_string(c.name)] = c.value
    constants = {_string(native.constants[i].name): native.constants[i].value
                 for i in range(native.nconstants)}
    return {"abi": abi, "ndis": ndis, "structs": structs, "enums": enums,
            "constants": constants}


def struct_names() -> list[str]:
    return list(profile()["structs"])


def struct(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> dict[str, Any]:
    """One struct's size, alignment and fields (see profile())."""
    structs = profile(abi, ndis)["structs"]
    if name not in structs:
        raise LayoutError(f"unknown struct {name!r} (choose from {', '.join(structs)})")
    return structs[name]


def sizeof(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> int:
    return struct(name, abi, ndis)["size"]


def alignof(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> int:
    return struct(name, abi, ndis)["align"]


def offsetof(name: str, field: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> int:
    fields = struct(name, abi, ndis)["fields"]
    if field not in fields:
        raise LayoutError(f"{name} has no field {field!r}")
    return fields[field]["offset"]


def field_at(name: str, offset: int, abi: str = DEFAULT_ABI,
             ndis: str = DEFAULT_NDIS) -> str | None:
    """The innermost non-bit-field member covering byte `offset`, for error
    reports ("write at +0x84 hit ChildRefCount")."""
    best = None
    for path, f in struct(name, abi, ndis)["fields"].items():
        if "bit_size" in f or not f["offset"] <= offset < f["offset"] + max(f["size"], 1):
            continue
        if best is None or f["size"] <= best[1]:
            best = (path, f["size"])
    return best[0] if best else None


def dt(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> str:
    """WinDbg dt-style text of one struct."""
    s = struct(name, abi, ndis)
    module = "nt" if name in ("MDL", "SLIST_HEADER", "PHYSICAL_ADDRESS", "PVOID") else "ndis"
    lines = [f"{module}!_{name} ({abi}, NDIS {ndis}): size {s['size']:#x}, align {s['align']}"]
    if not s["fields"]:
        lines.append(f"   {'Ptr64' if abi != 'x86' else 'Ptr32'} Void")
    width = max((len(p.rsplit(".", 1)[-1]) for p in s["fields"]), default=0)
    for path, f in s["fields"].items():
        depth = path.count(".")
        leaf = path.rsplit(".", 1)[-1]
        lines.append(f"{'   ' * (depth + 1)}+{f['offset']:#05x} {leaf:<{width}} : {f['type']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# ctypes export

_CTYPES_SCALARS = {
    "UChar": ctypes.c_uint8, "Uint2B": ctypes.c_uint16, "Int2B": ctypes.c_int16,
    "Uint4B": ctypes.c_uint32, "Int4B": ctypes.c_int32, "Uint8B": ctypes.c_uint64,
    "Int8B": ctypes.c_int64,
}
_TAG_TO_STRUCT = {"_LARGE_INTEGER": "PHYSICAL_ADDRESS"}


def _ctype_of(dt_type: str, size: int, abi: str, ndis: str) -> Any:
    array = re.match(r"\[(\d+)\] (.*)", dt_type)
    if array:
        count = int(array.group(1))
        if count == 0:
            return ctypes.c_uint8 * 0
        return _ctype_of(array.group(2), size // count, abi, ndis) * count
    if dt_type.startswith("Ptr64"):
        return ctypes.c_uint64
    if dt_type.startswith("Ptr32"):
        return ctypes.c_uint32
    if dt_type in _CTYPES_SCALARS:
        return _CTYPES_SCALARS[dt_type]
    tag = _TAG_TO_STRUCT.get(dt_type, dt_type.lstrip("_"))
    if tag in profile(abi, ndis)["structs"]:
        return ctypes_struct(tag, abi, ndis)
    return ctypes.c_uint8 * size


def _build_ctypes(name: str, members: dict[str, dict[str, Any]], size: int,
                  abi: str, ndis: str, base: int = 0) -> type:
    """A ctypes Structure placing `members` (paths relative to this level) at
    their compiled offsets; overlapping members become anonymous Unions of
    padded Structures, so every member keeps its own name."""
    direct = {p: f for p, f in members.items() if "." not in p}
    if direct and all("bit_size" in f for f in direct.values()):
        # A bit-field group: ctypes lays out same-type bit-fields as MSVC and
        # GCC do (consecutive from bit 0 of the unit).
        fields = []
        ordered = sorted(direct.items(), key=lambda kv: (kv[1]["offset"], kv[1]["bit_offset"]))
        for path, f in ordered:
            fields.append((path, _CTYPES_SCALARS[{1: "UChar", 2: "Uint2B", 4: "Uint4B",
                                                  8: "Uint8B"}[f["size"]]], f["bit_size"]))
        return type(name, (ctypes.Structure,), {"_fields_": fields})

    def member_type(path: str, f: dict[str, Any]) -> Any:
        children = {p[len(path) + 1:]: c for p, c in members.items()
                    if p.startswith(path + ".")}
        if children:
            return _build_ctypes(f"{name}_{path}", children, f["size"], abi, ndis)
        return _ctype_of(f["type"], f["size"], abi, ndis)

    # Cluster direct members whose byte ranges overlap (unions).
    ordered = sorted(direct.items(), key=lambda kv: (kv[1]["offset"], -kv[1]["size"]))
    clusters: list[list[tuple[str, dict[str, Any]]]] = []
    end = -1
    for path, f in ordered:
        if clusters and f["offset"] < end:
            clusters[-1].append((path, f))
            end = max(end, f["offset"] + f["size"])
        else:
            clusters.append([(path, f)])
            end = f["offset"] + f["size"]

    fields: list[tuple[str, Any]] = []
    anonymous: list[str] = []
    cursor = 0
    for n, cluster in enumerate(clusters):
        start = cluster[0][1]["offset"]
        if start > cursor:
            fields.append((f"_pad{n}", ctypes.c_uint8 * (start - cursor)))
        if len(cluster) == 1:
            path, f = cluster[0]
            fields.append((path, member_type(path, f)))
            cursor = start + f["size"]
            continue
        arms = []
        stop = start
        for m, (path, f) in enumerate(cluster):
            lead = f["offset"] - start
            arm_fields = ([("_lead", ctypes.c_uint8 * lead)] if lead else [])
            arm_fields.append((path, member_type(path, f)))
            arms.append((f"_arm{m}", type(f"{name}_arm{n}_{m}", (ctypes.Structure,),
                                          {"_pack_": 1, "_fields_": arm_fields})))
            stop = max(stop, f["offset"] + f["size"])
        union = type(f"{name}_union{n}", (ctypes.Union,),
                     {"_anonymous_": [a for a, _ in arms], "_fields_": arms})
        fields.append((f"_u{n}", union))
        anonymous.append(f"_u{n}")
        cursor = stop
    if size > cursor:
        fields.append(("_tail", ctypes.c_uint8 * (size - cursor)))
    return type(name, (ctypes.Structure,),
                {"_pack_": 1, "_anonymous_": anonymous, "_fields_": fields})


@functools.cache
def ctypes_struct(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> type:
    """A ctypes.Structure with the compiled layout of `name` for one profile.

    Pointers are unsigned integers of the ABI's width (the struct describes
    another machine's memory).  Members sit at their exact offsets and
    ctypes.sizeof() equals the compiled size; ctypes cannot express
    DECLSPEC_ALIGN, so the class is byte-packed and its own alignment is 1:
    use from_buffer() on memory that is already aligned.
    """
    s = struct(name, abi, ndis)
    if not s["fields"]:     # PVOID
        return ctypes.c_uint64 if s["size"] == 8 else ctypes.c_uint32
    return _build_ctypes(name, s["fields"], s["size"], abi, ndis)
