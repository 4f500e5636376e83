// NEON dot-product GEMM (aarch64, ARMv8.2 SDOT), 4 rows x 16 channels: per 16 k, one LD1 of the
// four rows (flipped to int8 and interleaved once per row tile), four LD1 of four weight vectors
// (int8 codes) and 64 SDOT (by element: 4 channels x 4 k x one row), 1024 multiply-accumulates
// in 71 instructions with the loop's two (assembly: tile_4x16c4_s8); a row tile of one row has a
// one-row tile (tile_1x16c4). int8 codes pad k to 8, not 16, and end with a half step (a
// 24-channel layer does no third more dot products). SDOT is int8 x int8, so the activation
// enters as a - 128 and the bias carries + 128 * sum_k w (TileLayout::act_offset, pack.h); every
// sum is exact.
// The same over 4- and 2-bit codes kept packed in sub-byte tiles: two shifts a vector unpack them.
// And the block-sparse GEMM of gemm_sparse_neon.h over SDOT (here: the unit built with
// +dotprod): a group's 4 codes are exactly one SDOT lane's 4 products, so 4 rows' quads of a
// group take one SDOT by element against the group's codes, and one row's four gathered groups
// one SDOT.
#include <arm_neon.h>

#include <algorithm>

#include "arm_kernels.h"
#include "gemm_4xn.h"
#include "gemm_sparse_neon.h"
#include "matmul_neon.h"

