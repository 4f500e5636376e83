#include <algorithm>
#include <cstring>

#include "../kernels/ref/kernels.h"
#include "gemm.h"
#include "op.h"
#include "ops.h"
#include "weights.h"

namespace intinfer {
namespace {

class Conv2D : public Op {
 public:
  explicit Conv2D(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(3, 3, 1);
    const TensorDesc& w = ctx.input(1);
    if (w.shape.size() != 4) ctx.fail("weights '", w.name, "' must be OHWI (rank 4), got ", shape_str(w.shape));
    weights_ = read_weights(ctx, ctx.input(0), w, ctx.input(2));
    const auto strides = ctx.attr_ints("strides", 2, 1, 1 << 16);
    const auto pads = ctx.attr_ints("pads", 4, 0, 1 << 16);
    const auto dilations = ctx.attr_ints("dilations", 2, 1, 1 << 16);
    const int64_t groups = ctx.attr_int("groups");
    if (groups < 1 || w.shape[0] % groups != 0)
      ctx.fail("groups = ", groups, " does not divide the ", w.shape[0], " output channels");
    p_ = ConvParams{};
    p_.out_c = static_cast<int>(w.shape[0]);
    p_.kernel_h = static_cast<int>(w.shape[1]);
    p_.kernel_w = static_cast<int>(w.shape[2]);
    cin_per_group_ = w.shape[3];
    p_.stride_h = static_cast<int>(strides[0]);
    p_.stride_w = static_cast<int>(strides[1]);
    p_.pad_top = static_cast<int>(pads[0]);
    p_.pad_left = static_cast<int>(pads[1]);
    pad_bottom_ = pads[2];
    pad_right_ = pads[3];
    p_.dilation_h = static_cast<int>(dilations[0]);
    p_.dilation_w = static_cast<int>(dilations[1]);
    p_.groups = static_cast<int>(groups);
    p_.input_zero_point = ctx.input(0).zero_points[0];
    p_.out = ctx.output_stage();
    p_.multipliers = weights_.multipliers.data();
    // Ungrouped convs: a GEMM over output pixels (1x1 stride-1 convs read the NHWC input as it
    // is, others through an im2col block) where the GEMM table has an optimized row, or the
    // weights are block-sparse (which only the GEMM rows read, the reference row included);
    // depthwise convs: the depthwise table's row; the reference convolution otherwise.
    const bool sparse = weights_.format.layout == WeightFormat::Layout::kBlockSparse;
    if (sparse && groups != 1)
      ctx.fail("weights '", w.name, "' are block-sparse, which the engine reads for ungrouped convs only (groups = ",
               groups, "): store this layer dense");
    if (groups == 1) {
      const GemmRow& row = select(gemm_table(), ctx.features(), weights_.format, weights_.depth);
      if (!is_reference(row) || sparse) gemm_ = make_gemm(gemm_table(), ctx.features(), weights_, p_.out, false);
      pointwise_ = p_.kernel_h == 1 && p_.kernel_w == 1 && p_.stride_h == 1 && p_.stride_w == 1 && p_.pad_top == 0 &&
                   p_.pad_left == 0 && pad_bottom_ == 0 && pad_right_ == 0;
    } else if (cin_per_group_ == 1 && groups == p_.out_c) {
      const size_t taps = static_cast<size_t>(p_.kernel_h) * p_.kernel_w;
      dwconv_ = &select(dwconv_table(), ctx.features(), weights_.format, taps);
      dwconv_weights_ = std::make_unique<PackedWeights>(dwconv_->tile, weights_.codes, weights_.format,
                                                        weights_.channels, taps, weights_.bias.data(),
                                                        weights_.multipliers, weights_.output_scales);
      zero_row_.assign(weights_.channels, static_cast<uint8_t>(p_.input_zero_point));
    }
  }

