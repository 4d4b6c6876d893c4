"""Derived NBLs: NdisAllocateCloneNetBufferList, FwpsAllocateCloneNetBufferList0,
FwpsAllocateDeepCloneNetBufferList0, fragments and reassembly, their frees,
and the other FWPS NBL calls.  Reference: docs/derived.md.

Rules and choices:
- The NDIS calls leave ParentNetBufferList and ChildRefCount to the caller
  (documented); the FWPS clone and deep clone set ParentNetBufferList and add
  1 to the parent's ChildRefCount, and [UNSPEC, chosen]
  FwpsFreeCloneNetBufferList0 takes that 1 back.  A parent is freed only at
  ChildRefCount 0 (BugCheck 0x7C/0x85).
- A clone has one new NB per original NB covering only the used data: with
  new MDLs (partial MDLs over the original buffers, MDL_PARTIAL, nothing
  copied) its DataOffset is 0 [UNSPEC]; with NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS
  it shares the original's chain and keeps the original's DataOffset,
  CurrentMdl and CurrentMdlOffset [UNSPEC].  Zero-length MDLs inside the used
  range get no partial MDL; an NB with no used data gets a NULL chain.
- No context, OOB info, flags or SourceHandle are copied [UNSPEC]: use
  NdisCopySend/ReceiveNetBufferListInfo.  The NBL pool gives the clone its
  ProtocolId and tag; a clone never takes a pool's preallocated NB.
- NULL pool handles use the Kernel's default pools, and then
  NdisGetPoolFromNetBufferList(clone) returns the default pool's handle.
- NDIS_CLONE_FLAGS_RESERVED or undefined flag bits: ValueError (FWPS: any
  non-zero flags).  NdisFreeCloneNetBufferList with FreeCloneFlags other than
  the allocation's is BugCheck 0x7C/0x89 (it would otherwise free the
  original's MDLs or leak the clone's).
- Before any derived NBL is freed, its NB list and MDL chains must be as
  allocated and no retreat MDL may remain (BugCheck 0x7C/0x8A): documented
  for the FWPS clone, applied to all since every driver must undo its splits.
- The deep clone copies each NB's used bytes (one memcpy per source MDL run)
  into one new buffer per NB and gets an initial context block [UNSPEC:
  Size = max(original's first context Size, pool ContextSize, 16), all
  unused].
- Fragments: each original NB, from StartOffset past its data start, is cut
  into pieces of at most MaximumLength (never joining two NBs), each then
  retreated by DataOffsetDelta with DataBackFill more bytes (one new buffer of
  DataOffsetDelta + DataBackFill at the head: DataOffset = DataBackFill).  An
  NB with no bytes past StartOffset gives no fragment [UNSPEC].  Reassembly
  joins every NB's bytes past StartOffset into one NB, then retreats it the
  same way.  Their frees take the same DataOffsetDelta (BugCheck 0x7C/0x8F
  otherwise) and release everything at once.
- FwpsFreeNetBufferList0 does not free the caller's MDL chain [UNSPEC].
  FwpsReferenceNetBufferList0 keeps an NBL from being freed (0x7C/0x8B).
"""

from __future__ import annotations

from typing import Any

from ndisemu._args import boolean, multiple_of, opt, uint
from ndisemu._native import ffi, lib
from ndisemu.constants import for_version

_C = for_version()
_VALID_CLONE_FLAGS = _C["NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS"]
STATUS_SUCCESS = _C["STATUS_SUCCESS"]
STATUS_INSUFFICIENT_RESOURCES = _C["STATUS_INSUFFICIENT_RESOURCES"]
NULL = ffi.NULL
_ORIGIN_CLONE = lib.NDISEMU_ORIGIN_CLONE
_ORIGIN_FWPS_CLONE = lib.NDISEMU_ORIGIN_FWPS_CLONE


