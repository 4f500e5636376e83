"""intinfer.compress: a pipeline of distillation, pruning and quantization stages in the order a
user gives, each stage's size, quality and latency measured on the engine (docs/compression.md).

    from intinfer import compress, distill
    task = compress.EncoderTask(train_texts, held_out_texts, pairs=(a, b, human_scores))
    result = compress.compress(teacher, task, [
        compress.Distill(lambda m: distill.take_layers(m, every=2), epochs=2),
        compress.Prune(0.7, epochs=2),
        compress.Quantize(bits=8, qat=True, epochs=1)])
    print(result.table()); result.save("student.iif")

Every stage distills from the original teacher (the float model given), so an order changes what
the student is made of and when, not whom it learns from.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from . import distill as _distill
from .prune import DEFAULT_BLOCK, Masks, iterative_prune

__all__ = ["ClassifierTask", "Distill", "EncoderTask", "MeanPooled", "Prune", "Quantize", "Record", "Result",
           "compress", "median_ms"]


# ----------------------------------------------------------------------------------------------
# Stages
# ----------------------------------------------------------------------------------------------

@dataclass
class Distill:
    """A student made by `student(model)` from the model so far (e.g. distill.take_layers(m,
    every=2)), distilled from the teacher for `epochs` at `lr`. Its hidden_states / attention
    pairs (module paths of the task's wrapped models) pass through to intinfer.distill.distill."""
    student: Callable
    epochs: int = 1
    lr: float = 1e-4
    hidden_states: Sequence = ()
    attention: Sequence = ()
    name: str = "distill"


@dataclass
class Prune:
    """Magnitude pruning of the task's prunable layers to `sparsity` in 1 x `block` blocks, in
    `rounds` steps of the cubic schedule with one distillation epoch after each, then `epochs` -
    `rounds` more (Han et al.: prune, retrain, repeat). The zeros are kept by every later stage."""
    sparsity: float
    block: int = DEFAULT_BLOCK
    epochs: int = 1
    rounds: int = 1
    lr: float = 1e-4
    name: str = "prune"


@dataclass
class Quantize:
    """The engine's integer model at `bits` (2-8, or a dict {module path: bits}): post-training
    quantization, or with `qat` quantization-aware distillation from the teacher for `epochs` at
    `lr` (intinfer.qat: training sees the engine's own arithmetic). wide_ffn: as
    `intinfer.quantize`'s (a transformer's FFN activation kept wide). The last stage."""
    bits: int | dict = 8
    qat: bool = False
    epochs: int = 1
    lr: float = 1e-5
    wide_ffn: bool = False
    name: str = "quantize"


STAGES = (Distill, Prune, Quantize)


def _check_order(stages: Sequence) -> None:
    if not stages:
        raise ValueError("no stages: give at least one of Distill, Prune, Quantize")
    for i, stage in enumerate(stages):
        if not isinstance(stage, STAGES):
            raise TypeError(f"stage {i} is a {type(stage).__name__}; stages are Distill, Prune or Quantize")
        if isinstance(stage, Prune) and not 0 < stage.sparsity < 1:
            raise ValueError(f"stage {i}: sparsity must be in (0, 1), got {stage.sparsity}")
        if isinstance(stage, Prune) and not 1 <= stage.rounds <= max(stage.epochs, 1):
            raise ValueError(f"stage {i}: rounds must be 1..max(epochs, 1), got {stage.rounds} with {stage.epochs} "
                             "epochs")
        if getattr(stage, "epochs", 0) < 0:
            raise ValueError(f"stage {i}: epochs must be >= 0, got {stage.epochs}")
    for i, stage in enumerate(stages[:-1]):
        if isinstance(stage, Quantize):
            after = stages[i + 1]
            bits = stage.bits if isinstance(stage.bits, int) else min(stage.bits.values(), default=8)
            if isinstance(after, Prune) and bits <= 2:
                raise ValueError(f"stage {i + 1} prunes after 2-bit quantization (stage {i}): a 2-bit weight is -1, 0 "
                                 "or 1, which leaves magnitude nothing to choose by; prune before quantizing")
            raise ValueError(f"stage {i + 1} ({type(after).__name__}) comes after quantization (stage {i}): the "
                             "integer model Quantize writes ends the pipeline; put Quantize last (with qat=True the "
                             "quantized model is trained by distillation)")


# ----------------------------------------------------------------------------------------------
# Tasks: what the pipeline needs to know about a kind of model
# ----------------------------------------------------------------------------------------------

def median_ms(fn, runs: int) -> float:
    """The median of `runs` timed calls of fn() after one untimed call, in milliseconds."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


class MeanPooled(torch.nn.Module):
    """A transformers encoder's last hidden state averaged over the real tokens (sentence-
    transformers' mean pooling): forward(input_ids, attention_mask) -> [B, hidden]."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        keep = attention_mask.unsqueeze(-1).to(h.dtype)
        return (h * keep).sum(1) / torch.clamp(keep.sum(1), min=1e-9)


def _is_minilm(model) -> bool:
    from .models.minilm import MiniLM

    return isinstance(model, MiniLM)


class EncoderTask:
    """A sentence encoder, and the students made from it: an intinfer.models.MiniLM (its
    WordPieceTokenizer), or a transformers encoder (MPNet, BERT, ...) with its tokenizers.Tokenizer
    attached as `model.tokenizer`. Distilled on `train_texts` by 1 - cosine of the mean-pooled
    embedding; quality on `held_out_texts`: the mean cosine with the teacher's embeddings, and
    with `pairs` (sentences a, sentences b, human scores) the Spearman correlation of the pairs'
    similarities with the teacher's and with the human scores. Texts are cut at `max_seq` tokens.
    Latency: one sentence (the first held-out text), median of `runs`."""

    loss = "cosine"

    def __init__(self, train_texts, held_out_texts, pairs=None, batch_size: int = 16, max_seq: int = 128,
                 calibration_batches: int = 8, runs: int = 20, num_threads: int | None = 1):
        self.train_texts = [t for t in train_texts if t.strip()]
        self.held_out = [t for t in held_out_texts if t.strip()]
        if not self.train_texts:
            raise ValueError("the training corpus is empty")
        if not self.held_out:
            raise ValueError("the held-out texts are empty")
        if pairs is not None and not (len(pairs[0]) == len(pairs[1]) == len(pairs[2]) > 1):
            raise ValueError("pairs must be (sentences a, sentences b, human scores) of one length > 1")
        self.pairs = pairs
        self.batch_size, self.max_seq = batch_size, max_seq
        self.calibration_batches, self.runs, self.num_threads = calibration_batches, runs, num_threads
        self._tokenizers: dict = {}

    def _check(self, model) -> None:
        tokenizer = getattr(model, "tokenizer", None)
        if _is_minilm(model) and tokenizer is not None:
            return
        if hasattr(model, "config") and type(tokenizer).__module__.startswith("tokenizers"):
            return
        raise TypeError(f"EncoderTask takes an intinfer.models.MiniLM with a tokenizer, or a transformers encoder "
                        f"with its tokenizers.Tokenizer as .tokenizer; got {type(model).__name__} with "
                        f"{type(tokenizer).__name__}")

    def _hf_tokenizer(self, tokenizer):
        """A copy of a tokenizers.Tokenizer cutting at max_seq and padding to the longest text."""
        key = id(tokenizer)
        if key not in self._tokenizers:
            copy_ = type(tokenizer).from_str(tokenizer.to_str())
            copy_.enable_truncation(max_length=self.max_seq)
            padding = tokenizer.padding
            if padding is None:
                token = next((t for t in ("<pad>", "[PAD]") if tokenizer.token_to_id(t) is not None), None)
                if token is None:
                    raise ValueError("the tokenizer pads with no token and has neither <pad> nor [PAD]: "
                                     "enable_padding() on it first")
                padding = {"pad_id": tokenizer.token_to_id(token), "pad_token": token}
            copy_.enable_padding(pad_id=padding["pad_id"], pad_token=padding["pad_token"])
            self._tokenizers[key] = (tokenizer, copy_)  # the original kept alive: its id stays its own
        return self._tokenizers[key][1]

    def _tokens(self, model, texts) -> list:
        self._check(model)
        out = []
        for i in range(0, len(texts), self.batch_size):
            chunk = texts[i:i + self.batch_size]
            if _is_minilm(model):
                enc = model.tokenizer.encode(chunk, max_length=self.max_seq)
                out.append(tuple(torch.from_numpy(enc[k]).long()
                                 for k in ("input_ids", "attention_mask", "token_type_ids")))
            else:
                enc = self._hf_tokenizer(model.tokenizer).encode_batch(chunk)
                out.append(tuple(torch.tensor([getattr(e, k) for e in enc]) for k in ("ids", "attention_mask")))
        return out

    def wrap(self, model):
        from .models.minilm import PooledEncoder

        self._check(model)
        return (PooledEncoder(model) if _is_minilm(model) else MeanPooled(model)).eval()

    def batches(self, model) -> list:
        return self._tokens(model, self.train_texts)

    def labels(self):
        return None

    def prunable(self, model) -> list:
        """Module paths (of the wrapped model) of the layers' linear maps: the embeddings stay."""
        prefix, stack = ("bert.", "layers.") if _is_minilm(model) else ("encoder.", "encoder.layer.")
        return [prefix + n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.startswith(stack)]

    def export_options(self, model) -> dict:
        dims = {0: torch.export.Dim("batch", max=1024), 1: torch.export.Dim("seq", max=self.max_seq)}
        return {"dynamic_shapes": (dims,) * (3 if _is_minilm(model) else 2)}

    def ptq_options(self) -> dict:
        return {"smooth": True, "bias_correction": "total"}

    def _embed(self, run, model, texts) -> np.ndarray:
        out = []
        for xs in self._tokens(model, texts):
            e = np.asarray(run(xs), dtype=np.float64)
            out.append(e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out)

    def _quality(self, run, model) -> dict:
        """cosine: only where the model's embedding is as wide as the teacher's (a published
        student of another width is judged by the pairs alone)."""
        emb = self._embed(run, model, self.held_out)
        q = {}
        if emb.shape[1] == self.reference["held_out"].shape[1]:
            q["cosine"] = float((emb * self.reference["held_out"]).sum(1).mean())
        if self.pairs is not None:
            a, b = (self._embed(run, model, list(s)) for s in self.pairs[:2])
            sims = (a * b).sum(1)
            q["spearman_teacher"] = _spearman(sims, self.reference["pair_sims"])
            q["spearman_human"] = _spearman(sims, self.pairs[2])
        return q

    def _torch_run(self, model):
        wrapped = self.wrap(model)

        def run(xs):
            with torch.no_grad():
                return wrapped(*xs).numpy()
        return run

    def prepare(self, teacher) -> None:
        self._check(teacher)
        run = self._torch_run(teacher)
        self.reference = {"held_out": self._embed(run, teacher, self.held_out)}
        if self.pairs is not None:
            a, b = (self._embed(run, teacher, list(s)) for s in self.pairs[:2])
            self.reference["pair_sims"] = (a * b).sum(1)

    def evaluate_float(self, model) -> tuple[dict, float]:
        run = self._torch_run(model)
        x = self._tokens(model, self.held_out[:1])[0]
        threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads or threads)
        try:
            latency = median_ms(lambda: run(x), self.runs)
        finally:
            torch.set_num_threads(threads)
        return self._quality(run, model), latency

    def evaluate_engine(self, engine, model) -> tuple[dict, float]:
        def run(xs):
            return engine.run([x.numpy() for x in xs])
        x = self._tokens(model, self.held_out[:1])[0]
        return self._quality(run, model), median_ms(lambda: run(x), self.runs)


