// The fast sums: sum exp(x) as m * 2^e with no max pass and no NaN test,
// the first pass of the two-pass algorithm and the fast log-sum-exp (XNNPACK
// calls this job raddextexp: reduce-add of extended-range exp). The
// pow2-referenced variant is the three-pass-recompute sum.
//
// Each lane keeps its terms relative to a lane exponent e that only moves up,
// and only when a block of terms would overflow: a term then costs an exp, a
// subtraction, a scalef and an add. Blocks of U x B terms are summed plainly
// (B per chain, U chains added as a tree) and folded into the lane sum.
// float64 lanes fold into a Kahan-compensated lane sum, so the rounding error
// stays below (B - 1 + log2 U + 2) ulp however long the row. float32 lanes
// fold into float64 lanes instead (WideLaneSum): widening is exact and a
// float64 add per block costs about what the Kahan fold did, and then only
// the block's own float32 additions round at float32 precision.
//
// Error of the float32 sum (wide_sum_err), u = 2^-24, all terms >= 0:
//   terms: each exp(x) within exp_err = 3u (ExpCoeffsFast: 2.75u measured;
//     the power of two is exact, flushed terms are below 2^-126 of a lane
//     sum that holds a term >= 2^-0.5 of its reference: < 2^-100 in all);
//   block: every term goes through d = B - 1 + ceil(log2 U) float32 adds, so
//     the block sum is within gamma_d = d u / (1 - d u) of the exact sum of
//     its terms (Higham, Accuracy and Stability of Numerical Algorithms,
//     sec. 4.2: the bound holds term by term for any order of positive adds);
//   lanes: n / (U B W) + U B plain float64 adds of block sums per lane, and
//     at most W adds that combine the lanes (after exact scaling by powers
//     of two): k adds in all, gamma_k(2^-53).
// (1 + 3u)(1 + gamma_d)(1 + gamma_k(2^-53)) - 1 is 6.0000005u + k 2^-53 for
// u4b2 (d = 3: avx2, neon) and 7.0000006u + k 2^-53 for u8b2 (d = 4:
// avx512): at most 6.01u and 7.01u for chunks of up to 2^24 elements. ulp(4) = 8u, so a float32 log-sum-exp with |lse| >= 4 is
// certified from this one pass (certified(), chunking.h), apart from the
// few results that round to exactly +-4, whose lower neighbour is 4u away.
// (The Kahan float32 lane sum allowed 1.25 (3u + (d + 3)u) = 11.25u: |lse| >= 8.)
//
// NaN and +inf propagate into the sum, out-of-range rows show in e; the
// driver classifies such rows with a max pass.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace (and include its vecmath_<isa>.h) first"
#endif
#pragma once

#include "exp_core.h"

