// A weight tensor's format as data (in the manner of ggml's type traits and XNNPACK's configs):
// the kernel tables (tables.h) select on it, the packer (pack.h) lays it out from it and the
// accumulator bound is proven from it; nothing else in the engine knows an element's width.
#pragma once

#include <cstddef>
#include <cstdint>

namespace intinfer {

struct WeightFormat {
  enum class Scale : uint8_t { kPerTensor, kPerChannel };
  enum class Layout : uint8_t { kDense, kBlockSparse };
  // How the file says which blocks are stored (docs/format.md): a column per block (block_sparse)
  // or a bit per block position (block_bitmap). The packer and the weights' byte count read it;
  // kernels see the packer's groups.
  enum class BlockIndex : uint8_t { kColumns, kBitmap };

  uint8_t bits = 8;         // element width: 8; 4 or 2 (packed sub-byte); 16 for MATMUL's per-call operand
  bool is_signed = true;
  int32_t max_abs = 127;    // symmetric codes within [-max_abs, max_abs]
  Scale scale = Scale::kPerChannel;
  Layout layout = Layout::kDense;
  uint32_t block_k = 1;     // block-sparse: stored blocks of 1 x block_k along the reduction
  BlockIndex block_index = BlockIndex::kColumns;
};

// int8 per-channel symmetric weights of CONV2D and FULLY_CONNECTED.
constexpr WeightFormat kWeightsS8{};
// The same in 4 and 2 bits, in the file's packed encoding (docs/format.md; codes.h): codes within
// [-7, 7] and [-1, 1].
constexpr WeightFormat kWeightsS4{4, true, 7, WeightFormat::Scale::kPerChannel, WeightFormat::Layout::kDense, 1};
constexpr WeightFormat kWeightsS2{2, true, 1, WeightFormat::Scale::kPerChannel, WeightFormat::Layout::kDense, 1};
// int8 weights in the file's block_sparse or block_bitmap encoding (docs/format.md; sparse.h):
// blocks of 1 x `block` codes along the reduction, the others zero.
constexpr WeightFormat block_sparse_s8(uint32_t block,
                                       WeightFormat::BlockIndex index = WeightFormat::BlockIndex::kColumns) {
  return {8, true, 127, WeightFormat::Scale::kPerChannel, WeightFormat::Layout::kBlockSparse, block, index};
}
// MATMUL's second operand minus its zero point, packed per call: int16 codes within [-255, 255].
constexpr WeightFormat kWeightsS16{16, true, 255, WeightFormat::Scale::kPerTensor, WeightFormat::Layout::kDense, 1};

// The largest |sum over `depth` products| of activations of magnitude at most `input_max` (uint8:
// 255; a FULLY_CONNECTED's wide input: its input bound) with codes of `format`: the one
// accumulator bound, which a load proves below 2^31.
constexpr int64_t max_accumulator(const WeightFormat& format, size_t depth, int64_t input_max = 255) {
  return input_max * format.max_abs * static_cast<int64_t>(depth);
}

// Whether two products of an activation shifted to int8 (x - 128, within [-128, 127]) and codes
// of `format` sum exactly in int16 (2 * 128 * max_abs <= 32767: codes within +-127). Kernels that
// multiply 8-bit operands (SMULL + SMLAL) and widen only every second product rely on it.
constexpr bool pairs_fit_int16(const WeightFormat& format) {
  return format.bits == 8 && 2 * 128 * format.max_abs <= 32767;
}

}  // namespace intinfer
