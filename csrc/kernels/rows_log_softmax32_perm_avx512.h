// float32 log_softmax of rows of 3 to Lsm32PermRange<F32x16>::max_n
// elements on AVX-512: included by rows_avx512.cpp after
// rows_softmax32_perm_avx512.h (its PermTables and perm_from_pairs, the
// anonymous namespace, lane types and rows_generic.h's arithmetic).
//
// A group of 16 rows of N elements is N whole vectors of x: its columns
// (element j of each row, one row per lane) come in by the softmax
// kernel's lane permutes, with no transposes, loads at stride n or L1
// buffers; from Lsm32PermRange's transpose_min_n on by a 16 x 16 register
// transpose instead (fewer shuffles there). The sums are
// log_softmax_group_regs' (the max's linear chain, ExpCoeffsMid's terms
// exp(x - max) in two float64 halves, the max's own
// entries counted apart, two chains by column parity), with the count in
// float32 lanes and the other terms added under its mask (the same
// values). log S = log1p((k - 1) + rest) by log1p_perm; out, each output
// vector is written from x's own layout, as log_softmax_group_regs'
// FromX: lane i of the group's vector o belongs to row (16 o + i) / N,
// whose max and log S one permute each puts in that lane, and y = (x +
// (-max)) - log S there (x - max exactly, -0 included), so no permutes
// back.
//
// Accuracy: as rows_generic.h's float32 log_softmax groups (terms within
// 2.1e-9, plain float64 sums, the three float32 roundings of the write);
// log1p_perm's series is within 2^-36 relative of log S where
// log1p_small's was within 2^-44.7, both far below the 2^-25 v the
// bound leaves. Every row of these lengths takes this arithmetic: a group
// whose rows are all ordinary is stored whole; a group with a row that is
// not ordinary (NaN, +-inf, all -inf) and the batch's last, partial group
// go through log_softmax_group_perm_masked (the same lanes' arithmetic:
// its missing rows read as zeros), which stores the ordinary rows and
// flags the others for the per-row path. So a row's bits do not depend on
// its neighbours or its place in the batch.

// Lanes' rows within the group for each output vector: lane i of vector o
// holds row (16 o + i) / N.
template <size_t N>
struct PermRowIndex {
  int32_t row[N][16] = {};
  constexpr PermRowIndex() {
    for (size_t o = 0; o < N; ++o)
      for (size_t i = 0; i < 16; ++i) row[o][i] = static_cast<int32_t>((16 * o + i) / N);
  }
};

// log(1 + z) in float64 lanes for z >= 0 (1 + z <= 17 here): t = 1 + z =
// 2^e mant, mant in [0.75, 1.5) (getexp, getmant: two operations where
// log1p_small's compare-and-halve steps took three per step), f = mant - 1
// (exact), or z itself where e = 0 (t < 1.5: z keeps all its bits there,
// so a dominant entry's -log1p(z) keeps its relative accuracy); log(1 + f)
// = 2 atanh(s), s = f / (2 + f), |s| <= 1/5, to degree 15 in s
// (log1p_small_series, 7 terms: the tail below w^7 / 17 / (1 - w) < 2^-36
// relative, w = s^2 <= 1/25).
SSM_INLINE inline __m512d log1p_perm(__m512d z) {
  using VW = F64x8;
  const __m512d one = VW::set1(1.0);
  const __m512d t = VW::add(one, z);
  const __m512d mant = _mm512_getmant_pd(t, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src);
  __m512d e = _mm512_getexp_pd(t);  // floor(log2 t); one more where mant is t / 2^(e + 1)
  e = _mm512_mask_add_pd(e, _mm512_cmp_pd_mask(mant, one, _CMP_LT_OQ), e, one);
  const __mmask8 near = _mm512_cmp_pd_mask(t, VW::set1(1.5), _CMP_LT_OQ);
  const __m512d f = _mm512_mask_sub_pd(z, static_cast<__mmask8>(~near), mant, one);
  return log1p_small_series<VW, 7>(_mm512_div_pd(f, VW::add(VW::set1(2.0), f)), e);
}

