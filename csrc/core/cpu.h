// Instruction-set paths, reference first (as ruy's Path), and the one place that picks one.
#pragma once

namespace intinfer {

// kAvxVnni is kAvx2 plus the AVX-VNNI dot-product GEMM (vpdpbusd); every other kernel of it is
// the AVX2 one. Likewise kNeonDot is kNeon plus the SDOT GEMM (ARMv8.2 dot product, aarch64),
// and kNeonI8mm is kNeon plus the USMMLA GEMM (ARMv8.6 int8 matrix multiply, aarch64).
enum class Isa { kRef, kAvx2, kAvxVnni, kNeon, kNeonDot, kNeonI8mm };

// The best path this CPU and build support, or the one forced by INTINFER_ISA
// (ref, avx2, avxvnni, neon, neondot, neoni8mm); an unknown or unavailable name throws std::runtime_error.
Isa select_isa();
const char* isa_name(Isa isa);

inline bool isa_has_avx2(Isa isa) { return isa == Isa::kAvx2 || isa == Isa::kAvxVnni; }
inline bool isa_has_neon(Isa isa) { return isa == Isa::kNeon || isa == Isa::kNeonDot || isa == Isa::kNeonI8mm; }

}  // namespace intinfer
