// The GEMM of gemm_avx2.cc on AVX-VNNI: vpdpbusd multiplies 4 uint8 activations by 4 int8
// weights and adds the 4 products into an int32 lane *exactly* (the non-saturating form; its
// VPDPBUSDS twin saturates), so no widening is needed at all: weights stay int8 (half the bytes
// of the int16 packing) and a broadcast of 4 activation bytes feeds 16 channels per pair of
// instructions. Same tile (4 x 16), same output stage, same results. 4- and 2-bit codes stored
// with an offset (c + 8, c + 1: unsigned) against activations flipped to x - 128, as gemm_avx2.cc
// takes int4: four products a lane, every add modulo 2^32, the final sum the exact one.
#include <immintrin.h>

#include "gemm_4x16.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

struct DpbusdU8S8 : DenseGroups, Int32Partials, PrepareU8 {
  static constexpr size_t kKr = 4;
  static constexpr size_t kRowChains = 4;

  static __m256i mac(__m256i acc, __m256i x, __m256i w) { return _mm256_dpbusd_avx_epi32(acc, x, w); }
};

// u = c + 8 unsigned, x - 128 signed: the operands of vpdpbusd the other way round.
struct DpbusdOffsetS4 : OffsetS4Groups, Int32Partials, PrepareFlippedU8 {
  static constexpr size_t kKr = 4;
  static constexpr size_t kRowChains = 4;

  static __m256i mac(__m256i acc, __m256i x, __m256i w) { return _mm256_dpbusd_avx_epi32(acc, w, x); }
};

// 2-bit codes stored as u = c + 1 in [0, 2] (TileLayout code_offset 1), 16 bytes a group: bits
// 0-1 of each byte are codes 0-15, bits 2-3 16-31, bits 4-5 32-47, bits 6-7 48-63. Loaded into
// both halves of a vector; each half takes its own field by a shift and a blend, then a mask: u
// as it is, with no table (a blend of shifts by an immediate ran 1 x 1024 x 1024 in 11.8 µs, two
// vpsrlvd 12.5 µs, the AVX2 kernel's table 12.6 µs).
struct DpbusdOffsetS2 : Int32Partials, PrepareFlippedU8 {
  static constexpr size_t kKr = 4;
  static constexpr size_t kGroupBytes = 16;
  static constexpr int32_t kCodeOffset = 1;
  static constexpr size_t kRowChains = 4;

  static void load(const uint8_t* b, __m256i& w0, __m256i& w1) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    const __m256i field = _mm256_set1_epi8(3);
    const __m256i s2 = _mm256_srli_epi16(v, 2);
    w0 = _mm256_and_si256(_mm256_blend_epi32(v, s2, 0xF0), field);
    w1 = _mm256_and_si256(_mm256_blend_epi32(_mm256_srli_epi16(v, 4), _mm256_srli_epi16(v, 6), 0xF0), field);
  }
  static __m256i mac(__m256i acc, __m256i x, __m256i w) { return _mm256_dpbusd_avx_epi32(acc, w, x); }
};

}  // namespace

void gemm_u8s8_4x16c4__avxvnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch) {
  gemm_4x16<DpbusdU8S8>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s4_4x16c4__avxvnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch) {
  gemm_4x16<DpbusdOffsetS4>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s2_4x16c4__avxvnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch) {
  gemm_4x16<DpbusdOffsetS2>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

}  // namespace intinfer
