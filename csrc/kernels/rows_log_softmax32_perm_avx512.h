// float32 log_softmax of rows of 2 and of 3 to Lsm32PermRange<F32x16>::max_n
// elements on AVX-512: included by rows_avx512.cpp after
// rows_softmax32_perm_avx512.h (its PermTables and perm_from_pairs, the
// anonymous namespace, lane types and rows_generic.h's arithmetic).
//
// A group of 16 rows of N elements is N whole vectors of x: its columns
// (element j of each row, one row per lane) come in by the softmax
// kernel's lane permutes, with no transposes, loads at stride n or L1
// buffers; from Lsm32PermRange's transpose_min_n on by 16 x 16 register
// transposes instead (fewer shuffles there; one per 16 columns). The sums
// take ExpCoeffsMid's terms exp(x - max) in two float64 halves, two chains
// by column parity, as log_softmax_group_regs', but only of the N - 1
// entries the max's tournament leaves (perm_row_terms: a tie's term is 1
// exactly, so z = S - 1 is their sum, with no count of the max's own
// entries). log S = log1p(z) by log1p_table; out, each output
// vector is written from x's own layout, as log_softmax_group_regs'
// FromX: lane i of the group's vector o belongs to row (16 o + i) / N,
// whose max and log S one permute each puts in that lane, and y = (x +
// (-max)) - log S there (x - max exactly, -0 included), so no permutes
// back.
//
// Accuracy: as rows_generic.h's float32 log_softmax groups (terms within
// 2.1e-9, plain float64 sums, the three float32 roundings of the write);
// log1p_table is within 2^-30.9 relative of log S (log1p_small's series
// within 2^-44.7), so v moves by below 2^-28.5 v in all, inside the
// 2^-25 v the bound leaves. Every row of these lengths takes this
// arithmetic: a group whose rows are all ordinary is stored whole; a group
// with a row that is not ordinary (NaN, +-inf, all -inf) and the batch's
// last, partial group go through log_softmax_group_perm_masked (rows of up
// to 16; log_softmax_group_transposed_masked above: a copy of the rows)
// with the same lanes' arithmetic (its missing rows read as zeros), which
// stores the ordinary rows and flags the others for the per-row path. So a
// row's bits do not depend on its neighbours or its place in the batch.

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

// log(1 + z) in float64 lanes for finite z >= 0 (N - 1 plus the others'
// terms here; rows of two: z < 1), without a division: t = 1 + z = 2^e
// mant, mant in [1, 2) (getexp, getmant: exact), c = 1 + i / 16 for the
// top four bits i of mant's fraction, r = mant / c - 1 in [0, 1/16] as one
// fma with 1 / c rounded to float64 (kLog1pTable's inv), and log t = e ln2
// - log(inv) + log1p(r), -log(inv) (log_c) to float64 from the rounded
// inv; where e = 0 r is z inv + (inv - 1) instead (inv - 1 exact), so z
// keeps all its bits (r = z itself where i = 0: a dominant entry's
// -log1p(z) keeps its relative accuracy; where 1 + z rounds up into the
// next i, r is a few 2^-53 below 0). log1p(r) to degree 7 (r - r^2 / 2 +
// ... + r^7 / 7, Estrin's scheme: four dependent steps where Horner took
// seven): the tail is below r^8 / 8, 2^-30.9 relative of log1p(r) for r
// <= 1/16, log_c and e ln2 add a few 2^-53 absolute where log t >= log(1 +
// 1/16). In place of log1p_small's steps (the division s = f / (2 + f)
// and a degree-15 series, ~20 more cycles of latency per group's chain):
// Zen 5, 4 Mi-element batches, 1 thread, bench/ab_builds.py, 11 rounds,
// fastest processes, time / before: n = 3 0.94-0.95, 5 0.94, 8 0.97, 12
// 0.99, 16 0.97 (softmax controls 1.00-1.02). Below1: z <= 1 - 2^-52, so
// t = 1 + z < 2 is mant itself and e = 0 (rows of two).
struct Log1pTable {
  double inv[16], log_c[16];
};
alignas(64) constexpr Log1pTable kLog1pTable = {
    {0x1.0000000000000p+0, 0x1.e1e1e1e1e1e1ep-1, 0x1.c71c71c71c71cp-1, 0x1.af286bca1af28p-1, 0x1.999999999999ap-1,
     0x1.8618618618618p-1, 0x1.745d1745d1746p-1, 0x1.642c8590b2164p-1, 0x1.5555555555555p-1, 0x1.47ae147ae147bp-1,
     0x1.3b13b13b13b14p-1, 0x1.2f684bda12f68p-1, 0x1.2492492492492p-1, 0x1.1a7b9611a7b96p-1, 0x1.1111111111111p-1,
     0x1.0842108421084p-1},
    {0x0.0p+0, 0x1.f0a30c01162a8p-5, 0x1.e27076e2af2eap-4, 0x1.5ff3070a793d6p-3, 0x1.c8ff7c79a9a20p-3,
     0x1.1675cababa60fp-2, 0x1.4618bc21c5ec2p-2, 0x1.739d7f6bbd007p-2, 0x1.9f323ecbf984dp-2, 0x1.c8ff7c79a9a21p-2,
     0x1.f128f5faf06ecp-2, 0x1.0be72e4252a83p-1, 0x1.1e85f5e7040d1p-1, 0x1.307d7334f10bep-1, 0x1.41d8fe84672afp-1,
     0x1.52a2d265bc5abp-1}};

