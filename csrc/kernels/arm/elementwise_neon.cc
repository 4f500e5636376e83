#include "arm_kernels.h"

#include <arm_neon.h>

#include "../blocks.h"
#include "../ref/kernels.h"
#include "requant_neon.h"
#include "widen_neon.h"

namespace intinfer {
namespace {

// 8 values minus a zero point as two int32x4: 8 consecutive bytes, or one byte repeated when
// step is 0.
struct Centered8 {
  int32x4_t lo, hi;
  Centered8(const uint8_t* p, size_t step, int32_t zero_point) {
    const int16x8_t v = step == 0 ? vdupq_n_s16(*p) : vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p)));
    const int32x4_t z = vdupq_n_s32(zero_point);
    lo = vsubq_s32(vmovl_s16(vget_low_s16(v)), z);
    hi = vsubq_s32(vmovl_s16(vget_high_s16(v)), z);
  }
};

// Adds the output zero point to two int32x4, narrows to 8 bytes (narrow8_plus_zero_point) and
// clamps.
struct Narrow8 {
  int16x8_t zero_point;
  uint8x8_t lo, hi;
  explicit Narrow8(const OutputStage& out)
      : zero_point(vdupq_n_s16(static_cast<int16_t>(out.zero_point))),
        lo(vdup_n_u8(static_cast<uint8_t>(out.act_min))), hi(vdup_n_u8(static_cast<uint8_t>(out.act_max))) {}
  void store(uint8_t* y, int32x4_t a, int32x4_t b) const {
    vst1_u8(y, vmin_u8(vmax_u8(narrow8_plus_zero_point(a, b, zero_point), lo), hi));
  }
};

}  // namespace

namespace {

// An ADD operand's 8 values from element i, (x - z) << kLeftShift requantized by m, as two
// int32x4: USUBL's 16-bit difference is exact as int16 (|x - z| <= 255).
inline void scaled8(const uint8_t* x, uint8x8_t z, const Multiplier& m, int32x4_t out[2]) {
  const int16x8_t d = vreinterpretq_s16_u16(vsubl_u8(vld1_u8(x), z));
  out[0] = m.apply(vshlq_n_s32(vmovl_s16(vget_low_s16(d)), AddParams::kLeftShift));
  out[1] = m.apply(vshlq_n_s32(vmovl_s16(vget_high_s16(d)), AddParams::kLeftShift));
}

// add_u8__neon for operands with one value per element or one for all (kARepeated, kBRepeated:
// step 0, requantized once), the parameters in locals (the byte stores to y may alias p).
// EfficientNet-Lite0's residual adds: 69 -> 55 instructions per 8 outputs.
template <bool kARepeated, bool kBRepeated>
void add_u8_kinds(const AddParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n) {
  const Multiplier ma(p.a_multiplier), mb(p.b_multiplier), mo(p.out_multiplier);
  const uint8x8_t za = vdup_n_u8(static_cast<uint8_t>(p.a_zero_point));
  const uint8x8_t zb = vdup_n_u8(static_cast<uint8_t>(p.b_zero_point));
  const Narrow8 narrow(p.out);
  // A repeated operand: its one value requantized once.
  auto once = [](const uint8_t* x, int32_t z, const Multiplier& m) {
    return m.apply(vdupq_n_s32((static_cast<int32_t>(*x) - z) * (1 << AddParams::kLeftShift)));
  };
  const int32x4_t a_once = kARepeated ? once(a, p.a_zero_point, ma) : vdupq_n_s32(0);
  const int32x4_t b_once = kBRepeated ? once(b, p.b_zero_point, mb) : vdupq_n_s32(0);
  for_each_block<8>(n, [&](size_t i) {
    int32x4_t av[2] = {a_once, a_once}, bv[2] = {b_once, b_once};
    if constexpr (!kARepeated) scaled8(a + i, za, ma, av);
    if constexpr (!kBRepeated) scaled8(b + i, zb, mb, bv);
    narrow.store(y + i, mo.apply(vaddq_s32(av[0], bv[0])), mo.apply(vaddq_s32(av[1], bv[1])));
  }, [&](size_t i, size_t rest) {
    add_u8__ref(p, kARepeated ? a : a + i, kARepeated ? 0 : 1, kBRepeated ? b : b + i, kBRepeated ? 0 : 1, y + i, rest);
  });
}

}  // namespace

void add_u8__neon(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n) {
  if (n == 0) return;  // a repeated operand is read before the loop
  if (a_step == 0)
    return b_step == 0 ? add_u8_kinds<true, true>(p, a, b, y, n) : add_u8_kinds<true, false>(p, a, b, y, n);
  return b_step == 0 ? add_u8_kinds<false, true>(p, a, b, y, n) : add_u8_kinds<false, false>(p, a, b, y, n);
}

void mul_u8__neon(const MulParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n) {
  const Multiplier m(p.multiplier);
  const Narrow8 narrow(p.out);
  for_each_block<8>(n, [&](size_t i) {
    const Centered8 av(a + i * a_step, a_step, p.a_zero_point), bv(b + i * b_step, b_step, p.b_zero_point);
    narrow.store(y + i, m.apply(vmulq_s32(av.lo, bv.lo)), m.apply(vmulq_s32(av.hi, bv.hi)));
  }, [&](size_t i, size_t rest) { mul_u8__ref(p, a + i * a_step, a_step, b + i * b_step, b_step, y + i, rest); });
}

