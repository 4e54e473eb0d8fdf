// FixedMass arithmetic (sample_api.h), with internal linkage in every
// translation unit that includes it (kernel TUs are compiled with AVX flags:
// nothing inline may be shared with the baseline code).
#pragma once
#include <cstdint>
#include <cstring>

#include "sample_api.h"

namespace ssm {
namespace {

inline void fixed_add(FixedMass& s, const FixedMass& a) {
  s.lo += a.lo;
  s.hi += a.hi + (s.lo < a.lo ? 1u : 0u);
}

// s += m for 0 <= m <= 1, truncated to a multiple of 2^-96 (exact: m's 53-bit
// significand shifted into place).
inline void fixed_add_mass(FixedMass& s, double m) {
  uint64_t bits;
  std::memcpy(&bits, &m, sizeof bits);
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  if (biased == 0 || (bits >> 63) != 0) return;   // 0, subnormal or negative
  const uint64_t mant = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1} << 52);
  const int shift = biased - 1075 + 96;           // m = mant 2^(biased - 1075)
  FixedMass a;
  if (shift <= -53) return;
  if (shift < 0) {
    a.lo = mant >> -shift;
  } else if (shift == 0) {
    a.lo = mant;
  } else if (shift < 64) {
    a.lo = mant << shift;
    a.hi = mant >> (64 - shift);
  } else {
    a.hi = mant << (shift - 64);
  }
  fixed_add(s, a);
}

inline double fixed_value(const FixedMass& s) {
  return static_cast<double>(s.hi) * 0x1p-32 + static_cast<double>(s.lo) * 0x1p-96;
}

}  // namespace
}  // namespace ssm
