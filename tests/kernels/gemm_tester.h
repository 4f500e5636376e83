// The GEMM micro-kernel tester, in the manner of XNNPACK's GemmMicrokernelTester: fluent setters
// for the shape, strides, zero points, requantization and column-tile range, and one Test(row)
// that packs random weights with the row's TileLayout, runs the row and compares every output
// byte (and every byte around it) with the reference kernels.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <string>
#include <cstdio>

#include "kernels/ref/kernels.h"
#include "kernels/tables.h"
#include "tester.h"

namespace intinfer {
namespace test {

class GemmTester {
 public:
  GemmTester& m(size_t v) { m_ = v; return *this; }
  GemmTester& n(size_t v) { n_ = v; return *this; }
  GemmTester& k(size_t v) { k_ = v; return *this; }
  // Row strides; 0 = dense (k bytes of x, n elements of y).
  GemmTester& x_stride(size_t v) { x_stride_ = v; return *this; }
  GemmTester& y_stride(size_t v) { y_stride_ = v; return *this; }
  GemmTester& input_zero_point(int32_t v) { input_zero_point_ = v; return *this; }
  GemmTester& output_zero_point(int32_t v) { output_zero_point_ = v; return *this; }
  GemmTester& act_min(int32_t v) { act_min_ = v; return *this; }
  GemmTester& act_max(int32_t v) { act_max_ = v; return *this; }
  // Multiplier shifts drawn from [lo, hi] (positive: left shifts); default: around what brings
  // a random accumulator of depth k into 8 bits, so outputs span the range and some saturate.
  GemmTester& shifts(int lo, int hi) { shift_lo_ = lo; shift_hi_ = hi; shifts_set_ = true; return *this; }
  GemmTester& float_output(bool v) { float_output_ = v; return *this; }
  // Column tiles [begin, end) of the row's nr channels; end past the last tile = all.
  GemmTester& tiles(size_t begin, size_t end) { tile_begin_ = begin; tile_end_ = end; return *this; }
  // 0: random codes; +1 / -1: every code +max_abs / -max_abs and every activation `input`: 255
  // with a zero point of 0 (the accumulator's extreme), or 0 with a zero point of 255 (the same
  // extreme of the other sign, and x - 128 = -128: the 8-bit-pairs kernels' largest products).
  GemmTester& extreme(int sign, uint8_t input = 255) {
    extreme_ = sign;
    extreme_input_ = input;
    return *this;
  }
  // int16 codes in [-255, 255]: MATMUL's b - z_b, with a per-tensor multiplier.
  GemmTester& s16(bool v) { s16_ = v; return *this; }
  // Weight codes of 8 bits, or 4 / 2 handed to the packer as rows of the file's packed encoding.
  GemmTester& bits(int v) { bits_ = v; return *this; }
  // int8 codes in the file's block-sparse encoding (docs/format.md): each block of `block` codes
  // along rows of `row_length` (0: k; a channel is k / row_length rows, as a conv's OHWI) kept
  // with probability `density`, the others zero; a block or row length that does not divide k
  // falls back to 1 and k. `bitmap`: the block_bitmap encoding's index, else block_sparse's.
  GemmTester& sparse(size_t block, double density, size_t row_length = 0, bool bitmap = false) {
    block_ = block;
    density_ = density;
    row_length_ = row_length;
    bitmap_ = bitmap;
    return *this;
  }
  GemmTester& seed(uint64_t v) { seed_ = v; return *this; }

  WeightFormat format() const {
    if (block_)
      return block_sparse_s8(static_cast<uint32_t>(k_ % block_ == 0 ? block_ : 1),
                             bitmap_ ? WeightFormat::BlockIndex::kBitmap : WeightFormat::BlockIndex::kColumns);
    return s16_ ? kWeightsS16 : bits_ == 4 ? kWeightsS4 : bits_ == 2 ? kWeightsS2 : kWeightsS8;
  }

