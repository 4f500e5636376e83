"""bench/coverage.py --quick (the coverage table of docs/models.md on two models): each exports,
has finite SQNR figures and a cosine with torch, and the engine equals intinfer.qat's eval model.
Run from tmp_path, so that the installed package is imported, not the source folder."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="installed by scripts/setup.sh")
pytest.importorskip("geffnet", reason="installed by scripts/setup.sh")

ROOT = Path(__file__).resolve().parent.parent


def test_quick_coverage_table(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "coverage.py"), "--quick"], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| hf |") or line.startswith("| cnn |")]
    assert [r.split("|")[2].strip() for r in rows] == ["bert_sdpa_mean", "resnet18"], out.stdout
    for row in rows:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[2] == "yes" and cells[5] == "bit-exact", row
        sqnr_min, sqnr_median = (float(v) for v in cells[3].split(" / "))
        assert 20 < sqnr_min <= sqnr_median, row  # 8-bit arithmetic on these small models: ~30 dB
        assert float(cells[4].split(" / ")[0]) >= 0.99, row
        assert re.fullmatch(r"\d+", cells[6]) and float(cells[7]) > 0, row
