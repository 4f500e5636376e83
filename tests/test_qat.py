"""Quantization-aware training (intinfer.qat): the eval-mode forward, a torch model of the
integer arithmetic, equals the engine running the converted .iif bit for bit (and the numpy
oracle, tests/oracle.py) on the exporter's zoo, on a small BERT encoder and on a real fine-tune;
batch-norm folding and range freezing behave as configured; bad use gets a clear error."""

from collections import defaultdict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import intinfer  # noqa: E402
import oracle  # noqa: E402
from conftest import assert_same  # noqa: E402
from intinfer import qat  # noqa: E402
from intinfer.export import ExportError  # noqa: E402
from sample_models import tiny_bert, token_batch  # noqa: E402
from test_export import ZOO, Unsupported, make  # noqa: E402


def train_steps(qm, batches, lr=1e-3):
    """A few optimizer steps on a loss that moves every parameter (the outputs' squares)."""
    qm.train()
    opt = torch.optim.Adam(qm.parameters(), lr=lr)
    for xs in batches:
        out = qm(*xs)
        loss = sum(o.float().pow(2).mean() for o in (out if isinstance(out, tuple) else (out,)))
        opt.zero_grad()
        loss.backward()
        opt.step()


def engine_and_oracle(qm, xs, num_threads=2):
    """The converted model's outputs from the engine, checked against the oracle on the way."""
    q = qat.convert(qm)
    feeds = [x.numpy() for x in xs]
    m = intinfer.load(q.to_bytes(), num_threads=num_threads)
    assert_same(m.run(feeds if len(feeds) > 1 else feeds[0], raw=True),
                oracle.run_graph(q.builder, [_raw_input(m, i, f) for i, f in enumerate(feeds)]))
    return m.run(feeds if len(feeds) > 1 else feeds[0]), q


def _raw_input(m, i, x):
    """What the oracle takes for input i: the exporter's graphs quantize float inputs themselves."""
    return x.astype(np.float32 if m.inputs[i].dtype == "float32" else np.int32)


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("weight_bits", [8, 4])
def test_eval_forward_is_the_engine_bit_for_bit_on_the_zoo(name, weight_bits):
    model, shape, calib, _ = make(name)
    qm = qat.prepare(model, (calib[0][:1],), qat.QATConfig(weight_bits=weight_bits, freeze_bn_after=4))
    train_steps(qm, [(b,) for b in calib + calib])
    qm.eval()
    x = torch.randn(5, *shape)
    got = qm(x)
    want, q = engine_and_oracle(qm, (x,))
    np.testing.assert_array_equal(got.numpy(), want)
    qmax = (1 << (weight_bits - 1)) - 1
    codes = [t.data for t in q.builder.tensors if t.dtype in ("int8", "int4", "int2") and t.data is not None]
    assert codes and max(int(np.abs(c).max()) for c in codes) <= qmax


@pytest.mark.parametrize("head", [False, True])
def test_eval_forward_is_the_engine_bit_for_bit_on_a_small_bert(head):
    model = tiny_bert(head=head)
    gen = torch.Generator().manual_seed(1)
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=16)
    qm = qat.prepare(model, token_batch(2, 8, gen), dynamic_shapes=({0: batch, 1: seq},) * 3)
    train_steps(qm, [token_batch(4, 6 + i % 7, gen) for i in range(8)])
    qm.eval()
    for n, s in [(3, 11), (1, 16), (2, 5)]:
        xs = token_batch(n, s, gen)
        want, _ = engine_and_oracle(qm, xs, num_threads=1 + n % 2)
        np.testing.assert_array_equal(qm(*xs).numpy(), want)


@pytest.mark.parametrize("exact", [True, False])
def test_training_forward_trains_and_tracks_the_integer_model(exact):
    """exact_forward: the training-mode values are the engine's (once batch norms are frozen);
    without it, fake quantization in float stays close to them."""
    model, shape, calib, _ = make("mobilenet_v2_block")
    qm = qat.prepare(model, (calib[0][:1],), qat.QATConfig(freeze_bn_after=0, freeze_observers_after=4,
                                                           exact_forward=exact))
    before = {k: v.detach().clone() for k, v in qm.named_parameters()}
    train_steps(qm, [(b,) for b in calib])
    assert all(not torch.equal(before[k], v) for k, v in qm.named_parameters()), "a parameter got no gradient"
    x = calib[0]
    with torch.no_grad():
        training = qm.train()(x)
    integer = qm.eval()(x)
    if exact:
        assert torch.equal(training, integer)
    else:
        assert not torch.equal(training, integer)
        assert torch.nn.functional.cosine_similarity(training, integer, dim=1).min() > 0.99


