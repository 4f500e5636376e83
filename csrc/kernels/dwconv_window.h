// The window walk shared by the depthwise kernels of every ISA (ISA-neutral).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

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

// Calls pixel(index, tap) for every output pixel of output rows [row_begin, row_end) (row =
// batch * out_h + oy; index = row * out_w + ox), where tap(i) is the input pixel under tap i.
// A pixel whose window lies wholly inside the input (most of them) gets its window's first pixel
// plus a per-layer offset: no bounds checks and no table to fill; a border pixel gets the table
// of window_taps. `taps` and `offsets` hold kernel_h * kernel_w entries. pixel is instantiated
// for both kinds of tap, so each kernel's inner loop is compiled for each.
// With `run` (not std::nullptr_t), each stretch of pixels of a row whose windows are all inside
// goes to run(index, count, origin) instead: pixels index .. index + count - 1, the first one's
// window starting at `origin` and each next one's p.stride_w * channels bytes further (pixel k's
// tap i is origin + k * p.stride_w * channels + offsets[i]), so that a kernel may keep a channel
// tile's weights in registers across the stretch.
template <typename Pixel, typename Run = std::nullptr_t>
inline void for_each_window(const ConvParams& p, const uint8_t* x, const uint8_t* zero_row, size_t channels,
                            size_t row_begin, size_t row_end, const uint8_t** taps, size_t* offsets, Pixel pixel,
                            Run run = nullptr) {
  for (int ky = 0; ky < p.kernel_h; ++ky)
    for (int kx = 0; kx < p.kernel_w; ++kx)
      offsets[ky * p.kernel_w + kx] =
          (static_cast<size_t>(ky) * p.dilation_h * p.in_w + static_cast<size_t>(kx) * p.dilation_w) * channels;
  // The columns whose window is inside horizontally: ox * stride - pad_left >= 0 and
  // ox * stride - pad_left + (kernel_w - 1) * dilation <= in_w - 1.
  const int span_w = (p.kernel_w - 1) * p.dilation_w, span_h = (p.kernel_h - 1) * p.dilation_h;
  const int last = p.in_w - 1 - span_w + p.pad_left;
  const int col_begin = (p.pad_left + p.stride_w - 1) / p.stride_w;
  const int col_end = last < 0 ? 0 : last / p.stride_w + 1 < p.out_w ? last / p.stride_w + 1 : p.out_w;
  // tap(i) of a window inside the input, from its first pixel (one type for every window).
  auto inside_tap = [offsets](const uint8_t* origin) {
    return [origin, offsets](size_t i) { return origin + offsets[i]; };
  };
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t b = row / p.out_h;
    const int oy = static_cast<int>(row % p.out_h);
    const uint8_t* xb = x + b * p.in_h * p.in_w * channels;
    const int iy = oy * p.stride_h - p.pad_top;
    const bool inside = iy >= 0 && iy + span_h < p.in_h;
    for (int ox = 0; ox < p.out_w; ++ox) {
      const size_t index = row * p.out_w + ox;
      if (inside && ox >= col_begin && ox < col_end) {
        const uint8_t* origin = xb + (static_cast<size_t>(iy) * p.in_w + ox * p.stride_w - p.pad_left) * channels;
        if constexpr (!std::is_same_v<Run, std::nullptr_t>) {
          run(index, static_cast<size_t>(col_end - ox), origin);
          ox = col_end - 1;
          continue;
        }
        pixel(index, inside_tap(origin));
      } else {
        window_taps(p, xb, zero_row, oy, ox, channels, taps);
        pixel(index, [taps](size_t i) { return taps[i]; });
      }
    }
  }
}

// The partial last tile of for_each_channel_tile (below) alone: nothing where kC divides c_count.
template <size_t kC, typename Tap, typename Tile>
inline void partial_channel_tile(size_t c_count, size_t taps_count, Tap tap, uint8_t (*partial)[kC], Tile tile) {
  if (const size_t c = c_count / kC * kC; c < c_count) {
    for (size_t i = 0; i < taps_count; ++i) std::memcpy(partial[i], tap(i) + c, c_count - c);
    tile(c, [partial](size_t i) { return static_cast<const uint8_t*>(partial[i]); }, c_count - c);
  }
}

// Calls tile(c, tap_at, valid) for each kC-channel tile of one output pixel (channels
// [c, c + valid)), where tap_at(i) points at channel c of tap i and kC bytes may be read there.
// Full tiles read the input in place; a partial last tile's channels are first copied into
// `partial` (one row per tap), so nothing past the tensor is read.
template <size_t kC, typename Tap, typename Tile>
inline void for_each_channel_tile(size_t c_count, size_t taps_count, Tap tap, uint8_t (*partial)[kC], Tile tile) {
  const size_t full_tiles = c_count / kC;
  for (size_t t = 0; t < full_tiles; ++t) {
    const size_t c = t * kC;
    tile(c, [&](size_t i) { return tap(i) + c; }, kC);
  }
  partial_channel_tile(c_count, taps_count, tap, partial, tile);
}

// Calls kernel(std::integral_constant<size_t, N>{}) with N the window's tap count where it is a
// common one (3x3: 9, 5x5: 25), so the kernel's tap loop is unrolled for it, and N = 0 (any
// count, read at run time) otherwise.
template <typename Kernel>
inline void dispatch_tap_count(size_t taps, Kernel kernel) {
  switch (taps) {
    case 9:
      return kernel(std::integral_constant<size_t, 9>{});
    case 25:
      return kernel(std::integral_constant<size_t, 25>{});
    default:
      return kernel(std::integral_constant<size_t, 0>{});
  }
}

}  // namespace
}  // namespace intinfer
