"""Each op as a one-op model, run in the engine and compared bit for bit with tests/oracle.py;
then what run() does around the graph, and the intinfer.quant helpers. Malformed files and bad
inputs are test_model_file.py's."""

import numpy as np
import pytest

import oracle
from conftest import assert_same, check_graph, load_graph
from intinfer import quant
from intinfer.builder import GraphBuilder

# Thread counts for the ops that split work: results may not depend on the split.
THREADS = (1, 2, 3)


def u8(rng, shape) -> np.ndarray:
    return rng.integers(0, 256, shape, dtype=np.uint8)


def random_qparams(rng) -> tuple[float, int]:
    return float(np.float32(rng.uniform(0.005, 0.05))), int(rng.integers(0, 256))


def out_qparams(real, tail: float = 0.02) -> tuple[float, int]:
    """Output parameters covering the bulk of `real`: realistic, and a few values saturate."""
    lo, hi = np.quantile(np.asarray(real, np.float64), [tail, 1 - tail])
    return quant.choose_qparams(lo, hi)


def act_range(act, scale: float, zero_point: int) -> tuple[int, int]:
    """`act` is a fused activation name or an explicit (act_min, act_max)."""
    if isinstance(act, tuple):
        return act
    return quant.activation_range(act, scale, zero_point)


# -- CONV2D ----------------------------------------------------------------------------------


