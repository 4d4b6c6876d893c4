"""Bug checks: what a refused NDIS call raises, and the one table of subcodes.

Misuse never crashes the host: the native core checks every pointer before it
follows it and records a bug check instead (see ndisemu/native/verifier.c);
the Kernel's call wrappers raise it as :class:`BugCheck`.
"""

from __future__ import annotations

from ndisemu._native import lib

BUGCODE_NDIS_DRIVER = 0x7C
DRIVER_VERIFIER_DETECTED_VIOLATION = 0xC4
PAGE_FAULT_IN_NONPAGED_AREA = 0x50
SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION = 0xC1
KMODE_EXCEPTION_NOT_HANDLED = 0x1E
DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL = 0xD5
KERNEL_SECURITY_CHECK_FAILURE = 0x139

# Stop codes other than 0x7C, with what their parameters mean here.
STOP_CODES: dict[int, tuple[str, str]] = {
    PAGE_FAULT_IN_NONPAGED_AREA: (
        "PAGE_FAULT_IN_NONPAGED_AREA",
        "a checked view, read or macro dereferenced memory outside live objects "
        "(P1 the address)"),
    SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION: (
        "SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION",
        "under the verifier, bytes past the length a caller asked for were written, found "
        "when the buffer is freed (P1 the block freed, P2 the first changed byte, P4 0x24)"),
    DRIVER_VERIFIER_DETECTED_VIOLATION: (
        "DRIVER_VERIFIER_DETECTED_VIOLATION",
        "a call made above its maximum IRQL (P1 0x91001, P3 the IRQL, P4 the maximum)"),
    KMODE_EXCEPTION_NOT_HANDLED: (
        "KMODE_EXCEPTION_NOT_HANDLED",
        "driver C code failed an ASSERT/NT_ASSERT (P1 0xC0000420 STATUS_ASSERTION_FAILURE; "
        "the message gives the expression, file and line)"),
    DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL: (
        "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL",
        "under the verifier, freed memory was written through a stale pointer, found when "
        "the block is handed out again or its pool's quarantine is scanned (P1 the first "
        "changed byte, P2 1: a write)"),
    KERNEL_SECURITY_CHECK_FAILURE: (
        "KERNEL_SECURITY_CHECK_FAILURE",
        "driver C code's list inline found a LIST_ENTRY whose neighbour does not point back "
        "(an entry removed twice, a head never initialised): P1 3 "
        "FAST_FAIL_CORRUPT_LIST_ENTRY, P2 the entry or head"),
}

