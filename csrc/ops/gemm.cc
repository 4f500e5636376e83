#include "gemm.h"

#include <vector>

namespace intinfer {

Gemm::Gemm(const GemmRow& row, const QuantizedWeights& w, const OutputStage& out)
    : row_(row),
      packed_(row_.tile, w.codes, w.format, w.channels, w.depth, w.bias.data(), w.multipliers, w.output_scales,
              w.row_length),
      view_(packed_.view()),
      out_(out) {}

void Gemm::run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
               size_t block_end) const {
  block_end = block_end < column_blocks() ? block_end : column_blocks();
  std::vector<uint8_t> scratch(packed_.scratch_bytes());
  row_.run(view_, out_, x, x_stride, y, y_stride, rows, block_begin, block_end, scratch.data());
}

}  // namespace intinfer
