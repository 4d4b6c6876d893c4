"""ndisemu: the NDIS packet-buffer object model, byte for byte, in user mode.

    import ndisemu
    k = ndisemu.Kernel(arena_size=64 << 20, ndis_version="6.87", seed=0)

Every header constant is a module attribute with its x64 value at NDIS 6.87
(``ndisemu.NDIS_STATUS_RESOURCES``); the accessor macros and flag helpers are
module functions with their NDIS names.  The reference is docs/ in the
repository (docs/README.md lists its pages).

Names are imported on first use (PEP 562), so ``import ndisemu`` and the
``ndisemu layout`` command line stay cheap: only a Kernel needs numpy.
"""

from __future__ import annotations

import importlib

# typing costs milliseconds at start-up; annotations are strings here anyway.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Public name -> the module that defines it.
_HOMES = {
    "Binding": "ndisemu.binding",
    "BugCheck": "ndisemu.verifier",
    "DISPATCH_LEVEL": "ndisemu.kernel",
    "DriverLayer": "ndisemu.binding",
    "PASSIVE_LEVEL": "ndisemu.kernel",
    "Kernel": "ndisemu.kernel",
    "LoopbackMiniport": "ndisemu.binding",
    "View": "ndisemu.inspection",
    "ffi": "ndisemu._native",
    "lib": "ndisemu._native",
}
_SUBMODULES = ("driver", "layout", "macros", "sanitize")


def get_include() -> str:
    """The folder holding ndisemu's WDK-compatible ``ndis.h`` and ``fwpsk.h``
    for driver C code (``-I`` it, as numpy.get_include; ``ndisemu include``
    prints it)."""
    import os
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def _constants() -> dict[str, int]:
    from ndisemu.constants import for_version
    return for_version()


def _macro_names() -> list[str]:
    from ndisemu import macros
    return list(macros.__all__)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"ndisemu.{name}")
    elif name == "__all__":
        value = (sorted(_HOMES) + list(_SUBMODULES) + ["get_include"] + _macro_names() +
                 list(_constants()))
    elif name in _macro_names():
        value = getattr(importlib.import_module("ndisemu.macros"), name)
    elif name in _constants():
        value = _constants()[name]
    else:
        raise AttributeError(f"module 'ndisemu' has no attribute {name!r}")
    globals()[name] = value     # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__getattr__("__all__")))
