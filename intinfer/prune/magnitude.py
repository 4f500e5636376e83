"""Magnitude pruning of conv and linear weights (docs/pruning.md, Magnitude pruning).

Weights are zeroed in 1 x B blocks along the reduction axis of the engine's layout (a linear
weight [out, in] as torch holds it, a conv weight as OHWI: torch's [O, I, KH, KW] permuted
(0, 2, 3, 1)), the blocks of lowest L2 norm first: per layer, or under one global threshold
(Han et al. 2015, with the layer-adaptive scores of Lee et al. 2021, LAMP, by default).
The weights stay plain parameters with zeros in them, so torch.export, intinfer.quantize and
intinfer.qat see an ordinary model; a `Masks` keeps them zero while a model trains.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

__all__ = ["DEFAULT_BLOCK", "Masks", "LayerDensity", "DensityReport", "magnitude_prune", "iterative_prune",
           "density"]

# The kernels multiply int8 weights in groups of 4 consecutive reduction elements (vpdpbusd,
# SDOT): a 1 x 4 block is the smallest unit a sparse kernel can skip without a wasted lane.
DEFAULT_BLOCK = 4

SCOPES = ("layer", "global")
GLOBAL_SCORES = ("lamp", "magnitude")
SCHEDULES = ("cubic", "linear")


class Masks(Mapping):
    """{module path: bool tensor} in torch's layout of each module's weight, True where a weight
    is kept; `block` is the length of the 1 x B blocks they were chosen in."""

    def __init__(self, masks: Mapping, block: int = DEFAULT_BLOCK):
        self.block = _check_block(block)
        self._masks = {str(k): torch.as_tensor(v).to(torch.bool).cpu() for k, v in masks.items()}

    def __getitem__(self, path: str) -> torch.Tensor:
        return self._masks[path]

    def __iter__(self):
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __repr__(self) -> str:
        kept = sum(int(m.sum()) for m in self._masks.values())
        total = sum(m.numel() for m in self._masks.values())
        return f"Masks({len(self)} layers, block {self.block}, sparsity {1 - kept / max(total, 1):.3f})"

    @torch.no_grad()
    def apply(self, model: torch.nn.Module) -> None:
        """Zeroes the masked weights of `model` in place."""
        modules = dict(model.named_modules())
        for path, mask in self._masks.items():
            module = modules.get(path)
            if module is None:
                raise ValueError(f"the masks name module '{path}', which the model does not have")
            if tuple(module.weight.shape) != tuple(mask.shape):
                raise ValueError(f"the mask of '{path}' has shape {list(mask.shape)}, its weight "
                                 f"{list(module.weight.shape)}")
            module.weight.masked_fill_(~mask.to(module.weight.device), 0)

    def attach(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        """Zeroes the masked weights now and after every `optimizer.step()`, whatever the
        optimizer's momentum or weight decay would have made of them. Returns the hook's handle
        (`.remove()` detaches it)."""
        self.apply(model)
        return optimizer.register_step_post_hook(lambda *_: self.apply(model))


def magnitude_prune(model: torch.nn.Module, sparsity: float, *, block: int = DEFAULT_BLOCK, scope: str = "layer",
                    layers: Iterable[str] | Callable | None = None, exclude: Iterable[str] = (),
                    masks: Masks | None = None, global_score: str = "lamp") -> Masks:
    """Zeroes the `sparsity` fraction of the weights of the chosen Linear / Conv2d modules of
    `model` with the lowest magnitude, in 1 x `block` blocks along the reduction axis of the
    engine's layout (block=1: unstructured), and returns their masks.

    scope: "layer" (each layer loses `sparsity` of its blocks) or "global" (one threshold over
    all chosen layers; global_score "lamp": each block's squared norm over the sum of those of
    the blocks of its layer at least as large, Lee et al. 2021, which no layer's scale sways;
    "magnitude": the plain block norm).
    layers: module paths, or a predicate (path, module) -> bool over the Linear and
    non-depthwise Conv2d modules; None: all of those. exclude: module paths left out with
    everything under them. Depthwise convs are never pruned (the engine has no sparse depthwise
    kernel): skipped by default and by a predicate, refused when named.
    masks: earlier masks of this model (same block): what they pruned stays pruned, and the
    result covers their layers too. A layer's share is rounded to whole blocks."""
    _check_sparsity(sparsity)
    block = _check_block(block)
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {SCOPES}")
    if global_score not in GLOBAL_SCORES:
        raise ValueError(f"unknown global_score {global_score!r}; choose one of {GLOBAL_SCORES}")
    if masks is not None and masks.block != block:
        raise ValueError(f"the earlier masks were chosen in blocks of {masks.block}, not {block}: keep one block "
                         "size through a schedule")
    chosen = _choose(model, layers, exclude)
    for path, module in chosen.items():
        _check_divides(path, module, block)
    kept = {p: _kept_blocks(masks, p, m, block) for p, m in chosen.items()}
    scores = {p: _block_norms(m.weight, block) for p, m in chosen.items()}
    if scope == "layer":
        for path in chosen:
            target = max(_share(sparsity, scores[path].numel()), _pruned(kept[path]))
            kept[path] = _keep_above(scores[path], kept[path], target)
            _check_not_empty(path, kept[path], f"pruning it to sparsity {sparsity}")
    else:
        if global_score == "lamp":
            scores = {p: _lamp(s) for p, s in scores.items()}
        paths = list(chosen)
        flat = torch.cat([scores[p].flatten() for p in paths])
        before = torch.cat([kept[p].flatten() for p in paths])
        target = max(_share(sparsity, flat.numel()), _pruned(before))
        after = _keep_above(flat, before, target)
        for path, part in zip(paths, after.split([scores[p].numel() for p in paths])):
            kept[path] = part.reshape(scores[path].shape)
            _check_not_empty(path, kept[path], f"global pruning to sparsity {sparsity}")
    result = dict(masks.items()) if masks is not None else {}
    for path, module in chosen.items():
        result[path] = _torch_layout(kept[path].repeat_interleave(block, dim=-1), module.weight.dim())
    out = Masks(result, block)
    out.apply(model)
    return out


