#include <immintrin.h>

#include <cstring>

#include "../dwconv_window.h"
#include "requant_avx2.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

constexpr size_t kC = 16;

// Loads 16 channels from p as int16; a partial tile goes through a buffer so nothing past the
// tensor is read.
inline __m256i load16(const uint8_t* p, size_t valid) {
  if (valid == kC) return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) uint8_t tmp[kC] = {0};
  std::memcpy(tmp, p, valid);
  return _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
}

}  // namespace

void dwconv_u8s8_16c2__avx2(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                            uint8_t* y, size_t row_begin, size_t row_end) {
  const OutputStageAvx2 stage(w.bias, w.multiplier, w.left_shift, w.right_shift, w.n, p.out.zero_point,
                              p.out.act_min, p.out.act_max);
  const size_t c_count = w.n, tap_pairs = w.k_pad / 2;
  const uint8_t* taps[kDwconvAvx2MaxTaps + 1];
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t b = row / p.out_h;
    const int oy = static_cast<int>(row % p.out_h);
    const uint8_t* xb = x + b * p.in_h * p.in_w * c_count;
    for (int ox = 0; ox < p.out_w; ++ox) {
      window_taps(p, xb, zero_row, oy, ox, c_count, taps);
      taps[w.k] = zero_row;  // the odd tap's partner, whose weight is 0
      uint8_t* out = y + (row * p.out_w + ox) * c_count;
      for (size_t tile = 0; tile < w.n_tiles; ++tile) {
        const size_t c = tile * kC;
        const size_t valid = c_count - c < kC ? c_count - c : kC;
        const int16_t* wt = static_cast<const int16_t*>(w.weights) + tile * tap_pairs * 2 * kC;
        __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
        for (size_t pr = 0; pr < tap_pairs; ++pr) {
          const __m256i v0 = load16(taps[2 * pr] + c, valid);
          const __m256i v1 = load16(taps[2 * pr + 1] + c, valid);
          const __m256i wa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt + pr * 2 * kC));
          const __m256i wb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt + pr * 2 * kC + kC));
          acc_a = _mm256_add_epi32(acc_a, _mm256_madd_epi16(_mm256_unpacklo_epi16(v0, v1), wa));
          acc_b = _mm256_add_epi32(acc_b, _mm256_madd_epi16(_mm256_unpackhi_epi16(v0, v1), wb));
        }
        // acc_a: channels 0-3 | 8-11, acc_b: 4-7 | 12-15 -> 0-7 and 8-15.
        const __m256i lo = _mm256_permute2x128_si256(acc_a, acc_b, 0x20);
        const __m256i hi = _mm256_permute2x128_si256(acc_a, acc_b, 0x31);
        store_u8x16(out + c, stage.apply16(lo, hi, c), valid);
      }
    }
  }
}

}  // namespace intinfer
