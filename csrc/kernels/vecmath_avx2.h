// AVX2 + FMA lane types for the generic kernels (simd_loops.h and the headers
// it lists). Only included by *_avx2.cpp. Same contract as vecmath_avx512.h; AVX2 has no
// masks, scalef or fpclass, so those are built from compares, blends and
// exponent-field arithmetic.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "vecmath_common.h"

namespace ssm {
namespace avx2 {

struct F64x4;

struct F32x8 {
  using scalar = float;
  using reg = __m256;
  using mask = __m256;  // all-ones lanes
  static constexpr size_t width = 8;
  using wide = F64x4;  // float64 lanes for widen

  static reg set1(double a) { return _mm256_set1_ps(static_cast<float>(a)); }
  static __m256i first(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  // maskload never touches the masked-off lanes' memory (no fault past the end).
  static reg load_tail(const float* p, size_t n, double fill) {
    const __m256i m = first(n);
    return _mm256_blendv_ps(set1(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static void store_tail(float* p, reg v, size_t n) { _mm256_maskstore_ps(p, first(n), v); }
  static constexpr size_t stream_align = 32;
  static void stream(float* p, reg v) { _mm256_stream_ps(p, v); }
  static void fence() { _mm_sfence(); }
  // v[i] <- column i of the 8 x 8 block whose rows are v[0..7] (the
  // short-row kernels' group <-> columns, rows_generic.h).
  static void transpose(reg (&v)[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
      t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
    }
    for (int h = 0; h < 2; ++h) {  // rows 0-3, then 4-7
      const __m256 *a = t + 4 * h;
      s[4 * h + 0] = _mm256_shuffle_ps(a[0], a[2], 0x44);  // column 0 | 4 of the four rows
      s[4 * h + 1] = _mm256_shuffle_ps(a[0], a[2], 0xEE);  // 1 | 5
      s[4 * h + 2] = _mm256_shuffle_ps(a[1], a[3], 0x44);  // 2 | 6
      s[4 * h + 3] = _mm256_shuffle_ps(a[1], a[3], 0xEE);  // 3 | 7
    }
    for (int c = 0; c < 4; ++c) {
      v[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
      v[c + 4] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
    }
  }

  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a b, one rounding
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg round(reg a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^k for integer k in [-126, 127]: k + (2^23 + 127) puts k + 127 in the low
  // mantissa bits; shifting left by 23 moves it into the exponent field and
  // shifts the 2^23 marker out of the lane.
  static reg pow2(reg k) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(_mm256_add_ps(k, set1(8388735.0))), 23));
  }
  // 2^k from u = k + (2^23 + 127), k + 127 in [0, 255] (pow2 without its add;
  // not named pow2_biased: HasPow2Biased would then pick other paths).
  static reg pow2_biased32(reg u) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(u), 23)); }
  // Two factors so that m*2^k under/overflows with a single rounding.
  static reg scale2(reg m, reg k) {
    k = _mm256_min_ps(_mm256_max_ps(k, set1(-252.0)), set1(254.0));
    const reg half = _mm256_floor_ps(_mm256_mul_ps(k, set1(0.5)));
    return _mm256_mul_ps(_mm256_mul_ps(m, pow2(half)), pow2(_mm256_sub_ps(k, half)));
  }
  // k <= 0; 2^-127 has exponent field 0, i.e. +0.0: flushes below 2^-126.
  static reg scale2_acc(reg m, reg k) { return _mm256_mul_ps(m, pow2(_mm256_max_ps(k, set1(-127.0)))); }
  // pow2 wraps around above 127: clamp there, so an overflowing term stays huge.
  static reg scale2_term(reg m, reg k) {
    return _mm256_mul_ps(m, pow2(_mm256_min_ps(_mm256_max_ps(k, set1(-127.0)), set1(127.0))));
  }
  static reg reduce_ln2(reg x, reg n) {
    using C = ExpCoeffs<float>;
    return _mm256_fnmadd_ps(n, set1(C::ln2_lo), _mm256_fnmadd_ps(n, set1(C::ln2_hi), x));
  }

