"""`k.show()`: views of NBLs, NBs, MDLs, contexts and pools in the manner of
WinDbg's !ndiskd.nbl, !ndiskd.nb, !ndiskd.nblpool and !ndiskd.nbpool.

The format is ndisemu's own: a header naming the object's kind and display
address, then its fields as label/value pairs, two to a line where they fit.
Numbers are hexadecimal (sizes and offsets as WinDbg prints them), every
address is a display address, flags are decoded by name, tags are four
characters.

A view never crashes and never raises on a corrupted object.  Each pointer is
checked (a live object of the expected kind) before it is followed; what is
wrong is printed in its place (``0x4141414141 (not a live NET_BUFFER)``),
data is read through the checked paths, and chains are walked with a bound,
so a loop shows as a loop.  What the core's records know (who allocated an
object, its origin, that it was freed and by which call) is shown beside the
fields, since a driver cannot overwrite it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from ndisemu import layout, trace
from ndisemu._native import ffi, lib
from ndisemu.constants import for_version
from ndisemu.verifier import KIND_NAMES, BugCheck

NBL = lib.NDISEMU_KIND_NBL
NB = lib.NDISEMU_KIND_NB
MDL = lib.NDISEMU_KIND_MDL
CONTEXT = lib.NDISEMU_KIND_CONTEXT
NBL_POOL = lib.NDISEMU_KIND_NBL_POOL
NB_POOL = lib.NDISEMU_KIND_NB_POOL

KIND_TYPES = {
    NBL: "NET_BUFFER_LIST *",
    NB: "NET_BUFFER *",
    MDL: "MDL *",
    CONTEXT: "NET_BUFFER_LIST_CONTEXT *",
}
# The kinds a pointer's cffi type names (what k.view and k.show dispatch on).
KIND_OF_TYPE = {ffi.typeof(name): kind for kind, name in KIND_TYPES.items()}

# Two label/value pairs a line: widths of a label and of a value column
# (a value leaves two spaces before the next label).
_LABEL = 20
_VALUE = 28

address = trace.address


# -- decoding -------------------------------------------------------------------

@functools.cache
def _names_by_bit(ndis_version: str, prefix: str) -> dict[int, list[str]]:
    """Single-bit constants with `prefix` at one NDIS version, by value
    (aliases in name order).  Cached: every MDL row of a view decodes flags."""
    found: dict[int, list[str]] = {}
    constants = for_version(ndis_version)
    for name, value in sorted(constants.items(), key=lambda item: (item[1], item[0])):
        if name.startswith(prefix) and value and not value & (value - 1):
            found.setdefault(value, []).append(name)
    return found


def decode_flags(value: int, names: dict[int, list[str]]) -> str:
    """`value` as hex, then the name of each set bit in parentheses (two
    names for one bit joined by "/", bits without a name in hex)."""
    parts = []
    unknown = value
    for bit, aliases in sorted(names.items()):
        if value & bit:
            parts.append("/".join(aliases))
            unknown &= ~bit
    if unknown:
        parts.append(f"{unknown:#x}")
    return f"{value:#x} ({' | '.join(parts)})" if parts else f"{value:#x}"


def nbl_flags(value: int, ndis_version: str = "6.87") -> str:
    """NblFlags decoded with the NDIS_NBL_FLAGS_* names of one NDIS version."""
    return decode_flags(value, _names_by_bit(ndis_version, "NDIS_NBL_FLAGS_"))


def mdl_flags(value: int) -> str:
    """MdlFlags decoded with the MDL_* names (wdm.h gives two bits two names each)."""
    return decode_flags(value & 0xFFFF, _names_by_bit("6.87", "MDL_"))


def nbl_ownership_flags(value: int, ndis_version: str = "6.87") -> str:
    """NET_BUFFER_LIST.Flags split by owner: NBL_FLAGS_PROTOCOL_RESERVED,
    _MINIPORT_RESERVED, _NDIS_RESERVED and _SCRATCH each with its bits."""
    constants = for_version(ndis_version)
    regions = sorted((name, mask) for name, mask in constants.items()
                     if name.startswith("NBL_FLAGS_"))
    parts = [f"{name} {value & mask:#x}" for name, mask in regions if value & mask]
    rest = value & ~sum(mask for _, mask in regions) & 0xFFFFFFFF
    if rest:
        parts.append(f"{rest:#x}")
    return f"{value:#x} ({', '.join(parts)})" if parts else f"{value:#x}"


def _status(value: int, constants: dict[str, int]) -> str:
    value &= 0xFFFFFFFF
    names = sorted(n for n, v in constants.items() if n.startswith("NDIS_STATUS_") and v == value)
    return f"{value:#x} {names[0]}" if names else f"{value:#x}"


def tag_text(tag: int) -> str:
    """A pool tag as its four characters, quoted ('Test'); unprintable bytes
    as \\xNN."""
    chars = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in tag.to_bytes(4, "little"))
    return f"'{chars}'"


def hexdump(data: bytes, indent: str = "    ") -> list[str]:
    """16 bytes a line: offset, the bytes in hex (a gap after the eighth),
    then the printable ASCII ('.' for the rest)."""
    out = []
    for start in range(0, len(data), 16):
        row = data[start:start + 16]
        cells = [f"{b:02x}" for b in row] + ["  "] * (16 - len(row))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        out.append(f"{indent}{start:04x}  {' '.join(cells[:8])}  {' '.join(cells[8:])}  {text}"
                   .rstrip())
    return out


# The info slots whose value is a bit-field struct, and which of its views
# (named union members) to decode.  TCP/IP checksum info means Transmit on a
# send and Receive on a receive: both are shown.  LSO's views depend on Type.
_INFO_STRUCTS = {
    "TcpIpChecksumNetBufferListInfo": "NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO",
    "Ieee8021QNetBufferListInfo": "NDIS_NET_BUFFER_LIST_8021Q_INFO",
    "TcpLargeSendNetBufferListInfo": "NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO",
}


def _info_views(slot: str, value: int) -> tuple[str, ...]:
    if slot == "TcpIpChecksumNetBufferListInfo":
        return ("Transmit", "Receive")
    if slot == "Ieee8021QNetBufferListInfo":
        return ("TagHeader", "WLanTagHeader")
    lso_v2 = value >> 30 & 1         # Type: NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE
    return ("LsoV2Transmit", "LsoV2TransmitComplete") if lso_v2 else \
           ("LsoV1Transmit", "LsoV1TransmitComplete")


def decode_info(slot: str, value: int) -> list[str]:
    """The bit-fields of an info slot's value (`slot` its name), one line
    per view of the union that has a non-zero field ("Transmit: IsIPv4 0x1,
    ..."); [] for slots that hold a plain value."""
    struct = _INFO_STRUCTS.get(slot)
    if struct is None:
        return []
    fields = layout.struct(struct)["fields"]
    out = []
    said: set[str] = set()
    for view in _info_views(slot, value):
        bits = [(path.split(".", 1)[1],
                 value >> (f["offset"] * 8 + f["bit_offset"]) & ((1 << f["bit_size"]) - 1))
                for path, f in fields.items() if path.startswith(view + ".")]
        shown = [f"{name} {v:#x}" for name, v in bits if v or name == "Type"]
        # A view that only repeats what an earlier one said (802.1Q's
        # WLanTagHeader without WMMInfo) adds nothing.
        if any(v for _, v in bits) and not set(shown) <= said:
            out.append(f"{view}: {', '.join(shown)}")
            said.update(shown)
    return out


def _slot_names(ndis_version: str) -> dict[int, list[str]]:
    """Info slot index -> its names at one version (two names for one slot
    are aliases), then ndis.sys's names for the slots past the driver view."""
    names: dict[int, list[str]] = {}
    for version in dict.fromkeys((ndis_version, "wrapper")):
        known = set(names)
        enum = layout.profile("x64", version)["enums"]["NDIS_NET_BUFFER_LIST_INFO"]
        for name, index in sorted(enum.items(), key=lambda item: (item[1], item[0])):
            if name != "MaxNetBufferListInfo" and index not in known:
                names.setdefault(index, []).append(name)
    return names


# -- reading through the checked paths --------------------------------------------

def _pointer_value(ptr: Any) -> int:
    return int(ffi.cast("uintptr_t", ptr))


def _record(k: Any, ptr: Any) -> Any:
    """The core's record of the object at `ptr` (cdata), or None."""
    out = ffi.new("ndisemu_object_record *")
    return out if ptr != ffi.NULL and lib.ndisemu_object_record_of(k._k, ptr, out) == 0 else None


def _problem(k: Any, ptr: Any, kind: int) -> str | None:
    """None when `ptr` is a live object of `kind`; else what it is instead."""
    want = KIND_NAMES[kind]
    if not k.owns(ptr):
        return f"not a live {want}: outside the arena"
    rec = _record(k, ptr)
    if rec is None:
        return f"not a live {want}"
    found = KIND_NAMES.get(int(rec.kind), "object")
    if rec.state != 1:
        freed = ffi.string(rec.freed_by).decode()
        by = f", freed by {freed}" if freed else ""
        return f"freed {want}{by}" if rec.kind == kind else \
            f"not a live {want}: a freed {found}{by}"
    return None if rec.kind == kind else f"not a live {want}: a live {found}"


def _pointer_text(k: Any, ptr: Any, kind: int) -> str:
    """A pointer field's value: NULL, its display address, and what is
    wrong with it when it is not a live object of `kind`."""
    if ptr == ffi.NULL:
        return "NULL"
    shown = address(k.display(ptr))
    wrong = _problem(k, ptr, kind)
    return f"{shown} ({wrong})" if wrong else shown


def _live(k: Any, ptr: Any, kind: int) -> Any:
    """`ptr` typed as `kind` when it is a live object of that kind, else None."""
    if ptr == ffi.NULL or _problem(k, ptr, kind):
        return None
    return ffi.cast(KIND_TYPES[kind], ptr)


def _allocated(k: Any, rec: Any) -> str:
    """The allocating call, and where the object lives when that is not its
    own block (the call names the origin but for a retreat's MDL)."""
    how = []
    if rec.origin == lib.NDISEMU_ORIGIN_RETREAT:
        how.append("NDIS's default allocator")
    if rec.inner:
        how.append(f"inside {trace._kind_at(k, rec.block)} {address(rec.block)}")
    call = ffi.string(rec.call).decode() or "?"
    return f"{call} ({', '.join(how)})" if how else call


def _pool(k: Any, handle: Any, kind: int) -> str:
    """A pool handle field: the address, the tag, what is wrong.  An NB's
    may be an NBL pool's (the NB preallocated with its NBL)."""
    if handle == ffi.NULL:
        return "NULL"
    wrong = _problem(k, handle, kind)
    if wrong and kind == NB_POOL:
        wrong = _problem(k, handle, NBL_POOL) and wrong
    if wrong:
        return f"{address(k.display(handle))} ({wrong})"
    return f"{address(k.display(handle))} {tag_text(_record(k, handle).tag)}"


# -- layout ---------------------------------------------------------------------

def _fields(pairs: list[tuple[str, str]], indent: str = "    ") -> list[str]:
    """Label/value pairs, two a line when both values fit a column."""
    out = []
    i = 0
    while i < len(pairs):
        label, value = pairs[i]
        line = f"{indent}{label:<{_LABEL}}{value}"
        fits = len(value) <= _VALUE - 2
        if fits and i + 1 < len(pairs) and len(pairs[i + 1][1]) <= _VALUE:
            label2, value2 = pairs[i + 1]
            line = f"{indent}{label:<{_LABEL}}{value:<{_VALUE}}{label2:<{_LABEL}}{value2}"
            i += 1
        out.append(line.rstrip())
        i += 1
    return out


def _header(k: Any, kind_name: str, ptr: Any) -> str:
    return f"{kind_name} {address(k.display(ptr))}"


def _dead(k: Any, ptr: Any, kind: int, log: bool) -> list[str]:
    """A pointer that is not a live object of its kind: what it is instead,
    what the records say, and its events."""
    out = [f"{_header(k, KIND_NAMES[kind], ptr)}: {_problem(k, ptr, kind)}"]
    rec = _record(k, ptr)
    if rec is not None:
        out.append(f"    {'Allocated by':<{_LABEL}}{_allocated(k, rec)}")
    if log:
        out += _log(k, ptr)
    return out


def _log(k: Any, ptr: Any) -> list[str]:
    if not k.trace and not trace.events(k, ptr, 1):
        return ["    Log: tracing is off (k.trace = True records events)"]
    events = trace.events(k, ptr)
    if not events:
        return ["    Log: no events recorded"]
    return ["    Log:"] + trace.lines(events, "        ")


# -- the views ------------------------------------------------------------------

class _Budget:
    """Bounds every walk by the number of live objects of the kind walked,
    so a list that loops back ends (and says so) instead of running on."""

    def __init__(self, k: Any, kind_key: str):
        self.left = k.stats()[kind_key] + 1
        self.seen: set[int] = set()

    def visit(self, ptr: Any) -> bool:
        key = _pointer_value(ptr)
        self.left -= 1
        if key in self.seen or self.left < 0:
            return False
        self.seen.add(key)
        return True


_LOOPS = "loops"


def _along_next(k: Any, first: Any, kind: int, kind_key: str,
                seen: tuple[Any, ...] = ()) -> Iterator[tuple[Any, Any]]:
    """The objects on Next from `first` (after `seen`, already shown), as
    (pointer, live typed pointer).  The walk ends at NULL, or with one last
    pair: (pointer, None) when it is not a live object of `kind`, or
    (pointer, _LOOPS) when the list comes back to an object it met."""
    walk = _Budget(k, kind_key)
    for ptr in seen:
        walk.visit(ptr)
    ptr = first
    while ptr != ffi.NULL:
        live = _live(k, ptr, kind)
        if live is None or not walk.visit(ptr):
            yield ptr, (None if live is None else _LOOPS)
            return
        yield ptr, live
        ptr = live.Next


def _mdl_table(k: Any, nb: Any, indent: str) -> list[str]:
    """The MDLs of an NB's chain: one row each, '>' marking CurrentMdl."""
    if nb.MdlChain == ffi.NULL:
        return [f"{indent}MdlChain: NULL"]
    out = [f"{indent}  {'MDL':<20}{'ByteCount':<12}{'ByteOffset':<12}{'MappedSystemVa':<20}"
           "MdlFlags"]
    for m, mdl in _along_next(k, nb.MdlChain, MDL, "mdl"):
        mark = ">" if m == nb.CurrentMdl else " "
        if mdl is None:
            out.append(f"{indent}{mark} {_pointer_text(k, m, MDL)}")
        elif mdl is _LOOPS:
            out.append(f"{indent}  ... {address(k.display(m))} again: the chain loops")
        else:
            out.append(f"{indent}{mark} {address(k.display(mdl)):<20}{mdl.ByteCount:<#12x}"
                       f"{mdl.ByteOffset:<#12x}{address(k.display(mdl.MappedSystemVa)):<20}"
                       f"{mdl_flags(mdl.MdlFlags)}")
    return out


def _data(k: Any, nb: Any, indent: str) -> list[str]:
    """The NB's used bytes, read through the checked path."""
    try:
        data = k.nb_bytes(nb)
    except BugCheck as error:
        return [f"{indent}Data: cannot be read: {str(error).splitlines()[0]}"]
    return _data_rows(data, indent, f" from DataOffset {nb.DataOffset:#x}")


def _data_rows(data: bytes, indent: str, where: str = "") -> list[str]:
    """`Data: <n> bytes<where>:` and the hex dump under it, as every view
    shows the bytes of its object."""
    return ([f"{indent}Data: {len(data):#x} bytes{where}" + (":" if data else "")] +
            hexdump(data, indent + "    "))


def _consistency(k: Any, nb: Any) -> list[str]:
    """What check_nb finds wrong, if anything (the rule and P3/P4)."""
    if lib.ndisemu_check_nb(k._k, nb) == 0:
        return []
    bug = k._bug
    rule = ffi.string(bug.rule).decode() if bug.rule != ffi.NULL else "inconsistent"
    p = [int(bug.parameters[i]) for i in range(4)]
    if p[0] == lib.NDISEMU_BUG_NB_INCONSISTENT:
        rule += f" (found {p[2]:#x}, expected {p[3]:#x})"
    else:
        rule += f" [bug check {int(bug.code):#x} ({', '.join(f'{v:#x}' for v in p)})]"
    return [f"    {'Inconsistent':<{_LABEL}}{rule}"]


def _show_nb(k: Any, nb: Any, *, chain: bool = False, data: bool = False,
            log: bool = False) -> list[str]:
    """!ndiskd.nb: Length, data offset, first and current MDL, pool."""
    nb = ffi.cast("NET_BUFFER *", nb)
    if _problem(k, nb, NB):
        return _dead(k, nb, NB, log)
    rec = _record(k, nb)
    out = [_header(k, "NET_BUFFER", nb)]
    out += _fields([
        ("Next NB", _pointer_text(k, nb.Next, NB)),
        ("DataLength", f"{nb.DataLength:#x}"),
        ("MdlChain", _pointer_text(k, nb.MdlChain, MDL)),
        ("DataOffset", f"{nb.DataOffset:#x}"),
        ("CurrentMdl", _pointer_text(k, nb.CurrentMdl, MDL)),
        ("CurrentMdlOffset", f"{nb.CurrentMdlOffset:#x}"),
        ("Pool", _pool(k, nb.NdisPoolHandle, NB_POOL)),
        ("ChecksumBias", f"{nb.ChecksumBias:#x}"),
        ("Allocated by", _allocated(k, rec)),
    ])
    if rec.retreat_mdls:
        out.append(f"    {'Retreat MDLs':<{_LABEL}}{rec.retreat_mdls:#x} at the head of the chain")
    out += _consistency(k, nb)
    if chain:
        out += _mdl_table(k, nb, "    ")
    if data:
        out += _data(k, nb, "    ")
    if log:
        out += _log(k, nb)
    return out


def _info(k: Any, nbl: Any) -> list[str]:
    names = _slot_names(k.ndis_version)
    slots = ffi.sizeof(nbl.NetBufferListInfo) // ffi.sizeof("void *")
    rows = []
    for index in range(slots):
        value = _pointer_value(nbl.NetBufferListInfo[index])
        if not value:
            continue
        aliases = names.get(index, [f"slot {index}"])
        rows.append(f"        [{index:#04x}] {'/'.join(aliases)}: {value:#x}")
        for name in aliases:
            rows += [f"{'':15}{line}" for line in decode_info(name, value)]
    if not rows:
        return ["    NetBufferListInfo: every slot is 0"]
    return ["    NetBufferListInfo (slots that are not 0):"] + rows


def _nbl_fields(k: Any, nbl: Any) -> list[str]:
    rec = _record(k, nbl)
    pairs = [
        ("Next NBL", _pointer_text(k, nbl.Next, NBL)),
        ("FirstNetBuffer", _pointer_text(k, nbl.FirstNetBuffer, NB)),
        ("Context", _pointer_text(k, nbl.Context, CONTEXT)),
        ("ParentNetBufferList", _pointer_text(k, nbl.ParentNetBufferList, NBL)),
        ("ChildRefCount", f"{nbl.ChildRefCount:#x}"),
        ("Pool", _pool(k, nbl.NdisPoolHandle, NBL_POOL)),
        ("SourceHandle", address(_pointer_value(nbl.SourceHandle))),
        ("Status", _status(nbl.Status, k.constants)),
        ("NblFlags", nbl_flags(nbl.NblFlags, k.ndis_version)),
        ("Flags", nbl_ownership_flags(nbl.Flags, k.ndis_version)),
        ("Allocated by", _allocated(k, rec)),
    ]
    if rec.references:
        pairs.append(("FWPS references", f"{rec.references:#x}"))
    return _fields(pairs)


def _show_nbl(k: Any, nbl: Any, *, chain: bool = False, data: bool = False, info: bool = False,
             log: bool = False) -> list[str]:
    """!ndiskd.nbl: the NBL's fields; with `chain` its NBs and their MDLs
    and the NBLs after it on Next, with `data` each NB's bytes, with `info`
    its out-of-band info, with `log` its events."""
    nbl = ffi.cast("NET_BUFFER_LIST *", nbl)
    out: list[str] = []
    walk = _Budget(k, "nbl")
    while True:
        if _problem(k, nbl, NBL):
            return out + _dead(k, nbl, NBL, log)
        walk.visit(nbl)
        out += [_header(k, "NET_BUFFER_LIST", nbl)] + _nbl_fields(k, nbl)
        if info:
            out += _info(k, nbl)
        if chain or data:
            out += _nbs(k, nbl, chain, data)
        if log:
            out += _log(k, nbl)
        if not chain or nbl.Next == ffi.NULL:
            return out
        if _problem(k, nbl.Next, NBL) is None and _pointer_value(nbl.Next) in walk.seen:
            return out + [f"... {address(k.display(nbl.Next))} again: the NBL chain loops"]
        nbl = nbl.Next
        out.append("")


def _nbs(k: Any, nbl: Any, chain: bool, data: bool) -> list[str]:
    out = []
    for nb, live in _along_next(k, nbl.FirstNetBuffer, NB, "nb"):
        if live is None:
            out.append(f"    NET_BUFFER {_pointer_text(k, nb, NB)}")
            break
        if live is _LOOPS:
            out.append(f"    ... {address(k.display(nb))} again: the NB list loops")
            break
        out.append(f"    NET_BUFFER {address(k.display(nb))}: DataLength {live.DataLength:#x}, "
                   f"DataOffset {live.DataOffset:#x}, CurrentMdl "
                   f"{_pointer_text(k, live.CurrentMdl, MDL)} +{live.CurrentMdlOffset:#x}")
        if chain:
            out += _mdl_table(k, live, "        ")
        if data:
            out += _data(k, live, "        ")
    return out or ["    FirstNetBuffer: NULL (no NET_BUFFER)"]


def _show_mdl(k: Any, mdl: Any, *, chain: bool = False, data: bool = False,
             log: bool = False) -> list[str]:
    """The MDL's fields, decoded MdlFlags; with `data` the bytes it
    describes, with `chain` the MDLs after it."""
    mdl = ffi.cast("MDL *", mdl)
    if _problem(k, mdl, MDL):
        return _dead(k, mdl, MDL, log)
    out = [_header(k, "MDL", mdl)]
    out += _fields([
        ("Next", _pointer_text(k, mdl.Next, MDL)),
        ("Size", f"{mdl.Size:#x}"),
        ("ByteCount", f"{mdl.ByteCount:#x}"),
        ("ByteOffset", f"{mdl.ByteOffset:#x}"),
        ("StartVa", address(k.display(mdl.StartVa))),
        ("MappedSystemVa", address(k.display(mdl.MappedSystemVa))),
        ("Process", address(_pointer_value(mdl.Process))),
        ("MdlFlags", mdl_flags(mdl.MdlFlags)),
        ("Allocated by", _allocated(k, _record(k, mdl))),
    ])
    if chain:
        rows = ["    Chain:"]
        for m, live in _along_next(k, mdl.Next, MDL, "mdl", seen=(mdl,)):
            if live is None or live is _LOOPS:
                rows.append(f"        {_pointer_text(k, m, MDL)}" +
                            ("" if live is None else " again: the chain loops"))
            else:
                rows.append(f"        {address(k.display(m))}  ByteCount {live.ByteCount:#x}")
        out += rows if len(rows) > 1 else ["    Chain: ends here (Next is NULL)"]
    if data:
        try:
            described = k.view(mdl).bytes()
        except BugCheck as error:
            out.append(f"    Data: cannot be read: {str(error).splitlines()[0]}")
        else:
            out += _data_rows(described, "    ")
    if log:
        out += _log(k, mdl)
    return out


def _show_context(k: Any, ctx: Any, *, data: bool = False, log: bool = False) -> list[str]:
    """An NBL context block: Size, Offset (the unused part), the used bytes."""
    ctx = ffi.cast("NET_BUFFER_LIST_CONTEXT *", ctx)
    if _problem(k, ctx, CONTEXT):
        return _dead(k, ctx, CONTEXT, log)
    rec = _record(k, ctx)
    room = max(int(rec.size) - ffi.sizeof("NET_BUFFER_LIST_CONTEXT"), 0)
    used = max(min(ctx.Size, room) - min(ctx.Offset, ctx.Size), 0)
    out = [_header(k, "NET_BUFFER_LIST_CONTEXT", ctx)]
    out += _fields([
        ("Next", _pointer_text(k, ctx.Next, CONTEXT)),
        ("Size", f"{ctx.Size:#x}"),
        ("Offset", f"{ctx.Offset:#x}"),
        ("Used", f"{used:#x} bytes"),
        ("Allocated by", _allocated(k, rec)),
    ])
    if ctx.Size > room:
        out.append(f"    {'Inconsistent':<{_LABEL}}Size {ctx.Size:#x} is more than the "
                   f"{room:#x} bytes allocated")
    if data:
        start = ffi.cast("uint8_t *", ctx) + ffi.sizeof("NET_BUFFER_LIST_CONTEXT") + \
            min(ctx.Offset, room)
        out += _data_rows(ffi.buffer(start, used)[:], "    ")
    if log:
        out += _log(k, ctx)
    return out


def _show_pool(k: Any, handle: Any, *, log: bool = False) -> list[str]:
    """!ndiskd.nblpool / !ndiskd.nbpool: tag, sizes, live and total counts."""
    rec = _record(k, handle)
    kind = int(rec.kind) if rec is not None else NBL_POOL
    if _problem(k, handle, kind):
        return _dead(k, handle, kind, log)
    info = ffi.new("ndisemu_pool *")
    lib.ndisemu_pool_info(k._k, handle, info)
    is_nbl = kind == NBL_POOL
    name = "NBL pool" if is_nbl else "NB pool"
    default = " (the Kernel's default pool)" if info.is_default else ""
    out = [f"{_header(k, name, handle)}{default}"]
    pairs = [("Tag", tag_text(rec.tag))]
    if is_nbl:
        pairs += [("ProtocolId", f"{info.protocol_id:#x}"),
                  ("fAllocateNetBuffer", "TRUE" if info.allocate_nb else "FALSE"),
                  ("ContextSize", f"{info.context_size:#x}")]
    verify = "NET_BUFFER_LIST_POOL_FLAG_VERIFY" if is_nbl else "NET_BUFFER_POOL_FLAG_VERIFY"
    pairs += [("DataSize", f"{info.data_size:#x}"),
              ("Flags", decode_flags(info.flags, {k.constants[verify]: [verify]})),
              ("Structure size", f"{ffi.sizeof('NET_BUFFER_LIST' if is_nbl else 'NET_BUFFER'):#x}"),
              ("Allocation size", f"{int(info.object_bytes):#x}"),
              ("Live", f"{int(info.live):#x}"),
              ("Allocated", f"{int(info.allocated):#x}"),
              ("Allocated by", _allocated(k, rec))]
    out += _fields(pairs)
    if log:
        out += _log(k, handle)
    return out


# -- entry points -----------------------------------------------------------------

def _kind_of(k: Any, ptr: Any) -> int:
    """The kind a pointer names: its cdata type's, or for `void *` (a pool
    handle, an untyped pointer) the kind of the object there, live or freed."""
    kind = KIND_OF_TYPE.get(ffi.typeof(ptr))
    if kind is not None:
        return kind
    return abs(lib.ndisemu_object_kind(k._k, ptr))


def show(k: Any, ptr: Any, *, chain: bool = False, data: bool = False, info: bool = False,
         log: bool = False) -> str:
    """The view of whatever `ptr` points at (see the module docstring)."""
    if ptr == ffi.NULL:
        return "NULL"
    kind = _kind_of(k, ptr)
    if kind == NBL:
        out = _show_nbl(k, ptr, chain=chain, data=data, info=info, log=log)
    elif kind == NB:
        out = _show_nb(k, ptr, chain=chain, data=data, log=log)
    elif kind == MDL:
        out = _show_mdl(k, ptr, chain=chain, data=data, log=log)
    elif kind == CONTEXT:
        out = _show_context(k, ptr, data=data, log=log)
    elif kind in (NBL_POOL, NB_POOL):
        out = _show_pool(k, ptr, log=log)
    else:
        out = _show_block(k, ptr, data=data, log=log)
    return "\n".join(out)


def _show_block(k: Any, ptr: Any, *, data: bool = False, log: bool = False) -> list[str]:
    """Any other block (a data buffer, memory from
    NdisAllocateMemoryWithTagPriority): what the records say, its bytes."""
    shown = address(k.display(ptr))
    rec = _record(k, ptr)
    if rec is None:
        return [f"{shown}: " + ("outside the arena" if not k.owns(ptr)
                                else "no object starts here")]
    kind = KIND_NAMES.get(int(rec.kind), "object")
    out = [f"{kind} {shown}" + ("" if rec.state == 1 else
                                f": freed by {ffi.string(rec.freed_by).decode() or '?'}")]
    out += _fields([("Tag", tag_text(rec.tag)), ("Size", f"{int(rec.size):#x}"),
                    ("Allocated by", _allocated(k, rec))])
    if data and rec.state == 1:
        out += _data_rows(ffi.buffer(ffi.cast("uint8_t *", ptr), int(rec.size))[:], "    ")
    if log:
        out += _log(k, ptr)
    return out


def summary(k: Any, ptr: Any) -> str:
    """One line for repr(): kind, display address and the key fields."""
    kind = KIND_OF_TYPE[ffi.typeof(ptr)]
    head = f"{KIND_NAMES[kind]} {address(k.display(ptr))}"
    wrong = _problem(k, ptr, kind)
    if wrong:
        return f"{head} ({wrong})"
    if kind == NBL:
        fields = (f"FirstNetBuffer {address(k.display(ptr.FirstNetBuffer))}, "
                  f"Next {address(k.display(ptr.Next))}, ChildRefCount {ptr.ChildRefCount:#x}, "
                  f"NblFlags {ptr.NblFlags:#x}")
    elif kind == NB:
        fields = (f"DataLength {ptr.DataLength:#x}, DataOffset {ptr.DataOffset:#x}, "
                  f"MdlChain {address(k.display(ptr.MdlChain))}, "
                  f"CurrentMdl {address(k.display(ptr.CurrentMdl))} +{ptr.CurrentMdlOffset:#x}")
    elif kind == MDL:
        fields = (f"ByteCount {ptr.ByteCount:#x}, ByteOffset {ptr.ByteOffset:#x}, "
                  f"MdlFlags {ptr.MdlFlags & 0xFFFF:#x}, Next {address(k.display(ptr.Next))}")
    else:
        fields = (f"Size {ptr.Size:#x}, Offset {ptr.Offset:#x}, "
                  f"Next {address(k.display(ptr.Next))}")
    return f"{head}: {fields}"


# -- the demo -----------------------------------------------------------------------

def demo() -> str:
    """What `ndisemu show --demo` prints: an NBL with two NBs over
    fragmented MDLs (one MDL per protocol header), its NDIS clone and its
    deep clone, each shown with chain, data, info and log, then their pool.
    The same text on every run (display addresses, a fresh Kernel)."""
    from ndisemu.kernel import Kernel
    k = Kernel(arena_size=1 << 20, seed=0)
    k.trace = True
    c = k.constants
    pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True,
                                                  "PoolTag": 0x6F6D6544})  # 'Demo'
    ethernet = bytes.fromhex("00155d0a0b0c00155d010203 0800")
    ipv4 = bytes.fromhex("4500 0046 1c46 4000 4006 0000 c0a80001 c0a800c7")
    tcp = bytes.fromhex("c350 0050 00000001 00000000 5018 faf0 0000 0000")
    payloads = [ethernet + ipv4 + tcp + b"GET / HTTP/1.1\r\n",
                ethernet + ipv4 + tcp + b"Host: ndisemu\r\n\r\n"]
    # One MDL per header, then the payload: the split a stack's send path makes.
    nbl = k.build_nbl(pool, payloads, mdl_sizes=[14, 20, 20, 64])
    nbl.NblFlags |= c["NDIS_NBL_FLAGS_IS_IPV4"] | c["NDIS_NBL_FLAGS_IS_TCP"]
    checksum = ffi.new("NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO *")
    checksum.Transmit.IsIPv4 = checksum.Transmit.TcpChecksum = 1
    checksum.Transmit.TcpHeaderOffset = len(ethernet) + len(ipv4)
    vlan = ffi.new("NDIS_NET_BUFFER_LIST_8021Q_INFO *")
    vlan.TagHeader.VlanId = 42
    vlan.TagHeader.UserPriority = 5
    nbl.NetBufferListInfo[c["TcpIpChecksumNetBufferListInfo"]] = checksum.Value
    nbl.NetBufferListInfo[c["Ieee8021QNetBufferListInfo"]] = vlan.Value
    clone = k.NdisAllocateCloneNetBufferList(nbl, None, None, 0)
    _, deep = k.FwpsAllocateDeepCloneNetBufferList0(nbl, None, None)
    every = {"chain": True, "data": True, "info": True, "log": True}
    sections = [
        ("An NBL with two NBs, one MDL per header (build_nbl)", nbl),
        ("Its NDIS clone: partial MDLs over the same bytes (NdisAllocateCloneNetBufferList)",
         clone),
        ("Its deep clone: one new buffer per NB (FwpsAllocateDeepCloneNetBufferList0)", deep),
    ]
    out = []
    for title, obj in sections:
        out += [f"# {title}", show(k, obj, **every), ""]
    out += ["# The original's pool (the clones came from the Kernel's default pools)",
            show(k, pool)]
    k.FwpsFreeCloneNetBufferList0(deep, 0)
    k.NdisFreeCloneNetBufferList(clone, 0)
    k.free_built(nbl)
    k.NdisFreeNetBufferListPool(pool)
    return "\n".join(out)
