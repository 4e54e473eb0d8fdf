// float32 logsumexp of short rows one row at a time, whole vectors along the
// row (softmax's layout, rows_direct.h): included by rows_generic.h (its
// anonymous namespace, lane types, rel_term, Kahan2 and log1p_small) on lane
// types with the float32 table exp (expsum_table32.h: AVX-512, AVX2, NEON).
// No transposes in or out, no per-row call, context or chunking: per row a
// max pass, then the per-row kernel's float32 table-exp terms exp(x) 2^-e
// (e = floor(max log2 e), so the max's term is in [1, 2) and no block can
// overflow), added in float32 a block of kBlockVectors vectors at a time
// (a balanced tree) and the block sums in float64 lanes (exact widening);
// the log1p and the certification go one vector per WW rows (WW = the
// float64 lane count). Rows from LseDirectRange's fused_min_n take their
// max in the previous row's loop over its terms (Fused), so that one loop
// streams a row in from memory while it adds the terms of the row before,
// in L1: the sets' maxima first left the max pass's memory time and the
// terms' arithmetic one after the other.
//
// Accuracy (SPEC: float32 within 1 ulp), three tiers per row:
//  1. The table sum S 2^e: each term within Table32Exp::kErrUnits u
//     (u = 2^-24; 1.52u with the one-float 16-entry table of AVX-512 and
//     NEON and q of degree 3 for rows from kLseCubicMinN, one permute and
//     13 vector operations per vector (degree 4, 1.35u: 14); 1.45u with
//     AVX2's one-float 8-entry table, the 16-entry one's even entries, and
//     degree 4), each through at most log2 kBlockVectors
//     float32 adds (gamma_d(u), Higham sec. 4.2: term by term for any order
//     of adds of terms >= 0), then fewer than kMaxWideAdds float64 adds per
//     lane, and terms flushed below 2^-126 of the reference (< n 2^-126 of
//     S >= 1): relative error table_err(). lse = e ln2 + log1p(S - 1)
//     (e ln2_hi31 exact, log1p_small ~1.5 * 2^-53 relative, two float64
//     additions; log S < log 2n <= 10.4 for rows up to kLseDirectMaxN, so
//     that these stay below 2^-53 (2 |lse| + 2.5 log S) + 2^-60) is then
//     within 1.01 table_err() + 2^-50 (|lse| + 8), and
//     is kept where every value within that rounds to the float32 result or
//     to a neighbour (f32_rounding_fails: certified_f32, as the per-row
//     path's certified(), in the lanes): with the 4-vector blocks (1.01
//     table_err(): 3.56u or 3.39u on AVX-512 and NEON, 3.49u on AVX2) every row
//     with |lse| >= 2 (float32 spacing 4u and more) but a few just above
//     a power of two.
//     AVX2 took the table pair (hi + lo, 1.23u, 3.27u) until the one-float
//     table's one permute and one add fewer per vector measured faster
//     (AMD EPYC Zen 3, 2 vCPUs shared with other jobs, load 9-12: 1 Mi-
//     element batches, 1 thread, min of 200 calls, 3 interleaved rounds,
//     ns per element pair / one-float: n = 24 1.21 / 1.21, n = 32 0.96 /
//     0.88, n = 64 0.735 / 0.648, n = 100 0.650 / 0.571, n = 128 0.600 /
//     0.502, n = 256 0.533 / 0.449; callgrind instructions per element
//     n = 32 7.81 / 7.20, n = 128 4.51 / 4.07, n = 256 3.96 / 3.55).
//  2. A row that tier 1 cannot certify (|lse| small) or whose max lies
//     beyond the table's range (|max| > kTable32Limit): S - 1 = (k - 1) +
//     rest relative to the max in float64 lanes, the degree-11 exp and
//     Kahan2 sums, as the group kernel's uncertified groups
//     (lse_plain_group): lse = max + log1p(S - 1) within 2^-49 log S, within
//     the contract where |lse| >= 2^-23 log S.
//  3. Rows below that (lse cancels near 0), NaN, +-inf and all -inf rows are
//     flagged and left unwritten for the per-row path, as the group kernel
//     flags them.
// Term vectors added in float32 before their sum is widened: log2 of it
// float32 adds per term.
constexpr size_t kBlockVectors = 4;
constexpr int kBlockAdds = 2;
static_assert(size_t(1) << kBlockAdds == kBlockVectors, "a balanced tree");
// Longest row the bounds below cover (LseDirectRange's max_n at most):
// S < 2n stays within log1p_small's range (1 + z < 2^15), and the
// float64 adds and flushed terms it allows (kMaxWideAdds, table_err) add
// 2^-39 and 2^-104 relative, nothing beside the terms' 1.35-1.52 * 2^-24.
constexpr size_t kLseDirectMaxN = 16384;
static_assert(2 * kLseDirectMaxN <= (1 << 15), "log1p_small's range");
// Bound on the float64 additions a lane's value goes through: block sums
// (fewer than kLseDirectMaxN of them), the halves and the lane sum.
constexpr double kMaxWideAdds = kLseDirectMaxN + 16;

