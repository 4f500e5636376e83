// AVX2 GEMMs for u8 activations x s8 weights, all exact: int8 codes within +-127 as int8 quads
// multiplied by vpmaddubsw with the sign trick of maddubs_exact.h; MATMUL's int16 operand
// prepacked as int16 pairs, activations widened to int16 once per 4-row tile, vpmaddwd +
// vpaddd (docs/kernels.md); the same with int16 activations (a FULLY_CONNECTED's wide input).
// 4- and 2-bit codes stay packed (an eighth and a sixteenth of the int16 bytes) and are
// multiplied with vpmaddubsw, exact at their range.
#include <immintrin.h>

#include <cstring>

#include "gemm_4x16.h"
#include "maddubs_exact.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

struct MaddS16 : DenseGroups, Int32Partials {
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

// The same from int16 activations (x_stride in bytes): rows copied, k padded with zeros.
struct MaddS16FromS16 : MaddS16 {
  static void prepare(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, uint8_t* scratch) {
    copy_rows_s16<kGemmMR>(x, x_stride, mr, k, k_pad, reinterpret_cast<int16_t*>(scratch));
  }
};

// int8 codes within +-127 (weight_format.h's pairs bound) as int8 quads, multiplied exactly by
// maddubs_exact.h's dot_quads_s8 with the flipped activations.
struct MaddubsSignedS8 : DenseGroups, Int32Partials, PrepareFlippedU8 {
  static constexpr size_t kKr = 4;

  static __m256i mac(__m256i acc, __m256i x, __m256i w) { return _mm256_add_epi32(acc, dot_quads_s8(x, w)); }
};

// 4-bit codes (OffsetS4Groups: u = c + 8) as the unsigned operand of vpmaddubsw against the
// flipped activations x' = x - 128. |u x'| <= 15 * 128, a pair 3840: 8 groups sum in int16
// (30720), then one vpmaddwd by ones adds them into int32.
struct MaddubsOffsetS4 : OffsetS4Groups, PrepareFlippedU8 {
  static constexpr size_t kKr = 4;
  static constexpr size_t kBlock = 8;
  static_assert(kBlock * 2 * 128 * 15 <= 32767, "a block's int16 sums must not saturate");

  static __m256i mac(__m256i p, __m256i x, __m256i w) { return _mm256_add_epi16(p, _mm256_maddubs_epi16(w, x)); }
  static __m256i flush(__m256i acc, __m256i p) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
};

// 2-bit codes (pack.h's sub-byte tiles, groups of 16 channels x 4 k as vpdpbusd's), turned into
// int8 in registers by a vpshufb table from their fields, and multiplied by uint8 activations
// with vpmaddubsw: its int16 sum of two products saturates only beyond 32767, and with codes
// within +-1 a pair is at most 2 * 255 = 510, so it is exact here (it is not for int8 weights).
// The int16 pairs of 64 groups are summed in int16 (vpaddw, 64 x 510 <= 32767), then vpmaddwd
// by ones adds them into int32: one multiply per 32 products plus one per block, where int16
// weights take two (vpmaddwd alone).
struct MaddubsS2 : PrepareU8 {
  static constexpr size_t kKr = 4;
  static constexpr size_t kGroupBytes = 16;
  static constexpr size_t kBlock = 64;
  static_assert(kBlock * 2 * 255 <= 32767, "a block's int16 sums must not saturate");

  static void load(const uint8_t* b, __m256i& w0, __m256i& w1) {
    // 16 bytes, in both halves of a vector: bits 0-1 are codes 0-15, bits 2-3 16-31, bits 4-5
    // 32-47, bits 6-7 48-63. The low half keeps bits 0-1 (after a shift by 4: 4-5), the high
    // half bits 2-3 (6-7) in place, and looks them up at 0, 4, 8, 12.
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    const __m256i field = _mm256_setr_epi64x(0x0303030303030303, 0x0303030303030303, 0x0C0C0C0C0C0C0C0C,
                                             0x0C0C0C0C0C0C0C0C);
    const __m256i table = _mm256_setr_epi8(0, 1, -2, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                                           -2, 0, 0, 0, -1, 0, 0, 0);
    w0 = _mm256_shuffle_epi8(table, _mm256_and_si256(v, field));
    w1 = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), field));
  }

  static __m256i mac(__m256i p, __m256i x, __m256i w) { return _mm256_add_epi16(p, _mm256_maddubs_epi16(x, w)); }
  static __m256i flush(__m256i acc, __m256i p) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
};

}  // namespace

void gemm_u8s8_4x16c2__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  gemm_4x16<MaddS16>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_s16s8_4x16c2__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                             size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  gemm_4x16<MaddS16FromS16>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s8_4x16c4__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  gemm_4x16<MaddubsSignedS8>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s4_4x16c4__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  gemm_4x16<MaddubsOffsetS4>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s2_4x16c4__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  gemm_4x16<MaddubsS2>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

}  // namespace intinfer
