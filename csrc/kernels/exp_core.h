// exp(x) = m * 2^n, the representation every kernel sums and writes:
// n = round(x log2 e), m = p(x - n ln2) in [2^-1/2, 2^1/2] (the polynomials
// are in vecmath_common.h). Sums of such terms are kept as (m, n) pairs:
// adding m' 2^n' rescales by exact powers of two, so a sum never overflows
// and needs no max pass. Relative to a reference c (a row's max, for the
// three-pass and online algorithms, or for rows outside the fast range),
// x - c is formed exactly with TwoSum and its rounding error joins the
// reduced argument: the loss SciPy and torch take on x - max (up to
// |x - max| 2^-24) is gone. (Dukhan & Ablavatski 2020, arXiv:2001.04438.)
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace (and include its vecmath_<isa>.h) first"
#endif
#pragma once

#include "simd_loops.h"

namespace ssm {
namespace SSM_ISA {
namespace {

template <class V, class C = ExpCoeffs<typename V::scalar>>
inline Reg<V> exp_poly(Reg<V> r) {
  Reg<V> p = V::set1(C::c[C::degree]);
  for (int k = C::degree - 1; k >= 0; --k) p = V::fmadd(p, r, V::set1(C::c[k]));
  return p;
}

// exp(x) = m * 2^n for x in [kClampLow, ~kFastLimit].
template <class V, class C = ExpCoeffs<typename V::scalar>>
inline void exp_split(Reg<V> x, Reg<V>& m, Reg<V>& n) {
  n = V::round(V::mul(x, V::set1(C::log2e)));
  m = exp_poly<V, C>(V::reduce_ln2(x, n));
}

// exp(x - ref) = m * 2^n with x - ref formed exactly: TwoSum gives
// x - ref = d + err, and err joins the reduced argument. NaN differences
// (-inf - -inf) and anything below kClampLow become kClampLow: 0 in the end.
template <class V>
inline void exp_split_diff(Reg<V> x, Reg<V> ref, Reg<V>& m, Reg<V>& n) {
  using C = ExpCoeffs<typename V::scalar>;
  const Reg<V> d = V::sub(x, ref);
  const Reg<V> bb = V::sub(d, x);
  Reg<V> err = V::sub(V::sub(x, V::sub(d, bb)), V::add(ref, bb));
  err = V::min(V::max(err, V::set1(-1.0)), V::set1(1.0));  // NaN -> -1, only where d is clamped
  const Reg<V> dc = V::max(d, V::set1(kClampLow));
  n = V::round(V::mul(dc, V::set1(C::log2e)));
  m = exp_poly<V>(V::add(V::reduce_ln2(dc, n), err));
}

// A Kahan-compensated sum of m * 2^n terms, one per lane. Exact: scale with
// scale2 rather than scale2_acc, whose flush-to-zero shortcut on AVX2 differs
// from AVX-512's scalef in the last bits (needed where sums must be
// bit-identical across kernel sets: gumbel_softmax).
template <class V, bool Exact = false>
struct ExpAcc {
  Reg<V> s, c, e;
  static Reg<V> scale(Reg<V> m, Reg<V> k) { return Exact ? V::scale2(m, k) : V::scale2_acc(m, k); }
  void init() {
    s = c = V::set1(0.0);
    e = V::set1(kEmptyExp);
  }
  void add(Reg<V> m, Reg<V> n) {
    const Reg<V> emax = V::max(n, e);
    const Reg<V> shift = V::sub(e, emax);
    s = scale(s, shift);
    c = scale(c, shift);
    const Reg<V> y = V::sub(scale(m, V::sub(n, emax)), c);
    const Reg<V> t = V::add(s, y);
    c = V::sub(V::sub(t, s), y);
    s = t;
    e = emax;
  }
};

// A compensated (double-double) scalar sum for combining lanes.
struct DoubleDouble {
  double hi = 0.0, lo = 0.0;
  void add(double a) {
    const double s = hi + a;
    const double bb = s - hi;
    lo += (hi - (s - bb)) + (a - bb);
    hi = s;
  }
  double value() const { return hi + lo; }
  void store(ExpSum& out) const {
    out.m = hi + lo;
    out.m_lo = lo - (out.m - hi);
  }
};

// 2^k for integer k in [-1022, 1023], built in the exponent field.
inline double pow2_int(int k) {
  const uint64_t bits = static_cast<uint64_t>(k + 1023) << 52;
  double r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}

// Lane sums (s - c) * 2^e of U accumulators -> one ExpSum (m, e).
template <class V, int U>
inline void finish(const ExpAcc<V> (&acc)[U], ExpSum& out) {
  constexpr size_t W = V::width;
  double s[U * W], c[U * W], e[U * W];
  for (int u = 0; u < U; ++u) {
    V::to_array(acc[u].s, s + u * W);
    V::to_array(acc[u].c, c + u * W);
    V::to_array(acc[u].e, e + u * W);
  }
  double emax = kEmptyExp;
  for (size_t i = 0; i < U * W; ++i) emax = e[i] > emax ? e[i] : emax;
  DoubleDouble sum;
  for (size_t i = 0; i < U * W; ++i) {
    const double k = e[i] - emax;
    // Negligible lanes are skipped, but a NaN or inf lane must poison the sum.
    if (k < -1100.0 && std::isfinite(s[i] - c[i])) continue;
    if (k < -1100.0) {
      sum.add(s[i] - c[i]);
      continue;
    }
    if (k >= -1000.0) {
      // An exact power-of-two multiply: std::ldexp is a library call, and
      // this runs for every lane of every row and chunk.
      const double f = pow2_int(static_cast<int>(k));
      sum.add(s[i] * f);
      sum.add(-(c[i] * f));
    } else {
      sum.add(std::ldexp(s[i], static_cast<int>(k)));
      sum.add(-std::ldexp(c[i], static_cast<int>(k)));
    }
  }
  sum.store(out);
  out.e = emax;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
