// Portable Gumbel-family kernels: float noise for float32 data and double for
// float64, with std::fma, so the samples match the SIMD kernel sets bit for bit.
#include "vecmath_scalar.h"
#include "random_scalar.h"
#define SSM_ISA scalar
#include "gumbel_generic.h"

namespace ssm {
const GumbelSet& gumbel_kernels_scalar() {
  static const GumbelSet set{scalar::make_gumbel_kernels<scalar::F32x1, scalar::Random, float>(),
                             scalar::make_gumbel_kernels<scalar::F64x1F, scalar::Random, double>()};
  return set;
}
}  // namespace ssm
