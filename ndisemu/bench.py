"""`ndisemu bench`: what a clone, a clone sharing the original MDLs, an FWPS
clone and a deep clone cost as payload size, MDL fragmentation and NBs per
NBL grow, against two floors measured in the same run (no peer publishes
such a benchmark, so ndisemu measures its own lower bounds):

- ``memcpy``: one memcpy of the same payload bytes, the lower bound of any
  deep clone;
- ``floor_clone``: a bare C routine that fills the same NBL/NB/partial-MDL
  structures in a block from a free list with no checks, the lower bound of
  a shallow clone.

Every operation runs in two modes: ``native`` (a C loop inside the core, one
Python call per batch) and ``python`` (one public-API call per step, what a
user's Python test pays; the floors there are one cffi call per operation).
Timed runs use ``Kernel(verifier=False)``; ``native`` rows with
``verifier: true`` show what the verifier adds to a clone and a deep clone.

Beside the clones, what a Python fuzz harness does around them, python mode
only (HARNESS_OPS): ``raw_read`` (one raw cdata field read), ``view_read``
(the same read through a checked view), ``build_free`` (build_nbl +
free_built of the row's shape), ``nbl_bytes``, ``read`` (k.read of every
NB's used bytes, one call per MDL run) and ``cffi_call`` (one bare call into
the core, the unit the harness figures are quoted in).  The shape-free ones
(raw_read, view_read, cffi_call) run at the reference shape only (1514 B, 1
MDL, 1 NB when the matrix has it), the others at every shape (``--quick``:
the reference shape only).

Timing: time.perf_counter_ns around batches sized to about ``batch_ms``
each, one warm-up batch discarded, ``repeats`` batches kept; a row holds
their median, min and max per operation.  ``bytes_copied`` and
``pool_bytes`` are exact and per operation: for the emulated calls the
``k.stats()`` deltas around one allocation through the public API (pool
bytes include pool headers), for the floors what the floor copied and the
bytes of the block it fills.  Each shape gets a fresh Kernel and payloads
drawn from ``seed``, so the same seed gives the same byte counts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ndisemu
from ndisemu._native import ffi, lib
from ndisemu.kernel import Kernel

OPS = ("clone", "clone_original_mdls", "fwps_clone", "deep_clone", "memcpy", "floor_clone")
FLOORS = ("memcpy", "floor_clone")
MODES = ("native", "python")
# What a Python harness does around the clones (python mode only).
HARNESS_OPS = ("raw_read", "view_read", "build_free", "nbl_bytes", "read", "cffi_call")
# Harness ops whose cost does not depend on the shape: the reference shape only.
SHAPE_FREE_OPS = ("raw_read", "view_read", "cffi_call")
ALL_OPS = OPS + HARNESS_OPS
# The shape the headline figures are quoted at, when the matrix has it.
REFERENCE = (1514, 1, 1)
# Rows also timed with the verifier on (native mode only).
VERIFIER_OPS = ("clone", "deep_clone")

_OP_CODES = {
    "clone": lib.NDISEMU_BENCH_CLONE,
    "clone_original_mdls": lib.NDISEMU_BENCH_CLONE_ORIGINAL_MDLS,
    "fwps_clone": lib.NDISEMU_BENCH_FWPS_CLONE,
    "deep_clone": lib.NDISEMU_BENCH_DEEP_CLONE,
    "memcpy": lib.NDISEMU_BENCH_MEMCPY,
    "floor_clone": lib.NDISEMU_BENCH_FLOOR_CLONE,
}

# IMIX: 7:4:1 of 64, 594 and 1518-byte packets, as 12 NBs of one NBL.
IMIX = (64,) * 7 + (594,) * 4 + (1518,)
FULL_PAYLOADS: tuple[int | str, ...] = (64, 1514, 9000, 65536, "imix")
QUICK_PAYLOADS: tuple[int | str, ...] = (64, 1514, 65536)
ROW_KEYS = ("op", "mode", "verifier", "payload", "mdls", "nbs", "data_bytes", "ns_per_op",
            "ns_min", "ns_max", "iterations", "repeats", "bytes_copied", "pool_bytes")


@dataclass
class Config:
    """What to run.  The defaults are the full matrix of `make bench`."""

    payloads: Sequence[int | str] = FULL_PAYLOADS
    mdls: Sequence[int] = (1, 4, 16)
    nbs: Sequence[int] = (1, 8, 64)
    ops: Sequence[str] = ALL_OPS
    modes: Sequence[str] = MODES
    batch_ms: float = 10.0
    repeats: int = 9
    warmup: int = 1
    seed: int = 0
    verifier_rows: bool = True
    quick: bool = False
    # build_free, nbl_bytes and read at every shape (False: the reference only)
    harness_everywhere: bool = True

    @classmethod
    def quick_run(cls) -> Config:
        """`--quick`: payloads 64/1514/65536 at 1 MDL and 1 NB; the harness
        ops at 1514 B only."""
        return cls(payloads=QUICK_PAYLOADS, mdls=(1,), nbs=(1,), quick=True,
                   harness_everywhere=False)


@dataclass(frozen=True)
class Shape:
    """One original NBL: `payload` is the bytes per NB, or "imix"."""

    payload: int | str
    mdls: int
    nbs: int

    def payloads(self) -> list[int]:
        """The payload bytes of each NB."""
        return list(IMIX) if self.payload == "imix" else [int(self.payload)] * self.nbs

    def mdl_sizes(self) -> list[int] | None:
        """build_nbl's mdl_sizes: `mdls` equal MDLs per NB (None: one MDL)."""
        if self.payload == "imix" or self.mdls == 1:
            return None
        return [max(1, math.ceil(int(self.payload) / self.mdls))]


