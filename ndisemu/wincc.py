"""The Windows-targeting C compiler behind ``ndisemu layout check`` on C files.

A C header is laid out as the Windows compiler lays it out, which the host
compiler cannot do (its ``long`` is 64 bits and its bit-fields follow the
System V rules).  clang with an MSVC target (x86_64-pc-windows-msvc,
i686-pc-windows-msvc, aarch64-pc-windows-msvc) uses Microsoft's
record-layout rules: LLP64 widths (``unsigned long`` is 32 bits), MSVC
bit-field packing, ``__declspec(align(n))``, ``#pragma pack``, ``__int64``
and, with -fms-extensions, tagged anonymous members (``NET_BUFFER_DATA;``).
ARM64 is laid out by its own target, not assumed to match x64.

Headers that include <windows.h> get mingw-w64's.  Those are written for
GCC: on any other compiler they define ``__attribute__`` away, which breaks
clang's own intrinsic headers.  So clang is presented to them as GCC 4.2
(what clang itself claims on its GNU targets) with the macros mingw-w64's
GCC predefines; the MSVC target still lays out every record.  SAL
annotations (``_In_``, ``_Field_size_(n)``, ``_IRQL_requires_max_(x)``,
``__drv_aliasesMem``...) the file uses but <sal.h> lacks are defined empty:
they never change a layout.

Nothing is executed for the target.  Three compiler runs:
1. preprocess the file, to find the struct tags and typedef names the file
   itself (not a system header) defines;
2. lay out one probe struct per reported name it defines, reading clang's
   record-layout dump: member offsets, bit positions, size and alignment;
3. compile sizeof() of every member found into a constant array and read
   the values back from the assembly.

The compiler is found as ``$NDISEMU_CLANG``, ``clang`` or the newest
``clang-N`` on PATH; the Windows headers as ``$NDISEMU_WINDOWS_INCLUDE`` or
mingw-w64's include folder.  ``make test`` installs both (Debian packages
clang and mingw-w64-x86-64-dev).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGETS = {"x64": "x86_64-pc-windows-msvc", "x86": "i686-pc-windows-msvc",
           "arm64": "aarch64-pc-windows-msvc"}
# What mingw-w64's GCC predefines and its headers test, per ABI.
_MINGW_MACROS = {"x64": ("__MINGW64__",), "x86": ("_X86_",), "arm64": ("__MINGW64__",)}
_MINGW_COMMON = ("__GNUC__=4", "__GNUC_MINOR__=2", "__MINGW32__", "__MSVCRT__")
_WINDOWS_INCLUDES = ("/usr/x86_64-w64-mingw32/include", "/usr/share/mingw-w64/include",
                     "/usr/i686-w64-mingw32/include")
INSTALL_HINT = ("install clang and mingw-w64's headers (Debian: apt-get install clang "
                "mingw-w64-x86-64-dev; make test installs them)")

PROBE = "__ndisemu_probe_"
MEMBER = "__ndisemu_m"


class CompileError(Exception):
    """The file does not compile, or no compiler is installed (one line)."""


@dataclass
class Layouts:
    """Declared structs by the name the file spells (see layout.check), the
    struct tags it defines that ndisemu does not report, and how it was
    compiled."""

    structs: dict[str, dict[str, Any]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    note: str = ""


def find_clang() -> str | None:
    """The clang to use, or None."""
    if os.environ.get("NDISEMU_CLANG"):
        return os.environ["NDISEMU_CLANG"]
    if shutil.which("clang"):
        return shutil.which("clang")
    versions = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        for candidate in Path(folder or ".").glob("clang-[0-9]*"):
            number = candidate.name[len("clang-"):]
            if number.isdigit() and os.access(candidate, os.X_OK):
                versions.append((int(number), str(candidate)))
    return max(versions)[1] if versions else None


def windows_include() -> str | None:
    """The folder holding windows.h and sal.h (mingw-w64's), or None."""
    if os.environ.get("NDISEMU_WINDOWS_INCLUDE"):
        return os.environ["NDISEMU_WINDOWS_INCLUDE"]
    for folder in _WINDOWS_INCLUDES:
        if Path(folder, "windows.h").is_file():
            return folder
    return None


def available() -> str | None:
    """None when C files can be checked, else why not (one line)."""
    if find_clang() is None:
        return f"no clang found: {INSTALL_HINT}"
    if windows_include() is None:
        return f"no Windows headers (mingw-w64) found: {INSTALL_HINT}"
    return None


def flags(abi: str, prelude: str) -> list[str]:
    """The compiler options for one ABI (the file is C, warnings off)."""
    include = windows_include()
    out = [f"--target={TARGETS[abi]}", "-fms-extensions", "-x", "c", "-w", "-fno-color-diagnostics"]
    if include:
        out += ["-isystem", include]
    out += [f"-D{macro}" for macro in (*_MINGW_COMMON, *_MINGW_MACROS[abi])]
    return [*out, "-include", prelude]


# ---------------------------------------------------------------------------
# SAL annotations

_SAL = re.compile(
    r"\b(_(?=[A-Za-z0-9_]*[a-z])[A-Z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*_"   # _In_, _Field_size_
    r"|__drv_\w+"                                                       # __drv_aliasesMem
    r"|__(?:in|out|inout)(?:_[A-Za-z0-9_]+)?"                           # __in, __out_ecount
    r"|__(?:field|deref|ecount|bcount|xcount)_\w+|__(?:ecount|bcount|xcount)"
    r"|__(?:checkReturn|success|nullterminated|reserved|typefix|callback|notnull"
    r"|maybenull|readonly|fallthrough|override))\b(\s*\()?")
_QUOTED_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def _own_sources(path: Path, limit: int = 64) -> list[str]:
    """The text of the file and of the files it includes with quotes,
    found beside the including file (what the SAL stubs are made for)."""
    seen: set[Path] = set()
    texts = []
    todo = [path.resolve()]
    while todo and len(seen) < limit:
        current = todo.pop()
        if current in seen or not current.is_file():
            continue
        seen.add(current)
        text = current.read_text(encoding="utf-8", errors="replace")
        texts.append(text)
        todo += [(current.parent / name).resolve() for name in _QUOTED_INCLUDE.findall(text)]
    return texts


def sal_prelude(texts: list[str], have_sal_h: bool) -> str:
    """A header included first: <sal.h>, then every SAL-style name the texts
    use and <sal.h> lacks, defined empty (function-like when used with
    arguments)."""
    lines = ["/* Generated by ndisemu.wincc: SAL annotations, empty. */"]
    if have_sal_h:
        lines.append("#include <sal.h>")
    names: dict[str, bool] = {}
    for text in texts:
        for match in _SAL.finditer(text):
            names[match.group(1)] = names.get(match.group(1), False) or bool(match.group(2))
    for name, called in sorted(names.items()):
        lines += [f"#ifndef {name}", f"#define {name}{'(...)' if called else ''}", "#endif"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Pass 1: which names the file defines

_LINEMARKER = re.compile(r'^# (\d+) "((?:[^"\\]|\\.)*)"((?: \d+)*)\s*$')


def _user_text(preprocessed: str, skip: set[str]) -> str:
    """The preprocessed lines that come from the file and its own headers
    (not system headers, the command line or the prelude)."""
    keep = []
    user = False
    for line in preprocessed.splitlines():
        marker = _LINEMARKER.match(line)
        if marker:
            name = marker.group(2).encode().decode("unicode_escape")
            user = (" 3" not in marker.group(3) and not name.startswith("<")
                    and name not in skip)
            continue
        if user:
            keep.append(line)
    return "\n".join(keep)


def _strip_attributes(text: str) -> str:
    """Removes __attribute__((...)) and __declspec(...), parentheses balanced."""
    out = []
    i = 0
    pattern = re.compile(r"\b(__attribute__|__declspec)\s*\(")
    while True:
        match = pattern.search(text, i)
        if not match:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:match.start()])
        depth, j = 1, match.end()
        while j < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        i = j


