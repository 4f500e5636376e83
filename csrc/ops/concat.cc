#include <algorithm>
#include <cstring>

#include "../kernels/ref/kernels.h"
#include "ops.h"

namespace intinfer {
namespace {

class Concat : public Op {
 public:
  explicit Concat(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(1, 1u << 16, 1);
    const TensorDesc& y = ctx.output(0);
    ctx.expect_quantized_u8(y, "output");
    axis_ = ctx.attr_int("axis");
    if (axis_ < -8 || axis_ > 7) ctx.fail("axis ", axis_, " is out of range");
    for (size_t i = 0; i < ctx.desc().inputs.size(); ++i) {
      const TensorDesc& x = ctx.input(i);
      ctx.expect_quantized_u8(x, "input");
      Part part;
      part.copy = x.scales == y.scales && x.zero_points == y.zero_points;
      part.zero_point = x.zero_points[0];
      part.multiplier = ctx.multiplier(static_cast<double>(x.scales[0]) / y.scales[0], "input");
      parts_.push_back(part);
    }
    out_.zero_point = y.zero_points[0];
  }

  // Dimensions before the axis broadcast (an input of size 1 there is repeated: a [1, 1, C]
  // class token before [B, N, C] patches); those after it must be equal.
  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const size_t rank = in[0].size();
    const int64_t axis = axis_ < 0 ? axis_ + static_cast<int64_t>(rank) : axis_;
    if (axis < 0 || axis >= static_cast<int64_t>(rank))
      shape_error(name_, "axis " + std::to_string(axis_) + " is out of range for rank " + std::to_string(rank));
    Shape y = in[0];
    y[axis] = 0;
    for (const Shape& s : in)
      for (size_t d = 0; d < static_cast<size_t>(axis) && s.size() == rank; ++d) y[d] = std::max(y[d], s[d]);
    for (const Shape& s : in) {
      for (size_t d = 0; d < rank; ++d) {
        const bool fits = static_cast<int64_t>(d) < axis ? s[d] == y[d] || s[d] == 1
                                                         : static_cast<int64_t>(d) == axis || s[d] == in[0][d];
        if (s.size() != rank || !fits)
          shape_error(name_, "cannot concatenate " + shape_str(s) + " with " + shape_str(in[0]) + " on axis " +
                                 std::to_string(axis));
      }
      y[axis] += s[axis];
    }
    return {y};
  }

  void run(const ExecContext& ctx) const override {
    const Shape& y = *ctx.output_shapes[0];
    const size_t rank = y.size();
    const size_t axis = static_cast<size_t>(axis_ < 0 ? axis_ + static_cast<int64_t>(rank) : axis_);
    size_t outer = 1, inner = 1;
    for (size_t d = 0; d < axis; ++d) outer *= y[d];
    for (size_t d = axis + 1; d < rank; ++d) inner *= y[d];
    const size_t row = y[axis] * inner;
    uint8_t* out = ctx.out<uint8_t>(0);
    size_t offset = 0;
    for (size_t i = 0; i < parts_.size(); ++i) {
      const Shape& s = *ctx.input_shapes[i];
      const size_t n = s[axis] * inner;
      const uint8_t* x = ctx.in<uint8_t>(i);
      for (size_t o = 0; o < outer; ++o) {
        const uint8_t* src = x + source_block(s, y, axis, o) * n;
        if (parts_[i].copy)
          std::memcpy(out + o * row + offset, src, n);
        else
          requantize_u8__ref(src, n, parts_[i].zero_point, parts_[i].multiplier, out_, out + o * row + offset);
      }
      offset += n;
    }
  }

 private:
  // The block of input shape `s` that output block `o` (a flat index over y's dimensions before
  // the axis) reads: o itself, unless s broadcasts (size 1) in one of those dimensions.
  static size_t source_block(const Shape& s, const Shape& y, size_t axis, size_t o) {
    size_t index = 0, stride = 1;
    for (size_t d = axis; d-- > 0;) {
      const size_t yd = static_cast<size_t>(y[d]), od = o % yd;
      o /= yd;
      if (s[d] != 1) index += od * stride;
      stride *= static_cast<size_t>(s[d]);
    }
    return index;
  }

  struct Part {
    bool copy;
    int32_t zero_point;
    QuantizedMultiplier multiplier;
  };
  std::string name_;
  int64_t axis_;
  std::vector<Part> parts_;
  OutputStage out_;
};

}  // namespace

std::unique_ptr<Op> make_concat(const OpContext& ctx) { return std::make_unique<Concat>(ctx); }

}  // namespace intinfer
