// The transformer-op testers. LAYER_NORM: parameters built from float gamma and beta exactly as
// ops/layer_norm.cc builds them (flat channels for gamma 0 or too small included), the output
// stage packed to the row's width with PackedLayerNorm, uint8 or wide input (constant rows
// too: a variance of 0), uint8 or wide output. SOFTMAX: an exponential table as the exporter writes it, with or
// without a mask (rows with nothing attended too), a scratch of n int32. GATHER into a wide
// output: a table of int8 rows (or random bytes as rows of packed int4 / int2 codes), per-row
// multipliers with left and right shifts, ids that repeat and skip rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "kernels/pack.h"
#include "kernels/ref/kernels.h"
#include "kernels/tables.h"
#include "tester.h"

namespace intinfer {
namespace test {

class LayerNormTester {
 public:
  LayerNormTester& h(size_t v) { h_ = v; return *this; }
  LayerNormTester& rows(size_t v) { rows_ = v; return *this; }
  // Rows [begin, end) of the kernel call.
  LayerNormTester& range(size_t begin, size_t end) { begin_ = begin; end_ = end; return *this; }
  LayerNormTester& wide(bool v) { wide_ = v; return *this; }
  LayerNormTester& wide_output(bool v) { wide_output_ = v; return *this; }
  // A uint8 output's activation range narrower than [0, 255].
  LayerNormTester& clamped(bool v) { clamped_ = v; return *this; }
  // The output scale chosen so that the largest channel multiplier is v: 0.75, channels without a
  // shift (RequantShifts::kRightOrNone); 3, shifts left (kLeft). 0: a random scale.
  LayerNormTester& top_multiplier(double v) { top_multiplier_ = v; return *this; }
  LayerNormTester& seed(uint64_t v) { seed_ = v; return *this; }

  bool Test(const TransformerRow& row) const {
    Rng rng(seed_);
    std::vector<QuantizedMultiplier> multipliers;
    std::vector<int8_t> signs;
    std::vector<int32_t> offsets, biases;
    // A wide output's steps are finer: multipliers above 1 (left shifts) and clamping at +-kWideMax.
    double s_out = wide_output_ ? rng.real(0.0001, 0.01) : rng.real(0.01, 0.1);
    const double root_h = std::sqrt(static_cast<double>(h_));
    constexpr double kMaxOffset = 2147483648.0 - 65536.0;
    std::vector<float> g(h_), b(h_);
    for (size_t c = 0; c < h_; ++c) {
      const int kind = rng.uniform(0, 9);
      g[c] = kind == 0 ? 0.0f : (kind == 1 ? 1e-12f : static_cast<float>(rng.real(-2, 2)));
      b[c] = static_cast<float>(rng.real(-1, 1));
    }
    // Channel 0 not flat where the scale is chosen: the largest multiplier is then top_multiplier_.
    if (top_multiplier_ > 0 && std::fabs(g[0]) < 1e-6f) g[0] = 1.0f;
    const double top_gamma = std::fabs(static_cast<double>(*std::max_element(
        g.begin(), g.end(), [](float x, float y) { return std::fabs(x) < std::fabs(y); })));
    if (top_multiplier_ > 0 && top_gamma > 0)
      s_out = top_gamma * root_h / (std::ldexp(1.0, LayerNormParams::kFractionBits) * top_multiplier_);
    for (size_t c = 0; c < h_; ++c) {
      const double gamma = std::fabs(static_cast<double>(g[c]));
      const double real = gamma * root_h / (std::ldexp(1.0, LayerNormParams::kFractionBits) * s_out);
      const double scaled_b = std::ldexp(static_cast<double>(b[c]), LayerNormParams::kFractionBits);
      const double offset = gamma == 0 ? 0.0 : std::round(scaled_b / (gamma * root_h));
      const bool flat = gamma == 0 || std::fabs(offset) > kMaxOffset || real < std::ldexp(1.0, -31);
      signs.push_back(static_cast<int8_t>(flat ? 0 : (g[c] > 0 ? 1 : -1)));
      multipliers.push_back(Rng::of(flat ? 0.0 : real));
      offsets.push_back(static_cast<int32_t>(flat ? 0.0 : offset));
      const double bias = flat ? std::round(b[c] / s_out) : 0.0;
      biases.push_back(static_cast<int32_t>(std::fmax(-(1 << 24), std::fmin(1 << 24, bias))));
    }
    OutputStage out = wide_output_ ? OutputStage{0, -kWideMax, kWideMax} : OutputStage{rng.uniform(0, 255)};
    if (!wide_output_ && clamped_) out.act_min = rng.uniform(1, 100), out.act_max = rng.uniform(155, 254);
    const int32_t zero_point = wide_ ? 0 : rng.uniform(0, 255);
    const LayerNormParams p{h_, zero_point, multipliers.data(), signs.data(), offsets.data(), biases.data(), out,
                            wide_output_};
    const PackedLayerNorm packed(p, row.width);

    std::vector<uint8_t> x8(rows_ * h_);
    std::vector<int32_t> x32(rows_ * h_);
    for (size_t r = 0; r < rows_; ++r) {
      // Every fourth row is constant (variance 0); others spread narrow or to the full range.
      const bool flat_row = r % 4 == 3;
      const int32_t spread = rng.chance(0.5) ? 3 : (wide_ ? kWideMax : 127);
      const int32_t centre = wide_ ? rng.uniform(-kWideMax + spread, kWideMax - spread) : rng.uniform(spread, 255 - spread);
      const int32_t constant = rng.uniform(-spread, spread);
      for (size_t c = 0; c < h_; ++c) {
        const int32_t v = centre + (flat_row ? constant : rng.uniform(-spread, spread));
        x32[r * h_ + c] = v;
        x8[r * h_ + c] = static_cast<uint8_t>(wide_ ? 0 : v);
      }
    }
    const size_t end = std::min(end_, rows_), begin = std::min(begin_, end);
    std::string why;
    const bool ok = wide_output_ ? Compare<int32_t>(row, p, packed, x8, x32, begin, end, &why)
                                 : Compare<uint8_t>(row, p, packed, x8, x32, begin, end, &why);
    if (ok) return true;
    std::printf("  %s layer_norm_%s->%s%s top multiplier %g: h=%zu rows=%zu range=[%zu, %zu) seed=%llu: %s\n",
                row.name, wide_ ? "wide" : "u8", wide_output_ ? "wide" : "u8", clamped_ ? " clamped" : "",
                top_multiplier_, h_, rows_, begin_, end_,
                static_cast<unsigned long long>(seed_), why.c_str());
    return false;
  }

