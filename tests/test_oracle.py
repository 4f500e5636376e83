"""Sanity checks of the numpy oracle itself, against hand-derived values, exact Python-integer
arithmetic and naive loops: none of this needs the engine."""

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

import oracle
from oracle import INT32_MAX, INT32_MIN


# -- quantize_multiplier -------------------------------------------------------------------


@pytest.mark.parametrize("real, expected", [
    (0.5, (2**30, 0)),
    (0.75, (3 * 2**29, 0)),
    (1.0, (2**30, 1)),
    (2.0, (2**30, 2)),
    (0.25, (2**30, -1)),
    # mant * 2^31 = 2^30 + 0.5 exactly: the tie goes away from zero.
    (0.5 + 2**-32, (2**30 + 1, 0)),
    # mant * 2^31 rounds up to 2^31: renormalised to 2^30 with the exponent bumped.
    (1 - 2**-40, (2**30, 1)),
    (2**-32, (2**30, -31)),
    # e = -32 < -31: the multiplier is below one LSB and becomes zero.
    (2**-33, (0, 0)),
    (2**29 * 1.5, (3 * 2**29, 30)),
])
def test_quantize_multiplier_known_values(real, expected):
    assert oracle.quantize_multiplier(real) == expected


@pytest.mark.parametrize("real", [2.0**30, 1e10, 0.0, -0.5, float("inf"), float("nan")])
def test_quantize_multiplier_refuses(real):
    with pytest.raises(ValueError):
        oracle.quantize_multiplier(real)


def test_quantize_multiplier_is_accurate():
    rng = np.random.default_rng(0)
    for real in np.exp2(rng.uniform(-31, 30, 2000)):
        m, e = oracle.quantize_multiplier(real)
        assert 2**30 <= m < 2**31
        # Rounding the 31-bit mantissa to nearest leaves at most half an LSB of error.
        assert abs(Fraction(m) * Fraction(2) ** (e - 31) - Fraction(real)) <= Fraction(2) ** (e - 32)


# -- SRDHM, RDBPOT, requant --------------------------------------------------------------


def test_srdhm_saturates_the_one_overflow():
    assert oracle.srdhm(INT32_MIN, INT32_MIN) == INT32_MAX
    assert oracle.srdhm(INT32_MIN, INT32_MAX) == -INT32_MAX
    assert oracle.srdhm(INT32_MAX, INT32_MAX) == INT32_MAX - 1


def test_srdhm_rounds_halves_up():
    # From the nudges: (a*b + 2^30) / 2^31 for a*b >= 0 and (a*b + 1 - 2^30) / 2^31 truncated
    # otherwise, which both come to floor(a*b / 2^31 + 1/2).
    a = np.array([1, -1, 3, -3, 2, -2, 5, -5])
    assert oracle.srdhm(a, 2**30).tolist() == [1, 0, 2, -1, 1, -1, 3, -2]


def test_srdhm_matches_exact_integers():
    rng = np.random.default_rng(1)
    a = rng.integers(INT32_MIN, INT32_MAX, 5000, endpoint=True)
    b = rng.integers(INT32_MIN, INT32_MAX, 5000, endpoint=True)
    got = oracle.srdhm(a, b)
    for x, y, r in zip(a.tolist(), b.tolist(), got.tolist()):
        assert r == (x * y + 2**30) >> 31  # Python ints: exact, >> floors


@pytest.mark.parametrize("x, s, expected", [
    (-3, 1, -2),  # -1.5: away from zero
    (-5, 2, -1),  # -1.25
    (-6, 2, -2),  # -1.5
    (-1, 1, -1),  # -0.5
    (3, 1, 2),
    (5, 1, 3),
    (1, 1, 1),
    (5, 2, 1),
    (7, 0, 7),
    (-7, 0, -7),
    (INT32_MIN, 31, -1),
    (INT32_MAX, 31, 1),
])
def test_rdbpot_known_values(x, s, expected):
    assert oracle.rdbpot(x, s) == expected


def test_rdbpot_is_round_half_away_from_zero():
    rng = np.random.default_rng(2)
    x = rng.integers(INT32_MIN, INT32_MAX, 5000, endpoint=True)
    s = rng.integers(0, 32, 5000)
    for v, k, r in zip(x.tolist(), s.tolist(), oracle.rdbpot(x, s).tolist()):
        q = Fraction(v, 2**k)
        rounded = int(abs(q) + Fraction(1, 2)) * (1 if q >= 0 else -1)
        assert r == rounded


