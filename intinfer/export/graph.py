"""Capture a float torch model with torch.export and simplify it into intinfer's float graph:
batch norms folded into the conv/linear before them, zero pads folded into the following conv,
ReLU/ReLU6/hardtanh fused into their producer, unary functions turned into lookup tables,
no-ops removed. The result runs in torch (for calibration and as the float reference) and is
what the lowering quantizes op for op."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

aten = torch.ops.aten


class ExportError(ValueError):
    """The model cannot be exported: capture failed or it uses an op intinfer does not run."""


@dataclass(eq=False)
class Node:
    name: str
    op: str  # input, conv, linear, add, mul, cat, avg_pool, max_pool, global_avg_pool, reshape, lut, relu
    inputs: list  # Nodes, or torch tensors for constant operands of add/mul
    attrs: dict = field(default_factory=dict)
    act: str | None = None  # fused activation: None, "relu" or "relu6"
    shape: tuple = ()  # logical (PyTorch) shape at export time
    source: str = ""

    def __repr__(self) -> str:
        return f"<{self.op} {self.name}>"


# Unary functions that become 256-entry lookup tables (evaluated in float64 by torch itself).
LUT_OPS: dict = {
    aten.sigmoid.default: torch.sigmoid,
    aten.tanh.default: torch.tanh,
    aten.hardswish.default: F.hardswish,
    aten.hardsigmoid.default: F.hardsigmoid,
    aten.silu.default: F.silu,
    aten.gelu.default: None,  # takes its `approximate` argument, see _lut_fn
    aten.elu.default: F.elu,
    aten.leaky_relu.default: None,
}

PASS_THROUGH = {aten.dropout.default, aten.clone.default, aten.contiguous.default, aten.alias.default,
                aten.detach.default, aten.feature_dropout.default, aten.alpha_dropout.default}
RELU_OPS = {aten.relu.default, aten.relu_.default, aten.hardtanh.default, aten.hardtanh_.default, aten.relu6.default,
            aten.clamp.default, aten.clamp_min.default}
BN_OPS = {aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default}
RESHAPE_OPS = {aten.view.default, aten.reshape.default, aten.flatten.using_ints, aten._unsafe_view.default}

SUPPORTED = sorted(["conv2d", "linear", "batch_norm (after conv/linear)", "pad/constant_pad_nd (zeros, before conv)",
                    "relu", "relu6", "hardtanh(0, 6)", "clamp(0[, 6])", "hardswish", "hardsigmoid", "sigmoid", "tanh",
                    "silu", "gelu", "elu", "leaky_relu", "add", "mul", "cat", "avg_pool2d", "max_pool2d",
                    "adaptive_avg_pool2d", "mean(dim=[2, 3])", "flatten", "view", "reshape", "dropout", "clone",
                    "contiguous"])


def _source(fx_node) -> str:
    trace = fx_node.meta.get("stack_trace") or ""
    frames = re.findall(r'File "([^"]+)", line (\d+)', trace)
    if frames:
        path, line = frames[-1]
        return f"{path}:{line}"
    return "(unknown source line)"


def _lut_fn(target, args, kwargs) -> Callable:
    if target == aten.gelu.default:
        approximate = kwargs.get("approximate", args[1] if len(args) > 1 else "none")
        return lambda x: F.gelu(x, approximate=approximate)
    if target == aten.leaky_relu.default:
        slope = args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01)
        return lambda x: F.leaky_relu(x, slope)
    return LUT_OPS[target]


def _relu_kind(target, args) -> str | None:
    """'relu' or 'relu6' for the clamps the engine fuses; None for any other clamp."""
    if target in (aten.relu.default, aten.relu_.default):
        return "relu"
    if target == aten.relu6.default:
        return "relu6"
    lo = args[1] if len(args) > 1 else (-1.0 if target in (aten.hardtanh.default, aten.hardtanh_.default) else None)
    hi = args[2] if len(args) > 2 else (1.0 if target in (aten.hardtanh.default, aten.hardtanh_.default) else None)
    if target == aten.clamp_min.default:
        hi = None
    if lo == 0 and hi is None:
        return "relu"
    if lo == 0 and hi == 6:
        return "relu6"
    return None


class FloatGraph:
    """Nodes in topological order; `inputs` and `outputs` are Nodes."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.inputs: list[Node] = []
        self.outputs: list[Node] = []

    def users(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if any(i is node for i in n.inputs)] + \
               [None for o in self.outputs if o is node]

    @torch.no_grad()
    def run(self, *xs: torch.Tensor) -> dict:
        """Every node's float output (logical NCHW layout), keyed by node."""
        vals: dict = {}
        for node, x in zip(self.inputs, xs):
            vals[node] = x.float()
        for n in self.nodes:
            if n.op == "input":
                continue
            args = [vals[i] if isinstance(i, Node) else i for i in n.inputs]
            vals[n] = _apply_act(_eval(n, args), n.act)
        return vals


