// Half-precision softmax-family kernels for AVX-512 F/DQ/BW/VL: the float32
// passes with 16 float16 / bfloat16 values widened per load and rounded per
// store, masked tails. float16: vcvtph2ps / vcvtps2ph (nearest even, inf on
// overflow, NaN kept). bfloat16: the upper half of a float32 (a shift on
// load); on store the round-to-nearest-even carry of convert_generic.h, or,
// in a translation unit compiled with AVX512_BF16 (half_avx512bf16.cpp),
// vcvtneps2bf16 / vcvtne2ps2bf16.
// Included by half_avx512.cpp and half_avx512bf16.cpp only, each defining
// its own entry point. The kernels here have internal linkage; the inline
// members of vecmath_avx512.h's types do not, so half_avx512bf16.cpp renames
// the namespace (see there).
#pragma once
#include "vecmath_avx512.h"
#define SSM_ISA avx512
#include "half_generic.h"

namespace ssm {
namespace avx512 {
namespace {

template <class H>
struct HalfFormatOps;

template <>
struct HalfFormatOps<F16Bits> {
  static __m512 widen16(__m256i bits) { return _mm512_cvtph_ps(bits); }
  // The 16-lane conversion on a zero-extended register (the 8-lane vcvtph2ps
  // is F16C's, not part of this file's instruction sets).
  static __m256 widen8(__m128i bits) {
    return _mm512_castps512_ps256(_mm512_cvtph_ps(_mm256_zextsi128_si256(bits)));
  }
  static __m256i narrow16(__m512 v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static __m256i narrow16_finite(__m512 v) { return narrow16(v); }
  static constexpr uint16_t neg_inf = 0xfc00;
};

template <>
struct HalfFormatOps<BF16Bits> {
  static constexpr uint16_t neg_inf = 0xff80;
  // Word i to word 2i + 1 (the upper half of lane i), the even words zeroed:
  // one vpermw instead of a zero extension and a shift (one vector
  // operation fewer per 16 values, on every bfloat16 load).
  static __m512 widen16(__m256i bits) {
    const __m512i upper = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0, 6, 0, 5, 0, 4, 0,
                                           3, 0, 2, 0, 1, 0, 0, 0);
    return _mm512_castsi512_ps(
        _mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, upper, _mm512_castsi256_si512(bits)));
  }
  static __m256 widen8(__m128i bits) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
  // Round to nearest even on the 16 dropped bits (see convert_generic.h).
  // carried: the float32 bits plus the carry, the result in the upper half.
  static __m512i carried(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
  }
  // The upper halves of 16 carried lanes, in order (one vpermw).
  static __m256i upper_words(__m512i c) {
    const __m512i odd_words = _mm512_set_epi16(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1, 31, 29, 27,
                                               25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_castsi512_si256(_mm512_permutexvar_epi16(odd_words, c));
  }
  // The integer rounding; NaN lanes: the upper half with the quiet bit set.
  static __m256i narrow16_integer(__m512 v) {
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m512i quiet = _mm512_mask_or_epi32(carried(v), nan, _mm512_castps_si512(v), _mm512_set1_epi32(0x00400000));
    return upper_words(quiet);
  }
  // No NaN lanes (the short-row kernels' results): the rounding alone.
  static __m256i narrow16_finite_integer(__m512 v) { return upper_words(carried(v)); }
#if defined(__AVX512BF16__)
  // vcvtneps2bf16 rounds to nearest even and quiets NaN as above, but flushes
  // float32 subnormal inputs to zero (its implied DAZ; a normal input never
  // rounds below the smallest normal bfloat16): a vector with a subnormal
  // lane (rare: |v| < 2^-126) takes the integer rounding instead.
  static bool has_subnormal(__m512 v) { return _mm512_fpclass_ps_mask(v, 0x20) != 0; }
  static __m256i narrow16(__m512 v) {
    if (__builtin_expect(has_subnormal(v), 0)) return narrow16_integer(v);
    return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
  }
  static __m256i narrow16_finite(__m512 v) { return narrow16(v); }
#else
  static __m256i narrow16(__m512 v) { return narrow16_integer(v); }
  static __m256i narrow16_finite(__m512 v) { return narrow16_finite_integer(v); }
#endif
};

// Two vectors' results into one 32-element store (the short-row kernels'
// write): bfloat16 keeps the rounded upper halves, picked by one vpermt2w
// (or, with AVX512_BF16, one vcvtne2ps2bf16 where no lane is subnormal).
template <class H>
struct PairStore {};
template <>
struct PairStore<BF16Bits> {
#if defined(__AVX512BF16__)
  // No lane below 2^-126 in magnitude, except zeros (the caller knows: a row
  // bound), so no subnormal test.
  static void store2_normal(BF16Bits* p, __m512 a, __m512 b) {
    _mm512_storeu_si512(p, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
  }
#endif
  static void store2_finite(BF16Bits* p, __m512 a, __m512 b) {
    using Ops = HalfFormatOps<BF16Bits>;
#if defined(__AVX512BF16__)
    if (__builtin_expect(!Ops::has_subnormal(a) && !Ops::has_subnormal(b), 1)) {
      // The low 16 words from the second operand.
      store2_normal(p, a, b);
      return;
    }
#endif
    const __m512i odd_words = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29,
                                               27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    _mm512_storeu_si512(p, _mm512_permutex2var_epi16(Ops::carried(a), odd_words, Ops::carried(b)));
  }
};

// Eight vectors' lane reductions together, transposing as they go: quarter
// pairs (vshuff32x4), then quarters, then lane pairs within quarters
// (vshufps), then neighbours (vpermilps); row k ends in lane 4k (k < 4) or
// 4(k - 4) + 2.
struct GroupReduce {
  // Row k's value in lane 4k (k < 4) or 4(k - 4) + 2.
  template <class Op>
  static __m512 reduce8_spread(const __m512 (&v)[8], Op op) {
    __m512 c[4], d[2];
    for (int i = 0; i < 4; ++i)
      c[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
    for (int i = 0; i < 2; ++i)
      d[i] = op(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88), _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xDD));
    const __m512 e = op(_mm512_shuffle_ps(d[0], d[1], 0x44), _mm512_shuffle_ps(d[0], d[1], 0xEE));
    return op(e, _mm512_permute_ps(e, 0xB1));
  }
  template <class Op>
  static void reduce8(const __m512 (&v)[8], double (&out)[8], Op op) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, reduce8_spread(v, op));
    for (int k = 0; k < 4; ++k) {
      out[k] = lanes[4 * k];
      out[k + 4] = lanes[4 * k + 2];
    }
  }
  static void group_hmax(const __m512 (&v)[8], double (&out)[8]) {
    reduce8(v, out, [](__m512 a, __m512 b) { return _mm512_max_ps(a, b); });
  }
  static void group_hsum(const __m512 (&v)[8], double (&out)[8]) {
    reduce8(v, out, [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); });
  }
  // The eight sums in one vector, row k in lanes k and k + 8.
  static __m512 group_hsum_lanes(const __m512 (&v)[8]) {
    const __m512i rows = _mm512_set_epi32(14, 10, 6, 2, 12, 8, 4, 0, 14, 10, 6, 2, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(rows, reduce8_spread(v, [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); }));
  }
};