// exp(d) for d <= 0 in float64 lanes: mid_term's terms without its clamp
// at -708 (ExpCoeffsMid, the same n = round(d log2 e) by the same magic
// and reduction; 2^n by scalef, which flushes what is below the float64
// range). d >= -2 FLT_MAX for finite x: there n is huge, r = d - n ln2
// only the reduction's rounding (|r| < 2^80), p(r) finite (below 2^500)
// and the term 0. An x of -inf gives NaN here: the caller leaves those
// lanes out of the sum. Where d < -708 the term is exp(d) or 0 instead of
// mid_term's at most 2^-1020: at most N such terms move z by below
// 2^-1016, which no float32 result can see.
SSM_INLINE inline __m512d perm_term(__m512d d) {
  using C = ExpCoeffsMid;
  using VW = F64x8;
  constexpr double kMagic = 0x1.8p52 + 1023.0;
  const __m512d t = VW::fmadd(d, VW::set1(C::log2e), VW::set1(kMagic));
  const __m512d n = VW::sub(t, VW::set1(kMagic));
  return VW::scale2_acc(poly<VW, C>(poly_reduce<VW, C>(d, n)), n);
}

// A group's columns c: the float32 max (negated, for the write), log S
// (float32) and the lanes whose row is not ordinary. The max's own entries
// are counted in float32 lanes (the others: x < max, or NaN), the others'
// terms summed in two float64 halves under the same mask less the -inf
// entries (whose terms are 0; a max of -FLT_MAX leaves no finite value
// below every max to raise them to).
template <size_t N>
SSM_INLINE inline __mmask16 perm_row_terms(const Reg<F32x16> (&c)[N], Reg<F32x16>& neg_m, Reg<F32x16>& log_s) {
  using VN = F32x16;
  using VW = F64x8;
  Reg<VN> vmax = VN::set1(-kInf), others = VN::set1(0.0);
  for (size_t j = 0; j < N; ++j) vmax = VN::max(c[j], vmax);
  Reg<VW> m[2], sums[2][2];
  VN::widen(vmax, m[0], m[1]);
  neg_m = VN::sub(VN::set1(-0.0), vmax);
  for (size_t h = 0; h < 2; ++h) sums[h][0] = sums[h][1] = VW::set1(0.0);
  for (size_t j = 0; j < N; ++j) {
    const __mmask16 other = VN::not_le(vmax, c[j]);  // also NaN: it reaches the sum
    others = VN::add_where(other, others, VN::set1(1.0));
    const __mmask16 term = static_cast<__mmask16>(other & _mm512_cmp_ps_mask(c[j], VN::set1(-kInf), _CMP_NEQ_UQ));
    Reg<VW> xw[2];
    VN::widen(c[j], xw[0], xw[1]);
    for (size_t h = 0; h < 2; ++h) {
      Reg<VW>& acc = sums[h][j & 1];
      acc = _mm512_mask_add_pd(acc, static_cast<__mmask8>(term >> (8 * h)), acc, perm_term(VW::sub(xw[h], m[h])));
    }
  }
  // z = (k - 1) + rest, k = N - others (exact).
  Reg<VW> k_less1[2], v[2];
  VN::widen(VN::sub(VN::set1(static_cast<double>(N) - 1.0), others), k_less1[0], k_less1[1]);
  __mmask8 bad[2];
  for (size_t h = 0; h < 2; ++h) {
    const Reg<VW> rest = VW::add(sums[h][0], sums[h][1]);
    bad[h] = VW::mask_or(VW::notfinite(m[h]), VW::notfinite(rest));
    v[h] = log1p_perm(VW::add(k_less1[h], rest));
  }
  log_s = VN::narrow(v[0], v[1]);
  return static_cast<__mmask16>(bad[0] | (bad[1] << 8));
}

// The columns of the group whose N vectors are v.
template <size_t N>
SSM_INLINE inline void perm_columns(const Reg<F32x16> (&v)[N], Reg<F32x16> (&c)[N]) {
  alignas(64) static constexpr PermTables<N> kT{};
  for (size_t j = 0; j < N; ++j) c[j] = perm_from_pairs<N>(v, kT.in_idx[j], kT.in_mask[j]);
}

// Output vector o of a group: (x + (-max)) - log S, each lane's row's.
template <size_t N>
SSM_INLINE inline Reg<F32x16> perm_out(Reg<F32x16> xv, size_t o, Reg<F32x16> neg_m, Reg<F32x16> log_s) {
  alignas(64) static constexpr PermRowIndex<N> kRow{};
  const __m512i row = _mm512_load_si512(kRow.row[o]);
  return F32x16::sub(F32x16::add(_mm512_permutexvar_ps(row, neg_m), xv), _mm512_permutexvar_ps(row, log_s));
}

