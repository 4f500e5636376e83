"""Lite Transformer's Long-Short Range Attention (Wu et al. 2020) against a plain transformer
encoder at one cost (issue #17): two students of all-MiniLM-L6-v2 inside Lite Transformer's
mobile budget (10M parameters, 500M mult-adds at 128 tokens, counted by intinfer.cost.torch_cost),
distilled from the teacher on the same texts with the same epochs and learning rate, then
quantized to int8 by intinfer.compress (post-training, and QAT from the distilled student) and
run by the engine (docs/lite_transformer.md).

    python examples/lite_transformer_study.py [--epochs 2] [--texts 1024] [--lr 1e-3] [--qat-epochs 1]
                                              [--qat-lr 1e-5] [--write-docs] [--json rows.json]
    python examples/lite_transformer_study.py --quick     # 16 texts, 1 epoch: the whole path in < 2 min
    python examples/lite_transformer_study.py --profile   # the int8 time by op type, per kernel path

Data: examples/compression_study.py's encoder split (Debian's fortunes quotations: the first
--texts for training, tests/data/sentences.txt and the next 256 held out, every quotation but the
held-out ones for the students' vocabulary; tests/data/similarity_pairs.tsv for the Spearman
correlations). Students: the teacher's vocabulary shrunk to those quotations (the parameters'
largest share), its embeddings' first 384 dimensions (the teacher's width, which the embedding
cosine needs) and first 128 positions, random layers from one seed:

- plain: MiniLM layers (intinfer.models.plain_student);
- LSRA: intinfer.models.LiteTransformer, attention on half the channels, a lightweight
  convolution on the other half, and a flatter feed-forward block with the MACs saved.

A student the exporter cannot take gets its float row and the export's error.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

import intinfer
from intinfer import compress as C
from intinfer import distill as D
from intinfer.cost import torch_cost
from intinfer.export.graph import ExportError
from intinfer.models import LiteTransformer, MiniLM, PooledEncoder, plain_student

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compression_study import encoder_data  # noqa: E402

SEQ = 128  # the budget's sequence length, and the students' positions
HIDDEN = 384  # the teacher's width
STUDENTS = {
    "plain": ("plain: 2 layers, 12 heads, FFN 1536",
              lambda t: plain_student(t, hidden=HIDDEN, layers=2, heads=12, intermediate=1536, max_positions=SEQ)),
    "LSRA": ("LSRA: 4 layers, 6 heads + 6 kernels of 7, FFN 640",
             lambda t: LiteTransformer.from_teacher(t, hidden=HIDDEN, layers=4, heads=6, conv_heads=6, kernel_size=7,
                                                    intermediate=640, max_positions=SEQ)),
}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "lite_transformer.md"
BEGIN, END = "<!-- lite_transformer_study: begin -->", "<!-- lite_transformer_study: end -->"
QUALITY = ("cosine", "spearman_teacher", "spearman_human")


def cost(model: MiniLM) -> dict:
    """The parameters and mult-adds of the pooled encoder on one sequence of SEQ tokens."""
    x = torch.ones(1, SEQ, dtype=torch.long)
    return torch_cost(PooledEncoder(model).eval(), (x, x, torch.zeros_like(x))).totals


def study(name: str, teacher: MiniLM, task, vocabulary_texts: list, held_out: list, args) -> list:
    """The rows of one student: distilled and quantized post-training, then (with --qat-epochs)
    the distilled student trained with quantization simulated."""
    label, make = STUDENTS[name]
    built = []

    def build(model):
        torch.manual_seed(args.seed)
        student, report = D.shrink_vocabulary(make(model), vocabulary_texts, held_out=held_out, max_dropped=1.0)
        print(f"  {name}: {report}", flush=True)
        built.append(student)
        return student

    began = time.perf_counter()
    ptq = quantized(teacher, task, [C.Distill(build, epochs=args.epochs, lr=args.lr), C.Quantize()], args.seed)
    seconds = time.perf_counter() - began
    student = built[-1]
    totals = cost(student)
    float_quality, float_ms = task.evaluate_float(student)
    base = {"model": label, "params": totals["parameters"], "macs": totals["macs"], "fp32": float_quality,
            "torch_ms": float_ms}
    rows = [{**base, "variant": "distill, PTQ", "seconds": seconds, **ptq}]
    if args.qat_epochs:
        began = time.perf_counter()
        qat = quantized(teacher, task, [C.Distill(lambda m: copy.deepcopy(student), epochs=0, name="distilled"),
                                        C.Quantize(qat=True, epochs=args.qat_epochs, lr=args.qat_lr)], args.seed)
        rows.append({**base, "variant": f"distill, QAT {args.qat_epochs} epoch(s)",
                     "seconds": seconds + time.perf_counter() - began, **qat})
    return rows


def quantized(teacher: MiniLM, task, stages: list, seed: int) -> dict:
    """The int8 quality and engine latency of the pipeline's final .iif, or the export's error."""
    try:
        record = C.compress(teacher, task, stages, seed=seed, progress=False, measure=False).records[-1]
    except ExportError as e:
        message = str(e).split(". ")[0]
        print(f"  int8 export failed: {message}", flush=True)
        return {"int8": None, "engine_ms": None, "error": message}
    return {"int8": record.quality, "engine_ms": record.latency_ms, "error": None}


def profile(teacher: MiniLM, texts: list, runs: int, threads: int) -> str:
    """Where each student's int8 time goes, by op type, on one sequence of SEQ tokens: the
    students as the study builds them (random layers: the time does not depend on the weights),
    quantized post-training on `texts`, profiled on the reference kernels and on the default
    path (INTINFER_ISA)."""
    keys = ("input_ids", "attention_mask", "token_type_ids")
    dims = {0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("seq", max=SEQ)}
    x = [np.ones((1, SEQ), np.int32), np.ones((1, SEQ), np.int32), np.zeros((1, SEQ), np.int32)]
    lines = [f"int8, 1 x {SEQ} tokens, {threads} thread(s), median of {runs} profiled runs:"]
    for name, (_, make) in STUDENTS.items():
        torch.manual_seed(0)
        student = make(teacher).eval()
        batches = [tuple(torch.from_numpy(enc[k]).long() for k in keys)
                   for enc in (student.tokenizer.encode(texts[i:i + 8], max_length=SEQ) for i in range(0, 32, 8))]
        q = intinfer.quantize(PooledEncoder(student).eval(), batches[0], batches, dynamic_shapes=(dims,) * 3)
        for isa in ("ref", None):
            if isa is None:
                os.environ.pop("INTINFER_ISA", None)
            else:
                os.environ["INTINFER_ISA"] = isa
            m = q.load(num_threads=threads)
            p = m.profile(x, runs=runs)
            shares = ", ".join(f"{op} {ms / p.total_ms:.1%}" for op, ms in p.by_type().items())
            lines.append(f"- {name}, {m.isa}: {p.total_ms:.2f} ms: {shares}")
        os.environ.pop("INTINFER_ISA", None)
    return "\n".join(lines)


def teacher_row(teacher: MiniLM, task) -> dict:
    quality, ms = task.evaluate_float(teacher)
    totals = cost(teacher)
    return {"model": "teacher all-MiniLM-L6-v2", "variant": "fp32", "params": totals["parameters"],
            "macs": totals["macs"], "fp32": quality, "torch_ms": ms, "int8": None, "engine_ms": None, "seconds": 0.0,
            "error": None}


def table(rows: list) -> str:
    def q(values, key):
        return "-" if values is None else f"{values[key]:.4f}"

    def ms(value):
        return "-" if value is None else f"{value:.2f}"

    head = ("| model | variant | params | MACs@128 | fp32 cosine | fp32 Spearman teacher | fp32 Spearman human | "
            "int8 cosine | int8 Spearman teacher | int8 Spearman human | torch fp32 ms | engine int8 ms | seconds |")
    lines = [head, "|---" * head.count(" | ") + "|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['variant']} | {r['params']:,} | {r['macs']:,} | "
                     + " | ".join(q(r["fp32"], k) for k in QUALITY) + " | "
                     + " | ".join(q(r["int8"], k) for k in QUALITY)
                     + f" | {ms(r['torch_ms'])} | {ms(r['engine_ms'])} | {r['seconds']:.0f} |")
    errors = [f"- {r['model']}, {r['variant']}: int8 not exported: {r['error']}" for r in rows if r["error"]]
    return "\n".join(lines + ([""] + errors if errors else []))


def write_docs(text: str) -> None:
    doc = DOCS.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{DOCS} has no {BEGIN} ... {END} block to write the table into")
    DOCS.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", doc))
    print(f"wrote the table into {DOCS}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="16 texts, 1 epoch, 3 timed runs: the whole path, quickly")
    ap.add_argument("--epochs", type=int, default=2, help="distillation epochs (both students)")
    ap.add_argument("--texts", type=int, default=1024, help="training quotations")
    ap.add_argument("--lr", type=float, default=1e-3, help="distillation learning rate (the layers start random)")
    ap.add_argument("--qat-epochs", type=int, default=1, help="QAT epochs from each distilled student (0: none)")
    ap.add_argument("--qat-lr", type=float, default=1e-5, help="QAT learning rate")
    ap.add_argument("--seed", type=int, default=0, help="the students' initialisation and the batch order")
    ap.add_argument("--threads", type=int, default=1, help="engine and torch threads for the latencies")
    ap.add_argument("--runs", type=int, default=20, help="timed runs a latency")
    ap.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS.name} between its markers")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    ap.add_argument("--profile", action="store_true",
                    help="only profile the students' int8 files by op type (reference and default kernels)")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.texts, args.runs = 1, 16, 3
    train, held_out, vocabulary_texts, pairs = encoder_data(args.texts, args.quick)
    if args.profile:
        print(profile(MiniLM.from_pretrained().eval(), train, args.runs, args.threads))
        return 0
    task = C.EncoderTask(train, held_out, pairs=pairs, max_seq=SEQ, runs=args.runs, num_threads=args.threads)
    teacher = MiniLM.from_pretrained().eval()
    task.prepare(teacher)
    rows = [teacher_row(teacher, task)]
    for name in STUDENTS:
        print(f"{name}: distilling on {len(train)} texts, {args.epochs} epoch(s) at lr {args.lr:g}", flush=True)
        rows += study(name, teacher, task, vocabulary_texts, held_out, args)
    plain, lsra = (next(r for r in rows if r["model"] == STUDENTS[n][0]) for n in STUDENTS)
    budget = f"budget 10M parameters, 500M MACs at {SEQ} tokens"
    fits = all(r["params"] <= 10_000_000 and r["macs"] <= 500_000_000 for r in (plain, lsra))
    settings = (f"{len(train)} training texts, {len(held_out)} held out, {len(pairs[0])} pairs; {args.epochs} "
                f"distillation epoch(s) at lr {args.lr:g}, QAT {args.qat_epochs} epoch(s) at lr {args.qat_lr:g}; seed "
                f"{args.seed}; latency: one sentence, {args.threads} thread(s), median of {args.runs}. {budget}: "
                f"{'both fit' if fits else 'NOT MET'}; LSRA MACs / plain MACs = {lsra['macs'] / plain['macs']:.3f}.")
    text = f"{textwrap.fill(settings, 100)}\n\n{table(rows)}"
    print(f"\n{text}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
