"""intinfer.prune's structured pruning (intinfer/prune/structured.py) on tiny random models:
attention heads and feed-forward units of MiniLM and output channels of CNNs removed physically. Each pruned model
equals the unpruned one with the removed parts gated to zero (an oracle written here, by hooks
or scaled weights, not by the library's gates), shrinks by the expected shapes and parameters,
and exports to an .iif that the engine runs bit for bit as tests/oracle.py says."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import intinfer  # noqa: E402
import oracle  # noqa: E402
from conftest import assert_same  # noqa: E402
from intinfer.prune import (channel_importance, ffn_importance, head_importance, prune_channels,  # noqa: E402
                            prune_channels_by_importance, prune_channels_by_norm, prune_ffn_by_importance,
                            prune_ffn_units, prune_heads, prune_heads_by_importance)
from sample_models import tiny_bert, token_batch  # noqa: E402


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(model, state) -> bool:
    now = model.state_dict()
    return now.keys() == state.keys() and all(now[k].shape == v.shape and torch.equal(now[k], v)
                                              for k, v in state.items())


# ----------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------

def _batches(n: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [token_batch(3, 9, gen) for _ in range(n)]


def _gated(model, gates: dict, reader: str, width, expand=lambda scale, layer: scale):
    """A copy of the pooled MiniLM in which part j of what layer l's `reader` module reads (a head,
    `expand`ed to its head_dim columns, or a feed-forward unit; width(layer) parts) is multiplied
    by gates[l][j], by a hook."""
    gated = copy.deepcopy(model)
    for l, layer in enumerate(gated.bert.layers):
        scale = torch.ones(width(layer), dtype=torch.float64)
        for j, g in gates.get(l, {}).items():
            scale[j] = g

        def hook(module, args, scale=expand(scale, layer)):
            return (args[0] * scale.to(args[0].dtype),)

        getattr(layer, reader).register_forward_pre_hook(hook)
    return gated


def _with_heads_gated(model, gates: dict):
    return _gated(model, gates, "attn_out", lambda layer: layer.heads,
                  lambda scale, layer: scale.repeat_interleave(layer.head_dim))


def _with_units_gated(model, gates: dict):
    return _gated(model, gates, "ffn_out", lambda layer: layer.ffn_out.in_features)


def _tanh_loss(seed: int):
    weights = torch.randn(32, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return lambda output, batch: (torch.tanh(output) * weights).sum(1)


def _central_difference(model, with_gated, loss_fn, batches, layer: int, part: int, eps: float = 1e-6):
    """The mean over the examples of |dL_b/dxi| for part `part` of `layer`, by central
    differences (float64) of each example's loss with that part scaled by 1 +- eps."""
    up, down = with_gated(model, {layer: {part: 1 + eps}}), with_gated(model, {layer: {part: 1 - eps}})
    with torch.no_grad():
        grads = torch.cat([(loss_fn(up(*b), b) - loss_fn(down(*b), b)) / (2 * eps) for b in batches])
    return grads.abs().mean()


def test_head_importance_is_the_mean_absolute_gate_gradient_per_example():
    """Against central differences of each example's loss with one head's output scaled: the mean
    over all examples of |dL_b/dxi|, not |dL/dxi| of batch sums."""
    model = tiny_bert(seed=1).double()
    loss_fn, batches = _tanh_loss(3), _batches(2)
    got = head_importance(model, batches, loss_fn, normalize=False)
    assert got.shape == (2, 4)
    want = torch.tensor([[_central_difference(model, _with_heads_gated, loss_fn, batches, l, h) for h in range(4)]
                         for l in range(2)], dtype=torch.float64)
    assert want.min() > 0
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-9)


