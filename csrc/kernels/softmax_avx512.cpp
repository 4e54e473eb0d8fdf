// Softmax-family kernels for AVX-512 F/DQ/BW/VL (compiled with those flags
// only; dispatch.cpp calls them only after CPUID + XGETBV allow it).
#include "vecmath_avx512.h"
#define SSM_ISA avx512
#include "softmax_generic.h"

namespace ssm {
const KernelSet& kernels_avx512() {
  static const KernelSet set{"avx512", avx512::make_kernels<avx512::F32x16, avx512::F64x8, float>(),
                             avx512::make_kernels<avx512::F64x8, avx512::F64x8, double>()};
  return set;
}
}  // namespace ssm
