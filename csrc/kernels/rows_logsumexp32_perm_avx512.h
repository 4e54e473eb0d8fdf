// float32 logsumexp of rows of 3 to LsePermRange::max_n elements on AVX-512,
// unweighted: included by rows_avx512.cpp after rows_softmax32_perm_avx512.h
// (PermTables, perm_from_pairs) and rows_generic.h (its anonymous
// namespace, lane types, group_sums_regs, lse32_first_tier, lse_groups).
//
// A group of 16 rows of N elements is N whole vectors of x; its columns
// (element j of each row, one row per lane) come by lane permutes of them
// (rows_softmax32_perm_avx512.h), with no transposes through an L1 buffer
// (lse_groups_f32's to_columns_whole) and no loads past the group.
//
// Arithmetic: lse_groups_f32's first tier lane for lane (group_sums_regs:
// the max's linear chain, each column's two float64 halves, the table terms
// (LseTableTerms) and Plain2's two chains in column order;
// lse32_first_tier's table log and certificate), so the same bits as
// lse_groups. A group with a row
// that is special (NaN, +-inf, all -inf) is redone by lse_groups, one with
// a row the first tier does not certify (|lse| below ~0.035) by
// lse_plain_group as lse_groups_f32 redoes it; either keeps the first
// tier's result for the certified rows: each row's bits are its own.

// The columns of P full groups (P 16 N contiguous floats): c[p][j] is
// element j of group p's rows, one row per lane.
template <size_t N, size_t P>
SSM_INLINE inline void lse_columns_perm(const float* x, Reg<F32x16> (&c)[P][N]) {
  alignas(64) static constexpr PermTables<N> kT{};
  for (size_t p = 0; p < P; ++p) {
    __m512 v[N];
    for (size_t k = 0; k < N; ++k) v[k] = _mm512_loadu_ps(x + (p * N + k) * 16);
    for (size_t j = 0; j < N; ++j) c[p][j] = perm_from_pairs<N>(v, kT.in_idx[j], kT.in_mask[j]);
  }
}

// group_sums_regs<F32x16, F64x8, P, N, false, LseTableTerms> on the
// permutes' columns, its arithmetic lane for lane (the max's linear chain,
// each column's two float64 halves, Plain2's two chains in column order:
// the same bits, a chain's first term taken as is where Plain2 adds it to
// 0, exact for a term, positive or NaN), with the column loop
// unrolled: there GCC kept the loop (its body too big to peel whole) and
// the two chains in memory, indexed by j & 1 at run time, a store and a
// reload in each term's chain.
template <size_t N, size_t P>
SSM_INLINE inline bool lse_sums_perm(const float* x, double* rest, double* m) {
  using VN = F32x16;
  using VW = F64x8;
  constexpr size_t WW = 8;
  static_assert(N >= 2, "a term in each chain");
  Reg<VN> c[P][N];
  lse_columns_perm<N, P>(x, c);
  Reg<VW> mw[2 * P];
  bool ok = true;
  for (size_t p = 0; p < P; ++p) {
    Reg<VN> vmax = VN::set1(-kInf);
    for (size_t j = 0; j < N; ++j) vmax = VN::max(c[p][j], vmax);
    VN::widen(vmax, mw[2 * p], mw[2 * p + 1]);
    ok = ok && !VW::any(VW::mask_or(VW::notfinite(mw[2 * p]), VW::notfinite(mw[2 * p + 1])));
  }
  if (!ok) return false;
  Reg<VW> sums[2 * P][2];
  SSM_UNROLL for (size_t j = 0; j < N; ++j) {
    for (size_t p = 0; p < P; ++p) {
      Reg<VW> xw[2];
      VN::widen(c[p][j], xw[0], xw[1]);
      for (size_t h = 0; h < 2; ++h) {
        const size_t q = 2 * p + h;
        const Reg<VW> t = table_term<VW>(VW::sub(xw[h], mw[q]));
        sums[q][j & 1] = j < 2 ? t : VW::add(sums[q][j & 1], t);
      }
    }
  }
  for (size_t q = 0; q < 2 * P; ++q) {
    const Reg<VW> r = VW::add(sums[q][0], sums[q][1]);
    ok = ok && !VW::any(VW::notfinite(r));
    VW::store(rest + q * WW, r);
    VW::store(m + q * WW, mw[q]);
  }
  return ok;
}

// One float64 half's sums as lse32_first_tier takes them (no count: cnt 0).
struct LseHalfSums {
  Reg<F64x8> cnt[1], rest[1], m[1];
};

// A full group of ordinary rows that lse32_first_tier did not all certify
// (fails: a bit per lane), as lse_groups_f32 redoes one: lse_plain_group on
// its columns (here stored from the permutes, not transposed again), then
// the certified lanes keep the first tier's result (in out).
template <size_t N>
SSM_NOINLINE void lse_group_perm_redo(const float* x, float* out, float* buf, uint32_t fails, unsigned char* flag) {
  Reg<F32x16> c[1][N];
  lse_columns_perm<N, 1>(x, c);
  for (size_t j = 0; j < N; ++j) F32x16::store(buf + j * 16, c[0][j]);
  alignas(64) float first[16];
  std::memcpy(first, out, sizeof(first));
  lse_plain_group<F32x16, F64x8, float, false, ExpCoeffs<double>, Kahan2>(buf, N, 16, out, flag);
  for (size_t l = 0; l < 16; ++l)
    if (!(fails & (uint32_t(1) << l))) {
      out[l] = first[l];
      flag[l] = 0;
    }
}

