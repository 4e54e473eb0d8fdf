// float32 log_softmax of rows of 3 to Lsm32PermRange<F32x16>::max_n
// elements on AVX-512: included by rows_avx512.cpp after
// rows_softmax32_perm_avx512.h (its PermTables and perm_from_pairs, the
// anonymous namespace, lane types and rows_generic.h's arithmetic).
//
// A set of P groups of 16 rows of N elements is P N whole vectors of x:
// each group's columns (element j of each row, one row per lane) come in
// by the softmax kernel's lane permutes, with no transposes, loads at
// stride n or L1 buffers. The sums are log_softmax_group_regs' lane for
// lane (group_sums_regs: the max's linear chain, each column widened to
// two float64 halves, ExpCoeffsMid's terms, the max's own entries counted
// apart, Plain2's two chains by column parity; log1p_small of (k - 1) +
// rest, the float32 write (x - float(max)) - float(log S)): the same bits
// as the AVX2 set's kernels, which rows of these lengths took before.
// Out, each output vector is written from x's own layout, as
// log_softmax_group_regs' FromX: lane i of the group's vector o belongs
// to row (16 o + i) / N, whose max and log S one permute each puts in
// that lane, and y = (x + (-max)) - log S there (x - max exactly, -0
// included), so no permutes back.
// A set with a row that is not ordinary (NaN, +-inf, all -inf), and the
// batch's last rows, go to the AVX2 set's kernel, which flags those rows
// for the per-row path and gives the others the same bits.

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

// P full groups of 16 rows of N elements (P 16 N contiguous floats); false,
// nothing stored, if a row of them is not ordinary.
template <size_t N, size_t P>
SSM_INLINE inline bool log_softmax_group_perm(const float* x, float* y) {
  using VN = F32x16;
  using VW = F64x8;
  constexpr size_t W = 16;
  alignas(64) static constexpr PermTables<N> kT{};
  alignas(64) static constexpr PermRowIndex<N> kRow{};
  Reg<VN> c[P][N];
  for (size_t p = 0; p < P; ++p) {
    __m512 v[N];
    for (size_t k = 0; k < N; ++k) v[k] = _mm512_loadu_ps(x + (p * N + k) * W);
    for (size_t j = 0; j < N; ++j) c[p][j] = perm_from_pairs<N>(v, kT.in_idx[j], kT.in_mask[j]);
  }
  GroupSums<VN, VW, P> s;
  if (!group_sums_regs<VN, VW, P, N, true>(c, N, s)) return false;
  for (size_t p = 0; p < P; ++p) {
    Reg<VW> log_s[2];
    for (size_t h = 0; h < 2; ++h) {
      const size_t q = 2 * p + h;
      // S <= N (1 + 2^-28) < N + 1: log1p_small drops the steps that cannot
      // divide (the same bits).
      log_s[h] = log1p_small<VW, 11, N + 1>(VW::add(VW::sub(s.cnt[q], VW::set1(1.0)), s.rest[q]));
    }
    const Reg<VN> neg_m = VN::sub(VN::set1(-0.0), VN::narrow(s.m[2 * p], s.m[2 * p + 1]));
    const Reg<VN> vlo = VN::narrow(log_s[0], log_s[1]);
    for (size_t o = 0; o < N; ++o) {
      const __m512i row = _mm512_load_si512(kRow.row[o]);
      const size_t at = (p * N + o) * W;
      const Reg<VN> shifted = VN::add(_mm512_permutexvar_ps(row, neg_m), _mm512_loadu_ps(x + at));
      _mm512_storeu_ps(y + at, VN::sub(shifted, _mm512_permutexvar_ps(row, vlo)));
    }
  }
  return true;
}

template <size_t N, size_t P>
void log_softmax_rows_perm(const float* x, float* y, size_t rows, bool stream, unsigned char* flag) {
  constexpr size_t W = 16;
  size_t r = 0;
  for (; rows - r >= P * W; r += P * W) {
    if (log_softmax_group_perm<N, P>(x + r * N, y + r * N))
      std::memset(flag + r, 0, P * W);
    else
      rows_kernels_avx2().f32.log_softmax(x + r * N, y + r * N, P * W, N, stream, flag + r);
  }
  if (P > 1 && rows - r >= W) {
    if (log_softmax_group_perm<N, 1>(x + r * N, y + r * N))
      std::memset(flag + r, 0, W);
    else
      rows_kernels_avx2().f32.log_softmax(x + r * N, y + r * N, W, N, stream, flag + r);
    r += W;
  }
  if (r < rows) rows_kernels_avx2().f32.log_softmax(x + r * N, y + r * N, rows - r, N, stream, flag + r);
}

// Rows of N take N-specific tables and loops: one log_softmax_rows_perm per N.
template <size_t N>
void log_softmax_rows_perm_n(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if constexpr (N <= Lsm32PermRange<F32x16>::max_n) {
    if (n != N) return log_softmax_rows_perm_n<N + 1>(x, y, rows, n, stream, flag);
    log_softmax_rows_perm<N, (N <= Lsm32PermRange<F32x16>::pair_max_n ? 2 : 1)>(x, y, rows, stream, flag);
  }
}
