// MASKED_MEAN: the mean over the sequence of [B, S, H] uint8 values at the positions a [B, S]
// mask keeps, as float32 [B, H] (sentence embeddings by mean pooling).
#include "../kernels/ref/kernels.h"
#include "mask.h"
#include "ops.h"

namespace intinfer {
namespace {

class MaskedMean : public Op {
 public:
  explicit MaskedMean(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(2, 2, 1);
    const TensorDesc& x = ctx.input(0);
    ctx.expect_quantized_u8(x, "input");
    expect_mask(ctx, ctx.input(1));
    ctx.expect_dtype(ctx.output(0), DType::kFloat32, "output");
    scale_ = x.scales[0];
    zero_point_ = x.zero_points[0];
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const Shape& x = in[0];
    if (x.size() != 3) shape_error(name_, "input must be [batch, sequence, channels], got " + shape_str(x));
    expect_mask_shape(name_, in[1], x[0], x[1]);
    return {{x[0], x[2]}};
  }

  void run(const ExecContext& ctx) const override {
    const Shape& x = *ctx.input_shapes[0];
    const size_t batch = static_cast<size_t>(x[0]), s = static_cast<size_t>(x[1]), h = static_cast<size_t>(x[2]);
    const std::vector<uint8_t> mask = mask_bytes(ctx.inputs[1], batch * s);
    const uint8_t* in = ctx.in<uint8_t>(0);
    float* out = ctx.out<float>(0);
    ctx.pool->parallel_for(batch, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i)
        masked_mean_u8_f32__ref(in + i * s * h, mask.data() + i * s, s, h, zero_point_, scale_, out + i * h);
    });
  }

 private:
  std::string name_;
  double scale_;
  int32_t zero_point_;
};

}  // namespace

std::unique_ptr<Op> make_masked_mean(const OpContext& ctx) { return std::make_unique<MaskedMean>(ctx); }

}  // namespace intinfer
