"""PyTorch -> .iif: capture with torch.export, calibrate, quantize, lower (docs/exporter.md)."""

from __future__ import annotations

import functools
import json
import warnings
from collections import Counter
from typing import Iterable

import numpy as np
import torch

from ..quant import WIDE_MAX, choose_qparams
from .bias_correction import BiasCorrection
from .gptq import InputStatistics
from .graph import ExportError, FloatGraph, Unsupported, capture, expected_shapes_match, find_unsupported
from .lower import (Lowering, check_engine_limits, check_weight_bits, check_weight_bits_names,
                    needs_observer, split_residual_norms, wide_bounds, wide_nodes)
from .observers import OBSERVERS, make_observer
from .smoothing import smooth_layer_norms
from .torch_ao import import_quantized

__all__ = ["ExportError", "QuantizedModel", "Unsupported", "check", "quantize", "OBSERVERS", "import_quantized"]


def _as_inputs(batch) -> tuple:
    if isinstance(batch, (list, tuple)):
        return tuple(torch.as_tensor(np.asarray(b)) if not isinstance(b, torch.Tensor) else b for b in batch)
    return (batch if isinstance(batch, torch.Tensor) else torch.as_tensor(np.asarray(batch)),)


def check(model: torch.nn.Module, example_inputs, dynamic_shapes=None) -> list:
    """Every op of `model` that intinfer.quantize cannot export, all at once: a list of
    Unsupported records (op, module path and class, source line, graph node, reason, hint on what
    to do instead), empty when the model exports. Ops that only read an unsupported op's result
    are not listed again. A model torch.export cannot capture raises ExportError, as quantize
    does. Like quantize, it exports the model's eval-mode behaviour and leaves it in eval mode."""
    return find_unsupported(model, _as_inputs(example_inputs), dynamic_shapes)


