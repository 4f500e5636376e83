// The MATMUL driver of the aarch64 kernels (MatMulFn, tables.h), one template over a policy
// (gemm_neondot.cc: SDOT; gemm_neon_s8pairs.cc: SMULL). Internal linkage like gemm_4xn.h: each
// unit, built with its own flags, keeps its own copy.
//
// sum_k (a - z_a)(b - z_b), with a' = a - 128, b' = b - 128 and z' = z - 128, is
//   sum_k a' b'  -  z_b' sum_k a'  -  z_a' sum_k b'  +  k z_a' z_b':
// the policy's int8 tiles, a term per row and one per column. b' is packed once per call.
//
// The policy:
//   kNR                        columns per tile (kNR / 4 int32x4 accumulators per row)
//   pack(p, b, k_pad, packed, col_sums, kinds)
//                              b' in the tiles `tile` reads (columns past n and k past p.k 0),
//                              col_sums[c] = sum_k b'[k][c] for every column of every tile, and
//                              a byte per tile that the policy's `tile` reads back (its kind)
//   row_sum(sum, v)            sum plus v's 16 int8 lanes, somewhere in its 4 int32 lanes
//   tile(rows, k_pad, b, kind, acc)
//                              acc[r][q] = columns 4q..4q+3 of row r: sum_k a' b' over k_pad
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../gemm_tiles.h"
#include "../params.h"
#include "gemm_4xn.h"

namespace intinfer {
namespace {

constexpr size_t kMatMulKR = 16;  // k is padded to this: the rows' and the tiles' step

// 16 bytes of src of which `valid` (1..16) are real, flipped to x - 128; the others 0 (a product
// of 0 in any dot product).
inline int8x16_t load_flipped(const uint8_t* src, size_t valid) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  if (valid >= 16) return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(src), flip));
  uint8_t tmp[16];
  std::memset(tmp, 0x80, sizeof tmp);
  std::memcpy(tmp, src, valid);
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(tmp), flip));
}

// The low 32 bits of v: the terms are exact modulo 2^32, and so is their sum with the tiles'
// products, which MATMUL's depth limit keeps within int32 (ops/matmul.cc).
inline int32_t low32(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v))); }

