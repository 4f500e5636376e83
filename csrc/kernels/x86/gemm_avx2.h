// AVX2 GEMM for u8 activations x s8 weights, exact (no saturating vpmaddubsw): weights are
// prepacked once as int16, activations widened to int16 once per 4-row tile, and the inner loop
// is vpmaddwd + vpaddd only (docs/kernels.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../output_stage.h"
#include "../params.h"

namespace intinfer {

// Weights for gemm_u8s8_4x16c2__avx2: tiles of 16 output channels; within a tile, for each pair
// of k, 16 x (w[n][2p], w[n][2p+1]) as int16. N is padded to 16 and K to 2 with zeros, and the
// per-channel output stage is stored padded alongside.
struct PackedGemmAvx2 : PackedOutputStage {
  size_t k_pairs = 0;
  std::vector<int16_t> weights;
};

// `weights` [n][k] int8, `bias` [n] folded; exactly one of `multipliers` / `output_scales`
// is non-empty.
PackedGemmAvx2 pack_gemm_avx2(const int8_t* weights, size_t n, size_t k, const int32_t* bias,
                              const std::vector<QuantizedMultiplier>& multipliers,
                              const std::vector<float>& output_scales);
// int16 weights within [-255, 255] (MATMUL's second operand minus its zero point): every
// vpmaddwd pair sum stays below 2^17, exact as with int8 weights.
PackedGemmAvx2 pack_gemm_avx2_s16(const int16_t* weights, size_t n, size_t k, const int32_t* bias,
                                  const std::vector<QuantizedMultiplier>& multipliers,
                                  const std::vector<float>& output_scales);

// y[r, c] for rows [0, rows) of x (row stride x_stride bytes) and the output channels of tiles
// [tile_begin, tile_end) (16 channels each) into y (row stride y_stride elements). `scratch`
// holds 4 * 2 * k_pairs int16.
void gemm_u8s8_4x16c2__avx2(const PackedGemmAvx2& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            uint8_t* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            int16_t* scratch);
void gemm_u8s8_f32_4x16c2__avx2(const PackedGemmAvx2& w, const uint8_t* x, size_t x_stride, float* y,
                                size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, int16_t* scratch);

size_t gemm_avx2_scratch_elements(const PackedGemmAvx2& w);

// The same GEMM on AVX-VNNI (gemm_avxvnni.cc): int8 weights in groups of 4 k per channel.
struct PackedGemmVnni : PackedOutputStage {
  size_t k_quads = 0;
  std::vector<int8_t> weights;  // [tile][k_quad][16 channels][4]
};

PackedGemmVnni pack_gemm_avxvnni(const int8_t* weights, size_t n, size_t k, const int32_t* bias,
                                 const std::vector<QuantizedMultiplier>& multipliers,
                                 const std::vector<float>& output_scales);
size_t gemm_avxvnni_scratch_bytes(const PackedGemmVnni& w);
void gemm_u8s8_4x16c4__avxvnni(const PackedGemmVnni& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               uint8_t* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               uint8_t* scratch);
void gemm_u8s8_f32_4x16c4__avxvnni(const PackedGemmVnni& w, const uint8_t* x, size_t x_stride, float* y,
                                   size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, uint8_t* scratch);

}  // namespace intinfer
