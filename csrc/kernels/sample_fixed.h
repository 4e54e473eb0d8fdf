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

// s += a 2^64 + b 2^32 (a mass a 2^-32 + b 2^-64 in units of 2^-96) for signed
// a, b: the sum is kept modulo 2^128, so negative pieces are fine as long as
// the whole sum is not.
inline void fixed_add_pieces(FixedMass& s, int64_t a, int64_t b) {
  const uint64_t b_lo = static_cast<uint64_t>(b) << 32;
  const uint64_t b_hi = static_cast<uint64_t>(b >> 32);  // arithmetic shift: b's sign extended
  s.lo += b_lo;
  s.hi += static_cast<uint64_t>(a) + b_hi + (s.lo < b_lo ? 1u : 0u);
}

inline double fixed_value(const FixedMass& s) {
  return static_cast<double>(s.hi) * 0x1p-32 + static_cast<double>(s.lo) * 0x1p-96;
}

}  // namespace
}  // namespace ssm