// Rows of K entries in slots of N lanes (K < N, N a power of two up to 16):
// entry c of row r at lane r N + c (to_slots: the word each lane takes;
// `used`: the lanes a row fills) and back (from_slots: the lane each packed
// word takes).
template <size_t K, size_t N>
struct Slots {
  uint16_t to_slots[16] = {}, from_slots[16] = {};
  __mmask16 used = 0;
  constexpr Slots() {
    for (size_t l = 0; l < 16; ++l) {
      to_slots[l] = static_cast<uint16_t>(l % N < K ? l / N * K + l % N : 0);
      from_slots[l] = static_cast<uint16_t>(l < 16 / N * K ? l / K * N + l % K : 0);
      if (l % N < K) used = static_cast<__mmask16>(used | (1u << l));
    }
  }
};

// log1p(z) in float32 lanes for finite z >= 0 without a division (the
// short-row kernels' log S, half_rows.h log1p_fast): t = 1 + z = 2^e mant,
// mant in [1, 2) (getexp, getmant: exact), c = 1 + i / 16 for the top four
// bits i of mant's fraction, r = mant inv - 1 in [-2^-24, 1/16] by one fma,
// inv = 1 / c rounded to float32 and log_c = -log(inv) rounded from the
// rounded inv (so mant = (1 + r) / inv exactly before r's rounding); where
// e = 0, r = z inv + (inv - 1) instead (inv - 1 exact), so that z keeps all
// its bits (r = z itself where i = 0: a dominant entry). log1p(r) = r q(r),
// q Taylor's to degree 5 (tail below r^6 / 7 <= 2^-26.8 relative) by
// Estrin's scheme, then log_c and e ln2 added (ln2 split as log1p_lanes').
// Measured over every float32 z in [0, 4096]: within 2.04 float32 ulp of
// log1p(z). Its longest chain is 10 dependent operations, no division,
// against about 21 and a division in log1p_lanes, and the group's log S
// sits on the serial chain between its sums and its writes: the kernel
// alone, Zen 5, one thread, bfloat16 log_softmax, rows of 32 / 128: 0.278
// -> 0.244 / 0.149 -> 0.140 ns per element.
struct Log1pTable32 {
  float inv[16], log_c[16];
};
alignas(64) constexpr Log1pTable32 kLog1pTable32 = {
    {0x1p+0f, 0x1.e1e1e2p-1f, 0x1.c71c72p-1f, 0x1.af286cp-1f, 0x1.99999ap-1f, 0x1.861862p-1f, 0x1.745d18p-1f,
     0x1.642c86p-1f, 0x1.555556p-1f, 0x1.47ae14p-1f, 0x1.3b13b2p-1f, 0x1.2f684cp-1f, 0x1.24924ap-1f, 0x1.1a7b96p-1f,
     0x1.111112p-1f, 0x1.084210p-1f},
    {0x0p+0f, 0x1.f0a30ap-5f, 0x1.e27074p-4f, 0x1.5ff306p-3f, 0x1.c8ff7ap-3f, 0x1.1675cap-2f, 0x1.4618bap-2f,
     0x1.739d7ep-2f, 0x1.9f323cp-2f, 0x1.c8ff7ep-2f, 0x1.f128f4p-2f, 0x1.0be72ep-1f, 0x1.1e85f4p-1f, 0x1.307d74p-1f,
     0x1.41d8fcp-1f, 0x1.52a2d4p-1f}};

