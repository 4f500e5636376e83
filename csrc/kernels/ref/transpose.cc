#include <cstring>

#include "kernels.h"

namespace intinfer {
namespace {

// Output rows of kN elements from kN input columns (column i at src + i * s): an image's 3 or 4
// channels interleaved, a row of kN stores a step (3.3 instructions an element on aarch64 for 3
// channels, against 5 for the column-by-column loop below).
template <int kN, typename T>
void interleave_columns(const T* src, int64_t s, T* y, int64_t m) {
  for (int64_t j = 0; j < m; ++j)
    for (int i = 0; i < kN; ++i) y[j * kN + i] = src[i * s + j];
}

// bytes from src to y: 16 at a time inline, the rest by memcpy. An attention head's row (32 bytes
// at head size 32) in two vector loads and stores instead of a call to memcpy: all-MiniLM-L6-v2
// at 128 tokens, 2.4 -> 1.9 M instructions in its 24 head splits on cortex-a53.
inline void copy_block(const void* src, void* y, size_t bytes) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(y);
  size_t i = 0;
  for (; i + 16 <= bytes; i += 16) std::memcpy(d + i, s + i, 16);
  if (i < bytes) std::memcpy(d + i, s + i, bytes - i);
}

// The innermost output dimension is copied in one strided loop per row, or as one block when it
// is the input's innermost too (a permutation of whole rows: attention's head split and merge).
// Where the input's innermost dimension becomes the output's second innermost (NCHW -> NHWC), each
// block of the last two output dimensions is moved column by column instead: contiguous reads, and
// one loop per column rather than per row of a few elements; an image's 3 or 4 channels a row at
// a time (interleave_columns).
template <typename T>
void transpose_rows(const T* x, T* y, int rank, const int64_t* out_shape, const int64_t* step) {
  const bool columns = rank >= 2 && step[rank - 2] == 1 && step[rank - 1] != 1;
  const int block_rank = columns ? 2 : 1;  // output dimensions moved per step of the outer loop
  int64_t idx[8] = {0};
  int64_t blocks = 1;
  for (int d = 0; d + block_rank < rank; ++d) blocks *= out_shape[d];
  const int64_t n = out_shape[rank - 1], s = step[rank - 1];
  const int64_t m = columns ? out_shape[rank - 2] : 1;
  int64_t offset = 0;  // of the block's first element in x
  for (int64_t b = 0; b < blocks; ++b) {
    const T* src = x + offset;
    if (columns && n == 3) {
      interleave_columns<3>(src, s, y, m);
    } else if (columns && n == 4) {
      interleave_columns<4>(src, s, y, m);
    } else if (columns) {
      for (int64_t i = 0; i < n; ++i) {
        const T* column = src + i * s;
        T* out = y + i;
        for (int64_t j = 0; j < m; ++j) out[j * n] = column[j];
      }
    } else if (s == 1) {
      copy_block(src, y, static_cast<size_t>(n) * sizeof(T));
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] = src[i * s];
    }
    y += m * n;
    for (int d = rank - block_rank - 1; d >= 0; --d) {
      offset += step[d];
      if (++idx[d] < out_shape[d]) break;
      offset -= step[d] * out_shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

void transpose__ref(const uint8_t* x, uint8_t* y, size_t elem_size, int rank, const int64_t* shape,
                    const int64_t* perm) {
  int64_t in_stride[8], out_shape[8], step[8];
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    in_stride[d] = s;
    s *= shape[d];
  }
  for (int d = 0; d < rank; ++d) {
    out_shape[d] = shape[perm[d]];
    step[d] = in_stride[perm[d]];
  }
  if (elem_size == 1) {
    transpose_rows(x, y, rank, out_shape, step);
  } else {  // 4-byte elements (float32, int32), moved as raw bits
    transpose_rows(reinterpret_cast<const uint32_t*>(x), reinterpret_cast<uint32_t*>(y), rank, out_shape, step);
  }
}

}  // namespace intinfer
