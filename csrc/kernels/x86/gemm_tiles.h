// The loop nest shared by the GEMM micro-kernels (gemm_avx2.cc, gemm_avxvnni.cc): rows in tiles
// of 4, output channels in tiles of 16. Included only by files compiled for AVX2.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace intinfer {

constexpr size_t kGemmMR = 4;   // rows per micro-tile
constexpr size_t kGemmNR = 16;  // output channels per micro-tile (two ymm of int32)

// prepare(r0, mr) readies rows [r0, r0 + mr) for the micro-kernel; tile(t, acc) computes the
// accumulators of channel tile t for those rows; store(row, t, acc0, acc1) writes one row.
template <typename Prepare, typename Tile, typename Store>
void for_each_gemm_tile(size_t rows, size_t tile_begin, size_t tile_end, Prepare&& prepare, Tile&& tile,
                        Store&& store) {
  __m256i acc[kGemmMR][2];
  for (size_t r0 = 0; r0 < rows; r0 += kGemmMR) {
    const size_t mr = rows - r0 < kGemmMR ? rows - r0 : kGemmMR;
    prepare(r0, mr);
    for (size_t t = tile_begin; t < tile_end; ++t) {
      tile(t, acc);
      for (size_t r = 0; r < mr; ++r) store(r0 + r, t, acc[r][0], acc[r][1]);
    }
  }
}

}  // namespace intinfer
