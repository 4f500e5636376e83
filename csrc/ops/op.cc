#include "op.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace intinfer {

std::string OpContext::where() const {
  return std::string("op '") + op_.name + "' (" + op_type_name(op_.type) + ")";
}

void OpContext::expect_io(size_t min_inputs, size_t max_inputs, size_t outputs) const {
  if (op_.inputs.size() < min_inputs || op_.inputs.size() > max_inputs) {
    if (min_inputs == max_inputs) fail("takes ", min_inputs, " inputs, has ", op_.inputs.size());
    fail("takes ", min_inputs, " to ", max_inputs, " inputs, has ", op_.inputs.size());
  }
  if (op_.outputs.size() != outputs) fail("has ", op_.outputs.size(), " outputs, expected ", outputs);
}

void OpContext::expect_dtype(const TensorDesc& t, DType dtype, const char* role) const {
  if (t.dtype != dtype) fail(role, " '", t.name, "' is ", dtype_name(t.dtype), ", expected ", dtype_name(dtype));
}

int OpContext::expect_weight_codes(const TensorDesc& t, const char* role) const {
  expect_constant(t, role);
  switch (t.dtype) {
    case DType::kInt8: return 8;
    case DType::kInt4: return 4;
    case DType::kInt2: return 2;
    default: fail(role, " '", t.name, "' is ", dtype_name(t.dtype), ", expected int8, or int4 / int2 packed");
  }
}

void OpContext::expect_quantized_u8(const TensorDesc& t, const char* role) const {
  expect_dtype(t, DType::kUInt8, role);
  if (t.scales.size() != 1) fail(role, " '", t.name, "' needs one scale and zero point, has ", t.scales.size());
}

void OpContext::expect_constant(const TensorDesc& t, const char* role) const {
  if (t.kind != TensorKind::kConstant) fail(role, " '", t.name, "' must be a constant");
}

void OpContext::expect_same_quantization(const TensorDesc& a, const TensorDesc& b) const {
  if (a.dtype != b.dtype)
    fail("output '", b.name, "' is ", dtype_name(b.dtype), ", input '", a.name, "' ", dtype_name(a.dtype));
  if (a.scales != b.scales || a.zero_points != b.zero_points)
    fail("output '", b.name, "' must keep the quantization of input '", a.name, "'");
}

namespace {

// The schema's entry for an attribute the op reads: an op reading one its schema does not list
// is a bug of the engine, not of the file.
const AttrSchema& attr_schema(OpType type, const std::string& key) {
  const OpSchema& op = op_schema(type);
  for (size_t i = 0; i < op.num_attrs; ++i)
    if (key == op.attrs[i].name) return op.attrs[i];
  throw std::logic_error(std::string(op.name) + " reads attribute '" + key + "', which its schema lacks");
}

}  // namespace

int64_t OpContext::attr_int(const std::string& key) const {
  auto it = op_.attrs.find(key);
  if (it == op_.attrs.end()) return attr_schema(op_.type, key).ints[0];
  if (it->second.type != Attr::kInt) fail("attribute '", key, "' must be an int");
  return it->second.ints[0];
}

void OpContext::expect_wide(const TensorDesc& t, const char* role) const {
  if (t.dtype != DType::kInt32 || t.scales.size() != 1 || t.zero_points.size() != 1 || t.zero_points[0] != 0 ||
      !(t.scales[0] > 0) || !std::isfinite(t.scales[0]))
    fail(role, " '", t.name, "' must be a wide activation: int32, one positive scale, zero point 0");
}

float OpContext::attr_float(const std::string& key) const {
  auto it = op_.attrs.find(key);
  if (it == op_.attrs.end()) return attr_schema(op_.type, key).real;
  if (it->second.type != Attr::kFloat) fail("attribute '", key, "' must be a float");
  if (!std::isfinite(it->second.floats[0])) fail("attribute '", key, "' is not finite");
  return it->second.floats[0];
}

std::vector<int64_t> OpContext::attr_ints(const std::string& key, size_t n, int64_t lo, int64_t hi) const {
  auto it = op_.attrs.find(key);
  std::vector<int64_t> v;
  if (it != op_.attrs.end()) {
    if (it->second.type != Attr::kInts) fail("attribute '", key, "' must be a list of ints");
    v = it->second.ints;
  } else {
    const AttrSchema& a = attr_schema(op_.type, key);
    if (a.required) fail("needs attribute '", key, "'");
    if (a.default_from != nullptr) return attr_ints(a.default_from, n, lo, hi);
    v.assign(a.ints, a.ints + a.num_ints);
  }
  if (v.size() != n) fail("attribute '", key, "' needs ", n, " values, has ", v.size());
  for (int64_t x : v)
    if (x < lo || x > hi) fail("attribute '", key, "' has value ", x, " outside [", lo, ", ", hi, "]");
  return v;
}

std::vector<int64_t> OpContext::attr_int_list(const std::string& key) const {
  auto it = op_.attrs.find(key);
  if (it == op_.attrs.end() || it->second.type != Attr::kInts) fail("needs a '", key, "' list of ints");
  return it->second.ints;
}

OutputStage OpContext::output_stage() const {
  OutputStage s;
  const int64_t lo = attr_int("act_min"), hi = attr_int("act_max");
  if (lo < 0 || hi > 255 || lo > hi) fail("activation range [", lo, ", ", hi, "] is not within [0, 255]");
  s.act_min = static_cast<int32_t>(lo);
  s.act_max = static_cast<int32_t>(hi);
  s.zero_point = output(0).zero_points.empty() ? 0 : output(0).zero_points[0];
  return s;
}

QuantizedMultiplier OpContext::multiplier(double real, const char* what) const {
  QuantizedMultiplier m;
  if (!quantize_multiplier(real, &m)) fail(what, " multiplier ", real, " is out of range (must be below 2^30)");
  return m;
}

void shape_error(const std::string& op_name, const std::string& message) {
  throw InputError("op '" + op_name + "': " + message);
}

}  // namespace intinfer
