// The loop nest shared by every GEMM micro-kernel: rows in tiles of MR, output channels in
// column tiles; ISA-neutral (the accumulator type is the kernel's).
#pragma once

#include <cstddef>

namespace intinfer {
namespace {

// RowAcc is one row's accumulators (e.g. __m256i[2] or int32x4_t[4]). prepare(r0, mr) readies
// rows [r0, r0 + mr) for the micro-kernel; tile(t, acc) computes the accumulators of column tile
// t for those rows; store(row, t, acc[r]) writes one row.
template <size_t MR, typename RowAcc, typename Prepare, typename Tile, typename Store>
void for_each_gemm_tile(size_t rows, size_t tile_begin, size_t tile_end, Prepare&& prepare, Tile&& tile,
                        Store&& store) {
  RowAcc acc[MR];
  for (size_t r0 = 0; r0 < rows; r0 += MR) {
    const size_t mr = rows - r0 < MR ? rows - r0 : MR;
    prepare(r0, mr);
    for (size_t t = tile_begin; t < tile_end; ++t) {
      tile(t, acc);
      for (size_t r = 0; r < mr; ++r) store(r0 + r, t, acc[r]);
    }
  }
}

}  // namespace
}  // namespace intinfer
