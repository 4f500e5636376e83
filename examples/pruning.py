"""Pruning that pays in the engine, measured on real models (docs/pruning.md): all-MiniLM-L6-v2 with
25% / 50% of its attention heads removed, with 50% / 70% of its feed-forward units removed, with
50 / 70 / 90% of the 1 x 4 blocks of its FFN and attention projections pruned and with 70% of the
blocks of its FFN alone, and EfficientNet-Lite0 with channel pruning and with sparse 1x1
convolutions; each pruned model fine-tuned by distillation from the unpruned float model (no
labels), quantized to int8 by intinfer.quantize, written to a .iif file and run by the engine.

    python examples/pruning.py [--configs heads50,blocks70,...] [--epochs 2] [--threads 1] [--json r.json] [--plot p.png]
    python examples/pruning.py --quick       # four configurations, one epoch on tiny data, for CI
    python examples/pruning.py --orderings   # which heads / units to remove, before fine-tuning

MiniLM: distillation text is Debian's `fortunes` package (/usr/share/games/fortunes, thousands of
quotations; the calibration sentences of tests/data when it is not installed), or with --corpus
wordnet the usage examples of Debian's wordnet-base (short everyday English, closer to the
held-out sentences), or half of each (--corpus both); the loss is
1 - cosine of the sentence embedding with the unpruned fp32 model's. Held out: the 56 sentences
of tests/data/sentences.txt (cosine of the int8 engine's embedding with fp32's) and the 42
pairs of tests/data/similarity_pairs.tsv (Spearman of the pair cosines with the human scores and
with fp32's pair cosines). Heads: Michel et al.'s importance (intinfer.prune.head_importance),
removed globally. Feed-forward units: the same importance of each unit's activation
(intinfer.prune.ffn_importance), removed globally, the FFN matrices shrinking physically.
Blocks: iterative magnitude pruning of the 36 linear layers of the encoder, or of the 12 FFN
linears (ffnblocks70) (intinfer.prune.iterative_prune: a round on the cubic schedule per epoch, up
to three, a distillation epoch after each), masks kept through the fine-tuning. Liu et al.'s
check: the 50%-heads architecture fine-tuned from its pruned weights against the same
architecture trained from a fresh initialisation on the same budget.

EfficientNet-Lite0: unlabeled crops of the scikit-image pictures (the example
efficientnet_lite0.py's), distillation by the KL divergence of softened logits (T = 2), batch
norms on their running statistics; held out: 200 crops of other pictures (top-1 agreement and
logit cosine with fp32). Channels: Taylor importance (intinfer.prune.channel_importance) of the
expansion convs, 25% / 50% of each removed. Sparse 1x1: magnitude pruning of the ungrouped 1x1
convs in 1 x 4 blocks, 70% / 90%.

Latency: the engine on one thread (--threads), median of --runs calls: MiniLM on one held-out
sentence and on a batch of 8, EfficientNet-Lite0 on one crop. Size: the weights' bytes in the
file (`Model.memory()["weight_bytes"]`).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import intinfer
from intinfer.models import Int8SentenceEncoder, MiniLM, quantize_minilm
from intinfer.models.minilm import PooledEncoder
from intinfer.prune import (channel_importance, ffn_importance, head_importance, iterative_prune,
                            prune_channels_by_importance, prune_ffn_by_importance, prune_heads_by_importance)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from efficientnet_lite0 import CALIBRATION_PICTURES, HELD_OUT_PICTURES, agreement, crops, load_model  # noqa: E402
from minilm import median_ms  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
FORTUNES = Path("/usr/share/games/fortunes")
WORDNET = Path("/usr/share/wordnet")
# The distillation corpora (--corpus) and the directories each reads.
CORPORA = {"fortunes": (FORTUNES,), "wordnet": (WORDNET,), "both": (FORTUNES, WORDNET)}
MAX_SEQ = 64
# The configurations, MiniLM's and EfficientNet-Lite0's, and those --quick runs (one epoch, tiny data).
MINILM_CONFIGS = ("heads25", "heads50", "fresh50", "ffn50", "ffn70", "blocks50", "blocks70", "blocks90",
                  "ffnblocks70")
CNN_CONFIGS = ("channels25", "channels50", "pointwise70", "pointwise90")
CONFIGS = MINILM_CONFIGS + CNN_CONFIGS
QUICK = ["heads25", "ffn70", "blocks70", "channels25"]


# -- data ----------------------------------------------------------------------------------------

def pairs() -> tuple[list, list, np.ndarray]:
    rows = [line.split("\t") for line in (DATA / "similarity_pairs.tsv").read_text().splitlines()[1:] if line.strip()]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def training_text(count: int, seed: int = 0) -> list:
    """`count` quotations of Debian's fortunes (20-300 characters, whitespace folded), shuffled;
    the similarity pairs' sentences when the package is not installed."""
    quotes = []
    if FORTUNES.is_dir():
        for f in sorted(FORTUNES.iterdir()):
            if f.suffix or not f.is_file():
                continue
            for q in f.read_text(errors="replace").split("\n%\n"):
                q = " ".join(q.split())
                if 20 < len(q) < 300:
                    quotes.append(q)
    if not quotes:
        a, b, _ = pairs()
        quotes = a + b
    quotes = sorted(set(quotes))
    np.random.default_rng(seed).shuffle(quotes)
    return quotes[:count]


