"""Magnitude pruning (intinfer/prune/magnitude.py): exact sparsity per layer and globally, whole
1 x B blocks of the engine's layout chosen by their L2 norm (checked against numpy), the
iterative schedule, the density report, the refusals; the zeros kept through intinfer.qat (the
converted codes zero in exactly the pruned blocks, the engine bit for bit equal to the QAT
model) and through intinfer.quantize with GPTQ rounding."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import intinfer  # noqa: E402
import oracle  # noqa: E402
from conftest import assert_same  # noqa: E402
from intinfer import qat  # noqa: E402
from intinfer.prune import Masks, density, iterative_prune, magnitude_prune  # noqa: E402
from sample_models import tiny_bert, token_batch  # noqa: E402
from test_qat import engine_and_oracle  # noqa: E402


class Net(nn.Module):
    """A 3x3 conv and a 1x1 conv with batch norms, a depthwise conv, a linear head."""

    def __init__(self, cin=8):
        super().__init__()
        self.stem = nn.Conv2d(cin, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 8)

    def forward(self, x):
        y = torch.relu(self.bn1(self.stem(x)))
        y = nn.functional.relu6(self.dw(y))
        y = torch.relu(self.bn2(self.pw(y)))
        return self.fc(y.mean(dim=(2, 3)))


def net(seed=0, cin=8):
    torch.manual_seed(seed)
    return Net(cin).eval()


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(24, 64), nn.GELU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))


def engine_blocks(a: np.ndarray, block: int) -> np.ndarray:
    """[..., K / block, block] of a torch-layout weight (or mask) in the engine's layout."""
    e = a if a.ndim == 2 else a.transpose(0, 2, 3, 1)
    return e.reshape(*e.shape[:-1], -1, block)


def block_norms(w: np.ndarray, block: int) -> np.ndarray:
    return np.sqrt((engine_blocks(w.astype(np.float64), block) ** 2).sum(-1))


def lamp(norms: np.ndarray) -> np.ndarray:
    """Lee et al.'s score, written out: a block's squared norm over those at least as large."""
    s2 = norms.ravel() ** 2
    out = np.empty_like(s2)
    for i, v in enumerate(s2):
        out[i] = v / s2[s2 >= v].sum()
    return out.reshape(norms.shape)


def weights(model):
    return {p: m.weight.detach().numpy().copy() for p, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv2d))}


@pytest.mark.parametrize("block", [1, 4, 8])
def test_per_layer_pruning_is_exact_in_whole_blocks_of_the_engine_layout(block):
    model = net()
    before = weights(model)
    masks = magnitude_prune(model, 0.6, block=block)
    assert sorted(masks) == ["fc", "pw", "stem"]  # the depthwise conv is left out
    after = weights(model)
    np.testing.assert_array_equal(after["dw"], before["dw"])
    for path, mask in masks.items():
        m = mask.numpy()
        assert m.shape == before[path].shape
        blocks = engine_blocks(m, block)
        assert (blocks.all(-1) == blocks.any(-1)).all(), f"{path}: a block pruned in part"
        n = blocks.shape[:-1]
        assert (~blocks.all(-1)).sum() == math.floor(0.6 * np.prod(n) + 0.5)
        np.testing.assert_array_equal(after[path][~m], 0)
        np.testing.assert_array_equal(after[path][m], before[path][m])
    report = density(model, block)
    assert report["pw"].block_density == pytest.approx(1 - round(0.6 * 32 * 16 / block) / (32 * 16 / block))
    assert report["dw"].density == 1


