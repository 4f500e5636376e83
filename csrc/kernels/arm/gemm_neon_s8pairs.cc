// The ARMv8.0 GEMM at the 8-bit rate, 4 rows x 8 channels: activations flipped to int8 (x - 128,
// the bias carrying + 128 * sum_k w as in the SDOT path) and weights within +-127, so two
// products sum exactly in int16 (pairs_fit_int16, docs/quantization.md). Per 16 k and (row,
// channel): SMULL (k 0-7) + SMLAL2 (k 8-15) into int16x8, SADALP into the pair's int32x4:
// 3 instructions for 16 multiply-accumulates, against 4 for SMLAL by lane on int16. The 16
// accumulators of a 4 x 4 block (each holding 4 partial sums) are added across at the end; the
// 8 channels are two such blocks over the same activations.
//
// aarch64 only (CMakeLists.txt): the 16 accumulators, 4 activations, 4 weights and their int16
// products need more than armv7's 16 q registers. Even on aarch64 gcc's first scheduling pass
// keeps all 16 products of a step alive and spills accumulators (the float-output instance, which
// MiniLM's residual layers use: 67 to 72 instructions a step instead of 58, depending on its
// surroundings), so gcc builds this unit with -fno-schedule-insns: the pass after register
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

// acc + the products of x * w over 16 k, each widened on its own (SMULL, SMULL2, two SADALP):
// exact for any int8 operands, such as MATMUL's b - 128, down to -128, which the pairs' bound
// leaves out.
inline int32x4_t mac16_exact(int32x4_t acc, int8x16_t x, int8x16_t w) {
  return vpadalq_s16(vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(w))), vmull_high_s8(x, w));
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

// Channels [kC0, kC0 + 4) of the tile for rows 0..3 over the whole padded k; kExact: products
// widened one by one (mac16_exact), else in pairs (mac16). The rows are interleaved by
// flip_rows_x4: a step's four rows are 64 consecutive bytes (two LDP).
template <int kBits, size_t kC0, bool kExact>
inline void block_4x4c16(const int8_t* a, size_t k_pad, const int8_t* b, int32x4_t out[kGemmMR]) {
  int32x4_t c[kGemmMR][4];
  for (size_t r = 0; r < kGemmMR; ++r)
    for (size_t j = 0; j < 4; ++j) c[r][j] = vdupq_n_s32(0);
  for (size_t steps = k_pad / kPairsKR; steps != 0; --steps, a += kGemmMR * kPairsKR) {
    int8x16_t x[kGemmMR];
    for (size_t r = 0; r < kGemmMR; ++r) x[r] = vld1q_s8(a + r * kPairsKR);
    for (size_t j = 0; j < 4; ++j) {
      const int8x16_t w = channel_codes<kBits, kC0>(b, j);
      const auto mac = kExact ? mac16_exact : mac16;
      for (size_t r = 0; r < kGemmMR; ++r) c[r][j] = mac(c[r][j], x[r], w);
    }
    b += kPairsKR * kTileNR * kBits / 8;
  }
  for (size_t r = 0; r < kGemmMR; ++r) out[r] = add_across4(c[r][0], c[r][1], c[r][2], c[r][3]);
}

template <int kBits, bool kExact = false>
inline void tile_4x8c16(const int8_t* a, size_t k_pad, const int8_t* b, int32x4_t acc[kGemmMR][2]) {
  int32x4_t lo[kGemmMR], hi[kGemmMR];
  block_4x4c16<kBits, 0, kExact>(a, k_pad, b, lo);
  block_4x4c16<kBits, 4, kExact>(a, k_pad, b, hi);
  for (size_t r = 0; r < kGemmMR; ++r) {
    acc[r][0] = lo[r];
    acc[r][1] = hi[r];
  }
}

// MATMUL over SMULL (matmul_neon.h): b' in the int8 tiles of the GEMM above (TileLayout{4, 8,
// 16, 16}: per column tile of 8 and step of 16 k, each column's 16 k in order), multiplied by
// mac16_exact, since b' reaches -128.
struct MatMulSmull {
  static constexpr size_t kNR = kTileNR;

  static void pack(const MatMulParams& p, const uint8_t* b, size_t k_pad, int8_t* packed, int32_t* col_sums) {
    const size_t n_tiles = (p.n + kTileNR - 1) / kTileNR;
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
      }
      col_sums[c] = vaddvq_s32(sum);
    }
  }

  static int32x4_t row_sum(int32x4_t sum, int8x16_t v) { return vpadalq_s16(sum, vpaddlq_s8(v)); }

  static void tile(const int8_t* rows, size_t k_pad, const int8_t* b, int32x4_t acc[kGemmMR][2]) {
    tile_4x8c16<8, true>(rows, k_pad, b, acc);
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
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x8c16<8>>(w, out, x, x_stride, y, y_stride, rows,
                                                                  tile_begin, tile_end, scratch);
}

void gemm_u8s4_4x8c16__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            void* scratch) {
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x8c16<4>>(w, out, x, x_stride, y, y_stride, rows,
                                                                  tile_begin, tile_end, scratch);
}

void gemm_u8s2_4x8c16__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                            void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                            void* scratch) {
  gemm_4xn<kTileNR, int8_t, int8_t, flip_rows_x4, tile_4x8c16<2>>(w, out, x, x_stride, y, y_stride, rows,
                                                                  tile_begin, tile_end, scratch);
}

}  // namespace intinfer
