"""The transformer ops (GATHER, LAYER_NORM, SOFTMAX, MATMUL, MASKED_MEAN) as one-op models, bit for
bit against tests/oracle.py on every kernel path and thread count, their accuracy against the
float operation they stand for, and their errors."""

import numpy as np
import pytest

import intinfer
import oracle
from conftest import check_graph, load_graph
from intinfer import quant
from intinfer.builder import GraphBuilder

THREADS = (1, 2, 3)


def u8(rng, shape) -> np.ndarray:
    return rng.integers(0, 256, shape, dtype=np.uint8)


# -- GATHER ----------------------------------------------------------------------------------


def gather_graph(rng, rows, width, ids_shape, positions=0, padding_id=0):
    table_f = rng.normal(0, 0.05, (rows, width))
    table_f[3] *= 20  # one row with a much larger scale
    wq, ws = quant.quantize_weights(table_f)
    s_out, z_out = quant.choose_qparams(-0.15, 0.15)
    b = GraphBuilder()
    ids = b.input("ids", ids_shape, "int32")
    b.output(b.gather(b.constant("table", wq, "int8", scale=ws), ids, s_out, z_out, positions=positions,
                             padding_id=padding_id))
    return b, rng.integers(0, rows, tuple(d or 1 for d in ids_shape)).astype(np.int32)


GATHER_CASES = {
    "ids_2x9_width7": dict(rows=50, width=7, ids_shape=(2, 9)),
    "ids_1x1": dict(rows=5, width=40, ids_shape=(1, 1)),
    "ids_3x17_width33": dict(rows=300, width=33, ids_shape=(3, 17)),
    "positions_2x12": dict(rows=20, width=16, ids_shape=(2, 12), positions=1),
    "counted_positions_3x12": dict(rows=13, width=16, ids_shape=(3, 12), positions=2, padding_id=5),
}


@pytest.mark.parametrize("case", GATHER_CASES.values(), ids=GATHER_CASES.keys())
def test_gather(case, rng):
    b, ids = gather_graph(rng, **case)
    ids[0, 0] = 0
    ids[-1, -1] = case["rows"] - 1
    got = check_graph(b, ids, threads=THREADS)
    assert got.shape == ids.shape + (case["width"],)


def test_gather_refuses_ids_outside_the_table(rng):
    b, ids = gather_graph(rng, 10, 4, (1, 5))
    m = load_graph(b)
    for bad in (10, -1):
        ids[0, 2] = bad
        with pytest.raises(ValueError, match=rf"id {bad} at position 2 is outside the table's rows \[0, 10\)"):
            m.run(ids)


def test_gather_positions_longer_than_the_table(rng):
    b, _ = gather_graph(rng, 8, 4, (1, None), positions=1)
    with pytest.raises(ValueError, match="a sequence of 9 positions needs 9 rows, the table has 8"):
        load_graph(b).run(np.zeros((1, 9), np.int32))
    b, _ = gather_graph(rng, 8, 4, (1, None), positions=2, padding_id=1)
    with pytest.raises(ValueError, match="a sequence of 8 positions needs 9 rows, the table has 8"):
        load_graph(b).run(np.zeros((1, 8), np.int32))


def test_counted_positions_number_the_real_tokens_left_or_right_padded(rng):
    """positions 2: the running count of ids other than the padding id, 0 at the padding id, so a
    sentence gets the same rows wherever its padding is (RoBERTa's position ids)."""
    b, _ = gather_graph(rng, 10, 4, (None, None), positions=2, padding_id=1)
    pad = 1
    ids = np.array([[7, 8, 9, pad, pad], [pad, pad, 7, 8, 9], [pad, 7, pad, 8, 9]], np.int32)
    got = check_graph(b, ids, threads=THREADS)
    table = load_graph(b).run(np.array([[0, 0, 0, 0, 0, 0, 0, 0, 0]], np.int32), raw=True)[0]  # rows 1..9
    pad_row = load_graph(b).run(np.array([[pad]], np.int32), raw=True)[0, 0]
    for row, counts in zip(got, [[1, 2, 3, 0, 0], [0, 0, 1, 2, 3], [0, 1, 0, 2, 3]]):
        for value, count in zip(row, counts):
            np.testing.assert_array_equal(value, table[count - 1] if count else pad_row)