# Subcodes of 0x7C (parameter 1).  0x21 and 0x27 are Microsoft's; the others
# are ndisemu's own: Microsoft documents no subcode for these misuses.
SUBCODES: dict[int, tuple[str, str]] = {
    0x21: ("NDIS_BUGCHECK_INVALID_OBJECT_HEADER",
           "Microsoft: malformed NDIS_OBJECT_HEADER in pool parameters (P3 found, P4 expected)"),
    0x27: ("NDIS_BUGCHECK_LEAKED_NBL",
           "Microsoft: pool freed with objects still allocated from it, or an NBL not back "
           "at its home layer at unbind() (P2 = 1)"),
    lib.NDISEMU_BUG_BAD_POINTER: ("NDISEMU_BAD_POINTER",
                                  "pointer is NULL, outside the arena or not a live object "
                                  "of the expected kind (P3 expected kind, P4 found kind)"),
    lib.NDISEMU_BUG_DOUBLE_FREE: ("NDISEMU_DOUBLE_FREE", "object freed twice"),
    lib.NDISEMU_BUG_USE_AFTER_FREE: ("NDISEMU_USE_AFTER_FREE",
                                     "freed object passed to a call"),
    lib.NDISEMU_BUG_WRONG_FREE: ("NDISEMU_WRONG_FREE",
                                 "object freed with a call other than its allocator's "
                                 "counterpart"),
    lib.NDISEMU_BUG_CHILDREN_OUTSTANDING: ("NDISEMU_CHILDREN_OUTSTANDING",
                                           "NBL freed, completed or returned while its "
                                           "ChildRefCount is not 0 (P3)"),
    lib.NDISEMU_BUG_CONTEXT_ORDER: ("NDISEMU_CONTEXT_ORDER",
                                    "NBL context freed out of LIFO order, or not freed "
                                    "before the NBL"),
    lib.NDISEMU_BUG_NB_INCONSISTENT: ("NDISEMU_NB_INCONSISTENT",
                                      "NET_BUFFER fields disagree with its MDL chain "
                                      "(P3 found, P4 expected)"),
    lib.NDISEMU_BUG_ADVANCE_PAST_END: ("NDISEMU_ADVANCE_PAST_END",
                                       "advance by more than DataLength"),
    lib.NDISEMU_BUG_CLONE_FLAGS: ("NDISEMU_CLONE_FLAGS",
                                  "clone freed with flags other than its allocation flags"),
    lib.NDISEMU_BUG_CLONE_MODIFIED: ("NDISEMU_CLONE_MODIFIED",
                                     "FWPS clone's NB/MDL lists changed and not restored "
                                     "before the free"),
    lib.NDISEMU_BUG_REFERENCED: ("NDISEMU_REFERENCED",
                                 "NBL freed while FwpsReferenceNetBufferList0 references "
                                 "remain"),
    lib.NDISEMU_BUG_WRONG_POOL: ("NDISEMU_WRONG_POOL",
                                 "call not allowed on a pool created with these parameters"),
    lib.NDISEMU_BUG_MDL_LENGTH: ("NDISEMU_MDL_LENGTH",
                                 "MDL length adjusted beyond, or not restored to, its "
                                 "allocated length"),
    lib.NDISEMU_BUG_BAD_RANGE: ("NDISEMU_BAD_RANGE",
                                "buffer range is not inside live nonpaged pool"),
    lib.NDISEMU_BUG_BAD_PARAMETER: ("NDISEMU_BAD_PARAMETER",
                                    "parameter combination the documentation forbids"),
    lib.NDISEMU_BUG_STILL_DESCRIBED: ("NDISEMU_STILL_DESCRIBED",
                                      "under the verifier, memory, an MDL or an NBL freed while "
                                      "a live derived NBL still describes its bytes or shares "
                                      "its MDLs (P3 how many, P4 the last such NBL)"),
    lib.NDISEMU_BUG_COUNTER_LIMIT: ("NDISEMU_COUNTER_LIMIT",
                                    "a signed counter a driver can write (ChildRefCount, a "
                                    "reference count) is at LONG_MAX and would overflow"),
    lib.NDISEMU_BUG_NBL_NOT_OWNED: ("NDISEMU_NBL_NOT_OWNED",
                                    "NBL handed on, completed or returned by a layer that does "
                                    "not own it, twice, or the wrong way (a send returned, a "
                                    "receive indicated with RESOURCES returned), or freed (an NB "
                                    "of it too) while another layer owns it (P3 the owner's "
                                    "handle, P4 the caller's, 0 at a free)"),
    lib.NDISEMU_BUG_NBL_CHANGED: ("NDISEMU_NBL_CHANGED",
                                  "NBL, NB, MDL or info changed while another layer owned it, or "
                                  "an NB's Next changed or NB moved to another NBL by a layer "
                                  "other than its home (P3 the object changed, P4 the handle of "
                                  "the layer that changed it)"),
    lib.NDISEMU_BUG_SOURCE_HANDLE: ("NDISEMU_SOURCE_HANDLE",
                                    "NBL sent or indicated with a SourceHandle other than the "
                                    "sender's handle (its home's when passed on) (P3 found, P4 "
                                    "expected)"),
    lib.NDISEMU_BUG_BAD_HANDLE: ("NDISEMU_BAD_HANDLE",
                                 "NDIS handle that is not a live handle of a layer that may make "
                                 "the call (unbound, unknown, or another kind of layer's) (P2 "
                                 "the handle)"),
}

# Parameter 1 of 0xC4 for a call made above its maximum IRQL (ndisemu's own).
VERIFIER_IRQL = lib.NDISEMU_VERIFIER_IRQL

KIND_NAMES = {
    lib.NDISEMU_KIND_NBL: "NET_BUFFER_LIST",
    lib.NDISEMU_KIND_NB: "NET_BUFFER",
    lib.NDISEMU_KIND_MDL: "MDL",
    lib.NDISEMU_KIND_CONTEXT: "NET_BUFFER_LIST_CONTEXT",
    lib.NDISEMU_KIND_DATA: "data buffer",
    lib.NDISEMU_KIND_MEMORY: "memory block",
    lib.NDISEMU_KIND_NBL_POOL: "NBL pool",
    lib.NDISEMU_KIND_NB_POOL: "NB pool",
}


