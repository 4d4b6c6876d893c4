"""ctypes and ndisemu layouts: layout.ctypes_struct() builds classes from a
profile, layout.compare() reads a user's ctypes classes.  Kept out of
ndisemu.layout so that importing it (and the ``ndisemu layout`` command)
does not import ctypes.
"""

from __future__ import annotations

import ctypes
import functools
import re
from typing import Any

from ndisemu import layout

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
    if tag in layout.profile(abi, ndis)["structs"]:
        return build(tag, abi, ndis)
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
def build(name: str, abi: str, ndis: str) -> type:
    """layout.ctypes_struct(), cached per profile."""
    s = layout.struct(name, abi, ndis)
    if not s["fields"]:     # PVOID
        return ctypes.c_uint64 if s["size"] == 8 else ctypes.c_uint32
    return _build_ctypes(name, s["fields"], s["size"], abi, ndis)


# ---------------------------------------------------------------------------
# Reading a user's ctypes class (layout.compare)

def _is_record(ctype: Any) -> bool:
    return isinstance(ctype, type) and issubclass(ctype, (ctypes.Structure, ctypes.Union))


def _bits(descriptor: Any) -> tuple[int, int] | None:
    """(bit offset, bit width) of a bit-field descriptor, None otherwise.
    Python 3.12+ names them; before, ``size`` packs width << 16 | offset."""
    width = getattr(descriptor, "bit_size", None)
    if width is not None:
        is_bitfield = getattr(descriptor, "is_bitfield", width != descriptor.size * 8)
        return (descriptor.bit_offset, width) if is_bitfield else None
    if descriptor.size > 0xFFFF:
        return descriptor.size & 0xFFFF, descriptor.size >> 16
    return None


def declared(cls: Any) -> dict[str, Any]:
    """A ctypes Structure/Union class (or instance) as a declared struct
    (see layout.check): members of ``_anonymous_`` fields under their own
    names, members of other record-typed fields dotted, and fields whose name
    begins with an underscore (padding) left out."""
    if not isinstance(cls, type):
        cls = type(cls)
    if not (isinstance(cls, type) and issubclass(cls, ctypes._SimpleCData | ctypes.Structure
                                                 | ctypes.Union | ctypes.Array)):
        raise TypeError(f"compare() takes a ctypes type (a Structure or Union class) or a "
                        f"dict, not {cls!r}")
    if not _is_record(cls):      # PVOID: a scalar, only its size to compare
        return {"size": ctypes.sizeof(cls), "align": None, "fields": {}}
    fields: dict[str, dict[str, Any]] = {}
    _walk(cls, 0, "", fields)
    # ctypes cannot express DECLSPEC_ALIGN (ndisemu's own classes are packed),
    # so a ctypes class claims no alignment.
    return {"size": ctypes.sizeof(cls), "align": None, "fields": fields}


def _walk(cls: Any, base: int, prefix: str, out: dict[str, dict[str, Any]]) -> None:
    anonymous = set(getattr(cls, "_anonymous_", ()))
    for entry in cls._fields_:
        name, ctype = entry[0], entry[1]
        descriptor = getattr(cls, name)
        offset = base + descriptor.offset
        if name in anonymous:
            _walk(ctype, offset, prefix, out)
            continue
        if name.startswith("_"):
            continue
        record: dict[str, Any] = {"offset": offset, "size": ctypes.sizeof(ctype)}
        bits = _bits(descriptor)
        if bits is not None:
            record["bit_offset"], record["bit_size"] = bits
        out[prefix + name] = record
        if _is_record(ctype):
            _walk(ctype, offset, f"{prefix}{name}.", out)
