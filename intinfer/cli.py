"""Command line: `intinfer inspect model.iif`, `intinfer bench model.iif`, `intinfer cost model.iif`."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from . import ModelError, load
from .cost import DEFAULT_BUDGET_MACS, DEFAULT_BUDGET_PARAMS, parse_count


def _random_inputs(m, batch: int) -> list:
    rng = np.random.default_rng(0)
    inputs = []
    for info in m.inputs:
        shape = [batch if d is None else d for d in info.shape]
        if info.dtype == "float32":
            inputs.append(rng.standard_normal(shape).astype(np.float32))
        elif info.id_rows is not None:
            inputs.append(rng.integers(0, info.id_rows, shape).astype(np.int32))
        elif info.dtype == "int32":
            # int32 inputs that are not ids are attention masks: every position takes part.
            inputs.append(np.ones(shape, np.int32))
        else:
            inputs.append(rng.integers(0, 256, shape).astype(info.dtype))
    return inputs


def _bench(m, args) -> None:
    x = _random_inputs(m, args.batch)
    m.run(x)
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        m.run(x)
        times.append(1e3 * (time.perf_counter() - t))
    t = np.array(times)
    print(f"kernels: {m.isa}, threads: {m.num_threads}, batch: {args.batch}, runs: {args.runs}")
    print(f"latency ms: min {t.min():.3f}  median {np.median(t):.3f}  mean {t.mean():.3f}  "
          f"p90 {np.percentile(t, 90):.3f}")
    if args.profile:
        print(m.profile(x, runs=args.runs))


def _shape_arg(text: str) -> tuple:
    name, sep, dims = text.partition("=")
    try:
        shape = [int(d) for d in dims.replace("x", ",").split(",")]
    except ValueError:
        shape = []
    if not sep or not name or not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: write an input's shape as NAME=D1,D2,... "
                                         "with positive sizes (e.g. input_ids=1,128)")
    return name, shape


def _count_arg(text: str) -> int:
    try:
        return parse_count(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cost(m, args) -> int:
    try:
        cost = m.cost(dict(args.shape))
    except ValueError as e:
        print(f"intinfer: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(cost.to_dict(args.budget_params, args.budget_macs), indent=1))
    else:
        print(cost.table(args.budget_params, args.budget_macs))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="intinfer", description="intinfer command line")
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="print a model's inputs, outputs, ops and memory plan")
    inspect.add_argument("model", help="path to a .iif file")
    bench = sub.add_parser("bench", help="time a model on random inputs (the native intinfer-bench has more)")
    bench.add_argument("model", help="path to a .iif file")
    bench.add_argument("--threads", type=int, default=None, help="intra-op threads (default: physical cores)")
    bench.add_argument("--batch", type=int, default=1, help="size of dynamic input dimensions")
    bench.add_argument("--runs", type=int, default=20)
    bench.add_argument("--profile", action="store_true", help="per-op table, slowest first")
    cost = sub.add_parser("cost", help="parameters, weight bytes and MACs per layer against a budget")
    cost.add_argument("model", help="path to a .iif file")
    cost.add_argument("--shape", type=_shape_arg, action="append", default=[], metavar="NAME=D1,D2,...",
                      help="an input's shape (repeatable; dynamic dimensions not given are 1)")
    cost.add_argument("--budget-params", type=_count_arg, default=DEFAULT_BUDGET_PARAMS, metavar="N",
                      help="parameter budget, e.g. 10M (default: 10M, Lite Transformer's mobile setting)")
    cost.add_argument("--budget-macs", type=_count_arg, default=DEFAULT_BUDGET_MACS, metavar="N",
                      help="multiply-accumulate budget, e.g. 500M (default: 500M)")
    cost.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    try:
        m = load(args.model, num_threads=args.threads if args.command == "bench" else 1)
    except ModelError as e:
        print(f"intinfer: {e}", file=sys.stderr)
        return 1
    if args.command == "inspect":
        for k, v in m.metadata.items():
            print(f"{k}: {v}")
        print(m.summary())
    elif args.command == "cost":
        return _cost(m, args)
    else:
        _bench(m, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
