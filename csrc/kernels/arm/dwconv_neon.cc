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

// kTaps > 0: a window of that many taps (3x3, 5x5), whose tap loop is unrolled; 0: any.
// `stage` by value and the weights' pointers in locals: the output's byte stores may alias
// anything reached through a reference, which made the compiler reload them for every tile.
template <size_t kTaps, typename Stage>
void dwconv_16c1(const PackedView& w, const ConvParams& p, const Stage stage, const uint8_t* x,
                 const uint8_t* zero_row, uint8_t* y, size_t row_begin, size_t row_end) {
  const size_t c_count = w.n, taps_count = kTaps ? kTaps : w.k;
  const int8_t* const weights = static_cast<const int8_t*>(w.weights);
  const int32_t* const bias = w.bias;
  const uint8_t* taps[kDwconvNeonMaxTaps];
  size_t offsets[kDwconvNeonMaxTaps];
  uint8_t partial[kDwconvNeonMaxTaps][kC];  // a partial last tile's channels, copied per tap
  for_each_window(p, x, zero_row, c_count, row_begin, row_end, taps, offsets, [&](size_t pixel, auto tap) {
    uint8_t* out = y + pixel * c_count;
    // The sums of 16 channels from c: full 16-byte loads at tap_at(i) (channel c of tap i).
    auto tile = [&](size_t c, auto tap_at, size_t valid) {
      const int8_t* wt = weights + c * taps_count;
      // The sums start from the bias.
      int32x4_t acc0 = vld1q_s32(bias + c), acc1 = vld1q_s32(bias + c + 4), acc2 = vld1q_s32(bias + c + 8),
                acc3 = vld1q_s32(bias + c + 12);
      // Two taps' products summed in int16 before widening: (x - 128) * w is within
      // +-128 * 127 = +-16256, so two of them are within +-32512 (docs/quantization.md).
      // gcc unrolls 9 taps by itself but not 25 (6 of the 18 instructions of each pair were the
      // loop's and the tap offsets' address arithmetic).
      size_t i = 0;
#pragma GCC unroll 16
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
      store_u8x16(out + c,
                  stage.narrow16(stage.requantize(acc0, stage.channels(c)), stage.requantize(acc1, stage.channels(c + 4)),
                                 stage.requantize(acc2, stage.channels(c + 8)),
                                 stage.requantize(acc3, stage.channels(c + 12))),
                  valid);
    };
    for_each_channel_tile(c_count, taps_count, tap, partial, tile);
  });
}

}  // namespace

void dwconv_u8s8_16c1__neon(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                            uint8_t* y, size_t row_begin, size_t row_end) {
  with_output_stage(w, p.out, [&](auto stage) {
    dispatch_tap_count(w.k, [&](auto taps) {
      dwconv_16c1<decltype(taps)::value>(w, p, stage, x, zero_row, y, row_begin, row_end);
    });
  });
}

}  // namespace intinfer
