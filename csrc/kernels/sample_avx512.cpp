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
template <>
struct CoarseTuning<F32x16> {
  static constexpr size_t unroll = 8;
};
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
