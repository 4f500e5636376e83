"""Per-layer Hessian sensitivity of a float model (Q-BERT, HAWQ-V2): which layers bear fewer bits.

    s = intinfer.sensitivity(model, example_inputs, batches)     # loss: the model's own outputs
    print(s)                  # the table, most sensitive first
    s.plot("sensitivity.png")

For each weight of a Conv1d/Conv2d/Linear/Embedding layer, with the other weights held, the
loss's Hessian block of that weight is probed through Hessian-vector products
(torch.autograd, double backward) averaged over the batches: its top eigenvalue by power
iteration (Q-BERT) and its trace by Hutchinson's estimator, E[z^T H z] over Rademacher vectors z
(HAWQ-V2). No labels are needed: by default the loss compares the model with its own float
outputs on the same inputs, which is zero with a zero gradient at the float weights, so the
Hessian is what quantization's perturbation meets first (docs/mixed_precision.md).
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from .export import _as_inputs, _on_one_torch_thread
from .quant import layer_scales, round_weights, weight_qmax

LAYER_TYPES = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding)


def kl_to_reference(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """KL(softmax(reference) || softmax(output)) over the last axis, averaged over the rest:
    for classifiers (logits)."""
    p = torch.log_softmax(reference, -1)
    return torch.sum(p.exp() * (p - torch.log_softmax(output, -1)), -1).mean()


def cosine_to_reference(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """1 - cosine(output, reference) over the last axis, averaged over the rest: for encoders
    (hidden states, embeddings)."""
    return (1 - torch.nn.functional.cosine_similarity(output, reference, dim=-1)).mean()


LOSSES = {"kl": kl_to_reference, "cosine": cosine_to_reference}


@dataclass
class LayerSensitivity:
    name: str
    kind: str
    parameters: int
    top_eigenvalue: float
    trace: float

    @property
    def mean_trace(self) -> float:
        """trace / parameters: HAWQ-V2's per-parameter sensitivity."""
        return self.trace / self.parameters


