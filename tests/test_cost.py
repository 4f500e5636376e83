"""intinfer cost / Model.cost / intinfer.cost.torch_cost: counts checked by hand on small graphs,
against the formulas of a BERT encoder, and the engine's count against torch's on the same model."""

import json
import subprocess
import sys

import numpy as np
import pytest

import intinfer
from intinfer.builder import GraphBuilder
from intinfer.cost import parse_count


def hand_counted_model() -> GraphBuilder:
    rng = np.random.default_rng(0)
    g = GraphBuilder()
    x = g.input("x", (None, 8, 8, 4), "uint8", 0.05, 128)

    def const_w(name, shape):
        return g.constant(name, rng.integers(-127, 128, shape), "int8", scale=[0.01] * shape[0])

    def const_b(n):
        return g.constant("b", rng.integers(-100, 100, n).astype(np.int32))

    y = g.conv2d(x, const_w("conv_w", (6, 3, 3, 4)), const_b(6), 0.05, 0, padding=1, name="conv")
    y = g.conv2d(y, const_w("dw_w", (6, 3, 3, 1)), const_b(6), 0.05, 0, stride=2, padding=1, groups=6, name="dw")
    y = g.avg_pool(y, 2, 0.05, 0, name="pool")
    y = g.reshape(y, [-1, 24], name="flat")
    y = g.fully_connected(y, const_w("fc_w", (5, 24)), const_b(5), 0.1, 0, name="fc")
    g.output(g.add(y, y, 0.2, 0, name="sum"))
    return g


def test_hand_counted_layers():
    m = intinfer.load(hand_counted_model().to_bytes())
    cost = m.cost({"x": [3, 8, 8, 4]})
    rows = {r.name: r for r in cost.layers}
    # conv: 3 x 8 x 8 x 6 outputs, each 3 x 3 x 4 products; 6 x 3 x 3 x 4 int8 weights + 6 int32 biases.
    assert (rows["conv"].macs, rows["conv"].parameters, rows["conv"].weight_bytes) == (3 * 8 * 8 * 6 * 36, 222, 240)
    # depthwise, stride 2: 3 x 4 x 4 x 6 outputs, 9 products each.
    assert (rows["dw"].macs, rows["dw"].parameters, rows["dw"].weight_bytes) == (3 * 4 * 4 * 6 * 9, 60, 78)
    # pool: 3 x 2 x 2 x 6 outputs, a 2 x 2 window each: window steps, not MACs.
    assert (rows["pool"].macs, rows["pool"].other_ops) == (0, 3 * 2 * 2 * 6 * 4)
    assert (rows["flat"].macs, rows["flat"].other_ops) == (0, 0)
    assert (rows["fc"].macs, rows["fc"].parameters, rows["fc"].weight_bytes) == (3 * 5 * 24, 125, 140)
    assert (rows["sum"].macs, rows["sum"].other_ops) == (0, 3 * 5)
    assert cost.totals == {"parameters": 222 + 60 + 125, "weight_bytes": 240 + 78 + 140,
                           "macs": 41472 + 2592 + 360, "activation_macs": 0, "other_ops": 288 + 15}
    assert cost.arena_bytes == m.memory({"x": [3, 8, 8, 4]})["arena_bytes"]
    # Dynamic dimensions not given are 1.
    assert m.cost().totals["macs"] * 3 == cost.totals["macs"]


def test_verdict_against_a_budget():
    cost = intinfer.load(hand_counted_model().to_bytes()).cost({"x": [3, 8, 8, 4]})
    assert cost.verdict()["fits"]
    v = cost.verdict(budget_params=400, budget_macs="1M")
    assert not v["fits"] and v["params_ratio"] == pytest.approx(407 / 400)
    assert cost.verdict(budget_params="407", budget_macs=44424)["fits"]
    assert not cost.verdict(budget_params="407", budget_macs=44423)["fits"]
    text = str(cost)
    assert "407 parameters" in text and "44,424 MACs" in text and "fits" in text
    json.dumps(cost.to_dict())


@pytest.mark.parametrize("text, value", [("10M", 10_000_000), ("500m", 500_000_000), ("1.5G", 1_500_000_000),
                                         ("4k", 4000), ("2_500_000", 2_500_000), (" 7 ", 7), (12, 12)])