@pytest.mark.parametrize("make", [mlp, net])
@pytest.mark.parametrize("scope, score", [("layer", None), ("global", "magnitude"), ("global", "lamp")])
def test_the_blocks_of_lowest_score_are_pruned(make, scope, score):
    """numpy's block L2 norms (and LAMP scores) of the weights before pruning, OHWI for the convs:
    every pruned block scores at most what every kept block of its layer (per layer) or of any
    layer (global) does."""
    model = make()
    before = {p: w for p, w in weights(model).items() if p != "dw"}
    options = {"global_score": score} if score else {}
    masks = magnitude_prune(model, 0.7, block=4, scope=scope, **options)
    pruned_scores, kept_scores = [], []
    for path, w in before.items():
        s = block_norms(w, 4)
        if score == "lamp":
            s = lamp(s)
        kept = engine_blocks(masks[path].numpy(), 4).all(-1)
        if scope == "layer":
            assert s[~kept].max() <= s[kept].min()
            assert (~kept).sum() == math.floor(0.7 * s.size + 0.5)
        pruned_scores.append(s[~kept])
        kept_scores.append(s[kept])
    pruned, kept = np.concatenate(pruned_scores), np.concatenate(kept_scores)
    if scope == "global":
        assert pruned.size == math.floor(0.7 * (pruned.size + kept.size) + 0.5)
        assert pruned.max() <= kept.min()
        shares = [p.size / (p.size + k.size) for p, k in zip(pruned_scores, kept_scores)]
        assert max(shares) - min(shares) > 0.05, "a global threshold gave every layer the same share"


def test_unstructured_pruning_of_a_3x3_conv_picks_single_weights():
    model = net()
    w = model.stem.weight.detach().abs().numpy().copy()
    masks = magnitude_prune(model, 0.5, block=1, layers=["stem"])
    assert list(masks) == ["stem"]
    m = masks["stem"].numpy()
    assert w[~m].max() <= w[m].min() and (~m).sum() == w.size // 2


def test_iterative_schedule_is_monotone_keeps_zeros_through_adam_and_reaches_the_target():
    model = mlp()
    x = torch.randn(16, 24)
    seen = []

    def fine_tune(model, masks):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=0.1)
        handle = masks.attach(model, opt)
        for _ in range(3):
            loss = model(x).pow(2).mean() - model[0].weight.sum()  # moves every weight
            opt.zero_grad()
            loss.backward()
            opt.step()
            for path, mask in masks.items():
                assert (dict(model.named_modules())[path].weight[~mask] == 0).all()
        handle.remove()
        seen.append({p: m.clone() for p, m in masks.items()})

    masks = iterative_prune(model, 0.75, 4, fine_tune, block=4)
    assert len(seen) == 4
    for t, step in enumerate(seen, 1):
        want = 0.75 - 0.75 * (1 - t / 4) ** 3  # Zhu & Gupta's cubic ramp from 0
        for path, mask in step.items():
            blocks = mask.numel() // 4
            assert int((~mask).sum()) // 4 == math.floor(want * blocks + 0.5), (t, path)
            if t > 1:
                assert not (mask & ~seen[t - 2][path]).any(), "a pruned weight came back"
    assert density(model).density == pytest.approx(0.25)
    assert all(torch.equal(masks[p], seen[-1][p]) for p in masks)

    linear = []
    iterative_prune(mlp(), 0.6, 3, lambda m, k: linear.append(1 - density(m).density), schedule="linear")
    assert linear == pytest.approx([0.2, 0.4, 0.6], abs=2e-3)  # whole blocks per layer


def test_iterative_schedule_starts_from_earlier_masks():
    model = mlp()
    masks = magnitude_prune(model, 0.5)
    steps = []
    iterative_prune(model, 0.9, 2, lambda m, k: steps.append(1 - density(m).density), masks=masks)
    assert steps == pytest.approx([0.9 - 0.4 / 8, 0.9], abs=2e-3)


def test_density_report():
    w = torch.ones(2, 8)
    w[0, :4] = 0  # a whole block of 4
    w[1, 5] = 0
    conv = torch.ones(2, 4, 1, 1)
    conv[1] = 0
    report = density({"fc": w, "conv": conv})
    assert report["fc"].density == pytest.approx(11 / 16) and report["fc"].block_density == pytest.approx(3 / 4)
    assert report["conv"].density == pytest.approx(0.5) and report["conv"].block_density == pytest.approx(0.5)
    assert report.density == pytest.approx(15 / 24) and report.block_density == pytest.approx(4 / 6)
    assert density({"fc": w}, block=8)["fc"].block_density == 1
    assert density({"fc": w}, block=3)["fc"].block_density is None
    with pytest.raises(ValueError, match="no weight to report"):
        density(nn.Sequential(nn.ReLU()))
    text = str(density(net()))
    assert all(name in text for name in ("stem", "dw", "pw", "fc", "block density (1x4)"))


