"""The reader refuses every malformed file with a ModelError that says what is wrong."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import intinfer
from intinfer import builder as iif
from intinfer.builder import GraphBuilder
import oracle
from conftest import assert_same
from sample_models import every_op_model, ids_and_mask_model, sample_input


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


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os
    import subprocess
    import sys

    fifo = tmp_path / "m.iif"
    os.mkfifo(fifo)
    # In a child with a timeout: opening a FIFO for reading waits for a writer, which never comes.
    code = ("import intinfer, sys\n"
            "try:\n    intinfer.load(sys.argv[1])\n"
            "except intinfer.ModelError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"model file '{fifo}' is not a regular file" in out.stdout


def test_a_path_with_a_nul_byte_is_refused(tmp_path, valid):
    (tmp_path / "m.iif").write_bytes(valid)  # the file named by the part before the NUL
    with pytest.raises(ValueError, match="NUL byte"):
        intinfer.load(str(tmp_path / "m.iif") + "\0.bak")


def test_bad_magic(valid):
    refused(b"ONNX" + valid[4:], "bad magic")


@pytest.mark.parametrize("major,minor", [(2, 0), (3, 1)])
def test_newer_version_is_refused(valid, major, minor):
    refused(valid[:4] + struct.pack("<HH", major, minor) + valid[8:], f"version {major}.{minor} .*newer")


def test_newer_minor_version_is_read(valid):
    # A minor version adds only what a reader may skip; what it must understand is a feature bit.
    x = sample_input()
    newer = valid[:4] + struct.pack("<HH", 1, 9) + valid[8:]
    np.testing.assert_array_equal(intinfer.load(newer).run(x), intinfer.load(valid).run(x))


@pytest.mark.parametrize("offset,change,match", [
    (8, lambda v: 40, "header size"),
    (12, lambda v: 1 << 5, "needs feature bit 5, which this reader .* does not know"),
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


def test_omitted_attributes_take_the_schemas_defaults(rng):
    """The engine reads an omitted attribute as intinfer/schema.json's default (the one place
    defaults are written): a conv and a max pool without attributes equal the same ops with
    every default written out (the pool's strides default to its kernel)."""
    schema = json.loads((Path(intinfer.__file__).parent / "schema.json").read_text())
    defaults = {op["name"]: {a["name"]: a["default"] for a in op["attrs"] if "default" in a} for op in schema["ops"]}
    x = rng.integers(0, 256, (1, 4, 4, 3), dtype=np.uint8)
    outs = []
    for explicit in (False, True):
        g = one_conv(W, B)
        g.ops[0].attrs.clear()
        y = g.ops[0].outputs[0]
        pool = {"kernel": [2, 2], **(dict(defaults["MAX_POOL"], strides=[2, 2]) if explicit else {})}
        if explicit:
            g.ops[0].attrs.update(defaults["CONV2D"])
        p = g.activation("pool", "uint8", y.scales, y.zero_points)
        g.op("MAX_POOL", [y], [p], **pool)
        g.outputs = [p]
        outs.append(intinfer.load(g.to_bytes()).run(x, raw=True))
    assert outs[0].shape == (1, 1, 1, 2)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_a_required_attribute_is_refused_by_name():
    g = GraphBuilder()
    x = g.input("x", (1, 4, 4, 2), "uint8", 0.1, 0)
    y = g.activation("y", "uint8", 0.1, 0)
    g.op("MAX_POOL", [x], [y])
    g.output(y)
    refused(g.to_bytes(), "needs attribute 'kernel'")


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


def test_strings_and_nested_lists_are_refused_with_what_run_takes(model):
    x = sample_input(batch=2)
    for bad, what in ((x.tolist(), "a list of list"), ("image.png", "a str"), (b"\0" * 8, "a bytes"),
                      ([x.tolist()], "a list of list"), ((0.5, 1.0), "a tuple of float")):
        with pytest.raises(TypeError, match=f"run\\(\\) takes .* got {what}"):
            model.run(bad)
    # Arrays, array-likes in a list, and lists as a dict's values stay accepted.
    expected = model.run(x)
    np.testing.assert_array_equal(model.run([x]), expected)
    np.testing.assert_array_equal(model.run({"image": x.tolist()}), expected)


def test_nan_inputs_quantize_to_the_zero_point_as_documented(model):
    # docs/runtime.md: NaN is not refused; QUANTIZE maps it to the zero point (real 0.0), both in
    # the graph's QUANTIZE op (a float32 input) and in run()'s float -> uint8 conversion.
    x = sample_input(batch=2)
    nan = np.full_like(x, np.nan)
    np.testing.assert_array_equal(model.run(nan), model.run(np.zeros_like(x)))
    g = GraphBuilder()
    g.output(g.clamp(g.input("q", (2, 3), "uint8", scale=0.1, zero_point=7), 0, 255))
    m = intinfer.load(g.to_bytes(), num_threads=1)
    np.testing.assert_array_equal(m.run(np.array([[np.nan, np.inf, -np.inf], [0, 1e30, np.nan]], np.float32),
                                        raw=True), [[7, 255, 0], [7, 255, 7]])


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


def test_inputs_read_as_ids_give_their_tables_rows(tmp_path, capsys):
    m = intinfer.load(ids_and_mask_model().to_bytes(), num_threads=1)
    # The fewest rows among the GATHERs that read the ids, through a RESHAPE too; a GATHER of
    # positions reads only the mask's shape.
    assert [i.id_rows for i in m.inputs] == [10, None]
    assert intinfer.load(every_op_model().to_bytes(), num_threads=1).inputs[0].id_rows is None
    # So `intinfer bench` makes up ids the model accepts.
    from intinfer import cli

    path = tmp_path / "m.iif"
    ids_and_mask_model().save(path)
    assert cli.main(["bench", str(path), "--batch", "64", "--runs", "2"]) == 0
    assert "latency ms" in capsys.readouterr().out


# -- tensor encodings and required features (docs/format.md) -------------------------------
#
# Expected bytes and sizes are written out from the spec here, not computed by the builder.

W4 = np.array([[1, -1, 7, -7, 0], [2, 3, -2, -3, 4], [0, 0, 0, 0, -1]])
# Rows of ceil(5 / 2) = 3 bytes, low nibble first, the last nibble of each row zero.
W4_BYTES = bytes([0xF1, 0x97, 0x00, 0x32, 0xDE, 0x04, 0x00, 0x00, 0x0F])
W2 = np.array([[1, -1, 0, 1, -1], [0, 0, 1, 1, 1]])
# Rows of ceil(5 / 4) = 2 bytes, two bits per element from the low bits up.
W2_BYTES = bytes([0b01_00_11_01, 0b00_00_00_11, 0b01_01_00_00, 0b00_00_00_01])
WS = np.array([[0, 0, 0, 0, 1, -2, 3, -4], [5, 0, 0, 0, 0, 0, 0, 0]])
# Blocks of 4 along the last axis: row 0 keeps block column 1, row 1 block column 0.
WS_BYTES = struct.pack("<2I3I2I", 4, 2, 0, 1, 2, 1, 0) + bytes([1, 0xFE, 3, 0xFC, 5, 0, 0, 0])
# The same blocks with a bitmap: row 0 keeps block 1 (bit 1), row 1 block 0 (bit 0).
WB_BYTES = struct.pack("<2I", 4, 2) + bytes([0b10, 0b01]) + bytes([1, 0xFE, 3, 0xFC, 5, 0, 0, 0])
ENCODED = {"int4": (W4, W4_BYTES, 1), "int2": (W2, W2_BYTES, 1), "sparse": (WS, WS_BYTES, 2),
           "bitmap": (WS, WB_BYTES, 4)}
SPARSE_INDEX = {"sparse": "columns", "bitmap": "bitmap"}


def encoded_fc(kind: str) -> GraphBuilder:
    """One FULLY_CONNECTED whose weights (the first constant) are packed or block-sparse (either
    index)."""
    w, _, _ = ENCODED[kind]
    g = GraphBuilder()
    x = g.input("x", (1, w.shape[1]), "uint8", 0.1, 0)
    scales = [0.01] * w.shape[0]
    wt = (g.constant("w", w, "int8", scale=scales, block_sparse=4, sparse_index=SPARSE_INDEX[kind])
          if kind in SPARSE_INDEX else g.constant("w", w, kind, scale=scales))
    g.output(g.fully_connected(x, wt, g.constant("b", np.zeros(w.shape[0], np.int32)), 0.1, 0))
    return g


def header_u64(data: bytes, offset: int) -> int:
    return struct.unpack_from("<Q", data, offset)[0]


def record_of(data: bytes, name: bytes) -> int:
    """Descriptor offset of the tensor record named `name` (its u32 length comes first)."""
    pos = data.index(struct.pack("<I", len(name)) + name, 48)
    return pos + 4 + len(name)


def patched(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def data_size_field(data: bytes, name: bytes, rank: int, qcount: int) -> int:
    # dtype, kind, rank, encoding, dims, qcount, axis, scales, zero points, data offset.
    return record_of(data, name) + 4 + 4 * rank + 4 + 4 + 8 * qcount + 8


@pytest.mark.parametrize("kind", list(ENCODED))
def test_encoded_constant_has_the_specified_bytes_and_is_read_by_its_op(kind):
    """FULLY_CONNECTED reads packed and block-sparse weights (tests/test_packed_weights.py,
    tests/test_sparse_weights.py)."""
    _, expected, feature_bits = ENCODED[kind]
    data = encoded_fc(kind).to_bytes()
    assert struct.unpack_from("<H", data, 6)[0] == 1  # version 1.1
    assert struct.unpack_from("<I", data, 12)[0] == feature_bits
    start = header_u64(data, 32)
    assert data[start:start + len(expected)] == expected
    size_at = data_size_field(data, b"w", 2, ENCODED[kind][0].shape[0])
    assert header_u64(data, size_at) == len(expected)
    x = np.arange(ENCODED[kind][0].shape[1], dtype=np.uint8)[None] * 40
    assert_same(intinfer.load(data).run(x, raw=True), oracle.run_graph(encoded_fc(kind), x))


@pytest.mark.parametrize("index,encoding", [("columns", "block_sparse"), ("bitmap", "block_bitmap")])
def test_a_block_sparse_constant_an_op_does_not_read_is_refused(index, encoding):
    """GATHER reads dense and packed tables, not block-sparse ones: refused naming the op."""
    g = GraphBuilder()
    ids = g.input("ids", (None,), "int32")
    table = g.constant("table", np.eye(4, 8, dtype=np.int8), scale=[0.1] * 4, block_sparse=4, sparse_index=index)
    g.output(g.gather(table, ids, 0.02, 128))
    refused(g.to_bytes(), rf"op 'gather_0' \(GATHER\): input 0 'table' is int8 in the {encoding} encoding, which "
                          r"this op does not read")


def test_sparse_size_follows_the_block_count():
    w = np.zeros((3, 12), np.int8)
    w[0, 4:8] = 1
    w[2, 0] = w[2, 11] = -1
    g = GraphBuilder()
    t = g.constant("w", w, block_sparse=4, sparse_index="columns")
    x = g.input("x", (1, 12), "uint8", 0.1, 0)
    g.output(g.fully_connected(x, t, g.constant("b", np.zeros(3, np.int32)), 0.1, 0))
    data = g.to_bytes()
    blocks, rows, block = 3, 3, 4
    assert header_u64(data, data_size_field(data, b"w", 2, 0)) == 8 + 4 * (rows + 1) + 4 * blocks + blocks * block


def test_bitmap_size_follows_the_rows_and_the_block_count():
    """A bit a block position, each row in whole bytes: 9 positions take 2 bytes a row."""
    w = np.zeros((3, 36), np.int8)
    w[0, 32:36] = 1
    w[2, 0] = -1
    g = GraphBuilder()
    t = g.constant("w", w, scale=[0.01] * 3, block_sparse=4, sparse_index="bitmap")
    x = g.input("x", (1, 36), "uint8", 0.1, 0)
    g.output(g.fully_connected(x, t, g.constant("b", np.zeros(3, np.int32)), 0.1, 0))
    data = g.to_bytes()
    start = header_u64(data, 32)
    assert data[start + 8:start + 14] == bytes([0, 0b1, 0, 0, 0b1, 0])
    assert header_u64(data, data_size_field(data, b"w", 2, 3)) == 8 + 3 * 2 + 2 * 4
    x = np.arange(36, dtype=np.uint8)[None] * 7
    assert_same(intinfer.load(data).run(x, raw=True), oracle.run_graph(g, x))


@pytest.mark.parametrize("kind", list(ENCODED))
@pytest.mark.parametrize("delta", [-1, 1])
def test_wrong_encoded_size_is_refused_naming_the_tensor(kind, delta):
    data = encoded_fc(kind).to_bytes()
    at = data_size_field(data, b"w", 2, ENCODED[kind][0].shape[0])
    size = len(ENCODED[kind][1])
    refused(patched(data, at, struct.pack("<Q", size + delta)),
            rf"tensor 1 \('w'\) holds {size + delta} bytes, its shape \[.*\] as \w+ in the \w+ encoding needs {size}")


@pytest.mark.parametrize("kind,code,match", [
    ("int4", 0, "int4 constants may not use the dense encoding"),
    ("int4", 2, "int4 constants may not use the block_sparse encoding"),
    ("int2", 2, "int2 constants may not use the block_sparse encoding"),
    ("sparse", 1, "int8 constants may not use the packed encoding"),
    ("int4", 3, "int4 constants may not use the block_bitmap encoding"),
    ("int4", 4, "unknown encoding 4"),
    ("sparse", 3, "uses the block_bitmap encoding, but the header does not declare feature 'block-bitmap'"),
    ("bitmap", 2, "uses the block_sparse encoding, but the header does not declare feature 'block-sparse'"),
    ("sparse", 0xFF, "unknown encoding 255"),
])
def test_mutated_encoding_is_refused(kind, code, match):
    data = encoded_fc(kind).to_bytes()
    refused(patched(data, record_of(data, b"w") + 3, bytes([code])), rf"tensor 1 \('w'\).*{match}")


def test_dense_int8_weights_may_not_claim_packing():
    data = one_conv(W, B).to_bytes()
    refused(patched(data, record_of(data, b"w") + 3, bytes([1])), "int8 constants may not use the packed encoding")


@pytest.mark.parametrize("dtype", [None, 5, 6])
def test_only_constants_are_encoded_or_sub_byte(dtype):
    data = encoded_fc("int4").to_bytes()
    at = record_of(data, b"x")
    data = patched(data, at, bytes([dtype])) if dtype else patched(data, at + 3, bytes([1]))
    refused(data, r"tensor 0 \('x'\) is \w+ in the \w+ encoding: only constants may be packed, sparse or below 8 bits")


@pytest.mark.parametrize("kind,features,match", [
    ("int4", 0, "tensor 1 \\('w'\\) uses the packed encoding, but the header does not declare feature 'packed-subbyte'"),
    ("sparse", 1, "does not declare feature 'block-sparse'"),
    ("bitmap", 2, "does not declare feature 'block-bitmap'"),
    ("int4", 3, "the header declares feature 'block-sparse', which no tensor uses"),
    ("sparse", 6, "the header declares feature 'block-bitmap', which no tensor uses"),
    ("int4", 1 | 1 << 31, "needs feature bit 31, which this reader \\(format 1.1\\) does not know \\(it reads "
                          "packed-subbyte, block-sparse, block-bitmap\\): the file is newer, upgrade intinfer"),
    ("sparse", 1 << 3 | 1 << 9, "needs feature bit 3,"),
])
def test_required_features_must_match_the_file(kind, features, match):
    refused(patched(encoded_fc(kind).to_bytes(), 12, struct.pack("<I", features)), match)


def with_w_bytes(monkeypatch, kind: str, raw: bytes) -> bytes:
    original = iif.tensor_bytes
    monkeypatch.setattr(iif, "tensor_bytes", lambda t: raw if t.name == "w" else original(t))
    return encoded_fc(kind).to_bytes()


@pytest.mark.parametrize("kind,raw,match", [
    ("int4", bytes([0x08]) + W4_BYTES[1:], r"holds -8 at row 0 element 0, outside \[-7, 7\] for int4"),
    ("int4", W4_BYTES[:5] + bytes([0x84]) + W4_BYTES[6:], "non-zero padding bits after row 1"),
    ("int4", W4_BYTES[:2] + bytes([0x10]) + W4_BYTES[3:], "non-zero padding bits after row 0"),
    ("int2", bytes([0b10]) + W2_BYTES[1:], r"holds -2 at row 0 element 0, outside \[-1, 1\] for int2"),
    ("int2", W2_BYTES[:3] + bytes([0b100]), "non-zero padding bits after row 1"),
])
def test_packed_values_are_checked(monkeypatch, kind, raw, match):
    refused(with_w_bytes(monkeypatch, kind, raw), rf"tensor 1 \('w'\) .*{match}")


VALUES = bytes([1, 0xFE, 3, 0xFC, 5, 0, 0, 0])


@pytest.mark.parametrize("raw,match", [
    (WS_BYTES[:-4], "holds 32 bytes, .* needs 36"),                          # truncated blocks
    (struct.pack("<2I3I1I", 4, 2, 0, 1, 2, 1), "holds 24 bytes, .* needs 36"),  # truncated block columns
    (struct.pack("<2I2I", 4, 2, 0, 1), "holds 16 bytes, .* needs 36"),          # truncated row starts
    (b"\x04\0\0\0\x02", "holds 5 bytes, less than the 8-byte block-sparse header"),
    (struct.pack("<2I3I2I", 3, 2, 0, 1, 2, 1, 0) + VALUES[:6], "block size 3, which does not divide its last dimension 8"),
    (struct.pack("<2I3I2I", 0, 2, 0, 1, 2, 1, 0), "block size 0"),
    (struct.pack("<2I3I5I", 4, 5, 0, 1, 2, 1, 0, 0, 0, 0) + bytes(20), "5 blocks, more than its 4 block positions"),
    (struct.pack("<2I3I2I", 4, 2, 1, 1, 2, 1, 0) + VALUES, r"row_start\[0\] = 1, expected 0"),
    (struct.pack("<2I3I2I", 4, 2, 0, 2, 1, 0, 1) + VALUES, r"row_start\[2\] = 1 \(row_start\[1\] = 2"),
    (struct.pack("<2I3I2I", 4, 2, 0, 3, 3, 1, 0) + VALUES, r"row_start\[1\] = 3 \(row_start\[0\] = 0, 2 blocks\)"),
    (struct.pack("<2I3I2I", 4, 2, 0, 1, 1, 1, 0) + VALUES, r"row_start\[2\] = 1, expected its 2 blocks"),
    (struct.pack("<2I3I2I", 4, 2, 0, 1, 2, 2, 0) + VALUES, "block column 2 for block 0 of row 0"),
    (struct.pack("<2I3I2I", 4, 2, 0, 2, 2, 1, 1) + VALUES, "block column 1 for block 1 of row 0"),
    (struct.pack("<2I3I2I", 4, 2, 0, 2, 2, 1, 0) + VALUES, "block column 0 for block 1 of row 0"),
])
def test_sparse_indices_are_checked(monkeypatch, raw, match):
    refused(with_w_bytes(monkeypatch, "sparse", raw), rf"tensor 1 \('w'\) .*{match}")


@pytest.mark.parametrize("raw,match", [
    (WB_BYTES[:-4], "holds 14 bytes, .* needs 18"),                              # truncated blocks
    (WB_BYTES[:9], "holds 9 bytes, .* needs 18"),                                # truncated bitmap
    (b"\x04\0\0\0\x02", "holds 5 bytes, less than the 8-byte block-sparse header"),
    (struct.pack("<2I", 3, 2) + bytes([2, 1]) + VALUES[:6], "block size 3, which does not divide its last dimension 8"),
    (struct.pack("<2I", 4, 5) + bytes([3, 3]) + bytes(20), "5 blocks, more than its 4 block positions"),
    (struct.pack("<2I", 0, 2) + bytes([2, 1]) + VALUES, "block size 0"),
    (struct.pack("<2I", 4, 2) + bytes([3, 1]) + VALUES, "has 3 bitmap bits set, expected its 2 blocks"),
    (struct.pack("<2I", 4, 2) + bytes([0, 1]) + VALUES, "has 1 bitmap bits set, expected its 2 blocks"),
    (struct.pack("<2I", 4, 2) + bytes([0b110, 0]) + VALUES, "has bitmap bit 2 set in row 0, past its 2 blocks"),
    (struct.pack("<2I", 4, 2) + bytes([0b10, 0x80]) + VALUES, "has bitmap bit 7 set in row 1, past its 2 blocks"),
])
def test_bitmap_indices_are_checked(monkeypatch, raw, match):
    refused(with_w_bytes(monkeypatch, "bitmap", raw), rf"tensor 1 \('w'\) .*{match}")


@pytest.mark.parametrize("kind", ["int4", "sparse", "bitmap"])
def test_every_truncation_of_an_encoded_file_is_refused(kind):
    data = encoded_fc(kind).to_bytes()
    for n in range(len(data)):
        with pytest.raises(intinfer.ModelError):
            intinfer.load(data[:n], num_threads=1)


def test_plain_files_stay_version_1_0():
    data = one_conv(W, B).to_bytes()
    assert struct.unpack_from("<HH", data, 4) == (1, 0) and struct.unpack_from("<I", data, 12)[0] == 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(data=np.array([8, 0]), dtype="int4"), r"int4 needs integers in \[-7, 7\]"),
    (dict(data=np.array([0, -2]), dtype="int2"), r"int2 needs integers in \[-1, 1\]"),
    (dict(data=np.array([0.5]), dtype="int4"), "int4 needs integers"),
    (dict(data=np.zeros((2, 4), np.uint8), block_sparse=4), "block_sparse=4 needs a dtype that allows it"),
    (dict(data=np.zeros((2, 6), np.int8), block_sparse=4), "a block size dividing the last dimension"),
    (dict(data=np.zeros((2, 8), np.int8), block_sparse=4, sparse_index="csr"), "sparse_index='csr', expected one of"),
    (dict(data=np.zeros((2, 8), np.int8), sparse_index="bitmap"), "sparse_index='bitmap' without block_sparse"),
    (dict(data=np.zeros(2), dtype="int5"), "unknown dtype 'int5'"),
])
def test_builder_refuses_what_it_cannot_encode(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GraphBuilder().constant("w", **kwargs)
