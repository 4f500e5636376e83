#include <arm_neon.h>

#include "../dwconv_window.h"
#include "arm_kernels.h"
#include "requant_neon.h"
#include "widen_neon.h"

namespace intinfer {
namespace {

constexpr size_t kC = 16;  // channels per tile

// 16 channels from p minus 128, as int8 (x ^ 0x80 = x - 128 for a byte).
inline int8x16_t load16(const uint8_t* p) {
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80)));
}

// Stores the first `valid` (<= 16) bytes of lo:hi.
inline void store16(uint8_t* dst, uint8x8_t lo, uint8x8_t hi, size_t valid) {
  if (valid == kC) {
    vst1q_u8(dst, vcombine_u8(lo, hi));
    return;
  }
  store_u8x8(dst, lo, valid < 8 ? valid : 8);
  if (valid > 8) store_u8x8(dst + 8, hi, valid - 8);
}

// kTaps > 0: a window of that many taps (3x3, 5x5), whose tap loop the compiler unrolls; 0: any.
template <size_t kTaps>
void dwconv_16c1(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row, uint8_t* y,
                 size_t row_begin, size_t row_end) {
  const OutputStageNeon stage(w.bias, w.multiplier, w.left_shift, w.right_shift,
                              p.out.zero_point, p.out.act_min, p.out.act_max);
  const size_t c_count = w.n, taps_count = kTaps ? kTaps : w.k;
  const uint8_t* taps[kDwconvNeonMaxTaps];
  size_t offsets[kDwconvNeonMaxTaps];
  uint8_t partial[kDwconvNeonMaxTaps][kC];  // a partial last tile's channels, copied per tap
  for_each_window(p, x, zero_row, c_count, row_begin, row_end, taps, offsets, [&](size_t pixel, auto tap) {
    uint8_t* out = y + pixel * c_count;
    // The sums of 16 channels from c: full 16-byte loads at tap_at(i) (channel c of tap i).
    auto tile = [&](size_t c, auto tap_at, size_t valid) {
      const int8_t* wt = static_cast<const int8_t*>(w.weights) + c * taps_count;
      int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
      // Two taps' products summed in int16 before widening: (x - 128) * w is within
      // +-128 * 127 = +-16256, so two of them are within +-32512 (docs/quantization.md).
      size_t i = 0;
      for (; i + 2 <= taps_count; i += 2) {
        const int8x16_t x0 = load16(tap_at(i)), x1 = load16(tap_at(i + 1));
        const int8x16_t w0 = vld1q_s8(wt + i * kC), w1 = vld1q_s8(wt + (i + 1) * kC);
        const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(x0), vget_low_s8(w0)), vget_low_s8(x1), vget_low_s8(w1));
        const int16x8_t hi = mlal_high(mull_high(x0, w0), x1, w1);
        acc0 = vaddw_s16(acc0, vget_low_s16(lo));
        acc1 = addw_high(acc1, lo);
        acc2 = vaddw_s16(acc2, vget_low_s16(hi));
        acc3 = addw_high(acc3, hi);
      }
      if (i < taps_count) {
        const int8x16_t x0 = load16(tap_at(i)), w0 = vld1q_s8(wt + i * kC);
        const int16x8_t lo = vmull_s8(vget_low_s8(x0), vget_low_s8(w0)), hi = mull_high(x0, w0);
        acc0 = vaddw_s16(acc0, vget_low_s16(lo));
        acc1 = addw_high(acc1, lo);
        acc2 = vaddw_s16(acc2, vget_low_s16(hi));
        acc3 = addw_high(acc3, hi);
      }
      store16(out + c, stage.apply8(acc0, acc1, c), stage.apply8(acc2, acc3, c + 8), valid);
    };
    for_each_channel_tile(c_count, taps_count, tap, partial, tile);
  });
}

}  // namespace

void dwconv_u8s8_16c1__neon(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                            uint8_t* y, size_t row_begin, size_t row_end) {
  dispatch_tap_count(w.k, [&](auto taps) {
    dwconv_16c1<decltype(taps)::value>(w, p, x, zero_row, y, row_begin, row_end);
  });
}

}  // namespace intinfer