def reference_shape(config: Config) -> Shape:
    """The shape the headline figures and the shape-free harness ops use:
    1514 B, 1 MDL, 1 NB when the matrix has it, else its first shape."""
    matrix = shapes(config)
    wanted = Shape(*REFERENCE)
    return wanted if wanted in matrix else matrix[0]


def shapes(config: Config) -> list[Shape]:
    """The matrix: every payload x MDLs per NB x NBs per NBL; IMIX once, at
    1 MDL per NB and its own 12 NBs."""
    out = []
    for payload in config.payloads:
        if payload == "imix":
            out.append(Shape("imix", 1, len(IMIX)))
            continue
        for mdls in config.mdls:
            for nbs in config.nbs:
                out.append(Shape(int(payload), mdls, nbs))
    return out


# -- one shape ----------------------------------------------------------------

class Bench:
    """An original NBL of one shape in a fresh Kernel, and the native bench
    state over it.  Use as a context manager: it frees what it built."""

    def __init__(self, shape: Shape, seed: int = 0, verifier: bool = False):
        self.shape = shape
        rng = random.Random(f"{seed}:{shape.payload}:{shape.mdls}:{shape.nbs}")
        sizes = shape.payloads()
        self.k = Kernel(arena_size=max(64 << 20, 4 * sum(sizes) + (16 << 20)), seed=seed,
                        verifier=verifier)
        self.pool = self.k.NdisAllocateNetBufferListPool(None, {"PoolTag": 0x68636E42})
        self.payloads = [rng.randbytes(n) for n in sizes]
        self.orig = self.k.build_nbl(self.pool, self.payloads, mdl_sizes=shape.mdl_sizes())
        if self.orig == ffi.NULL:
            raise MemoryError(f"cannot build the original NBL for {shape}")
        self.data_bytes = sum(sizes)
        for nb_mdls in self.mdl_counts():
            if nb_mdls != shape.mdls:
                raise RuntimeError(f"{shape}: an NB was built with {nb_mdls} MDLs")
        out = ffi.new("ndisemu_bench **")
        self.k._check("bench", lib.ndisemu_bench_prepare(self.k._k, self.orig,
                                                          self.k.default_nbl_pool,
                                                          self.k.default_nb_pool, out))
        self.b = ffi.gc(out[0], lib.ndisemu_bench_release)

    def mdl_counts(self) -> list[int]:
        """MDLs in each NB's chain of the original."""
        counts = []
        nb = self.orig.FirstNetBuffer
        while nb != ffi.NULL:
            count, mdl = 0, nb.MdlChain
            while mdl != ffi.NULL:
                count, mdl = count + 1, mdl.Next
            counts.append(count)
            nb = nb.Next
        return counts

    def close(self) -> None:
        """Releases the native bench state, the original NBL and its pool."""
        if self.b is not None:
            ffi.release(self.b)           # runs ndisemu_bench_release now
            self.b = None
            self.k.free_built(self.orig)
            self.k.NdisFreeNetBufferListPool(self.pool)

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def native_report(self, op: str) -> dict[str, int]:
        """What one native operation made (ndisemu_bench_report)."""
        report = ffi.new("ndisemu_bench_report *")
        self.k._check("bench", lib.ndisemu_bench_run(self.b, _OP_CODES[op], 1, report))
        return {name: getattr(report, name) for name in
                ("nbs", "mdls", "mdl_bytes", "bytes_copied", "block_bytes")}

    def exact(self, op: str) -> tuple[int, int]:
        """(bytes_copied, pool_bytes) of one operation.  Emulated calls: the
        k.stats() deltas around one allocation through the public API,
        checked against the native loop's own report.  Harness ops: the
        packet bytes the call moves between Python and the arena, and the
        pool bytes it allocates (build_free: the k.stats() delta of one
        build_nbl), each result checked against the original's payloads."""
        if op in HARNESS_OPS:
            return self._harness_exact(op)
        native = self.native_report(op)
        if op in FLOORS:
            return native["bytes_copied"], native["block_bytes"]
        alloc, free = _python_calls(self.k, op)
        before = self.k.stats()
        clone = alloc(self.orig)
        after = self.k.stats()
        free(clone)
        copied = after["bytes_copied"] - before["bytes_copied"]
        pool_bytes = after["pool_bytes_live"] - before["pool_bytes_live"]
        if (copied, pool_bytes) != (native["bytes_copied"], native["block_bytes"]):
            raise RuntimeError(f"{op}: the native loop and the public API disagree: "
                               f"{native} vs copied={copied} pool_bytes={pool_bytes}")
        return copied, pool_bytes

    def read_runs(self) -> list[tuple[Any, int]]:
        """(address, length) of every MDL run of every NB's used bytes: what
        the `read` op hands k.read, one call each."""
        runs = []
        nb = self.orig.FirstNetBuffer
        while nb != ffi.NULL:
            mdl, offset, left = nb.CurrentMdl, nb.CurrentMdlOffset, nb.DataLength
            while left:
                run = min(mdl.ByteCount - offset, left)
                if run:
                    runs.append((ffi.cast("uint8_t *", mdl.MappedSystemVa) + offset, run))
                left -= run
                mdl, offset = mdl.Next, 0
            nb = nb.Next
        return runs

    def _harness_exact(self, op: str) -> tuple[int, int]:
        k, want = self.k, self.payloads
        nb = self.orig.FirstNetBuffer
        if op in SHAPE_FREE_OPS:
            if op != "cffi_call" and k.view(nb).DataLength != nb.DataLength:
                raise RuntimeError("a view reads another value than the raw pointer")
            return 0, 0
        if op == "build_free":
            before = k.stats()["pool_bytes_live"]
            nbl = k.build_nbl(self.pool, want, mdl_sizes=self.shape.mdl_sizes())
            pool_bytes = k.stats()["pool_bytes_live"] - before
            got = k.nbl_bytes(nbl)
            k.free_built(nbl)
        elif op == "nbl_bytes":
            got, pool_bytes = k.nbl_bytes(self.orig), 0
        else:
            got, pool_bytes = [b"".join(k.read(a, n) for a, n in self.read_runs())], 0
            want = [b"".join(want)]
        if got != want:
            raise RuntimeError(f"{op}: the bytes read back differ from the payloads")
        return self.data_bytes, pool_bytes

    def batch(self, op: str, mode: str) -> Callable[[int], int]:
        """A function timing n operations, returning elapsed ns."""
        if op in HARNESS_OPS:
            return _harness_batch(self, op)
        clock = time.perf_counter_ns
        run, b, code, k = lib.ndisemu_bench_run, self.b, _OP_CODES[op], self.k
        null = ffi.NULL
        if mode == "native":
            def native(n: int) -> int:
                t0 = clock()
                rc = run(b, code, n, null)
                elapsed = clock() - t0
                k._check("bench", rc)
                return elapsed
            return native
        if op in FLOORS:
            def floor(n: int) -> int:     # one cffi call per operation
                t0 = clock()
                for _ in range(n):
                    run(b, code, 1, null)
                return clock() - t0
            return floor
        return _python_batch(k, op, self.orig)


