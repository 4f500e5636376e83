"""Command line: `intinfer inspect model.iif`."""

from __future__ import annotations

import argparse
import sys

from . import ModelError, load


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="intinfer", description="intinfer command line")
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="print a model's inputs, outputs, ops and memory plan")
    inspect.add_argument("model", help="path to a .iif file")
    args = parser.parse_args(argv)

    if args.command == "inspect":
        try:
            m = load(args.model, num_threads=1)
        except ModelError as e:
            print(f"intinfer: {e}", file=sys.stderr)
            return 1
        for k, v in m.metadata.items():
            print(f"{k}: {v}")
        print(m.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
