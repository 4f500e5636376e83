#include "format.h"

#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

namespace intinfer {
namespace {

constexpr char kMagic[4] = {'I', 'I', 'N', 'F'};
constexpr size_t kHeaderSize = 48;
constexpr size_t kMaxRank = 8;
constexpr size_t kMaxString = 1 << 16;

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  os << "invalid model file: ";
  (os << ... << args);
  throw ModelError(os.str());
}

// Names end up in Python strings and error messages, so they must decode.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF do not decode in Python either.
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// Bounds-checked little-endian cursor over the descriptor.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}

  size_t remaining() const { return n_ - pos_; }

  template <typename T>
  T get(const char* what) {
    if (remaining() < sizeof(T)) fail("truncated while reading ", what, " at descriptor byte ", pos_);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string str(const char* what) {
    uint32_t len = get<uint32_t>(what);
    if (len > kMaxString || len > remaining()) fail(what, " has length ", len, " past the descriptor's end");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    if (!valid_utf8(s)) fail(what, " at descriptor byte ", pos_, " is not valid UTF-8");
    pos_ += len;
    return s;
  }

  // A count of items that each take at least `min_item_bytes` bytes: bounded by what is left,
  // so a hostile count cannot make us allocate gigabytes.
  uint32_t count(const char* what, size_t min_item_bytes) {
    uint32_t c = get<uint32_t>(what);
    if (static_cast<uint64_t>(c) * min_item_bytes > remaining())
      fail(what, " is ", c, ", more than the descriptor can hold");
    return c;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

bool valid_dtype(uint8_t d) { return d >= 1 && d <= kMaxDType; }

uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The constant viewed as rows of its last axis: packing and sparsity both work along it.
struct Rows {
  uint64_t count, length;
};

Rows rows_of(const TensorDesc& t) {
  const auto length = static_cast<uint64_t>(t.shape.back());
  return {static_cast<uint64_t>(t.numel()) / length, length};
}

// Packed sub-byte data (docs/format.md): each row in ceil(length * bits / 8) bytes, element k at
// bit (k % per_byte) * bits of byte k / per_byte, two's complement; the bits after a row's last
// element are zero so that one tensor has one encoding.
void check_packed(const TensorDesc& t, const std::string& where) {
  const DTypeSchema& d = dtype_schema(t.dtype);
  const Rows rows = rows_of(t);
  const uint64_t per_byte = 8 / d.bits, row_bytes = (rows.length + per_byte - 1) / per_byte;
  const unsigned mask = (1u << d.bits) - 1;
  for (uint64_t r = 0; r < rows.count; ++r) {
    const uint8_t* row = t.data + r * row_bytes;
    for (uint64_t k = 0; k < row_bytes * per_byte; ++k) {
      const unsigned code = (row[k / per_byte] >> ((k % per_byte) * d.bits)) & mask;
      if (k >= rows.length) {
        if (code != 0) fail(where, " has non-zero padding bits after row ", r);
        continue;
      }
      const int32_t v = static_cast<int32_t>(code) - (code >> (d.bits - 1) ? (1 << d.bits) : 0);
      if (v < d.value_min || v > d.value_max)
        fail(where, " holds ", v, " at row ", r, " element ", k, ", outside [", d.value_min, ", ", d.value_max,
             "] for ", d.name);
    }
  }
}

// Block-sparse data (docs/format.md): u32 block size B, u32 block count n, the index, then n
// blocks of B elements. The index is u32 row_start[rows + 1] and u32 block_column[n]
// (block_sparse), or ceil(K / B / 8) bitmap bytes a row (block_bitmap). Returns the byte count
// this layout needs, after checking that the fixed part is there; the caller compares it with
// the data size.
uint64_t block_sparse_bytes(const TensorDesc& t, uint64_t bytes, const std::string& where) {
  const Rows rows = rows_of(t);
  if (bytes < 8) fail(where, " holds ", bytes, " bytes, less than the 8-byte block-sparse header");
  const uint32_t block = u32_at(t.data), blocks = u32_at(t.data + 4);
  if (block == 0 || rows.length % block != 0)
    fail(where, " has block size ", block, ", which does not divide its last dimension ", rows.length);
  const uint64_t positions = rows.length / block;
  if (blocks > rows.count * positions)
    fail(where, " has ", blocks, " blocks, more than its ", rows.count * positions, " block positions");
  const uint64_t index = t.encoding == Encoding::kBlockBitmap ? rows.count * ((positions + 7) / 8)
                                                              : 4 * (rows.count + 1) + 4 * uint64_t{blocks};
  return 8 + index + uint64_t{blocks} * block * (dtype_schema(t.dtype).bits / 8);
}

// The stored blocks' elements, within the dtype's value range.
void check_block_values(const TensorDesc& t, const uint8_t* values, uint64_t count, uint32_t block,
                        const std::string& where) {
  const DTypeSchema& d = dtype_schema(t.dtype);
  for (uint64_t i = 0; i < count; ++i) {
    const int32_t v = d.value_min < 0 ? static_cast<int8_t>(values[i]) : values[i];
    if (v < d.value_min || v > d.value_max)
      fail(where, " holds ", v, " in block ", i / block, ", outside [", d.value_min, ", ", d.value_max, "]");
  }
}

void check_block_sparse(const TensorDesc& t, const std::string& where) {
  const Rows rows = rows_of(t);
  const uint32_t block = u32_at(t.data), blocks = u32_at(t.data + 4);
  const uint8_t* row_start = t.data + 8;
  const uint8_t* column = row_start + 4 * (rows.count + 1);
  if (u32_at(row_start) != 0) fail(where, " has row_start[0] = ", u32_at(row_start), ", expected 0");
  for (uint64_t r = 0; r < rows.count; ++r) {
    const uint32_t begin = u32_at(row_start + 4 * r), end = u32_at(row_start + 4 * (r + 1));
    if (end < begin || end > blocks)
      fail(where, " has row_start[", r + 1, "] = ", end, " (row_start[", r, "] = ", begin, ", ", blocks, " blocks)");
    for (uint32_t b = begin; b < end; ++b) {
      const uint32_t c = u32_at(column + 4 * uint64_t{b});
      if (c >= rows.length / block || (b > begin && c <= u32_at(column + 4 * (uint64_t{b} - 1))))
        fail(where, " has block column ", c, " for block ", b, " of row ", r, " (columns rise within a row, below ",
             rows.length / block, ")");
    }
  }
  if (u32_at(row_start + 4 * rows.count) != blocks)
    fail(where, " has row_start[", rows.count, "] = ", u32_at(row_start + 4 * rows.count), ", expected its ", blocks,
         " blocks");
  check_block_values(t, column + 4 * uint64_t{blocks}, uint64_t{blocks} * block, block, where);
}

// A bitmap row's bits past its last block position are zero (one tensor, one encoding), and the
// bits set are the header's block count.
void check_block_bitmap(const TensorDesc& t, const std::string& where) {
  const Rows rows = rows_of(t);
  const uint32_t block = u32_at(t.data), blocks = u32_at(t.data + 4);
  const uint64_t positions = rows.length / block, row_bytes = (positions + 7) / 8;
  const uint8_t* map = t.data + 8;
  uint64_t set = 0;
  for (uint64_t r = 0; r < rows.count; ++r) {
    for (uint64_t j = 0; j < row_bytes * 8; ++j) {
      if (!((map[r * row_bytes + j / 8] >> (j % 8)) & 1)) continue;
      if (j >= positions) fail(where, " has bitmap bit ", j, " set in row ", r, ", past its ", positions, " blocks");
      ++set;
    }
  }
  if (set != blocks) fail(where, " has ", set, " bitmap bits set, expected its ", blocks, " blocks");
  check_block_values(t, map + rows.count * row_bytes, uint64_t{blocks} * block, block, where);
}

// `features`: the header's required features; each one a tensor uses is added to `used`.
TensorDesc read_tensor(Reader& r, size_t index, const uint8_t* data_section, uint64_t data_size, uint32_t features,
                       uint32_t* used) {
  TensorDesc t;
  t.name = r.str("tensor name");
  auto where = [&] { return "tensor " + std::to_string(index) + " ('" + t.name + "')"; };
  uint8_t dtype = r.get<uint8_t>("tensor dtype");
  if (!valid_dtype(dtype)) fail(where(), " has unknown dtype code ", int(dtype));
  t.dtype = static_cast<DType>(dtype);
  uint8_t kind = r.get<uint8_t>("tensor kind");
  if (kind > 2) fail(where(), " has unknown kind ", int(kind));
  t.kind = static_cast<TensorKind>(kind);
  uint8_t rank = r.get<uint8_t>("tensor rank");
  if (rank > kMaxRank) fail(where(), " has rank ", int(rank), " (at most ", kMaxRank, ")");
  uint8_t encoding = r.get<uint8_t>("tensor encoding");
  if (encoding > kMaxEncoding) fail(where(), " has unknown encoding ", int(encoding));
  t.encoding = static_cast<Encoding>(encoding);
  const DTypeSchema& dts = dtype_schema(t.dtype);
  const EncodingSchema& enc = encoding_schema(t.encoding);
  if (t.kind != TensorKind::kConstant && (t.encoding != Encoding::kDense || dts.bits < 8))
    fail(where(), " is ", dts.name, " in the ", enc.name,
         " encoding: only constants may be packed, sparse or below 8 bits");
  if (!(dts.encodings & (1u << encoding)))
    fail(where(), ": ", dts.name, " constants may not use the ", enc.name, " encoding");
  if (enc.feature != 0) {
    if (!(features & enc.feature)) {
      const char* feature = "?";
      for (const FeatureSchema& f : kFeatures)
        if (f.bit == enc.feature) feature = f.name;
      fail(where(), " uses the ", enc.name, " encoding, but the header does not declare feature '", feature, "'");
    }
    *used |= enc.feature;
  }
  if (t.kind == TensorKind::kActivation && rank != 0) fail(where(), ": activations carry no shape");
  if (t.kind != TensorKind::kActivation && rank == 0) fail(where(), " has no shape");
  for (uint8_t i = 0; i < rank; ++i) {
    int32_t d = r.get<int32_t>("tensor dims");
    bool dynamic_ok = t.kind == TensorKind::kInput && d == -1;
    if (d < 1 && !dynamic_ok) fail(where(), " has dimension ", int(i), " = ", d);
    t.shape.push_back(d);
  }
  uint32_t qcount = r.count("quantization parameter count", 8);
  t.axis = r.get<int32_t>("quantization axis");
  for (uint32_t i = 0; i < qcount; ++i) t.scales.push_back(r.get<float>("scale"));
  for (uint32_t i = 0; i < qcount; ++i) t.zero_points.push_back(r.get<int32_t>("zero point"));
  if (qcount > 1) {
    if (t.kind != TensorKind::kConstant) fail(where(), ": only constants may have per-channel parameters");
    if (t.axis < 0 || t.axis >= rank) fail(where(), " has quantization axis ", t.axis, " for rank ", int(rank));
    if (t.shape[t.axis] != qcount)
      fail(where(), " has ", qcount, " scales for ", t.shape[t.axis], " channels on axis ", t.axis);
  }
  const int64_t zlo = dts.zero_point_min, zhi = dts.zero_point_max;
  for (uint32_t i = 0; i < qcount; ++i) {
    if (!(std::isfinite(t.scales[i]) && t.scales[i] > 0)) fail(where(), " has scale ", t.scales[i]);
    if (t.zero_points[i] < zlo || t.zero_points[i] > zhi)
      fail(where(), " has zero point ", t.zero_points[i], " outside [", zlo, ", ", zhi, "] for ", dtype_name(t.dtype));
  }
  if (t.dtype == DType::kFloat32 && qcount != 0) fail(where(), ": float32 tensors carry no quantization");
  if (t.dtype == DType::kUInt8 && t.kind != TensorKind::kConstant && qcount != 1)
    fail(where(), ": uint8 activations need one scale and zero point");

  uint64_t off = r.get<uint64_t>("data offset");
  uint64_t bytes = r.get<uint64_t>("data size");
  if (t.kind == TensorKind::kConstant) {
    int64_t n = t.numel();
    if (n < 0) fail(where(), " has too many elements");
    if (off % kDataAlignment != 0) fail(where(), " data offset ", off, " is not ", kDataAlignment, "-byte aligned");
    if (off > data_size || bytes > data_size - off)
      fail(where(), " data [", off, ", ", off + bytes, ") is outside the data section (", data_size, " bytes)");
    t.data = data_section + off;
    t.data_bytes = bytes;
    uint64_t expected = 0;
    switch (t.encoding) {
      case Encoding::kDense: expected = static_cast<uint64_t>(n) * dtype_size(t.dtype); break;
      case Encoding::kPacked: {
        const Rows rows = rows_of(t);
        const uint64_t per_byte = 8 / dts.bits;
        expected = rows.count * ((rows.length + per_byte - 1) / per_byte);
        break;
      }
      case Encoding::kBlockSparse:
      case Encoding::kBlockBitmap: expected = block_sparse_bytes(t, bytes, where()); break;
    }
    if (bytes != expected)
      fail(where(), " holds ", bytes, " bytes, its shape ", shape_str(t.shape), " as ", dts.name, " in the ", enc.name,
           " encoding needs ", expected);
    if (t.encoding == Encoding::kPacked) check_packed(t, where());
    if (t.encoding == Encoding::kBlockSparse) check_block_sparse(t, where());
    if (t.encoding == Encoding::kBlockBitmap) check_block_bitmap(t, where());
  } else if (off != 0 || bytes != 0) {
    fail(where(), " is not a constant but has data");
  }
  return t;
}

Attr read_attr(Reader& r, const std::string& where, const std::string& key, const OpSchema& schema) {
  Attr a;
  uint8_t type = r.get<uint8_t>("attribute type");
  const AttrSchema* spec = nullptr;
  for (size_t i = 0; i < schema.num_attrs; ++i)
    if (key == schema.attrs[i].name) spec = &schema.attrs[i];
  if (spec == nullptr) {
    std::string known;
    for (size_t i = 0; i < schema.num_attrs; ++i) known += (i ? ", " : "") + std::string(schema.attrs[i].name);
    fail(where, " has attribute '", key, "', which ", schema.name, " does not take (",
         known.empty() ? std::string("it takes none") : "it takes " + known, ")");
  }
  if (type != spec->type && attr_type_name(type) != nullptr)
    fail(where, " attribute '", key, "' must be ", attr_type_phrase(spec->type), ", not ", attr_type_phrase(type));
  switch (type) {
    case Attr::kInt: a.ints.push_back(r.get<int64_t>("int attribute")); break;
    case Attr::kFloat: a.floats.push_back(r.get<float>("float attribute")); break;
    case Attr::kInts: {
      uint32_t n = r.count("attribute length", 8);
      for (uint32_t i = 0; i < n; ++i) a.ints.push_back(r.get<int64_t>("ints attribute"));
      break;
    }
    case Attr::kFloats: {
      uint32_t n = r.count("attribute length", 4);
      for (uint32_t i = 0; i < n; ++i) a.floats.push_back(r.get<float>("floats attribute"));
      break;
    }
    default: fail(where, " has an attribute of unknown type ", int(type));
  }
  a.type = static_cast<Attr::Type>(type);
  return a;
}

std::vector<uint32_t> read_indices(Reader& r, const char* what, size_t num_tensors) {
  uint32_t n = r.count(what, 4);
  std::vector<uint32_t> v(n);
  for (auto& i : v) {
    i = r.get<uint32_t>(what);
    if (i >= num_tensors) fail(what, " refers to tensor ", i, " of ", num_tensors);
  }
  return v;
}

}  // namespace

int64_t TensorDesc::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0 || n > (int64_t{1} << 40) / d) return -1;
    n *= d;
  }
  return n;
}

