"""Capture a float torch model with torch.export and simplify it into intinfer's float graph:
batch norms folded into the conv/linear before them, zero pads folded into the following conv,
ReLU/ReLU6/hardtanh fused into their producer, unary functions turned into lookup tables,
no-ops removed. The result runs in torch (for calibration and as the float reference) and is
what the lowering quantizes op for op.

Transformer encoders (BERT-style) are recognised too: embedding lookups (and a slice of a
position table as a positions lookup), layer norm, matmul of two activations (a transpose of
its second operand and a division by a constant folded into it), softmax with an additive
attention-mask bias derived from an integer input, and mean pooling over that mask."""

from __future__ import annotations

import dataclasses
import operator
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator

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
# Checks torch.export leaves in the graph; they compute nothing.
SKIPPED = {aten._assert_tensor_metadata.default, aten._assert_scalar.default,
           aten.sym_constrain_range_for_size.default}
# Ops that only reshape or convert an integer mask on its way to an additive attention bias.
MASK_OPS = {aten.unsqueeze.default, aten.slice.Tensor, aten.to.dtype, aten._to_copy.default, aten.rsub.Scalar,
            aten.mul.Tensor, aten.mul.Scalar, aten.sub.Tensor, aten.view.default, aten.reshape.default}
SOFTMAX_OPS = {aten.softmax.int, aten._softmax.default}
RELU_OPS = {aten.relu.default, aten.relu_.default, aten.hardtanh.default, aten.hardtanh_.default, aten.relu6.default,
            aten.clamp.default, aten.clamp_min.default}
BN_OPS = {aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default}
RESHAPE_OPS = {aten.view.default, aten.reshape.default, aten.flatten.using_ints, aten._unsafe_view.default}

