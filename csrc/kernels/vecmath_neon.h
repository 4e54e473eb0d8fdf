// AArch64 Advanced SIMD (NEON) lane types for the generic kernels (simd_loops.h
// and the headers it lists). Only included by *_neon.cpp. Same contract as
// vecmath_avx2.h: four float32 or two float64 lanes, fused multiply-add,
// round-to-nearest-even, masks as all-ones lanes.
//
// NEON is the AArch64 baseline, so these files need no extra compile flags,
// but they still live in their own namespace like the x86 sets (one rule for
// every kernel set, and the generic kernels' internal linkage keeps them
// apart from the scalar instantiations).
//
// Bit-identity with the x86 sets: every operation is the same correctly
// rounded IEEE operation (fma where they use fma). Two x86 conventions need
// more than one instruction here. max/min return the second operand when
// either is NaN (and when both are zero): the kernels rely on it (a clamp
// written max(low, x) keeps a NaN x; a running max skips NaN lanes), while
// FMAX propagates NaN and FMAXNM drops it; so max is a compare and a select.
// Where the second operand is a constant (the exponent clamps below) FMAXNM
// and FMINNM give the x86 result in one instruction: a NaN k becomes the
// bound, as _mm256_max_ps(k, bound) makes it.
// Partial loads and stores: NEON has no masked load, so a tail goes through
// a small buffer and never touches memory past the row.
// No streaming stores (stream_align = 0): STNP is only a hint on most cores
// and the write passes are left to the hardware.
#pragma once
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vecmath_common.h"

// Every aarch64 file has __ARM_NEON defined, but only the *_neon.cpp files
// include arm_neon.h: shared headers (sample_generic.h) declare their NEON
// overloads under this macro instead.
#define SSM_NEON_TYPES 1

namespace ssm {
namespace neon {

struct F64x2;

struct F32x4 {
  using scalar = float;
  using reg = float32x4_t;
  using mask = uint32x4_t;  // all-ones lanes
  static constexpr size_t width = 4;
  using wide = F64x2;  // float64 lanes for widen

  static reg set1(double a) { return vdupq_n_f32(static_cast<float>(a)); }
  static reg load(const float* p) { return vld1q_f32(p); }
  static reg load_tail(const float* p, size_t n, double fill) {
    float buf[width];
    for (size_t i = 0; i < width; ++i) buf[i] = i < n ? p[i] : static_cast<float>(fill);
    return vld1q_f32(buf);
  }
  static void store(float* p, reg v) { vst1q_f32(p, v); }
  static void store_tail(float* p, reg v, size_t n) {
    float buf[width];
    vst1q_f32(buf, v);
    std::memcpy(p, buf, n * sizeof(float));
  }
  static constexpr size_t stream_align = 0;
  static void stream(float* p, reg v) { store(p, v); }
  static void fence() {}

