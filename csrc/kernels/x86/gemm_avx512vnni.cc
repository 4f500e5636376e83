// The GEMM on AVX-512 VNNI: 512-bit vpdpbusd, 64 exact u8 x s8 products a step (twice the
// 256-bit AVX-VNNI's 32 wherever the core runs 512 bits at full width: intinfer-peak's two vpdpbusd
// lines), 32 vector registers and mask stores. The weights are the avxvnni tiles (16 channels x 4
// k a group, pack.h): one group of int8 codes is one zmm, channel c in int32 lane c. The tile is
// 8 rows x 16 channels and the driver takes two column tiles at a time, so a step of 4 k is 2
// weight loads, 8 broadcasts and 16 vpdpbusd into 16 accumulators (the 4 x 16 tile of 256 bits:
// 2 loads, 4 broadcasts, 8 vpdpbusd of half the width). One row (a batch-1 GEMV) runs four chains
// of accumulators a tile, as the 256-bit kernel does.
//
// 4- and 2-bit codes are stored as c + 8 and c + 1 (TileLayout code_offset, unsigned) and
// multiplied by the activations flipped to x - 128, as in gemm_avxvnni.cc; a group (32 or 16
// bytes) is broadcast to every 256- or 128-bit lane and each lane shifts its own field down.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../pack.h"
#include "gemm_rows_x86.h"
#include "requant_avx512.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

constexpr size_t kMR = 8;
constexpr size_t kNR = 16;

// A policy: kGroupBytes (one group of 16 channels x 4 codes), load() its codes as vpdpbusd takes
// them, kCodeOffset (codes stored as c + kCodeOffset, against flipped activations; 0: int8 codes
// against x itself) and mac().
struct DenseS8 {
  static constexpr size_t kGroupBytes = 64;
  static constexpr int32_t kCodeOffset = 0;
  static __m512i load(const uint8_t* b) { return _mm512_loadu_si512(b); }
  static __m512i mac(__m512i acc, __m512i x, __m512i w) { return _mm512_dpbusd_epi32(acc, x, w); }
};

// 32 bytes: the low nibbles are channels 0-7, the high ones 8-15 (pack.h's sub-byte tiles).
struct OffsetS4 {
  static constexpr size_t kGroupBytes = 32;
  static constexpr int32_t kCodeOffset = 8;
  static __m512i load(const uint8_t* b) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
    // The upper 256 bits' 16 words shift by 4: their high nibbles come down.
    return _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xFFFF0000u, v, 4), _mm512_set1_epi8(0x0F));
  }
  static __m512i mac(__m512i acc, __m512i x, __m512i w) { return _mm512_dpbusd_epi32(acc, w, x); }
};

// 16 bytes: bits 0-1 of each byte are channels 0-3, bits 2-3 4-7, bits 4-5 8-11, bits 6-7 12-15.
struct OffsetS2 {
  static constexpr size_t kGroupBytes = 16;
  static constexpr int32_t kCodeOffset = 1;
  static __m512i load(const uint8_t* b) {
    const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    // 128-bit lane j shifts its words by 2j.
    const __m512i shifts = _mm512_set_epi64(6 * 0x0001000100010001ll, 6 * 0x0001000100010001ll,
                                            4 * 0x0001000100010001ll, 4 * 0x0001000100010001ll,
                                            2 * 0x0001000100010001ll, 2 * 0x0001000100010001ll, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(v, shifts), _mm512_set1_epi8(3));
  }
  static __m512i mac(__m512i acc, __m512i x, __m512i w) { return _mm512_dpbusd_epi32(acc, w, x); }
};