  // Runs the row on this case; on a difference prints the row, the case and the first wrong
  // element, and returns false.
  bool Test(const GemmRow& row) const {
    const WeightFormat format = this->format();
    const size_t xs = x_stride_ ? x_stride_ : k_, ys = y_stride_ ? y_stride_ : n_;
    Rng rng(seed_);

    std::vector<uint8_t> x((m_ - 1) * xs + k_);
    if (extreme_) std::fill(x.begin(), x.end(), extreme_input_);
    else rng.fill_u8(x);

    // Codes as MATMUL makes them (b - z_b) or symmetric int8; for int16 the operand b itself is
    // kept for the oracle.
    const int32_t max_abs = format.max_abs;
    std::vector<int16_t> codes(n_ * k_);
    const int32_t b_zero_point = extreme_ ? (extreme_ > 0 ? 0 : 255) : rng.uniform(0, 255);
    for (int16_t& c : codes) {
      if (extreme_) c = static_cast<int16_t>(extreme_ * max_abs);
      else if (s16_) c = static_cast<int16_t>(rng.uniform(0, 255) - b_zero_point);
      else c = static_cast<int16_t>(rng.uniform(-max_abs, max_abs));
    }
    // Block-sparse: blocks dropped at random (zero codes), the kept ones encoded from the spec.
    std::vector<uint8_t> sparse_bytes;
    const size_t row_length = row_length_ && k_ % row_length_ == 0 && row_length_ % format.block_k == 0 ? row_length_ : k_;
    if (block_) sparse_bytes = encode_sparse(codes, format.block_k, row_length, rng);
    std::vector<int8_t> codes8;
    if (!s16_) codes8.assign(codes.begin(), codes.end());

    // The bias as the ops fold it: MATMUL's -z_a * sum w; for int8 weights a random bias minus
    // z_in * sum w, kept within what a load proves (|bias| <= INT32_MAX - max_accumulator).
    const int32_t z_a = extreme_ ? (extreme_input_ == 0 ? 255 : 0) : input_zero_point_;
    const int64_t bound = int64_t{INT32_MAX} - max_accumulator(format, k_);
    std::vector<int32_t> bias(n_);
    for (size_t c = 0; c < n_; ++c) {
      int64_t sum = 0;
      for (size_t i = 0; i < k_; ++i) sum += codes[c * k_ + i];
      int64_t b = -int64_t{z_a} * sum;
      if (!s16_) b = std::clamp<int64_t>(b + rng.uniform(-(1 << 20), 1 << 20), -bound, bound);
      bias[c] = static_cast<int32_t>(b);
    }

    int lo = shift_lo_, hi = shift_hi_;
    if (!shifts_set_) {
      const int depth_bits = static_cast<int>(std::log2(static_cast<double>(k_)));
      lo = -10 - depth_bits / 2;
      hi = 2;
    }
    std::vector<QuantizedMultiplier> multipliers;
    std::vector<float> scales;
    if (float_output_) {
      for (size_t c = 0; c < n_; ++c) scales.push_back(static_cast<float>(rng.real(1e-6, 1e-2)));
    } else if (s16_) {
      multipliers.assign(n_, rng.multiplier(lo, hi));
    } else {
      for (size_t c = 0; c < n_; ++c) multipliers.push_back(rng.multiplier(lo, hi));
    }
    OutputStage out;
    out.zero_point = output_zero_point_;
    out.act_min = act_min_;
    out.act_max = act_max_;

    // Sub-byte codes as the file stores them (docs/format.md), written here from the spec; the
    // oracle below multiplies the int8 codes themselves.
    std::vector<uint8_t> rows8;
    if (format.bits < 8) {
      const size_t per_byte = 8 / format.bits, row_bytes = (k_ + per_byte - 1) / per_byte;
      rows8.assign(n_ * row_bytes, 0);
      for (size_t c = 0; c < n_; ++c)
        for (size_t i = 0; i < k_; ++i)
          rows8[c * row_bytes + i / per_byte] |= static_cast<uint8_t>(
              (static_cast<unsigned>(codes[c * k_ + i]) & ((1u << format.bits) - 1)) << (i % per_byte * format.bits));
    }
    const void* packed_codes = s16_                ? static_cast<const void*>(codes.data())
                               : block_          ? static_cast<const void*>(sparse_bytes.data())
                               : format.bits < 8 ? static_cast<const void*>(rows8.data())
                                                 : codes8.data();
    const PackedWeights packed(row.tile, packed_codes, format, n_, k_, bias.data(), multipliers, scales, row_length);
    const PackedView view = packed.view();
    // Scratch that does not start at 0: a kernel must write what it reads there.
    std::vector<uint8_t> scratch(packed.scratch_bytes(), 0x5A);
    const size_t tile_end = std::min(tile_end_, view.n_tiles);
    const size_t nr = row.tile.nr ? row.tile.nr : n_;
    const size_t c_begin = std::min(tile_begin_ * nr, n_), c_end = std::min(tile_end * nr, n_);

    // Outputs in a buffer whose unwritten elements (stride gaps, other tiles, 64 past the last
    // row's last channel) keep a sentinel.
    const size_t y_size = (m_ - 1) * ys + n_ + 64;
    std::string why;
    bool ok;
    if (float_output_) {
      const float sentinel = -12345.678f;
      std::vector<float> got(y_size, sentinel), want(y_size, sentinel), full(n_);
      row.run(view, out, x.data(), xs, got.data(), ys, m_, tile_begin_, tile_end, scratch.data());
      const GemmParams p{1, n_, k_, out, nullptr};
      for (size_t r = 0; r < m_; ++r) {
        gemm_u8s8_f32__ref(p, scales.data(), x.data() + r * xs, codes8.data(), bias.data(), full.data(), 0, 1);
        std::copy(full.begin() + c_begin, full.begin() + c_end, want.begin() + r * ys + c_begin);
      }
      ok = same(got, want, ys, &why);
    } else {
      const uint8_t sentinel = 0xA5;
      std::vector<uint8_t> got(y_size, sentinel), want(y_size, sentinel), full(n_);
      row.run(view, out, x.data(), xs, got.data(), ys, m_, tile_begin_, tile_end, scratch.data());
      const GemmParams p{1, n_, k_, out, multipliers.data()};
      for (size_t r = 0; r < m_; ++r) {
        if (s16_) matmul_oracle(x.data() + r * xs, codes.data(), z_a, multipliers[0], out, full.data());
        else gemm_u8s8__ref(p, x.data() + r * xs, codes8.data(), bias.data(), full.data(), 0, 1);
        std::copy(full.begin() + c_begin, full.begin() + c_end, want.begin() + r * ys + c_begin);
      }
      ok = same(got, want, ys, &why);
    }
    if (!ok)
      std::printf("  %s: %s: %s\n", row.name, describe().c_str(), why.c_str());
    return ok;
  }

