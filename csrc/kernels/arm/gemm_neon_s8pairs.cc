// The ARMv8.0 GEMM at the 8-bit rate, 4 rows x 8 channels: activations flipped to int8 (x - 128,
// the bias carrying + 128 * sum_k w as in the SDOT path) and weights within +-127, so two
// products sum exactly in int16 (pairs_fit_int16, docs/quantization.md). Per 16 k and (row,
// channel): SMULL (k 0-7) + SMLAL2 (k 8-15) into int16x8, SADALP into the pair's int32x4:
// 3 instructions for 16 multiply-accumulates, against 4 for SMLAL by lane on int16. The 16
// accumulators of a 4 x 4 block (each holding 4 partial sums) are added across at the end; the
// 8 channels are two such blocks over the same activations.
//
// aarch64 only (CMakeLists.txt): the 16 accumulators, 4 activations, 4 weights and their int16
// products need more than armv7's 16 q registers. The int8 tile is assembly (tile_4x8c16_s8).
// For the sub-byte instances, from intrinsics, gcc's first scheduling pass keeps all 16 products
// of a step alive and spills accumulators, so gcc builds this unit with -fno-schedule-insns (int4
// at 64 x 1024 x 64: 80 instructions a step, 82 with the pass): the pass after register
// allocation still orders the loop for in-order cores.
#include <arm_neon.h>

#include "arm_kernels.h"
#include "gemm_4xn.h"
#include "matmul_neon.h"

namespace intinfer {
namespace {

constexpr size_t kTileNR = 8;  // output channels per micro-tile: two 4 x 4 blocks
constexpr size_t kPairsKR = 16;

// acc + the pairwise sums of x * w over 16 k: (k, k + 8) products summed in int16, lanes then
// added in pairs into acc's four int32 lanes.
inline int32x4_t mac16(int32x4_t acc, int8x16_t x, int8x16_t w) {
  return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(x), vget_low_s8(w)), x, w));
}

// (sum of a's lanes, of b's, of c's, of d's).
inline int32x4_t add_across4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

// The 16 k of channel kC0 + j in one int8 vector, from a step's group of 8 channels x 16 k (code
// i = 16 c + k). A sub-byte tile (pack.h) holds the group's 128 codes in B = 16 x kBits bytes,
// code i in byte i mod B at bits (i / B) x kBits: channel c's 16 codes are field c / (B / 16) of
// the 16 bytes at 16 (c mod (B / 16)). A shift left that puts the field at the top of each byte
// and an arithmetic shift right by 8 - kBits give the signed codes.
template <int kBits, size_t kC0>
inline int8x16_t channel_codes(const int8_t* b, size_t j) {
  constexpr size_t kFields = 8 / kBits;               // fields a byte: channels sharing 16 bytes
  const size_t c = kC0 + j, per_field = kTileNR / kFields;
  const int8x16_t v = vld1q_s8(b + (c % per_field) * kPairsKR);
  if constexpr (kBits == 8) {
    return v;
  } else {
    switch (c / per_field) {  // the field: constant once the loops over j are unrolled
      case 0: return vshrq_n_s8(vshlq_n_s8(v, 8 - kBits), 8 - kBits);
      case 1: return kBits == 4 ? vshrq_n_s8(v, 4) : vshrq_n_s8(vshlq_n_s8(v, 4), 6);
      case 2: return vshrq_n_s8(vshlq_n_s8(v, 2), 6);
      default: return vshrq_n_s8(v, 6);
    }
  }
}

// Rows r0 and r1 (registers v0-v3) times the 16 codes of one channel (its register w, v4-v7)
// into accumulators acc0 and acc1 (row r, channel j: v(16 + 4r + j)), two int16 products at a
// time (%[p0], %[p1]); `add` is sadalp (accumulate) or saddlp (the first step: the accumulators
// start from its sums). MAC2: k and k + 8 summed in int16 (mac16); MAC2_EXACT: each product
// widened on its own (SMULL, SMULL2, two SADALP), exact for any int8 operands, such as MATMUL's
// b - 128 down to -128, which the pairs' bound leaves out.
#define INTINFER_PAIRS_MAC2(add, r0, r1, w, acc0, acc1)          \
  "smull %[p0].8h, v" #r0 ".8b, v" #w ".8b\n\t"                  \
  "smull %[p1].8h, v" #r1 ".8b, v" #w ".8b\n\t"                  \
  "smlal2 %[p0].8h, v" #r0 ".16b, v" #w ".16b\n\t"               \
  "smlal2 %[p1].8h, v" #r1 ".16b, v" #w ".16b\n\t"               \
  #add " v" #acc0 ".4s, %[p0].8h\n\t"                           \
  #add " v" #acc1 ".4s, %[p1].8h\n\t"
