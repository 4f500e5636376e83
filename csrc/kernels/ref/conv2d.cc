#include "../codes.h"
#include "kernels.h"

namespace intinfer {
namespace {

// Output channel oc's codes are one row of kernel_h * kernel_w * cin_g codes (OHWI) in C's form.
template <typename C>
void conv2d(const ConvParams& p, const uint8_t* x, const uint8_t* w, const int32_t* bias, uint8_t* y,
            size_t row_begin, size_t row_end) {
  const int cin_g = p.in_c / p.groups;
  const int cout_g = p.out_c / p.groups;
  const size_t channel_bytes = C::row_bytes(static_cast<size_t>(p.kernel_h) * p.kernel_w * cin_g);
  for (size_t row = row_begin; row < row_end; ++row) {
    const int b = static_cast<int>(row / p.out_h);
    const int oy = static_cast<int>(row % p.out_h);
    const uint8_t* xb = x + static_cast<size_t>(b) * p.in_h * p.in_w * p.in_c;
    for (int ox = 0; ox < p.out_w; ++ox) {
      uint8_t* out = y + (row * p.out_w + ox) * p.out_c;
      for (int oc = 0; oc < p.out_c; ++oc) {
        const int g = oc / cout_g;
        const uint8_t* wc = w + static_cast<size_t>(oc) * channel_bytes;
        int32_t acc = bias[oc];
        for (int ky = 0; ky < p.kernel_h; ++ky) {
          const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
          for (int kx = 0; kx < p.kernel_w; ++kx) {
            const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
            const bool inside = iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w;
            const uint8_t* xp = inside ? xb + (static_cast<size_t>(iy) * p.in_w + ix) * p.in_c + g * cin_g : nullptr;
            const size_t tap = static_cast<size_t>(ky * p.kernel_w + kx) * cin_g;
            for (int ic = 0; ic < cin_g; ++ic) {
              // The folded bias assumes every tap reads a value; padding reads the zero point.
              const int32_t xv = inside ? xp[ic] : p.input_zero_point;
              acc += xv * C::at(wc, tap + ic);
            }
          }
        }
        out[oc] = p.out.apply(acc, p.multipliers[oc]);
      }
    }
  }
}

}  // namespace

void conv2d_u8s8__ref(const ConvParams& p, const uint8_t* x, const int8_t* w, const int32_t* bias, uint8_t* y,
                      size_t row_begin, size_t row_end) {
  conv2d<Codes<8>>(p, x, reinterpret_cast<const uint8_t*>(w), bias, y, row_begin, row_end);
}

void conv2d_u8sub__ref(const ConvParams& p, int bits, const uint8_t* x, const void* w, const int32_t* bias, uint8_t* y,
                       size_t row_begin, size_t row_end) {
  with_codes(bits, [&](auto codes) {
    conv2d<decltype(codes)>(p, x, static_cast<const uint8_t*>(w), bias, y, row_begin, row_end);
  });
}

}  // namespace intinfer
