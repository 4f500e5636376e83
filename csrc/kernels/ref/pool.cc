#include "kernels.h"

namespace intinfer {
namespace {

// Calls f(iy, ix) for the window positions of output (oy, ox) that lie inside the input.
template <typename F>
void for_window(const PoolParams& p, int oy, int ox, F&& f) {
  for (int ky = 0; ky < p.kernel_h; ++ky) {
    const int iy = oy * p.stride_h - p.pad_top + ky;
    if (iy < 0 || iy >= p.in_h) continue;
    for (int kx = 0; kx < p.kernel_w; ++kx) {
      const int ix = ox * p.stride_w - p.pad_left + kx;
      if (ix >= 0 && ix < p.in_w) f(iy, ix);
    }
  }
}

// Calls f(xb, oy, ox, out) for each output pixel of rows [row_begin, row_end): xb is the
// pixel's input image, out its output channels.
template <typename F>
void for_each_output(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end, F&& f) {
  for (size_t row = row_begin; row < row_end; ++row) {
    const int b = static_cast<int>(row / p.out_h);
    const int oy = static_cast<int>(row % p.out_h);
    const uint8_t* xb = x + static_cast<size_t>(b) * p.in_h * p.in_w * p.channels;
    for (int ox = 0; ox < p.out_w; ++ox) f(xb, oy, ox, y + (row * p.out_w + ox) * p.channels);
  }
}

}  // namespace

void avg_pool_u8__ref(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end) {
  for_each_output(p, x, y, row_begin, row_end, [&](const uint8_t* xb, int oy, int ox, uint8_t* out) {
    for (int c = 0; c < p.channels; ++c) {
      int32_t acc = 0, count = 0;
      for_window(p, oy, ox, [&](int iy, int ix) {
        acc += static_cast<int32_t>(xb[(static_cast<size_t>(iy) * p.in_w + ix) * p.channels + c]) - p.input_zero_point;
        ++count;
      });
      out[c] = p.out.apply(acc, p.multipliers[p.count_include_pad ? 0 : count - 1]);
    }
  });
}

void max_pool_u8__ref(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end) {
  for_each_output(p, x, y, row_begin, row_end, [&](const uint8_t* xb, int oy, int ox, uint8_t* out) {
    for (int c = 0; c < p.channels; ++c) {
      int32_t m = 0;
      for_window(p, oy, ox, [&](int iy, int ix) {
        const int32_t v = xb[(static_cast<size_t>(iy) * p.in_w + ix) * p.channels + c];
        m = v > m ? v : m;
      });
      out[c] = clamp_u8(m, p.out.act_min, p.out.act_max);
    }
  });
}

}  // namespace intinfer
