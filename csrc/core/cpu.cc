#include "cpu.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace intinfer {
namespace {

bool cpu_has_avx2() {
#if defined(INTINFER_HAVE_AVX2)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kRef: return "ref";
    case Isa::kAvx2: return "avx2";
  }
  return "?";
}

Isa select_isa() {
  const bool avx2 = cpu_has_avx2();
  const char* forced = std::getenv("INTINFER_ISA");
  if (forced == nullptr || *forced == '\0') return avx2 ? Isa::kAvx2 : Isa::kRef;
  const std::string name(forced);
  if (name == "ref") return Isa::kRef;
  if (name == "avx2" && avx2) return Isa::kAvx2;
  throw std::runtime_error("INTINFER_ISA='" + name + "' is not a path this build of intinfer can run on this CPU "
                           "(available: ref" + std::string(avx2 ? ", avx2" : "") + ")");
}

}  // namespace intinfer
