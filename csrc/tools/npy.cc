#include "npy.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace intinfer {
namespace {

const char* descr(DType t) {
  switch (t) {
    case DType::kFloat32: return "<f4";
    case DType::kUInt8: return "|u1";
    case DType::kInt8: return "|i1";
    case DType::kInt32: return "<i4";
    case DType::kInt4:
    case DType::kInt2: break;  // packed constants only, never a host tensor
  }
  return "?";
}

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw std::runtime_error("cannot read '" + path + "' as .npy: " + why);
}

// The value after `'key':` in the header dict, up to the next top-level comma or brace.
std::string field(const std::string& header, const std::string& key, const std::string& path) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) bad(path, "header has no '" + key + "'");
  size_t v = header.find(':', k) + 1;
  while (v < header.size() && header[v] == ' ') ++v;
  size_t end = v;
  if (header[v] == '(') end = header.find(')', v) + 1;
  else while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  return header.substr(v, end - v);
}

}  // namespace

HostTensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, "cannot open it");
  char magic[8];
  if (!f.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) bad(path, "bad magic");
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t n;
    f.read(reinterpret_cast<char*>(&n), 2);
    header_len = n;
  } else {
    f.read(reinterpret_cast<char*>(&header_len), 4);
  }
  if (!f || header_len > (1u << 20)) bad(path, "bad header length");
  std::string header(header_len, '\0');
  if (!f.read(&header[0], header_len)) bad(path, "truncated header");

  HostTensor t;
  const std::string d = field(header, "descr", path);
  bool known = false;
  for (DType c : {DType::kFloat32, DType::kUInt8, DType::kInt8, DType::kInt32})
    if (d == std::string("'") + descr(c) + "'") {
      t.dtype = c;
      known = true;
    }
  if (!known) bad(path, "unsupported dtype " + d + " (float32, uint8, int8 or int32, little-endian)");
  if (field(header, "fortran_order", path) != "False") bad(path, "Fortran-ordered arrays are not supported");
  std::string shape = field(header, "shape", path);
  std::stringstream ss(shape.substr(1, shape.size() - 2));
  std::string dim;
  size_t n = dtype_size(t.dtype);
  while (std::getline(ss, dim, ',')) {
    if (dim.find_first_not_of(' ') == std::string::npos) continue;
    t.shape.push_back(std::stoll(dim));
    n *= static_cast<size_t>(t.shape.back());
  }
  t.bytes.resize(n);
  if (!f.read(reinterpret_cast<char*>(t.bytes.data()), static_cast<std::streamsize>(n))) bad(path, "truncated data");
  t.data = t.bytes.data();
  return t;
}

void write_npy(const std::string& path, const HostTensor& t) {
  std::string shape = "(";
  for (size_t i = 0; i < t.shape.size(); ++i) shape += std::to_string(t.shape[i]) + (t.shape.size() == 1 ? "," : i + 1 < t.shape.size() ? ", " : "");
  shape += ")";
  std::string header = "{'descr': '" + std::string(descr(t.dtype)) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad so that the data starts on a 64-byte boundary, as numpy does.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot write '" + path + "'");
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(&len), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
  if (!f) throw std::runtime_error("cannot write '" + path + "'");
}

}  // namespace intinfer
