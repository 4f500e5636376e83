#include "../kernels/ref/kernels.h"
#include "ops.h"

namespace intinfer {
namespace {

class Transpose : public Op {
 public:
  explicit Transpose(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(1, 1, 1);
    const TensorDesc &x = ctx.input(0), &y = ctx.output(0);
    ctx.expect_same_quantization(x, y);
    perm_ = ctx.attr_int_list("perm");
    if (perm_.empty() || perm_.size() > 8) ctx.fail("'perm' must list 1 to 8 axes");
    std::vector<bool> seen(perm_.size(), false);
    for (int64_t p : perm_) {
      if (p < 0 || p >= static_cast<int64_t>(perm_.size()) || seen[p])
        ctx.fail("'perm' ", shape_str(perm_), " is not a permutation");
      seen[p] = true;
    }
    elem_size_ = dtype_size(x.dtype);
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    if (in[0].size() != perm_.size())
      shape_error(name_, "input " + shape_str(in[0]) + " has rank " + std::to_string(in[0].size()) + ", 'perm' has " +
                             std::to_string(perm_.size()));
    Shape y(perm_.size());
    for (size_t i = 0; i < perm_.size(); ++i) y[i] = in[0][perm_[i]];
    return {y};
  }

  void run(const ExecContext& ctx) const override {
    const Shape& x = *ctx.input_shapes[0];
    transpose__ref(ctx.in<uint8_t>(0), ctx.out<uint8_t>(0), elem_size_, static_cast<int>(x.size()), x.data(),
                   perm_.data());
  }

 private:
  std::string name_;
  std::vector<int64_t> perm_;
  size_t elem_size_;
};

}  // namespace

std::unique_ptr<Op> make_transpose(const OpContext& ctx) { return std::make_unique<Transpose>(ctx); }

}  // namespace intinfer
