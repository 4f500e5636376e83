// Block-sparse GEMM on NEON (ARMv7 and ARMv8.0), the driver of gemm_sparse_neon.h over SMULL /
// SMLAL: int8 codes and activations flipped to int8, so a product is within 128 x 127 and two
// of them sum exactly in int16 (pairs_fit_int16, docs/quantization.md). Several rows: per two
// groups and 4 rows, SMULL + SMLAL on the low halves (rows 0-1), SMULL2 + SMLAL2 on the high
// halves (rows 2-3), then SADALP adds the int16 pairs into the rows' int32 lanes: 6 instructions
// for 32 multiply-accumulates, where int16 codes by SMLAL by lane would take 8 (and twice the
// bytes). One row: SMULL + SMLAL2 + SADALP on four gathered groups.
#include <arm_neon.h>

#include "arm_kernels.h"
#include "gemm_sparse_neon.h"
#include "widen_neon.h"

namespace intinfer {
namespace {

// Two groups a step. acc[v][0] lanes: (row 4v: k 0-1, k 2-3, row 4v + 1: k 0-1, k 2-3), acc[v][1]
// the same for rows 4v + 2 and 4v + 3; the two groups' products summed in int16 first.
struct MacSmlal {
  static constexpr size_t kStep = 2;
  template <size_t kV>
  static void step(int32x4_t acc[kV][2], const int8x16_t x[kStep][kV], const int8_t* b) {
    const int8x16_t ca = dup_quad(b), cb = dup_quad(b + kSparseQuad);
    for (size_t v = 0; v < kV; ++v) {
      const int8x16_t xa = x[0][v], xb = x[1][v];
      const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(xa), vget_low_s8(ca)), vget_low_s8(xb), vget_low_s8(cb));
      const int16x8_t hi = mlal_high(mull_high(xa, ca), xb, cb);
      acc[v][0] = vpadalq_s16(acc[v][0], lo);
      acc[v][1] = vpadalq_s16(acc[v][1], hi);
    }
  }
  template <size_t kV>
  static void single(int32x4_t acc[kV][2], const int8x16_t x[kV], const int8_t* b) {
    const int8x16_t c = dup_quad(b);
    for (size_t v = 0; v < kV; ++v) {
      acc[v][0] = vpadalq_s16(acc[v][0], vmull_s8(vget_low_s8(x[v]), vget_low_s8(c)));
      acc[v][1] = vpadalq_s16(acc[v][1], mull_high(x[v], c));
    }
  }
  static int32x4_t rows(int32x4_t acc0, int32x4_t acc1) { return add_pairs(acc0, acc1); }
  // The products of groups 0-1 (low half) and 2-3 (high half) summed lane by lane in int16 (group
  // 0 with 2, 1 with 3), then in pairs into int32.
  static int32x4_t sum16(int32x4_t acc, int8x16_t x, int8x16_t c) {
    return vpadalq_s16(acc, mlal_high(vmull_s8(vget_low_s8(x), vget_low_s8(c)), x, c));
  }
};

}  // namespace

void gemm_u8bs8_8x1c4__neon(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  gemm_sparse<MacSmlal>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

}  // namespace intinfer
