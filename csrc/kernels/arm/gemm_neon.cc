// NEON GEMM, 4 rows x 8 channels, for ARMv7 and ARMv8: weights prepacked as int16, activations
// widened to int16 once per row tile, then per k one 16-byte weight load and eight SMLAL
// (vmlal_lane_s16: 4 channels x one activation lane into int32) for 32 multiply-accumulates.
// u8 x s8 products in int16 x int16 are exact; the int32 sums are proven not to overflow at load.
// gemm_s16s8_4x8__neon: the same from int16 activations (a FULLY_CONNECTED's wide input).
#include <arm_neon.h>

#include <cstring>

#include "../gemm_tiles.h"
#include "arm_kernels.h"
#include "gemm_4xn.h"

namespace intinfer {
namespace {

constexpr size_t kTileNR = 8;  // output channels per micro-tile (two int32x4 per row)

// Rows [0, mr) of x widened to int16 with k padded to k_pad (zeros), rows past mr zeroed: row r
// at out + r * k_pad.
void widen_rows(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, int16_t* out) {
  for (size_t r = 0; r < kGemmMR; ++r) {
    int16_t* o = out + r * k_pad;
    size_t i = 0;
    if (r < mr) {
      const uint8_t* xr = x + r * x_stride;
      for (; i + 8 <= k; i += 8) vst1q_s16(o + i, vreinterpretq_s16_u16(vmovl_u8(vld1_u8(xr + i))));
      for (; i < k; ++i) o[i] = xr[i];
    }
    for (; i < k_pad; ++i) o[i] = 0;
  }
}

#if defined(__aarch64__)
// acc[r] += w[k] * x_r[k] for the 8 channels of one k (w); kLane picks k within the 4-lane halves.
template <int kLane>
inline void mac(int32x4_t acc[kGemmMR][2], int16x8_t w, int16x4_t x0, int16x4_t x1, int16x4_t x2, int16x4_t x3) {
  const int16x4_t lo = vget_low_s16(w), hi = vget_high_s16(w);
  acc[0][0] = vmlal_lane_s16(acc[0][0], lo, x0, kLane);
  acc[0][1] = vmlal_lane_s16(acc[0][1], hi, x0, kLane);
  acc[1][0] = vmlal_lane_s16(acc[1][0], lo, x1, kLane);
  acc[1][1] = vmlal_lane_s16(acc[1][1], hi, x1, kLane);
  acc[2][0] = vmlal_lane_s16(acc[2][0], lo, x2, kLane);
  acc[2][1] = vmlal_lane_s16(acc[2][1], hi, x2, kLane);
  acc[3][0] = vmlal_lane_s16(acc[3][0], lo, x3, kLane);
  acc[3][1] = vmlal_lane_s16(acc[3][1], hi, x3, kLane);
}
#endif

inline void tile_4x8(const int16_t* a, size_t k_pad, const int16_t* b, int32x4_t acc[kGemmMR][2]) {
  int32x4_t c[kGemmMR][2];  // local, so that the accumulators stay in registers
  for (size_t r = 0; r < kGemmMR; ++r) c[r][0] = c[r][1] = vdupq_n_s32(0);
#if defined(__aarch64__)
  // 8 k a step: one int16x8 per row, whose halves are the activations of 4 k each.
  constexpr size_t kKR = 8;
  // Four consecutive k of the weights from w, whose activations are the lanes of x0..x3.
  auto mac4 = [&](const int16_t* w, int16x4_t x0, int16x4_t x1, int16x4_t x2, int16x4_t x3) {
    mac<0>(c, vld1q_s16(w), x0, x1, x2, x3);
    mac<1>(c, vld1q_s16(w + kTileNR), x0, x1, x2, x3);
    mac<2>(c, vld1q_s16(w + 2 * kTileNR), x0, x1, x2, x3);
    mac<3>(c, vld1q_s16(w + 3 * kTileNR), x0, x1, x2, x3);
  };
  for (size_t k0 = 0; k0 < k_pad; k0 += kKR, b += kKR * kTileNR) {
    const int16x8_t x0 = vld1q_s16(a + k0), x1 = vld1q_s16(a + k_pad + k0);
    const int16x8_t x2 = vld1q_s16(a + 2 * k_pad + k0), x3 = vld1q_s16(a + 3 * k_pad + k0);
    mac4(b, vget_low_s16(x0), vget_low_s16(x1), vget_low_s16(x2), vget_low_s16(x3));
    mac4(b + 4 * kTileNR, vget_high_s16(x0), vget_high_s16(x1), vget_high_s16(x2), vget_high_s16(x3));
  }
#else
  // armv7's 16 q registers: 8 accumulators, and the rows' 8 k as eight halves left too few, so
  // gcc stored all 8 accumulators to the stack every step (106 instructions a step): 4 k a step
  // (k_pad is a multiple of 8), every load one VLD1 with a post-increment. In assembly: from
  // intrinsics (loads pinned by advance_opaque) the loop was 42 instructions a step, but gcc
  // spilled its counter and a row pointer inside it as soon as the driver kept a few more values
  // alive across the tile (armv7 has 13 general registers); the statement takes its 6 where it
  // starts.
  const int16_t *a0 = a, *a1 = a + k_pad, *a2 = a + 2 * k_pad, *a3 = a + 3 * k_pad;
  size_t quads = k_pad / 4;  // >= 2: k_pad is a multiple of 8 and k >= 1 (format.cc: dimensions >= 1)
#define INTINFER_MAC4(w0, w1, lane)                                                                   \
  "vmlal.s16 %q[c00], " #w0 ", d4[" #lane "]\n\t" "vmlal.s16 %q[c01], " #w1 ", d4[" #lane "]\n\t"         \
  "vmlal.s16 %q[c10], " #w0 ", d5[" #lane "]\n\t" "vmlal.s16 %q[c11], " #w1 ", d5[" #lane "]\n\t"         \
  "vmlal.s16 %q[c20], " #w0 ", d6[" #lane "]\n\t" "vmlal.s16 %q[c21], " #w1 ", d6[" #lane "]\n\t"         \
  "vmlal.s16 %q[c30], " #w0 ", d7[" #lane "]\n\t" "vmlal.s16 %q[c31], " #w1 ", d7[" #lane "]\n\t"
  asm("1:\n\t"
      "vld1.16 {d4}, [%[a0]]!\n\t" "vld1.16 {d5}, [%[a1]]!\n\t"
      "vld1.16 {d6}, [%[a2]]!\n\t" "vld1.16 {d7}, [%[a3]]!\n\t"
      "vld1.16 {d0-d1}, [%[b]]!\n\t" INTINFER_MAC4(d0, d1, 0)
      "vld1.16 {d2-d3}, [%[b]]!\n\t" INTINFER_MAC4(d2, d3, 1)
      "vld1.16 {d0-d1}, [%[b]]!\n\t" INTINFER_MAC4(d0, d1, 2)
      "vld1.16 {d2-d3}, [%[b]]!\n\t" INTINFER_MAC4(d2, d3, 3)
      "subs %[n], %[n], #1\n\t"
      "bne 1b"
      : [c00] "+w"(c[0][0]), [c01] "+w"(c[0][1]), [c10] "+w"(c[1][0]), [c11] "+w"(c[1][1]),
        [c20] "+w"(c[2][0]), [c21] "+w"(c[2][1]), [c30] "+w"(c[3][0]), [c31] "+w"(c[3][1]),
        [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b] "+r"(b), [n] "+r"(quads)
      :
      : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7");
#undef INTINFER_MAC4
#endif
  for (size_t r = 0; r < kGemmMR; ++r) {
    acc[r][0] = c[r][0];
    acc[r][1] = c[r][1];
  }
}

}  // namespace

void gemm_u8s8_4x8__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                         void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                         void* scratch) {
  gemm_4xn<kTileNR, int16_t, int16_t, widen_rows, tile_4x8>(w, out, x, x_stride, y, y_stride, rows,
                                                            tile_begin, tile_end, scratch);
}

void gemm_s16s8_4x8__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                          void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                          void* scratch) {
  gemm_4xn<kTileNR, int16_t, int16_t, copy_rows_s16<kGemmMR>, tile_4x8>(w, out, x, x_stride, y, y_stride, rows,
                                                                        tile_begin, tile_end, scratch);
}

}  // namespace intinfer
