#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "../dwconv_window.h"
#include "arm_kernels.h"
#include "requant_neon.h"
#include "widen_neon.h"

namespace intinfer {
namespace {

constexpr size_t kC = 16;  // channels per tile

// 16 channels from p minus 128, as int8 (x ^ 0x80 = x - 128 for a byte), or as they are where
// the input was flipped so already (kFlipped).
template <bool kFlipped>
inline int8x16_t load16(const uint8_t* p) {
  if constexpr (kFlipped) return vreinterpretq_s8_u8(vld1q_u8(p));
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80)));
}

#if defined(__aarch64__)
// y[i] = x[i] ^ 0x80 (x - 128 as int8) for n bytes.
void flip_bytes(const uint8_t* x, uint8_t* y, size_t n) {
  const uint8x16_t m = vdupq_n_u8(0x80);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint8x16x4_t v = vld1q_u8_x4(x + i);
    for (uint8x16_t& r : v.val) r = veorq_u8(r, m);
    vst1q_u8_x4(y + i, v);
  }
  for (; i < n; ++i) y[i] = x[i] ^ 0x80;
}

// The assembly of sums_3x3 and sums_5x5 (below). A tap is given as "row, column, weight": the
// 16 inputs at the window row's pointer plus `column` times the channel count, times the weights
// held in register v<weight>. Two taps' products are summed in int16 (in v31) and widened into
// the sums v25-v28; the inputs go through v29 and v30.
#define INTINFER_TAP_ADDR(row, col) "[%[r" #row "], %[c" #col "]]"
#define INTINFER_TAP_PAIR(ra, ca, wa, rb, cb, wb)       \
  "ldr q29, " INTINFER_TAP_ADDR(ra, ca) "\n"            \
  "ldr q30, " INTINFER_TAP_ADDR(rb, cb) "\n"            \
  "smull v31.8h, v29.8b, v" #wa ".8b\n"                 \
  "smlal v31.8h, v30.8b, v" #wb ".8b\n"                 \
  "saddw v25.4s, v25.4s, v31.4h\n"                      \
  "saddw2 v26.4s, v26.4s, v31.8h\n"                     \
  "smull2 v31.8h, v29.16b, v" #wa ".16b\n"              \
  "smlal2 v31.8h, v30.16b, v" #wb ".16b\n"              \
  "saddw v27.4s, v27.4s, v31.4h\n"                      \
  "saddw2 v28.4s, v28.4s, v31.8h\n"
// The odd last tap, then the pixel's sums stored.
#define INTINFER_TAP_LAST(r, c, w)                      \
  "ldr q29, " INTINFER_TAP_ADDR(r, c) "\n"              \
  "smull v30.8h, v29.8b, v" #w ".8b\n"                  \
  "smull2 v31.8h, v29.16b, v" #w ".16b\n"               \
  "saddw v25.4s, v25.4s, v30.4h\n"                      \
  "saddw2 v26.4s, v26.4s, v30.8h\n"                     \
  "saddw v27.4s, v27.4s, v31.4h\n"                      \
  "saddw2 v28.4s, v28.4s, v31.8h\n"                     \
  "st1 {v25.4s-v28.4s}, [%[sums]], #64\n"
#define INTINFER_NEXT_ROW(r) "add %[r" #r "], %[r" #r "], %[step]\n"
// The loop over the stretch's pixels: each starts from the bias, runs the window's taps and
// moves its rows' pointers to the next pixel.
#define INTINFER_HELD_LOOP(taps, next_rows) \
  "1:\n"                                    \
  "ld1 {v25.4s-v28.4s}, [%[bias]]\n"        \
  taps next_rows                            \
  "subs %[count], %[count], #1\n"           \
  "b.ne 1b\n"
// The registers both loops use besides their weights.
#define INTINFER_HELD_CLOBBERS "cc", "memory", "v25", "v26", "v27", "v28", "v29", "v30", "v31"

