// Block-sparse GEMM on AVX-512 VNNI: weights as pack.h regroups them (groups of 4 consecutive
// reduction indices that hold a non-zero code, int8), multiplied by 512-bit vpdpbusd: uint8
// activations as they are (no flip: TileLayout act_offset 0) by the int8 codes, exact. Only the
// stored groups are read and multiplied.
//
// Several rows: 16 rows a pass, transposed once into quads, group by group (group q of row r at
// prep[(q * 16 + r) * 4]), so that one group of one channel is one vpdpbusd of the 16 rows' quads
// by the group's four codes broadcast, row r's sum in lane r; 16 channels' vectors are then
// transposed into rows for the 512-bit output stage. One row: the row as int16, eight groups of
// a channel a step by vpmaddwd (below).
#include <immintrin.h>

#include <cstring>

#include "gemm_rows_x86.h"
#include "requant_avx512.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

constexpr size_t kQuad = 4;   // reduction indices a group
constexpr size_t kRows = 16;  // rows a pass (lanes of a vector)
constexpr size_t kTile = 16;  // channels a column tile

// Channel c of the 16 prepared rows: lane r is row r's sum of products (two chains of groups).
inline __m512i channel_rows(const PackedView& w, const uint8_t* codes, const uint8_t* prep, size_t c) {
  // acc + group g's four codes (broadcast) times the 16 rows' quads of its reduction indices.
  auto mac = [&](__m512i acc, uint32_t g) {
    int32_t quad;
    std::memcpy(&quad, codes + g * kQuad, sizeof quad);
    return _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(prep + w.group_k[g] * kRows), _mm512_set1_epi32(quad));
  };
  __m512i a0 = _mm512_setzero_si512(), a1 = a0;
  uint32_t g = w.group_start[c];
  const uint32_t end = w.group_start[c + 1];
  for (; g + 2 <= end; g += 2) {
    a0 = mac(a0, g);
    a1 = mac(a1, g + 1);
  }
  if (g < end) a0 = mac(a0, g);
  return _mm512_add_epi32(a0, a1);
}

