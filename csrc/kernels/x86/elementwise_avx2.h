// AVX2 twins of the elementwise reference kernels (same signatures, bit-exact).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../params.h"

namespace intinfer {

void add_u8__avx2(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n);
void mul_u8__avx2(const MulParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n);
void quantize_f32_u8__avx2(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point);

}  // namespace intinfer
