// The per-channel output stage of the optimized GEMM and depthwise kernels, packed once at load
// in the padded layout their vector loads read. Plain C++: shared by every ISA's packers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "params.h"
#include "ref/requant.h"

namespace intinfer {

struct PackedOutputStage {
  size_t n = 0, k = 0, n_tiles = 0;     // channels, depth, tiles of the kernel's width
  std::vector<int32_t> bias;            // folded, padded to n_tiles * width
  std::vector<int32_t> multiplier;      // uint8 output: Q31 multipliers
  std::vector<int32_t> left_shift, right_shift;  // both >= 0, at most one non-zero per channel
  std::vector<float> output_scales;     // float output: s_in * s_w[c]
};

// The multipliers and shifts of `multipliers`, padded to `padded` entries with a harmless
// multiplier (1/2, no shift).
void pack_requant(const std::vector<QuantizedMultiplier>& multipliers, size_t padded, std::vector<int32_t>* m,
                  std::vector<int32_t>* left, std::vector<int32_t>* right);

// Shapes and the padded output stage for `n` channels of depth `k` in tiles of `width`
// channels; exactly one of `multipliers` / `output_scales` is non-empty.
void pack_output_stage(PackedOutputStage* out, size_t n, size_t k, size_t width, const int32_t* bias,
                       const std::vector<QuantizedMultiplier>& multipliers, const std::vector<float>& output_scales);

// LAYER_NORM's per-channel output stage (params.h) as the vector kernels load it, padded to a
// multiple of `width` channels.
struct PackedLayerNorm {
  std::vector<int32_t> multiplier, left_shift, right_shift, sign, offset, bias;
};
PackedLayerNorm pack_layer_norm(const LayerNormParams& p, size_t width);

}  // namespace intinfer
