// intinfer public C++ API: load a .iif model, inspect it, run it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "intinfer/dtype.gen.h"

namespace intinfer {

// Bytes of one element; 0 for the sub-byte dtypes, which only packed constants have.
size_t dtype_size(DType t);
const char* dtype_name(DType t);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);

// The kernel paths (the names INTINFER_ISA takes) this build can run on this CPU, reference
// first; a model loads with the last unless INTINFER_ISA names another.
std::vector<std::string> available_paths();

// A model file that is truncated, corrupt, hostile, inconsistent or from a newer version.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A call with inputs of the wrong count, rank, shape or dtype.
class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;  // -1 marks a dimension that may vary between calls
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
  // Inputs read as ids by GATHERs (token ids): the fewest rows among their tables, so ids must
  // lie in [0, id_rows); 0 for any other tensor. Tools that make up inputs need it.
  int64_t id_rows;
};

struct OpInfo {
  std::string type;
  std::string name;
  size_t weight_bytes;    // in memory, as packed for the kernels
  uint64_t parameters;    // elements of the constants this op reads first (a shared one counts once)
  uint64_t stored_bytes;  // their bytes in the file, at their stored bits and encoding
};

// The work of one op for given input shapes.
struct OpCost {
  uint64_t macs;             // multiply-accumulates (pools: window steps; 0 for ops without products)
  uint64_t output_elements;  // elements the op writes
};

struct MemoryInfo {
  size_t arena_bytes;          // activation memory of the static plan
  size_t naive_bytes;          // the sum of all activation tensors, as without reuse
  size_t weight_bytes;         // the weights and biases in the file (mapped, not copied)
  size_t kernel_weight_bytes;  // what the kernels hold beside them: weights packed in their layout
};

// What one run of a model may demand, checked for each new set of input shapes before anything
// is allocated or computed (a Session::run beyond them throws InputError), and at load for the
// shapes the file declares, dynamic dimensions taken as 1 (ModelError). The defaults suit a
// phone as well as a server running ordinary batches; raise them for big ones (docs/runtime.md).
struct Limits {
  uint64_t max_tensor_bytes = uint64_t{256} << 20;  // one activation tensor
  uint64_t max_arena_bytes = uint64_t{1} << 30;     // all activations of the plan
  uint64_t max_macs = uint64_t{1} << 40;            // multiply-accumulates (and pooling window steps)
};

struct Options {
  int num_threads = 0;  // 0: one per physical core; at most max_num_threads()
  // Plans (shapes and arena offsets) kept for the input shapes used last; 0 plans every call.
  size_t plan_cache_size = 64;
  Limits limits;
};

// The most intra-op threads a model may be loaded with: 4 x the CPUs this process may run on.
// More only time-slice the same cores (docs/runtime.md, Threads).
int max_num_threads();

// An input or output tensor on the caller's side. For inputs `data` is read, for outputs the
// runtime fills `bytes`.
struct HostTensor {
  DType dtype;
  Shape shape;
  const void* data = nullptr;
  std::vector<uint8_t> bytes;
};

class Model;
class AlignedBuffer;

// Runs a model. Not thread-safe: give each calling thread its own Session (they share the
// Model, its weights and its plan cache).
class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  // `op_seconds`, when given, receives the wall time of each op in model order. `at_op`, when
  // given, is called with each op's index before the op runs and with the op count after the last
  // (intinfer-bench --mark-ops: markers for an instruction counter).
  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs, std::vector<double>* op_seconds = nullptr,
                              const std::function<void(size_t)>& at_op = nullptr);

 private:
  std::shared_ptr<const Model> model_;
  std::shared_ptr<AlignedBuffer> arena_;
};

class Model : public std::enable_shared_from_this<Model> {
 public:
  static std::shared_ptr<Model> load_file(const std::string& path, const Options& options = {});
  static std::shared_ptr<Model> load_buffer(const void* data, size_t size, const Options& options = {});
  ~Model();

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  std::vector<OpInfo> ops() const;
  std::vector<std::pair<std::string, std::string>> metadata() const;
  // Memory plan for these input shapes (empty: dynamic dimensions taken as 1).
  MemoryInfo memory(const std::vector<Shape>& input_shapes = {}) const;
  // The shapes the outputs take for these input shapes (empty: dynamic dimensions taken as 1).
  std::vector<Shape> output_shapes(const std::vector<Shape>& input_shapes = {}) const;
  // The work of each op for these input shapes (empty: dynamic dimensions taken as 1).
  std::vector<OpCost> op_costs(const std::vector<Shape>& input_shapes = {}) const;
  int num_threads() const;
  const char* isa() const;
  size_t plan_cache_size() const;
  size_t cached_plans() const;  // now, at most plan_cache_size()
  const Limits& limits() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace intinfer