class ClassifierTask:
    """A classifier on tensors: distilled on `train_x` by Hinton's soft targets (with the hard
    labels `train_y` too when given); quality on `test_x`: the agreement of the top class with the
    teacher's, and the accuracy when `test_y` is given. Latency: one example, median of `runs`."""

    loss = "kl"

    def __init__(self, train_x, test_x, train_y=None, test_y=None, batch_size: int = 32, temperature: float = 4.0,
                 runs: int = 50, num_threads: int | None = 1):
        self.train_x, self.test_x = torch.as_tensor(train_x), torch.as_tensor(test_x)
        if len(self.train_x) == 0 or len(self.test_x) == 0:
            raise ValueError("the training and test sets must not be empty")
        self.train_y = None if train_y is None else torch.as_tensor(train_y).long()
        self.test_y = None if test_y is None else np.asarray(test_y)
        self.batch_size, self.temperature, self.runs, self.num_threads = batch_size, temperature, runs, num_threads

    def wrap(self, model):
        return model.eval()

    def batches(self, model) -> list:
        return list(self.train_x.split(self.batch_size))

    def labels(self):
        return None if self.train_y is None else list(self.train_y.split(self.batch_size))

    def prunable(self, model) -> list:
        return [n for n, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) or (isinstance(m, torch.nn.Conv2d) and m.groups == 1)]

    def export_options(self, model) -> dict:
        return {"dynamic_shapes": ({0: torch.export.Dim("batch", max=4096)},)}

    def ptq_options(self) -> dict:
        return {}

    def _quality(self, logits: np.ndarray) -> dict:
        top = logits.argmax(1)
        q = {"agreement": float((top == self.reference).mean())}
        if self.test_y is not None:
            q["accuracy"] = float((top == self.test_y).mean())
        return q

    def prepare(self, teacher) -> None:
        with torch.no_grad():
            self.reference = teacher.eval()(self.test_x).argmax(1).numpy()

    def evaluate_float(self, model) -> tuple[dict, float]:
        model.eval()
        x = self.test_x[:1]
        with torch.no_grad():
            logits = model(self.test_x).numpy()
            return self._quality(logits), median_ms(lambda: model(x), self.runs)

    def evaluate_engine(self, engine, model) -> tuple[dict, float]:
        logits = engine.run(self.test_x.numpy())
        x = self.test_x[:1].numpy()
        return self._quality(logits), median_ms(lambda: engine.run(x), self.runs)


