"""The distillation loop (docs/distillation.md): a student learns a frozen teacher's outputs,
and optionally its hidden states and self-attention relations, on unlabeled (or labeled) data."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .losses import OUTPUT_LOSSES, embedding_loss, hinton, relation_kl

__all__ = ["History", "distill", "parameter_count"]

RELATIONS = {"qk": ("query", "key"), "vv": ("value", "value"), "qq": ("query", "query"), "kk": ("key", "key")}


@dataclass
class History:
    """What a distillation did: the mean loss of each epoch (those of a resumed checkpoint
    included), the optimizer steps taken in this call, its seconds, and the epoch it resumed at
    (0: a fresh start)."""
    losses: list = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    resumed_at: int = 0


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _inputs(batch) -> tuple:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def _output_loss(loss, temperature: float, alpha: float) -> Callable:
    if loss is None:
        return lambda s, t, y: 0.0
    if callable(loss):
        return lambda s, t, y: loss(s, t)
    if loss not in OUTPUT_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {list(OUTPUT_LOSSES)} or a callable "
                         "loss(student, teacher)")
    if loss == "kl":
        return lambda s, t, y: hinton(s, t, y, temperature, alpha)
    return lambda s, t, y: embedding_loss(s, t, loss)


class _Capture:
    """Forward hooks that keep the outputs of named modules (the first element of a tuple), and
    for attention layers the query/key/value projections and the additive key mask."""

    def __init__(self, model: torch.nn.Module, hidden: Sequence[str], attention: Sequence[str], side: str):
        modules = dict(model.named_modules())
        self.values: dict = {}
        self.handles = []
        for name in hidden:
            self._module(modules, name, side)
            self.handles.append(modules[name].register_forward_hook(self._keep(("hidden", name))))
        for name in attention:
            layer = self._module(modules, name, side)
            parts = [getattr(layer, p, None) for p in ("query", "key", "value")]
            if not all(isinstance(p, torch.nn.Linear) for p in parts) or not hasattr(layer, "heads"):
                raise ValueError(f"the {side}'s module '{name}' ({type(layer).__name__}) is not an attention layer "
                                 "with query/key/value Linear projections and a head count (intinfer.models.MiniLM's "
                                 "layers); attention relations need one")
            for p, module in zip(("query", "key", "value"), parts):
                self.handles.append(module.register_forward_hook(self._keep((p, name))))
            self.handles.append(layer.register_forward_pre_hook(self._keep_mask(name)))

    @staticmethod
    def _module(modules: dict, name: str, side: str) -> torch.nn.Module:
        if name not in modules:
            raise ValueError(f"the {side} has no module '{name}'")
        return modules[name]

    def _keep(self, key):
        def hook(module, args, output):
            self.values[key] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    def _keep_mask(self, name):
        def hook(module, args):
            if len(args) < 2 or not isinstance(args[1], torch.Tensor):
                raise ValueError(f"attention layer '{name}' was not called as layer(x, mask_bias)")
            self.values[("mask", name)] = args[1]
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _check_pairs(pairs, what: str) -> list:
    pairs = [tuple(p) for p in pairs]
    for p in pairs:
        if len(p) != 2 or not all(isinstance(n, str) for n in p):
            raise ValueError(f"{what} must be (student module, teacher module) name pairs, got {p!r}")
    return pairs


def _fingerprint(**values) -> dict:
    return {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in values.items()}


def distill(student: torch.nn.Module, teacher: torch.nn.Module, data, loss, *, teacher_data=None, labels=None,
            temperature: float = 4.0, alpha: float = 0.5, hidden_states=(), hidden_weight: float = 1.0,
            attention=(), attention_weight: float = 1.0, relations=("qk", "vv"), relation_heads: int | None = None,
            epochs: int = 1, lr: float = 1e-4, weight_decay: float = 0.0, seed: int = 0, masks=None,
            train_mode: bool = False, allow_larger: bool = False, checkpoint=None, progress: bool = True,
            log: Callable | None = None) -> History:
    """Trains `student` in place to give `teacher`'s outputs (the teacher stays frozen).

    data: a list of batches, each a tensor or a tuple of tensors the student is called with;
    teacher_data: the teacher's batches where its inputs differ (a student with a shrunk
    vocabulary reads other token ids), default `data`. loss: "kl" (Hinton: soft targets at
    `temperature`, plus the cross entropy with `labels`, a list of class-index tensors matching
    `data`, weighted 1 - `alpha`, when given), "cosine" or "mse" (embeddings), a callable
    loss(student_output, teacher_output) -> scalar, or None: the hidden-state and attention terms
    alone (TinyBERT's intermediate-layer stage).
    hidden_states: (student module, teacher module) pairs whose outputs are matched by mean squared
    error, through a learned linear projection where the widths differ (trained with the student,
    dropped after), weighted `hidden_weight`. attention: (student layer, teacher layer) pairs of
    intinfer.models.MiniLM attention layers whose self-attention `relations` ("qk": attention
    distributions, "vv": value relation, as MiniLM) are matched by KL divergence over
    `relation_heads` heads (default the teacher layer's), weighted `attention_weight`.
    Adam at `lr`; the batches are visited in an order drawn from `seed`; `masks` (an
    intinfer.prune.Masks) keep pruned weights at zero. The student runs in eval mode (batch norms
    on their running statistics, no dropout) unless `train_mode`. A student with more parameters
    than the teacher is refused unless `allow_larger` (an intinfer.qat copy of a model as large as
    its teacher carries its quantizers' parameters too). checkpoint: a file written after
    every epoch; when it exists, the run resumes from it and ends as an uninterrupted run would.
    progress: a line on stderr; log(epoch, mean_loss) after each epoch.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr}")
    batches = [_inputs(b) for b in data]
    if not batches:
        raise ValueError("no data: distillation needs at least one batch")
    teacher_batches = batches if teacher_data is None else [_inputs(b) for b in teacher_data]
    if len(teacher_batches) != len(batches):
        raise ValueError(f"teacher_data has {len(teacher_batches)} batches, data {len(batches)}")
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(batches):
            raise ValueError(f"labels has {len(labels)} batches, data {len(batches)}")
        if loss != "kl":
            raise ValueError("labels are used by the 'kl' loss (Hinton's soft and hard targets) only")
    if parameter_count(student) > parameter_count(teacher) and not allow_larger:
        raise ValueError(f"the student has {parameter_count(student):,} parameters, more than the teacher's "
                         f"{parameter_count(teacher):,}: distillation compresses a teacher into a smaller student")
    output_loss = _output_loss(loss, temperature, alpha)
    hidden_pairs = _check_pairs(hidden_states, "hidden_states")
    attention_pairs = _check_pairs(attention, "attention")
    if loss is None and not (hidden_pairs or attention_pairs):
        raise ValueError("loss=None matches hidden states or attention relations only, and none are given")
    for r in relations:
        if r not in RELATIONS:
            raise ValueError(f"unknown relation {r!r}; use some of {sorted(RELATIONS)}")
    if attention_pairs and not relations:
        raise ValueError("attention pairs given with no relations to match")

    teacher_capture = _Capture(teacher, [t for _, t in hidden_pairs], [t for _, t in attention_pairs], "teacher")
    student_capture = _Capture(student, [s for s, _ in hidden_pairs], [s for s, _ in attention_pairs], "student")
    was_training = student.training, teacher.training
    handle = None
    try:
        teacher.eval()
        student.train(train_mode)
        gen = torch.Generator().manual_seed(seed)
        cached: dict = {}

        def teacher_out(i: int):
            if i not in cached or hidden_pairs or attention_pairs:
                with torch.no_grad():
                    cached[i] = teacher(*teacher_batches[i])
            return cached[i]

        # One forward of the first batch gives the widths the projections need.
        target = teacher_out(0)
        with torch.no_grad():
            first = student(*batches[0])
        if isinstance(loss, str) and first.shape[1:] != target.shape[1:]:
            raise ValueError(f"the student's output has shape {list(first.shape)}, the teacher's "
                             f"{list(target.shape)}: give a narrower student a projection to the teacher's "
                             "width (e.g. torch.nn.Sequential(student, torch.nn.Linear(...))), or match hidden states "
                             "only (loss=None)")
        projections = torch.nn.ModuleDict()
        for k, (s, t) in enumerate(hidden_pairs):
            ws = student_capture.values[("hidden", s)].shape[-1]
            wt = teacher_capture.values[("hidden", t)].shape[-1]
            if ws != wt:
                proj = torch.nn.Linear(ws, wt, bias=False)
                with torch.no_grad():
                    proj.weight.normal_(0.0, 1.0 / math.sqrt(ws), generator=gen)
                projections[str(k)] = proj
        heads = [relation_heads or teacher.get_submodule(t).heads for _, t in attention_pairs]

        params = list(student.parameters()) + list(projections.parameters())
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        if masks is not None:
            handle = masks.attach(student, opt)
        fingerprint = _fingerprint(batches=len(batches), epochs=epochs, lr=lr, seed=seed, loss=str(loss),
                                   hidden=hidden_pairs, attention=attention_pairs, relations=relations)
        history = History()
        start = 0
        if checkpoint is not None and Path(checkpoint).exists():
            state = torch.load(checkpoint, weights_only=False)
            if state.get("fingerprint") != fingerprint:
                raise ValueError(f"checkpoint {checkpoint} is of another distillation ({state.get('fingerprint')}); "
                                 f"this one is {fingerprint}: remove it or pass another path")
            student.load_state_dict(state["student"])
            projections.load_state_dict(state["projections"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            history.losses = list(state["losses"])
            start = history.resumed_at = state["epoch"]

        def step_loss(i: int) -> torch.Tensor:
            target = teacher_out(i)
            out = student(*batches[i])
            total = output_loss(out, target, labels[i] if labels is not None else None)
            for k, (s, t) in enumerate(hidden_pairs):
                hs = student_capture.values[("hidden", s)]
                if str(k) in projections:
                    hs = projections[str(k)](hs)
                total = total + hidden_weight * torch.nn.functional.mse_loss(hs, teacher_capture.values[("hidden", t)])
            for (s, t), h in zip(attention_pairs, heads):
                mask_bias = teacher_capture.values[("mask", t)]
                query_mask = (mask_bias[:, 0, 0, :] == 0)
                for r in relations:
                    a, b = RELATIONS[r]
                    total = total + attention_weight * relation_kl(
                        (student_capture.values[(a, s)], student_capture.values[(b, s)]),
                        (teacher_capture.values[(a, t)], teacher_capture.values[(b, t)]), h, mask_bias, query_mask)
            return total

        began = time.perf_counter()
        for epoch in range(start, epochs):
            order = torch.randperm(len(batches), generator=gen).tolist()
            total = 0.0
            for n, i in enumerate(order):
                value = step_loss(i)
                if not torch.isfinite(value):
                    raise FloatingPointError(f"the distillation loss is {value.item()} at epoch {epoch + 1}, "
                                             f"batch {i}: lower lr")
                opt.zero_grad()
                value.backward()
                opt.step()
                total += value.item()
                history.steps += 1
                if progress:
                    print(f"\rdistill: epoch {epoch + 1}/{epochs} batch {n + 1}/{len(batches)} "
                          f"loss {total / (n + 1):.5f}", end="", file=sys.stderr, flush=True)
            history.losses.append(total / len(batches))
            if log is not None:
                log(epoch, history.losses[-1])
            if checkpoint is not None:
                tmp = f"{checkpoint}.tmp"
                torch.save({"fingerprint": fingerprint, "epoch": epoch + 1, "student": student.state_dict(),
                            "projections": projections.state_dict(), "optimizer": opt.state_dict(),
                            "generator": gen.get_state(), "losses": history.losses}, tmp)
                os.replace(tmp, checkpoint)
        if progress and epochs > start:
            print(file=sys.stderr)
        history.seconds = time.perf_counter() - began
        return history
    finally:
        if handle is not None:
            handle.remove()
        teacher_capture.remove()
        student_capture.remove()
        student.train(was_training[0])
        teacher.train(was_training[1])
