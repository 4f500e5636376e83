#include <algorithm>
#include <cstring>

#include "ops.h"

namespace intinfer {
namespace {

// Keeps indices [start, min(end, size)) of one axis: a BERT pooler's first token, a ViT's class
// token. `end` past the axis' size keeps the rest, so one file serves every sequence length.
class Slice : public Op {
 public:
  explicit Slice(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(1, 1, 1);
    const TensorDesc &x = ctx.input(0), &y = ctx.output(0);
    ctx.expect_same_quantization(x, y);
    axis_ = ctx.attr_int("axis");
    start_ = ctx.attr_int("start");
    end_ = ctx.attr_int("end");
    if (axis_ < 0 || axis_ >= 8) ctx.fail("'axis' ", axis_, " is outside [0, 8)");
    if (start_ < 0) ctx.fail("'start' ", start_, " is negative");
    if (end_ <= start_) ctx.fail("'end' ", end_, " is not above 'start' ", start_);
    elem_size_ = dtype_size(x.dtype);
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const Shape& x = in[0];
    if (static_cast<int64_t>(x.size()) <= axis_)
      shape_error(name_, "input " + shape_str(x) + " has no axis " + std::to_string(axis_));
    if (x[axis_] <= start_)
      shape_error(name_, "input " + shape_str(x) + " has " + std::to_string(x[axis_]) + " entries on axis " +
                             std::to_string(axis_) + ", the slice starts at " + std::to_string(start_));
    Shape y = x;
    y[axis_] = std::min(end_, x[axis_]) - start_;
    return {y};
  }

  void run(const ExecContext& ctx) const override {
    const Shape &x = *ctx.input_shapes[0], &y = *ctx.output_shapes[0];
    size_t outer = 1, inner = elem_size_;
    for (int64_t i = 0; i < axis_; ++i) outer *= static_cast<size_t>(x[i]);
    for (size_t i = static_cast<size_t>(axis_) + 1; i < x.size(); ++i) inner *= static_cast<size_t>(x[i]);
    const size_t in_row = static_cast<size_t>(x[axis_]) * inner, out_row = static_cast<size_t>(y[axis_]) * inner;
    const uint8_t* src = ctx.in<uint8_t>(0) + static_cast<size_t>(start_) * inner;
    uint8_t* dst = ctx.out<uint8_t>(0);
    for (size_t o = 0; o < outer; ++o) std::memcpy(dst + o * out_row, src + o * in_row, out_row);
  }

 private:
  std::string name_;
  int64_t axis_, start_, end_;
  size_t elem_size_;
};

}  // namespace

std::unique_ptr<Op> make_slice(const OpContext& ctx) { return std::make_unique<Slice>(ctx); }

}  // namespace intinfer
