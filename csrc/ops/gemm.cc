#include "gemm.h"

#include <vector>

#include "../kernels/ref/kernels.h"
#ifdef INTINFER_HAVE_AVX2
#include "../kernels/x86/gemm_avx2.h"
#endif

namespace intinfer {

#ifdef INTINFER_HAVE_AVX2
struct Gemm::Avx2 {
  PackedGemmAvx2 packed;  // used when vnni is empty
  std::unique_ptr<PackedGemmVnni> vnni;
};
#else
struct Gemm::Avx2 {};
#endif

Gemm::Gemm(const PackedWeights& weights, const OutputStage& out, Isa isa) : w_(weights), out_(out) {
#ifdef INTINFER_HAVE_AVX2
  if (isa == Isa::kAvxVnni) {
    avx2_ = std::make_unique<Avx2>();
    avx2_->vnni = std::make_unique<PackedGemmVnni>(
        pack_gemm_avxvnni(w_.weights, w_.channels, w_.depth, w_.bias.data(), w_.multipliers, w_.output_scales));
  } else if (isa == Isa::kAvx2) {
    avx2_ = std::make_unique<Avx2>();
    avx2_->packed = pack_gemm_avx2(w_.weights, w_.channels, w_.depth, w_.bias.data(), w_.multipliers,
                                   w_.output_scales);
  }
#else
  (void)isa;
#endif
}

Gemm::~Gemm() = default;

size_t Gemm::column_blocks() const {
#ifdef INTINFER_HAVE_AVX2
  if (avx2_) return avx2_->vnni ? avx2_->vnni->base.n_tiles : avx2_->packed.n_tiles;
#endif
  return 1;
}

void Gemm::run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
               size_t block_end) const {
  block_end = block_end < column_blocks() ? block_end : column_blocks();
#ifdef INTINFER_HAVE_AVX2
  if (avx2_ && avx2_->vnni) {
    const PackedGemmVnni& v = *avx2_->vnni;
    std::vector<uint8_t> scratch(gemm_avxvnni_scratch_bytes(v));
    if (float_output())
      gemm_u8s8_f32_4x16c4__avxvnni(v, x, x_stride, static_cast<float*>(y), y_stride, rows, block_begin, block_end,
                                    scratch.data());
    else
      gemm_u8s8_4x16c4__avxvnni(v, out_, x, x_stride, static_cast<uint8_t*>(y), y_stride, rows, block_begin,
                                block_end, scratch.data());
    return;
  }
  if (avx2_) {
    std::vector<int16_t> scratch(gemm_avx2_scratch_elements(avx2_->packed));
    if (float_output())
      gemm_u8s8_f32_4x16c2__avx2(avx2_->packed, x, x_stride, static_cast<float*>(y), y_stride, rows, block_begin,
                                 block_end, scratch.data());
    else
      gemm_u8s8_4x16c2__avx2(avx2_->packed, out_, x, x_stride, static_cast<uint8_t*>(y), y_stride, rows, block_begin,
                             block_end, scratch.data());
    return;
  }
#endif
  (void)block_begin;
  GemmParams p{1, w_.channels, w_.depth, out_, w_.multipliers.data()};
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* xr = x + r * x_stride;
    if (float_output())
      gemm_u8s8_f32__ref(p, w_.output_scales.data(), xr, w_.weights, w_.bias.data(), static_cast<float*>(y) + r * y_stride, 0, 1);
    else
      gemm_u8s8__ref(p, xr, w_.weights, w_.bias.data(), static_cast<uint8_t*>(y) + r * y_stride, 0, 1);
  }
}

}  // namespace intinfer
