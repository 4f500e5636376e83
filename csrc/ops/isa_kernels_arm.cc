// The NEON kernels behind isa_kernels.h, and on aarch64 the dot-product and matrix-multiply GEMMs.
#include "../kernels/arm/dwconv_neon.h"
#include "../kernels/arm/elementwise_neon.h"
#include "../kernels/arm/gemm_neon.h"
#include "../kernels/ref/kernels.h"
#include "isa_kernels.h"

namespace intinfer {
namespace {

class GemmNeon final : public GemmKernel {
 public:
  GemmNeon(const PackedWeights& w, const OutputStage& out)
      : out_(out), w_(pack_gemm_neon(w.weights, w.channels, w.depth, w.bias.data(), w.multipliers, w.output_scales)) {}
  void run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
           size_t block_end) const override {
    std::vector<int16_t> scratch(gemm_neon_scratch_elements(w_));
    if (!w_.output_scales.empty())
      gemm_u8s8_f32_4x8__neon(w_, x, x_stride, static_cast<float*>(y), y_stride, rows, block_begin, block_end,
                              scratch.data());
    else
      gemm_u8s8_4x8__neon(w_, out_, x, x_stride, static_cast<uint8_t*>(y), y_stride, rows, block_begin, block_end,
                          scratch.data());
  }
  size_t column_blocks() const override { return w_.n_tiles; }

 private:
  OutputStage out_;
  PackedGemmNeon w_;
};

#if defined(INTINFER_HAVE_NEONDOT)
class GemmNeonDot final : public GemmKernel {
 public:
  GemmNeonDot(const PackedWeights& w, const OutputStage& out)
      : out_(out),
        w_(pack_gemm_neondot(w.weights, w.channels, w.depth, w.bias.data(), w.multipliers, w.output_scales)) {}
  void run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
           size_t block_end) const override {
    std::vector<uint8_t> scratch(gemm_neondot_scratch_bytes(w_));
    if (!w_.output_scales.empty())
      gemm_u8s8_f32_4x16c4__neondot(w_, x, x_stride, static_cast<float*>(y), y_stride, rows, block_begin, block_end,
                                    scratch.data());
    else
      gemm_u8s8_4x16c4__neondot(w_, out_, x, x_stride, static_cast<uint8_t*>(y), y_stride, rows, block_begin,
                                block_end, scratch.data());
  }
  size_t column_blocks() const override { return w_.n_tiles; }

 private:
  OutputStage out_;
  PackedGemmNeonDot w_;
};
#endif

#if defined(INTINFER_HAVE_NEONI8MM)
class GemmNeonI8mm final : public GemmKernel {
 public:
  GemmNeonI8mm(const PackedWeights& w, const OutputStage& out)
      : out_(out),
        w_(pack_gemm_neoni8mm(w.weights, w.channels, w.depth, w.bias.data(), w.multipliers, w.output_scales)) {}
  void run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
           size_t block_end) const override {
    std::vector<uint8_t> scratch(gemm_neoni8mm_scratch_bytes(w_));
    if (!w_.output_scales.empty())
      gemm_u8s8_f32_4x16c8__neoni8mm(w_, x, x_stride, static_cast<float*>(y), y_stride, rows, block_begin, block_end,
                                     scratch.data());
    else
      gemm_u8s8_4x16c8__neoni8mm(w_, out_, x, x_stride, static_cast<uint8_t*>(y), y_stride, rows, block_begin,
                                 block_end, scratch.data());
  }
  size_t column_blocks() const override { return w_.n_tiles; }

 private:
  OutputStage out_;
  PackedGemmNeonI8mm w_;
};
#endif

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

std::unique_ptr<DwconvKernel> make_dwconv_kernel(Isa isa, const PackedWeights& w, size_t taps) {
  if (!isa_has_neon(isa) || taps > kDwconvNeonMaxTaps) return nullptr;
  return std::make_unique<DwconvNeon>(w, taps);
}

ElementwiseKernels elementwise_kernels(Isa isa) {
  if (!isa_has_neon(isa)) return {add_u8__ref, mul_u8__ref, quantize_f32_u8__ref};
#if defined(__aarch64__)
  return {add_u8__neon, mul_u8__neon, quantize_f32_u8__neon};
#else
  return {add_u8__neon, mul_u8__neon, quantize_f32_u8__ref};
#endif
}

}  // namespace intinfer
