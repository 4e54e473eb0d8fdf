// Sampling kernels for AVX2 + FMA.
#include "random_avx2.h"
#define SSM_ISA avx2
#include "gumbel_generic.h"
#include "sample_generic.h"
#include "topk_lanes_avx2.h"

namespace ssm {
namespace avx2 {
namespace {
// mass_coarse on 16 ymm registers: 2 vectors in flight (at 4, GCC kept 6 of
// the 8 sums on the stack, a store and a reload per add; measured with the
// degree-2 polynomial exp the pass had before linear_pow2).
template <>
struct CoarseTuning<F32x8> {
  static constexpr size_t unroll = 2;
  static constexpr size_t next_bytes = kCoarseNextBytes;
};

template <>
struct ShortTopk<F32x8, float> : ShortTopkBy<TopkLanes<float>, float> {};
template <>
struct ShortTopk<F64x4, double> : ShortTopkBy<TopkLanes<double>, double> {};
}  // namespace
}  // namespace avx2
}  // namespace ssm

namespace ssm {
const SampleSet& sample_kernels_avx2() {
  static const SampleSet set{avx2::make_sample_kernels<avx2::F32x8, avx2::F64x4, avx2::Random, float>(),
                             avx2::make_sample_kernels<avx2::F64x4, avx2::F64x4, avx2::Random, double>()};
  return set;
}
}  // namespace ssm
