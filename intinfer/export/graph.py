"""Capture a float torch model with torch.export and simplify it into intinfer's float graph:
batch norms folded into the conv/linear before them, zero pads folded into the following conv,
ReLU/ReLU6/hardtanh fused into their producer, unary functions turned into lookup tables,
no-ops removed. The result runs in torch (for calibration and as the float reference) and is
what the lowering quantizes op for op.

Transformer encoders (BERT-style) are recognised too: embedding lookups (and a slice of a
position table, or a lookup of position ids, as a positions lookup), layer norm, matmul of two
activations (a transpose of its second operand and a division or multiplication by a constant
folded into it), scaled dot-product attention (decomposed into those), softmax with an attention
mask computed from an integer input, and mean pooling over that mask. Values computed from the
integer inputs alone are recognised by evaluating them on probe inputs (derived.py).

Nodes that no output reads are dropped before anything else (a pooler the model computes but the
caller does not return)."""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from .derived import Derived

aten = torch.ops.aten


class ExportError(ValueError):
    """The model cannot be exported: capture failed or it uses an op intinfer does not run.
    `problem` is the Unsupported record when one op is the cause."""

    def __init__(self, message: str, problem: "Unsupported | None" = None):
        super().__init__(message)
        self.problem = problem


@dataclass
class Unsupported:
    """One op the exporter cannot take: what (the aten op), where (module path and class, source
    line, graph node), why, and what to do instead."""
    op: str
    module: str
    source: str
    node: str
    reason: str
    hint: str

    def __str__(self) -> str:
        return f"{self.reason}: '{self.op}'{self.module} at {self.source} (node '{self.node}'). {self.hint}"


# What to do instead, for the ops models most often bring (by the aten op's name before the
# overload); anything else gets GENERIC_HINT.
HINTS = {
    "aten.pow": "only x ** c with a number c is supported (a lookup table); a power whose exponent is a "
                "tensor has no integer op: keep it outside the model",
    "aten.sort": "sorting has no integer op: keep it outside the model, in float post-processing",
    "aten.cumsum": "a running sum of activations has no integer op: keep it outside the model",
    "aten.log_softmax": "softmax is supported: take the log outside the model",
    "aten.zeros": "a tensor made inside forward: make it a buffer, or build it outside the model",
    "aten.full": "a tensor made inside forward: make it a buffer, or build it outside the model",
    "aten.index": "indexing activations with computed indices: an embedding of an integer input is a GATHER",
    "aten.mean": "mean over the spatial dims [2, 3] (GLOBAL_AVG_POOL) or a masked mean over tokens is supported",
}
GENERIC_HINT = "The engine has no integer op for it: keep it outside the model (float pre- or post-processing)"


def _hint(target) -> str:
    name = str(target).rsplit(".", 1)[0] if str(target).count(".") >= 2 else str(target)
    return HINTS.get(name, GENERIC_HINT)


def _is_unsupported(v) -> bool:
    return isinstance(v, tuple) and v[0] == "unsupported"


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
SOFTMAX_OPS = {aten.softmax.int, aten._softmax.default}
RELU_OPS = {aten.relu.default, aten.hardtanh.default, aten.relu6.default,
            aten.clamp.default, aten.clamp_min.default}
BN_OPS = {aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default}
RESHAPE_OPS = {aten.view.default, aten.reshape.default, aten.flatten.using_ints, aten._unsafe_view.default}

SUPPORTED = sorted(["embedding", "layer_norm", "matmul", "softmax", "transpose", "permute",
                    "scaled_dot_product_attention (not causal)", "attention mask from an integer input",
                    "masked mean pooling", "activations times a token mask (or masked_fill of the padding with 0)",
                    "conv1d (also a lightweight convolution's kernel computed from parameters)", "glu",
                    "conv2d", "linear", "batch_norm (after conv/linear)",
                    "pad/constant_pad_nd (zeros, before conv1d/conv2d)",
                    "relu", "relu6", "hardtanh(0, 6)", "clamp(0[, 6])", "hardswish", "hardsigmoid", "sigmoid", "tanh",
                    "silu", "gelu", "elu", "leaky_relu", "pow (scalar exponent)", "add", "mul", "cat", "avg_pool2d",
                    "max_pool2d", "relative position bias of attention scores",
                    "select and slice (constant bounds)",
                    "adaptive_avg_pool2d", "mean(dim=[2, 3])", "flatten", "view", "reshape", "dropout", "clone",
                    "contiguous"])


def _source(fx_node) -> str:
    trace = fx_node.meta.get("stack_trace") or ""
    frames = re.findall(r'File "([^"]+)", line (\d+)', trace)
    if frames:
        path, line = frames[-1]
        return f"{path}:{line}"
    return "(unknown source line)"


def _innermost_module(fx_node) -> tuple:
    """(path, class) of the innermost submodule that made the node; ("", "") for the model itself."""
    stack = fx_node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1] if stack else ("", "")