def test_default_importance_is_per_layer_normalized_and_not_zero():
    """The default loss (contrastive distillation from the unpruned model) has a gradient at the
    unpruned model; 1 - cosine with its own embedding would have none."""
    model = tiny_bert(seed=0)
    raw = head_importance(model, _batches(), normalize=False)
    assert torch.isfinite(raw).all() and (raw > 0).all()
    normalized = head_importance(model, _batches())
    torch.testing.assert_close(normalized.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(normalized, raw / raw.norm(dim=1, keepdim=True))
    with pytest.raises(ValueError, match="one loss per example"):
        head_importance(model, _batches(1), loss_fn=lambda out, batch: out.sum())
    with pytest.raises(ValueError, match="at least 2 examples"):
        head_importance(model, [tuple(t[:1] for t in _batches(1)[0])])


def test_pruned_heads_equal_the_model_with_those_heads_gated_to_zero():
    model = tiny_bert(seed=2)
    before = _params(model)
    oracle_model = _with_heads_gated(model, {0: {1: 0.0, 3: 0.0}, 1: {2: 0.0}})
    prune_heads(model, {0: [3, 1], 1: [2]})
    layers = model.bert.layers
    assert [layer.heads for layer in layers] == [2, 3]
    assert layers[0].query.weight.shape == (16, 32) and layers[0].key.bias.shape == (16,)
    assert layers[0].value.out_features == 16 and layers[0].attn_out.weight.shape == (32, 16)
    assert layers[1].attn_out.in_features == 24
    # Per head removed: 3 projections of head_dim x (hidden + 1) and head_dim x hidden of attn_out.
    assert before - _params(model) == 3 * (3 * 8 * 33 + 8 * 32)
    with torch.no_grad():
        for b in _batches(2, seed=5):
            torch.testing.assert_close(model(*b), oracle_model(*b), rtol=0, atol=1e-5)


@pytest.mark.parametrize("heads, message", [
    ({0: [0, 1, 2, 3]}, "layer 0: pruning all 4 of its heads"),
    ({1: [4]}, "layer 1 .heads.: index 4 is out of range"),
    ({1: [2, 2]}, "layer 1 .heads.: index 2 is listed twice"),
    ({2: [0]}, "layer 2 does not exist"),
    ({0: [0], 1: [0, 1, 2, 3]}, "layer 1: pruning all 4"),
])
def test_prune_heads_refuses_bad_requests_and_leaves_the_model_as_it_was(heads, message):
    model = tiny_bert()
    state = _state(model)
    with pytest.raises(ValueError, match=message):
        prune_heads(model, heads)
    assert _same_state(model, state) and [layer.heads for layer in model.bert.layers] == [4, 4]


@pytest.mark.filterwarnings("ignore:The tensor attribute self.fc.weight was assigned during export")
def test_weights_under_a_torch_prune_mask_are_refused():
    from torch.nn.utils import prune as torch_prune

    model = tiny_bert()
    torch_prune.l1_unstructured(model.bert.layers[1].attn_out, "weight", 0.5)
    with pytest.raises(ValueError, match="'layers.1.attn_out'.weight is not a plain parameter"):
        prune_heads(model, {1: [0]})
    model = _model(TinyNet)
    torch_prune.l1_unstructured(model.fc, "weight", 0.5)
    with pytest.raises(ValueError, match="feed aten.linear.default in 'fc', whose weight is not a parameter"):
        prune_channels(model, torch.randn(1, 3, 16, 16), {"head.0": [0]})


def test_head_pruning_needs_a_minilm():
    class MPNetSelfAttention(nn.Module):  # stands in for transformers' class, whose import takes seconds
        pass

    with pytest.raises(TypeError, match="relative position bias"):
        prune_heads(nn.Sequential(MPNetSelfAttention()), {0: [0]})
    with pytest.raises(TypeError, match="Linear holds none"):
        head_importance(nn.Linear(2, 2), [torch.zeros(2, 2)])


def test_global_selection_takes_the_lowest_heads_but_keeps_one_per_layer():
    importance = torch.tensor([[0.01, 0.02, 0.03, 0.04], [0.9, 0.8, 0.05, 0.7]])
    model = tiny_bert()
    assert prune_heads_by_importance(model, importance, count=4) == {0: [0, 1, 2], 1: [2]}
    assert [layer.heads for layer in model.bert.layers] == [1, 3]
    with pytest.raises(ValueError, match="at most 6 can go"):
        prune_heads_by_importance(tiny_bert(), importance, count=7)
    model = tiny_bert()
    assert prune_heads_by_importance(model, importance, fraction=0.5, per_layer=True) == {0: [0, 1], 1: [2, 3]}
    with pytest.raises(ValueError, match="layer 0: pruning 4 of its 4 heads"):
        prune_heads_by_importance(tiny_bert(), importance, count=4, per_layer=True)
    with pytest.raises(ValueError, match="either fraction or count"):
        prune_heads_by_importance(tiny_bert(), importance)


def test_importance_of_a_pruned_model_is_nan_past_a_layers_heads():
    model = tiny_bert()
    prune_heads(model, {1: [0, 1]})
    importance = head_importance(model, _batches())
    assert importance.shape == (2, 4)
    assert torch.isnan(importance[1, 2:]).all() and torch.isfinite(importance[0]).all()
    prune_heads_by_importance(model, importance, count=1)
    assert sum(layer.heads for layer in model.bert.layers) == 5


def _heads_down_to_one(model, calib):
    """Michel-style: the lowest quarter of the heads removed globally, then layer 0 left with one."""
    prune_heads_by_importance(model, head_importance(model, calib), fraction=0.25)
    prune_heads(model, {0: list(range(1, model.bert.layers[0].heads))})
    assert model.bert.layers[0].heads == 1 and sum(layer.heads for layer in model.bert.layers) < 6


def _units_and_heads(model, calib):
    """Half of the feed-forward units by importance, then a quarter of the heads."""
    prune_ffn_by_importance(model, ffn_importance(model, calib), fraction=0.5)
    prune_heads_by_importance(model, head_importance(model, calib), fraction=0.25)
    assert sum(layer.ffn_in.out_features for layer in model.bert.layers) == 64


@pytest.mark.parametrize("prune", [_heads_down_to_one, _units_and_heads])
def test_pruned_encoder_exports_and_runs_in_the_engine(prune):
    """Pruned on data, then intinfer.quantize with a dynamic batch and sequence: the file smaller
    than the unpruned model's, the engine bit for bit as the oracle, close to the float model."""
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=16)
    calib = _batches(3, seed=7)

    def engine_file(model):
        return intinfer.quantize(model, calib[0], calib, dynamic_shapes=({0: batch, 1: seq},) * 3)

    model = tiny_bert(seed=3)
    dense = engine_file(model).to_bytes()
    prune(model, calib)
    q = engine_file(model)
    assert len(q.to_bytes()) < len(dense)
    xs = [x.numpy() for x in token_batch(2, 11, torch.Generator().manual_seed(9))]
    got = q.load(num_threads=2).run(xs, raw=True)
    assert_same(got, oracle.run_graph(q.builder, [x.astype(np.int32) for x in xs]))
    with torch.no_grad():
        ref = model(*(torch.from_numpy(x) for x in xs)).numpy()
    assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max()


