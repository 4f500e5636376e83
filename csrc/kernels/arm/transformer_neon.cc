#include "arm_kernels.h"

#include <arm_neon.h>

#include <type_traits>

#include "../ref/kernels.h"
#include "../transformer_math.h"
#include "requant_neon.h"
#include "widen_neon.h"

namespace intinfer {
namespace {

// 4 inputs as int32.
inline int32x4_t load4(const uint8_t* x) { return widen4_u8(x); }
inline int32x4_t load4(const int32_t* x) { return vld1q_s32(x); }

// (v + 2^(shift - 1)) >> shift of the 64-bit products of a and b, narrowed to 32 bits (RSHRN):
// signed and unsigned.
template <int kShift>
inline int32x4_t mul_round_shift(int32x4_t a, int32x4_t b) {
  return vcombine_s32(vrshrn_n_s64(vmull_s32(vget_low_s32(a), vget_low_s32(b)), kShift),
                      vrshrn_n_s64(mull_high(a, b), kShift));
}
template <int kShift>
inline uint32x4_t mul_round_shift(uint32x4_t a, uint32x4_t b) {
  return vcombine_u32(vrshrn_n_u64(vmull_u32(vget_low_u32(a), vget_low_u32(b)), kShift),
                      vrshrn_n_u64(mull_high(a, b), kShift));
}

inline int64_t sum_lanes(int64x2_t v) { return vgetq_lane_s64(v, 0) + vgetq_lane_s64(v, 1); }

// kShifts: the view's (w.shifts).
template <RequantShifts kShifts, typename T, typename Out>
void layer_norm_rows(const LayerNormParams& p, const LayerNormView& w, const T* x, Out* y,
                     size_t row_begin, size_t row_end) {
  const size_t full = p.h / 4 * 4;
  const int32x4_t h = vdupq_n_s32(static_cast<int32_t>(p.h));
  const int32x4_t out_zp = vdupq_n_s32(p.out.zero_point);
  const int32x4_t lo = vdupq_n_s32(p.out.act_min), hi = vdupq_n_s32(p.out.act_max);
  const int16x8_t out_zp16 = vdupq_n_s16(static_cast<int16_t>(p.out.zero_point));
  const uint8x8_t lo8 = vdup_n_u8(static_cast<uint8_t>(p.out.act_min));
  const uint8x8_t hi8 = vdup_n_u8(static_cast<uint8_t>(p.out.act_max));
  const bool clamp_u8 = p.out.act_min > 0 || p.out.act_max < 255;
  const int64_t hh = static_cast<int64_t>(p.h);
  // The per-channel arrays in locals: the byte stores to y may alias the view, which would
  // reload its pointers at every step.
  const int32_t *offset = w.offset, *sign = w.sign, *multiplier = w.multiplier, *left_shift = w.left_shift,
                *right_shift = w.right_shift, *bias = w.bias;
  for (size_t r = row_begin; r < row_end; ++r) {
    const T* xr = x + r * p.h;
    Out* yr = y + r * p.h;
    // sum(x - z) fits int32 (H <= 1024 for wide inputs, 8192 for uint8).
    // Summed as x, less full z at the end, modulo 2^32 (the true sum fits).
    uint32x4_t s = vdupq_n_u32(0);
    for (size_t c = 0; c < full; c += 4) s = vaddq_u32(s, vreinterpretq_u32_s32(load4(xr + c)));
    const uint32_t lanes = vgetq_lane_u32(s, 0) + vgetq_lane_u32(s, 1) + vgetq_lane_u32(s, 2) + vgetq_lane_u32(s, 3);
    int64_t sum = static_cast<int32_t>(lanes - static_cast<uint32_t>(full) * static_cast<uint32_t>(p.input_zero_point));
    for (size_t c = full; c < p.h; ++c) sum += static_cast<int64_t>(xr[c]) - p.input_zero_point;
    // d = H (x - z) - sum = H x - (H z + sum): one multiply-add, modulo 2^32 as d itself fits.
    const int32x4_t base = vdupq_n_s32(static_cast<int32_t>(static_cast<uint32_t>(-(hh * p.input_zero_point + sum))));
    // V = sum d^2 with widening multiplies into 64-bit lanes.
    int64x2_t v2 = vdupq_n_s64(0);
    for (size_t c = 0; c < full; c += 4) {
      const int32x4_t d = vmlaq_s32(base, h, load4(xr + c));
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
    const int32x4_t inv_lo = vdupq_n_s32(static_cast<int32_t>(inv & 0x7FFFFFFF));
    // Channels c..c+3 requantized, before the bias and the zero point.
    auto requantized4 = [&](size_t c) {
      const int32x4_t d = vmlaq_s32(base, h, load4(xr + c));
      const int32x4_t t = vmlaq_s32(mul_round_shift<31>(d, inv_lo), d, inv_hi);
      const int32x4_t signed_t = vmlaq_s32(vld1q_s32(offset + c), t, vld1q_s32(sign + c));
      const int32x4_t left = kShifts == RequantShifts::kLeft ? vld1q_s32(left_shift + c) : vdupq_n_s32(0);
      return requantize_shifts_neon<kShifts>(signed_t, vld1q_s32(multiplier + c), left,
                                             vnegq_s32(vld1q_s32(right_shift + c)));
    };
    auto output4 = [&](size_t c) {
      const int32x4_t sum = vaddq_s32(vaddq_s32(requantized4(c), vld1q_s32(bias + c)), out_zp);
      const int32x4_t q = vminq_s32(vmaxq_s32(sum, lo), hi);
      if constexpr (std::is_same_v<Out, int32_t>) {
        vst1q_s32(yr + c, q);
      } else {
        const uint16x4_t q16 = vqmovun_s32(q);
        store4_u8(yr + c, vqmovn_u16(vcombine_u16(q16, q16)));
      }
    };
    // 8 channels a step; uint8 outputs narrowed together, the zero point added after the
    // narrowing to int16 (narrow8_plus_zero_point) and the range clamped on the bytes (clamp:
    // narrower than [0, 255]): 6.1 instructions a channel against 7.5 four at a time (cortex-a53).
    auto output8 = [&](size_t c, auto clamp) {
      if constexpr (std::is_same_v<Out, int32_t>) {
        output4(c);
        output4(c + 4);
      } else {
        uint8x8_t v = narrow8_plus_zero_point(vaddq_s32(requantized4(c), vld1q_s32(bias + c)),
                                              vaddq_s32(requantized4(c + 4), vld1q_s32(bias + c + 4)), out_zp16);
        if constexpr (decltype(clamp)::value) v = vmin_u8(vmax_u8(v, lo8), hi8);
        vst1_u8(yr + c, v);
      }
    };
    size_t c = 0;
    if (clamp_u8)
      for (; c + 8 <= full; c += 8) output8(c, std::true_type{});
    else
      for (; c + 8 <= full; c += 8) output8(c, std::false_type{});
    if (c < full) output4(c);
    for (size_t c = full; c < p.h; ++c)
      yr[c] = static_cast<Out>(
          layer_norm_output(p, hh * (static_cast<int64_t>(xr[c]) - p.input_zero_point) - sum, inv, c));
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

// Whether every one of the n mask bytes is non-zero.
bool all_attended(size_t n, const uint8_t* mask) {
  const size_t full = n / 16 * 16;
  uint8x16_t all = vdupq_n_u8(0xFF);
  for (size_t j = 0; j < full; j += 16) all = vandq_u8(all, vtstq_u8(vld1q_u8(mask + j), vld1q_u8(mask + j)));
  const uint8x8_t half = vand_u8(vget_low_u8(all), vget_high_u8(all));
  if (vget_lane_u64(vreinterpret_u64_u8(half), 0) != ~uint64_t{0}) return false;
  for (size_t j = full; j < n; ++j)
    if (!mask[j]) return false;
  return true;
}

// layer_norm_rows for w's shifts and p's output type.
template <typename T>
void layer_norm_any(const LayerNormParams& p, const LayerNormView& w, const T* x, void* y, size_t row_begin,
                    size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) {
    switch (w.shifts) {
      case RequantShifts::kRight:
        return layer_norm_rows<RequantShifts::kRight>(p, w, x, out, row_begin, row_end);
      case RequantShifts::kRightOrNone:
        return layer_norm_rows<RequantShifts::kRightOrNone>(p, w, x, out, row_begin, row_end);
      default:
        return layer_norm_rows<RequantShifts::kLeft>(p, w, x, out, row_begin, row_end);
    }
  });
}

}  // namespace

void layer_norm_u8__neon(const LayerNormParams& p, const LayerNormView& w, const uint8_t* x, void* y,
                         size_t row_begin, size_t row_end) {
  layer_norm_any(p, w, x, y, row_begin, row_end);
}

void layer_norm_wide__neon(const LayerNormParams& p, const LayerNormView& w, const int32_t* x, void* y,
                           size_t row_begin, size_t row_end) {
  layer_norm_any(p, w, x, y, row_begin, row_end);
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
  uint32_t* e = reinterpret_cast<uint32_t*>(scratch);
  // In a local: the stores to e may alias p, which would reload the table's address at every step.
  const int32_t* table = p.exp_table;
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* xr = x + r * p.n;
    const uint8_t* mr = mask ? mask[r] : nullptr;
    uint8_t* yr = y + r * p.n;
    const int32_t top = softmax_row_max_neon(p.n, xr, mr, yr);
    if (top < 0) continue;  // nothing attended: written as zeros
    uint64_t sum = 0;
    size_t j = 0;
    if (mr && !all_attended(p.n, mr)) {
      // A masked position may hold a logit above the attended maximum: its table index is not read.
      for (; j < p.n; ++j) {
        e[j] = mr[j] ? static_cast<uint32_t>(table[top - xr[j]]) : 0;
        sum += e[j];
      }
    } else {
      // 16 a step: the table indices top - x (in [0, 255]: top is the maximum) in one vector
      // subtraction, each entry then one load from the table and one store, and the step's
      // entries summed in vector registers (UADALP into 64-bit lanes): 3.9 instructions an entry
      // against 5.5 for a load, subtraction, lookup, store and add each (cortex-a53,
      // all-MiniLM-L6-v2 at 128 tokens: 2 M instructions fewer).
      const uint8x16_t vtop = vdupq_n_u8(static_cast<uint8_t>(top));
      uint64x2_t sums = vdupq_n_u64(0);
      for (; j + 16 <= p.n; j += 16) {
        uint8_t d[16];
        vst1q_u8(d, vsubq_u8(vtop, vld1q_u8(xr + j)));
#pragma GCC unroll 16
        for (size_t i = 0; i < 16; ++i) e[j + i] = static_cast<uint32_t>(table[d[i]]);
        for (size_t i = 0; i < 16; i += 4) sums = vpadalq_u32(sums, vld1q_u32(e + j + i));
      }
      sum = vgetq_lane_u64(sums, 0) + vgetq_lane_u64(sums, 1);
      for (; j < p.n; ++j) sum += e[j] = static_cast<uint32_t>(table[top - xr[j]]);
    }
    const uint64_t inv = (uint64_t{1} << 32) / sum;
    // (e * inv + 2^23) >> 24 narrowed to 16 bits, then to bytes with unsigned saturation, which is
    // the cap at 255. sum >= table[0] = 2^16 bounds inv by 2^16 and e * inv by 2^32: in 32 bits
    // (MUL, URSHR) unless inv = 2^16 (sum = 2^16: one entry of 2^16 and the rest 0), with
    // widening multiplies (UMULL, RSHRN) then.
    const uint32x4_t vinv = vdupq_n_u32(static_cast<uint32_t>(inv));
    auto quotients32 = [&](uint32x4_t v) { return vqmovn_u32(vrshrq_n_u32(vmulq_u32(v, vinv), 24)); };
    auto quotients64 = [&](uint32x4_t v) { return vqmovn_u32(mul_round_shift<24>(v, vinv)); };
    auto store8 = [&](size_t i, auto quotients) {
      vst1_u8(yr + i, vqmovn_u16(vcombine_u16(quotients(vld1q_u32(e + i)), quotients(vld1q_u32(e + i + 4)))));
    };
    j = 0;
    if (inv < (uint64_t{1} << 16)) {
      for (; j + 8 <= p.n; j += 8) store8(j, quotients32);
    } else {
      for (; j + 8 <= p.n; j += 8) store8(j, quotients64);
    }
    for (; j < p.n; ++j) yr[j] = softmax_output(e[j], inv);
  }
}

}  // namespace intinfer
