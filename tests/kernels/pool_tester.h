// The pooling tester: average and max pooling over NHWC input with windows, strides and
// padding (pads smaller than the window, as ops/pool.cc requires), the average's multipliers
// built as ops/pool.cc builds them (one per window count, or one with count_include_pad; the
// global pool is a window over the whole input), output rows [row_begin, row_end) against the
// reference.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>

#include "kernels/ref/kernels.h"
#include "kernels/tables.h"
#include "tester.h"

namespace intinfer {
namespace test {

class PoolTester {
 public:
  PoolTester& channels(int v) { channels_ = v; return *this; }
  PoolTester& batch(int v) { batch_ = v; return *this; }
  PoolTester& input(int h, int w) { in_h_ = h; in_w_ = w; return *this; }
  PoolTester& kernel(int h, int w) { kernel_h_ = h; kernel_w_ = w; return *this; }
  PoolTester& stride(int h, int w) { stride_h_ = h; stride_w_ = w; return *this; }
  PoolTester& pads(int top, int left, int bottom, int right) {
    pads_[0] = top, pads_[1] = left, pads_[2] = bottom, pads_[3] = right;
    return *this;
  }
  PoolTester& count_include_pad(bool v) { count_include_pad_ = v; return *this; }
  // The window is the whole input (GLOBAL_AVERAGE_POOL).
  PoolTester& global(bool v) { global_ = v; return *this; }
  PoolTester& act(int32_t lo, int32_t hi) { act_min_ = lo; act_max_ = hi; return *this; }
  PoolTester& rows(size_t begin, size_t end) { row_begin_ = begin; row_end_ = end; return *this; }
  PoolTester& seed(uint64_t v) { seed_ = v; return *this; }

  bool TestAvg(const PoolRow& row) const { return Test(row, true); }
  bool TestMax(const PoolRow& row) const { return Test(row, false); }

 private:
  bool Test(const PoolRow& row, bool average) const {
    Rng rng(seed_);
    PoolParams p{};
    p.batch = batch_, p.in_h = in_h_, p.in_w = in_w_, p.channels = channels_;
    p.kernel_h = global_ ? in_h_ : kernel_h_, p.kernel_w = global_ ? in_w_ : kernel_w_;
    p.stride_h = global_ ? 1 : stride_h_, p.stride_w = global_ ? 1 : stride_w_;
    const int pads[4] = {global_ ? 0 : pads_[0], global_ ? 0 : pads_[1], global_ ? 0 : pads_[2], global_ ? 0 : pads_[3]};
    p.pad_top = pads[0], p.pad_left = pads[1];
    p.out_h = (in_h_ + pads[0] + pads[2] - p.kernel_h) / p.stride_h + 1;
    p.out_w = (in_w_ + pads[1] + pads[3] - p.kernel_w) / p.stride_w + 1;
    p.count_include_pad = global_ || count_include_pad_;
    p.input_zero_point = rng.uniform(0, 255);
    p.out.zero_point = rng.uniform(0, 255), p.out.act_min = act_min_, p.out.act_max = act_max_;
    const double s_in = rng.real(0.005, 0.1), s_out = rng.real(0.005, 0.1);
    const int window = p.kernel_h * p.kernel_w;
    std::vector<QuantizedMultiplier> multipliers;
    for (int count = p.count_include_pad ? window : 1; count <= window; ++count)
      multipliers.push_back(Rng::of(s_in / (s_out * count)));
    p.multipliers = multipliers.data();
    std::vector<const uint8_t*> scratch(static_cast<size_t>(window));
    p.window = scratch.data();

    std::vector<uint8_t> x(static_cast<size_t>(batch_) * in_h_ * in_w_ * channels_);
    rng.fill_u8(x);
    const size_t rows = static_cast<size_t>(batch_) * p.out_h, row_bytes = static_cast<size_t>(p.out_w) * channels_;
    const size_t end = std::min(row_end_, rows), begin = std::min(row_begin_, end);
    std::vector<uint8_t> got(rows * row_bytes, 0xA5), want(got);
    (average ? row.avg : row.max)(p, x.data(), got.data(), begin, end);
    (average ? avg_pool_u8__ref : max_pool_u8__ref)(p, x.data(), want.data(), begin, end);
    std::string why;
    if (same(got, want, row_bytes, &why)) return true;
    std::printf("  %s %s: channels=%d batch=%d input=%dx%d kernel=%dx%d stride=%dx%d pads=[%d, %d, %d, %d]%s%s "
                "act=[%d, %d] rows=[%zu, %zu) seed=%llu: %s (row, ox * channels + c)\n",
                row.name, average ? "avg" : "max", channels_, batch_, in_h_, in_w_, p.kernel_h, p.kernel_w, p.stride_h,
                p.stride_w, pads[0], pads[1], pads[2], pads[3], global_ ? " global" : "",
                count_include_pad_ ? " count_include_pad" : "", act_min_, act_max_, row_begin_, row_end_,
                static_cast<unsigned long long>(seed_), why.c_str());
    return false;
  }

  int channels_ = 1, batch_ = 1, in_h_ = 5, in_w_ = 5, kernel_h_ = 3, kernel_w_ = 3, stride_h_ = 1, stride_w_ = 1;
  int pads_[4] = {0, 0, 0, 0};
  bool count_include_pad_ = true, global_ = false;
  int32_t act_min_ = 0, act_max_ = 255;
  size_t row_begin_ = 0, row_end_ = SIZE_MAX;
  uint64_t seed_ = 1;
};

}  // namespace test
}  // namespace intinfer
