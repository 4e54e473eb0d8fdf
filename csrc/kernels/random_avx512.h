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
  // block base + l goes to out[16 w + l]. Each block lives in the low half of
  // a 64-bit lane, 8 blocks per register: vpmuludq reads only those halves,
  // so the products need one shift and no blends, and the junk left in the
  // upper halves never reaches a result (30% fewer operations than 16 blocks
  // in 32-bit lanes, which must separate and re-interleave even and odd
  // lanes every round).
  static void philox16(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    __m512i x0[2], x1[2], x2[2], x3[2];
    for (int h = 0; h < 2; ++h) {
      x0[h] = _mm512_add_epi64(_mm512_set1_epi64(static_cast<uint32_t>(base) + 8 * h), lane);
      x1[h] = _mm512_set1_epi64(static_cast<uint32_t>(base >> 32));
      x2[h] = _mm512_set1_epi64(c2);
      x3[h] = _mm512_set1_epi64(c3);
    }
    const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
    for (uint32_t round = 0; round < 10; ++round) {
      const __m512i key0 = _mm512_set1_epi64(static_cast<uint32_t>(k0 + round * kPhiloxW0));
      const __m512i key1 = _mm512_set1_epi64(static_cast<uint32_t>(k1 + round * kPhiloxW1));
      for (int h = 0; h < 2; ++h) {
        const __m512i p0 = _mm512_mul_epu32(x0[h], m0), p1 = _mm512_mul_epu32(x2[h], m1);
        x0[h] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p1, 32), x1[h], key0, 0x96);  // three-way xor
        x2[h] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p0, 32), x3[h], key1, 0x96);
        x1[h] = p1;  // low halves: the products' low words
        x3[h] = p0;
      }
    }
    // the low words of both registers, lanes 0..15 in order
    const __m512i low = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    _mm512_storeu_si512(out, _mm512_permutex2var_epi32(x0[0], low, x0[1]));
    _mm512_storeu_si512(out + 16, _mm512_permutex2var_epi32(x1[0], low, x1[1]));
    _mm512_storeu_si512(out + 32, _mm512_permutex2var_epi32(x2[0], low, x2[1]));
    _mm512_storeu_si512(out + 48, _mm512_permutex2var_epi32(x3[0], low, x3[1]));
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