def test_gather_refuses_an_unknown_positions_mode():
    b = GraphBuilder()
    ids = b.input("ids", (1, 4), "int32")
    b.output(b.gather(b.constant("table", np.zeros((4, 2), np.int8), "int8", scale=np.ones(4, np.float32)), ids,
                      0.1, 128, positions=3))
    with pytest.raises(ValueError, match="'positions' 3 is not 0, 1 or 2"):
        load_graph(b)


# -- LAYER_NORM ------------------------------------------------------------------------------


def layer_norm_graph(rng, shape, act=(0, 255), special=None, wide_in=False, wide_out=False):
    h = shape[-1]
    s_in, z_in = (200 / 32767, 0) if wide_in else (0.04, 120)
    x = rng.integers(-32767, 32768, shape).astype(np.int32) if wide_in else u8(rng, shape)
    if special == "constant_row":
        x[0, 0] = 77  # zero variance: every t is 0, the output is the bias
    if special == "outlier":
        x[...] = np.clip(z_in + rng.normal(0, 4, shape), 0, 255).astype(np.uint8)
        x[..., 0] = 255
    gamma = rng.normal(1, 0.5, h).astype(np.float32)
    gamma[: min(2, h)] = [-0.7, 0.0][: min(2, h)]
    beta = rng.normal(0, 0.3, h).astype(np.float32)
    if special == "tiny_gamma":  # beta in units of t leaves int32: the offset saturates
        gamma[2:4], beta[2:4] = [1e-30, -1e-30], [0.5, -3.0]
    s_out, z_out = (6 / 32767, 0) if wide_out else quant.choose_qparams(-6, 6)
    b = GraphBuilder()
    xt = b.input("x", shape, "int32" if wide_in else "uint8", s_in, z_in)
    b.output(b.layer_norm(xt, gamma, beta, s_out, z_out, act_min=act[0], act_max=act[1], wide=wide_out))
    return b, x, (s_in, z_in, gamma, beta, s_out, z_out)


LAYER_NORM_CASES = {
    "2x5x384": dict(shape=(2, 5, 384)),
    "3x7": dict(shape=(3, 7)),
    "width1": dict(shape=(4, 1)),
    "constant_row": dict(shape=(2, 3, 16), special="constant_row"),
    "outlier": dict(shape=(2, 4, 64), special="outlier"),
    "tiny_gamma": dict(shape=(3, 20), special="tiny_gamma"),
    "act_20_230": dict(shape=(2, 6, 32), act=(20, 230)),
    "wide_in_2x5x384": dict(shape=(2, 5, 384), wide_in=True),
    "wide_out_2x5x384": dict(shape=(2, 5, 384), wide_out=True),
    "wide_out_3x7": dict(shape=(3, 7), wide_out=True),
    "wide_out_constant_row": dict(shape=(2, 3, 16), special="constant_row", wide_out=True),
    "wide_out_tiny_gamma": dict(shape=(3, 20), special="tiny_gamma", wide_out=True),
    "wide_in_out_2x5x384": dict(shape=(2, 5, 384), wide_in=True, wide_out=True),
    "wide_in_out_width1": dict(shape=(4, 1), wide_in=True, wide_out=True),
}


@pytest.mark.parametrize("case", LAYER_NORM_CASES.values(), ids=LAYER_NORM_CASES.keys())
def test_layer_norm(case, rng):
    b, x, _ = layer_norm_graph(rng, **case)
    check_graph(b, x, threads=THREADS)


def test_layer_norm_tracks_float_within_half_a_step(rng):
    """The integer method against float LayerNorm (eps 1e-12) on the same dequantized input:
    one rounding of half an output step, plus the integer root's and the Q15 quotient's small
    errors (measured: max 0.53, mean 0.250 steps)."""
    b, x, (s_in, z_in, gamma, beta, s_out, z_out) = layer_norm_graph(rng, (4, 16, 384))
    got = (load_graph(b).run(x, raw=True).astype(np.float64) - z_out) * s_out
    real = (x.astype(np.float64) - z_in) * s_in
    mean, var = real.mean(-1, keepdims=True), real.var(-1, keepdims=True)
    want = np.clip((real - mean) / np.sqrt(var + 1e-12) * gamma + beta, (0 - z_out) * s_out, (255 - z_out) * s_out)
    err = np.abs(got - want) / s_out
    assert err.max() <= 0.55, err.max()
    assert err.mean() < 0.26


