// Scalar float16 / bfloat16 conversions by bit manipulation, shared by every
// conversion translation unit for its vector tails. Internal linkage only
// (static inline in each TU's own namespace): a copy compiled with AVX flags
// must never be linked into scalar code.
#pragma once
#include <cstdint>
#include <cstring>

#ifndef SSM_CONVERT_NS
#error "define SSM_CONVERT_NS (the ISA namespace) before including convert_generic.h"
#endif

namespace ssm {
namespace SSM_CONVERT_NS {
namespace {

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// bfloat16 is the upper half of a float32.
inline float bf16_to_f32_one(uint16_t h) { return float_of(uint32_t(h) << 16); }

// Round to nearest even on the 16 dropped bits: adding 0x7fff plus the kept
// lowest bit carries exactly when the dropped part is above half, or is half
// and the kept part is odd; a carry out of the mantissa moves up a binade and
// from the largest finite value to inf, as rounding should.
inline uint16_t f32_to_bf16_one(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // NaN: quiet, sign kept
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float f16_to_f32_one(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return float_of(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return float_of(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return float_of(sign);
  // Subnormal: m * 2^-24, exact in float32.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return float_of(sign | bits_of(magnitude));
}

inline uint16_t f32_to_f16_one(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN: quiet
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520: rounds to inf (or is inf)
  if (a >= 0x38800000u) {
    // Normal result: rebias, round the 13 dropped bits to nearest even (a
    // carry into the exponent is the correct next binade).
    const uint32_t rebiased = a - (112u << 23);
    return uint16_t(sign | ((rebiased + 0xfffu + ((rebiased >> 13) & 1u)) >> 13));
  }
  if (a < 0x33000000u) return sign;  // below 2^-25: rounds to 0 (2^-25 itself ties to even 0)
  // Subnormal result: the value in units of 2^-24, rounded to nearest even.
  const uint32_t mantissa = (a & 0x7fffffu) | 0x800000u;
  const int shift = 126 - int(a >> 23);  // 14..24 for exponents -15..-25
  const uint32_t kept = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u), half = 1u << (shift - 1);
  const uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
  return uint16_t(sign | rounded);
}

inline void f16_to_f32_tail(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f16_to_f32_one(x[i]);
}
inline void bf16_to_f32_tail(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = bf16_to_f32_one(x[i]);
}
inline void f32_to_f16_tail(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f32_to_f16_one(x[i]);
}
inline void f32_to_bf16_tail(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f32_to_bf16_one(x[i]);
}

}  // namespace
}  // namespace SSM_CONVERT_NS
}  // namespace ssm
