// Fixed-point requantization (docs/quantization.md), gemmlowp/TFLite semantics.
// Every kernel, whatever its ISA, must reproduce these functions bit for bit.
#pragma once

#include <cstdint>
#include <limits>

namespace intinfer {

// real multiplier ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) or 0.
struct QuantizedMultiplier {
  int32_t multiplier = 0;
  int32_t shift = 0;
};

// Encodes a positive real multiplier; returns false when it is too large (>= 2^30).
bool quantize_multiplier(double real, QuantizedMultiplier* out);

// Saturating rounding doubling high multiply: round(a * b / 2^31), saturating the one
// overflowing case a == b == INT32_MIN.
inline int32_t srdhm(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::max();
  int64_t ab = static_cast<int64_t>(a) * b;
  int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : 1 - (int64_t{1} << 30);
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

// Rounding divide by 2^exponent, ties away from zero.
inline int32_t rdbpot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

inline int32_t requantize(int32_t x, QuantizedMultiplier m) {
  const int left = m.shift > 0 ? m.shift : 0;
  const int right = m.shift > 0 ? 0 : -m.shift;
  int64_t shifted = static_cast<int64_t>(x) * (int64_t{1} << left);
  if (shifted > std::numeric_limits<int32_t>::max()) shifted = std::numeric_limits<int32_t>::max();
  if (shifted < std::numeric_limits<int32_t>::min()) shifted = std::numeric_limits<int32_t>::min();
  return rdbpot(srdhm(static_cast<int32_t>(shifted), m.multiplier), right);
}

inline uint8_t clamp_u8(int32_t v, int32_t lo, int32_t hi) {
  return static_cast<uint8_t>(v < lo ? lo : (v > hi ? hi : v));
}

// The output stage shared by every op that requantizes an int32 accumulator.
struct OutputStage {
  int32_t zero_point = 0;
  int32_t act_min = 0;
  int32_t act_max = 255;

  uint8_t apply(int32_t acc, QuantizedMultiplier m) const {
    return clamp_u8(requantize(acc, m) + zero_point, act_min, act_max);
  }
};

}  // namespace intinfer
