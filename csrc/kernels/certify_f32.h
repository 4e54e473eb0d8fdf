// Is a float32 log-sum-exp known to within abs_err certainly within 1 ulp of
// the correctly rounded result? Shared by the baseline driver (chunking.h's
// certified<float>) and the short-row kernels (rows_logsumexp_direct.h):
// internal linkage (an anonymous namespace), so every translation unit
// compiles its own copy with its own flags (no inline function compiled
// with AVX flags can reach baseline code), and no library call.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace ssm {
namespace {

// The float next to a finite f towards +inf (up) or -inf: one step of its
// bit pattern, as std::nextafter, which is a library call (twice per row).
inline float float_step(float f, bool up) {
  // (The smallest subnormal as a literal: numeric_limits<float>::denorm_min()
  // is a call in unoptimized builds, code with external linkage compiled
  // with the including kernel set's flags.)
  if (f == 0.0f) return up ? 0x1p-149f : -0x1p-149f;
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  bits += (f > 0.0f) == up ? 1u : ~0u;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Every value within abs_err of lse rounds to f = float(lse) or a
// neighbour, so f is within 1 ulp of the correctly rounded result.
inline bool certified_f32(double lse, double abs_err) {
  const float f = static_cast<float>(lse);
#if defined(__GNUC__) || defined(__clang__)
  if (!__builtin_isfinite(f)) return false;
#else
  if (!std::isfinite(f)) return false;
#endif
  const float lo = static_cast<float>(lse - abs_err), hi = static_cast<float>(lse + abs_err);
  return lo >= float_step(f, false) && hi <= float_step(f, true);
}

}  // namespace
}  // namespace ssm
