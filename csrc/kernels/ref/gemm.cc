#include "kernels.h"

namespace intinfer {

void gemm_u8s8__ref(const GemmParams& p, const uint8_t* x, const int8_t* w, const int32_t* bias, uint8_t* y,
                    size_t row_begin, size_t row_end) {
  for (size_t m = row_begin; m < row_end; ++m) {
    const uint8_t* xr = x + m * p.k;
    for (size_t n = 0; n < p.n; ++n) {
      const int8_t* wr = w + n * p.k;
      int32_t acc = bias[n];
      for (size_t k = 0; k < p.k; ++k) acc += static_cast<int32_t>(xr[k]) * wr[k];
      y[m * p.n + n] = p.out.apply(acc, p.multipliers[n]);
    }
  }
}

void gemm_u8s8_f32__ref(const GemmParams& p, const float* scales, const uint8_t* x, const int8_t* w,
                        const int32_t* bias, float* y, size_t row_begin, size_t row_end) {
  for (size_t m = row_begin; m < row_end; ++m) {
    const uint8_t* xr = x + m * p.k;
    for (size_t n = 0; n < p.n; ++n) {
      const int8_t* wr = w + n * p.k;
      int32_t acc = bias[n];
      for (size_t k = 0; k < p.k; ++k) acc += static_cast<int32_t>(xr[k]) * wr[k];
      y[m * p.n + n] = static_cast<float>(acc) * scales[n];
    }
  }
}

}  // namespace intinfer
