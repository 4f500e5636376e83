"""Mutation fuzzing of the model reader from Python (no compiler needed): valid files are
corrupted in the ways real files break (bit flips, overwritten fields, truncation, spliced
bytes) and each must load and run or be refused with an error, never crash the process.

Usage: python mutate.py SECONDS SEED  -> prints 'loaded=N refused=N rejected_input=N'.
Run it in a subprocess: a crash then shows as a signal exit code instead of killing pytest.
"""

import random
import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import intinfer  # noqa: E402
from sample_models import encoded_constants_model, every_op_model, sample_input, wide_model  # noqa: E402

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


def mutate(data: bytearray, rng: random.Random) -> bytearray:
    d = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        pos = rng.randrange(len(d)) if d else 0
        if kind == 0 and d:
            d[pos] ^= 1 << rng.randrange(8)
        elif kind == 1 and len(d) >= pos + 4:
            d[pos:pos + 4] = struct.pack("<I", rng.choice(INTERESTING))
        elif kind == 2:
            del d[rng.randrange(len(d) + 1):]
        elif kind == 3:
            d[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == 4 and d:
            d[pos] = rng.randrange(256)
    return d


def main(seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    # Each seed with an input its unmutated model takes.
    seeds = [(bytearray(every_op_model(s).to_bytes()), sample_input(batch=1)) for s in range(3)]
    seeds += [(bytearray(encoded_constants_model(s).to_bytes()), np.full((1, 8), 7, np.uint8)) for s in range(2)]
    seeds += [(bytearray(wide_model(s).to_bytes()), np.arange(12, dtype=np.uint8)[None] * 20) for s in range(2)]
    counts = {"loaded": 0, "refused": 0, "rejected_input": 0}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seed, x = rng.choice(seeds)
        data = bytes(mutate(seed, rng))
        try:
            m = intinfer.load(data, num_threads=1)
        except intinfer.ModelError:
            counts["refused"] += 1
            continue
        counts["loaded"] += 1
        try:
            m.run([x] * len(m.inputs))
        except ValueError:
            counts["rejected_input"] += 1
    print(" ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]))
