// The GEMM of gemm_avx2.cc on AVX-VNNI: vpdpbusd multiplies 4 uint8 activations by 4 int8
// weights and adds the 4 products into an int32 lane *exactly* (the non-saturating form; its
// VPDPBUSDS twin saturates), so no widening is needed at all: weights stay int8 (half the bytes
// of the int16 packing) and a broadcast of 4 activation bytes feeds 16 channels per pair of
// instructions. Same tile (4 x 16), same output stage, same results.
#include <immintrin.h>

#include <cstring>

#include "gemm_avx2.h"
#include "../gemm_tiles.h"
#include "requant_avx2.h"

namespace intinfer {
namespace {

constexpr size_t kMR = 4;   // rows per micro-tile
constexpr size_t kNR = 16;  // output channels per micro-tile (two ymm of int32)

// Rows [0, mr) of x copied with k padded to a multiple of 4 (zeros), rows past mr zeroed.
void pad_rows(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_quads, uint8_t* out) {
  for (size_t r = 0; r < kMR; ++r) {
    uint8_t* o = out + r * 4 * k_quads;
    std::memset(o, 0, 4 * k_quads);
    if (r < mr) std::memcpy(o, x + r * x_stride, k);
  }
}

inline void micro_tile(const uint8_t* a, size_t k_quads, const int8_t* b, __m256i acc[kMR][2]) {
  // Local accumulators, stored to acc once at the end: acc itself may alias the weights (vector
  // loads may alias anything), which makes the compiler shuffle and spill them every step.
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const int32_t* a0 = reinterpret_cast<const int32_t*>(a);
  const int32_t* a1 = a0 + k_quads;
  const int32_t* a2 = a1 + k_quads;
  const int32_t* a3 = a2 + k_quads;
  for (size_t q = 0; q < k_quads; ++q) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + q * 64));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + q * 64 + 32));
    __m256i x = _mm256_set1_epi32(a0[q]);
    c00 = _mm256_dpbusd_avx_epi32(c00, x, w0);
    c01 = _mm256_dpbusd_avx_epi32(c01, x, w1);
    x = _mm256_set1_epi32(a1[q]);
    c10 = _mm256_dpbusd_avx_epi32(c10, x, w0);
    c11 = _mm256_dpbusd_avx_epi32(c11, x, w1);
    x = _mm256_set1_epi32(a2[q]);
    c20 = _mm256_dpbusd_avx_epi32(c20, x, w0);
    c21 = _mm256_dpbusd_avx_epi32(c21, x, w1);
    x = _mm256_set1_epi32(a3[q]);
    c30 = _mm256_dpbusd_avx_epi32(c30, x, w0);
    c31 = _mm256_dpbusd_avx_epi32(c31, x, w1);
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
  acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
}

template <typename Store>
void gemm_driver(const PackedGemmVnni& w, const uint8_t* x, size_t x_stride, size_t rows, size_t tile_begin,
                 size_t tile_end, uint8_t* scratch, Store&& store) {
  for_each_gemm_tile<kMR, __m256i[2]>(
      rows, tile_begin, tile_end,
      [&](size_t r0, size_t mr) { pad_rows(x + r0 * x_stride, x_stride, mr, w.k, w.k_quads, scratch); },
      [&](size_t t, __m256i acc[kMR][2]) {
        micro_tile(scratch, w.k_quads, w.weights.data() + t * w.k_quads * 4 * kNR, acc);
      },
      [&](size_t r, size_t t, const __m256i* acc) { store(r, t, acc[0], acc[1]); });
}

}  // namespace

PackedGemmVnni pack_gemm_avxvnni(const int8_t* weights, size_t n, size_t k, const int32_t* bias,
                                 const std::vector<QuantizedMultiplier>& multipliers,
                                 const std::vector<float>& output_scales) {
  PackedGemmVnni p;
  pack_output_stage(&p, n, k, kNR, bias, multipliers, output_scales);
  p.k_quads = (k + 3) / 4;
  p.weights.assign(p.n_tiles * p.k_quads * 4 * kNR, 0);
  for (size_t c = 0; c < n; ++c) {
    const size_t t = c / kNR, col = c % kNR;
    for (size_t i = 0; i < k; ++i)
      p.weights[(t * p.k_quads + i / 4) * 4 * kNR + col * 4 + i % 4] = weights[c * k + i];
  }
  return p;
}

size_t gemm_avxvnni_scratch_bytes(const PackedGemmVnni& w) { return kMR * 4 * w.k_quads; }

void gemm_u8s8_4x16c4__avxvnni(const PackedGemmVnni& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               uint8_t* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               uint8_t* scratch) {
  const OutputStageAvx2 stage(w.bias.data(), w.multiplier.data(), w.left_shift.data(), w.right_shift.data(), w.n,
                              out.zero_point, out.act_min, out.act_max);
  gemm_driver(w, x, x_stride, rows, tile_begin, tile_end, scratch, [&](size_t r, size_t t, __m256i a0, __m256i a1) {
    const size_t c = t * kNR;
    store_u8x16(y + r * y_stride + c, stage.apply16(a0, a1, c), w.n - c < kNR ? w.n - c : kNR);
  });
}

void gemm_u8s8_f32_4x16c4__avxvnni(const PackedGemmVnni& w, const uint8_t* x, size_t x_stride, float* y,
                                   size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                   uint8_t* scratch) {
  gemm_driver(w, x, x_stride, rows, tile_begin, tile_end, scratch, [&](size_t r, size_t t, __m256i a0, __m256i a1) {
    store_f32x16(w.bias.data(), w.output_scales.data(), w.n, y + r * y_stride, t * kNR, a0, a1);
  });
}

}  // namespace intinfer
