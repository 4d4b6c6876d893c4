"""The `ndisemu` command line (also `python -m ndisemu`).

    ndisemu layout [STRUCT ...] [--abi ABI|all] [--ndis VERSION|all] [--json]
    ndisemu layout check FILE [--abi ABI] [--ndis VERSION] [--json]
    ndisemu layout diff ABI:VERSION ABI:VERSION [STRUCT ...] [--json]
    ndisemu show --demo
    ndisemu bench [...]

docs/cli.md describes every option.  Exit status: 0 done, 1 `layout check`
found a difference, 2 a usage error or unreadable input (one line on
stderr), 141 the output pipe closed (as a process killed by SIGPIPE).
Only `bench` and `show` import numpy and build Kernels; `layout` reads the
compiled layout tables and starts about as fast as Python does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ndisemu import layout

# typing and json cost milliseconds at start-up: annotations are strings,
# json is imported when --json asks for it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

EXIT_DIFFERENCES = 1
EXIT_USAGE = 2
EXIT_PIPE = 141          # 128 + SIGPIPE, what a shell reports for `cat` in the same spot

LAYOUT_ACTIONS = ("check", "diff")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter without its import of shutil (milliseconds, paid
    by every parser): the width is $COLUMNS or the terminal's, else 80."""

    def __init__(self, prog: str, **kwargs: Any):
        if kwargs.get("width") is None:
            try:
                kwargs["width"] = int(os.environ["COLUMNS"]) - 2
            except (KeyError, ValueError):
                try:
                    kwargs["width"] = os.get_terminal_size(sys.__stdout__.fileno()).columns - 2
                except (AttributeError, ValueError, OSError):
                    kwargs["width"] = 78
        super().__init__(prog, **kwargs)


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit status 2, no traceback."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _Version(argparse.Action):
    """--version, read from the installed metadata only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: str | None = None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> NoReturn:
        print(f"ndisemu {version()}")
        parser.exit(0)


def version() -> str:
    """The installed package's version ("unknown" when run from a bare checkout)."""
    try:
        from importlib.metadata import version as installed
        return installed("ndisemu")
    except Exception:  # not installed
        return "unknown"


