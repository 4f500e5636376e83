// AVX2 twins of the pooling, LUT and dequantize reference kernels (same signatures, bit-exact).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../params.h"

namespace intinfer {

void avg_pool_u8__avx2(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);
void max_pool_u8__avx2(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);
// 256-entry table lookup with vpshufb: 16 lookups of 16 entries, each kept where the high
// nibble of x selects its chunk.
void lut_u8__avx2(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);
void dequantize_u8_f32__avx2(const uint8_t* x, float* y, size_t n, float scale, int32_t zero_point);

}  // namespace intinfer
