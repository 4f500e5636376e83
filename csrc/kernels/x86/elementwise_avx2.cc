#include "x86_kernels.h"

#include <immintrin.h>

#include "../blocks.h"
#include "../ref/kernels.h"
#include "requant_avx2.h"

namespace intinfer {
namespace {

// rint(x / s) clamped to [lo, hi] first, as the reference: a true division, NaN to 0, ties to
// even (the default rounding mode, as std::nearbyint).
inline __m256i rounded_quotient(__m256 x, __m256 s, __m256 lo, __m256 hi) {
  __m256 v = _mm256_div_ps(x, s);
  v = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v);
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// 8 values as int32: 8 consecutive bytes, or one byte repeated when step is 0.
inline __m256i load8(const uint8_t* p, size_t step) {
  if (step == 0) return _mm256_set1_epi32(*p);
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Narrows 8 int32 lanes already within [0, 255] and stores them.
inline void store8(uint8_t* y, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(y), _mm_packus_epi16(w, w));
}

}  // namespace

void add_u8__avx2(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n) {
  const Multiplier ma(p.a_multiplier), mb(p.b_multiplier), mo(p.out_multiplier);
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), zb = _mm256_set1_epi32(p.b_zero_point);
  const __m256i zo = _mm256_set1_epi32(p.out.zero_point);
  const __m256i lo = _mm256_set1_epi32(p.out.act_min), hi = _mm256_set1_epi32(p.out.act_max);
  for_each_block<8>(n, [&](size_t i) {
    const __m256i av = _mm256_slli_epi32(_mm256_sub_epi32(load8(a + i * a_step, a_step), za), AddParams::kLeftShift);
    const __m256i bv = _mm256_slli_epi32(_mm256_sub_epi32(load8(b + i * b_step, b_step), zb), AddParams::kLeftShift);
    const __m256i sum = _mm256_add_epi32(ma.apply(av), mb.apply(bv));
    store8(y + i, _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(mo.apply(sum), zo), lo), hi));
  }, [&](size_t i, size_t rest) { add_u8__ref(p, a + i * a_step, a_step, b + i * b_step, b_step, y + i, rest); });
}

void mul_u8__avx2(const MulParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n) {
  const Multiplier m(p.multiplier);
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), zb = _mm256_set1_epi32(p.b_zero_point);
  const __m256i zo = _mm256_set1_epi32(p.out.zero_point);
  const __m256i lo = _mm256_set1_epi32(p.out.act_min), hi = _mm256_set1_epi32(p.out.act_max);
  for_each_block<8>(n, [&](size_t i) {
    const __m256i prod = _mm256_mullo_epi32(_mm256_sub_epi32(load8(a + i * a_step, a_step), za),
                                            _mm256_sub_epi32(load8(b + i * b_step, b_step), zb));
    store8(y + i, _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(m.apply(prod), zo), lo), hi));
  }, [&](size_t i, size_t rest) { mul_u8__ref(p, a + i * a_step, a_step, b + i * b_step, b_step, y + i, rest); });
}

// 8 operand values as int32: uint8 or int32 elements, consecutive or (step 0) one repeated.
inline __m256i load8_any(const void* p, bool wide, size_t step) {
  if (!wide) return load8(static_cast<const uint8_t*>(p), step);
  const int32_t* v = static_cast<const int32_t*>(p);
  return step == 0 ? _mm256_set1_epi32(*v) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v));
}

void add_wide__avx2(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                    size_t n) {
  const Multiplier ma(p.a_multiplier), mb(p.b_multiplier), mo(p.out_multiplier);
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), zb = _mm256_set1_epi32(p.b_zero_point);
  const __m256i lo = _mm256_set1_epi32(-kWideMax), hi = _mm256_set1_epi32(kWideMax);
  const size_t a_size = p.a_wide ? 4 : 1, b_size = p.b_wide ? 4 : 1;
  const uint8_t *ab = static_cast<const uint8_t*>(a), *bb = static_cast<const uint8_t*>(b);
  for_each_block<8>(n, [&](size_t i) {
    const __m256i av = _mm256_slli_epi32(_mm256_sub_epi32(load8_any(ab + i * a_step * a_size, p.a_wide, a_step), za),
                                         AddWideParams::kLeftShift);
    const __m256i bv = _mm256_slli_epi32(_mm256_sub_epi32(load8_any(bb + i * b_step * b_size, p.b_wide, b_step), zb),
                                         AddWideParams::kLeftShift);
    const __m256i sum = mo.apply(_mm256_add_epi32(ma.apply(av), mb.apply(bv)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_min_epi32(_mm256_max_epi32(sum, lo), hi));
  }, [&](size_t i, size_t rest) {
    add_wide__ref(p, ab + i * a_step * a_size, a_step, bb + i * b_step * b_size, b_step, y + i, rest);
  });
}

void quantize_f32_u8__avx2(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(-512.0f), hi = _mm256_set1_ps(512.0f);
  const __m256i z = _mm256_set1_epi32(zero_point);
  const __m256i q_lo = _mm256_setzero_si256(), q_hi = _mm256_set1_epi32(255);
  for_each_block<8>(n, [&](size_t i) {
    const __m256i q = rounded_quotient(_mm256_loadu_ps(x + i), s, lo, hi);
    store8(y + i, _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(q, z), q_lo), q_hi));
  }, [&](size_t i, size_t rest) { quantize_f32_u8__ref(x + i, y + i, rest, scale, zero_point); });
}

void wide_from_f32__avx2(void* data, size_t n, float scale) {
  float* x = static_cast<float*>(data);
  const __m256 s = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(-65536.0f), hi = _mm256_set1_ps(65536.0f);
  const __m256i q_lo = _mm256_set1_epi32(-kWideMax), q_hi = _mm256_set1_epi32(kWideMax);
  for_each_block<8>(n, [&](size_t i) {
    const __m256i q = rounded_quotient(_mm256_loadu_ps(x + i), s, lo, hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + i), _mm256_min_epi32(_mm256_max_epi32(q, q_lo), q_hi));
  }, [&](size_t i, size_t rest) { wide_from_f32__ref(x + i, rest, scale); });
}

}  // namespace intinfer
