// topk_lanes.h's lane operations for AVX2; included after gumbel_generic.h
// (which includes topk_lanes.h) by gumbel_avx2.cpp and sample_avx2.cpp.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "topk_lanes.h"

namespace ssm {
namespace avx2 {
namespace {
// One 256-bit vector of values (8 float32 or 4 float64) and one of indices
// (int32 / int64 lanes); masks are vectors of all-ones lanes.
// The lane masks' operations on both widths (a mask: all-ones lanes; L, the
// width's own lanes, for first and shift).
template <class L>
struct TopkMasks {
  using M = __m256i;
  static M or_not(M a, M b, M keep) { return _mm256_and_si256(_mm256_or_si256(a, _mm256_andnot_si256(b, keep)), keep); }
  static M moved(M beaten) {  // lane j: beaten lanes j and j - 1 (lane 0 never)
    return _mm256_andnot_si256(L::first(1), _mm256_and_si256(beaten, _mm256_permutevar8x32_epi32(beaten, L::shift())));
  }
};
template <>
struct TopkLanes<float> : TopkMasks<TopkLanes<float>> {
  using F = __m256;
  using I = __m256i;
  static constexpr size_t width = 8;
  static F bcast(float v) { return _mm256_set1_ps(v); }
  static I index_bcast(size_t i) { return _mm256_set1_epi32(static_cast<int32_t>(i)); }
  static I shift() { return _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6); }
  static F lane(F v, size_t j) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(static_cast<int>(j))); }
  static F shifted(F v, I s) { return _mm256_permutevar8x32_ps(v, s); }
  static I shifted(I v, I s) { return _mm256_permutevar8x32_epi32(v, s); }
  static F blend(M m, F a, F b) { return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(m)); }
  static I blend(M m, I a, I b) { return _mm256_blendv_epi8(a, b, m); }
  static M first(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static M gt(M m, F a, F b) { return _mm256_and_si256(m, _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_GT_OQ))); }
  static uint32_t above(M m, const float* p, F kth) {
    const F v = _mm256_maskload_ps(p, m);
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_and_ps(_mm256_castsi256_ps(m), _mm256_cmp_ps(v, kth, _CMP_NLE_UQ))));
  }
  static uint32_t above_all(const float* p, F kth) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), kth, _CMP_NLE_UQ)));
  }
  static float first_lane(F v) { return _mm256_cvtss_f32(v); }
  static void store(float* value, int64_t* index, F v, I at, M keep) {
    _mm256_maskstore_ps(value, keep, v);
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(index), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(keep)),
                           _mm256_cvtepi32_epi64(_mm256_castsi256_si128(at)));
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(index + 4),
                           _mm256_cvtepi32_epi64(_mm256_extracti128_si256(keep, 1)),
                           _mm256_cvtepi32_epi64(_mm256_extracti128_si256(at, 1)));
  }
};
template <>
struct TopkLanes<double> : TopkMasks<TopkLanes<double>> {
  using F = __m256d;
  using I = __m256i;
  static constexpr size_t width = 4;
  static F bcast(double v) { return _mm256_set1_pd(v); }
  static I index_bcast(size_t i) { return _mm256_set1_epi64x(static_cast<long long>(i)); }
  static I shift() { return _mm256_setr_epi32(0, 1, 0, 1, 2, 3, 4, 5); }  // 64-bit lanes 0, 0, 1, 2
  static F lane(F v, size_t j) {
    const int32_t lo = static_cast<int32_t>(2 * j);
    return _mm256_castsi256_pd(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(v), _mm256_setr_epi32(lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1)));
  }
  static F shifted(F v, I s) { return _mm256_castsi256_pd(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(v), s)); }
  static I shifted(I v, I s) { return _mm256_permutevar8x32_epi32(v, s); }
  static F blend(M m, F a, F b) { return _mm256_blendv_pd(a, b, _mm256_castsi256_pd(m)); }
  static I blend(M m, I a, I b) { return _mm256_blendv_epi8(a, b, m); }
  static M first(size_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(n)), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static M gt(M m, F a, F b) { return _mm256_and_si256(m, _mm256_castpd_si256(_mm256_cmp_pd(a, b, _CMP_GT_OQ))); }
  static uint32_t above(M m, const double* p, F kth) {
    const F v = _mm256_maskload_pd(p, m);
    return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_and_pd(_mm256_castsi256_pd(m), _mm256_cmp_pd(v, kth, _CMP_NLE_UQ))));
  }
  static uint32_t above_all(const double* p, F kth) {
    return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p), kth, _CMP_NLE_UQ)));
  }
  static double first_lane(F v) { return _mm256_cvtsd_f64(v); }
  static void store(double* value, int64_t* index, F v, I at, M keep) {
    _mm256_maskstore_pd(value, keep, v);
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(index), keep, at);
  }
};

}  // namespace
}  // namespace avx2
}  // namespace ssm
