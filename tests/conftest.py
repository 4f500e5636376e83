"""Helpers shared by the engine tests: load a GraphBuilder graph, compare it with the oracle."""

import zlib

import numpy as np
import pytest

import oracle


def load_graph(builder, num_threads: int = 1):
    # Imported here, not at the top, so that test_oracle.py runs before the engine is built.
    import intinfer

    return intinfer.load(builder.to_bytes(), num_threads=num_threads)


def assert_same(got, want) -> None:
    """Bit-for-bit equality, dtype and shape included; lists compare element by element."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
        return
    assert isinstance(got, np.ndarray), type(got)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    np.testing.assert_array_equal(got, want)
    # Also tells -0.0 from 0.0 in float outputs.
    assert got.tobytes() == want.tobytes()


def check_graph(builder, inputs, threads=(1,)):
    """Runs the graph in the engine at each thread count and in the oracle, and asserts the raw
    outputs are identical. Returns the oracle's outputs."""
    want = oracle.run_graph(builder, inputs)
    for n in threads:
        assert_same(load_graph(builder, num_threads=n).run(inputs, raw=True), want)
    return want


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: reproducible, and different for each parameter set."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
