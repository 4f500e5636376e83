"""bench/soak.py --quick on the every-op sample model: 8 threads on one shared model, random batch
sizes, every output equal to a single-threaded run's, RSS reported (the full soak on the real
models is run by hand, docs/testing.md)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def soak(*args):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--quick", *args],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_quick_soak():
    out = soak("--runs", "60")
    assert "8 threads x 60 runs = 480 runs" in out.stdout
    assert "reference pass over 480 inputs" in out.stdout  # one input per run
    assert int(re.search(r"distinct shapes (\d+)", out.stdout).group(1)) == 8  # batch 1..8 all drawn
    assert re.search(r"RSS MiB min \d+ max \d+", out.stdout)
    assert "mismatches 0" in out.stdout and "result: no mismatch" in out.stdout


def test_quick_soak_from_a_pool():
    """--pool P: the runs cycle through P inputs, each checked against its one reference run."""
    out = soak("--runs", "40", "--pool", "24")
    assert "8 threads x 40 runs = 320 runs" in out.stdout
    assert "reference pass over 24 inputs" in out.stdout
    assert "mismatches 0" in out.stdout and "result: no mismatch" in out.stdout


def test_soak_refuses_a_nonsensical_pool():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--quick", "--pool", "-3"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--pool must be positive" in out.stderr
