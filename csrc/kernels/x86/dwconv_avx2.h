// AVX2 depthwise convolution (NHWC, one output channel per input channel), exact: weights
// prepacked as int16 with pairs of taps interleaved per channel, so each vpmaddwd adds two taps
// of 8 channels into int32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../params.h"

namespace intinfer {

struct PackedDwconvAvx2 {
  size_t channels = 0, taps = 0, tap_pairs = 0, c_tiles = 0;
  // [c_tile][tap_pair][2 vectors of 8 x (w[t], w[t + 1]) pairs]: the first vector holds channels
  // 0-3 and 8-11 of the tile, the second 4-7 and 12-15 (the order vpunpck{l,h}wd produce).
  std::vector<int16_t> weights;
  std::vector<int32_t> bias, multiplier, left_shift, right_shift;  // padded to c_tiles * 16
};

// `weights` [C][taps] int8 (OHWI with one input channel), `bias` folded.
PackedDwconvAvx2 pack_dwconv_avx2(const int8_t* weights, size_t channels, size_t taps, const int32_t* bias,
                                  const std::vector<QuantizedMultiplier>& multipliers);

constexpr size_t kDwconvMaxTaps = 64;

// Output rows (batch * out_h + oy) [row_begin, row_end). `zero_row` holds in_c copies of the
// input zero point: padded taps read it.
void dwconv_u8s8_16c2__avx2(const PackedDwconvAvx2& w, const ConvParams& p, const uint8_t* x, const uint8_t* zero_row,
                            uint8_t* y, size_t row_begin, size_t row_end);

}  // namespace intinfer
