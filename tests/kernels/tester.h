// Shared pieces of the micro-kernel testers (tests/kernels/): seeded random inputs, the requant
// parameters the ops would build, and the bit-for-bit comparison that names the first
// difference.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "kernels/ref/requant.h"

namespace intinfer {
namespace test {

// Every random input comes from a generator seeded by the case: a failing case reproduces.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  int32_t uniform(int32_t lo, int32_t hi) { return std::uniform_int_distribution<int32_t>(lo, hi)(gen_); }
  double real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen_); }
  bool chance(double p) { return real(0, 1) < p; }

  void fill_u8(std::vector<uint8_t>& v) {
    for (uint8_t& e : v) e = static_cast<uint8_t>(uniform(0, 255));
  }

  // A Q31 multiplier as quantize_multiplier makes them ([2^30, 2^31)) with a shift in
  // [shift_lo, shift_hi]; one in 16 is 0, what quantize_multiplier gives for a tiny real.
  QuantizedMultiplier multiplier(int shift_lo, int shift_hi) {
    if (uniform(0, 15) == 0) return {};
    return {uniform(1 << 30, INT32_MAX), uniform(shift_lo, shift_hi)};
  }

  // A multiplier for a real scale, as the ops make them (OpContext::multiplier).
  static QuantizedMultiplier of(double real) {
    QuantizedMultiplier m;
    quantize_multiplier(real, &m);
    return m;
  }

 private:
  std::mt19937_64 gen_;
};

// Whole bytes of got and want, or a message naming the first differing element, as an index
// into `shape` ("[r, c]" for a matrix of `cols` columns).
template <typename T>
bool same(const std::vector<T>& got, const std::vector<T>& want, size_t cols, std::string* why) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(T)) == 0) continue;
    char buf[160];
    std::snprintf(buf, sizeof buf, "first difference at [%zu, %zu]: got %.9g, want %.9g", i / cols, i % cols,
                  static_cast<double>(got[i]), static_cast<double>(want[i]));
    *why = buf;
    return false;
  }
  return true;
}

// The CPU's features: every path the engine can run here (qemu's -cpu decides under emulation).
inline Features cpu_features() {
  Features f = 0;
  for (const Path& p : supported_paths()) f |= p.features;
  return f;
}

// The names of the features in `f`, as the paths name them.
inline std::string feature_names(Features f) {
  static const struct {
    Features bit;
    const char* name;
  } kNames[] = {{kFeatureAvx2, "avx2"},
                {kFeatureAvxVnni, "avxvnni"},
                {kFeatureAvx512Vnni, "avx512vnni"},
                {kFeatureNeon, "neon"},
                {kFeatureNeonDot, "neondot"},
                {kFeatureNeonI8mm, "neoni8mm"}};
  std::string s;
  for (const auto& n : kNames)
    if (f & n.bit) s += (s.empty() ? "" : " ") + std::string(n.name);
  return s;
}

}  // namespace test
}  // namespace intinfer
