// Portable softmax-family kernels: one lane, double arithmetic for both
// dtypes. The baseline for CPUs without AVX2 and for non-x86 hosts.
#include "vecmath_scalar.h"
#define SSM_ISA scalar
#include "softmax_generic.h"

namespace ssm {
const KernelSet& kernels_scalar() {
  static const KernelSet set{"scalar", scalar::make_kernels<scalar::F64x1, scalar::F64x1, float>(),
                             scalar::make_kernels<scalar::F64x1, scalar::F64x1, double>()};
  return set;
}
}  // namespace ssm
