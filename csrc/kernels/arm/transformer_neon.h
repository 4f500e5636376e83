// NEON twins of the LAYER_NORM and SOFTMAX reference kernels (bit-exact), aarch64 and armv7.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../output_stage.h"
#include "../params.h"

namespace intinfer {

// `w`: pack_layer_norm(p, 4).

void layer_norm_u8__neon(const LayerNormParams& p, const PackedLayerNorm& w, const uint8_t* x, uint8_t* y,
                         size_t row_begin, size_t row_end);
void layer_norm_wide__neon(const LayerNormParams& p, const PackedLayerNorm& w, const int32_t* x, uint8_t* y,
                           size_t row_begin, size_t row_end);

// The exponentials are looked up one by one (NEON has no gather); the normalization is vector.
void softmax_u8__neon(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                      size_t row_begin, size_t row_end);

}  // namespace intinfer
