// Gumbel-family kernels for AVX2 + FMA.
#include "random_avx2.h"
#define SSM_ISA avx2
#include "gumbel_generic.h"
#include "topk_lanes_avx2.h"

namespace ssm {
const GumbelSet& gumbel_kernels_avx2() {
  static const GumbelSet set{avx2::make_gumbel_kernels<avx2::F32x8, avx2::Random, float>(),
                             avx2::make_gumbel_kernels<avx2::F64x4, avx2::Random, double>()};
  return set;
}
}  // namespace ssm
