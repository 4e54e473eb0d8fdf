#include "cpu_features.h"

#include <cstdint>
#include <cstring>

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>
#include <intrin.h>
#define SSM_X86_CPUID 1
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#define SSM_X86_CPUID 1
#endif

namespace ssm {
namespace {

#ifdef SSM_X86_CPUID
void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) {
#if defined(_MSC_VER)
  int r[4];
  __cpuidex(r, static_cast<int>(leaf), static_cast<int>(subleaf));
  for (int i = 0; i < 4; ++i) regs[i] = static_cast<uint32_t>(r[i]);
#else
  __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
#endif
}

// Only called after CPUID reported OSXSAVE, otherwise XGETBV itself faults.
uint64_t xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  uint32_t r[4];
  cpuid(0, 0, r);
  const uint32_t max_leaf = r[0];
  char vendor[13];
  std::memcpy(vendor + 0, &r[1], 4);
  std::memcpy(vendor + 4, &r[3], 4);
  std::memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  f.vendor = vendor;

  if (max_leaf >= 1) {
    cpuid(1, 0, r);
    f.sse2 = (r[3] >> 26) & 1;
    f.sse41 = (r[2] >> 19) & 1;
    f.fma = (r[2] >> 12) & 1;
    f.osxsave = (r[2] >> 27) & 1;
    f.avx = (r[2] >> 28) & 1;
    f.f16c = (r[2] >> 29) & 1;
  }
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    f.avx2 = (r[1] >> 5) & 1;
    f.bmi2 = (r[1] >> 8) & 1;
    f.avx512f = (r[1] >> 16) & 1;
    f.avx512dq = (r[1] >> 17) & 1;
    f.avx512bw = (r[1] >> 30) & 1;
    f.avx512vl = (r[1] >> 31) & 1;
    const uint32_t max_subleaf = r[0];
    if (max_subleaf >= 1) {
      cpuid(7, 1, r);
      f.avx512bf16 = (r[0] >> 5) & 1;
    }
  }
  if (f.osxsave) {
    const uint64_t xcr0 = xgetbv0();
    f.os_saves_ymm = (xcr0 & 0x6) == 0x6;
    f.os_saves_zmm = f.os_saves_ymm && (xcr0 & 0xE0) == 0xE0;
  }

  cpuid(0x80000000u, 0, r);
  if (r[0] >= 0x80000004u) {
    char brand[49];
    for (uint32_t i = 0; i < 3; ++i) {
      cpuid(0x80000002u + i, 0, r);
      std::memcpy(brand + 16 * i, r, 16);
    }
    brand[48] = 0;
    std::string s = brand;
    const auto first = s.find_first_not_of(' ');
    const auto last = s.find_last_not_of(' ');
    f.brand = first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
  }
  return f;
}
#else
CpuFeatures detect() {
  CpuFeatures f;
#if defined(__aarch64__) || defined(_M_ARM64)
  f.neon = true;  // mandatory in the AArch64 architecture
#endif
  return f;
}
#endif

}  // namespace

bool cpuid_leaf(unsigned leaf, unsigned subleaf, unsigned regs[4]) {
#ifdef SSM_X86_CPUID
  uint32_t r[4];
  cpuid(leaf & 0x80000000u, 0, r);  // the largest leaf of this range
  if (leaf > r[0]) return false;
  cpuid(leaf, subleaf, r);
  for (int i = 0; i < 4; ++i) regs[i] = r[i];
  return true;
#else
  (void)leaf;
  (void)subleaf;
  (void)regs;
  return false;
#endif
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace ssm
