"""Block-sparse int8 weights against dense int8 weights, one thread: the speed-up the sparse GEMM
kernel gives at each density (docs/pruning.md), on the FULLY_CONNECTED shapes of
all-MiniLM-L6-v2 and the 1x1 convolutions of EfficientNet-Lite0, and the file's bytes.

    python3 bench/sparse_gemm.py [--quick] [--shapes 8x384x1536,...] [--densities 0.5,0.1]

A shape MxKxN multiplies a uint8 [M, K] activation by [N, K] weights (a 1x1 convolution of an
H x W picture is the same GEMM with M = batch x H x W). For each density d, the weights keep a
random share d of their 1 x 4 blocks (the block the exporter writes, docs/pruning.md), the others
zero, and the same codes are timed dense and block-sparse: one-op models timed by the engine's
own per-op time (`Model.profile`), interleaved in rotating order; a measurement is the median of
`--runs` calls; the table gives the median over `--rounds` rounds and dense's time over sparse's.
The density where the ratio crosses 1 is what each path's crossover (csrc/kernels/tables.cc,
SparseCrossover: denser weights are densified at load) and the exporter's choice
(`SPARSE_MAX_DENSITY` in intinfer/export/lower.py, from the AVX2 path) are set from; the sparse
kernels run here whatever the crossover (INTINFER_SPARSE_KERNELS=always).

Prints markdown to stdout and writes the `sparse-gemm` section of docs/benchmarks.md (not with
--quick, which runs two small shapes, for CI).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
# The sparse kernels even where the path's crossover would densify the weights at load: this is
# what measures the crossovers (docs/pruning.md).
os.environ["INTINFER_SPARSE_KERNELS"] = "always"

import numpy as np  # noqa: E402

import intinfer  # noqa: E402
from intinfer.builder import GraphBuilder  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (busy_warning, command_line, fmt_ms, log, machine_line, md_table, now,  # noqa: E402
                     update_section)

# MiniLM's FCs at one token, 8 tokens and a 128-token sentence; EfficientNet-Lite0's expansion
# and projection 1x1 convs at batch 1 (28x28 and 7x7 pictures) and batch 8 (7x7).
SHAPES = ("1x384x1536,1x1536x384,8x384x1536,8x1536x384,128x384x384,128x384x1536,128x1536x384,"
          "784x40x240,784x240x40,49x192x1152,49x1152x320,392x192x1152")
DENSITIES = "0.5,0.3,0.2,0.1,0.05"
PRESETS = {"full": dict(rounds=5, runs=30), "quick": dict(rounds=1, runs=3)}
BLOCK = 4


def block_sparse_codes(n: int, k: int, density: float, rng) -> np.ndarray:
    """int8 codes [n, k] whose 1 x BLOCK blocks are kept with probability `density`, the others 0."""
    codes = rng.integers(-127, 128, (n, k))
    codes[codes == 0] = 1
    keep = rng.random((n, k // BLOCK)) < density
    return codes * np.repeat(keep, BLOCK, axis=1)


def fc_model(codes: np.ndarray, sparse: bool) -> tuple:
    """The loaded one-op model and its file's size."""
    n, k = codes.shape
    g = GraphBuilder({"producer": "bench/sparse_gemm.py"})
    x = g.input("x", (None, k), "uint8", 0.05, 128)
    w = g.constant("w", codes, "int8", scale=[0.001] * n, block_sparse=BLOCK if sparse else None)
    g.output(g.fully_connected(x, w, g.constant("b", np.zeros(n, np.int32)), 0.5, 128))
    data = g.to_bytes()
    return intinfer.load(data, num_threads=1), len(data)


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two small shapes, a few runs; no docs written")
    ap.add_argument("--shapes", help=f"MxKxN,... (default {SHAPES})")
    ap.add_argument("--densities", default=DENSITIES, help=f"kept shares of blocks (default {DENSITIES})")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--runs", type=int)
    args = ap.parse_args(argv)
    preset = PRESETS["quick" if args.quick else "full"]
    rounds, runs = args.rounds or preset["rounds"], args.runs or preset["runs"]
    spec = args.shapes or ("1x64x48,9x64x48" if args.quick else SHAPES)
    shapes = [tuple(int(v) for v in s.split("x")) for s in spec.split(",")]
    densities = [float(d) for d in args.densities.split(",")]
    if any(not 0 < d <= 1 for d in densities) or any(k % BLOCK for _, k, _ in shapes):
        ap.error(f"densities must be in (0, 1] and K a multiple of {BLOCK}")
    rng = np.random.default_rng(0)
    cases = []
    for m, k, n in shapes:
        x = rng.integers(0, 256, (m, k), dtype=np.uint8)
        for d in densities:
            codes = block_sparse_codes(n, k, d, rng)
            dense, sparse = fc_model(codes, False), fc_model(codes, True)
            np.testing.assert_array_equal(dense[0].run(x), sparse[0].run(x))
            cases.append(dict(shape=(m, k, n), density=d, x=x, models={"dense": dense, "sparse": sparse}))
    times = [{"dense": [], "sparse": []} for _ in cases]
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}")
        for c, t in zip(cases, times):
            for kind in (("dense", "sparse") if r % 2 == 0 else ("sparse", "dense")):
                t[kind].append(c["models"][kind][0].profile(c["x"], runs=runs).total_ms)
    rows = []
    for c, t in zip(cases, times):
        med = {kind: float(np.median(v)) for kind, v in t.items()}
        m, k, n = c["shape"]
        rows.append([f"{m}x{k}x{n}", f"{c['density']:.0%}", fmt_ms(med["dense"]), fmt_ms(med["sparse"]),
                     f"{med['dense'] / med['sparse']:.2f}x",
                     f"{c['models']['dense'][1] / 1024:.0f} / {c['models']['sparse'][1] / 1024:.0f}"])
    headers = ["MxKxN", "density (1x4 blocks)", "dense ms", "sparse ms", "speed-up", "KiB file dense / sparse"]
    table = md_table(headers, rows)
    print(table)
    if not args.quick:
        path = cases[0]["models"]["dense"][0].isa
        body = "\n".join(["## Block-sparse int8 weights (FULLY_CONNECTED, 1 thread)", "",
                          f"`{command_line()}`, {now()}; {machine_line()}; path {path}.",
                          "", *busy_warning(), table, "",
                          "ms: the engine's per-op time (median of medians); speed-up: dense's time over "
                          "sparse's, the same codes. M = 1 runs the sparse kernel's one-row form (four groups "
                          "gathered a step), M >= 2 its passes of 4 or 8 rows."])
        update_section("sparse-gemm", body)
    return rows


if __name__ == "__main__":
    main()
