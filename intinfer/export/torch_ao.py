"""Import a model already quantized by PyTorch (torch.ao.quantization, eager or FX mode),
keeping its integer weights, scales and zero points, so that intinfer's output can be compared
with PyTorch's quantized kernels on identical parameters (docs/torch_ao_import.md).

The converted model is traced with torch.fx (eager-mode models with `symbolic_trace`, FX
GraphModules as they are) and run once on the example inputs; every quantized tensor that run
produces gives the scale and zero point of the matching intinfer tensor, so activation
parameters are exactly torch's (a module's `scale` / `zero_point`, a `quantize_per_tensor`'s
arguments). 4-D values are kept NHWC inside the graph, as in lower.py.
"""

from __future__ import annotations

import operator
import warnings

import numpy as np
import torch
import torch.ao.nn.intrinsic.quantized as nniq
import torch.ao.nn.quantized as nnq
import torch.nn as nn
import torch.nn.functional as F

from .._schema import OP_ATTRS
from ..builder import GraphBuilder, Tensor
from ..quant import quantize_bias
from .graph import ExportError
from .lower import NCHW_AXIS_IN_NHWC, NCHW_TO_NHWC, LayoutValues

# -- what the importer recognises ------------------------------------------------------------

QUANTIZE_MODULES = (nnq.Quantize,)
QUANTIZE_FUNCTIONS = {torch.quantize_per_tensor}
DEQUANTIZE_MODULES = (nnq.DeQuantize,)
DEQUANTIZE_FUNCTIONS = {torch.dequantize}
CONV_MODULES = {nnq.Conv2d: None, nniq.ConvReLU2d: "relu"}  # exact types -> fused activation
LINEAR_MODULES = {nnq.Linear: None, nniq.LinearReLU: "relu"}
ADD_FUNCTIONS = {torch.ops.quantized.add: None, torch.ops.quantized.add_relu: "relu"}
MUL_FUNCTIONS = {torch.ops.quantized.mul: None, torch.ops.quantized.mul_relu: "relu"}
CAT_FUNCTIONS = {torch.ops.quantized.cat, torch.cat, torch.concat}
PASS_MODULES = (nn.Identity, nn.Dropout, nnq.Dropout)
PASS_METHODS = {"contiguous", "detach", "clone"}
PASS_FUNCTIONS = {F.dropout}
RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
RESHAPE_METHODS = {"flatten", "view", "reshape", "squeeze", "unsqueeze"}
RESHAPE_MODULES = (nn.Flatten,)
MAX_POOL_MODULES = (nn.MaxPool2d,)
MAX_POOL_FUNCTIONS = {F.max_pool2d, torch.max_pool2d}
AVG_POOL_MODULES = (nn.AvgPool2d,)
AVG_POOL_FUNCTIONS = {F.avg_pool2d}
ADAPTIVE_POOL_MODULES = (nn.AdaptiveAvgPool2d,)
ADAPTIVE_POOL_FUNCTIONS = {F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d}
MEAN_FUNCTIONS = {torch.mean}

# Element-wise functions of one tensor. On a quantized tensor (torch's quantized kernel) or on a
# float chain between a dequantize and a quantize_per_tensor, they become a 256-entry table
# computed by torch itself on every input code, or a CLAMP (fused into the producer when it
# can be) when the table is a clamp of the identity.
ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nnq.ReLU6, nn.Hardtanh, nn.Sigmoid, nnq.Sigmoid, nn.Tanh, nn.Hardsigmoid,
                       nn.Hardswish, nnq.Hardswish, nn.SiLU, nn.GELU, nn.ELU, nnq.ELU, nn.LeakyReLU, nnq.LeakyReLU,
                       nn.Mish)
ELEMENTWISE_FUNCTIONS = {torch.relu, torch.relu_, F.relu, F.relu_, F.relu6, F.hardtanh, F.hardtanh_, torch.clamp,
                         torch.clip, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.hardsigmoid, F.hardswish, F.silu,
                         F.gelu, F.elu, F.leaky_relu, F.mish, torch.ops.quantized.relu6,
                         operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.mul, torch.sub,
                         torch.div, torch.ops.quantized.add_scalar, torch.ops.quantized.mul_scalar,
                         torch.ops.quantized.add_scalar_relu, torch.ops.quantized.mul_scalar_relu}
