#include <algorithm>
#include <chrono>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <system_error>

#include "../ops/op.h"
#include "buffer.h"
#include "cpu.h"
#include "format.h"
#include "planner.h"
#include "thread_pool.h"

namespace intinfer {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + (s[i] < 0 ? std::string("?") : std::to_string(s[i]));
  return out + "]";
}

namespace {

// Shapes and arena offsets of every tensor for one set of input shapes.
struct Plan {
  std::vector<Shape> shapes;
  std::vector<size_t> offsets;  // non-constant tensors only
  std::vector<size_t> bytes;
  size_t arena_bytes = 0;
  size_t naive_bytes = 0;
};

// Whatever the limits: ops index with int dimensions and size_t byte counts.
constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;
constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 40;

// A plan beyond Options::limits: an InputError (ValueError) for the shapes of a run, turned into
// a ModelError at load, where the file itself asks for it.
class LimitError : public InputError {
 public:
  using InputError::InputError;
};

// "input 'x'" or "tensor 'y' (output of op 'conv', CONV_2D)".
std::string tensor_what(const ModelDesc& desc, uint32_t t, int producer) {
  if (producer < 0) return "input '" + desc.tensors[t].name + "'";
  const OpDesc& od = desc.ops[producer];
  return "tensor '" + desc.tensors[t].name + "' (output of op '" + od.name + "', " + op_type_name(od.type) + ")";
}

uint64_t checked_bytes(const Shape& s, DType t, const std::string& what, const Limits& limits) {
  uint64_t n = dtype_size(t);
  bool huge = false;
  for (int64_t d : s) {
    if (d < 1) throw InputError(what + " would have shape " + shape_str(s) + ", which is empty");
    huge = huge || d > kMaxDim || n > kMaxTensorBytes / static_cast<uint64_t>(d);
    if (!huge) n *= static_cast<uint64_t>(d);
  }
  if (huge)
    throw LimitError(what + " would have shape " + shape_str(s) + ", above the engine's bounds (2^40 bytes, " +
                     "dimensions below 2^31)");
  if (n > limits.max_tensor_bytes)
    throw LimitError(what + " would have shape " + shape_str(s) + ": " + std::to_string(n) +
                     " bytes, above max_tensor_bytes = " + std::to_string(limits.max_tensor_bytes) +
                     " (a load option; docs/runtime.md, Limits)");
  return n;
}

TensorInfo info_of(const TensorDesc& t, int64_t id_rows) {
  return {t.name, t.dtype, t.shape, t.scales, t.zero_points, id_rows};
}

// TensorInfo::id_rows of each graph input: the GATHERs that read it as ids, directly or through
// RESHAPEs and TRANSPOSEs (which move values without changing them). A GATHER of positions
// reads only the ids' shape.
std::vector<int64_t> input_id_rows(const ModelDesc& desc) {
  std::vector<std::vector<const OpDesc*>> readers(desc.tensors.size());
  for (const OpDesc& od : desc.ops)
    for (uint32_t t : od.inputs) readers[t].push_back(&od);
  std::vector<int64_t> result;
  for (uint32_t input : desc.inputs) {
    int64_t rows = 0;
    // Each tensor has one writer, so no tensor is reached twice.
    std::vector<uint32_t> pending{input};
    while (!pending.empty()) {
      const uint32_t t = pending.back();
      pending.pop_back();
      for (const OpDesc* od : readers[t]) {
        if (od->type == OpType::kGather && od->inputs[1] == t) {
          auto positions = od->attrs.find("positions");
          if (positions != od->attrs.end() && positions->second.ints[0] != 0) continue;
          const int64_t n = desc.tensors[od->inputs[0]].shape[0];
          rows = rows == 0 ? n : std::min(rows, n);
        } else if ((od->type == OpType::kReshape || od->type == OpType::kTranspose) && od->inputs[0] == t) {
          pending.push_back(od->outputs[0]);
        }
      }
    }
    result.push_back(rows);
  }
  return result;
}

// The declared input shapes with dynamic dimensions taken as 1.
std::vector<Shape> smallest_shapes(const std::vector<TensorInfo>& inputs) {
  std::vector<Shape> shapes;
  for (const TensorInfo& t : inputs) {
    Shape s = t.shape;
    for (int64_t& d : s) d = d < 0 ? 1 : d;
    shapes.push_back(s);
  }
  return shapes;
}

}  // namespace

