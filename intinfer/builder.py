"""Build `.iif` model files from Python: the writer behind the exporter and the tests.

The binary layout is specified in docs/format.md; the reader lives in csrc/core/format.cc.
A `GraphBuilder` holds tensors and ops in the order they are added, which must be a
topological order (every op reads tensors defined before it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ._schema import (ATTR_TYPES, DTYPE_BITS, DTYPE_ENCODINGS, DTYPES, ENCODING_FEATURES, ENCODINGS, FEATURES,
                      NUMPY_DTYPES, OP_TYPES, VALUE_RANGES)

MAGIC = b"IINF"
VERSION_MAJOR = 1
# 1.1 added tensor encodings and required features; a file that uses neither is written as 1.0,
# which readers from before them read too.
VERSION_MINOR = 1
HEADER_SIZE = 48
DATA_ALIGNMENT = 64

KIND_ACTIVATION, KIND_CONSTANT, KIND_INPUT = 0, 1, 2

ATTR_INT, ATTR_FLOAT, ATTR_INTS, ATTR_FLOATS = (ATTR_TYPES[k] for k in ("int", "float", "ints", "floats"))


@dataclass
class Tensor:
    """A handle on a tensor of the graph being built."""

    name: str
    dtype: str
    kind: int
    shape: tuple = ()
    scales: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    zero_points: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    axis: int = 0
    data: np.ndarray | None = None  # constants: the values (int8 for the sub-byte dtypes)
    encoding: str = "dense"
    block_size: int = 0  # block_sparse, block_bitmap: the length of a block along the last axis

    @property
    def block_sparse(self) -> bool:
        """Stored in a block-sparse encoding (either index)."""
        return self.encoding in SPARSE_INDEXES.values()

    @property
    def scale(self) -> float:
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])


@dataclass
class _Op:
    type: str
    name: str
    inputs: list
    outputs: list
    attrs: dict


def _pair(v, what: str) -> list:
    if isinstance(v, (int, np.integer)):
        return [int(v), int(v)]
    v = [int(x) for x in v]
    if len(v) != 2:
        raise ValueError(f"{what} must be an int or a pair, got {v}")
    return v


def _pads(p) -> list:
    """Padding as [top, left, bottom, right]; an int or a (h, w) pair pads symmetrically."""
    if isinstance(p, (int, np.integer)):
        return [int(p)] * 4
    p = [int(x) for x in p]
    if len(p) == 2:
        return [p[0], p[1], p[0], p[1]]
    if len(p) != 4:
        raise ValueError(f"padding must be an int, (h, w) or (top, left, bottom, right), got {p}")
    return p


def pack_subbyte(values: np.ndarray, bits: int) -> bytes:
    """Rows of the last axis, 8 / bits elements to a byte from the low bits up, two's complement;
    each row padded with zero bits to a whole byte."""
    per_byte = 8 // bits
    rows = np.asarray(values, np.int64).reshape(-1, values.shape[-1])
    padded = np.zeros((rows.shape[0], -(-rows.shape[1] // per_byte) * per_byte), np.int64)
    padded[:, :rows.shape[1]] = rows & ((1 << bits) - 1)
    shifts = np.arange(per_byte, dtype=np.int64) * bits
    return (padded.reshape(rows.shape[0], -1, per_byte) << shifts).sum(-1).astype(np.uint8).tobytes()


# The two indexes of block-sparse constants (docs/format.md, Block-sparse constants).
SPARSE_INDEXES = {"columns": "block_sparse", "bitmap": "block_bitmap"}


def stored_blocks(values: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """The 1 x block blocks of each row of the last axis ([rows, K / block, block]) and which of
    them hold a nonzero value ([rows, K / block]): the ones a block-sparse constant stores."""
    rows = np.asarray(values).reshape(-1, values.shape[-1])
    blocks = rows.reshape(rows.shape[0], -1, block)
    return blocks, np.any(blocks != 0, axis=-1)


def smaller_sparse_index(values: np.ndarray, block: int) -> str:
    """The index ("columns" or "bitmap") that stores `values` in fewer bytes: a u32 column a
    stored block and a u32 start a row, or a bit a block position; the bitmap on a tie."""
    _, keep = stored_blocks(values, block)
    rows, positions = keep.shape
    return "bitmap" if rows * -(-positions // 8) <= 4 * (rows + 1) + 4 * int(keep.sum()) else "columns"


def block_sparse_bytes(values: np.ndarray, block: int, index: str) -> bytes:
    """u32 block size, u32 block count, the index, the blocks: the nonzero 1 x block blocks of
    each row of the last axis, in row-major order. Index "columns" (block_sparse): u32 row starts
    (rows + 1), u32 block columns; "bitmap" (block_bitmap): each row's block positions, a bit
    each, low bit first, in whole bytes."""
    blocks, keep = stored_blocks(values, block)
    if index == "bitmap":
        index_bytes = np.packbits(keep, axis=1, bitorder="little").tobytes()
    else:
        starts = np.concatenate([[0], np.cumsum(keep.sum(-1))])
        index_bytes = starts.astype("<u4").tobytes() + np.nonzero(keep)[1].astype("<u4").tobytes()
    return b"".join([np.array([block, keep.sum()], "<u4").tobytes(), index_bytes,
                     blocks[keep].astype(values.dtype).tobytes()])


def tensor_bytes(t: Tensor) -> bytes:
    """A constant's data in its encoding."""
    if t.encoding == "packed":
        return pack_subbyte(t.data, DTYPE_BITS[t.dtype])
    if t.encoding in SPARSE_INDEXES.values():
        index = {e: i for i, e in SPARSE_INDEXES.items()}[t.encoding]
        return block_sparse_bytes(t.data, t.block_size, index)
    return t.data.astype(t.data.dtype.newbyteorder("<"), copy=False).tobytes()


