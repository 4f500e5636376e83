// LAYER_NORM and SOFTMAX on the AVX-512 path, bit-exact with their references: transformer_avx2.cc's
// three passes over a layer norm's row (the sum, the sum of squared deviations in 64-bit lanes,
// the normalized and requantized output) on 16 channels a step, the row's tail under a mask
// instead of a scalar loop; the softmax's row maximum 64 inputs a step, its exponentials gathered
// 16 at a time (masked positions not loaded) and normalized 16 at a time.
#include <immintrin.h>

#include <type_traits>

#include "../transformer_math.h"
#include "requant_avx512.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

// 16 inputs minus the zero point as int32; lanes outside `m` 0.
inline __m512i load16(const uint8_t* x, __mmask16 m, __m512i zero_point) {
  return _mm512_maskz_sub_epi32(m, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, x)), zero_point);
}
inline __m512i load16(const int32_t* x, __mmask16 m, __m512i zero_point) {
  return _mm512_maskz_sub_epi32(m, _mm512_maskz_loadu_epi32(m, x), zero_point);
}

template <typename T, typename Out>
void layer_norm_rows(const LayerNormParams& p, const LayerNormView& w, const T* x, Out* y, size_t row_begin,
                     size_t row_end) {
  const __m512i zp = _mm512_set1_epi32(p.input_zero_point), h = _mm512_set1_epi32(static_cast<int32_t>(p.h));
  const __m512i out_zp = _mm512_set1_epi32(p.out.zero_point);
  const __m512i lo = _mm512_set1_epi32(p.out.act_min), hi = _mm512_set1_epi32(p.out.act_max);
  auto mask = [&](size_t c) { return lanes_below(p.h - c); };
  for (size_t r = row_begin; r < row_end; ++r) {
    const T* xr = x + r * p.h;
    Out* yr = y + r * p.h;
    // sum(x - z) fits int32: |x - z| <= 32767 and H <= 1024 for wide inputs, 255 and 8192 otherwise.
    __m512i s = _mm512_setzero_si512();
    for (size_t c = 0; c < p.h; c += 16) s = _mm512_add_epi32(s, load16(xr + c, mask(c), zp));
    const int32_t sum = _mm512_reduce_add_epi32(s);
    // V = sum d^2 in 64-bit lanes (d = H x - sum fits int32, d^2 does not); a masked lane's d is 0.
    const __m512i vsum = _mm512_set1_epi32(sum);
    __m512i v_even = _mm512_setzero_si512(), v_odd = _mm512_setzero_si512();
    for (size_t c = 0; c < p.h; c += 16) {
      const __m512i d = _mm512_maskz_sub_epi32(mask(c), _mm512_mullo_epi32(h, load16(xr + c, mask(c), zp)), vsum);
      v_even = _mm512_add_epi64(v_even, _mm512_mul_epi32(d, d));
      const __m512i d_odd = _mm512_srli_epi64(d, 32);
      v_odd = _mm512_add_epi64(v_odd, _mm512_mul_epi32(d_odd, d_odd));
    }
    const uint64_t v = static_cast<uint64_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(v_even, v_odd)));
    const int64_t inv = layer_norm_inverse(v);
    // t = (d * inv + 2^30) >> 31 with inv = inv_hi 2^31 + inv_lo: d * inv_hi + ((d * inv_lo + 2^30) >> 31),
    // where d * inv_hi <= 2^15 because |d * inv| <= 2^46.
    const __m512i inv_hi = _mm512_set1_epi32(static_cast<int32_t>(inv >> 31));
    const __m512i inv_lo = _mm512_set1_epi32(static_cast<int32_t>(inv & 0x7FFFFFFF));
    for (size_t c = 0; c < p.h; c += 16) {
      const __mmask16 m = mask(c);
      const __m512i d = _mm512_sub_epi32(_mm512_mullo_epi32(h, load16(xr + c, m, zp)), vsum);
      const __m512i t = _mm512_add_epi32(_mm512_mullo_epi32(d, inv_hi), mul_shift31_avx512(d, inv_lo, inv_lo));
      auto at = [c](const int32_t* a) { return _mm512_loadu_si512(a + c); };
      const Requant512 requant(at(w.multiplier), at(w.left_shift), at(w.right_shift), true);
      __m512i q = requant.apply(_mm512_add_epi32(_mm512_mullo_epi32(t, at(w.sign)), at(w.offset)));
      q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(_mm512_add_epi32(q, at(w.bias)), out_zp), lo), hi);
      if constexpr (std::is_same_v<Out, int32_t>)
        _mm512_mask_storeu_epi32(yr + c, m, q);
      else
        _mm_mask_storeu_epi8(yr + c, m, _mm512_cvtepi32_epi8(q));  // within [0, 255]
    }
  }
}

