// The scalar arithmetic of LAYER_NORM and SOFTMAX (docs/quantization.md), shared by the
// reference kernels and by the tails of their vector twins (ISA-neutral).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "params.h"

namespace intinfer {
namespace {

// floor(sqrt(v)), exact for every uint64.
inline uint64_t isqrt(uint64_t v) {
  uint64_t r = static_cast<uint64_t>(std::sqrt(static_cast<double>(v)));
  while (r > 0 && r > v / r) --r;      // r * r > v
  while ((r + 1) <= v / (r + 1)) ++r;  // (r + 1)^2 <= v
  return r;
}

// LAYER_NORM's per-row reciprocal: floor(2^46 / isqrt(V)), 0 for a row without variance.
inline int64_t layer_norm_inverse(uint64_t v) {
  const uint64_t root = isqrt(v);
  return root == 0 ? 0 : static_cast<int64_t>((uint64_t{1} << (31 + LayerNormParams::kFractionBits)) / root);
}

// t = d / sqrt(V) in Q15 (|d| <= sqrt(V), so |d * inv| <= 2^46), then channel c's output: beta
// joins t before the one rounding of the requantization (|offset| <= 2^31 - 2^16 keeps the sum in int32);
// a flat channel (sign 0, offset 0) outputs its bias. Clamped to the output's range (uint8 or wide).
inline int32_t layer_norm_output(const LayerNormParams& p, int64_t d, int64_t inv, size_t c) {
  const int32_t t = static_cast<int32_t>((d * inv + (int64_t{1} << 30)) >> 31);
  const int32_t q = requantize(p.signs[c] * t + p.offsets[c], p.multipliers[c]) + p.biases[c] + p.out.zero_point;
  return q < p.out.act_min ? p.out.act_min : (q > p.out.act_max ? p.out.act_max : q);
}

// Calls f with LAYER_NORM's output as its type: int32 rows when p.wide_output, else uint8.
template <typename F>
inline void with_layer_norm_output(const LayerNormParams& p, void* y, F&& f) {
  if (p.wide_output)
    f(static_cast<int32_t*>(y));
  else
    f(static_cast<uint8_t*>(y));
}

// SOFTMAX's row maximum over the attended positions (mask null: all); -1 when there are none,
// and then the row's output y is written: all 0. softmax_row_max_from goes on from position
// `from` with the maximum `top` of the positions before it (0 when none was attended) and whether
// any was: the vector kernels' tail.
inline int32_t softmax_row_max_from(size_t from, size_t n, const uint8_t* x, const uint8_t* mask, uint8_t* y,
                                    int32_t top, bool any) {
  for (size_t j = from; j < n; ++j)
    if (!mask || mask[j]) {
      any = true;
      if (x[j] > top) top = x[j];
    }
  if (any) return top;
  for (size_t j = 0; j < n; ++j) y[j] = 0;
  return -1;
}
inline int32_t softmax_row_max(size_t n, const uint8_t* x, const uint8_t* mask, uint8_t* y) {
  return softmax_row_max_from(0, n, x, mask, y, 0, false);
}

// SOFTMAX's output for an exponential e (<= 2^16) and the row's floor(2^32 / sum e) (<= 2^16).
inline uint8_t softmax_output(uint64_t e, uint64_t inv) {
  const uint64_t q = (e * inv + (uint64_t{1} << 23)) >> 24;
  return static_cast<uint8_t>(q > 255 ? 255 : q);
}

}  // namespace
}  // namespace intinfer
