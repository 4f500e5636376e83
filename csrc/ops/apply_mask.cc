// APPLY_MASK: x [B, S, ...] uint8 where a [B, S] mask is nonzero, the input's zero point (the
// real 0) where it is 0. A convolution over a sequence reads its neighbours: zeroing the padded
// tokens first keeps them out of the real ones, whatever earlier layers wrote there.
#include <cstring>

#include "mask.h"
#include "ops.h"

namespace intinfer {
namespace {

class ApplyMask : public Op {
 public:
  explicit ApplyMask(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(2, 2, 1);
    const TensorDesc& x = ctx.input(0);
    ctx.expect_quantized_u8(x, "input");
    expect_mask(ctx, ctx.input(1));
    ctx.expect_same_quantization(x, ctx.output(0));
    zero_point_ = static_cast<uint8_t>(x.zero_points[0]);
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const Shape& x = in[0];
    if (x.size() < 2) shape_error(name_, "input must be [batch, sequence, ...], got " + shape_str(x));
    expect_mask_shape(name_, in[1], x[0], x[1]);
    return {x};
  }

  void run(const ExecContext& ctx) const override {
    const Shape& x = *ctx.input_shapes[0];
    const size_t tokens = static_cast<size_t>(x[0]) * static_cast<size_t>(x[1]);
    const size_t row = tokens ? static_cast<size_t>(numel(x)) / tokens : 0;
    const int32_t* mask = static_cast<const int32_t*>(ctx.inputs[1]);
    const uint8_t* in = ctx.in<uint8_t>(0);
    uint8_t* out = ctx.out<uint8_t>(0);
    for (size_t t = 0; t < tokens; ++t) {
      if (mask[t] != 0)
        std::memcpy(out + t * row, in + t * row, row);
      else
        std::memset(out + t * row, zero_point_, row);
    }
  }

 private:
  std::string name_;
  uint8_t zero_point_;
};

}  // namespace

std::unique_ptr<Op> make_apply_mask(const OpContext& ctx) { return std::make_unique<ApplyMask>(ctx); }

}  // namespace intinfer
