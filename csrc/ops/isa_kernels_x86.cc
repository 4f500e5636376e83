// The AVX2 and AVX-VNNI kernels behind isa_kernels.h.
#include "../kernels/ref/kernels.h"
#include "../kernels/x86/dwconv_avx2.h"
#include "../kernels/x86/elementwise_avx2.h"
#include "../kernels/x86/gemm_avx2.h"
#include "../kernels/x86/pool_avx2.h"
#include "../kernels/x86/transformer_avx2.h"
#include "isa_kernels.h"
#include "tiled_gemm.h"

namespace intinfer {
namespace {

using GemmAvx2 = TiledGemm<PackedGemmAvx2, int16_t, pack_gemm_avx2, gemm_avx2_scratch_elements,
                           gemm_u8s8_4x16c2__avx2, gemm_u8s8_f32_4x16c2__avx2>;
using GemmAvxVnni = TiledGemm<PackedGemmVnni, uint8_t, pack_gemm_avxvnni, gemm_avxvnni_scratch_bytes,
                              gemm_u8s8_4x16c4__avxvnni, gemm_u8s8_f32_4x16c4__avxvnni>;

class DwconvAvx2 final : public DwconvKernel {
 public:
  DwconvAvx2(const PackedWeights& w, size_t taps)
      : w_(pack_dwconv_avx2(w.weights, w.channels, taps, w.bias.data(), w.multipliers)) {}
  void run(const ConvParams& p, const uint8_t* x, const uint8_t* zero_row, uint8_t* y, size_t row_begin,
           size_t row_end) const override {
    dwconv_u8s8_16c2__avx2(w_, p, x, zero_row, y, row_begin, row_end);
  }

 private:
  PackedDwconvAvx2 w_;
};

class LayerNormAvx2 final : public LayerNormKernel {
 public:
  explicit LayerNormAvx2(const LayerNormParams& p) : p_(p), w_(pack_layer_norm(p, 8)) {}
  void run(const void* x, bool wide, uint8_t* y, size_t row_begin, size_t row_end) const override {
    if (wide)
      layer_norm_wide__avx2(p_, w_, static_cast<const int32_t*>(x), y, row_begin, row_end);
    else
      layer_norm_u8__avx2(p_, w_, static_cast<const uint8_t*>(x), y, row_begin, row_end);
  }

 private:
  LayerNormParams p_;
  PackedLayerNorm w_;
};

}  // namespace

std::unique_ptr<LayerNormKernel> make_layer_norm_kernel(Isa isa, const LayerNormParams& p) {
  if (!isa_has_avx2(isa)) return nullptr;
  return std::make_unique<LayerNormAvx2>(p);
}

SoftmaxKernel softmax_kernel(Isa isa) { return isa_has_avx2(isa) ? softmax_u8__avx2 : softmax_u8__ref; }

std::unique_ptr<GemmKernel> make_gemm_kernel(Isa isa, const PackedWeights& w, const OutputStage& out) {
  if (isa == Isa::kAvxVnni) return std::make_unique<GemmAvxVnni>(w, out);
  if (isa == Isa::kAvx2) return std::make_unique<GemmAvx2>(w, out);
  return nullptr;
}

bool has_gemm_kernel_s16(Isa isa) { return isa_has_avx2(isa); }

std::unique_ptr<GemmKernel> make_gemm_kernel_s16(Isa isa, const int16_t* w, size_t n, size_t k, const int32_t* bias,
                                                 const std::vector<QuantizedMultiplier>& multipliers,
                                                 const OutputStage& out) {
  if (!has_gemm_kernel_s16(isa)) return nullptr;
  return std::make_unique<GemmAvx2>(pack_gemm_avx2_s16(w, n, k, bias, multipliers, {}), out);
}

std::unique_ptr<DwconvKernel> make_dwconv_kernel(Isa isa, const PackedWeights& w, size_t taps) {
  if (!isa_has_avx2(isa) || taps > kDwconvMaxTaps) return nullptr;
  return std::make_unique<DwconvAvx2>(w, taps);
}

ElementwiseKernels elementwise_kernels(Isa isa) {
  if (isa_has_avx2(isa))
    return {add_u8__avx2, mul_u8__avx2, quantize_f32_u8__avx2, dequantize_u8_f32__avx2, lut_u8__avx2, add_wide__avx2};
  return {add_u8__ref, mul_u8__ref, quantize_f32_u8__ref, dequantize_u8_f32__ref, lut_u8__ref, add_wide__ref};
}

PoolKernels pool_kernels(Isa isa) {
  if (isa_has_avx2(isa)) return {avg_pool_u8__avx2, max_pool_u8__avx2};
  return {avg_pool_u8__ref, max_pool_u8__ref};
}

}  // namespace intinfer
