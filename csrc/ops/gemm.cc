#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../kernels/sparse.h"
#include "intinfer/model.h"

namespace intinfer {

Gemm::Gemm(const GemmRow& row, const QuantizedWeights& w, const WeightFormat& format, const void* codes,
           const OutputStage& out)
    : row_(row),
      packed_(row_.tile, codes, format, w.channels, w.depth, w.bias.data(), w.multipliers, w.output_scales,
              w.row_length),
      view_(packed_.view()),
      out_(out) {}

void Gemm::run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
               size_t block_end) const {
  block_end = block_end < column_blocks() ? block_end : column_blocks();
  std::vector<uint8_t> scratch(packed_.scratch_bytes());
  row_.run(view_, out_, x, x_stride, y, y_stride, rows, block_begin, block_end, scratch.data());
}

namespace {

// The share of the weights' groups of 4 reduction indices (the kernels' groups, and the 1 x 4
// blocks of bench/sparse_gemm.py, where the crossovers were measured) that hold a non-zero code,
// whatever the file's block.
double group_density(const BlockSparseRows& blocks, size_t channels, size_t depth) {
  const size_t groups = (depth + 3) / 4, block = blocks.block();
  std::vector<uint8_t> used(groups);
  size_t count = 0;
  for (size_t c = 0; c < channels; ++c) {
    std::fill(used.begin(), used.end(), uint8_t{0});
    blocks.for_each(c, [&](size_t k, const int8_t* values) {
      for (size_t i = 0; i < block; ++i)
        if (values[i] != 0) used[(k + i) / 4] = 1;
    });
    count += static_cast<size_t>(std::count(used.begin(), used.end(), uint8_t{1}));
  }
  return static_cast<double>(count) / static_cast<double>(channels * groups);
}

// INTINFER_SPARSE_KERNELS=always keeps block-sparse weights on the sparse row whatever the
// crossover (bench/sparse_gemm.py measures the crossovers so); unset or empty: the crossover.
bool sparse_kernels_always() {
  const char* v = std::getenv("INTINFER_SPARSE_KERNELS");
  if (v == nullptr || *v == '\0') return false;
  if (std::string(v) == "always") return true;
  throw ModelError("INTINFER_SPARSE_KERNELS='" + std::string(v) +
                   "' is not understood: 'always', or unset for each path's crossover");
}

}  // namespace

std::unique_ptr<Gemm> make_gemm(KernelTable<GemmRow> table, Features features, const QuantizedWeights& w,
                                const OutputStage& out, bool one_row) {
  const GemmRow& row = select(table, features, w.format, w.depth);
  if (w.format.layout != WeightFormat::Layout::kBlockSparse || sparse_kernels_always())
    return std::make_unique<Gemm>(row, w, out);
  WeightFormat dense_format = w.format;
  dense_format.layout = WeightFormat::Layout::kDense;
  const GemmRow& dense = select(table, features, dense_format, w.depth);
  const float crossover = dense.sparse_crossover.at(w.depth, one_row);
  const BlockSparseRows blocks(w.codes, w.format.block_index, w.channels, w.depth, w.row_length);
  const double density = group_density(blocks, w.channels, w.depth);
  // The densified copy lives only while the dense row packs it (a row that read weights in place,
  // nr = 0, states no crossover below 1).
  if (density <= crossover || dense.tile.nr == 0) return std::make_unique<Gemm>(row, w, out);
  std::vector<int8_t> codes(w.channels * w.depth, 0);
  for (size_t c = 0; c < w.channels; ++c)
    blocks.for_each(c, [&](size_t k, const int8_t* values) {
      std::memcpy(codes.data() + c * w.depth + k, values, blocks.block());
    });
  return std::make_unique<Gemm>(dense, w, dense_format, codes.data(), out);
}

}  // namespace intinfer
