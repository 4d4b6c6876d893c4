"""ndisemu: the NDIS packet-buffer object model, byte for byte, in user mode.

    import ndisemu
    k = ndisemu.Kernel(arena_size=64 << 20, ndis_version="6.87", seed=0)

Every header constant is a module attribute with its x64 value at NDIS 6.87
(``ndisemu.NDIS_STATUS_RESOURCES``); the accessor macros and flag helpers are
module functions with their NDIS names.
"""

from ndisemu import layout, macros
from ndisemu._native import ffi, lib
from ndisemu.constants import for_version as _constants
from ndisemu.inspection import View
from ndisemu.kernel import DISPATCH_LEVEL, PASSIVE_LEVEL, Kernel
from ndisemu.macros import *  # noqa: F403 - the NDIS macro names
from ndisemu.verifier import BugCheck

globals().update(_constants())

__all__ = ["BugCheck", "DISPATCH_LEVEL", "Kernel", "PASSIVE_LEVEL", "View", "ffi", "layout",
           "lib", "macros", *macros.__all__, *_constants()]