def test_layer_norm_into_a_wide_output_tracks_float_within_its_finer_step(rng):
    """A wide output (a post-norm encoder's residual stream) is the same arithmetic clamped to
    +-32767 instead of uint8. Its error against float: the requantization's rounding (half a
    step, and up to a quarter more from the rounding before its right shift) plus t's and the
    offset's roundings in Q15 (|gamma| sqrt(H) / 2^15 in real units); on average about a
    hundredth of a uint8 output's step over the same range."""
    b, x, (s_in, z_in, gamma, beta, s_out, z_out) = layer_norm_graph(rng, (4, 16, 384), wide_in=True, wide_out=True)
    got = check_graph(b, x, threads=(1, 2))
    assert got.dtype == np.int32 and np.abs(got).max() <= 32767
    real = x.astype(np.float64) * s_in
    mean, var = real.mean(-1, keepdims=True), real.var(-1, keepdims=True)
    want = np.clip((real - mean) / np.sqrt(var + 1e-12) * gamma + beta, -32767 * s_out, 32767 * s_out)
    err = np.abs(got * s_out - want)
    bound = 0.75 * s_out + 1.01 * np.abs(gamma) * np.sqrt(384) / 2**15
    assert (err <= bound).all(), (err / bound).max()
    assert err.mean() < 0.01 * quant.choose_qparams(-6, 6)[0]


def test_layer_norm_keeps_beta_when_gamma_is_tiny(rng):
    """A channel whose gamma is too small for beta in t's units outputs round(beta / s_out) + z,
    as float does (t moves it by far less than a step)."""
    gamma = np.array([1e-6, -1e-9, 1e-30, 0.0, 1.0, -1.0, 0.5, 2.0], np.float32)
    beta = np.array([1.0, -0.5, 0.7, 0.3, 0.0, 0.1, -0.2, 0.05], np.float32)
    b = GraphBuilder()
    x = b.input("x", (3, 8), "uint8", 0.05, 128)
    b.output(b.layer_norm(x, gamma, beta, 0.01, 100))
    data = u8(rng, (3, 8))
    got = check_graph(b, data, threads=THREADS)
    np.testing.assert_array_equal(got[:, :4], np.broadcast_to(np.clip(np.round(beta[:4] / 0.01) + 100, 0, 255), (3, 4)))


def test_layer_norm_refuses_a_width_mismatch(rng):
    b = GraphBuilder()
    xt = b.input("x", (1, None, None), "uint8", 0.1, 128)
    b.output(b.layer_norm(xt, np.ones(8), np.zeros(8), 0.05, 128))
    with pytest.raises(ValueError, match="the last axis must have the 8 channels of gamma"):
        load_graph(b).run(np.zeros((1, 2, 9), np.uint8), raw=True)


# -- SOFTMAX ---------------------------------------------------------------------------------


def softmax_graph(rng, shape, mask=False, scale=0.08, reach=None, spread=2.0):
    """SOFTMAX of uint8 logits; with `reach` R, a float relative bias [heads, 2R - 1] of standard
    deviation `spread` (in real units) added by key-query distance."""
    x = u8(rng, shape)
    b = GraphBuilder()
    xt = b.input("x", shape, "uint8", scale, 128)
    inputs = [x]
    m = None
    if mask:
        m = b.input("mask", (shape[0], shape[-1]), "int32")
        keep = (rng.random((shape[0], shape[-1])) < 0.7).astype(np.int32)
        keep[0, -1] = 1
        keep[-1, :] = 0  # a fully masked element: its rows are all 0
        inputs.append(keep)
    relative = None if reach is None else rng.normal(0, spread, (shape[1], 2 * reach - 1)).astype(np.float32)
    b.output(b.softmax(xt, m, relative=relative))
    return b, inputs


