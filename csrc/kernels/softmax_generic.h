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
//  * The fast passes (two-pass pass 1, the pow2-referenced three-pass sums)
//    keep each lane's terms relative to a lane exponent e that only moves up,
//    and only when a block of terms would overflow: a term then costs an exp,
//    a subtraction, a scalef and an add. Blocks of U x B terms are summed
//    plainly (B per chain, U chains added as a tree) and folded into a
//    Kahan-compensated lane sum, so the sum's rounding error stays below
//    (B - 1 + log2 U + 2) ulp however long the row. No max and no NaN test:
//    NaN and +inf propagate into the sum, out-of-range rows show in e.
//  * The exact passes (rows outside the fast range, log_softmax, the accurate
//    log-sum-exp) keep every per-lane sum Kahan-compensated term by term.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace before including softmax_generic.h"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <limits>

#include "kernel_api.h"

// Stage-wise loops over the U vectors of a block must be fully unrolled
// (their registers are the point).
#if defined(__GNUC__) || defined(__clang__)
#define SSM_UNROLL _Pragma("GCC unroll 16")
#else
#define SSM_UNROLL
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#if defined(_M_X64) || defined(_M_IX86)
#include <xmmintrin.h>
#define SSM_PREFETCH(p) _mm_prefetch(p, _MM_HINT_T0)
#else
#define SSM_PREFETCH(p) ((void)(p))
#endif
#else
#define SSM_PREFETCH(p) __builtin_prefetch(p, 0, 3)
#endif

namespace ssm {
namespace SSM_ISA {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Initial exponent of an empty accumulator: far below any real n (|n| < 2^22),
// and exact in float.
constexpr double kEmptyExp = -16777216.0;

template <class V>
using Reg = typename V::reg;

// Does the lane type have the 16-entry exp table (ExpTable16)?
template <class V, class = void>
struct HasExpTable : std::false_type {};
template <class V>
struct HasExpTable<V, std::void_t<decltype(V::has_exp_table)>> : std::bool_constant<V::has_exp_table> {};

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

// Touch the Bytes bytes at p (one prefetch per cache line) for the cache,
// so that more lines are in flight than the out-of-order window alone
// would request while it is busy with the exp arithmetic.
template <size_t Bytes, class T>
inline void prefetch_block(const T* p) {
  const char* c = reinterpret_cast<const char*>(p);
  for (size_t b = 0; b < Bytes; b += 64) SSM_PREFETCH(c + b);
}

// Unroll of the simple streaming loops (probes, scale, the write passes):
// enough independent vectors in flight to cover the load latency.
constexpr int kUnroll = 4;

template <class S>
struct FastLimits;
// A block of terms is only accepted while its sum stays below 2^check_exp of
// the lane reference; a lane sum then stays below count * 2^check_exp, far
// from overflow for any chunk the driver passes (<= 2^24 elements).
template <>
struct FastLimits<float> {
  static constexpr double check = 18446744073709551616.0;  // 2^64
  static constexpr double unit = 0x1p-24;                  // unit roundoff
  static constexpr double exp_err = 3.0 * unit;            // ExpCoeffsFast: 2.75u relative
};
template <>
struct FastLimits<double> {
  static constexpr double check = 0x1p+512;
  static constexpr double unit = 0x1p-53;
  static constexpr double exp_err = 3.0 * unit;  // kernel exp: <= 1.25 ulp
};

constexpr int ceil_log2(int u) { return u <= 1 ? 0 : 1 + ceil_log2((u + 1) / 2); }

// Relative error bound of a fast sum: the terms' own error, B - 1 plain adds
// per chain, the tree over U chains, the Kahan fold and the lane combination.
template <class S, int U, int B, bool Table = false>
constexpr double fast_sum_err() {
  using L = FastLimits<S>;
  const double exp_err = Table ? 2.0 * L::unit : L::exp_err;  // ExpTable16: 1.6u (see vecmath_common.h)
  return 1.25 * (exp_err + (B - 1 + ceil_log2(U) + 3) * L::unit);
}

// Lane sum (s - c) * 2^e with Kahan compensation, folded once per block.
template <class V>
struct LaneSum {
  Reg<V> s, c, e;
  void fold(Reg<V> q) {
    const Reg<V> y = V::sub(q, c);
    const Reg<V> t = V::add(s, y);
    c = V::sub(V::sub(t, s), y);
    s = t;
  }
  // Move the reference up to enew >= e (per lane).
  void raise(Reg<V> enew) {
    const Reg<V> shift = V::sub(e, enew);
    s = V::scale2_acc(s, shift);
    c = V::scale2_acc(c, shift);
    e = enew;
  }
};

// x - n ln2 for the table exp. Exact (two fma, as reduce_ln2) or Short: one
// fma with L = ln2_hi, the double nearest ln2, which gives x - n ln2 + n d,
// d = ln2 - L = ln2_lo (2.3e-17), up to a rounding of a number below
// ln2/32. Every term then carries the factor exp(n d) (|n d| < 4e-11): a
// lane sum s 2^e is taken back by exp(-c d), c = e + log2(s) (short_shift),
// which leaves each term a factor exp((n - c) d). Terms are at most ~2^1.1
// of the sum (n <= c + 1.1), and N terms below it weigh w_i <= 2^(1 - (c - n_i)),
// so sum_i w_i (c - n_i) <= log2(N) + 1: the sum's relative error grows by at
// most (log2 N + 1.1) d, 4.6 * 2^-53 for N = 2^21 terms per lane (calls of up
// to 2^24 elements, the driver's limit). One fma fewer per vector on the
// multiply-add pipes, which bound pass 1 (10 -> 9 per vector on Zen 5).
template <class V, bool Short>
inline Reg<V> table_reduce(Reg<V> x, Reg<V> n) {
  if constexpr (Short)
    return V::fmadd(n, V::set1(-ExpCoeffs<double>::ln2_hi), x);
  else
    return V::reduce_ln2(x, n);
}

// (log2 N + 1.1) d for N = 2^21, in units of 2^-53 (see table_reduce).
constexpr double kShortReduceErr = 22.1 * ExpCoeffs<double>::ln2_lo / 0x1p-53;

// Lane sums of Short table terms: multiply s - c by exp(-c' d), c' = e +
// log2(s), by moving s * c' d into the compensation (s is unchanged).
inline double short_shift(double s, double e) {
  if (!(s > 0.0) || !std::isfinite(s)) return 0.0;
  return (e + std::ilogb(s)) * ExpCoeffs<double>::ln2_lo;
}

// exp(x) * 2^-e for the fast passes; n receives round(x * log2 e). The clamp
// is written max(low, x) so that a NaN x stays NaN (max returns its second
// operand on NaN) and poisons the sum instead of needing its own test.
// With the exp table, n is k/16 (a multiple of 1/16): scale2_term floors
// n - e, and e is always an integer, so the power of two is 2^(floor(n) - e).
// Short: the table's argument reduction in one fma (table_reduce).
template <class V, bool Short = false>
inline Reg<V> fast_term(Reg<V> x, Reg<V> e, Reg<V>& n) {
  Reg<V> m;
  x = V::max(V::set1(kClampLow), x);
  if constexpr (HasExpTable<V>::value) {
    using X = ExpTable16;
    const Reg<V> t = V::fmadd(x, V::set1(ExpCoeffs<double>::log2e), V::set1(X::magic));
    n = V::sub(t, V::set1(X::magic));
    // The table entry takes the power of two before the product (see fast_terms).
    const Reg<V> entry = V::exp_table(t, V::table_lo(), V::table_hi());
    return V::mul(exp_poly<V, X>(table_reduce<V, Short>(x, n)), V::scale2_term(entry, V::sub(n, e)));
  } else {
    exp_split<V, ExpCoeffsFast<typename V::scalar>>(x, m, n);
  }
  return V::scale2_term(m, V::sub(n, e));
}

// U consecutive full vectors of fast_term, written stage by stage: each
// term is a ~40-cycle dependency chain, and issuing the U chains side by
// side (instead of one after the other) lets the out-of-order core overlap
// them without needing a scheduler window of several whole chains.
// step: elements between the U vectors (V::width when contiguous, the row
// stride in the strided kernels).
template <class V, int U, bool Short = false, class In>
inline void fast_terms(const In* x, Reg<V> e, Reg<V> (&t)[U], size_t step = V::width) {
  Reg<V> r[U], n[U];
#define SSM_STAGE(stmt) \
  SSM_UNROLL for (int u = 0; u < U; ++u) { stmt; }
  SSM_STAGE(r[u] = V::max(V::set1(kClampLow), V::load(x + u * step)))
  if constexpr (HasExpTable<V>::value) {
    using X = ExpTable16;
    const Reg<V> lo = V::table_lo(), hi = V::table_hi();
    Reg<V> tab[U];
    SSM_STAGE(tab[u] = V::fmadd(r[u], V::set1(ExpCoeffs<double>::log2e), V::set1(X::magic)))
    SSM_STAGE(n[u] = V::sub(tab[u], V::set1(X::magic)))
    SSM_STAGE(r[u] = (table_reduce<V, Short>(r[u], n[u])))
    // 2^(frac) * 2^(floor(n) - e) before the polynomial rather than after:
    // the power of two is exact either way (terms below 2^-1022 of the lane
    // reference aside, which are negligible), and only r and the scaled
    // entry stay live across the polynomial, so U = 8 vectors fit the 32
    // registers (n and the entry were spilled to the stack).
    SSM_STAGE(tab[u] = V::scale2_term(V::exp_table(tab[u], lo, hi), V::sub(n[u], e)))
    SSM_STAGE(t[u] = V::fmadd(V::set1(X::c[X::degree]), r[u], V::set1(X::c[X::degree - 1])))
    for (int k = X::degree - 2; k >= 0; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(X::c[k])))
    SSM_STAGE(t[u] = V::mul(t[u], tab[u]))
  } else {
    using C = ExpCoeffsFast<typename V::scalar>;
    SSM_STAGE(n[u] = V::round(V::mul(r[u], V::set1(C::log2e))))
    SSM_STAGE(r[u] = V::reduce_ln2(r[u], n[u]))
    SSM_STAGE(t[u] = V::fmadd(V::set1(C::c[C::degree]), r[u], V::set1(C::c[C::degree - 1])))
    for (int k = C::degree - 2; k >= 0; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(C::c[k])))
    SSM_STAGE(t[u] = V::scale2_term(t[u], V::sub(n[u], e)))
  }
#undef SSM_STAGE
}

