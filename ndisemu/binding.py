"""The emulated binding: a protocol, its filters and a miniport inside one
Kernel, and the NBL ownership rules of the send and receive paths.
Reference: docs/binding.md.

    b = k.bind(protocol=P, filters=[F0, F1], miniport=ndisemu.LoopbackMiniport())
    k.NdisSendNetBufferLists(P.handle, nbl, 0, 0)

Each layer is a Python object with the NDIS handlers it implements, called
positionally in the documented order without the context argument; a
missing handler passes the NBLs through as NDIS does.  The binding keeps,
per NBL in flight, what ndis.sys's NBL tracker keeps: its home layer (whose
handle was in SourceHandle when it was first sent or indicated), its
current owner, and the path it travelled, one hop per hand-over with a
snapshot of what must not change while another layer owns it.  A
completion or return unwinds the path layer by layer; changes, NBs moved
or relinked, NBLs completed or returned by a layer that does not own them,
parents with children outstanding and leaks at unbind are bug checks naming
the layer and the NBL.  Every hand-over is recorded in the per-NBL trace.

Ownership bookkeeping is per hand-over, not a hot path, so it is Python;
every NBL, NB and MDL is checked live (``k.check_nbl``) before any field of
it is read, so a corrupted NBL is a bug check, never a crash.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from ndisemu import constants, layout
from ndisemu._args import pointer_arg, uint
from ndisemu._native import ffi, lib
from ndisemu.verifier import (
    BUGCODE_NDIS_DRIVER,
    DRIVER_VERIFIER_DETECTED_VIOLATION,
    VERIFIER_IRQL,
    bugcheck,
)

_C = constants.for_version()
DISPATCH_LEVEL = 2

# NDIS handles the binding gives its layers: values no arena can hold (a
# kernel-style range below the display addresses), the same run to run, so
# a SourceHandle written into an NBL leaves the arena's bytes deterministic.
HANDLE_BASE = 0xFFFFD00000000000
HANDLE_STEP = 0x1000

# What a binding call does with the NBLs it is given (CANCEL: with the
# sends marked with a cancel ID).
SEND, COMPLETE, INDICATE, RETURN = "send", "complete", "indicate", "return"
CANCEL = "cancel"

# The handler NDIS calls on the layer an operation delivers to, per kind.
HANDLERS: dict[str, dict[str, str]] = {
    "protocol": {COMPLETE: "ProtocolSendNetBufferListsComplete",
                 INDICATE: "ProtocolReceiveNetBufferLists"},
    "filter": {SEND: "FilterSendNetBufferLists", COMPLETE: "FilterSendNetBufferListsComplete",
               INDICATE: "FilterReceiveNetBufferLists", RETURN: "FilterReturnNetBufferLists",
               CANCEL: "FilterCancelSendNetBufferLists"},
    "miniport": {SEND: "MiniportSendNetBufferLists", RETURN: "MiniportReturnNetBufferLists",
                 CANCEL: "MiniportCancelSend"},
}

# Binding call -> (the kind of layer that makes it, what it does).  The
# cancel calls take a CancelId, not NBLs; the others' checks are _FLAGS's.
CALLS: dict[str, tuple[str, str]] = {
    "NdisSendNetBufferLists": ("protocol", SEND),
    "NdisFSendNetBufferLists": ("filter", SEND),
    "NdisMSendNetBufferListsComplete": ("miniport", COMPLETE),
    "NdisFSendNetBufferListsComplete": ("filter", COMPLETE),
    "NdisMIndicateReceiveNetBufferLists": ("miniport", INDICATE),
    "NdisFIndicateReceiveNetBufferLists": ("filter", INDICATE),
    "NdisReturnNetBufferLists": ("protocol", RETURN),
    "NdisFReturnNetBufferLists": ("filter", RETURN),
    "NdisCancelSendNetBufferLists": ("protocol", CANCEL),
    "NdisFCancelSendNetBufferLists": ("filter", CANCEL),
}
_FLAGS = {SEND: ("SendFlags", "NDIS_SEND_FLAGS_"),
          COMPLETE: ("SendCompleteFlags", "NDIS_SEND_COMPLETE_FLAGS_"),
          INDICATE: ("ReceiveFlags", "NDIS_RECEIVE_FLAGS_"),
          RETURN: ("ReturnFlags", "NDIS_RETURN_FLAGS_")}
_PATH = {SEND: "send", COMPLETE: "send", INDICATE: "receive", RETURN: "receive"}
_VERB = {SEND: "sent", COMPLETE: "completed", INDICATE: "indicated", RETURN: "returned"}
RESOURCES = _C["NDIS_RECEIVE_FLAGS_RESOURCES"]

# What a receive flag promises about every NBL of the indication: the info
# slot (and the struct and bit-field of it) that must be the same on all.
# SINGLE_QUEUE promises the same of receive queues, which are not modelled.
_SAME_ON_ALL = {
    "NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE": ("NetBufferListFrameType", None),
    "NDIS_RECEIVE_FLAGS_SINGLE_VLAN": ("Ieee8021QNetBufferListInfo",
                                       ("NDIS_NET_BUFFER_LIST_8021Q_INFO", "TagHeader.VlanId")),
}

# How many ended trips the binding remembers, to word "completed twice".
_FINISHED_KEPT = 4096

_NBL_PTR = ffi.typeof("NET_BUFFER_LIST *")
_NBL, _NB, _MDL = lib.NDISEMU_KIND_NBL, lib.NDISEMU_KIND_NB, lib.NDISEMU_KIND_MDL


def _key(ptr: Any) -> int:
    return int(ffi.cast("uintptr_t", ptr))


# -- what must not change while another layer owns an NBL --------------------------
#
# Left out, because a lower layer (or whoever owns the NBL now) may write
# them: the NBL's Next, Status, NdisReserved/ProtocolReserved/
# MiniportReserved/Scratch, Flags (its bits are split between those same
# owners: NBL_FLAGS_PROTOCOL_RESERVED, _MINIPORT_RESERVED, _NDIS_RESERVED and
# _SCRATCH cover all 32), the LSO info slot (the miniport's completion
# info), ndis.sys's slots past the driver's view; an NB's reserved areas;
# an MDL's Process.  MdlFlags and MappedSystemVa may change only as a
# mapping changes them (MmGetSystemAddressForMdlSafe on an unmapped MDL).

_NBL_FIELDS = ("FirstNetBuffer", "Context", "ParentNetBufferList", "NdisPoolHandle",
               "SourceHandle", "NblFlags", "ChildRefCount")
# (label, member): DataLength is compared as the SIZE_T it shares its bytes with.
_NB_FIELDS = (("Next", "Next"), ("CurrentMdl", "CurrentMdl"),
              ("CurrentMdlOffset", "CurrentMdlOffset"), ("DataLength", "stDataLength"),
              ("MdlChain", "MdlChain"), ("DataOffset", "DataOffset"),
              ("ChecksumBias", "ChecksumBias"), ("NdisPoolHandle", "NdisPoolHandle"),
              ("DataPhysicalAddress", "DataPhysicalAddress"),
              ("SharedMemoryInfo", "SharedMemoryInfo"))
_MDL_FIELDS = ("Next", "Size", "StartVa", "ByteCount", "ByteOffset")
_MAPPED = _C["MDL_MAPPED_TO_SYSTEM_VA"] | _C["MDL_SOURCE_IS_NONPAGED_POOL"]
_MAPPING_BITS = _C["MDL_MAPPED_TO_SYSTEM_VA"] | _C["MDL_PARTIAL_HAS_BEEN_MAPPED"]
_READ_ONLY = {"send": _C["NDIS_NBL_FLAGS_SEND_READ_ONLY"],
              "receive": _C["NDIS_NBL_FLAGS_RECV_READ_ONLY"]}


def _ranges(struct: str, fields: Sequence[tuple[str, str]]) -> tuple[tuple[str, int, int], ...]:
    members = dict(ffi.typeof(struct).fields)
    return tuple((label, members[name].offset, ffi.sizeof(members[name].type))
                 for label, name in fields)


_NB_RANGES = _ranges("NET_BUFFER", _NB_FIELDS)
_MDL_RANGES = _ranges("MDL", [(name, name) for name in _MDL_FIELDS])
_NBL_SIZE, _NB_SIZE, _MDL_SIZE = (ffi.sizeof(s) for s in ("NET_BUFFER_LIST", "NET_BUFFER",
                                                          "MDL"))


@cache
def _nbl_ranges(ndis_version: str) -> tuple[tuple[str, int, int], ...]:
    """The NBL's fields and the driver view's info slots but LSO's."""
    enum = layout.profile("x64", ndis_version)["enums"]["NDIS_NET_BUFFER_LIST_INFO"]
    names: dict[int, str] = {}
    for name, index in sorted(enum.items(), key=lambda item: item[1]):
        names.setdefault(index, name)
    info = ffi.offsetof("NET_BUFFER_LIST", "NetBufferListInfo")
    slot = ffi.sizeof("void *")
    lso = enum["TcpLargeSendNetBufferListInfo"]
    slots = tuple((f"NetBufferListInfo[{i:#x}] ({names[i]})", info + i * slot, slot)
                  for i in range(enum["MaxNetBufferListInfo"]) if i != lso)
    return _ranges("NET_BUFFER_LIST", [(name, name) for name in _NBL_FIELDS]) + slots