  static reg add(reg a, reg b) { return vaddq_f32(a, b); }
  static reg sub(reg a, reg b) { return vsubq_f32(a, b); }
  static reg mul(reg a, reg b) { return vmulq_f32(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  // x86 semantics (see the header comment): a > b ? a : b, a < b ? a : b.
  static reg max(reg a, reg b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static reg min(reg a, reg b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
  static reg round(reg a) { return vrndnq_f32(a); }
  // 2^k for integer k in [-126, 127], built in the exponent field as on x86:
  // k + (2^23 + 127) holds k + 127 in the low mantissa bits; the shift moves
  // it into the exponent field and the 2^23 marker out of the lane.
  static reg pow2(reg k) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vreinterpretq_s32_f32(vaddq_f32(k, set1(8388735.0))), 23));
  }
  // Two factors so that m*2^k under/overflows with a single rounding.
  static reg scale2(reg m, reg k) {
    k = vminnmq_f32(vmaxnmq_f32(k, set1(-252.0)), set1(254.0));
    const reg half = vrndmq_f32(vmulq_f32(k, set1(0.5)));
    return vmulq_f32(vmulq_f32(m, pow2(half)), pow2(vsubq_f32(k, half)));
  }
  // k <= 0; 2^-127 has exponent field 0, i.e. +0.0: flushes below 2^-126.
  static reg scale2_acc(reg m, reg k) { return vmulq_f32(m, pow2(vmaxnmq_f32(k, set1(-127.0)))); }
  // pow2 wraps around above 127: clamp there, so an overflowing term stays huge.
  static reg scale2_term(reg m, reg k) {
    return vmulq_f32(m, pow2(vminnmq_f32(vmaxnmq_f32(k, set1(-127.0)), set1(127.0))));
  }
  // x - n ln2_hi - n ln2_lo, each step one fused multiply-subtract.
  static reg reduce_ln2(reg x, reg n) {
    using C = ExpCoeffs<float>;
    return vfmsq_f32(vfmsq_f32(x, n, set1(C::ln2_hi)), n, set1(C::ln2_lo));
  }

  static mask none() { return vdupq_n_u32(0); }
  static mask unord(reg a) { return vmvnq_u32(vceqq_f32(a, a)); }
  static mask nonzero(reg a) { return vmvnq_u32(vceqq_f32(a, vdupq_n_f32(0.0f))); }  // NaN counts
  static mask notfinite(reg a) { return vmvnq_u32(vcltq_f32(vabsq_f32(a), set1(__builtin_huge_valf()))); }
  static mask gt(reg a, reg b) { return vcgtq_f32(a, b); }
  static mask not_le(reg a, reg b) { return vmvnq_u32(vcleq_f32(a, b)); }
  static mask mask_or(mask a, mask b) { return vorrq_u32(a, b); }
  static bool any(mask m) { return vmaxvq_u32(m) != 0; }
  static reg select(mask m, reg if_true, reg if_false) { return vbslq_f32(m, if_true, if_false); }
  // a + b in m's lanes, a elsewhere; scale2_acc(x, k) in m's lanes, 0
  // elsewhere (an and with the all-ones lanes).
  static reg add_where(mask m, reg a, reg b) {
    return vaddq_f32(a, vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(b))));
  }
  static reg scale2_acc_where(mask m, reg x, reg k) {
    return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(scale2_acc(x, k))));
  }
  static double hmax(reg a) {
    const reg m = max(a, vextq_f32(a, a, 2));
    return vgetq_lane_f32(max(m, vextq_f32(m, m, 1)), 0);
  }
  static double hsum(reg a) {
    double out[width];
    to_array(a, out);
    double s = 0;
    for (double v : out) s += v;
    return s;
  }
  // The float32 table exp (expsum_table32.h): 2^(j/16), j the low 4 bits
  // of t, by a byte table lookup over the 64-byte table (bytes 4j .. 4j + 3
  // of each lane).
  static constexpr int exp_table32_size = 16;
  using table32 = uint8x16x4_t;
  static table32 load_table32(const float* p) { return vld1q_u8_x4(reinterpret_cast<const uint8_t*>(p)); }
  static reg lookup32(reg t, const table32& table) {
    const uint32x4_t j4 = vshlq_n_u32(vandq_u32(vreinterpretq_u32_f32(t), vdupq_n_u32(15)), 2);
    const uint32x4_t bytes = vmlaq_n_u32(vdupq_n_u32(0x03020100u), j4, 0x01010101u);
    return vreinterpretq_f32_u8(vqtbl4q_u8(table, vreinterpretq_u8_u32(bytes)));
  }
  // a's lanes 0-1 and 2-3 in float64 (exact).
  static void widen(reg a, float64x2_t& lo, float64x2_t& hi) {
    lo = vcvt_f64_f32(vget_low_f32(a));
    hi = vcvt_high_f64_f32(a);
  }
  static void to_array(reg a, double* out) {
    vst1q_f64(out, vcvt_f64_f32(vget_low_f32(a)));
    vst1q_f64(out + 2, vcvt_high_f64_f32(a));
  }
};

struct F64x2 {
  using scalar = double;
  using reg = float64x2_t;
  using mask = uint64x2_t;
  static constexpr size_t width = 2;

