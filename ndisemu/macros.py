"""The ndis.h accessor macros and NBL flag helpers, as module functions.

In C these are plain field accesses.  Here each first checks that its
argument is a live object of the right kind in some Kernel's arena, so a
wrong pointer raises BugCheck 0x50 instead of crashing the interpreter.
Values are those of the raw fields, except NET_BUFFER_LIST_STATUS, which is
shown unsigned like the NDIS_STATUS_* constants.  A checked view is accepted
wherever a pointer is and read through its raw pointer, so a pointer result
is raw cdata either way.
"""

from __future__ import annotations

from typing import Any

from ndisemu._args import opt, pointer_arg, uint
from ndisemu._native import ffi, lib
from ndisemu.verifier import BugCheck

NBL = lib.NDISEMU_KIND_NBL
NB = lib.NDISEMU_KIND_NB


def _live(ptr: Any, kind: int, macro: str) -> tuple[Any, Any]:
    """(the Kernel owning `ptr`, the raw pointer) once `ptr` (cdata or a
    view) is checked to be a live `kind`."""
    from ndisemu.kernel import kernel_of
    ptr = pointer_arg(ptr, "pointer")
    k = kernel_of(ptr)
    if k is None:
        address = int(ffi.cast("uintptr_t", ptr))
        raise BugCheck(0x50, (address, 0, 0, 0),
                       f"{macro}: dereference of {address:#x}, which is in no Kernel's arena "
                       "[bug check 0x50 PAGE_FAULT_IN_NONPAGED_AREA]")
    return k, k._probe(ptr, kind, macro)


def NET_BUFFER_LIST_FIRST_NB(nbl: Any) -> Any:
    """nbl->FirstNetBuffer (NULL when the NBL has no NB)."""
    _, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_FIRST_NB")
    return nbl.FirstNetBuffer


def NET_BUFFER_LIST_NEXT_NBL(nbl: Any) -> Any:
    """nbl->Next, the next NBL of the chain."""
    _, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_NEXT_NBL")
    return nbl.Next


def NET_BUFFER_NEXT_NB(nb: Any) -> Any:
    """nb->Next, the next NB of the NBL."""
    _, nb = _live(nb, NB, "NET_BUFFER_NEXT_NB")
    return nb.Next


def NET_BUFFER_FIRST_MDL(nb: Any) -> Any:
    """nb->MdlChain, the first MDL of the data space."""
    _, nb = _live(nb, NB, "NET_BUFFER_FIRST_MDL")
    return nb.MdlChain


def NET_BUFFER_DATA_LENGTH(nb: Any) -> int:
    """nb->DataLength, the bytes of used data (the ULONG member)."""
    _, nb = _live(nb, NB, "NET_BUFFER_DATA_LENGTH")
    return nb.DataLength


def NET_BUFFER_DATA_OFFSET(nb: Any) -> int:
    """nb->DataOffset, the unused bytes in front of the data (the backfill)."""
    _, nb = _live(nb, NB, "NET_BUFFER_DATA_OFFSET")
    return nb.DataOffset


def NET_BUFFER_CURRENT_MDL(nb: Any) -> Any:
    """nb->CurrentMdl, the MDL holding the first used byte."""
    _, nb = _live(nb, NB, "NET_BUFFER_CURRENT_MDL")
    return nb.CurrentMdl


def NET_BUFFER_CURRENT_MDL_OFFSET(nb: Any) -> int:
    """nb->CurrentMdlOffset, the first used byte's offset in CurrentMdl."""
    _, nb = _live(nb, NB, "NET_BUFFER_CURRENT_MDL_OFFSET")
    return nb.CurrentMdlOffset


def NET_BUFFER_CHECKSUM_BIAS(nb: Any) -> int:
    """nb->ChecksumBias, bytes TCP/IP skips when it computes a checksum."""
    _, nb = _live(nb, NB, "NET_BUFFER_CHECKSUM_BIAS")
    return nb.ChecksumBias


def NET_BUFFER_LIST_INFO(nbl: Any, id: int) -> Any:  # noqa: A002 - the header's name
    """Slot `id` of NetBufferListInfo as `void *`.  An id at or above the
    owning Kernel's MaxNetBufferListInfo is a ValueError."""
    k, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_INFO")
    return nbl.NetBufferListInfo[k.info_index(id)]