def iterative_prune(model: torch.nn.Module, sparsity: float, steps: int, fine_tune: Callable, *,
                    schedule: str = "cubic", masks: Masks | None = None, **options) -> Masks:
    """Han et al. (2015): prune, fine-tune, repeat. Step t of `steps` prunes to
    s_t = s + (s_0 - s)(1 - t / steps)^3 (schedule "cubic", Zhu & Gupta 2017: large steps while
    many weights are redundant, small ones near the target) or s_0 + (s - s_0) t / steps
    ("linear"), s_0 the sparsity `masks` already give the chosen layers (0 without), then calls
    fine_tune(model, masks), which trains with the masks kept (e.g. `masks.attach(model,
    optimizer)`); the masked weights are zeroed again after it. Masks only grow: a pruned
    block stays pruned. options: those of `magnitude_prune` (block, scope, layers, exclude,
    global_score). Returns the final masks."""
    _check_sparsity(sparsity)
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    if not callable(fine_tune):
        raise TypeError(f"fine_tune must be a callable fine_tune(model, masks), got {type(fine_tune).__name__}")
    start = _sparsity_of(masks, _choose(model, options.get("layers"), options.get("exclude", ())))
    for t in range(1, steps + 1):
        if schedule == "cubic":
            s = sparsity + (start - sparsity) * (1 - t / steps) ** 3
        else:
            s = start + (sparsity - start) * t / steps
        masks = magnitude_prune(model, s, masks=masks, **options)
        fine_tune(model, masks)
        masks.apply(model)
    return masks


@dataclass(frozen=True)
class LayerDensity:
    """A weight's density (fraction of nonzero elements) and block density (fraction of its 1 x B
    blocks along the engine's reduction axis with a nonzero element; None where B does not divide
    the reduction length)."""
    name: str
    shape: tuple
    density: float
    block_density: float | None


