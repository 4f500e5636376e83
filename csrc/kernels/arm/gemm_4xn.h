// The 4-row GEMM of the NEON paths, one template over a MAC policy, with its row/tile driver
// and output stage. Everything here has internal linkage (an anonymous namespace): each unit
// that includes it, built with its own flags (+dotprod, +i8mm), keeps its own copy
// (docs/kernels.md).
//
// The MAC policy is the template's arguments:
//   kNR               output channels per tile (8 or 16: kNR / 4 int32x4 accumulators per row)
//   Act, Code         element types of the prepared activations and of the packed weights (a
//                     byte for sub-byte tiles, pack.h)
//   kPrepare(x, x_stride, mr, k, k_pad, out)
//                     rows [0, mr) of x as kTile reads them, k padded to k_pad, rows mr..3
//                     neutral (their products are zero or dropped)
//   kTile(a, k_pad, b, acc)
//                     acc[r][q] = channels 4q..4q+3 of row r over the whole (padded) k, b the
//                     tile's codes (TileLayout{4, kNR, kr, k_align} of pack.h); or
//   kTile(a, k_pad, b, bias, acc)
//                     the same sums started from the tile's kNR biases (the output stage then
//                     adds none: 16 instructions a 4 x 16 tile where the bias seeds the SDOT
//                     accumulators); kTile1 takes the same arguments as kTile
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../gemm_tiles.h"
#include "../pack.h"
#include "requant_neon.h"

