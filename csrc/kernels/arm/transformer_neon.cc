#include "arm_kernels.h"

#include <arm_neon.h>


#include "../ref/kernels.h"
#include "../transformer_math.h"
#include "requant_neon.h"

namespace intinfer {
namespace {

// 4 inputs minus the zero point as int32.
inline int32x4_t load4(const uint8_t* x, int32x4_t zero_point) {
  const uint8_t b[8] = {x[0], x[1], x[2], x[3], 0, 0, 0, 0};
  return vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vld1_u8(b))))), zero_point);
}
inline int32x4_t load4(const int32_t* x, int32x4_t zero_point) { return vsubq_s32(vld1q_s32(x), zero_point); }

inline int64_t sum_lanes(int64x2_t v) { return vgetq_lane_s64(v, 0) + vgetq_lane_s64(v, 1); }

template <typename T>
void layer_norm_rows(const LayerNormParams& p, const LayerNormView& w, const T* x, uint8_t* y,
                     size_t row_begin, size_t row_end) {
  const size_t full = p.h / 4 * 4;
  const int32x4_t zp = vdupq_n_s32(p.input_zero_point), h = vdupq_n_s32(static_cast<int32_t>(p.h));
  const int32x4_t out_zp = vdupq_n_s32(p.out.zero_point);
  const int32x4_t lo = vdupq_n_s32(p.out.act_min), hi = vdupq_n_s32(p.out.act_max);
  const int64_t hh = static_cast<int64_t>(p.h);
  for (size_t r = row_begin; r < row_end; ++r) {
    const T* xr = x + r * p.h;
    uint8_t* yr = y + r * p.h;
    // sum(x - z) fits int32 (H <= 1024 for wide inputs, 8192 for uint8).
    int32x4_t s = vdupq_n_s32(0);
    for (size_t c = 0; c < full; c += 4) s = vaddq_s32(s, load4(xr + c, zp));
    int64_t sum = static_cast<int64_t>(vgetq_lane_s32(s, 0)) + vgetq_lane_s32(s, 1) + vgetq_lane_s32(s, 2) +
                  vgetq_lane_s32(s, 3);
    for (size_t c = full; c < p.h; ++c) sum += static_cast<int64_t>(xr[c]) - p.input_zero_point;
    // V = sum d^2 with widening multiplies into 64-bit lanes.
    const int32x4_t vsum = vdupq_n_s32(static_cast<int32_t>(sum));
    int64x2_t v2 = vdupq_n_s64(0);
    for (size_t c = 0; c < full; c += 4) {
      const int32x4_t d = vsubq_s32(vmulq_s32(h, load4(xr + c, zp)), vsum);
      v2 = vmlal_s32(v2, vget_low_s32(d), vget_low_s32(d));
      v2 = vmlal_s32(v2, vget_high_s32(d), vget_high_s32(d));
    }
    uint64_t v = static_cast<uint64_t>(sum_lanes(v2));
    for (size_t c = full; c < p.h; ++c) {
      const int64_t d = hh * (static_cast<int64_t>(xr[c]) - p.input_zero_point) - sum;
      v += static_cast<uint64_t>(d * d);
    }
    const int64_t inv = layer_norm_inverse(v);
    // t = (d * inv + 2^30) >> 31 with inv = inv_hi 2^31 + inv_lo, as in the AVX2 kernel:
    // d * inv_hi (<= 2^15) plus the 64-bit (d * inv_lo + 2^30) >> 31.
    const int32x4_t inv_hi = vdupq_n_s32(static_cast<int32_t>(inv >> 31));
    const int32x2_t inv_lo = vdup_n_s32(static_cast<int32_t>(inv & 0x7FFFFFFF));
    const int64x2_t nudge = vdupq_n_s64(int64_t{1} << 30);
    for (size_t c = 0; c < full; c += 4) {
      const int32x4_t d = vsubq_s32(vmulq_s32(h, load4(xr + c, zp)), vsum);
      const int32x2_t t_lo = vmovn_s64(vshrq_n_s64(vmlal_s32(nudge, vget_low_s32(d), inv_lo), 31));
      const int32x2_t t_hi = vmovn_s64(vshrq_n_s64(vmlal_s32(nudge, vget_high_s32(d), inv_lo), 31));
      const int32x4_t t = vaddq_s32(vmulq_s32(d, inv_hi), vcombine_s32(t_lo, t_hi));
      const int32x4_t signed_t = vmlaq_s32(vld1q_s32(w.offset + c), t, vld1q_s32(w.sign + c));
      int32x4_t q = requantize_neon(signed_t, vld1q_s32(w.multiplier + c),
                                    vld1q_s32(w.left_shift + c), vnegq_s32(vld1q_s32(w.right_shift + c)));
      q = vminq_s32(vmaxq_s32(vaddq_s32(vaddq_s32(q, vld1q_s32(w.bias + c)), out_zp), lo), hi);
      const uint16x4_t q16 = vqmovun_s32(q);
      uint8_t b[8];
      vst1_u8(b, vqmovn_u16(vcombine_u16(q16, q16)));
      for (size_t i = 0; i < 4; ++i) yr[c + i] = b[i];
    }
    for (size_t c = full; c < p.h; ++c)
      yr[c] = layer_norm_output(p, hh * (static_cast<int64_t>(xr[c]) - p.input_zero_point) - sum, inv, c);
  }
}

