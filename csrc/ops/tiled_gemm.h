// A GemmKernel over one ISA's packed GEMM: packs the weights at load and runs the kernel's
// uint8 or float entry point with a scratch buffer per call. Every tiled GEMM kernel (x86 and
// ARM) has the same four functions, named in the template arguments.
#pragma once

#include <utility>
#include <vector>

#include "isa_kernels.h"

namespace intinfer {

// Packed: the kernel's packing (a PackedOutputStage); Scratch: the element type of its scratch;
// kPack(weights, n, k, bias, multipliers, output_scales) -> Packed; kScratch(packed) -> count;
// kGemm / kGemmF32: the uint8- and float-output kernels.
template <typename Packed, typename Scratch, auto kPack, auto kScratch, auto kGemm, auto kGemmF32>
class TiledGemm final : public GemmKernel {
 public:
  TiledGemm(const PackedWeights& w, const OutputStage& out)
      : out_(out), w_(kPack(w.weights, w.channels, w.depth, w.bias.data(), w.multipliers, w.output_scales)) {}
  TiledGemm(Packed packed, const OutputStage& out) : out_(out), w_(std::move(packed)) {}

  void run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
           size_t block_end) const override {
    std::vector<Scratch> scratch(kScratch(w_));
    if (!w_.output_scales.empty())
      kGemmF32(w_, x, x_stride, static_cast<float*>(y), y_stride, rows, block_begin, block_end, scratch.data());
    else
      kGemm(w_, out_, x, x_stride, static_cast<uint8_t*>(y), y_stride, rows, block_begin, block_end, scratch.data());
  }

  size_t column_blocks() const override { return w_.n_tiles; }

 private:
  OutputStage out_;
  Packed w_;
};

}  // namespace intinfer
