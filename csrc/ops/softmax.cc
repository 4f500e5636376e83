// SOFTMAX over the last axis of uint8 logits: exponentials from a 256-entry table written by
// the exporter (so no libm difference between platforms can change a result), integer
// normalization, output in 1/256 steps; an optional [B, N] mask leaves positions out.
#include "../kernels/ref/kernels.h"
#include "../kernels/tables.h"
#include "mask.h"
#include "ops.h"

namespace intinfer {
namespace {

class Softmax : public Op {
 public:
  explicit Softmax(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(2, 3, 1);
    ctx.expect_quantized_u8(ctx.input(0), "input");
    const TensorDesc& table = ctx.input(1);
    ctx.expect_dtype(table, DType::kInt32, "exp table");
    ctx.expect_constant(table, "exp table");
    if (table.numel() != 256) ctx.fail("exp table '", table.name, "' has ", table.numel(), " entries, expected 256");
    const int32_t* t = reinterpret_cast<const int32_t*>(table.data);
    if (t[0] != (1 << SoftmaxParams::kExpBits)) ctx.fail("exp table must start at 2^16, got ", t[0]);
    for (int d = 1; d < 256; ++d)
      if (t[d] < 0 || t[d] > t[d - 1]) ctx.fail("exp table must decrease from 2^16 towards 0 (entry ", d, ")");
    has_mask_ = ctx.desc().inputs.size() == 3;
    if (has_mask_) expect_mask(ctx, ctx.input(2));
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
    const SoftmaxParams p{n, table_};
    const uint8_t* in = ctx.in<uint8_t>(0);
    uint8_t* out = ctx.out<uint8_t>(0);
    ctx.pool->parallel_for(rows, [&](size_t b, size_t e) {
      std::vector<int32_t> scratch(n);
      kernel_(p, in, has_mask_ ? row_mask.data() : nullptr, out, b, e, scratch.data());
    });
  }

 private:
  std::string name_;
  const int32_t* table_;
  bool has_mask_;
  decltype(TransformerRow::softmax) kernel_;
};

}  // namespace

std::unique_ptr<Op> make_softmax(const OpContext& ctx) { return std::make_unique<Softmax>(ctx); }

}  // namespace intinfer
