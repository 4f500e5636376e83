#include "../kernels/tables.h"
#include "ops.h"

namespace intinfer {
namespace {

enum class PoolKind { kAverage, kMax, kGlobalAverage };

class Pool : public Op {
 public:
  Pool(const OpContext& ctx, PoolKind kind)
      : name_(ctx.desc().name), kind_(kind), kernels_(select(pool_table(), ctx.features())) {
    ctx.expect_io(1, 1, 1);
    const TensorDesc &x = ctx.input(0), &y = ctx.output(0);
    ctx.expect_quantized_u8(x, "input");
    ctx.expect_quantized_u8(y, "output");
    p_ = PoolParams{};
    p_.input_zero_point = x.zero_points[0];
    p_.out = ctx.output_stage();
    s_in_ = x.scales[0];
    s_out_ = y.scales[0];
    if (kind == PoolKind::kGlobalAverage) {
      // Checked once here: the per-call multiplier s_in / (s_out * H * W) is only smaller.
      ctx.multiplier(s_in_ / s_out_, "average");
      return;
    }
    const auto kernel = ctx.attr_ints("kernel", 2, 1, 1 << 12);
    // Bounds the table of per-count multipliers (and the work per output).
    if (kernel[0] * kernel[1] > (1 << 16)) ctx.fail("pooling window ", kernel[0], "x", kernel[1], " is above 65536 positions");
    const auto strides = ctx.attr_ints("strides", 2, 1, 1 << 16);
    const auto pads = ctx.attr_ints("pads", 4, 0, 1 << 12);
    // A pad as large as the kernel would leave windows with nothing inside the input.
    if (pads[0] >= kernel[0] || pads[2] >= kernel[0] || pads[1] >= kernel[1] || pads[3] >= kernel[1])
      ctx.fail("padding must be smaller than the kernel");
    p_.kernel_h = static_cast<int>(kernel[0]);
    p_.kernel_w = static_cast<int>(kernel[1]);
    p_.stride_h = static_cast<int>(strides[0]);
    p_.stride_w = static_cast<int>(strides[1]);
    p_.pad_top = static_cast<int>(pads[0]);
    p_.pad_left = static_cast<int>(pads[1]);
    pad_bottom_ = pads[2];
    pad_right_ = pads[3];
    if (kind == PoolKind::kMax) {
      ctx.expect_same_quantization(x, y);
    } else {
      p_.count_include_pad = ctx.attr_int("count_include_pad") != 0;
      // Every window counts kernel_h * kernel_w positions with count_include_pad, else only those
      // inside the input: one multiplier per possible count.
      const int window = p_.kernel_h * p_.kernel_w;
      for (int n = p_.count_include_pad ? window : 1; n <= window; ++n)
        multipliers_.push_back(ctx.multiplier(s_in_ / (s_out_ * n), "average"));
    }
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const Shape& x = in[0];
    if (x.size() != 4) shape_error(name_, "input must be NHWC (rank 4), got " + shape_str(x));
    if (kind_ == PoolKind::kGlobalAverage) return {{x[0], 1, 1, x[3]}};
    if (x[1] + p_.pad_top + pad_bottom_ < p_.kernel_h || x[2] + p_.pad_left + pad_right_ < p_.kernel_w)
      shape_error(name_, "input " + shape_str(x) + " is smaller than the pooling window");
    return {{x[0], (x[1] + p_.pad_top + pad_bottom_ - p_.kernel_h) / p_.stride_h + 1,
             (x[2] + p_.pad_left + pad_right_ - p_.kernel_w) / p_.stride_w + 1, x[3]}};
  }

  // Window steps (additions or comparisons): a window of up to 65,536 positions makes a pool's
  // work that of a large conv's, so the max_macs limit (docs/runtime.md) counts them.
  uint64_t macs(const std::vector<Shape>& in, const std::vector<Shape>& out) const override {
    if (kind_ == PoolKind::kGlobalAverage) return numel(in[0]);
    return numel(out[0]) * static_cast<uint64_t>(p_.kernel_h) * static_cast<uint64_t>(p_.kernel_w);
  }

  void run(const ExecContext& ctx) const override {
    const Shape &x = *ctx.input_shapes[0], &y = *ctx.output_shapes[0];
    PoolParams p = p_;
    set_nhwc_sizes(p, x, y);
    p.channels = static_cast<int>(x[3]);
    QuantizedMultiplier global;
    if (kind_ == PoolKind::kGlobalAverage) {
      p.kernel_h = p.in_h;
      p.kernel_w = p.in_w;
      p.stride_h = p.stride_w = 1;
      p.count_include_pad = true;
      // The window is the whole input, whose size is known only now.
      quantize_multiplier(s_in_ / (s_out_ * (static_cast<double>(p.in_h) * p.in_w)), &global);
      p.multipliers = &global;
    } else {
      p.multipliers = multipliers_.data();
    }
    const uint8_t* in = ctx.in<uint8_t>(0);
    uint8_t* out = ctx.out<uint8_t>(0);
    const auto kernel = kind_ == PoolKind::kMax ? kernels_.max : kernels_.avg;
    ctx.pool->parallel_for(static_cast<size_t>(p.batch) * p.out_h, [&](size_t b, size_t e) {
      std::vector<const uint8_t*> window(static_cast<size_t>(p.kernel_h) * p.kernel_w);
      PoolParams q = p;
      q.window = window.data();
      kernel(q, in, out, b, e);
    });
  }

 private:
  std::string name_;
  PoolKind kind_;
  PoolParams p_;
  int64_t pad_bottom_ = 0, pad_right_ = 0;
  double s_in_, s_out_;
  std::vector<QuantizedMultiplier> multipliers_;
  const PoolRow& kernels_;
};

}  // namespace

std::unique_ptr<Op> make_avg_pool(const OpContext& ctx) { return std::make_unique<Pool>(ctx, PoolKind::kAverage); }
std::unique_ptr<Op> make_max_pool(const OpContext& ctx) { return std::make_unique<Pool>(ctx, PoolKind::kMax); }
std::unique_ptr<Op> make_global_avg_pool(const OpContext& ctx) {
  return std::make_unique<Pool>(ctx, PoolKind::kGlobalAverage);
}

}  // namespace intinfer
