"""FULLY_CONNECTED with packed 4- and 2-bit weights against int8 weights, one thread: the speed-up
the sub-byte kernels give (docs/mixed_precision.md), the bytes in the file and those the kernels
hold, and ONNX Runtime's int8 MatMulInteger on the same shape beside them.

    python3 bench/packed_gemm.py [--quick] [--shapes 1x1024x1024,128x384x1536]

A shape MxKxN multiplies a uint8 [M, K] activation by [N, K] weights: a one-op model per weight
width (the same random codes within each width's range), timed by the engine's own per-op time
(`Model.profile`), interleaved: each round times every width on every shape once, in rotating
order; a measurement is the median of `--runs` calls; the table gives the median over `--rounds`
rounds and the ratio of int8's median to each width's. Batch 1 (M = 1) is a GEMV, whose int8
weights are read from memory once per call: that is where fewer bytes count; at M >= 4 the
kernels are compute-bound and the ratio is what their instructions give.

Prints markdown to stdout and writes the `packed-gemm` section of docs/benchmarks.md (not with
--quick, which runs one small shape, for CI).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import intinfer  # noqa: E402
from intinfer.builder import GraphBuilder  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (busy_warning, command_line, fmt_ms, log, machine_line, md_table, median_ms, now,  # noqa: E402
                     update_section)

SHAPES = "1x384x1536,1x1536x384,1x1024x1024,1x768x3072,1x3072x768,1x4096x4096,4x1024x1024,128x384x1536"
PRESETS = {"full": dict(rounds=5, runs=50, shapes=SHAPES), "quick": dict(rounds=1, runs=3, shapes="1x64x48,5x64x48")}
WIDTHS = {"int8": 127, "int4": 7, "int2": 1}


def fc_model(dtype: str, k: int, n: int, rng) -> tuple:
    """The loaded one-op model and its file's size."""
    q = WIDTHS[dtype]
    g = GraphBuilder({"producer": "bench/packed_gemm.py"})
    x = g.input("x", (None, k), "uint8", 0.05, 128)
    w = g.constant("w", rng.integers(-q, q + 1, (n, k)), dtype, scale=[0.01] * n)
    g.output(g.fully_connected(x, w, g.constant("b", np.zeros(n, np.int32)), 0.5, 128))
    return intinfer.load(g.to_bytes(), num_threads=1), len(g.to_bytes())


def ort_matmulinteger(x: np.ndarray, k: int, n: int, rng):
    """ONNX Runtime's MatMulInteger (uint8 x int8 -> int32) on the shape, one thread; None when
    onnxruntime is not installed."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    w = rng.integers(-127, 128, (k, n)).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "za"], ["Y"])], "g",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [None, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [None, n])],
        [numpy_helper.from_array(w, "B"), numpy_helper.from_array(np.array(128, np.uint8), "za")])
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"A": x})


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small shape, a few runs; no docs written")
    ap.add_argument("--shapes", help=f"MxKxN,... (default {SHAPES})")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--runs", type=int)
    args = ap.parse_args(argv)
    preset = PRESETS["quick" if args.quick else "full"]
    rounds, runs = args.rounds or preset["rounds"], args.runs or preset["runs"]
    shapes = [tuple(int(v) for v in s.split("x")) for s in (args.shapes or preset["shapes"]).split(",")]
    rng = np.random.default_rng(0)
    problems = []
    for m, k, n in shapes:
        x = rng.integers(0, 256, (m, k), dtype=np.uint8)
        models = {d: fc_model(d, k, n, rng) for d in WIDTHS}
        problems.append(dict(shape=(m, k, n), x=x, models=models, ort=ort_matmulinteger(x, k, n, rng)))
    times = [{d: [] for d in list(WIDTHS) + ["ort"]} for _ in problems]
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}")
        for p, t in zip(problems, times):
            order = list(WIDTHS)[r % 3:] + list(WIDTHS)[:r % 3]
            for d in order:
                t[d].append(p["models"][d][0].profile(p["x"], runs=runs).total_ms)
            if p["ort"] is not None:
                t["ort"].append(median_ms(p["ort"], runs))
    rows = []
    for p, t in zip(problems, times):
        med = {d: float(np.median(v)) if v else None for d, v in t.items()}
        m, k, n = p["shape"]
        held = {d: p["models"][d][0].memory()["kernel_weight_bytes"] for d in WIDTHS}
        rows.append([f"{m}x{k}x{n}"] + [fmt_ms(med[d]) for d in WIDTHS] +
                    [f"{med['int8'] / med[d]:.2f}x" for d in ("int4", "int2")] + [fmt_ms(med["ort"])] +
                    [f"{p['models'][d][1] / 1024:.0f} / {held[d] / 1024:.0f}" for d in WIDTHS])
    headers = ["MxKxN", "int8 ms", "int4 ms", "int2 ms", "int4 speed-up", "int2 speed-up",
               "ORT MatMulInteger int8 ms (run() call)"] + [f"{d} KiB file / held" for d in WIDTHS]
    table = md_table(headers, rows)
    print(table)
    if not args.quick:
        path = problems[0]["models"]["int8"][0].isa
        body = "\n".join(["## Packed 4- and 2-bit weights (FULLY_CONNECTED, 1 thread)", "",
                          f"`{command_line()}`, {now()}; {machine_line()}; path {path}.",
                          "", *busy_warning(), table, "",
                          "ms: the engine's per-op time (median of medians); speed-up: int8's time over the width's; "
                          "held: the bytes the kernels keep in their own layout (`Model.memory()`), int8 widened "
                          "to int16 on this path, the sub-byte widths packed as in the file. ONNX Runtime's "
                          "column times its Python run() call (the others the op alone): context, not a like "
                          "for like figure (bench/compare_gemm.py has that)."])
        update_section("packed-gemm", body)
    return rows


if __name__ == "__main__":
    main()
