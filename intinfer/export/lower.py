"""Lower a calibrated float graph to an intinfer graph.

Images are NCHW in PyTorch and NHWC in the engine: 4-D values are kept NHWC inside the graph,
a TRANSPOSE converts at the graph's inputs and outputs and where a 4-D value must be seen in
PyTorch's element order (flattening a map larger than 1x1, a fully connected layer on a 4-D
value). Axis arguments (concat) are mapped accordingly.

Sequences are [B, L, C] in a transformer and [B, C, L] where torch convolves them: a 3-D value
in conv1d's order is kept channels last ("nlc": stored [B, L, C]), so that the transposes on
each side of a convolution over the sequence cost nothing.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import torch

from .._schema import DTYPE_BITS
from ..builder import GraphBuilder, Tensor
from ..quant import (WIDE_MAX, activation_range, choose_qparams, layer_scales, make_lut, quantize_bias,
                     quantize_weights, round_weights, weight_dtype, weight_qmax)
from .bias_correction import BiasCorrection
from .gptq import gptq_layer
from .graph import ExportError, FloatGraph, Node

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_AXIS_IN_NHWC = (0, 3, 1, 2)  # logical NCHW axis d lives at physical axis [d]
SWAP_LAST = (0, 2, 1)  # [B, C, L] <-> [B, L, C]
NLC = "nlc"  # the layout of a value of logical shape [B, C, L] (or [B, C, 1, L]) stored [B, L, C]

# Ops whose output keeps its input's quantization (they move or select values, or clamp them).
SAME_QUANT = {"max_pool", "reshape", "relu", "permute", "slice", "apply_mask"}
# Ops that read NHWC images.
IMAGE_OPS = {"conv", "avg_pool", "max_pool", "global_avg_pool"}
# Ops whose output quantization is fixed (softmax: 1/256).
FIXED_QUANT = {"softmax"}

# Block-sparse int8 weights (docs/pruning.md): a conv / linear layer is written in the file's
# block_sparse encoding, blocks of SPARSE_BLOCK codes along its input axis, when at most
# sparse_max_density of those blocks hold a non-zero code. The thresholds are the densities below
# which the sparse kernel was measured faster than the dense one on every shape of
# bench/sparse_gemm.py (docs/benchmarks.md, sparse-gemm), by the rows the layer multiplies for
# one sample: one (a linear layer on a [batch, features] input: the kernel's one-row form,
# which gathers), or several (tokens, pixels), where a deeper reduction leaves the per-channel
# costs less to amortize. They were measured on AVX2; the VNNI paths' dense kernels are faster
# and their crossovers lower, so the engine densifies at load what its path runs faster dense
# (tables.h SparseCrossover, intinfer._core.sparse_crossover; docs/pruning.md): the file keeps
# the sparse bytes either way.
SPARSE_BLOCK = 4
SPARSE_MAX_DENSITY = {"one row": 0.1, "rows, K < 96": 0.25, "rows": 0.4}


def sparse_max_density(node: Node, depth: int) -> float:
    """The block density under which `node`'s weights ([out, ...] with `depth` codes a channel)
    are stored block-sparse. One row: the layer's output has no dimension between the batch and
    its channels, or only 1s (a dynamic dimension counts as several rows)."""
    shape = node.shape
    between = shape[2:] if node.op == "conv" else shape[1:-1]
    if all(isinstance(d, int) and d == 1 for d in between):
        return SPARSE_MAX_DENSITY["one row"]
    return SPARSE_MAX_DENSITY["rows, K < 96" if depth < 96 else "rows"]


def block_density(codes: np.ndarray, block: int = SPARSE_BLOCK) -> float:
    """The share of 1 x `block` blocks along the last axis of `codes` that hold a non-zero code
    (1.0 when `block` does not divide the last axis: such a layer cannot be stored sparse)."""
    if codes.shape[-1] % block:
        return 1.0
    return float(np.any(codes.reshape(-1, block) != 0, axis=1).mean())


def check_weight_bits(weight_bits) -> None:
    """Refuses a width outside 2..8 (an int, or the values of a {module path: bits} dict)."""
    for bits in (weight_bits.values() if isinstance(weight_bits, dict) else [weight_bits]):
        weight_qmax(bits)


def check_weight_bits_names(weight_bits, graph: FloatGraph) -> None:
    """Refuses a {module path: bits} dict naming a module that is no conv, linear or embedding of
    the graph, listing those that are."""
    if not isinstance(weight_bits, dict):
        return
    layers = {n.attrs["module"] for n in graph.nodes if n.op in ("conv", "linear", "gather")}
    unknown = sorted(set(weight_bits) - layers)
    if unknown:
        raise ValueError(f"weight_bits names {unknown}, which are not conv/linear/embedding modules of the exported "
                         f"graph; those are {sorted(layers)}")


def node_bits(weight_bits, node: Node) -> int:
    """The width of a conv / linear node's weights or an embedding's table: the dict's entry for
    its module (8 when not named), or the int for convs and linears (tables stay 8-bit)."""
    if isinstance(weight_bits, dict):
        return weight_bits.get(node.attrs.get("module"), 8)
    return weight_bits if node.op in ("conv", "linear") else 8


# Ops that can write a wide (int32, 16-bit range) output, for the residual stream.
WIDE_OPS = {"add", "linear", "gather", "layer_norm"}


def wide_nodes(graph: FloatGraph, wide_ffn: bool = False, weight_bits: int | dict = 8) -> set:
    """The residual stream of a transformer: values whose every reader is a layer norm or a wide
    add (the embedding sums, the residual adds, the layers that feed them and a post-norm
    encoder's norms, whose output is the next residual add's input). Their outlier channels
    would leave 8 bits no room for the rest, so they are kept wide. A value a linear layer reads
    stays 8-bit even when the linear itself writes wide (a factorized embedding: GATHER ->
    FULLY_CONNECTED -> ADD), except, with `wide_ffn`, an elementwise function's output (a LUT:
    the FFN's GELU) that only linear layers read, all with int8-stored weights (5-8 bits of
    `weight_bits`; the engine multiplies a wide input by int8 codes only): those read it wide,
    within wide_bounds'."""
    wide: set = set()
    for node in reversed(graph.nodes):
        users = graph.users(node)
        if node.op in WIDE_OPS and node.act is None and users and \
                all(u is not None and (u.op == "layer_norm" or (u.op == "add" and u in wide)) for u in users):
            wide.add(node)
        elif wide_ffn and node.op == "lut" and node.act is None and users and \
                all(u is not None and u.op == "linear" and u.inputs[0] is node and
                    weight_dtype(node_bits(weight_bits, u)) == "int8" for u in users):
            wide.add(node)
    return wide