# ----------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------

@dataclass
class Record:
    """One row of the study: after `stage`, the model's parameters, its .iif's bytes (int8 after a
    float stage; the stage's own file after Quantize), the teacher's fp32 bytes over those,
    the quality and latency (ms) of that file on the engine, and the stage's seconds."""
    stage: str
    parameters: int
    bytes: int
    ratio: float
    quality: dict
    latency_ms: float
    seconds: float


@dataclass
class Result:
    """The records (the fp32 teacher on torch first), the final float model and the final
    QuantizedModel (`save(path)`); with a QAT stage, `qat_model` (its eval mode computes what the
    engine computes on the file, bit for bit)."""
    records: list = field(default_factory=list)
    model: torch.nn.Module | None = None
    quantized: object = None
    qat_model: torch.nn.Module | None = None

    def save(self, path) -> None:
        self.quantized.save(path)

    def table(self) -> str:
        keys = sorted({k for r in self.records for k in r.quality})
        head = ["stage", "params", "bytes", "ratio", *keys, "latency ms", "seconds"]
        rows = [[r.stage, f"{r.parameters:,}", f"{r.bytes:,}", f"{r.ratio:.1f}x",
                 *(f"{r.quality[k]:.4f}" if k in r.quality else "-" for k in keys),
                 f"{r.latency_ms:.2f}", f"{r.seconds:.0f}"] for r in self.records]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
        return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _zero_masks(model: torch.nn.Module, paths: list, block: int) -> Masks | None:
    """The masks of the weights a Prune stage zeroed, found again in a later stage's model (whose
    layers may have moved or narrowed): the exact zeros of the prunable layers."""
    modules = dict(model.named_modules())
    masks = {p: modules[p].weight.detach() != 0 for p in paths if p in modules}
    masks = {p: m for p, m in masks.items() if not bool(m.all())}
    return Masks(masks, block) if masks else None


