"""The elementwise, LUT and pooling kernels on each kernel path of this CPU, against the scalar
reference: one-op models on EfficientNet-sized tensors, the engine's own op time (median of
`m.profile`, 1 thread), and the speed-up over `ref`.

    python3 bench/compare_isas.py [--runs 50]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import intinfer
from intinfer import quant
from intinfer.builder import GraphBuilder


def cases(rng) -> dict:
    x = rng.integers(0, 256, (1, 56, 56, 128), dtype=np.uint8)
    x7 = rng.integers(0, 256, (1, 7, 7, 1280), dtype=np.uint8)
    f = rng.normal(0, 2, (1, 56, 56, 128)).astype(np.float32)
    out = {}

    def one(name, inp, dtype, scale, zp, build):
        g = GraphBuilder()
        g.output(build(g, g.input("x", inp.shape, dtype, scale, zp)))
        out[name] = (g, inp)

    gelu_q = quant.choose_qparams(-0.2, 6.0)
    one("LUT (gelu), 401k", x, "uint8", 0.05, 128,
        lambda g, t: g.lut(t, quant.make_lut(quant.LUT_FUNCTIONS["gelu"], 0.05, 128, *gelu_q), *gelu_q))
    one("MAX_POOL 3x3/2, 56x56x128", x, "uint8", 0.05, 128, lambda g, t: g.max_pool(t, 3, stride=2, padding=1))
    one("AVG_POOL 3x3/2, 56x56x128", x, "uint8", 0.05, 128,
        lambda g, t: g.avg_pool(t, 3, 0.05, 128, stride=2, padding=1, count_include_pad=False))
    one("GLOBAL_AVG_POOL, 7x7x1280", x7, "uint8", 0.05, 128, lambda g, t: g.global_avg_pool(t, 0.02, 100))
    one("ADD, 401k", x, "uint8", 0.05, 128, lambda g, t: g.add(t, t, 0.1, 128))
    one("QUANTIZE, 401k", f, "float32", None, None, lambda g, t: g.quantize(t, 0.05, 128))
    one("DEQUANTIZE, 401k", x, "uint8", 0.05, 128, lambda g, t: g.dequantize(t))
    return out


def op_ms(graph: GraphBuilder, x: np.ndarray, isa: str, runs: int) -> float:
    os.environ["INTINFER_ISA"] = isa
    try:
        m = intinfer.load(graph.to_bytes(), num_threads=1)
    finally:
        del os.environ["INTINFER_ISA"]
    return m.profile(x, runs=runs).rows[0]["ms"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    a = ap.parse_args()
    present = intinfer.available_paths()
    rows = {name: {isa: op_ms(g, x, isa, a.runs) for isa in present}
            for name, (g, x) in cases(np.random.default_rng(0)).items()}
    print("| op | " + " | ".join(f"{isa} µs" for isa in present) + " | best speed-up over ref |")
    print("|---|" + "---|" * (len(present) + 1))
    for name, r in rows.items():
        best = min(r[isa] for isa in present[1:]) if len(present) > 1 else r["ref"]
        cells = " | ".join(f"{r[isa] * 1e3:.0f}" for isa in present)
        print(f"| {name} | {cells} | {r['ref'] / best:.1f}x |")


if __name__ == "__main__":
    main()