def _on_one_torch_thread(fn):
    """Runs `fn` with torch on one thread, and gives the caller's thread count back after.

    Torch splits its float sums by thread count: the float graph's convolutions (2e-7 apart at
    1 and 2 threads on a small CNN), the float64 products of the GPTQ statistics. Their last
    bits then move a range, a Hessian and so a weight code, and the file changes with the
    thread count (EfficientNet-Lite0's top-1 agreement read 88.5% at 2 threads, 89.5% at 1).
    Float64 statistics would not help, since the activations they are computed from already
    differ; one thread fixes the order of every sum (docs/exporter.md, Thread count)."""

    @functools.wraps(fn)
    def on_one_thread(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return on_one_thread


# What bias_correction=True does (bias_correction.py; docs/exporter.md, Bias correction).
DEFAULT_BIAS_CORRECTION = "weights"


@_on_one_torch_thread
def quantize(model: torch.nn.Module, example_inputs, calibration: Iterable, observer: str = "minmax",
             weight_rounding: str = "gptq", bias_correction: bool | str = True, report_batches: int = 4,
             dynamic_shapes=None, symmetric_activations: bool = False, smooth: bool = False,
             weight_bits: int | dict = 8, sparse_weights: bool = True, wide_ffn: bool = False,
             **observer_options) -> "QuantizedModel":
    """Post-training quantization of a float model.

    example_inputs: a tensor or tuple of tensors, as for torch.export (the batch size may differ
    at run time). calibration: an iterable of batches (tensors, or tuples of tensors), run
    through the float model to set each activation's range with `observer` ("minmax", "ema",
    "percentile" or "mse"; options such as percentile=99.9 pass through). weight_rounding:
    "gptq" (round each layer's weights to minimise its output error on the calibration inputs,
    see gptq.py) or "nearest". bias_correction: shift each conv/linear bias by the mean error
    that quantization causes in its output (bias_correction.py), measured on the kept batches:
    "weights" (the error of the layer's own rounded weights; what True means) or "total" (the
    whole quantized network's error up to the layer), False for none.
    The first `report_batches` batches are kept for `QuantizedModel.report()` and the bias
    correction. dynamic_shapes: as for torch.export, to let dimensions other than the batch vary
    (e.g. a transformer's sequence length, up to the maximum given there).
    symmetric_activations: every activation range symmetric about 0 (zero point 128, as Q8BERT's
    symmetric 8-bit quantization); the default fits each range asymmetrically.
    smooth: move per-channel range from layer-norm outputs into the linear layers that read them
    (smoothing.py; transformers), measured on the first `report_batches` calibration batches.
    weight_bits: 2 to 8: conv/linear weights are codes within [-(2^(b-1) - 1), 2^(b-1) - 1],
    stored packed as int2 (2 bits) or int4 (3-4 bits) where each output channel's codes fill whole
    bytes (depthwise convs and convs of an odd input width stay int8), as int8 otherwise; embedding
    tables stay 8-bit, as Q-BERT advises. Or a dict {module path: bits} for the Conv2d, Linear and
    Embedding modules named (8 for the others), such as `intinfer.hessian.allocate_bits` chooses
    (docs/mixed_precision.md).
    sparse_weights: int8 weights of a pruned conv / linear layer whose 1 x 4 blocks along the
    input axis are mostly zero (at most 40% non-zero, 25% for fewer than 96 inputs a channel, 10%
    for a layer that multiplies one row a sample, as a classifier on [batch, features]) are stored
    block-sparse, which the engine multiplies faster (docs/pruning.md); False stores every layer
    dense.
    wide_ffn: the output of an elementwise function that only linear layers read (a
    transformer's FFN activation, GELU) is kept wide, within the bound its readers' int32
    accumulators allow (+-2752 at 3072 inputs, +-5504 at 1536) instead of uint8, and those
    linears multiply it as int16 with int8 weights (slower kernels, on ARM most; a linear whose
    weights are stored below int8, 2-4 bits, keeps its input uint8; all-mpnet-base-v2 needs it,
    docs/transformers.md).

    Memory grows with the size of a calibration batch (and of the `report_batches` kept ones),
    not with their number (docs/exporter.md, Memory). Torch runs on one thread during the call,
    whatever torch.set_num_threads says (restored after), so the file does not depend on it.
    """
    check_weight_bits(weight_bits)  # refuses a bad width before the slow work
    if weight_rounding not in ("gptq", "nearest"):
        raise ValueError(f"unknown weight_rounding '{weight_rounding}'; choose 'gptq' or 'nearest'")
    correction_mode = DEFAULT_BIAS_CORRECTION if bias_correction is True else bias_correction or None
    if correction_mode is not None and correction_mode not in BiasCorrection.MODES:
        raise ValueError(f"unknown bias_correction {bias_correction!r}; choose True, False or one of "
                         f"{', '.join(repr(m) for m in BiasCorrection.MODES)}")
    example = _as_inputs(example_inputs)
    make_observer(observer, **observer_options)  # refuses an unknown name before the slow work
    # capture() puts the model in eval mode: a model still in training mode is most often a
    # forgotten model.eval(), and would be exported with behaviour other than its own.
    in_training = any(m.training for m in model.modules())
    graph = capture(model, example, dynamic_shapes)
    check_weight_bits_names(weight_bits, graph)
    if in_training:
        warnings.warn("the model was in training mode: intinfer.quantize exports its eval-mode behaviour "
                      "(dropout off, batch norms on their running statistics) and leaves it in eval mode; "
                      "call model.eval() first", UserWarning, stacklevel=2)
    if smooth:
        calibration = list(calibration)  # read twice: the smoothing ranges, then the observers
        smooth_layer_norms(graph, [_as_inputs(b) for b in calibration[:report_batches]])
    split_residual_norms(graph)
    wide = wide_nodes(graph, wide_ffn, weight_bits)
    check_engine_limits(graph, wide)
    bounds = wide_bounds(graph, wide)
    # Wide values keep their outliers: 16 bits leave room for them, so their ranges are not clipped.
    observers = {n: make_observer("minmax") if n in wide else make_observer(observer, **observer_options)
                 for n in graph.nodes if needs_observer(n)}
    stats = {n: InputStatistics(n) for n in graph.nodes if n.op in ("conv", "linear")} \
        if weight_rounding == "gptq" else None
    readers: dict = {}  # value -> the statistics of the layers that read it
    for node, st in (stats or {}).items():
        readers.setdefault(node.inputs[0], []).append(st)
    kept = []
    count = 0
    for i, batch in enumerate(calibration):
        xs = _as_inputs(batch)
        if len(xs) != len(graph.inputs):
            raise ValueError(f"calibration batch {i} has {len(xs)} inputs, the model takes {len(graph.inputs)}")
        try:
            expected_shapes_match(graph, xs)
        except ValueError as e:
            raise ValueError(f"calibration batch {i}: {e}") from None
        for node, value in graph.stream(*xs):
            if node in observers:
                observers[node].update(value)
            for st in readers.get(node, ()):
                st.update(value)
        if len(kept) < report_batches:
            kept.append(xs)
        count += 1
    if count == 0:
        raise ValueError("the calibration set is empty: give at least one batch of representative inputs")
    qparams = {node: _wide_qparams(*obs.range(), bounds[node]) if node in wide
               else _qparams(*obs.range(), symmetric_activations) for node, obs in observers.items()}
    observers.clear()  # their samples (percentile, mse: 1 MB each) are not needed by the lowering
    correction = BiasCorrection(graph, kept, correction_mode) if correction_mode else None
    lowering = Lowering(graph, qparams, {"producer": "intinfer.quantize", "observer": observer,
                                         "weight_rounding": weight_rounding, "bias_correction": str(correction_mode),
                                         "weight_bits": json.dumps(weight_bits, sort_keys=True),
                                         "wide_ffn": str(bool(wide_ffn))},
                        stats, correction, wide, weight_bits, sparse_weights)
    return QuantizedModel(lowering.run(), graph, lowering, kept)


def _qparams(lo: float, hi: float, symmetric: bool) -> tuple[float, int]:
    if not symmetric:
        return choose_qparams(lo, hi)
    m = max(-float(lo), float(hi), 1e-8)
    return float(np.float32(m / 127.0)), 128  # q = x / s + 128 in [1, 255]: int8 shifted by 128


def _wide_qparams(lo: float, hi: float, bound: int = WIDE_MAX) -> tuple[float, int]:
    """A wide value's (scale, zero point 0): its largest magnitude at code +-bound."""
    return float(np.float32(max(-float(lo), float(hi), 1e-8) / bound)), 0


class QuantizedModel:
    """The result of `quantize`: save it, load it, or ask where precision was lost."""

    def __init__(self, builder, graph: FloatGraph, lowering: Lowering, report_inputs: list):
        self.builder = builder
        self.graph = graph
        self._lowering = lowering
        self._report_inputs = report_inputs

    def to_bytes(self) -> bytes:
        return self.builder.to_bytes()

    def save(self, path) -> None:
        self.builder.save(path)

    def load(self, num_threads: int | None = None):
        from .. import load
        return load(self.to_bytes(), num_threads=num_threads)

    def layer_times(self, inputs, runs: int = 20, num_threads: int = 1) -> dict:
        """The engine's time of each conv / linear module on `inputs` (`Model.profile`: the
        median of `runs` calls after a warm-up), {module path: milliseconds}, summed where a
        module is called more than once (what `intinfer.hessian.layer_latencies` tabulates)."""
        modules = {n.name: n.attrs["module"] for n in self.graph.nodes if n.op in ("conv", "linear")}
        times: dict = {}
        for row in self.load(num_threads=num_threads).profile(inputs, runs=runs).rows:
            if row["name"] in modules:
                times[modules[row["name"]]] = times.get(modules[row["name"]], 0.0) + row["ms"]
        return times

    def report(self) -> "Report":
        """Per-layer output error of the int8 model against the float model on the kept
        calibration batches: SQNR = 10 log10(sum f^2 / sum (f - q)^2) in dB, where q is the
        engine's dequantized output of that layer with all earlier layers quantized too."""
        from .. import load
        from ..model import _dequantize

        nodes = [n for n in self.graph.nodes if n.op != "input"]
        tensors = [self._lowering.tensor(n) for n in nodes]
        # A node whose value is another's bytes in another layout (a transpose the lowering
        # needed not make) shares its tensor: each engine tensor is an output once.
        slots: dict = {}
        slot = [slots.setdefault(id(t), (len(slots), t))[0] for t in tensors]
        m = load(self.builder.to_bytes(outputs=[t for _, t in slots.values()]), num_threads=1)
        signal = np.zeros(len(nodes))
        noise = np.zeros(len(nodes))
        position = {node: k for k, node in enumerate(nodes)}
        for xs in self._report_inputs:
            # Raw outputs (a quarter of the bytes), each dequantized when its layer is compared.
            got = m.run([x.numpy() for x in xs], raw=True)
            got = got if isinstance(got, list) else [got]
            readers = Counter(slot)
            for node, value in self.graph.stream(*xs):
                if node not in position:
                    continue
                k = position[node]
                q = _dequantize(got[slot[k]], m.outputs[slot[k]])
                readers[slot[k]] -= 1
                if not readers[slot[k]]:
                    got[slot[k]] = None
                q = self._lowering.torch_order(node, q)
                f = value.double().numpy()
                signal[k] += np.sum(f * f)
                noise[k] += np.sum((f - q) ** 2)
        rows = []
        for k, node in enumerate(nodes):
            t = tensors[k]
            sqnr = float("inf") if noise[k] == 0 else 10 * np.log10(max(signal[k], 1e-30) / noise[k])
            quantized = t.scales.size > 0
            rows.append({"name": node.name, "op": node.op, "shape": list(node.shape),
                         "scale": t.scale if quantized else None, "zero_point": t.zero_point if quantized else None,
                         "sqnr_db": sqnr, "source": node.source})
        return Report(rows)


class Report:
    def __init__(self, rows: list):
        self.rows = rows

    def worst(self, n: int = 5) -> list:
        return sorted(self.rows, key=lambda r: r["sqnr_db"])[:n]

    def __str__(self) -> str:
        w = max(len(r["name"]) for r in self.rows)
        lines = [f"{'layer':<{w}}  {'op':<15} {'shape':<20} {'scale':>10} {'zp':>4} {'SQNR dB':>8}"]
        for r in self.rows:
            q = f"{r['scale']:>10.4g} {r['zero_point']:>4}" if r["scale"] is not None else f"{'float32':>15}"
            lines.append(f"{r['name']:<{w}}  {r['op']:<15} {str(r['shape']):<20} {q} {r['sqnr_db']:>8.2f}")
        return "\n".join(lines)