class DensityReport(Mapping):
    """{layer: LayerDensity}, and over all layers `density` and `block_density`."""

    def __init__(self, layers: list, block: int):
        self.block = block
        self._layers = {d.name: d for d in layers}
        sizes = [math.prod(d.shape) for d in layers]
        self.density = sum(d.density * n for d, n in zip(layers, sizes)) / sum(sizes)
        blocked = [(d.block_density, n) for d, n in zip(layers, sizes) if d.block_density is not None]
        self.block_density = sum(b * n for b, n in blocked) / sum(n for _, n in blocked) if blocked else None

    def __getitem__(self, name: str) -> LayerDensity:
        return self._layers[name]

    def __iter__(self):
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __str__(self) -> str:
        rows = [(d.name, str(list(d.shape)), f"{d.density:.3f}", _fmt(d.block_density)) for d in self._layers.values()]
        rows.append(("all", "", f"{self.density:.3f}", _fmt(self.block_density)))
        w = max(len(r[0]) for r in rows + [("layer",)])
        s = max(len(r[1]) for r in rows + [("", "shape")])
        blocks = f"block density (1x{self.block})"
        head = f"{'layer':<{w}}  {'shape':<{s}}  density  {blocks}"
        return "\n".join([head] + [f"{a:<{w}}  {b:<{s}}  {c:>7}  {d:>{len(blocks)}}" for a, b, c, d in rows])


def density(weights, block: int = DEFAULT_BLOCK) -> DensityReport:
    """Density and 1 x `block` block density of each Linear / Conv2d weight of a model, or of a
    {name: weight} mapping (torch layout: [out, in] or [O, I, KH, KW]). The exporter stores a
    weight block-sparse where its block density is low (docs/pruning.md)."""
    block = _check_block(block)
    if isinstance(weights, torch.nn.Module):
        items = [(p, m.weight) for p, m in weights.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    elif isinstance(weights, Mapping):
        items = list(weights.items())
    else:
        raise TypeError(f"density takes a torch.nn.Module or a {{name: weight}} mapping, got {type(weights).__name__}")
    if not items:
        raise ValueError("no weight to report: the model has no Linear or Conv2d module (for a QAT model, report the "
                         "model it was prepared from)")
    rows = []
    for name, w in items:
        w = torch.as_tensor(w).detach()
        if w.dim() not in (2, 4):
            raise ValueError(f"weight '{name}' has shape {list(w.shape)}: a linear [out, in] or conv [O, I, KH, KW] "
                             "weight was expected")
        nonzero = w != 0
        engine = _engine_layout(nonzero)
        blocks = None
        if engine.shape[-1] % block == 0:
            blocks = float(engine.reshape(*engine.shape[:-1], -1, block).any(-1).double().mean())
        rows.append(LayerDensity(str(name), tuple(w.shape), float(nonzero.double().mean()), blocks))
    return DensityReport(rows, block)


# -- helpers ---------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _check_sparsity(sparsity) -> None:
    if not isinstance(sparsity, numbers.Real) or isinstance(sparsity, bool) or not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}")


def _check_block(block) -> int:
    if not isinstance(block, numbers.Integral) or isinstance(block, bool) or block < 1:
        raise ValueError(f"block must be a positive integer, got {block!r}")
    return int(block)


