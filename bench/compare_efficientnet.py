"""EfficientNet-Lite0 side by side: intinfer int8 against torch fp32 eager, ONNX Runtime fp32,
ONNX Runtime int8 (static QDQ, per-channel, U8S8) and torch's own int8 FX path (x86 backend).

    python3 bench/compare_efficientnet.py            # full run (several minutes)
    python3 bench/compare_efficientnet.py --quick    # smoke run (about 2-3 minutes)

Every engine runs in its own worker process (one per engine and thread count), so that thread
pools never share a process and ONNX Runtime's spinning threads cannot steal time from the
engine being timed. The parent sends one measurement at a time and sleeps `--pause` seconds
between two, so at most one worker works at any moment. Measurements are interleaved: each
round times every engine once for each (threads, batch) configuration, the engine order
rotating from round to round. One measurement = the median of `--runs` calls after
`--warmup` calls; the tables give the median over `--rounds` rounds.

The int8 engines are all calibrated on the same crops of the scikit-image photographs, and
their top-1 agreement with the fp32 model is measured on held-out crops of other photographs.
Prints markdown to stdout; writes the `efficientnet` section of docs/benchmarks.md and the bar
chart docs/benchmarks_efficientnet.png.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, busy_warning, command_line, fmt_ms, log, machine_line, md_table, now, update_section  # noqa: E402

ENGINES = {
    "intinfer": "intinfer int8",
    "torch_fp32": "torch fp32 eager",
    "ort_fp32": "ONNX Runtime fp32",
    "ort_int8": "ONNX Runtime int8 QDQ U8S8 per-channel",
    "torch_int8_fx": "torch int8 FX (x86 backend)",
}
INT8 = ("intinfer", "ort_int8", "torch_int8_fx")
THREADS = (1, 2)
BATCHES = (1, 8)
SCALING_ENGINES = ("intinfer", "torch_fp32")
SCALING_BATCHES = (1, 2, 4, 8, 16)
PRESETS = {  # rounds, runs, warmup, budget (s), fewest runs, calibration crops, held-out crops
    "full": dict(rounds=5, runs=15, warmup=3, budget=8.0, min_runs=3, calibration=64, eval=16),
    "quick": dict(rounds=2, runs=3, warmup=1, budget=1.5, min_runs=1, calibration=8, eval=8),
}
PNG = REPO / "docs" / "benchmarks_efficientnet.png"


def load_example():
    spec = importlib.util.spec_from_file_location("efficientnet_lite0", REPO / "examples" / "efficientnet_lite0.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def reason(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first[:300]}"


# -- worker side ---------------------------------------------------------------------------

def make_runner(engine: str, threads: int, files: dict):
    """Returns (run(x) -> numpy logits, prepare(numpy) -> the engine's input, info)."""
    if engine == "intinfer":
        import intinfer

        m = intinfer.load(files["intinfer"], num_threads=threads)
        return m.run, (lambda a: a), {"isa": m.isa, "threads": m.num_threads}
    if engine in ("ort_fp32", "ort_int8"):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        s = ort.InferenceSession(files[engine], so, providers=["CPUExecutionProvider"])
        name = s.get_inputs()[0].name
        return (lambda x: s.run(None, {name: x})[0]), (lambda a: a), {"providers": s.get_providers()}
    if engine in ("torch_fp32", "torch_int8_fx"):
        import torch

        torch.set_num_threads(threads)
        if engine == "torch_fp32":
            model = load_example().load_model()
        else:
            torch.backends.quantized.engine = "x86"
            model = torch.load(files[engine], weights_only=False)
        model.eval()

        def run(x):
            with torch.inference_mode():
                return model(x).numpy()

        return run, torch.from_numpy, {"threads": torch.get_num_threads()}
    raise ValueError(f"unknown engine {engine}")


def worker(spec: dict) -> int:
    # The protocol uses the real stdout; whatever the libraries print goes to stderr (a log).
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    warnings.simplefilter("ignore")

    def reply(**kw):
        proto.write(json.dumps(kw) + "\n")
        proto.flush()

    try:
        run, prepare, info = make_runner(spec["engine"], spec["threads"], spec["files"])
        timing = np.load(spec["files"]["timing"])
    except Exception as e:  # noqa: BLE001 - the reason goes into the report
        reply(error=reason(e))
        return 1
    reply(ready=True, info=info)
    inputs = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "time":
                b = cmd["batch"]
                if b not in inputs:
                    inputs[b] = prepare(np.ascontiguousarray(timing[np.arange(b) % len(timing)]))
                x = inputs[b]
                start = time.perf_counter()
                for i in range(max(1, cmd["warmup"])):  # at least one; the slow engines fewer
                    run(x)
                    if time.perf_counter() - start > cmd["budget"] / 2:
                        break
                times, start = [], time.perf_counter()
                while len(times) < cmd["runs"]:
                    t = time.perf_counter()
                    run(x)
                    times.append(time.perf_counter() - t)
                    if len(times) >= cmd["min_runs"] and time.perf_counter() - start > cmd["budget"]:
                        break
                reply(ms=1e3 * float(np.median(times)), runs=len(times))
            elif cmd["cmd"] == "predict":
                data = np.load(cmd["input"])
                out = [np.asarray(run(prepare(np.ascontiguousarray(data[i:i + 8])))) for i in range(0, len(data), 8)]
                np.save(cmd["output"], np.concatenate(out))
                reply(ok=True)
            elif cmd["cmd"] == "quit":
                break
        except Exception as e:  # noqa: BLE001
            reply(error=reason(e))
    return 0


class Worker:
    def __init__(self, engine: str, threads: int, files: dict, workdir: str):
        self.engine, self.threads = engine, threads
        self.log_path = os.path.join(workdir, f"worker_{engine}_{threads}.log")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   PYTHONWARNINGS="ignore")
        spec = json.dumps({"engine": engine, "threads": threads, "files": files})
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", spec], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, bufsize=1)
        self.error = None
        self.info = None

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            tail = Path(self.log_path).read_text().strip().splitlines()[-1:] or ["no output"]
            return {"error": f"worker exited (status {self.proc.poll()}): {tail[0][:300]}"}
        return json.loads(line)

    def wait_ready(self) -> None:
        r = self._read()
        self.error, self.info = r.get("error"), r.get("info")

    def ask(self, **cmd) -> dict:
        if self.error:
            return {"error": self.error}
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._read()
        return self._read()

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()
        self._log.close()


