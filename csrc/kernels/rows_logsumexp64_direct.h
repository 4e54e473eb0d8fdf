// float64 logsumexp of short rows one row at a time, whole vectors along the
// row (softmax's layout, rows_direct.h): included by rows_generic.h (its
// anonymous namespace, lane types, ref_term, over_max_term, log1p_small) after
// rows_log_softmax_direct.h (column_sums, row_sums). float64 log_softmax's
// direct rows without the write pass, and with the max-relative sums only
// for the rows that need them. The rows go W at a time (W = the lane count):
// per row a max pass into a vector, the W maxima in one vector by a W x W
// transpose; per row the terms' plain lane sums; per W rows the lane sums
// transposed and added across (column_adds), one vector log1p, one
// vector certificate.
//
// Accuracy (SPEC: float64 within 1e-14 relative; near lse = 0 the bound of
// docs/design.md), two tiers per row, u = 2^-53:
//  1. S = sum exp(x) 2^-e, e = round(max log2 e), the terms by
//     fast_term where the lane type has the exp table, else lse64_term
//     (term_err() u relative each; fast_term flushes terms below 2^-1022,
//     lse64_term gives those below 2^-1019 at most 2^-1019: under n
//     2^-1019 of S >= 2^-1/2),
//     added plainly in two chains per lane (at most ceil(v / 2) + 1 adds a
//     term, v the row's vectors: Higham sec. 4.2, for terms >= 0 in any
//     order) and across the lanes by column_adds (ceil_log2(W)
//     adds): S within rel_s = (term_err() + ceil(v / 2) + 1 +
//     ceil_log2(W)) u relative, plus lse64_reduce_err(n) u where the
//     reduction is one fma (kLse64OneFma: S is then exp(e ln2_lo) times
//     that). log S = log1p_small(S - 1)
//     (S - 1 exact: S in [2^-1/2, 2] or rounded by u (S - 1) / S of log S;
//     S >= 2^-1/2 keeps log1p_small's s within its 0.1716; 1.5u relative),
//     lse = e ln2_hi31 (exact) + (e ln2_lo31 + log S) (one fma: e (ln2_hi
//     - ln2_hi31), as exp(e ln2_lo) leaves S): within rel_s + 2u +
//     2.5u |log S| + u |lse| (e ln2_lo31 rounds by under 2^-40 u). Kept
//     where 1.01 (rel_s + 3u + 3u |log S|) <= 2^-47 |lse| (2^-47 + u below
//     1e-14): every ordinary row with |lse| above about 1 (log S + 1) 2^-6;
//     N(0, 1) rows of 16 and more all pass.
//  2. The others (|lse| small: the sum cancels against e ln2; or a NaN in
//     the row): log_softmax's direct sums, S - 1 = (k - 1) + rest with k the
//     count of the max's own terms (exact) and rest the other terms' Kahan2
//     sums over the max's own term (over_max_term): within about 5u
//     relative, then lse = max + log1p(S - 1) within 2^-49 log S + u |lse|,
//     as the group kernel's (lse_plain_group). Rows with |lse| below 2^-23
//     log S (near zero) are flagged for the per-row path's near-zero tiers
//     (softmax_rows.h: lse_vector_tier, lse_accurate), as are NaN rows.
// Rows with +-inf, all -inf or a max beyond kFastLimit are flagged and left
// unwritten for the per-row path, as the group kernel flags them.

