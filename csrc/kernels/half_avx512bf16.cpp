// The half-precision kernel set for AVX-512 F/DQ/BW/VL plus AVX512_BF16
// (half_avx512.h compiled with -mavx512bf16): bfloat16 rounded on store by
// vcvtneps2bf16 / vcvtne2ps2bf16 instead of the integer carry (3-4 vector
// operations fewer per 16 values). The dispatcher takes it in place of
// half_kernels_avx512() only where CPUID reports AVX512_BF16 (and the OS
// saves the ZMM state); same results bit for bit (tests/test_half*.py run both).
// Everything included here lands in namespace ssm::avx512bf16, not
// ssm::avx512: the inline members of vecmath_avx512.h's types have external
// (weak) linkage, and a copy compiled with -mavx512bf16 must never be the one
// the linker keeps for the plain avx512 set (tools/check_symbols.sh checks
// this object against its own namespace). "avx512" appears in these headers
// only as that namespace's name.
#define avx512 avx512bf16
#include "half_avx512.h"

#if !defined(__AVX512BF16__)
#error "half_avx512bf16.cpp needs the AVX512_BF16 instructions enabled (-mavx512bf16)"
#endif

namespace ssm {

const HalfKernelSet& half_kernels_avx512bf16() {
  static const HalfKernelSet set{"avx512", avx512::make_format<F16Bits>(), avx512::make_format<BF16Bits>()};
  return set;
}
#undef avx512

}  // namespace ssm
