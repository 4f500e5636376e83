"""An independent numpy model of docs/quantization.md, the oracle the engine is compared with.

Integer arithmetic is done in int64 (wide enough for every intermediate the spec defines), so
that nothing here depends on wrap-around or on float rounding where the spec says integers.
Scales are taken as float32 (what the model file stores) and multipliers are formed from them
in double precision, in the order the spec writes them.

This module must not import intinfer: it has to stay usable, and independent, while the
engine is missing or broken.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

def _f64(scale) -> float:
    """A scale as the engine sees it: rounded to float32, then widened to double."""
    return float(np.float32(scale))


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _pads(p) -> tuple[int, int, int, int]:
    """[top, left, bottom, right]; an int or (h, w) pads symmetrically, as GraphBuilder does."""
    if isinstance(p, (int, np.integer)):
        return (int(p),) * 4
    p = [int(v) for v in p]
    if len(p) == 2:
        return p[0], p[1], p[0], p[1]
    top, left, bottom, right = p
    return top, left, bottom, right


# -- fixed-point requantization -----------------------------------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(m, e) with real ~= m * 2^(e - 31); raises ValueError where the spec refuses the model."""
    real = float(real)
    if not (math.isfinite(real) and real > 0):
        raise ValueError(f"multiplier {real} is not a positive finite number")
    mant, e = math.frexp(real)
    # Exact rational arithmetic, so that the half-away-from-zero rounding is not itself rounded.
    m = math.floor(Fraction(mant) * 2**31 + Fraction(1, 2))
    if m == 2**31:
        m, e = 2**30, e + 1
    if e < -31:
        return 0, 0
    if e > 30:
        raise ValueError(f"multiplier {real} is too large (exponent {e} > 30)")
    return m, e


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array of real multipliers: (m, e) int64 arrays of its shape."""
    reals = np.asarray(reals, np.float64)
    pairs = [quantize_multiplier(r) for r in reals.ravel()]
    m = np.array([p[0] for p in pairs], np.int64).reshape(reals.shape)
    e = np.array([p[1] for p in pairs], np.int64).reshape(reals.shape)
    return m, e


def _check_int32(x: np.ndarray, what: str) -> None:
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise OverflowError(f"{what} leaves the int32 range the spec is defined on")


def srdhm(a, b) -> np.ndarray:
    """Saturating rounding doubling high multiply of int32 values, elementwise."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b  # |a * b| <= 2^62
    v = ab + np.where(ab >= 0, 2**30, 1 - 2**30)
    # numpy's // floors; the spec truncates toward zero.
    q = np.where(v >= 0, v // 2**31, -((-v) // 2**31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rdbpot(x, s) -> np.ndarray:
    """Rounding divide by 2^s (ties away from zero), elementwise; >> on int64 is arithmetic."""
    x = np.asarray(x, np.int64)
    s = np.asarray(s, np.int64)
    mask = (np.int64(1) << s) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> s) + (remainder > threshold)


def requant(x, m, e) -> np.ndarray:
    """gemmlowp's MultiplyByQuantizedMultiplier on int32 values; m and e broadcast against x
    (per-channel arrays line up with the last axis)."""
    x = np.asarray(x, np.int64)
    _check_int32(x, "requant input")
    m = np.asarray(m, np.int64)
    e = np.asarray(e, np.int64)
    left = np.maximum(e, 0)
    right = np.maximum(-e, 0)
    shifted = np.clip(x * (np.int64(1) << left), INT32_MIN, INT32_MAX)
    return rdbpot(srdhm(shifted, m), right)


def output_stage(acc, real_multiplier, zero_point: int, act_min: int = 0, act_max: int = 255) -> np.ndarray:
    """clamp(requant(acc, M) + z_out, act_min, act_max) as uint8; M may be per channel."""
    m, e = quantize_multipliers(real_multiplier)
    return _clamp_u8(requant(acc, m, e) + int(zero_point), act_min, act_max)


def _clamp_u8(x, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64), int(lo), int(hi)).astype(np.uint8)


# -- ops --------------------------------------------------------------------------------


