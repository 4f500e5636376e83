"""Structured pruning that removes weights physically (docs/pruning.md): attention heads and
feed-forward units of intinfer.models.MiniLM (Michel et al. 2019) and output channels of
convolutions (Li et al. 2017), leaving a smaller dense model that exports, quantizes and runs
like any other.

Gradient importance is the expected |dL/dxi| of a gate xi that multiplies a head's output, a
feed-forward unit's activation, or a channel where the next layer reads it, taken at xi = 1 for
each example (Michel et al.; for channels the first-order Taylor criterion of Molchanov et al.
2017). Without labels the loss is contrastive distillation from the unpruned model
(`_distillation`): 1 - cosine with the unpruned model's own output has a zero gradient at xi = 1,
where the two outputs are equal.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..export.graph import ExportError
from ..models.minilm import MiniLM, mean_pool

# The scale of sentence-transformers' MultipleNegativesRankingLoss, which trained all-MiniLM-L6-v2.
DISTILLATION_SCALE = 20.0


# ----------------------------------------------------------------------------------------------
# Gate gradients, shared by heads and channels
# ----------------------------------------------------------------------------------------------

def _as_args(batch) -> tuple:
    return tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)


@contextlib.contextmanager
def _eval(model: torch.nn.Module):
    """Eval mode inside, each module's own mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _embedding(output: torch.Tensor, batch: tuple) -> torch.Tensor:
    """[B, E]: a 3-D output [B, S, H] is mean-pooled over the batch's second tensor (the attention
    mask, in MiniLM's argument order); any other output is flattened per example."""
    if output.dim() == 3 and len(batch) > 1:
        return mean_pool(output, batch[1])
    return output.flatten(1)


def _distillation(model, batches: list):
    """The default loss: contrastive distillation from the model as it is now. Example i's loss is
    the cross entropy of the scaled cosine similarities of its embedding with the unpruned model's
    embeddings of all N examples of `batches`, its own being the target (MultipleNegativesRankingLoss
    with the teacher's embeddings as candidates). Unlike 1 - cosine with its own teacher embedding,
    it is not at a minimum when the model is unchanged, so its gradient says which parts the
    embeddings need to stay apart."""
    with torch.no_grad():
        teacher = F.normalize(torch.cat([_embedding(model(*b), b) for b in batches]), dim=1)
    if teacher.shape[0] < 2:
        raise ValueError("the default loss (contrastive distillation) compares each example with the others: "
                         f"the batches need at least 2 examples, they have {teacher.shape[0]}")

    def loss(output, batch, start):
        student = F.normalize(_embedding(output, batch), dim=1)
        target = torch.arange(start, start + student.shape[0])
        return F.cross_entropy(DISTILLATION_SCALE * student @ teacher.T, target, reduction="none")

    return loss


def _gate_importance(model, batches, loss_fn, sites: dict) -> dict:
    """Mean over the examples of |dL_b/dxi_b| for a gate xi_b = 1 per example b on each site:
    {key: (width, [(module, gate)])}, where gate(x, xi [B, width]) multiplies the first input of
    `module` by the gates. One backward pass per batch: example b's loss depends only on its own
    gates, so the gradient of the summed losses with respect to xi_b is dL_b/dxi_b."""
    batches = [_as_args(b) for b in batches]
    if not batches:
        raise ValueError("no batches: importance is an expectation over data")
    if not sites:
        return {}
    if loss_fn is None:
        loss = _distillation(model, batches)
    else:
        def loss(output, batch, start):
            return loss_fn(output, batch)
    gates: dict = {}

    def hook(key, width, gate, module, args):
        x = args[0]
        if key not in gates:
            gates[key] = torch.ones(x.shape[0], width, dtype=x.dtype, device=x.device, requires_grad=True)
        return (gate(x, gates[key]),) + tuple(args[1:])

    handles = [module.register_forward_pre_hook(functools.partial(hook, key, width, gate))
               for key, (width, uses) in sites.items() for module, gate in uses]
    keys = list(sites)
    totals = {key: torch.zeros(width, dtype=torch.float64) for key, (width, _) in sites.items()}
    seen = 0
    try:
        with torch.enable_grad():
            for batch in batches:
                gates.clear()
                output = model(*batch)
                missing = [key for key in keys if key not in gates]
                if missing:
                    raise ValueError(f"{missing[0]!r} was not reached by the model's forward")
                n = next(iter(gates.values())).shape[0]
                losses = loss(output, batch, seen)
                if not isinstance(losses, torch.Tensor) or tuple(losses.shape) != (n,):
                    shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
                    raise ValueError(f"loss_fn must return one loss per example, shape ({n},); it returned {shape}")
                grads = torch.autograd.grad(losses.sum(), [gates[k] for k in keys], allow_unused=True)
                for key, g in zip(keys, grads):
                    if g is not None:
                        totals[key] += g.detach().abs().sum(0).double().cpu()
                seen += n
    finally:
        for h in handles:
            h.remove()
    return {key: (total / seen).float() for key, total in totals.items()}