class BugCheck(Exception):
    """A Windows stop: `.code` (0x7C, 0xC4 or 0x50), `.parameters` (four
    ints, parameter 1 the subcode or faulting address) and a message naming
    the call, the object at its display address and the rule broken."""

    def __init__(self, code: int, parameters: tuple[int, int, int, int], message: str):
        super().__init__(message)
        self.code = code
        self.parameters = parameters

    @property
    def subcode(self) -> int:
        """Parameter 1: the 0x7C subcode (or 0xC4's rule, 0x50's address)."""
        return self.parameters[0]

    @property
    def name(self) -> str:
        """The 0x7C subcode's name (NDIS_BUGCHECK_... / NDISEMU_...), else ""."""
        return SUBCODES.get(self.subcode, ("", ""))[0] if self.code == 0x7C else ""


def from_native(call: str, bug, kernel=None) -> BugCheck:
    """Builds the exception from the core's record of a refused call.  With
    the `kernel` given and its trace on, the message ends with the last
    events of the objects the bug check names (ndisemu.trace)."""
    from ndisemu._native import ffi
    params = tuple(int(bug.parameters[i]) for i in range(4))
    rule = ffi.string(bug.rule).decode() if bug.rule != ffi.NULL else "bug check"
    return bugcheck(call, int(bug.code), params, rule, kind=int(bug.object_kind),
                    obj=int(bug.object), detail=ffi.string(bug.detail).decode(errors="replace"),
                    kernel=kernel)


def bugcheck(call: str, code: int, parameters: tuple[int, int, int, int], rule: str, *,
             kind: int = 0, obj: int = 0, detail: str = "", kernel=None) -> BugCheck:
    """A bug check raised by Python code (the emulated binding), worded as
    the core's are: `call`, the `rule` broken, the object (`kind`, a
    KIND_NAMES key, at display address `obj`), `detail`, then the stop code
    and `parameters`; with the `kernel`'s trace on, the last events of the
    objects it names."""
    params = tuple(int(p) for p in parameters)
    if code == PAGE_FAULT_IN_NONPAGED_AREA and not kind:
        where = f"address {obj:#018x}"       # a byte, not an object
    else:
        where = f"{KIND_NAMES.get(kind, 'object')} at {obj:#018x}" if obj else \
            KIND_NAMES.get(kind, "object")
    if code == BUGCODE_NDIS_DRIVER and params[0] == lib.NDISEMU_BUG_BAD_POINTER and params[3]:
        where += f" (found a live {KIND_NAMES.get(params[3], 'object')} there)"
    label = ("BUGCODE_NDIS_DRIVER" if code == BUGCODE_NDIS_DRIVER
             else STOP_CODES.get(code, ("STOP", ""))[0])
    said = f"{rule}: {where}" if obj or kind else rule
    if detail:
        said += f"; {detail}"
    message = (f"{call}: {said} "
               f"[bug check {code:#x} {label} ({', '.join(f'{p:#x}' for p in params)})]")
    if kernel is not None and kernel.trace:
        from ndisemu.trace import bugcheck_appendix
        message += bugcheck_appendix(kernel, _Named(obj, params))
    return BugCheck(code, params, message)


class _Named:
    """What trace.bugcheck_appendix reads of a bug: its object and parameters."""

    __slots__ = ("object", "parameters")

    def __init__(self, obj: int, parameters: tuple[int, ...]):
        self.object = obj
        self.parameters = parameters


def subcode_table() -> str:
    """The table of 0x7C subcodes, as the README shows it."""
    rows = ["| P1 | name | meaning |", "|---|---|---|"]
    for code, (name, meaning) in sorted(SUBCODES.items()):
        rows.append(f"| {code:#04x} | {name} | {meaning} |")
    return "\n".join(rows)


def stop_code_table() -> str:
    """The table of the other stop codes, as the README shows it."""
    rows = ["| code | name | when |", "|---|---|---|"]
    for code, (name, meaning) in sorted(STOP_CODES.items()):
        rows.append(f"| {code:#04x} | {name} | {meaning} |")
    return "\n".join(rows)
