"""bench/compare_arm.py's pieces, not its full run (about 10 minutes of qemu): parsing the arm-peers
tools' output, the tables, the docs section it replaces, MiniLM's inputs; and one intinfer count
and one ONNX Runtime count under qemu of small models, which skip where qemu-user, the tools or
their ROOT (`bash ../shared/tools/arm-peers/setup.sh build/arm-peers`) are not there."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import compare_arm  # noqa: E402

STATIC = """cpu=cortex-a76 total(N=1)=212963845 total(N=3)=420554952 per_inference=103795553
"""

MARKS = """MARK 0 1500000000
MARK 1 1737000000
EXIT 1800000000
"""

OP_MARKS = """MARK 0 1000
MARK 1 1600
MARK 2 1700
MARK 3 2000
EXIT 2500
"""

OPS = """model: m.iif
kernels: neondot, threads: 1, inputs: [1, 3, 224, 224]
runs: 1 (after 0 warm-up)
op 0 CONV2D stem
op 1 ADD add
op 2 CONV2D head
"""


def test_the_static_count_is_the_difference_of_the_runs_halved():
    assert compare_arm.parse_static_count(STATIC) == (420554952 - 212963845) / 2
    with pytest.raises(ValueError, match="no count"):
        compare_arm.parse_static_count("run failed: ./intinfer-bench")


def test_the_marker_count_is_per_run():
    assert compare_arm.parse_marks(MARKS, 3) == 79e6
    with pytest.raises(ValueError, match="markers"):
        compare_arm.parse_marks("MARK 0 5\nEXIT 9\n", 3)


def test_the_op_markers_give_the_kernel_path_and_the_count_per_op_type():
    isa, counts = compare_arm.parse_op_marks(OP_MARKS, OPS)
    assert isa == "neondot"
    assert counts == {"CONV2D": 600 + 300, "ADD": 100}
    with pytest.raises(ValueError, match="3 markers for 3 ops"):  # a marker short: not one whole run
        compare_arm.parse_op_marks("MARK 0 1\nMARK 1 2\nMARK 2 3\n", OPS)
    with pytest.raises(ValueError, match="not one run"):
        compare_arm.parse_op_marks(OP_MARKS, "model: m.iif\n")


def test_the_count_table_gives_millions_and_intinfers_ratio():
    counts = {(compare_arm.INTINFER, "a76"): 104e6, (compare_arm.INTINFER, "a53"): 167e6, ("ort", "a76"): 80e6}
    lines = compare_arm.count_table(counts, [compare_arm.INTINFER, "ort"], ["a76", "a53"]).splitlines()
    assert lines[0] == "| engine | a76 (M) | a53 (M) | intinfer / engine, a76 | intinfer / engine, a53 |"
    assert lines[2] == f"| {compare_arm.INTINFER} | 104.00 | 167.00 | 1.00 | 1.00 |"
    assert lines[3] == "| ort | 80.00 | - | 1.30 | - |"  # a failed count stays a dash


def test_the_split_table_gives_each_op_types_count_and_share():
    splits = {"a76": ("neondot", {"CONV2D": 75e6, "ADD": 25e6}), "a53": ("neon", {"CONV2D": 1e6, "ADD": 1e6})}
    lines = compare_arm.split_table(splits, ["a76", "a53", "max"]).splitlines()
    assert lines[0] == "| op type | a76 (neondot): M | a76: share | a53 (neon): M | a53: share |"
    assert lines[2:] == ["| CONV2D | 75.00 | 75.0% | 1.00 | 50.0% |", "| ADD | 25.00 | 25.0% | 1.00 | 50.0% |"]


def test_the_docs_section_is_replaced_and_the_rest_kept(tmp_path):
    doc = tmp_path / "arm-performance.md"
    doc.write_text("# ARM\n\nText before.\n")
    compare_arm.write_docs("## Run 1\n\n| a |", doc)
    compare_arm.write_docs("## Run 2\n\n| b |", doc)
    text = doc.read_text()
    assert text.startswith("# ARM\n\nText before.\n")
    assert "Run 1" not in text and text.count("## Run 2") == 1
    assert text.count(f"<!-- {compare_arm.SECTION}:begin -->") == 1
    doc.write_text(text + "\nText after.\n")
    compare_arm.write_docs("## Run 3", doc)
    assert doc.read_text().endswith("<!-- arm-compare:end -->\n\nText after.\n") and "Run 2" not in doc.read_text()


def test_minilm_inputs_are_the_documented_ones():
    ids, mask, types = compare_arm.minilm_inputs(16)
    assert ids.shape == mask.shape == types.shape == (1, 16) and ids.dtype == np.int32
    assert (ids >= 1000).all() and (ids < 30000).all() and (mask == 1).all() and (types == 0).all()
    np.testing.assert_array_equal(ids, np.random.default_rng(0).integers(1000, 30000, (1, 16)))


def _tools_or_skip():
    root, tools = ROOT / "build" / "arm-peers", ROOT.parent / "shared" / "tools" / "arm-peers"
    missing = compare_arm.missing_setup(root, tools, ["cortex-a76"])
    if missing:
        pytest.skip(f"not set up for qemu counts: {', '.join(missing)}")
    return root, tools


def test_intinfer_is_counted_and_split_under_qemu(tmp_path):
    import arm_insn_count

    root, tools = _tools_or_skip()
    bench = compare_arm.build_bench()
    model, x = tmp_path / "fc.iif", tmp_path / "x.npy"
    arm_insn_count.fc_model(model, 4, 256, 32)
    np.save(x, np.random.default_rng(0).integers(0, 256, (4, 256), dtype=np.uint8))
    count = compare_arm.count_intinfer(tools, root, bench, "cortex-a76", model, [x])
    assert 4 * 256 * 32 / 16 < count < 1e6  # at most 16 MACs per instruction (SDOT), and not the whole process
    isa, split = compare_arm.split_intinfer(root, bench, "cortex-a76", model, [x], tmp_path)
    assert isa == "neondot" and list(split) == ["FULLY_CONNECTED"]
    assert count / 2 < split["FULLY_CONNECTED"] < count  # the inference less the run's plan lookup and copies


def test_onnx_runtime_is_counted_between_its_markers(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    root, tools = _tools_or_skip()
    w = helper.make_tensor("w", TensorProto.FLOAT, (64, 64), np.ones(64 * 64, np.float32))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, (8, 64))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (8, 64))], [w])
    model, x = tmp_path / "mm.onnx", tmp_path / "x.npy"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), model)
    np.save(x, np.ones((8, 64), np.float32))
    count = compare_arm.count_ort(tools, root, "cortex-a76", model, x, tmp_path / "ort.cnt")
    assert 8 * 64 * 64 / 4 < count < 5e6  # at least a 4-lane FMA per 4 MACs, and far below the import


@pytest.mark.parametrize("subset, why", [(["--models", "minilm"], "replaces the whole section"),
                                         (["--cpus", "cortex-a76"], "replaces the whole section"),
                                         (["--seq", "16"], "replaces the whole section"),
                                         (["--quick"], "smoke run")])
def test_write_docs_refuses_a_partial_run(subset, why, monkeypatch, capsys):
    """A subset would replace the docs' whole section with its own tables (dropping the other
    models'), and --quick is a smoke run: both are refused before anything runs."""
    monkeypatch.setattr(sys, "argv", ["compare_arm.py", *subset, "--write-docs"])
    with pytest.raises(SystemExit) as e:
        compare_arm.main()
    assert e.value.code == 2
    assert why in capsys.readouterr().err
