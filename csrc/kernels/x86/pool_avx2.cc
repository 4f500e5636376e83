#include "x86_kernels.h"

#include <immintrin.h>

#include "../blocks.h"
#include "../pool_window.h"
#include "../ref/kernels.h"
#include "requant_avx2.h"

namespace intinfer {

void avg_pool_u8__avx2(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end) {
  const __m256i zero_point = _mm256_set1_epi32(p.out.zero_point);
  const __m256i lo = _mm256_set1_epi32(p.out.act_min), hi = _mm256_set1_epi32(p.out.act_max);
  const size_t full = static_cast<size_t>(p.channels) / 16 * 16;
  for_each_pool_window(p, x, y, row_begin, row_end, [&](const uint8_t* const* taps, size_t count, uint8_t* out) {
    const QuantizedMultiplier q = p.multipliers[p.count_include_pad ? 0 : count - 1];
    const __m256i m = _mm256_set1_epi32(q.multiplier);
    const __m256i left = _mm256_set1_epi32(q.shift > 0 ? q.shift : 0), right = _mm256_set1_epi32(q.shift > 0 ? 0 : -q.shift);
    const __m256i offset = _mm256_set1_epi32(static_cast<int32_t>(count) * p.input_zero_point);
    for (size_t c = 0; c < full; c += 16) {
      __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
      for (size_t t = 0; t < count; ++t) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(taps[t] + c));
        acc0 = _mm256_add_epi32(acc0, _mm256_cvtepu8_epi32(v));
        acc1 = _mm256_add_epi32(acc1, _mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
      }
      auto stage = [&](__m256i acc) {
        acc = requantize_avx2(_mm256_sub_epi32(acc, offset), m, left, right);
        return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(acc, zero_point), lo), hi);
      };
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), narrow_u8x16(stage(acc0), stage(acc1)));
    }
    avg_pool_tail(p, taps, count, full, out);
  });
}

void max_pool_u8__avx2(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end) {
  const __m256i lo = _mm256_set1_epi8(static_cast<char>(p.out.act_min));
  const __m256i hi = _mm256_set1_epi8(static_cast<char>(p.out.act_max));
  const size_t full = static_cast<size_t>(p.channels) / 32 * 32;
  for_each_pool_window(p, x, y, row_begin, row_end, [&](const uint8_t* const* taps, size_t count, uint8_t* out) {
    for (size_t c = 0; c < full; c += 32) {
      __m256i m = _mm256_setzero_si256();
      for (size_t t = 0; t < count; ++t)
        m = _mm256_max_epu8(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(taps[t] + c)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), _mm256_min_epu8(_mm256_max_epu8(m, lo), hi));
    }
    max_pool_tail(p, taps, count, full, out);
  });
}

void lut_u8__avx2(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n) {
  __m256i chunks[16];
  for (int j = 0; j < 16; ++j)
    chunks[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * j)));
  const __m256i low_nibble = _mm256_set1_epi8(0x0F);
  for_each_block<32>(n, [&](size_t i) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i index = _mm256_and_si256(v, low_nibble);
    const __m256i chunk = _mm256_and_si256(_mm256_srli_epi16(v, 4), low_nibble);
    __m256i r = _mm256_setzero_si256();
    for (int j = 0; j < 16; ++j) {
      const __m256i hit = _mm256_cmpeq_epi8(chunk, _mm256_set1_epi8(static_cast<char>(j)));
      r = _mm256_or_si256(r, _mm256_and_si256(_mm256_shuffle_epi8(chunks[j], index), hit));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), r);
  }, [&](size_t i, size_t rest) { lut_u8__ref(table, x + i, y + i, rest); });
}

void dequantize_u8_f32__avx2(const uint8_t* x, float* y, size_t n, float scale, int32_t zero_point) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i z = _mm256_set1_epi32(zero_point);
  for_each_block<8>(n, [&](size_t i) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i)));
    // int32 -> float is exact here (|v - z| <= 255); one rounding, in the multiply, as the reference.
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, z)), s));
  }, [&](size_t i, size_t rest) { dequantize_u8_f32__ref(x + i, y + i, rest, scale, zero_point); });
}

}  // namespace intinfer
