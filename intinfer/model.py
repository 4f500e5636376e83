"""The Python face of a loaded model: numpy in, numpy out."""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from . import _core
from ._schema import NUMPY_DTYPES as _NUMPY
from .cost import Cost, model_cost


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple | None  # None marks a dimension that may vary between calls; None for the whole
    # shape of an output that no input size could be planned for
    dtype: str
    scale: float | None
    zero_point: int | None
    id_rows: int | None = None  # an int32 input read as ids by GATHERs (token ids): the fewest
    # rows among their tables; ids must lie in [0, id_rows)

    @classmethod
    def _from_core(cls, d: dict) -> "TensorInfo":
        quantized = len(d["scales"]) == 1
        return cls(d["name"], tuple(None if s < 0 else s for s in d["shape"]), d["dtype"],
                   float(d["scales"][0]) if quantized else None, int(d["zero_points"][0]) if quantized else None,
                   d["id_rows"] or None)

    def _shape_str(self) -> str:
        if self.shape is None:
            return "[unknown]"
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


def load(model: str | os.PathLike | bytes, num_threads: int | None = None, *,
         plan_cache_size: int | None = None, max_tensor_bytes: int | None = None,
         max_arena_bytes: int | None = None, max_macs: int | None = None) -> "Model":
    """Load a .iif model from a path or from the bytes of a file.

    num_threads: intra-op threads; None means one per physical core (at most the CPUs this
    process may run on); at most `max_num_threads()`. plan_cache_size: how many input shapes'
    plans are kept (least recently used dropped first; 0 plans every call); None: 64.
    max_tensor_bytes, max_arena_bytes, max_macs: what one run may demand (None: 256 MiB, 1 GiB,
    2^40); a file beyond them at its smallest input sizes is refused here, larger input shapes
    by run() with a ValueError. Raises ModelError when the file is missing, truncated, corrupt,
    from a newer format version or beyond the limits, or its thread pool cannot be started
    (docs/runtime.md).
    """
    options = _core.Options()
    threads = 0 if num_threads is None else int(num_threads)
    if threads < 0:
        raise ValueError(f"num_threads must be positive, got {num_threads}")
    options.num_threads = threads
    if plan_cache_size is not None:
        if int(plan_cache_size) < 0:
            raise ValueError(f"plan_cache_size must be 0 or positive, got {plan_cache_size}")
        options.plan_cache_size = int(plan_cache_size)
    for key, value in (("max_tensor_bytes", max_tensor_bytes), ("max_arena_bytes", max_arena_bytes),
                       ("max_macs", max_macs)):
        if value is not None:
            if not 0 < int(value) < 2**64:
                raise ValueError(f"{key} must be positive (below 2^64), got {value}")
            setattr(options, key, int(value))
    if isinstance(model, (bytes, bytearray, memoryview)):
        core = _core.Model.load_buffer(bytes(model), options)
    else:
        core = _core.Model.load_file(os.fspath(model), options)
    return Model(core)


_RUN_TAKES = "run() takes a numpy array, a list of arrays in input order, or a dict name -> array"


