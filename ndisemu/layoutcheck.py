"""Reading a user's struct definitions for ``ndisemu layout check``.

Three kinds of file, each turned into the declared-struct dicts that
layout.check() compares with the truth:

- C headers and sources (``.h``, ``.c``): compiled by a Windows-targeting
  compiler (ndisemu.wincc), so the layout is the one MSVC gives;
- WinDbg ``dt`` listings (any other suffix, usually ``.txt``), plain ``dt``
  and ``dt -v``, one or more pasted as WinDbg prints them;
- JSON in the ``ndisemu layout --json`` schema (``.json``, or any file whose
  first character is ``{``), any subset of structs and fields.

Struct names match the reported ones with or without the leading
underscore and a ``module!`` prefix; structs ndisemu does not report are
listed as ignored.  A file that cannot be read or understood raises
InputError, whose message is one line saying where.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ndisemu import layout

# typing and dataclasses (which imports inspect) cost milliseconds at start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

C_SUFFIXES = (".h", ".c")


class InputError(Exception):
    """The file cannot be read or understood (``layout check`` exits 2)."""


class Declared:
    """What a file declares: structs by reported name (see layout.check),
    the profile the file names for itself (JSON keys, an ``ndisemu layout``
    listing's header), the names it declares that ndisemu does not report,
    and a note on how the layout was obtained."""

    def __init__(self, note: str = ""):
        self.structs: dict[str, dict[str, Any]] = {}
        self.abi: str | None = None
        self.ndis: str | None = None
        self.ignored: list[str] = []
        self.note = note


def kind_of(path: str, text: str | None = None) -> str:
    """``c``, ``json`` or ``dt``: by suffix, or JSON when the text starts
    with ``{``."""
    suffix = Path(path).suffix.lower()
    if suffix in C_SUFFIXES:
        return "c"
    if suffix == ".json" or (text is not None and text.lstrip().startswith("{")):
        return "json"
    return "dt"


def read_text(path: str) -> str:
    """The file's text; InputError (one line) when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None


def _add(out: Declared, name: str, decl: dict[str, Any]) -> None:
    canonical = layout.canonical_name(name)
    if canonical is None:
        if name not in out.ignored:
            out.ignored.append(name)
        return
    if canonical in out.structs:        # a second listing: fill in what it adds
        known = out.structs[canonical]
        known["fields"].update(decl["fields"])
        for key in ("size", "align"):
            if known.get(key) is None:
                known[key] = decl.get(key)
    else:
        out.structs[canonical] = decl


# ---------------------------------------------------------------------------
# JSON

def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{where} must be a non-negative integer, not {json.dumps(value)}")
    return value


def read_json(path: str, text: str) -> Declared:
    """One profile in the ``layout --json`` schema; its own ``abi`` and
    ``ndis`` keys, if present, name the profile to check against."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}:{error.colno}: not JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with a \"structs\" key")
    if "profiles" in data:
        raise InputError(f"{path}: holds several profiles (--abi/--ndis all); check one "
                         "profile's object at a time")
    if not isinstance(data.get("structs"), dict):
        raise InputError(f"{path}: expected a JSON object with a \"structs\" key")
    out = Declared()
    for key in ("abi", "ndis"):
        value = data.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise InputError(f"{path}: \"{key}\" must be a string")
            setattr(out, key, value)
    for name, body in data["structs"].items():
        where = f"{path}: structs.{name}"
        if not isinstance(body, dict):
            raise InputError(f"{where} must be an object")
        fields_in = body.get("fields", {})
        if not isinstance(fields_in, dict):
            raise InputError(f"{where}.fields must be an object")
        fields = {}
        for path_, given in fields_in.items():
            spot = f"{where}.fields.{path_}"
            value = {"offset": given} if isinstance(given, int) and not isinstance(
                given, bool) else given
            if not isinstance(value, dict) or "offset" not in value:
                raise InputError(f"{spot} must be an offset or an object with \"offset\"")
            fields[path_] = {k: _int(value[k], f"{spot}.{k}")
                             for k in ("offset", "size", "bit_offset", "bit_size")
                             if value.get(k) is not None}
        decl = {"size": None, "align": None, "fields": fields}
        for key in ("size", "align"):
            if body.get(key) is not None:
                decl[key] = _int(body[key], f"{where}.{key}")
        _add(out, name, decl)
    return out


# ---------------------------------------------------------------------------
# WinDbg dt listings

_DT_COMMAND = re.compile(r"^\s*(?:.*?>\s*)?dt\s+(?P<args>.+?)\s*$")   # "0: kd> dt ..."
_DT_V_HEADER = re.compile(r"^\s*(?:struct|union|class)\s+(?P<name>\S+),\s+\d+\s+elements?,"
                          r"\s+(?P<size>0x[0-9a-fA-F]+|\d+)\s+bytes?\s*$")
_OWN_HEADER = re.compile(r"^(?:\w+!)?(?P<name>\S+)\s+\((?P<abi>[\w]+),\s+NDIS\s+(?P<ndis>[\w.]+)\)"
                         r":\s+size\s+(?P<size>0x[0-9a-fA-F]+),\s+align\s+(?P<align>\d+)\s*$")
_MEMBER = re.compile(r"^(?P<indent>\s*)\+0x(?P<offset>[0-9a-fA-F]+)\s+(?P<name>[A-Za-z_]\w*)"
                     r"\s*:\s*(?P<type>.*?)\s*$")
_BITS = re.compile(r"^(?:Bitfield\s+)?Pos\s+(\d+),\s*(\d+)\s+Bits?\b")
_ARRAY = re.compile(r"^\[(\d+)\]\s+(.*)$")
_SIZED = re.compile(r",\s*(0x[0-9a-fA-F]+|\d+)\s+bytes?\s*$")
# What dt prints for base types, and their sizes on every Windows ABI.
_DT_SCALARS = {"UChar": 1, "Char": 1, "Uint2B": 2, "Int2B": 2, "Wchar": 2, "Uint4B": 4,
               "Int4B": 4, "Float": 4, "Uint8B": 8, "Int8B": 8, "Double": 8}


def _dt_size(text: str) -> int | None:
    """Bytes of a dt type text; None when dt does not say (a struct named
    without ``dt -v``'s ``, N bytes``)."""
    array = _ARRAY.match(text)
    if array:
        element = _dt_size(array.group(2))
        return None if element is None else int(array.group(1)) * element
    if text.startswith("Ptr64"):
        return 8
    if text.startswith("Ptr32"):
        return 4
    if text in _DT_SCALARS:
        return _DT_SCALARS[text]
    if text.startswith("Enum "):
        return 4
    sized = _SIZED.search(text)
    return int(sized.group(1), 0) if sized else None


def _dt_type_name(args: str) -> str | None:
    """The type a ``dt`` command lists: the token with ``module!``, else the
    first that is neither an option nor an address."""
    tokens = args.split()
    for token in tokens:
        if "!" in token:
            return token
    for token in tokens:
        if not token.startswith("-") and not re.fullmatch(r"(0x)?[0-9a-fA-F`]+", token):
            return token
    return None


class _Listing:
    def __init__(self, name: str, line: int):
        self.name = name
        self.line = line
        self.size: int | None = None
        self.align: int | None = None
        self.fields: dict[str, dict[str, Any]] = {}
        self.base: int | None = None           # indentation of the top-level members
        self.stack: list[tuple[int, str]] = []  # (depth, dotted name) of open parents


def read_dt(path: str, text: str) -> Declared:
    """WinDbg ``dt TYPE`` / ``dt -v TYPE`` listings (also ``dt -r``, whose
    nested members are indented 3 columns per level and named dotted), and
    ``ndisemu layout``'s own text, whose header names the profile."""
    out = Declared()
    listing: _Listing | None = None
    listings: list[_Listing] = []

    def start(name: str, number: int) -> _Listing:
        new = _Listing(name, number)
        listings.append(new)
        return new

    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        member = _MEMBER.match(line)
        if member:
            if listing is None:
                raise InputError(f"{path}:{number}: a dt member line before any `dt TYPE` "
                                 "command or struct header names its type")
            _dt_member(listing, member, path, number)
            continue
        command = _DT_COMMAND.match(line)
        if command:
            name = _dt_type_name(command.group("args"))
            if name is None:
                raise InputError(f"{path}:{number}: cannot tell which type `dt "
                                 f"{command.group('args')}` lists")
            listing = start(name, number)
            continue
        header = _DT_V_HEADER.match(line)
        if header:
            # dt -v prints this right after the command; same struct.
            if listing is None or listing.fields or listing.size is not None:
                listing = start(header.group("name"), number)
            listing.size = int(header.group("size"), 0)
            continue
        own = _OWN_HEADER.match(line)
        if own:
            listing = start(own.group("name"), number)
            listing.size = int(own.group("size"), 0)
            listing.align = int(own.group("align"))
            if out.abi is None:
                out.abi, out.ndis = own.group("abi"), own.group("ndis")
            continue
        # Anything else (WinDbg's prompt chatter, a PVOID listing's body)
        # ends nothing: members keep belonging to the last header.
    if not listings:
        raise InputError(f"{path}: no dt listing found (expected `dt TYPE` lines, "
                         "`struct NAME, N elements, 0xSIZE bytes` headers or +0xOFFSET members)")
    for item in listings:
        _add(out, item.name, {"size": item.size, "align": item.align, "fields": item.fields})
    return out


def _dt_member(listing: _Listing, match: re.Match[str], path: str, number: int) -> None:
    indent = len(match.group("indent").expandtabs())
    if listing.base is None:
        listing.base = indent
    if indent < listing.base:
        raise InputError(f"{path}:{number}: member indented less than the listing's first")
    depth = (indent - listing.base) // 3
    while listing.stack and listing.stack[-1][0] >= depth:
        listing.stack.pop()
    parent = listing.stack[-1][1] + "." if listing.stack else ""
    name = parent + match.group("name")
    text = match.group("type")
    record: dict[str, Any] = {"offset": int(match.group("offset"), 16)}
    bits = _BITS.match(text)
    if bits:
        record["bit_offset"], record["bit_size"] = int(bits.group(1)), int(bits.group(2))
    else:
        size = _dt_size(text)
        if size is not None:
            record["size"] = size
    listing.fields[name] = record
    listing.stack.append((depth, name))


# ---------------------------------------------------------------------------
# C

def read_c(path: str, abi: str) -> Declared:
    """A C header or source compiled as its own translation unit for `abi`
    (see ndisemu.wincc)."""
    from ndisemu import wincc
    try:
        found = wincc.layouts(path, abi, layout.struct_names())
    except wincc.CompileError as error:
        raise InputError(str(error)) from None
    out = Declared(note=found.note)
    for spelled, decl in found.structs.items():
        _add(out, spelled, decl)
    out.ignored = found.ignored
    return out


def read(path: str, abi: str | None) -> Declared:
    """Reads any of the three kinds; `abi` (the command line's, else x64) is
    the one a C file is compiled for."""
    if kind_of(path) == "c":
        read_text(path)     # an unreadable file is one line, before any compiler runs
        return read_c(path, abi or layout.DEFAULT_ABI)
    text = read_text(path)
    if kind_of(path, text) == "json":
        return read_json(path, text)
    return read_dt(path, text)
