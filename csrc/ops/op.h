// The operator interface: each op validates its tensors and attributes once at load
// (raising ModelError), prepacks what it can, infers output shapes for the actual input
// shapes (raising InputError), and runs by dispatching to kernels.
#pragma once

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../core/cpu.h"
#include "../core/format.h"
#include "../core/thread_pool.h"
#include "../kernels/ref/requant.h"
#include "intinfer/model.h"

namespace intinfer {

struct ExecContext {
  std::vector<const void*> inputs;
  std::vector<const Shape*> input_shapes;
  std::vector<void*> outputs;
  std::vector<const Shape*> output_shapes;
  ThreadPool* pool;

  template <typename T>
  const T* in(size_t i) const { return static_cast<const T*>(inputs[i]); }
  template <typename T>
  T* out(size_t i) const { return static_cast<T*>(outputs[i]); }
};

class Op {
 public:
  virtual ~Op() = default;
  virtual std::vector<Shape> infer(const std::vector<Shape>& inputs) const = 0;
  virtual void run(const ExecContext& ctx) const = 0;
  virtual size_t weight_bytes() const { return 0; }
  // Bytes the op holds from load to unload for its kernels (weights packed in a kernel's layout,
  // its output stage), beside the file's own bytes.
  virtual size_t held_bytes() const { return 0; }
  // Multiply-accumulates of one run for these shapes (pools: window steps; 0 for ops whose work
  // is linear in their tensors). The max_macs limit sums them.
  virtual uint64_t macs(const std::vector<Shape>& inputs, const std::vector<Shape>& outputs) const {
    (void)inputs;
    (void)outputs;
    return 0;
  }
};

// Fills the NHWC sizes shared by ConvParams and PoolParams from the input and output shapes.
template <typename Params>
void set_nhwc_sizes(Params& p, const Shape& x, const Shape& y) {
  p.batch = static_cast<int>(x[0]);
  p.in_h = static_cast<int>(x[1]);
  p.in_w = static_cast<int>(x[2]);
  p.out_h = static_cast<int>(y[1]);
  p.out_w = static_cast<int>(y[2]);
}

inline uint64_t numel(const Shape& s) {
  uint64_t n = 1;
  for (int64_t d : s) n *= static_cast<uint64_t>(d);
  return n;
}

// What an op factory sees: the op's descriptor, its tensors, and checks that fail with a
// ModelError naming the op.
class OpContext {
 public:
  OpContext(const ModelDesc& model, const OpDesc& op, Features features)
      : model_(model), op_(op), features_(features) {}

  const OpDesc& desc() const { return op_; }
  // The CPU features the model's kernels may use (its path, cpu.h).
  Features features() const { return features_; }
  const TensorDesc& input(size_t i) const { return model_.tensors[op_.inputs.at(i)]; }
  const TensorDesc& output(size_t i) const { return model_.tensors[op_.outputs.at(i)]; }
  std::string where() const;

  template <typename... Args>
  [[noreturn]] void fail(const Args&... args) const {
    std::ostringstream os;
    os << "invalid model file: " << where() << ": ";
    (os << ... << args);
    throw ModelError(os.str());
  }

  void expect_io(size_t min_inputs, size_t max_inputs, size_t outputs) const;
  // A uint8 tensor with one scale and zero point (an activation, input or constant).
  void expect_quantized_u8(const TensorDesc& t, const char* role) const;
  void expect_dtype(const TensorDesc& t, DType dtype, const char* role) const;
  // A wide activation: int32 with one scale and zero point 0 (values within +-kWideMax).
  void expect_wide(const TensorDesc& t, const char* role) const;
  static bool is_wide(const TensorDesc& t) { return t.dtype == DType::kInt32 && t.quantized(); }
  void expect_constant(const TensorDesc& t, const char* role) const;
  // A constant of weight codes: int8 (dense), or int4 / int2 in the packed encoding. Returns the
  // width in bits.
  int expect_weight_codes(const TensorDesc& t, const char* role) const;
  // b keeps a's dtype, scale and zero point (ops that move or select values).
  void expect_same_quantization(const TensorDesc& a, const TensorDesc& b) const;

  // Attribute values; where the file omits one, its default in the schema (intinfer/schema.json),
  // the one place defaults are written (a required attribute's absence fails).
  int64_t attr_int(const std::string& key) const;
  float attr_float(const std::string& key) const;
  // Exactly n ints, each in [lo, hi].
  std::vector<int64_t> attr_ints(const std::string& key, size_t n, int64_t lo, int64_t hi) const;
  // A required list of ints of any length.
  std::vector<int64_t> attr_int_list(const std::string& key) const;
  // act_min/act_max attributes as an OutputStage for the op's output.
  OutputStage output_stage() const;
  QuantizedMultiplier multiplier(double real, const char* what) const;

 private:
  const ModelDesc& model_;
  const OpDesc& op_;
  Features features_;
};

// Builds the op for ctx.desc().type, validating everything it reads.
std::unique_ptr<Op> create_op(const OpContext& ctx);

// Shape-error helper for infer(): an InputError that names the op.
[[noreturn]] void shape_error(const std::string& op_name, const std::string& message);

}  // namespace intinfer
