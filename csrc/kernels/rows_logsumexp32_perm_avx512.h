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
// Arithmetic: the max's tournament (MaxTournament), the table terms
// (LseTableTerms) of its N - 1 losers only in each column's two float64
// halves, Plain2's two chains by parity, S = 1 + z, and lse32_first_tier's
// table log and certificate (S and its terms within the bounds there). A
// row the first tier does not certify (|lse| below ~0.001) and one that is
// special (NaN, +-inf, all -inf) go through lse_plain_group as
// lse_groups_f32 redoes them (which flags the special ones); the other rows
// of their group keep the first tier's result, and the batch's last partial
// group takes the same arithmetic on a copy: each row's bits are its own.

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

// The sums of P full groups (P 16 N contiguous floats) from the max's
// tournament (MaxTournament, rows_log_softmax32_perm_avx512.h): per float64
// half q, the lanes' max m and z = S - 1, the sum of the terms (LseTableTerms)
// of the N - 1 losers, two chains by parity, unrolled (a loop over the
// columns kept the chains in memory, indexed at run time). The max's own
// term is never computed: a tie's term is exp(0) = 1 exactly (r = 0, p(0) =
// 1, table entry 1), a loser of -inf gives at most 2^-1020 (d raised to
// -708). bad: per group, the lanes whose max is not finite or that hold a
// NaN (which the tournament may drop); their z and m are garbage.
template <size_t N, size_t P>
SSM_INLINE inline void lse_sums_perm(const float* x, double* z, double* m, uint32_t* bad) {
  using VN = F32x16;
  using VW = F64x8;
  constexpr size_t WW = 8, M = N - 1;
  static_assert(M >= 2, "a term in each chain");
  Reg<VN> c[P][N];
  lse_columns_perm<N, P>(x, c);
  Reg<VN> lose[P][M];
  Reg<VW> mw[2 * P];
  for (size_t p = 0; p < P; ++p) {
    MaxTournament t(c[p][0]);
    for (size_t j = 1; j < N; ++j) lose[p][j - 1] = t.step(c[p][j]);
    VN::widen(t.vmax, mw[2 * p], mw[2 * p + 1]);
    bad[p] = t.nan | uint32_t(VW::notfinite(mw[2 * p])) | uint32_t(VW::notfinite(mw[2 * p + 1])) << WW;
  }
  Reg<VW> sums[2 * P][2];
  SSM_UNROLL for (size_t j = 0; j < M; ++j) {
    for (size_t p = 0; p < P; ++p) {
      Reg<VW> xw[2];
      VN::widen(lose[p][j], xw[0], xw[1]);
      for (size_t h = 0; h < 2; ++h) {
        const size_t q = 2 * p + h;
        const Reg<VW> t = table_term<VW>(VW::sub(xw[h], mw[q]));
        sums[q][j & 1] = j < 2 ? t : VW::add(sums[q][j & 1], t);
      }
    }
  }
  for (size_t q = 0; q < 2 * P; ++q) {
    VW::store(z + q * WW, VW::add(sums[q][0], sums[q][1]));
    VW::store(m + q * WW, mw[q]);
  }
}

// One float64 half's sums as lse32_first_tier takes them (no count: cnt 0).
struct LseHalfSums {
  Reg<F64x8> cnt[1], rest[1], m[1];
};

