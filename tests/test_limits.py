"""Limits on what a model may demand (csrc/core/model.cc; docs/runtime.md, Limits): a small
hostile file is refused at load, a huge input shape at run time, before anything is allocated
or computed, naming the tensor or op and the limit; the limits are load options."""

import numpy as np
import pytest

import intinfer
from intinfer.builder import GraphBuilder
from sample_models import every_op_model, sample_input

MiB = 2**20


def padded_conv(pad: int, shape=(1, 4, 4, 3)) -> bytes:
    g = GraphBuilder()
    x = g.input("x", shape, "uint8", 0.1, 0)
    w = g.constant("w", np.ones((4, 1, 1, 3), np.int8), scale=[0.1] * 4)
    g.output(g.conv2d(x, w, g.constant("b", np.zeros(4, np.int32)), 0.1, 0, padding=pad, name="wide"))
    return g.to_bytes()


def test_defaults():
    m = intinfer.load(every_op_model().to_bytes())
    assert m.limits == {"max_tensor_bytes": 256 * MiB, "max_arena_bytes": 1024 * MiB, "max_macs": 2**40}
    assert intinfer.load(every_op_model().to_bytes(), max_macs=2**50).limits["max_macs"] == 2**50


def test_conv_pads_of_65536_are_refused_at_load():
    data = padded_conv(65536)
    assert len(data) < 4096
    with pytest.raises(intinfer.ModelError, match=r"tensor 'wide' \(output of op 'wide', CONV2D\) would have shape "
                                                  r"\[1, 131076, 131076, 4\].* above max_tensor_bytes = 268435456"):
        intinfer.load(data)


def test_an_input_dimension_of_2_to_the_20_is_refused_at_load():
    g = GraphBuilder()
    x = g.input("x", (2**20, 1024), "uint8", 0.1, 0)
    g.output(g.clamp(x, 1, 200))
    with pytest.raises(intinfer.ModelError, match=r"input 'x' would have shape \[1048576, 1024\]: 1073741824 bytes, "
                                                  r"above max_tensor_bytes"):
        intinfer.load(g.to_bytes())
    # A big server raises the limit.
    assert intinfer.load(g.to_bytes(), max_tensor_bytes=2**31, max_arena_bytes=2**32).inputs[0].shape == (2**20, 1024)


def test_a_dynamic_dimension_of_2_to_the_20_is_refused_at_run_time():
    g = GraphBuilder()
    x = g.input("x", (None, 1024), "uint8", 0.1, 0)
    g.output(g.clamp(x, 1, 200))
    m = intinfer.load(g.to_bytes())
    assert m.run(np.ones((3, 1024), np.uint8), raw=True).shape == (3, 1024)
    big = np.zeros((2**20, 1024), np.uint8)  # calloc'ed: no page is touched
    with pytest.raises(ValueError, match=r"input 'x' would have shape \[1048576, 1024\].*max_tensor_bytes"):
        m.run(big)


def test_pooling_work_is_counted():
    # 65,536 output pixels of 1,000 channels, each the mean of a 4096 x 16 window: 4.3e12
    # accumulations from a 3 KB file.
    g = GraphBuilder()
    x = g.input("x", (1, 1, 1, 1000), "uint8", 0.1, 0)
    g.output(g.avg_pool(x, (4096, 16), 0.1, 0, stride=1, padding=(4095, 15, 4095, 15), name="pool"))
    with pytest.raises(intinfer.ModelError, match=r"op 'pool' \(AVG_POOL\).*above max_macs = 1099511627776"):
        intinfer.load(g.to_bytes())


def test_arena_limit_at_load_and_at_run_time():
    data = every_op_model().to_bytes()
    with pytest.raises(intinfer.ModelError, match=r"activation arena.* above max_arena_bytes = 512"):
        intinfer.load(data, max_arena_bytes=512)
    m = intinfer.load(data, max_arena_bytes=4096)
    m.run(sample_input(batch=1))
    with pytest.raises(ValueError, match=r"activation arena.*at input shapes \[\[40, 6, 6, 3\]\].*max_arena_bytes = 4096"):
        m.run(sample_input(batch=40))
    assert m.cached_plans <= 2


def test_mac_limit_at_run_time():
    m = intinfer.load(every_op_model().to_bytes(), max_macs=10_000)
    with pytest.raises(ValueError, match=r"max_macs = 10000"):
        m.run(sample_input(batch=100))


@pytest.mark.parametrize("key", ["max_tensor_bytes", "max_arena_bytes", "max_macs"])
def test_limits_must_be_positive(key):
    with pytest.raises(ValueError, match=key):
        intinfer.load(every_op_model().to_bytes(), **{key: 0})
