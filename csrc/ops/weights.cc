#include "weights.h"

#include <cstring>
#include <limits>

namespace intinfer {

QuantizedWeights read_weights(const OpContext& ctx, const TensorDesc& x, const TensorDesc& w, const TensorDesc& b,
                              bool float_output_ok) {
  ctx.expect_quantized_u8(x, "input");
  // A wide (int32) output is computed through the real-valued output, then quantized.
  const DType out = ctx.output(0).dtype;
  const bool float_output = float_output_ok && (out == DType::kFloat32 || out == DType::kInt32);
  if (out == DType::kInt32) ctx.expect_wide(ctx.output(0), "output");
  if (!float_output) ctx.expect_quantized_u8(ctx.output(0), "output");
  ctx.expect_dtype(w, DType::kInt8, "weights");
  ctx.expect_constant(w, "weights");
  ctx.expect_dtype(b, DType::kInt32, "bias");
  ctx.expect_constant(b, "bias");
  QuantizedWeights p;
  p.format = kWeightsS8;
  p.channels = static_cast<size_t>(w.shape[0]);
  p.depth = static_cast<size_t>(w.numel()) / p.channels;
  if (b.shape.size() != 1 || static_cast<size_t>(b.shape[0]) != p.channels)
    ctx.fail("bias '", b.name, "' has shape ", shape_str(b.shape), ", expected [", p.channels, "]");
  if (w.scales.size() != 1 && w.scales.size() != p.channels)
    ctx.fail("weights '", w.name, "' need 1 or ", p.channels, " scales, have ", w.scales.size());
  if ((w.scales.size() > 1 && w.axis != 0))
    ctx.fail("weights '", w.name, "' must be quantized per output channel (axis 0), not axis ", w.axis);
  for (int32_t z : w.zero_points)
    if (z != 0) ctx.fail("weights '", w.name, "' must be symmetric (zero point 0), found ", z);
  const int64_t max_products = max_accumulator(p.format, p.depth);
  if (max_products > std::numeric_limits<int32_t>::max())
    ctx.fail("reduction depth ", p.depth, " could overflow the int32 accumulator");

  p.codes = w.data;
  const int8_t* codes = reinterpret_cast<const int8_t*>(w.data);
  std::vector<int32_t> bias(p.channels);
  std::memcpy(bias.data(), b.data, p.channels * sizeof(int32_t));
  const int32_t z_in = x.zero_points[0];
  const double s_in = x.scales[0];
  p.bias.resize(p.channels);
  for (size_t c = 0; c < p.channels; ++c) {
    int64_t sum = 0;
    for (size_t k = 0; k < p.depth; ++k) {
      const int8_t v = codes[c * p.depth + k];
      if (v < -p.format.max_abs || v > p.format.max_abs)
        ctx.fail("weights '", w.name, "' hold ", int{v}, " (the range is [", -p.format.max_abs, ", ",
                 p.format.max_abs, "])");
      sum += v;
    }
    const int64_t folded = bias[c] - static_cast<int64_t>(z_in) * sum;
    const int64_t magnitude = folded < 0 ? -folded : folded;
    if (magnitude > std::numeric_limits<int32_t>::max() - max_products)
      ctx.fail("bias of channel ", c, " (", bias[c], ") could overflow the int32 accumulator");
    p.bias[c] = static_cast<int32_t>(folded);
    const double s_w = w.scales.size() == 1 ? w.scales[0] : w.scales[c];
    if (float_output)
      p.output_scales.push_back(static_cast<float>(s_in * s_w));
    else
      p.multipliers.push_back(ctx.multiplier(s_in * s_w / ctx.output(0).scales[0], "requantization"));
  }
  return p;
}

}  // namespace intinfer