ModelDesc parse_model(const uint8_t* data, size_t size) {
  if (size < kHeaderSize) fail("file is ", size, " bytes, shorter than the ", kHeaderSize, "-byte header");
  if (std::memcmp(data, kMagic, 4) != 0) fail("bad magic (not an .iif file)");
  Reader h(data + 4, kHeaderSize - 4);
  uint16_t major = h.get<uint16_t>("version"), minor = h.get<uint16_t>("version");
  // A newer minor version only adds what a reader may skip; what it must understand is a
  // required feature below.
  if (major != kFormatMajor) {
    std::ostringstream os;
    os << "model file format version " << major << "." << minor << " is not supported by this reader (version "
       << kFormatMajor << "." << kFormatMinor << ")"
       << (major > kFormatMajor ? ": the file is newer, upgrade intinfer" : "");
    throw ModelError(os.str());
  }
  uint32_t header_size = h.get<uint32_t>("header size"), features = h.get<uint32_t>("required features");
  uint64_t desc_off = h.get<uint64_t>("descriptor offset"), desc_size = h.get<uint64_t>("descriptor size");
  uint64_t data_off = h.get<uint64_t>("data offset"), data_size = h.get<uint64_t>("data size");
  if (header_size != kHeaderSize) fail("header size ", header_size, " (expected ", kHeaderSize, ")");
  if (features & ~kKnownFeatures) {
    int bit = 0;
    while (!((features & ~kKnownFeatures) >> bit & 1)) ++bit;
    std::string known;
    for (const FeatureSchema& f : kFeatures) known += (known.empty() ? "" : ", ") + std::string(f.name);
    fail("the file needs feature bit ", bit, ", which this reader (format ", kFormatMajor, ".", kFormatMinor,
         ") does not know (it reads ", known, "): the file is newer, upgrade intinfer");
  }
  if (desc_off != kHeaderSize) fail("descriptor offset ", desc_off, " (expected ", kHeaderSize, ")");
  if (desc_size > size - desc_off || data_off < desc_off + desc_size)
    fail("descriptor [", desc_off, ", +", desc_size, ") overlaps the data or runs past the file (", size, " bytes)");
  if (data_off % kDataAlignment != 0) fail("data offset ", data_off, " is not ", kDataAlignment, "-byte aligned");
  if (data_off > size || data_size != size - data_off)
    fail("data section [", data_off, ", +", data_size, ") does not end at the end of the file (", size,
         " bytes): truncated or padded");

  ModelDesc m;
  Reader r(data + desc_off, desc_size);
  uint32_t n_meta = r.count("metadata count", 8);
  for (uint32_t i = 0; i < n_meta; ++i) {
    std::string k = r.str("metadata key");
    m.metadata.emplace_back(k, r.str("metadata value"));
  }

  uint32_t n_tensors = r.count("tensor count", 32);
  std::set<std::string> names;
  uint32_t used_features = 0;
  for (uint32_t i = 0; i < n_tensors; ++i) {
    m.tensors.push_back(read_tensor(r, i, data + data_off, data_size, features, &used_features));
    if (!names.insert(m.tensors.back().name).second) fail("tensor name '", m.tensors.back().name, "' is used twice");
  }

  // A declared feature is one an older reader refuses the file for: declaring one that nothing
  // uses would refuse a file that reader could read.
  for (const FeatureSchema& f : kFeatures)
    if ((features & f.bit) && !(used_features & f.bit))
      fail("the header declares feature '", f.name, "', which no tensor uses");

  m.inputs = read_indices(r, "graph input", n_tensors);
  m.outputs = read_indices(r, "graph output", n_tensors);

  // Where each tensor becomes available: constants and inputs from the start, activations
  // when their producer has run; this also checks that the op list is topologically ordered.
  std::vector<char> defined(n_tensors, 0);
  for (uint32_t i = 0; i < n_tensors; ++i) defined[i] = m.tensors[i].kind == TensorKind::kConstant;
  for (uint32_t idx : m.inputs) {
    if (m.tensors[idx].kind != TensorKind::kInput) fail("graph input ", idx, " ('", m.tensors[idx].name, "') is not an input tensor");
    if (defined[idx]) fail("graph input '", m.tensors[idx].name, "' is listed twice");
    defined[idx] = 1;
  }
  for (uint32_t i = 0; i < n_tensors; ++i)
    if (m.tensors[i].kind == TensorKind::kInput && !defined[i]) fail("input tensor '", m.tensors[i].name, "' is not a graph input");

  uint32_t n_ops = r.count("op count", 20);
  for (uint32_t i = 0; i < n_ops; ++i) {
    OpDesc op;
    uint16_t type = r.get<uint16_t>("op type");
    if (type == 0 || type > kMaxOpType) fail("op ", i, " has unknown type ", type, " (this reader knows 1..", kMaxOpType, ")");
    op.type = static_cast<OpType>(type);
    if (r.get<uint16_t>("op reserved") != 0) fail("op ", i, " has non-zero reserved bits");
    op.name = r.str("op name");
    std::string where = std::string("op ") + std::to_string(i) + " ('" + op.name + "', " + op_type_name(op.type) + ")";
    op.inputs = read_indices(r, "op input", n_tensors);
    op.outputs = read_indices(r, "op output", n_tensors);
    for (uint32_t idx : op.inputs)
      if (!defined[idx]) fail(where, " reads tensor '", m.tensors[idx].name, "' before any op writes it");
    for (uint32_t idx : op.outputs) {
      if (m.tensors[idx].kind != TensorKind::kActivation) fail(where, " writes '", m.tensors[idx].name, "', which is not an activation");
      if (defined[idx]) fail(where, " writes '", m.tensors[idx].name, "', which another op already wrote");
      defined[idx] = 1;
    }
    uint32_t n_attrs = r.count("attribute count", 5);
    for (uint32_t a = 0; a < n_attrs; ++a) {
      std::string key = r.str("attribute name");
      Attr attr = read_attr(r, where, key, op_schema(op.type));
      if (!op.attrs.emplace(key, std::move(attr)).second) fail(where, " has attribute '", key, "' twice");
    }
    m.ops.push_back(std::move(op));
  }
  if (r.remaining() != 0) fail(r.remaining(), " unread bytes at the end of the descriptor");

  for (uint32_t i = 0; i < n_tensors; ++i)
    if (!defined[i]) fail("tensor '", m.tensors[i].name, "' is never written by any op");
  std::set<uint32_t> seen;
  for (uint32_t idx : m.outputs) {
    if (m.tensors[idx].kind == TensorKind::kConstant) fail("graph output '", m.tensors[idx].name, "' is a constant");
    if (!seen.insert(idx).second) fail("graph output '", m.tensors[idx].name, "' is listed twice");
  }
  if (m.outputs.empty()) fail("the graph has no outputs");
  return m;
}

}  // namespace intinfer
