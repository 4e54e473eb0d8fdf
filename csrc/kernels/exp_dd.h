// The vector tier of the accurate log-sum-exp near lse = 0 (docs/design.md,
// "near zero"): S = sum b exp(x - max) in double-double lanes, and lse = max
// + log S from it, with a bound on the error that the caller compares with
// the contract. Rows whose bound does not certify their result go to the
// scalar double-double sum (lse_accurate in softmax_rows.h), ~50 times
// slower and, by its own bound, no more accurate: it decides the rows this
// bound cannot certify, not better ones.
//
// exp(d), d = d_hi + d_lo (x - max by TwoSum, |d_hi| <= 600 where kept),
// relative error below kDdTermErr = 2^-102; the derivation, term by term,
// in units of 2^-106 relative (u = 2^-53):
//  * The reduction, both lane types: k = round(d_hi log2 e), or with the
//    16-entry table (AVX-512: one permute per part) k = round(16 d_hi log2
//    e) / 16, |k| <= 1100; ln2 = c1 + c2 + c3 with c1 and c2 of 38 bits
//    (c3 within 2^-136 of the rest: times |k|, 2^-125), so k c1 and k c2
//    are exact (a 15-bit k16 times 38 bits), and a = d_hi - k c1 is exact
//    (k != 0 only for |d_hi| >= 0.34, or >= 2^-6 with the table, so a is a
//    multiple of 2^-54, or 2^-58, below 2^-1, or 2^-5). s + e1 = a - k c2
//    and r + e2 = s + d_lo by TwoSum, r_lo = e1 + e2 - k c3: |e1|, |e2| <=
//    u |r|max and |k c3| < 2^-67, so |r_lo| <= 2^-53.5 (table: 2^-57.5)
//    and its two roundings are below 1.4 (table 0.04) units. |r| <= ln2/2
//    (1 + 2^-40) = 0.34658, or ln2/32 (1 + 2^-40) = 0.021661.
//  * exp(r) = sum r^i / i! to degree 22 (table: 13): truncation 0.1 units.
//    Terms from 14 on (table: 8) by Horner in plain double: their sum is
//    below 2^-57.6 (2^-59.5), evaluated within 3u: 0.2 units (0.02).
//  * Terms 0..13 (table: 0..7) by Horner in double-double with the double
//    r and 1/i! as double-double constants: each step's product exact
//    (TwoProd) and c_i + p a Fast2Sum (|p| <= 0.35 * 1.2 / (i+1)! < c_i);
//    the low part, at most 2u of the step's value q_i, is rounded up to
//    three times: below u^2 (2 |q_i| + 9 |p_i| + c_i, the last only where
//    c_i has a low part), carried to the result times r^i: steps 0 (no
//    c_lo, q <= 1.42, p <= 0.42) 3.9 u^2, 1 (q <= 1.19, p <= 0.19, times
//    r) 0.8 u^2, 2 0.11 u^2, later ones 0.05 u^2; over exp(r) >= 0.707:
//    6.9 units (table: step 0 only, 1.2 units).
//  * Times exp(r_lo) = 1 + r_lo (r_lo^2 / 2 < 0.3 units): one rounding of
//    q.hi r_lo + q.lo (<= 2.7u q): 5.4 units (table: 2.2).
//  * With the table, times 2^(j/16) = ExpTable16's table + table_lo
//    (within 1 unit): the product's low part rounded twice (2 and 3 units)
//    and q.lo table_lo dropped (1 unit): 7 units.
//  * The scaling by 2^k is exact (the terms kept, d_hi > -600, have two
//    normal parts).
//  Sum: 14.3 units = 2^-102.2 (table: 12.6 units = 2^-102.3), within
//  kDdTermErr = 2^-102. Measured against a quad reference (expq, 2.4M
//  lanes over |d| <= 1, 40 and 600, with and without d_lo): 2^-103.8
//  (AVX-512), 2^-104.5 (AVX2 and scalar).
// The sum: per lane and accumulator a double-double add that loses nothing
// (DdSum: TwoSum of the high parts, of the low parts and of the first's
// error with the second's sum; their two errors, each below 2^-103.2 of A =
// sum |b exp(d)|, summed in a plain double carry), so after N adds the
// carry's own roundings are below N (N + 1) 2^-156 A; folding the carry
// into the low part at the end rounds once (2^-105 S). A is summed
// alongside in plain double to within n 2^-53 relative (1.01 covers that),
// so S is within (kDdTermErr + N (N + 1) 2^-156) 1.01 A + 2^-105 S + (the
// dropped terms) sum |b| 2^-865 (exp(-600) < 2^-865); a weighted term's
// product by b adds 2^-104 A.
// Included after simd_loops.h's requirements (SSM_ISA, vecmath_<isa>.h).
#pragma once

