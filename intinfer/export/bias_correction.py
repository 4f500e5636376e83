"""Empirical bias correction (after Nagel et al. 2019, "Data-Free Quantization", section 4.2,
here with calibration data): rounding weights and activations shifts the *mean* of each output
channel, and the shifts add up through the network. Layer by layer, in graph order, the
quantized network is simulated in torch (dequantized weights, activations rounded to their
uint8 grids) on a few calibration batches, and each conv/linear bias absorbs the mean
difference between its float pre-activation and its simulated quantized one."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .graph import FloatGraph, Node, _apply_act, _eval


def _fake_quant(y: torch.Tensor, t) -> torch.Tensor:
    """y rounded to tensor t's grid: uint8, or wide int32 (16-bit range); unchanged for float
    and integer (ids, masks) tensors."""
    if t.scales.size == 0:
        return y
    s, z = float(t.scales[0]), int(t.zero_points[0])
    lo, hi = (-32767, 32767) if t.dtype == "int32" else (0, 255)
    return (torch.clamp(torch.round(y / s) + z, lo, hi) - z) * s


class BiasCorrection:
    def __init__(self, graph: FloatGraph, batches: list):
        self.batches = batches
        self.ref = [graph.run(*xs) for xs in batches]
        self.sim: list = [{} for _ in batches]

    def _args(self, node: Node, values: dict) -> list:
        return [values[i] if isinstance(i, Node) else i for i in node.inputs]

    def delta(self, node: Node, weight: torch.Tensor) -> np.ndarray:
        """Per-channel mean of (float pre-activation - quantized pre-activation)."""
        quantized = dataclasses.replace(node, attrs={**node.attrs, "weight": weight})
        total, count = None, 0
        for ref, sim in zip(self.ref, self.sim):
            diff = _eval(node, self._args(node, ref)) - _eval(quantized, self._args(node, sim))
            dims = [d for d in range(diff.dim()) if d != (1 if node.op == "conv" else diff.dim() - 1)]
            s = diff.double().sum(dim=dims).numpy()
            total = s if total is None else total + s
            count += diff.numel() // diff.shape[1 if node.op == "conv" else -1]
        return total / max(count, 1)

    def record(self, node: Node, tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None):
        """Simulates `node` as lowered: its quantized weights and bias, its output rounded."""
        for xs, ref, sim in zip(self.batches, self.ref, self.sim):
            if node.op == "input":
                sim[node] = _fake_quant(ref[node], tensor)
                continue
            n = node if weight is None else dataclasses.replace(node, attrs={**node.attrs, "weight": weight,
                                                                             "bias": bias})
            sim[node] = _fake_quant(_apply_act(_eval(n, self._args(node, sim)), node.act), tensor)
