// pybind11 bindings: a thin layer over the C++ API; the Python-facing logic is in intinfer/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <tuple>

#include "../core/cpu.h"
#include "../kernels/ref/kernels.h"
#include "../kernels/tables.h"
#include "intinfer/model.h"

namespace py = pybind11;
using namespace intinfer;

namespace {

DType dtype_of(const py::array& a) {
  if (a.dtype().is(py::dtype::of<float>())) return DType::kFloat32;
  if (a.dtype().is(py::dtype::of<uint8_t>())) return DType::kUInt8;
  if (a.dtype().is(py::dtype::of<int8_t>())) return DType::kInt8;
  if (a.dtype().is(py::dtype::of<int32_t>())) return DType::kInt32;
  throw InputError("unsupported array dtype " + std::string(py::str(a.dtype())));
}

py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::kFloat32: return py::dtype::of<float>();
    case DType::kUInt8: return py::dtype::of<uint8_t>();
    case DType::kInt8: return py::dtype::of<int8_t>();
    case DType::kInt32: return py::dtype::of<int32_t>();
    case DType::kInt4:
    case DType::kInt2:
      break;  // packed constants only: the reader refuses them as inputs and outputs
  }
  throw std::logic_error("bad dtype");
}

py::dict tensor_info(const TensorInfo& t) {
  py::dict d;
  d["name"] = t.name;
  d["dtype"] = dtype_name(t.dtype);
  d["shape"] = t.shape;
  d["scales"] = t.scales;
  d["zero_points"] = t.zero_points;
  d["id_rows"] = t.id_rows;
  return d;
}

py::list tensor_infos(const std::vector<TensorInfo>& v) {
  py::list out;
  for (const auto& t : v) out.append(tensor_info(t));
  return out;
}

