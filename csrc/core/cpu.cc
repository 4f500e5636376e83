#include "cpu.h"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(INTINFER_HAVE_AVX2)
#include <cpuid.h>
#endif

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

bool cpu_has_avxvnni() {
#if defined(INTINFER_HAVE_AVX2)
  unsigned a = 0, b = 0, c = 0, d = 0;  // CPUID.(EAX=7, ECX=1):EAX bit 4 is AVX-VNNI
  return cpu_has_avx2() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) != 0;
#else
  return false;
#endif
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kRef: return "ref";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvxVnni: return "avxvnni";
  }
  return "?";
}

Isa select_isa() {
  std::vector<Isa> available = {Isa::kRef};
  if (cpu_has_avx2()) available.push_back(Isa::kAvx2);
  if (cpu_has_avxvnni()) available.push_back(Isa::kAvxVnni);
  const char* forced = std::getenv("INTINFER_ISA");
  if (forced == nullptr || *forced == '\0') return available.back();
  std::string names;
  for (Isa isa : available) {
    if (isa_name(isa) == std::string(forced)) return isa;
    names += (names.empty() ? "" : ", ") + std::string(isa_name(isa));
  }
  throw std::runtime_error("INTINFER_ISA='" + std::string(forced) +
                           "' is not a path this build of intinfer can run on this CPU (available: " + names + ")");
}

}  // namespace intinfer
