// Portable softmax-family kernels: one lane, double arithmetic for both
// dtypes. The baseline for CPUs without AVX2 and for non-x86 hosts.
#include "vecmath_scalar.h"
#define SSM_ISA scalar
#include "softmax_generic.h"

namespace ssm {
namespace scalar {
namespace {
// Unroll x block of the fast sums, picked with _core.testing.tune_expsum on a
// 256 KiB in-cache row (the fastest variant, measured on Zen 5).
template <>
struct Tuning<F64x1> {
  static constexpr int unroll = 8, block = 2, strided_block = 4, store_unroll = 4, store_block = 2;
};
}  // namespace
}  // namespace scalar
}  // namespace ssm

namespace ssm {
const KernelSet& kernels_scalar() {
  static const KernelSet set{"scalar", scalar::make_kernels<scalar::F64x1, scalar::F64x1, float>(),
                             scalar::make_kernels<scalar::F64x1, scalar::F64x1, double>()};
  return set;
}
}  // namespace ssm
