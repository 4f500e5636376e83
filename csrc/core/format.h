// The .iif file format (docs/format.md): parsing and validation of the descriptor.
// Everything read from the file is checked before use; problems raise ModelError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "intinfer/model.h"

namespace intinfer {

constexpr uint16_t kFormatMajor = 1;
constexpr uint16_t kFormatMinor = 0;
constexpr size_t kDataAlignment = 64;

enum class TensorKind : uint8_t { kActivation = 0, kConstant = 1, kInput = 2 };

enum class OpType : uint16_t {
  kQuantize = 1,
  kDequantize = 2,
  kConv2D = 3,
  kFullyConnected = 4,
  kAdd = 5,
  kConcat = 6,
  kAvgPool = 7,
  kMaxPool = 8,
  kGlobalAvgPool = 9,
  kReshape = 10,
  kLut = 11,
  kClamp = 12,
  kMul = 13,
  kTranspose = 14,
  kGather = 15,
  kLayerNorm = 16,
  kSoftmax = 17,
  kMatMul = 18,
  kMaskedMean = 19,
};
constexpr uint16_t kMaxOpType = 19;
const char* op_type_name(OpType t);

struct TensorDesc {
  std::string name;
  DType dtype;
  TensorKind kind;
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
  enum Type : uint8_t { kInt = 1, kFloat = 2, kInts = 3, kFloats = 4 } type;
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