def NET_BUFFER_LIST_INFO_SET(nbl: Any, id: int, value: Any) -> None:  # noqa: A002
    """Writes slot `id`: an int (stored as a pointer-sized value) or a
    pointer cdata."""
    k, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_INFO_SET")
    index = k.info_index(id)
    if isinstance(value, int) and not isinstance(value, bool):
        uint(value, "value", 64)
        value = ffi.cast("void *", value)
    else:
        value = opt(value)          # None as NULL, a view as its pointer
    if not isinstance(value, ffi.CData):
        raise TypeError("value must be an int or a pointer cdata")
    nbl.NetBufferListInfo[index] = value


def NET_BUFFER_LIST_CONTEXT_DATA_START(nbl: Any) -> Any:
    """(PUCHAR)(Context + 1) + Context->Offset: the first used context byte."""
    k, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_CONTEXT_DATA_START")
    ctx = nbl.Context
    k._probe(ctx, lib.NDISEMU_KIND_CONTEXT, "NET_BUFFER_LIST_CONTEXT_DATA_START")
    return ffi.cast("uint8_t *", ctx) + ffi.sizeof("NET_BUFFER_LIST_CONTEXT") + ctx.Offset


def NET_BUFFER_LIST_CONTEXT_DATA_SIZE(nbl: Any) -> int:
    """Context->Size: the macro returns the block's total size, not the used
    part (a documented contradiction; the macro body is followed)."""
    k, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_CONTEXT_DATA_SIZE")
    ctx = nbl.Context
    k._probe(ctx, lib.NDISEMU_KIND_CONTEXT, "NET_BUFFER_LIST_CONTEXT_DATA_SIZE")
    return ctx.Size


def NET_BUFFER_LIST_STATUS(nbl: Any) -> int:
    """nbl->Status as an unsigned 32-bit value, as NDIS_STATUS_* are shown."""
    _, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_STATUS")
    return nbl.Status & 0xFFFFFFFF


def NET_BUFFER_LIST_FLAGS(nbl: Any) -> int:
    """nbl->Flags, the private flags (NBL_FLAGS_* ranges)."""
    _, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_FLAGS")
    return nbl.Flags


def NET_BUFFER_LIST_NBL_FLAGS(nbl: Any) -> int:
    """nbl->NblFlags, the public flags (NDIS_NBL_FLAGS_*)."""
    _, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_NBL_FLAGS")
    return nbl.NblFlags


def NdisSetNblFlag(nbl: Any, flag: int) -> None:
    """nbl->NblFlags |= flag."""
    _, nbl = _live(nbl, NBL, "NdisSetNblFlag")
    nbl.NblFlags |= uint(flag, "flag")


def NdisClearNblFlag(nbl: Any, flag: int) -> None:
    """nbl->NblFlags &= ~flag."""
    _, nbl = _live(nbl, NBL, "NdisClearNblFlag")
    nbl.NblFlags &= ~uint(flag, "flag") & 0xFFFFFFFF


def NdisTestNblFlag(nbl: Any, flag: int) -> bool:
    """True if any bit of `flag` is set in NblFlags."""
    _, nbl = _live(nbl, NBL, "NdisTestNblFlag")
    return (nbl.NblFlags & uint(flag, "flag")) != 0


def NdisTestNblFlags(nbl: Any, flags: int) -> bool:
    """True if every bit of `flags` is set in NblFlags."""
    _, nbl = _live(nbl, NBL, "NdisTestNblFlags")
    return (nbl.NblFlags & uint(flags, "flags")) == flags


def NBL_TEST_FLAG(nbl: Any, flag: int) -> bool:
    """Tests the private-flags field (Flags)."""
    _, nbl = _live(nbl, NBL, "NBL_TEST_FLAG")
    return (nbl.Flags & uint(flag, "flag")) != 0


def NBL_SET_FLAG(nbl: Any, flag: int) -> None:
    """nbl->Flags |= flag (the private-flags field)."""
    _, nbl = _live(nbl, NBL, "NBL_SET_FLAG")
    nbl.Flags |= uint(flag, "flag")


def NBL_CLEAR_FLAG(nbl: Any, flag: int) -> None:
    """nbl->Flags &= ~flag (the private-flags field)."""
    _, nbl = _live(nbl, NBL, "NBL_CLEAR_FLAG")
    nbl.Flags &= ~uint(flag, "flag") & 0xFFFFFFFF


def NDIS_SET_NET_BUFFER_LIST_CANCEL_ID(nbl: Any, cancel_id: Any) -> None:
    """Marks a send with a cancel ID (the NetBufferListCancelId slot): an
    int or a pointer cdata, for NdisCancelSendNetBufferLists."""
    k, _ = _live(nbl, NBL, "NDIS_SET_NET_BUFFER_LIST_CANCEL_ID")
    NET_BUFFER_LIST_INFO_SET(nbl, k.constants["NetBufferListCancelId"], cancel_id)