// B full groups from x on: their sums P groups at a time, then every
// half's log1p and certificate (lse32_first_tier) in a loop of its own,
// whose halves are independent. Each set's chain from its sums to its
// certificate (the division and the series) right after its sums left
// that latency exposed: the next set's sums, a whole set of permutes and
// terms further on, did not overlap it (Zen 5, 4 Mi-element batches, 1
// thread, ns per element, fastest of 15 calls, per set / blocks of 4
// groups: n = 3 0.92 / 0.75, 5 0.60 / 0.45, 6 0.55 / 0.41). A group with
// a special row is redone by lse_groups, one with an uncertified row by
// lse_group_perm_redo (the same bits for the others; n = 3, where 0.3% of
// N(0, 1) rows and so 5% of groups were not certified with mid_term's
// terms, 0.82 with lse_groups there, 0.63 with lse_group_perm_redo; the
// table terms leave 0.008% of rows, 0.13% of groups).
template <size_t N, size_t P, size_t B, int MaxT>
SSM_INLINE inline void lse_block_perm(const float* x, float* out, float* sign, size_t rows_left, float* buf,
                                      unsigned char* flag) {
  using VW = F64x8;
  constexpr size_t W = 16, WW = 8;
  static_assert(B % P == 0 && B <= 32, "whole sets; a bit per group");
  alignas(64) double rest[B * W], m[B * W];
  // Per group: its lanes the first tier did not certify; all of them where
  // a row of its set is special.
  uint32_t fails[B];
  for (size_t k = 0; k < B / P; ++k) {
    const bool ordinary = lse_sums_perm<N, P>(x + k * P * W * N, rest + k * P * W, m + k * P * W);
    for (size_t p = 0; p < P; ++p) fails[k * P + p] = ordinary ? 0 : ~uint32_t(0);
    if (!ordinary)
      for (size_t i = 0; i < P * W; ++i) rest[k * P * W + i] = m[k * P * W + i] = 1.0;
  }
  // Unrolled, each group's two halves' bits joined in a register: the loop
  // over halves kept fails[q / 2] in memory, a chain of read-modify-writes.
  SSM_UNROLL for (size_t g = 0; g < B; ++g) {
    uint32_t f = 0;
    for (size_t h = 0; h < 2; ++h) {
      const size_t q = 2 * g + h;
      LseHalfSums t;
      t.cnt[0] = VW::set1(0.0);
      t.rest[0] = VW::load(rest + q * WW);
      t.m[0] = VW::load(m + q * WW);
      Reg<VW> lse;
      f |= uint32_t(lse32_first_tier<VW, MaxT, LseTableTerms>(t, 0, VW::none(), lse)) << (h * WW);
      VW::store(out + q * WW, lse);
    }
    fails[g] |= f;
  }
  std::memset(flag, 0, B * W);
  if (sign)
    for (size_t l = 0; l < B * W; ++l) sign[l] = 1.0f;
  for (size_t g = 0; g < B; ++g) {
    if (!fails[g]) continue;
    if (fails[g] == ~uint32_t(0))
      lse_groups<F32x16, F64x8, 1>(x + g * W * N, out + g * W, sign ? sign + g * W : nullptr, N, rows_left - g * W,
                                   buf, flag + g * W);
    else
      lse_group_perm_redo<N>(x + g * W * N, out + g * W, buf, fails[g], flag + g * W);
  }
}

// Blocks of kLsePermBlockGroups groups, then single groups; the batch's
// last partial group through lse_groups (MaxT as there: rows of up to 10
// skip log1p_small's step by 2^4). Blocks of 8 groups against 4: n = 3-5
// 0.98-1.06, n = 8 0.91, n = 12 0.95.
constexpr size_t kLsePermBlockGroups = 8;

template <size_t N, size_t P>
void lse_rows_perm(const float* x, float* out, float* sign, size_t rows, float* buf, unsigned char* flag) {
  constexpr size_t W = 16, B = kLsePermBlockGroups;
  constexpr int MaxT = N <= 10 ? 11 : static_cast<int>(kMaxN / 2 + 1);
  size_t r = 0;
  for (; rows - r >= B * W; r += B * W)
    lse_block_perm<N, P, B, MaxT>(x + r * N, out + r, sign ? sign + r : nullptr, rows - r, buf, flag + r);
  for (; rows - r >= W; r += W)
    lse_block_perm<N, 1, 1, MaxT>(x + r * N, out + r, sign ? sign + r : nullptr, rows - r, buf, flag + r);
  if (r < rows) lse_groups<F32x16, F64x8, 1>(x + r * N, out + r, sign ? sign + r : nullptr, N, rows - r, buf, flag + r);
}

// Rows of N take N-specific tables and loops: one lse_rows_perm per N.
template <size_t N>
void lse_rows_perm_n(const float* x, float* out, float* sign, size_t rows, size_t n, float* buf, unsigned char* flag) {
  if constexpr (N <= LsePermRange::max_n) {
    if (n != N) return lse_rows_perm_n<N + 1>(x, out, sign, rows, n, buf, flag);
    lse_rows_perm<N, LsePermRange::groups(N)>(x, out, sign, rows, buf, flag);
  }
}

void LsePermRange::rows(const float* x, float* out, float* sign, size_t rows, size_t n, unsigned char* flag) {
  alignas(64) float buf[kMaxN * 16];
  lse_rows_perm_n<LsePermRange::min_n>(x, out, sign, rows, n, buf, flag);
}
