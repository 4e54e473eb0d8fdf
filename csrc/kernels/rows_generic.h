// Short-row kernels: a batch of contiguous rows of n <= kMaxN elements, one
// row per vector lane. A group of W rows (W = the lane count) is transposed
// into an L1 buffer (column j of the group is one vector; AVX2 float32
// softmax keeps the columns in registers up to 24 elements,
// softmax_group_regs, and transposes 25-31 in registers into the buffer,
// softmax_group_blocks; AVX-512 rows of 2-12 take their columns by lane
// permutes, rows_softmax32_perm_avx512.h), every pass
// then runs on whole vectors whatever n is, and the per-row scalar work (a
// reciprocal or a log1p, the special-row tests) is done once per group for W
// rows. A batch of rows of length n then costs about what the same number of
// contiguous elements costs, instead of a kernel call, a lane reduction and a
// fallback test per row.
//
// Written once over the lane types of vecmath_<isa>.h: VN holds the data type
// (float32 x8 on AVX2), VW float64 (the accurate sums of log_softmax and
// logsumexp). The including translation unit defines SSM_ISA and includes its
// vecmath header first; everything lands in an anonymous namespace (ODR: no
// AVX-compiled inline function may leak into baseline code).
//
// Accuracy (SPEC section 2), per row exactly as the row kernels:
//  * softmax: terms exp(x) * 2^-round(max log2 e), the three-pass algorithms'
//    reference, which needs no rounding of x - max (taken 2^64 higher, so
//    that no term on the way to a nonzero y is subnormal: pow2_term); the exp is the kernels'
//    (float32 <= 1.1 ulp), the two Kahan-compensated sums ~2 ulp, 1/sum and
//    the product 0.5 ulp each: <= 4.2 * 2^-24, below the 4 * 2^-23 bound.
//  * log_softmax / logsumexp: S = sum exp(x - max) in float64 arithmetic
//    with x - max exact (TwoSum for float64 data; float32 differences are
//    exact in float64 wherever the term is not negligible) and the degree-11
//    exp; the max's own terms are counted apart, exactly, so S - 1 keeps its
//    relative accuracy for log1p (the dominant entry's log-probability).
//    float64 log_softmax rows of 16 elements on instead take the terms at
//    2^round(max log2 e) (ref_term: the exact reduction of x itself, no
//    TwoSum per term) and divide their sum by the max's own term, taken to
//    double-double (over_max_term): 0.7 * 2^-53 more on S - 1 where the
//    TwoSum'd x - max left 0.2 * 2^-53 of r's rounding, a quarter fewer
//    operations per term; rows whose max is beyond kFastLimit go to the
//    per-row path.
//    float32 log_softmax takes the degree-6 ExpCoeffsMid for the other
//    terms: a relative error d <= 2.1e-9 of S - 1 moves v = log1p(S - 1) by
//    d (S - 1) / S = d (1 - exp(-v)) <= d v, below the 2^-25 v (0.5 ulp of
//    v, hence of every |y| >= v) that the write's three float32 roundings
//    leave of the 2-ulp bound, for every v. Their lane sums are plain: the
//    at most kMaxN - 1 float64 adds of terms >= 0 add below 2^-45.
//    Rows of 48 elements and more go one at a time with the float32 table
//    exp instead, on the kernel sets that have it, each certified for the
//    float32 write or the one in float64 lanes as the row kernels' rows
//    (rows_log_softmax32_direct.h); shorter rows there keep this layout
//    with the same terms and certificate from Lsm32GroupRange's min_n
//    (log_softmax_rows_group32), and below it go two groups at a time
//    (log_softmax_groups_f32); AVX2 rows of up to 16 keep their columns in
//    registers instead, four groups at a time (log_softmax_group_regs, the
//    same arithmetic and bits; logsumexp's rows of 5-10 too: lse_group_regs).
//  * float32 logsumexp: the same degree-6 terms and plain sums first, the
//    max's own terms (exactly 1 each) in the sum, not counted apart; its
//    1-ulp bound is absolute in lse and lse may be near 0, so each result
//    is certified where |lse| >= 2^-4, and a group with a result below
//    that is summed again with the degree-11 terms (logsumexp_group).
//    Within ~1e-6 of 0 (|lse| below 2^-23 log S, both types)
//    m + log S cancels below what float64 sums resolve: such rows are
//    summed again in double-double lanes (exp_dd.h, lse_dd_half), and
//    the few that bound cannot certify are flagged for the per-row path's
//    scalar double-double sum (lse_accurate).
//    Rows of about 100 bytes and more (LseDirectRange) go one at a time
//    with the float32 table exp instead, on the kernel sets that have it
//    (rows_logsumexp_direct.h; its near-zero rows go to the per-row path's
//    two tiers); float64 rows of 128 bytes and more go one at a time too
//    (rows_logsumexp64_direct.h: plain sums certified within 2^-47 |lse|,
//    else the max-relative sums; near-zero rows to the per-row path).
// Rows these cannot finish (NaN, +-inf, all -inf, |max| beyond kFastLimit for
// softmax and float64 log_softmax from 16 elements, a weighted sum that is
// zero or below 2^-900) are flagged and left unwritten for the per-row path,
// which handles them exactly.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace before including rows_generic.h"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include <cstring>

#include "certify_f32.h"
#include "exp_dd.h"
#include "expsum_table32.h"  // Table32Exp: float32 logsumexp's direct rows
#include "kernel_api.h"
#include "rows_api.h"
#include "simd_loops.h"