def quantize(x, scale, zero_point: int) -> np.ndarray:
    """QUANTIZE of float32 values: the division in float32, rint ties to even, NaN -> z."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.rint(x / np.float32(scale))
    # Clip in float first: the quotient may be huge or infinite.
    q = np.clip(r.astype(np.float64) + int(zero_point), 0, 255)
    return np.where(np.isnan(x), int(zero_point), q).astype(np.uint8)


def dequantize(q, scale, zero_point: int) -> np.ndarray:
    """DEQUANTIZE: float32(q - z) * s, the product in float32."""
    d = (np.asarray(q, np.int64) - int(zero_point)).astype(np.float32)
    return d * np.float32(scale)


def _out_size(size: int, pad_before: int, pad_after: int, window: int, stride: int) -> int:
    out = (size + pad_before + pad_after - window) // stride + 1
    if out < 1:
        raise ValueError(f"a window of {window} does not fit an input of {size} padded by {pad_before}+{pad_after}")
    return out


def _windows(padded: np.ndarray, kernel, strides, dilations, out_hw):
    """Yields, for each kernel tap (ky, kx), the [N, OH, OW, C] slice of `padded` it reads."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    oh, ow = out_hw
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            yield ky, kx, padded[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :]


def conv2d_accumulate(x, zero_point: int, w, bias, strides=1, pads=0, dilations=1, groups: int = 1) -> np.ndarray:
    """CONV2D's int32 accumulator `bias[c] + sum (x - z_in) * w` as int64 [N, OH, OW, Cout].

    x: uint8 NHWC; w: int8 OHWI [Cout, KH, KW, Cin / groups]; bias: int32 [Cout].
    """
    x = np.asarray(x)
    w = np.asarray(w, np.int64)
    n, h, wd, cin = x.shape
    cout, kh, kw, cin_g = w.shape
    if cin != cin_g * groups or cout % groups:
        raise ValueError(f"Cin {cin} / Cout {cout} do not split into {groups} groups of {cin_g} inputs")
    sh, sw = _pair(strides)
    dh, dw = _pair(dilations)
    top, left, bottom, right = _pads(pads)
    oh = _out_size(h, top, bottom, dh * (kh - 1) + 1, sh)
    ow = _out_size(wd, left, right, dw * (kw - 1) + 1, sw)
    # Padding with 0 after subtracting z_in is padding with z_in (real zero), as the spec says.
    centred = np.pad(x.astype(np.int64) - int(zero_point), ((0, 0), (top, bottom), (left, right), (0, 0)))
    cout_g = cout // groups
    acc = np.zeros((n, oh, ow, cout), np.int64) + np.asarray(bias, np.int64)
    for ky, kx, patch in _windows(centred, (kh, kw), (sh, sw), (dh, dw), (oh, ow)):
        for g in range(groups):
            xs = patch[..., g * cin_g:(g + 1) * cin_g]
            ws = w[g * cout_g:(g + 1) * cout_g, ky, kx, :]
            acc[..., g * cout_g:(g + 1) * cout_g] += xs @ ws.T
    _check_int32(acc, "CONV2D accumulator")
    return acc


def conv2d(x, in_scale, in_zero_point: int, w, w_scales, bias, out_scale, out_zero_point: int, strides=1, pads=0,
           dilations=1, groups: int = 1, act_min: int = 0, act_max: int = 255) -> np.ndarray:
    acc = conv2d_accumulate(x, in_zero_point, w, bias, strides, pads, dilations, groups)
    reals = [_f64(in_scale) * _f64(s) / _f64(out_scale) for s in np.asarray(w_scales).ravel()]
    return output_stage(acc, reals, out_zero_point, act_min, act_max)


def fully_connected_accumulate(x, zero_point: int, w, bias) -> np.ndarray:
    """FULLY_CONNECTED's accumulator as int64 [..., N] for x [..., K], w int8 [N, K]."""
    x = np.asarray(x)
    w = np.asarray(w, np.int64)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"input has K = {x.shape[-1]}, weights {w.shape}")
    acc = (x.astype(np.int64) - int(zero_point)) @ w.T + np.asarray(bias, np.int64)
    _check_int32(acc, "FULLY_CONNECTED accumulator")
    return acc


def fully_connected(x, in_scale, in_zero_point: int, w, w_scales, bias, out_scale, out_zero_point: int,
                    act_min: int = 0, act_max: int = 255) -> np.ndarray:
    acc = fully_connected_accumulate(x, in_zero_point, w, bias)
    reals = [_f64(in_scale) * _f64(s) / _f64(out_scale) for s in np.asarray(w_scales).ravel()]
    return output_stage(acc, reals, out_zero_point, act_min, act_max)


