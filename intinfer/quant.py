"""Quantization parameter helpers shared by the exporter and the tests (docs/quantization.md)."""

from __future__ import annotations

from typing import Callable

import numpy as np


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric uint8 (scale, zero_point) covering [lo, hi]; the range always includes 0 so that
    zero padding is exact."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = np.float32((hi - lo) / 255.0)
    zero_point = int(np.clip(np.rint(-lo / float(scale)), 0, 255))
    return float(scale), zero_point


def channel_scales(rows: np.ndarray, qmax: int) -> np.ndarray:
    """The scale of each row's symmetric codes within [-qmax, qmax] (float64; 0 for a row of
    zeros): max |row| / qmax, except at 2 bits (qmax 1), where that scale rounds every weight
    below half the row's largest to 0 (73% of the squared weight of all-MiniLM-L6-v2's linears
    lost). There each row gets instead the scale whose ternary codes {-s, 0, s} are closest to it
    in squared error, found exactly: the k largest |w| round to +-s and the rest to 0 for some k,
    the best s for a given k is their mean C_k / k, leaving |w|^2 - C_k^2 / k, so k maximises
    C_k^2 / k (C_k the sum of the k largest |w|); rounding to nearest with that s picks those k
    again (it can only lower the error, which is already the least). docs/exporter.md, Weight
    widths."""
    rows = np.asarray(rows)
    rows = rows.reshape(len(rows), -1)
    if qmax != 1 or rows.shape[1] == 0:  # the largest |w| is exact in the rows' own dtype: no float64 copy
        return np.abs(rows).max(axis=1, initial=0).astype(np.float64) / qmax
    a = np.abs(rows.astype(np.float64))
    top = np.cumsum(-np.sort(-a, axis=1), axis=1)  # C_k, k = 1..K
    k = np.argmax(top * top / np.arange(1, a.shape[1] + 1), axis=1)
    return top[np.arange(len(a)), k] / (k + 1)


