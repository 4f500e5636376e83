// The optimized kernels of one instruction-set path, behind one interface, so that ops hold no
// per-ISA code. Each architecture's build compiles exactly one implementation:
// isa_kernels_x86.cc, isa_kernels_arm.cc or isa_kernels_generic.cc (reference kernels only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "../core/cpu.h"
#include "../kernels/params.h"
#include "pack.h"

namespace intinfer {

// y = output_stage(x W^T + bias) for rows of x and a range of column blocks (see Gemm).
class GemmKernel {
 public:
  virtual ~GemmKernel() = default;
  virtual void run(const uint8_t* x, size_t x_stride, void* y, size_t y_stride, size_t rows, size_t block_begin,
                   size_t block_end) const = 0;
  virtual size_t column_blocks() const = 0;
};

// nullptr when `isa` has no GEMM of its own (the reference runs instead).
std::unique_ptr<GemmKernel> make_gemm_kernel(Isa isa, const PackedWeights& w, const OutputStage& out);

// The same over int16 weights [n][k] within [-255, 255], packed for one call (MATMUL's second
// operand minus its zero point), uint8 output; nullptr when `isa` has no such kernel, which
// has_gemm_kernel_s16 says beforehand.
bool has_gemm_kernel_s16(Isa isa);
std::unique_ptr<GemmKernel> make_gemm_kernel_s16(Isa isa, const int16_t* w, size_t n, size_t k, const int32_t* bias,
                                                 const std::vector<QuantizedMultiplier>& multipliers,
                                                 const OutputStage& out);

// Depthwise convolution (one output channel per input channel) over output rows
// (batch * out_h + oy) [row_begin, row_end); padded taps read `zero_row` (in_c copies of the
// input zero point).
class DwconvKernel {
 public:
  virtual ~DwconvKernel() = default;
  virtual void run(const ConvParams& p, const uint8_t* x, const uint8_t* zero_row, uint8_t* y, size_t row_begin,
                   size_t row_end) const = 0;
};

// nullptr when `isa` has no depthwise kernel for this many taps.
std::unique_ptr<DwconvKernel> make_dwconv_kernel(Isa isa, const PackedWeights& w, size_t taps);

// Elementwise kernels with the reference signatures; the reference ones where `isa` has none.
struct ElementwiseKernels {
  void (*add)(const AddParams&, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t*, size_t);
  void (*mul)(const MulParams&, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t*, size_t);
  void (*quantize)(const float*, uint8_t*, size_t, float, int32_t);
  void (*dequantize)(const uint8_t*, float*, size_t, float, int32_t);
  void (*lut)(const uint8_t*, const uint8_t*, uint8_t*, size_t);
  void (*add_wide)(const AddWideParams&, const void*, size_t, const void*, size_t, int32_t*, size_t);
};
ElementwiseKernels elementwise_kernels(Isa isa);

// LAYER_NORM over rows [row_begin, row_end) of a uint8 or wide input, with the parameters it was
// made for; nullptr when `isa` has no kernel of its own.
class LayerNormKernel {
 public:
  virtual ~LayerNormKernel() = default;
  virtual void run(const void* x, bool wide, uint8_t* y, size_t row_begin, size_t row_end) const = 0;
};
std::unique_ptr<LayerNormKernel> make_layer_norm_kernel(Isa isa, const LayerNormParams& p);

// SOFTMAX rows with the reference signature; the reference where `isa` has none.
using SoftmaxKernel = void (*)(const SoftmaxParams&, const uint8_t*, const uint8_t* const*, uint8_t*, size_t, size_t);
SoftmaxKernel softmax_kernel(Isa isa);

// Pooling kernels with the reference signatures; the reference ones where `isa` has none.
struct PoolKernels {
  void (*avg)(const PoolParams&, const uint8_t*, uint8_t*, size_t, size_t);
  void (*max)(const PoolParams&, const uint8_t*, uint8_t*, size_t, size_t);
};
PoolKernels pool_kernels(Isa isa);

}  // namespace intinfer
