// The softmax family's kernels, written once over a lane type V (see
// vecmath_<isa>.h) and compiled once per instruction set. The including
// translation unit defines SSM_ISA (the ISA's namespace) and includes its
// vecmath header first; everything here lands in ssm::SSM_ISA, in an
// anonymous namespace, so code compiled with AVX flags never leaks into the
// baseline code through a shared inline symbol (ODR).
//
// Algorithms (Dukhan & Ablavatski 2020, arXiv:2001.04438; Milakov &
// Gimelshein 2018, arXiv:1805.02867):
//  * exp(x) = m * 2^n, n = round(x*log2 e), m = p(x - n ln2) in [2^-1/2, 2^1/2].
//    Sums are kept as (m, n) pairs: adding m'*2^n' rescales by exact powers of
//    two, so the sum never overflows and needs no max pass (two-pass).
//  * Relative to a reference c (the max, for the three-pass and online
//    algorithms, or for rows outside the fast range) x - c is formed exactly
//    with TwoSum and its rounding error is added back to the reduced argument:
//    the loss SciPy and torch take on x - max (up to |x-max|*2^-24) is gone.
//  * Every per-lane sum is Kahan-compensated, so long rows stay within ~2 ulp.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace before including softmax_generic.h"
#endif

#include <cmath>
#include <limits>

#include "kernel_api.h"

