"""The native intinfer-bench tool: built with CMake (no Python inside), its outputs written as
.npy must equal the Python API's bit for bit, and its errors must be clear."""

import re
import subprocess

import numpy as np
import pytest

import intinfer
from conftest import ISAS, build_native_tool
from sample_models import every_op_model, ids_and_mask_model, sample_input


@pytest.fixture(scope="module")
def bench_tool():
    return build_native_tool("intinfer-bench")


def run(tool, *args, check=True):
    out = subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.mark.parametrize("isa", ISAS)
def test_outputs_match_python_bit_for_bit(bench_tool, tmp_path, isa):
    model = tmp_path / "m.iif"
    every_op_model().save(model)
    x = sample_input(batch=3)
    np.save(tmp_path / "x.npy", x)
    out = run(bench_tool, model, "--input", tmp_path / "x.npy", "--output-dir", tmp_path, "--runs", 3, "--isa", isa,
              "--threads", 2, "--profile")
    assert f"kernels: {isa}" in out.stdout
    assert re.search(r"latency ms: min [\d.]+ +median [\d.]+ +mean [\d.]+ +p90 [\d.]+", out.stdout)
    assert "CONV2D" in out.stdout and "GOPS" in out.stdout and "peak memory" in out.stdout
    got = np.load(tmp_path / "logits.npy")
    want = intinfer.load(model).run(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_output_dir_is_made_when_missing(bench_tool, tmp_path):
    model = tmp_path / "m.iif"
    every_op_model().save(model)
    out = run(bench_tool, model, "--output-dir", tmp_path / "out" / "sub", "--runs", 1)
    assert np.load(tmp_path / "out" / "sub" / "logits.npy").shape[0] == 1
    (tmp_path / "file").write_bytes(b"")
    out = run(bench_tool, model, "--output-dir", tmp_path / "file" / "sub", "--runs", 1, check=False)
    assert out.returncode == 1 and "file/sub" in out.stderr and "runs:" not in out.stdout


def test_random_inputs_with_a_batch_size(bench_tool, tmp_path):
    model = tmp_path / "m.iif"
    every_op_model().save(model)
    out = run(bench_tool, model, "--batch", 4, "--runs", 2)
    assert "inputs: [4, 6, 6, 3]" in out.stdout


def test_random_ids_stay_below_their_tables_rows(bench_tool, tmp_path):
    model = tmp_path / "m.iif"
    ids_and_mask_model().save(model)
    out = run(bench_tool, model, "--batch", 64, "--runs", 2)
    assert "inputs: [64, 8] [64, 8]" in out.stdout


def test_errors_are_clear(bench_tool, tmp_path):
    bad = tmp_path / "bad.iif"
    bad.write_bytes(b"IINF" + bytes(60))
    out = run(bench_tool, bad, check=False)
    assert out.returncode == 1 and "version 0.0 is not supported" in out.stderr
    out = run(bench_tool, bad, "--runs", "many", check=False)
    assert out.returncode == 2 and "bad value for --runs" in out.stderr
    model = tmp_path / "m.iif"
    every_op_model().save(model)
    np.save(tmp_path / "x.npy", np.zeros((1, 6, 6), np.float32))
    out = run(bench_tool, model, "--input", tmp_path / "x.npy", check=False)
    assert out.returncode == 1 and "input 'image': expected shape [?, 6, 6, 3]" in out.stderr


def test_op_markers_list_the_ops_in_model_order(bench_tool, tmp_path):
    """--mark-ops (markers for qemu's instruction counter, bench/compare_arm.py) lists every op as
    `op INDEX TYPE NAME`, in the order the summary gives them."""
    model = tmp_path / "m.iif"
    every_op_model().save(model)
    out = run(bench_tool, model, "--runs", 2, "--warmup", 0, "--mark-ops")
    listed = re.findall(r"^op (\d+) (\S+) (\S+)$", out.stdout, re.M)
    summary = re.findall(r"^\s*(\d+)\s+([A-Z_0-9]+)\s+(\S+)", intinfer.load(model).summary(), re.M)
    assert listed == summary and len(listed) > 5