ELEMENTWISE_METHODS = {"relu", "relu_", "sigmoid", "tanh", "clamp", "clamp_", "clip", "add", "sub", "mul", "div",
                       "hardtanh"}

SUPPORTED = ("Quantize/QuantStub, quantize_per_tensor (quint8); DeQuantize, dequantize; quantized Conv2d, "
             "ConvReLU2d, Linear, LinearReLU (qint8 weights with zero point 0); quantized add, add_relu, mul, "
             "mul_relu, cat (FloatFunctional/QFunctional or torch.ops.quantized); relu, relu6, hardtanh, clamp, "
             "sigmoid, tanh, hardsigmoid, hardswish, silu, gelu, elu, leaky_relu, mish and scalar add/mul on "
             "one tensor; max_pool2d, avg_pool2d, adaptive_avg_pool2d, mean over H and W; flatten, view, "
             "reshape, squeeze, unsqueeze; Identity, Dropout")

# The ops whose output stage clamps to [act_min, act_max]: a CLAMP after one can narrow its range.
ACT_OPS = {op for op, attrs in OP_ATTRS.items() if "act_min" in attrs}


def import_quantized(qmodel: torch.nn.Module, example_inputs) -> GraphBuilder:
    """Translate a model converted by torch.ao.quantization into an intinfer graph.

    qmodel: the result of eager-mode `torch.ao.quantization.convert` (traced here with
    `torch.fx.symbolic_trace`) or of FX-mode `convert_fx` (a GraphModule). example_inputs: a
    tensor or a tuple of tensors; the model is run once on them to read every activation's
    scale and zero point and every value's shape (the batch dimension may vary at run time).

    Float inputs become float32 graph inputs followed by QUANTIZE with the parameters of torch's
    Quantize / quantize_per_tensor; a quantized example input becomes a uint8 graph input with
    its parameters. Quantized outputs are uint8 with torch's parameters (`run(x, raw=True)` gives
    the codes torch's `int_repr()` would), dequantized outputs are float32.

    Weights: torch's qint8 codes (`mod.weight().int_repr()`) and scales (per channel, axis 0,
    or per tensor) are used as they are. Their zero points must be 0 (a `per_channel_symmetric`
    or `per_tensor_symmetric` weight observer); otherwise ExportError names the layer. intinfer
    refuses the code -128, which torch's default symmetric observers (quant_min=-128) produce:
    such codes are clamped to -127 and a warning names the layer and the count (results may
    then differ from torch's; observers with quant_min=-127, as in
    `default_per_channel_symmetric_qnnpack_qconfig`, avoid it). Bias: torch keeps it in float;
    it is quantized as intinfer does, round(b / (s_in * s_w[c])) to int32.

    Activations must be quint8. Element-wise functions of one tensor (torch's quantized kernels,
    or float code between a dequantize and a quantize_per_tensor) become a 256-entry LUT made by
    running torch on all 256 codes, or a CLAMP, fused into the producer where possible.

    Raises ExportError naming the node and module or function for anything else.
    """
    example = tuple(example_inputs) if isinstance(example_inputs, (list, tuple)) else (example_inputs,)
    if isinstance(qmodel, torch.fx.GraphModule):
        gm = qmodel
    else:
        try:
            gm = torch.fx.symbolic_trace(qmodel)
        except Exception as e:  # fx raises many types; the message is what helps
            raise ExportError(f"torch.fx.symbolic_trace could not trace the model ({type(e).__name__}: {e}). "
                              "import_quantized needs a model without data-dependent control flow.") from e
    return _Importer(gm, example).run()


class _Recorder(torch.fx.Interpreter):
    """Runs the GraphModule and keeps every node's value."""

    def __init__(self, gm):
        super().__init__(gm, garbage_collect_values=False)
        self.seen: dict = {}

    def run_node(self, n):
        r = super().run_node(n)
        self.seen[n] = r
        return r