def _python_calls(k: Kernel, op: str) -> tuple[Callable[[Any], Any], Callable[[Any], None]]:
    """(allocate, free) of an emulated operation through the public API."""
    flags = ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS if op == "clone_original_mdls" else 0
    if op in ("clone", "clone_original_mdls"):
        return (lambda o: k.NdisAllocateCloneNetBufferList(o, None, None, flags),
                lambda c: k.NdisFreeCloneNetBufferList(c, flags))
    if op == "fwps_clone":
        return (lambda o: k.FwpsAllocateCloneNetBufferList0(o, None, None, 0)[1],
                lambda c: k.FwpsFreeCloneNetBufferList0(c, 0))
    if op == "deep_clone":
        return (lambda o: k.FwpsAllocateDeepCloneNetBufferList0(o, None, None)[1],
                lambda c: k.FwpsFreeCloneNetBufferList0(c, 0))
    raise ValueError(f"unknown operation {op!r}")


def _python_batch(k: Kernel, op: str, orig: Any) -> Callable[[int], int]:
    """n operations written as a user's test writes them: the allocate and
    free calls inline, no helper in between."""
    clock = time.perf_counter_ns
    if op in ("clone", "clone_original_mdls"):
        flags = ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS if op == "clone_original_mdls" else 0
        alloc, free = k.NdisAllocateCloneNetBufferList, k.NdisFreeCloneNetBufferList

        def ndis_clone(n: int) -> int:
            t0 = clock()
            for _ in range(n):
                free(alloc(orig, None, None, flags), flags)
            return clock() - t0
        return ndis_clone
    free = k.FwpsFreeCloneNetBufferList0
    if op == "fwps_clone":
        fwps = k.FwpsAllocateCloneNetBufferList0

        def fwps_clone(n: int) -> int:
            t0 = clock()
            for _ in range(n):
                free(fwps(orig, None, None, 0)[1], 0)
            return clock() - t0
        return fwps_clone
    deep = k.FwpsAllocateDeepCloneNetBufferList0

    def deep_clone(n: int) -> int:
        t0 = clock()
        for _ in range(n):
            free(deep(orig, None, None)[1], 0)
        return clock() - t0
    return deep_clone


def _harness_batch(b: Bench, op: str) -> Callable[[int], int]:
    """n harness operations written as a harness writes them (python mode)."""
    clock, k = time.perf_counter_ns, b.k
    nb = b.orig.FirstNetBuffer
    if op == "raw_read":
        def raw_read(n: int) -> int:
            t0 = clock()
            for _ in range(n):
                nb.DataLength  # noqa: B018 - the read is what is timed
            return clock() - t0
        return raw_read
    if op == "view_read":
        view = k.view(nb)

        def view_read(n: int) -> int:
            t0 = clock()
            for _ in range(n):
                view.DataLength  # noqa: B018 - the read is what is timed
            return clock() - t0
        return view_read
    if op == "build_free":
        build, free, pool = k.build_nbl, k.free_built, b.pool
        payloads, sizes = b.payloads, b.shape.mdl_sizes()

        def build_free(n: int) -> int:
            t0 = clock()
            for _ in range(n):
                free(build(pool, payloads, mdl_sizes=sizes))
            return clock() - t0
        return build_free
    if op == "nbl_bytes":
        nbl_bytes, orig = k.nbl_bytes, b.orig

        def nbl_bytes_op(n: int) -> int:
            t0 = clock()
            for _ in range(n):
                nbl_bytes(orig)
            return clock() - t0
        return nbl_bytes_op
    if op == "read":
        read, runs = k.read, b.read_runs()

        def read_op(n: int) -> int:
            t0 = clock()
            for _ in range(n):
                for address, length in runs:
                    read(address, length)
            return clock() - t0
        return read_op
    if op == "cffi_call":
        run, state, null = lib.ndisemu_bench_run, b.b, ffi.NULL

        def bare(n: int) -> int:          # a 0-iteration loop: the call and no more
            t0 = clock()
            for _ in range(n):
                run(state, 1, 0, null)
            return clock() - t0
        return bare
    raise ValueError(f"unknown operation {op!r}")


