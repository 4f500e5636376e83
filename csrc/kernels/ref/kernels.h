// Portable scalar kernels: the executable specification of docs/quantization.md.
// Each processes a slice of its output (rows [begin, end)) so the caller can split work
// between threads without changing any result.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../params.h"

namespace intinfer {

// Output rows are (batch, out_y) pairs: row r = b * out_h + oy.
void conv2d_u8s8__ref(const ConvParams& p, const uint8_t* x, const int8_t* w, const int32_t* bias, uint8_t* y,
                      size_t row_begin, size_t row_end);
// The same over codes of `bits` (8, 4 or 2; codes.h): output channel oc's kernel_h x kernel_w x
// cin codes are one row, so a packed OHWI tensor qualifies when cin x bits fills whole bytes.
void conv2d_u8sub__ref(const ConvParams& p, int bits, const uint8_t* x, const void* w, const int32_t* bias, uint8_t* y,
                       size_t row_begin, size_t row_end);

// Rows of x [m, k]; w is [n, k].
void gemm_u8s8__ref(const GemmParams& p, const uint8_t* x, const int8_t* w, const int32_t* bias, uint8_t* y,
                    size_t row_begin, size_t row_end);

// As gemm_u8s8__ref, but the output is real: y[m, n] = float(acc) * scales[n].
void gemm_u8s8_f32__ref(const GemmParams& p, const float* scales, const uint8_t* x, const int8_t* w,
                        const int32_t* bias, float* y, size_t row_begin, size_t row_end);

// The same from int16 activations (a wide input narrowed to FULLY_CONNECTED's input bound; zero
// point 0), uint8 or real output.
void gemm_s16s8__ref(const GemmParams& p, const int16_t* x, const int8_t* w, const int32_t* bias, uint8_t* y,
                     size_t row_begin, size_t row_end);
void gemm_s16s8_f32__ref(const GemmParams& p, const float* scales, const int16_t* x, const int8_t* w,
                         const int32_t* bias, float* y, size_t row_begin, size_t row_end);

// The same over int16 codes within [-255, 255] (MATMUL's b - z_b, kWeightsS16).
void gemm_u8s16__ref(const GemmParams& p, const uint8_t* x, const int16_t* w, const int32_t* bias, uint8_t* y,
                     size_t row_begin, size_t row_end);
void gemm_u8s16_f32__ref(const GemmParams& p, const float* scales, const uint8_t* x, const int16_t* w,
                         const int32_t* bias, float* y, size_t row_begin, size_t row_end);

// The same over codes of `bits` (8, or 4 and 2 in the packed encoding of docs/format.md): row n
// of w is codes.h's Codes<bits> row of k codes.
void gemm_u8sub__ref(const GemmParams& p, int bits, const uint8_t* x, const void* w, const int32_t* bias, uint8_t* y,
                     size_t row_begin, size_t row_end);
void gemm_u8sub_f32__ref(const GemmParams& p, int bits, const float* scales, const uint8_t* x, const void* w,
                         const int32_t* bias, float* y, size_t row_begin, size_t row_end);

// The same over sparse codes as the packer lays them out for the reference rows (pack.h, groups
// of one code): output channel n's non-zero codes are codes[i] at reduction index index[i], for
// i in [start[n], start[n + 1]).
struct SparseCodes {
  const uint32_t* start;
  const uint32_t* index;
  const int8_t* codes;
};
void gemm_u8sparse__ref(const GemmParams& p, const SparseCodes& w, const uint8_t* x, const int32_t* bias, uint8_t* y,
                        size_t row_begin, size_t row_end);
void gemm_u8sparse_f32__ref(const GemmParams& p, const float* scales, const SparseCodes& w, const uint8_t* x,
                            const int32_t* bias, float* y, size_t row_begin, size_t row_end);

// n elements; a or b advances by its step (0 broadcasts one value).
void add_u8__ref(const AddParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                 size_t n);

void mul_u8__ref(const MulParams& p, const uint8_t* a, size_t a_step, const uint8_t* b, size_t b_step, uint8_t* y,
                 size_t n);

// Permutes a row-major tensor of `rank` dims (`shape` of x) so that y's dim i is x's dim perm[i].
void transpose__ref(const uint8_t* x, uint8_t* y, size_t elem_size, int rank, const int64_t* shape,
                    const int64_t* perm);

void avg_pool_u8__ref(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);
void max_pool_u8__ref(const PoolParams& p, const uint8_t* x, uint8_t* y, size_t row_begin, size_t row_end);

// y = clamp(requant(x - in_zero_point, m) + out.zero_point)
void requantize_u8__ref(const uint8_t* x, size_t n, int32_t in_zero_point, QuantizedMultiplier m,
                        const OutputStage& out, uint8_t* y);

void lut_u8__ref(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);
// A wide input as int16 activations: y = clamp(x, -bound, bound), bound <= 32767.
void narrow_wide_s16__ref(const int32_t* x, int16_t* y, size_t n, int32_t bound);
// y = table[x] into a wide output (int32 entries; the one LUT kernel with a wide output, on every path).
void lut_wide__ref(const int32_t* table, const uint8_t* x, int32_t* y, size_t n);
void clamp_u8__ref(const uint8_t* x, uint8_t* y, size_t n, uint8_t lo, uint8_t hi);

void quantize_f32_u8__ref(const float* x, uint8_t* y, size_t n, float scale, int32_t zero_point);
void dequantize_u8_f32__ref(const uint8_t* x, float* y, size_t n, float scale, int32_t zero_point);

// Transformer kernels (ref/transformer.cc).

// Rows of a table of codes of `bits` (8, 4 or 2; codes.h), h codes a row, with one multiplier per
// row (symmetric per-row quantization): output row i is table row rows[i], each value
// requantized to the output.
void gather_rows__ref(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                      const OutputStage& out, const int32_t* rows, size_t n_rows, uint8_t* y);

// Rows [row_begin, row_end) of x [rows, H], uint8 or wide.
void layer_norm_u8__ref(const LayerNormParams& p, const uint8_t* x, void* y, size_t row_begin, size_t row_end);
void layer_norm_wide__ref(const LayerNormParams& p, const int32_t* x, void* y, size_t row_begin, size_t row_end);

// As gather_rows__ref into a wide output: clamp(requant(value, m_row), +-kWideMax).
void gather_rows_wide__ref(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                           const int32_t* rows, size_t n_rows, int32_t* y);

// n elements of a (a_step) and b (b_step, each 0 or 1), uint8 or int32 as p says, into a wide y.
void add_wide__ref(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                   size_t n);

// Real values (a float32 FULLY_CONNECTED output) to wide: clamp(rint(x / scale), +-kWideMax), in
// place (NaN: 0).
void wide_from_f32__ref(void* data, size_t n, float scale);

// Rows [row_begin, row_end) of x [rows, n]; mask[r] (n bytes, nonzero = attend) or null for
// no mask. Output scale 1/256, zero point 0.
void softmax_u8__ref(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                     size_t row_begin, size_t row_end);
// SOFTMAX with a relative-position bias: the logits of row r are x[j] + bias[r][j] (int32, in the
// input's steps), so a logit may lie more than 255 steps below the maximum.
void softmax_biased_u8__ref(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask,
                            const int32_t* const* bias, uint8_t* y, size_t row_begin, size_t row_end, int32_t* scratch);

// Rows [row_begin, row_end) of one matrix product (a [m, k], b [k, n] or [n, k], y [m, n]); the
// MatMulFn of tables.h (no scratch).
void matmul_u8__ref(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t row_begin,
                    size_t row_end, void* scratch);

// Mean over the masked positions of x [s, h] (one batch element): y[c] = float(sum) * scale,
// scale = float(s_in / count); all zeros when nothing is masked in.
void masked_mean_u8_f32__ref(const uint8_t* x, const uint8_t* mask, size_t s, size_t h, int32_t zero_point,
                             double input_scale, float* y);

}  // namespace intinfer
