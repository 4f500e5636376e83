// The window walk shared by the vector pooling kernels of every ISA (ISA-neutral): for each
// output pixel, the input pixels of its window that lie inside the input.
#pragma once

#include <cstddef>
#include <cstdint>

#include "params.h"

namespace intinfer {
namespace {

// Calls f(taps, count, out) for each output pixel of rows (batch * out_h + oy) [row_begin,
// row_end): taps[0..count) (in p.window) point at the window's input pixels inside the input
// (NHWC, p.channels each), out at the pixel's output channels.
template <typename F>
void for_each_pool_window(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end, F&& f) {
  const uint8_t** taps = p.window;
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t b = row / p.out_h;
    const int oy = static_cast<int>(row % p.out_h);
    const uint8_t* xb = x + b * p.in_h * p.in_w * p.channels;
    for (int ox = 0; ox < p.out_w; ++ox) {
      size_t count = 0;
      for (int ky = 0; ky < p.kernel_h; ++ky) {
        const int iy = oy * p.stride_h - p.pad_top + ky;
        if (iy < 0 || iy >= p.in_h) continue;
        for (int kx = 0; kx < p.kernel_w; ++kx) {
          const int ix = ox * p.stride_w - p.pad_left + kx;
          if (ix >= 0 && ix < p.in_w) taps[count++] = xb + (static_cast<size_t>(iy) * p.in_w + ix) * p.channels;
        }
      }
      f(taps, count, y + (row * p.out_w + ox) * p.channels);
    }
  }
}

// The reference's arithmetic for channels [c_begin, p.channels) of one window: the tails the
// vector kernels leave.
inline void avg_pool_tail(const PoolParams& p, const uint8_t* const* taps, size_t count, size_t c_begin, uint8_t* out) {
  const QuantizedMultiplier m = p.multipliers[p.count_include_pad ? 0 : count - 1];
  for (size_t c = c_begin; c < static_cast<size_t>(p.channels); ++c) {
    int32_t acc = 0;
    for (size_t t = 0; t < count; ++t) acc += static_cast<int32_t>(taps[t][c]) - p.input_zero_point;
    out[c] = p.out.apply(acc, m);
  }
}

inline void max_pool_tail(const PoolParams& p, const uint8_t* const* taps, size_t count, size_t c_begin, uint8_t* out) {
  for (size_t c = c_begin; c < static_cast<size_t>(p.channels); ++c) {
    uint8_t m = 0;
    for (size_t t = 0; t < count; ++t) m = taps[t][c] > m ? taps[t][c] : m;
    out[c] = clamp_u8(m, p.out.act_min, p.out.act_max);
  }
}

}  // namespace
}  // namespace intinfer
