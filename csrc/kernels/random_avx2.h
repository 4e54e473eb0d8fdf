// AVX2 primitives for the Gumbel kernels; bit-identical to random_avx512.h
// (see there). The 16 Philox lanes are two 8-lane halves.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "philox_constants.h"
#include "vecmath_avx2.h"

namespace ssm {
namespace avx2 {

struct Random {
  // One Philox round on 8 blocks in 32-bit lanes.
  static void philox8_round(__m256i& x0, __m256i& x1, __m256i& x2, __m256i& x3, __m256i m0, __m256i m1, __m256i key0,
                            __m256i key1) {
    const __m256i p0e = _mm256_mul_epu32(x0, m0), p0o = _mm256_mul_epu32(_mm256_srli_epi64(x0, 32), m0);
    const __m256i p1e = _mm256_mul_epu32(x2, m1), p1o = _mm256_mul_epu32(_mm256_srli_epi64(x2, 32), m1);
    const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(p0e, 32), p0o, 0xAA);
    const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(p1e, 32), p1o, 0xAA);
    // the low words from the same products (vpmulld is two uops and twice
    // the latency of the vpmuludq it repeats)
    const __m256i lo0 = _mm256_blend_epi32(p0e, _mm256_slli_epi64(p0o, 32), 0xAA);
    const __m256i lo1 = _mm256_blend_epi32(p1e, _mm256_slli_epi64(p1o, 32), 0xAA);
    x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), key0);
    x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), key1);
    x1 = lo1;
    x3 = lo0;
  }
  // 16 blocks, counters (base + l, c2, c3), as two 8-lane halves whose
  // rounds alternate: each round is an 8-cycle chain (shift, multiply,
  // shift, blend, two xors), and one half at a time (two calls of a
  // one-half function) left the ports waiting on it: 64.5 -> 49.0 TSC
  // cycles per 8 blocks, medians of 41 interleaved rounds of 2000 calls
  // (a standalone loop of calls, not the kernels; AMD EPYC Zen 3 with load
  // 8-15 on 2 vCPUs). The round keys are broadcast once per round for both
  // halves.
  static void philox16(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
    const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
    const __m256i lo = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(base)));
    __m256i x0[2], x1[2], x2[2], x3[2];
    x0[0] = _mm256_add_epi32(lo, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    x0[1] = _mm256_add_epi32(lo, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15));
    for (int h = 0; h < 2; ++h) {
      x1[h] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(base >> 32)));
      x2[h] = _mm256_set1_epi32(static_cast<int>(c2));
      x3[h] = _mm256_set1_epi32(static_cast<int>(c3));
    }
    // Unrolled: a rolled loop rotated the state through register moves and
    // spills (about 66 instructions a round for the 36 of the two halves).
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC unroll 10
#endif
    for (int round = 0; round < 10; ++round) {
      const __m256i key0 = _mm256_set1_epi32(static_cast<int>(k0 + round * kPhiloxW0));
      const __m256i key1 = _mm256_set1_epi32(static_cast<int>(k1 + round * kPhiloxW1));
      for (int h = 0; h < 2; ++h) philox8_round(x0[h], x1[h], x2[h], x3[h], m0, m1, key0, key1);
    }
    for (int h = 0; h < 2; ++h) {  // word w of block l at out[16 w + l]
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * h), x0[h]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 + 8 * h), x1[h]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 + 8 * h), x2[h]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 48 + 8 * h), x3[h]);
    }
  }

  // Philox4x32-10 of `count` arbitrary counters, a multiple of 16, in place
  // (see random_avx512.h): two 8-lane registers per step, so one's
  // multiplies overlap the other's. lanes16: the counters of 16 lanes from
  // load(h, x0, x1, x2, x3) for halves h = 0, 1, their words stored at
  // out0..out3; the round keys once per call, read as memory operands of the
  // xors (made in the loop they cost a scalar add, a move and a broadcast
  // per key and round, and with no free registers the compiler spilled state).
  struct RoundKeys {
    __m256i key[10][2];
    RoundKeys(uint32_t k0, uint32_t k1) {
      for (uint32_t round = 0; round < 10; ++round) {
        key[round][0] = _mm256_set1_epi32(static_cast<int>(k0 + round * kPhiloxW0));
        key[round][1] = _mm256_set1_epi32(static_cast<int>(k1 + round * kPhiloxW1));
      }
    }
  };
  template <class Load>
  static void lanes16(Load&& load, const RoundKeys& keys, uint32_t* out0, uint32_t* out1, uint32_t* out2,
                      uint32_t* out3) {
    const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
    const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
    __m256i x0[2], x1[2], x2[2], x3[2];
    for (int h = 0; h < 2; ++h) load(h, x0[h], x1[h], x2[h], x3[h]);
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC unroll 10
#endif
    for (int round = 0; round < 10; ++round)  // unrolled as in philox16
      for (int h = 0; h < 2; ++h)
        philox8_round(x0[h], x1[h], x2[h], x3[h], m0, m1, keys.key[round][0], keys.key[round][1]);
    for (int h = 0; h < 2; ++h) {
      store(out0 + 8 * h, x0[h]);
      store(out1 + 8 * h, x1[h]);
      store(out2 + 8 * h, x2[h]);
      store(out3 + 8 * h, x3[h]);
    }
  }
  static __m256i load(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(uint32_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void philox_lanes(uint32_t* x0p, uint32_t* x1p, uint32_t* x2p, uint32_t* x3p, size_t count, uint32_t k0,
                           uint32_t k1) {
    const RoundKeys keys(k0, k1);
    for (size_t l = 0; l < count; l += 16) {
      auto counters = [&](int h, __m256i& x0, __m256i& x1, __m256i& x2, __m256i& x3) {
        x0 = load(x0p + l + 8 * h);
        x1 = load(x1p + l + 8 * h);
        x2 = load(x2p + l + 8 * h);
        x3 = load(x3p + l + 8 * h);
      };
      lanes16(counters, keys, x0p + l, x1p + l, x2p + l, x3p + l);
    }
  }
  // philox_lanes of the counters (lo[l], hi[l], row0 + row[l] as two
  // words), made in registers (see random_avx512.h): the low word by a
  // 32-bit add, the high word plus its carry (the sum below row0's low word).
  static void philox_rows(const uint32_t* lo, const uint32_t* hi, const uint32_t* row, uint64_t row0, uint32_t* out0,
                          uint32_t* out1, uint32_t* out2, uint32_t* out3, size_t count, uint32_t k0, uint32_t k1) {
    const RoundKeys keys(k0, k1);
    const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
    const __m256i row_lo = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(row0)));
    const __m256i row_hi = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(row0 >> 32)));
    const __m256i row_lo_signed = _mm256_xor_si256(row_lo, sign);
    for (size_t l = 0; l < count; l += 16) {
      auto counters = [&](int h, __m256i& x0, __m256i& x1, __m256i& x2, __m256i& x3) {
        x0 = load(lo + l + 8 * h);
        x1 = load(hi + l + 8 * h);
        x2 = _mm256_add_epi32(load(row + l + 8 * h), row_lo);
        // the carry: -1 where the sum (unsigned) lies below row0's low word
        x3 = _mm256_sub_epi32(row_hi, _mm256_cmpgt_epi32(row_lo_signed, _mm256_xor_si256(x2, sign)));
      };
      lanes16(counters, keys, out0 + l, out1 + l, out2 + l, out3 + l);
    }
  }

  // 32 blocks: two groups of 16 (out and out + 64), as in random_avx512.h.
  static void philox32(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    philox16(base, c2, c3, k0, k1, out);
    philox16(base + 16, c2, c3, k0, k1, out + 64);
  }

  // ~w correctly rounded to float without AVX-512's unsigned convert:
  // hi16 * 65536 and lo16 are exact floats, so their sum rounds once.
  static __m256 complement_f32(const uint32_t* w) {
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)), _mm256_set1_epi32(-1));
    const __m256 hi = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 16)), _mm256_set1_ps(65536.0f));
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)));
    return _mm256_add_ps(hi, lo);
  }
  // ~w exactly as double: the word as the low mantissa bits of 2^52.
  static __m256d complement_f64(const uint32_t* w) {
    const __m128i v = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)), _mm_set1_epi32(-1));
    const __m256i bits = _mm256_or_si256(_mm256_cvtepu32_epi64(v), _mm256_set1_epi64x(0x4330000000000000LL));
    return _mm256_sub_pd(_mm256_castsi256_pd(bits), _mm256_set1_pd(4503599627370496.0));
  }
  // The folded words (see random_avx512.h); hi as all-ones lanes.
  static __m256 fold_f32(const uint32_t* w, __m256& hi) {
    const __m256i f = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i s = _mm256_srai_epi32(f, 31);
    hi = _mm256_castsi256_ps(s);
    return _mm256_cvtepi32_ps(_mm256_xor_si256(f, s));
  }
  static __m256d fold_f64(const uint32_t* w, __m256d& hi) {
    const __m128i f = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
    const __m128i s = _mm_srai_epi32(f, 31);
    hi = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(s));
    return _mm256_cvtepi32_pd(_mm_xor_si128(f, s));
  }
  static __m256 exponent(__m256 y) {
    const __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(y), 23), _mm256_set1_epi32(127));
    return _mm256_cvtepi32_ps(e);
  }
  static __m256 mantissa(__m256 y) {
    const __m256i bits = _mm256_and_si256(_mm256_castps_si256(y), _mm256_set1_epi32(0x007FFFFF));
    return _mm256_castsi256_ps(_mm256_or_si256(bits, _mm256_set1_epi32(0x3F800000)));
  }
  static __m256d exponent(__m256d y) {
    // (bits >> 52) - 1023 for positive normal y, converted exactly via 2^52.
    const __m256i e = _mm256_srli_epi64(_mm256_castpd_si256(y), 52);
    const __m256d ed = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(e, _mm256_set1_epi64x(0x4330000000000000LL))),
                                     _mm256_set1_pd(4503599627370496.0));
    return _mm256_sub_pd(ed, _mm256_set1_pd(1023.0));
  }
  static __m256d mantissa(__m256d y) {
    const __m256i bits = _mm256_and_si256(_mm256_castpd_si256(y), _mm256_set1_epi64x(0x000FFFFFFFFFFFFFLL));
    return _mm256_castsi256_pd(_mm256_or_si256(bits, _mm256_set1_epi64x(0x3FF0000000000000LL)));
  }
  // A comparison's lanes as bits (lane l -> bit l).
  static unsigned lane_bits(__m256 m) { return static_cast<unsigned>(_mm256_movemask_ps(m)); }
  static unsigned lane_bits(__m256d m) { return static_cast<unsigned>(_mm256_movemask_pd(m)); }
  // Bit g: w[g] >= threshold, for the 64 words w[0..64), without a branch
  // (unsigned order as signed after flipping the sign bits: bit g is clear
  // where threshold > w[g]).
  static uint64_t at_least_bits64(const uint32_t* w, uint32_t threshold) {
    const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
    const __m256i t = _mm256_set1_epi32(static_cast<int>(threshold ^ 0x80000000u));
    uint64_t below = 0;
    for (int q = 0; q < 8; ++q) {
      const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 8 * q)), sign);
      below |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(t, v)))) << (8 * q);
    }
    return ~below;
  }
  // The lanes where a or b is NaN: one compare checks two vectors.
  static __m256 unordered(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }
  static __m256d unordered(__m256d a, __m256d b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
  static __m256 div(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }
  static __m256d div(__m256d a, __m256d b) { return _mm256_div_pd(a, b); }
};

}  // namespace avx2
}  // namespace ssm
