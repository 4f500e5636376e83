// LAYER_NORM on the AVX-512 path: transformer_avx2.cc's three passes over a row (the sum, the sum
// of squared deviations in 64-bit lanes, the normalized and requantized output) on 16 channels a
// step, the row's tail under a mask instead of a scalar loop. Bit-exact with layer_norm_*__ref.
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
  const __m512i nudge = _mm512_set1_epi64(int64_t{1} << 30);
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
      const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(d, inv_lo), nudge), 31);
      const __m512i odd = _mm512_slli_epi64(
          _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(d, 32), _mm512_srli_epi64(inv_lo, 32)), nudge), 1);
      const __m512i t = _mm512_add_epi32(_mm512_mullo_epi32(d, inv_hi), _mm512_mask_blend_epi32(0xAAAA, even, odd));
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

}  // namespace

void layer_norm_u8__avx512vnni(const LayerNormParams& p, const LayerNormView& w, const uint8_t* x, void* y,
                               size_t row_begin, size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) { layer_norm_rows(p, w, x, out, row_begin, row_end); });
}

void layer_norm_wide__avx512vnni(const LayerNormParams& p, const LayerNormView& w, const int32_t* x, void* y,
                                 size_t row_begin, size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) { layer_norm_rows(p, w, x, out, row_begin, row_end); });
}

}  // namespace intinfer
