"""The model coverage table of docs/models.md: every model of tests/test_hf_models.py and
tests/test_cnn_models.py, at the small random-weight configurations those tests build, through
intinfer.quantize (round-to-nearest weights, no bias correction, as the CNN tests), with

- whether it exports (else the first problem intinfer.check names),
- the per-layer SQNR of the engine's values against the float graph (min / median, on the
  calibration inputs: QuantizedModel.report()),
- the output cosine with torch on held-out inputs from the calibration distribution,
- whether the engine equals intinfer.qat's eval model bit for bit,
- the .iif size, and the latency of intinfer, ONNX Runtime fp32 and ONNX Runtime int8 (dynamic
  quantization of the same model exported by torch.onnx) side by side, 1 thread, median.

    python3 bench/coverage.py [--quick] [--no-docs] [--runs N]

Random weights: the figures measure the integer arithmetic, not accuracy on data (the real-weight
figures are in docs/models.md). --quick: two models, three runs, no docs (what CI runs);
ONNX Runtime columns read "-" where onnxruntime is not installed (bench/README.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from _common import REPO, busy_warning, command_line, log, machine_line, md_table, median_ms, now, update_section

sys.path.insert(0, str(REPO / "tests"))

MODELS_MD = REPO / "docs" / "models.md"
HF_SHAPE = (2, 11)  # batch, tokens of the held-out inputs
QUICK = ("hf:bert_sdpa_mean", "cnn:resnet18")


def cases():
    """(name, model, calibration batches, held-out inputs, dynamic_shapes, output mask or None)."""
    import torch

    import test_cnn_models as cnn
    import test_hf_models as hf

    for name in sorted(hf.MODELS):
        model = hf.MODELS[name]().eval()
        gen = torch.Generator().manual_seed(1)
        calibration = [hf.batch(model, 4, 4 + i % (hf.MAX_SEQ - 3), gen)[: hf.n_inputs(model)] for i in range(12)]
        held_out = hf.batch(model, *HF_SHAPE, gen)[: hf.n_inputs(model)]
        yield f"hf:{name}", model, calibration, held_out, hf.dynamic(model), held_out[1]
    for name in sorted(hf.VIT_MODELS):
        gen = torch.Generator().manual_seed(5)
        yield (f"hf:{name}", hf.VIT_MODELS[name]().eval(), [(hf.images(4, gen),) for _ in range(4)],
               (hf.images(2, gen),), hf.VIT_DIMS, None)
    for name in sorted(cnn.MODELS):
        yield (f"cnn:{name}", cnn.build(name), [(cnn.images(4, 1 + i),) for i in range(2)], (cnn.images(4, 11),),
               None, None)


def cosine(got, want, mask) -> np.ndarray:
    if mask is not None and want.ndim >= 3:  # per-token outputs: real tokens only
        keep = mask.numpy().astype(bool)
        got, want = got[keep], want[keep]
    a, b = got.reshape(len(got), -1).astype(np.float64), want.reshape(len(want), -1).astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def onnx_runtimes(model, inputs, dynamic_shapes, tmp: Path, name: str) -> dict:
    """'fp32' / 'int8' -> callable, or a reason string when ONNX Runtime cannot run the model."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return {"fp32": "-", "int8": "-"}
    import torch

    names = [f"in{i}" for i in range(len(inputs))]
    axes = {n: {d: f"{n}_{d}" for d in dims} for n, dims in zip(names, dynamic_shapes or [{0: None}] * len(names))}
    fp32, int8 = tmp / f"{name}.onnx", tmp / f"{name}_int8.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, tuple(inputs), str(fp32), input_names=names, output_names=["y"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    except Exception as e:  # a model torch.onnx or the quantizer cannot take: say so in the table
        return {"fp32": f"fails ({type(e).__name__})", "int8": "-"}
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    feeds = {n: x.numpy() for n, x in zip(names, inputs)}
    runs = {}
    for kind, path in (("fp32", fp32), ("int8", int8)):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runs[kind] = lambda s=session: s.run(None, feeds)
    return runs


def measure(name, model, calibration, held_out, dynamic_shapes, mask, runs: int, tmp: Path) -> list:
    import torch

    import intinfer
    from intinfer import qat

    family, short = name.split(":")
    problems = intinfer.check(model, calibration[0], dynamic_shapes)
    if problems:
        return [family, short, f"no: {problems[0].reason}"] + ["-"] * 7
    q = intinfer.quantize(model, calibration[0], calibration, dynamic_shapes=dynamic_shapes, weight_rounding="nearest",
                          bias_correction=False)
    sqnr = [r["sqnr_db"] for r in q.report().rows if np.isfinite(r["sqnr_db"])]
    engine = intinfer.load(q.to_bytes(), num_threads=1)
    feeds = [x.numpy() for x in held_out]
    with torch.no_grad():
        want = model(*held_out).numpy()
    c = cosine(engine.run(feeds), want, mask)
    qm = qat.prepare(model, calibration[0], dynamic_shapes=dynamic_shapes).train()
    with torch.no_grad():
        for batch in calibration:
            qm(*batch)
    qm.eval()
    with torch.no_grad():
        exact = np.array_equal(qm(*held_out).numpy(),
                               intinfer.load(qat.convert(qm).to_bytes(), num_threads=1).run(feeds))
    peers = onnx_runtimes(model, held_out, dynamic_shapes, tmp, short)
    timed = {k: f"{median_ms(v, runs):.2f}" if callable(v) else v for k, v in peers.items()}
    return [family, short, "yes", f"{min(sqnr):.1f} / {np.median(sqnr):.1f}", f"{c.mean():.4f} / {c.min():.4f}",
            "bit-exact" if exact else "**differs**", f"{len(q.to_bytes()) / 1024:.0f}",
            f"{median_ms(lambda: engine.run(feeds), runs):.2f}", timed["fp32"], timed["int8"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two models, three runs, no docs (CI)")
    ap.add_argument("--no-docs", action="store_true", help="print the table only")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    runs = 3 if args.quick else args.runs
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, calibration, held_out, dynamic_shapes, mask in cases():
            if args.quick and name not in QUICK:
                continue
            log(f"  {name}")
            rows.append(measure(name, model, calibration, held_out, dynamic_shapes, mask, runs, Path(tmp)))
    table = md_table(["family", "model", "exports", "SQNR dB min / median", "cosine with torch mean / min",
                      "engine = QAT eval", "size KiB", "intinfer ms", "ONNX Runtime fp32 ms", "ONNX Runtime int8 ms"],
                     rows)
    print(table)
    if args.quick or args.no_docs:
        return
    body = "\n".join(busy_warning()) + (f"Measured {now()} on {machine_line()}\nCommand: `{command_line()}`\n\n"
            f"Held-out inputs: {HF_SHAPE[0]} sequences of {HF_SHAPE[1]} tokens (transformers; cosine at real "
            "tokens), 4 images of 32x32 (CNNs) or 2 (ViT); latency of those at 1 thread, median of "
            f"{runs} runs.\n\n{table}")
    update_section("coverage", body, MODELS_MD)


if __name__ == "__main__":
    main()
