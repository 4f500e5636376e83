// The depthwise-convolution tester: random NHWC input, int8 weights [channels][taps] packed with
// the row's TileLayout, a window with stride, dilation and asymmetric padding (padded taps read
// the zero row), output rows [row_begin, row_end) compared with conv2d_u8s8__ref.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <string>

#include "kernels/ref/kernels.h"
#include "kernels/tables.h"
#include "tester.h"

namespace intinfer {
namespace test {

class DwconvTester {
 public:
  DwconvTester& channels(int v) { channels_ = v; return *this; }
  DwconvTester& batch(int v) { batch_ = v; return *this; }
  DwconvTester& input(int h, int w) { in_h_ = h; in_w_ = w; return *this; }
  DwconvTester& kernel(int h, int w) { kernel_h_ = h; kernel_w_ = w; return *this; }
  DwconvTester& stride(int h, int w) { stride_h_ = h; stride_w_ = w; return *this; }
  DwconvTester& dilation(int h, int w) { dilation_h_ = h; dilation_w_ = w; return *this; }
  DwconvTester& pads(int top, int left, int bottom, int right) {
    pads_[0] = top, pads_[1] = left, pads_[2] = bottom, pads_[3] = right;
    return *this;
  }
  DwconvTester& input_zero_point(int32_t v) { input_zero_point_ = v; return *this; }
  DwconvTester& output_zero_point(int32_t v) { output_zero_point_ = v; return *this; }
  DwconvTester& act(int32_t lo, int32_t hi) { act_min_ = lo; act_max_ = hi; return *this; }
  // Output rows (batch * out_h + oy) [begin, end); end past the last = all.
  DwconvTester& rows(size_t begin, size_t end) { row_begin_ = begin; row_end_ = end; return *this; }
  // Every input `input` (255: the accumulator's extreme; 0: x - 128 = -128, the extreme of the
  // kernels that shift inputs to int8) and every weight +127 (or -127).
  DwconvTester& extreme(int sign, uint8_t input = 255) {
    extreme_ = sign;
    extreme_input_ = input;
    return *this;
  }
  // Multiplier shifts drawn from [lo, hi] (positive: left shifts); default: [-10 - log2(taps) / 2, 2].
  DwconvTester& shifts(int lo, int hi) {
    shift_lo_ = lo, shift_hi_ = hi, shifts_set_ = true;
    return *this;
  }
  DwconvTester& seed(uint64_t v) { seed_ = v; return *this; }

  int out_h() const { return (in_h_ + pads_[0] + pads_[2] - dilation_h_ * (kernel_h_ - 1) - 1) / stride_h_ + 1; }
  int out_w() const { return (in_w_ + pads_[1] + pads_[3] - dilation_w_ * (kernel_w_ - 1) - 1) / stride_w_ + 1; }

