// float16 / bfloat16 conversions with AVX2 + F16C, 8 elements per vector.
// float16: vcvtph2ps / vcvtps2ph (immediate rounding: nearest even, which
// also turns overflow into inf and keeps NaN). bfloat16: shifts, with the
// round-to-nearest-even carry of convert_generic.h done on 8 lanes at once.
#include <immintrin.h>

#include <cstddef>

#include "convert_api.h"
#define SSM_CONVERT_NS convert_avx2_ns
#include "convert_generic.h"

namespace ssm {
namespace convert_avx2_ns {
namespace {

void f16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  f16_to_f32_tail(x + i, y + i, n - i);
}

void f32_to_f16(const float* x, uint16_t* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  f32_to_f16_tail(x + i, y + i, n - i);
}

void bf16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_slli_epi32(wide, 16));
  }
  bf16_to_f32_tail(x + i, y + i, n - i);
}

// 8 floats -> their bfloat16 bits in the low 16 bits of each 32-bit lane.
inline __m256i round_bf16(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x0040));
  const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  return _mm256_blendv_epi8(rounded, quiet, _mm256_castps_si256(nan));
}

void f32_to_bf16(const float* x, uint16_t* y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = round_bf16(_mm256_loadu_ps(x + i)), b = round_bf16(_mm256_loadu_ps(x + i + 8));
    // packus works within 128-bit lanes: a0 b0 a1 b1 -> reorder the 64-bit quarters.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), packed);
  }
  f32_to_bf16_tail(x + i, y + i, n - i);
}

}  // namespace
}  // namespace convert_avx2_ns

const HalfConvert& convert_avx2() {
  using namespace convert_avx2_ns;
  static const HalfConvert set{"avx2", &f16_to_f32, &bf16_to_f32, &f32_to_f16, &f32_to_bf16};
  return set;
}
}  // namespace ssm