 private:
  // The row's output against the reference's, rows outside [begin, end) left as they were.
  template <typename Out>
  bool Compare(const TransformerRow& row, const LayerNormParams& p, const PackedLayerNorm& packed,
               const std::vector<uint8_t>& x8, const std::vector<int32_t>& x32, size_t begin, size_t end,
               std::string* why) const {
    std::vector<Out> got(rows_ * h_, static_cast<Out>(0xA5)), want(got);
    if (wide_) {
      row.layer_norm_wide(p, packed.view(), x32.data(), got.data(), begin, end);
      layer_norm_wide__ref(p, x32.data(), want.data(), begin, end);
    } else {
      row.layer_norm_u8(p, packed.view(), x8.data(), got.data(), begin, end);
      layer_norm_u8__ref(p, x8.data(), want.data(), begin, end);
    }
    return same(got, want, h_, why);
  }

  size_t h_ = 1, rows_ = 4, begin_ = 0, end_ = SIZE_MAX;
  bool wide_ = false, wide_output_ = false, clamped_ = false;
  double top_multiplier_ = 0;
  uint64_t seed_ = 1;
};

class SoftmaxTester {
 public:
  SoftmaxTester& n(size_t v) { n_ = v; return *this; }
  SoftmaxTester& rows(size_t v) { rows_ = v; return *this; }
  SoftmaxTester& masked(bool v) { masked_ = v; return *this; }
  // Every row's logits 0 but one at 255, with a scale that takes table[255] to 0: the row's
  // exponentials sum to table[0] = 2^16 exactly, the largest reciprocal of the sum (2^16).
  SoftmaxTester& peaked(bool v) { peaked_ = v; return *this; }
  SoftmaxTester& seed(uint64_t v) { seed_ = v; return *this; }

