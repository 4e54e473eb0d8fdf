// How many 512-bit vector operations this core retires per cycle, by kind:
// the ceiling behind the lower bound on gumbel_softmax's cost (docs/design.md,
// "What gumbel_softmax costs"). Built and run by bench/vector_ports.sh.
//
// Each measurement runs independent dependency chains (more chains than
// latency x throughput, fewer than the 32 registers), so the loop is bound by
// the execution ports, not by latency or spills. The clock comes from a chain
// of dependent scalar adds (one per cycle on every x86-64 core this targets).
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr long kIters = 50000000;

// 8 chains cover the FMA's 4-cycle latency at 2 per cycle; 6 per kind when
// four kinds run at once (24 registers).
#define SSM_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define SSM_CHAINS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

// operations per cycle of `body`, which issues `ops` of them per iteration
template <class Body>
double per_cycle(double ghz, int ops, Body&& body) {
  const double t0 = now();
  body();
  return static_cast<double>(ops) * kIters / ((now() - t0) * ghz * 1e9);
}

}  // namespace

int main(int argc, char**) {
  if (!__builtin_cpu_supports("avx512f")) {
    std::puts("this CPU has no AVX-512: nothing to measure");
    return 0;
  }
  unsigned long long a = 1;
  const long adds = 400000000;
  double t0 = now();
  for (long i = 0; i < adds; ++i) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(a));
  const double ghz = 4.0 * adds / (now() - t0) / 1e9;
  std::printf("clock (dependent scalar adds): %.2f GHz\n", ghz);

  // argc keeps the compiler from folding the constants
  const __m512i m = _mm512_set1_epi64(0xD2511F53 + argc), k = _mm512_set1_epi32(77 * argc);
  const __m512 e = _mm512_set1_ps(1.0000001f * argc), z = _mm512_set1_ps(1e-9f * argc);
#define SSM_DECL(j)                                                                                 \
  __m512i i##j = _mm512_set1_epi64(j + 3 + argc), x##j = _mm512_set1_epi32(j * 5 + argc);           \
  __m512 f##j = _mm512_set1_ps(j + 1.0f + argc), g##j = _mm512_set1_ps(j + 2.0f), d##j = f##j;
  SSM_CHAINS(SSM_DECL)
#define SSM_MUL(j) i##j = _mm512_mul_epu32(i##j, m);
#define SSM_FMA(j) f##j = _mm512_fmadd_ps(f##j, e, e);
#define SSM_XOR(j) x##j = _mm512_xor_si512(x##j, k);
#define SSM_ADD(j) g##j = _mm512_add_ps(g##j, z);
#define SSM_DIV(j) d##j = _mm512_div_ps(d##j, e);
  const double mul = per_cycle(ghz, 8, [&] { for (long n = 0; n < kIters; ++n) { SSM_CHAINS(SSM_MUL) } });
  const double fma = per_cycle(ghz, 8, [&] { for (long n = 0; n < kIters; ++n) { SSM_CHAINS(SSM_FMA) } });
  const double mul_fma = per_cycle(ghz, 16, [&] { for (long n = 0; n < kIters; ++n) { SSM_CHAINS(SSM_MUL) SSM_CHAINS(SSM_FMA) } });
  const double xor_add = per_cycle(ghz, 16, [&] { for (long n = 0; n < kIters; ++n) { SSM_CHAINS(SSM_XOR) SSM_CHAINS(SSM_ADD) } });
  const double all4 = per_cycle(ghz, 24, [&] {
    for (long n = 0; n < kIters; ++n) { SSM_CHAINS6(SSM_MUL) SSM_CHAINS6(SSM_FMA) SSM_CHAINS6(SSM_XOR) SSM_CHAINS6(SSM_ADD) }
  });
  const double div = per_cycle(ghz, 8, [&] { for (long n = 0; n < kIters / 4; ++n) { SSM_CHAINS(SSM_DIV) } }) / 4;
  std::printf("512-bit operations per cycle:\n");
  std::printf("  vpmuludq alone                 %.2f\n", mul);
  std::printf("  vfmadd231ps alone              %.2f\n", fma);
  std::printf("  vpmuludq + vfmadd, mixed       %.2f  (both kinds together)\n", mul_fma);
  std::printf("  vpxord + vaddps, mixed         %.2f\n", xor_add);
  std::printf("  all four kinds, mixed          %.2f\n", all4);
  std::printf("  vdivps                         %.2f  (%.2f cycles each)\n", div, 1.0 / div);
  // print the results so no chain is dead code
  long long keep = static_cast<long long>(a);
#define SSM_KEEP(j)                                                                                  \
  keep += _mm512_reduce_add_epi64(i##j) + _mm512_reduce_add_epi32(x##j) +                          \
          static_cast<long long>(_mm512_reduce_add_ps(f##j) + _mm512_reduce_add_ps(g##j) + _mm512_reduce_add_ps(d##j));
  SSM_CHAINS(SSM_KEEP)
  std::printf("(checksum %lld)\n", keep);
  return 0;
}
