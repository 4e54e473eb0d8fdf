// Sampling kernels for AVX-512.
#include "random_avx512.h"
#define SSM_ISA avx512
#include "gumbel_generic.h"
#include "sample_generic.h"

namespace ssm {
const SampleSet& sample_kernels_avx512() {
  static const SampleSet set{avx512::make_sample_kernels<avx512::F32x16, avx512::F64x8, avx512::Random, float>(),
                             avx512::make_sample_kernels<avx512::F64x8, avx512::F64x8, avx512::Random, double>()};
  return set;
}
}  // namespace ssm