  bool Test(const TransformerRow& row) const {
    Rng rng(seed_);
    // The exporter's table: round(2^16 * exp(-d * s_in)), decreasing from 2^16.
    const double s_in = peaked_ ? rng.real(0.1, 0.5) : rng.real(0.005, 0.5);
    int32_t table[256];
    for (int d = 0; d < 256; ++d)
      table[d] = static_cast<int32_t>(std::lround(std::ldexp(std::exp(-d * s_in), SoftmaxParams::kExpBits)));
    const SoftmaxParams p{n_, table, 256};
    std::vector<uint8_t> x(rows_ * n_), mask(rows_ * n_);
    rng.fill_u8(x);
    if (peaked_) {
      std::fill(x.begin(), x.end(), uint8_t{0});
      for (size_t r = 0; r < rows_; ++r) x[r * n_ + (r * 7) % n_] = 255;
    }
    std::vector<const uint8_t*> row_mask(rows_);
    for (size_t r = 0; r < rows_; ++r) {
      // Row 1 attends to nothing (written as zeros), row 2 to everything, the others at random.
      for (size_t j = 0; j < n_; ++j) mask[r * n_ + j] = r == 1 ? 0 : (r == 2 ? 1 : static_cast<uint8_t>(rng.uniform(0, 1)));
      row_mask[r] = mask.data() + r * n_;
    }
    const uint8_t* const* m = masked_ ? row_mask.data() : nullptr;
    std::vector<int32_t> scratch(n_);
    std::vector<uint8_t> got(rows_ * n_, 0xA5), want(got);
    row.softmax(p, x.data(), m, got.data(), 0, rows_, scratch.data());
    softmax_u8__ref(p, x.data(), m, want.data(), 0, rows_);
    // The relative-bias kernel with a zero bias computes the same softmax.
    const std::vector<int32_t> zeros(n_, 0);
    const std::vector<const int32_t*> no_bias(rows_, zeros.data());
    std::vector<uint8_t> biased(rows_ * n_, 0x5A);
    softmax_biased_u8__ref(p, x.data(), m, no_bias.data(), biased.data(), 0, rows_, scratch.data());
    std::string why;
    if (!same(biased, want, n_, &why)) {
      std::printf("  softmax_biased_u8__ref, zero bias: n=%zu rows=%zu seed=%llu: %s\n", n_, rows_,
                  static_cast<unsigned long long>(seed_), why.c_str());
      return false;
    }
    if (same(got, want, n_, &why)) return true;
    std::printf("  %s softmax: n=%zu rows=%zu%s%s seed=%llu: %s\n", row.name, n_, rows_, masked_ ? " masked" : "",
                peaked_ ? " peaked" : "", static_cast<unsigned long long>(seed_), why.c_str());
    return false;
  }

 private:
  size_t n_ = 1, rows_ = 4;
  bool masked_ = false, peaked_ = false;
  uint64_t seed_ = 1;
};

class GatherTester {
 public:
  GatherTester& h(size_t v) { h_ = v; return *this; }
  GatherTester& bits(int v) { bits_ = v; return *this; }
  GatherTester& seed(uint64_t v) { seed_ = v; return *this; }

  bool Test(const TransformerRow& row) const {
    Rng rng(seed_);
    constexpr size_t kTableRows = 5, kIds = 7;
    const size_t row_bytes = (h_ * static_cast<size_t>(bits_) + 7) / 8;
    std::vector<uint8_t> table(kTableRows * row_bytes);
    for (uint8_t& b : table) b = static_cast<uint8_t>(bits_ == 8 ? rng.uniform(-127, 127) : rng.uniform(0, 255));
    if (bits_ == 8) std::fill(table.begin(), table.begin() + static_cast<std::ptrdiff_t>(row_bytes), uint8_t{127});
    std::vector<QuantizedMultiplier> multipliers(kTableRows);
    for (QuantizedMultiplier& m : multipliers) m = rng.multiplier(-24, 12);
    std::vector<int32_t> ids(kIds);
    for (int32_t& id : ids) id = rng.uniform(0, static_cast<int32_t>(kTableRows) - 1);
    std::vector<int32_t> got(kIds * h_, 0x5A5A5A5A), want(got);
    row.gather_wide(bits_, table.data(), h_, multipliers.data(), ids.data(), kIds, got.data());
    gather_rows_wide__ref(bits_, table.data(), h_, multipliers.data(), ids.data(), kIds, want.data());
    std::string why;
    if (same(got, want, h_, &why)) return true;
    std::printf("  %s gather_wide: h=%zu bits=%d seed=%llu: %s\n", row.name, h_, bits_,
                static_cast<unsigned long long>(seed_), why.c_str());
    return false;
  }

 private:
  size_t h_ = 1;
  int bits_ = 8;
  uint64_t seed_ = 1;
};

}  // namespace test
}  // namespace intinfer