SOFTMAX_CASES = {
    "2x3x5x5": dict(shape=(2, 3, 5, 5)),
    "rows_of_1": dict(shape=(3, 1)),
    "long_rows_300": dict(shape=(2, 300)),
    "mask": dict(shape=(3, 4, 6, 6), mask=True),
    "mask_rank3": dict(shape=(2, 7, 9), mask=True),
    "small_scale": dict(shape=(2, 2, 4, 8), scale=0.002),
    "relative": dict(shape=(2, 3, 5, 5), reach=5),
    "relative_mask": dict(shape=(3, 4, 6, 6), mask=True, reach=6),
    "relative_reach_past_the_sequence": dict(shape=(2, 2, 4, 4), reach=9),
    "relative_fewer_queries": dict(shape=(1, 2, 3, 7), reach=7),
    # Biases of hundreds of steps: logits far past the table's 256th entry.
    "relative_wide_bias": dict(shape=(2, 2, 6, 6), reach=6, scale=0.01, spread=5.0),
}


@pytest.mark.parametrize("case", SOFTMAX_CASES.values(), ids=SOFTMAX_CASES.keys())
def test_softmax(case, rng):
    b, inputs = softmax_graph(rng, **case)
    check_graph(b, inputs, threads=THREADS)


def assert_tracks_float_softmax(b, x, keep, logits):
    """The engine's SOFTMAX within 1.5/256 of float softmax of `logits` over the kept keys, and 0
    at the others."""
    got = load_graph(b).run([x, keep], raw=True).astype(np.float64) / 256
    k = np.broadcast_to(keep[:, None, None, :] != 0, x.shape)
    e = np.where(k, np.exp(logits - np.where(k, logits, -np.inf).max(-1, keepdims=True)), 0)
    with np.errstate(invalid="ignore"):
        want = np.nan_to_num(e / e.sum(-1, keepdims=True))
    assert np.abs(got - want).max() <= 1.5 / 256
    assert (got[~k] == 0).all()


def test_softmax_tracks_float_and_masks(rng):
    b, (x, keep) = softmax_graph(rng, (3, 2, 8, 8), mask=True)
    assert_tracks_float_softmax(b, x, keep, (x.astype(np.float64) - 128) * np.float32(0.08))


@pytest.mark.parametrize("scale,spread", [(0.08, 2.0), (0.01, 5.0)])
def test_softmax_with_relative_bias_tracks_float(rng, scale, spread):
    b, (x, keep) = softmax_graph(rng, (2, 3, 7, 7), mask=True, scale=scale, reach=9, spread=spread)
    relative = next(t for t in b.tensors if t.name.endswith("_relative"))
    bias = relative.data.astype(np.float64) * np.float32(scale)  # as the engine holds it
    distance = np.arange(7)[None, :] - np.arange(7)[:, None]
    logits = (x.astype(np.float64) - 128) * np.float32(scale) + bias[:, distance + 8][None]
    assert_tracks_float_softmax(b, x, keep, logits)


def relative_softmax(shape, bias: np.ndarray, dtype="int32"):
    b = GraphBuilder()
    xt = b.input("x", shape, "uint8", 0.1, 128)
    table = b.constant("exp", quant.exp_table(0.1, spread=1000))
    bt = b.constant("relative", bias, dtype)
    b.output(b._unary("SOFTMAX", xt, 1.0 / 256, 0, "softmax", relative=1, _inputs=[xt, table, bt]))
    return b


@pytest.mark.parametrize("shape,why", [
    ((2, 3, 4), r"must be \[batch, 2, q <= 3, k <= 3\], got \[2, 3, 4\]"),
    ((1, 3, 3, 3), r"must be \[batch, 2, q <= 3, k <= 3\], got \[1, 3, 3, 3\]"),
    ((1, 2, 4, 3), r"q <= 3, k <= 3\], got \[1, 2, 4, 3\]"),
    ((1, 2, 3, 4), r"q <= 3, k <= 3\], got \[1, 2, 3, 4\]"),
])
def test_softmax_relative_bias_refuses_inputs_it_does_not_cover(rng, shape, why):
    b = relative_softmax((None, None, None, None)[: len(shape)], np.zeros((2, 5), np.int32))
    with pytest.raises(ValueError, match=why):
        load_graph(b).run(u8(rng, shape), raw=True)


@pytest.mark.parametrize("bias,dtype,why", [
    (np.zeros((2, 4), np.int32), "int32", r"must be \[heads, 2 R - 1\], got \[2, 4\]"),
    (np.zeros(5, np.int32), "int32", r"must be \[heads, 2 R - 1\], got \[5\]"),
    (np.zeros((2, 5), np.float32), "float32", "relative bias .* int32"),
    (np.full((2, 5), 1 << 25, np.int32), "int32", r"entry 0 is 33554432, outside \+-2\^24"),
])
def test_softmax_refuses_a_bad_relative_bias(bias, dtype, why):
    with pytest.raises(intinfer.ModelError, match=why):
        load_graph(relative_softmax((1, 2, 3, 3), bias, dtype))


