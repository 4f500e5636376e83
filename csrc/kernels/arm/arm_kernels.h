// The entry points of the ARM kernels: the only symbols their units export (the rows of
// tables.cc refer to them). Each is bit-exact with its reference twin; docs/arm-performance.md
// has the tiles and instruction counts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../pack.h"
#include "../params.h"

namespace intinfer {

// GEMM (GemmFn, tables.h), one template over a MAC policy (gemm_4xn.h):
// - gemm_u8s8_4x8__neon: any ARMv7/ARMv8 NEON, int16 codes, widening SMLAL (4 x 8 tile);
// - gemm_u8s8_4x8c16__neon: aarch64 without the dot product, int8 x int8 (a - 128 as for
//   SDOT) with weights within +-127, two products summed in int16 (SMULL + SMLAL2), then
//   pairwise into int32 (SADALP); 16 accumulators of 4 partial sums per 4 x 4 block (aarch64
//   only: armv7's 16 q registers cannot hold them);
// - gemm_u8s8_4x16c4__neondot: aarch64 + ARMv8.2 SDOT, int8 x int8, so activations enter as
//   a - 128 (one EOR) and the bias carries + 128 * sum_k w (TileLayout::act_offset);
// - gemm_u8s8_4x16c8__neoni8mm: aarch64 + ARMv8.6 USMMLA, 2 x 8 u8 by 8 x 2 s8 blocks, exact.
void gemm_u8s8_4x8__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                         size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);
// The same from int16 activations (the GEMM of a wide input, gemm_s16_table).
void gemm_s16s8_4x8__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                          size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);
#if defined(__aarch64__)
void gemm_u8s8_4x8c16__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            void* scratch);
// The same as gemm_u8s8_4x8c16__neon over 4- and 2-bit codes in sub-byte tiles (pack.h),
// unpacked in registers: TileLayout{4, 8, 16, 16, 1, 128, nullptr, 4 or 2}.
void gemm_u8s4_4x8c16__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            void* scratch);
void gemm_u8s2_4x8c16__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            void* scratch);
#endif
void gemm_u8s8_4x16c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch);
// The SDOT GEMM over 4- and 2-bit codes in sub-byte tiles (pack.h), unpacked in registers:
// TileLayout{4, 16, 4, 16, 1, 128, nullptr, 4 or 2}.
void gemm_u8s4_4x16c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch);
void gemm_u8s2_4x16c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch);
// Block-sparse int8 GEMM (gemm_sparse_neon.h): the groups of 4 reduction indices that hold a
// non-zero code (pack.h), int8, activations flipped to a - 128 as for SDOT; passes of 8 or 4
// rows, or one row. TileLayout{8, 16, 4, 4, 1, 128}: 16 channels a column tile.
// - gemm_u8bs8_8x1c4__neon: any ARMv7/ARMv8 NEON, codes within +-127 (two products summed in
//   int16 by SMULL + SMLAL, then pairwise into int32 by SADALP; gemm_sparse_neon.cc);
// - gemm_u8bs8_8x1c4__neondot: aarch64 + SDOT, a group's 4 products in one SDOT lane
//   (gemm_neondot.cc).
void gemm_u8bs8_8x1c4__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);
void gemm_u8bs8_8x1c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch);
void gemm_u8s8_4x16c8__neoni8mm(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                void* scratch);

// MATMUL (MatMulFn, tables.h), aarch64 (matmul_neon.h): b - 128 packed per call into the int8
// tiles of a GEMM above and multiplied by a - 128 as there; sum (a - z_a)(b - z_b) is that
// product plus a term per row (the rows' sums of a - 128) and one per column (the columns' sums
// of b - 128, and k z_a z_b), all in int32.
// - matmul_u8_4x16c4__neondot: SDOT (gemm_neondot.cc);
// - matmul_u8_4x8c16__neon: cores without the dot product, SMULL + SADALP one product at a time
//   (b - 128 reaches -128, outside the pairs' bound; gemm_neon_s8pairs.cc).
void matmul_u8_4x16c4__neondot(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y,
                               size_t row_begin, size_t row_end, void* scratch);
#if defined(__aarch64__)
void matmul_u8_4x8c16__neon(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t row_begin,
                            size_t row_end, void* scratch);
#endif

// Depthwise convolution (DwconvFn): 16 channels a step, the input shifted to int8 (x - 128, its
// 128 * sum(w) folded into the bias), two taps' SMULL + SMLAL products summed in int16, then
// widened into int32 (SADDW); weights of at most 127 in magnitude (pairs_fit_int16).
constexpr size_t kDwconvNeonMaxTaps = 64;
void dwconv_u8s8_16c1__neon(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                            uint8_t* y, size_t row_begin, size_t row_end);

// Elementwise and pooling (same signatures as the reference).
void add_u8__neon(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n);
void mul_u8__neon(const MulParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n);
void add_wide__neon(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                    size_t n);
void avg_pool_u8__neon(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);
void max_pool_u8__neon(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);
#if defined(__aarch64__)
// aarch64 only: 32-bit NEON has no vector division and flushes subnormals to zero (which rules
// out the dequantize multiply there); TBL/TBX over four registers look up 64 entries at once,
// so a 256-entry table is four lookups, where 32-bit NEON's VTBL reaches 32.
void quantize_f32_u8__neon(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point);
void wide_from_f32__neon(void* data, size_t n, float scale);
void dequantize_u8_f32__neon(const uint8_t* x, float* y, size_t n, float scale, int32_t zero_point);
void lut_u8__neon(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);
#endif

// Transformer ops: LAYER_NORM with its output stage packed to 4 channels; SOFTMAX, whose
// exponentials are looked up one by one (NEON has no gather) and whose normalization is vector.
void layer_norm_u8__neon(const LayerNormParams& p, const LayerNormView& w, const uint8_t* x, void* y,
                         size_t row_begin, size_t row_end);
void layer_norm_wide__neon(const LayerNormParams& p, const LayerNormView& w, const int32_t* x, void* y,
                           size_t row_begin, size_t row_end);
// GATHER into a wide output: int8 rows 8 channels a step (other widths: the reference).
void gather_rows_wide__neon(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                            const int32_t* rows, size_t n_rows, int32_t* y);
// `scratch` holds p.n int32.
void softmax_u8__neon(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                      size_t row_begin, size_t row_end, int32_t* scratch);

}  // namespace intinfer
