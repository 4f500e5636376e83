// NEON int8 matrix-multiply GEMM (aarch64, ARMv8.6 i8mm: USMMLA), 4 rows x 16 channels: per 8 k,
// two loads of interleaved row pairs, eight weight loads and 16 USMMLA (each a 2 x 8 u8 block
// times an 8 x 2 s8 block into 2 x 2 int32: 32 multiply-accumulates), 512 in all. USMMLA
// multiplies u8 by s8 exactly, so neither operand is offset and the bias is the folded one.
#include <arm_neon.h>

#include <cstring>

#include "arm_kernels.h"
#include "gemm_4xn.h"

namespace intinfer {
namespace {

constexpr size_t kTileNR = 16;  // output channels per micro-tile (eight channel pairs)
constexpr size_t kKR = 8;   // k per USMMLA

// Rows [0, mr) of x as two row pairs: for each group of 8 k, 8 bytes of row 0, 8 of row 1, 8 of
// row 2 and 8 of row 3 ([k_pad / 8][pair][16]: a step's two pairs are one LDP); padding and rows
// past mr are 0.
void interleave_rows(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, uint8_t* out) {
  std::memset(out, 0, kGemmMR * k_pad);
  for (size_t r = 0; r < mr; ++r) {
    const uint8_t* xr = x + r * x_stride;
    uint8_t* o = out + r * kKR;
    size_t i = 0;
    for (; i + kKR <= k; i += kKR) std::memcpy(o + kGemmMR * i, xr + i, kKR);
    for (; i < k; ++i) o[i / kKR * kGemmMR * kKR + i % kKR] = xr[i];
  }
}

// c[p][j]: rows (2p, 2p + 1) x channels (2j, 2j + 1) as [r0c0, r0c1, r1c0, r1c1].
inline void tile_4x16c8(const uint8_t* a, size_t k_pad, const int8_t* b, int32x4_t acc[kGemmMR][4]) {
  int32x4_t c[2][8];  // local, so that the accumulators stay in registers
  for (size_t p = 0; p < 2; ++p)
    for (size_t j = 0; j < 8; ++j) c[p][j] = vdupq_n_s32(0);
  // The two pairs of a step adjacent (interleave_rows), a pointer advanced and a step count: with
  // the pairs k_pad apart and offsets from a, gcc kept the second pair's offset and the loop's end
  // on the stack and reloaded both every step (28 instructions a step; now 25).
  for (size_t steps = k_pad / kKR; steps != 0; --steps, a += kGemmMR * kKR, b += kKR * kTileNR) {
    const uint8x16_t x0 = vld1q_u8(a), x1 = vld1q_u8(a + 2 * kKR);
    for (size_t j = 0; j < 8; ++j) {
      const int8x16_t w = vld1q_s8(b + 16 * j);
      c[0][j] = vusmmlaq_s32(c[0][j], x0, w);
      c[1][j] = vusmmlaq_s32(c[1][j], x1, w);
    }
  }
  // Row 2p, channels 4q..4q+3: the low halves of c[p][2q] and c[p][2q + 1]; row 2p + 1: the high.
  for (size_t p = 0; p < 2; ++p)
    for (size_t q = 0; q < 4; ++q) {
      const int64x2_t lo = vreinterpretq_s64_s32(c[p][2 * q]), hi = vreinterpretq_s64_s32(c[p][2 * q + 1]);
      acc[2 * p][q] = vreinterpretq_s32_s64(vzip1q_s64(lo, hi));
      acc[2 * p + 1][q] = vreinterpretq_s32_s64(vzip2q_s64(lo, hi));
    }
}

}  // namespace

void gemm_u8s8_4x16c8__neoni8mm(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                void* scratch) {
  gemm_4xn<kTileNR, uint8_t, int8_t, interleave_rows, tile_4x16c8>(w, out, x, x_stride, y, y_stride, rows,
                                                                   tile_begin, tile_end, scratch);
}

}  // namespace intinfer