namespace ssm {
namespace SSM_ISA {
namespace rows {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLog2e = 1.4426950408889634;
// std::isfinite is an inline library function: a Debug build would emit it,
// compiled with this file's AVX flags, as a weak symbol the linker may hand
// to baseline code. The builtin is expanded in place.
inline bool lane_finite(double x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_isfinite(x);
#else
  return std::isfinite(x);
#endif
}
// Longest row taken: the group buffer (kMaxN x W elements, 16 KiB at most)
// stays in L1 between the passes. Longer rows fill the row kernels' vectors.
constexpr size_t kMaxN = 256;
static_assert(kMaxN < (1 << 15), "log1p_small's range");

template <class V>
using Reg = typename V::reg;

template <class V, class C>
inline Reg<V> poly(Reg<V> r) {
  Reg<V> p = V::fmadd(V::set1(C::c[C::degree]), r, V::set1(C::c[C::degree - 1]));
  for (int k = C::degree - 2; k >= 0; --k) p = V::fmadd(p, r, V::set1(C::c[k]));
  return p;
}

// Softmax's terms exp(x) * 2^-e_ref, e_ref = round(max log2 e) - kTermShift
// (an integer): the power of two is exact, so the ratio of two terms is that
// of the exps (no x - max rounding). x <= max gives n <= e_ref + kTermShift,
// so the scale 2^(n - e_ref) never exceeds 2^65 (n may round one above
// e_ref + kTermShift) and one factor with
// scale2_acc's clamp below (an add, a shift, a multiply) takes it, where
// scale2's two factors for any k cost about ten operations on AVX2: the
// terms from the max's (about 2^64) down to 2^-126 (2^-190 of the max's:
// float32 lanes) are normal and exact, what is flushed has y = t / sum below
// 2^-189, 0 in float32 (float64 lanes: below 2^-1086). Against the terms
// at the max's own scale (scale2, kTermShift = 0) the sum and 1 / sum move
// by the exact 2^64, so every normal y keeps its bits; a subnormal y is now
// rounded once (the product), where the unshifted term was rounded into a
// subnormal first. max(low, x) keeps a NaN x NaN (x86 max returns its
// second operand on NaN), which then reaches the row's sum and flags it.
constexpr double kTermShift = 64.0;
// The row's sum of terms (unshifted at least 2^-1.5, the max's own) must
// exceed kTermShift's scale times this: a smaller one means a NaN.
constexpr double kMinShiftedSum = 0.25 * 0x1p64;
template <class V>
inline Reg<V> pow2_term(Reg<V> x, Reg<V> e_ref) {
  using C = ExpCoeffs<typename V::scalar>;
  const Reg<V> xc = V::max(V::set1(kClampLow), x);
  const Reg<V> n = V::round(V::mul(xc, V::set1(C::log2e)));
  return V::scale2_acc(poly<V, C>(V::reduce_ln2(xc, n)), V::sub(n, e_ref));
}

// exp(x - m) for x <= m in float64 lanes, d = x - m as rounded; Exact adds
// the rounding error of d back (TwoSum). Terms below 2^-1022 flush to 0.
// C: the polynomial (its log2e; the reduction is always the exact one).
template <class V, bool Exact, class C = ExpCoeffs<double>>
inline Reg<V> rel_term(Reg<V> x, Reg<V> m, Reg<V> d) {
  const Reg<V> dc = V::max(V::set1(-1100.0), d);
  const Reg<V> n = V::round(V::mul(dc, V::set1(C::log2e)));
  Reg<V> r = V::reduce_ln2(dc, n);
  if constexpr (Exact) {
    const Reg<V> bb = V::sub(d, x);
    Reg<V> err = V::sub(V::sub(x, V::sub(d, bb)), V::add(m, bb));
    err = V::min(V::max(err, V::set1(-1.0)), V::set1(1.0));  // NaN (x = -inf) -> -1, where d is clamped
    r = V::add(r, err);
  }
  return V::scale2_acc(poly<V, C>(r), n);
}

// Lane types with pow2_biased (AVX2): 2^k from 2^52 + k + 1023 in one shift.
template <class V, class = void>
struct HasPow2Biased : std::false_type {};
template <class V>
struct HasPow2Biased<V, std::void_t<decltype(void(V::pow2_biased(V::set1(0.0))))>> : std::true_type {};

// float32 logsumexp's first-tier terms exp(d) in float64 lanes with
// ExpCoeffsMid (group_sums for lse_groups_f32 and lse_plain_group's
// certified try), d = x - m <= 0 (exact in float64 wherever the term is not
// negligible). d is raised to -708 first, so that n = round(d log2 e) lies
// in [-1021, 0] and 2^n is normal: one product, no clamp in the scale
// (rel_term's scale2_acc: a max and an add more on AVX2; lane types
// without pow2_biased keep it), and where the lane type
// has pow2_biased the fma rounds d log2 e + 1.5 2^52 + 1023 once to the
// integer n plus that constant, whose low bits are 2^n's exponent field
// (rel_term's multiply, round and add). The reduction d - n ln2_hi is one
// fma where it is fused (poly_reduce: |n| <= 1021, within
// ExpCoeffsMid::err), so a term is within C::err of exp(d), as rel_term's.
// A raised d (x - m < -708, also x = -inf) gives at most exp(-708 + ln2/2)
// < 2^-1020 in place of its own term: at most kMaxN of them, below 2^-1012
// absolute in S >= 1, nothing beside the certificate's 2^-37. NaN stays
// NaN (max returns its second operand on NaN) and reaches the sums; a
// special row's d > 0 (m = 0 there) gives garbage in a lane flagged anyway.
// 14 vector operations per four terms on AVX2 (load, d, the 12 here), where
// rel_term's took 18.
template <class V>
SSM_INLINE inline Reg<V> mid_term(Reg<V> d) {
  using C = ExpCoeffsMid;
  constexpr double kMagic = 0x1.8p52 + 1023.0;
  const Reg<V> dc = V::max(V::set1(-708.0), d);
  const Reg<V> t = V::fmadd(dc, V::set1(C::log2e), V::set1(kMagic));
  const Reg<V> n = V::sub(t, V::set1(kMagic));
  const Reg<V> p = poly<V, C>(poly_reduce<V, C>(dc, n));
  if constexpr (HasPow2Biased<V>::value)
    return V::mul(p, V::pow2_biased(t));
  else
    return V::scale2_acc(p, n);
}

// float32 logsumexp's first-tier terms on lanes with the 16-entry exp table
// (AVX-512 float64), for rows of up to kLseTableMaxN (LseTableTerms in
// place of ExpCoeffsMid: group_sums, group_sums_regs, lse32_first_tier):
// exp(d) = 2^(k/16) exp(r), k = round(16 d log2 e), r = d - k ln2/16 in
// one fma (|k / 16| <= 1022 after the raise to -708: ln2's rounding moves r
// by below 2^-44), the table entry (ExpTable16) and exp(r) to degree 4
// (|r| <= ln2/32: the tail |r|^5 / 120 (1 + |r|) < 3.99e-11), scalef by
// floor(k / 16); with the table's, Horner's and the product's roundings
// within 4.1e-11 = 2^-34.5 relative (err), in as many operations as
// mid_term (11 per vector of terms) with 1/50 of its error, so 1/50 of the
// rows near lse = 0 the first tier cannot certify. d raised to -708 and NaN
// as in mid_term.
struct LseTableTerms {
  static constexpr double err = 4.1e-11;
};
// Degree 5 (rows of two's kernel, rows_logsumexp32_two_avx512.h): the tail
// |r|^6 / 720 (1 + |r|) < 1.42e-13, within 2^-42.2 relative in all.
template <class V, int Degree = 4>
SSM_INLINE inline Reg<V> table_term(Reg<V> d) {
  static_assert(Degree == 4 || Degree == 5, "the bounds above");
  using X = ExpTable16;
  const Reg<V> dc = V::max(V::set1(-708.0), d);
  const Reg<V> t = V::fmadd(dc, V::set1(ExpCoeffs<double>::log2e), V::set1(X::magic));
  const Reg<V> k16 = V::sub(t, V::set1(X::magic));
  const Reg<V> r = V::fmadd(k16, V::set1(-ExpCoeffs<double>::ln2_hi), dc);
  Reg<V> p = V::set1(1.0 / 24);
  if constexpr (Degree == 5) p = V::fmadd(V::set1(1.0 / 120), r, p);
  p = V::fmadd(p, r, V::set1(1.0 / 6));
  p = V::fmadd(p, r, V::set1(0.5));
  p = V::fmadd(p, r, V::set1(1.0));
  p = V::fmadd(p, r, V::set1(1.0));
  return V::scale2_term(V::mul(p, V::exp_table(t, V::table_lo(), V::table_hi())), k16);
}
// Rows of up to this many elements take LseTableTerms where the lanes have
// the table (every AVX-512 float32 logsumexp kernel of them: the permutes,
// the register transposes and lse_groups, which redoes their special
// groups, so a row's bits do not depend on its neighbours). Longer rows
// keep ExpCoeffsMid: lse_groups' pairs at n = 17-20 took 1.05-1.08x
// main's time with the table terms (Zen 5, bench/ab_builds.py, 13
// rounds).
constexpr size_t kLseTableMaxN = 16;
// The first tier's terms of rows of up to kLseTableMaxN on lanes VW.
template <class VW>
using LseTerms = std::conditional_t<HasExpTable<VW>::value, LseTableTerms, ExpCoeffsMid>;
// The first tier's terms: LseTableTerms or ExpCoeffsMid.
template <class C, class V>
SSM_INLINE inline Reg<V> first_tier_term(Reg<V> d) {
  if constexpr (std::is_same<C, LseTableTerms>::value)
    return table_term<V>(d);
  else
    return mid_term<V>(d);
}

// exp(x - e ln2) for x <= max, e = round(max log2 e) with |max| <= kFastLimit
// (softmax's pow2_term, for log_softmax's float64 sums): the reduction
// x - n ln2 is exact (|x| <= 2^21 after the clamp, |n| < 2^22) and the
// scale 2^(n - e) exact (n <= e; terms below 2^-1022 may flush to 0), so no
// x - max is rounded and a term is the degree-11 exp's (~1 * 2^-53
// relative). x below kClampLow gives 0, NaN gives NaN. On float64 lanes
// this is pow2_term itself, with the reference unshifted.
template <class V>
inline Reg<V> ref_term(Reg<V> x, Reg<V> e_ref) {
  static_assert(std::is_same<typename V::scalar, double>::value, "float64 lanes");
  return pow2_term<V>(x, e_ref);
}

// Lanes whose max ref_term cannot take: not finite or beyond kFastLimit.
template <class V>
inline typename V::mask beyond_ref_terms(Reg<V> mx) {
  return V::mask_or(V::notfinite(mx), V::gt(V::max(mx, V::sub(V::set1(0.0), mx)), V::set1(kFastLimit)));
}

// exp(r) = hi + lo for |r| <= ln2/2 (r exact): 1 + r + a, a = r^2 q(r), q
// the degree-11 polynomial's coefficients from r^2 on, the two additions kept
// exact (TwoSum, Fast2Sum: |r + a| < 1). What is left is a's own rounding
// and q's (Horner and fit: 2 * 2^-53 relative of a at most, a <= 0.07, hi >=
// 0.7): below 0.2 * 2^-53 relative, with or without a fused fma.
template <class V>
inline void exp_hi_lo(Reg<V> r, Reg<V>& hi, Reg<V>& lo) {
  using C = ExpCoeffs<double>;
  static_assert(C::c[0] == 1.0 && C::c[1] == 1.0, "exp's first two coefficients");
  Reg<V> q = V::set1(C::c[C::degree]);
  for (int k = C::degree - 1; k >= 2; --k) q = V::fmadd(q, r, V::set1(C::c[k]));
  const Reg<V> a = V::mul(V::mul(r, r), q);
  const Reg<V> s = V::add(r, a);
  const Reg<V> bb = V::sub(s, r);
  const Reg<V> s_err = V::add(V::sub(r, V::sub(s, bb)), V::sub(a, bb));
  hi = V::add(V::set1(1.0), s);
  lo = V::add(V::sub(s, V::sub(hi, V::set1(1.0))), s_err);
}

// The others' sum over the max's own term: sum2e (their ref_terms' sum) /
// exp(max - e ln2), the latter to double-double (exp_hi_lo, from the exact
// reduction; max and e from in-range lanes). With inv = 1 / hi (rounded),
// q0 = sum2e inv (within 1.5 * 2^-53 of sum2e / hi), its residual sum2e -
// q0 hi (one rounding with a fused fma, of a value a few 2^-53 of sum2e:
// a few 2^-106), then q0 + (residual - q0 lo) inv: the correction is a few
// 2^-53 of q0 and its own error a few 2^-106, so 0.5 * 2^-53 relative
// besides the sum's own (about 1.5 * 2^-53 without a fused fma, where the
// product q0 hi rounds), as with two divisions; the one division waits for
// the max only, not the sums. div_lanes: as log1p_small's.
// (over_max_term_from: from hi, lo and inv = 1 / hi, which the caller may
// compute before the sums are done.)
template <class V>
inline Reg<V> over_max_term_from(Reg<V> sum2e, Reg<V> hi, Reg<V> lo, Reg<V> inv) {
  const Reg<V> q0 = V::mul(sum2e, inv);
  const Reg<V> resid = V::fmadd(V::sub(V::set1(0.0), q0), hi, sum2e);
  return V::add(q0, V::mul(V::fmadd(V::sub(V::set1(0.0), q0), lo, resid), inv));
}
template <class V>
inline Reg<V> over_max_term(Reg<V> sum2e, Reg<V> mx, Reg<V> e_ref) {
  Reg<V> hi, lo;
  exp_hi_lo<V>(V::reduce_ln2(mx, e_ref), hi, lo);
  return over_max_term_from<V>(sum2e, hi, lo, div_lanes(V::set1(1.0), hi));
}

// log1p(z) in float64 lanes for 0 <= z with 1 + z < 2^15 (an unweighted sum
// of at most 2^15 terms, each at most 1; NaN lanes give garbage, unused):
// t = 1 + z is scaled by 2^-e into [2^-1/2, 2^1/2) by four exact compare-and-
// halve steps, and log(t) = 2 atanh(s), s = f / (2 + f), f = t - 1 (exact),
// to degree 23 in s (|s| <= 0.1716: the next term is below 2^-60 relative).
// Where e = 0, f is z itself, so S - 1 keeps all its bits (log_softmax of a
// dominant entry is -log1p(S - 1) to full relative accuracy). Error: the
// rounding of s (about 1.5 ulp relative) dominates. div_lanes is defined by
// the including translation unit for its register types.
// Terms < 11 cuts the series at degree 2 Terms + 1 (Terms = 7: the tail is
// below w^8 / 17 / (1 - w) <= 2^-44.7 relative, 2^-46.2 absolute in log(t)
// <= ln2 / 2); 1 + z < MaxT drops the steps that cannot divide (results
// unchanged).
// (In three parts, for callers that interleave them with other work:
// log1p_small_reduce gives t and e, then s = f / (2 + f) with f as below,
// then log1p_small_series.)
template <class V, int MaxT = (1 << 15)>
inline void log1p_small_reduce(Reg<V> z, Reg<V>& t, Reg<V>& e) {
  t = V::add(V::set1(1.0), z);
  e = V::set1(0.0);
  // The steps' constants as products by exact powers of two, folded at
  // compile time by any compiler (std::ldexp is folded only where the
  // compiler may ignore errno, as with this build's -fno-math-errno; else it
  // is two library calls per step and half vector).
  constexpr int kSteps[4] = {8, 4, 2, 1};
  for (int p : kSteps) {
    // t >= 2^p / sqrt(2): divide by 2^p (exact); afterwards t < 2^p / sqrt(2).
    const double two_p = static_cast<double>(1 << p);
    if (0.70710678118654752 * two_p >= MaxT) continue;  // t < MaxT: never
    const auto big = V::gt(t, V::set1(0.70710678118654752 * two_p));
    t = V::select(big, V::mul(t, V::set1(1.0 / two_p)), t);
    e = V::select(big, V::add(e, V::set1(p)), e);
  }
}
template <class V, int Terms = 11>
inline Reg<V> log1p_small_series(Reg<V> s, Reg<V> e) {
  const Reg<V> w = V::mul(s, s);
  // q(w) = sum_{k>=1} w^(k-1) / (2k + 1), k = 1..Terms
  Reg<V> q = V::set1(1.0 / (2 * Terms + 1));
  for (int k = Terms - 1; k >= 1; --k) q = V::fmadd(q, w, V::set1(1.0 / (2 * k + 1)));
  const Reg<V> two_s = V::add(s, s);
  const Reg<V> log_t = V::fmadd(V::mul(two_s, w), q, two_s);
  using C = ExpCoeffs<double>;  // e * ln2_hi31 is exact
  return V::add(V::mul(e, V::set1(C::ln2_hi31)), V::fmadd(e, V::set1(C::ln2_lo31), log_t));
}
template <class V, int Terms = 11, int MaxT = (1 << 15)>
inline Reg<V> log1p_small(Reg<V> z) {
  static_assert(Terms >= 2 && Terms <= 11 && MaxT <= (1 << 15), "log1p_small's range and degree");
  Reg<V> t, e;
  log1p_small_reduce<V, MaxT>(z, t, e);
  const Reg<V> f = V::select(V::nonzero(e), V::sub(t, V::set1(1.0)), z);
  return log1p_small_series<V, Terms>(div_lanes(f, V::add(V::set1(2.0), f)), e);
}

// Lane types with scale_near_one (AVX2): t = m 2^e, m in (c, 2c] from the
// exponent field.
template <class V, class = void>
struct HasScaleNearOne : std::false_type {};
template <class V>
struct HasScaleNearOne<V, std::void_t<decltype(V::scale_near_one(std::declval<Reg<V>>(), std::declval<Reg<V>&>(),
                                                                 std::declval<Reg<V>&>()))>> : std::true_type {};

// log1p_small for lanes known finite (no NaN or infinite z): where the lane
// type has scale_near_one, t and e from t's exponent field in six
// operations (the compare-and-halve steps took five per step, two or three
// here), the same t and e (log1p_small_reduce ends with t in (c, 2c], c
// the same double, and e the one power of two that puts it there), so the
// same bits. A NaN z would not stay NaN: callers whose lanes may be special
// take log1p_small.
template <class V, int Terms = 11, int MaxT = (1 << 15)>
SSM_INLINE inline Reg<V> log1p_small_finite(Reg<V> z) {
  if constexpr (HasScaleNearOne<V>::value) {
    Reg<V> t, e;
    V::scale_near_one(V::add(V::set1(1.0), z), t, e);
    const Reg<V> f = V::select(V::nonzero(e), V::sub(t, V::set1(1.0)), z);
    return log1p_small_series<V, Terms>(div_lanes(f, V::add(V::set1(2.0), f)), e);
  } else {
    return log1p_small<V, Terms, MaxT>(z);
  }
}

// Kahan-compensated lane sums, two chains (even and odd columns) so that the
// four-add dependency of a compensated step is not the loop's critical path.
template <class V>
struct Kahan2 {
  Reg<V> s[2], c[2];
  Kahan2() { s[0] = s[1] = c[0] = c[1] = V::set1(0.0); }
  void add(int u, Reg<V> t) {
    const Reg<V> y = V::sub(t, c[u]);
    const Reg<V> sum = V::add(s[u], y);
    c[u] = V::sub(V::sub(sum, s[u]), y);
    s[u] = sum;
  }
  // Lane totals in float64: (s0 - c0) + (s1 - c1), in the register
  // (total) or into an array (totals).
  Reg<V> total() const { return V::add(V::sub(s[0], c[0]), V::sub(s[1], c[1])); }
  template <size_t N>
  void totals(double (&out)[N], size_t at = 0) const {
    constexpr size_t W = V::width;
    double a[W], b[W], d[W], e[W];
    V::to_array(s[0], a);
    V::to_array(c[0], b);
    V::to_array(s[1], d);
    V::to_array(c[1], e);
    for (size_t l = 0; l < W; ++l) out[at + l] = (a[l] - b[l]) + (d[l] - e[l]);
  }
};

// Plain lane sums with Kahan2's interface, for terms whose own error (the
// degree-6 exp's 2.1e-9) dwarfs the additions' (at most kMaxN - 1 float64
// adds of terms >= 0: below 2^-45 relative).
template <class V>
struct Plain2 {
  Reg<V> s[2];
  Plain2() { s[0] = s[1] = V::set1(0.0); }
  void add(int u, Reg<V> t) { s[u] = V::add(s[u], t); }
  template <size_t N>
  void totals(double (&out)[N], size_t at = 0) const {
    constexpr size_t W = V::width;
    double a[W], b[W];
    V::to_array(s[0], a);
    V::to_array(s[1], b);
    for (size_t l = 0; l < W; ++l) out[at + l] = a[l] + b[l];
  }
};

// Group <-> columns. buf[j * W + l] is element j of row l; lanes >= g (the
// batch's last, partial group) are filled with `fill`.
template <class V, class T>
inline void to_columns(const T* x, size_t n, size_t g, T* buf, T fill) {
  constexpr size_t W = V::width;
  if (g == W) {
    size_t j = 0;
    for (; j + W <= n; j += W) transpose_block<V>(x + j, n, buf + j * W, W);
    for (; j < n; ++j)
      for (size_t l = 0; l < W; ++l) buf[j * W + l] = x[l * n + j];
    return;
  }
  for (size_t j = 0; j < n; ++j)
    for (size_t l = 0; l < W; ++l) buf[j * W + l] = l < g ? x[l * n + j] : fill;
}

// Columns of a full group whose rows end in a partial block (n % W != 0,
// a lane type with a W x W transpose): the whole blocks as to_columns, then
// the last n % W elements of each row by one masked load, that block
// transposed in registers and its first n % W columns stored whole.
// to_columns' element copy wrote each such column as W single stores that
// the column's vector load then read at once, which the store buffer
// cannot forward: the load waited for them to reach the cache (AVX-512
// float64 logsumexp rows of 2-3, where the sums are a few columns long).
// to_columns_short: the same for rows shorter than W only (n < W).
template <class V, class T>
inline void to_columns_blocks(const T* x, size_t n, size_t g, T* buf, T fill) {
  constexpr size_t W = V::width;
  if constexpr (Transposes<V>::value) {
    if (g == W && n % W != 0) {
      size_t j = 0;
      for (; j + W <= n; j += W) transpose_block<V>(x + j, n, buf + j * W, W);
      Reg<V> v[W];
      for (size_t l = 0; l < W; ++l) v[l] = V::load_tail(x + l * n + j, n - j, fill);
      V::transpose(v);
      for (size_t k = 0; k < W; ++k)
        if (j + k < n) V::store(buf + (j + k) * W, v[k]);
      return;
    }
  }
  to_columns<V>(x, n, g, buf, fill);
}
template <class V, class T>
inline void to_columns_short(const T* x, size_t n, size_t g, T* buf, T fill) {
  if (n < V::width) return to_columns_blocks<V>(x, n, g, buf, fill);
  to_columns<V>(x, n, g, buf, fill);
}

// to_columns_short, and for a full group of rows longer than W whose
// length is not a multiple of W the last W columns as one more block
// (overlapping the one before it: those columns are written twice, with
// the same values) instead of g single copies per column left over, whose
// stores the sums' vector loads then waited on (see to_columns_short).
template <class V, class T>
inline void to_columns_whole(const T* x, size_t n, size_t g, T* buf, T fill) {
  constexpr size_t W = V::width;
  if constexpr (Transposes<V>::value) {
    if (g == W && n > W && n % W != 0) {
      size_t j = 0;
      for (; j + W <= n; j += W) transpose_block<V>(x + j, n, buf + j * W, W);
      transpose_block<V>(x + (n - W), n, buf + (n - W) * W, W);
      return;
    }
  }
  to_columns_short<V>(x, n, g, buf, fill);
}

// Shortest run streamed: shorter ones lose (AVX2, 2^21 float64 elements
// out of cache, ns per element streamed / not: n = 8 (256-byte runs) 7.7 /
// 5.8, n = 16 5.1 / 4.5, n = 32 3.5 / 3.5, n = 64 (2 KiB) 3.4-3.8 / 3.7-3.8,
// n = 100 3.2 / 3.6-3.8, n = 256 3.2 / 3.6).
constexpr size_t kStreamRunBytes = 2048;

// Columns -> the group's rows, written out. A group's g rows are contiguous
// in y, so they are staged in row order in obuf (an L1 transpose) and leave
// as one run of g * n elements. Scalar stores straight from the columns
// touched four to sixteen rows at once and took longer than the group's
// arithmetic on rows out of cache (AVX2, 2^21-element float64 batches,
// n = 100: 7.6 ns per element vs 3.2 for logsumexp's group kernel; 2.5 vs
// 2.0 in cache). With `stream` (an output beyond the cache, use_stream, as
// the row kernels' write passes) the whole 64-byte lines inside the run are
// stored non-temporally, which spares their read for ownership, and the
// partial lines at its ends regularly: a line written partly each way
// costs more than it saves (a run of rows of 32 float32 streamed from a
// 32-byte boundary, half lines at its ends: 4.0 vs 2.2 ns per element). The
// caller fences once after its last group. Only rows marked ok are written.
// (from_columns_all: a full group whose rows are all ok.)
template <class VN, class T>
inline void from_columns_all(const T* buf, size_t n, T* obuf, T* y, bool stream) {
  constexpr size_t W = VN::width;
  const size_t g = W;
  size_t j = 0;
  for (; j + W <= n; j += W) transpose_block<VN>(buf + j * W, W, obuf + j, n);
  for (; j < n; ++j)
    for (size_t l = 0; l < W; ++l) obuf[l * n + j] = buf[j * W + l];
  const size_t total = g * n;
  if constexpr (VN::stream_align != 0) {
    constexpr size_t kLine = 64 / sizeof(T);  // elements per cache line
    static_assert(kLine % W == 0, "whole vectors per line");
    const uintptr_t addr = reinterpret_cast<uintptr_t>(y);
    const size_t head = (64 - addr % 64) % 64 / sizeof(T);
    if (stream && total * sizeof(T) >= kStreamRunBytes && addr % sizeof(T) == 0 && head + kLine <= total) {
      const size_t end = head + (total - head) / kLine * kLine;
      std::memcpy(y, obuf, head * sizeof(T));
      for (size_t i = head; i < end; i += W) VN::stream(y + i, VN::load(obuf + i));
      std::memcpy(y + end, obuf + end, (total - end) * sizeof(T));
      return;
    }
  }
  std::memcpy(y, obuf, total * sizeof(T));
}
template <class VN, class T>
inline void from_columns(const T* buf, size_t n, size_t g, const bool* ok, T* obuf, T* y, bool stream) {
  constexpr size_t W = VN::width;
  bool all = g == W;
  for (size_t l = 0; l < g; ++l) all = all && ok[l];
  if (!all) {
    for (size_t l = 0; l < g; ++l)
      if (ok[l])
        for (size_t j = 0; j < n; ++j) y[l * n + j] = buf[j * W + l];
    return;
  }
  from_columns_all<VN>(buf, n, obuf, y, stream);
}

// 1 / sum per lane, rounded to T (the data's precision, as the scale pass
// multiplies), or 0 where the sum is not that of an ordinary row.
template <class V>
inline Reg<V> inv_sum_lanes(Reg<V> total) {
  const auto bad = V::mask_or(V::not_le(V::set1(kMinShiftedSum), total), V::not_le(total, V::set1(1e300)));
  return V::select(bad, V::set1(0.0), div_lanes(V::set1(1.0), total));
}

// The group's per-lane steps (the reference exponents from the max, the
// checks, 1 / sum) stay in the lanes: done one lane at a time in scalar code
// they took a third of the instructions of a group of rows of 8 (AVX2
// float32, callgrind); a full group of ordinary rows (the usual one) skips
// the per-lane flags too (n = 8 12.1 -> 10.1 instructions per element, 1.15x
// thread CPU time, 4 Mi-element batches, Zen 3).
// softmax_ref: the lanes beyond kFastLimit (also +-inf, all -inf: left to
// the per-row path) and each lane's e_ref - kTermShift from its max.
template <class VN>
inline Reg<VN> softmax_ref(Reg<VN> vmax, typename VN::mask& beyond) {
  beyond = VN::mask_or(VN::not_le(vmax, VN::set1(kFastLimit)), VN::not_le(VN::set1(-kFastLimit), vmax));
  return VN::sub(VN::select(beyond, VN::set1(0.0), VN::round(VN::mul(vmax, VN::set1(kLog2e)))),
                 VN::set1(kTermShift));
}
// softmax_inv: 1 / sum per lane from the Kahan sums, the lane totals in
// float64, (s0 - c0) + (s1 - c1), rounded to T (the data's type, also on
// float64 lanes: the scalar set's); 0 in the lanes beyond and
// where the sum is not that of an ordinary row.
template <class VN, class T>
inline Reg<VN> softmax_inv(const Kahan2<VN>& sum, typename VN::mask beyond) {
  constexpr size_t W = VN::width;
  alignas(64) T inv[W];
  if constexpr (std::is_same<typename VN::scalar, float>::value) {
    using VW = typename VN::wide;
    constexpr size_t WW = VW::width;
    static_assert(2 * WW == W, "widen splits the vector in two");
    Reg<VW> s0[2], c0[2], s1[2], c1[2];
    VN::widen(sum.s[0], s0[0], s0[1]);
    VN::widen(sum.c[0], c0[0], c0[1]);
    VN::widen(sum.s[1], s1[0], s1[1]);
    VN::widen(sum.c[1], c1[0], c1[1]);
    for (size_t h = 0; h < 2; ++h)
      VW::store(inv + h * WW, inv_sum_lanes<VW>(VW::add(VW::sub(s0[h], c0[h]), VW::sub(s1[h], c1[h]))));
  } else {
    VN::store(inv, inv_sum_lanes<VN>(sum.total()));
  }
  return VN::select(beyond, VN::set1(0.0), VN::load(inv));
}
// An ordinary row's 1 / sum is far above the smallest normal; the others' is 0.
// (A literal, not std::numeric_limits<T>::min(): unoptimized builds emit
// that as an out-of-line function compiled with this file's ISA flags.)
template <class VN, class T>
inline bool softmax_all_ok(Reg<VN> vinv) {
  constexpr T kSmallestNormal = static_cast<T>(sizeof(T) == sizeof(float) ? 0x1p-126 : 0x1p-1022);
  return !VN::any(VN::not_le(VN::set1(kSmallestNormal), vinv));
}

// Inline at every call (softmax_rows' loop and softmax_group_redo): with
// the redo as a second caller GCC left it out of line, and AVX-512 rows of
// 16 took 1.25-1.4x the time.
template <class VN, class T>
SSM_INLINE inline void softmax_group(const T* x, T* y, size_t n, size_t g, T* buf, T* obuf, bool stream,
                                     unsigned char* flag) {
  constexpr size_t W = VN::width;
  // float64 rows shorter than W in as one masked-load block each, the rest
  // by to_columns' element copy: Zen 3, avx2, 4 Mi-element batches, 1
  // thread, medians of 5-7 interleaved processes, time with
  // to_columns_whole / to_columns: float64 n = 2 0.84, 3 0.87, but 5 1.20
  // (its overlapping second block), 6 and 10 0.98; float32 n = 2 1.25, 3
  // 1.28, 5 1.15, 10 1.05 (eight masked loads of a few floats each cost
  // more there than the copies they replace).
  if constexpr (std::is_same<T, double>::value)
    to_columns_short<VN>(x, n, g, buf, T(0));
  else
    to_columns<VN>(x, n, g, buf, T(0));
  Reg<VN> vmax = VN::set1(-kInf);
  for (size_t j = 0; j < n; ++j) vmax = VN::max(VN::load(buf + j * W), vmax);  // NaN ignored
  typename VN::mask beyond;
  const Reg<VN> ve = softmax_ref<VN>(vmax, beyond);
  Kahan2<VN> sum;
  for (size_t j = 0; j < n; ++j) {
    const Reg<VN> t = pow2_term<VN>(VN::load(buf + j * W), ve);
    VN::store(buf + j * W, t);
    sum.add(static_cast<int>(j & 1), t);
  }
  const Reg<VN> vinv = softmax_inv<VN, T>(sum, beyond);
  for (size_t j = 0; j < n; ++j) VN::store(buf + j * W, VN::mul(VN::load(buf + j * W), vinv));
  if (g == W && softmax_all_ok<VN, T>(vinv)) {
    from_columns_all<VN>(buf, n, obuf, y, stream);
    std::memset(flag, 0, W);
    return;
  }
  alignas(64) T inv[W];
  VN::store(inv, vinv);
  bool ok[W];
  for (size_t l = 0; l < W; ++l) ok[l] = l < g && inv[l] != T(0);
  from_columns<VN>(buf, n, g, ok, obuf, y, stream);
  for (size_t l = 0; l < g; ++l) flag[l] = !ok[l];
}

// (Here, not with the other direct-row headers below: the register and
// block group kernels take its FoldedConsts.)
#include "rows_direct.h"

// Softmax's terms for softmax_group_regs and softmax_group_blocks: on lane
// types with DirectFoldedScale (AVX2 float32) FoldedConsts::term, whose
// reference is 2^23 + 127 - ve (group_ref; ve = round(max log2 e) -
// kTermShift, an integer below 2^21 in magnitude: exact), the same bits as
// pow2_term's (rows_direct.h), one operation fewer per vector, and its
// constants made once per batch: GCC no longer broadcasts them again per
// column step but keeps them in registers or spill slots, which the
// operations read as memory operands; elsewhere pow2_term.
// With the two-column Kahan steps and the scale fused into the transposes
// out (softmax_group_regs, softmax_group_blocks): the same bits (sha1 of
// avx2 and scalar outputs n = 1-256 with special rows, and of the flush
// sweep, unchanged). Zen 3, avx2, N(0, 1), 1 Mi-element batches, callgrind
// instructions per element main -> this: n = 2 18.0 -> 17.5, 5 9.73 ->
// 9.74, 8 7.70 -> 7.95, 12 7.47 -> 7.05, 16 6.75 -> 6.27, 17 8.73 -> 6.66,
// 20 8.17 -> 6.34, 24 7.58 -> 5.98, 25 7.80 -> 7.04, 28 7.51 -> 6.68, 31
// 7.22 -> 6.40; thread CPU time / main's,
// 4 Mi-element batches, medians of 5 interleaved processes, load 10: n = 2
// 0.93, 8 0.98, 16 0.95, 17 0.88, 20 0.89, 24 0.87, 25-31 0.99.
template <class VN, bool Fold = DirectFoldedScale<VN>::value>
SSM_INLINE inline Reg<VN> group_ref(Reg<VN> ve) {
  if constexpr (Fold)
    return VN::sub(VN::set1(8388735.0), ve);
  else
    return ve;
}
template <class VN, bool Fold = DirectFoldedScale<VN>::value>
SSM_INLINE inline Reg<VN> group_term(const FoldedConsts<VN>& K, Reg<VN> x, Reg<VN> ref) {
  if constexpr (Fold)
    return K.term(x, ref);
  else
    return pow2_term<VN>(x, ref);
}

// softmax_inv for each of P groups of float32 rows; false if a row of them
// is not ordinary (softmax_group_regs, softmax_group_blocks).
template <class VN, size_t P>
SSM_INLINE inline bool softmax_invs(const Kahan2<VN> (&sum)[P], const typename VN::mask (&beyond)[P],
                                    Reg<VN> (&vinv)[P]) {
  bool ok = true;
  for (size_t p = 0; p < P; ++p) {
    vinv[p] = softmax_inv<VN, float>(sum[p], beyond[p]);
    ok = ok && softmax_all_ok<VN, float>(vinv[p]);
  }
  return ok;
}

// A lane type's cheaper columns of a group of W rows of a fixed length N
// than the W x W transposes (value true: load(x, c) puts column j of the W
// rows at x, W N contiguous floats, in c[j], reading nothing else;
// rows_columns_avx2.h).
template <class VN, size_t N>
struct GroupColumns : std::false_type {};

// P full groups of float32 rows of n <= NB W elements into registers, as
// softmax_group_regs: block b of a group is W vector loads at stride n and
// a W x W transpose (column j of group p in c[p][j]); rows of a fixed
// length N (n = N) by GroupColumns where the lane type has them.
template <class VN, size_t NB, size_t P, size_t N = 0>
SSM_INLINE inline void load_group_regs(const float* x, size_t n, Reg<VN> (&c)[P][NB * VN::width]) {
  constexpr size_t W = VN::width;
  if constexpr (N != 0 && GroupColumns<VN, N>::value) {
    for (size_t p = 0; p < P; ++p) GroupColumns<VN, N>::load(x + p * W * N, c[p]);
    return;
  }
  for (size_t p = 0; p < P; ++p)
    for (size_t b = 0; b < NB; ++b) {
      Reg<VN>(&v)[W] = *reinterpret_cast<Reg<VN>(*)[W]>(&c[p][b * W]);
      for (size_t l = 0; l < W; ++l) v[l] = VN::load(x + (p * W + l) * n + b * W);
      VN::transpose(v);
    }
}

// softmax_group's arithmetic, lane for lane (the same bits), on P full
// groups of float32 rows of n <= NB W elements with their columns in
// registers, the groups' steps interleaved so that their chains overlap:
// block b of a group (W rows' elements b W .. b W + W - 1) is
// W vector loads at stride n and a register transpose, out the same way
// back, W vector stores per block straight into y. No column buffer, no
// element copies and no staging in obuf: softmax_group's buffer passes
// (to_columns' single-element stores then read by the column loads, which
// the store buffer cannot forward; the obuf transpose and memcpy) took most
// of its time below n = 32 and made lengths that are not multiples of W
// cost more per row than the next multiple (Zen 3, avx2, ns per row: n = 5
// 15.8, n = 8 10.6, n = 10 22, n = 16 16).
// Where n % W != 0 the last block of each row reads and writes past the
// row's end, into the rows after it (at most W - 1 elements): those lanes
// carry the loaded values back unchanged, and the stores go in row order,
// so each such spill into row l + 1 is overwritten by row l + 1's own
// stores. The last row's spill lands past the group: the caller takes this
// only where those elements belong to its own batch (read there, and
// written back with the same values, later overwritten by their group or
// by the per-row redo of a flagged row; in place the values are the
// inputs not yet read). Nothing is stored unless every row of the P groups
// is ordinary (returns false: the caller runs softmax_group on each).
template <class VN, size_t NB, size_t P, size_t N = 0>
SSM_INLINE inline bool softmax_group_regs(const float* x, float* y, size_t n, const FoldedConsts<VN>& K) {
  constexpr size_t W = VN::width;
  constexpr size_t C = NB * W;
  // group_term folded from two blocks on: rows of one block (P = 4) took
  // more instructions with it (callgrind per element, n = 2 18.0 -> 19.5,
  // 5 9.7 -> 10.1; without it 17.5, 9.7).
  constexpr bool kFold = DirectFoldedScale<VN>::value && NB > 1;
  if constexpr (N != 0) n = N;
  // The transposes whatever N: the columns past n carry the loaded values
  // back (GroupColumns leaves them unset).
  Reg<VN> c[P][C];
  load_group_regs<VN, NB, P>(x, n, c);
  // The max as a tree (the linear chain was the first leg of a group's
  // critical path); a NaN may now reach it, which flags the row as the
  // NaN sum did.
  Reg<VN> m[P][W];
  typename VN::mask beyond[P];
  Reg<VN> ve[P];
  for (size_t p = 0; p < P; ++p) {
    for (size_t k = 0; k < W; ++k) m[p][k] = c[p][k];
    for (size_t j = W; j < C; ++j)
      if (j < n) m[p][j % W] = VN::max(c[p][j], m[p][j % W]);
    for (size_t w = W / 2; w >= 1; w /= 2)
      for (size_t k = 0; k < w; ++k)
        if (k + w < n) m[p][k] = VN::max(m[p][k + w], m[p][k]);
    ve[p] = group_ref<VN, kFold>(softmax_ref<VN>(m[p][0], beyond[p]));
  }
  // Two columns per step, the even one into Kahan chain 0 and the odd one
  // into chain 1 (the same additions in the same order as one column per
  // step): with the chain a constant the sums stay in registers where GCC
  // keeps c on the stack (three blocks, two groups: it does not unroll
  // the loop, and a chain picked by j & 1 was a stack slot read and
  // written per term, with its address computed).
  Kahan2<VN> sum[P];
  for (size_t j = 0; j < C; j += 2)
    for (size_t p = 0; p < P; ++p) {
      if (j < n) {
        c[p][j] = group_term<VN, kFold>(K, c[p][j], ve[p]);
        sum[p].add(0, c[p][j]);
      }
      if (j + 1 < n) {
        c[p][j + 1] = group_term<VN, kFold>(K, c[p][j + 1], ve[p]);
        sum[p].add(1, c[p][j + 1]);
      }
    }
  Reg<VN> vinv[P];
  if (!softmax_invs<VN, P>(sum, beyond, vinv)) return false;
  // Each block scaled, transposed back and stored straight into y, the
  // last block first (as softmax_group_blocks: each row's spill into the
  // next row's first block is then overwritten by that row's own values);
  // no separate scale pass and no trip of the transposed block through c.
  // (Only the last block holds columns past n: the others are scaled
  // whole, with no per-column test.)
  auto out_block = [&](size_t p, size_t b, auto last) SSM_INLINE {
    Reg<VN> v[W];
    for (size_t k = 0; k < W; ++k)
      v[k] = !decltype(last)::value || b * W + k < n ? VN::mul(c[p][b * W + k], vinv[p]) : c[p][b * W + k];
    VN::transpose(v);
    for (size_t l = 0; l < W; ++l) VN::store(y + (p * W + l) * n + b * W, v[l]);
  };
  for (size_t p = 0; p < P; ++p) {
    out_block(p, NB - 1, std::true_type());
    for (size_t b = 0; b + 1 < NB; ++b) out_block(p, b, std::false_type());
  }
  return true;
}

// softmax_group_regs' arithmetic (the same bits) for P full groups of
// float32 rows of NB blocks (n <= NB W), too many columns to hold in
// registers: each block comes in as W vector loads at stride n and a
// register transpose, its columns go to buf as whole-vector stores (which
// the store buffer forwards to the term pass' loads, unlike to_columns'
// element copies of a partial block) while the block's max is taken as a
// tree; the terms replace them in buf; out, each block's columns are
// loaded, scaled, transposed back and stored straight into y. Lengths
// that are not a multiple of W read and write past the row's end exactly
// as softmax_group_regs (its caller's bounds): the columns past n keep the
// loaded values and are stored back unchanged. The last block is stored
// first, then blocks 0 .. NB - 2, so that each row's spill into the next
// row's first block is overwritten by that row's own values. Nothing is
// stored unless every row of the P groups is ordinary.
template <class VN, size_t NB, size_t P>
SSM_INLINE inline bool softmax_group_blocks(const float* x, float* y, size_t n, float* buf,
                                          const FoldedConsts<VN>& K) {
  constexpr size_t W = VN::width;
  constexpr size_t C = NB * W;
  typename VN::mask beyond[P];
  Reg<VN> ve[P];
  for (size_t p = 0; p < P; ++p) {
    Reg<VN> m = VN::set1(-kInf);
    for (size_t b = 0; b < NB; ++b) {
      Reg<VN> v[W];
      for (size_t l = 0; l < W; ++l) v[l] = VN::load(x + (p * W + l) * n + b * W);
      VN::transpose(v);
      for (size_t k = 0; k < W; ++k) VN::store(buf + (p * C + b * W + k) * W, v[k]);
      const size_t in_row = b * W + W <= n ? W : n - b * W;  // at least 1: n > (NB - 1) W
      for (size_t w = W / 2; w >= 1; w /= 2)
        for (size_t k = 0; k < w; ++k)
          if (k + w < in_row) v[k] = VN::max(v[k + w], v[k]);
      m = VN::max(v[0], m);
    }
    ve[p] = group_ref<VN>(softmax_ref<VN>(m, beyond[p]));
  }
  // Two columns per step, even into chain 0, odd into chain 1 (the same
  // additions in the same order; the sums in registers, as
  // softmax_group_regs').
  Kahan2<VN> sum[P];
  auto column = [&](size_t j, size_t p, int u) SSM_INLINE {
    const Reg<VN> t = group_term<VN>(K, VN::load(buf + (p * C + j) * W), ve[p]);
    VN::store(buf + (p * C + j) * W, t);
    sum[p].add(u, t);
  };
  size_t j = 0;
  for (; j + 2 <= n; j += 2)
    for (size_t p = 0; p < P; ++p) {
      column(j, p, 0);
      column(j + 1, p, 1);
    }
  if (j < n)
    for (size_t p = 0; p < P; ++p) column(j, p, 0);
  Reg<VN> vinv[P];
  if (!softmax_invs<VN, P>(sum, beyond, vinv)) return false;
  for (size_t p = 0; p < P; ++p)
    for (size_t i = 0; i < NB; ++i) {
      const size_t b = (i + NB - 1) % NB;  // the last block first
      Reg<VN> v[W];
      for (size_t k = 0; k < W; ++k) {
        v[k] = VN::load(buf + (p * C + b * W + k) * W);
        if (b * W + k < n) v[k] = VN::mul(v[k], vinv[p]);
      }
      VN::transpose(v);
      for (size_t l = 0; l < W; ++l) VN::store(y + (p * W + l) * n + b * W, v[l]);
    }
  return true;
}

// Float32 rows up to max_n go through softmax_group_regs (AVX2 sets it in
// rows_avx2.cpp); 0: softmax_group only. groups1, groups2, groups3: the
// groups taken at a time by rows of one, two and three W x W blocks;
// group_n: one length of the range left to softmax_group (0: none).
template <class VN>
struct SoftmaxRegsRange {
  static constexpr size_t max_n = 0, groups1 = 4, groups2 = 4, groups3 = 2, group_n = 0;
};

// Float32 rows from SoftmaxRegsRange's max_n + 1 to max_n go through
// softmax_group_blocks, `groups` groups at a time (AVX2 sets it in
// rows_avx2.cpp); 0: as the ranges without.
template <class VN>
struct SoftmaxBlocksRange {
  static constexpr size_t max_n = 0, groups = 1;
};

// Float32 rows of 2 to max_n elements, and of vector_n, go through
// SoftmaxPermRange::rows (AVX-512 sets them: rows_softmax32_perm_avx512.h);
// 0: as the ranges without.
template <class VN>
struct SoftmaxPermRange {
  static constexpr size_t max_n = 0, vector_n = 0;
  static void rows(const float*, float*, size_t, size_t, float*, float*, bool, unsigned char*) {}
};

template <class VN, size_t NB, size_t P, bool Buffered, size_t N = 0>
SSM_INLINE inline bool softmax_groups_fast(const float* x, float* y, size_t n, float* buf,
                                         const FoldedConsts<VN>& K) {
  if constexpr (Buffered)
    return softmax_group_blocks<VN, NB, P>(x, y, n, buf, K);
  else
    return softmax_group_regs<VN, NB, P, N>(x, y, n, K);
}

// softmax_group out of line for the sets' redone groups (a special row,
// the batch's last groups): one copy per set kernel, not one per call.
template <class VN>
SSM_NOINLINE void softmax_group_redo(const float* x, float* y, size_t n, size_t g, float* buf, float* obuf,
                                     bool stream, unsigned char* flag) {
  softmax_group<VN>(x, y, n, g, buf, obuf, stream, flag);
}

// P full groups at a time while fast may read them (reach: the elements
// it reads from the set's last row's start on), one group, then
// softmax_group; a set fast leaves unwritten (a row that is not ordinary)
// goes to softmax_group group by group. fast(x, y, P) -> stored or not.
template <class VN, size_t P, class Fast>
SSM_INLINE inline void softmax_rows_sets(const float* x, float* y, size_t rows, size_t n, size_t reach, float* buf,
                                       float* obuf, bool stream, unsigned char* flag, Fast&& fast) {
  constexpr size_t W = VN::width;
  size_t r = 0;
  for (; rows - r >= P * W && (rows - r - (P * W - 1)) * n >= reach; r += P * W) {
    if (fast(x + r * n, y + r * n, std::integral_constant<size_t, P>())) {
      std::memset(flag + r, 0, P * W);
      continue;
    }
    for (size_t p = 0; p < P; ++p)
      softmax_group_redo<VN>(x + (r + p * W) * n, y + (r + p * W) * n, n, W, buf, obuf, stream, flag + r + p * W);
  }
  for (; r < rows; r += W) {
    const size_t g = rows - r < W ? rows - r : W;
    if (g == W && (rows - r - (W - 1)) * n >= reach &&
        fast(x + r * n, y + r * n, std::integral_constant<size_t, 1>())) {
      std::memset(flag + r, 0, W);
      continue;
    }
    softmax_group_redo<VN>(x + r * n, y + r * n, n, g, buf, obuf, stream, flag + r);
  }
}

// N: as log_softmax_rows_regs'.
template <class VN, size_t NB, size_t P, bool Buffered = false, size_t N = 0>
void softmax_rows_regs(const float* x, float* y, size_t rows, size_t n, float* buf, float* obuf, bool stream,
                       unsigned char* flag) {
  if constexpr (N != 0) n = N;
  // The sets' last block reaches NB W elements from their last row's start
  // (see softmax_group_regs).
  const FoldedConsts<VN> K;  // group_term's constants, once per batch
  softmax_rows_sets<VN, P>(x, y, rows, n, NB * VN::width, buf, obuf, stream, flag,
                           [&](const float* xs, float* ys, auto groups) SSM_INLINE {
                             return softmax_groups_fast<VN, NB, decltype(groups)::value, Buffered, N>(xs, ys, n, buf,
                                                                                                      K);
                           });
}

// The accurate sums of a group already in buf (and bbuf, weighted): per lane
// the max (over b != 0), k = the weights of the max's own terms (their count
// unweighted) and rest = sum of the other terms b exp(x - max). Weighted: x
// is replaced by -inf where b == 0 in buf (SciPy: a zero weight removes the
// term, even an inf or NaN one), bad[l] flags a non-finite weight and mag
// receives sum |b exp(x - max)| over all terms (weights of both signs: the
// sums' error grows with it, not with |S|); returns whether the group has
// a negative weight. Without one mag = k + rest (within (n + 2) 2^-53 of
// its value), else k + rest - 2 neg, neg the negative terms summed plainly
// (within (3 n + 2) 2^-53).
// C: the exp polynomial of the other terms (the max's own are exact); Acc:
// their lane sums (Kahan2, or Plain2 where C's own error dominates).
// Out of line: when logsumexp's unweighted groups stopped calling it (float32
// log_softmax_group was then its only unweighted caller; it has since been
// replaced by log_softmax_groups_f32's register sums, and weighted
// logsumexp is the only caller left), short-row log_softmax got 15-50%
// slower with it inline (n = 2-5, float32 and float64, AVX2 and AVX-512,
// 4 Mi-element batches); out of line it was back at its old speed, and one
// call per group costs nothing measurable.
template <class VN, class VW, class T, bool Weighted, class C = ExpCoeffs<double>,
          template <class> class Acc = Kahan2>
SSM_NOINLINE bool wide_sums(T* buf, const T* bbuf, size_t n, double* mx, double* k, double* rest, bool* bad,
                            double* mag = nullptr) {
  constexpr size_t W = VN::width, WW = VW::width, H = W / WW;
  static_assert(W % WW == 0, "the wide lanes split the narrow vector");
  Reg<VN> vmax = VN::set1(-kInf), bmin = VN::set1(0.0);
  typename VN::mask nonfinite_b = VN::none();
  for (size_t j = 0; j < n; ++j) {
    Reg<VN> xv = VN::load(buf + j * W);
    if constexpr (Weighted) {
      const Reg<VN> bv = VN::load(bbuf + j * W);
      nonfinite_b = VN::mask_or(nonfinite_b, VN::notfinite(bv));
      bmin = VN::min(bmin, bv);
      xv = VN::select(VN::nonzero(bv), xv, VN::set1(-kInf));
      VN::store(buf + j * W, xv);
    }
    vmax = VN::max(xv, vmax);
  }
  VN::to_array(vmax, mx);
  if constexpr (Weighted) {
    VN::to_array(VN::select(nonfinite_b, VN::set1(1.0), VN::set1(0.0)), rest);
    for (size_t l = 0; l < W; ++l) bad[l] = rest[l] != 0.0;
  } else {
    for (size_t l = 0; l < W; ++l) bad[l] = false;
  }
  alignas(64) double mref[W];
  for (size_t l = 0; l < W; ++l) mref[l] = lane_finite(mx[l]) ? mx[l] : 0.0;
  constexpr bool kExact = std::is_same<T, double>::value;
  // Term j of wide half h: b exp(x - max) (b = 1 unweighted) where x is
  // not the max (other), b (1) at the max.
  auto term = [&](size_t j, size_t h, typename VW::mask& other, Reg<VW>& at_max) SSM_INLINE {
    const Reg<VW> xw = VW::load(buf + j * W + h * WW);
    const Reg<VW> mw = VW::load(mref + h * WW);
    const Reg<VW> d = VW::sub(xw, mw);
    other = VW::nonzero(d);  // also NaN: it reaches rest
    Reg<VW> t = rel_term<VW, kExact, C>(xw, mw, d);
    at_max = VW::set1(1.0);
    if constexpr (Weighted) {
      at_max = VW::load(bbuf + j * W + h * WW);
      t = VW::mul(t, at_max);
    }
    return t;
  };
  Acc<VW> sums[H];
  Reg<VW> count[H], neg[H];
  for (size_t h = 0; h < H; ++h) count[h] = neg[h] = VW::set1(0.0);
  // neg (Signed): the negative terms, max's own included, summed plainly.
  // Even columns to chain 0, odd ones to chain 1, the chain's index a
  // constant as in group_sums (a run-time j & 1 kept the accumulators in
  // memory).
  auto sum_terms = [&](auto signed_tag) SSM_INLINE {
    constexpr bool Signed = decltype(signed_tag)::value;
    auto column = [&](size_t j, auto chain) SSM_INLINE {
      for (size_t h = 0; h < H; ++h) {
        typename VW::mask other;
        Reg<VW> at_max;
        const Reg<VW> t = term(j, h, other, at_max);
        count[h] = VW::add(count[h], VW::select(other, VW::set1(0.0), at_max));
        sums[h].add(decltype(chain)::value, VW::select(other, t, VW::set1(0.0)));
        if constexpr (Signed) neg[h] = VW::add(neg[h], VW::min(VW::select(other, t, at_max), VW::set1(0.0)));
      }
    };
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
      column(j, std::integral_constant<int, 0>());
      column(j + 1, std::integral_constant<int, 1>());
    }
    if (j < n) column(j, std::integral_constant<int, 0>());
  };
  // mag: with every weight >= 0 it is the sum itself; a group with a
  // negative weight also sums its negative terms (mag = k + rest - 2 neg),
  // which ordinary weights do not pay.
  bool negative = false;
  if constexpr (Weighted) negative = VN::any(VN::gt(VN::set1(0.0), bmin));
  if (negative)
    sum_terms(std::bool_constant<Weighted>{});
  else
    sum_terms(std::false_type{});
  for (size_t h = 0; h < H; ++h) {
    double c[WW];
    VW::to_array(count[h], c);
    for (size_t l = 0; l < WW; ++l) k[h * WW + l] = c[l];
    double r[W];
    sums[h].totals(r);
    for (size_t l = 0; l < WW; ++l) rest[h * WW + l] = r[l];
    if constexpr (Weighted) {
      VW::to_array(neg[h], c);
      for (size_t l = 0; l < WW; ++l) mag[h * WW + l] = (k[h * WW + l] + rest[h * WW + l]) - 2.0 * c[l];
    }
  }
  return negative;
}

// The unweighted sums of P groups already in buf (group p at buf + p n W),
// kept in registers: per group p and wide half h of it (q = p H + h), mx =
// the rows' maxima (NaN ignored, +-inf kept), m = mx with the non-finite ones
// replaced by 0 (the terms' reference of a special row), cnt = the count of
// the max's own terms and rest = the sum of the other terms exp(x - m) (C,
// Acc as wide_sums; a NaN reaches it). The sums of lse_plain_group and of
// float64 log_softmax_groups. Each lane's arithmetic is the same whatever P:
// the groups only share the loops, so that their chains overlap.
// Without Count, cnt is 0 and rest holds every term, the max's own ones
// too: each is exactly 1 (d = 0 reduces to r = 0 and the polynomial's
// c[0] = 1), so rest - 1 is S - 1 within the plain sums' own error, but
// relative to S, not to the other terms (lse_groups_f32: its certificate
// needs no more; a compare, a blend and an add fewer per vector of terms).
template <class VN, class VW, size_t P = 1>
struct GroupSums {
  static constexpr size_t H = VN::width / VW::width;
  Reg<VW> mx[P * H], m[P * H], cnt[P * H], rest[P * H];
};

template <class VN, class VW, class T, class C, template <class> class Acc, size_t P = 1, bool Count = true>
inline void group_sums(const T* buf, size_t n, GroupSums<VN, VW, P>& out) {
  constexpr size_t W = VN::width, WW = VW::width, H = W / WW;
  Reg<VN> vmax[P];
  for (size_t p = 0; p < P; ++p) vmax[p] = VN::set1(-kInf);
  for (size_t j = 0; j < n; ++j)
    for (size_t p = 0; p < P; ++p) vmax[p] = VN::max(VN::load(buf + (p * n + j) * W), vmax[p]);
  alignas(64) T mx[P * W];
  for (size_t p = 0; p < P; ++p) VN::store(mx + p * W, vmax[p]);
  constexpr bool kExact = std::is_same<T, double>::value;
  Acc<VW> sums[P * H];
  for (size_t q = 0; q < P * H; ++q) {
    out.mx[q] = VW::load(mx + q * WW);
    out.m[q] = VW::select(VW::notfinite(out.mx[q]), VW::set1(0.0), out.mx[q]);
    out.cnt[q] = VW::set1(0.0);
  }
  // Rows of 2 without Count (lse_groups_f32): S - 1 is the one other term,
  // exp(d) with d = (x0 - m) + (x1 - m), exact (one of the two is 0; NaN and
  // -inf carry through, to the sum and to a raised term): half the terms,
  // and cnt = 1 keeps (cnt - 1) + rest = S - 1.
  constexpr bool kFirstTier = std::is_same<C, ExpCoeffsMid>::value || std::is_same<C, LseTableTerms>::value;
  if constexpr (!Count && kFirstTier && !kExact) {
    if (n == 2) {
      for (size_t q = 0; q < P * H; ++q) {
        const T* at = buf + (q / H) * 2 * W + (q % H) * WW;
        const Reg<VW> d = VW::add(VW::sub(VW::load(at), out.m[q]), VW::sub(VW::load(at + W), out.m[q]));
        out.rest[q] = first_tier_term<C, VW>(d);
        out.cnt[q] = VW::set1(1.0);
      }
      return;
    }
  }
  // Even columns to chain 0, odd ones to chain 1, the chain's index a
  // constant (a run-time j & 1 kept the accumulators in memory).
  auto column = [&](size_t j, auto chain) SSM_INLINE {
    for (size_t q = 0; q < P * H; ++q) {
      const Reg<VW> xw = VW::load(buf + ((q / H) * n + j) * W + (q % H) * WW);
      const Reg<VW> d = VW::sub(xw, out.m[q]);
      if constexpr (Count) {
        const auto other = VW::nonzero(d);  // also NaN: it reaches the sum
        out.cnt[q] = VW::add(out.cnt[q], VW::select(other, VW::set1(0.0), VW::set1(1.0)));
        Reg<VW> t;
        if constexpr (std::is_same<C, ExpCoeffsMid>::value && !kExact)
          t = mid_term<VW>(d);
        else
          t = rel_term<VW, kExact, C>(xw, out.m[q], d);
        sums[q].add(decltype(chain)::value, VW::select(other, t, VW::set1(0.0)));
      } else {
        if constexpr (kFirstTier && !kExact)
          sums[q].add(decltype(chain)::value, first_tier_term<C, VW>(d));
        else
          sums[q].add(decltype(chain)::value, rel_term<VW, kExact, C>(xw, out.m[q], d));
      }
    }
  };
  size_t j = 0;
  for (; j + 2 <= n; j += 2) {
    column(j, std::integral_constant<int, 0>());
    column(j + 1, std::integral_constant<int, 1>());
  }
  if (j < n) column(j, std::integral_constant<int, 0>());
  for (size_t q = 0; q < P * H; ++q) {
    if constexpr (kExact && std::is_same<Acc<VW>, Kahan2<VW>>::value) {
      // The same lane sums, without the lanes' round trip through r (one
      // scalar subtract and add each, then a reload).
      out.rest[q] = sums[q].total();
    } else {
      double r[WW];
      sums[q].totals(r);
      out.rest[q] = VW::load(r);
    }
  }
}

// float64 log_softmax of P consecutive groups of W rows (the batch's rows
// from x; the last may be partial, rows_left >= (P - 1) W + 1): the
// degree-11 terms, compensated sums, log1p and the write in the groups'
// registers (the wide lanes are the data's), no lane arrays. P = 2 runs two
// groups' chains side by side (the sums, then the two log1p's divisions and
// series), which one group's latency left idle at small n.
template <class V, size_t P>
void log_softmax_groups_f64(const double* x, double* y, size_t n, size_t rows_left, double* buf, double* obuf,
                            bool stream, unsigned char* flag) {
  constexpr size_t W = V::width;
  size_t g[P];
  for (size_t p = 0; p < P; ++p) {
    g[p] = rows_left - p * W < W ? rows_left - p * W : W;
    to_columns_short<V>(x + p * W * n, n, g[p], buf + p * n * W, 0.0);
  }
  GroupSums<V, V, P> s;
  group_sums<V, V, double, ExpCoeffs<double>, Kahan2, P>(buf, n, s);
  Reg<V> log_s[P];
  typename V::mask bad[P];
  for (size_t p = 0; p < P; ++p) {
    bad[p] = V::mask_or(V::notfinite(s.mx[p]), V::notfinite(s.rest[p]));
    // log S = log1p(S - 1), S - 1 = (k - 1) + rest with k - 1 exact.
    log_s[p] = log1p_small<V>(V::select(bad[p], V::set1(0.0), V::add(V::sub(s.cnt[p], V::set1(1.0)), s.rest[p])));
  }
  for (size_t j = 0; j < n; ++j)
    for (size_t p = 0; p < P; ++p) {
      double* at = buf + (p * n + j) * W;
      V::store(at, V::sub(V::sub(V::load(at), s.m[p]), log_s[p]));
    }
  for (size_t p = 0; p < P; ++p) {
    double b[W];
    V::to_array(V::select(bad[p], V::set1(1.0), V::set1(0.0)), b);
    bool ok[W];
    for (size_t l = 0; l < W; ++l) ok[l] = l < g[p] && b[l] == 0.0;
    from_columns<V>(buf + p * n * W, n, g[p], ok, obuf, y + p * W * n, stream);
    for (size_t l = 0; l < g[p]; ++l) flag[p * W + l] = !ok[l];
  }
}

// float32 log_softmax of P consecutive groups of W rows (the batch's rows
// from x; the last may be partial, rows_left >= (P - 1) W + 1): the
// arithmetic of the one-group kernel it replaced (log_softmax_group) lane
// for lane (the degree-6 terms, plain float64 sums, the max's own terms
// counted apart, log1p_small, the float32 write (x - float(max)) -
// float(log S)), so the same bits, kept in the groups' registers from the
// sums to the write (group_sums, as float64 log_softmax_groups_f64) instead
// of lane arrays, an out-of-line sum (wide_sums) and per-lane scalar steps,
// and with the P groups' chains (sums, log1p's division and series) side by
// side; the rows' last n % W columns in as one transposed block
// (to_columns_blocks). Out, the same block transposed in registers and
// stored whole per row (spilling into the next row in obuf, overwritten
// after) took more instructions than the element copy, callgrind per
// element at n = 2 42.0 against 36.7 (its 8 x 8 transpose of mostly zero
// columns for two of them), so the copy stays. Zen 3 (AVX2), 4
// Mi-element batches, 1 thread, thread CPU time, medians of 5 interleaved
// runs at load 12-16, one-group kernel / P = 2 (with to_columns_short) ns
// per element: n = 2 7.70 / 5.67, n = 3 5.73 / 4.48, n = 5 4.35 / 3.39,
// n = 8 2.69 / 2.15, n = 10 2.71 / 2.45 (P = 1: 7.20, 5.16, 4.05, 2.50,
// 2.39); callgrind instructions per element n = 2 47.7 -> 36.7, n = 8
// 18.7 -> 16.1 (softmax 23.4, 10.6).
template <class VN, class VW, size_t P>
void log_softmax_groups_f32(const float* x, float* y, size_t n, size_t rows_left, float* buf, float* obuf,
                            bool stream, unsigned char* flag) {
  constexpr size_t W = VN::width, WW = VW::width, H = W / WW;
  size_t g[P];
  for (size_t p = 0; p < P; ++p) {
    g[p] = rows_left - p * W < W ? rows_left - p * W : W;
    to_columns_blocks<VN>(x + p * W * n, n, g[p], buf + p * n * W, 0.0f);
  }
  GroupSums<VN, VW, P> s;
  group_sums<VN, VW, float, ExpCoeffsMid, Plain2, P>(buf, n, s);
  // The write's float32 max and log S per lane (a special lane's are
  // unused: it is flagged and left unwritten).
  alignas(64) float hi[P * W], lo[P * W];
  typename VW::mask bad[P * H];
  bool any_bad[P];
  for (size_t p = 0; p < P; ++p) any_bad[p] = false;
  for (size_t q = 0; q < P * H; ++q) {
    bad[q] = VW::mask_or(VW::notfinite(s.mx[q]), VW::notfinite(s.rest[q]));
    any_bad[q / H] = any_bad[q / H] || VW::any(bad[q]);
    // log S = log1p(S - 1), S - 1 = (k - 1) + rest with k - 1 exact.
    const Reg<VW> z = VW::select(bad[q], VW::set1(0.0), VW::add(VW::sub(s.cnt[q], VW::set1(1.0)), s.rest[q]));
    VW::store(lo + q * WW, log1p_small<VW>(z));
    VW::store(hi + q * WW, s.m[q]);
  }
  // y = (x - max) - log S, as the row kernels' write_shift: x - max is exact
  // near the max (Sterbenz) and the result is never positive.
  Reg<VN> vhi[P], vlo[P];
  for (size_t p = 0; p < P; ++p) vhi[p] = VN::load(hi + p * W), vlo[p] = VN::load(lo + p * W);
  for (size_t j = 0; j < n; ++j)
    for (size_t p = 0; p < P; ++p) {
      float* at = buf + (p * n + j) * W;
      VN::store(at, VN::sub(VN::sub(VN::load(at), vhi[p]), vlo[p]));
    }
  for (size_t p = 0; p < P; ++p) {
    if (g[p] == W && !any_bad[p]) {
      from_columns_all<VN>(buf + p * n * W, n, obuf, y + p * W * n, stream);
      std::memset(flag + p * W, 0, W);
      continue;
    }
    alignas(64) double b[W];
    for (size_t h = 0; h < H; ++h)
      VW::store(b + h * WW, VW::select(bad[p * H + h], VW::set1(1.0), VW::set1(0.0)));
    bool ok[W];
    for (size_t l = 0; l < W; ++l) ok[l] = l < g[p] && b[l] == 0.0;
    from_columns<VN>(buf + p * n * W, n, g[p], ok, obuf, y + p * W * n, stream);
    for (size_t l = 0; l < g[p]; ++l) flag[p * W + l] = !ok[l];
  }
}

template <class VN, class VW, size_t P, class T>
void log_softmax_groups(const T* x, T* y, size_t n, size_t rows_left, T* buf, T* obuf, bool stream,
                        unsigned char* flag) {
  if constexpr (std::is_same<T, float>::value)
    log_softmax_groups_f32<VN, VW, P>(x, y, n, rows_left, buf, obuf, stream, flag);
  else
    log_softmax_groups_f64<VN, P>(x, y, n, rows_left, buf, obuf, stream, flag);
}

// group_sums<..., ExpCoeffsMid, Plain2, P, Count> of float32 columns held in
// registers (load_group_regs), lane for lane (the max's linear chain, each
// column's two float64 halves widened from the register, the two chains in
// column order): the same bits (rows of 2 take the one other term, as
// group_sums' rows of 2 without Count; with Count the same bits too). Returns
// false, before the terms where it can, if a lane's max or sum is not
// finite (a special row: the caller takes the buffer kernel).
template <class VN, class VW, size_t P, size_t C, bool Count, class Terms = ExpCoeffsMid>
SSM_INLINE inline bool group_sums_regs(const Reg<VN> (&c)[P][C], size_t n, GroupSums<VN, VW, P>& out) {
  static_assert(VN::width == 2 * VW::width, "a float32 vector widens to two float64 halves");
  bool ok = true;
  Reg<VN> vmax[P];
  for (size_t p = 0; p < P; ++p) {
    vmax[p] = VN::set1(-kInf);
    for (size_t j = 0; j < C; ++j)
      if (j < n) vmax[p] = VN::max(c[p][j], vmax[p]);
    VN::widen(vmax[p], out.mx[2 * p], out.mx[2 * p + 1]);
    for (size_t q = 2 * p; q < 2 * p + 2; ++q) {
      ok = ok && !VW::any(VW::notfinite(out.mx[q]));
      out.m[q] = out.mx[q];
      out.cnt[q] = VW::set1(0.0);
    }
  }
  if (!ok) return false;
  // Rows of 2 (both Count and not): S - 1 is the one other term, exp(d)
  // with d = (x0 - m) + (x1 - m), exact (one of the two is 0; NaN and -inf
  // carry through, to the term), cnt = 1: the same bits as the two columns'
  // counted sums (other term + 0 in the chains; a tie: cnt 2, rest 0, and
  // here 1 + exp(0) - 1 = 1) and as group_sums' rows of 2, half the terms
  // and none of the count's compare, blends and adds. Zen 3, avx2, N(0, 1)
  // rows, callgrind instructions per element of log_softmax (with
  // log_softmax_group_regs' shorter log1p_small): n = 2 31.5 -> 20.6
  // (n = 5 17.0 -> 13.5, n = 8 15.1 -> 12.3: the log1p steps and the
  // code around them).
  if (n == 2) {
    for (size_t p = 0; p < P; ++p) {
      Reg<VW> x0[2], x1[2];
      VN::widen(c[p][0], x0[0], x0[1]);
      VN::widen(c[p][1], x1[0], x1[1]);
      for (size_t h = 0; h < 2; ++h) {
        const size_t q = 2 * p + h;
        const Reg<VW> d = VW::add(VW::sub(x0[h], out.m[q]), VW::sub(x1[h], out.m[q]));
        out.rest[q] = first_tier_term<Terms, VW>(d);
        out.cnt[q] = VW::set1(1.0);
        ok = ok && !VW::any(VW::notfinite(out.rest[q]));
      }
    }
    return ok;
  }
  Plain2<VW> sums[2 * P];
  // With Count, the max's own entries are found in the float32 lanes
  // (x < max, or NaN: the others, as d != 0 in the float64 halves: x and
  // max are float32 values, so d = x - max is 0 exactly where they are
  // equal), counted there (others, subtracted from n at the end) and
  // replaced by -inf before the widening: a compare, a blend and an and
  // and an add per vector, where each float64 half took a compare, two
  // blends and an add. Such an entry's term is mid_term's raised one,
  // exp(-708 + r) < 2^-1020, in place of 0: as a -inf entry's, it moves
  // no sum above 2^-967 (below half an ulp), and a row whose others sum
  // below that has log S below float32's least subnormal, which rounds to
  // 0 either way: the same bits. Zen 5 run as avx2, N(0, 1) rows,
  // callgrind instructions per element of log_softmax, before / after: n =
  // 3 17.65 / 17.08, 5 15.27 / 14.41, 8 13.34 / 12.38, 12 12.59 / 11.83, 16
  // 12.03 / 11.31; bench/ab_builds.py, 4 Mi-element batches, two runs of
  // 11 and 13 rounds, time / before (fastest processes): n = 3 0.85, 0.88;
  // 8 0.93, 0.96; 12 0.94, 0.97; 5 0.96, 1.01; 16 1.01, 0.98.
  Reg<VN> others[P];
  if constexpr (Count)
    for (size_t p = 0; p < P; ++p) others[p] = VN::set1(0.0);
  for (size_t j = 0; j < C; ++j)
    for (size_t p = 0; p < P; ++p)
      if (j < n) {
        Reg<VW> xw[2];
        if constexpr (Count) {
          const auto other = VN::not_le(vmax[p], c[p][j]);  // x < max, or NaN: it reaches the sum
          others[p] = VN::add_where(other, others[p], VN::set1(1.0));
          VN::widen(VN::select(other, c[p][j], VN::set1(-kInf)), xw[0], xw[1]);
        } else {
          VN::widen(c[p][j], xw[0], xw[1]);
        }
        for (size_t h = 0; h < 2; ++h) {
          const size_t q = 2 * p + h;
          const Reg<VW> d = VW::sub(xw[h], out.m[q]);
          if constexpr (Count)
            sums[q].add(static_cast<int>(j & 1), mid_term<VW>(d));
          else
            sums[q].add(static_cast<int>(j & 1), first_tier_term<Terms, VW>(d));
        }
      }
  if constexpr (Count)
    for (size_t p = 0; p < P; ++p)
      VN::widen(VN::sub(VN::set1(static_cast<float>(n < C ? n : C)), others[p]), out.cnt[2 * p], out.cnt[2 * p + 1]);
  for (size_t q = 0; q < 2 * P; ++q) {
    out.rest[q] = VW::add(sums[q].s[0], sums[q].s[1]);
    ok = ok && !VW::any(VW::notfinite(out.rest[q]));
  }
  return ok;
}

// log_softmax_groups_f32's arithmetic, lane for lane (the same bits: the
// max as its linear chain, each column's two float64 halves widened from the
// register, the degree-6 terms and Plain2's two chains in the same order,
// log1p_small, the float32 write), on P full groups of float32 rows of
// n <= NB W elements with their columns in registers, as
// softmax_group_regs: block b of a group is W vector loads at stride n and
// a register transpose in, the same transposed back and W vector stores
// straight into y out, reading and writing past a row's end into the rows
// after it under the same conditions (the caller's). No column buffer, no
// element copies, no staging in obuf. Nothing is stored unless every row of
// the P groups is ordinary (returns false: the caller runs
// log_softmax_groups_f32 on them). Against log_softmax_groups_f32's pairs
// (Zen 3, avx2, N(0, 1) rows, 1 thread), callgrind instructions per
// element: n = 2 48.4 -> 30.9, n = 5 28.1 -> 17.5, n = 8 15.2 -> 13.9
// (softmax: 46.2, 9.1, 8.3); no result of 3300 batches of rows of 1-33
// (special rows, scales 0.01-90, offsets to 3000, in place, 1 and 2
// threads) changed a bit.
//
// Rows whose length is not a multiple of W (FromX, with lane_row) are
// written from x's own layout instead: a group's W rows are n whole vectors of x,
// and lane i of vector k belongs to row (k W + i) / n (lane_row[k W + i],
// made once per batch), whose max and log S pick puts in that lane; y =
// (x + (-max)) - log S there, the same float32 operations on the same
// values (x - max is x + (-max) exactly, -0 included: the negation is the
// sign's), so the same bits, with no transpose back and no spilled stores
// (a vector of x: an index load, two picks, the add with x as its memory
// operand, the subtract and the store, 6 operations, where the columns
// took 2 subtracts per column, 3 shuffles and a store per row of the
// transpose; n = 3: 18 against 38 per group). Zen 3, avx2, N(0, 1), 1
// Mi-element batches, callgrind instructions per element in the
// extension, blocks -> from x: n = 2 21.40 -> 18.97, 3 20.83 -> 18.79,
// 5 15.79 -> 15.06, 10 12.74 -> 11.79; thread CPU time / the blocks',
// 4 Mi-element batches with out=, medians of 9 interleaved processes,
// load 9-11: n = 2 0.83-0.87, 3 0.88-0.90, 5 0.90, 10 0.94-0.95, 13
// 0.95-0.96 (softmax control 0.99-1.00).
template <class VN, class VW, size_t NB, size_t P, bool FromX, size_t N = 0>
SSM_INLINE inline bool log_softmax_group_regs(const float* x, float* y, size_t n, const int32_t* lane_row) {
  constexpr size_t W = VN::width, C = NB * W;
  if constexpr (N != 0) n = N;
  Reg<VN> c[P][C];
  load_group_regs<VN, NB, P, N>(x, n, c);
  GroupSums<VN, VW, P> s;
  if (!group_sums_regs<VN, VW, P, C, true>(c, n, s)) return false;
  for (size_t p = 0; p < P; ++p) {
    // log S = log1p(S - 1), S - 1 = (k - 1) + rest with k - 1 exact; y =
    // (x - max) - log S in float32, as log_softmax_groups_f32.
    Reg<VW> log_s[2];
    for (size_t h = 0; h < 2; ++h) {
      const size_t q = 2 * p + h;
      // S <= n (1 + 2^-28) < NB W + 1: log1p_small drops the steps that
      // cannot divide (the same bits).
      // Rows of up to W: log1p_small_finite (the same bits); rows of two
      // blocks keep log1p_small (AVX2 n = 16, its reduction from the
      // exponent field: callgrind per element 10.62 -> 10.43, but 1.08x
      // the time, fastest of 11 interleaved processes, in two runs).
      const Reg<VW> z = VW::add(VW::sub(s.cnt[q], VW::set1(1.0)), s.rest[q]);
      if constexpr (NB == 1)
        log_s[h] = log1p_small_finite<VW, 11, NB * W + 1>(z);
      else
        log_s[h] = log1p_small<VW, 11, NB * W + 1>(z);
    }
    const Reg<VN> vhi = VN::narrow(s.m[2 * p], s.m[2 * p + 1]), vlo = VN::narrow(log_s[0], log_s[1]);
    if constexpr (FromX) {
      const Reg<VN> neg_m = VN::sub(VN::set1(-0.0), vhi);
      const float* in = x + p * W * n;
      float* out = y + p * W * n;
      for (size_t k = 0; k < C; ++k)
        if (k < n) {
          const typename VN::index row = VN::load_index(lane_row + k * W);
          VN::store(out + k * W, VN::sub(VN::add(VN::pick(neg_m, row), VN::load(in + k * W)), VN::pick(vlo, row)));
        }
    } else {
      for (size_t j = 0; j < C; ++j)
        if (j < n) c[p][j] = VN::sub(VN::sub(c[p][j], vhi), vlo);
      // Each block back to rows, then row by row (the spills in row order).
      for (size_t b = 0; b < NB; ++b) VN::transpose(*reinterpret_cast<Reg<VN>(*)[W]>(&c[p][b * W]));
      float* out = y + p * W * n;
      for (size_t l = 0; l < W; ++l, out += n)
        for (size_t b = 0; b < NB; ++b) VN::store(out + b * W, c[p][b * W + l]);
    }
  }
  return true;
}

// N: rows of that fixed length (n = N), their loops unrolled, their columns
// by GroupColumns where the lane type has them (the same bits).
template <class VN, class VW, size_t NB, size_t P, size_t N = 0>
void log_softmax_rows_regs(const float* x, float* y, size_t rows, size_t n, float* buf, float* obuf, bool stream,
                           unsigned char* flag) {
  constexpr size_t W = VN::width;
  if constexpr (N != 0) n = N;
  static_assert(P * NB * W <= kMaxN, "P groups' columns fit in buf");
  // P groups at a time while their last block stays inside the batch (see
  // softmax_group_regs); P groups with a special row, and the batch's last
  // rows, through the buffer kernel (P groups, then pairs and one).
  // Each lane's row within its group of W rows, for the write from x's
  // layout (log_softmax_group_regs' FromX), where n is not a multiple of
  // W. One instantiation per write: with a run-time choice inside the
  // kernel, rows of 8 and 16, which keep the blocks, measured thread CPU
  // time / main's 1.05 and 1.11 (load 10); as two, 0.99-1.01 and
  // 1.01-1.05 in three runs (softmax control 0.99-1.05, load 7-11), their
  // instructions unchanged (callgrind per element n = 8 12.91, 16 11.02).
  alignas(64) int32_t lane_row[NB * W * W];
  for (size_t i = 0; i < n * W; ++i) lane_row[i] = static_cast<int32_t>(i / n);
  auto groups = [&](auto from_x) SSM_INLINE {
    size_t r = 0;
    for (; rows - r >= P * W && (rows - r - (P * W - 1)) * n >= NB * W; r += P * W)
      if (log_softmax_group_regs<VN, VW, NB, P, decltype(from_x)::value, N>(x + r * n, y + r * n, n, lane_row))
        std::memset(flag + r, 0, P * W);
      else
        log_softmax_groups_f32<VN, VW, P>(x + r * n, y + r * n, n, rows - r, buf, obuf, stream, flag + r);
    return r;
  };
  size_t r = n % W != 0 ? groups(std::true_type()) : groups(std::false_type());
  for (; r + W < rows; r += 2 * W)
    log_softmax_groups_f32<VN, VW, 2>(x + r * n, y + r * n, n, rows - r, buf, obuf, stream, flag + r);
  if (r < rows) log_softmax_groups_f32<VN, VW, 1>(x + r * n, y + r * n, n, rows - r, buf, obuf, stream, flag + r);
}

// Lanes whose float32 rounding of lse is not certified within the 1-ulp
// contract by an error bound err (float64 lanes; size: |lse|, or less for a
// margin): (2^24 + 1) err <= size puts err below 2^-24 of both the computed
// and the exact result, under either's float32 spacing, so the two round
// to the same float or to neighbours.
template <class VW>
inline typename VW::mask f32_spacing_fails(Reg<VW> err, Reg<VW> size) {
  return VW::not_le(VW::mul(err, VW::set1(0x1p24 + 1.0)), size);
}

// The vector tier near lse = 0 (exp_dd.h) for half h of an unweighted group
// in buf: lse = m + log S with S summed in double-double lanes from the
// columns, y0 = log_s (the float64 sums', within 2^-49 log S). Returns the
// lanes among `near` whose bound does not certify the result (float32:
// f32_spacing_fails, as lse_plain_group's Certify; float64: 2^-47 relative
// or the scalar sum's own bound, as lse_vector_tier in softmax_rows.h):
// they stay flagged for the per-row path, whose scalar double-double sum
// decides.
template <class VN, class VW, class T>
typename VW::mask lse_dd_half(const T* buf, size_t n, size_t h, typename VW::mask near, typename VW::mask reached,
                              Reg<VW> m, Reg<VW> log_s, Reg<VW>& lse) {
  constexpr size_t W = VN::width, WW = VW::width;
  const Reg<VW> zero = VW::set1(0.0);
  constexpr bool Fine = std::is_same<T, double>::value;  // exp_dd.h
  DdSum<VW> acc = dd_sum_zero<VW>();
  Reg<VW> unused;
  for (size_t j = 0; j < n; ++j) {
    const Reg<VW> xw = VW::load(buf + j * W + h * WW);
    dd_sum_add<VW, Fine>(acc, dd_term<VW, false, Fine>(xw, xw, m, unused, unused));
  }
  // S >= 1 in an ordinary lane (the max's own term), whose error bound is
  // then within a constant relative (exp_dd.h: the terms, the carry of n
  // adds, its fold, n entries at most 2^-865 each).
  const double adds = static_cast<double>(n + 2);
  const double rel = dd_sum_err<Fine>(adds) * 1.02 + 0x1p-105 + adds * 0x1p-865;
  const DdReg<VW> total = dd_sum_value<VW>(acc);
  Reg<VW> err;
  lse_from_dd<VW, Fine>(m, total.hi, total.lo, log_s, VW::set1(rel), lse, err);
  // Lanes not near pass; near lanes beyond the reach fail.
  err = VW::select(reached, err, VW::select(near, VW::set1(kInf), zero));
  const Reg<VW> size = VW::max(lse, VW::sub(zero, lse));
  if constexpr (std::is_same<T, float>::value)
    return f32_spacing_fails<VW>(err, VW::mul(size, VW::set1(1.0 - 0x1p-15)));
  else
    return VW::not_le(err, VW::max(VW::mul(size, VW::set1(0x1p-47)), VW::set1((n + 4.0) * kLseScalarErr)));
}

// Unweighted logsumexp of the group already in buf (lanes >= g hold 1), kept
// in the wide lanes from the sums to the stores: per half of the group the
// max m (NaN ignored), S - 1 = (count of the max - 1) + the other terms
// exp(x - m) (C, Acc as wide_sums), lse = m + log1p(S - 1), stored in one
// vector per half when the whole group is ordinary; only a group with a
// special row (NaN, +-inf, all -inf: flagged for the per-row path) stores
// lane by lane. With Certify (float32, degree-6 terms) each lane proves its
// float32 rounding within the 1-ulp contract, else nothing is stored and
// false is returned (the caller sums again with the degree-11 terms): the
// terms' relative error C::err moves log1p(S - 1) by at most
// e = C::err (S - 1) / S, the float64 sums, log1p_small and m + log S by
// below 2^-40 (|lse| + 8); when e < 2^-24 (|lse| - e), below the float32
// spacing around both the computed and the exact result, the two round to
// the same float or to neighbours. Rows with |lse| above about
// 0.035 (S - 1) / S pass, nearly all ordinary ones.
// lse_finish is the part after the sums: group p of sums (P groups summed
// together, group_sums), whose columns are at buf. Forced inline: left to
// the compiler, lse_plain_group on AVX-512 float64 rows of 2-3 took twice
// as long (4 Mi-element batches, 1 thread, interleaved runs).
template <class VN, class VW, class T, bool Certify, class C, size_t P, int MaxT = (1 << 15)>
SSM_INLINE bool lse_finish(const T* buf, size_t n, size_t g, const GroupSums<VN, VW, P>& sums, size_t p, T* out,
                unsigned char* flag) {
  constexpr size_t W = VN::width, WW = VW::width, H = W / WW;
  const Reg<VW>* mx = sums.mx + p * H;
  const Reg<VW>* m = sums.m + p * H;
  const Reg<VW>* cnt = sums.cnt + p * H;
  const Reg<VW>* rest = sums.rest + p * H;
  Reg<VW> lse[H];
  typename VW::mask bad[H];
  bool any_bad = false;
  for (size_t h = 0; h < H; ++h) {
    bad[h] = VW::mask_or(VW::notfinite(mx[h]), VW::notfinite(rest[h]));
    any_bad = any_bad || VW::any(bad[h]);
    const Reg<VW> z = VW::select(bad[h], VW::set1(0.0), VW::add(VW::sub(cnt[h], VW::set1(1.0)), rest[h]));
    const Reg<VW> log_s = log1p_small<VW, 11, MaxT>(z);
    lse[h] = VW::add(m[h], log_s);
    if constexpr (!Certify) {
      // m + log S cancels near lse = 0: with log S within 2^-49 log S, the
      // contract needs |lse| >= 2^-23 log S (float32: 2^-26 |lse|, within 1
      // ulp with the rounding; float64: its 2^-26 relative bound near 0);
      // lanes below that are summed again in double-double lanes, and those
      // that bound cannot certify go to the per-row path's scalar sum
      // (lse_accurate in softmax_rows.h, whose lse_cancel_ok agrees).
      constexpr double kNearZero = 0x1p23;
      const Reg<VW> size = VW::max(lse[h], VW::sub(VW::set1(0.0), lse[h]));
      const auto near = VW::gt(log_s, VW::mul(size, VW::set1(kNearZero)));
      if (VW::any(near)) {
        // Near lanes whose |lse| may be within the vector tier's reach
        // (kernel_api.h); the others go straight to the per-row path.
        constexpr double kReach = std::is_same<T, float>::value ? kLseDdReach32 : kLseDdReach64;
        const Reg<VW> upper = VW::fmadd(log_s, VW::set1(0x1p-49), VW::mul(size, VW::set1(1.0 + 0x1p-52)));
        const auto reached = VW::gt(VW::select(near, upper, VW::set1(0.0)), VW::set1(kReach));
        if (VW::any(reached)) {
          Reg<VW> exact;
          bad[h] = VW::mask_or(bad[h], lse_dd_half<VN, VW, T>(buf, n, h, near, reached, m[h], log_s, exact));
          lse[h] = VW::select(reached, exact, lse[h]);
        } else {
          bad[h] = VW::mask_or(bad[h], near);
        }
        any_bad = any_bad || VW::any(bad[h]);
      }
    }
    if constexpr (Certify) {
      const Reg<VW> e = VW::fmadd(VW::set1(C::err), div_lanes(z, VW::add(VW::set1(1.0), z)), VW::set1(0x1p-37));
      const Reg<VW> size = VW::max(lse[h], VW::sub(VW::set1(0.0), lse[h]));
      // |lse| (1 - 2^-15) >= (2^24 + 1) e covers both the 2^-40 (|lse| + 8)
      // term and the spacing condition; special lanes pass (flagged below).
      const Reg<VW> have = VW::select(bad[h], VW::set1(kInf), VW::mul(size, VW::set1(1.0 - 0x1p-15)));
      if (VW::any(f32_spacing_fails<VW>(e, have))) return false;
    }
  }
  if (!any_bad && g == W) {
    for (size_t h = 0; h < H; ++h) VW::store(out + h * WW, lse[h]);
    for (size_t l = 0; l < W; ++l) flag[l] = 0;
    return true;
  }
  for (size_t h = 0; h < H; ++h) {
    double v[WW], b[WW];
    VW::to_array(lse[h], v);
    VW::to_array(VW::select(bad[h], VW::set1(1.0), VW::set1(0.0)), b);
    for (size_t l = 0; l < WW && h * WW + l < g; ++l) {
      flag[h * WW + l] = b[l] != 0.0;
      if (b[l] == 0.0) out[h * WW + l] = static_cast<T>(v[l]);
    }
  }
  return true;
}

template <class VN, class VW, class T, bool Certify, class C, template <class> class Acc>
bool lse_plain_group(const T* buf, size_t n, size_t g, T* out, unsigned char* flag) {
  GroupSums<VN, VW> s;
  group_sums<VN, VW, T, C, Acc>(buf, n, s);
  return lse_finish<VN, VW, T, Certify, C, 1>(buf, n, g, s, 0, out, flag);
}

// Unweighted float64 logsumexp of P consecutive groups of W rows (the
// batch's rows from x; the last may be partial, rows_left >= (P - 1) W + 1):
// lse_plain_group's degree-11 terms, Kahan sums and finish, with the P
// groups' chains side by side (group_sums: each lane's arithmetic is the
// same whatever P), which one group's latency left idle at short rows.
// 4 Mi-element batches, 1 thread, ns per element, medians of 4 interleaved
// runs, one group / two: AVX2 n = 2 13.8 / 8.4, n = 3 9.5 / 6.2, n = 4 4.4
// / 4.1, n = 8 3.5 / 2.9, n = 15 3.1 / 2.6; AVX-512 n = 2 3.3 / 3.6, n = 3
// 2.4 / 2.8, n = 4 3.5 / 2.5, n = 8 1.8 / 1.6, n = 15 1.6 / 1.4 (pairs
// from n = 4 only, with the rows below one group at a time, left n = 2-3
// 1.2-1.4x slower still: not the pairing, the compiled one-group path).
// What n = 2-3 lost was the columns' element copy (to_columns_short) and
// the sums' lane totals through memory (Kahan2::total): with both, AVX-512
// n = 2 3.46 -> 3.06, n = 3 2.69 -> 2.33, n = 5 2.21 -> 1.76.
template <class V, size_t P>
void lse_groups_f64(const double* x, double* out, double* sign, size_t n, size_t rows_left, double* buf,
                    unsigned char* flag) {
  constexpr size_t W = V::width;
  size_t g[P];
  for (size_t p = 0; p < P; ++p) {
    g[p] = rows_left - p * W < W ? rows_left - p * W : W;
    to_columns_short<V>(x + p * W * n, n, g[p], buf + p * n * W, 1.0);  // lanes >= g stay ordinary
  }
  GroupSums<V, V, P> s;
  group_sums<V, V, double, ExpCoeffs<double>, Kahan2, P>(buf, n, s);
  for (size_t p = 0; p < P; ++p) {
    unsigned char* f = flag + p * W;
    // Rows of up to 3: S <= 3 < 4, so log1p's steps by 2^8 and 2^4 never divide.
    if (n <= 3)
      lse_finish<V, V, double, false, ExpCoeffs<double>, P, 4>(buf + p * n * W, n, g[p], s, p, out + p * W, f);
    else
      lse_finish<V, V, double, false, ExpCoeffs<double>, P>(buf + p * n * W, n, g[p], s, p, out + p * W, f);
    if (sign)
      for (size_t l = 0; l < g[p]; ++l)
        if (!f[l]) sign[p * W + l] = 1.0;
  }
}

// lse = m + log1p(S - 1) of float64 half q of group sums without Count
// (lse_groups_f32's), and the lanes of it not certified within the 1-ulp
// contract (lanes in `bad` pass: they are flagged).
template <class VW, int MaxT, class Terms = ExpCoeffsMid, class S>
SSM_INLINE inline typename VW::mask lse32_first_tier(const S& s, size_t q, typename VW::mask bad, Reg<VW>& lse) {
  // S < MaxT (n terms, each at most 1 + C::err; MaxT is n + 1 or more:
  // lse_groups); the series to degree 15: its 2^-46.2 absolute is within
  // the certificate's 2^-37. Lanes with log_table take log S from it
  // instead (S = cnt + rest, within 2^-42.5 + 2^-50 + 2^-53 log S absolute
  // for S < 2^15, also inside the 2^-37; no division, no halving steps).
  // Zen 5, 4 Mi-element batches, 1 thread, fastest of 50 calls of the
  // kernel alone (loaded machine), time / log1p_small_finite's: n = 3
  // 0.79, 5 0.82, 8 0.87, 12 0.89, 16 0.89.
  if constexpr (std::is_same<Terms, LseTableTerms>::value) {
    // The certificate below (z = S - 1) in one fma, a min, |lse| and a
    // compare: with min(z, 1) = min(S, 2) - 1 (S >= 1, exact; S rounded from 1 +
    // rest where cnt is 1, a change below 2^-52 err) it passes a lane
    // where |lse| >= K (err (min(S, 2) - 1) + 2^-37), K = (2^24 + 1) / (1 -
    // 2^-15), as the form below, whose products and rounding it folds into
    // the constants, each moved outward by 2^-40 relative (more than the
    // fma's rounding). Lanes in bad pass.
    constexpr double K = (0x1p24 + 1.0) / (1.0 - 0x1p-15);
    constexpr double A = Terms::err * K * (1.0 + 0x1p-40), B = (0x1p-37 - Terms::err) * K * (1.0 - 0x1p-40);
    static_assert(0x1p-37 < Terms::err, "B < 0: rounded toward 0 by 1 - 2^-40");
    const Reg<VW> sum = VW::select(bad, VW::set1(1.0), VW::add(s.cnt[q], s.rest[q]));
    lse = VW::add(s.m[q], VW::log_table(sum));
    const Reg<VW> bound = VW::fmadd(VW::set1(A), VW::min(sum, VW::set1(2.0)), VW::set1(B));
    return VW::not_le(bound, VW::select(bad, VW::set1(kInf), VW::abs(lse)));
  }
  const Reg<VW> z = VW::select(bad, VW::set1(0.0), VW::add(VW::sub(s.cnt[q], VW::set1(1.0)), s.rest[q]));
  lse = VW::add(s.m[q], log1p_small_finite<VW, 7, MaxT>(z));
  // As lse_plain_group's Certify (see there), with min(z, 1) >= z / (1 + z)
  // (z >= 0) in place of the division: at most 2x looser (z = 1), it
  // certifies all but rows with |lse| below ~0.035 (mid_term's error; the
  // table terms', LseTableTerms: ~0.001), and the division was one
  // of the two per half that bound rows of 2 on AVX-512 (throughput).
  const Reg<VW> e = VW::fmadd(VW::set1(Terms::err), VW::min(z, VW::set1(1.0)), VW::set1(0x1p-37));
  const Reg<VW> size = VW::max(lse, VW::sub(VW::set1(0.0), lse));
  const Reg<VW> have = VW::select(bad, VW::set1(kInf), VW::mul(size, VW::set1(1.0 - 0x1p-15)));
  return f32_spacing_fails<VW>(e, have);
}

// Unweighted float32 logsumexp of P consecutive groups of W rows (the
// batch's rows from x; the last may be partial, rows_left >= (P - 1) W + 1):
// lse_plain_group's certified first try (degree-6 terms, plain sums, the
// same certificate; the max's own terms summed with the others, group_sums
// without Count, so cnt - 1 + rest is S - 1) with the P groups' chains side
// by side, the sums and then the log1p's and certificate's divisions and
// series, which one group's latency left idle at small n. A group with a
// lane the certificate misses goes alone through the degree-11 sums
// (lse_plain_group). The terms are mid_term's (rows of 2: the one other
// term only), a full group's columns come by whole-block transposes
// (to_columns_whole), rows of up to 10 skip log1p_small's step by 2^4
// (MaxT = 11: S <= 10) and a full ordinary group's results leave as one
// narrowing store per wide half. Against the degree-6 rel_term, element
// copies for the columns and a store per row (AMD EPYC Zen 3, AVX2,
// N(0, 1) float32 rows, 1 thread), callgrind instructions per row, before
// / after: n = 2 64.3 / 50.9, n = 3 72.3 / 63.2, n = 8 95.7 / 90.3, n = 16
// 151.2 / 142.8 (2^18-element batches); thread CPU time after / before, 4
// Mi-element batches, medians of 5 interleaved processes at load 20: n = 2
// 0.785, n = 3 0.821, n = 5 0.807, n = 8 0.874, n = 16 0.917 (logsumexp /
// softmax time, before -> after: 1.39 -> 1.09, 1.18 -> 0.97, 0.97 -> 0.79,
// 1.28 -> 1.13, 1.24 -> 1.12). No result of 1.1 M rows of 2 to 23 changed
// (the float64 lse moves by a few 2^-53, below float32's rounding).
template <class VN, class VW, size_t P, int MaxT = kMaxN / 2 + 1, class C = ExpCoeffsMid>
void lse_groups_f32(const float* x, float* out, float* sign, size_t n, size_t rows_left, float* buf,
                    unsigned char* flag) {
  constexpr size_t W = VN::width, WW = VW::width, H = W / WW;
  size_t g[P];
  for (size_t p = 0; p < P; ++p) {
    g[p] = rows_left - p * W < W ? rows_left - p * W : W;
    to_columns_whole<VN>(x + p * W * n, n, g[p], buf + p * n * W, 1.0f);  // lanes >= g stay ordinary
  }
  GroupSums<VN, VW, P> s;
  group_sums<VN, VW, float, C, Plain2, P, false>(buf, n, s);
  Reg<VW> lse[P * H];
  typename VW::mask bad[P * H], fails[P * H];
  bool pass[P], any_bad[P];
  for (size_t p = 0; p < P; ++p) pass[p] = true, any_bad[p] = false;
  for (size_t q = 0; q < P * H; ++q) {
    bad[q] = VW::mask_or(VW::notfinite(s.mx[q]), VW::notfinite(s.rest[q]));
    fails[q] = lse32_first_tier<VW, MaxT, C>(s, q, bad[q], lse[q]);
    pass[q / H] = !VW::any(fails[q]) && pass[q / H];
    any_bad[q / H] = any_bad[q / H] || VW::any(bad[q]);
  }
  for (size_t p = 0; p < P; ++p) {
    float* o = out + p * W;
    unsigned char* f = flag + p * W;
    if (!pass[p]) {
      lse_plain_group<VN, VW, float, false, ExpCoeffs<double>, Kahan2>(buf + p * n * W, n, g[p], o, f);
      // The lanes this tier certified keep its result: each row's bits are
      // its own, whatever the other rows of its group (the two tiers may
      // round to neighbouring floats).
      alignas(64) double v[W], keep[W];
      for (size_t h = 0; h < H; ++h) {
        VW::store(v + h * WW, lse[p * H + h]);
        VW::store(keep + h * WW, VW::select(VW::mask_or(bad[p * H + h], fails[p * H + h]), VW::set1(0.0),
                                            VW::set1(1.0)));
      }
      for (size_t l = 0; l < g[p]; ++l)
        if (keep[l] != 0.0) {
          o[l] = static_cast<float>(v[l]);
          f[l] = 0;
        }
    } else if (!any_bad[p] && g[p] == W) {
      // The usual group: W results narrowed and stored in one vector per half.
      for (size_t h = 0; h < H; ++h) VW::store(o + h * WW, lse[p * H + h]);
      std::memset(f, 0, W);
    } else {
      alignas(64) double v[W], b[W];
      for (size_t h = 0; h < H; ++h) {
        VW::store(v + h * WW, lse[p * H + h]);
        if (any_bad[p]) VW::store(b + h * WW, VW::select(bad[p * H + h], VW::set1(1.0), VW::set1(0.0)));
      }
      for (size_t l = 0; l < g[p]; ++l) {
        f[l] = any_bad[p] && b[l] != 0.0;
        if (!f[l]) o[l] = static_cast<float>(v[l]);
      }
    }
    if (sign)
      for (size_t l = 0; l < g[p]; ++l)
        if (!f[l]) sign[p * W + l] = 1.0f;
  }
}

template <class VN, class VW, size_t P, class T>
void lse_groups(const T* x, T* out, T* sign, size_t n, size_t rows_left, T* buf, unsigned char* flag) {
  // float32: rows of up to 10 take log1p_small without its step by 2^4
  // (S <= 10 < 11); rows of up to kLseTableMaxN the table terms and log
  // where the lanes have them (LseTerms).
  if constexpr (std::is_same<T, float>::value) {
    if (n <= 10)
      lse_groups_f32<VN, VW, P, 11, LseTerms<VW>>(x, out, sign, n, rows_left, buf, flag);
    else if (n <= kLseTableMaxN)
      lse_groups_f32<VN, VW, P, kMaxN / 2 + 1, LseTerms<VW>>(x, out, sign, n, rows_left, buf, flag);
    else
      lse_groups_f32<VN, VW, P>(x, out, sign, n, rows_left, buf, flag);
  } else
    lse_groups_f64<VN, P>(x, out, sign, n, rows_left, buf, flag);
}

// lse_groups_f32 on P full groups of float32 rows of n <= NB W elements
// with their columns in registers (load_group_regs, group_sums_regs: the
// same arithmetic and certificate lane for lane, so the same bits), no
// column buffer; W results per group leave as one narrowing store per
// float64 half. Returns false, having stored nothing, if a row is special
// or a result is not certified (the caller runs lse_groups on the groups).
template <class VN, class VW, size_t NB, size_t P, int MaxT, size_t N = 0>
SSM_INLINE inline bool lse_group_regs(const float* x, float* out, size_t n) {
  constexpr size_t W = VN::width, WW = VW::width, C = NB * W;
  if constexpr (N != 0) n = N;
  Reg<VN> c[P][C];
  load_group_regs<VN, NB, P, N>(x, n, c);
  GroupSums<VN, VW, P> s;
  static_assert(!HasExpTable<VW>::value || C <= kLseTableMaxN, "the table terms' rows (LseTerms)");
  if (!group_sums_regs<VN, VW, P, C, false, LseTerms<VW>>(c, n, s)) return false;
  Reg<VW> lse[2 * P];
  bool pass = true;
  for (size_t q = 0; q < 2 * P; ++q)
    pass = !VW::any(lse32_first_tier<VW, MaxT, LseTerms<VW>>(s, q, VW::none(), lse[q])) && pass;
  if (!pass) return false;
  for (size_t q = 0; q < 2 * P; ++q) VW::store(out + q * WW, lse[q]);
  return true;
}

// N: as log_softmax_rows_regs'.
template <class VN, class VW, size_t NB, size_t P, int MaxT, size_t N = 0>
void lse_rows_regs(const float* x, float* out, float* sign, size_t rows, size_t n, float* buf, unsigned char* flag) {
  constexpr size_t W = VN::width;
  if constexpr (N != 0) n = N;
  static_assert(P * NB * W <= kMaxN, "P groups' columns fit in buf");
  // P groups at a time while their last block stays inside the batch (see
  // softmax_group_regs), their lines prefetched as logsumexp_rows' pairs;
  // P groups with a special or uncertified row, and the batch's last rows,
  // through lse_groups (P groups, then pairs and one).
  const size_t ahead = prefetch_distance(rows * n * sizeof(float)) / sizeof(float);
  size_t r = 0;
  for (; rows - r >= P * W && (rows - r - (P * W - 1)) * n >= NB * W; r += P * W) {
    if (ahead)
      for (size_t i = 0; i < P * W * n; i += 64 / sizeof(float)) SSM_PREFETCH(x + r * n + ahead + i);
    if (lse_group_regs<VN, VW, NB, P, MaxT, N>(x + r * n, out + r, n)) {
      std::memset(flag + r, 0, P * W);
      if (sign)
        for (size_t l = 0; l < P * W; ++l) sign[r + l] = 1.0f;
    } else {
      lse_groups<VN, VW, P>(x + r * n, out + r, sign ? sign + r : nullptr, n, rows - r, buf, flag + r);
    }
  }
  for (; r + W < rows; r += 2 * W)
    lse_groups<VN, VW, 2>(x + r * n, out + r, sign ? sign + r : nullptr, n, rows - r, buf, flag + r);
  if (r < rows) lse_groups<VN, VW, 1>(x + r * n, out + r, sign ? sign + r : nullptr, n, rows - r, buf, flag + r);
}

template <class VN, class VW, class T, bool Weighted>
void logsumexp_group(const T* x, const T* b, T* out, T* sign, size_t n, size_t g, T* buf, T* bbuf,
                     unsigned char* flag) {
  constexpr size_t W = VN::width;
  to_columns<VN>(x, n, g, buf, T(Weighted ? 0 : 1));  // unweighted: lanes >= g stay ordinary
  if constexpr (Weighted) to_columns<VN>(b, n, g, bbuf, T(1));
  if constexpr (!Weighted) {
    // float32: the degree-6 terms and plain sums first (about a fifth less
    // work per element); a group with a row they cannot certify is summed
    // again with the degree-11 terms, whose error is far below float32's ulp.
    bool done = false;
    if constexpr (std::is_same<T, float>::value)
      done = lse_plain_group<VN, VW, T, true, ExpCoeffsMid, Plain2>(buf, n, g, out, flag);
    if (!done) lse_plain_group<VN, VW, T, false, ExpCoeffs<double>, Kahan2>(buf, n, g, out, flag);
    if (sign)
      for (size_t l = 0; l < g; ++l)
        if (!flag[l]) sign[l] = T(1);
    return;
  }
  double mx[W], k[W], rest[W], mag[W];
  bool bad[W];
  const bool signed_weights = wide_sums<VN, VW, T, Weighted>(buf, bbuf, n, mx, k, rest, bad, mag);
  for (size_t l = 0; l < g; ++l) {
    const double s = k[l] + rest[l];
    bool ok = lane_finite(mx[l]) && lane_finite(s) && !bad[l];
    // A weighted sum that cancels to (near) zero: the per-row path decides
    // (SciPy's -inf with sign 0, or terms the flush to zero dropped).
    if (Weighted) ok = ok && std::fabs(s) >= 0x1p-900;
    flag[l] = !ok;
    if (!ok) continue;
    const double sg = s < 0 ? -1.0 : 1.0;
    // |S| below 1/2 (small weights, or weights that cancel) would lose its
    // digits in S - 1, 2^-53 absolute: log |S| (s within 2^-53 |s|).
    const double log_s = sg * s < 0.5 ? std::log(sg * s) : std::log1p((sg * k[l] - 1.0) + sg * rest[l]);
    const double lse = mx[l] + log_s;
    // Near lse = 0 (as lse_plain_group): the per-row path's double-double sum.
    // Weighted, the other terms' error, 2^-49 R (R = their magnitudes, at
    // most mag - |k|, mag within tol of its value), over |S| in log S, beyond
    // the 2^-49 |log S| that test covers (lse_cancel_excess in
    // softmax_rows.h: weights that cancel, or max weights summing to well
    // below S): float64 needs it within 0.9e-14 |lse|, float32 within 2^-27
    // |lse| (with the rest, below half a float32 ulp). With weights of both
    // signs, k's own sum (2^-53 of the max's weights) counts too.
    // Weights >= 0 need no test where k >= 1 (R / S = (S - k) / S <= 1 - 1 /
    // S <= log S) or where |lse| >= calm: R <= S (1 + tol), so the excess is
    // at most 1 + tol (rows of 8 with weights uniform in [0, 1) have k < 1
    // and, mostly, |lse| well above calm).
    constexpr double limit = std::is_same<T, float>::value ? 0x1p-27 : 0.9e-14;
    constexpr double calm = 0x1p-49 * (1.0 + 0x1p-40) / limit;  // tol < 2^-40 for n <= kMaxN
    bool cancel = false;
    if (signed_weights || (k[l] < 1.0 && std::fabs(lse) < calm)) {
      const double tol = static_cast<double>((signed_weights ? 3 : 1) * n + 8) * 0x1p-53;
      const bool mixed = mag[l] * (1.0 - tol) > sg * s;
      const double rest_size = mag[l] * (1.0 + tol) - (mixed ? kMixedMaxWeightsOff : 1.0) * std::fabs(k[l]);
      // 2^-49 (rest_size / |S| - |log S|) > limit |lse|, times |S| (no division per row).
      cancel = 0x1p-49 * (rest_size - std::fabs(log_s) * sg * s) > limit * std::fabs(lse) * sg * s;
    }
    if (std::fabs(log_s) > 0x1p23 * std::fabs(lse) || cancel) {
      flag[l] = 1;
      continue;
    }
    out[l] = static_cast<T>(lse);
    if (sign) sign[l] = static_cast<T>(sg);
  }
}

// float32 roundings in float64 lanes, for the direct rows' certificates
// (rows_logsumexp_direct.h, rows_log_softmax32_direct.h). narrow32: each
// lane rounded to float32 (the narrowing store's round to nearest) and
// widened back, exactly. ulp32_above: for f a float32 value > 0, the
// spacing above it, float(f + 0.75 2^-23 f) - f (0.75 to 1.5 of f's ulps
// above f, exact in float64, so it rounds to the next float).
template <class VW>
inline SSM_INLINE Reg<VW> narrow32(Reg<VW> v) {
  alignas(64) float f[VW::width];
  VW::store(f, v);
  return VW::load(static_cast<const float*>(f));
}

template <class VW>
inline SSM_INLINE Reg<VW> ulp32_above(Reg<VW> f) {
  return VW::sub(narrow32<VW>(VW::fmadd(f, VW::set1(0.75 * 0x1p-23), f)), f);
}

#include "rows_log_softmax_direct.h"
#include "rows_logsumexp_direct.h"
#include "rows_logsumexp64_direct.h"
#include "rows_log_softmax32_direct.h"

// Rows of at least this many bytes take softmax_rows_direct: at one vector
// per row (AVX-512 float32 n = 16) or two AVX2 ones its chain of two lane
// reductions per row left it 0.5-0.8x the group kernel's speed, from 128
// bytes on it was 1.1-3x (AVX-512 and AVX2, 4 Mi-element batches, 1 thread,
// interleaved repeats on a loaded machine: float32 n = 32 1.2-1.3x, n = 64
// 1.6-3x, n = 128 1.05-1.7x, n = 256 1.0-1.3x; float64 n = 16-64 1.1-1.6x,
// n = 128-256 0.93-1.14x of the per-row kernels it replaces there).
// Checked again with the one-factor terms (pow2_term) and the group's
// per-lane steps in the lanes (AVX2 float32, Zen 3 AMD EPYC, standalone
// harness, thread CPU time, 4 Mi-element batches, 5 interleaved rounds,
// direct / group speed): n = 32 1.02x, n = 64 1.64x, n = 100 1.59x.
constexpr size_t kDirectMinBytes = 128;

// Lane types that split 2W floats into their even and odd entries.
template <class V, class = void>
struct HasDeinterleave : std::false_type {};
template <class V>
struct HasDeinterleave<V, std::void_t<decltype(&V::deinterleave)>> : std::true_type {};

// The first and second entries of g <= W rows of two from x, one row per
// lane (lanes from g on hold 0: finite, their results unused).
// Rows of two the pair kernels leave to the per-row path: a NaN, a +inf,
// or both entries -inf (one -inf entry is an ordinary row: exp(-700) is
// nothing beside 1).
template <class VN>
inline typename VN::mask special_two(Reg<VN> a, Reg<VN> b) {
  return VN::mask_or(VN::notfinite(VN::max(a, b)), VN::mask_or(VN::not_le(a, a), VN::not_le(b, b)));
}
inline bool special_two(float a, float b) { return a != a || b != b || !lane_finite(a > b ? a : b); }

template <class VN>
inline void load_two(const float* x, size_t g, Reg<VN>& a, Reg<VN>& b) {
  constexpr size_t W = VN::width;
  if (g == W)
    VN::deinterleave(VN::load(x), VN::load(x + W), a, b);
  else if (2 * g <= W)
    VN::deinterleave(VN::load_tail(x, 2 * g, 0.0), VN::set1(0.0), a, b);
  else
    VN::deinterleave(VN::load(x), VN::load_tail(x + W, 2 * g - W, 0.0), a, b);
}

// The results of g <= W rows of two (lo, hi: interleaved, as loaded) into
// y from row r, flag[r + k] for each: 0, or 1 for the rows in `bad`, which
// keep their entries (y may be x) for the per-row path. stream: y is
// aligned for whole-vector non-temporal stores.
template <class VN>
inline void store_two(float* y, size_t r, size_t g, Reg<VN> lo, Reg<VN> hi, typename VN::mask bad, bool stream,
                      unsigned char* flag) {
  constexpr size_t W = VN::width;
  if (g == W && !VN::any(bad)) {
    if (stream) {
      VN::stream(y + 2 * r, lo);
      VN::stream(y + 2 * r + W, hi);
    } else {
      VN::store(y + 2 * r, lo);
      VN::store(y + 2 * r + W, hi);
    }
    std::memset(flag + r, 0, W);
    return;
  }
  // The batch's last rows, or a step with a row to leave: lane by lane.
  alignas(64) float out[2 * W], skip[W];
  VN::store(out, lo);
  VN::store(out + W, hi);
  VN::store(skip, VN::select(bad, VN::set1(1.0), VN::set1(0.0)));
  for (size_t k = 0; k < g; ++k) {
    flag[r + k] = skip[k] != 0.0f;
    if (!flag[r + k]) {
      y[2 * (r + k)] = out[2 * k];
      y[2 * (r + k) + 1] = out[2 * k + 1];
    }
  }
}

// Rows of two, W rows a step (load_two: the rows' first and second entries
// as two vectors; store_two puts the results back in place): in float64
// halves, d = smaller - larger <= 0 (the difference of two floats, within
// 2^-53 of itself) and f(d, top, other), the larger entry's result and the
// other's, each rounded once to float32. Rows special_two finds are left
// flagged for the per-row path.
template <class VN, class VW, class F>
SSM_INLINE void map_rows_two(const float* x, float* y, size_t rows, bool stream, unsigned char* flag, F&& f) {
  constexpr size_t W = VN::width, H = W / VW::width;
  static_assert(H == 2, "two float64 halves");
  // Non-temporal stores need whole aligned vectors: y + 2r is one where y is.
  stream = stream && reinterpret_cast<uintptr_t>(y) % (W * sizeof(float)) == 0;
  for (size_t r = 0; r < rows; r += W) {
    const size_t g = rows - r < W ? rows - r : W;
    Reg<VN> a, b;
    load_two<VN>(x + 2 * r, g, a, b);
    Reg<VW> wa[H], wb[H], ya[H], yb[H];
    VN::widen(a, wa[0], wa[1]);
    VN::widen(b, wb[0], wb[1]);
    for (size_t h = 0; h < H; ++h) {
      Reg<VW> top, other;
      f(VW::sub(VW::min(wa[h], wb[h]), VW::max(wa[h], wb[h])), top, other);
      const auto a_big = VW::gt(wa[h], wb[h]);
      ya[h] = VW::select(a_big, top, other);
      yb[h] = VW::select(a_big, other, top);
    }
    Reg<VN> lo, hi;
    VN::interleave(VN::narrow(ya[0], ya[1]), VN::narrow(yb[0], yb[1]), lo, hi);
    store_two<VN>(y, r, g, lo, hi, special_two<VN>(a, b), stream, flag);
  }
}

// log1p(exp(d)) in float64 lanes for -700 <= d <= 0: exp by fast_term
// (AVX-512: the 16-entry table and degree 6; else the degree-11
// polynomial), log1p_small to degree 15 on 1 + exp(d) <= 2 (its series'
// tail below 2^-44.7 relative, 2^-46.2 absolute).
template <class VW>
SSM_INLINE Reg<VW> log1p_exp(Reg<VW> d) {
  Reg<VW> n;
  return log1p_small<VW, 7, 3>(fast_term<VW, false, ExpCoeffs<double>>(d, VW::set1(0.0), n));
}

// float32 softmax of rows of two (map_rows_two): t = exp(d) <= 1 (the
// degree-6 ExpCoeffsMid, 2.1e-9 relative; d clamped at -700), the larger
// entry's 1 / (1 + t) and the other's t / (1 + t), each within ~2^-28
// relative before its one rounding to float32: inside the 4-ulp contract
// with room. Ties give 1/2 each.
template <class VN, class VW>
void softmax_rows_two(const float* x, float* y, size_t rows, bool stream, unsigned char* flag) {
  map_rows_two<VN, VW>(x, y, rows, stream, flag, [](Reg<VW> d, Reg<VW>& top, Reg<VW>& other) SSM_INLINE {
    Reg<VW> em, en;
    exp_split<VW, ExpCoeffsMid>(VW::max(d, VW::set1(-700.0)), em, en);
    const Reg<VW> t = VW::scale2(em, en);
    top = div_lanes(VW::set1(1.0), VW::add(VW::set1(1.0), t));
    other = VW::mul(t, top);
  });
}

// A float32 batch group by group through softmax_group, out of line:
// inline in softmax_rows beside the set kernels, GCC's code for this loop
// took 1.25-1.5x the time (AVX-512 rows of 16, Zen 5).
template <class VN, class T>
SSM_NOINLINE void softmax_rows_group(const T* x, T* y, size_t rows, size_t n, T* buf, T* obuf, bool stream,
                                     unsigned char* flag) {
  constexpr size_t W = VN::width;
  for (size_t r = 0; r < rows; r += W)
    softmax_group<VN>(x + r * n, y + r * n, n, rows - r < W ? rows - r : W, buf, obuf, stream, flag + r);
}

template <class VN, class T>
void softmax_rows(const T* x, T* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  constexpr size_t W = VN::width;
  // Rows of two: the permute kernels where the set has them (AVX-512), else
  // softmax_rows_two (as fast there: Zen 5, 0.35 ns per element both).
  if constexpr (std::is_same<T, float>::value && HasDeinterleave<VN>::value && SoftmaxPermRange<VN>::max_n < 2) {
    if (n == 2) {
      softmax_rows_two<VN, typename VN::wide>(x, y, rows, stream, flag);
      if (stream) VN::fence();
      return;
    }
  }
  constexpr bool kBlocks = std::is_same<T, float>::value && SoftmaxBlocksRange<VN>::max_n > 0;
  if (n * sizeof(T) >= kDirectMinBytes && !(kBlocks && n <= SoftmaxBlocksRange<VN>::max_n))
    return softmax_rows_direct<VN>(x, y, rows, n, flag);
  alignas(64) T buf[kMaxN * W], obuf[kMaxN * W];
  if constexpr (kBlocks) {
    using R = SoftmaxBlocksRange<VN>;
    constexpr size_t kBlocksPerRow = (R::max_n + W - 1) / W;
    static_assert(Transposes<VN>::value && SoftmaxRegsRange<VN>::max_n >= (kBlocksPerRow - 1) * W &&
                      R::groups * kBlocksPerRow * W <= kMaxN,
                  "every row of the range in the same number of W x W blocks; buf holds their columns");
    if (n > SoftmaxRegsRange<VN>::max_n && n <= R::max_n) {
      softmax_rows_regs<VN, kBlocksPerRow, R::groups, true>(x, y, rows, n, buf, obuf, stream, flag);
      if (stream) VN::fence();
      return;
    }
  }
  using PermR = SoftmaxPermRange<VN>;
  if constexpr (std::is_same<T, float>::value && (PermR::max_n > 0 || PermR::vector_n > 0)) {
    if ((n >= 2 && n <= PermR::max_n) || (PermR::vector_n != 0 && n == PermR::vector_n)) {
      SoftmaxPermRange<VN>::rows(x, y, rows, n, buf, obuf, stream, flag);
      if (stream) VN::fence();
      return;
    }
  }
  if constexpr (std::is_same<T, float>::value && SoftmaxRegsRange<VN>::max_n > 0) {
    static_assert(Transposes<VN>::value && SoftmaxRegsRange<VN>::max_n <= 3 * W, "blocks of W x W in registers");
    using R = SoftmaxRegsRange<VN>;
    if (n <= R::max_n && n != R::group_n) {
      switch ((n + W - 1) / W) {
        case 1: softmax_rows_regs<VN, 1, R::groups1>(x, y, rows, n, buf, obuf, stream, flag); break;
        case 2: softmax_rows_regs<VN, 2, R::groups2>(x, y, rows, n, buf, obuf, stream, flag); break;
        default: softmax_rows_regs<VN, 3, R::groups3>(x, y, rows, n, buf, obuf, stream, flag); break;
      }
      if (stream) VN::fence();
      return;
    }
  }
  if constexpr (std::is_same<T, float>::value) {
    softmax_rows_group<VN>(x, y, rows, n, buf, obuf, stream, flag);
  } else {  // inline: out of line, AVX2 float64 rows of 5 took 1.3x the time
    for (size_t r = 0; r < rows; r += W)
      softmax_group<VN>(x + r * n, y + r * n, n, rows - r < W ? rows - r : W, buf, obuf, stream, flag + r);
  }
  if (stream) VN::fence();
}

// float64 log_softmax group kernel rows up to this length go two groups at a
// time (log_softmax_groups_f64; both in buf's kMaxN x W elements): one
// group's chain (sums, log1p's division and series, write) left the core
// idle at small n (4 Mi-element batches, 1 thread, ms per batch, medians of
// interleaved runs, one group / two: AVX2 n = 2 92.0 / 50.4, n = 3 56.8 /
// 35.4, n = 5 27.8 / 21.4, n = 10 23.6 / 17.6; AVX-512 n = 3 16.7 / 12.4,
// n = 5 14.7 / 11.4, n = 10 9.9 / 7.4, n = 64 7.8 / 6.6, n = 128 7.5 / 7.0;
// rows from 16 elements have since gone to the direct path on every kernel
// set).
constexpr size_t kPairMaxN = kMaxN / 2;

// float32 log_softmax rows of min_n elements on take the direct rows on
// lanes with the float32 table exp, up to the driver's limit
// (lsm_max_n); rows_<isa>.cpp may specialize the range. 4 Mi-element
// batches, 1 thread, ns per element, medians of 3-4 interleaved runs on a
// loaded machine, direct / group or (above 48) the per-row kernels: AVX-512
// n = 16 1.49 / 1.00, n = 48 1.03 / 1.15, n = 64 0.98 / 2.88, n = 100 1.31
// / 2.41, n = 128 1.04 / 1.86, n = 256 0.54 / 0.87; AVX2 n = 16 2.30 /
// 1.94, n = 48 1.73 / 1.81, n = 64 1.36 / 2.63, n = 100 2.01 / 2.42, n = 128
// 1.71 / 2.14, n = 256 0.87 / 0.98. At n = 32 it depended on where the
// batch sat: 0.99 / 1.23 (AVX2 1.65 / 1.82) in a fresh process, 2.00 /
// 1.21 (AVX2 3.32 / 1.84) after a batch of rows of 16 (softmax's direct
// rows too: 1.57 there against 0.69), so rows below 48 keep the group kernel.
template <class VN>
struct Lsm32DirectRange {
  static constexpr size_t min_n = 48, max_n = kMaxN;
};

// float32 rows shorter than that, from min_n on, take the group kernel
// with the table-exp terms (log_softmax_rows_group32,
// rows_log_softmax32_direct.h) instead of the float64 degree-6 terms
// (then log_softmax_group, one group at a time, since replaced by
// log_softmax_groups_f32's pairs: AVX2 sets its own min_n in rows_avx2.cpp
// from them; the figures below are the one-group kernel's);
// rows_<isa>.cpp may specialize min_n. lsm / sm time in
// one process on the same batch (4 Mi elements, 1 thread, medians of 3
// interleaved runs on a loaded machine, log_softmax_group / group32):
// AVX-512 n = 2 0.98 / 1.09, n = 3 1.03 / 1.07, n = 5 1.09 / 1.12, n = 10
// 1.17 / 1.24, n = 16 1.02-1.08 / 0.95-0.98, n = 32 1.87 / 1.55-1.68 (the
// direct rows there: 1.68); AVX2 n = 2 1.12 / 1.40, n = 5 1.48 / 1.41,
// n = 8 1.32 / 1.36, n = 12 1.36 / 1.35, n = 16 1.30 / 1.10, n = 32 1.60
// / 1.41. Below ~16 the per-group chain (over the max's term, log1p and
// the certificate: three divisions per float64 half) outweighs what the
// cheaper terms save.
// regs_max_n: float32 rows up to it go through log_softmax_group_regs
// (AVX2 sets it in rows_avx2.cpp); 0: log_softmax_groups_f32 only.
template <class VN>
struct Lsm32GroupRange {
  static constexpr size_t min_n = 16, regs_max_n = 0;
};

template <class VN, class VW, class T>
void log_softmax_rows(const T* x, T* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  // float64 rows of kDirectMinBytes on, as softmax's (rows_log_softmax_direct.h).
  if constexpr (std::is_same<T, double>::value)
    if (n * sizeof(T) >= kDirectMinBytes) return log_softmax_rows_direct<VN>(x, y, rows, n, flag);
  // float32 rows from Lsm32DirectRange's min_n on lanes with the float32
  // table exp (rows_log_softmax32_direct.h).
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value)
    if (n >= Lsm32DirectRange<VN>::min_n) return log_softmax_rows_direct32<VN>(x, y, rows, n, flag);
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value)
    if (n >= Lsm32GroupRange<VN>::min_n) return log_softmax_rows_group32<VN>(x, y, rows, n, stream, flag);
  // Two groups at a time where both fit in buf (see kPairMaxN; every row
  // sent here below the direct rows' lengths does).
  constexpr size_t W = VN::width;
  alignas(64) T buf[kMaxN * W], obuf[kMaxN * W];
  if constexpr (std::is_same<T, float>::value && Lsm32GroupRange<VN>::regs_max_n > 0) {
    // One or two W x W blocks per row, four groups at a time (three blocks,
    // two groups, took more instructions than the pairs: rows_avx2.cpp).
    static_assert(Transposes<VN>::value && Lsm32GroupRange<VN>::regs_max_n <= 2 * W, "blocks of W x W in registers");
    if (n <= Lsm32GroupRange<VN>::regs_max_n) {
      if (n <= W)
        log_softmax_rows_regs<VN, VW, 1, 4>(x, y, rows, n, buf, obuf, stream, flag);
      else
        log_softmax_rows_regs<VN, VW, 2, 4>(x, y, rows, n, buf, obuf, stream, flag);
      if (stream) VN::fence();
      return;
    }
  }
  size_t r = 0;
  if (n <= kPairMaxN)
    for (; r + W < rows; r += 2 * W)
      log_softmax_groups<VN, VW, 2>(x + r * n, y + r * n, n, rows - r, buf, obuf, stream, flag + r);
  for (; r < rows; r += W)
    log_softmax_groups<VN, VW, 1>(x + r * n, y + r * n, n, rows - r, buf, obuf, stream, flag + r);
  if (stream) VN::fence();
}