# ----------------------------------------------------------------------------------------------
# Feed-forward units
# ----------------------------------------------------------------------------------------------

def test_unit_importance_is_the_mean_absolute_gate_gradient_per_example():
    """Against central differences of each example's loss with one unit's activation scaled, for
    a sample of units of both layers."""
    model = tiny_bert(seed=4).double()
    loss_fn, batches = _tanh_loss(6), _batches(2)
    got = ffn_importance(model, batches, loss_fn, normalize=False)
    assert got.shape == (2, 64)
    for l, u in ((0, 0), (0, 17), (0, 63), (1, 5), (1, 40)):
        want = _central_difference(model, _with_units_gated, loss_fn, batches, l, u)
        assert want > 0
        torch.testing.assert_close(got[l, u].double(), want, rtol=1e-4, atol=1e-9)
    normalized = ffn_importance(model.float(), batches)
    torch.testing.assert_close(normalized.norm(dim=1), torch.ones(2))


def test_pruned_units_equal_the_model_with_those_units_gated_to_zero():
    model = tiny_bert(seed=5)
    before = _params(model)
    drop = {0: [0, 9, 63], 1: list(range(10, 40))}
    oracle_model = _with_units_gated(model, {l: {u: 0.0 for u in us} for l, us in drop.items()})
    prune_ffn_units(model, drop)
    layers = model.bert.layers
    assert layers[0].ffn_in.weight.shape == (61, 32) and layers[0].ffn_in.bias.shape == (61,)
    assert layers[0].ffn_out.weight.shape == (32, 61) and layers[1].ffn_out.in_features == 34
    assert layers[1].ffn_in.out_features == 34 and layers[0].ffn_out.bias.shape == (32,)
    # Per unit removed: a row of ffn_in (hidden + 1 with its bias) and a column of ffn_out.
    assert before - _params(model) == 33 * (32 + 1 + 32)
    with torch.no_grad():
        for b in _batches(2, seed=5):
            torch.testing.assert_close(model(*b), oracle_model(*b), rtol=0, atol=1e-5)


