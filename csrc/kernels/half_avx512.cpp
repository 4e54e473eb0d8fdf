// The half-precision kernel set for AVX-512 F/DQ/BW/VL (half_avx512.h):
// bfloat16 rounded on store by the integer carry.
#include "half_avx512.h"

namespace ssm {

const HalfKernelSet& half_kernels_avx512() {
  static const HalfKernelSet set{"avx512", avx512::make_format<F16Bits>(), avx512::make_format<BF16Bits>()};
  return set;
}

}  // namespace ssm
