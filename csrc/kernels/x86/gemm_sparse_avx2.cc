// Block-sparse GEMM on AVX2: weights as pack.h regroups them (groups of 4 consecutive reduction
// indices that hold a non-zero code, int8), multiplied by vpmaddubsw made exact as the dense
// AVX2 kernel does (gemm_avx2.cc): activations flipped to a = x - 128 (the layout's act_offset
// puts 128 * sum w in the bias), |a| times the codes with a's sign, a pair of products within
// 32512. Only the stored groups are read and multiplied, so the work falls with the density.
//
// Several rows (the layout's mr = 8): the rows' flipped activations are transposed once per pass
// into quads, group by group (group q of row r at prep[(q * R + r) * 4], R = 4 or 8 rows a pass);
// for each channel a group's four codes are broadcast and multiply all rows' quads of that group
// at once (one vpmaddubsw), vpmaddwd by ones leaving row r's sum in lane r; then the channel's
// output stage runs over the rows. One row: the flipped row as int16, four groups of one channel
// a step, their quads gathered by 64-bit loads against the four groups' codes widened in
// registers, one vpmaddwd; 8 channels reduced together and stored contiguously.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm_rows_x86.h"
#include "maddubs_exact.h"
#include "requant_avx2.h"
#include "x86_kernels.h"

namespace intinfer {
namespace {

constexpr size_t kQuad = 4;  // reduction indices a group

// Channel c of R <= 8 rows: lane r of the result is row r's sum of products (lanes past R: 0).
template <size_t R>
__m256i channel_rows(const PackedView& w, const uint8_t* codes, const uint8_t* prep, size_t c) {
  __m256i acc = _mm256_setzero_si256();
  for (uint32_t g = w.group_start[c]; g < w.group_start[c + 1]; ++g) {
    int32_t quad;
    std::memcpy(&quad, codes + g * kQuad, sizeof quad);
    const uint8_t* a = prep + w.group_k[g] * R;
    const __m256i rows = R == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))
                                : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
    acc = _mm256_add_epi32(acc, dot_quads_s8(rows, _mm256_set1_epi32(quad)));
  }
  return acc;
}

// v[i] (channel i's rows) into rows: out[r] = row r's channels 0-7.
void transpose8x8(const __m256i v[8], __m256i out[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);      // rows 0 | 4 of channels i..i+3
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);  // rows 1 | 5
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);  // rows 2 | 6
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);  // rows 3 | 7
  }
  for (int r = 0; r < 4; ++r) {
    out[r] = _mm256_permute2x128_si256(u[r], u[r + 4], 0x20);
    out[r + 4] = _mm256_permute2x128_si256(u[r], u[r + 4], 0x31);
  }
}

// Row sums of 8 channels [c, c + 8) into the output row y (only the first `valid` channels):
// the output stage, vectorized over channels as the dense kernels run it.
void store_channels8(const PackedView& w, const OutputStageAvx2& stage, __m256i acc, size_t c, size_t valid,
                     void* y) {
  if (w.output_scales != nullptr) {
    alignas(32) float v[8];
    _mm256_store_ps(v, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(
                                         acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.bias + c)))),
                                     _mm256_loadu_ps(w.output_scales + c)));
    std::copy(v, v + valid, static_cast<float*>(y) + c);
    return;
  }
  const __m256i q = stage.stage8(acc, c);
  const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  const __m128i q8 = _mm_packus_epi16(q16, q16);
  uint8_t* out = static_cast<uint8_t*>(y) + c;
  if (valid == 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), q8);
    return;
  }
  uint64_t bytes = static_cast<uint64_t>(_mm_cvtsi128_si64(q8));
  for (size_t i = 0; i < valid; ++i, bytes >>= 8) out[i] = static_cast<uint8_t>(bytes);
}

