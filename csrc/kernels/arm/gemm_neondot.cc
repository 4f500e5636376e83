// NEON dot-product GEMM (aarch64, ARMv8.2 SDOT), 4 rows x 16 channels: per 16 k, four row loads
// (flipped to int8 by one EOR each), sixteen weight loads and 64 SDOT (vdotq_laneq_s32: 4
// channels x 4 k x one row), 1024 multiply-accumulates. SDOT is int8 x int8, so the activation
// enters as a - 128 and the bias carries + 128 * sum_k w (gemm_neon.h); every sum is exact.
#include <arm_neon.h>

#include <cstring>

#include "../gemm_tiles.h"
#include "gemm_neon.h"
#include "requant_neon.h"

namespace intinfer {
namespace {

constexpr size_t kMR = 4;   // rows per micro-tile
constexpr size_t kNR = 16;  // output channels per micro-tile (four int32x4 per row)
constexpr size_t kKR = 16;  // k per step of the inner loop (one 16-byte load per row)

// Rows [0, mr) of x with k padded to k_pad; padding and rows past mr hold 128, which the
// flip to int8 turns into 0 (their weights are 0 as well).
void pad_rows(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, uint8_t* out) {
  for (size_t r = 0; r < kMR; ++r) {
    uint8_t* o = out + r * k_pad;
    std::memset(o, 0x80, k_pad);
    if (r < mr) std::memcpy(o, x + r * x_stride, k);
  }
}

// The 4 k of group kLane of x0..x3 against 16 channels: four weight vectors of 4 channels x 4 k.
template <int kLane>
inline void dot(int32x4_t acc[kMR][4], const int8_t* b, int8x16_t x0, int8x16_t x1, int8x16_t x2, int8x16_t x3) {
  for (size_t j = 0; j < 4; ++j) {
    const int8x16_t w = vld1q_s8(b + 16 * j);
    acc[0][j] = vdotq_laneq_s32(acc[0][j], w, x0, kLane);
    acc[1][j] = vdotq_laneq_s32(acc[1][j], w, x1, kLane);
    acc[2][j] = vdotq_laneq_s32(acc[2][j], w, x2, kLane);
    acc[3][j] = vdotq_laneq_s32(acc[3][j], w, x3, kLane);
  }
}

inline void micro_tile(const uint8_t* a, size_t k_pad, const int8_t* b, int32x4_t acc[kMR][4]) {
  // Local accumulators, stored to acc once at the end: acc itself may alias the int8 weights
  // (a char type), which would make the compiler store all 16 after every SDOT.
  int32x4_t c[kMR][4];
  for (size_t r = 0; r < kMR; ++r)
    for (size_t j = 0; j < 4; ++j) c[r][j] = vdupq_n_s32(0);
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (size_t k0 = 0; k0 < k_pad; k0 += kKR, b += kKR * kNR) {
    const int8x16_t x0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + k0), flip));
    const int8x16_t x1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + k_pad + k0), flip));
    const int8x16_t x2 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + 2 * k_pad + k0), flip));
    const int8x16_t x3 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + 3 * k_pad + k0), flip));
    dot<0>(c, b, x0, x1, x2, x3);
    dot<1>(c, b + 4 * kNR, x0, x1, x2, x3);
    dot<2>(c, b + 8 * kNR, x0, x1, x2, x3);
    dot<3>(c, b + 12 * kNR, x0, x1, x2, x3);
  }
  for (size_t r = 0; r < kMR; ++r)
    for (size_t j = 0; j < 4; ++j) acc[r][j] = c[r][j];
}

template <typename Store>
void gemm_driver(const PackedGemmNeonDot& w, const uint8_t* x, size_t x_stride, size_t rows, size_t tile_begin,
                 size_t tile_end, uint8_t* scratch, Store&& store) {
  for_each_gemm_tile<kMR, int32x4_t[4]>(
      rows, tile_begin, tile_end,
      [&](size_t r0, size_t mr) { pad_rows(x + r0 * x_stride, x_stride, mr, w.k, w.k_pad, scratch); },
      [&](size_t t, int32x4_t acc[kMR][4]) { micro_tile(scratch, w.k_pad, w.weights.data() + t * w.k_pad * kNR, acc); },
      store);
}

}  // namespace

PackedGemmNeonDot pack_gemm_neondot(const int8_t* weights, size_t n, size_t k, const int32_t* bias,
                                    const std::vector<QuantizedMultiplier>& multipliers,
                                    const std::vector<float>& output_scales) {
  PackedGemmNeonDot p;
  pack_output_stage(&p, n, k, kNR, bias, multipliers, output_scales);
  p.k_pad = (k + kKR - 1) / kKR * kKR;
  p.weights.assign(p.n_tiles * p.k_pad * kNR, 0);
  for (size_t c = 0; c < n; ++c) {
    int64_t sum = 0;
    for (size_t i = 0; i < k; ++i) {
      p.weights[(((c / kNR) * p.k_pad + i) / 4 * kNR + c % kNR) * 4 + i % 4] = weights[c * k + i];
      sum += weights[c * k + i];
    }
    // Modulo 2^32, as the kernel's adds: the final sum is the exact one, proven to fit at load.
    p.bias[c] = static_cast<int32_t>(static_cast<uint32_t>(p.bias[c]) + static_cast<uint32_t>(128 * sum));
  }
  return p;
}

size_t gemm_neondot_scratch_bytes(const PackedGemmNeonDot& w) { return kMR * w.k_pad; }

void gemm_u8s8_4x16c4__neondot(const PackedGemmNeonDot& w, const OutputStage& out, const uint8_t* x,
                               size_t x_stride, uint8_t* y, size_t y_stride, size_t rows, size_t tile_begin,
                               size_t tile_end, uint8_t* scratch) {
  const OutputStageNeon stage(w.bias.data(), w.multiplier.data(), w.left_shift.data(), w.right_shift.data(),
                              out.zero_point, out.act_min, out.act_max);
  gemm_driver(w, x, x_stride, rows, tile_begin, tile_end, scratch, [&](size_t r, size_t t, const int32x4_t* acc) {
    store_row16(stage, w, y + r * y_stride, t * kNR, acc);
  });
}

void gemm_u8s8_f32_4x16c4__neondot(const PackedGemmNeonDot& w, const uint8_t* x, size_t x_stride, float* y,
                                   size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                   uint8_t* scratch) {
  gemm_driver(w, x, x_stride, rows, tile_begin, tile_end, scratch, [&](size_t r, size_t t, const int32x4_t* acc) {
    store_row16_f32(w, y + r * y_stride, t * kNR, acc);
  });
}

}  // namespace intinfer
