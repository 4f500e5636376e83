"""The engine's integer arithmetic (docs/quantization.md) in torch, for the eval-mode forward of a
quantization-aware model: codes are int64 tensors in PyTorch's logical layout (NCHW), every
intermediate is exact (int64, or float64 sums of integers far below 2^53), and each rounding is
the one the spec names. Values that only move (reshape, permute, max) keep their codes.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

from ..export.graph import by_distance
from ..quant import WIDE_MAX

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def f32(v) -> float:
    """A scale as the engine holds it: float32, widened to double."""
    return float(np.float32(v))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(m, e) with real ~= m * 2^(e - 31), m in [2^30, 2^31), rounded half away from zero."""
    mant, e = math.frexp(float(real))
    m = math.floor(Fraction(mant) * 2**31 + Fraction(1, 2))
    if m == 2**31:
        m, e = 2**30, e + 1
    if e < -31:
        return 0, 0
    if e > 30:
        raise ValueError(f"requantization multiplier {real} is too large for the engine (exponent {e} > 30)")
    return m, e


def multipliers(reals) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [quantize_multiplier(r) for r in np.asarray(reals, np.float64).ravel()]
    return (torch.tensor([p[0] for p in pairs], dtype=torch.int64),
            torch.tensor([p[1] for p in pairs], dtype=torch.int64))


def requant(x: torch.Tensor, m, e) -> torch.Tensor:
    """gemmlowp's MultiplyByQuantizedMultiplier: a saturating left shift, the rounding doubling
    high multiply (ties away from zero), then a rounding right shift (ties away from zero)."""
    m = torch.as_tensor(m, dtype=torch.int64)
    e = torch.as_tensor(e, dtype=torch.int64)
    left, right = e.clamp(min=0), (-e).clamp(min=0)
    a = torch.clamp(x * torch.bitwise_left_shift(torch.ones_like(left), left), INT32_MIN, INT32_MAX)
    ab = a * m  # m < 2^31: never the saturating INT32_MIN * INT32_MIN case
    v = ab + torch.where(ab >= 0, 2**30, 1 - 2**30)
    high = torch.div(v, 2**31, rounding_mode="trunc")
    mask = torch.bitwise_left_shift(torch.ones_like(right), right) - 1
    threshold = torch.bitwise_right_shift(mask, 1) + (high < 0).long()
    return torch.bitwise_right_shift(high, right) + (torch.bitwise_and(high, mask) > threshold).long()


def output_stage(acc: torch.Tensor, reals, zero_point: int, lo: int = 0, hi: int = 255, axis: int = -1):
    """clamp(requant(acc, M) + z, lo, hi); a per-channel M lines up with `axis`."""
    m, e = multipliers(reals)
    if m.numel() > 1:
        shape = [1] * acc.dim()
        shape[axis] = -1
        m, e = m.reshape(shape), e.reshape(shape)
    else:
        m, e = m[0], e[0]
    return torch.clamp(requant(acc, m, e) + int(zero_point), lo, hi)


