// LAYER_NORM over the last axis of a uint8 or wide input into a uint8 or wide output (a residual
// stream, read by a wide ADD), integer-only (docs/quantization.md): gamma and beta are float
// constants, turned into per-channel multipliers, signs and integer biases once at load.
#include <cmath>

#include "../kernels/ref/kernels.h"
#include "../kernels/tables.h"
#include "ops.h"

namespace intinfer {
namespace {

// sum of d^2 (d = H * (x - mean), |d| <= 2 * H * |x|max) stays within uint64 up to these widths:
// 8192 for uint8 inputs, 1024 for wide ones.
constexpr int64_t kMaxWidth = 8192;
constexpr int64_t kMaxWideWidth = 1024;
// |sign * t + offset| <= 2^15 + kMaxOffset stays within int32.
constexpr double kMaxOffset = 2147483648.0 - 65536.0;

class LayerNorm : public Op {
 public:
  explicit LayerNorm(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(3, 3, 1);
    wide_ = OpContext::is_wide(ctx.input(0));
    if (wide_)
      ctx.expect_wide(ctx.input(0), "input");
    else
      ctx.expect_quantized_u8(ctx.input(0), "input");
    wide_output_ = OpContext::is_wide(ctx.output(0));
    if (wide_output_)
      ctx.expect_wide(ctx.output(0), "output");
    else
      ctx.expect_quantized_u8(ctx.output(0), "output");
    const TensorDesc &gamma = ctx.input(1), &beta = ctx.input(2);
    for (const TensorDesc* t : {&gamma, &beta}) {
      ctx.expect_dtype(*t, DType::kFloat32, t == &gamma ? "gamma" : "beta");
      ctx.expect_constant(*t, t == &gamma ? "gamma" : "beta");
    }
    if (gamma.shape.size() != 1 || beta.shape != gamma.shape || gamma.shape[0] < 1 || gamma.shape[0] > kMaxWidth)
      ctx.fail("gamma and beta must be [H] with 1 <= H <= ", kMaxWidth, ", got ", shape_str(gamma.shape), " and ",
               shape_str(beta.shape));
    const size_t h = static_cast<size_t>(gamma.shape[0]);
    if (wide_ && gamma.shape[0] > kMaxWideWidth) ctx.fail("a wide input allows H <= ", kMaxWideWidth, ", got ", h);
    const double s_out = ctx.output(0).scales[0];
    const float* g = reinterpret_cast<const float*>(gamma.data);
    const float* b = reinterpret_cast<const float*>(beta.data);
    const double root_h = std::sqrt(static_cast<double>(h));
    for (size_t c = 0; c < h; ++c) {
      if (!std::isfinite(g[c]) || !std::isfinite(b[c])) ctx.fail("gamma or beta of channel ", c, " is not finite");
      const double gamma = std::fabs(static_cast<double>(g[c]));
      // beta in units of t, so that it is rounded once with the product (half away from zero).
      const double real = gamma * root_h / (std::ldexp(1.0, LayerNormParams::kFractionBits) * s_out);
      const double offset =
          gamma == 0 ? 0.0 : std::round(std::ldexp(static_cast<double>(b[c]), LayerNormParams::kFractionBits) / (gamma * root_h));
      // A channel whose gamma is 0 or too small for beta in t's units (or for a multiplier):
      // t would move the output by less than 2^-16 of a step, so it outputs round(beta / s_out).
      const bool flat = gamma == 0 || std::fabs(offset) > kMaxOffset || real < std::ldexp(1.0, -31);
      signs_.push_back(static_cast<int8_t>(flat ? 0 : (g[c] > 0 ? 1 : -1)));
      multipliers_.push_back(ctx.multiplier(flat ? 0.0 : real, "gamma"));
      offsets_.push_back(static_cast<int32_t>(flat ? 0.0 : offset));
      const double bias = flat ? std::round(b[c] / s_out) : 0.0;
      biases_.push_back(static_cast<int32_t>(std::fmax(-(1 << 24), std::fmin(1 << 24, bias))));
    }
    const OutputStage out = wide_output_ ? OutputStage{0, -kWideMax, kWideMax} : ctx.output_stage();
    p_ = LayerNormParams{h, ctx.input(0).zero_points[0], multipliers_.data(), signs_.data(), offsets_.data(),
                         biases_.data(), out, wide_output_};
    kernel_ = &select(transformer_table(), ctx.features());
    packed_ = std::make_unique<PackedLayerNorm>(p_, kernel_->width);
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const Shape& x = in[0];
    if (x.empty() || x.back() != static_cast<int64_t>(p_.h))
      shape_error(name_, "the last axis must have the " + std::to_string(p_.h) + " channels of gamma, got " +
                             shape_str(x));
    return {x};
  }

  void run(const ExecContext& ctx) const override {
    const size_t rows = numel(*ctx.input_shapes[0]) / p_.h;
    void* y = ctx.out<void>(0);
    const LayerNormView w = packed_->view();
    ctx.pool->parallel_for(rows, [&](size_t b, size_t e) {
      if (wide_)
        kernel_->layer_norm_wide(p_, w, ctx.in<int32_t>(0), y, b, e);
      else
        kernel_->layer_norm_u8(p_, w, ctx.in<uint8_t>(0), y, b, e);
    });
  }

  size_t weight_bytes() const override { return p_.h * 2 * sizeof(float); }

 private:
  std::string name_;
  std::vector<QuantizedMultiplier> multipliers_;
  std::vector<int8_t> signs_;
  std::vector<int32_t> offsets_, biases_;
  LayerNormParams p_;
  bool wide_, wide_output_;
  const TransformerRow* kernel_;
  std::unique_ptr<PackedLayerNorm> packed_;
};

}  // namespace

std::unique_ptr<Op> make_layer_norm(const OpContext& ctx) { return std::make_unique<LayerNorm>(ctx); }

}  // namespace intinfer
