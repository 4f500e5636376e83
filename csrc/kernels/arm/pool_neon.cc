#include "arm_kernels.h"

#include <arm_neon.h>

#include "../blocks.h"
#include "../pool_window.h"
#include "../ref/kernels.h"
#include "requant_neon.h"

namespace intinfer {

void avg_pool_u8__neon(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end) {
  const int32x4_t zero_point = vdupq_n_s32(p.out.zero_point);
  const uint8x8_t lo = vdup_n_u8(static_cast<uint8_t>(p.out.act_min)), hi = vdup_n_u8(static_cast<uint8_t>(p.out.act_max));
  const size_t full = static_cast<size_t>(p.channels) / 8 * 8;
  for_each_pool_window(p, x, y, row_begin, row_end, [&](const uint8_t* const* taps, size_t count, uint8_t* out) {
    const QuantizedMultiplier q = p.multipliers[p.count_include_pad ? 0 : count - 1];
    const int32x4_t m = vdupq_n_s32(q.multiplier);
    const int32x4_t left = vdupq_n_s32(q.shift > 0 ? q.shift : 0), neg_right = vdupq_n_s32(q.shift > 0 ? 0 : q.shift);
    const int32x4_t offset = vdupq_n_s32(static_cast<int32_t>(count) * p.input_zero_point);
    for (size_t c = 0; c < full; c += 8) {
      uint32x4_t acc0 = vdupq_n_u32(0), acc1 = vdupq_n_u32(0);
      for (size_t t = 0; t < count; ++t) {
        const uint16x8_t v = vmovl_u8(vld1_u8(taps[t] + c));
        acc0 = vaddw_u16(acc0, vget_low_u16(v));
        acc1 = vaddw_u16(acc1, vget_high_u16(v));
      }
      auto stage = [&](uint32x4_t acc) {
        const int32x4_t centered = vsubq_s32(vreinterpretq_s32_u32(acc), offset);
        return vaddq_s32(requantize_neon(centered, m, left, neg_right), zero_point);
      };
      const int16x8_t v16 = vcombine_s16(vqmovn_s32(stage(acc0)), vqmovn_s32(stage(acc1)));
      vst1_u8(out + c, vmin_u8(vmax_u8(vqmovun_s16(v16), lo), hi));
    }
    avg_pool_tail(p, taps, count, full, out);
  });
}

void max_pool_u8__neon(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end) {
  const uint8x16_t lo = vdupq_n_u8(static_cast<uint8_t>(p.out.act_min)), hi = vdupq_n_u8(static_cast<uint8_t>(p.out.act_max));
  const size_t full = static_cast<size_t>(p.channels) / 16 * 16;
  for_each_pool_window(p, x, y, row_begin, row_end, [&](const uint8_t* const* taps, size_t count, uint8_t* out) {
    for (size_t c = 0; c < full; c += 16) {
      uint8x16_t m = vdupq_n_u8(0);
      for (size_t t = 0; t < count; ++t) m = vmaxq_u8(m, vld1q_u8(taps[t] + c));
      vst1q_u8(out + c, vminq_u8(vmaxq_u8(m, lo), hi));
    }
    max_pool_tail(p, taps, count, full, out);
  });
}

#if defined(__aarch64__)
void lut_u8__neon(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n) {
  const uint8x16x4_t t0 = vld1q_u8_x4(table), t1 = vld1q_u8_x4(table + 64);
  const uint8x16x4_t t2 = vld1q_u8_x4(table + 128), t3 = vld1q_u8_x4(table + 192);
  const uint8x16_t step = vdupq_n_u8(64);
  for_each_block<16>(n, [&](size_t i) {
    // TBL gives 0 and TBX keeps the destination for indices past 63: each quarter of the table
    // fills the lanes whose index, moved down by its offset (wrapping), falls inside it.
    uint8x16_t index = vld1q_u8(x + i);
    uint8x16_t r = vqtbl4q_u8(t0, index);
    index = vsubq_u8(index, step);
    r = vqtbx4q_u8(r, t1, index);
    index = vsubq_u8(index, step);
    r = vqtbx4q_u8(r, t2, index);
    index = vsubq_u8(index, step);
    vst1q_u8(y + i, vqtbx4q_u8(r, t3, index));
  }, [&](size_t i, size_t rest) { lut_u8__ref(table, x + i, y + i, rest); });
}

void dequantize_u8_f32__neon(const uint8_t* x, float* y, size_t n, float scale, int32_t zero_point) {
  const float32x4_t s = vdupq_n_f32(scale);
  const int32x4_t z = vdupq_n_s32(zero_point);
  for_each_block<8>(n, [&](size_t i) {
    const int16x8_t v = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(x + i)));
    // int32 -> float is exact here (|v - z| <= 255); one rounding, in the multiply, as the reference.
    vst1q_f32(y + i, vmulq_f32(vcvtq_f32_s32(vsubq_s32(vmovl_s16(vget_low_s16(v)), z)), s));
    vst1q_f32(y + i + 4, vmulq_f32(vcvtq_f32_s32(vsubq_s32(vmovl_s16(vget_high_s16(v)), z)), s));
  }, [&](size_t i, size_t rest) { dequantize_u8_f32__ref(x + i, y + i, rest, scale, zero_point); });
}
#endif

}  // namespace intinfer
