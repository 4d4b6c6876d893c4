"""The emulated machine: its arena (nonpaged pool), IRQL, verifier and pools.

`Kernel` gathers the NDIS calls from one module per concept (pool, mdl,
netbuffer, nbl, clone, dataspace, inspection, binding); this module owns the arena and
the plumbing every call shares: raising the core's bug checks, out-parameter
buffers, argument range checks and the registry that maps a raw pointer back
to the Kernel whose arena holds it.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from typing import Any

import numpy as np

from ndisemu import constants, layout
from ndisemu._args import pointer_arg, uint
from ndisemu._native import ffi, lib
from ndisemu.binding import BindingCalls
from ndisemu.clone import CloneCalls
from ndisemu.dataspace import RECEIVE_INFO, SEND_INFO, DataSpaceCalls
from ndisemu.inspection import InspectionCalls
from ndisemu.mdl import MdlCalls
from ndisemu.nbl import NblCalls, Scratch
from ndisemu.ndiskd import KIND_TYPES
from ndisemu.netbuffer import NetBufferCalls
from ndisemu.pool import PoolCalls, pool_parameters
from ndisemu.verifier import KIND_NAMES, BugCheck, from_native

# Addresses people see: a kernel-style base plus the arena offset, identical
# run to run whatever address the arena got in this process.
DISPLAY_BASE = 0xFFFFE00000000000

# Arenas are mapped at fixed addresses when those are free, so that pointer
# fields (and hence every byte of the arena) are the same run to run too.
_HINT_BASE = 0x5A0000000000
_HINT_SLOT = 1 << 36
_HINT_SLOTS = 64
_slots_in_use: set[int] = set()
_slots_lock = threading.RLock()   # re-entered when GC unmaps an arena mid-map

# (base, end, weakref to Kernel), sorted by base: who owns a raw pointer.
_registry: list[tuple[int, int, Any]] = []

_C = constants.for_version()
STATUS_SUCCESS = _C["NDIS_STATUS_SUCCESS"]
STATUS_RESOURCES = _C["NDIS_STATUS_RESOURCES"]

PASSIVE_LEVEL = 0
DISPATCH_LEVEL = 2
HIGH_LEVEL = 15



def _map_arena(size: int) -> tuple[Any, int]:
    """Maps `size` bytes, at the lowest free fixed slot when possible."""
    with _slots_lock:
        slot = next((s for s in range(_HINT_SLOTS) if s not in _slots_in_use), None)
        if slot is not None:
            _slots_in_use.add(slot)
    hint = _HINT_BASE + slot * _HINT_SLOT if slot is not None else 0
    base = lib.ndisemu_map_arena(size, hint)
    if base == ffi.NULL:
        if slot is not None:
            _release_slot(slot)
        raise MemoryError(f"cannot map an arena of {size} bytes")
    if slot is not None and int(ffi.cast("uintptr_t", base)) != hint:
        _release_slot(slot)
        slot = None

    def unmap(ptr: Any, size: int = size, slot: int | None = slot) -> None:
        lib.ndisemu_unmap_arena(ptr, size)
        if slot is not None:
            _release_slot(slot)

    return ffi.gc(base, unmap), int(ffi.cast("uintptr_t", base))


def _release_slot(slot: int) -> None:
    with _slots_lock:
        _slots_in_use.discard(slot)


def kernel_of(ptr: Any) -> Kernel | None:
    """The live Kernel whose arena contains `ptr`, or None."""
    address = int(ffi.cast("uintptr_t", ptr))
    i = bisect.bisect_right(_registry, (address, float("inf"))) - 1
    if i >= 0:
        base, end, ref = _registry[i]
        if base <= address < end:
            return ref()
    return None


def _unregister(base: int) -> None:
    for i, entry in enumerate(_registry):
        if entry[0] == base:
            del _registry[i]
            return


class Kernel(PoolCalls, MdlCalls, NetBufferCalls, NblCalls, CloneCalls, DataSpaceCalls,
             InspectionCalls, BindingCalls):
    """One emulated machine.

    ``Kernel(arena_size=64 << 20, ndis_version="6.87", seed=0, verifier=True)``

    The arena is one numpy uint8 array (``k.arena``) standing in for nonpaged
    pool; every NBL, NB, MDL, context, buffer and pool is a block in it with a
    pool header in front.  ``ndis_version`` is the NDIS version the driver
    under test was built for: it selects ``k.constants`` and bounds the info
    indices the driver may use.  ``verifier=False`` skips only the costly
    checks (poisoning freed memory, chain consistency walks); pointer checks
    always run.  ``seed`` seeds failure injection.
    """

    def __init__(self, arena_size: int = 64 << 20, ndis_version: str = "6.87", seed: int = 0,
                 verifier: bool = True):
        uint(arena_size, "arena_size", 64)
        if arena_size < 1 << 16 or arena_size > _HINT_SLOT:
            raise ValueError(f"arena_size must be between 64 KiB and {_HINT_SLOT >> 30} GiB")
        if ndis_version not in layout.VERSIONS:
            raise ValueError(f"unknown NDIS version {ndis_version!r} "
                             f"(choose from {', '.join(layout.VERSIONS)})")
        uint(seed, "seed", 64)
        arena_size = (arena_size + 0xFFF) & ~0xFFF
        self.ndis_version = ndis_version
        self.constants = constants.for_version(ndis_version)
        self.max_info = self.constants["MaxNetBufferListInfo"]
        self.seed = seed
        self._base_cdata, self._base = _map_arena(arena_size)
        self.arena = np.frombuffer(ffi.buffer(self._base_cdata, arena_size), dtype=np.uint8)
        self.arena_size = arena_size
        self._k = ffi.gc(lib.ndisemu_kernel_create(self._base_cdata, arena_size, DISPLAY_BASE),
                         lib.ndisemu_kernel_destroy)
        if self._k == ffi.NULL:
            raise MemoryError("cannot create the kernel's tables")
        self._bug = lib.ndisemu_last_bug(self._k)
        # Blocks freed so far (a uint64 the core keeps), as a one-item
        # memoryview (the quickest read from Python): checked views compare it.
        self._frees = memoryview(ffi.buffer(lib.ndisemu_free_count(self._k), 8)).cast("Q")
        # Where nbl_bytes and read copy packet bytes out (grown as needed).
        self._scratch = Scratch().register(self)
        self.verifier = verifier
        lib.ndisemu_inject_failures(self._k, 0.0, seed)
        # One out-parameter buffer per pointer type, reused by every call.
        self._out_void = ffi.new("void **")
        self._out_nbl = ffi.new("NET_BUFFER_LIST **")
        self._out_nb = ffi.new("NET_BUFFER **")
        self._out_mdl = ffi.new("MDL **")
        entry = (self._base, self._base + arena_size, weakref.ref(self))
        bisect.insort(_registry, entry)
        weakref.finalize(self, _unregister, self._base)
        self.default_nbl_pool, self.default_nb_pool = self._default_pools()
        # What NdisCopySend/ReceiveNetBufferListInfo copy at this NDIS version,
        # for driver code (the Python calls pass their own lists).
        for which, names in enumerate((SEND_INFO, RECEIVE_INFO)):
            slots = self._info_slots(names)
            lib.ndisemu_set_info_slots(self._k, which, ffi.new("uint32_t[]", slots), len(slots))

    def __repr__(self) -> str:
        # what a failing Hypothesis example prints for a Kernel argument or fixture
        return (f"Kernel(arena_size={self.arena_size:#x}, ndis_version={self.ndis_version!r}, "
                f"seed={self.seed}, verifier={self.verifier})")

    # -- plumbing shared by every call ----------------------------------------

    def _raise(self, call: str) -> BugCheck:
        return from_native(call, self._bug, self)

    def _done(self, call: str, rc: int, value: Any) -> Any:
        """Result of a call that returns a pointer: the pointer, NULL on an
        allocation failure, BugCheck when the core refused the call."""
        if rc == 0:
            return value
        if rc == lib.NDISEMU_NO_MEMORY:
            return ffi.NULL
        raise self._raise(call)

    def _status(self, call: str, rc: int) -> int:
        """Result of a call that returns an NDIS_STATUS."""
        if rc == 0:
            return STATUS_SUCCESS
        if rc == lib.NDISEMU_NO_MEMORY:
            return STATUS_RESOURCES
        raise self._raise(call)

    def _raise_from_driver(self, label: str) -> BugCheck:
        """The bug check that stopped driver code entered through `label`
        (``driver.function``), naming the NDIS call that raised it."""
        inner = ffi.string(self._bug.call).decode() if self._bug.call != ffi.NULL else "?"
        return from_native(f"{label} -> {inner}", self._bug, self)

    def load(self, driver: Any) -> Any:
        """Binds a driver module from :func:`ndisemu.driver.build` to this
        Kernel: ``d = k.load(drv)``; ``d.Function(...)`` runs the C function
        with this Kernel as its machine.  A module built with sanitize=True
        also poisons this Kernel's arena for AddressSanitizer."""
        from ndisemu.driver import Driver, LoadedDriver
        if not isinstance(driver, Driver):
            raise TypeError(f"load() takes what ndisemu.driver.build() returns, not "
                            f"{type(driver).__name__}")
        return LoadedDriver(self, driver)

    def _check(self, call: str, rc: int) -> None:
        if rc:
            raise self._raise(call)

    def _default_pools(self) -> tuple[Any, Any]:
        """The pools NDIS uses when a call is given NULL pool handles."""
        nbl = pool_parameters({"PoolTag": 0x4C424E44}, "NET_BUFFER_LIST_POOL_PARAMETERS")  # DNBL
        self._check("Kernel", lib.ndisemu_allocate_nbl_pool(self._k, nbl, 1, self._out_void))
        nbl_pool = self._out_void[0]
        nb = pool_parameters({"PoolTag": 0x42424E44}, "NET_BUFFER_POOL_PARAMETERS")  # DNBB
        self._check("Kernel", lib.ndisemu_allocate_nb_pool(self._k, nb, 1, self._out_void))
        return nbl_pool, self._out_void[0]

    # -- machine state -------------------------------------------------------

    @property
    def irql(self) -> int:
        """The current IRQL (PASSIVE_LEVEL 0 .. HIGH_LEVEL 15).  NDIS buffer
        calls made above DISPATCH_LEVEL raise BugCheck 0xC4."""
        return lib.ndisemu_get_irql(self._k)

    @irql.setter
    def irql(self, value: int) -> None:
        uint(value, "irql", 8)
        if value > HIGH_LEVEL:
            raise ValueError(f"irql={value}: IRQLs run from 0 to {HIGH_LEVEL}")
        lib.ndisemu_set_irql(self._k, value)

    @property
    def verifier(self) -> bool:
        """Whether the costly checks run (poisoning freed memory, chain
        consistency walks); settable.  Pointer checks always run."""
        return self._verifier

    @verifier.setter
    def verifier(self, on: bool) -> None:
        self._verifier = bool(on)
        lib.ndisemu_set_verifier(self._k, 1 if on else 0)

    def inject_failures(self, rate: float, seed: int | None = None) -> None:
        """Fails each pool allocation with probability `rate`, like Driver
        Verifier's low-resources simulation.  Seeded: the same seed and calls
        fail the same allocations.  A failed call allocates nothing and
        changes nothing; it returns NULL or NDIS_STATUS_RESOURCES."""
        if not isinstance(rate, (int, float)) or isinstance(rate, bool):
            raise TypeError("rate must be a number")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate={rate} must be within [0, 1]")
        lib.ndisemu_inject_failures(self._k, float(rate),
                                    uint(self.seed if seed is None else seed, "seed", 64))

    def stats(self) -> dict[str, int]:
        """Live object counts and arena accounting.  `mdl` counts every live
        MDL, whoever allocated it; `context` counts context blocks (inner ones
        of pool NBLs included); pools exclude the Kernel's two default pools."""
        s = ffi.new("ndisemu_stats *")
        lib.ndisemu_get_stats(self._k, s)
        return {
            "nbl": s.live[lib.NDISEMU_KIND_NBL],
            "nb": s.live[lib.NDISEMU_KIND_NB],
            "mdl": s.live[lib.NDISEMU_KIND_MDL],
            "context": s.live[lib.NDISEMU_KIND_CONTEXT],
            "memory": s.live[lib.NDISEMU_KIND_MEMORY],
            "data": s.live[lib.NDISEMU_KIND_DATA],
            "nbl_pool": s.live[lib.NDISEMU_KIND_NBL_POOL] - 1,
            "nb_pool": s.live[lib.NDISEMU_KIND_NB_POOL] - 1,
            "arena_bytes_used": s.arena_used,
            "pool_bytes_live": s.bytes_live,
            "allocations": s.allocations,
            "failures_injected": s.failures_injected,
            "bytes_copied": s.bytes_copied,
        }

    def live_objects(self) -> list[dict[str, Any]]:
        """Every live object, in allocation-record order: ``kind`` (its NDIS
        name), ``address`` (display address), ``pointer`` (typed cdata),
        ``tag`` (four characters), ``size``, ``call`` (the call that
        allocated it) and ``inner`` (True for an object that lives inside
        another's block and is freed with it, such as a preallocated NB).
        The Kernel's two default pools are left out.  What a leak report
        lists."""
        n = lib.ndisemu_live_objects(self._k, ffi.NULL, 0)
        infos = ffi.new("ndisemu_object_info[]", n)
        n = min(n, lib.ndisemu_live_objects(self._k, infos, n))
        defaults = {int(ffi.cast("uintptr_t", p))
                    for p in (self.default_nbl_pool, self.default_nb_pool)}
        out = []
        for info in infos[0:n]:
            if int(ffi.cast("uintptr_t", info.pointer)) in defaults:
                continue
            kind = int(info.kind)
            ctype = KIND_TYPES.get(kind, "void *")
            out.append({
                "kind": KIND_NAMES.get(kind, "object"),
                "address": int(info.address),
                "pointer": ffi.cast(ctype, info.pointer),
                "tag": int(info.tag).to_bytes(4, "little").decode("latin-1"),
                "size": int(info.size),
                "call": ffi.string(info.call).decode(),
                "inner": bool(info.inner),
            })
        return out

    def display(self, ptr: Any) -> int:
        """The address shown for `ptr` in messages and dumps (kernel-style
        base plus arena offset)."""
        return lib.ndisemu_display(self._k, pointer_arg(ptr, "ptr"))

    def from_display(self, address: int) -> Any:
        """The `void *` for a display address, or NULL outside the arena."""
        return lib.ndisemu_from_display(self._k, uint(address, "address", 64))

    def owns(self, ptr: Any) -> bool:
        """True when `ptr` (cdata or None) points into this Kernel's arena,
        live or not."""
        address = int(ffi.cast("uintptr_t", pointer_arg(ptr, "ptr")))
        return self._base <= address < self._base + self.arena_size

    def info_index(self, index: int) -> int:
        """Checks an NDIS_NET_BUFFER_LIST_INFO index against this Kernel's
        NDIS version (MaxNetBufferListInfo of the driver's view)."""
        if not isinstance(index, int):
            raise TypeError("info index must be an int")
        if not 0 <= index < self.max_info:
            raise ValueError(f"info index {index} is not below MaxNetBufferListInfo "
                             f"({self.max_info}) for NDIS {self.ndis_version}")
        return index
