"""Inspection: checked views of NBLs, NBs, MDLs and contexts, and the
debugger-style output built on them (k.show, k.dt, k.addr, k.ptr, k.trace).

Raw cffi cdata dereferences a NULL or wild pointer without a check, and the
interpreter dies with it (``nbl.FirstNetBuffer.DataLength`` on an NBL with no
NB is a segfault).  ``k.view(ptr)`` wraps the pointer: every field read or
write first checks that the object is still a live block of its kind in the
Kernel's arena, and raises BugCheck 0x50 (PAGE_FAULT_IN_NONPAGED_AREA,
parameter 1 the display address) otherwise.  Pointer fields come back as
views (None for NULL), so a fuzz harness can walk chains safely; writes go
through to the arena.  ``view.ptr`` is the raw pointer; the NDIS calls take
the view itself as well.

The rest is what a person reads (docs/inspection.md): ``k.show(ptr)`` in the
manner of WinDbg's !ndiskd (ndisemu.ndiskd), ``k.dt(ptr)`` with values
(ndisemu.dt), display addresses both ways, and the per-object event trace
(ndisemu.trace).  ``repr()`` of a view is its one-line summary.
"""

from __future__ import annotations

from typing import Any

from ndisemu import dt as _dt
from ndisemu import layout, ndiskd
from ndisemu import trace as _trace
from ndisemu._native import ffi, lib

_KIND_BY_TYPE = ndiskd.KIND_OF_TYPE


def _type_name(ptr: Any) -> str:
    """NET_BUFFER_LIST for a `NET_BUFFER_LIST *` (cffi says struct _NET_BUFFER_LIST)."""
    return ffi.typeof(ptr).item.cname.replace("struct _", "")


class View:
    """A checked view of one NDIS object (see the module docstring).

    ``View(kernel, ptr)`` gives the view class of the pointer's kind (one
    per struct, each field a property).  A read or write checks that the
    object is live first: natively on the first access, and again whenever
    a block has been freed since the last check (objects stop being live
    only then; the Kernel's free count says when), so a harness pays a
    native probe per free, not per field."""

    __slots__ = ("_kernel", "ptr", "_frees", "_seen")
    _kind = 0                                 # each view class: its NDISEMU_KIND_*

    def __new__(cls, kernel: Any, ptr: Any) -> View:
        kind = _KIND_BY_TYPE.get(ffi.typeof(ptr)) if isinstance(ptr, ffi.CData) else None
        if kind is None:
            shown = ffi.typeof(ptr).cname if isinstance(ptr, ffi.CData) else type(ptr).__name__
            raise TypeError(f"cannot view a {shown}; expected a pointer to "
                            "NET_BUFFER_LIST, NET_BUFFER, MDL or NET_BUFFER_LIST_CONTEXT")
        return _new_view(_VIEW_CLASSES[kind], kernel, ptr)

    # No __getattr__: a class with one takes CPython's slow attribute path
    # for every lookup, properties included (the fields are properties; any
    # other name is an AttributeError).

    def _check(self, field: str) -> None:
        """Probes the object natively (BugCheck 0x50 if it is not live) and
        notes the free count the answer holds for."""
        k = self._kernel
        seen = self._frees[0]
        if lib.ndisemu_probe(k._k, self.ptr, 0, self._kind):
            raise k._raise(f"{_type_name(self.ptr)}.{field}")
        self._seen = seen

    def __eq__(self, other: object) -> bool:
        if isinstance(other, View):
            other = other.ptr
        return isinstance(other, ffi.CData) and self.ptr == other

    def __hash__(self) -> int:
        return hash(int(ffi.cast("uintptr_t", self.ptr)))

    def __dir__(self) -> list[str]:
        return [name for name, _ in ffi.typeof(self.ptr).item.fields]

    def __repr__(self) -> str:
        """The kind, display address and key fields; what is wrong instead
        when the object is not live (never raises)."""
        return f"<{ndiskd.summary(self._kernel, self.ptr)}>"

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


