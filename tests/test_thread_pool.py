"""The model's thread pool (csrc/core/thread_pool.cc) as servers and data loaders use it: after
fork(), when threads cannot be started, and the cap on num_threads (docs/runtime.md, Threads);
and its work sharing checked directly by tests/core/thread_pool_test.cc, natively and under
ThreadSanitizer.

Each scenario runs in a fresh interpreter with a timeout: a hang fails the test, never CI."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import intinfer
from conftest import build_native_tool
from sample_models import every_op_model

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

PRELUDE = """
import os, sys, threading, time
import numpy as np
import intinfer
from sample_models import every_op_model, sample_input

model = intinfer.load(every_op_model().to_bytes(), num_threads=int(os.environ.get("THREADS", "2")))
x = sample_input(batch=5)
want = model.run(x)

def wait_child(pid, seconds=20):
    # The child's exit status, or 99 when it is still running after `seconds` (then killed).
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return 99
"""


def run_script(body: str, timeout: float = 60, **env) -> str:
    """Runs PRELUDE + body in a new interpreter from tests/; returns its stdout, failing the test
    on a non-zero exit or a hang."""
    code = PRELUDE + textwrap.dedent(body)
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True,
                             timeout=timeout, env={**os.environ, **env})
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the script hung (more than {timeout} s):\n{e.stdout}\n{e.stderr}") from None
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_forked_child_runs_the_model_and_exits():
    out = run_script("""
        pid = os.fork()
        if pid == 0:
            ok = all(np.array_equal(model.run(x), want) for _ in range(3))
            os._exit(0 if ok else 1)
        assert wait_child(pid) == 0, "the child failed or hung"
        assert np.array_equal(model.run(x), want), "the parent's pool broke"
        print("ok")
    """)
    assert out.strip() == "ok"


def test_forked_child_that_only_exits():
    # sys.exit runs the child's interpreter shutdown, which frees the model and its pool.
    run_script("""
        pid = os.fork()
        if pid == 0:
            sys.exit(0)
        assert wait_child(pid) == 0, "the child hung on exit"
        del model
    """)


def test_grandchild_after_the_child_ran_the_model():
    # The child's new pool must itself survive the next fork.
    run_script("""
        pid = os.fork()
        if pid == 0:
            assert np.array_equal(model.run(x), want)
            pid2 = os.fork()
            if pid2 == 0:
                os._exit(0 if np.array_equal(model.run(x), want) else 1)
            os._exit(wait_child(pid2))
        assert wait_child(pid, 40) == 0
    """, THREADS="3")


def test_multiprocessing_fork_pool_workers_run_the_model():
    out = run_script("""
        import multiprocessing as mp

        def work(seed):
            return model.run(sample_input(batch=seed + 1, seed=seed)).sum()

        with mp.get_context("fork").Pool(2) as pool:
            got = pool.map_async(work, range(6)).get(timeout=30)
        assert np.allclose(got, [work(s) for s in range(6)])
        print("ok")
    """)
    assert out.strip() == "ok"


def test_fork_while_another_thread_runs_the_model():
    # fork() waits for the parallel section in flight; the child then starts its own workers.
    run_script("""
        stop = False
        def loop():
            while not stop:
                assert np.array_equal(model.run(x), want)
        t = threading.Thread(target=loop)
        t.start()
        try:
            for _ in range(5):
                time.sleep(0.02)
                pid = os.fork()
                if pid == 0:
                    os._exit(0 if np.array_equal(model.run(x), want) else 1)
                assert wait_child(pid) == 0
        finally:
            stop = True
            t.join()
    """)


def test_a_pool_that_cannot_start_fails_the_load_cleanly():
    # An address-space limit one thread stack (glibc's default size: RLIMIT_STACK) and a few MB
    # above what the process uses makes the OS refuse a worker thread part-way (root ignores
    # RLIMIT_NPROC); the workers already started must be stopped, and the load must fail with a
    # ModelError naming the thread count.
    out = run_script("""
        import resource
        n = intinfer.max_num_threads()
        data = every_op_model().to_bytes()
        stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
        stack = 2 * 2**20 if stack == resource.RLIM_INFINITY else stack
        headroom = stack + 4 * 2**20
        if (n - 1) * stack <= headroom:
            print("skip: the stacks of all workers fit in the headroom")
            sys.exit(0)
        used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (used + headroom, resource.RLIM_INFINITY))
        try:
            intinfer.load(data, num_threads=n)
        except intinfer.ModelError as e:
            assert f"{n} threads" in str(e) and "num_threads" in str(e), e
        else:
            raise AssertionError("the load succeeded")
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert np.array_equal(intinfer.load(data, num_threads=2).run(x), want)
        print("ok")
    """)
    if out.startswith("skip"):
        pytest.skip(out)
    assert out.strip() == "ok"


def test_num_threads_is_capped():
    data = every_op_model().to_bytes()
    cpus = len(os.sched_getaffinity(0))
    assert intinfer.max_num_threads() == 4 * cpus
    assert intinfer.load(data).num_threads <= cpus
    assert intinfer.load(data, num_threads=intinfer.max_num_threads()).num_threads == 4 * cpus
    with pytest.raises(intinfer.ModelError, match=rf"num_threads {4 * cpus + 1} is above the maximum of {4 * cpus}"):
        intinfer.load(data, num_threads=4 * cpus + 1)
    with pytest.raises(intinfer.ModelError, match="num_threads 1000 is above"):
        intinfer.load(data, num_threads=1000)


def test_work_sharing_natively():
    # Every index once, chunks aligned to the grain, a stalled worker's share taken by the others.
    out = subprocess.run([str(build_native_tool("intinfer-pool-test"))], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_work_sharing_under_thread_sanitizer(tmp_path):
    # The chunk claiming is lock-free: ThreadSanitizer checks its memory ordering on the same
    # program (only thread_pool.cc is needed, so it is compiled directly).
    exe = tmp_path / "pool_tsan"
    build = subprocess.run(["g++", "-std=c++17", "-O1", "-g", "-fsanitize=thread", f"-I{REPO / 'csrc'}",
                            str(TESTS / "core" / "thread_pool_test.cc"), str(REPO / "csrc" / "core" / "thread_pool.cc"),
                            "-lpthread", "-o", str(exe)], capture_output=True, text=True)
    if build.returncode != 0:
        why = f"g++ cannot build with -fsanitize=thread: {build.stderr.strip()[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI must have the ThreadSanitizer runtime (libtsan)")
        pytest.skip(why)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ThreadSanitizer" not in out.stderr, out.stdout + out.stderr[-6000:]
