// NEON twin of requantize() (ref/requant.h) for 4 int32 lanes, bit-exact, and the per-channel
// output stage of the GEMM and depthwise kernels. Builds for aarch64 and 32-bit ARM.
//
// - x * 2^left saturated to int32: SQSHL (vqshlq_s32) saturates exactly as the reference.
// - SRDHM: SQRDMULH (vqrdmulhq_s32) computes sat((2ab + 2^31) >> 32) = floor((ab + 2^30) / 2^31),
//   which is the reference's result for every a and b > 0 (for ab < 0 its nudge 1 - 2^30 and
//   truncation toward zero give the same floor); both saturate INT32_MIN * INT32_MIN.
// - Rounding divide by 2^right, ties away from zero: SRSHL by -right (vrshlq_s32) rounds ties
//   upward, so negative values are first moved down by one (gemmlowp's fix-up), by one SSRA:
//   x + ((x & -right) >> 31) is x - 1 where x < 0 and right > 0 (the sign bit of x & -right).
//   It cannot wrap: SQRDMULH never returns INT32_MIN (|a * b| <= 2^62 with equality only for
//   a = b = INT32_MIN, a positive product, so a negative result is at least
//   floor((-2^63 + 2^32 + 2^31) / 2^32) = INT32_MIN + 1).
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../pack.h"
#include "widen_neon.h"

namespace intinfer {
namespace {

// The multiplier and the right shift of x already shifted left (or with no left shift to do);
// `neg_right` holds -right (SRSHL shifts right for negative counts).
static inline int32x4_t requantize_right_neon(int32x4_t x, int32x4_t multiplier, int32x4_t neg_right) {
  x = vqrdmulhq_s32(x, multiplier);
  return vrshlq_s32(vsraq_n_s32(x, vandq_s32(x, neg_right), 31), neg_right);
}

static inline int32x4_t requantize_neon(int32x4_t x, int32x4_t multiplier, int32x4_t left, int32x4_t neg_right) {
  return requantize_right_neon(vqshlq_s32(x, left), multiplier, neg_right);
}

// requantize_neon for multipliers whose shifts are kShifts (RequantShifts, pack.h): kLeft shifts
// left first (SQSHL); kRight, every lane shifting right (or multiplying by 0, which leaves 0 to
// shift), moves every negative value down by one with one SSRA of its own sign, where
// kRightOrNone needs the AND with -right that leaves a lane without a shift alone.
template <RequantShifts kShifts>
inline int32x4_t requantize_shifts_neon(int32x4_t x, int32x4_t multiplier, int32x4_t left, int32x4_t neg_right) {
  if constexpr (kShifts == RequantShifts::kLeft) x = vqshlq_s32(x, left);
  if constexpr (kShifts != RequantShifts::kRight) return requantize_right_neon(x, multiplier, neg_right);
  x = vqrdmulhq_s32(x, multiplier);
  return vrshlq_s32(vsraq_n_s32(x, x, 31), neg_right);
}

// q0 and q1 (requantized, before the zero point) plus the zero point, narrowed to 8 bytes with
// saturation. The zero point is added after the narrowing to int16, with saturation: one add for 8
// outputs (two in int32), and exact: z is in [0, 255], so where q saturates to int16 (|q| > 32767)
// or q + z does, the true q + z lies outside [0, 255] on the same side, where the narrowing to
// uint8 saturates it to the same bound.
inline uint8x8_t narrow8_plus_zero_point(int32x4_t q0, int32x4_t q1, int16x8_t zero_point) {
  return vqmovun_s16(vqaddq_s16(vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1)), zero_point));
}

// One QuantizedMultiplier for every lane: requantize() of 4 lanes.
struct Multiplier {
  int32x4_t m, left, neg_right;
  explicit Multiplier(QuantizedMultiplier q)
      : m(vdupq_n_s32(q.multiplier)), left(vdupq_n_s32(q.shift > 0 ? q.shift : 0)),
        neg_right(vdupq_n_s32(q.shift > 0 ? 0 : q.shift)) {}
  int32x4_t apply(int32x4_t x) const { return requantize_neon(x, m, left, neg_right); }
};

// The per-channel parameters of the output stage for 4 channels, loaded once for every row that
// uses them.
struct ChannelStage {
  int32x4_t bias, multiplier, left, neg_right;
};