def _statement_end(text: str, start: int) -> tuple[int, int | None]:
    """(index of the ';' ending the statement at `start`, index just past
    its first top-level ``{...}`` or None)."""
    depth, body_end = 0, None
    for j in range(start, len(text)):
        c = text[j]
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
            if c == "}" and depth == 0 and body_end is None:
                body_end = j + 1
        elif c == ";" and depth == 0:
            return j, body_end
    return len(text), body_end


def definitions(text: str) -> tuple[dict[str, str | None], dict[str, str]]:
    """({typedef name: the tag it names, or None}, {tag: "struct" | "union"})
    defined in C text.  A typedef names a tag when its type is ``struct TAG``
    or ``union TAG`` without a body (``typedef struct _NB NB;``)."""
    text = _strip_attributes(text)
    tags = {m.group(2): m.group(1)
            for m in re.finditer(r"\b(struct|union)\s+([A-Za-z_]\w*)\s*\{", text)}
    typedefs: dict[str, str | None] = {}
    for match in re.finditer(r"\btypedef\b", text):
        end, body_end = _statement_end(text, match.end())
        statement = text[match.end():end]
        named = None if body_end is not None else re.match(
            r"\s*(?:const\s+|volatile\s+)*(?:struct|union)\s+([A-Za-z_]\w*)", statement)
        declarators = text[body_end if body_end is not None else match.end():end]
        for part in _split_top(declarators):
            bare = re.sub(r"(\s*\[[^\]]*\])+\s*$", "", part.strip())    # X[4] -> X
            name = re.search(r"([A-Za-z_]\w*)$", bare)
            if name:
                typedefs[name.group(1)] = named.group(1) if named else None
    return typedefs, tags


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def spellings(wanted: list[str], typedefs: dict[str, str | None], tags: dict[str, str]
              ) -> dict[str, str]:
    """{reported name: the C type spelling that stands for it}: its typedef,
    else the tag ``_NAME`` or ``NAME``, else a typedef ``_NAME``.  A typedef
    of a tag the file does not define (``typedef struct _NB NB;`` alone)
    does not count: the file declares no layout for it."""
    def usable(typedef: str) -> bool:
        return typedef in typedefs and (typedefs[typedef] is None or typedefs[typedef] in tags)

    found = {}
    for name in wanted:
        if usable(name):
            found[name] = name
        elif f"_{name}" in tags:
            found[name] = f"{tags['_' + name]} _{name}"
        elif name in tags:
            found[name] = f"{tags[name]} {name}"
        elif usable(f"_{name}"):
            found[name] = f"_{name}"
    return found