// softmax_row_max (transformer_math.h) 16 inputs a step: masked inputs count as 0, below or
// equal to any attended one.
int32_t softmax_row_max_neon(size_t n, const uint8_t* x, const uint8_t* mask, uint8_t* y) {
  const size_t full = n / 16 * 16;
  uint8x16_t top = vdupq_n_u8(0), kept = vdupq_n_u8(0);
  for (size_t j = 0; j < full; j += 16) {
    uint8x16_t v = vld1q_u8(x + j);
    if (mask) {
      const uint8x16_t attended = vtstq_u8(vld1q_u8(mask + j), vld1q_u8(mask + j));
      v = vandq_u8(v, attended);
      kept = vorrq_u8(kept, attended);
    }
    top = vmaxq_u8(top, v);
  }
  uint8x8_t t = vmax_u8(vget_low_u8(top), vget_high_u8(top));
  t = vpmax_u8(t, t);
  t = vpmax_u8(t, t);
  t = vpmax_u8(t, t);
  const uint8x8_t k = vorr_u8(vget_low_u8(kept), vget_high_u8(kept));
  const bool any = full > 0 && (!mask || vget_lane_u64(vreinterpret_u64_u8(k), 0) != 0);
  return softmax_row_max_from(full, n, x, mask, y, vget_lane_u8(t, 0), any);
}

}  // namespace

void layer_norm_u8__neon(const LayerNormParams& p, const LayerNormView& w, const uint8_t* x, uint8_t* y,
                         size_t row_begin, size_t row_end) {
  layer_norm_rows(p, w, x, y, row_begin, row_end);
}

void layer_norm_wide__neon(const LayerNormParams& p, const LayerNormView& w, const int32_t* x, uint8_t* y,
                           size_t row_begin, size_t row_end) {
  layer_norm_rows(p, w, x, y, row_begin, row_end);
}

void gather_rows_wide__neon(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                            const int32_t* rows, size_t n_rows, int32_t* y) {
  if (bits != 8) {
    gather_rows_wide__ref(bits, table, h, row_multipliers, rows, n_rows, y);
    return;
  }
  const size_t full = h / 8 * 8;
  const int32x4_t lo = vdupq_n_s32(-kWideMax), hi = vdupq_n_s32(kWideMax);
  for (size_t i = 0; i < n_rows; ++i) {
    const int8_t* src = static_cast<const int8_t*>(table) + static_cast<size_t>(rows[i]) * h;
    const QuantizedMultiplier m = row_multipliers[rows[i]];
    const Multiplier mult(m);
    int32_t* yr = y + i * h;
    for (size_t c = 0; c < full; c += 8) {
      const int16x8_t codes = vmovl_s8(vld1_s8(src + c));
      const int32x4_t q0 = mult.apply(vmovl_s16(vget_low_s16(codes)));
      const int32x4_t q1 = mult.apply(vmovl_s16(vget_high_s16(codes)));
      vst1q_s32(yr + c, vminq_s32(vmaxq_s32(q0, lo), hi));
      vst1q_s32(yr + c + 4, vminq_s32(vmaxq_s32(q1, lo), hi));
    }
    for (size_t c = full; c < h; ++c) yr[c] = clamp_wide(requantize(src[c], m));
  }
}

void softmax_u8__neon(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                      size_t row_begin, size_t row_end, int32_t* scratch) {
  const size_t full = p.n / 4 * 4;
  uint32_t* e = reinterpret_cast<uint32_t*>(scratch);
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* xr = x + r * p.n;
    const uint8_t* mr = mask ? mask[r] : nullptr;
    uint8_t* yr = y + r * p.n;
    const int32_t top = softmax_row_max_neon(p.n, xr, mr, yr);
    if (top < 0) continue;  // nothing attended: written as zeros
    uint64_t sum = 0;
    for (size_t j = 0; j < p.n; ++j) {
      e[j] = !mr || mr[j] ? static_cast<uint32_t>(p.exp_table[top - xr[j]]) : 0;
      sum += e[j];
    }
    const uint64_t inv = (uint64_t{1} << 32) / sum;
    // e * inv < 2^33: widening multiplies into 64-bit lanes, then (+ 2^23) >> 24, capped at 255.
    const uint32x2_t vinv = vdup_n_u32(static_cast<uint32_t>(inv));
    const uint64x2_t nudge = vdupq_n_u64(uint64_t{1} << 23);
    const uint32x4_t cap = vdupq_n_u32(255);
    for (size_t j = 0; j < full; j += 4) {
      const uint32x4_t ev = vld1q_u32(e + j);
      const uint32x2_t q_lo = vmovn_u64(vshrq_n_u64(vmlal_u32(nudge, vget_low_u32(ev), vinv), 24));
      const uint32x2_t q_hi = vmovn_u64(vshrq_n_u64(vmlal_u32(nudge, vget_high_u32(ev), vinv), 24));
      const uint32x4_t q = vminq_u32(vcombine_u32(q_lo, q_hi), cap);
      const uint16x4_t q16 = vmovn_u32(q);
      uint8_t b[8];
      vst1_u8(b, vmovn_u16(vcombine_u16(q16, q16)));
      for (size_t i = 0; i < 4; ++i) yr[j + i] = b[i];
    }
    for (size_t j = full; j < p.n; ++j) yr[j] = softmax_output(e[j], inv);
  }
}

}  // namespace intinfer
