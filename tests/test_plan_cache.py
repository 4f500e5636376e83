"""Memory over many input shapes (csrc/core/model.cc, csrc/core/buffer.cc): the per-model plan
cache is an LRU of settable size, and the activation arenas go back to the OS
(docs/runtime.md, The plan cache)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import intinfer
from conftest import assert_same
from sample_models import every_op_model, sample_input

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def data() -> bytes:
    return every_op_model().to_bytes()


def test_default_size(data):
    m = intinfer.load(data, num_threads=1)
    assert m.plan_cache_size == 64
    assert m.cached_plans <= 2  # the plans for dynamic sizes 1 and 2 that name the output dims


def test_least_recently_used_plan_goes_first(data):
    m = intinfer.load(data, num_threads=2, plan_cache_size=3)
    ref = intinfer.load(data, num_threads=1, plan_cache_size=0)
    for batch in (1, 2, 3, 1, 4, 5, 1, 6, 7, 8, 1):
        assert_same(m.run(sample_input(batch)), ref.run(sample_input(batch)))
        assert m.cached_plans <= 3
    assert m.cached_plans == 3
    assert ref.cached_plans == 0
    # memory() plans through the same cache.
    assert m.memory({"image": [9, 6, 6, 3]}) == ref.memory({"image": [9, 6, 6, 3]})
    assert m.cached_plans == 3


def test_plan_cache_size_is_checked(data):
    with pytest.raises(ValueError, match="plan_cache_size"):
        intinfer.load(data, plan_cache_size=-1)


def test_rss_stays_bounded_over_two_thousand_batch_sizes():
    # Before: 34 MB -> 1,091 MB (every arena size stayed in the allocator's heap) and one plan per
    # shape. The growth allowed here is generous: the largest arena is 1.08 MB.
    code = textwrap.dedent("""
        import gc
        import numpy as np
        import intinfer
        from sample_models import every_op_model

        def rss_mb():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096 / 2**20

        m = intinfer.load(every_op_model().to_bytes(), num_threads=2, plan_cache_size=16)
        x = np.random.default_rng(0).uniform(-2, 2, (2000, 6, 6, 3)).astype(np.float32)
        m.run(x[:1])
        before = rss_mb()
        for batch in range(1, 2001):
            m.run(x[:batch])
            assert m.cached_plans <= 16
        during = rss_mb()
        del m
        gc.collect()
        print(before, during, rss_mb())
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    before, during, after = map(float, out.stdout.split())
    assert during - before < 48, (before, during, after)
    assert after - before < 48, (before, during, after)