// kLeft: the multiplier scales up (a left shift); most MATMULs scale down and skip it.
template <typename Policy, bool kLeft>
void matmul_4xn(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t row_begin,
                size_t row_end, void* scratch) {
  constexpr size_t kNR = Policy::kNR, kQ = kNR / 4;
  // In locals: the output's byte stores may alias p's fields, which the compiler would reload.
  const size_t n = p.n, k = p.k;
  const size_t k_pad = (k + kMatMulKR - 1) / kMatMulKR * kMatMulKR, n_tiles = (n + kNR - 1) / kNR;
  // matmul_scratch_bytes' layout: the tiles, an int32 per column, 4 rows, a byte per tile.
  auto* packed = static_cast<int8_t*>(scratch);
  auto* col_terms = reinterpret_cast<int32_t*>(packed + n_tiles * kNR * k_pad);
  auto* rows = reinterpret_cast<int8_t*>(col_terms + n_tiles * kNR);
  uint8_t* kinds = reinterpret_cast<uint8_t*>(rows + kGemmMR * k_pad);
  Policy::pack(p, b, k_pad, packed, col_terms, kinds);
  const int64_t za = p.a_zero_point - 128, zb = p.b_zero_point - 128;
  for (size_t c = 0; c < n_tiles * kNR; ++c)
    col_terms[c] = low32(static_cast<int64_t>(k) * za * zb - za * col_terms[c]);

  const int32x4_t multiplier = vdupq_n_s32(p.multiplier.multiplier);
  const int32x4_t left = vdupq_n_s32(kLeft ? p.multiplier.shift : 0);
  const int32x4_t neg_right = vdupq_n_s32(kLeft ? 0 : p.multiplier.shift);
  const int32x4_t zero_point = vdupq_n_s32(p.out.zero_point);
  const uint8x16_t lo = vdupq_n_u8(static_cast<uint8_t>(p.out.act_min));
  const uint8x16_t hi = vdupq_n_u8(static_cast<uint8_t>(p.out.act_max));
  int32_t row_terms[kGemmMR];
  auto prepare = [&](size_t r0, size_t mr) {
    // The rows flipped to a' once, padded with 0 (rows past mr all 0), and each row's sum of a'.
    for (size_t r = 0; r < kGemmMR; ++r) {
      const uint8_t* src = r < mr ? a + (row_begin + r0 + r) * k : nullptr;
      int32x4_t sum = vdupq_n_s32(0);
      for (size_t k0 = 0; k0 < k_pad; k0 += kMatMulKR) {
        const int8x16_t v = src != nullptr ? load_flipped(src + k0, std::min(k - k0, kMatMulKR)) : vdupq_n_s8(0);
        vst1q_s8(rows + row_x4_offset(r, k0, k_pad), v);  // the layout of flip_rows_x4
        sum = Policy::row_sum(sum, v);
      }
      row_terms[r] = low32(-zb * vaddvq_s32(sum));
    }
  };
  auto store = [&](size_t r, size_t t, const int32x4_t* acc) {
    const size_t c0 = t * kNR, valid = std::min(n - c0, kNR);
    const int32x4_t row_term = vdupq_n_s32(row_terms[r % kGemmMR]);
    int16x4_t v[kQ];
    for (size_t j = 0; j < kQ; ++j) {
      int32x4_t sum = vaddq_s32(vaddq_s32(acc[j], row_term), vld1q_s32(col_terms + c0 + 4 * j));
      if constexpr (kLeft) sum = vqshlq_s32(sum, left);
      v[j] = vqmovn_s32(vaddq_s32(requantize_right_neon(sum, multiplier, neg_right), zero_point));
    }
    uint8_t* dst = y + (row_begin + r) * n + c0;
    const uint8x8_t low = vqmovun_s16(vcombine_s16(v[0], v[1]));
    if constexpr (kQ == 4)
      store_u8x16(dst, vminq_u8(vmaxq_u8(vcombine_u8(low, vqmovun_s16(vcombine_s16(v[2], v[3]))), lo), hi), valid);
    else
      store_u8x8(dst, vmin_u8(vmax_u8(low, vget_low_u8(lo)), vget_low_u8(hi)), valid);
  };
  // store_4x8_right_rows's case: 8-column tiles, a right shift and the full range.
  const bool right_full = kNR == 8 && !kLeft && p.multiplier.shift < 0 && p.out.act_min == 0 && p.out.act_max == 255;
  const int16x8_t zero_point16 = vdupq_n_s16(static_cast<int16_t>(p.out.zero_point));
  const size_t rows_total = row_end - row_begin;
  for (size_t r0 = 0; r0 < rows_total; r0 += kGemmMR) {
    const size_t mr = std::min(kGemmMR, rows_total - r0);
    prepare(r0, mr);
    for (size_t t = 0; t < n_tiles; ++t) {
      int32x4_t acc[kGemmMR][kQ];
      Policy::tile(rows, k_pad, packed + t * kNR * k_pad, kinds[t], acc);
#if defined(__aarch64__)
      if constexpr (kQ == 2)
        if (right_full && mr == kGemmMR && (t + 1) * kNR <= n) {
          store_4x8_right_rows(acc, row_terms, col_terms + t * kNR, multiplier, neg_right, zero_point16,
                               y + (row_begin + r0) * n + t * kNR, n);
          continue;
        }
#endif
      for_rows<kGemmMR>([&](auto r) {
        if (r < mr) store(r0 + r, t, acc[r]);
      });
    }
  }
}

template <typename Policy>
void matmul_neon(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t row_begin,
                 size_t row_end, void* scratch) {
  (p.multiplier.shift > 0 ? matmul_4xn<Policy, true> : matmul_4xn<Policy, false>)(p, a, b, y, row_begin, row_end,
                                                                                  scratch);
}

}  // namespace
}  // namespace intinfer
