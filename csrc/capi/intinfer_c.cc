// The C API (intinfer/intinfer.h) over the C++ API. No exception leaves this file: each entry
// point runs its body in guard(), which turns exceptions into a status and a thread-local message.
#include "intinfer/intinfer.h"

#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/format.h"
#include "intinfer/model.h"

using intinfer::DType;
using intinfer::HostTensor;
using intinfer::InputError;
using intinfer::ModelError;
using intinfer::Shape;
using intinfer::TensorInfo;

struct intinfer_options {
  intinfer::Options options;
};

struct intinfer_model {
  std::shared_ptr<intinfer::Model> model;
  // Output shapes with -1 where they follow a dynamic input dimension; empty with
  // outputs_known false when no input size can be planned for.
  std::vector<Shape> output_shapes;
  bool outputs_known = false;
};

struct intinfer_session {
  explicit intinfer_session(std::shared_ptr<const intinfer::Model> m) : model(m), session(std::move(m)) {}
  std::shared_ptr<const intinfer::Model> model;
  intinfer::Session session;
  std::vector<HostTensor> outputs;  // of the last run
  bool have_outputs = false;
};

namespace {

static_assert(INTINFER_FLOAT32 == static_cast<int>(DType::kFloat32) && INTINFER_UINT8 == static_cast<int>(DType::kUInt8) &&
                  INTINFER_INT8 == static_cast<int>(DType::kInt8) && INTINFER_INT32 == static_cast<int>(DType::kInt32),
              "intinfer_dtype must match intinfer::DType");

// A bad argument from the C side: a NULL pointer, an index out of range, an unknown enum value.
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

thread_local std::string t_message;
thread_local const char* t_error = "";

intinfer_status fail(intinfer_status status, const char* what) noexcept {
  try {
    t_message = what;
    t_error = t_message.c_str();
  } catch (...) {
    t_error = "out of memory while reporting an error";
  }
  return status;
}

template <class Body>
intinfer_status guard(Body&& body) noexcept {
  try {
    body();
    return INTINFER_OK;
  } catch (const ArgumentError& e) {
    return fail(INTINFER_ERROR_ARGUMENT, e.what());
  } catch (const ModelError& e) {
    return fail(INTINFER_ERROR_MODEL, e.what());
  } catch (const InputError& e) {
    return fail(INTINFER_ERROR_INPUT, e.what());
  } catch (const std::bad_alloc&) {
    return fail(INTINFER_ERROR_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return fail(INTINFER_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(INTINFER_ERROR_INTERNAL, "unknown error");
  }
}

void require(const void* p, const char* what) {
  if (p == nullptr) throw ArgumentError(std::string(what) + " is NULL");
}

size_t checked_index(int32_t index, size_t count, const char* what) {
  if (index < 0 || static_cast<size_t>(index) >= count)
    throw ArgumentError(std::string(what) + " index " + std::to_string(index) + " is out of range (the model has " +
                        std::to_string(count) + ")");
  return static_cast<size_t>(index);
}

intinfer_model* new_model(std::shared_ptr<intinfer::Model> model) {
  auto handle = std::make_unique<intinfer_model>();
  // As the Python API does: the plans for dynamic sizes 1 and 2 tell which output dimensions move.
  auto at = [&](int64_t size) {
    std::vector<Shape> shapes;
    for (const TensorInfo& t : model->inputs()) {
      Shape s = t.shape;
      for (int64_t& d : s) d = d < 0 ? size : d;
      shapes.push_back(s);
    }
    return model->output_shapes(shapes);
  };
  try {
    const std::vector<Shape> one = at(1), two = at(2);
    for (size_t i = 0; i < one.size(); ++i) {
      Shape s = one[i];
      for (size_t d = 0; d < s.size(); ++d)
        if (d >= two[i].size() || s[d] != two[i][d]) s[d] = -1;
      handle->output_shapes.push_back(s);
    }
    handle->outputs_known = true;
  } catch (const InputError&) {
  } catch (const ModelError&) {
  }
  handle->model = std::move(model);
  return handle.release();
}

void fill_info(const TensorInfo& t, const Shape* shape, intinfer_tensor_info* out) {
  out->name = t.name.c_str();
  out->dtype = static_cast<intinfer_dtype>(t.dtype);
  out->rank = shape ? static_cast<int32_t>(shape->size()) : -1;
  out->dims = shape ? shape->data() : nullptr;
  out->quantized = t.scales.size() == 1 ? 1 : 0;
  out->scale = out->quantized ? t.scales[0] : 0.0f;
  out->zero_point = out->quantized ? t.zero_points[0] : 0;
  out->id_rows = t.id_rows;
}

// The element count of a valid shape; 0 when a dimension is below 1 or the count overflows,
// shapes the C++ API refuses before reading any data.
uint64_t element_count(const Shape& s) {
  uint64_t n = 1;
  for (int64_t d : s) {
    if (d < 1 || n > UINT64_MAX / static_cast<uint64_t>(d)) return 0;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

std::vector<HostTensor> host_inputs(const intinfer::Model& model, const intinfer_tensor* inputs, int32_t count) {
  if (count < 0) throw ArgumentError("input count " + std::to_string(count) + " is negative");
  if (count > 0) require(inputs, "inputs");
  const std::vector<TensorInfo>& infos = model.inputs();
  if (static_cast<size_t>(count) != infos.size())
    throw InputError("the model takes " + std::to_string(infos.size()) + " inputs, got " + std::to_string(count));
  std::vector<HostTensor> out(infos.size());
  for (size_t i = 0; i < infos.size(); ++i) {
    const intinfer_tensor& in = inputs[i];
    auto what = [&] { return "input '" + infos[i].name + "'"; };
    if (in.rank < 0) throw ArgumentError(what() + ": rank " + std::to_string(in.rank) + " is negative");
    if (in.rank > 0 && in.dims == nullptr) throw ArgumentError(what() + ": dims is NULL");
    if (in.data == nullptr) throw ArgumentError(what() + ": data is NULL");
    if (in.dtype < INTINFER_FLOAT32 || in.dtype > INTINFER_INT32)
      throw ArgumentError(what() + ": unknown dtype " + std::to_string(in.dtype));
    out[i].dtype = static_cast<DType>(in.dtype);
    out[i].shape.assign(in.dims, in.dims + in.rank);
    out[i].data = in.data;
    // The C++ API copies as many bytes as the shape takes: a shorter buffer must be refused here.
    const uint64_t n = element_count(out[i].shape);
    if (n != 0 && (n > UINT64_MAX / dtype_size(out[i].dtype) || n * dtype_size(out[i].dtype) != in.byte_size))
      throw InputError(what() + ": shape " + intinfer::shape_str(out[i].shape) + " of " + dtype_name(out[i].dtype) +
                       " takes " + std::to_string(n) + " x " + std::to_string(dtype_size(out[i].dtype)) +
                       " bytes, byte_size is " + std::to_string(in.byte_size));
  }
  return out;
}

}  // namespace

extern "C" {

const char* intinfer_version(void) { return INTINFER_VERSION; }

void intinfer_format_version(int32_t* major, int32_t* minor) {
  if (major) *major = intinfer::kFormatMajor;
  if (minor) *minor = intinfer::kFormatMinor;
}

const char* intinfer_status_name(intinfer_status status) {
  switch (status) {
    case INTINFER_OK: return "OK";
    case INTINFER_ERROR_ARGUMENT: return "ERROR_ARGUMENT";
    case INTINFER_ERROR_MODEL: return "ERROR_MODEL";
    case INTINFER_ERROR_INPUT: return "ERROR_INPUT";
    case INTINFER_ERROR_INTERNAL: return "ERROR_INTERNAL";
  }
  return "UNKNOWN";
}

const char* intinfer_last_error(void) { return t_error; }

intinfer_status intinfer_options_create(intinfer_options** out) {
  return guard([&] {
    require(out, "out");
    *out = new intinfer_options();
  });
}

intinfer_status intinfer_options_set_num_threads(intinfer_options* options, int32_t num_threads) {
  return guard([&] {
    require(options, "options");
    if (num_threads < 0) throw ArgumentError("num_threads must be 0 (one per core) or positive, got " + std::to_string(num_threads));
    if (num_threads > intinfer::max_num_threads())
      throw ArgumentError("num_threads " + std::to_string(num_threads) + " is above the maximum of " +
                          std::to_string(intinfer::max_num_threads()) + " (docs/runtime.md, Threads)");
    options->options.num_threads = num_threads;
  });
}

intinfer_status intinfer_options_set_plan_cache_size(intinfer_options* options, int32_t size) {
  return guard([&] {
    require(options, "options");
    if (size < 0) throw ArgumentError("plan_cache_size must be 0 (no cache) or positive, got " + std::to_string(size));
    options->options.plan_cache_size = static_cast<size_t>(size);
  });
}

namespace {

intinfer_status set_limit(intinfer_options* options, uint64_t intinfer::Limits::*limit, uint64_t value, const char* name) {
  return guard([&] {
    require(options, "options");
    if (value == 0) throw ArgumentError(std::string(name) + " must be positive");
    options->options.limits.*limit = value;
  });
}

}  // namespace

intinfer_status intinfer_options_set_max_tensor_bytes(intinfer_options* options, uint64_t bytes) {
  return set_limit(options, &intinfer::Limits::max_tensor_bytes, bytes, "max_tensor_bytes");
}

intinfer_status intinfer_options_set_max_arena_bytes(intinfer_options* options, uint64_t bytes) {
  return set_limit(options, &intinfer::Limits::max_arena_bytes, bytes, "max_arena_bytes");
}

intinfer_status intinfer_options_set_max_macs(intinfer_options* options, uint64_t macs) {
  return set_limit(options, &intinfer::Limits::max_macs, macs, "max_macs");
}

void intinfer_options_free(intinfer_options* options) { delete options; }

intinfer_status intinfer_model_load_file(const char* path, const intinfer_options* options, intinfer_model** out) {
  return guard([&] {
    require(path, "path");
    require(out, "out");
    *out = new_model(intinfer::Model::load_file(path, options ? options->options : intinfer::Options{}));
  });
}

intinfer_status intinfer_model_load_buffer(const void* data, size_t size, const intinfer_options* options,
                                           intinfer_model** out) {
  return guard([&] {
    require(data, "data");
    require(out, "out");
    *out = new_model(intinfer::Model::load_buffer(data, size, options ? options->options : intinfer::Options{}));
  });
}

void intinfer_model_free(intinfer_model* model) { delete model; }

intinfer_status intinfer_model_num_threads(const intinfer_model* model, int32_t* out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    *out = model->model->num_threads();
  });
}

intinfer_status intinfer_model_input_count(const intinfer_model* model, int32_t* out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    *out = static_cast<int32_t>(model->model->inputs().size());
  });
}

intinfer_status intinfer_model_output_count(const intinfer_model* model, int32_t* out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    *out = static_cast<int32_t>(model->model->outputs().size());
  });
}