// log_c + log1p(r), |r| <= 1/16.
SSM_INLINE inline __m512d log1p_table_poly(__m512d r, __m512d log_c) {
  using VW = F64x8;
  const __m512d r2 = VW::mul(r, r);
  const __m512d r4 = VW::mul(r2, r2);
  const __m512d lo = VW::fmadd(r, VW::set1(-1.0 / 2), VW::set1(1.0));
  const __m512d mid = VW::fmadd(r, VW::set1(-1.0 / 4), VW::set1(1.0 / 3));
  const __m512d hi = VW::fmadd(r2, VW::set1(1.0 / 7), VW::fmadd(r, VW::set1(-1.0 / 6), VW::set1(1.0 / 5)));
  const __m512d q = VW::fmadd(r4, hi, VW::fmadd(r2, mid, lo));
  return VW::fmadd(r, q, log_c);
}

template <bool Below1 = false>
SSM_INLINE inline __m512d log1p_table(__m512d z) {
  using VW = F64x8;
  const __m512d one = VW::set1(1.0);
  if constexpr (Below1) {
    // 0 <= z <= 1 - 2^-52 (the caller's): t = 1 + z < 2 is mant, e = 0.
    const __m512d t = VW::add(one, z);
    const __m512i idx = _mm512_srli_epi64(_mm512_castpd_si512(t), 48);
    const __m512d inv =
        _mm512_permutex2var_pd(_mm512_load_pd(kLog1pTable.inv), idx, _mm512_load_pd(kLog1pTable.inv + 8));
    const __m512d log_c =
        _mm512_permutex2var_pd(_mm512_load_pd(kLog1pTable.log_c), idx, _mm512_load_pd(kLog1pTable.log_c + 8));
    return log1p_table_poly(VW::fmadd(z, inv, VW::sub(inv, one)), log_c);
  }
  const __m512d t = VW::add(one, z);
  const __m512d mant = _mm512_getmant_pd(t, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
  const __m512d e = _mm512_getexp_pd(t);
  // permutex2var takes the index's low four bits: the fraction's top four.
  const __m512i idx = _mm512_srli_epi64(_mm512_castpd_si512(mant), 48);
  const __m512d inv = _mm512_permutex2var_pd(_mm512_load_pd(kLog1pTable.inv), idx, _mm512_load_pd(kLog1pTable.inv + 8));
  const __m512d log_c =
      _mm512_permutex2var_pd(_mm512_load_pd(kLog1pTable.log_c), idx, _mm512_load_pd(kLog1pTable.log_c + 8));
  const __mmask8 near = _mm512_cmp_pd_mask(t, VW::set1(2.0), _CMP_LT_OQ);
  const __m512d a = _mm512_mask_blend_pd(near, mant, z);
  const __m512d b = _mm512_mask_sub_pd(VW::set1(-1.0), near, inv, one);
  return VW::fmadd(e, VW::set1(0x1.62e42fefa39efp-1), log1p_table_poly(VW::fmadd(a, inv, b), log_c));
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

// float32 log_softmax of rows of two (map_rows_two: d = smaller - larger
// in float64 lanes, within 2^-53 of itself): L = log1p(exp(d)), the
// larger entry's -L and the other's d - L, with t = exp(d) by ExpCoeffsMid (2.08e-9 relative,
// its polynomial by Estrin's scheme: three dependent steps where Horner
// took six; a few 2^-53 more) and log1p_table: L moves by t' (t / (1 + t))
// <= t' L for a relative error t' of t, so L is within 2^-28.7 relative
// (2^-25 would leave the 2-ulp bound), and d - L adds no cancellation (d
// <= 0 < L). Every row is certified but those special_two finds
// (flagged). An entry of -inf gives d - L = -inf (d clamped at -700 for
// the exp only) and the other entry -L: -0 where L is below float32's
// range (t is clamped at 1 - 2^-52 for log1p_table's Below1: 2^-53
// relative in L). The chain per 16 rows (the exp, then the log) is the
// time: Zen 5, 4 Mi-element batches, 1 thread, bench/ab_builds.py, 11
// rounds, fastest processes, time / the pair kernel's it replaced (the
// table exp by Horner, log1p_small's steps and division): 0.58-0.64.
void log_softmax_rows_two_table(const float* x, float* y, size_t rows, bool stream, unsigned char* flag) {
  using VW = F64x8;
  using C = ExpCoeffsMid;
  map_rows_two<F32x16, VW>(x, y, rows, stream, flag, [](__m512d d, __m512d& top, __m512d& other) SSM_INLINE {
    constexpr double kMagic = 0x1.8p52 + 1023.0;
    const __m512d dc = VW::max(d, VW::set1(-700.0));
    const __m512d n = VW::sub(VW::fmadd(dc, VW::set1(C::log2e), VW::set1(kMagic)), VW::set1(kMagic));
    const __m512d r = poly_reduce<VW, C>(dc, n);
    const __m512d r2 = VW::mul(r, r);
    const __m512d r4 = VW::mul(r2, r2);
    const __m512d p01 = VW::fmadd(r, VW::set1(C::c[1]), VW::set1(C::c[0]));
    const __m512d p23 = VW::fmadd(r, VW::set1(C::c[3]), VW::set1(C::c[2]));
    const __m512d p46 = VW::fmadd(r2, VW::set1(C::c[6]), VW::fmadd(r, VW::set1(C::c[5]), VW::set1(C::c[4])));
    const __m512d p = VW::fmadd(r4, p46, VW::fmadd(r2, p23, p01));
    const __m512d big_l = log1p_table<true>(VW::min(_mm512_scalef_pd(p, n), VW::set1(1.0 - 0x1p-52)));
    top = VW::sub(VW::set1(0.0), big_l);
    other = VW::sub(d, big_l);
  });
  if (stream) F32x16::fence();
}

// From the lanes' max and the M = N - 1 other entries of each lane's row
// (col(j), from MaxTournament below): the float32 max (negated, for the
// write), log S = log1p(z) (float32) and the lanes whose row is not
// ordinary. z is the sum of the others' terms in two float64 halves, two
// chains by parity, less the -inf entries (whose terms are 0; a max of
// -FLT_MAX leaves no finite value below every max to raise them to).
template <size_t M, class Col>
SSM_INLINE inline __mmask16 loser_terms(Reg<F32x16> vmax, Col&& col, __mmask16 nan, Reg<F32x16>& neg_m,
                                        Reg<F32x16>& log_s) {
  using VN = F32x16;
  using VW = F64x8;
  Reg<VW> m[2], sums[2][2];
  VN::widen(vmax, m[0], m[1]);
  neg_m = VN::sub(VN::set1(-0.0), vmax);
  for (size_t h = 0; h < 2; ++h) sums[h][0] = sums[h][1] = VW::set1(0.0);
  for (size_t j = 0; j < M; ++j) {
    const Reg<VN> cj = col(j);
    const __mmask16 term = _mm512_cmp_ps_mask(cj, VN::set1(-kInf), _CMP_NEQ_UQ);
    Reg<VW> xw[2];
    VN::widen(cj, xw[0], xw[1]);
    for (size_t h = 0; h < 2; ++h) {
      Reg<VW>& acc = sums[h][j & 1];
      acc = _mm512_mask_add_pd(acc, static_cast<__mmask8>(term >> (8 * h)), acc, perm_term(VW::sub(xw[h], m[h])));
    }
  }
  Reg<VW> v[2];
  __mmask8 bad[2];
  for (size_t h = 0; h < 2; ++h) {
    bad[h] = VW::notfinite(m[h]);
    v[h] = log1p_table(VW::add(sums[h][0], sums[h][1]));
  }
  log_s = VN::narrow(v[0], v[1]);
  return static_cast<__mmask16>(nan | bad[0] | (bad[1] << 8));
}

// One step of the max's tournament over a lane's entries: the running max
// and the entry c, the smaller of which (the loser) is one of the entries
// below the final max, or equal to it (a tie); a NaN entry or max flags
// its lane (the steps may drop it).
struct MaxTournament {
  Reg<F32x16> vmax;
  __mmask16 nan;
  explicit MaxTournament(Reg<F32x16> c0) : vmax(c0), nan(_mm512_cmp_ps_mask(c0, c0, _CMP_UNORD_Q)) {}
  SSM_INLINE Reg<F32x16> step(Reg<F32x16> c) {
    nan = static_cast<__mmask16>(nan | _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q));
    const Reg<F32x16> loser = F32x16::min(vmax, c);
    vmax = F32x16::max(vmax, c);
    return loser;
  }
};

// A group's columns c -> the float32 max (negated, for the write), log S
// (float32) and the lanes whose row is not ordinary: z = S - 1 is the sum
// of the terms of the tournament's N - 1 losers (MaxTournament), the max's
// own term never computed and no count of its entries: a tie's term is
// exp(0) = 1 exactly (r = 0, p(0) = 1), a loser of -inf adds nothing.
template <size_t N>
SSM_INLINE inline __mmask16 perm_row_terms(const Reg<F32x16> (&c)[N], Reg<F32x16>& neg_m, Reg<F32x16>& log_s) {
  MaxTournament max(c[0]);
  Reg<F32x16> lose[N - 1];
  for (size_t j = 1; j < N; ++j) lose[j - 1] = max.step(c[j]);
  return loser_terms<N - 1>(max.vmax, [&lose](size_t j) SSM_INLINE { return lose[j]; }, max.nan, neg_m, log_s);
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

// The same for rows of transpose_min_n on, the columns by 16 x 16
// register transposes of the rows loaded at stride N (F32x16::transpose: 64
// shuffles where the permutes took N (N + 1) / 2 permutes and N (N - 1) / 2
// blends; rows of 17-60 elements two to four of them, the last block's
// columns from N on unused; from buffer_min_n on the columns go through an
// L1 buffer, the max taken as they come), the output vectors from x's
// layout as above. The last
// row's loads read TransposeReach<N> floats past the group: the caller's
// bounds.
template <size_t N>
struct TransposeReach {
  static constexpr size_t blocks = (N + 15) / 16, value = 16 * blocks - N;
};
template <size_t N>
SSM_INLINE inline __mmask16 transposed_terms(const float* x, Reg<F32x16>& neg_m, Reg<F32x16>& log_s) {
  if constexpr (N < Lsm32PermRange<F32x16>::buffer_min_n) {
    Reg<F32x16> c[N];
    for (size_t b = 0; b < TransposeReach<N>::blocks; ++b) {
      Reg<F32x16> v[16];
      for (size_t l = 0; l < 16; ++l) v[l] = _mm512_loadu_ps(x + l * N + 16 * b);
      F32x16::transpose(v);
      for (size_t j = 16 * b; j < N && j < 16 * b + 16; ++j) c[j] = v[j - 16 * b];
    }
    return perm_row_terms<N>(c, neg_m, log_s);
  } else {
    // The losers through an L1 buffer, the tournament taking the columns
    // as they come.
    alignas(64) float cols[N * 16];
    MaxTournament max(F32x16::set1(0.0));
    for (size_t b = 0; b < TransposeReach<N>::blocks; ++b) {
      Reg<F32x16> v[16];
      for (size_t l = 0; l < 16; ++l) v[l] = _mm512_loadu_ps(x + l * N + 16 * b);
      F32x16::transpose(v);
      for (size_t j = 16 * b; j < N && j < 16 * b + 16; ++j) {
        if (j == 0)
          max = MaxTournament(v[0]);
        else
          _mm512_store_ps(cols + 16 * (j - 1), max.step(v[j - 16 * b]));
      }
    }
    return loser_terms<N - 1>(max.vmax, [&cols](size_t j) SSM_INLINE { return _mm512_load_ps(cols + 16 * j); },
                              max.nan, neg_m, log_s);
  }
}
template <size_t N>
SSM_INLINE inline bool log_softmax_group_transposed(const float* x, float* y) {
  Reg<F32x16> neg_m, log_s;
  if (transposed_terms<N>(x, neg_m, log_s)) return false;
  for (size_t o = 0; o < N; ++o)
    _mm512_storeu_ps(y + o * 16, perm_out<N>(_mm512_loadu_ps(x + o * 16), o, neg_m, log_s));
  return true;
}

// A group of g <= 16 rows of 17-60 elements (the batch's last, or one with
// a row that is not ordinary): the same arithmetic on a copy of its rows
// (rows from g on zeros, not stored); rows that are not ordinary flagged
// and not stored.
template <size_t N>
SSM_NOINLINE void log_softmax_group_transposed_masked(const float* x, float* y, size_t g, unsigned char* flag) {
  using VN = F32x16;
  alignas(64) float in[16 * N + TransposeReach<N>::value] = {};
  std::memcpy(in, x, g * N * sizeof(float));
  Reg<VN> neg_m, log_s;
  const __mmask16 bad = transposed_terms<N>(in, neg_m, log_s);
  const __m512 bad_rows = _mm512_maskz_mov_ps(bad, VN::set1(1.0));
  alignas(64) static constexpr PermRowIndex<N> kRow{};
  const size_t count = g * N;
  for (size_t o = 0; o < N && o * 16 < count; ++o) {
    const __mmask16 in_rows = count - o * 16 >= 16 ? static_cast<__mmask16>(0xFFFF) : VN::first(count - o * 16);
    const __m512 lane_bad = _mm512_permutexvar_ps(_mm512_load_si512(kRow.row[o]), bad_rows);
    const __mmask16 keep = static_cast<__mmask16>(in_rows & ~VN::nonzero(lane_bad));
    _mm512_mask_storeu_ps(y + o * 16, keep, perm_out<N>(_mm512_load_ps(in + o * 16), o, neg_m, log_s));
  }
  for (size_t l = 0; l < g; ++l) flag[l] = (bad >> l) & 1;
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
    for (; rows - r >= 16 && (rows - r - 16) * N >= TransposeReach<N>::value; r += 16) {  // the loads' reach
      if (log_softmax_group_transposed<N>(x + r * N, y + r * N))
        std::memset(flag + r, 0, 16);
      else if constexpr (N <= 16)
        log_softmax_group_perm_masked<N>(x + r * N, y + r * N, 16, flag + r);
      else
        log_softmax_group_transposed_masked<N>(x + r * N, y + r * N, 16, flag + r);
    }
  if constexpr (N <= 16) {
    for (; rows - r >= 16; r += 16) {
      if (log_softmax_group_perm<N>(x + r * N, y + r * N))
        std::memset(flag + r, 0, 16);
      else
        log_softmax_group_perm_masked<N>(x + r * N, y + r * N, 16, flag + r);
    }
    if (r < rows) log_softmax_group_perm_masked<N>(x + r * N, y + r * N, rows - r, flag + r);
  } else {
    for (; r < rows; r += 16)
      log_softmax_group_transposed_masked<N>(x + r * N, y + r * N, rows - r < 16 ? rows - r : 16, flag + r);
  }
}

// Rows of N take N-specific tables and loops: one log_softmax_rows_perm per N.
template <size_t N>
void log_softmax_rows_perm_n(const float* x, float* y, size_t rows, size_t n, unsigned char* flag) {
  if constexpr (N <= Lsm32PermRange<F32x16>::max_n) {
    if (n != N) return log_softmax_rows_perm_n<N + 1>(x, y, rows, n, flag);
    log_softmax_rows_perm<N>(x, y, rows, flag);
  }
}