def _raw(value: Any) -> Any:
    """What a write through a view stores: a view's pointer, None as NULL."""
    if isinstance(value, View):
        return value.ptr
    return ffi.NULL if value is None else value


def _new_view(cls: type, kernel: Any, ptr: Any) -> View:
    view = object.__new__(cls)
    view._kernel = kernel
    view.ptr = ptr
    view._frees = kernel._frees
    view._seen = -1                           # no check yet: the first access probes
    return view


# A field's getter and setter, compiled per field so that the field is a
# plain attribute load (faster than getattr with a name).
_FIELD_CODE = """
def get(view):
    if view._seen != view._frees[0]:
        view._check({name!r})
    {read}

def set_(view, value):
    if view._seen != view._frees[0]:
        view._check({name!r})
    view.ptr.{name} = _raw(value)
"""


def _field(name: str, target: type | None) -> property:
    """The property of one struct field: the free count compared (a native
    probe only when a block was freed since the last check), then the
    field; a pointer to an NDIS object comes back as a view (None for
    NULL)."""
    if not name.isidentifier():
        raise ValueError(f"field name {name!r}")
    read = (f"return view.ptr.{name}" if target is None else
            f"value = view.ptr.{name}\n"
            f"    return _new_view(target, view._kernel, value) if value else None")
    scope: dict[str, Any] = {"_raw": _raw, "_new_view": _new_view, "target": target}
    exec(_FIELD_CODE.format(name=name, read=read), scope)   # noqa: S102 - names from cffi's struct fields
    return property(scope["get"], scope["set_"], doc=f"The {name} field, checked.")


def _view_class(kind: int, ctype: Any) -> type:
    name = ctype.item.cname.replace("struct _", "")
    return type(f"{name}View", (View,), {"__slots__": (), "_kind": kind,
                                          "__doc__": f"A checked view of a {name}.",
                                          "__module__": __name__})


_VIEW_CLASSES: dict[int, type] = {kind: _view_class(kind, ctype)
                                  for ctype, kind in _KIND_BY_TYPE.items()}
for _ctype, _kind in _KIND_BY_TYPE.items():
    _cls = _VIEW_CLASSES[_kind]
    for _name, _f in _ctype.item.fields:
        if _name in View.__dict__ or _name in View.__slots__:
            raise RuntimeError(f"{_ctype.item.cname}.{_name} is named like a View member")
        _target = _KIND_BY_TYPE.get(_f.type)
        setattr(_cls, _name, _field(_name, None if _target is None else _VIEW_CLASSES[_target]))
# The view classes, for the quick `value.__class__ in VIEW_CLASSES` test.
VIEW_CLASSES = frozenset(_VIEW_CLASSES.values()) | {View}


# Types k.ptr() gives besides the structs `ndisemu layout` reports.
_PLAIN_TYPES = ("void", "uint8_t")


def _pointer(value: Any, name: str) -> Any:
    """A pointer argument of the inspection calls: cdata or a view."""
    if isinstance(value, View):
        return value.ptr
    if value is None:
        return ffi.NULL
    if not isinstance(value, ffi.CData) or ffi.typeof(value).kind not in ("pointer", "array"):
        raise TypeError(f"{name} must be a cdata pointer, a view or None, "
                        f"not {type(value).__name__}")
    return value