# ---------------------------------------------------------------------------
# Pass 2: clang's record-layout dump

_DUMP_LINE = re.compile(r"^\s*(\d+)(?::(\d+)-(\d+))? \|( *)(.*)$")
_DUMP_SIZE = re.compile(r"^\s*\| \[sizeof=(\d+),(?: dsize=\d+,)? align=(\d+)")


def parse_dump(dump: str, count: int) -> list[dict[str, Any]]:
    """The layouts of probes 0..count-1: {"size", "align", "fields": {path:
    {"offset", "bit_offset"?, "bit_size"?, "type"}}} (sizes come later)."""
    lines = dump.splitlines()
    out: list[dict[str, Any]] = []
    for index in range(count):
        head = re.compile(rf"^\s*0 \| struct {PROBE}{index}$")
        start = next((i for i, line in enumerate(lines) if head.match(line)), None)
        if start is None:
            raise CompileError(f"clang printed no layout for probe {index}")
        fields: dict[str, dict[str, Any]] = {}
        prefixes: list[str] = [""]           # child prefix per depth below the member
        size = align = None
        for line in lines[start + 1:]:
            sized = _DUMP_SIZE.match(line)
            if sized:
                size, align = int(sized.group(1)), int(sized.group(2))
                break
            entry = _DUMP_LINE.match(line)
            if not entry:
                continue
            depth = (len(entry.group(4)) - 1) // 2 - 2     # 0: the struct's own members
            if depth < 0:
                continue                                    # the probe's one member
            text = entry.group(5)
            name = None if text.endswith(" ") else text.rsplit(" ", 1)[-1]
            type_text = text.strip() if name is None else text.rsplit(" ", 1)[0]
            del prefixes[depth + 1:]
            prefix = prefixes[depth]
            prefixes.append(prefix if name is None else f"{prefix}{name}.")
            if name is None:
                continue                                    # anonymous: members flattened
            record: dict[str, Any] = {"offset": int(entry.group(1)), "type": type_text}
            if entry.group(2) is not None:
                first, last = int(entry.group(2)), int(entry.group(3))
                record["bit_offset"], record["bit_size"] = first, last - first + 1
            fields[prefix + name] = record
        out.append({"size": size, "align": align, "fields": fields})
    return out


# ---------------------------------------------------------------------------
# Pass 3: member sizes

_VALUE = re.compile(r"^\s*\.(?:quad|xword|8byte)\s+(\d+)", re.MULTILINE)


def _size_expression(spelling: str, path: str, record: dict[str, Any]) -> str:
    if "bit_size" in record:
        return f"sizeof({record['type']})"        # a bit-field's storage unit
    if record["type"].endswith("[]"):
        return "0"                                # flexible array member
    return f"sizeof((({spelling} *)0)->{path})"


