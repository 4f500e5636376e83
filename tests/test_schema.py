"""One schema (intinfer/schema.json) for the vocabularies of the format: every generated copy is
current, and the reader applies the schema's attribute table to every op."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import intinfer
import oracle
from intinfer import builder as iif
from intinfer.builder import GraphBuilder
from sample_models import every_op_model

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "intinfer" / "schema.json").read_text())


def test_generated_files_are_current():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_schema.py"), "--check"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_check_mode_reports_a_stale_file(tmp_path):
    # The generator run on a copy of the tree whose docs lost a generated row must name that file.
    for rel in ("scripts/gen_schema.py", "intinfer/schema.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((ROOT / rel).read_text())
    generated = ["csrc/include/intinfer/dtype.gen.h", "csrc/core/schema.gen.h", "csrc/core/schema.gen.cc",
                 "intinfer/_schema.py", "csrc/ops/ops.h", "csrc/ops/registry.cc", "tests/oracle.py", "docs/format.md"]
    for rel in generated:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((ROOT / rel).read_text())
    doc = tmp_path / "docs/format.md"
    doc.write_text(doc.read_text().replace("| 12 | CLAMP |", "| 12 | CLAMPS |"))
    out = subprocess.run([sys.executable, str(tmp_path / "scripts" / "gen_schema.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "docs/format.md" in out.stdout and "oracle.py" not in out.stdout


def test_python_tables_follow_the_schema():
    assert iif.OP_TYPES == {op["name"]: op["code"] for op in SCHEMA["ops"]}
    assert iif.DTYPES == {d["name"]: d["code"] for d in SCHEMA["dtypes"]}
    assert set(oracle._OP_FUNCTIONS) == set(iif.OP_TYPES)


def test_the_exporter_uses_the_schema_op_names():
    from intinfer.export import torch_ao

    assert torch_ao.ACT_OPS <= set(iif.OP_TYPES)
    assert {"CONV2D", "FULLY_CONNECTED", "ADD", "MUL", "AVG_POOL", "MAX_POOL", "GLOBAL_AVG_POOL", "CLAMP"} <= \
        torch_ao.ACT_OPS


def test_unknown_attribute_is_refused_naming_op_and_attribute():
    g = every_op_model()
    conv = next(op for op in g.ops if op.type == "CONV2D")
    conv.attrs["stride"] = [1, 1]
    with pytest.raises(intinfer.ModelError, match=r"CONV2D\) has attribute 'stride', which CONV2D does not take"):
        intinfer.load(g.to_bytes())


def test_attribute_of_an_op_without_attributes_is_refused():
    g = every_op_model()
    q = next(op for op in g.ops if op.type == "QUANTIZE")
    q.attrs["axis"] = 0
    with pytest.raises(intinfer.ModelError, match=r"'axis', which QUANTIZE does not take \(it takes none\)"):
        intinfer.load(g.to_bytes())


def matmul_model() -> GraphBuilder:
    g = GraphBuilder()
    a = g.input("a", (1, 2, 3), "uint8", 0.1, 0)
    b = g.input("b", (1, 3, 2), "uint8", 0.1, 0)
    g.output(g.matmul(a, b, 0.5, 0))
    return g


@pytest.mark.parametrize("make,op_type,key,value,phrase", [
    (matmul_model, "MATMUL", "alpha", 1, "'alpha' must be a float, not an int"),
    (every_op_model, "AVG_POOL", "kernel", 2.0, "'kernel' must be a list of ints, not a float"),
    (every_op_model, "CONCAT", "axis", [0], "'axis' must be an int, not a list of ints"),
    (every_op_model, "CLAMP", "act_max", [1.5], "'act_max' must be an int, not a list of floats"),
])
def test_attribute_of_the_wrong_type_is_refused(make, op_type, key, value, phrase):
    g = make()
    next(op for op in g.ops if op.type == op_type).attrs[key] = value
    with pytest.raises(intinfer.ModelError, match=rf"{op_type}\) attribute {phrase}"):
        intinfer.load(g.to_bytes())
