// One factory per operator file; create_op (registry.cc) dispatches on the op type.
#pragma once

#include <memory>

#include "op.h"

namespace intinfer {

// BEGIN GENERATED factories (scripts/gen_schema.py)
std::unique_ptr<Op> make_quantize(const OpContext& ctx);
std::unique_ptr<Op> make_dequantize(const OpContext& ctx);
std::unique_ptr<Op> make_conv2d(const OpContext& ctx);
std::unique_ptr<Op> make_fully_connected(const OpContext& ctx);
std::unique_ptr<Op> make_add(const OpContext& ctx);
std::unique_ptr<Op> make_concat(const OpContext& ctx);
std::unique_ptr<Op> make_avg_pool(const OpContext& ctx);
std::unique_ptr<Op> make_max_pool(const OpContext& ctx);
std::unique_ptr<Op> make_global_avg_pool(const OpContext& ctx);
std::unique_ptr<Op> make_reshape(const OpContext& ctx);
std::unique_ptr<Op> make_lut(const OpContext& ctx);
std::unique_ptr<Op> make_clamp(const OpContext& ctx);
std::unique_ptr<Op> make_mul(const OpContext& ctx);
std::unique_ptr<Op> make_transpose(const OpContext& ctx);
std::unique_ptr<Op> make_gather(const OpContext& ctx);
std::unique_ptr<Op> make_layer_norm(const OpContext& ctx);
std::unique_ptr<Op> make_softmax(const OpContext& ctx);
std::unique_ptr<Op> make_matmul(const OpContext& ctx);
std::unique_ptr<Op> make_masked_mean(const OpContext& ctx);
std::unique_ptr<Op> make_slice(const OpContext& ctx);
std::unique_ptr<Op> make_apply_mask(const OpContext& ctx);
// END GENERATED factories

}  // namespace intinfer