// exp(x) * 2^-e * inv for the written values (softmax's last pass,
// three-pass-reload's stored terms), one vector (one()) or U consecutive
// full vectors stage by stage like fast_terms (block()); both give the same
// bits for an element, so heads, tails and streamed bodies agree.
// Lane types with the exp table (AVX-512 float64) take ExpTable16 with inv
// folded into the table once per call, as a double-double h_j + l_j =
// 2^(j/16) * inv (to ~2^-100), and y = (h + (h q + l)) 2^(n - e) with
// q = p(r) - 1: one rounding where it matters, so below 1 ulp of exp
// (measured 0.62 ulp over 10^8 inputs; the degree-11 path 0.93-1.19). Degree 6 instead of 11 and
// no multiply by inv: 10 multiply-add-pipe operations per vector instead of
// 15; the reduction stays exact (two fma). Others: ExpCoeffs (degree 11 /
// float32 degree 6).
// ByInv = false: inv is 1 (three-pass-reload's stored terms, vexp) and its
// multiply, one of the ~10 multiply-add-pipe operations per vector on
// float32, is left out (multiplying by 1 is exact: the same bits).
template <class V, bool ByInv = true>
struct WriteExp {
  Reg<V> ve, vinv, h0, h1, l0, l1;
  WriteExp(double e, double inv) : ve(V::set1(e)), vinv(V::set1(inv)) {
    if constexpr (HasExpTable<V>::value) {
      alignas(64) double h[16], l[16];
      for (int j = 0; j < 16; ++j) {
        h[j] = ExpTable16::table[j] * inv;
        l[j] = std::fma(ExpTable16::table[j], inv, -h[j]) + ExpTable16::table_lo[j] * inv;
      }
      h0 = V::load(h);
      h1 = V::load(h + 8);
      l0 = V::load(l);
      l1 = V::load(l + 8);
    }
  }
  Reg<V> one(Reg<V> x) const {
    Reg<V> t[1] = {x};
    terms<1>(t);
    return t[0];
  }
  template <int U, class In>
  void block(const In* x, Reg<V> (&t)[U]) const {
    SSM_UNROLL for (int u = 0; u < U; ++u) t[u] = V::load(x + u * V::width);
    terms<U>(t);
  }
  // t[u] = exp(t[u]) * 2^-e * inv in place.
  template <int U>
  void terms(Reg<V> (&t)[U]) const {
    Reg<V> r[U], n[U];
#define SSM_STAGE(stmt) \
  SSM_UNROLL for (int u = 0; u < U; ++u) { stmt; }
    // max(low, x): a NaN x stays NaN (max returns its second operand on NaN),
    // so a NaN reaches the stored terms' sum (see expsum_store_pow2).
    SSM_STAGE(r[u] = V::max(V::set1(kClampLow), t[u]))
    if constexpr (HasExpTable<V>::value) {
      using X = ExpTable16;
      Reg<V> tab[U];
      SSM_STAGE(tab[u] = V::fmadd(r[u], V::set1(ExpCoeffs<double>::log2e), V::set1(X::magic)))
      SSM_STAGE(n[u] = V::sub(tab[u], V::set1(X::magic)))
      SSM_STAGE(r[u] = V::reduce_ln2(r[u], n[u]))
      Reg<V> low[U];
      SSM_STAGE(low[u] = V::exp_table(tab[u], l0, l1))
      SSM_STAGE(tab[u] = V::exp_table(tab[u], h0, h1))
      // q = p(r) - 1 = r (c1 + r (c2 + ...)); c0 = 1 is the h below.
      SSM_STAGE(t[u] = V::fmadd(V::set1(X::c[X::degree]), r[u], V::set1(X::c[X::degree - 1])))
      for (int k = X::degree - 2; k >= 1; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(X::c[k])))
      SSM_STAGE(t[u] = V::mul(t[u], r[u]))
      SSM_STAGE(t[u] = V::add(tab[u], V::fmadd(tab[u], t[u], low[u])))
      SSM_STAGE(t[u] = V::scale2(t[u], V::sub(n[u], ve)))
    } else {
      using C = ExpCoeffs<typename V::scalar>;
      SSM_STAGE(n[u] = V::round(V::mul(r[u], V::set1(C::log2e))))
      SSM_STAGE(r[u] = V::reduce_ln2(r[u], n[u]))
      SSM_STAGE(t[u] = V::fmadd(V::set1(C::c[C::degree]), r[u], V::set1(C::c[C::degree - 1])))
      for (int k = C::degree - 2; k >= 0; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(C::c[k])))
      if constexpr (ByInv) SSM_STAGE(t[u] = V::mul(t[u], vinv))
      SSM_STAGE(t[u] = V::scale2(t[u], V::sub(n[u], ve)))
    }
