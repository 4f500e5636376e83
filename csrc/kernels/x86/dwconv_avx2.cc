#include <immintrin.h>

#include "../dwconv_window.h"
#include "requant_avx2.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

constexpr size_t kC = 16;

// Loads 16 channels from p as int16.
inline __m256i load16(const uint8_t* p) {
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// kTaps > 0: a window of that many taps (3x3, 5x5), whose tap loop the compiler unrolls; 0: any.
template <size_t kTaps>
void dwconv_16c2(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row, uint8_t* y,
                 size_t row_begin, size_t row_end) {
  const OutputStageAvx2 stage(w.bias, w.multiplier, w.left_shift, w.right_shift, w.n, p.out.zero_point,
                              p.out.act_min, p.out.act_max);
  const size_t c_count = w.n, taps_count = kTaps ? kTaps : w.k;
  const uint8_t* taps[kDwconvAvx2MaxTaps];
  size_t offsets[kDwconvAvx2MaxTaps];
  alignas(16) uint8_t partial[kDwconvAvx2MaxTaps][kC];  // a partial last tile's channels, copied per tap
  for_each_window(p, x, zero_row, c_count, row_begin, row_end, taps, offsets, [&](size_t pixel, auto tap) {
    uint8_t* out = y + pixel * c_count;
    // 16 channels from c, tap_at(i) pointing at channel c of tap i: taps in pairs, interleaved
    // as int16 for vpmaddwd against the pairs' packed weights (an odd last tap pairs with itself
    // against a zero weight).
    auto tile = [&](size_t c, auto tap_at, size_t valid) {
      const int16_t* wt = static_cast<const int16_t*>(w.weights) + c * (w.k_pad / 2) * 2;
      __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
      for (size_t i = 0; i < taps_count; i += 2) {
        const __m256i v0 = load16(tap_at(i));
        const __m256i v1 = i + 1 < taps_count ? load16(tap_at(i + 1)) : v0;
        const __m256i wa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt + i * kC));
        const __m256i wb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt + i * kC + kC));
        acc_a = _mm256_add_epi32(acc_a, _mm256_madd_epi16(_mm256_unpacklo_epi16(v0, v1), wa));
        acc_b = _mm256_add_epi32(acc_b, _mm256_madd_epi16(_mm256_unpackhi_epi16(v0, v1), wb));
      }
      // acc_a: channels 0-3 | 8-11, acc_b: 4-7 | 12-15 -> 0-7 and 8-15.
      const __m256i lo = _mm256_permute2x128_si256(acc_a, acc_b, 0x20);
      const __m256i hi = _mm256_permute2x128_si256(acc_a, acc_b, 0x31);
      store_u8x16(out + c, stage.apply16(lo, hi, c), valid);
    };
    for_each_channel_tile(c_count, taps_count, tap, partial, tile);
  });
}

}  // namespace

void dwconv_u8s8_16c2__avx2(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                            uint8_t* y, size_t row_begin, size_t row_end) {
  dispatch_tap_count(w.k, [&](auto taps) {
    dwconv_16c2<decltype(taps)::value>(w, p, x, zero_row, y, row_begin, row_end);
  });
}

}  // namespace intinfer
