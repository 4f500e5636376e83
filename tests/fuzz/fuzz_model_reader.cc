// libFuzzer target: any byte string must load cleanly or be refused with ModelError, and a
// model that loads must run (or refuse its input) without touching memory it does not own.
// Built with ASan + UBSan by tests/test_fuzz.py (CMake option INTINFER_FUZZ).
#include <cstdint>
#include <vector>

#include "intinfer/model.h"

using namespace intinfer;

namespace {

// Bounds on the work of one input, so that a valid but huge graph is not mistaken for a hang.
constexpr size_t kMaxActivationBytes = size_t{1} << 22;
constexpr uint64_t kMaxMacs = uint64_t{1} << 24;

void try_run(const std::shared_ptr<Model>& model) {
  std::vector<Shape> shapes;
  for (const TensorInfo& t : model->inputs()) {
    Shape s = t.shape;
    for (int64_t& d : s) d = d < 0 ? 1 : d;
    shapes.push_back(s);
  }
  if (model->memory(shapes).naive_bytes > kMaxActivationBytes) return;
  uint64_t macs = 0;
  for (const intinfer::OpCost& c : model->op_costs(shapes)) macs += c.macs;
  if (macs > kMaxMacs) return;
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<HostTensor> inputs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    size_t n = dtype_size(model->inputs()[i].dtype);
    for (int64_t d : shapes[i]) n *= static_cast<size_t>(d);
    buffers.emplace_back(n, 0x5a);
    HostTensor t;
    t.dtype = model->inputs()[i].dtype;
    t.shape = shapes[i];
    t.data = buffers.back().data();
    inputs.push_back(std::move(t));
  }
  Session(model).run(inputs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    Options options;
    options.num_threads = 1;
    auto model = Model::load_buffer(data, size, options);
    try_run(model);
  } catch (const ModelError&) {
  } catch (const InputError&) {
  }
  return 0;
}
