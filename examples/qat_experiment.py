"""Quantization-aware training (intinfer.qat) against post-training quantization (intinfer.quantize)
on two small models trained here from scratch, in a few minutes on 2 CPU cores:

* digits: a CNN (three Conv2d + BatchNorm2d + ReLU blocks, global average pool, Linear) on
  scikit-learn's 8x8 handwritten digits, 10 classes; the last 397 images are the test set.
* sentiment: a 2-layer BERT-style encoder, written as intinfer/models/minilm.py writes its layers
  (token and position embeddings, attention with a mask bias, GELU FFN, post-LayerNorm
  residuals), a Linear head and masked mean pooling, on sentences generated from templates:
  negations, intensifiers and "but" / "although" clauses make the label depend on how the words
  combine ("the plot was not bad" is positive, "the film was good but the ending was dull" negative).

For each seed and task the float model is trained (Adam), then exported with PTQ
(intinfer.quantize: GPTQ rounding, bias correction) and with QAT (a short fine-tune of the float
model with qat.prepare, then qat.convert) at each weight width. QAT trains with fake quantization
unless --exact-forward. Every int accuracy is that of the .iif run by the engine
(intinfer.load(...).run); for QAT the script also checks that the QAT module in eval mode (the
exact integer simulation) gives the engine's outputs bit for bit.

    python examples/qat_experiment.py                        # 3 seeds; 8-, 4- and 2-bit weights (~3.5 min)
    python examples/qat_experiment.py --quick                # 1 seed, a quarter of the steps: a smoke test
    python examples/qat_experiment.py --seeds 5 --weight-bits 8 4 --markdown qat.md
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import intinfer
from intinfer import qat
from intinfer.models import mean_pool

# -- data ------------------------------------------------------------------------------------------

def digits() -> tuple:
    """((x, y) train, (x, y) test): images [N, 1, 8, 8] normalized with the training mean and
    standard deviation, labels; the last 397 of the 1797 images are the test set."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target)
    x = (x - x[:-397].mean()) / x[:-397].std()
    return (x[:-397], y[:-397]), (x[-397:], y[-397:])


SUBJECTS = ["the film", "the movie", "the plot", "the acting", "the music", "the ending", "the story", "the cast",
            "the script", "the dialogue"]
POSITIVE = ["good", "great", "excellent", "wonderful", "brilliant", "enjoyable", "charming", "clever"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "dull", "weak", "clumsy", "tedious"]
INTENSIFIERS = ["very", "really", "quite", "truly", "rather", "so", "extremely"]
VERBS = {"like": True, "love": True, "enjoy": True, "admire": True, "hate": False, "dislike": False}
PAST = {"like": "liked", "love": "loved", "enjoy": "enjoyed", "admire": "admired", "hate": "hated",
        "dislike": "disliked"}
MAX_LEN = 16


def clause(rng: np.random.Generator) -> tuple[str, bool]:
    """One clause and whether it is positive: "the plot was not very good" or "i did not enjoy the film"."""
    negated = rng.random() < 0.4
    if rng.random() < 0.7:
        positive = rng.random() < 0.5
        words = [rng.choice(SUBJECTS), "was"]
        if negated:
            words.append(rng.choice(["not", "never"]))
        if rng.random() < 0.5:
            words.append(rng.choice(INTENSIFIERS))
        words.append(rng.choice(POSITIVE if positive else NEGATIVE))
    else:
        verb = rng.choice(list(VERBS))
        positive = VERBS[verb]
        words = ["i", "did", "not", verb] if negated else ["i", PAST[verb]]
        words.append(rng.choice(SUBJECTS))
    return " ".join(words), positive != negated


def sentence(rng: np.random.Generator) -> tuple[str, int]:
    """A clause alone, "A but B" or "although A , B" (B decides), or "B although A"."""
    (a, pos_a), (b, pos_b) = clause(rng), clause(rng)
    form = rng.integers(4)
    text = [a, f"{a} but {b}", f"although {a} , {b}", f"{b} although {a}"][form]
    return text, int(pos_a if form == 0 else pos_b)