def _count(fraction, count, total: int) -> int:
    """How many of `total` to remove: `count`, or round(fraction * total)."""
    if (fraction is None) == (count is None):
        raise ValueError("give either fraction or count")
    if count is not None:
        if operator.index(count) < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        return operator.index(count)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    return round(fraction * total)


def _indices(values, size: int, what: str) -> list:
    """Sorted distinct indices within [0, size), or ValueError naming `what`."""
    out = []
    for v in values:
        try:
            i = operator.index(v)
        except TypeError:
            raise ValueError(f"{what}: {v!r} is not an index") from None
        if not 0 <= i < size:
            raise ValueError(f"{what}: index {i} is out of range (there are {size}, 0..{size - 1})")
        if i in out:
            raise ValueError(f"{what}: index {i} is listed twice")
        out.append(i)
    return sorted(out)


def _check_plain(module: torch.nn.Module, path: str) -> None:
    """The weight must be a parameter of its own: torch.nn.utils.prune's mask or a parametrization
    computes it from others, which rewriting it here would leave stale."""
    if "weight" not in module._parameters:
        raise ValueError(f"'{path}'.weight is not a plain parameter (torch.nn.utils.prune's mask or a "
                         "parametrization computes it): remove those first")


def _select(module: torch.nn.Module, name: str, index: torch.Tensor, dim: int) -> None:
    """Keeps the slices `index` of a parameter or buffer along `dim` (a new tensor)."""
    value = getattr(module, name)
    if value is None:
        return
    kept = value.detach().index_select(dim, index.to(value.device))
    if isinstance(value, torch.nn.Parameter):
        kept = torch.nn.Parameter(kept, requires_grad=value.requires_grad)
    setattr(module, name, kept)


# ----------------------------------------------------------------------------------------------
# Attention heads (MiniLM)
# ----------------------------------------------------------------------------------------------

_MPNET_REASON = (
    "transformers' MPNetModel is not supported: its relative position bias is one [buckets, heads] "
    "table (MPNetEncoder.relative_attention_bias) whose scores every layer adds to its own, so a layer "
    "with fewer heads would need its own rows of it, which MPNetSelfAttention.forward cannot take")


def _encoder(model: torch.nn.Module, what: str = "head") -> MiniLM:
    found = [m for m in model.modules() if isinstance(m, MiniLM)]
    if len(found) == 1:
        return found[0]
    if found:
        raise TypeError(f"{type(model).__name__} holds {len(found)} MiniLM encoders: pass the one to prune")
    if what == "head" and any(type(m).__name__ == "MPNetSelfAttention" for m in model.modules()):
        raise TypeError(f"head pruning works on intinfer.models.MiniLM; {_MPNET_REASON}")
    raise TypeError(f"{what} pruning works on intinfer.models.MiniLM (or a module holding one, such as "
                    f"PooledEncoder); {type(model).__name__} holds none")


def _score_table(scores, normalize: bool) -> torch.Tensor:
    """Per-layer score vectors as one [layers, widest] table, NaN past a layer's own width; each
    layer's scores divided by their L2 norm when `normalize`."""
    scores = list(scores)
    out = torch.full((len(scores), max(s.numel() for s in scores)), float("nan"))
    for i, s in enumerate(scores):
        out[i, : s.numel()] = s / s.norm().clamp_min(1e-20) if normalize else s
    return out