// acc[r][j] = the dot products of row r of a (kMR prepared rows of `groups` int32 quads) with
// column tile j of b (kTiles tiles, tile_bytes apart).
template <typename Mac, size_t kTiles>
[[gnu::always_inline]] inline void micro_tile(const uint8_t* a, size_t groups, const uint8_t* b, size_t tile_bytes,
                                              __m512i acc[kMR][2]) {
  const int32_t* x = reinterpret_cast<const int32_t*>(a);
  __m512i c[kMR][kTiles];
#pragma GCC unroll 16
  for (size_t i = 0; i < kMR * kTiles; ++i) c[i / kTiles][i % kTiles] = _mm512_setzero_si512();
  for (size_t g = 0; g < groups; ++g) {
    __m512i wv[kTiles];
#pragma GCC unroll 2
    for (size_t j = 0; j < kTiles; ++j) wv[j] = Mac::load(b + j * tile_bytes + g * Mac::kGroupBytes);
#pragma GCC unroll 8
    for (size_t r = 0; r < kMR; ++r) {
      const __m512i xr = _mm512_set1_epi32(x[r * groups + g]);
#pragma GCC unroll 2
      for (size_t j = 0; j < kTiles; ++j) c[r][j] = Mac::mac(c[r][j], xr, wv[j]);
    }
  }
#pragma GCC unroll 16
  for (size_t i = 0; i < kMR * kTiles; ++i) acc[i / kTiles][i % kTiles] = c[i / kTiles][i % kTiles];
}

// The same for one row: four chains of accumulators a tile, a group each in turn (vpdpbusd adds
// into its accumulator, a chain as slow as its latency).
template <typename Mac, size_t kTiles>
[[gnu::always_inline]] inline void micro_row(const uint8_t* a, size_t groups, const uint8_t* b, size_t tile_bytes,
                                             __m512i acc[kMR][2]) {
  const int32_t* x = reinterpret_cast<const int32_t*>(a);
  constexpr size_t kChains = 4;
  __m512i c[kChains][kTiles];
#pragma GCC unroll 8
  for (size_t i = 0; i < kChains * kTiles; ++i) c[i / kTiles][i % kTiles] = _mm512_setzero_si512();
  auto step = [&](size_t g, size_t chain) {
    const __m512i xg = _mm512_set1_epi32(x[g]);
#pragma GCC unroll 2
    for (size_t j = 0; j < kTiles; ++j)
      c[chain][j] = Mac::mac(c[chain][j], xg, Mac::load(b + j * tile_bytes + g * Mac::kGroupBytes));
  };
  size_t g = 0;
  for (; g + kChains <= groups; g += kChains) {
#pragma GCC unroll 4
    for (size_t i = 0; i < kChains; ++i) step(g + i, i);
  }
  for (; g < groups; ++g) step(g, 0);
#pragma GCC unroll 2
  for (size_t j = 0; j < kTiles; ++j)
    acc[0][j] = _mm512_add_epi32(_mm512_add_epi32(c[0][j], c[1][j]), _mm512_add_epi32(c[2][j], c[3][j]));
}

// acc for `tiles` (1 or 2) column tiles from b and mr prepared rows of a: the one-row kernel for
// one row, the 8-row tile otherwise.
template <typename Mac>
inline void micro(const uint8_t* a, size_t groups, const uint8_t* b, size_t tile_bytes, size_t mr, size_t tiles,
                  __m512i acc[kMR][2]) {
  if (mr == 1)
    tiles == 2 ? micro_row<Mac, 2>(a, groups, b, tile_bytes, acc) : micro_row<Mac, 1>(a, groups, b, tile_bytes, acc);
  else
    tiles == 2 ? micro_tile<Mac, 2>(a, groups, b, tile_bytes, acc) : micro_tile<Mac, 1>(a, groups, b, tile_bytes, acc);
}

