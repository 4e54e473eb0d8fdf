// float64 log_softmax of short rows one row at a time, whole vectors along
// the row (softmax's layout, rows_direct.h): included by rows_generic.h (its
// anonymous namespace, lane types, rel_term, Kahan2 and log1p_small). From
// 128 bytes a row on, the group kernel's transposes in and out cost more than
// the lane reductions of a row held along its vectors (with 8 lanes, up to
// kWideDirectMaxVectors vectors a row: see rows_generic.h). The rows still go W
// at a time (W = the lane count) so that the one log1p per row is one
// vector log1p per W rows: per row, the max pass (one lane reduction), the
// terms and their compensated lane sums; per W rows, the rows' lane sums
// transposed and added across (W x W, compensated), log S = log1p(S - 1) in
// the W lanes; then each ordinary row is written from x again (the W rows,
// at most 16 KiB, are still in L1).
//
// Accuracy: as the group kernel (rows_generic.h's header): S - 1 = (k - 1)
// + rest, k the count of the max's own terms (exact), rest the other terms
// exp(x - max) with x - max exact (TwoSum) and the degree-11 exp, summed per
// lane with Kahan2, the lanes' totals added with TwoSum (one more rounding
// than the group kernel's, at 2^-53 relative of rest); then log1p_small and
// y = (x - max) - log S. Rows with NaN, +-inf or all -inf are left unwritten
// and flagged for the per-row path, as the group kernel leaves them.

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

// The max-relative sums of one row along its vectors, V the float64 lanes
// (In: the data, float64 or float32, widened exactly): count += the lanes
// at m (the max's own terms), sum += exp(x - m) of the others (rel_term;
// Exact: x - m's rounding added back), also NaN (it reaches the sum) and
// the tail's -inf fill (whose term is 0). Two vectors a step, one per chain:
// a chain picked by a run-time index kept the sums in memory (AVX-512
// float64 log_softmax, n = 64-256: slower than the group kernel).
template <class V, bool Exact, class In>
inline void row_rel_sums(const In* xr, size_t n, Reg<V> m, Kahan2<V>& sum, Reg<V>& count) {
  constexpr size_t W = V::width;
  const size_t full = n - n % W, rem = n % W;
  auto add = [&](Reg<V> xv, int u) SSM_INLINE {
    const Reg<V> d = V::sub(xv, m);
    const auto other = V::nonzero(d);
    count = V::add(count, V::select(other, V::set1(0.0), V::set1(1.0)));
    sum.add(u, V::select(other, rel_term<V, Exact>(xv, m, d), V::set1(0.0)));
  };
  size_t j = 0;
  for (; j + 2 * W <= full; j += 2 * W) {
    add(V::load(xr + j), 0);
    add(V::load(xr + j + W), 1);
  }
  if (j < full) add(V::load(xr + j), 0);
  if (rem) add(V::load_tail(xr + full, rem, -kInf), 1);
}

// Rows of n >= W elements (kDirectMinBytes of float64 is at least two
// vectors on every kernel set).
template <class V>
void log_softmax_rows_direct(const double* x, double* y, size_t rows, size_t n, unsigned char* flag) {
  constexpr size_t W = V::width;
  const size_t full = n - n % W, rem = n % W;
  alignas(64) double part[W * W], cnt[W * W], mx[W], log_s[W];
  for (size_t r0 = 0; r0 < rows; r0 += W) {
    const size_t g = rows - r0 < W ? rows - r0 : W;
    for (size_t l = 0; l < W; ++l) {
      if (l >= g) {
        // No row: k = 1 and rest = 0, an ordinary lane whose result is unused.
        V::store(part + l * W, V::set1(0.0));
        V::store(cnt + l * W, V::set1(0.0));
        cnt[l * W] = 1.0;
        mx[l] = 0.0;
        continue;
      }
      const double* xr = x + (r0 + l) * n;
      Reg<V> vmax = V::set1(-kInf);
      for (size_t j = 0; j < full; j += W) vmax = V::max(V::load(xr + j), vmax);  // NaN ignored
      if (rem) vmax = V::max(V::load_tail(xr + full, rem, -kInf), vmax);
      mx[l] = V::hmax(vmax);
      Kahan2<V> sum;
      Reg<V> count = V::set1(0.0);
      row_rel_sums<V, true>(xr, n, V::set1(lane_finite(mx[l]) ? mx[l] : 0.0), sum, count);
      V::store(part + l * W, V::add(V::sub(sum.s[0], sum.c[0]), V::sub(sum.s[1], sum.c[1])));
      V::store(cnt + l * W, count);
    }
    // Per lane l (row r0 + l): rest, k (a sum of small integers: exact).
    const Reg<V> rest = column_sums<V>(part);
    const Reg<V> k = column_sums<V>(cnt);
    const Reg<V> vmx = V::load(mx);
    const auto bad = V::mask_or(V::notfinite(vmx), V::notfinite(rest));
    const Reg<V> z = V::select(bad, V::set1(0.0), V::add(V::sub(k, V::set1(1.0)), rest));
    V::store(log_s, log1p_small<V>(z));
    double badv[W];
    V::to_array(V::select(bad, V::set1(1.0), V::set1(0.0)), badv);
    for (size_t l = 0; l < g; ++l) {
      flag[r0 + l] = badv[l] != 0.0;
      if (flag[r0 + l]) continue;
      // y = (x - max) - log S, as the group kernel: x - max is exact near
      // the max (Sterbenz) and the result is never positive.
      const double* xr = x + (r0 + l) * n;
      double* yr = y + (r0 + l) * n;
      const Reg<V> m = V::set1(mx[l]), ls = V::set1(log_s[l]);
      for (size_t j = 0; j < full; j += W) V::store(yr + j, V::sub(V::sub(V::load(xr + j), m), ls));
      if (rem) V::store_tail(yr + full, V::sub(V::sub(V::load_tail(xr + full, rem, 0.0), m), ls), rem);
    }
  }
}
