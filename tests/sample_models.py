"""Small valid models that exercise every op type: seeds for the fuzzers and subjects for the
error-path tests; and a small BERT encoder for the exporter and QAT tests."""

import numpy as np

from intinfer.builder import GraphBuilder
from intinfer.quant import LUT_FUNCTIONS, make_lut, quantize_bias, quantize_weights


def every_op_model(seed: int = 0) -> GraphBuilder:
    """Float input [?, 6, 6, 3] -> every op type once -> float output [?, 5]."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder({"producer": "tests/sample_models.py"})
    x = g.input("image", (None, 6, 6, 3), "float32")
    q = g.quantize(x, 0.02, 120)

    def conv(x, cout, k, **kw):
        cin = x_channels[id(x)] // kw.get("groups", 1)
        wq, ws = quantize_weights(rng.normal(size=(cout, k, k, cin)))
        w = g.constant("w", wq, scale=ws)
        b = g.constant("b", quantize_bias(rng.normal(size=cout), x.scale, ws))
        y = g.conv2d(x, w, b, 0.05, 110, **kw)
        x_channels[id(y)] = cout
        return y

    x_channels = {id(q): 3}
    c1 = conv(q, 4, 3, stride=2, padding=(0, 0, 1, 1), act_min=110, act_max=230)
    c2 = conv(c1, 4, 3, padding=1, groups=4)
    s = g.add(c1, c2, 0.06, 100)
    gate = g.global_avg_pool(c2, 0.05, 110)
    s = g.mul(s, gate, 0.07, 90)
    s = g.transpose(g.transpose(s, [0, 3, 1, 2]), [0, 2, 3, 1])
    h = g.lut(s, make_lut(LUT_FUNCTIONS["hardswish"], s.scale, s.zero_point, 0.05, 20), 0.05, 20)
    m = g.max_pool(h, 2, stride=1, padding=(1, 1, 0, 0))
    a = g.avg_pool(h, 2, 0.05, 20, stride=1, padding=(0, 0, 1, 1), count_include_pad=False)
    c = g.concat([m, a], -1, 0.05, 20)
    c = g.clamp(c, 25, 240)
    p = g.global_avg_pool(c, 0.04, 15)
    f = g.reshape(p, [0, -1])
    wq, ws = quantize_weights(rng.normal(size=(5, 8)))
    y = g.fully_connected(f, g.constant("fc_w", wq, scale=ws), g.constant("fc_b", quantize_bias(rng.normal(size=5), f.scale, ws)),
                          0.1, 128)
    g.output(g.dequantize(y, name="logits"))
    return g


def encoded_constants_model(seed: int = 0) -> GraphBuilder:
    """Packed int4 and int2 and block-sparse int8 weights (both indexes; docs/format.md, Encodings), each read
    by a FULLY_CONNECTED of the one [?, 8] uint8 input: files the reader must validate, and that
    run. Seeds for the fuzzers."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder({"producer": "tests/sample_models.py"})
    x = g.input("x", (None, 8), "uint8", 0.1, 3)
    sparse = rng.integers(-127, 128, (4, 8)) * (rng.random((4, 2, 1)) < 0.5).repeat(4, -1).reshape(4, 8)
    weights = [g.constant("w4", rng.integers(-7, 8, (3, 8)), "int4", scale=[0.01] * 3),
               g.constant("w2", rng.integers(-1, 2, (2, 8)), "int2", scale=[0.01] * 2),
               g.constant("ws", sparse, "int8", scale=[0.01] * 4, block_sparse=4, sparse_index="columns"),
               g.constant("wb", sparse, "int8", scale=[0.01] * 4, block_sparse=4, sparse_index="bitmap")]
    for w in weights:
        n = w.shape[0]
        g.output(g.fully_connected(x, w, g.constant("b", np.zeros(n, np.int32)), 0.1, 0))
    return g