def _values(assembly: str, symbol: str) -> list[int]:
    at = re.search(rf"^_*{symbol}:\s*$", assembly, re.MULTILINE)
    if at is None:
        raise CompileError("clang's assembly has no size table")
    values = []
    for line in assembly[at.end():].splitlines()[1:]:
        value = _VALUE.match(line)
        if not value:
            break
        values.append(int(value.group(1)))
    return values


# ---------------------------------------------------------------------------

def _run(args: list[str], what: str, shown: str, real: str) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    except OSError as error:
        raise CompileError(f"cannot run {args[0]}: {error.strerror or error}; "
                           f"{INSTALL_HINT}") from None
    if done.returncode:
        # The first error in the user's own file, else the first at all.
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        own = [line for line in errors if line.startswith(real)]
        first = (own or errors or done.stderr.strip().splitlines() or ["(no message)"])[0]
        raise CompileError(f"{first.replace(real, shown)} ({what})")
    return done.stdout


def layouts(path: str, abi: str, wanted: list[str]) -> Layouts:
    """The layouts of the reported structs (`wanted`) that the C file at
    `path` defines, compiled for `abi`; CompileError (one line) when it does
    not compile or no compiler is installed."""
    clang = find_clang()
    if clang is None:
        raise CompileError(f"checking C needs a Windows-targeting compiler: {INSTALL_HINT}")
    source = Path(path).resolve()
    note = f"compiled as C by clang for {TARGETS[abi]} (Microsoft's layout rules)"
    with tempfile.TemporaryDirectory(prefix="ndisemu-cc-") as tmp:
        include = windows_include()
        prelude = Path(tmp, "ndisemu_prelude.h")
        prelude.write_text(sal_prelude(_own_sources(source), bool(include) and
                                       Path(include, "sal.h").is_file()))
        options = [clang, *flags(abi, str(prelude))]
        real = str(source)

        preprocessed = _run([*options, "-E", real], note, path, real)
        typedefs, tags = definitions(_user_text(preprocessed, {str(prelude)}))
        spelled = spellings(wanted, typedefs, tags)
        reported = {n for s in spelled.values() for n in (s, s.split()[-1])}
        ignored = [tag for tag in tags if tag not in reported
                   and tag.lstrip("_") not in spelled]
        if not spelled:
            return Layouts({}, ignored, note)
        names = list(spelled)
        quoted = real.replace("\\", "\\\\").replace('"', '\\"')

        probes = [f'#include "{quoted}"', "#pragma pack(push)", "#pragma pack()"]
        for i, name in enumerate(names):
            probes += [f"struct {PROBE}{i} {{ {spelled[name]} {MEMBER}; }};",
                       f"char {PROBE}force_{i}[sizeof(struct {PROBE}{i})];"]
        probes.append("#pragma pack(pop)")
        unit = Path(tmp, "probes.c")
        unit.write_text("\n".join(probes) + "\n")
        try:
            dump = _run([*options, "-fsyntax-only", "-Xclang", "-fdump-record-layouts",
                         str(unit)], note, path, real)
        except CompileError:
            # Preprocessing passes what compiling does not (a struct left
            # open runs into the probes): name the file's own error.
            _run([*options, "-fsyntax-only", real], note, path, real)
            raise
        found = parse_dump(dump, len(names))

        expressions = []
        for name, decl in zip(names, found, strict=True):
            expressions += [_size_expression(spelled[name], p, r)
                            for p, r in decl["fields"].items()]
        sizes = Path(tmp, "sizes.c")
        sizes.write_text(f'#include "{quoted}"\nconst unsigned long long {PROBE}sizes[] = '
                         f"{{ {', '.join([*expressions, '0'])} }};\n")
        assembly = _run([*options, "-S", "-o", "-", str(sizes)], note, path, real)
        values = iter(_values(assembly, f"{PROBE}sizes"))

    out = Layouts(ignored=ignored, note=note)
    for name, decl in zip(names, found, strict=True):
        fields = {}
        for field_path, record in decl["fields"].items():
            item = {"offset": record["offset"], "size": next(values)}
            if "bit_size" in record:
                item["bit_offset"], item["bit_size"] = record["bit_offset"], record["bit_size"]
            fields[field_path] = item
        out.structs[spelled[name].split()[-1]] = {"size": decl["size"], "align": decl["align"],
                                                  "fields": fields}
    return out
