// float32 softmax of rows of 2 to SoftmaxPermRange<F32x16>::max_n elements
// (and of its vector_n, below) on AVX-512: included by rows_avx512.cpp
// after rows_generic.h (its anonymous namespace, lane types, softmax_group's
// arithmetic).
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

// Rows of 16 (SoftmaxPermRange<F32x16>::vector_n): one row is one vector,
// so the terms need no columns at all; only each row's max and sum cross
// lanes. Sixteen rows' maxima come to one vector by a reduction tree of
// two-source shuffles (halves, then 128-bit quarters, then pairs and
// single lanes within them: 30 shuffles and 15 max), permuted into row
// order; softmax_ref takes it lane for lane and each row's reference is
// broadcast back by one permute. The terms are pow2_term's with that
// reference: the same bits as softmax_group's. The sums go in float64, each
// row's two halves widened and added, then a tree as the max's; 1 / sum by
// inv_sum_lanes, rounded to float32 as softmax_inv does, broadcast back per
// row. About 140 shuffles and permutes per 16 rows, where the 16 x 16
// transposes in and out (softmax_group_regs, or softmax_group's through
// buf) take 256. Zen 5, 4 Mi-element batches, 1 thread, bench/ab_builds.py,
// three runs of 11 rounds at load 12-15, time / softmax_group's: minima
// 0.539, 0.530, 0.514, medians 0.448, 0.439, 0.444 (0.57-0.59 -> 0.26 ns
// per element; n = 8 0.33, n = 32 0.33).
// The float64 sum (15 adds of terms >= 0, each within 2^-53 relative) is
// not softmax_group's (float32 Kahan chains by column parity, within about
// 2^-23 relative): 1 / sum, and with it the row's outputs, may differ from
// softmax_group's by an ulp or two, within the accuracy contract (closer to
// the exact sum). So that a row's bits never depend on its neighbours,
// every row of 16 takes this kernel, those of the batch's last partial
// group too (rows past it are not read or written), and a row that is not
// ordinary (beyond kFastLimit, NaN, +inf, all -inf) goes alone to
// softmax_group (lanes never mix there: its bits are those it had among
// fifteen others).
// Rows of 13-15 the same way (masked loads and stores, or whole-vector
// loads and stores spilling into the next row, -inf in the lanes past the
// row) were slower than softmax_group_regs in most processes: Zen 5, 4
// Mi-element batches, 1 thread, bench/ab_builds.py, 11 rounds, time /
// softmax_group_regs', medians (minima): masked n = 13 1.88 (1.77), 15
// 1.63 (1.62); whole vectors n = 13 1.15 (1.11), 14 1.66 (0.91), 15 2.07
// (0.66).
namespace vec16 {
// Row r's lane out of reduce16 (max) and out of sums16 (sum, its two
// halves narrowed into one vector).
constexpr int max_lane(int r) { return 4 * (r % 4) + r / 4; }
constexpr int sum_lane(int r) { return 8 * (r / 8) + 2 * (r % 4) + (r % 8) / 4; }
struct TreeOrder {
  int32_t max_rows[16] = {}, sum_rows[16] = {};  // lane r: row r's lane
  constexpr TreeOrder() {
    for (int r = 0; r < 16; ++r) {
      max_rows[r] = max_lane(r);
      sum_rows[r] = sum_lane(r);
    }
  }
};

// Sixteen vectors to one of their lane-wise reductions (op: max or add),
// lane max_lane(r) holding row r's.
template <class Op>
SSM_INLINE inline __m512 reduce16(const __m512 (&v)[16], Op op) {
  __m512 h[8], q[4], p[2];
  for (int i = 0; i < 8; ++i)  // lanes 0-7: row 2 i's half results, 8-15: row 2 i + 1's
    h[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)  // quarter k: row 4 i + k
    q[i] = op(_mm512_shuffle_f32x4(h[2 * i], h[2 * i + 1], 0x88), _mm512_shuffle_f32x4(h[2 * i], h[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)  // quarter k: rows 8 i + k (lanes 0, 1), 8 i + 4 + k (lanes 2, 3)
    p[i] = op(_mm512_shuffle_ps(q[2 * i], q[2 * i + 1], 0x44), _mm512_shuffle_ps(q[2 * i], q[2 * i + 1], 0xEE));
  return op(_mm512_shuffle_ps(p[0], p[1], 0x88), _mm512_shuffle_ps(p[0], p[1], 0xDD));
}

// Sixteen rows' sums in float64 by a tree like reduce16's: row r in lane
// sum_lane(r) of the two halves lo, hi taken together.
SSM_INLINE inline void sums16(const __m512 (&t)[16], __m512d& lo, __m512d& hi) {
  __m512d s[16], h[8], q[4];
  for (int r = 0; r < 16; ++r)
    s[r] = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(t[r])),
                         _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t[r]), 1))));
  for (int i = 0; i < 8; ++i)  // lanes 0-3: row 2 i, 4-7: row 2 i + 1
    h[i] = _mm512_add_pd(_mm512_shuffle_f64x2(s[2 * i], s[2 * i + 1], 0x44),
                         _mm512_shuffle_f64x2(s[2 * i], s[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)  // quarter k: row 4 i + k
    q[i] = _mm512_add_pd(_mm512_shuffle_f64x2(h[2 * i], h[2 * i + 1], 0x88),
                         _mm512_shuffle_f64x2(h[2 * i], h[2 * i + 1], 0xDD));
  // Lane 2 k + e of lo: row 4 e + k (quarters k of q[0], q[1]); of hi: 8 + 4 e + k.
  lo = _mm512_add_pd(_mm512_unpacklo_pd(q[0], q[1]), _mm512_unpackhi_pd(q[0], q[1]));
  hi = _mm512_add_pd(_mm512_unpacklo_pd(q[2], q[3]), _mm512_unpackhi_pd(q[2], q[3]));
}

SSM_INLINE inline __m512 lane_of(__m512 v, int lane) { return _mm512_permutexvar_ps(_mm512_set1_epi32(lane), v); }
}  // namespace vec16