// Bias, requantization, zero point and clamp of uint8 outputs with per-channel multipliers,
// specialised on what the layer needs (a 4x16 GEMM tile's 64 outputs take 32 fewer
// instructions with neither a left shift, a channel without a right shift, nor a clamp):
// - kShifts (PackedView::shifts): requantize_shifts_neon.
// - kClamp: the activation's range is narrower than [0, 255]; the saturating narrowing gives
//   [0, 255] alone.
// - The zero point is added after the narrowing to int16 (narrow8_plus_zero_point).
template <RequantShifts kShifts, bool kClamp>
struct OutputStageNeon {
  const int32_t* bias;
  const int32_t* multiplier;
  const int32_t* left_shift;
  const int32_t* right_shift;
  int16x8_t zero_point;
  uint8x16_t lo, hi;

  OutputStageNeon(const PackedView& w, const OutputStage& out)
      : bias(w.bias), multiplier(w.multiplier), left_shift(w.left_shift), right_shift(w.right_shift),
        zero_point(vdupq_n_s16(static_cast<int16_t>(out.zero_point))),
        lo(vdupq_n_u8(static_cast<uint8_t>(out.act_min))), hi(vdupq_n_u8(static_cast<uint8_t>(out.act_max))) {}

  ChannelStage channels(size_t c) const {
    return {vld1q_s32(bias + c), vld1q_s32(multiplier + c),
            kShifts == RequantShifts::kLeft ? vld1q_s32(left_shift + c) : vdupq_n_s32(0),
            vnegq_s32(vld1q_s32(right_shift + c))};
  }

  // x (bias included) requantized: int32, before the zero point.
  int32x4_t requantize(int32x4_t x, const ChannelStage& s) const {
    return requantize_shifts_neon<kShifts>(x, s.multiplier, s.left, s.neg_right);
  }

  int32x4_t apply4(int32x4_t acc, const ChannelStage& s) const { return requantize(vaddq_s32(acc, s.bias), s); }

  // Requantized lanes plus the zero point, narrowed to bytes (above) and clamped: act_min >= 0
  // and act_max <= 255, so clamping after the narrowing gives what clamping the int32 would.
  uint8x8_t narrow8(int32x4_t q0, int32x4_t q1) const {
    const uint8x8_t v = narrow8_plus_zero_point(q0, q1, zero_point);
    if constexpr (!kClamp) return v;
    return vmin_u8(vmax_u8(v, vget_low_u8(lo)), vget_low_u8(hi));
  }
  uint8x16_t narrow16(int32x4_t q0, int32x4_t q1, int32x4_t q2, int32x4_t q3) const {
    const uint8x16_t v =
        vcombine_u8(narrow8_plus_zero_point(q0, q1, zero_point), narrow8_plus_zero_point(q2, q3, zero_point));
    if constexpr (!kClamp) return v;
    return vminq_u8(vmaxq_u8(v, lo), hi);
  }

  // The 8 channels [c, c + 8) of one row.
  uint8x8_t apply8(int32x4_t acc0, int32x4_t acc1, size_t c) const {
    return narrow8(apply4(acc0, channels(c)), apply4(acc1, channels(c + 4)));
  }

  // The instance store_4x8_right computes.
  static constexpr bool kRightNoClamp = kShifts == RequantShifts::kRight && !kClamp;
};

#if defined(__aarch64__)
// A whole 4 x 8 tile of OutputStageNeon<kRight, false>: acc[r][q] (channels 4q..4q+3 of row r,
// the bias not yet added) through apply4 and narrow8, row r stored at y + r * y_stride; the same
// instructions, in one asm statement: 60 (3 LDP of the parameters, 2 NEG, 13 a row, 3 ADD of the
// row address). Around the pairs kernel's assembly (gemm_neon_s8pairs.cc), gcc kept the stage's
// pointers and zero point on the stack and recomputed the rows' addresses: EfficientNet-Lite0
// (138k such tiles) 118.11 -> 116.47 M instructions on cortex-a53.
#define INTINFER_STORE_ROW(x0, x1)                                                                   \
  "add %[t0].4s, %[" #x0 "].4s, %[b0].4s\n\t" "add %[t1].4s, %[" #x1 "].4s, %[b1].4s\n\t"             \
  "sqrdmulh %[t0].4s, %[t0].4s, %[m0].4s\n\t" "sqrdmulh %[t1].4s, %[t1].4s, %[m1].4s\n\t"             \
  "ssra %[t0].4s, %[t0].4s, #31\n\t" "ssra %[t1].4s, %[t1].4s, #31\n\t"                               \
  "srshl %[t0].4s, %[t0].4s, %[r0].4s\n\t" "srshl %[t1].4s, %[t1].4s, %[r1].4s\n\t"                   \
  "sqxtn %[t0].4h, %[t0].4s\n\t" "sqxtn2 %[t0].8h, %[t1].4s\n\t"                                      \
  "sqadd %[t0].8h, %[t0].8h, %[zp].8h\n\t"                                                            \
  "sqxtun %[t0].8b, %[t0].8h\n\t"                                                                     \
  "str %d[t0], [%[y]]\n\t"