namespace intinfer {
namespace {

constexpr size_t kGemmMR = 4;

// p advanced by kN elements behind an empty asm statement, which hides p's value from the
// compiler and is a barrier no load moves across: the loads through p are then each one load
// with a post-increment of p itself, where the source puts them. Without it gcc addresses them
// from copies of p, or, in the SDOT tile, hoists all 16 weight loads of a step and spills (used
// by the SDOT sub-byte tiles; the int8 loops and armv7's are assembly).
template <size_t kN, typename T>
[[gnu::always_inline]] inline void advance_opaque(const T*& p) {
  p += kN;
  asm volatile("" : "+r"(p) : : "memory");
}

// The kPrepare of the kernels that multiply int8 (SDOT, SMULL): rows [0, mr) of x flipped to
// int8 (x ^ 0x80 = x - 128), k padded to k_pad with 0, rows past mr zero, interleaved so that
// a step's four rows load together. row_x4_offset: where k index i of row r goes; per step of 16
// k, the 4 rows' 16 bytes one after another (64 bytes: one LD1 of four registers, or two LDP); a
// last step of 8 k (k_pad % 16 == 8) as 4 x 8.
inline size_t row_x4_offset(size_t r, size_t i, size_t k_pad) {
  const size_t k0 = i - i % 16;
  return 4 * k0 + r * std::min<size_t>(16, k_pad - k0) + i % 16;
}

// k_pad a multiple of 8.
inline void flip_rows_x4(const uint8_t* x, size_t x_stride, size_t mr, size_t k, size_t k_pad, int8_t* out) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  uint8_t* o = reinterpret_cast<uint8_t*>(out);
  size_t k0 = 0;
  if (mr == kGemmMR) {
    // A whole tile of rows (all but a layer's last), four rows a step, and a last step of 8 k
    // where k fills it: EfficientNet-Lite0's 1x1 convolutions (k of 16 to 1152) spent 4.2 M
    // instructions in this function on cortex-a76 when each row took the byte-wise path below.
    const uint8_t *x0 = x, *x1 = x0 + x_stride, *x2 = x1 + x_stride, *x3 = x2 + x_stride;
    for (; k0 + 16 <= k; k0 += 16, o += 64) {
      vst1q_u8(o, veorq_u8(vld1q_u8(x0 + k0), flip));
      vst1q_u8(o + 16, veorq_u8(vld1q_u8(x1 + k0), flip));
      vst1q_u8(o + 32, veorq_u8(vld1q_u8(x2 + k0), flip));
      vst1q_u8(o + 48, veorq_u8(vld1q_u8(x3 + k0), flip));
    }
    if (k0 + 8 == k && k == k_pad) {
      const uint8x8_t f = vget_low_u8(flip);
      vst1_u8(o, veor_u8(vld1_u8(x0 + k0), f));
      vst1_u8(o + 8, veor_u8(vld1_u8(x1 + k0), f));
      vst1_u8(o + 16, veor_u8(vld1_u8(x2 + k0), f));
      vst1_u8(o + 24, veor_u8(vld1_u8(x3 + k0), f));
      return;
    }
  }
  // The steps left (a row's end, the zero padding, rows past mr): each row's part of a step
  // copied into 16 bytes of 0x80, which flip to 0.
  for (; k0 < k_pad; k0 += 16) {
    const size_t step = std::min<size_t>(16, k_pad - k0);
    for (size_t r = 0; r < kGemmMR; ++r, o += step) {
      uint8_t part[16];
      std::memset(part, 0x80, sizeof part);
      if (r < mr && k0 < k) std::memcpy(part, x + r * x_stride + k0, std::min(step, k - k0));
      const uint8x16_t v = veorq_u8(vld1q_u8(part), flip);
      if (step == 16)
        vst1q_u8(o, v);
      else
        vst1_u8(o, vget_low_u8(v));
    }
  }
}

// The GemmFn of tables.h for one policy; kTile1 (optional): kTile for a row tile of one row
// (kTile1(a, k_pad, b, acc[0]), with `bias` as kTile: row 0 alone), which the 4-row tile would
// compute four times over (a batch of one, a layer's last row).
//
// The loop nest is the one gemm_tiles.h gives the x86 GEMMs, written out here so that a tile's
// accumulators are local to its iteration and its rows are stored together: the output pointer and
// the tile's width worked out once a tile, the four rows of a whole tile stored without a test each
// (on aarch64, a whole 4 x 8 tile of the commonest output stage by store_4x8_right,
// requant_neon.h). Through for_each_gemm_tile's per-row store callback, gcc kept the pairs kernel's
// accumulators on the stack between the tile and the stores and recomputed each row's address. A
// last row tile of one row, where kTile1 exists, has a nest of its own. EfficientNet-Lite0 on
// cortex-a53 (qemu, docs/arm-performance.md): 123.08 -> 116.47 M instructions.
template <size_t kNR, typename Act, typename Code, auto kPrepare, auto kTile, auto kTile1 = nullptr>
void gemm_4xn(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
              size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  constexpr size_t kQ = kNR / 4;
  constexpr bool kTileAddsBias =
      std::is_invocable_v<decltype(kTile), const Act*, size_t, const Code*, const int32_t*, int32x4_t(*)[kQ]>;
  constexpr bool kHasTile1 = !std::is_same_v<decltype(kTile1), std::nullptr_t>;
  auto* a = static_cast<Act*>(scratch);
  // w's fields in locals (and the output stage by value, below): the output's byte stores may
  // alias anything reached through a reference, which made the compiler reload them per tile.
  const auto* codes = static_cast<const Code*>(w.weights);
  const int32_t* bias = w.bias;
  const size_t n = w.n, k = w.k, k_pad = w.k_pad;
  // Elements of Code per tile: k_pad x kNR codes of w.code_bits (sub-byte tiles pack several a byte).
  const size_t tile_codes = k_pad * kNR * w.code_bits / (8 * sizeof(Code));
  const size_t rows4 = kHasTile1 && rows % kGemmMR == 1 ? rows - 1 : rows;  // rows of the 4-row tiles
  // Per tile: output(r0, mr, c, acc, R): rows [r0, r0 + mr) of the output, channels [c, c + kNR), from
  // acc's first R rows (R a std::integral_constant, 1 or 4).
  auto drive = [&](auto&& output) {
    // By value: the closures of drive and of the output stage's kernel are reached through a
    // pointer (run_output_stage is out of line), so a capture by reference was reloaded per tile.
    auto nest = [=](auto tile_rows, size_t first, size_t last) {
      constexpr size_t kRows = decltype(tile_rows)::value;
      for (size_t r0 = first; r0 < last; r0 += kRows) {
        const size_t mr = std::min(kRows, last - r0);
        kPrepare(x + r0 * x_stride, x_stride, mr, k, k_pad, a);
        for (size_t t = tile_begin; t < tile_end; ++t) {
          int32x4_t acc[kRows][kQ];
          if constexpr (kRows == 1 && kTileAddsBias)
            kTile1(a, k_pad, codes + t * tile_codes, bias + t * kNR, acc[0]);
          else if constexpr (kRows == 1)
            kTile1(a, k_pad, codes + t * tile_codes, acc[0]);
          else if constexpr (kTileAddsBias)
            kTile(a, k_pad, codes + t * tile_codes, bias + t * kNR, acc);
          else
            kTile(a, k_pad, codes + t * tile_codes, acc);
          output(r0, mr, t * kNR, acc, tile_rows);
        }
      }
    };
    nest(std::integral_constant<size_t, kGemmMR>{}, 0, rows4);
    if constexpr (kHasTile1)
      if (rows4 < rows) nest(std::integral_constant<size_t, 1>{}, rows4, rows);
  };
  if (w.output_scales != nullptr) {
    float* yf = static_cast<float*>(y);
    drive([&](size_t r0, size_t mr, size_t c, auto acc, auto tile_rows) {
      for_rows<decltype(tile_rows)::value>([&](auto r) {
        if (r < mr) {
          float* row = yf + (r0 + r) * y_stride;
          store_f32x8<!kTileAddsBias>(bias, w.output_scales, n, row, c, acc[r][0], acc[r][1]);
          if constexpr (kNR == 16)
            if (c + 8 < n) store_f32x8<!kTileAddsBias>(bias, w.output_scales, n, row, c + 8, acc[r][2], acc[r][3]);
        }
      });
    });
    return;
  }
  uint8_t* yu = static_cast<uint8_t*>(y);
  with_output_stage(w, out, [&](auto stage) {
    // By value: the byte stores may alias whatever a reference reaches (reloaded per row).
    drive([stage, yu, y_stride, n](size_t r0, size_t mr, size_t c, auto acc, auto tile_rows) {
      constexpr size_t kRows = decltype(tile_rows)::value;
      uint8_t* row = yu + r0 * y_stride + c;
      const size_t valid = std::min(n - c, kNR);
      const bool whole = mr == kRows && valid == kNR;  // every tile of a layer but its edges
#if defined(__aarch64__)
      if constexpr (kNR == 8 && kRows == kGemmMR && !kTileAddsBias && decltype(stage)::kRightNoClamp)
        if (whole)
          return store_4x8_right(acc, stage.bias + c, stage.multiplier + c, stage.right_shift + c, stage.zero_point,
                                 row, y_stride);
#endif
      // Each 4 channels' parameters loaded once for the tile's rows (rows past the last of a
      // 4-row tile are requantized too, and not stored).
      for (size_t j = 0; j < kQ; ++j) {
        const ChannelStage s = stage.channels(c + 4 * j);
        for_rows<kRows>([&](auto r) {
          if constexpr (kTileAddsBias)
            acc[r][j] = stage.requantize(acc[r][j], s);
          else
            acc[r][j] = stage.apply4(acc[r][j], s);
        });
      }
      auto store_row = [&](size_t r, size_t count) {
        if constexpr (kNR == 16)
          store_u8x16(row + r * y_stride, stage.narrow16(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), count);
        else
          store_u8x8(row + r * y_stride, stage.narrow8(acc[r][0], acc[r][1]), count);
      };
      if (whole) {
        for_rows<kRows>([&](auto r) { store_row(r, kNR); });
        return;
      }
      for_rows<kRows>([&](auto r) {
        if (r < mr) store_row(r, valid);
      });
    });
  });
}

}  // namespace
}  // namespace intinfer