  std::string describe() const {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "m=%zu n=%zu k=%zu bits=%d sparse=%zu/%.2f/%zu%s x_stride=%zu y_stride=%zu z_in=%d z_out=%d act=[%d, %d] tiles=[%zu, %s)%s%s%s "
                  "extreme=%d/%d seed=%llu",
                  m_, n_, k_, s16_ ? 16 : bits_, block_, density_, row_length_, bitmap_ ? "/bitmap" : "", x_stride_, y_stride_, input_zero_point_, output_zero_point_, act_min_, act_max_,
                  tile_begin_, tile_end_ == SIZE_MAX ? "end" : std::to_string(tile_end_).c_str(), float_output_ ? " float" : "", s16_ ? " s16" : "",
                  shifts_set_ ? (" shifts=[" + std::to_string(shift_lo_) + ", " + std::to_string(shift_hi_) + "]").c_str()
                              : "",
                  extreme_, extreme_input_, static_cast<unsigned long long>(seed_));
    return buf;
  }

 private:
  // Zeroes the blocks of `codes` ([n][k], rows of row_length) that are dropped and returns the
  // block-sparse encoding of what is left, written from docs/format.md: u32 B, u32 blocks, the
  // index (u32 row_start[rows + 1] and u32 block_column[blocks], or with bitmap_ a bit a block
  // position, each row in whole bytes, low bit first), the kept blocks' int8 codes. A kept block
  // may hold zeros only (the format allows it).
  std::vector<uint8_t> encode_sparse(std::vector<int16_t>& codes, size_t block, size_t row_length, Rng& rng) const {
    const size_t rows = n_ * k_ / row_length, per_row = row_length / block, map_bytes = (per_row + 7) / 8;
    std::vector<uint32_t> starts{0}, columns;
    std::vector<uint8_t> values, map(rows * map_bytes, 0);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t j = 0; j < per_row; ++j) {
        int16_t* b = codes.data() + r * row_length + j * block;
        if (rng.real(0, 1) < density_) {
          columns.push_back(static_cast<uint32_t>(j));
          map[r * map_bytes + j / 8] |= static_cast<uint8_t>(1u << (j % 8));
          for (size_t i = 0; i < block; ++i) values.push_back(static_cast<uint8_t>(b[i]));
        } else {
          std::fill(b, b + block, int16_t{0});
        }
      }
      starts.push_back(static_cast<uint32_t>(columns.size()));
    }
    std::vector<uint8_t> out;
    auto put = [&](uint32_t v) {
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    };
    put(static_cast<uint32_t>(block));
    put(static_cast<uint32_t>(columns.size()));
    if (bitmap_) {
      out.insert(out.end(), map.begin(), map.end());
    } else {
      for (uint32_t v : starts) put(v);
      for (uint32_t v : columns) put(v);
    }
    out.insert(out.end(), values.begin(), values.end());
    return out;
  }

  // MATMUL's arithmetic in 64 bits, independent of the folded bias: sum_k (a - z_a) * (b - z_b)
  // (w = b - z_b), requantized; the depth bound keeps it within int32, which this checks.
  void matmul_oracle(const uint8_t* a, const int16_t* w, int32_t z_a, QuantizedMultiplier m, const OutputStage& out,
                     uint8_t* y) const {
    for (size_t c = 0; c < n_; ++c) {
      int64_t acc = 0;
      for (size_t i = 0; i < k_; ++i) acc += (int64_t{a[i]} - z_a) * w[c * k_ + i];
      if (acc > INT32_MAX || acc < INT32_MIN) {
        std::printf("  test error: k=%zu leaves int32 (%lld)\n", k_, static_cast<long long>(acc));
        std::abort();
      }
      y[c] = out.apply(static_cast<int32_t>(acc), m);
    }
  }

  size_t m_ = 1, n_ = 1, k_ = 1, x_stride_ = 0, y_stride_ = 0;
  int32_t input_zero_point_ = 0, output_zero_point_ = 0, act_min_ = 0, act_max_ = 255;
  int shift_lo_ = 0, shift_hi_ = 0, bits_ = 8;
  size_t block_ = 0, row_length_ = 0;
  double density_ = 1;
  bool shifts_set_ = false, float_output_ = false, s16_ = false, bitmap_ = false;
  size_t tile_begin_ = 0, tile_end_ = SIZE_MAX;
  int extreme_ = 0;
  uint8_t extreme_input_ = 255;
  uint64_t seed_ = 1;
};