// softmax_row_max (transformer_math.h) 64 inputs a step: the largest attended input (masked
// inputs count as 0, below or equal to any attended one), or -1 with the row written as zeros
// when none is attended.
int32_t softmax_row_max_512(size_t n, const uint8_t* x, const uint8_t* mask, uint8_t* y) {
  const size_t full = n / 64 * 64;
  __m512i top = _mm512_setzero_si512();
  __mmask64 kept = 0;
  for (size_t j = 0; j < full; j += 64) {
    __m512i v = _mm512_loadu_si512(x + j);
    if (mask) {
      const __m512i m = _mm512_loadu_si512(mask + j);
      const __mmask64 attended = _mm512_test_epi8_mask(m, m);
      v = _mm512_maskz_mov_epi8(attended, v);
      kept |= attended;
    }
    top = _mm512_max_epu8(top, v);
  }
  __m256i t32 = _mm256_max_epu8(_mm512_castsi512_si256(top), _mm512_extracti64x4_epi64(top, 1));
  __m128i t = _mm_max_epu8(_mm256_castsi256_si128(t32), _mm256_extracti128_si256(t32, 1));
  t = _mm_max_epu8(t, _mm_srli_si128(t, 8));
  t = _mm_max_epu8(t, _mm_srli_si128(t, 4));
  t = _mm_max_epu8(t, _mm_srli_si128(t, 2));
  t = _mm_max_epu8(t, _mm_srli_si128(t, 1));
  const bool any = full > 0 && (!mask || kept != 0);
  return softmax_row_max_from(full, n, x, mask, y, _mm_cvtsi128_si32(t) & 0xFF, any);
}

}  // namespace

void layer_norm_u8__avx512vnni(const LayerNormParams& p, const LayerNormView& w, const uint8_t* x, void* y,
                               size_t row_begin, size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) { layer_norm_rows(p, w, x, out, row_begin, row_end); });
}

void layer_norm_wide__avx512vnni(const LayerNormParams& p, const LayerNormView& w, const int32_t* x, void* y,
                                 size_t row_begin, size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) { layer_norm_rows(p, w, x, out, row_begin, row_end); });
}

void softmax_u8__avx512vnni(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                            size_t row_begin, size_t row_end, int32_t* e) {
  const size_t full = p.n / 16 * 16;
  const __m512i nudge = _mm512_set1_epi64(int64_t{1} << 23), cap = _mm512_set1_epi32(255);
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* xr = x + r * p.n;
    const uint8_t* mr = mask ? mask[r] : nullptr;
    uint8_t* yr = y + r * p.n;
    const int32_t top = softmax_row_max_512(p.n, xr, mr, yr);
    if (top < 0) continue;  // nothing attended: written as zeros
    // e = table[top - x] (0 where masked: no load there, where x may exceed top), gathered 16 at a
    // time; the sum in 64-bit lanes.
    const __m512i vtop = _mm512_set1_epi32(top);
    __m512i sum8 = _mm512_setzero_si512();
    for (size_t j = 0; j < full; j += 16) {
      const __m512i index =
          _mm512_sub_epi32(vtop, _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + j))));
      __mmask16 keep = 0xFFFF;
      if (mr) {
        const __m128i m = _mm_loadu_si128(reinterpret_cast<const __m128i*>(mr + j));
        keep = _mm_test_epi8_mask(m, m);
      }
      const __m512i ev = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), keep, index, p.exp_table, 4);
      _mm512_storeu_si512(e + j, ev);
      sum8 = _mm512_add_epi64(sum8, _mm512_add_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(ev)),
                                                     _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(ev, 1))));
    }
    uint64_t sum = static_cast<uint64_t>(_mm512_reduce_add_epi64(sum8));
    for (size_t j = full; j < p.n; ++j) {
      e[j] = !mr || mr[j] ? p.exp_table[top - xr[j]] : 0;
      sum += static_cast<uint64_t>(e[j]);
    }
    const uint64_t inv = (uint64_t{1} << 32) / sum;
    const __m512i vinv = _mm512_set1_epi64(static_cast<int64_t>(inv));
    for (size_t j = 0; j < full; j += 16) {
      const __m512i ev = _mm512_loadu_si512(e + j);
      // e * inv < 2^33: 64-bit products of the even and odd lanes, then (+ 2^23) >> 24.
      const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(ev, vinv), nudge), 24);
      const __m512i odd =
          _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(ev, 32), vinv), nudge), 24);
      const __m512i q = _mm512_min_epi32(_mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32)), cap);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(yr + j), _mm512_cvtepi32_epi8(q));
    }
    for (size_t j = full; j < p.n; ++j) yr[j] = softmax_output(static_cast<uint64_t>(e[j]), inv);
  }
}

}  // namespace intinfer