def _module(fx_node) -> str:
    """' in module 'enc.1' (GRU)': the innermost submodule that made the node. An op from inside
    a torch module (an LSTM's aten.zeros) has its source line in torch, which names no layer of
    the user's model."""
    path, cls = _innermost_module(fx_node)
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
    if target == aten.relu.default:
        return "relu"
    if target == aten.relu6.default:
        return "relu6"
    lo = args[1] if len(args) > 1 else (-1.0 if target == aten.hardtanh.default else None)
    hi = args[2] if len(args) > 2 else (1.0 if target == aten.hardtanh.default else None)
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


def by_distance(table: torch.Tensor, q: int, k: int) -> torch.Tensor:
    """A relative-position bias table [H, 2R - 1] laid out for scores [1, H, q, k]: entry
    [h, j - i + R - 1] at query i, key j."""
    reach = (table.shape[1] + 1) // 2
    distance = torch.arange(k)[None, :] - torch.arange(q)[:, None]
    return table[:, distance + reach - 1].unsqueeze(0)


def broadcast_leading(xs: list, dim: int) -> list:
    """CONCAT's operands with their dimensions before `dim` broadcast (a size 1 repeats)."""
    lead = torch.broadcast_shapes(*(tuple(x.shape[:dim]) for x in xs))
    return [x.expand(*lead, *x.shape[dim:]) for x in xs]


def gather_rows(node: Node, ids: torch.Tensor) -> torch.Tensor:
    """The table rows a gather node reads: the ids (positions 0), each token's index along the
    last axis (1), or the running count of ids other than padding_id, 0 at padding_id (2:
    RoBERTa's and MPNet's position ids less their padding_idx, right or left padded alike)."""
    positions = node.attrs["positions"]
    if positions == 2:
        real = (ids != node.attrs["padding_id"]).long()
        return torch.cumsum(real, dim=-1) * real
    if positions:
        return torch.arange(ids.shape[-1]).expand(ids.shape)
    return ids.long()


