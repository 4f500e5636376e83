// The output stage of the AVX-512 kernels: requantize() (ref/requant.h) of 16 int32 lanes,
// bit-exact, the per-channel stage of a PackedView (uint8 or float outputs) and lane masks. Internal
// linkage, included only by units built with the AVX-512 flags (the x86/*_avx512vnni.cc kernels).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../pack.h"
#include "../params.h"

namespace intinfer {
namespace {

// SRDHM of 16 lanes: the low 32 bits of floor((x * m + 2^30) / 2^31), from the 64-bit products of
// the even lanes and of the odd ones (m_odd: m's odd lanes moved to the even ones, m >> 32 in 64-bit
// lanes); exact where the result fits int32.
inline __m512i mul_shift31_avx512(__m512i x, __m512i m, __m512i m_odd) {
  const __m512i nudge = _mm512_set1_epi64(int64_t{1} << 30);
  const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, m), nudge), 31);
  // Bits 31-62 of the odd products, moved to the high half of their 64-bit lanes by a shift left by 1.
  const __m512i odd = _mm512_slli_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), m_odd), nudge), 1);
  return _mm512_mask_blend_epi32(0xAAAA, even, odd);
}

// requantize() of 16 int32 lanes, bit-exact: requant_avx2.h's steps on 512 bits, with mask
// registers for the overflow blend and the rounding. The multipliers and shifts are prepared once
// (the odd lanes' multipliers, the right shift's remainder mask and half of it) for the rows of a
// tile that share them.
struct Requant512 {
  __m512i multiplier, multiplier_odd, left, right, remainder_mask, half_mask;
  bool with_left_shift;

  Requant512(__m512i m, __m512i l, __m512i r, bool any_left_shift)
      : multiplier(m), multiplier_odd(_mm512_srli_epi64(m, 32)), left(l), right(r),
        remainder_mask(_mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), r), _mm512_set1_epi32(1))),
        half_mask(_mm512_srli_epi32(remainder_mask, 1)), with_left_shift(any_left_shift) {}
  // One QuantizedMultiplier for every lane (requant_avx2.h's Multiplier).
  explicit Requant512(QuantizedMultiplier q)
      : Requant512(_mm512_set1_epi32(q.multiplier), _mm512_set1_epi32(q.shift > 0 ? q.shift : 0),
                   _mm512_set1_epi32(q.shift > 0 ? 0 : -q.shift), q.shift > 0) {}

  __m512i apply(__m512i x) const {
    if (with_left_shift) {
      const __m512i shifted = _mm512_sllv_epi32(x, left);
      const __mmask16 overflow = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(shifted, left), x);
      const __m512i saturated = _mm512_xor_si512(_mm512_set1_epi32(INT32_MAX), _mm512_srai_epi32(x, 31));
      x = _mm512_mask_blend_epi32(overflow, shifted, saturated);
    }
    const __m512i high = mul_shift31_avx512(x, multiplier, multiplier_odd);
    // Rounding divide by 2^right, ties away from zero.
    const __m512i remainder = _mm512_and_si512(high, remainder_mask);
    const __m512i threshold = _mm512_add_epi32(half_mask, _mm512_srli_epi32(high, 31));
    const __m512i quotient = _mm512_srav_epi32(high, right);
    return _mm512_mask_add_epi32(quotient, _mm512_cmpgt_epi32_mask(remainder, threshold), quotient,
                                 _mm512_set1_epi32(1));
  }
};

// Requantized lanes to bytes: zero point, clamp, narrowing, stored where `valid` says.
struct Narrow512 {
  __m512i zero_point, lo, hi;

  explicit Narrow512(const OutputStage& out)
      : zero_point(_mm512_set1_epi32(out.zero_point)), lo(_mm512_set1_epi32(out.act_min)),
        hi(_mm512_set1_epi32(out.act_max)) {}

  void store(uint8_t* y, __m512i v, __mmask16 valid) const {
    v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, zero_point), lo), hi);
    _mm_mask_storeu_epi8(y, valid, _mm512_cvtepi32_epi8(v));  // within [0, 255]: the narrowing only drops zeros
  }
};

// The per-channel output stage of 16 channels: bias, requantization, zero point, clamp, narrowed
// to bytes and stored where the channel is below n.
struct OutputStage512 {
  const PackedView& w;
  Narrow512 narrow;
  bool any_left_shift;

  // Channels [c, c + 16) prepared for rows of them.
  struct Channels {
    __m512i bias;
    Requant512 requant;
  };

  OutputStage512(const PackedView& view, const OutputStage& out)
      : w(view), narrow(out), any_left_shift(view.shifts == RequantShifts::kLeft) {}

  Channels at(size_t c) const {
    return {_mm512_loadu_si512(w.bias + c),
            Requant512(_mm512_loadu_si512(w.multiplier + c), _mm512_loadu_si512(w.left_shift + c),
                       _mm512_loadu_si512(w.right_shift + c), any_left_shift)};
  }
  // y: the first of the 16 channels.
  void store(uint8_t* y, __m512i acc, const Channels& ch, __mmask16 valid) const {
    narrow.store(y, ch.requant.apply(_mm512_add_epi32(acc, ch.bias)), valid);
  }
  void store(uint8_t* y, __m512i acc, size_t c, __mmask16 valid) const { store(y + c, acc, at(c), valid); }

  // Channels [c, c + 16) of output rows [0, rows), row r's accumulators acc(r), into y (rows
  // y_row_bytes apart), where `valid` says: float(acc + bias) * scale where the view has output
  // scales (one conversion and one multiply, as the reference), else the stage, prepared once for
  // the rows.
  template <typename Acc>
  void store_rows(size_t rows, Acc&& acc, size_t c, __mmask16 valid, void* y, size_t y_row_bytes) const {
    uint8_t* y8 = static_cast<uint8_t*>(y);
    if (w.output_scales != nullptr) {
      const __m512i bias = _mm512_loadu_si512(w.bias + c);
      const __m512 scale = _mm512_loadu_ps(w.output_scales + c);
      for (size_t r = 0; r < rows; ++r)
        _mm512_mask_storeu_ps(reinterpret_cast<float*>(y8 + r * y_row_bytes) + c, valid,
                              _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc(r), bias)), scale));
      return;
    }
    const Channels channels = at(c);
    for (size_t r = 0; r < rows; ++r) store(y8 + r * y_row_bytes + c, acc(r), channels, valid);
  }
};

// The mask of the first min(count, 16) lanes.
inline __mmask16 lanes_below(size_t count) {
  return count >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << count) - 1);
}

}  // namespace
}  // namespace intinfer
