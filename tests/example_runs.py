"""Running a folder of examples/ as its README says, for the tests that
check each README's reports: a fresh copy per run, the README's
Hypothesis settings, and the lines a README shows found in the output."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# On a CI server (CI and the like set) Hypothesis loads its "ci" profile,
# which derandomizes and ignores the seed; the default profile makes the run
# the README's everywhere, as the READMEs say.
HYPOTHESIS = ["-p", "no:cacheprovider", "--hypothesis-profile=default", "--hypothesis-seed=0"]


def readme_blocks(name: str) -> list[str]:
    """The ```text blocks of examples/<name>/README.md, in order."""
    return re.findall(r"```text\n(.*?)```", (EXAMPLES / name / "README.md").read_text(), re.S)


def fresh_copy(name: str, files: tuple[str, ...], directory: Path, cache: Path) -> Path:
    """The example's `files` copied into `directory` as a user has them,
    with `cache` as its driver cache: no `.hypothesis/` database left by
    another run, whose saved failures Hypothesis would replay first."""
    for file in files:
        shutil.copy(EXAMPLES / name / file, directory / file)
    (directory / "cache").symlink_to(cache, target_is_directory=True)
    return directory


def run_example(directory: Path, command: list[str], **env: str) -> subprocess.CompletedProcess:
    """`command` in the example's folder with `env` added (EXAMPLES left to
    the example's default unless `env` sets it)."""
    environment = dict(os.environ)
    environment.pop("EXAMPLES", None)
    environment.pop("PYTHONSAFEPATH", None)   # a script imports its neighbour, as a user's would
    environment.update(NDISEMU_CACHE=str(directory / "cache"), **env)
    return subprocess.run(command, cwd=directory, env=environment, capture_output=True,
                          text=True, check=False, timeout=900)


def pytest_command(*args: str) -> list[str]:
    """pytest as the READMEs run it."""
    return [sys.executable, "-m", "pytest", *HYPOTHESIS, *args]


def shown_in(block: str, output: str) -> list[str]:
    """The lines of a README block that are not in the output (indentation
    aside): empty when every one is."""
    printed = {line.strip() for line in output.splitlines()}
    return [line.strip() for line in block.splitlines() if line.strip() not in printed]