intinfer_status intinfer_model_input_info(const intinfer_model* model, int32_t index, intinfer_tensor_info* out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    const TensorInfo& t = model->model->inputs()[checked_index(index, model->model->inputs().size(), "input")];
    fill_info(t, &t.shape, out);
  });
}

intinfer_status intinfer_model_output_info(const intinfer_model* model, int32_t index, intinfer_tensor_info* out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    const size_t i = checked_index(index, model->model->outputs().size(), "output");
    fill_info(model->model->outputs()[i], model->outputs_known ? &model->output_shapes[i] : nullptr, out);
  });
}

intinfer_status intinfer_session_create(const intinfer_model* model, intinfer_session** out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    *out = new intinfer_session(model->model);
  });
}

void intinfer_session_free(intinfer_session* session) { delete session; }

intinfer_status intinfer_session_run(intinfer_session* session, const intinfer_tensor* inputs, int32_t input_count) {
  return guard([&] {
    require(session, "session");
    session->have_outputs = false;
    session->outputs = session->session.run(host_inputs(*session->model, inputs, input_count));
    session->have_outputs = true;
  });
}

intinfer_status intinfer_session_output(const intinfer_session* session, int32_t index, intinfer_tensor* out) {
  return guard([&] {
    require(session, "session");
    require(out, "out");
    if (!session->have_outputs) throw ArgumentError("no outputs: the session has not run, or its last run failed");
    const HostTensor& t = session->outputs[checked_index(index, session->outputs.size(), "output")];
    out->dtype = static_cast<intinfer_dtype>(t.dtype);
    out->rank = static_cast<int32_t>(t.shape.size());
    out->dims = t.shape.data();
    out->data = t.bytes.data();
    out->byte_size = t.bytes.size();
  });
}

}  // extern "C"
