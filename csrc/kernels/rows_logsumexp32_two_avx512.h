// float32 logsumexp of rows of two on AVX-512, unweighted: included by
// rows_avx512.cpp after rows_generic.h (its anonymous namespace, lane types,
// load_two, special_two, table_term).
//
// Sixteen rows a step: their entries split into a vector of first and one of
// second entries (load_two), m = the larger, d = smaller - m <= 0 in float64
// halves (exact wherever the term matters), lse = m + L with L =
// log(1 + e), e = exp(d) in (0, 1], and no division: e by table_term to
// degree 5 (within 2^-42.2 relative; d raised to -708 first: e < 2^-1021
// for any d below), L by LseTwoLog (within 2^-42.2). e's error
// moves L by at most e / (1 + e) 2^-42.2 <= 2^-43.2, d's rounding (2^-53
// |d|) by |d| e / (1 + e) 2^-53 < 2^-54: L is within 2^-41.5 of
// log1p(exp(d)), and m + L rounds within 2^-53 |lse|. (2^24 + 1) (2^-41.5
// + 2^-53 |lse|) <= |lse| for |lse| >= 2^-17.4, so a lane with |lse| >=
// 2^-16 is certified within float32's spacing (f32_spacing_fails: its
// float32 rounding is the exact result's or a neighbour). Lanes below that
// (m + L cancels) and the rows special_two finds (NaN, +inf, both -inf)
// are left flagged for the per-row path; one -inf entry is an ordinary row.
// A row's bits depend on its two entries only, wherever it sits in the
// batch.
// log(1 + e) for 0 <= e <= 1 without rounding 1 + e: i = round(15 e) in
// [0, 15], k_i = i c (c = 1/15 rounded, k_i the exact product), q = (e -
// k_i) / (1 + k_i) as one fma and a product by the tabled 1 / (1 + k_i)
// (within 3 2^-53 of itself, |q| <= 1/30), log(1 + k_i) (tabled, within
// 2^-54) + log1p(q), the series to degree 7 (the tail |q|^8 / 8 < 2^-42.3;
// i = 0: q = e exactly, no table term). Against log_table(1 + e) (its
// exponent and mantissa split, E ln2) 0.89-0.92x the kernel's time (Zen 5,
// 4 Mi-element batches, fastest of 60 calls, two runs).
struct LseTwoLog {
  // 1 / (1 + k_i) and log(1 + k_i), k_i = i * step, rounded to nearest
  // (mpmath, 200 bits).
  alignas(64) static constexpr double inv[16] = {
      0x1.0000000000000p+0, 0x1.e000000000000p-1, 0x1.c3c3c3c3c3c3cp-1, 0x1.aaaaaaaaaaaabp-1,
      0x1.9435e50d79436p-1, 0x1.8000000000000p-1, 0x1.6db6db6db6db7p-1, 0x1.5d1745d1745d1p-1,
      0x1.4de9bd37a6f4ep-1, 0x1.4000000000000p-1, 0x1.3333333333333p-1, 0x1.2762762762762p-1,
      0x1.1c71c71c71c72p-1, 0x1.1249249249249p-1, 0x1.08d3dcb08d3ddp-1, 0x1.0000000000000p-1};
  alignas(64) static constexpr double log[16] = {
      0.0,                  0x1.08598b59e3a06p-4, 0x1.005588ad375adp-3, 0x1.7565011e49676p-3,
      0x1.e41fccb76b0d7p-3, 0x1.269621134db92p-2, 0x1.588c2d9133490p-2, 0x1.882f1ef83ed44p-2,
      0x1.b5b3e24235e88p-2, 0x1.e148a1a2726cdp-2, 0x1.058aefa811452p-1, 0x1.199fac68b4ab7p-1,
      0x1.2cf25fad8f1c3p-1, 0x1.3f91275240811p-1, 0x1.5188a4a02d7ffp-1, 0x1.62e42fefa39efp-1};
  static constexpr double step = 0x1.1111111111111p-4;
  static __m512d log1p(__m512d e) {
    const __m512d s = _mm512_fmadd_pd(e, _mm512_set1_pd(15.0), _mm512_set1_pd(0x1.8p52));  // 1.5 2^52 + i
    const __m512d u = _mm512_fnmadd_pd(_mm512_sub_pd(s, _mm512_set1_pd(0x1.8p52)), _mm512_set1_pd(step), e);
    const __m512i i = _mm512_castpd_si512(s);  // vpermt2pd reads the low 4 bits
    const __m512d q = _mm512_mul_pd(u, _mm512_permutex2var_pd(_mm512_load_pd(inv), i, _mm512_load_pd(inv + 8)));
    const __m512d lc = _mm512_permutex2var_pd(_mm512_load_pd(log), i, _mm512_load_pd(log + 8));
    return _mm512_add_pd(lc, F64x8::log1p_series(q));
  }
};