#undef SSM_STAGE
  }
};

// write_terms for the strided write pass: vector u has its own columns' e
// and inv (loaded from the per-column arrays at u * W).
template <class V, int U, class In>
inline void write_terms_cols(const In* x, const In* e, const In* inv, Reg<V> (&t)[U]) {
  using C = ExpCoeffs<typename V::scalar>;
  constexpr size_t W = V::width;
  Reg<V> r[U], n[U];
#define SSM_STAGE(stmt) \
  SSM_UNROLL for (int u = 0; u < U; ++u) { stmt; }
  SSM_STAGE(r[u] = V::max(V::load(x + u * W), V::set1(kClampLow)))
  SSM_STAGE(n[u] = V::round(V::mul(r[u], V::set1(C::log2e))))
  SSM_STAGE(r[u] = V::reduce_ln2(r[u], n[u]))
  SSM_STAGE(t[u] = V::fmadd(V::set1(C::c[C::degree]), r[u], V::set1(C::c[C::degree - 1])))
  for (int k = C::degree - 2; k >= 0; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(C::c[k])))
  SSM_STAGE(t[u] = V::scale2(V::mul(t[u], V::load(inv + u * W)), V::sub(n[u], V::load(e + u * W))))
#undef SSM_STAGE
}

// t[0] + ... + t[U-1] as a balanced tree, fully unrolled (a loop over the
// tree levels sends the partial sums through the stack).
template <class V, int Lo, int Hi>
inline Reg<V> tree_sum(const Reg<V>* t) {
  if constexpr (Hi - Lo == 1)
    return t[Lo];
  else
    return V::add(tree_sum<V, Lo, (Lo + Hi) / 2>(t), tree_sum<V, (Lo + Hi) / 2, Hi>(t));
}

// Lanes of one LaneSum -> ExpSum (m, e).
template <class V>
inline void finish_lanes(const LaneSum<V>& acc, ExpSum& out) {
  ExpAcc<V> a[1];
  a[0].s = acc.s;
  a[0].c = acc.c;
  a[0].e = acc.e;
  finish<V, 1>(a, out);
}

// The slow path of a block whose sum failed the overflow check: raise the
// lane references to the block's largest exponents, then sum it again.
template <class V, bool Short, class In>
#if defined(__GNUC__)
__attribute__((noinline))
#endif
Reg<V>
redo_block(const In* x, size_t count, LaneSum<V>& acc) {
  constexpr size_t W = V::width;
  Reg<V> nmax = V::set1(-kInf), n;
  for (size_t i = 0; i < count; i += W) {
    fast_term<V, Short>(load_n<V>(x + i, count - i < W ? count - i : W, -kInf), acc.e, n);
    nmax = V::max(n, nmax);  // NaN n ignored
  }
  acc.raise(V::round(V::max(nmax, acc.e)));  // references stay integers
  Reg<V> q = V::set1(0.0);
  for (size_t i = 0; i < count; i += W)
    q = V::add(q, fast_term<V, Short>(load_n<V>(x + i, count - i < W ? count - i : W, -kInf), acc.e, n));
  return q;
}