def _wrap(text: str, width: int = 78, indent: str = "") -> str:
    """Greedy word wrap for epilogs (textwrap would cost start-up time)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append((indent if lines else "") + word)
    return "\n".join(lines)


def _fail(command: str, message: str) -> int:
    print(f"ndisemu {command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _print_json(data: Any) -> None:
    import json
    print(json.dumps(data, indent=1))


# -- layout ---------------------------------------------------------------------

def _choices(value: str, known: Sequence[str]) -> list[str]:
    return list(known) if value == "all" else [value]


def _layout(args: argparse.Namespace) -> int:
    abis = _choices(args.abi, layout.ABIS)
    versions = _choices(args.ndis, layout.VERSIONS)
    try:
        for abi in abis:
            for ndis in versions:
                layout.check_profile(abi, ndis)
        names = args.structs or layout.struct_names()
        for name in names:
            layout.struct(name, abis[0], versions[0])
    except layout.LayoutError as error:
        return _fail("layout", str(error))
    profiles = [(abi, ndis) for abi in abis for ndis in versions]
    if args.json:
        tree: dict[str, dict[str, Any]] = {}
        for abi, ndis in profiles:
            data = layout.profile(abi, ndis)
            tree.setdefault(abi, {})[ndis] = dict(
                data, structs={n: data["structs"][n] for n in names})
        _print_json(tree[abis[0]][versions[0]] if len(profiles) == 1 else {"profiles": tree})
    else:
        print("\n\n".join(layout.dt(n, abi, ndis) for abi, ndis in profiles for n in names))
    return 0


def _check(args: argparse.Namespace) -> int:
    from ndisemu import layoutcheck
    for value, known in ((args.abi, layout.ABIS), (args.ndis, layout.VERSIONS)):
        if value is not None and value not in known:
            what = "ABI" if known is layout.ABIS else "NDIS version"
            return _fail("layout check", f"unknown {what} {value!r} "
                         f"(choose from {', '.join(known)})")
    try:
        found = layoutcheck.read(args.file, args.abi)
    except layoutcheck.InputError as error:
        return _fail("layout check", str(error))
    # The command line wins, then the file's own profile, then x64 / 6.87.
    abi = args.abi or found.abi or layout.DEFAULT_ABI
    ndis = args.ndis or found.ndis or layout.DEFAULT_NDIS
    try:
        layout.check_profile(abi, ndis)
    except layout.LayoutError as error:
        return _fail("layout check", f"{args.file} names its profile: {error}")
    if not found.structs:
        return _fail("layout check", f"{args.file}: defines none of the structs ndisemu "
                     f"reports ({', '.join(layout.struct_names())})")
    result = layout.check(found.structs, abi, ndis)
    if args.json:
        _print_json(dict(result, ignored=found.ignored, note=found.note))
    else:
        for difference in result["differences"]:
            print(layout.describe(difference, abi, ndis))
        for missing in result["not_declared"]:
            print(f"{missing['struct']}.{missing['field']}: not declared")
        print(_summary(args.file, found, result, abi, ndis))
    return EXIT_DIFFERENCES if result["differences"] else 0


def _summary(path: str, found: Any, result: dict[str, Any], abi: str, ndis: str) -> str:
    count = len(result["differences"])
    structs = ", ".join(found.structs)
    text = (f"{path}: {count} difference{'s' if count != 1 else ''} in "
            f"{len(found.structs)} struct{'s' if len(found.structs) != 1 else ''} "
            f"({structs}) against {layout.label(abi, ndis)}; "
            f"{len(result['not_declared'])} truth fields not declared")
    if found.ignored:
        text += f"; not reported by ndisemu, ignored: {', '.join(found.ignored)}"
    if found.note:
        text += f"; {found.note}"
    return text


def _diff(args: argparse.Namespace) -> int:
    try:
        a, b = layout.parse_profile(args.a), layout.parse_profile(args.b)
        changes = layout.diff(a, b, args.structs or None)
    except layout.LayoutError as error:
        return _fail("layout diff", str(error))
    if args.json:
        _print_json({"a": {"abi": a[0], "ndis": a[1]}, "b": {"abi": b[0], "ndis": b[1]},
                     "changes": changes})
    else:
        for change in changes:
            print(layout.describe_change(change))
        print(f"{args.a} -> {args.b}: {len(changes)} change{'s' if len(changes) != 1 else ''}")
    return 0


# -- bench ------------------------------------------------------------------------

def _list(kind: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        items = []
        for item in (part.strip() for part in text.split(",")):
            if kind is int or item != "imix":
                try:
                    value = int(item)
                except ValueError:
                    raise argparse.ArgumentTypeError(f"{item!r} is not a whole number") from None
                if value < 1:
                    raise argparse.ArgumentTypeError(f"{value} must be at least 1")
                items.append(value)
            else:
                items.append(item)
        return items
    return parse


def _ops(text: str) -> list[str]:
    from ndisemu.bench import ALL_OPS
    ops = [op.strip() for op in text.split(",")]
    for op in ops:
        if op not in ALL_OPS:
            raise argparse.ArgumentTypeError(f"unknown operation {op!r} (choose from "
                                             f"{', '.join(ALL_OPS)})")
    return ops


def _bench(args: argparse.Namespace) -> int:
    if args.plot:
        # Checked before a run of minutes, not after it.
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return _fail("bench", "--plot needs matplotlib: pip install 'ndisemu[bench]' "
                         "(make bench installs it)")
    from ndisemu import bench
    config = bench.Config.quick_run() if args.quick else bench.Config()
    for name in ("payloads", "mdls", "nbs", "ops", "repeats", "seed"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if args.batch_ms is not None:
        config.batch_ms = args.batch_ms
    if args.no_verifier_rows:
        config.verifier_rows = False
    result = bench.run(config, progress=bench.progress_to_stderr)
    if args.json_out:
        bench.write_json(result, args.json_out)
    if args.plot:
        try:
            bench.plot(result, args.plot)
        except RuntimeError as error:
            return _fail("bench", str(error))
    if args.json:
        _print_json(result)
    else:
        print(bench.table(result))
    return 0


# -- show -------------------------------------------------------------------------

def _show(args: argparse.Namespace) -> int:
    if not args.demo:
        return _fail("show", "nothing to show: give --demo (objects of your own Kernel are "
                     "shown from Python: print(k.show(nbl, chain=True)))")
    from ndisemu import ndiskd
    print(ndiskd.demo())
    return 0


# -- parsers ----------------------------------------------------------------------

_PROFILE_HELP = (f"ABI: {', '.join(layout.ABIS)}; VERSION: {', '.join(layout.VERSIONS)} "
                 "(wrapper: ndis.sys's own view)")


def _profile_options(p: argparse.ArgumentParser, allow_all: bool, default: bool) -> None:
    """--abi and --ndis; without `default` they stay None when not given
    (layout check then takes the file's own profile)."""
    more = ", or all" if allow_all else ""
    says = "" if default else "what the file says, else "
    p.add_argument("--abi", default=layout.DEFAULT_ABI if default else None, metavar="ABI",
                   help=f"one of {', '.join(layout.ABIS)}{more} "
                        f"(default: {says}{layout.DEFAULT_ABI})")
    p.add_argument("--ndis", default=layout.DEFAULT_NDIS if default else None, metavar="VERSION",
                   help=f"one of {', '.join(layout.VERSIONS)}{more}; wrapper is ndis.sys's own "
                        f"view (default: {says}{layout.DEFAULT_NDIS})")


def layout_parser() -> argparse.ArgumentParser:
    """`ndisemu layout`."""
    structs = ", ".join(layout.struct_names())
    p = _Parser(prog="ndisemu layout",
                description="Prints struct layouts, WinDbg dt style or as JSON.",
                epilog=_wrap(f"STRUCT: any of {structs} (default: all).") + "\n\n"
                       "Also:\n"
                       "  ndisemu layout check FILE ...   check your own definitions "
                       "(C, dt dump or JSON)\n"
                       "  ndisemu layout diff A B ...     what changes between two profiles\n"
                       "Each takes --help.")
    p.add_argument("structs", nargs="*", metavar="STRUCT", help="structs to print")
    _profile_options(p, allow_all=True, default=True)
    p.add_argument("--json", action="store_true",
                   help="one JSON object (with all: {\"profiles\": {ABI: {VERSION: ...}}})")
    p.set_defaults(run=_layout)
    return p


def check_parser() -> argparse.ArgumentParser:
    """`ndisemu layout check`."""
    p = _Parser(prog="ndisemu layout check",
                description="Checks your own struct definitions against one profile's truth.",
                epilog=_wrap("FILE is a C header or source (.h, .c: compiled for the ABI by "
                             "clang with an MSVC target, as MSVC lays it out), a WinDbg dt / "
                             "dt -v dump (any other suffix), or JSON in the layout --json "
                             "schema (.json).") + "\n\n" +
                       _wrap("Exit status: 0 everything declared matches, 1 differences, "
                             "2 FILE unreadable or not understood.") + "\n\n" +
                       _wrap(f"Profiles: {_PROFILE_HELP}."))
    p.add_argument("file", metavar="FILE", help="the definitions to check")
    _profile_options(p, allow_all=False, default=False)
    p.add_argument("--json", action="store_true",
                   help='print {"profile", "differences", "not_declared", "ignored", "note"}')
    p.set_defaults(run=_check)
    return p


def diff_parser() -> argparse.ArgumentParser:
    """`ndisemu layout diff`."""
    p = _Parser(prog="ndisemu layout diff",
                description="What changes between two profiles: struct sizes, fields added, "
                            "removed, moved or resized, enumerators and constants.",
                epilog=_wrap(f"A and B are ABI:VERSION, e.g. x64:6.0 x64:6.87. {_PROFILE_HELP}.")
                + "\n\n" + _wrap(f"STRUCT: any of {', '.join(layout.struct_names())} "
                                  "(default: all, plus enums and constants)."))
    p.add_argument("a", metavar="A", help="the profile to compare from (ABI:VERSION)")
    p.add_argument("b", metavar="B", help="the profile to compare to (ABI:VERSION)")
    p.add_argument("structs", nargs="*", metavar="STRUCT", help="only these structs")
    p.add_argument("--json", action="store_true",
                   help='print {"a", "b", "changes": [{"kind", "name", "change", "a", "b"}]}')
    p.set_defaults(run=_diff)
    return p


def bench_parser() -> argparse.ArgumentParser:
    """`ndisemu bench` (its parser imports ndisemu.bench, hence numpy)."""
    from ndisemu.bench import ALL_OPS
    p = _Parser(prog="ndisemu bench",
                description="Times clone, clone_original_mdls, fwps_clone and deep_clone "
                "(allocate + free) in a native loop and through the Python API, against a "
                "memcpy floor and a bare-C floor_clone, with Kernel(verifier=False); and what "
                "a Python harness does around them (a checked view read against a raw one, "
                "build_nbl + free_built, nbl_bytes, k.read, a bare cffi call).  Prints what "
                "the run says first, then every row.  Without options: the full matrix "
                "(payloads 64,1514,9000,65536,imix x mdls 1,4,16 x nbs 1,8,64), a few minutes.")
    p.add_argument("--quick", action="store_true",
                   help="payloads 64,1514,65536 at 1 MDL and 1 NB, the harness ops at 1514 "
                        "(seconds)")
    p.add_argument("--json", action="store_true", help="print the result as JSON, not a table")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON result to FILE")
    p.add_argument("--plot", metavar="FILE",
                   help="write a PNG plot (needs matplotlib, checked before the run)")
    p.add_argument("--payloads", type=_list(str), metavar="N,...",
                   help="payload bytes per NB; 'imix' adds the 7:4:1 mix "
                        "(default: 64,1514,9000,65536,imix)")
    p.add_argument("--mdls", type=_list(int), metavar="N,...",
                   help="MDLs per NB (default: 1,4,16)")
    p.add_argument("--nbs", type=_list(int), metavar="N,...", help="NBs per NBL (default: 1,8,64)")
    p.add_argument("--ops", type=_ops, metavar="OP,...",
                   help=f"operations, any of {','.join(ALL_OPS)} (default: all)")
    p.add_argument("--batch-ms", type=float, metavar="MS", help="time per batch (default: 10)")
    p.add_argument("--repeats", type=int, metavar="N", help="timed batches per row (default: 9)")
    p.add_argument("--seed", type=int, metavar="N", help="payload seed (default: 0)")
    p.add_argument("--no-verifier-rows", action="store_true",
                   help="skip the verifier-on rows (default: include them)")
    p.set_defaults(run=_bench)
    return p


def show_parser() -> argparse.ArgumentParser:
    """`ndisemu show`."""
    p = _Parser(prog="ndisemu show",
                description="Prints !ndiskd-style views of emulated NBLs, NBs and MDLs.",
                epilog=_wrap("--demo builds an NBL with two NBs over fragmented MDLs, its NDIS "
                             "clone and its deep clone, and shows each with its NB/MDL chain, "
                             "data, out-of-band info and event log: the same text on every "
                             "run.  From Python: k.show(ptr, chain=True, data=True, info=True, "
                             "log=True) for any NBL, NB, MDL, context or pool."))
    p.add_argument("--demo", action="store_true",
                   help="show the demo objects (the only source the command line has)")
    p.set_defaults(run=_show)
    return p


def include_parser() -> argparse.ArgumentParser:
    """`ndisemu include`: the folder of the driver headers."""
    p = _Parser(prog="ndisemu include",
                description="Prints the folder holding ndisemu's WDK-compatible ndis.h and "
                "fwpsk.h, for driver C code: cc -I\"$(ndisemu include)\" ... (as "
                "numpy.get_include()).")
    p.set_defaults(run=_include)
    return p


def _include(args: argparse.Namespace) -> int:
    import ndisemu
    print(ndisemu.get_include())
    return 0


def sanitized_parser() -> argparse.ArgumentParser:
    """`ndisemu sanitized -- CMD ...`: CMD under the sanitizer runtime."""
    p = _Parser(prog="ndisemu sanitized",
                description="Runs CMD with AddressSanitizer's runtime preloaded and the "
                "options that make any ASan or UBSan report fail it: what a sanitized build "
                "(make test-sanitize) needs.  Example: ndisemu sanitized -- pytest")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(run=_sanitized)
    return p


def _sanitized(args: argparse.Namespace) -> int:
    from ndisemu import sanitize
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    try:
        return sanitize.run(command)
    except (sanitize.SanitizerMissing, ValueError) as error:
        print(f"ndisemu sanitized: error: {error}", file=sys.stderr)
        return EXIT_USAGE


COMMANDS: dict[str, tuple[Callable[[], argparse.ArgumentParser], str]] = {
    "layout": (layout_parser, "struct layouts per ABI and NDIS version; layout check, "
                              "layout diff"),
    "show": (show_parser, "!ndiskd-style views: show --demo for an NBL, a clone and a "
                          "deep clone"),
    "bench": (bench_parser, "clone vs deep-clone benchmark (make bench runs it in full)"),
    "include": (include_parser, "print the folder of the C headers driver code includes"),
    "sanitized": (sanitized_parser, "run a command with the ASan/UBSan runtime loaded"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: `ndisemu COMMAND ...` (each command has its own
    parser, built only when that command runs)."""
    lines = [f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items()]
    parser = _Parser(prog="ndisemu",
                     description="User-mode emulator of the Windows NDIS NET_BUFFER_LIST / "
                                 "NET_BUFFER / MDL object model.",
                     epilog="commands:\n" + "\n".join(lines) +
                            "\n\n`ndisemu COMMAND --help` lists a command's options.",
                     usage="ndisemu [--help] [--version] COMMAND ...")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    return parser


def _run(argv: list[str]) -> int:
    top = build_parser()
    if not argv:
        top.print_help(sys.stderr)
        return EXIT_USAGE
    if argv[0].startswith("-"):
        top.parse_args(argv)         # --help, --version or a usage error: exits
        top.print_help(sys.stderr)
        return EXIT_USAGE
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        top.error(f"unknown command {command!r} (choose from {', '.join(COMMANDS)})")
    if command == "layout" and rest and rest[0] in LAYOUT_ACTIONS:
        parser = check_parser() if rest[0] == "check" else diff_parser()
        rest = rest[1:]
    else:
        parser = COMMANDS[command][0]()
    args = parser.parse_args(rest)
    return args.run(args)


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        status = _run(argv)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`ndisemu layout --json | head`): say nothing.
        # Point stdout at /dev/null so the interpreter's own flush at exit
        # does not raise again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_PIPE


if __name__ == "__main__":
    sys.exit(main())