def _apply_act(y: torch.Tensor, act: str | None) -> torch.Tensor:
    if act == "relu":
        return torch.relu(y)
    if act == "relu6":
        return torch.clamp(y, 0.0, 6.0)
    return y


def _eval(n: Node, a: list) -> torch.Tensor:
    at = n.attrs
    if n.op == "conv":
        t, l, b, r = at["pads"]
        x = F.pad(a[0], (l, r, t, b)) if any(at["pads"]) else a[0]
        return F.conv2d(x, at["weight"], at["bias"], at["stride"], 0, at["dilation"], at["groups"])
    if n.op == "linear":
        return F.linear(a[0], at["weight"], at["bias"])
    if n.op == "add":
        return a[0] + a[1]
    if n.op == "mul":
        return a[0] * a[1]
    if n.op == "cat":
        return torch.cat(a, at["dim"])
    if n.op == "avg_pool":
        return F.avg_pool2d(a[0], at["kernel"], at["stride"], at["padding"], False, at["count_include_pad"])
    if n.op == "max_pool":
        return F.max_pool2d(a[0], at["kernel"], at["stride"], at["padding"])
    if n.op == "global_avg_pool":
        return a[0].mean(dim=(2, 3), keepdim=True)
    if n.op == "reshape":
        return a[0].reshape([a[0].shape[0]] + list(at["shape"][1:]))
    if n.op == "lut":
        return at["fn"](a[0])
    if n.op == "relu":
        return a[0]  # the activation itself is applied as n.act
    raise AssertionError(n.op)


def capture(model: torch.nn.Module, example_inputs: tuple) -> FloatGraph:
    model = model.eval()
    try:
        ep = torch.export.export(model, tuple(example_inputs))
    except Exception as e:  # torch raises many types here; the message is what helps the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.export could not capture the model ({type(e).__name__}: {first}). "
                          "intinfer needs a graph without data-dependent control flow.") from e
    return _simplify(ep)


def _constants(ep) -> dict:
    sig = ep.graph_signature
    named = {**dict(ep.named_parameters()), **dict(ep.named_buffers()), **ep.constants}
    out = {}
    for spec in sig.input_specs:
        target = getattr(spec, "target", None)
        if target is not None and target in named:
            out[spec.arg.name] = named[target].detach()
    return out


