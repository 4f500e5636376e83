// NEON twins of the LAYER_NORM and SOFTMAX reference kernels (bit-exact), aarch64 and armv7.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../params.h"

namespace intinfer {

// The per-channel output stage of LAYER_NORM as vectors load it, padded to a multiple of 4.
struct PackedLayerNormNeon {
  std::vector<int32_t> multiplier, left_shift, neg_right_shift, sign, bias;
};
PackedLayerNormNeon pack_layer_norm_neon(const LayerNormParams& p);

void layer_norm_u8__neon(const LayerNormParams& p, const PackedLayerNormNeon& w, const uint8_t* x, uint8_t* y,
                         size_t row_begin, size_t row_end);
void layer_norm_wide__neon(const LayerNormParams& p, const PackedLayerNormNeon& w, const int32_t* x, uint8_t* y,
                           size_t row_begin, size_t row_end);

// The exponentials are looked up one by one (NEON has no gather); the normalization is vector.
void softmax_u8__neon(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                      size_t row_begin, size_t row_end);

}  // namespace intinfer
