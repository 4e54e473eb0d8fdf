// The exact sums and the max pass: sum exp(x - ref) with x - ref formed
// exactly (rows outside the fast range, three-pass-recompute's accurate
// path), the online normalizer (a per-lane running max with a rescaled sum,
// Milakov & Gimelshein 2018, arXiv:1805.02867), their float64 ("wide")
// variants with optional weights (log_softmax, the accurate log-sum-exp), and
// max(x) with the NaN flag (pass 1 of the three-pass algorithms). Every
// per-lane sum is Kahan-compensated term by term.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace (and include its vecmath_<isa>.h) first"
#endif
#pragma once

#include "exp_core.h"

namespace ssm {
namespace SSM_ISA {
namespace {

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

// Weighted: ExpSum::mag = sum |b exp(x - max)|. While every weight seen is
// >= 0 that is the sum itself, so nothing more is summed: each block of
// kUnroll vectors first tests its weights (negative_or_notfinite, one test
// with the one for a non-finite weight the loop needs anyway), and from the
// first block with a negative weight on a second loop sums the negative
// terms, min(term, 0), plainly too (neg): mag = S - 2 neg. Summing |term|
// on every element cost 5-11% of ordinary weighted rows.
template <class V, bool Weighted, class In>
ExpSum expsum_online_impl(const In* x, const In* b, size_t n) {
  constexpr size_t W = V::width;
  Reg<V> runmax[kUnroll], s[kUnroll], c[kUnroll], neg[kUnroll];
  for (int u = 0; u < kUnroll; ++u) {
    runmax[u] = V::set1(-kInf);
    s[u] = c[u] = neg[u] = V::set1(0.0);
  }
  typename V::mask special = V::none();
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  auto step = [&](auto signed_tag, size_t i, size_t count, int u) SSM_INLINE {
    constexpr bool Signed = decltype(signed_tag)::value;
    if (ahead && u == 0) prefetch_block<kUnroll * V::width * sizeof(In)>(x + i + ahead);
    Reg<V> xv = load_n<V>(x + i, count, -kInf);
    Reg<V> bv;
    if constexpr (Weighted) {
      bv = load_n<V>(b + i, count, 0.0);
      if constexpr (Signed) special = V::mask_or(special, V::notfinite(bv));
      xv = V::select(V::nonzero(bv), xv, V::set1(-kInf));  // a zero weight removes the term (SciPy)
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
      if constexpr (Signed) neg[u] = V::mul(neg[u], f);
      runmax[u] = newmax;
    }
    exp_split_diff<V>(xv, runmax[u], m, k);
    Reg<V> term = V::scale2_acc(m, k);
    if constexpr (Weighted) term = V::mul(term, bv);
    if constexpr (Signed) neg[u] = V::add(neg[u], V::min(term, V::set1(0.0)));
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
  };
  size_t from = 0;
  if constexpr (Weighted) {
    constexpr size_t B = kUnroll * W;
    for (; from + B <= n; from += B) {
      typename V::mask odd = V::none();
      for (int u = 0; u < kUnroll; ++u) odd = V::mask_or(odd, V::negative_or_notfinite(V::load(b + from + u * W)));
      if (V::any(odd)) {
        bool negative = false;
        for (int u = 0; u < kUnroll; ++u) {
          const Reg<V> bv = V::load(b + from + u * W);
          negative = negative || V::any(V::gt(V::set1(0.0), bv));
          special = V::mask_or(special, V::notfinite(bv));
        }
        if (negative) break;
      }
#if defined(__GNUC__)
#pragma GCC unroll 8
#endif
      for (int u = 0; u < kUnroll; ++u) step(std::false_type{}, from + u * W, W, u);
    }
  }
  // Unweighted, all of the row; weighted, the rest from the first block
  // with a negative weight (or the last, short, block).
  for_each_block<V, kUnroll>(n - from, [&](size_t i, size_t count, int u) SSM_INLINE {
    step(std::bool_constant<Weighted>{}, from + i, count, u);
  });
  double lm[kUnroll * W], ls[kUnroll * W], lc[kUnroll * W], ln[kUnroll * W];
  for (int u = 0; u < kUnroll; ++u) {
    V::to_array(runmax[u], lm + u * W);
    V::to_array(s[u], ls + u * W);
    V::to_array(c[u], lc + u * W);
    V::to_array(neg[u], ln + u * W);
  }
  double gmax = -kInf;
  for (double v : lm) gmax = v > gmax ? v : gmax;
  DoubleDouble sum;
  double total_neg = 0.0;
  for (size_t i = 0; i < kUnroll * W; ++i) {
    const double f = exp_diff_scalar(lm[i], gmax);
    sum.add(ls[i] * f);
    sum.add(-lc[i] * f);
    if (Weighted && f != 0.0) total_neg += ln[i] * f;
  }
  ExpSum out;
  sum.store(out);
  if (Weighted) out.mag = (out.m + out.m_lo) - 2.0 * total_neg;
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

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
