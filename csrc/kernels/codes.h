// Weight codes where a constant holds them: int8 (one per byte), or the packed sub-byte encoding
// of docs/format.md (8 / bits codes a byte, code i of a row in byte i / P at bits (i mod P) x bits,
// low bits first, two's complement). The reference kernels read every width through this, and
// the packer decodes with it: one definition of the encoding in the engine's kernels.
#pragma once

#include <cstddef>
#include <cstdint>

namespace intinfer {

// Bytes of a row of n codes of `bits` (8, 4 or 2).
constexpr size_t code_row_bytes(size_t n, int bits) { return (n * static_cast<size_t>(bits) + 7) / 8; }

template <int kBits>
struct Codes {
  static_assert(kBits == 8 || kBits == 4 || kBits == 2, "codes are int8, int4 or int2");
  static constexpr size_t kPerByte = 8 / kBits;

  // Bytes of a row of n codes.
  static constexpr size_t row_bytes(size_t n) { return code_row_bytes(n, kBits); }

  // Code i of the row at `row`.
  static int32_t at(const void* row, size_t i) {
    const auto* bytes = static_cast<const uint8_t*>(row);
    if constexpr (kBits == 8) {
      return static_cast<int8_t>(bytes[i]);
    } else {
      const unsigned field = (bytes[i / kPerByte] >> ((i % kPerByte) * kBits)) & ((1u << kBits) - 1);
      // Two's complement of kBits bits: the top bit weighs -2^(kBits - 1).
      return static_cast<int32_t>(field) - static_cast<int32_t>((field >> (kBits - 1)) << kBits);
    }
  }
};

// Calls f(Codes<bits>{}) for bits 8, 4 or 2: the one switch from a run-time width to the code.
template <typename F>
decltype(auto) with_codes(int bits, F&& f) {
  if (bits == 4) return f(Codes<4>{});
  if (bits == 2) return f(Codes<2>{});
  return f(Codes<8>{});
}

}  // namespace intinfer
