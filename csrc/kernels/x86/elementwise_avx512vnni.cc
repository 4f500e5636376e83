// ADD on the AVX-512 path (uint8 and wide outputs): elementwise_avx2.cc's kernels on 16 lanes a
// step, the three requantizations by Requant512 prepared once a call; the tail goes to the
// reference, as there. Bit-exact with add_u8__ref and add_wide__ref.
#include <immintrin.h>

#include "../blocks.h"
#include "../ref/kernels.h"
#include "requant_avx512.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

// 16 operand values as int32: uint8 or int32 elements, consecutive or (step 0) one repeated.
inline __m512i load16(const uint8_t* p, bool wide, size_t step) {
  if (wide) {
    const int32_t* v = reinterpret_cast<const int32_t*>(p);
    return step == 0 ? _mm512_set1_epi32(*v) : _mm512_loadu_si512(v);
  }
  return step == 0 ? _mm512_set1_epi32(*p) : _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// The sum before the output multiplier: each operand minus its zero point, shifted left by
// kLeftShift, requantized by its own multiplier.
template <typename Params>
struct Operands {
  Requant512 ma, mb;
  __m512i za, zb;
  explicit Operands(const Params& p)
      : ma(p.a_multiplier), mb(p.b_multiplier), za(_mm512_set1_epi32(p.a_zero_point)),
        zb(_mm512_set1_epi32(p.b_zero_point)) {}
  __m512i sum(__m512i a, __m512i b) const {
    return _mm512_add_epi32(ma.apply(_mm512_slli_epi32(_mm512_sub_epi32(a, za), Params::kLeftShift)),
                            mb.apply(_mm512_slli_epi32(_mm512_sub_epi32(b, zb), Params::kLeftShift)));
  }
};

}  // namespace

void add_u8__avx512vnni(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step,
                        uint8_t* y, size_t n) {
  const Operands<AddParams> in(p);
  const Requant512 mo(p.out_multiplier);
  const Narrow512 narrow(p.out);
  for_each_block<16>(n, [&](size_t i) {
    const __m512i sum = in.sum(load16(a + i * a_step, false, a_step), load16(b + i * b_step, false, b_step));
    narrow.store(y + i, mo.apply(sum), 0xFFFF);
  }, [&](size_t i, size_t rest) { add_u8__ref(p, a + i * a_step, a_step, b + i * b_step, b_step, y + i, rest); });
}

void add_wide__avx512vnni(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step,
                          int32_t* y, size_t n) {
  const Operands<AddWideParams> in(p);
  const Requant512 mo(p.out_multiplier);
  const __m512i lo = _mm512_set1_epi32(-kWideMax), hi = _mm512_set1_epi32(kWideMax);
  const size_t a_size = p.a_wide ? 4 : 1, b_size = p.b_wide ? 4 : 1;
  const uint8_t *ab = static_cast<const uint8_t*>(a), *bb = static_cast<const uint8_t*>(b);
  for_each_block<16>(n, [&](size_t i) {
    const __m512i sum = in.sum(load16(ab + i * a_step * a_size, p.a_wide, a_step),
                               load16(bb + i * b_step * b_size, p.b_wide, b_step));
    _mm512_storeu_si512(y + i, _mm512_min_epi32(_mm512_max_epi32(mo.apply(sum), lo), hi));
  }, [&](size_t i, size_t rest) {
    add_wide__ref(p, ab + i * a_step * a_size, a_step, bb + i * b_step * b_size, b_step, y + i, rest);
  });
}

}  // namespace intinfer
