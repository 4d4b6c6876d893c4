"""Hypothesis strategies for NBL shapes and live NBLs (needs the ``fuzz``
extra: ``pip install ndisemu[fuzz]``).  Reference: docs/fuzzing.md.

- ``nbl_shapes(**limits)``: dicts ``{"payloads", "mdl_sizes", "data_offset"}``
  for ``k.build_nbl(pool, **shape)``, drawn to break offset arithmetic: data
  straddling MDL boundaries near its start, CurrentMdl other than the first,
  DataOffset exactly at an MDL end, zero-length and 1-byte MDLs, odd and
  even MDL lengths, several NBs, empty NBs, and payloads of the lengths
  frames have (0, 1, 14, 20, 1514, 9000, 65535 bytes).
- ``nbls(kernel, pool=None, **limits)``: live NBLs built from such shapes.
- ``derived_nbls(kernel, kinds=DERIVED_KINDS, **limits)``: live NBLs of every
  kind a driver meets, each paired with the bytes its NBs must read.

What ``nbls`` and ``derived_nbls`` build is freed when the example ends
(Hypothesis's ``cleanup``), with the Kernel's injected failures paused while
they build and free: the strategies make inputs, and only the code under
test should meet the failures.  The ``ndis_kernel`` fixture frees anything
still left at the end of the test.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    from hypothesis import note
    from hypothesis import strategies as st
    from hypothesis.control import cleanup
    from hypothesis.errors import InvalidArgument
except ImportError as error:            # pragma: no cover - checked in a subprocess
    raise ImportError("ndisemu.strategies needs Hypothesis: install the fuzz extra "
                      "(pip install 'ndisemu[fuzz]')") from error

from ndisemu._native import ffi, lib
from ndisemu.verifier import BugCheck

# Payload lengths frames have: empty, one byte, an Ethernet header, an IPv4
# header, a full Ethernet frame, a jumbo frame, the largest IPv4 datagram.
FRAME_LENGTHS = (0, 1, 14, 20, 1514, 9000, 65535)
# Where MDL boundaries hurt, in bytes from the data start: at it, inside the
# first bytes, at the end of an Ethernet, IPv4 and Ethernet + IPv4 header.
_EDGES = (0, 1, 2, 14, 20, 34)
# A payload's first bytes (headers) are Hypothesis's to choose; the rest is
# a counting pattern, so a read at a shifted offset gets different bytes.
_CHOSEN_BYTES = 64
_PATTERN = bytes(range(256))
# What derived_nbls makes, in the order Hypothesis shrinks towards.
DERIVED_KINDS = ("built", "clone", "clone_original_mdls", "fwps_clone", "deep_clone",
                 "fragment", "reassembled", "retreated", "advanced")
_MAX_FRAGMENTS = 64             # per original NB: keeps a fragment NBL small


# -- shapes ------------------------------------------------------------------------


class Payload(bytes):
    """Payload bytes whose repr is a short expression that evaluates to the
    same bytes, so a failing shape prints in a form that can be pasted into
    ``k.build_nbl(pool, **shape)``."""

    def __new__(cls, chosen: bytes, length: int, salt: int) -> Payload:
        tail = (_PATTERN * (length // 256 + 2))[len(chosen) + salt:length + salt]
        self = super().__new__(cls, chosen + tail)
        literal = bytes.__repr__(self)
        expr = _payload_expr(chosen, len(chosen), length, salt)
        self._expr = literal if len(literal) <= len(expr) else expr
        return self

    def __repr__(self) -> str:
        return self._expr


def _payload_expr(chosen: bytes, start: int, length: int, salt: int) -> str:
    parts = []
    if chosen:
        same = chosen.count(chosen[:1]) == len(chosen)
        parts.append(f"{chosen[:1]!r} * {len(chosen)}" if same and len(chosen) > 4
                     else repr(chosen))
    if length > start:
        index = f"(i + {salt})" if salt else "i"
        span = f"range({start}, {length})" if start else f"range({length})"
        parts.append(f"bytes({index} & 0xFF for i in {span})")
    return " + ".join(parts) or "b''"


def _check_limits(min_nbs: int, max_nbs: int, min_len: int, max_len: int, max_mdls: int,
                  max_data_offset: int) -> None:
    for name, value in (("min_nbs", min_nbs), ("max_nbs", max_nbs), ("min_len", min_len),
                        ("max_len", max_len), ("max_mdls", max_mdls),
                        ("max_data_offset", max_data_offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidArgument(f"{name}={value!r} must be a non-negative int")
    if not 1 <= min_nbs <= max_nbs:
        raise InvalidArgument(f"need 1 <= min_nbs <= max_nbs (got {min_nbs}, {max_nbs}): "
                              "a shape has at least one NB")
    if min_len > max_len or max_len + max_data_offset >= 1 << 32:
        raise InvalidArgument(f"need min_len <= max_len and a data space below 4 GiB "
                              f"(got {min_len}, {max_len}, max_data_offset={max_data_offset})")
    if max_mdls < 1:
        raise InvalidArgument("max_mdls must be at least 1")


def _pick(draw: Any, *branches: st.SearchStrategy[int]) -> int:
    """A value from one of `branches`, chosen as ``one_of`` chooses, and
    shrinking as it does towards the first; without building a ``one_of``
    for branches that change from draw to draw (which Hypothesis would
    analyse anew each time)."""
    return draw(branches[draw(st.integers(0, len(branches) - 1))])


@functools.lru_cache(maxsize=64)
def _lengths(min_len: int, max_len: int) -> st.SearchStrategy[int]:
    """Short lengths, any length, then each frame length with its two
    neighbours.  Every branch draws the length itself as one integer, and
    the catch-all comes before the frame lengths: when Hypothesis shrinks
    towards an earlier branch the value keeps its meaning (a 1514-byte
    failure becomes an any-length failure of 1514 bytes, then shrinks
    like any integer) instead of being read as something else."""
    branches = [st.integers(min_len, min(max_len, min_len + 40)),
                st.integers(min_len, max_len)]
    branches += [st.integers(max(min_len, n - 1), min(max_len, n + 1))
                 for n in FRAME_LENGTHS if min_len <= n <= max_len]
    return st.one_of(branches)


def _mdl_sizes(draw: Any, space: int, data_offset: int, max_mdls: int) -> list[int]:
    """MDL sizes that split every data space up to `space` bytes into at most
    `max_mdls` MDLs: free sizes first, then a last size (repeated by
    build_nbl) large enough for the rest."""
    sizes: list[int] = []
    at = 0
    for _ in range(draw(st.integers(0, max_mdls - 1))):
        if at >= space:
            break                      # build_nbl would never use them
        cuts = [c for c in sorted({data_offset + e for e in _EDGES} | {data_offset - 1})
                if at < c <= space]
        branches = [st.integers(0, 3)]                  # zero-length and 1-byte MDLs
        if at < data_offset:                            # DataOffset exactly at its end
            branches.append(st.just(data_offset - at))
        if cuts:                                        # ends around and inside headers
            branches.append(st.sampled_from(cuts).map(lambda c, at=at: c - at))
        branches.append(st.integers(0, space - at))
        size = _pick(draw, *branches)
        sizes.append(size)
        at += size
    rest = max(space - at, 0)
    room = max_mdls - len(sizes)
    least = max(1, -(-rest // room))             # ceil: the rest fits in `room` MDLs
    sizes.append(least + draw(st.integers(0, max(rest - least, 0))))
    return sizes


@st.composite
def _shapes(draw: Any, min_nbs: int, max_nbs: int, min_len: int, max_len: int, max_mdls: int,
            max_data_offset: int) -> dict[str, Any]:
    lengths = [draw(_lengths(min_len, max_len)) for _ in range(draw(st.integers(min_nbs,
                                                                                max_nbs)))]
    data_offset = _pick(draw, st.integers(0, min(max_data_offset, 24)),
                        st.integers(0, max_data_offset))
    sizes = _mdl_sizes(draw, data_offset + max(lengths), data_offset, max_mdls)
    payloads = []
    for length in lengths:
        chosen = draw(st.binary(max_size=min(length, _CHOSEN_BYTES)))
        payloads.append(Payload(chosen, length, draw(st.integers(0, 255))))
    return {"payloads": payloads, "mdl_sizes": sizes, "data_offset": data_offset}


def nbl_shapes(*, min_nbs: int = 1, max_nbs: int = 4, min_len: int = 0, max_len: int = 65535,
               max_mdls: int = 8, max_data_offset: int = 64) -> st.SearchStrategy[dict]:
    """Shapes for ``k.build_nbl(pool, **shape)``: dicts with exactly the keys
    ``payloads`` (``min_nbs``..``max_nbs`` bytes objects of ``min_len``..
    ``max_len`` bytes each), ``mdl_sizes`` (never more than ``max_mdls`` MDLs
    per NB) and ``data_offset`` (0..``max_data_offset``).  Drawn to favour
    what breaks offset arithmetic (module docstring); failures shrink to
    few, short NBs in few MDLs."""
    _check_limits(min_nbs, max_nbs, min_len, max_len, max_mdls, max_data_offset)
    return _shapes(min_nbs, max_nbs, min_len, max_len, max_mdls, max_data_offset)


# -- live NBLs ---------------------------------------------------------------------

def _pending(kernel: Any) -> list[_Owned]:
    """What the strategies built in `kernel` and have not freed yet (the
    ndis_kernel fixture frees what no Hypothesis cleanup did).  Kept on the
    Kernel, so that it goes with it."""
    return kernel.__dict__.setdefault("_strategies_pending", [])


class _Owned:
    """Objects one draw built: freed once, by the example's cleanup or by
    release_all, whichever comes first."""

    def __init__(self, kernel: Any, what: str, frees: list[Callable[[], None]]):
        self.kernel, self.what, self.frees = kernel, what, frees
        self.recipe = ""
        _pending(kernel).append(self)

    def __call__(self) -> None:
        owned = _pending(self.kernel)
        if self not in owned:
            return
        owned.remove(self)
        _sanitizer_note(self.kernel)
        try:
            with failures_paused(self.kernel):
                for free in self.frees:
                    free()
        except BugCheck as error:
            raise AssertionError(
                f"ndisemu.strategies could not free {self.what} at the end of the example: "
                f"{error}.  The test left something that holds it (a clone, a reference, a "
                "context, a changed NB or MDL chain, a binding it is still in flight in); "
                "undo it before the example ends"
            ) from None


@contextlib.contextmanager
def failures_paused(kernel: Any) -> Iterator[None]:
    """Within the block, the Kernel's injected failures are paused (the
    failure generator keeps its place): how the strategies build and free
    their inputs while ``inject_failures`` is on for the code under test."""
    old = lib.ndisemu_pause_failures(kernel._k, 0.0)
    try:
        yield
    finally:
        lib.ndisemu_pause_failures(kernel._k, old)


def release_all(kernel: Any) -> list[str]:
    """Frees what the strategies built in `kernel` and no cleanup freed yet
    (the ``ndis_kernel`` fixture calls it at the end of a test); returns why
    each free that failed did."""
    errors = []
    for owned in list(_pending(kernel)):
        try:
            owned()
        except AssertionError as error:
            errors.append(str(error))
    return errors


def _own(kernel: Any, what: str, frees: list[Callable[[], None]]) -> _Owned:
    owned = _Owned(kernel, what, frees)
    with contextlib.suppress(InvalidArgument):   # drawn outside a test: release_all frees
        cleanup(owned)
    return owned


def _sanitizer_note(kernel: Any) -> None:
    """With a sanitized driver loaded (ndisemu.driver), an AddressSanitizer
    report ends the process before Hypothesis can print the failing
    example: the core keeps the recipes of what is live instead, for the
    report to end with."""
    if kernel.__dict__.get("_sanitized"):
        text = "\n".join(o.recipe for o in _pending(kernel) if o.recipe)
        lib.ndisemu_set_sanitizer_note(kernel._k, text.encode() if text else ffi.NULL)


def _recipe(kernel: Any, owned: _Owned, text: str) -> None:
    """`text` noted for Hypothesis's report and for a sanitizer's."""
    note(text)
    owned.recipe = text
    _sanitizer_note(kernel)


def _build(kernel: Any, pool: Any, shape: dict[str, Any]) -> Any:
    with failures_paused(kernel):
        nbl = kernel.build_nbl(pool if pool is not None else kernel.default_nbl_pool, **shape)
    if nbl == ffi.NULL:
        raise MemoryError("ndisemu.strategies: build_nbl failed: the Kernel's arena is "
                          "exhausted (objects leaked by earlier examples?)")
    return nbl


def nbls(kernel: Any, pool: Any = None, **limits: Any) -> st.SearchStrategy[Any]:
    """Live ``NET_BUFFER_LIST *`` built by ``kernel.build_nbl`` from
    ``nbl_shapes(**limits)`` (``pool`` None: the Kernel's default NBL pool),
    freed with ``free_built`` when the example ends.  Draw it inside the
    test (``data.draw(nbls(k))``) when the Kernel is a fixture."""
    shapes = nbl_shapes(**limits)

    def build(shape: dict[str, Any]) -> Any:
        nbl = _build(kernel, pool, shape)
        what = f"the NBL at {kernel.display(nbl):#x}"
        owned = _own(kernel, what, [lambda: kernel.free_built(nbl)])
        _recipe(kernel, owned, f"nbls: {what} = k.build_nbl(pool, **{shape!r})")
        return nbl

    return shapes.map(build)


class DerivedNbl(tuple):
    """``(nbl, expected)`` from ``derived_nbls``: the NBL and the bytes each
    of its NBs must read, in order.  ``.kind`` says how it was made (one of
    ``DERIVED_KINDS``), ``.recipe`` the calls that made it."""

    def __new__(cls, nbl: Any, expected: list[bytes], kind: str, recipe: str) -> DerivedNbl:
        self = super().__new__(cls, (nbl, expected))
        self.kind, self.recipe = kind, recipe
        return self

    @property
    def nbl(self) -> Any:
        """The ``NET_BUFFER_LIST *``."""
        return self[0]

    @property
    def expected(self) -> list[bytes]:
        """The bytes each NB must read (``k.nbl_bytes(nbl)`` equals it)."""
        return self[1]

    def __repr__(self) -> str:
        return f"DerivedNbl(kind={self.kind!r}, recipe={self.recipe!r})"


def _header(length: int) -> bytes:
    """Bytes written where a retreat or fragment made room for a header:
    known, and unlike payload and backfill bytes."""
    return bytes(0xC0 | (i & 0x1F) for i in range(length))


def _nbs(nbl: Any) -> list[Any]:
    out, nb = [], nbl.FirstNetBuffer
    while nb != ffi.NULL:
        out.append(nb)
        nb = nb.Next
    return out


def _write(kernel: Any, nb: Any, data: bytes) -> None:
    """Writes `data` at the NB's data start, MDL by MDL, as a driver fills
    the header room a retreat gave it.  The NB was just made by the
    emulator and is checked first, so its raw chain can be followed."""
    kernel.check_nb(nb)
    mdl, offset, done = nb.CurrentMdl, nb.CurrentMdlOffset, 0
    while done < len(data):
        take = min(mdl.ByteCount - offset, len(data) - done)
        ffi.memmove(ffi.cast("uint8_t *", mdl.MappedSystemVa) + offset, data[done:done + take],
                    take)
        done += take
        mdl, offset = mdl.Next, 0


# How each kind is made: its parameters, drawn from (draw, shape, payloads)
# before anything is built, and the derivation, (k, orig, payloads, params)
# -> (nbl, its free or None, the bytes each NB must read, the call).

def _no_params(draw: Any, shape: dict[str, Any], payloads: list[bytes]) -> dict[str, Any]:
    return {}


def _cut_params(draw: Any, shape: dict[str, Any], payloads: list[bytes]) -> dict[str, Any]:
    longest = max(map(len, payloads))
    start = draw(st.integers(0, longest + 1))
    least = max(1, -(-(longest - start) // _MAX_FRAGMENTS))
    return {"start": start, "most": draw(st.integers(least, max(least, longest - start + 1))),
            "delta": draw(st.integers(0, 40)), "backfill": draw(st.integers(0, 24))}


def _retreat_params(draw: Any, shape: dict[str, Any], payloads: list[bytes]) -> dict[str, Any]:
    # more than DataOffset: every NB gets a new MDL at its head
    return {"delta": shape["data_offset"] + draw(st.integers(1, 40)),
            "backfill": draw(st.integers(0, 24))}


def _advance_params(draw: Any, shape: dict[str, Any], payloads: list[bytes]) -> dict[str, Any]:
    return {"deltas": [draw(st.integers(0, len(p))) for p in payloads]}


def _built(k: Any, orig: Any, payloads: list[bytes], p: dict[str, Any]) -> tuple:
    return orig, None, payloads, ""


def _ndis_clone(flag_name: str | None) -> Callable[..., tuple]:
    def derive(k: Any, orig: Any, payloads: list[bytes], p: dict[str, Any]) -> tuple:
        flags = k.constants[flag_name] if flag_name else 0
        nbl = k.NdisAllocateCloneNetBufferList(orig, None, None, flags)
        return (nbl, lambda: k.NdisFreeCloneNetBufferList(nbl, flags), payloads,
                f"NdisAllocateCloneNetBufferList(nbl, None, None, {flags})")
    return derive


def _fwps_clone(k: Any, orig: Any, payloads: list[bytes], p: dict[str, Any]) -> tuple:
    nbl = k.FwpsAllocateCloneNetBufferList0(orig, None, None, 0)[1]
    return (nbl, lambda: k.FwpsFreeCloneNetBufferList0(nbl, 0), payloads,
            "FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)")


def _deep_clone(k: Any, orig: Any, payloads: list[bytes], p: dict[str, Any]) -> tuple:
    nbl = k.FwpsAllocateDeepCloneNetBufferList0(orig, None, None)[1]
    return (nbl, lambda: k.FwpsFreeCloneNetBufferList0(nbl, 0), payloads,
            "FwpsAllocateDeepCloneNetBufferList0(nbl, None, None)")


def _fragment(k: Any, orig: Any, payloads: list[bytes], p: dict[str, Any]) -> tuple:
    start, most, delta, backfill = p["start"], p["most"], p["delta"], p["backfill"]
    nbl = k.NdisAllocateFragmentNetBufferList(orig, None, None, start, most, delta, backfill)
    expected = [_header(delta) + payload[i:i + most] for payload in payloads
                for i in range(start, len(payload), most)]
    return (nbl, lambda: k.NdisFreeFragmentNetBufferList(nbl, delta), expected,
            f"NdisAllocateFragmentNetBufferList(nbl, None, None, {start}, {most}, {delta}, "
            f"{backfill})")


def _reassembled(k: Any, orig: Any, payloads: list[bytes], p: dict[str, Any]) -> tuple:
    start, delta, backfill = p["start"], p["delta"], p["backfill"]
    nbl = k.NdisAllocateReassembledNetBufferList(orig, None, start, delta, backfill)
    expected = [_header(delta) + b"".join(payload[start:] for payload in payloads)]
    return (nbl, lambda: k.NdisFreeReassembledNetBufferList(nbl, delta), expected,
            f"NdisAllocateReassembledNetBufferList(nbl, None, {start}, {delta}, {backfill})")


def _retreated(k: Any, orig: Any, payloads: list[bytes], p: dict[str, Any]) -> tuple:
    status = k.NdisRetreatNetBufferListDataStart(orig, p["delta"], p["backfill"], None, None)
    nbl = orig if status == k.constants["NDIS_STATUS_SUCCESS"] else ffi.NULL
    # free_built frees the MDLs the retreat added along with the NBL
    return (nbl, None, [_header(p["delta"]) + payload for payload in payloads],
            f"NdisRetreatNetBufferListDataStart(nbl, {p['delta']}, {p['backfill']}, None, None)")


def _advanced(k: Any, orig: Any, payloads: list[bytes], p: dict[str, Any]) -> tuple:
    for nb, delta in zip(_nbs(orig), p["deltas"], strict=True):
        k.NdisAdvanceNetBufferDataStart(nb, delta, False, None)
    return (orig, None, [payload[d:] for payload, d in zip(payloads, p["deltas"], strict=True)],
            f"NdisAdvanceNetBufferDataStart(each NB, {p['deltas']}, False, None)")


_KINDS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[..., tuple]]] = {
    "built": (_no_params, _built),
    "clone": (_no_params, _ndis_clone(None)),
    "clone_original_mdls": (_no_params, _ndis_clone("NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS")),
    "fwps_clone": (_no_params, _fwps_clone),
    "deep_clone": (_no_params, _deep_clone),
    "fragment": (_cut_params, _fragment),
    "reassembled": (_cut_params, _reassembled),
    "retreated": (_retreat_params, _retreated),
    "advanced": (_advance_params, _advanced),
}
assert tuple(_KINDS) == DERIVED_KINDS


@st.composite
def _derived(draw: Any, kernel: Any, kinds: Sequence[str], limits: dict[str, Any]) -> DerivedNbl:
    # Everything is drawn before anything is built: a draw can end the
    # example (Hypothesis replaying a shorter one), and must not do so
    # between an allocation and the registration of its free.
    shape = draw(nbl_shapes(**limits))
    kind = draw(st.sampled_from(kinds))
    payloads = [bytes(p) for p in shape["payloads"]]
    draw_params, derive = _KINDS[kind]
    params = draw_params(draw, shape, payloads)

    orig = _build(kernel, None, shape)
    frees: list[Callable[[], None]] = [lambda: kernel.free_built(orig)]
    owned = _own(kernel, f"the NBL at {kernel.display(orig):#x} and what was derived from it",
                 frees)
    with failures_paused(kernel):
        nbl, free, expected, call = derive(kernel, orig, payloads, params)
        if nbl == ffi.NULL:
            raise MemoryError(f"ndisemu.strategies: {kind}: the Kernel's arena is exhausted")
        if free:
            frees.insert(0, free)                # the derived NBL goes first
        if kind in ("fragment", "reassembled", "retreated") and params["delta"]:
            for nb in _nbs(nbl):                 # the header room, as a driver fills it
                _write(kernel, nb, _header(params["delta"]))
    recipe = f"nbl = k.build_nbl(k.default_nbl_pool, **{shape!r})" + (f"; {call}" if call else "")
    _recipe(kernel, owned, f"derived_nbls: {recipe}")
    return DerivedNbl(nbl, expected, kind, recipe)


def derived_nbls(kernel: Any, kinds: Sequence[str] = DERIVED_KINDS,
                 **limits: Any) -> st.SearchStrategy[DerivedNbl]:
    """``(nbl, expected)`` pairs (``DerivedNbl``): a live NBL of one of
    `kinds` (default every one of ``DERIVED_KINDS``: built, NDIS clone with
    new and with the original MDLs, FWPS clone, deep clone, fragment,
    reassembled, retreated with a new MDL, advanced), made from an NBL of
    ``nbl_shapes(**limits)``, and the bytes each of its NBs must read.  Room
    a retreat or fragment made for headers holds known bytes, written as a
    driver would.  Everything is freed, derived NBL first, when the example
    ends."""
    unknown = [kind for kind in kinds if kind not in DERIVED_KINDS]
    if unknown or not kinds:
        raise InvalidArgument(f"kinds={kinds!r}: choose from {', '.join(DERIVED_KINDS)}")
    nbl_shapes(**limits)                         # checks the limits now
    return _derived(kernel, tuple(kinds), limits)