@pytest.mark.parametrize("units, message", [
    ({0: list(range(64))}, "layer 0: pruning all 64 of its feed-forward units would leave it no feed-forward block"),
    ({1: [64]}, "layer 1 .feed-forward units.: index 64 is out of range"),
    ({1: [2, 2]}, "layer 1 .feed-forward units.: index 2 is listed twice"),
    ({2: [0]}, "layer 2 does not exist"),
    ({0: [0], 1: list(range(64))}, "layer 1: pruning all 64"),
])
def test_prune_ffn_units_refuses_bad_requests_and_leaves_the_model_as_it_was(units, message):
    model = tiny_bert()
    state = _state(model)
    with pytest.raises(ValueError, match=message):
        prune_ffn_units(model, units)
    assert _same_state(model, state) and [layer.ffn_in.out_features for layer in model.bert.layers] == [64, 64]
    with pytest.raises(TypeError, match="feed-forward unit pruning works on intinfer.models.MiniLM"):
        ffn_importance(nn.Linear(2, 2), [torch.zeros(2, 2)])


def test_unit_selection_global_and_per_layer_and_after_pruning():
    importance = torch.arange(128, dtype=torch.float32).reshape(2, 64)
    importance[1, :8] = -1.0  # layer 1's first 8 units are the least important of all
    model = tiny_bert()
    assert prune_ffn_by_importance(model, importance, count=10) == {0: [0, 1], 1: list(range(8))}
    assert [layer.ffn_in.out_features for layer in model.bert.layers] == [62, 56]
    importance = ffn_importance(model, _batches())
    assert importance.shape == (2, 62)
    assert torch.isnan(importance[1, 56:]).all() and torch.isfinite(importance[0]).all()
    removed = prune_ffn_by_importance(model, importance, fraction=0.5, per_layer=True)
    assert sum(len(u) for u in removed.values()) == 59
    assert [layer.ffn_in.out_features for layer in model.bert.layers] == [31, 28]
    with pytest.raises(ValueError, match="at most 57 can go"):
        prune_ffn_by_importance(model, ffn_importance(model, _batches()), count=58)
    with pytest.raises(ValueError, match=r"importance has shape \(2, 64\); the model's feed-forward units need "
                                         r"\(2, 31\)"):
        prune_ffn_by_importance(model, torch.zeros(2, 64), count=1)


# ----------------------------------------------------------------------------------------------
# Channels
# ----------------------------------------------------------------------------------------------

def conv_bn(cin, cout, k=1, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU6()] if act else []))