  // A rank-3 input [N, W, C] is a 1-D convolution over W (a sequence): the image [N, 1, W, C].
  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    if (in[0].size() == 3 && p_.kernel_h != 1)
      shape_error(name_, "a 1-D input " + shape_str(in[0]) + " needs a kernel of height 1, the weights have " +
                             std::to_string(p_.kernel_h));
    const Shape x = as_image(in[0]);
    if (x[3] != cin_per_group_ * p_.groups)
      shape_error(name_, "input has " + std::to_string(x[3]) + " channels, the weights expect " +
                             std::to_string(cin_per_group_ * p_.groups));
    const int64_t oh = out_size(x[1], p_.kernel_h, p_.dilation_h, p_.stride_h, p_.pad_top + pad_bottom_);
    const int64_t ow = out_size(x[2], p_.kernel_w, p_.dilation_w, p_.stride_w, p_.pad_left + pad_right_);
    if (in[0].size() == 3) return {{x[0], ow, p_.out_c}};
    return {{x[0], oh, ow, p_.out_c}};
  }

  void run(const ExecContext& ctx) const override {
    const Shape x = as_image(*ctx.input_shapes[0]);
    const Shape y = as_image(*ctx.output_shapes[0]);
    ConvParams p = p_;
    set_nhwc_sizes(p, x, y);
    p.in_c = static_cast<int>(x[3]);
    const uint8_t* in = ctx.in<uint8_t>(0);
    uint8_t* out = ctx.out<uint8_t>(0);
    if (gemm_ && pointwise_) {
      const size_t pixels = static_cast<size_t>(p.batch) * p.in_h * p.in_w;
      ctx.pool->parallel_for(pixels, [&](size_t b, size_t e) {
        gemm_->run(in + b * p.in_c, p.in_c, out + b * p.out_c, p.out_c, e - b);
      }, gemm_->row_tile());
    } else if (gemm_) {
      const size_t pixels = static_cast<size_t>(p.batch) * p.out_h * p.out_w;
      ctx.pool->parallel_for(pixels, [&](size_t b, size_t e) { im2col_gemm(p, in, out, b, e); }, gemm_->row_tile());
    } else if (dwconv_) {
      const PackedView w = dwconv_weights_->view();
      ctx.pool->parallel_for(static_cast<size_t>(p.batch) * p.out_h, [&](size_t b, size_t e) {
        dwconv_->run(w, p, in, zero_row_.data(), out, b, e);
      });
    } else {
      ctx.pool->parallel_for(static_cast<size_t>(p.batch) * p.out_h, [&](size_t b, size_t e) {
        conv2d_u8sub__ref(p, weights_.format.bits, in, weights_.codes, weights_.bias.data(), out, b, e);
      });
    }
  }

  uint64_t macs(const std::vector<Shape>&, const std::vector<Shape>& out) const override {
    return numel(out[0]) * weights_.depth;
  }

  size_t weight_bytes() const override { return weights_.bytes(); }
  size_t held_bytes() const override {
    return gemm_ ? gemm_->held_bytes() : dwconv_weights_ ? dwconv_weights_->bytes() : 0;
  }

 private:
  Shape as_image(const Shape& s) const {
    if (s.size() == 3) return {s[0], 1, s[1], s[2]};
    if (s.size() != 4) shape_error(name_, "input must be NHWC (rank 4) or [N, W, C] (rank 3), got " + shape_str(s));
    return s;
  }

  int64_t out_size(int64_t in, int64_t k, int64_t dilation, int64_t stride, int64_t pads) const {
    const int64_t span = dilation * (k - 1) + 1;
    if (in + pads < span)
      shape_error(name_, "input size " + std::to_string(in) + " (padded " + std::to_string(in + pads) +
                             ") is smaller than the kernel's span " + std::to_string(span));
    return (in + pads - span) / stride + 1;
  }

  // n bytes: two overlapping 8-byte copies where 8 <= n <= 16 (a 3x3 window row of 3 channels is
  // 9 bytes), which the compiler inlines, rather than a call to memcpy.
  static void copy_bytes(uint8_t* dst, const uint8_t* src, size_t n) {
    if (n >= 8 && n <= 16) {
      std::memcpy(dst, src, 8);
      std::memcpy(dst + n - 8, src + n - 8, 8);
    } else {
      std::memcpy(dst, src, n);
    }
  }