def test_batch_norm_uses_batch_statistics_until_frozen():
    model, shape, calib, _ = make("resnet_basic_block")
    qm = qat.prepare(model, (calib[0][:1],), qat.QATConfig(freeze_bn_after=2, freeze_observers_after=3))
    running = [m for k, m in qm.named_buffers() if k.endswith("running_mean")]
    ranges = [m for k, m in qm.named_buffers() if k.endswith(".range")]
    snapshot = lambda ts: [t.clone() for t in ts]  # noqa: E731
    first = snapshot(running)
    train_steps(qm, [(calib[0],)])
    first_ranges = snapshot(ranges)
    train_steps(qm, [(calib[1],)])
    moved = snapshot(running)
    assert all(not torch.equal(a, b) for a, b in zip(first, moved)), "batch statistics were not tracked"
    assert all(not torch.equal(a, b) for a, b in zip(first_ranges, ranges)), "ranges did not move"
    train_steps(qm, [(calib[2],)])
    assert all(torch.equal(a, b) for a, b in zip(moved, running)), "frozen statistics moved"
    frozen_ranges = snapshot(ranges)
    train_steps(qm, [(calib[3] * 3,)])
    assert all(torch.equal(a, b) for a, b in zip(frozen_ranges, ranges)), "frozen ranges moved"
    assert int(qm.steps) == 4


def test_prepare_leaves_the_model_alone_and_state_dict_round_trips():
    model, shape, calib, _ = make("mobilenet_v3_block_se_hardswish")
    model.train()
    model.stem[1].eval()  # a user's frozen batch norm stays frozen
    original = {k: v.clone() for k, v in model.state_dict().items()}
    qm = qat.prepare(model, (calib[0][:1],), qat.QATConfig(freeze_bn_after=2))
    assert model.training and not model.stem[1].training
    train_steps(qm, [(b,) for b in calib])
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())
    x = torch.randn(3, *shape)
    saved = {k: v.clone() for k, v in qm.state_dict().items()}
    before = qm.eval()(x)
    again = qat.prepare(model, (calib[0][:1],), qat.QATConfig(freeze_bn_after=2))
    again.load_state_dict(saved)
    np.testing.assert_array_equal(again.eval()(x).numpy(), before.numpy())
    train_steps(qm, [(b,) for b in calib], lr=1e-2)
    assert not torch.equal(qm.eval()(x), before)
    qm.load_state_dict(saved)  # the eval-mode model is rebuilt from the loaded state
    np.testing.assert_array_equal(qm(x).numpy(), before.numpy())


def test_convert_is_a_snapshot_and_follows_further_training():
    model, shape, calib, _ = make("resnet_basic_block")
    qm = qat.prepare(model, (calib[0][:1],), qat.QATConfig(freeze_bn_after=1))
    train_steps(qm, [(b,) for b in calib])
    first = qat.convert(qm)
    first_bytes = first.to_bytes()
    train_steps(qm, [(b,) for b in calib], lr=1e-2)
    x = torch.randn(2, *shape)
    want, second = engine_and_oracle(qm, (x,))
    np.testing.assert_array_equal(qm.eval()(x).numpy(), want)
    assert first.to_bytes() == first_bytes and second.to_bytes() != first_bytes


class OddOps(nn.Module):
    """Ops the zoo leaves out: an unfused ReLU6, average pooling without the padding in its
    count, a constant per-channel add and broadcast multiply, a concat of differently scaled
    values, a padded max pool."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.register_buffer("shift", torch.linspace(-1, 1, 8).reshape(8, 1, 1))
        self.register_buffer("gain", torch.linspace(0.5, 2, 8).reshape(1, 8, 1, 1))
        self.fc = nn.Linear(16 * 3 * 3, 4)

    def forward(self, x):
        y = nn.functional.relu6(self.conv(x))
        a = nn.functional.avg_pool2d(y, 3, 1, 1, count_include_pad=False) + self.shift
        b = y * self.gain
        z = torch.cat([a, 3.0 * torch.sigmoid(b)], dim=1)
        z = torch.clamp(nn.functional.max_pool2d(z, 3, 2, 1), 0, 6)
        return self.fc(torch.flatten(z, 1))


@pytest.mark.parametrize("symmetric", [False, True])
def test_ops_outside_the_zoo_and_symmetric_ranges(symmetric):
    torch.manual_seed(0)
    model = OddOps().eval()
    calib = [torch.randn(4, 3, 6, 6) for _ in range(4)]
    qm = qat.prepare(model, (calib[0][:1],), qat.QATConfig(symmetric_activations=symmetric))
    train_steps(qm, [(b,) for b in calib])
    qm.eval()
    x = torch.randn(3, 3, 6, 6)
    x[0, 0, 0, 0] = float("nan")  # QUANTIZE maps NaN to the zero point
    want, _ = engine_and_oracle(qm, (x,))
    np.testing.assert_array_equal(qm(x).numpy(), want)


def test_non_finite_training_values_are_named():
    model, shape, calib, _ = make("mlp")
    qm = qat.prepare(model, (calib[0][:1],)).train()
    x = calib[0].clone()
    x[0, 0] = float("inf")
    with pytest.raises(RuntimeError, match="NaN or infinite value in training"):
        qm(x)


def test_prepare_names_an_unsupported_op():
    with pytest.raises(ExportError, match="unsupported op.*(cumsum|sort|topk)"):
        qat.prepare(Unsupported(), (torch.randn(2, 8),))


class WideNorm(nn.Module):
    """A residual add feeding a layer norm wider than the engine's 16-bit LayerNorm takes."""

    def __init__(self, h):
        super().__init__()
        self.fc = nn.Linear(h, h)
        self.norm = nn.LayerNorm(h)

    def forward(self, x):
        return self.norm(self.fc(x) + x)