namespace {

// An ADD_WIDE operand: int32 or uint8 values, one per element, or one value for every element
// (step 0).
enum class Operand { kWide, kU8, kRepeated };

// The 4 values from element i of an operand with one per element, as int32.
template <Operand kKind>
inline int32x4_t load4(const void* p, size_t i) {
  if constexpr (kKind == Operand::kWide)
    return vld1q_s32(static_cast<const int32_t*>(p) + i);
  else
    return widen4_u8(static_cast<const uint8_t*>(p) + i);
}

// add_wide__neon for one pair of operand kinds, so the loop tests neither an operand's type nor
// its step; a repeated operand is requantized once.
template <Operand kA, Operand kB>
void add_wide_kinds(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                    size_t n) {
  const Multiplier ma(p.a_multiplier), mb(p.b_multiplier), mo(p.out_multiplier);
  const int32x4_t za = vdupq_n_s32(p.a_zero_point), zb = vdupq_n_s32(p.b_zero_point);
  const int32x4_t lo = vdupq_n_s32(-kWideMax), hi = vdupq_n_s32(kWideMax);
  auto scaled = [](const Multiplier& m, int32x4_t v, int32x4_t z) {
    return m.apply(vshlq_n_s32(vsubq_s32(v, z), AddWideParams::kLeftShift));
  };
  auto repeated = [](const void* v, bool wide) {
    return vdupq_n_s32(wide ? *static_cast<const int32_t*>(v) : *static_cast<const uint8_t*>(v));
  };
  const int32x4_t a_once = kA == Operand::kRepeated ? scaled(ma, repeated(a, p.a_wide), za) : vdupq_n_s32(0);
  const int32x4_t b_once = kB == Operand::kRepeated ? scaled(mb, repeated(b, p.b_wide), zb) : vdupq_n_s32(0);
  for_each_block<4>(n, [&](size_t i) {
    int32x4_t av = a_once, bv = b_once;
    if constexpr (kA != Operand::kRepeated) av = scaled(ma, load4<kA>(a, i), za);
    if constexpr (kB != Operand::kRepeated) bv = scaled(mb, load4<kB>(b, i), zb);
    vst1q_s32(y + i, vminq_s32(vmaxq_s32(mo.apply(vaddq_s32(av, bv)), lo), hi));
  }, [&](size_t i, size_t rest) {
    const size_t a_size = p.a_wide ? 4 : 1, b_size = p.b_wide ? 4 : 1;
    add_wide__ref(p, static_cast<const uint8_t*>(a) + i * a_step * a_size, a_step,
                  static_cast<const uint8_t*>(b) + i * b_step * b_size, b_step, y + i, rest);
  });
}

Operand operand_kind(bool wide, size_t step) {
  return step == 0 ? Operand::kRepeated : (wide ? Operand::kWide : Operand::kU8);
}

template <Operand kA>
void add_wide_b(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                size_t n) {
  switch (operand_kind(p.b_wide, b_step)) {
    case Operand::kWide: return add_wide_kinds<kA, Operand::kWide>(p, a, a_step, b, b_step, y, n);
    case Operand::kU8: return add_wide_kinds<kA, Operand::kU8>(p, a, a_step, b, b_step, y, n);
    default: return add_wide_kinds<kA, Operand::kRepeated>(p, a, a_step, b, b_step, y, n);
  }
}

}  // namespace

void add_wide__neon(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                    size_t n) {
  if (n == 0) return;  // a repeated operand is read before the loop
  switch (operand_kind(p.a_wide, a_step)) {
    case Operand::kWide: return add_wide_b<Operand::kWide>(p, a, a_step, b, b_step, y, n);
    case Operand::kU8: return add_wide_b<Operand::kU8>(p, a, a_step, b, b_step, y, n);
    default: return add_wide_b<Operand::kRepeated>(p, a, a_step, b, b_step, y, n);
  }
}

#if defined(__aarch64__)
namespace {

// rint(x / s) clamped to [lo, hi] first, as the reference: a true division, NaN to 0, ties to
// even (the default rounding mode, as std::nearbyint).
inline int32x4_t rounded_quotient(float32x4_t x, float32x4_t s, float32x4_t lo, float32x4_t hi) {
  float32x4_t v = vdivq_f32(x, s);
  v = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), vceqq_f32(v, v)));
  return vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v, lo), hi));
}

}  // namespace

void quantize_f32_u8__neon(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point) {
  const float32x4_t s = vdupq_n_f32(scale), lo = vdupq_n_f32(-512.0f), hi = vdupq_n_f32(512.0f);
  const Narrow8 narrow(OutputStage{zero_point, 0, 255});
  auto quantize4 = [&](const float* p) { return rounded_quotient(vld1q_f32(p), s, lo, hi); };
  for_each_block<8>(n, [&](size_t i) { narrow.store(y + i, quantize4(x + i), quantize4(x + i + 4)); },
              [&](size_t i, size_t rest) { quantize_f32_u8__ref(x + i, y + i, rest, scale, zero_point); });
}

void wide_from_f32__neon(void* data, size_t n, float scale) {
  float* x = static_cast<float*>(data);
  const float32x4_t s = vdupq_n_f32(scale), lo = vdupq_n_f32(-65536.0f), hi = vdupq_n_f32(65536.0f);
  const int32x4_t q_lo = vdupq_n_s32(-kWideMax), q_hi = vdupq_n_s32(kWideMax);
  for_each_block<4>(n, [&](size_t i) {
    const int32x4_t q = rounded_quotient(vld1q_f32(x + i), s, lo, hi);
    vst1q_s32(reinterpret_cast<int32_t*>(x + i), vminq_s32(vmaxq_s32(q, q_lo), q_hi));
  }, [&](size_t i, size_t rest) { wide_from_f32__ref(x + i, rest, scale); });
}
#endif

}  // namespace intinfer
