// NEON dot-product GEMM (aarch64, ARMv8.2 SDOT), 4 rows x 16 channels: per 16 k, four row loads
// (flipped to int8 by one EOR each), sixteen weight loads and 64 SDOT (vdotq_laneq_s32: 4
// channels x 4 k x one row), 1024 multiply-accumulates. SDOT is int8 x int8, so the activation
// enters as a - 128 and the bias carries + 128 * sum_k w (TileLayout::act_offset, pack.h); every sum is exact.
#include <arm_neon.h>

#include <cstring>

#include "arm_kernels.h"
#include "gemm_4xn.h"

namespace intinfer {
namespace {

constexpr size_t kTileNR = 16;  // output channels per micro-tile (four int32x4 per row)
constexpr size_t kKR = 16;  // k per step of the inner loop (one 16-byte load per row)

// Rows [0, mr) of x with k padded to k_pad; padding and rows past mr hold 128, which the
// flip to int8 turns into 0 (their weights are 0 as well).
void pad_rows(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, uint8_t* out) {
  for (size_t r = 0; r < kGemmMR; ++r) {
    uint8_t* o = out + r * k_pad;
    std::memset(o, 0x80, k_pad);
    if (r < mr) std::memcpy(o, x + r * x_stride, k);
  }
}

// The 4 k of group kLane of x0..x3 against 16 channels: four weight vectors of 4 channels x 4 k.
template <int kLane>
inline void dot(int32x4_t acc[kGemmMR][4], const int8_t* b, int8x16_t x0, int8x16_t x1, int8x16_t x2, int8x16_t x3) {
  for (size_t j = 0; j < 4; ++j) {
    const int8x16_t w = vld1q_s8(b + 16 * j);
    acc[0][j] = vdotq_laneq_s32(acc[0][j], w, x0, kLane);
    acc[1][j] = vdotq_laneq_s32(acc[1][j], w, x1, kLane);
    acc[2][j] = vdotq_laneq_s32(acc[2][j], w, x2, kLane);
    acc[3][j] = vdotq_laneq_s32(acc[3][j], w, x3, kLane);
  }
}

inline void tile_4x16c4(const uint8_t* a, size_t k_pad, const int8_t* b, int32x4_t acc[kGemmMR][4]) {
  // Local accumulators, stored to acc once at the end: acc itself may alias the int8 weights
  // (a char type), which would make the compiler store all 16 after every SDOT.
  int32x4_t c[kGemmMR][4];
  for (size_t r = 0; r < kGemmMR; ++r)
    for (size_t j = 0; j < 4; ++j) c[r][j] = vdupq_n_s32(0);
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (size_t k0 = 0; k0 < k_pad; k0 += kKR, b += kKR * kTileNR) {
    const int8x16_t x0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + k0), flip));
    const int8x16_t x1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + k_pad + k0), flip));
    const int8x16_t x2 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + 2 * k_pad + k0), flip));
    const int8x16_t x3 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + 3 * k_pad + k0), flip));
    dot<0>(c, b, x0, x1, x2, x3);
    dot<1>(c, b + 4 * kTileNR, x0, x1, x2, x3);
    dot<2>(c, b + 8 * kTileNR, x0, x1, x2, x3);
    dot<3>(c, b + 12 * kTileNR, x0, x1, x2, x3);
  }
  for (size_t r = 0; r < kGemmMR; ++r)
    for (size_t j = 0; j < 4; ++j) acc[r][j] = c[r][j];
}

}  // namespace

void gemm_u8s8_4x16c4__neondot(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                               void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                               void* scratch) {
  gemm_4xn<kTileNR, uint8_t, int8_t, pad_rows, tile_4x16c4>(w, out, x, x_stride, y, y_stride, rows,
                                                            tile_begin, tile_end, scratch);
}

}  // namespace intinfer