def test_bad_requests_are_refused_with_the_name_of_the_problem():
    model = net()
    for bad in (1.0, -0.1, "0.5"):
        with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\)"):
            magnitude_prune(model, bad)
    with pytest.raises(ValueError, match="block must be a positive integer"):
        magnitude_prune(model, 0.5, block=0)
    with pytest.raises(ValueError, match="unknown scope"):
        magnitude_prune(model, 0.5, scope="net")
    with pytest.raises(ValueError, match="no module 'head' in the model; its prunable layers are: stem, pw, fc"):
        magnitude_prune(model, 0.5, layers=["head"])
    with pytest.raises(ValueError, match="module 'bn1' is a BatchNorm2d"):
        magnitude_prune(model, 0.5, layers=["bn1"])
    with pytest.raises(ValueError, match="module 'dw' is a depthwise Conv2d.*no sparse depthwise kernel"):
        magnitude_prune(model, 0.5, layers=["dw"])
    with pytest.raises(ValueError, match="exclude names 'head'"):
        magnitude_prune(model, 0.5, exclude=["head"])
    with pytest.raises(ValueError, match="no layer to prune"):
        magnitude_prune(model, 0.5, layers=lambda path, m: False)
    with pytest.raises(ValueError, match=r"layer 'stem' \(Conv2d, weight \[16, 3, 3, 3\]\): block 4 does not divide "
                                         r"its reduction length 3 \(input channels per group"):
        magnitude_prune(net(cin=3), 0.5)
    assert sorted(magnitude_prune(net(cin=3), 0.5, exclude=["stem"])) == ["fc", "pw"]
    with pytest.raises(ValueError, match="layer '0'.*block 4 does not divide its reduction length 6 \\(input features"):
        magnitude_prune(nn.Sequential(nn.Linear(6, 4)), 0.5)
    with pytest.raises(ValueError, match="would remove all 1 blocks of layer '0'"):
        magnitude_prune(nn.Sequential(nn.Linear(4, 1)), 0.6)
    tiny = nn.Sequential(nn.Linear(8, 64), nn.Linear(64, 2))
    with torch.no_grad():
        tiny[1].weight.mul_(1e-3)
    with pytest.raises(ValueError, match="global pruning to sparsity 0.5 would remove all 32 blocks of layer '1'"):
        magnitude_prune(tiny, 0.5, scope="global", global_score="magnitude")
    magnitude_prune(tiny, 0.5, scope="global")  # LAMP keeps the best block of every layer
    with pytest.raises(ValueError, match="chosen in blocks of 4, not 8"):
        magnitude_prune(model, 0.7, block=8, masks=magnitude_prune(net(), 0.5))
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        iterative_prune(model, 0.5, 0, lambda m, k: None)
    with pytest.raises(ValueError, match="unknown schedule"):
        iterative_prune(model, 0.5, 2, lambda m, k: None, schedule="exp")
    with pytest.raises(ValueError, match="the masks name module 'head'"):
        Masks({"head": torch.ones(2, 2, dtype=torch.bool)}).apply(model)
    x = torch.randn(1, 8, 6, 6)
    with pytest.raises(ValueError, match=r"masks name \['head'\], which are not conv/linear modules"):
        qat.prepare(model, (x,), masks={"head": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"the mask of 'fc' has shape \[8, 16\], its weight \[8, 32\]"):
        qat.prepare(model, (x,), masks={"fc": torch.ones(8, 16, dtype=torch.bool)})
    with pytest.raises(TypeError, match="masks must map module paths to bool tensors"):
        qat.prepare(model, (x,), masks=torch.ones(8, 32, dtype=torch.bool))


def codes_by_module(q) -> dict:
    """{module path: weight codes in the engine's layout} of a converted or quantized model."""
    tensors = {t.name: t for t in q.builder.tensors}
    return {n.attrs["module"]: tensors[f"{n.name}_w"].data for n in q.graph.nodes if n.op in ("conv", "linear")}


def assert_zero_in_exactly_the_pruned_blocks(q, masks, block=4):
    codes = codes_by_module(q)
    assert set(masks) <= set(codes)
    for path, mask in masks.items():
        kept = engine_blocks(mask.numpy(), block).all(-1)
        c = codes[path]  # already in the engine's layout
        nonzero = c.reshape(*c.shape[:-1], -1, block).any(-1)
        np.testing.assert_array_equal(nonzero, kept, err_msg=path)


@pytest.mark.parametrize("sparsity", [0.5, 0.95])
def test_qat_keeps_the_pruned_blocks_zero_and_runs_bit_exact_on_the_engine(sparsity):
    """At 95% the exporter writes the layers block-sparse and the engine runs its sparse kernels."""
    model = net()
    masks = magnitude_prune(model, sparsity)
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, 8, 6, 6, generator=gen) for _ in range(6)]
    qm = qat.prepare(model, (batches[0][:1],), qat.QATConfig(freeze_bn_after=3), masks=masks)
    states = {n.attrs["module"]: qm.states[qm._keys[n]] for n in qm.graph.nodes if n.op in ("conv", "linear")}
    start = {p: s.weight.detach().clone() for p, s in states.items()}
    qm.train()
    opt = torch.optim.Adam(qm.parameters(), lr=1e-2, weight_decay=1e-2)
    for x in batches:
        loss = qm(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        assert all((states[p].weight.grad[~m] == 0).all() for p, m in masks.items())
        opt.step()
    for path, mask in masks.items():
        w = states[path].weight.detach()
        assert (w[~mask] == 0).all(), path
        assert (w[mask] != start[path][mask]).all(), f"{path}: a kept weight did not train"
    qm.eval()
    x = torch.randn(5, 8, 6, 6, generator=gen)
    want, q = engine_and_oracle(qm, (x,))
    np.testing.assert_array_equal(qm(x).numpy(), want)
    assert_zero_in_exactly_the_pruned_blocks(q, masks)


def test_qat_keeps_the_masks_of_a_pruned_transformer():
    """Nested module paths (the encoder's query, key, value, output and FFN linears) find their
    graph nodes; global pruning with LAMP; the engine equals the QAT model bit for bit."""
    model = tiny_bert(head=True)
    masks = magnitude_prune(model, 0.8, scope="global")
    assert len(masks) == 2 * 6 + 1  # per encoder layer: query, key, value, output, two FFN; the head
    gen = torch.Generator().manual_seed(3)
    seq = torch.export.Dim("seq", max=16)
    qm = qat.prepare(model, token_batch(2, 8, gen), dynamic_shapes=({1: seq},) * 3, masks=masks)
    qm.train()
    opt = torch.optim.Adam(qm.parameters(), lr=1e-2, weight_decay=1e-2)
    for i in range(3):
        loss = qm(*token_batch(4, 6 + i, gen)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    qm.eval()
    xs = token_batch(3, 11, gen)
    want, q = engine_and_oracle(qm, xs)
    np.testing.assert_array_equal(qm(*xs).numpy(), want)
    assert_zero_in_exactly_the_pruned_blocks(q, masks)


@pytest.mark.parametrize("sparsity", [0.7, 0.95])
@pytest.mark.parametrize("rounding", ["gptq", "nearest"])
def test_post_training_quantization_keeps_the_pruned_blocks_zero(rounding, sparsity):
    """GPTQ's error feedback would fill the pruned positions; the engine (sparse kernels at 95%)
    equals the numpy oracle."""
    model = net()
    masks = magnitude_prune(model, sparsity)
    gen = torch.Generator().manual_seed(2)
    calib = [torch.randn(8, 8, 6, 6, generator=gen) for _ in range(3)]
    q = intinfer.quantize(model, (calib[0][:1],), calib, weight_rounding=rounding)
    assert_zero_in_exactly_the_pruned_blocks(q, masks)
    x = torch.randn(3, 8, 6, 6, generator=gen).numpy()
    m = q.load(num_threads=2)
    assert_same(m.run(x, raw=True), oracle.run_graph(q.builder, x))