#include "simd_loops.h"

namespace ssm {
namespace SSM_ISA {
namespace {
constexpr double kDdTermErr = 0x1p-102;
// float32 data (Fine = false) need no such terms for their 1-ulp
// certificate: Taylor to degree 20 (table: 12) with terms up to 11 (6) in
// double-double, and the renormalized add without the carry (each add
// within 2^-102 of A), about a fifth less work per term. Their terms are
// within kDdTermErrCoarse = 2^-94: the truncation 2^-97.1 and the plain
// terms from 12 on (at most 2^-47.2, within 2^-49.5: 2^-96.7) next to the
// rest above (2^-102.2), 2^-95.9 in all (table: the truncation 2^-104, the
// plain terms from 7 on 2^-103, 2^-101.4 in all). Measured, as above:
// 2^-96.8 (AVX2 and scalar), 2^-102.9 (AVX-512).
constexpr double kDdTermErrCoarse = 0x1p-94;

// The bound on |S - exact S| per 1.01 A (the head above) for N adds: the
// terms' and the additions'.
template <bool Fine>
inline double dd_sum_err(double adds) {
  return Fine ? kDdTermErr + adds * (adds + 1.0) * 0x1p-156 : kDdTermErrCoarse + adds * 0x1p-102;
}
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

// a + b = s + e exactly (TwoSum).
template <class V>
inline void two_sum_lanes(Reg<V> a, Reg<V> b, Reg<V>& s, Reg<V>& e) {
  s = V::add(a, b);
  const Reg<V> bb = V::sub(s, a);
  e = V::add(V::sub(a, V::sub(s, bb)), V::sub(b, bb));
}

// A double-double sum whose additions lose nothing: hi + lo (renormalized,
// |lo| <= ulp(hi) / 2) + carry, the low parts' rounding errors (each
// recovered by TwoSum) summed in plain double.
template <class V>
struct DdSum {
  Reg<V> hi, lo, carry;
};

template <class V>
inline DdSum<V> dd_sum_zero() {
  return {V::set1(0.0), V::set1(0.0), V::set1(0.0)};
}

// s += t: hi + lo + carry gains t.hi + t.lo exactly but for carry's own
// rounding. Not Fine: hi + lo renormalized after the TwoSum of the high
// parts (the low parts' sum rounded), carry untouched.
template <class V, bool Fine>
inline void dd_sum_add(DdSum<V>& s, const DdReg<V>& t) {
  Reg<V> h, e;
  two_sum_lanes<V>(s.hi, t.hi, h, e);
  if constexpr (Fine) {
    Reg<V> l, f, m, g;
    two_sum_lanes<V>(s.lo, t.lo, l, f);
    two_sum_lanes<V>(e, l, m, g);
    s.carry = V::add(s.carry, V::add(f, g));
    two_sum_lanes<V>(h, m, s.hi, s.lo);
  } else {
    e = V::add(e, V::add(s.lo, t.lo));
    s.hi = V::add(h, e);
    s.lo = V::sub(e, V::sub(s.hi, h));
  }
}

// The sum as hi + lo (renormalized): carry folded into lo, one rounding.
template <class V>
inline DdReg<V> dd_sum_value(const DdSum<V>& s) {
  DdReg<V> out;
  two_sum_lanes<V>(s.hi, V::add(s.lo, s.carry), out.hi, out.lo);
  return out;
}

// 1/i! = dd_coeff_hi(i) + dd_coeff_lo(i) (i <= 13) as double-doubles, each
// part correctly rounded; 1/i! for i >= 14 correctly rounded (the terms
// exp_taylor_dd sums in plain double).
constexpr double dd_coeff_hi(int i) {
  constexpr double c_hi[14] = {1.0,
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
                               0x1.ae64567f544e4p-26,
                               0x1.1eed8eff8d898p-29,
                               0x1.6124613a86d09p-33};
  constexpr double inv_fact[9] = {0x1.93974a8c07c9dp-37, 0x1.ae7f3e733b81fp-41, 0x1.ae7f3e733b81fp-45,
                                  0x1.952c77030ad4ap-49, 0x1.6827863b97d97p-53, 0x1.2f49b46814157p-57,
                                  0x1.e542ba4020225p-62, 0x1.71b8ef6dcf572p-66, 0x1.0ce396db7f853p-70};
  return i < 14 ? c_hi[i] : inv_fact[i - 14];
}
constexpr double dd_coeff_lo(int i) {
  constexpr double c_lo[14] = {0.0,
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
                               -0x1.c062e06d1f209p-80,
                               -0x1.2aec959e14c06p-83,
                               0x1.f28e0cc748ebep-87};
  return c_lo[i];
}

// Horner in double-double from q down to term 0: q = c_i + r q with the
// double r (nr = -r), c_i = 1/i! as double-double; each step's product
// exact (p = -q.hi nr, pe = q.hi r - p by one fma) and c_i + p a Fast2Sum.
template <class V, int Top>
inline void dd_horner(DdReg<V>& q, Reg<V> r, Reg<V> nr) {
  static_assert(Top < 14, "the constants");
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
    q.lo = dd_coeff_lo(i) != 0.0 ? V::add(V::add(err, pe), V::set1(dd_coeff_lo(i))) : V::add(err, pe);
  }
}

// r + r_lo = d_hi + d_lo - k ln2 (k a multiple of 1/16 or an integer; the
// derivation above): k c1 and k c2 exact, a = d_hi - k c1 exact, then
// a - k c2 and + d_lo by TwoSum, their two errors and - k c3 in r_lo.
template <class V>
inline void reduce_dd(Reg<V> d_hi, Reg<V> d_lo, Reg<V> k, Reg<V>& r, Reg<V>& r_lo) {
  constexpr double c1 = 0x1.62e42fefap-1, c2 = 0x1.cf79abc9ep-40, c3 = 0x1.d9cc01f97b57ap-79;  // ln2
  Reg<V> s, e1, e2;
  two_diff_lanes<V>(V::fmadd(k, V::set1(-c1), d_hi), V::mul(k, V::set1(c2)), s, e1);
  two_sum_lanes<V>(s, d_lo, r, e2);
  r_lo = V::fmadd(k, V::set1(-c3), V::add(e1, e2));
}

// exp(r + r_lo) = sum r^i / i! (i <= Last) times 1 + r_lo: terms Top + 1
// .. Last in plain double, 0 .. Top in double-double.
template <class V, int Top, int Last>
inline DdReg<V> exp_taylor_dd(Reg<V> r, Reg<V> r_lo) {
  Reg<V> tl = V::set1(dd_coeff_hi(Last));
  for (int i = Last - 1; i > Top; --i) tl = V::fmadd(tl, r, V::set1(dd_coeff_hi(i)));
  DdReg<V> q{tl, V::set1(0.0)};
  dd_horner<V, Top>(q, r, V::sub(V::set1(0.0), r));
  q.lo = V::fmadd(q.hi, r_lo, q.lo);
  return q;
}

// exp(d_hi + d_lo) = (hi + lo) 2^k, |d_hi| <= 745, within kDdTermErr
// (the derivation above); k is returned as a double that V::scale2 takes
// (an integer, or with the 16-entry table k16/16, which scale2 floors).
template <class V, bool Fine>
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
    const DdReg<V> q = exp_taylor_dd<V, Fine ? 7 : 6, Fine ? 13 : 12>(r, r_lo);
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
    return exp_taylor_dd<V, Fine ? 13 : 11, Fine ? 22 : 20>(r, r_lo);
  }
}

