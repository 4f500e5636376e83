// FULLY_CONNECTED: uint8 or wide input (read within +-input_bound as int16 activations, on the
// GEMM rows of gemm_s16_table), uint8, float or wide output.
#include <vector>

#include "../kernels/ref/kernels.h"
#include "../kernels/tables.h"
#include "gemm.h"
#include "ops.h"

namespace intinfer {
namespace {

class FullyConnected : public Op {
 public:
  explicit FullyConnected(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(3, 3, 1);
    const TensorDesc& w = ctx.input(1);
    if (w.shape.size() != 2) ctx.fail("weights '", w.name, "' must be [N, K], got ", shape_str(w.shape));
    if (OpContext::is_wide(ctx.input(0))) {
      const int64_t bound = ctx.attr_int("input_bound");
      if (bound < 1 || bound > kWideMax) ctx.fail("input_bound ", bound, " is outside [1, ", kWideMax, "]");
      input_bound_ = static_cast<int32_t>(bound);
    } else if (ctx.desc().attrs.count("input_bound")) {
      ctx.fail("input_bound applies to a wide (int32) input; input '", ctx.input(0).name, "' is not one");
    }
    weights_ = read_weights(ctx, ctx.input(0), w, ctx.input(2), /*float_output_ok=*/true, input_bound_);
    if (weights_.output_scales.empty()) out_ = ctx.output_stage();
    if (OpContext::is_wide(ctx.output(0))) wide_scale_ = ctx.output(0).scales[0];
    elementwise_ = &select(elementwise_table(), ctx.features());
    gemm_ = make_gemm(input_bound_ > 0 ? gemm_s16_table() : gemm_table(), ctx.features(), weights_, out_,
                      /*one_row=*/true);
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    Shape y = in[0];
    if (y.empty() || static_cast<size_t>(y.back()) != weights_.depth)
      shape_error(name_, "input " + shape_str(y) + " must end in K = " + std::to_string(weights_.depth));
    y.back() = static_cast<int64_t>(weights_.channels);
    return {y};
  }

  void run(const ExecContext& ctx) const override {
    size_t rows = 1;
    for (size_t i = 0; i + 1 < ctx.input_shapes[0]->size(); ++i) rows *= static_cast<size_t>((*ctx.input_shapes[0])[i]);
    const size_t k = weights_.depth, n = weights_.channels;
    const size_t elem = gemm_->float_output() ? sizeof(float) : 1;
    auto* y = static_cast<uint8_t*>(ctx.outputs[0]);
    // A wide input: rows [b, e) narrowed to int16 within +-input_bound, the GEMM's x.
    const size_t x_elem = input_bound_ > 0 ? sizeof(int16_t) : 1;
    auto narrowed = [&](size_t b, size_t e, std::vector<int16_t>& buffer) -> const uint8_t* {
      if (input_bound_ == 0) return ctx.in<uint8_t>(0) + b * k;
      buffer.resize((e - b) * k);
      narrow_wide_s16__ref(ctx.in<int32_t>(0) + b * k, buffer.data(), buffer.size(), input_bound_);
      return reinterpret_cast<const uint8_t*>(buffer.data());
    };
    // Few rows (a batch-1 classifier): split the output channels between threads instead.
    // A wide output: the real values, written in place, become int32 steps of the output scale.
    if (rows < 4 * static_cast<size_t>(ctx.pool->num_threads()) && gemm_->column_blocks() > 1) {
      std::vector<int16_t> buffer;
      const uint8_t* x = narrowed(0, rows, buffer);
      ctx.pool->parallel_for(gemm_->column_blocks(),
                             [&](size_t b, size_t e) { gemm_->run(x, k * x_elem, y, n, rows, b, e); });
      if (wide_scale_ > 0) elementwise_->wide_from_f32(y, rows * n, wide_scale_);  // few rows: one pass
    } else {
      ctx.pool->parallel_for(rows, [&](size_t b, size_t e) {
        std::vector<int16_t> buffer;
        gemm_->run(narrowed(b, e, buffer), k * x_elem, y + b * n * elem, n, e - b);
        if (wide_scale_ > 0) elementwise_->wide_from_f32(y + b * n * elem, (e - b) * n, wide_scale_);
      }, gemm_->row_tile());
    }
  }

  uint64_t macs(const std::vector<Shape>&, const std::vector<Shape>& out) const override {
    return numel(out[0]) * weights_.depth;
  }

  size_t weight_bytes() const override { return weights_.bytes(); }
  size_t held_bytes() const override { return gemm_->held_bytes(); }

 private:
  std::string name_;
  QuantizedWeights weights_;
  OutputStage out_;
  float wide_scale_ = 0;  // > 0: the output is wide
  int32_t input_bound_ = 0;  // > 0: the input is wide, read within +-input_bound_
  const ElementwiseRow* elementwise_;  // its wide_from_f32
  std::unique_ptr<Gemm> gemm_;
};

}  // namespace

std::unique_ptr<Op> make_fully_connected(const OpContext& ctx) { return std::make_unique<FullyConnected>(ctx); }

}  // namespace intinfer
