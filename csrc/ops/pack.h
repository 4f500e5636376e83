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
  std::vector<QuantizedMultiplier> multipliers;
  const int8_t* weights = nullptr;
  size_t channels = 0;
  size_t depth = 0;  // weights per channel
};

PackedWeights pack_weights(const OpContext& ctx, const TensorDesc& x, const TensorDesc& w, const TensorDesc& b);

}  // namespace intinfer
