// Vector twin of requantize() (ref/requant.h) for 8 int32 lanes, bit-exact.
//
// SRDHM(a, b) = floor((a * b + 2^30) / 2^31) for every a and b > 0 (the multiplier is never
// INT32_MIN): for a*b < 0 the reference's nudge 1 - 2^30 and truncation toward zero give the
// same floor. The 64-bit products come from vpmuldq on even and odd lanes; after adding 2^30,
// a logical shift by 31 leaves the (int32-sized) result in the low half of each 64-bit lane,
// identical to an arithmetic shift there.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../ref/requant.h"

namespace intinfer {
namespace {

// `with_left_shift` false skips the left shift when no lane has one (the common case: real
// multipliers below 1).
static inline __m256i requantize_avx2(__m256i x, __m256i multiplier, __m256i left, __m256i right,
                                      bool with_left_shift = true) {
  if (with_left_shift) {
    // x * 2^left, saturated to int32 where it overflows.
    const __m256i shifted = _mm256_sllv_epi32(x, left);
    const __m256i overflow = _mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), x),
                                              _mm256_set1_epi32(-1));
    const __m256i saturated = _mm256_xor_si256(_mm256_set1_epi32(INT32_MAX), _mm256_srai_epi32(x, 31));
    x = _mm256_blendv_epi8(shifted, saturated, overflow);
  }

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

// One QuantizedMultiplier for every lane: requantize() of 8 lanes.
struct Multiplier {
  __m256i m, left, right;
  bool any_left;
  explicit Multiplier(QuantizedMultiplier q)
      : m(_mm256_set1_epi32(q.multiplier)), left(_mm256_set1_epi32(q.shift > 0 ? q.shift : 0)),
        right(_mm256_set1_epi32(q.shift > 0 ? 0 : -q.shift)), any_left(q.shift > 0) {}
  __m256i apply(__m256i x) const { return requantize_avx2(x, m, left, right, any_left); }
};

// 16 int32 lanes (a: 0-7, b: 8-15) already within [0, 255] as 16 bytes in order: the
// saturating packs only narrow.
static inline __m128i narrow_u8x16(__m256i a, __m256i b) {
  const __m256i v16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi16(v16, v16), 0x88));
}

// The per-channel output stage of 16 channels [c, c + 16): bias, requantization, zero point,
// clamp, narrowed to 16 bytes in channel order.
struct OutputStageAvx2 {
  const int32_t* bias;
  const int32_t* multiplier;
  const int32_t* left_shift;
  const int32_t* right_shift;
  __m256i zero_point, lo, hi;
  bool any_left_shift;

  // l and r hold `channels` entries (padded further to a multiple of 16).
  OutputStageAvx2(const int32_t* b, const int32_t* m, const int32_t* l, const int32_t* r, size_t channels, int32_t zp,
                  int32_t act_min, int32_t act_max)
      : bias(b), multiplier(m), left_shift(l), right_shift(r), zero_point(_mm256_set1_epi32(zp)),
        lo(_mm256_set1_epi32(act_min)), hi(_mm256_set1_epi32(act_max)), any_left_shift(false) {
    for (size_t c = 0; c < channels; ++c) any_left_shift |= l[c] != 0;
  }

  __m256i stage8(__m256i acc, size_t c) const {
    auto at = [c](const int32_t* v) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c)); };
    acc = _mm256_add_epi32(acc, at(bias));
    acc = _mm256_add_epi32(requantize_avx2(acc, at(multiplier), at(left_shift), at(right_shift), any_left_shift),
                           zero_point);
    return _mm256_min_epi32(_mm256_max_epi32(acc, lo), hi);
  }

  __m128i apply16(__m256i acc0, __m256i acc1, size_t c) const {
    return narrow_u8x16(stage8(acc0, c), stage8(acc1, c + 8));
  }
};

// Real-valued outputs of 16 channels [c, c + 16): float(acc + bias) * scale, one conversion and
// one multiply as in the reference; only the channels below n are stored.
static inline void store_f32x16(const int32_t* bias, const float* scales, size_t n, float* y, size_t c, __m256i acc0,
                                __m256i acc1) {
  alignas(32) float tmp[16];
  const __m256i* b = reinterpret_cast<const __m256i*>(bias + c);
  _mm256_store_ps(tmp, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc0, _mm256_loadu_si256(b))),
                                     _mm256_loadu_ps(scales + c)));
  _mm256_store_ps(tmp + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc1, _mm256_loadu_si256(b + 1))),
                                         _mm256_loadu_ps(scales + c + 8)));
  const size_t valid = n - c < 16 ? n - c : 16;
  for (size_t i = 0; i < valid; ++i) y[c + i] = tmp[i];
}

// Stores the first `valid` (<= 16) bytes of v.
static inline void store_u8x16(uint8_t* dst, __m128i v, size_t valid) {
  if (valid == 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), v);
    return;
  }
  alignas(16) uint8_t tmp[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
  for (size_t i = 0; i < valid; ++i) dst[i] = tmp[i];
}

}  // namespace
}  // namespace intinfer