def calibrate(batch: Callable[[int], int], target_ns: float) -> int:
    """Iterations for one batch of about `target_ns`."""
    n = 1
    elapsed = batch(n)
    while elapsed < target_ns / 10 and n < 1 << 32:
        n *= 10
        elapsed = batch(n)
    return max(1, round(n * target_ns / max(elapsed, 1)))


def _summary(per_op: list[float], n: int, repeats: int) -> dict[str, Any]:
    return {"ns_per_op": round(statistics.median(per_op), 1), "ns_min": round(min(per_op), 1),
            "ns_max": round(max(per_op), 1), "iterations": n, "repeats": repeats}


def time_op(batch: Callable[[int], int], config: Config) -> dict[str, Any]:
    """Median, min and max ns per operation over `repeats` batches."""
    n = calibrate(batch, config.batch_ms * 1e6)
    for _ in range(config.warmup):
        batch(n)
    return _summary([batch(n) / n for _ in range(config.repeats)], n, config.repeats)


class _Row:
    """One row being measured: its batch, calibrated size and samples."""

    def __init__(self, bench: Bench, op: str, mode: str, verifier: bool, config: Config):
        self.bench, self.op, self.mode, self.verifier = bench, op, mode, verifier
        self.copied, self.pool_bytes = bench.exact(op)
        self.batch = bench.batch(op, mode)
        self.samples: list[float] = []
        self.n = 1
        self.n = self._timed(lambda: calibrate(self.batch, config.batch_ms * 1e6))
        for _ in range(config.warmup):
            self._timed(lambda: self.batch(self.n))

    def _timed(self, work: Callable[[], int]) -> int:
        self.bench.k.verifier = self.verifier
        try:
            return work()
        finally:
            self.bench.k.verifier = False

    def sample(self) -> None:
        self.samples.append(self._timed(lambda: self.batch(self.n)) / self.n)

    def row(self) -> dict[str, Any]:
        shape = self.bench.shape
        return {"op": self.op, "mode": self.mode, "verifier": self.verifier,
                "payload": shape.payload, "mdls": shape.mdls, "nbs": shape.nbs,
                "data_bytes": self.bench.data_bytes,
                **_summary(self.samples, self.n, len(self.samples)),
                "bytes_copied": self.copied, "pool_bytes": self.pool_bytes}


def _plan(bench: Bench, config: Config) -> list[_Row]:
    """The rows of one shape: each clone op in each mode, the verifier rows,
    then the harness ops this shape runs (python mode)."""
    plan = [(op, mode, False) for op in config.ops if op in OPS for mode in config.modes]
    if config.verifier_rows and "native" in config.modes:
        plan += [(op, "native", True) for op in VERIFIER_OPS if op in config.ops]
    if "python" in config.modes:
        reference = bench.shape == reference_shape(config)
        plan += [(op, "python", False) for op in HARNESS_OPS if op in config.ops and
                 (reference or (config.harness_everywhere and op not in SHAPE_FREE_OPS))]
    return [_Row(bench, op, mode, verifier, config) for op, mode, verifier in plan]


def _sample_interleaved(rows: Sequence[_Row], repeats: int) -> None:
    """Repeat 1 of every row, then repeat 2, ...: a drift in the machine's
    speed (this VM's drifts by up to 1.5x over minutes) then moves all rows
    alike, and the ratios between them, across shapes too, hold."""
    for _ in range(repeats):
        for row in rows:
            row.sample()


def measure_shape(shape: Shape, config: Config) -> list[dict[str, Any]]:
    """Every row of one shape (the batches of its rows interleaved)."""
    with Bench(shape, config.seed) as bench:
        rows = _plan(bench, config)
        _sample_interleaved(rows, config.repeats)
        return [row.row() for row in rows]


def cffi_call_ns(config: Config) -> float:
    """Median ns of one bare cffi call into the core (a 0-iteration loop):
    the least any Python-mode call can cost."""
    with Bench(Shape(64, 1, 1), config.seed) as bench:
        run, b, null = lib.ndisemu_bench_run, bench.b, ffi.NULL
        clock = time.perf_counter_ns

        def bare(n: int) -> int:
            t0 = clock()
            for _ in range(n):
                run(b, 1, 0, null)
            return clock() - t0
        return time_op(bare, config)["ns_per_op"]


