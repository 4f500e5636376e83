"""bench/soak.py --quick on the every-op sample model: 8 threads on one shared model, random batch
sizes, every output equal to a single-threaded run's, RSS reported (the full soak on the real
models is run by hand, docs/testing.md)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_soak():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--quick", "--runs", "60"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "8 threads x 60 runs = 480 runs" in out.stdout
    assert int(re.search(r"distinct shapes (\d+)", out.stdout).group(1)) == 8  # batch 1..8 all drawn
    assert re.search(r"RSS MiB min \d+ max \d+", out.stdout)
    assert "mismatches 0" in out.stdout and "result: no mismatch" in out.stdout
