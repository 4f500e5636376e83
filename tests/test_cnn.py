"""A small CNN end to end (every op but CLAMP and the float ones): the engine against
oracle.run_graph bit for bit, plus its memory plan and summary."""

from types import SimpleNamespace

import numpy as np
import pytest

import oracle
from conftest import assert_same, load_graph
from intinfer import quant
from intinfer.builder import GraphBuilder

IN_SHAPE = (16, 16, 3)


def calibrated(real) -> tuple[float, int]:
    lo, hi = np.quantile(np.asarray(real, np.float64), [0.01, 0.99])
    return quant.choose_qparams(lo, hi)


def build_cnn(x_calib: np.ndarray) -> GraphBuilder:
    """Random float weights, quantized; each output's parameters are chosen from the oracle's
    values on a calibration batch, as a calibrating exporter would, so that no layer sits
    saturated and the comparison exercises the whole uint8 range."""
    rng = np.random.default_rng(0)
    b = GraphBuilder(metadata={"model": "test_cnn"})

    def value(t):
        prefix = SimpleNamespace(tensors=b.tensors, inputs=b.inputs, outputs=[t], ops=b.ops)
        return oracle.run_graph(prefix, x_calib)

    def real(t):
        return oracle.dequantize(value(t), t.scale, t.zero_point).astype(np.float64)

    def conv(t, cout, k, stride=1, pad=0, groups=1, act=None):
        x = value(t)
        cin_g = x.shape[-1] // groups
        wq, s_w = quant.quantize_weights(rng.normal(0, 1 / np.sqrt(k * k * cin_g), (cout, k, k, cin_g)))
        bias = quant.quantize_bias(rng.normal(0, 0.2, cout), t.scale, s_w)
        acc = oracle.conv2d_accumulate(x, t.zero_point, wq, bias, stride, pad, 1, groups)
        out = acc * (np.float64(t.scale) * s_w.astype(np.float64))
        s, z = calibrated(np.clip(out, 0, 6) if act == "relu6" else out)
        act_min, act_max = quant.activation_range(act, s, z)
        return b.conv2d(t, b.constant("w", wq, "int8", scale=s_w), b.constant("bias", bias, "int32"), s, z,
                        stride=stride, padding=pad, groups=groups, act_min=act_min, act_max=act_max)

    x = b.input("image", (None,) + IN_SHAPE, "uint8", 0.02, 128)
    c1 = conv(x, 16, 3, stride=2, pad=1, act="relu6")  # [N, 8, 8, 16]
    dw = conv(c1, 16, 3, pad=1, groups=16, act="relu6")
    pw = conv(dw, 16, 1)
    res = b.add(c1, pw, *calibrated(real(c1) + real(pw)))

    hardswish = quant.LUT_FUNCTIONS["hardswish"]
    s, z = calibrated(hardswish(real(res)))
    h = b.lut(res, quant.make_lut(hardswish, res.scale, res.zero_point, s, z), s, z, name="hardswish")

    mp = b.max_pool(h, 2)  # [N, 4, 4, 16], h's parameters
    ap = b.avg_pool(h, 3, *calibrated(real(h)), stride=2, padding=1, count_include_pad=False)
    cat = b.concat([mp, ap], -1, *calibrated(np.concatenate([real(mp).ravel(), real(ap).ravel()])))
    gp = b.global_avg_pool(cat, *calibrated(real(cat).mean(axis=(1, 2))))  # [N, 1, 1, 32]
    flat = b.reshape(gp, (0, -1))  # [N, 32]

    wq, s_w = quant.quantize_weights(rng.normal(0, 1 / np.sqrt(32), (10, 32)))
    bias = quant.quantize_bias(rng.normal(0, 0.2, 10), flat.scale, s_w)
    acc = oracle.fully_connected_accumulate(value(flat), flat.zero_point, wq, bias)
    logits = b.fully_connected(flat, b.constant("fc_w", wq, "int8", scale=s_w), b.constant("fc_b", bias, "int32"),
                               *calibrated(acc * (np.float64(flat.scale) * s_w.astype(np.float64))), name="logits")
    b.output(logits)
    return b


@pytest.fixture(scope="module")
def cnn() -> GraphBuilder:
    calib = np.random.default_rng(1).integers(0, 256, (8,) + IN_SHAPE, dtype=np.uint8)
    return build_cnn(calib)


@pytest.mark.parametrize("num_threads", [1, 2])
def test_cnn_matches_oracle_bit_for_bit(cnn, num_threads):
    m = load_graph(cnn, num_threads=num_threads)
    rng = np.random.default_rng(2)
    # One loaded model, the batch changing between calls.
    for batch in (1, 3):
        x = rng.integers(0, 256, (batch,) + IN_SHAPE, dtype=np.uint8)
        want = oracle.run_graph(cnn, x)
        assert want.shape == (batch, 10)
        # A constant output would prove little: calibration should have kept the logits apart.
        assert len(np.unique(want)) > 1
        assert_same(m.run(x, raw=True), want)


def test_cnn_memory_plan_reuses_buffers(cnn):
    m = load_graph(cnn)
    for label, mem in (("batch 1", m.memory()), ("batch 3", m.memory({"image": (3,) + IN_SHAPE}))):
        print(f"\nCNN activations, {label}: arena {mem['arena_bytes']} bytes, naive {mem['naive_bytes']} bytes")
        assert 0 < mem["arena_bytes"] < mem["naive_bytes"]


def test_cnn_summary_names_every_op_type(cnn):
    text = load_graph(cnn).summary()
    print("\n" + text)
    for op_type in sorted({op.type for op in cnn.ops}):
        assert op_type in text
