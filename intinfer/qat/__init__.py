"""Quantization-aware training that simulates the engine (Jacob et al. 2018; docs/qat.md).

    qm = intinfer.qat.prepare(model, example_inputs)    # a new trainable module
    ... train qm as usual (qm.train(), an optimizer over qm.parameters()) ...
    qm.eval(); qm(x)                                     # the engine's integer result, bit for bit
    intinfer.qat.convert(qm).save("model.iif")

A pruned model keeps its zeros: prepare(..., masks=masks) (intinfer.prune) multiplies each masked
weight by its mask in every forward pass, so the pruned weights get no gradient, what an
optimizer does to them is never read, and convert writes zero codes there.

In training mode the forward pass is float with fake quantization: weights per output channel,
symmetric, with a straight-through estimator; every activation the engine quantizes on the
grid of its exponential-moving-average range; batch norms folded into their convolutions with
batch statistics until `freeze_bn_after` steps, then with the frozen running statistics. With
`exact_forward` (the default) each op's output value is then replaced by the engine's integer
result while its gradient stays the float op's (a straight-through estimator around every op),
so that training sees the engine's own rounding. In eval mode the forward pass is the engine's
integer arithmetic (integer.py) on what `convert` writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..export import QuantizedModel, _as_inputs, _qparams, _wide_qparams
from ..export.graph import (FloatGraph, Node, _apply_act, _eval, broadcast_leading, capture, gather_rows,
                            per_token)
from ..export.lower import (SAME_QUANT, Lowering, check_engine_limits, check_weight_bits, check_weight_bits_names,
                            lut_table, needs_observer, node_bits, quantize_constant, split_residual_norms, wide_bounds,
                            wide_nodes, writes_float)
from ..export.smoothing import smooth_layer_norms
from ..quant import (activation_range, channel_scales, layer_scales, quantize_bias, quantize_weights, round_weights,
                     softmax_constants, weight_qmax)
from . import integer

__all__ = ["QATConfig", "QATModel", "prepare", "convert"]


@dataclass(frozen=True)
class QATConfig:
    """weight_bits: 2 to 8 for conv/linear weights (embeddings stay 8-bit), or a dict {module path:
    bits} for the conv, linear and embedding modules named (8 for the others), as
    `intinfer.quantize` takes it. averaging_constant:
    the EMA weight of each batch's min/max in the activation ranges. freeze_bn_after: training
    steps after which batch norms use their running statistics (None: never, until eval and
    convert, which always use them). freeze_observers_after: training steps after which the
    activation ranges stop moving (None: never). symmetric_activations: ranges symmetric about 0
    (zero point 128, as Q8BERT). exact_forward: training-mode values are the engine's integer
    results (gradients the float ops'), whenever the batch norms are frozen or there are none;
    False keeps plain fake quantization (faster; training then sees float rounding). wide_ffn:
    as `intinfer.quantize`'s (the FFN's activation wide, read by its linear as int16)."""
    weight_bits: int | dict = 8
    averaging_constant: float = 0.01
    freeze_bn_after: int | None = None
    freeze_observers_after: int | None = None
    symmetric_activations: bool = False
    exact_forward: bool = True
    wide_ffn: bool = False


class _NodeState(torch.nn.Module):
    """One graph node's trainable parameters and, if the engine quantizes its output with
    parameters of its own, its activation range ([lo, hi], NaN until seen); a pruned conv /
    linear weight's mask (True: kept)."""

    def __init__(self, node: Node, observed: bool, mask: torch.Tensor | None = None):
        super().__init__()
        if observed:
            self.register_buffer("range", torch.full((2,), float("nan"), dtype=torch.float64))
        a = node.attrs
        if node.op in ("conv", "linear"):
            bn = a.get("bn")
            src = bn if bn is not None else a
            self.weight = torch.nn.Parameter(src["weight"].detach().clone())  # unfolded when a batch norm follows
            self.bias = torch.nn.Parameter(src["bias"].detach().clone())
            if bn is not None:
                self.gamma = torch.nn.Parameter(bn["gamma"].clone())
                self.beta = torch.nn.Parameter(bn["beta"].clone())
                self.register_buffer("running_mean", bn["mean"].clone())
                self.register_buffer("running_var", bn["var"].clone())
            if mask is not None:
                self.register_buffer("mask", mask.clone())
                with torch.no_grad():
                    self.weight.masked_fill_(~mask, 0)
        elif node.op == "gather":
            self.weight = torch.nn.Parameter(a["weight"].detach().clone())
        elif node.op == "layer_norm":
            self.weight = torch.nn.Parameter(a["weight"].detach().clone())
            self.bias = torch.nn.Parameter(a["bias"].detach().clone())

    def masked_weight(self) -> torch.Tensor:
        """The conv/linear weight with its pruned entries zero: their gradient is zero too, and
        what an optimizer's momentum or weight decay does to them is never read."""
        return self.weight * self.mask if hasattr(self, "mask") else self.weight

    def folded(self, node: Node) -> tuple[torch.Tensor, torch.Tensor]:
        """The conv/linear weight and bias with the batch norm folded in by its running statistics,
        as float32 (what the engine's weights are quantized from)."""
        weight = self.masked_weight().detach()
        if not hasattr(self, "gamma"):
            return weight.float().clone(), self.bias.detach().float().clone()
        scale = self.gamma.detach().double() / torch.sqrt(self.running_var.double() + node.attrs["bn"]["eps"])
        w = weight.double() * scale.reshape([-1] + [1] * (weight.dim() - 1))
        b = (self.bias.detach().double() - self.running_mean.double()) * scale + self.beta.detach().double()
        return w.float(), b.float()


