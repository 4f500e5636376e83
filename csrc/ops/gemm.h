// y = output_stage(x W^T + bias) over rows of x, on the kernels of the model's ISA. Used by
// FULLY_CONNECTED and by CONV2D (directly for 1x1 convs, through im2col otherwise).
#pragma once

#include <cstdint>
#include <memory>

#include "isa_kernels.h"
#include "pack.h"

namespace intinfer {

class Gemm {
 public:
  Gemm(const PackedWeights& weights, const OutputStage& out, Isa isa);

  // Rows [0, rows) of x (row stride x_stride) into y (row stride y_stride elements), for the
  // output channels of column blocks [block_begin, block_end) (all by default); the output is
  // float when the weights were packed for a float output.
  void run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin = 0,
           size_t block_end = SIZE_MAX) const;
  // How many column blocks run() can split the output channels into.
  size_t column_blocks() const;
  bool float_output() const { return !w_.output_scales.empty(); }

 private:
  const PackedWeights& w_;
  OutputStage out_;
  std::unique_ptr<GemmKernel> kernel_;  // null: the reference
};

}  // namespace intinfer