// Relative error bound of tier 1's S for the table X (see the header).
template <class X>
constexpr double table_err() {
  constexpr double u = 0x1p-24;
  const double terms = (1.0 + X::kErrUnits * u) * (1.0 + kBlockAdds * u / (1.0 - kBlockAdds * u)) *
                           (1.0 + kMaxWideAdds * 0x1p-53 / (1.0 - kMaxWideAdds * 0x1p-53)) -
                       1.0;
  // The one-float table's sum is multiplied by its scale's rounded
  // reciprocal (two more roundings); the flushed terms, or those raised to
  // the clamp's (below 2^-119 each, table_lane_sums; the tail's padding
  // lanes too).
  return terms + 0x1p-51 + (kLseDirectMaxN + 64) * 0x1p-118;
}

// The row's max (NaN ignored; -inf for no entry). ahead > 0: the lines
// `ahead` elements further on are prefetched, one per 64 bytes of the row
// (consecutive rows' prefetches then cover every line between them).
template <class VN>
inline double row_max(const float* x, size_t n, size_t ahead = 0) {
  constexpr size_t W = VN::width;
  const size_t full = n - n % W, rem = n % W;
  Reg<VN> m0 = VN::set1(-kInf), m1 = VN::set1(-kInf);
  size_t j = 0;
  for (; j + 2 * W <= full; j += 2 * W) {
    if (ahead) prefetch_block<2 * W * sizeof(float)>(x + j + ahead);
    m0 = VN::max(VN::load(x + j), m0);
    m1 = VN::max(VN::load(x + j + W), m1);
  }
  if (ahead)
    for (size_t b = j * sizeof(float); b < n * sizeof(float); b += 64)
      SSM_PREFETCH(reinterpret_cast<const char*>(x + ahead) + b);
  if (j < full) m0 = VN::max(VN::load(x + j), m0);
  if (rem) m1 = VN::max(VN::load_tail(x + full, rem, -kInf), m1);
  return VN::hmax(VN::max(m0, m1));
}