namespace ssm {
namespace SSM_ISA {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Initial exponent of an empty accumulator: far below any real n (|n| < 2^22),
// and exact in float.
constexpr double kEmptyExp = -16777216.0;

template <class V>
using Reg = typename V::reg;

template <class V>
inline Reg<V> exp_poly(Reg<V> r) {
  using C = ExpCoeffs<typename V::scalar>;
  Reg<V> p = V::set1(C::c[C::degree]);
  for (int k = C::degree - 1; k >= 0; --k) p = V::fmadd(p, r, V::set1(C::c[k]));
  return p;
}

// exp(x) = m * 2^n for x in [kClampLow, ~kFastLimit].
template <class V>
inline void exp_split(Reg<V> x, Reg<V>& m, Reg<V>& n) {
  using C = ExpCoeffs<typename V::scalar>;
  n = V::round(V::mul(x, V::set1(C::log2e)));
  m = exp_poly<V>(V::reduce_ln2(x, n));
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

// A Kahan-compensated sum of m * 2^n terms, one per lane.
template <class V>
struct ExpAcc {
  Reg<V> s, c, e;
  void init() {
    s = c = V::set1(0.0);
    e = V::set1(kEmptyExp);
  }
  void add(Reg<V> m, Reg<V> n) {
    const Reg<V> emax = V::max(n, e);
    const Reg<V> shift = V::sub(e, emax);
    s = V::scale2_acc(s, shift);
    c = V::scale2_acc(c, shift);
    const Reg<V> y = V::sub(V::scale2_acc(m, V::sub(n, emax)), c);
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
    if (k < -1100.0) continue;
    sum.add(std::ldexp(s[i], static_cast<int>(k)));
    sum.add(-std::ldexp(c[i], static_cast<int>(k)));
  }
  sum.store(out);
  out.e = emax;
}

// Drive body(offset, count, unroll_slot) over [0, n): U full vectors per step
// (independent accumulators hide latency), then single vectors, then one
// masked tail. count == V::width on the full paths, so the loads fold.
template <class V, int U, class Body>
inline void for_each_block(size_t n, Body&& body) {
  constexpr size_t W = V::width;
  size_t i = 0;
  for (; i + U * W <= n; i += U * W) {
#if defined(__GNUC__)
#pragma GCC unroll 8
#endif
    for (int u = 0; u < U; ++u) body(i + u * W, W, u);
  }
  for (; i + W <= n; i += W) body(i, W, 0);
  if (i < n) body(i, n - i, 0);
}

template <class V, class In>
inline Reg<V> load_n(const In* p, size_t count, double fill) {
  return count == V::width ? V::load(p) : V::load_tail(p, count, fill);
}

template <class V, class Out>
inline void store_n(Out* p, Reg<V> v, size_t count) {
  if (count == V::width)
    V::store(p, v);
  else
    V::store_tail(p, v, count);
}

constexpr int kUnroll = 4;

// sum exp(x - ref) (or sum b*exp(x - ref)); Exact: form x - ref exactly.
template <class V, bool Exact, bool Weighted, class In>
ExpSum expsum_impl(const In* x, const In* b, size_t n, double ref) {
  ExpAcc<V> acc[kUnroll];
  for (auto& a : acc) a.init();
  Reg<V> vmax = V::set1(-kInf);
  typename V::mask special = V::none();
  const Reg<V> vref = V::set1(ref);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    Reg<V> xv = load_n<V>(x + i, count, -kInf);
    Reg<V> bv;
    if (Weighted) {
      // A zero weight removes its term entirely, even an inf or NaN x (SciPy).
      bv = load_n<V>(b + i, count, 0.0);
      xv = V::select(V::nonzero(bv), xv, V::set1(-kInf));
      special = V::mask_or(special, V::notfinite(bv));
    }
    special = V::mask_or(special, V::unord(xv));
    vmax = V::max(xv, vmax);
    Reg<V> m, k;
    if (Exact)
      exp_split_diff<V>(xv, vref, m, k);
    else
      exp_split<V>(V::max(xv, V::set1(kClampLow)), m, k);
    if (Weighted) m = V::mul(m, bv);
    acc[u].add(m, k);
  });
  ExpSum out;
  finish<V, kUnroll>(acc, out);
  out.max = V::hmax(vmax);
  out.special = V::any(special);
  return out;
}

template <class V, class In>
ExpSum expsum(const In* x, size_t n, double ref, bool exact) {
  return exact ? expsum_impl<V, true, false>(x, static_cast<const In*>(nullptr), n, ref)
               : expsum_impl<V, false, false>(x, static_cast<const In*>(nullptr), n, ref);
}

template <class V, class In>
ExpSum expsum_wide(const In* x, const In* b, size_t n, double ref, bool exact) {
  if (b) return exact ? expsum_impl<V, true, true>(x, b, n, ref) : expsum_impl<V, false, true>(x, b, n, ref);
  return exact ? expsum_impl<V, true, false>(x, b, n, ref) : expsum_impl<V, false, false>(x, b, n, ref);
}

// exp(a - b) in double with a - b formed exactly (lane combination only).
inline double exp_diff_scalar(double a, double b) {
  const double d = a - b;
  if (!(d > -1000.0)) return 0.0;  // also -inf - x and differences that overflow
  const double bb = d - a;
  const double err = (a - (d - bb)) - (b + bb);
  return std::exp(d) * (1.0 + err);
}

template <class V, bool Weighted, class In>
ExpSum expsum_online_impl(const In* x, const In* b, size_t n) {
  constexpr size_t W = V::width;
  Reg<V> runmax[kUnroll], s[kUnroll], c[kUnroll];
  for (int u = 0; u < kUnroll; ++u) {
    runmax[u] = V::set1(-kInf);
    s[u] = c[u] = V::set1(0.0);
  }
  typename V::mask special = V::none();
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    Reg<V> xv = load_n<V>(x + i, count, -kInf);
    Reg<V> bv;
    if (Weighted) {
      bv = load_n<V>(b + i, count, 0.0);
      xv = V::select(V::nonzero(bv), xv, V::set1(-kInf));  // a zero weight removes the term (SciPy)
      special = V::mask_or(special, V::notfinite(bv));
    }
    special = V::mask_or(special, V::unord(xv));
    const Reg<V> newmax = V::max(xv, runmax[u]);
    Reg<V> m, k;
    // The running max rarely moves once warmed up: rescale only when it does.
    const bool moved = V::any(V::gt(newmax, runmax[u]));
    if (moved) {
      exp_split_diff<V>(runmax[u], newmax, m, k);
      const Reg<V> f = V::scale2_acc(m, k);
      s[u] = V::mul(s[u], f);
      c[u] = V::mul(c[u], f);
      runmax[u] = newmax;
    }
    exp_split_diff<V>(xv, runmax[u], m, k);
    Reg<V> term = V::scale2_acc(m, k);
    if (Weighted) term = V::mul(term, bv);
    const Reg<V> y = V::sub(term, c[u]);
    const Reg<V> t = V::add(s[u], y);
    if (Weighted || moved) {
      // The cheap compensation below (Fast2Sum) is exact only while |s| >= |y|.
      // That fails right after a rescale, where s has shrunk below the new
      // max's own term 1, and for arbitrary weights; the lost low part is what
      // log1p(S - 1) needs near 0 (log_softmax of a dominant entry). Take the
      // exact TwoSum error on those (rare or weighted) steps.
      const Reg<V> bb = V::sub(t, s[u]);
      c[u] = V::add(V::sub(V::sub(t, bb), s[u]), V::sub(bb, y));
    } else {
      c[u] = V::sub(V::sub(t, s[u]), y);
    }
    s[u] = t;
  });
  double lm[kUnroll * W], ls[kUnroll * W], lc[kUnroll * W];
  for (int u = 0; u < kUnroll; ++u) {
    V::to_array(runmax[u], lm + u * W);
    V::to_array(s[u], ls + u * W);
    V::to_array(c[u], lc + u * W);
  }
  double gmax = -kInf;
  for (double v : lm) gmax = v > gmax ? v : gmax;
  DoubleDouble sum;
  for (size_t i = 0; i < kUnroll * W; ++i) {
    const double f = exp_diff_scalar(lm[i], gmax);
    sum.add(ls[i] * f);
    sum.add(-lc[i] * f);
  }
  ExpSum out;
  sum.store(out);
  out.e = 0.0;
  out.max = gmax;
  out.special = V::any(special);
  return out;
}

