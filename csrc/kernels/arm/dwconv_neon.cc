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
  // The sums of 16 channels from c for kP output pixels (1 or 2: the weights and the output
  // stage's parameters loaded once for both), stored at out[p] + c; tap_at(p, i) points at
  // channel c of pixel p's tap i, where 16 bytes may be read.
  auto tile = [&](auto pixels, size_t c, size_t valid, uint8_t* const* out, auto tap_at) {
    constexpr size_t kP = decltype(pixels)::value;
    const int8_t* wt = weights + c * taps_count;
    int32x4_t acc[kP][4];
    for (size_t q = 0; q < 4; ++q) {
      const int32x4_t b = vld1q_s32(bias + c + 4 * q);  // the sums start from the bias
      for (size_t px = 0; px < kP; ++px) acc[px][q] = b;
    }
    // Two taps' products summed in int16 before widening: (x - 128) * w is within
    // +-128 * 127 = +-16256, so two of them are within +-32512 (docs/quantization.md).
    // gcc unrolls 9 taps by itself but not 25 (6 of the 18 instructions of each pair were the
    // loop's and the tap offsets' address arithmetic).
    size_t i = 0;
#pragma GCC unroll 16
    for (; i + 2 <= taps_count; i += 2) {
      const int8x16_t w0 = vld1q_s8(wt + i * kC), w1 = vld1q_s8(wt + (i + 1) * kC);
      for (size_t px = 0; px < kP; ++px) {
        const int8x16_t x0 = load16(tap_at(px, i)), x1 = load16(tap_at(px, i + 1));
        const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(x0), vget_low_s8(w0)), vget_low_s8(x1), vget_low_s8(w1));
        const int16x8_t hi = mlal_high(mull_high(x0, w0), x1, w1);
        acc[px][0] = vaddw_s16(acc[px][0], vget_low_s16(lo));
        acc[px][1] = addw_high(acc[px][1], lo);
        acc[px][2] = vaddw_s16(acc[px][2], vget_low_s16(hi));
        acc[px][3] = addw_high(acc[px][3], hi);
      }
    }
    if (i < taps_count) {
      const int8x16_t w0 = vld1q_s8(wt + i * kC);
      for (size_t px = 0; px < kP; ++px) {
        const int8x16_t x0 = load16(tap_at(px, i));
        const int16x8_t lo = vmull_s8(vget_low_s8(x0), vget_low_s8(w0)), hi = mull_high(x0, w0);
        acc[px][0] = vaddw_s16(acc[px][0], vget_low_s16(lo));
        acc[px][1] = addw_high(acc[px][1], lo);
        acc[px][2] = vaddw_s16(acc[px][2], vget_low_s16(hi));
        acc[px][3] = addw_high(acc[px][3], hi);
      }
    }
    for (size_t q = 0; q < 4; ++q) {
      const ChannelStage s = stage.channels(c + 4 * q);
      for (size_t px = 0; px < kP; ++px) acc[px][q] = stage.requantize(acc[px][q], s);
    }
    for (size_t px = 0; px < kP; ++px)
      store_u8x16(out[px] + c, stage.narrow16(acc[px][0], acc[px][1], acc[px][2], acc[px][3]), valid);
  };
  using One = std::integral_constant<size_t, 1>;
  auto pixel = [&](size_t index, auto tap) {
    uint8_t* const out[1] = {y + index * c_count};
    for_each_channel_tile(c_count, taps_count, tap, partial, [&](size_t c, auto tap_at, size_t valid) {
      tile(One{}, c, valid, out, [&](size_t, size_t i) { return tap_at(i); });
    });
  };
  auto pair = [&](size_t index, auto tap0, auto tap1) {
    uint8_t* const out[2] = {y + index * c_count, y + (index + 1) * c_count};
    const size_t full = c_count / kC * kC;
    for (size_t c = 0; c < full; c += kC)
      tile(std::integral_constant<size_t, 2>{}, c, kC, out,
           [&](size_t px, size_t i) { return (px == 0 ? tap0(i) : tap1(i)) + c; });
    for (size_t px = 0; px < 2; ++px) {
      partial_channel_tile(c_count, taps_count, px == 0 ? tap0 : tap1, partial,
                           [&](size_t c, auto tap_at, size_t valid) {
                             tile(One{}, c, valid, out + px, [&](size_t, size_t i) { return tap_at(i); });
                           });
    }
  };
  // Pairs for 3x3 windows only: 5x5 pairs spill (EfficientNet-Lite0's 5x5 layers took 12.4 M
  // instructions one pixel at a time, 14.3 M in pairs; its 3x3 ones 11.1 M and 10.2 M).
  if constexpr (kTaps == 9)
    for_each_window(p, x, zero_row, c_count, row_begin, row_end, taps, offsets, pixel, pair);
  else
    for_each_window(p, x, zero_row, c_count, row_begin, row_end, taps, offsets, pixel);
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