ADD_LEFT_SHIFT = 20


def fully_connected_float(x, in_scale, in_zero_point: int, w, w_scales, bias) -> np.ndarray:
    """FULLY_CONNECTED with a float32 output: float32(acc) * float32(s_in * s_w[c]), one rounding each."""
    acc = fully_connected_accumulate(x, in_zero_point, w, bias)
    scales = np.array([_f64(in_scale) * _f64(s) for s in np.asarray(w_scales).ravel()], np.float64)
    return acc.astype(np.float32) * np.broadcast_to(scales.astype(np.float32), (acc.shape[-1],))


def add(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, out_scale, out_zero_point: int,
        act_min: int = 0, act_max: int = 255) -> np.ndarray:
    """ADD with TFLite's 20 bits of headroom; a and b broadcast as in numpy."""
    t = 2.0 * max(_f64(a_scale), _f64(b_scale))
    a_m, a_e = quantize_multiplier(_f64(a_scale) / t)
    b_m, b_e = quantize_multiplier(_f64(b_scale) / t)
    a1 = requant((np.asarray(a, np.int64) - int(a_zero_point)) * 2**ADD_LEFT_SHIFT, a_m, a_e)
    b1 = requant((np.asarray(b, np.int64) - int(b_zero_point)) * 2**ADD_LEFT_SHIFT, b_m, b_e)
    return output_stage(a1 + b1, t / (2**ADD_LEFT_SHIFT * _f64(out_scale)), out_zero_point, act_min, act_max)


def mul(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, out_scale, out_zero_point: int,
        act_min: int = 0, act_max: int = 255) -> np.ndarray:
    """MUL: the product of the centred inputs (|.| <= 255^2, well inside int32), requantized by
    s_a * s_b / s_out; a and b broadcast as in numpy."""
    prod = (np.asarray(a, np.int64) - int(a_zero_point)) * (np.asarray(b, np.int64) - int(b_zero_point))
    return output_stage(prod, _f64(a_scale) * _f64(b_scale) / _f64(out_scale), out_zero_point, act_min, act_max)


def concat(xs, scales, zero_points, axis: int, out_scale, out_zero_point: int) -> np.ndarray:
    """CONCAT: every input requantized to the output's parameters (the spec applies the formula
    even when the parameters are equal, where it is the identity)."""
    parts = [output_stage(np.asarray(x, np.int64) - int(z), _f64(s) / _f64(out_scale), out_zero_point)
             for x, s, z in zip(xs, scales, zero_points)]
    axis %= parts[0].ndim
    lead = np.broadcast_shapes(*(p.shape[:axis] for p in parts))  # size 1 before the axis repeats
    return np.concatenate([np.broadcast_to(p, lead + p.shape[axis:]) for p in parts], axis=axis)


def _pool_geometry(x, kernel, strides, pads):
    """Kernel, strides (default: the kernel), pads, input and output sizes of a pool over NHWC x."""
    kh, kw = _pair(kernel)
    sh, sw = _pair(kernel if strides is None else strides)
    top, left, bottom, right = _pads(pads)
    _, h, w, _ = x.shape
    oh = _out_size(h, top, bottom, kh, sh)
    ow = _out_size(w, left, right, kw, sw)
    return (kh, kw), (sh, sw), (top, left, bottom, right), (h, w), (oh, ow)


def avg_pool(x, in_scale, in_zero_point: int, kernel, out_scale, out_zero_point: int, strides=None, pads=0,
             count_include_pad: bool = True, act_min: int = 0, act_max: int = 255) -> np.ndarray:
    """AVG_POOL over NHWC uint8; `strides` defaults to the kernel, as in GraphBuilder."""
    x = np.asarray(x)
    (kh, kw), (sh, sw), (top, left, bottom, right), (h, w), (oh, ow) = _pool_geometry(x, kernel, strides, pads)
    spatial = ((0, 0), (top, bottom), (left, right), (0, 0))
    centred = np.pad(x.astype(np.int64) - int(in_zero_point), spatial)
    inside = np.pad(np.ones((1, h, w, 1), np.int64), spatial)
    acc = sum(p for _, _, p in _windows(centred, (kh, kw), (sh, sw), (1, 1), (oh, ow)))
    count = sum(p for _, _, p in _windows(inside, (kh, kw), (sh, sw), (1, 1), (oh, ow)))
    if count_include_pad:
        n = np.full(count.shape, kh * kw, np.int64)
    else:
        if count.min() == 0:
            raise ValueError("a pooling window lies wholly in the padding: n = 0 is outside the spec")
        n = count
    # One multiplier per window size, each s_in / (s_out * n) as the spec writes it.
    m_by_n, e_by_n = quantize_multipliers([_f64(in_scale) / (_f64(out_scale) * k) for k in range(1, kh * kw + 1)])
    out = requant(acc, m_by_n[n - 1], e_by_n[n - 1]) + int(out_zero_point)
    return _clamp_u8(out, act_min, act_max)


