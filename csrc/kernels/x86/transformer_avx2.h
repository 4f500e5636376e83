// AVX2 twins of the LAYER_NORM and SOFTMAX reference kernels (bit-exact).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../params.h"

namespace intinfer {

// The per-channel output stage of LAYER_NORM as vectors load it, padded to a multiple of 8.
struct PackedLayerNormAvx2 {
  std::vector<int32_t> multiplier, left_shift, right_shift, sign, bias;
};
PackedLayerNormAvx2 pack_layer_norm_avx2(const LayerNormParams& p);

void layer_norm_u8__avx2(const LayerNormParams& p, const PackedLayerNormAvx2& w, const uint8_t* x, uint8_t* y,
                         size_t row_begin, size_t row_end);
void layer_norm_wide__avx2(const LayerNormParams& p, const PackedLayerNormAvx2& w, const int32_t* x, uint8_t* y,
                           size_t row_begin, size_t row_end);

void softmax_u8__avx2(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                      size_t row_begin, size_t row_end);

}  // namespace intinfer
