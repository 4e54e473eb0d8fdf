// Gumbel-family kernels for AArch64 Advanced SIMD (NEON).
#include "random_neon.h"
#define SSM_ISA neon
#include "gumbel_generic.h"

namespace ssm {
const GumbelSet& gumbel_kernels_neon() {
  static const GumbelSet set{neon::make_gumbel_kernels<neon::F32x4, neon::Random, float>(),
                             neon::make_gumbel_kernels<neon::F64x2, neon::Random, double>()};
  return set;
}
}  // namespace ssm