struct Model::Impl {
  std::unique_ptr<Bytes> storage;
  ModelDesc desc;
  Path path;
  std::vector<std::unique_ptr<Op>> ops;
  std::vector<TensorInfo> inputs, outputs;
  std::unique_ptr<ThreadPool> pool;

  // The plans of the plan_cache_size input shapes used last, the most recent first: a server
  // sees every batch size and sequence length, so an unbounded cache only grows.
  using Entry = std::pair<std::vector<Shape>, std::shared_ptr<const Plan>>;
  size_t plan_cache_size = 0;
  Limits limits;
  mutable ForkMutex cache_mutex;  // a plan being cached when another thread forks
  mutable std::list<Entry> plans;
  mutable std::map<std::vector<Shape>, std::list<Entry>::iterator> plan_index;

  std::shared_ptr<const Plan> plan(const std::vector<Shape>& input_shapes) const;
  std::shared_ptr<const Plan> build_plan(const std::vector<Shape>& input_shapes) const;
};

std::shared_ptr<const Plan> Model::Impl::plan(const std::vector<Shape>& input_shapes) const {
  auto cached = [&]() -> std::shared_ptr<const Plan> {
    auto it = plan_index.find(input_shapes);
    if (it == plan_index.end()) return nullptr;
    plans.splice(plans.begin(), plans, it->second);
    return it->second->second;
  };
  {
    std::lock_guard<ForkMutex> lock(cache_mutex);
    if (auto p = cached()) return p;
  }
  // Built outside the lock: planning a large graph must not stall the other threads' lookups.
  auto p = build_plan(input_shapes);
  std::lock_guard<ForkMutex> lock(cache_mutex);
  if (auto q = cached()) return q;  // another thread planned the same shapes meanwhile
  if (plan_cache_size == 0) return p;
  plans.emplace_front(input_shapes, p);
  plan_index.emplace(input_shapes, plans.begin());
  while (plans.size() > plan_cache_size) {
    plan_index.erase(plans.back().first);
    plans.pop_back();  // sessions running with it keep their shared_ptr
  }
  return p;
}

