"""make fuzz: the property and state-machine tests, in rounds, for as long
as NDISEMU_FUZZ_SECONDS says (default 180).

Each round runs every test Hypothesis drives (pytest -m "hypothesis or
fuzz") with a fresh random seed and NDISEMU_FUZZ=1: no derandomizing, no
deadline, the example database kept (a failure found once is replayed
first in every later round), and each test's own budget multiplied by
NDISEMU_FUZZ_SCALE (default 20; see examples() in tests/conftest.py).  A
round that would outlast the time left runs with the scale cut to fit.
The first failing round stops the run, exit status 1, with the command
that replays it.

    NDISEMU_FUZZ_SECONDS=600 make fuzz
    .venv/bin/python tests/scripts/fuzz.py [PYTEST ARGS...]    # e.g. one test file
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SELECT = ["-m", "hypothesis or fuzz"]


def run_round(seed: int, scale: int, args: list[str]) -> tuple[int, int, str]:
    """(exit status, examples run, output) of one round."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--hypothesis-show-statistics", f"--hypothesis-seed={seed}", *SELECT, *args]
    env = dict(os.environ, NDISEMU_FUZZ="1", NDISEMU_FUZZ_SCALE=str(scale))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    examples = sum(int(n) for n in re.findall(r"- (\d+) passing", done.stdout))
    return done.returncode, examples, done.stdout + done.stderr


def main() -> int:
    budget = float(os.environ.get("NDISEMU_FUZZ_SECONDS", "180"))
    full_scale = int(os.environ.get("NDISEMU_FUZZ_SCALE", "20"))
    args = sys.argv[1:]
    start = time.monotonic()
    rounds = total = 0
    per_unit = None                  # seconds a round takes per unit of scale
    while True:
        left = budget - (time.monotonic() - start)
        if rounds and left <= 0:
            break
        scale = full_scale
        if per_unit is not None:
            scale = max(1, min(full_scale, int(left / per_unit)))
        seed = random.SystemRandom().randrange(2**32)
        began = time.monotonic()
        status, examples, output = run_round(seed, scale, args)
        took = time.monotonic() - began
        per_unit = took / scale
        rounds += 1
        total += examples
        print(f"fuzz round {rounds}: seed {seed}, scale {scale}, {examples} examples, "
              f"{took:.0f} s: {'passed' if status == 0 else 'FAILED'}", flush=True)
        if status == 5:              # no test selected
            print(output)
            return 1
        if status:
            print(output)
            print(f"fuzz: round {rounds} failed.  Replay it with:\n  NDISEMU_FUZZ=1 "
                  f"NDISEMU_FUZZ_SCALE={scale} {sys.executable} -m pytest "
                  f"--hypothesis-seed={seed} -m '{SELECT[1]}' {' '.join(args)}")
            return 1
    print(f"fuzz: {rounds} rounds, {total} examples (Hypothesis's count) in "
          f"{time.monotonic() - start:.0f} s (budget {budget:.0f} s), no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
