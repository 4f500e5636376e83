#include "kernels.h"

#include "../codes.h"

namespace intinfer {
namespace {

// Output channel n's codes: int16 or int8 rows of k elements, or packed sub-byte rows; dot() of
// one row of activations (uint8, or int16 from a wide input) with channel n.
template <typename W>
struct Rows {
  const W* w;
  size_t k;
  template <typename X>
  int32_t dot(const X* x, size_t n, int32_t acc) const {
    const W* row = w + n * k;
    for (size_t i = 0; i < k; ++i) acc += static_cast<int32_t>(x[i]) * row[i];
    return acc;
  }
};

template <int kBits>
struct Rows<Codes<kBits>> {
  const void* w;
  size_t k;
  int32_t dot(const uint8_t* x, size_t n, int32_t acc) const {
    const uint8_t* row = static_cast<const uint8_t*>(w) + n * Codes<kBits>::row_bytes(k);
    for (size_t i = 0; i < k; ++i) acc += static_cast<int32_t>(x[i]) * Codes<kBits>::at(row, i);
    return acc;
  }
};

template <>
struct Rows<SparseCodes> {
  SparseCodes w;
  int32_t dot(const uint8_t* x, size_t n, int32_t acc) const {
    for (uint32_t i = w.start[n]; i < w.start[n + 1]; ++i) acc += static_cast<int32_t>(x[w.index[i]]) * w.codes[i];
    return acc;
  }
};

template <typename X, typename R>
void gemm_u8(const GemmParams& p, const X* x, const R& w, const int32_t* bias, uint8_t* y, size_t row_begin,
             size_t row_end) {
  for (size_t m = row_begin; m < row_end; ++m) {
    const X* xr = x + m * p.k;
    for (size_t n = 0; n < p.n; ++n) y[m * p.n + n] = p.out.apply(w.dot(xr, n, bias[n]), p.multipliers[n]);
  }
}

template <typename X, typename R>
void gemm_f32(const GemmParams& p, const float* scales, const X* x, const R& w, const int32_t* bias, float* y,
              size_t row_begin, size_t row_end) {
  for (size_t m = row_begin; m < row_end; ++m) {
    const X* xr = x + m * p.k;
    for (size_t n = 0; n < p.n; ++n) y[m * p.n + n] = static_cast<float>(w.dot(xr, n, bias[n])) * scales[n];
  }
}

}  // namespace

void gemm_u8s8__ref(const GemmParams& p, const uint8_t* x, const int8_t* w, const int32_t* bias, uint8_t* y,
                    size_t row_begin, size_t row_end) {
  gemm_u8(p, x, Rows<int8_t>{w, p.k}, bias, y, row_begin, row_end);
}

void gemm_u8s8_f32__ref(const GemmParams& p, const float* scales, const uint8_t* x, const int8_t* w,
                        const int32_t* bias, float* y, size_t row_begin, size_t row_end) {
  gemm_f32(p, scales, x, Rows<int8_t>{w, p.k}, bias, y, row_begin, row_end);
}

void gemm_s16s8__ref(const GemmParams& p, const int16_t* x, const int8_t* w, const int32_t* bias, uint8_t* y,
                     size_t row_begin, size_t row_end) {
  gemm_u8(p, x, Rows<int8_t>{w, p.k}, bias, y, row_begin, row_end);
}

void gemm_s16s8_f32__ref(const GemmParams& p, const float* scales, const int16_t* x, const int8_t* w,
                         const int32_t* bias, float* y, size_t row_begin, size_t row_end) {
  gemm_f32(p, scales, x, Rows<int8_t>{w, p.k}, bias, y, row_begin, row_end);
}

void gemm_u8s16__ref(const GemmParams& p, const uint8_t* x, const int16_t* w, const int32_t* bias, uint8_t* y,
                     size_t row_begin, size_t row_end) {
  gemm_u8(p, x, Rows<int16_t>{w, p.k}, bias, y, row_begin, row_end);
}

void gemm_u8s16_f32__ref(const GemmParams& p, const float* scales, const uint8_t* x, const int16_t* w,
                         const int32_t* bias, float* y, size_t row_begin, size_t row_end) {
  gemm_f32(p, scales, x, Rows<int16_t>{w, p.k}, bias, y, row_begin, row_end);
}

void gemm_u8sub__ref(const GemmParams& p, int bits, const uint8_t* x, const void* w, const int32_t* bias, uint8_t* y,
                     size_t row_begin, size_t row_end) {
  with_codes(bits, [&](auto codes) { gemm_u8(p, x, Rows<decltype(codes)>{w, p.k}, bias, y, row_begin, row_end); });
}

void gemm_u8sub_f32__ref(const GemmParams& p, int bits, const float* scales, const uint8_t* x, const void* w,
                         const int32_t* bias, float* y, size_t row_begin, size_t row_end) {
  with_codes(bits, [&](auto codes) {
    gemm_f32(p, scales, x, Rows<decltype(codes)>{w, p.k}, bias, y, row_begin, row_end);
  });
}

void gemm_u8sparse__ref(const GemmParams& p, const SparseCodes& w, const uint8_t* x, const int32_t* bias, uint8_t* y,
                        size_t row_begin, size_t row_end) {
  gemm_u8(p, x, Rows<SparseCodes>{w}, bias, y, row_begin, row_end);
}

void gemm_u8sparse_f32__ref(const GemmParams& p, const float* scales, const SparseCodes& w, const uint8_t* x,
                            const int32_t* bias, float* y, size_t row_begin, size_t row_end) {
  gemm_f32(p, scales, x, Rows<SparseCodes>{w}, bias, y, row_begin, row_end);
}

}  // namespace intinfer
