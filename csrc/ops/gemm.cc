#include "gemm.h"

#include "../kernels/ref/kernels.h"

namespace intinfer {

Gemm::Gemm(const PackedWeights& weights, const OutputStage& out, Isa isa)
    : w_(weights), out_(out), kernel_(make_gemm_kernel(isa, weights, out)) {}

size_t Gemm::column_blocks() const { return kernel_ ? kernel_->column_blocks() : 1; }

void Gemm::run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
               size_t block_end) const {
  block_end = block_end < column_blocks() ? block_end : column_blocks();
  if (kernel_) {
    kernel_->run(x, x_stride, y, y_stride, rows, block_begin, block_end);
    return;
  }
  GemmParams p{1, w_.channels, w_.depth, out_, w_.multipliers.data()};
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* xr = x + r * x_stride;
    if (float_output())
      gemm_u8s8_f32__ref(p, w_.output_scales.data(), xr, w_.weights, w_.bias.data(), static_cast<float*>(y) + r * y_stride, 0, 1);
    else
      gemm_u8s8__ref(p, xr, w_.weights, w_.bias.data(), static_cast<uint8_t*>(y) + r * y_stride, 0, 1);
  }
}

}  // namespace intinfer