def test_a_layer_norm_wider_than_the_engine_takes_is_refused_at_prepare_and_export():
    model = WideNorm(1100).eval()
    x = torch.randn(2, 1100)
    with pytest.raises(ExportError, match="normalizes 1100 channels.*at most 1024"):
        qat.prepare(model, (x,))
    with pytest.raises(ExportError, match="normalizes 1100 channels.*at most 1024"):
        intinfer.quantize(model, (x,), [x])


def test_convert_and_eval_before_any_batch_say_so():
    model, shape, calib, _ = make("mlp")
    qm = qat.prepare(model, (calib[0][:1],))
    with pytest.raises(RuntimeError, match="no activation range yet.*training mode"):
        qat.convert(qm)
    with pytest.raises(RuntimeError, match="no activation range yet"):
        qm.eval()(calib[0])


def test_bad_arguments_are_refused():
    model, shape, calib, _ = make("mlp")
    with pytest.raises(ValueError, match="weight_bits"):
        qat.prepare(model, (calib[0][:1],), qat.QATConfig(weight_bits=9))
    with pytest.raises(TypeError, match="QATConfig"):
        qat.prepare(model, (calib[0][:1],), {"weight_bits": 8})
    with pytest.raises(TypeError, match="prepare returned"):
        qat.convert(model)
    with pytest.raises(ValueError, match="takes 1 inputs, got 2"):
        qat.prepare(model, (calib[0][:1],))(calib[0], calib[0])
    with pytest.raises(ValueError, match="weight_bits"):
        intinfer.quantize(model, (calib[0][:1],), calib, weight_bits=1)


def test_ptq_with_low_bit_weights_stays_bit_exact():
    model, shape, calib, _ = make("mobilenet_v2_block")
    q = intinfer.quantize(model, (calib[0][:1],), calib, weight_bits=4)
    weights = [t for t in q.builder.tensors if t.name.endswith("_w")]
    assert max(int(np.abs(t.data).max()) for t in weights) == 7
    # Packed where a channel's codes fill whole bytes (an even last dimension, or one row a
    # channel); the depthwise conv's rows of one code and the stem's rows of 3 stay int8.
    whole = lambda t: t.shape[-1] % 2 == 0 or t.data.size == t.shape[0] * t.shape[-1]  # noqa: E731
    assert [t.dtype for t in weights] == ["int4" if whole(t) else "int8" for t in weights]
    assert {t.dtype for t in weights} == {"int4", "int8"}
    x = torch.randn(4, *shape).numpy()
    m = q.load(num_threads=2)
    assert_same(m.run(x, raw=True), oracle.run_graph(q.builder, _raw_input(m, 0, x)))


@pytest.mark.parametrize("task_name", ["digits", "sentiment"])
def test_a_real_fine_tune_runs_bit_exact_on_the_engine(task_name, tmp_path):
    """examples/qat_experiment.py's tasks in quick form: a CNN trained on scikit-learn's digits and
    a small transformer classifier on generated sentences, fine-tuned with QAT (8- and 2-bit
    weights): the eval-mode forward equals the engine on the whole test set, and int8 QAT keeps
    the float accuracy."""
    pytest.importorskip("sklearn", reason="installed by scripts/setup.sh")
    from conftest import load_example

    experiment = load_example("qat_experiment")
    task = next(t for t in experiment.tasks(quick=True) if t.name == task_name)
    result, checks = experiment.run_task(task, 0, [8, 2], True, str(tmp_path / "model.iif"), defaultdict(float))
    assert [c[1] for c in checks] == [True, True], checks
    print(f"\n{task_name}: {result}")
    assert result["QAT w8"] >= result["float"] - 0.02
    assert result["QAT w2"] >= result["PTQ w2"] - 0.02
