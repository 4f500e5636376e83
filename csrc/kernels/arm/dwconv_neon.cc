#include <arm_neon.h>

#include <cstring>

#include "../dwconv_window.h"
#include "arm_kernels.h"
#include "requant_neon.h"

namespace intinfer {
namespace {

constexpr size_t kC = 8;  // channels per tile

// 8 channels from p as int16; a partial tile goes through a buffer so nothing past the tensor
// is read.
inline int16x8_t load8(const uint8_t* p, size_t valid) {
  if (valid == kC) return vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p)));
  uint8_t tmp[kC] = {0};
  std::memcpy(tmp, p, valid);
  return vreinterpretq_s16_u16(vmovl_u8(vld1_u8(tmp)));
}

}  // namespace

void dwconv_u8s8_8c1__neon(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                           uint8_t* y, size_t row_begin, size_t row_end) {
  const OutputStageNeon stage(w.bias, w.multiplier, w.left_shift, w.right_shift,
                              p.out.zero_point, p.out.act_min, p.out.act_max);
  const size_t c_count = w.n, taps_count = w.k;
  const uint8_t* taps[kDwconvNeonMaxTaps];
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t b = row / p.out_h;
    const int oy = static_cast<int>(row % p.out_h);
    const uint8_t* xb = x + b * p.in_h * p.in_w * c_count;
    for (int ox = 0; ox < p.out_w; ++ox) {
      window_taps(p, xb, zero_row, oy, ox, c_count, taps);
      uint8_t* out = y + (row * p.out_w + ox) * c_count;
      for (size_t tile = 0; tile < w.n_tiles; ++tile) {
        const size_t c = tile * kC;
        const size_t valid = c_count - c < kC ? c_count - c : kC;
        const int16_t* wt = static_cast<const int16_t*>(w.weights) + tile * taps_count * kC;
        int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
        for (size_t i = 0; i < taps_count; ++i) {
          const int16x8_t v = load8(taps[i] + c, valid);
          const int16x8_t wv = vld1q_s16(wt + i * kC);
          acc0 = vmlal_s16(acc0, vget_low_s16(v), vget_low_s16(wv));
          acc1 = vmlal_s16(acc1, vget_high_s16(v), vget_high_s16(wv));
        }
        store_u8x8(out + c, stage.apply8(acc0, acc1, c), valid);
      }
    }
  }
}

}  // namespace intinfer