def global_avg_pool(x, in_scale, in_zero_point: int, out_scale, out_zero_point: int, act_min: int = 0,
                    act_max: int = 255) -> np.ndarray:
    """GLOBAL_AVG_POOL: AVG_POOL over the whole H x W, output [N, 1, 1, C]."""
    x = np.asarray(x)
    n = x.shape[1] * x.shape[2]
    acc = (x.astype(np.int64) - int(in_zero_point)).sum(axis=(1, 2), keepdims=True)
    return output_stage(acc, _f64(in_scale) / (_f64(out_scale) * n), out_zero_point, act_min, act_max)


def max_pool(x, kernel, strides=None, pads=0, act_min: int = 0, act_max: int = 255) -> np.ndarray:
    """MAX_POOL over the window positions inside the input (padding never wins), then the clamp."""
    x = np.asarray(x)
    (kh, kw), (sh, sw), (top, left, bottom, right), (h, w), (oh, ow) = _pool_geometry(x, kernel, strides, pads)
    # -1 is below every uint8, so padded positions never win; one left over marks an empty window.
    padded = np.pad(x.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-1)
    best = np.max([p for _, _, p in _windows(padded, (kh, kw), (sh, sw), (1, 1), (oh, ow))], axis=0)
    if best.min() < 0:
        raise ValueError("a pooling window lies wholly in the padding: its max is outside the spec")
    return _clamp_u8(best, act_min, act_max)


def lut(x, table) -> np.ndarray:
    """table[x]: a uint8 table, or an int32 one (entries within +-32767) into a wide output."""
    table = np.asarray(table)
    if table.shape != (256,):
        raise ValueError(f"a LUT table has 256 entries, got shape {table.shape}")
    if table.dtype == np.int32:
        if np.abs(table.astype(np.int64)).max() > WIDE_MAX:
            raise ValueError("a wide LUT's entries lie within +-32767")
        return table[np.asarray(x, np.uint8)]
    return table.astype(np.uint8)[np.asarray(x, np.uint8)]


def clamp(x, act_min: int, act_max: int) -> np.ndarray:
    return _clamp_u8(x, act_min, act_max)


def transpose(x, perm) -> np.ndarray:
    """TRANSPOSE: y.shape[i] = x.shape[perm[i]], values (any dtype, bytes included) unchanged."""
    x = np.asarray(x)
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"'perm' {perm} is not a permutation")
    if len(perm) != x.ndim:
        raise ValueError(f"input {x.shape} has rank {x.ndim}, 'perm' has {len(perm)}")
    return np.ascontiguousarray(np.transpose(x, perm))


def reshape_target(in_shape, shape) -> tuple:
    """The output shape of RESHAPE: 0 copies the input's dimension at that index, one -1 is inferred."""
    dims = [int(in_shape[i]) if d == 0 else int(d) for i, d in enumerate(shape)]
    if dims.count(-1) > 1:
        raise ValueError(f"at most one -1 in a reshape target, got {list(shape)}")
    total = int(np.prod(in_shape))
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        if known == 0 or total % known:
            raise ValueError(f"cannot infer -1 reshaping {tuple(in_shape)} to {list(shape)}")
        dims[dims.index(-1)] = total // known
    if int(np.prod(dims)) != total:
        raise ValueError(f"cannot reshape {tuple(in_shape)} to {list(shape)}")
    return tuple(dims)


def reshape(x, shape) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape(reshape_target(x.shape, shape))


# -- whole graphs -----------------------------------------------------------------------


# -- transformer ops ------------------------------------------------------------------------


