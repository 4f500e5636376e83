"""The C API (csrc/include/intinfer/intinfer.h) from a C program, tests/c/test_capi.c, built with
CMake without Python: its outputs must equal the Python API's bit for bit, at any batch size and
on every kernel path, its info must be the Python API's, and each error path must give its status
and a message that says what is wrong."""

import os
import subprocess

import numpy as np
import pytest

import intinfer
from conftest import ISAS, build_native_tool
from intinfer.builder import GraphBuilder
from sample_models import every_op_model, sample_input


@pytest.fixture(scope="module")
def capi_test():
    return build_native_tool("intinfer-capi-test")


def quantized_io_model() -> GraphBuilder:
    """uint8 in, two uint8 outputs: quantization parameters in the info, outputs concatenated."""
    g = GraphBuilder()
    x = g.input("x", (None, 2, 5), "uint8", 0.5, 3)
    c = g.clamp(x, 10, 200, name="clamped")
    g.output(c, g.reshape(c, [0, -1], name="flat"))
    return g


def info_lines(m) -> list:
    """The lines the C program prints for the model's inputs and outputs."""
    def line(kind, i, t):
        dims = ",".join("-1" if d is None else str(d) for d in t.shape)
        q = f"scale {t.scale:.9g} zero_point {t.zero_point}" if t.scale is not None else "not quantized"
        ids = f" ids [0, {t.id_rows})" if t.id_rows else ""
        return f"{kind} {i} {t.name} {t.dtype} [{dims}] {q}{ids}"
    return [line("input", i, t) for i, t in enumerate(m.inputs)] + [line("output", i, t) for i, t in enumerate(m.outputs)]


def run_c(tool, tmp_path, graph, x, expected=None, env=None):
    """Writes the model, the input and the expected outputs (the Python API's raw outputs unless
    given), and runs the C program (a path, or a command list such as qemu + path) on them."""
    model = tmp_path / "m.iif"
    graph.save(model)
    if expected is None:
        outputs = intinfer.load(model).run(x, raw=True)
        expected = b"".join(o.tobytes() for o in (outputs if isinstance(outputs, list) else [outputs]))
    (tmp_path / "x.raw").write_bytes(np.ascontiguousarray(x).tobytes())
    (tmp_path / "y.raw").write_bytes(expected)
    dims = "x".join(map(str, x.shape))
    command = tool if isinstance(tool, list) else [str(tool)]
    return subprocess.run([*command, str(model), str(tmp_path / "x.raw"), dims, str(tmp_path / "y.raw")],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("batch", [1, 3])
def test_outputs_info_and_errors(capi_test, tmp_path, batch):
    x = sample_input(batch=batch)
    out = run_c(capi_test, tmp_path, every_op_model(), x)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout
    # The expected bytes are those of the documented Python call, not only of its raw variant.
    assert intinfer.load(tmp_path / "m.iif").run(x).tobytes() == (tmp_path / "y.raw").read_bytes()
    lines = out.stdout.splitlines()
    assert lines[0] == f"version {intinfer.__version__} format 1.1"
    m = intinfer.load(tmp_path / "m.iif")
    assert [s for s in lines if s.startswith(("input ", "output "))] == info_lines(m)
    assert "error missing file (ERROR_MODEL): cannot open model file" in out.stdout
    assert "error corrupt magic (ERROR_MODEL): invalid model file: bad magic" in out.stdout
    assert "error truncated to half (ERROR_MODEL): invalid model file: descriptor [48, " in out.stdout
    assert "error truncated to 20 bytes (ERROR_MODEL): invalid model file: file is 20 bytes, shorter than the 48-byte header" in out.stdout
    assert "error one dimension too many (ERROR_INPUT): input 'image': expected shape [?, 6, 6, 3]" in out.stdout
    assert "error wrong dtype of the same size (ERROR_INPUT): input 'image': expected dtype float32, got int32" in out.stdout
    assert "error one byte short (ERROR_INPUT): input 'image': shape" in out.stdout
    assert "error unknown dtype (ERROR_ARGUMENT): input 'image': unknown dtype 99" in out.stdout
    assert "error NULL path (ERROR_ARGUMENT): path is NULL" in out.stdout


def test_quantized_inputs_and_two_outputs(capi_test, tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(2, 2, 5), dtype=np.uint8)
    out = run_c(capi_test, tmp_path, quantized_io_model(), x)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [s for s in out.stdout.splitlines() if s.startswith(("input ", "output "))] == [
        "input 0 x uint8 [-1,2,5] scale 0.5 zero_point 3",
        "output 0 clamped uint8 [-1,2,5] scale 0.5 zero_point 3",
        "output 1 flat uint8 [-1,10] scale 0.5 zero_point 3",
    ]


def test_ids_input_gives_its_valid_range(capi_test, tmp_path):
    """An int32 input read by GATHERs of 10 and 50 rows: ids [0, 10) in its info, as in Python."""
    g = GraphBuilder()
    ids = g.input("ids", (None, 3), "int32")
    table = g.constant("table", (np.arange(40) % 100 - 50).astype(np.int8).reshape(10, 4), "int8", scale=np.full(10, 0.01))
    large = g.constant("large", (np.arange(200) % 100 - 50).astype(np.int8).reshape(50, 4), "int8", scale=np.full(50, 0.01))
    g.output(g.add(g.gather(table, ids, 0.02, 128), g.gather(large, ids, 0.02, 128), 0.04, 128, name="y"))
    x = np.array([[0, 9, 3], [1, 2, 8]], dtype=np.int32)
    out = run_c(capi_test, tmp_path, g, x)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [s for s in out.stdout.splitlines() if s.startswith(("input ", "output "))]
    assert lines[0] == "input 0 ids int32 [-1,3] not quantized ids [0, 10)"
    assert lines == info_lines(intinfer.load(tmp_path / "m.iif"))


def test_output_of_unknown_shape(capi_test, tmp_path):
    """An output that no batch of 1 can be planned for: rank -1 in its info, dims known after a run."""
    g = GraphBuilder()
    g.output(g.reshape(g.input("x", (None, 4), "uint8", 0.25, 7), [2, 4], name="pairs"))
    out = run_c(capi_test, tmp_path, g, np.arange(8, dtype=np.uint8).reshape(2, 4))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "output 0 pairs uint8 [unknown] scale 0.25 zero_point 7" in out.stdout.splitlines()


@pytest.mark.parametrize("isa", ISAS)
def test_each_kernel_path(capi_test, tmp_path, isa):
    out = run_c(capi_test, tmp_path, every_op_model(), sample_input(batch=3), env={**os.environ, "INTINFER_ISA": isa})
    assert out.returncode == 0, out.stdout + out.stderr


def test_wrong_expected_outputs_fail(capi_test, tmp_path):
    x = sample_input(batch=2)
    right = intinfer.load(every_op_model().to_bytes()).run(x).tobytes()
    wrong = bytearray(right)
    wrong[7] ^= 1
    out = run_c(capi_test, tmp_path, every_op_model(), x, expected=bytes(wrong))
    assert out.returncode == 1
    assert "FAILED: path model: output 0 differs from EXPECTED.raw at byte 7" in out.stdout
    out = run_c(capi_test, tmp_path, every_op_model(), x, expected=right + b"\0")
    assert out.returncode == 1 and f"the outputs take {len(right)} bytes, EXPECTED.raw has {len(right) + 1}" in out.stdout
    out = subprocess.run([str(capi_test), str(tmp_path / "m.iif")], capture_output=True, text=True)
    assert out.returncode == 2 and "usage: intinfer-capi-test" in out.stderr