def quantize(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """QUANTIZE: rint(float32(x / s)) (ties to even) + z, clamped; NaN -> z."""
    r = torch.round(x.float() / torch.tensor(np.float32(scale)))
    q = torch.clamp(r.double() + zero_point, 0, 255)
    return torch.where(torch.isnan(x), torch.full_like(q, zero_point), q).long()


def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    return (q - zero_point).float() * torch.tensor(np.float32(scale))


def wide_from_float(f: torch.Tensor, scale: float) -> torch.Tensor:
    q = torch.round(torch.clamp(f.float() / torch.tensor(np.float32(scale)), -65536, 65536))
    return torch.clamp(q.long(), -WIDE_MAX, WIDE_MAX)


def _exact(f) -> torch.Tensor:
    """A float64 result that holds an integer exactly, as int64."""
    return torch.round(f).long()


def conv_accumulate(x, zero_point, codes, bias, stride, pads, dilation, groups) -> torch.Tensor:
    t, l, b, r = pads
    centred = F.pad((x - zero_point).double(), (l, r, t, b))  # zero after centring: the real zero
    acc = _exact(F.conv2d(centred, codes.double(), None, stride, 0, dilation, groups))
    return acc + bias.reshape(1, -1, 1, 1)


def linear_accumulate(x, zero_point, codes, bias) -> torch.Tensor:
    return _exact((x - zero_point).double() @ codes.double().T) + bias


def float_output(acc, in_scale, w_scales) -> torch.Tensor:
    """FULLY_CONNECTED's float32 output: float32(acc) * float32(s_in * s_w[c])."""
    s = torch.tensor(np.float32([f32(in_scale) * f32(w) for w in w_scales]))
    return acc.float() * s


def add(a, qa, b, qb, qout, lo=0, hi=255, wide=False) -> torch.Tensor:
    """ADD: both operands brought to 2 max(s_a, s_b) with 20 bits of headroom (15 into a wide
    output), summed, requantized to the output."""
    t = 2.0 * max(f32(qa[0]), f32(qb[0]))
    shift = 15 if wide else 20
    am, ae = quantize_multiplier(f32(qa[0]) / t)
    bm, be = quantize_multiplier(f32(qb[0]) / t)
    s = requant((a - qa[1]) * 2**shift, am, ae) + requant((b - qb[1]) * 2**shift, bm, be)
    if wide:
        m, e = quantize_multiplier(t / (2**shift * f32(qout[0])))
        return torch.clamp(requant(s, m, e), -WIDE_MAX, WIDE_MAX)
    return output_stage(s, [t / (2**shift * f32(qout[0]))], qout[1], lo, hi)


def mul(a, qa, b, qb, qout, lo=0, hi=255) -> torch.Tensor:
    return output_stage((a - qa[1]) * (b - qb[1]), [f32(qa[0]) * f32(qb[0]) / f32(qout[0])], qout[1], lo, hi)


def rescale(x, q, qout) -> torch.Tensor:
    """CONCAT's per-input requantization to the output's parameters."""
    return output_stage(x - q[1], [f32(q[0]) / f32(qout[0])], qout[1])


def avg_pool(x, q, qout, kernel, stride, padding, count_include_pad) -> torch.Tensor:
    ph, pw = padding
    sums = _exact(F.avg_pool2d((x - q[1]).double(), kernel, stride, (ph, pw), False, True, divisor_override=1))
    k = kernel[0] * kernel[1]
    if count_include_pad:
        n = torch.full_like(sums, k)
    else:
        n = _exact(F.avg_pool2d(torch.ones_like(x[:1, :1]).double(), kernel, stride, (ph, pw), False, True,
                                divisor_override=1)).expand_as(sums)
    m, e = multipliers([f32(q[0]) / (f32(qout[0]) * c) for c in range(1, k + 1)])
    return torch.clamp(requant(sums, m[n - 1], e[n - 1]) + qout[1], 0, 255)


def global_avg_pool(x, q, qout) -> torch.Tensor:
    n = x.shape[2] * x.shape[3]
    return output_stage((x - q[1]).sum(dim=(2, 3), keepdim=True), [f32(q[0]) / (f32(qout[0]) * n)], qout[1])


def max_pool(x, kernel, stride, padding) -> torch.Tensor:
    return _exact(F.max_pool2d(x.double(), kernel, stride, padding))  # padding is -inf: never wins


def gather(codes, row_scales, rows, qout, wide) -> torch.Tensor:
    """GATHER of the table rows `rows` (export.graph.gather_rows of the ids)."""
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= codes.shape[0]):
        raise IndexError(f"an id is outside the embedding table of {codes.shape[0]} rows")
    m, e = multipliers([f32(s) / f32(qout[0]) for s in row_scales])
    v = requant(codes[rows], m[rows].unsqueeze(-1), e[rows].unsqueeze(-1))
    return torch.clamp(v, -WIDE_MAX, WIDE_MAX) if wide else torch.clamp(v + qout[1], 0, 255)


def _isqrt(v: torch.Tensor) -> torch.Tensor:
    r = torch.sqrt(v.double()).long()
    while True:
        down = r * r > v
        up = (r + 1) * (r + 1) <= v
        if not (down.any() or up.any()):
            return r
        r = r - down.long() + up.long()


