// AVX-512 (F/DQ/BW/VL) lane types for the generic kernels (simd_loops.h and the
// headers it lists).
// Only included by *_avx512.cpp, which the build compiles with AVX-512 flags.
//
// Contract shared by every lane type (see vecmath_scalar.h for the plain one):
//   max(a, b) returns b when either operand is NaN (x86 semantics);
//   scale2(m, k) = m * 2^k exactly (k integer-valued, any range, subnormals kept);
//   scale2_acc(m, k), k <= 0, may flush results below 2^-126 (2^-1022) * |m|
//     (exact up to k = 127 (1023) too: expsum_table32.h scales terms by it);
//   scale2_term(m, k) = m * 2^k for k <= 0 (flushing like scale2_acc) and for
//     small k > 0; for large k it returns at least m * 2^127 (float64: 2^1023)
//     or inf/NaN, never a wrapped-around power of two, so a block's sum
//     exceeds FastLimits::check (expsum_fast.h) and the block is redone;
//   reduce_ln2(x, n) = x - n*ln2 with no rounding error while |n| < 2^22;
//   stream(p, v): non-temporal store, p aligned to stream_align bytes.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "vecmath_common.h"

namespace ssm {
namespace avx512 {

struct F64x8;

struct F32x16 {
  using scalar = float;
  using reg = __m512;
  using mask = __mmask16;
  static constexpr size_t width = 16;
  using wide = F64x8;  // float64 lanes for widen

  static reg set1(double a) { return _mm512_set1_ps(static_cast<float>(a)); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static mask first(size_t n) { return static_cast<mask>((1u << n) - 1u); }
  static reg load_tail(const float* p, size_t n, double fill) {
    return _mm512_mask_loadu_ps(set1(fill), first(n), p);
  }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static void store_tail(float* p, reg v, size_t n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static constexpr size_t stream_align = 64;
  static void stream(float* p, reg v) { _mm512_stream_ps(p, v); }
  static void fence() { _mm_sfence(); }
  // v[i] <- column i of the 16 x 16 block whose rows are v[0..15] (the
  // short-row kernels' group <-> columns, rows_generic.h): a 4 x 4 transpose
  // within each 128-bit lane of four rows, then the 4 x 4 matrix of lanes
  // of each such quarter transposed across registers.
  static void transpose(reg (&v)[16]) {
    __m512 t[16], s[16];
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);      // per lane k: a4k b4k a4k+1 b4k+1
      t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);  // a4k+2 b4k+2 a4k+3 b4k+3
    }
    // s[4 q + c], lane k: column 4k + c of rows 4q .. 4q + 3.
    for (int q = 0; q < 4; ++q) {
      const __m512* a = t + 4 * q;
      s[4 * q + 0] = _mm512_shuffle_ps(a[0], a[2], 0x44);
      s[4 * q + 1] = _mm512_shuffle_ps(a[0], a[2], 0xEE);
      s[4 * q + 2] = _mm512_shuffle_ps(a[1], a[3], 0x44);
      s[4 * q + 3] = _mm512_shuffle_ps(a[1], a[3], 0xEE);
    }
    // Column 4k + c, lane q = s[4 q + c] lane k.
    for (int c = 0; c < 4; ++c) {
      const __m512 x0 = _mm512_shuffle_f32x4(s[c], s[4 + c], 0x88);   // lanes 0, 2 of q = 0, 1
      const __m512 x1 = _mm512_shuffle_f32x4(s[c], s[4 + c], 0xDD);   // lanes 1, 3 of q = 0, 1
      const __m512 x2 = _mm512_shuffle_f32x4(s[8 + c], s[12 + c], 0x88);
      const __m512 x3 = _mm512_shuffle_f32x4(s[8 + c], s[12 + c], 0xDD);
      v[c] = _mm512_shuffle_f32x4(x0, x2, 0x88);
      v[8 + c] = _mm512_shuffle_f32x4(x0, x2, 0xDD);
      v[4 + c] = _mm512_shuffle_f32x4(x1, x3, 0x88);
      v[12 + c] = _mm512_shuffle_f32x4(x1, x3, 0xDD);
    }
  }

  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg round(reg a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg scale2(reg m, reg k) { return _mm512_scalef_ps(m, k); }
  static reg scale2_acc(reg m, reg k) { return _mm512_scalef_ps(m, k); }
  static reg scale2_term(reg m, reg k) { return _mm512_scalef_ps(m, k); }
  static reg reduce_ln2(reg x, reg n) {
    using C = ExpCoeffs<float>;
    return _mm512_fnmadd_ps(n, set1(C::ln2_lo), _mm512_fnmadd_ps(n, set1(C::ln2_hi), x));
  }

  static mask none() { return 0; }
  static mask unord(reg a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static mask nonzero(reg a) { return _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_NEQ_UQ); }
  static mask notfinite(reg a) { return _mm512_fpclass_ps_mask(a, 0x99); }  // NaN or +-inf
  static mask gt(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static mask not_le(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_NLE_UQ); }
  static mask mask_or(mask a, mask b) { return static_cast<mask>(a | b); }
  static bool any(mask m) { return m != 0; }
  static reg select(mask m, reg if_true, reg if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
  // a + b in m's lanes, a elsewhere; scale2_acc(x, k) in m's lanes, 0
  // elsewhere: one masked operation each (a select and an operation
  // on the other sets).
  static reg add_where(mask m, reg a, reg b) { return _mm512_mask_add_ps(a, m, a, b); }
  static reg scale2_acc_where(mask m, reg x, reg k) { return _mm512_maskz_scalef_ps(m, x, k); }
  static double hmax(reg a) { return _mm512_reduce_max_ps(a); }
  static double hsum(reg a) { return _mm512_reduce_add_ps(a); }
  // a's lanes 0-7 and 8-15 in float64 (exact).
  // The even and odd lanes of the 32 floats lo, hi (lo's first): rows of
  // two entries, one row per lane.
  static void deinterleave(reg lo, reg hi, reg& even, reg& odd) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    even = _mm512_permutex2var_ps(lo, ie, hi);
    odd = _mm512_permutex2var_ps(lo, _mm512_add_epi32(ie, _mm512_set1_epi32(1)), hi);
  }
  // deinterleave's inverse: lo gets even's and odd's lanes 0-7 in turns,
  // hi their lanes 8-15.
  static void interleave(reg even, reg odd, reg& lo, reg& hi) {
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    lo = _mm512_permutex2var_ps(even, il, odd);
    hi = _mm512_permutex2var_ps(even, _mm512_add_epi32(il, _mm512_set1_epi32(8)), odd);
  }
  // widen's inverse with rounding: lo's lanes rounded to float32 as lanes
  // 0-7, hi's as 8-15 (the rounding of F64x8::store to float32).
  static reg narrow(__m512d lo, __m512d hi) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
  }
  static void widen(reg a, __m512d& lo, __m512d& hi) {
    lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
    hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1));
  }
  // The float32 table exp (expsum_table32.h): 2^(j/16) from the low 4 bits
  // of t (vpermps reads them), and scalef's power of two is 2^floor(k).
  static constexpr int exp_table32_size = 16;
  static constexpr bool scale2_floors = true;
  using table32 = reg;
  static table32 load_table32(const float* p) { return load(p); }
  static reg lookup32(reg t, table32 table) { return _mm512_permutexvar_ps(_mm512_castps_si512(t), table); }
  static void to_array(reg a, double* out) {
    alignas(64) float tmp[width];
    _mm512_store_ps(tmp, a);
    for (size_t i = 0; i < width; ++i) out[i] = tmp[i];
  }
};

