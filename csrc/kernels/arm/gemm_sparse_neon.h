// The block-sparse GEMM of the NEON paths, one template over a MAC policy, with its driver and
// output stage. Weights as pack.h regroups them (TileLayout{8, 16, 4, 4, 1, 128}): per channel,
// the groups of 4 consecutive reduction indices that hold a non-zero code, 4 int8 codes each.
// Activations enter flipped to int8 (x ^ 0x80 = x - 128, the packer adding 128 * sum_k w to the
// bias, as the dense SDOT path), so a group is 4 int8 x int8 products: SDOT's dot exactly, or
// SMULL + SMLAL, whose two products sum exactly in int16 for codes within +-127
// (pairs_fit_int16). Only the stored groups are read and multiplied, so the work falls with the
// density. Everything here has internal linkage (an anonymous namespace), as gemm_4xn.h.
//
// Several rows (passes of R = 8 or 4): the rows are flipped and transposed once per pass into
// quads, group by group (group q of row r at prep[(q * R + r) * 4]), so the R quads of a group
// are R * 4 consecutive bytes: per channel and group, one load of 16 bytes per 4 rows against
// the group's 4 codes in every 32-bit lane (duplicated, or SDOT by element), and the 4 rows'
// sums come out in the lanes of one vector. Eight channels are then transposed into rows for the
// output stage.
// One row: the row flipped, and four groups of one channel a step: their quads gathered into the
// lanes of one vector against the four groups' 16 codes (one load); 8 channels reduced together.
//
// The MAC policy (a struct; accumulators int32x4_t, kV = R / 4 vectors of 4 rows):
//   kStep                          groups a step of the several-row loop
//   step<kV>(acc[kV][2], x[kStep][kV], b)
//                                  adds the products of the step's groups: x[j][v] holds rows
//                                  4v..4v+3's quads of group j, b the step's kStep x 4 codes
//   single<kV>(acc[kV][2], x[kV], b)
//                                  the same for one group (the channel's last, fewer than kStep)
//   rows(acc[v][0], acc[v][1])     lane r = row 4v + r's sum over what step / single added
//   sum16(acc, x, c)               acc + the 16 products x * c, in lanes whose total is their sum
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../pack.h"
#include "requant_neon.h"

