// Softmax-family kernels for AArch64 Advanced SIMD (NEON): the baseline of
// every arm64 CPU (Apple M-series, Graviton, Ampere, Cortex-A), so no CPU
// check is needed to run them. SVE is not used.
#include "vecmath_neon.h"
#define SSM_ISA neon
#include "softmax_generic.h"

namespace ssm {
const KernelSet& kernels_neon() {
  static const KernelSet set{"neon", neon::make_kernels<neon::F32x4, neon::F64x2, float>(),
                             neon::make_kernels<neon::F64x2, neon::F64x2, double>()};
  return set;
}
}  // namespace ssm