// Unweighted float32 rows of min_n to max_n elements take logsumexp one row
// at a time (rows_logsumexp_direct.h) on lanes with the float32 table exp;
// rows_<isa>.cpp may specialize the range. From 128 bytes, as softmax's
// direct rows: at one AVX-512 vector per row (n = 16) its per-row steps
// (max, sums, certificate) took twice the group kernel's time. Above
// max_n the per-row kernels (expsum_fast: no max pass, float32 sums over
// whole blocks) are faster. AVX2, 4 Mi-element batches, 1 thread, ns per
// element, medians of 3 interleaved runs on a loaded machine, direct /
// group or per-row: n = 16 3.11 / 1.99, n = 32 1.38 / 1.78, n = 64 0.92 /
// 1.74, n = 100 0.85 / 1.14, n = 128 0.78 / 0.90, n = 160 0.75 / 0.85,
// n = 192 0.80 / 0.72, n = 256 0.72 / 0.65.
// Rows of regs_min_n to regs_max_n keep their group columns in registers
// (lse_group_regs; AVX2 sets them in rows_avx2.cpp), regs_max_n 0: none;
// regs_n2: rows of 2 too (group_sums_regs' one-term sum).
// Rows from fused_min_n take the next row's max in the loop over the
// row's terms (logsumexp_rows_direct_sets' Fused).
template <class VN>
struct LseDirectRange {
  static constexpr size_t min_n = kDirectMinBytes / sizeof(float), max_n = 160, regs_min_n = 3, regs_max_n = 0;
  static constexpr size_t fused_min_n = kMaxN + 1;
  static constexpr bool regs_n2 = false;
};

