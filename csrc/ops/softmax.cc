// SOFTMAX over the last axis of uint8 logits: exponentials from a 256-entry table written by
// the exporter (so no libm difference between platforms can change a result), integer
// normalization, output in 1/256 steps; an optional [B, N] mask leaves positions out, and an
// optional relative-position bias table (MPNet's, T5's) is added to the logits of [B, H, Q, K]
// attention scores by the distance of key and query.
#include "../kernels/ref/kernels.h"
#include "../kernels/tables.h"
#include "mask.h"
#include "ops.h"

namespace intinfer {
namespace {

class Softmax : public Op {
 public:
  explicit Softmax(const OpContext& ctx) : name_(ctx.desc().name) {
    relative_ = ctx.attr_int("relative") != 0;
    ctx.expect_io(relative_ ? 3 : 2, relative_ ? 4 : 3, 1);
    ctx.expect_quantized_u8(ctx.input(0), "input");
    const TensorDesc& table = ctx.input(1);
    ctx.expect_dtype(table, DType::kInt32, "exp table");
    ctx.expect_constant(table, "exp table");
    table_size_ = table.numel();
    if (table_size_ < 256 || table_size_ > kMaxTable)
      ctx.fail("exp table '", table.name, "' has ", table_size_, " entries, expected 256 to ", kMaxTable);
    const int32_t* t = reinterpret_cast<const int32_t*>(table.data);
    if (t[0] != (1 << SoftmaxParams::kExpBits)) ctx.fail("exp table must start at 2^16, got ", t[0]);
    for (size_t d = 1; d < table_size_; ++d)
      if (t[d] < 0 || t[d] > t[d - 1]) ctx.fail("exp table must decrease from 2^16 towards 0 (entry ", d, ")");
    has_mask_ = ctx.desc().inputs.size() == (relative_ ? 4u : 3u);
    if (has_mask_) expect_mask(ctx, ctx.input(2));
    if (relative_) {
      const TensorDesc& bias = ctx.input(ctx.desc().inputs.size() - 1);
      ctx.expect_dtype(bias, DType::kInt32, "relative bias");
      ctx.expect_constant(bias, "relative bias");
      if (bias.shape.size() != 2 || bias.shape[1] % 2 == 0)
        ctx.fail("relative bias '", bias.name, "' must be [heads, 2 R - 1], got ", shape_str(bias.shape));
      heads_ = bias.shape[0];
      reach_ = (bias.shape[1] + 1) / 2;
      bias_ = reinterpret_cast<const int32_t*>(bias.data);
      for (int64_t i = 0; i < bias.numel(); ++i)
        if (bias_[i] < -kMaxBias || bias_[i] > kMaxBias)
          ctx.fail("relative bias '", bias.name, "' entry ", i, " is ", bias_[i], ", outside +-2^24");
    }
    const TensorDesc& y = ctx.output(0);
    ctx.expect_quantized_u8(y, "output");
    if (y.scales[0] != 1.0f / 256 || y.zero_points[0] != 0) ctx.fail("output must have scale 1/256 and zero point 0");
    table_ = t;
    kernel_ = select(transformer_table(), ctx.features()).softmax;
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const Shape& x = in[0];
    if (x.size() < 2) shape_error(name_, "input must be [batch, ..., n], got " + shape_str(x));
    if (has_mask_) expect_mask_shape(name_, in[2], x[0], x.back());
    if (relative_ && (x.size() != 4 || x[1] != heads_ || x[2] > reach_ || x[3] > reach_))
      shape_error(name_, "with a relative bias of " + std::to_string(heads_) + " heads and reach " +
                             std::to_string(reach_) + ", the input must be [batch, " + std::to_string(heads_) +
                             ", q <= " + std::to_string(reach_) + ", k <= " + std::to_string(reach_) + "], got " +
                             shape_str(x));
    return {x};
  }

  void run(const ExecContext& ctx) const override {
    const Shape& x = *ctx.input_shapes[0];
    const size_t n = static_cast<size_t>(x.back()), rows = numel(x) / n;
    std::vector<uint8_t> mask;
    std::vector<const uint8_t*> row_mask;
    if (has_mask_) {
      const size_t batch = static_cast<size_t>(x[0]), per_batch = rows / batch;
      mask = mask_bytes(ctx.inputs[2], batch * n);
      row_mask.resize(rows);
      for (size_t r = 0; r < rows; ++r) row_mask[r] = mask.data() + (r / per_batch) * n;
    }
    const SoftmaxParams p{n, table_, table_size_};
    const uint8_t* in = ctx.in<uint8_t>(0);
    uint8_t* out = ctx.out<uint8_t>(0);
    const uint8_t* const* masks = has_mask_ ? row_mask.data() : nullptr;
    if (!relative_) {
      ctx.pool->parallel_for(rows, [&](size_t b, size_t e) {
        std::vector<int32_t> scratch(n);
        kernel_(p, in, masks, out, b, e, scratch.data());
      });
      return;
    }
    // Row (b, h, i) adds bias[h, j - i + R - 1] to logit j.
    const size_t q = static_cast<size_t>(x[2]), width = static_cast<size_t>(2 * reach_ - 1);
    std::vector<const int32_t*> row_bias(rows);
    for (size_t r = 0; r < rows; ++r)
      row_bias[r] = bias_ + ((r / q) % static_cast<size_t>(heads_)) * width + static_cast<size_t>(reach_ - 1) - r % q;
    ctx.pool->parallel_for(rows, [&](size_t b, size_t e) {
      std::vector<int32_t> scratch(n);
      softmax_biased_u8__ref(p, in, masks, row_bias.data(), out, b, e, scratch.data());
    });
  }

 private:
  static constexpr size_t kMaxTable = 65536;
  static constexpr int32_t kMaxBias = 1 << 24;
  std::string name_;
  const int32_t* table_;
  size_t table_size_;
  bool has_mask_;
  bool relative_;
  int64_t heads_ = 0, reach_ = 0;  // the relative bias table: [heads, 2 reach - 1]
  const int32_t* bias_ = nullptr;
  decltype(TransformerRow::softmax) kernel_;
};

}  // namespace

std::unique_ptr<Op> make_softmax(const OpContext& ctx) { return std::make_unique<Softmax>(ctx); }

}  // namespace intinfer
