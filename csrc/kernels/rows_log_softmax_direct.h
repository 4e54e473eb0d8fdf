// float64 log_softmax of short rows one row at a time, whole vectors along
// the row (softmax's layout, rows_direct.h): included by rows_generic.h (its
// anonymous namespace, lane types, poly, Kahan2 and log1p_small). From
// 128 bytes a row on, the group kernel's transposes in and out cost more than
// the lane reductions of a row held along its vectors (on every kernel set
// since the terms are ref_term's: AVX-512 rows of 64-256 elements, which
// the group kernel used to take: batches of 8192 elements, in L2, 1
// thread, ns per element, group / here: n = 64 1.70 / 1.30, n = 100
// 1.80-1.87 / 1.26-1.28, n = 128 1.72-1.75 / 1.22-1.24, n = 256 2.05-2.10 /
// 1.19; softmax 1.21-1.29 at all four). The rows still go W
// at a time (W = the lane count) so that the one log1p per row is one
// vector log1p per W rows: per row, the max pass (one lane reduction), the
// terms and their compensated lane sums; per W rows, the rows' lane sums
// transposed and added across (W x W, compensated), log S = log1p(S - 1) in
// the W lanes; then each ordinary row is written from x again (the W rows,
// at most 16 KiB, are still in L1).
//
// Accuracy: S - 1 = (k - 1) + rest, k the count of the max's own terms
// (exact), rest the other terms' sum over the max's own term. The terms are
// exp(x - e ln2), e = round(max log2 e) (softmax's pow2_term, no x - max
// rounded: the reduction x - n ln2 is exact), the degree-11 exp (relative
// error u = 2^-53 or so), summed per lane with Kahan2 (~2u; rows of up to
// four vectors as a tree, 2u too), the lanes' totals added with TwoSum (u);
// the max's own term exp(max - e ln2) is a double-double to 0.2u
// (exp_hi_lo) and the division adds 0.5u (1.5u on a kernel set without a
// fused fma). rest is then within about 5u relative (6u without a fused fma),
// as the group kernel's rest (its x - max TwoSum'd, the rounding of r adding
// 0.2u where the division adds 0.5u here); then log1p_small (~1.5u) and y =
// (x - max) - log S: the dominant entry's -log1p(rest) stays within the
// 4 eps relative of the row kernels' write, far inside SPEC's 1e-14. Rows
// with NaN, +-inf, all -inf or a max beyond kFastLimit (whose exp(x) at 2^e
// the exact reduction and the clamp kClampLow do not cover) are left
// unwritten and flagged for the per-row path.

// Lane l of the result: the sum of the W values src[l * W + i] (row l's lane
// totals), added with TwoSum: within 2^-53 relative for values >= 0, exact
// for small integers (the counts).
template <class V>
inline Reg<V> column_sums(const double* src) {
  constexpr size_t W = V::width;
  alignas(64) double cols[W * W];
  transpose_block<V>(src, W, cols, W);
  Reg<V> s = V::load(cols), e = V::set1(0.0);
  for (size_t i = 1; i < W; ++i) {
    const Reg<V> a = V::load(cols + i * W);
    const Reg<V> t = V::add(s, a);
    const Reg<V> bb = V::sub(t, s);
    e = V::add(e, V::add(V::sub(s, V::sub(t, bb)), V::sub(a, bb)));
    s = t;
  }
  return V::add(s, e);
}

// Lane l of the result: op over the W values src[l * W + i] (row l's lane
// values) as a balanced tree, ceil_log2(W) ops a value.
template <class V, class Op>
inline Reg<V> column_tree(const double* src, Op op) {
  constexpr size_t W = V::width;
  alignas(64) double cols[W * W];
  transpose_block<V>(src, W, cols, W);
  Reg<V> c[W];
  for (size_t i = 0; i < W; ++i) c[i] = V::load(cols + i * W);
  for (size_t step = 1; step < W; step *= 2)
    for (size_t i = 0; i + step < W; i += 2 * step) c[i] = op(c[i], c[i + step]);
  return c[0];
}

// column_tree of plain adds: exact for small integers (the counts); for
// values >= 0 within ceil_log2(W) roundings.
template <class V>
inline Reg<V> column_adds(const double* src) {
  return column_tree<V>(src, [](Reg<V> a, Reg<V> b) SSM_INLINE { return V::add(a, b); });
}

// column_tree of maxima (the rows' lane maxima; NaN-free).
template <class V>
inline Reg<V> column_max(const double* src) {
  return column_tree<V>(src, [](Reg<V> a, Reg<V> b) SSM_INLINE { return V::max(a, b); });
}

