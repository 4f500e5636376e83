#!/usr/bin/env python3
"""Soak test (docs/testing.md): N threads x R runs each on one shared loaded model, every run on
a random shape, the process's RSS sampled throughout, and every output compared bit for bit
with a single-threaded run of the same input (a separate load with one intra-op thread, one run
at a time, before the soak), so a race in the sessions, the plan cache or the thread pool shows
as a mismatch and a leak as RSS growth.

    python3 bench/soak.py --effnet effnet.iif --minilm minilm.iif [--threads 8] [--runs 10000] [--pool P]
    python3 bench/soak.py --quick       # the every-op sample model, 8 x 200 runs (seconds)

Inputs: by default every run has its own random input. With `--pool P` the runs draw from P
random inputs (run j takes input j mod P), so the single-threaded reference pass costs P runs
instead of threads x runs; the soak itself is unchanged in length, and at any moment the
threads run different inputs and shapes.

Shapes: an image model (one input, batch first) takes batch 1..8; a MiniLM-style model (inputs
input_ids, attention_mask, token_type_ids) batch 1..4 and sequence length 1..128, ids in
[0, 30522), a 0/1 mask with at least one 1 per row, zero token types. The models come from
`python3 examples/efficientnet_lite0.py --save` and `python3 examples/minilm.py --save`.
Exit status 1 on any mismatch or error.
"""

import argparse
import hashlib
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import intinfer  # noqa: E402

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
VOCAB = 30522


def make_inputs(model, rng: np.random.Generator):
    """A random shape and input for the model: (shape key, list of arrays)."""
    names = [t.name for t in model.inputs]
    if names == list(TEXT_INPUTS):
        b, s = int(rng.integers(1, 5)), int(rng.integers(1, 129))
        ids = rng.integers(0, VOCAB, size=(b, s), dtype=np.int32)
        mask = rng.integers(0, 2, size=(b, s), dtype=np.int32)
        mask[np.arange(b), rng.integers(0, s, size=b)] = 1
        return (b, s), [ids, mask, np.zeros((b, s), np.int32)]
    (info,) = model.inputs
    b = int(rng.integers(1, 9))
    shape = (b, *info.shape[1:])
    if info.dtype == "float32":
        x = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    else:
        x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return (b,), [x]


def digest(outputs) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for o in outputs if isinstance(outputs, list) else [outputs]:
        h.update(np.ascontiguousarray(o).tobytes())
    return h.digest()


class RssSampler(threading.Thread):
    """The process's resident set from /proc/self/statm every `period` seconds."""

    def __init__(self, period: float = 0.05):
        super().__init__(daemon=True)
        self.period, self.samples, self.stop = period, [], threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def read(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def run(self):
        while not self.stop.is_set():
            self.samples.append(self.read())
            time.sleep(self.period)


def soak(name: str, path, threads: int, runs: int, intra_threads: int, pool: int) -> int:
    # The reference first: each pool input once, one run at a time on a model with one intra-op thread.
    single = intinfer.load(path, num_threads=1)
    ref_start = time.monotonic()
    shapes, expected = [], []
    for seed in range(pool):
        shape, inputs = make_inputs(single, np.random.default_rng(seed))
        shapes.append(shape)
        expected.append(digest(single.run(inputs, raw=True)))
    ref_seconds = time.monotonic() - ref_start
    del single

    shared = intinfer.load(path, num_threads=intra_threads)
    rss = RssSampler()
    rss.start()
    start = time.monotonic()

    def worker(t: int):
        """Runs R inputs (run j of all takes pool input j mod P); returns the mismatching seeds."""
        bad = []
        for i in range(runs):
            seed = (t * runs + i) % pool
            _, inputs = make_inputs(shared, np.random.default_rng(seed))
            if digest(shared.run(inputs, raw=True)) != expected[seed]:
                bad.append(seed)
        return bad

    with ThreadPoolExecutor(threads) as executor:
        mismatches = [seed for bad in executor.map(worker, range(threads)) for seed in bad]
    seconds = time.monotonic() - start
    rss.stop.set()
    rss.join()
    del shared

    mib = [s / 2**20 for s in rss.samples]
    tenth = max(1, len(mib) // 10)
    print(f"{name}: {threads} threads x {runs} runs = {threads * runs} runs in {seconds:.0f} s "
          f"(intra-op threads {intra_threads}; reference pass over {pool} inputs {ref_seconds:.0f} s)")
    print(f"  distinct shapes {len(set(shapes))}")
    print(f"  RSS MiB min {min(mib):.0f} max {max(mib):.0f}; max of the first tenth {max(mib[:tenth]):.0f}, "
          f"of the last tenth {max(mib[-tenth:]):.0f} ({len(mib)} samples)")
    print(f"  mismatches {len(mismatches)}" + (f", first: seed {mismatches[0]} shape {shapes[mismatches[0]]}"
                                               if mismatches else ""))
    return len(mismatches)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--effnet", help="EfficientNet-Lite0 .iif (examples/efficientnet_lite0.py --save)")
    parser.add_argument("--minilm", help="all-MiniLM-L6-v2 .iif (examples/minilm.py --save)")
    parser.add_argument("--threads", type=int, default=8, help="calling threads (default 8)")
    parser.add_argument("--runs", type=int, help="runs per thread (default 10,000; 200 with --quick)")
    parser.add_argument("--pool", type=int, help="draw the runs from this many random inputs (default: one per run)")
    parser.add_argument("--intra-threads", type=int, default=2, help="intra-op threads of the shared model (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run; without --effnet/--minilm on the every-op sample model")
    args = parser.parse_args()
    runs = args.runs or (200 if args.quick else 10_000)
    pool = min(args.pool or args.threads * runs, args.threads * runs)
    if args.threads < 1 or runs < 1 or pool < 1:
        parser.error("--threads, --runs and --pool must be positive")
    models = [(n, p) for n, p in (("EfficientNet-Lite0", args.effnet), ("MiniLM", args.minilm)) if p]
    if not models:
        if not args.quick:
            parser.error("give --effnet and/or --minilm (or --quick for the sample model)")
        from sample_models import every_op_model

        models = [("every-op sample model", every_op_model().to_bytes())]
    failures = sum(soak(name, path, args.threads, runs, args.intra_threads, pool) for name, path in models)
    print("result: " + ("no mismatch" if failures == 0 else f"{failures} MISMATCHES"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
