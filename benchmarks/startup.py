"""Start-up cost of the `ndisemu` command line against Python's own.

    .venv/bin/python benchmarks/startup.py [--runs N] [--json]

Runs each command N times, in interleaved rounds, after one untimed run
that writes the bytecode caches (as a normal install has them), and prints
the median wall time and its ratio to `python -c pass` from the same
interpreter, measured in the same run.  The README quotes one run of it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "ndisemu layout (one profile, dt text)": ["-m", "ndisemu", "layout"],
    "ndisemu layout --json (one profile)": ["-m", "ndisemu", "layout", "--json"],
    "ndisemu layout --abi all --ndis all --json (45 profiles)":
        ["-m", "ndisemu", "layout", "--abi", "all", "--ndis", "all", "--json"],
    "ndisemu layout diff x64:6.0 x64:6.87": ["-m", "ndisemu", "layout", "diff", "x64:6.0",
                                             "x64:6.87"],
}


def medians(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median wall time of each `python ARGS`, after one untimed run of each.
    Rounds run every command once, in turn, so that a machine whose speed
    drifts slows every command alike and the ratios hold."""
    for argv in commands.values():
        subprocess.run([sys.executable, *argv], stdout=subprocess.DEVNULL, env=env, check=True)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, *argv], stdout=subprocess.DEVNULL, env=env,
                           check=True)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per command (default 21)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    # Bytecode caches as an installed package has them.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        # A JSON file to check: one profile as `ndisemu layout --json` prints it.
        mine = os.path.join(tmp, "mine.json")
        with open(mine, "w") as out:
            subprocess.run([sys.executable, "-m", "ndisemu", "layout", "--json"], stdout=out,
                           env=env, check=True)
        commands = dict(COMMANDS)
        commands["ndisemu layout check (JSON, one profile)"] = [
            "-m", "ndisemu", "layout", "check", mine]
        results = medians(commands, args.runs, env)
    base = results["python -c pass"]
    rows = [{"command": name, "ms": round(seconds * 1e3, 1), "ratio": round(seconds / base, 2)}
            for name, seconds in results.items()]
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "runs": args.runs, "rows": rows},
                         indent=1))
    else:
        for row in rows:
            print(f"{row['command']:<58} {row['ms']:>7.1f} ms  {row['ratio']:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