// sum exp(x) = m * 2^e. Lazy: the lane references start at the first
// vector's exponents and move up only when a block overflows the check;
// otherwise they are the fixed e_ref and no check is made (terms <= 2^1).
template <class V, int U, int B, bool Lazy, class In>
ExpSum expsum_pow2_impl(const In* x, size_t n, double e_ref) {
  constexpr size_t W = V::width;
  constexpr size_t kBlock = U * B * W;
  // The contiguous fast sums take the one-fma reduction (table_reduce);
  // the strided ones keep the exact one (their columns have no 2^24 bound).
  constexpr bool kShort = HasExpTable<V>::value;
  LaneSum<V> acc;
  acc.s = acc.c = V::set1(0.0);
  Reg<V> nv;
  if (Lazy) {
    fast_term<V>(load_n<V>(x, n < W ? n : W, -kInf), V::set1(0.0), nv);
    acc.e = V::round(V::max(nv, V::set1(kEmptyExp)));  // integer; a NaN lane starts empty
  } else {
    acc.e = V::set1(e_ref);
  }
  const Reg<V> limit = V::set1(FastLimits<typename V::scalar>::check);
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    if (ahead) prefetch_block<kBlock * sizeof(In)>(x + i + ahead);
    Reg<V> p[U];
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
    for (int b = 0; b < B; ++b) {
      Reg<V> t[U];
      fast_terms<V, U, kShort>(x + i + b * U * W, acc.e, t);
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
      for (int u = 0; u < U; ++u) p[u] = b == 0 ? t[u] : V::add(p[u], t[u]);
    }
    Reg<V> q = tree_sum<V, 0, U>(p);
    if (Lazy && V::any(V::not_le(q, limit))) q = redo_block<V, kShort>(x + i, kBlock, acc);
    acc.fold(q);
  }
  for (; i < n; i += W) {
    const size_t count = n - i < W ? n - i : W;
    Reg<V> q = fast_term<V, kShort>(load_n<V>(x + i, count, -kInf), acc.e, nv);
    if (Lazy && V::any(V::not_le(q, limit))) q = redo_block<V, kShort>(x + i, count, acc);
    acc.fold(q);
  }
  if constexpr (kShort) {
    constexpr size_t Wd = V::width;
    double ls[Wd], lc[Wd], le[Wd];
    V::to_array(acc.s, ls);
    V::to_array(acc.c, lc);
    V::to_array(acc.e, le);
    for (size_t l = 0; l < Wd; ++l) lc[l] += ls[l] * short_shift(ls[l], le[l]);
    acc.c = V::load(lc);
  }
  ExpSum out;
  finish_lanes<V>(acc, out);
  out.err = fast_sum_err<typename V::scalar, U, B, HasExpTable<V>::value>() +
            (kShort ? 1.25 * kShortReduceErr * FastLimits<typename V::scalar>::unit : 0.0);
  return out;
}

template <class V, int U, int B, class In>
ExpSum expsum_fast(const In* x, size_t n) {
  return expsum_pow2_impl<V, U, B, true>(x, n, 0.0);
}

template <class V, int U, int B, class In>
ExpSum expsum_pow2(const In* x, size_t n, double e_ref) {
  return expsum_pow2_impl<V, U, B, false>(x, n, e_ref);
}

// Store loop: y[i] = value(i, count) over [0, n). Streaming: a head up to the
// first stream_align boundary of y, aligned non-temporal stores, a masked
// tail, then a store fence so the data is globally visible before the caller
// (or another thread) reads it.
template <class V, bool Stream, class Out, class Fn>
inline void store_loop(Out* y, size_t n, Fn&& value) {
  constexpr size_t W = V::width;
  if constexpr (Stream && V::stream_align != 0) {
    static_assert(W * sizeof(Out) == V::stream_align, "one vector per aligned store");
    const uintptr_t addr = reinterpret_cast<uintptr_t>(y);
    if (addr % sizeof(Out) == 0) {
      size_t i = (V::stream_align - addr % V::stream_align) % V::stream_align / sizeof(Out);
      if (i > n) i = n;
      if (i) store_n<V>(y, value(size_t(0), i), i);
      for (; i + kUnroll * W <= n; i += kUnroll * W)
        for (int u = 0; u < kUnroll; ++u) V::stream(y + i + u * W, value(i + u * W, W));
      for (; i + W <= n; i += W) V::stream(y + i, value(i, W));
      if (i < n) store_n<V>(y + i, value(i, n - i), n - i);
      V::fence();
      return;
    }
  }
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE { store_n<V>(y + i, value(i, count), count); });
}

// store_loop with the full unrolled steps computed by block(i, v[U]) (stage
// by stage) and heads, single vectors and tails by value(i, count).
// Fence = false leaves the store fence to the caller (one per call, not one
// per row: each sfence waits for the write-combining buffers to drain).
template <class V, int U, bool Stream, bool Fence = true, class Out, class Fn, class Block>
inline void store_loop_blocks(Out* y, size_t n, Fn&& value, Block&& block) {
  constexpr size_t W = V::width;
  size_t i = 0;
  bool stream = false;
  if constexpr (Stream && V::stream_align != 0) {
    static_assert(W * sizeof(Out) == V::stream_align, "one vector per aligned store");
    const uintptr_t addr = reinterpret_cast<uintptr_t>(y);
    if (addr % sizeof(Out) == 0) {
      stream = true;
      i = (V::stream_align - addr % V::stream_align) % V::stream_align / sizeof(Out);
      if (i > n) i = n;
      if (i) store_n<V>(y, value(size_t(0), i), i);
    }
  }
  for (; i + U * W <= n; i += U * W) {
    Reg<V> v[U];
    block(i, v);
    for (int u = 0; u < U; ++u) {
      if (stream)
        V::stream(y + i + u * W, v[u]);
      else
        V::store(y + i + u * W, v[u]);
    }
  }
  for (; i + W <= n; i += W) {
    if (stream)
      V::stream(y + i, value(i, W));
    else
      V::store(y + i, value(i, W));
  }
  if (i < n) store_n<V>(y + i, value(i, n - i), n - i);
  if (Fence && stream) V::fence();
}

template <class V, class Out, class Fn>
inline void store_loop(bool stream, Out* y, size_t n, Fn&& value) {
  if (stream)
    store_loop<V, true>(y, n, value);
  else
    store_loop<V, false>(y, n, value);
}

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
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    if (ahead && u == 0) prefetch_block<kUnroll * V::width * sizeof(In)>(x + i + ahead);
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

// One NaN flag per accumulator: a single flag would chain every vector's
// mask-or behind the previous one.
template <class V, class In>
ExpSum max_scan(const In* x, size_t n) {
  Reg<V> vmax[kUnroll];
  typename V::mask special[kUnroll];
  for (int u = 0; u < kUnroll; ++u) {
    vmax[u] = V::set1(-kInf);
    special[u] = V::none();
  }
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    if (ahead && u == 0) prefetch_block<kUnroll * V::width * sizeof(In)>(x + i + ahead);
    const Reg<V> xv = load_n<V>(x + i, count, -kInf);
    special[u] = V::mask_or(special[u], V::unord(xv));
    vmax[u] = V::max(xv, vmax[u]);
  });
  for (int u = 1; u < kUnroll; ++u) {
    vmax[0] = V::max(vmax[u], vmax[0]);
    special[0] = V::mask_or(special[u], special[0]);
  }
  ExpSum out;
  out.max = V::hmax(vmax[0]);
  out.special = V::any(special[0]);
  return out;
}