// The sums (bias included, before the output stage) of one 16-channel tile for `count` (> 0)
// pixels of a 3x3 or 5x5 window with adjacent taps (dilation 1) over input already minus 128
// (int8): sums[k] gets pixel k's 16 int32. rows[ky] points at the tile's channels of pixel 0's
// tap (ky, 0); tap (ky, kx) is kx * channels bytes further, and each next pixel `step` bytes
// further. In assembly: the taps' weights stay in v0-v24 for the whole stretch, which for 5x5
// leaves exactly v25-v28 for the sums and v29-v31 for the inputs and the int16 products (gcc,
// given the same loop in intrinsics, spilled a third of it). Instructions a pixel: 5x5 136 (12
// pairs of 10, the last tap's 7, the bias load, the store and 7 of loop and addressing), 3x3 54.
// c0 is a register holding 0, so that every tap is addressed alike.
void sums_3x3(const int8_t* weights, const int32_t* bias, const uint8_t* const* rows, size_t channels, size_t step,
              size_t count, int32_t (*sums)[kC]) {
  const uint8_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
  asm volatile(
      "ld1 {v0.16b-v3.16b}, [%[w]], #64\n"
      "ld1 {v4.16b-v7.16b}, [%[w]], #64\n"
      "ld1 {v8.16b}, [%[w]]\n"
      INTINFER_HELD_LOOP(INTINFER_TAP_PAIR(0, 0, 0, 0, 1, 1)
                         INTINFER_TAP_PAIR(0, 2, 2, 1, 0, 3)
                         INTINFER_TAP_PAIR(1, 1, 4, 1, 2, 5)
                         INTINFER_TAP_PAIR(2, 0, 6, 2, 1, 7)
                         INTINFER_TAP_LAST(2, 2, 8),
                         INTINFER_NEXT_ROW(0) INTINFER_NEXT_ROW(1) INTINFER_NEXT_ROW(2))
      : [w] "+r"(weights), [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [count] "+r"(count), [sums] "+r"(sums)
      : [bias] "r"(bias), [step] "r"(step), [c0] "r"(size_t{0}), [c1] "r"(channels), [c2] "r"(2 * channels)
      : INTINFER_HELD_CLOBBERS, "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8");
}

void sums_5x5(const int8_t* weights, const int32_t* bias, const uint8_t* const* rows, size_t channels, size_t step,
              size_t count, int32_t (*sums)[kC]) {
  const uint8_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3], *r4 = rows[4];
  asm volatile(
      "ld1 {v0.16b-v3.16b}, [%[w]], #64\n"
      "ld1 {v4.16b-v7.16b}, [%[w]], #64\n"
      "ld1 {v8.16b-v11.16b}, [%[w]], #64\n"
      "ld1 {v12.16b-v15.16b}, [%[w]], #64\n"
      "ld1 {v16.16b-v19.16b}, [%[w]], #64\n"
      "ld1 {v20.16b-v23.16b}, [%[w]], #64\n"
      "ld1 {v24.16b}, [%[w]]\n"
      INTINFER_HELD_LOOP(INTINFER_TAP_PAIR(0, 0, 0, 0, 1, 1)
                         INTINFER_TAP_PAIR(0, 2, 2, 0, 3, 3)
                         INTINFER_TAP_PAIR(0, 4, 4, 1, 0, 5)
                         INTINFER_TAP_PAIR(1, 1, 6, 1, 2, 7)
                         INTINFER_TAP_PAIR(1, 3, 8, 1, 4, 9)
                         INTINFER_TAP_PAIR(2, 0, 10, 2, 1, 11)
                         INTINFER_TAP_PAIR(2, 2, 12, 2, 3, 13)
                         INTINFER_TAP_PAIR(2, 4, 14, 3, 0, 15)
                         INTINFER_TAP_PAIR(3, 1, 16, 3, 2, 17)
                         INTINFER_TAP_PAIR(3, 3, 18, 3, 4, 19)
                         INTINFER_TAP_PAIR(4, 0, 20, 4, 1, 21)
                         INTINFER_TAP_PAIR(4, 2, 22, 4, 3, 23)
                         INTINFER_TAP_LAST(4, 4, 24),
                         INTINFER_NEXT_ROW(0) INTINFER_NEXT_ROW(1) INTINFER_NEXT_ROW(2) INTINFER_NEXT_ROW(3)
                         INTINFER_NEXT_ROW(4))
      : [w] "+r"(weights), [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [r3] "+r"(r3), [r4] "+r"(r4),
        [count] "+r"(count), [sums] "+r"(sums)
      : [bias] "r"(bias), [step] "r"(step), [c0] "r"(size_t{0}), [c1] "r"(channels), [c2] "r"(2 * channels),
        [c3] "r"(3 * channels), [c4] "r"(4 * channels)
      : INTINFER_HELD_CLOBBERS, "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12",
        "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24");
}
#undef INTINFER_HELD_CLOBBERS
#undef INTINFER_HELD_LOOP
#undef INTINFER_NEXT_ROW
#undef INTINFER_TAP_LAST
#undef INTINFER_TAP_PAIR
#undef INTINFER_TAP_ADDR
#endif

// kTaps > 0: a window of that many taps (3x3, 5x5), whose tap loop is unrolled; 0: any.
// kFlipped: the input holds x - 128 as int8 already and has no padding (`zero_row` unused, null;
// see dwconv_held).
// `stage` by value and the weights' pointers in locals: the output's byte stores may alias
// anything reached through a reference, which made the compiler reload them for every tile.
template <size_t kTaps, bool kFlipped, typename Stage>
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
        const int8x16_t x0 = load16<kFlipped>(tap_at(px, i)), x1 = load16<kFlipped>(tap_at(px, i + 1));
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
        const int8x16_t x0 = load16<kFlipped>(tap_at(px, i));
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
  // A pixel's partial last channel tile (nothing where 16 divides the channels).
  auto partial_tile = [&](size_t index, const uint8_t* origin) {
    uint8_t* const out[1] = {y + index * c_count};
    partial_channel_tile(c_count, taps_count, [origin, &offsets](size_t i) { return origin + offsets[i]; }, partial,
                         [&](size_t c, auto tap_at, size_t valid) {
                           tile(One{}, c, valid, out, [&](size_t, size_t i) { return tap_at(i); });
                         });
  };
  const size_t step = static_cast<size_t>(p.stride_w) * c_count;
  if constexpr (kFlipped) {
#if defined(__aarch64__)
    static_assert(kTaps == 9 || kTaps == 25);
    // 3x3 and 5x5 windows with adjacent taps on flipped input (dwconv_held), on aarch64: channel
    // tiles outer, each tile's weights held in registers for the whole stretch (sums_3x3,
    // sums_5x5), the output stage after it.
    auto held = [&](size_t index, size_t count, const uint8_t* origin) {
      constexpr size_t kSide = kTaps == 9 ? 3 : 5;
      constexpr size_t kChunk = 32;
      int32_t sums[kChunk][kC];
      for (size_t c = 0; c + kC <= c_count; c += kC) {
        ChannelStage s[4];
        for (size_t q = 0; q < 4; ++q) s[q] = stage.channels(c + 4 * q);
        for (size_t k0 = 0; k0 < count; k0 += kChunk) {
          const size_t n = count - k0 < kChunk ? count - k0 : kChunk;
          const uint8_t* first = origin + k0 * step + c;
          const uint8_t* rows[kSide];
          for (size_t ky = 0; ky < kSide; ++ky) rows[ky] = first + offsets[ky * kSide];
          (kSide == 3 ? sums_3x3 : sums_5x5)(weights + c * kTaps, bias + c, rows, c_count, step, n, sums);
          for (size_t k = 0; k < n; ++k) {
            int32x4_t acc[4];
            for (size_t q = 0; q < 4; ++q) acc[q] = stage.requantize(vld1q_s32(sums[k] + 4 * q), s[q]);
            vst1q_u8(y + (index + k0 + k) * c_count + c, stage.narrow16(acc[0], acc[1], acc[2], acc[3]));
          }
        }
      }
      for (size_t k = 0; k < count; ++k) partial_tile(index + k, origin + k * step);
    };
    for_each_window(p, x, zero_row, c_count, row_begin, row_end, taps, offsets, pixel, held);
#endif
  } else if constexpr (kTaps == 9) {
    // 3x3 windows two pixels at a time where the held weights do not run (armv7, dilated rows;
    // 5x5 pairs spill: EfficientNet-Lite0's 5x5 layers took 12.4 M instructions on aarch64 one
    // pixel at a time, 14.3 M in pairs; its 3x3 ones 11.1 M and 10.2 M).
    auto pairs = [&](size_t index, size_t count, const uint8_t* origin) {
      for (; count >= 2; count -= 2, index += 2, origin += 2 * step) {
        uint8_t* const out[2] = {y + index * c_count, y + (index + 1) * c_count};
        for (size_t c = 0; c + kC <= c_count; c += kC)
          tile(std::integral_constant<size_t, 2>{}, c, kC, out,
               [&](size_t px, size_t i) { return origin + px * step + offsets[i] + c; });
        partial_tile(index, origin);
        partial_tile(index + 1, origin + step);
      }
      if (count) pixel(index, [origin, &offsets](size_t i) { return origin + offsets[i]; });
    };
    for_each_window(p, x, zero_row, c_count, row_begin, row_end, taps, offsets, pixel, pairs);
  } else {
    for_each_window(p, x, zero_row, c_count, row_begin, row_end, taps, offsets, pixel);
  }
}

