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
        if isinstance(payloads, (bytes, bytearray)) or not isinstance(payloads, Sequence):
            raise TypeError("payloads must be a sequence of bytes objects")
        uint(data_offset, "data_offset")
        buffers = []
        for i, payload in enumerate(payloads):
            if not isinstance(payload, (bytes, bytearray, memoryview)):
                raise TypeError(f"payloads[{i}] must be bytes, not {type(payload).__name__}")
            if data_offset + len(payload) >= 1 << 32:
                raise ValueError(f"payloads[{i}]: data space exceeds a ULONG")
            buffers.append(ffi.from_buffer(bytes(payload)))
        sizes = list(mdl_sizes or [])
        for size in sizes:
            uint(size, "mdl_sizes[]")
        if sizes and sizes[-1] == 0 and any(data_offset + len(p) for p in payloads):
            raise ValueError("mdl_sizes: the last size is repeated, so it must not be 0")
        count = len(buffers)
        pointers = ffi.new("uint8_t *[]", buffers or [ffi.NULL])
        lengths = ffi.new("uint64_t[]", [len(p) for p in payloads] or [0])
        size_array = ffi.new("uint32_t[]", sizes or [0])
        rc = lib.ndisemu_build_nbl(self._k, _p(pool), self.default_nb_pool, count, pointers,
                                   lengths, size_array, len(sizes), data_offset, self._out_nbl)
        return self._done("build_nbl", rc, self._out_nbl[0])

    def free_built(self, nbl: Any) -> None:
        """Frees an NBL from build_nbl with its NBs, MDLs and buffers (and
        MDLs a retreat allocated with the default allocator).  NBs or MDLs the
        caller spliced in are left alone."""
        self._check("free_built", lib.ndisemu_free_built(self._k, _p(nbl)))

    def nbl_bytes(self, nbl: Any) -> list[bytes]:
        """The used data of every NB of `nbl`, in order."""
        nbl = _p(nbl)
        if lib.ndisemu_check_nbl(self._k, nbl):
            raise self._raise("nbl_bytes")
        out = []
        nb = nbl.FirstNetBuffer
        while nb != ffi.NULL:
            out.append(self.nb_bytes(nb))
            nb = nb.Next
        return out

    def check_nbl(self, nbl: Any) -> None:
        """check_nb() for every NB of `nbl` (and the NBL and list themselves)."""
        self._check("check_nbl", lib.ndisemu_check_nbl(self._k, _p(nbl)))
