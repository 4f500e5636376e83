// The kernel tables: one per family, rows best first, each row {name, required CPU features,
// what it accepts (weight format and reduction depth), its tile, its entry points}. The last row
// of every table is the reference: it requires nothing and accepts every format the engine reads
// (a format is read only once it has a reference kernel), so select() always finds a row, and an
// op never holds a "no kernel" case of its own. Adding a kernel is a
// kernel file, a row in tables.cc and a line in CMakeLists.txt (docs/kernels.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../core/cpu.h"
#include "pack.h"
#include "params.h"
#include "weight_format.h"

namespace intinfer {

// Rows [0, rows) of x (row stride x_stride bytes), the output channels of column tiles
// [tile_begin, tile_end), into y (row stride y_stride elements): uint8 through `out`, or float
// when w.output_scales is set. `scratch` holds PackedWeights::scratch_bytes().
using GemmFn = void (*)(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                        size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);

// Depthwise convolution over output rows (batch * out_h + oy) [row_begin, row_end); padded taps
// read `zero_row` (in_c copies of the input zero point). w.k is the number of taps.
using DwconvFn = void (*)(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                          uint8_t* y, size_t row_begin, size_t row_end);

// MATMUL of one matrix (MatMulParams: a [m, k], b [k, n] or [n, k]), rows [row_begin, row_end)
// of y [m, n]; `scratch` holds matmul_scratch_bytes(p.k, p.n).
using MatMulFn = void (*)(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t row_begin,
                          size_t row_end, void* scratch);

// The densest block-sparse weights (the share of their blocks stored) that the block-sparse GEMM
// row of a path multiplies faster than the path's dense int8 row, measured by
// bench/sparse_gemm.py for a layer of one row per sample (FULLY_CONNECTED on [batch, K]), and of
// several rows (tokens, pixels) with a reduction below 96 and from 96. 1: the sparse row always.
struct SparseCrossover {
  float one_row = 1, shallow = 1, deep = 1;
  // A layer's crossover at `depth`; one that may multiply a single row per sample takes the lower
  // of the one-row and the several-rows crossovers.
  float at(size_t depth, bool may_be_one_row) const {
    const float rows = depth < 96 ? shallow : deep;
    return may_be_one_row && one_row < rows ? one_row : rows;
  }
};

// A row of a family with weights: `accepts` the weight format and the reduction depth (k of a
// GEMM, taps of a depthwise conv); `tile` is how the packer lays the weights out for `run`.
// Dense int8 GEMM rows give the crossover of their path's block-sparse row: denser weights are
// read densified and run on the dense row (gemm.h).
template <typename Fn>
struct WeightKernelRow {
  const char* name;
  Features required;
  bool (*accepts)(const WeightFormat& format, size_t depth);
  TileLayout tile;
  Fn run;
  SparseCrossover sparse_crossover{};
};
using GemmRow = WeightKernelRow<GemmFn>;
using DwconvRow = WeightKernelRow<DwconvFn>;

struct ElementwiseRow {
  const char* name;
  Features required;
  void (*add)(const AddParams&, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t*, size_t);
  void (*mul)(const MulParams&, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t*, size_t);
  void (*quantize)(const float*, uint8_t*, size_t, float, int32_t);
  void (*dequantize)(const uint8_t*, float*, size_t, float, int32_t);
  void (*lut)(const uint8_t*, const uint8_t*, uint8_t*, size_t);
  void (*add_wide)(const AddWideParams&, const void*, size_t, const void*, size_t, int32_t*, size_t);
  void (*wide_from_f32)(void* data, size_t n, float scale);  // wide_from_f32__ref's contract
};

struct PoolRow {
  const char* name;
  Features required;
  void (*avg)(const PoolParams&, const uint8_t*, uint8_t*, size_t, size_t);
  void (*max)(const PoolParams&, const uint8_t*, uint8_t*, size_t, size_t);
};

// The transformer ops: LAYER_NORM (rows [row_begin, row_end) of a uint8 or wide input into a
// uint8 or wide output as LayerNormParams::wide_output says, with its output stage packed to
// `width` channels) and SOFTMAX.
struct TransformerRow {
  const char* name;
  Features required;
  size_t width;
  void (*layer_norm_u8)(const LayerNormParams&, const LayerNormView&, const uint8_t*, void*, size_t, size_t);
  void (*layer_norm_wide)(const LayerNormParams&, const LayerNormView&, const int32_t*, void*, size_t, size_t);
  // `scratch` holds SoftmaxParams::n int32.
  void (*softmax)(const SoftmaxParams&, const uint8_t*, const uint8_t* const*, uint8_t*, size_t, size_t,
                  int32_t* scratch);
  // GATHER into a wide output (gather_rows_wide__ref's contract): rows of int8, int4 or int2 codes.
  void (*gather_wide)(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                      const int32_t* rows, size_t n_rows, int32_t* y);
};

struct MatMulRow {
  const char* name;
  Features required;
  MatMulFn run;
};

// A family's rows, best first, reference last.
template <typename Row>
struct KernelTable {
  const Row* rows;
  size_t size;
  const Row* begin() const { return rows; }
  const Row* end() const { return rows + size; }
};

KernelTable<GemmRow> gemm_table();
// The GEMM of a FULLY_CONNECTED's wide input: the same GemmFn with x int16 rows (x_stride in
// bytes; the op narrows the int32 input to its input bound first) and int8 weights.
KernelTable<GemmRow> gemm_s16_table();
KernelTable<DwconvRow> dwconv_table();
KernelTable<ElementwiseRow> elementwise_table();
KernelTable<PoolRow> pool_table();
KernelTable<TransformerRow> transformer_table();
KernelTable<MatMulRow> matmul_table();

// The first row that `features` can run (and, for weights, that accepts `format` at `depth`).
const GemmRow& select(KernelTable<GemmRow> table, Features features, const WeightFormat& format, size_t depth);
const DwconvRow& select(KernelTable<DwconvRow> table, Features features, const WeightFormat& format, size_t depth);
const ElementwiseRow& select(KernelTable<ElementwiseRow> table, Features features);
const PoolRow& select(KernelTable<PoolRow> table, Features features);
const TransformerRow& select(KernelTable<TransformerRow> table, Features features);
const MatMulRow& select(KernelTable<MatMulRow> table, Features features);

// Whether `row` is its table's reference row (ops with a scalar specification of their own,
// CONV2D's direct convolution and MATMUL's, run that instead of a reference GEMM).
template <typename Row>
inline bool is_reference(const Row& row) {
  return row.required == 0;
}

}  // namespace intinfer
