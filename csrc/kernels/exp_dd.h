// The vector tier of the accurate log-sum-exp near lse = 0 (docs/design.md,
// "near zero"): S = sum b exp(x - max) in double-double lanes, and lse = max
// + log S from it, with a bound on the error that the caller compares with
// the contract. Rows whose bound does not certify their result go to the
// scalar double-double sum (lse_accurate in softmax_rows.h), which is
// another ~2^8 times more accurate and ~50 times slower.
//
// exp(d), d = d_hi + d_lo (x - max by TwoSum, |d_hi| <= 600 where kept),
// relative error below kDdTermErr = 2^-93; the derivation, term by term:
//  * Lane types without the 16-entry table: k = round(d_hi log2 e), |k| <=
//    1100 < 2^11; ln2 = c1 + c2 + c3 with c1 and c2 of 29 bits, so k c1
//    and k c2 are exact, and a = d_hi - k c1 is exact (a multiple of
//    ulp(d_hi) below 1 in magnitude; k = 0 for |d_hi| < 0.5); r + r_lo = a
//    - k c2 exactly (TwoSum); then r_lo += d_lo - k c3 (|r_lo| <= 2^-43.8
//    for float64 data, whose d_lo <= ulp(745) / 2: two roundings, 2^-95.8
//    relative; c1 + c2 + c3 is within 2^-112 of ln2, times |k|: 2^-102).
//    |r| <= ln2/2 (1 + 2^-42) = 0.34658. exp(r) = sum r^i / i! for i <=
//    20: truncation below 2^-97.0 of exp(r). Terms 12..20 by Horner in
//    plain double: their sum is at most 2^-47.2, evaluated within 2^-49.5
//    relative (9 steps, coefficient roundings included): 2^-96.7. Terms
//    0..11 by Horner in double-double with the double r and 1/i! as
//    double-double constants: each step's product is exact (TwoProd) and
//    c_i + p a Fast2Sum (|p| <= 0.35 * 1.2 / (i+1)! < c_i), leaving three
//    roundings of the low part (<= 3 * 2^-105 of the step's value, at most
//    1.42); carried through the remaining multiplies by |r| < 1 and divided
//    by exp(r) >= 0.707: 12 steps, 2^-98.3. Sum 2^-94.3.
//  * With the table (AVX-512: one permute per part): k = round(16 d_hi
//    log2 e) (|k| < 2^15, so k/16 c1 and k/16 c2 stay exact), the same
//    reduction to |r| <= ln2/32 (1 + 2^-42), Taylor to degree 12
//    (truncation 2^-104), terms 7..12 in double (at most 2^-51, evaluated
//    within 2^-52: 2^-103), 0..6 in double-double (7 steps, 2^-100.6), times
//    2^(j/16) as ExpTable16's table + table_lo (within 2^-106; the product
//    2^-104). With the r_lo roundings above, 2^-95.5.
//  * Both: times exp(r_lo) = 1 + r_lo + r_lo^2 / 2 (to 2^-130) and the
//    scaling by 2^k (exact: the terms kept, d_hi > -600, have two normal
//    parts): 2^-104.
//  kDdTermErr = 2^-93 leaves a factor 2.5. Measured against a quad
//  reference (expq, 1.6M lanes over |d| <= 1, 40 and 600, with and without
//  d_lo): 2^-99.3 (AVX-512), 2^-96.8 (AVX2 and scalar).
// The sum: per lane and accumulator a double-double add renormalized each
// time (TwoSum of the high parts, then Fast2Sum), each within 2^-102 of
// A = sum |b exp(d)| (the magnitudes, summed alongside in plain double to
// within n 2^-53 relative; 1.01 covers that), so S is within (kDdTermErr +
// adds 2^-102) A + (the dropped terms) sum |b| 2^-865 (exp(-600) < 2^-865).
// Included after simd_loops.h's requirements (SSM_ISA, vecmath_<isa>.h).
#pragma once

#include "simd_loops.h"