// A full group with lanes that lse32_first_tier did not certify or whose
// row is not ordinary (fails: a bit per lane), as lse_groups_f32 redoes
// one: lse_plain_group on its columns (here stored from the permutes, not
// transposed again; it flags the rows that are not ordinary), then the
// other lanes keep the first tier's result (in out).
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
// half's log and certificate (lse32_first_tier: S = 1 + z) in a loop of
// its own, whose halves are independent. Each set's chain from its sums to
// its certificate right after its sums left that latency exposed (Zen 5, 4
// Mi-element batches, 1 thread, ns per element, fastest of 15 calls, per
// set / blocks of 4 groups: n = 3 0.92 / 0.75, 5 0.60 / 0.45, 6 0.55 /
// 0.41). A group with a lane the first tier does not certify or whose row
// is not ordinary goes through lse_group_perm_redo (lse_plain_group flags
// the latter for the per-row path); its other lanes keep the first tier's
// result, so each row's bits are its own.
template <size_t N, size_t P, size_t B, int MaxT>
SSM_INLINE inline void lse_block_perm(const float* x, float* out, float* sign, float* buf, unsigned char* flag) {
  using VW = F64x8;
  constexpr size_t W = 16, WW = 8;
  static_assert(B % P == 0, "whole sets");
  alignas(64) double z[B * W], m[B * W];
  uint32_t bad[B], fails[B];
  for (size_t k = 0; k < B / P; ++k) lse_sums_perm<N, P>(x + k * P * W * N, z + k * P * W, m + k * P * W, bad + k * P);
  // Unrolled, each group's two halves' bits joined in a register: the loop
  // over halves kept fails[q / 2] in memory, a chain of read-modify-writes.
  SSM_UNROLL for (size_t g = 0; g < B; ++g) {
    uint32_t f = bad[g];
    for (size_t h = 0; h < 2; ++h) {
      const size_t q = 2 * g + h;
      LseHalfSums t;
      t.cnt[0] = VW::set1(1.0);
      t.rest[0] = VW::load(z + q * WW);
      t.m[0] = VW::load(m + q * WW);
      const auto bad_h = static_cast<typename VW::mask>(bad[g] >> (h * WW));
      Reg<VW> lse;
      f |= uint32_t(lse32_first_tier<VW, MaxT, LseTableTerms>(t, 0, bad_h, lse)) << (h * WW);
      VW::store(out + q * WW, lse);
    }
    fails[g] = f;
  }
  std::memset(flag, 0, B * W);
  if (sign)
    for (size_t l = 0; l < B * W; ++l) sign[l] = 1.0f;
  for (size_t g = 0; g < B; ++g)
    if (fails[g]) lse_group_perm_redo<N>(x + g * W * N, out + g * W, buf, fails[g], flag + g * W);
}

// Blocks of kLsePermBlockGroups groups, then single groups; the batch's
// last partial group copied into zero rows (ordinary: the same lanes'
// arithmetic for its rows). Blocks of 8 groups against 4: n = 3-5
// 0.98-1.06, n = 8 0.91, n = 12 0.95.
constexpr size_t kLsePermBlockGroups = 8;

template <size_t N, size_t P>
void lse_rows_perm(const float* x, float* out, float* sign, size_t rows, float* buf, unsigned char* flag) {
  constexpr size_t W = 16, B = kLsePermBlockGroups;
  constexpr int MaxT = N <= 10 ? 11 : static_cast<int>(kMaxN / 2 + 1);
  size_t r = 0;
  for (; rows - r >= B * W; r += B * W)
    lse_block_perm<N, P, B, MaxT>(x + r * N, out + r, sign ? sign + r : nullptr, buf, flag + r);
  for (; rows - r >= W; r += W)
    lse_block_perm<N, 1, 1, MaxT>(x + r * N, out + r, sign ? sign + r : nullptr, buf, flag + r);
  if (r < rows) {
    const size_t g = rows - r;
    alignas(64) float rows_in[W * N] = {}, lane_out[W], lane_sign[W];
    unsigned char lane_flag[W];
    std::memcpy(rows_in, x + r * N, g * N * sizeof(float));
    lse_block_perm<N, 1, 1, MaxT>(rows_in, lane_out, sign ? lane_sign : nullptr, buf, lane_flag);
    std::memcpy(out + r, lane_out, g * sizeof(float));
    std::memcpy(flag + r, lane_flag, g);
    if (sign) std::memcpy(sign + r, lane_sign, g * sizeof(float));
  }
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
