// AVX-512 primitives for the Gumbel kernels: Philox4x32-10 on 16 blocks at
// once, and the exact conversions the noise transform needs. Every operation
// here is exact or correctly rounded, so random_avx2.h and random_scalar.h
// reproduce its results bit for bit.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "philox_constants.h"
#include "vecmath_avx512.h"

namespace ssm {
namespace avx512 {

struct Random {
  // 16 Philox4x32-10 blocks, counters (base + l, c2, c3) for lanes l = 0..15
  // (base is a multiple of 16, so the low word never carries): word w of
  // block base + l goes to out[16 w + l]. The 32x32->64 products of even and
  // odd lanes give both halves, so no vpmulld (two uops on several cores).
  static void philox16(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    __m512i x0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(base))),
                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i x1 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(base >> 32)));
    __m512i x2 = _mm512_set1_epi32(static_cast<int>(c2));
    __m512i x3 = _mm512_set1_epi32(static_cast<int>(c3));
    const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kPhiloxM0));
    const __m512i m1 = _mm512_set1_epi32(static_cast<int>(kPhiloxM1));
    for (int round = 0; round < 10; ++round) {
      const __m512i key0 = _mm512_set1_epi32(static_cast<int>(k0 + round * kPhiloxW0));
      const __m512i key1 = _mm512_set1_epi32(static_cast<int>(k1 + round * kPhiloxW1));
      const __m512i p0e = _mm512_mul_epu32(x0, m0), p0o = _mm512_mul_epu32(_mm512_srli_epi64(x0, 32), m0);
      const __m512i p1e = _mm512_mul_epu32(x2, m1), p1o = _mm512_mul_epu32(_mm512_srli_epi64(x2, 32), m1);
      const __m512i hi0 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(p0e, 32), p0o);
      const __m512i hi1 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(p1e, 32), p1o);
      x0 = _mm512_ternarylogic_epi32(hi1, x1, key0, 0x96);  // three-way xor
      x2 = _mm512_ternarylogic_epi32(hi0, x3, key1, 0x96);
      x1 = _mm512_mask_blend_epi32(0xAAAA, p1e, _mm512_slli_epi64(p1o, 32));  // low halves
      x3 = _mm512_mask_blend_epi32(0xAAAA, p0e, _mm512_slli_epi64(p0o, 32));
    }
    _mm512_storeu_si512(out, x0);
    _mm512_storeu_si512(out + 16, x1);
    _mm512_storeu_si512(out + 32, x2);
    _mm512_storeu_si512(out + 48, x3);
  }

  // uint32 words -> nearest float / exact double (16 words: one F32x16, or
  // two F64x8 halves).
  // ~v as v ^ m with m = all ones hidden from the optimizer: GCC turns a
  // visible v ^ ~0 into vpternlogd $0x55, whose destination operand is also
  // read: a false dependency on a stale register that chained each vector
  // of a tile to the previous one (10 cycles per vector instead of 1).
  static __m512i all_ones() {
    __m512i m = _mm512_set1_epi32(-1);
    __asm__("" : "+v"(m));
    return m;
  }
  static __m512 u32_to_f32(const uint32_t* w, bool complement) {
    __m512i v = _mm512_loadu_si512(w);
    if (complement) v = _mm512_xor_si512(v, all_ones());
    return _mm512_cvtepu32_ps(v);
  }
  static __m512d u32_to_f64(const uint32_t* w, bool complement) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    if (complement) v = _mm256_xor_si256(v, _mm512_castsi512_si256(all_ones()));
    return _mm512_cvtepu32_pd(v);
  }
  // floor(log2 y) and y / 2^floor(log2 y) in [1, 2), for normal y > 0: exact.
  static __m512 exponent(__m512 y) { return _mm512_getexp_ps(y); }
  static __m512 mantissa(__m512 y) { return _mm512_getmant_ps(y, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero); }
  static __m512d exponent(__m512d y) { return _mm512_getexp_pd(y); }
  static __m512d mantissa(__m512d y) { return _mm512_getmant_pd(y, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero); }
  static __m512 div(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }
  static __m512d div(__m512d a, __m512d b) { return _mm512_div_pd(a, b); }
};

}  // namespace avx512
}  // namespace ssm