def _simplify(ep) -> FloatGraph:
    g = FloatGraph()
    consts = _constants(ep)
    env: dict = {}  # fx node name -> Node or tensor
    uses = {n.name: len(n.users) for n in ep.graph.nodes}

    def val(a):
        if isinstance(a, torch.fx.Node):
            return env[a.name]
        return a

    def fail(fx_node, why: str):
        raise ExportError(f"{why}: '{fx_node.target}' at {_source(fx_node)} (node '{fx_node.name}'). "
                          f"Supported ops: {', '.join(SUPPORTED)}")

    def add(fx_node, op, inputs, **attrs) -> Node:
        meta = fx_node.meta.get("val")
        node = Node(fx_node.name, op, inputs, attrs, shape=tuple(meta.shape) if meta is not None else (),
                    source=_source(fx_node))
        g.nodes.append(node)
        return node

    for fx in ep.graph.nodes:
        if fx.op == "placeholder":
            if fx.name in consts:
                env[fx.name] = consts[fx.name]
            else:
                node = Node(fx.name, "input", [], shape=tuple(fx.meta["val"].shape), source="input")
                g.inputs.append(node)
                g.nodes.append(node)
                env[fx.name] = node
            continue
        if fx.op == "output":
            outs = fx.args[0]
            for o in (outs if isinstance(outs, (list, tuple)) else [outs]):
                v = val(o)
                if not isinstance(v, Node):
                    raise ExportError("a model output is a constant, not computed from the inputs")
                g.outputs.append(v)
            continue
        if fx.op != "call_function":
            fail(fx, "unsupported graph node")

        t, args, kw = fx.target, fx.args, fx.kwargs
        x = val(args[0]) if args else None
        if t in PASS_THROUGH:
            env[fx.name] = x
        elif t in (aten.pad.default, aten.constant_pad_nd.default):
            pad = list(args[1])
            mode = args[2] if len(args) > 2 and t == aten.pad.default else kw.get("mode", "constant")
            value = (args[3] if len(args) > 3 else kw.get("value")) if t == aten.pad.default else \
                (args[2] if len(args) > 2 else 0)
            if mode != "constant" or (value not in (None, 0, 0.0)) or len(pad) != 4 or min(pad) < 0:
                fail(fx, "only zero padding of H and W, folded into the next conv, is supported")
            env[fx.name] = ("pad", x, pad, fx)
        elif t == aten.conv2d.default:
            src = x
            pads = [0, 0, 0, 0]
            if isinstance(src, tuple) and src[0] == "pad":
                _, src, (l, r, tp, b), _ = src
                pads = [tp, l, b, r]
            if isinstance(src, tuple):
                fail(src[3], "a pad must be followed by a conv")
            w = val(args[1])
            bias = val(args[2]) if len(args) > 2 and args[2] is not None else torch.zeros(w.shape[0])
            stride = list(args[3]) if len(args) > 3 else [1, 1]
            padding = args[4] if len(args) > 4 else [0, 0]
            if isinstance(padding, str):
                fail(fx, "string padding is not supported; use explicit sizes")
            dilation = list(args[5]) if len(args) > 5 else [1, 1]
            groups = args[6] if len(args) > 6 else 1
            ph, pw = list(padding) if len(padding) == 2 else [padding[0]] * 2
            pads = [pads[0] + ph, pads[1] + pw, pads[2] + ph, pads[3] + pw]
            env[fx.name] = add(fx, "conv", [src], weight=w.float().clone(), bias=bias.float().clone(),
                               stride=_pair(stride), pads=pads, dilation=_pair(dilation), groups=int(groups))
        elif t == aten.linear.default:
            w = val(args[1])
            bias = val(args[2]) if len(args) > 2 and args[2] is not None else torch.zeros(w.shape[0])
            env[fx.name] = add(fx, "linear", [x], weight=w.float().clone(), bias=bias.float().clone())
        elif t in BN_OPS:
            env[fx.name] = _fold_bn(fx, x, [val(a) for a in args[1:5]], args, uses, fail)
        elif t in RELU_OPS:
            kind = _relu_kind(t, args)
            if kind is None:
                fail(fx, "only clamps to [0, inf) and [0, 6] are supported")
            if isinstance(x, Node) and x.op in ("conv", "linear", "add") and x.act is None and uses[fx.args[0].name] == 1:
                x.act = kind  # fused: the producer's output range is the clamped one
                env[fx.name] = x
            else:
                node = add(fx, "relu", [x])
                node.act = kind
                env[fx.name] = node
        elif t in LUT_OPS:
            env[fx.name] = add(fx, "lut", [x], fn=_lut_fn(t, args, kw))
        elif t in (aten.add.Tensor, aten.add_.Tensor, aten.mul.Tensor, aten.mul_.Tensor, aten.sub.Tensor):
            env[fx.name] = _binary(fx, t, args, kw, val, add, fail)
        elif t == aten.cat.default:
            xs = [val(a) for a in args[0]]
            dim = args[1] if len(args) > 1 else kw.get("dim", 0)
            env[fx.name] = add(fx, "cat", xs, dim=dim % len(fx.meta["val"].shape))
        elif t == aten.avg_pool2d.default:
            kernel = _pair(args[1])
            stride = _pair(args[2]) if len(args) > 2 and args[2] else kernel
            padding = _pair(args[3]) if len(args) > 3 else [0, 0]
            if (len(args) > 4 and args[4]) or (len(args) > 6 and args[6] is not None):
                fail(fx, "avg_pool2d with ceil_mode or divisor_override is not supported")
            cip = bool(args[5]) if len(args) > 5 else True
            env[fx.name] = add(fx, "avg_pool", [x], kernel=kernel, stride=stride, padding=padding,
                               count_include_pad=cip)
        elif t in (aten.max_pool2d.default, aten.max_pool2d_with_indices.default):
            kernel = _pair(args[1])
            stride = _pair(args[2]) if len(args) > 2 and args[2] else kernel
            padding = _pair(args[3]) if len(args) > 3 else [0, 0]
            if (len(args) > 4 and _pair(args[4]) != [1, 1]) or (len(args) > 5 and args[5]):
                fail(fx, "max_pool2d with dilation or ceil_mode is not supported")
            env[fx.name] = add(fx, "max_pool", [x], kernel=kernel, stride=stride, padding=padding)
        elif t == aten.adaptive_avg_pool2d.default:
            h, w = x.shape[2], x.shape[3]
            oh, ow = _pair(args[1])
            if (oh, ow) == (1, 1):
                env[fx.name] = add(fx, "global_avg_pool", [x])
            elif h % oh == 0 and w % ow == 0:
                k = [h // oh, w // ow]
                env[fx.name] = add(fx, "avg_pool", [x], kernel=k, stride=k, padding=[0, 0], count_include_pad=True)
            else:
                fail(fx, "adaptive_avg_pool2d whose output does not divide its input is not supported")
        elif t == aten.mean.dim:
            dims = sorted(d % len(x.shape) for d in args[1])
            keep = args[2] if len(args) > 2 else kw.get("keepdim", False)
            if dims != [2, 3] or len(x.shape) != 4:
                fail(fx, "mean is supported over the spatial dims [2, 3] of NCHW tensors only")
            node = add(fx, "global_avg_pool", [x])
            node.shape = (x.shape[0], x.shape[1], 1, 1)
            env[fx.name] = node if keep else add(fx, "reshape", [node], shape=list(fx.meta["val"].shape))
        elif t in RESHAPE_OPS:
            env[fx.name] = add(fx, "reshape", [x], shape=list(fx.meta["val"].shape))
        elif t is operator.getitem:
            src = val(args[0])
            if isinstance(src, Node) and src.op == "max_pool" and args[1] == 0:
                env[fx.name] = src
            else:
                fail(fx, "unsupported use of a multi-output op")
        else:
            fail(fx, "unsupported op")
    for n in g.nodes:
        for i in n.inputs:
            if isinstance(i, tuple):
                fail(i[3], "a pad must be followed by a conv")
    return g


def _pair(v) -> list:
    if isinstance(v, int):
        return [v, v]
    v = list(v)
    return v * 2 if len(v) == 1 else v


def _fold_bn(fx, x, params, args, uses, fail):
    weight, bias, mean, var = params
    eps = args[7] if fx.target == aten.batch_norm.default else args[6]
    if fx.target == aten.batch_norm.default and args[5]:
        fail(fx, "batch_norm in training mode; call model.eval() first")
    if not (isinstance(x, Node) and x.op in ("conv", "linear") and x.act is None and uses[fx.args[0].name] == 1):
        fail(fx, "batch_norm is supported right after a conv or linear layer only")
    c = mean.shape[0]
    gamma = weight if weight is not None else torch.ones(c)
    beta = bias if bias is not None else torch.zeros(c)
    scale = gamma.double() / torch.sqrt(var.double() + eps)
    w = x.attrs["weight"].double()
    x.attrs["weight"] = (w * scale.reshape([-1] + [1] * (w.dim() - 1))).float()
    x.attrs["bias"] = ((x.attrs["bias"].double() - mean.double()) * scale + beta.double()).float()
    x.name = fx.name  # the folded node answers for the batch norm's output
    return x


def _binary(fx, t, args, kw, val, add, fail):
    a, b = val(args[0]), val(args[1])
    alpha = kw.get("alpha", args[2] if len(args) > 2 else 1)
    is_add = t in (aten.add.Tensor, aten.add_.Tensor, aten.sub.Tensor)
    sign = -1 if t == aten.sub.Tensor else 1
    if not isinstance(a, Node):
        if t == aten.sub.Tensor:
            fail(fx, "subtracting a tensor from a constant is not supported")
        a, b = b, a
    if not isinstance(b, Node):
        c = torch.as_tensor(b, dtype=torch.float32) * (sign * alpha if is_add else 1)
        if c.numel() == 1:
            # x + c and x * c are unary: a lookup table is exact to the output's rounding.
            cv = float(c)
            fn = (lambda x: x + cv) if is_add else (lambda x: x * cv)
            return add(fx, "lut", [a], fn=fn)
        return add(fx, "add" if is_add else "mul", [a, c])
    if is_add and (sign * alpha) != 1:
        fail(fx, "add/sub of two tensors with alpha or subtraction is not supported")
    return add(fx, "add" if is_add else "mul", [a, b])


def expected_shapes_match(graph: FloatGraph, xs: tuple) -> None:
    """Calibration batches must have the exported shapes, except the batch dimension."""
    for node, x in zip(graph.inputs, xs):
        if tuple(x.shape[1:]) != tuple(node.shape[1:]):
            raise ValueError(f"input '{node.name}' has shape {list(x.shape)}, the model was exported for "
                             f"{list(node.shape)} (only the batch dimension may differ)")