#define INTINFER_PAIRS_MAC2_EXACT(add, r0, r1, w, acc0, acc1)    \
  "smull %[p0].8h, v" #r0 ".8b, v" #w ".8b\n\t"                  \
  "smull %[p1].8h, v" #r1 ".8b, v" #w ".8b\n\t"                  \
  #add " v" #acc0 ".4s, %[p0].8h\n\t"                           \
  #add " v" #acc1 ".4s, %[p1].8h\n\t"                           \
  "smull2 %[p0].8h, v" #r0 ".16b, v" #w ".16b\n\t"               \
  "smull2 %[p1].8h, v" #r1 ".16b, v" #w ".16b\n\t"               \
  "sadalp v" #acc0 ".4s, %[p0].8h\n\t"                          \
  "sadalp v" #acc1 ".4s, %[p1].8h\n\t"
// One step of 16 k of the channels at %[b]: the four rows and four channels' codes loaded, one LD1
// each (%[b] moves on by the step's 128 bytes of 8 channels, %[step_b]), then 8 MAC2 (`mac2`).
#define INTINFER_PAIRS_STEP(mac2, add)                                                             \
  "ld1 {v0.16b, v1.16b, v2.16b, v3.16b}, [%[a]], #64\n\t"                                          \
  "ld1 {v4.16b, v5.16b, v6.16b, v7.16b}, [%[b]], %[step_b]\n\t"                                    \
  mac2(add, 0, 1, 4, 16, 20) mac2(add, 2, 3, 4, 24, 28) mac2(add, 0, 1, 5, 17, 21)                 \
  mac2(add, 2, 3, 5, 25, 29) mac2(add, 0, 1, 6, 18, 22) mac2(add, 2, 3, 6, 26, 30)                 \
  mac2(add, 0, 1, 7, 19, 23) mac2(add, 2, 3, 7, 27, 31)
// A 4 x 4 block over all steps: the rows from %[a], the codes from %[b] (both moved past the
// block), the sums started by the first step's SADDLP (no zeroing), an odd step after it on its
// own, then the rest two steps a loop iteration; each row's 4 accumulators added across into
// registers o0-o3 at the end (labels L and L1: the two blocks of a tile use 1/2 and 3/4).
#define INTINFER_PAIRS_BLOCK(mac2, L, L1, o0, o1, o2, o3)                                                    \
  "mov %[n], %[steps]\n\t"                                                                                 \
  INTINFER_PAIRS_STEP(mac2, saddlp)                                                                        \
  "subs %[n], %[n], #1\n\t"                                                                                \
  "b.eq " #L1 "f\n\t"                                                                                      \
  "tbz %[n], #0, " #L "f\n\t"                                                                              \
  INTINFER_PAIRS_STEP(mac2, sadalp)                                                                        \
  "subs %[n], %[n], #1\n\t"                                                                                \
  "b.eq " #L1 "f\n"                                                                                        \
  #L ":\n\t"                                                                                               \
  INTINFER_PAIRS_STEP(mac2, sadalp)                                                                        \
  INTINFER_PAIRS_STEP(mac2, sadalp)                                                                        \
  "subs %[n], %[n], #2\n\t"                                                                                \
  "b.ne " #L "b\n"                                                                                         \
  #L1 ":\n\t"                                                                                              \
  "addp v16.4s, v16.4s, v17.4s\n\t" "addp v18.4s, v18.4s, v19.4s\n\t" "addp " o0 ".4s, v16.4s, v18.4s\n\t"    \
  "addp v20.4s, v20.4s, v21.4s\n\t" "addp v22.4s, v22.4s, v23.4s\n\t" "addp " o1 ".4s, v20.4s, v22.4s\n\t"    \
  "addp v24.4s, v24.4s, v25.4s\n\t" "addp v26.4s, v26.4s, v27.4s\n\t" "addp " o2 ".4s, v24.4s, v26.4s\n\t"    \
  "addp v28.4s, v28.4s, v29.4s\n\t" "addp v30.4s, v30.4s, v31.4s\n\t" "addp " o3 ".4s, v28.4s, v30.4s\n\t"

