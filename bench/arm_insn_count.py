"""Instructions per multiply-accumulate of the ARM GEMM paths, counted by qemu-user.

Runs the cross-built static intinfer-bench (build/aarch64, build/armv7: see
docs/cross-compiling.md) under qemu with `-d in_asm,exec,nochain`, which logs every translated
block's instructions and every execution of a block, and counts the guest instructions of one
inference of a [M x K] x [K x N] FULLY_CONNECTED layer: the count of a 3-run process minus that
of a 1-run process, halved, so loading and packing cancel out. Also prints the hottest block,
the micro-kernel's inner loop, with its instruction count. Instruction counts, not time: qemu
says nothing of a real core's cycles (docs/arm-performance.md turns them into MACs/cycle).

    python3 bench/arm_insn_count.py [--m 64 --k 1024 --n 64] [--dtype int4]
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from intinfer.builder import GraphBuilder

REPO = Path(__file__).resolve().parent.parent

PATHS = [  # (label, build dir, qemu command, isa)
    ("aarch64 neon", "aarch64", ["qemu-aarch64", "-cpu", "max"], "neon"),
    ("aarch64 neondot", "aarch64", ["qemu-aarch64", "-cpu", "max"], "neondot"),
    ("aarch64 neoni8mm", "aarch64", ["qemu-aarch64", "-cpu", "max"], "neoni8mm"),
    ("armv7 neon", "armv7", ["qemu-arm"], "neon"),
]

_TB = re.compile(r"^IN:")
_INSN = re.compile(r"^0x([0-9a-f]+):\s+[0-9a-f]+(?: [0-9a-f]+)?\s{2,}(.*)$")  # thumb: two halfwords
_EXEC = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")


def fc_model(path: Path, m: int, k: int, n: int, dtype: str = "int8") -> None:
    rng = np.random.default_rng(0)
    b = GraphBuilder()
    x = b.input("x", (m, k), "uint8", 0.02, 128)
    q = {"int8": 127, "int4": 7, "int2": 1}[dtype]
    w = rng.integers(-q, q + 1, (n, k)).astype(np.int8)
    b.output(b.fully_connected(x, b.constant("w", w, dtype, scale=np.full(n, 0.01, np.float32)),
                               b.constant("b", np.zeros(n, np.int32), "int32"), 0.5, 128))
    b.save(path)


def count(qemu: list, bench: Path, model: Path, isa: str, runs: int, log: Path):
    """Total guest instructions executed, and per block start: (executions, instructions)."""
    subprocess.run([*qemu, "-d", "in_asm,exec,nochain", "-D", str(log), str(bench), str(model), "--runs", str(runs),
                    "--warmup", "0", "--threads", "1", "--isa", isa], check=True, capture_output=True)
    blocks, execs = {}, collections.Counter()
    current = None
    with open(log, errors="replace") as f:
        for line in f:
            if _TB.match(line):
                current = []
            elif current is not None and (mm := _INSN.match(line)):
                if not current:
                    blocks[int(mm.group(1), 16)] = current
                current.append(mm.group(2).strip())
            elif mm := _EXEC.match(line):
                current = None
                execs[int(mm.group(1), 16)] += 1
            else:
                current = None if not line.strip() else current
    total = sum(n * len(blocks.get(pc, ())) for pc, n in execs.items())
    return total, {pc: (n, blocks.get(pc, [])) for pc, n in execs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=64)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--dtype", choices=("int8", "int4", "int2"), default="int8",
                    help="weights: int8, or packed int4 / int2 (docs/mixed_precision.md)")
    a = ap.parse_args()
    macs = a.m * a.k * a.n
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "fc.iif"
        fc_model(model, a.m, a.k, a.n, a.dtype)
        print(f"GEMM {a.m}x{a.k}x{a.n} ({macs} MACs), {a.dtype} weights, one inference, 1 thread\n")
        print("| path | instructions / inference | instructions / MAC | hottest block (inner loop): instructions |")
        print("|---|---|---|---|")
        hot_loops = []
        for label, build, qemu, isa in PATHS:
            bench = REPO / "build" / build / "intinfer-bench"
            if not bench.exists():
                print(f"| {label} | not built ({bench}) | | |")
                continue
            one, blocks1 = count(qemu, bench, model, isa, 1, Path(tmp) / "log1")
            three, blocks = count(qemu, bench, model, isa, 3, Path(tmp) / "log3")
            per = (three - one) / 2
            # The block that the two extra inferences ran most (by instructions): the inner loop.
            extra = {pc: ((n - blocks1.get(pc, (0, []))[0]) // 2, insns) for pc, (n, insns) in blocks.items()}
            pc, (n, insns) = max(extra.items(), key=lambda kv: kv[1][0] * len(kv[1][1]))
            print(f"| {label} | {per:,.0f} | {per / macs:.4f} | {len(insns)} |")
            hot_loops.append((label, pc, n, insns))
        for label, pc, n, insns in hot_loops:
            print(f"\n{label}: hottest block at {pc:#x}, {len(insns)} instructions, executed {n} times per inference")
            for s in insns:
                print("    " + s)


if __name__ == "__main__":
    main()
