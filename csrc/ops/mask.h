// Attention masks: an int32 input [B, S], nonzero where a position takes part (what tokenizers
// give, narrowed from int64 by the Python API).
#pragma once

#include <vector>

#include "op.h"

namespace intinfer {

inline void expect_mask(const OpContext& ctx, const TensorDesc& t) { ctx.expect_dtype(t, DType::kInt32, "mask"); }

// The mask as 0/1 bytes, row-major like the input.
inline std::vector<uint8_t> mask_bytes(const void* data, size_t n) {
  std::vector<uint8_t> m(n);
  const int32_t* v = static_cast<const int32_t*>(data);
  for (size_t i = 0; i < n; ++i) m[i] = v[i] != 0;
  return m;
}

// Checks that a mask of shape `mask` is [batch, seq].
inline void expect_mask_shape(const std::string& op, const Shape& mask, int64_t batch, int64_t seq) {
  if (mask.size() != 2 || mask[0] != batch || mask[1] != seq)
    shape_error(op, "mask must be [" + std::to_string(batch) + ", " + std::to_string(seq) + "], got " + shape_str(mask));
}

}  // namespace intinfer