// The GemmFn of tables.h for one policy: rows in tiles of 8, column tiles two at a time.
template <typename Mac>
void gemm_8x16(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
               size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch_bytes) {
  uint8_t* scratch = static_cast<uint8_t*>(scratch_bytes);
  const uint8_t* codes = static_cast<const uint8_t*>(w.weights);
  const size_t groups = w.k_pad / 4;
  const size_t tile_bytes = groups * Mac::kGroupBytes;
  const OutputStage512 stage(w, out);
  const size_t y_row_bytes = y_stride * (w.output_scales != nullptr ? sizeof(float) : 1);
  __m512i acc[kMR][2];
  int32_t row_term[kMR] = {};
  for (size_t r0 = 0; r0 < rows; r0 += kMR) {
    const size_t mr = rows - r0 < kMR ? rows - r0 : kMR;
    if constexpr (Mac::kCodeOffset != 0) {
      flip_rows_u8(x + r0 * x_stride, x_stride, mr, kMR, w.k, w.k_pad, scratch);
      for (size_t r = 0; r < mr; ++r) row_term[r] = offset_row_term(x + (r0 + r) * x_stride, w.k, Mac::kCodeOffset);
    } else {
      copy_rows_u8(x + r0 * x_stride, x_stride, mr, kMR, w.k, w.k_pad, scratch);
    }
    for (size_t t = tile_begin; t < tile_end; t += 2) {
      const size_t tiles = tile_end - t >= 2 ? 2 : 1;
      micro<Mac>(scratch, groups, codes + t * tile_bytes, tile_bytes, mr, tiles, acc);
      for (size_t j = 0; j < tiles; ++j) {
        const size_t c = (t + j) * kNR;
        auto row_acc = [&](size_t r) {
          if constexpr (Mac::kCodeOffset != 0) return _mm512_sub_epi32(acc[r][j], _mm512_set1_epi32(row_term[r]));
          return acc[r][j];
        };
        stage.store_rows(mr, row_acc, c, lanes_below(w.n - c), static_cast<uint8_t*>(y) + r0 * y_row_bytes,
                         y_row_bytes);
      }
    }
  }
}

// MATMUL's b flipped to b' = b - 128 (int8) in the int8 GEMM's tiles: tile t, group g (k 4g ..
// 4g + 3), column c, code j at packed[(t * groups + g) * 64 + 4c + j]; zeros past n and k.
// Whole groups of whole tiles are vectors: 16 dwords k bytes apart (b transposed, [n, k]) or four
// rows of 16 columns interleaved into quads ([k, n]); the rest byte by byte.
inline void pack_matmul_b(const MatMulParams& p, const uint8_t* b, size_t groups, size_t n_tiles, uint8_t* packed) {
  const size_t k = p.k, n = p.n;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i column_offsets =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(static_cast<int32_t>(k)));
  for (size_t t = 0; t < n_tiles; ++t) {
    const size_t c0 = t * kNR;
    for (size_t g = 0; g < groups; ++g) {
      uint8_t* dst = packed + (t * groups + g) * 64;
      const size_t k0 = 4 * g;
      if (c0 + kNR <= n && k0 + 4 <= k) {
        __m512i v;
        if (p.transpose_b) {
          v = _mm512_i32gather_epi32(column_offsets, b + c0 * k + k0, 1);
        } else {
          auto row = [&](size_t i) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + (k0 + i) * n + c0)); };
          const __m128i r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3);
          const __m128i lo01 = _mm_unpacklo_epi8(r0, r1), hi01 = _mm_unpackhi_epi8(r0, r1);
          const __m128i lo23 = _mm_unpacklo_epi8(r2, r3), hi23 = _mm_unpackhi_epi8(r2, r3);
          // Columns 0-3, 4-7, 8-11, 12-15 as quads of k.
          const __m256i q01 = _mm256_set_m128i(_mm_unpackhi_epi16(lo01, lo23), _mm_unpacklo_epi16(lo01, lo23));
          const __m256i q23 = _mm256_set_m128i(_mm_unpackhi_epi16(hi01, hi23), _mm_unpacklo_epi16(hi01, hi23));
          v = _mm512_inserti64x4(_mm512_castsi256_si512(q01), q23, 1);
        }
        _mm512_storeu_si512(dst, _mm512_xor_si512(v, flip));
        continue;
      }
      for (size_t c = 0; c < kNR; ++c)
        for (size_t j = 0; j < 4; ++j) {
          const size_t col = c0 + c, kk = k0 + j;
          dst[4 * c + j] = col < n && kk < k ? static_cast<uint8_t>((p.transpose_b ? b[col * k + kk] : b[kk * n + col]) ^ 0x80)
                                             : 0;
        }
    }
  }
}

}  // namespace