@dataclass(frozen=True)
class _Parts:
    """One kind of part of a MiniLM layer that structured pruning removes: what the messages call
    it (`kind`, plural `noun`, and what a layer left with none would lack), how many a layer has,
    the modules whose weights change (plain parameters required), and the gate site the importance
    reads: the first input of `reader`, multiplied per part by `gate`."""
    kind: str
    noun: str
    emptied: str
    count: Callable
    weights: tuple
    reader: str
    gate: Callable

    def layers(self, model: torch.nn.Module) -> list:
        return list(_encoder(model, self.kind).layers)

    def importance(self, model: torch.nn.Module, batches, loss_fn, normalize: bool) -> torch.Tensor:
        sites = {f"layers.{i}.{self.reader}": (self.count(layer), [(getattr(layer, self.reader), self.gate)])
                 for i, layer in enumerate(self.layers(model))}
        with _eval(model):
            return _score_table(_gate_importance(model, batches, loss_fn, sites).values(), normalize)

    def request(self, layers: list, request: dict) -> dict:
        """{layer index: sorted indices to remove} from a request {layer: [indices]}, every part
        checked before anything changes: a layer or index out of range, an index listed twice, or
        all of a layer's raise ValueError naming the layer; the weights of a changed layer must be
        plain parameters."""
        plan = {}
        for layer, drop in request.items():
            try:
                i = operator.index(layer)
            except TypeError:
                raise ValueError(f"layer {layer!r} is not a layer index") from None
            if not 0 <= i < len(layers):
                raise ValueError(f"layer {i} does not exist: the model has layers 0..{len(layers) - 1}")
            n = self.count(layers[i])
            drop = _indices(drop, n, f"layer {i} ({self.noun})")
            if len(drop) == n:
                raise ValueError(f"layer {i}: pruning all {n} of its {self.noun} would leave it no {self.emptied}; "
                                 "keep at least one")
            for name in self.weights:
                _check_plain(getattr(layers[i], name), f"layers.{i}.{name}")
            if drop:
                plan[i] = drop
        return plan

    def least_important(self, model: torch.nn.Module, importance, fraction, count, per_layer: bool) -> dict:
        """{layer: sorted indices} of the lowest `importance` scores ([layers, widest]): `count`, or
        round(fraction * all). Global: over all layers, each keeping its best one; per_layer: that
        many (a fraction of the layer's own) from every layer."""
        counts = [self.count(layer) for layer in self.layers(model)]
        importance = torch.as_tensor(importance, dtype=torch.float64)
        if tuple(importance.shape) != (len(counts), max(counts)):
            raise ValueError(f"importance has shape {tuple(importance.shape)}; the model's {self.noun} need "
                             f"({len(counts)}, {max(counts)}) (layers, {self.noun}): compute it on the model as it "
                             "is now")
        for i, c in enumerate(counts):
            if not torch.isfinite(importance[i, :c]).all():
                raise ValueError(f"importance of layer {i} is not finite over its {c} {self.noun}")
        if per_layer:
            chosen = {}
            for i, c in enumerate(counts):
                k = _count(fraction, count, c)
                if k >= c:
                    raise ValueError(f"layer {i}: pruning {k} of its {c} {self.noun} would leave it no "
                                     f"{self.emptied}; keep at least one")
                order = sorted(range(c), key=lambda j: (importance[i, j].item(), j))
                if k:
                    chosen[i] = sorted(order[:k])
            return chosen
        k = _count(fraction, count, sum(counts))
        best = [int(importance[i, :c].argmax()) for i, c in enumerate(counts)]
        candidates = sorted((importance[i, j].item(), i, j) for i, c in enumerate(counts) for j in range(c)
                            if j != best[i])
        if k > len(candidates):
            raise ValueError(f"cannot prune {k} of {sum(counts)} {self.noun}: each of the {len(counts)} layers "
                             f"keeps at least one, so at most {len(candidates)} can go")
        chosen = {}
        for _, i, j in candidates[:k]:
            chosen.setdefault(i, []).append(j)
        return {i: sorted(chosen[i]) for i in sorted(chosen)}


