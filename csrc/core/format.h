// The .iif file format (docs/format.md): parsing and validation of the descriptor.
// Everything read from the file is checked before use; problems raise ModelError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "intinfer/model.h"
#include "schema.gen.h"

namespace intinfer {

constexpr uint16_t kFormatMajor = 1;
constexpr uint16_t kFormatMinor = 1;
constexpr size_t kDataAlignment = 64;

enum class TensorKind : uint8_t { kActivation = 0, kConstant = 1, kInput = 2 };

struct TensorDesc {
  std::string name;
  DType dtype;
  TensorKind kind;
  Encoding encoding = Encoding::kDense;  // only constants use another
  Shape shape;  // constants: exact; inputs: -1 for a dynamic dim; activations: empty (inferred)
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
  int32_t axis = 0;
  const uint8_t* data = nullptr;  // constants: in the mapped file, 64-byte aligned
  size_t data_bytes = 0;

  bool quantized() const { return !scales.empty(); }
  int64_t numel() const;  // constants only
};

struct Attr {
  enum Type : uint8_t { kInt = kAttrInt, kFloat = kAttrFloat, kInts = kAttrInts, kFloats = kAttrFloats } type;
  std::vector<int64_t> ints;
  std::vector<float> floats;
};

struct OpDesc {
  OpType type;
  std::string name;
  std::vector<uint32_t> inputs;
  std::vector<uint32_t> outputs;
  std::map<std::string, Attr> attrs;
};

struct ModelDesc {
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<TensorDesc> tensors;
  std::vector<uint32_t> inputs;
  std::vector<uint32_t> outputs;
  std::vector<OpDesc> ops;
};

// Parses and validates a whole file image. `data` must stay alive (and, for weights used in
// place, 64-byte aligned) as long as the result is used.
ModelDesc parse_model(const uint8_t* data, size_t size);

}  // namespace intinfer