  bool Test(const DwconvRow& row) const {
    Rng rng(seed_);
    const size_t c = static_cast<size_t>(channels_), taps = static_cast<size_t>(kernel_h_) * kernel_w_;
    ConvParams p{};
    p.batch = batch_, p.in_h = in_h_, p.in_w = in_w_, p.in_c = channels_;
    p.out_h = out_h(), p.out_w = out_w(), p.out_c = channels_;
    p.kernel_h = kernel_h_, p.kernel_w = kernel_w_, p.stride_h = stride_h_, p.stride_w = stride_w_;
    p.pad_top = pads_[0], p.pad_left = pads_[1], p.dilation_h = dilation_h_, p.dilation_w = dilation_w_;
    p.groups = channels_;
    p.input_zero_point = extreme_ ? extreme_input_ : input_zero_point_;
    p.out.zero_point = output_zero_point_, p.out.act_min = act_min_, p.out.act_max = act_max_;

    std::vector<uint8_t> x(static_cast<size_t>(batch_) * in_h_ * in_w_ * c, extreme_input_);
    if (!extreme_) rng.fill_u8(x);
    std::vector<int8_t> w(c * taps);
    for (int8_t& v : w) v = static_cast<int8_t>(extreme_ ? extreme_ * 127 : rng.uniform(-127, 127));
    const int64_t bound = int64_t{INT32_MAX} - max_accumulator(kWeightsS8, taps);
    std::vector<int32_t> bias(c);
    for (int32_t& b : bias) b = static_cast<int32_t>(std::clamp<int64_t>(rng.uniform(-(1 << 20), 1 << 20), -bound, bound));
    const int depth_bits = static_cast<int>(std::log2(static_cast<double>(taps)));
    std::vector<QuantizedMultiplier> multipliers;
    const int lo = shifts_set_ ? shift_lo_ : -10 - depth_bits / 2, hi = shifts_set_ ? shift_hi_ : 2;
    for (size_t i = 0; i < c; ++i) multipliers.push_back(rng.multiplier(lo, hi));
    // Left shifts asked for: the first channel's multiplier is a real one (a zero multiplier has
    // no shift), so that the kernels' left-shift instance runs even with one channel.
    if (lo > 0 && multipliers[0].multiplier == 0) multipliers[0] = {1 << 30, lo};
    p.multipliers = multipliers.data();

    const PackedWeights packed(row.tile, w.data(), kWeightsS8, c, taps, bias.data(), multipliers, {});
    const std::vector<uint8_t> zero_row(c, static_cast<uint8_t>(p.input_zero_point));
    const size_t rows = static_cast<size_t>(batch_) * p.out_h;
    const size_t end = std::min(row_end_, rows), begin = std::min(row_begin_, end);
    const size_t row_bytes = static_cast<size_t>(p.out_w) * c;
    // 64 sentinel bytes past the output catch a store beyond the last row's last channel.
    std::vector<uint8_t> got(rows * row_bytes + 64, 0xA5), want(got);
    row.run(packed.view(), p, x.data(), zero_row.data(), got.data(), begin, end);
    conv2d_u8s8__ref(p, x.data(), w.data(), bias.data(), want.data(), begin, end);
    std::string why;
    if (same(got, want, row_bytes, &why)) return true;
    std::printf("  %s: %s: %s (row, ox * channels + c)\n", row.name, describe().c_str(), why.c_str());
    return false;
  }

  std::string describe() const {
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "channels=%d batch=%d input=%dx%d kernel=%dx%d stride=%dx%d dilation=%dx%d pads=[%d, %d, %d, %d] "
                  "z_in=%d z_out=%d act=[%d, %d] rows=[%zu, %zu) extreme=%d input=%d shifts=[%d, %d]%s seed=%llu",
                  channels_, batch_, in_h_, in_w_, kernel_h_, kernel_w_, stride_h_, stride_w_, dilation_h_, dilation_w_,
                  pads_[0], pads_[1], pads_[2], pads_[3], input_zero_point_, output_zero_point_, act_min_, act_max_,
                  row_begin_, row_end_, extreme_, extreme_input_, shift_lo_, shift_hi_, shifts_set_ ? "" : " (default)",
                  static_cast<unsigned long long>(seed_));
    return buf;
  }

 private:
  int channels_ = 1, batch_ = 1, in_h_ = 5, in_w_ = 5, kernel_h_ = 3, kernel_w_ = 3;
  int stride_h_ = 1, stride_w_ = 1, dilation_h_ = 1, dilation_w_ = 1;
  int pads_[4] = {1, 1, 1, 1};
  int32_t input_zero_point_ = 0, output_zero_point_ = 0, act_min_ = 0, act_max_ = 255;
  size_t row_begin_ = 0, row_end_ = SIZE_MAX;
  int extreme_ = 0;
  uint8_t extreme_input_ = 255;
  int shift_lo_ = 0, shift_hi_ = 0;
  bool shifts_set_ = false;
  uint64_t seed_ = 1;
};

}  // namespace test
}  // namespace intinfer
