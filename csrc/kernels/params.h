// Parameter blocks shared by the reference kernels and their optimized twins. Kernels see
// plain pointers and these structs: nothing of graphs, files or threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ref/requant.h"

namespace intinfer {

// NHWC uint8 input, OHWI int8 weights, int32 bias with the input zero point folded in.
struct ConvParams {
  int batch, in_h, in_w, in_c;
  int out_h, out_w, out_c;
  int kernel_h, kernel_w;
  int stride_h, stride_w;
  int pad_top, pad_left;
  int dilation_h, dilation_w;
  int groups;
  int32_t input_zero_point;  // what padded positions read
  OutputStage out;
  const QuantizedMultiplier* multipliers;  // one per output channel
};

// y[m, n] = requant(bias[n] + sum_k x[m, k] * w[n, k]), bias with the zero-point term folded in.
struct GemmParams {
  size_t m, n, k;
  OutputStage out;
  const QuantizedMultiplier* multipliers;  // one per output column n
};

// TFLite's add: both inputs moved to a common scale with 20 bits of headroom before the sum.
struct AddParams {
  static constexpr int kLeftShift = 20;
  int32_t a_zero_point, b_zero_point;
  QuantizedMultiplier a_multiplier, b_multiplier, out_multiplier;
  OutputStage out;
};

// y = requant((a - z_a) * (b - z_b), s_a * s_b / s_out)
struct MulParams {
  int32_t a_zero_point, b_zero_point;
  QuantizedMultiplier multiplier;
  OutputStage out;
};

struct PoolParams {
  int batch, in_h, in_w, channels;
  int out_h, out_w;
  int kernel_h, kernel_w;
  int stride_h, stride_w;
  int pad_top, pad_left;
  bool count_include_pad;
  int32_t input_zero_point;
  OutputStage out;
  // Average pool: with count_include_pad, one multiplier for the full window; otherwise entry
  // n - 1 divides by a window of n positions inside the input.
  const QuantizedMultiplier* multipliers;
  // Scratch of kernel_h * kernel_w pointers for the vector kernels' window walk, one per calling
  // thread (kernels in ISA-flagged units allocate nothing; the reference ignores it).
  const uint8_t** window;
};

// Wide activations: int32 tensors whose values stay within +-kWideMax (16 bits), zero point 0.
// Transformers keep their residual stream in them: its outlier channels would leave 8 bits
// no room for the others (docs/quantization.md).
constexpr int32_t kWideMax = 32767;

inline int32_t clamp_wide(int64_t v) { return static_cast<int32_t>(v < -kWideMax ? -kWideMax : (v > kWideMax ? kWideMax : v)); }

// ADD into a wide output: both operands (uint8 with zero points, or wide) moved to a common
// scale with 15 bits of headroom, as AddParams with 20 for uint8.
struct AddWideParams {
  static constexpr int kLeftShift = 15;
  int32_t a_zero_point, b_zero_point;
  QuantizedMultiplier a_multiplier, b_multiplier, out_multiplier;
  bool a_wide, b_wide;  // operand is int32 (wide), else uint8
};

// Per row of H values (the last axis): integer standardization, then per channel
// y = requant(sign[c] * t[c], multipliers[c]) + biases[c] + out.zero_point (docs/quantization.md),
// clamped to [out.act_min, out.act_max]: uint8, or wide (int32 within +-kWideMax, zero point 0)
// when wide_output is set.
struct LayerNormParams {
  static constexpr int kFractionBits = 15;  // t = (x - mean) / std in Q15
  size_t h;
  int32_t input_zero_point;
  const QuantizedMultiplier* multipliers;  // |gamma| * sqrt(H) / (2^15 * s_out)
  const int8_t* signs;                     // sign of gamma: -1, 0 or 1
  const int32_t* offsets;                  // round(beta 2^15 / (|gamma| sqrt(H))), added to t; 0 if flat
  const int32_t* biases;                   // round(beta / s_out) for a flat channel (sign 0), else 0
  OutputStage out;
  bool wide_output;                        // y is int32 (wide), else uint8
};

// Per row of n logits: e = table[max - x] over the attended positions, y = e / sum in 1/256.
struct SoftmaxParams {
  static constexpr int kExpBits = 16;  // table[0] = 2^16
  size_t n;
  const int32_t* exp_table;  // round(2^16 * exp(-d * s_in)), d = 0 .. table_size - 1
  size_t table_size;         // >= 256; logits further below the maximum read the last entry
};

// y[m, n] = requant(sum_k (a[m, k] - z_a)(b[k, n] - z_b)) for one matrix of a batch.
struct MatMulParams {
  size_t m, k, n;
  bool transpose_b;  // b is [n, k]
  int32_t a_zero_point, b_zero_point;
  QuantizedMultiplier multiplier;
  OutputStage out;
};

// Scratch of one call of a MATMUL kernel (MatMulFn, tables.h), for any row of the family: b
// packed as int8 in tiles of 16 columns, an int32 per column, 8 rows of a (4 on ARM), k padded to
// 16, and a byte per 8 columns (a flag per column tile of the 8-column kernels).
inline size_t matmul_scratch_bytes(size_t k, size_t n) {
  const size_t k16 = (k + 15) / 16 * 16, n16 = (n + 15) / 16 * 16;
  return n16 * k16 + 4 * n16 + 8 * k16 + n16 / 8;
}

}  // namespace intinfer