// v[i] (lane r: row r of channel i) into out[r] (lane i: channel i of row r).
void transpose16x16(const __m512i v[16], __m512i out[16]) {
  __m512i t[16], s[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
  // s[4i + j], 128-bit block L: row 4L + j of channels 4i .. 4i + 3.
  for (int i = 0; i < 4; ++i) {
    s[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    s[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    s[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    s[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  // Row 4L + j: block L of s[j], s[4 + j], s[8 + j], s[12 + j].
  for (int j = 0; j < 4; ++j) {
    const __m512i a = _mm512_shuffle_i32x4(s[j], s[4 + j], 0x44), b = _mm512_shuffle_i32x4(s[j], s[4 + j], 0xEE);
    const __m512i c = _mm512_shuffle_i32x4(s[8 + j], s[12 + j], 0x44);
    const __m512i d = _mm512_shuffle_i32x4(s[8 + j], s[12 + j], 0xEE);
    out[j] = _mm512_shuffle_i32x4(a, c, 0x88);
    out[4 + j] = _mm512_shuffle_i32x4(a, c, 0xDD);
    out[8 + j] = _mm512_shuffle_i32x4(b, d, 0x88);
    out[12 + j] = _mm512_shuffle_i32x4(b, d, 0xDD);
  }
}

// A pass of rows [0, rows <= 16) over the channels [c_begin, c_end); output rows y_row_bytes apart.
void gemm_rows(const PackedView& w, const OutputStage512& stage, const uint8_t* x, size_t x_stride, void* y,
               size_t y_row_bytes, size_t rows, size_t c_begin, size_t c_end, uint8_t* prep) {
  const auto* codes = static_cast<const uint8_t*>(w.weights);
  quads_by_group<kRows>(x, x_stride, rows, w.k, w.k_pad, 0, prep);
  for (size_t c = c_begin; c < c_end; c += kTile) {
    const size_t valid = c_end - c < kTile ? c_end - c : kTile;
    __m512i per_channel[16], per_row[16];
    for (size_t i = 0; i < kTile; ++i)
      per_channel[i] = i < valid ? channel_rows(w, codes, prep, c + i) : _mm512_setzero_si512();
    transpose16x16(per_channel, per_row);
    stage.store_rows(rows, [&](size_t r) { return per_row[r]; }, c, lanes_below(valid), y, y_row_bytes);
  }
}

// One row: channel c's 16 partial sums (their total is the row's sum of products). The row
// widened to int16 (copied to `a`, k padded to k_pad with zeros), eight groups of one channel a
// step: their quads by 64-bit loads against the eight groups' codes widened in registers, one
// vpmaddwd (255 x 128 x 2 within int32); the last step masked (the packer pads the codes and
// group_k, so the loads stay inside them). A gather of the quads (vpgatherdd) against vpdpbusd
// was 1.3-1.6x slower.
inline __m512i channel_one_row(const PackedView& w, const uint8_t* codes, const int16_t* a, size_t c) {
  auto quad = [a](uint32_t k) {
    int64_t v;
    std::memcpy(&v, a + k, sizeof v);
    return v;
  };
  __m512i acc = _mm512_setzero_si512();
  const uint32_t end = w.group_start[c + 1];
  for (uint32_t g = w.group_start[c]; g < end; g += 8) {
    const uint32_t* k = w.group_k + g;
    const __mmask8 valid = end - g >= 8 ? __mmask8{0xFF} : static_cast<__mmask8>((1u << (end - g)) - 1);
    const __m512i x8 = _mm512_maskz_mov_epi64(valid, _mm512_setr_epi64(quad(k[0]), quad(k[1]), quad(k[2]), quad(k[3]),
                                                                        quad(k[4]), quad(k[5]), quad(k[6]), quad(k[7])));
    const __m512i b = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + g * kQuad)));
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x8, b));
  }
  return acc;
}

void gemm_one_row(const PackedView& w, const OutputStage512& stage, const uint8_t* x, void* y, size_t c_begin,
                  size_t c_end, int16_t* a) {
  const auto* codes = static_cast<const uint8_t*>(w.weights);
  for (size_t i = 0; i < w.k; ++i) a[i] = x[i];
  for (size_t i = w.k; i < w.k_pad; ++i) a[i] = 0;
  for (size_t c = c_begin; c < c_end; c += kTile) {
    const size_t valid = c_end - c < kTile ? c_end - c : kTile;
    alignas(64) int32_t sums[kTile] = {};
    for (size_t i = 0; i < valid; ++i) sums[i] = _mm512_reduce_add_epi32(channel_one_row(w, codes, a, c + i));
    const __m512i acc = _mm512_load_si512(sums);
    stage.store_rows(1, [&](size_t) { return acc; }, c, lanes_below(valid), y, 0);
  }
}

}  // namespace

void gemm_u8bs8_16x1c4__avx512vnni(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride,
                                   void* y, size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end,
                                   void* scratch) {
  const size_t c_begin = tile_begin * kTile < w.n ? tile_begin * kTile : w.n;
  const size_t c_end = tile_end * kTile < w.n ? tile_end * kTile : w.n;
  const OutputStage512 stage(w, out);
  auto* prep = static_cast<uint8_t*>(scratch);
  const size_t y_row_bytes = y_stride * (w.output_scales != nullptr ? sizeof(float) : 1);
  for (size_t m = 0; m < rows;) {
    const uint8_t* xm = x + m * x_stride;
    void* ym = static_cast<uint8_t*>(y) + m * y_row_bytes;
    if (rows - m == 1) {
      gemm_one_row(w, stage, xm, ym, c_begin, c_end, reinterpret_cast<int16_t*>(prep));
      m += 1;
    } else {
      const size_t n = rows - m < kRows ? rows - m : kRows;
      gemm_rows(w, stage, xm, x_stride, ym, y_row_bytes, n, c_begin, c_end, prep);
      m += n;
    }
  }
}

}  // namespace intinfer
