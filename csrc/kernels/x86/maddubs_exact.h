// The exact vpmaddubsw of the AVX2 int8 GEMMs (docs/kernels.md, docs/quantization.md): with the
// activations flipped to a = x - 128 (the layout's act_offset puts 128 * sum w in the bias) and
// codes within +-127, |a| <= 128 is the unsigned operand and the codes with a's sign (vpsignb;
// never -128) the signed one, so a pair of products is at most 2 * 128 * 127 = 32512 and never
// saturates. Included only by AVX2 units; internal linkage.
#pragma once

#include <immintrin.h>

namespace intinfer {
namespace {

// Lane i: the dot product of the quads i (4 bytes) of a (flipped activations) and w (codes).
inline __m256i dot_quads_s8(__m256i a, __m256i w) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(w, a));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

}  // namespace
}  // namespace intinfer
