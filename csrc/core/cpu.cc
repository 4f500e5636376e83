#include "cpu.h"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(INTINFER_HAVE_AVX2)
#include <cpuid.h>
#endif
#if defined(INTINFER_HAVE_NEON) && defined(__linux__)
#include <sys/auxv.h>
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

// AVX-512 F, BW, VL and VNNI, with the OS saving the zmm and mask registers (the compiler's
// check reads XCR0 too).
bool cpu_has_avx512vnni() {
#if defined(INTINFER_HAVE_AVX2)
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

// NEON: always on aarch64 (part of ARMv8-A); on 32-bit ARM the build requires it (-mfpu=neon),
// so the kernels run only where the kernel reports it.
bool cpu_has_neon() {
#if defined(INTINFER_HAVE_NEON) && defined(__aarch64__)
  return true;
#elif defined(INTINFER_HAVE_NEON) && defined(__linux__)
  return (getauxval(AT_HWCAP) & (1ul << 12)) != 0;  // HWCAP_NEON
#else
  return false;
#endif
}

bool cpu_has_neondot() {
#if defined(INTINFER_HAVE_NEONDOT) && defined(__linux__)
  return (getauxval(AT_HWCAP) & (1ul << 20)) != 0;  // HWCAP_ASIMDDP
#elif defined(INTINFER_HAVE_NEONDOT) && defined(__APPLE__)
  return true;  // every Apple arm64 core has the dot product
#else
  return false;
#endif
}

bool cpu_has_neoni8mm() {
#if defined(INTINFER_HAVE_NEONI8MM) && defined(__linux__)
  return (getauxval(AT_HWCAP2) & (1ul << 13)) != 0;  // HWCAP2_I8MM
#else
  return false;
#endif
}

// Every path this build knows, each a superset of the ones before it on its architecture.
constexpr Path kPaths[] = {
    {"ref", 0},
    {"avx2", kFeatureAvx2},
    {"avxvnni", kFeatureAvx2 | kFeatureAvxVnni},
    {"avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni},
    {"neon", kFeatureNeon},
    {"neondot", kFeatureNeon | kFeatureNeonDot},
    {"neoni8mm", kFeatureNeon | kFeatureNeonDot | kFeatureNeonI8mm},
};

Features detect_features() {
  Features f = 0;
  if (cpu_has_avx2()) f |= kFeatureAvx2;
  if (cpu_has_avxvnni()) f |= kFeatureAvxVnni;
  if (cpu_has_avx512vnni()) f |= kFeatureAvx512Vnni;
  if (cpu_has_neon()) f |= kFeatureNeon;
  if (cpu_has_neondot()) f |= kFeatureNeonDot;
  if (cpu_has_neoni8mm()) f |= kFeatureNeonI8mm;
  return f;
}

}  // namespace

std::vector<Path> supported_paths() {
  const Features cpu = detect_features();
  std::vector<Path> paths;
  for (const Path& p : kPaths)
    if ((p.features & cpu) == p.features) paths.push_back(p);
  return paths;
}

Path select_path() {
  const std::vector<Path> available = supported_paths();
  const char* forced = std::getenv("INTINFER_ISA");
  if (forced == nullptr || *forced == '\0') return available.back();
  std::string names;
  for (const Path& p : available) {
    if (p.name == std::string(forced)) return p;
    names += (names.empty() ? "" : ", ") + std::string(p.name);
  }
  throw std::runtime_error("INTINFER_ISA='" + std::string(forced) +
                           "' is not a path this build of intinfer can run on this CPU (available: " + names + ")");
}

}  // namespace intinfer