def _round_away(v: np.ndarray) -> np.ndarray:
    whole = np.trunc(v)
    return whole + np.sign(v) * (np.abs(v - whole) >= 0.5)


def layer_norm(x, zero_point, gamma, beta, qout, lo=0, hi=255) -> torch.Tensor:
    """LAYER_NORM: d = H x - sum x, r = isqrt(sum d^2), t = round(d floor(2^46 / r) / 2^31),
    y = requant(sign(g) t + round(beta 2^15 / (|g| sqrt(H))), |g| sqrt(H) / (2^15 s_out)) + z; a
    flat channel (g = 0, that offset beyond 2^31 - 2^16, that multiplier below 2^-31) gives
    round(beta / s_out) + z."""
    x = x - zero_point
    h = x.shape[-1]
    g = gamma.double().numpy()
    b = beta.double().numpy()
    real = np.abs(g) * math.sqrt(h) / (2.0**15 * f32(qout[0]))
    with np.errstate(all="ignore"):
        offset = _round_away(b * 2.0**15 / (np.abs(g) * math.sqrt(h)))
    flat = (g == 0) | ~(np.abs(offset) <= 2.0**31 - 2.0**16) | (real < 2.0**-31)
    m, e = multipliers(np.where(flat, 1.0, real))
    keep = torch.from_numpy(~flat)
    m, e = torch.where(keep, m, 0), torch.where(keep, e, 0)
    sign = torch.from_numpy(np.where(flat, 0, np.sign(g))).long()
    offset = torch.from_numpy(np.where(flat, 0, offset)).long()
    bias = torch.from_numpy(np.where(flat, np.clip(_round_away(b / f32(qout[0])), -(1 << 24), 1 << 24), 0)).long()
    d = h * x - x.sum(-1, keepdim=True)
    r = _isqrt((d * d).sum(-1, keepdim=True))
    inv = torch.where(r > 0, torch.div(2**46, r.clamp(min=1), rounding_mode="floor"), 0)
    t = torch.bitwise_right_shift(d * inv + 2**30, 31)
    return torch.clamp(requant(sign * t + offset, m, e) + bias + qout[1], lo, hi)


def softmax(x, table, mask=None, bias=None) -> torch.Tensor:
    """SOFTMAX: e = table[min(max - x, L - 1)] over attended positions, y = min(255, round(e floor(2^32 /
    sum e) / 2^24)); a relative bias [H, 2R - 1] adds bias[h, j - i + R - 1] to x[b, h, i, j] first."""
    if bias is not None:
        x = x + by_distance(bias, x.shape[2], x.shape[3])
    n = x.shape[-1]
    keep = torch.ones_like(x, dtype=torch.bool)
    if mask is not None:
        keep = (mask != 0).reshape([mask.shape[0]] + [1] * (x.dim() - 2) + [n]).expand(x.shape)
    attended = keep.any(-1, keepdim=True)
    top = torch.where(attended, torch.where(keep, x, torch.iinfo(torch.int64).min).amax(-1, keepdim=True), 0)
    e = torch.where(keep, table[torch.clamp(top - x, 0, table.shape[0] - 1)], 0)
    total = e.sum(-1, keepdim=True)
    inv = torch.where(total > 0, torch.div(2**32, total.clamp(min=1), rounding_mode="floor"), 0)
    y = torch.clamp(torch.bitwise_right_shift(e * inv + 2**23, 24), max=255)
    return torch.where(attended, y, 0)


def matmul(a, qa, b, qb, qout, transpose_b, alpha) -> torch.Tensor:
    bb = (b - qb[1]).double()
    acc = _exact((a - qa[1]).double() @ (bb.transpose(-1, -2) if transpose_b else bb))
    return output_stage(acc, [f32(alpha) * f32(qa[0]) * f32(qb[0]) / f32(qout[0])], qout[1])


def masked_mean(x, q, mask) -> torch.Tensor:
    keep = (mask != 0).unsqueeze(-1)
    acc = torch.where(keep, x - q[1], 0).sum(1)
    count = keep.sum(1)
    scale = torch.tensor([np.float32(f32(q[0]) / c) if c > 0 else np.float32(0) for c in count.reshape(-1).tolist()])
    return acc.float() * scale.reshape(count.shape)