template <class H>
struct HalfF32x16 : F32x16, PairStore<H>, GroupReduce {
  using Ops = HalfFormatOps<H>;
  using F32x16::load;
  using F32x16::load_tail;
  using F32x16::store;
  using F32x16::store_tail;
  static constexpr size_t stream_align = 0;
  static reg load(const H* p) { return Ops::widen16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  // Masked loads and stores never touch the masked-off lanes' memory.
  static reg load_tail(const H* p, size_t n, double fill) {
    const mask m = first(n);
    return _mm512_mask_blend_ps(m, set1(fill), Ops::widen16(_mm256_maskz_loadu_epi16(m, p)));
  }
  static void store(H* p, reg v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), Ops::narrow16(v)); }
  static void store_tail(H* p, reg v, size_t n) { _mm256_mask_storeu_epi16(p, first(n), Ops::narrow16(v)); }
  static void stream(H* p, reg v) { store(p, v); }
  // The short-row kernels' exp (half_rows.h): t - floor(t) in one vreduceps
  // (AVX512DQ; imm 0x09: no fraction bits kept, round down, no exceptions),
  // and vscalefps multiplies by 2^floor(t) itself.
  static reg frac_floor(reg t) { return _mm512_reduce_ps(t, 0x09); }
  static reg scale2_floor(reg p, reg t) { return _mm512_scalef_ps(p, t); }
  static reg add_masked(mask m, reg acc, reg v) { return _mm512_mask_add_ps(acc, m, acc, v); }
  // Lanes 2k and 2k + 1 exchanged (softmax_pairs' partners).
  static reg swap_pairs(reg v) { return _mm512_permute_ps(v, 0xB1); }
  // Lane pairs 2k and 2k + 1 exchanged (softmax_quads').
  static reg swap_quads(reg v) { return _mm512_permute_ps(v, 0x4E); }
  // Lane quads 2k and 2k + 1 exchanged (rows of eight), and the two halves
  // of the vector (rows of sixteen).
  static reg swap_octs(reg v) { return _mm512_shuffle_f32x4(v, v, 0xB1); }
  static reg swap_halves(reg v) { return _mm512_shuffle_f32x4(v, v, 0x4E); }
  static reg log1p_table(reg z) {
    const reg one = set1(1.0);
    const reg t = _mm512_add_ps(one, z);
    const reg mant = _mm512_getmant_ps(t, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    const reg e = _mm512_getexp_ps(t);
    // vpermps reads the index's low four bits: the fraction's top four.
    const __m512i i = _mm512_srli_epi32(_mm512_castps_si512(mant), 19);
    const reg inv = _mm512_permutexvar_ps(i, _mm512_load_ps(kLog1pTable32.inv));
    const reg log_c = _mm512_permutexvar_ps(i, _mm512_load_ps(kLog1pTable32.log_c));
    const mask near = _mm512_cmp_ps_mask(t, set1(2.0), _CMP_LT_OQ);
    const reg a = _mm512_mask_blend_ps(near, mant, z);
    const reg b = _mm512_mask_sub_ps(set1(-1.0), near, inv, one);
    const reg r = fmadd(a, inv, b);
    using C = ExpCoeffs<float>;
    const reg base = fmadd(e, set1(C::ln2_hi), fmadd(e, set1(C::ln2_lo), log_c));
    const reg r2 = mul(r, r);
    const reg lo = fmadd(r, set1(-1.0 / 2), one);
    const reg mid = fmadd(r, set1(-1.0 / 4), set1(1.0 / 3));
    const reg hi = fmadd(r, set1(-1.0 / 6), set1(1.0 / 5));
    const reg q = fmadd(mul(r2, r2), hi, fmadd(r2, mid, lo));
    return fmadd(r, q, base);
  }
  static void store_finite(H* p, reg v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), Ops::narrow16_finite(v));
  }
  // The tiny kernels' rows of K entries (half_rows.h tiny_rows): `count`
  // values (whole rows, at most 16 / N of them) read into slots of N lanes,
  // the slots' spare lanes -inf and a missing row's lanes 0 (one masked load
  // and one vpermw); store_spread writes them back packed, rounded (no NaN
  // lanes), `count` values (one vpermw and one masked store).
  template <size_t K, size_t N>
  static reg load_spread(const H* p, size_t count) {
    static constexpr Slots<K, N> s{};
    const __m256i words = _mm256_maskz_loadu_epi16(first(count), p);
    const __m256i to = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.to_slots));
    return Ops::widen16(
        _mm256_mask_permutexvar_epi16(_mm256_set1_epi16(static_cast<short>(Ops::neg_inf)), s.used, to, words));
  }
  template <size_t K, size_t N>
  static void store_spread(H* p, reg v, size_t count) {
    static constexpr Slots<K, N> s{};
    const __m256i from = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.from_slots));
    _mm256_mask_storeu_epi16(p, first(count), _mm256_permutexvar_epi16(from, Ops::narrow16_finite(v)));
  }
};