std::shared_ptr<const Plan> Model::Impl::build_plan(const std::vector<Shape>& input_shapes) const {
  auto plan = std::make_shared<Plan>();
  const size_t n = desc.tensors.size();
  plan->shapes.resize(n);
  for (size_t i = 0; i < n; ++i)
    if (desc.tensors[i].kind == TensorKind::kConstant) plan->shapes[i] = desc.tensors[i].shape;
  // Every non-constant tensor's size is checked as soon as its shape is known, before any
  // later op multiplies these sizes together.
  plan->bytes.assign(n, 0);
  auto set_shape = [&](uint32_t t, const Shape& s, int producer) {
    plan->bytes[t] = checked_bytes(s, desc.tensors[t].dtype, tensor_what(desc, t, producer), limits);
    plan->shapes[t] = s;
  };
  for (size_t i = 0; i < desc.inputs.size(); ++i) set_shape(desc.inputs[i], input_shapes[i], -1);
  auto at_shapes = [&] {
    std::string out = " at input shapes [";
    for (size_t i = 0; i < input_shapes.size(); ++i) out += (i ? ", " : "") + shape_str(input_shapes[i]);
    return out + "]";
  };

  // Lifetimes in op steps: inputs are written before step 0, outputs read after the last.
  const int end = static_cast<int>(desc.ops.size());
  std::vector<int> first(n, -1), last(n, -1);
  uint64_t macs = 0;
  for (int s = 0; s < end; ++s) {
    const OpDesc& od = desc.ops[s];
    std::vector<Shape> in;
    for (uint32_t t : od.inputs) {
      in.push_back(plan->shapes[t]);
      last[t] = s;
    }
    std::vector<Shape> out = ops[s]->infer(in);
    for (size_t k = 0; k < od.outputs.size(); ++k) {
      set_shape(od.outputs[k], out[k], s);
      first[od.outputs[k]] = s;
    }
    const uint64_t op_macs = ops[s]->macs(in, out);
    if (op_macs > limits.max_macs - macs)  // macs <= max_macs: no wrap-around
      throw LimitError("op '" + od.name + "' (" + op_type_name(od.type) + ") takes " + std::to_string(op_macs) +
                       " multiply-accumulates, which brings the run above max_macs = " +
                       std::to_string(limits.max_macs) + at_shapes() + " (a load option; docs/runtime.md, Limits)");
    macs += op_macs;
  }
  for (uint32_t t : desc.outputs) last[t] = end;

  std::vector<Lifetime> lifetimes;
  std::vector<size_t> which;
  for (size_t i = 0; i < n; ++i) {
    if (desc.tensors[i].kind == TensorKind::kConstant) continue;
    lifetimes.push_back({plan->bytes[i], first[i], std::max(last[i], first[i])});
    which.push_back(i);
  }
  ArenaPlan arena = plan_arena(lifetimes);
  plan->offsets.assign(n, 0);
  for (size_t k = 0; k < which.size(); ++k) plan->offsets[which[k]] = arena.offsets[k];
  if (arena.arena_bytes > limits.max_arena_bytes)
    throw LimitError("the activation arena would take " + std::to_string(arena.arena_bytes) + " bytes" + at_shapes() +
                     ", above max_arena_bytes = " + std::to_string(limits.max_arena_bytes) +
                     " (a load option; docs/runtime.md, Limits)");
  plan->arena_bytes = arena.arena_bytes;
  plan->naive_bytes = arena.naive_bytes;
  return plan;
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

// Oversubscribing the cores a little can still help a model whose ops wait on memory; hundreds
// of threads on a few cores only make every parallel section wait for descheduled workers.
constexpr int kThreadsPerCpu = 4;

int max_num_threads() { return kThreadsPerCpu * available_cpus(); }

namespace {

std::string threads_above_maximum(int num_threads) {
  return "num_threads " + std::to_string(num_threads) + " is above the maximum of " + std::to_string(max_num_threads()) +
         " (" + std::to_string(kThreadsPerCpu) + " x the " + std::to_string(available_cpus()) +
         " CPUs this process may run on)";
}

void init_model(std::unique_ptr<Bytes> storage, const Options& options, Model::Impl* impl) {
  impl->desc = parse_model(storage->data(), storage->size());
  impl->storage = std::move(storage);
  impl->plan_cache_size = options.plan_cache_size;
  impl->limits = options.limits;
  for (const auto& [value, name] : {std::pair{options.limits.max_tensor_bytes, "max_tensor_bytes"},
                                    {options.limits.max_arena_bytes, "max_arena_bytes"},
                                    {options.limits.max_macs, "max_macs"}})
    if (value == 0) throw ModelError(std::string(name) + " must be positive");
  try {
    impl->path = select_path();
  } catch (const std::runtime_error& e) {
    throw ModelError(e.what());
  }
  for (const OpDesc& od : impl->desc.ops) impl->ops.push_back(create_op(OpContext(impl->desc, od, impl->path.features)));
  const std::vector<int64_t> id_rows = input_id_rows(impl->desc);
  for (size_t i = 0; i < id_rows.size(); ++i)
    impl->inputs.push_back(info_of(impl->desc.tensors[impl->desc.inputs[i]], id_rows[i]));
  for (uint32_t t : impl->desc.outputs) impl->outputs.push_back(info_of(impl->desc.tensors[t], 0));
  // A file that asks beyond the limits at its smallest input sizes asks at every size: refuse it
  // here rather than at its first run. Other shape errors at size 1 are left to the run, which
  // may use sizes that work.
  try {
    impl->build_plan(smallest_shapes(impl->inputs));
  } catch (const LimitError& e) {
    throw ModelError(std::string("model beyond the limits: ") + e.what());
  } catch (const InputError&) {
  }
  if (options.num_threads > max_num_threads())
    throw ModelError(threads_above_maximum(options.num_threads));
  const int threads = options.num_threads > 0 ? options.num_threads : default_num_threads();
  try {
    impl->pool = std::make_unique<ThreadPool>(threads);
  } catch (const std::system_error& e) {
    throw ModelError(std::string(e.what()) + "; load with a smaller num_threads");
  }
}

}  // namespace

std::shared_ptr<Model> Model::load_file(const std::string& path, const Options& options) {
  auto impl = std::make_unique<Impl>();
  init_model(std::make_unique<MappedFile>(path), options, impl.get());
  return std::shared_ptr<Model>(new Model(std::move(impl)));
}

std::shared_ptr<Model> Model::load_buffer(const void* data, size_t size, const Options& options) {
  // Copied so that weights are 64-byte aligned and outlive the caller's buffer.
  auto copy = std::make_unique<AlignedBuffer>(size);
  if (size) std::memcpy(copy->mutable_data(), data, size);
  auto impl = std::make_unique<Impl>();
  init_model(std::move(copy), options, impl.get());
  return std::shared_ptr<Model>(new Model(std::move(impl)));
}

const std::vector<TensorInfo>& Model::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Model::outputs() const { return impl_->outputs; }
int Model::num_threads() const { return impl_->pool->num_threads(); }
size_t Model::plan_cache_size() const { return impl_->plan_cache_size; }
const Limits& Model::limits() const { return impl_->limits; }

size_t Model::cached_plans() const {
  std::lock_guard<ForkMutex> lock(impl_->cache_mutex);
  return impl_->plans.size();
}
const char* Model::isa() const { return impl_->path.name; }

std::vector<std::string> available_paths() {
  std::vector<std::string> names;
  for (const Path& p : supported_paths()) names.push_back(p.name);
  return names;
}

std::vector<std::pair<std::string, std::string>> Model::metadata() const { return impl_->desc.metadata; }

std::vector<OpInfo> Model::ops() const {
  std::vector<OpInfo> out;
  std::vector<bool> counted(impl_->desc.tensors.size(), false);
  for (size_t i = 0; i < impl_->ops.size(); ++i) {
    const OpDesc& od = impl_->desc.ops[i];
    OpInfo info{op_type_name(od.type), od.name, impl_->ops[i]->weight_bytes(), 0, 0};
    for (uint32_t t : od.inputs) {
      const TensorDesc& td = impl_->desc.tensors[t];
      if (td.kind != TensorKind::kConstant || counted[t]) continue;
      counted[t] = true;
      info.parameters += static_cast<uint64_t>(td.numel());
      info.stored_bytes += td.data_bytes;
    }
    out.push_back(std::move(info));
  }
  return out;
}

namespace {

void check_input_shape(const TensorInfo& info, const Shape& shape) {
  bool ok = shape.size() == info.shape.size();
  for (size_t d = 0; ok && d < shape.size(); ++d)
    ok = shape[d] >= 1 && (info.shape[d] == -1 || shape[d] == info.shape[d]);
  if (!ok)
    throw InputError("input '" + info.name + "': expected shape " + shape_str(info.shape) + " (? = any size), got " +
                     shape_str(shape));
}

}  // namespace

namespace {

std::shared_ptr<const Plan> plan_for(const Model::Impl& m, const std::vector<Shape>& input_shapes) {
  const std::vector<Shape> shapes = input_shapes.empty() ? smallest_shapes(m.inputs) : input_shapes;
  if (shapes.size() != m.inputs.size())
    throw InputError("expected " + std::to_string(m.inputs.size()) + " input shapes, got " + std::to_string(shapes.size()));
  for (size_t i = 0; i < shapes.size(); ++i) check_input_shape(m.inputs[i], shapes[i]);
  return m.plan(shapes);
}

}  // namespace

MemoryInfo Model::memory(const std::vector<Shape>& input_shapes) const {
  auto plan = plan_for(*impl_, input_shapes);
  MemoryInfo info{plan->arena_bytes, plan->naive_bytes, 0, 0};
  for (const auto& op : impl_->ops) {
    info.weight_bytes += op->weight_bytes();
    info.kernel_weight_bytes += op->held_bytes();
  }
  return info;
}

std::vector<OpCost> Model::op_costs(const std::vector<Shape>& input_shapes) const {
  auto plan = plan_for(*impl_, input_shapes);
  std::vector<OpCost> out;
  for (size_t s = 0; s < impl_->ops.size(); ++s) {
    const OpDesc& od = impl_->desc.ops[s];
    std::vector<Shape> in, outs;
    for (uint32_t t : od.inputs) in.push_back(plan->shapes[t]);
    for (uint32_t t : od.outputs) outs.push_back(plan->shapes[t]);
    uint64_t written = 0;
    for (const Shape& shape : outs) written += numel(shape);
    out.push_back({impl_->ops[s]->macs(in, outs), written});
  }
  return out;
}

std::vector<Shape> Model::output_shapes(const std::vector<Shape>& input_shapes) const {
  auto plan = plan_for(*impl_, input_shapes);
  std::vector<Shape> out;
  for (uint32_t t : impl_->desc.outputs) out.push_back(plan->shapes[t]);
  return out;
}

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)) {}