def _divisible(wrapped, paths: list, block: int) -> list:
    """The prunable layers whose reduction length (a linear's inputs, a conv's input channels x
    kernel: the engine's OHWI rows) the block divides; a stem conv of 1 or 3 channels stays dense."""
    modules = dict(wrapped.named_modules())
    keep = [p for p in paths if modules[p].weight[0].numel() % block == 0]
    if not keep:
        raise ValueError(f"no prunable layer has a reduction length that block {block} divides")
    return keep


class _Pipeline:
    def __init__(self, teacher, task, seed: int, progress: bool):
        self.teacher, self.task, self.seed, self.progress = teacher, task, seed, progress
        self.wrapped_teacher = task.wrap(teacher)
        self.teacher_batches = task.batches(teacher)
        self.block: int | None = None

    def say(self, text: str) -> None:
        if self.progress:
            print(f"compress: {text}", file=sys.stderr, flush=True)

    def masks(self, model) -> Masks | None:
        if self.block is None:
            return None
        return _zero_masks(self.task.wrap(model), self.task.prunable(model), self.block)

    def train(self, wrapped, batches: list, epochs: int, lr: float, masks=None, **options) -> None:
        """Distils `wrapped` (reading `batches`) from the teacher; `options` pass to distill()."""
        if epochs == 0:
            return
        _distill.distill(wrapped, self.wrapped_teacher, batches, self.task.loss, teacher_data=self.teacher_batches,
                         labels=self.task.labels(), temperature=getattr(self.task, "temperature", 4.0),
                         epochs=epochs, lr=lr, seed=self.seed, masks=masks, progress=self.progress, **options)

    def distill(self, stage: Distill, model):
        student = stage.student(model)
        if not isinstance(student, torch.nn.Module):
            raise TypeError(f"Distill's student builder returned {type(student).__name__}, not a torch module")
        self.train(self.task.wrap(student), self.task.batches(student), stage.epochs, stage.lr, self.masks(student),
                   hidden_states=stage.hidden_states, attention=stage.attention)
        return student

    def prune(self, stage: Prune, model):
        model = copy.deepcopy(model)
        wrapped = self.task.wrap(model)
        if self.block is not None and self.block != stage.block:
            raise ValueError(f"a Prune stage with block {stage.block} after one with block {self.block}: "
                             "give both one block size")
        self.block = stage.block
        paths = _divisible(wrapped, self.task.prunable(model), stage.block)
        before = self.masks(model)
        batches = self.task.batches(model)

        def fine_tune(_, masks):
            self.train(wrapped, batches, 1 if stage.epochs else 0, stage.lr, masks)

        masks = iterative_prune(wrapped, stage.sparsity, stage.rounds, fine_tune, block=stage.block, layers=paths,
                                masks=before)
        self.train(wrapped, batches, max(stage.epochs - stage.rounds, 0), stage.lr, masks)
        return model

    def quantize(self, stage: Quantize, model, result: Result):
        from . import qat, quantize

        wrapped = self.task.wrap(model)
        batches = self.task.batches(model)
        options = self.task.export_options(model)
        if not stage.qat:
            calibration = batches[:getattr(self.task, "calibration_batches", 8)]
            return quantize(wrapped, calibration[0], calibration, weight_bits=stage.bits, wide_ffn=stage.wide_ffn,
                            **options, **self.task.ptq_options())
        student = qat.prepare(wrapped, batches[0], qat.QATConfig(weight_bits=stage.bits, wide_ffn=stage.wide_ffn),
                              masks=self.masks(model),
                              smooth_with=batches[:4] if self.task.ptq_options().get("smooth") else None,
                              **options).train()
        with torch.no_grad():
            for xs in batches:
                student(*(xs if isinstance(xs, tuple) else (xs,)))
        self.train(student, batches, stage.epochs, stage.lr, train_mode=True, allow_larger=True)
        result.qat_model = student.eval()
        return qat.convert(student)

    def measure(self, name: str, model, quantized, seconds: float) -> Record:
        from . import load

        data = quantized.to_bytes()
        engine = load(data, num_threads=getattr(self.task, "num_threads", None))
        quality, latency = self.task.evaluate_engine(engine, model)
        teacher_bytes = 4 * _distill.parameter_count(self.teacher)
        record = Record(name, _distill.parameter_count(model), len(data), teacher_bytes / len(data), quality, latency,
                        seconds)
        self.say(f"{name}: {record.bytes:,} bytes ({record.ratio:.1f}x), {quality}, {latency:.2f} ms")
        return record


