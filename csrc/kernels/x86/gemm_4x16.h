// The 4 x 16 GEMM micro-kernel of the x86 256-bit paths, one template over a MAC policy, and its
// row/tile driver. Included only by ISA-flagged units, each with its own policy; everything here
// has internal linkage (an anonymous namespace), so each unit keeps its own copy compiled with
// its own flags and none can be picked by the linker for another (docs/kernels.md).
//
// A policy supplies:
//   kKr, kElemBytes   k per 32-bit group of one row's prepared activations, and their width
//   prepare(x, x_stride, mr, k, k_pad, out)
//                     rows [0, mr) of x as the micro-kernel reads them, k padded to k_pad with
//                     zeros; rows mr..3 all zeros (row r at out + r * k_pad * kElemBytes)
//   mac(acc, x, w)    acc + the kKr-term dot products of one broadcast group x with 8 channels
// Weights: PackedWeights with TileLayout{4, 16, kKr, kKr, ...}: per group, 16 channels x kKr
// codes, 64 bytes for both policies (vpmaddwd: 2 x int16, vpdpbusd: 4 x int8).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../gemm_tiles.h"
#include "../pack.h"
#include "requant_avx2.h"

namespace intinfer {
namespace {

constexpr size_t kGemmMR = 4;
constexpr size_t kGemmNR = 16;

// acc[r][h] (h: channels 0-7, 8-15 of the tile) = sum over the groups of a[r] . b.
template <typename Mac>
inline void gemm_micro_tile(const uint8_t* a, size_t groups, const uint8_t* b, __m256i acc[kGemmMR][2]) {
  // Local accumulators, stored to acc once at the end: acc itself may alias the weights (vector
  // loads may alias anything), which makes the compiler shuffle and spill them every step.
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const int32_t* a0 = reinterpret_cast<const int32_t*>(a);
  const int32_t* a1 = a0 + groups;
  const int32_t* a2 = a1 + groups;
  const int32_t* a3 = a2 + groups;
  for (size_t g = 0; g < groups; ++g) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + g * 64));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + g * 64 + 32));
    __m256i x = _mm256_set1_epi32(a0[g]);
    c00 = Mac::mac(c00, x, w0);
    c01 = Mac::mac(c01, x, w1);
    x = _mm256_set1_epi32(a1[g]);
    c10 = Mac::mac(c10, x, w0);
    c11 = Mac::mac(c11, x, w1);
    x = _mm256_set1_epi32(a2[g]);
    c20 = Mac::mac(c20, x, w0);
    c21 = Mac::mac(c21, x, w1);
    x = _mm256_set1_epi32(a3[g]);
    c30 = Mac::mac(c30, x, w0);
    c31 = Mac::mac(c31, x, w1);
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
  acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
}

// The GemmFn of tables.h for one policy.
template <typename Mac>
void gemm_4x16(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
               size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch_bytes) {
  uint8_t* scratch = static_cast<uint8_t*>(scratch_bytes);
  const uint8_t* codes = static_cast<const uint8_t*>(w.weights);
  const size_t groups = w.k_pad / Mac::kKr;
  auto drive = [&](auto&& store) {
    for_each_gemm_tile<kGemmMR, __m256i[2], false>(
        rows, tile_begin, tile_end,
        [&](size_t r0, size_t mr) { Mac::prepare(x + r0 * x_stride, x_stride, mr, w.k, w.k_pad, scratch); },
        [&](size_t t, __m256i acc[kGemmMR][2]) { gemm_micro_tile<Mac>(scratch, groups, codes + t * groups * 64, acc); },
        [&](size_t r, size_t t, const __m256i* acc) { store(r, t * kGemmNR, acc[0], acc[1]); });
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