// Tier 1 of a row whose max is within the table's range: float64 lanes that
// add up to kScale S, S = sum exp(x) 2^-e (NaN if the row holds one),
// e = floor(max log2 e). The lanes are added across once per set of rows
// (logsumexp_rows_direct), not per row.
// With Next, the same loop also takes the max of the row that follows
// (next, n elements; row_max's result into next_max, its lines prefetched
// `ahead` further on as row_max's): that row's loads from memory then
// overlap this row's terms, whose loads hit the lines the previous loop
// brought in.
template <class VN, class X, bool Next = false>
inline Reg<typename VN::wide> table_lane_sums(const float* x, size_t n, const X& texp, double e,
                                              const float* next = nullptr, double* next_max = nullptr,
                                              size_t ahead = 0) {
  using VW = typename VN::wide;
  constexpr size_t W = VN::width, B = kBlockVectors;
  const size_t full = n - n % W, rem = n % W;
  [[maybe_unused]] Reg<VN> m0 = VN::set1(-kInf), m1 = VN::set1(-kInf);
  // The next row's entries at j (NaN ignored: max returns its second operand).
  auto next_at = [&](size_t j, Reg<VN>& m) SSM_INLINE {
    if constexpr (Next) m = VN::max(VN::load(next + j), m);
  };
  // term() gives exp(x) 2^-floor(k); this takes it to 2^-e. Below the
  // table's clamp (-inf too) the term flushes to 0; a NaN stays NaN (max
  // returns its second operand).
  [[maybe_unused]] const Reg<VN> bias = VN::set1(e + X::kBias);
  // Where VN has pow2_table32 (AVX2), t's bits give 2^(floor(k/T) - e)
  // (magic kMagic + 127 - e: t holds the biased exponent 127 + floor(k/T)
  // - e), three operations for the scale's five. The clamp at (e - 120) ln2
  // (above kLow: |max| <= kTable32Limit) keeps that exponent in [6, 128]
  // (x log2 e - e in [-120.01, 1.07]): a term below the clamp, -inf too,
  // becomes one below 2^-119 instead of flushing (table_err); a NaN stays
  // NaN and poisons the product.
  constexpr bool kBits = HasPow2Table32<VN>::value;
  [[maybe_unused]] const Reg<VN> magic = VN::set1(static_cast<float>(X::kMagic + 127.0 - e));
  const Reg<VN> low =
      VN::set1(kBits ? static_cast<float>((e - 120.0) * 0x1.62e42fefa39efp-1) : static_cast<float>(X::kLow));
  auto term = [&](Reg<VN> raw) SSM_INLINE {
    Reg<VN> k;
    if constexpr (kBits) {
      Reg<VN> t;
      const Reg<VN> v = texp.term_biased(VN::max(low, raw), magic, k, t);
      return VN::mul(v, VN::pow2_table32(t));
    } else {
      const Reg<VN> v = texp.term(VN::max(low, raw), k);
      return VN::scale2_acc(v, VN::sub(k, bias));
    }
  };
  Reg<VW> lo = VW::set1(0.0), hi = VW::set1(0.0);
  auto fold = [&](Reg<VN> q) SSM_INLINE {
    Reg<VW> a, b;
    VN::widen(q, a, b);
    lo = VW::add(lo, a);
    hi = VW::add(hi, b);
  };
  size_t j = 0;
  for (; j + B * W <= full; j += B * W) {
    if constexpr (Next) {
      if (ahead) prefetch_block<B * W * sizeof(float)>(next + j + ahead);
      SSM_UNROLL for (size_t b = 0; b < B; b += 2) {
        next_at(j + b * W, m0);
        next_at(j + b * W + W, m1);
      }
    }
    Reg<VN> t[B];
    SSM_UNROLL for (size_t b = 0; b < B; ++b) t[b] = term(VN::load(x + j + b * W));
    fold(tree_sum<VN, 0, B>(t));
  }
  if constexpr (Next)
    if (ahead)
      for (size_t b = j * sizeof(float); b < n * sizeof(float); b += 64)
        SSM_PREFETCH(reinterpret_cast<const char*>(next + ahead) + b);
  // The last vectors (fewer than B, and the tail) in pairs: one float32 add.
  for (; j + 2 * W <= full; j += 2 * W) {
    next_at(j, m0);
    next_at(j + W, m1);
    fold(VN::add(term(VN::load(x + j)), term(VN::load(x + j + W))));
  }
  if (j < full) {
    next_at(j, m0);
    Reg<VN> t = term(VN::load(x + j));
    if (rem) t = VN::add(t, term(VN::load_tail(x + full, rem, -kInf)));
    fold(t);
  } else if (rem) {
    fold(term(VN::load_tail(x + full, rem, -kInf)));
  }
  if constexpr (Next) {
    if (rem) m1 = VN::max(VN::load_tail(next + full, rem, -kInf), m1);
    *next_max = VN::hmax(VN::max(m0, m1));
  }
  return VW::add(lo, hi);
}

// Tier 2: S - 1 = (k - 1) + rest of a row relative to its finite max mx in
// float64 lanes (the degree-11 exp, Kahan2 sums; NaN if the row holds one).
template <class VW>
inline double wide_sum_minus_one(const float* x, size_t n, double mx) {
  constexpr size_t WW = VW::width;
  Kahan2<VW> sum;
  Reg<VW> count = VW::set1(0.0);
  const Reg<VW> m = VW::set1(mx);
  row_sums<VW>(
      x, n, sum, count, [&](Reg<VW> xv) SSM_INLINE { return VW::nonzero(VW::sub(xv, m)); },
      [&](Reg<VW> xv) SSM_INLINE { return rel_term<VW, false>(xv, m, VW::sub(xv, m)); });
  double part[WW], cnt[WW];
  sum.totals(part);
  VW::to_array(count, cnt);
  double rest = 0.0, k = 0.0;
  for (size_t l = 0; l < WW; ++l) {
    rest += part[l];
    k += cnt[l];
  }
  return (k - 1.0) + rest;
}

