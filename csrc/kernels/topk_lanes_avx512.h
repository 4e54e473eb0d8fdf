// topk_lanes.h's lane operations for AVX-512; included after gumbel_generic.h
// (which includes topk_lanes.h) by gumbel_avx512.cpp and sample_avx512.cpp.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "topk_lanes.h"

namespace ssm {
namespace avx512 {
namespace {
// One 512-bit vector of values (16 float32 or 8 float64) and one of
// indices (int32 / int64 lanes).
// The lane masks' operations, the same on both widths (bit j: lane j).
template <class Mask, size_t Width>
struct TopkMasks {
  using M = Mask;
  static constexpr size_t width = Width;
  static M first(size_t n) { return static_cast<M>((uint32_t{1} << n) - 1u); }
  static M or_not(M a, M b, M keep) { return static_cast<M>((a | ~b) & keep); }
  static M moved(M beaten) { return static_cast<M>(beaten & (beaten << 1)); }
};
template <>
struct TopkLanes<float> : TopkMasks<__mmask16, 16> {
  using F = __m512;
  using I = __m512i;
  static F bcast(float v) { return _mm512_set1_ps(v); }
  static I index_bcast(size_t i) { return _mm512_set1_epi32(static_cast<int32_t>(i)); }
  static I shift() { return _mm512_set_epi32(14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0); }
  static F lane(F v, size_t j) { return _mm512_permutexvar_ps(_mm512_set1_epi32(static_cast<int>(j)), v); }
  static F shifted(F v, I s) { return _mm512_permutexvar_ps(s, v); }
  static I shifted(I v, I s) { return _mm512_permutexvar_epi32(s, v); }
  static F blend(M m, F a, F b) { return _mm512_mask_blend_ps(m, a, b); }
  static I blend(M m, I a, I b) { return _mm512_mask_blend_epi32(m, a, b); }
  static M gt(M m, F a, F b) { return _mm512_mask_cmp_ps_mask(m, a, b, _CMP_GT_OQ); }
  static uint32_t above(M m, const float* p, F kth) {
    return _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, p), kth, _CMP_NLE_UQ);
  }
  static uint32_t above_all(const float* p, F kth) { return _mm512_cmp_ps_mask(_mm512_loadu_ps(p), kth, _CMP_NLE_UQ); }
  static float first_lane(F v) { return _mm512_cvtss_f32(v); }
  static void store(float* value, int64_t* index, F v, I at, M keep) {
    _mm512_mask_storeu_ps(value, keep, v);
    _mm512_mask_storeu_epi64(index, static_cast<__mmask8>(keep), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at)));
    _mm512_mask_storeu_epi64(index + 8, static_cast<__mmask8>(keep >> 8),
                             _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1)));
  }
};
template <>
struct TopkLanes<double> : TopkMasks<__mmask8, 8> {
  using F = __m512d;
  using I = __m512i;
  static F bcast(double v) { return _mm512_set1_pd(v); }
  static I index_bcast(size_t i) { return _mm512_set1_epi64(static_cast<int64_t>(i)); }
  static I shift() { return _mm512_set_epi64(6, 5, 4, 3, 2, 1, 0, 0); }
  static F lane(F v, size_t j) { return _mm512_permutexvar_pd(_mm512_set1_epi64(static_cast<int64_t>(j)), v); }
  static F shifted(F v, I s) { return _mm512_permutexvar_pd(s, v); }
  static I shifted(I v, I s) { return _mm512_permutexvar_epi64(s, v); }
  static F blend(M m, F a, F b) { return _mm512_mask_blend_pd(m, a, b); }
  static I blend(M m, I a, I b) { return _mm512_mask_blend_epi64(m, a, b); }
  static M gt(M m, F a, F b) { return _mm512_mask_cmp_pd_mask(m, a, b, _CMP_GT_OQ); }
  static uint32_t above(M m, const double* p, F kth) {
    return _mm512_mask_cmp_pd_mask(m, _mm512_maskz_loadu_pd(m, p), kth, _CMP_NLE_UQ);
  }
  static uint32_t above_all(const double* p, F kth) { return _mm512_cmp_pd_mask(_mm512_loadu_pd(p), kth, _CMP_NLE_UQ); }
  static double first_lane(F v) { return _mm512_cvtsd_f64(v); }
  static void store(double* value, int64_t* index, F v, I at, M keep) {
    _mm512_mask_storeu_pd(value, keep, v);
    _mm512_mask_storeu_epi64(index, keep, at);
  }
};

}  // namespace
}  // namespace avx512
}  // namespace ssm
