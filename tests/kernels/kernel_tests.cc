// intinfer-kernel-tests: every row of every kernel table (csrc/kernels/tables.h) against the
// reference kernels, bit for bit, over sweeps that cross each row's tiles (rows, channels and
// depth tails, primes, the accumulator's extremes, strides, column and row ranges), and the
// select() rule of each table on each path of this CPU. Rows whose features the CPU lacks are
// reported as skipped. One line per row; the last line is "N passed, N failed, N skipped"; the
// exit status is non-zero on any failure. Run by tests/test_kernels.py natively and under qemu.
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dwconv_tester.h"
#include "elementwise_tester.h"
#include "gemm_tester.h"
#include "matmul_tester.h"
#include "pool_tester.h"
#include "transformer_tester.h"

namespace intinfer {
namespace test {
namespace {

// A row's sweep stops after this many failing cases: the first ones say what is wrong.
constexpr size_t kMaxFailures = 5;

class Cases {
 public:
  // Records one case; false once the sweep should stop.
  bool operator()(bool ok) {
    ++count;
    failed += !ok;
    return failed < kMaxFailures;
  }
  uint64_t next_seed() { return ++seed_; }
  size_t count = 0, failed = 0;

 private:
  uint64_t seed_ = 0;
};

// The deepest reductions a load accepts: 255 * max_abs * k within int32.
size_t max_depth(const WeightFormat& f) { return static_cast<size_t>(INT32_MAX / max_accumulator(f, 1)); }
const size_t kMaxDepthS8 = max_depth(kWeightsS8);
const size_t kMaxDepthS16 = max_depth(kWeightsS16);
// MATMUL's deepest reduction (ops/matmul.cc): 255 * 255 * k within int32.
const size_t kMaxDepthMatMul = kMaxDepthS16;

// Depth tails around the row's k alignment, and primes.
std::vector<size_t> gemm_depths(size_t ka) {
  std::vector<size_t> depths;
  for (size_t k = 1; k <= 3 * ka + 1; ++k) depths.push_back(k);
  for (size_t k : {17, 31, 127, 257, 1031}) depths.push_back(k);
  return depths;
}

// The weight-code sweep of a GEMM row for the codes of `codes` (a tester with only its code
// options set: 8, 4 or 2 bits, block-sparse).
void sweep_gemm_codes(const GemmRow& row, Cases& c, const GemmTester& codes) {
  // The reference row has no tile: sweep it as a small one.
  const size_t mr = row.tile.mr, nr = row.tile.nr ? row.tile.nr : 8, ka = row.tile.k_align;
  auto t = [&] { return GemmTester(codes).seed(c.next_seed()); };
  auto zp = [&](size_t i) { return static_cast<int32_t>((i * 37 + 11) % 256); };
  // The extremes run to the deepest reduction a load accepts, up to int4's (int2's, 8.4 M, would
  // take gigabytes of test codes; its products are no larger than int4's).
  const size_t deepest = std::min(max_depth(codes.format()), max_depth(kWeightsS4));

  // Row and column tails around the micro-tile.
  for (size_t m = 1; m <= 2 * mr + 1; ++m)
    for (size_t n = 1; n <= 3 * nr + 1; ++n)
      if (!c(t().m(m).n(n).k(2 * ka + 1).input_zero_point(zp(m)).output_zero_point(zp(n)).Test(row))) return;
  // Depth tails and primes.
  const std::vector<size_t> depths = gemm_depths(ka);
  for (size_t k : depths) {
    if (!c(t().m(2 * mr + 1).n(2 * nr + 1).k(k).input_zero_point(zp(k)).output_zero_point(zp(k + 1)).Test(row))) return;
    if (!c(t().m(1).n(nr).k(k).input_zero_point(zp(k + 2)).Test(row))) return;
    if (!c(t().m(mr + 1).n(nr + 3).k(k).float_output(true).input_zero_point(zp(k + 3)).Test(row))) return;
  }
  // The accumulator's extremes: all 255 (or all 0) times all +-max_abs, up to the deepest
  // reduction a load accepts; right shifts that bring +-2^31 into range, and left shifts that
  // saturate.
  for (int sign : {1, -1})
    for (uint8_t input : {255, 0})
      for (size_t k : {size_t{1}, ka, 3 * ka + 1, size_t{257}, deepest}) {
        if (!c(t().m(mr + 1).n(nr + 1).k(k).extreme(sign, input).shifts(-31, -8).Test(row))) return;
        if (!c(t().m(mr + 1).n(nr + 1).k(k).extreme(sign, input).shifts(1, 30).output_zero_point(128).Test(row)))
          return;
        if (!c(t().m(2).n(nr + 1).k(k).extreme(sign, input).float_output(true).Test(row))) return;
      }
  if (!c(t().m(mr + 1).n(nr + 1).k(deepest).input_zero_point(0).Test(row))) return;
  // Every pair of column tiles [begin, end), uint8 and float.
  const size_t n = 3 * nr + 1, tiles = row.tile.nr ? 4 : 1;
  for (size_t b = 0; b < tiles; ++b)
    for (size_t e = b + 1; e <= tiles; ++e) {
      if (!c(t().m(mr + 1).n(n).k(2 * ka + 3).tiles(b, e).output_zero_point(zp(b + e)).Test(row))) return;
      if (!c(t().m(mr + 2).n(n).k(2 * ka + 3).tiles(b, e).float_output(true).Test(row))) return;
    }
  // Strided x and y, clamps, output zero points at the ends of the range.
  for (size_t k : {size_t{1}, ka + 1, size_t{37}}) {
    if (!c(t().m(2 * mr + 1).n(2 * nr + 1).k(k).x_stride(k + 5).y_stride(2 * nr + 4).Test(row))) return;
    if (!c(t().m(2 * mr + 1).n(2 * nr + 1).k(k).x_stride(k + 1).y_stride(2 * nr + 2).float_output(true).Test(row)))
      return;
    if (!c(t().m(mr + 3).n(nr + 5).k(k).act_min(17).act_max(200).output_zero_point(100).Test(row))) return;
    // Every channel shifting right, with and without a clamp, none shifting and left shifts with
    // a clamp (the NEON output stage has an instance for each, requant_neon.h).
    if (!c(t().m(mr + 3).n(nr + 5).k(k).shifts(-14, -1).output_zero_point(zp(k)).Test(row))) return;
    if (!c(t().m(mr + 3).n(nr + 5).k(k).shifts(-14, -1).act_min(3).act_max(254).Test(row))) return;
    if (!c(t().m(mr + 3).n(nr + 5).k(k).shifts(0, 0).output_zero_point(zp(k + 1)).Test(row))) return;
    if (!c(t().m(mr + 3).n(nr + 5).k(k).shifts(0, 0).act_min(5).act_max(250).Test(row))) return;
    if (!c(t().m(mr + 3).n(nr + 5).k(k).shifts(1, 4).act_min(5).act_max(250).Test(row))) return;
    if (!c(t().m(mr).n(nr).k(k).output_zero_point(0).Test(row))) return;
    if (!c(t().m(mr).n(nr).k(k).output_zero_point(255).Test(row))) return;
  }
}

void sweep_gemm(const GemmRow& row, Cases& c) {
  for (const WeightFormat& f : {kWeightsS8, kWeightsS4, kWeightsS2})
    if (row.accepts(f, 1)) {
      sweep_gemm_codes(row, c, GemmTester().bits(f.bits));
      if (c.failed) return;
    }
  // Block-sparse int8: the full sweep at the kernels' block and unstructured; other blocks,
  // densities (none kept, all kept) and a conv's channel of several rows on row and depth tails;
  // both indexes of the file (the packer reads either into the same groups).
  if (row.accepts(block_sparse_s8(4), 1)) {
    for (const GemmTester& codes : {GemmTester().sparse(4, 0.3), GemmTester().sparse(1, 0.1),
                                    GemmTester().sparse(4, 0.2, 0, true)}) {
      sweep_gemm_codes(row, c, codes);
      if (c.failed) return;
    }
    const size_t mr = row.tile.mr, nr = row.tile.nr ? row.tile.nr : 8;
    auto zp = [&](size_t i) { return static_cast<int32_t>((i * 37 + 11) % 256); };
    for (bool bitmap : {false, true})
      for (size_t block : {2, 4, 8, 16})
        for (double density : {0.0, 0.05, 0.5, 1.0})
          for (size_t m : {size_t{1}, size_t{3}, mr, 2 * mr + 3})
            for (size_t k : {block, 3 * block, 48 * block}) {
              auto t = [&] {
                return GemmTester().sparse(block, density, k % 3 ? 0 : k / 3, bitmap).seed(c.next_seed());
              };
              if (!c(t().m(m).n(2 * nr + 3).k(k).input_zero_point(zp(m + k)).output_zero_point(zp(k)).Test(row)))
                return;
              if (!c(t().m(m).n(nr + 9).k(k).float_output(true).input_zero_point(zp(k + 1)).Test(row))) return;
              if (row.tile.nr && !c(t().m(m).n(2 * nr + 1).k(k).tiles(1, 2).Test(row))) return;
            }
  }
  // MATMUL's int16 codes b - z_b, where the row takes them (the reference row does).
  if (!row.accepts(kWeightsS16, kMaxDepthS16)) return;
  const size_t mr = row.tile.mr, nr = row.tile.nr ? row.tile.nr : 8, ka = row.tile.k_align;
  auto t = [&] { return GemmTester().seed(c.next_seed()); };
  auto zp = [&](size_t i) { return static_cast<int32_t>((i * 37 + 11) % 256); };
  const std::vector<size_t> depths = gemm_depths(ka);
  for (size_t m = 1; m <= 2 * mr + 1; ++m)
    for (size_t n = 1; n <= 3 * nr + 1; n += m % 2 ? 1 : 3)
      if (!c(t().s16(true).m(m).n(n).k(2 * ka + 1).input_zero_point(zp(m + n)).output_zero_point(zp(n)).Test(row)))
        return;
  for (size_t k : depths)
    if (!c(t().s16(true).m(2 * mr + 1).n(2 * nr + 1).k(k).input_zero_point(zp(k)).Test(row))) return;
  for (int sign : {1, -1})
    for (size_t k : {size_t{1}, 3 * ka + 1, kMaxDepthS16})
      if (!c(t().s16(true).m(mr + 1).n(nr + 1).k(k).extreme(sign).shifts(-31, -8).Test(row))) return;
  if (!c(t().s16(true).m(mr + 1).n(nr + 1).k(kMaxDepthS16).input_zero_point(200).Test(row))) return;
  if (!c(t().s16(true).m(2 * mr + 1).n(2 * nr + 1).k(33).x_stride(40).y_stride(2 * nr + 9).Test(row))) return;
}

void sweep_dwconv(const DwconvRow& row, Cases& c) {
  const int nr = row.tile.nr ? row.tile.nr : 8;
  auto t = [&] { return DwconvTester().seed(c.next_seed()); };
  // The row's tap limit (what `accepts` says; the reference has none: 81 taps, a 9x9 window).
  int max_taps = 0;
  while (max_taps < 81 && row.accepts(kWeightsS8, max_taps + 1)) ++max_taps;

  for (int ch = 1; ch <= 3 * nr + 1; ++ch)
    if (!c(t().channels(ch).input(5, 6).input_zero_point(ch * 5 % 256).output_zero_point(ch * 3 % 256).Test(row))) return;
  const int kernels[][2] = {{1, 1}, {2, 2}, {3, 3}, {5, 5}, {7, 1}, {1, 7}, {3, 5}};
  for (const auto& k : kernels)
    for (int stride : {1, 2})
      for (int dilation : {1, 2})
        for (int ch : {1, nr + 3, 2 * nr + 1}) {
          const int span_h = dilation * (k[0] - 1) + 1, span_w = dilation * (k[1] - 1) + 1;
          auto base = [&] {
            return t().channels(ch).kernel(k[0], k[1]).stride(stride, stride).dilation(dilation, dilation)
                .input(span_h + 3, span_w + 4).input_zero_point((ch * 29 + k[0]) % 256).output_zero_point(ch % 256);
          };
          // "Same" padding, padding on one side only, and pads as large as the window (output
          // pixels that read nothing but the zero row).
          if (!c(base().pads(k[0] / 2, k[1] / 2, (k[0] - 1) / 2, (k[1] - 1) / 2).Test(row))) return;
          if (!c(base().pads(k[0] - 1, 0, 0, k[1] - 1).Test(row))) return;
          if (!c(base().pads(span_h, span_w, span_h, span_w).act(20, 230).Test(row))) return;
          // Right shifts only (some channels by 0 bits), by at least 1 bit, none, and left shifts
          // only, with and without a clamp (the output stage has an instance for each).
          if (!c(base().pads(k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2).shifts(-14, 0).Test(row))) return;
          if (!c(base().pads(k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2).shifts(-14, -1).Test(row))) return;
          if (!c(base().pads(k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2).shifts(-14, -1).act(1, 254).Test(row)))
            return;
          if (!c(base().pads(k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2).shifts(0, 0).act(1, 254).Test(row))) return;
          if (!c(base().pads(k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2).shifts(1, 4).act(1, 254).Test(row))) return;
          if (!c(base().pads(k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2).shifts(1, 4).output_zero_point(128).Test(row)))
            return;
        }
  // The row's tap limit, square where it is a square (8x8 = 64) and as one line.
  const int side = static_cast<int>(std::sqrt(static_cast<double>(max_taps)));
  for (int ch : {1, nr + 1, 2 * nr + 5}) {
    if (!c(t().channels(ch).kernel(side, side).input(side + 2, side + 1).pads(side / 2, side / 2, side / 2, side / 2)
               .input_zero_point(77).Test(row)))
      return;
    if (!c(t().channels(ch).kernel(1, max_taps).input(3, max_taps).pads(0, 1, 0, 2).Test(row))) return;
    for (int sign : {1, -1})
      for (int input : {255, 0})
        if (!c(t().channels(ch).kernel(side, side).input(side, side).pads(1, 1, 1, 1).extreme(sign, input).Test(row)))
          return;
  }
  // Rows longer than the held-weights kernels' chunk of 32 pixels and images taller than their
  // band of 8 output rows (arm/dwconv_neon.cc), whole and in row ranges that start and end
  // inside a band.
  for (int side : {3, 5})
    for (int stride : {1, 2})
      for (int ch : {nr, 2 * nr + 3}) {
        const DwconvTester big = DwconvTester().channels(ch).kernel(side, side).stride(stride, stride)
                                     .input(23, 77).pads(side / 2, side / 2, side / 2, side / 2).batch(2);
        if (!c(DwconvTester(big).seed(c.next_seed()).input_zero_point(201).Test(row))) return;
        const size_t rows = 2 * static_cast<size_t>(big.out_h());
        for (size_t b : {size_t{3}, rows / 2 - 2})
          if (!c(DwconvTester(big).seed(c.next_seed()).rows(b, b + 11).Test(row))) return;
      }
  // The 3x3 and 5x5 windows once more: dilated rows with adjacent taps (held weights, rows
  // apart), strides that differ by axis, outputs that read less than the padded input's width or
  // height (the held kernels' copy clipped), and the extreme products.
  for (int side : {3, 5})
    for (int ch : {nr, nr + 5}) {
      auto base = [&] { return t().channels(ch).kernel(side, side).input_zero_point(ch * 7 % 256); };
      if (!c(base().dilation(2, 1).input(2 * side + 2, side + 6).pads(side - 1, side / 2, side - 1, side / 2)
                 .Test(row)))
        return;
      if (!c(base().stride(1, 2).input(side + 4, side + 7).pads(side / 2, side / 2, side / 2, side / 2).Test(row)))
        return;
      if (!c(base().stride(2, 1).input(side + 5, side + 4).pads(side / 2, side / 2, side / 2, side / 2).Test(row)))
        return;
      if (!c(base().stride(2, 2).input(side + 6, side + 5).pads(1, 1, 1, 1).Test(row))) return;
      if (!c(base().stride(3, 3).input(side + 4, side + 4).pads(side - 1, side - 1, 0, 0).Test(row))) return;
      for (int sign : {1, -1})
        for (int input : {255, 0})
          if (!c(base().input(side + 3, side + 2).pads(1, 1, 1, 1).extreme(sign, input).Test(row))) return;
    }
  // Output row ranges of a batch of two.
  const DwconvTester batch2 = DwconvTester().channels(nr + 1).batch(2).input(6, 5).stride(2, 1).pads(1, 1, 1, 1);
  const size_t rows = 2 * static_cast<size_t>(batch2.out_h());
  for (size_t b = 0; b < rows; ++b)
    if (!c(DwconvTester(batch2).seed(c.next_seed()).rows(b, b + 1 + b % 3).input_zero_point(9).Test(row))) return;
}

void sweep_elementwise(const ElementwiseRow& row, Cases& c) {
  std::vector<size_t> lengths;
  for (size_t n = 1; n <= 70; ++n) lengths.push_back(n);
  lengths.push_back(1000);
  for (size_t n : lengths) {
    for (size_t a_step : {0, 1})
      for (size_t b_step : {0, 1}) {
        const ElementwiseTester t = ElementwiseTester().n(n).steps(a_step, b_step);
        if (!c(ElementwiseTester(t).seed(c.next_seed()).TestAdd(row))) return;
        if (!c(ElementwiseTester(t).seed(c.next_seed()).TestMul(row))) return;
        for (bool a_wide : {false, true})
          for (bool b_wide : {false, true})
            if (!c(ElementwiseTester(t).seed(c.next_seed()).TestAddWide(row, a_wide, b_wide))) return;
      }
    const ElementwiseTester t = ElementwiseTester().n(n);
    if (!c(ElementwiseTester(t).seed(c.next_seed()).TestQuantize(row))) return;
    if (!c(ElementwiseTester(t).seed(c.next_seed()).TestWideFromF32(row))) return;
    if (!c(ElementwiseTester(t).seed(c.next_seed()).TestDequantize(row))) return;
    if (!c(ElementwiseTester(t).seed(c.next_seed()).TestLut(row))) return;
  }
}

void sweep_pool(const PoolRow& row, Cases& c) {
  auto t = [&] { return PoolTester().seed(c.next_seed()); };
  for (int ch = 1; ch <= 49; ++ch) {
    const PoolTester base = t().channels(ch).input(5, 6).pads(1, 1, 1, 1).count_include_pad(ch % 2);
    if (!c(base.TestAvg(row)) || !c(base.TestMax(row))) return;
  }
  const int kernels[][2] = {{1, 1}, {2, 2}, {3, 3}, {3, 2}, {2, 3}, {5, 5}};
  for (const auto& k : kernels)
    for (int stride : {1, 2})
      for (int ch : {1, 17, 35})
        for (bool include : {false, true}) {
          const PoolTester plain = t().channels(ch).kernel(k[0], k[1]).stride(stride, stride).input(k[0] + 4, k[1] + 3)
                                       .count_include_pad(include);
          const PoolTester padded = PoolTester(plain).pads(k[0] - 1, k[1] / 2, k[0] / 2, k[1] - 1).act(10, 240);
          if (!c(plain.TestAvg(row)) || !c(plain.TestMax(row)) || !c(padded.TestAvg(row)) || !c(padded.TestMax(row)))
            return;
        }
  const int inputs[][2] = {{1, 1}, {7, 7}, {3, 5}};
  for (const auto& in : inputs)
    for (int ch : {1, 8, 17, 49})
      if (!c(t().global(true).channels(ch).input(in[0], in[1]).batch(2).TestAvg(row))) return;
  for (size_t b = 0; b < 8; ++b) {
    const PoolTester ranged = t().channels(19).batch(2).input(8, 5).stride(2, 2).pads(1, 0, 1, 1).rows(b, b + 1 + b % 3);
    if (!c(ranged.TestAvg(row)) || !c(ranged.TestMax(row))) return;
  }
}

void sweep_transformer(const TransformerRow& row, Cases& c) {
  for (bool wide : {false, true})
    for (bool wide_output : {false, true}) {
      std::vector<size_t> widths;
      for (size_t h = 1; h <= 70; ++h) widths.push_back(h);
      for (size_t h : {size_t{384}, wide ? size_t{1024} : size_t{8192}}) widths.push_back(h);
      const auto t = [&] { return LayerNormTester().wide(wide).wide_output(wide_output).seed(c.next_seed()); };
      for (size_t h : widths)
        if (!c(t().h(h).rows(5).Test(row))) return;
      for (size_t b = 0; b < 6; ++b)
        if (!c(t().h(37).rows(8).range(b, b + 1 + b % 3).Test(row))) return;
      // Each output stage a vector kernel specialises: the multipliers' shifts, a clamp.
      for (double top : {0.0, 0.75, 3.0})
        for (bool clamped : {false, true})
          for (size_t h : {size_t{1}, size_t{8}, size_t{12}, size_t{37}, size_t{384}})
            if (!wide_output || !clamped)
              if (!c(t().h(h).rows(5).clamped(clamped).top_multiplier(top).Test(row))) return;
    }
  for (size_t n = 1; n <= 70; ++n)
    for (bool masked : {false, true})
      if (!c(SoftmaxTester().n(n).rows(5).masked(masked).seed(c.next_seed()).Test(row))) return;
  for (size_t n : {128, 384})
    if (!c(SoftmaxTester().n(n).rows(4).masked(n == 384).seed(c.next_seed()).Test(row))) return;
  for (size_t n : {1, 8, 17, 128})
    for (bool masked : {false, true})
      if (!c(SoftmaxTester().n(n).rows(5).masked(masked).peaked(true).seed(c.next_seed()).Test(row))) return;
  for (int bits : {8, 4, 2})
    for (size_t h : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{16}, size_t{37}, size_t{384}})
      if (!c(GatherTester().h(h).bits(bits).seed(c.next_seed()).Test(row))) return;
}

// MATMUL: row, column and depth tails around the 4 x 16 tile and the 16-k step, both layouts
// of b, row ranges, and the accumulator's extremes to the deepest reduction MATMUL accepts.
void sweep_matmul(const MatMulRow& row, Cases& c) {
  auto t = [&] { return MatMulTester().seed(c.next_seed()); };
  for (bool tb : {false, true}) {
    for (size_t m = 1; m <= 9; ++m)
      for (size_t n = 1; n <= 35; ++n)
        if (!c(t().m(m).n(n).k(2 * m + n).transpose_b(tb).Test(row))) return;
    for (size_t k = 1; k <= 49; ++k)
      if (!c(t().m(5).n(19).k(k).transpose_b(tb).Test(row))) return;
    for (size_t k : {63, 64, 65, 127, 128, 129, 384, 1031})
      if (!c(t().m(7).n(33).k(k).transpose_b(tb).Test(row))) return;
    for (size_t b = 0; b < 9; ++b)
      if (!c(t().m(9).n(17).k(32).range(b, b + 1 + b % 5).transpose_b(tb).Test(row))) return;
    // b = 1: b' = -127, the largest products (128 x 127) of tiles without -128, which the SMULL
    // row multiplies in pairs.
    for (int a_value : {0, 255})
      for (int b_value : {0, 1, 255})
        for (size_t k : {size_t{1}, size_t{300}, kMaxDepthMatMul})
          if (!c(t().m(5).n(17).k(k).extreme(a_value, b_value).transpose_b(tb).Test(row))) return;
    // b' = -128 in one column of a middle tile, of the last (partial) one, or of none.
    for (size_t n : {17, 33})
      for (const auto& columns : {std::vector<size_t>{9}, std::vector<size_t>{n - 1}, std::vector<size_t>{}})
        for (size_t k : {32, 300})
          if (!c(t().m(6).n(n).k(k).lowest_columns(columns).transpose_b(tb).Test(row))) return;
  }
}

// The GEMM of a wide input: row and column tails, depths, float output, column tiles, strides,
// and the accumulator's extremes (+-bound x +-127) at the deepest reduction a load accepts.
void sweep_gemm_s16(const GemmRow& row, Cases& c) {
  const size_t mr = row.tile.mr, nr = row.tile.nr ? row.tile.nr : 8, ka = row.tile.k_align;
  auto t = [&] { return GemmS16Tester().seed(c.next_seed()); };
  for (size_t m = 1; m <= 2 * mr + 1; ++m)
    for (size_t n = 1; n <= 3 * nr + 1; ++n)
      if (!c(t().m(m).n(n).k(2 * ka + 1).output_zero_point(static_cast<int32_t>(m * 37 % 256)).Test(row))) return;
  for (size_t k : gemm_depths(ka)) {
    if (!c(t().m(2 * mr + 1).n(2 * nr + 1).k(k).bound(k > 257 ? 2047 : 32767).Test(row))) return;
    if (!c(t().m(1).n(nr).k(k).bound(2047).Test(row))) return;
    if (!c(t().m(mr + 1).n(nr + 3).k(k).bound(k > 257 ? 2047 : 32767).float_output(true).Test(row))) return;
  }
  for (int sign : {1, -1})
    for (int32_t bound : {32767, 2752, 1}) {
      // The deepest k a load accepts at this bound (bound * 127 * k within int32), up to 8192.
      const size_t deepest = std::min<size_t>(static_cast<size_t>(INT32_MAX / (int64_t{bound} * 127)), 8192);
      for (size_t k : {size_t{1}, ka + 1, deepest}) {
        if (!c(t().m(mr + 1).n(nr + 1).k(k).bound(bound).extreme(sign).Test(row))) return;
        if (!c(t().m(2).n(nr + 1).k(k).bound(bound).extreme(sign).float_output(true).Test(row))) return;
      }
    }
  const size_t n = 3 * nr + 1, tiles = row.tile.nr ? 4 : 1;
  for (size_t b = 0; b < tiles; ++b)
    for (size_t e = b + 1; e <= tiles; ++e) {
      if (!c(t().m(mr + 1).n(n).k(2 * ka + 3).tiles(b, e).Test(row))) return;
      if (!c(t().m(mr + 2).n(n).k(2 * ka + 3).tiles(b, e).float_output(true).Test(row))) return;
    }
  for (size_t k : {size_t{1}, ka + 1, size_t{37}}) {
    if (!c(t().m(2 * mr + 1).n(2 * nr + 1).k(k).x_stride(k + 5).y_stride(2 * nr + 4).Test(row))) return;
    if (!c(t().m(2 * mr + 1).n(2 * nr + 1).k(k).x_stride(k + 1).y_stride(2 * nr + 2).float_output(true).Test(row)))
      return;
  }
}

// The select() rule of every table, on every path of this CPU: the first row in table order
// whose required features the path has and which accepts; the last row is the reference, which
// requires nothing and accepts every format its family is handed (GEMM: int8, packed int4 / int2,
// block-sparse int8 and MATMUL's int16; depthwise: int8, int4, int2) at every depth. A format no
// row reads (3-bit; block-sparse depthwise: the engine refuses them before any table sees them)
// is refused by select() with an exception.
bool check_select(const std::vector<Path>& paths, size_t* checks) {
  const WeightFormat s3{3, true, 3, WeightFormat::Scale::kPerChannel, WeightFormat::Layout::kDense, 1};
  const size_t depths[] = {1, 2, 9, 25, 49, 63, 64, 65, 81, 4096, kMaxDepthS16, kMaxDepthS8};
  bool ok = true;
  auto expect = [&](bool cond, const std::string& what) {
    ++*checks;
    if (!cond) std::printf("  select: %s\n", what.c_str());
    ok = ok && cond;
  };
  auto weights = [&](const char* family, auto table, const std::vector<WeightFormat>& formats,
                     const std::vector<WeightFormat>& unread) {
    const auto& last = table.rows[table.size - 1];
    expect(last.required == 0, std::string(family) + ": the last row " + last.name + " requires features");
    for (const WeightFormat& f : formats)
      for (size_t d : depths) {
        expect(last.accepts(f, d), std::string(family) + ": the reference row refuses a format at depth " +
                                       std::to_string(d));
        for (const Path& path : paths) {
          const auto* want = &last;
          for (const auto& row : table)
            if ((row.required & path.features) == row.required && row.accepts(f, d)) {
              want = &row;
              break;
            }
          const auto* got = &select(table, path.features, f, d);
          expect(got == want, std::string(family) + " on " + path.name + " at depth " + std::to_string(d) + ": " +
                                  got->name + ", expected " + want->name);
        }
      }
    for (const WeightFormat& f : unread)
      for (const Path& path : paths) {
        bool refused = false;
        try {
          select(table, path.features, f, 64);
        } catch (const std::logic_error&) {
          refused = true;
        }
        expect(refused, std::string(family) + " on " + path.name + ": a format no row reads was not refused");
      }
  };
  auto plain = [&](const char* family, auto table) {
    const auto& last = table.rows[table.size - 1];
    expect(last.required == 0, std::string(family) + ": the last row " + last.name + " requires features");
    for (const Path& path : paths) {
      const auto* want = &last;
      for (const auto& row : table)
        if ((row.required & path.features) == row.required) {
          want = &row;
          break;
        }
      const auto* got = &select(table, path.features);
      expect(got == want, std::string(family) + " on " + path.name + ": " + got->name + ", expected " + want->name);
    }
  };
  weights("gemm", gemm_table(), {kWeightsS8, kWeightsS16, kWeightsS4, kWeightsS2, block_sparse_s8(4), block_sparse_s8(1)},
          {s3});
  weights("gemm_s16", gemm_s16_table(), {kWeightsS8}, {s3});
  weights("dwconv", dwconv_table(), {kWeightsS8, kWeightsS4, kWeightsS2}, {s3, block_sparse_s8(4)});
  plain("elementwise", elementwise_table());
  plain("pool", pool_table());
  plain("transformer", transformer_table());
  plain("matmul", matmul_table());
  // A crossover below 1 (tables.h: block-sparse weights densified at load) only on rows that
  // pack their weights, as make_gemm's densified copy is gone once packed.
  for (const GemmRow& row : gemm_table()) {
    const SparseCrossover& x = row.sparse_crossover;
    expect(row.tile.nr > 0 || (x.one_row == 1 && x.shallow == 1 && x.deep == 1),
           std::string("gemm: ") + row.name + " reads its weights in place but states a sparse crossover");
  }
  // Every optimized path has an optimized GEMM for int8 weights (else it would not be a path).
  for (const Path& path : paths)
    if (path.features != 0)
      expect(!is_reference(select(gemm_table(), path.features, kWeightsS8, 64)),
             std::string("gemm on ") + path.name + ": only the reference row");
  return ok;
}

struct Totals {
  size_t passed = 0, failed = 0, skipped = 0;
};

// Runs `sweep` on each row of `table` the CPU can run; reports each row.
template <typename Row>
void test_table(const char* family, KernelTable<Row> table, Features cpu,
                const std::function<void(const Row&, Cases&)>& sweep, Totals& totals) {
  for (const Row& row : table) {
    if ((row.required & cpu) != row.required) {
      std::printf("SKIP %s/%s (needs %s)\n", family, row.name, feature_names(row.required & ~cpu).c_str());
      ++totals.skipped;
      continue;
    }
    Cases cases;
    sweep(row, cases);
    const bool ok = cases.failed == 0;
    std::printf("%s %s/%s (%zu cases%s)\n", ok ? "PASS" : "FAIL", family, row.name, cases.count,
                ok ? "" : (", " + std::to_string(cases.failed) + " failed").c_str());
    std::fflush(stdout);
    ++(ok ? totals.passed : totals.failed);
  }
}

}  // namespace
}  // namespace test
}  // namespace intinfer