namespace intinfer {
namespace {

constexpr size_t kSparseQuad = 4;   // reduction indices a group (TileLayout kr)
constexpr size_t kSparseTile = 16;  // channels a column tile (TileLayout nr)
constexpr uint32_t kSparseLanes[4] = {0, 1, 2, 3};

// The 4 bytes at p as one int32 (any alignment).
inline int32_t load_quad(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The 4 codes at p in every 32-bit lane (one LD1R; the codes are not written during a call).
inline int8x16_t dup_quad(const int8_t* p) {
  return vreinterpretq_s8_s32(vld1q_dup_s32(reinterpret_cast<const int32_t*>(p)));
}

// (a0 + a1, a2 + a3, b0 + b1, b2 + b3).
inline int32x4_t add_pairs(int32x4_t a, int32x4_t b) {
#if defined(__aarch64__)
  return vpaddq_s32(a, b);
#else
  return vcombine_s32(vpadd_s32(vget_low_s32(a), vget_high_s32(a)), vpadd_s32(vget_low_s32(b), vget_high_s32(b)));
#endif
}

// The kV vectors of 4 rows' quads of one group, at p (on aarch64 the 8 rows' 32 bytes in one LD1
// of two registers: two loads cost gcc an address add more).
template <size_t kV>
inline void load_quads(const int8_t* p, int8x16_t x[kV]) {
#if defined(__aarch64__)
  if constexpr (kV == 2) {
    const int8x16x2_t v = vld1q_s8_x2(p);
    x[0] = v.val[0];
    x[1] = v.val[1];
    return;
  }
#endif
  for (size_t v = 0; v < kV; ++v) x[v] = vld1q_s8(p + 16 * v);
}

// The 4 x 4 transpose of int32 lanes: out[i] lane j = in[j] lane i.
inline void transpose4x4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d, int32x4_t out[4]) {
  const int32x4x2_t ab = vtrnq_s32(a, b);  // (a0 b0 a2 b2), (a1 b1 a3 b3)
  const int32x4x2_t cd = vtrnq_s32(c, d);  // (c0 d0 c2 d2), (c1 d1 c3 d3)
  out[0] = vcombine_s32(vget_low_s32(ab.val[0]), vget_low_s32(cd.val[0]));
  out[1] = vcombine_s32(vget_low_s32(ab.val[1]), vget_low_s32(cd.val[1]));
  out[2] = vcombine_s32(vget_high_s32(ab.val[0]), vget_high_s32(cd.val[0]));
  out[3] = vcombine_s32(vget_high_s32(ab.val[1]), vget_high_s32(cd.val[1]));
}

// Rows [0, rows) of x flipped to int8 as quads for R rows a pass: group q of row r at
// (q * R + r) * 4; zeros (a flipped 128, neutral) past k and in rows rows..R-1.
template <size_t R>
void flip_quads(const uint8_t* x, size_t x_stride, size_t rows, size_t k, size_t k_pad, int8_t* prep) {
  if (rows < R || k < k_pad) std::memset(prep, 0, k_pad * R);
  const uint8x16_t flip = vdupq_n_u8(0x80);
  auto flipped = [&](const uint8_t* p) { return veorq_u8(vld1q_u8(p), flip); };
  const size_t k16 = k / 16 * 16;
  size_t r = 0;
  if constexpr (R == 1) {
    for (size_t i = 0; i < k16; i += 16) vst1q_u8(reinterpret_cast<uint8_t*>(prep + i), flipped(x + i));
  } else {
    // Four rows at a time: 16 activations of each (four groups) transposed into the groups' 4
    // rows of quads, one 16-byte store a group, R quads apart.
    for (; r + 4 <= rows; r += 4) {
      const uint8_t* xr = x + r * x_stride;
      int8_t* d = prep + r * kSparseQuad;
      for (size_t i = 0; i < k16; i += 16, d += 4 * R * kSparseQuad) {
        int32x4_t q[4];
        transpose4x4(vreinterpretq_s32_u8(flipped(xr + i)), vreinterpretq_s32_u8(flipped(xr + x_stride + i)),
                     vreinterpretq_s32_u8(flipped(xr + 2 * x_stride + i)),
                     vreinterpretq_s32_u8(flipped(xr + 3 * x_stride + i)), q);
        for (size_t j = 0; j < 4; ++j) vst1q_s8(d + j * R * kSparseQuad, vreinterpretq_s8_s32(q[j]));
      }
    }
    // The other rows one by one: a row's four quads stored one by one.
    for (; r < rows; ++r) {
      const uint8_t* xr = x + r * x_stride;
      int8_t* d = prep + r * kSparseQuad;
      for (size_t i = 0; i < k16; i += 16, d += 4 * R * kSparseQuad) {
        const uint32x4_t q = vreinterpretq_u32_u8(flipped(xr + i));
        vst1q_lane_u32(reinterpret_cast<uint32_t*>(d), q, 0);
        vst1q_lane_u32(reinterpret_cast<uint32_t*>(d + R * kSparseQuad), q, 1);
        vst1q_lane_u32(reinterpret_cast<uint32_t*>(d + 2 * R * kSparseQuad), q, 2);
        vst1q_lane_u32(reinterpret_cast<uint32_t*>(d + 3 * R * kSparseQuad), q, 3);
      }
    }
  }
  for (r = 0; r < rows; ++r)
    for (size_t i = k16; i < k; ++i)
      prep[(i / kSparseQuad * R + r) * kSparseQuad + i % kSparseQuad] = static_cast<int8_t>(x[r * x_stride + i] ^ 0x80);
}

// Channel c of a pass of R rows: out[v] lane i = row 4v + i's sum of products. Mac::kStep groups
// a step, the channel's last groups one by one.
template <typename Mac, size_t R>
inline void channel_rows(const PackedView& w, const int8_t* codes, const int8_t* prep, size_t c,
                         int32x4_t out[R / 4]) {
  constexpr size_t kV = R / 4;  // 16-byte vectors of a group's quads: 4 rows each
  int32x4_t acc[kV][2];
  for (size_t v = 0; v < kV; ++v) acc[v][0] = acc[v][1] = vdupq_n_s32(0);
  const uint32_t* gk = w.group_k + w.group_start[c];
  const uint32_t* const gk_end = w.group_k + w.group_start[c + 1];
  const uint32_t* const steps_end = gk + (gk_end - gk) / Mac::kStep * Mac::kStep;
  const int8_t* b = codes + size_t{w.group_start[c]} * kSparseQuad;
  for (; gk != steps_end; gk += Mac::kStep, b += Mac::kStep * kSparseQuad) {
    int8x16_t x[Mac::kStep][kV];
    for (size_t j = 0; j < Mac::kStep; ++j) load_quads<kV>(prep + size_t{gk[j]} * R, x[j]);
    Mac::template step<kV>(acc, x, b);
  }
  for (; gk != gk_end; ++gk, b += kSparseQuad) {
    int8x16_t x[kV];
    load_quads<kV>(prep + size_t{*gk} * R, x);
    Mac::template single<kV>(acc, x, b);
  }
  for (size_t v = 0; v < kV; ++v) out[v] = Mac::rows(acc[v][0], acc[v][1]);
}

// Four groups' quads of the flipped row a: lane i holds the 4 activations from group_k[i].
inline int8x16_t gather_quads(const int8_t* a, const uint32_t* group_k) {
  int32x4_t v = vsetq_lane_s32(load_quad(a + group_k[0]), vdupq_n_s32(0), 0);
  v = vsetq_lane_s32(load_quad(a + group_k[1]), v, 1);
  v = vsetq_lane_s32(load_quad(a + group_k[2]), v, 2);
  v = vsetq_lane_s32(load_quad(a + group_k[3]), v, 3);
  return vreinterpretq_s8_s32(v);
}

// One row: channel c's partial sums (their total is the row's sum of products), four groups a
// step. In the last step, lanes past the channel's groups (the next channel's, or the packer's
// three zero groups after the last, which keep the loads inside the codes and group_k) have
// their activations masked to 0.
template <typename Mac>
inline int32x4_t channel_one_row(const PackedView& w, const int8_t* codes, const int8_t* a, size_t c) {
  int32x4_t acc = vdupq_n_s32(0);
  const uint32_t* gk = w.group_k + w.group_start[c];
  const uint32_t* const gk_end = w.group_k + w.group_start[c + 1];
  const int8_t* b = codes + size_t{w.group_start[c]} * kSparseQuad;
  const uint32_t* const steps_end = gk + (gk_end - gk) / 4 * 4;
  for (; gk != steps_end; gk += 4, b += 4 * kSparseQuad) acc = Mac::sum16(acc, gather_quads(a, gk), vld1q_s8(b));
  if (gk != gk_end) {
    const uint32x4_t keep = vcltq_u32(vld1q_u32(kSparseLanes), vdupq_n_u32(static_cast<uint32_t>(gk_end - gk)));
    acc = Mac::sum16(acc, vandq_s8(gather_quads(a, gk), vreinterpretq_s8_u32(keep)), vld1q_s8(b));
  }
  return acc;
}

// The output stage of one row's 8 channels [c, c + 8) (lo: c..c+3, hi: c+4..c+7) into the output
// row y: uint8 through `stage`, or float(acc + bias) * scale; only channels below w.n are stored
// (a column tile range ends at a multiple of 16 or at n).
template <typename Stage>
inline void store_channels8(const PackedView& w, const Stage& stage, int32x4_t lo, int32x4_t hi, size_t c,
                            void* y) {
  if (w.output_scales != nullptr)
    store_f32x8(w.bias, w.output_scales, w.n, static_cast<float*>(y), c, lo, hi);
  else
    store_u8x8(static_cast<uint8_t*>(y) + c, stage.apply8(lo, hi, c), w.n - c < 8 ? w.n - c : 8);
}

// Passes of R rows over the channels [c_begin, c_end), 8 channels at a time.
template <typename Mac, size_t R, typename Stage>
void sparse_rows(const PackedView& w, const Stage& stage, const uint8_t* x, size_t x_stride, void* y,
                 size_t y_row_bytes, size_t rows, size_t c_begin, size_t c_end, int8_t* prep) {
  constexpr size_t kV = R / 4;
  const auto* codes = static_cast<const int8_t*>(w.weights);
  flip_quads<R>(x, x_stride, rows, w.k, w.k_pad, prep);
  for (size_t c = c_begin; c < c_end; c += 8) {
    const size_t valid = c_end - c < 8 ? c_end - c : 8;
    int32x4_t per_channel[8][kV];  // [channel][rows 4v..4v+3]
    for (size_t i = 0; i < 8; ++i) {
      if (i < valid) {
        channel_rows<Mac, R>(w, codes, prep, c + i, per_channel[i]);
      } else {
        for (size_t v = 0; v < kV; ++v) per_channel[i][v] = vdupq_n_s32(0);
      }
    }
    int32x4_t lo[R], hi[R];  // row r's channels c..c+3 and c+4..c+7
    for (size_t v = 0; v < kV; ++v) {
      transpose4x4(per_channel[0][v], per_channel[1][v], per_channel[2][v], per_channel[3][v], lo + 4 * v);
      transpose4x4(per_channel[4][v], per_channel[5][v], per_channel[6][v], per_channel[7][v], hi + 4 * v);
    }
    for (size_t r = 0; r < rows; ++r)
      store_channels8(w, stage, lo[r], hi[r], c, static_cast<uint8_t*>(y) + r * y_row_bytes);
  }
}

// One row over the channels [c_begin, c_end), 8 channels at a time.
template <typename Mac, typename Stage>
void sparse_one_row(const PackedView& w, const Stage& stage, const uint8_t* x, void* y, size_t c_begin,
                    size_t c_end, int8_t* a) {
  const auto* codes = static_cast<const int8_t*>(w.weights);
  flip_quads<1>(x, 0, 1, w.k, w.k_pad, a);
  for (size_t c = c_begin; c < c_end; c += 8) {
    const size_t valid = c_end - c < 8 ? c_end - c : 8;
    int32x4_t partial[8];
    for (size_t i = 0; i < 8; ++i) partial[i] = i < valid ? channel_one_row<Mac>(w, codes, a, c + i) : vdupq_n_s32(0);
    const int32x4_t lo = add_pairs(add_pairs(partial[0], partial[1]), add_pairs(partial[2], partial[3]));
    const int32x4_t hi = add_pairs(add_pairs(partial[4], partial[5]), add_pairs(partial[6], partial[7]));
    store_channels8(w, stage, lo, hi, c, y);
  }
}

// The GemmFn of tables.h for one policy: passes of 8 rows, of 4 for the last 2-4, one row alone.
template <typename Mac>
void gemm_sparse(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                 size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  const size_t c_begin = tile_begin * kSparseTile < w.n ? tile_begin * kSparseTile : w.n;
  const size_t c_end = tile_end * kSparseTile < w.n ? tile_end * kSparseTile : w.n;
  auto* prep = static_cast<int8_t*>(scratch);
  const size_t y_row_bytes = y_stride * (w.output_scales != nullptr ? sizeof(float) : 1);
  auto* yb = static_cast<uint8_t*>(y);
  with_output_stage(w, out, [&](auto stage) {
    for (size_t m = 0; m < rows;) {
      const size_t left = rows - m;
      const uint8_t* xm = x + m * x_stride;
      uint8_t* ym = yb + m * y_row_bytes;
      if (left == 1) {
        sparse_one_row<Mac>(w, stage, xm, ym, c_begin, c_end, prep);
        m += 1;
      } else if (left <= 4) {
        sparse_rows<Mac, 4>(w, stage, xm, x_stride, ym, y_row_bytes, left, c_begin, c_end, prep);
        m += left;
      } else {
        const size_t n = left < 8 ? left : 8;
        sparse_rows<Mac, 8>(w, stage, xm, x_stride, ym, y_row_bytes, n, c_begin, c_end, prep);
        m += n;
      }
    }
  });
}

}  // namespace
}  // namespace intinfer
