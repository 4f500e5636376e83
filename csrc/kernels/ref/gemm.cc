#include "kernels.h"

namespace intinfer {
namespace {

template <typename W>
int32_t dot(const uint8_t* x, const W* w, int32_t bias, size_t k) {
  int32_t acc = bias;
  for (size_t i = 0; i < k; ++i) acc += static_cast<int32_t>(x[i]) * w[i];
  return acc;
}

template <typename W>
void gemm_u8(const GemmParams& p, const uint8_t* x, const W* w, const int32_t* bias, uint8_t* y, size_t row_begin,
             size_t row_end) {
  for (size_t m = row_begin; m < row_end; ++m) {
    const uint8_t* xr = x + m * p.k;
    for (size_t n = 0; n < p.n; ++n) y[m * p.n + n] = p.out.apply(dot(xr, w + n * p.k, bias[n], p.k), p.multipliers[n]);
  }
}

template <typename W>
void gemm_f32(const GemmParams& p, const float* scales, const uint8_t* x, const W* w, const int32_t* bias, float* y,
              size_t row_begin, size_t row_end) {
  for (size_t m = row_begin; m < row_end; ++m) {
    const uint8_t* xr = x + m * p.k;
    for (size_t n = 0; n < p.n; ++n) y[m * p.n + n] = static_cast<float>(dot(xr, w + n * p.k, bias[n], p.k)) * scales[n];
  }
}

}  // namespace

void gemm_u8s8__ref(const GemmParams& p, const uint8_t* x, const int8_t* w, const int32_t* bias, uint8_t* y,
                    size_t row_begin, size_t row_end) {
  gemm_u8(p, x, w, bias, y, row_begin, row_end);
}

void gemm_u8s8_f32__ref(const GemmParams& p, const float* scales, const uint8_t* x, const int8_t* w,
                        const int32_t* bias, float* y, size_t row_begin, size_t row_end) {
  gemm_f32(p, scales, x, w, bias, y, row_begin, row_end);
}

void gemm_u8s16__ref(const GemmParams& p, const uint8_t* x, const int16_t* w, const int32_t* bias, uint8_t* y,
                     size_t row_begin, size_t row_end) {
  gemm_u8(p, x, w, bias, y, row_begin, row_end);
}

void gemm_u8s16_f32__ref(const GemmParams& p, const float* scales, const uint8_t* x, const int16_t* w,
                         const int32_t* bias, float* y, size_t row_begin, size_t row_end) {
  gemm_f32(p, scales, x, w, bias, y, row_begin, row_end);
}

}  // namespace intinfer