int main() {
  using namespace intinfer;
  using namespace intinfer::test;
  const std::vector<Path> paths = supported_paths();
  const Features cpu = cpu_features();
  std::string names;
  for (const Path& p : paths) names += std::string(names.empty() ? "" : " ") + p.name;
  std::printf("cpu features: %s (paths: %s)\n", cpu ? feature_names(cpu).c_str() : "none", names.c_str());

  Totals totals;
  size_t checks = 0;
  const bool select_ok = check_select(paths, &checks);
  std::printf("%s select (%zu checks)\n", select_ok ? "PASS" : "FAIL", checks);
  ++(select_ok ? totals.passed : totals.failed);
  test_table<GemmRow>("gemm", gemm_table(), cpu, sweep_gemm, totals);
  test_table<GemmRow>("gemm_s16", gemm_s16_table(), cpu, sweep_gemm_s16, totals);
  test_table<DwconvRow>("dwconv", dwconv_table(), cpu, sweep_dwconv, totals);
  test_table<ElementwiseRow>("elementwise", elementwise_table(), cpu, sweep_elementwise, totals);
  test_table<PoolRow>("pool", pool_table(), cpu, sweep_pool, totals);
  test_table<TransformerRow>("transformer", transformer_table(), cpu, sweep_transformer, totals);
  test_table<MatMulRow>("matmul", matmul_table(), cpu, sweep_matmul, totals);
  std::printf("%zu passed, %zu failed, %zu skipped\n", totals.passed, totals.failed, totals.skipped);
  return totals.failed == 0 ? 0 : 1;
}
