// Softmax-family kernels for AVX2 + FMA (Haswell and later, Zen).
#include "vecmath_avx2.h"
#define SSM_ISA avx2
#include "softmax_generic.h"

namespace ssm {
const KernelSet& kernels_avx2() {
  static const KernelSet set{"avx2", avx2::make_kernels<avx2::F32x8, avx2::F64x4, float>(),
                             avx2::make_kernels<avx2::F64x4, avx2::F64x4, double>()};
  return set;
}
}  // namespace ssm