void gemm_u8s8_8x16c4__avx512vnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                  void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                  void* scratch) {
  gemm_8x16<DenseS8>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s4_8x16c4__avx512vnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                  void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                  void* scratch) {
  gemm_8x16<OffsetS4>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

void gemm_u8s2_8x16c4__avx512vnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                  void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                  void* scratch) {
  gemm_8x16<OffsetS2>(w, out, x, x_stride, y, y_stride, rows, tile_begin, tile_end, scratch);
}

// MATMUL (MatMulFn): sum_k (a - z_a)(b - z_b), with b' = b - 128 and z_b' = z_b - 128, is
//   sum_k a b'  -  z_b' sum_k a  -  z_a sum_k b'  +  k z_a z_b':
// the int8 GEMM's tiles of a (uint8 as it is) by b' (packed per call), a term per row and one per
// column, each exact modulo 2^32 and their sum within int32 (MATMUL's depth limit, ops/matmul.cc).
void matmul_u8_8x16c4__avx512vnni(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y,
                                  size_t row_begin, size_t row_end, void* scratch) {
  const size_t k = p.k, n = p.n, k_pad = (k + 3) / 4 * 4, groups = k_pad / 4, n_tiles = (n + kNR - 1) / kNR;
  const size_t tile_bytes = groups * DenseS8::kGroupBytes;
  // matmul_scratch_bytes' layout: the tiles, an int32 per column, 8 rows.
  auto* packed = static_cast<uint8_t*>(scratch);
  auto* col_terms = reinterpret_cast<int32_t*>(packed + n_tiles * tile_bytes);
  auto* rows = reinterpret_cast<uint8_t*>(col_terms + n_tiles * kNR);
  pack_matmul_b(p, b, groups, n_tiles, packed);
  const uint32_t za = static_cast<uint32_t>(p.a_zero_point), zb = static_cast<uint32_t>(p.b_zero_point - 128);
  const __m512i ones = _mm512_set1_epi8(1);
  const __m512i constant = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(k) * za * zb));
  for (size_t t = 0; t < n_tiles; ++t) {
    __m512i sum = _mm512_setzero_si512();  // sum_k b' of the tile's 16 columns
    for (size_t g = 0; g < groups; ++g)
      sum = _mm512_dpbusd_epi32(sum, ones, _mm512_loadu_si512(packed + t * tile_bytes + g * DenseS8::kGroupBytes));
    _mm512_storeu_si512(col_terms + t * kNR,
                        _mm512_sub_epi32(constant, _mm512_mullo_epi32(sum, _mm512_set1_epi32(static_cast<int32_t>(za)))));
  }
  const Requant512 requant(p.multiplier);
  const Narrow512 narrow(p.out);
  __m512i acc[kMR][2];
  int32_t row_terms[kMR];
  for (size_t r0 = row_begin; r0 < row_end; r0 += kMR) {
    const size_t mr = row_end - r0 < kMR ? row_end - r0 : kMR;
    copy_rows_u8(a + r0 * k, k, mr, kMR, k, k_pad, rows);
    for (size_t r = 0; r < mr; ++r)
      row_terms[r] = static_cast<int32_t>(0u - zb * static_cast<uint32_t>(row_sum_u8(a + (r0 + r) * k, k)));
    for (size_t t = 0; t < n_tiles; t += 2) {
      const size_t tiles = n_tiles - t >= 2 ? 2 : 1;
      micro<DenseS8>(rows, groups, packed + t * tile_bytes, tile_bytes, mr, tiles, acc);
      for (size_t j = 0; j < tiles; ++j) {
        const size_t c = (t + j) * kNR;
        const __m512i col = _mm512_loadu_si512(col_terms + c);
        for (size_t r = 0; r < mr; ++r) {
          const __m512i v = _mm512_add_epi32(_mm512_add_epi32(acc[r][j], col), _mm512_set1_epi32(row_terms[r]));
          narrow.store(y + (r0 + r) * n + c, requant.apply(v), lanes_below(n - c));
        }
      }
    }
  }
}

}  // namespace intinfer