// Unweighted float64 rows from this length on take logsumexp one row at a
// time (rows_logsumexp64_direct.h).
constexpr size_t kLse64DirectMinN = 16;

// float32 logsumexp of rows of two, W rows a step (AVX2; AVX-512 takes the
// table exp and log instead, rows_logsumexp32_two_avx512.h): the rows' entries split
// into a vector of first and one of second entries (deinterleave), then in
// float64 halves lse = m + log1p(exp(d)), m the larger entry, d = smaller -
// m <= 0 (the difference of two floats, within 2^-53 |d|), exp by
// fast_term (AVX-512: the 16-entry table and degree 6; else the degree-11
// polynomial; d clamped at -700: a term below e^-700 is nothing beside 1),
// log1p_small to degree 15 on 1 + exp(d) <= 2. No transposes, sums or
// column buffers. Error of the float64 lse: exp's few 2^-53 relative and
// d's rounding (2^-53 |d|) move log1p(exp(d)) = L by below 2^-50 (1 + |d|)
// L, log1p_small adds ~1.5 * 2^-53 L and its series' tail 2^-46.2, m + L
// rounds within 2^-53 |lse|: a row is certified where that bound, 2^-50 (2
// + |d|) L + 2^-46 + 2^-52 |lse|, is at most 2^-26 |lse| (its float32
// rounding then within 1 ulp of the exact result). Against the degree-11
// exp and series on every set (Zen 5, 4 Mi-element batches, fastest of 7
// interleaved processes): AVX-512 0.79, AVX2 0.89. The others (lse near 0, where m + L cancels) and the rows
// special_two finds are left flagged for the per-row path. The batch's
// last rows go the same way (load_two), so a row's bits do not depend on
// where in the batch it sits.
template <class VN, class VW>
void lse_rows_two(const float* x, float* out, float* sign, size_t rows, unsigned char* flag) {
  constexpr size_t W = VN::width, WW = VW::width, H = W / WW;
  static_assert(W == 2 * WW, "two float64 halves");
  // P steps side by side: one step's chain (exp's and the series'
  // polynomials, the division) is long, its work short.
  constexpr size_t P = 4;
  for (size_t r0 = 0; r0 < rows; r0 += P * W) {
    const size_t steps = (rows - r0 + W - 1) / W < P ? (rows - r0 + W - 1) / W : P;
    Reg<VW> m[P * H], lse[P * H], slack[P * H];
    Reg<VN> a[P], b[P];
    bool uncertified[P];
    for (size_t p = 0; p < steps; ++p) {
      const size_t r = r0 + p * W;
      load_two<VN>(x + 2 * r, rows - r < W ? rows - r : W, a[p], b[p]);
      uncertified[p] = VN::any(special_two<VN>(a[p], b[p]));
      Reg<VW> l[H];
      VN::widen(VN::max(a[p], b[p]), m[p * H], m[p * H + 1]);
      VN::widen(VN::min(a[p], b[p]), l[0], l[1]);
      for (size_t h = 0; h < H; ++h) lse[p * H + h] = VW::max(VW::sub(l[h], m[p * H + h]), VW::set1(-700.0));
    }
    for (size_t q = 0; q < steps * H; ++q) {
      const Reg<VW> d = lse[q];
      const Reg<VW> big_l = log1p_exp<VW>(d);
      lse[q] = VW::add(m[q], big_l);
      const Reg<VW> size = VW::max(lse[q], VW::sub(VW::set1(0.0), lse[q]));
      // The error bound less the budget: positive where not certified.
      slack[q] = VW::fmadd(VW::mul(VW::sub(VW::set1(2.0), d), big_l), VW::set1(0x1p-50),
                           VW::fmadd(size, VW::set1(0x1p-52 - 0x1p-26), VW::set1(0x1p-46)));
      uncertified[q / H] = uncertified[q / H] || VW::any(VW::gt(slack[q], VW::set1(0.0)));
    }
    for (size_t p = 0; p < steps; ++p) {
      const size_t r = r0 + p * W, g = rows - r < W ? rows - r : W;
      if (g == W && !uncertified[p]) {
        for (size_t h = 0; h < H; ++h) VW::store(out + r + h * WW, lse[p * H + h]);
        std::memset(flag + r, 0, W);
        if (sign)
          for (size_t k = 0; k < W; ++k) sign[r + k] = 1.0f;
        continue;
      }
      // The batch's last rows, or a step with a row to leave: lane by lane.
      alignas(64) double lv[W], sv[W];
      alignas(64) float av[W], bv[W];
      for (size_t h = 0; h < H; ++h) {
        VW::store(lv + h * WW, lse[p * H + h]);
        VW::store(sv + h * WW, slack[p * H + h]);
      }
      VN::store(av, a[p]);
      VN::store(bv, b[p]);
      for (size_t k = 0; k < g; ++k) {
        const bool ok = !special_two(av[k], bv[k]) && sv[k] <= 0.0;
        flag[r + k] = !ok;
        if (ok) {
          out[r + k] = static_cast<float>(lv[k]);
          if (sign) sign[r + k] = 1.0f;
        }
      }
    }
  }
}

