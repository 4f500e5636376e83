// AVX2 twins of the LAYER_NORM and SOFTMAX reference kernels (bit-exact).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../output_stage.h"
#include "../params.h"

namespace intinfer {

// `w`: pack_layer_norm(p, 8).

void layer_norm_u8__avx2(const LayerNormParams& p, const PackedLayerNorm& w, const uint8_t* x, uint8_t* y,
                         size_t row_begin, size_t row_end);
void layer_norm_wide__avx2(const LayerNormParams& p, const PackedLayerNorm& w, const int32_t* x, uint8_t* y,
                           size_t row_begin, size_t row_end);

void softmax_u8__avx2(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                      size_t row_begin, size_t row_end);

}  // namespace intinfer
