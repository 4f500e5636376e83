// The MATMUL tester: one matrix product of uint8 operands with their zero points (b [k, n] or,
// transposed, [n, k]), a random multiplier (above 1 too: a left shift), output zero point and
// activation range, rows [begin, end) of the kernel call, against matmul_u8__ref; the
// accumulator's extremes (every a and b at one value, such as 0 or 255, against zero points at the
// other end, to the deepest reduction MATMUL accepts) with a multiplier that brings them into range.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "kernels/params.h"
#include "kernels/ref/kernels.h"
#include "kernels/tables.h"
#include "tester.h"

namespace intinfer {
namespace test {

class MatMulTester {
 public:
  MatMulTester& m(size_t v) { m_ = v; return *this; }
  MatMulTester& k(size_t v) { k_ = v; return *this; }
  MatMulTester& n(size_t v) { n_ = v; return *this; }
  MatMulTester& transpose_b(bool v) { transpose_b_ = v; return *this; }
  MatMulTester& range(size_t begin, size_t end) { begin_ = begin; end_ = end; return *this; }
  // Every a = a_value and b = b_value, zero points at the other end of [0, 255] (-1: random).
  MatMulTester& extreme(int a_value, int b_value) { a_value_ = a_value; b_value_ = b_value; return *this; }
  // Every a = 0 (a' = -128) and b random in [1, 255], but column c of b all 0 (b' = -128) for each
  // c in `columns`: products in pairs overflow int16 in those columns' tiles only, so a kernel that
  // chooses per column tile must find each of them.
  MatMulTester& lowest_columns(std::vector<size_t> columns) {
    probe_ = true;
    lowest_columns_ = std::move(columns);
    return *this;
  }
  MatMulTester& seed(uint64_t v) { seed_ = v; return *this; }

  bool Test(const MatMulRow& row) const {
    Rng rng(seed_);
    std::vector<uint8_t> a(m_ * k_), b(k_ * n_);
    rng.fill_u8(a);
    rng.fill_u8(b);
    MatMulParams p{m_, k_, n_, transpose_b_, rng.uniform(0, 255), rng.uniform(0, 255), {}, {}};
    // One in four scales up (a left shift; small depths stay in range), the others down.
    double real = rng.chance(0.25) ? rng.real(1.0, 4.0) : rng.real(1e-4, 0.05);
    if (a_value_ >= 0) {
      std::fill(a.begin(), a.end(), static_cast<uint8_t>(a_value_));
      std::fill(b.begin(), b.end(), static_cast<uint8_t>(b_value_));
      p.a_zero_point = 255 - a_value_;
      p.b_zero_point = 255 - b_value_;
      // |sum| = 255^2 k: brought to about +-100 steps.
      real = 100.0 / (255.0 * 255.0 * static_cast<double>(k_));
    }
    if (probe_) {
      std::fill(a.begin(), a.end(), uint8_t{0});
      for (uint8_t& v : b) v = static_cast<uint8_t>(rng.uniform(1, 255));
      for (size_t c : lowest_columns_)
        for (size_t i = 0; i < k_; ++i) b[transpose_b_ ? c * k_ + i : i * n_ + c] = 0;
      real = 100.0 / (128.0 * 255.0 * static_cast<double>(k_));  // |sum| up to about 128 * 255 k
    }
    p.multiplier = Rng::of(real);
    p.out.zero_point = rng.uniform(0, 255);
    p.out.act_min = rng.chance(0.3) ? rng.uniform(0, 100) : 0;
    p.out.act_max = rng.chance(0.3) ? rng.uniform(155, 255) : 255;
    const size_t end = std::min(end_, m_), begin = std::min(begin_, end);
    std::vector<uint8_t> want(m_ * n_ + 64, 0xA5);  // 64 sentinel bytes past the output
    matmul_u8__ref(p, a.data(), b.data(), want.data(), begin, end, nullptr);
    // Scratch filled two ways: a kernel must neither rely on it starting at 0 nor leave a part of
    // its own layout unwritten (a tile's kind read from the fill).
    for (uint8_t fill : {uint8_t{0x5A}, uint8_t{0}}) {
      std::vector<uint8_t> got(m_ * n_ + 64, 0xA5), scratch(matmul_scratch_bytes(k_, n_), fill);
      row.run(p, a.data(), b.data(), got.data(), begin, end, scratch.data());
      std::string why;
      if (same(got, want, n_, &why)) continue;
      std::printf("  matmul m=%zu k=%zu n=%zu transpose_b=%d rows [%zu, %zu) z_a=%d z_b=%d extreme=%d%s "
                  "scratch 0x%02x: %s\n", m_, k_, n_, transpose_b_, begin, end, p.a_zero_point, p.b_zero_point,
                  a_value_, probe_ ? " lowest columns" : "", fill, why.c_str());
      return false;
    }
    return true;
  }

 private:
  size_t m_ = 4, k_ = 16, n_ = 16;
  bool transpose_b_ = false;
  size_t begin_ = 0, end_ = SIZE_MAX;
  int a_value_ = -1, b_value_ = -1;
  bool probe_ = false;
  std::vector<size_t> lowest_columns_;
  uint64_t seed_ = 1;
};

}  // namespace test
}  // namespace intinfer
