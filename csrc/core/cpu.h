// Instruction-set paths, reference first (as ruy's Path), and the one place that picks one.
#pragma once

namespace intinfer {

// kAvxVnni is kAvx2 plus the AVX-VNNI dot-product GEMM (vpdpbusd); every other kernel of it is
// the AVX2 one.
enum class Isa { kRef, kAvx2, kAvxVnni };

// The best path this CPU and build support, or the one forced by INTINFER_ISA
// (ref, avx2, avxvnni); an unknown or unavailable name throws std::runtime_error.
Isa select_isa();
const char* isa_name(Isa isa);

inline bool isa_has_avx2(Isa isa) { return isa == Isa::kAvx2 || isa == Isa::kAvxVnni; }

}  // namespace intinfer