// y = exp(x) * 2^-e_ref as m * 2^(n - e_ref) (no x - max rounding at all),
// and the sum of the stored values: blocks of U x B summed plainly, folded
// into a Kahan lane sum, like the fast passes.
// e_ref may be a guess below round(max * log2 e) (the driver's reload without
// a max pass): the terms are then larger by an exact power of two. A block
// whose sum exceeds 2^100 or is NaN (a NaN x, +inf, or a guess far below the
// max) ends the pass early with m = NaN, y partly written; with e_ref from
// the max the terms are below 2^1 and this never happens.
template <class V, int U, int B, class In>
ExpSum expsum_store_pow2(const In* x, In* y, size_t n, double e_ref) {
  constexpr size_t W = V::width;
  LaneSum<V> acc;
  acc.s = acc.c = V::set1(0.0);
  acc.e = V::set1(0.0);
  const WriteExp<V, false> wexp(e_ref, 1.0);
  const Reg<V> limit = V::set1(0x1p+100);
  ExpSum out;
  out.e = 0.0;  // all lane references are 0
  out.m = std::numeric_limits<double>::quiet_NaN();
  auto value = [&](size_t i, size_t count) SSM_INLINE { return wexp.one(load_n<V>(x + i, count, -kInf)); };
  size_t i = 0;
  constexpr size_t kBlock = U * B * W;
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  for (; i + kBlock <= n; i += kBlock) {
    if (ahead) prefetch_block<kBlock * sizeof(In)>(x + i + ahead);
    Reg<V> p[U];
    for (int b = 0; b < B; ++b) {
      Reg<V> v[U];
      wexp.template block<U>(x + i + b * U * W, v);
      for (int u = 0; u < U; ++u) {
        V::store(y + i + (b * U + u) * W, v[u]);
        p[u] = b == 0 ? v[u] : V::add(p[u], v[u]);
      }
    }
    const Reg<V> q = tree_sum<V, 0, U>(p);
    if (V::any(V::not_le(q, limit))) return out;
    acc.fold(q);
  }
  for (; i < n; i += W) {
    const size_t count = n - i < W ? n - i : W;
    const Reg<V> v = value(i, count);  // masked-off lanes: exp(clamp) * 2^-e_ref = 0
    if (V::any(V::not_le(v, limit))) return out;
    store_n<V>(y + i, v, count);
    acc.fold(v);
  }
  finish_lanes<V>(acc, out);
  out.e = 0.0;
  return out;
}

// y = exp(x - ref) with x - ref exact, and the (compensated) sum of the
// stored values (rows outside the fast range).
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
void scale(In* y, size_t n, double factor, bool stream) {
  const Reg<V> f = V::set1(factor);
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  store_loop<V>(stream, y, n, [&](size_t i, size_t count) SSM_INLINE {
    if (ahead) SSM_PREFETCH(reinterpret_cast<const char*>(y + i + ahead));
    return V::mul(load_n<V>(y + i, count, 0.0), f);
  });
}

// y = exp(x - ref) * 2^-e * inv, as scale2(m * inv, n - e): one rounding for
// the product, the power of two is exact.
template <class V, bool Exact, class In>
void write_exp_impl(const In* x, In* y, size_t n, double ref, double e, double inv, bool stream) {
  const Reg<V> vref = V::set1(ref), ve = V::set1(e), vinv = V::set1(inv);
  store_loop<V>(stream, y, n, [&](size_t i, size_t count) SSM_INLINE {
    const Reg<V> xv = load_n<V>(x + i, count, -kInf);
    Reg<V> m, k;
    if (Exact)
      exp_split_diff<V>(xv, vref, m, k);
    else
      exp_split<V>(V::max(xv, V::set1(kClampLow)), m, k);
    return V::scale2(V::mul(m, vinv), V::sub(k, ve));
  });
}

template <class V, bool Stream, class In>
void write_exp_fast(const In* x, In* y, size_t n, double e, double inv) {
  const WriteExp<V> wexp(e, inv);
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  store_loop_blocks<V, kUnroll, Stream>(
      y, n, [&](size_t i, size_t count) SSM_INLINE { return wexp.one(load_n<V>(x + i, count, -kInf)); },
      [&](size_t i, Reg<V>(&v)[kUnroll]) SSM_INLINE {
        if (ahead) prefetch_block<kUnroll * V::width * sizeof(In)>(x + i + ahead);
        wexp.template block<kUnroll>(x + i, v);
      });
}

template <class V, class In>
void write_exp(const In* x, In* y, size_t n, double ref, bool exact, double e, double inv, bool stream) {
  if (exact)
    write_exp_impl<V, true>(x, y, n, ref, e, inv, stream);
  else if (stream)
    write_exp_fast<V, true>(x, y, n, e, inv);
  else
    write_exp_fast<V, false>(x, y, n, e, inv);
}

template <class V, class In>
void write_shift(const In* x, In* y, size_t n, double hi, double lo, bool stream) {
  const Reg<V> vhi = V::set1(hi), vlo = V::set1(lo);
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  store_loop<V>(stream, y, n, [&](size_t i, size_t count) SSM_INLINE {
    if (ahead) SSM_PREFETCH(reinterpret_cast<const char*>(x + i + ahead));
    return V::sub(V::sub(load_n<V>(x + i, count, 0.0), vhi), vlo);
  });
}

// ---------------------------------------------------------------------------
// Strided kernels. Each lane is its own column (its own softmax row): the
// per-column state lives in small buffers (L1/L2) and the x rows stream
// through contiguously, B rows at a time, so a column sum of B terms is one
// plain tree folded into the column's Kahan sum.

// Columns per panel: the per-column state (s, c, e) of a panel stays in L1/L2.
constexpr size_t kPanel = 4096;

