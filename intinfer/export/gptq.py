"""Error-compensating weight rounding (GPTQ, Frantar et al. 2022, after Optimal Brain
Quantization): weights of a layer are rounded one input column at a time, and the rounding
error of each column is pushed onto the columns not yet rounded, weighted by the inverse of
H = E[x x^T] over the layer's calibration inputs. Rounding to nearest treats every weight
alone; this minimises the error of the layer's *output* instead, which matters most for small
kernels with large batch-norm-folded weights (EfficientNet's stem and first depthwise conv).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .graph import Node


class InputStatistics:
    """Accumulates H = E[x x^T] of a conv or linear layer's input patches, one matrix per group
    (depthwise convs have one per channel)."""

    def __init__(self, node: Node):
        self.node = node
        self.h = None
        self.count = 0

    def update(self, x: torch.Tensor) -> None:
        n, a = self.node, self.node.attrs
        for xi in x.split(1):  # one sample at a time bounds the memory of the unfolded patches
            if n.op == "linear":
                cols = xi.reshape(1, -1, xi.shape[-1]).transpose(1, 2).double()  # [1, K, rows]
                groups = 1
            else:
                t, l, b, r = a["pads"]
                cols = F.unfold(F.pad(xi, (l, r, t, b)).double(), a["weight"].shape[2:], dilation=a["dilation"],
                                stride=a["stride"])  # [1, C * kh * kw, positions]
                groups = a["groups"]
            cols = cols.reshape(groups, -1, cols.shape[-1])  # [groups, K, positions]
            h = torch.einsum("gkp,gjp->gkj", cols, cols).numpy()
            if self.h is None:
                self.h = h
            else:
                self.h += h
            self.count += cols.shape[-1]

    def hessians(self) -> np.ndarray:
        return self.h / max(self.count, 1)


def gptq_round(w: np.ndarray, scales: np.ndarray, h: np.ndarray, damp: float = 0.01, qmax: int = 127) -> np.ndarray:
    """int8 codes in [-qmax, qmax] of w [O, K] (per-row scales) chosen column by column with error
    feedback. A weight that is exactly zero (pruned, intinfer.prune) keeps code 0: the error
    feedback would otherwise fill the pruned positions and undo the sparsity; the error of
    holding it at zero is fed to the columns after it, as SparseGPT does with a fixed mask
    (Frantar & Alistarh 2023)."""
    pruned = w == 0
    w = w.astype(np.float64).copy()
    k = w.shape[1]
    h = h.copy()
    dead = np.diag(h) <= 0  # inputs that were always zero: any weight is exact there
    h[dead, dead] = 1.0
    h += damp * np.mean(np.diag(h)) * np.eye(k)
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper triangular factor of H^-1
    q = np.zeros(w.shape, np.int8)
    s = scales.astype(np.float64)
    for i in range(k):
        qi = np.where(pruned[:, i], 0, np.clip(np.rint(w[:, i] / s), -qmax, qmax))
        q[:, i] = qi
        err = (w[:, i] - qi * s) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    return q


def gptq_layer(w: np.ndarray, scales: np.ndarray, stats: InputStatistics, qmax: int = 127) -> np.ndarray:
    """int8 codes in [-qmax, qmax] for a conv (OIHW) or linear ([N, K]) weight, in the same layout."""
    hs = stats.hessians()
    groups = hs.shape[0]
    rows = w.reshape(w.shape[0], -1)
    per = rows.shape[0] // groups
    q = np.concatenate([gptq_round(rows[g * per:(g + 1) * per], scales[g * per:(g + 1) * per], hs[g],
                                   qmax=qmax)
                        for g in range(groups)])
    return q.reshape(w.shape)
