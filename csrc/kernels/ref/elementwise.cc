#include <cmath>

#include "kernels.h"

namespace intinfer {

void add_u8__ref(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                 size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const int32_t av = (static_cast<int32_t>(a[i * a_step]) - p.a_zero_point) * (1 << AddParams::kLeftShift);
    const int32_t bv = (static_cast<int32_t>(b[i * b_step]) - p.b_zero_point) * (1 << AddParams::kLeftShift);
    const int32_t sum = requantize(av, p.a_multiplier) + requantize(bv, p.b_multiplier);
    y[i] = p.out.apply(sum, p.out_multiplier);
  }
}

void mul_u8__ref(const MulParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                 size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const int32_t prod = (static_cast<int32_t>(a[i * a_step]) - p.a_zero_point) *
                         (static_cast<int32_t>(b[i * b_step]) - p.b_zero_point);
    y[i] = p.out.apply(prod, p.multiplier);
  }
}

void requantize_u8__ref(const uint8_t* x, size_t n, int32_t in_zero_point, QuantizedMultiplier m,
                        const OutputStage& out, uint8_t* y) {
  for (size_t i = 0; i < n; ++i) y[i] = out.apply(static_cast<int32_t>(x[i]) - in_zero_point, m);
}

void lut_u8__ref(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = table[x[i]];
}

void narrow_wide_s16__ref(const int32_t* x, int16_t* y, size_t n, int32_t bound) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<int16_t>(x[i] < -bound ? -bound : (x[i] > bound ? bound : x[i]));
}

void lut_wide__ref(const int32_t* table, const uint8_t* x, int32_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = table[x[i]];
}

void clamp_u8__ref(const uint8_t* x, uint8_t* y, size_t n, uint8_t lo, uint8_t hi) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
}

void quantize_f32_u8__ref(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point) {
  for (size_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    // Clamp before rounding so that huge values and infinities cannot overflow the cast.
    if (std::isnan(v)) v = 0.0f;
    v = v < -512.0f ? -512.0f : (v > 512.0f ? 512.0f : v);
    const int32_t q = static_cast<int32_t>(std::nearbyint(v)) + zero_point;
    y[i] = clamp_u8(q, 0, 255);
  }
}

void dequantize_u8_f32__ref(const uint8_t* x, float* y, size_t n, float scale, int32_t zero_point) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zero_point) * scale;
}

}  // namespace intinfer