def wide_model(seed: int = 0) -> GraphBuilder:
    """Wide activations end to end (docs/transformers.md): a LUT into int32 codes, a
    FULLY_CONNECTED reading them within its input_bound into a wide output, a wide ADD, a
    LAYER_NORM from and into wide values and one back to uint8. A seed for the fuzzers."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder({"producer": "tests/sample_models.py"})
    x = g.input("x", (None, 12), "uint8", 0.05, 128)
    h = g.lut(x, np.rint(np.tanh(np.linspace(-3, 3, 256)) * 2000).astype(np.int32), 1 / 2000, 0, wide=True)
    wq, ws = quantize_weights(rng.normal(size=(8, 12)))
    y = g.fully_connected(h, g.constant("w", wq, scale=ws), g.constant("b", np.zeros(8, np.int32)), 0.001, None,
                          wide=True, input_bound=2000)
    r = g.add(y, y, 0.002, None, wide=True)
    n = g.layer_norm(r, rng.normal(1, 0.1, 8), rng.normal(0, 0.1, 8), 5 / 32767, 0, wide=True)
    g.output(g.layer_norm(n, np.ones(8), np.zeros(8), 0.05, 128))
    return g


def sample_input(batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2.4, 2.6, size=(batch, 6, 6, 3)).astype(np.float32)


# -- a small BERT encoder (needs torch) ------------------------------------------------------


def tiny_bert(seed: int = 0, head: bool = False):
    """A 2-layer, hidden-32 MiniLM-shaped encoder with mean pooling (random weights), and with
    `head` a classifier on the pooled value (tanh, then a linear layer)."""
    import torch

    from intinfer.models.minilm import MiniLM, PooledEncoder

    class PooledClassifier(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(32, 3)

        def forward(self, ids, mask, types):
            return self.head(torch.tanh(self.encoder(ids, mask, types)))

    torch.manual_seed(seed)
    encoder = PooledEncoder(MiniLM(vocab_size=50, hidden=32, layers=2, heads=4, intermediate=64, max_positions=16))
    return (PooledClassifier(encoder) if head else encoder).eval()


def token_batch(n: int, s: int, gen):
    """Random ids, a mask that pads part of each sequence's second half, zero token types."""
    import torch

    ids = torch.randint(0, 50, (n, s), generator=gen)
    mask = torch.ones(n, s, dtype=torch.long)
    mask[:, s // 2:] = torch.randint(0, 2, (n, s - s // 2), generator=gen)
    return ids, mask, torch.zeros(n, s, dtype=torch.long)


def ids_and_mask_model(seed: int = 0) -> GraphBuilder:
    """int32 ids [?, 8] (read by a GATHER of 50 rows and, through a RESHAPE, one of 10) and an
    int32 mask [?, 8] (read by a GATHER of 8 positions and MASKED_MEAN) -> float [?, 4]."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    ids = g.input("ids", (None, 8), "int32")
    mask = g.input("mask", (None, 8), "int32")

    def table(name, rows):
        wq, ws = quantize_weights(rng.normal(0, 0.05, (rows, 4)))
        return g.constant(name, wq, "int8", scale=ws)

    small = g.gather(table("small", 10), g.reshape(ids, [-1, 8]), 0.002, 128)
    large = g.gather(table("large", 50), ids, 0.002, 128)
    positions = g.gather(table("positions", 8), mask, 0.002, 128, positions=True)
    x = g.add(g.add(small, large, 0.004, 128), positions, 0.006, 128)
    g.output(g.masked_mean(x, mask))
    return g


def write_seed_corpus(directory) -> None:
    """The libFuzzer seeds (tests/test_fuzz.py, tests/test_sanitizers.py, scripts/fuzz_long.py):
    valid files with every op and every constant encoding, so mutations start past the header."""
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for seed in range(4):
        (directory / f"seed{seed}.iif").write_bytes(every_op_model(seed).to_bytes())
        (directory / f"encoded{seed}.iif").write_bytes(encoded_constants_model(seed).to_bytes())
        (directory / f"wide{seed}.iif").write_bytes(wide_model(seed).to_bytes())