def test_softmax_relative_needs_its_bias_input():
    b = GraphBuilder()
    xt = b.input("x", (1, 2, 3, 3), "uint8", 0.1, 128)
    table = b.constant("exp", quant.exp_table(0.1))
    b.output(b._unary("SOFTMAX", xt, 1.0 / 256, 0, "softmax", relative=1, _inputs=[xt, table]))
    with pytest.raises(intinfer.ModelError, match="input"):
        load_graph(b)


def test_softmax_refuses_a_mask_of_the_wrong_shape(rng):
    b = GraphBuilder()
    xt, mt = b.input("x", (None, 3, None), "uint8", 0.1, 128), b.input("mask", (None, None), "int32")
    b.output(b.softmax(xt, mt))
    with pytest.raises(ValueError, match=r"mask must be \[2, 4\], got \[2, 5\]"):
        load_graph(b).run([u8(rng, (2, 3, 4)), np.ones((2, 5), np.int32)], raw=True)


def test_softmax_refuses_a_mask_that_is_not_int32():
    b = GraphBuilder()
    xt, mt = b.input("x", (2, 4), "uint8", 0.1, 128), b.input("mask", (2, 4), "float32")
    b.output(b.softmax(xt, mt))
    with pytest.raises(intinfer.ModelError, match="mask .* int32"):
        load_graph(b)


def test_softmax_table_must_be_an_exponential(rng):
    b, _ = softmax_graph(rng, (2, 4))
    table = next(t for t in b.tensors if t.name.endswith("_exp"))
    table.data = table.data.copy()
    table.data[5] = table.data[4] + 1
    with pytest.raises(intinfer.ModelError, match="exp table must decrease"):
        load_graph(b)


# -- MATMUL ----------------------------------------------------------------------------------


def matmul_graph(rng, a_shape, b_shape, transpose_b=False, alpha=1.0, act=(0, 255)):
    a, bv = u8(rng, a_shape), u8(rng, b_shape)
    (s_a, z_a), (s_b, z_b) = (0.03, 110), (0.05, 140)
    acc = np.matmul(a.astype(np.int64) - z_a, np.swapaxes(bv.astype(np.int64) - z_b, -1, -2) if transpose_b
                    else bv.astype(np.int64) - z_b) * (s_a * s_b * alpha)
    s_out, z_out = quant.choose_qparams(*np.quantile(acc, [0.02, 0.98]))
    g = GraphBuilder()
    at, bt = g.input("a", a_shape, "uint8", s_a, z_a), g.input("b", b_shape, "uint8", s_b, z_b)
    g.output(g.matmul(at, bt, s_out, z_out, transpose_b=transpose_b, alpha=alpha, act_min=act[0], act_max=act[1]))
    return g, [a, bv]


MATMUL_CASES = {
    "2x3x5x7_by_7x4": dict(a_shape=(2, 3, 5, 7), b_shape=(2, 3, 7, 4)),
    "qk_transposed_2x12x9x32_alpha": dict(a_shape=(2, 12, 9, 32), b_shape=(2, 12, 9, 32), transpose_b=True,
                                          alpha=32**-0.5),
    "rank2_k1": dict(a_shape=(5, 1), b_shape=(1, 6)),
    "rank3_act": dict(a_shape=(3, 4, 13), b_shape=(3, 13, 5), act=(30, 200)),
}


@pytest.mark.parametrize("case", MATMUL_CASES.values(), ids=MATMUL_CASES.keys())
def test_matmul(case, rng):
    g, inputs = matmul_graph(rng, **case)
    check_graph(g, inputs, threads=THREADS)


def test_matmul_refuses_mismatched_shapes(rng):
    g = GraphBuilder()
    at, bt = g.input("a", (None, None, None), "uint8", 0.1, 128), g.input("b", (None, None, None), "uint8", 0.1, 128)
    g.output(g.matmul(at, bt, 0.5, 128))
    m = load_graph(g)
    with pytest.raises(ValueError, match="operands must have the same rank"):
        m.run([u8(rng, (2, 5, 3)), u8(rng, (3, 3, 4))], raw=True)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        m.run([u8(rng, (2, 5, 2)), u8(rng, (2, 3, 4))], raw=True)