def wide_bounds(graph: FloatGraph, wide: set) -> dict:
    """{wide node: the bound of its values}: 32767 (16 bits), or for a value linear layers read
    the largest bound with K x 127 x bound <= 2^30 for every reader (ops/weights.cc proves the
    int32 accumulator at load with int8's code bound 127; the other 2^30 are the bias's)."""
    bounds = {}
    for node in wide:
        depths = [u.attrs["weight"].shape[1] for u in graph.users(node) if u is not None and u.op == "linear"]
        bounds[node] = min(WIDE_MAX, (1 << 30) // (127 * max(depths))) if depths else WIDE_MAX
    return bounds


def split_residual_norms(graph: FloatGraph) -> int:
    """Rewrites `graph` in place so that a post-norm encoder's residual stream stays wide: a layer
    norm whose output is both a wide add's operand (the next residual) and another op's input
    (the next layer's linears, which read uint8) is computed twice, a wide copy for the adds.
    Returns how many norms were split. (Smoothing, smoothing.py, already splits the norms it
    smooths; this covers the others.)"""
    wide = wide_nodes(graph)
    count = 0
    for node in list(graph.nodes):
        if node.op != "layer_norm" or node in wide:
            continue
        residual = [u for u in graph.users(node) if u is not None and u.op == "add" and u in wide]
        if not residual:
            continue
        # One norm of the float model: the copy holds the same parameter tensors (intinfer.qat ties them).
        copy = dataclasses.replace(node, name=f"{node.name}_residual", inputs=list(node.inputs), attrs=dict(node.attrs))
        graph.nodes.insert(graph.nodes.index(node) + 1, copy)
        for u in residual:
            u.inputs = [copy if i is node else i for i in u.inputs]
        count += 1
    return count


# The engine's LAYER_NORM widths (csrc/ops/layer_norm.cc): sum d^2 must fit 64 bits.
LAYER_NORM_MAX_WIDTH = 8192
LAYER_NORM_MAX_WIDE_WIDTH = 1024


def check_engine_limits(graph: FloatGraph, wide: set) -> None:
    """Refuses, at export, a graph the engine would refuse at load."""
    for node in graph.nodes:
        if node.op != "layer_norm":
            continue
        h = node.attrs["weight"].shape[0]
        limit = LAYER_NORM_MAX_WIDE_WIDTH if node.inputs[0] in wide else LAYER_NORM_MAX_WIDTH
        if h > limit:
            kind = "a 16-bit (residual) input" if node.inputs[0] in wide else "a uint8 input"
            raise ExportError(f"layer_norm '{node.name}' at {node.source} normalizes {h} channels; the engine's "
                              f"integer LayerNorm of {kind} takes at most {limit}")


def writes_float(graph: FloatGraph, node: Node) -> bool:
    """A final linear layer gives its output in float: requantizing logits would clip the ones
    beyond the calibrated range and round near-ties into ties. A masked mean is float unless
    another op reads it (a classifier head): then it is quantized with its own range."""
    if node.op == "masked_mean":
        return all(u is None for u in graph.users(node))
    return node.op == "linear" and node.act is None and graph.users(node) == [None]


def needs_observer(node: Node) -> bool:
    if node.op == "input" and node.attrs.get("dtype") == "int32":
        return False
    return node.op not in SAME_QUANT and node.op not in FIXED_QUANT


def lut_table(fn, in_q: tuple, out_q: tuple, wide_bound: int | None = None) -> np.ndarray:
    """LUT's table for the torch function `fn` between the input's and the output's (scale, zero
    point); int32 within +-wide_bound for a wide output."""
    return make_lut(lambda r: fn(torch.from_numpy(r)).numpy(), in_q[0], in_q[1], out_q[0], out_q[1], wide_bound)


def quantize_constant(c: np.ndarray) -> tuple[np.ndarray, float, int]:
    """A float constant operand of add/mul as uint8 codes with its own per-tensor (scale, zero point)."""
    scale, zp = choose_qparams(c.min(), c.max())
    return np.clip(np.rint(c / scale) + zp, 0, 255).astype(np.uint8), scale, zp


class LayoutValues:
    """The engine tensors a lowering has made, each with its layout: False (PyTorch's element
    order), True (an NHWC image) or NLC (a sequence stored channels last). Values are
    transposed to PyTorch's order only on demand (once per value)."""

    def __init__(self, builder: GraphBuilder):
        self.b = builder
        self.values: dict = {}  # source node -> (Tensor, layout: False, True or NLC)
        self._plain: dict = {}  # source node -> Tensor in PyTorch element order

    def tensor(self, node) -> Tensor:
        return self.values[node][0]

    def layout(self, node):
        return self.values[node][1]

    def nhwc(self, node) -> bool:
        return self.values[node][1] is True

    def plain(self, node) -> Tensor:
        """The value in PyTorch's element order (transposed back from NHWC or NLC if needed)."""
        t, layout = self.values[node]
        if layout is False:
            return t
        if node not in self._plain:
            if layout is True:
                self._plain[node] = self.b.transpose(t, NHWC_TO_NCHW, name=f"{node.name}_nchw")
            else:
                y = self.b.transpose(t, SWAP_LAST, name=f"{node.name}_ncl")
                if len(node.shape) == 4:  # [B, C, 1, L]
                    y = self.b.reshape(y, [0, 0, 1, -1], name=f"{node.name}_nc1l")
                self._plain[node] = y
        return self._plain[node]

    def torch_order(self, node, value: np.ndarray) -> np.ndarray:
        """An engine value of `node` (as its tensor holds it) in PyTorch's element order."""
        layout = self.values[node][1]
        if layout is True:
            return value.transpose(NHWC_TO_NCHW)
        if layout == NLC:
            value = value.transpose(SWAP_LAST)
            return value[:, :, None] if len(node.shape) == 4 else value
        return value


class Lowering(LayoutValues):
    def __init__(self, graph: FloatGraph, qparams: dict, metadata: dict | None = None, input_stats: dict | None = None,
                 correction: BiasCorrection | None = None, wide: set | None = None, weight_bits: int | dict = 8,
                 sparse_weights: bool = True):
        self.graph = graph
        self.sparse_weights = sparse_weights
        # conv/linear weights, one width or one per module path (8 for the others); embedding
        # tables stay 8-bit
        self.weight_bits = weight_bits
        self.q = qparams  # node -> (scale, zero_point) for nodes with observers
        self.wide = wide or set()  # nodes with a wide output (scale, zero point 0)
        self.bounds = wide_bounds(graph, self.wide)
        self.input_stats = input_stats  # conv/linear node -> gptq.InputStatistics; None: round to nearest
        self.correction = correction
        self._dequantized: dict = {}  # conv/linear node -> (weight, bias) as lowered, in float, until recorded
        super().__init__(GraphBuilder(metadata))

    def run(self) -> GraphBuilder:
        for node in self.graph.nodes:
            self.values[node] = getattr(self, "_" + node.op)(node)
            if self.correction is not None:
                self.correction.record(node, self.tensor(node), *self._dequantized.pop(node, (None, None)))
        for out in self.graph.outputs:
            self.b.output(self.plain(out))
        return self.b

    # -- helpers -----------------------------------------------------------------------

    def _act(self, node: Node) -> dict:
        if node.act is None:
            return {}
        scale, zp = self.q[node]
        lo, hi = activation_range(node.act, scale, zp)
        return {"act_min": lo, "act_max": hi}

    def _image(self, node: Node) -> Tensor:
        if self.layout(node) is not True:
            raise ValueError(f"'{node.name}' expects an NCHW image input")
        return self.tensor(node)

    def _weight_constant(self, node: Node, codes: np.ndarray, scales: np.ndarray, dense: bool = False) -> Tensor:
        """The weight codes ([out, ..., in], the engine's layout) in the narrowest dtype that holds
        them: packed int4 / int2 where each output channel's codes fill whole bytes (always for
        linear layers; convs whose input channels per group times the bits make whole bytes: a
        depthwise conv's rows of one code would take a byte each, so it stays int8); int8 codes
        of an ungrouped layer sparse enough (sparse_max_density) in the block-sparse encoding
        when `sparse_weights` (and not `dense`)."""
        dtype = weight_dtype(node_bits(self.weight_bits, node))
        bits = DTYPE_BITS[dtype]
        if codes.shape[-1] * bits % 8 and codes.size != codes.shape[0] * codes.shape[-1]:
            dtype = "int8"
        sparse = self.sparse_weights and dtype == "int8" and node.attrs.get("groups", 1) == 1 \
            and block_density(codes) <= sparse_max_density(node, codes[0].size)
        if sparse and dense:
            warnings.warn(f"'{node.name}' reads a wide input (wide_ffn), which the engine multiplies by dense int8 "
                          f"weights only: its block-sparse weights ({block_density(codes):.0%} of the blocks) are "
                          "stored dense", UserWarning, stacklevel=2)
            sparse = False
        return self.b.constant(f"{node.name}_w", codes, dtype, scale=scales,
                               block_sparse=SPARSE_BLOCK if sparse else None)

    def _weights(self, node: Node, in_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weight codes (PyTorch layout), per-channel scales and int32 bias of a conv or linear."""
        w = node.attrs["weight"].detach().double().numpy()
        b = node.attrs["bias"].detach().double().numpy()
        qmax = weight_qmax(node_bits(self.weight_bits, node))
        scales = layer_scales(w, b, in_scale, qmax)
        if self.input_stats is not None:
            # Each layer's statistics are dropped once its weights are rounded (EfficientNet-Lite0's: 104 MB).
            codes = gptq_layer(w, scales, self.input_stats.pop(node), qmax)
        else:
            codes = round_weights(w, scales, qmax)
        if self.correction is not None:
            deq = torch.from_numpy(codes * scales.astype(np.float64).reshape((-1,) + (1,) * (w.ndim - 1))).float()
            b = b + self.correction.delta(node, deq)
            self._dequantized[node] = (deq, torch.from_numpy(b).float())
        return codes, scales, quantize_bias(b, in_scale, scales)

    def _const_operand(self, value: torch.Tensor, nhwc: bool, name: str) -> Tensor:
        """A float constant operand of add/mul/cat, quantized per tensor, NHWC when `nhwc`."""
        c = value.detach().double().numpy()
        if nhwc:
            c = c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(NCHW_TO_NHWC)
        q, scale, zp = quantize_constant(c)
        return self.b.constant(name, q, scale=scale, zero_point=zp)

    # -- one method per float op ---------------------------------------------------------

    def _input(self, node: Node):
        shape = [None] + [d if isinstance(d, int) else None for d in node.shape[1:]]
        if node.attrs.get("dtype") == "int32":
            return self.b.input(node.name, shape, "int32"), False
        x = self.b.input(node.name, shape, "float32")
        scale, zp = self.q[node]
        q = self.b.quantize(x, scale, zp, name=f"{node.name}_q")
        if len(node.shape) == 4:
            return self.b.transpose(q, NCHW_TO_NHWC, name=f"{node.name}_nhwc"), True
        return q, False

    def _conv(self, node: Node):
        sequence = node.attrs.get("sequence", False)  # conv1d: the engine convolves [B, L, C]
        x = self.tensor(node.inputs[0]) if sequence else self._image(node.inputs[0])
        wq, ws, bias = self._weights(node, x.scale)
        wq = np.ascontiguousarray(wq.transpose(0, 2, 3, 1))  # OIHW -> OHWI
        scale, zp = self.q[node]
        y = self.b.conv2d(x, self._weight_constant(node, wq, ws),
                          self.b.constant(f"{node.name}_b", bias), scale, zp, stride=node.attrs["stride"],
                          padding=node.attrs["pads"], dilation=node.attrs["dilation"], groups=node.attrs["groups"],
                          name=node.name, **self._act(node))
        return y, NLC if sequence else True

    def _linear(self, node: Node):
        x = self.plain(node.inputs[0])
        wq, ws, bias = self._weights(node, x.scale)
        scale, zp = (None, None) if writes_float(self.graph, node) else self.q[node]
        wide_input = node.inputs[0] in self.wide  # dense int8 weights, the input read within its bound
        y = self.b.fully_connected(x, self._weight_constant(node, wq, ws, dense=wide_input),
                                   self.b.constant(f"{node.name}_b", bias), scale, zp, name=node.name,
                                   wide=node in self.wide, input_bound=self.bounds.get(node.inputs[0]),
                                   **self._act(node))
        return y, False

    def _binary(self, node: Node, method):
        a_node, b_in = node.inputs
        a = self.tensor(a_node)
        layout = self.layout(a_node)
        if layout == NLC and not (isinstance(b_in, Node) and b_in.shape == a_node.shape):
            a, layout = self.plain(a_node), False  # a constant or broadcast operand: in PyTorch's order
        if isinstance(b_in, Node):
            if self.layout(b_in) != layout:
                a, b, layout = self.plain(a_node), self.plain(b_in), False
            else:
                b = self.tensor(b_in)
        else:
            b = self._const_operand(b_in, layout, f"{node.name}_c")
        scale, zp = self.q[node]
        return method(a, b, scale, zp, name=node.name, **self._act(node)), layout

    def _add(self, node: Node):
        return self._binary(node, lambda *a, **k: self.b.add(*a, wide=node in self.wide, **k))

    def _mul(self, node: Node):
        return self._binary(node, self.b.mul)

    def _cat(self, node: Node):
        layouts = {self.layout(i) for i in node.inputs if isinstance(i, Node)}
        nhwc = layouts == {True}
        xs = [(self.tensor(i) if nhwc else self.plain(i)) if isinstance(i, Node) else
              self._const_operand(i, nhwc, f"{node.name}_c{k}") for k, i in enumerate(node.inputs)]
        axis = NCHW_AXIS_IN_NHWC[node.attrs["dim"]] if nhwc else node.attrs["dim"]
        scale, zp = self.q[node]
        return self.b.concat(xs, axis, scale, zp, name=node.name), nhwc

    def _avg_pool(self, node: Node):
        a = node.attrs
        p = a["padding"]
        scale, zp = self.q[node]
        return self.b.avg_pool(self._image(node.inputs[0]), a["kernel"], scale, zp, stride=a["stride"],
                               padding=(p[0], p[1]), count_include_pad=a["count_include_pad"], name=node.name), True

    def _max_pool(self, node: Node):
        a = node.attrs
        p = a["padding"]
        return self.b.max_pool(self._image(node.inputs[0]), a["kernel"], stride=a["stride"], padding=(p[0], p[1]),
                               name=node.name), True

    def _global_avg_pool(self, node: Node):
        scale, zp = self.q[node]
        return self.b.global_avg_pool(self._image(node.inputs[0]), scale, zp, name=node.name), True

    def _channels_last(self, node: Node) -> Tensor:
        """A [B, C, L] value stored [B, L, C]."""
        if self.layout(node) == NLC:
            return self.tensor(node)
        return self.b.transpose(self.plain(node), SWAP_LAST, name=f"{node.name}_nlc")

    def _reshape(self, node: Node):
        src = node.inputs[0]
        target = [0] + list(node.attrs["shape"][1:])  # the batch dimension may vary
        users = self.graph.users(node)
        if len(src.shape) == 3 and users and all(u is not None and u.attrs.get("sequence") for u in users):
            return self._channels_last(src), NLC  # [B, C, L] -> [B, C, 1, L] for a conv1d: nothing to move
        if self.layout(src) == NLC and len(src.shape) == 4 and len(target) == 3:
            return self.tensor(src), NLC  # a conv1d's [B, C, 1, L] back to [B, C, L]
        if self.nhwc(src) and tuple(src.shape[2:]) == (1, 1) and len(target) == 2:
            # [N, C, 1, 1] flattens to the same bytes in NCHW and NHWC.
            return self.b.reshape(self.tensor(src), target, name=node.name), False
        # A 4-D result is an image only if an image op reads it (attention heads are 4-D too).
        image = len(target) == 4 and any(u is not None and u.op in IMAGE_OPS for u in self.graph.users(node))
        y = self.b.reshape(self.plain(src), target, name=f"{node.name}_nchw" if image else node.name)
        if image:
            return self.b.transpose(y, NCHW_TO_NHWC, name=node.name), True
        return y, False

    def _lut(self, node: Node):
        x_node = node.inputs[0]
        x = self.tensor(x_node)
        scale, zp = self.q[node]
        bound = self.bounds.get(node)
        table = lut_table(node.attrs["fn"], (x.scale, x.zero_point), (scale, zp), bound)
        return self.b.lut(x, table, scale, zp, name=node.name, wide=bound is not None), self.layout(x_node)

    def _relu(self, node: Node):
        x_node = node.inputs[0]
        x = self.tensor(x_node)
        lo, hi = activation_range(node.act, x.scale, x.zero_point)
        return self.b.clamp(x, lo, hi, name=node.name), self.layout(x_node)


    # -- transformer encoders ------------------------------------------------------------

    def _gather(self, node: Node):
        # Tables stay 8-bit unless weight_bits names their module (Q-BERT keeps embeddings at 8).
        bits = node_bits(self.weight_bits, node)
        codes, scales = quantize_weights(node.attrs["weight"].detach().numpy(), qmax=weight_qmax(bits))
        scale, zp = self.q[node]
        table = self.b.constant(f"{node.name}_table", codes, weight_dtype(bits), scale=scales)
        return self.b.gather(table, self.tensor(node.inputs[0]), scale, zp, positions=node.attrs["positions"],
                             padding_id=node.attrs.get("padding_id", 0), name=node.name, wide=node in self.wide), False

    def _layer_norm(self, node: Node):
        scale, zp = self.q[node]
        return self.b.layer_norm(self.plain(node.inputs[0]), node.attrs["weight"].numpy(), node.attrs["bias"].numpy(),
                                 scale, zp, name=node.name, wide=node in self.wide), False

    def _permute(self, node: Node):
        src = node.inputs[0]
        if list(node.attrs["perm"]) == list(SWAP_LAST) and self.layout(src) is not True:
            # [B, L, C] <-> [B, C, L]: the same bytes, read in the other layout
            return self.tensor(src), (False if self.layout(src) == NLC else NLC)
        return self.b.transpose(self.plain(src), node.attrs["perm"], name=node.name), False

    def _apply_mask(self, node: Node):
        return self.b.apply_mask(self.plain(node.inputs[0]), self.tensor(node.inputs[1]), name=node.name), False

    def _slice(self, node: Node):
        a = node.attrs
        return self.b.slice(self.plain(node.inputs[0]), a["axis"], a["start"], a["end"], name=node.name), False

    def _matmul(self, node: Node):
        scale, zp = self.q[node]
        a, b = (self.plain(i) for i in node.inputs)
        return self.b.matmul(a, b, scale, zp, transpose_b=node.attrs["transpose_b"], alpha=node.attrs["alpha"],
                             name=node.name), False

    def _softmax(self, node: Node):
        mask = self.tensor(node.inputs[1]) if len(node.inputs) > 1 else None
        relative = node.attrs.get("relative")
        return self.b.softmax(self.plain(node.inputs[0]), mask, name=node.name,
                              relative=None if relative is None else relative.numpy()), False

    def _masked_mean(self, node: Node):
        if writes_float(self.graph, node):
            return self.b.masked_mean(self.plain(node.inputs[0]), self.tensor(node.inputs[1]), name=node.name), False
        y = self.b.masked_mean(self.plain(node.inputs[0]), self.tensor(node.inputs[1]), name=f"{node.name}_f")
        return self.b.quantize(y, *self.q[node], name=node.name), False