def _cut(raw: bytes, ranges: tuple[tuple[str, int, int], ...]) -> tuple[bytes, ...]:
    return tuple(raw[offset:offset + size] for _, offset, size in ranges)


class _Snapshot:
    """An NBL as it was handed over: its fields, each NB's, each MDL's
    (with its mapping state apart) and, when the NBL is marked read-only
    for its path, each NB's used bytes."""

    __slots__ = ("nbl", "nbs", "mdls", "data")

    def __init__(self, k: Any, nbl: Any, path: str):
        self.nbl = _cut(ffi.buffer(nbl, _NBL_SIZE)[:], _nbl_ranges(k.ndis_version))
        nbs, mdls = [], []
        nb = nbl.FirstNetBuffer
        while nb != ffi.NULL:
            nbs.append((_key(nb), _cut(ffi.buffer(nb, _NB_SIZE)[:], _NB_RANGES)))
            mdl = nb.MdlChain
            while mdl != ffi.NULL:
                mdls.append((_key(mdl), _cut(ffi.buffer(mdl, _MDL_SIZE)[:], _MDL_RANGES),
                             mdl.MdlFlags & 0xFFFF, _key(mdl.MappedSystemVa),
                             _key(mdl.StartVa) + mdl.ByteOffset))
                mdl = mdl.Next
            nb = nb.Next
        self.nbs, self.mdls = tuple(nbs), tuple(mdls)
        read_only = nbl.NblFlags & _READ_ONLY[path]
        self.data = tuple(k.nb_bytes(ffi.cast("NET_BUFFER *", key)) for key, _ in nbs) \
            if read_only else None


def _value(k: Any, raw: bytes) -> str:
    """A field's bytes as a number, pointers into the arena as display addresses."""
    value = int.from_bytes(raw, "little")
    if len(raw) == 8 and value:
        value = lib.ndisemu_display(k._k, ffi.cast("void *", value))
    return f"{value:#x}"


def _field_change(k: Any, ranges: Any, old: tuple[bytes, ...],
                  new: tuple[bytes, ...]) -> str | None:
    """Every changed field of one object, or None."""
    changes = [f"{label} {_value(k, a)} -> {_value(k, b)}"
               for (label, _, _), a, b in zip(ranges, old, new, strict=True) if a != b]
    return ", ".join(changes) or None


def _remapped(old: tuple, new: tuple) -> bool:
    """True when an MDL's flags and MappedSystemVa differ only as mapping
    it to system space changes them (allowed to whoever holds it)."""
    _, _, flags, mapped, va = old
    _, _, new_flags, new_mapped, _ = new
    if (flags, mapped) == (new_flags, new_mapped):
        return True
    return (not flags & _MAPPED and new_flags & _C["MDL_MAPPED_TO_SYSTEM_VA"]
            and (new_flags & ~flags) & ~_MAPPING_BITS == 0 and not flags & ~new_flags
            and new_mapped == va)


def _difference(k: Any, old: _Snapshot, new: _Snapshot) -> tuple[int, int, str] | None:
    """The first change between two snapshots of one NBL: (the kind of the
    object changed, its raw address, what changed), or None."""
    ranges = _nbl_ranges(k.ndis_version)
    change = _field_change(k, ranges, old.nbl, new.nbl)
    if change:
        return _NBL, 0, change
    if [a for a, _ in old.nbs] != [a for a, _ in new.nbs]:
        return _NBL, 0, "its NET_BUFFER list (an NB's Next)"
    for (address, a), (_, b) in zip(old.nbs, new.nbs, strict=True):
        change = _field_change(k, _NB_RANGES, a, b)
        if change:
            return _NB, address, change
    if [m[0] for m in old.mdls] != [m[0] for m in new.mdls]:
        return _NBL, 0, "the MDL chain of one of its NBs"
    for a, b in zip(old.mdls, new.mdls, strict=True):
        changes = [_field_change(k, _MDL_RANGES, a[1], b[1])]
        if not _remapped(a, b):
            changes.append(f"MdlFlags {a[2]:#x} -> {b[2]:#x}")
            if a[3] != b[3]:
                changes.append(f"MappedSystemVa {_value(k, a[3].to_bytes(8, 'little'))} -> "
                               f"{_value(k, b[3].to_bytes(8, 'little'))}")
        if any(changes):
            return _MDL, a[0], ", ".join(c for c in changes if c)
    if old.data is not None:
        for (address, _), a, b in zip(old.nbs, old.data, new.data or old.data, strict=True):
            if a != b:
                at = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y) \
                    if len(a) == len(b) else min(len(a), len(b))
                return _NB, address, f"its data at +{at:#x} (the NBL is marked read-only)"
    return None


# -- layers and trips --------------------------------------------------------------

class _Layer:
    """One layer of a binding: its name (protocol, filter0, ..., miniport),
    the user's object, its handle and the handlers it registered."""

    __slots__ = ("name", "obj", "kind", "position", "handle", "key", "handlers")

    def __init__(self, name: str, obj: Any, kind: str, position: int, key: int):
        self.name, self.obj, self.kind, self.position = name, obj, kind, position
        self.key = key
        self.handle = ffi.cast("void *", key)
        self.handlers: dict[str, Any] = {}
        for op, handler in HANDLERS[kind].items():
            fn = getattr(obj, handler, None)
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: {handler} must be callable")
            if fn is not None:
                self.handlers[op] = fn

    def __repr__(self) -> str:
        return f"{self.name} {self.key:#x}"


class _Hop:
    """One hand-over on an NBL's path: the layer that handed it on (and
    gets it back when the path unwinds), what the NBL was then, its Next,
    and whether it went with NDIS_RECEIVE_FLAGS_RESOURCES."""

    __slots__ = ("layer", "snapshot", "next", "resources")

    def __init__(self, layer: _Layer, snapshot: _Snapshot, next_key: int, resources: bool):
        self.layer, self.snapshot, self.next, self.resources = (layer, snapshot, next_key,
                                                               resources)


