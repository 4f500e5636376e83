// The elementwise tester: each entry point of an elementwise row (ADD, MUL, QUANTIZE,
// DEQUANTIZE, LUT, wide ADD, float to wide) against its reference on n elements, with the operands' steps (0
// broadcasts one value), parameters built as the ops build them (ops/binary.cc), and a guard of
// sentinel elements past n that no kernel may write.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/ref/kernels.h"
#include "kernels/tables.h"
#include "tester.h"

namespace intinfer {
namespace test {

class ElementwiseTester {
 public:
  ElementwiseTester& n(size_t v) { n_ = v; return *this; }
  ElementwiseTester& steps(size_t a, size_t b) { a_step_ = a; b_step_ = b; return *this; }
  ElementwiseTester& seed(uint64_t v) { seed_ = v; return *this; }

  bool TestAdd(const ElementwiseRow& row) const {
    Rng rng(seed_);
    AddParams p{};
    add_scales(rng, AddParams::kLeftShift, &p);
    p.a_zero_point = rng.uniform(0, 255), p.b_zero_point = rng.uniform(0, 255);
    p.out = output_stage(rng);
    const auto a = operand(rng, a_step_), b = operand(rng, b_step_);
    std::vector<uint8_t> got(n_ + kGuard, 0xA5), want(got);
    row.add(p, a.data(), a_step_, b.data(), b_step_, got.data(), n_);
    add_u8__ref(p, a.data(), a_step_, b.data(), b_step_, want.data(), n_);
    return check(row, "add", got, want);
  }

  bool TestMul(const ElementwiseRow& row) const {
    Rng rng(seed_);
    MulParams p{};
    p.multiplier = Rng::of(rng.real(0.005, 0.1) * rng.real(0.005, 0.1) / rng.real(0.002, 0.05));
    p.a_zero_point = rng.uniform(0, 255), p.b_zero_point = rng.uniform(0, 255);
    p.out = output_stage(rng);
    const auto a = operand(rng, a_step_), b = operand(rng, b_step_);
    std::vector<uint8_t> got(n_ + kGuard, 0xA5), want(got);
    row.mul(p, a.data(), a_step_, b.data(), b_step_, got.data(), n_);
    mul_u8__ref(p, a.data(), a_step_, b.data(), b_step_, want.data(), n_);
    return check(row, "mul", got, want);
  }

  // Finite floats only: ordinary values, exact ties of the rounding (a power-of-two scale keeps
  // (q + 0.5) * scale exact), signed zeros, subnormals and the largest magnitudes.
  bool TestQuantize(const ElementwiseRow& row) const {
    Rng rng(seed_);
    const bool power_of_two = rng.chance(0.5);
    const float scale = power_of_two ? std::ldexp(1.0f, rng.uniform(-8, 2)) : static_cast<float>(rng.real(1e-3, 1.0));
    const int32_t zero_point = rng.uniform(0, 255);
    static const float kSpecial[] = {0.0f, -0.0f, FLT_MIN, -FLT_MIN, FLT_TRUE_MIN, -FLT_TRUE_MIN, FLT_MAX, -FLT_MAX,
                                     1e30f, -1e30f, 511.5f, -511.5f, 512.5f, -512.5f};
    std::vector<float> x(n_);
    for (size_t i = 0; i < n_; ++i) {
      const int kind = rng.uniform(0, 5);
      if (kind == 0) x[i] = kSpecial[rng.uniform(0, sizeof kSpecial / sizeof kSpecial[0] - 1)];
      else if (kind == 1) x[i] = (static_cast<float>(rng.uniform(-300, 300)) + 0.5f) * scale;
      else x[i] = static_cast<float>(rng.real(-300, 300)) * scale;
    }
    std::vector<uint8_t> got(n_ + kGuard, 0xA5), want(got);
    row.quantize(x.data(), got.data(), n_, scale, zero_point);
    quantize_f32_u8__ref(x.data(), want.data(), n_, scale, zero_point);
    return check(row, "quantize", got, want);
  }

  // A float FULLY_CONNECTED output to wide, in place: ordinary values, exact ties, the clamps'
  // edges, infinities and NaN (0), past a guard the kernel must not touch.
  bool TestWideFromF32(const ElementwiseRow& row) const {
    Rng rng(seed_);
    const bool power_of_two = rng.chance(0.5);
    const float scale = power_of_two ? std::ldexp(1.0f, rng.uniform(-8, 2)) : static_cast<float>(rng.real(1e-3, 1.0));
    static const float kSpecial[] = {0.0f, -0.0f, FLT_MIN, FLT_TRUE_MIN, FLT_MAX, -FLT_MAX, 1e30f, -1e30f,
                                     32767.5f, -32767.5f, 65536.5f, -65536.5f, INFINITY, -INFINITY, NAN};
    std::vector<float> x(n_ + kGuard, 1.5f);
    for (size_t i = 0; i < n_; ++i) {
      const int kind = rng.uniform(0, 5);
      if (kind == 0) x[i] = kSpecial[rng.uniform(0, sizeof kSpecial / sizeof kSpecial[0] - 1)];
      else if (kind == 1) x[i] = (static_cast<float>(rng.uniform(-40000, 40000)) + 0.5f) * scale;
      else x[i] = static_cast<float>(rng.real(-40000, 40000)) * scale;
    }
    std::vector<float> got_f(x), want_f(x);
    row.wide_from_f32(got_f.data(), n_, scale);
    wide_from_f32__ref(want_f.data(), n_, scale);
    std::vector<int32_t> got(x.size()), want(x.size());
    std::memcpy(got.data(), got_f.data(), got.size() * sizeof(int32_t));
    std::memcpy(want.data(), want_f.data(), want.size() * sizeof(int32_t));
    return check(row, "wide_from_f32", got, want);
  }

