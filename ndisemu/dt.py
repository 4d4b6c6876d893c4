"""`k.dt()`: WinDbg `dt` listings of a struct, with the values an object in
the arena holds.

The listing is the one `ndisemu layout` prints for the Kernel's NDIS version
(the driver's view of the memory, which holds ndis.sys's), each line ending
in the value as WinDbg shows it: pointers as display addresses followed by
the type pointed to (``(null)`` for NULL), unsigned integers in hex
(``0x1c``), signed ones in decimal with WinDbg's ``0n`` prefix, bit-fields
in binary with its ``0y`` prefix, arrays by their type.  Members of a named
struct type that no other member overlaps (a pool parameters' Header, an
NB's DataPhysicalAddress) are listed under it, as ``dt -r1`` does; the
legacy headers that alias the members already listed are not.

Reading never follows a pointer: only the object's own bytes are read, and
only when they lie in the arena.  An object that is not live is listed all
the same (its bytes are what memory holds: 0xDD after a free under the
verifier), with a note saying what it is.
"""

from __future__ import annotations

from typing import Any

from ndisemu import layout, ndiskd, trace
from ndisemu._native import ffi, lib

# The struct a pointer's object is listed as: by its cdata type, and for an
# untyped pointer (a pool handle) by the kind of block there.
_STRUCT_OF_KIND = {
    lib.NDISEMU_KIND_NBL: "NET_BUFFER_LIST",
    lib.NDISEMU_KIND_NB: "NET_BUFFER",
    lib.NDISEMU_KIND_MDL: "MDL",
    lib.NDISEMU_KIND_CONTEXT: "NET_BUFFER_LIST_CONTEXT",
    lib.NDISEMU_KIND_NBL_POOL: "NET_BUFFER_LIST_POOL_PARAMETERS",
    lib.NDISEMU_KIND_NB_POOL: "NET_BUFFER_POOL_PARAMETERS",
}
# Named struct types whose layout ndisemu reports under another name.
_STRUCT_OF_TYPE = {"_LARGE_INTEGER": "PHYSICAL_ADDRESS"}
_NT_STRUCTS = ("MDL", "SLIST_HEADER", "PHYSICAL_ADDRESS", "PVOID")


def _module(name: str) -> str:
    return "nt" if name in _NT_STRUCTS else "ndis"


def _struct_of(k: Any, ptr: Any) -> str | None:
    """The struct name `ptr` is listed as: its cdata type's, or for `void *`
    the kind of the block there (a pool handle lists its parameters)."""
    ctype = ffi.typeof(ptr)
    if ctype.kind == "pointer" and ctype.item.kind == "struct":
        name = ctype.item.cname.replace("struct _", "").replace("struct ", "")
        if layout.canonical_name(name):
            return layout.canonical_name(name)
    return _STRUCT_OF_KIND.get(abs(lib.ndisemu_object_kind(k._k, ptr)))


def _value(k: Any, raw: bytes, field: dict[str, Any]) -> str:
    dt_type = field["type"]
    if "bit_size" in field:
        word = int.from_bytes(raw[field["offset"]:field["offset"] + field["size"]], "little")
        bits = field["bit_size"]
        return f"0y{word >> field['bit_offset'] & ((1 << bits) - 1):0{bits}b}"
    chunk = raw[field["offset"]:field["offset"] + field["size"]]
    if dt_type.startswith("["):
        return dt_type
    if dt_type.startswith(("Ptr64", "Ptr32")):
        value = int.from_bytes(chunk, "little")
        if not value:
            return "(null)"
        pointee = dt_type.split(" ", 1)[1]
        shown = f"{k.display(ffi.cast('void *', value)):#x}"
        return shown if pointee == "Void" else f"{shown} {pointee}"
    if dt_type.startswith("Int"):
        return f"0n{int.from_bytes(chunk, 'little', signed=True)}"
    if dt_type.startswith(("Uint", "UChar")):
        return f"{int.from_bytes(chunk, 'little'):#x}"
    return dt_type


def _overlaps(path: str, field: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Another top-level member shares bytes with this one (a union alias)."""
    start, end = field["offset"], field["offset"] + field["size"]
    return any(other != path and "." not in other and
               f["offset"] < end and start < f["offset"] + f["size"]
               for other, f in fields.items())


def _lines(k: Any, name: str, raw: bytes, base: int, depth: int) -> list[str]:
    fields = layout.struct(name, "x64", k.ndis_version)["fields"]
    width = max((len(p.rsplit(".", 1)[-1]) for p in fields), default=0)
    out = []
    for path, f in fields.items():
        level = depth + path.count(".")
        leaf = path.rsplit(".", 1)[-1]
        at = dict(f, offset=f["offset"] + base)
        out.append(f"{'   ' * (level + 1)}+{f['offset']:#05x} {leaf:<{width}} : "
                   f"{_value(k, raw, at)}")
        nested = _STRUCT_OF_TYPE.get(f["type"], f["type"].lstrip("_"))
        if ("." not in path and f["type"].startswith("_") and layout.canonical_name(nested)
                and not _overlaps(path, f, fields)):
            out += _lines(k, layout.canonical_name(nested), raw, at["offset"], level + 1)
    return out


def dt(k: Any, target: Any) -> str:
    """The listing of a struct name, or of the object a pointer points at
    with its values (module docstring)."""
    if isinstance(target, str):
        name = layout.canonical_name(target)
        if name is None:
            raise ValueError(f"unknown struct {target!r} (choose from "
                             f"{', '.join(layout.struct_names())})")
        return layout.dt(name, "x64", k.ndis_version)
    if target == ffi.NULL:
        raise ValueError("dt() of a NULL pointer")
    name = _struct_of(k, target)
    shown = trace.address(k.display(target))
    if name is None:
        return f"{shown}: no struct to list it as (not an NDIS object or pool)"
    s = layout.struct(name, "x64", k.ndis_version)
    head = f"{_module(name)}!_{name} {shown} ({layout.label('x64', k.ndis_version)})"
    offset = int(ffi.cast("uintptr_t", target)) - k._base
    if not k.owns(target) or offset + s["size"] > k.arena_size:
        return f"{head}: cannot be read: not in the arena"
    kind = next((kd for kd, sn in _STRUCT_OF_KIND.items() if sn == name), None)
    if kind is not None:
        wrong = ndiskd._problem(k, target, kind)
        if wrong:
            head += f": {wrong}; the bytes memory holds"
    raw = ffi.buffer(ffi.cast("uint8_t *", target), s["size"])[:]
    return "\n".join([head] + _lines(k, name, raw, 0, 0))