class _Trip:
    """An NBL in flight: its path (send or receive), current owner, hops
    (the first is its home's) and the NBs it left home with."""

    __slots__ = ("nbl", "path", "owner", "hops", "nbs")

    def __init__(self, nbl: Any, path: str, nbs: tuple[int, ...]):
        self.nbl, self.path, self.nbs = nbl, path, nbs
        self.owner: _Layer | None = None
        self.hops: list[_Hop] = []

    @property
    def home(self) -> _Layer:
        return self.hops[0].layer


def _nb_keys(nbl: Any) -> tuple[int, ...]:
    out = []
    nb = nbl.FirstNetBuffer
    while nb != ffi.NULL:
        out.append(_key(nb))
        nb = nb.Next
    return tuple(out)


class Binding:
    """A protocol bound through its filters to a miniport, inside one Kernel
    (``k.bind(...)`` makes it).  Layers are named ``protocol``, ``filter0``,
    ``filter1``, ... from the top, and ``miniport``."""

    def __init__(self, kernel: Any, protocol: Any, filters: Sequence[Any], miniport: Any):
        self.kernel = kernel
        objects = [("protocol", protocol, "protocol")]
        objects += [(f"filter{i}", f, "filter") for i, f in enumerate(filters)]
        objects.append(("miniport", miniport, "miniport"))
        seen: set[int] = set()
        for name, obj, kind in objects:
            if obj is None:
                raise TypeError(f"{name} must be an object with NDIS handlers, not None")
            if id(obj) in seen:
                raise ValueError(f"{name}: one object cannot be two layers of a binding "
                                 "(it has one handle)")
            seen.add(id(obj))
            _check_handler_names(name, obj, kind)
        first = kernel._handles_made
        self.layers = [_Layer(name, obj, kind, i, HANDLE_BASE + (first + i + 1) * HANDLE_STEP)
                       for i, (name, obj, kind) in enumerate(objects)]
        for layer in self.layers:
            try:
                layer.obj.handle = layer.handle
            except AttributeError:
                raise TypeError(f"{layer.name}: cannot set .handle on a "
                                f"{type(layer.obj).__name__}") from None
        kernel._handles_made = first + len(self.layers)
        # The free calls are the core's: it learns the layers, and which NBLs
        # are in flight (_own), to refuse freeing one that is (0x7C/0x92).
        lib.ndisemu_bind_layers(kernel._k, len(self.layers), self.layers[0].key, HANDLE_STEP)
        self._by_key = {layer.key: layer for layer in self.layers}
        self._trips: dict[int, _Trip] = {}          # by NBL address, in order of departure
        self._nb_trip: dict[int, _Trip] = {}        # NB address -> the trip it left home on
        # NBL address -> how its last trip ended and its home then (for the wording)
        self._finished: OrderedDict[int, tuple[str, _Layer]] = OrderedDict()
        self.live = True
        if isinstance(miniport, LoopbackMiniport):
            miniport._kernel = kernel

    def __repr__(self) -> str:
        state = "live" if self.live else "unbound"
        return f"<Binding {' / '.join(map(repr, self.layers))} ({state})>"

    @property
    def protocol(self) -> Any:
        """The protocol's object."""
        return self.layers[0].obj

    @property
    def filters(self) -> list[Any]:
        """The filters' objects, from the protocol down."""
        return [layer.obj for layer in self.layers[1:-1]]

    @property
    def miniport(self) -> Any:
        """The miniport's object."""
        return self.layers[-1].obj

    # -- what users look at ----------------------------------------------------

    def pending(self) -> dict[str, list[Any]]:
        """{layer name: [NET_BUFFER_LIST * it owns]} for every layer, NBLs in
        the order they left home (what !ndiskd.pendingnbls lists)."""
        out: dict[str, list[Any]] = {layer.name: [] for layer in self.layers}
        for trip in self._trips.values():
            out[trip.owner.name].append(trip.nbl)
        return out

    def owner(self, nbl: Any) -> str | None:
        """The name of the layer that owns `nbl` now, None when it is not in
        flight (at home, or never sent or indicated)."""
        trip = self._trips.get(_key(pointer_arg(nbl, "nbl")))
        return trip.owner.name if trip else None

    def home(self, nbl: Any) -> str | None:
        """The name of `nbl`'s home layer while it is in flight, else None."""
        trip = self._trips.get(_key(pointer_arg(nbl, "nbl")))
        return trip.home.name if trip else None

    def complete_pending(self, count: int | None = None) -> int:
        """Has the LoopbackMiniport complete the sends it deferred (the
        oldest `count` of them, all by default) in one
        NdisMSendNetBufferListsComplete; returns how many."""
        if not isinstance(self.miniport, LoopbackMiniport):
            raise TypeError("complete_pending() needs a LoopbackMiniport as the miniport")
        self._require_live("complete_pending")
        return self.miniport.complete(count)

    def unbind(self) -> None:
        """Ends the binding.  An NBL still owned by a layer other than its
        home is a leak: BugCheck 0x7C/0x27 with parameter 2 = 1 (as
        Microsoft documents NDIS_BUGCHECK_LEAKED_NBL), naming the layer
        and the NBL; the binding then stays live.  Its handles are dead
        afterwards (0x7C/0x95)."""
        self._require_live("unbind")
        if self._trips:
            trip = next(iter(self._trips.values()))
            counts = ", ".join(f"{name} {len(nbls)}" for name, nbls in self.pending().items())
            raise bugcheck("unbind", BUGCODE_NDIS_DRIVER,
                           (lib.NDIS_BUGCHECK_LEAKED_NBL, 1, 0, 0),
                           "NBL leaked: not back at its home layer at unbind", kind=_NBL,
                           obj=self._display(trip.nbl),
                           detail=f"{trip.owner.name} owns it, its home is {trip.home.name}; "
                                  f"{len(self._trips)} NBL(s) in flight ({counts})",
                           kernel=self.kernel)
        self._end()

    def abandon(self) -> None:
        """Ends the binding whatever is in flight, as a bug check ends a
        machine: each NBL in flight is back at its home layer as it is now
        (no handler is called, nothing is checked), so its home can free it,
        and the handles are dead.  For a test that goes on after a BugCheck
        left NBLs in flight; a test that means to check for leaks calls
        unbind()."""
        self._require_live("abandon")
        for trip in list(self._trips.values()):
            self._own(trip, trip.home)
        self._trips.clear()
        self._nb_trip.clear()
        self._end()

    def _end(self) -> None:
        """The binding is over: its handles are dead, the core forgets its layers."""
        self.live = False
        lib.ndisemu_bind_layers(self.kernel._k, 0, 0, 0)
        self.kernel._binding = None

    def _require_live(self, what: str) -> None:
        if not self.live:
            raise ValueError(f"{what}(): the binding was unbound")

    # -- the calls -------------------------------------------------------------

    def _call(self, call: str, layer: _Layer, head: Any, port: int, count: int | None,
              flags: int) -> None:
        """One binding call by `layer`, its arguments already checked for
        type and range (BindingCalls does that)."""
        k = self.kernel
        op = CALLS[call][1]
        name, prefix = _FLAGS[op]
        if flags & k.constants[prefix + "DISPATCH_LEVEL"] and k.irql != DISPATCH_LEVEL:
            raise self._bug(call, lib.NDISEMU_BUG_BAD_PARAMETER, head, k.irql, DISPATCH_LEVEL,
                            f"{name} has {prefix}DISPATCH_LEVEL but the IRQL is not "
                            "DISPATCH_LEVEL", f"{layer.name} called at IRQL {k.irql}")
        nbls = self._chain(call, head)
        if count is not None and count != len(nbls):
            raise self._bug(call, lib.NDISEMU_BUG_BAD_PARAMETER, head, count, len(nbls),
                            "NumberOfNetBufferLists is not the number of NBLs in the chain",
                            f"{layer.name} said {count}, the chain holds {len(nbls)}")
        if op == INDICATE:
            self._check_same_on_all(call, layer, nbls, flags)
        if op in (SEND, INDICATE):
            self._hand_out(call, layer, op, nbls, port, flags)
        else:
            self._hand_back(call, layer, op, nbls, flags)

    def _cancel(self, layer: _Layer, cancel_id: Any) -> None:
        """NdisCancelSendNetBufferLists / NdisFCancelSendNetBufferLists by
        `layer`: the next layer down with a cancel handler is called (filters
        without one are passed, as NDIS passes them); nothing happens when
        the miniport has none."""
        target = self._next_layer(layer, CANCEL)
        handler = target.handlers.get(CANCEL)
        if handler:
            handler(cancel_id)

    def _check_same_on_all(self, call: str, layer: _Layer, nbls: list[Any],
                           flags: int) -> None:
        """NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE and _SINGLE_VLAN say every NBL
        of the indication has the same EtherType or VLAN: 0x7C/0x8F if not."""
        k = self.kernel
        for flag, (slot, field) in _SAME_ON_ALL.items():
            if not flags & k.constants[flag]:
                continue
            values = [_info_field(k, nbl, slot, field) for nbl in nbls]
            for nbl, value in zip(nbls, values, strict=True):
                if value != values[0]:
                    what = field[1].rsplit(".", 1)[-1] if field else slot
                    raise self._bug(call, lib.NDISEMU_BUG_BAD_PARAMETER, nbl, value, values[0],
                                    f"ReceiveFlags has {flag} but the NBLs differ",
                                    f"{layer.name} indicated {what} {values[0]:#x} and "
                                    f"{value:#x}")

    def _chain(self, call: str, head: Any) -> list[Any]:
        """The NBLs on Next from `head`, each checked whole (NBs, MDLs)."""
        k = self.kernel
        nbls, seen = [], set()
        nbl = head
        while True:
            if lib.ndisemu_check_nbl(k._k, nbl):
                raise k._raise(call)
            if _key(nbl) in seen:
                raise self._bug(call, lib.NDISEMU_BUG_BAD_PARAMETER, nbl, 0, 0,
                                "NBL chain loops back on itself", f"after {len(nbls)} NBL(s)")
            seen.add(_key(nbl))
            nbls.append(nbl)
            nbl = nbl.Next
            if nbl == ffi.NULL:
                return nbls

    def _next_layer(self, layer: _Layer, op: str) -> _Layer:
        """Where `op` by `layer` delivers: the nearest layer on the way with
        the handler (filters without it are passed through), else the end
        of the stack (the miniport down, the protocol up)."""
        step = 1 if op in (SEND, CANCEL) else -1
        for position in range(layer.position + step, len(self.layers) - 1 if step > 0 else 0,
                              step):
            if op in self.layers[position].handlers:
                return self.layers[position]
        return self.layers[-1] if step > 0 else self.layers[0]

    def _hand_out(self, call: str, layer: _Layer, op: str, nbls: list[Any], port: int,
                  flags: int) -> None:
        """A send down or an indication up: every NBL checked, then all
        handed to the next layer with a snapshot, then its handler called."""
        k = self.kernel
        path = _PATH[op]
        resources = bool(op == INDICATE and flags & RESOURCES)
        trips = [self._check_out(call, layer, nbl, op, resources) for nbl in nbls]
        self._check_shared_nbs(call, layer, nbls)
        target = self._next_layer(layer, op)
        for nbl, known in zip(nbls, trips, strict=True):
            trip = known or self._depart(nbl, path)
            trip.hops.append(_Hop(layer, _Snapshot(k, nbl, path), _key(nbl.Next), resources))
            self._own(trip, target)
            k._trace_handover(nbl, layer.handle, target.handle, call)
        handler = target.handlers.get(op)
        if op == SEND:
            if handler:
                handler(nbls[0], port, flags)
            else:                        # a miniport without a send handler: done at once
                _set_status(k, nbls, _C["NDIS_STATUS_SUCCESS"])
                self._hand_back(call, target, COMPLETE, nbls, self._dispatch(COMPLETE))
            return
        if handler:
            handler(nbls[0], port, len(nbls), flags)
        elif not resources:              # a protocol without a receive handler drops them
            self._hand_back(call, target, RETURN, nbls, self._dispatch(RETURN))
        if resources:
            self._resources_back(call, layer, target, nbls)

    def _check_out(self, call: str, layer: _Layer, nbl: Any, op: str,
                   resources: bool) -> _Trip | None:
        """The rules for handing `nbl` on: its trip (None for a new one)."""
        trip = self._trips.get(_key(nbl))
        source = _key(nbl.SourceHandle)
        if trip is None:
            if source != layer.key:
                raise self._bug(call, lib.NDISEMU_BUG_SOURCE_HANDLE, nbl, source, layer.key,
                                "SourceHandle is not the sender's handle",
                                f"{layer.name} sent it with SourceHandle "
                                f"{self._layer_text(source)}")
            self._check_nbs(call, layer, nbl, None)
            return None
        self._check_owner(call, layer, nbl, trip, op)
        if source != trip.home.key:
            raise self._bug(call, lib.NDISEMU_BUG_SOURCE_HANDLE, nbl, source, trip.home.key,
                            "SourceHandle changed by a layer that did not originate the NBL",
                            f"{layer.name} passed it on with SourceHandle "
                            f"{self._layer_text(source)}; its home is {trip.home.name}")
        if trip.hops[-1].resources and not resources:
            raise self._bug(call, lib.NDISEMU_BUG_BAD_PARAMETER, nbl, 0, RESOURCES,
                            "NBL indicated with NDIS_RECEIVE_FLAGS_RESOURCES passed on without "
                            "it", f"{layer.name} would keep it past the indication")
        self._check_nbs(call, layer, nbl, trip)
        return trip

    def _check_owner(self, call: str, layer: _Layer, nbl: Any, trip: _Trip, op: str) -> None:
        """`layer` must own `nbl`, and `op` must be one of its path's."""
        if trip.owner is not layer:
            raise self._bug(call, lib.NDISEMU_BUG_NBL_NOT_OWNED, nbl, trip.owner.key, layer.key,
                            f"NBL {_VERB[op]} by a layer that does not own it",
                            f"{layer.name} called; {trip.owner.name} owns it (its home is "
                            f"{trip.home.name})")
        if trip.path != _PATH[op]:
            what = ("NBL on the send path indicated or returned" if trip.path == "send" else
                    "NBL on the receive path sent or completed")
            raise self._bug(call, lib.NDISEMU_BUG_NBL_NOT_OWNED, nbl, trip.owner.key, layer.key,
                            what, f"{layer.name} owns it from its home {trip.home.name}'s "
                                  f"{'send' if trip.path == 'send' else 'indication'}")

    def _check_nbs(self, call: str, layer: _Layer, nbl: Any, trip: _Trip | None) -> None:
        """Only an NB's creator may move it between NBLs, and the owner of
        an NBL must not change an NB's Next: checked as it is handed on."""
        nbs = _nb_keys(nbl)
        for nb in nbs:
            other = self._nb_trip.get(nb)
            if other is not None and other is not trip:
                raise self._bug(call, lib.NDISEMU_BUG_NBL_CHANGED, nbl, self._display(nb),
                                layer.key, "NET_BUFFER moved onto another NBL",
                                f"{layer.name} handed it on with NET_BUFFER "
                                f"{self._display(nb):#x}, which left {other.home.name} on "
                                f"NET_BUFFER_LIST {self._display(other.nbl):#x} (owned by "
                                f"{other.owner.name})")
        if trip is not None and nbs != trip.nbs:
            changed = next((nb for nb, was in zip(nbs, trip.nbs, strict=False) if nb != was),
                           _key(nbl))
            raise self._bug(call, lib.NDISEMU_BUG_NBL_CHANGED, nbl, self._display(changed),
                            layer.key, "NET_BUFFER list changed (an NB's Next) by a layer "
                            "other than the NBL's home",
                            f"{layer.name} handed it on with {len(nbs)} NB(s), it left "
                            f"{trip.home.name} with {len(trip.nbs)}")

    def _check_shared_nbs(self, call: str, layer: _Layer, nbls: list[Any]) -> None:
        """One NB on two NBLs of a chain handed on."""
        on: dict[int, Any] = {}
        for nbl in nbls:
            for nb in _nb_keys(nbl):
                if on.setdefault(nb, nbl) is not nbl:
                    raise self._bug(call, lib.NDISEMU_BUG_NBL_CHANGED, nbl, self._display(nb),
                                    layer.key, "NET_BUFFER moved onto another NBL",
                                    f"{layer.name} handed it on with NET_BUFFER "
                                    f"{self._display(nb):#x}, which is also on NET_BUFFER_LIST "
                                    f"{self._display(on[nb]):#x}")

    def _hand_back(self, call: str, layer: _Layer, op: str, nbls: list[Any],
                   flags: int) -> None:
        """A completion or a return: every NBL checked and its path unwound
        to the layer it goes back to, then each of those called with its
        NBLs (chain order kept; a completion may mix several)."""
        k = self.kernel
        plans = [self._check_back(call, layer, op, nbl) for nbl in nbls]
        groups: dict[int, tuple[_Layer, list[Any]]] = {}
        for nbl, (trip, target, hops) in zip(nbls, plans, strict=True):
            del trip.hops[-hops:]
            self._own(trip, target)
            k._trace_handover(nbl, layer.handle, target.handle, call)
            if not trip.hops:
                self._arrive(trip, "completed" if op == COMPLETE else "returned")
            groups.setdefault(target.position, (target, []))[1].append(nbl)
        for target, group in groups.values():
            for nbl, following in zip(group, group[1:] + [ffi.NULL], strict=True):
                nbl.Next = following
            handler = target.handlers.get(op)
            if handler:
                handler(group[0], flags)

    def _check_back(self, call: str, layer: _Layer, op: str,
                    nbl: Any) -> tuple[_Trip, _Layer, int]:
        """The rules for completing or returning `nbl`: its trip, the layer
        it goes back to and how many hops that unwinds."""
        trip = self._trips.get(_key(nbl))
        verb = "completed" if op == COMPLETE else "returned"
        if trip is None:
            ended, home = self._finished.get(_key(nbl), ("", None))
            if home is layer:
                rule = f"NBL {verb} by the layer that originated it"
                detail = f"{ended}: {layer.name} must not pass it on"
            else:
                rule = (f"NBL {verb} twice" if ended.startswith(verb) else
                        "NBL indicated with NDIS_RECEIVE_FLAGS_RESOURCES returned"
                        if ended.startswith("its indication") and op == RETURN else
                        f"NBL {verb} while not in flight")
                detail = (f"{layer.name} called; "
                          f"{ended or 'it was not sent or indicated through this binding'}")
            raise self._bug(call, lib.NDISEMU_BUG_NBL_NOT_OWNED, nbl, 0, layer.key, rule, detail)
        self._check_owner(call, layer, nbl, trip, op)
        if trip.hops[-1].resources:
            raise self._bug(call, lib.NDISEMU_BUG_NBL_NOT_OWNED, nbl, layer.key, layer.key,
                            "NBL indicated with NDIS_RECEIVE_FLAGS_RESOURCES returned",
                            f"it goes back to {trip.hops[-1].layer.name} when the indication "
                            f"to {layer.name} returns, with no return call")
        children = nbl.ChildRefCount
        if children:
            raise self._bug(call, lib.NDISEMU_BUG_CHILDREN_OUTSTANDING, nbl,
                            children & 0xFFFFFFFFFFFFFFFF, 0,
                            f"parent NBL {verb} while its ChildRefCount is not 0",
                            f"{layer.name} {verb} it with ChildRefCount {children}: every "
                            "child must be back and freed first")
        self._check_nbs(call, layer, nbl, trip)
        # Unwind: each hop's layer gets the NBL back unless it lacks the
        # handler (passed through) and is not the home.
        lower, hops = layer, 0
        for hop in reversed(trip.hops):
            hops += 1
            self._compare(call, nbl, hop, lower, trip.path)
            if hops == len(trip.hops) or op in hop.layer.handlers:
                return trip, hop.layer, hops
            lower = hop.layer
        raise AssertionError("a trip always has its home hop")

    def _resources_back(self, call: str, giver: _Layer, receiver: _Layer,
                        nbls: list[Any]) -> None:
        """The end of an indication with NDIS_RECEIVE_FLAGS_RESOURCES: the
        NBLs go back to the indicator at once, as they were, chain
        included."""
        k = self.kernel
        trips = []
        for nbl in nbls:
            if lib.ndisemu_check_nbl(k._k, nbl):
                raise k._raise(call)
            trip = self._trips.get(_key(nbl))
            if trip is None or trip.owner is not receiver or trip.hops[-1].layer is not giver:
                raise self._bug(call, lib.NDISEMU_BUG_NBL_NOT_OWNED, nbl,
                                trip.owner.key if trip else 0, receiver.key,
                                "NBL indicated with NDIS_RECEIVE_FLAGS_RESOURCES not held by "
                                "its receiver when the indication returned",
                                f"{receiver.name} was indicated it by {giver.name}")
            hop = trip.hops[-1]
            self._compare(call, nbl, hop, receiver, trip.path)
            if _key(nbl.Next) != hop.next:
                raise self._bug(call, lib.NDISEMU_BUG_NBL_CHANGED, nbl, self._display(nbl),
                                receiver.key, "NBL chain not put back as it was indicated "
                                "with NDIS_RECEIVE_FLAGS_RESOURCES",
                                f"{receiver.name} left Next "
                                f"{_value(k, _key(nbl.Next).to_bytes(8, 'little'))}, it was "
                                f"{_value(k, hop.next.to_bytes(8, 'little'))}")
            trips.append(trip)
        for nbl, trip in zip(nbls, trips, strict=True):
            trip.hops.pop()
            self._own(trip, giver)
            k._trace_handover(nbl, receiver.handle, giver.handle, call)
            if not trip.hops:
                self._arrive(trip, "its indication with NDIS_RECEIVE_FLAGS_RESOURCES returned")

    def _compare(self, call: str, nbl: Any, hop: _Hop, lower: _Layer, path: str) -> None:
        """What `hop.layer` handed over must be what comes back to it; what
        changed was changed by `lower`, the layer it handed it to (changes
        further down were found when they came back to `lower`)."""
        found = _difference(self.kernel, hop.snapshot, _Snapshot(self.kernel, nbl, path))
        if found:
            kind, address, change = found
            what = {_NBL: "NET_BUFFER_LIST", _NB: "NET_BUFFER", _MDL: "MDL"}[kind]
            changed = self._display(address or nbl)
            where = "" if not address else f"{what} {changed:#x} "
            raise self._bug(call, lib.NDISEMU_BUG_NBL_CHANGED, nbl, changed, lower.key,
                            "NBL changed while another layer owned it",
                            f"{where}{change}: changed while {lower.name} owned it (handed "
                            f"over by {hop.layer.name})")

    def _own(self, trip: _Trip, owner: _Layer) -> None:
        """`owner` owns the NBL of `trip` now: the core marks it and the NBs
        it left home with as in flight (their frees refused), or as home."""
        trip.owner = owner
        home = trip.hops[0].layer if trip.hops else owner
        away, at = (0, 0) if owner is home else (owner.position + 1, home.position + 1)
        k = self.kernel
        if lib.ndisemu_set_away(k._k, trip.nbl, _NBL, away, at):
            raise k._raise("binding")
        for nb in trip.nbs:
            pointer = ffi.cast("NET_BUFFER *", nb)
            # an NB unlinked and gone is found by the hand-over checks
            if lib.ndisemu_object_kind(k._k, pointer) == _NB:
                lib.ndisemu_set_away(k._k, pointer, _NB, away, at)

    def _depart(self, nbl: Any, path: str) -> _Trip:
        trip = _Trip(ffi.cast("NET_BUFFER_LIST *", nbl), path, _nb_keys(nbl))
        self._trips[_key(nbl)] = trip
        for nb in trip.nbs:
            self._nb_trip[nb] = trip
        self._finished.pop(_key(nbl), None)
        return trip

    def _arrive(self, trip: _Trip, how: str) -> None:
        """The NBL is home: its trip ends."""
        key = _key(trip.nbl)
        del self._trips[key]
        for nb in trip.nbs:
            if self._nb_trip.get(nb) is trip:
                del self._nb_trip[nb]
        self._finished[key] = (f"{how} to {trip.owner.name}", trip.owner)
        while len(self._finished) > _FINISHED_KEPT:
            self._finished.popitem(last=False)

    # -- wording ---------------------------------------------------------------

    def _display(self, ptr: Any) -> int:
        return lib.ndisemu_display(self.kernel._k, ffi.cast("void *", ptr))

    def _layer_text(self, key: int) -> str:
        if not key:
            return "NULL (not set)"
        layer = self._by_key.get(key)
        return f"{key:#x} ({layer.name}'s)" if layer else f"{key:#x}"

    def _dispatch(self, op: str) -> int:
        """The flags NDIS passes on its own calls: the dispatch-level hint
        when the IRQL is DISPATCH_LEVEL."""
        k = self.kernel
        return k.constants[_FLAGS[op][1] + "DISPATCH_LEVEL"] if k.irql == DISPATCH_LEVEL else 0

    def _bug(self, call: str, subcode: int, nbl: Any, p3: int, p4: int, rule: str,
             detail: str) -> Exception:
        return bugcheck(call, BUGCODE_NDIS_DRIVER, (subcode, self._display(nbl), p3, p4), rule,
                        kind=_NBL, obj=self._display(nbl), detail=detail, kernel=self.kernel)


