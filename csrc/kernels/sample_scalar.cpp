// Portable sampling kernels (scalar lanes; the same bits as the SIMD sets).
#include "vecmath_scalar.h"
#include "random_scalar.h"
#define SSM_ISA scalar
#include "gumbel_generic.h"
#include "sample_generic.h"

namespace ssm {
const SampleSet& sample_kernels_scalar() {
  static const SampleSet set{scalar::make_sample_kernels<scalar::F32x1, scalar::F64x1F, scalar::Random, float>(),
                             scalar::make_sample_kernels<scalar::F64x1F, scalar::F64x1F, scalar::Random, double>()};
  return set;
}
}  // namespace ssm
