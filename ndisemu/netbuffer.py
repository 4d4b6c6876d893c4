"""NET_BUFFER calls: NdisAllocateNetBuffer, NdisAllocateNetBufferMdlAndData,
NdisFreeNetBuffer, NdisAdjustNetBufferCurrentMdl.  Reference: docs/net-buffer.md.

Rules and choices:
- A NULL MdlChain needs DataOffset == DataLength == 0; DataOffset + DataLength
  beyond the chain's bytes is BugCheck 0x7C/0x8F.
- CurrentMdl/CurrentMdlOffset point at the first used byte; at an MDL
  boundary that is the start of the next non-empty MDL, and with no used
  bytes at the very end of the chain it is the end of the last MDL.
- [UNSPEC] An NB that comes with data (NdisAllocateNetBufferMdlAndData, or
  preallocated by a DataSize pool) starts with DataOffset 0 and DataLength
  equal to the pool's DataSize: the whole buffer is used data.
- NdisFreeNetBuffer frees only NBs from the two NB allocators; a
  preallocated, clone or fragment NB is BugCheck 0x7C/0x84.
"""

from __future__ import annotations

from typing import Any

from ndisemu._args import opt as _p
from ndisemu._args import uint
from ndisemu._native import ffi, lib


class NetBufferCalls:
    """NET_BUFFER calls of :class:`ndisemu.Kernel`."""

    def NdisAllocateNetBuffer(self, PoolHandle: Any, MdlChain: Any, DataOffset: int,
                              DataLength: int) -> Any:
        """An NB over `MdlChain` with DataOffset/DataLength (CurrentMdl set to the
        first used byte), or NULL.  A NULL chain needs both 0; beyond the chain's
        bytes is BugCheck 0x7C/0x8F; a pool with a DataSize is 0x7C/0x8C."""
        uint(DataOffset, "DataOffset")
        uint(DataLength, "DataLength")
        rc = lib.ndisemu_allocate_nb(self._k, _p(PoolHandle), _p(MdlChain), DataOffset, DataLength,
                                     self._out_nb)
        return self._done("NdisAllocateNetBuffer", rc, self._out_nb[0])

    def NdisAllocateNetBufferMdlAndData(self, PoolHandle: Any) -> Any:
        """An NB with its own MDL and DataSize bytes of data: DataOffset 0,
        DataLength = DataSize.  A pool without DataSize is BugCheck 0x7C/0x8C;
        NULL on allocation failure."""
        rc = lib.ndisemu_allocate_nb_mdl_and_data(self._k, _p(PoolHandle), self._out_nb)
        return self._done("NdisAllocateNetBufferMdlAndData", rc, self._out_nb[0])

    def NdisFreeNetBuffer(self, NetBuffer: Any) -> None:
        """Frees an NB from NdisAllocateNetBuffer(MdlAndData); a preallocated,
        clone or fragment NB is BugCheck 0x7C/0x84."""
        self._check("NdisFreeNetBuffer", lib.ndisemu_free_nb(self._k, _p(NetBuffer)))

    def NdisAdjustNetBufferCurrentMdl(self, NetBuffer: Any) -> None:
        """Recomputes CurrentMdl/CurrentMdlOffset from DataOffset."""
        self._check("NdisAdjustNetBufferCurrentMdl",
                    lib.ndisemu_adjust_current_mdl(self._k, _p(NetBuffer)))

    def nb_bytes(self, nb: Any) -> bytes:
        """The used data of one NB (DataLength bytes from its data start)."""
        length = self._nb_length(nb, "nb_bytes")
        out = ffi.new("uint8_t[]", max(length, 1))
        self._check("nb_bytes", lib.ndisemu_read_nb(self._k, _p(nb), 0, length, out))
        return ffi.buffer(out, length)[:]

    def check_nb(self, nb: Any) -> None:
        """Raises BugCheck 0x7C/0x87 naming the first field of `nb` that
        breaks DataOffset == bytes before CurrentMdl + CurrentMdlOffset (or
        another data-space invariant); returns None when all hold."""
        self._check("check_nb", lib.ndisemu_check_nb(self._k, _p(nb)))

    def _nb_length(self, nb: Any, call: str) -> int:
        nb = _p(nb)
        if lib.ndisemu_check_nb(self._k, nb):
            raise self._raise(call)
        return nb.DataLength
