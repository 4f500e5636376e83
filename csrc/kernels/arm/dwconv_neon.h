// NEON depthwise convolution (NHWC, one output channel per input channel), exact: per tap and
// 8 channels, one widening load of the input and two SMLAL into int32 against int16 weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../output_stage.h"
#include "../params.h"

namespace intinfer {

// n = channels, k = taps; weights [c_tile][tap][8 channels] as int16.
struct PackedDwconvNeon : PackedOutputStage {
  std::vector<int16_t> weights;
};

// `weights` [C][taps] int8 (OHWI with one input channel), `bias` folded.
PackedDwconvNeon pack_dwconv_neon(const int8_t* weights, size_t channels, size_t taps, const int32_t* bias,
                                  const std::vector<QuantizedMultiplier>& multipliers);

constexpr size_t kDwconvNeonMaxTaps = 64;

// Output rows (batch * out_h + oy) [row_begin, row_end). `zero_row` holds in_c copies of the
// input zero point: padded taps read it.
void dwconv_u8s8_8c1__neon(const PackedDwconvNeon& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                           uint8_t* y, size_t row_begin, size_t row_end);

}  // namespace intinfer
