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
void add_wide__avx2(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                    size_t n);
void quantize_f32_u8__avx2(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point);

}  // namespace intinfer
