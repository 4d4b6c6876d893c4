"""The per-object event trace: ``k.trace = True`` and ``k.trace_log(ptr)``.

While tracing is on, the native core records one event per state change of
every object: allocated, derived from which NBL by which call, retreated and
advanced by how much, context allocated or freed, referenced, handed over,
freed.  The log is a ring of ``TRACE_EVENTS`` events (the oldest are
overwritten) kept by the core, so calls made from driver C code are traced
like calls from Python, and what a driver writes into the arena cannot
reach it.  Turning tracing on starts a new log; turning it off keeps the log
for reading.  ``k.show(ptr, log=True)`` prints an object's events, and every
BugCheck message ends with the last events of the objects it names, so a
fuzz failure says how the object got into the state the check found.
"""

from __future__ import annotations

from typing import Any

from ndisemu._native import ffi, lib
from ndisemu.verifier import KIND_NAMES

# Events the ring holds: a few thousand, enough for the history of the
# objects one failing example touches; about 64 bytes each.
TRACE_EVENTS = 4096

# Events of an object a BugCheck message lists (the newest).
BUGCHECK_EVENTS = 5

EVENT_NAMES = {
    lib.NDISEMU_TRACE_ALLOCATED: "allocated",
    lib.NDISEMU_TRACE_FREED: "freed",
    lib.NDISEMU_TRACE_DERIVED: "derived",
    lib.NDISEMU_TRACE_CHILD_DERIVED: "child derived",
    lib.NDISEMU_TRACE_CHILD_FREED: "child freed",
    lib.NDISEMU_TRACE_RETREATED: "retreated",
    lib.NDISEMU_TRACE_ADVANCED: "advanced",
    lib.NDISEMU_TRACE_RESTORED: "restored",
    lib.NDISEMU_TRACE_CONTEXT_ALLOCATED: "context allocated",
    lib.NDISEMU_TRACE_CONTEXT_FREED: "context freed",
    lib.NDISEMU_TRACE_REFERENCED: "referenced",
    lib.NDISEMU_TRACE_HANDED_OVER: "handed over",
    lib.NDISEMU_TRACE_MDL_LENGTH: "MDL length",
}

# How an NBL, NB or MDL came to be (the record's origin).
ORIGIN_NAMES = {
    lib.NDISEMU_ORIGIN_POOL: "from its pool",
    lib.NDISEMU_ORIGIN_PREALLOCATED: "preallocated with its NET_BUFFER_LIST",
    lib.NDISEMU_ORIGIN_MDL_AND_DATA: "with its MDL and data",
    lib.NDISEMU_ORIGIN_NDIS_MDL: "NdisAllocateMdl",
    lib.NDISEMU_ORIGIN_IO_MDL: "IoAllocateMdl",
    lib.NDISEMU_ORIGIN_CLONE: "NDIS clone",
    lib.NDISEMU_ORIGIN_FWPS_CLONE: "FWPS clone",
    lib.NDISEMU_ORIGIN_DEEP_CLONE: "deep clone",
    lib.NDISEMU_ORIGIN_FRAGMENT: "fragment",
    lib.NDISEMU_ORIGIN_REASSEMBLED: "reassembled NBL",
    lib.NDISEMU_ORIGIN_FWPS_NBL: "FwpsAllocateNetBufferAndNetBufferList0",
    lib.NDISEMU_ORIGIN_RETREAT: "retreat (NDIS's default allocator)",
    lib.NDISEMU_ORIGIN_BUILT: "build_nbl",
}


def address(value: int) -> str:
    """A display (or raw) address as messages print it; NULL for 0."""
    return f"{value:#x}" if value else "NULL"


def _kind_at(k: Any, display: int) -> str:
    """The kind name of the object (live or freed) at a display address
    ("object" when none starts there)."""
    kind = abs(lib.ndisemu_object_kind(k._k, lib.ndisemu_from_display(k._k, display)))
    return KIND_NAMES.get(kind, "object")


