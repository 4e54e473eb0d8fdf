// Sampling kernels for AVX-512.
#include "random_avx512.h"
#define SSM_ISA avx512
#include "gumbel_generic.h"
#include "sample_generic.h"

namespace ssm {
namespace avx512 {
namespace {
// mass_coarse: 8 vectors in flight (24 sums and maxes of 32 registers):
// the pass alone over one warm row of 151,936 float32, against 4 (the
// default): 0.62 -> 0.58 of logsumexp of the same row (3 alternating runs,
// medians of 500)
// No next-row prefetch: the 256 KiB the other kernel sets prefetch, spread
// over this pass, made the batch slower (Zen 5, 64 x 151,936 float32,
// 1 thread, sample(temperature=0.7, top_p=0.95), fastest of 7 interleaved
// processes: 33.8 -> 30.1 us per row at sigma 1, 33.5 -> 29.2 at sigma 3;
// 64 or 128 KiB: the same as none).
template <>
struct CoarseTuning<F32x16> {
  static constexpr size_t unroll = 8;
  static constexpr size_t next_bytes = 0;
};

// SampleKernels::short_topk (sample_generic.h's short_topk_lanes) in one
// 512-bit vector of values (16 float32 or 8 float64) and one of indices.
template <class T>
struct ShortTopkLanes;
// The lane masks' operations, the same on both widths (bit j: lane j).
template <class Mask, size_t Width>
struct ShortTopkMasks {
  using M = Mask;
  static constexpr size_t width = Width;
  static M first(size_t n) { return static_cast<M>((uint32_t{1} << n) - 1u); }
  static M or_not(M a, M b, M keep) { return static_cast<M>((a | ~b) & keep); }
  static M moved(M beaten) { return static_cast<M>(beaten & (beaten << 1)); }
};
template <>
struct ShortTopkLanes<float> : ShortTopkMasks<__mmask16, 16> {
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
struct ShortTopkLanes<double> : ShortTopkMasks<__mmask8, 8> {
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

template <>
struct ShortTopk<F32x16, float> : ShortTopkBy<ShortTopkLanes<float>, float> {};
template <>
struct ShortTopk<F64x8, double> : ShortTopkBy<ShortTopkLanes<double>, double> {};
}  // namespace
}  // namespace avx512
}  // namespace ssm

namespace ssm {
const SampleSet& sample_kernels_avx512() {
  static const SampleSet set{avx512::make_sample_kernels<avx512::F32x16, avx512::F64x8, avx512::Random, float>(),
                             avx512::make_sample_kernels<avx512::F64x8, avx512::F64x8, avx512::Random, double>()};
  return set;
}
}  // namespace ssm