def quantize_weights(w: np.ndarray, axis: int = 0, qmax: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel codes in [-qmax, qmax], scales as channel_scales; returns (int8
    codes, float32 scales)."""
    w = np.asarray(w, np.float32)
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    scales = channel_scales(moved, qmax)
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scales.reshape(shape)), -qmax, qmax).astype(np.int8)
    return q, scales


def quantize_bias(b: np.ndarray, in_scale: float, w_scales: np.ndarray) -> np.ndarray:
    """int32 bias in units of s_in * s_w[c]."""
    s = np.float64(in_scale) * np.asarray(w_scales, np.float64)
    return np.clip(np.rint(np.asarray(b, np.float64) / s), -2**31, 2**31 - 1).astype(np.int32)


def weight_qmax(bits: int) -> int:
    """The largest code of `bits`-bit symmetric weights (2..8): 2^(bits-1) - 1."""
    if not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 8:
        raise ValueError(f"weight_bits must be an integer from 2 to 8, got {bits!r}")
    return (1 << (int(bits) - 1)) - 1


# A wide activation (int32, zero point 0) holds values within +-WIDE_MAX (docs/quantization.md).
WIDE_MAX = 32767


def weight_dtype(bits: int) -> str:
    """The file dtype that holds `bits`-bit weight codes: int2 and int4 packed (2 and 3-4 bits),
    int8 for 5-8 bits (codes within [-qmax, qmax])."""
    weight_qmax(bits)
    return "int2" if bits == 2 else "int4" if bits <= 4 else "int8"


def layer_scales(w: np.ndarray, b: np.ndarray, in_scale: float, qmax: int = 127) -> np.ndarray:
    """Per-output-channel weight scales (axis 0) for int8 weights in [-qmax, qmax] (channel_scales).

    The engine refuses a bias that could overflow the int32 accumulator
    (|bias - z_in * sum(w)| + 255 * 127 * K must stay below 2^31, docs/runtime.md). A channel
    with tiny weights but a large bias (common after batch-norm folding) would get there, so its
    weight scale is raised until the bias fits, at the cost of that channel's weight precision.
    """
    w = np.asarray(w, np.float64)
    k = w[0].size
    limit = (2**31 - 1 - 2 * 255 * 127 * k) // 2  # leaves room for the zero-point term too
    needed = np.abs(np.asarray(b, np.float64)) / (float(in_scale) * limit)
    scales = np.maximum(channel_scales(w.reshape(w.shape[0], -1), qmax), needed)
    return np.where(scales > 0, scales, 1.0).astype(np.float32)


def round_weights(w: np.ndarray, scales: np.ndarray, qmax: int = 127) -> np.ndarray:
    """Round to nearest: int8 codes of w in [-qmax, qmax] with per-channel (axis 0) scales."""
    w = np.asarray(w, np.float64)
    return np.clip(np.rint(w / scales.reshape((-1,) + (1,) * (w.ndim - 1))), -qmax, qmax).astype(np.int8)


def activation_range(act: str | None, scale: float, zero_point: int) -> tuple[int, int]:
    """[act_min, act_max] of a fused activation in the quantized domain."""
    if act in (None, "none"):
        return 0, 255
    if act == "relu":
        return zero_point, 255
    if act == "relu6":
        return zero_point, int(min(255, zero_point + np.rint(6.0 / scale)))
    raise ValueError(f"unknown fused activation '{act}' (expected none, relu or relu6)")


def make_lut(fn: Callable[[np.ndarray], np.ndarray], in_scale: float, in_zero_point: int, out_scale: float,
             out_zero_point: int, wide_bound: int | None = None) -> np.ndarray:
    """The 256-entry table of `fn` from the input's quantized domain to the output's: uint8, or
    with `wide_bound` int32 entries within +-wide_bound (a wide output, zero point 0)."""
    real = np.float64(in_scale) * (np.arange(256, dtype=np.float64) - in_zero_point)
    y = np.rint(np.asarray(fn(real), np.float64) / out_scale)
    if wide_bound is not None:
        return np.clip(y, -wide_bound, wide_bound).astype(np.int32)
    return np.clip(y + out_zero_point, 0, 255).astype(np.uint8)


def _gelu(x):
    from math import erf, sqrt
    return x * 0.5 * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))


LUT_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "hardswish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "gelu": _gelu,
}


def exp_table(input_scale: float, spread: int = 0) -> np.ndarray:
    """SOFTMAX's table: entry d = round(2^16 * exp(-d * s_in)) for a logit d steps below the
    row's maximum, as int32 (entry 0 is 2^16). Written into the file, so that every engine reads
    the same numbers whatever its libm. 256 entries cover uint8 logits; a relative bias whose
    entries span `spread` steps (max - min) moves a logit up to 255 + spread steps below the
    maximum, and the table then runs on that far, or to its first 0, at most 65536 entries (the
    engine reads the last entry further down)."""
    s = float(np.float32(input_scale))
    # 2^16 exp(-d s) < 1/2 from d > 17 ln 2 / s on.
    size = int(min(MAX_EXP_TABLE, 256 + spread, max(256, np.ceil(17.0 * np.log(2.0) / s) + 2)))
    d = np.arange(size, dtype=np.float64)
    return np.round(np.exp(-d * s) * 65536.0).astype(np.int32)


# SOFTMAX's limits on its exp table's length and on a relative bias entry (csrc/ops/softmax.cc).
MAX_EXP_TABLE = 65536
MAX_RELATIVE_BIAS = 1 << 24


def softmax_constants(input_scale: float, relative: np.ndarray | None = None) -> tuple:
    """SOFTMAX's exp table and, with a float relative bias, its int32 steps (else None): the
    table runs as far as the bias's spread lets a logit fall."""
    steps = None if relative is None else relative_bias_steps(relative, input_scale)
    spread = 0 if steps is None else int(steps.max()) - int(steps.min())
    return exp_table(input_scale, spread), steps


def relative_bias_steps(bias: np.ndarray, input_scale: float) -> np.ndarray:
    """A float relative-position bias [H, 2R - 1] in SOFTMAX's input steps: int32, rounded half away
    from zero, within +-2^24."""
    q = np.asarray(bias, np.float64) / float(np.float32(input_scale))
    return np.clip(np.sign(q) * np.floor(np.abs(q) + 0.5), -MAX_RELATIVE_BIAS, MAX_RELATIVE_BIAS).astype(np.int32)
