"""int8 GEMM side by side, one thread: intinfer's FULLY_CONNECTED against torch fp32 matmul,
torch's quantized linear (FBGEMM / x86 backend) and ONNX Runtime's MatMulInteger (and
QLinearMatMul).

    python3 bench/compare_gemm.py [--quick] [--peak-gmacs 80] [--shapes 1x1024x1024,128x384x384]

A shape MxKxN multiplies an [M, K] activation by a [K, N] weight (N output features). Every
engine takes already-quantized uint8 activations where it can, so that what is timed is the
GEMM and its output stage, not a float conversion:

- intinfer: a one-op FULLY_CONNECTED model (uint8 [M, K] in, int8 [N, K] per-channel weights,
  int32 bias, requantized uint8 [M, N] out), timed through `m.run(x, raw=True)`; the "op" column
  is the engine's own per-op time from `m.profile()`, without the Python call.
- torch fp32: `torch.matmul` of float32 [M, K] by a contiguous [K, N].
- torch int8: `torch.ops.quantized.linear` on a quint8 tensor with prepacked per-channel qint8
  weights and a bias, requantized quint8 out (the op behind torch.ao.nn.quantized.Linear).
- ONNX Runtime MatMulInteger: uint8 [M, K] (zero point) x int8 [K, N] -> int32, no bias, no
  requantization. QLinearMatMul: the same with per-column weight scales and a requantized
  uint8 output, the closest ONNX match to intinfer's op.

Measured in one process at one thread each (no thread pools to interfere), interleaved: each
round times every engine on every shape once, the engine order rotating between rounds; one
measurement = the median of `--runs` calls after `--warmup` calls; the tables give the median
over `--rounds` rounds. GOPS = 2*M*K*N / seconds. With `--peak-gmacs X` (a single-core
ceiling in multiply-accumulates per ns, e.g. from an instruction-throughput loop) the GOPS
table also gives the share of that peak (2*X GOPS).

Prints markdown to stdout and writes the `gemm` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (busy_warning, command_line, log, machine_line, md_table, median_ms, now,  # noqa: E402
                     update_section)

SHAPES = "1x1024x1024,128x384x384,128x384x1536,128x1536x384,256x1024x1024"
PRESETS = {"full": dict(rounds=5, runs=50, warmup=5), "quick": dict(rounds=2, runs=10, warmup=2)}
COLUMNS = {
    "intinfer": "intinfer run()",
    "intinfer_op": "intinfer op (profile)",
    "torch_fp32": "torch fp32 matmul",
    "torch_int8": "torch int8 linear",
    "ort_matmulinteger": "ORT MatMulInteger",
    "ort_qlinearmatmul": "ORT QLinearMatMul",
}
INT8_COLUMNS = ("intinfer", "intinfer_op", "torch_int8", "ort_matmulinteger", "ort_qlinearmatmul")


def reason(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first[:200]}"


class Problem:
    """One shape: the data, quantized once, and a timed callable per engine (or the reason it
    could not be built)."""

    def __init__(self, m: int, k: int, n: int, seed: int = 0):
        from intinfer.quant import choose_qparams, quantize_bias, quantize_weights

        self.m, self.k, self.n = m, k, n
        rng = np.random.default_rng(seed)
        self.x_scale, self.x_zp = 0.02, 120
        self.xq = rng.integers(0, 256, size=(m, k), dtype=np.uint8)
        x_real = (self.xq.astype(np.float32) - self.x_zp) * self.x_scale
        w = rng.normal(0, 0.05, size=(n, k)).astype(np.float32)
        self.wq, self.w_scales = quantize_weights(w)
        self.bias = rng.normal(0, 0.5, size=n).astype(np.float32)
        self.bq = quantize_bias(self.bias, self.x_scale, self.w_scales)
        w_real = self.wq.astype(np.float32) * self.w_scales[:, None]
        y = x_real @ w_real.T + self.bias
        self.y_scale, self.y_zp = choose_qparams(float(y.min()), float(y.max()))
        self.x_real = x_real
        self.fns, self.failures, self.outputs = {}, {}, {}
        for name, build in (("intinfer", self._intinfer), ("torch_fp32", self._torch_fp32),
                            ("torch_int8", self._torch_int8), ("ort_matmulinteger", self._ort_matmulinteger),
                            ("ort_qlinearmatmul", self._ort_qlinearmatmul)):
            try:
                build()
            except Exception as e:  # noqa: BLE001 - recorded in the report
                self.failures[name] = reason(e)
        if "intinfer" in self.failures:
            self.failures["intinfer_op"] = self.failures["intinfer"]

    @property
    def label(self) -> str:
        return f"{self.m}x{self.k}x{self.n}"

    @property
    def ops(self) -> int:
        return 2 * self.m * self.k * self.n

    def _intinfer(self):
        import intinfer
        from intinfer.builder import GraphBuilder

        g = GraphBuilder({"producer": "bench/compare_gemm.py"})
        x = g.input("x", (self.m, self.k), "uint8", self.x_scale, self.x_zp)
        w = g.constant("w", self.wq, scale=self.w_scales)
        b = g.constant("b", self.bq)
        g.output(g.fully_connected(x, w, b, self.y_scale, self.y_zp, name="fc"))
        model = intinfer.load(g.to_bytes(), num_threads=1)
        self.intinfer_model = model
        self.outputs["intinfer"] = model.run(self.xq, raw=True)
        self.fns["intinfer"] = lambda: model.run(self.xq, raw=True)

    def intinfer_op_s(self, runs: int) -> float:
        prof = self.intinfer_model.profile(self.xq, runs=runs)
        return sum(r["ms"] for r in prof.rows if r["op"] == "FULLY_CONNECTED") / 1e3

    def _torch_fp32(self):
        import torch

        a = torch.from_numpy(self.x_real)
        b = torch.from_numpy(np.ascontiguousarray((self.wq.astype(np.float32) * self.w_scales[:, None]).T))
        self.fns["torch_fp32"] = lambda: torch.matmul(a, b)

    def _torch_int8(self):
        import torch

        engines = torch.backends.quantized.supported_engines
        torch.backends.quantized.engine = "x86" if "x86" in engines else "fbgemm"
        qw = torch.quantize_per_channel(torch.from_numpy(self.wq.astype(np.float32) * self.w_scales[:, None]),
                                        torch.from_numpy(self.w_scales.astype(np.float64)),
                                        torch.zeros(self.n, dtype=torch.long), 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(qw, torch.from_numpy(self.bias))
        qx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(self.xq), self.x_scale, self.x_zp)
        op = torch.ops.quantized.linear
        self.outputs["torch_int8"] = op(qx, packed, self.y_scale, self.y_zp).int_repr().numpy()
        self.fns["torch_int8"] = lambda: op(qx, packed, self.y_scale, self.y_zp)

    def _ort_session(self, node, outputs, initializers, opset):
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("A", TensorProto.UINT8,
                                                                                 [self.m, self.k])],
                                  outputs, [numpy_helper.from_array(v, k) for k, v in initializers.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        onnx.checker.check_model(model)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def _ort_matmulinteger(self):
        from onnx import TensorProto, helper

        s = self._ort_session(helper.make_node("MatMulInteger", ["A", "B", "a_zero_point"], ["Y"]),
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [self.m, self.n])],
                              {"B": np.ascontiguousarray(self.wq.T), "a_zero_point": np.array(self.x_zp, np.uint8)},
                              17)
        feed = {"A": self.xq}
        got = s.run(None, feed)[0]
        want = (self.xq.astype(np.int64) - self.x_zp) @ self.wq.T.astype(np.int64)
        if not np.array_equal(got, want):
            raise RuntimeError("MatMulInteger result differs from the exact product")
        self.fns["ort_matmulinteger"] = lambda: s.run(None, feed)

    def _ort_qlinearmatmul(self):
        from onnx import TensorProto, helper

        inputs = ["A", "a_scale", "a_zero_point", "B", "b_scale", "b_zero_point", "y_scale", "y_zero_point"]
        s = self._ort_session(helper.make_node("QLinearMatMul", inputs, ["Y"]),
                              [helper.make_tensor_value_info("Y", TensorProto.UINT8, [self.m, self.n])],
                              {"a_scale": np.array(self.x_scale, np.float32), "a_zero_point": np.array(self.x_zp, np.uint8),
                               "B": np.ascontiguousarray(self.wq.T), "b_scale": self.w_scales.astype(np.float32),
                               "b_zero_point": np.zeros(self.n, np.int8),
                               "y_scale": np.array(self.y_scale, np.float32),
                               "y_zero_point": np.array(self.y_zp, np.uint8)}, 21)
        feed = {"A": self.xq}
        s.run(None, feed)
        self.fns["ort_qlinearmatmul"] = lambda: s.run(None, feed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 10 runs")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (full 5, quick 2)")
    ap.add_argument("--runs", type=int, help="timed calls per measurement (full 50, quick 10)")
    ap.add_argument("--warmup", type=int, help="untimed calls before each measurement (full 5, quick 2)")
    ap.add_argument("--shapes", default=SHAPES, help=f"comma-separated MxKxN (default {SHAPES})")
    ap.add_argument("--peak-gmacs", type=float, help="single-core peak in GMAC/s: adds %% of peak to the GOPS table")
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = ap.parse_args(argv)
    for k, v in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    try:
        shapes = [tuple(int(d) for d in s.lower().split("x")) for s in args.shapes.split(",") if s.strip()]
        assert all(len(s) == 3 and min(s) > 0 for s in shapes)
    except (ValueError, AssertionError):
        ap.error(f"--shapes takes MxKxN,MxKxN,... (got {args.shapes!r})")

    header = f"{now()}; {machine_line()}"
    busy = busy_warning()
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    import intinfer

    problems = [Problem(*s, seed=i) for i, s in enumerate(shapes)]
    engines = list(COLUMNS)
    seconds: dict = {}
    t0 = time.perf_counter()
    for r in range(args.rounds):
        rot = engines[r % len(engines):] + engines[:r % len(engines)]
        for p in problems:
            for e in rot:
                if e in p.failures:
                    continue
                if e == "intinfer_op":
                    s = p.intinfer_op_s(args.runs)
                else:
                    s = median_ms(p.fns[e], args.runs, args.warmup) / 1e3
                seconds.setdefault((p.label, e), []).append(s)
        log(f"round {r + 1}/{args.rounds}: {time.perf_counter() - t0:.1f} s")

    notes: list = []

    def failed(p, e) -> str:
        text = f"{COLUMNS[e]}, {p.label}: {p.failures[e]}"
        if text not in notes:
            notes.append(text)
        return f"failed [{notes.index(text) + 1}]"

    def med(p, e):
        v = seconds.get((p.label, e))
        return float(np.median(v)) if v else None

    us_rows, gops_rows = [], []
    for p in problems:
        us_row, gops_row = [p.label], [p.label]
        for e in engines:
            s = med(p, e)
            if e in p.failures or s is None:
                us_row.append(failed(p, e) if e in p.failures else "-")
                gops_row.append(us_row[-1])
                continue
            gops = p.ops / s / 1e9
            us_row.append(f"{s * 1e6:.1f}")
            cell = f"{gops:.1f}"
            if args.peak_gmacs:
                cell += f" ({gops / (2 * args.peak_gmacs):.0%})"
            gops_row.append(cell)
        base, q = med(p, "intinfer_op"), med(p, "torch_int8")
        us_row.append(f"{q / base:.2f}x" if base and q else "-")
        if "intinfer" in p.outputs and "torch_int8" in p.outputs:
            diff = np.abs(p.outputs["intinfer"].astype(np.int32) - p.outputs["torch_int8"].astype(np.int32))
            us_row.append(f"{int(diff.max())} ({float(np.mean(diff > 0)):.1%} differ)")
        else:
            us_row.append("-")
        us_rows.append(us_row)
        gops_rows.append(gops_row)

    peak = (f" In brackets: share of {args.peak_gmacs:g} GMAC/s = {2 * args.peak_gmacs:g} GOPS (`--peak-gmacs`), "
            "the same figure for every column, so the fp32 column is a comparison, not its own ceiling."
            if args.peak_gmacs else "")
    isa = next((p.intinfer_model.isa for p in problems if hasattr(p, "intinfer_model")), "?")
    text = "\n".join([
        "## int8 GEMM, 1 thread", "",
        f"Command: `{command_line()}`  ", f"Date and machine: {header}  ",
        f"Versions: intinfer {intinfer.__version__} (kernels {isa}), torch {torch.__version__} (quantized engine "
        f"{torch.backends.quantized.engine}), onnxruntime {_version('onnxruntime')}, numpy {np.__version__}  ",
        f"Method: {args.rounds} interleaved rounds, each measurement the median of {args.runs} calls after "
        f"{args.warmup} warm-up; tables give the median over rounds. One process, one thread per engine.", "",
        *(["**Quick mode: smoke-test figures, too few runs to compare engines.**", ""] if args.quick else []),
        *busy,
        "### Time per call, µs (MxKxN: [M, K] x [K, N])", "",
        md_table(["MxKxN"] + [COLUMNS[e] for e in engines] + ["torch int8 time / intinfer op time (below 1x: torch faster)",
                                                               "max output difference intinfer vs torch int8 (codes)"],
                 us_rows), "",
        "### Throughput, GOPS (2·M·K·N per second)", "",
        md_table(["MxKxN"] + [COLUMNS[e] for e in engines], gops_rows), "",
        "intinfer and torch int8: uint8 in, requantized uint8 out with bias; ORT MatMulInteger: int32 out, no bias "
        "or requantization; ORT QLinearMatMul: uint8 out, no bias; torch fp32: float32 in and out. `run()` and the "
        "ORT/torch columns include each library's Python call overhead (a few µs, visible at M = 1); `op` is "
        "intinfer's own timing of the op." + peak,
        *(["", "Failures:", ""] + [f"{i + 1}. {t}" for i, t in enumerate(notes)] if notes else []), ""])
    print(text)
    if not args.no_docs:
        update_section("gemm", text)
        log("wrote docs/benchmarks.md (gemm section)")
    return 0


def _version(name: str) -> str:
    try:
        return __import__(name).__version__
    except Exception:  # noqa: BLE001
        return "missing"


if __name__ == "__main__":
    raise SystemExit(main())
