// The activation rows of the x86 GEMMs as their micro-kernels read them (the prepare step of
// gemm_4x16.h's policies and of the AVX-512 GEMM), and the row term of codes stored with an
// offset, and the rows' quads of the block-sparse GEMMs. AVX2 code with internal linkage, included
// only by ISA-flagged units (gemm_4x16.h and the x86 GEMM units).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace intinfer {
namespace {

// Rows [0, mr) of x (row stride x_stride) copied as uint8 quads, k padded with zeros to k_pad,
// rows mr .. tile_rows - 1 all zeros; row r at out + r * k_pad.
inline void copy_rows_u8(const uint8_t* x, size_t x_stride, size_t mr, size_t tile_rows, size_t k, size_t k_pad,
                         uint8_t* out) {
  for (size_t r = 0; r < tile_rows; ++r) {
    uint8_t* o = out + r * k_pad;
    std::memset(o, 0, k_pad);
    if (r < mr) std::memcpy(o, x + r * x_stride, k);
  }
}

// The same flipped to int8 x - 128 (TileLayout act_offset 128: the packer adds 128 * sum(w) to the
// bias); the padding is x' = 0.
inline void flip_rows_u8(const uint8_t* x, size_t x_stride, size_t mr, size_t tile_rows, size_t k, size_t k_pad,
                         uint8_t* out) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (size_t r = 0; r < tile_rows; ++r) {
    uint8_t* o = out + r * k_pad;
    size_t i = 0;
    if (r < mr) {
      const uint8_t* xr = x + r * x_stride;
      for (; i + 32 <= k; i += 32)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i),
                            _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + i)), flip));
      for (; i < k; ++i) o[i] = xr[i] ^ 0x80;
    }
    for (; i < k_pad; ++i) o[i] = 0;
  }
}

// Rows [0, rows) of x as quads for R rows a pass, the layout of the block-sparse GEMMs: group q
// of row r at (q * R + r) * 4, each byte x ^ flip (0x80: x - 128 as int8 bits; 0: x as it is);
// zeros past k and in rows rows..R-1.
template <size_t R>
void quads_by_group(const uint8_t* x, size_t x_stride, size_t rows, size_t k, size_t k_pad, uint8_t flip,
                    uint8_t* prep) {
  constexpr size_t kQuad = 4;
  const uint32_t flip4 = flip * 0x01010101u;
  if (rows < R || k < k_pad) std::memset(prep, 0, k_pad * R);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* xr = x + r * x_stride;
    uint8_t* d = prep + r * kQuad;
    size_t i = 0;
    for (; i + kQuad <= k; i += kQuad, d += R * kQuad) {
      uint32_t v;
      std::memcpy(&v, xr + i, sizeof v);
      v ^= flip4;
      std::memcpy(d, &v, sizeof v);
    }
    for (; i < k; ++i) prep[(i / kQuad * R + r) * kQuad + i % kQuad] = xr[i] ^ flip;
  }
}

// sum_k x[k] over one row of k uint8 activations.
inline int64_t row_sum_u8(const uint8_t* x, size_t k) {
  __m256i sums = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= k; i += 32)
    sums = _mm256_add_epi64(sums, _mm256_sad_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)),
                                                  _mm256_setzero_si256()));
  alignas(32) int64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sums);
  int64_t sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < k; ++i) sum += x[i];
  return sum;
}

// kOffset * sum_k (x[k] - 128) over one row of k uint8 activations: the row term of codes stored
// with an offset (within int32: the load's accumulator bound keeps k below 2^31 / (255 x 7) for
// int4, 2^31 / 255 for int2, and the term below 8 x 128 x k, 128 x k).
inline int32_t offset_row_term(const uint8_t* x, size_t k, int32_t offset) {
  return static_cast<int32_t>(offset * (row_sum_u8(x, k) - 128 * static_cast<int64_t>(k)));
}

}  // namespace
}  // namespace intinfer
