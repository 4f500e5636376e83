"""The core under AddressSanitizer and UndefinedBehaviorSanitizer (any report fatal): the native
tools built with -DINTINFER_SANITIZE=ON in build/asan, with the system's C++ compiler, and run on
the C API program of tests/test_capi.py, the fuzz corpus (the seeds of tests/test_fuzz.py and
fixed mutations of them, replayed by intinfer-fuzz-corpus), and every op case of tests/test_arm.py
and the every-op model at several batch sizes, thread counts and kernel paths through
intinfer-bench, each output bit for bit against the Python API's reference path.

Skips when the compiler has no sanitizer runtimes, fails in CI (`CI` set)."""

import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import intinfer
from conftest import ISAS, assert_same, build_native_tool, load_graph
from sample_models import every_op_model, sample_input, write_seed_corpus
from test_arm import CASES
from test_capi import quantized_io_model, run_c

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

from mutate import mutate  # noqa: E402

# Leaks are reported too; any report ends the process after its stack with exit code 86.
SANITIZER_ENV = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=86"}
TARGETS = ("intinfer-capi-test", "intinfer-bench", "intinfer-fuzz-corpus")


def _compiler_has_sanitizers(tmp_path) -> str:
    """'' when a C++ program links and runs with -fsanitize=address,undefined, else the error."""
    cxx = os.environ.get("CXX", "c++")
    src = tmp_path / "probe.cc"
    src.write_text("int main() { return 0; }\n")
    out = subprocess.run([cxx, "-fsanitize=address,undefined", str(src), "-o", str(tmp_path / "probe")],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return f"{cxx} cannot link -fsanitize=address,undefined: {out.stderr.strip()[-300:]}"
    run = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True)
    return "" if run.returncode == 0 else f"a sanitized program does not run here: {run.stderr.strip()[-300:]}"


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    why = _compiler_has_sanitizers(tmp_path_factory.mktemp("probe"))
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI must have the sanitizer runtimes (libasan, libubsan)")
        pytest.skip(why)
    args = ("-DINTINFER_SANITIZE=ON", "-DCMAKE_BUILD_TYPE=RelWithDebInfo")
    built = {t: build_native_tool(t, "asan", args) for t in TARGETS}
    # A stale build dir configured without the option would pass every check below unchecked.
    symbols = subprocess.run(["nm", str(built["intinfer-bench"])], capture_output=True, text=True, check=True).stdout
    assert "__asan_report_load" in symbols and "__ubsan_handle" in symbols, "build/asan is not instrumented"
    return built


def _check(out, what):
    assert out.returncode == 0, f"{what}: exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-6000:]}"
    assert "Sanitizer" not in out.stderr and "runtime error" not in out.stderr, f"{what}:\n{out.stderr[-6000:]}"


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("batch", [1, 3])
def test_c_api(tools, tmp_path, isa, batch):
    """The C program's every check: outputs bit for bit, info, every error status and message."""
    out = run_c(tools["intinfer-capi-test"], tmp_path, every_op_model(), sample_input(batch=batch),
                env={**SANITIZER_ENV, "INTINFER_ISA": isa})
    _check(out, f"intinfer-capi-test {isa} batch {batch}")
    assert "all checks passed" in out.stdout


def test_c_api_quantized_io(tools, tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(2, 2, 5), dtype=np.uint8)
    _check(run_c(tools["intinfer-capi-test"], tmp_path, quantized_io_model(), x, env=SANITIZER_ENV),
           "intinfer-capi-test quantized io")


def test_fuzz_corpus(tools, tmp_path):
    """The libFuzzer seeds and 10000 fixed mutations of them (tests/fuzz/mutate.py: bit flips,
    overwritten fields, truncation, spliced bytes), each loaded and, if it loads, run."""
    corpus = tmp_path / "corpus"
    write_seed_corpus(corpus)
    seeds = [p.read_bytes() for p in sorted(corpus.iterdir())]
    rng = random.Random(20)
    for i in range(10000):
        (corpus / f"mutant{i:04d}.iif").write_bytes(bytes(mutate(bytearray(rng.choice(seeds)), rng)))
    files = sorted(map(str, corpus.iterdir()))
    # Two processes, one per core; each replays its half in one run.
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda part: subprocess.run([str(tools["intinfer-fuzz-corpus"]), *part],
                                                         capture_output=True, text=True, env=SANITIZER_ENV,
                                                         timeout=600),
                             [files[0::2], files[1::2]]))
    for out in outs:
        _check(out, "intinfer-fuzz-corpus")
    assert sum(int(out.stdout.split()[1]) for out in outs) == len(files)


def _bench(tool, model, inputs, out_dir, isa, threads):
    args = []
    for i, x in enumerate(inputs):
        np.save(out_dir / f"in{i}.npy", x)
        args += ["--input", str(out_dir / f"in{i}.npy")]
    return subprocess.run([str(tool), str(model), *args, "--output-dir", str(out_dir), "--runs", "2", "--warmup", "0",
                           "--isa", isa, "--threads", str(threads)], capture_output=True, text=True,
                          env=SANITIZER_ENV, timeout=600)


def _run_all(tool, jobs):
    """jobs: (name, model path, inputs, out dir, isa, threads, want); the tool runs two at a time,
    and the outputs are read back here, in one thread: np.load parses each header with
    ast.literal_eval, which CPython 3.11 does not make safe across threads ("AST constructor
    recursion depth mismatch")."""
    def one(job):
        name, model, inputs, out_dir, isa, threads, _ = job
        out_dir.mkdir()
        _check(_bench(tool, model, inputs, out_dir, isa, threads), f"{name} on {isa} at {threads} threads")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, jobs))
    for _, model, _, out_dir, _, _, want in jobs:
        got = [np.load(out_dir / f"{o.name}.npy") for o in intinfer.load(model).outputs]
        want = want if isinstance(want, list) else [want]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)


def test_every_op_model_shapes_threads_paths(tools, tmp_path):
    model = tmp_path / "every_op.iif"
    every_op_model().save(model)
    jobs = []
    for batch in (1, 2, 5, 8):
        x = sample_input(batch=batch, seed=batch)
        want = load_graph(every_op_model(), isa="ref").run([x], raw=True)
        for isa in ISAS:
            for threads in (1, 2, 4):
                jobs.append((f"every-op batch {batch}", model, [x], tmp_path / f"b{batch}_{isa}_{threads}", isa,
                             threads, want))
    _run_all(tools["intinfer-bench"], jobs)


def test_op_cases(tools, tmp_path):
    """Every op case of tests/test_arm.py on every kernel path at 1 and 3 threads."""
    jobs = []
    for name, build in CASES.items():
        graph, inputs = build()
        inputs = inputs if isinstance(inputs, list) else [inputs]
        case_dir = tmp_path / name
        case_dir.mkdir()
        graph.save(case_dir / "model.iif")
        want = load_graph(graph, isa="ref").run(inputs, raw=True)
        jobs += [(name, case_dir / "model.iif", inputs, case_dir / f"{isa}_{threads}", isa, threads, want)
                 for isa in ISAS for threads in (1, 3)]
    _run_all(tools["intinfer-bench"], jobs)
