#!/usr/bin/env python3
"""The long libFuzzer run of docs/testing.md (outside CI): builds tests/fuzz/fuzz_model_reader
with ASan + UBSan in build/fuzz, as tests/test_fuzz.py does, seeds build/fuzz/corpus with the
sample models (the corpus grows across runs) and runs it for --runs executions (default 1M).

Prints the executions, the time, the coverage (libFuzzer's edge count `cov` and feature count
`ft`) and any crash with its saved input (build/fuzz/artifacts/). Exit status 0 when nothing was
found, 1 on a crash, leak, timeout or sanitizer report.

    python3 scripts/fuzz_long.py [--runs 1000000]
"""

import argparse
import datetime
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sample_models import write_seed_corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000, help="executions (default 1,000,000)")
    parser.add_argument("--build-jobs", type=int, default=2, help="parallel compile jobs")
    args = parser.parse_args()

    clang = shutil.which("clang++")
    if clang is None:
        sys.exit("clang++ is needed for libFuzzer (apt-get install clang)")
    build = ROOT / "build" / "fuzz"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja", f"-DCMAKE_CXX_COMPILER={clang}",
                    "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DINTINFER_PYTHON=OFF", "-DINTINFER_FUZZ=ON"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), f"-j{args.build_jobs}", "--target", "fuzz_model_reader"],
                   check=True, stdout=subprocess.DEVNULL)
    corpus, artifacts = build / "corpus", build / "artifacts"
    write_seed_corpus(corpus)
    artifacts.mkdir(exist_ok=True)

    log = build / "fuzz_long.log"
    start = time.monotonic()
    with open(log, "w") as f:
        # The same limits as tests/test_fuzz.py: no RSS limit (the peak RSS is inherited from a
        # parent), a limit on single allocations instead, 30 s per input.
        code = subprocess.run([str(build / "fuzz_model_reader"), str(corpus), f"-runs={args.runs}", "-max_len=8192",
                               "-timeout=30", "-rss_limit_mb=0", "-malloc_limit_mb=2048", "-print_final_stats=1",
                               f"-artifact_prefix={artifacts}/"], stderr=f, stdout=f).returncode
    seconds = time.monotonic() - start
    text = log.read_text(errors="replace")
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    progress = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", text, re.M)
    print(f"date {datetime.date.today().isoformat()}")
    print(f"executions {runs.group(1) if runs else (progress[-1][0] if progress else 0)}")
    print(f"time {seconds:.0f} s")
    if progress:
        _, cov, ft, corp = progress[-1]
        print(f"coverage cov {cov} ft {ft}, corpus {corp} inputs")
    if code == 0:
        print("result: no crash, leak, timeout or sanitizer report")
        return 0
    report = [line for line in text.splitlines()
              if re.search(r"ERROR|SUMMARY|runtime error|^\s+#\d+ |ALARM|Test unit written|deadly", line)]
    print(f"result: FAILURE (exit {code}); full log {log}")
    print("\n".join(report[:80]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
