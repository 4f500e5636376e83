// NEON twins of the pooling, LUT and dequantize reference kernels (same signatures, bit-exact).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../params.h"

namespace intinfer {

void avg_pool_u8__neon(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);
void max_pool_u8__neon(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);
#if defined(__aarch64__)
// aarch64 only: TBL/TBX over four registers look up 64 entries at once, so a 256-entry table
// is four lookups; 32-bit NEON's VTBL reaches 32 (and flushes subnormal products to zero, which
// rules out the dequantize multiply there).
void lut_u8__neon(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);
void dequantize_u8_f32__neon(const uint8_t* x, float* y, size_t n, float scale, int32_t zero_point);
#endif

}  // namespace intinfer