def per_token(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A [B, S] token mask shaped to broadcast over x [B, S, ...]."""
    return mask.reshape(list(mask.shape) + [1] * (x.dim() - 2))


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
        return torch.cat(broadcast_leading(a, at["dim"]), at["dim"])
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
        return F.embedding(gather_rows(n, a[0]), at["weight"])
    if n.op == "layer_norm":
        return F.layer_norm(a[0], (at["weight"].shape[0],), at["weight"], at["bias"], at["eps"])
    if n.op == "permute":
        return a[0].permute(at["perm"])
    if n.op == "slice":
        return a[0].narrow(at["axis"], at["start"], min(at["end"], a[0].shape[at["axis"]]) - at["start"])
    if n.op == "matmul":
        return torch.matmul(a[0], a[1].transpose(-1, -2) if at["transpose_b"] else a[1]) * at["alpha"]
    if n.op == "softmax":
        x = a[0]
        if "relative" in n.attrs:
            x = x + by_distance(n.attrs["relative"], x.shape[-2], x.shape[-1])
        if len(a) > 1:
            keep = a[1].reshape([a[1].shape[0]] + [1] * (x.dim() - 2) + [a[1].shape[1]]).to(x.dtype)
            x = x + (1.0 - keep) * -10000.0
        return torch.softmax(x, dim=-1)
    if n.op == "apply_mask":
        return a[0] * per_token(a[1], a[0]).to(a[0].dtype)
    if n.op == "masked_mean":
        keep = a[1].unsqueeze(-1).to(a[0].dtype)
        return (a[0] * keep).sum(1) / torch.clamp(keep.sum(1), min=1e-9)
    if n.op == "lut":
        return at["fn"](a[0])
    if n.op == "relu":
        return a[0]  # the activation itself is applied as n.act
    raise AssertionError(n.op)


def export_program(model: torch.nn.Module, example_inputs: tuple, dynamic_shapes=None):
    model = model.eval()
    try:
        return torch.export.export(model, tuple(example_inputs), dynamic_shapes=dynamic_shapes)
    except Exception as e:  # torch raises many types here; the message is what helps the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.export could not capture the model ({type(e).__name__}: {first}). "
                          "intinfer needs a graph without data-dependent control flow.") from e


def capture(model: torch.nn.Module, example_inputs: tuple, dynamic_shapes=None) -> FloatGraph:
    return _simplify(export_program(model, example_inputs, dynamic_shapes), _as_tuple(example_inputs))


def find_unsupported(model: torch.nn.Module, example_inputs: tuple, dynamic_shapes=None) -> list:
    """Every op of the captured model the exporter cannot take, as Unsupported records (empty:
    the model exports). Raises ExportError when torch.export itself cannot capture it."""
    problems: list = []
    _simplify(export_program(model, example_inputs, dynamic_shapes), _as_tuple(example_inputs), problems)
    return problems


def _as_tuple(example_inputs) -> tuple:
    return tuple(example_inputs) if isinstance(example_inputs, (list, tuple)) else (example_inputs,)


def _writes_first_argument(target) -> bool:
    schema = getattr(target, "_schema", None)
    alias = schema.arguments[0].alias_info if schema is not None and schema.arguments else None
    return alias is not None and alias.is_write


def _is_view(fx_node) -> bool:
    """A node whose result shares its input's storage (view, slice, transpose, ...)."""
    schema = getattr(fx_node.target, "_schema", None)
    return fx_node.op == "call_function" and schema is not None and \
        any(r.alias_info is not None for r in schema.returns) and not _writes_first_argument(fx_node.target)


def _out_of_place(graph) -> None:
    """In-place ops (silu_, relu_, hardswish_, hardsigmoid_, add_, ...) become their out-of-place
    twins: every later reader of the tensor an op overwrote reads the op's result instead, which
    is what it saw in eager torch, whether it held the op's return value or another name for the
    tensor (`shortcut = x; x = act(x)` with an in-place act leaves `shortcut` activated too). An
    op that writes into a view would change the view's base as well, so it is left in place, and
    refused as unsupported."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    for n in graph.nodes:
        if n.op != "call_function" or not _writes_first_argument(n.target):
            continue
        name = n.target._schema.name.split("::")[-1]
        twin = getattr(getattr(aten, name[:-1], None), n.target._overloadname, None) if name.endswith("_") else None
        base = n.args[0]
        if twin is None or not isinstance(base, torch.fx.Node) or _is_view(base):
            continue
        n.target = twin
        for user in list(base.users):
            if order[user] > order[n]:
                user.replace_input_with(base, n)


def _live(ep) -> set:
    """Names of the fx nodes an output depends on, and of the in-place ops left (writes into a
    view, whose effect on the view's base no output's inputs show)."""
    live: set = set()
    todo = [n for n in ep.graph.nodes if n.op == "output" or
            (n.op == "call_function" and _writes_first_argument(n.target))]
    while todo:
        n = todo.pop()
        if n.name not in live:
            live.add(n.name)
            todo.extend(n.all_input_nodes)
    return live


def _constants(ep) -> dict:
    sig = ep.graph_signature
    named = {**dict(ep.named_parameters()), **dict(ep.named_buffers()), **ep.constants}
    out = {}
    for spec in sig.input_specs:
        target = getattr(spec, "target", None)
        if target is not None and target in named:
            out[spec.arg.name] = named[target].detach()
    return out


def _simplify(ep, example_inputs: tuple, problems: list | None = None) -> FloatGraph:
    """The float graph; with `problems` a list, every unsupported op is appended to it (ops
    that only read its result are not) instead of raising at the first."""
    _out_of_place(ep.graph)
    g = FloatGraph()
    consts = _constants(ep)
    env: dict = {}  # fx node name -> Node or tensor
    live = _live(ep)
    uses = {n.name: sum(u.name in live for u in n.users) for n in ep.graph.nodes}
    int_inputs: list = []  # filled as the placeholders are read
    probe = Derived(consts, int_inputs, ep.range_constraints)
    examples = iter(example_inputs)

    def val(a):
        if isinstance(a, torch.fx.Node):
            return env[a.name]
        return a

    def fail(fx_node, why: str):
        problem = Unsupported(str(fx_node.target), _module(fx_node), _source(fx_node), fx_node.name, why,
                              _hint(fx_node.target))
        raise ExportError(f"{problem} Supported ops: {', '.join(SUPPORTED)}", problem)

    # A table's module (for weight_bits): the module that owns the parameter it is read from.
    owners = {spec.arg.name: spec.target.rsplit(".", 1)[0] for spec in ep.graph_signature.input_specs
              if getattr(spec, "target", None) and "." in spec.target}

    def add(fx_node, op, inputs, _drop=None, _name=None, _shape=None, **attrs) -> Node:
        if op == "gather":
            table = fx_node.args[0]
            attrs["module"] = owners.get(getattr(table, "name", None), _innermost_module(fx_node)[0])
        meta = fx_node.meta.get("val")
        shape = _shape if _shape is not None else tuple(meta.shape) if meta is not None else ()
        node = Node(_name or fx_node.name, op, inputs, attrs, shape=shape, source=_source(fx_node))
        if _drop is not None:  # a node folded into this one, with no other user
            g.nodes.remove(_drop)
        g.nodes.append(node)
        return node

    for fx in ep.graph.nodes:
        if fx.name not in live and fx.op != "placeholder":
            continue
        if fx.op == "placeholder":
            if fx.name in consts:
                env[fx.name] = consts[fx.name]
            else:
                meta = fx.meta["val"]
                node = Node(fx.name, "input", [], shape=tuple(meta.shape), source="input")
                example = next(examples, None)
                shape = list(example.shape) if example is not None else [int(d) for d in meta.shape]
                if not meta.dtype.is_floating_point:
                    node.attrs["dtype"] = "int32"  # token ids, attention masks
                    int_inputs.append((fx, node, shape))
                else:
                    probe.float_inputs[fx.name] = torch.zeros(shape, dtype=meta.dtype)  # read for its sizes only
                g.inputs.append(node)
                g.nodes.append(node)
                env[fx.name] = node
            continue
        if fx.op == "output":
            outs = fx.args[0]
            for o in (outs if isinstance(outs, (list, tuple)) else [outs]):
                v = val(o)
                if problems is not None and _is_unsupported(v):
                    continue
                if not isinstance(v, Node):
                    raise ExportError("a model output is a constant, not computed from the inputs")
                g.outputs.append(v)
            continue
        if fx.op != "call_function":
            fail(fx, "unsupported graph node")

        if problems is not None and any(_is_unsupported(val(a)) for a in fx.all_input_nodes):
            env[fx.name] = ("unsupported", fx)  # follows from a problem already listed
            continue
        try:
            t, args, kw = fx.target, fx.args, fx.kwargs
            x = val(args[0]) if args else None
            transformer = _transformer_op(fx, t, args, kw, x, val, add, fail, uses, probe)
            if transformer is not None:
                env[fx.name] = transformer
            elif t in PASS_THROUGH:
                env[fx.name] = x
            elif t in (aten.to.dtype, aten._to_copy.default) and isinstance(x, Node) and \
                    fx.meta["val"].dtype == torch.float32:
                env[fx.name] = x  # a float activation "cast" to float32 (eager attention's softmax(..., dtype))
            elif t in (aten.pad.default, aten.constant_pad_nd.default):
                pad = list(args[1])
                mode = args[2] if len(args) > 2 and t == aten.pad.default else kw.get("mode", "constant")
                value = (args[3] if len(args) > 3 else kw.get("value")) if t == aten.pad.default else \
                    (args[2] if len(args) > 2 else 0)
                if mode != "constant" or (value not in (None, 0, 0.0)) or len(pad) not in (2, 4) or min(pad) < 0:
                    fail(fx, "only zero padding of H and W (or of a sequence's length), folded into the next conv, "
                             "is supported")
                env[fx.name] = ("pad", x, pad, fx)
            elif t == aten.conv2d.default:
                src = x
                pads = [0, 0, 0, 0]
                if isinstance(src, tuple) and src[0] == "pad":
                    if len(src[2]) != 4:
                        fail(src[3], "a pad of the last dimension only must be followed by a conv1d")
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
                                   stride=_pair(stride), pads=pads, dilation=_pair(dilation), groups=int(groups),
                                   module=_innermost_module(fx)[0])
            elif t == aten.conv1d.default:
                env[fx.name] = _conv1d(fx, x, args, val, add, fail, probe)
            elif t == aten.glu.default:
                env[fx.name] = _glu(fx, x, args, kw, add, fail)
            elif t == aten.linear.default:
                w = val(args[1])
                bias = val(args[2]) if len(args) > 2 and args[2] is not None else torch.zeros(w.shape[0])
                env[fx.name] = add(fx, "linear", [x], weight=w.float().clone(), bias=bias.float().clone(),
                                   module=_innermost_module(fx)[0])
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
            elif t == aten.pow.Tensor_Scalar and isinstance(x, Node) and _scalar(args[1]) is not None:
                env[fx.name] = add(fx, "lut", [x], fn=lambda v, e=_scalar(args[1]): torch.pow(v, e))
            elif t in (aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor):
                env[fx.name] = _binary(fx, t, args, kw, val, add, fail)
            elif t == aten.cat.default:
                xs = [_cat_operand(a, val(a), probe, fail) for a in args[0]]
                dim = args[1] if len(args) > 1 else kw.get("dim", 0)
                if not any(isinstance(v, Node) for v in xs):
                    fail(fx, "cat of constants only")
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
            elif t in (aten.select.int, aten.slice.Tensor) and isinstance(x, Node):
                env[fx.name] = _slice(fx, t, args, x, add, fail)
            elif t is operator.getitem:
                src = val(args[0])
                if isinstance(src, Node) and src.op == "max_pool" and args[1] == 0:
                    env[fx.name] = src
                else:
                    fail(fx, "unsupported use of a multi-output op")
            else:
                fail(fx, "unsupported op")
        except ExportError as e:
            if problems is None or e.problem is None:
                raise
            problems.append(e.problem)
            env[fx.name] = ("unsupported", fx)
    _fuse_pointwise(g)
    for n in g.nodes:
        for i in n.inputs:
            try:
                if isinstance(i, tuple) and i[0] == "pad":
                    fail(i[3], "a pad must be followed by a conv")
                if isinstance(i, tuple):
                    fail(i[-1], "a value computed from integer inputs alone may only be an attention mask, a "
                                "relative position bias of the scores, the mask or count of a mean pool, or the "
                                "ids of an embedding lookup")
            except ExportError as e:
                if problems is None:
                    raise
                problems.append(e.problem)
    return g


def _fuse_pointwise(g: FloatGraph) -> None:
    """A function of one tensor written as several elementwise ops becomes one LUT: transformers'
    gelu_new, 0.5 x (1 + tanh(c (x + 0.044715 x^3))), or a hand-written x * sigmoid(x), would
    otherwise be LUTs joined by a MUL of two activations, each rounding on its own. A LUT or an
    add/mul of two tensors is folded when its operands are the same tensor x or LUT chains from
    it that nothing else reads; the fused node keeps the last op's name."""
    readers: dict = {}
    for n in g.nodes:
        for i in n.inputs:
            if isinstance(i, Node):
                readers[i] = readers.get(i, 0) + 1
    for o in g.outputs:
        readers[o] = readers.get(o, 0) + 2  # an output is never folded into its reader
    fused: dict = {}  # node -> (x, fn of x, nodes folded into it)

    def of(i: Node, reader_count: int = 1):
        if i in fused and readers.get(i, 0) == reader_count:
            return fused[i][0], fused[i][1], fused[i][2] + [i]
        return i, (lambda v: v), []

    for n in g.nodes:
        if n.act is not None:
            continue
        if n.op == "lut" and isinstance(n.inputs[0], Node):
            x, f, inner = of(n.inputs[0])
            fused[n] = (x, lambda v, f=f, fn=n.attrs["fn"]: fn(f(v)), inner)
        elif n.op in ("add", "mul") and all(isinstance(i, Node) for i in n.inputs):
            a, b = n.inputs
            if a is b:
                (xa, fa, ia), (xb, fb, ib) = of(a, 2), of(b, 2)
                ib = []
            else:
                (xa, fa, ia), (xb, fb, ib) = of(a), of(b)
            if xa is xb and (ia or ib or a is b or xa in (a, b)):
                op = torch.add if n.op == "add" else torch.mul
                fused[n] = (xa, lambda v, fa=fa, fb=fb, op=op: op(fa(v), fb(v)), ia + ib)
    gone: set = set()
    for n in reversed(g.nodes):
        if n in gone or n not in fused or not fused[n][2] and n.op == "lut":
            continue
        x, fn, inner = fused[n]
        n.op, n.inputs, n.attrs = "lut", [x], {"fn": fn}
        gone.update(inner)
    g.nodes = [n for n in g.nodes if n not in gone]


# The longest sequence a relative position bias is tabulated for ([heads, 2 R - 1] per softmax).
MAX_RELATIVE_REACH = 8192

# An end past any axis: SLICE then keeps the rest of the axis, whatever its length at run time.
SLICE_TO_END = 1 << 62


def _slice(fx, t, args, x, add, fail):
    """x[..., i, ...] (select: SLICE, then RESHAPE without the axis) or x[..., a:b, ...] with
    constant bounds (SLICE; the whole axis: x itself)."""
    rank = len(x.shape)
    dim = (args[1] if len(args) > 1 else 0) % rank
    if t == aten.select.int:
        index = args[2]
        if not isinstance(index, int) or index < 0:
            fail(fx, "select is supported at a constant index counted from the start")
        shape = tuple(1 if i == dim else d for i, d in enumerate(x.shape))
        one = add(fx, "slice", [x], _name=f"{fx.name}_slice", _shape=shape, axis=dim, start=index, end=index + 1)
        return add(fx, "reshape", [one], shape=_reshape_target(shape, fx.meta["val"].shape))
    start = args[2] if len(args) > 2 and args[2] is not None else 0
    end = args[3] if len(args) > 3 and args[3] is not None else SLICE_TO_END
    step = args[4] if len(args) > 4 else 1
    if not (isinstance(start, int) and isinstance(end, int)) or start < 0 or end < 0 or step != 1:
        fail(fx, "slice is supported with constant bounds counted from the start and step 1")
    size = x.shape[dim]
    if start == 0 and isinstance(size, int) and end >= size or start == 0 and end >= SLICE_TO_END:
        return x
    return add(fx, "slice", [x], axis=dim, start=start, end=min(end, SLICE_TO_END))


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


def _is_derived(v) -> bool:
    """A value computed from the integer inputs, sizes and constants alone (or an integer input)."""
    return _is_int_input(v) or (isinstance(v, tuple) and v[0] in ("derived", "sym"))


def _derived_args(fx, val) -> bool:
    """Every tensor the op reads is derived or constant, and it makes a tensor."""
    if not isinstance(fx.meta.get("val"), torch.Tensor):
        return False
    for a in fx.all_input_nodes:
        v = val(a)
        if not (isinstance(v, torch.Tensor) or _is_derived(v)):
            return False
    return True


def _scalar(v):
    """A Python number or one-element constant tensor as a float, else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v)
    return None


def _transformer_op(fx, t, args, kw, x, val, add, fail, uses, probe):
    """The transformer-encoder patterns (see the module docstring): a Node or a marker tuple for
    this fx node, or None when it is not one of them. Markers: ("sym", node, dim) a symbolic size,
    ("derived",) a value computed from the integer inputs alone (derived.py), ("masked", scores,
    mask, relative) scores plus the mask's bias and/or a relative position bias table,
    ("masked_sum", apply_mask node) the sum over the sequence of a masked mean; each ends with the
    fx node."""
    if t in SKIPPED:
        return ("skipped", fx)
    if t == aten.sym_size.int:
        return ("sym", x, args[1], fx)
    if t == aten.embedding.default:
        return _embedding(fx, val(args[0]), args[1], val, add, fail, probe)
    if t == aten.slice.Tensor and isinstance(x, torch.Tensor) and x.is_floating_point():
        dim, start = (args[1] if len(args) > 1 else 0), (args[2] if len(args) > 2 else 0)
        end = val(args[3]) if len(args) > 3 else None
        if dim == 0 and start in (0, None) and isinstance(end, tuple) and end[0] == "sym" and x.dim() == 2:
            ids, sym_dim = end[1], end[2]
            if not (isinstance(ids, Node) and sym_dim in (-1, len(ids.shape) - 1)):
                fail(fx, "a position table may be sliced to the length of the ids' last dimension only")
            return add(fx, "gather", [ids], weight=x.float().clone(), positions=1)
    if _derived_args(fx, val) and t != aten.embedding.default:
        return ("derived", fx)
    if t == aten.scaled_dot_product_attention.default:
        return _sdpa(fx, args, kw, x, val, add, fail, probe)
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
    if t in (aten.div.Tensor, aten.mul.Tensor, aten.mul.Scalar) and isinstance(x, Node) and x.op == "matmul" \
            and uses[fx.args[0].name] == 1 and _scalar(val(args[1])) is not None:
        c = _scalar(val(args[1]))
        x.attrs["alpha"] *= 1.0 / c if t == aten.div.Tensor else c  # folded: one multiplier, no extra rounding
        x.name = fx.name
        return x
    if t == aten.div.Tensor and isinstance(x, Node) and not isinstance(val(args[1]), (Node, tuple)):
        c = float(torch.as_tensor(val(args[1])))
        return add(fx, "lut", [x], fn=lambda v, c=c: v / c)
    if t in SOFTMAX_OPS:
        dim = args[1] if len(args) > 1 else kw.get("dim", -1)
        if dim not in (-1, len(fx.meta["val"].shape) - 1):
            fail(fx, "softmax over the last dimension only")
        if isinstance(x, tuple) and x[0] == "masked":
            _, scores, mask, relative, _ = x
            extra = {} if relative is None else {"relative": relative}
            return add(fx, "softmax", [scores] + ([mask] if mask is not None else []), **extra)
        return add(fx, "softmax", [x])
    if t == aten.add.Tensor:
        for scores, bias in ((x, args[1]), (val(args[1]), args[0])):
            if isinstance(bias, torch.fx.Node) and _is_derived(val(bias)) and \
                    (isinstance(scores, Node) or isinstance(scores, tuple) and scores[0] == "masked"):
                return _score_bias(fx, scores, bias, add, fail, probe)
        return None
    if t == aten.mul.Tensor:
        for h, m in ((x, args[1]), (val(args[1]), args[0])):
            if isinstance(h, Node) and not _is_int_input(h) and isinstance(m, torch.fx.Node) and _is_derived(val(m)):
                mask = probe.token_mask(m)
                if mask is None:
                    fail(fx, "activations are multiplied by a value computed from integer inputs that is not a "
                             "token mask [batch, sequence, 1, ...]")
                return add(fx, "apply_mask", [h, mask])
        return None
    if t == aten.masked_fill.Scalar and isinstance(x, Node) and isinstance(args[1], torch.fx.Node) and \
            _is_derived(val(args[1])):
        mask = probe.token_mask(args[1], padding=True)
        if mask is None or _scalar(args[2]) != 0:
            fail(fx, "masked_fill of activations is supported with 0 at the padding of a token mask only")
        return add(fx, "apply_mask", [x, mask])
    if t == aten.sum.dim_IntList:
        rank = len(fx.args[0].meta["val"].shape)
        dims = [d % rank for d in (args[1] if isinstance(args[1], (list, tuple)) else [args[1]])]
        if isinstance(x, Node) and x.op == "apply_mask" and dims == [1]:
            return ("masked_sum", x, fx)
        return None
    if t == aten.div.Tensor and isinstance(x, tuple) and x[0] == "masked_sum":
        masked = x[1]
        h, mask = masked.inputs
        if not (isinstance(args[1], torch.fx.Node) and _is_derived(val(args[1])) and
                probe.token_count(args[1]) is mask):
            fail(fx, "a masked sum must be divided by the count of the same mask")
        return add(fx, "masked_mean", [h, mask], _drop=masked if uses[masked.name] == 1 else None)
    return None


def _conv1d(fx, x, args, val, add, fail, probe):
    """conv1d of [B, C, L] as the engine's convolution of the image [B, C, 1, L] between two
    reshapes (the lowering runs it on [B, L, C] with no copy); a zero pad of L before it folds in
    and a kernel computed from parameters alone (a lightweight convolution's softmax-normalized
    one) is evaluated once."""
    left = right = 0
    if isinstance(x, tuple) and x[0] == "pad":
        _, x, pad, pad_fx = x
        if len(pad) != 2:
            fail(pad_fx, "a pad of H and W must be followed by a conv2d")
        left, right = pad
    if not isinstance(x, Node) or len(x.shape) != 3:
        fail(fx, "conv1d is supported on a [batch, channels, length] activation")
    w = val(args[1])
    if _is_derived(w):
        w = probe.constant(args[1])
    if not isinstance(w, torch.Tensor):
        fail(fx, "conv1d's weights must be parameters or computed from parameters alone")
    bias = val(args[2]) if len(args) > 2 and args[2] is not None else torch.zeros(w.shape[0])
    stride, padding, dilation = (a[0] if isinstance(a, (list, tuple)) else a
                                 for a in (args[3] if len(args) > 3 else 1, args[4] if len(args) > 4 else 0,
                                           args[5] if len(args) > 5 else 1))
    if isinstance(padding, str):
        fail(fx, "string padding is not supported; use explicit sizes")
    out = fx.meta["val"].shape
    image = add(fx, "reshape", [x], _name=f"{fx.name}_image", _shape=(x.shape[0], x.shape[1], 1, x.shape[2]),
                shape=_reshape_target(x.shape, (x.shape[0], x.shape[1], 1, x.shape[2])))
    conv = add(fx, "conv", [image], _name=f"{fx.name}_conv", _shape=(out[0], out[1], 1, out[2]),
               weight=w.float().unsqueeze(2).clone(), bias=bias.float().clone(), stride=[1, int(stride)],
               pads=[0, left + int(padding), 0, right + int(padding)], dilation=[1, int(dilation)],
               groups=int(args[6]) if len(args) > 6 else 1, module=_innermost_module(fx)[0], sequence=True)
    return add(fx, "reshape", [conv], shape=_reshape_target(conv.shape, out))


def _glu(fx, x, args, kw, add, fail):
    """GLU: the first half of a dimension times the sigmoid (a LUT) of the second: two SLICEs, a
    LUT and a MUL."""
    if not isinstance(x, Node):
        fail(fx, "glu of a constant")
    rank = len(x.shape)
    dim = (args[1] if len(args) > 1 else kw.get("dim", -1)) % rank
    size = x.shape[dim]
    if dim == 0 or not isinstance(size, int):  # torch.export has checked that it is even
        fail(fx, f"glu halves dimension {dim} of {list(x.shape)}: it must be a fixed size other than the batch")
    half = tuple(size // 2 if i == dim else d for i, d in enumerate(x.shape))
    a = add(fx, "slice", [x], _name=f"{fx.name}_a", _shape=half, axis=dim, start=0, end=size // 2)
    b = add(fx, "slice", [x], _name=f"{fx.name}_b", _shape=half, axis=dim, start=size // 2, end=size)
    gate = add(fx, "lut", [b], _name=f"{fx.name}_gate", _shape=half, fn=torch.sigmoid)
    return add(fx, "mul", [a, gate])


def _score_bias(fx, scores, bias_fx, add, fail, probe):
    """x + a value computed from the integer inputs and sizes: the attention mask of the keys or a
    relative-position bias of scores x (("masked", x, mask, relative table, fx) for the softmax),
    or a constant (ALBERT's token-type embedding of the default all-zero ids): ADD of it."""
    node, mask, relative = (scores, None, None) if isinstance(scores, Node) else scores[1:4]
    if _keeps_everything(probe, bias_fx):
        return scores  # x + 0: ViT's eager attention adds a mask built from no input
    key_mask = probe.key_mask(bias_fx)
    if key_mask is not None and mask is None:
        return ("masked", node, key_mask, relative, fx)
    reach = probe.longest(bias_fx.meta["val"].shape[-1]) if bias_fx.meta["val"].dim() == 4 else None
    table = probe.relative_bias(bias_fx, reach) if reach is not None and reach <= MAX_RELATIVE_REACH else None
    if table is not None and relative is None:
        heads = node.shape[1] if len(node.shape) == 4 else None
        if table.shape[0] == 1 and isinstance(heads, int):
            table = table.expand(heads, -1).clone()  # one bias for every head
        return ("masked", node, mask, table, fx)
    if key_mask is None and bias_fx.meta["val"].dim() == 4 and (reach is None or reach > MAX_RELATIVE_REACH):
        fail(fx, f"a bias of the attention scores computed from the sizes needs the longest sequence: give the "
                 f"sequence dimension a maximum of at most {MAX_RELATIVE_REACH} (torch.export.Dim('seq', max=N))")
    constant = _broadcastable(probe.constant(bias_fx), bias_fx.meta["val"].shape) if node is scores else None
    if constant is not None:
        return node if not constant.any() else add(fx, "add", [node, constant.float()])
    fail(fx, "a value computed from integer inputs is added to activations, but it is neither an attention mask "
             "of the keys (0 to keep, <= -1e4 to drop) nor a relative position bias of the scores (a function of "
             "the head and the key-query distance)")


def _broadcastable(c: torch.Tensor | None, sizes) -> torch.Tensor | None:
    """c with every dimension that varies at run time (a symbolic size) cut to 1, when c holds the
    same values all along it; else None."""
    if c is None or not c.is_floating_point():
        return None
    for d, size in enumerate(sizes):
        if not isinstance(size, int):
            first = c.narrow(d, 0, 1)
            if not torch.equal(c, first.expand_as(c)):
                return None
            c = first
    return c


def _embedding(fx, table, ids_fx, val, add, fail, probe):
    """GATHER of `table` by token ids (an integer input), or by position ids (a value computed
    from the inputs): k + the running count of the tokens that are not padding, k at padding
    (RoBERTa's, MPNet's: rows k.. of the table, read by that count), or else k + arange(S) for
    every token that is not padding (rows k.., read for positions 0..S-1)."""
    ids = val(ids_fx)
    weight = table.float().clone()
    if _is_int_input(ids):
        return add(fx, "gather", [ids], weight=weight, positions=0)
    if not _is_derived(ids):
        fail(fx, "embedding ids must be an integer input or position ids computed from the inputs")
    counted = probe.counted_positions(ids_fx)
    if counted is not None:
        ids_input, k, padding_id = counted
        return add(fx, "gather", [ids_input], weight=weight[k:].clone(), positions=2, padding_id=padding_id)
    k = probe.positions(ids_fx)
    if k is None:
        return ("derived", fx)  # a lookup by ids that are neither (a relative position bias's buckets)
    seq = ids_fx.meta["val"].shape[-1]
    like = [n for _, n, _ in probe.int_inputs if n.shape and str(n.shape[-1]) == str(seq)]
    if not like:
        fail(fx, "position ids whose length is no integer input's last dimension")
    return add(fx, "gather", [like[0]], weight=weight[k:].clone(), positions=1)


def _sdpa(fx, args, kw, q, val, add, fail, probe):
    """scaled_dot_product_attention(q, k, v, attn_mask) as MATMUL (k transposed, the scale folded
    in), SOFTMAX (with the mask of the keys, when given) and MATMUL."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    a = dict(zip(names, args))
    a.update(kw)
    k, v = val(a["key"]), val(a["value"])
    if a.get("is_causal") or a.get("enable_gqa") or a.get("dropout_p", 0.0):
        fail(fx, "scaled_dot_product_attention is supported without is_causal, enable_gqa and dropout")
    if not all(isinstance(t, Node) for t in (q, k, v)):
        fail(fx, "scaled_dot_product_attention of constant operands")
    scale = a.get("scale")
    scale = 1.0 / math.sqrt(int(q.shape[-1])) if scale is None else float(scale)
    scores_shape = tuple(q.shape[:-1]) + (k.shape[-2],)
    scores = add(fx, "matmul", [q, k], transpose_b=True, alpha=scale, _name=f"{fx.name}_scores", _shape=scores_shape)
    inputs = [scores]
    mask_fx = a.get("attn_mask")
    if mask_fx is not None and _keeps_everything(probe, mask_fx):
        mask_fx = None  # built from no input (ViT): every key attended
    if mask_fx is not None:
        mask = probe.key_mask(mask_fx) if isinstance(mask_fx, torch.fx.Node) and _is_derived(val(mask_fx)) else None
        if mask is None:
            fail(fx, "the attention mask must be a mask of the keys computed from an integer input")
        inputs.append(mask)
    probs = add(fx, "softmax", inputs, _name=f"{fx.name}_probs", _shape=scores_shape)
    return add(fx, "matmul", [probs, v], transpose_b=False, alpha=1.0)


def _cat_operand(fx_node, v, probe, fail):
    """A cat operand: an activation, or a constant (a parameter, or one expanded to the batch such
    as ViT's [CLS] token) with size 1 where the export's sizes vary (CONCAT repeats it)."""
    if isinstance(v, Node):
        return v
    if isinstance(v, torch.Tensor) and v.is_floating_point():
        return v.float()
    c = _broadcastable(probe.constant(fx_node), fx_node.meta["val"].shape) if _is_derived(v) else None
    if c is None:
        fail(fx_node, "a cat operand must be an activation or a constant")
    return c.float()


def _keeps_everything(probe, mask_fx) -> bool:
    """The attention mask is a constant that keeps every key (all True, or an all-zero bias)."""
    if not isinstance(mask_fx, torch.fx.Node):
        return False
    c = probe.constant(mask_fx)
    return c is not None and bool(c.all() if c.dtype == torch.bool else (c == 0).all())


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
    is_add = t in (aten.add.Tensor, aten.sub.Tensor)
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