// tile_4x8c16 for int8 codes in assembly, `steps` >= 1 steps of 16 k (the row's k_align is 16
// and k >= 1): two 4 x 4 blocks (channels 0-3, then 4-7) over the same rows, each per step an
// LD1 of the rows, one of the weights and 48 multiply-accumulate instructions (64 for kExact)
// for 256 MACs: 51 a step with the loop's two a pair of steps. Compiled from intrinsics,
// the 16 accumulators, 8 operands and 2 products fit the 32 registers, yet gcc spilled
// accumulators or weights inside the loop (58 to 72 instructions a step) as soon as the code
// around it kept a few more values alive. The accumulators are fixed registers (an asm statement
// takes at most 30 operands). One statement for the whole tile: the first block's sums move to
// registers the second leaves alone, the second's stay where its reduction leaves them (v16, v20,
// v24, v28: outputs bound to those registers). With a statement per block, gcc kept the tile's
// sums in memory between the blocks and through the output stage (about 20 stack accesses a tile).
#define INTINFER_PAIRS_TILE(mac2)                                                                             \
  asm(INTINFER_PAIRS_BLOCK(mac2, 1, 2, "%[f0]", "%[f1]", "%[f2]", "%[f3]")                                     \
      "sub %[a], %[a], %[steps], lsl #6\n\t" /* back to the first row step */                                  \
      "sub %[b], %[b], %[steps], lsl #7\n\t" /* and the tile's codes, channels 4-7 */                          \
      "add %[b], %[b], #64\n\t"                                                                                \
      INTINFER_PAIRS_BLOCK(mac2, 3, 4, "v16", "v20", "v24", "v28")                                             \
      : [s0] "=w"(s0), [s1] "=w"(s1), [s2] "=w"(s2), [s3] "=w"(s3), [f0] "=&w"(f0), [f1] "=&w"(f1),            \
        [f2] "=&w"(f2), [f3] "=&w"(f3), [p0] "=&w"(p0), [p1] "=&w"(p1), [a] "+r"(a), [b] "+r"(b), [n] "=&r"(n) \
      : [steps] "r"(steps), [step_b] "r"(kPairsKR * kTileNR)                                                   \
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v17", "v18", "v19", "v21", "v22",     \
        "v23", "v25", "v26", "v27", "v29", "v30", "v31")
template <bool kExact>
[[gnu::always_inline]] inline void tile_4x8c16_s8(const int8_t* a, size_t steps, const int8_t* b,
                                                  int32x4_t acc[kGemmMR][2]) {
  register int32x4_t s0 asm("v16"), s1 asm("v20"), s2 asm("v24"), s3 asm("v28");
  int32x4_t f0, f1, f2, f3;
  int16x8_t p0, p1;
  size_t n;
  if constexpr (kExact)
    INTINFER_PAIRS_TILE(INTINFER_PAIRS_MAC2_EXACT);
  else
    INTINFER_PAIRS_TILE(INTINFER_PAIRS_MAC2);
  acc[0][0] = f0, acc[1][0] = f1, acc[2][0] = f2, acc[3][0] = f3;
  acc[0][1] = s0, acc[1][1] = s1, acc[2][1] = s2, acc[3][1] = s3;
}
#undef INTINFER_PAIRS_TILE
#undef INTINFER_PAIRS_BLOCK
#undef INTINFER_PAIRS_STEP
#undef INTINFER_PAIRS_MAC2_EXACT
#undef INTINFER_PAIRS_MAC2

// Channels [kC0, kC0 + 4) of the tile for rows 0..3 over the whole padded k, into column
// kC0 / 4 of acc, for sub-byte codes. The rows are interleaved by flip_rows_x4: a step's four
// rows are 64 consecutive bytes.
template <int kBits, size_t kC0>
inline void block_4x4c16(const int8_t* a, size_t k_pad, const int8_t* b, int32x4_t acc[kGemmMR][2]) {
  int32x4_t c[kGemmMR][4];
  for (size_t r = 0; r < kGemmMR; ++r)
    for (size_t j = 0; j < 4; ++j) c[r][j] = vdupq_n_s32(0);
  for (size_t steps = k_pad / kPairsKR; steps != 0; --steps, a += kGemmMR * kPairsKR) {
    int8x16_t x[kGemmMR];
    for (size_t r = 0; r < kGemmMR; ++r) x[r] = vld1q_s8(a + r * kPairsKR);
    for (size_t j = 0; j < 4; ++j) {
      const int8x16_t w = channel_codes<kBits, kC0>(b, j);
      for (size_t r = 0; r < kGemmMR; ++r) c[r][j] = mac16(c[r][j], x[r], w);
    }
    b += kPairsKR * kTileNR * kBits / 8;
  }
  for (size_t r = 0; r < kGemmMR; ++r) acc[r][kC0 / 4] = add_across4(c[r][0], c[r][1], c[r][2], c[r][3]);
}

// kExact (int8 codes only): each product widened on its own.
template <int kBits, bool kExact = false>
[[gnu::always_inline]] inline void tile_4x8c16(const int8_t* a, size_t k_pad, const int8_t* b,
                                               int32x4_t acc[kGemmMR][2]) {
  static_assert(kBits == 8 || !kExact, "the exact products are the int8 tile's");
  if constexpr (kBits == 8) {
    tile_4x8c16_s8<kExact>(a, k_pad / kPairsKR, b, acc);  // k_pad >= 16: a step at least
  } else {
    block_4x4c16<kBits, 0>(a, k_pad, b, acc);
    block_4x4c16<kBits, 4>(a, k_pad, b, acc);
  }
}

// One row: row 0 of flip_rows_x4's layout (the first 16 bytes of each 64-byte step) against the
// tile's 8 channels, 24 multiply-accumulates and 9 loads per 16 k where tile_4x8c16 spends 96 on
// the one row that is stored.
template <int kBits>
[[gnu::always_inline]] inline void tile_1x8c16(const int8_t* a, size_t k_pad, const int8_t* b, int32x4_t acc[2]) {
  int32x4_t c[kTileNR];
  for (size_t j = 0; j < kTileNR; ++j) c[j] = vdupq_n_s32(0);
  for (size_t steps = k_pad / kPairsKR; steps != 0; --steps, a += kGemmMR * kPairsKR) {
    const int8x16_t x = vld1q_s8(a);
    for (size_t j = 0; j < kTileNR; ++j) c[j] = mac16(c[j], x, channel_codes<kBits, 0>(b, j));
    b += kPairsKR * kTileNR * kBits / 8;
  }
  acc[0] = add_across4(c[0], c[1], c[2], c[3]);
  acc[1] = add_across4(c[4], c[5], c[6], c[7]);
}

// MATMUL over SMULL (matmul_neon.h): b' in the int8 tiles of the GEMM above (TileLayout{4, 8,
// 16, 16}: per column tile of 8 and step of 16 k, each column's 16 k in order). b' reaches -128,
// which the pairs' bound leaves out: a tile that holds a -128 (its kind 1) has each product
// widened on its own; any other is exact in pairs (|a'| <= 128, |b'| <= 127), which most tiles of an
// attention's keys and values are (all-MiniLM-L6-v2: 97%).
struct MatMulSmull {
  static constexpr size_t kNR = kTileNR;

  static void pack(const MatMulParams& p, const uint8_t* b, size_t k_pad, int8_t* packed, int32_t* col_sums,
                   uint8_t* kinds) {
    const size_t n_tiles = (p.n + kTileNR - 1) / kTileNR;
    const int8x16_t lowest = vdupq_n_s8(-128);
    uint8x16_t seen = vdupq_n_u8(0);  // lanes that met -128 in the tile so far
    for (size_t c = 0; c < n_tiles * kTileNR; ++c) {
      int32x4_t sum = vdupq_n_s32(0);
      int8_t* out = packed + (c / kTileNR) * kTileNR * k_pad + (c % kTileNR) * kMatMulKR;
      for (size_t k0 = 0; k0 < k_pad; k0 += kMatMulKR, out += kTileNR * kMatMulKR) {
        const size_t valid_k = std::min(p.k - k0, kMatMulKR);  // k0 < p.k: k_pad rounds p.k up
        int8x16_t v = vdupq_n_s8(0);
        if (c < p.n && p.transpose_b) {
          v = load_flipped(b + c * p.k + k0, valid_k);
        } else if (c < p.n) {
          // Rows of b are k: the column's bytes are p.n apart.
          int8_t column[kMatMulKR] = {};
          for (size_t i = 0; i < valid_k; ++i) column[i] = static_cast<int8_t>(b[(k0 + i) * p.n + c] ^ 0x80);
          v = vld1q_s8(column);
        }
        vst1q_s8(out, v);
        sum = row_sum(sum, v);
        seen = vorrq_u8(seen, vceqq_s8(v, lowest));
      }
      col_sums[c] = vaddvq_s32(sum);
      if (c % kTileNR == kTileNR - 1) {
        kinds[c / kTileNR] = vmaxvq_u8(seen) != 0;
        seen = vdupq_n_u8(0);
      }
    }
  }

  static int32x4_t row_sum(int32x4_t sum, int8x16_t v) { return vpadalq_s16(sum, vpaddlq_s8(v)); }

  [[gnu::always_inline]] static void tile(const int8_t* rows, size_t k_pad, const int8_t* b, uint8_t kind,
                                          int32x4_t acc[kGemmMR][2]) {
    if (kind != 0)
      tile_4x8c16<8, true>(rows, k_pad, b, acc);
    else
      tile_4x8c16<8>(rows, k_pad, b, acc);
  }
};

}  // namespace

void matmul_u8_4x8c16__neon(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t row_begin,
                            size_t row_end, void* scratch) {
  matmul_neon<MatMulSmull>(p, a, b, y, row_begin, row_end, scratch);
}

void gemm_u8s8_4x8c16__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            void* scratch) {
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x8c16<8>, tile_1x8c16<8>>(
      w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s4_4x8c16__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            void* scratch) {
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x8c16<4>, tile_1x8c16<4>>(
      w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s2_4x8c16__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            void* scratch) {
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x8c16<2>, tile_1x8c16<2>>(
      w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

}  // namespace intinfer