def _is_depthwise(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def _prunable(module: torch.nn.Module) -> bool:
    return isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and not _is_depthwise(module)


def _choose(model: torch.nn.Module, layers, exclude) -> dict:
    """{path: module} of the layers to prune, in the model's order."""
    modules = dict(model.named_modules())
    if isinstance(exclude, str):
        exclude = [exclude]
    exclude = list(exclude)
    for path in exclude:
        if path not in modules:
            raise ValueError(f"exclude names '{path}', which is no module of the model")
    if isinstance(layers, str):
        layers = [layers]
    if layers is None or callable(layers):
        chosen = {p: m for p, m in modules.items() if _prunable(m) and (layers is None or layers(p, m))}
    else:
        chosen = {}
        for path in layers:
            module = modules.get(path)
            if module is None:
                names = [p for p, m in modules.items() if _prunable(m)]
                listed = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
                raise ValueError(f"no module '{path}' in the model; its prunable layers are: {listed}")
            if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                raise ValueError(f"module '{path}' is a {type(module).__name__}: magnitude pruning takes "
                                 "torch.nn.Linear and torch.nn.Conv2d modules")
            if _is_depthwise(module):
                raise ValueError(f"module '{path}' is a depthwise Conv2d (groups = in_channels = {module.groups}): "
                                 "the engine has no sparse depthwise kernel, so its zeros would cost accuracy and "
                                 "save no time; leave it out")
            chosen[path] = module
    chosen = {p: m for p, m in chosen.items() if not any(p == e or p.startswith(e + ".") for e in exclude)}
    if not chosen:
        raise ValueError("no layer to prune: the model has no Linear or non-depthwise Conv2d module left after "
                         "`layers` and `exclude`")
    return chosen


def _check_divides(path: str, module: torch.nn.Module, block: int) -> None:
    w = module.weight
    k = w.shape[1]
    if k % block:
        axis = "input features" if w.dim() == 2 else "input channels per group, the last axis of the engine's OHWI " \
                                                      "layout"
        raise ValueError(f"layer '{path}' ({type(module).__name__}, weight {list(w.shape)}): block {block} does not "
                         f"divide its reduction length {k} ({axis}); exclude it or choose a block that divides it")


def _engine_layout(w: torch.Tensor) -> torch.Tensor:
    return w if w.dim() == 2 else w.permute(0, 2, 3, 1)


def _torch_layout(e: torch.Tensor, dim: int) -> torch.Tensor:
    return (e if dim == 2 else e.permute(0, 3, 1, 2)).contiguous()


def _block_norms(w: torch.Tensor, block: int) -> torch.Tensor:
    """L2 norms of the 1 x block blocks of the engine layout: [..., K / block]."""
    e = _engine_layout(w.detach()).double().cpu()
    return e.reshape(*e.shape[:-1], -1, block).norm(dim=-1)


def _kept_blocks(masks: Masks | None, path: str, module: torch.nn.Module, block: int) -> torch.Tensor:
    """The blocks an earlier mask keeps whole (a block it pruned in part counts as pruned)."""
    w = module.weight
    if masks is None or path not in masks:
        e = _engine_layout(w)
        return torch.ones(*e.shape[:-1], e.shape[-1] // block, dtype=torch.bool)
    mask = masks[path]
    if tuple(mask.shape) != tuple(w.shape):
        raise ValueError(f"the earlier mask of '{path}' has shape {list(mask.shape)}, its weight {list(w.shape)}")
    e = _engine_layout(mask)
    return e.reshape(*e.shape[:-1], -1, block).all(-1)


def _share(sparsity: float, n: int) -> int:
    return math.floor(sparsity * n + 0.5)


def _pruned(kept: torch.Tensor) -> int:
    return kept.numel() - int(kept.sum())


def _keep_above(scores: torch.Tensor, kept: torch.Tensor, n: int) -> torch.Tensor:
    """`kept` less the blocks of lowest score until `n` are pruned (the pruned ones first; ties
    in the order of the blocks)."""
    ranked = torch.where(kept, scores, torch.tensor(-math.inf, dtype=scores.dtype)).flatten()
    order = torch.argsort(ranked, stable=True)
    out = torch.ones(ranked.numel(), dtype=torch.bool)
    out[order[:n]] = False
    return out.reshape(kept.shape)


def _lamp(norms: torch.Tensor) -> torch.Tensor:
    """LAMP scores (Lee et al. 2021) of a layer's blocks: a block's squared norm over the sum of
    the squared norms of the blocks at least as large; the largest scores 1."""
    flat = norms.flatten() ** 2
    order = torch.argsort(flat, stable=True)
    ranked = flat[order]
    tail = ranked.flip(0).cumsum(0).flip(0)
    out = torch.empty_like(flat)
    out[order] = torch.where(tail > 0, ranked / tail, torch.zeros_like(ranked))
    return out.reshape(norms.shape)


def _check_not_empty(path: str, kept: torch.Tensor, what: str) -> None:
    if not bool(kept.any()):
        raise ValueError(f"{what} would remove all {kept.numel()} blocks of layer '{path}', which the engine needs "
                         "whole; prune it less or exclude it")


def _sparsity_of(masks: Masks | None, chosen: dict) -> float:
    """The fraction of the chosen layers' weights that `masks` prune."""
    if masks is None:
        return 0.0
    pruned = sum(int((~masks[p]).sum()) for p in chosen if p in masks)
    return pruned / sum(m.weight.numel() for m in chosen.values())
