"""Struct layouts of ndis.h/wdm.h for every ABI and NDIS view, as compiled,
and the checks of other people's definitions against them.

Every number here comes from the tables the C compiler filled in when it
compiled ndisemu/include/cdefs/ndis.h once per profile (see ndisemu/_build.py); nothing is
restated by hand.  Profiles: ABIS x VERSIONS, 45 in all.  docs/layout.md
describes the JSON schema, the checks and the diff.

    >>> from ndisemu import layout
    >>> layout.offsetof("NET_BUFFER_LIST", "NetBufferListInfo", abi="x86")
    80

This module imports neither numpy nor ctypes (the ctypes helpers live in
ndisemu._layout_ctypes and load on first use), so ``ndisemu layout`` starts
about as fast as Python itself.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from ndisemu._native import ffi, lib

# typing costs milliseconds at start-up; annotations are strings here anyway.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ABIS: tuple[str, ...] = ("x64", "x86", "arm64")
VERSIONS: tuple[str, ...] = ("6.0", "6.1", "6.20", "6.30", "6.40", "6.50", "6.60", "6.70",
                             "6.80", "6.81", "6.82", "6.83", "6.84", "6.87", "wrapper")
DEFAULT_ABI = "x64"
DEFAULT_NDIS = "6.87"

# The kinds of difference check() and compare() report, in the order they
# are looked for.
DIFFERENCE_KINDS = ("struct size", "struct align", "unknown field", "offset", "size",
                    "bit_offset", "bit_size")


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


def label(abi: str, ndis: str) -> str:
    """How messages name a profile: ``x64, NDIS 6.87``."""
    return f"{abi}, NDIS {ndis}"


def _dt_array(dt_type: str, size: int) -> str:
    """Fills in the length of an array whose bound is an enumerator."""
    if not dt_type.startswith("[#]"):
        return dt_type
    element = dt_type[4:]
    width = 8 if element.startswith("Ptr64") else 4 if element.startswith("Ptr32") else 1
    return f"[{size // width}] {element}"


def _bits_text(bit_offset: int, bit_size: int) -> str:
    """dt's text for a bit-field: ``Pos 4, 12 Bits`` (``1 Bit``)."""
    return f"Pos {bit_offset}, {bit_size} Bit{'s' if bit_size != 1 else ''}"


