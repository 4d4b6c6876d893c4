"""The `ndisemu` command line (also `python -m ndisemu`)."""

from __future__ import annotations

import argparse
import json
import sys
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
