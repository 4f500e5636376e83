"""Guest instructions per inference under qemu-user, an ARM speed proxy: intinfer's static aarch64
`intinfer-bench` against ONNX Runtime's aarch64 wheel (int8 and fp32) on emulated Cortex-A76 (dot
product) and Cortex-A53 (ARMv8.0), one thread, batch 1, on EfficientNet-Lite0 and all-MiniLM-L6-v2
(real weights; MiniLM at sequence lengths 16 and 128). One command regenerates the whole table:

    bash ../shared/tools/arm-peers/setup.sh build/arm-peers      # once: arm64 sysroot, wheels, qemu plugin
    python3 bench/compare_arm.py [--models effnet minilm] [--cpus cortex-a76 cortex-a53] [--seq 16 128]
                                 [--work-dir build/compare-arm] [--quick] [--write-docs]

intinfer is counted by the arm-peers tools' count_static.sh (a 1-run and a 3-run process, the
difference halved: loading cancels); ONNX Runtime by qpy.sh + run_ort.py under Debian's arm64
Python, between the getppid() markers around 3 runs after a warm-up (README.md of those tools).
The models are made once and kept in --work-dir (delete it to remake them): intinfer's by
examples/efficientnet_lite0.py and examples/minilm.py (--save); the ONNX ones from the same float
models (torch.onnx.export, opset 17), quantized by ONNX Runtime's quantize_static (QDQ, u8
activations, s8 per-channel weights, calibrated on the inputs intinfer calibrates on) and, for
MiniLM, quantize_dynamic. MiniLM's inputs: ids drawn from [1000, 30000) by
np.random.default_rng(0), an all-ones mask, zero token types, the same for every engine.

intinfer's split by op type is counted: `intinfer-bench --mark-ops` calls getppid() before each op
and after the last, the same plugin records the count at each marker, and each op's instructions
(one run) are summed by op type. --write-docs replaces the `arm-compare` section of
docs/arm-performance.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, log, machine_line, md_table, now, update_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ARM_MD = REPO / "docs" / "arm-performance.md"
SECTION = "arm-compare"
BUILD = REPO / "build" / "aarch64"
TOOLCHAIN = REPO / "cmake" / "toolchains" / "aarch64-linux-gnu.cmake"
MODELS = ("effnet", "minilm")
CPUS = ("cortex-a76", "cortex-a53")
SEQS = (16, 128)
ORT_RUNS = 3  # timed runs between run_ort.py's markers
INTINFER = "intinfer int8"
IDS = (1000, 30000)  # MiniLM token ids: [low, high)
NICE = ["nice", "-n", "10"]


@dataclass
class Case:
    """One model at one input: intinfer's file and inputs, and the ONNX files (row label -> path)."""
    title: str
    iif: Path
    inputs: list
    onnx: dict
    onnx_input: Path
    counts: dict = field(default_factory=dict)  # (row label, cpu) -> instructions per inference
    splits: dict = field(default_factory=dict)  # cpu -> (kernel path, {op type: instructions})


# -- parsing the tools' output ---------------------------------------------------------------------

def parse_static_count(text: str) -> float:
    """Instructions per inference from count_static.sh's line `cpu=C total(N=1)=T1 total(N=3)=T3 ...`:
    (T3 - T1) / 2, the load cost cancelled."""
    m = re.search(r"^cpu=\S+ total\(N=1\)=(\d+) total\(N=3\)=(\d+)", text, re.M)
    if not m:
        raise ValueError(f"no count in count_static.sh's output:\n{text}")
    return (int(m.group(2)) - int(m.group(1))) / 2


def parse_marks(text: str, runs: int) -> float:
    """Instructions per inference from the plugin's `MARK k total` lines: the first two markers
    enclose `runs` inferences."""
    marks = {int(k): int(v) for k, v in re.findall(r"^MARK (\d+) (\d+)$", text, re.M)}
    if 0 not in marks or 1 not in marks:
        raise ValueError(f"fewer than two getppid() markers in the plugin's output:\n{text}")
    return (marks[1] - marks[0]) / runs


