// The one weight packer of the optimized kernels, and the views they read. Baseline code (built
// without ISA flags): ISA-flagged units receive plain pointers (PackedView) and never own,
// allocate or copy, so that no std:: code is compiled with their flags (docs/kernels.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "params.h"
#include "weight_format.h"

namespace intinfer {

// How a micro-kernel reads its weights: tiles of `nr` output channels; within a tile, groups of
// `kr` consecutive reduction indices (k of a GEMM, taps of a depthwise conv), each group holding
// kr codes per channel, channel by channel in `lane_order` (lane i of the tile at position
// lane_order[i]; null: in order). The reduction is padded with zeros to a multiple of k_align
// (a multiple of kr), the channels to a multiple of nr. nr = 0: no packing, the kernel reads the
// validated weights where they are ([n][k], the reference rows).
//
// Sub-byte tiles (code_bits 4 or 2; elem_bytes 1): each group's G = nr x kr codes, laid out as
// above, are compressed into B = G x code_bits / 8 bytes, code j of the group in byte j mod B at
// bits (j / B) x code_bits, two's complement, or with code_offset the unsigned c + code_offset: a
// kernel loads B bytes and gets its codes in order by masking and shifting whole vectors (for the
// 16 x 4 groups of G = 64 at 4 bits: the low nibbles of 32 bytes are codes 0-31, the high nibbles
// 32-63).
//
// Block-sparse weights (WeightFormat::Layout::kBlockSparse) are regrouped, whatever the file's
// block, into groups of kr consecutive reduction indices starting at multiples of kr, kept where
// a code is non-zero: channel c's groups are [group_start[c], group_start[c + 1]), group g starts
// at reduction index group_k[g] and holds kr codes of elem_bytes (zeros where the file has none);
// seven groups of zero codes at index 0 follow the last, so that a kernel may load eight groups
// from any group.
// The reference rows (nr = 0) read them too, with kr = 1: one entry per non-zero code.
struct TileLayout {
  uint16_t mr = 1;          // GEMM rows per micro-tile: its activation scratch holds mr padded rows
  uint16_t nr = 0;
  uint16_t kr = 1;
  uint16_t k_align = 1;
  uint8_t elem_bytes = 1;   // code and prepared activation width: 1 (int8) or 2 (int16)
  int32_t act_offset = 0;   // the kernel multiplies x - act_offset (SDOT: x - 128): bias += act_offset * sum_k w
  const uint8_t* lane_order = nullptr;
  uint8_t code_bits = 8;    // 8 (codes of elem_bytes), or 4 / 2: sub-byte tiles (above)
  uint8_t code_offset = 0;  // sub-byte tiles: each code c stored as c + code_offset (0: two's complement)
};

// The shifts a uint8 output stage's n channels take (the NEON output stage is specialised on
// it; the padding channels past n, never stored, are left out).
enum class RequantShifts : uint8_t {
  kRight,        // every channel shifts right by at least 1 bit (or has a zero multiplier), none left
  kRightOrNone,  // none shifts left, some not at all
  kLeft,         // some channel shifts left
};

// The shifts of `count` multipliers.
RequantShifts requant_shifts(const QuantizedMultiplier* multipliers, size_t count);

// What a kernel reads: the packed codes and the per-channel output stage, padded to whole tiles.
struct PackedView {
  const void* weights;
  const int32_t* bias;                     // folded, + act_offset * sum_k w
  const int32_t* multiplier;               // uint8 output: Q31 multipliers
  const int32_t* left_shift;               // both >= 0, at most one non-zero per channel
  const int32_t* right_shift;
  const QuantizedMultiplier* multipliers;  // uint8 output, unpadded: the reference rows only
  const float* output_scales;              // float output: s_in * s_w[c]; null for a uint8 output
  size_t n, k, k_pad, n_tiles;
  uint8_t code_bits;                       // width of the codes at `weights`: 2, 4, 8 or 16
  const uint32_t* group_start;             // block-sparse weights (TileLayout): [n + 1]; null: dense
  const uint32_t* group_k;                 // block-sparse weights: each group's first reduction index
  RequantShifts shifts;                    // over the n channels of a uint8 output
};

class PackedWeights {
 public:
  // `codes` [n][k] in `format` (int8; int4 / int2 as rows of the packed encoding, codes.h; int16
  // for kWeightsS16; block-sparse int8 in the file's encoding, sparse.h, as rows of `row_length`
  // codes, k / row_length of them a channel), `bias` [n] folded; exactly one of `multipliers` /
  // `output_scales` is non-empty.
  PackedWeights(const TileLayout& layout, const void* codes, const WeightFormat& format, size_t n, size_t k,
                const int32_t* bias, const std::vector<QuantizedMultiplier>& multipliers,
                const std::vector<float>& output_scales, size_t row_length = 0);

  PackedView view() const;
  // Bytes of activation scratch one call of a GEMM kernel needs (mr padded rows).
  size_t scratch_bytes() const { return size_t{layout_.mr} * k_pad_ * layout_.elem_bytes; }
  // Bytes this object holds: the packed codes (none for the reference rows, which read dense
  // weights in the file) and the padded output stage.
  size_t bytes() const;

 private:
  TileLayout layout_;
  const void* source_;
  uint8_t format_bits_;
  size_t n_, k_, k_pad_, n_tiles_;
  std::vector<uint8_t> codes_;
  std::vector<uint32_t> group_start_, group_k_;  // block-sparse weights only
  std::vector<int32_t> bias_, multiplier_, left_shift_, right_shift_;
  std::vector<QuantizedMultiplier> multipliers_;  // in-place (reference) layouts only
  std::vector<float> output_scales_;
  RequantShifts shifts_ = RequantShifts::kRightOrNone;
};

// LAYER_NORM's per-channel output stage (params.h) as the vector kernels load it, padded to a
// multiple of `width` channels.
struct LayerNormView {
  const int32_t *multiplier, *left_shift, *right_shift, *sign, *offset, *bias;
  RequantShifts shifts;  // of the h channels
};
class PackedLayerNorm {
 public:
  PackedLayerNorm(const LayerNormParams& p, size_t width);
  LayerNormView view() const;

 private:
  std::vector<int32_t> multiplier_, left_shift_, right_shift_, sign_, offset_, bias_;
  RequantShifts shifts_;
};

}  // namespace intinfer
