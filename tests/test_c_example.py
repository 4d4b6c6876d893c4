"""examples/c_driver runs as its README says: the correct C passes, the
oracle finds the offset and odd-piece bugs with the reports the README
shows, and the read past an MDL that no oracle sees is reported by
AddressSanitizer at checksum.c's line, with what ndisemu adds."""

import re
import sys

import pytest
from example_runs import EXAMPLES, fresh_copy, pytest_command, readme_blocks, run_example, shown_in

from ndisemu import sanitize

EXAMPLE = EXAMPLES / "c_driver"
README = (EXAMPLE / "README.md").read_text()
SHOWN = readme_blocks("c_driver")     # offset, odd, past

try:
    sanitize.runtime_library()
    NO_ASAN = ""
except sanitize.SanitizerMissing as error:
    NO_ASAN = str(error)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One driver cache for the module's runs: each build is made once."""
    return tmp_path_factory.mktemp("c_driver_cache")


@pytest.fixture
def example(tmp_path, cache):
    """A fresh copy of the example, as the README's reports were made in."""
    return fresh_copy("c_driver", ("parser.c", "checksum.c", "test_c_driver.py"), tmp_path,
                      cache)


def run(example, *args, bug="", sanitized=False, command=None):
    """The example's test (or `command`) with BUG=`bug`, as the README runs it."""
    command = command or pytest_command(*args, "test_c_driver.py")
    if sanitized:
        command = [sys.executable, "-m", "ndisemu", "sanitized", "--", *command]
    return run_example(example, command, BUG=bug, SANITIZE="1" if sanitized else "0")


def test_the_correct_code_passes(example):
    done = run(example)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


@pytest.mark.parametrize("bug,block,failing", [
    ("offset", 0, "test_parser_reads_the_headers_the_bytes_hold"),
    ("odd", 1, "test_checksum_matches_the_bytes"),
])
def test_the_oracle_finds_the_bug_as_the_readme_shows(example, bug, block, failing):
    done = run(example, bug=bug)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAILED test_c_driver.py::{failing}" in done.stdout
    assert "1 failed, 1 passed" in done.stdout
    assert not shown_in(SHOWN[block], done.stdout), done.stdout[-4000:]


def test_the_read_past_the_mdl_passes_the_oracle(example):
    done = run(example, bug="past")
    assert done.returncode == 0, done.stdout + done.stderr


def the_buggy_line():
    """The line of checksum.c that reads past an odd piece."""
    lines = (EXAMPLE / "checksum.c").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if "| bytes[i + 1];" in line)


@pytest.mark.skipif(bool(NO_ASAN), reason=f"no sanitizer runtime: {NO_ASAN}")
def test_the_sanitizer_reports_the_line_and_ndisemu_the_input(example):
    done = run(example, "-k", "checksum", bug="past", sanitized=True)
    assert done.returncode == 86, done.stdout + done.stderr[-4000:]
    line = the_buggy_line()
    assert f"in sum_piece examples/c_driver/checksum.c:{line}" in SHOWN[2]
    assert re.search(rf"#0 0x[0-9a-f]+ in sum_piece \S*/checksum\.c:{line}\n", done.stderr)
    assert "READ of size 1" in done.stderr
    ours = "\n".join(line for line in SHOWN[2].splitlines()
                     if line.startswith(("ndisemu:", "derived_nbls:")))
    assert len(ours.splitlines()) == 5
    assert not shown_in(ours, done.stderr), done.stderr[-4000:]


@pytest.mark.skipif(bool(NO_ASAN), reason=f"no sanitizer runtime: {NO_ASAN}")
def test_the_readme_replay_reproduces_it(example):
    snippet = README.split("python replay.py`):")[1].split("\nThe replay runs")[0]
    code = "\n".join(line[4:] for line in snippet.splitlines())
    (example / "replay.py").write_text(code)
    done = run(example, bug="past", sanitized=True,
               command=[sys.executable, "replay.py"])
    assert done.returncode == 86, done.stdout + done.stderr[-4000:]
    assert f"/checksum.c:{the_buggy_line()}" in done.stderr
    assert "the first byte past the end of the 1-byte data buffer" in done.stderr


def test_the_readme_test_is_the_test():
    block = README.split("## The test")[1].split("- `build` calls")[0]
    code = "\n".join(line[4:] for line in block.splitlines() if line.startswith("    "))
    assert code.strip() in (EXAMPLE / "test_c_driver.py").read_text()


def test_the_top_readme_quotes_the_same_report():
    top = (EXAMPLE.parent.parent / "README.md").read_text()
    section = top[top.index("## Fuzzing your driver's C code"):top.index("## Who owns an NBL")]
    quoted = [line.strip() for line in section.splitlines()
              if line.strip().startswith(("ndisemu:", "derived_nbls:", "#0 ", "#1 "))]
    assert len(quoted) == 7
    assert not shown_in("\n".join(quoted), SHOWN[2])


@pytest.mark.skipif(bool(NO_ASAN), reason=f"no sanitizer runtime: {NO_ASAN}")
def test_the_correct_code_passes_under_the_sanitizer(example):
    """No false report: every kind of derived NBL (reused blocks included)
    is unpoisoned exactly where its MDLs describe bytes."""
    done = run(example, sanitized=True)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert "2 passed" in done.stdout