def compress(teacher: torch.nn.Module, task, stages: Sequence, *, seed: int = 0, progress: bool = True,
             measure: bool = True) -> Result:
    """Runs `stages` (Distill, Prune, Quantize; Quantize last) on a copy of the float `teacher`
    for `task` (EncoderTask, ClassifierTask, or an object with their methods), every distillation
    from the teacher. Records the teacher (fp32 on torch) and, with `measure`, each stage's model
    as an .iif on the engine (int8 post-training quantization after a float stage); the final
    model is quantized at int8 when no Quantize stage ends the list. Deterministic under `seed`.
    Returns a Result."""
    stages = list(stages)
    _check_order(stages)
    task.prepare(teacher)
    pipeline = _Pipeline(teacher, task, seed, progress)
    quality, latency = task.evaluate_float(teacher)
    result = Result([Record("teacher (fp32, torch)", _distill.parameter_count(teacher),
                            4 * _distill.parameter_count(teacher), 1.0, quality, latency, 0.0)])
    model = copy.deepcopy(teacher)
    for i, stage in enumerate(stages):
        pipeline.say(f"stage {i + 1}/{len(stages)}: {stage.name}")
        began = time.perf_counter()
        quantized = None
        if isinstance(stage, Distill):
            model = pipeline.distill(stage, model)
        elif isinstance(stage, Prune):
            model = pipeline.prune(stage, model)
        else:
            quantized = pipeline.quantize(stage, model, result)
        seconds = time.perf_counter() - began
        if measure or i == len(stages) - 1:
            if quantized is None:
                quantized = pipeline.quantize(Quantize(), model, result)
            result.records.append(pipeline.measure(stage.name, model, quantized, seconds))
    result.model, result.quantized = model, quantized
    return result
