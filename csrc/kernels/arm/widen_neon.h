// The high-half widening multiplies and adds of aarch64 (SMULL2, SMLAL2, SADDW2), written with
// the low-half forms on 32-bit NEON, for the kernels built for both.
#pragma once

#include <arm_neon.h>

namespace intinfer {
namespace {

inline int16x8_t mull_high(int8x16_t a, int8x16_t b) {
#if defined(__aarch64__)
  return vmull_high_s8(a, b);
#else
  return vmull_s8(vget_high_s8(a), vget_high_s8(b));
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