// The GEMM of a wide input (gemm_s16_table): int16 activations within +-bound, dense int8 codes
// within +-127, a bias within what a load proves (INT32_MAX - bound * 127 * k), uint8 or float
// output; rows against an oracle computed here in int64 (the reference row is tested by it too).
class GemmS16Tester {
 public:
  GemmS16Tester& m(size_t v) { m_ = v; return *this; }
  GemmS16Tester& n(size_t v) { n_ = v; return *this; }
  GemmS16Tester& k(size_t v) { k_ = v; return *this; }
  GemmS16Tester& bound(int32_t v) { bound_ = v; return *this; }
  // Row strides in elements; 0 = dense.
  GemmS16Tester& x_stride(size_t v) { x_stride_ = v; return *this; }
  GemmS16Tester& y_stride(size_t v) { y_stride_ = v; return *this; }
  GemmS16Tester& output_zero_point(int32_t v) { output_zero_point_ = v; return *this; }
  GemmS16Tester& float_output(bool v) { float_output_ = v; return *this; }
  GemmS16Tester& tiles(size_t begin, size_t end) { tile_begin_ = begin; tile_end_ = end; return *this; }
  // +1 / -1: every activation +bound and every code +-127 (the accumulator's extremes).
  GemmS16Tester& extreme(int sign) { extreme_ = sign; return *this; }
  GemmS16Tester& seed(uint64_t v) { seed_ = v; return *this; }