def sentiment(n_train: int = 3000, n_test: int = 1000, seed: int = 0) -> tuple:
    """((ids, mask, y) train, (ids, mask, y) test, vocabulary size): distinct generated sentences
    (train and test disjoint) as word ids padded with 0 to MAX_LEN, masks (1 on words), labels."""
    rng = np.random.default_rng(seed)
    texts: dict[str, int] = {}
    while len(texts) < n_train + n_test:
        text, label = sentence(rng)
        texts.setdefault(text, label)
    vocab = {w: i + 1 for i, w in enumerate(sorted({w for t in texts for w in t.split()}))}
    ids = torch.zeros(len(texts), MAX_LEN, dtype=torch.long)
    for row, text in enumerate(texts):
        words = [vocab[w] for w in text.split()]
        ids[row, :len(words)] = torch.tensor(words)
    mask = (ids != 0).long()
    y = torch.tensor(list(texts.values()))
    return (ids[:n_train], mask[:n_train], y[:n_train]), (ids[n_train:], mask[n_train:], y[n_train:]), len(vocab) + 1


# -- models ----------------------------------------------------------------------------------------

def digits_cnn() -> nn.Module:
    def block(cin, cout, stride):
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(1, 16, 1), *block(16, 32, 2), *block(32, 32, 1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(32, 10))


class EncoderLayer(nn.Module):
    """A BERT layer, as intinfer/models/minilm.py's: attention, residual + LayerNorm, GELU FFN,
    residual + LayerNorm."""

    def __init__(self, hidden: int, heads: int, ffn: int):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.attn_out, self.attn_norm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden)
        self.ffn_in, self.ffn_out, self.ffn_norm = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden), nn.LayerNorm(hidden)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.reshape(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, s, hidden = x.shape
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        ctx = torch.matmul(torch.softmax(scores + mask_bias, dim=-1), v).permute(0, 2, 1, 3).reshape(b, s, hidden)
        x = self.attn_norm(self.attn_out(ctx) + x)
        return self.ffn_norm(self.ffn_out(F.gelu(self.ffn_in(x))) + x)


class TextClassifier(nn.Module):
    """forward(ids, mask) -> logits: embeddings + positions, LayerNorm, encoder layers, masked mean
    pooling, then the Linear head."""

    def __init__(self, vocab_size: int, hidden: int = 48, heads: int = 4, ffn: int = 96, layers: int = 2):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab_size, hidden), nn.Embedding(MAX_LEN, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn) for _ in range(layers))
        self.head = nn.Linear(hidden, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.tokens(ids) + self.positions.weight[:ids.shape[1]])
        mask_bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        return self.head(mean_pool(x, mask))


# -- the experiment --------------------------------------------------------------------------------

@dataclass
class Task:
    name: str
    build: Callable[[], nn.Module]
    train: tuple  # (inputs..., labels)
    test: tuple
    steps: int  # float training
    lr: float
    qat_steps: int
    qat_lr: float
    dynamic_shapes: tuple | None = None


def fit(model: nn.Module, data: tuple, steps: int, lr: float, seed: int, batch: int = 64) -> None:
    """Adam with a cosine learning-rate decay on random minibatches of `data` (inputs..., labels)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(data[-1]), (batch,), generator=gen)
        loss = F.cross_entropy(model(*(t[idx] for t in data[:-1])), data[-1][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def accuracy(logits, labels: torch.Tensor) -> float:
    return float((np.asarray(logits).argmax(1) == labels.numpy()).mean())


def engine_logits(qmodel, inputs: tuple, path: str) -> np.ndarray:
    """The logits of the exported .iif, run by intinfer on the whole test set."""
    qmodel.save(path)
    return intinfer.load(path, num_threads=1).run([t.numpy() for t in inputs])


def ptq(task: Task, model: nn.Module, calib: list, bits: int, path: str) -> np.ndarray:
    """The engine's test-set logits of the model quantized after training."""
    q = intinfer.quantize(model, calib[0], calib, dynamic_shapes=task.dynamic_shapes, weight_bits=bits)
    return engine_logits(q, task.test[:-1], path)


def qat_finetune(task: Task, model: nn.Module, calib: list, bits: int, exact: bool, seed: int, path: str) -> tuple:
    """Fine-tunes a quantization-aware copy of the float model; returns the engine's test-set
    logits of the converted model and those of the QAT module in eval mode."""
    cfg = qat.QATConfig(weight_bits=bits, freeze_bn_after=task.qat_steps * 2 // 3, averaging_constant=0.01,
                        exact_forward=exact)
    qm = qat.prepare(model, calib[0], cfg, dynamic_shapes=task.dynamic_shapes)
    fit(qm, task.train, task.qat_steps, task.qat_lr, seed)
    qm.eval()
    with torch.no_grad():
        simulated = qm(*task.test[:-1]).numpy()
    return engine_logits(qat.convert(qm), task.test[:-1], path), simulated