# -- parent side: preparing the engines ----------------------------------------------------

def prepare_engines(args, example, model, calib, held_out, workdir: str) -> tuple[dict, dict, dict, dict]:
    """Exports each engine's model; returns (files, failures, sizes in bytes, notes)."""
    import torch

    files, failures, sizes, notes = {}, {}, {}, {}
    sizes["torch_fp32"] = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    example_input = held_out[:1]

    if "intinfer" in args.engines:
        import intinfer

        try:
            t = time.perf_counter()
            q = intinfer.quantize(model, (example_input,), calib.split(8), observer=args.observer,
                                  weight_rounding=args.weight_rounding)
            files["intinfer"] = os.path.join(workdir, "efficientnet_lite0.iif")
            q.save(files["intinfer"])
            sizes["intinfer"] = os.path.getsize(files["intinfer"])
            log(f"  intinfer: exported in {time.perf_counter() - t:.1f} s")
        except Exception as e:  # noqa: BLE001
            failures["intinfer"] = reason(e)

    if {"ort_fp32", "ort_int8"} & set(args.engines):
        onnx_path = os.path.join(workdir, "efficientnet_lite0.onnx")
        try:
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # The TorchScript exporter (dynamo=False): the torch.export-based default needs
                # onnxscript, which the bench does not depend on.
                torch.onnx.export(model, (example_input,), onnx_path, dynamo=False, opset_version=17,
                                  input_names=["input"], output_names=["logits"],
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            files["ort_fp32"] = onnx_path
            sizes["ort_fp32"] = os.path.getsize(onnx_path)
            log(f"  ONNX fp32: exported in {time.perf_counter() - t:.1f} s")
        except Exception as e:  # noqa: BLE001
            failures["ort_fp32"] = failures["ort_int8"] = "ONNX export: " + reason(e)

    if "ort_int8" in args.engines and "ort_fp32" in files:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)

        class Reader(CalibrationDataReader):
            def __init__(self, batches):
                self._it = iter([{"input": b.numpy()} for b in batches])

            def get_next(self):
                return next(self._it, None)

        try:
            t = time.perf_counter()
            src = files["ort_fp32"]
            try:  # shape inference + graph optimisation, as ONNX Runtime recommends before quantizing
                from onnxruntime.quantization.shape_inference import quant_pre_process

                pre = os.path.join(workdir, "efficientnet_lite0_pre.onnx")
                quant_pre_process(src, pre)
                src = pre
                notes["ort_int8"] = "after quant_pre_process"
            except Exception as e:  # noqa: BLE001
                notes["ort_int8"] = f"quant_pre_process failed ({reason(e)}), quantized the plain export"
            out = os.path.join(workdir, "efficientnet_lite0_int8.onnx")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_static(src, out, Reader(calib.split(8)), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax)
            files["ort_int8"] = out
            sizes["ort_int8"] = os.path.getsize(out)
            log(f"  ONNX Runtime int8: quantized in {time.perf_counter() - t:.1f} s")
        except Exception as e:  # noqa: BLE001
            failures["ort_int8"] = reason(e)

    if "torch_int8_fx" in args.engines:
        try:
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torch.ao.quantization import get_default_qconfig_mapping
                from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

                torch.backends.quantized.engine = "x86"
                with contextlib.redirect_stdout(sys.stderr):
                    fresh = load_example().load_model()
                prepared = prepare_fx(fresh, get_default_qconfig_mapping("x86"),
                                      (example_input,))
                with torch.no_grad():
                    for b in calib.split(8):
                        prepared(b)
                qfx = convert_fx(prepared)
                files["torch_int8_fx"] = os.path.join(workdir, "efficientnet_lite0_fx.pt")
                torch.save(qfx, files["torch_int8_fx"])
            sizes["torch_int8_fx"] = os.path.getsize(files["torch_int8_fx"])
            log(f"  torch int8 FX: prepared, calibrated and converted in {time.perf_counter() - t:.1f} s")
        except Exception as e:  # noqa: BLE001
            failures["torch_int8_fx"] = reason(e)
    return files, failures, sizes, notes


