// Sampling kernels for AArch64 Advanced SIMD (NEON).
#include "random_neon.h"
#define SSM_ISA neon
#include "gumbel_generic.h"
#include "sample_generic.h"

namespace ssm {
const SampleSet& sample_kernels_neon() {
  static const SampleSet set{neon::make_sample_kernels<neon::F32x4, neon::F64x2, neon::Random, float>(),
                             neon::make_sample_kernels<neon::F64x2, neon::F64x2, neon::Random, double>()};
  return set;
}
}  // namespace ssm