def conv_graph(rng, n, h, w, cin, cout, k, stride=1, pad=0, dilation=1, groups=1, act=None, dynamic_batch=False):
    """A one-conv graph with random weights and calibrated output parameters, and its input."""
    kh, kw = (k, k) if isinstance(k, int) else k
    s_in, z_in = random_qparams(rng)
    x = u8(rng, (n, h, w, cin))
    wq = rng.integers(-127, 128, (cout, kh, kw, cin // groups)).astype(np.int8)
    s_w = rng.uniform(0.002, 0.02, cout).astype(np.float32)
    # Of the order of the accumulator's spread, so that the bias matters without dominating.
    bias = rng.normal(0, 3000 * np.sqrt(kh * kw * cin // groups), cout).astype(np.int32)
    acc = oracle.conv2d_accumulate(x, z_in, wq, bias, stride, pad, dilation, groups)
    s_out, z_out = out_qparams(acc * (s_in * s_w.astype(np.float64)))
    act_min, act_max = act_range(act, s_out, z_out)

    b = GraphBuilder()
    xt = b.input("x", (None if dynamic_batch else n, h, w, cin), "uint8", s_in, z_in)
    y = b.conv2d(xt, b.constant("w", wq, "int8", scale=s_w), b.constant("bias", bias, "int32"), s_out, z_out,
                 stride=stride, padding=pad, dilation=dilation, groups=groups, act_min=act_min, act_max=act_max)
    b.output(y)
    return b, x


CONV_CASES = {
    "3x3": dict(n=1, h=8, w=8, cin=3, cout=7, k=3),
    "3x3_pad1_relu6": dict(n=1, h=8, w=8, cin=3, cout=8, k=3, pad=1, act="relu6"),
    "1x1_cin1_cout1": dict(n=1, h=5, w=5, cin=1, cout=1, k=1),
    "1x1_K7_cout17": dict(n=2, h=4, w=3, cin=7, cout=17, k=1),
    "3x3_K27_cout17": dict(n=1, h=6, w=7, cin=3, cout=17, k=3, pad=1),
    "5x5_cin17_K425": dict(n=1, h=9, w=9, cin=17, cout=3, k=5, pad=2),
    "stride2_pad1": dict(n=1, h=9, w=9, cin=5, cout=8, k=3, stride=2, pad=1),
    "stride2_pads_0011": dict(n=1, h=8, w=8, cin=3, cout=4, k=3, stride=2, pad=(0, 0, 1, 1)),
    "stride2_pads_1203": dict(n=1, h=7, w=10, cin=4, cout=5, k=3, stride=2, pad=(1, 2, 0, 3)),
    "1x3_kernel_stride_2x1": dict(n=1, h=7, w=6, cin=3, cout=4, k=(1, 3), stride=(2, 1), pad=(0, 1)),
    "dilation2": dict(n=1, h=10, w=9, cin=4, cout=6, k=3, pad=2, dilation=2),
    "dilation2_stride2": dict(n=1, h=11, w=11, cin=3, cout=5, k=3, stride=2, dilation=2),
    "1x1_input_1x1_kernel": dict(n=1, h=1, w=1, cin=17, cout=5, k=1),
    "1x1_input_3x3_kernel": dict(n=1, h=1, w=1, cin=3, cout=7, k=3, pad=1),
    "kernel_larger_than_input": dict(n=1, h=2, w=2, cin=3, cout=4, k=5, pad=2),
    "kernel_larger_than_input_stride2": dict(n=2, h=3, w=2, cin=2, cout=3, k=5, stride=2, pad=(2, 2, 1, 3)),
    "batch3": dict(n=3, h=6, w=5, cin=3, cout=4, k=3, pad=1),
    "depthwise_cm1": dict(n=1, h=7, w=7, cin=7, cout=7, k=3, pad=1, groups=7),
    "depthwise_cm2_stride2": dict(n=1, h=8, w=8, cin=3, cout=6, k=3, stride=2, pad=1, groups=3),
    "depthwise_dilation2_batch3_relu": dict(n=3, h=9, w=8, cin=17, cout=17, k=3, pad=2, dilation=2, groups=17,
                                            act="relu"),
    "depthwise_5x5_stride2_pads_1122": dict(n=1, h=9, w=9, cin=8, cout=8, k=5, stride=2, pad=(1, 1, 2, 2), groups=8),
    "groups2": dict(n=1, h=6, w=6, cin=6, cout=4, k=3, pad=1, groups=2),
    "groups2_3x1_odd": dict(n=2, h=5, w=7, cin=14, cout=6, k=(3, 1), pad=(1, 0), groups=2),
    "act_40_180": dict(n=1, h=6, w=6, cin=8, cout=16, k=3, pad=1, act=(40, 180)),
    "16_to_32": dict(n=1, h=12, w=12, cin=16, cout=32, k=3, pad=1),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d(case, rng):
    b, x = conv_graph(rng, **case)
    check_graph(b, x, threads=THREADS)


# -- FULLY_CONNECTED -------------------------------------------------------------------------


def fc_graph(rng, lead, k, n, act=None, dynamic_batch=False, float_output=False):
    """A one-FC graph on input [*lead, k], and its input; float_output: real-valued output."""
    s_in, z_in = random_qparams(rng)
    x = u8(rng, (*lead, k))
    wq = rng.integers(-127, 128, (n, k)).astype(np.int8)
    s_w = rng.uniform(0.002, 0.02, n).astype(np.float32)
    bias = rng.normal(0, 3000 * np.sqrt(k), n).astype(np.int32)
    acc = oracle.fully_connected_accumulate(x, z_in, wq, bias)
    s_out, z_out = out_qparams(acc * (s_in * s_w.astype(np.float64)))
    act_min, act_max = act_range(act, s_out, z_out)
    if float_output:
        s_out = z_out = None

    b = GraphBuilder()
    shape = ((None,) + tuple(lead[1:]) if dynamic_batch else tuple(lead)) + (k,)
    xt = b.input("x", shape, "uint8", s_in, z_in)
    y = b.fully_connected(xt, b.constant("w", wq, "int8", scale=s_w), b.constant("bias", bias, "int32"), s_out,
                          z_out, act_min=act_min, act_max=act_max)
    b.output(y)
    return b, x


FC_CASES = {
    "K1_N1": dict(lead=(4,), k=1, n=1),
    "K7_N17": dict(lead=(3,), k=7, n=17),
    "K13_N5_rank3": dict(lead=(2, 3), k=13, n=5),
    "K33_N10": dict(lead=(5,), k=33, n=10),
    "K100_N3_batch1_relu": dict(lead=(1,), k=100, n=3, act="relu"),
    "K64_N64": dict(lead=(8,), k=64, n=64),
    "K20_N9_act_30_220": dict(lead=(6,), k=20, n=9, act=(30, 220)),
    "K33_N10_float_output": dict(lead=(5,), k=33, n=10, float_output=True),
    "K7_N1000_rank3_float_output": dict(lead=(2, 3), k=7, n=1000, float_output=True),
}


@pytest.mark.parametrize("case", FC_CASES.values(), ids=FC_CASES.keys())
def test_fully_connected(case, rng):
    b, x = fc_graph(rng, **case)
    check_graph(b, x, threads=THREADS)


def telling_apart(enc, alt, count: int) -> np.ndarray:
    """Accumulators on which requant with the (m, e) encodings `enc` and `alt` differs, with
    results in [1, 200]. Two close multipliers can only round differently next to the ties
    x * M = k + 1/2, so only those neighbourhoods are searched."""
    real = enc[0] * 2.0 ** (enc[1] - 31)
    ties = np.round((np.arange(1, 200) + 0.5) / real).astype(np.int64)
    x = (ties[:, None] + np.arange(-4, 5)).ravel()
    return x[oracle.requant(x, *enc) != oracle.requant(x, *alt)][:count]


@pytest.mark.parametrize("op", ["FULLY_CONNECTED", "CONV2D"])
def test_multipliers_are_encoded_exactly(op, rng):
    """Random data almost never shows a multiplier that is one or a few units off, so here each
    channel's bias is an accumulator on which it would: channels 0-5 have a multiplier whose
    mantissa * 2^31 ends in exactly .5 (the spec rounds it away from zero; half to even or
    truncation would give one less), and whose biases expose m - 1 (channels 0-2) and m + 1
    (3-5); the others expose what float32 arithmetic would make of their multiplier."""
    s_in, s_out = np.float32(1 + 2**-23), np.float32(2**21)
    # (1 + 2^-23)(1 + 2^-8) / 2^21 is exact in double: 2^-20 * (0.5 + 2^-9 + 2^-24 + 2^-32).
    ties = 6
    s_w = np.concatenate([np.full(ties, 1 + 2**-8, np.float32), rng.uniform(0.5, 1, 18).astype(np.float32)])
    bias = []
    for c, s in enumerate(s_w):
        enc = oracle.quantize_multiplier(float(s_in) * float(s) / float(s_out))
        if c < ties:
            alt = (enc[0] + (-1 if c < ties // 2 else 1), enc[1])
            bias.append(telling_apart(enc, alt, ties // 2)[c % (ties // 2)])
        else:
            alt = oracle.quantize_multiplier(float(s_in * s / s_out))
            bias.append(telling_apart(enc, alt, 1)[0])
    n = len(s_w)

    b = GraphBuilder()
    w_shape, x_shape = ((n, 1), (1, 1)) if op == "FULLY_CONNECTED" else ((n, 1, 1, 1), (1, 1, 1, 1))
    # x = z_in, so each accumulator is its bias.
    xt = b.input("x", x_shape, "uint8", s_in, 0)
    w = b.constant("w", np.ones(w_shape), "int8", scale=s_w)
    bt = b.constant("bias", bias, "int32")
    b.output(b.fully_connected(xt, w, bt, s_out, 0) if op == "FULLY_CONNECTED" else b.conv2d(xt, w, bt, s_out, 0))
    check_graph(b, np.zeros(x_shape, np.uint8))


# -- ADD -------------------------------------------------------------------------------------


ADD_CASES = {
    "same_shape": dict(a=(2, 5, 5, 3), b=(2, 5, 5, 3)),
    "broadcast_channels": dict(a=(3, 4, 5, 6), b=(1, 1, 1, 6)),
    "broadcast_both_ways": dict(a=(3, 1, 5, 1), b=(1, 4, 1, 6)),
    "broadcast_lower_rank": dict(a=(3, 4, 5, 6), b=(6,)),
    "scales_250x_apart": dict(a=(2, 4, 4, 7), b=(2, 4, 4, 7), s_a=0.002, s_b=0.5),
    "b_below_one_lsb": dict(a=(1, 3, 3, 17), b=(1, 3, 3, 17), s_a=0.05, s_b=1e-12),
    "b_dominates_broadcast": dict(a=(2, 3, 1, 5), b=(1, 3, 4, 5), s_a=1e-4, s_b=1.0),
    "equal_scales": dict(a=(1, 6, 6, 3), b=(1, 6, 6, 3), s_a=0.05, s_b=0.05, out=(0.05, 128)),
    "relu6": dict(a=(2, 4, 4, 8), b=(2, 4, 4, 8), act="relu6"),
    "act_50_200_broadcast": dict(a=(2, 4, 4, 8), b=(1, 1, 1, 8), act=(50, 200)),
}


def add_graph(rng, case):
    """A one-ADD graph for an ADD_CASES entry, and its two inputs."""
    (s_a, z_a), (s_b, z_b) = random_qparams(rng), random_qparams(rng)
    s_a, s_b = case.get("s_a", s_a), case.get("s_b", s_b)
    a, bv = u8(rng, case["a"]), u8(rng, case["b"])
    real = s_a * (a.astype(np.float64) - z_a) + s_b * (bv.astype(np.float64) - z_b)
    s_out, z_out = case.get("out") or out_qparams(real)
    act_min, act_max = act_range(case.get("act"), s_out, z_out)

    b = GraphBuilder()
    at, bt = b.input("a", case["a"], "uint8", s_a, z_a), b.input("b", case["b"], "uint8", s_b, z_b)
    b.output(b.add(at, bt, s_out, z_out, act_min=act_min, act_max=act_max))
    return b, [a, bv]


@pytest.mark.parametrize("case", ADD_CASES.values(), ids=ADD_CASES.keys())
def test_add(case, rng):
    b, inputs = add_graph(rng, case)
    check_graph(b, inputs, threads=THREADS)


def test_add_constant_operand(rng):
    x = u8(rng, (2, 3, 3, 6))
    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", 0.02, 128)
    c = b.constant("offset", u8(rng, (1, 1, 1, 6)), scale=0.01, zero_point=90)
    b.output(b.add(xt, c, 0.03, 100))
    check_graph(b, x)


# -- MUL -------------------------------------------------------------------------------------


MUL_CASES = {
    "same_shape": dict(a=(2, 5, 5, 3), b=(2, 5, 5, 3)),
    "same_shape_odd": dict(a=(3, 7, 9, 13), b=(3, 7, 9, 13)),
    "broadcast_channels": dict(a=(3, 4, 5, 6), b=(1, 1, 1, 6)),
    "broadcast_both_ways": dict(a=(3, 1, 5, 1), b=(1, 4, 1, 6)),
    "squeeze_excite": dict(a=(2, 7, 7, 17), b=(2, 1, 1, 17)),
    "broadcast_lower_rank": dict(a=(3, 4, 5, 6), b=(6,)),
    "broadcast_a_smaller": dict(a=(1, 1, 1, 6), b=(3, 4, 5, 6)),
    "scales_250x_apart": dict(a=(2, 4, 4, 7), b=(2, 4, 4, 7), s_a=0.002, s_b=0.5),
    "scales_1e4_apart_broadcast": dict(a=(2, 3, 1, 5), b=(1, 3, 4, 5), s_a=1e-4, s_b=1.0),
    # M = 0.5 * 0.25 / 0.003 ~ 41.7 > 1: most outputs saturate.
    "multiplier_above_one": dict(a=(1, 6, 6, 5), b=(1, 6, 6, 5), s_a=0.5, s_b=0.25, out=(0.003, 128)),
    # M ~ 3.7, on inputs within 8 steps of their zero points: products up to 64, few saturate.
    "multiplier_above_one_small_inputs": dict(a=(2, 5, 5, 9), b=(1, 1, 5, 9), s_a=0.5, s_b=0.25, out=(0.0337, 128),
                                              near_zero_point=8),
    # M ~ 1e-6 * 1e-6 / 0.05 is below one LSB: every output is z_out.
    "multiplier_below_one_lsb": dict(a=(1, 3, 3, 17), b=(1, 3, 3, 17), s_a=1e-6, s_b=1e-6, out=(0.05, 77)),
    "relu6": dict(a=(2, 4, 4, 8), b=(2, 4, 4, 8), act="relu6"),
    "act_50_200_broadcast": dict(a=(2, 7, 7, 17), b=(2, 1, 1, 17), act=(50, 200)),
}


def mul_graph(rng, case):
    """A one-MUL graph for a MUL_CASES entry, and its two inputs."""
    (s_a, z_a), (s_b, z_b) = random_qparams(rng), random_qparams(rng)
    s_a, s_b = case.get("s_a", s_a), case.get("s_b", s_b)
    a, bv = u8(rng, case["a"]), u8(rng, case["b"])
    if "near_zero_point" in case:
        d = case["near_zero_point"]
        a = np.clip(z_a + rng.integers(-d, d + 1, a.shape), 0, 255).astype(np.uint8)
        bv = np.clip(z_b + rng.integers(-d, d + 1, bv.shape), 0, 255).astype(np.uint8)
    real = s_a * (a.astype(np.float64) - z_a) * s_b * (bv.astype(np.float64) - z_b)
    s_out, z_out = case.get("out") or out_qparams(real)
    act_min, act_max = act_range(case.get("act"), s_out, z_out)

    b = GraphBuilder()
    at, bt = b.input("a", case["a"], "uint8", s_a, z_a), b.input("b", case["b"], "uint8", s_b, z_b)
    b.output(b.mul(at, bt, s_out, z_out, act_min=act_min, act_max=act_max))
    return b, [a, bv]


@pytest.mark.parametrize("case", MUL_CASES.values(), ids=MUL_CASES.keys())
def test_mul(case, rng):
    b, inputs = mul_graph(rng, case)
    got = check_graph(b, inputs, threads=THREADS)
    assert got.shape == np.broadcast_shapes(case["a"], case["b"])


def test_mul_extreme_products():
    # Every (a, b) pair, with both zero points at the ends of the range, so that the products
    # reach +-255^2; M = 2^-8 keeps most of them inside the output range.
    a = np.arange(256, dtype=np.uint8).reshape(1, 256, 1)
    bv = np.arange(256, dtype=np.uint8).reshape(1, 1, 256)
    for z_a, z_b, z_out in [(0, 0, 0), (255, 255, 0), (0, 255, 255), (128, 0, 128)]:
        b = GraphBuilder()
        at, bt = b.input("a", a.shape, "uint8", 1.0, z_a), b.input("b", bv.shape, "uint8", 1.0, z_b)
        b.output(b.mul(at, bt, 256.0, z_out))
        check_graph(b, [a, bv], threads=THREADS)


def test_mul_constant_operand(rng):
    x = u8(rng, (2, 3, 3, 6))
    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", 0.02, 128)
    c = b.constant("gate", u8(rng, (1, 1, 1, 6)), scale=1 / 255, zero_point=0)
    b.output(b.mul(xt, c, 0.02, 128))
    check_graph(b, x)


# -- CONCAT ----------------------------------------------------------------------------------


CONCAT_CASES = {
    "last_axis_differing": dict(axis=-1, shapes=[(2, 4, 4, 3), (2, 4, 4, 1), (2, 4, 4, 7)], params="differing"),
    "last_axis_equal": dict(axis=-1, shapes=[(2, 4, 4, 3), (2, 4, 4, 1), (2, 4, 4, 7)], params="equal"),
    "axis3_differing": dict(axis=3, shapes=[(1, 3, 3, 17), (1, 3, 3, 5)], params="differing"),
    "axis1_differing": dict(axis=1, shapes=[(2, 3, 4, 5), (2, 1, 4, 5), (2, 6, 4, 5)], params="differing"),
    "axis1_equal": dict(axis=1, shapes=[(2, 3, 4, 5), (2, 1, 4, 5)], params="equal"),
    "axis2_first_like_output": dict(axis=2, shapes=[(1, 2, 3, 4), (1, 2, 5, 4)], params="mixed"),
    # Size 1 before the axis repeats: ViT's [CLS] token before the patches, and in two dimensions.
    "class_token_broadcast": dict(axis=1, shapes=[(1, 1, 6), (3, 4, 6)], params="differing"),
    "broadcast_two_leading_dims": dict(axis=2, shapes=[(2, 3, 2, 5), (1, 3, 1, 5), (2, 1, 3, 5)],
                                       params="differing"),
}


@pytest.mark.parametrize("case", CONCAT_CASES.values(), ids=CONCAT_CASES.keys())
def test_concat(case, rng):
    xs = [u8(rng, s) for s in case["shapes"]]
    if case["params"] == "equal":
        qps = [random_qparams(rng)] * len(xs)
        out = qps[0]
    else:
        qps = [random_qparams(rng) for _ in xs]
        real = np.concatenate([s * (x.ravel().astype(np.float64) - z) for x, (s, z) in zip(xs, qps)])
        out = qps[0] if case["params"] == "mixed" else out_qparams(real)

    b = GraphBuilder()
    ts = [b.input(f"x{i}", x.shape, "uint8", s, z) for i, (x, (s, z)) in enumerate(zip(xs, qps))]
    b.output(b.concat(ts, case["axis"], *out))
    check_graph(b, xs, threads=THREADS)


@pytest.mark.parametrize("shapes", [[(2, 1, 6), (3, 4, 6)], [(1, 1, 5), (3, 4, 6)]], ids=["leading", "trailing"])
def test_concat_refuses_sizes_that_do_not_broadcast(rng, shapes):
    b = GraphBuilder()
    ts = [b.input(f"x{i}", (None, None, None), "uint8", 0.1, 128) for i in range(2)]
    b.output(b.concat(ts, 1, 0.1, 128))
    with pytest.raises(ValueError, match=r"cannot concatenate \[.*\] with \[.*\] on axis 1"):
        load_graph(b).run([u8(rng, s) for s in shapes], raw=True)


# -- pools -----------------------------------------------------------------------------------


AVG_POOL_CASES = {
    "k2_s2": dict(shape=(1, 6, 6, 3), kernel=2),
    "k3_s2_p1_incl": dict(shape=(1, 7, 7, 5), kernel=3, stride=2, pad=1, include_pad=True),
    "k3_s2_p1_excl": dict(shape=(1, 7, 7, 5), kernel=3, stride=2, pad=1, include_pad=False),
    "k3_s1_p1_excl_batch3_c17": dict(shape=(3, 5, 6, 17), kernel=3, stride=1, pad=1, include_pad=False),
    "pads_0011_incl": dict(shape=(1, 5, 5, 4), kernel=2, stride=2, pad=(0, 0, 1, 1), include_pad=True),
    "pads_0011_excl": dict(shape=(1, 5, 5, 4), kernel=2, stride=2, pad=(0, 0, 1, 1), include_pad=False),
    "k2x3_s1x2_pads_1101_excl": dict(shape=(2, 6, 7, 3), kernel=(2, 3), stride=(1, 2), pad=(1, 1, 0, 1),
                                     include_pad=False),
    "k5_s3_pads_2112_incl": dict(shape=(1, 9, 8, 2), kernel=5, stride=3, pad=(2, 1, 1, 2), include_pad=True),
    "whole_input": dict(shape=(1, 4, 4, 7), kernel=4),
    "1x1_input": dict(shape=(1, 1, 1, 3), kernel=1),
    "same_scale_excl": dict(shape=(1, 8, 8, 8), kernel=3, stride=2, pad=1, include_pad=False, same_scale=True),
    "act_60_190": dict(shape=(1, 6, 6, 8), kernel=3, stride=1, pad=1, include_pad=True, act=(60, 190)),
    # Channels across the vector blocks (8, 16, 32) with a tail.
    "k3_s2_p1_excl_c40": dict(shape=(2, 7, 6, 40), kernel=3, stride=2, pad=1, include_pad=False),
}


def avg_pool_graph(rng, case):
    """A one-AVG_POOL graph for an AVG_POOL_CASES entry, and its input."""
    s_in, z_in = random_qparams(rng)
    x = u8(rng, case["shape"])
    s_out, z_out = (s_in, z_in) if case.get("same_scale") else out_qparams(s_in * (x.astype(np.float64) - z_in))
    act_min, act_max = act_range(case.get("act"), s_out, z_out)

    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", s_in, z_in)
    b.output(b.avg_pool(xt, case["kernel"], s_out, z_out, stride=case.get("stride"), padding=case.get("pad", 0),
                        count_include_pad=case.get("include_pad", True), act_min=act_min, act_max=act_max))
    return b, x


@pytest.mark.parametrize("case", AVG_POOL_CASES.values(), ids=AVG_POOL_CASES.keys())
def test_avg_pool(case, rng):
    check_graph(*avg_pool_graph(rng, case), threads=THREADS)


MAX_POOL_CASES = {
    "k2_s2": dict(shape=(1, 6, 6, 3), kernel=2),
    "k3_s2_odd_input": dict(shape=(2, 9, 8, 7), kernel=3, stride=2),
    "k3_s2_p1": dict(shape=(1, 7, 7, 5), kernel=3, stride=2, pad=1),
    "k3_s1_p1_batch3_c17": dict(shape=(3, 5, 5, 17), kernel=3, stride=1, pad=1),
    "pads_0011": dict(shape=(1, 5, 5, 4), kernel=2, stride=2, pad=(0, 0, 1, 1)),
    "k1x3_p01": dict(shape=(2, 6, 7, 3), kernel=(1, 3), stride=1, pad=(0, 1)),
    "1x1_input": dict(shape=(1, 1, 1, 3), kernel=1),
    "act_30_220": dict(shape=(1, 6, 6, 8), kernel=3, stride=2, pad=1, act=(30, 220)),
    "k3_s2_p1_c40_act_30_220": dict(shape=(2, 7, 6, 40), kernel=3, stride=2, pad=1, act=(30, 220)),
    # Inputs below 128, so that act_min = 100 clamps many windows from below.
    "k2_s2_c40_low_inputs_act_100_255": dict(shape=(1, 6, 6, 40), kernel=2, act=(100, 255), below=128),
}


def max_pool_graph(rng, case):
    """A one-MAX_POOL graph for a MAX_POOL_CASES entry, and its input."""
    x = rng.integers(0, case.get("below", 256), case["shape"], dtype=np.uint8)
    act_min, act_max = case.get("act", (0, 255))
    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", *random_qparams(rng))
    b.output(b.max_pool(xt, case["kernel"], stride=case.get("stride"), padding=case.get("pad", 0), act_min=act_min,
                        act_max=act_max))
    return b, x


@pytest.mark.parametrize("case", MAX_POOL_CASES.values(), ids=MAX_POOL_CASES.keys())
def test_max_pool(case, rng):
    check_graph(*max_pool_graph(rng, case), threads=THREADS)


GLOBAL_POOL_CASES = {
    "1x1": dict(shape=(1, 1, 1, 3)),
    "7x7_c17": dict(shape=(1, 7, 7, 17)),
    "5x3_batch3": dict(shape=(3, 5, 3, 8)),
    "16x16_c1": dict(shape=(2, 16, 16, 1)),
    "32x32_n1024": dict(shape=(1, 32, 32, 4)),
    "same_scale": dict(shape=(1, 4, 4, 8), same_scale=True),
    "act_70_180": dict(shape=(2, 6, 6, 5), act=(70, 180)),
    "7x7_c40": dict(shape=(2, 7, 7, 40)),
}


def global_pool_graph(rng, case):
    """A one-GLOBAL_AVG_POOL graph for a GLOBAL_POOL_CASES entry, and its input."""
    s_in, z_in = random_qparams(rng)
    x = u8(rng, case["shape"])
    means = s_in * (x.astype(np.float64) - z_in).mean(axis=(1, 2))
    s_out, z_out = (s_in, z_in) if case.get("same_scale") else out_qparams(means)
    act_min, act_max = act_range(case.get("act"), s_out, z_out)

    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", s_in, z_in)
    b.output(b.global_avg_pool(xt, s_out, z_out, act_min=act_min, act_max=act_max))
    return b, x


@pytest.mark.parametrize("case", GLOBAL_POOL_CASES.values(), ids=GLOBAL_POOL_CASES.keys())
def test_global_avg_pool(case, rng):
    b, x = global_pool_graph(rng, case)
    got = check_graph(b, x, threads=THREADS)
    assert got.shape == (x.shape[0], 1, 1, x.shape[3])


# -- LUT / CLAMP / RESHAPE ---------------------------------------------------------------------


LUT_CASES = {
    "sigmoid": dict(fn="sigmoid", q_in=(8 / 255, 128), q_out=(1 / 256, 0)),
    "tanh": dict(fn="tanh", q_in=(6 / 255, 120), q_out=(1 / 128, 128)),
    "hardswish": dict(fn="hardswish", q_in=(0.05, 100), q_out=quant.choose_qparams(-0.375, 7.75)),
    "gelu": dict(fn="gelu", q_in=(0.03, 128), q_out=quant.choose_qparams(-0.17, 3.84)),
}


def lut_graph(rng, case):
    """A one-LUT graph for a LUT_CASES entry, and an input that reads every entry of the table
    (1013 values: vector blocks and a tail)."""
    table = quant.make_lut(quant.LUT_FUNCTIONS[case["fn"]], *case["q_in"], *case["q_out"])
    x = rng.permutation(np.concatenate([np.tile(np.arange(256, dtype=np.uint8), 3), u8(rng, 245)])).reshape(1, 1013)
    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", *case["q_in"])
    b.output(b.lut(xt, table, *case["q_out"]))
    return b, x


@pytest.mark.parametrize("case", LUT_CASES.values(), ids=LUT_CASES.keys())
def test_lut(case, rng):
    check_graph(*lut_graph(rng, case))


@pytest.mark.parametrize("act_min, act_max", [(0, 255), (10, 200), (128, 128), (0, 0), (255, 255)])
def test_clamp(act_min, act_max, rng):
    x = u8(rng, (3, 7, 5, 2))
    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", 0.1, 128)
    b.output(b.clamp(xt, act_min, act_max))
    check_graph(b, x)


@pytest.mark.parametrize("in_shape, target, out_shape", [
    ((2, 3, 4, 5), (0, -1), (2, 60)),
    ((2, 3, 4, 5), (0, 0, -1), (2, 3, 20)),
    ((2, 3, 4, 5), (-1, 5), (24, 5)),
    ((2, 3, 4, 5), (4, 0, -1), (4, 3, 10)),
    ((1, 6, 6, 3), (0, 36, 3), (1, 36, 3)),
    ((1, 1, 1, 10), (0, -1), (1, 10)),
    ((3, 4), (0, 2, -1), (3, 2, 2)),
])
def test_reshape(in_shape, target, out_shape, rng):
    x = u8(rng, in_shape)
    b = GraphBuilder()
    xt = b.input("x", in_shape, "uint8", 0.1, 3)
    b.output(b.reshape(xt, target))
    got = check_graph(b, x)
    assert got.shape == out_shape


# -- TRANSPOSE -------------------------------------------------------------------------------


TRANSPOSE_CASES = {
    "rank2_swap": ((5, 7), (1, 0)),
    "rank2_identity": ((5, 7), (0, 1)),
    "rank3_201": ((3, 5, 7), (2, 0, 1)),
    "rank3_120": ((3, 5, 7), (1, 2, 0)),
    "rank3_021": ((3, 1, 7), (0, 2, 1)),
    "rank3_identity": ((3, 5, 7), (0, 1, 2)),
    "rank4_nchw_to_nhwc": ((2, 3, 5, 7), (0, 2, 3, 1)),
    "rank4_nhwc_to_nchw": ((2, 5, 7, 3), (0, 3, 1, 2)),
    "rank4_reverse": ((3, 5, 7, 9), (3, 2, 1, 0)),
    "rank4_identity": ((2, 3, 5, 7), (0, 1, 2, 3)),
    "rank4_nchw_to_nhwc_c17": ((1, 17, 9, 11), (0, 2, 3, 1)),
    "rank4_nchw_to_nhwc_c4": ((2, 4, 5, 6), (0, 2, 3, 1)),
    "rank4_unit_dims": ((1, 1, 13, 1), (3, 2, 0, 1)),
    "rank5_40312": ((2, 3, 1, 5, 7), (4, 0, 3, 1, 2)),
    "rank5_reverse": ((3, 5, 2, 7, 3), (4, 3, 2, 1, 0)),
    "rank5_identity": ((2, 3, 5, 7, 3), (0, 1, 2, 3, 4)),
}


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("shape, perm", TRANSPOSE_CASES.values(), ids=TRANSPOSE_CASES.keys())
def test_transpose(shape, perm, dtype, rng):
    b = GraphBuilder()
    if dtype == "uint8":
        x = u8(rng, shape)
        xt = b.input("x", shape, "uint8", *random_qparams(rng))
    else:
        x = rng.normal(0, 100, shape).astype(np.float32)
        # Values whose bytes must survive: signed zero, NaN, infinities, a denormal.
        specials = np.array([-0.0, np.nan, np.inf, -np.inf, 1e-45], np.float32)
        x.ravel()[:specials.size] = specials[:x.size]
        xt = b.input("x", shape, "float32")
    y = b.transpose(xt, perm)
    b.output(y)
    got = check_graph(b, x, threads=THREADS)
    assert got.shape == tuple(shape[p] for p in perm)
    m = load_graph(b)
    assert m.outputs[0].dtype == dtype
    assert (m.outputs[0].scale, m.outputs[0].zero_point) == (m.inputs[0].scale, m.inputs[0].zero_point)


def test_transpose_dynamic_batch(rng):
    b = GraphBuilder()
    xt = b.input("x", (None, 3, 5, 7), "uint8", 0.1, 9)
    b.output(b.transpose(xt, (0, 2, 3, 1)))
    m = load_graph(b, num_threads=2)
    for n in (1, 3, 2):
        x = u8(rng, (n, 3, 5, 7))
        got = m.run(x, raw=True)
        assert_same(got, oracle.run_graph(b, x))
        assert got.shape == (n, 5, 7, 3)


def test_transpose_between_ops(rng):
    # NCHW float input -> QUANTIZE -> NHWC -> MAX_POOL -> back to NCHW -> DEQUANTIZE.
    x = rng.normal(0, 2, (2, 3, 6, 5)).astype(np.float32)
    b = GraphBuilder()
    xt = b.input("x", x.shape, "float32")
    nhwc = b.transpose(b.quantize(xt, 0.03, 120), (0, 2, 3, 1))
    b.output(b.dequantize(b.transpose(b.max_pool(nhwc, 2, stride=1), (0, 3, 1, 2))))
    got = check_graph(b, x, threads=THREADS)
    assert got.shape == (2, 3, 5, 4)


@pytest.mark.parametrize("perm", [(0, 0, 1), (0, 1, 5)])
def test_transpose_refuses_a_bad_perm_at_load(perm):
    import intinfer

    b = GraphBuilder()
    xt = b.input("x", (2, 3, 4), "uint8", 0.1, 3)
    b.output(b.transpose(xt, perm))
    with pytest.raises(intinfer.ModelError, match="is not a permutation"):
        load_graph(b)


@pytest.mark.parametrize("shape", [(2, 3, 4), (None, 3, 4)])
def test_transpose_perm_of_the_wrong_rank_fails_at_run(shape, rng):
    b = GraphBuilder()
    xt = b.input("x", shape, "uint8", 0.1, 3)
    b.output(b.transpose(xt, (1, 0)))
    m = load_graph(b)
    with pytest.raises(ValueError, match="has rank"):
        m.run(u8(rng, (2, 3, 4)), raw=True)


# -- SLICE ----------------------------------------------------------------------------------


SLICE_CASES = {
    "first_token": ((3, 7, 5), 1, 0, 1),
    "rest_past_the_end": ((2, 6, 4), 1, 2, 1 << 40),
    "last_axis_middle": ((2, 3, 9), 2, 3, 7),
    "leading_axis": ((5, 4), 0, 1, 3),
    "whole_axis": ((2, 4, 3), 1, 0, 4),
    "rank5_inner": ((2, 3, 4, 5, 6), 3, 1, 4),
}


@pytest.mark.parametrize("dtype", ["uint8", "int32", "float32"])
@pytest.mark.parametrize("shape, axis, start, end", SLICE_CASES.values(), ids=SLICE_CASES.keys())
def test_slice(shape, axis, start, end, dtype, rng):
    b = GraphBuilder()
    if dtype == "uint8":
        x, xt = u8(rng, shape), b.input("x", shape, "uint8", *random_qparams(rng))
    elif dtype == "int32":
        x, xt = rng.integers(-(1 << 31), 1 << 31, shape, dtype=np.int32), b.input("x", shape, "int32")
    else:
        x, xt = rng.normal(0, 10, shape).astype(np.float32), b.input("x", shape, "float32")
    b.output(b.slice(xt, axis, start, end))
    got = check_graph(b, x, threads=THREADS)
    index = [slice(None)] * len(shape)
    index[axis] = slice(start, end)
    np.testing.assert_array_equal(got, x[tuple(index)])
    m = load_graph(b)
    assert (m.outputs[0].scale, m.outputs[0].zero_point) == (m.inputs[0].scale, m.inputs[0].zero_point)


def test_slice_follows_a_dynamic_axis(rng):
    b = GraphBuilder()
    xt = b.input("x", (None, None, 4), "uint8", 0.1, 9)
    b.output(b.slice(xt, 1, 1, 1 << 40))
    m = load_graph(b, num_threads=2)
    for n, s in ((1, 2), (3, 7), (2, 16)):
        x = u8(rng, (n, s, 4))
        got = m.run(x, raw=True)
        assert_same(got, oracle.run_graph(b, x))
        assert got.shape == (n, s - 1, 4)


@pytest.mark.parametrize("axis, start, end, message", [(-1, 0, 1, "outside"), (8, 0, 1, "outside"),
                                                       (1, -1, 1, "negative"), (1, 2, 2, "not above")])
def test_slice_refuses_bad_attributes_at_load(axis, start, end, message):
    import intinfer

    b = GraphBuilder()
    b.output(b.slice(b.input("x", (2, 3, 4), "uint8", 0.1, 3), axis, start, end))
    with pytest.raises(intinfer.ModelError, match=message):
        load_graph(b)


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 3)])
def test_slice_of_a_short_or_missing_axis_fails_at_run(shape, rng):
    b = GraphBuilder()
    b.output(b.slice(b.input("x", (None,) * len(shape), "uint8", 0.1, 3), 2, 4, 6))
    m = load_graph(b)
    with pytest.raises(ValueError, match="slice starts at|has no axis"):
        m.run(u8(rng, shape), raw=True)


# -- QUANTIZE / DEQUANTIZE -----------------------------------------------------------------


QUANTIZE_CASES = [(0.25, 128), (1.0, 0), (0.1, 128), (0.0137, 37), (1 / 255, 255)]


def quantize_graph(rng, scale, zero_point):
    """A one-QUANTIZE graph on specials (NaN, infinities, huge, subnormal), ties and random
    values, and its input."""
    s = np.float32(scale)
    specials = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 3.4e38, -3.4e38, 1e-45, -1e-45,
                0.75, 0.85, -0.85]  # 0.75f / 0.1f ties in float32 but not in double
    # Exact ties k + 0.5 wherever x / s is exact (s a power of two); near-ties otherwise.
    ties = (np.arange(-140, 140) + np.float32(0.5)) * s
    x = np.concatenate([np.array(specials, np.float32), ties, rng.uniform(-300, 300, 146).astype(np.float32) * s])
    x = x.astype(np.float32).reshape(4, -1)

    b = GraphBuilder()
    xt = b.input("x", x.shape, "float32")
    b.output(b.quantize(xt, scale, zero_point))
    return b, x


@pytest.mark.parametrize("scale, zero_point", QUANTIZE_CASES)
def test_quantize(scale, zero_point, rng):
    check_graph(*quantize_graph(rng, scale, zero_point))


DEQUANTIZE_CASES = [(0.1, 3), (1 / 255, 0), (3.7e-5, 255), (1000.0, 128), (0.5, 37)]


def dequantize_graph(rng, scale, zero_point):
    """A one-DEQUANTIZE graph on every uint8 value and random ones (263 per row: a tail)."""
    x = np.stack([np.concatenate([np.arange(256, dtype=np.uint8), u8(rng, 7)]), u8(rng, 263)])
    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", scale, zero_point)
    b.output(b.dequantize(xt))
    return b, x


@pytest.mark.parametrize("scale, zero_point", DEQUANTIZE_CASES)
def test_dequantize(scale, zero_point, rng):
    got = check_graph(*dequantize_graph(rng, scale, zero_point))
    assert got.dtype == np.float32


def test_quantize_pool_dequantize_chain(rng):
    x = rng.normal(0, 2, (2, 6, 6, 3)).astype(np.float32)
    b = GraphBuilder()
    xt = b.input("x", (None, 6, 6, 3), "float32")
    q = b.quantize(xt, 0.03, 120)
    b.output(b.dequantize(b.avg_pool(q, 2, 0.02, 130)))
    check_graph(b, x)


# -- the Python API around run() ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["conv", "fc", "max_pool_reshape"])
def test_batch_can_change_between_runs(kind, rng):
    if kind == "conv":
        b, x = conv_graph(rng, n=2, h=6, w=5, cin=3, cout=4, k=3, stride=2, pad=1, dynamic_batch=True)
    elif kind == "fc":
        b, x = fc_graph(rng, lead=(2,), k=11, n=6, dynamic_batch=True)
    else:
        b = GraphBuilder()
        xt = b.input("x", (None, 6, 6, 4), "uint8", 0.1, 7)
        b.output(b.reshape(b.max_pool(xt, 2), (0, -1)))
        x = u8(rng, (2, 6, 6, 4))
    m = load_graph(b, num_threads=2)
    for n in (2, 5, 1, 3):
        xn = u8(rng, (n,) + x.shape[1:])
        got = m.run(xn, raw=True)
        assert_same(got, oracle.run_graph(b, xn))
        assert got.shape[0] == n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_data_for_a_uint8_input_is_quantized(dtype, rng):
    s, z = 0.125, 100
    b = GraphBuilder()
    xt = b.input("x", (None, 8), "uint8", s, z)
    b.output(b.clamp(xt, 0, 255))  # the identity: the output shows what the input became
    # 0.0625 + 1e-12 is 0.0625 in float32 (0.5 steps, a tie to 0) but just above the tie in
    # double: the cast to float32 comes first.
    specials = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0625 + 1e-12, -0.1875 - 1e-12, 0.1875, 0.3125]
    values = np.concatenate([specials, (np.arange(-20, 21) + 0.5) * s, rng.uniform(-20, 20, 36)])
    x = values.astype(dtype).reshape(-1, 8)
    want = oracle.quantize(x.astype(np.float32), s, z)

    m = load_graph(b)
    assert_same(m.run(x, raw=True), want)
    assert_same(m.run(want, raw=True), want)


def test_uint8_outputs_are_dequantized_by_default(rng):
    x = u8(rng, (2, 3, 3, 4))
    b = GraphBuilder()
    xt = b.input("x", x.shape, "uint8", 0.05, 20)
    b.output(b.avg_pool(xt, 2, 0.03, 140, stride=1))
    raw = oracle.run_graph(b, x)
    assert_same(load_graph(b).run(x), oracle.dequantize(raw, 0.03, 140))


def test_inputs_by_name_or_position_and_several_outputs(rng):
    a, c = u8(rng, (1, 4, 4, 3)), u8(rng, (1, 4, 4, 3))
    b = GraphBuilder()
    at = b.input("a", a.shape, "uint8", 0.02, 128)
    ct = b.input("c", c.shape, "uint8", 0.03, 100)
    total = b.add(at, ct, 0.04, 120)
    b.output(b.max_pool(total, 2), total)
    want = oracle.run_graph(b, [a, c])
    m = load_graph(b)
    assert_same(m.run([a, c], raw=True), want)
    assert_same(m.run({"c": c, "a": a}, raw=True), want)


def test_input_and_output_descriptions():
    b = GraphBuilder()
    image = b.input("image", (None, 4, 4, 3), "uint8", 0.5, 7)
    features = b.input("features", (2, 5), "float32")
    pooled = b.avg_pool(image, 2, 0.25, 9)
    deq = b.dequantize(b.quantize(features, 0.125, 3))
    b.output(pooled, deq)
    m = load_graph(b)

    assert [(t.name, t.shape, t.dtype) for t in m.inputs] == [
        ("image", (None, 4, 4, 3), "uint8"), ("features", (2, 5), "float32")]
    assert (m.inputs[0].scale, m.inputs[0].zero_point) == (0.5, 7)
    assert (m.inputs[1].scale, m.inputs[1].zero_point) == (None, None)
    assert [(t.name, t.shape, t.dtype) for t in m.outputs] == [
        (pooled.name, (None, 2, 2, 3), "uint8"), (deq.name, (2, 5), "float32")]
    assert (m.outputs[0].scale, m.outputs[0].zero_point) == (0.25, 9)
    assert (m.outputs[1].scale, m.outputs[1].zero_point) == (None, None)


# -- intinfer.quant ------------------------------------------------------------------------


@pytest.mark.parametrize("case", LUT_CASES.values(), ids=LUT_CASES.keys())
def test_make_lut_within_half_an_output_lsb(case):
    fn = quant.LUT_FUNCTIONS[case["fn"]]
    (s_in, z_in), (s_out, z_out) = case["q_in"], case["q_out"]
    table = quant.make_lut(fn, s_in, z_in, s_out, z_out)
    assert table.dtype == np.uint8 and table.shape == (256,)
    exact = np.asarray(fn(s_in * (np.arange(256, dtype=np.float64) - z_in))) / s_out + z_out
    t = table.astype(np.float64)
    eps = 1e-9
    inside = (t > 0) & (t < 255)
    assert np.all(np.abs(t - exact)[inside] <= 0.5 + eps)
    assert np.all(exact[t == 0] <= 0.5 + eps)
    assert np.all(exact[t == 255] >= 254.5 - eps)


def test_quantize_weights_per_channel(rng):
    w = rng.normal(0, 0.3, (5, 3, 3, 4)).astype(np.float32)
    w[2] = 0.0
    q, s = quant.quantize_weights(w)
    assert q.dtype == np.int8 and q.shape == w.shape
    assert s.dtype == np.float32 and s.shape == (5,)
    assert q.min() >= -127 and q.max() <= 127
    # Each non-zero channel spans the full symmetric range; an all-zero one gets scale 1.
    assert np.abs(q.reshape(5, -1)).max(axis=1).tolist() == [127, 127, 0, 127, 127]
    assert s[2] == 1.0
    sc = s.reshape(-1, 1, 1, 1).astype(np.float64)
    # Half a step, plus the float32 rounding of w / s (127 * 2^-24 steps at most).
    assert np.all(np.abs(q * sc - w) <= sc * (0.5 + 1e-5))
    np.testing.assert_array_equal(quant.quantize_weights(-w)[0], -q)


def test_quantize_weights_axis(rng):
    w = rng.normal(0, 1, (4, 6)).astype(np.float32)
    q, s = quant.quantize_weights(w, axis=1)
    q_t, s_t = quant.quantize_weights(w.T)
    np.testing.assert_array_equal(q, q_t.T)
    np.testing.assert_array_equal(s, s_t)


@pytest.mark.parametrize("act, scale, zero_point, expected", [
    (None, 0.1, 50, (0, 255)),
    ("none", 0.1, 50, (0, 255)),
    ("relu", 0.1, 50, (50, 255)),
    ("relu6", 0.05, 10, (10, 130)),
    ("relu6", 0.03, 0, (0, 200)),
    ("relu6", 6 / 255, 0, (0, 255)),
    ("relu6", 0.01, 100, (100, 255)),
])
def test_activation_range(act, scale, zero_point, expected):
    assert quant.activation_range(act, scale, zero_point) == expected


def test_activation_range_refuses_unknown():
    with pytest.raises(ValueError):
        quant.activation_range("sigmoid", 0.1, 0)