def parse_op_marks(marks: str, bench_out: str) -> tuple:
    """(kernel path, {op type: instructions}) of one run of `intinfer-bench --mark-ops`: the
    plugin's `MARK k total` lines (one before each op, one after the last) and the bench's
    `kernels:` and `op INDEX TYPE NAME` lines."""
    isa = re.search(r"^kernels: (\S+),", bench_out, re.M)
    types = {int(i): t for i, t in re.findall(r"^op (\d+) (\S+)", bench_out, re.M)}
    marks = {int(k): int(v) for k, v in re.findall(r"^MARK (\d+) (\d+)$", marks, re.M)}
    if not isa or not types or sorted(marks) != list(range(len(types) + 1)):
        raise ValueError(f"{len(marks)} markers for {len(types)} ops: not one run of intinfer-bench --mark-ops")
    by_type: dict = {}
    for i, t in types.items():
        by_type[t] = by_type.get(t, 0) + marks[i + 1] - marks[i]
    return isa.group(1), by_type


# -- tables ------------------------------------------------------------------------------------------

def fmt_m(count: float | None) -> str:
    return "-" if count is None else f"{count / 1e6:.2f}"


def count_table(counts: dict, rows: list, cpus: list) -> str:
    """Millions of instructions per (row, cpu), and intinfer's count over each row's: below 1 means
    intinfer executes fewer instructions."""
    headers = ["engine"] + [f"{c} (M)" for c in cpus] + [f"intinfer / engine, {c}" for c in cpus]
    out = []
    for row in rows:
        ratios = []
        for c in cpus:
            ours, theirs = counts.get((INTINFER, c)), counts.get((row, c))
            ratios.append("-" if ours is None or not theirs else f"{ours / theirs:.2f}")
        out.append([row] + [fmt_m(counts.get((row, c))) for c in cpus] + ratios)
    return md_table(headers, out)


def split_table(splits: dict, cpus: list) -> str:
    """Per op type and cpu: its instructions in millions and its share of all ops'. Op types by
    their largest share first."""
    cpus = [c for c in cpus if c in splits]
    shares = {}
    for c in cpus:
        counts = splits[c][1]
        total = sum(counts.values()) or 1
        shares[c] = {t: v / total for t, v in counts.items()}
    types = sorted({t for c in cpus for t in shares[c]}, key=lambda t: -max(shares[c].get(t, 0) for c in cpus))
    headers = ["op type"]
    for c in cpus:
        headers += [f"{c} ({splits[c][0]}): M", f"{c}: share"]
    rows = []
    for t in types:
        row = [t]
        for c in cpus:
            row += [fmt_m(splits[c][1].get(t, 0)), f"{shares[c].get(t, 0.0):.1%}"]
        rows.append(row)
    return md_table(headers, rows)


def write_docs(body: str, path: Path = ARM_MD) -> None:
    """Replaces this script's section of `path` (appended when missing); the rest stays as it is."""
    update_section(SECTION, body, path)


# -- the arm-peers tools and intinfer-bench ----------------------------------------------------------

def missing_setup(root: Path, tools: Path, cpus) -> list:
    """What the counts need and is not there (empty: ready)."""
    files = [tools / name for name in ("count_static.sh", "qpy.sh", "run_ort.py")] + \
        [root / "plugin" / "libicount.so"] + [root / "cpuroot" / c for c in cpus]
    return ([] if shutil.which("qemu-aarch64") else ["qemu-aarch64"]) + [str(f) for f in files if not f.exists()]


def build_bench() -> Path:
    """Configures (once) and builds the static aarch64 intinfer-bench in build/aarch64, as
    docs/cross-compiling.md and tests/test_arm.py do."""
    if not (BUILD / "CMakeCache.txt").exists():
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.run(["cmake", "-S", str(REPO), "-B", str(BUILD), *generator, f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
                        "-DINTINFER_PYTHON=OFF", "-DINTINFER_TOOLS=ON", "-DINTINFER_STATIC=ON"],
                       check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(BUILD), "-j2", "--target", "intinfer-bench"], check=True,
                   capture_output=True)
    return BUILD / "intinfer-bench"


