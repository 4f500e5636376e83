// The NEON kernels behind isa_kernels.h, and on aarch64 the dot-product and matrix-multiply GEMMs.
#include "../kernels/arm/dwconv_neon.h"
#include "../kernels/arm/elementwise_neon.h"
#include "../kernels/arm/gemm_neon.h"
#include "../kernels/arm/pool_neon.h"
#include "../kernels/arm/transformer_neon.h"
#include "../kernels/ref/kernels.h"
#include "isa_kernels.h"
#include "tiled_gemm.h"

namespace intinfer {
namespace {

using GemmNeon = TiledGemm<PackedGemmNeon, int16_t, pack_gemm_neon, gemm_neon_scratch_elements, gemm_u8s8_4x8__neon,
                           gemm_u8s8_f32_4x8__neon>;
#if defined(INTINFER_HAVE_NEONDOT)
using GemmNeonDot = TiledGemm<PackedGemmNeonDot, uint8_t, pack_gemm_neondot, gemm_neondot_scratch_bytes,
                              gemm_u8s8_4x16c4__neondot, gemm_u8s8_f32_4x16c4__neondot>;
#endif
#if defined(INTINFER_HAVE_NEONI8MM)
using GemmNeonI8mm = TiledGemm<PackedGemmNeonI8mm, uint8_t, pack_gemm_neoni8mm, gemm_neoni8mm_scratch_bytes,
                               gemm_u8s8_4x16c8__neoni8mm, gemm_u8s8_f32_4x16c8__neoni8mm>;
#endif

class LayerNormNeon final : public LayerNormKernel {
 public:
  explicit LayerNormNeon(const LayerNormParams& p) : p_(p), w_(pack_layer_norm(p, 4)) {}
  void run(const void* x, bool wide, uint8_t* y, size_t row_begin, size_t row_end) const override {
    if (wide)
      layer_norm_wide__neon(p_, w_, static_cast<const int32_t*>(x), y, row_begin, row_end);
    else
      layer_norm_u8__neon(p_, w_, static_cast<const uint8_t*>(x), y, row_begin, row_end);
  }

 private:
  LayerNormParams p_;
  PackedLayerNorm w_;
};

class DwconvNeon final : public DwconvKernel {
 public:
  DwconvNeon(const PackedWeights& w, size_t taps)
      : w_(pack_dwconv_neon(w.weights, w.channels, taps, w.bias.data(), w.multipliers)) {}
  void run(const ConvParams& p, const uint8_t* x, const uint8_t* zero_row, uint8_t* y, size_t row_begin,
           size_t row_end) const override {
    dwconv_u8s8_8c1__neon(w_, p, x, zero_row, y, row_begin, row_end);
  }

 private:
  PackedDwconvNeon w_;
};

}  // namespace

std::unique_ptr<LayerNormKernel> make_layer_norm_kernel(Isa isa, const LayerNormParams& p) {
  if (!isa_has_neon(isa)) return nullptr;
  return std::make_unique<LayerNormNeon>(p);
}

SoftmaxKernel softmax_kernel(Isa isa) { return isa_has_neon(isa) ? softmax_u8__neon : softmax_u8__ref; }

std::unique_ptr<GemmKernel> make_gemm_kernel(Isa isa, const PackedWeights& w, const OutputStage& out) {
#if defined(INTINFER_HAVE_NEONI8MM)
  if (isa == Isa::kNeonI8mm) return std::make_unique<GemmNeonI8mm>(w, out);
#endif
#if defined(INTINFER_HAVE_NEONDOT)
  if (isa == Isa::kNeonDot) return std::make_unique<GemmNeonDot>(w, out);
#endif
  if (isa_has_neon(isa)) return std::make_unique<GemmNeon>(w, out);
  return nullptr;
}

bool has_gemm_kernel_s16(Isa isa) { return isa_has_neon(isa); }

std::unique_ptr<GemmKernel> make_gemm_kernel_s16(Isa isa, const int16_t* w, size_t n, size_t k, const int32_t* bias,
                                                 const std::vector<QuantizedMultiplier>& multipliers,
                                                 const OutputStage& out) {
  if (!has_gemm_kernel_s16(isa)) return nullptr;
  return std::make_unique<GemmNeon>(pack_gemm_neon_s16(w, n, k, bias, multipliers, {}), out);
}

std::unique_ptr<DwconvKernel> make_dwconv_kernel(Isa isa, const PackedWeights& w, size_t taps) {
  if (!isa_has_neon(isa) || taps > kDwconvNeonMaxTaps) return nullptr;
  return std::make_unique<DwconvNeon>(w, taps);
}

ElementwiseKernels elementwise_kernels(Isa isa) {
  if (!isa_has_neon(isa))
    return {add_u8__ref, mul_u8__ref, quantize_f32_u8__ref, dequantize_u8_f32__ref, lut_u8__ref, add_wide__ref};
#if defined(__aarch64__)
  return {add_u8__neon, mul_u8__neon, quantize_f32_u8__neon, dequantize_u8_f32__neon, lut_u8__neon, add_wide__neon};
#else
  return {add_u8__neon, mul_u8__neon, quantize_f32_u8__ref, dequantize_u8_f32__ref, lut_u8__ref, add_wide__neon};
#endif
}

PoolKernels pool_kernels(Isa isa) {
  if (isa_has_neon(isa)) return {avg_pool_u8__neon, max_pool_u8__neon};
  return {avg_pool_u8__ref, max_pool_u8__ref};
}

}  // namespace intinfer
