#include "gemm_avx2.h"

#include <immintrin.h>

#include <cstring>

#include "../gemm_tiles.h"
#include "requant_avx2.h"

namespace intinfer {
namespace {

constexpr size_t kMR = 4;   // rows per micro-tile
constexpr size_t kNR = 16;  // output channels per micro-tile (two ymm of int32)

// Rows [0, mr) of x widened to int16, k padded to even with zeros: row r at scratch + r * 2 * k_pairs.
void widen_rows(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pairs, int16_t* out) {
  for (size_t r = 0; r < kMR; ++r) {
    int16_t* o = out + r * 2 * k_pairs;
    if (r >= mr) {
      std::memset(o, 0, 2 * k_pairs * sizeof(int16_t));
      continue;
    }
    const uint8_t* xr = x + r * x_stride;
    size_t i = 0;
    for (; i + 16 <= k; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i),
                          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + i))));
    for (; i < k; ++i) o[i] = xr[i];
    for (; i < 2 * k_pairs; ++i) o[i] = 0;
  }
}

// acc[r][h] (h: channels 0-7, 8-15 of the tile) = sum over k of a[r][k] * w[tile][k].
inline void micro_tile(const int16_t* a, size_t k_pairs, const int16_t* b, __m256i acc[kMR][2]) {
  // Local accumulators, stored to acc once at the end (see gemm_avxvnni.cc): with acc itself the
  // compiler copies all eight between registers every step.
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const int32_t* a0 = reinterpret_cast<const int32_t*>(a);
  const int32_t* a1 = a0 + k_pairs;
  const int32_t* a2 = a1 + k_pairs;
  const int32_t* a3 = a2 + k_pairs;
  for (size_t p = 0; p < k_pairs; ++p) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + p * 32));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + p * 32 + 16));
    __m256i x = _mm256_set1_epi32(a0[p]);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, w0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, w1));
    x = _mm256_set1_epi32(a1[p]);
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, w0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, w1));
    x = _mm256_set1_epi32(a2[p]);
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, w0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, w1));
    x = _mm256_set1_epi32(a3[p]);
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, w0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, w1));
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
  acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
}

// Drives the micro-kernel over row tiles and channel tiles; store(r, tile, acc0, acc1) writes
// one row's 16 accumulators (bias not yet added).
template <typename Store>
void gemm_driver(const PackedGemmAvx2& w, const uint8_t* x, size_t x_stride, size_t rows, size_t tile_begin,
                 size_t tile_end, int16_t* scratch, Store&& store) {
  for_each_gemm_tile<kMR, __m256i[2]>(
      rows, tile_begin, tile_end,
      [&](size_t r0, size_t mr) { widen_rows(x + r0 * x_stride, x_stride, mr, w.k, w.k_pairs, scratch); },
      [&](size_t t, __m256i acc[kMR][2]) {
        micro_tile(scratch, w.k_pairs, w.weights.data() + t * w.k_pairs * 2 * kNR, acc);
      },
      [&](size_t r, size_t t, const __m256i* acc) { store(r, t, acc[0], acc[1]); });
}

}  // namespace

size_t gemm_avx2_scratch_elements(const PackedGemmAvx2& w) { return kMR * 2 * w.k_pairs; }

namespace {

template <typename W>
PackedGemmAvx2 pack_avx2(const W* weights, size_t n, size_t k, const int32_t* bias,
                         const std::vector<QuantizedMultiplier>& multipliers, const std::vector<float>& output_scales) {
  PackedGemmAvx2 p;
  pack_output_stage(&p, n, k, kNR, bias, multipliers, output_scales);
  p.k_pairs = (k + 1) / 2;
  p.weights.assign(p.n_tiles * p.k_pairs * 2 * kNR, 0);
  for (size_t c = 0; c < n; ++c) {
    const size_t t = c / kNR, col = c % kNR;
    for (size_t i = 0; i < k; ++i)
      p.weights[(t * p.k_pairs + i / 2) * 2 * kNR + col * 2 + i % 2] = weights[c * k + i];
  }
  return p;
}

}  // namespace

PackedGemmAvx2 pack_gemm_avx2(const int8_t* weights, size_t n, size_t k, const int32_t* bias,
                              const std::vector<QuantizedMultiplier>& multipliers,
                              const std::vector<float>& output_scales) {
  return pack_avx2(weights, n, k, bias, multipliers, output_scales);
}

PackedGemmAvx2 pack_gemm_avx2_s16(const int16_t* weights, size_t n, size_t k, const int32_t* bias,
                                  const std::vector<QuantizedMultiplier>& multipliers,
                                  const std::vector<float>& output_scales) {
  return pack_avx2(weights, n, k, bias, multipliers, output_scales);
}

void gemm_u8s8_4x16c2__avx2(const PackedGemmAvx2& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            uint8_t* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            int16_t* scratch) {
  const OutputStageAvx2 stage(w.bias.data(), w.multiplier.data(), w.left_shift.data(), w.right_shift.data(), w.n,
                              out.zero_point, out.act_min, out.act_max);
  gemm_driver(w, x, x_stride, rows, tile_begin, tile_end, scratch, [&](size_t r, size_t t, __m256i a0, __m256i a1) {
    const size_t c = t * kNR;
    store_u8x16(y + r * y_stride + c, stage.apply16(a0, a1, c), w.n - c < kNR ? w.n - c : kNR);
  });
}

void gemm_u8s8_f32_4x16c2__avx2(const PackedGemmAvx2& w, const uint8_t* x, size_t x_stride, float* y,
                                size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, int16_t* scratch) {
  gemm_driver(w, x, x_stride, rows, tile_begin, tile_end, scratch, [&](size_t r, size_t t, __m256i a0, __m256i a1) {
    store_f32x16(w.bias.data(), w.output_scales.data(), w.n, y + r * y_stride, t * kNR, a0, a1);
  });
}

}  // namespace intinfer
