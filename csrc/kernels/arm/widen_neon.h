// The high-half widening multiplies and adds of aarch64 (SMULL2, SMLAL2, SADDW2), written with
// the low-half forms on 32-bit NEON, for the kernels built for both; four bytes loaded as int32
// lanes and stored from the low lanes of a vector, one 32-bit access each.
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace intinfer {
namespace {

// p[0..3] as int32 lanes (one 32-bit load, not four byte loads).
inline int32x4_t widen4_u8(const uint8_t* p) {
  uint32_t bytes;
  std::memcpy(&bytes, p, sizeof bytes);
  return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(bytes))))));
}

// Lanes 0-3 of v to p[0..3] (one 32-bit store).
inline void store4_u8(uint8_t* p, uint8x8_t v) {
  const uint32_t bytes = vget_lane_u32(vreinterpret_u32_u8(v), 0);
  std::memcpy(p, &bytes, sizeof bytes);
}

inline int16x8_t mull_high(int8x16_t a, int8x16_t b) {
#if defined(__aarch64__)
  return vmull_high_s8(a, b);
#else
  return vmull_s8(vget_high_s8(a), vget_high_s8(b));
#endif
}

inline int64x2_t mull_high(int32x4_t a, int32x4_t b) {
#if defined(__aarch64__)
  return vmull_high_s32(a, b);
#else
  return vmull_s32(vget_high_s32(a), vget_high_s32(b));
#endif
}

inline uint64x2_t mull_high(uint32x4_t a, uint32x4_t b) {
#if defined(__aarch64__)
  return vmull_high_u32(a, b);
#else
  return vmull_u32(vget_high_u32(a), vget_high_u32(b));
#endif
}

inline int16x8_t mlal_high(int16x8_t acc, int8x16_t a, int8x16_t b) {
#if defined(__aarch64__)
  return vmlal_high_s8(acc, a, b);
#else
  return vmlal_s8(acc, vget_high_s8(a), vget_high_s8(b));
#endif
}

inline int32x4_t addw_high(int32x4_t acc, int16x8_t v) {
#if defined(__aarch64__)
  return vaddw_high_s16(acc, v);
#else
  return vaddw_s16(acc, vget_high_s16(v));
#endif
}

}  // namespace
}  // namespace intinfer