def wordnet_examples(count: int, seed: int = 0) -> list:
    """`count` usage examples of Debian's wordnet-base (the quoted sentences and phrases of
    WordNet's glosses, 15-200 characters: about 44,000 of short everyday English), shuffled."""
    files = sorted(WORDNET.glob("data.*"))
    if not files:
        raise FileNotFoundError(f"no WordNet data files in {WORDNET}: install Debian's wordnet-base "
                                "(scripts/setup.sh does)")
    examples = set()
    for f in files:
        for line in f.read_text(encoding="latin-1").splitlines():
            if "|" in line and not line.startswith(" "):  # a synset; the licence lines start with spaces
                examples.update(re.findall(r'"([^"]{15,200})"', line.split("|", 1)[1]))
    examples = sorted(examples)
    np.random.default_rng(seed).shuffle(examples)
    return examples[:count]


def corpus_text(corpus: str, count: int, seed: int = 0) -> list:
    """`count` distillation texts of `corpus`: Debian's fortunes, WordNet's usage examples, or
    half of each ("both"), shuffled."""
    if corpus == "fortunes":
        return training_text(count, seed)
    if corpus == "wordnet":
        return wordnet_examples(count, seed)
    texts = training_text(count // 2, seed) + wordnet_examples(count - count // 2, seed)
    np.random.default_rng(seed).shuffle(texts)
    return texts


def held_out_sentences() -> list:
    return [s for s in (DATA / "sentences.txt").read_text().splitlines() if s.strip()]


def token_batches(tokenizer, texts: list, batch: int) -> list:
    out = []
    for i in range(0, len(texts), batch):
        enc = tokenizer.encode(texts[i:i + batch], max_length=MAX_SEQ)
        out.append(tuple(torch.from_numpy(enc[k]).long() for k in ("input_ids", "attention_mask", "token_type_ids")))
    return out


def prune_in_blocks(model, sparsity: float, layers: list, epochs: int, distill) -> None:
    """Iterative magnitude pruning of `layers` in 1 x 4 blocks to `sparsity`: min(epochs, 3)
    rounds on the cubic schedule with distill(model, 1, masks) after each, then distill(model,
    the epochs left, masks); with epochs = 0, one round and no distillation."""
    rounds = min(max(epochs, 1), 3)
    masks = iterative_prune(model, sparsity, rounds, lambda m, mk: distill(m, 1 if epochs else 0, mk), layers=layers)
    distill(model, epochs - rounds if epochs else 0, masks)


# -- MiniLM --------------------------------------------------------------------------------------

def distill_encoder(student: MiniLM, batches: list, targets: list, epochs: int, lr: float, masks=None,
                    seed: int = 0) -> None:
    """Float distillation: the student's sentence embedding learns the teacher's (1 - cosine),
    masks (if any) kept after every step."""
    pooled = PooledEncoder(student).train()
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    handle = masks.attach(student, opt) if masks is not None else None
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for i in torch.randperm(len(batches), generator=order).tolist():
            loss = 1 - F.cosine_similarity(pooled(*batches[i]), targets[i], dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    if handle is not None:
        handle.remove()
    student.eval()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


class MiniLMStudy:
    def __init__(self, args):
        self.args = args
        self.teacher = MiniLM.from_pretrained().eval()
        self.tok = self.teacher.tokenizer
        count = 16 if args.quick else args.texts
        self.train = token_batches(self.tok, corpus_text(args.corpus, count), 16)
        with torch.no_grad():
            pooled = PooledEncoder(self.teacher).eval()
            self.targets = [pooled(*b) for b in self.train]
        self.calibration = [s for b in (pairs()[0], pairs()[1]) for s in b][:8 if args.quick else None]
        self.held_out = held_out_sentences()[:8 if args.quick else None]
        self.fp32 = self.teacher.embed(self.held_out)
        a, b, self.human = (v[:8 if args.quick else None] for v in pairs())
        ea, eb = self.teacher.embed(a), self.teacher.embed(b)
        self.fp32_pairs = (ea * eb).sum(1)
        self.pairs = (a, b)
        self.rows = []

    def student(self) -> MiniLM:
        s = copy.deepcopy(self.teacher)
        s.tokenizer = self.tok
        return s

    def measure(self, name: str, model: MiniLM, seconds: float) -> dict:
        """Quantize (PTQ, the calibration sentences), run the .iif in the engine, measure."""
        q = quantize_minilm(model, self.calibration, max_seq=MAX_SEQ)
        data = q.to_bytes()
        enc = Int8SentenceEncoder(data, self.tok, num_threads=self.args.threads)
        emb = enc.embed(self.held_out)
        cos = (self.fp32 * emb).sum(1)
        ea, eb = enc.embed(self.pairs[0]), enc.embed(self.pairs[1])
        pair_cos = (ea * eb).sum(1)
        latency = {}
        for label, texts in (("1", self.held_out[:1]), ("8", self.held_out[:8])):
            t = self.tok.encode(texts)
            inputs = [t[k] for k in ("input_ids", "attention_mask", "token_type_ids")]
            latency[label] = median_ms(lambda: enc.engine.run(inputs), self.args.runs)
        sparse = sum(t.block_sparse for t in q.builder.tensors)
        row = dict(model="all-MiniLM-L6-v2", config=name, weight_bytes=enc.engine.memory()["weight_bytes"],
                   sparse_layers=int(sparse), cosine_mean=float(cos.mean()), cosine_min=float(cos.min()),
                   spearman_human=spearman(pair_cos, self.human), spearman_fp32=spearman(pair_cos, self.fp32_pairs),
                   ms_1=latency["1"], ms_8=latency["8"], seconds=seconds)
        self.rows.append(row)
        print(f"| {name} | {row['weight_bytes'] / 2**20:.2f} | {sparse} | {row['cosine_mean']:.4f} | "
              f"{row['cosine_min']:.4f} | {row['spearman_human']:.3f} | {row['spearman_fp32']:.3f} | "
              f"{row['ms_1']:.2f} | {row['ms_8']:.2f} | {seconds:.0f} |", flush=True)
        return row

    def heads(self, fraction: float, epochs: int, fresh: bool = False) -> None:
        t = time.perf_counter()
        s = self.student()
        importance = head_importance(s, self.train[:8])
        removed = prune_heads_by_importance(s, importance, fraction=fraction)
        if fresh:  # Liu et al.: the pruned architecture from a fresh initialisation
            for m in s.modules():
                if hasattr(m, "reset_parameters") and m is not s:
                    m.reset_parameters()
        distill_encoder(s, self.train, self.targets, epochs, self.args.lr)
        n = sum(len(v) for v in removed.values())
        how = "from a fresh init" if fresh else "fine-tuned"
        self.measure(f"{n} of 72 heads removed ({fraction:.0%}), {how} {epochs} ep", s, time.perf_counter() - t)

    def units(self, fraction: float, epochs: int) -> None:
        t = time.perf_counter()
        s = self.student()
        total = sum(layer.ffn_in.out_features for layer in s.layers)
        removed = prune_ffn_by_importance(s, ffn_importance(s, self.train[:8]), fraction=fraction)
        distill_encoder(s, self.train, self.targets, epochs, self.args.lr)
        n = sum(len(v) for v in removed.values())
        self.measure(f"{n} of {total} FFN units removed ({fraction:.0%}), fine-tuned {epochs} ep", s,
                     time.perf_counter() - t)

    def blocks(self, sparsity: float, epochs: int, ffn_only: bool = False) -> None:
        t = time.perf_counter()
        s = self.student()
        layers = [n for n, m in s.named_modules() if n.startswith("layers.") and isinstance(m, torch.nn.Linear)
                  and (not ffn_only or n.split(".")[-1] in ("ffn_in", "ffn_out"))]
        prune_in_blocks(s, sparsity, layers, epochs,
                        lambda m, ep, mk: distill_encoder(m, self.train, self.targets, ep, self.args.lr, mk))
        where = "the FFN" if ffn_only else "the encoder"
        self.measure(f"{sparsity:.0%} of 1x4 blocks pruned in {where}, {epochs} ep", s, time.perf_counter() - t)

    def run(self) -> list:
        e = self.args.epochs
        print(f"\nall-MiniLM-L6-v2: {len(self.train)} training batches of 16, held-out cosine on "
              f"{len(self.held_out)} sentences, Spearman on {len(self.human)} pairs; {self.args.threads} thread(s)")
        print("| configuration | weight MiB | sparse layers | cosine mean | cosine min | Spearman human | "
              "Spearman fp32 | ms (1 sentence) | ms (8 sentences) | s to prune and fine-tune |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        self.measure("int8, dense (unpruned)", self.student(), 0.0)
        configs = {"heads25": lambda: self.heads(0.25, e), "heads50": lambda: self.heads(0.5, e),
                   "fresh50": lambda: self.heads(0.5, e, fresh=True), "ffn50": lambda: self.units(0.5, e),
                   "ffn70": lambda: self.units(0.7, e), "blocks50": lambda: self.blocks(0.5, e),
                   "blocks70": lambda: self.blocks(0.7, e), "blocks90": lambda: self.blocks(0.9, e),
                   "ffnblocks70": lambda: self.blocks(0.7, e, ffn_only=True)}
        for name in self.args.configs:
            if name in configs:
                configs[name]()
        return self.rows


# -- EfficientNet-Lite0 --------------------------------------------------------------------------

def distill_cnn(student, images: torch.Tensor, targets: torch.Tensor, epochs: int, lr: float, masks=None,
                batch: int = 16, temperature: float = 2.0, seed: int = 0) -> None:
    """Hinton's distillation on unlabeled crops: KL of softened logits; the batch norms stay on
    their running statistics (eval mode), masks kept after every step."""
    student.eval()
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    handle = masks.attach(student, opt) if masks is not None else None
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(images), generator=order).split(batch):
            logp = F.log_softmax(student(images[idx]) / temperature, 1)
            loss = F.kl_div(logp, F.log_softmax(targets[idx] / temperature, 1), log_target=True,
                            reduction="batchmean") * temperature ** 2
            opt.zero_grad()
            loss.backward()
            opt.step()
    if handle is not None:
        handle.remove()


class EfficientNetStudy:
    def __init__(self, args):
        self.args = args
        self.teacher = load_model().eval()
        self.train = crops(CALIBRATION_PICTURES, 16 if args.quick else args.crops, seed=2)
        self.calib = self.train[:8 if args.quick else 64]
        self.held_out = crops(HELD_OUT_PICTURES, 4 if args.quick else 200, seed=1)
        with torch.no_grad():
            self.train_logits = torch.cat([self.teacher(x) for x in self.train.split(25)])
            self.ref = torch.cat([self.teacher(x) for x in self.held_out.split(25)]).numpy()
        self.rows = []

    def measure(self, name: str, model, seconds: float) -> dict:
        q = intinfer.quantize(model, (self.held_out[:1],), self.calib.split(8), observer="mse",
                              bias_correction="total", weight_rounding="nearest" if self.args.quick else "gptq")
        data = q.to_bytes()
        engine = intinfer.load(data, num_threads=self.args.threads)
        got = np.concatenate([engine.run(self.held_out[i:i + 1].numpy()) for i in range(len(self.held_out))])
        a = agreement(self.ref, got)
        x = self.held_out[:1].numpy()
        ms = median_ms(lambda: engine.run(x), self.args.runs)
        sparse = sum(t.block_sparse for t in q.builder.tensors)
        row = dict(model="EfficientNet-Lite0", config=name, weight_bytes=engine.memory()["weight_bytes"],
                   sparse_layers=int(sparse), top1=a["top1"], cosine_mean=a["cosine_mean"], ms_1=ms, seconds=seconds)
        self.rows.append(row)
        print(f"| {name} | {row['weight_bytes'] / 2**20:.2f} | {sparse} | {a['top1']:.1%} | {a['cosine_mean']:.4f} | "
              f"{ms:.2f} | {seconds:.0f} |", flush=True)
        return row

    def channels(self, fraction: float, epochs: int) -> None:
        t = time.perf_counter()
        s = copy.deepcopy(self.teacher)
        example = (self.held_out[:1],)
        expand = [n for n, m in s.named_modules() if n.endswith("_expand_conv")]
        importance = channel_importance(s, example, layers=expand, method="taylor",
                                        batches=[(x,) for x in self.train[:8 if self.args.quick else 32].split(8)])
        prune_channels_by_importance(s, example, importance, fraction)
        distill_cnn(s, self.train, self.train_logits, epochs, self.args.lr_cnn)
        self.measure(f"{fraction:.0%} of expansion channels removed, {epochs} ep", s, time.perf_counter() - t)

    def pointwise(self, sparsity: float, epochs: int) -> None:
        t = time.perf_counter()
        s = copy.deepcopy(self.teacher)
        layers = [n for n, m in s.named_modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)
                  and m.groups == 1 and m.in_channels % 4 == 0]
        prune_in_blocks(s, sparsity, layers, epochs,
                        lambda m, ep, mk: distill_cnn(m, self.train, self.train_logits, ep, self.args.lr_cnn, mk))
        self.measure(f"{sparsity:.0%} of 1x4 blocks of the 1x1 convs pruned, {epochs} ep", s,
                     time.perf_counter() - t)

    def run(self) -> list:
        e = self.args.epochs
        print(f"\nEfficientNet-Lite0: {len(self.train)} training crops, {len(self.held_out)} held-out crops; "
              f"{self.args.threads} thread(s)")
        print("| configuration | weight MiB | sparse layers | top-1 agreement | logit cosine | ms | s to prune and "
              "fine-tune |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        self.measure("int8, dense (unpruned)", copy.deepcopy(self.teacher), 0.0)
        configs = {"channels25": lambda: self.channels(0.25, e), "channels50": lambda: self.channels(0.5, e),
                   "pointwise70": lambda: self.pointwise(0.7, e), "pointwise90": lambda: self.pointwise(0.9, e)}
        for name in self.args.configs:
            if name in configs:
                configs[name]()
        return self.rows


def orderings(quick: bool) -> None:
    """Which heads and FFN units to remove, before any fine-tuning: Michel et al.'s importance
    (global and per layer) against the reverse order and random scores (3 draws), on the float
    all-MiniLM-L6-v2; importance from the 84 pair sentences, embedding cosine with the unpruned
    model on the held-out sentences."""
    teacher = MiniLM.from_pretrained().eval()
    a, b, _ = pairs()
    batches = token_batches(teacher.tokenizer, list(a) + list(b), 16)
    held = held_out_sentences()[:8 if quick else None]
    reference = teacher.embed(held)

    def cosine(scores, prune_by, per_layer: bool, fraction: float) -> np.ndarray:
        model = copy.deepcopy(teacher)
        prune_by(model, scores, fraction=fraction, per_layer=per_layer)
        return (model.embed(held) * reference).sum(1)

    for what, score, prune_by in (("heads", head_importance, prune_heads_by_importance),
                                  ("FFN units", ffn_importance, prune_ffn_by_importance)):
        importance = score(PooledEncoder(teacher), batches)
        print(f"\n| {what} removed | by importance, global | by importance, per layer | reverse | random (3 draws) |")
        print("|---|---|---|---|---|")
        for fraction in (0.5,) if quick else (0.25, 0.5, 0.7):
            cells = [f"{fraction:.0%}"]
            for scores, per_layer in ((importance, False), (importance, True), (-importance, False)):
                c = cosine(scores, prune_by, per_layer, fraction)
                cells.append(f"{c.mean():.3f} (min {c.min():.3f})")
            draws = [cosine(torch.rand(importance.shape, generator=torch.Generator().manual_seed(seed)), prune_by,
                            False, fraction).mean() for seed in range(3)]
            cells.append(", ".join(f"{d:.3f}" for d in draws))
            print("| " + " | ".join(cells) + " |", flush=True)


def plot(rows: list, path: str) -> None:
    """Quality against latency relative to each model's dense int8 row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, model, metric, label in ((axes[0], "all-MiniLM-L6-v2", "cosine_mean", "held-out cosine with fp32"),
                                     (axes[1], "EfficientNet-Lite0", "top1", "top-1 agreement with fp32")):
        sub = [r for r in rows if r["model"] == model]
        if not sub:
            continue
        base = sub[0]["ms_1"]
        for r in sub:
            ax.scatter(base / r["ms_1"], r[metric])
            ax.annotate(r["config"].split(",")[0], (base / r["ms_1"], r[metric]), fontsize=7)
        ax.set_xlabel("speed-up over dense int8 (engine, one input)")
        ax.set_ylabel(label)
        ax.set_title(model)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="four configurations, one epoch on tiny data, for CI")
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help=f"the configurations to run, of {','.join(CONFIGS)} (each model's dense int8 row always runs)")
    ap.add_argument("--epochs", type=int, default=2, help="distillation epochs a configuration")
    ap.add_argument("--texts", type=int, default=512, help="MiniLM distillation texts")
    ap.add_argument("--corpus", default="fortunes", choices=list(CORPORA),
                    help="MiniLM distillation text: Debian's fortunes, WordNet's usage examples (wordnet-base), "
                         "or both")
    ap.add_argument("--crops", type=int, default=128, help="EfficientNet distillation crops")
    ap.add_argument("--lr", type=float, default=5e-5, help="MiniLM distillation learning rate")
    ap.add_argument("--lr-cnn", type=float, default=1e-4, help="EfficientNet distillation learning rate")
    ap.add_argument("--threads", type=int, default=1, help="engine threads for the latencies")
    ap.add_argument("--runs", type=int, default=20, help="timed runs a latency")
    ap.add_argument("--json", help="write the rows there")
    ap.add_argument("--plot", help="write the quality / speed-up plot (PNG) there")
    ap.add_argument("--orderings", action="store_true",
                    help="instead of the configurations: MiniLM's heads and FFN units removed by importance, in "
                         "reverse and at random, without fine-tuning")
    args = ap.parse_args(argv)
    if args.orderings:
        orderings(args.quick)
        return 0
    args.configs = QUICK if args.quick else args.configs.split(",")
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        ap.error(f"unknown configurations {sorted(unknown)}; choose from {','.join(CONFIGS)}")
    if args.quick:
        args.runs, args.epochs = 3, 1
    torch.manual_seed(0)
    rows = []
    if set(args.configs) & set(MINILM_CONFIGS):
        rows += MiniLMStudy(args).run()
    if set(args.configs) & set(CNN_CONFIGS):
        rows += EfficientNetStudy(args).run()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
