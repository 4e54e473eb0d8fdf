// float32 softmax of rows of 2 to SoftmaxPermRange<F32x16>::max_n elements
// on AVX-512: included by rows_avx512.cpp after rows_generic.h (its
// anonymous namespace, lane types, softmax_group's arithmetic).
//
// A group of 16 rows of N elements is 16 N contiguous floats: N whole
// vectors, loaded and stored as such (no loads past the group, no
// cache-line-splitting loads at stride n, no element copies). Column j of
// the group (element j of each row, one row per lane) is lane l = flat
// element l N + j: every column draws on all N vectors, so it is made by
// two-source permutes (vpermt2ps) of the vector pairs (2k, 2k + 1), one
// index vector per column (its flat element mod 32), blended by lane
// masks (the lanes whose element lies in that pair); an odd N's last
// vector is a one-source permute (the index mod 16). Out, the same the
// other way: output vector o lane i is column (16 o + i) mod N, lane
// (16 o + i) / N, from column pairs. About 2 N (N - 1) permutes and
// blends per 16 rows, where the 16 x 16 register transposes in and out
// (softmax_group_regs) take 128 shuffles and 32 loads and stores at any
// N <= 16, and softmax_group's element copies through buf and obuf more.
//
// Arithmetic: softmax_group_regs' lane for lane (max, pow2_term's terms
// with softmax_ref's reference, the two Kahan chains by column parity in
// column order, softmax_inv, the product): the same bits as softmax_group.
// A group set with a row that is not ordinary is redone by softmax_group,
// which flags it.

template <size_t N>
struct PermTables {
  static_assert(N >= 2 && N <= 16, "columns drawn from at most 8 vector pairs");
  static constexpr size_t kPairs = (N + 1) / 2;
  // in_idx[j]: lane l's flat element l N + j mod 32; in_mask[j][k]: the
  // lanes whose element is in vectors 2k, 2k + 1.
  int32_t in_idx[N][16] = {};
  uint16_t in_mask[N][kPairs] = {};
  // out_idx[o]: lane i's row (16 o + i) / N, plus 16 for an odd column;
  // out_mask[o][a]: the lanes whose column is 2a or 2a + 1.
  int32_t out_idx[N][16] = {};
  uint16_t out_mask[N][kPairs] = {};
  constexpr PermTables() {
    for (size_t j = 0; j < N; ++j)
      for (size_t l = 0; l < 16; ++l) {
        const size_t e = l * N + j;
        in_idx[j][l] = static_cast<int32_t>(e % 32);
        in_mask[j][e / 32] = static_cast<uint16_t>(in_mask[j][e / 32] | (1u << l));
      }
    for (size_t o = 0; o < N; ++o)
      for (size_t i = 0; i < 16; ++i) {
        const size_t e = 16 * o + i, col = e % N;
        out_idx[o][i] = static_cast<int32_t>(e / N + 16 * (col % 2));
        out_mask[o][col / 2] = static_cast<uint16_t>(out_mask[o][col / 2] | (1u << i));
      }
  }
};

// Lanes of one vector drawn from pairs of sources src[0..N-1]: pair k by
// idx (vpermt2ps; a lone last source by vpermps), the pairs blended by mask.
template <size_t N>
SSM_INLINE inline __m512 perm_from_pairs(const __m512 (&src)[N], const int32_t* idx_lanes, const uint16_t* mask) {
  const __m512i idx = _mm512_loadu_si512(idx_lanes);
  __m512 v = _mm512_permutex2var_ps(src[0], idx, src[1]);
  for (size_t k = 1; 2 * k < N; ++k) {
    const __m512 t = 2 * k + 1 < N ? _mm512_permutex2var_ps(src[2 * k], idx, src[2 * k + 1])
                                   : _mm512_permutexvar_ps(idx, src[2 * k]);
    v = _mm512_mask_blend_ps(static_cast<__mmask16>(mask[k]), v, t);
  }
  return v;
}

// P full groups of 16 rows of N elements (P 16 N contiguous floats); false,
// nothing stored, if a row of them is not ordinary.
template <size_t N, size_t P>
SSM_INLINE inline bool softmax_group_perm(const float* x, float* y) {
  using VN = F32x16;
  constexpr size_t W = 16;
  alignas(64) static constexpr PermTables<N> kT{};
  __m512 c[P][N];
  for (size_t p = 0; p < P; ++p) {
    __m512 v[N];
    for (size_t k = 0; k < N; ++k) v[k] = _mm512_loadu_ps(x + (p * N + k) * W);
    for (size_t j = 0; j < N; ++j) c[p][j] = perm_from_pairs<N>(v, kT.in_idx[j], kT.in_mask[j]);
  }
  typename VN::mask beyond[P];
  Reg<VN> ve[P];
  for (size_t p = 0; p < P; ++p) {
    Reg<VN> m[2] = {c[p][0], c[p][1]};
    for (size_t j = 2; j < N; ++j) m[j % 2] = VN::max(c[p][j], m[j % 2]);
    ve[p] = softmax_ref<VN>(VN::max(m[1], m[0]), beyond[p]);
  }
  Kahan2<VN> sum[P];
  for (size_t j = 0; j < N; ++j)
    for (size_t p = 0; p < P; ++p) {
      c[p][j] = pow2_term<VN>(c[p][j], ve[p]);
      sum[p].add(static_cast<int>(j & 1), c[p][j]);
    }
  Reg<VN> vinv[P];
  if (!softmax_invs<VN, P>(sum, beyond, vinv)) return false;
  for (size_t p = 0; p < P; ++p) {
    for (size_t j = 0; j < N; ++j) c[p][j] = VN::mul(c[p][j], vinv[p]);
    for (size_t o = 0; o < N; ++o)
      _mm512_storeu_ps(y + (p * N + o) * W, perm_from_pairs<N>(c[p], kT.out_idx[o], kT.out_mask[o]));
  }
  return true;
}

template <size_t N, size_t P>
void softmax_rows_perm(const float* x, float* y, size_t rows, float* buf, float* obuf, bool stream,
                       unsigned char* flag) {
  // A set reads its own rows only: reach N.
  softmax_rows_sets<F32x16, P>(x, y, rows, N, N, buf, obuf, stream, flag,
                               [](const float* xs, float* ys, auto groups) SSM_INLINE {
                                 return softmax_group_perm<N, decltype(groups)::value>(xs, ys);
                               });
}

// Rows of N take N-specific tables and loops: one softmax_rows_perm per N.
template <size_t N>
void softmax_rows_perm_n(const float* x, float* y, size_t rows, size_t n, float* buf, float* obuf, bool stream,
                         unsigned char* flag) {
  if constexpr (N <= SoftmaxPermRange<F32x16>::max_n) {
    if (n != N) return softmax_rows_perm_n<N + 1>(x, y, rows, n, buf, obuf, stream, flag);
    softmax_rows_perm<N, (N <= 8 ? 2 : 1)>(x, y, rows, buf, obuf, stream, flag);
  }
}
void SoftmaxPermRange<F32x16>::rows(const float* x, float* y, size_t rows, size_t n, float* buf, float* obuf,
                                    bool stream, unsigned char* flag) {
  softmax_rows_perm_n<2>(x, y, rows, n, buf, obuf, stream, flag);
}
