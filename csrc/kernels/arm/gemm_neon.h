// NEON GEMMs for u8 activations x s8 weights, exact, on the shared output stage
// (output_stage.h): gemm_neon.cc (any ARMv7/ARMv8 NEON: widening multiply-accumulate) and
// gemm_neondot.cc (aarch64 with the ARMv8.2 dot product) and gemm_neoni8mm.cc (aarch64 with the
// ARMv8.6 int8 matrix multiply). docs/arm-performance.md has the tiles
// and instruction counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../output_stage.h"
#include "../params.h"

namespace intinfer {

// gemm_u8s8_4x8__neon: tiles of 8 output channels; within a tile, for each k, 8 weights as
// int16 (k padded to a multiple of 8 with zeros).
struct PackedGemmNeon : PackedOutputStage {
  size_t k_pad = 0;
  std::vector<int16_t> weights;  // [tile][k_pad][8]
};

PackedGemmNeon pack_gemm_neon(const int8_t* weights, size_t n, size_t k, const int32_t* bias,
                              const std::vector<QuantizedMultiplier>& multipliers,
                              const std::vector<float>& output_scales);
// int16 weights within [-255, 255] (MATMUL's second operand minus its zero point): SMLAL
// multiplies int16 by int16 exactly.
PackedGemmNeon pack_gemm_neon_s16(const int16_t* weights, size_t n, size_t k, const int32_t* bias,
                                  const std::vector<QuantizedMultiplier>& multipliers,
                                  const std::vector<float>& output_scales);
size_t gemm_neon_scratch_elements(const PackedGemmNeon& w);  // int16

// Rows [0, rows) of x (row stride x_stride bytes), channel tiles [tile_begin, tile_end), into y
// (row stride y_stride elements).
void gemm_u8s8_4x8__neon(const PackedGemmNeon& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                         uint8_t* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                         int16_t* scratch);
void gemm_u8s8_f32_4x8__neon(const PackedGemmNeon& w, const uint8_t* x, size_t x_stride, float* y, size_t y_stride,
                             size_t rows, size_t tile_begin, size_t tile_end, int16_t* scratch);

// gemm_u8s8_4x16c4__neondot: SDOT multiplies int8 by int8, so activations enter as a - 128
// (one EOR) and the bias carries + 128 * sum_k w[n][k]; exact, the int32 sum is unchanged.
// Weights: tiles of 16 channels; per group of 4 k, 16 x 4 int8 (k padded to 16 with zeros).
struct PackedGemmNeonDot : PackedOutputStage {
  size_t k_pad = 0;
  std::vector<int8_t> weights;  // [tile][k_pad / 4][16][4]
};

PackedGemmNeonDot pack_gemm_neondot(const int8_t* weights, size_t n, size_t k, const int32_t* bias,
                                    const std::vector<QuantizedMultiplier>& multipliers,
                                    const std::vector<float>& output_scales);
size_t gemm_neondot_scratch_bytes(const PackedGemmNeonDot& w);
void gemm_u8s8_4x16c4__neondot(const PackedGemmNeonDot& w, const OutputStage& out, const uint8_t* x,
                               size_t x_stride, uint8_t* y, size_t y_stride, size_t rows, size_t tile_begin,
                               size_t tile_end, uint8_t* scratch);
void gemm_u8s8_f32_4x16c4__neondot(const PackedGemmNeonDot& w, const uint8_t* x, size_t x_stride, float* y,
                                   size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                   uint8_t* scratch);

// gemm_u8s8_4x16c8__neoni8mm: USMMLA (ARMv8.6 i8mm, aarch64) multiplies a 2 x 8 block of u8 by
// an 8 x 2 block of s8 into a 2 x 2 int32 block, exactly, with no offset. Weights: tiles of 16
// channels; per group of 8 k, 8 channel pairs x (8 k of the first, 8 k of the second) as int8
// (k padded to 8 with zeros).
struct PackedGemmNeonI8mm : PackedOutputStage {
  size_t k_pad = 0;
  std::vector<int8_t> weights;  // [tile][k_pad / 8][8 pairs][2][8]
};

PackedGemmNeonI8mm pack_gemm_neoni8mm(const int8_t* weights, size_t n, size_t k, const int32_t* bias,
                                      const std::vector<QuantizedMultiplier>& multipliers,
                                      const std::vector<float>& output_scales);
size_t gemm_neoni8mm_scratch_bytes(const PackedGemmNeonI8mm& w);
void gemm_u8s8_4x16c8__neoni8mm(const PackedGemmNeonI8mm& w, const OutputStage& out, const uint8_t* x,
                                size_t x_stride, uint8_t* y, size_t y_stride, size_t rows, size_t tile_begin,
                                size_t tile_end, uint8_t* scratch);
void gemm_u8s8_f32_4x16c8__neoni8mm(const PackedGemmNeonI8mm& w, const uint8_t* x, size_t x_stride, float* y,
                                    size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                    uint8_t* scratch);

}  // namespace intinfer
