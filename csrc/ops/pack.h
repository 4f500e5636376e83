// Weight preparation shared by the ops that multiply by int8 weights.
#pragma once

#include <vector>

#include "op.h"

namespace intinfer {

// Checks int8 symmetric per-channel weights (axis 0, zero point 0, values in [-127, 127]),
// folds -z_in * sum(w[c]) into the int32 bias and proves the int32 accumulator cannot
// overflow; computes the per-channel multipliers s_in * s_w[c] / s_out.
struct PackedWeights {
  std::vector<int32_t> bias;
  std::vector<QuantizedMultiplier> multipliers;  // uint8 output
  std::vector<float> output_scales;              // float32 output: s_in * s_w[c]
  const int8_t* weights = nullptr;
  size_t channels = 0;
  size_t depth = 0;  // weights per channel
};

// With `float_output_ok`, a float32 output gets the accumulator scaled to real values instead.
PackedWeights pack_weights(const OpContext& ctx, const TensorDesc& x, const TensorDesc& w, const TensorDesc& b,
                           bool float_output_ok = false);

}  // namespace intinfer
