"""Packed int4 / int2 weights (docs/format.md, packed encoding; docs/quantization.md): read by
FULLY_CONNECTED, CONV2D and GATHER, on every kernel path and thread count bit for bit against
tests/oracle.py (which multiplies the unpacked codes), the file and resident bytes they save,
the exporter's choice of dtype, and the clear refusals."""

import numpy as np
import pytest
import torch

import intinfer
import oracle
from conftest import ISAS, assert_same, check_graph, load_graph
from intinfer.builder import GraphBuilder
from intinfer.quant import channel_scales, layer_scales, quantize_bias, quantize_weights, round_weights

BITS = {"int4": 7, "int2": 1}


def codes(rng, dtype, shape):
    """Codes of the dtype's whole range, the extremes included."""
    q = BITS[dtype]
    return rng.integers(-q, q + 1, shape)


def fc_graph(rng, dtype, n, k, output="uint8", rows=None):
    g = GraphBuilder()
    x = g.input("x", (rows, k), "uint8", 0.05, 131)
    w_scales = rng.uniform(0.002, 0.02, n)
    w = g.constant("w", codes(rng, dtype, (n, k)), dtype, scale=w_scales)
    b = g.constant("b", quantize_bias(rng.normal(size=n), 0.05, w_scales))
    if output == "float":
        y = g.fully_connected(x, w, b, None, None)
    elif output == "wide":
        y = g.fully_connected(x, w, b, 0.01, 0, wide=True)
    else:
        y = g.fully_connected(x, w, b, 0.02 * np.sqrt(k) * BITS[dtype] / 7, 120, act_min=3, act_max=250)
    g.output(y)
    return g


@pytest.mark.parametrize("dtype", ["int4", "int2"])
@pytest.mark.parametrize("n,k", [(1, 1), (5, 3), (16, 32), (33, 17), (40, 257)])
@pytest.mark.parametrize("rows", [1, 3, 9])
def test_fully_connected_reads_packed_weights(rng, dtype, n, k, rows):
    """Odd K (a row's last byte half used), tails of the 16-channel tiles, one row and several:
    every path equals the oracle at 1 and 2 threads."""
    x = rng.integers(0, 256, (rows, k), dtype=np.uint8)
    check_graph(fc_graph(rng, dtype, n, k), x, threads=(1, 2))


@pytest.mark.parametrize("dtype", ["int4", "int2"])
@pytest.mark.parametrize("output", ["float", "wide"])
def test_fully_connected_packed_float_and_wide_outputs(rng, dtype, output):
    x = rng.integers(0, 256, (6, 45), dtype=np.uint8)
    check_graph(fc_graph(rng, dtype, 19, 45, output), x, threads=(1, 2))


