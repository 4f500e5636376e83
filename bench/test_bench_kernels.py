"""Per-op kernel timings with pytest-benchmark: `pytest bench/` (the main suite, `pytest` from the
repository root, collects only tests/).

Each case is a one-op intinfer model built with GraphBuilder, run at one thread on raw uint8
input. pytest-benchmark times `m.run(x, raw=True)` (the op plus the Python call); the engine's
own per-op time from `m.profile()` and the GOPS it implies go into each benchmark's
`extra_info` (shown with `--benchmark-json`, or compare runs with `--benchmark-autosave` and
`pytest-benchmark compare`).
"""

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
intinfer = pytest.importorskip("intinfer")

from intinfer.builder import GraphBuilder  # noqa: E402
from intinfer.quant import quantize_bias, quantize_weights  # noqa: E402

THREADS = 1
X_SCALE, X_ZP = 0.02, 120

GEMM_SHAPES = [(1, 1024, 1024), (128, 384, 384), (128, 384, 1536), (128, 1536, 384), (256, 1024, 1024)]
# (N, H, W, C, stride, padding [top, left, bottom, right]): EfficientNet-Lite0's depthwise layers
# ("same" padding: stride 2 pads only the bottom and the right).
DEPTHWISE = [(1, 56, 56, 144, 1, (1, 1, 1, 1)), (1, 112, 112, 96, 2, (0, 0, 1, 1))]
# (N, H, W, Cin, Cout): an expansion and a projection 1x1 conv.
POINTWISE = [(1, 56, 56, 24, 144), (1, 14, 14, 480, 80)]


def _out_qparams(k: int, w_std: float) -> tuple:
    """An output scale that fits about +-4 standard deviations of the accumulator."""
    sigma = X_SCALE * 74 * w_std * np.sqrt(k)  # uint8 uniform on [0, 255] has std ~74
    return float(8 * sigma / 255), 128


def _weights(rng, shape, std=0.05):
    wq, ws = quantize_weights(rng.normal(0, std, size=shape))
    b = quantize_bias(rng.normal(0, 0.5, size=shape[0]), X_SCALE, ws)
    return wq, ws, b


def _finish(benchmark, g: GraphBuilder, x: np.ndarray, macs: int, expected_shape: tuple):
    m = intinfer.load(g.to_bytes(), num_threads=THREADS)
    y = m.run(x, raw=True)
    assert y.shape == expected_shape and y.dtype == np.uint8
    prof = m.profile(x, runs=20)
    op_ms = prof.rows[0]["ms"]
    benchmark.extra_info.update({"op": prof.rows[0]["op"], "op_ms": op_ms, "macs": macs,
                                 "op_gops": 2 * macs / (op_ms * 1e6), "threads": THREADS, "isa": m.isa})
    benchmark(m.run, x, raw=True)


@pytest.mark.benchmark(group="fully_connected")
@pytest.mark.parametrize("m,k,n", GEMM_SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in GEMM_SHAPES])
def test_fully_connected(benchmark, m, k, n):
    rng = np.random.default_rng(0)
    wq, ws, b = _weights(rng, (n, k))
    g = GraphBuilder()
    x = g.input("x", (m, k), "uint8", X_SCALE, X_ZP)
    g.output(g.fully_connected(x, g.constant("w", wq, scale=ws), g.constant("b", b), *_out_qparams(k, 0.05)))
    _finish(benchmark, g, rng.integers(0, 256, (m, k), dtype=np.uint8), m * k * n, (m, n))


@pytest.mark.benchmark(group="depthwise_3x3")
@pytest.mark.parametrize("n,h,w,c,stride,pads", DEPTHWISE,
                         ids=[f"{n}x{h}x{w}x{c}-s{s}" for n, h, w, c, s, _ in DEPTHWISE])
def test_depthwise_3x3(benchmark, n, h, w, c, stride, pads):
    rng = np.random.default_rng(1)
    wq, ws, b = _weights(rng, (c, 3, 3, 1), std=0.2)
    g = GraphBuilder()
    x = g.input("x", (n, h, w, c), "uint8", X_SCALE, X_ZP)
    g.output(g.conv2d(x, g.constant("w", wq, scale=ws), g.constant("b", b), *_out_qparams(9, 0.2),
                      stride=stride, padding=pads, groups=c))
    oh, ow = (h + pads[0] + pads[2] - 3) // stride + 1, (w + pads[1] + pads[3] - 3) // stride + 1
    _finish(benchmark, g, rng.integers(0, 256, (n, h, w, c), dtype=np.uint8), n * oh * ow * c * 9, (n, oh, ow, c))


@pytest.mark.benchmark(group="conv_1x1")
@pytest.mark.parametrize("n,h,w,cin,cout", POINTWISE, ids=[f"{n}x{h}x{w}x{ci}-{co}" for n, h, w, ci, co in POINTWISE])
def test_conv_1x1(benchmark, n, h, w, cin, cout):
    rng = np.random.default_rng(2)
    wq, ws, b = _weights(rng, (cout, 1, 1, cin))
    g = GraphBuilder()
    x = g.input("x", (n, h, w, cin), "uint8", X_SCALE, X_ZP)
    g.output(g.conv2d(x, g.constant("w", wq, scale=ws), g.constant("b", b), *_out_qparams(cin, 0.05)))
    _finish(benchmark, g, rng.integers(0, 256, (n, h, w, cin), dtype=np.uint8), n * h * w * cin * cout,
            (n, h, w, cout))
