"""Header constants and enumerators, as compiled for each NDIS view.

Module-level names of ``ndisemu`` carry the x64 values at the newest NDIS
version (6.87); a Kernel's ``constants`` carry those of its own version.
Statuses are unsigned 32-bit values, as WinDbg prints them.
"""

from __future__ import annotations

import functools

from ndisemu import layout


@functools.cache
def for_version(ndis: str = "6.87", abi: str = "x64") -> dict[str, int]:
    """Every #define and enumerator the headers give for one profile."""
    profile = layout.profile(abi, ndis)
    values = dict(profile["constants"])
    for members in profile["enums"].values():
        values.update(members)
    return values


def max_info(ndis: str) -> int:
    """MaxNetBufferListInfo of a driver built for `ndis` (x64)."""
    return for_version(ndis)["MaxNetBufferListInfo"]