def conv_graph(rng, dtype, cout, kh, kw, cin, groups=1, stride=1, padding=0):
    g = GraphBuilder()
    x = g.input("x", (None, 7, 6, cin), "uint8", 0.04, 17)
    w_scales = rng.uniform(0.002, 0.02, cout)
    w = g.constant("w", codes(rng, dtype, (cout, kh, kw, cin // groups)), dtype, scale=w_scales)
    b = g.constant("b", quantize_bias(rng.normal(size=cout), 0.04, w_scales))
    g.output(g.conv2d(x, w, b, 0.01 * np.sqrt(kh * kw * cin // groups), 100, stride=stride, padding=padding,
                      groups=groups))
    return g


@pytest.mark.parametrize("dtype,cin", [("int4", 2), ("int4", 6), ("int4", 18), ("int2", 4), ("int2", 12)])
@pytest.mark.parametrize("kernel,stride,padding", [((1, 1), 1, 0), ((3, 3), 1, 1), ((3, 3), 2, 1), ((1, 3), 1, 0)])
def test_conv2d_reads_packed_weights(rng, dtype, cin, kernel, stride, padding):
    """Pointwise (the GEMM on the input as it is), im2col and the reference direct convolution."""
    x = rng.integers(0, 256, (2, 7, 6, cin), dtype=np.uint8)
    check_graph(conv_graph(rng, dtype, 21, *kernel, cin, stride=stride, padding=padding), x, threads=(1, 2))


def test_grouped_and_depthwise_convs_with_packed_weights(rng):
    """Groups whose rows fill whole bytes, and a 1x1 depthwise conv (one code a channel)."""
    x = rng.integers(0, 256, (1, 7, 6, 8), dtype=np.uint8)
    check_graph(conv_graph(rng, "int4", 8, 3, 3, 8, groups=4, padding=1), x)
    check_graph(conv_graph(rng, "int4", 8, 1, 1, 8, groups=8), x)


def test_packed_conv_rows_inside_a_byte_are_refused(rng):
    """OHWI rows of 3 int4 codes leave half a byte between a channel's rows: refused by name."""
    g = conv_graph(rng, "int4", 4, 3, 3, 3)
    with pytest.raises(intinfer.ModelError, match=r"weights 'w' \[4, 3, 3, 3\]: packed int4 rows of 3 codes end "
                                                  r"inside a byte.*store this layer as int8"):
        load_graph(g)


@pytest.mark.parametrize("dtype", ["int4", "int2"])
@pytest.mark.parametrize("wide", [False, True])
def test_gather_reads_a_packed_table(rng, dtype, wide):
    g = GraphBuilder()
    ids = g.input("ids", (None, None), "int32")
    table = g.constant("table", codes(rng, dtype, (11, 13)), dtype, scale=rng.uniform(0.01, 0.1, 11))
    g.output(g.gather(table, ids, 0.02, 128, wide=wide))
    check_graph(g, rng.integers(0, 11, (3, 5), dtype=np.int32), threads=(1, 2))


def test_packed_weights_take_their_bytes_in_the_file_and_in_memory(rng):
    """A 1024 x 1024 FULLY_CONNECTED: the file holds K / 2 and K / 4 bytes a channel, and the
    kernels keep their own tiles only, no int8 copy: on the reference path nothing but the output
    stage (the file is read in place), on an optimized path tiles of the file's width (int8 is
    held widened to int16 by the AVX2 and NEON kernels: 4x and 8x int4's and int2's bytes)."""
    sizes, memory = {}, {}
    for dtype in ("int8", "int4", "int2"):
        g = GraphBuilder()
        x = g.input("x", (1, 1024), "uint8", 0.05, 128)
        g.output(g.fully_connected(x, g.constant("w", rng.integers(-1, 2, (1024, 1024)), dtype, scale=[0.01] * 1024),
                                   g.constant("b", np.zeros(1024, np.int32)), 0.5, 128))
        sizes[dtype] = len(g.to_bytes())
        memory[dtype] = {isa: load_graph(g, isa=isa).memory() for isa in ISAS}
    assert sizes["int8"] - sizes["int4"] == 1024 * 512 and sizes["int4"] - sizes["int2"] == 1024 * 256
    stage = 1024 * 4 * 4  # bias, multiplier, two shifts
    for dtype, per_channel in (("int8", 1024), ("int4", 512), ("int2", 256)):
        assert memory[dtype]["ref"]["weight_bytes"] == 1024 * per_channel + 1024 * 4
        assert memory[dtype]["ref"]["kernel_weight_bytes"] < 2 * stage
    for isa in ISAS[1:]:
        held = {d: memory[d][isa]["kernel_weight_bytes"] for d in memory}
        assert held["int4"] <= 1024 * 512 + 2 * stage and held["int2"] <= 1024 * 256 + 2 * stage


def test_the_packed_gemm_benchmark_runs_quick(tmp_path):
    """bench/packed_gemm.py --quick: a row per shape, each width timed, the sub-byte files smaller.
    Run from tmp_path, so that the installed package is imported, not the source folder."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bench" / "packed_gemm.py"
    out = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| 1x") or
            line.startswith("| 5x")]
    assert [r[0].strip() for r in rows] == ["1x64x48", "5x64x48"], out.stdout
    for r in rows:
        assert all(float(c) > 0 for c in r[1:4]), r
        file_kib = [float(c.split("/")[0]) for c in r[7:10]]
        assert file_kib[1] < file_kib[0], r


class Bag(torch.nn.Module):
    """Token embeddings and a linear layer."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 16)
        self.fc = torch.nn.Linear(16, 12)

    def forward(self, ids):
        return torch.relu(self.fc(self.emb(ids)))


def test_two_bit_scales_are_the_least_squares_ternary_ones(rng):
    """At 2 bits each row's scale is the one whose codes {-s, 0, s} come closest to the row in
    squared error: against every one of the 728 nonzero ternary code vectors of a 6-weight row, each
    with its own least-squares scale, rounding to nearest with channel_scales' scale reaches the
    least error. The exporter's scales (layer_scales) and QAT's fake quantization use it; wider
    widths keep max |row| / qmax; a row of zeros gets 0 (quantize_weights: scale 1)."""
    from intinfer.qat import _fake_quant_weight

    codes = np.array(np.meshgrid(*[[-1, 0, 1]] * 6)).reshape(6, -1).T.astype(np.float64)
    codes = codes[np.any(codes != 0, axis=1)]
    rows = np.concatenate([rng.standard_normal((40, 6)), rng.standard_t(2, (40, 6)), np.ones((1, 6)),
                           np.array([[5.0, 0, 0, 0, 0, 0], [5.0, 0, 0, 0, 0, -0.1]])])
    scales = channel_scales(rows, 1)
    for row, s in zip(rows, scales):
        least = min(np.sum((row - c @ row / (c @ c) * c) ** 2) for c in codes)
        got = np.sum((row - round_weights(row[None], np.array([s]), 1)[0] * s) ** 2)
        assert got <= least + 1e-12 and s <= np.abs(row).max()
    assert channel_scales(np.array([[-3.0]]), 1).tolist() == [3.0]
    np.testing.assert_array_equal(layer_scales(rows, np.zeros(len(rows)), 1.0, 1), scales.astype(np.float32))
    fake = _fake_quant_weight(torch.from_numpy(rows).float(), 1).double().numpy()
    codes = round_weights(rows.astype(np.float32), scales.astype(np.float32), 1)
    np.testing.assert_allclose(fake, codes * scales.astype(np.float32)[:, None], rtol=1e-6)
    np.testing.assert_array_equal(channel_scales(rows, 7), np.abs(rows).max(1) / 7)
    assert channel_scales(np.zeros((2, 6)), 1).tolist() == [0.0, 0.0]
    assert quantize_weights(np.zeros((2, 6)), qmax=1)[1].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("bits", [{"emb": 4, "fc": 2}, {"emb": 2}, 4])
def test_the_exporter_packs_tables_and_weights_it_is_given_bits_for(bits):
    """weight_bits names the embedding too (tables stay 8-bit otherwise, the int form of
    weight_bits included); the engine equals the oracle on the file bit for bit and tracks torch."""
    torch.manual_seed(0)
    model = Bag().eval()
    calib = [torch.randint(0, 50, (4, 7)) for _ in range(3)]
    q = intinfer.quantize(model, calib[0], calib, weight_bits=bits)
    dtypes = {t.name: t.dtype for t in q.builder.tensors if t.data is not None and t.dtype.startswith("int")
              and t.dtype != "int32"}
    table = next(d for n, d in dtypes.items() if n.endswith("_table"))
    fc = next(d for n, d in dtypes.items() if n.endswith("_w"))
    want = {2: "int2", 4: "int4", 8: "int8"}
    expected_bits = bits if isinstance(bits, dict) else {"fc": bits}
    assert table == want[expected_bits.get("emb", 8)] and fc == want[expected_bits.get("fc", 8)]
    x = torch.randint(0, 50, (3, 7))
    m = q.load()
    want_raw = oracle.run_graph(q.builder, [x.numpy().astype(np.int32)])
    assert_same(m.run([x.numpy().astype(np.int32)], raw=True), want_raw)
    got, ref = m.run(x.numpy()), model(x).detach().numpy()
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > (0.5 if 2 in expected_bits.values() else 0.9)


def test_qat_trains_per_layer_widths_and_converts_bit_exact():
    """intinfer.qat takes the same {module: bits} dict (embeddings included): after a few steps
    the eval-mode forward equals the engine on the converted file bit for bit, and the file packs
    the layers as named; a name that is no such module is refused."""
    from intinfer import qat

    torch.manual_seed(0)
    model = Bag().eval()
    data = [torch.randint(0, 50, (4, 7)) for _ in range(4)]
    qm = qat.prepare(model, data[0], qat.QATConfig(weight_bits={"emb": 4, "fc": 2})).train()
    opt = torch.optim.Adam(qm.parameters(), lr=1e-3)
    for x in data:
        loss = (qm(x) - model(x).detach()).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    qm.eval()
    x = torch.randint(0, 50, (3, 7))
    q = qat.convert(qm)
    m = q.load()
    feeds = [x.numpy().astype(np.int32)]
    assert_same(m.run(feeds, raw=True), oracle.run_graph(q.builder, feeds))
    np.testing.assert_array_equal(qm(x).detach().numpy(), m.run(feeds))
    dtypes = {t.name.rsplit("_", 1)[-1]: t.dtype for t in q.builder.tensors if t.name.endswith(("_table", "_w"))}
    assert dtypes == {"table": "int4", "w": "int2"}
    with pytest.raises(ValueError, match=r"names \['nope'\], which are not conv/linear/embedding modules"):
        qat.prepare(model, data[0], qat.QATConfig(weight_bits={"nope": 4}))
    with pytest.raises(ValueError, match="weight_bits"):
        qat.prepare(model, data[0], qat.QATConfig(weight_bits={"fc": 1}))