def test_requant_half():
    # M = 0.5 is (2^30, 0): SRDHM alone, so halves round up (toward +inf).
    m, e = oracle.quantize_multiplier(0.5)
    x = [3, -3, 4, -4, 1, -1, 0, 255 * 2**20]
    assert oracle.requant(x, m, e).tolist() == [2, -1, 2, -2, 1, 0, 0, 255 * 2**19]


def test_requant_quarter():
    # M = 0.25 is (2^30, -1): SRDHM by 2^30, then RDBPOT by 1. The two roundings compound:
    # 5 * 0.25 = 1.25 -> SRDHM 2.5 -> 3 -> RDBPOT 1.5 -> 2.
    m, e = oracle.quantize_multiplier(0.25)
    assert oracle.requant([2, -2, 3, -6, 4, 5], m, e).tolist() == [1, -1, 1, -2, 1, 2]


def test_requant_saturates_the_left_shift():
    m, e = oracle.quantize_multiplier(2.0)
    assert (m, e) == (2**30, 2)
    # 2^30 * 4 saturates to INT32_MAX before the multiply; SRDHM then halves it.
    assert oracle.requant([2**29, 2**30, -(2**30), -(2**29)], m, e).tolist() == [2**30, 2**30, -(2**30), -(2**30)]


def test_requant_of_zero_multiplier_is_zero():
    m, e = oracle.quantize_multiplier(2**-40)
    assert oracle.requant([INT32_MAX, INT32_MIN, 5], m, e).tolist() == [0, 0, 0]


def test_requant_within_one_of_exact():
    rng = np.random.default_rng(3)
    reals = np.exp2(rng.uniform(-30, 6, 300))
    # |x| * 2^7 stays inside int32 for the largest multipliers, so nothing saturates.
    x = rng.integers(-(2**24), 2**24, (300, 50))
    for real, row in zip(reals, x):
        m, e = oracle.quantize_multiplier(real)
        got = oracle.requant(row, m, e)
        assert np.all(np.abs(got - np.round(row * real)) <= 1)


def test_requant_broadcasts_per_channel():
    rng = np.random.default_rng(4)
    x = rng.integers(-(2**20), 2**20, (5, 4, 3))
    m, e = oracle.quantize_multipliers([0.001, 0.37, 1.7])
    got = oracle.requant(x, m, e)
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], oracle.requant(x[..., c], m[c], e[c]))


def test_requant_rejects_non_int32_input():
    with pytest.raises(OverflowError):
        oracle.requant([2**31], 2**30, 0)


# -- QUANTIZE / DEQUANTIZE ------------------------------------------------------------------


def test_quantize_ties_to_even_and_saturates():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, -0.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 200.0, -200.0],
                 np.float32)
    expected = [128, 130, 130, 128, 126, 126, 128, 128, 255, 0, 255, 0, 255, 0]
    assert oracle.quantize(x, 1.0, 128).tolist() == expected


def test_quantize_divides_in_float32():
    # In float32, 0.75f / 0.1f and 0.85f / 0.1f are exactly 7.5 and 8.5, which tie to 8; in
    # double they are 7.4999999 and 8.5000001, which would give 7 and 9.
    x = np.array([0.75, 0.85], np.float32)
    assert (np.float64(x) / np.float64(np.float32(0.1))).round().tolist() == [7.0, 9.0]
    assert oracle.quantize(x, 0.1, 128).tolist() == [136, 136]


def test_dequantize_known_values():
    got = oracle.dequantize(np.array([0, 127, 128, 255], np.uint8), 0.5, 128)
    assert got.dtype == np.float32
    assert got.tolist() == [-64.0, -0.5, 0.0, 63.5]


def test_dequantize_multiplies_in_float32():
    q = np.arange(256, dtype=np.uint8)
    want = (q.astype(np.float32) - np.float32(3)) * np.float32(0.1)
    np.testing.assert_array_equal(oracle.dequantize(q, 0.1, 3), want)


# -- CONV2D / FULLY_CONNECTED -------------------------------------------------------------


