#include "output_stage.h"

#include <cstring>

namespace intinfer {

void pack_requant(const std::vector<QuantizedMultiplier>& multipliers, size_t padded, std::vector<int32_t>* m,
                  std::vector<int32_t>* left, std::vector<int32_t>* right) {
  m->assign(padded, 1 << 30);
  left->assign(padded, 0);
  right->assign(padded, 0);
  for (size_t c = 0; c < multipliers.size(); ++c) {
    (*m)[c] = multipliers[c].multiplier;
    (*left)[c] = multipliers[c].shift > 0 ? multipliers[c].shift : 0;
    (*right)[c] = multipliers[c].shift > 0 ? 0 : -multipliers[c].shift;
  }
}

void pack_output_stage(PackedOutputStage* out, size_t n, size_t k, size_t width, const int32_t* bias,
                       const std::vector<QuantizedMultiplier>& multipliers, const std::vector<float>& output_scales) {
  PackedOutputStage& p = *out;
  p.n = n;
  p.k = k;
  p.n_tiles = (n + width - 1) / width;
  const size_t n_pad = p.n_tiles * width;
  p.bias.assign(n_pad, 0);
  std::memcpy(p.bias.data(), bias, n * sizeof(int32_t));
  if (!multipliers.empty()) {
    pack_requant(multipliers, n_pad, &p.multiplier, &p.left_shift, &p.right_shift);
  } else {
    p.output_scales.assign(n_pad, 0.0f);
    std::memcpy(p.output_scales.data(), output_scales.data(), n * sizeof(float));
  }
}

PackedLayerNorm pack_layer_norm(const LayerNormParams& p, size_t width) {
  PackedLayerNorm w;
  const size_t padded = (p.h + width - 1) / width * width;
  pack_requant(std::vector<QuantizedMultiplier>(p.multipliers, p.multipliers + p.h), padded, &w.multiplier,
               &w.left_shift, &w.right_shift);
  w.sign.assign(padded, 0);
  w.offset.assign(padded, 0);
  w.bias.assign(padded, 0);
  for (size_t c = 0; c < p.h; ++c) {
    w.sign[c] = p.signs[c];
    w.offset[c] = p.offsets[c];
    w.bias[c] = p.biases[c];
  }
  return w;
}

}  // namespace intinfer
