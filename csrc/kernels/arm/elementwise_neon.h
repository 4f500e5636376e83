// NEON twins of the elementwise reference kernels (same signatures, bit-exact).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../params.h"

namespace intinfer {

void add_u8__neon(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n);
void mul_u8__neon(const MulParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n);
void add_wide__neon(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                    size_t n);
#if defined(__aarch64__)
// aarch64 only: 32-bit NEON has no vector division and flushes subnormals to zero.
void quantize_f32_u8__neon(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point);
#endif

}  // namespace intinfer