  bool TestDequantize(const ElementwiseRow& row) const {
    Rng rng(seed_);
    const float scale = static_cast<float>(rng.real(1e-4, 10.0));
    const int32_t zero_point = rng.uniform(0, 255);
    std::vector<uint8_t> x(n_);
    rng.fill_u8(x);
    std::vector<float> got(n_ + kGuard, -12345.678f), want(got);
    row.dequantize(x.data(), got.data(), n_, scale, zero_point);
    dequantize_u8_f32__ref(x.data(), want.data(), n_, scale, zero_point);
    return check(row, "dequantize", got, want);
  }

  bool TestLut(const ElementwiseRow& row) const {
    Rng rng(seed_);
    std::vector<uint8_t> table(256), x(n_);
    rng.fill_u8(table);
    rng.fill_u8(x);
    std::vector<uint8_t> got(n_ + kGuard, 0xA5), want(got);
    row.lut(table.data(), x.data(), got.data(), n_);
    lut_u8__ref(table.data(), x.data(), want.data(), n_);
    return check(row, "lut", got, want);
  }

  // ADD into a wide output, each operand uint8 (with a zero point) or wide (within +-kWideMax).
  bool TestAddWide(const ElementwiseRow& row, bool a_wide, bool b_wide) const {
    Rng rng(seed_);
    AddWideParams p{};
    add_scales(rng, AddWideParams::kLeftShift, &p);
    p.a_wide = a_wide, p.b_wide = b_wide;
    p.a_zero_point = a_wide ? 0 : rng.uniform(0, 255);
    p.b_zero_point = b_wide ? 0 : rng.uniform(0, 255);
    const auto a = wide_operand(rng, a_step_, a_wide), b = wide_operand(rng, b_step_, b_wide);
    std::vector<int32_t> got(n_ + kGuard, -123456789), want(got);
    row.add_wide(p, a.data(), a_step_, b.data(), b_step_, got.data(), n_);
    add_wide__ref(p, a.data(), a_step_, b.data(), b_step_, want.data(), n_);
    return check(row, a_wide ? (b_wide ? "add_wide(wide, wide)" : "add_wide(wide, u8)")
                              : (b_wide ? "add_wide(u8, wide)" : "add_wide(u8, u8)"),
                 got, want);
  }

 private:
  static constexpr size_t kGuard = 16;

  // ops/binary.cc's scales: both inputs to 2 * max(s_a, s_b) with `left_shift` bits of headroom.
  template <typename Params>
  static void add_scales(Rng& rng, int left_shift, Params* p) {
    const double sa = rng.real(0.002, 0.2), sb = rng.real(0.002, 0.2), sy = rng.real(0.002, 0.2);
    const double twice_max = 2 * std::max(sa, sb);
    p->a_multiplier = Rng::of(sa / twice_max);
    p->b_multiplier = Rng::of(sb / twice_max);
    p->out_multiplier = Rng::of(twice_max / (std::ldexp(1.0, left_shift) * sy));
  }

  static OutputStage output_stage(Rng& rng) {
    OutputStage out;
    out.zero_point = rng.uniform(0, 255);
    if (rng.chance(0.3)) out.act_min = rng.uniform(0, 100), out.act_max = rng.uniform(150, 255);
    return out;
  }

  std::vector<uint8_t> operand(Rng& rng, size_t step) const {
    std::vector<uint8_t> v(step ? n_ : 1);
    rng.fill_u8(v);
    return v;
  }

  // Bytes of a uint8 or int32 operand.
  std::vector<uint8_t> wide_operand(Rng& rng, size_t step, bool wide) const {
    const size_t count = step ? n_ : 1;
    if (!wide) return operand(rng, step);
    std::vector<int32_t> v(count);
    for (int32_t& e : v) e = rng.chance(0.1) ? (rng.chance(0.5) ? kWideMax : -kWideMax) : rng.uniform(-kWideMax, kWideMax);
    std::vector<uint8_t> bytes(count * sizeof(int32_t));
    std::memcpy(bytes.data(), v.data(), bytes.size());
    return bytes;
  }

  template <typename T>
  bool check(const ElementwiseRow& row, const char* what, const std::vector<T>& got, const std::vector<T>& want) const {
    std::string why;
    if (same(got, want, got.size(), &why)) return true;
    std::printf("  %s %s: n=%zu a_step=%zu b_step=%zu seed=%llu: %s\n", row.name, what, n_, a_step_, b_step_,
                static_cast<unsigned long long>(seed_), why.c_str());
    return false;
  }

  size_t n_ = 1, a_step_ = 1, b_step_ = 1;
  uint64_t seed_ = 1;
};

}  // namespace test
}  // namespace intinfer
