// intinfer-peak: this CPU's sustained single-core rate for the instruction sequences that int8
// and fp32 kernels are built from, so that kernel figures can be stated as a fraction of what
// the machine can do. Each sequence runs on 12 independent accumulators (enough to cover the
// latency of every instruction here) with empty asm barriers so the compiler can neither merge
// the chains nor drop them; check the disassembly (objdump -d) if a figure looks too good.
#include <cpuid.h>
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

constexpr int kChains = 12;
constexpr long kIters = 20'000'000;

template <typename F>
double seconds(F&& f) {
  f();  // warm up (frequency, caches)
  const auto t = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

#define KEEP(v) asm volatile("" : "+v"(v))

// The clock the kernel reports (/proc/cpuinfo "cpu MHz"; nominal in a VM, so MAC/cycle is
// indicative only).
double clock_hz() {
  FILE* f = std::fopen("/proc/cpuinfo", "r");
  double mhz = 0;
  char line[256];
  while (f && std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "cpu MHz : %lf", &mhz) == 1) break;
  if (f) std::fclose(f);
  return mhz * 1e6;
}

// Twelve accumulators as locals of the timed body (captured arrays would live in memory). Each
// STEP first hides `a` behind a barrier, so the twelve products cannot be computed once and shared.
#define BODY12(T, INIT, STEP)                                                                    \
  [&] {                                                                                          \
    auto ra = a;                                                                                 \
    const auto rb = b;                                                                           \
    T c0 = INIT, c1 = INIT, c2 = INIT, c3 = INIT, c4 = INIT, c5 = INIT, c6 = INIT, c7 = INIT,      \
      c8 = INIT, c9 = INIT, c10 = INIT, c11 = INIT;                                              \
    for (long i = 0; i < kIters; ++i) {                                                          \
      KEEP(ra);                                                                                  \
      STEP(c0); STEP(c1); STEP(c2); STEP(c3); STEP(c4); STEP(c5);                                \
      STEP(c6); STEP(c7); STEP(c8); STEP(c9); STEP(c10); STEP(c11);                              \
      KEEP(c0); KEEP(c1); KEEP(c2); KEEP(c3); KEEP(c4); KEEP(c5);                                \
      KEEP(c6); KEEP(c7); KEEP(c8); KEEP(c9); KEEP(c10); KEEP(c11);                              \
    }                                                                                            \
  }

double madd_s16() {  // vpmaddwd + vpaddd: 16 exact MACs per vpmaddwd
  __m256i a = _mm256_set1_epi16(3);
  const __m256i b = _mm256_set1_epi16(5);
#define STEP(c) KEEP(ra); c = _mm256_add_epi32(c, _mm256_madd_epi16(ra, rb))
  const double s = seconds(BODY12(__m256i, _mm256_setzero_si256(), STEP));
#undef STEP
  return 16.0 * kChains * kIters / s;
}

double maddubs_u8s8() {  // vpmaddubsw + vpmaddwd(ones) + vpaddd: 32 MACs, saturates for 255 x 127 pairs
  __m256i a = _mm256_set1_epi8(3);
  const __m256i b = _mm256_set1_epi8(5);
#define STEP(c) KEEP(ra); c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(ra, rb), _mm256_set1_epi16(1)))
  const double s = seconds(BODY12(__m256i, _mm256_setzero_si256(), STEP));
#undef STEP
  return 32.0 * kChains * kIters / s;
}

// u8 x s8 made exact by the bound of int8 weights in [-127, 127]: with a' = a - 128 (its 128 x sum(w)
// term folded in the bias), vpmaddubsw multiplies |a'| (vpabsb, per activation, shared by every
// weight vector) by the weights with a''s sign applied (vpsignb, per weight vector); a pair of
// products is then at most 2 x 128 x 127 = 32512 and never saturates. 32 MACs per vpsignb +
// vpmaddubsw + vpmaddwd(ones) + vpaddd.
double maddubs_signed_exact() {
  __m256i a = _mm256_set1_epi8(-3);
  const __m256i b = _mm256_set1_epi8(5);
  const __m256i abs_a = _mm256_abs_epi8(a);
#define STEP(c) \
  KEEP(ra); c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(abs_a, _mm256_sign_epi8(rb, ra)), \
                                                       _mm256_set1_epi16(1)))
  const double s = seconds(BODY12(__m256i, _mm256_setzero_si256(), STEP));
