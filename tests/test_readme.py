"""The README's tour runs as written (its Python blocks, in order)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def tour_blocks() -> list[str]:
    """Indented code blocks of the tour that are Python (not shell)."""
    text = README.read_text()
    tour = text[text.index("## A short tour"):text.index("### Checked views")]
    blocks = re.findall(r"\n\n((?:    .*\n)+)", tour)
    code = [re.sub(r"^    ", "", b, flags=re.M) for b in blocks]
    return [c for c in code if not c.lstrip().startswith("$")]


def test_tour_runs_and_ends_with_nothing_live():
    blocks = tour_blocks()
    assert len(blocks) >= 3
    scope: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), scope)  # noqa: S102 - our own README
    k = scope["k"]
    assert all(v == 0 for key, v in k.stats().items()
               if key in ("nbl", "nb", "mdl", "context", "memory", "data", "nbl_pool"))


def test_tour_comments_are_true():
    """Each line whose comment states a value evaluates to it."""
    scope: dict = {}
    checked = 0
    for block in tour_blocks()[1:]:
        for line in block.splitlines():
            code, _, comment = line.partition("  #")
            claim = comment.strip()
            if claim in ("True", "1: the FWPS calls count, the NDIS ones do not"):
                value = eval(code, scope)  # noqa: S307 - our own README
                assert value == (True if claim == "True" else 1), line
                checked += 1
            elif claim.startswith("[b'E"):
                assert eval(code, scope)[0].startswith(b"E\x00"), line
                checked += 1
            else:
                exec(code, scope)  # noqa: S102
    assert checked == 3


def test_driver_section_runs(tmp_path, monkeypatch):
    """The C driver example of "Fuzzing your driver's C code" builds and its
    Python block runs as written."""
    text = README.read_text()
    section = text[text.index("## Fuzzing your driver's C code"):]
    section = section[:section.index("\n## ", 10)]
    c_code = re.search(r"```c\n(.*?)```", section, re.S).group(1)
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "eth.c").write_text(c_code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NDISEMU_CACHE", str(tmp_path / "cache"))
    scope: dict = {}
    exec(compile(python, str(README), "exec"), scope)  # noqa: S102 - our own README
    assert scope["d"].ether_type(scope["nbl"].FirstNetBuffer) == 0x0800