  static reg set1(double a) { return vdupq_n_f64(a); }
  static reg load(const double* p) { return vld1q_f64(p); }
  static reg load(const float* p) { return vcvt_f64_f32(vld1_f32(p)); }
  template <class In>
  static reg load_tail(const In* p, size_t n, double fill) {
    In buf[width];
    for (size_t i = 0; i < width; ++i) buf[i] = i < n ? p[i] : static_cast<In>(fill);
    return load(buf);
  }
  static void store(double* p, reg v) { vst1q_f64(p, v); }
  static void store_tail(double* p, reg v, size_t n) {
    double buf[width];
    vst1q_f64(buf, v);
    std::memcpy(p, buf, n * sizeof(double));
  }
  // Narrowing stores (rounded to nearest): float32 results computed in float64.
  static void store(float* p, reg v) { vst1_f32(p, vcvt_f32_f64(v)); }
  static void store_tail(float* p, reg v, size_t n) {
    float buf[width];
    vst1_f32(buf, vcvt_f32_f64(v));
    std::memcpy(p, buf, n * sizeof(float));
  }
  static constexpr size_t stream_align = 0;
  static void stream(double* p, reg v) { store(p, v); }
  static void fence() {}

  static reg add(reg a, reg b) { return vaddq_f64(a, b); }
  static reg sub(reg a, reg b) { return vsubq_f64(a, b); }
  static reg mul(reg a, reg b) { return vmulq_f64(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return vfmaq_f64(c, a, b); }
  static reg max(reg a, reg b) { return vbslq_f64(vcgtq_f64(a, b), a, b); }
  static reg min(reg a, reg b) { return vbslq_f64(vcltq_f64(a, b), a, b); }
  static reg round(reg a) { return vrndnq_f64(a); }
  // 2^k for integer k in [-1022, 1023] (k + 2^52 + 1023, shifted into the exponent field).
  static reg pow2(reg k) {
    return vreinterpretq_f64_s64(vshlq_n_s64(vreinterpretq_s64_f64(vaddq_f64(k, set1(4503599627371519.0))), 52));
  }
  static reg scale2(reg m, reg k) {
    k = vminnmq_f64(vmaxnmq_f64(k, set1(-2044.0)), set1(2046.0));
    const reg half = vrndmq_f64(vmulq_f64(k, set1(0.5)));
    return vmulq_f64(vmulq_f64(m, pow2(half)), pow2(vsubq_f64(k, half)));
  }
  static reg scale2_acc(reg m, reg k) { return vmulq_f64(m, pow2(vmaxnmq_f64(k, set1(-1023.0)))); }
  static reg scale2_term(reg m, reg k) {
    return vmulq_f64(m, pow2(vminnmq_f64(vmaxnmq_f64(k, set1(-1023.0)), set1(1023.0))));
  }
  static reg reduce_ln2(reg x, reg n) {
    using C = ExpCoeffs<double>;
    return vfmsq_f64(vfmsq_f64(x, n, set1(C::ln2_hi)), n, set1(C::ln2_lo));
  }

  static mask none() { return vdupq_n_u64(0); }
  static mask unord(reg a) { return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(vceqq_f64(a, a)))); }
  static mask nonzero(reg a) {
    return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(vceqq_f64(a, vdupq_n_f64(0.0)))));
  }
  static mask notfinite(reg a) {
    const mask finite = vcltq_f64(vabsq_f64(a), set1(__builtin_huge_val()));
    return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(finite)));
  }
  // Negative, NaN or +-inf (-0 counts as >= 0).
  static mask negative_or_notfinite(reg a) { return vorrq_u64(vcltq_f64(a, vdupq_n_f64(0.0)), notfinite(a)); }
  static mask gt(reg a, reg b) { return vcgtq_f64(a, b); }
  static mask not_le(reg a, reg b) { return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(vcleq_f64(a, b)))); }
  static mask mask_or(mask a, mask b) { return vorrq_u64(a, b); }
  static bool any(mask m) { return vmaxvq_u32(vreinterpretq_u32_u64(m)) != 0; }
  static reg select(mask m, reg if_true, reg if_false) { return vbslq_f64(m, if_true, if_false); }
  static double hmax(reg a) {
    const double lo = vgetq_lane_f64(a, 0), hi = vgetq_lane_f64(a, 1);
    return lo > hi ? lo : hi;
  }
  static double hsum(reg a) { return vgetq_lane_f64(a, 0) + vgetq_lane_f64(a, 1); }
  static void to_array(reg a, double* out) { vst1q_f64(out, a); }
};

}  // namespace neon
}  // namespace ssm