// The sums of one row along its vectors, V the float64 lanes (In: the
// data, float64 or float32, widened exactly): other(xv) gives the lanes
// that are not the max's own (x < max, or NaN), term(xv) their terms; count
// += the others (the max's own terms), sum += the terms of those, also NaN
// (it reaches the sum) and the tail's -inf fill (whose term is 0). Two vectors
// a step, one per chain: a chain picked by a run-time index kept the sums
// in memory (AVX-512 float64 log_softmax, n = 64-256: slower than the group
// kernel).
// (No std::pair of the two: its members would be code with external
// linkage outside this kernel set's namespace in unoptimized builds.)
// The loop counts the others (a select of 1 or 0: one AND on AVX2, a
// zero-masked move on AVX-512, where a select of 0 or 1 took a blend) and
// the max's own are the lanes visited less those, once per row.
template <class V, class In, class Other, class Term>
inline void row_sums(const In* xr, size_t n, Kahan2<V>& sum, Reg<V>& count, Other other, Term term) {
  constexpr size_t W = V::width;
  const size_t full = n - n % W, rem = n % W;
  Reg<V> others = V::set1(0.0);
  auto add = [&](Reg<V> xv, int u) SSM_INLINE {
    const auto o = other(xv);
    others = V::add(others, V::select(o, V::set1(1.0), V::set1(0.0)));
    sum.add(u, V::select(o, term(xv), V::set1(0.0)));
  };
  size_t j = 0;
  for (; j + 2 * W <= full; j += 2 * W) {
    add(V::load(xr + j), 0);
    add(V::load(xr + j + W), 1);
  }
  if (j < full) add(V::load(xr + j), 0);
  if (rem) add(V::load_tail(xr + full, rem, -kInf), 1);
  const double visited = static_cast<double>(full / W + (rem != 0));
  count = V::add(count, V::sub(V::set1(visited), others));
}

// row_sums of a row of 2 to 4 vectors (n <= 4W: AVX-512 rows of 16 to 32
// elements, AVX2 rows of 16) as a tree, (t0 + t1) + (t2 + t3): each term
// goes through at most two roundings, 2 * 2^-53 of the sum, no more than
// Kahan2's bound, at one add per vector instead of four dependent ones
// (AVX-512 n = 16 and 32 and AVX2 n = 16 spent ~10% of their time on the
// compensation). Returns the lane sums; the max's own counts go to cnt.
template <class V, class Other, class Term>
inline Reg<V> short_row_sums(const double* xr, size_t n, double* cnt, Other other, Term term) {
  constexpr size_t W = V::width;
  Reg<V> others = V::set1(0.0);
  auto masked = [&](Reg<V> xv) SSM_INLINE {
    const auto o = other(xv);
    others = V::add(others, V::select(o, V::set1(1.0), V::set1(0.0)));
    return V::select(o, term(xv), V::set1(0.0));
  };
  auto vec = [&](size_t j) SSM_INLINE { return j + W <= n ? V::load(xr + j) : V::load_tail(xr + j, n - j, -kInf); };
  const size_t vectors = (n + W - 1) / W;
  Reg<V> s = V::add(masked(vec(0)), masked(vec(W)));
  if (vectors == 3) s = V::add(s, masked(vec(2 * W)));
  if (vectors == 4) s = V::add(s, V::add(masked(vec(2 * W)), masked(vec(3 * W))));
  V::store(cnt, V::sub(V::set1(static_cast<double>(vectors)), others));
  return s;
}

// Row xr's max (have: else no row), its others' lane sums and its max's
// own counts (W values each) and e = round(max log2 e). A row for the
// per-row path (also +-inf, all -inf) or no row: k = 1 and rest = 0, an
// ordinary lane whose result is unused. Forced inline: called, it left
// the sets' loop slower (AVX2 n = 128 and AVX-512 n = 64-128 1.04-1.09x).
template <class V>
SSM_INLINE inline void lsm_row_sums(const double* xr, size_t n, bool have, double* part, double* cnt, double& mx,
                         double& eref) {
  constexpr size_t W = V::width;
  const size_t full = n - n % W, rem = n % W;
  if (have) {
    Reg<V> vmax = V::set1(-kInf);
    for (size_t j = 0; j < full; j += W) vmax = V::max(V::load(xr + j), vmax);  // NaN ignored
    if (rem) vmax = V::max(V::load_tail(xr + full, rem, -kInf), vmax);
    mx = V::hmax(vmax);
  }
  if (!have || !(mx >= -kFastLimit && mx <= kFastLimit)) {
    V::store(part, V::set1(0.0));
    V::store(cnt, V::set1(0.0));
    cnt[0] = 1.0;
    if (!have) mx = 0.0;
    eref = 0.0;
    return;
  }
  eref = std::nearbyint(mx * kLog2e);
  const Reg<V> m = V::set1(mx), ve = V::set1(eref);
  auto other = [&](Reg<V> xv) SSM_INLINE { return V::not_le(m, xv); };  // x < max, or NaN
  auto term = [&](Reg<V> xv) SSM_INLINE { return ref_term<V>(xv, ve); };
  if (n <= 4 * W) {
    V::store(part, short_row_sums<V>(xr, n, cnt, other, term));
    return;
  }
  Kahan2<V> sum;
  Reg<V> count = V::set1(0.0);
  row_sums<V>(xr, n, sum, count, other, term);
  V::store(part, V::add(V::sub(sum.s[0], sum.c[0]), V::sub(sum.s[1], sum.c[1])));
  V::store(cnt, count);
}