# -- MASKED_MEAN -----------------------------------------------------------------------------


def test_masked_mean(rng):
    x = u8(rng, (3, 7, 20))
    keep = (rng.random((3, 7)) < 0.6).astype(np.int32)
    keep[0] = 1
    keep[2] = 0  # nothing kept: zeros, as sentence-transformers' clamped count gives
    b = GraphBuilder()
    xt, mt = b.input("x", (None, None, 20), "uint8", 0.05, 128), b.input("mask", (None, None), "int32")
    b.output(b.masked_mean(xt, mt))
    got = check_graph(b, [x, keep], threads=THREADS)
    assert got.dtype == np.float32 and got.shape == (3, 20)
    assert (got[2] == 0).all()
    want = ((x[0].astype(np.float64) - 128) * 0.05).mean(0)
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-6)


def test_int_inputs_accept_any_integer_dtype_that_fits(rng):
    b, ids = gather_graph(rng, 10, 4, (1, 5))
    m = load_graph(b)
    assert (m.run(ids.astype(np.int64)) == m.run(ids)).all()
    with pytest.raises(ValueError, match="values do not fit int32"):
        m.run(np.full((1, 5), 2**40, np.int64))


# -- wide activations (the residual stream) ----------------------------------------------


def test_fully_connected_to_wide(rng):
    """A wide output keeps small values next to large ones: the error is half a 16-bit step."""
    x = u8(rng, (3, 5, 40))
    wq, ws = quant.quantize_weights(rng.normal(0, 0.1, (24, 40)))
    bias = quant.quantize_bias(np.where(np.arange(24) == 3, 60.0, 0.0), 0.02, ws)  # one outlier channel
    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", 0.02, 128)
    b.output(b.fully_connected(xt, b.constant("w", wq, scale=ws), b.constant("b", bias), 70 / 32767, None, wide=True))
    got = check_graph(b, x, threads=THREADS)
    assert got.dtype == np.int32 and np.abs(got).max() <= 32767
    real = oracle.fully_connected_float(x, 0.02, 128, wq, ws, bias)
    assert np.abs(got * (70 / 32767) - real).max() <= 0.51 * 70 / 32767


def test_gather_to_wide(rng):
    wq, ws = quant.quantize_weights(rng.normal(0, 0.05, (30, 12)))
    b = GraphBuilder()
    ids = b.input("ids", (2, 7), "int32")
    b.output(b.gather(b.constant("table", wq, "int8", scale=ws), ids, 0.3 / 32767, None, wide=True))
    got = check_graph(b, rng.integers(0, 30, (2, 7)).astype(np.int32), threads=THREADS)
    assert got.dtype == np.int32


def add_wide_graph(rng, a_wide, a_shape, b_shape):
    """ADD into a wide output of a wide (or uint8) a and a wide b, and its inputs."""
    a = rng.integers(-32767, 32768, a_shape).astype(np.int32) if a_wide else u8(rng, a_shape)
    bv = rng.integers(-20000, 20000, b_shape).astype(np.int32)
    b = GraphBuilder()
    at = b.input("a", a.shape, "int32" if a_wide else "uint8", 90 / 32767 if a_wide else 0.05, 0 if a_wide else 120)
    bt = b.input("b", b_shape, "int32", 40 / 32767, 0)
    b.output(b.add(at, bt, 120 / 32767, None, wide=True))
    return b, [a, bv]


ADD_WIDE_CASES = {
    "wide_wide": dict(a_wide=True, a_shape=(2, 6, 16), b_shape=(2, 6, 16)),
    "u8_wide": dict(a_wide=False, a_shape=(2, 6, 16), b_shape=(2, 6, 16)),
    "broadcast_rows": dict(a_wide=True, a_shape=(2, 6, 16), b_shape=(6, 16)),
    "u8_tails_13": dict(a_wide=False, a_shape=(3, 5, 13), b_shape=(5, 13)),
    "broadcast_scalar_21": dict(a_wide=True, a_shape=(2, 3, 21), b_shape=(2, 3, 1)),
}