namespace intinfer {
namespace {

constexpr size_t kTileNR = 16;  // output channels per micro-tile (four int32x4 per row)
constexpr size_t kKR = 16;  // k per step of the inner loop (the four rows' 16 bytes: one LD1)

// One group (16 channels x 4 k) of codes as four int8 vectors of 4 channels x 4 k. Sub-byte
// tiles (pack.h) hold the group's 64 codes in 64 x kBits / 8 bytes, code j in byte j mod B at
// bits (j / B) x kBits: a shift left that puts a field at the top of each byte and an arithmetic
// shift right by 8 - kBits give its signed value.
template <int kBits>
inline void load_group(const int8_t* b, int8x16_t w[4]) {
  if constexpr (kBits == 8) {
    const int8x16x4_t v = vld1q_s8_x4(b);
    for (size_t j = 0; j < 4; ++j) w[j] = v.val[j];
  } else if constexpr (kBits == 4) {
    const int8x16_t v0 = vld1q_s8(b), v1 = vld1q_s8(b + 16);
    w[0] = vshrq_n_s8(vshlq_n_s8(v0, 4), 4);
    w[1] = vshrq_n_s8(vshlq_n_s8(v1, 4), 4);
    w[2] = vshrq_n_s8(v0, 4);
    w[3] = vshrq_n_s8(v1, 4);
  } else {
    const int8x16_t v = vld1q_s8(b);
    w[0] = vshrq_n_s8(vshlq_n_s8(v, 6), 6);
    w[1] = vshrq_n_s8(vshlq_n_s8(v, 4), 6);
    w[2] = vshrq_n_s8(vshlq_n_s8(v, 2), 6);
    w[3] = vshrq_n_s8(v, 6);
  }
}

// The 4 k of group kLane of x0..x3 against 16 channels: four weight vectors of 4 channels x 4 k.
template <int kLane, int kBits>
inline void dot(int32x4_t acc[kGemmMR][4], const int8_t* b, int8x16_t x0, int8x16_t x1, int8x16_t x2, int8x16_t x3) {
  int8x16_t w[4];
  load_group<kBits>(b, w);
  for (size_t j = 0; j < 4; ++j) {
    acc[0][j] = vdotq_laneq_s32(acc[0][j], w[j], x0, kLane);
    acc[1][j] = vdotq_laneq_s32(acc[1][j], w[j], x1, kLane);
    acc[2][j] = vdotq_laneq_s32(acc[2][j], w[j], x2, kLane);
    acc[3][j] = vdotq_laneq_s32(acc[3][j], w[j], x3, kLane);
  }
}

// One group of int8 codes (four weight vectors, v4-v7) against lane g of the rows v0-v3: 16 SDOT,
// weight vector j (register w) into accumulators %[c<row><j>].
#define INTINFER_SDOT_ROWS(j, w, g)                      \
  "sdot %[c0" #j "].4s, v" #w ".16b, v0.4b[" #g "]\n\t" \
  "sdot %[c1" #j "].4s, v" #w ".16b, v1.4b[" #g "]\n\t" \
  "sdot %[c2" #j "].4s, v" #w ".16b, v2.4b[" #g "]\n\t" \
  "sdot %[c3" #j "].4s, v" #w ".16b, v3.4b[" #g "]\n\t"
#define INTINFER_SDOT_GROUP(g)                                                                   \
  "ld1 {v4.16b, v5.16b, v6.16b, v7.16b}, [%[b]], #64\n\t" INTINFER_SDOT_ROWS(0, 4, g)            \
      INTINFER_SDOT_ROWS(1, 5, g) INTINFER_SDOT_ROWS(2, 6, g) INTINFER_SDOT_ROWS(3, 7, g)

// The int8 tile in assembly: the accumulators start from the tile's 16 biases (2 LDP and 12 MOV
// where 16 MOVI zeroed them, and the output stage adds no bias: 16 ADD fewer a tile),
// then per step of 16 k one LD1 of the four rows (v0-v3), four LD1 of a group's four weight
// vectors (v4-v7) and 64 SDOT, 71 instructions with the loop's two; int8 codes pad k to 8 only
// (their row's k_align, tables.cc), so a last half step of 8 k may follow (32 SDOT). From
// intrinsics gcc reached the same loop only with every group's load pinned by an empty asm
// statement, and lost it again (spilling: 183 instructions a step in the float-output instance)
// when the code around it changed.
[[gnu::always_inline]] inline void tile_4x16c4_s8(const int8_t* a, size_t k_pad, const int8_t* b,
                                                  const int32_t* bias, int32x4_t c[kGemmMR][4]) {
  size_t steps = k_pad / kKR;
  const size_t half = k_pad % kKR;
  asm("ldp %q[c00], %q[c01], [%[bias]]\n\t" "ldp %q[c02], %q[c03], [%[bias], #32]\n\t"
      "mov %[c10].16b, %[c00].16b\n\t" "mov %[c11].16b, %[c01].16b\n\t"
      "mov %[c12].16b, %[c02].16b\n\t" "mov %[c13].16b, %[c03].16b\n\t"
      "mov %[c20].16b, %[c00].16b\n\t" "mov %[c21].16b, %[c01].16b\n\t"
      "mov %[c22].16b, %[c02].16b\n\t" "mov %[c23].16b, %[c03].16b\n\t"
      "mov %[c30].16b, %[c00].16b\n\t" "mov %[c31].16b, %[c01].16b\n\t"
      "mov %[c32].16b, %[c02].16b\n\t" "mov %[c33].16b, %[c03].16b\n\t"
      "cbz %[n], 2f\n"
      "1:\n\t"
      "ld1 {v0.16b, v1.16b, v2.16b, v3.16b}, [%[a]], #64\n\t"
      INTINFER_SDOT_GROUP(0) INTINFER_SDOT_GROUP(1) INTINFER_SDOT_GROUP(2) INTINFER_SDOT_GROUP(3)
      "subs %[n], %[n], #1\n\t"
      "b.ne 1b\n"
      "2:\n\t"
      "cbz %[half], 3f\n\t"
      "ld1 {v0.8b, v1.8b, v2.8b, v3.8b}, [%[a]]\n\t"
      INTINFER_SDOT_GROUP(0) INTINFER_SDOT_GROUP(1)
      "3:"
      : [c00] "=&w"(c[0][0]), [c01] "=&w"(c[0][1]), [c02] "=&w"(c[0][2]), [c03] "=&w"(c[0][3]),
        [c10] "=&w"(c[1][0]), [c11] "=&w"(c[1][1]), [c12] "=&w"(c[1][2]), [c13] "=&w"(c[1][3]),
        [c20] "=&w"(c[2][0]), [c21] "=&w"(c[2][1]), [c22] "=&w"(c[2][2]), [c23] "=&w"(c[2][3]),
        [c30] "=&w"(c[3][0]), [c31] "=&w"(c[3][1]), [c32] "=&w"(c[3][2]), [c33] "=&w"(c[3][3]),
        [a] "+r"(a), [b] "+r"(b), [n] "+r"(steps)
      : [half] "r"(half), [bias] "r"(bias)
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7");
}
#undef INTINFER_SDOT_GROUP
#undef INTINFER_SDOT_ROWS

// Always inlined into the driver, so that the accumulators stay in registers through the output
// stage. The rows are flipped to a - 128 once per row tile, interleaved by flip_rows_x4 so that
// one LD1 loads the four rows' 16 k. int8 codes: tile_4x16c4_s8; the sub-byte codes' loop, from
// intrinsics, keeps each group's load next to its SDOTs (advance_opaque, gemm_4xn.h). The sums
// start from `bias` (the tile's 16; gemm_4xn.h).
template <int kBits>
[[gnu::always_inline]] inline void tile_4x16c4(const int8_t* a, size_t k_pad, const int8_t* b, const int32_t* bias,
                                               int32x4_t acc[kGemmMR][4]) {
  // Local accumulators, stored to acc once at the end: acc itself may alias the int8 weights
  // (a char type), which would make the compiler store all 16 after every SDOT.
  int32x4_t c[kGemmMR][4];
  if constexpr (kBits == 8) {
    tile_4x16c4_s8(a, k_pad, b, bias, c);
  } else {
    constexpr size_t kGroupBytes = 4 * kTileNR * kBits / 8;
    for (size_t r = 0; r < kGemmMR; ++r)
      for (size_t j = 0; j < 4; ++j) c[r][j] = vld1q_s32(bias + 4 * j);
    for (size_t steps = k_pad / kKR; steps != 0; --steps, a += kGemmMR * kKR) {
      const int8x16x4_t x = vld1q_s8_x4(a);
      dot<0, kBits>(c, b, x.val[0], x.val[1], x.val[2], x.val[3]);
      advance_opaque<kGroupBytes>(b);
      dot<1, kBits>(c, b, x.val[0], x.val[1], x.val[2], x.val[3]);
      advance_opaque<kGroupBytes>(b);
      dot<2, kBits>(c, b, x.val[0], x.val[1], x.val[2], x.val[3]);
      advance_opaque<kGroupBytes>(b);
      dot<3, kBits>(c, b, x.val[0], x.val[1], x.val[2], x.val[3]);
      advance_opaque<kGroupBytes>(b);
    }
  }
  for (size_t r = 0; r < kGemmMR; ++r)
    for (size_t j = 0; j < 4; ++j) acc[r][j] = c[r][j];
}

// The 4 k of group kLane of one row x against 16 channels (tile_1x16c4).
template <int kLane, int kBits>
[[gnu::always_inline]] inline void dot1(int32x4_t c[4], const int8_t* b, int8x16_t x) {
  int8x16_t w[4];
  load_group<kBits>(b, w);
  for (size_t j = 0; j < 4; ++j) c[j] = vdotq_laneq_s32(c[j], w[j], x, kLane);
}

// One row: row 0 of flip_rows_x4's layout (the first 16 bytes of each 64-byte step, 8 of a last
// half step) against the 4-row tile's codes, 16 SDOT and 5 loads per 16 k where tile_4x16c4
// spends 64 SDOT on the one row that is stored.
template <int kBits>
[[gnu::always_inline]] inline void tile_1x16c4(const int8_t* a, size_t k_pad, const int8_t* b, const int32_t* bias,
                                               int32x4_t acc[4]) {
  constexpr size_t kGroupBytes = 4 * kTileNR * kBits / 8;
  int32x4_t c[4] = {vld1q_s32(bias), vld1q_s32(bias + 4), vld1q_s32(bias + 8), vld1q_s32(bias + 12)};
  for (size_t steps = k_pad / kKR; steps != 0; --steps, a += kGemmMR * kKR) {
    const int8x16_t x = vld1q_s8(a);
    dot1<0, kBits>(c, b, x);
    advance_opaque<kGroupBytes>(b);
    dot1<1, kBits>(c, b, x);
    advance_opaque<kGroupBytes>(b);
    dot1<2, kBits>(c, b, x);
    advance_opaque<kGroupBytes>(b);
    dot1<3, kBits>(c, b, x);
    advance_opaque<kGroupBytes>(b);
  }
  if constexpr (kBits == 8) {
    if (k_pad % kKR != 0) {  // the half step (tile_4x16c4_s8)
      const int8x16_t x = vcombine_s8(vld1_s8(a), vdup_n_s8(0));
      dot1<0, 8>(c, b, x);
      dot1<1, 8>(c, b + kGroupBytes, x);
    }
  }
  for (size_t j = 0; j < 4; ++j) acc[j] = c[j];
}

// The policy of gemm_sparse_neon.h: four groups a step, their 16 codes in one load and each
// group's 4 by lane (SDOT by element); lane r of acc[v][0] + acc[v][1] = row 4v + r, two
// accumulators so that consecutive SDOTs do not wait on each other.
struct MacSdot {
  static constexpr size_t kStep = 4;
  template <size_t kV>
  static void step(int32x4_t acc[kV][2], const int8x16_t x[kStep][kV], const int8_t* b) {
    const int8x16_t c = vld1q_s8(b);
    for (size_t v = 0; v < kV; ++v) {
      acc[v][0] = vdotq_laneq_s32(acc[v][0], x[0][v], c, 0);
      acc[v][1] = vdotq_laneq_s32(acc[v][1], x[1][v], c, 1);
      acc[v][0] = vdotq_laneq_s32(acc[v][0], x[2][v], c, 2);
      acc[v][1] = vdotq_laneq_s32(acc[v][1], x[3][v], c, 3);
    }
  }
  template <size_t kV>
  static void single(int32x4_t acc[kV][2], const int8x16_t x[kV], const int8_t* b) {
    const int8x16_t c = dup_quad(b);
    for (size_t v = 0; v < kV; ++v) acc[v][0] = vdotq_s32(acc[v][0], x[v], c);
  }
  static int32x4_t rows(int32x4_t acc0, int32x4_t acc1) { return vaddq_s32(acc0, acc1); }
  static int32x4_t sum16(int32x4_t acc, int8x16_t x, int8x16_t c) { return vdotq_s32(acc, x, c); }
};

// MATMUL over SDOT (matmul_neon.h): b' in the int8 tiles of the GEMM above.
struct MatMulSdot {
  static constexpr size_t kNR = kTileNR;

  // b - 128 as the int8 tiles tile_4x16c4<8> reads (TileLayout{4, 16, 4, ...}): per column tile of
  // 16 and step of 16 k, groups q = 0..3 (k 4q..4q+3) of four vectors (columns 4j..4j+3, their 4 k
  // each); columns past n and k past p.k are 0. col_sums[c] = sum_k (b[k][c] - 128).
  static void pack(const MatMulParams& p, const uint8_t* b, size_t k_pad, int8_t* packed, int32_t* col_sums,
                   uint8_t* kinds) {
    const size_t n_tiles = (p.n + kTileNR - 1) / kTileNR;
    std::fill(kinds, kinds + n_tiles, uint8_t{0});  // one kind of tile
    const int8x16_t ones = vdupq_n_s8(1);
    for (size_t t = 0; t < n_tiles; ++t) {
      const size_t c0 = t * kTileNR;
      int32x4_t sums[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
      int8_t* out = packed + t * kTileNR * k_pad;
      for (size_t k0 = 0; k0 < k_pad; k0 += kMatMulKR, out += 4 * 64) {
        int8x16_t v[4][4];  // [group q][columns 4j..4j+3]
        if (p.transpose_b) {
          // Rows of b are columns: 16 k of each column (4 quads), and 4 x 4 blocks of quads transposed.
          const size_t valid_k = std::min(p.k - k0, kMatMulKR);  // k0 < p.k: k_pad rounds p.k up to kMatMulKR
          for (size_t j = 0; j < 4; ++j) {
            int32x4_t col[4];
            for (size_t i = 0; i < 4; ++i) {
              const size_t c = c0 + 4 * j + i;
              col[i] = c < p.n ? vreinterpretq_s32_s8(load_flipped(b + c * p.k + k0, valid_k)) : vdupq_n_s32(0);
            }
            const int64x2_t t0 = vreinterpretq_s64_s32(vtrn1q_s32(col[0], col[1]));
            const int64x2_t t1 = vreinterpretq_s64_s32(vtrn2q_s32(col[0], col[1]));
            const int64x2_t t2 = vreinterpretq_s64_s32(vtrn1q_s32(col[2], col[3]));
            const int64x2_t t3 = vreinterpretq_s64_s32(vtrn2q_s32(col[2], col[3]));
            v[0][j] = vreinterpretq_s8_s64(vtrn1q_s64(t0, t2));
            v[1][j] = vreinterpretq_s8_s64(vtrn1q_s64(t1, t3));
            v[2][j] = vreinterpretq_s8_s64(vtrn2q_s64(t0, t2));
            v[3][j] = vreinterpretq_s8_s64(vtrn2q_s64(t1, t3));
          }
        } else {
          // Rows of b are k: the 16 columns of 4 consecutive k interleaved into quads.
          const size_t valid_c = std::min(p.n - c0, kTileNR);
          for (size_t q = 0; q < 4; ++q) {
            int8x16_t r[4];
            for (size_t i = 0; i < 4; ++i) {
              const size_t k = k0 + 4 * q + i;
              r[i] = k < p.k ? load_flipped(b + k * p.n + c0, valid_c) : vdupq_n_s8(0);
            }
            const int16x8_t lo01 = vreinterpretq_s16_s8(vzip1q_s8(r[0], r[1]));
            const int16x8_t lo23 = vreinterpretq_s16_s8(vzip1q_s8(r[2], r[3]));
            const int16x8_t hi01 = vreinterpretq_s16_s8(vzip2q_s8(r[0], r[1]));
            const int16x8_t hi23 = vreinterpretq_s16_s8(vzip2q_s8(r[2], r[3]));
            v[q][0] = vreinterpretq_s8_s16(vzip1q_s16(lo01, lo23));
            v[q][1] = vreinterpretq_s8_s16(vzip2q_s16(lo01, lo23));
            v[q][2] = vreinterpretq_s8_s16(vzip1q_s16(hi01, hi23));
            v[q][3] = vreinterpretq_s8_s16(vzip2q_s16(hi01, hi23));
          }
        }
        for (size_t q = 0; q < 4; ++q)
          for (size_t j = 0; j < 4; ++j) {
            vst1q_s8(out + 64 * q + 16 * j, v[q][j]);
            sums[j] = vdotq_s32(sums[j], v[q][j], ones);
          }
      }
      for (size_t j = 0; j < 4; ++j) vst1q_s32(col_sums + c0 + 4 * j, sums[j]);
    }
  }

  static int32x4_t row_sum(int32x4_t sum, int8x16_t v) { return vdotq_s32(sum, v, vdupq_n_s8(1)); }

  static void tile(const int8_t* rows, size_t k_pad, const int8_t* b, uint8_t /* kind */, int32x4_t acc[kGemmMR][4]) {
    static constexpr int32_t kNoBias[kTileNR] = {};
    tile_4x16c4<8>(rows, k_pad, b, kNoBias, acc);
  }
};

}  // namespace

void matmul_u8_4x16c4__neondot(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y,
                               size_t row_begin, size_t row_end, void* scratch) {
  matmul_neon<MatMulSdot>(p, a, b, y, row_begin, row_end, scratch);
}

void gemm_u8s8_4x16c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch) {
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x16c4<8>, tile_1x16c4<8>>(
      w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s4_4x16c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch) {
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x16c4<4>, tile_1x16c4<4>>(
      w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s2_4x16c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch) {
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x16c4<2>, tile_1x16c4<2>>(
      w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8bs8_8x1c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch) {
  gemm_sparse<MacSdot>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

}  // namespace intinfer
