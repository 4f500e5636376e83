"""Helpers shared by the engine tests: load a GraphBuilder graph, compare it with the oracle."""

import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import oracle


def load_graph(builder, num_threads: int = 1, isa: str | None = None):
    """Loads the graph; `isa` forces a kernel path (INTINFER_ISA), None takes the default."""
    # Imported here, not at the top, so that test_oracle.py runs before the engine is built.
    import intinfer

    if isa is None:
        return intinfer.load(builder.to_bytes(), num_threads=num_threads)
    old = os.environ.get("INTINFER_ISA")
    os.environ["INTINFER_ISA"] = isa
    try:
        return intinfer.load(builder.to_bytes(), num_threads=num_threads)
    finally:
        if old is None:
            del os.environ["INTINFER_ISA"]
        else:
            os.environ["INTINFER_ISA"] = old


def build_native_tool(target: str, build_dir: str = "tools", cmake_args: tuple = ()) -> Path:
    """Configures build/<build_dir> with CMake (native tools, no Python module; `cmake_args`
    e.g. a cross tool chain), builds `target` and returns the path of the executable."""
    root = Path(__file__).resolve().parent.parent
    build = root / "build" / build_dir
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    for step in (["cmake", "-S", str(root), "-B", str(build), *generator, "-DINTINFER_PYTHON=OFF", "-DINTINFER_TOOLS=ON",
                  *cmake_args],
                 ["cmake", "--build", str(build), "-j2", "--target", target]):
        out = subprocess.run(step, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
    return build / target


def load_example(name: str):
    """The module examples/<name>.py (the examples folder is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def available_isas() -> list:
    """Every kernel path this build can run on this CPU (the engine's own list): each optimized
    path is tested bit for bit like the reference."""
    import intinfer

    return intinfer.available_paths()


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
    for isa in ISAS:
        for n in threads:
            assert_same(load_graph(builder, num_threads=n, isa=isa).run(inputs, raw=True), want)
    return want


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: reproducible, and different for each parameter set."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _isas_or_empty() -> list:
    try:
        return available_isas()
    except ImportError:  # the engine is not built: only the oracle's own tests can run
        return []


ISAS = _isas_or_empty()