def _naive_conv_acc(x, z, w, bias, strides, pads, dilations, groups):
    n, h, wd, cin = x.shape
    cout, kh, kw, cin_g = w.shape
    (sh, sw), (top, left, bottom, right), (dh, dw) = strides, pads, dilations
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
    cout_g = cout // groups
    acc = np.zeros((n, oh, ow, cout), np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for oc in range(cout):
                    g = oc // cout_g
                    total = int(bias[oc])
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * sh - top + ky * dh, ox * sw - left + kx * dw
                            for ic in range(cin_g):
                                v = int(x[b, iy, ix, g * cin_g + ic]) if 0 <= iy < h and 0 <= ix < wd else z
                                total += (v - z) * int(w[oc, ky, kx, ic])
                    acc[b, oy, ox, oc] = total
    return acc


@pytest.mark.parametrize("shape, wshape, strides, pads, dilations, groups", [
    ((1, 5, 6, 3), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((2, 7, 5, 4), (6, 3, 2, 2), (2, 1), (0, 1, 2, 0), (1, 1), 2),
    ((1, 9, 9, 3), (6, 3, 3, 1), (2, 2), (2, 2, 2, 2), (2, 2), 3),
    ((1, 2, 2, 2), (3, 5, 5, 2), (1, 1), (2, 2, 2, 2), (1, 1), 1),
])
def test_conv2d_accumulate_matches_loops(shape, wshape, strides, pads, dilations, groups):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    w = rng.integers(-127, 128, wshape).astype(np.int8)
    bias = rng.integers(-1000, 1000, wshape[0]).astype(np.int32)
    got = oracle.conv2d_accumulate(x, 77, w, bias, strides, pads, dilations, groups)
    np.testing.assert_array_equal(got, _naive_conv_acc(x, 77, w, bias, strides, pads, dilations, groups))


def test_conv2d_identity_weights():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (2, 4, 5, 7), dtype=np.uint8)
    w = np.eye(7, dtype=np.int8).reshape(7, 1, 1, 7)
    # M = s_in * 1 / s_in = 1 exactly, the identity requant; only the zero points move values.
    got = oracle.conv2d(x, 0.1, 100, w, np.ones(7, np.float32), np.zeros(7, np.int32), 0.1, 100)
    np.testing.assert_array_equal(got, x)
    shifted = oracle.conv2d(x, 0.1, 100, w, np.ones(7, np.float32), np.zeros(7, np.int32), 0.1, 110)
    np.testing.assert_array_equal(shifted, np.clip(x.astype(int) + 10, 0, 255))


def test_conv2d_padding_reads_the_zero_point():
    x = np.full((1, 1, 1, 1), 90, np.uint8)
    w = np.ones((1, 3, 3, 1), np.int8)
    # Only the centre tap sees the input; the 8 padded taps add (z_in - z_in) * w = 0.
    assert oracle.conv2d_accumulate(x, 80, w, [5], pads=1).tolist() == [[[[15]]]]


def test_fully_connected_matches_conv_1x1():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (3, 13), dtype=np.uint8)
    w = rng.integers(-127, 128, (5, 13)).astype(np.int8)
    bias = rng.integers(-500, 500, 5).astype(np.int32)
    fc = oracle.fully_connected_accumulate(x, 9, w, bias)
    conv = oracle.conv2d_accumulate(x.reshape(3, 1, 1, 13), 9, w.reshape(5, 1, 1, 13), bias)
    np.testing.assert_array_equal(fc, conv.reshape(3, 5))
    assert fc[1, 2] == int(bias[2]) + int(((x[1].astype(int) - 9) * w[2]).sum())


def test_accumulator_outside_int32_is_refused():
    x = np.full((1, 1, 1, 70000), 255, np.uint8)
    w = np.full((1, 1, 1, 70000), 127, np.int8)
    with pytest.raises(OverflowError):
        oracle.conv2d_accumulate(x, 0, w, [0])


# -- ADD / CONCAT --------------------------------------------------------------------------


def test_add_with_equal_scales_is_the_integer_sum():
    # t = 0.2; both inputs move by exactly 2^19, and M_out = 2^-19, so nothing rounds.
    a = np.arange(256, dtype=np.uint8).reshape(16, 16)
    b = a.T.copy()
    got = oracle.add(a, 0.1, 100, b, 0.1, 30, 0.1, 60)
    want = np.clip(a.astype(int) - 100 + b.astype(int) - 30 + 60, 0, 255)
    np.testing.assert_array_equal(got, want)