def run_task(task: Task, seed: int, bits: list, exact: bool, path: str, times: dict) -> tuple[dict, list]:
    """Test accuracy of each setting for one seed, and for each QAT run (name, eval mode == engine,
    max |difference|); adds the seconds of each part to `times`."""
    def timed(part, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        times[task.name, part] += time.perf_counter() - t
        return out

    torch.manual_seed(seed)
    model = task.build()
    timed("float training", fit, model, task.train, task.steps, task.lr, seed)
    model.eval()
    labels = task.test[-1]
    with torch.no_grad():
        result = {"float": accuracy(model(*task.test[:-1]), labels)}
    perm = torch.randperm(len(task.train[-1]), generator=torch.Generator().manual_seed(seed))[:512]
    calib = list(zip(*(t[perm].split(64) for t in task.train[:-1])))
    checks = []
    for b in bits:
        result[f"PTQ w{b}"] = accuracy(timed("PTQ", ptq, task, model, calib, b, path), labels)
        got, simulated = timed("QAT", qat_finetune, task, model, calib, b, exact, seed, path)
        result[f"QAT w{b}"] = accuracy(got, labels)
        checks.append((f"{task.name} seed {seed} w{b}", np.array_equal(simulated, got),
                       float(np.abs(simulated - got).max())))
    return result, checks


def tasks(quick: bool) -> list[Task]:
    s = 4 if quick else 1  # --quick: a quarter of the steps
    text_train, text_test, vocab_size = sentiment()
    batch, seq = torch.export.Dim("batch", max=4096), torch.export.Dim("seq", max=MAX_LEN)
    return [Task("digits", digits_cnn, *digits(), steps=600 // s, lr=3e-3, qat_steps=400 // s, qat_lr=1e-3),
            Task("sentiment", lambda: TextClassifier(vocab_size), text_train, text_test, steps=1500 // s, lr=2e-3,
                 qat_steps=300 // s, qat_lr=1e-3, dynamic_shapes=({0: batch, 1: seq},) * 2)]


def table(results: dict) -> str:
    """Markdown: one row per (task, setting), accuracies in % over the seeds."""
    lines = ["| task | setting | accuracy % (mean ± std) | min | per seed |", "|---|---|---|---|---|"]
    for (task, setting), accs in results.items():
        a = 100 * np.array(accs)
        std = a.std(ddof=1) if len(a) > 1 else 0.0
        lines.append(f"| {task} | {setting} | {a.mean():.2f} ± {std:.2f} | {a.min():.2f} | "
                     f"{', '.join(f'{v:.2f}' for v in a)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    ap.add_argument("--quick", action="store_true", help="1 seed and a quarter of the steps: a smoke test")
    ap.add_argument("--weight-bits", type=int, nargs="+", default=[8, 4, 2], help="weight widths (default 8 4 2)")
    ap.add_argument("--exact-forward", action="store_true",
                    help="QAT training sees the engine's integer values (QATConfig.exact_forward; about 4x slower "
                         "on the transformer) instead of fake quantization")
    ap.add_argument("--markdown", metavar="PATH", help="also write the table there")
    args = ap.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    torch.set_num_threads(1)  # models this small only lose to a second thread's synchronization
    start = time.perf_counter()

    results: dict = defaultdict(list)
    times: dict = defaultdict(float)
    checks = []
    with tempfile.TemporaryDirectory() as d:
        for task, seed in itertools.product(tasks(args.quick), range(seeds)):
            accs, task_checks = run_task(task, seed, args.weight_bits, args.exact_forward, os.path.join(d, "model.iif"),
                                        times)
            checks += task_checks
            for setting, acc in accs.items():
                results[task.name, setting].append(acc)
            print(f"{task.name} seed {seed}: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in accs.items()), flush=True)

    wall = time.perf_counter() - start
    text = "\n".join([
        table(results), "",
        "time (all seeds): " + "; ".join(f"{task} {part} {s:.0f} s" for (task, part), s in times.items()), "",
        f"QAT eval mode == engine (np.array_equal on the test sets): {sum(c[1] for c in checks)}/{len(checks)} runs", "",
        f"`python {' '.join(sys.argv)}`: {wall:.0f} s wall, 1 thread"])
    print("\n" + text)
    for name, equal, diff in checks:
        if not equal:
            print(f"MISMATCH {name}: max |eval - engine| = {diff:.3g}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 0 if all(c[1] for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