def _handle(k: Any, value: int) -> str:
    """A layer's handle with the layer's name when a binding of `k` gave it."""
    name = k.__dict__.get("_layer_names", {}).get(value)
    return f"{name} {address(value)}" if name else address(value)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe(k: Any, event: int, args: tuple[int, int, int]) -> str:
    """What one event says, its addresses shown as display addresses."""
    a0, a1, a2 = args
    if event == lib.NDISEMU_TRACE_ALLOCATED:
        return f"allocated inside {_kind_at(k, a0)} {address(a0)}" if a0 else "allocated"
    if event == lib.NDISEMU_TRACE_FREED:
        return f"freed with {_kind_at(k, a0)} {address(a0)}" if a0 else "freed"
    if event == lib.NDISEMU_TRACE_DERIVED:
        how = ORIGIN_NAMES.get(a1, "derived NBL")
        if a1 in (lib.NDISEMU_ORIGIN_FRAGMENT, lib.NDISEMU_ORIGIN_REASSEMBLED):
            how += f", DataOffsetDelta {a2:#x}"
        elif a1 == lib.NDISEMU_ORIGIN_CLONE:
            how += f", AllocateCloneFlags {a2:#x}"
        return f"derived from NET_BUFFER_LIST {address(a0)} ({how})"
    if event == lib.NDISEMU_TRACE_CHILD_DERIVED:
        return f"{ORIGIN_NAMES.get(a1, 'derived NBL')} {address(a0)} derived from it"
    if event == lib.NDISEMU_TRACE_CHILD_FREED:
        return f"FWPS clone {address(a0)} freed: ChildRefCount {_signed(a1):#x}"
    if event == lib.NDISEMU_TRACE_RETREATED:
        mdl = f"MDL {address(a1)} added, " if a1 else ""
        return f"retreated by {a0:#x}: {mdl}DataOffset {a2:#x}"
    if event == lib.NDISEMU_TRACE_ADVANCED:
        freed = f", {_plural(a1, 'MDL')} freed" if a1 else ""
        return f"advanced by {a0:#x}: DataOffset {a2:#x}{freed}"
    if event == lib.NDISEMU_TRACE_RESTORED:
        mdl = f", MDL {address(a0)} taken off" if a0 else ""
        return f"retreat undone: DataOffset {a2:#x}{mdl}"
    if event in (lib.NDISEMU_TRACE_CONTEXT_ALLOCATED, lib.NDISEMU_TRACE_CONTEXT_FREED):
        verb = "allocated" if event == lib.NDISEMU_TRACE_CONTEXT_ALLOCATED else "freed"
        where = (f"block {address(a1)} {verb}" if a1 else f"Offset {a2:#x}")
        return f"context of {a0:#x} bytes {verb}: {where}"
    if event == lib.NDISEMU_TRACE_REFERENCED:
        verb = "referenced" if _signed(a0) > 0 else "dereferenced"
        return f"{verb}: {_plural(_signed(a1), 'reference')} left"
    if event == lib.NDISEMU_TRACE_HANDED_OVER:
        return f"handed over from {_handle(k, a0)} to {_handle(k, a1)}"
    if event == lib.NDISEMU_TRACE_MDL_LENGTH:
        return f"ByteCount {a0:#x} -> {a1:#x}"
    return f"event {event} ({a0:#x}, {a1:#x}, {a2:#x})"


def events(k: Any, ptr: Any = None, last: int | None = None) -> list[dict[str, Any]]:
    """The retained events of the object at `ptr` (its current lifetime), or
    of every object when `ptr` is None; the newest `last` of them when
    given.  Oldest first."""
    target = ffi.NULL if ptr is None else ptr
    total = lib.ndisemu_trace_events(k._k, target, ffi.NULL, 0)
    wanted = total if last is None else min(total, last)
    if not wanted:
        return []
    out = ffi.new("ndisemu_trace_event[]", wanted)
    got = min(wanted, lib.ndisemu_trace_events(k._k, target, out, wanted))
    result = []
    for e in out[0:got]:
        args = (int(e.args[0]), int(e.args[1]), int(e.args[2]))
        event = int(e.event)
        result.append({
            "seq": int(e.seq),
            "event": EVENT_NAMES.get(event, str(event)),
            "call": ffi.string(e.call).decode() if e.call != ffi.NULL else "",
            "kind": KIND_NAMES.get(int(e.kind), "object"),
            "address": int(e.object),
            "args": args,
            "text": describe(k, event, args),
        })
    return result


def lines(log: list[dict[str, Any]], indent: str = "    ") -> list[str]:
    """One line per event: sequence number, call, what happened."""
    width = max((len(str(e["seq"])) for e in log), default=1) + 1
    return [f"{indent}{'#' + str(e['seq']):<{width}} {e['call'] or '?'}: {e['text']}"
            for e in log]


def bugcheck_appendix(k: Any, bug: Any) -> str:
    """The lines a BugCheck message gets while tracing is on: the last
    events of each object the bug check names (its object, and any
    parameter that is the display address of an object, such as 0x90's
    derived NBL or a chain check's MDL)."""
    named: list[int] = []
    for value in (int(bug.object), *(int(bug.parameters[i]) for i in range(4))):
        if value and value not in named and k.owns(lib.ndisemu_from_display(k._k, value)):
            named.append(value)
    text = []
    for display in named:
        log = events(k, lib.ndisemu_from_display(k._k, display), BUGCHECK_EVENTS)
        if log:
            text.append(f"  last events of {log[-1]['kind']} {address(display)}:")
            text += lines(log)
    return "\n" + "\n".join(text) if text else ""