template <class V, int B, class In>
void expsum_strided(const In* x, size_t n, size_t stride, size_t cols, double* m_out, double* e_out) {
  using S = typename V::scalar;
  constexpr size_t W = V::width;
  alignas(64) S sb[kPanel], cb[kPanel], eb[kPanel];
  const Reg<V> limit = V::set1(FastLimits<S>::check);
  const bool prefetch = prefetch_distance(n * cols * sizeof(In)) != 0;
  for (size_t p0 = 0; p0 < cols; p0 += kPanel) {
    const size_t pc = cols - p0 < kPanel ? cols - p0 : kPanel;
    const In* xp = x + p0;
    Reg<V> nv;
    for (size_t j = 0; j < pc; j += W) {
      const size_t cnt = pc - j < W ? pc - j : W;
      fast_term<V>(load_n<V>(xp + j, cnt, -kInf), V::set1(0.0), nv);
      V::store(eb + j, V::round(V::max(nv, V::set1(kEmptyExp))));
      V::store(sb + j, V::set1(0.0));
      V::store(cb + j, V::set1(0.0));
    }
    auto column_block = [&](size_t i, size_t rows) SSM_INLINE {
      for (size_t j = 0; j < pc; j += W) {
        const size_t cnt = pc - j < W ? pc - j : W;
        LaneSum<V> acc;
        acc.e = V::load(eb + j);
        Reg<V> q;
        if (rows == size_t(B) && cnt == W) {
          // The next block's rows, one block (B rows of the panel) ahead.
          if (prefetch)
            for (int b = 0; b < B; ++b) SSM_PREFETCH(reinterpret_cast<const char*>(xp + (i + B + b) * stride + j));
          Reg<V> t[B];
          fast_terms<V, B>(xp + i * stride + j, acc.e, t, stride);
          q = tree_sum<V, 0, B>(t);
        } else {
          q = fast_term<V>(load_n<V>(xp + i * stride + j, cnt, -kInf), acc.e, nv);
          for (size_t b = 1; b < rows; ++b)
            q = V::add(q, fast_term<V>(load_n<V>(xp + (i + b) * stride + j, cnt, -kInf), acc.e, nv));
        }
        acc.s = V::load(sb + j);
        acc.c = V::load(cb + j);
        if (V::any(V::not_le(q, limit))) {
          // Raise the references of this column vector to the block's max.
          Reg<V> nmax = V::set1(-kInf);
          for (size_t b = 0; b < rows; ++b) {
            fast_term<V>(load_n<V>(xp + (i + b) * stride + j, cnt, -kInf), acc.e, nv);
            nmax = V::max(nv, nmax);
          }
          acc.raise(V::round(V::max(nmax, acc.e)));
          V::store(eb + j, acc.e);
          q = V::set1(0.0);
          for (size_t b = 0; b < rows; ++b)
            q = V::add(q, fast_term<V>(load_n<V>(xp + (i + b) * stride + j, cnt, -kInf), acc.e, nv));
        }
        acc.fold(q);
        V::store(sb + j, acc.s);
        V::store(cb + j, acc.c);
      }
    };
    size_t i = 0;
    for (; i + B <= n; i += B) column_block(i, B);
    for (; i < n; ++i) column_block(i, 1);
    for (size_t j = 0; j < pc; j += W) {
      double s[W], c[W], e[W];
      V::to_array(V::load(sb + j), s);
      V::to_array(V::load(cb + j), c);
      V::to_array(V::load(eb + j), e);
      for (size_t l = 0; l < W && j + l < pc; ++l) {
        m_out[p0 + j + l] = s[l] - c[l];
        e_out[p0 + j + l] = e[l];
      }
    }
  }
}

template <class V, int B, class In>
void expsum_strided_entry(const In* x, size_t n, size_t stride, size_t cols, double* m, double* e) {
  expsum_strided<V, B>(x, n, stride, cols, m, e);
}

// Per-column online max-relative sums in float64 lanes (V = VW): one read
// of x gives max[j] and m[j] + m_lo[j] = sum exp(x[., j] - max[j]), the max's
// own term exactly 1, so S - 1 keeps full relative accuracy (log_softmax of a
// dominant entry, log-sum-exp near 0).
//  * The sum is A = 1 + S = s + c (s rounded, c the sum of the exact
//    rounding errors, Neumaier's variant of compensation). Starting at 1
//    instead of 0 keeps |s| >= 1 >= every term, so each step's error
//    (s - t) + term is exact without a branch (Fast2Sum). Kahan's form, which
//    feeds c back into the next term, would lose c whenever the next term is
//    the max's 1 (1 - c rounds to 1): 1e-9 relative on S - 1 in a test of
//    40 terms; starting at 0, the 1 would arrive at |s| < 1 and lose the low
//    bits of the smaller terms (1e-6).
//  * When a block of B rows raises a column's max, A - 1 is rescaled by
//    f = exp(old - new) (exactly 0 from -inf) and 1 + (s - 1) f is formed by
//    TwoSum, its error joining c. s - 1 is exact (s >= 1), and the product's
//    rounding is relative to the new S - 1, which contains it.
//  * A NaN x poisons its column's sum; inf and all -inf columns show in max.
template <class V, int B, class In>
void expsum_strided_online(const In* x, size_t n, size_t stride, size_t cols, In* max_out, double* m_out,
                           double* mlo_out) {
  static_assert(std::is_same<typename V::scalar, double>::value, "float64 lanes");
  constexpr size_t W = V::width;
  alignas(64) double mb[kPanel], sb[kPanel], cb[kPanel];
  const bool prefetch = prefetch_distance(n * cols * sizeof(In)) != 0;
  const Reg<V> one = V::set1(1.0);
  for (size_t p0 = 0; p0 < cols; p0 += kPanel) {
    const size_t pc = cols - p0 < kPanel ? cols - p0 : kPanel;
    const In* xp = x + p0;
    for (size_t j = 0; j < pc; j += W) {
      V::store(mb + j, V::set1(-kInf));
      V::store(sb + j, one);
      V::store(cb + j, V::set1(0.0));
    }
    auto column_block = [&](size_t i, size_t rows) SSM_INLINE {
      for (size_t j = 0; j < pc; j += W) {
        const size_t cnt = pc - j < W ? pc - j : W;
        if (prefetch && rows == size_t(B) && cnt == W)
          for (int b = 0; b < B; ++b) SSM_PREFETCH(reinterpret_cast<const char*>(xp + (i + B + b) * stride + j));
        Reg<V> xv[B];
        Reg<V> mx = V::load(mb + j), s = V::load(sb + j), c = V::load(cb + j);
        Reg<V> nm = mx;
        for (size_t b = 0; b < rows; ++b) {
          xv[b] = load_n<V>(xp + (i + b) * stride + j, cnt, -kInf);
          nm = V::max(xv[b], nm);  // a NaN x leaves the max alone
        }
        const typename V::mask moved = V::gt(nm, mx);
        if (V::any(moved)) {
          Reg<V> fm, fk;
          exp_split_diff<V>(mx, nm, fm, fk);
          const Reg<V> f = V::scale2_acc(fm, fk);
          const Reg<V> v = V::mul(V::sub(s, one), f);
          const Reg<V> t = V::add(one, v);
          const Reg<V> bb = V::sub(t, one);
          const Reg<V> err = V::add(V::sub(one, V::sub(t, bb)), V::sub(v, bb));
          s = V::select(moved, t, s);
          c = V::select(moved, V::add(V::mul(c, f), err), c);
          mx = nm;
          V::store(mb + j, mx);
        }
        Reg<V> term[B];
        for (size_t b = 0; b < rows; ++b) {
          Reg<V> m, k;
          exp_split_diff<V>(xv[b], mx, m, k);
          term[b] = V::select(V::unord(xv[b]), xv[b], V::scale2_acc(m, k));
        }
        for (size_t b = 0; b < rows; ++b) {
          const Reg<V> t = V::add(s, term[b]);
          c = V::add(c, V::add(V::sub(s, t), term[b]));
          s = t;
        }
        V::store(sb + j, s);
        V::store(cb + j, c);
      }
    };
    size_t i = 0;
    for (; i + B <= n; i += B) column_block(i, B);
    for (; i < n; ++i) column_block(i, 1);
    for (size_t j = 0; j < pc; ++j) {
      max_out[p0 + j] = static_cast<In>(mb[j]);
      m_out[p0 + j] = sb[j] - 1.0;  // exact: s >= 1
      mlo_out[p0 + j] = cb[j];
    }
  }
}

