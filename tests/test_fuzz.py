"""Fuzzing of the model reader: a Python mutation fuzzer (always), and libFuzzer with ASan and
UBSan over the C++ reader, planner and kernels (when clang is present; CI installs it).

INTINFER_FUZZ_SECONDS sets each fuzzer's time (default 30)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sample_models import write_seed_corpus

ROOT = Path(__file__).resolve().parent.parent
SECONDS = int(os.environ.get("INTINFER_FUZZ_SECONDS", "30"))


def test_mutation_fuzz_never_crashes():
    out = subprocess.run([sys.executable, str(ROOT / "tests/fuzz/mutate.py"), str(SECONDS), "7"],
                         capture_output=True, text=True, timeout=SECONDS + 120)
    assert out.returncode == 0, f"fuzzer died ({out.returncode}):\n{out.stderr[-4000:]}"
    counts = dict(kv.split("=") for kv in out.stdout.split())
    print(f"\nmutation fuzz, {SECONDS} s: {counts}")
    assert int(counts["refused"]) > 1000 and int(counts["loaded"]) > 10


@pytest.fixture(scope="module")
def libfuzzer_binary(tmp_path_factory):
    clang = shutil.which("clang++")
    if clang is None:
        if os.environ.get("CI"):
            pytest.fail("clang++ is missing in CI: .ci/run must install it")
        pytest.skip("clang++ not installed (apt-get install clang)")
    build = ROOT / "build" / "fuzz"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja", f"-DCMAKE_CXX_COMPILER={clang}",
                    "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DINTINFER_PYTHON=OFF", "-DINTINFER_FUZZ=ON"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2", "--target", "fuzz_model_reader"], check=True,
                   capture_output=True)
    return build / "fuzz_model_reader"


def test_libfuzzer_with_sanitizers(libfuzzer_binary, tmp_path):
    corpus = tmp_path / "corpus"
    write_seed_corpus(corpus)
    out = subprocess.run([str(libfuzzer_binary), str(corpus), f"-max_total_time={SECONDS}", "-max_len=8192",
                          # libFuzzer's RSS limit reads the peak RSS, which a child inherits from
                          # its parent (pytest, several GB once torch models are loaded), so it
                          # would fire at once; the limit is put on single allocations instead,
                          # and LeakSanitizer reports leaks.
                          "-timeout=30", "-rss_limit_mb=0", "-malloc_limit_mb=2048", "-print_final_stats=1"],
                         capture_output=True, text=True, timeout=SECONDS + 300, cwd=tmp_path)
    if out.returncode != 0:
        # The sanitizer's report and the saved input (crash-*/timeout-*/oom-* in the corpus' parent).
        report = [line for line in out.stderr.splitlines()
                  if re.search(r"ERROR|SUMMARY|runtime error|^\s+#\d+ |ALARM|Test unit written|deadly", line)]
        pytest.fail(f"libFuzzer found a failure (exit {out.returncode}):\n" + "\n".join(report[:60]))
    runs = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", out.stderr).group(1))
    print(f"\nlibFuzzer, {SECONDS} s: {runs} inputs executed")
    assert runs > 1000
