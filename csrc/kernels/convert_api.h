// float16 / bfloat16 <-> float32 conversions, one table per instruction set.
// Plain C++ types only (the half values travel as their uint16_t bits), so
// the half driver (baseline code) calls any set through the same pointers.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ssm {

enum class HalfFormat { Float16 = 0, BFloat16 = 1 };

struct HalfConvert {
  const char* name;
  // Exact: every float16 and bfloat16 value is a float32.
  void (*f16_to_f32)(const uint16_t* x, float* y, size_t n);
  void (*bf16_to_f32)(const uint16_t* x, float* y, size_t n);
  // Round to nearest, ties to even, once; overflow gives +-inf, NaN stays
  // NaN (quiet, sign kept).
  void (*f32_to_f16)(const float* x, uint16_t* y, size_t n);
  void (*f32_to_bf16)(const float* x, uint16_t* y, size_t n);
};

// One per conversion translation unit.
const HalfConvert& convert_scalar();
#if defined(SSM_HAVE_X86_KERNELS)
const HalfConvert& convert_avx2();    // AVX2 + F16C
const HalfConvert& convert_avx512();  // AVX-512 F/BW/VL
#endif
#if defined(SSM_HAVE_NEON_KERNELS)
const HalfConvert& convert_neon();  // AArch64 Advanced SIMD
#endif

}  // namespace ssm
