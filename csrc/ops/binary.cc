// Binary elementwise ops with numpy broadcasting: ADD and MUL on uint8, and ADD into a wide
// (int32, 16-bit range) output for transformers' residual stream.
#include <algorithm>

#include "../kernels/ref/kernels.h"
#include "broadcast.h"
#include "../kernels/tables.h"
#include "ops.h"

namespace intinfer {
namespace {

// Calls row(a_offset, a_step, b_offset, b_step, y_offset, n) over y as for_each_broadcast_row
// does; operands of the output's shape (no broadcasting) are one row, split between threads.
template <typename Row>
void for_each_row_split(const ExecContext& ctx, Row&& row) {
  const Shape &a = *ctx.input_shapes[0], &b = *ctx.input_shapes[1], &y = *ctx.output_shapes[0];
  if (a == y && b == y) {
    ctx.pool->parallel_for(numel(y), [&](size_t begin, size_t end) { row(begin, 1, begin, 1, begin, end - begin); });
    return;
  }
  for_each_broadcast_row(a, b, y, row);
}

template <typename Params>
class Binary : public Op {
 public:
  using Kernel = void (*)(const Params&, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t*, size_t);
  Binary(const OpContext& ctx, const Params& p, Kernel kernel) : name_(ctx.desc().name), p_(p), kernel_(kernel) {}

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    return {broadcast_shapes(in[0], in[1], name_)};
  }

  void run(const ExecContext& ctx) const override {
    const uint8_t *a = ctx.in<uint8_t>(0), *b = ctx.in<uint8_t>(1);
    uint8_t* y = ctx.out<uint8_t>(0);
    for_each_row_split(ctx, [&](size_t ao, size_t as, size_t bo, size_t bs, size_t yo, size_t n) {
      kernel_(p_, a + ao, as, b + bo, bs, y + yo, n);
    });
  }

 private:
  std::string name_;
  Params p_;
  Kernel kernel_;
};

// TFLite's ADD scheme, shared by the uint8 and the wide ADD: both operands moved to the scale
// 2 * max(s_a, s_b) with Params::kLeftShift bits of headroom, then to the output's.
template <typename Params>
void set_add_scales(const OpContext& ctx, Params* p) {
  const TensorDesc &a = ctx.input(0), &b = ctx.input(1), &y = ctx.output(0);
  const double sa = a.scales[0], sb = b.scales[0], sy = y.scales[0];
  const double twice_max = 2 * std::max(sa, sb);
  p->a_zero_point = a.zero_points[0];
  p->b_zero_point = b.zero_points[0];
  p->a_multiplier = ctx.multiplier(sa / twice_max, "input");
  p->b_multiplier = ctx.multiplier(sb / twice_max, "input");
  p->out_multiplier = ctx.multiplier(twice_max / ((1 << Params::kLeftShift) * sy), "output");
}

// ADD into a wide output: operands uint8 (with zero points) or wide, read in place.
class AddWide : public Op {
 public:
  AddWide(const OpContext& ctx, const AddWideParams& p)
      : name_(ctx.desc().name), p_(p), kernel_(select(elementwise_table(), ctx.features()).add_wide) {}

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    return {broadcast_shapes(in[0], in[1], name_)};
  }

  void run(const ExecContext& ctx) const override {
    const size_t a_size = p_.a_wide ? 4 : 1, b_size = p_.b_wide ? 4 : 1;
    const uint8_t *a = ctx.in<uint8_t>(0), *b = ctx.in<uint8_t>(1);
    int32_t* y = ctx.out<int32_t>(0);
    for_each_row_split(ctx, [&](size_t ao, size_t as, size_t bo, size_t bs, size_t yo, size_t n) {
      kernel_(p_, a + ao * a_size, as, b + bo * b_size, bs, y + yo, n);
    });
  }

 private:
  std::string name_;
  AddWideParams p_;
  decltype(ElementwiseRow::add_wide) kernel_;
};

std::unique_ptr<Op> make_add_wide(const OpContext& ctx) {
  ctx.expect_io(2, 2, 1);
  const TensorDesc &a = ctx.input(0), &b = ctx.input(1), &y = ctx.output(0);
  for (const TensorDesc* t : {&a, &b}) {
    if (OpContext::is_wide(*t))
      ctx.expect_wide(*t, "input");
    else
      ctx.expect_quantized_u8(*t, "input");
  }
  ctx.expect_wide(y, "output");
  AddWideParams p;
  set_add_scales(ctx, &p);
  p.a_wide = OpContext::is_wide(a);
  p.b_wide = OpContext::is_wide(b);
  return std::make_unique<AddWide>(ctx, p);
}

void expect_binary(const OpContext& ctx) {
  ctx.expect_io(2, 2, 1);
  ctx.expect_quantized_u8(ctx.input(0), "input");
  ctx.expect_quantized_u8(ctx.input(1), "input");
  ctx.expect_quantized_u8(ctx.output(0), "output");
}

}  // namespace

std::unique_ptr<Op> make_add(const OpContext& ctx) {
  if (ctx.desc().outputs.size() == 1 && OpContext::is_wide(ctx.output(0))) return make_add_wide(ctx);
  expect_binary(ctx);
  AddParams p;
  set_add_scales(ctx, &p);
  p.out = ctx.output_stage();
  return std::make_unique<Binary<AddParams>>(ctx, p, select(elementwise_table(), ctx.features()).add);
}

std::unique_ptr<Op> make_mul(const OpContext& ctx) {
  expect_binary(ctx);
  const TensorDesc &a = ctx.input(0), &b = ctx.input(1), &y = ctx.output(0);
  MulParams p;
  p.a_zero_point = a.zero_points[0];
  p.b_zero_point = b.zero_points[0];
  p.multiplier = ctx.multiplier(static_cast<double>(a.scales[0]) * b.scales[0] / y.scales[0], "output");
  p.out = ctx.output_stage();
  return std::make_unique<Binary<MulParams>>(ctx, p, select(elementwise_table(), ctx.features()).mul);
}

}  // namespace intinfer
