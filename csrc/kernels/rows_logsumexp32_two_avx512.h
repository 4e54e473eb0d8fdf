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

void lse_rows_two_table(const float* x, float* out, float* sign, size_t rows, unsigned char* flag) {
  using VN = F32x16;
  using VW = F64x8;
  constexpr size_t W = 16;
  for (size_t r = 0; r < rows; r += W) {
    const size_t g = rows - r < W ? rows - r : W;
    Reg<VN> a, b;
    load_two<VN>(x + 2 * r, g, a, b);
    Reg<VW> m[2], lo[2], lse[2];
    VN::widen(VN::max(a, b), m[0], m[1]);
    VN::widen(VN::min(a, b), lo[0], lo[1]);
    uint32_t fails = special_two<VN>(a, b);
    for (size_t h = 0; h < 2; ++h) {
      const Reg<VW> e = table_term<VW, 5>(VW::sub(lo[h], m[h]));
      lse[h] = VW::add(m[h], LseTwoLog::log1p(e));
      const Reg<VW> size = VW::max(lse[h], VW::sub(VW::set1(0.0), lse[h]));
      fails |= uint32_t(VW::not_le(VW::set1(0x1p-16), size)) << (8 * h);  // also NaN
    }
    const Reg<VN> res = VN::narrow(lse[0], lse[1]);
    if (g == W && !fails) {
      VN::store(out + r, res);
      std::memset(flag + r, 0, W);
      if (sign) VN::store(sign + r, VN::set1(1.0));
      continue;
    }
    // The batch's last rows, or a step with a row to leave: lane by lane.
    alignas(64) float v[W];
    VN::store(v, res);
    for (size_t k = 0; k < g; ++k) {
      const bool ok = !((fails >> k) & 1u);
      flag[r + k] = !ok;
      if (ok) {
        out[r + k] = v[k];
        if (sign) sign[r + k] = 1.0f;
      }
    }
  }
}