// Lanes of a = |lse| whose float32 rounding the bound err does not certify:
// certified_f32 lane by lane (rounding to nearest is symmetric, so a for
// lse). f = float(a) (narrow32); the float above f is f + ulp32(f)
// (ulp32_above), the one below f - ulp32(f), or f - ulp32(f) / 2 where f is a
// power of two (ulp32(f) 2^23 = f); every value within err rounds to f or
// a neighbour where float(a - err) and float(a + err) are those or f. The
// test of 2^-24 |lse| against err (f32_spacing_fails) missed rows by up to
// 2x: on AVX-512 (bound 3.56u) those with |lse| of 2-3.56, 15% of N(0, 1)
// rows of 28 and 4% of 32, each then taking the scalar test and leaving
// its set of 16 to be stored lane by lane. NaN and infinite lanes fail.
template <class VW>
inline typename VW::mask f32_rounding_fails(Reg<VW> a, Reg<VW> err) {
  const Reg<VW> f = narrow32<VW>(a);
  const Reg<VW> above = ulp32_above<VW>(f);
  const Reg<VW> below = VW::select(VW::gt(f, VW::mul(above, VW::set1(0x1p23))), above, VW::mul(above, VW::set1(0.5)));
  return VW::mask_or(VW::not_le(VW::sub(f, narrow32<VW>(VW::sub(a, err))), below),
                     VW::not_le(VW::sub(narrow32<VW>(VW::add(a, err)), f), above));
}

// log_s[l] = lo[l] + log1p(z[l]), lse[l] = hi[l] + log_s[l], in float64 lanes.
template <class VW>
inline void lse_lanes(const double* hi, const double* lo, const double* z, double* log_s, double* lse) {
  const Reg<VW> ls = VW::add(VW::load(lo), log1p_small<VW>(VW::load(z)));
  VW::to_array(ls, log_s);
  VW::to_array(VW::add(VW::load(hi), ls), lse);
}

// floor(max log2 e) of the lanes (of the product as rounded), or of one
// max (the same arithmetic in a vector: the same e).
template <class VW>
inline Reg<VW> floor_log2e(Reg<VW> vmx) {
  const Reg<VW> t = VW::mul(vmx, VW::set1(kLog2e)), r = VW::round(t);
  return VW::select(VW::gt(r, t), VW::sub(r, VW::set1(1.0)), r);
}
template <class VW>
inline double floor_log2e(double mx) {
  double lanes[VW::width];
  VW::to_array(floor_log2e<VW>(VW::set1(mx)), lanes);
  return lanes[0];
}

// Rows go in sets of K G (G the float64 lane count): first the set's
// maxima, then each row's table lane sums (no row waits on its own max's
// lane reduction), then per G rows their lane sums transposed and added
// across (a balanced tree of float64 adds, as the per-row lane sum's), and
// e ln2 + log1p(S - 1) and the certificate in one vector, the K vectors'
// chains side by side (one set's chain, two divisions and the series, was
// a third of a batch of rows of 32 on AVX-512); a set whose rows all pass
// stores its results at once. The rest go lane by lane through tiers 1-3.
constexpr size_t kSetVectors = 2;