template <class V, bool Stream, class In>
void write_exp_strided_impl(const In* x, In* y, size_t n, size_t stride, size_t cols, const In* e, const In* inv) {
  const size_t ahead = prefetch_distance(n * cols * sizeof(In)) / sizeof(In);
  for (size_t i = 0; i < n; ++i) {
    const In* xr = x + i * stride;
    // The head of a streamed row shifts the vector grid off the columns'
    // e/inv grid only in memory, not in value: column j always uses e[j].
    store_loop_blocks<V, kUnroll, Stream, false>(
        y + i * stride, cols,
        [&](size_t j, size_t count) SSM_INLINE {
          Reg<V> m, k;
          exp_split<V>(V::max(load_n<V>(xr + j, count, -kInf), V::set1(kClampLow)), m, k);
          return V::scale2(V::mul(m, load_n<V>(inv + j, count, 0.0)), V::sub(k, load_n<V>(e + j, count, 0.0)));
        },
        [&](size_t j, Reg<V>(&v)[kUnroll]) SSM_INLINE {
          if (ahead) prefetch_block<kUnroll * V::width * sizeof(In)>(xr + j + ahead);
          write_terms_cols<V, kUnroll>(xr + j, e + j, inv + j, v);
        });
  }
  if (Stream) V::fence();
}

template <class V, class In>
void write_exp_strided(const In* x, In* y, size_t n, size_t stride, size_t cols, const In* e, const In* inv,
                       bool stream) {
  if (stream)
    write_exp_strided_impl<V, true>(x, y, n, stride, cols, e, inv);
  else
    write_exp_strided_impl<V, false>(x, y, n, stride, cols, e, inv);
}

template <class V, bool Stream, class In>
void write_shift_strided_impl(const In* x, In* y, size_t n, size_t stride, size_t cols, const In* hi,
                              const In* lo) {
  constexpr size_t W = V::width;
  const size_t ahead = prefetch_distance(n * cols * sizeof(In)) / sizeof(In);
  for (size_t i = 0; i < n; ++i) {
    const In* xr = x + i * stride;
    auto value = [&](size_t j, size_t count) SSM_INLINE {
      return V::sub(V::sub(load_n<V>(xr + j, count, 0.0), load_n<V>(hi + j, count, 0.0)),
                    load_n<V>(lo + j, count, 0.0));
    };
    store_loop_blocks<V, kUnroll, Stream, false>(y + i * stride, cols, value, [&](size_t j, Reg<V>(&v)[kUnroll]) SSM_INLINE {
      if (ahead) prefetch_block<kUnroll * W * sizeof(In)>(xr + j + ahead);
      for (int u = 0; u < kUnroll; ++u) v[u] = value(j + u * W, W);
    });
  }
  if (Stream) V::fence();
}

template <class V, class In>
void write_shift_strided(const In* x, In* y, size_t n, size_t stride, size_t cols, const In* hi, const In* lo,
                         bool stream) {
  if (stream)
    write_shift_strided_impl<V, true>(x, y, n, stride, cols, hi, lo);
  else
    write_shift_strided_impl<V, false>(x, y, n, stride, cols, hi, lo);
}

// The exp of the written values (WriteExp with e = 0, inv = 1), so that its
// measured error is the error of what softmax writes.
template <class V, class In>
void vexp(const In* x, In* y, size_t n) {
  const WriteExp<V, false> wexp(0.0, 1.0);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE {
    const Reg<V> xv = load_n<V>(x + i, count, 0.0);
    store_n<V>(y + i, V::select(V::unord(xv), xv, wexp.one(V::min(xv, V::set1(1000.0)))), count);
  });
}

template <class V, class In>
double probe_read(const In* x, size_t n) {
  Reg<V> s[kUnroll];
  for (auto& v : s) v = V::set1(0.0);
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    if (ahead && u == 0) prefetch_block<kUnroll * V::width * sizeof(In)>(x + i + ahead);
    s[u] = V::add(s[u], load_n<V>(x + i, count, 0.0));
  });
  double total = 0.0;
  for (auto& v : s) total += V::hsum(v);
  return total;
}