template <class VN, class VW, class T>
void logsumexp_rows(const T* x, const T* b, T* out, T* sign, size_t rows, size_t n, unsigned char* flag) {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value)
    if (!b && n >= LseDirectRange<VN>::min_n) {
      static_assert(LseDirectRange<VN>::fused_min_n >= kLseCubicMinN, "one degree for the fused rows");
      return logsumexp_rows_direct<VN>(x, out, sign, rows, n, flag, LseDirectRange<VN>::fused_min_n);
    }
  if constexpr (std::is_same<T, double>::value)
    if (!b && n >= kLse64DirectMinN) return logsumexp_rows_direct_f64<VN>(x, out, sign, rows, n, flag);
  constexpr size_t W = VN::width;
  if constexpr (std::is_same<T, float>::value && HasDeinterleave<VN>::value)
    if (!b && n == 2) return lse_rows_two<VN, VW>(x, out, sign, rows, flag);
  alignas(64) T buf[kMaxN * W];
  if constexpr (std::is_same<T, float>::value && LseDirectRange<VN>::regs_max_n > 0) {
    // MaxT as lse_groups: rows of up to 10 skip log1p_small's step by 2^4.
    static_assert(Transposes<VN>::value && LseDirectRange<VN>::regs_max_n <= 10 &&
                      LseDirectRange<VN>::regs_min_n >= 3, "blocks of W x W in registers; S <= 10 < MaxT");
    if (!b && ((n >= LseDirectRange<VN>::regs_min_n && n <= LseDirectRange<VN>::regs_max_n) ||
               (n == 2 && LseDirectRange<VN>::regs_n2))) {
      if (n <= W)
        lse_rows_regs<VN, VW, 1, 4, 11>(x, out, sign, rows, n, buf, flag);
      else
        lse_rows_regs<VN, VW, 2, 4, 11>(x, out, sign, rows, n, buf, flag);
      return;
    }
  }
  // Two groups at a time where both fit in buf (lse_groups); float32 groups'
  // lines prefetched prefetch_distance() ahead (as the direct rows' max
  // pass: the transposes' loads otherwise wait on memory).
  if (!b && n <= kMaxN / 2) {
    const size_t ahead =
        std::is_same<T, float>::value ? prefetch_distance(rows * n * sizeof(T)) / sizeof(T) : 0;
    size_t r = 0;
    for (; r + W < rows; r += 2 * W) {
      if (ahead)
        for (size_t i = 0; i < 2 * W * n; i += 64 / sizeof(T)) SSM_PREFETCH(x + r * n + ahead + i);
      lse_groups<VN, VW, 2>(x + r * n, out + r, sign ? sign + r : nullptr, n, rows - r, buf, flag + r);
    }
    if (r < rows) lse_groups<VN, VW, 1>(x + r * n, out + r, sign ? sign + r : nullptr, n, rows - r, buf, flag + r);
    return;
  }
  if (!b) {
    for (size_t r = 0; r < rows; r += W)
      logsumexp_group<VN, VW, T, false>(x + r * n, nullptr, out + r, sign ? sign + r : nullptr, n,
                                        rows - r < W ? rows - r : W, buf, nullptr, flag + r);
    return;
  }
  alignas(64) T bbuf[kMaxN * W];
  for (size_t r = 0; r < rows; r += W)
    logsumexp_group<VN, VW, T, true>(x + r * n, b + r * n, out + r, sign ? sign + r : nullptr, n,
                                     rows - r < W ? rows - r : W, buf, bbuf, flag + r);
}

