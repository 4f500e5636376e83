// The window gather shared by the depthwise kernels of every ISA (ISA-neutral).
#pragma once

#include <cstddef>
#include <cstdint>

#include "params.h"

namespace intinfer {
namespace {

// The input pixels under output pixel (oy, ox) of image xb (NHWC, `channels` per pixel), in
// the weights' tap order, with `zero_row` where the window leaves the input (what the folded
// bias assumes padding reads). Fills kernel_h * kernel_w entries of taps.
inline void window_taps(const ConvParams& p, const uint8_t* xb, const uint8_t* zero_row, int oy, int ox,
                        size_t channels, const uint8_t** taps) {
  for (int ky = 0; ky < p.kernel_h; ++ky) {
    const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
    for (int kx = 0; kx < p.kernel_w; ++kx) {
      const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
      *taps++ = iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w
                    ? zero_row
                    : xb + (static_cast<size_t>(iy) * p.in_w + ix) * channels;
    }
  }
}

}  // namespace
}  // namespace intinfer
