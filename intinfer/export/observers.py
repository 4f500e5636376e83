"""Calibration observers: each watches one tensor over the calibration set and proposes the
float range [lo, hi] that its uint8 quantization should cover."""

from __future__ import annotations

import numpy as np
import torch


class Observer:
    def update(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def range(self) -> tuple[float, float]:
        raise NotImplementedError


class MinMaxObserver(Observer):
    """The extremes seen: nothing is clipped, outliers widen the step for everyone."""

    def __init__(self):
        self.lo, self.hi = float("inf"), float("-inf")

    def update(self, x):
        self.lo = min(self.lo, float(x.min()))
        self.hi = max(self.hi, float(x.max()))

    def range(self):
        return self.lo, self.hi


class EMAObserver(Observer):
    """Exponential moving average of each batch's extremes (Q8BERT, Jacob et al. 2018): single
    extreme batches move the range only by `averaging_constant` of their excess."""

    def __init__(self, averaging_constant: float = 0.01):
        self.c = averaging_constant
        self.lo = self.hi = None

    def update(self, x):
        lo, hi = float(x.min()), float(x.max())
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo += self.c * (lo - self.lo)
            self.hi += self.c * (hi - self.hi)

    def range(self):
        return self.lo, self.hi


class _Sampling(Observer):
    """Keeps a uniform random sample of the values seen (at most max_samples), in one buffer
    allocated at the first batch rather than per-batch arrays and their concatenated copies."""

    def __init__(self, max_samples: int = 1 << 18, seed: int = 0):
        self.max_samples = max_samples
        self.rng = np.random.default_rng(seed)
        self.buffer = np.empty(0, np.float32)
        self.kept = 0
        self.seen = 0
        self.lo, self.hi = float("inf"), float("-inf")

    def update(self, x):
        v = x.detach().reshape(-1).float().numpy()
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
        self.seen += v.size
        per_batch = max(1, self.max_samples // 8)
        if v.size > per_batch:
            v = self.rng.choice(v, per_batch, replace=False)
        if self.buffer.size == 0:
            self.buffer = np.empty(self.max_samples + per_batch, np.float32)  # room for a batch beyond the cap
        self.buffer[self.kept:self.kept + v.size] = v
        self.kept += v.size
        if self.kept > self.max_samples:
            self.buffer[:self.max_samples] = self.rng.choice(self.buffer[:self.kept], self.max_samples, replace=False)
            self.kept = self.max_samples

    def values(self) -> np.ndarray:
        return self.buffer[:self.kept]


class PercentileObserver(_Sampling):
    """Clips the tails: the range spans the [100 - p, p] percentiles of the values."""

    def __init__(self, percentile: float = 99.99, **kw):
        super().__init__(**kw)
        self.p = percentile

    def range(self):
        v = self.values()
        return float(np.percentile(v, 100 - self.p)), float(np.percentile(v, self.p))


class MSEObserver(_Sampling):
    """The clipping range that minimises the mean squared quantization error of the sampled
    values, searched by shrinking the min/max range toward zero."""

    def __init__(self, steps: int = 60, **kw):
        super().__init__(**kw)
        self.steps = steps

    def range(self):
        from ..quant import choose_qparams

        v = self.values().astype(np.float64)
        best, best_err = (self.lo, self.hi), np.inf
        for frac in np.linspace(1.0, 0.2, self.steps):
            lo, hi = self.lo * frac, self.hi * frac
            scale, zp = choose_qparams(lo, hi)
            q = np.clip(np.rint(v / scale) + zp, 0, 255)
            err = np.mean(((q - zp) * scale - v) ** 2)
            if err < best_err:
                best, best_err = (lo, hi), err
        return best


OBSERVERS = {"minmax": MinMaxObserver, "ema": EMAObserver, "percentile": PercentileObserver, "mse": MSEObserver}


def make_observer(kind: str, **kwargs) -> Observer:
    if kind not in OBSERVERS:
        raise ValueError(f"unknown observer '{kind}'; choose one of {sorted(OBSERVERS)}")
    return OBSERVERS[kind](**kwargs)