// Fused (rows from fused_min_n): each row's table sums also take the next row's max
// (table_lane_sums' Next), the row's e from its max alone (the same e as
// the set's vector), so the row's loads from memory overlap the previous
// row's terms, which read L1; the same bits.
template <class VN, int Degree, bool Fused = false>
void logsumexp_rows_direct_sets(const float* x, float* out, float* sign, size_t rows, size_t n, unsigned char* flag) {
  using VW = typename VN::wide;
  using X = Table32Exp<VN, false, Degree>;
  constexpr size_t G = VW::width, K = kSetVectors, S = K * G;
  const X texp;
  const double err1 = 1.01 * table_err<X>();
  // The max pass is the first to touch a set's rows, and its loads stalled
  // on memory while the sums that follow left the line fill idle (a third
  // of a batch's cpu-clock samples on the max loop at n = 64, AVX-512): the
  // max pass prefetches prefetch_distance() ahead.
  const size_t ahead = prefetch_distance(rows * n * sizeof(float)) / sizeof(float);
  // Fused: the max of the batch's next row.
  double next_max = Fused && rows ? row_max<VN>(x, n, ahead) : 0.0;
  for (size_t r0 = 0; r0 < rows; r0 += S) {
    const size_t g = rows - r0 < S ? rows - r0 : S;
    alignas(64) double mx[S], eref[S], part[S * G], cols[S * G];
    alignas(64) double hi[S], lo[S], z[S], log_s[S], lse[S], pass[S], nan_lane[S];
    // Lanes >= g, and rows beyond the table's range (+-inf, all -inf too),
    // are ordinary lanes of S = 1 in tier 1, their results unused.
    bool table[S];
    if constexpr (Fused) {
      for (size_t l = 0; l < S; ++l) {
        mx[l] = l < g ? next_max : 0.0;
        table[l] = mx[l] >= -kTable32Limit && mx[l] <= kTable32Limit;
        eref[l] = table[l] ? floor_log2e<VW>(mx[l]) : 0.0;
        if (l >= g) {
          VW::store(part + l * G, VW::set1(0.0));
          part[l * G] = X::kScale;
          continue;
        }
        const float* row = x + (r0 + l) * n;
        const bool more = r0 + l + 1 < rows;
        if (table[l] && more) {
          VW::store(part + l * G, table_lane_sums<VN, X, true>(row, n, texp, eref[l], row + n, &next_max, ahead));
        } else {
          if (table[l]) {
            VW::store(part + l * G, table_lane_sums<VN>(row, n, texp, eref[l]));
          } else {
            VW::store(part + l * G, VW::set1(0.0));
            part[l * G] = X::kScale;
          }
          if (more) next_max = row_max<VN>(row + n, n, ahead);
        }
      }
    }
    for (size_t l = 0; l < S && !Fused; ++l) {
      mx[l] = l < g ? row_max<VN>(x + (r0 + l) * n, n, ahead) : 0.0;
      table[l] = mx[l] >= -kTable32Limit && mx[l] <= kTable32Limit;
    }
    for (size_t k = 0; k < K && !Fused; ++k) {
      // e = floor(max log2 e) in one vector (std::floor is a library call
      // per row); 0 beyond the table's range.
      const Reg<VW> vmx = VW::load(mx + k * G);
      const auto beyond = VW::not_le(VW::max(vmx, VW::sub(VW::set1(0.0), vmx)), VW::set1(kTable32Limit));
      VW::store(eref + k * G, VW::select(beyond, VW::set1(0.0), floor_log2e<VW>(vmx)));
    }
    for (size_t l = 0; l < S && !Fused; ++l) {
      if (l < g && table[l]) {
        VW::store(part + l * G, table_lane_sums<VN>(x + (r0 + l) * n, n, texp, eref[l]));
      } else {
        VW::store(part + l * G, VW::set1(0.0));
        part[l * G] = X::kScale;
      }
    }
    typename VW::mask fails[K];
    bool all = true;
    for (size_t k = 0; k < K; ++k) {
      transpose_block<VW>(part + k * G * G, G, cols + k * G * G, G);
      Reg<VW> c[G];
      for (size_t i = 0; i < G; ++i) c[i] = VW::load(cols + (k * G + i) * G);
      Reg<VW> sum = tree_sum<VW, 0, G>(c);
      // S = sum / kScale, by its rounded reciprocal (table_err).
      if constexpr (X::kScale != 1.0) sum = VW::mul(sum, VW::set1(1.0 / X::kScale));
      // A NaN row's z is NaN: 0 for log1p, the row flagged below.
      Reg<VW> vz = VW::sub(sum, VW::set1(1.0));
      const auto nan = VW::notfinite(vz);
      vz = VW::select(nan, VW::set1(0.0), vz);
      const Reg<VW> ve = VW::load(eref + k * G);
      // e ln2_hi31 is exact (|e| < 2^22).
      const Reg<VW> ls = VW::add(VW::mul(ve, VW::set1(ExpCoeffs<double>::ln2_lo31)), log1p_small<VW>(vz));
      const Reg<VW> v = VW::add(VW::mul(ve, VW::set1(ExpCoeffs<double>::ln2_hi31)), ls);
      // Tier 1's certificate first by the lanes' float32 spacing
      // (f32_spacing_fails); where it misses a lane (by up to 2x), exactly
      // (f32_rounding_fails; made for every vector, its four narrowings
      // cost 0.02-0.06 ns per element on AVX-512 rows of 28-64 that all
      // pass the first: 4 Mi-element batches, 1 thread, two interleaved
      // runs).
      const Reg<VW> size = VW::max(v, VW::sub(VW::set1(0.0), v));
      const Reg<VW> bound = VW::fmadd(size, VW::set1(0x1p-50), VW::set1(err1 + 0x1p-47));
      fails[k] = VW::mask_or(nan, f32_spacing_fails<VW>(bound, size));
      if (VW::any(fails[k])) fails[k] = VW::mask_or(nan, f32_rounding_fails<VW>(size, bound));
      VW::store(nan_lane + k * G, VW::select(nan, VW::set1(1.0), VW::set1(0.0)));
      VW::store(lse + k * G, v);
      all = all && !VW::any(fails[k]);
    }
    for (size_t l = 0; l < g; ++l) all = all && table[l];
    if (all) {
      for (size_t l = 0; l < g; ++l) {
        out[r0 + l] = static_cast<float>(lse[l]);
        flag[r0 + l] = 0;
        if (sign) sign[r0 + l] = 1.0f;
      }
      continue;
    }
    for (size_t k = 0; k < K; ++k) VW::store(pass + k * G, VW::select(fails[k], VW::set1(0.0), VW::set1(1.0)));
    // 0: nothing left to do (no row, finished or flagged), 2: tier 2.
    int tier[S];
    bool wide = false;
    for (size_t l = 0; l < S; ++l) {
      tier[l] = 0;
      hi[l] = lo[l] = z[l] = 0.0;
      if (l >= g) continue;
      const bool nan_row = nan_lane[l] != 0.0;
      flag[r0 + l] = 0;
      if (table[l] && !nan_row && pass[l] != 0.0) {
        out[r0 + l] = static_cast<float>(lse[l]);
        continue;
      }
      // Tier 2: rows tier 1 cannot certify, and those beyond the table's
      // range (a NaN z: a NaN in the row; +-inf or all -inf: flagged).
      if ((table[l] && !nan_row) || (!table[l] && lane_finite(mx[l]))) {
        z[l] = wide_sum_minus_one<VW>(x + (r0 + l) * n, n, mx[l]);
        if (z[l] == z[l]) {
          hi[l] = mx[l];
          tier[l] = 2;
          wide = true;
          continue;
        }
        z[l] = 0.0;
      }
      flag[r0 + l] = 1;  // +-inf, all -inf, NaN
    }
    if (wide) {
      for (size_t k = 0; k < K; ++k)
        lse_lanes<VW>(hi + k * G, lo + k * G, z + k * G, log_s + k * G, lse + k * G);
      for (size_t l = 0; l < g; ++l) {
        if (tier[l] != 2) continue;
        // Near lse = 0 (as lse_plain_group): the per-row path's double-double sum.
        if (!lane_finite(lse[l]) || log_s[l] > 0x1p23 * std::fabs(lse[l])) {
          flag[r0 + l] = 1;
          continue;
        }
        out[r0 + l] = static_cast<float>(lse[l]);
      }
    }
    if (sign)
      for (size_t l = 0; l < g; ++l)
        if (!flag[r0 + l]) sign[r0 + l] = 1.0f;
  }
}

