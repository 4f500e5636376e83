"""intinfer's thread pool when it is not alone: one model timed at 1 and 2 threads alone, right
after another runtime's multi-threaded call in the same process (ONNX Runtime, whose workers
spin for tens of milliseconds after returning, and torch's OpenMP pool), and with a core kept
busy by another process. And the mirror case: ONNX Runtime timed alone and right after an
intinfer call (intinfer's own workers must not steal the other runtime's time either).

    python3 bench/contention.py MODEL.iif --input X.npy            # ~2 min with EfficientNet-Lite0
    python3 bench/contention.py MODEL.iif --input X.npy --quick    # smoke run

MODEL.iif and X.npy: e.g. `python3 examples/efficientnet_lite0.py --save M.iif --save-input X.npy`.
The other runtimes' call is a float32 matrix product (ONNX Runtime: a one-node MatMul graph;
torch: torch.matmul), sized to take a few milliseconds at the same thread count; what matters is
what their thread pools do after returning, not the work. Rounds interleave the scenarios; a
figure is the median over rounds of the median of `--runs` timed calls. Goal (issue 20): with
another runtime or a busy core, never slower than the 1-thread time alone, and within 1.3x of
the 2-thread time alone after another runtime's call. Prints markdown; writes the `contention`
section of docs/benchmarks.md unless `--no-docs`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import busy_warning, command_line, fmt_ms, log, machine_line, md_table, now, update_section  # noqa: E402

PRESETS = {"full": dict(rounds=7, runs=15), "quick": dict(rounds=2, runs=3)}
SIZE = 512  # the other runtimes' (SIZE x SIZE) @ (SIZE x SIZE) float32 product


def onnx_matmul(path: str) -> None:
    import onnx
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [SIZE, SIZE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [SIZE, SIZE])
    w = helper.make_tensor("w", TensorProto.FLOAT, [SIZE, SIZE],
                           np.random.default_rng(0).standard_normal((SIZE, SIZE), dtype=np.float32).ravel())
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"])], "matmul", [a], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class Busy:
    """Another process spinning on one core for as long as the context lasts."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)  # let it get scheduled
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--input", required=True, help=".npy input of the model")
    ap.add_argument("--threads", type=int, default=2, help="the multi-threaded configuration")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    p = PRESETS["quick" if args.quick else "full"]

    import onnxruntime as ort
    import torch

    import intinfer

    header = [f"Command: `{command_line()}`", f"Date: {now()}", f"Machine: {machine_line()}", ""] + busy_warning()
    x = np.load(args.input)
    one = intinfer.load(args.model, num_threads=1)
    many = intinfer.load(args.model, num_threads=args.threads)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "matmul.onnx")
        onnx_matmul(path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).standard_normal((SIZE, SIZE), dtype=np.float32)
    ta = torch.from_numpy(a)

    def ort_call():
        session.run(None, {"a": a})

    def torch_call():
        with torch.inference_mode():
            torch.matmul(ta, ta)

    def timed(model):
        def run():
            t0 = time.perf_counter()
            model.run(x)
            return ms_since(t0)
        return run

    def after(before, then):
        def run():
            before()
            return then()
        return run

    def timed_ort():
        t0 = time.perf_counter()
        ort_call()
        return ms_since(t0)

    n = args.threads
    scenarios = {  # name: (how to time one call, needs a busy core)
        "intinfer 1 thread, alone": (timed(one), False),
        f"intinfer {n} threads, alone": (timed(many), False),
        f"intinfer {n} threads, right after an ONNX Runtime {n}-thread call": (after(ort_call, timed(many)), False),
        f"intinfer {n} threads, right after a torch {n}-thread call": (after(torch_call, timed(many)), False),
        "intinfer 1 thread, one core busy": (timed(one), True),
        f"intinfer {n} threads, one core busy": (timed(many), True),
        f"ONNX Runtime {n} threads (the matmul), alone": (timed_ort, False),
        f"ONNX Runtime {n} threads (the matmul), right after an intinfer {n}-thread call":
            (after(lambda: many.run(x), timed_ort), False),
    }
    results = {name: [] for name in scenarios}
    for fn, _ in scenarios.values():  # warm-up: plans, pools, caches
        fn()
    for r in range(p["rounds"]):
        log(f"round {r + 1}/{p['rounds']}")
        for busy in (False, True):
            names = [k for k, (_, b) in scenarios.items() if b == busy]
            with Busy() if busy else contextlib.nullcontext():
                for name in names[r % len(names):] + names[:r % len(names)]:
                    fn = scenarios[name][0]
                    samples = []
                    for _ in range(p["runs"]):
                        time.sleep(0.1)  # let every pool go idle between two samples
                        samples.append(fn())
                    results[name].append(float(np.median(samples)))

    med = {k: float(np.median(v)) for k, v in results.items()}
    base1, baseN = med["intinfer 1 thread, alone"], med[f"intinfer {n} threads, alone"]
    ort_alone = med[f"ONNX Runtime {n} threads (the matmul), alone"]
    rows = []
    for name, ms in med.items():
        if name.startswith("intinfer"):
            rows.append([name, fmt_ms(ms), f"{ms / base1:.2f}", f"{ms / baseN:.2f}", ""])
        else:
            rows.append([name, fmt_ms(ms), "", "", f"{ms / ort_alone:.2f}"])
    spread = max(max(v) / min(v) for v in results.values())
    body = "\n".join(header + [
        f"Model: `{os.path.basename(args.model)}`, input {tuple(x.shape)}, isa `{many.isa}`; "
        f"median over {p['rounds']} rounds of the median of {p['runs']} calls (100 ms pause before each call); "
        f"largest round-to-round spread of one scenario: {spread:.2f}x.",
        "",
        md_table(["scenario", "ms", "/ 1 thread alone", f"/ {n} threads alone", "/ ONNX Runtime alone"], rows),
    ])
    print(body)
    if not args.no_docs:
        update_section("contention", "## Thread pool under contention\n\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