namespace ssm {
namespace SSM_ISA {
namespace {
constexpr double kDdTermErr = 0x1p-93;
constexpr int kLseDdUnroll = 2;  // lse_dd's accumulators (its tile: 2 vectors)

template <class V>
struct DdReg {
  Reg<V> hi, lo;
};

// a * b = p + e exactly (Dekker's split where fmadd is not fused).
template <class V>
inline void two_prod_lanes(Reg<V> a, Reg<V> b, Reg<V>& p, Reg<V>& e) {
  p = V::mul(a, b);
  if constexpr (FusedFma<V>::value) {
    e = V::fmadd(a, b, V::sub(V::set1(0.0), p));
  } else {
    auto split = [](Reg<V> v, Reg<V>& h, Reg<V>& l) {
      const Reg<V> t = V::mul(V::set1(134217729.0), v);  // 2^27 + 1
      h = V::sub(t, V::sub(t, v));
      l = V::sub(v, h);
    };
    Reg<V> ah, al, bh, bl;
    split(a, ah, al);
    split(b, bh, bl);
    e = V::add(V::add(V::add(V::sub(V::mul(ah, bh), p), V::mul(ah, bl)), V::mul(al, bh)), V::mul(al, bl));
  }
}

// a - b = s + e exactly (TwoSum of a and -b).
template <class V>
inline void two_diff_lanes(Reg<V> a, Reg<V> b, Reg<V>& s, Reg<V>& e) {
  s = V::sub(a, b);
  const Reg<V> bb = V::sub(s, a);
  e = V::sub(V::sub(a, V::sub(s, bb)), V::add(b, bb));
}

// s += t, renormalized (|lo| <= ulp(hi) / 2).
template <class V>
inline void dd_add_lanes(DdReg<V>& s, const DdReg<V>& t) {
  Reg<V> h, e;
  two_diff_lanes<V>(s.hi, V::sub(V::set1(0.0), t.hi), h, e);
  e = V::add(e, V::add(s.lo, t.lo));
  s.hi = V::add(h, e);
  s.lo = V::sub(e, V::sub(s.hi, h));
}

// Horner in double-double from q down to term 0: q = c_i + r q with the
// double r (nr = -r), c_i = 1/i! as double-double; each step's product
// exact (p = -q.hi nr, pe = q.hi r - p by one fma) and c_i + p a Fast2Sum.
// 1/i! (i <= 11) rounded to double: the high parts of dd_horner's constants.
constexpr double dd_coeff_hi(int i) {
  constexpr double c_hi[12] = {1.0,
                               1.0,
                               0.5,
                               0x1.5555555555555p-3,
                               0x1.5555555555555p-5,
                               0x1.1111111111111p-7,
                               0x1.6c16c16c16c17p-10,
                               0x1.a01a01a01a01ap-13,
                               0x1.a01a01a01a01ap-16,
                               0x1.71de3a556c734p-19,
                               0x1.27e4fb7789f5cp-22,
                               0x1.ae64567f544e4p-26};
  return c_hi[i];
}

template <class V, int Top>
inline void dd_horner(DdReg<V>& q, Reg<V> r, Reg<V> nr) {
  constexpr double c_lo[12] = {0.0,
                               0.0,
                               0.0,
                               0x1.5555555555555p-57,
                               0x1.5555555555555p-59,
                               0x1.1111111111111p-63,
                               -0x1.f49f49f49f49fp-65,
                               0x1.a01a01a01a01ap-73,
                               0x1.a01a01a01a01ap-76,
                               -0x1.c154f8ddc6c00p-73,
                               0x1.cbbc05b4fa99ap-76,
                               -0x1.c062e06d1f209p-80};
  static_assert(Top < 12, "the constants");
  for (int i = Top; i >= 0; --i) {
    Reg<V> p_neg, pe;
    if constexpr (FusedFma<V>::value) {
      p_neg = V::mul(q.hi, nr);
      pe = V::fmadd(q.hi, r, p_neg);
    } else {
      Reg<V> p;
      two_prod_lanes<V>(q.hi, r, p, pe);
      p_neg = V::sub(V::set1(0.0), p);
    }
    pe = V::fmadd(q.lo, r, pe);
    const Reg<V> c = V::set1(dd_coeff_hi(i));
    const Reg<V> s = V::sub(c, p_neg);
    const Reg<V> err = V::sub(V::sub(c, s), p_neg);  // Fast2Sum: |c| >= |p|
    q.hi = s;
    q.lo = c_lo[i] != 0.0 ? V::add(V::add(err, pe), V::set1(c_lo[i])) : V::add(err, pe);
  }
}

// r + r_lo = d_hi + d_lo - k ln2 (k a multiple of 1/16 or an integer; the
// derivation above): k c1 and k c2 exact, a = d_hi - k c1 exact, TwoSum.
template <class V>
inline void reduce_dd(Reg<V> d_hi, Reg<V> d_lo, Reg<V> k, Reg<V>& r, Reg<V>& r_lo) {
  constexpr double c1 = 0x1.62e42fep-1, c2 = 0x1.f473de6p-30, c3 = 0x1.5e4f1d9cc01f9p-59;  // ln2
  two_diff_lanes<V>(V::fmadd(k, V::set1(-c1), d_hi), V::mul(k, V::set1(c2)), r, r_lo);
  r_lo = V::fmadd(k, V::set1(-c3), V::add(r_lo, d_lo));
}

// exp(r + r_lo) = sum r^i / i! (i <= Last) times 1 + r_lo + r_lo^2 / 2:
// terms Top + 1 .. Last in plain double, 0 .. Top in double-double.
template <class V, int Top, int Last>
inline DdReg<V> exp_taylor_dd(Reg<V> r, Reg<V> r_lo) {
  // 1/i!, correctly rounded, i = 12..20 (lower ones: dd_horner's).
  constexpr double inv_fact[9] = {0x1.1eed8eff8d898p-29, 0x1.6124613a86d09p-33, 0x1.93974a8c07c9dp-37,
                                  0x1.ae7f3e733b81fp-41, 0x1.ae7f3e733b81fp-45, 0x1.952c77030ad4ap-49,
                                  0x1.6827863b97d97p-53, 0x1.2f49b46814157p-57, 0x1.e542ba4020225p-62};
  auto coeff = [&](int i) { return i >= 12 ? inv_fact[i - 12] : dd_coeff_hi(i); };
  Reg<V> tl = V::set1(coeff(Last));
  for (int i = Last - 1; i > Top; --i) tl = V::fmadd(tl, r, V::set1(coeff(i)));
  DdReg<V> q{tl, V::set1(0.0)};
  dd_horner<V, Top>(q, r, V::sub(V::set1(0.0), r));
  q.lo = V::fmadd(q.hi, V::fmadd(V::mul(r_lo, V::set1(0.5)), r_lo, r_lo), q.lo);
  return q;
}

// exp(d_hi + d_lo) = (hi + lo) 2^k, |d_hi| <= 745, within kDdTermErr
// (the derivation above); k is returned as a double that V::scale2 takes
// (an integer, or with the 16-entry table k16/16, which scale2 floors).
template <class V>
inline DdReg<V> exp_dd_lanes(Reg<V> d_hi, Reg<V> d_lo, Reg<V>& k) {
  constexpr double kLog2e = 1.4426950408889634;
  Reg<V> r, r_lo;
  if constexpr (HasExpTable<V>::value) {
    // k/16 = round(16 d log2e)/16 by the magic constant, which leaves k mod
    // 16 in the low mantissa bits for the table (ExpTable16: 2^(j/16) as
    // table + table_lo, within 2^-106), |r| <= ln2/32 (1 + 2^-42).
    const Reg<V> t = V::fmadd(d_hi, V::set1(kLog2e), V::set1(ExpTable16::magic));
    k = V::sub(t, V::set1(ExpTable16::magic));
    reduce_dd<V>(d_hi, d_lo, k, r, r_lo);
    const DdReg<V> q = exp_taylor_dd<V, 6, 12>(r, r_lo);
    // times 2^(j/16) = th + tlo
    const Reg<V> th = V::exp_table(t, V::table_lo(), V::table_hi());
    const Reg<V> tlo = V::exp_table(t, V::load(ExpTable16::table_lo), V::load(ExpTable16::table_lo + 8));
    Reg<V> p, pe;
    two_prod_lanes<V>(q.hi, th, p, pe);
    pe = V::fmadd(q.hi, tlo, V::fmadd(q.lo, th, pe));
    return {p, pe};
  } else {
    k = V::round(V::mul(d_hi, V::set1(kLog2e)));
    reduce_dd<V>(d_hi, d_lo, k, r, r_lo);
    return exp_taylor_dd<V, 11, 20>(r, r_lo);
  }
}

// One term b exp(x - max) of the sum (b null: 1). Unweighted, x is
// clamped at max - 600 (NaN-free rows: the caller's), so each term is
// exp(x - max) or, for x below that (also -inf), exp(-600) < 2^-865: the
// sum errs by at most 2^-865 per entry, which the bound counts. Weighted,
// such terms are dropped, |b| is added to dropped and |term| to mag.
template <class V, bool Weighted>
inline DdReg<V> dd_term(Reg<V> xv, Reg<V> bv, Reg<V> vmax, Reg<V>& mag, Reg<V>& dropped) {
  Reg<V> d_hi, d_lo, k;
  if constexpr (!Weighted) {
    two_diff_lanes<V>(V::max(xv, V::sub(vmax, V::set1(600.0))), vmax, d_hi, d_lo);
    DdReg<V> t = exp_dd_lanes<V>(d_hi, d_lo, k);
    return {V::scale2(t.hi, k), V::scale2(t.lo, k)};
  } else {
    two_diff_lanes<V>(xv, vmax, d_hi, d_lo);
    const typename V::mask keep = V::gt(d_hi, V::set1(-600.0));
    d_hi = V::select(keep, d_hi, V::set1(0.0));
    d_lo = V::select(keep, d_lo, V::set1(0.0));
    DdReg<V> t = exp_dd_lanes<V>(d_hi, d_lo, k);
    t.hi = V::select(keep, V::scale2(t.hi, k), V::set1(0.0));
    t.lo = V::select(keep, V::scale2(t.lo, k), V::set1(0.0));
    Reg<V> p, pe;
    two_prod_lanes<V>(t.hi, bv, p, pe);
    const Reg<V> absb = V::max(bv, V::sub(V::set1(0.0), bv));
    dropped = V::add(dropped, V::select(keep, V::set1(0.0), absb));
    mag = V::add(mag, V::max(p, V::sub(V::set1(0.0), p)));
    return {p, V::fmadd(t.lo, bv, pe)};
  }
}

// lse = max + log S from S = s_hi + s_lo > 0 (normal, |log S| <= 700) and
// y0 within ~2^-40 |y0| + 2^-40 of log S: log S = y0 + log1p(delta), delta
// = S exp(-y0) - 1 (|delta| <= 2^-30), log1p(delta) = delta - delta^2 / 2
// (to |delta|^3 / 3), and max + y0 by TwoSum. err receives a bound on |lse
// - exact| given rel, a bound on |S - exact S| / S: rel (1 + 2^-40) plus
// exp(-y0)'s kDdTermErr, the products' 2^-102, delta's and the assembly's
// roundings (2^-51 |delta| + 2^-52 |lse|) and the truncation.
template <class V>
inline void lse_from_dd(Reg<V> vmax, Reg<V> s_hi, Reg<V> s_lo, Reg<V> y0, Reg<V> rel, Reg<V>& lse, Reg<V>& err) {
  const Reg<V> zero = V::set1(0.0);
  Reg<V> k;
  const DdReg<V> e = exp_dd_lanes<V>(V::sub(zero, y0), zero, k);
  const Reg<V> sh = V::scale2(s_hi, k), sl = V::scale2(s_lo, k);  // S 2^k ~ 1
  Reg<V> p, pe;
  two_prod_lanes<V>(sh, e.hi, p, pe);
  pe = V::fmadd(sl, e.hi, V::fmadd(sh, e.lo, pe));
  const Reg<V> delta = V::add(V::sub(p, V::set1(1.0)), pe);  // p - 1 exact (Sterbenz)
  const Reg<V> l1p = V::sub(delta, V::mul(V::mul(delta, delta), V::set1(0.5)));
  Reg<V> lh, ll;
  two_diff_lanes<V>(vmax, V::sub(zero, y0), lh, ll);
  lse = V::add(lh, V::add(ll, l1p));
  const Reg<V> ad = V::max(delta, V::sub(zero, delta)), al = V::max(lse, V::sub(zero, lse));
  err = V::fmadd(rel, V::set1(1.0 + 0x1p-40), V::set1(kDdTermErr + 0x1p-102));
  err = V::fmadd(ad, V::fmadd(V::mul(ad, ad), V::set1(0.34), V::set1(0x1p-51)), err);
  err = V::fmadd(al, V::set1(0x1p-52), err);
}

// The row's lse from its max (lse_dd in kernel_api.h): out = {lse, sign,
// bound on |lse - exact|}.
template <class V, class In>
bool lse_dd(const In* x, const In* b, size_t n, double max, double* out) {
  constexpr int U = kLseDdUnroll;
  DdReg<V> acc[U];
  Reg<V> mag[U], dropped[U];
  for (int u = 0; u < U; ++u) {
    acc[u] = {V::set1(0.0), V::set1(0.0)};
    mag[u] = dropped[u] = V::set1(0.0);
  }
  const Reg<V> vmax = V::set1(max);
  for_each_block<V, U>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    Reg<V> xv = load_n<V>(x + i, count, -kInf);
    if (b) {
      const Reg<V> bv = load_n<V>(b + i, count, 0.0);
      xv = V::select(V::nonzero(bv), xv, V::set1(-kInf));
      dd_add_lanes<V>(acc[u], dd_term<V, true>(xv, bv, vmax, mag[u], dropped[u]));
    } else {
      dd_add_lanes<V>(acc[u], dd_term<V, false>(xv, xv, vmax, mag[u], dropped[u]));
    }
  });
  constexpr size_t W = V::width;
  double hi[U][W], lo[U][W], m[U][W], dr[U][W];
  for (int u = 0; u < U; ++u) {
    V::to_array(acc[u].hi, hi[u]);
    V::to_array(acc[u].lo, lo[u]);
    V::to_array(mag[u], m[u]);
    V::to_array(dropped[u], dr[u]);
  }
  DdReg<V> s{V::set1(hi[0][0]), V::set1(lo[0][0])};
  double a = 0.0, drop = 0.0;
  for (int u = 0; u < U; ++u)
    for (size_t l = 0; l < W; ++l) {
      if (u || l) dd_add_lanes<V>(s, {V::set1(hi[u][l]), V::set1(lo[u][l])});
      a += m[u][l];
      drop += dr[u][l];
    }
  double sh[W], sl[W];
  V::to_array(s.hi, sh);
  V::to_array(s.lo, sl);
  const double sign = sh[0] < 0 ? -1.0 : 1.0;
  const double s_hi = sign * sh[0], s_lo = sign * sl[0];
  if (!(s_hi >= 0x1p-900 && s_hi <= 0x1p+1000)) return false;
  const double y0 = ::log(s_hi);
  // Unweighted, every term is positive (A = S) and every entry, with the
  // padding of the last vector, may be a clamped one.
  if (!b) {
    a = s_hi;
    drop = static_cast<double>(n + W);
  }
  const double adds = static_cast<double>(n / (U * W) + U * W + 2);
  const double rel = ((kDdTermErr + adds * 0x1p-102) * 1.01 * a + drop * 0x1p-865) / (s_hi * (1.0 - 0x1p-50));
  Reg<V> lse, err;
  lse_from_dd<V>(vmax, V::set1(s_hi), V::set1(s_lo), V::set1(y0), V::set1(rel), lse, err);
  double l[W], e[W];
  V::to_array(lse, l);
  V::to_array(err, e);
  out[0] = l[0];
  out[1] = sign;
  out[2] = e[0];
  return is_finite(out[0]) && is_finite(out[2]);
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