// y = (x - max) - log S along row xr, as the group kernel: x - max is
// exact near the max (Sterbenz) and the result is never positive.
template <class V>
SSM_INLINE inline void lsm64_write_row(const double* xr, double* yr, size_t n, double mx, double log_s) {
  constexpr size_t W = V::width;
  const size_t full = n - n % W, rem = n % W;
  const Reg<V> m = V::set1(mx), ls = V::set1(log_s);
  for (size_t j = 0; j < full; j += W) V::store(yr + j, V::sub(V::sub(V::load(xr + j), m), ls));
  if (rem) V::store_tail(yr + full, V::sub(V::sub(V::load_tail(xr + full, rem, 0.0), m), ls), rem);
}

// Rows of n >= W elements (kDirectMinBytes of float64 is at least two
// vectors on every kernel set). The terms are ref_term's, relative to 2^e,
// e = round(max log2 e): no x - max rounded, no TwoSum per term; the others'
// sum is divided by the max's own term once per row (over_max_term). Rows
// whose max is beyond kFastLimit (or not finite) go to the per-row path.
template <class V>
void log_softmax_rows_direct_sets(const double* x, double* y, size_t rows, size_t n, unsigned char* flag) {
  constexpr size_t W = V::width;
  alignas(64) double part[W * W], cnt[W * W], mx[W], eref[W];
  // The previous set is written while this one is summed (see
  // kOverlapSetBytes).
  alignas(64) double prev_mx[W], prev_log_s[W];
  bool prev_ok[W] = {};
  size_t prev_r0 = 0, prev_g = 0;
  auto write_prev = [&](size_t l) SSM_INLINE {
    if (l < prev_g && prev_ok[l])
      lsm64_write_row<V>(x + (prev_r0 + l) * n, y + (prev_r0 + l) * n, n, prev_mx[l], prev_log_s[l]);
  };
  for (size_t r0 = 0; r0 < rows; r0 += W) {
    const size_t g = rows - r0 < W ? rows - r0 : W;
    for (size_t l = 0; l < W; ++l) {
      // Row l of the previous set first. In place, a row's x is read by its
      // own set's sums and then by its own write only.
      write_prev(l);
      lsm_row_sums<V>(x + (r0 + l) * n, n, l < g, part + l * W, cnt + l * W, mx[l], eref[l]);
    }
    // Per lane l (row r0 + l): the others' terms over 2^e, k (a sum of small
    // integers: exact, plain adds), the others' sum over the max's own term.
    const Reg<V> sum2e = column_sums<V>(part);
    const Reg<V> k = column_adds<V>(cnt);
    const Reg<V> vmx = V::load(mx);
    const auto out_of_range = beyond_ref_terms<V>(vmx);
    const Reg<V> rest = over_max_term<V>(sum2e, V::select(out_of_range, V::set1(0.0), vmx), V::load(eref));
    const auto bad = V::mask_or(out_of_range, V::notfinite(rest));
    const Reg<V> z = V::select(bad, V::set1(0.0), V::add(V::sub(k, V::set1(1.0)), rest));
    V::store(prev_log_s, log1p_small<V>(z));
    double badv[W];
    V::to_array(V::select(bad, V::set1(1.0), V::set1(0.0)), badv);
    for (size_t l = 0; l < g; ++l) {
      flag[r0 + l] = badv[l] != 0.0;
      prev_ok[l] = !flag[r0 + l];
      prev_mx[l] = mx[l];
    }
    prev_r0 = r0;
    prev_g = g;
  }
  for (size_t l = 0; l < prev_g; ++l) write_prev(l);
}

