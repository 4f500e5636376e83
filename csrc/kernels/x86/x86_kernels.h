// The entry points of the x86 kernels: the only symbols their ISA-flagged units export (the
// rows of tables.cc refer to them). Each is bit-exact with its reference twin.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../pack.h"
#include "../params.h"

namespace intinfer {

// GEMM (GemmFn, tables.h), 4 rows x 16 channels: AVX2 vpmaddwd on int16 pairs (gemm_avx2.cc)
// and AVX-VNNI vpdpbusd on int8 quads (gemm_avxvnni.cc).
void gemm_u8s8_4x16c2__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);
// The same from int16 activations (the GEMM of a wide input, gemm_s16_table).
void gemm_s16s8_4x16c2__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                             size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);
void gemm_u8s8_4x16c4__avxvnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch);
// AVX2 vpmaddubsw on int8 quads of codes within +-127, activations flipped to x - 128 (exact:
// gemm_avx2.cc): TileLayout{4, 16, 4, 4, 1, 128}.
void gemm_u8s8_4x16c4__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);
// The same over 4- and 2-bit codes stored as c + 8 and c + 1 (sub-byte tiles, pack.h), against
// activations flipped to x - 128: TileLayout{4, 16, 4, 4, 1, 128, nullptr, 4, 8} and {..., 2, 1}.
void gemm_u8s4_4x16c4__avxvnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch);
void gemm_u8s2_4x16c4__avxvnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch);
// AVX-512 VNNI: 512-bit vpdpbusd on the avxvnni tiles (gemm_avx512vnni.cc), 8 rows x 16 channels,
// two column tiles a step: int8, TileLayout{8, 16, 4, 4, 1, 0}; 4- and 2-bit codes stored as c + 8
// and c + 1 against activations flipped to x - 128, TileLayout{8, 16, 4, 4, 1, 128, nullptr, 4, 8}
// and {..., 2, 1}.
void gemm_u8s8_8x16c4__avx512vnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                  void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                  void* scratch);
void gemm_u8s4_8x16c4__avx512vnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                  void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                  void* scratch);
void gemm_u8s2_8x16c4__avx512vnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                  void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                  void* scratch);
// MATMUL (MatMulFn) on the same micro-kernels: b flipped to int8 and packed per call, a term per
// row and one per column for the zero points.
void matmul_u8_8x16c4__avx512vnni(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y,
                                  size_t row_begin, size_t row_end, void* scratch);
// The AVX2 GEMM over 4- and 2-bit codes in sub-byte tiles (pack.h) of int8 quads, unpacked in
// registers and multiplied by vpmaddubsw (exact for codes within +-7): 4-bit codes stored as
// c + 8 and multiplied as they are by activations flipped to x - 128, TileLayout{4, 16, 4, 4, 1,
// 128, nullptr, 4, 8}; 2-bit codes looked up by vpshufb, TileLayout{4, 16, 4, 4, 1, 0, nullptr, 2}.
void gemm_u8s4_4x16c4__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);
void gemm_u8s2_4x16c4__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);

// Block-sparse int8 GEMM: the groups of 4 reduction indices that hold a non-zero code (pack.h),
// int8, multiplied by the exact vpmaddubsw of the dense kernel (activations flipped to x - 128);
// passes of 8 or 4 rows, or one row (gemm_sparse_avx2.cc). TileLayout{8, 16, 4, 4, 1, 128}: 16
// channels a column tile.
void gemm_u8bs8_8x1c4__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch);

// The same on AVX-512 VNNI (gemm_sparse_avx512vnni.cc): uint8 activations as they are by the int8
// codes, 512-bit vpdpbusd, passes of 16 rows (a group of a channel multiplies all 16 rows' quads
// at once), or one row (eight groups of a channel a step by vpmaddwd). TileLayout{16, 16, 4, 4, 1, 0}.
void gemm_u8bs8_16x1c4__avx512vnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                   void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                   void* scratch);

// Depthwise convolution (DwconvFn), 16 channels, taps in pairs: weights as int16 with pairs of
// taps interleaved per channel, so each vpmaddwd adds two taps of 8 channels into int32. Lane
// order: kDwconvAvx2LaneOrder (the order vpunpck{l,h}wd produce).
constexpr size_t kDwconvAvx2MaxTaps = 64;
constexpr uint8_t kDwconvAvx2LaneOrder[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};
void dwconv_u8s8_16c2__avx2(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                            uint8_t* y, size_t row_begin, size_t row_end);

// The same on 32 channels with 512-bit vectors (dwconv_avx512vnni.cc): weights as int16 pairs of
// taps in kDwconvAvx512LaneOrder (what vpunpck{l,h}wd produce on 512 bits).
constexpr size_t kDwconvAvx512MaxTaps = 64;
constexpr uint8_t kDwconvAvx512LaneOrder[32] = {0,  1,  2,  3,  16, 17, 18, 19, 4,  5,  6,  7,  20, 21, 22, 23,
                                                8,  9,  10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31};
void dwconv_u8s8_32c2__avx512vnni(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                                  uint8_t* y, size_t row_begin, size_t row_end);

// Elementwise (same signatures as the reference).
void add_u8__avx2(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n);
void mul_u8__avx2(const MulParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                  size_t n);
void add_wide__avx2(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                    size_t n);
void quantize_f32_u8__avx2(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point);
void wide_from_f32__avx2(void* data, size_t n, float scale);
void dequantize_u8_f32__avx2(const uint8_t* x, float* y, size_t n, float scale, int32_t zero_point);
// 256-entry table lookup with vpshufb: 16 lookups of 16 entries, each kept where the high
// nibble of x selects its chunk.
void lut_u8__avx2(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);

// ADD on 16 lanes a step (elementwise_avx512vnni.cc).
void add_u8__avx512vnni(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step,
                        uint8_t* y, size_t n);
void add_wide__avx512vnni(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step,
                          int32_t* y, size_t n);

// Pooling.
void avg_pool_u8__avx2(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);
void max_pool_u8__avx2(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);

// Transformer ops: LAYER_NORM with its output stage packed to 8 channels, SOFTMAX.
void layer_norm_u8__avx2(const LayerNormParams& p, const LayerNormView& w, const uint8_t* x, void* y,
                         size_t row_begin, size_t row_end);
void layer_norm_wide__avx2(const LayerNormParams& p, const LayerNormView& w, const int32_t* x, void* y,
                           size_t row_begin, size_t row_end);
// The same LAYER_NORMs on 16 channels a step (transformer_avx512vnni.cc), output stage packed to 16,
// and SOFTMAX 16 a step.
void layer_norm_u8__avx512vnni(const LayerNormParams& p, const LayerNormView& w, const uint8_t* x, void* y,
                               size_t row_begin, size_t row_end);
void layer_norm_wide__avx512vnni(const LayerNormParams& p, const LayerNormView& w, const int32_t* x, void* y,
                                 size_t row_begin, size_t row_end);
// `scratch` holds p.n int32.
void softmax_u8__avx512vnni(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                            size_t row_begin, size_t row_end, int32_t* scratch);
// GATHER into a wide output: int8 rows 8 channels a step (other widths: the reference).
void gather_rows_wide__avx2(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                            const int32_t* rows, size_t n_rows, int32_t* y);
// `scratch` holds p.n int32.
void softmax_u8__avx2(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                      size_t row_begin, size_t row_end, int32_t* scratch);

}  // namespace intinfer