def _run(cmd: list, env: dict | None = None) -> str:
    out = subprocess.run(NICE + cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return out.stdout + out.stderr


def count_intinfer(tools: Path, root: Path, bench: Path, cpu: str, model: Path, inputs: list) -> float:
    cmd = " ".join([str(bench), str(model), *[f"--input {p}" for p in inputs], "--threads 1 --warmup 0 --runs {N}"])
    return parse_static_count(_run(["bash", str(tools / "count_static.sh"), cpu, cmd], {"ROOT": str(root)}))


def count_ort(tools: Path, root: Path, cpu: str, model: Path, feed: Path, out: Path) -> float:
    _run(["bash", str(tools / "qpy.sh"), cpu, "-plugin", f"{root / 'plugin' / 'libicount.so'},out={out}", "--",
          str(tools / "run_ort.py"), str(model), str(ORT_RUNS), str(feed)], {"ROOT": str(root)})
    return parse_marks(out.read_text(), ORT_RUNS)


def split_intinfer(root: Path, bench: Path, cpu: str, model: Path, inputs: list, work: Path) -> tuple:
    """parse_op_marks of one run under the plugin."""
    inputs = [a for p in inputs for a in ("--input", str(p))]
    marks = work / "ops.cnt"
    out = _run(["qemu-aarch64", "-cpu", cpu, "-L", str(root / "cpuroot" / cpu),
                "-plugin", f"{root / 'plugin' / 'libicount.so'},out={marks}", str(bench), str(model), *inputs,
                "--threads", "1", "--warmup", "0", "--runs", "1", "--mark-ops"])
    return parse_op_marks(marks.read_text(), out)


def host_line() -> str:
    """_common.machine_line(), saying so when the CPU flags show a hypervisor."""
    try:
        vm = "hypervisor" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        vm = False
    return machine_line() + ("; a virtual machine" if vm else "")


def qemu_version() -> str:
    out = subprocess.run(["qemu-aarch64", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def ort_version(root: Path) -> str:
    found = sorted((root / "aarch64-site").glob("onnxruntime-*.dist-info"))
    return found[0].name[len("onnxruntime-"):-len(".dist-info")] if found else "unknown"


# -- the models --------------------------------------------------------------------------------------

def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _export(model, args: tuple, path: Path, input_names: list, output_names: list) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(path), input_names=input_names, output_names=output_names,
                          opset_version=17, dynamo=False)


def quantize_qdq(src: Path, dst: Path, feeds: list, op_types=None) -> None:
    """ONNX Runtime's static QDQ quantization, u8 activations and s8 per-channel weights (as the
    arm-peers tools' quantize.py), after its pre-processing."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    pre = dst.with_name(dst.stem + "_pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # MiniLM's dynamic axes defeat it
    quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=op_types)


def effnet_case(work: Path) -> Case:
    iif, x = work / "effnet.iif", work / "effnet_x.npy"
    if not iif.exists() or not x.exists():
        log("EfficientNet-Lite0: intinfer model (examples/efficientnet_lite0.py --save)")
        subprocess.run([sys.executable, str(REPO / "examples" / "efficientnet_lite0.py"), "--save", str(iif),
                        "--save-input", str(x), "--eval", "1", "--runs", "1"], check=True, capture_output=True)
    fp32, qdq = work / "effnet_fp32.onnx", work / "effnet_int8_qdq.onnx"
    if not qdq.exists():
        import torch

        log("EfficientNet-Lite0: ONNX export and quantize_static")
        example = _example("efficientnet_lite0")
        _export(example.load_model(), (torch.from_numpy(np.load(x)),), fp32, ["input"], ["logits"])
        calib = example.crops(example.CALIBRATION_PICTURES, 64, seed=0)  # the example's calibration crops
        quantize_qdq(fp32, qdq, [{"input": c[None].numpy()} for c in calib])
    return Case("EfficientNet-Lite0 (224 x 224)", iif, [x],
                {"ONNX Runtime int8 QDQ static (U8S8 per-channel)": qdq, "ONNX Runtime fp32": fp32}, x)


def minilm_inputs(seq: int) -> tuple:
    """ids, mask and token types [1, seq] (int32; ONNX Runtime gets them as int64)."""
    ids = np.random.default_rng(0).integers(*IDS, (1, seq)).astype(np.int32)
    return ids, np.ones_like(ids), np.zeros_like(ids)


def minilm_cases(work: Path, seqs) -> list:
    import compare_minilm

    iif = work / "minilm.iif"  # the name compare_minilm.build keeps its intinfer model under
    if not iif.exists():
        log("all-MiniLM-L6-v2: intinfer model (examples/minilm.py --save)")
        subprocess.run([sys.executable, str(REPO / "examples" / "minilm.py"), "--save", str(iif), "--runs", "1"],
                       check=True, capture_output=True)
    fp32, dyn, qdq = work / "minilm.onnx", work / "minilm_int8.onnx", work / "minilm_int8_qdq.onnx"
    if not dyn.exists():
        log("all-MiniLM-L6-v2: ONNX export and quantize_dynamic (bench/compare_minilm.py)")
        compare_minilm.build(work, 1)
    if not qdq.exists():
        from intinfer.models import MiniLM

        log("all-MiniLM-L6-v2: quantize_static")
        tokenizer = MiniLM.from_pretrained().tokenizer
        pairs = [line.split("\t") for line in (REPO / "tests" / "data" / "similarity_pairs.tsv").read_text()
                 .splitlines()[1:] if line]
        feeds = []
        for text in [p[0] for p in pairs] + [p[1] for p in pairs]:  # intinfer's calibration sentences
            enc = tokenizer.encode([text])
            feeds.append({name: enc[key].astype(np.int64) for name, key in
                          (("ids", "input_ids"), ("mask", "attention_mask"), ("types", "token_type_ids"))})
        quantize_qdq(fp32, qdq, feeds, op_types=["MatMul", "Gemm"])
    cases = []
    for seq in seqs:
        arrays = minilm_inputs(seq)
        paths = [work / f"minilm_{name}_{seq}.npy" for name in ("ids", "mask", "types")]
        for p, a in zip(paths, arrays):
            np.save(p, a)
        feed = work / f"minilm_feed_{seq}.npz"
        np.savez(feed, **{name: a.astype(np.int64) for name, a in zip(("ids", "mask", "types"), arrays)})
        cases.append(Case(f"all-MiniLM-L6-v2, sequence length {seq}", iif, paths,
                          {"ONNX Runtime int8 dynamic (quantize_dynamic)": dyn,
                           "ONNX Runtime int8 QDQ static (U8S8 per-channel, MatMul/Gemm)": qdq,
                           "ONNX Runtime fp32": fp32}, feed))
    return cases


# -- the run -----------------------------------------------------------------------------------------

def measure(case: Case, cpus: list, tools: Path, root: Path, bench: Path, work: Path) -> None:
    for cpu in cpus:
        t = time.perf_counter()
        try:
            case.counts[(INTINFER, cpu)] = count_intinfer(tools, root, bench, cpu, case.iif, case.inputs)
            case.splits[cpu] = split_intinfer(root, bench, cpu, case.iif, case.inputs, work)
        except (RuntimeError, ValueError) as e:
            log(f"  {case.title}, {cpu}, intinfer: {e}")
        for row, model in case.onnx.items():
            try:
                case.counts[(row, cpu)] = count_ort(tools, root, cpu, model, case.onnx_input, work / "ort.cnt")
            except (RuntimeError, ValueError) as e:
                log(f"  {case.title}, {cpu}, {row}: {e}")
        got = ", ".join(f"{row} {fmt_m(case.counts.get((row, cpu)))} M" for row in [INTINFER, *case.onnx])
        log(f"  {case.title}, {cpu} ({time.perf_counter() - t:.0f} s): {got}")


def _wrap(text: str) -> str:
    return textwrap.fill(text, 100, break_long_words=False, break_on_hyphens=False)


def report(cases: list, cpus: list, root: Path, minutes: float) -> str:
    lines = ["## intinfer against ONNX Runtime on emulated cores: `bench/compare_arm.py`", "",
             "Regenerated by one command (after `bash ../shared/tools/arm-peers/setup.sh build/arm-peers` once):",
             "", "    python3 bench/compare_arm.py --write-docs", "",
             _wrap(f"Measured {now()} on {host_line()}; {qemu_version()}; ONNX Runtime {ort_version(root)} "
                   f"(aarch64 wheel, Debian's arm64 Python 3.11); {minutes:.0f} min in all. "
                   f"Command: `{command_line()}`"), "",
             _wrap("Guest instructions per inference in millions (batch 1, one thread), counted by the arm-peers "
                   "tools' qemu plugin: intinfer's static `intinfer-bench` as (3 runs - 1 run) / 2, ONNX Runtime "
                   f"between markers around {ORT_RUNS} runs after a warm-up. `intinfer / engine` is intinfer's count "
                   "over the row's: below 1.00, intinfer executes fewer instructions. Instructions are not cycles "
                   "(../shared/tools/arm-peers/README.md). intinfer: the examples' int8 models "
                   "(examples/efficientnet_lite0.py, examples/minilm.py); ONNX Runtime: the same float models "
                   "exported with torch.onnx (opset 17), quantized with calibration on the inputs intinfer "
                   f"calibrates on. MiniLM's inputs: ids drawn from [{IDS[0]}, {IDS[1]}) by "
                   "`np.random.default_rng(0)`, all-ones mask, zero token types. LiteRT is left out (its int8 file "
                   "needs a TFLite conversion this script does not make; the tools' README.md has "
                   "EfficientNet-Lite0 figures from one)."), "",
             _wrap("intinfer by op type (the second table of each model): instructions counted between markers, "
                   "`intinfer-bench --mark-ops` calling getppid() before each op and after the last (one run), "
                   "summed by op type, and each type's share of all ops' (the run's input and output copies are "
                   "outside). The types are intinfer-bench's: CONV2D holds the stem, the depthwise and the 1x1 "
                   "convolutions. In brackets: the kernel path intinfer picked on that core.")]
    for case in cases:
        lines += ["", f"### {case.title}", "", count_table(case.counts, [INTINFER, *case.onnx], cpus)]
        if case.splits:
            lines += ["", split_table(case.splits, cpus)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--cpus", nargs="+", default=list(CPUS), help="qemu CPUs with a cpuroot in ROOT")
    ap.add_argument("--seq", nargs="+", type=int, default=list(SEQS), help="MiniLM sequence lengths")
    ap.add_argument("--work-dir", type=Path, default=REPO / "build" / "compare-arm",
                    help="models and inputs, kept between runs")
    ap.add_argument("--root", type=Path, default=REPO / "build" / "arm-peers", help="the folder given to setup.sh")
    ap.add_argument("--tools", type=Path, default=REPO / ".." / "shared" / "tools" / "arm-peers",
                    help="the arm-peers tools (setup.sh, count_static.sh, qpy.sh, run_ort.py)")
    ap.add_argument("--quick", action="store_true", help="smoke run: EfficientNet-Lite0 on cortex-a76 only")
    ap.add_argument("--write-docs", action="store_true", help="replace the section in docs/arm-performance.md")
    a = ap.parse_args()
    if a.quick and a.write_docs:
        ap.error("--quick is a smoke run: its table does not go into the docs")
    if a.write_docs and (set(a.models) != set(MODELS) or set(a.cpus) != set(CPUS) or set(a.seq) != set(SEQS)):
        ap.error("--write-docs replaces the whole section of docs/arm-performance.md: run every model, CPU and "
                 "sequence length (the defaults), or leave --write-docs out")
    models, cpus = (["effnet"], ["cortex-a76"]) if a.quick else (a.models, a.cpus)
    root, tools = a.root.resolve(), a.tools.resolve()
    missing = missing_setup(root, tools, cpus)
    if missing:
        sys.exit(f"missing: {', '.join(missing)}\n(bash ../shared/tools/arm-peers/setup.sh build/arm-peers "
                 "builds ROOT; qemu-user and gcc-aarch64-linux-gnu come from Debian)")
    start = time.perf_counter()
    a.work_dir.mkdir(parents=True, exist_ok=True)
    log("building build/aarch64/intinfer-bench")
    bench = build_bench()
    cases = ([effnet_case(a.work_dir)] if "effnet" in models else []) + \
        (minilm_cases(a.work_dir, a.seq) if "minilm" in models else [])
    for case in cases:
        measure(case, cpus, tools, root, bench, a.work_dir)
    body = report(cases, cpus, root, (time.perf_counter() - start) / 60)
    print(body)
    if a.write_docs:
        write_docs(body)
        log(f"wrote {ARM_MD.relative_to(REPO)} ({SECTION} section)")


if __name__ == "__main__":
    main()
