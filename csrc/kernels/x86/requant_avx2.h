// Vector twin of requantize() (ref/requant.h) for 8 int32 lanes, bit-exact.
//
// SRDHM(a, b) = floor((a * b + 2^30) / 2^31) for every a and b > 0 (the multiplier is never
// INT32_MIN): for a*b < 0 the reference's nudge 1 - 2^30 and truncation toward zero give the
// same floor. The 64-bit products come from vpmuldq on even and odd lanes; after adding 2^30,
// a logical shift by 31 leaves the (int32-sized) result in the low half of each 64-bit lane,
// identical to an arithmetic shift there.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace intinfer {

static inline __m256i requantize_avx2(__m256i x, __m256i multiplier, __m256i left, __m256i right) {
  // x * 2^left, saturated to int32 where it overflows.
  const __m256i shifted = _mm256_sllv_epi32(x, left);
  const __m256i overflow = _mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), x),
                                            _mm256_set1_epi32(-1));
  const __m256i saturated = _mm256_xor_si256(_mm256_set1_epi32(INT32_MAX), _mm256_srai_epi32(x, 31));
  x = _mm256_blendv_epi8(shifted, saturated, overflow);

  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  __m256i even = _mm256_mul_epi32(x, multiplier);
  __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(multiplier, 32));
  even = _mm256_srli_epi64(_mm256_add_epi64(even, nudge), 31);
  odd = _mm256_slli_epi64(_mm256_srli_epi64(_mm256_add_epi64(odd, nudge), 31), 32);
  const __m256i high = _mm256_blend_epi32(even, odd, 0xAA);

  // Rounding divide by 2^right, ties away from zero.
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), right), _mm256_set1_epi32(1));
  const __m256i remainder = _mm256_and_si256(high, mask);
  const __m256i threshold = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_srli_epi32(high, 31));
  // cmpgt gives -1 where the remainder rounds up: subtracting it adds 1.
  return _mm256_sub_epi32(_mm256_srav_epi32(high, right), _mm256_cmpgt_epi32(remainder, threshold));
}

}  // namespace intinfer