def test_add_broadcasts_and_clamps():
    a = np.array([[10], [200]], np.uint8)
    b = np.array([[0, 100, 255]], np.uint8)
    got = oracle.add(a, 1.0, 0, b, 1.0, 0, 1.0, 0, act_min=50, act_max=250)
    assert got.tolist() == [[50, 110, 250], [200, 250, 250]]


def test_add_ignores_an_operand_below_one_lsb():
    a = np.array([0, 17, 255], np.uint8)
    b = np.array([255, 0, 255], np.uint8)
    # s_b / t is ~2^-37: its multiplier is zero, so b does not contribute at all.
    got = oracle.add(a, 0.5, 0, b, 1e-11, 0, 0.5, 0)
    np.testing.assert_array_equal(got, a)


def test_concat_with_equal_parameters_is_the_identity():
    rng = np.random.default_rng(8)
    xs = [rng.integers(0, 256, (2, 3, s), dtype=np.uint8) for s in (1, 4, 2)]
    got = oracle.concat(xs, [0.05] * 3, [17] * 3, -1, 0.05, 17)
    np.testing.assert_array_equal(got, np.concatenate(xs, axis=-1))


def test_concat_requantizes_each_input():
    a = np.array([[0, 10, 20]], np.uint8)
    b = np.array([[100, 255]], np.uint8)
    # a: M = 0.5, z 10 -> 0: (-10, 0, 10) * 0.5 = (-5, 0, 5) -> clamped (0, 0, 5).
    # b: M = 2, z 0 -> 0: (200, 510) -> clamped (200, 255).
    got = oracle.concat([a, b], [1.0, 4.0], [10, 0], 1, 2.0, 0)
    assert got.tolist() == [[0, 0, 5, 200, 255]]


# -- MUL -----------------------------------------------------------------------------------


def test_mul_rounds_halves_away_from_zero_and_clamps():
    # Centred a = (3, -3, -1, 1, 5), b = 2: products (6, -6, -2, 2, 10). M = 1 * 1 / 4 = 0.25 is
    # (2^30, -1): SRDHM halves (3, -3, -1, 1, 5), RDBPOT halves again with ties away from zero:
    # (1.5, -1.5, -0.5, 0.5, 2.5) -> (2, -2, -1, 1, 3).
    a = np.array([13, 7, 9, 11, 15], np.uint8)
    b = np.array([12], np.uint8)
    got = oracle.mul(a, 1.0, 10, b, 1.0, 10, 4.0, 100)
    assert got.dtype == np.uint8
    assert got.tolist() == [102, 98, 99, 101, 103]
    assert oracle.mul(a, 1.0, 10, b, 1.0, 10, 4.0, 100, act_min=99, act_max=102).tolist() == [102, 99, 99, 101, 102]


def test_mul_broadcasts_with_an_exact_multiplier():
    # M = 0.5 * 0.25 / 0.125 = 1: the output is the integer product plus z_out.
    a = np.array([[10, 20, 30]], np.uint8)  # centred (0, 10, 20)
    b = np.array([[4], [6]], np.uint8)  # centred (2, 4)
    got = oracle.mul(a, 0.5, 10, b, 0.25, 2, 0.125, 5)
    assert got.tolist() == [[5, 25, 45], [5, 45, 85]]


def test_mul_extreme_products():
    # (0 - 255) * (0 - 255) = 65025, the largest product; M = 2^-8: 254.0039 -> 254.
    zero = np.zeros(1, np.uint8)
    assert oracle.mul(zero, 1.0, 255, zero, 1.0, 255, 256.0, 0).tolist() == [254]
    # (0 - 255) * (255 - 0) = -65025 -> -254, plus z_out 255.
    assert oracle.mul(zero, 1.0, 255, np.array([255], np.uint8), 1.0, 0, 256.0, 255).tolist() == [1]


def test_mul_within_one_of_the_real_product():
    # Every pair of uint8 values, against the real product rounded (before the clamp).
    a = np.arange(256, dtype=np.uint8).reshape(256, 1)
    b = np.arange(256, dtype=np.uint8).reshape(1, 256)
    s_a, s_b, s_out, z_a, z_b, z_out = 0.1, 0.1, 0.01 * 255, 128, 37, 128
    got = oracle.mul(a, s_a, z_a, b, s_b, z_b, s_out, z_out)
    real = (a.astype(np.float64) - z_a) * (b.astype(np.float64) - z_b) * (
        float(np.float32(s_a)) * float(np.float32(s_b)) / float(np.float32(s_out)))
    want = np.clip(np.round(real) + z_out, 0, 255)
    assert got.shape == (256, 256)
    assert np.abs(got.astype(np.int64) - want).max() <= 1