@pytest.mark.parametrize("case", ADD_WIDE_CASES.values(), ids=ADD_WIDE_CASES.keys())
def test_add_into_wide(case, rng):
    """The residual add: a wide (or uint8) operand plus a wide one, broadcasting, with rows that
    leave vector tails; within one 16-bit step of the real sum."""
    b, (a, bv) = add_wide_graph(rng, **case)
    got = check_graph(b, [a, bv], threads=THREADS)
    assert got.shape == np.broadcast_shapes(case["a_shape"], case["b_shape"])
    a_real = a.astype(np.float64) * 90 / 32767 if case["a_wide"] else (a.astype(np.float64) - 120) * 0.05
    real = a_real + bv.astype(np.float64) * 40 / 32767
    assert np.abs(got * 120 / 32767 - np.clip(real, -120, 120)).max() <= 1.01 * 120 / 32767


def test_layer_norm_of_wide_input_with_outlier_channels(rng):
    """The case wide activations exist for: a few channels 100x larger than the rest before the
    norm, which scales them back down (as BERT's residual stream and its LayerNorm weights do).
    From a wide input the normal channels survive; an 8-bit input of the same values loses them."""
    real = rng.normal(0, 1, (2, 8, 384))
    real[..., :3] *= 100
    gamma, beta = rng.normal(1, 0.1, 384), rng.normal(0, 0.1, 384)
    gamma[:3] = 0.01
    mean, var = real.mean(-1, keepdims=True), real.var(-1, keepdims=True)
    want = (real - mean) / np.sqrt(var + 1e-12) * gamma + beta
    s_out, z_out = quant.choose_qparams(want.min(), want.max())
    errors = {}
    for wide in (True, False):
        b = GraphBuilder()
        if wide:
            s_in = np.abs(real).max() / 32767
            x = np.clip(np.rint(real / s_in), -32767, 32767).astype(np.int32)
            xt = b.input("x", x.shape, "int32", s_in, 0)
        else:
            s_in, z_in = quant.choose_qparams(real.min(), real.max())
            x = np.clip(np.rint(real / np.float32(s_in)) + z_in, 0, 255).astype(np.uint8)
            xt = b.input("x", x.shape, "uint8", s_in, z_in)
        b.output(b.layer_norm(xt, gamma, beta, s_out, z_out))
        got = check_graph(b, x, threads=(1, 2))
        errors[wide] = np.abs(((got.astype(np.float64) - z_out) * s_out - want)[..., 3:]).mean() / s_out
    assert errors[True] < 0.4, errors
    assert errors[False] > 3 * errors[True], errors


def wide_input_fc_graph(rng, shape, n, bound, out="u8"):
    """A LUT into a wide output (the FFN's GELU, entries within +-bound) read by a FULLY_CONNECTED
    with a wide input, and the graph's uint8 input."""
    k = shape[-1]
    x = u8(rng, shape)
    table = np.rint(np.tanh(np.linspace(-3, 3, 256)) * bound).astype(np.int32)
    w, ws = quant.quantize_weights(rng.normal(0, 0.05, (n, k)))
    bias = rng.integers(-5000, 5000, n).astype(np.int32)
    b = GraphBuilder()
    xt = b.input("x", shape, "uint8", 0.05, 128)
    h = b.lut(xt, table, 1.0 / bound, 0, wide=True)
    scale = {"u8": 0.05, "float": None, "wide": 20 / 32767}[out]
    b.output(b.fully_connected(h, b.constant("w", w, "int8", scale=ws), b.constant("b", bias), scale,
                               None if out == "wide" else (128 if scale else None), wide=out == "wide",
                               input_bound=bound))
    return b, x


WIDE_INPUT_FC_CASES = {
    "u8_out_2x5x96": dict(shape=(2, 5, 96), n=40, bound=2752),
    "float_out_3x37": dict(shape=(3, 37), n=19, bound=32767),
    "wide_out_2x9x64": dict(shape=(2, 9, 64), n=33, bound=5504),
    "one_row_many_channels": dict(shape=(1, 1, 48), n=130, bound=1000),
    "rows_13_K300_N40": dict(shape=(13, 300), n=40, bound=28000, out="float"),
}


