"""NET_BUFFER_LIST calls: NdisAllocateNetBufferList,
NdisAllocateNetBufferAndNetBufferList, NdisFreeNetBufferList, NBL context,
and the build_nbl / nb_bytes helpers.  Reference: docs/net-buffer-list.md.

Rules and choices:
- A new NBL: NdisPoolHandle = its pool, the pool's ProtocolId in the
  NetBufferListProtocolId info slot, ParentNetBufferList NULL, ChildRefCount
  0, every other field zero ([UNSPEC]: zero-fill).
- ContextSize/ContextBackFill must be multiples of MEMORY_ALLOCATION_ALIGNMENT
  (16) at allocation, of sizeof(void *) (8) for NdisAllocateNetBufferListContext
  (a documented contradiction, kept); otherwise ValueError.
- [UNSPEC] Context of a new NBL: Size = max(pool ContextSize, ContextSize +
  ContextBackFill), Offset = Size - ContextSize (used context ends the block).
- NdisAllocateNetBufferListContext takes from the current block's unused space
  when it has ContextSize bytes, else links a new block (Size = ContextSize +
  ContextBackFill, Offset = ContextBackFill) in front.  Frees must be LIFO
  with the same ContextSize (BugCheck 0x7C/0x86 otherwise); ndisemu tracks up
  to 32 nested allocations per NBL.
- NdisFreeNetBufferList frees the NBL and what came with it (context, the
  preallocated NB, its MDL and data).  NBs attached with NdisAllocateNetBuffer
  are left alone.  ChildRefCount != 0 (0x85), remaining contexts (0x86), a
  clone/fragment/FWPS NBL (0x84) and a double free (0x82) are bug checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ndisemu._args import multiple_of, uint
from ndisemu._args import opt as _p
from ndisemu._native import ffi, lib

NULL = ffi.NULL


class NblCalls:
    """NET_BUFFER_LIST calls of :class:`ndisemu.Kernel`."""

    def NdisAllocateNetBufferList(self, PoolHandle: Any, ContextSize: int,
                                  ContextBackFill: int) -> Any:
        """A zero-filled NBL from the pool (with its preallocated NB, MDL and
        data if the pool has them) and a context of ContextSize + ContextBackFill
        bytes (multiples of 16, else ValueError); NULL on allocation failure."""
        multiple_of(ContextSize, "ContextSize", 16)
        multiple_of(ContextBackFill, "ContextBackFill", 16)
        rc = lib.ndisemu_allocate_nbl(self._k, _p(PoolHandle), ContextSize, ContextBackFill,
                                      self._out_nbl)
        return self._done("NdisAllocateNetBufferList", rc, self._out_nbl[0])

    def NdisAllocateNetBufferAndNetBufferList(self, PoolHandle: Any, ContextSize: int,
                                              ContextBackFill: int, MdlChain: Any,
                                              DataOffset: int, DataLength: int) -> Any:
        """NdisAllocateNetBufferList plus one NB over MdlChain with DataOffset and
        DataLength.  The pool must have fAllocateNetBuffer and no DataSize
        (BugCheck 0x7C/0x8C); NULL on allocation failure."""
        multiple_of(ContextSize, "ContextSize", 16)
        multiple_of(ContextBackFill, "ContextBackFill", 16)
        uint(DataOffset, "DataOffset")
        uint(DataLength, "DataLength")
        rc = lib.ndisemu_allocate_nb_and_nbl(self._k, _p(PoolHandle), ContextSize, ContextBackFill,
                                             _p(MdlChain), DataOffset, DataLength, self._out_nbl)
        return self._done("NdisAllocateNetBufferAndNetBufferList", rc, self._out_nbl[0])

    def NdisFreeNetBufferList(self, NetBufferList: Any) -> None:
        """Frees the NBL with its context, preallocated NB, MDL and data.  NBs
        attached with NdisAllocateNetBuffer are left to the caller.  ChildRefCount
        not 0 (0x85), contexts left (0x86), a derived NBL (0x84), twice (0x82)."""
        self._check("NdisFreeNetBufferList", lib.ndisemu_free_nbl(self._k, _p(NetBufferList)))

    def NdisAllocateNetBufferListContext(self, NetBufferList: Any, ContextSize: int,
                                         ContextBackFill: int, PoolTag: int) -> int:
        """NDIS_STATUS_SUCCESS, or NDIS_STATUS_RESOURCES when a new context
        block cannot be allocated."""
        multiple_of(ContextSize, "ContextSize", 8)
        multiple_of(ContextBackFill, "ContextBackFill", 8)
        if ContextSize + ContextBackFill > 0xFFFF:
            raise ValueError("ContextSize + ContextBackFill must fit the USHORT Size field")
        uint(PoolTag, "PoolTag")
        rc = lib.ndisemu_allocate_nbl_context(self._k, _p(NetBufferList), ContextSize,
                                              ContextBackFill, PoolTag)
        return self._status("NdisAllocateNetBufferListContext", rc)

    def NdisFreeNetBufferListContext(self, NetBufferList: Any, ContextSize: int) -> None:
        """Frees the last ContextSize bytes allocated (LIFO, same size; else
        BugCheck 0x7C/0x86)."""
        uint(ContextSize, "ContextSize", 16)
        self._check("NdisFreeNetBufferListContext",
                    lib.ndisemu_free_nbl_context(self._k, _p(NetBufferList), ContextSize))

    # -- helpers beside the faithful calls -------------------------------------

    def build_nbl(self, pool: Any, payloads: Sequence[bytes], *,
                  mdl_sizes: Sequence[int] | None = None, data_offset: int = 0) -> Any:
        """An NBL with one NB per payload (docs/net-buffer-list.md).

        Each NB has `data_offset` bytes of backfill (filled with a non-zero
        pattern) before its payload; `mdl_sizes` splits that data space into
        MDLs of those sizes in turn, the last one cut to what remains and the
        last size repeated (default: one MDL per NB).  Every MDL has its own
        16-byte-aligned buffer, built as MmBuildMdlForNonPagedPool builds it.
        An NB with no bytes at all has a NULL MdlChain.  NBs come from the
        pool's preallocated NB when it has one, else from the Kernel's default
        NB pool.  Returns NULL (nothing allocated) on allocation failure;
        release with free_built().
        """
        if payloads.__class__ is not list and payloads.__class__ is not tuple and (
                isinstance(payloads, (bytes, bytearray)) or not isinstance(payloads, Sequence)):
            raise TypeError("payloads must be a sequence of bytes objects")
        if data_offset.__class__ is not int or not 0 <= data_offset < 1 << 32:
            uint(data_offset, "data_offset")
        count = len(payloads)
        if count == 1:                 # the common case, kept short
            data = payloads[0]
            if data.__class__ is not bytes:
                data = _payload(data, 0)
            length = len(data)
            if data_offset + length >= 1 << 32:
                raise ValueError("payloads[0]: data space exceeds a ULONG")
            if not mdl_sizes:          # one MDL too: the fewest arguments
                try:
                    nbl = _build_one(self._k, pool or NULL, data, length, data_offset)
                except TypeError:      # a view: see opt()
                    nbl = _build_one(self._k, _p(pool), data, length, data_offset)
                if nbl:
                    return nbl
                return self._done("build_nbl", lib.ndisemu_last_rc(self._k), NULL)
            lengths = NULL
            blobs: Sequence[bytes] = (data,)
        else:
            blobs = [p if p.__class__ is bytes else _payload(p, i) for i, p in enumerate(payloads)]
            for i, payload in enumerate(blobs):
                if data_offset + len(payload) >= 1 << 32:
                    raise ValueError(f"payloads[{i}]: data space exceeds a ULONG")
            data, lengths, length = b"".join(blobs), [len(p) for p in blobs] or NULL, 0
        if mdl_sizes:
            sizes = list(mdl_sizes)
            for size in sizes:
                uint(size, "mdl_sizes[]")
            if sizes[-1] == 0 and any(data_offset + len(p) for p in blobs):
                raise ValueError("mdl_sizes: the last size is repeated, so it must not be 0")
            nsizes = len(sizes)
        else:
            sizes, nsizes = NULL, 0
        # One native call: the payloads as one buffer (a single one as it
        # is), their lengths only when there are several.
        try:
            nbl = lib.ndisemu_build_nbl_flat(self._k, pool or NULL, self.default_nb_pool, count,
                                             data, lengths, length, sizes, nsizes, data_offset)
        except TypeError:           # a view: see opt()
            nbl = lib.ndisemu_build_nbl_flat(self._k, _p(pool), self.default_nb_pool, count,
                                             data, lengths, length, sizes, nsizes, data_offset)
        if nbl:
            return nbl
        return self._done("build_nbl", lib.ndisemu_last_rc(self._k), NULL)

    def free_built(self, nbl: Any) -> None:
        """Frees an NBL from build_nbl with its NBs, MDLs and buffers (and
        MDLs a retreat allocated with the default allocator).  NBs or MDLs the
        caller spliced in are left alone."""
        try:
            rc = lib.ndisemu_free_built(self._k, nbl or NULL)
        except TypeError:           # a view: see opt()
            rc = lib.ndisemu_free_built(self._k, _p(nbl))
        if rc:
            raise self._raise("free_built")

    def nbl_bytes(self, nbl: Any) -> list[bytes]:
        """The used data of every NB of `nbl`, in order."""
        try:
            count = _nbl_bytes(self._k, nbl or NULL)
        except TypeError:           # a view: see opt()
            count = _nbl_bytes(self._k, _p(nbl))
        if count == 1:              # the common case, kept short
            out = self._scratch
            return [out.view[0:out.lens[0]]]
        return self._nbl_bytes_more(nbl, count)

    def _nbl_bytes_more(self, nbl: Any, count: int) -> list[bytes]:
        """nbl_bytes past its first native call: a bug check, buffers too
        small (grown for the call, then asked again), or not one NB."""
        out = self._scratch
        if count == lib.NDISEMU_NO_MEMORY:
            out = Scratch.grown(self, out.lens[1], out.lens[0])
            try:
                count = lib.ndisemu_nbl_bytes(self._k, _p(nbl))
            finally:
                self._scratch.register(self)        # the Kernel's own again
        if count < 0:
            raise self._raise("nbl_bytes")
        result, at, view, lens = [], 0, out.view, out.lens
        for i in range(count):
            end = at + lens[i]
            result.append(view[at:end])
            at = end
        return result

    def check_nbl(self, nbl: Any) -> None:
        """check_nb() for every NB of `nbl` (and the NBL and list themselves)."""
        self._check("check_nbl", lib.ndisemu_check_nbl(self._k, _p(nbl)))


def _payload(payload: Any, i: int) -> bytes:
    """One build_nbl payload that is not a bytes object, as bytes."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payloads[{i}] must be bytes, not {type(payload).__name__}")
    return bytes(payload)