WIDE_MAX = 32767


def _clamp_wide(x) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64), -WIDE_MAX, WIDE_MAX).astype(np.int32)


def wide_from_float(f, scale) -> np.ndarray:
    """A real-valued float32 tensor to wide int32 steps: clamp(rint(float32(f / s)), +-32767)."""
    q = np.rint(np.clip(np.asarray(f, np.float32) / np.float32(scale), -65536, 65536))
    return _clamp_wide(q)


def add_wide(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, out_scale) -> np.ndarray:
    """ADD into a wide output: as ADD with a 15-bit left shift, clamped to +-32767."""
    t = 2 * max(_f64(a_scale), _f64(b_scale))
    ma, ea = quantize_multiplier(_f64(a_scale) / t)
    mb, eb = quantize_multiplier(_f64(b_scale) / t)
    mo, eo = quantize_multiplier(t / (2**15 * _f64(out_scale)))
    av = requant((np.asarray(a, np.int64) - int(a_zero_point)) * 2**15, ma, ea)
    bv = requant((np.asarray(b, np.int64) - int(b_zero_point)) * 2**15, mb, eb)
    return _clamp_wide(requant(av + bv, mo, eo))


def gather(table, row_scales, ids, out_scale, out_zero_point: int, positions: int = 0, padding_id: int = 0,
           wide: bool = False) -> np.ndarray:
    """GATHER: rows of an int8 table (per-row scale), each value requantized to the output
    (uint8, or wide: clamped to +-32767 with zero point 0). The rows are the ids (positions 0),
    the index along the last axis (1), or the running count of ids other than padding_id, 0 at
    padding_id (2)."""
    ids = np.asarray(ids)
    if positions == 2:
        real = ids != padding_id
        rows = np.cumsum(real, axis=-1) * real
    else:
        rows = np.broadcast_to(np.arange(ids.shape[-1]), ids.shape) if positions else ids.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= table.shape[0]):
        raise IndexError("id outside the table")
    m, e = quantize_multipliers(np.asarray(row_scales, np.float64) / _f64(out_scale))
    picked = np.asarray(table, np.int64)[rows]  # [..., width]
    v = requant(picked, m[rows][..., None], e[rows][..., None])
    return _clamp_wide(v) if wide else _clamp_u8(v + int(out_zero_point), 0, 255)


def _isqrt(v: int) -> int:
    r = int(np.sqrt(float(v)))
    while r * r > v:
        r -= 1
    while (r + 1) * (r + 1) <= v:
        r += 1
    return r


def layer_norm(x, in_zero_point: int, gamma, beta, out_scale, out_zero_point: int, act_min: int = 0,
               act_max: int = 255, wide: bool = False) -> np.ndarray:
    """LAYER_NORM as docs/quantization.md: d = H x - sum(x) (exact), r = isqrt(sum d^2),
    t = round(d * floor(2^46 / r) / 2^31) (Q15), y = requant(sign(g) t + round(beta 2^15 / (|g| sqrt(H))),
    |g| sqrt(H) / (2^15 s_out)) + z_out; a flat channel (g = 0, that offset beyond 2^31 - 2^16, or
    that multiplier below 2^-31) gives round(beta / s_out) + z_out. Python ints: no overflow anywhere.
    wide: an int32 output within +-32767 (zero point 0; act_min / act_max unused)."""
    x = np.asarray(x, np.int64) - int(in_zero_point)
    h = x.shape[-1]
    gamma = np.asarray(gamma, np.float32).astype(np.float64)
    beta = np.asarray(beta, np.float32).astype(np.float64)
    real = np.abs(gamma) * np.sqrt(float(h)) / (2.0**15 * _f64(out_scale))

    def round_away(v):  # half away from zero, without the error of floor(v + 0.5)
        whole = np.trunc(v)
        return whole + np.sign(v) * (np.abs(v - whole) >= 0.5)

    with np.errstate(all="ignore"):
        offset = round_away(beta * 2.0**15 / (np.abs(gamma) * np.sqrt(float(h))))
    flat = (gamma == 0) | ~(np.abs(offset) <= 2.0**31 - 2.0**16) | (real < 2.0**-31)
    m, e = quantize_multipliers(np.where(flat, 1.0, real))
    m, e = np.where(flat, 0, m), np.where(flat, 0, e)
    sign = np.where(flat, 0, np.sign(gamma)).astype(np.int64)
    offset = np.where(flat, 0, offset).astype(np.int64)
    bias = np.where(flat, np.clip(round_away(beta / _f64(out_scale)), -(1 << 24), 1 << 24), 0).astype(np.int64)
    rows = x.reshape(-1, h)
    t = np.zeros_like(rows)
    for i, row in enumerate(rows):
        d = [h * int(v) - int(row.sum()) for v in row]
        r = _isqrt(sum(v * v for v in d))
        inv = (1 << 46) // r if r else 0
        t[i] = [(v * inv + (1 << 30)) >> 31 for v in d]
    y = requant(sign * t + offset, m, e) + bias + int(out_zero_point)
    return (_clamp_wide(y) if wide else _clamp_u8(y, act_min, act_max)).reshape(x.shape)


