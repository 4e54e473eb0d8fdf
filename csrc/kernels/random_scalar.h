// Portable primitives for the Gumbel kernels, bit-identical to the SIMD ones:
// the noise is computed in the data's own precision (float for float32, unlike
// the scalar softmax path) with fused multiply-adds from std::fma, so every
// rounding matches. On CPUs without FMA hardware std::fma is slower but exact.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "philox_constants.h"
#include "vecmath_common.h"

namespace ssm {
namespace scalar {

// One-lane float and double types with fused fma (the softmax path's F64x1
// deliberately does not fuse; see vecmath_scalar.h).
template <class S>
struct Fused {
  using scalar = S;
  using reg = S;
  using mask = bool;
  static constexpr size_t width = 1;
  static reg set1(double a) { return static_cast<S>(a); }
  static reg load(const S* p) { return *p; }
  // float data in double lanes (sample()'s masses): exact
  template <class U>
  static reg load(const U* p) { return static_cast<S>(*p); }
  static reg load_tail(const S* p, size_t, double) { return *p; }
  static void store(S* p, reg v) { *p = v; }
  static void store_tail(S* p, reg v, size_t) { *p = v; }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg fmadd(reg a, reg b, reg c) { return std::fma(a, b, c); }
  static reg max(reg a, reg b) { return a > b ? a : b; }
  static reg min(reg a, reg b) { return a < b ? a : b; }
  static reg round(reg a) { return std::nearbyint(a); }
  static reg scale2(reg m, reg k) {
    const double kc = k < -2100 ? -2100 : (k > 2100 ? 2100 : k);
    return static_cast<S>(std::ldexp(static_cast<double>(m), static_cast<int>(kc)));
  }
  static reg scale2_acc(reg m, reg k) { return scale2(m, k); }
  static reg reduce_ln2(reg x, reg n) {
    using C = ExpCoeffs<S>;
    return std::fma(-n, static_cast<S>(C::ln2_lo), std::fma(-n, static_cast<S>(C::ln2_hi), x));
  }
  static mask none() { return false; }
  static mask unord(reg a) { return a != a; }
  static mask nonzero(reg a) { return !(a == 0); }
  static mask notfinite(reg a) { return !(a - a == 0); }
  static mask gt(reg a, reg b) { return a > b; }
  static mask not_le(reg a, reg b) { return !(a <= b); }
  static mask mask_or(mask a, mask b) { return a || b; }
  static bool any(mask m) { return m; }
  static reg select(mask m, reg if_true, reg if_false) { return m ? if_true : if_false; }
  static double hmax(reg a) { return a; }
  static double hsum(reg a) { return a; }
  static void to_array(reg a, double* out) { out[0] = a; }
};
using F32x1 = Fused<float>;
using F64x1F = Fused<double>;

struct Random {
  static void philox16(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    for (uint32_t lane = 0; lane < 16; ++lane) {
      uint32_t x0 = static_cast<uint32_t>(base) + lane, x1 = static_cast<uint32_t>(base >> 32), x2 = c2, x3 = c3;
      for (uint32_t round = 0; round < 10; ++round) {
        const uint64_t p0 = static_cast<uint64_t>(x0) * kPhiloxM0, p1 = static_cast<uint64_t>(x2) * kPhiloxM1;
        const uint32_t key0 = k0 + round * kPhiloxW0, key1 = k1 + round * kPhiloxW1;
        x0 = static_cast<uint32_t>(p1 >> 32) ^ x1 ^ key0;
        x2 = static_cast<uint32_t>(p0 >> 32) ^ x3 ^ key1;
        x1 = static_cast<uint32_t>(p1);
        x3 = static_cast<uint32_t>(p0);
      }
      out[lane] = x0;
      out[16 + lane] = x1;
      out[32 + lane] = x2;
      out[48 + lane] = x3;
    }
  }

  // 32 blocks: two groups of 16 (out and out + 64), as in random_avx512.h.
  static void philox32(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    philox16(base, c2, c3, k0, k1, out);
    philox16(base + 16, c2, c3, k0, k1, out + 64);
  }

  static float complement_f32(const uint32_t* w) {
    return static_cast<float>(~*w);  // correctly rounded (via a 64-bit signed convert)
  }
  static double complement_f64(const uint32_t* w) { return static_cast<double>(~*w); }
  // The folded word (see random_avx512.h): below 2^31, so the int32 convert
  // rounds as cvtdq2ps does.
  static uint32_t fold(const uint32_t* w, bool& hi) {
    hi = (*w >> 31) != 0;
    return hi ? ~*w : *w;
  }
  static float fold_f32(const uint32_t* w, bool& hi) { return static_cast<float>(static_cast<int32_t>(fold(w, hi))); }
  static double fold_f64(const uint32_t* w, bool& hi) { return static_cast<double>(fold(w, hi)); }
  template <class S>
  static S exponent(S y) {
    int e;
    std::frexp(y, &e);  // y = f * 2^e, f in [0.5, 1): exact
    return static_cast<S>(e - 1);
  }
  template <class S>
  static S mantissa(S y) {
    int e;
    return std::frexp(y, &e) * 2;
  }
  template <class S>
  static S div(S a, S b) {
    return a / b;
  }
};

}  // namespace scalar
}  // namespace ssm
