"""NDIS pools: NdisAllocateNetBufferListPool, NdisAllocateNetBufferPool, their
frees, and NdisGetPoolFrom*.  Reference: docs/pools.md.

Rules and choices:
- Parameters.Header must be NDIS_OBJECT_TYPE_DEFAULT, revision 1 (Size >= 16 /
  12) or 2 (Size >= 20 / 16, adds Flags); otherwise BugCheck 0x7C/0x21.
- [UNSPEC] DataSize without fAllocateNetBuffer, a ContextSize that is not a
  multiple of MEMORY_ALLOCATION_ALIGNMENT and undefined Flags bits are
  BugCheck 0x7C/0x8F (the docs forbid them but name no outcome).
- Freeing a pool with objects still allocated from it is BugCheck 0x7C/0x27,
  P2 = 1 (chosen), for NBL and NB pools alike.
- Flags VERIFY (revision 2): freed objects are never reused, so a stale
  pointer to one always faults; under the verifier their poison is checked
  when the pool is freed (or by scan_quarantine), and a write made through
  a stale pointer since the free is BugCheck 0xD5.
"""

from __future__ import annotations

from typing import Any

from ndisemu._args import opt as _p
from ndisemu._native import ffi, lib
from ndisemu.constants import for_version

_C = for_version()


def pool_parameters(value: Any, ctype: str) -> Any:
    """A `ctype *` from cdata or from a dict of its fields (missing fields are
    zero; a missing Header is filled in for revision 1, or 2 with Flags)."""
    if isinstance(value, ffi.CData):
        kind = ffi.typeof(value)
        if kind is ffi.typeof(f"{ctype} *"):
            return value
        if kind is ffi.typeof(ctype):
            return ffi.addressof(value)
        raise TypeError(f"Parameters must be {ctype} * or a dict, not {kind.cname}")
    if not isinstance(value, dict):
        raise TypeError(f"Parameters must be {ctype} * or a dict, not {type(value).__name__}")
    fields = [name for name, _ in ffi.typeof(ctype).fields]
    params = ffi.new(f"{ctype} *")
    for name, field_value in value.items():
        if name not in fields:
            raise ValueError(f"{ctype} has no field {name!r} (fields: {', '.join(fields)})")
        try:
            if name == "Header" and isinstance(field_value, dict):
                for key, item in field_value.items():
                    setattr(params.Header, key, item)
            else:
                setattr(params, name, field_value)
        except (OverflowError, AttributeError) as error:
            raise ValueError(f"{ctype}.{name}: {error}") from None
    if "Header" not in value:
        revision = 2 if "Flags" in value else 1
        params.Header.Type = _C["NDIS_OBJECT_TYPE_DEFAULT"]
        params.Header.Revision = revision
        params.Header.Size = _C[f"NDIS_SIZEOF_{ctype}_REVISION_{revision}"]
    return params


class PoolCalls:
    """Pool calls of :class:`ndisemu.Kernel`."""

    def NdisAllocateNetBufferListPool(self, NdisHandle: Any, Parameters: Any) -> Any:
        """Returns the pool handle (`void *`), or NULL when pool memory fails."""
        params = pool_parameters(Parameters, "NET_BUFFER_LIST_POOL_PARAMETERS")
        rc = lib.ndisemu_allocate_nbl_pool(self._k, params, 0, self._out_void)
        return self._done("NdisAllocateNetBufferListPool", rc, self._out_void[0])

    def NdisFreeNetBufferListPool(self, PoolHandle: Any) -> None:
        """Frees an NBL pool.  Objects still allocated from it: BugCheck 0x7C/0x27
        (P2 = 1); the Kernel's default pools cannot be freed (0x7C/0x84)."""
        self._check("NdisFreeNetBufferListPool", lib.ndisemu_free_nbl_pool(self._k, _p(PoolHandle)))

    def NdisAllocateNetBufferPool(self, NdisHandle: Any, Parameters: Any) -> Any:
        """Returns the NB pool handle (`void *`), or NULL when pool memory fails.
        `Parameters` as for NdisAllocateNetBufferListPool (NET_BUFFER_POOL_PARAMETERS)."""
        params = pool_parameters(Parameters, "NET_BUFFER_POOL_PARAMETERS")
        rc = lib.ndisemu_allocate_nb_pool(self._k, params, 0, self._out_void)
        return self._done("NdisAllocateNetBufferPool", rc, self._out_void[0])

    def NdisFreeNetBufferPool(self, PoolHandle: Any) -> None:
        """Frees an NB pool.  NBs still allocated from it: BugCheck 0x7C/0x27 (P2 = 1)."""
        self._check("NdisFreeNetBufferPool", lib.ndisemu_free_nb_pool(self._k, _p(PoolHandle)))

    def NdisGetPoolFromNetBufferList(self, NetBufferList: Any) -> Any:
        """The NBL's NdisPoolHandle field."""
        rc = lib.ndisemu_pool_from_nbl(self._k, _p(NetBufferList), self._out_void)
        return self._done("NdisGetPoolFromNetBufferList", rc, self._out_void[0])

    def NdisGetPoolFromNetBuffer(self, NetBuffer: Any) -> Any:
        """The NB's NdisPoolHandle field (the pool it came from)."""
        rc = lib.ndisemu_pool_from_nb(self._k, _p(NetBuffer), self._out_void)
        return self._done("NdisGetPoolFromNetBuffer", rc, self._out_void[0])

    def scan_quarantine(self) -> None:
        """Checks the freed objects of every pool created with the VERIFY flag
        (never reused) for writes made after their free, as NdisFree*Pool
        does for its own pool: BugCheck 0xD5 naming the first such block,
        which then leaves the quarantine (it is reported once)."""
        self._check("scan_quarantine", lib.ndisemu_scan_quarantine(self._k))

    def pool_info(self, PoolHandle: Any) -> dict[str, int]:
        """What a pool was created with and how many objects it has out."""
        info = ffi.new("ndisemu_pool *")
        self._check("pool_info", lib.ndisemu_pool_info(self._k, _p(PoolHandle), info))
        return {"kind": "NBL" if info.kind == lib.NDISEMU_KIND_NBL_POOL else "NB",
                "ProtocolId": info.protocol_id, "fAllocateNetBuffer": info.allocate_nb,
                "ContextSize": info.context_size, "PoolTag": info.tag,
                "DataSize": info.data_size, "Flags": info.flags, "live": info.live,
                "default": info.is_default}
