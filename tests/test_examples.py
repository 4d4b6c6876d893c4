"""examples/python_fuzz runs as its README says: its test finds the parser's
offset bug through ndis_kernel and nbl_shapes, prints a small shape that
build_nbl takes as printed, and passes once the README's fix is applied."""

import contextlib
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from example_runs import pytest_command

import ndisemu

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "python_fuzz"
README = (EXAMPLE / "README.md").read_text()


def run_example(directory):
    """pytest on a copy of the example, as a user runs it (a fixed seed so
    the report is the same every time, and the default profile, which a CI
    variable would replace by Hypothesis's derandomized one)."""
    return subprocess.run(pytest_command("test_parser.py"),
                          cwd=directory, capture_output=True, text=True, check=False)


def printed_shape(report):
    """The `shape={...}` of Hypothesis's failing test case, as a dict."""
    lines = [re.sub(r"^\s*E\s+", "", line) for line in report.splitlines()]
    text = "\n".join(lines)
    start = text.index("shape={") + len("shape=")
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return eval(text[start:end + 1])  # noqa: S307 - a shape printed to be pasted


@contextlib.contextmanager
def on_path(directory):
    """The example's folder importable (its `parser` module), as when its
    test runs there."""
    sys.path.insert(0, str(directory))
    sys.modules.pop("parser", None)
    try:
        yield
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop("parser", None)


def normalized(line):
    """A report line without its `E` prefix and with display addresses
    blanked: they depend on how many examples ran before."""
    return re.sub(r"0xffffe[0-9a-f]{11}", "0xffffe...", re.sub(r"^E\s+", "", line.strip()))


def copy_example(directory):
    for name in ("parser.py", "test_parser.py"):
        shutil.copy(EXAMPLE / name, directory / name)
    return directory


@pytest.fixture
def example(tmp_path):
    return copy_example(tmp_path)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The example's test, run once for the tests that read its report."""
    return run_example(copy_example(tmp_path_factory.mktemp("example")))


def fails_on(directory, shape):
    """The bug check parse_frame raises on the shape, or None."""
    with on_path(directory):
        import parser
    k = ndisemu.Kernel()
    nbl = k.build_nbl(k.default_nbl_pool, **shape)
    try:
        nb = nbl.FirstNetBuffer
        for payload in shape["payloads"]:
            assert parser.parse_frame(k, nb) == parser.parse_bytes(payload)
            nb = nb.Next
    except ndisemu.BugCheck as error:
        return error
    return None


def test_the_test_finds_the_bug_and_prints_a_small_pasteable_shape(example, first_run):
    done = first_run
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert "bug check 0x50 PAGE_FAULT_IN_NONPAGED_AREA" in done.stdout
    assert "byte 5 of the 34-byte read" in done.stdout
    shape = printed_shape(done.stdout)
    assert shape == {"payloads": [bytes(range(34))], "mdl_sizes": [5], "data_offset": 0}
    assert fails_on(example, shape).code == 0x50


def test_the_readme_shows_what_the_run_prints(first_run):
    done = first_run
    shown = [line for line in README.split("## Running it")[1].split("Reading it")[0]
             .splitlines() if line.strip().startswith("E ")]
    printed = {normalized(line) for line in done.stdout.splitlines() if line.startswith("E ")}
    assert shown and all(normalized(line) in printed for line in shown), shown
    assert printed_shape("\n".join(shown)) == printed_shape(done.stdout)


def test_the_readme_test_is_the_test(example):
    block = README.split("## The test")[1].split("- `nbl_shapes")[0]
    code = "\n".join(line for line in block.splitlines() if line.startswith("    "))
    assert textwrap.dedent(code).strip() in (EXAMPLE / "test_parser.py").read_text()


def test_the_readme_replay_raises_the_bug_check(example):
    snippet = README.split("by hand,")[1].split("- **The bug check**")[0]
    with on_path(example), pytest.raises(ndisemu.BugCheck) as error:
        exec(textwrap.dedent(snippet).strip(), {})  # noqa: S102 - the README's own snippet
    assert error.value.code == 0x50


def test_the_readmes_fix_makes_the_test_pass(example):
    fix = README.split("```python\n")[1].split("```")[0]
    source = (example / "parser.py").read_text()
    buggy = re.search(r"def header_bytes\(.*?\n\n\n", source, re.S).group(0)
    (example / "parser.py").write_text(source.replace(buggy, fix + "\n\n"))
    done = run_example(example)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