inline void store_4x8_right(const int32x4_t acc[4][2], const int32_t* bias, const int32_t* multiplier,
                            const int32_t* right_shift, int16x8_t zero_point, uint8_t* y, size_t y_stride) {
  int32x4_t t0, t1, b0, b1, m0, m1, r0, r1;
  // volatile: its outputs are scratch, which would let the compiler drop a plain asm statement.
  asm volatile("ldp %q[b0], %q[b1], [%[bias]]\n\t"
               "ldp %q[m0], %q[m1], [%[mult]]\n\t"
               "ldp %q[r0], %q[r1], [%[right]]\n\t"
               "neg %[r0].4s, %[r0].4s\n\t" "neg %[r1].4s, %[r1].4s\n\t"
               INTINFER_STORE_ROW(a00, a01) "add %[y], %[y], %[stride]\n\t"
               INTINFER_STORE_ROW(a10, a11) "add %[y], %[y], %[stride]\n\t"
               INTINFER_STORE_ROW(a20, a21) "add %[y], %[y], %[stride]\n\t"
               INTINFER_STORE_ROW(a30, a31)
               : [t0] "=&w"(t0), [t1] "=&w"(t1), [b0] "=&w"(b0), [b1] "=&w"(b1), [m0] "=&w"(m0), [m1] "=&w"(m1),
                 [r0] "=&w"(r0), [r1] "=&w"(r1), [y] "+r"(y)
               : [a00] "w"(acc[0][0]), [a01] "w"(acc[0][1]), [a10] "w"(acc[1][0]), [a11] "w"(acc[1][1]),
                 [a20] "w"(acc[2][0]), [a21] "w"(acc[2][1]), [a30] "w"(acc[3][0]), [a31] "w"(acc[3][1]),
                 [zp] "w"(zero_point), [bias] "r"(bias), [mult] "r"(multiplier), [right] "r"(right_shift),
                 [stride] "r"(y_stride)
               : "memory");
}

// A whole 4 x 8 tile of a MATMUL (matmul_neon.h) with one multiplier that shifts right (neg_right
// < 0) and no clamp: row r of acc plus its row term (row_terms[r]) and the columns' terms, then
// store_4x8_right's instructions (the column terms in its bias): 68 instructions, about half what
// the general per-row path compiled to.
inline void store_4x8_right_rows(const int32x4_t acc[4][2], const int32_t* row_terms, const int32_t* col_terms,
                                 int32x4_t multiplier, int32x4_t neg_right, int16x8_t zero_point, uint8_t* y,
                                 size_t y_stride) {
  int32x4_t t0, t1, b0, b1;
#define INTINFER_ROW_TERM(x0, x1)                                                                          \
  "ld1r {%[t1].4s}, [%[rows]], #4\n\t"                                                                     \
  "add %[t0].4s, %[" #x0 "].4s, %[t1].4s\n\t" "add %[t1].4s, %[" #x1 "].4s, %[t1].4s\n\t"
  asm volatile("ldp %q[b0], %q[b1], [%[cols]]\n\t"
               INTINFER_ROW_TERM(a00, a01) INTINFER_STORE_ROW(t0, t1) "add %[y], %[y], %[stride]\n\t"
               INTINFER_ROW_TERM(a10, a11) INTINFER_STORE_ROW(t0, t1) "add %[y], %[y], %[stride]\n\t"
               INTINFER_ROW_TERM(a20, a21) INTINFER_STORE_ROW(t0, t1) "add %[y], %[y], %[stride]\n\t"
               INTINFER_ROW_TERM(a30, a31) INTINFER_STORE_ROW(t0, t1)
               : [t0] "=&w"(t0), [t1] "=&w"(t1), [b0] "=&w"(b0), [b1] "=&w"(b1), [y] "+r"(y), [rows] "+r"(row_terms)
               : [a00] "w"(acc[0][0]), [a01] "w"(acc[0][1]), [a10] "w"(acc[1][0]), [a11] "w"(acc[1][1]),
                 [a20] "w"(acc[2][0]), [a21] "w"(acc[2][1]), [a30] "w"(acc[3][0]), [a31] "w"(acc[3][1]),
                 [m0] "w"(multiplier), [m1] "w"(multiplier), [r0] "w"(neg_right), [r1] "w"(neg_right),
                 [zp] "w"(zero_point), [cols] "r"(col_terms), [stride] "r"(y_stride)
               : "memory");
#undef INTINFER_ROW_TERM
}
#undef INTINFER_STORE_ROW
#endif