class GraphBuilder:
    def __init__(self, metadata: dict | None = None):
        self.metadata = dict(metadata or {})
        self.tensors: list[Tensor] = []
        self._by_name: dict[str, Tensor] = {}
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self.ops: list[_Op] = []

    # -- tensors -------------------------------------------------------------------------

    def _add(self, t: Tensor) -> Tensor:
        if t.name in self._by_name:
            raise ValueError(f"tensor name '{t.name}' is used twice")
        self._by_name[t.name] = t
        self.tensors.append(t)
        return t

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self._by_name:
            name = f"{base}_{i}"
            i += 1
        return name

    @staticmethod
    def _qparams(scale, zero_point):
        if scale is None:
            return np.zeros(0, np.float32), np.zeros(0, np.int32)
        scales = np.atleast_1d(np.asarray(scale, np.float32))
        if zero_point is None:
            zero_point = 0
        zps = np.atleast_1d(np.asarray(zero_point, np.int64)).astype(np.int32)
        if zps.size == 1 and scales.size > 1:
            zps = np.full(scales.size, zps[0], np.int32)
        return scales, zps

    def input(self, name: str, shape: Sequence, dtype: str = "uint8", scale=None, zero_point=None) -> Tensor:
        """A graph input; `None` or -1 in `shape` marks a dimension that may vary (e.g. batch)."""
        dims = tuple(-1 if d is None else int(d) for d in shape)
        scales, zps = self._qparams(scale, zero_point)
        t = self._add(Tensor(name, dtype, KIND_INPUT, dims, scales, zps))
        self.inputs.append(t)
        return t

    def constant(self, name: str, data: np.ndarray, dtype: str | None = None, scale=None, zero_point=None,
                 axis: int = 0, block_sparse: int | None = None, sparse_index: str | None = None) -> Tensor:
        """dtype "int4" / "int2": the values are packed two / four to a byte (docs/format.md).
        block_sparse=B (int8): stored as 1 x B blocks of the last axis, all-zero blocks left out,
        found by the index `sparse_index` ("columns" or "bitmap"; None: the smaller)."""
        if dtype is not None and dtype not in DTYPES:
            raise ValueError(f"constant '{name}': unknown dtype '{dtype}'")
        if dtype is not None and dtype not in NUMPY_DTYPES:
            arr = np.ascontiguousarray(np.asarray(data))
            lo, hi = VALUE_RANGES[dtype]
            if arr.ndim == 0 or not np.issubdtype(arr.dtype, np.integer) or arr.size == 0 or arr.min() < lo \
                    or arr.max() > hi:
                raise ValueError(f"constant '{name}': {dtype} needs integers in [{lo}, {hi}] of rank >= 1")
            arr = arr.astype(np.int8)
            encoding = "packed"
        else:
            arr = np.ascontiguousarray(data if dtype is None else np.asarray(data).astype(NUMPY_DTYPES[dtype]))
            dtype = {np.dtype(v): k for k, v in NUMPY_DTYPES.items()}.get(arr.dtype)
            if dtype is None:
                raise ValueError(f"constant '{name}': unsupported dtype {arr.dtype}")
            encoding = "dense"
        if block_sparse is not None:
            if not set(SPARSE_INDEXES.values()) <= set(DTYPE_ENCODINGS[dtype]) or arr.ndim == 0 or block_sparse < 1 \
                    or arr.shape[-1] % block_sparse:
                raise ValueError(f"constant '{name}': block_sparse={block_sparse} needs a dtype that allows it "
                                 f"({[d for d, e in DTYPE_ENCODINGS.items() if 'block_sparse' in e]}) and a block "
                                 f"size dividing the last dimension {arr.shape[-1:]}")
            if sparse_index not in (None, *SPARSE_INDEXES):
                raise ValueError(f"constant '{name}': sparse_index={sparse_index!r}, expected one of "
                                 f"{list(SPARSE_INDEXES)} or None")
            encoding = SPARSE_INDEXES[sparse_index or smaller_sparse_index(arr, block_sparse)]
        elif sparse_index is not None:
            raise ValueError(f"constant '{name}': sparse_index={sparse_index!r} without block_sparse")
        scales, zps = self._qparams(scale, zero_point)
        return self._add(Tensor(self._fresh(name), dtype, KIND_CONSTANT, arr.shape, scales, zps, axis, arr, encoding,
                                block_sparse or 0))

    def activation(self, name: str, dtype: str = "uint8", scale=None, zero_point=None) -> Tensor:
        scales, zps = self._qparams(scale, zero_point)
        return self._add(Tensor(self._fresh(name), dtype, KIND_ACTIVATION, (), scales, zps))

    def output(self, *tensors: Tensor) -> None:
        self.outputs.extend(tensors)

    # -- ops -----------------------------------------------------------------------------

    def op(self, type: str, inputs: Iterable[Tensor], outputs: Iterable[Tensor], name: str | None = None,
           **attrs) -> None:
        if type not in OP_TYPES:
            raise ValueError(f"unknown op type '{type}'")
        name = name or f"{type.lower()}_{len(self.ops)}"
        self.ops.append(_Op(type, name, list(inputs), list(outputs), attrs))

    def _unary(self, type: str, x: Tensor, scale, zero_point, name, dtype="uint8", _inputs=None, **attrs) -> Tensor:
        """One output of this dtype and quantization; the inputs are [x] unless given."""
        y = self.activation(name or f"{type.lower()}_{len(self.ops)}", dtype, scale, zero_point)
        self.op(type, _inputs or [x], [y], name, **attrs)
        return y

    def _same_q(self, type, x, name, **attrs) -> Tensor:
        return self._unary(type, x, x.scales, x.zero_points, name, dtype=x.dtype, **attrs)

    def quantize(self, x: Tensor, scale: float, zero_point: int, name=None) -> Tensor:
        return self._unary("QUANTIZE", x, scale, zero_point, name)

    def dequantize(self, x: Tensor, name=None) -> Tensor:
        return self._unary("DEQUANTIZE", x, None, None, name, dtype="float32")

    def conv2d(self, x: Tensor, w: Tensor, b: Tensor, scale: float, zero_point: int, stride=1, padding=0,
               dilation=1, groups: int = 1, act_min: int = 0, act_max: int = 255, name=None) -> Tensor:
        """NHWC input, OHWI int8 weights (per output channel scales), int32 bias."""
        y = self.activation(name or f"conv_{len(self.ops)}", "uint8", scale, zero_point)
        self.op("CONV2D", [x, w, b], [y], name, strides=_pair(stride, "stride"), pads=_pads(padding),
                dilations=_pair(dilation, "dilation"), groups=int(groups), act_min=act_min, act_max=act_max)
        return y

    def fully_connected(self, x: Tensor, w: Tensor, b: Tensor, scale: float | None, zero_point: int | None,
                        act_min: int = 0, act_max: int = 255, name=None, wide: bool = False,
                        input_bound: int | None = None) -> Tensor:
        """scale None: a float32 output, the accumulator times s_in * s_w[c] (no requantization).
        wide: an int32 output of 16-bit range (zero point 0), the real value over `scale` rounded.
        input_bound: x is wide (int32, zero point 0), read within +-input_bound (1 .. 32767), with
        dense int8 weights."""
        dtype = "int32" if wide else ("uint8" if scale is not None else "float32")
        y = self.activation(name or f"fc_{len(self.ops)}", dtype, scale, 0 if wide else zero_point)
        attrs = dict(act_min=act_min, act_max=act_max)
        if input_bound is not None:
            attrs["input_bound"] = int(input_bound)
        self.op("FULLY_CONNECTED", [x, w, b], [y], name, **attrs)
        return y

    def _binary(self, type: str, a: Tensor, b: Tensor, scale, zero_point, act_min, act_max, name,
                wide: bool = False) -> Tensor:
        y = self.activation(name or f"{type.lower()}_{len(self.ops)}", "int32" if wide else "uint8", scale,
                            0 if wide else zero_point)
        self.op(type, [a, b], [y], name, act_min=act_min, act_max=act_max)
        return y

    def add(self, a: Tensor, b: Tensor, scale: float, zero_point: int, act_min: int = 0, act_max: int = 255,
            name=None, wide: bool = False) -> Tensor:
        """wide: an int32 output of 16-bit range (zero point 0); the operands may be wide too."""
        return self._binary("ADD", a, b, scale, zero_point, act_min, act_max, name, wide)

    def mul(self, a: Tensor, b: Tensor, scale: float, zero_point: int, act_min: int = 0, act_max: int = 255,
            name=None) -> Tensor:
        return self._binary("MUL", a, b, scale, zero_point, act_min, act_max, name)

    def transpose(self, x: Tensor, perm: Sequence[int], name=None) -> Tensor:
        """y's dimension i is x's dimension perm[i]."""
        return self._unary("TRANSPOSE", x, x.scales if x.scales.size else None,
                           x.zero_points if x.scales.size else None, name, dtype=x.dtype, perm=[int(p) for p in perm])

    def concat(self, xs: Sequence[Tensor], axis: int, scale: float, zero_point: int, name=None) -> Tensor:
        y = self.activation(name or f"concat_{len(self.ops)}", "uint8", scale, zero_point)
        self.op("CONCAT", list(xs), [y], name, axis=int(axis))
        return y

    def avg_pool(self, x: Tensor, kernel, scale: float, zero_point: int, stride=None, padding=0,
                 count_include_pad: bool = True, act_min: int = 0, act_max: int = 255, name=None) -> Tensor:
        return self._unary("AVG_POOL", x, scale, zero_point, name, kernel=_pair(kernel, "kernel"),
                           strides=_pair(kernel if stride is None else stride, "stride"), pads=_pads(padding),
                           count_include_pad=int(bool(count_include_pad)), act_min=act_min, act_max=act_max)

    def max_pool(self, x: Tensor, kernel, stride=None, padding=0, act_min: int = 0, act_max: int = 255,
                 name=None) -> Tensor:
        return self._same_q("MAX_POOL", x, name, kernel=_pair(kernel, "kernel"),
                            strides=_pair(kernel if stride is None else stride, "stride"), pads=_pads(padding),
                            act_min=act_min, act_max=act_max)

    def global_avg_pool(self, x: Tensor, scale: float, zero_point: int, act_min: int = 0, act_max: int = 255,
                        name=None) -> Tensor:
        return self._unary("GLOBAL_AVG_POOL", x, scale, zero_point, name, act_min=act_min, act_max=act_max)

    def reshape(self, x: Tensor, shape: Sequence[int], name=None) -> Tensor:
        """`shape` may hold one -1 (inferred) and 0s (copy the input's dimension at that index)."""
        return self._same_q("RESHAPE", x, name, shape=[int(d) for d in shape])

    def slice(self, x: Tensor, axis: int, start: int, end: int, name=None) -> Tensor:
        """Indices [start, min(end, size)) of `axis`; an `end` past any size keeps the rest."""
        return self._same_q("SLICE", x, name, axis=int(axis), start=int(start), end=int(end))

    def lut(self, x: Tensor, table: np.ndarray, scale: float, zero_point: int, name=None, wide: bool = False) -> Tensor:
        """y = table[x]; wide: an int32 table (entries within +-32767) into a wide output (zero point 0)."""
        t = self.constant(f"{name or 'lut'}_table", np.asarray(table, np.int32 if wide else np.uint8))
        y = self.activation(name or f"lut_{len(self.ops)}", "int32" if wide else "uint8", scale,
                            0 if wide else zero_point)
        self.op("LUT", [x, t], [y], name)
        return y

    def clamp(self, x: Tensor, act_min: int, act_max: int, name=None) -> Tensor:
        return self._same_q("CLAMP", x, name, act_min=act_min, act_max=act_max)

    # -- transformer ops -----------------------------------------------------------------

    def gather(self, table: Tensor, ids: Tensor, scale: float, zero_point: int, positions: int = 0,
               padding_id: int = 0, name=None, wide: bool = False) -> Tensor:
        """Rows of an int8 [rows, width] table with per-row scales (axis 0) for int32 ids,
        requantized (to a wide int32 output with `wide`); with `positions` 1, row i of each
        sequence is table row i (the ids give only the shape: position embeddings); with 2, the
        number of ids other than `padding_id` up to and including token i, 0 at `padding_id`
        (RoBERTa's position ids, left or right padded)."""
        counted = {"padding_id": int(padding_id)} if positions == 2 else {}
        return self._unary("GATHER", table, scale, 0 if wide else zero_point, name, dtype="int32" if wide else "uint8",
                           positions=int(positions), _inputs=[table, ids], **counted)

    def layer_norm(self, x: Tensor, gamma: np.ndarray, beta: np.ndarray, scale: float, zero_point: int,
                   act_min: int = 0, act_max: int = 255, name=None, wide: bool = False) -> Tensor:
        """Over the last axis; gamma and beta are stored as float32 and turned into integer
        multipliers and biases at load (docs/quantization.md). wide: an int32 output of 16-bit
        range (zero point 0), for a wide ADD (a residual stream)."""
        base = name or f"layer_norm_{len(self.ops)}"
        g = self.constant(f"{base}_gamma", np.asarray(gamma, np.float32))
        b = self.constant(f"{base}_beta", np.asarray(beta, np.float32))
        if wide:
            return self._unary("LAYER_NORM", x, scale, 0, name, dtype="int32", _inputs=[x, g, b])
        return self._unary("LAYER_NORM", x, scale, zero_point, name, act_min=act_min, act_max=act_max,
                           _inputs=[x, g, b])

    def softmax(self, x: Tensor, mask: Tensor | None = None, name=None, relative: np.ndarray | None = None) -> Tensor:
        """Over the last axis of uint8 logits; `mask` ([batch, n], int32, nonzero = attend)
        leaves positions out; `relative` (float [heads, 2 R - 1]) is a relative-position bias
        added to logit [b, h, i, j] from entry [h, j - i + R - 1] (x [B, heads, Q, K]). The output
        has scale 1/256 and zero point 0."""
        from .quant import softmax_constants

        base = name or f"softmax_{len(self.ops)}"
        table, steps = softmax_constants(x.scale, relative)
        inputs = [x, self.constant(f"{base}_exp", table)]
        inputs += [mask] if mask is not None else []
        if steps is None:
            return self._unary("SOFTMAX", x, 1.0 / 256, 0, name, _inputs=inputs)
        inputs.append(self.constant(f"{base}_relative", steps))
        return self._unary("SOFTMAX", x, 1.0 / 256, 0, name, relative=1, _inputs=inputs)

    def matmul(self, a: Tensor, b: Tensor, scale: float, zero_point: int, transpose_b: bool = False,
               alpha: float = 1.0, act_min: int = 0, act_max: int = 255, name=None) -> Tensor:
        """alpha * a [..., m, k] times b [..., k, n] (or b [..., n, k] with transpose_b), same
        batch dims."""
        return self._unary("MATMUL", a, scale, zero_point, name, transpose_b=int(bool(transpose_b)),
                           alpha=float(alpha), act_min=act_min, act_max=act_max, _inputs=[a, b])

    def masked_mean(self, x: Tensor, mask: Tensor, name=None) -> Tensor:
        """Mean of x [batch, seq, channels] over the positions where the int32 mask
        [batch, seq] is nonzero, as float32 [batch, channels]."""
        return self._unary("MASKED_MEAN", x, None, None, name, dtype="float32", _inputs=[x, mask])

    def apply_mask(self, x: Tensor, mask: Tensor, name=None) -> Tensor:
        """x [batch, seq, ...] where the int32 mask [batch, seq] is nonzero, x's zero point (the
        real 0) where it is 0."""
        return self._same_q("APPLY_MASK", x, name, _inputs=[x, mask])

    # -- serialisation -------------------------------------------------------------------

    def to_bytes(self, outputs: Sequence[Tensor] | None = None) -> bytes:
        """The file image; `outputs` replaces the graph outputs (e.g. to expose intermediate
        tensors for debugging)."""
        outputs = self.outputs if outputs is None else list(outputs)
        index = {id(t): i for i, t in enumerate(self.tensors)}

        def idx(t: Tensor) -> int:
            if id(t) not in index:
                raise ValueError(f"tensor '{t.name}' does not belong to this graph")
            return index[id(t)]

        desc = bytearray()

        def u8(v): desc.extend(struct.pack("<B", v))
        def u16(v): desc.extend(struct.pack("<H", v))
        def u32(v): desc.extend(struct.pack("<I", v))
        def i32(v): desc.extend(struct.pack("<i", v))
        def u64(v): desc.extend(struct.pack("<Q", v))

        def string(s: str):
            b = s.encode("utf-8")
            u32(len(b))
            desc.extend(b)

        u32(len(self.metadata))
        for k, v in self.metadata.items():
            string(str(k))
            string(str(v))

        blobs, data_size, features = [], 0, 0
        u32(len(self.tensors))
        for t in self.tensors:
            string(t.name)
            u8(DTYPES[t.dtype])
            u8(t.kind)
            u8(len(t.shape))
            u8(ENCODINGS[t.encoding])
            if t.encoding in ENCODING_FEATURES:
                features |= 1 << FEATURES[ENCODING_FEATURES[t.encoding]]
            for d in t.shape:
                i32(d)
            u32(t.scales.size)
            i32(t.axis)
            desc.extend(np.asarray(t.scales, "<f4").tobytes())
            desc.extend(np.asarray(t.zero_points, "<i4").tobytes())
            if t.data is not None:
                raw = tensor_bytes(t)
                u64(data_size)
                u64(len(raw))
                blobs.append((data_size, raw))
                data_size += -(-len(raw) // DATA_ALIGNMENT) * DATA_ALIGNMENT
            else:
                u64(0)
                u64(0)

        for group in (self.inputs, outputs):
            u32(len(group))
            for t in group:
                u32(idx(t))

        u32(len(self.ops))
        for op in self.ops:
            u16(OP_TYPES[op.type])
            u16(0)
            string(op.name)
            for group in (op.inputs, op.outputs):
                u32(len(group))
                for t in group:
                    u32(idx(t))
            u32(len(op.attrs))
            for key, value in op.attrs.items():
                string(key)
                if isinstance(value, (bool, int, np.integer)):
                    u8(ATTR_INT)
                    desc.extend(struct.pack("<q", int(value)))
                elif isinstance(value, (float, np.floating)):
                    u8(ATTR_FLOAT)
                    desc.extend(struct.pack("<f", float(value)))
                else:
                    vals = list(value)
                    is_float = any(isinstance(v, (float, np.floating)) for v in vals)
                    u8(ATTR_FLOATS if is_float else ATTR_INTS)
                    u32(len(vals))
                    desc.extend(struct.pack(f"<{len(vals)}{'f' if is_float else 'q'}", *vals))

        data_offset = -(-(HEADER_SIZE + len(desc)) // DATA_ALIGNMENT) * DATA_ALIGNMENT
        header = struct.pack("<4sHHIIQQQQ", MAGIC, VERSION_MAJOR, VERSION_MINOR if features else 0, HEADER_SIZE,
                             features, HEADER_SIZE, len(desc), data_offset, data_size)
        out = bytearray(data_offset + data_size)
        out[:HEADER_SIZE] = header
        out[HEADER_SIZE:HEADER_SIZE + len(desc)] = desc
        for off, raw in blobs:
            out[data_offset + off:data_offset + off + len(raw)] = raw
        return bytes(out)

    def save(self, path) -> None:
        with open(path, "wb") as f:
            f.write(self.to_bytes())