def _check_handler_names(name: str, obj: Any, kind: str) -> None:
    """A handler of another kind of layer, or a misspelt one, would never be
    called: refused at bind time rather than passed through silently."""
    mine = set(HANDLERS[kind].values())
    known = {h for names in HANDLERS.values() for h in names.values()}
    for attr in dir(obj):
        if not attr.startswith(("Protocol", "Filter", "Miniport")) or attr in mine:
            continue
        if attr in known:
            raise ValueError(f"{name}: {attr} is not a {kind}'s handler "
                             f"(a {kind} has {', '.join(sorted(HANDLERS[kind].values()))})")
        if "NetBufferList" in attr or attr.endswith("CancelSend"):
            raise ValueError(f"{name}: {attr} is not an NDIS handler name (a {kind} has "
                             f"{', '.join(sorted(HANDLERS[kind].values()))})")


def _info_field(k: Any, nbl: Any, slot: str, field: tuple[str, str] | None) -> int:
    """An info slot's value, or one bit-field (struct, field) of what it holds."""
    value = _key(nbl.NetBufferListInfo[k.info_index(k.constants[slot])])
    if field is None:
        return value
    bits = layout.profile("x64", k.ndis_version)["structs"][field[0]]["fields"][field[1]]
    return value >> bits["bit_offset"] & ((1 << bits["bit_size"]) - 1)