// kernel(stage) for one instance, out of line: each instance of a kernel is then a function of
// its own, compiled as one alone would be (inlined together into the caller, gcc stopped
// inlining the tile loop into some and spilled in others: +9% instructions on a 4 x 8 GEMM).
template <RequantShifts kShifts, bool kClamp, typename Kernel>
[[gnu::noinline]] void run_output_stage(const PackedView& w, const OutputStage& out, Kernel& kernel) {
  kernel(OutputStageNeon<kShifts, kClamp>(w, out));
}

// kernel(stage) with the OutputStageNeon instance w's shifts and out's range need (kernels take
// it by value: see dwconv_16c1).
template <typename Kernel>
inline void with_output_stage(const PackedView& w, const OutputStage& out, Kernel&& kernel) {
  const bool clamp = out.act_min > 0 || out.act_max < 255;
  switch (w.shifts) {
    case RequantShifts::kRight:
      return clamp ? run_output_stage<RequantShifts::kRight, true>(w, out, kernel)
                   : run_output_stage<RequantShifts::kRight, false>(w, out, kernel);
    case RequantShifts::kRightOrNone:
      return clamp ? run_output_stage<RequantShifts::kRightOrNone, true>(w, out, kernel)
                   : run_output_stage<RequantShifts::kRightOrNone, false>(w, out, kernel);
    default:  // kLeft: the general instance, right for any shifts
      return clamp ? run_output_stage<RequantShifts::kLeft, true>(w, out, kernel)
                   : run_output_stage<RequantShifts::kLeft, false>(w, out, kernel);
  }
}

// Stores the first `valid` (<= 8) bytes of v. A part of 8 goes out as 4, 2 and 1 bytes from the
// low lanes (store4_u8 and the like), not by a byte loop: gcc turned that loop into a call to
// memcpy, and no vector register but the low halves of v8-v15 survives a call, so a GEMM tile's
// accumulators lived on the stack through the output stage of every tile, whole or not.
static inline void store_u8x8(uint8_t* dst, uint8x8_t v, size_t valid) {
  if (valid == 8) {
    vst1_u8(dst, v);
    return;
  }
  if (valid & 4) {
    store4_u8(dst, v);
    dst += 4;
    v = vext_u8(v, v, 4);
  }
  if (valid & 2) {
    const uint16_t bytes = vget_lane_u16(vreinterpret_u16_u8(v), 0);
    std::memcpy(dst, &bytes, sizeof bytes);
    dst += 2;
    v = vext_u8(v, v, 2);
  }
  if (valid & 1) vst1_lane_u8(dst, v, 0);
}

// Stores the first `valid` (<= 16) bytes of v.
static inline void store_u8x16(uint8_t* dst, uint8x16_t v, size_t valid) {
  if (valid >= 16) {
    vst1q_u8(dst, v);
    return;
  }
  store_u8x8(dst, vget_low_u8(v), valid < 8 ? valid : 8);
  if (valid > 8) store_u8x8(dst + 8, vget_high_u8(v), valid - 8);
}

// Real-valued outputs of 8 channels [c, c + 8): float(acc + bias) * scale, as the reference
// (float(acc) * scale where kAddBias is false: acc holds the bias already); only channels below
// n are stored. On aarch64 a whole group of 8 in vector code (SCVTF and FMUL round as the scalar
// conversion and product do, and keep subnormals); on armv7, and for the last channels of a
// layer, in scalar code (32-bit NEON flushes subnormal products to zero).
template <bool kAddBias = true>
static inline void store_f32x8(const int32_t* bias, const float* scales, size_t n, float* y, size_t c, int32x4_t acc0,
                               int32x4_t acc1) {
  const int32x4_t sum0 = kAddBias ? vaddq_s32(acc0, vld1q_s32(bias + c)) : acc0;
  const int32x4_t sum1 = kAddBias ? vaddq_s32(acc1, vld1q_s32(bias + c + 4)) : acc1;
#if defined(__aarch64__)
  if (n - c >= 8) {
    vst1q_f32(y + c, vmulq_f32(vcvtq_f32_s32(sum0), vld1q_f32(scales + c)));
    vst1q_f32(y + c + 4, vmulq_f32(vcvtq_f32_s32(sum1), vld1q_f32(scales + c + 4)));
    return;
  }
#endif
  int32_t tmp[8];
  vst1q_s32(tmp, sum0);
  vst1q_s32(tmp + 4, sum1);
  const size_t valid = n - c < 8 ? n - c : 8;
  for (size_t i = 0; i < valid; ++i) y[c + i] = static_cast<float>(tmp[i]) * scales[c + i];
}

}  // namespace
}  // namespace intinfer
