// CPU features as a set of bits, reference = no bits (as ruy's Path bit-field and XNNPACK's
// hardware config). Features are not nested (AVX-VNNI and AVX-512 VNNI, SDOT and USMMLA appear
// in different combinations on different cores), so each kernel states the features it
// requires (its row in a kernel table, csrc/kernels/tables.h) and every family picks its best
// row for the features at hand; detection happens here and nowhere else.
#pragma once

#include <cstdint>
#include <vector>

namespace intinfer {

using Features = uint32_t;

constexpr Features kFeatureAvx2 = 1u << 0;      // AVX2 + FMA
constexpr Features kFeatureAvxVnni = 1u << 1;   // VEX-encoded vpdpbusd on 256 bits
constexpr Features kFeatureAvx512Vnni = 1u << 2; // AVX-512 F, BW, VL and VNNI: vpdpbusd on 512 bits
constexpr Features kFeatureNeon = 1u << 8;      // Advanced SIMD (ARMv7 with -mfpu=neon, ARMv8-A)
constexpr Features kFeatureNeonDot = 1u << 9;   // ARMv8.2 SDOT/UDOT (aarch64)
constexpr Features kFeatureNeonI8mm = 1u << 10; // ARMv8.6 USMMLA (aarch64)

// A named set of features: what INTINFER_ISA names, Model::isa() reports and the tests sweep.
struct Path {
  const char* name;
  Features features;
};

// The paths this build of intinfer can run on this CPU, reference first, richest last.
std::vector<Path> supported_paths();

// The richest available path, or the one INTINFER_ISA names (ref, avx2, avxvnni, avx512vnni, neon, neondot,
// neoni8mm); a name this build or CPU cannot run throws std::runtime_error listing the available.
Path select_path();

}  // namespace intinfer
