"""ndisemu: the NDIS packet-buffer object model, byte for byte, in user mode."""

from ndisemu._native import ffi, lib  # noqa: F401
