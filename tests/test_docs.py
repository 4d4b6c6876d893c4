"""The reference stays complete: every public call and helper has a
docstring and an entry in docs/, the subcode tables match the code, links
resolve, and no file of the project points outside it."""

import importlib
import inspect
import re
import subprocess
from pathlib import Path

import pytest

import ndisemu
from ndisemu import verifier

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOCS_TEXT = "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))

# Modules whose public functions and classes are part of what users call.
PUBLIC_MODULES = ["ndisemu.layout", "ndisemu.macros", "ndisemu.constants", "ndisemu.verifier",
                  "ndisemu.kernel", "ndisemu.inspection", "ndisemu.ndiskd", "ndisemu.dt",
                  "ndisemu.trace", "ndisemu.bench", "ndisemu.layoutcheck", "ndisemu.wincc",
                  "ndisemu.cli", "ndisemu.sanitize", "ndisemu.driver", "ndisemu.strategies",
                  "ndisemu.pytest_plugin", "ndisemu.binding"]


def documented(name: str) -> bool:
    """`name` appears in a code span of docs/ (a heading, a table, prose)."""
    return re.search(rf"`[^`\n]*\b{re.escape(name)}\b[^`\n]*`", DOCS_TEXT) is not None


def _own_members(cls: type) -> list[tuple[str, object]]:
    return [(n, m) for n, m in vars(cls).items() if not n.startswith("_")
            and (inspect.isfunction(m) or isinstance(m, (property, staticmethod, classmethod)))]


def kernel_members() -> list[str]:
    names = []
    for klass in ndisemu.Kernel.__mro__:
        if klass.__module__.startswith("ndisemu"):
            names += [n for n, _ in _own_members(klass)]
    return sorted(set(names))


def module_members() -> list[str]:
    found = []
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("_") or getattr(value, "__module__", None) != name:
                continue
            if inspect.isfunction(value):
                found.append(f"{name}.{attr}")
            elif inspect.isclass(value) and value not in ndisemu.Kernel.__mro__:
                found.append(f"{name}.{attr}")
                found += [f"{name}.{attr}.{n}" for n, _ in _own_members(value)]
    return found


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            continue
    for part in parts[i:]:
        obj = inspect.getattr_static(obj, part) if inspect.isclass(obj) else getattr(obj, part)
    return obj


def _doc(obj: object) -> str | None:
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    return obj.__doc__


@pytest.mark.parametrize("name", kernel_members())
def test_kernel_methods_have_docstring_and_docs_entry(name):
    member = inspect.getattr_static(ndisemu.Kernel, name)
    assert _doc(member), f"Kernel.{name} has no docstring"
    assert documented(f"k.{name}"), f"Kernel.{name} is not in docs/"


@pytest.mark.parametrize("dotted", module_members())
def test_public_functions_have_docstring_and_docs_entry(dotted):
    assert _doc(_resolve(dotted)), f"{dotted} has no docstring"
    assert documented(dotted.rsplit(".", 1)[-1]), f"{dotted} is not in docs/"


def test_every_macro_is_documented():
    for name in ndisemu.macros.__all__:
        assert getattr(ndisemu.macros, name).__doc__, name
        assert documented(name), name


@pytest.mark.parametrize("page", ["docs/verifier.md", "README.md"])
def test_subcode_tables_match_the_code(page):
    assert verifier.subcode_table() in (ROOT / page).read_text()


def test_stop_code_table_matches_the_code():
    assert verifier.stop_code_table() in (ROOT / "README.md").read_text()


def test_docs_links_resolve():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
    for target in re.findall(r"\]\((docs/[^)#]+)\)", (ROOT / "README.md").read_text()):
        assert (ROOT / target).exists(), target


def _project_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split()
        return [ROOT / name for name in listed]
    except (OSError, subprocess.CalledProcessError):     # not a git checkout
        skip = {".venv", "build", ".git", ".hypothesis", ".pytest_cache", ".ruff_cache"}
        return [p for p in ROOT.rglob("*") if p.is_file()
                and not skip & set(p.relative_to(ROOT).parts)]


def test_no_file_points_outside_the_project():
    """The README, docs, docstrings and comments are the whole reference."""
    # (spelled so that this file does not match itself)
    outside = re.compile(r"\.\./shared|NDIS_[S]PEC|API\.md|DESIGN\.md")
    offenders = []
    for path in _project_files():
        if path.suffix in (".png", ".so", ".o") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if outside.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
