"""Data-space calls: NdisRetreatNetBufferDataStart, NdisAdvanceNetBufferDataStart,
their NBL variants, NdisGetDataBuffer, NdisCopyFromNetBufferToNetBuffer,
NdisCopySend/ReceiveNetBufferListInfo and the NBL protocol id.  Reference:
docs/data-space.md; the C side is ndisemu/native/dataspace.c.

Rules (every call keeps DataOffset == bytes of the MDLs before CurrentMdl +
CurrentMdlOffset; a refused call raises BugCheck and changes nothing):
- Retreat by DataOffsetDelta <= DataOffset: only DataOffset, DataLength,
  CurrentMdl and CurrentMdlOffset move; nothing is allocated.  Delta ==
  DataOffset is such a retreat (the documentation's two thresholds disagree
  on it; no allocation is needed).  Retreat by 0 changes nothing.
- Retreat by more than DataOffset: one new MDL goes to the head of the chain,
  from AllocateMdlHandler(BufferSize) or, with None, NDIS's default allocator
  (a pool buffer + MDL that NDIS owns).  A handler returning None, or an
  allocation failure (arena exhausted or ``inject_failures``), returns
  NDIS_STATUS_RESOURCES with the NB exactly as it was.  The handler's MDL is
  checked like any pointer (a live MDL, ByteCount >= BufferSize, its range
  live, Next NULL, not already in the chain); a bad one is BugCheck
  0x7C/0x81 or 0x83 (not a live MDL), 0x8E or 0x8F and the NB is unchanged.
- Advance: DataOffset grows and DataLength shrinks by DataOffsetDelta.
  Advancing by more than DataLength is BugCheck 0x7C, parameter 1 = 0x88
  (NDISEMU_ADVANCE_PAST_END; P2 the NB, P3 the delta, P4 DataLength).  With
  FreeMdl, the head MDLs that retreats added and that are now wholly unused
  are unlinked and freed (DataOffset drops by their bytes): default MDLs by
  NDIS's default freer, handler MDLs through FreeMdlHandler.  The freer must
  be the allocator's counterpart: a handler MDL with FreeMdlHandler None, or
  a default MDL with a FreeMdlHandler, is BugCheck 0x7C/0x84 before anything
  changes.  A caller's MDL is never freed; with FreeMdl FALSE nothing is.
- NBL variants: every NB is checked first.  NdisAdvanceNetBufferListDataStart
  then advances each NB (FreeMdlHandler is called after all NBs changed).
  NdisRetreatNetBufferListDataStart is all-or-nothing: if an NB fails (None
  from the handler, allocation failure, a BugCheck or an exception from a
  handler), the NBs already retreated are put back exactly (every field) and
  the MDLs they got are freed, through FreeMdlHandler for handler MDLs and
  the default freer for default ones; then NDIS_STATUS_RESOURCES is returned
  (or the BugCheck/exception raised).
- NdisGetDataBuffer starts at CurrentMdl/CurrentMdlOffset and checks them
  (and, under the verifier, the whole NB) before following them.  It returns
  a pointer into the buffer when the BytesNeeded bytes lie in one MDL and
  address % AlignMultiple == AlignOffset; otherwise a copy in Storage; NULL
  when Storage is None and a copy would be needed, and NULL when BytesNeeded
  > DataLength.  The NB is not changed.
- NdisCopyFromNetBufferToNetBuffer counts both offsets from each NB's data
  start, copies min(BytesToCopy, source bytes left, destination room left)
  and returns (NDIS_STATUS_SUCCESS, BytesCopied).  No NB field changes.
- NdisCopySend/ReceiveNetBufferListInfo copy the slot lists SEND_INFO /
  RECEIVE_INFO below by name, resolved for the Kernel's NDIS version (x64); names that
  version lacks are skipped.  No other field (NblFlags included) is copied.

Choices where the documentation is silent ([UNSPEC]):
- Allocating retreat: BufferSize = (DataOffsetDelta - DataOffset) +
  DataBackFill.  The old unused bytes become part of the used region (the
  caller's MDLs are never shortened or edited), the new MDL holds the rest of
  the header, and the new DataOffset = DataBackFill (ByteCount - (delta -
  old DataOffset) when a handler returns a larger MDL: the header's _Inout_
  BufferSize lets it).  So the new header area is contiguous only when the
  old DataOffset was 0, and an advance by the same delta with FreeMdl gives
  back every field and frees the MDL.
- Handler bookkeeping: the NB's private retreat_mdls counts the head MDLs
  retreats added; an MDL's private origin says which allocator made it
  (NDISEMU_ORIGIN_RETREAT only for the default allocator).
- A failed NBL retreat whose handler MDLs cannot be freed because
  FreeMdlHandler is None leaves those MDLs (unlinked) to the caller; ndisemu
  never frees a caller's MDL with the default freer.
- NdisGetDataBuffer: contiguity is judged in the MDL that holds the first
  needed byte (MDLs CurrentMdlOffset has used up, and zero-length MDLs, are
  skipped).  Contiguous but misaligned data is treated as not contiguous
  (copied into Storage).  Storage's own alignment is the caller's business;
  it is returned as given.  BytesNeeded 0 follows the same rules: 0 bytes
  are contiguous, so the data-start address comes back when it meets the
  alignment, else Storage (nothing written) or NULL; an NB with no MDL gives
  Storage or NULL.  Mapping never fails (the arena is always mapped).
- Storage is cdata (an array, whose length is checked, or a pointer into the
  arena, checked live for BytesNeeded bytes) or a writable Python buffer
  (bytearray, numpy array, ...) passed through ffi.from_buffer.  A read-only
  buffer is TypeError; one smaller than BytesNeeded (or a pointer outside
  the arena, whose size cannot be known) is ValueError.
- NdisCopyFromNetBufferToNetBuffer: the destination is bounded by its MDL
  chain's capacity from its data start (chain bytes - DataOffset), not by
  its DataLength, because the caller is told to fix DataLength up
  afterwards; the source by its DataLength.  Offsets beyond either end copy
  0 bytes and succeed.  Overlapping bytes (same NB, shared MDLs) are copied
  with memmove semantics: the bytes are staged through a buffer first.
  NDIS_STATUS_RESOURCES only when that staging buffer cannot be allocated.
- NdisGetNetBufferListProtocolId / NdisSetNetBufferListProtocolId check
  IRQL <= DISPATCH_LEVEL (the header's rule; the doc allows any).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ndisemu._args import boolean, opt, pointer_arg, uint
from ndisemu._native import ffi, lib

# The OOB info slots each copy carries, by name, as the documentation lists
# them (x64; VirtualSubnetInfo is AMD64-only).  docs/data-space.md tabulates them.
SEND_INFO = (
    "TcpIpChecksumNetBufferListInfo", "IPsecOffloadV1NetBufferListInfo",
    "TcpLargeSendNetBufferListInfo", "Ieee8021QNetBufferListInfo", "NetBufferListCancelId",
    "MediaSpecificInformation", "NetBufferListProtocolId",
    "IPsecOffloadV2TunnelNetBufferListInfo", "IPsecOffloadV2HeaderNetBufferListInfo",
    "VirtualSubnetInfo", "NetBufferListFilteringInfo",
)
RECEIVE_INFO = (
    "TcpIpChecksumNetBufferListInfo", "IPsecOffloadV1NetBufferListInfo", "TcpReceiveNoPush",
    "Ieee8021QNetBufferListInfo", "MediaSpecificInformation", "NetBufferListFrameType",
    "NetBufferListHashValue", "NetBufferListHashInfo",
    "IPsecOffloadV2TunnelNetBufferListInfo", "IPsecOffloadV2HeaderNetBufferListInfo",
    "VirtualSubnetInfo", "NetBufferListFilteringInfo",
)

AllocateMdlHandler = Callable[[int], Any]
FreeMdlHandler = Callable[[Any], Any]


def _handler(value: Any, name: str) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None")
    return value


def _nbs(nbl: Any) -> list[Any]:
    out = []
    nb = nbl.FirstNetBuffer
    while nb != ffi.NULL:
        out.append(nb)
        nb = nb.Next
    return out


class DataSpaceCalls:
    """Data-space calls of :class:`ndisemu.Kernel` (see the module docstring)."""

    # -- retreat ---------------------------------------------------------------

    def _retreat_mdl(self, call: str, need: int, handler: Any) -> Any:
        """The new head MDL: from the handler or the default allocator; NULL
        when none could be had."""
        if handler is None:
            out = ffi.new("MDL **")
            rc = lib.ndisemu_retreat_allocate(self._k, need, out)
            return self._done(call, rc, out[0])
        mdl = opt(handler(need))           # a view is as good as its pointer
        if mdl == ffi.NULL:
            return ffi.NULL
        if not isinstance(mdl, ffi.CData):
            raise TypeError(f"{call}: AllocateMdlHandler must return an MDL * or None, "
                            f"not {type(mdl).__name__}")
        return ffi.cast("MDL *", mdl)

    def _retreat_one(self, call: str, nb: Any, delta: int, backfill: int,
                     handler: Any) -> bool:
        """Retreats one NB; False (nothing changed) when no MDL could be had."""
        need = ffi.new("uint32_t *")
        # Commit without an MDL: done unless the unused space is too small.
        self._check(call, lib.ndisemu_retreat_commit(self._k, nb, delta, backfill, ffi.NULL,
                                                     need))
        if not need[0]:
            return True
        mdl = self._retreat_mdl(call, need[0], handler)
        if mdl == ffi.NULL:
            return False
        rc = lib.ndisemu_retreat_commit(self._k, nb, delta, backfill, mdl, need)
        if rc and handler is None:
            bug = self._raise(call)
            lib.ndisemu_retreat_free_default(self._k, mdl)
            raise bug
        self._check(call, rc)
        return True

    def NdisRetreatNetBufferDataStart(self, NetBuffer: Any, DataOffsetDelta: int,
                                      DataBackFill: int,
                                      AllocateMdlHandler: AllocateMdlHandler | None) -> int:
        """Grows the used data by DataOffsetDelta at the front (module docstring).
        NDIS_STATUS_SUCCESS, or NDIS_STATUS_RESOURCES with the NB unchanged."""
        call = "NdisRetreatNetBufferDataStart"
        NetBuffer = pointer_arg(NetBuffer, "NetBuffer")
        uint(DataOffsetDelta, "DataOffsetDelta")
        uint(DataBackFill, "DataBackFill")
        _handler(AllocateMdlHandler, "AllocateMdlHandler")
        ok = self._retreat_one(call, NetBuffer, DataOffsetDelta, DataBackFill,
                               AllocateMdlHandler)
        return self._status(call, 0 if ok else lib.NDISEMU_NO_MEMORY)

    def NdisRetreatNetBufferListDataStart(self, NetBufferList: Any, DataOffsetDelta: int,
                                          DataBackFill: int,
                                          AllocateMdlHandler: AllocateMdlHandler | None,
                                          FreeMdlHandler: FreeMdlHandler | None) -> int:
        """NdisRetreatNetBufferDataStart on every NB, all or nothing: on a
        failure the NBs already retreated are restored exactly and their new
        MDLs freed (FreeMdlHandler / default freer), then
        NDIS_STATUS_RESOURCES."""
        call = "NdisRetreatNetBufferListDataStart"
        NetBufferList = pointer_arg(NetBufferList, "NetBufferList")
        uint(DataOffsetDelta, "DataOffsetDelta")
        uint(DataBackFill, "DataBackFill")
        _handler(AllocateMdlHandler, "AllocateMdlHandler")
        _handler(FreeMdlHandler, "FreeMdlHandler")
        self._check(call, lib.ndisemu_check_nbl(self._k, NetBufferList))
        nbs = _nbs(NetBufferList)
        need = ffi.new("uint32_t *")
        for nb in nbs:       # check every NB before changing any
            self._check(call, lib.ndisemu_retreat_plan(self._k, nb, DataOffsetDelta,
                                                       DataBackFill, need))
        done: list[Any] = []
        ok = False
        try:
            for nb in nbs:
                state = ffi.new("ndisemu_nb_state *")
                self._check(call, lib.ndisemu_nb_save(self._k, nb, state))
                if not self._retreat_one(call, nb, DataOffsetDelta, DataBackFill,
                                         AllocateMdlHandler):
                    break
                done.append((nb, state))
            else:
                ok = True
        finally:
            if not ok:
                self._undo_retreats(call, done, FreeMdlHandler)
        return self._status(call, 0 if ok else lib.NDISEMU_NO_MEMORY)

    def _undo_retreats(self, call: str, done: list[Any], free_handler: Any) -> None:
        added = ffi.new("MDL **")
        for nb, state in reversed(done):
            self._check(call, lib.ndisemu_nb_restore(self._k, nb, state, added))
            mdl = added[0]
            if mdl == ffi.NULL:
                continue
            if lib.ndisemu_object_origin(self._k, mdl) == lib.NDISEMU_ORIGIN_RETREAT:
                self._check(call, lib.ndisemu_retreat_free_default(self._k, mdl))
            elif free_handler is not None:
                free_handler(mdl)

    # -- advance ---------------------------------------------------------------

    def _advance_commit(self, call: str, nb: Any, delta: int, free_mdl: int,
                        handler: Any, count: int) -> list[Any]:
        room = ffi.new("MDL *[]", max(count, 1))
        handed = ffi.new("uint32_t *")
        self._check(call, lib.ndisemu_advance_commit(self._k, nb, delta, free_mdl,
                                                     handler is not None, room, count, handed))
        return [room[i] for i in range(handed[0])]

    def NdisAdvanceNetBufferDataStart(self, NetBuffer: Any, DataOffsetDelta: int,
                                      FreeMdl: bool,
                                      FreeMdlHandler: FreeMdlHandler | None) -> None:
        """Shrinks the used data by DataOffsetDelta at the front; with
        FreeMdl, frees the retreat MDLs left wholly unused (module docstring).
        Past DataLength: BugCheck 0x7C/0x88."""
        call = "NdisAdvanceNetBufferDataStart"
        NetBuffer = pointer_arg(NetBuffer, "NetBuffer")
        uint(DataOffsetDelta, "DataOffsetDelta")
        free_mdl = boolean(FreeMdl, "FreeMdl")
        _handler(FreeMdlHandler, "FreeMdlHandler")
        count = ffi.new("uint32_t *")
        if FreeMdlHandler is not None and free_mdl:
            # only the handler's MDLs need room to come back in
            self._check(call, lib.ndisemu_advance_plan(self._k, NetBuffer, DataOffsetDelta,
                                                       free_mdl, 1, count))
        for mdl in self._advance_commit(call, NetBuffer, DataOffsetDelta, free_mdl,
                                        FreeMdlHandler, count[0]):
            FreeMdlHandler(mdl)

    def NdisAdvanceNetBufferListDataStart(self, NetBufferList: Any, DataOffsetDelta: int,
                                          FreeMdl: bool,
                                          FreeMdlHandler: FreeMdlHandler | None) -> None:
        """NdisAdvanceNetBufferDataStart on every NB; every NB is checked
        before any changes."""
        call = "NdisAdvanceNetBufferListDataStart"
        NetBufferList = pointer_arg(NetBufferList, "NetBufferList")
        uint(DataOffsetDelta, "DataOffsetDelta")
        free_mdl = boolean(FreeMdl, "FreeMdl")
        _handler(FreeMdlHandler, "FreeMdlHandler")
        self._check(call, lib.ndisemu_check_nbl(self._k, NetBufferList))
        count = ffi.new("uint32_t *")
        plans = []
        for nb in _nbs(NetBufferList):
            self._check(call, lib.ndisemu_advance_plan(self._k, nb, DataOffsetDelta, free_mdl,
                                                       FreeMdlHandler is not None, count))
            plans.append((nb, count[0]))
        freed: list[Any] = []
        for nb, n in plans:
            freed += self._advance_commit(call, nb, DataOffsetDelta, free_mdl, FreeMdlHandler,
                                          n)
        for mdl in freed:
            FreeMdlHandler(mdl)

    # -- NdisGetDataBuffer -----------------------------------------------------

    def _storage(self, Storage: Any, needed: int) -> Any:
        if isinstance(Storage, ffi.CData):
            if Storage == ffi.NULL:
                return ffi.NULL
            kind = ffi.typeof(Storage).kind
            if kind == "array":
                if ffi.sizeof(Storage) < needed:
                    raise ValueError(f"Storage holds {ffi.sizeof(Storage)} bytes, "
                                     f"BytesNeeded is {needed}")
            elif kind != "pointer":
                raise TypeError("Storage must be a pointer or array cdata, a writable "
                                "buffer or None")
            elif not self.owns(Storage):
                raise ValueError("Storage: a pointer outside the arena has no known size; "
                                 "pass an array cdata or a writable buffer")
            return ffi.cast("uint8_t *", Storage)
        try:
            view = memoryview(Storage)
        except TypeError:
            raise TypeError("Storage must be cdata, a writable buffer (bytearray, numpy "
                            f"array) or None, not {type(Storage).__name__}") from None
        if view.readonly:
            raise TypeError("Storage is a read-only buffer")
        if view.nbytes < needed:
            raise ValueError(f"Storage holds {view.nbytes} bytes, BytesNeeded is {needed}")
        return ffi.cast("uint8_t *", ffi.from_buffer(Storage, require_writable=True))

    def NdisGetDataBuffer(self, NetBuffer: Any, BytesNeeded: int, Storage: Any,
                          AlignMultiple: int, AlignOffset: int) -> Any:
        """`void *` to BytesNeeded contiguous bytes from the data start: into
        the buffer, or a copy in Storage; ffi.NULL when neither (module docstring)."""
        NetBuffer = pointer_arg(NetBuffer, "NetBuffer")
        uint(BytesNeeded, "BytesNeeded")
        uint(AlignMultiple, "AlignMultiple")
        uint(AlignOffset, "AlignOffset")
        if not 1 <= AlignMultiple <= 8192 or AlignMultiple & (AlignMultiple - 1):
            raise ValueError(f"AlignMultiple={AlignMultiple} must be a power of two in 1..8192")
        if AlignOffset >= AlignMultiple:
            raise ValueError(f"AlignOffset={AlignOffset} must be below AlignMultiple "
                             f"({AlignMultiple})")
        storage = self._storage(opt(Storage), BytesNeeded)
        out = ffi.new("void **")
        rc = lib.ndisemu_get_data_buffer(self._k, NetBuffer, BytesNeeded, storage,
                                         AlignMultiple, AlignOffset, out)
        self._check("NdisGetDataBuffer", rc)
        return out[0]

    # -- copies ----------------------------------------------------------------

    def NdisCopyFromNetBufferToNetBuffer(self, Destination: Any, DestinationOffset: int,
                                         BytesToCopy: int, Source: Any,
                                         SourceOffset: int) -> tuple[int, int]:
        """(status, BytesCopied); offsets from each NB's data start, the
        destination bounded by its MDL chain (module docstring)."""
        Destination = pointer_arg(Destination, "Destination")
        Source = pointer_arg(Source, "Source")
        uint(DestinationOffset, "DestinationOffset")
        uint(BytesToCopy, "BytesToCopy")
        uint(SourceOffset, "SourceOffset")
        copied = ffi.new("uint32_t *")
        rc = lib.ndisemu_copy_nb_to_nb(self._k, Destination, DestinationOffset, BytesToCopy,
                                       Source, SourceOffset, copied)
        return self._status("NdisCopyFromNetBufferToNetBuffer", rc), copied[0]

    def _info_slots(self, names: tuple[str, ...]) -> list[int]:
        slots = []
        for name in names:
            index = self.constants.get(name)
            if index is not None and index < self.max_info and index not in slots:
                slots.append(index)
        return slots

    def _copy_info(self, call: str, dst: Any, src: Any, names: tuple[str, ...]) -> None:
        dst = pointer_arg(dst, "DestNetBufferList")
        src = pointer_arg(src, "SrcNetBufferList")
        slots = self._info_slots(names)
        array = ffi.new("uint32_t[]", slots)
        self._check(call, lib.ndisemu_copy_nbl_info(self._k, dst, src, array, len(slots)))

    def NdisCopySendNetBufferListInfo(self, DestNetBufferList: Any,
                                      SrcNetBufferList: Any) -> None:
        """Copies the send-path info slots (SEND_INFO) that exist at
        this Kernel's NDIS version."""
        self._copy_info("NdisCopySendNetBufferListInfo", DestNetBufferList, SrcNetBufferList,
                        SEND_INFO)

    def NdisCopyReceiveNetBufferListInfo(self, DestNetBufferList: Any,
                                         SrcNetBufferList: Any) -> None:
        """Copies the receive-path info slots (RECEIVE_INFO) that exist
        at this Kernel's NDIS version."""
        self._copy_info("NdisCopyReceiveNetBufferListInfo", DestNetBufferList,
                        SrcNetBufferList, RECEIVE_INFO)

    # -- protocol id -------------------------------------------------------------

    def NdisGetNetBufferListProtocolId(self, NetBufferList: Any) -> int:
        """The low byte of info slot NetBufferListProtocolId."""
        NetBufferList = pointer_arg(NetBufferList, "NetBufferList")
        value = ffi.new("uint8_t *")
        self._check("NdisGetNetBufferListProtocolId",
                    lib.ndisemu_nbl_protocol_id(self._k, NetBufferList,
                                                self.constants["NetBufferListProtocolId"], 0,
                                                value))
        return value[0]

    def NdisSetNetBufferListProtocolId(self, NetBufferList: Any, ProtocolId: int) -> None:
        """Writes only the first (low) byte of info slot NetBufferListProtocolId."""
        NetBufferList = pointer_arg(NetBufferList, "NetBufferList")
        value = ffi.new("uint8_t *", uint(ProtocolId, "ProtocolId", 8))
        self._check("NdisSetNetBufferListProtocolId",
                    lib.ndisemu_nbl_protocol_id(self._k, NetBufferList,
                                                self.constants["NetBufferListProtocolId"], 1,
                                                value))