// S steps of 16 rows from x on (the last of them g rows, g <= 16: lanes past
// it are rows of zeros, not stored) with every stage's 2 S float64 halves
// side by side: one step's chain from its entries to its certificate (d,
// the exp, the log, ~25 dependent operations) left its lanes waiting behind
// it. fails: each step's lanes to flag (a bit per row); returns whether
// there are any. The certificate is taken on the float32 results: |lse| >=
// 2^-16 rounds to |res| >= 2^-16, and |res| >= 2^-16 puts |lse| above
// 2^-16 (1 - 2^-24), inside the bound above; NaN, +-inf results (an entry
// +inf, both -inf) fail it, and a NaN entry (which max and min may drop)
// is caught on the entries.
template <size_t S>
SSM_INLINE inline bool lse_two_table_steps(const float* x, size_t g, Reg<F32x16> (&res)[S], uint32_t (&fails)[S]) {
  using VN = F32x16;
  using VW = F64x8;
  constexpr size_t W = 16;
  Reg<VN> a[S], b[S];
  Reg<VW> m[2 * S], lo[2 * S], e[2 * S], lse[2 * S];
  for (size_t s = 0; s < S; ++s) {
    load_two<VN>(x + 2 * W * s, s + 1 == S ? g : W, a[s], b[s]);
    VN::widen(VN::max(a[s], b[s]), m[2 * s], m[2 * s + 1]);
    VN::widen(VN::min(a[s], b[s]), lo[2 * s], lo[2 * s + 1]);
  }
  for (size_t q = 0; q < 2 * S; ++q) e[q] = table_term<VW, 5>(VW::sub(lo[q], m[q]));
  for (size_t q = 0; q < 2 * S; ++q) lse[q] = VW::add(m[q], LseTwoLog::log1p(e[q]));
  uint32_t any = 0;
  for (size_t s = 0; s < S; ++s) {
    res[s] = VN::narrow(lse[2 * s], lse[2 * s + 1]);
    const __mmask16 small = _mm512_cmp_ps_mask(_mm512_abs_ps(res[s]), _mm512_set1_ps(0x1p-16f), _CMP_NGE_UQ);
    const __mmask16 inf = _mm512_fpclass_ps_mask(res[s], 0x18);
    fails[s] = uint32_t(small | inf | _mm512_cmp_ps_mask(a[s], b[s], _CMP_UNORD_Q));
    any |= fails[s];
  }
  return any != 0;
}

// Rows r..r + g - 1 from res, lane by lane, the lanes in fails flagged.
inline void lse_two_store_lanes(Reg<F32x16> res, uint32_t fails, size_t g, float* out, float* sign,
                                unsigned char* flag) {
  alignas(64) float v[16];
  F32x16::store(v, res);
  for (size_t k = 0; k < g; ++k) {
    const bool ok = !((fails >> k) & 1u);
    flag[k] = !ok;
    if (ok) {
      out[k] = v[k];
      if (sign) sign[k] = 1.0f;
    }
  }
}

// kLseTwoSteps steps at a time, then one; a set of steps with a row to flag
// lane by lane. Zen 5, 4 Mi-element batches, 1 thread, bench/ab_builds.py,
// 11 rounds, time / half as many steps at a time (medians, fastest
// processes): 2 steps 0.86, 0.86; 4 0.85, 0.82; 8 0.92, 0.90; 16 1.17, 1.23
// (softmax controls 0.98-1.01). The certificate on the float32 results in
// place of special_two and a compare per float64 half: 1.04, 1.00.
constexpr size_t kLseTwoSteps = 8;

void lse_rows_two_table(const float* x, float* out, float* sign, size_t rows, unsigned char* flag) {
  using VN = F32x16;
  constexpr size_t W = 16;
  auto steps = [&](size_t r, size_t g, auto count) SSM_INLINE {
    constexpr size_t S = decltype(count)::value;
    Reg<VN> res[S];
    uint32_t fails[S];
    if (!lse_two_table_steps<S>(x + 2 * r, g, res, fails) && g == W) {
      for (size_t s = 0; s < S; ++s) VN::store(out + r + s * W, res[s]);
      std::memset(flag + r, 0, S * W);
      if (sign)
        for (size_t s = 0; s < S; ++s) VN::store(sign + r + s * W, VN::set1(1.0));
      return;
    }
    for (size_t s = 0; s < S; ++s)
      lse_two_store_lanes(res[s], fails[s], s + 1 == S ? g : W, out + r + s * W, sign ? sign + r + s * W : nullptr,
                          flag + r + s * W);
  };
  size_t r = 0;
  for (; rows - r >= kLseTwoSteps * W; r += kLseTwoSteps * W)
    steps(r, W, std::integral_constant<size_t, kLseTwoSteps>());
  for (; r < rows; r += W) steps(r, rows - r < W ? rows - r : W, std::integral_constant<size_t, 1>());
}
