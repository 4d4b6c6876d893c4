"""How soon ndisemu.strategies.nbl_shapes reaches each shape feature that
breaks offset arithmetic, measured on the NBLs build_nbl makes from the
shapes (their NB and MDL fields, not the shape dicts).

    .venv/bin/python tests/shape_reach.py --seeds 30

prints, per feature, the median and worst example number at which it first
appeared over that many Hypothesis seeds; tests/test_strategies.py asserts
a bound on a few fixed seeds.
"""

from __future__ import annotations

import argparse
import statistics

from hypothesis import Phase, given, seed, settings

import ndisemu
from ndisemu import ffi
from ndisemu.strategies import FRAME_LENGTHS, nbl_shapes

HEADER = 14          # an MDL boundary inside the first bytes of data (an Ethernet header)

FEATURES = ["several NBs", "empty NB", "1-byte MDL", "zero-length MDL", "odd MDL length",
            "even MDL length", "CurrentMdl not the first", "DataOffset at an MDL end",
            f"MDL boundary in the first {HEADER} data bytes"] + [
            f"payload of {n} bytes" for n in FRAME_LENGTHS]


def _chain(first):
    out, link = [], first
    while link != ffi.NULL:
        out.append(link)
        link = link.Next
    return out


def features(nbl, max_mdls=8):
    """The features an NBL shows.  Also checks what every shape must keep:
    at most `max_mdls` MDLs per NB and the invariant check_nb enforces."""
    found = set()
    nbs = _chain(nbl.FirstNetBuffer)
    if len(nbs) >= 2:
        found.add("several NBs")
    for nb in nbs:
        mdls = _chain(nb.MdlChain)
        assert len(mdls) <= max_mdls, len(mdls)
        counts = [m.ByteCount for m in mdls]
        found |= {name for name, hit in (
            ("empty NB", nb.DataLength == 0),
            ("1-byte MDL", 1 in counts),
            ("zero-length MDL", 0 in counts),
            ("odd MDL length", any(c % 2 for c in counts)),
            ("even MDL length", any(c and c % 2 == 0 for c in counts)),
            ("CurrentMdl not the first", bool(mdls) and nb.CurrentMdl != nb.MdlChain),
            ("DataOffset at an MDL end", nb.DataOffset > 0 and nb.CurrentMdlOffset == 0),
        ) if hit}
        end, start = 0, nb.DataOffset
        for count in counts:
            end += count
            if start < end < start + min(nb.DataLength, HEADER):
                found.add(f"MDL boundary in the first {HEADER} data bytes")
        if nb.DataLength in FRAME_LENGTHS:
            found.add(f"payload of {nb.DataLength} bytes")
    return found


def first_hits(hypothesis_seed: int, examples: int, **limits) -> dict[str, int]:
    """Feature -> the number of the example that first showed it."""
    k = ndisemu.Kernel(arena_size=64 << 20)
    first: dict[str, int] = {}
    count = [0]

    @seed(hypothesis_seed)
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False,
              phases=[Phase.generate])
    @given(nbl_shapes(**limits))
    def run(shape):
        count[0] += 1
        if len(first) == len(FEATURES):
            return                                  # all seen: only count
        nbl = k.build_nbl(k.default_nbl_pool, **shape)
        for feature in features(nbl, limits.get("max_mdls", 8)):
            first.setdefault(feature, count[0])
        k.free_built(nbl)

    run()
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--examples", type=int, default=1000)
    args = parser.parse_args()
    runs = [first_hits(s, args.examples) for s in range(args.seeds)]
    print(f"| feature | median | worst (of {args.seeds} seeds) |\n|---|---|---|")
    for feature in FEATURES:
        hits = [run.get(feature) for run in runs]
        seen = [h for h in hits if h is not None]
        worst = max(seen) if len(seen) == len(hits) else f"not in {args.examples}"
        print(f"| {feature} | {statistics.median_low(seen) if seen else '-'} | {worst} |")


if __name__ == "__main__":
    main()