// Passes of R rows over the channels [c_begin, c_end), 8 channels at a time; output rows
// y_row_bytes apart.
template <size_t R>
void gemm_rows(const PackedView& w, const OutputStageAvx2& stage, const uint8_t* x, size_t x_stride, void* y,
               size_t y_row_bytes, size_t rows, size_t c_begin, size_t c_end, uint8_t* prep) {
  const auto* codes = static_cast<const uint8_t*>(w.weights);
  quads_by_group<R>(x, x_stride, rows, w.k, w.k_pad, 0x80, prep);  // flipped to x - 128
  for (size_t c = c_begin; c < c_end; c += 8) {
    const size_t valid = std::min<size_t>(8, c_end - c);
    __m256i per_channel[8], per_row[8];
    for (size_t i = 0; i < 8; ++i)
      per_channel[i] = i < valid ? channel_rows<R>(w, codes, prep, c + i) : _mm256_setzero_si256();
    transpose8x8(per_channel, per_row);
    for (size_t r = 0; r < rows; ++r)
      store_channels8(w, stage, per_row[r], c, valid, static_cast<uint8_t*>(y) + r * y_row_bytes);
  }
}

// One row: channel c's 8 partial sums (their total is the row's sum of products). The row
// flipped and widened to int16, four groups of one channel a step: their quads gathered by 64-bit
// loads against the four groups' codes widened in registers (vpmovsxbw), one vpmaddwd; the last
// step masked (the packer pads the codes and group_k, so the loads stay inside them).
__m256i channel_one_row(const PackedView& w, const uint8_t* codes, const int16_t* a, size_t c) {
  const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
  auto quad = [a](uint32_t k) {
    int64_t v;
    std::memcpy(&v, a + k, sizeof v);
    return v;
  };
  __m256i acc = _mm256_setzero_si256();
  const uint32_t end = w.group_start[c + 1];
  for (uint32_t g = w.group_start[c]; g < end; g += 4) {
    const __m256i valid = _mm256_cmpgt_epi64(_mm256_set1_epi64x(end - g), lane);
    const uint32_t* k = w.group_k + g;
    const __m256i x4 = _mm256_and_si256(_mm256_setr_epi64x(quad(k[0]), quad(k[1]), quad(k[2]), quad(k[3])), valid);
    const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + g * kQuad)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x4, b));
  }
  return acc;
}

// The totals of 8 vectors of partial sums, lane i = the total of v[i].
__m256i totals8(const __m256i v[8]) {
  const __m256i t0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
}

void gemm_one_row(const PackedView& w, const OutputStageAvx2& stage, const uint8_t* x, void* y, size_t c_begin,
                  size_t c_end, int16_t* a) {
  const auto* codes = static_cast<const uint8_t*>(w.weights);
  for (size_t i = 0; i < w.k; ++i) a[i] = static_cast<int16_t>(x[i] - 128);
  std::fill(a + w.k, a + w.k_pad, int16_t{0});
  for (size_t c = c_begin; c < c_end; c += 8) {
    const size_t valid = std::min<size_t>(8, c_end - c);
    __m256i partial[8];
    for (size_t i = 0; i < 8; ++i) partial[i] = i < valid ? channel_one_row(w, codes, a, c + i) : _mm256_setzero_si256();
    store_channels8(w, stage, totals8(partial), c, valid, y);
  }
}

}  // namespace

void gemm_u8bs8_8x1c4__avx2(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                            size_t y_stride, size_t rows, size_t tile_begin, size_t tile_end, void* scratch) {
  constexpr size_t kTile = 16;  // channels a column tile
  const size_t c_begin = std::min(tile_begin * kTile, w.n), c_end = std::min(tile_end * kTile, w.n);
  // A float output has no requantization (and no shifts to scan).
  const OutputStageAvx2 stage(w.bias, w.multiplier, w.left_shift, w.right_shift, w.output_scales ? 0 : w.n,
                              out.zero_point, out.act_min, out.act_max);
  auto* prep = static_cast<uint8_t*>(scratch);
  const size_t y_row_bytes = y_stride * (w.output_scales != nullptr ? sizeof(float) : 1);
  for (size_t m = 0; m < rows;) {
    const size_t left = rows - m;
    const uint8_t* xm = x + m * x_stride;
    void* ym = static_cast<uint8_t*>(y) + m * y_row_bytes;
    if (left == 1) {
      gemm_one_row(w, stage, xm, ym, c_begin, c_end, reinterpret_cast<int16_t*>(prep));
      m += 1;
    } else if (left <= 4) {
      gemm_rows<4>(w, stage, xm, x_stride, ym, y_row_bytes, left, c_begin, c_end, prep);
      m += left;
    } else {
      const size_t n = std::min<size_t>(8, left);
      gemm_rows<8>(w, stage, xm, x_stride, ym, y_row_bytes, n, c_begin, c_end, prep);
      m += n;
    }
  }
}

}  // namespace intinfer