// exp(r) on |r| <= ln2/2 (1 + 2^-10) to degree 10 for lse64_term's sums
// (tools/fit_exp.py's Lawson fit at degree 10: 2.37 * 2^-53 relative with
// these rounded coefficients, 4001 points), one fma fewer a vector than
// ExpCoeffs<double>'s degree 11 (0.1 * 2^-53). Its error is relative to S
// and enters lse as an absolute error of a few 2^-53, where tier 1 keeps
// only results certified to 2^-47 relative (term_err).
struct Lse64Exp10 {
  static constexpr int degree = 10;
  static constexpr double c[degree + 1] = {
      1.0, 0x1.0000000000019p+0, 0x1.ffffffffffe91p-2, 0x1.555555554c4a1p-3, 0x1.555555558bcffp-5,
      0x1.1111112c7f794p-7, 0x1.6c16c0cce3b7ep-10, 0x1.a0197c21d4948p-13, 0x1.a01b5b2281f9fp-16,
      0x1.72f811fabeb17p-19, 0x1.2731027534f75p-22};
};

// Relative error bound of tier 1's terms in units of 2^-53: fast_term's
// table exp's 1.6 (vecmath_common.h, ExpTable16) taken as the fast sums'
// bound for it (expsum_fast.h), else lse64_term's: the degree-11 exp's
// evaluation (TopExp's analysis: 2.5 with a fused fma, 3.5 without, its
// fit's 0.1 included) plus Lse64Exp10's fit, 2.37 taken as 2.5.
template <class V>
constexpr double term_err() {
  return HasExpTable<V>::value ? 2.0 : (FusedFma<V>::value ? 2.5 : 3.5) + 2.5;
}

// The lane maxima of row xr (NaN ignored, -inf for no entry). One chain:
// the W rows' chains of a set are independent of each other.
template <class V>
inline Reg<V> row_max_lanes(const double* xr, size_t n) {
  constexpr size_t W = V::width;
  const size_t full = n - n % W;
  Reg<V> m = n > full ? V::load_tail(xr + full, n - full, -kInf) : V::set1(-kInf);
  for (size_t j = 0; j < full; j += W) m = V::max(V::load(xr + j), m);
  return m;
}

// HasPow2Biased (rows_generic.h): lane types with 2^k from 2^52 + k + 1023 in one shift.

// Tier 1's reduction x - n ln2_hi in one fma where the fma is fused and
// there is no exp table (AVX2, NEON): the exact reduction's r = x - n ln2
// is then r + n d, d = ln2 - ln2_hi = ln2_lo, so a term carries exp(n d)
// besides its own error. Against exp(e d), taken out of the sum whole by
// lse = e ln2_hi + log S (lse64_tier1: ln2_hi - ln2_hi31, not ln2_lo31),
// a term is off by exp((n - e) d), n - e in [-1020, 1]. The terms weigh
// w = t / S <= 2^(1 - (e - n)), so sum w (e - n) d <= (log2 N + 1.1) d
// (as table_reduce's, expsum_fast.h), N <= n the row's terms: S within
// (ceil_log2(n) + 1.1) d, 1.9 u at n = 256, more (lse64_reduce_err).
template <class V>
constexpr bool kLse64OneFma = !HasExpTable<V>::value && FusedFma<V>::value;

// What the one-fma reduction adds to S's error for rows of n, in units of
// 2^-53 (0 where the reduction is the exact one).
template <class V>
double lse64_reduce_err(size_t n) {
  if constexpr (!kLse64OneFma<V>) return 0.0;
  return (ceil_log2(static_cast<int>(n)) + 1.1) * ExpCoeffs<double>::ln2_lo / 0x1p-53;
}