def _set_status(k: Any, nbls: list[Any], status: int) -> None:
    """NET_BUFFER_LIST_STATUS of each NBL (a signed NDIS_STATUS in memory)."""
    signed = status - (1 << 32) if status >> 31 else status
    for nbl in nbls:
        k.view(nbl).Status = signed


class DriverLayer:
    """A layer of the binding whose handlers are driver C code.

    ``DriverLayer(d, "filter", context)`` has, for each handler of that kind
    of layer (``FilterSendNetBufferLists``, ...) that the loaded driver `d`
    defines, a method calling the C function with ``.context`` first, as
    NDIS calls a handler with the driver's context (FilterModuleContext,
    ProtocolBindingContext, MiniportAdapterContext).  `handlers` maps a
    handler's NDIS name to the driver's function where the two differ.
    Bind it like any layer; the C code learns its handle from ``.handle``
    once bound, and ``.context`` may be set then, as an attach routine
    returns its context once it has the handle.  The C code makes the
    binding's calls with the handle through <ndis.h>."""

    def __init__(self, driver: Any, kind: str, context: Any = None,
                 handlers: dict[str, str] | None = None):
        from ndisemu.driver import LoadedDriver
        if not isinstance(driver, LoadedDriver):
            raise TypeError(f"DriverLayer takes a driver loaded with k.load(), not "
                            f"{type(driver).__name__}")
        if kind not in HANDLERS:
            raise ValueError(f"kind must be one of {', '.join(HANDLERS)}, not {kind!r}")
        names = set(HANDLERS[kind].values())
        handlers = dict(handlers or {})
        for handler, function in handlers.items():
            if handler not in names:
                raise ValueError(f"{handler} is not a {kind}'s handler (a {kind} has "
                                 f"{', '.join(sorted(names))})")
            if function not in dir(driver):
                raise ValueError(f"the driver has no function {function!r} in its cdef")
        self.driver, self.kind, self.context = driver, kind, context
        self.handle: Any = None
        for handler in sorted(names):
            function = handlers.get(handler, handler if handler in dir(driver) else None)
            if function is not None:
                setattr(self, handler, self._handler(getattr(driver, function)))

    def _handler(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function` called with the layer's context as it is at the call."""
        def handler(*args: Any) -> Any:
            return function(self.context, *args)
        handler.__name__ = getattr(function, "__name__", "handler")
        return handler

    def __repr__(self) -> str:
        return f"<DriverLayer {self.kind} of {self.driver!r}>"


class LoopbackMiniport:
    """A ready miniport: completes every send with `status`, at once or,
    with ``defer=True``, when ``b.complete_pending()`` (or ``complete()``)
    is called; indicate receives with
    ``k.NdisMIndicateReceiveNetBufferLists(m.handle, ...)``."""

    def __init__(self, defer: bool = False, status: int = _C["NDIS_STATUS_SUCCESS"]):
        self.defer = bool(defer)
        self.status = uint(status, "status")
        self.handle: Any = None
        self.queued: list[Any] = []      # sends held until complete()
        self.returned: list[Any] = []    # its indicated NBLs, as they came back
        self._kernel: Any = None

    def __repr__(self) -> str:
        return (f"<LoopbackMiniport defer={self.defer} status={self.status:#x} "
                f"queued={len(self.queued)}>")

    def MiniportSendNetBufferLists(self, NetBufferLists: Any, PortNumber: int,
                                   SendFlags: int) -> None:
        """Holds the NBLs (defer=True) or completes them at once."""
        nbls = self._list(NetBufferLists)
        if self.defer:
            self.queued += nbls
        else:
            self._complete(nbls)

    def MiniportReturnNetBufferLists(self, NetBufferLists: Any, ReturnFlags: int) -> None:
        """Records the NBLs it indicated as they come back (``returned``)."""
        self.returned += self._list(NetBufferLists)

    def MiniportCancelSend(self, CancelId: Any) -> None:
        """Completes the held sends (defer=True) whose cancel ID
        (NDIS_GET_NET_BUFFER_LIST_CANCEL_ID) is `CancelId`, in one
        NdisMSendNetBufferListsComplete with NDIS_STATUS_SEND_ABORTED, in
        the order they arrived; the others stay held."""
        k = self._kernel
        wanted = _key(CancelId)
        cancelled = [nbl for nbl in self.queued
                     if _info_field(k, nbl, "NetBufferListCancelId", None) == wanted]
        if cancelled:
            self.queued = [nbl for nbl in self.queued if nbl not in cancelled]
            self._complete(cancelled, k.constants["NDIS_STATUS_SEND_ABORTED"])

    def complete(self, count: int | None = None) -> int:
        """Completes the oldest `count` held sends (all by default) in one
        NdisMSendNetBufferListsComplete with Status = `status`; returns how
        many."""
        if count is not None:
            uint(count, "count")
        if self._kernel is None:
            raise ValueError("the LoopbackMiniport is not bound")
        take = self.queued[:len(self.queued) if count is None else count]
        del self.queued[:len(take)]
        if take:
            self._complete(take)
        return len(take)

    def _complete(self, nbls: list[Any], status: int | None = None) -> None:
        k = self._kernel
        _set_status(k, nbls, self.status if status is None else status)
        for nbl, following in zip(nbls, nbls[1:] + [None], strict=True):
            k.view(nbl).Next = following
        dispatch = (k.constants["NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL"]
                    if k.irql == DISPATCH_LEVEL else 0)
        k.NdisMSendNetBufferListsComplete(self.handle, nbls[0], dispatch)

    def _list(self, head: Any) -> list[Any]:
        """The chain NDIS just checked, through checked views all the same."""
        out, view = [], self._kernel.view(head)
        while view is not None:
            out.append(view.ptr)
            view = view.Next
        return out


class BindingCalls:
    """The emulated binding's calls of :class:`ndisemu.Kernel`."""

    _binding: Binding | None = None
    _handles_made = 0

    def bind(self, *, protocol: Any, filters: Sequence[Any] = (), miniport: Any) -> Binding:
        """Binds `protocol` through `filters` (listed from the protocol down)
        to `miniport`: sets each object's ``.handle`` and returns the
        Binding.  One live binding per Kernel (ValueError otherwise)."""
        if self._binding is not None:
            raise ValueError("this Kernel already has a live binding: unbind() it first")
        if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence):
            raise TypeError("filters must be a list of filter objects")
        binding = Binding(self, protocol, list(filters), miniport)
        names = self.__dict__.setdefault("_layer_names", {})
        names.update({layer.key: layer.name for layer in binding.layers})
        self._binding = binding
        return binding

    def pending(self) -> dict[str, list[Any]]:
        """{layer name: [NET_BUFFER_LIST * it owns]} of the live binding, every
        layer present (``protocol``, ``filter0``, ..., ``miniport``); {} when
        there is none."""
        return self._binding.pending() if self._binding else {}

    def NdisSendNetBufferLists(self, NdisBindingHandle: Any, NetBufferLists: Any,
                               PortNumber: int, SendFlags: int) -> None:
        """The protocol sends a chain down: it owns none of it (NBLs, NBs,
        MDLs, info) until each NBL is completed to it.  SourceHandle must be
        its handle (0x7C/0x94)."""
        self._binding_call("NdisSendNetBufferLists", NdisBindingHandle, NetBufferLists,
                           PortNumber, None, SendFlags)

    def NdisFSendNetBufferLists(self, NdisFilterHandle: Any, NetBufferList: Any,
                                PortNumber: int, SendFlags: int) -> None:
        """A filter sends its own NBLs, or passes on those it was sent (with
        SourceHandle left as their home set it)."""
        self._binding_call("NdisFSendNetBufferLists", NdisFilterHandle, NetBufferList,
                           PortNumber, None, SendFlags)

    def NdisMSendNetBufferListsComplete(self, MiniportAdapterHandle: Any, NetBufferLists: Any,
                                        SendCompleteFlags: int) -> None:
        """The miniport completes sends it owns (Status written first); each
        NBL goes back up its path to the layer it came from."""
        self._binding_call("NdisMSendNetBufferListsComplete", MiniportAdapterHandle,
                           NetBufferLists, None, None, SendCompleteFlags)

    def NdisFSendNetBufferListsComplete(self, NdisFilterHandle: Any, NetBufferList: Any,
                                        SendCompleteFlags: int) -> None:
        """A filter completes sends it was sent (never its own: those come
        back to it and stop there)."""
        self._binding_call("NdisFSendNetBufferListsComplete", NdisFilterHandle, NetBufferList,
                           None, None, SendCompleteFlags)

    def NdisMIndicateReceiveNetBufferLists(self, MiniportAdapterHandle: Any,
                                           NetBufferLists: Any, PortNumber: int,
                                           NumberOfNetBufferLists: int,
                                           ReceiveFlags: int) -> None:
        """The miniport indicates receives up.  With NDIS_RECEIVE_FLAGS_RESOURCES
        they are its own again when the call returns; otherwise when they
        are returned."""
        self._binding_call("NdisMIndicateReceiveNetBufferLists", MiniportAdapterHandle,
                           NetBufferLists, PortNumber, NumberOfNetBufferLists, ReceiveFlags)

    def NdisFIndicateReceiveNetBufferLists(self, NdisFilterHandle: Any, NetBufferLists: Any,
                                           PortNumber: int, NumberOfNetBufferLists: int,
                                           ReceiveFlags: int) -> None:
        """A filter indicates its own receives, or passes up those it was
        indicated (with RESOURCES if they came with it)."""
        self._binding_call("NdisFIndicateReceiveNetBufferLists", NdisFilterHandle,
                           NetBufferLists, PortNumber, NumberOfNetBufferLists, ReceiveFlags)

    def NdisReturnNetBufferLists(self, NdisBindingHandle: Any, NetBufferLists: Any,
                                 ReturnFlags: int) -> None:
        """The protocol returns receives it kept (never ones indicated with
        RESOURCES); each goes back down its path."""
        self._binding_call("NdisReturnNetBufferLists", NdisBindingHandle, NetBufferLists,
                           None, None, ReturnFlags)

    def NdisFReturnNetBufferLists(self, NdisFilterHandle: Any, NetBufferLists: Any,
                                  ReturnFlags: int) -> None:
        """A filter returns receives it was indicated and does not pass up."""
        self._binding_call("NdisFReturnNetBufferLists", NdisFilterHandle, NetBufferLists,
                           None, None, ReturnFlags)

    def NdisCancelSendNetBufferLists(self, NdisBindingHandle: Any, CancelId: Any) -> None:
        """The protocol cancels its sends marked with `CancelId`
        (NDIS_SET_NET_BUFFER_LIST_CANCEL_ID): NDIS calls the next lower
        layer's FilterCancelSendNetBufferLists, or MiniportCancelSend when no
        filter has one; whoever holds such sends completes them with
        NDIS_STATUS_SEND_ABORTED.  The handle must be a live protocol's
        (0x7C/0x95); `CancelId` is a pointer or an int."""
        self._cancel_checked("NdisCancelSendNetBufferLists", NdisBindingHandle, CancelId)()

    def NdisFCancelSendNetBufferLists(self, NdisFilterHandle: Any, CancelId: Any) -> None:
        """A filter cancels sends marked with `CancelId`: its own, or, from
        its FilterCancelSendNetBufferLists, passing the cancel down."""
        self._cancel_checked("NdisFCancelSendNetBufferLists", NdisFilterHandle, CancelId)()

    def NdisGeneratePartialCancelId(self) -> int:
        """The high-order byte for a driver's cancel IDs.  [UNSPEC] how NDIS
        picks it: here 1, 2, ... 255, then 1 again, per Kernel (never 0, the
        value of an NBL whose cancel ID was not set)."""
        return lib.ndisemu_partial_cancel_id(self._k)

    def _binding_call(self, call: str, handle: Any, nbls: Any, port: int | None,
                      count: int | None, flags: int) -> None:
        """Argument checks in the documented order (types and ranges, IRQL,
        the handle), then the binding does the rest."""
        self._binding_checked(call, handle, nbls, port, count, flags)()

    def _binding_checked(self, call: str, handle: Any, nbls: Any, port: int | None,
                         count: int | None, flags: int) -> Callable[[], None]:
        """The argument checks of a binding call: what then does the call."""
        kind, op = CALLS[call]
        flags_name, prefix = _FLAGS[op]
        handle = pointer_arg(handle, "handle")
        head = pointer_arg(nbls, "NetBufferLists")
        if head != ffi.NULL and ffi.typeof(head) != _NBL_PTR:
            raise TypeError(f"NetBufferLists must be a NET_BUFFER_LIST *, not "
                            f"{ffi.typeof(head).cname}")
        if port is not None:
            uint(port, "PortNumber")
        if count is not None:
            uint(count, "NumberOfNetBufferLists")
        uint(flags, flags_name)
        defined = 0
        for name, value in self.constants.items():
            if name.startswith(prefix):
                defined |= value
        if flags & ~defined:
            raise ValueError(f"{flags_name}={flags:#x}: {flags & ~defined:#x} are not "
                             f"{prefix}* bits")
        binding, layer = self._calling_layer(call, kind, handle)
        return lambda: binding._call(call, layer, head, port, count, flags)

    def _calling_layer(self, call: str, kind: str, handle: Any) -> tuple[Binding, _Layer]:
        """The IRQL (at most DISPATCH_LEVEL) and the handle (a live `kind`
        layer's) of a binding call: the binding and the layer making it."""
        if self.irql > DISPATCH_LEVEL:
            raise bugcheck(call, DRIVER_VERIFIER_DETECTED_VIOLATION,
                           (VERIFIER_IRQL, 0, self.irql, DISPATCH_LEVEL),
                           "called above its maximum IRQL (DISPATCH_LEVEL)", kernel=self)
        key = _key(handle)
        binding = self._binding
        layer = binding._by_key.get(key) if binding else None
        if binding is None or layer is None or layer.kind != kind:
            raise bugcheck(call, BUGCODE_NDIS_DRIVER, (lib.NDISEMU_BUG_BAD_HANDLE, key, 0, 0),
                           f"not a live {kind} handle", detail=self._handle_text(key),
                           kernel=self)
        return binding, layer

    def _cancel_checked(self, call: str, handle: Any, cancel_id: Any) -> Callable[[], None]:
        """The argument checks of a cancel call: what then does the call."""
        kind = CALLS[call][0]
        handle = pointer_arg(handle, "handle")
        if isinstance(cancel_id, int) and not isinstance(cancel_id, bool):
            cancel_id = ffi.cast("void *", uint(cancel_id, "CancelId", 64))
        else:
            cancel_id = pointer_arg(cancel_id, "CancelId")
        binding, layer = self._calling_layer(call, kind, handle)
        return lambda: binding._cancel(layer, cancel_id)

    def _driver_binding_calls(self) -> None:
        """Lets driver code loaded into this Kernel make the binding's calls
        (NdisFSendNetBufferLists and the rest, declared by <ndis.h>): the
        core calls back into the binding, once registered."""
        if "_binding_dispatch" not in self.__dict__:
            callback = ffi.callback("ndisemu_binding_dispatch", _driver_dispatch(self))
            lib.ndisemu_set_binding_dispatch(self._k, callback)
            self.__dict__["_binding_dispatch"] = callback

    def _handle_text(self, key: int) -> str:
        layer = self._binding._by_key.get(key) if self._binding else None
        if layer is not None:
            return f"handle {key:#x} is the {layer.name}'s"
        name = self.__dict__.get("_layer_names", {}).get(key)
        if name:
            return f"handle {key:#x} was the {name}'s, in a binding since unbound"
        return f"handle {key:#x} belongs to no binding of this Kernel"


# The binding's calls as driver code makes them (driver.c's call codes).
_DRIVER_CALLS = {
    lib.NDISEMU_BINDING_SEND: "NdisSendNetBufferLists",
    lib.NDISEMU_BINDING_FILTER_SEND: "NdisFSendNetBufferLists",
    lib.NDISEMU_BINDING_MINIPORT_SEND_COMPLETE: "NdisMSendNetBufferListsComplete",
    lib.NDISEMU_BINDING_FILTER_SEND_COMPLETE: "NdisFSendNetBufferListsComplete",
    lib.NDISEMU_BINDING_MINIPORT_INDICATE: "NdisMIndicateReceiveNetBufferLists",
    lib.NDISEMU_BINDING_FILTER_INDICATE: "NdisFIndicateReceiveNetBufferLists",
    lib.NDISEMU_BINDING_RETURN: "NdisReturnNetBufferLists",
    lib.NDISEMU_BINDING_FILTER_RETURN: "NdisFReturnNetBufferLists",
    lib.NDISEMU_BINDING_CANCEL: "NdisCancelSendNetBufferLists",
    lib.NDISEMU_BINDING_FILTER_CANCEL: "NdisFCancelSendNetBufferLists",
}


def _driver_dispatch(kernel: Any) -> Callable[..., int]:
    """The function the core calls for driver code's binding calls.  What
    Python raises (a bug check of the binding, any exception of a layer's
    handler) cannot cross the driver's C frames: it is kept on the Kernel,
    the driver unwinds, and the Python call into the driver raises it.
    Argument errors, TypeError/ValueError from Python, are BugCheck 0x7C/0x8F
    from C, as for the core's calls."""
    ref = weakref.ref(kernel)

    def dispatch(_k: Any, call: int, handle: Any, nbls: Any, port: int, count: int,
                 flags: int, cancel_id: Any) -> int:
        k = ref()
        if k is None:                 # the Kernel's driver code runs only while it lives
            return lib.NDISEMU_BUGCHECK
        try:
            name = _DRIVER_CALLS[call]
            op = CALLS[name][1]
            try:
                if op == CANCEL:
                    action = k._cancel_checked(name, handle, cancel_id)
                else:
                    action = k._binding_checked(name, handle, nbls,
                                                port if op in (SEND, INDICATE) else None,
                                                count if op == INDICATE else None, flags)
            except (TypeError, ValueError) as error:
                raise bugcheck(name, BUGCODE_NDIS_DRIVER,
                               (lib.NDISEMU_BUG_BAD_PARAMETER, 0, 0, 0), str(error),
                               kernel=k) from None
            action()
        except BaseException as error:   # noqa: BLE001 - re-raised once the driver unwound
            k.__dict__["_driver_exception"] = error
            return lib.NDISEMU_BUGCHECK
        return lib.NDISEMU_OK
    return dispatch