# -- the whole run --------------------------------------------------------------

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(config: Config) -> dict[str, Any]:
    """The result's "machine" object: platform, CPU, versions, timing setup."""
    import cffi
    import numpy
    return {
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "cffi": cffi.__version__,
        "ndisemu": _version(),
        "verifier": "off for every row unless the row says verifier: true",
        "timer": "time.perf_counter_ns around batches",
        "batch_ms": config.batch_ms,
        "repeats": config.repeats,
        "warmup_batches": config.warmup,
        "seed": config.seed,
        "quick": config.quick,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("ndisemu")
    except Exception:  # not installed: running from a checkout
        return "unknown"


def run(config: Config, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Runs the matrix; returns {"machine", "rows", "summary"}.

    Every shape is set up and calibrated first; then the timed batches of
    all rows of all shapes are interleaved, so that ratios between shapes
    (64 KiB against 64 B) are as sound as those within one."""
    matrix = shapes(config)
    with contextlib.ExitStack() as stack:
        rows: list[_Row] = []
        for i, shape in enumerate(matrix, 1):
            if progress:
                progress(f"[{i}/{len(matrix)}] calibrating payload={shape.payload} "
                         f"mdls={shape.mdls} nbs={shape.nbs}")
            rows += _plan(stack.enter_context(Bench(shape, config.seed)), config)
        for r in range(config.repeats):
            if progress:
                progress(f"timed pass {r + 1}/{config.repeats} over {len(rows)} rows")
            _sample_interleaved(rows, 1)
        result_rows = [row.row() for row in rows]
    call_ns = next((r["ns_per_op"] for r in result_rows if r["op"] == "cffi_call"), None)
    if call_ns is None and "python" in config.modes:
        call_ns = cffi_call_ns(config)
    return {"machine": machine_info(config), "rows": result_rows,
            "summary": summarize(result_rows, call_ns)}


# -- what the figures say -------------------------------------------------------

def _index(rows: Sequence[dict[str, Any]]) -> dict[tuple, float]:
    return {(r["op"], r["mode"], r["verifier"], r["payload"], r["mdls"], r["nbs"]):
            r["ns_per_op"] for r in rows}


def _ratios(idx: dict[tuple, float], num: Callable[[tuple], tuple | None],
            den: Callable[[tuple], tuple | None]) -> list[tuple[float, tuple]]:
    """(ratio, shape) for every shape where both keys were measured."""
    out = []
    for payload, mdls, nbs in sorted({k[3:] for k in idx}, key=str):
        a, b = num((payload, mdls, nbs)), den((payload, mdls, nbs))
        if a in idx and b in idx and idx[b] > 0:
            out.append((idx[a] / idx[b], (payload, mdls, nbs)))
    return out


def _payload_order(payload: Any) -> tuple[int, int]:
    """Numeric payloads in order, "imix" last."""
    return (1, 0) if payload == "imix" else (0, int(payload))


def _reference_payload(shapes_seen: set[tuple]) -> Any:
    """The payload the per-MDL-count figures are quoted at: 1514 B when
    measured, else the smallest."""
    payloads = sorted({s[0] for s in shapes_seen}, key=_payload_order)
    return REFERENCE[0] if REFERENCE[0] in payloads else (payloads[0] if payloads else None)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _clone_entry(idx: dict[tuple, float], shape: tuple) -> dict[str, Any] | None:
    """Deep clone against clone against clone on the original MDLs at one
    shape (native, verifier off), as plain ratios."""
    def ns(op: str) -> float | None:
        return idx.get((op, "native", False, *shape))
    shared, clone, deep = ns("clone_original_mdls"), ns("clone"), ns("deep_clone")
    if clone is None and deep is None:
        return None
    return {"payload": shape[0], "mdls": shape[1], "nbs": shape[2],
            "clone_original_mdls_ns": shared, "clone_ns": clone, "deep_clone_ns": deep,
            "deep_vs_clone": _round(deep / clone) if deep and clone else None,
            "clone_vs_original_mdls": _round(clone / shared) if clone and shared else None,
            "deep_vs_original_mdls": _round(deep / shared) if deep and shared else None}


def _clone_summary(idx: dict[tuple, float]) -> dict[str, Any]:
    seen = {k[3:] for k in idx}
    reference = _reference_payload(seen)
    by_payload = [_clone_entry(idx, s) for s in sorted(
        (s for s in seen if s[1:] == (1, 1) or s[0] == "imix"), key=lambda s: _payload_order(s[0]))]
    by_mdls = [_clone_entry(idx, s) for s in sorted(
        (s for s in seen if s[0] == reference and s[2] == 1), key=lambda s: s[1])]
    return {"by_payload": [e for e in by_payload if e], "by_mdls": [e for e in by_mdls if e]}


def _harness_summary(idx: dict[tuple, float], call_ns: float | None) -> dict[str, Any]:
    """The harness ops (python mode): their ns and their ratio to a bare
    cffi call; view_read against raw_read."""
    def rows_of(op: str) -> list[dict[str, Any]]:
        out = []
        for key in sorted((k for k in idx if k[0] == op and k[1] == "python"),
                          key=lambda k: (_payload_order(k[3]), k[4], k[5])):
            ns = idx[key]
            out.append({"payload": key[3], "mdls": key[4], "nbs": key[5], "ns": ns,
                        "vs_cffi_call": _round(ns / call_ns) if call_ns else None})
        return out
    raw = [r["ns"] for r in rows_of("raw_read")]
    view = [r["ns"] for r in rows_of("view_read")]
    return {"cffi_call_ns": call_ns,
            "raw_read_ns": raw[0] if raw else None, "view_read_ns": view[0] if view else None,
            "view_read_vs_raw_read": _round(view[0] / raw[0]) if raw and view else None,
            **{op: rows_of(op) for op in ("build_free", "nbl_bytes", "read")}}


def _verifier_summary(idx: dict[tuple, float]) -> list[dict[str, Any]]:
    """What the verifier adds (native rows with it on against off), at 1 MDL
    and 1 NB per payload."""
    out = []
    for key in sorted((k for k in idx if k[1] == "native" and k[2] and k[4:] == (1, 1)),
                      key=lambda k: (k[0], _payload_order(k[3]))):
        off = idx.get((key[0], "native", False, *key[3:]))
        if off:
            out.append({"op": key[0], "payload": key[3], "on_ns": idx[key], "off_ns": off,
                        "ratio": _round(idx[key] / off)})
    return out


def summarize(rows: Sequence[dict[str, Any]], call_ns: float | None = None
              ) -> dict[str, Any]:
    """What the figures say, as ratios of medians from this one run.

    ``clones``: deep clone against clone against clone on the original MDLs
    per payload (1 MDL, 1 NB) and per MDL count (1514 B, 1 NB): what a user
    came to see.  ``harness``: the harness ops against a bare cffi call.
    ``verifier``: its cost.  ``targets``: the project's targets (the README's
    performance section), each at the reference shape (1514 B or 1 MDL, 1
    NB) and the worst over every shape measured.  ``python_overhead``: the
    python-mode cost per public call above the native cost."""
    idx = _index(rows)
    seen = {k[3:] for k in idx}
    reference = _reference_payload(seen)

    def key(op: str, mode: str = "native", payload: Any = None,
            verifier: bool = False) -> Callable:
        return lambda s: (op, mode, verifier, s[0] if payload is None else payload, s[1], s[2])

    def at(*shape: Any) -> Callable[[tuple[float, tuple]], bool]:
        return lambda rs: rs[1] == shape

    def target(name: str, ratios: list, limit: float, at_most: bool) -> dict[str, Any] | None:
        if not ratios:
            return None
        headline = next((r for r, s in ratios if s == (reference, 1, 1)),
                        next((r for r, s in ratios if s[1:] == (1, 1)), None))
        worst, shape = max(ratios) if at_most else min(ratios)
        return {"name": name, "target": f"{'<=' if at_most else '>='} {limit}",
                "at_1_mdl_1_nb": None if headline is None else round(headline, 2),
                "worst": round(worst, 2),
                "worst_shape": {"payload": shape[0], "mdls": shape[1], "nbs": shape[2]},
                "met": (worst <= limit) if at_most else (worst >= limit)}

    def per_call(op: str) -> list[tuple[float, tuple]]:
        return [(idx[k] / call_ns, k[3:]) for k in idx
                if call_ns and k[0] == op and k[1] == "python"]

    def extra_mdl_growth() -> list[tuple[float, tuple]]:
        """The cost of one more MDL between the two highest MDL counts over
        its average from the lowest count to the highest (1514 B, 1 NB):
        about 1 when build_free grows linearly in MDLs, more when each MDL
        costs more than the last."""
        points = sorted((k[4], idx[k]) for k in idx
                        if k[0] == "build_free" and k[3] == reference and k[5] == 1)
        if len(points) < 3:
            return []
        (m0, c0), (m1, c1), (m2, c2) = points[0], points[-2], points[-1]
        overall, high = (c2 - c0) / (m2 - m0), (c2 - c1) / (m2 - m1)
        return [(high / overall, (reference, m2, 1))] if overall > 0 else []

    targets = [
        target("shallow clone 64 KiB / 64 B (native)",
               [(r, s) for r, s in _ratios(idx, key("clone", payload=65536),
                                           key("clone", payload=64)) if s[0] == 64],
               1.5, True),
        target("native clone / floor_clone",
               _ratios(idx, key("clone"), key("floor_clone")), 3.0, True),
        target("native clone with the verifier / floor_clone",
               _ratios(idx, key("clone", verifier=True), key("floor_clone")), 4.5, True),
        target("native deep clone 64 KiB / memcpy 64 KiB",
               [(r, s) for r, s in _ratios(idx, key("deep_clone"), key("memcpy"))
                if s[0] == 65536], 2.0, True),
        target("deep clone 64 KiB / shallow clone 64 KiB (native)",
               [(r, s) for r, s in _ratios(idx, key("deep_clone"), key("clone"))
                if s[0] == 65536], 10.0, False),
        target("view_read / raw_read",
               _ratios(idx, key("view_read", "python"), key("raw_read", "python")), 4.0, True),
        target(f"build_free / cffi_call ({reference} B, 1 MDL, 1 NB)",
               list(filter(at(reference, 1, 1), per_call("build_free"))), 10.0, True),
        target(f"build_free per extra MDL, last step / on average ({reference} B, 1 NB)",
               extra_mdl_growth(), 1.5, True),
        target(f"nbl_bytes / cffi_call ({reference} B, 1 MDL, 1 NB)",
               list(filter(at(reference, 1, 1), per_call("nbl_bytes"))), 4.0, True),
    ]
    summary: dict[str, Any] = {"clones": _clone_summary(idx),
                               "harness": _harness_summary(idx, call_ns),
                               "verifier": _verifier_summary(idx),
                               "targets": [t for t in targets if t]}
    overhead = []
    for (op, mode, verifier, payload, mdls, nbs), ns in idx.items():
        native = idx.get((op, "native", False, payload, mdls, nbs))
        if mode != "python" or verifier or native is None or (mdls, nbs) != (1, 1):
            continue
        calls = 1 if op in FLOORS else 2        # allocate + free
        overhead.append({"op": op, "payload": payload, "python_ns": ns, "native_ns": native,
                         "overhead_ns_per_call": round((ns - native) / calls, 1),
                         "ratio": round(ns / native, 2) if native else None})
    summary["python_overhead"] = overhead
    if call_ns is not None:
        summary["cffi_call_ns"] = call_ns
    return summary


# -- output -------------------------------------------------------------------

def _ns(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary_text(result: dict[str, Any]) -> str:
    """What the run says, first: deep clone against clone against clone on
    the original MDLs, per payload and per MDL count, as plain ratios; then
    the harness ops against a bare cffi call, and the verifier's cost."""
    summary = result.get("summary", {})
    lines: list[str] = []
    clones = summary.get("clones", {})
    head = (f"  {'payload':>7} {'mdls':>4} {'nbs':>3} {'orig-MDL clone':>14} {'clone':>9} "
            f"{'deep clone':>10}   {'clone/orig-MDL':>14} {'deep/clone':>10} {'deep/orig-MDL':>13}")

    def clone_lines(entries: list[dict[str, Any]]) -> list[str]:
        return [f"  {e['payload']!s:>7} {e['mdls']:>4} {e['nbs']:>3} "
                f"{_ns(e['clone_original_mdls_ns']):>14} {_ns(e['clone_ns']):>9} "
                f"{_ns(e['deep_clone_ns']):>10}   {_x(e['clone_vs_original_mdls']):>14} "
                f"{_x(e['deep_vs_clone']):>10} {_x(e['deep_vs_original_mdls']):>13}"
                for e in entries]
    if clones.get("by_payload") or clones.get("by_mdls"):
        lines += ["Deep clone vs clone vs clone on the original MDLs (native loop, verifier off,",
                  "ns per allocate + free, medians of this run):"]
        if clones.get("by_payload"):
            lines += ["", "  by payload (1 MDL, 1 NB; imix: 12 NBs):", head,
                      *clone_lines(clones["by_payload"])]
        if clones.get("by_mdls"):
            lines += ["", "  by MDLs per NB (1 NB):", head, *clone_lines(clones["by_mdls"])]
    harness = summary.get("harness", {})
    call = harness.get("cffi_call_ns")
    parts = [(op, harness.get(op) or []) for op in ("build_free", "nbl_bytes", "read")]
    if harness.get("view_read_ns") or any(entries for _, entries in parts):
        lines += ["", "What a Python harness pays (python mode; a bare cffi call into the core: "
                      f"{_ns(call)} ns):"]
        if harness.get("view_read_ns") is not None:
            lines.append(f"  view_read {_ns(harness['view_read_ns'])} ns = "
                         f"{_x(harness['view_read_vs_raw_read'])} x raw_read "
                         f"({_ns(harness['raw_read_ns'])} ns)")
        for op, entries in parts:
            for e in entries:
                if e["nbs"] == 1 and (e["mdls"] == 1 or e["payload"] == REFERENCE[0]):
                    lines.append(f"  {op:<10} {e['payload']!s:>7} B {e['mdls']:>3} MDL "
                                 f"{e['nbs']:>2} NB: {_ns(e['ns']):>9} ns = "
                                 f"{_x(e['vs_cffi_call']):>6} x cffi_call")
    if summary.get("verifier"):
        lines += ["", "The verifier's cost (native, 1 MDL, 1 NB; on / off):"]
        for v in summary["verifier"]:
            lines.append(f"  {v['op']:<10} {v['payload']!s:>7} B: {_ns(v['on_ns'])} / "
                         f"{_ns(v['off_ns'])} ns = {_x(v['ratio'])}")
    return "\n".join(lines)


def table(result: dict[str, Any]) -> str:
    """What the run says (summary_text) first, then every row."""
    head = (f"{'op':<20} {'mode':<7} {'verif':<5} {'payload':>7} {'mdls':>4} {'nbs':>3} "
            f"{'ns/op':>11} {'min':>11} {'max':>11} {'copied':>9} {'pool B':>9}")
    lines = [summary_text(result), "", "Every row (ns per operation: median, min, max of the "
             "timed batches):", head, "-" * len(head)]
    for r in result["rows"]:
        lines.append(f"{r['op']:<20} {r['mode']:<7} {'on' if r['verifier'] else 'off':<5} "
                     f"{r['payload']!s:>7} {r['mdls']:>4} {r['nbs']:>3} "
                     f"{r['ns_per_op']:>11.1f} {r['ns_min']:>11.1f} {r['ns_max']:>11.1f} "
                     f"{r['bytes_copied']:>9} {r['pool_bytes']:>9}")
    summary = result.get("summary", {})
    if summary.get("python_overhead"):
        lines += ["", "Python-mode overhead per public call (1 MDL, 1 NB):"]
        for o in summary["python_overhead"]:
            lines.append(f"  {o['op']:<20} payload {o['payload']!s:>6}: "
                         f"{o['overhead_ns_per_call']:>8.1f} ns/call, python/native "
                         f"{o['ratio']}")
    lines.append("")
    lines.append(f"Kernel(verifier=False) unless verif says on; {result['machine']['cpu_model']}, "
                 f"{result['machine']['python']}.  The project's targets for these ratios: "
                 "the README's performance section (summary.targets in the JSON).")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: str) -> None:
    """Writes the result as JSON to `path` (through a .tmp file and a rename,
    so a reader never sees half a file); creates the folder."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


_STYLE = {
    "clone": ("tab:blue", "o"), "clone_original_mdls": ("tab:cyan", "v"),
    "fwps_clone": ("tab:green", "^"), "deep_clone": ("tab:red", "s"),
    "memcpy": ("black", "x"), "floor_clone": ("gray", "+"),
}


def _ratio_panel(ax: Any, rows: Sequence[dict[str, Any]]) -> bool:
    """Deep clone / clone (solid) and deep clone / clone on the original
    MDLs (dashed) against payload, one line per MDL count (native, 1 NB),
    each point labelled with its value: the ratios read off directly, not
    off a log axis.  False when the rows hold no such pair."""
    idx = {(r["op"], r["payload"], r["mdls"]): r["ns_per_op"] for r in rows
           if r["mode"] == "native" and r["nbs"] == 1 and not r["verifier"]}
    drawn = False
    for i, mdls in enumerate(sorted({k[2] for k in idx})):
        color = f"C{i}"
        for base, style, name in (("clone", "-", "clone"),
                                  ("clone_original_mdls", "--", "clone on original MDLs")):
            pts = sorted((p, idx[("deep_clone", p, mdls)] / idx[(base, p, mdls)])
                         for (op, p, m) in idx if op == "deep_clone" and m == mdls
                         and (base, p, mdls) in idx and idx[(base, p, mdls)] > 0)
            if not pts:
                continue
            drawn = True
            ax.plot([x for x, _ in pts], [y for _, y in pts], style, color=color, marker="o",
                    lw=2 if base == "clone" else 1,
                    label=f"deep / {name}, {mdls} MDL{'s' if mdls > 1 else ''}")
            if base == "clone":            # labels staggered per line: small ratios crowd
                for x, y in pts:
                    ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points",
                                xytext=(0, 7 + 11 * i), ha="center", fontsize=8, color=color,
                                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none",
                                      "alpha": 0.8})
    if drawn:
        ax.set_xscale("log", base=10)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xlabel("payload bytes per NB (1 NB)")
        ax.set_ylabel("deep clone time / shallow clone time (native, medians)")
        ax.set_title("deep / shallow, as plain ratios", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        xs = sorted({k[1] for k in idx})
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.legend(fontsize=8, loc="upper left")
    return drawn


def plot(result: dict[str, Any], path: str) -> None:
    """ns/op against payload (log-log), MDLs per NB and NBs per NBL; native
    solid, python dashed; floors in black and gray.  A last panel gives the
    deep / shallow clone ratios per payload and MDL count as labelled
    points on a linear axis."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise RuntimeError("--plot needs matplotlib: pip install 'ndisemu[bench]' "
                           "(make bench installs it)") from error
    rows = [r for r in result["rows"] if not r["verifier"] and r["payload"] != "imix"]
    payloads = sorted({r["payload"] for r in rows})
    ref = 1514 if 1514 in payloads else payloads[0]
    panels = [("payload", "payload bytes per NB (1 MDL, 1 NB)", {"mdls": 1, "nbs": 1}),
              ("mdls", f"MDLs per NB ({ref} B, 1 NB)", {"payload": ref, "nbs": 1}),
              ("nbs", f"NBs per NBL ({ref} B, 1 MDL)", {"payload": ref, "mdls": 1})]
    panels = [p for p in panels
              if len({r[p[0]] for r in rows if all(r[k] == v for k, v in p[2].items())}) > 1]
    if not panels:
        panels = [("payload", "payload bytes per NB", {})]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(6.2 * (len(panels) + 1), 6.4),
                             squeeze=False)
    if not _ratio_panel(axes[0][-1], rows):
        axes[0][-1].set_axis_off()
    for ax, (var, label, fixed) in zip(axes[0], panels, strict=False):
        for op in OPS:
            color, marker = _STYLE[op]
            for mode, style in (("native", "-"), ("python", "--")):
                pts = sorted((r[var], r["ns_per_op"]) for r in rows
                             if r["op"] == op and r["mode"] == mode
                             and all(r[k] == v for k, v in fixed.items()))
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color,
                        marker=marker, lw=2 if mode == "native" else 1,
                        alpha=1.0 if mode == "native" else 0.6,
                        label=f"{op} ({mode})" if mode == "native" or op == "clone"
                        else None)
        ax.set_xscale("log", base=2 if var != "payload" else 10)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("ns per operation (median)")
        ax.grid(True, which="both", alpha=0.3)
        xs = sorted({r[var] for r in rows if all(r[k] == v for k, v in fixed.items())})
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9,
               title="solid: native loop (one Python call per batch); dashed: python API "
                     "(one call per step); black and gray: the floors", title_fontsize=9)
    machine = result["machine"]
    fig.suptitle(f"ndisemu clone vs deep clone, ns per allocate+free, verifier off "
                 f"({machine['cpu_model']}, {machine['python']})", fontsize=10)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def progress_to_stderr(message: str) -> None:
    """The CLI's progress callback for run(): one line on stderr."""
    print(f"ndisemu bench: {message}", file=sys.stderr, flush=True)