@pytest.mark.parametrize("case", WIDE_INPUT_FC_CASES.values(), ids=WIDE_INPUT_FC_CASES.keys())
def test_fully_connected_of_a_wide_lut_output(case, rng):
    """The FFN's second linear reading its GELU's output wide: LUT into int32 entries, then the
    int16-activation GEMM (gemm_s16_table) on every path, uint8 / float / wide outputs."""
    b, x = wide_input_fc_graph(rng, **case)
    got = check_graph(b, x, threads=THREADS)
    assert got.shape == case["shape"][:-1] + (case["n"],)


def test_a_wide_input_is_read_within_its_bound(rng):
    """Values of a wide input beyond the op's input_bound are clamped to it (so the accumulator
    bound proven at load holds whatever the input): the same result as the input clamped first."""
    x = rng.integers(-32767, 32768, (4, 24)).astype(np.int32)
    w, ws = quant.quantize_weights(rng.normal(0, 0.05, (10, 24)))
    outs = {}
    for name, data in (("raw", x), ("clamped", np.clip(x, -300, 300))):
        b = GraphBuilder()
        xt = b.input("x", x.shape, "int32", 0.01, 0)
        b.output(b.fully_connected(xt, b.constant("w", w, "int8", scale=ws), b.constant("b", np.zeros(10, np.int32)),
                                   None, None, input_bound=300))
        outs[name] = check_graph(b, data, threads=(1, 2))
    np.testing.assert_array_equal(outs["raw"], outs["clamped"])
    assert not np.array_equal(np.clip(x, -300, 300), x)


def test_a_wide_input_refuses_what_could_overflow_or_is_not_int8(rng):
    def load(k, bound, dtype="int8"):
        b = GraphBuilder()
        xt = b.input("x", (1, k), "int32", 0.01, 0)
        w = np.full((2, k), 7 if dtype == "int4" else 127, np.int8)
        b.output(b.fully_connected(xt, b.constant("w", w, dtype, scale=np.full(2, 0.01)),
                                   b.constant("b", np.zeros(2, np.int32)), None, None, input_bound=bound))
        return load_graph(b)

    load(516, 32767)  # 516 * 127 * 32767 < 2^31
    with pytest.raises(intinfer.ModelError, match=r"reduction depth 517 with inputs within \+-32767 could overflow"):
        load(517, 32767)
    load(6144, 2752)
    with pytest.raises(intinfer.ModelError, match="a wide input takes dense int8 weights"):
        load(16, 100, "int4")
    with pytest.raises(intinfer.ModelError, match=r"input_bound 0 is outside \[1, 32767\]"):
        load(16, 0)
    b = GraphBuilder()
    xt = b.input("x", (1, 4), "uint8", 0.01, 128)
    b.output(b.fully_connected(xt, b.constant("w", np.ones((2, 4), np.int8), scale=np.full(2, 0.01)),
                               b.constant("b", np.zeros(2, np.int32)), 0.1, 128, input_bound=100))
    with pytest.raises(intinfer.ModelError, match=r"input_bound applies to a wide \(int32\) input; input .x. is not"):
        load_graph(b)


def test_a_wide_lut_refuses_entries_beyond_16_bits(rng):
    b = GraphBuilder()
    xt = b.input("x", (2, 3), "uint8", 0.05, 128)
    table = np.zeros(256, np.int32)
    table[7] = 40000
    b.output(b.lut(xt, table, 0.001, 0, wide=True))
    with pytest.raises(intinfer.ModelError, match=r"entry 7 is 40000, outside a wide output's \+-32767"):
        load_graph(b)


def test_wide_tensors_need_zero_point_zero():
    b = GraphBuilder()
    xt = b.input("x", (2, 4), "int32", 0.01, 5)
    b.output(b.layer_norm(xt, np.ones(4), np.zeros(4), 0.05, 128))
    with pytest.raises(intinfer.ModelError, match=r"zero point 5 outside \[0, 0\] for int32"):
        load_graph(b)


def test_reshape_and_transpose_keep_a_wide_tensor_wide(rng):
    x = rng.integers(-32767, 32768, (2, 3, 4)).astype(np.int32)
    b = GraphBuilder()
    xt = b.input("x", x.shape, "int32", 0.01, 0)
    y = b.transpose(b.reshape(xt, [0, 12]), [1, 0])
    assert y.dtype == "int32"
    b.output(y)
    got = check_graph(b, x)
    assert got.dtype == np.int32 and (got == x.reshape(2, 12).T).all()
