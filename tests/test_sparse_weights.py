"""Block-sparse int8 weights (docs/format.md, the block_sparse and block_bitmap encodings;
docs/pruning.md): read by FULLY_CONNECTED and ungrouped CONV2D with either index, on every kernel
path and thread count bit for bit against tests/oracle.py (which multiplies the dense codes) and
against the same layer stored dense; the bytes they save and the index the writer picks; the
exporter's choice of encoding; and the clear refusals."""

import numpy as np
import pytest
import torch

import intinfer
import oracle
from conftest import ISAS, assert_same, check_graph, load_graph
from intinfer.builder import SPARSE_INDEXES, GraphBuilder
from intinfer.export.lower import SPARSE_BLOCK, SPARSE_MAX_DENSITY, block_density
from intinfer.quant import quantize_bias


def sparse_codes(rng, shape, block, density):
    """int8 codes of the whole range whose 1 x block blocks of the last axis are kept with
    probability `density` (the others zero); kept blocks may hold zeros too."""
    codes = rng.integers(-127, 128, shape)
    keep = rng.random(shape[:-1] + (shape[-1] // block,)) < density
    return codes * np.repeat(keep, block, axis=-1)


def fc_graph(rng, codes, block, output="uint8", rows=None, index=None):
    n, k = codes.shape
    g = GraphBuilder()
    x = g.input("x", (rows, k), "uint8", 0.05, 131)
    w_scales = rng.uniform(0.002, 0.02, n)
    w = g.constant("w", codes, "int8", scale=w_scales, block_sparse=block, sparse_index=index if block else None)
    b = g.constant("b", quantize_bias(rng.normal(size=n), 0.05, w_scales))
    if output == "float":
        y = g.fully_connected(x, w, b, None, None)
    elif output == "wide":
        y = g.fully_connected(x, w, b, 0.01, 0, wide=True)
    else:
        y = g.fully_connected(x, w, b, 0.5 * np.sqrt(k), 120, act_min=3, act_max=250)
    g.output(y)
    return g


@pytest.mark.parametrize("index", list(SPARSE_INDEXES))
@pytest.mark.parametrize("block", [1, 2, 4, 8])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("n,k,rows", [(1, 8, 1), (17, 16, 3), (40, 64, 1), (33, 96, 9), (24, 256, 20), (5, 72, 2)])
def test_fully_connected_reads_block_sparse_weights(rng, index, block, density, n, k, rows):
    """Blocks of every kernel grouping, none to all kept, one row (the one-row kernel), passes of
    4 and 8 rows with tails, channel tails, bitmap rows of whole bytes and with a partial last
    byte (72 / 8 = 9 positions): every path equals the oracle at 1 and 2 threads, either index."""
    x = rng.integers(0, 256, (rows, k), dtype=np.uint8)
    check_graph(fc_graph(rng, sparse_codes(rng, (n, k), block, density), block, index=index), x, threads=(1, 2))


@pytest.mark.parametrize("index", list(SPARSE_INDEXES))
@pytest.mark.parametrize("output", ["float", "wide"])
@pytest.mark.parametrize("rows", [1, 6])
def test_fully_connected_sparse_float_and_wide_outputs(rng, index, output, rows):
    x = rng.integers(0, 256, (rows, 48), dtype=np.uint8)
    check_graph(fc_graph(rng, sparse_codes(rng, (19, 48), 4, 0.3), 4, output, index=index), x, threads=(1, 2))


@pytest.mark.parametrize("index", list(SPARSE_INDEXES))
def test_a_wide_input_with_sparse_weights_is_refused(rng, index):
    """A FULLY_CONNECTED that reads a wide input multiplies dense int8 weights only."""
    g = GraphBuilder()
    x = g.input("x", (None, 8), "uint8", 0.05, 128)
    h = g.fully_connected(x, g.constant("w0", np.eye(16, 8, dtype=np.int8), scale=[0.01] * 16),
                          g.constant("b0", np.zeros(16, np.int32)), 0.01, 0, wide=True)
    w = g.constant("w", sparse_codes(rng, (4, 16), 4, 0.5), "int8", scale=[0.01] * 4, block_sparse=4,
                   sparse_index=index)
    g.output(g.fully_connected(h, w, g.constant("b", np.zeros(4, np.int32)), 0.5, 128, input_bound=1000))
    with pytest.raises(intinfer.ModelError, match=r"weights 'w' are block-sparse; a wide input takes dense int8 "
                                                  r"weights"):
        load_graph(g)


def test_sparse_and_dense_storage_of_the_same_codes_give_the_same_bytes(rng):
    """The engine's result does not depend on the encoding: the same codes stored dense and
    block-sparse, run on each path, give identical outputs."""
    codes = sparse_codes(rng, (70, 192), 4, 0.2)
    x = rng.integers(0, 256, (11, 192), dtype=np.uint8)
    for isa in ISAS:
        got = [load_graph(fc_graph(np.random.default_rng(1), codes, block, index=index), isa=isa).run(x, raw=True)
               for block, index in ((None, None), (4, "columns"), (4, "bitmap"))]
        assert_same(got[0], got[1])
        assert_same(got[0], got[2])


def conv_graph(rng, codes, block, stride=1, padding=0, index=None):
    cout, kh, kw, cin = codes.shape
    g = GraphBuilder()
    x = g.input("x", (None, 7, 6, cin), "uint8", 0.04, 17)
    w_scales = rng.uniform(0.002, 0.02, cout)
    w = g.constant("w", codes, "int8", scale=w_scales, block_sparse=block, sparse_index=index)
    b = g.constant("b", quantize_bias(rng.normal(size=cout), 0.04, w_scales))
    g.output(g.conv2d(x, w, b, 0.3 * np.sqrt(kh * kw * cin), 100, stride=stride, padding=padding))
    return g


@pytest.mark.parametrize("index", list(SPARSE_INDEXES))
@pytest.mark.parametrize("cin,block", [(8, 4), (12, 4), (16, 8), (6, 1)])
@pytest.mark.parametrize("kernel,stride,padding", [((1, 1), 1, 0), ((3, 3), 1, 1), ((3, 3), 2, 1), ((1, 1), 2, 0)])
def test_conv2d_reads_block_sparse_weights(rng, index, cin, block, kernel, stride, padding):
    """Pointwise (the GEMM on the input as it is) and im2col, whose channels are KH x KW rows of
    the encoding each: every path equals the oracle, either index."""
    x = rng.integers(0, 256, (2, 7, 6, cin), dtype=np.uint8)
    codes = sparse_codes(rng, (21, *kernel, cin), block, 0.3)
    check_graph(conv_graph(rng, codes, block, stride=stride, padding=padding, index=index), x, threads=(1, 2))


@pytest.mark.parametrize("index", list(SPARSE_INDEXES))
def test_grouped_conv_with_sparse_weights_is_refused(rng, index):
    g = GraphBuilder()
    x = g.input("x", (None, 5, 5, 8), "uint8", 0.04, 17)
    w = g.constant("w", sparse_codes(rng, (8, 3, 3, 4), 4, 0.5), "int8", scale=[0.01] * 8, block_sparse=4,
                   sparse_index=index)
    g.output(g.conv2d(x, w, g.constant("b", np.zeros(8, np.int32)), 0.5, 100, padding=1, groups=2))
    with pytest.raises(intinfer.ModelError, match=r"weights 'w' are block-sparse, which the engine reads for "
                                                  r"ungrouped convs only \(groups = 2\)"):
        load_graph(g)


@pytest.mark.parametrize("index", list(SPARSE_INDEXES))
def test_sparse_codes_out_of_range_are_refused(rng, index):
    """-128 is an int8 but no symmetric weight code: refused naming the tensor, as for dense."""
    codes = sparse_codes(rng, (4, 16), 4, 1.0)
    codes[2, 5] = -128
    with pytest.raises(intinfer.ModelError, match=r"weights 'w' hold -128 \(the range is \[-127, 127\]\)"):
        load_graph(fc_graph(rng, codes, 4, index=index))


@pytest.mark.parametrize("index", list(SPARSE_INDEXES))
def test_sparse_weights_take_their_bytes_in_the_file_and_in_memory(rng, index):
    """A 1024 x 1024 layer at 10% of its 1 x 4 blocks: the file holds the kept blocks and their
    index (a column each and the row starts, or a bit a block position); the kernels hold 4 bytes
    a kept group (int8) and its index on the AVX2 and NEON paths, one byte and an index a
    non-zero code on the reference path."""
    codes = sparse_codes(rng, (1024, 1024), 4, 0.1)
    kept = int(np.any(codes.reshape(-1, 4) != 0, axis=1).sum())
    dense = GraphBuilder()
    x = dense.input("x", (1, 1024), "uint8", 0.05, 128)
    dense.output(dense.fully_connected(x, dense.constant("w", codes, "int8", scale=[0.01] * 1024),
                                       dense.constant("b", np.zeros(1024, np.int32)), 0.5, 128))
    sparse = fc_graph(rng, codes, 4, index=index)
    encoding = 8 + (4 * 1025 + 4 * kept if index == "columns" else 1024 * 256 // 8) + 4 * kept
    assert load_graph(sparse).memory()["weight_bytes"] == encoding + 1024 * 4
    saved = len(dense.to_bytes()) - len(sparse.to_bytes())
    assert abs(saved - (1024 * 1024 - encoding)) < 64  # the data section's alignment
    nonzero = int(np.count_nonzero(codes))
    stage = 1024 * 4 * 4  # bias, multiplier, two shifts (padded to whole tiles: at most 2x)
    density = kept / (1024 * 1024 // 4)
    for isa in ISAS:
        held = load_graph(sparse, isa=isa).memory()["kernel_weight_bytes"]
        one_row, _, deep = intinfer._core.sparse_crossover(isa)
        if density <= min(one_row, deep):
            codes_held = nonzero * 5 if isa == "ref" else kept * 8
            assert codes_held <= held <= codes_held + 4 * 1028 + 2 * stage + 64, (isa, held)
        else:  # densified at load: this path's dense kernel is faster at this density
            assert 1024 * 1024 <= held <= 1024 * 1024 + 2 * stage, (isa, held)


@pytest.mark.parametrize("index", list(SPARSE_INDEXES))
@pytest.mark.parametrize("cin", [32, 256])
def test_each_path_picks_sparse_or_dense_kernels_by_its_crossover(rng, index, cin):
    """A 1x1 conv's block-sparse weights run on the path's block-sparse kernel at or below the
    crossover its dense int8 row states for the conv's depth (intinfer._core.sparse_crossover),
    and are densified at load above it: the kernels hold a kept group's 8 bytes in one case and
    the whole [cout, cin] in the other; both equal the oracle on every path."""
    cout = 64
    for density in (0.04, 0.5):
        codes = sparse_codes(rng, (cout, 1, 1, cin), 4, density)
        kept = int(np.any(codes.reshape(-1, 4) != 0, axis=1).sum())
        real_density = kept / (cout * cin // 4)
        g = conv_graph(rng, codes, 4, index=index)
        check_graph(g, rng.integers(0, 256, (1, 7, 6, cin), dtype=np.uint8), threads=(1,))
        for isa in ISAS:
            if isa == "ref":
                continue
            _, shallow, deep = intinfer._core.sparse_crossover(isa)
            held = load_graph(g, isa=isa).memory()["kernel_weight_bytes"]
            stage = 2 * cout * 4 * 4  # the output stage, padded to whole tiles: at most 2x
            if real_density <= (shallow if cin < 96 else deep):
                assert kept * 8 <= held <= kept * 8 + 4 * (cout + 1) + 32 * 8 + stage, (isa, density, held)
            else:
                assert cout * cin <= held <= cout * cin + stage, (isa, density, held)


def test_sparse_kernels_can_be_kept_and_a_wrong_setting_is_refused(rng, monkeypatch):
    """INTINFER_SPARSE_KERNELS=always keeps a layer at 30% of its blocks (above the VNNI paths'
    crossovers) on the sparse kernel of every path (the kernels hold its kept groups, not
    [cout, cin]) with the same bytes out; another value is refused at load, naming it."""
    codes = sparse_codes(rng, (64, 1, 1, 256), 4, 0.3)
    kept = int(np.any(codes.reshape(-1, 4) != 0, axis=1).sum())
    g = conv_graph(rng, codes, 4)
    monkeypatch.setenv("INTINFER_SPARSE_KERNELS", "always")
    check_graph(g, rng.integers(0, 256, (1, 7, 6, 256), dtype=np.uint8), threads=(1,))
    for isa in ISAS:
        if isa != "ref":
            assert load_graph(g, isa=isa).memory()["kernel_weight_bytes"] < 64 * 256, isa
    assert kept * 8 < 64 * 256
    monkeypatch.setenv("INTINFER_SPARSE_KERNELS", "sometimes")
    with pytest.raises(intinfer.ModelError, match="INTINFER_SPARSE_KERNELS='sometimes' is not understood"):
        load_graph(g)


def test_the_sparse_crossovers_of_the_paths():
    """Every path states its crossovers as shares in [0, 1]; the reference always reads the
    sparse weights (its kernels read either form); an unknown path is refused."""
    for isa in ISAS:
        assert all(0 <= x <= 1 for x in intinfer._core.sparse_crossover(isa)), isa
    assert intinfer._core.sparse_crossover("ref") == (1, 1, 1)
    with pytest.raises(ValueError, match="'nonesuch' is not a kernel path"):
        intinfer._core.sparse_crossover("nonesuch")


@pytest.mark.parametrize("density,index", [(0.0, "columns"), (0.01, "columns"), (0.05, "bitmap"), (0.5, "bitmap")])
def test_the_writer_stores_the_smaller_index(rng, density, index):
    """Unasked, the writer picks the index that takes fewer bytes: a 64 x 1024 layer's bitmap is 32
    bytes a row, its columns 4 bytes a kept block and 4 a row (2.7% of the blocks is the break)."""
    codes = sparse_codes(rng, (64, 1024), 4, density)
    graphs = {i: fc_graph(rng, codes, 4, index=i) for i in (None, *SPARSE_INDEXES)}
    assert graphs[None].tensors[1].encoding == SPARSE_INDEXES[index]
    sizes = {i: len(g.to_bytes()) for i, g in graphs.items()}
    assert sizes[None] == sizes[index] == min(sizes.values()), sizes


def test_the_sparse_gemm_benchmark_runs_quick(tmp_path):
    """bench/sparse_gemm.py --quick: a row per shape and density, both timed, the sparse file
    smaller at low density. Run from tmp_path, so that the installed package is imported."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bench" / "sparse_gemm.py"
    out = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith(("| 1x", "| 9x"))]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [
        (s, d) for s in ("1x64x48", "9x64x48") for d in ("50%", "30%", "20%", "10%", "5%")], out.stdout
    for r in rows:
        assert float(r[4].strip().rstrip("x")) > 0, r
    file_kib = [[float(v) for v in r[5].split("/")] for r in rows if r[1].strip() == "5%"]
    assert all(s < d for d, s in file_kib), rows


class Pruned(torch.nn.Module):
    """A linear layer and a 1x1 conv pruned to a given block density, and a dense linear layer."""

    def __init__(self, density, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(8, 16, 1)
        self.fc = torch.nn.Linear(16 * 4 * 4, 64)
        self.head = torch.nn.Linear(64, 10)
        with torch.no_grad():
            for layer in (self.conv, self.fc):
                w = layer.weight.reshape(layer.weight.shape[0], -1, SPARSE_BLOCK)
                keep = torch.rand(w.shape[:2], generator=gen) < density
                w.mul_(keep[..., None])

    def forward(self, x):
        return self.head(torch.relu(self.fc(torch.relu(self.conv(x)).flatten(1))))


@pytest.mark.parametrize("density", [0.05, 0.12, 0.35, 0.5])
def test_the_exporter_stores_sparse_layers_block_sparse(density):
    """A layer is written block-sparse when at most SPARSE_MAX_DENSITY of its 1 x 4 blocks are
    non-zero: the conv (16 pixels a sample, K = 8) and the linear layer on [batch, features] (one
    row a sample) by their thresholds; sparse_weights=False writes all dense; the engine equals the
    oracle and gives the same outputs either way."""
    torch.manual_seed(0)
    model = Pruned(density).eval()
    calib = [torch.randn(4, 8, 4, 4) for _ in range(3)]
    files = {flag: intinfer.quantize(model, calib[0], calib, sparse_weights=flag) for flag in (True, False)}
    # The weights by their output channels: conv 16, fc 64, head 10 (dense).
    encodings = {t.shape[0]: t.encoding for t in files[True].builder.tensors if t.name.endswith("_w")}
    expected = {n for n, limit in ((16, SPARSE_MAX_DENSITY["rows, K < 96"]), (64, SPARSE_MAX_DENSITY["one row"]))
                if density <= limit}
    assert {n for n, e in encodings.items() if e in SPARSE_INDEXES.values()} == expected, encodings
    assert all(t.encoding == "dense" for t in files[False].builder.tensors)
    x = torch.randn(5, 8, 4, 4)
    feeds = [x.numpy()]
    want = oracle.run_graph(files[True].builder, feeds)
    assert_same(files[True].load().run(feeds, raw=True), want)
    assert_same(files[False].load().run(feeds, raw=True), want)


def test_block_density():
    codes = np.zeros((2, 8), np.int8)
    codes[0, 1] = 3
    codes[1, 7] = -1
    assert block_density(codes) == 0.5 and block_density(codes, 2) == 0.25 and block_density(codes[:, :6]) == 1.0
