// MATMUL of two uint8 activations (attention's Q K^T and P V): both operands carry zero points,
// the int32 product, times alpha, is requantized; leading dimensions are batch dimensions and
// must match.
#include <limits>

#include "../kernels/ref/kernels.h"
#include "../kernels/tables.h"
#include "ops.h"

namespace intinfer {
namespace {

// The deepest reduction whose int32 accumulator provably holds 255 * 255 * K.
constexpr int64_t kMaxDepth = std::numeric_limits<int32_t>::max() / max_accumulator(kWeightsS16, 1);

class MatMul : public Op {
 public:
  explicit MatMul(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(2, 2, 1);
    const TensorDesc &a = ctx.input(0), &b = ctx.input(1), &y = ctx.output(0);
    ctx.expect_quantized_u8(a, "a");
    ctx.expect_quantized_u8(b, "b");
    ctx.expect_quantized_u8(y, "output");
    p_.transpose_b = ctx.attr_int("transpose_b") != 0;
    p_.a_zero_point = a.zero_points[0];
    p_.b_zero_point = b.zero_points[0];
    // alpha scales the product (attention's 1 / sqrt(d)): one multiplier, no extra rounding.
    const double alpha = ctx.attr_float("alpha");
    if (!(alpha > 0)) ctx.fail("alpha must be positive, got ", alpha);
    p_.multiplier = ctx.multiplier(alpha * a.scales[0] * b.scales[0] / y.scales[0], "output");
    p_.out = ctx.output_stage();
    // A MATMUL kernel of the ISA, else a GEMM row for the per-call int16 packing of b - z_b, else
    // the reference, matmul_u8__ref.
    matmul_ = &select(matmul_table(), ctx.features());
    gemm_ = &select(gemm_table(), ctx.features(), kWeightsS16, kMaxDepth);
    if (!is_reference(*matmul_) || is_reference(*gemm_)) gemm_ = nullptr;
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    const Shape &a = in[0], &b = in[1];
    if (a.size() < 2 || b.size() != a.size() || !std::equal(a.begin(), a.end() - 2, b.begin()))
      shape_error(name_, "operands must have the same rank (>= 2) and batch dimensions, got " + shape_str(a) + " and " +
                             shape_str(b));
    const int64_t k = a.back(), kb = p_.transpose_b ? b.back() : b[b.size() - 2];
    if (k != kb) shape_error(name_, "inner dimensions differ: " + shape_str(a) + " and " + shape_str(b));
    if (k > kMaxDepth) shape_error(name_, "inner dimension " + std::to_string(k) + " is above " + std::to_string(kMaxDepth));
    Shape y(a.begin(), a.end() - 1);
    y.push_back(p_.transpose_b ? b[b.size() - 2] : b.back());
    return {y};
  }

  void run(const ExecContext& ctx) const override {
    const Shape &a = *ctx.input_shapes[0], &y = *ctx.output_shapes[0];
    MatMulParams p = p_;
    p.m = static_cast<size_t>(a[a.size() - 2]);
    p.k = static_cast<size_t>(a.back());
    p.n = static_cast<size_t>(y.back());
    const size_t batches = numel(a) / (p.m * p.k);
    const uint8_t *ap = ctx.in<uint8_t>(0), *bp = ctx.in<uint8_t>(1);
    uint8_t* yp = ctx.out<uint8_t>(0);
    if (!is_reference(*matmul_)) {
      // Work items are matrices: the kernel packs b once per call.
      ctx.pool->parallel_for(batches, [&](size_t begin, size_t end) {
        std::vector<uint8_t> scratch(matmul_scratch_bytes(p.k, p.n));
        for (size_t batch = begin; batch < end; ++batch)
          matmul_->run(p, ap + batch * p.m * p.k, bp + batch * p.k * p.n, yp + batch * p.m * p.n, 0, p.m,
                       scratch.data());
      });
      return;
    }
    if (gemm_ == nullptr) {
      // The reference: work items are (batch, row) pairs.
      ctx.pool->parallel_for(batches * p.m, [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end;) {
          const size_t batch = i / p.m, row = i % p.m, stop = std::min(end - i, p.m - row);
          matmul_->run(p, ap + batch * p.m * p.k, bp + batch * p.k * p.n, yp + batch * p.m * p.n, row, row + stop,
                       nullptr);
          i += stop;
        }
      });
      return;
    }
    // The optimized GEMM of the ISA over b - z_b as int16 weights [n][k], packed per matrix;
    // the bias -z_a * sum_k (b - z_b) completes sum (a - z_a)(b - z_b). Work items are matrices.
    const std::vector<QuantizedMultiplier> multipliers(p.n, p.multiplier);
    ctx.pool->parallel_for(batches, [&](size_t begin, size_t end) {
      std::vector<int16_t> w(p.n * p.k);
      std::vector<int32_t> bias(p.n);
      std::vector<uint8_t> scratch;
      for (size_t batch = begin; batch < end; ++batch) {
        const uint8_t* b = bp + batch * p.k * p.n;
        for (size_t j = 0; j < p.n; ++j) {
          int32_t sum = 0;
          for (size_t k = 0; k < p.k; ++k) {
            const int32_t v = static_cast<int32_t>(p.transpose_b ? b[j * p.k + k] : b[k * p.n + j]) - p.b_zero_point;
            w[j * p.k + k] = static_cast<int16_t>(v);
            sum += v;
          }
          bias[j] = -p.a_zero_point * sum;
        }
        const PackedWeights packed(gemm_->tile, w.data(), kWeightsS16, p.n, p.k, bias.data(), multipliers, {});
        const PackedView view = packed.view();
        scratch.resize(packed.scratch_bytes());
        gemm_->run(view, p.out, ap + batch * p.m * p.k, p.k, yp + batch * p.m * p.n, p.n, p.m, 0, view.n_tiles,
                   scratch.data());
      }
    });
  }

  uint64_t macs(const std::vector<Shape>& in, const std::vector<Shape>& out) const override {
    return numel(out[0]) * static_cast<uint64_t>(in[0].back());
  }

 private:
  std::string name_;
  const MatMulRow* matmul_;
  const GemmRow* gemm_;  // null: matmul_ runs (an ISA's MATMUL kernel, or the reference)
  MatMulParams p_{};
};

}  // namespace

std::unique_ptr<Op> make_matmul(const OpContext& ctx) { return std::make_unique<MatMul>(ctx); }

}  // namespace intinfer
