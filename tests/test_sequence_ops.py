"""A convolution over a sequence (Lite Transformer's convolution branch, issue #17): CONV2D on a
[batch, sequence, channels] input (a 1-D convolution) and APPLY_MASK as one-op models bit for
bit against tests/oracle.py on every path; then the exporter on plain PyTorch modules (GLU,
nn.Conv1d / F.conv1d with a softmax-normalized kernel, the token mask by product or masked_fill,
causal padding): torch, the engine and the QAT eval model; the padded tokens' isolation and the
refusals."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import intinfer
import oracle
from conftest import check_graph, load_graph
from intinfer import qat
from intinfer.builder import GraphBuilder
from intinfer.export import ExportError
from test_ops import THREADS, out_qparams, random_qparams, u8
from test_qat import engine_and_oracle


def conv1d_graph(rng, n, s, cin, cout, k, stride=1, pads=(0, 0), dilation=1, groups=None, dynamic=False):
    """A one-CONV2D graph on [n, s, cin] with a 1 x k kernel (depthwise unless `groups` says),
    and its input."""
    groups = cin if groups is None else groups
    s_in, z_in = random_qparams(rng)
    x = u8(rng, (n, s, cin))
    wq = rng.integers(-127, 128, (cout, 1, k, cin // groups)).astype(np.int8)
    s_w = rng.uniform(0.002, 0.02, cout).astype(np.float32)
    bias = rng.normal(0, 3000 * np.sqrt(k * cin // groups), cout).astype(np.int32)
    left, right = pads
    acc = oracle.conv2d_accumulate(x[:, None], z_in, wq, bias, (1, stride), (0, left, 0, right), (1, dilation), groups)
    s_out, z_out = out_qparams(acc * (s_in * s_w.astype(np.float64)))
    b = GraphBuilder()
    xt = b.input("x", (None, None, cin) if dynamic else (n, s, cin), "uint8", s_in, z_in)
    b.output(b.conv2d(xt, b.constant("w", wq, "int8", scale=s_w), b.constant("bias", bias, "int32"), s_out, z_out,
                      stride=(1, stride), padding=(0, left, 0, right), dilation=(1, dilation), groups=groups))
    return b, x


CONV1D_CASES = {
    "k3_centred": dict(n=2, s=9, cin=16, cout=16, k=3, pads=(1, 1)),
    "k7_centred_odd_channels": dict(n=1, s=20, cin=13, cout=13, k=7, pads=(3, 3)),
    "k7_causal": dict(n=3, s=11, cin=32, cout=32, k=7, pads=(6, 0)),
    "k31_centred_long": dict(n=1, s=40, cin=24, cout=24, k=31, pads=(15, 15)),
    "k1": dict(n=2, s=5, cin=8, cout=8, k=1),
    "k5_stride2": dict(n=1, s=12, cin=8, cout=8, k=5, stride=2, pads=(2, 2)),
    "k3_dilation2_causal": dict(n=1, s=10, cin=9, cout=9, k=3, dilation=2, pads=(4, 0)),
    "multiplier2": dict(n=1, s=8, cin=4, cout=8, k=3, pads=(1, 1)),
    "ungrouped": dict(n=2, s=7, cin=6, cout=10, k=3, pads=(1, 1), groups=1),
    "one_token": dict(n=1, s=1, cin=16, cout=16, k=7, pads=(3, 3)),
}


@pytest.mark.parametrize("case", CONV1D_CASES.values(), ids=CONV1D_CASES.keys())
def test_conv1d(case, rng):
    b, x = conv1d_graph(rng, **case)
    got = check_graph(b, x, threads=THREADS)
    assert got.shape[:2] == (case["n"], (case["s"] + sum(case.get("pads", (0, 0))) -
                                         case.get("dilation", 1) * (case["k"] - 1) - 1) // case.get("stride", 1) + 1)


def test_conv1d_any_sequence_length(rng):
    b, _ = conv1d_graph(rng, 1, 8, 16, 16, 5, pads=(2, 2), dynamic=True)
    model = load_graph(b)
    for n, s in ((1, 1), (3, 17), (2, 128)):
        x = u8(rng, (n, s, 16))
        assert (model.run(x, raw=True) == oracle.run_graph(b, x)).all()


def test_conv1d_kernel_longer_than_the_sequence_is_refused(rng):
    b, _ = conv1d_graph(rng, 1, 8, 8, 8, 7, dynamic=True)
    with pytest.raises(ValueError, match="smaller than the kernel's span 7"):
        load_graph(b).run(u8(rng, (1, 5, 8)), raw=True)


def test_conv1d_needs_a_kernel_of_height_one(rng):
    b = GraphBuilder()
    xt = b.input("x", (1, 6, 4), "uint8", 0.1, 128)
    b.output(b.conv2d(xt, b.constant("w", np.ones((4, 3, 3, 1), np.int8), "int8", scale=np.full(4, 0.01, np.float32)),
                      b.constant("bias", np.zeros(4, np.int32), "int32"), 0.1, 128, padding=1, groups=4))
    with pytest.raises(ValueError, match="a 1-D input .* needs a kernel of height 1, the weights have 3"):
        load_graph(b).run(u8(rng, (1, 6, 4)), raw=True)


def mask_graph(shape, dtype_shape=None):
    b = GraphBuilder()
    xt = b.input("x", shape, "uint8", 0.05, 117)
    mt = b.input("mask", dtype_shape or (None, None), "int32")
    b.output(b.apply_mask(xt, mt))
    return b


@pytest.mark.parametrize("shape", [(3, 7, 20), (2, 5), (2, 4, 3, 5)])
def test_apply_mask(shape, rng):
    x = u8(rng, shape)
    keep = (rng.random(shape[:2]) < 0.6).astype(np.int32) * rng.integers(1, 5, shape[:2]).astype(np.int32)
    keep[0] = 1
    got = check_graph(mask_graph((None,) * len(shape)), [x, keep], threads=THREADS)
    assert (got[keep != 0] == x[keep != 0]).all() and (got[keep == 0] == 117).all()


def test_apply_mask_refuses_a_mask_of_another_shape(rng):
    with pytest.raises(ValueError, match=r"mask must be \[2, 5\], got \[2, 4\]"):
        load_graph(mask_graph((None, None, 3))).run([u8(rng, (2, 5, 3)), np.ones((2, 4), np.int32)], raw=True)


def test_apply_mask_refuses_a_float_mask():
    b = GraphBuilder()
    xt = b.input("x", (1, 4, 3), "uint8", 0.05, 117)
    mt = b.input("mask", (1, 4), "uint8", 1.0, 0)
    b.output(b.apply_mask(xt, mt))
    with pytest.raises(ValueError, match="mask"):
        load_graph(b)


def test_padded_tokens_do_not_leak_through_a_masked_convolution(rng):
    """APPLY_MASK then a centred depthwise conv: whatever the padded positions hold, the real
    tokens' outputs are those of the sentence alone (its own length, no padding)."""
    c, k = 16, 7
    b = GraphBuilder()
    xt = b.input("x", (None, None, c), "uint8", 0.04, 121)
    mt = b.input("mask", (None, None), "int32")
    w = b.constant("w", rng.integers(-127, 128, (c, 1, k, 1)).astype(np.int8), "int8",
                   scale=rng.uniform(0.002, 0.02, c).astype(np.float32))
    bias = b.constant("bias", rng.integers(-5000, 5000, c).astype(np.int32), "int32")
    b.output(b.conv2d(b.apply_mask(xt, mt), w, bias, 0.05, 128, padding=(0, k // 2, 0, k // 2), groups=c))
    model = load_graph(b)
    lengths = [5, 12, 9]
    x = u8(rng, (3, 12, c))
    mask = (np.arange(12)[None] < np.array(lengths)[:, None]).astype(np.int32)
    got = model.run([x, mask], raw=True)
    for i, n in enumerate(lengths):
        alone = model.run([x[i:i + 1, :n], np.ones((1, n), np.int32)], raw=True)
        assert (got[i, :n] == alone[0]).all()
    check_graph(b, [x, mask], threads=THREADS)


# -- the exporter: plain PyTorch modules -----------------------------------------------------

VOCAB, MAX_SEQ = 50, 24


class ConvBranch(torch.nn.Module):
    """Lite Transformer's convolution branch on embeddings: linear to twice the width, GLU, the
    padded tokens zeroed, a depthwise conv over the sequence (a plain nn.Conv1d, or a lightweight
    conv: a softmax-normalized kernel shared by the channels of each head), linear; then mean
    pooling or the hidden states."""

    def __init__(self, width=16, k=5, causal=False, lightweight=False, masking="mul", pooled=True, heads=4):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(VOCAB, width)
        self.glu_in = torch.nn.Linear(width, 2 * width)
        self.k, self.causal, self.lightweight, self.masking, self.pooled, self.heads = \
            k, causal, lightweight, masking, pooled, heads
        if lightweight:
            self.kernel = torch.nn.Parameter(torch.randn(heads, k))
        else:
            self.conv = torch.nn.Conv1d(width, width, k, padding=0 if causal else k // 2, groups=width)
        self.out = torch.nn.Linear(width, width)

    def forward(self, ids, mask):
        y = F.glu(self.glu_in(self.embed(ids)), dim=-1)
        if self.masking == "mul":
            y = y * mask[..., None].to(y.dtype)
        elif self.masking == "masked_fill":
            y = y.masked_fill(mask[..., None] == 0, 0.0)
        y = y.transpose(1, 2)
        if self.causal:
            y = F.pad(y, (self.k - 1, 0))
        if self.lightweight:
            w = torch.softmax(self.kernel, dim=-1).repeat_interleave(y.shape[1] // self.heads, dim=0).unsqueeze(1)
            y = F.conv1d(y, w, padding=0 if self.causal else self.k // 2, groups=y.shape[1])
        else:
            y = self.conv(y)
        y = self.out(y.transpose(1, 2))
        if not self.pooled:
            return y
        keep = mask[..., None].to(y.dtype)
        return (y * keep).sum(1) / keep.sum(1).clamp(min=1e-9)


def token_batch(n, s, gen):
    ids = torch.randint(1, VOCAB, (n, s), generator=gen)
    lengths = torch.randint(1, s + 1, (n,), generator=gen)
    lengths[0] = s
    mask = (torch.arange(s)[None, :] < lengths[:, None]).long()
    return ids * mask, mask


DYNAMIC = ({0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("seq", min=5, max=MAX_SEQ)},) * 2

BRANCHES = {
    "conv1d_centred_mul": dict(),
    "conv1d_causal_masked_fill": dict(causal=True, masking="masked_fill"),
    "lightweight_centred_hidden": dict(lightweight=True, pooled=False, k=7),
    "lightweight_causal": dict(lightweight=True, causal=True, k=3),
}


@pytest.fixture(scope="module", params=sorted(BRANCHES))
def branch(request):
    model = ConvBranch(**BRANCHES[request.param]).eval()
    gen = torch.Generator().manual_seed(1)
    calibration = [token_batch(4, 5 + i % (MAX_SEQ - 5), gen) for i in range(10)]
    return model, intinfer.quantize(model, calibration[0], calibration, dynamic_shapes=DYNAMIC)


def test_exported_branch_tracks_torch_at_any_batch_and_length(branch):
    model, q = branch
    engine = q.load(num_threads=2)
    gen = torch.Generator().manual_seed(2)
    for n, s in ((3, 11), (1, 24), (2, 5)):
        ids, mask = token_batch(n, s, gen)
        with torch.no_grad():
            want = model(ids, mask)
        np.testing.assert_allclose(q.graph.run(ids, mask)[q.graph.outputs[0]].numpy(), want.numpy(), atol=2e-5,
                                   rtol=1e-4)
        got = engine.run([ids.numpy(), mask.numpy()])
        keep = mask.bool().numpy() if got.ndim == 3 else slice(None)
        a, b = got[keep].reshape(-1, got.shape[-1]), want.numpy()[keep].reshape(-1, got.shape[-1])
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.mean() >= 0.99, (n, s, cos.mean())


def test_exported_branch_runs_the_sequence_convolution_without_transposes(branch):
    _, q = branch
    ops = [op.type for op in q.builder.ops]
    assert "TRANSPOSE" not in ops and "RESHAPE" not in ops
    conv = next(op for op in q.builder.ops if op.type == "CONV2D")
    assert conv.inputs[1].data.shape[1] == 1  # a 1 x K kernel
    assert ops.count("APPLY_MASK") == 1  # the mean pool's product with the mask is MASKED_MEAN's


def test_padded_tokens_do_not_change_the_exported_branch(branch):
    """A sentence alone and in a batch beside a longer one: the same real tokens' values."""
    model, q = branch
    engine = q.load()
    gen = torch.Generator().manual_seed(3)
    ids, _ = token_batch(2, 16, gen)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    ids[1, 9:] = 0
    together = engine.run([ids.numpy(), mask.numpy()], raw=True)
    alone = engine.run([ids[1:, :9].numpy(), mask[1:, :9].numpy()], raw=True)
    np.testing.assert_array_equal(together[1, :9] if together.ndim == 3 else together[1], alone[0])


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_exported_branch_equals_the_qat_eval_model_bit_for_bit(name):
    model = ConvBranch(**BRANCHES[name]).eval()
    gen = torch.Generator().manual_seed(4)
    qm = qat.prepare(model, token_batch(2, 8, gen), dynamic_shapes=DYNAMIC).train()
    with torch.no_grad():
        for i in range(6):
            qm(*token_batch(4, 5 + i % (MAX_SEQ - 5), gen))
    qm.eval()
    for n, s in ((3, 11), (1, 16), (2, 5)):
        xs = token_batch(n, s, gen)
        want, _ = engine_and_oracle(qm, xs, num_threads=1 + n % 2)
        np.testing.assert_array_equal(qm(*xs).numpy(), want)


class Glu(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.glu(x, dim=self.dim)


def test_glu_on_an_odd_or_varying_dimension_is_refused():
    with pytest.raises(ExportError, match="Halving dimension must be even, but dimension 1 is size 7"):
        intinfer.quantize(Glu(1).eval(), (torch.randn(2, 7),), [(torch.randn(2, 7),)])
    x = torch.randn(2, 6)
    with pytest.raises(ExportError, match=r"glu halves dimension 1 of \[2, .*\]: it must be a fixed size"):
        intinfer.quantize(Glu(1).eval(), (x,), [(x,)],
                          dynamic_shapes=({1: 2 * torch.export.Dim("half", min=1, max=32)},))


def test_glu_exports_on_any_dimension_but_the_batch(rng):
    x = torch.randn(3, 6, 4)
    q = intinfer.quantize(Glu(1).eval(), (x,), [(torch.randn(3, 6, 4),) for _ in range(4)])
    got = q.load().run(x.numpy())
    assert np.abs(got - F.glu(x, 1).numpy()).max() < 0.05
    with pytest.raises(ExportError, match="other than the batch"):
        intinfer.quantize(Glu(0).eval(), (torch.randn(4, 3),), [(torch.randn(4, 3),)])


class MaskedConv(torch.nn.Module):
    def __init__(self, mask_fn):
        super().__init__()
        self.mask_fn = mask_fn
        self.conv = torch.nn.Conv1d(4, 4, 3, padding=1, groups=4)

    def forward(self, x, mask):
        return self.conv(self.mask_fn(x, mask).transpose(1, 2))


@pytest.mark.parametrize("mask_fn, message", [
    (lambda x, m: x * m[:, :, None].flip(1).to(x.dtype), "not a token mask"),
    (lambda x, m: x.masked_fill(m[..., None] == 0, 1.0), "with 0 at the padding"),
])
def test_a_mask_that_is_not_the_tokens_is_refused(mask_fn, message):
    x, mask = torch.randn(2, 6, 4), torch.ones(2, 6, dtype=torch.long)
    with pytest.raises(ExportError, match=message):
        intinfer.quantize(MaskedConv(mask_fn), (x, mask), [(x, mask)])


def test_a_two_sided_pad_before_a_conv2d_is_refused():
    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 2, 3)

        def forward(self, x):
            return self.conv(F.pad(x, (1, 1)))

    with pytest.raises(ExportError, match="a pad of the last dimension only must be followed by a conv1d"):
        intinfer.quantize(Bad(), (torch.randn(1, 2, 5, 5),), [(torch.randn(1, 2, 5, 5),)])


def test_report_compares_every_layer_of_a_sequence_convolution(branch):
    """The transposes the lowering made free share their tensor with the value they read."""
    _, q = branch
    rows = q.report().rows
    assert {r["op"] for r in rows} >= {"conv", "permute", "apply_mask", "lut", "mul"}
    assert all(r["sqnr_db"] > 10 for r in rows), [(r["name"], r["sqnr_db"]) for r in rows]