// Tier 1's term exp(x) 2^-e where the lane type has no exp table (AVX2,
// NEON, scalar): xlow = (e - 1020) ln2 (lse64_low) raises every x below it,
// so that n = round(x log2 e) lies in [e - 1020, e + 1] (the fma rounds x
// log2 e + 1.5 2^52 once, to the integer n plus the constant) and 2^(n - e)
// is a normal power of two: the product by it is exact and takes no clamps
// (fast_term's scale2_term: five operations more per vector on AVX2, with
// its round). With pow2_biased, 2^52 + n - e + 1023 is t - k_row, k_row =
// 2^51 + e - 1023 (lse64_krow; exact: both integers, the difference in
// [2^52, 2^53)). The reduction is kLse64OneFma's or the exact one of
// ref_term (|x| <= 2^21, |n| < 2^22), the polynomial Lse64Exp10 (|r| <=
// ln2/2 + 2^-33 with the one-fma reduction, inside its fit's margin): the
// term is within term_err(). A raised x (x < xlow, also -inf) gives at
// most exp(xlow + ln2/2) 2^-e < 2^-1019 instead of its own term: at most
// 511 of them (Lse64DirectRange's max_n), under 2^-1010 of S >= 2^-1/2. NaN stays NaN (max returns
// its second operand on NaN) and reaches the sums.
template <class V>
SSM_INLINE inline Reg<V> lse64_term(Reg<V> x, Reg<V> xlow, Reg<V> ve, Reg<V> krow) {
  using C = ExpCoeffs<double>;
  constexpr double kMagic = 0x1.8p52;
  const Reg<V> xc = V::max(xlow, x);
  const Reg<V> t = V::fmadd(xc, V::set1(C::log2e), V::set1(kMagic));
  const Reg<V> n = V::sub(t, V::set1(kMagic));
  Reg<V> r;
  if constexpr (kLse64OneFma<V>)
    r = V::fmadd(n, V::set1(-C::ln2_hi), xc);
  else
    r = V::reduce_ln2(xc, n);
  if constexpr (HasPow2Biased<V>::value)
    return V::mul(poly<V, Lse64Exp10>(r), V::pow2_biased(V::sub(t, krow)));
  else
    return V::mul(poly<V, Lse64Exp10>(r), V::pow2(V::sub(n, ve)));
}

// lse64_term's xlow and k_row for the row whose e is eref.
inline double lse64_low(double eref) { return (eref - 1020.0) * 0x1.62e42fefa39efp-1; }
inline double lse64_krow(double eref) { return 0x1p51 + (eref - 1023.0); }

// Tier 1's lane sums of row xr: exp(x) 2^-e (e = eref), the
// fast sums' terms where the lane type has the 16-entry table exp
// (fast_term: two vectors' chains side by side), else lse64_term's, added
// plainly in two chains: at most ceil(v / 2) + 1 adds a term, v the row's
// vectors (a NaN reaches the sums; the tail's -inf fill adds 0, or
// lse64_term's raised term). Four vectors side by side were no faster
// (AVX-512 n = 64-256, noisy).
template <class V>
inline Reg<V> row_ref_sums(const double* xr, size_t n, double eref) {
  constexpr size_t W = V::width;
  const Reg<V> ve = V::set1(eref);
  const size_t full = n - n % W, rem = n % W;
  Reg<V> s0 = V::set1(0.0), s1 = V::set1(0.0);
  size_t j = 0;
  if constexpr (HasExpTable<V>::value) {
    for (; j + 2 * W <= full; j += 2 * W) {
      Reg<V> t[2];
      fast_terms<V, 2>(xr + j, ve, t);
      s0 = V::add(s0, t[0]);
      s1 = V::add(s1, t[1]);
    }
    Reg<V> unused;
    if (j < full) s0 = V::add(s0, fast_term<V>(V::load(xr + j), ve, unused));
    if (rem) s1 = V::add(s1, fast_term<V>(V::load_tail(xr + full, rem, -kInf), ve, unused));
  } else {
    const Reg<V> xlow = V::set1(lse64_low(eref)), krow = V::set1(lse64_krow(eref));
    for (; j + 2 * W <= full; j += 2 * W) {
      s0 = V::add(s0, lse64_term<V>(V::load(xr + j), xlow, ve, krow));
      s1 = V::add(s1, lse64_term<V>(V::load(xr + j + W), xlow, ve, krow));
    }
    if (j < full) s0 = V::add(s0, lse64_term<V>(V::load(xr + j), xlow, ve, krow));
    if (rem) s1 = V::add(s1, lse64_term<V>(V::load_tail(xr + full, rem, -kInf), xlow, ve, krow));
  }
  return V::add(s0, s1);
}

