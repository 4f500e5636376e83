"""The reader refuses every malformed file with a ModelError that says what is wrong."""

import struct

import numpy as np
import pytest

import intinfer
from intinfer import builder as iif
from intinfer.builder import GraphBuilder
from sample_models import every_op_model, sample_input


@pytest.fixture(scope="module")
def valid() -> bytes:
    return every_op_model().to_bytes()


def refused(data: bytes, match: str):
    with pytest.raises(intinfer.ModelError, match=match):
        intinfer.load(data, num_threads=1)


def test_valid_file_round_trips_through_disk(tmp_path, valid):
    path = tmp_path / "m.iif"
    path.write_bytes(valid)
    x = sample_input()
    np.testing.assert_array_equal(intinfer.load(path).run(x), intinfer.load(valid).run(x))
    assert intinfer.load(path).metadata == {"producer": "tests/sample_models.py"}


def test_every_truncation_is_refused(valid):
    for n in range(len(valid)):
        with pytest.raises(intinfer.ModelError):
            intinfer.load(valid[:n], num_threads=1)


def test_trailing_bytes_are_refused(valid):
    refused(valid + b"\0", "does not end at the end of the file")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(intinfer.ModelError, match="cannot open model file"):
        intinfer.load(tmp_path / "nope.iif")
    with pytest.raises(intinfer.ModelError, match="not a regular file"):
        intinfer.load(tmp_path)


def test_bad_magic(valid):
    refused(b"ONNX" + valid[4:], "bad magic")


@pytest.mark.parametrize("major,minor", [(2, 0), (1, 1)])
def test_newer_version_is_refused(valid, major, minor):
    refused(valid[:4] + struct.pack("<HH", major, minor) + valid[8:], f"version {major}.{minor} .*newer")


@pytest.mark.parametrize("offset,change,match", [
    (8, lambda v: 40, "header size"),
    (12, lambda v: 1, "unknown flags"),
    (16, lambda v: 56, "descriptor offset"),
    (24, lambda v: 1 << 40, "descriptor"),
    (32, lambda v: v + 1, "aligned"),
    (40, lambda v: v - 1, "truncated or padded"),
])
def test_corrupt_header_fields(valid, offset, change, match):
    size = 4 if offset < 16 else 8
    value = change(int.from_bytes(valid[offset:offset + size], "little"))
    patched = valid[:offset] + value.to_bytes(size, "little") + valid[offset + size:]
    refused(patched, match)


def serialize_with(monkeypatch, g: GraphBuilder, table: str, key: str, code: int) -> bytes:
    monkeypatch.setitem(getattr(iif, table), key, code)
    return g.to_bytes()


def test_unknown_dtype_code(monkeypatch):
    refused(serialize_with(monkeypatch, every_op_model(), "DTYPES", "float32", 9), "unknown dtype code 9")


def test_unknown_op_type(monkeypatch):
    refused(serialize_with(monkeypatch, every_op_model(), "OP_TYPES", "CLAMP", 99), "unknown type 99")


def test_op_reading_a_tensor_before_it_is_written():
    g = every_op_model()
    g.ops[1], g.ops[2] = g.ops[2], g.ops[1]
    refused(g.to_bytes(), "reads tensor .* before any op writes it")


def test_tensor_written_twice():
    g = every_op_model()
    g.ops[2].outputs = list(g.ops[1].outputs)
    refused(g.to_bytes(), "which another op already wrote")


def one_conv(w: np.ndarray, bias: np.ndarray, w_scale=0.01, w_zero_point=0, in_zero_point=128, out_scale=0.05,
             **attrs) -> GraphBuilder:
    g = GraphBuilder()
    x = g.input("x", (1, 4, 4, w.shape[-1]), "uint8", 0.02, in_zero_point)
    wt = g.constant("w", w.astype(np.int8), scale=[w_scale] * w.shape[0], zero_point=w_zero_point)
    y = g.conv2d(x, wt, g.constant("b", bias.astype(np.int32)), out_scale, 0, **attrs)
    g.output(y)
    return g


W = np.ones((2, 3, 3, 3), np.int8)
B = np.zeros(2, np.int32)


def test_conv_happy_path_loads():
    intinfer.load(one_conv(W, B).to_bytes())


@pytest.mark.parametrize("kwargs,match", [
    (dict(w=np.full((2, 3, 3, 3), -128)), "hold -128"),
    (dict(bias=np.array([2**31 - 100, 0])), "could overflow the int32 accumulator"),
    (dict(w_zero_point=3), "must be symmetric"),
    (dict(w_scale=float("nan")), "has scale nan"),
    (dict(w_scale=-1.0), "has scale -1"),
    (dict(in_zero_point=300), "zero point 300 outside"),
    (dict(out_scale=1e-30), "multiplier .* out of range"),
    (dict(groups=4), "does not divide"),
    (dict(stride=0), "'strides' has value 0"),
    (dict(act_min=200, act_max=100), "activation range"),
    (dict(bias=np.zeros(3)), r"bias 'b' has shape \[3\], expected \[2\]"),
])
def test_conv_validation(kwargs, match):
    w = kwargs.pop("w", W)
    bias = kwargs.pop("bias", B)
    refused(one_conv(w, bias, **kwargs).to_bytes(), match)