def softmax(x, table, mask=None, bias=None) -> np.ndarray:
    """SOFTMAX: e = table[min(max - x, L - 1)] over attended positions, y = min(255, round-half-up(e *
    floor(2^32 / sum e) / 2^24)); an int32 mask [B, n] applies to every row of batch element b; a
    relative bias [H, 2R - 1] adds bias[h, j - i + R - 1] to logit x[b, h, i, j] first."""
    x = np.asarray(x, np.int64)
    if bias is not None:
        bias = np.asarray(bias, np.int64)
        reach = (bias.shape[1] + 1) // 2
        distance = np.arange(x.shape[3])[None, :] - np.arange(x.shape[2])[:, None]
        x = x + bias[:, distance + reach - 1][None]
    n = x.shape[-1]
    keep = np.ones(x.shape, bool)
    if mask is not None:
        mask = np.asarray(mask) != 0
        keep = np.broadcast_to(mask.reshape((mask.shape[0],) + (1,) * (x.ndim - 2) + (n,)), x.shape)
    table = np.asarray(table, np.int64)
    attended = keep.any(axis=-1, keepdims=True)
    top = np.where(attended, np.where(keep, x, np.iinfo(np.int64).min).max(axis=-1, keepdims=True), 0)
    e = np.where(keep, table[np.clip(top - x, 0, len(table) - 1)], 0)
    total = e.sum(axis=-1, keepdims=True)
    inv = np.where(total > 0, (np.int64(1) << 32) // np.maximum(total, 1), 0)
    y = np.minimum((e * inv + (1 << 23)) >> 24, 255)
    return np.where(attended, y, 0).astype(np.uint8)


def matmul(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, out_scale, out_zero_point: int,
           transpose_b: bool = False, alpha: float = 1.0, act_min: int = 0, act_max: int = 255) -> np.ndarray:
    """MATMUL of two uint8 activations with zero points, requantized with alpha * s_a * s_b / s_out."""
    a = np.asarray(a, np.int64) - int(a_zero_point)
    b = np.asarray(b, np.int64) - int(b_zero_point)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    acc = np.matmul(a, b)
    return output_stage(acc, _f64(alpha) * _f64(a_scale) * _f64(b_scale) / _f64(out_scale), out_zero_point, act_min,
                        act_max)


def masked_mean(x, in_scale, in_zero_point: int, mask) -> np.ndarray:
    """MASKED_MEAN: float32(sum over kept positions of (x - z)) * float32(s_in / count)."""
    keep = (np.asarray(mask) != 0)[..., None]
    acc = (np.where(keep, np.asarray(x, np.int64) - int(in_zero_point), 0)).sum(axis=1)
    count = keep.sum(axis=1)
    scale = np.where(count > 0, (_f64(in_scale) / np.maximum(count, 1)), 0.0).astype(np.float32)
    return acc.astype(np.float32) * scale


def _qp(t) -> tuple[float, int]:
    return t.scales[0], int(t.zero_points[0])


def _act(op) -> dict:
    """act_min/act_max with GraphBuilder's defaults."""
    return dict(act_min=op.attrs.get("act_min", 0), act_max=op.attrs.get("act_max", 255))


# One function per op, on the op and its input values; absent attributes take GraphBuilder's
# defaults.


def _op_quantize(op, args):
    return quantize(args[0], *_qp(op.outputs[0]))


def _op_dequantize(op, args):
    return dequantize(args[0], *_qp(op.inputs[0]))


def _op_conv2d(op, args):
    a = op.attrs
    x = args[0]
    sequence = x.ndim == 3  # [N, W, C]: the image [N, 1, W, C]
    y = conv2d(x[:, None] if sequence else x, *_qp(op.inputs[0]), args[1], op.inputs[1].scales, args[2],
               *_qp(op.outputs[0]), strides=a.get("strides", 1), pads=a.get("pads", 0),
               dilations=a.get("dilations", 1), groups=a.get("groups", 1), **_act(op))
    return y[:, 0] if sequence else y


def _op_fully_connected(op, args):
    x, t_in, t_out, w_scales = args[0], op.inputs[0], op.outputs[0], op.inputs[1].scales
    if t_in.dtype == "int32":  # a wide input, read within +-input_bound
        bound = int(op.attrs.get("input_bound", WIDE_MAX))
        x = np.clip(np.asarray(x, np.int64), -bound, bound)
    if t_out.dtype == "float32":
        return fully_connected_float(x, *_qp(t_in), args[1], w_scales, args[2])
    if t_out.dtype == "int32":
        return wide_from_float(fully_connected_float(x, *_qp(t_in), args[1], w_scales, args[2]), t_out.scales[0])
    return fully_connected(x, *_qp(t_in), args[1], w_scales, args[2], *_qp(t_out), **_act(op))


def _op_add(op, args):
    if op.outputs[0].dtype == "int32":
        return add_wide(args[0], *_qp(op.inputs[0]), args[1], *_qp(op.inputs[1]), op.outputs[0].scales[0])
    return add(args[0], *_qp(op.inputs[0]), args[1], *_qp(op.inputs[1]), *_qp(op.outputs[0]), **_act(op))


def _op_mul(op, args):
    return mul(args[0], *_qp(op.inputs[0]), args[1], *_qp(op.inputs[1]), *_qp(op.outputs[0]), **_act(op))


def _op_concat(op, args):
    return concat(args, [t.scales[0] for t in op.inputs], [t.zero_points[0] for t in op.inputs], op.attrs["axis"],
                  *_qp(op.outputs[0]))


def _op_avg_pool(op, args):
    a = op.attrs
    return avg_pool(args[0], *_qp(op.inputs[0]), a["kernel"], *_qp(op.outputs[0]), strides=a.get("strides"),
                    pads=a.get("pads", 0), count_include_pad=bool(a.get("count_include_pad", 1)), **_act(op))


def _op_global_avg_pool(op, args):
    return global_avg_pool(args[0], *_qp(op.inputs[0]), *_qp(op.outputs[0]), **_act(op))


def _op_max_pool(op, args):
    a = op.attrs
    return max_pool(args[0], a["kernel"], strides=a.get("strides"), pads=a.get("pads", 0), **_act(op))


def _op_lut(op, args):
    return lut(args[0], args[1])


def _op_clamp(op, args):
    return clamp(args[0], **_act(op))


def _op_transpose(op, args):
    return transpose(args[0], op.attrs["perm"])


def _op_reshape(op, args):
    return reshape(args[0], op.attrs["shape"])


def _op_slice(op, args):
    a = op.attrs
    index = [slice(None)] * args[0].ndim
    index[a["axis"]] = slice(a["start"], a["end"])
    y = args[0][tuple(index)]
    if y.shape[a["axis"]] < 1:
        raise ValueError(f"SLICE from {a['start']} of an axis of {args[0].shape[a['axis']]}")
    return y


def _op_gather(op, args):
    t_out = op.outputs[0]
    return gather(args[0], op.inputs[0].scales, args[1], *_qp(t_out), positions=op.attrs.get("positions", 0),
                  padding_id=op.attrs.get("padding_id", 0), wide=t_out.dtype == "int32")


def _op_layer_norm(op, args):
    if op.outputs[0].dtype == "int32":
        return layer_norm(args[0], _qp(op.inputs[0])[1], args[1], args[2], *_qp(op.outputs[0]), wide=True)
    return layer_norm(args[0], _qp(op.inputs[0])[1], args[1], args[2], *_qp(op.outputs[0]), **_act(op))


def _op_softmax(op, args):
    relative = bool(op.attrs.get("relative", 0))
    mask = args[2] if len(args) > (3 if relative else 2) else None
    return softmax(args[0], args[1], mask, args[-1] if relative else None)


def _op_matmul(op, args):
    a = op.attrs
    return matmul(args[0], *_qp(op.inputs[0]), args[1], *_qp(op.inputs[1]), *_qp(op.outputs[0]),
                  transpose_b=bool(a.get("transpose_b", 0)), alpha=a.get("alpha", 1.0), **_act(op))


def apply_mask(x, zero_point: int, mask) -> np.ndarray:
    """APPLY_MASK: x at the [B, S] positions where the mask is nonzero, the zero point elsewhere."""
    x, mask = np.asarray(x), np.asarray(mask)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask {mask.shape} for input {x.shape}")
    keep = (mask != 0).reshape(mask.shape + (1,) * (x.ndim - 2))
    return np.where(keep, x, np.uint8(zero_point)).astype(np.uint8)


def _op_apply_mask(op, args):
    return apply_mask(args[0], _qp(op.inputs[0])[1], args[1])


def _op_masked_mean(op, args):
    return masked_mean(args[0], *_qp(op.inputs[0]), args[1])


# BEGIN GENERATED dispatch (scripts/gen_schema.py)
_NUMPY_DTYPES = {"float32": np.float32, "uint8": np.uint8, "int8": np.int8, "int32": np.int32}

# One oracle function per op of the schema: a new op without one fails at import.
_OP_FUNCTIONS = {
    "QUANTIZE": _op_quantize,
    "DEQUANTIZE": _op_dequantize,
    "CONV2D": _op_conv2d,
    "FULLY_CONNECTED": _op_fully_connected,
    "ADD": _op_add,
    "CONCAT": _op_concat,
    "AVG_POOL": _op_avg_pool,
    "MAX_POOL": _op_max_pool,
    "GLOBAL_AVG_POOL": _op_global_avg_pool,
    "RESHAPE": _op_reshape,
    "LUT": _op_lut,
    "CLAMP": _op_clamp,
    "MUL": _op_mul,
    "TRANSPOSE": _op_transpose,
    "GATHER": _op_gather,
    "LAYER_NORM": _op_layer_norm,
    "SOFTMAX": _op_softmax,
    "MATMUL": _op_matmul,
    "MASKED_MEAN": _op_masked_mean,
    "SLICE": _op_slice,
    "APPLY_MASK": _op_apply_mask,
}
# END GENERATED dispatch


def _run_op(op, args: list) -> np.ndarray:
    if op.type not in _OP_FUNCTIONS:
        raise ValueError(f"the oracle has no op '{op.type}'")
    return _OP_FUNCTIONS[op.type](op, args)


def _feeds_by_input(graph_inputs, inputs) -> list:
    if isinstance(inputs, dict):
        missing = [t.name for t in graph_inputs if t.name not in inputs]
        if missing:
            raise ValueError(f"no data for graph inputs {missing}")
        return [inputs[t.name] for t in graph_inputs]
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != len(graph_inputs):
            raise ValueError(f"{len(inputs)} arrays for {len(graph_inputs)} graph inputs")
        return list(inputs)
    if len(graph_inputs) != 1:
        raise ValueError(f"one array for {len(graph_inputs)} graph inputs")
    return [inputs]


def run_graph(builder, inputs):
    """Interprets a GraphBuilder's ops with the functions above.

    `inputs` is an array (one graph input), a list in input order, or a dict by name, each
    array already in the input's dtype (raw uint8 for quantized inputs: no implicit
    quantization here). Returns the raw outputs, an array for one output, else a list.
    """
    values = {id(t): t.data for t in builder.tensors if t.data is not None}
    for t, arr in zip(builder.inputs, _feeds_by_input(builder.inputs, inputs)):
        arr = np.asarray(arr)
        if arr.dtype != _NUMPY_DTYPES[t.dtype]:
            raise TypeError(f"input '{t.name}' is {t.dtype}, got {arr.dtype} data")
        if arr.ndim != len(t.shape) or any(d not in (-1, s) for d, s in zip(t.shape, arr.shape)):
            raise ValueError(f"input '{t.name}' has shape {t.shape}, got {arr.shape}")
        values[id(t)] = arr
    for op in builder.ops:
        out = _run_op(op, [values[id(t)] for t in op.inputs])
        values[id(op.outputs[0])] = out
    outs = [values[id(t)] for t in builder.outputs]
    return outs[0] if len(outs) == 1 else outs
