// The 4 x 16 GEMM micro-kernel of the x86 256-bit paths, one template over a MAC policy, and its
// row/tile driver. Included only by ISA-flagged units, each with its own policy; everything here
// has internal linkage (an anonymous namespace), so each unit keeps its own copy compiled with
// its own flags and none can be picked by the linker for another (docs/kernels.md).
//
// A policy supplies:
//   kKr, kElemBytes   k per 32-bit group of one row's prepared activations, and their width
//   prepare(x, x_stride, mr, k, k_pad, out)
//                     rows [0, mr) of x as the micro-kernel reads them, k padded to k_pad with
//                     zeros; rows mr..3 all zeros (row r at out + r * k_pad * kElemBytes);
//                     PrepareU8 for uint8 quads, PrepareFlippedU8 for x - 128
//   mac(p, x, w)      p + the kKr-term dot products of one broadcast group x with 8 channels,
//                     into a partial sum p
//   kBlock, flush(acc, p)
//                     how many groups a partial sum may take (its lanes narrower than int32:
//                     vpmaddubsw's int16), and acc + p in int32 lanes (Int32Partials: 1, the
//                     partial sums are the int32 accumulators, no flush)
//   kGroupBytes, load(b, w0, w1)
//                     the bytes of one group of packed weights, and its codes as mac() takes
//                     them, channels 0-7 and 8-15 (DenseGroups: two 32-byte loads)
// and optionally:
//   kCodeOffset       the codes are stored as c + kCodeOffset (TileLayout code_offset) and
//                     multiplied by the flipped activations x - 128; the driver subtracts
//                     kCodeOffset * sum_k (x - 128) from each row's accumulators
//   kRowChains = 4    the one-row kernel sums four chains of groups (a mac that accumulates in
//                     place, vpdpbusd, is a chain as slow as its latency)
// Weights: PackedWeights with TileLayout{4, 16, kKr, kKr, ...}: per group, 16 channels x kKr
// codes, 64 bytes for the dense policies (vpmaddwd: 2 x int16, vpdpbusd: 4 x int8), 32 and 16
// for 4- and 2-bit codes unpacked in registers (sub-byte tiles, pack.h).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../gemm_tiles.h"
#include "../pack.h"
#include "gemm_rows_x86.h"
#include "requant_avx2.h"

namespace intinfer {
namespace {

constexpr size_t kGemmMR = 4;
constexpr size_t kGemmNR = 16;

// Groups of weights as they are multiplied: 64 bytes, two vectors.
struct DenseGroups {
  static constexpr size_t kGroupBytes = 64;
  static void load(const uint8_t* b, __m256i& w0, __m256i& w1) {
    w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32));
  }
};

// Partial sums that are int32 lanes already: the accumulators themselves (no flush).
struct Int32Partials {
  static constexpr size_t kBlock = 1;
};

// Activations as uint8 quads (vpdpbusd, vpmaddubsw): rows [0, mr) of x copied, k padded with
// zeros to k_pad, rows mr..3 all zeros.
struct PrepareU8 {
  static constexpr size_t kElemBytes = 1;
  static void prepare(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, uint8_t* scratch) {
    copy_rows_u8(x, x_stride, mr, kGemmMR, k, k_pad, scratch);
  }
};

// A policy's optional members (above), with their defaults.
template <typename Mac, typename = void>
struct CodeOffset : std::integral_constant<int32_t, 0> {};
template <typename Mac>
struct CodeOffset<Mac, std::void_t<decltype(Mac::kCodeOffset)>> : std::integral_constant<int32_t, Mac::kCodeOffset> {};
template <typename Mac, typename = void>
struct RowChains : std::integral_constant<size_t, 1> {};
template <typename Mac>
struct RowChains<Mac, std::void_t<decltype(Mac::kRowChains)>> : std::integral_constant<size_t, Mac::kRowChains> {};

// Activations flipped to int8 quads x - 128 (TileLayout act_offset 128: the packer adds 128 *
// sum(w) to the bias): rows [0, mr) of x, k padded with zeros (x' = 0), rows mr..3 all zeros.
struct PrepareFlippedU8 {
  static constexpr size_t kElemBytes = 1;
  static void prepare(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, uint8_t* scratch) {
    flip_rows_u8(x, x_stride, mr, kGemmMR, k, k_pad, scratch);
  }
};

