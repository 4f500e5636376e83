"""Empirical bias correction (after Nagel et al. 2019, "Data-Free Quantization", section 4.2,
here with calibration data): rounding weights and activations shifts the *mean* of each output
channel, and the shifts add up through the network. Layer by layer, in graph order, the
quantized network is simulated in torch (dequantized weights, activations rounded to their
uint8 grids) on a few calibration batches, and each conv/linear bias absorbs a mean difference
of pre-activations, in one of two modes:

- "weights" (Nagel's correction): of the float and the rounded weights, both applied to the
  simulated quantized input: E[(W - W_q) x_q]. Only the layer's own weight rounding is undone.
- "total": the float pre-activation (float input, float weights) minus the simulated quantized
  one: each layer also absorbs the mean shift of everything upstream. It helps CNNs whose
  clamped activations shift means (EfficientNet-Lite0), but on a deep post-norm transformer the
  corrections feed each other: all-mpnet-base-v2's grew to 200 in an outlier channel by the
  ninth layer and the embedding cosine with fp32 fell from 0.84 to 0.11 (docs/exporter.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .graph import FloatGraph, Node, _apply_act, _eval


def _fake_quant(y: torch.Tensor, t):
    """y rounded to tensor t's grid: uint8, or wide int32 (16-bit range), kept as its integer
    codes with the scale and zero point that read them (`_real`), a quarter (half) of float32's
    bytes; float and integer (ids, masks) tensors are kept unchanged."""
    if t.scales.size == 0:
        return y
    s, z = float(t.scales[0]), int(t.zero_points[0])
    lo, hi, dtype = (-32767, 32767, torch.int16) if t.dtype == "int32" else (0, 255, torch.uint8)
    return torch.clamp(torch.round(y / s) + z, lo, hi).to(dtype), s, z


def _real(v) -> torch.Tensor:
    """The float value of what `_fake_quant` keeps: (codes - z) * s, in float32."""
    if isinstance(v, tuple):
        codes, s, z = v
        return (codes.float() - z) * s
    return v


class BiasCorrection:
    """Follows the lowering node by node (`delta`, then `record`) on the kept batches. The float
    and simulated values of a node are dropped once the last node that reads them is recorded:
    kept all at once, they took 1.7 GB for EfficientNet-Lite0's 32 images (docs/exporter.md)."""

    MODES = ("weights", "total")

    def __init__(self, graph: FloatGraph, batches: list, mode: str = "weights"):
        if mode not in self.MODES:
            raise ValueError(f"unknown bias correction '{mode}'; choose one of {', '.join(self.MODES)}")
        self.graph = graph
        self.batches = batches
        self.mode = mode
        self.ref: list = [{} for _ in batches]
        self.sim: list = [{} for _ in batches]
        self._position = {n: k for k, n in enumerate(graph.nodes)}
        self._last = graph.last_readers()

    def _args(self, node: Node, values: dict) -> list:
        return [_real(values[i]) if isinstance(i, Node) else i for i in node.inputs]

    def delta(self, node: Node, weight: torch.Tensor) -> np.ndarray:
        """Per-channel mean of (float pre-activation - quantized pre-activation), the float one
        from the simulated input ("weights") or from the float input ("total")."""
        quantized = dataclasses.replace(node, attrs={**node.attrs, "weight": weight})
        total, count = None, 0
        for ref, sim in zip(self.ref, self.sim):
            x_q = self._args(node, sim)
            diff = _eval(node, x_q if self.mode == "weights" else self._args(node, ref)) - _eval(quantized, x_q)
            dims = [d for d in range(diff.dim()) if d != (1 if node.op == "conv" else diff.dim() - 1)]
            s = diff.double().sum(dim=dims).numpy()
            total = s if total is None else total + s
            count += diff.numel() // diff.shape[1 if node.op == "conv" else -1]
        return total / max(count, 1)

    def record(self, node: Node, tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None):
        """Simulates `node` as lowered: its quantized weights and bias, its output rounded."""
        k = self._position[node]
        for xs, ref, sim in zip(self.batches, self.ref, self.sim):
            if node.op == "input" or self.mode == "total":  # "weights" reads no float value but the input
                ref[node] = self.graph.evaluate(node, ref, xs)
            if node.op == "input":
                sim[node] = _fake_quant(ref[node], tensor)
            else:
                n = node if weight is None else dataclasses.replace(node, attrs={**node.attrs, "weight": weight,
                                                                                 "bias": bias})
                sim[node] = _fake_quant(_apply_act(_eval(n, self._args(node, sim)), node.act), tensor)
            for i in [node] + node.inputs:
                if isinstance(i, Node) and self._last.get(i, -1) <= k:
                    ref.pop(i, None)
                    sim.pop(i, None)