# -- parent side: measuring ------------------------------------------------------------------

def measure(args, workers: dict, failures: dict) -> tuple[dict, dict]:
    """Interleaved rounds; returns ({(engine, threads, batch): [ms per round]}, {cell: error})."""
    configs = [(t, b) for t in THREADS for b in BATCHES]
    configs += [(1, b) for b in SCALING_BATCHES if b not in BATCHES]
    engines = [e for e in args.engines if e not in failures]
    results, errors = {}, {}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        rot = engines[r % len(engines):] + engines[:r % len(engines)] if engines else []
        for threads, batch in configs:
            for e in rot:
                if batch not in BATCHES and e not in SCALING_ENGINES:
                    continue
                key = (e, threads, batch)
                w = workers.get((e, threads))
                if w is None or key in errors:
                    continue
                res = w.ask(cmd="time", batch=batch, runs=args.runs, warmup=args.warmup, budget=args.budget,
                            min_runs=min(args.min_runs, args.runs))
                if "error" in res:
                    errors[key] = res["error"]
                else:
                    results.setdefault(key, []).append(res["ms"])
                time.sleep(args.pause)
        log(f"  round {r + 1}/{args.rounds}: {time.perf_counter() - t0:.1f} s")
    return results, errors


def agreement_of(args, example, workers: dict, ref: np.ndarray, workdir: str) -> dict:
    out = {}
    for e in args.engines:
        if e == "torch_fp32":
            continue
        w = next((workers[(e, t)] for t in THREADS if (e, t) in workers and not workers[(e, t)].error), None)
        if w is None:
            continue
        path = os.path.join(workdir, f"logits_{e}.npy")
        res = w.ask(cmd="predict", input=os.path.join(workdir, "eval.npy"), output=path)
        out[e] = {"error": res["error"]} if "error" in res else example.agreement(ref, np.load(path))
    return out


