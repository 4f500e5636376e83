// The GEMM of gemm_avx2.cc on AVX-VNNI: vpdpbusd multiplies 4 uint8 activations by 4 int8
// weights and adds the 4 products into an int32 lane *exactly* (the non-saturating form; its
// VPDPBUSDS twin saturates), so no widening is needed at all: weights stay int8 (half the bytes
// of the int16 packing) and a broadcast of 4 activation bytes feeds 16 channels per pair of
// instructions. Same tile (4 x 16), same output stage, same results. 4-bit codes as gemm_avx2.cc
// takes them (c + 8, against x - 128), four products a lane exact in int32 as well.
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

}  // namespace intinfer
