"""make fuzz (tests/scripts/fuzz.py): rounds with fresh seeds and scaled
budgets until the time is up; the first failing round stops it and says
how to replay it."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "scripts" / "fuzz.py"
QUICK = "tests/test_kernel.py::test_build_nbl_under_random_failures_never_leaks"   # 25 examples


def fuzz(*args, seconds, scale=1):
    env = dict(os.environ, NDISEMU_FUZZ_SECONDS=str(seconds), NDISEMU_FUZZ_SCALE=str(scale))
    return subprocess.run([sys.executable, str(FUZZ), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)


def test_a_round_runs_each_test_budget_scaled_and_the_time_ends_the_run():
    done = fuzz(QUICK, seconds=0, scale=3)        # no time: the first round only
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^fuzz round 1: seed \d+, scale 3, 75 examples, \d+ s: passed$",
                     done.stdout, re.M), done.stdout     # 25 examples, 3 times over
    assert re.search(r"fuzz: 1 rounds, 75 examples \(Hypothesis's count\) in \d+ s "
                     r"\(budget 0 s\), no failure", done.stdout), done.stdout


def test_a_failing_round_stops_the_run_and_says_how_to_replay_it(tmp_path):
    test = tmp_path / "test_broken.py"
    test.write_text(textwrap.dedent("""
        from hypothesis import given, strategies as st

        @given(st.integers(0, 1000))
        def test_small(n):
            assert n < 500
    """))
    done = fuzz(str(test), seconds=60)
    assert done.returncode == 1
    assert "fuzz round 1: seed" in done.stdout and "FAILED" in done.stdout
    assert re.search(r"Replay it with:\n  NDISEMU_FUZZ=1 NDISEMU_FUZZ_SCALE=1 .* -m pytest "
                     r"--hypothesis-seed=\d+ -m 'hypothesis or fuzz' .*test_broken\.py",
                     done.stdout), done.stdout
    assert "fuzz round 2" not in done.stdout