// Rows from this length on take q of degree 3 where the table has 16
// entries (AVX-512, NEON; AVX2's 8-entry table keeps degree 4: |r| up to
// ln2/16, where degree 3 would truncate 2.5u). Its bound (3.56u against
// 3.39u) leaves the spacing test to miss |lse| of 3.39-3.56, 11% of N(0, 1)
// rows of 28 and 3% of 32, whose exact test then cost more than the
// operation saved: 4 Mi-element batches, 1 thread, ns per element, medians
// of 6 interleaved runs on a loaded machine, degree 4 / 3: AVX-512 n = 28
// 0.695 / 0.709, n = 32 0.543 / 0.572, n = 48 0.455 / 0.454, n = 128 0.347
// / 0.329, n = 256 0.344 / 0.321.
constexpr size_t kLseCubicMinN = 48;

// fused_min_n (at least kLseCubicMinN): rows from it on go Fused.
template <class VN>
void logsumexp_rows_direct(const float* x, float* out, float* sign, size_t rows, size_t n, unsigned char* flag,
                           size_t fused_min_n) {
  constexpr int kDegree = VN::exp_table32_size >= 16 ? 3 : 4;
  if (n >= fused_min_n) return logsumexp_rows_direct_sets<VN, kDegree, true>(x, out, sign, rows, n, flag);
  if (n >= kLseCubicMinN) return logsumexp_rows_direct_sets<VN, kDegree>(x, out, sign, rows, n, flag);
  logsumexp_rows_direct_sets<VN, 4>(x, out, sign, rows, n, flag);
}
