// NEON primitives for the Gumbel kernels; bit-identical to random_avx512.h
// (see there). The 16 Philox lanes are four 4-lane quarters.
#pragma once
#include <arm_neon.h>

#include <cstdint>

#include "philox_constants.h"
#include "vecmath_neon.h"

namespace ssm {
namespace neon {

struct Random {
  // The high and low halves of the 32 x 32 -> 64-bit products x * m, lane by
  // lane: UMULL / UMULL2 give the four 64-bit products, UZP2 and UZP1 pick
  // their high and low words back into lane order.
  static void mul_hilo(uint32x4_t x, uint32x2_t m, uint32x4_t& hi, uint32x4_t& lo) {
    const uint32x4_t p01 = vreinterpretq_u32_u64(vmull_u32(vget_low_u32(x), m));
    const uint32x4_t p23 = vreinterpretq_u32_u64(vmull_high_u32(x, vcombine_u32(m, m)));
    hi = vuzp2q_u32(p01, p23);
    lo = vuzp1q_u32(p01, p23);
  }
  static void philox4(uint32x4_t x0, uint32x4_t x1, uint32x4_t x2, uint32x4_t x3, uint32_t k0, uint32_t k1,
                      uint32_t* out) {
    const uint32x2_t m0 = vdup_n_u32(kPhiloxM0), m1 = vdup_n_u32(kPhiloxM1);
    for (uint32_t round = 0; round < 10; ++round) {
      uint32x4_t hi0, lo0, hi1, lo1;
      mul_hilo(x0, m0, hi0, lo0);
      mul_hilo(x2, m1, hi1, lo1);
      x0 = veorq_u32(veorq_u32(hi1, x1), vdupq_n_u32(k0 + round * kPhiloxW0));
      x2 = veorq_u32(veorq_u32(hi0, x3), vdupq_n_u32(k1 + round * kPhiloxW1));
      x1 = lo1;
      x3 = lo0;
    }
    vst1q_u32(out, x0);
    vst1q_u32(out + 16, x1);
    vst1q_u32(out + 32, x2);
    vst1q_u32(out + 48, x3);
  }
  static void philox16(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    static constexpr uint32_t kLane[4] = {0, 1, 2, 3};
    const uint32x4_t lo = vaddq_u32(vdupq_n_u32(static_cast<uint32_t>(base)), vld1q_u32(kLane));
    const uint32x4_t x1 = vdupq_n_u32(static_cast<uint32_t>(base >> 32));
    const uint32x4_t x2 = vdupq_n_u32(c2), x3 = vdupq_n_u32(c3);
    for (uint32_t quarter = 0; quarter < 4; ++quarter)
      philox4(vaddq_u32(lo, vdupq_n_u32(4 * quarter)), x1, x2, x3, k0, k1, out + 4 * quarter);
  }

  // 32 blocks: two groups of 16 (out and out + 64), as in random_avx512.h.
  static void philox32(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
    philox16(base, c2, c3, k0, k1, out);
    philox16(base + 16, c2, c3, k0, k1, out + 64);
  }

  // ~w correctly rounded to float: UCVTF rounds the unsigned word once (to
  // nearest even), as AVX-512's unsigned convert and AVX2's exact two-part sum.
  static float32x4_t complement_f32(const uint32_t* w) { return vcvtq_f32_u32(vmvnq_u32(vld1q_u32(w))); }
  // ~w exactly as double (32 bits fit the 53-bit mantissa).
  static float64x2_t complement_f64(const uint32_t* w) {
    return vcvtq_f64_u64(vmovl_u32(vmvn_u32(vld1_u32(w))));
  }
  // The folded words (see random_avx512.h): f, or ~f where f >= 2^31 (hi,
  // all-ones lanes); below 2^31, so the signed convert rounds as cvtdq2ps.
  static float32x4_t fold_f32(const uint32_t* w, uint32x4_t& hi) {
    const int32x4_t f = vreinterpretq_s32_u32(vld1q_u32(w));
    const int32x4_t s = vshrq_n_s32(f, 31);
    hi = vreinterpretq_u32_s32(s);
    return vcvtq_f32_s32(veorq_s32(f, s));
  }
  static float64x2_t fold_f64(const uint32_t* w, uint64x2_t& hi) {
    const int32x2_t f = vreinterpret_s32_u32(vld1_u32(w));
    const int32x2_t s = vshr_n_s32(f, 31);
    hi = vreinterpretq_u64_s64(vmovl_s32(s));
    return vcvtq_f64_s64(vmovl_s32(veor_s32(f, s)));
  }
  // Exponent and mantissa of positive normal y, by their bit fields.
  static float32x4_t exponent(float32x4_t y) {
    const int32x4_t e = vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_f32(y), 23));
    return vcvtq_f32_s32(vsubq_s32(e, vdupq_n_s32(127)));
  }
  static float32x4_t mantissa(float32x4_t y) {
    const uint32x4_t bits = vandq_u32(vreinterpretq_u32_f32(y), vdupq_n_u32(0x007FFFFF));
    return vreinterpretq_f32_u32(vorrq_u32(bits, vdupq_n_u32(0x3F800000)));
  }
  static float64x2_t exponent(float64x2_t y) {
    const int64x2_t e = vreinterpretq_s64_u64(vshrq_n_u64(vreinterpretq_u64_f64(y), 52));
    return vcvtq_f64_s64(vsubq_s64(e, vdupq_n_s64(1023)));
  }
  static float64x2_t mantissa(float64x2_t y) {
    const uint64x2_t bits = vandq_u64(vreinterpretq_u64_f64(y), vdupq_n_u64(0x000FFFFFFFFFFFFFULL));
    return vreinterpretq_f64_u64(vorrq_u64(bits, vdupq_n_u64(0x3FF0000000000000ULL)));
  }
  static float32x4_t div(float32x4_t a, float32x4_t b) { return vdivq_f32(a, b); }
  static float64x2_t div(float64x2_t a, float64x2_t b) { return vdivq_f64(a, b); }
};

}  // namespace neon
}  // namespace ssm