// Sets smaller than kOverlapSetBytes, with two sets in flight:
// set s's rows are summed with set s - 1's chain in between them, one stage
// after each W / 4 rows (the chain's steps wait on each other: the lane sums
// across, the max's own term and 1 / it; over_max_term's rest and log1p's
// range steps; log1p's division; its series and the flags), then set s - 1
// is written. Each stage's latency then overlaps a row's loads and terms.
// Sums, then chain, then write, set by set, left the core waiting on the
// chain: AVX2 rows of 16-64 took 1.2-1.3x softmax's time at about its
// instructions per element (callgrind, n = 16: 19.9 against 18.5 inside
// the kernel). Same operations, same bits.
template <class V>
void log_softmax_rows_direct_staged(const double* x, double* y, size_t rows, size_t n, unsigned char* flag) {
  constexpr size_t W = V::width;
  alignas(64) double part[2][W * W], cnt[2][W * W], mx[2][W], eref[2][W];
  alignas(64) double log_s[W];
  Reg<V> sum2e, k, hi, lo, inv, z, t, e, s;
  typename V::mask bad = V::gt(V::set1(0.0), V::set1(0.0));
  auto stage = [&](size_t step, size_t b) SSM_INLINE {
    if (step == 0) {
      sum2e = column_sums<V>(part[b]);
      k = column_adds<V>(cnt[b]);
      const Reg<V> vmx = V::load(mx[b]);
      bad = beyond_ref_terms<V>(vmx);
      exp_hi_lo<V>(V::reduce_ln2(V::select(bad, V::set1(0.0), vmx), V::load(eref[b])), hi, lo);
      inv = div_lanes(V::set1(1.0), hi);
    } else if (step == 1) {
      const Reg<V> rest = over_max_term_from<V>(sum2e, hi, lo, inv);
      bad = V::mask_or(bad, V::notfinite(rest));
      z = V::select(bad, V::set1(0.0), V::add(V::sub(k, V::set1(1.0)), rest));
      log1p_small_reduce<V>(z, t, e);
    } else if (step == 2) {
      const Reg<V> f = V::select(V::nonzero(e), V::sub(t, V::set1(1.0)), z);
      s = div_lanes(f, V::add(V::set1(2.0), f));
    } else {
      V::store(log_s, log1p_small_series<V>(s, e));
    }
  };
  // Set (r0, g) from slot b: flags, then y = (x - max) - log S, as
  // log_softmax_rows_direct_sets.
  auto write_set = [&](size_t r0, size_t g, size_t b) SSM_INLINE {
    double badv[W];
    V::to_array(V::select(bad, V::set1(1.0), V::set1(0.0)), badv);
    for (size_t l = 0; l < g; ++l) {
      flag[r0 + l] = badv[l] != 0.0;
      if (badv[l] == 0.0) lsm64_write_row<V>(x + (r0 + l) * n, y + (r0 + l) * n, n, mx[b][l], log_s[l]);
    }
  };
  size_t prev_r0 = 0, prev_g = 0, b = 0;
  for (size_t r0 = 0; r0 < rows; r0 += W, b ^= 1) {
    const size_t g = rows - r0 < W ? rows - r0 : W;
    size_t done = r0 ? 0 : 4;
    for (size_t l = 0; l < W; ++l) {
      lsm_row_sums<V>(x + (r0 + l) * n, n, l < g, part[b] + l * W, cnt[b] + l * W, mx[b][l], eref[b][l]);
      for (; done < (l + 1) * 4 / W; ++done) stage(done, b ^ 1);
    }
    // In place, set s - 1's rows were read by its own sums only.
    if (r0) write_set(prev_r0, prev_g, b ^ 1);
    prev_r0 = r0;
    prev_g = g;
  }
  if (rows) {
    for (size_t step = 0; step < 4; ++step) stage(step, b ^ 1);
    write_set(prev_r0, prev_g, b ^ 1);
  }
}

// Sets of W rows of kOverlapSetBytes and more are written while the next set
// is summed: a set's rows written at once, 4-16 KiB of stores with nothing
// to overlap them, left 4 Mi-element batches well behind the same rows in
// cache (1 thread, ns per element, at once / overlapped: AVX-512 n = 64
// 2.74 / 1.92, n = 128 2.61 / 1.90, n = 256 2.66 / 2.04; AVX2 n = 128
// 2.84 / 2.38, n = 256 3.07 / 2.70). Smaller sets did not gain (AVX-512
// n = 16 2.21 / 2.56, n = 32 2.04 / 2.08; AVX2 n = 16-64 1.00-1.06x).
constexpr size_t kOverlapSetBytes = 4096;

template <class V>
void log_softmax_rows_direct(const double* x, double* y, size_t rows, size_t n, unsigned char* flag) {
  if (V::width * n * sizeof(double) >= kOverlapSetBytes)
    return log_softmax_rows_direct_sets<V>(x, y, rows, n, flag);
  log_softmax_rows_direct_staged<V>(x, y, rows, n, flag);
}