template <class H>
struct HalfF64x8 : F64x8 {
  using Ops = HalfFormatOps<H>;
  using F64x8::load;
  using F64x8::load_tail;
  static reg load(const H* p) {
    return _mm512_cvtps_pd(Ops::widen8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static reg load_tail(const H* p, size_t n, double fill) {
    const mask m = first(n);
    return _mm512_mask_blend_pd(m, set1(fill), _mm512_cvtps_pd(Ops::widen8(_mm_maskz_loadu_epi16(m, p))));
  }
};

inline __m512 div_lanes(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }

}  // namespace
}  // namespace avx512
}  // namespace ssm

#include "half_rows.h"

namespace ssm {
namespace avx512 {
namespace {

// The float32 kernels' tuning (softmax_avx512.cpp).
constexpr int kUnrollStore = 4, kBlockStore = 2;
constexpr int kUnrollFast = 8, kBlockFast = 2;
constexpr int kUnrollLse = 4, kBlockLse = 2;  // the float64 lanes' fast-sum tuning

template <class H>
HalfKernels make_format() {
  HalfKernels k = make_half_kernels<HalfF32x16<H>, HalfF64x8<H>, H, kUnrollFast, kBlockFast, kUnrollStore,
                                    kBlockStore, kUnrollLse, kBlockLse>();
  // Short rows: faster than the buffered and fused paths up to n = 1024
  // (bfloat16, 4 Mi elements, one thread: 1.2-11x, n = 16-1024). Longer, each
  // function's limit from the time with the kernels off over on (Zen 5, 1 Mi
  // elements, one thread, minima of interleaved calls, three runs): softmax
  // to 2048 (n = 2048: 1.01-1.06; 3072: 0.91-0.97; 4096: 0.88-0.96),
  // log_softmax to 4096 (n = 4096: 1.02-1.39), logsumexp to 4096 for
  // bfloat16 (n = 4096: 0.97-1.10) and to 2048 for float16 (n = 2048:
  // 0.96-1.06; 4096: 0.95-0.98).
  constexpr bool kF16 = std::is_same<H, F16Bits>::value;
  add_half_rows<HalfF32x16<H>, H>(k, {2048, kHalfRowsMax, kF16 ? 2048 : kHalfRowsMax});
  return k;
}

}  // namespace
}  // namespace avx512
}  // namespace ssm