class Block(nn.Module):
    """MobileNetV2 / EfficientNet-Lite: expand 1x1, depthwise 3x3, project 1x1, residual add."""

    def __init__(self, c, expand=4):
        super().__init__()
        self.expand = conv_bn(c, c * expand)
        self.depthwise = conv_bn(c * expand, c * expand, 3, groups=c * expand)
        self.project = conv_bn(c * expand, c, act=False)

    def forward(self, x):
        return x + self.project(self.depthwise(self.expand(x)))


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8, 3, 2)
        self.block = Block(8)
        self.head = conv_bn(8, 16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.head(self.block(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class FlatNet(nn.Module):
    """A conv read by a conv (no batch norm after the second, biases), then a linear layer on the
    flattened 4x4 map: 16 features per channel."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.b = nn.Conv2d(6, 4, 3, padding=1)
        self.fc = nn.Linear(64, 3)

    def forward(self, x):
        x = torch.relu(self.b(self.a(x)))
        return self.fc(nn.functional.avg_pool2d(x, 2).flatten(1))


def _model(cls, seed=0):
    torch.manual_seed(seed)
    model = cls().eval()
    for m in model.modules():  # statistics as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model


def _zeroed_where_read(model, reads: dict, removed: dict):
    """A copy of `model` in which the removed channels of each conv are zero where the layer
    that reads them sees them: reads = {conv path: (reader path, features per channel)}. With
    batch norms folded or not, zero there (not at the conv's output) is what pruning computes."""
    zeroed = copy.deepcopy(model)
    modules = dict(zeroed.named_modules())
    for path, channels in removed.items():
        reader, block = reads[path]
        keep = torch.ones(modules[path].out_channels)
        keep[list(channels)] = 0
        keep = keep.repeat_interleave(block)

        def hook(module, args, keep=keep):
            x = args[0]
            return (x * keep.reshape(-1, *[1] * (x.dim() - 2)),)

        modules[reader].register_forward_pre_hook(hook)
    return zeroed


TINY_READS = {"block.expand.0": ("block.project.0", 1), "head.0": ("fc", 1)}
FLAT_READS = {"a.0": ("b", 1), "b": ("fc", 16)}


def test_which_convolutions_can_lose_channels():
    model = _model(TinyNet)
    x = torch.randn(1, 3, 16, 16)
    assert sorted(channel_importance(model, x)) == ["block.expand.0", "head.0"]
    for path, message in [("stem.0", "channels of 'stem.0' feed a residual add .* in 'block'"),
                          ("block.project.0", "channels of 'block.project.0' feed a residual add"),
                          ("block.depthwise.0", "'block.depthwise.0' is a depthwise convolution"),
                          ("fc", "'fc' is a Linear, not a torch.nn.Conv2d"),
                          ("nothing", "the model has no module 'nothing'")]:
        with pytest.raises(ValueError, match=message):
            prune_channels(model, x, {path: [0]})


@pytest.mark.parametrize("channels, message", [
    ({"head.0": [16]}, r"'head.0' \(output channels\): index 16 is out of range"),
    ({"head.0": [1, 1]}, "index 1 is listed twice"),
    ({"block.expand.0": list(range(32))}, "removing all 32 of its output channels"),
    ({"block.expand.0": [0], "block.project.0": [0]}, "feed a residual add"),
])
def test_prune_channels_refuses_bad_requests_and_leaves_the_model_as_it_was(channels, message):
    model = _model(TinyNet)
    state = _state(model)
    with pytest.raises(ValueError, match=message):
        prune_channels(model, torch.randn(1, 3, 16, 16), channels)
    assert _same_state(model, state)


def test_concatenations_outputs_and_se_gates_are_refused():
    class Refused(nn.Module):
        def __init__(self):
            super().__init__()
            self.cat, self.out, self.gate, self.body = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), \
                nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = torch.cat([self.cat(x), x], 1)
            return y, self.out(x), self.body(x) * torch.sigmoid(self.gate(x.mean((2, 3), keepdim=True)))

    plans = channel_importance(Refused(), torch.randn(1, 3, 4, 4))
    assert plans == {}
    for path, message in [("cat", "feed a concatenation"), ("out", "reach the model's output"),
                          ("gate", "multiplied by another tensor"), ("body", "multiplied by another tensor")]:
        with pytest.raises(ValueError, match=f"channels of '{path}' .*{message}"):
            prune_channels(Refused(), torch.randn(1, 3, 4, 4), {path: [0]})


@pytest.mark.parametrize("cls, reads, removed", [
    (TinyNet, TINY_READS, {"block.expand.0": [0, 5, 6, 31], "head.0": [3, 7, 15]}),
    (FlatNet, FLAT_READS, {"a.0": [2], "b": [0, 3]}),
])
def test_pruned_channels_equal_the_model_with_them_zeroed_where_read(cls, reads, removed):
    model = _model(cls)
    x = torch.randn(4, 3, 16, 16) if cls is TinyNet else torch.randn(4, 3, 8, 8)
    zeroed = _zeroed_where_read(model, reads, removed)
    before = _params(model)
    prune_channels(model, x[:1], removed)
    with torch.no_grad():
        torch.testing.assert_close(model(x), zeroed(x), rtol=0, atol=1e-5)
    if cls is TinyNet:
        expand, depthwise, project = model.block.expand, model.block.depthwise, model.block.project
        assert expand[0].weight.shape == (28, 8, 1, 1) and expand[1].num_features == 28
        assert depthwise[0].weight.shape == (28, 1, 3, 3) and depthwise[0].groups == 28
        assert depthwise[1].running_var.shape == (28,) and project[0].weight.shape == (8, 28, 1, 1)
        assert model.head[0].weight.shape == (13, 8, 1, 1) and model.fc.weight.shape == (5, 13)
        # expand row 8 + 2 BN + depthwise 9 + 2 BN + project column 8; head row 8 + 2 BN + fc column 5
        assert before - _params(model) == 4 * (8 + 2 + 9 + 2 + 8) + 3 * (8 + 2 + 5)
    else:
        assert model.a[0].weight.shape == (5, 3, 3, 3) and model.b.weight.shape == (2, 5, 3, 3)
        assert model.b.bias.shape == (2,) and model.fc.weight.shape == (3, 32)
        assert before - _params(model) == (27 + 1 + 2 + 4 * 9) + 2 * (5 * 9 + 1 + 3 * 16)


def test_taylor_importance_is_the_mean_absolute_gate_gradient_per_example():
    """Against central differences (float64) of each example's loss with one channel scaled by
    1 +- eps in the weights of the layer that reads it."""
    model = _model(FlatNet).double()
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    batches = [x[:3], x[3:]]

    def loss_fn(output, batch):
        return torch.tanh(output).pow(2).sum(1)

    got = channel_importance(model, x[:1], method="taylor", batches=batches, loss_fn=loss_fn)
    eps = 1e-6
    for path, (reader, block) in FLAT_READS.items():
        want = []
        for c in range(dict(model.named_modules())[path].out_channels):
            losses = []
            for scale in (1 + eps, 1 - eps):
                scaled = copy.deepcopy(model)
                weight = dict(scaled.named_modules())[reader].weight
                with torch.no_grad():
                    weight[:, c * block:(c + 1) * block] *= scale
                    losses.append(torch.cat([loss_fn(scaled(b), b) for b in batches]))
            want.append(((losses[0] - losses[1]) / (2 * eps)).abs().mean())
        torch.testing.assert_close(got[path].double(), torch.stack(want), rtol=1e-4, atol=1e-9)
    default = channel_importance(_model(FlatNet), x[:1].float(), method="taylor", batches=[x.float()])
    assert all((v > 0).any() for v in default.values())


def test_pruning_by_norm_removes_the_smallest_filters():
    model = _model(TinyNet)
    x = torch.randn(1, 3, 16, 16)
    norms = channel_importance(model, x, ["head.0"])["head.0"]
    removed = prune_channels_by_norm(model, x, 0.25)
    assert set(removed) == {"block.expand.0", "head.0"} and len(removed["block.expand.0"]) == 8
    assert removed["head.0"] == sorted(torch.argsort(norms)[:4].tolist())
    model = _model(TinyNet)
    assert prune_channels_by_importance(model, x, {"head.0": -norms}, 0.25) == \
        {"head.0": sorted(torch.argsort(-norms)[:4].tolist())}
    assert model.fc.in_features == 12
    with pytest.raises(ValueError, match="pruning 16 of its 16 output channels"):
        prune_channels_by_norm(_model(TinyNet), x, 1.0, ["head.0"])


def test_pruned_cnn_quantizes_and_runs_in_the_engine():
    calib = [torch.randn(8, 3, 16, 16) for _ in range(3)]
    model = _model(TinyNet)
    dense = intinfer.quantize(model, (calib[0][:1],), calib).to_bytes()
    prune_channels_by_norm(model, calib[0][:1], 0.5)
    q = intinfer.quantize(model, (calib[0][:1],), calib)
    assert len(q.to_bytes()) < len(dense)
    x = torch.randn(5, 3, 16, 16)
    got = intinfer.load(q.to_bytes(), num_threads=2).run(x.numpy(), raw=True)
    assert_same(got, oracle.run_graph(q.builder, x.numpy()))
    with torch.no_grad():
        ref = model(x).numpy()
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cos.min() > 0.99


def test_efficientnet_lite_blocks():
    """The efficientnet-lite-pytorch package's own MBConv blocks (TF 'same' padding modules, one
    ReLU6 module shared by every call), at a small random configuration: the stem (read by the
    first block's depthwise conv, then its project conv), the expansion convs and the head lose
    channels; a project conv whose output feeds the next block's residual add is refused."""
    lite = pytest.importorskip("efficientnet_lite_pytorch", reason="installed by scripts/setup.sh")
    from efficientnet_lite_pytorch.utils import BlockDecoder, efficientnet_lite

    _, params = efficientnet_lite(1.0, 1.0, 32, 0.2, num_classes=10)
    torch.manual_seed(0)
    model = lite.EfficientNet(BlockDecoder.decode(["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24"]), params).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(3, 3, 32, 32)
    with pytest.raises(ValueError, match="channels of '_blocks.1._project_conv' feed a residual add .* '_blocks.2'"):
        prune_channels(model, x[:1], {"_blocks.1._project_conv": [0]})
    reads = {"_conv_stem": ("_blocks.0._project_conv", 1), "_blocks.0._project_conv": ("_blocks.1._expand_conv", 1),
             "_blocks.1._expand_conv": ("_blocks.1._project_conv", 1),
             "_blocks.2._expand_conv": ("_blocks.2._project_conv", 1), "_conv_head": ("_fc", 1)}
    before = copy.deepcopy(model)
    removed = prune_channels_by_norm(model, x[:1], 0.5)
    assert set(removed) == set(reads)
    assert model._blocks[1]._depthwise_conv.groups == 48 and model._blocks[0]._depthwise_conv.weight.shape[0] == 16
    assert model._fc.in_features == 640 and model._blocks[2]._project_conv.in_channels == 72
    with torch.no_grad():
        torch.testing.assert_close(model(x), _zeroed_where_read(before, reads, removed)(x), rtol=0, atol=1e-5)
