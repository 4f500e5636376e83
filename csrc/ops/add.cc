#include <algorithm>

#include "../kernels/ref/kernels.h"
#include "broadcast.h"
#include "ops.h"

namespace intinfer {
namespace {

class Add : public Op {
 public:
  explicit Add(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(2, 2, 1);
    const TensorDesc &a = ctx.input(0), &b = ctx.input(1), &y = ctx.output(0);
    ctx.expect_quantized_u8(a, "input");
    ctx.expect_quantized_u8(b, "input");
    ctx.expect_quantized_u8(y, "output");
    const double sa = a.scales[0], sb = b.scales[0], sy = y.scales[0];
    const double twice_max = 2 * std::max(sa, sb);
    p_.a_zero_point = a.zero_points[0];
    p_.b_zero_point = b.zero_points[0];
    p_.a_multiplier = ctx.multiplier(sa / twice_max, "input");
    p_.b_multiplier = ctx.multiplier(sb / twice_max, "input");
    p_.out_multiplier = ctx.multiplier(twice_max / ((1 << AddParams::kLeftShift) * sy), "output");
    p_.out = ctx.output_stage();
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    return {broadcast_shapes(in[0], in[1], name_)};
  }

  void run(const ExecContext& ctx) const override {
    const uint8_t *a = ctx.in<uint8_t>(0), *b = ctx.in<uint8_t>(1);
    uint8_t* y = ctx.out<uint8_t>(0);
    for_each_broadcast_row(*ctx.input_shapes[0], *ctx.input_shapes[1], *ctx.output_shapes[0],
                           [&](size_t ao, size_t as, size_t bo, size_t bs, size_t yo, size_t n) {
                             add_u8__ref(p_, a + ao, as, b + bo, bs, y + yo, n);
                           });
  }

 private:
  std::string name_;
  AddParams p_;
};

}  // namespace

std::unique_ptr<Op> make_add(const OpContext& ctx) { return std::make_unique<Add>(ctx); }

}  // namespace intinfer
