// Block-sparse int8 weights where a constant holds them: the block_sparse encoding of
// docs/format.md (u32 block length B, u32 block count, u32 row_start[rows + 1], u32
// block_column[blocks], then the blocks' int8 values, B each; rows of the constant's last
// dimension), read in place. The reader has validated every index (core/format.cc); the
// reference kernels, the packer and the weights' validation read the encoding through this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace intinfer {

class BlockSparseRows {
 public:
  // `data`: the constant's bytes, `channels` x `depth` codes whose last dimension (a row of the
  // encoding) is `row_length` codes: a channel is depth / row_length rows (a conv's OHWI
  // channel is its KH x KW rows).
  BlockSparseRows(const void* data, size_t channels, size_t depth, size_t row_length)
      : data_(static_cast<const uint8_t*>(data)),
        per_channel_(depth / row_length),
        rows_(channels * per_channel_),
        length_(row_length) {}

  size_t block() const { return u32(0); }
  size_t blocks() const { return u32(4); }
  // Bytes of the encoding.
  size_t bytes() const { return 8 + 4 * (rows_ + 1) + 4 * blocks() + blocks() * block(); }

  // f(k, values) for each stored block of channel c, in order: k is the block's first reduction
  // index within the channel, `values` its B codes.
  template <typename F>
  void for_each(size_t c, F&& f) const {
    const size_t b_len = block(), columns = 8 + 4 * (rows_ + 1);
    const auto* values = reinterpret_cast<const int8_t*>(data_ + columns + 4 * blocks());
    for (size_t r = c * per_channel_; r < (c + 1) * per_channel_; ++r)
      for (size_t b = u32(8 + 4 * r); b < u32(8 + 4 * (r + 1)); ++b)
        f((r - c * per_channel_) * length_ + u32(columns + 4 * b) * b_len, values + b * b_len);
  }

 private:
  size_t u32(size_t offset) const {
    uint32_t v;
    std::memcpy(&v, data_ + offset, sizeof v);
    return v;
  }

  const uint8_t* data_;
  size_t per_channel_, rows_, length_;
};

}  // namespace intinfer