def _describe(node: torch.fx.Node, modules: dict) -> str:
    if node.op == "call_module":
        t = type(modules[node.target])
        return f"module '{node.target}' ({t.__module__}.{t.__qualname__}, node '{node.name}')"
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        mod = getattr(node.target, "__module__", None)
        if isinstance(node.target, torch._ops.OpOverloadPacket):
            name = str(node.target)
        elif mod:
            name = f"{mod}.{name}"
        return f"function {name} (node '{node.name}')"
    if node.op == "call_method":
        return f"method .{node.target}() (node '{node.name}')"
    return f"{node.op} '{node.target}' (node '{node.name}')"


def _is_q(v) -> bool:
    return isinstance(v, torch.Tensor) and v.is_quantized


class _Importer(LayoutValues):
    def __init__(self, gm: torch.fx.GraphModule, example: tuple):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        rec = _Recorder(gm)
        with torch.no_grad():
            try:
                rec.run(*example)
            except Exception as e:
                raise ExportError(f"the quantized model failed on the example inputs ({type(e).__name__}: {e})") from e
        self.env = rec.seen
        self.example = example
        super().__init__(GraphBuilder({"producer": "intinfer.export.import_quantized", "torch": torch.__version__,
                                       "quantized_engine": torch.backends.quantized.engine}))
        self.floats: dict = {}  # fx node -> [source node, element-wise nodes...] for float tensors
        self.inputs: dict = {}  # placeholder -> float32 graph input

    # -- helpers -------------------------------------------------------------------------

    def fail(self, node, why: str):
        raise ExportError(f"{why}: {_describe(node, self.modules)}. Supported: {SUPPORTED}")

    def image(self, node, n) -> Tensor:
        if n not in self.values:
            self.fail(node, "the input is not a quantized tensor")
        if not self.nhwc(n):
            self.fail(node, "expects a 4-D NCHW image input")
        return self.tensor(n)

    def qparams(self, node) -> tuple[float, int]:
        v = self.env[node]
        if v.dtype != torch.quint8:
            self.fail(node, f"activations must be quint8, this one is {v.dtype} (use a QConfig whose activation "
                            "observer has dtype=torch.quint8)")
        if v.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            self.fail(node, f"activations must be quantized per tensor, this one is {v.qscheme()}")
        return float(np.float32(v.q_scale())), int(v.q_zero_point())

    def q_input(self, node, a):
        if not isinstance(a, torch.fx.Node) or a not in self.values:
            self.fail(node, "expects a quantized tensor input")
        return a

    def _const(self, a):
        if isinstance(a, torch.fx.Node):
            return self.env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(self._const(x) for x in a)
        return a

    def arg(self, node, i: int, key: str, default=None):
        if len(node.args) > i:
            return self._const(node.args[i])
        return self._const(node.kwargs.get(key, default))

    # -- main loop -----------------------------------------------------------------------

    def run(self) -> GraphBuilder:
        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != len(self.example):
            raise ExportError(f"the model takes {len(placeholders)} inputs, {len(self.example)} example inputs given")
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self._placeholder(node)
            elif node.op == "get_attr":
                continue
            elif node.op == "output":
                self._output(node)
            else:
                self._call(node)
        self._fuse_clamps()
        return self.b

    def _placeholder(self, node):
        v = self.env[node]
        if not isinstance(v, torch.Tensor):
            raise ExportError(f"input '{node.name}' must be a tensor, got {type(v).__name__}")
        shape = [None] + list(v.shape[1:])
        if _is_q(v):
            scale, zp = self.qparams(node)
            t = self.b.input(node.name, shape, "uint8", scale, zp)
            self._set_q(node, t, v)
        else:
            if v.dtype != torch.float32:
                raise ExportError(f"input '{node.name}' must be float32 or quint8, got {v.dtype}")
            self.inputs[node] = self.b.input(node.name, shape, "float32")
            self.floats[node] = [node]

    def _set_q(self, node, t: Tensor, v):
        """Registers a tensor in torch's element order; 4-D ones are moved to NHWC."""
        if v.dim() == 4:
            self._plain[node] = t
            self.values[node] = (self.b.transpose(t, NCHW_TO_NHWC, name=f"{node.name}_nhwc"), True)
        else:
            self.values[node] = (t, False)

    def _output(self, node):
        outs = node.args[0]
        if isinstance(outs, dict):
            outs = list(outs.values())
        for o in (outs if isinstance(outs, (list, tuple)) else [outs]):
            if not isinstance(o, torch.fx.Node):
                raise ExportError("a model output is a constant, not computed from the inputs")
            if o in self.values:
                self.b.output(self.plain(o))
            elif o in self.floats and len(self.floats[o]) == 1 and self.floats[o][0].op != "placeholder":
                src = self.floats[o][0].args[0]
                self.b.output(self.b.dequantize(self.plain(src), name=o.name))
            else:
                self.fail(o, "a model output must be a quantized tensor or a dequantize of one (float code after "
                             "the last dequantize cannot run in intinfer)")

    def _call(self, node):
        out = self.env[node]
        if not isinstance(out, torch.Tensor):
            return  # sizes and other Python values: read from self.env when needed
        mod = self.modules[node.target] if node.op == "call_module" else None
        t = node.target
        fn = t if node.op == "call_function" else None
        meth = t if node.op == "call_method" else None

        # Pass-through nodes keep their input's value, quantized or float.
        if isinstance(mod, PASS_MODULES) or meth in PASS_METHODS or fn in PASS_FUNCTIONS:
            src = node.args[0]
            if src in self.values:
                self.values[node] = self.values[src]
                if src in self._plain:
                    self._plain[node] = self._plain[src]
            elif src in self.floats:
                self.floats[node] = self.floats[src]
            else:
                self.fail(node, "unsupported input")
            return

        if isinstance(mod, DEQUANTIZE_MODULES) or fn in DEQUANTIZE_FUNCTIONS or meth == "dequantize":
            self.q_input(node, node.args[0])
            self.floats[node] = [node]
            return

        if not out.is_quantized:
            src = self._chain_input(node)
            if src is not None and self._elementwise(node):
                self.floats[node] = self.floats[src] + [node]
                return
            if isinstance(mod, nn.Module) and type(mod).__module__.startswith("torch.nn.modules") and \
                    any(p.is_floating_point() for p in mod.parameters(recurse=False)):
                self.fail(node, "float module in the graph (was the model converted with "
                                "torch.ao.quantization.convert, and does its qconfig cover this module?)")
            self.fail(node, "unsupported float operation (intinfer runs integer code only)")

        if isinstance(mod, QUANTIZE_MODULES) or fn in QUANTIZE_FUNCTIONS:
            return self._quantize(node)
        if mod is not None and type(mod) in CONV_MODULES:
            return self._conv(node, mod, CONV_MODULES[type(mod)])
        if mod is not None and type(mod) in LINEAR_MODULES:
            return self._linear(node, mod, LINEAR_MODULES[type(mod)])
        if fn in ADD_FUNCTIONS or fn in MUL_FUNCTIONS:
            if all(isinstance(a, torch.fx.Node) and a in self.values for a in node.args[:2]):
                act = ADD_FUNCTIONS.get(fn) if fn in ADD_FUNCTIONS else MUL_FUNCTIONS[fn]
                return self._binary(node, self.b.add if fn in ADD_FUNCTIONS else self.b.mul, act)
        if fn in CAT_FUNCTIONS:
            return self._cat(node)
        if isinstance(mod, MAX_POOL_MODULES) or fn in MAX_POOL_FUNCTIONS:
            return self._max_pool(node, mod)
        if isinstance(mod, AVG_POOL_MODULES) or fn in AVG_POOL_FUNCTIONS:
            return self._avg_pool(node, mod)
        if isinstance(mod, ADAPTIVE_POOL_MODULES) or fn in ADAPTIVE_POOL_FUNCTIONS:
            return self._adaptive_pool(node, mod)
        if fn in MEAN_FUNCTIONS or meth == "mean":
            return self._mean(node)
        if isinstance(mod, RESHAPE_MODULES) or fn in RESHAPE_FUNCTIONS or meth in RESHAPE_METHODS:
            return self._reshape(node)
        if self._elementwise(node):
            return self._unary(node)
        if mod is not None:
            self.fail(node, "unsupported module")
        self.fail(node, "unsupported operation")

    # -- element-wise functions: tables computed by torch ---------------------------------

    def _elementwise(self, node) -> bool:
        if node.op == "call_module":
            return isinstance(self.modules[node.target], ELEMENTWISE_MODULES)
        if node.op == "call_function":
            return node.target in ELEMENTWISE_FUNCTIONS
        return node.op == "call_method" and node.target in ELEMENTWISE_METHODS

    def _tensor_args(self, node) -> list:
        return [a for a in list(node.args) + list(node.kwargs.values())
                if isinstance(a, torch.fx.Node) and isinstance(self.env.get(a), torch.Tensor)]

    def _chain_input(self, node):
        """The one float-tensor argument of an element-wise node, if the others are scalars."""
        ts = self._tensor_args(node)
        if len(ts) != 1 or ts[0] not in self.floats:
            return None
        return ts[0]

    def _apply(self, node, src, x):
        """Evaluates `node` with the value of `src` replaced by `x`."""
        def sub(a):
            if a is src:
                return x
            if isinstance(a, torch.fx.Node):
                return self.env[a]
            if isinstance(a, (list, tuple)):
                return type(a)(sub(i) for i in a)
            return a
        args = [sub(a) for a in node.args]
        kwargs = {k: sub(v) for k, v in node.kwargs.items()}
        if node.op == "call_module":
            return self.modules[node.target](*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        return getattr(args[0], node.target)(*args[1:], **kwargs)

    def _table(self, node, src, nodes) -> np.ndarray:
        """torch's outputs for the 256 codes of `src` pushed through `nodes` (each taking the
        previous one's value)."""
        s, z = self.env[src].q_scale(), self.env[src].q_zero_point()
        x = torch._make_per_tensor_quantized_tensor(torch.arange(256, dtype=torch.uint8), s, z)
        prev = src
        with torch.no_grad():
            for n in nodes:
                for a in self._tensor_args(n):
                    if a is not prev and self.env[a].numel() != 1:
                        self.fail(n, "an element-wise operation takes one tensor and scalars only")
                x = self._apply(n, prev, x.clone())
                prev = n
        last = self.env[nodes[-1]]
        if not (_is_q(x) and x.dtype == last.dtype and x.shape == (256,) and x.q_scale() == last.q_scale()
                and x.q_zero_point() == last.q_zero_point()):
            self.fail(nodes[-1], "an element-wise operation whose output parameters depend on the data")
        return x.int_repr().numpy().astype(np.uint8)

    def _table_op(self, node, src, table: np.ndarray):
        """LUT, CLAMP or nothing for a table from src's codes to node's."""
        x, layout = self.values[src]
        scale, zp = self.qparams(node)
        same = (scale, zp) == (x.scale, x.zero_point)
        lo, hi = int(table[0]), int(table[255])
        if same and np.array_equal(table, np.clip(np.arange(256), lo, hi)):
            if lo == 0 and hi == 255:
                self.values[node] = (x, layout)
                if src in self._plain:
                    self._plain[node] = self._plain[src]
                return
            self.values[node] = (self.b.clamp(x, lo, hi, name=node.name), layout)
            return
        self.values[node] = (self.b.lut(x, table, scale, zp, name=node.name), layout)

    def _unary(self, node):
        src = self._tensor_args(node)
        if not src or src[0] not in self.values:
            self.fail(node, "expects a quantized tensor input")
        src = src[0]
        self._table_op(node, src, self._table(node, src, [node]))

    def _quantize(self, node):
        src = node.args[0]
        chain = self.floats.get(src) if isinstance(src, torch.fx.Node) else None
        if chain is None:
            self.fail(node, "quantizes something other than a float tensor")
        scale, zp = self.qparams(node)
        first = chain[0]
        if first.op == "placeholder":
            if len(chain) > 1:
                self.fail(chain[1], "float operations before the first quantize are not supported")
            x = self.b.quantize(self.inputs[first], scale, zp, name=node.name)
            self._set_q(node, x, self.env[node])
            return
        # dequantize -> element-wise float code -> quantize: a table over the source's codes.
        qsrc = first.args[0]
        self._table_op(node, qsrc, self._table(node, qsrc, chain + [node]))

    # -- layers --------------------------------------------------------------------------

    def _act_range(self, act, zp) -> dict:
        return {"act_min": zp, "act_max": 255} if act == "relu" else {}

    def _weights(self, node, mod, in_scale: float):
        name = node.target
        w = mod.weight()
        if w.dtype != torch.qint8:
            self.fail(node, f"weights must be qint8, got {w.dtype}")
        cout = w.shape[0]
        qs = w.qscheme()
        if qs in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            scales = np.full(cout, w.q_scale(), np.float64)
            zps = np.full(cout, w.q_zero_point(), np.int64)
        elif qs in (torch.per_channel_affine, torch.per_channel_symmetric):
            if w.q_per_channel_axis() != 0:
                self.fail(node, f"per-channel weights must be quantized along axis 0, not {w.q_per_channel_axis()}")
            scales = w.q_per_channel_scales().double().numpy()
            zps = w.q_per_channel_zero_points().numpy()
        else:
            self.fail(node, f"unsupported weight qscheme {qs}")
        if np.any(zps != 0):
            raise ExportError(f"layer '{name}': intinfer needs symmetric weights (zero point 0), this one has zero "
                              f"points {sorted(set(int(z) for z in np.unique(zps)))[:8]}; quantize the weights with "
                              "qscheme=torch.per_channel_symmetric or per_tensor_symmetric")
        codes = w.int_repr().numpy()
        n128 = int(np.sum(codes == -128))
        if n128:
            msg = (f"layer '{name}': {n128} weight code(s) -128 clamped to -127 (intinfer refuses -128; a weight "
                   "observer with quant_min=-127 avoids this)")
            warnings.warn(msg, stacklevel=2)
            codes = np.maximum(codes, -127)
        scales = scales.astype(np.float32)
        bias = mod.bias()
        b = np.zeros(cout) if bias is None else bias.detach().double().numpy()
        bq = quantize_bias(b, in_scale, scales)
        # The engine's accumulator bound (docs/runtime.md), checked here to name the layer.
        k = codes[0].size
        z_in = self.values[node.args[0]][0].zero_point
        folded = np.abs(bq.astype(np.int64) - z_in * codes.reshape(cout, -1).astype(np.int64).sum(1))
        if np.any(folded + 255 * 127 * k >= 2**31):
            raise ExportError(f"layer '{name}': its bias is too large for the int32 accumulator in units of "
                              f"s_in * s_w (channel {int(np.argmax(folded))}); the weight scales are too small "
                              "for this bias")
        return codes.astype(np.int8), scales, bq

    def _conv(self, node, mod, act):
        x = self.image(node, self.q_input(node, node.args[0]))
        if getattr(mod, "padding_mode", "zeros") != "zeros":
            self.fail(node, f"padding_mode '{mod.padding_mode}' (only zeros)")
        if isinstance(mod.padding, str):
            self.fail(node, f"padding '{mod.padding}'")
        wq, ws, bias = self._weights(node, mod, x.scale)
        wq = np.ascontiguousarray(wq.transpose(0, 2, 3, 1))  # OIHW -> OHWI
        scale, zp = self.qparams(node)
        y = self.b.conv2d(x, self.b.constant(f"{node.target}_w", wq, scale=ws),
                          self.b.constant(f"{node.target}_b", bias), scale, zp, stride=tuple(mod.stride),
                          padding=tuple(mod.padding), dilation=tuple(mod.dilation), groups=mod.groups,
                          name=node.name, **self._act_range(act, zp))
        self.values[node] = (y, True)

    def _linear(self, node, mod, act):
        x = self.plain(self.q_input(node, node.args[0]))
        wq, ws, bias = self._weights(node, mod, x.scale)
        scale, zp = self.qparams(node)
        y = self.b.fully_connected(x, self.b.constant(f"{node.target}_w", wq, scale=ws),
                                   self.b.constant(f"{node.target}_b", bias), scale, zp, name=node.name,
                                   **self._act_range(act, zp))
        self.values[node] = (y, False)

    def _binary(self, node, method, act):
        a_node, b_node = node.args[:2]
        a, b, layout = self.tensor(a_node), self.tensor(b_node), self.nhwc(a_node)
        if self.nhwc(b_node) != layout or (layout and self.env[a_node].dim() != self.env[b_node].dim()):
            a, b, layout = self.plain(a_node), self.plain(b_node), False
        scale, zp = self.qparams(node)
        self.values[node] = (method(a, b, scale, zp, name=node.name, **self._act_range(act, zp)), layout)

    def _cat(self, node):
        xs = node.args[0] if node.args else node.kwargs.get("tensors", node.kwargs.get("qx"))
        if not isinstance(xs, (list, tuple)) or not all(isinstance(n, torch.fx.Node) and n in self.values
                                                        for n in xs):
            self.fail(node, "concatenates something other than quantized tensors")
        dim = self.arg(node, 1, "dim", 0)
        rank = self.env[node].dim()
        dim = dim % rank
        nhwc = all(self.nhwc(n) for n in xs)
        ts = [self.tensor(n) if nhwc else self.plain(n) for n in xs]
        axis = NCHW_AXIS_IN_NHWC[dim] if nhwc else dim
        scale, zp = self.qparams(node)
        self.values[node] = (self.b.concat(ts, axis, scale, zp, name=node.name), nhwc)

    def _pool_args(self, node, mod, names_defaults):
        if mod is not None:
            return [getattr(mod, k, d) for k, d in names_defaults]
        return [self.arg(node, i + 1, k, d) for i, (k, d) in enumerate(names_defaults)]

    def _same_as_input(self, node, src):
        if self.qparams(node) != (self.tensor(src).scale, self.tensor(src).zero_point):
            self.fail(node, "output parameters differ from the input's")

    def _max_pool(self, node, mod):
        src = self.q_input(node, node.args[0])
        kernel, stride, padding, dilation, ceil_mode, ret = self._pool_args(
            node, mod, [("kernel_size", None), ("stride", None), ("padding", 0), ("dilation", 1),
                        ("ceil_mode", False), ("return_indices", False)])
        if ceil_mode or ret or any(d != 1 for d in np.atleast_1d(dilation)):
            self.fail(node, "max pooling with ceil_mode, dilation or return_indices")
        self._same_as_input(node, src)
        stride = kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else stride
        self.values[node] = (self.b.max_pool(self.image(node, src), kernel, stride=stride,
                                             padding=_hw(padding), name=node.name), True)

    def _avg_pool(self, node, mod):
        src = self.q_input(node, node.args[0])
        kernel, stride, padding, ceil_mode, count_include_pad, divisor = self._pool_args(
            node, mod, [("kernel_size", None), ("stride", None), ("padding", 0), ("ceil_mode", False),
                        ("count_include_pad", True), ("divisor_override", None)])
        if ceil_mode or divisor is not None:
            self.fail(node, "average pooling with ceil_mode or divisor_override")
        stride = kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else stride
        scale, zp = self.qparams(node)
        self.values[node] = (self.b.avg_pool(self.image(node, src), kernel, scale, zp, stride=stride,
                                             padding=_hw(padding), count_include_pad=count_include_pad,
                                             name=node.name), True)

    def _adaptive_pool(self, node, mod):
        src = self.q_input(node, node.args[0])
        x = self.image(node, src)
        h, w = self.env[src].shape[2:]
        oh, ow = self.env[node].shape[2:]
        scale, zp = self.qparams(node)
        if (oh, ow) == (1, 1):
            y = self.b.global_avg_pool(x, scale, zp, name=node.name)
        elif h % oh == 0 and w % ow == 0:
            y = self.b.avg_pool(x, (h // oh, w // ow), scale, zp, name=node.name)
        else:
            self.fail(node, f"adaptive pooling from {h}x{w} to {oh}x{ow} (the output must divide the input)")
        self.values[node] = (y, True)

    def _mean(self, node):
        src = self.q_input(node, node.args[0])
        dims = self.arg(node, 1, "dim", None)
        keep = self.arg(node, 2, "keepdim", False)
        dims = sorted(d % 4 for d in np.atleast_1d(dims)) if dims is not None else None
        if self.env[src].dim() != 4 or dims != [2, 3]:
            self.fail(node, "mean other than over H and W of a 4-D tensor")
        scale, zp = self.qparams(node)
        y = self.b.global_avg_pool(self.image(node, src), scale, zp, name=node.name if keep else f"{node.name}_gap")
        if keep:
            self.values[node] = (y, True)
        else:
            self.values[node] = (self.b.reshape(y, [0, -1], name=node.name), False)

    def _reshape(self, node):
        src = self.q_input(node, node.args[0])
        self._same_as_input(node, src)
        in_shape, out_shape = tuple(self.env[src].shape), tuple(self.env[node].shape)
        # With an example batch of 1 the shapes cannot tell whether the batch dimension is
        # kept; flatten, squeeze and unsqueeze say so with their dim arguments.
        mod = self.modules.get(node.target) if node.op == "call_module" else None
        if isinstance(mod, nn.Flatten):
            dims = [mod.start_dim]
        elif node.target in (torch.flatten, "flatten"):
            dims = [self.arg(node, 1, "start_dim", 0)]
        elif node.target in (torch.squeeze, torch.unsqueeze, "squeeze", "unsqueeze"):
            dims = [self.arg(node, 1, "dim", None)]
        else:
            dims = []
        rank = len(out_shape) if node.target in (torch.unsqueeze, "unsqueeze") else len(in_shape)
        if any(d is None and in_shape[:1] == (1,) or d is not None and int(np.min(d)) % max(rank, 1) == 0
               for d in dims):
            self.fail(node, "the batch dimension (0) must be kept")
        if len(out_shape) == 0 or len(in_shape) == 0 or out_shape[0] != in_shape[0]:
            self.fail(node, f"reshape from {list(in_shape)} to {list(out_shape)} must keep the batch dimension")
        target = [0] + list(out_shape[1:])
        if self.nhwc(src) and in_shape[2:] == (1, 1) and len(target) == 2:
            # [N, C, 1, 1] flattens to the same bytes in NCHW and NHWC.
            self.values[node] = (self.b.reshape(self.tensor(src), target, name=node.name), False)
            return
        if len(target) == 4:
            y = self.b.reshape(self.plain(src), target, name=f"{node.name}_nchw")
            self._plain[node] = y
            self.values[node] = (self.b.transpose(y, NCHW_TO_NHWC, name=node.name), True)
        else:
            self.values[node] = (self.b.reshape(self.plain(src), target, name=node.name), False)

    # -- peephole ------------------------------------------------------------------------

    def _fuse_clamps(self):
        """CLAMP after an op with an act range, on a tensor nothing else reads: narrow the
        op's range instead (clamp after clamp is the clamp to the intersection)."""
        b = self.b
        readers: dict = {}
        for op in b.ops:
            for t in op.inputs:
                readers[id(t)] = readers.get(id(t), 0) + 1
        producer = {id(op.outputs[0]): op for op in b.ops}
        outputs = {id(t) for t in b.outputs}
        for op in list(b.ops):
            if op.type != "CLAMP":
                continue
            t = op.inputs[0]
            prod = producer.get(id(t))
            if prod is None or prod.type not in ACT_OPS or readers[id(t)] != 1 or id(t) in outputs:
                continue
            if prod.outputs[0].dtype != "uint8":
                continue
            lo = max(prod.attrs.get("act_min", 0), op.attrs["act_min"])
            hi = min(prod.attrs.get("act_max", 255), op.attrs["act_max"])
            if lo > hi:
                continue
            prod.attrs["act_min"], prod.attrs["act_max"] = lo, hi
            out = op.outputs[0]
            prod.outputs[0] = out
            producer[id(out)] = prod
            b.ops.remove(op)
            b.tensors.remove(t)
            del b._by_name[t.name]


def _hw(p):
    """(h, w) padding from an int or a pair."""
    if isinstance(p, int):
        return (p, p)
    p = tuple(int(v) for v in p)
    return p if len(p) == 2 else (p[0], p[0])