// A row's lane values that add up to 1 in column_sums (an unused lane).
template <class V>
inline void store_unit(double* dst) {
  V::store(dst, V::set1(0.0));
  dst[0] = 1.0;
}

// Longest row the driver gives the direct rows (lse_max_n): above it the
// per-row kernels; rows_<isa>.cpp may specialize (below 512: the raised
// terms' bound above).
template <class V>
struct Lse64DirectRange {
  static constexpr size_t max_n = kMaxN;
};

// Tier 1's bound for rows of n (the header's 1.): 1.01 (rel_s + 3u + 3u
// |log S|) = err0 + err1 |log S|.
template <class V>
struct Lse64Tier1Err {
  Reg<V> err0, err1;
  explicit Lse64Tier1Err(size_t n) {
    constexpr size_t W = V::width;
    constexpr double u = 0x1p-53;
    const size_t vecs = (n + W - 1) / W;
    const double rel_s =
        (term_err<V>() + lse64_reduce_err<V>(n) + static_cast<double>((vecs + 1) / 2 + 1 + ceil_log2(W))) * u;
    err0 = V::set1(1.01 * (rel_s + 3.0 * u));
    err1 = V::set1(1.01 * 3.0 * u);
  }
};

// Tier 1 in the W lanes: lse = e ln2 + log S, and fail where the lane is
// beyond the terms' range or its bound does not certify 2^-47 |lse| (NaN
// fails).
template <class V>
SSM_INLINE inline Reg<V> lse64_tier1(Reg<V> ve, Reg<V> log_s, typename V::mask beyond, const Lse64Tier1Err<V>& b,
                                     typename V::mask& fail) {
  using C = ExpCoeffs<double>;
  // e ln2 with ln2 - ln2_hi31 (below 2^-30); e ln2_hi where the terms
  // carry exp(e ln2_lo) (kLse64OneFma; ln2_hi - ln2_hi31 is exact).
  constexpr double lo = kLse64OneFma<V> ? C::ln2_hi - C::ln2_hi31 : C::ln2_lo31;
  const Reg<V> lse = V::fmadd(ve, V::set1(C::ln2_hi31), V::fmadd(ve, V::set1(lo), log_s));
  const Reg<V> size = V::max(lse, V::sub(V::set1(0.0), lse));
  const Reg<V> err = V::fmadd(V::max(log_s, V::sub(V::set1(0.0), log_s)), b.err1, b.err0);
  fail = V::mask_or(beyond, V::not_le(err, V::mul(size, V::set1(0x1p-47))));
  return lse;
}

