// CPU feature detection: CPUID for what the processor has, XGETBV (XCR0) for
// what the operating system saves on a context switch. AVX and AVX-512 are
// only usable when both agree; CPUID alone is not enough.
#pragma once
#include <string>

namespace ssm {

struct CpuFeatures {
  bool sse2 = false, sse41 = false, osxsave = false;
  bool avx = false, avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
  bool avx512bf16 = false;  // CPUID.(7,1):EAX[5]: vcvtneps2bf16 and friends
  bool os_saves_ymm = false;  // XCR0 bits 1-2 (SSE + AVX state)
  bool os_saves_zmm = false;  // XCR0 bits 5-7 (opmask, ZMM_Hi256, Hi16_ZMM)
  bool neon = false;          // AArch64 Advanced SIMD (always there on AArch64)
  std::string vendor, brand;

  bool can_run_avx2() const { return avx && avx2 && fma && os_saves_ymm; }
  bool can_run_avx512() const {
    return can_run_avx2() && avx512f && avx512dq && avx512bw && avx512vl && os_saves_zmm;
  }
};

// Detected once, on first call; thread-safe.
const CpuFeatures& cpu_features();

// Raw CPUID (x86 only; returns false elsewhere or past the maximum leaf of
// that range), for the cache-size fallback in cache_info.cpp.
bool cpuid_leaf(unsigned leaf, unsigned subleaf, unsigned regs[4]);

}  // namespace ssm
