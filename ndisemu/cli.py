"""The `ndisemu` command line (also `python -m ndisemu`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import NoReturn

from ndisemu import layout


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit status 2, no traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _layout(args: argparse.Namespace) -> int:
    try:
        data = layout.profile(args.abi, args.ndis)
        names = args.structs or list(data["structs"])
        for name in names:
            layout.struct(name, args.abi, args.ndis)
    except layout.LayoutError as error:
        print(f"ndisemu layout: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        shown = dict(data, structs={n: data["structs"][n] for n in names})
        print(json.dumps(shown, indent=1))
    else:
        print("\n\n".join(layout.dt(n, args.abi, args.ndis) for n in names))
    return 0


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
    from ndisemu.bench import OPS
    ops = [op.strip() for op in text.split(",")]
    for op in ops:
        if op not in OPS:
            raise argparse.ArgumentTypeError(f"unknown operation {op!r} (choose from "
                                             f"{', '.join(OPS)})")
    return ops


def _bench(args: argparse.Namespace) -> int:
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
            print(f"ndisemu bench: error: {error}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(bench.table(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ndisemu", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("layout", help="struct layouts per ABI and NDIS version")
    p.add_argument("structs", nargs="*", metavar="STRUCT")
    p.add_argument("--abi", default=layout.DEFAULT_ABI, help=f"one of {', '.join(layout.ABIS)}")
    p.add_argument("--ndis", default=layout.DEFAULT_NDIS, metavar="VERSION",
                   help=f"one of {', '.join(layout.VERSIONS)}")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_layout)

    p = sub.add_parser("bench", help="clone vs deep-clone benchmark (make bench runs it in full)",
                       description="Times clone, clone_original_mdls, fwps_clone and "
                       "deep_clone (allocate + free) in a native loop and through the "
                       "Python API, against a memcpy floor and a bare-C floor_clone, "
                       "with Kernel(verifier=False).")
    p.add_argument("--quick", action="store_true",
                   help="payloads 64/1514/65536 at 1 MDL and 1 NB (under a minute)")
    p.add_argument("--json", action="store_true", help="print the result as JSON, not a table")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON result to FILE")
    p.add_argument("--plot", metavar="FILE", help="write a PNG plot (needs matplotlib)")
    p.add_argument("--payloads", type=_list(str), metavar="N,...",
                   help="payload bytes per NB; 'imix' adds the 7:4:1 mix")
    p.add_argument("--mdls", type=_list(int), metavar="N,...", help="MDLs per NB")
    p.add_argument("--nbs", type=_list(int), metavar="N,...", help="NBs per NBL")
    p.add_argument("--ops", type=_ops, metavar="OP,...", help="operations to run")
    p.add_argument("--batch-ms", type=float, metavar="MS", help="time per batch (default 10)")
    p.add_argument("--repeats", type=int, metavar="N", help="timed batches per row (default 5)")
    p.add_argument("--seed", type=int, metavar="N", help="payload seed (default 0)")
    p.add_argument("--no-verifier-rows", action="store_true",
                   help="skip the verifier-on rows")
    p.set_defaults(run=_bench)

    p = sub.add_parser("sanitized", help="run a command with the sanitizer runtime loaded",
                       description="Runs CMD with AddressSanitizer's runtime preloaded and the "
                       "options that make any ASan or UBSan report fail it: what a sanitized "
                       "build (make test-sanitize) needs. Example: ndisemu sanitized -- pytest")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(run=_sanitized)
    return parser


def _sanitized(args: argparse.Namespace) -> int:
    from ndisemu import sanitize
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    try:
        return sanitize.run(command)
    except (sanitize.SanitizerMissing, ValueError) as error:
        print(f"ndisemu sanitized: error: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
