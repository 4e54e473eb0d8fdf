// The row algorithms: softmax (two-pass, three-pass-recompute,
// three-pass-reload, online), log_softmax and logsumexp of one contiguous row,
// composed from a kernel table's passes over the row's chunks (chunking.h).
// A row whose result is not an ordinary finite one (NaN, +inf, all -inf, a
// weighted sum that is zero or below 2^-900) returns false and is left for
// the Python layer's SciPy formulas. Baseline code (no intrinsics);
// templates instantiated by the batch and strided drivers.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "chunking.h"
#include "kernels/kernel_api.h"
#include "kernels/vecmath_common.h"
#include "settings.h"

namespace ssm {
namespace detail {

template <class T>
bool softmax_exact(const Ctx<T>& c, const T* x, T* y, size_t n) {
  const Kernels<T>& k = c.k;
  const ExpSum mx =
      reduce_chunks(c, n, [&](size_t b, size_t len) { return k.max_scan(x + b, len); }, combine_max);
  if (!ordinary(mx)) return false;
  const double ref = mx.max;
  const ExpSum s = reduce_chunks(
      c, n, [&](size_t b, size_t len) { return k.expsum(x + b, len, ref, true); }, combine_sums);
  const double inv = 1.0 / s.m;
  for_chunks(c, n, [&](size_t b, size_t len) { k.write_exp(x + b, y + b, len, ref, true, s.e, inv, c.stream); });
  return true;
}

// The two-pass algorithm (Dukhan & Ablavatski 2020): pass 1 sums exp(x) as
// m * 2^e with no max pass (expsum_fast, kernels/expsum_fast.h), pass 2
// writes exp(x) * 2^-e / m (write_exp, kernels/write_passes.h): 2 reads and
// 1 write per element. A sum that does not prove the row ordinary and in the
// fast range (NaN, inf, |max| beyond kFastLimit) sends the row to the exact
// max-relative path.
template <class T>
bool softmax_two_pass(const Ctx<T>& c, const T* x, T* y, size_t n) {
  const Kernels<T>& k = c.k;
  const ExpSum s = reduce_chunks(c, n, [&](size_t b, size_t len) { return k.expsum_fast(x + b, len); }, combine_sums);
  if (!fast_ok(s.m, s.e)) return softmax_exact(c, x, y, n);
  const double inv = 1.0 / s.m;
  for_chunks(c, n, [&](size_t b, size_t len) { k.write_exp(x + b, y + b, len, 0.0, false, s.e, inv, c.stream); });
  return true;
}

// The largest of kSamples entries spread evenly over the row, first and
// last included (NaN ignored; -inf if there is no other): a lower bound of
// the max.
template <size_t kSamples = 32, class T>
double sampled_max(const T* x, size_t n) {
  double guess = -kInf;
  if (n <= kSamples) {
    for (size_t i = 0; i < n; ++i) guess = x[i] > guess ? x[i] : guess;
    return guess;
  }
  // Entry (n - 1) k / (kSamples - 1), rounded down, stepped without a
  // division per entry.
  constexpr size_t kGaps = kSamples - 1;
  const size_t step = (n - 1) / kGaps, extra = (n - 1) % kGaps;
  size_t at = 0, frac = 0;
  for (size_t k = 0; k < kSamples; ++k) {
    const double v = x[at];
    guess = v > guess ? v : guess;
    at += step;
    frac += extra;
    if (frac >= kGaps) {
      ++at;
      frac -= kGaps;
    }
  }
  return guess;
}

// Three-pass-reload without its max pass: the stored terms exp(x) * 2^-e_ref
// take e_ref from a sampled lower bound of the max instead. Below the true
// reference, every term (and the sum) is larger by the same exact power of
// two, which the final 1/sum removes: the written values are the max-pass
// ones bit for bit, apart from terms the max-referenced pass would round into
// float subnormals (which get more precision here). The kernel stops with a
// NaN sum as soon as a block of terms exceeds 2^100 (the guess was more than
// ~69 below the max, or the row holds NaN or +inf); the sum must also stay
// below 2^100 so that 1/sum is a normal float. Then false, y partly written,
// and the caller runs the max pass: that row pays for part of one more pass.
// Only where a special row's y may be left written (softmax_batch's
// special_y_unspecified): the max pass is what proves a row ordinary before
// anything is written, and in place x itself would be lost.
// Saves the max pass (a read of the row, ~10% of a 64 KiB row's time).
template <class T>
bool reload_guessed(const Ctx<T>& c, const T* x, T* y, size_t n) {
  const double guess = sampled_max(x, n);
  if (!in_fast_range(guess)) return false;  // also -inf (NaN and -inf samples only)
  const double e_ref = std::nearbyint(guess * kLog2e);
  const ExpSum s = reduce_chunks(
      c, n, [&](size_t b, size_t len) { return c.k.expsum_store_pow2(x + b, y + b, len, e_ref); }, combine_sums);
  if (!(s.m >= 0.5 && s.m < 0x1p+100)) return false;  // NaN too; the sampled entry alone gives >= 2^-0.5
  const double inv = 1.0 / s.m;
  for_chunks(c, n, [&](size_t b, size_t len) { c.k.scale(y + b, len, inv, c.stream); });
  return true;
}

// guess: y does not alias x and the caller overwrites special rows, so
// three-pass-reload may try reload_guessed (which writes y before it knows).
template <class T>
bool softmax_row(const Ctx<T>& c, const T* x, T* y, size_t n, Algorithm algorithm, bool guess) {
  const Kernels<T>& k = c.k;
  if (algorithm == Algorithm::Auto) algorithm = resolve_auto(n, sizeof(T), c.concurrent_rows);
  switch (algorithm) {
    case Algorithm::Auto:
    case Algorithm::TwoPass: return softmax_two_pass(c, x, y, n);
    case Algorithm::ThreePassRecompute:
    case Algorithm::ThreePassReload: {
      if (guess && algorithm == Algorithm::ThreePassReload && reload_guessed(c, x, y, n)) return true;
      const ExpSum mx =
          reduce_chunks(c, n, [&](size_t b, size_t len) { return k.max_scan(x + b, len); }, combine_max);
      if (!ordinary(mx)) return false;
      if (!in_fast_range(mx.max)) {
        if (algorithm == Algorithm::ThreePassRecompute) return softmax_exact(c, x, y, n);
        const double ref = mx.max;
        const ExpSum s = reduce_chunks(
            c, n, [&](size_t b, size_t len) { return k.expsum_store(x + b, y + b, len, ref); }, combine_sums);
        const double inv = 1.0 / s.m;
        for_chunks(c, n, [&](size_t b, size_t len) { k.scale(y + b, len, inv, c.stream); });
        return true;
      }
      // exp(x - max) as exp(x) * 2^-round(max log2 e): the same ratio up to a
      // constant factor that cancels, with no rounding of x - max at all.
      const double e_ref = std::nearbyint(mx.max * kLog2e);
      if (algorithm == Algorithm::ThreePassRecompute) {
        const ExpSum s = reduce_chunks(
            c, n, [&](size_t b, size_t len) { return k.expsum_pow2(x + b, len, e_ref); }, combine_sums);
        const double inv = 1.0 / s.m;
        for_chunks(c, n,
                   [&](size_t b, size_t len) { k.write_exp(x + b, y + b, len, 0.0, false, s.e, inv, c.stream); });
      } else {
        const ExpSum s = reduce_chunks(
            c, n, [&](size_t b, size_t len) { return k.expsum_store_pow2(x + b, y + b, len, e_ref); },
            combine_sums);
        const double inv = 1.0 / s.m;
        for_chunks(c, n, [&](size_t b, size_t len) { k.scale(y + b, len, inv, c.stream); });
      }
      return true;
    }
    case Algorithm::Online: {
      const ExpSum s =
          reduce_chunks(c, n, [&](size_t b, size_t len) { return k.expsum_online(x + b, len); }, combine_online);
      if (!ordinary(s)) return false;
      const double inv = 1.0 / s.m;
      for_chunks(c, n,
                 [&](size_t b, size_t len) { k.write_exp(x + b, y + b, len, s.max, true, 0.0, inv, c.stream); });
      return true;
    }
  }
  return false;
}


// The accurate pass: one pass, max-relative, float64 arithmetic.
template <class T>
ExpSum online_wide(const Ctx<T>& c, const T* x, const T* b, size_t n) {
  return reduce_chunks(
      c, n, [&](size_t at, size_t len) { return c.k.expsum_online_wide(x + at, b ? b + at : nullptr, len); },
      combine_online);
}

// Does lse - max = v, known to within dv, give every y = (x - max) - v of
// the row within the contract: 2 ulp (float64: plus 4 eps |lse|) and 4 eps
// relative? |y| >= v for every entry; the max's own y is -v (x - max = 0).
// The write pass rounds x - max (<= 0.5 ulp of y) and the result (0.5 ulp),
// and for float32 v itself (0.5 ulp of v <= 0.5 ulp of y). float32: dv <=
// 0.5 ulp(v), and ulp(v) >= 2^-24 v. float64: 1 ulp of roundings leaves
// 2^-53 v + 4 eps |lse| of the 2-ulp bound and 3 * 2^-52 v of the relative
// one (1% margin). Beyond these, a dominant entry needs v = log1p(S - 1) of
// the max-relative sum (the exact path).
template <class T>
bool shift_certified(double v, double dv, double lse);
template <>
inline bool shift_certified<float>(double v, double dv, double) {
  return dv <= 0x1p-25 * (v - dv);
}
template <>
inline bool shift_certified<double>(double v, double dv, double lse) {
  const double low = v - dv;
  return dv <= 0.99 * std::min(3 * 0x1p-52 * low, 0x1p-53 * low + 0x1p-50 * std::fabs(lse));
}

// From a fast sum f with the row's max (expsum_lse, or a half format's
// float32 sum): v = lse - max, dv a bound on its error, and lse's leading
// part; false for a NaN, inf or out-of-range sum.
inline bool shift_of_sum(const ExpSum& f, double& v, double& dv, double& lse_hi) {
  if (!fast_ok(f.m, f.e)) return false;
  double lo;
  lse_parts(0.0, f.e, f.m, lse_hi, lo);
  // lse - max: hi - max is exact where it matters (Sterbenz: max >= hi/2),
  // else one rounding; log(m) in [0, ln 2) and the assembly are within
  // 2^-52 absolute.
  v = (lse_hi - f.max) + lo;
  dv = 1.02 * sum_rel_err(f, v) + 0x1p-52 + 0x1p-52 * std::fabs(v);
  return true;
}

// From expsum_lse's sum f: v = lse - max, when its error bound certifies
// log_softmax's contract for data of type T (false: take the exact path).
template <class T>
bool certified_shift(const ExpSum& f, double& v) {
  double dv, hi;
  return shift_of_sum(f, v, dv, hi) && shift_certified<T>(v, dv, hi);
}

// exp(x) = (hi + lo) * 2^k to ~2^-62 relative, for |x| <= 2^21, in baseline
// arithmetic (no fma: products made exact by Dekker's split): expsum_top's
// divisor exp(max), once per row. x = k/16 ln2 + r, |r| <= ln2/32, with
// ln2/16 in three pieces of <= 28 bits so that k16 times the first two is
// exact (|k16| < 2^25) and x - k16 c1 is exact (Sterbenz); exp(r) = 1 + r +
// w, w = r^2 (1/2 + r/6 + ... + r^7/9!) (truncation 2^-73, its rounding
// ~3 * 2^-53 |w| <= 2^-63); 2^(j/16) from ExpTable16 as a double-double.
inline void two_prod(double a, double b, double& p, double& err) {
  auto split = [](double v, double& h, double& l) {
    const double t = 134217729.0 * v;  // 2^27 + 1
    h = t - (t - v);
    l = v - h;
  };
  p = a * b;
  double ah, al, bh, bl;
  split(a, ah, al);
  split(b, bh, bl);
  err = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

inline void exp_parts(double x, double& hi, double& lo, int& k) {
  constexpr double c1 = 0x1.62e42fep-5, c2 = 0x1.f473de6p-34, c3 = 0x1.5e4f1d9cc01f9p-63;  // ln2/16
  const double k16 = std::nearbyint(x * (16.0 * kLog2e));
  const double a = x - k16 * c1, b = k16 * c2;
  const double r = a - b;
  const double bb = r - a;
  const double r_lo = ((a - (r - bb)) - (b + bb)) - k16 * c3;  // TwoSum: a - b = r + r_lo exactly
  double w = 1.0 / 362880.0;
  for (double f : {1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5}) w = w * r + f;
  w *= r * r;
  const int j = static_cast<int>(k16) & 15;
  k = (static_cast<int>(k16) - j) / 16;
  const double th = ExpTable16::table[j], tl = ExpTable16::table_lo[j];
  // exp(r + r_lo) = (1 + r + w)(1 + r_lo) to r_lo^2 (|r_lo| <= 2^21 16 c3 +
  // ulp(r) < 2^-37): th (1 + r + w + r_lo (1 + r + w)) + tl (1 + r + w),
  // th r exact as p + pe.
  double p, pe;
  two_prod(th, r, p, pe);
  const double e_r = 1.0 + (r + w);
  const double rest = pe + th * (w + r_lo * e_r) + tl * e_r;
  const double s = th + p;
  lo = (th - s + p) + rest;  // th >= |p|: Fast2Sum
  hi = s + lo;               // renormalized: |lo| <= ulp(hi) / 2
  lo = lo - (hi - s);
}

// --------------------------------------------------------------------------
// log-sum-exp near 0. lse = max + log S cancels when |lse| is small next to
// max: a result near 0 needs max + log S to an absolute accuracy far below
// 2^-53 |max| (float32: 2^-25 |lse|, ulp(1e-11) ~ 2^-60; float64: the
// relative bound 1e-14 |lse|), which no float64 sum reaches. Such rows are
// recognized after the max-relative float64 sum (lse_cancel_ok) and summed
// again in double-double: first in vector lanes (Kernels::lse_dd,
// kernels/exp_dd.h, see lse_vector_tier), then, where that sum's bound does
// not certify the result, in scalar arithmetic (lse_accurate).

// Is lse = max + log_s, log_s within 2^-49 |log_s| + 2^-53 |lse| (the
// max-relative float64 sums: each term and the compensated sum within a few
// 2^-53 of S - 1, which moves log1p(S - 1) by as much relatively, plus
// log1p and the final addition), within the contract? float32: within 1
// ulp of the rounded exact result (certified). float64: within 2^-26
// relative, the bound near lse = 0 (docs/design.md). Its 1e-14 relative
// bound would send every row with |lse| < 0.36 log S here, 40 of every 100
// rows of a batch of N(-2, 1) rows of 8 at ~30x the time; float64's
// ordinary rows stay within 1e-14 relative plus 2^-49 log S absolute. The
// row kernels' group sums (rows_generic.h) flag the same rows by the
// equivalent |log_s| > 2^23 |lse|, for both types.
// Weighted rows whose weights cancel (lse_cancel_excess: excess > 0) add
// 2^-49 excess, their terms' error on the magnitudes over |S|, which the
// documented absolute term does not cover: float32 certifies it with the
// rest, float64 needs it within 0.9e-14 |lse| (with the 2^-53 |lse| above,
// inside the 1e-14 relative bound; 2^-49 per term is already a worst case,
// and a tenth of the bound, as certified<double>, sent 6% of N(0, 1) rows
// of 8 with weights uniform in [0, 1) to the double-double sums).
template <class T>
bool lse_cancel_ok(double lse, double log_s, double excess = 0.0) {
  const double err = 0x1p-49 * std::fabs(log_s) + 0x1p-53 * std::fabs(lse);
  if constexpr (std::is_same<T, float>::value)
    return certified<float>(lse, err + 0x1p-49 * excess);
  else
    return err <= 0x1p-26 * std::fabs(lse) && 0x1p-49 * excess <= 0.9e-14 * std::fabs(lse);
}

// The error of a weighted max-relative sum S = sum b exp(x - max) beyond
// what lse_cancel_ok's 2^-49 |log S| covers. Each term other than the max's
// own is within a few 2^-53 of its magnitude (the exp, the product, the
// compensated sum's step), so S is within ~2^-49 R, R = sum over those
// terms of |b exp(x - max)|, and log |S| within 2^-49 R / |S|. Unweighted,
// R / S = (S - 1) / S <= log S, the documented bound; weighted, R / |S|
// exceeds |log S| where weights of both signs cancel (S = 1e-10 out of terms
// of size 1 loses 10 of its digits) or where the max's weights sum to well
// below S (0.6 at the max, 0.4 from the others: log S ~ 0, R / S = 0.4).
// The max's own terms are exact (b exp(0) = b), but with weights of both
// signs a step of the compensated sum may drop its carry, 2^-53 of the
// running sum, which a max term of the same size can leave (two at the
// max with weights 1 and -1 keep 2^-53 of the carry between them): such
// rows count 2^-53 of the max's weights too. Returns max(0, R / |S| -
// |log_s|), R from mag (ExpSum::mag: within (n + 64) 2^-53 of its value)
// and at_max = sum |b| over the max's own entries (0: R <= mag, a cruder
// bound).
inline double lse_cancel_excess(const ExpSum& s, size_t n, double at_max, double log_s) {
  const double a = std::fabs(s.m + s.m_lo);
  const double tol = static_cast<double>(n + 64) * 0x1p-53;
  const bool mixed = s.mag * (1.0 - tol) > a;  // weights of both signs
  const double rest = s.mag * (1.0 + tol) - (mixed ? kMixedMaxWeightsOff : 1.0) * at_max;
  return std::max(0.0, rest / a - std::fabs(log_s));
}

// sum |b| over the entries equal to max (b != 0): lse_cancel_excess's at_max.
template <class T>
double weights_at_max(const T* x, const T* b, size_t n, double max) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i)
    if (static_cast<double>(x[i]) == max) sum += std::fabs(static_cast<double>(b[i]));
  return sum;
}

// Double-double helpers (baseline arithmetic: the products by two_prod).
struct Dd {
  double hi, lo;
};
inline Dd dd_sum(double a, double b) {  // TwoSum: a + b = hi + lo exactly
  const double s = a + b, bb = s - a;
  return {s, (a - (s - bb)) + (b - bb)};
}
inline Dd dd_norm(double hi, double lo) {  // |lo| <~ ulp(hi): Fast2Sum
  const double s = hi + lo;
  return {s, lo - (s - hi)};
}
inline Dd dd_add(Dd a, Dd b) {
  const Dd s = dd_sum(a.hi, b.hi);
  return dd_norm(s.hi, s.lo + (a.lo + b.lo));
}
inline Dd dd_mul(Dd a, Dd b) {
  double p, pe;
  two_prod(a.hi, b.hi, p, pe);
  return dd_norm(p, pe + (a.hi * b.lo + a.lo * b.hi));
}

// exp(x) = (hi + lo) 2^k to ~2^-100 relative for |x| <= 1000: exp_parts'
// reduction x = k16 ln2/16 + r + r_lo (|r| <= ln2/32, |r_lo| <= 2^-47 for
// |k16| < 2^15), the Taylor series to r^12 (truncation r^13/13! < 2^-104),
// terms from r^7 on in double (each below 2^-51, so their rounding is below
// 2^-104), the rest by Horner in double-double, times exp(r_lo) = 1 + r_lo +
// r_lo^2 / 2 (to 2^-141) and the table's 2^(j/16) as a double-double
// (ExpTable16, within 2^-106).
inline Dd exp_dd(double x, int& k) {
  constexpr double c1 = 0x1.62e42fep-5, c2 = 0x1.f473de6p-34, c3 = 0x1.5e4f1d9cc01f9p-63;  // ln2/16
  const double k16 = std::nearbyint(x * (16.0 * kLog2e));
  const double a = x - k16 * c1, b = k16 * c2;
  const Dd r = dd_sum(a, -b);
  const double r_lo = r.lo - k16 * c3;
  double tail = 1.0 / 479001600.0;  // 1/12!
  for (double f : {1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0})
    tail = tail * r.hi + f;
  constexpr Dd kInvFact[7] = {{1.0, 0.0},
                              {1.0, 0.0},
                              {0.5, 0.0},
                              {0x1.5555555555555p-3, 0x1.5555555555555p-57},
                              {0x1.5555555555555p-5, 0x1.5555555555555p-59},
                              {0x1.1111111111111p-7, 0x1.1111111111111p-63},
                              {0x1.6c16c16c16c17p-10, -0x1.f49f49f49f49fp-65}};
  Dd q = {tail, 0.0};
  for (int i = 6; i >= 0; --i) q = dd_add(dd_mul(q, {r.hi, 0.0}), kInvFact[i]);
  q = dd_norm(q.hi, q.lo + q.hi * (r_lo + 0.5 * r_lo * r_lo));
  const int j = static_cast<int>(k16) & 15;
  k = (static_cast<int>(k16) - j) / 16;
  return dd_mul(q, {ExpTable16::table[j], ExpTable16::table_lo[j]});
}

// s += sum b exp(x - ref) (b null: 1) in double-double, over the entries
// with b != 0 and x - ref > -800 (the others are below 2^-1150 of a term
// exp(0); also -inf): each term exp_dd of x - ref (TwoSum; its low part
// d_lo, below 2^-53 |x - ref|, enters as exp(d)(1 + d_lo), leaving
// exp(d) d^2 2^-107 < 2^-107 relative), ~2^-100 relative per term. x - ref
// must stay below ~700 (ref = the max, or 0 for rows whose terms are at
// most ~1: simdsoftmax.dask); a larger one makes s non-finite.
// mag (if not null) += sum |b exp(x - ref)|, plainly.
template <class T>
void dd_expsum_add(const T* x, const T* b, size_t n, double ref, Dd& s, double* mag = nullptr) {
  for (size_t i = 0; i < n; ++i) {
    const double w = b ? static_cast<double>(b[i]) : 1.0;
    if (w == 0.0) continue;
    const Dd d = dd_sum(static_cast<double>(x[i]), -ref);
    if (!(d.hi > -800.0)) continue;
    if (!(d.hi < 700.0)) {  // the term may overflow (exp_dd: |x| <= 1000): no finite sum
      s.hi = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    int k;
    Dd t = exp_dd(d.hi, k);
    t = dd_norm(t.hi, t.lo + t.hi * d.lo);
    const double scale = std::ldexp(1.0, k);  // exact unless the term is negligible (k <= 0 for x <= ref)
    t = {t.hi * scale, t.lo * scale};
    if (b) t = dd_mul(t, {w, 0.0});
    if (mag) *mag += std::fabs(t.hi);
    s = dd_add(s, t);
  }
}

// log|S| for a double-double S (its sign in sign): y0 + log1p(S exp(-y0) -
// 1), y0 = log(S_hi), one Newton step in double-double from the float64
// log, then ref + y0 by TwoSum -> lse = ref + log|S|. false (sign, lse
// untouched) for |S| below 2^-900 or not finite.
inline bool lse_of_dd(Dd s, double ref, double& lse, double& sign) {
  if (!(std::fabs(s.hi) >= 0x1p-900) || !std::isfinite(s.hi)) return false;
  sign = s.hi < 0 ? -1.0 : 1.0;
  if (s.hi < 0) s = {-s.hi, -s.lo};
  const double y0 = std::log(s.hi);
  int k;
  const Dd p = dd_mul(s, exp_dd(-y0, k));
  const double scale = std::ldexp(1.0, k);
  // S exp(-y0) within ~2^-50 of 1: hi - 1 is exact (Sterbenz), and
  // log1p(delta) = delta - delta^2 / 2 to delta^3 < 2^-150.
  const double delta = (p.hi * scale - 1.0) + p.lo * scale;
  const Dd l = dd_sum(ref, y0);
  lse = l.hi + (l.lo + (delta - 0.5 * delta * delta));
  return true;
}

// lse = max + log S, S = sum b exp(x - max) (b null: 1) in double-double
// (dd_expsum_add, lse_of_dd), for a row known to be ordinary with that max
// (b != 0 entries). Unweighted (S >= 1) that is within ~(n + 4) 2^-100
// absolute, ~1e-27 for a row of a thousand: float32 results are certain
// down to |lse| ~ 1e-19, float64 to ~1e-13 relative at 1e-15. Weighted,
// within ~(n + 4) 2^-100 mag / |S| (mag = sum |b exp(x - max)|): weights
// that cancel keep float64's 1e-14 relative while |S| >= ~2^-40 mag.
// false (sign, lse untouched) for a weighted sum below 2^-900 in magnitude
// or within that bound of 0, which tells nothing about S (a sum that
// cancels exactly, every term cancelled by others of the same x, leaves a
// remainder of that size where the products round: weights w, w and -2w):
// the caller leaves the row to SciPy's formula (-inf, sign 0 for a float64
// sum of 0).
template <class T>
bool lse_accurate(const T* x, const T* b, size_t n, double max, double& lse, double& sign) {
  Dd s = {0.0, 0.0};
  double mag = 0.0;
  dd_expsum_add(x, b, n, max, s, &mag);
  if (b && std::fabs(s.hi) <= static_cast<double>(n + 4) * 0x1p-98 * mag) return false;
  return lse_of_dd(s, max, lse, sign);
}

// The vector tier first (exp_dd.h; float64 data: 2^-102 relative per term,
// a bound below 2^-100.6 + 2^-52 |lse| on an unweighted row's result;
// float32: 2^-94 per term, all its 1-ulp certificate needs): lse and sign
// set, true, when its error bound certifies the result for T (float32: 1
// ulp of the rounded exact result; float64: 2^-47 relative, down to |lse|
// ~ 2^-53.5, or, unweighted, the scalar sum's own bound (n + 4) 2^-100,
// kernel_api.h's kLseScalarErr), else false and nothing set: the scalar
// double-double sum (lse_accurate) decides.
// lse, log_s: the float64 sums' (lse within 2^-49 |log_s| + 2^-53 |lse|;
// weighted rows pass |log_s| plus their lse_cancel_excess): rows they
// prove below the vector tier's reach skip it.
template <class T>
bool lse_vector_tier(const Kernels<T>& k, const T* x, const T* b, size_t n, double max, double& lse,
                     double log_s, double& sign) {
  const double reach = std::is_same<T, float>::value ? kLseDdReach32 : kLseDdReach64;
  if (std::fabs(lse) * (1.0 + 0x1p-52) + 0x1p-49 * std::fabs(log_s) < reach) return false;
  double out[3];
  if (!g_lse_vector_tier.load(std::memory_order_relaxed) || !k.lse_dd(x, b, n, max, out)) return false;
  const double scalar_err = b ? 0.0 : static_cast<double>(n + 4) * kLseScalarErr;
  const bool ok = std::is_same<T, float>::value ? certified<float>(out[0], out[2])
                                                  : out[2] <= std::max(0x1p-47 * std::fabs(out[0]), scalar_err);
  if (!ok) return false;
  lse = out[0];
  sign = out[1];
  return true;
}

// Per-chunk expsum_top sums -> the row's: every chunk's top but one
// occurrence of the row max's goes back into the others' sum (exact bits),
// all at the largest 2^e (exact scalings; chunks below 2^-1000 of it are
// negligible and covered by err_rest), in a double-double.
inline ExpSum combine_top(const std::vector<ExpSum>& parts) {
  ExpSum out = combine_max(parts);
  double emax = -kInf;
  bool bad = false;
  for (const ExpSum& p : parts) {
    bad = bad || !std::isfinite(p.m) || !std::isfinite(p.top) || !std::isfinite(p.err_rest);
    if (p.max > -kInf && p.e > emax) emax = p.e;
    out.err = std::max(out.err, p.err);
  }
  out.e = emax;
  if (bad || !(emax > -kInf)) {
    out.m = bad ? std::numeric_limits<double>::quiet_NaN() : 0.0;
    return out;
  }
  DoubleDouble sum;
  bool taken = false;
  double total = 0.0;
  for (const ExpSum& p : parts) {
    const double k = p.e - emax;
    if (!(p.max > -kInf) || k < -1000.0) continue;
    const double f = std::ldexp(1.0, static_cast<int>(k));
    sum.add(p.m * f);
    sum.add(p.m_lo * f);
    if (!taken && p.max == out.max) {
      taken = true;
      out.top = p.top * f;
    } else {
      sum.add(p.top * f);
    }
    out.err_rest += p.err_rest * f;
    total += (p.m + p.top) * f;
  }
  sum.store(out);
  out.err_rest += (4.0 * static_cast<double>(parts.size()) * 0x1p-106 + 0x1p-1000) * total;
  return out;
}

// v = lse - max from expsum_top's sum, when its error bound certifies
// log_softmax's contract for float64 data (false: take the exact path).
// z = (m + m_lo) / T, T = exp(max) 2^-e (exp_parts), is sum over the other
// entries of exp(x - max): each term within err (relative), the sum within
// err_rest (absolute), T within 2^-62, the double-double division within
// ~2^-104, so |z' - z| <= dz = (err + 2^-61) z + err_rest / T, and
// v = log1p(z) moves by at most dz / (1 + z) <= (err + ...) v (z / (1 + z)
// <= log1p(z)): the max's own term, exactly 1, never adds to the error,
// which is what keeps a dominant entry's -v relatively accurate. Then
// log1p (<= 1 ulp <= 2^-52 v) and the rounding of log1p(z) + z_lo / (1 + z)
// (0.5 ulp <= 2^-53 v). That is <= 4.3 * 2^-53 v with AVX-512's table exp,
// 5.5 * 2^-53 v with the fma polynomial, inside shift_certified's 6 * 2^-53
// v for every v, so only rows with |lse| < ~0.5 v (or v < ~1e-290 n), out
// of range or special rows take the exact path.
inline bool top_shift(const ExpSum& f, double& v) {
  if (!(f.top > 0.0) || !std::isfinite(f.m) || !std::isfinite(f.err_rest) || !in_fast_range(f.max)) return false;
  double th, tl;
  int k;
  exp_parts(f.max, th, tl, k);
  const double scale = std::ldexp(1.0, static_cast<int>(k - f.e));  // k - e in [-2, 502]
  const double t_hi = th * scale, t_lo = tl * scale;
  const double num = std::max(f.m, 0.0), num_lo = f.m > 0.0 ? f.m_lo : 0.0;
  const double z = num / t_hi;
  double p, pe;
  two_prod(z, t_hi, p, pe);
  const double z_lo = (((num - p) - pe) + num_lo - z * t_lo) / t_hi;
  const double log_z = std::log1p(z);
  v = log_z + z_lo / (1.0 + z);
  const double dz = (f.err + 0x1p-61) * z + (f.err_rest + std::fabs(f.m) * 0x1p-100) / t_hi + std::fabs(z_lo) * 0x1p-50;
  const double dv = 1.01 * (dz / (1.0 + z) + 0x1p-52 * log_z + 0x1p-53 * v);
  return shift_certified<double>(v, dv, f.max + v);
}

// log_softmax = x - lse in two passes, with no exp in the second: pass 1 is
// the fast float64 sum with the row's max (expsum_lse), pass 2 writes
// (x - max) - (lse - max). Where that sum's error bound cannot certify the
// result (float64: lse - max below ~3.4 with the polynomial, ~3.6 (rows of
// 1000) to ~4.6 (2^24) with AVX-512's table, whose one-fma reduction's
// bound grows with the terms per lane; float32: a dominant entry with
// lse - max below ~6e-8), float64 rows take expsum_top (accurate terms,
// TwoSum, the max's term split off: certified for every lse - max but
// |lse| < ~0.5 (lse - max)), which costs ~1.25 times expsum_lse and so
// comes second (measured, AVX2 and AVX-512, 2^21 elements in rows of 1000
// and 4096: ~20-28% more time for log_softmax where expsum_lse certifies,
// 1/3 of it where it does not) for rows of kTopFirstRow or more, and
// first below that, where expsum_lse mostly fails.
// Then the exact path: the online max-relative float64 sum, whose max term
// is exactly 1 so that log1p(S - 1) keeps a dominant entry's
// log-probability relatively accurate, and the same write.
//
// float32 rows of at least kLse32MinRow elements start with expsum_lse32
// (float32 table-exp terms, ~0.7 of expsum_lse's work on AVX-512 and AVX2).
// Its sum certifies the float32 write where lse - max is above ~2.0
// (AVX-512, NEON) or ~2.3 (AVX2): the row's own spread decides, N(0, 1)
// logits reach 2.3 at about n = 70. Below that (narrow spreads, a confident
// top entry) the write in float64 arithmetic (write_shift_wide) certifies
// it for every lse - max above ~2e-8 (lse32_shift), so that such rows too
// take two passes instead of three.
constexpr size_t kLse32MinRow = 32;

// How expsum_lse32's sum certifies float32 log_softmax: not at all, with
// the float32 write (write_shift, as certified_shift), or with the float64
// write (write_shift_wide).
enum class Lse32Write { None, Narrow, Wide };

// v = lse - max from expsum_lse32's sum, and the write that it certifies
// (the max within the pass's range, then the error budget of the write).
// write_shift_wide computes (x - max) - v in float64 (x - max exact but
// for exponents 29+ apart, where its rounding is < 2^-52 |y|) and rounds
// once: 0.5 ulp of y + dv (+ 2^-51 |y|), so 2 ulp leave dv <= 1.4 * 2^-24 v
// (ulp(y) > 2^-24 |y| >= 2^-24 v). The sum's dv ~ 1.02 * 1.23 * 2^-24
// (1 - e^-v) + 2^-52 (1 + v) (expsum_table32.h) is within that for every
// v >= ~2e-8: the max's own term is exact, the others' relative error
// weighs only by their share 1 - e^-v <= v.
inline Lse32Write lse32_shift(const ExpSum& f, double& v) {
  double dv, hi;
  if (!(f.max >= -kTable32Limit && f.max <= kTable32Limit) || !shift_of_sum(f, v, dv, hi)) return Lse32Write::None;
  if (shift_certified<float>(v, dv, hi)) return Lse32Write::Narrow;
  return dv <= 1.4 * 0x1p-24 * (v - dv) ? Lse32Write::Wide : Lse32Write::None;
}

// float64 rows shorter than this start with expsum_top: their lse - max is
// mostly below what expsum_lse certifies (standard normal logits: ~3.4 at
// n = 250, ~4.2 at n = 1000; expsum_lse certifies above ~3.4 on AVX2, ~3.6
// to ~3.9 on AVX-512), and a failed expsum_lse costs a whole pass.
constexpr size_t kTopFirstRow = 512;

// Where the kernel set offers expsum_lse32_copy, rows that softmax would
// run as three-pass-reload (they stay cached between the passes) copy x to
// y in pass 1 and rewrite y in place in pass 2, as reload does: y's read for
// ownership then overlaps the exp arithmetic instead of following it
// (2 reads and 2 writes of y, all but the first in the cache). Only where
// a special row's y may be left written (copy_ok: y does not overlap x and
// the caller overwrites special rows, softmax_batch's special_y_unspecified);
// a row left for the exact path still reads x, which the copy leaves as is.
//
// Where the kernel set offers expsum_lse32_fast (a cheaper table, err_rest
// 1.35 instead of 1.1 * 2^-24), rows of kLse32FastMinRow or more start with
// it: it certifies the float32 write for lse - max above ~2.5 and the
// float64 write down to where the float64 additions' bound takes over
// (lse32_shift). A row it leaves uncertified runs expsum_lse32 only where
// that pass's bound, at this pass's lse - max, would certify it
// (lse32_retry): the rows with lse - max in the narrow band between the
// two bounds' reach (~5e-7 to 7e-6 at n = 1000, ~4e-5 to 5e-4 at
// n = 151936: a top entry of probability 1 - v) take one pass more; the
// others none. Rows that stay cached between the passes (as for the copy)
// also have y's lines prefetched for writing during the pass; where the set
// copies such rows (AVX2), rows of kLse32FastMinRow or more take the copy
// with the one-float table (expsum_lse32_copy_fast: expsum_lse32_fast's
// bits, retried alike) instead of the table pair.
constexpr size_t kLse32FastMinRow = 512;

// Would expsum_lse32 (err_rest e32) certify the row whose expsum_lse32_fast
// sum is f, judged at f's lse - max?
inline bool lse32_retry(ExpSum f, double e32) {
  double v;
  f.err_rest = e32;
  return lse32_shift(f, v) != Lse32Write::None;
}

template <class T>
bool log_softmax_row(const Ctx<T>& c, const T* x, T* y, size_t n, bool copy_ok = false) {
  if (c.k.expsum_lse32 && n >= kLse32MinRow) {
    const bool cached = y != x && resolve_auto(n, sizeof(T), c.concurrent_rows) == Algorithm::ThreePassReload;
    const bool copy = copy_ok && c.k.expsum_lse32_copy && cached;
    const bool fast = (!copy || c.k.expsum_lse32_copy_fast) && c.k.expsum_lse32_fast && n >= kLse32FastMinRow;
    T* own = cached ? y : nullptr;  // rows that stay cached: y's lines owned in pass 1
    ExpSum f = reduce_chunks(
        c, n,
        [&](size_t b, size_t len) {
          return copy   ? (fast ? c.k.expsum_lse32_copy_fast : c.k.expsum_lse32_copy)(x + b, y + b, len)
                 : fast ? c.k.expsum_lse32_fast(x + b, own ? own + b : nullptr, len)
                        : c.k.expsum_lse32(x + b, len);
        },
        combine_sums);
    const T* src = copy ? y : x;
    double v;
    Lse32Write write = lse32_shift(f, v);
    if (fast && write == Lse32Write::None && lse32_retry(f, c.k.lse32_err_rest)) {
      f = reduce_chunks(c, n, [&](size_t b, size_t len) { return c.k.expsum_lse32(x + b, len); }, combine_sums);
      write = lse32_shift(f, v);
    }
    if (write == Lse32Write::Narrow) {
      for_chunks(c, n, [&](size_t b, size_t len) { c.k.write_shift(src + b, y + b, len, f.max, v, c.stream); });
      return true;
    }
    if (write == Lse32Write::Wide) {
      for_chunks(c, n, [&](size_t b, size_t len) { c.k.write_shift_wide(src + b, y + b, len, f.max, v); });
      return true;
    }
  }
  auto top = [&](double& v) {
    const ExpSum t =
        reduce_chunks(c, n, [&](size_t b, size_t len) { return c.k.expsum_top(x + b, len); }, combine_top);
    return std::make_pair(top_shift(t, v), t.max);
  };
  double v = 0.0, shift_ref = 0.0;
  bool certified = false;
  if (std::is_same<T, double>::value && n < kTopFirstRow) {
    std::tie(certified, shift_ref) = top(v);
  } else {
    ExpSum f =
        reduce_chunks(c, n, [&](size_t b, size_t len) { return c.k.expsum_lse(x + b, len); }, combine_sums);
    // float64: the one-fma reduction's bound for the chunks' own lane
    // counts (certifies lse - max down to ~3.6 instead of ~4.6 for rows of
    // 1000 on AVX-512). float32 keeps the worst case.
    if constexpr (std::is_same<T, double>::value) f.err -= f.err_lane_slack;
    certified = certified_shift<T>(f, v);
    shift_ref = f.max;
    if (std::is_same<T, double>::value && !certified && fast_ok(f.m, f.e)) std::tie(certified, shift_ref) = top(v);
  }
  if (certified) {
    for_chunks(c, n, [&](size_t b, size_t len) { c.k.write_shift(x + b, y + b, len, shift_ref, v, c.stream); });
    return true;
  }
  const ExpSum s = online_wide(c, x, static_cast<const T*>(nullptr), n);
  if (!ordinary(s)) return false;
  // y = (x - max) - log S: x - max is exact near the max (Sterbenz) and the
  // result is never positive.
  const double log_s = log_of_sum(s);
  for_chunks(c, n, [&](size_t b, size_t len) { c.k.write_shift(x + b, y + b, len, s.max, log_s, c.stream); });
  return true;
}

// Is log-sum-exp likely within ~4 of 0 (where the float32 sum cannot always
// certify 1 ulp: its bound, ~6-7 * 2^-24 relative, exceeds ulp(lse)
// there)? A guess from 16 entries spread over the row: lse is about their
// max g plus log(n / 16) plus the log-sum-exp of 16 such entries over their
// max (~1.5 for bell-shaped logits: normal ones give log n + 0.5, the
// estimate, with E[g] = 1.76, log n + 0.5 too). 16 rather than 32 entries:
// the sampling is a third of a short row's overhead (~190 instructions per
// row fewer), and the guess's spread grows only from 0.49 to 0.54 (normal
// logits). Deterministic, so every thread count takes the same path; a
// wrong guess costs one pass, never accuracy.
// log(n) to within 0.06 (log2 interpolated linearly between powers of two,
// from the bits of double(n)): enough for the guess, and no library call.
inline double rough_log(size_t n) {
  const double d = static_cast<double>(n);
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  const double octave = static_cast<double>(static_cast<int>(bits >> 52) - 1023);
  bits = (bits & ((uint64_t(1) << 52) - 1)) | (uint64_t(1023) << 52);  // the mantissa in [1, 2)
  double mantissa;
  std::memcpy(&mantissa, &bits, sizeof mantissa);
  return (octave + mantissa - 1.0) * 0.6931471805599453;
}

template <class T>
bool likely_small_lse(const T* x, size_t n) {
  const double guess = sampled_max<16>(x, n) + rough_log(n) - 1.25;
  return guess < 4.0 && guess > -4.0;
}

// passes (may be null) receives the number of passes over the row taken
// (1 for ordinary unweighted rows away from lse ~ 0; a test hook).
template <class T>
bool logsumexp_row(const Ctx<T>& c, const T* x, const T* b, size_t n, double& lse, double& sign,
                   int* passes = nullptr) {
  int count = 0;
  // One unweighted pass of `kernel` over the row; true (and lse set) when
  // its error bound certifies the result.
  auto certified_pass = [&](auto kernel) {
    ++count;
    return fast_lse<T>(reduce_chunks(
                           c, n, [&](size_t at, size_t len) { return kernel(x + at, len); }, combine_sums),
                       lse);
  };
  // float32 rows whose result is likely below ~4 in magnitude (judged from
  // 16 sampled entries) start with the float64 sum: the float32 sum's bound
  // rarely certifies 1 ulp there, and trying it first would cost a pass.
  // Either way the result is certified or recomputed.
  const bool wide_first = sizeof(T) < sizeof(double) && !b && likely_small_lse(x, n);
  // One pass in T arithmetic (float32 data: summed into float64 lanes); the
  // accurate pass only when the fast sum's error bound cannot certify the
  // result (|lse| small, see certified()).
  bool done = !b && !wide_first && certified_pass(c.k.expsum_fast);
  // float32: the same sum in float64 arithmetic is certified for all but
  // results within ~0.04 of 0 (less where one entry dominates), at a
  // fraction of the online pass's cost.
  if (!done && !b && sizeof(T) < sizeof(double)) done = certified_pass(c.k.expsum_lse);
  bool ok = true;
  sign = 1.0;
  if (!done) {
    ++count;
    const ExpSum s = online_wide(c, x, b, n);
    ok = ordinary(s);
    if (ok && s.m == 0.0) {
      // A weighted float64 sum of exactly 0: exactly 0 (SciPy's formula), or
      // the rounding of terms that cancel (x 1e-17 apart with weights 1
      // and -1): the scalar double-double sum decides.
      count += 2;
      ok = lse_accurate(x, b, n, s.max, lse, sign);
    } else if (ok) {
      sign = s.m < 0 ? -1.0 : 1.0;
      const double log_s = log_of_sum(s);
      lse = s.max + log_s;
      // |lse| too small next to the max for max + log S (see lse_accurate),
      // or weights that cancel.
      // Weighted: first the crude bound (R <= mag); rows it does not clear
      // (a max term large next to S, or weights that cancel) take one more
      // pass for the max's own weights.
      double excess = b ? lse_cancel_excess(s, n, 0.0, log_s) : 0.0;
      if (excess > 0.0 && !lse_cancel_ok<T>(lse, log_s, excess))
        excess = lse_cancel_excess(s, n, weights_at_max(x, b, n, s.max), log_s);
      if (!lse_cancel_ok<T>(lse, log_s, excess)) {
        ++count;
        // passes: one more for the vector tier, two for the scalar sum.
        if (!lse_vector_tier<T>(c.k, x, b, n, s.max, lse, std::fabs(log_s) + excess, sign)) {
          ++count;
          // A weighted sum the double-double one finds below 2^-900 (or
          // exactly 0): not the float64 sum's result, SciPy's (-inf, sign 0).
          ok = lse_accurate(x, b, n, s.max, lse, sign);
        }
      }
    }
  }
  if (passes) *passes = count;
  return ok;
}

}  // namespace detail
}  // namespace ssm
