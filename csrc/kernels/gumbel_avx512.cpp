// Gumbel-family kernels for AVX-512 (F/DQ/BW/VL).
#include "random_avx512.h"
#define SSM_ISA avx512
#include "gumbel_generic.h"
#include "topk_lanes_avx512.h"

namespace ssm {
const GumbelSet& gumbel_kernels_avx512() {
  static const GumbelSet set{avx512::make_gumbel_kernels<avx512::F32x16, avx512::Random, float>(),
                             avx512::make_gumbel_kernels<avx512::F64x8, avx512::Random, double>()};
  return set;
}
}  // namespace ssm
