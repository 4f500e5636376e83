"""all-MiniLM-L6-v2 sentence embeddings side by side: intinfer int8 against torch fp32, torch int8
dynamic quantization (`quantize_dynamic` on the Linear layers) and ONNX Runtime fp32 and int8
(dynamic quantization of the ONNX export), at batch 1 and sequence lengths 16, 64 and 128, on 1
and 2 threads; plus each engine's embedding cosine with fp32 on tests/data/sentences.txt.

    python3 bench/compare_minilm.py [--quick] [--no-docs]

Every engine computes the same thing: token ids, mask and types in, the mean-pooled embedding
out (intinfer's MASKED_MEAN; the others the same PyTorch/ONNX graph). Timings: each round times
every engine and length once, the engines in rotating order and each after a pause of PAUSE_S
seconds (so that no other engine's threads still spin), one measurement = the median of
`--runs` calls after warm-up; the table gives the median over rounds. The thread count is set
per engine (torch.set_num_threads, ORT intra-op threads, intinfer num_threads) and the two
counts run in separate processes. Writes the `minilm` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, log, machine_line, md_table, median_ms, now, update_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LENGTHS = (16, 64, 128)
PRESETS = {"full": dict(rounds=5, runs=20), "quick": dict(rounds=2, runs=5)}
# Seconds of sleep before each engine's measurements: ONNX Runtime's and torch's pool threads
# spin for a while after a call, and on two cores a spinning neighbour takes the core of another
# engine's second thread (the 2-thread seq-16 figure of intinfer, 0.54 ms alone, read 1.30 ms).
PAUSE_S = 0.25
ENGINES = ["intinfer int8", "torch fp32", "torch int8 dynamic", "ONNX Runtime fp32", "ONNX Runtime int8 dynamic"]


def build(tmp: Path, threads: int):
    """name -> callable(ids, mask, types) -> [B, 384] embedding (not normalized)."""
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    import intinfer
    from intinfer.models import MiniLM, PooledEncoder, quantize_minilm

    torch.set_num_threads(threads)
    model = MiniLM.from_pretrained()
    pooled = PooledEncoder(model).eval()
    pairs = [l.split("\t") for l in (REPO / "tests" / "data" / "similarity_pairs.tsv").read_text().splitlines()[1:] if l]
    calib = [p[0] for p in pairs] + [p[1] for p in pairs]
    iif = tmp / "minilm.iif"
    if not iif.exists():
        quantize_minilm(model, calib).save(iif)
    engine = intinfer.load(iif, num_threads=threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dyn = torch.ao.quantization.quantize_dynamic(pooled, {torch.nn.Linear}, dtype=torch.qint8)  # a copy
    onnx_fp32, onnx_int8 = tmp / "minilm.onnx", tmp / "minilm_int8.onnx"
    if not onnx_int8.exists():
        ids = torch.ones(1, 16, dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(pooled, (ids, ids, ids * 0), str(onnx_fp32), input_names=["ids", "mask", "types"],
                              output_names=["emb"], dynamic_axes={n: {0: "b", 1: "s"} for n in ("ids", "mask", "types")},
                              opset_version=17, dynamo=False)
        quantize_dynamic(str(onnx_fp32), str(onnx_int8), weight_type=QuantType.QInt8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sessions = {name: ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
                for name, path in (("ONNX Runtime fp32", onnx_fp32), ("ONNX Runtime int8 dynamic", onnx_int8))}

    def torch_run(m):
        def run(ids, mask, types):
            with torch.no_grad():
                return m(torch.from_numpy(ids).long(), torch.from_numpy(mask).long(), torch.from_numpy(types).long()).numpy()
        return run

    def ort_run(s):
        return lambda ids, mask, types: s.run(None, {"ids": ids.astype(np.int64), "mask": mask.astype(np.int64),
                                                     "types": types.astype(np.int64)})[0]

    return model.tokenizer, {
        "intinfer int8": lambda ids, mask, types: engine.run([ids, mask, types]),
        "torch fp32": torch_run(pooled),
        "torch int8 dynamic": torch_run(dyn),
        "ONNX Runtime fp32": ort_run(sessions["ONNX Runtime fp32"]),
        "ONNX Runtime int8 dynamic": ort_run(sessions["ONNX Runtime int8 dynamic"]),
    }


def worker(threads: int, rounds: int, runs: int, tmp: Path) -> None:
    """Prints 'engine<TAB>length<TAB>ms' lines, and 'cos<TAB>engine<TAB>mean<TAB>min' lines."""
    tokenizer, engines = build(tmp, threads)
    rng = np.random.default_rng(0)
    inputs = {}
    for s in LENGTHS:
        ids = rng.integers(1000, 20000, (1, s)).astype(np.int32)
        ids[0, 0], ids[0, -1] = 101, 102  # [CLS] ... [SEP]
        inputs[s] = (ids, np.ones_like(ids), np.zeros_like(ids))
    results = {(e, s): [] for e in engines for s in LENGTHS}
    names = list(engines)
    for r in range(rounds):
        log(f"  {threads} thread(s), round {r + 1}/{rounds}")
        for e in names[r % len(names):] + names[: r % len(names)]:
            time.sleep(PAUSE_S)  # the previous engine's threads stop spinning first
            for s in LENGTHS:
                results[(e, s)].append(median_ms(lambda: engines[e](*inputs[s]), runs))
    for (e, s), v in results.items():
        print(f"{e}\t{s}\t{np.median(v):.4f}")
    if threads == 1:
        sentences = [l for l in (REPO / "tests" / "data" / "sentences.txt").read_text().splitlines() if l.strip()]
        enc = tokenizer.encode(sentences)
        batch = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        ref = engines["torch fp32"](*batch)
        ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
        for e, fn in engines.items():
            got = fn(*batch)
            cos = (ref * got / np.linalg.norm(got, axis=1, keepdims=True)).sum(1)
            print(f"cos\t{e}\t{cos.mean():.4f}\t{cos.min():.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    a = ap.parse_args()
    preset = PRESETS["quick" if a.quick else "full"]
    if a.worker:
        worker(a.worker, preset["rounds"], preset["runs"], Path(a.tmp))
        return
    header = [f"Measured {now()} on {machine_line()}", f"Command: `{command_line()}`", ""]
    ms, cos = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (1, 2):
            log(f"{threads} thread(s)")
            out = subprocess.run([sys.executable, __file__, "--worker", str(threads), "--tmp", tmp]
                                 + (["--quick"] if a.quick else []), capture_output=True, text=True,
                                 env={**os.environ, "OMP_NUM_THREADS": str(threads)})
            if out.returncode:
                sys.exit(out.stderr)
            for line in out.stdout.splitlines():
                f = line.split("\t")
                if f[0] == "cos":
                    cos[f[1]] = (float(f[2]), float(f[3]))
                else:
                    ms[(f[0], int(f[1]), threads)] = float(f[2])
    rows = []
    for e in ENGINES:
        cells = []
        for threads in (1, 2):
            for s in LENGTHS:
                v, ours = ms[(e, s, threads)], ms[("intinfer int8", s, threads)]
                cells.append(f"{v:.2f} ({v / ours:.2f}x)")
        rows.append([e, *cells, f"{cos[e][0]:.4f} / {cos[e][1]:.4f}"])
    headers = ["engine"] + [f"seq {s}, {t}t" for t in (1, 2) for s in LENGTHS] + ["cosine with fp32 (mean / min)"]
    body = "\n".join(["## all-MiniLM-L6-v2: intinfer against torch and ONNX Runtime", "", *header,
                      "Latency in ms at batch 1 (in brackets: time relative to intinfer, above 1x = slower than "
                      "intinfer); cosine of the mean-pooled embedding with torch fp32 on the 56 sentences of "
                      "tests/data/sentences.txt. intinfer: `quantize_minilm` defaults (minmax observer, GPTQ, bias "
                      "correction), calibrated on the 84 sentences of tests/data/similarity_pairs.tsv.", "",
                      md_table(headers, rows)])
    print(body)
    if not a.no_docs:
        update_section("minilm", body)
        log("wrote docs/benchmarks.md (minilm section)")


if __name__ == "__main__":
    main()