template <class V, bool Stream, class In>
void probe_copy_impl(const In* x, In* y, size_t n) {
  constexpr size_t W = V::width;
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  store_loop_blocks<V, kUnroll, Stream>(
      y, n, [&](size_t i, size_t count) SSM_INLINE { return load_n<V>(x + i, count, 0.0); },
      [&](size_t i, Reg<V>(&v)[kUnroll]) SSM_INLINE {
        if (ahead) prefetch_block<kUnroll * W * sizeof(In)>(x + i + ahead);
        for (int u = 0; u < kUnroll; ++u) v[u] = V::load(x + i + u * W);
      });
}

template <class V, class In>
void probe_copy(const In* x, In* y, size_t n, bool stream) {
  if (stream)
    probe_copy_impl<V, true>(x, y, n);
  else
    probe_copy_impl<V, false>(x, y, n);
}

template <class V, class In>
void probe_fill(In* y, size_t n, double value, bool stream) {
  const Reg<V> v = V::set1(value);
  store_loop<V>(stream, y, n, [&](size_t, size_t) SSM_INLINE { return v; });
}

// Unroll (U independent chains) and block (B terms per chain before the
// fold) of the fast sums, per lane type; chosen by measurement with
// _core.testing.tune_expsum (see the issue-5 note): U x B = 8 vectors per fold.
template <class V>
struct Tuning {
  static constexpr int unroll = 4, block = 2, strided_block = 4, store_unroll = 4, store_block = 2;
};
// (unroll, block) of the expsum_fast instantiations offered for tuning.
constexpr int kVariantUB[6][2] = {{2, 2}, {4, 1}, {4, 2}, {8, 1}, {2, 4}, {8, 2}};

inline void add_tile(TileList& t, const char* name, size_t elements) {
  if (t.count < TileList::kCapacity) t.item[t.count++] = Tile{name, elements};
}

// VN: lane type for the data's own precision; VW: float64 lanes (log-sum-exp).
template <class VN, class VW, class T>
Kernels<T> make_kernels() {
  using Tu = Tuning<VN>;
  using S = typename VN::scalar;
  Kernels<T> k;
  k.expsum_fast = &expsum_fast<VN, Tu::unroll, Tu::block, T>;
  k.expsum_pow2 = &expsum_pow2<VN, Tu::unroll, Tu::block, T>;
  k.expsum = &expsum<VN, T>;
  k.expsum_online = &expsum_online<VN, T>;
  k.max_scan = &max_scan<VN, T>;
  k.expsum_store_pow2 = &expsum_store_pow2<VN, Tu::store_unroll, Tu::store_block, T>;
  k.expsum_store = &expsum_store<VN, T>;
  k.scale = &scale<VN, T>;
  k.write_exp = &write_exp<VN, T>;
  k.write_shift = &write_shift<VN, T>;
  k.expsum_wide = &expsum_wide<VW, T>;
  k.expsum_online_wide = &expsum_online_wide<VW, T>;
  k.expsum_strided_fast = &expsum_strided_entry<VN, Tu::strided_block, T>;
  k.expsum_strided_online = &expsum_strided_online<VW, Tu::strided_block, T>;
  k.err_strided_fast = fast_sum_err<S, Tu::strided_block, 1, HasExpTable<VN>::value>();  // full blocks are one tree of B terms
  k.write_exp_strided = &write_exp_strided<VN, T>;
  k.write_shift_strided = &write_shift_strided<VN, T>;
  k.vexp = &vexp<VN, T>;
  k.probe_read = &probe_read<VN, T>;
  k.probe_copy = &probe_copy<VN, T>;
  k.probe_fill = &probe_fill<VN, T>;
  k.expsum_fast_variant[0] = &expsum_fast<VN, kVariantUB[0][0], kVariantUB[0][1], T>;
  k.expsum_fast_variant[1] = &expsum_fast<VN, kVariantUB[1][0], kVariantUB[1][1], T>;
  k.expsum_fast_variant[2] = &expsum_fast<VN, kVariantUB[2][0], kVariantUB[2][1], T>;
  k.expsum_fast_variant[3] = &expsum_fast<VN, kVariantUB[3][0], kVariantUB[3][1], T>;
  k.expsum_fast_variant[4] = &expsum_fast<VN, kVariantUB[4][0], kVariantUB[4][1], T>;
  k.expsum_fast_variant[5] = &expsum_fast<VN, kVariantUB[5][0], kVariantUB[5][1], T>;
  const char* names[] = {"u2b2", "u4b1", "u4b2", "u8b1", "u2b4", "u8b2"};
  for (int v = 0; v < Kernels<T>::kVariants; ++v) k.variant_name[v] = names[v];
  constexpr size_t W = VN::width, WW = VW::width;
  TileList& t = k.tiles;
  t.count = 0;
  add_tile(t, "lanes", W);
  add_tile(t, "lanes_wide", WW);
  // The fast sums: blocks of U x B vectors summed plainly, then single vectors.
  add_tile(t, "expsum_fast", size_t(Tu::unroll) * Tu::block * W);
  add_tile(t, "expsum_pow2", size_t(Tu::unroll) * Tu::block * W);
  add_tile(t, "expsum_store_pow2", size_t(Tu::store_unroll) * Tu::store_block * W);
  // for_each_block / store_loop: kUnroll vectors per step.
  const char* unrolled[] = {"expsum", "expsum_online", "max_scan",  "expsum_store", "scale",     "write_exp",
                            "write_shift", "vexp",      "probe_read", "probe_copy",   "probe_fill"};
  for (const char* name : unrolled) add_tile(t, name, kUnroll * W);
  add_tile(t, "expsum_wide", kUnroll * WW);
  add_tile(t, "expsum_online_wide", kUnroll * WW);
  // Strided kernels: columns in vectors (W, or kUnroll x W in the write
  // passes) within panels of kPanel columns, rows in blocks of strided_block.
  add_tile(t, "strided_panel", kPanel);
  add_tile(t, "strided_rows", Tu::strided_block);
  add_tile(t, "expsum_strided_fast", W);
  add_tile(t, "expsum_strided_online", WW);
  add_tile(t, "write_exp_strided", kUnroll * W);
  add_tile(t, "write_shift_strided", kUnroll * W);
  const char* tile_names[] = {"expsum_fast.u2b2", "expsum_fast.u4b1", "expsum_fast.u4b2",
                              "expsum_fast.u8b1", "expsum_fast.u2b4", "expsum_fast.u8b2"};
  for (int v = 0; v < Kernels<T>::kVariants; ++v)
    add_tile(t, tile_names[v], size_t(kVariantUB[v][0]) * kVariantUB[v][1] * W);
  return k;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