template <class V, class In>
ExpSum expsum_online(const In* x, size_t n) {
  return expsum_online_impl<V, false>(x, static_cast<const In*>(nullptr), n);
}

template <class V, class In>
ExpSum expsum_online_wide(const In* x, const In* b, size_t n) {
  return b ? expsum_online_impl<V, true>(x, b, n) : expsum_online_impl<V, false>(x, b, n);
}

template <class V, class In>
ExpSum max_scan(const In* x, size_t n) {
  Reg<V> vmax[kUnroll];
  for (auto& v : vmax) v = V::set1(-kInf);
  typename V::mask special = V::none();
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    const Reg<V> xv = load_n<V>(x + i, count, -kInf);
    special = V::mask_or(special, V::unord(xv));
    vmax[u] = V::max(xv, vmax[u]);
  });
  for (int u = 1; u < kUnroll; ++u) vmax[0] = V::max(vmax[u], vmax[0]);
  ExpSum out;
  out.max = V::hmax(vmax[0]);
  out.special = V::any(special);
  return out;
}

// y = exp(x - ref), and the (compensated) sum of the stored values.
template <class V, class In>
ExpSum expsum_store(const In* x, In* y, size_t n, double ref) {
  Reg<V> s[kUnroll], c[kUnroll];
  for (int u = 0; u < kUnroll; ++u) s[u] = c[u] = V::set1(0.0);
  const Reg<V> vref = V::set1(ref);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    Reg<V> m, k;
    exp_split_diff<V>(load_n<V>(x + i, count, -kInf), vref, m, k);
    const Reg<V> v = V::scale2(m, k);
    store_n<V>(y + i, v, count);
    const Reg<V> t0 = V::sub(v, c[u]);
    const Reg<V> t = V::add(s[u], t0);
    c[u] = V::sub(V::sub(t, s[u]), t0);
    s[u] = t;
  });
  DoubleDouble sum;
  for (int u = 0; u < kUnroll; ++u) {
    double ls[V::width], lc[V::width];
    V::to_array(s[u], ls);
    V::to_array(c[u], lc);
    for (size_t i = 0; i < V::width; ++i) {
      sum.add(ls[i]);
      sum.add(-lc[i]);
    }
  }
  ExpSum out;
  out.m = sum.value();
  out.e = 0.0;
  return out;
}