namespace ssm {
namespace SSM_ISA {
namespace {

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

template <class C, class = void>
struct OneFmaReduction : std::false_type {};
template <class C>
struct OneFmaReduction<C, std::void_t<decltype(C::one_fma_reduction)>> : std::true_type {};

// x - n ln2 for the polynomial C. With ExpCoeffsMid and a fused fma, one fma
// with ln2_hi, the double nearest ln2: x is at most a float32 (24 bits) and
// n an integer below 2^22, so x - n ln2_hi is exact before its one rounding,
// and the term carries the factor exp(n (ln2 - ln2_hi)), |n| <= 3.1e6 on
// [kClampLow, kFastLimit], within ExpCoeffsMid::err (vecmath_common.h). Else the kernel's exact
// reduction.
template <class V, class C>
inline Reg<V> poly_reduce(Reg<V> x, Reg<V> n) {
  if constexpr (OneFmaReduction<C>::value && FusedFma<V>::value)
    return V::fmadd(n, V::set1(-ExpCoeffs<double>::ln2_hi), x);
  else
    return V::reduce_ln2(x, n);
}

constexpr int ceil_log2(int u) { return u <= 1 ? 0 : 1 + ceil_log2((u + 1) / 2); }

// Relative error bound of a fast sum's additions: B - 1 plain adds per
// chain, the tree over U chains, the Kahan fold and the lane combination.
template <class S, int U, int B>
constexpr double fast_round_err() {
  return 1.25 * (B - 1 + ceil_log2(U) + 3) * FastLimits<S>::unit;
}

// Relative error bound of a fast sum: the terms' own error and the additions.
template <class S, int U, int B, bool Table = false>
constexpr double fast_sum_err() {
  using L = FastLimits<S>;
  const double exp_err = Table ? 2.0 * L::unit : L::exp_err;  // ExpTable16: 1.6u (see vecmath_common.h)
  return 1.25 * exp_err + fast_round_err<S, U, B>();
}

// Bound on the relative rounding error of a sum of nonnegative terms that
// each go through at most d additions at unit roundoff u.
constexpr double gamma_bound(double d, double u) { return d * u / (1.0 - d * u); }

// Relative error bound of a float32 fast sum with float64 lanes (WideLaneSum)
// whose lane values each go through at most `adds` float64 additions (see
// the header comment).
template <int U, int B>
inline double wide_sum_err(double adds) {
  using L = FastLimits<float>;
  constexpr double block = gamma_bound(B - 1 + ceil_log2(U), L::unit);
  return (1.0 + L::exp_err) * (1.0 + block) * (1.0 + gamma_bound(adds, FastLimits<double>::unit)) - 1.0;
}

// Lane sum (s - c) * 2^e with Kahan compensation, folded once per block.
template <class V>
struct LaneSum {
  Reg<V> s, c, e;
  void zero() { s = c = V::set1(0.0); }
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

// Does V (float32 lanes) have float64 lanes to sum into (V::wide, V::widen)?
template <class V, class = void>
struct Widens : std::false_type {};
template <class V>
struct Widens<V, std::void_t<typename V::wide>> : std::true_type {};

// The lane sums of float32 lanes V in float64 lanes: the first and second
// halves of V's lanes, each s * 2^e with e kept in V (the terms' reference).
// Plain adds: a block sum is exact in float64 and k adds of them cost at
// most k 2^-53 (wide_sum_err).
template <class V>
struct WideLaneSum {
  using D = typename V::wide;
  Reg<D> lo, hi;
  Reg<V> e;
  void zero() { lo = hi = D::set1(0.0); }
  void fold(Reg<V> q) {
    Reg<D> a, b;
    V::widen(q, a, b);
    lo = D::add(lo, a);
    hi = D::add(hi, b);
  }
  void raise(Reg<V> enew) {
    Reg<D> a, b;
    V::widen(V::sub(e, enew), a, b);
    lo = D::scale2_acc(lo, a);
    hi = D::scale2_acc(hi, b);
    e = enew;
  }
  // The lanes -> ExpSum (m, e): each lane scaled to the largest reference
  // (exact: a power of two; lanes ~1000 binades below it, negligible, flush
  // to 0) and added plainly, at most W more float64 adds per lane
  // (wide_sum_err). A NaN or inf lane stays non-finite, so the sum does too.
  void result(ExpSum& out) const {
    const double emax = V::hmax(e);
    Reg<D> ka, kb;
    V::widen(V::sub(e, V::set1(emax)), ka, kb);
    out.m = D::hsum(D::add(D::scale2_acc(lo, ka), D::scale2_acc(hi, kb)));
    out.m_lo = 0.0;
    out.e = emax;
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

// What kShortReduceErr (times 1.25, as a relative error) over-counts for a
// sum of `count` elements over W lanes: each lane holds N <= ceil(count / W)
// terms, whose bound is (log2 N + 1.1) d (table_reduce), and N <= 2^21.
// The depth is the lane's: the factor exp(n d) sits on each term, and
// short_shift takes each lane's sum back by its own c' (one correction per
// lane, after the loop), so the bound counts the terms that share that c',
// i.e. the lane's N (element i goes to lane i mod W, in the blocks and the
// tail alike). Not the U chains of a block: they only order the lane's
// additions (fast_round_err) and are folded into the lane sum before any
// correction, so a chain's N/U terms have no c' of their own. Not the whole
// sum's count either: the lanes are corrected apart, and W positive lane
// sums each within its relative bound add up to within the largest
// (finish_lanes), which the lane with the most terms sets. Chunks:
// combine_partials keeps the largest err and the smallest slack, so err -
// err_lane_slack still bounds every chunk's sum.
inline double short_reduce_slack(size_t count, size_t lanes) {
  const size_t per_lane = (count + lanes - 1) / lanes;
  int log2_n = 0;  // ceil(log2 N)
  while ((size_t(1) << log2_n) < per_lane) ++log2_n;
  if (log2_n >= 21) return 0.0;
  return 1.25 * (21 - log2_n) * ExpCoeffs<double>::ln2_lo;
}

// Lane sums of Short table terms: multiply s - c by exp(-c' d), c' = e +
// log2(s), by moving s * c' d into the compensation (s is unchanged).
inline double short_shift(double s, double e) {
  if (!(s > 0.0) || !is_finite(s)) return 0.0;
  return (e + std::ilogb(s)) * ExpCoeffs<double>::ln2_lo;
}

// exp(x) * 2^-e for the fast passes; n receives round(x * log2 e). The clamp
// is written max(low, x) so that a NaN x stays NaN (max returns its second
// operand on NaN) and poisons the sum instead of needing its own test.
// With the exp table, n is k/16 (a multiple of 1/16): scale2_term floors
// n - e, and e is always an integer, so the power of two is 2^(floor(n) - e).
// Short: the table's argument reduction in one fma (table_reduce).
template <class V, bool Short = false, class Poly = ExpCoeffsFast<typename V::scalar>>
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
    n = V::round(V::mul(x, V::set1(Poly::log2e)));
    m = exp_poly<V, Poly>(poly_reduce<V, Poly>(x, n));
  }
  return V::scale2_term(m, V::sub(n, e));
}

// U consecutive full vectors of fast_term, written stage by stage: each
// term is a ~40-cycle dependency chain, and issuing the U chains side by
// side (instead of one after the other) lets the out-of-order core overlap
// them without needing a scheduler window of several whole chains.
// step: elements between the U vectors (V::width when contiguous, the row
// stride in the strided kernels).
// Poly: the polynomial where there is no table; loaded (if not null)
// receives the clamped inputs (for a running max).
template <class V, int U, bool Short = false, class In, class Poly = ExpCoeffsFast<typename V::scalar>>
inline void fast_terms(const In* x, Reg<V> e, Reg<V> (&t)[U], size_t step = V::width, Reg<V>* loaded = nullptr) {
  Reg<V> r[U], n[U];
#define SSM_STAGE(stmt) \
  SSM_UNROLL for (int u = 0; u < U; ++u) { stmt; }
  SSM_STAGE(r[u] = V::max(V::set1(kClampLow), V::load(x + u * step)))
  if (loaded) {
    SSM_STAGE(loaded[u] = r[u])
  }
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
    using C = Poly;
    SSM_STAGE(n[u] = V::round(V::mul(r[u], V::set1(C::log2e))))
    SSM_STAGE(r[u] = (poly_reduce<V, C>(r[u], n[u])))
    SSM_STAGE(t[u] = V::fmadd(V::set1(C::c[C::degree]), r[u], V::set1(C::c[C::degree - 1])))
    for (int k = C::degree - 2; k >= 0; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(C::c[k])))
    SSM_STAGE(t[u] = V::scale2_term(t[u], V::sub(n[u], e)))
  }
#undef SSM_STAGE
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
// lane references to the block's largest exponents, then sum it again in the
// main loop's shape (vector j into chain j mod U, <= B terms per chain, then
// the tree), so that fast_round_err bounds this block too.
template <class V, int U, bool Short, class In, class Poly, class Acc>
#if defined(__GNUC__)
__attribute__((noinline))
#endif
Reg<V>
redo_block(const In* x, size_t count, Acc& acc) {
  constexpr size_t W = V::width;
  Reg<V> nmax = V::set1(-kInf), n;
  for (size_t i = 0; i < count; i += W) {
    fast_term<V, Short, Poly>(load_n<V>(x + i, count - i < W ? count - i : W, -kInf), acc.e, n);
    nmax = V::max(n, nmax);  // NaN n ignored
  }
  acc.raise(V::round(V::max(nmax, acc.e)));  // references stay integers
  Reg<V> chain[U];
  for (int u = 0; u < U; ++u) chain[u] = V::set1(0.0);
  size_t j = 0;
  for (size_t i = 0; i < count; i += W, ++j)
    chain[j % U] = V::add(chain[j % U], fast_term<V, Short, Poly>(load_n<V>(x + i, count - i < W ? count - i : W, -kInf), acc.e, n));
  return tree_sum<V, 0, U>(chain);
}

// Replace the row max's own term in a finished sum (m + m_lo) * 2^e by the
// accurate exp's: the max's term is what the kernel computed for the value
// out.max (the same operations on the same input give the same bits,
// fp-contract is off), p * 2^(n - e); adding (p_exact - p) * 2^(n - e) swaps
// it. Every lane reference is some entry's n, so n - e >= 0, and the max's
// lane kept its term below the 2^check bound: n - e is small. Returns false
// (sum unchanged) where that does not hold: an empty, NaN or out-of-range sum,
// which certifies nothing anyway.
template <class V, class Poly>
inline bool corrected_max(ExpSum& out) {
  if (!(out.m > 0.0) || !is_finite(out.m) || !is_finite(out.max) || !is_finite(out.e)) return false;
  const Reg<V> x = V::set1(out.max);
  const Reg<V> n = V::round(V::mul(x, V::set1(Poly::log2e)));
  const Reg<V> fast = exp_poly<V, Poly>(poly_reduce<V, Poly>(x, n));
  const Reg<V> exact = exp_poly<V, ExpCoeffs<double>>(V::reduce_ln2(x, n));
  double d[V::width], nn[V::width];
  V::to_array(V::sub(exact, fast), d);
  V::to_array(n, nn);
  const double k = nn[0] - out.e;
  if (!(k >= 0.0 && k <= 200.0)) return false;
  const double m = out.m + d[0] * pow2_int(static_cast<int>(k));  // one more rounding of m (2^-53)
  out.m_lo += out.m - m + d[0] * pow2_int(static_cast<int>(k));
  out.m = m;
  return true;
}

// sum exp(x) = m * 2^e. Lazy: the lane references start at the first
// vector's exponents and move up only when a block overflows the check;
// otherwise they are the fixed e_ref and no check is made (terms <= 2^1).
// Poly: the exp polynomial where the lanes have no table. TrackMax: also
// out.max = max(kClampLow, max x) (NaN ignored; the sum shows NaN anyway).
template <class V, int U, int B, bool Lazy, class In, class Poly = ExpCoeffsFast<typename V::scalar>,
          bool TrackMax = false>
ExpSum expsum_pow2_impl(const In* x, size_t n, double e_ref) {
  constexpr size_t W = V::width;
  constexpr size_t kBlock = U * B * W;
  // The contiguous fast sums take the one-fma reduction (table_reduce);
  // the strided ones keep the exact one (their columns have no 2^24 bound).
  constexpr bool kShort = HasExpTable<V>::value;
  constexpr bool kWide = Widens<V>::value;
  static_assert(!(kWide && TrackMax), "the max's corrected term is accounted for float64 lanes only");
  std::conditional_t<kWide, WideLaneSum<V>, LaneSum<V>> acc;
  acc.zero();
  Reg<V> vmax = V::set1(-kInf);
  Reg<V> nv;
  if (Lazy) {
    fast_term<V, false, Poly>(load_n<V>(x, n < W ? n : W, -kInf), V::set1(0.0), nv);
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
      Reg<V> t[U], in[U];
      fast_terms<V, U, kShort, In, Poly>(x + i + b * U * W, acc.e, t, W, TrackMax ? in : nullptr);
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
      for (int u = 0; u < U; ++u) p[u] = b == 0 ? t[u] : V::add(p[u], t[u]);
      if (TrackMax) {
        // One register for the max: U more would spill the terms' registers.
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
        for (int u = 0; u < U; ++u) vmax = V::max(in[u], vmax);
      }
    }
    Reg<V> q = tree_sum<V, 0, U>(p);
    if (Lazy && V::any(V::not_le(q, limit))) q = redo_block<V, U, kShort, In, Poly>(x + i, kBlock, acc);
    acc.fold(q);
  }
  for (; i < n; i += W) {
    const size_t count = n - i < W ? n - i : W;
    const Reg<V> xv = load_n<V>(x + i, count, -kInf);
    if (TrackMax) vmax = V::max(V::max(V::set1(kClampLow), xv), vmax);
    Reg<V> q = fast_term<V, kShort, Poly>(xv, acc.e, nv);
    if (Lazy && V::any(V::not_le(q, limit))) q = redo_block<V, U, kShort, In, Poly>(x + i, count, acc);
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
  if constexpr (kWide)
    acc.result(out);
  else
    finish_lanes<V>(acc, out);
  using S = typename V::scalar;
  out.err = kShort ? 1.25 * kShortReduceErr * FastLimits<S>::unit : 0.0;
  if constexpr (kShort && std::is_same<S, double>::value) out.err_lane_slack = short_reduce_slack(n, W);
  if (TrackMax) {
    out.max = V::hmax(vmax);
  }
  if constexpr (TrackMax && OneFmaReduction<Poly>::value) {
    if (corrected_max<V, Poly>(out)) {
      // ExpCoeffs<double> (<= 1.25 ulp) for the max's term, Poly::err for
      // the others, and the corrected m's rounding.
      out.err += 1.25 * (FastLimits<double>::exp_err + FastLimits<double>::unit) + fast_round_err<S, U, B>();
      out.err_rest = 1.25 * Poly::err;
    } else {
      out.err += 1.25 * Poly::err + fast_round_err<S, U, B>();
    }
  } else if constexpr (kWide) {
    out.err += wide_sum_err<U, B>(static_cast<double>(n / kBlock + U * B + W));
  } else {
    out.err += fast_sum_err<S, U, B, HasExpTable<V>::value>();
  }
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

// The fast sum in float64 lanes whatever In is, with max(x): pass 1 of
// log_softmax and the accurate log-sum-exp. Its error bound (~1e-15 for
// float64 data; for float32 data with ExpCoeffsMid ~1.5e-15 plus 2.6e-9
// times the share of the sum that is not the max's term) certifies
// float32 log_softmax wherever lse - max > ~6e-8 and float32 log-sum-exps
// beyond ~0.04 of 0; the max gives log_softmax the smallest |y| = lse - max
// it must certify.
template <class V, int U, int B, class In>
ExpSum expsum_lse(const In* x, size_t n) {
  constexpr bool kMid = sizeof(In) < sizeof(typename V::scalar) && !HasExpTable<V>::value;
  using Poly = std::conditional_t<kMid, ExpCoeffsMid, ExpCoeffsFast<typename V::scalar>>;
  return expsum_pow2_impl<V, U, B, true, In, Poly, true>(x, n, 0.0);
}

// t[u] = exp(r[u]) * 2^-floor(n[u]) for lane types with the 16-entry table,
// the table a double-double h + l (h0, h1 and l0, l1: its two halves, the
// written values' folded with 1/sum): 2^(k/16) (1 + q), q = p(r) - 1, as
// h + (h q + l), one rounding where it matters (WriteExp, TopExp). r[u]
// (clamped inputs) is overwritten; n[u] receives k/16.
template <class V, int U>
inline void table_exp(Reg<V> (&r)[U], Reg<V> (&n)[U], Reg<V> (&t)[U], Reg<V> h0, Reg<V> h1, Reg<V> l0, Reg<V> l1) {
  using X = ExpTable16;
  Reg<V> tab[U], low[U];
#define SSM_STAGE(stmt) \
  SSM_UNROLL for (int u = 0; u < U; ++u) { stmt; }
  SSM_STAGE(tab[u] = V::fmadd(r[u], V::set1(ExpCoeffs<double>::log2e), V::set1(X::magic)))
  SSM_STAGE(n[u] = V::sub(tab[u], V::set1(X::magic)))
  SSM_STAGE(r[u] = V::reduce_ln2(r[u], n[u]))
  SSM_STAGE(low[u] = V::exp_table(tab[u], l0, l1))
  SSM_STAGE(tab[u] = V::exp_table(tab[u], h0, h1))
  // q = p(r) - 1 = r (c1 + r (c2 + ...)); c0 = 1 is the h below.
  SSM_STAGE(t[u] = V::fmadd(V::set1(X::c[X::degree]), r[u], V::set1(X::c[X::degree - 1])))
  for (int k = X::degree - 2; k >= 1; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(X::c[k])))
  SSM_STAGE(t[u] = V::mul(t[u], r[u]))
  SSM_STAGE(t[u] = V::add(tab[u], V::fmadd(tab[u], t[u], low[u])))
#undef SSM_STAGE
}

// exp(x) * 2^-e for expsum_top, whose terms must each be accurate (the
// others' sum is divided by exp(max), not added to it), U vectors stage by
// stage. Relative error bound of a term (err(), in units of 2^-53):
//  * 16-entry table (AVX-512): exp(x) = 2^(k/16) (1 + q), q = p(r) - 1,
//    |r| <= ln2/32, with the table as a double-double h + l and the term
//    h + (h q + l): the last add rounds once (<= 1 unit relative), the fma
//    inside it and q's own error (polynomial 0.07, Horner and the product
//    with r, the exact two-fma reduction: each a few units times
//    |q| <= 0.022) add < 0.2: 1.3 (WriteExp's exp, measured 0.62 ulp).
//  * degree-11 polynomial on |r| <= ln2/2 with fma: the last fma rounds once
//    (<= 1), the one before it (<= 1, times |r| / p <= 0.6), the two-fma
//    reduction's roundings (<= 2 |r| <= 0.7), the polynomial (0.12): 2.5
//    (the kernel exp, measured 0.93 ulp <= 1.86 units).
//  * without fma (scalar lanes): every Horner step rounds twice: 3.5.
// The power of two is exact (terms are >= 2^-1022 of the lane reference
// wherever they matter: see expsum_top).
template <class V>
struct TopExp {
  Reg<V> h0, h1, l0, l1;
  TopExp() {
    if constexpr (HasExpTable<V>::value) {
      h0 = V::load(ExpTable16::table);
      h1 = V::load(ExpTable16::table + 8);
      l0 = V::load(ExpTable16::table_lo);
      l1 = V::load(ExpTable16::table_lo + 8);
    }
  }
  static constexpr double err() {
    return (HasExpTable<V>::value ? 1.3 : FusedFma<V>::value ? 2.5 : 3.5) * 0x1p-53;
  }
  // t[u] (clamped inputs) -> exp(t[u]) * 2^-e; n (if not null) receives the
  // exponents, k/16 with the table (the power of two is 2^(floor(n) - e)).
  template <int U>
  void terms(Reg<V> (&t)[U], Reg<V> e, Reg<V>* n_out = nullptr) const {
    Reg<V> r[U], n[U];
#define SSM_STAGE(stmt) \
  SSM_UNROLL for (int u = 0; u < U; ++u) { stmt; }
    SSM_STAGE(r[u] = t[u])
    if constexpr (HasExpTable<V>::value) {
      table_exp<V, U>(r, n, t, h0, h1, l0, l1);
    } else {
      using C = ExpCoeffs<double>;
      SSM_STAGE(n[u] = V::round(V::mul(r[u], V::set1(C::log2e))))
      SSM_STAGE(r[u] = V::reduce_ln2(r[u], n[u]))
      SSM_STAGE(t[u] = V::fmadd(V::set1(C::c[C::degree]), r[u], V::set1(C::c[C::degree - 1])))
      for (int k = C::degree - 2; k >= 0; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(C::c[k])))
    }
    SSM_STAGE(t[u] = V::scale2_term(t[u], V::sub(n[u], e)))
    if (n_out) SSM_STAGE(n_out[u] = n[u])
#undef SSM_STAGE
  }
};

// float64 log_softmax's first pass (kernel_api.h): the row max and sum
// exp(x) = (m + m_lo + top) * 2^e, top the max's own term exactly as
// computed here, so that (m + m_lo) / exp(max) = sum over the other entries
// of exp(x - max) keeps its relative accuracy however small it is (a
// dominant entry) and lse - max = log1p of it (softmax_rows.h: top_shift).
// Each lane keeps its terms relative to a reference e that is raised (by
// an exact power of two) before a block whose running max would make a
// term exceed ~2^502, so no term or sum overflows and no block is redone.
// Every term joins its lane's sum through TwoSum: s + c is the exact sum
// of the terms up to the roundings of the c adds, each at most 2^-53 |c|
// with |c| <= k 2^-53 S for the lane's k terms so far and S its sum: below
// (k^2 + 2 U W + 8) 2^-106 S in all with the lane combination (err_rest).
// Terms below 2^-1022 of a lane's reference flush to zero, the max's
// term is >= 2^-1 of its lane's: losses below n 2^-1000 of exp(max).
template <class V, int U, class In>
ExpSum expsum_top(const In* x, size_t n) {
  constexpr size_t W = V::width;
  constexpr size_t kBlock = U * W;
  const TopExp<V> texp;
  Reg<V> s[U], c[U];
  for (int u = 0; u < U; ++u) s[u] = c[u] = V::set1(0.0);
  Reg<V> e = V::set1(kEmptyExp), vmax = V::set1(-kInf);
  // Raise when x > (e + 500) ln2: then every term is below 2^(500 + 1.5).
  Reg<V> xlimit = V::set1(-kInf);
  auto raise = [&]() SSM_INLINE {
    const Reg<V> enew = V::max(e, V::round(V::mul(vmax, V::set1(ExpCoeffs<double>::log2e))));
    const Reg<V> shift = V::sub(e, enew);
    for (int u = 0; u < U; ++u) {
      s[u] = V::scale2_acc(s[u], shift);
      c[u] = V::scale2_acc(c[u], shift);
    }
    e = enew;
    xlimit = V::mul(V::add(e, V::set1(500.0)), V::set1(0.6931471805599453));
  };
  // TwoSum: s + c += t with the rounding error of s + t kept exactly.
  auto add = [](Reg<V>& sum, Reg<V>& comp, Reg<V> t) SSM_INLINE {
    const Reg<V> total = V::add(sum, t);
    const Reg<V> bb = V::sub(total, sum);
    comp = V::add(comp, V::add(V::sub(sum, V::sub(total, bb)), V::sub(t, bb)));
    sum = total;
  };
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    if (ahead) prefetch_block<kBlock * sizeof(In)>(x + i + ahead);
    Reg<V> t[U];
    SSM_UNROLL for (int u = 0; u < U; ++u) t[u] = V::max(V::set1(kClampLow), V::load(x + i + u * W));
    SSM_UNROLL for (int u = 0; u < U; ++u) vmax = V::max(t[u], vmax);  // NaN ignored
    if (V::any(V::gt(vmax, xlimit))) raise();
    texp.template terms<U>(t, e);
    SSM_UNROLL for (int u = 0; u < U; ++u) add(s[u], c[u], t[u]);
  }
  for (; i < n; i += W) {
    Reg<V> t[1] = {V::max(V::set1(kClampLow), load_n<V>(x + i, n - i < W ? n - i : W, -kInf))};
    vmax = V::max(t[0], vmax);
    if (V::any(V::gt(vmax, xlimit))) raise();
    texp.template terms<1>(t, e);
    add(s[0], c[0], t[0]);
  }
  ExpSum out;
  out.max = V::hmax(vmax);
  out.e = 0.0;
  if (!(out.max > -kInf)) return out;  // empty: m = 0, top = 0
  double ls[U * W], lc[U * W], le[W];
  for (int u = 0; u < U; ++u) {
    V::to_array(s[u], ls + u * W);
    V::to_array(c[u], lc + u * W);
  }
  V::to_array(e, le);
  double emax = kEmptyExp;
  for (size_t l = 0; l < W; ++l) emax = le[l] > emax ? le[l] : emax;
  DoubleDouble sum;
  for (size_t i = 0; i < U * W; ++i) {
    const double k = le[i % W] - emax;
    if (k >= -1000.0) {
      const double f = pow2_int(static_cast<int>(k));
      sum.add(ls[i] * f);
      sum.add(lc[i] * f);
    } else if (!is_finite(ls[i]) || !is_finite(lc[i])) {
      sum.add(kNaN);  // a NaN or inf lane poisons the sum
    }
  }
  // The max's term: the same operations on the same input give the same
  // bits; computed at 2^floor(n) (no overflow), then moved to 2^emax, which
  // is at most 1 above floor(n) and at most ~501 below it.
  Reg<V> tm[1] = {V::set1(out.max)}, nm[1];
  texp.template terms<1>(tm, V::set1(0.0), nm);
  double nn[W], tt[W];
  V::to_array(nm[0], nn);
  const double e0 = std::floor(nn[0]);
  tm[0] = V::set1(out.max);
  texp.template terms<1>(tm, V::set1(e0));
  V::to_array(tm[0], tt);
  const double k0 = e0 - emax;
  out.top = k0 >= -1000.0 && k0 <= 1000.0 ? tt[0] * pow2_int(static_cast<int>(k0)) : kNaN;
  const double total = sum.value();
  sum.add(-out.top);
  sum.store(out);
  out.e = emax;
  out.err = TopExp<V>::err();
  const double k = static_cast<double>(n / kBlock + W);
  out.err_rest = (k * k + 2.0 * U * W + 8.0) * 0x1p-106 * total + static_cast<double>(n) * 0x1p-1000 * out.top;
  return out;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