// 4-bit codes stored as u = c + 8 in [1, 15] (TileLayout code_offset 8; pack.h's sub-byte tiles,
// 16 channels x 4 k a group, 32 bytes: the low nibbles are codes 0-31, the high ones 32-63), the
// unsigned operand of the multiply against the flipped activations x' (PrepareFlippedU8):
// sum u x' = sum c x' + 8 sum x', so the driver subtracts kCodeOffset * sum x' of each row, and
// sum c x' = sum c x - 128 sum c is the flip's (bias). A mask and a shift give u: no table lookup.
struct OffsetS4Groups {
  static constexpr size_t kGroupBytes = 32;
  static constexpr int32_t kCodeOffset = 8;
  static void load(const uint8_t* b, __m256i& w0, __m256i& w1) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    w0 = _mm256_and_si256(v, nibble);
    w1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
  }
};

// acc[r][h] (h: channels 0-7, 8-15 of the tile) = sum over the groups of a[r] . b, in blocks of
// Mac::kBlock groups summed in partials first.
template <typename Mac>
inline void gemm_micro_tile(const uint8_t* a, size_t groups, const uint8_t* b, __m256i acc[kGemmMR][2]) {
  // Local accumulators, stored to acc once at the end: acc itself may alias the weights (vector
  // loads may alias anything), which makes the compiler shuffle and spill them every step.
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const int32_t* a0 = reinterpret_cast<const int32_t*>(a);
  const int32_t* a1 = a0 + groups;
  const int32_t* a2 = a1 + groups;
  const int32_t* a3 = a2 + groups;
  // One block of groups [g0, g1) into the accumulators, through partials p.
  auto block = [&](size_t g0, size_t g1, __m256i p00, __m256i p01, __m256i p10, __m256i p11, __m256i p20,
                   __m256i p21, __m256i p30, __m256i p31) {
    for (size_t g = g0; g < g1; ++g) {
      __m256i w0, w1;
      Mac::load(b + g * Mac::kGroupBytes, w0, w1);
      __m256i x = _mm256_set1_epi32(a0[g]);
      p00 = Mac::mac(p00, x, w0);
      p01 = Mac::mac(p01, x, w1);
      x = _mm256_set1_epi32(a1[g]);
      p10 = Mac::mac(p10, x, w0);
      p11 = Mac::mac(p11, x, w1);
      x = _mm256_set1_epi32(a2[g]);
      p20 = Mac::mac(p20, x, w0);
      p21 = Mac::mac(p21, x, w1);
      x = _mm256_set1_epi32(a3[g]);
      p30 = Mac::mac(p30, x, w0);
      p31 = Mac::mac(p31, x, w1);
    }
    if constexpr (Mac::kBlock == 1) {
      c00 = p00, c01 = p01, c10 = p10, c11 = p11, c20 = p20, c21 = p21, c30 = p30, c31 = p31;
    } else {
      c00 = Mac::flush(c00, p00), c01 = Mac::flush(c01, p01), c10 = Mac::flush(c10, p10), c11 = Mac::flush(c11, p11);
      c20 = Mac::flush(c20, p20), c21 = Mac::flush(c21, p21), c30 = Mac::flush(c30, p30), c31 = Mac::flush(c31, p31);
    }
  };
  if constexpr (Mac::kBlock == 1) {
    // int32 partials: the accumulators themselves, all groups in one block.
    block(0, groups, c00, c01, c10, c11, c20, c21, c30, c31);
  } else {
    // Whole blocks (a constant trip count, unrolled), then the rest.
    const __m256i z = _mm256_setzero_si256();
    size_t g0 = 0;
    for (; groups - g0 >= Mac::kBlock; g0 += Mac::kBlock) block(g0, g0 + Mac::kBlock, z, z, z, z, z, z, z, z);
    if (g0 < groups) block(g0, groups, z, z, z, z, z, z, z, z);
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
  acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
}

// The same for one row (a batch-1 GEMV: the weights are read once for one row, and the four-row
// tile would multiply three rows of zeros).
template <typename Mac>
inline void gemm_micro_row(const uint8_t* a, size_t groups, const uint8_t* b, __m256i acc[kGemmMR][2]) {
  __m256i c0 = _mm256_setzero_si256(), c1 = c0;
  const int32_t* a0 = reinterpret_cast<const int32_t*>(a);
  auto block = [&](size_t g0, size_t g1, __m256i p0, __m256i p1) {
    for (size_t g = g0; g < g1; ++g) {
      __m256i w0, w1;
      Mac::load(b + g * Mac::kGroupBytes, w0, w1);
      const __m256i x = _mm256_set1_epi32(a0[g]);
      p0 = Mac::mac(p0, x, w0);
      p1 = Mac::mac(p1, x, w1);
    }
    if constexpr (Mac::kBlock == 1)
      c0 = p0, c1 = p1;
    else
      c0 = Mac::flush(c0, p0), c1 = Mac::flush(c1, p1);
  };
  static_assert(RowChains<Mac>::value == 1 || RowChains<Mac>::value == 4, "one chain or four");
  if constexpr (RowChains<Mac>::value == 4) {
    static_assert(Mac::kBlock == 1, "the chains are int32 accumulators: no partial sums to flush");
    // The multiply adds into its accumulator itself (vpdpbusd), a chain as slow as its latency:
    // four chains, a group each in turn, keep the multiplier busy (the four-row tile has eight).
    __m256i lo[4] = {c0, c0, c0, c0}, hi[4] = {c0, c0, c0, c0};  // channels 0-7, 8-15
    auto step = [&](size_t g, size_t chain) {
      __m256i w0, w1;
      Mac::load(b + g * Mac::kGroupBytes, w0, w1);
      const __m256i x = _mm256_set1_epi32(a0[g]);
      lo[chain] = Mac::mac(lo[chain], x, w0);
      hi[chain] = Mac::mac(hi[chain], x, w1);
    };
    size_t g = 0;
    for (; g + 4 <= groups; g += 4)
      for (size_t j = 0; j < 4; ++j) step(g + j, j);
    for (; g < groups; ++g) step(g, 0);
    c0 = _mm256_add_epi32(_mm256_add_epi32(lo[0], lo[1]), _mm256_add_epi32(lo[2], lo[3]));
    c1 = _mm256_add_epi32(_mm256_add_epi32(hi[0], hi[1]), _mm256_add_epi32(hi[2], hi[3]));
  } else if constexpr (Mac::kBlock == 1) {
    block(0, groups, c0, c1);
  } else {
    const __m256i z = _mm256_setzero_si256();
    size_t g0 = 0;
    for (; groups - g0 >= Mac::kBlock; g0 += Mac::kBlock) block(g0, g0 + Mac::kBlock, z, z);
    if (g0 < groups) block(g0, groups, z, z);
  }
  acc[0][0] = c0, acc[0][1] = c1;
}

// The GemmFn of tables.h for one policy.
template <typename Mac>
void gemm_4x16(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
               size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch_bytes) {
  uint8_t* scratch = static_cast<uint8_t*>(scratch_bytes);
  const uint8_t* codes = static_cast<const uint8_t*>(w.weights);
  const size_t groups = w.k_pad / Mac::kKr;
  constexpr int32_t kOffset = CodeOffset<Mac>::value;
  bool one_row = false;
  int32_t row_term[kGemmMR] = {};
  auto drive = [&](auto&& store) {
    for_each_gemm_tile<kGemmMR, __m256i[2]>(
        rows, tile_begin, tile_end,
        [&](size_t r0, size_t mr) {
          Mac::prepare(x + r0 * x_stride, x_stride, mr, w.k, w.k_pad, scratch);
          one_row = mr == 1;
          if constexpr (kOffset != 0)
            for (size_t r = 0; r < mr; ++r) row_term[r] = offset_row_term(x + (r0 + r) * x_stride, w.k, kOffset);
        },
        [&](size_t t, __m256i acc[kGemmMR][2]) {
          const uint8_t* b = codes + t * groups * Mac::kGroupBytes;
          if (one_row)
            gemm_micro_row<Mac>(scratch, groups, b, acc);
          else
            gemm_micro_tile<Mac>(scratch, groups, b, acc);
        },
        [&](size_t r, size_t t, const __m256i* acc) {
          if constexpr (kOffset != 0) {
            const __m256i term = _mm256_set1_epi32(row_term[r % kGemmMR]);
            store(r, t * kGemmNR, _mm256_sub_epi32(acc[0], term), _mm256_sub_epi32(acc[1], term));
          } else {
            store(r, t * kGemmNR, acc[0], acc[1]);
          }
        });
  };
  if (w.output_scales != nullptr) {
    float* yf = static_cast<float*>(y);
    drive([&](size_t r, size_t c, __m256i a0, __m256i a1) {
      store_f32x16(w.bias, w.output_scales, w.n, yf + r * y_stride, c, a0, a1);
    });
    return;
  }
  uint8_t* yu = static_cast<uint8_t*>(y);
  const OutputStageAvx2 stage(w.bias, w.multiplier, w.left_shift, w.right_shift, w.n, out.zero_point, out.act_min,
                              out.act_max);
  drive([&](size_t r, size_t c, __m256i a0, __m256i a1) {
    store_u8x16(yu + r * y_stride + c, stage.apply16(a0, a1, c), w.n - c < kGemmNR ? w.n - c : kGemmNR);
  });
}

}  // namespace
}  // namespace intinfer