# -- pools ---------------------------------------------------------------------------------


def test_avg_pool_border_windows():
    x = np.full((1, 3, 3, 1), 109, np.uint8)  # 9 above z = 100 everywhere
    incl = oracle.avg_pool(x, 1.0, 100, 3, 1.0, 100, strides=1, pads=1, count_include_pad=True)
    excl = oracle.avg_pool(x, 1.0, 100, 3, 1.0, 100, strides=1, pads=1, count_include_pad=False)
    # Corners see 4 positions (acc 36), edges 6 (54), the centre 9 (81).
    assert incl[0, :, :, 0].tolist() == [[104, 106, 104], [106, 109, 106], [104, 106, 104]]
    assert excl[0, :, :, 0].tolist() == [[109] * 3] * 3


def test_avg_pool_refuses_an_empty_window():
    x = np.zeros((1, 2, 2, 1), np.uint8)
    with pytest.raises(ValueError):
        oracle.avg_pool(x, 1.0, 0, 2, 1.0, 0, strides=2, pads=(2, 2, 0, 0), count_include_pad=False)


def _naive_pool(x, kernel, strides, pads, reduce):
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (top, left, bottom, right) = kernel, strides, pads
    oh, ow = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    out = np.zeros((n, oh, ow, c), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            ys = [oy * sh - top + k for k in range(kh) if 0 <= oy * sh - top + k < h]
            xs = [ox * sw - left + k for k in range(kw) if 0 <= ox * sw - left + k < w]
            out[:, oy, ox, :] = reduce(x[:, ys][:, :, xs].astype(np.int64), len(ys) * len(xs))
    return out


def test_avg_pool_matches_loops():
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (2, 7, 6, 3), dtype=np.uint8)
    kernel, strides, pads = (3, 2), (2, 1), (1, 0, 1, 1)
    got = oracle.avg_pool(x, 0.02, 50, kernel, 0.03, 60, strides=strides, pads=pads, count_include_pad=False)
    sums = _naive_pool(x, kernel, strides, pads, lambda v, n: (v - 50).sum(axis=(1, 2)))
    counts = _naive_pool(x, kernel, strides, pads, lambda v, n: n)
    want = np.empty_like(sums)
    for idx in np.ndindex(sums.shape):
        m, e = oracle.quantize_multiplier(float(np.float32(0.02)) / (float(np.float32(0.03)) * counts[idx]))
        want[idx] = oracle.requant(sums[idx], m, e) + 60
    np.testing.assert_array_equal(got, np.clip(want, 0, 255))


def test_max_pool_matches_loops():
    rng = np.random.default_rng(10)
    x = rng.integers(0, 256, (2, 7, 6, 3), dtype=np.uint8)
    kernel, strides, pads = (3, 3), (2, 2), (1, 1, 1, 0)
    got = oracle.max_pool(x, kernel, strides, pads, act_min=20, act_max=240)
    want = _naive_pool(x, kernel, strides, pads, lambda v, n: v.max(axis=(1, 2)))
    np.testing.assert_array_equal(got, np.clip(want, 20, 240))


def test_global_avg_pool_shape_and_value():
    x = np.full((2, 5, 3, 4), 40, np.uint8)
    got = oracle.global_avg_pool(x, 0.5, 10, 0.25, 5)
    # Real value 0.5 * 30 = 15 everywhere, i.e. 60 steps of 0.25 above z_out = 5.
    assert got.shape == (2, 1, 1, 4)
    assert np.all(got == 65)


# -- LUT / CLAMP / RESHAPE -----------------------------------------------------------------


def test_lut_and_clamp():
    table = np.arange(256)[::-1].astype(np.uint8)
    x = np.array([[0, 1, 255]], np.uint8)
    assert oracle.lut(x, table).tolist() == [[255, 254, 0]]
    assert oracle.clamp(x, 1, 200).tolist() == [[1, 1, 200]]


