// AVX2 GEMM for u8 activations x s8 weights, exact (no saturating vpmaddubsw): weights are
// prepacked once as int16 pairs, activations widened to int16 once per 4-row tile, and the inner
// loop is vpmaddwd + vpaddd only (docs/kernels.md).
#include <immintrin.h>

#include <cstring>

#include "gemm_4x16.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

struct MaddS16 {
  static constexpr size_t kKr = 2;
  static constexpr size_t kElemBytes = 2;

  static void prepare(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, uint8_t* scratch) {
    for (size_t r = 0; r < kGemmMR; ++r) {
      int16_t* o = reinterpret_cast<int16_t*>(scratch) + r * k_pad;
      size_t i = 0;
      if (r < mr) {
        const uint8_t* xr = x + r * x_stride;
        for (; i + 16 <= k; i += 16)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i),
                              _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + i))));
        for (; i < k; ++i) o[i] = xr[i];
      }
      for (; i < k_pad; ++i) o[i] = 0;
    }
  }

  static __m256i mac(__m256i acc, __m256i x, __m256i w) { return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w)); }
};

}  // namespace

void gemm_u8s8_4x16c2__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  gemm_4x16<MaddS16>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

}  // namespace intinfer
