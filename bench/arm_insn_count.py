"""Instructions per multiply-accumulate of the ARM GEMM paths, counted by qemu-user.

Runs the cross-built static intinfer-bench (build/aarch64, build/armv7: see
docs/cross-compiling.md) under qemu with `-d in_asm,exec,nochain`, which logs every translated
block's instructions and every execution of a block, and counts the guest instructions of one
inference of a [M x K] x [K x N] FULLY_CONNECTED layer: the count of a 3-run process minus that
of a 1-run process, halved, so loading and packing cancel out. Also prints the hottest block,
the micro-kernel's inner loop, with its instruction count. Instruction counts, not time: qemu
says nothing of a real core's cycles (docs/arm-performance.md turns them into MACs/cycle).

--density D keeps a random share D of the weights' 1 x 4 blocks (the others zero) and counts the
same int8 codes twice on each path, stored dense and block-sparse (the block-sparse GEMM rows);
instructions / MAC are per MAC of the dense shape in both.

--matmul counts a MATMUL of two activations instead (attention's products): --batch matrices of
a [M x K] by b [K x N] (b [N x K] with --transpose-b), random zero points; e.g. all-MiniLM-L6-v2's
Q K^T and P V at 128 tokens (12 heads of 32):

    python3 bench/arm_insn_count.py [--m 64 --k 1024 --n 64] [--dtype int4] [--density 0.1] [--float-output]
    python3 bench/arm_insn_count.py --matmul --batch 12 --m 128 --k 32 --n 128 --transpose-b
    python3 bench/arm_insn_count.py --matmul --batch 12 --m 128 --k 128 --n 32
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


SPARSE_BLOCK = 4  # the block the exporter writes (docs/pruning.md)


def fc_model(path: Path, m: int, k: int, n: int, dtype: str = "int8", density: float | None = None,
             sparse: bool = False, float_output: bool = False) -> None:
    """density: keep that share of the 1 x SPARSE_BLOCK blocks (the same draw for every call);
    sparse: store the codes block-sparse; float_output: a float32 output (no requantization)."""
    rng = np.random.default_rng(0)
    b = GraphBuilder()
    x = b.input("x", (m, k), "uint8", 0.02, 128)
    q = {"int8": 127, "int4": 7, "int2": 1}[dtype]
    w = rng.integers(-q, q + 1, (n, k)).astype(np.int8)
    if density is not None:
        keep = rng.random((n, k // SPARSE_BLOCK)) < density
        w = (w * np.repeat(keep, SPARSE_BLOCK, axis=1)).astype(np.int8)
    b.output(b.fully_connected(x, b.constant("w", w, dtype, scale=np.full(n, 0.01, np.float32),
                                             block_sparse=SPARSE_BLOCK if sparse else None),
                               b.constant("b", np.zeros(n, np.int32), "int32"),
                               None if float_output else 0.5, None if float_output else 128))
    b.save(path)


def matmul_model(path: Path, batch: int, m: int, k: int, n: int, transpose_b: bool) -> None:
    """One MATMUL of uint8 activations a [batch, m, k] and b [batch, k, n] (or [batch, n, k])."""
    b = GraphBuilder()
    a_in = b.input("a", (batch, m, k), "uint8", 0.05, 120)
    b_in = b.input("b", (batch, n, k) if transpose_b else (batch, k, n), "uint8", 0.04, 131)
    b.output(b.matmul(a_in, b_in, 0.1, 100, transpose_b=transpose_b, alpha=k ** -0.5))
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
    ap.add_argument("--density", type=float,
                    help="int8 weights keeping this share of their 1 x 4 blocks, counted dense and block-sparse")
    ap.add_argument("--float-output", action="store_true",
                    help="the GEMM writes float32 (as the layers before a wide residual add do), not uint8")
    ap.add_argument("--matmul", action="store_true", help="a MATMUL of two activations instead of a GEMM")
    ap.add_argument("--batch", type=int, default=1, help="--matmul: matrices per inference")
    ap.add_argument("--transpose-b", action="store_true", help="--matmul: b is [N x K]")
    a = ap.parse_args()
    if a.density is not None and (a.dtype != "int8" or not 0 <= a.density <= 1 or a.k % SPARSE_BLOCK):
        ap.error(f"--density needs int8 weights, a density in [0, 1] and K a multiple of {SPARSE_BLOCK}")
    if a.matmul and (a.density is not None or a.dtype != "int8" or a.float_output):
        ap.error("--matmul multiplies two activations: no --dtype, --density or --float-output")
    macs = a.batch * a.m * a.k * a.n
    with tempfile.TemporaryDirectory() as tmp:
        # (suffix of the row label, model file): the same codes stored dense, then block-sparse
        models = []
        if a.matmul:
            matmul_model(Path(tmp) / "matmul.iif", a.batch, a.m, a.k, a.n, a.transpose_b)
            models.append(("", Path(tmp) / "matmul.iif"))
            what = f"MATMUL {a.batch} x {a.m}x{a.k}x{a.n}{' (b transposed)' if a.transpose_b else ''}"
        for sparse in ((False, True) if a.density is not None else () if a.matmul else (False,)):
            model = Path(tmp) / f"fc{'_sparse' if sparse else ''}.iif"
            fc_model(model, a.m, a.k, a.n, a.dtype, a.density, sparse, a.float_output)
            models.append(("" if a.density is None else ", block-sparse" if sparse else ", dense", model))
            weights = f"{a.dtype} weights" if a.density is None else \
                f"int8 weights keeping {a.density:.0%} of their 1 x {SPARSE_BLOCK} blocks"
            what = f"GEMM {a.m}x{a.k}x{a.n}, {weights}{', float32 output' if a.float_output else ''}"
        print(f"{what} ({macs} MACs), one inference, 1 thread\n")
        print("| path | instructions / inference | instructions / MAC | hottest block (inner loop): instructions |")
        print("|---|---|---|---|")
        hot_loops = []
        for label, build, qemu, isa in PATHS:
            bench = REPO / "build" / build / "intinfer-bench"
            if not bench.exists():
                print(f"| {label} | not built ({bench}) | | |")
                continue
            for suffix, model in models:
                one, blocks1 = count(qemu, bench, model, isa, 1, Path(tmp) / "log1")
                three, blocks = count(qemu, bench, model, isa, 3, Path(tmp) / "log3")
                per = (three - one) / 2
                # The block that the two extra inferences ran most (by instructions): the inner loop.
                extra = {pc: ((n - blocks1.get(pc, (0, []))[0]) // 2, insns) for pc, (n, insns) in blocks.items()}
                pc, (n, insns) = max(extra.items(), key=lambda kv: kv[1][0] * len(kv[1][1]))
                print(f"| {label}{suffix} | {per:,.0f} | {per / macs:.4f} | {len(insns)} |")
                hot_loops.append((label + suffix, pc, n, insns))
        for label, pc, n, insns in hot_loops:
            print(f"\n{label}: hottest block at {pc:#x}, {len(insns)} instructions, executed {n} times per inference")
            for s in insns:
                print("    " + s)


if __name__ == "__main__":
    main()