// Longest unweighted logsumexp row the driver sends here: float32 rows on
// lanes with the direct rows up to their max_n; float64 rows up to the
// direct rows' (Lse64DirectRange); else (float32 group kernels only) the
// length from which the per-row kernels overtook the group path (AVX2,
// (2^20 / n) x n rows, one thread, short / row time, two same-run sweeps of
// 9-15 interleaved repeats: float32 n = 96 0.97-1.25, n = 128 1.18-1.46).
template <class VN, class T>
constexpr size_t lse_max_n() {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value) {
    static_assert(LseDirectRange<VN>::max_n <= kLseDirectMaxN, "the direct rows' error bound");
    return LseDirectRange<VN>::max_n;
  } else {
    static_assert(std::is_same<T, float>::value || Lse64DirectRange<VN>::max_n < 512, "the raised terms' bound");
    return std::is_same<T, float>::value ? 96 : Lse64DirectRange<VN>::max_n;
  }
}

// Longest log_softmax row the driver sends here. float32 on lanes without
// the direct rows: the length from which the float32 row kernels (the
// certified exp-sum, then x - lse) overtook the group path (AVX2,
// (2^20 / n) x n rows, one thread, short / row time, two same-run sweeps of
// 9-15 interleaved repeats: n = 48 0.91-0.97, n = 64 1.10-1.50, n = 96
// 1.71-2.73). float64 keeps gaining up to n = 256 (0.76-0.80).
template <class VN, class T>
constexpr size_t lsm_max_n() {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value)
    return Lsm32DirectRange<VN>::max_n;
  else
    return std::is_same<T, float>::value ? 48 : kMaxN;
}

template <class VN, class VW, class T>
RowsKernels<T> make_rows_kernels() {
  RowsKernels<T> k;
  k.max_n = kMaxN;
  k.group = VN::width;
  k.softmax = &softmax_rows<VN, T>;
  k.log_softmax = &log_softmax_rows<VN, VW, T>;
  k.logsumexp = &logsumexp_rows<VN, VW, T>;
  k.logsumexp_max_n = lse_max_n<VN, T>();
  k.log_softmax_max_n = lsm_max_n<VN, T>();
  return k;
}

}  // namespace
}  // namespace rows
}  // namespace SSM_ISA
}  // namespace ssm
