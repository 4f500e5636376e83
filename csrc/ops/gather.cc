// GATHER: rows of an int8 (or packed int4 / int2) table with per-row scales (embeddings), requantized to uint8 or wide.
#include "../kernels/codes.h"
#include "../kernels/ref/kernels.h"
#include "../kernels/tables.h"
#include "ops.h"

namespace intinfer {
namespace {

class Gather : public Op {
 public:
  explicit Gather(const OpContext& ctx) : name_(ctx.desc().name) {
    ctx.expect_io(2, 2, 1);
    const TensorDesc& table = ctx.input(0);
    bits_ = ctx.expect_weight_codes(table, "table");
    if (table.shape.size() != 2) ctx.fail("table '", table.name, "' must be [rows, width], got ", shape_str(table.shape));
    rows_ = table.shape[0];
    width_ = static_cast<size_t>(table.shape[1]);
    if (table.scales.size() != static_cast<size_t>(rows_) || table.axis != 0)
      ctx.fail("table '", table.name, "' needs one scale per row (axis 0), got ", table.scales.size());
    for (int32_t z : table.zero_points)
      if (z != 0) ctx.fail("table '", table.name, "' must be symmetric (zero point 0)");
    table_ = table.data;
    ctx.expect_dtype(ctx.input(1), DType::kInt32, "ids");
    wide_ = OpContext::is_wide(ctx.output(0));
    if (wide_)
      ctx.expect_wide(ctx.output(0), "output");
    else
      ctx.expect_quantized_u8(ctx.output(0), "output");
    const double s_out = ctx.output(0).scales[0];
    multipliers_.reserve(rows_);
    for (float s : table.scales) multipliers_.push_back(ctx.multiplier(s / s_out, "row"));
    out_ = ctx.output_stage();
    positions_ = ctx.attr_int("positions");
    if (positions_ < 0 || positions_ > 2) ctx.fail("'positions' ", positions_, " is not 0, 1 or 2");
    padding_id_ = ctx.attr_int("padding_id");
    kernel_ = &select(transformer_table(), ctx.features());
  }

  std::vector<Shape> infer(const std::vector<Shape>& in) const override {
    Shape y = in[1];
    if (y.empty()) shape_error(name_, "ids must have at least one dimension");
    const int64_t needed = y.back() + (positions_ == kCounted ? 1 : 0);  // counted: row 0 is the padding's
    if (positions_ != kIds && needed > rows_)
      shape_error(name_, "a sequence of " + std::to_string(y.back()) + " positions needs " + std::to_string(needed) +
                             " rows, the table has " + std::to_string(rows_));
    y.push_back(static_cast<int64_t>(width_));
    return {y};
  }

  void run(const ExecContext& ctx) const override {
    const Shape& ids_shape = *ctx.input_shapes[1];
    const size_t n = numel(ids_shape);
    std::vector<int32_t> rows(n);
    const size_t seq = n ? static_cast<size_t>(ids_shape.back()) : 0;
    if (positions_ == kIndex) {
      for (size_t i = 0; i < n; ++i) rows[i] = static_cast<int32_t>(i % seq);
    } else if (positions_ == kCounted) {
      const int32_t* ids = ctx.in<int32_t>(1);
      for (size_t row = 0; row < n; row += seq) {
        int32_t count = 0;
        for (size_t i = row; i < row + seq; ++i) rows[i] = ids[i] != padding_id_ ? ++count : 0;
      }
    } else {
      const int32_t* ids = ctx.in<int32_t>(1);
      for (size_t i = 0; i < n; ++i) {
        if (ids[i] < 0 || ids[i] >= rows_)
          shape_error(name_, "id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                                 " is outside the table's rows [0, " + std::to_string(rows_) + ")");
        rows[i] = ids[i];
      }
    }
    ctx.pool->parallel_for(n, [&](size_t b, size_t e) {
      if (wide_)
        kernel_->gather_wide(bits_, table_, width_, multipliers_.data(), rows.data() + b, e - b,
                             ctx.out<int32_t>(0) + b * width_);
      else
        gather_rows__ref(bits_, table_, width_, multipliers_.data(), out_, rows.data() + b, e - b,
                         ctx.out<uint8_t>(0) + b * width_);
    });
  }

  size_t weight_bytes() const override { return static_cast<size_t>(rows_) * code_row_bytes(width_, bits_); }

 private:
  std::string name_;
  const uint8_t* table_;  // rows of width_ codes of bits_ (codes.h)
  int bits_;
  int64_t rows_;
  size_t width_;
  std::vector<QuantizedMultiplier> multipliers_;
  OutputStage out_;
  enum : int64_t { kIds = 0, kIndex = 1, kCounted = 2 };  // the 'positions' attribute
  int64_t positions_;
  int64_t padding_id_;
  bool wide_;
  const TransformerRow* kernel_;  // its gather_wide
};

}  // namespace

std::unique_ptr<Op> make_gather(const OpContext& ctx) { return std::make_unique<Gather>(ctx); }

}  // namespace intinfer
