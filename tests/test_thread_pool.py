"""The model's thread pool (csrc/core/thread_pool.cc) as servers and data loaders use it: after
fork(), when threads cannot be started, and the cap on num_threads (docs/runtime.md, Threads).

Each scenario runs in a fresh interpreter with a timeout: a hang fails the test, never CI."""

import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent

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
                             timeout=timeout, env={**__import__("os").environ, **env})
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