def test_budget_strings(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["ten", "10MB", "-5M", "0", "1.5", "", "1e6", True])
def test_budget_strings_that_do_not_parse(text):
    with pytest.raises(ValueError, match="count|budget"):
        parse_count(text)


def test_activation_products_are_counted_apart():
    g = GraphBuilder()
    a = g.input("a", (None, 4, 8), "uint8", 0.1, 128)
    b = g.input("b", (None, 6, 8), "uint8", 0.1, 128)
    g.output(g.matmul(a, b, 0.5, 128, transpose_b=True, name="scores"))
    cost = intinfer.load(g.to_bytes()).cost({"a": [2, 4, 8], "b": [2, 6, 8]})
    assert cost.totals["macs"] == cost.totals["activation_macs"] == 2 * 4 * 6 * 8
    with pytest.raises(ValueError, match="unknown input"):
        intinfer.load(g.to_bytes()).cost({"c": [1]})
    with pytest.raises(ValueError, match="expected shape"):
        intinfer.load(g.to_bytes()).cost({"a": [2, 5, 8], "b": [2, 6, 8]})


def test_encoder_counts_follow_the_bert_formulas():
    """A BERT encoder of L layers, hidden H, FFN F on S tokens: S * L * (4 H^2 + 2 H F) products
    with weights (Q, K, V, output; FFN in and out) and L * 2 * S^2 * H between activations
    (scores and context over all heads); the engine's count and torch's agree."""
    torch = pytest.importorskip("torch")
    from sample_models import token_batch, tiny_bert

    from intinfer.cost import torch_cost

    model = tiny_bert(seed=0)
    gen = torch.Generator().manual_seed(0)
    ids, mask, types = token_batch(4, 12, gen)
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=16)
    q = intinfer.quantize(model, (ids, mask, types), [(ids, mask, types)], weight_rounding="nearest",
                          bias_correction=False, dynamic_shapes=({0: batch, 1: seq},) * 3)
    m = intinfer.load(q.to_bytes())
    S, L, H, F = 12, 2, 32, 64
    cost = m.cost({i.name: [1, S] for i in m.inputs})
    assert cost.totals["activation_macs"] == L * 2 * S * S * H
    assert cost.totals["macs"] - cost.totals["activation_macs"] == S * L * (4 * H * H + 2 * H * F)
    ours = torch_cost(model, (ids[:1], mask[:1], types[:1]))
    assert ours.source == "torch" and ours.totals["macs"] == cost.totals["macs"]
    # each layer's own products: none counted twice and taken back by a container (ModuleList)
    layer_macs = {r.name: r.macs for r in ours.layers}
    assert min(layer_macs.values()) >= 0 and layer_macs.get("bert.layers", 0) == 0
    assert layer_macs["bert.layers.0.query"] == S * H * H
    assert ours.totals["parameters"] == sum(p.numel() for p in model.parameters())


def test_cli_prints_the_table_and_json_or_the_error(tmp_path):
    path = tmp_path / "m.iif"
    hand_counted_model().save(path)

    def cli(*args):
        # From tmp_path, so that the installed package is imported, not the source folder.
        return subprocess.run([sys.executable, "-m", "intinfer.cli", "cost", str(path), *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)

    out = cli("--shape", "x=3,8,8,4", "--budget-params", "10M")
    assert out.returncode == 0, out.stderr
    assert "conv" in out.stdout and "44,424 MACs" in out.stdout and "fits" in out.stdout
    out = cli("--shape", "x=3x8x8x4", "--json", "--budget-macs", "40k")
    report = json.loads(out.stdout)
    assert report["totals"]["macs"] == 44424 and report["verdict"]["fits"] is False
    assert report["verdict"]["budget_macs"] == 40000
    for args, message in [(["--budget-macs", "lots"], "cannot read 'lots'"), (["--shape", "x"], "NAME=D1,D2"),
                          (["--shape", "x=0,8,8,4"], "positive sizes")]:
        out = cli(*args)
        assert out.returncode == 2 and message in out.stderr, out.stderr
    out = cli("--shape", "y=1,8,8,4")
    assert out.returncode == 1 and "unknown input(s) ['y']" in out.stderr
