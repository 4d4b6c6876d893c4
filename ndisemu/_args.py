"""Argument checks shared by every call wrapper.

Wrong types raise TypeError and out-of-range values ValueError, always before
the native core is called, so a refused argument changes nothing.

Every pointer argument goes through `opt` (directly or through
`pointer_arg`): it is the one place where a checked view (``k.view(ptr)``)
becomes the raw pointer it wraps, so every call accepts a view wherever it
takes a pointer.
"""

from __future__ import annotations

from typing import Any

from ndisemu._native import ffi
from ndisemu.inspection import VIEW_CLASSES

NULL = ffi.NULL


def uint(value: Any, name: str, bits: int = 32) -> int:
    """An unsigned integer argument of `bits` bits."""
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name}={value} is out of range for a {bits}-bit unsigned value")
    return value


def multiple_of(value: Any, name: str, multiple: int, bits: int = 16) -> int:
    uint(value, name, bits)
    if value % multiple:
        raise ValueError(f"{name}={value} must be a multiple of {multiple}")
    return value


def pointer_arg(value: Any, name: str) -> Any:
    """A pointer argument: cdata, a checked view or None (NULL), as cdata."""
    value = opt(value)
    if isinstance(value, ffi.CData):
        return value
    raise TypeError(f"{name} must be a cdata pointer, a view or None, "
                    f"not {type(value).__name__}")


def boolean(value: Any, name: str) -> int:
    if not isinstance(value, (bool, int)):
        raise TypeError(f"{name} must be a BOOLEAN (bool or int)")
    return 1 if value else 0


def opt(value: Any) -> Any:
    """A pointer passed straight to the core: None as NULL, a view as its raw
    pointer, anything else as it is (cffi itself raises TypeError for what is
    not a pointer cdata).  The clone calls, which the benchmark times, hand
    their argument to cffi as it is and call this only when cffi refuses it,
    so a view costs nothing where none is passed."""
    if value is None:
        return NULL
    if value.__class__ in VIEW_CLASSES:
        return value.ptr
    return value