# -- report ----------------------------------------------------------------------------------

def med(results: dict, key) -> float | None:
    v = results.get(key)
    return float(np.median(v)) if v else None


def report(args, results, errors, failures, worker_errors, acc, sizes, notes, infos) -> str:
    lines = []
    cell_notes: list = []

    def note(text: str) -> str:
        if text not in cell_notes:
            cell_notes.append(text)
        return f"failed [{cell_notes.index(text) + 1}]"

    def cell(e, t, b):
        if e in failures:
            return note(f"{ENGINES[e]}: {failures[e]}")
        if (e, t) in worker_errors:
            return note(f"{ENGINES[e]}, {t} thread(s): {worker_errors[(e, t)]}")
        if (e, t, b) in errors:
            return note(f"{ENGINES[e]}, {t} thread(s), batch {b}: {errors[(e, t, b)]}")
        ms, base = med(results, (e, t, b)), med(results, ("intinfer", t, b))
        if ms is None:
            return "-"
        return fmt_ms(ms) + (f" ({ms / base:.2f}x)" if base else "")

    headers = ["engine"] + [f"batch {b}, {t} thread{'s' if t > 1 else ''}" for b in BATCHES for t in THREADS] + \
              ["top-1 agreement with fp32", "logit cosine", "MiB"]
    rows = []
    for e in args.engines:
        a = acc.get(e)
        if e == "torch_fp32":
            top1, cos = "ref", "1"
        elif a is None:
            top1 = cos = "-"
        elif "error" in a:
            top1, cos = note(f"{ENGINES[e]}, predictions: {a['error']}"), "-"
        else:
            top1, cos = f"{a['top1']:.1%}", f"{a['cosine_mean']:.3f}"
        rows.append([ENGINES[e]] + [cell(e, t, b) for b in BATCHES for t in THREADS] +
                    [top1, cos, f"{sizes[e] / 2**20:.1f}" if e in sizes else "-"])
    lines += ["### Latency, ms (and time relative to intinfer: above 1x means slower than intinfer)", "",
              md_table(headers, rows), ""]

    # scaling
    if all(e in args.engines for e in SCALING_ENGINES):
        srows = []
        for b in SCALING_BATCHES:
            a, t = med(results, ("intinfer", 1, b)), med(results, ("torch_fp32", 1, b))
            srows.append([b, fmt_ms(a), fmt_ms(a / b) if a else "-", fmt_ms(t), fmt_ms(t / b) if t else "-",
                          f"{t / a:.2f}x" if a and t else "-"])
        lines += ["### Batch scaling, 1 thread (ms per call, ms per image)", "",
                  md_table(["batch", "intinfer ms", "intinfer ms/image", "torch fp32 ms", "torch fp32 ms/image",
                            "torch fp32 / intinfer"], srows), ""]
        trows = []
        a1, t1 = med(results, ("intinfer", 1, 1)), med(results, ("torch_fp32", 1, 1))
        for n in THREADS:
            a, t = med(results, ("intinfer", n, 1)), med(results, ("torch_fp32", n, 1))
            trows.append([n, fmt_ms(a), f"{a1 / a:.2f}x" if a and a1 else "-", fmt_ms(t),
                          f"{t1 / t:.2f}x" if t and t1 else "-"])
        lines += ["### Thread scaling, batch 1", "",
                  md_table(["threads", "intinfer ms", "intinfer speed-up", "torch fp32 ms", "torch fp32 speed-up"],
                           trows), ""]

    spreads = {k: (max(v) - min(v)) / float(np.median(v)) for k, v in results.items() if len(v) > 1}
    if spreads:
        worst = max(spreads, key=spreads.get)
        lines.append(f"Noise: round-to-round spread (max - min) / median is {np.median(list(spreads.values())):.0%} "
                     f"in the median cell, {spreads[worst]:.0%} at worst ({ENGINES[worst[0]]}, {worst[1]} "
                     f"thread(s), batch {worst[2]}); differences smaller than that are not meaningful.")
        lines.append("")
    if cell_notes:
        lines += ["Failures:", ""] + [f"{i + 1}. {t}" for i, t in enumerate(cell_notes)] + [""]
    isa = next((i.get("isa") for (e, _), i in infos.items() if e == "intinfer" and i), None)
    setup = [f"intinfer: observer `{args.observer}`, weight rounding `{args.weight_rounding}`"
             + (" (`gptq`, the example's default, agrees better with fp32 at the same speed)"
                if args.weight_rounding == "nearest" else "") + (f", kernels {isa}" if isa else "")]
    setup.append("ONNX Runtime int8: `quantize_static`, QDQ, per-channel, U8S8, MinMax calibration"
                 + (f", {notes['ort_int8']}" if "ort_int8" in notes else ""))
    setup.append("torch int8 FX: `prepare_fx`/`convert_fx` with `get_default_qconfig_mapping('x86')`, as is "
                 "(no model changes)")
    lines.append(f"All int8 engines calibrated on the same {args.calibration} crops; agreement on "
                 f"{args.eval} held-out crops of other pictures. " + "; ".join(setup) + ". MiB: the model file "
                 "(.iif, .onnx, pickled FX module), fp32 state dict for torch fp32.")
    return "\n".join(lines)


