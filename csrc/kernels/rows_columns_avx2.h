// The columns of a group of 8 float32 rows of 2, 3 or 4 elements on AVX2,
// for rows_generic.h's register groups (load_group_regs with a fixed row
// length: log_softmax_rows_regs, lse_rows_regs): included by rows_avx2.cpp
// after rows_generic.h (its anonymous namespace, lane types and
// GroupColumns).
//
// A group of 8 rows of N elements is N whole vectors of x (8 N contiguous
// floats). The W x W transpose takes 8 loads at stride N and 24 shuffles
// whatever N; from the N whole vectors:
//  - N = 2: the even and odd lanes of the two vectors (F32x8::deinterleave,
//    4 shuffles);
//  - N = 3: element j of row i is float 3 i + j of the group, in lane
//    (3 i + j) mod 8 of vector (3 i + j) / 8. For each column those lanes
//    are the eight distinct ones (3 and 8 are coprime): two blends with
//    constant masks gather the column's elements from the three vectors,
//    one lane permute puts row i in lane i (9 operations for the three
//    columns);
//  - N = 4: rows i and i + 4 as the two 128-bit halves of one vector (a
//    load and an insert from memory), then a 4 x 4 transpose within the
//    halves (8 shuffles).
// No load reaches past the group. The columns are the same values in the
// same lanes as the transposes' (so the same bits downstream).

// Lanes of vector K of the group that hold column J's elements (rows of N).
template <size_t N>
constexpr int column_blend(size_t j, size_t k) {
  int m = 0;
  for (size_t i = 0; i < 8; ++i)
    if ((N * i + j) / 8 == k) m |= 1 << ((N * i + j) % 8);
  return m;
}

// Per column j of rows of N: lane i takes lane (N i + j) mod 8 of the blend.
template <size_t N>
struct ColumnPermutes {
  int32_t lane[N][8] = {};
  constexpr ColumnPermutes() {
    for (size_t j = 0; j < N; ++j)
      for (size_t i = 0; i < 8; ++i) lane[j][i] = static_cast<int32_t>((N * i + j) % 8);
  }
};

template <>
struct GroupColumns<F32x8, 2> : std::true_type {
  template <size_t C>
  SSM_INLINE static void load(const float* x, Reg<F32x8> (&c)[C]) {
    F32x8::deinterleave(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8), c[0], c[1]);
  }
};

template <>
struct GroupColumns<F32x8, 3> : std::true_type {
  template <size_t J>
  SSM_INLINE static __m256 column(const __m256 (&v)[3]) {
    alignas(32) static constexpr ColumnPermutes<3> kP{};
    // constants, so that the blends get immediates in unoptimized builds too
    constexpr int kFrom1 = column_blend<3>(J, 1), kFrom2 = column_blend<3>(J, 2);
    const __m256 gathered = _mm256_blend_ps(_mm256_blend_ps(v[0], v[1], kFrom1), v[2], kFrom2);
    return _mm256_permutevar8x32_ps(gathered, _mm256_load_si256(reinterpret_cast<const __m256i*>(kP.lane[J])));
  }
  template <size_t C>
  SSM_INLINE static void load(const float* x, Reg<F32x8> (&c)[C]) {
    const __m256 v[3] = {_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8), _mm256_loadu_ps(x + 16)};
    c[0] = column<0>(v);
    c[1] = column<1>(v);
    c[2] = column<2>(v);
  }
};

template <>
struct GroupColumns<F32x8, 4> : std::true_type {
  template <size_t C>
  SSM_INLINE static void load(const float* x, Reg<F32x8> (&c)[C]) {
    __m256 v[4];
    for (size_t i = 0; i < 4; ++i)  // rows i | i + 4
      v[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(x + 4 * i)), _mm_loadu_ps(x + 16 + 4 * i), 1);
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    c[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    c[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    c[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    c[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
  }
};