#undef STEP
  return 32.0 * kChains * kIters / s;
}

double dpbusd_u8s8() {  // AVX-VNNI vpdpbusd: 32 exact MACs (4 u8 x s8 products per int32 lane)
  __m256i a = _mm256_set1_epi8(3);
  const __m256i b = _mm256_set1_epi8(5);
#define STEP(c) KEEP(ra); c = _mm256_dpbusd_avx_epi32(c, ra, rb)
  const double s = seconds(BODY12(__m256i, _mm256_setzero_si256(), STEP));
#undef STEP
  return 32.0 * kChains * kIters / s;
}

// AVX-512 VNNI vpdpbusd on 512 bits: 64 exact MACs. Compiled for these features alone (a lambda
// would not inherit them, so the loop is written out) and run only where CPUID reports them.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) long dpbusd_u8s8_512_loop() {
  __m512i ra = _mm512_set1_epi8(3);
  const __m512i rb = _mm512_set1_epi8(5);
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0,
          c9 = c0, c10 = c0, c11 = c0;
  for (long i = 0; i < kIters; ++i) {
    KEEP(ra);
#define STEP(c) KEEP(ra); c = _mm512_dpbusd_epi32(c, ra, rb)
    STEP(c0); STEP(c1); STEP(c2); STEP(c3); STEP(c4); STEP(c5);
    STEP(c6); STEP(c7); STEP(c8); STEP(c9); STEP(c10); STEP(c11);
#undef STEP
    KEEP(c0); KEEP(c1); KEEP(c2); KEEP(c3); KEEP(c4); KEEP(c5);
    KEEP(c6); KEEP(c7); KEEP(c8); KEEP(c9); KEEP(c10); KEEP(c11);
  }
  return kIters;
}

double dpbusd_u8s8_512() { return 64.0 * kChains * kIters / seconds(dpbusd_u8s8_512_loop); }

bool has_avx512vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}

bool has_avxvnni() {
  unsigned a = 0, b = 0, c = 0, d = 0;  // CPUID.(EAX=7, ECX=1):EAX bit 4
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) != 0;
}

double fma_f32() {  // vfmadd231ps: 8 MACs
  __m256 a = _mm256_set1_ps(1.0001f);
  const __m256 b = _mm256_set1_ps(0.9999f);
#define STEP(c) KEEP(ra); c = _mm256_fmadd_ps(ra, rb, c)
  const double s = seconds(BODY12(__m256, _mm256_setzero_ps(), STEP));
#undef STEP
  return 8.0 * kChains * kIters / s;
}

}  // namespace

int main() {
  const double hz = clock_hz();
  std::printf("clock (/proc/cpuinfo): %.2f GHz\n", hz / 1e9);
  std::printf("%-52s %10s %10s\n", "sequence (1 core)", "GMAC/s", "MAC/cycle");
  auto row = [&](const char* name, double macs) { std::printf("%-52s %10.1f %10.1f\n", name, macs / 1e9, macs / hz); };
  row("s16 x s16 vpmaddwd + vpaddd (intinfer's GEMM, exact)", madd_s16());
  row("u8 x s8 vpmaddubsw + vpmaddwd + vpaddd (saturating)", maddubs_u8s8());
  row("u8 x s8 vpsignb + vpmaddubsw + vpmaddwd + vpaddd (exact, |a - 128|)", maddubs_signed_exact());
  if (has_avxvnni()) row("u8 x s8 vpdpbusd (AVX-VNNI, exact; intinfer's avxvnni GEMM)", dpbusd_u8s8());
  if (has_avx512vnni()) row("u8 x s8 vpdpbusd zmm (AVX-512 VNNI, exact)", dpbusd_u8s8_512());
  row("fp32 vfmadd231ps", fma_f32());
  return 0;
}
