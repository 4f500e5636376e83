// The weights of the ops that multiply by quantized weights (CONV2D, FULLY_CONNECTED), validated
// once at load: what the kernel tables select on and the packer reads.
#pragma once

#include <vector>

#include "../kernels/weight_format.h"
#include "op.h"

namespace intinfer {

// Symmetric per-channel weights (axis 0, zero point 0, codes within the format's range), with
// -z_in * sum(w[c]) folded into the int32 bias, the int32 accumulator proven not to overflow,
// and the per-channel multipliers s_in * s_w[c] / s_out (or, for a float output, s_in * s_w[c]).
struct QuantizedWeights {
  WeightFormat format;
  // [channels][depth] in `format`, in the mapped file: int8, or packed int4 / int2 with each
  // channel's codes one row of Codes<bits>::row_bytes(depth) bytes (codes.h), or block-sparse
  // int8 (sparse.h, either index) in rows of the last dimension, `row_length` codes each.
  const void* codes = nullptr;
  size_t code_bytes = 0;  // of `codes`, as the file stores them (the reader checked the size)
  size_t channels = 0;
  size_t depth = 0;  // weights per channel
  size_t row_length = 0;
  std::vector<int32_t> bias;
  std::vector<QuantizedMultiplier> multipliers;  // uint8 output
  std::vector<float> output_scales;              // float32 output: s_in * s_w[c]

  // Bytes the weights and biases take in the file.
  size_t bytes() const { return code_bytes + bias.size() * sizeof(int32_t); }
};

// With `float_output_ok`, a float32 output gets the accumulator scaled to real values instead.
// wide_input_bound > 0: x is a wide input read within +-wide_input_bound (FULLY_CONNECTED), which
// takes dense int8 weights; the accumulator bound is proven with it in place of uint8's 255.
QuantizedWeights read_weights(const OpContext& ctx, const TensorDesc& x, const TensorDesc& w, const TensorDesc& b,
                              bool float_output_ok = false, int32_t wide_input_bound = 0);

}  // namespace intinfer