  static mask none() { return _mm256_setzero_ps(); }
  static mask unord(reg a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static mask nonzero(reg a) { return _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_NEQ_UQ); }
  static mask notfinite(reg a) {
    const reg abs = _mm256_andnot_ps(set1(-0.0), a);
    return _mm256_cmp_ps(abs, set1(__builtin_huge_valf()), _CMP_NLT_UQ);
  }
  static mask gt(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static mask not_le(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_NLE_UQ); }
  static mask mask_or(mask a, mask b) { return _mm256_or_ps(a, b); }
  static bool any(mask m) { return _mm256_movemask_ps(m) != 0; }
  static reg select(mask m, reg if_true, reg if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
  // a + b in m's lanes, a elsewhere; scale2_acc(x, k) in m's lanes, 0
  // elsewhere (an and with the all-ones lanes instead of a blend).
  static reg add_where(mask m, reg a, reg b) { return _mm256_add_ps(a, _mm256_and_ps(m, b)); }
  static reg scale2_acc_where(mask m, reg x, reg k) { return _mm256_and_ps(m, scale2_acc(x, k)); }
  // a in m's lanes, 0 elsewhere (an and: no zero register).
  static reg keep_where(mask m, reg a) { return _mm256_and_ps(m, a); }
  // A count of m's lanes in int32 lanes held in a reg (count_add: an
  // all-ones mask lane is -1, so one integer subtraction adds 1, no 1.0
  // constant and no and), count_value its float value.
  static constexpr bool mask_count_int = true;
  static reg count_add(mask m, reg c) {
    return _mm256_castsi256_ps(_mm256_sub_epi32(_mm256_castps_si256(c), _mm256_castps_si256(m)));
  }
  static reg count_value(reg c) { return _mm256_cvtepi32_ps(_mm256_castps_si256(c)); }
  static double hmax(reg a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  }
  static double hsum(reg a) {
    double out[width];
    to_array(a, out);
    double s = 0;
    for (double v : out) s += v;
    return s;
  }
  // The float32 table exp (expsum_table32.h): 2^(j/8) from the low 3 bits
  // of t (vpermps reads them).
  static constexpr int exp_table32_size = 8;
  using table32 = reg;
  static table32 load_table32(const float* p) { return load(p); }
  static reg lookup32(reg t, table32 table) { return _mm256_permutevar8x32_ps(table, _mm256_castps_si256(t)); }
  // 2^c from a t whose low mantissa bits hold 2^22 + 8 c + j (j the table
  // index, c in [1, 254]; expsum_table32.h, Table32Exp::term_biased):
  // shifted right past j, then left so that c fills the exponent field (8 c
  // + j < 2^11 leaves the sign bit 0; the 2^22 marker and t's own exponent
  // are shifted out). Two shifts and no mask constant, where pow2 of k -
  // bias takes four operations.
  static constexpr bool pow2_table32_bits = true;
  static reg pow2_table32(reg t) {
    const __m256i c = _mm256_srli_epi32(_mm256_castps_si256(t), 3);
    return _mm256_castsi256_ps(_mm256_slli_epi32(c, 23));
  }
  // Lane indices (0-7, one per lane) and a's lanes picked by them: lane i
  // of pick(a, idx) is a's lane idx[i] (vpermps; rows_generic.h's float32
  // log_softmax register groups broadcast each row's max and log S to the
  // lanes of its elements with it).
  using index = __m256i;
  static index load_index(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static reg pick(reg a, index idx) { return _mm256_permutevar8x32_ps(a, idx); }
  // a's lanes 0-3 and 4-7 in float64 (exact).
  // The even and odd lanes of the 16 floats lo, hi (lo's first): rows of
  // two entries, one row per lane.
  static void deinterleave(reg lo, reg hi, reg& even, reg& odd) {
    // Within each 128-bit half: lo's pairs then hi's, then the 64-bit
    // quarters put in order (0, 2, 1, 3).
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
  }
  // deinterleave's inverse: lo gets even's and odd's lanes 0-3 in turns,
  // hi their lanes 4-7.
  static void interleave(reg even, reg odd, reg& lo, reg& hi) {
    const reg l = _mm256_unpacklo_ps(even, odd), h = _mm256_unpackhi_ps(even, odd);
    lo = _mm256_permute2f128_ps(l, h, 0x20);
    hi = _mm256_permute2f128_ps(l, h, 0x31);
  }
  static void widen(reg a, __m256d& lo, __m256d& hi) {
    lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
  }
  // widen's inverse with rounding: lo's lanes rounded to float32 as lanes
  // 0-3, hi's as 4-7 (the rounding of F64x4::store to float32).
  static reg narrow(__m256d lo, __m256d hi) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1);
  }
  static void to_array(reg a, double* out) {
    _mm256_storeu_pd(out, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
    _mm256_storeu_pd(out + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
  }
};

struct F64x4 {
  using scalar = double;
  using reg = __m256d;
  using mask = __m256d;
  static constexpr size_t width = 4;

  static reg set1(double a) { return _mm256_set1_pd(a); }
  static __m256i first(size_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(n)), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static __m128i first32(size_t n) {
    return _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(n)), _mm_setr_epi32(0, 1, 2, 3));
  }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static reg load(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
  static reg load_tail(const double* p, size_t n, double fill) {
    const __m256i m = first(n);
    return _mm256_blendv_pd(set1(fill), _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
  }
  static reg load_tail(const float* p, size_t n, double fill) {
    return _mm256_blendv_pd(set1(fill), _mm256_cvtps_pd(_mm_maskload_ps(p, first32(n))), _mm256_castsi256_pd(first(n)));
  }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
  static void store_tail(double* p, reg v, size_t n) { _mm256_maskstore_pd(p, first(n), v); }
  // Narrowing stores (rounded to nearest): float32 results computed in float64.
  static void store(float* p, reg v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }
  static void store_tail(float* p, reg v, size_t n) { _mm_maskstore_ps(p, first32(n), _mm256_cvtpd_ps(v)); }
  static constexpr size_t stream_align = 32;
  static void stream(double* p, reg v) { _mm256_stream_pd(p, v); }
  static void fence() { _mm_sfence(); }
  // v[i] <- column i of the 4 x 4 block whose rows are v[0..3].
  static void transpose(reg (&v)[4]) {
    const __m256d a = _mm256_unpacklo_pd(v[0], v[1]);  // 00 10 | 02 12
    const __m256d b = _mm256_unpackhi_pd(v[0], v[1]);  // 01 11 | 03 13
    const __m256d c = _mm256_unpacklo_pd(v[2], v[3]);  // 20 30 | 22 32
    const __m256d d = _mm256_unpackhi_pd(v[2], v[3]);  // 21 31 | 23 33
    v[0] = _mm256_permute2f128_pd(a, c, 0x20);
    v[1] = _mm256_permute2f128_pd(b, d, 0x20);
    v[2] = _mm256_permute2f128_pd(a, c, 0x31);
    v[3] = _mm256_permute2f128_pd(b, d, 0x31);
  }

  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg max(reg a, reg b) { return _mm256_max_pd(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_pd(a, b); }
  static reg round(reg a) { return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^k for integer k in [-1022, 1023] (k + 2^52 + 1023, shifted into the exponent field).
  static reg pow2(reg k) {
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(k, set1(4503599627371519.0))), 52));
  }
  // 2^k from u = 2^52 + k + 1023 (k + 1023 in [1, 2046]): u's low 12
  // mantissa bits moved into the exponent field (pow2 without its add).
  static reg pow2_biased(reg u) { return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(u), 52)); }
  // t = m 2^e for finite t >= 1: m in (c, 2c], c = 0x1.6a09e667f3bcdp-1
  // (0.70710678118654752 rounded), e >= 0 an integer. Doubling a normal
  // double adds 2^52 to its bits, so e = (bits(t) - bits(c) - 1) >> 52 and
  // m's bits are bits(t) - e 2^52 (exact); e from its bits or'ed into 2^52.
  static void scale_near_one(reg t, reg& m, reg& e) {
    const __m256i bits = _mm256_castpd_si256(t);
    const __m256i k = _mm256_srli_epi64(_mm256_sub_epi64(bits, _mm256_set1_epi64x(0x3FE6A09E667F3BCELL)), 52);
    m = _mm256_castsi256_pd(_mm256_sub_epi64(bits, _mm256_slli_epi64(k, 52)));
    e = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(k, _mm256_castpd_si256(set1(0x1p52)))), set1(0x1p52));
  }
  static reg scale2(reg m, reg k) {
    k = _mm256_min_pd(_mm256_max_pd(k, set1(-2044.0)), set1(2046.0));
    const reg half = _mm256_floor_pd(_mm256_mul_pd(k, set1(0.5)));
    return _mm256_mul_pd(_mm256_mul_pd(m, pow2(half)), pow2(_mm256_sub_pd(k, half)));
  }
  static reg scale2_acc(reg m, reg k) { return _mm256_mul_pd(m, pow2(_mm256_max_pd(k, set1(-1023.0)))); }
  static reg scale2_term(reg m, reg k) {
    return _mm256_mul_pd(m, pow2(_mm256_min_pd(_mm256_max_pd(k, set1(-1023.0)), set1(1023.0))));
  }
  static reg reduce_ln2(reg x, reg n) {
    using C = ExpCoeffs<double>;
    return _mm256_fnmadd_pd(n, set1(C::ln2_lo), _mm256_fnmadd_pd(n, set1(C::ln2_hi), x));
  }

  static mask none() { return _mm256_setzero_pd(); }
  static mask unord(reg a) { return _mm256_cmp_pd(a, a, _CMP_UNORD_Q); }
  static mask nonzero(reg a) { return _mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_NEQ_UQ); }
  static mask notfinite(reg a) {
    const reg abs = _mm256_andnot_pd(set1(-0.0), a);
    return _mm256_cmp_pd(abs, set1(__builtin_huge_val()), _CMP_NLT_UQ);
  }
  // Negative (-0 may count), NaN or +-inf, in the lanes' sign bits (all that
  // any and select read): a's own sign or'ed with NaN or above the largest
  // finite double.
  static mask negative_or_notfinite(reg a) {
    return _mm256_or_pd(a, _mm256_cmp_pd(a, set1(0x1.fffffffffffffp+1023), _CMP_NLE_UQ));
  }
  static mask gt(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static mask not_le(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_NLE_UQ); }
  static mask mask_or(mask a, mask b) { return _mm256_or_pd(a, b); }
  static bool any(mask m) { return _mm256_movemask_pd(m) != 0; }
  static reg select(mask m, reg if_true, reg if_false) { return _mm256_blendv_pd(if_false, if_true, m); }
  static double hmax(reg a) {
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    m = _mm_max_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
  }
  static double hsum(reg a) {
    double out[width];
    to_array(a, out);
    return (out[0] + out[1]) + (out[2] + out[3]);
  }
  static void to_array(reg a, double* out) { _mm256_storeu_pd(out, a); }
};

}  // namespace avx2
}  // namespace ssm
