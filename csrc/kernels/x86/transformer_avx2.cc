#include "x86_kernels.h"

#include <immintrin.h>

#include <type_traits>

#include "../ref/kernels.h"
#include "../transformer_math.h"
#include "requant_avx2.h"

namespace intinfer {
namespace {

// 8 inputs minus the zero point as int32.
inline __m256i load8(const uint8_t* x, __m256i zero_point) {
  return _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x))), zero_point);
}
inline __m256i load8(const int32_t* x, __m256i zero_point) {
  return _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)), zero_point);
}

inline int64_t hsum_epi64(__m256i v) {
  alignas(32) int64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), v);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// The low 32 bits of (a * b) >> 31 for signed 32-bit a and b in [0, 2^31), per lane: exact when
// the result fits int32 (the logical 64-bit shift leaves the same low half as an arithmetic one).
inline __m256i mul_shift31(__m256i a, __m256i b, __m256i nudge) {
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, b), nudge), 31);
  const __m256i odd = _mm256_srli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)), nudge), 31);
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

template <typename T, typename Out>
void layer_norm_rows(const LayerNormParams& p, const LayerNormView& w, const T* x, Out* y,
                     size_t row_begin, size_t row_end) {
  const size_t full = p.h / 8 * 8;
  const __m256i zp = _mm256_set1_epi32(p.input_zero_point), h = _mm256_set1_epi32(static_cast<int32_t>(p.h));
  const __m256i out_zp = _mm256_set1_epi32(p.out.zero_point);
  const __m256i lo = _mm256_set1_epi32(p.out.act_min), hi = _mm256_set1_epi32(p.out.act_max);
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  for (size_t r = row_begin; r < row_end; ++r) {
    const T* xr = x + r * p.h;
    Out* yr = y + r * p.h;
    // sum(x - z) fits int32: |x - z| <= 32767 and H <= 1024 for wide inputs, 255 and 8192 otherwise.
    __m256i s = _mm256_setzero_si256();
    for (size_t c = 0; c < full; c += 8) s = _mm256_add_epi32(s, load8(xr + c, zp));
    alignas(32) int32_t part[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(part), s);
    int64_t sum = 0;
    for (int32_t v : part) sum += v;
    for (size_t c = full; c < p.h; ++c) sum += static_cast<int64_t>(xr[c]) - p.input_zero_point;
    // V = sum d^2 in 64-bit lanes (d = H x - sum fits int32, d^2 does not).
    const __m256i vsum = _mm256_set1_epi32(static_cast<int32_t>(sum));
    __m256i v_even = _mm256_setzero_si256(), v_odd = _mm256_setzero_si256();
    for (size_t c = 0; c < full; c += 8) {
      const __m256i d = _mm256_sub_epi32(_mm256_mullo_epi32(h, load8(xr + c, zp)), vsum);
      v_even = _mm256_add_epi64(v_even, _mm256_mul_epi32(d, d));
      const __m256i d_odd = _mm256_srli_epi64(d, 32);
      v_odd = _mm256_add_epi64(v_odd, _mm256_mul_epi32(d_odd, d_odd));
    }
    uint64_t v = static_cast<uint64_t>(hsum_epi64(_mm256_add_epi64(v_even, v_odd)));
    const int64_t hh = static_cast<int64_t>(p.h);
    for (size_t c = full; c < p.h; ++c) {
      const int64_t d = hh * (static_cast<int64_t>(xr[c]) - p.input_zero_point) - sum;
      v += static_cast<uint64_t>(d * d);
    }
    const int64_t inv = layer_norm_inverse(v);
    // t = (d * inv + 2^30) >> 31 with inv = inv_hi 2^31 + inv_lo: d * inv_hi + ((d * inv_lo + 2^30) >> 31),
    // where d * inv_hi <= 2^15 because |d * inv| <= 2^46.
    const __m256i inv_hi = _mm256_set1_epi32(static_cast<int32_t>(inv >> 31));
    const __m256i inv_lo = _mm256_set1_epi32(static_cast<int32_t>(inv & 0x7FFFFFFF));
    for (size_t c = 0; c < full; c += 8) {
      const __m256i d = _mm256_sub_epi32(_mm256_mullo_epi32(h, load8(xr + c, zp)), vsum);
      const __m256i t = _mm256_add_epi32(_mm256_mullo_epi32(d, inv_hi), mul_shift31(d, inv_lo, nudge));
      auto at = [c](const int32_t* a) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + c)); };
      __m256i q = requantize_avx2(_mm256_add_epi32(_mm256_sign_epi32(t, at(w.sign)), at(w.offset)), at(w.multiplier),
                                  at(w.left_shift), at(w.right_shift));
      q = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(_mm256_add_epi32(q, at(w.bias)), out_zp), lo), hi);
      if constexpr (std::is_same_v<Out, int32_t>) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(yr + c), q);
      } else {
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(yr + c), _mm_packus_epi16(q16, q16));
      }
    }
    for (size_t c = full; c < p.h; ++c)
      yr[c] = static_cast<Out>(
          layer_norm_output(p, hh * (static_cast<int64_t>(xr[c]) - p.input_zero_point) - sum, inv, c));
  }
}

