#include "weights.h"

#include <cstring>
#include <limits>

#include "../kernels/codes.h"
#include "../kernels/sparse.h"

namespace intinfer {
namespace {

// Each channel's sum of codes of block-sparse weights, each code checked by `check`.
template <typename Check>
std::vector<int64_t> sparse_sums(const BlockSparseRows& blocks, size_t channels, const Check& check) {
  std::vector<int64_t> sums(channels, 0);
  for (size_t c = 0; c < channels; ++c)
    blocks.for_each(c, [&](size_t, const int8_t* values) {
      for (size_t i = 0; i < blocks.block(); ++i) {
        check(values[i]);
        sums[c] += values[i];
      }
    });
  return sums;
}

}  // namespace

QuantizedWeights read_weights(const OpContext& ctx, const TensorDesc& x, const TensorDesc& w, const TensorDesc& b,
                              bool float_output_ok, int32_t wide_input_bound) {
  if (wide_input_bound > 0)
    ctx.expect_wide(x, "input");
  else
    ctx.expect_quantized_u8(x, "input");
  // A wide (int32) output is computed through the real-valued output, then quantized.
  const DType out = ctx.output(0).dtype;
  const bool float_output = float_output_ok && (out == DType::kFloat32 || out == DType::kInt32);
  if (out == DType::kInt32) ctx.expect_wide(ctx.output(0), "output");
  if (!float_output) ctx.expect_quantized_u8(ctx.output(0), "output");
  const int bits = ctx.expect_weight_codes(w, "weights");
  ctx.expect_dtype(b, DType::kInt32, "bias");
  ctx.expect_constant(b, "bias");
  QuantizedWeights p;
  p.channels = static_cast<size_t>(w.shape[0]);
  p.depth = static_cast<size_t>(w.numel()) / p.channels;
  const size_t row = static_cast<size_t>(w.shape.back());
  p.row_length = row;
  const bool sparse = w.encoding == Encoding::kBlockSparse || w.encoding == Encoding::kBlockBitmap;
  const WeightFormat::BlockIndex index =
      w.encoding == Encoding::kBlockBitmap ? WeightFormat::BlockIndex::kBitmap : WeightFormat::BlockIndex::kColumns;
  const BlockSparseRows blocks(w.data, index, p.channels, p.depth, row);
  p.format = sparse ? block_sparse_s8(static_cast<uint32_t>(blocks.block()), index)
             : bits == 4 ? kWeightsS4 : bits == 2 ? kWeightsS2 : kWeightsS8;
  // The packed encoding pads each row of the last dimension to whole bytes; the kernels read a
  // channel's codes as one row, so a channel of several rows must leave no padding between them.
  if (bits < 8 && row != p.depth && row * bits % 8 != 0)
    ctx.fail("weights '", w.name, "' ", shape_str(w.shape), ": packed ", dtype_name(w.dtype), " rows of ", row,
             " codes end inside a byte; the engine reads packed conv weights whose last dimension x ", bits,
             " bits fills whole bytes (store this layer as int8)");
  if (b.shape.size() != 1 || static_cast<size_t>(b.shape[0]) != p.channels)
    ctx.fail("bias '", b.name, "' has shape ", shape_str(b.shape), ", expected [", p.channels, "]");
  if (w.scales.size() != 1 && w.scales.size() != p.channels)
    ctx.fail("weights '", w.name, "' need 1 or ", p.channels, " scales, have ", w.scales.size());
  if ((w.scales.size() > 1 && w.axis != 0))
    ctx.fail("weights '", w.name, "' must be quantized per output channel (axis 0), not axis ", w.axis);
  for (int32_t z : w.zero_points)
    if (z != 0) ctx.fail("weights '", w.name, "' must be symmetric (zero point 0), found ", z);
  if (wide_input_bound > 0 && (sparse || bits != 8))
    ctx.fail("weights '", w.name, "' are ", sparse ? "block-sparse" : dtype_name(w.dtype),
             "; a wide input takes dense int8 weights");
  const int64_t max_products = max_accumulator(p.format, p.depth, wide_input_bound > 0 ? wide_input_bound : 255);
  if (max_products > std::numeric_limits<int32_t>::max()) {
    if (wide_input_bound > 0)
      ctx.fail("reduction depth ", p.depth, " with inputs within +-", wide_input_bound,
               " could overflow the int32 accumulator");
    ctx.fail("reduction depth ", p.depth, " could overflow the int32 accumulator");
  }

  p.codes = w.data;
  p.code_bytes = w.data_bytes;
  std::vector<int32_t> bias(p.channels);
  std::memcpy(bias.data(), b.data, p.channels * sizeof(int32_t));
  const int32_t z_in = x.zero_points[0];
  const double s_in = x.scales[0];
  p.bias.resize(p.channels);
  auto check = [&](int32_t v) {
    if (v < -p.format.max_abs || v > p.format.max_abs)
      ctx.fail("weights '", w.name, "' hold ", v, " (the range is [", -p.format.max_abs, ", ", p.format.max_abs, "])");
  };
  auto dense_sums = [&](auto codes) {
    using C = decltype(codes);
    std::vector<int64_t> s(p.channels, 0);
    for (size_t c = 0; c < p.channels; ++c) {
      const uint8_t* channel = w.data + c * C::row_bytes(p.depth);
      for (size_t k = 0; k < p.depth; ++k) {
        const int32_t v = C::at(channel, k);
        check(v);
        s[c] += v;
      }
    }
    return s;
  };
  const std::vector<int64_t> sums = sparse ? sparse_sums(blocks, p.channels, check) : with_codes(bits, dense_sums);
  for (size_t c = 0; c < p.channels; ++c) {
    const int64_t sum = sums[c];
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