// The results of the set from row r0 (g rows): tier 1's lse where all W
// lanes passed, else lane by lane, tier 2 for the in-range lanes that
// failed (lane l's max and e in mxs, eref, m and ve; in_range 0 or 1), and
// the flags. Forced inline, as lsm_row_sums.
template <class V>
SSM_INLINE inline void lse64_set_results(const double* x, size_t n, size_t r0, size_t g, const double* mxs,
                                         const double* eref, const double* in_range, Reg<V> m, Reg<V> ve,
                                         Reg<V> lse, typename V::mask fail, double* out, double* sign,
                                         unsigned char* flag) {
  constexpr size_t W = V::width;
  if (g == W && !V::any(fail)) {
    V::store(out + r0, lse);
    for (size_t l = 0; l < W; ++l) flag[r0 + l] = 0;
    if (sign) V::store(sign + r0, V::set1(1.0));
    return;
  }
  alignas(64) double t2[W * W], cnt[W * W], lse1[W], lse2[W], fails[W], bad2[W];
  V::to_array(lse, lse1);
  V::to_array(V::select(fail, V::set1(1.0), V::set1(0.0)), fails);
  // Tier 2 for the lanes tier 1 left (in range).
  bool any2 = false;
  for (size_t l = 0; l < W; ++l) {
    if (l < g && in_range[l] != 0.0 && fails[l] != 0.0) {
      const Reg<V> ml = V::set1(mxs[l]), vel = V::set1(eref[l]);
      Kahan2<V> sum;
      Reg<V> count = V::set1(0.0);
      row_sums<V>(
          x + (r0 + l) * n, n, sum, count,
          [&](Reg<V> xv) SSM_INLINE { return V::not_le(ml, xv); },  // x < max, or NaN
          [&](Reg<V> xv) SSM_INLINE { return ref_term<V>(xv, vel); });
      V::store(t2 + l * W, V::add(V::sub(sum.s[0], sum.c[0]), V::sub(sum.s[1], sum.c[1])));
      V::store(cnt + l * W, count);
      any2 = true;
    } else {
      V::store(t2 + l * W, V::set1(0.0));
      store_unit<V>(cnt + l * W);
    }
  }
  if (any2) {
    const Reg<V> rest = over_max_term<V>(column_sums<V>(t2), m, ve);
    const auto bad = V::notfinite(rest);
    const Reg<V> z = V::select(bad, V::set1(0.0), V::add(V::sub(column_adds<V>(cnt), V::set1(1.0)), rest));
    const Reg<V> log_s2 = log1p_small<V>(z);
    const Reg<V> lse_2 = V::add(m, log_s2);
    // Near lse = 0 (as lse_plain_group): the per-row path's near-zero tiers.
    const Reg<V> size2 = V::max(lse_2, V::sub(V::set1(0.0), lse_2));
    const auto near = V::gt(log_s2, V::mul(size2, V::set1(0x1p23)));
    V::to_array(lse_2, lse2);
    V::to_array(V::select(V::mask_or(bad, near), V::set1(1.0), V::set1(0.0)), bad2);
  }
  for (size_t l = 0; l < g; ++l) {
    bool ok = in_range[l] != 0.0;
    double v = lse1[l];
    if (ok && fails[l] != 0.0) {
      ok = bad2[l] == 0.0;
      v = lse2[l];
    }
    flag[r0 + l] = !ok;
    if (!ok) continue;
    out[r0 + l] = v;
    if (sign) sign[r0 + l] = 1.0;
  }
}

