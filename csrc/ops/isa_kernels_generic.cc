// isa_kernels.h for architectures without optimized kernels: the reference runs everywhere.
#include "../kernels/ref/kernels.h"
#include "isa_kernels.h"

namespace intinfer {

std::unique_ptr<LayerNormKernel> make_layer_norm_kernel(Isa, const LayerNormParams&) { return nullptr; }

SoftmaxKernel softmax_kernel(Isa) { return softmax_u8__ref; }

std::unique_ptr<GemmKernel> make_gemm_kernel(Isa, const PackedWeights&, const OutputStage&) { return nullptr; }

bool has_gemm_kernel_s16(Isa) { return false; }

std::unique_ptr<GemmKernel> make_gemm_kernel_s16(Isa, const int16_t*, size_t, size_t, const int32_t*,
                                                 const std::vector<QuantizedMultiplier>&, const OutputStage&) {
  return nullptr;
}

std::unique_ptr<DwconvKernel> make_dwconv_kernel(Isa, const PackedWeights&, size_t) { return nullptr; }

ElementwiseKernels elementwise_kernels(Isa) {
  return {add_u8__ref, mul_u8__ref, quantize_f32_u8__ref, dequantize_u8_f32__ref, lut_u8__ref, add_wide__ref};
}

PoolKernels pool_kernels(Isa) { return {avg_pool_u8__ref, max_pool_u8__ref}; }

}  // namespace intinfer
