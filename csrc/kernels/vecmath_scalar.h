// Portable one-lane type for the generic kernels: the baseline path for CPUs
// without AVX2 and for non-x86 hosts. It computes in double for both float32
// and float64 data (more accurate, and no fma needed: the range reduction
// uses a 31-bit Cody-Waite split whose products are exact).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vecmath_common.h"

namespace ssm {
namespace scalar {

struct F64x1 {
  using scalar = double;
  using reg = double;
  using mask = bool;
  static constexpr size_t width = 1;

  static reg set1(double a) { return a; }
  static reg load(const double* p) { return *p; }
  static reg load(const float* p) { return *p; }
  static reg load_tail(const double* p, size_t, double) { return *p; }
  static reg load_tail(const float* p, size_t, double) { return *p; }
  static void store(double* p, reg v) { *p = v; }
  static void store(float* p, reg v) { *p = static_cast<float>(v); }
  static void store_tail(double* p, reg v, size_t) { *p = v; }
  static void store_tail(float* p, reg v, size_t) { *p = static_cast<float>(v); }
  // No streaming stores in portable code: stream_align = 0 turns them off.
  static constexpr size_t stream_align = 0;
  template <class Out>
  static void stream(Out* p, reg v) { store(p, v); }
  static void fence() {}

  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg fmadd(reg a, reg b, reg c) { return a * b + c; }  // not fused (-ffp-contract=off)
  static constexpr bool unfused_fma = true;  // FusedFma (simd_loops.h)
  static reg max(reg a, reg b) { return a > b ? a : b; }       // b on NaN, like x86
  static reg min(reg a, reg b) { return a < b ? a : b; }
  // Round to nearest even by the 1.5*2^52 trick; exact for |a| < 2^51.
  static reg round(reg a) {
    const double magic = 6755399441055744.0;  // no -ffast-math: (a+m)-m is kept
    return (a + magic) - magic;
  }
  static reg pow2(reg k) {  // integer k in [-1022, 1023]
    const uint64_t bits = static_cast<uint64_t>(static_cast<int64_t>(k) + 1023) << 52;
    double r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
  }
  static reg scale2(reg m, reg k) {
    k = min(max(k, -2044.0), 2046.0);
    const double half = static_cast<double>(static_cast<int64_t>(k >= 0 ? k * 0.5 : -((-k + 1) * 0.5)));
    return m * pow2(half) * pow2(k - half);
  }
  static reg scale2_acc(reg m, reg k) { return scale2(m, k); }
  static reg scale2_term(reg m, reg k) { return scale2(m, k); }
  static reg reduce_ln2(reg x, reg n) {
    using C = ExpCoeffs<double>;
    return (x - n * C::ln2_hi31) - n * C::ln2_lo31;
  }

  static mask none() { return false; }
  static mask unord(reg a) { return a != a; }
  static mask nonzero(reg a) { return !(a == 0.0); }
  static mask notfinite(reg a) { return !(a - a == 0.0); }
  static mask negative_or_notfinite(reg a) { return !(a >= 0.0 && a - a == 0.0); }  // -0 counts as >= 0
  static mask gt(reg a, reg b) { return a > b; }
  static mask not_le(reg a, reg b) { return !(a <= b); }
  static mask mask_or(mask a, mask b) { return a || b; }
  static bool any(mask m) { return m; }
  static reg select(mask m, reg if_true, reg if_false) { return m ? if_true : if_false; }
  static double hmax(reg a) { return a; }
  static double hsum(reg a) { return a; }
  static void to_array(reg a, double* out) { out[0] = a; }
};

}  // namespace scalar
}  // namespace ssm