@pytest.mark.parametrize("in_shape, target, expected", [
    ((2, 3, 4), (0, -1), (2, 12)),
    ((2, 3, 4), (-1, 4), (6, 4)),
    ((2, 3, 4), (0, 0, 2, 2), (2, 3, 2, 2)),
    ((2, 3, 4), (4, 0, -1), (4, 3, 2)),
])
def test_reshape_target(in_shape, target, expected):
    assert oracle.reshape_target(in_shape, target) == expected


@pytest.mark.parametrize("target", [(-1, -1), (5, -1), (7, 0)])
def test_reshape_refuses_impossible_targets(target):
    with pytest.raises(ValueError):
        oracle.reshape_target((2, 3, 4), target)


# -- TRANSPOSE ---------------------------------------------------------------------------


def test_transpose_known_values():
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert oracle.transpose(x, [1, 0]).tolist() == [[0, 3], [1, 4], [2, 5]]
    assert oracle.transpose(x, [0, 1]).tolist() == x.tolist()


@pytest.mark.parametrize("shape, perm", [
    ((3, 5), (1, 0)),
    ((2, 3, 5), (2, 0, 1)),
    ((2, 3, 5), (1, 2, 0)),
    ((2, 3, 5, 7), (0, 2, 3, 1)),
    ((2, 3, 5, 7), (0, 3, 1, 2)),
    ((2, 3, 5, 7), (3, 2, 1, 0)),
    ((2, 3, 1, 5, 7), (4, 0, 3, 1, 2)),
])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_transpose_matches_numpy(shape, perm, dtype):
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, shape).astype(dtype)
    got = oracle.transpose(x, perm)
    assert got.dtype == dtype and got.flags.c_contiguous
    assert got.shape == tuple(shape[p] for p in perm)
    np.testing.assert_array_equal(got, np.transpose(x, perm))
    # Element by element, the definition: y[i_0, ..., i_k] = x[j] with j[perm[d]] = i_d.
    for idx in np.ndindex(got.shape):
        j = [0] * len(perm)
        for d, p in enumerate(perm):
            j[p] = idx[d]
        assert got[idx] == x[tuple(j)]


def test_transpose_keeps_float_bytes():
    x = np.array([[-0.0, np.nan, np.inf], [-np.inf, 1e-45, -3.5]], np.float32)
    got = oracle.transpose(x, [1, 0])
    assert got.tobytes() == np.ascontiguousarray(x.T).tobytes()


@pytest.mark.parametrize("perm", [(0, 0, 1), (0, 1, 5), (1, 0), (0, 1, 2, 3)])
def test_transpose_refuses_bad_perms(perm):
    with pytest.raises(ValueError):
        oracle.transpose(np.zeros((2, 3, 4), np.uint8), perm)


# -- run_graph -------------------------------------------------------------------------------


def test_run_graph_chains_ops():
    # A stand-in for GraphBuilder (importing intinfer would pull in the compiled module).
    def tensor(name, dtype, shape=(), scale=None, zp=None, data=None):
        return SimpleNamespace(name=name, dtype=dtype, shape=shape, data=data,
                               scales=np.array([] if scale is None else [scale], np.float32),
                               zero_points=np.array([] if zp is None else [zp], np.int32))

    x = tensor("x", "float32", (-1, 4))
    q = tensor("q", "uint8", scale=0.5, zp=10)
    c = tensor("c", "uint8", scale=0.5, zp=10)
    y = tensor("y", "float32")
    ops = [SimpleNamespace(type=t, inputs=[i], outputs=[o], attrs=a)
           for t, i, o, a in [("QUANTIZE", x, q, {}), ("CLAMP", q, c, {"act_min": 10, "act_max": 14}),
                              ("DEQUANTIZE", c, y, {})]]
    graph = SimpleNamespace(tensors=[x, q, c, y], inputs=[x], outputs=[y, q], ops=ops)
    out, raw = oracle.run_graph(graph, {"x": np.array([[-1.0, 0.25, 1.0, 9.0]], np.float32)})
    assert raw.tolist() == [[8, 10, 12, 28]]
    assert out.tolist() == [[0.0, 0.0, 1.0, 2.0]]
    with pytest.raises(TypeError):
        oracle.run_graph(graph, [np.zeros((1, 4), np.float64)])
    with pytest.raises(ValueError):
        oracle.run_graph(graph, np.zeros((1, 5), np.float32))