@functools.cache
def profile(abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> dict[str, Any]:
    """The whole profile, in the shape `ndisemu layout --json` prints.

    Fields are keyed by their member designator: anonymous union members under
    their own names, named members of inline structs/unions dotted
    (``Transmit.IsIPv4``).  Bit-fields carry ``bit_offset`` (within the storage
    unit at ``offset``) and ``bit_size``.  Every field also has ``type``, the
    text WinDbg's dt prints for it.  The result is cached: do not modify it.
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
            dt_type = _bits_text(record["bit_offset"], f.bits)
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


@functools.cache
def _struct_names() -> tuple[str, ...]:
    native = _profiles()[(DEFAULT_ABI, DEFAULT_NDIS)]
    return tuple(_string(native.structs[i].name) for i in range(native.nstructs))


def struct_names() -> list[str]:
    """The structs every profile reports, in report order (read from the
    compiled tables without building a profile)."""
    return list(_struct_names())


def canonical_name(name: str) -> str | None:
    """The reported struct a user's name stands for, with or without the
    leading underscore and a ``module!`` prefix (``ndis!_NET_BUFFER_LIST``
    -> ``NET_BUFFER_LIST``); None for a struct ndisemu does not report."""
    bare = name.rsplit("!", 1)[-1]
    for candidate in (bare, bare[1:] if bare.startswith("_") else None):
        if candidate in _struct_names():
            return candidate
    return None


def struct(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> dict[str, Any]:
    """One struct's size, alignment and fields (see profile())."""
    structs = profile(abi, ndis)["structs"]
    if name not in structs:
        raise LayoutError(f"unknown struct {name!r} (choose from {', '.join(structs)})")
    return structs[name]


def sizeof(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> int:
    """sizeof(name) in one profile."""
    return struct(name, abi, ndis)["size"]


def alignof(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> int:
    """The alignment of name (what _Alignof / __alignof give) in one profile."""
    return struct(name, abi, ndis)["align"]


def offsetof(name: str, field: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> int:
    """offsetof(name, field); `field` is a member designator as profile() keys
    them (``Next``, ``TagHeader.VlanId``).  For a bit-field, the offset of its
    storage unit."""
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
    """WinDbg dt-style text of one struct (as ``dt -r``: members of inline
    structs indented under theirs), after a header naming the profile."""
    s = struct(name, abi, ndis)
    module = "nt" if name in ("MDL", "SLIST_HEADER", "PHYSICAL_ADDRESS", "PVOID") else "ndis"
    lines = [f"{module}!_{name} ({label(abi, ndis)}): size {s['size']:#x}, align {s['align']}"]
    if not s["fields"]:
        lines.append(f"   {'Ptr64' if abi != 'x86' else 'Ptr32'} Void")
    width = max((len(p.rsplit(".", 1)[-1]) for p in s["fields"]), default=0)
    for path, f in s["fields"].items():
        depth = path.count(".")
        leaf = path.rsplit(".", 1)[-1]
        lines.append(f"{'   ' * (depth + 1)}+{f['offset']:#05x} {leaf:<{width}} : {f['type']}")
    return "\n".join(lines)


def ctypes_struct(name: str, abi: str = DEFAULT_ABI, ndis: str = DEFAULT_NDIS) -> type:
    """A ctypes.Structure with the compiled layout of `name` for one profile.

    Pointers are unsigned integers of the ABI's width (the struct describes
    another machine's memory).  Members sit at their exact offsets and
    ctypes.sizeof() equals the compiled size; ctypes cannot express
    DECLSPEC_ALIGN, so the class is byte-packed and its own alignment is 1:
    use from_buffer() on memory that is already aligned.  Cached per profile.
    """
    from ndisemu import _layout_ctypes
    return _layout_ctypes.build(name, abi, ndis)


# ---------------------------------------------------------------------------
# Checking a user's definitions

def _ancestors(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _normalized(field: Mapping[str, Any]) -> dict[str, Any]:
    """A declared bit-field with its offset at the start of its storage unit
    and bit_offset inside it, as profile() reports bit-fields."""
    out = dict(field)
    size = out.get("size")
    if out.get("bit_offset") is not None and size:
        first = out["offset"] * 8 + out["bit_offset"]
        out["offset"] = first // (size * 8) * size
        out["bit_offset"] = first - out["offset"] * 8
    return out


def _difference(struct_name: str, field: str | None, what: str, file: Any,
                truth: Any) -> dict[str, Any]:
    return {"struct": struct_name, "field": field, "what": what, "file": file, "truth": truth}


def _check_struct(name: str, declared: Mapping[str, Any], truth: Mapping[str, Any]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    differences = []
    for key, what in (("size", "struct size"), ("align", "struct align")):
        if declared.get(key) is not None and declared[key] != truth[key]:
            differences.append(_difference(name, None, what, declared[key], truth[key]))
    truth_fields = truth["fields"]
    expanded = {a for path in truth_fields for a in _ancestors(path)}
    declared_fields = declared.get("fields", {})
    for path, raw in declared_fields.items():
        # Members of a member the truth does not look inside (a typedef'd
        # struct such as SLIST_HEADER Link) are the nested type's business.
        if any(a not in expanded for a in _ancestors(path)):
            continue
        field = _normalized(raw)
        if path not in truth_fields:
            differences.append(_difference(name, path, "unknown field", field["offset"], None))
            continue
        t = truth_fields[path]
        if field["offset"] != t["offset"]:
            differences.append(_difference(name, path, "offset", field["offset"], t["offset"]))
        if field.get("size") is not None and field["size"] != t["size"]:
            differences.append(_difference(name, path, "size", field["size"], t["size"]))
        if "bit_size" in t or field.get("bit_size") is not None:
            for key in ("bit_offset", "bit_size"):
                if field.get(key) != t.get(key):
                    differences.append(_difference(name, path, key, field.get(key), t.get(key)))
    not_declared = [{"struct": name, "field": path} for path in truth_fields
                    if path not in declared_fields]
    return differences, not_declared


def check(declared: Mapping[str, Mapping[str, Any]], abi: str = DEFAULT_ABI,
          ndis: str = DEFAULT_NDIS) -> dict[str, Any]:
    """Checks declared structs against one profile.

    `declared` maps a reported struct name to ``{"size": int | None,
    "align": int | None, "fields": {path: {"offset": int, "size": int |
    None, "bit_offset"?: int, "bit_size"?: int}}}`` (what the `layout check`
    readers produce; None or a missing key is not compared).  Returns
    ``{"profile": {"abi", "ndis"}, "differences": [...], "not_declared":
    [...]}``: each difference a dict with ``struct``, ``field`` (None for the
    struct itself), ``what`` (one of DIFFERENCE_KINDS), ``file`` (the declared
    value) and ``truth``; each not-declared entry ``{"struct", "field"}``, a
    truth member the declaration lacks (not a difference).
    """
    check_profile(abi, ndis)
    differences: list[dict[str, Any]] = []
    not_declared: list[dict[str, Any]] = []
    for name, decl in declared.items():
        found, missing = _check_struct(name, decl, struct(name, abi, ndis))
        differences += found
        not_declared += missing
    return {"profile": {"abi": abi, "ndis": ndis}, "differences": differences,
            "not_declared": not_declared}


def _declared_from_dict(obj: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for path, value in obj.items():
        if path in ("__size__", "__align__"):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            fields[path] = {"offset": value}
        elif isinstance(value, Mapping) and isinstance(value.get("offset"), int):
            fields[path] = {k: value[k] for k in ("offset", "size", "bit_offset", "bit_size")
                            if value.get(k) is not None}
        else:
            raise TypeError(f"field {path!r}: give an offset or {{'offset': o, 'size': s}}, "
                            f"not {value!r}")
    return {"size": obj.get("__size__"), "align": obj.get("__align__"), "fields": fields}


def compare(obj: Any, struct: str, abi: str = DEFAULT_ABI,
            ndis: str = DEFAULT_NDIS) -> list[dict[str, Any]]:
    """The differences between a user's definition of `struct` and the truth.

    `obj` is a ctypes Structure/Union class (or instance): anonymous fields
    flattened, fields named with a leading underscore taken as padding, its
    alignment not compared (ctypes cannot express DECLSPEC_ALIGN); or a dict
    ``{field: offset}`` / ``{field: {"offset": o, "size": s, "bit_offset"?,
    "bit_size"?}}`` with optional ``"__size__"`` and ``"__align__"`` keys.
    Returns the ``differences`` list of check().
    """
    name = canonical_name(struct)
    if name is None:
        raise LayoutError(f"unknown struct {struct!r} (choose from "
                          f"{', '.join(_struct_names())})")
    if isinstance(obj, Mapping):
        declared = _declared_from_dict(obj)
    else:
        from ndisemu import _layout_ctypes
        declared = _layout_ctypes.declared(obj)
    return check({name: declared}, abi, ndis)["differences"]


def describe(difference: Mapping[str, Any], abi: str, ndis: str) -> str:
    """One line for a difference: ``NET_BUFFER_LIST.NdisReserved: offset 0x28,
    truth 0x30 (x64, NDIS 6.87)``.  Byte offsets and sizes in hex, bit
    positions and widths in decimal, a missing value as ``none``."""
    where = difference["struct"] + (f".{difference['field']}" if difference["field"] else "")
    what, file, truth = difference["what"], difference["file"], difference["truth"]
    if what == "unknown field":
        holder = field_at(difference["struct"], file, abi, ndis)
        there = f", truth has {holder} there" if holder else ", truth has no member there"
        return f"{where}: unknown field at offset {file:#x}{there} ({label(abi, ndis)})"

    def show(value: Any) -> str:
        if value is None:
            return "none"
        return str(value) if what.startswith("bit_") or what == "struct align" else f"{value:#x}"

    return f"{where}: {what} {show(file)}, truth {show(truth)} ({label(abi, ndis)})"


# ---------------------------------------------------------------------------
# Diff between two profiles

def parse_profile(text: str) -> tuple[str, str]:
    """``x64:6.87`` -> ("x64", "6.87"), checked."""
    abi, sep, ndis = text.partition(":")
    if not sep:
        raise LayoutError(f"{text!r}: give a profile as ABI:VERSION, e.g. x64:6.87")
    check_profile(abi, ndis)
    return abi, ndis


def _change(kind: str, name: str, change: str, a: Any, b: Any) -> dict[str, Any]:
    return {"kind": kind, "name": name, "change": change, "a": a, "b": b}


def _diff_struct(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in ("size", "align"):
        if a[key] != b[key]:
            out.append(_change("struct", name, key, a[key], b[key]))
    fa, fb = a["fields"], b["fields"]
    for path in [*fa, *(p for p in fb if p not in fa)]:
        full = f"{name}.{path}"
        if path not in fb:
            out.append(_change("field", full, "removed", fa[path], None))
        elif path not in fa:
            out.append(_change("field", full, "added", None, fb[path]))
        else:
            moved = [k for k in ("offset", "size", "bit_offset", "bit_size")
                     if fa[path].get(k) != fb[path].get(k)]
            for key in moved:
                out.append(_change("field", full, key, fa[path].get(key), fb[path].get(key)))
            if not moved and fa[path]["type"] != fb[path]["type"]:
                out.append(_change("field", full, "type", fa[path]["type"], fb[path]["type"]))
    return out


def _diff_values(kind: str, a: Mapping[str, int], b: Mapping[str, int],
                 prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for name in [*a, *(n for n in b if n not in a)]:
        if name not in b:
            out.append(_change(kind, prefix + name, "removed", a[name], None))
        elif name not in a:
            out.append(_change(kind, prefix + name, "added", None, b[name]))
        elif a[name] != b[name]:
            out.append(_change(kind, prefix + name, "value", a[name], b[name]))
    return out


def diff(a: tuple[str, str], b: tuple[str, str],
         structs: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """What changes from profile `a` to profile `b` (each ``(abi, ndis)``).

    Each change is ``{"kind": "struct" | "field" | "enum" | "constant",
    "name", "change", "a", "b"}``: a struct's ``size``/``align``; a field
    ``added``/``removed`` (a, b: its record) or its ``offset``, ``size``,
    ``bit_offset``, ``bit_size`` (or, when none of these moved, its dt
    ``type``); an enumerator or constant ``added``, ``removed`` or changed in
    ``value``.  With `structs`, only those structs, and no enums or constants.
    """
    pa, pb = profile(*a), profile(*b)
    names = list(structs) if structs else list(pa["structs"])
    for name in names:
        struct(name, *a)
    out = []
    for name in names:
        out += _diff_struct(name, pa["structs"][name], pb["structs"][name])
    if not structs:
        for group in [*pa["enums"], *(g for g in pb["enums"] if g not in pa["enums"])]:
            out += _diff_values("enum", pa["enums"].get(group, {}), pb["enums"].get(group, {}),
                                f"{group}.")
        out += _diff_values("constant", pa["constants"], pb["constants"])
    return out


def describe_change(change: Mapping[str, Any]) -> str:
    """One line for a diff() change: ``NET_BUFFER_LIST: size 0xf0 -> 0x170``."""
    kind, name, what, a, b = (change[k] for k in ("kind", "name", "change", "a", "b"))

    def show(value: Any, key: str) -> str:
        if isinstance(value, dict):         # a field's record (a bit-field's type says Pos)
            return f"offset {value['offset']:#x}, size {value['size']:#x}: {value['type']}"
        if key in ("bit_offset", "bit_size", "align") or kind == "enum":
            return str(value)
        return value if isinstance(value, str) else f"{value:#x}"

    prefix = f"{kind} " if kind in ("enum", "constant") else ""
    if what == "added":
        return f"{prefix}{name}: added ({show(b, what)})"
    if what == "removed":
        return f"{prefix}{name}: removed (was {show(a, what)})"
    label_ = "" if what == "value" else f"{what} "
    return f"{prefix}{name}: {label_}{show(a, what)} -> {show(b, what)}"
