// Instruction-set paths, reference first (as ruy's Path), and the one place that picks one.
#pragma once

namespace intinfer {

enum class Isa { kRef, kAvx2 };

// The best path this CPU and build support, or the one forced by INTINFER_ISA
// (ref, avx2); an unknown or unavailable name throws std::runtime_error.
Isa select_isa();
const char* isa_name(Isa isa);

}  // namespace intinfer