class Sensitivity:
    """Per-layer results, in the model's order; str() is a table, the most sensitive first."""

    def __init__(self, layers: list, loss: str, batches: int, iterations: int, samples: int, seed: int):
        self.layers = layers
        self.loss, self.batches, self.iterations, self.samples, self.seed = loss, batches, iterations, samples, seed

    def __getitem__(self, name: str) -> LayerSensitivity:
        for r in self.layers:
            if r.name == name:
                return r
        raise KeyError(f"no layer '{name}'; layers: {[r.name for r in self.layers]}")

    def to_dict(self) -> dict:
        return {"loss": self.loss, "batches": self.batches, "iterations": self.iterations, "samples": self.samples,
                "seed": self.seed, "layers": [dict(asdict(r), mean_trace=r.mean_trace) for r in self.layers]}

    def __str__(self) -> str:
        rows = sorted(self.layers, key=lambda r: -r.mean_trace)
        w = max([len(r.name) for r in rows] + [5])
        lines = [f"{'layer':<{w}} {'kind':<10} {'params':>10} {'top eigenvalue':>15} {'trace':>12} {'trace/params':>13}"]
        for r in rows:
            lines.append(f"{r.name:<{w}} {r.kind:<10} {r.parameters:>10,} {r.top_eigenvalue:>15.4g} {r.trace:>12.4g} "
                         f"{r.mean_trace:>13.4g}")
        lines.append(f"loss {self.loss}, {self.batches} batch(es), {self.iterations} power iterations, "
                     f"{self.samples} Hutchinson samples, seed {self.seed}")
        return "\n".join(lines)

    def plot(self, path) -> None:
        """A PNG: per layer (model order), the top eigenvalue and trace / parameters, log scale."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [r.name for r in self.layers]
        fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(names) + 2), 4.2))
        x = range(len(names))
        floor = 1e-12  # log scale: a layer whose Hessian is zero is drawn at the bottom
        ax.plot(x, [max(r.top_eigenvalue, floor) for r in self.layers], "o-", label="top Hessian eigenvalue")
        ax.plot(x, [max(r.mean_trace, floor) for r in self.layers], "s-", label="Hessian trace / parameters")
        ax.set_yscale("log")
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, rotation=90, fontsize=7)
        ax.set_ylabel(f"sensitivity (loss: {self.loss})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def _layers(model: torch.nn.Module, names) -> list:
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    if names is not None:
        known = {n for n, _ in found}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"layers {unknown} are not Conv1d/Conv2d/Linear/Embedding modules of the model; "
                             f"those are {sorted(known)}")
        found = [(n, m) for n, m in found if n in set(names)]
    if not found:
        raise ValueError("the model has no Conv1d, Conv2d, Linear or Embedding layer to measure")
    return found


@_on_one_torch_thread
def sensitivity(model: torch.nn.Module, example_inputs, data: Iterable, loss: str | Callable | None = None, *,
                layers: Iterable[str] | None = None, iterations: int = 20, samples: int = 16, seed: int = 0,
                tolerance: float = 1e-4, progress: bool = True) -> Sensitivity:
    """Per-layer Hessian sensitivity of `model` (float, any mode; measured in eval mode).

    example_inputs: a tensor or tuple of tensors, run once to check the model and to choose the
    default loss. data: an iterable of batches (tensors, or tuples of tensors), the inputs the
    Hessian is averaged over (labels are not needed). loss: "kl" (KL divergence to the float
    model's own outputs: classifiers), "cosine" (1 - cosine to them: encoders), a callable
    loss(output, reference) -> scalar tensor, or None: "kl" for a 2-D output (logits), "cosine"
    otherwise (pass "cosine" for a pooled 2-D embedding). layers: module names to measure (default
    every Conv1d/Conv2d/Linear/Embedding). iterations: power iterations for the top eigenvalue
    (stopping early when it moves by less than `tolerance`, relative); samples: Rademacher
    vectors for the trace. Deterministic for a seed. Raises ValueError naming the layer when an
    estimate is not finite (a part of the model without second derivatives), or when a layer
    does not take part in the output.
    """
    if iterations < 1 or samples < 1:
        raise ValueError(f"iterations and samples must be >= 1, got {iterations} and {samples}")
    batches = [_as_inputs(b) for b in data]
    if not batches:
        raise ValueError("no data: sensitivity needs at least one batch of inputs")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            example_out = model(*_as_inputs(example_inputs))
            references = [model(*b).detach() for b in batches]
        if not isinstance(example_out, torch.Tensor):
            raise ValueError(f"the model returns {type(example_out).__name__}; sensitivity needs one output tensor")
        if loss is None:
            loss = "kl" if example_out.dim() == 2 else "cosine"
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"unknown loss '{loss}'; use {sorted(LOSSES)} or a callable loss(output, reference)")
            loss_name, loss_fn = loss, LOSSES[loss]
        elif callable(loss):
            loss_name, loss_fn = getattr(loss, "__name__", "custom"), loss
        else:
            raise ValueError(f"loss must be a name {sorted(LOSSES)}, a callable or None, got {type(loss).__name__}")

        found = _layers(model, layers)
        gen = torch.Generator().manual_seed(seed)
        results = []
        for i, (name, module) in enumerate(found):
            if progress:
                print(f"\rsensitivity: layer {i + 1}/{len(found)} {name:<40.40}", end="", file=sys.stderr, flush=True)
            results.append(_layer(name, module, model, batches, references, loss_fn, iterations, samples, tolerance,
                                  gen))
        if progress:
            print(file=sys.stderr)
        return Sensitivity(results, loss_name, len(batches), iterations, samples, seed)
    finally:
        model.train(was_training)


def _layer(name, module, model, batches, references, loss_fn, iterations, samples, tolerance, gen):
    weight = module.weight
    frozen = not weight.requires_grad
    weight.requires_grad_(True)
    try:
        return _probe(name, type(module).__name__, weight, model, batches, references, loss_fn, iterations, samples,
                      tolerance, gen)
    finally:
        weight.requires_grad_(not frozen)


def _probe(name, kind, weight, model, batches, references, loss_fn, iterations, samples, tolerance, gen):

    def hvp(v: torch.Tensor) -> torch.Tensor:
        """The Hessian block of `weight` times v, averaged over the batches."""
        total = torch.zeros_like(weight)
        for inputs, ref in zip(batches, references):
            value = loss_fn(model(*inputs), ref)
            (grad,) = torch.autograd.grad(value, weight, create_graph=True, allow_unused=True)
            if grad is None:
                raise ValueError(f"layer '{name}' does not take part in the model's output: no sensitivity to measure "
                                 "(leave it out with layers=...)")
            if grad.requires_grad:  # else the loss is linear in the weight: a zero block
                (hv,) = torch.autograd.grad(grad, weight, grad_outputs=v, allow_unused=True)
                if hv is not None:
                    total += hv.detach()
        return total / len(batches)

    def finite(value: float, what: str) -> float:
        if not math.isfinite(value):
            raise ValueError(f"layer '{name}': the Hessian's {what} is not finite ({value}); the loss has no second "
                             "derivative there (a non-differentiable part of the model?)")
        return value

    v = torch.randn(weight.shape, generator=gen, dtype=weight.dtype)
    v /= v.norm()
    eigenvalue = 0.0
    for _ in range(iterations):
        hv = hvp(v)
        new = finite(float(torch.sum(v * hv)), "top eigenvalue")
        norm = float(hv.norm())
        if norm == 0.0:
            eigenvalue = new
            break
        v = hv / norm
        converged = abs(new - eigenvalue) <= tolerance * abs(new)
        eigenvalue = new
        if converged:
            break
    trace = 0.0
    for _ in range(samples):
        z = torch.randint(0, 2, weight.shape, generator=gen).to(weight.dtype) * 2 - 1
        trace += finite(float(torch.sum(z * hvp(z))), "trace")
    return LayerSensitivity(name, kind, weight.numel(), eigenvalue, trace / samples)


def perturbation(weight: torch.Tensor, bits: int) -> float:
    """|W - Q_b(W)|^2 under the exporter's per-output-channel symmetric rounding to nearest at
    `bits` (quant.py: codes within +-weight_qmax(bits), scales as channel_scales: max |row| / that,
    the least-squares ternary scale at 2 bits; no bias here to raise a scale)."""
    w = weight.detach().double().reshape(weight.shape[0], -1).numpy()
    qmax = weight_qmax(bits)
    scales = layer_scales(w, np.zeros(w.shape[0]), 1.0, qmax).astype(np.float64)[:, None]
    return float(((w - round_weights(w, scales, qmax) * scales) ** 2).sum())


def layer_latencies(model: torch.nn.Module, example_inputs, calibration: Iterable, choices=(2, 4, 8), *,
                    runs: int = 20, num_threads: int = 1) -> dict:
    """The engine's time of each Conv2d / Linear layer at each width of `choices`: the model
    quantized with every layer at one width (rounding to nearest, no bias correction: the time
    does not depend on the codes' values), loaded with `num_threads` and profiled on
    `example_inputs` (`Model.profile`, the median of `runs` calls). Returns {module path: {bits:
    milliseconds}}, summed over the module's ops where it is called more than once; for
    `allocate_bits(..., latency_budget=..., latencies=...)`, as HAWQ-V3 times each layer at each
    precision on the target (docs/mixed_precision.md)."""
    from . import quantize

    choices = _checked_choices(choices)
    calibration = list(calibration)
    example = [x.numpy() for x in _as_inputs(example_inputs)]
    times: dict = {}
    for bits in choices:
        q = quantize(model, example_inputs, calibration, weight_bits=bits, weight_rounding="nearest",
                     bias_correction=False)
        for layer, ms in q.layer_times(example if len(example) > 1 else example[0], runs, num_threads).items():
            times.setdefault(layer, {})[bits] = ms
    return times


def _checked_choices(choices) -> list:
    choices = sorted(set(int(b) for b in choices))
    if not choices or choices[0] < 2 or choices[-1] > 8:
        raise ValueError(f"bit choices must lie in 2..8, got {choices}")
    return choices


def allocate_bits(model: torch.nn.Module, sens: Sensitivity, size_budget: float | None = None, choices=(2, 4, 8), *,
                  latency_budget: float | None = None, latencies: dict | None = None) -> dict:
    """Bits per Conv2d/Linear layer of `sens` from `choices`, minimising HAWQ-V2's objective
    sum over layers of (trace / parameters) x |W - Q_b(W)|^2 under one or both budgets:
    `size_budget`, the weights' bytes at those bits (parameters x bits / 8, summed), and
    `latency_budget`, the layers' summed engine time in milliseconds at those bits, from
    `latencies` ({module path: {bits: ms}}, as `layer_latencies` measures them). Solved exactly
    as a 0-1 integer program (scipy.optimize.milp). Returns {module path: bits}, for
    `intinfer.quantize(..., weight_bits=...)`; layers of other kinds (embeddings: 8-bit tables)
    are left out and neither their bytes nor their time is in a budget."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    if size_budget is None and latency_budget is None:
        raise ValueError("give a size_budget (bytes), a latency_budget (milliseconds) or both")
    if (latency_budget is None) != (latencies is None):
        raise ValueError("a latency_budget needs the layers' latencies ({module path: {bits: ms}}, "
                         "from intinfer.hessian.layer_latencies) and latencies need a latency_budget")
    modules = dict(model.named_modules())
    layers = [r for r in sens.layers if isinstance(modules.get(r.name), (torch.nn.Conv2d, torch.nn.Linear))]
    if not layers:
        raise ValueError("the sensitivity has no Conv2d or Linear layer to allocate bits to")
    choices = _checked_choices(choices)
    budgets = []  # (what, per-layer and -width amounts, limit, how the least is described)
    if size_budget is not None:
        sizes = np.array([[r.parameters * b / 8 for b in choices] for r in layers])
        budgets.append(("size budget", sizes, size_budget,
                        lambda least: f"{size_budget:,.0f} bytes is below the {least:,.0f} bytes of every layer at "
                                      f"{choices[0]} bits"))
    if latency_budget is not None:
        missing = [r.name for r in layers if any(b not in latencies.get(r.name, {}) for b in choices)]
        if missing:
            raise ValueError(f"latencies lack layers {missing} at some of the widths {choices}")
        ms = np.array([[float(latencies[r.name][b]) for b in choices] for r in layers])
        if not np.all(np.isfinite(ms)) or np.any(ms < 0):
            raise ValueError("latencies must be finite and non-negative milliseconds")
        budgets.append(("latency budget", ms, latency_budget,
                        lambda least: f"{latency_budget:.4g} ms is below the {least:.4g} ms of every layer at its "
                                      f"fastest width"))
    for what, amounts, limit, below in budgets:
        least = float(amounts.min(1).sum())
        if limit < least:
            raise ValueError(f"{what} {below(least)}")
    cost = np.array([[r.mean_trace * perturbation(modules[r.name].weight, b) for b in choices] for r in layers])
    n, k = cost.shape
    one_each = np.kron(np.eye(n), np.ones(k))  # exactly one choice per layer
    # Scaled to O(1) and solved to a zero gap: HiGHS's default tolerances stop early on the tiny
    # raw values (1e-6 here), which a brute-force check caught (tests/test_sensitivity.py).
    result = milp(cost.ravel() / max(float(cost.max()), 1e-300), integrality=np.ones(n * k), bounds=Bounds(0, 1),
                  constraints=[LinearConstraint(one_each, 1, 1)] +
                              [LinearConstraint(a.ravel()[None], 0, limit) for _, a, limit, _ in budgets],
                  options={"mip_rel_gap": 0.0})
    if result.status == 2:
        raise ValueError("no assignment of the widths meets both the size budget and the latency budget")
    if not result.success:
        raise ValueError(f"the bit allocation failed: {result.message}")
    picks = result.x.reshape(n, k).argmax(1)
    return {r.name: choices[j] for r, j in zip(layers, picks)}