// softmax_row_max (transformer_math.h) 32 inputs a step: the largest attended input (masked
// inputs count as 0, below or equal to any attended one), or -1 with the row written as zeros
// when none is attended.
int32_t softmax_row_max_avx2(size_t n, const uint8_t* x, const uint8_t* mask, uint8_t* y) {
  const size_t full = n / 32 * 32;
  __m256i top = _mm256_setzero_si256(), kept = _mm256_setzero_si256();
  for (size_t j = 0; j < full; j += 32) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j));
    if (mask) {
      const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mask + j));
      const __m256i masked = _mm256_cmpeq_epi8(m, _mm256_setzero_si256());
      v = _mm256_andnot_si256(masked, v);
      kept = _mm256_or_si256(kept, _mm256_andnot_si256(masked, _mm256_set1_epi8(-1)));
    }
    top = _mm256_max_epu8(top, v);
  }
  __m128i t = _mm_max_epu8(_mm256_castsi256_si128(top), _mm256_extracti128_si256(top, 1));
  t = _mm_max_epu8(t, _mm_srli_si128(t, 8));
  t = _mm_max_epu8(t, _mm_srli_si128(t, 4));
  t = _mm_max_epu8(t, _mm_srli_si128(t, 2));
  t = _mm_max_epu8(t, _mm_srli_si128(t, 1));
  const bool any = full > 0 && (!mask || !_mm256_testz_si256(kept, kept));
  return softmax_row_max_from(full, n, x, mask, y, _mm_cvtsi128_si32(t) & 0xFF, any);
}

}  // namespace

void layer_norm_u8__avx2(const LayerNormParams& p, const LayerNormView& w, const uint8_t* x, void* y,
                         size_t row_begin, size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) { layer_norm_rows(p, w, x, out, row_begin, row_end); });
}

void layer_norm_wide__avx2(const LayerNormParams& p, const LayerNormView& w, const int32_t* x, void* y,
                           size_t row_begin, size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) { layer_norm_rows(p, w, x, out, row_begin, row_end); });
}

void gather_rows_wide__avx2(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                            const int32_t* rows, size_t n_rows, int32_t* y) {
  if (bits != 8) {
    gather_rows_wide__ref(bits, table, h, row_multipliers, rows, n_rows, y);
    return;
  }
  const size_t full = h / 8 * 8;
  const __m256i lo = _mm256_set1_epi32(-kWideMax), hi = _mm256_set1_epi32(kWideMax);
  for (size_t i = 0; i < n_rows; ++i) {
    const int8_t* src = static_cast<const int8_t*>(table) + static_cast<size_t>(rows[i]) * h;
    const QuantizedMultiplier m = row_multipliers[rows[i]];
    const Multiplier mult(m);
    int32_t* yr = y + i * h;
    for (size_t c = 0; c < full; c += 8) {
      const __m256i codes = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + c)));
      const __m256i q = mult.apply(codes);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(yr + c), _mm256_min_epi32(_mm256_max_epi32(q, lo), hi));
    }
    for (size_t c = full; c < h; ++c) yr[c] = clamp_wide(requantize(src[c], m));
  }
}

void softmax_u8__avx2(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                      size_t row_begin, size_t row_end, int32_t* e) {
  const size_t full = p.n / 8 * 8;
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 23), cap = _mm256_set1_epi32(255);
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* xr = x + r * p.n;
    const uint8_t* mr = mask ? mask[r] : nullptr;
    uint8_t* yr = y + r * p.n;
    const int32_t top = softmax_row_max_avx2(p.n, xr, mr, yr);
    if (top < 0) continue;  // nothing attended: written as zeros
    // e = table[top - x] (0 where masked), gathered 8 at a time; the sum in 64-bit lanes.
    const __m256i vtop = _mm256_set1_epi32(top);
    __m256i sum4 = _mm256_setzero_si256();
    for (size_t j = 0; j < full; j += 8) {
      const __m256i xv = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(xr + j)));
      __m256i index = _mm256_sub_epi32(vtop, xv);
      __m256i keep = _mm256_set1_epi32(-1);
      if (mr) {
        keep = _mm256_cmpgt_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mr + j))),
                                  _mm256_setzero_si256());
        index = _mm256_and_si256(index, keep);  // masked lanes (x may exceed top) read entry 0, then drop it
      }
      const __m256i ev = _mm256_and_si256(_mm256_i32gather_epi32(p.exp_table, index, 4), keep);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(e + j), ev);
      sum4 = _mm256_add_epi64(sum4, _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(ev)),
                                                     _mm256_cvtepu32_epi64(_mm256_extracti128_si256(ev, 1))));
    }
    uint64_t sum = static_cast<uint64_t>(hsum_epi64(sum4));
    for (size_t j = full; j < p.n; ++j) {
      e[j] = !mr || mr[j] ? p.exp_table[top - xr[j]] : 0;
      sum += static_cast<uint64_t>(e[j]);
    }
    const uint64_t inv = (uint64_t{1} << 32) / sum;
    const __m256i vinv = _mm256_set1_epi64x(static_cast<int64_t>(inv));
    for (size_t j = 0; j < full; j += 8) {
      const __m256i ev = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e + j));
      // e * inv < 2^33: 64-bit products of the even and odd lanes, then (+ 2^23) >> 24.
      const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(ev, vinv), nudge), 24);
      const __m256i odd = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(ev, 32), vinv), nudge), 24);
      const __m256i q = _mm256_min_epi32(_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA), cap);
      const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(yr + j), _mm_packus_epi16(q16, q16));
    }
    for (size_t j = full; j < p.n; ++j) yr[j] = softmax_output(static_cast<uint64_t>(e[j]), inv);
  }
}

}  // namespace intinfer
