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
};

}  // namespace intinfer
