// Depthwise convolution on the AVX-512 path: dwconv_avx2.cc's method on 32 channels a step. Taps
// in pairs, each tap's 32 channels zero-extended to int16 and interleaved with the next tap's
// (vpunpck{l,h}wd within 128-bit lanes), so one vpmaddwd adds two taps of 16 channels into int32;
// the weights are int16 pairs in the lane order that interleaving produces, and two permutes put
// the accumulators back in channel order for the 512-bit output stage, prepared once per channel
// tile for a stretch of pixels whose windows are inside the input. A partial last tile loads and
// stores under a mask (no copy, nothing read or written past the channels).
#include <immintrin.h>

#include <type_traits>

#include "../dwconv_window.h"
#include "requant_avx512.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

constexpr size_t kC = 32;

// kTaps > 0: a window of that many taps (3x3, 5x5), whose tap loop the compiler unrolls; 0: any.
template <size_t kTaps>
void dwconv_32c2(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row, uint8_t* y,
                 size_t row_begin, size_t row_end) {
  const OutputStage512 stage(w, p.out);
  const size_t c_count = w.n, taps_count = kTaps ? kTaps : w.k;
  const uint8_t* taps[kDwconvAvx512MaxTaps];
  size_t offsets[kDwconvAvx512MaxTaps];
  // The accumulators hold channels 0-3, 8-11, 16-19, 24-27 (low interleave) and 4-7, 12-15, 20-23,
  // 28-31 (high): channels 0-15 and 16-31 from the two (index bit 4 picks the second).
  const __m512i first = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
  const __m512i second = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
  // Channels [c, c + 32) of one pixel (tap(i): its tap i) where `valid` has their bits, into the
  // output pixel `out` through the stage of those channels; a full tile (kFull) loads without a mask.
  auto tile = [&](auto tap, uint8_t* out, size_t c, const OutputStage512::Channels& lo,
                  const OutputStage512::Channels& hi, __mmask32 valid, auto full) {
    constexpr bool kFull = decltype(full)::value;
    const int16_t* wt = static_cast<const int16_t*>(w.weights) + c * w.k_pad;
    auto load = [&](size_t i) {
      const uint8_t* src = tap(i) + c;
      return _mm512_cvtepu8_epi16(kFull ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src))
                                        : _mm256_maskz_loadu_epi8(valid, src));
    };
    __m512i acc_a = _mm512_setzero_si512(), acc_b = _mm512_setzero_si512();
    for (size_t i = 0; i < taps_count; i += 2) {
      // An odd last tap pairs with itself against a zero weight.
      const __m512i v0 = load(i), v1 = i + 1 < taps_count ? load(i + 1) : v0;
      acc_a = _mm512_add_epi32(acc_a, _mm512_madd_epi16(_mm512_unpacklo_epi16(v0, v1), _mm512_loadu_si512(wt + i * kC)));
      acc_b = _mm512_add_epi32(acc_b,
                               _mm512_madd_epi16(_mm512_unpackhi_epi16(v0, v1), _mm512_loadu_si512(wt + i * kC + kC)));
    }
    stage.store(out + c, _mm512_permutex2var_epi32(acc_a, first, acc_b), lo, static_cast<__mmask16>(valid));
    stage.store(out + c + 16, _mm512_permutex2var_epi32(acc_a, second, acc_b), hi, static_cast<__mmask16>(valid >> 16));
  };
  // f(c, valid, full) for each channel tile.
  auto for_each_tile = [&](auto f) {
    size_t c = 0;
    for (; c + kC <= c_count; c += kC) f(c, ~__mmask32{0}, std::true_type{});
    if (c < c_count) f(c, static_cast<__mmask32>((uint64_t{1} << (c_count - c)) - 1), std::false_type{});
  };
  for_each_window(
      p, x, zero_row, c_count, row_begin, row_end, taps, offsets,
      [&](size_t pixel, auto tap) {  // a border pixel
        for_each_tile([&](size_t c, __mmask32 valid, auto full) {
          tile(tap, y + pixel * c_count, c, stage.at(c), stage.at(c + 16), valid, full);
        });
      },
      [&](size_t index, size_t count, const uint8_t* origin) {
        // A stretch of pixels whose windows are inside: a channel tile's stage is prepared once for
        // all of them.
        const size_t step = static_cast<size_t>(p.stride_w) * c_count;
        for_each_tile([&](size_t c, __mmask32 valid, auto full) {
          const OutputStage512::Channels lo = stage.at(c), hi = stage.at(c + 16);
          for (size_t k = 0; k < count; ++k) {
            const uint8_t* o = origin + k * step;
            tile([o, &offsets](size_t i) { return o + offsets[i]; }, y + (index + k) * c_count, c, lo, hi, valid,
                 full);
          }
        });
      });
}

}  // namespace

void dwconv_u8s8_32c2__avx512vnni(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                                  uint8_t* y, size_t row_begin, size_t row_end) {
  dispatch_tap_count(w.k, [&](auto taps) {
    dwconv_32c2<decltype(taps)::value>(w, p, x, zero_row, y, row_begin, row_end);
  });
}

}  // namespace intinfer