  // Output pixels [begin, end), in blocks: gather each pixel's window (OHWI order, padding
  // reads the input zero point, as the folded bias assumes) and multiply the block at once.
  void im2col_gemm(const ConvParams& params, const uint8_t* in, uint8_t* out, size_t begin, size_t end) const {
    // A copy: the byte stores below may alias a reference's fields, which the compiler would reload.
    const ConvParams p = params;
    constexpr size_t kBlock = 64;
    const size_t k = weights_.depth;
    std::vector<uint8_t> cols(kBlock * k);
    // The output pixel's coordinates, advanced pixel by pixel from `begin`.
    size_t batch = begin / (static_cast<size_t>(p.out_h) * p.out_w);
    int oy = static_cast<int>(begin / p.out_w % p.out_h), ox = static_cast<int>(begin % p.out_w);
    const size_t window_row = static_cast<size_t>(p.kernel_w) * p.in_c;
    const size_t tap_row = static_cast<size_t>(p.dilation_h) * p.in_w * p.in_c;
    const int span_h = (p.kernel_h - 1) * p.dilation_h;
    for (size_t b0 = begin; b0 < end; b0 += kBlock) {
      const size_t n = std::min(kBlock, end - b0);
      for (size_t i = 0; i < n; ++i) {
        uint8_t* row = cols.data() + i * k;
        const int ix0 = ox * p.stride_w - p.pad_left, iy0 = oy * p.stride_h - p.pad_top;
        // A window row inside the input is contiguous when taps are adjacent: one copy. Windows
        // wholly inside (most of them) take no bounds checks.
        const bool row_inside = p.dilation_w == 1 && ix0 >= 0 && ix0 + p.kernel_w <= p.in_w;
        if (row_inside && iy0 >= 0 && iy0 + span_h < p.in_h) {
          const uint8_t* src = in + ((batch * p.in_h + iy0) * p.in_w + ix0) * p.in_c;
          for (int ky = 0; ky < p.kernel_h; ++ky, row += window_row) copy_bytes(row, src + ky * tap_row, window_row);
        } else {
          gather_border_window(p, in, batch, iy0, ix0, row_inside, window_row, row);
        }
        if (++ox == p.out_w) {
          ox = 0;
          if (++oy == p.out_h) oy = 0, ++batch;
        }
      }
      gemm_->run(cols.data(), k, out + b0 * p.out_c, p.out_c, n);
    }
  }

  // The window from input pixel (iy0, ix0) of image `batch` into row, the zero point where it
  // leaves the input; row_inside: its rows (window_row bytes) lie inside horizontally, with
  // adjacent taps.
  static void gather_border_window(const ConvParams& p, const uint8_t* in, size_t batch, int iy0, int ix0,
                                   bool row_inside, size_t window_row, uint8_t* row) {
    for (int ky = 0; ky < p.kernel_h; ++ky) {
      const int iy = iy0 + ky * p.dilation_h;
      if (row_inside && iy >= 0 && iy < p.in_h) {
        copy_bytes(row, in + ((batch * p.in_h + iy) * p.in_w + ix0) * p.in_c, window_row);
        row += window_row;
        continue;
      }
      for (int kx = 0; kx < p.kernel_w; ++kx, row += p.in_c) {
        const int ix = ix0 + kx * p.dilation_w;
        if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w)
          std::memset(row, p.input_zero_point, p.in_c);
        else
          std::memcpy(row, in + ((batch * p.in_h + iy) * p.in_w + ix) * p.in_c, p.in_c);
      }
    }
  }

  std::string name_;
  QuantizedWeights weights_;
  std::unique_ptr<Gemm> gemm_;  // null: no optimized GEMM row
  bool pointwise_ = false;
  const DwconvRow* dwconv_ = nullptr;
  std::unique_ptr<PackedWeights> dwconv_weights_;
  std::vector<uint8_t> zero_row_;
  ConvParams p_;
  int64_t cin_per_group_;
  int64_t pad_bottom_, pad_right_;
};

}  // namespace

std::unique_ptr<Op> make_conv2d(const OpContext& ctx) { return std::make_unique<Conv2D>(ctx); }

}  // namespace intinfer
