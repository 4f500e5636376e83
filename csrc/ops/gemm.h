// y = output_stage(x W^T + bias) over rows of x, on a row of the GEMM kernel table (the op's
// select() for its CPU features and the weights' format). Used by FULLY_CONNECTED and by CONV2D
// (directly for 1x1 convs, through im2col otherwise).
#pragma once

#include <cstdint>
#include <memory>

#include "../kernels/tables.h"
#include "weights.h"

namespace intinfer {

class Gemm {
 public:
  Gemm(const GemmRow& row, const QuantizedWeights& weights, const OutputStage& out)
      : Gemm(row, weights, weights.format, weights.codes, out) {}
  // The weights' `codes` in `format` instead of their own (a densified copy, packed here and not
  // kept: `row` packs its weights).
  Gemm(const GemmRow& row, const QuantizedWeights& weights, const WeightFormat& format, const void* codes,
       const OutputStage& out);

  // Rows [0, rows) of x (row stride x_stride) into y (row stride y_stride elements), for the
  // output channels of column blocks [block_begin, block_end) (all by default); the output is
  // float when the weights were read for a float output.
  void run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin = 0,
           size_t block_end = SIZE_MAX) const;
  // How many column blocks run() can split the output channels into.
  size_t column_blocks() const { return view_.n_tiles; }
  bool float_output() const { return view_.output_scales != nullptr; }
  // The micro-kernel's rows per tile: the grain of a split over rows.
  size_t row_tile() const { return row_.tile.mr; }
  // Bytes of the weights in the kernel's layout.
  size_t held_bytes() const { return packed_.bytes(); }

 private:
  const GemmRow& row_;
  PackedWeights packed_;
  PackedView view_;
  OutputStage out_;
};

// The GEMM of `weights` on `features`: the row of `table` for their format, except that
// block-sparse weights denser than the crossover of the path's dense int8 row
// (WeightKernelRow::sparse_crossover) are densified and run on that row, where they are faster.
// `one_row`: the layer may multiply one row per sample (a FULLY_CONNECTED, whose input's rank
// the op does not know at load), so the lower of the one-row and the several-rows crossovers.
std::unique_ptr<Gemm> make_gemm(KernelTable<GemmRow> table, Features features, const QuantizedWeights& weights,
                                const OutputStage& out, bool one_row);

}  // namespace intinfer
