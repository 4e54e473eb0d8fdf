// The passes that write y: y = exp(x - ref) * 2^-e * inv (the last pass of
// every softmax algorithm; XNNPACK calls this job vscaleextexp), the
// stored terms of three-pass-reload with their sum, y *= factor, and
// y = x - lse (log_softmax). vexp exposes the written values' exp for tests.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace (and include its vecmath_<isa>.h) first"
#endif
#pragma once

#include "expsum_fast.h"

namespace ssm {
namespace SSM_ISA {
namespace {

// exp(x) * 2^-e * inv for the written values (softmax's last pass,
// three-pass-reload's stored terms), one vector (one()) or U consecutive
// full vectors stage by stage like fast_terms (block()); both give the same
// bits for an element, so heads, tails and streamed bodies agree.
// Lane types with the exp table (AVX-512 float64) take ExpTable16 with inv
// folded into the table once per call, as a double-double h_j + l_j =
// 2^(j/16) * inv (to ~2^-100), and y = (h + (h q + l)) 2^(n - e) with
// q = p(r) - 1: one rounding where it matters, so below 1 ulp of exp
// (measured 0.62 ulp over 10^8 inputs; the degree-11 path 0.93-1.19).
// Degree 6 instead of 11 and no multiply by inv: 10 multiply-add-pipe
// operations per vector instead of 15; the reduction stays exact (two fma). Others: ExpCoeffs (degree 11 /
// float32 degree 6).
// ByInv = false: inv is 1 (three-pass-reload's stored terms, vexp) and its
// multiply, one of the ~10 multiply-add-pipe operations per vector on
// float32, is left out (multiplying by 1 is exact: the same bits).
// OneFactor (the polynomial lanes): the written value p * inv * 2^(n - e)
// is formed as (p * inv 2^-S) * 2^(n - e + S) with one factor 2^k
// (scale2_term: clamp, add, shift, multiply) instead of scale2's two (about
// ten operations on AVX2): for ByInv the 2^-S rides on inv, otherwise on
// the polynomial's coefficients (exact: every Horner step stays a normal
// number scaled by 2^-S, so it rounds as the unscaled one). S = 24 for
// float32 lanes, 64 for float64 (kShift): p * inv 2^-S is normal (p >=
// 2^-0.5, inv in [0.5, 1) by write_exp's normalization, or inv = 1), so
// wherever k = n - e + S is within the normal exponents the product by the
// exact 2^k is the exact value rounded once, as scale2 rounds it. Below
// them (k < -126: a value below 2^-150.5; float64 k < -1022: below
// 2^-1085.5) both give 0; k up to 127 (1023) covers every value below 2^102
// (2^958). Above that it differs (k clamped: a value at least 2^102.5
// (2^958.5), not the true one or inf): callers keep below it (write_exp,
// expsum_store_pow2's 2^100 check). vexp keeps scale2 (x up to 1000 must
// overflow to inf).
template <class V, bool ByInv = true, bool OneFactor = true>
struct WriteExp {
  static constexpr bool kOne = OneFactor && !HasExpTable<V>::value;
  static constexpr bool kF32 = std::is_same<typename V::scalar, float>::value;
  static constexpr double kShift = !kOne ? 0.0 : kF32 ? 24.0 : 64.0;
  static constexpr double kScale = !kOne ? 1.0 : kF32 ? 0x1p-24 : 0x1p-64;
  Reg<V> ve, vinv, h0, h1, l0, l1;
  WriteExp(double e, double inv) : ve(V::set1(e - kShift)), vinv(V::set1(inv * kScale)) {
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
      table_exp<V, U>(r, n, t, h0, h1, l0, l1);
      SSM_STAGE(t[u] = V::scale2(t[u], V::sub(n[u], ve)))
    } else {
      using C = ExpCoeffs<typename V::scalar>;
      // ByInv: inv carries the 2^-S; else the coefficients do.
      constexpr double cs = ByInv ? 1.0 : kScale;
      SSM_STAGE(n[u] = V::round(V::mul(r[u], V::set1(C::log2e))))
      SSM_STAGE(r[u] = V::reduce_ln2(r[u], n[u]))
      SSM_STAGE(t[u] = V::fmadd(V::set1(C::c[C::degree] * cs), r[u], V::set1(C::c[C::degree - 1] * cs)))
      for (int k = C::degree - 2; k >= 0; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(C::c[k] * cs)))
      if constexpr (ByInv) SSM_STAGE(t[u] = V::mul(t[u], vinv))
      if constexpr (kOne)
        SSM_STAGE(t[u] = V::scale2_term(t[u], V::sub(n[u], ve)))
      else
        SSM_STAGE(t[u] = V::scale2(t[u], V::sub(n[u], ve)))
    }
#undef SSM_STAGE
  }
};

// y = exp(x) * 2^-e_ref as m * 2^(n - e_ref) (no x - max rounding at all),
// and the sum of the stored values: blocks of U x B summed plainly, folded
// into a Kahan lane sum, like the fast passes.
// e_ref may be a guess below round(max * log2 e) (the driver's reload without
// a max pass): the terms are then larger by an exact power of two. A block
// whose sum exceeds 2^100 or is NaN (a NaN x, +inf, or a guess far below the
// max) ends the pass early with m = NaN, y partly written; with e_ref from
// the max the terms are below 2^1 and this never happens. WriteExp's one
// factor gives scale2's bits for every term below 2^102 and at least
// 2^102.5 for a term above (its clamp), so every block a term above could
// spoil is rejected (a sum of terms >= 0 is at least each term).
// Out may differ from In (half x, float32 terms: half_generic.h).
template <class V, int U, int B, class In, class Out = In>
ExpSum expsum_store_pow2(const In* x, Out* y, size_t n, double e_ref) {
  constexpr size_t W = V::width;
  LaneSum<V> acc;
  acc.s = acc.c = V::set1(0.0);
  acc.e = V::set1(0.0);
  const WriteExp<V, false> wexp(e_ref, 1.0);
  const Reg<V> limit = V::set1(0x1p+100);
  ExpSum out;
  out.e = 0.0;  // all lane references are 0
  out.m = kNaN;
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

template <class V, bool Stream, bool OneFactor, class In>
void write_exp_fast(const In* x, In* y, size_t n, double e, double inv) {
  const WriteExp<V, true, OneFactor> wexp(e, inv);
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  store_loop_blocks<V, kUnroll, Stream>(
      y, n, [&](size_t i, size_t count) SSM_INLINE { return wexp.one(load_n<V>(x + i, count, -kInf)); },
      [&](size_t i, Reg<V>(&v)[kUnroll]) SSM_INLINE {
        if (ahead) prefetch_block<kUnroll * V::width * sizeof(In)>(x + i + ahead);
        wexp.template block<kUnroll>(x + i, v);
      });
}

// The fast write's WriteExp needs inv in [0.5, 1) and every written value
// below 2^102 (its one-factor scaling; see WriteExp). inv = f 2^j (frexp) is
// written as f with e - j: the same value, and the same bits, because
// inv = 1 / m from fast_ok's m in (0.5, 2^100) (or recompute's m >= 2^-0.5)
// is a normal float in either form. Its callers (softmax_two_pass,
// three-pass-recompute, the half drivers) pass m 2^e = the row's sum of the
// terms exp(x_i), at least each term (sums of terms >= 0; pass 1's exp within
// 2^-20 of pass 2's): every y_i = exp(x_i) / sum <= 1 + 2^-20, so
// n_i - e' <= 1, far inside the 103 it may reach. An inv outside
// (0, 2^1000] (never, from those callers) takes the two-factor scale2.
template <class V, bool Stream, class In>
void write_exp_fast_checked(const In* x, In* y, size_t n, double e, double inv) {
  if (inv > 0.0 && inv <= 0x1p+1000) {
    int j = 0;
    const double f = std::frexp(inv, &j);
    write_exp_fast<V, Stream, true>(x, y, n, e - j, f);
  } else {
    write_exp_fast<V, Stream, false>(x, y, n, e, inv);
  }
}

template <class V, class In>
void write_exp(const In* x, In* y, size_t n, double ref, bool exact, double e, double inv, bool stream) {
  if (exact)
    write_exp_impl<V, true>(x, y, n, ref, e, inv, stream);
  else if (stream)
    write_exp_fast_checked<V, true>(x, y, n, e, inv);
  else
    write_exp_fast_checked<V, false>(x, y, n, e, inv);
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

// write_shift in float64 lanes VW for float32 data: y = (x - hi) - lo with
// x widened exactly, both subtractions in float64 and one rounding to float
// at the store, so that the write adds 0.5 ulp (and ~2^-52 relative) to the
// error of hi + lo: float32 log_softmax's pass 2 where the float32 write's
// budget for that error (0.5 ulp of v = lse - max) is too small for a sum
// with float32 terms. Regular stores only (one float64 vector fills half an
// aligned float32 store).
template <class VW, class In>
void write_shift_wide(const In* x, In* y, size_t n, double hi, double lo) {
  const Reg<VW> vhi = VW::set1(hi), vlo = VW::set1(lo);
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  store_loop<VW, false>(y, n, [&](size_t i, size_t count) SSM_INLINE {
    if (ahead) SSM_PREFETCH(reinterpret_cast<const char*>(x + i + ahead));
    return VW::sub(VW::sub(load_n<VW>(x + i, count, 0.0), vhi), vlo);
  });
}

// The exp of the written values (WriteExp with e = 0, inv = 1), so that its
// measured error is the error of what softmax writes.
template <class V, class In>
void vexp(const In* x, In* y, size_t n) {
  const WriteExp<V, false, false> wexp(0.0, 1.0);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE {
    const Reg<V> xv = load_n<V>(x + i, count, 0.0);
    store_n<V>(y + i, V::select(V::unord(xv), xv, wexp.one(V::min(xv, V::set1(1000.0)))), count);
  });
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