_uncleared = ffi.new_allocator(should_clear_after_alloc=False)
_nbl_bytes = lib.ndisemu_nbl_bytes
_build_one = lib.ndisemu_build_nbl_one

# The most a Kernel keeps between calls (more is allocated for the one call).
_SCRATCH_BYTES = 4 << 20
_SCRATCH_NBS = 1 << 12


class Scratch:
    """The buffers nbl_bytes and k.read copy packet bytes out through: data
    and NB lengths, registered with the Kernel's core (ndisemu_set_scratch)
    and kept by the Kernel, which grows them up to 4 MiB and 4096 NBs."""

    __slots__ = ("capacity", "max_nbs", "data", "view", "lengths", "lens")

    def __init__(self, max_nbs: int = 64, capacity: int = 16 << 10):
        self.capacity, self.max_nbs = max(capacity, 1), max(max_nbs, 2)
        # only what the core wrote is ever read: no need to clear it
        self.data = _uncleared("uint8_t[]", self.capacity)
        self.view = ffi.buffer(self.data)        # slicing it gives bytes
        self.lengths = ffi.new("uint64_t[]", self.max_nbs)
        self.lens = memoryview(ffi.buffer(self.lengths)).cast("Q")   # the quickest reads

    def register(self, kernel: Any) -> Scratch:
        """Makes these the buffers the Kernel's core copies into."""
        lib.ndisemu_set_scratch(kernel._k, self.data, self.capacity, self.lengths, self.max_nbs)
        return self

    @classmethod
    def grown(cls, kernel: Any, capacity: int, max_nbs: int = 2) -> Scratch:
        """Registered buffers for at least `capacity` bytes and `max_nbs`
        NBs: the Kernel keeps them up to its limits; beyond, they serve one
        call (the caller registers the Kernel's own again)."""
        out = kernel._scratch
        capacity, max_nbs = max(capacity, out.capacity), max(max_nbs, out.max_nbs)
        grown = cls(max_nbs, capacity).register(kernel)
        if capacity <= _SCRATCH_BYTES and max_nbs <= _SCRATCH_NBS:
            kernel._scratch = grown
        return grown