def test_wrong_attribute_type():
    g = one_conv(W, B)
    g.ops[0].attrs["groups"] = [1]
    refused(g.to_bytes(), "'groups' must be an int")


def test_weights_fed_as_activation_are_refused():
    g = GraphBuilder()
    x = g.input("x", (1, 4), "uint8", 0.1, 0)
    w = g.input("w", (2, 4), "int8")
    g.output(g.fully_connected(x, w, g.constant("b", np.zeros(2, np.int32)), 0.1, 0))
    refused(g.to_bytes(), "weights 'w' must be a constant")


def test_no_outputs():
    g = GraphBuilder()
    g.input("x", (1, 4), "uint8", 0.1, 0)
    refused(g.to_bytes(), "no outputs")


# -- inputs at run time ----------------------------------------------------------------


@pytest.fixture(scope="module")
def model(valid):
    return intinfer.load(valid, num_threads=1)


@pytest.mark.parametrize("bad", [
    np.zeros((2, 6, 6), np.float32),
    np.zeros((2, 6, 7, 3), np.float32),
    np.zeros((0, 6, 6, 3), np.float32),
])
def test_wrong_shape_names_input_and_expected_shape(model, bad):
    with pytest.raises(ValueError, match=r"input 'image': expected shape \[\?, 6, 6, 3\]"):
        model.run(bad)


def test_wrong_dtype_names_input(model):
    with pytest.raises(ValueError, match="input 'image': expected dtype float32, got int32"):
        model.run(np.zeros((1, 6, 6, 3), np.int32))


def test_missing_and_unknown_inputs(model):
    with pytest.raises(ValueError, match=r"missing input 'image' \(expected shape \[\?, 6, 6, 3\]"):
        model.run({})
    with pytest.raises(ValueError, match=r"unknown input\(s\) \['img'\]"):
        model.run({"img": sample_input()})
    with pytest.raises(ValueError, match="takes 1 input"):
        model.run([sample_input(), sample_input()])


def test_inputs_may_be_non_contiguous_or_float64(model):
    x = sample_input(batch=2)
    expected = model.run(x)
    np.testing.assert_array_equal(model.run(np.asfortranarray(x)), expected)
    np.testing.assert_array_equal(model.run(x.astype(np.float64)), expected)


def test_shape_error_inside_the_graph_names_the_op():
    g = GraphBuilder()
    x = g.input("x", (1, None, None, 3), "uint8", 0.1, 0)
    wq = np.ones((2, 3, 3, 3), np.int8)
    g.output(g.conv2d(x, g.constant("w", wq, scale=[0.1, 0.1]), g.constant("b", np.zeros(2, np.int32)), 0.1, 0,
                      name="stem"))
    m = intinfer.load(g.to_bytes())
    with pytest.raises(ValueError, match="op 'stem': input size 2 .* smaller than the kernel"):
        m.run(np.zeros((1, 2, 8, 3), np.uint8))


def test_num_threads_must_be_positive(valid):
    with pytest.raises(ValueError, match="num_threads"):
        intinfer.load(valid, num_threads=-1)


def test_unknown_isa_is_refused(monkeypatch, valid):
    monkeypatch.setenv("INTINFER_ISA", "sse9")
    refused(valid, "INTINFER_ISA='sse9'")


def test_reshape_to_a_huge_target_is_refused_without_overflow():
    # Found by libFuzzer (UBSan: signed overflow multiplying the target's dimensions).
    g = GraphBuilder()
    x = g.input("x", (2, 3), "uint8", 0.1, 0)
    g.output(g.reshape(x, [2**62, 2**61 + 1]))
    with pytest.raises(ValueError, match=r"cannot reshape \[2, 3\]"):
        intinfer.load(g.to_bytes()).run(np.zeros((2, 3), np.uint8))


def test_inspect_and_bench_cli_print_their_report_or_the_error(tmp_path, valid):
    import subprocess
    import sys

    path = tmp_path / "m.iif"
    path.write_bytes(valid)
    # Run from tmp_path so that the installed package is imported, not the source folder.
    out = subprocess.run([sys.executable, "-m", "intinfer.cli", "inspect", str(path)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "producer: tests/sample_models.py" in out.stdout
    assert "CONV2D" in out.stdout and "activation arena" in out.stdout and "image [?, 6, 6, 3]" in out.stdout
    out = subprocess.run([sys.executable, "-m", "intinfer.cli", "bench", str(path), "--runs", "3", "--batch", "2",
                          "--profile"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "batch: 2" in out.stdout and "latency ms: min" in out.stdout and "by op type" in out.stdout
    path.write_bytes(valid[:100])
    for command in ("inspect", "bench"):
        out = subprocess.run([sys.executable, "-m", "intinfer.cli", command, str(path)], capture_output=True,
                             text=True, cwd=tmp_path, timeout=120)
        assert out.returncode == 1 and "invalid model file" in out.stderr
