"""A/B two builds of intinfer-bench on the same models, interleaved in one run: the ratio of
medians per model (new / old) says whether a change made the engine slower.

    python3 bench/ab_builds.py OLD/intinfer-bench NEW/intinfer-bench \\
        --case effnet.iif:x.npy --case minilm.iif:ids.npy,mask.npy,types.npy --rounds 5 --runs 30

A case is a model and its inputs (none: random ones). Each round runs every (case, build) pair
once, alternating which build goes first, so load on a shared machine falls on both alike."""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess


def median_ms(bench: str, model: str, inputs: list, runs: int, threads: int) -> float:
    args = [bench, model, "--runs", str(runs), "--warmup", "3", "--threads", str(threads)]
    for x in inputs:
        args += ["--input", x]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"median ([\d.]+)", out).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", help="the baseline intinfer-bench")
    ap.add_argument("new", help="the changed intinfer-bench")
    ap.add_argument("--case", action="append", required=True, metavar="MODEL.iif[:X.npy,...]")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    cases = []
    for c in a.case:
        model, _, inputs = c.partition(":")
        cases.append((model, [x for x in inputs.split(",") if x]))
    times = {(c, b): [] for c in a.case for b in ("old", "new")}
    for r in range(a.rounds):
        for c, (model, inputs) in zip(a.case, cases):
            for b in ("old", "new") if r % 2 == 0 else ("new", "old"):
                times[(c, b)].append(median_ms(getattr(a, b), model, inputs, a.runs, a.threads))
    print(f"{a.rounds} rounds x {a.runs} runs, {a.threads} thread(s); ms are medians of the rounds' medians\n")
    print("| case | old ms | new ms | new / old |")
    print("|---|---|---|---|")
    for c in a.case:
        old, new = statistics.median(times[(c, "old")]), statistics.median(times[(c, "new")])
        print(f"| {c} | {old:.2f} | {new:.2f} | {new / old:.3f} |")


if __name__ == "__main__":
    main()