// logsumexp_rows_direct_f64 with two sets in flight, as
// log_softmax_rows_direct_staged: set s's rows are summed with set s - 1's
// tier 1 finish in stages between them (the lane sums across and log1p's
// range steps; its division; its series and the certificate; the results,
// or tier 2 for the lanes it left). Same operations, same bits.
template <class V>
void logsumexp_rows_direct_f64_staged(const double* x, double* out, double* sign, size_t rows, size_t n,
                                      unsigned char* flag) {
  constexpr size_t W = V::width;
  const Lse64Tier1Err<V> bound(n);
  alignas(64) double lanes[2][W * W], mxs[2][W], eref[2][W], in_range[2][W];
  Reg<V> st_t, st_e, st_z, st_s, st_lse;
  typename V::mask st_fail = V::gt(V::set1(0.0), V::set1(0.0));
  auto stage = [&](size_t step, size_t r0, size_t g, size_t b) SSM_INLINE {
    if (step == 0) {
      st_z = V::sub(column_adds<V>(lanes[b]), V::set1(1.0));
      log1p_small_reduce<V>(st_z, st_t, st_e);
      return;
    }
    if (step == 1) {
      const Reg<V> f = V::select(V::nonzero(st_e), V::sub(st_t, V::set1(1.0)), st_z);
      st_s = div_lanes(f, V::add(V::set1(2.0), f));
      return;
    }
    const Reg<V> ve = V::load(eref[b]);
    if (step == 2) {
      const auto beyond = V::gt(V::set1(0.5), V::load(in_range[b]));  // in_range 0 or 1
      st_lse = lse64_tier1<V>(ve, log1p_small_series<V>(st_s, st_e), beyond, bound, st_fail);
      return;
    }
    lse64_set_results<V>(x, n, r0, g, mxs[b], eref[b], in_range[b], V::load(mxs[b]), ve, st_lse, st_fail, out, sign,
                         flag);
  };
  size_t prev_r0 = 0, prev_g = 0, b = 0;
  for (size_t r0 = 0; r0 < rows; r0 += W, b ^= 1) {
    const size_t g = rows - r0 < W ? rows - r0 : W;
    double* ln = lanes[b];
    for (size_t l = 0; l < W; ++l) V::store(ln + l * W, l < g ? row_max_lanes<V>(x + (r0 + l) * n, n) : V::set1(0.0));
    const Reg<V> vmx = column_max<V>(ln);
    const auto beyond = beyond_ref_terms<V>(vmx);
    const Reg<V> m = V::select(beyond, V::set1(0.0), vmx);
    V::store(mxs[b], m);
    V::store(eref[b], V::round(V::mul(m, V::set1(kLog2e))));
    V::store(in_range[b], V::select(beyond, V::set1(0.0), V::set1(1.0)));
    size_t done = r0 ? 0 : 4;
    for (size_t l = 0; l < W; ++l) {
      if (l < g && in_range[b][l] != 0.0)
        V::store(ln + l * W, row_ref_sums<V>(x + (r0 + l) * n, n, eref[b][l]));
      else
        store_unit<V>(ln + l * W);
      for (; done < (l + 1) * 4 / W; ++done) stage(done, prev_r0, prev_g, b ^ 1);
    }
    prev_r0 = r0;
    prev_g = g;
  }
  if (rows)
    for (size_t step = 0; step < 4; ++step) stage(step, prev_r0, prev_g, b ^ 1);
}

// Rows of n >= 1 elements (rows_generic.h takes kLse64DirectMinN on).
template <class V>
void logsumexp_rows_direct_f64(const double* x, double* out, double* sign, size_t rows, size_t n,
                               unsigned char* flag) {
  constexpr size_t W = V::width;
  // Two sets in flight where W <= 4 (AVX2, scalar); AVX-512 rows of 32-256
  // were 1.03-1.10x slower so.
  if constexpr (W <= 4) return logsumexp_rows_direct_f64_staged<V>(x, out, sign, rows, n, flag);
  const Lse64Tier1Err<V> bound(n);
  alignas(64) double lanes[W * W], mxs[W], eref[W], in_range[W];
  for (size_t r0 = 0; r0 < rows; r0 += W) {
    const size_t g = rows - r0 < W ? rows - r0 : W;
    for (size_t l = 0; l < W; ++l) V::store(lanes + l * W, l < g ? row_max_lanes<V>(x + (r0 + l) * n, n) : V::set1(0.0));
    const Reg<V> vmx = column_max<V>(lanes);
    const auto beyond = beyond_ref_terms<V>(vmx);
    const Reg<V> m = V::select(beyond, V::set1(0.0), vmx);
    const Reg<V> ve = V::round(V::mul(m, V::set1(kLog2e)));
    V::to_array(m, mxs);
    V::to_array(ve, eref);
    V::to_array(V::select(beyond, V::set1(0.0), V::set1(1.0)), in_range);
    for (size_t l = 0; l < W; ++l) {
      if (l < g && in_range[l] != 0.0)
        V::store(lanes + l * W, row_ref_sums<V>(x + (r0 + l) * n, n, eref[l]));
      else
        store_unit<V>(lanes + l * W);
    }
    typename V::mask fail;
    const Reg<V> lse =
        lse64_tier1<V>(ve, log1p_small<V>(V::sub(column_adds<V>(lanes), V::set1(1.0))), beyond, bound, fail);
    lse64_set_results<V>(x, n, r0, g, mxs, eref, in_range, m, ve, lse, fail, out, sign, flag);
  }
}