class InspectionCalls:
    """Inspection helpers of :class:`ndisemu.Kernel`."""

    def view(self, ptr: Any) -> View:
        """A checked view of an NBL, NB, MDL or context pointer."""
        if isinstance(ptr, View):
            return ptr
        if not isinstance(ptr, ffi.CData):
            raise TypeError(f"view() takes a cdata pointer, not {type(ptr).__name__}")
        return View(self, ptr)

    def show(self, ptr: Any, *, chain: bool = False, data: bool = False, info: bool = False,
             log: bool = False) -> str:
        """An !ndiskd-style view of the NBL, NB, MDL, context or pool (handle)
        at `ptr`: `chain` adds NBs and MDLs (and the NBLs on Next), `data`
        hexdumps, `info` the NBL's out-of-band info decoded, `log` the
        object's events.  Never raises on a corrupted object: what is wrong
        is printed where the value would be."""
        return ndiskd.show(self, _pointer(ptr, "ptr"), chain=bool(chain), data=bool(data),
                           info=bool(info), log=bool(log))

    def dt(self, ptr_or_struct_name: Any) -> str:
        """WinDbg `dt`: a struct's layout for this Kernel's NDIS version, or,
        for a pointer, the struct with the values the object holds."""
        if isinstance(ptr_or_struct_name, str):
            return _dt.dt(self, ptr_or_struct_name)
        return _dt.dt(self, _pointer(ptr_or_struct_name, "ptr_or_struct_name"))

    def addr(self, ptr: Any) -> int:
        """The display address of a pointer or view (0 for NULL; a pointer
        outside the arena as it is)."""
        return lib.ndisemu_display(self._k, _pointer(ptr, "ptr"))

    def ptr(self, display_address: int | str, type: str) -> Any:  # noqa: A002 - the contract's name
        """The pointer at a display address, as a `type *` (a struct name such
        as "NET_BUFFER_LIST", or "void"; "NET_BUFFER_LIST *" works too).  The
        address may be an int or text as messages and WinDbg print it
        ("0xffffe000`00000120").  ValueError outside this Kernel's arena."""
        if isinstance(display_address, str):
            text = display_address.strip().replace("`", "")
            try:
                display_address = int(text, 16)
            except ValueError:
                raise ValueError(f"{display_address!r} is not a hex address") from None
        if not isinstance(display_address, int) or isinstance(display_address, bool):
            raise TypeError("display_address must be an int or a hex string")
        if not isinstance(type, str):
            raise TypeError("type must be a struct name such as 'NET_BUFFER_LIST'")
        name = type.replace("*", "").strip()
        name = name if name in _PLAIN_TYPES else layout.canonical_name(name)
        if name is None:
            raise ValueError(f"unknown type {type!r} (choose from "
                             f"{', '.join(layout.struct_names() + list(_PLAIN_TYPES))})")
        raw = (lib.ndisemu_from_display(self._k, display_address)
               if 0 <= display_address < 2**64 else ffi.NULL)
        if raw == ffi.NULL:
            raise ValueError(f"{display_address:#x} is not a display address in this "
                             "Kernel's arena")
        return ffi.cast(f"{name} *", raw)

    @property
    def trace(self) -> bool:
        """Whether the per-object event log records (ndisemu.trace).  Setting
        True starts a new log of the last TRACE_EVENTS events; False stops
        recording and keeps the log for reading."""
        return bool(lib.ndisemu_trace_is_on(self._k))

    @trace.setter
    def trace(self, on: bool) -> None:
        if lib.ndisemu_trace_enable(self._k, _trace.TRACE_EVENTS if on else 0):
            raise MemoryError("cannot allocate the trace log")

    def trace_log(self, ptr: Any = None, last: int | None = None) -> list[dict[str, Any]]:
        """The retained events of the object at `ptr` (its current lifetime),
        or of every object; the newest `last` when given, oldest first.  Each
        is a dict: seq, event, call, kind, address, args, text."""
        if last is not None and (not isinstance(last, int) or last < 0):
            raise ValueError("last must be a non-negative int or None")
        return _trace.events(self, None if ptr is None else _pointer(ptr, "ptr"), last)

    def _trace_handover(self, nbl: Any, source: Any, target: Any, call: str) -> None:
        """Records that `nbl` went from one layer's handle to another's
        (the binding's hand-overs).  The call name is kept alive with the
        Kernel, as the core keeps only the pointer."""
        names = self.__dict__.setdefault("_trace_call_names", {})
        if call not in names:
            names[call] = ffi.new("char[]", call.encode())
        lib.ndisemu_trace_handover(self._k, _pointer(nbl, "nbl"), _pointer(source, "from"),
                                   _pointer(target, "to"), names[call])