def versions() -> str:
    out = []
    for name in ("torch", "onnxruntime", "onnx", "numpy"):
        try:
            out.append(f"{name} {__import__(name).__version__}")
        except Exception:  # noqa: BLE001
            out.append(f"{name} missing")
    import intinfer

    return ", ".join([f"intinfer {intinfer.__version__}"] + out)


def plot(args, results, header: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = [e for e in args.engines if any(med(results, (e, t, 1)) for t in THREADS)]
    if not engines:
        return
    fig, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.38
    values = []
    for i, t in enumerate(THREADS):
        ys = [med(results, (e, t, 1)) or 0.0 for e in engines]
        values += [y for y in ys if y]
        xs = np.arange(len(engines)) + (i - 0.5) * width
        ax.bar(xs, ys, width, label=f"{t} thread{'s' if t > 1 else ''}")
        for x, y in zip(xs, ys):
            ax.text(x, y, fmt_ms(y) if y else "n/a", ha="center", va="bottom", fontsize=8)
    log_scale = bool(values) and max(values) / min(values) > 15
    if log_scale:
        ax.set_yscale("log")
    ax.set_xticks(np.arange(len(engines)))
    ax.set_xticklabels([ENGINES[e].replace(" (x86 backend)", "\n(x86)").replace(" QDQ", "\nQDQ") for e in engines],
                       fontsize=8)
    ax.set_ylabel("ms, batch 1 (lower is better)" + (", log scale" if log_scale else ""))
    ax.set_title("EfficientNet-Lite0, batch 1", fontsize=11)
    fig.text(0.01, 0.01, header, fontsize=6, va="bottom")
    ax.legend()
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(PNG, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(json.loads(argv[1]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: few rounds, runs and crops")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (full 5, quick 2)")
    ap.add_argument("--runs", type=int, help="timed calls per measurement (full 15, quick 3)")
    ap.add_argument("--warmup", type=int, help="untimed calls before each measurement (full 3, quick 1)")
    ap.add_argument("--budget", type=float, help="seconds after which a measurement stops early, once it has "
                                                  "--min-runs runs (full 8, quick 1.5): bounds the slow engines")
    ap.add_argument("--min-runs", type=int, help="fewest timed calls per measurement (full 3, quick 1)")
    ap.add_argument("--pause", type=float, default=0.25, help="seconds of sleep between two measurements "
                                                               "(lets ONNX Runtime's threads stop spinning)")
    ap.add_argument("--calibration", type=int, help="calibration crops (full 64, quick 8)")
    ap.add_argument("--eval", type=int, help="held-out crops for the agreement (full 16, quick 8)")
    ap.add_argument("--observer", default="mse", choices=["minmax", "ema", "percentile", "mse"],
                    help="intinfer's calibration observer (default mse, as examples/efficientnet_lite0.py)")
    ap.add_argument("--weight-rounding", default="nearest", choices=["nearest", "gptq"],
                    help="intinfer's weight rounding: no effect on speed; gptq, the example's default, agrees "
                         "better with fp32 but takes minutes to export")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ", ".join(ENGINES))
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = ap.parse_args(argv)
    for k, v in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engine(s) {unknown}; choose from {list(ENGINES)}")

    header = f"{now()}; {machine_line()}"
    busy = busy_warning()
    versions_line = versions()
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t_start = time.perf_counter()
    example = load_example()
    log("preparing: model, crops, exports")
    with contextlib.redirect_stdout(sys.stderr):  # the model package prints a line
        model = example.load_model()
    calib = example.crops(example.CALIBRATION_PICTURES, args.calibration, seed=0)
    held_out = example.crops(example.HELD_OUT_PICTURES, args.eval, seed=1)
    timing = example.crops(example.HELD_OUT_PICTURES, max(SCALING_BATCHES), seed=2)
    with torch.no_grad():
        ref = model(held_out).numpy()

    with tempfile.TemporaryDirectory(prefix="intinfer_bench_") as workdir:
        np.save(os.path.join(workdir, "eval.npy"), held_out.numpy())
        np.save(os.path.join(workdir, "timing.npy"), timing.numpy())
        files, failures, sizes, notes = prepare_engines(args, example, model, calib, held_out, workdir)
        files["timing"] = os.path.join(workdir, "timing.npy")

        log("starting workers")
        workers, worker_errors, infos = {}, {}, {}
        for e in args.engines:
            if e not in failures:
                for t in THREADS:
                    workers[(e, t)] = Worker(e, t, files, workdir)
        try:
            for key, w in workers.items():
                w.wait_ready()
                if w.error:
                    worker_errors[key] = w.error
                infos[key] = w.info
            log("agreement with fp32 on held-out crops")
            acc = agreement_of(args, example, workers, ref, workdir)
            log(f"timing: {args.rounds} rounds, median of {args.runs} runs after {args.warmup} warm-up")
            results, errors = measure(args, workers, failures)
        finally:
            for w in workers.values():
                w.close()

    body = report(args, results, errors, failures, worker_errors, acc, sizes, notes, infos)
    runs = (f"{args.runs} runs (fewer, but at least {min(args.min_runs, args.runs)}, for a measurement that "
            f"passes {args.budget:g} s)")
    params = (f"{args.rounds} interleaved rounds; each measurement the median of {runs} after {args.warmup} "
              f"warm-up call(s); one worker process per engine and thread count; {args.pause:g} s pause between "
              f"measurements.")
    text = "\n".join([
        "## EfficientNet-Lite0: intinfer against torch and ONNX Runtime", "",
        f"Command: `{command_line()}`  ", f"Date and machine: {header}  ", f"Versions: {versions_line}  ",
        f"Method: {params}", "",
        *(["**Quick mode: smoke-test figures, too few runs to compare engines.**", ""] if args.quick else []),
        *busy,
        body, "",
        "![batch-1 latency per engine](benchmarks_efficientnet.png)", ""])
    print(text)
    if not args.no_docs:
        update_section("efficientnet", text)
        try:
            plot(args, results, header)
        except Exception as e:  # noqa: BLE001
            log(f"plot failed: {reason(e)}")
        log(f"wrote docs/benchmarks.md (efficientnet section) and {PNG.relative_to(REPO)}")
    log(f"total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