class CloneCalls:
    """Derived-NBL and FWPS calls of :class:`ndisemu.Kernel`."""

    def _pools(self, nbl_pool: Any, nb_pool: Any) -> tuple[Any, Any]:
        # None and ffi.NULL are both false: NDIS then uses its default pools.
        return nbl_pool or self.default_nbl_pool, nb_pool or self.default_nb_pool

    # The allocate/free pairs below are the benchmark's Python mode: they keep
    # to one native call plus the argument checks, inline (opt() is the one
    # extra Python call: it turns a checked view into its pointer).

    def NdisAllocateCloneNetBufferList(self, OriginalNetBufferList: Any,
                                       NetBufferListPoolHandle: Any, NetBufferPoolHandle: Any,
                                       AllocateCloneFlags: int) -> Any:
        """A clone sharing the original's data; NULL on allocation failure."""
        if AllocateCloneFlags.__class__ is not int or AllocateCloneFlags & ~_VALID_CLONE_FLAGS:
            uint(AllocateCloneFlags, "AllocateCloneFlags")
            raise ValueError(f"AllocateCloneFlags={AllocateCloneFlags:#x}: only "
                             "NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS is defined "
                             "(NDIS_CLONE_FLAGS_RESERVED is reserved)")
        if not (NetBufferListPoolHandle or NetBufferPoolHandle):
            # NULL handles: the core's default-pool entry, fewest arguments
            try:
                clone = lib.ndisemu_clone_default_pools(self._k, OriginalNetBufferList or NULL,
                                                        AllocateCloneFlags, _ORIGIN_CLONE)
            except TypeError:       # a view: see opt()
                clone = lib.ndisemu_clone_default_pools(self._k, opt(OriginalNetBufferList),
                                                        AllocateCloneFlags, _ORIGIN_CLONE)
            if clone:
                return clone
            return self._done("NdisAllocateCloneNetBufferList", lib.ndisemu_last_rc(self._k),
                              NULL)
        out = self._out_nbl
        rc = lib.ndisemu_clone_nbl(self._k, opt(OriginalNetBufferList),
                                   NetBufferListPoolHandle or self.default_nbl_pool,
                                   NetBufferPoolHandle or self.default_nb_pool,
                                   AllocateCloneFlags, _ORIGIN_CLONE, out)
        if rc == 0:
            return out[0]
        return self._done("NdisAllocateCloneNetBufferList", rc, NULL)

    def NdisFreeCloneNetBufferList(self, CloneNetBufferList: Any, FreeCloneFlags: int) -> None:
        """Frees the clone's NBL, NBs and MDLs (not the original's MDLs)."""
        if FreeCloneFlags.__class__ is not int or not 0 <= FreeCloneFlags <= 0xFFFFFFFF:
            uint(FreeCloneFlags, "FreeCloneFlags")
        try:
            rc = lib.ndisemu_free_clone_nbl(self._k, CloneNetBufferList or NULL, FreeCloneFlags,
                                            _ORIGIN_CLONE)
        except TypeError:           # a view: see opt()
            rc = lib.ndisemu_free_clone_nbl(self._k, opt(CloneNetBufferList), FreeCloneFlags,
                                            _ORIGIN_CLONE)
        if rc:
            raise self._raise("NdisFreeCloneNetBufferList")

    def FwpsAllocateCloneNetBufferList0(self, originalNetBufferList: Any,
                                        netBufferListPoolHandle: Any, netBufferPoolHandle: Any,
                                        allocateCloneFlags: int) -> tuple[int, Any]:
        """(NTSTATUS, clone): as the NDIS clone, plus ParentNetBufferList and
        the parent's ChildRefCount + 1."""
        if allocateCloneFlags.__class__ is not int or allocateCloneFlags:
            if uint(allocateCloneFlags, "allocateCloneFlags"):
                raise ValueError("allocateCloneFlags must be 0: no FWPS clone flags are defined")
        if not (netBufferListPoolHandle or netBufferPoolHandle):
            try:
                clone = lib.ndisemu_clone_default_pools(self._k, originalNetBufferList or NULL, 0,
                                                        _ORIGIN_FWPS_CLONE)
            except TypeError:       # a view: see opt()
                clone = lib.ndisemu_clone_default_pools(self._k, opt(originalNetBufferList), 0,
                                                        _ORIGIN_FWPS_CLONE)
            if clone:
                return STATUS_SUCCESS, clone
            return self._ntstatus("FwpsAllocateCloneNetBufferList0",
                                  lib.ndisemu_last_rc(self._k), NULL)
        out = self._out_nbl
        rc = lib.ndisemu_clone_nbl(self._k, opt(originalNetBufferList),
                                   netBufferListPoolHandle or self.default_nbl_pool,
                                   netBufferPoolHandle or self.default_nb_pool, 0,
                                   _ORIGIN_FWPS_CLONE, out)
        if rc == 0:
            return STATUS_SUCCESS, out[0]
        return self._ntstatus("FwpsAllocateCloneNetBufferList0", rc, NULL)

    def FwpsAllocateDeepCloneNetBufferList0(self, originalNetBufferList: Any,
                                            netBufferListPoolHandle: Any,
                                            netBufferPoolHandle: Any) -> tuple[int, Any]:
        """(NTSTATUS, clone) with the used bytes copied into new buffers."""
        out = self._out_nbl
        rc = lib.ndisemu_deep_clone_nbl(self._k, opt(originalNetBufferList),
                                        netBufferListPoolHandle or self.default_nbl_pool,
                                        netBufferPoolHandle or self.default_nb_pool, out)
        if rc == 0:
            return STATUS_SUCCESS, out[0]
        return self._ntstatus("FwpsAllocateDeepCloneNetBufferList0", rc, NULL)

    def FwpsFreeCloneNetBufferList0(self, netBufferList: Any, freeCloneFlags: int = 0) -> None:
        """Frees an FWPS clone or deep clone and gives back the parent's count."""
        if freeCloneFlags.__class__ is not int or freeCloneFlags:
            if uint(freeCloneFlags, "freeCloneFlags"):
                raise ValueError("freeCloneFlags must be 0")
        try:
            rc = lib.ndisemu_free_clone_nbl(self._k, netBufferList or NULL, 0, _ORIGIN_FWPS_CLONE)
        except TypeError:           # a view: see opt()
            rc = lib.ndisemu_free_clone_nbl(self._k, opt(netBufferList), 0, _ORIGIN_FWPS_CLONE)
        if rc:
            raise self._raise("FwpsFreeCloneNetBufferList0")

    def NdisAllocateFragmentNetBufferList(self, OriginalNetBufferList: Any,
                                          NetBufferListPool: Any, NetBufferPool: Any,
                                          StartOffset: int, MaximumLength: int,
                                          DataOffsetDelta: int, DataBackFill: int,
                                          AllocateFragmentFlags: int = 0) -> Any:
        """Cuts each NB, from StartOffset past its data start, into NBs of at most
        MaximumLength bytes, each retreated by DataOffsetDelta with DataBackFill
        more (one new header buffer: DataOffset = DataBackFill).  NULL on failure."""
        uint(StartOffset, "StartOffset")
        if not uint(MaximumLength, "MaximumLength"):
            raise ValueError("MaximumLength must be at least 1")
        uint(DataOffsetDelta, "DataOffsetDelta")
        uint(DataBackFill, "DataBackFill")
        if uint(AllocateFragmentFlags, "AllocateFragmentFlags"):
            raise ValueError("AllocateFragmentFlags must be 0")
        nbl_pool, nb_pool = self._pools(NetBufferListPool, NetBufferPool)
        rc = lib.ndisemu_fragment_nbl(self._k, opt(OriginalNetBufferList), nbl_pool, nb_pool,
                                      StartOffset, MaximumLength, DataOffsetDelta,
                                      DataBackFill, self._out_nbl)
        return self._done("NdisAllocateFragmentNetBufferList", rc, self._out_nbl[0])

    def NdisFreeFragmentNetBufferList(self, FragmentNetBufferList: Any, DataOffsetDelta: int,
                                      FreeFragmentFlags: int = 0) -> None:
        """Frees a fragment NBL; DataOffsetDelta must be the allocation's
        (0x7C/0x8F) and its NBs and MDLs as allocated (0x7C/0x8A)."""
        uint(DataOffsetDelta, "DataOffsetDelta")
        if uint(FreeFragmentFlags, "FreeFragmentFlags"):
            raise ValueError("FreeFragmentFlags must be 0")
        self._check("NdisFreeFragmentNetBufferList",
                    lib.ndisemu_free_fragment_nbl(self._k, opt(FragmentNetBufferList),
                                                  DataOffsetDelta))

    def NdisAllocateReassembledNetBufferList(self, FragmentNetBufferList: Any,
                                             NetBufferAndNetBufferListPoolHandle: Any,
                                             StartOffset: int, DataOffsetDelta: int,
                                             DataBackFill: int,
                                             AllocateReassembleFlags: int = 0) -> Any:
        """One NB holding every NB's bytes past StartOffset, retreated by
        DataOffsetDelta with DataBackFill more; a pool given must have
        fAllocateNetBuffer and no DataSize (0x7C/0x8C).  NULL on failure."""
        uint(StartOffset, "StartOffset")
        uint(DataOffsetDelta, "DataOffsetDelta")
        uint(DataBackFill, "DataBackFill")
        if uint(AllocateReassembleFlags, "AllocateReassembleFlags"):
            raise ValueError("AllocateReassembleFlags must be 0")
        given = not (NetBufferAndNetBufferListPoolHandle is None
                     or NetBufferAndNetBufferListPoolHandle == NULL)
        pool = NetBufferAndNetBufferListPoolHandle if given else self.default_nbl_pool
        rc = lib.ndisemu_reassemble_nbl(self._k, opt(FragmentNetBufferList), pool, int(given),
                                        StartOffset, DataOffsetDelta, DataBackFill,
                                        self._out_nbl)
        return self._done("NdisAllocateReassembledNetBufferList", rc, self._out_nbl[0])

    def NdisFreeReassembledNetBufferList(self, ReassembledNetBufferList: Any,
                                         DataOffsetDelta: int,
                                         FreeReassembleFlags: int = 0) -> None:
        """Frees a reassembled NBL; DataOffsetDelta must be the allocation's
        (0x7C/0x8F)."""
        uint(DataOffsetDelta, "DataOffsetDelta")
        if uint(FreeReassembleFlags, "FreeReassembleFlags"):
            raise ValueError("FreeReassembleFlags must be 0")
        self._check("NdisFreeReassembledNetBufferList",
                    lib.ndisemu_free_reassembled_nbl(self._k, opt(ReassembledNetBufferList),
                                                     DataOffsetDelta))

    def FwpsAllocateNetBufferAndNetBufferList0(self, poolHandle: Any, contextSize: int,
                                               contextBackFill: int, mdlChain: Any,
                                               dataOffset: int,
                                               dataLength: int) -> tuple[int, Any]:
        """(NTSTATUS, NBL): NdisAllocateNetBufferAndNetBufferList for WFP;
        freed with FwpsFreeNetBufferList0."""
        multiple_of(contextSize, "contextSize", 16)
        multiple_of(contextBackFill, "contextBackFill", 16)
        uint(dataOffset, "dataOffset")
        uint(dataLength, "dataLength")
        rc = lib.ndisemu_fwps_allocate_nb_and_nbl(self._k, opt(poolHandle), contextSize,
                                                  contextBackFill, opt(mdlChain), dataOffset,
                                                  dataLength, self._out_nbl)
        return self._ntstatus("FwpsAllocateNetBufferAndNetBufferList0", rc, self._out_nbl[0])

    def FwpsFreeNetBufferList0(self, netBufferList: Any) -> None:
        """Frees an NBL from FwpsAllocateNetBufferAndNetBufferList0; the caller's
        MDL chain is left to the caller."""
        self._check("FwpsFreeNetBufferList0", lib.ndisemu_fwps_free_nbl(self._k,
                                                                         opt(netBufferList)))

    def FwpsReferenceNetBufferList0(self, netBufferList: Any, intendToModify: Any) -> None:
        """Keeps the NBL from being freed until the matching dereference."""
        boolean(intendToModify, "intendToModify")
        self._check("FwpsReferenceNetBufferList0",
                    lib.ndisemu_fwps_reference(self._k, opt(netBufferList), 1, 0))

    def FwpsDereferenceNetBufferList0(self, netBufferList: Any, dispatchLevel: Any) -> None:
        """`dispatchLevel` must be TRUE only at DISPATCH_LEVEL (0x7C/0x8F)."""
        self._check("FwpsDereferenceNetBufferList0",
                    lib.ndisemu_fwps_reference(self._k, opt(netBufferList), -1,
                                               boolean(dispatchLevel, "dispatchLevel")))

    def _ntstatus(self, call: str, rc: int, value: Any) -> tuple[int, Any]:
        if rc == 0:
            return STATUS_SUCCESS, value
        if rc == lib.NDISEMU_NO_MEMORY:
            return STATUS_INSUFFICIENT_RESOURCES, NULL
        raise self._raise(call)
