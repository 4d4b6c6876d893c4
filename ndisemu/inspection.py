"""Inspection: checked views of NBLs, NBs, MDLs and contexts.

Raw cffi cdata dereferences a NULL or wild pointer without a check, and the
interpreter dies with it (``nbl.FirstNetBuffer.DataLength`` on an NBL with no
NB is a segfault).  ``k.view(ptr)`` wraps the pointer: every field read or
write first checks that the object is still a live block of its kind in the
Kernel's arena, and raises BugCheck 0x50 (PAGE_FAULT_IN_NONPAGED_AREA,
parameter 1 the display address) otherwise.  Pointer fields come back as
views (None for NULL), so a fuzz harness can walk chains safely; writes go
through to the arena.  ``view.ptr`` is the raw pointer, for the NDIS calls.
"""

from __future__ import annotations

from typing import Any

from ndisemu._native import ffi, lib

_KIND_BY_TYPE = {
    ffi.typeof("NET_BUFFER_LIST *"): lib.NDISEMU_KIND_NBL,
    ffi.typeof("NET_BUFFER *"): lib.NDISEMU_KIND_NB,
    ffi.typeof("MDL *"): lib.NDISEMU_KIND_MDL,
    ffi.typeof("NET_BUFFER_LIST_CONTEXT *"): lib.NDISEMU_KIND_CONTEXT,
}


def _type_name(ptr: Any) -> str:
    """NET_BUFFER_LIST for a `NET_BUFFER_LIST *` (cffi says struct _NET_BUFFER_LIST)."""
    return ffi.typeof(ptr).item.cname.replace("struct _", "")


class View:
    """A checked view of one NDIS object (see the module docstring)."""

    __slots__ = ("_kernel", "_kind", "ptr")

    def __init__(self, kernel: Any, ptr: Any):
        kind = _KIND_BY_TYPE.get(ffi.typeof(ptr))
        if kind is None:
            raise TypeError(f"cannot view a {ffi.typeof(ptr).cname}; expected a pointer to "
                            "NET_BUFFER_LIST, NET_BUFFER, MDL or NET_BUFFER_LIST_CONTEXT")
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "ptr", ptr)

    def _check(self, field: str) -> None:
        k = self._kernel
        if lib.ndisemu_probe(k._k, self.ptr, 0, self._kind):
            raise k._raise(f"{_type_name(self.ptr)}.{field}")

    def __getattr__(self, name: str) -> Any:
        self._check(name)
        value = getattr(self.ptr, name)
        if isinstance(value, ffi.CData) and ffi.typeof(value) in _KIND_BY_TYPE:
            return None if value == ffi.NULL else View(self._kernel, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self._check(name)
        if isinstance(value, View):
            value = value.ptr
        elif value is None:
            value = ffi.NULL
        setattr(self.ptr, name, value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, View):
            other = other.ptr
        return isinstance(other, ffi.CData) and self.ptr == other

    def __hash__(self) -> int:
        return hash(int(ffi.cast("uintptr_t", self.ptr)))

    def __dir__(self) -> list[str]:
        return [name for name, _ in ffi.typeof(self.ptr).item.fields]

    def __repr__(self) -> str:
        name = _type_name(self.ptr)
        return f"<view {name} at {self._kernel.display(self.ptr):#018x}>"

    def bytes(self) -> bytes:
        """An MDL's described bytes (StartVa + ByteOffset, ByteCount), checked
        to lie in live memory."""
        if self._kind != lib.NDISEMU_KIND_MDL:
            raise TypeError("bytes() is for MDL views")
        self._check("bytes")
        va = ffi.cast("uint8_t *", self.ptr.StartVa) + self.ptr.ByteOffset
        count = self.ptr.ByteCount
        if count and lib.ndisemu_probe(self._kernel._k, va, count, 0):
            raise self._kernel._raise("MDL.bytes")
        return ffi.buffer(va, count)[:]


class InspectionCalls:
    """Inspection helpers of :class:`ndisemu.Kernel`."""

    def view(self, ptr: Any) -> View:
        """A checked view of an NBL, NB, MDL or context pointer."""
        if isinstance(ptr, View):
            return ptr
        if not isinstance(ptr, ffi.CData):
            raise TypeError(f"view() takes a cdata pointer, not {type(ptr).__name__}")
        return View(self, ptr)
