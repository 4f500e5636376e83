// Unary elementwise ops: LUT, CLAMP, QUANTIZE, DEQUANTIZE.
#include <array>
#include <cstring>
#include <functional>
#include <memory>

#include "../kernels/ref/kernels.h"
#include "../kernels/tables.h"
#include "ops.h"

namespace intinfer {
namespace {

// A unary op whose output has the input's shape; `kernel(x, y, n)` maps one chunk.
class Unary : public Op {
 public:
  using Kernel = std::function<void(const void* x, void* y, size_t n)>;
  Unary(Kernel kernel, size_t in_size, size_t out_size) : kernel_(std::move(kernel)), in_size_(in_size), out_size_(out_size) {}

  std::vector<Shape> infer(const std::vector<Shape>& in) const override { return {in[0]}; }

  void run(const ExecContext& ctx) const override {
    const auto* x = static_cast<const uint8_t*>(ctx.inputs[0]);
    auto* y = static_cast<uint8_t*>(ctx.outputs[0]);
    ctx.pool->parallel_for(numel(*ctx.input_shapes[0]), [&](size_t b, size_t e) {
      kernel_(x + b * in_size_, y + b * out_size_, e - b);
    });
  }

 private:
  Kernel kernel_;
  size_t in_size_, out_size_;
};

}  // namespace

std::unique_ptr<Op> make_lut(const OpContext& ctx) {
  ctx.expect_io(2, 2, 1);
  ctx.expect_quantized_u8(ctx.input(0), "input");
  const TensorDesc& table = ctx.input(1);
  const bool wide = OpContext::is_wide(ctx.output(0));
  if (wide)
    ctx.expect_wide(ctx.output(0), "output");
  else
    ctx.expect_quantized_u8(ctx.output(0), "output");
  ctx.expect_dtype(table, wide ? DType::kInt32 : DType::kUInt8, "table");
  ctx.expect_constant(table, "table");
  if (table.numel() != 256) ctx.fail("table '", table.name, "' has ", table.numel(), " entries, expected 256");
  if (wide) {  // int32 entries into a wide output, on every path
    auto t = std::make_shared<std::array<int32_t, 256>>();
    std::memcpy(t->data(), table.data, sizeof(*t));
    for (int i = 0; i < 256; ++i)
      if ((*t)[i] < -kWideMax || (*t)[i] > kWideMax)
        ctx.fail("table '", table.name, "' entry ", i, " is ", (*t)[i], ", outside a wide output's +-", kWideMax);
    return std::make_unique<Unary>([t](const void* x, void* y, size_t n) {
      lut_wide__ref(t->data(), static_cast<const uint8_t*>(x), static_cast<int32_t*>(y), n);
    }, 1, sizeof(int32_t));
  }
  const uint8_t* t = table.data;
  const auto kernel = select(elementwise_table(), ctx.features()).lut;
  return std::make_unique<Unary>([t, kernel](const void* x, void* y, size_t n) {
    kernel(t, static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), n);
  }, 1, 1);
}

std::unique_ptr<Op> make_clamp(const OpContext& ctx) {
  ctx.expect_io(1, 1, 1);
  ctx.expect_quantized_u8(ctx.input(0), "input");
  ctx.expect_same_quantization(ctx.input(0), ctx.output(0));
  const OutputStage s = ctx.output_stage();
  const auto lo = static_cast<uint8_t>(s.act_min), hi = static_cast<uint8_t>(s.act_max);
  return std::make_unique<Unary>([lo, hi](const void* x, void* y, size_t n) {
    clamp_u8__ref(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), n, lo, hi);
  }, 1, 1);
}

std::unique_ptr<Op> make_quantize(const OpContext& ctx) {
  ctx.expect_io(1, 1, 1);
  ctx.expect_dtype(ctx.input(0), DType::kFloat32, "input");
  ctx.expect_quantized_u8(ctx.output(0), "output");
  const float scale = ctx.output(0).scales[0];
  const int32_t zp = ctx.output(0).zero_points[0];
  const auto kernel = select(elementwise_table(), ctx.features()).quantize;
  return std::make_unique<Unary>([scale, zp, kernel](const void* x, void* y, size_t n) {
    kernel(static_cast<const float*>(x), static_cast<uint8_t*>(y), n, scale, zp);
  }, sizeof(float), 1);
}

std::unique_ptr<Op> make_dequantize(const OpContext& ctx) {
  ctx.expect_io(1, 1, 1);
  ctx.expect_quantized_u8(ctx.input(0), "input");
  ctx.expect_dtype(ctx.output(0), DType::kFloat32, "output");
  const float scale = ctx.input(0).scales[0];
  const int32_t zp = ctx.input(0).zero_points[0];
  const auto kernel = select(elementwise_table(), ctx.features()).dequantize;
  return std::make_unique<Unary>([scale, zp, kernel](const void* x, void* y, size_t n) {
    kernel(static_cast<const uint8_t*>(x), static_cast<float*>(y), n, scale, zp);
  }, 1, sizeof(float));
}

}  // namespace intinfer