using ContiguousU8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using ContiguousF32 = py::array_t<float, py::array::c_style | py::array::forcecast>;

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "intinfer native core";
  static py::exception<ModelError> model_error(m, "ModelError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ModelError& e) {
      py::set_error(model_error, e.what());
    } catch (const InputError& e) {
      py::set_error(PyExc_ValueError, e.what());
    }
  });

  m.def("max_num_threads", &max_num_threads,
        "The most threads a model may be loaded with: 4 x the CPUs this process may run on.");
  m.def("available_paths", &available_paths,
        "The kernel paths (INTINFER_ISA names) this build can run on this CPU, reference first.");
  m.def(
      "sparse_crossover",
      [](const std::string& name) {
        for (const Path& p : supported_paths())
          if (name == p.name) {
            const SparseCrossover x = select(gemm_table(), p.features, kWeightsS8, 64).sparse_crossover;
            return std::make_tuple(x.one_row, x.shallow, x.deep);
          }
        throw py::value_error("'" + name + "' is not a kernel path of this CPU");
      },
      "(one row, several rows with K < 96, from 96): the densest block-sparse weights that path runs on its "
      "block-sparse kernel; denser ones are densified at load (docs/pruning.md).");

  py::class_<Options>(m, "Options")
      .def(py::init<>())
      .def_readwrite("num_threads", &Options::num_threads)
      .def_readwrite("plan_cache_size", &Options::plan_cache_size)
      .def_property("max_tensor_bytes", [](const Options& o) { return o.limits.max_tensor_bytes; },
                    [](Options& o, uint64_t v) { o.limits.max_tensor_bytes = v; })
      .def_property("max_arena_bytes", [](const Options& o) { return o.limits.max_arena_bytes; },
                    [](Options& o, uint64_t v) { o.limits.max_arena_bytes = v; })
      .def_property("max_macs", [](const Options& o) { return o.limits.max_macs; },
                    [](Options& o, uint64_t v) { o.limits.max_macs = v; });

  py::class_<Model, std::shared_ptr<Model>>(m, "Model")
      .def_static("load_file", [](const std::string& path, const Options& options) {
        return Model::load_file(path, options);
      }, py::arg("path"), py::arg("options"))
      .def_static("load_buffer", [](const py::bytes& data, const Options& options) {
        std::string_view v(data);
        return Model::load_buffer(v.data(), v.size(), options);
      }, py::arg("data"), py::arg("options"))
      .def_property_readonly("inputs", [](const Model& self) { return tensor_infos(self.inputs()); })
      .def_property_readonly("outputs", [](const Model& self) { return tensor_infos(self.outputs()); })
      .def_property_readonly("num_threads", &Model::num_threads)
      .def_property_readonly("isa", &Model::isa)
      .def_property_readonly("plan_cache_size", &Model::plan_cache_size)
      .def_property_readonly("cached_plans", &Model::cached_plans)
      .def_property_readonly("limits", [](const Model& self) {
        py::dict d;
        d["max_tensor_bytes"] = self.limits().max_tensor_bytes;
        d["max_arena_bytes"] = self.limits().max_arena_bytes;
        d["max_macs"] = self.limits().max_macs;
        return d;
      })
      .def("ops", [](const Model& self) {
        py::list out;
        for (const OpInfo& op : self.ops())
          out.append(py::make_tuple(op.type, op.name, op.weight_bytes, op.parameters, op.stored_bytes));
        return out;
      })
      .def("metadata", &Model::metadata)
      .def("memory", [](const Model& self, const std::vector<Shape>& shapes) {
        MemoryInfo mi = self.memory(shapes);
        return py::make_tuple(mi.arena_bytes, mi.naive_bytes, mi.weight_bytes, mi.kernel_weight_bytes);
      }, py::arg("shapes") = std::vector<Shape>{})
      .def("output_shapes", &Model::output_shapes, py::arg("shapes") = std::vector<Shape>{})
      .def("op_costs", [](const Model& self, const std::vector<Shape>& shapes) {
        py::list out;
        for (const OpCost& c : self.op_costs(shapes)) out.append(py::make_tuple(c.macs, c.output_elements));
        return out;
      }, py::arg("shapes") = std::vector<Shape>{});

  py::class_<Session>(m, "Session")
      .def(py::init<std::shared_ptr<const Model>>())
      .def("run", [](Session& self, const std::vector<py::array>& arrays, bool profile) {
        std::vector<HostTensor> inputs;
        for (const py::array& a : arrays) {
          if (!(a.flags() & py::array::c_style)) throw InputError("input arrays must be C-contiguous");
          HostTensor t;
          t.dtype = dtype_of(a);
          t.shape.assign(a.shape(), a.shape() + a.ndim());
          t.data = a.data();
          inputs.push_back(std::move(t));
        }
        std::vector<HostTensor> outputs;
        std::vector<double> seconds;
        {
          py::gil_scoped_release release;
          outputs = self.run(inputs, profile ? &seconds : nullptr);
        }
        py::list result;
        for (const HostTensor& t : outputs) {
          py::array a(numpy_dtype(t.dtype), std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()));
          std::memcpy(a.mutable_data(), t.bytes.data(), t.bytes.size());
          result.append(a);
        }
        return py::make_tuple(result, seconds);
      }, py::arg("inputs"), py::arg("profile") = false);

  m.def("quantize", [](const ContiguousF32& x, float scale, int32_t zero_point) {
    ContiguousU8 y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    quantize_f32_u8__ref(x.data(), y.mutable_data(), static_cast<size_t>(x.size()), scale, zero_point);
    return y;
  }, "float32 -> uint8 with intinfer's QUANTIZE arithmetic");
  m.def("dequantize", [](const ContiguousU8& x, float scale, int32_t zero_point) {
    ContiguousF32 y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    dequantize_u8_f32__ref(x.data(), y.mutable_data(), static_cast<size_t>(x.size()), scale, zero_point);
    return y;
  }, "uint8 -> float32 with intinfer's DEQUANTIZE arithmetic");
}
