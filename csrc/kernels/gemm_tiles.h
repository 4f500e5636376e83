// The loop nest of the x86 GEMMs: rows in tiles of MR, output channels in column tiles (the NEON
// GEMM and MATMUL drivers write their own, with a tile's stores together: arm/gemm_4xn.h,
// arm/matmul_neon.h); for_rows; and the int16 rows' prepare step of the wide-input GEMMs.
// ISA-neutral (the accumulator type is the kernel's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace intinfer {
namespace {

// f(std::integral_constant<size_t, R>) for R = 0 .. kRows - 1, written out: with constant
// indices the compiler can keep a tile's accumulators in registers from the micro-kernel through
// the output stage (a loop over a run-time row count indexes the array, which then lives in
// memory).
template <size_t kRows, typename F, size_t... R>
[[gnu::always_inline]] inline void for_rows(F&& f, std::index_sequence<R...>) {
  (f(std::integral_constant<size_t, R>{}), ...);
}
template <size_t kRows, typename F>
[[gnu::always_inline]] inline void for_rows(F&& f) {
  for_rows<kRows>(f, std::make_index_sequence<kRows>{});
}

// RowAcc is one row's accumulators (e.g. __m256i[2] or int32x4_t[4]). prepare(r0, mr) readies
// rows [r0, r0 + mr) for the micro-kernel; tile(t, acc) computes the accumulators of column tile
// t for those rows; store(row, t, acc[r]) writes one row.
// The rows' stores are a loop: AVX2's 16 vector registers cannot hold a tile's accumulators
// through the output stage, and with the stores written out (for_rows) they spilled (x86
// EfficientNet-Lite0 142.3 -> 161.5 M instructions, callgrind). The NEON GEMM and MATMUL drivers
// (arm/gemm_4xn.h, arm/matmul_neon.h) write their own nests, stores written out: NEON's 32
// registers hold a 4 x 16 tile's accumulators (cortex-a76 108.1 -> 104.1 M, cortex-a53
// 186.5 -> 180.6 M under qemu, when the NEON GEMMs ran this nest).
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

// The prepare step of the GEMMs of a wide input (int16 activations, row stride x_stride bytes):
// rows [0, mr) copied with k padded to k_pad with zeros, rows mr..MR-1 all zeros, row r at
// out + r * k_pad.
template <size_t MR>
void copy_rows_s16(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, int16_t* out) {
  for (size_t r = 0; r < MR; ++r) {
    int16_t* o = out + r * k_pad;
    std::memset(o, 0, k_pad * sizeof(int16_t));
    if (r < mr) std::memcpy(o, x + r * x_stride, k * sizeof(int16_t));
  }
}

}  // namespace
}  // namespace intinfer