// One term b exp(x - max) of the sum (b null: 1). Unweighted, x is
// clamped at max - 600 (NaN-free rows: the caller's), so each term is
// exp(x - max) or, for x below that (also -inf), exp(-600) < 2^-865: the
// sum errs by at most 2^-865 per entry, which the bound counts. Weighted,
// such terms are dropped, |b| is added to dropped and |term| to mag.
template <class V, bool Weighted, bool Fine>
inline DdReg<V> dd_term(Reg<V> xv, Reg<V> bv, Reg<V> vmax, Reg<V>& mag, Reg<V>& dropped) {
  Reg<V> d_hi, d_lo, k;
  if constexpr (!Weighted) {
    two_diff_lanes<V>(V::max(xv, V::sub(vmax, V::set1(600.0))), vmax, d_hi, d_lo);
    DdReg<V> t = exp_dd_lanes<V, Fine>(d_hi, d_lo, k);
    return {V::scale2(t.hi, k), V::scale2(t.lo, k)};
  } else {
    two_diff_lanes<V>(xv, vmax, d_hi, d_lo);
    const typename V::mask keep = V::gt(d_hi, V::set1(-600.0));
    d_hi = V::select(keep, d_hi, V::set1(0.0));
    d_lo = V::select(keep, d_lo, V::set1(0.0));
    DdReg<V> t = exp_dd_lanes<V, Fine>(d_hi, d_lo, k);
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
// = S exp(-y0) - 1 (|delta| <= 2^-30) as a double-double dh + dl (p - 1
// exact by Sterbenz, then TwoSum), log1p(delta) = dh + dl - dh^2 / 2 (to
// |delta|^3 / 3 and dh dl < 2^-53 dh^2), lse = (max + y0 by TwoSum) + dh by
// TwoSum + the small parts. err receives a bound on |lse - exact| given
// rel, a bound on |S - exact S| / S: rel (1 + 2^-40) plus exp(-y0)'s
// kDdTermErr, the product S exp(-y0)'s two roundings of its low part and
// the dropped s_lo e_lo (2^-103), the small parts' roundings (below
// 2^-103 (|lse| + |delta|) + 2^-52 delta^2), the final addition's (2^-53
// |lse|; 2^-52 |lse| covers both) and the truncation.
template <class V, bool Fine>
inline void lse_from_dd(Reg<V> vmax, Reg<V> s_hi, Reg<V> s_lo, Reg<V> y0, Reg<V> rel, Reg<V>& lse, Reg<V>& err) {
  const Reg<V> zero = V::set1(0.0);
  Reg<V> k;
  const DdReg<V> e = exp_dd_lanes<V, Fine>(V::sub(zero, y0), zero, k);
  const Reg<V> sh = V::scale2(s_hi, k), sl = V::scale2(s_lo, k);  // S 2^k ~ 1
  Reg<V> p, pe;
  two_prod_lanes<V>(sh, e.hi, p, pe);
  pe = V::fmadd(sl, e.hi, V::fmadd(sh, e.lo, pe));
  Reg<V> dh, dl;
  two_sum_lanes<V>(V::sub(p, V::set1(1.0)), pe, dh, dl);
  Reg<V> lh, ll, a, ae;
  two_sum_lanes<V>(vmax, y0, lh, ll);
  two_sum_lanes<V>(lh, dh, a, ae);
  const Reg<V> tail = V::sub(V::add(V::add(ae, ll), dl), V::mul(V::mul(dh, dh), V::set1(0.5)));
  lse = V::add(a, tail);
  const Reg<V> ad = V::max(dh, V::sub(zero, dh)), al = V::max(lse, V::sub(zero, lse));
  err = V::fmadd(rel, V::set1(1.0 + 0x1p-40), V::set1((Fine ? kDdTermErr : kDdTermErrCoarse) + 0x1p-103));
  err = V::fmadd(ad, V::fmadd(ad, V::fmadd(ad, V::set1(0.34), V::set1(0x1p-52)), V::set1(0x1p-103)), err);
  err = V::fmadd(al, V::set1(0x1p-52 + 0x1p-103), err);
}

// The row's lse from its max (lse_dd in kernel_api.h): out = {lse, sign,
// bound on |lse - exact|}.
template <class V, class In>
bool lse_dd(const In* x, const In* b, size_t n, double max, double* out) {
  constexpr int U = kLseDdUnroll;
  constexpr bool Fine = std::is_same<In, double>::value;
  DdSum<V> acc[U];
  Reg<V> mag[U], dropped[U];
  for (int u = 0; u < U; ++u) {
    acc[u] = dd_sum_zero<V>();
    mag[u] = dropped[u] = V::set1(0.0);
  }
  const Reg<V> vmax = V::set1(max);
  for_each_block<V, U>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    Reg<V> xv = load_n<V>(x + i, count, -kInf);
    if (b) {
      const Reg<V> bv = load_n<V>(b + i, count, 0.0);
      xv = V::select(V::nonzero(bv), xv, V::set1(-kInf));
      dd_sum_add<V, Fine>(acc[u], dd_term<V, true, Fine>(xv, bv, vmax, mag[u], dropped[u]));
    } else {
      dd_sum_add<V, Fine>(acc[u], dd_term<V, false, Fine>(xv, xv, vmax, mag[u], dropped[u]));
    }
  });
  constexpr size_t W = V::width;
  double hi[U][W], lo[U][W], c[U][W], m[U][W], dr[U][W];
  for (int u = 0; u < U; ++u) {
    V::to_array(acc[u].hi, hi[u]);
    V::to_array(acc[u].lo, lo[u]);
    V::to_array(acc[u].carry, c[u]);
    V::to_array(mag[u], m[u]);
    V::to_array(dropped[u], dr[u]);
  }
  DdSum<V> s = dd_sum_zero<V>();
  double a = 0.0, drop = 0.0, carry = 0.0;
  for (int u = 0; u < U; ++u)
    for (size_t l = 0; l < W; ++l) {
      dd_sum_add<V, Fine>(s, {V::set1(hi[u][l]), V::set1(lo[u][l])});
      carry += c[u][l];
      a += m[u][l];
      drop += dr[u][l];
    }
  s.carry = V::add(s.carry, V::set1(carry));
  const DdReg<V> total = dd_sum_value<V>(s);
  double sh[W], sl[W];
  V::to_array(total.hi, sh);
  V::to_array(total.lo, sl);
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
  // The terms (weighted: and the product by b, 2^-104), the carries
  // (exp_dd.h's head: adds lane adds and reduction adds), and the fold of
  // the carry into the low part (2^-105 S).
  const double adds = static_cast<double>(n / (U * W) + U * W + 2);
  const double term = dd_sum_err<Fine>(adds) + (b ? 0x1p-104 : 0.0);
  const double rel = (term * 1.01 * a + drop * 0x1p-865) / (s_hi * (1.0 - 0x1p-50)) + 0x1p-105;
  Reg<V> lse, err;
  lse_from_dd<V, Fine>(vmax, V::set1(s_hi), V::set1(s_lo), V::set1(y0), V::set1(rel), lse, err);
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