struct F64x8 {
  using scalar = double;
  using reg = __m512d;
  using mask = __mmask8;
  static constexpr size_t width = 8;

  static reg set1(double a) { return _mm512_set1_pd(a); }
  static mask first(size_t n) { return static_cast<mask>((1u << n) - 1u); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static reg load(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
  static reg load_tail(const double* p, size_t n, double fill) {
    return _mm512_mask_loadu_pd(set1(fill), first(n), p);
  }
  static reg load_tail(const float* p, size_t n, double fill) {
    return _mm512_mask_blend_pd(first(n), set1(fill), _mm512_cvtps_pd(_mm256_maskz_loadu_ps(first(n), p)));
  }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static void store_tail(double* p, reg v, size_t n) { _mm512_mask_storeu_pd(p, first(n), v); }
  // Narrowing stores (rounded to nearest): float32 results computed in float64.
  static void store(float* p, reg v) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(v)); }
  static void store_tail(float* p, reg v, size_t n) { _mm256_mask_storeu_ps(p, first(n), _mm512_cvtpd_ps(v)); }
  static constexpr size_t stream_align = 64;
  static void stream(double* p, reg v) { _mm512_stream_pd(p, v); }
  static void fence() { _mm_sfence(); }
  // v[i] <- column i of the 8 x 8 block whose rows are v[0..7] (the
  // short-row kernels' group <-> columns, rows_generic.h): pairs within
  // 128-bit lanes, then lanes across registers twice.
  static void transpose(reg (&v)[8]) {
    __m512d t[8], u[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm512_unpacklo_pd(v[2 * i], v[2 * i + 1]);      // a0 b0 | a2 b2 | a4 b4 | a6 b6
      t[2 * i + 1] = _mm512_unpackhi_pd(v[2 * i], v[2 * i + 1]);  // a1 b1 | a3 b3 | a5 b5 | a7 b7
    }
    for (int h = 0; h < 2; ++h) {  // rows 0-3, then 4-7
      const __m512d* a = t + 4 * h;
      u[4 * h + 0] = _mm512_shuffle_f64x2(a[0], a[2], 0x88);  // columns 0 | 4 of rows 0, 1 | 0, 1 | 2, 3 | 2, 3
      u[4 * h + 1] = _mm512_shuffle_f64x2(a[0], a[2], 0xDD);  // 2 | 6
      u[4 * h + 2] = _mm512_shuffle_f64x2(a[1], a[3], 0x88);  // 1 | 5
      u[4 * h + 3] = _mm512_shuffle_f64x2(a[1], a[3], 0xDD);  // 3 | 7
    }
    v[0] = _mm512_shuffle_f64x2(u[0], u[4], 0x88);
    v[4] = _mm512_shuffle_f64x2(u[0], u[4], 0xDD);
    v[2] = _mm512_shuffle_f64x2(u[1], u[5], 0x88);
    v[6] = _mm512_shuffle_f64x2(u[1], u[5], 0xDD);
    v[1] = _mm512_shuffle_f64x2(u[2], u[6], 0x88);
    v[5] = _mm512_shuffle_f64x2(u[2], u[6], 0xDD);
    v[3] = _mm512_shuffle_f64x2(u[3], u[7], 0x88);
    v[7] = _mm512_shuffle_f64x2(u[3], u[7], 0xDD);
  }

  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_pd(a, b); }
  static reg abs(reg a) { return _mm512_abs_pd(a); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg max(reg a, reg b) { return _mm512_max_pd(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_pd(a, b); }
  static reg round(reg a) { return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg scale2(reg m, reg k) { return _mm512_scalef_pd(m, k); }
  static reg scale2_acc(reg m, reg k) { return _mm512_scalef_pd(m, k); }
  static reg scale2_term(reg m, reg k) { return _mm512_scalef_pd(m, k); }
  static reg reduce_ln2(reg x, reg n) {
    using C = ExpCoeffs<double>;
    return _mm512_fnmadd_pd(n, set1(C::ln2_lo), _mm512_fnmadd_pd(n, set1(C::ln2_hi), x));
  }

  static mask none() { return 0; }
  static mask unord(reg a) { return _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q); }
  static mask nonzero(reg a) { return _mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_NEQ_UQ); }
  static mask notfinite(reg a) { return _mm512_fpclass_pd_mask(a, 0x99); }
  // Negative (-0 may count), NaN or +-inf: one fpclass (NaN, -0, +-inf, negative finite).
  static mask negative_or_notfinite(reg a) { return _mm512_fpclass_pd_mask(a, 0xDD); }
  static mask gt(reg a, reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static mask not_le(reg a, reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_NLE_UQ); }
  static mask mask_or(mask a, mask b) { return static_cast<mask>(a | b); }
  static bool any(mask m) { return m != 0; }
  static reg select(mask m, reg if_true, reg if_false) { return _mm512_mask_blend_pd(m, if_false, if_true); }
  static double hmax(reg a) { return _mm512_reduce_max_pd(a); }
  static double hsum(reg a) { return _mm512_reduce_add_pd(a); }
  static void to_array(reg a, double* out) { _mm512_storeu_pd(out, a); }

  // table[k mod 16] from t = magic + k/16 (ExpTable16) and the 16 entries in
  // two registers: vpermt2pd reads the low 4 bits.
  static constexpr bool has_exp_table = true;
  static reg table_lo() { return load(ExpTable16::table); }
  static reg table_hi() { return load(ExpTable16::table + 8); }
  static reg exp_table(reg t, reg lo, reg hi) { return _mm512_permutex2var_pd(lo, _mm512_castpd_si512(t), hi); }
  // log(t) for finite t >= 1 (LogTable16).
  static reg log_table(reg t) {
    using L = LogTable16;
    const reg e = _mm512_getexp_pd(t);
    const reg m = _mm512_getmant_pd(t, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    const __m512i i = _mm512_srli_epi64(_mm512_castpd_si512(m), 48);  // vpermt2pd reads the low 4 bits
    const reg q = _mm512_fmsub_pd(m, _mm512_permutex2var_pd(load(L::inv), i, load(L::inv + 8)), set1(1.0));
    const reg lc = _mm512_permutex2var_pd(load(L::log), i, load(L::log + 8));
    return fmadd(e, set1(ExpCoeffs<double>::ln2_hi), add(lc, log1p_series(q)));
  }
  // log1p(q) to degree 7 (Taylor), q + q^2 c(q): for |q| <= 1/30 the tail
  // |q|^8 / 8 is below 2^-42.3 (2^-42.9 at 1/32).
  static reg log1p_series(reg q) {
    reg c = fmadd(set1(1.0 / 7), q, set1(-1.0 / 6));
    c = fmadd(c, q, set1(1.0 / 5));
    c = fmadd(c, q, set1(-1.0 / 4));
    c = fmadd(c, q, set1(1.0 / 3));
    c = fmadd(c, q, set1(-0.5));
    return fmadd(mul(q, q), c, q);
  }
};

}  // namespace avx512
}  // namespace ssm