  bool Test(const GemmRow& row) const {
    Rng rng(seed_);
    const size_t xs = x_stride_ ? x_stride_ : k_, ys = y_stride_ ? y_stride_ : n_;
    std::vector<int16_t> x((m_ - 1) * xs + k_);
    for (int16_t& v : x) v = static_cast<int16_t>(extreme_ ? bound_ : rng.uniform(-bound_, bound_));
    std::vector<int8_t> codes(n_ * k_);
    for (int8_t& c : codes) c = static_cast<int8_t>(extreme_ ? extreme_ * 127 : rng.uniform(-127, 127));
    const int64_t limit = int64_t{INT32_MAX} - int64_t{bound_} * 127 * static_cast<int64_t>(k_);
    std::vector<int32_t> bias(n_);
    for (int32_t& b : bias)
      b = static_cast<int32_t>(std::clamp<int64_t>(rng.uniform(-(1 << 24), 1 << 24), -limit, limit));
    // Shifts that bring a typical accumulator of depth k into 8 bits, some saturating.
    const int depth_bits = static_cast<int>(std::log2(static_cast<double>(k_)));
    std::vector<QuantizedMultiplier> multipliers;
    std::vector<float> scales;
    for (size_t c = 0; c < n_; ++c) {
      if (float_output_) scales.push_back(static_cast<float>(rng.real(1e-8, 1e-4)));
      else multipliers.push_back(rng.multiplier(-17 - depth_bits / 2, -8));
    }
    OutputStage out;
    out.zero_point = output_zero_point_;

    const PackedWeights packed(row.tile, codes.data(), kWeightsS8, n_, k_, bias.data(), multipliers, scales, k_);
    const PackedView view = packed.view();
    // Scratch that does not start at 0: a kernel must write what it reads there.
    std::vector<uint8_t> scratch(packed.scratch_bytes(), 0x5A);
    const size_t tile_end = std::min(tile_end_, view.n_tiles);
    const size_t nr = row.tile.nr ? row.tile.nr : n_;
    const size_t c_begin = std::min(tile_begin_ * nr, n_), c_end = std::min(tile_end * nr, n_);
    auto acc = [&](size_t r, size_t c) {
      int64_t a = bias[c];
      for (size_t i = 0; i < k_; ++i) a += int64_t{x[r * xs + i]} * codes[c * k_ + i];
      if (a < INT32_MIN || a > INT32_MAX) {
        std::printf("  oracle: accumulator %lld leaves int32\n", static_cast<long long>(a));
        std::abort();
      }
      return static_cast<int32_t>(a);
    };
    const auto* xb = reinterpret_cast<const uint8_t*>(x.data());
    const size_t y_size = (m_ - 1) * ys + n_;
    std::string why;
    bool ok;
    if (float_output_) {
      std::vector<float> got(y_size, -12345.678f), want(got);
      row.run(view, out, xb, xs * sizeof(int16_t), got.data(), ys, m_, tile_begin_, tile_end, scratch.data());
      for (size_t r = 0; r < m_; ++r)
        for (size_t c = c_begin; c < c_end; ++c) want[r * ys + c] = static_cast<float>(acc(r, c)) * scales[c];
      ok = same(got, want, ys, &why);
    } else {
      std::vector<uint8_t> got(y_size, 0xA5), want(got);
      row.run(view, out, xb, xs * sizeof(int16_t), got.data(), ys, m_, tile_begin_, tile_end, scratch.data());
      for (size_t r = 0; r < m_; ++r)
        for (size_t c = c_begin; c < c_end; ++c) want[r * ys + c] = out.apply(acc(r, c), multipliers[c]);
      ok = same(got, want, ys, &why);
    }
    if (!ok)
      std::printf("  %s: m=%zu n=%zu k=%zu bound=%d x_stride=%zu y_stride=%zu z_out=%d tiles=[%zu, %zu)%s extreme=%d "
                  "seed=%llu: %s\n",
                  row.name, m_, n_, k_, bound_, x_stride_, y_stride_, output_zero_point_, tile_begin_, tile_end,
                  float_output_ ? " float" : "", extreme_, static_cast<unsigned long long>(seed_), why.c_str());
    return ok;
  }

 private:
  size_t m_ = 1, n_ = 1, k_ = 1, x_stride_ = 0, y_stride_ = 0;
  int32_t bound_ = 32767, output_zero_point_ = 0;
  bool float_output_ = false;
  size_t tile_begin_ = 0, tile_end_ = SIZE_MAX;
  int extreme_ = 0;
  uint64_t seed_ = 1;
};

}  // namespace test
}  // namespace intinfer