#if defined(__aarch64__)
// A 3x3 or 5x5 window (kTaps 9 or 25) with adjacent taps on aarch64, in bands of output rows:
// the band's input copied flipped to int8 (x - 128), its padding included (the zero point,
// flipped), so that every window of the band lies inside the copy and goes to the held-weights
// loop (on EfficientNet-Lite0's 7x7 and 14x14 images most windows touch the padding), which
// needs no flip per tap: 9 or 25 EOR a window against about 2 instructions per 16 bytes copied
// (for stride 2, whose input is 4 times its output, 8).
template <size_t kTaps, typename Stage>
void dwconv_held(const PackedView& w, const ConvParams& p, const Stage stage, const uint8_t* x,
                 const uint8_t* zero_row, uint8_t* y, size_t row_begin, size_t row_end) {
  constexpr int kBand = 8;  // output rows a band
  const size_t c_count = w.n;
  const int span_h = (p.kernel_h - 1) * p.dilation_h;
  // The copy's columns: the input's from -pad_left, as many as the output's windows span.
  const int width = (p.out_w - 1) * p.stride_w + p.kernel_w;
  const int first = std::min(p.pad_left, width), last = std::min(std::max(p.pad_left + p.in_w, first), width);
  const size_t row_bytes = static_cast<size_t>(width) * c_count;
  const size_t most_rows = std::min<size_t>(kBand, row_end - row_begin);
  const std::unique_ptr<uint8_t[]> band_x(new uint8_t[((most_rows - 1) * p.stride_h + span_h + 1) * row_bytes]);
  const uint8_t pad = zero_row[0] ^ 0x80;  // zero_row holds the input zero point in every channel
  for (size_t row = row_begin; row < row_end;) {
    const size_t b = row / p.out_h;
    const int oy0 = static_cast<int>(row % p.out_h);
    const int rows = static_cast<int>(std::min<size_t>({row_end - row, kBand, static_cast<size_t>(p.out_h - oy0)}));
    const int band_h = (rows - 1) * p.stride_h + span_h + 1;
    for (int r = 0; r < band_h; ++r) {
      uint8_t* const d = band_x.get() + r * row_bytes;
      const int iy = oy0 * p.stride_h - p.pad_top + r;
      if (iy < 0 || iy >= p.in_h) {
        std::memset(d, pad, row_bytes);
        continue;
      }
      std::memset(d, pad, first * c_count);
      if (last > first)
        flip_bytes(x + ((b * p.in_h + iy) * p.in_w + (first - p.pad_left)) * c_count, d + first * c_count,
                   (last - first) * c_count);
      std::memset(d + last * c_count, pad, (width - last) * c_count);
    }
    // The band as an image without padding (no window reads the zero row).
    ConvParams band = p;
    band.in_h = band_h;
    band.in_w = width;
    band.pad_top = band.pad_left = 0;
    band.out_h = rows;
    dwconv_16c1<kTaps, true>(w, band, stage, band_x.get(), nullptr, y + row * p.out_w * c_count, 0, rows);
    row += rows;
  }
}
#endif

}  // namespace

void dwconv_u8s8_16c1__neon(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                            uint8_t* y, size_t row_begin, size_t row_end) {
  with_output_stage(w, p.out, [&](auto stage) {
#if defined(__aarch64__)
    if (w.k == 9 && p.kernel_w == 3 && p.dilation_w == 1)
      return dwconv_held<9>(w, p, stage, x, zero_row, y, row_begin, row_end);
    if (w.k == 25 && p.kernel_w == 5 && p.dilation_w == 1)
      return dwconv_held<25>(w, p, stage, x, zero_row, y, row_begin, row_end);
#endif
    dispatch_tap_count(w.k, [&](auto taps) {
      dwconv_16c1<decltype(taps)::value, false>(w, p, stage, x, zero_row, y, row_begin, row_end);
    });
  });
}

}  // namespace intinfer