def _dequantize(r: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Real values of a quantized output (uint8, or wide int32 steps); others unchanged."""
    if info.scale is None:
        return r
    if r.dtype == np.uint8:
        return _core.dequantize(r, info.scale, info.zero_point)
    return r.astype(np.float32) * np.float32(info.scale)  # wide: zero point 0, |r| <= 32767


class Model:
    """A loaded model. `run` is thread-safe: each calling thread gets its own session."""

    def __init__(self, core: "_core.Model"):
        self._core = core
        self.inputs = [TensorInfo._from_core(d) for d in core.inputs]
        self.outputs = [TensorInfo._from_core(d) for d in core.outputs]
        self.outputs = [dataclasses.replace(o, shape=s) for o, s in zip(self.outputs, self._output_shapes())]
        self._local = threading.local()

    @property
    def num_threads(self) -> int:
        return self._core.num_threads

    @property
    def isa(self) -> str:
        return self._core.isa

    @property
    def plan_cache_size(self) -> int:
        """How many input shapes' plans the model keeps (docs/runtime.md, The plan cache)."""
        return self._core.plan_cache_size

    @property
    def cached_plans(self) -> int:
        """How many it keeps now."""
        return self._core.cached_plans

    @property
    def limits(self) -> dict:
        """max_tensor_bytes, max_arena_bytes, max_macs (docs/runtime.md, Limits)."""
        return self._core.limits

    @property
    def metadata(self) -> dict:
        return dict(self._core.metadata())

    def _output_shapes(self) -> list:
        """Output shapes with None where they follow a dynamic input dimension: the plans for
        dynamic sizes 1 and 2 tell which dimensions move."""
        def at(size):
            return self._core.output_shapes([[size if d is None else d for d in i.shape] for i in self.inputs])
        try:
            one, two = at(1), at(2)
        except ValueError:
            return [None] * len(self.outputs)
        return [tuple(a if a == b else None for a, b in zip(s1, s2)) for s1, s2 in zip(one, two)]

    def _session(self) -> "_core.Session":
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = _core.Session(self._core)
        return s

    def _prepare(self, info: TensorInfo, x) -> np.ndarray:
        x = np.asarray(x)
        if info.dtype == "uint8" and info.scale is not None and x.dtype.kind == "f":
            return _core.quantize(np.ascontiguousarray(x, np.float32), info.scale, info.zero_point)
        if info.dtype == "float32" and x.dtype == np.float64:
            x = x.astype(np.float32)
        if info.dtype == "int32" and x.dtype.kind in "iub" and x.dtype != np.int32:
            # Token ids and masks arrive as int64 from most tokenizers.
            if x.size and (x.min() < -2**31 or x.max() >= 2**31):
                raise ValueError(f"input '{info.name}': values do not fit int32")
            x = x.astype(np.int32)
        if x.dtype != _NUMPY[info.dtype]:
            accepted = "float32 (quantized on the way in) or uint8 (raw)" if info.dtype == "uint8" else info.dtype
            raise ValueError(f"input '{info.name}': expected dtype {accepted}, got {x.dtype} "
                             f"(expected shape {info._shape_str()})")
        return np.ascontiguousarray(x)

    def _bind(self, x) -> list:
        if isinstance(x, Mapping):
            names = [i.name for i in self.inputs]
            unknown = sorted(set(x) - set(names))
            if unknown:
                raise ValueError(f"unknown input(s) {unknown}; the model's inputs are {names}")
            missing = [n for n in names if n not in x]
            if missing:
                info = self.inputs[names.index(missing[0])]
                raise ValueError(f"missing input '{info.name}' (expected shape {info._shape_str()}, {info.dtype})")
            values = [x[n] for n in names]
        elif isinstance(x, (str, bytes)):
            raise TypeError(f"{_RUN_TAKES}; got a {type(x).__name__}")
        elif isinstance(x, Sequence) and not isinstance(x, np.ndarray):
            values = list(x)
            # A list of numbers or of lists (x.tolist()) would be read as one input per item and
            # fail on the count or a shape far from the mistake.
            for v in values:
                if not (isinstance(v, np.ndarray) or hasattr(v, "__array__")):
                    raise TypeError(f"{_RUN_TAKES}; got a {type(x).__name__} of {type(v).__name__} "
                                    "(for one input given as nested lists, pass np.asarray(...))")
        else:
            values = [x]
        if len(values) != len(self.inputs):
            expected = ", ".join(f"'{i.name}' {i._shape_str()}" for i in self.inputs)
            raise ValueError(f"the model takes {len(self.inputs)} input(s) ({expected}), got {len(values)}")
        return [self._prepare(info, v) for info, v in zip(self.inputs, values)]

    def run(self, x, raw: bool = False):
        """Run the model.

        x: one array (single-input models), a list of arrays in input order, or a dict name ->
        array (array-likes such as torch tensors, and nested lists as a dict's values, are taken
        too); a str, or a list of numbers or lists, raises TypeError.
        Float arrays feeding uint8 inputs are quantized with the input's scale and zero point;
        uint8 arrays are taken as already quantized; a NaN quantizes to the zero point (real 0.0,
        not refused: docs/runtime.md). Quantized outputs are dequantized to float32 unless
        raw=True, which returns their uint8 values (parameters in `self.outputs`). Returns an
        array for single-output models, else a list.
        """
        results, _ = self._session().run(self._bind(x))
        if not raw:
            results = [_dequantize(r, info) for r, info in zip(results, self.outputs)]
        return results[0] if len(results) == 1 else results

    def profile(self, x, runs: int = 10) -> "Profile":
        """Median wall time of each op over `runs` calls on input x (after one warm-up call)."""
        inputs = self._bind(x)
        session = self._session()
        session.run(inputs)
        times = np.array([session.run(inputs, True)[1] for _ in range(max(1, runs))])
        return Profile([op[:2] for op in self._core.ops()], np.median(times, axis=0))

    def _input_shapes(self, shapes: Mapping[str, Sequence[int]] | None = None) -> dict:
        """{input name: shape} in input order, the dynamic dimensions not given in `shapes` as 1."""
        shapes = dict(shapes or {})
        return {i.name: list(shapes.get(i.name, [1 if d is None else d for d in i.shape])) for i in self.inputs}

    def memory(self, shapes: Mapping[str, Sequence[int]] | None = None) -> dict:
        """Activation memory of the static plan for these input shapes (dynamic dims = 1 when
        not given), against the naive sum of all activation tensors; the weights' bytes in the
        file (mapped, read in place by the reference kernels) and those the optimized kernels
        hold in their own layout."""
        arena, naive, weights, kernel_weights = self._core.memory(list(self._input_shapes(shapes).values()))
        return {"arena_bytes": arena, "naive_bytes": naive, "weight_bytes": weights,
                "kernel_weight_bytes": kernel_weights}

    def cost(self, shapes: Mapping[str, Sequence[int]] | None = None) -> "Cost":
        """Parameters, stored weight bytes, multiply-accumulates and other ops of each layer for
        input shapes {name: shape} (dynamic dimensions not given are 1), the activation arena,
        and `.verdict(budget_params, budget_macs)` (docs/cost.md)."""
        return model_cost(self, shapes)

    def summary(self) -> str:
        """A table of the ops with their weight bytes, and the memory plan at batch 1."""
        ops = [op[:3] for op in self._core.ops()]
        width = max([len(name) for _, name, _ in ops] + [4])
        lines = [f"{'#':>4}  {'op':<16} {'name':<{width}} {'weight bytes':>12}"]
        for i, (type_, name, wbytes) in enumerate(ops):
            lines.append(f"{i:>4}  {type_:<16} {name:<{width}} {wbytes:>12,}")
        mem = self.memory()
        total = sum(w for _, _, w in ops)
        io = lambda ts: ", ".join(f"{t.name} {t._shape_str()} {t.dtype}" +
                                  (f" (scale {t.scale:.6g}, zero point {t.zero_point})" if t.scale is not None else "")
                                  for t in ts)
        lines += [
            f"inputs:  {io(self.inputs)}",
            f"outputs: {io(self.outputs)}",
            f"ops: {len(ops)}, weights: {total:,} bytes",
            f"activation arena: {mem['arena_bytes']:,} bytes (naive sum {mem['naive_bytes']:,} bytes) at "
            + ", ".join(f"{name} {shape}" for name, shape in self._input_shapes().items()),
            f"threads: {self.num_threads}, kernels: {self.isa}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<intinfer.Model inputs={[i.name for i in self.inputs]} outputs={[o.name for o in self.outputs]}>"


class Profile:
    """Per-op timings; str() is a table sorted by time, the slowest op first."""

    def __init__(self, ops: list, seconds: np.ndarray):
        self.rows = [{"op": t, "name": n, "ms": 1e3 * float(s)} for (t, n), s in zip(ops, seconds)]
        self.total_ms = float(sum(r["ms"] for r in self.rows))

    def by_type(self) -> dict:
        out: dict = {}
        for r in self.rows:
            out[r["op"]] = out.get(r["op"], 0.0) + r["ms"]
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def __str__(self) -> str:
        w = max(len(r["name"]) for r in self.rows)
        lines = [f"{'op':<16} {'name':<{w}} {'ms':>9} {'share':>7}"]
        for r in sorted(self.rows, key=lambda r: -r["ms"]):
            lines.append(f"{r['op']:<16} {r['name']:<{w}} {r['ms']:>9.3f} {r['ms'] / self.total_ms:>7.1%}")
        lines.append(f"total {self.total_ms:.3f} ms; by op type: " +
                     ", ".join(f"{k} {v:.2f} ms" for k, v in self.by_type().items()))
        return "\n".join(lines)
