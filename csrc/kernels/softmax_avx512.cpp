// Softmax-family kernels for AVX-512 F/DQ/BW/VL (compiled with those flags
// only; dispatch.cpp calls them only after CPUID + XGETBV allow it).
#include "vecmath_avx512.h"
#define SSM_ISA avx512
#include "softmax_generic.h"

namespace ssm {
namespace avx512 {
namespace {
// Unroll x block of the fast sums, picked with _core.testing.tune_expsum on a
// 256 KiB in-cache row (the fastest variant, measured on Zen 5).
template <>
struct Tuning<F32x16> {
  static constexpr int unroll = 8, block = 2, strided_block = 4, store_unroll = 4, store_block = 2;
};
// float64: u4b2 since the 16-entry table and the one-fma reduction, which
// left fewer operations per term for the extra chains of u8b1 to hide (u4b2
// was ~7% faster in cache and ~5% out of cache).
template <>
struct Tuning<F64x8> {
  static constexpr int unroll = 4, block = 2, strided_block = 4, store_unroll = 4, store_block = 2;
};
// float32 log_softmax's pass 1 is bound by its arithmetic here (~23
// vector operations per 16 elements against ~13 for softmax's): offer the
// pass with the one-float table (expsum_lse32_fast, two fewer).
template <>
struct Lse32Tuning<F32x16> {
  static constexpr int unroll = 4, chains = 2;
  static constexpr bool copy = false;
  static constexpr bool fast = true;
};
}  // namespace
}  // namespace avx512
}  // namespace ssm

namespace ssm {
const KernelSet& kernels_avx512() {
  static const KernelSet set{"avx512", avx512::make_kernels<avx512::F32x16, avx512::F64x8, float>(),
                             avx512::make_kernels<avx512::F64x8, avx512::F64x8, double>()};
  return set;
}
}  // namespace ssm