def _gate_heads(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    # x [B, S, heads * head_dim], the context attn_out reads: head h is the h-th run of head_dim.
    b, s, width = x.shape
    heads = gate.shape[1]
    return (x.reshape(b, s, heads, width // heads) * gate[:, None, :, None]).reshape(b, s, width)


_HEADS = _Parts("head", "heads", "attention", lambda layer: layer.heads, ("query", "key", "value", "attn_out"),
                "attn_out", _gate_heads)


def head_importance(model: torch.nn.Module, batches, loss_fn=None, normalize: bool = True) -> torch.Tensor:
    """Michel et al.'s importance of every attention head: the mean over the examples of
    |dL/dxi| for a gate xi multiplying the head's output, at xi = 1, the model in eval mode.

    model: a MiniLM or a module holding one (PooledEncoder), called as model(*batch).
    batches: tuples of inputs (input_ids, attention_mask, token_type_ids), or single tensors.
    loss_fn(output, batch) -> one loss per example [B]; default: contrastive distillation from the
    model as it is now (module docstring).
    normalize: divide each layer's scores by their L2 norm, as Michel et al. do before comparing
    heads across layers.

    Returns float32 [layers, heads]; where layers have been pruned to fewer heads than others, the
    slots past a layer's heads are NaN."""
    return _HEADS.importance(model, batches, loss_fn, normalize)


def prune_heads(model: torch.nn.Module, heads: dict) -> None:
    """Removes attention heads physically, in place: {layer index: [head indices]} (heads numbered
    0..heads-1 within the layer as it is now). query, key and value lose the heads' output rows
    (weight and bias), attn_out its input columns, and the layer's `heads` shrinks. The whole
    request is checked first: a layer or head out of range, a head listed twice or all heads of a
    layer raise ValueError naming the layer, and the model is left as it was."""
    layers = _HEADS.layers(model)
    plan = _HEADS.request(layers, heads)
    for i, drop in plan.items():
        layer = layers[i]
        keep = [h for h in range(layer.heads) if h not in drop]
        rows = torch.arange(layer.heads * layer.head_dim).reshape(layer.heads, layer.head_dim)[keep].flatten()
        for linear in (layer.query, layer.key, layer.value):
            _select(linear, "weight", rows, 0)
            _select(linear, "bias", rows, 0)
            linear.out_features = rows.numel()
        _select(layer.attn_out, "weight", rows, 1)
        layer.attn_out.in_features = rows.numel()
        layer.heads = len(keep)


def prune_heads_by_importance(model: torch.nn.Module, importance, fraction: float | None = None,
                              count: int | None = None, per_layer: bool = False) -> dict:
    """Removes the least important heads (`importance` from head_importance, [layers, heads]):
    `count` heads, or round(fraction * heads).

    Global (Michel et al.): the lowest scores over all layers, except that each layer keeps its
    most important head (a layer needs one); asking for more than that leaves raises ValueError.
    per_layer: that many from every layer (fraction of the layer's heads), ValueError naming a
    layer it would empty.

    Returns {layer: [heads removed]}, numbered as before pruning."""
    heads = _HEADS.least_important(model, importance, fraction, count, per_layer)
    prune_heads(model, heads)
    return heads


# ----------------------------------------------------------------------------------------------
# Feed-forward units (MiniLM)
# ----------------------------------------------------------------------------------------------

def _gate_units(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    # x [B, S, units], the activations ffn_out reads.
    return x * gate[:, None, :]


_UNITS = _Parts("feed-forward unit", "feed-forward units", "feed-forward block",
                lambda layer: layer.ffn_in.out_features, ("ffn_in", "ffn_out"), "ffn_out", _gate_units)


def ffn_importance(model: torch.nn.Module, batches, loss_fn=None, normalize: bool = True) -> torch.Tensor:
    """The importance of every feed-forward unit (a row of ffn_in and the column of ffn_out that
    reads its GELU): the mean over the examples of |dL/dxi| for a gate xi multiplying the unit's
    activation, at xi = 1, the model in eval mode (head_importance's criterion, a unit for a head).
    Arguments as head_importance's. Returns float32 [layers, units]; where layers have been
    pruned to fewer units than others, the slots past a layer's units are NaN."""
    return _UNITS.importance(model, batches, loss_fn, normalize)


def prune_ffn_units(model: torch.nn.Module, units: dict) -> None:
    """Removes feed-forward units physically, in place: {layer index: [unit indices]} (numbered
    0..units-1 within the layer as it is now). ffn_in loses the units' output rows (weight and
    bias), ffn_out their input columns: the layer's feed-forward block multiplies fewer units, in
    every engine path. The whole request is checked first, as prune_heads does: a layer or unit out
    of range, a unit listed twice or all units of a layer raise ValueError naming the layer, and
    the model is left as it was."""
    layers = _UNITS.layers(model)
    plan = _UNITS.request(layers, units)
    for i, drop in plan.items():
        layer = layers[i]
        keep = torch.tensor([u for u in range(layer.ffn_in.out_features) if u not in drop])
        _select(layer.ffn_in, "weight", keep, 0)
        _select(layer.ffn_in, "bias", keep, 0)
        layer.ffn_in.out_features = keep.numel()
        _select(layer.ffn_out, "weight", keep, 1)
        layer.ffn_out.in_features = keep.numel()


def prune_ffn_by_importance(model: torch.nn.Module, importance, fraction: float | None = None,
                            count: int | None = None, per_layer: bool = False) -> dict:
    """Removes the least important feed-forward units (`importance` from ffn_importance, [layers,
    units]): `count` units, or round(fraction * units); global (each layer keeps its most important
    unit) or per_layer, as prune_heads_by_importance. Returns {layer: [units removed]}, numbered as
    before pruning."""
    units = _UNITS.least_important(model, importance, fraction, count, per_layer)
    prune_ffn_units(model, units)
    return units


# ----------------------------------------------------------------------------------------------
# Convolution channels
# ----------------------------------------------------------------------------------------------

# Ops that act on each channel alone (activations, dropout, copies) and keep the tensor's layout.
_CHANNELWISE = {"relu", "relu6", "hardtanh", "clamp", "clamp_min", "clamp_max", "hardswish", "hardsigmoid",
                "silu", "sigmoid", "tanh", "gelu", "elu", "leaky_relu", "mish", "softplus", "dropout",
                "clone", "contiguous", "alias", "detach", "_to_copy"}
_POOLS = {"max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"}
_REDUCTIONS = {"mean", "sum", "amax"}
_RESHAPES = {"view", "reshape", "_unsafe_view", "flatten", "squeeze", "unsqueeze"}
_BATCH_NORMS = {"batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit"}
_CONVS = {"conv2d", "convolution"}
_ARITHMETIC = {"add", "sub", "rsub", "mul", "div"}


@dataclass
class _Plan:
    """What removing output channels of one convolution touches."""

    channels: int
    followers: list = field(default_factory=list)  # (path, "batch_norm" | "depthwise"): lose the same channels
    consumers: list = field(default_factory=list)  # (path, features per channel): lose input channels


class _Refused(Exception):
    """A convolution whose channels cannot be removed; the message says why."""


def _op(node) -> str:
    if node.op == "output":
        return "output"
    if node.target is operator.getitem:
        return "getitem"
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        return str(node.target)
    name = schema.name.split("::")[-1]
    return name[:-1] if name.endswith("_") else name  # an in-place op acts as its out-of-place twin


def _export(model: torch.nn.Module, example_inputs):
    with _eval(model):
        try:
            return torch.export.export(model, _as_args(example_inputs))
        except Exception as e:  # torch raises many types here; the message is what helps
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"torch.export could not capture the model ({type(e).__name__}: {first}); channel "
                              "pruning reads the model's graph from it, as intinfer.quantize does") from e


class _Graph:
    """The model's torch.export graph, read for which modules each convolution's channels reach."""

    def __init__(self, model: torch.nn.Module, example_inputs):
        program = _export(model, example_inputs)
        signature = program.graph_signature
        self.owner = {**signature.inputs_to_parameters, **signature.inputs_to_buffers}  # placeholder -> name
        self.nodes = list(program.graph.nodes)
        self.modules = dict(model.named_modules())

    def module_of(self, node, i: int) -> str | None:
        """The path of the module owning the parameter or buffer that is argument `i` of `node`."""
        arg = node.args[i] if i < len(node.args) else None
        if getattr(arg, "op", None) != "placeholder" or arg.name not in self.owner:
            return None
        return self.owner[arg.name].rpartition(".")[0]

    def plans(self) -> dict:
        """{path: _Plan, or the reason as a string} for every torch.nn.Conv2d the graph calls."""
        out = {}
        for node in self.nodes:
            path = self.module_of(node, 1) if _op(node) in _CONVS else None
            if path is not None and isinstance(self.modules.get(path), torch.nn.Conv2d):
                try:
                    out[path] = self._plan(node, path)
                except _Refused as e:
                    out[path] = str(e)
        return out

    def _single_call(self, node, path: str) -> None:
        for arg in node.args:
            if getattr(arg, "op", None) == "placeholder" and arg.name in self.owner and len(arg.users) > 1:
                raise _Refused(f"'{path}' is called more than once (shared weights), so its channels cannot be "
                               "removed for one call alone")

    @staticmethod
    def _where(node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        return f"{node.target} in '{path}'" if path else f"{node.target} in the model's forward"

    def _plan(self, conv, path: str) -> _Plan:
        module = self.modules[path]
        if module.groups != 1:
            if module.groups == module.in_channels == module.out_channels:
                raise _Refused(f"'{path}' is a depthwise convolution: its channels are its input's, so prune the "
                               "convolution that produces them")
            raise _Refused(f"'{path}' is a grouped convolution (groups={module.groups}); only ordinary "
                           "convolutions (groups=1) can lose output channels")
        if _op(conv) == "convolution" and conv.args[6]:
            raise _Refused(f"'{path}' is a transposed convolution")
        self._single_call(conv, path)
        plan = _Plan(module.out_channels)
        todo, seen = [(conv, 1)], set()
        while todo:
            node, block = todo.pop()
            for user in node.users:
                if user not in seen:
                    seen.add(user)
                    todo.extend(self._step(user, node, block, plan, path))
        return plan

    def _step(self, user, node, block: int, plan: _Plan, path: str) -> list:
        """Where the channels of `path`, carried by `node` (`block` values per channel along axis
        1), go through `user`: the (node, block) pairs that carry them on. Records batch norms and
        depthwise convolutions in plan.followers, the layers that read them in plan.consumers."""
        op = _op(user)
        where = self._where(user)
        others = [a for a in (*user.args, *user.kwargs.values()) if a is not node and hasattr(a, "op")]
        if op == "output":
            raise _Refused(f"channels of '{path}' reach the model's output: removing them would change its shape")
        if op in _ARITHMETIC:
            if others:
                if op in ("mul", "div"):
                    raise _Refused(f"channels of '{path}' are multiplied by another tensor ({where}, e.g. a "
                                   "squeeze-and-excitation gate) that would need the same channels removed")
                raise _Refused(f"channels of '{path}' feed a residual add ({where}): both sides of an add keep "
                               "the same channels, so removing them would break it; prune channels that stay "
                               "inside a block (an expansion convolution's) instead")
            return [(user, block)]
        if op in ("cat", "concat", "stack"):
            raise _Refused(f"channels of '{path}' feed a concatenation ({where}); removing them would shift the "
                           "channels after them, which channel pruning does not follow")
        if (others and op not in _BATCH_NORMS | _CONVS | {"linear"}) or user.args[0] is not node:
            raise _Refused(f"channels of '{path}' feed {where} together with another tensor, which channel "
                           "pruning does not follow")
        if op == "getitem":
            if user.args[1] != 0:
                raise _Refused(f"channels of '{path}' feed {where}, which reads a second result of an op")
            return [(user, block)]
        shape = list(node.meta["val"].shape)
        if op in _CHANNELWISE or op in _POOLS:
            return [(user, block)]
        if op in ("pad", "constant_pad_nd"):
            if len(user.args[1]) > 2 * (len(shape) - 2):
                raise _Refused(f"channels of '{path}' are padded along the channel axis ({where})")
            return [(user, block)]
        if op in _REDUCTIONS:
            dims = user.args[1] if len(user.args) > 1 else None
            if not dims or any(d % len(shape) in (0, 1) for d in dims):
                raise _Refused(f"channels of '{path}' are reduced over the batch or channel axis ({where})")
            return [(user, block)]
        if op in _RESHAPES:
            return [(user, self._reshaped(user, shape, block, path, where))]
        if op in _BATCH_NORMS:
            norm = self.module_of(user, 1) or self.module_of(user, 3)
            if norm is None or not isinstance(self.modules.get(norm), torch.nn.modules.batchnorm._BatchNorm):
                raise _Refused(f"channels of '{path}' feed a batch norm that is not a torch.nn batch norm module "
                               f"({where})")
            if block != 1:
                raise _Refused(f"channels of '{path}' are flattened before the batch norm '{norm}'")
            self._single_call(user, norm)
            plan.followers.append((norm, "batch_norm"))
            return [(user, 1)]
        if op in _CONVS | {"linear"} and self.module_of(user, 1) is None:
            raise _Refused(f"channels of '{path}' feed {where}, whose weight is not a parameter of a module (a "
                           "parametrization or torch.nn.utils.prune's mask computes it)")
        if op in _CONVS:
            other = self.module_of(user, 1)
            module = self.modules.get(other)
            if not isinstance(module, torch.nn.Conv2d):
                raise _Refused(f"channels of '{path}' feed a convolution that is not a torch.nn.Conv2d ({where})")
            self._single_call(user, other)
            if module.groups == 1:
                plan.consumers.append((other, 1))
                return []
            if module.groups == module.in_channels == module.out_channels:
                plan.followers.append((other, "depthwise"))
                return [(user, 1)]
            raise _Refused(f"channels of '{path}' feed the grouped convolution '{other}' (groups={module.groups}), "
                           "whose groups would no longer line up")
        if op == "linear":
            other = self.module_of(user, 1)
            if len(shape) != 2 or not isinstance(self.modules.get(other), torch.nn.Linear):
                raise _Refused(f"channels of '{path}' feed {where}, which reads them other than as the features of "
                               "a torch.nn.Linear")
            self._single_call(user, other)
            plan.consumers.append((other, block))
            return []
        raise _Refused(f"channels of '{path}' feed {where}, an op channel pruning does not follow (it follows "
                       "batch norms, activations, pooling, padding, depthwise convolutions and flattening, up to "
                       "the next convolution or linear layer)")

    @staticmethod
    def _reshaped(user, shape: list, block: int, path: str, where: str) -> int:
        """The values per channel along axis 1 after a reshape, which must keep each channel's values
        together: axis 1 holds `block` values a channel and the axes after it one value each."""
        new = list(user.meta["val"].shape)
        run = block * math.prod(shape[2:])  # the values of one channel in one example, consecutive
        channels = shape[1] // block
        rest = math.prod(new[2:])
        if len(new) < 2 or new[0] != shape[0] or run % rest or new[1] != channels * (run // rest) \
                or (len(new) > 2 and run // rest != 1):
            raise _Refused(f"channels of '{path}' are reshaped ({where}, {shape} -> {new}) in a way that does not "
                           "keep each channel's values together")
        return run // rest


def _plans(model: torch.nn.Module, example_inputs, layers) -> dict:
    """{path: _Plan} for the named convolutions (ValueError for one that cannot lose channels), or
    for every convolution that can when `layers` is None."""
    if isinstance(layers, str):
        layers = [layers]
    modules = dict(model.named_modules())
    for path in layers or ():
        if path not in modules:
            raise ValueError(f"the model has no module '{path}'")
        if not isinstance(modules[path], torch.nn.Conv2d):
            raise ValueError(f"'{path}' is a {type(modules[path]).__name__}, not a torch.nn.Conv2d")
        _check_plain(modules[path], path)
    found = _Graph(model, example_inputs).plans()
    if layers is None:
        return {path: plan for path, plan in found.items() if isinstance(plan, _Plan)}
    out = {}
    for path in layers:
        if path not in found:
            raise ValueError(f"'{path}' is not called by the model's forward on the example inputs")
        if isinstance(found[path], str):
            raise ValueError(found[path])
        out[path] = found[path]
    return out


def _gate_channels(x: torch.Tensor, gate: torch.Tensor, block: int) -> torch.Tensor:
    if x.dim() == 2:  # a linear layer's features, `block` of them per channel
        return x * gate.repeat_interleave(block, dim=1)
    return x * gate.reshape(*gate.shape, *[1] * (x.dim() - 2))


def _l1(model: torch.nn.Module, plans: dict) -> dict:
    modules = dict(model.named_modules())
    return {path: modules[path].weight.detach().abs().sum((1, 2, 3)).float() for path in plans}


def channel_importance(model: torch.nn.Module, example_inputs, layers=None, method: str = "l1", batches=None,
                       loss_fn=None) -> dict:
    """Importance of each output channel of convolutions: {path: float32 [out_channels]}.

    layers: module paths of torch.nn.Conv2d layers; None: every convolution whose output channels
    can be removed (see prune_channels).
    method "l1": the L1 norm of each filter (Li et al. 2017), no data needed.
    method "taylor": the mean over the examples of `batches` of |dL/dxi| for a gate xi on the
    channel where the next layer reads it, at xi = 1 (Molchanov et al. 2017's |sum over positions
    of activation x gradient|, taken where zeroing the channel is exactly what pruning does), the
    model in eval mode; loss_fn(output, batch) -> one loss per example, default contrastive
    distillation from the model as it is now (its output flattened per example as the embedding)."""
    plans = _plans(model, example_inputs, layers)
    if method == "l1":
        return _l1(model, plans)
    if method != "taylor":
        raise ValueError(f"unknown method {method!r}: 'l1' or 'taylor'")
    if batches is None:
        raise ValueError("method 'taylor' needs batches")
    modules = dict(model.named_modules())
    sites = {path: (plan.channels, [(modules[reader], functools.partial(_gate_channels, block=block))
                                    for reader, block in plan.consumers])
             for path, plan in plans.items()}
    with _eval(model):
        return _gate_importance(model, batches, loss_fn, sites)


def _prune(model: torch.nn.Module, plans: dict, channels: dict) -> None:
    modules = dict(model.named_modules())
    drops = {}
    for path, drop in channels.items():
        plan = plans[path]
        drop = _indices(drop, plan.channels, f"'{path}' (output channels)")
        if len(drop) == plan.channels:
            raise ValueError(f"'{path}': removing all {plan.channels} of its output channels would leave the "
                             "layers after it no input; keep at least one")
        for other, _ in plan.followers + plan.consumers:
            _check_plain(modules[other], other)
        if drop:
            drops[path] = drop
    for path, drop in drops.items():
        plan = plans[path]
        keep = torch.tensor([c for c in range(plan.channels) if c not in drop], dtype=torch.long)
        n = keep.numel()
        conv = modules[path]
        _select(conv, "weight", keep, 0)
        _select(conv, "bias", keep, 0)
        conv.out_channels = n
        for other, kind in plan.followers:
            module = modules[other]
            names = ("weight", "bias", "running_mean", "running_var") if kind == "batch_norm" else ("weight", "bias")
            for name in names:
                _select(module, name, keep, 0)
            if kind == "batch_norm":
                module.num_features = n
            else:
                module.in_channels = module.out_channels = module.groups = n
        for other, block in plan.consumers:
            module = modules[other]
            features = (keep[:, None] * block + torch.arange(block)).flatten()
            _select(module, "weight", features, 1)
            if isinstance(module, torch.nn.Linear):
                module.in_features = features.numel()
            else:
                module.in_channels = n


def _least_important(plans: dict, importance: dict, fraction: float) -> dict:
    channels = {}
    for path, scores in importance.items():
        n = plans[path].channels
        scores = torch.as_tensor(scores, dtype=torch.float64)
        if tuple(scores.shape) != (n,):
            raise ValueError(f"importance of '{path}' has shape {tuple(scores.shape)}; the layer has {n} output "
                             "channels: compute it on the model as it is now")
        k = _count(fraction, None, n)
        if k >= n:
            raise ValueError(f"'{path}': pruning {k} of its {n} output channels would leave it none; keep at least one")
        channels[path] = sorted(sorted(range(n), key=lambda c: (scores[c].item(), c))[:k])
    return channels


def prune_channels(model: torch.nn.Module, example_inputs, channels: dict) -> None:
    """Removes output channels of convolutions physically, in place: {conv path: [channels]}.

    The convolution loses the filters (weight rows, bias); what its channels pass through on the
    way to the next layer that mixes them loses the same channels: batch norms (weight, bias,
    running statistics) and depthwise convolutions (groups = channels: filters, bias, groups);
    that next layer, a convolution or a linear layer (after pooling and flattening), loses the
    matching input channels or features. The path is read from the model's torch.export graph
    on `example_inputs`, so the channels are followed however forward() is written.

    Refused with a ValueError naming the layer, the model left as it was: channels that feed a
    residual add, a concatenation, a multiplication by another tensor, a grouped convolution or
    the model's output; a depthwise convolution itself (prune the one before it); shared modules;
    indices out of range or listed twice; all channels of a layer."""
    if channels:
        _prune(model, _plans(model, example_inputs, list(channels)), channels)


def prune_channels_by_importance(model: torch.nn.Module, example_inputs, importance: dict, fraction: float) -> dict:
    """Removes round(fraction * channels) of the least important output channels of each
    convolution in `importance` ({path: [out_channels]}, from channel_importance). Returns
    {path: [channels removed]}."""
    plans = _plans(model, example_inputs, list(importance))
    channels = _least_important(plans, importance, fraction)
    _prune(model, plans, channels)
    return channels


def prune_channels_by_norm(model: torch.nn.Module, example_inputs, fraction: float, layers=None) -> dict:
    """Li et al. 2017: removes round(fraction * channels) of the output channels with the smallest
    filter L1 norms from each convolution in `layers` (default: every one whose channels can be
    removed). Returns {path: [channels removed]}."""
    plans = _plans(model, example_inputs, layers)
    channels = _least_important(plans, _l1(model, plans), fraction)
    _prune(model, plans, channels)
    return channels