def NDIS_GET_NET_BUFFER_LIST_CANCEL_ID(nbl: Any) -> int:
    """The cancel ID a send is marked with, as an int (0: none)."""
    k, _ = _live(nbl, NBL, "NDIS_GET_NET_BUFFER_LIST_CANCEL_ID")
    return int(ffi.cast("uintptr_t", NET_BUFFER_LIST_INFO(nbl, k.constants[
        "NetBufferListCancelId"])))


# -- hash helpers (docs/macros.md) ----------------------------------------------

_HASH_FUNCTION_MASK = 0x000000FF  # NDIS_HASH_FUNCTION_MASK
_HASH_TYPE_MASK = 0x00FFFF00  # NDIS_HASH_TYPE_MASK


def _hash_slot(k: Any, name: str) -> int:
    return k.info_index(k.constants[name])


def _hash_setter(nbl: Any, macro: str) -> tuple[Any, Any]:
    """(the Kernel owning `nbl`, the raw pointer); the setters exist from NDIS 6.30 on."""
    from ndisemu.layout import VERSIONS
    k, nbl = _live(nbl, NBL, macro)
    if k.ndis_version in VERSIONS and VERSIONS.index(k.ndis_version) < VERSIONS.index("6.30"):
        raise ValueError(f"{macro} needs NDIS 6.30 or later (this Kernel is "
                         f"NDIS {k.ndis_version})")
    return k, nbl


def _slot_value(nbl: Any, index: int) -> int:
    return int(ffi.cast("uintptr_t", nbl.NetBufferListInfo[index]))


def NET_BUFFER_LIST_GET_HASH_VALUE(nbl: Any) -> int:
    """(ULONG) of info slot NetBufferListHashValue."""
    k, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_GET_HASH_VALUE")
    return _slot_value(nbl, _hash_slot(k, "NetBufferListHashValue")) & 0xFFFFFFFF


def NET_BUFFER_LIST_GET_HASH_TYPE(nbl: Any) -> int:
    """Info slot NetBufferListHashInfo & _HASH_TYPE_MASK."""
    k, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_GET_HASH_TYPE")
    return _slot_value(nbl, _hash_slot(k, "NetBufferListHashInfo")) & _HASH_TYPE_MASK


def NET_BUFFER_LIST_GET_HASH_FUNCTION(nbl: Any) -> int:
    """Info slot NetBufferListHashInfo & _HASH_FUNCTION_MASK."""
    k, nbl = _live(nbl, NBL, "NET_BUFFER_LIST_GET_HASH_FUNCTION")
    return _slot_value(nbl, _hash_slot(k, "NetBufferListHashInfo")) & _HASH_FUNCTION_MASK


def NET_BUFFER_LIST_SET_HASH_VALUE(nbl: Any, value: int) -> None:
    """Writes the ULONG hash value into info slot NetBufferListHashValue."""
    k, nbl = _hash_setter(nbl, "NET_BUFFER_LIST_SET_HASH_VALUE")
    index = _hash_slot(k, "NetBufferListHashValue")
    nbl.NetBufferListInfo[index] = ffi.cast("void *", uint(value, "value"))


def NET_BUFFER_LIST_SET_HASH_TYPE(nbl: Any, hash_type: int) -> None:
    """Slot NetBufferListHashInfo = (hash_type & TYPE_MASK) | (slot & FUNCTION_MASK)."""
    k, nbl = _hash_setter(nbl, "NET_BUFFER_LIST_SET_HASH_TYPE")
    index = _hash_slot(k, "NetBufferListHashInfo")
    kept = _slot_value(nbl, index) & _HASH_FUNCTION_MASK
    value = (uint(hash_type, "hash_type") & _HASH_TYPE_MASK) | kept
    nbl.NetBufferListInfo[index] = ffi.cast("void *", value)


def NET_BUFFER_LIST_SET_HASH_FUNCTION(nbl: Any, function: int) -> None:
    """Slot NetBufferListHashInfo = (function & FUNCTION_MASK) | (slot & TYPE_MASK)."""
    k, nbl = _hash_setter(nbl, "NET_BUFFER_LIST_SET_HASH_FUNCTION")
    index = _hash_slot(k, "NetBufferListHashInfo")
    kept = _slot_value(nbl, index) & _HASH_TYPE_MASK
    value = (uint(function, "function") & _HASH_FUNCTION_MASK) | kept
    nbl.NetBufferListInfo[index] = ffi.cast("void *", value)


__all__ = [name for name in dir()
           if (name.isupper() or name.startswith(("Ndis", "NET_BUFFER", "NBL_")))
           and not name.startswith("_") and name not in ("NBL", "NB")]
