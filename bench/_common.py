"""Helpers shared by the comparison scripts: machine description, markdown tables, and the
marked sections of docs/benchmarks.md that each script rewrites."""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"

_HEADER = """# Benchmarks

Side-by-side measurements written by the scripts in `bench/` (see bench/README.md for how to
run them and how to read the tables). Each section below is rewritten by its script between
its markers; everything outside the markers is left alone.

"""

# ISA features that decide which kernels the engines pick (intinfer: AVX2; ONNX Runtime and
# FBGEMM also use AVX-512 and VNNI where the CPU has them).
_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_info() -> dict:
    model, flags, cores = platform.processor() or "unknown", set(), set()
    try:
        with open("/proc/cpuinfo") as f:
            phys = None
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name":
                    model = value
                elif key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "physical id":
                    phys = value
                elif key == "core id":
                    cores.add((phys, value))
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {"model": model, "logical": os.cpu_count(), "physical": len(cores) or None,
            "flags": [f for f in _FLAGS if f in flags], "load1": load}


def machine_line() -> str:
    c = cpu_info()
    cores = f"{c['logical']} logical CPU(s)" + (f", {c['physical']} physical core(s)" if c["physical"] else "")
    return (f"{c['model']}, {cores}; ISA: {' '.join(c['flags']) or 'none of ' + ', '.join(_FLAGS)}; "
            f"1-minute load average at start {c['load1']:.2f}")


def busy_warning(threshold: float = 0.5) -> list:
    """A markdown warning (as a list of lines) when the machine was already busy at start."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return []
    if load <= threshold:
        return []
    return [f"**Warning: the 1-minute load average was {load:.2f} at start: other processes were using the "
            "CPU, so these figures are unreliable (multi-thread ones most). Rerun on a quiet machine.**", ""]


def command_line() -> str:
    return "python3 " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


def now() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def md_table(headers: list, rows: list) -> str:
    out = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def update_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->` in `path` (the
    section is appended, and the file created, when missing)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else _HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fmt_ms(ms: float | None) -> str:
    """Milliseconds for a table: three decimals under 1 ms, three significant digits under a
    microsecond (a small op's time; "0.000" would read as nothing measured)."""
    if ms is None:
        return "-"
    if ms < 0.001:
        return f"{ms:.3g}"
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"


def median_ms(fn, runs: int, warmup: int = 1) -> float:
    """The median wall time of `runs` calls of fn() in milliseconds, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def log(msg: str) -> None:
    """Progress goes to stderr: stdout carries only the result tables."""
    print(msg, file=sys.stderr, flush=True)
