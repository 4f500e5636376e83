// Block-sparse int8 weights where a constant holds them, read in place: the block_sparse and
// block_bitmap encodings of docs/format.md (u32 block length B, u32 block count, the index of the
// stored blocks, then their int8 values, B each; rows of the constant's last dimension). The
// index is u32 row_start[rows + 1] and u32 block_column[blocks] (block_sparse), or a bitmap of
// ceil(K / B / 8) bytes a row, bit j of a row (byte j / 8, bit j % 8) set for a stored block j
// (block_bitmap). The reader has validated every index (core/format.cc); the reference kernels,
// the packer and the weights' validation read the encodings through this.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "weight_format.h"

namespace intinfer {

class BlockSparseRows {
 public:
  // `data`: the constant's bytes, `channels` x `depth` codes whose last dimension (a row of the
  // encoding) is `row_length` codes: a channel is depth / row_length rows (a conv's OHWI
  // channel is its KH x KW rows).
  BlockSparseRows(const void* data, WeightFormat::BlockIndex index, size_t channels, size_t depth,
                  size_t row_length)
      : data_(static_cast<const uint8_t*>(data)),
        bitmap_(index == WeightFormat::BlockIndex::kBitmap),
        per_channel_(depth / row_length),
        rows_(channels * per_channel_),
        length_(row_length) {
    if (!bitmap_) return;
    starts_.assign(1, 0);
    for (size_t r = 0; r < rows_; ++r) {
      size_t count = starts_.back();
      const uint8_t* map = data_ + 8 + r * map_row_bytes();
      for (size_t i = 0; i < map_row_bytes(); ++i) count += std::bitset<8>(map[i]).count();
      starts_.push_back(count);
    }
  }

  size_t block() const { return u32(0); }
  size_t blocks() const { return u32(4); }

  // f(k, values) for each stored block of channel c, in order: k is the block's first reduction
  // index within the channel, `values` its B codes.
  template <typename F>
  void for_each(size_t c, F&& f) const {
    const size_t b_len = block(), positions = length_ / b_len;
    const auto* values = reinterpret_cast<const int8_t*>(data_ + 8 + index_bytes());
    for (size_t r = c * per_channel_; r < (c + 1) * per_channel_; ++r) {
      const size_t k_row = (r - c * per_channel_) * length_;
      if (bitmap_) {
        const uint8_t* map = data_ + 8 + r * map_row_bytes();
        size_t b = starts_[r];
        for (size_t j = 0; j < positions; ++j)
          if ((map[j / 8] >> (j % 8)) & 1) f(k_row + j * b_len, values + b++ * b_len);
      } else {
        const size_t columns = 8 + 4 * (rows_ + 1);
        for (size_t b = u32(8 + 4 * r); b < u32(8 + 4 * (r + 1)); ++b)
          f(k_row + u32(columns + 4 * b) * b_len, values + b * b_len);
      }
    }
  }

 private:
  size_t map_row_bytes() const { return (length_ / block() + 7) / 8; }
  size_t index_bytes() const { return bitmap_ ? rows_ * map_row_bytes() : 4 * (rows_ + 1) + 4 * blocks(); }
  size_t u32(size_t offset) const {
    uint32_t v;
    std::memcpy(&v, data_ + offset, sizeof v);
    return v;
  }

  const uint8_t* data_;
  bool bitmap_;
  size_t per_channel_, rows_, length_;
  std::vector<size_t> starts_;  // bitmap: the stored blocks before each row (the index's row_start)
};

}  // namespace intinfer