std::vector<HostTensor> Session::run(const std::vector<HostTensor>& inputs, std::vector<double>* op_seconds,
                                     const std::function<void(size_t)>& at_op) {
  const Model::Impl& m = model_->impl();
  if (inputs.size() != m.inputs.size())
    throw InputError("the model takes " + std::to_string(m.inputs.size()) + " inputs, got " + std::to_string(inputs.size()));
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorInfo& info = m.inputs[i];
    if (inputs[i].dtype != info.dtype)
      throw InputError("input '" + info.name + "': expected dtype " + dtype_name(info.dtype) + ", got " +
                       dtype_name(inputs[i].dtype));
    check_input_shape(info, inputs[i].shape);
    shapes.push_back(inputs[i].shape);
  }
  auto plan = m.plan(shapes);

  if (!arena_) arena_ = std::make_shared<AlignedBuffer>();
  arena_->resize(plan->arena_bytes);
  uint8_t* base = arena_->mutable_data();
  auto address = [&](uint32_t t) -> uint8_t* {
    const TensorDesc& d = m.desc.tensors[t];
    return d.kind == TensorKind::kConstant ? const_cast<uint8_t*>(d.data) : base + plan->offsets[t];
  };
  for (size_t i = 0; i < inputs.size(); ++i)
    std::memcpy(address(m.desc.inputs[i]), inputs[i].data, plan->bytes[m.desc.inputs[i]]);

  ExecContext ctx;
  ctx.pool = m.pool.get();
  for (size_t s = 0; s < m.ops.size(); ++s) {
    if (at_op) at_op(s);
    const OpDesc& od = m.desc.ops[s];
    ctx.inputs.clear();
    ctx.input_shapes.clear();
    ctx.outputs.clear();
    ctx.output_shapes.clear();
    for (uint32_t t : od.inputs) {
      ctx.inputs.push_back(address(t));
      ctx.input_shapes.push_back(&plan->shapes[t]);
    }
    for (uint32_t t : od.outputs) {
      ctx.outputs.push_back(address(t));
      ctx.output_shapes.push_back(&plan->shapes[t]);
    }
    if (op_seconds == nullptr) {
      m.ops[s]->run(ctx);
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    m.ops[s]->run(ctx);
    op_seconds->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (at_op) at_op(m.ops.size());

  std::vector<HostTensor> outputs;
  for (uint32_t t : m.desc.outputs) {
    HostTensor out;
    out.dtype = m.desc.tensors[t].dtype;
    out.shape = plan->shapes[t];
    out.bytes.assign(address(t), address(t) + plan->bytes[t]);
    outputs.push_back(std::move(out));
  }
  return outputs;
}

}  // namespace intinfer