SUPPORTED = sorted(["embedding", "layer_norm", "matmul", "softmax", "transpose", "permute",
                    "attention mask bias (1 - mask) * c", "masked mean pooling",
                    "conv2d", "linear", "batch_norm (after conv/linear)", "pad/constant_pad_nd (zeros, before conv)",
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


def _module(fx_node) -> str:
    """' in module 'enc.1' (GRU)': the innermost submodule that made the node. An op from inside
    a torch module (an LSTM's aten.zeros) has its source line in torch, which names no layer of
    the user's model."""
    stack = fx_node.meta.get("nn_module_stack") or {}
    path, cls = list(stack.values())[-1] if stack else ("", "")
    if not path:  # the model itself: the source line is the user's own
        return ""
    name = cls if isinstance(cls, str) else cls.__qualname__
    return f" in module '{path}' ({name.rsplit('.', 1)[-1]})"


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

    def copy(self) -> tuple["FloatGraph", dict]:
        """A graph of new nodes (attribute dicts copied, tensors shared) and the map old -> new."""
        new: dict = {}
        g = FloatGraph()
        for n in self.nodes:
            new[n] = dataclasses.replace(n, inputs=[new[i] if isinstance(i, Node) else i for i in n.inputs],
                                         attrs=dict(n.attrs))
            g.nodes.append(new[n])
        g.inputs = [new[n] for n in self.inputs]
        g.outputs = [new[n] for n in self.outputs]
        return g, new

    def users(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if any(i is node for i in n.inputs)] + \
               [None for o in self.outputs if o is node]

    def last_readers(self) -> dict:
        """node -> the position in `nodes` of the last node that reads it (absent: none does)."""
        last: dict = {}
        for k, n in enumerate(self.nodes):
            for i in n.inputs:
                if isinstance(i, Node):
                    last[i] = k
        return last

    def input_value(self, node: Node, xs) -> torch.Tensor:
        """Input `node`'s value among the graph inputs `xs`: float32, or ids and masks as given."""
        x = xs[self.inputs.index(node)]
        return x if node.attrs.get("dtype") == "int32" else x.float()

    @torch.no_grad()
    def evaluate(self, node: Node, vals: dict, xs) -> torch.Tensor:
        """`node`'s float output, its inputs' outputs taken from `vals`."""
        if node.op == "input":
            return self.input_value(node, xs)
        return _apply_act(_eval(node, [vals[i] if isinstance(i, Node) else i for i in node.inputs]), node.act)

    def stream(self, *xs: torch.Tensor) -> Iterator[tuple[Node, torch.Tensor]]:
        """(node, float output) for every node in order, each value kept only until the last node
        that reads it has run: a graph's values at once take the sum of its activations (27 MB an
        image for EfficientNet-Lite0), its widest cut a fraction (5.7 MB)."""
        last = self.last_readers()
        vals: dict = {}
        for k, n in enumerate(self.nodes):
            vals[n] = self.evaluate(n, vals, xs)
            yield n, vals[n]
            for i in [n] + n.inputs:
                if isinstance(i, Node) and last.get(i, -1) <= k:
                    vals.pop(i, None)

    def run(self, *xs: torch.Tensor) -> dict:
        """Every node's float output (logical NCHW layout), keyed by node."""
        return dict(self.stream(*xs))


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
        # 0 copies the input's dimension, -1 is inferred (the engine's RESHAPE).
        return a[0].reshape([a[0].shape[i] if d == 0 else d for i, d in enumerate(at["shape"])])
    if n.op == "gather":
        return at["weight"][: a[0].shape[-1]] if at["positions"] else F.embedding(a[0], at["weight"])
    if n.op == "layer_norm":
        return F.layer_norm(a[0], (at["weight"].shape[0],), at["weight"], at["bias"], at["eps"])
    if n.op == "permute":
        return a[0].permute(at["perm"])
    if n.op == "matmul":
        return torch.matmul(a[0], a[1].transpose(-1, -2) if at["transpose_b"] else a[1]) * at["alpha"]
    if n.op == "softmax":
        x = a[0]
        if len(a) > 1:
            keep = a[1].reshape([a[1].shape[0]] + [1] * (x.dim() - 2) + [a[1].shape[1]]).to(x.dtype)
            x = x + (1.0 - keep) * -10000.0
        return torch.softmax(x, dim=-1)
    if n.op == "masked_mean":
        keep = a[1].unsqueeze(-1).to(a[0].dtype)
        return (a[0] * keep).sum(1) / torch.clamp(keep.sum(1), min=1e-9)
    if n.op == "lut":
        return at["fn"](a[0])
    if n.op == "relu":
        return a[0]  # the activation itself is applied as n.act
    raise AssertionError(n.op)


def capture(model: torch.nn.Module, example_inputs: tuple, dynamic_shapes=None) -> FloatGraph:
    model = model.eval()
    try:
        ep = torch.export.export(model, tuple(example_inputs), dynamic_shapes=dynamic_shapes)
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
        raise ExportError(f"{why}: '{fx_node.target}'{_module(fx_node)} at {_source(fx_node)} "
                          f"(node '{fx_node.name}'). Supported ops: {', '.join(SUPPORTED)}")

    def add(fx_node, op, inputs, _drop=None, **attrs) -> Node:
        meta = fx_node.meta.get("val")
        node = Node(fx_node.name, op, inputs, attrs, shape=tuple(meta.shape) if meta is not None else (),
                    source=_source(fx_node))
        if _drop is not None:  # a node folded into this one, with no other user
            g.nodes.remove(_drop)
        g.nodes.append(node)
        return node

    for fx in ep.graph.nodes:
        if fx.op == "placeholder":
            if fx.name in consts:
                env[fx.name] = consts[fx.name]
            else:
                meta = fx.meta["val"]
                node = Node(fx.name, "input", [], shape=tuple(meta.shape), source="input")
                if not meta.dtype.is_floating_point:
                    node.attrs["dtype"] = "int32"  # token ids, attention masks
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
        transformer = _transformer_op(fx, t, args, kw, x, val, add, fail, uses)
        if transformer is not None:
            env[fx.name] = transformer
        elif t in PASS_THROUGH:
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
            env[fx.name] = node if keep else add(fx, "reshape", [node],
                                                 shape=_reshape_target(node.shape, fx.meta["val"].shape))
        elif t in RESHAPE_OPS:
            env[fx.name] = add(fx, "reshape", [x], shape=_reshape_target(x.shape, fx.meta["val"].shape))
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
            if isinstance(i, tuple) and i[0] == "pad":
                fail(i[3], "a pad must be followed by a conv")
            if isinstance(i, tuple):
                fail(i[-1], "an attention mask may only feed an additive bias before softmax or a masked mean")
    return g


def _reshape_target(in_shape, out_shape) -> list:
    """RESHAPE's target: the batch and every dimension equal to the input's at the same index
    become 0 (copied at run time, so they may vary), a remaining symbolic one -1, the rest stay."""
    target = []
    for i, d in enumerate(out_shape):
        same = i < len(in_shape) and str(in_shape[i]) == str(d)
        target.append(0 if i == 0 or (same and not isinstance(d, int)) else (int(d) if isinstance(d, int) else -1))
    if target.count(-1) > 1:
        raise ExportError(f"a reshape to {list(out_shape)} has more than one dimension that varies")
    return target


def _is_int_input(v) -> bool:
    return isinstance(v, Node) and v.op == "input" and v.attrs.get("dtype") == "int32"


def _transformer_op(fx, t, args, kw, x, val, add, fail, uses):
    """The transformer-encoder patterns (see the module docstring): a Node or a marker tuple for
    this fx node, or None when it is not one of them. Markers: ("sym", node, dim) a symbolic size,
    ("mask", input) a value computed from an integer mask input, ("masked", scores, input) scores
    plus the mask's bias, ("mask_sum", input) its count per row, ("masked_values", x, input) and
    ("masked_sum", x, input) the steps of a masked mean; each ends with the fx node."""
    def mask_of(v):
        if _is_int_input(v):
            return v
        return v[1] if isinstance(v, tuple) and v[0] == "mask" else None

    if t in SKIPPED:
        return ("skipped", fx)
    if t == aten.sym_size.int:
        return ("sym", x, args[1], fx)
    if t == aten.embedding.default:
        return add(fx, "gather", [val(args[1])], weight=val(args[0]).float().clone(), positions=False)
    if t == aten.slice.Tensor and isinstance(x, torch.Tensor):
        dim, start = (args[1] if len(args) > 1 else 0), (args[2] if len(args) > 2 else 0)
        end = val(args[3]) if len(args) > 3 else None
        if dim == 0 and start in (0, None) and isinstance(end, tuple) and end[0] == "sym" and x.dim() == 2:
            ids, sym_dim = end[1], end[2]
            if not (isinstance(ids, Node) and sym_dim in (-1, len(ids.shape) - 1)):
                fail(fx, "a position table may be sliced to the length of the ids' last dimension only")
            return add(fx, "gather", [ids], weight=x.float().clone(), positions=True)
        return None
    if t == aten.layer_norm.default:
        w, b = val(args[2]), val(args[3])
        if len(args[1]) != 1:
            fail(fx, "layer_norm over more than the last dimension is not supported")
        h = args[1][0]
        eps = args[4] if len(args) > 4 else 1e-5
        return add(fx, "layer_norm", [x], weight=(w if w is not None else torch.ones(h)).float().clone(),
                   bias=(b if b is not None else torch.zeros(h)).float().clone(), eps=float(eps))
    if t == aten.transpose.int:
        rank = len(fx.meta["val"].shape)
        d0, d1 = args[1] % rank, args[2] % rank
        perm = list(range(rank))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return add(fx, "permute", [x], perm=perm)
    if t == aten.permute.default:
        return add(fx, "permute", [x], perm=[d % len(args[1]) for d in args[1]])
    if t in (aten.matmul.default, aten.bmm.default):
        a, b = x, val(args[1])
        rank = len(fx.meta["val"].shape)
        swap = list(range(rank - 2)) + [rank - 1, rank - 2]
        if isinstance(b, Node) and b.op == "permute" and b.attrs["perm"] == swap and uses[fx.args[1].name] == 1:
            return add(fx, "matmul", [a, b.inputs[0]], transpose_b=True, alpha=1.0, _drop=b)
        return add(fx, "matmul", [a, b], transpose_b=False, alpha=1.0)
    if t == aten.div.Tensor and isinstance(x, Node) and not isinstance(val(args[1]), (Node, tuple)):
        c = float(torch.as_tensor(val(args[1])))
        if x.op == "matmul" and uses[fx.args[0].name] == 1:
            x.attrs["alpha"] /= c  # folded: one multiplier, no extra rounding
            x.name = fx.name
            return x
        return add(fx, "lut", [x], fn=lambda v, c=c: v / c)
    if t in SOFTMAX_OPS:
        dim = args[1] if len(args) > 1 else kw.get("dim", -1)
        if dim not in (-1, len(fx.meta["val"].shape) - 1):
            fail(fx, "softmax over the last dimension only")
        if isinstance(x, tuple) and x[0] == "masked":
            return add(fx, "softmax", [x[1], x[2]])
        return add(fx, "softmax", [x])
    if t in (aten.add.Tensor, aten.add_.Tensor):
        a, b = x, val(args[1])
        if mask_of(b) is not None and isinstance(a, Node):
            return ("masked", a, mask_of(b), fx)
        if mask_of(a) is not None and isinstance(b, Node):
            return ("masked", b, mask_of(a), fx)
        return None
    if t in (aten.mul.Tensor,) and isinstance(x, Node) and mask_of(val(args[1])) is not None and not _is_int_input(x):
        return ("masked_values", x, mask_of(val(args[1])), fx)
    if t == aten.sum.dim_IntList:
        rank = len(fx.args[0].meta["val"].shape)  # the summed value's, masks included
        dims = [d % rank for d in (args[1] if isinstance(args[1], (list, tuple)) else [args[1]])]
        if isinstance(x, tuple) and x[0] == "masked_values" and dims == [1]:
            return ("masked_sum", x[1], x[2], fx)
        if mask_of(x) is not None and dims == [1]:
            return ("mask_sum", mask_of(x), fx)
        return None
    if t in (aten.clamp.default, aten.clamp_min.default) and isinstance(x, tuple) and x[0] == "mask_sum":
        return x
    if t == aten.div.Tensor and isinstance(x, tuple) and x[0] == "masked_sum":
        d = val(args[1])
        if not (isinstance(d, tuple) and d[0] == "mask_sum" and d[1] is x[2]):
            fail(fx, "a masked sum must be divided by the count of the same mask")
        return add(fx, "masked_mean", [x[1], x[2]])
    if t in MASK_OPS and mask_of(x) is not None:
        return ("mask", mask_of(x), fx)
    return None


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
    momentum = args[6] if fx.target == aten.batch_norm.default else args[5]
    # The unfolded parameters, for quantization-aware training (intinfer.qat folds them itself).
    x.attrs["bn"] = {"weight": x.attrs["weight"].clone(), "bias": x.attrs["bias"].clone(), "gamma": gamma.float().clone(),
                     "beta": beta.float().clone(), "mean": mean.float().clone(), "var": var.float().clone(),
                     "eps": float(eps), "momentum": 0.1 if momentum is None else float(momentum)}
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
    """Calibration batches must have the exported shapes, except the batch dimension and the
    dimensions exported as dynamic."""
    for node, x in zip(graph.inputs, xs):
        if len(x.shape) != len(node.shape) or any(isinstance(d, int) and d != s
                                                  for d, s in zip(node.shape[1:], x.shape[1:])):
            raise ValueError(f"input '{node.name}' has shape {list(x.shape)}, the model was exported for "
                             f"{list(node.shape)} (only the batch dimension may differ)")