// The first g <= 16 rows of a group of rows of 16; the rows that are not
// ordinary (bit r: row r) are not stored.
SSM_INLINE inline __mmask16 softmax_group_vec16(const float* x, float* y, size_t g) {
  using VN = F32x16;
  using VW = F64x8;
  alignas(64) static constexpr vec16::TreeOrder kOrder{};
  __m512 t[16];
  for (size_t r = 0; r < 16; ++r)  // rows past g: 0 (ordinary, not stored)
    t[r] = r < g ? _mm512_loadu_ps(x + r * 16) : _mm512_setzero_ps();
  typename VN::mask beyond;
  const __m512 vmax = vec16::reduce16(t, [](__m512 a, __m512 b) SSM_INLINE { return _mm512_max_ps(a, b); });
  const __m512 ve = softmax_ref<VN>(_mm512_permutexvar_ps(_mm512_load_si512(kOrder.max_rows), vmax), beyond);
  for (size_t r = 0; r < 16; ++r) t[r] = pow2_term<VN>(t[r], vec16::lane_of(ve, static_cast<int>(r)));
  __m512d lo, hi;
  vec16::sums16(t, lo, hi);
  const __m512 vinv = VN::select(beyond, VN::set1(0.0),
                                 _mm512_permutexvar_ps(_mm512_load_si512(kOrder.sum_rows),
                                                       VN::narrow(inv_sum_lanes<VW>(lo), inv_sum_lanes<VW>(hi))));
  const __mmask16 bad = VN::not_le(VN::set1(0x1p-126), vinv);
  for (size_t r = 0; r < g; ++r)
    if (!((bad >> r) & 1u)) _mm512_storeu_ps(y + r * 16, VN::mul(t[r], vec16::lane_of(vinv, static_cast<int>(r))));
  return static_cast<__mmask16>(bad & ((1u << g) - 1u));
}

// Out of line: inlined into softmax_rows, its direct rows (n = 32, 64,
// untouched) took 1.09-1.12x their time, minima of two runs of 11-15
// interleaved processes; out of line 0.99-1.01.
SSM_NOINLINE void softmax_rows_vec16(const float* x, float* y, size_t rows, float* buf, float* obuf, bool stream,
                                     unsigned char* flag) {
  for (size_t r = 0; r < rows; r += 16) {
    const size_t g = rows - r < 16 ? rows - r : 16;
    const __mmask16 bad = g == 16 ? softmax_group_vec16(x + r * 16, y + r * 16, 16)
                                  : softmax_group_vec16(x + r * 16, y + r * 16, g);
    std::memset(flag + r, 0, g);
    for (size_t l = 0; l < g; ++l)
      if ((bad >> l) & 1u)
        softmax_group_redo<F32x16>(x + (r + l) * 16, y + (r + l) * 16, 16, 1, buf, obuf, stream, flag + r + l);
  }
}

void SoftmaxPermRange<F32x16>::rows(const float* x, float* y, size_t rows, size_t n, float* buf, float* obuf,
                                    bool stream, unsigned char* flag) {
  if (n == vector_n) return softmax_rows_vec16(x, y, rows, buf, obuf, stream, flag);
  softmax_rows_perm_n<2>(x, y, rows, n, buf, obuf, stream, flag);
}