template <class V, class In>
void scale(In* y, size_t n, double factor) {
  const Reg<V> f = V::set1(factor);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE {
    store_n<V>(y + i, V::mul(load_n<V>(y + i, count, 0.0), f), count);
  });
}

// y = exp(x - ref) * 2^-e * inv, as scale2(m * inv, n - e): one rounding for
// the product, the power of two is exact.
template <class V, bool Exact, class In>
void write_exp_impl(const In* x, In* y, size_t n, double ref, double e, double inv) {
  const Reg<V> vref = V::set1(ref), ve = V::set1(e), vinv = V::set1(inv);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE {
    const Reg<V> xv = load_n<V>(x + i, count, -kInf);
    Reg<V> m, k;
    if (Exact)
      exp_split_diff<V>(xv, vref, m, k);
    else
      exp_split<V>(V::max(xv, V::set1(kClampLow)), m, k);
    store_n<V>(y + i, V::scale2(V::mul(m, vinv), V::sub(k, ve)), count);
  });
}

template <class V, class In>
void write_exp(const In* x, In* y, size_t n, double ref, bool exact, double e, double inv) {
  if (exact)
    write_exp_impl<V, true>(x, y, n, ref, e, inv);
  else
    write_exp_impl<V, false>(x, y, n, ref, e, inv);
}

template <class V, class In>
void write_shift(const In* x, In* y, size_t n, double hi, double lo) {
  const Reg<V> vhi = V::set1(hi), vlo = V::set1(lo);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE {
    store_n<V>(y + i, V::sub(V::sub(load_n<V>(x + i, count, 0.0), vhi), vlo), count);
  });
}

template <class V, class In>
void vexp(const In* x, In* y, size_t n) {
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE {
    const Reg<V> xv = load_n<V>(x + i, count, 0.0);
    Reg<V> m, k;
    exp_split<V>(V::min(V::max(xv, V::set1(kClampLow)), V::set1(1000.0)), m, k);
    store_n<V>(y + i, V::select(V::unord(xv), xv, V::scale2(m, k)), count);
  });
}

template <class V, class In>
double probe_read(const In* x, size_t n) {
  Reg<V> s[kUnroll];
  for (auto& v : s) v = V::set1(0.0);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE { s[u] = V::add(s[u], load_n<V>(x + i, count, 0.0)); });
  double total = 0.0;
  for (auto& v : s) total += V::hsum(v);
  return total;
}

template <class V, class In>
void probe_copy(const In* x, In* y, size_t n) {
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE { store_n<V>(y + i, load_n<V>(x + i, count, 0.0), count); });
}

template <class V, class In>
void probe_fill(In* y, size_t n, double value) {
  const Reg<V> v = V::set1(value);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE { store_n<V>(y + i, v, count); });
}

// VN: lane type for the data's own precision; VW: float64 lanes (log-sum-exp).
template <class VN, class VW, class T>
Kernels<T> make_kernels() {
  Kernels<T> k;
  k.expsum = &expsum<VN, T>;
  k.expsum_online = &expsum_online<VN, T>;
  k.max_scan = &max_scan<VN, T>;
  k.expsum_store = &expsum_store<VN, T>;
  k.scale = &scale<VN, T>;
  k.write_exp = &write_exp<VN, T>;
  k.write_shift = &write_shift<VN, T>;
  k.expsum_wide = &expsum_wide<VW, T>;
  k.expsum_online_wide = &expsum_online_wide<VW, T>;
  k.vexp = &vexp<VN, T>;
  k.probe_read = &probe_read<VN, T>;
  k.probe_copy = &probe_copy<VN, T>;
  k.probe_fill = &probe_fill<VN, T>;
  return k;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