def _fake_quant_weight(w: torch.Tensor, qmax: int) -> torch.Tensor:
    """Per-output-channel symmetric fake quantization with a straight-through gradient."""
    scale = torch.from_numpy(channel_scales(w.detach().reshape(w.shape[0], -1).numpy(), qmax))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale)).float()
    return torch.fake_quantize_per_channel_affine(w, scale, torch.zeros_like(scale, dtype=torch.int32), 0, -qmax, qmax)


class QATModel(torch.nn.Module):
    """The trainable model `prepare` returns: forward(*inputs) gives the float model's outputs,
    fake-quantized in training mode and computed as the engine does in eval mode."""

    def __init__(self, graph: FloatGraph, config: QATConfig, masks: dict | None = None):
        super().__init__()
        self.graph = graph
        self.config = config
        self.wide = wide_nodes(graph, config.wide_ffn, config.weight_bits)
        check_engine_limits(graph, self.wide)
        self.bounds = wide_bounds(graph, self.wide)
        self._observed_nodes = {n for n in graph.nodes if needs_observer(n) and not writes_float(graph, n)}
        # Keyed by position: a node that torch.export split in two (mean -> pool + reshape) keeps one name.
        self._keys = {n: f"{i}_{n.name}" for i, n in enumerate(graph.nodes)}
        masks = masks or {}
        self.states = torch.nn.ModuleDict({self._keys[n]: _NodeState(n, self._observed(n), masks.get(n))
                                           for n in graph.nodes})
        # A norm computed twice (split_residual_norms: wide for the residual add, uint8 for the
        # linears) is one norm of the float model: its copies train one pair of parameters.
        first: dict = {}
        for n in graph.nodes:
            if n.op == "layer_norm":
                kept = first.setdefault(id(n.attrs["weight"]), self.states[self._keys[n]])
                self.states[self._keys[n]].weight, self.states[self._keys[n]].bias = kept.weight, kept.bias
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._has_bn = any("bn" in n.attrs for n in graph.nodes)
        self._frozen: tuple | None = None  # (state versions, what _freeze computed from them)
        self._seen: tuple | None = None

    def forward(self, *xs):
        if len(xs) != len(self.graph.inputs):
            raise ValueError(f"the model takes {len(self.graph.inputs)} inputs, got {len(xs)}")
        outs = self._training_forward(xs) if self.training else self._integer_forward(xs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    # -- training: float with fake quantization -----------------------------------------

    def _observed(self, node: Node) -> bool:
        return node in self._observed_nodes

    def _training_forward(self, xs) -> list:
        cfg = self.config
        steps = int(self.steps)
        update = cfg.freeze_observers_after is None or steps < cfg.freeze_observers_after
        bn_live = self._has_bn and (cfg.freeze_bn_after is None or steps < cfg.freeze_bn_after)
        exact = cfg.exact_forward and not bn_live  # batch statistics are not what the engine folds
        vals: dict = {}
        codes: dict = {}
        q: dict = {}
        for node in self.graph.nodes:
            if node.op == "input":
                x = xs[self.graph.inputs.index(node)]
                v = x if node.attrs.get("dtype") == "int32" else x.float()
            else:
                args = [vals[i] if isinstance(i, Node) else i for i in node.inputs]
                v = _apply_act(self._float_op(node, args, bn_live), node.act)
            v = self._fake_quant(node, v, update)
            vals[node] = self._engine_value(node, v, xs, codes, q) if exact else v
        self.steps += 1
        self._seen = tuple(x.detach() for x in xs)
        return [vals[o] for o in self.graph.outputs]

    def _engine_value(self, node: Node, v: torch.Tensor, xs, codes: dict, q: dict) -> torch.Tensor:
        """v with the engine's value in the forward pass and v's gradient in the backward pass:
        a straight-through estimator around the whole op."""
        with torch.no_grad():
            q[node] = self._node_q(node, q)
            if node.op == "input":
                codes[node] = self._input_codes(node, xs[self.graph.inputs.index(node)], q[node])
            else:
                codes[node] = self._integer_op(node, [codes[i] if isinstance(i, Node) else i for i in node.inputs], q,
                                               self._params(node))
            if not v.dtype.is_floating_point:
                return v
            d = codes[node] if q[node] is None else integer.dequantize(codes[node], *q[node])
        return d + (v - v.detach())  # exactly d (v + (d - v) would round in float32)

    def _qmax(self, node: Node) -> int:
        return weight_qmax(node_bits(self.config.weight_bits, node))

    def _float_op(self, node: Node, a: list, bn_live: bool) -> torch.Tensor:
        st = self.states[self._keys[node]]
        at = node.attrs
        if node.op in ("conv", "linear"):
            def op(w, b=None):
                if node.op == "linear":
                    return F.linear(a[0], w, b)
                t, l, bo, r = at["pads"]
                x = F.pad(a[0], (l, r, t, bo)) if any(at["pads"]) else a[0]
                return F.conv2d(x, w, b, at["stride"], 0, at["dilation"], at["groups"])
            if not hasattr(st, "gamma"):
                return op(_fake_quant_weight(st.masked_weight(), self._qmax(node)), st.bias)
            bn = at["bn"]
            scale = st.gamma / torch.sqrt(st.running_var + bn["eps"])
            shape = [1, -1] + [1] * (a[0].dim() - 2)
            y = op(_fake_quant_weight(st.masked_weight() * scale.reshape([-1] + [1] * (st.weight.dim() - 1)),
                                      self._qmax(node)))
            if bn_live:  # batch statistics of the unfolded output (Jacob et al. 2018, section 3.2)
                unfolded = y / scale.reshape(shape) + st.bias.reshape(shape)
                return F.batch_norm(unfolded, st.running_mean, st.running_var, st.gamma, st.beta, True,
                                    bn["momentum"], bn["eps"])
            return y + (st.beta + (st.bias - st.running_mean) * scale).reshape(shape)
        if node.op == "gather":
            table = _fake_quant_weight(st.weight, self._qmax(node))
            return F.embedding(gather_rows(node, a[0]), table)
        if node.op == "layer_norm":
            return F.layer_norm(a[0], (st.weight.shape[0],), st.weight, st.bias, at["eps"])
        return _eval(node, a)

    def _fake_quant(self, node: Node, v: torch.Tensor, update: bool) -> torch.Tensor:
        if node.op == "softmax":
            return torch.fake_quantize_per_tensor_affine(v, 1.0 / 256, 0, 0, 255)
        if not self._observed(node):
            return v
        rng = self.states[self._keys[node]].range
        lo, hi = float(v.detach().min()), float(v.detach().max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise RuntimeError(f"'{node.name}' ({node.source}) computed a NaN or infinite value in training: the "
                               "inputs hold one, or the training diverged")
        if math.isnan(rng[0]):
            rng[0], rng[1] = lo, hi
        elif update:
            c = self.config.averaging_constant
            rng[0] += c * (lo - rng[0])
            rng[1] += c * (hi - rng[1])
        scale, zp = self._qparams(node)
        if node in self.wide:
            return torch.fake_quantize_per_tensor_affine(v, scale, 0, -self.bounds[node], self.bounds[node])
        return torch.fake_quantize_per_tensor_affine(v, scale, zp, 0, 255)

    def _qparams(self, node: Node) -> tuple[float, int]:
        lo, hi = self.states[self._keys[node]].range.tolist()
        if math.isnan(lo):
            raise RuntimeError(f"'{node.name}' has no activation range yet: run the model in training mode on at "
                               "least one batch (a calibration pass or a training step) first")
        if node in self.wide:
            return _wide_qparams(lo, hi, self.bounds[node])
        return _qparams(lo, hi, self.config.symmetric_activations)

    # -- evaluation: the engine's integer arithmetic -------------------------------------

    def _node_q(self, node: Node, q: dict):
        if node.op == "softmax":
            return (1.0 / 256, 0)
        if node.op in SAME_QUANT:
            return q[node.inputs[0]]
        return self._qparams(node) if self._observed(node) else None

    def quantization(self) -> dict:
        """Each node's (scale, zero point) as the engine will have it: None for float and integer
        values. Raises before the first training-mode batch."""
        q: dict = {}
        for node in self.graph.nodes:
            q[node] = self._node_q(node, q)
        return q

    def _params(self, node: Node):
        st = self.states[self._keys[node]]
        if node.op in ("conv", "linear"):
            return dict(zip(("weight", "bias"), st.folded(node)))
        if node.op in ("gather", "layer_norm"):
            return {k: p.detach().float().clone() for k, p in st.named_parameters()}
        return None

    @torch.no_grad()
    def _freeze(self) -> dict:
        """What the eval forward and `convert` share: parameters in the float form the lowering
        quantizes (batch norms folded) and the activation quantization. Recomputed whenever a
        parameter or buffer has changed (tensors count their in-place updates in `_version`)."""
        versions = tuple(t._version for t in (*self.parameters(), *self.buffers()))
        if self._frozen is None or self._frozen[0] != versions:
            params = {}
            for node in self.graph.nodes:
                p = self._params(node)
                if p is None:
                    continue
                if not all(bool(torch.isfinite(v).all()) for v in p.values()):
                    raise RuntimeError(f"the parameters of '{node.name}' ({node.source}) are not finite: the "
                                       "training diverged")
                params[node] = p
            self._frozen = (versions, {"q": self.quantization(), "params": params})
        return self._frozen[1]

    @torch.no_grad()
    def _integer_forward(self, xs) -> list:
        frozen = self._freeze()
        q, params = frozen["q"], frozen["params"]
        vals = {node: self._input_codes(node, torch.as_tensor(x), q[node]) for node, x in zip(self.graph.inputs, xs)}
        for node in self.graph.nodes:
            if node.op != "input":
                vals[node] = self._integer_op(node, [vals[i] if isinstance(i, Node) else i for i in node.inputs], q,
                                              params.get(node))
        outs = []
        for o in self.graph.outputs:
            outs.append(vals[o] if q[o] is None else integer.dequantize(vals[o], *q[o]))
        return outs

    @staticmethod
    def _input_codes(node: Node, x: torch.Tensor, q) -> torch.Tensor:
        return x.long() if q is None else integer.quantize(x, *q)

    def _integer_op(self, node: Node, a: list, q: dict, params) -> torch.Tensor:
        I = integer
        at = node.attrs
        qin = q[node.inputs[0]] if isinstance(node.inputs[0], Node) else None
        qout = q[node]
        lo, hi = activation_range(node.act, *qout) if node.act and qout else (0, 255)
        op = node.op
        if op in ("conv", "linear"):
            w, b = params["weight"], params["bias"]
            qmax = self._qmax(node)
            scales = layer_scales(w.double().numpy(), b.double().numpy(), qin[0], qmax)
            codes = torch.from_numpy(round_weights(w.double().numpy(), scales, qmax).astype(np.int64))
            bias = torch.from_numpy(quantize_bias(b.double().numpy(), qin[0], scales).astype(np.int64))
            if op == "conv":
                acc = I.conv_accumulate(a[0], qin[1], codes, bias, at["stride"], at["pads"], at["dilation"],
                                        at["groups"])
                return I.output_stage(acc, [I.f32(qin[0]) * I.f32(s) / I.f32(qout[0]) for s in scales], qout[1],
                                      lo, hi, axis=1)
            x = a[0]
            if node.inputs[0] in self.wide:  # read within its bound, as FULLY_CONNECTED's input_bound
                x = torch.clamp(x, -self.bounds[node.inputs[0]], self.bounds[node.inputs[0]])
            acc = I.linear_accumulate(x, qin[1], codes, bias)
            if qout is None:
                return I.float_output(acc, qin[0], scales)
            if node in self.wide:
                return I.wide_from_float(I.float_output(acc, qin[0], scales), qout[0])
            return I.output_stage(acc, [I.f32(qin[0]) * I.f32(s) / I.f32(qout[0]) for s in scales], qout[1], lo, hi)
        if op in ("add", "mul"):
            other = node.inputs[1]
            b_val, qb = (a[1], q[other]) if isinstance(other, Node) else _constant_codes(other)
            if op == "mul":
                return I.mul(a[0], qin, b_val, qb, qout, lo, hi)
            return I.add(a[0], qin, b_val, qb, qout, lo, hi, wide=node in self.wide)
        if op == "cat":
            parts = [I.rescale(*((v, q[i]) if isinstance(i, Node) else _constant_codes(i)), qout)
                     for v, i in zip(a, node.inputs)]
            return torch.cat(broadcast_leading(parts, at["dim"]), at["dim"])
        if op == "avg_pool":
            return I.avg_pool(a[0], qin, qout, at["kernel"], at["stride"], at["padding"], at["count_include_pad"])
        if op == "global_avg_pool":
            return I.global_avg_pool(a[0], qin, qout)
        if op == "max_pool":
            return I.max_pool(a[0], at["kernel"], at["stride"], at["padding"])
        if op in ("reshape", "permute", "slice"):
            return _eval(node, a)
        if op == "apply_mask":
            return torch.where(per_token(a[1], a[0]) != 0, a[0], torch.full_like(a[0], qin[1]))
        if op == "relu":
            return torch.clamp(a[0], *activation_range(node.act, *qin))
        if op == "lut":
            table = lut_table(at["fn"], qin, qout, self.bounds.get(node))
            return torch.from_numpy(table.astype(np.int64))[a[0]]
        if op == "gather":
            codes, scales = quantize_weights(params["weight"].numpy(), qmax=self._qmax(node))
            return I.gather(torch.from_numpy(codes.astype(np.int64)), scales, gather_rows(node, a[0]), qout,
                            node in self.wide)
        if op == "layer_norm":
            if node in self.wide:
                lo, hi = -I.WIDE_MAX, I.WIDE_MAX
            return I.layer_norm(a[0], qin[1], params["weight"], params["bias"], qout, lo, hi)
        if op == "softmax":
            relative = at.get("relative")
            table, steps = softmax_constants(qin[0], None if relative is None else relative.numpy())
            table = torch.from_numpy(table.astype(np.int64))
            bias = None if steps is None else torch.from_numpy(steps.astype(np.int64))
            return I.softmax(a[0], table, a[1] if len(a) > 1 else None, bias)
        if op == "matmul":
            return I.matmul(a[0], qin, a[1], q[node.inputs[1]], qout, at["transpose_b"], at["alpha"])
        if op == "masked_mean":
            y = I.masked_mean(a[0], qin, a[1])
            return y if qout is None else I.quantize(y, *qout)
        raise AssertionError(f"no integer form for op '{op}'")


def prepare(model: torch.nn.Module, example_inputs, config: QATConfig | None = None,
            dynamic_shapes=None, smooth_with=None, masks=None) -> QATModel:
    """A trainable copy of `model` that simulates the engine's quantization (see the module
    docstring). example_inputs and dynamic_shapes are as for torch.export and intinfer.quantize.
    smooth_with: a few input batches; layer-norm outputs are then smoothed into the linears that
    read them (as `intinfer.quantize(..., smooth=True)`, transformers) before training.
    masks: {module path: bool tensor in the shape of its weight, True where kept} of conv and
    linear modules (the `intinfer.prune.Masks` of a pruned model): those weights stay zero
    through training and convert.
    The model's own parameters are copied, not shared: `model` is left as it was."""
    config = config or QATConfig()
    if not isinstance(config, QATConfig):
        raise TypeError(f"config must be an intinfer.qat.QATConfig, got {type(config).__name__}")
    check_weight_bits(config.weight_bits)
    modes = {m: m.training for m in model.modules()}
    try:
        graph = capture(model, _as_inputs(example_inputs), dynamic_shapes)
    finally:
        for m, training in modes.items():
            m.training = training
    check_weight_bits_names(config.weight_bits, graph)
    node_masks = _node_masks(masks, graph) if masks is not None else None
    if smooth_with is not None:
        smooth_layer_norms(graph, [_as_inputs(b) for b in smooth_with])
    split_residual_norms(graph)
    return QATModel(graph, config, node_masks)


def _node_masks(masks, graph: FloatGraph) -> dict:
    """{conv/linear node: bool mask} of a {module path: mask} mapping; a path that names no conv or
    linear module of the graph, or a mask of another shape than its weight, is refused."""
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must map module paths to bool tensors (intinfer.prune.Masks), got "
                        f"{type(masks).__name__}")
    layers: dict = {}
    for n in graph.nodes:
        if n.op in ("conv", "linear"):
            layers.setdefault(n.attrs["module"], []).append(n)
    unknown = sorted(set(masks) - set(layers))
    if unknown:
        raise ValueError(f"masks name {unknown}, which are not conv/linear modules of the exported graph; those are "
                         f"{sorted(layers)}")
    out = {}
    for path, mask in masks.items():
        mask = torch.as_tensor(mask).to(torch.bool).cpu()
        for n in layers[path]:
            bn = n.attrs.get("bn")
            shape = (bn if bn is not None else n.attrs)["weight"].shape  # unfolded, as the module holds it
            if tuple(mask.shape) != tuple(shape):
                raise ValueError(f"the mask of '{path}' has shape {list(mask.shape)}, its weight {list(shape)}")
            out[n] = mask
    return out


def convert(qat_model: QATModel) -> QuantizedModel:
    """The .iif graph of a trained QATModel (save it, or load it to run): what its eval-mode
    forward computes, bit for bit."""
    if not isinstance(qat_model, QATModel):
        raise TypeError(f"convert takes the model intinfer.qat.prepare returned, got {type(qat_model).__name__}")
    frozen = qat_model._freeze()
    # A copy of the graph takes the trained parameters: the model's own graph stays as captured,
    # and an earlier convert's result does not change with later training.
    graph, new = qat_model.graph.copy()
    for node, params in frozen["params"].items():
        new[node].attrs.update(params)
    qparams = {new[n]: v for n, v in frozen["q"].items() if v is not None}
    cfg = qat_model.config
    lowering = Lowering(graph, qparams, {"producer": "intinfer.qat",
                                         "weight_bits": json.dumps(cfg.weight_bits, sort_keys=True),
                                         "wide_ffn": str(bool(cfg.wide_ffn)),
                                         "training_steps": str(int(qat_model.steps))},
                        None, None, {new[n] for n in qat_model.wide}, cfg.weight_bits)
    seen = [qat_model._seen] if qat_model._seen is not None else []
    return QuantizedModel(lowering.run(), graph, lowering, seen)


def _constant_codes(c: torch.Tensor) -> tuple:
    """A float constant operand's uint8 codes and (scale, zero point), as the lowering writes it."""
    codes, scale, zp = quantize_constant(c.detach().double().numpy())
    return torch.from_numpy(codes.astype(np.int64)), (scale, zp)