// A full group of 16 rows of N elements (16 N contiguous floats); false,
// nothing stored, if a row of it is not ordinary.
template <size_t N>
SSM_INLINE inline bool log_softmax_group_perm(const float* x, float* y) {
  Reg<F32x16> v[N], c[N], neg_m, log_s;
  for (size_t k = 0; k < N; ++k) v[k] = _mm512_loadu_ps(x + k * 16);
  perm_columns<N>(v, c);
  if (perm_row_terms<N>(c, neg_m, log_s)) return false;
  for (size_t o = 0; o < N; ++o) _mm512_storeu_ps(y + o * 16, perm_out<N>(v[o], o, neg_m, log_s));
  return true;
}

// The same for rows of transpose_min_n on, the columns by a 16 x 16
// register transpose of the rows loaded at stride N (F32x16::transpose: 64
// shuffles where the permutes took N (N + 1) / 2 permutes and N (N - 1) / 2
// blends), the output vectors from x's layout as above. The last row's
// load reads 16 - N floats past the group: the caller's bounds.
template <size_t N>
SSM_INLINE inline bool log_softmax_group_transposed(const float* x, float* y) {
  Reg<F32x16> v[16], c[N], neg_m, log_s;
  for (size_t l = 0; l < 16; ++l) v[l] = _mm512_loadu_ps(x + l * N);
  F32x16::transpose(v);
  for (size_t j = 0; j < N; ++j) c[j] = v[j];
  if (perm_row_terms<N>(c, neg_m, log_s)) return false;
  for (size_t o = 0; o < N; ++o)
    _mm512_storeu_ps(y + o * 16, perm_out<N>(_mm512_loadu_ps(x + o * 16), o, neg_m, log_s));
  return true;
}

// A group of g <= 16 rows (the batch's last, or one with a row that is not
// ordinary): the same arithmetic, rows from g on read as zeros and not
// stored; rows that are not ordinary flagged and not stored.
template <size_t N>
SSM_NOINLINE void log_softmax_group_perm_masked(const float* x, float* y, size_t g, unsigned char* flag) {
  using VN = F32x16;
  const size_t count = g * N;
  Reg<VN> v[N], c[N], neg_m, log_s;
  __mmask16 in[N];
  for (size_t k = 0; k < N; ++k) {
    const size_t left = count > k * 16 ? count - k * 16 : 0;
    in[k] = left >= 16 ? static_cast<__mmask16>(0xFFFF) : VN::first(left);
    v[k] = _mm512_maskz_loadu_ps(in[k], x + k * 16);
  }
  perm_columns<N>(v, c);
  const __mmask16 bad = perm_row_terms<N>(c, neg_m, log_s);
  // Per output vector, the lanes whose row is ordinary.
  const __m512 bad_rows = _mm512_maskz_mov_ps(bad, VN::set1(1.0));
  alignas(64) static constexpr PermRowIndex<N> kRow{};
  for (size_t o = 0; o < N && in[o]; ++o) {
    const __m512 lane_bad = _mm512_permutexvar_ps(_mm512_load_si512(kRow.row[o]), bad_rows);
    const __mmask16 keep = static_cast<__mmask16>(in[o] & ~VN::nonzero(lane_bad));
    _mm512_mask_storeu_ps(y + o * 16, keep, perm_out<N>(v[o], o, neg_m, log_s));
  }
  for (size_t l = 0; l < g; ++l) flag[l] = (bad >> l) & 1;
}

template <size_t N>
void log_softmax_rows_perm(const float* x, float* y, size_t rows, unsigned char* flag) {
  size_t r = 0;
  if constexpr (N >= Lsm32PermRange<F32x16>::transpose_min_n)
    for (; rows - r >= 16 && (rows - r - 16) * N >= 16 - N; r += 16) {  // the loads' reach in the batch
      if (log_softmax_group_transposed<N>(x + r * N, y + r * N))
        std::memset(flag + r, 0, 16);
      else
        log_softmax_group_perm_masked<N>(x + r * N, y + r * N, 16, flag + r);
    }
  for (; rows - r >= 16; r += 16) {
    if (log_softmax_group_perm<N>(x + r * N, y + r * N))
      std::memset(flag + r, 0, 16);
    else
      log_softmax_group_perm_masked<N>(x + r * N, y + r * N, 16, flag + r);
  }
  if (r < rows) log_softmax_group_perm_masked<N>(x + r * N, y + r * N, rows - r, flag + r);
}

// Rows of N take N-specific tables and loops: one log_softmax_rows_perm per N.
template <size_t N>
void log_softmax_rows_perm_n(const float* x, float* y, size_t rows, size_t n, unsigned char* flag) {
  if constexpr (N <= Lsm32PermRange<F32x16>::max_n) {
    if (n != N) return log_softmax_rows_perm_n<N + 1>(x, y, rows, n, flag);
    log_softmax_rows_perm<N>(x, y, rows, flag);
  }
}
