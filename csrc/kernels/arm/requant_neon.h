// NEON twin of requantize() (ref/requant.h) for 4 int32 lanes, bit-exact, and the per-channel
// output stage of the GEMM and depthwise kernels. Builds for aarch64 and 32-bit ARM.
//
// - x * 2^left saturated to int32: SQSHL (vqshlq_s32) saturates exactly as the reference.
// - SRDHM: SQRDMULH (vqrdmulhq_s32) computes sat((2ab + 2^31) >> 32) = floor((ab + 2^30) / 2^31),
//   which is the reference's result for every a and b > 0 (for ab < 0 its nudge 1 - 2^30 and
//   truncation toward zero give the same floor); both saturate INT32_MIN * INT32_MIN.
// - Rounding divide by 2^right, ties away from zero: SRSHL by -right (vrshlq_s32) rounds ties
//   upward, so negative values are first moved down by one (gemmlowp's fix-up). A negative
//   x >= INT32_MIN + 1 cannot saturate there; x = INT32_MIN stays, and
//   (INT32_MIN + 2^(right-1)) >> right = INT32_MIN >> right as the reference.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "../pack.h"

namespace intinfer {
namespace {

// The multiplier and the right shift of x already shifted left (or with no left shift to do);
// `neg_right` holds -right (SRSHL shifts right for negative counts).
static inline int32x4_t requantize_right_neon(int32x4_t x, int32x4_t multiplier, int32x4_t neg_right) {
  x = vqrdmulhq_s32(x, multiplier);
  const int32x4_t fixup = vshrq_n_s32(vandq_s32(x, neg_right), 31);  // -1 where x < 0 and right > 0
  return vrshlq_s32(vqaddq_s32(x, fixup), neg_right);
}

static inline int32x4_t requantize_neon(int32x4_t x, int32x4_t multiplier, int32x4_t left, int32x4_t neg_right) {
  return requantize_right_neon(vqshlq_s32(x, left), multiplier, neg_right);
}

// One QuantizedMultiplier for every lane: requantize() of 4 lanes.
struct Multiplier {
  int32x4_t m, left, neg_right;
  explicit Multiplier(QuantizedMultiplier q)
      : m(vdupq_n_s32(q.multiplier)), left(vdupq_n_s32(q.shift > 0 ? q.shift : 0)),
        neg_right(vdupq_n_s32(q.shift > 0 ? 0 : q.shift)) {}
  int32x4_t apply(int32x4_t x) const { return requantize_neon(x, m, left, neg_right); }
};

// bias, requantization, zero point and clamp of 8 channels [c, c + 8), narrowed to 8 bytes.
struct OutputStageNeon {
  const int32_t* bias;
  const int32_t* multiplier;
  const int32_t* left_shift;
  const int32_t* right_shift;
  int32x4_t zero_point;
  uint8x8_t lo, hi;

  OutputStageNeon(const int32_t* b, const int32_t* m, const int32_t* l, const int32_t* r, int32_t zp,
                  int32_t act_min, int32_t act_max)
      : bias(b), multiplier(m), left_shift(l), right_shift(r), zero_point(vdupq_n_s32(zp)),
        lo(vdup_n_u8(static_cast<uint8_t>(act_min))), hi(vdup_n_u8(static_cast<uint8_t>(act_max))) {}

  int32x4_t stage4(int32x4_t acc, size_t c) const {
    acc = vaddq_s32(acc, vld1q_s32(bias + c));
    acc = requantize_neon(acc, vld1q_s32(multiplier + c), vld1q_s32(left_shift + c), vnegq_s32(vld1q_s32(right_shift + c)));
    return vaddq_s32(acc, zero_point);
  }

  // Saturating narrows to [0, 255] first: act_min >= 0 and act_max <= 255, so clamping after the
  // narrowing gives what clamping the int32 would.
  uint8x8_t apply8(int32x4_t acc0, int32x4_t acc1, size_t c) const {
    const int16x8_t v16 = vcombine_s16(vqmovn_s32(stage4(acc0, c)), vqmovn_s32(stage4(acc1, c + 4)));
    return vmin_u8(vmax_u8(vqmovun_s16(v16), lo), hi);
  }
};

// Stores the first `valid` (<= 8) bytes of v.
static inline void store_u8x8(uint8_t* dst, uint8x8_t v, size_t valid) {
  if (valid == 8) {
    vst1_u8(dst, v);
    return;
  }
  uint8_t tmp[8];
  vst1_u8(tmp, v);
  for (size_t i = 0; i < valid; ++i) dst[i] = tmp[i];
}

// Real-valued outputs of 8 channels [c, c + 8): float(acc + bias) * scale, in scalar code as
// the reference (32-bit NEON flushes subnormal products to zero); only channels below n are
// stored.
static inline void store_f32x8(const int32_t* bias, const float* scales, size_t n, float* y, size_t c, int32x4_t acc0,
                               int32x4_t acc1) {
  int32_t tmp[8];
  vst1q_s32(tmp, vaddq_s32(acc0, vld1q_s32(bias + c)));
  vst1q_s32(tmp + 4, vaddq_s32(acc1, vld1q_s32(bias + c + 4)));
  const size_t valid = n - c < 8 ? n - c : 8;
  for (size_t i = 0; i < valid; ++i) y[c + i] = static_cast<float>(tmp[i]) * scales[c + i];
}

}  // namespace
}  // namespace intinfer
