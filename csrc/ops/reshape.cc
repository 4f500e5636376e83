#include <cstring>

#include "ops.h"

namespace intinfer {
namespace {

class Reshape : public Op {
 public:
  explicit Reshape(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(1, 1, 1);
    const TensorDesc &x = ctx.input(0), &y = ctx.output(0);
    ctx.expect_same_quantization(x, y);
    shape_ = ctx.attr_int_list("shape");
    if (shape_.size() > 8) ctx.fail("target rank ", shape_.size(), " is above 8");
    int inferred = 0;
    for (int64_t d : shape_) {
      if (d < -1) ctx.fail("target shape ", shape_str(shape_), " has a negative dimension");
      inferred += d == -1;
    }
    if (inferred > 1) ctx.fail("target shape ", shape_str(shape_), " has more than one -1");
    elem_size_ = dtype_size(x.dtype);
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const Shape& x = in[0];
    int64_t total = 1, known = 1;
    for (int64_t d : x) total *= d;
    Shape y = shape_;
    int infer_at = -1;
    auto refuse = [&] { shape_error(name_, "cannot reshape " + shape_str(x) + " to " + shape_str(shape_)); };
    for (size_t i = 0; i < y.size(); ++i) {
      if (y[i] == 0) {
        if (i >= x.size()) shape_error(name_, "target " + shape_str(shape_) + " copies a dimension the input " + shape_str(x) + " lacks");
        y[i] = x[i];
      }
      if (y[i] == -1) {
        infer_at = static_cast<int>(i);
      } else {
        // The input holds `total` elements (bounded by the planner), so a larger product is
        // refused before it could overflow.
        if (y[i] < 1 || known > total / y[i]) refuse();
        known *= y[i];
      }
    }
    if (infer_at >= 0) {
      if (total % known != 0) refuse();
      y[infer_at] = total / known;
    } else if (known != total) {
      refuse();
    }
    return {y};
  }

  void run(const ExecContext& ctx) const override {
    size_t n = elem_size_;
    for (int64_t d : *ctx.input_shapes[0]) n *= static_cast<size_t>(d);
    std::memcpy(ctx.outputs[0], ctx.inputs[0], n);
  }

 private:
  std::string name_;
  Shape shape_;
  size_t elem_size_;
};

}  // namespace

std::unique_ptr<Op> make_reshape(const OpContext& ctx) { return std::make_unique<Reshape>(ctx); }

}  // namespace intinfer
