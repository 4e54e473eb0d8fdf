// AVX-512 primitives for the Gumbel kernels: Philox4x32-10 on 16 blocks at
// once, and the exact conversions the noise transform needs. Every operation
// here is exact or correctly rounded, so random_avx2.h and random_scalar.h
// reproduce its results bit for bit.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "philox_constants.h"
#include "vecmath_avx512.h"

namespace ssm {
namespace avx512 {

struct Random {
  // 8 H Philox4x32-10 blocks, counters (base + l, c2, c3) for l = 0..8H-1
  // (base is a multiple of 8H, so the low word never carries): word w of
  // block base + 16 g + l goes to out[64 g + 16 w + l]. Each block lives in
  // the low half of a 64-bit lane, 8 blocks per register: vpmuludq reads only
  // those halves, so the products need one shift and no blends, and the junk
  // left in the upper halves never reaches a result (30% fewer operations
  // than 16 blocks in 32-bit lanes, which must separate and re-interleave
  // even and odd lanes every round). A round is a 5-cycle chain (multiply,
  // shift, xor): H = 4 independent registers keep the ports busy where H = 2
  // leaves them waiting on it.
  template <int H>
  static void philox_blocks(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    __m512i x0[H], x1[H], x2[H], x3[H];
    for (int h = 0; h < H; ++h) {
      x0[h] = _mm512_add_epi64(_mm512_set1_epi64(static_cast<uint32_t>(base) + 8 * h), lane);
      x1[h] = _mm512_set1_epi64(static_cast<uint32_t>(base >> 32));
      x2[h] = _mm512_set1_epi64(c2);
      x3[h] = _mm512_set1_epi64(c3);
    }
    rounds<H>(x0, x1, x2, x3, k0, k1);
    for (int h = 0; h < H; h += 2) {
      uint32_t* o = out + 32 * h;
      _mm512_storeu_si512(o, low_words(x0[h], x0[h + 1]));
      _mm512_storeu_si512(o + 16, low_words(x1[h], x1[h + 1]));
      _mm512_storeu_si512(o + 32, low_words(x2[h], x2[h + 1]));
      _mm512_storeu_si512(o + 48, low_words(x3[h], x3[h + 1]));
    }
  }
  // The ten rounds on H registers of 8 blocks (low halves of 64-bit lanes).
  template <int H>
  static void rounds(__m512i* x0, __m512i* x1, __m512i* x2, __m512i* x3, uint32_t k0, uint32_t k1) {
    const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
    for (uint32_t round = 0; round < 10; ++round) {
      const __m512i key0 = _mm512_set1_epi64(static_cast<uint32_t>(k0 + round * kPhiloxW0));
      const __m512i key1 = _mm512_set1_epi64(static_cast<uint32_t>(k1 + round * kPhiloxW1));
      for (int h = 0; h < H; ++h) {
        const __m512i p0 = _mm512_mul_epu32(x0[h], m0), p1 = _mm512_mul_epu32(x2[h], m1);
        x0[h] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p1, 32), x1[h], key0, 0x96);  // three-way xor
        x2[h] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p0, 32), x3[h], key1, 0x96);
        x1[h] = p1;  // low halves: the products' low words
        x3[h] = p0;
      }
    }
  }
  // The low words of two registers, lanes 0..15 in order.
  static __m512i low_words(__m512i a, __m512i b) {
    const __m512i low = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_epi32(a, low, b);
  }
  // Philox4x32-10 of `count` arbitrary counters (x0[l], x1[l], x2[l], x3[l]),
  // a multiple of 16, each replaced by its block's words: the short-row
  // kernels' blocks belong to different rows and offsets. Same 64-bit lane
  // layout as philox_blocks (vpmovzxdq in), 32 counters per step where
  // there are that many. lanes_step: H registers whose counters
  // load(h, x0, x1, x2, x3) makes, their words stored at out0..out3.
  static __m512i widen(const uint32_t* p) {
    return _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  template <int H, class Load>
  static void lanes_step(Load&& load, uint32_t* out0, uint32_t* out1, uint32_t* out2, uint32_t* out3, uint32_t k0,
                         uint32_t k1) {
    __m512i x0[H], x1[H], x2[H], x3[H];
    for (int h = 0; h < H; ++h) load(h, x0[h], x1[h], x2[h], x3[h]);
    rounds<H>(x0, x1, x2, x3, k0, k1);
    // 16 lanes per store: the noise loads them as whole vectors right away,
    // and a load that spans two smaller stores is not forwarded (a stall).
    for (int h = 0; h < H; h += 2) {
      _mm512_storeu_si512(out0 + 8 * h, low_words(x0[h], x0[h + 1]));
      _mm512_storeu_si512(out1 + 8 * h, low_words(x1[h], x1[h + 1]));
      _mm512_storeu_si512(out2 + 8 * h, low_words(x2[h], x2[h + 1]));
      _mm512_storeu_si512(out3 + 8 * h, low_words(x3[h], x3[h + 1]));
    }
  }
  template <int H>
  static void philox_lanes_step(uint32_t* x0p, uint32_t* x1p, uint32_t* x2p, uint32_t* x3p, uint32_t k0,
                                uint32_t k1) {
    auto load = [&](int h, __m512i& x0, __m512i& x1, __m512i& x2, __m512i& x3) {
      x0 = widen(x0p + 8 * h);
      x1 = widen(x1p + 8 * h);
      x2 = widen(x2p + 8 * h);
      x3 = widen(x3p + 8 * h);
    };
    lanes_step<H>(load, x0p, x1p, x2p, x3p, k0, k1);
  }
  // philox_lanes of the counters (lo[l], hi[l], row0 + row[l] as two
  // words), made in registers (a 64-bit add: its high word is the counter's
  // last word): out0..out3 get the words, and no counter arrays are written
  // and read back (the short rows' draw: avx512, n = 8, 1.06 -> 0.91 ns per
  // element).
  template <int H>
  static void philox_rows_step(const uint32_t* lo, const uint32_t* hi, const uint32_t* row, uint64_t row0,
                               uint32_t* out0, uint32_t* out1, uint32_t* out2, uint32_t* out3, uint32_t k0,
                               uint32_t k1) {
    const __m512i base = _mm512_set1_epi64(static_cast<long long>(row0));
    auto load = [&](int h, __m512i& x0, __m512i& x1, __m512i& x2, __m512i& x3) {
      x0 = widen(lo + 8 * h);
      x1 = widen(hi + 8 * h);
      x2 = _mm512_add_epi64(widen(row + 8 * h), base);
      x3 = _mm512_srli_epi64(x2, 32);
    };
    lanes_step<H>(load, out0, out1, out2, out3, k0, k1);
  }
  static void philox_rows(const uint32_t* lo, const uint32_t* hi, const uint32_t* row, uint64_t row0, uint32_t* out0,
                          uint32_t* out1, uint32_t* out2, uint32_t* out3, size_t count, uint32_t k0, uint32_t k1) {
    size_t l = 0;
    for (; l + 32 <= count; l += 32)
      philox_rows_step<4>(lo + l, hi + l, row + l, row0, out0 + l, out1 + l, out2 + l, out3 + l, k0, k1);
    if (l < count) philox_rows_step<2>(lo + l, hi + l, row + l, row0, out0 + l, out1 + l, out2 + l, out3 + l, k0, k1);
  }
  static void philox_lanes(uint32_t* x0, uint32_t* x1, uint32_t* x2, uint32_t* x3, size_t count, uint32_t k0,
                           uint32_t k1) {
    size_t l = 0;
    for (; l + 32 <= count; l += 32) philox_lanes_step<4>(x0 + l, x1 + l, x2 + l, x3 + l, k0, k1);
    if (l < count) philox_lanes_step<2>(x0 + l, x1 + l, x2 + l, x3 + l, k0, k1);
  }
  // 16 blocks (64 words, out[16 w + l]) and 32 blocks (two such groups).
  static void philox16(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    philox_blocks<2>(base, c2, c3, k0, k1, out);
  }
  static void philox32(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    philox_blocks<4>(base, c2, c3, k0, k1, out);
  }

  // Complemented uint32 words ~w -> nearest float / exact double (16 words:
  // one F32x16, or two F64x8 halves).
  // ~v as v ^ m with m = all ones hidden from the optimizer: GCC turns a
  // visible v ^ ~0 into vpternlogd $0x55, whose destination operand is also
  // read: a false dependency on a stale register that chained each vector
  // of a tile to the previous one (10 cycles per vector instead of 1).
  static __m512i all_ones() {
    __m512i m = _mm512_set1_epi32(-1);
    __asm__("" : "+v"(m));
    return m;
  }
  static __m512 complement_f32(const uint32_t* w) {
    return _mm512_cvtepu32_ps(_mm512_xor_si512(_mm512_loadu_si512(w), all_ones()));
  }
  static __m512d complement_f64(const uint32_t* w) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    return _mm512_cvtepu32_pd(_mm256_xor_si256(v, _mm512_castsi512_si256(all_ones())));
  }
  // The folded words: v = w, or ~w where w >= 2^31 (hi), so v < 2^31 and a
  // signed convert takes it (correctly rounded to float, exact to double).
  static __m512 fold_f32(const uint32_t* w, __mmask16& hi) {
    const __m512i f = _mm512_loadu_si512(w);
    hi = _mm512_movepi32_mask(f);
    return _mm512_cvtepi32_ps(_mm512_xor_si512(f, _mm512_srai_epi32(f, 31)));
  }
  static __m512d fold_f64(const uint32_t* w, __mmask8& hi) {
    const __m256i f = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    hi = _mm256_movepi32_mask(f);
    return _mm512_cvtepi32_pd(_mm256_xor_si256(f, _mm256_srai_epi32(f, 31)));
  }
  // floor(log2 y) and y / 2^floor(log2 y) in [1, 2), for normal y > 0: exact.
  static __m512 exponent(__m512 y) { return _mm512_getexp_ps(y); }
  static __m512 mantissa(__m512 y) { return _mm512_getmant_ps(y, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero); }
  static __m512d exponent(__m512d y) { return _mm512_getexp_pd(y); }
  static __m512d mantissa(__m512d y) { return _mm512_getmant_pd(y, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero); }
  // Bit g: w[g] >= threshold, for the 64 words w[0..64), without a branch.
  static uint64_t at_least_bits64(const uint32_t* w, uint32_t threshold) {
    const __m512i t = _mm512_set1_epi32(static_cast<int>(threshold));
    uint64_t bits = 0;
    for (int q = 0; q < 4; ++q)
      bits |= static_cast<uint64_t>(_mm512_cmpge_epu32_mask(_mm512_loadu_si512(w + 16 * q), t)) << (16 * q);
    return bits;
  }
  // The lanes where a or b is NaN: one compare checks two vectors.
  static __mmask16 unordered(__m512 a, __m512 b) { return _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q); }
  static __mmask8 unordered(__m512d a, __m512d b) { return _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q); }
  static __m512 div(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }
  static __m512d div(__m512d a, __m512d b) { return _mm512_div_pd(a, b); }
};

}  // namespace avx512
}  // namespace ssm
