// Half-precision softmax-family kernels for AVX2 + FMA + F16C: the float32
// passes with 8 float16 / bfloat16 values widened per load and rounded per
// store. float16: vcvtph2ps / vcvtps2ph (nearest even, which also gives inf
// on overflow and keeps NaN). bfloat16: the upper half of a float32 (a shift
// on load; on store the round-to-nearest-even carry of convert_generic.h on
// 8 lanes at once). Tails go through a small stack buffer, so no load or
// store touches memory past the row.
#include "vecmath_avx2.h"
#define SSM_ISA avx2
#include "half_generic.h"

#include <cstring>
#include <type_traits>

namespace ssm {
namespace avx2 {
namespace {

// Rows of K entries in slots of N lanes (K < N, N = 4 or 8; half_rows.h
// HasSpread): entry c of row r in lane r N + c, the spare lanes -inf. The
// byte shuffles that put the packed words into their lanes (f16_to: words;
// bf16_to: the upper words of float32 lanes, from the 8 words in both
// 128-bit halves) or bring the lanes back (from: the narrowed words), and the
// spare lanes' -inf bits (or'ed in: the shuffles leave them zero).
template <size_t K, size_t N>
struct Slots {
  static constexpr size_t kValues = 8 / N * K;  // the packed words of a vector
  alignas(32) int8_t bf16_to[32] = {};
  alignas(16) int8_t f16_to[16] = {}, from[16] = {};
  alignas(32) uint32_t bf16_spare[8] = {};
  alignas(16) uint16_t f16_spare[8] = {};
  constexpr Slots() {
    for (size_t l = 0; l < 8; ++l) {
      const bool used = l % N < K;
      const int word = used ? int(l / N * K + l % N) : -1;
      const int back = l < kValues ? int(l / K * N + l % K) : -1;
      for (int h = 0; h < 2; ++h) {
        f16_to[2 * l + h] = static_cast<int8_t>(used ? 2 * word + h : -128);
        bf16_to[4 * l + h] = -128;
        bf16_to[4 * l + 2 + h] = static_cast<int8_t>(used ? 2 * word + h : -128);
        from[2 * l + h] = static_cast<int8_t>(back >= 0 ? 2 * back + h : -128);
      }
      f16_spare[l] = used ? 0 : 0xfc00;
      bf16_spare[l] = used ? 0 : 0xff800000u;
    }
  }
};

inline __m128i load128(const void* p) { return _mm_load_si128(static_cast<const __m128i*>(p)); }

// count (<= 8) 16-bit words from p in the low words of a vector. E, a full
// vector of rows, in 8-, 4- and 2-byte pieces (no byte past the row read:
// a 16-byte load could cross into an unmapped page); a shorter batch tail
// through a stack copy.
template <size_t E>
inline __m128i load_words(const void* p, size_t count) {
  static_assert(4 <= E && E < 8, "a vector of rows takes 4 to 7 words");
  const char* b = static_cast<const char*>(p);
  if (count == E) {
    __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b));
    if constexpr ((E & 2) != 0) {
      int32_t pair;
      std::memcpy(&pair, b + 8, 4);
      v = _mm_insert_epi32(v, pair, 2);
    }
    if constexpr ((E & 1) != 0) {
      uint16_t word;
      std::memcpy(&word, b + 2 * (E - 1), 2);
      v = _mm_insert_epi16(v, word, E - 1);
    }
    return v;
  }
  alignas(16) uint16_t tmp[8] = {};
  std::memcpy(tmp, p, count * 2);
  return load128(tmp);
}

// The low count words of v to p (load_words' pieces backwards).
template <size_t E>
inline void store_words(void* p, __m128i v, size_t count) {
  char* b = static_cast<char*>(p);
  if (count == E) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(b), v);
    if constexpr ((E & 2) != 0) {
      const int32_t pair = _mm_extract_epi32(v, 2);
      std::memcpy(b + 8, &pair, 4);
    }
    if constexpr ((E & 1) != 0) {
      const uint16_t word = static_cast<uint16_t>(_mm_extract_epi16(v, E - 1));
      std::memcpy(b + 2 * (E - 1), &word, 2);
    }
    return;
  }
  alignas(16) uint16_t tmp[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
  std::memcpy(p, tmp, count * 2);
}

template <class H>
struct HalfFormatOps;

template <>
struct HalfFormatOps<F16Bits> {
  static __m256 widen8(__m128i bits) { return _mm256_cvtph_ps(bits); }
  static __m256 load8(const F16Bits* p) { return widen8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static __m128 widen4(__m128i bits) { return _mm_cvtph_ps(bits); }
  static __m128i narrow8(__m256 v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static __m128i narrow8_finite(__m256 v) { return narrow8(v); }
  // Words in slots (Slots): one byte shuffle, the spare words' -inf or'ed
  // in, then the widening.
  template <class Sl>
  static __m256 widen_slots(__m128i words, const Sl& s) {
    return _mm256_cvtph_ps(_mm_or_si128(_mm_shuffle_epi8(words, load128(s.f16_to)), load128(s.f16_spare)));
  }
};

template <>
struct HalfFormatOps<BF16Bits> {
  static __m256 widen8(__m128i bits) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16)); }
  // From memory: the 8 values broadcast to both 128-bit halves (vbroadcasti128,
  // a load with no vector operation), then one vpshufb puts values 0-3 (low
  // half) and 4-7 (high half) into the upper words of the lanes and zeroes
  // the lower words: one vector operation per 8 values instead of two.
  static __m256 load8(const BF16Bits* p) {
    const __m256i upper = _mm256_setr_epi8(-1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 4, 5, -1, -1, 6, 7,  //
                                           -1, -1, 8, 9, -1, -1, 10, 11, -1, -1, 12, 13, -1, -1, 14, 15);
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_shuffle_epi8(both, upper));
  }
  static __m128 widen4(__m128i bits) { return _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(bits), 16)); }
  // Words in slots (Slots): the 8 words in both halves, one byte shuffle
  // into the upper words of the lanes (load8's), the spare lanes' -inf
  // or'ed in.
  template <class Sl>
  static __m256 widen_slots(__m128i words, const Sl& s) {
    const __m256i to = _mm256_load_si256(reinterpret_cast<const __m256i*>(s.bf16_to));
    const __m256i spare = _mm256_load_si256(reinterpret_cast<const __m256i*>(s.bf16_spare));
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(words), to), spare));
  }
  // Round to nearest even on the 16 dropped bits (see convert_generic.h).
  static __m256i rounded(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    return _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff))), 16);
  }
  // NaN: the upper half with the quiet bit set.
  static __m128i narrow8(__m256 v) {
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(_mm256_castps_si256(v), 16), _mm256_set1_epi32(0x0040));
    return pack(_mm256_blendv_epi8(rounded(v), quiet, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))));
  }
  // No NaN lanes (the short-row kernels' results): the rounding alone.
  static __m128i narrow8_finite(__m256 v) { return pack(rounded(v)); }
  // Every lane is below 2^16, so the saturating pack is exact; it packs
  // within 128-bit halves, and the permute brings lanes 4-7 down.
  static __m128i pack(__m256i bits) {
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(bits, bits), 0x08));
  }
  // Two vectors (no NaN lanes) to 16 values at p: one pack and one permute
  // for both (a0-3 b0-3 | a4-7 b4-7 put in order), one 32-byte store.
  static void store2_finite(BF16Bits* p, __m256 a, __m256 b) {
    const __m256i both = _mm256_permute4x64_epi64(_mm256_packus_epi32(rounded(a), rounded(b)), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), both);
  }
};

// Eight vectors' lane reductions together (half_rows.h group_reduce,
// group_sums), transposing as they go: halves (vperm2f128), then lane pairs
// (vshufps), then neighbours (vshufps): 14 shuffles and 7 operations for the
// eight rows, where one row at a time took a float64 sum through memory per
// row, and the per-row work then loaded its vector of eight from
// single-lane stores (a store-forwarding stall). Row r ends in lane r: the
// tree leaves input 2p in lane p and input 2p + 1 in lane 4 + p, so the
// rows go in as 0 4 1 5 2 6 3 7. A sum's order: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 +
// l7)), log2 8 = 3 float32 roundings (half_rows.h's budget counts them).
struct GroupReduce8 {
  template <class Op>
  static __m256 reduce8(const __m256 (&v)[8], Op op) {
    constexpr int kOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    __m256 c[4], d[2];
    for (int i = 0; i < 4; ++i) {
      const __m256 a = v[kOrder[2 * i]], b = v[kOrder[2 * i + 1]];
      c[i] = op(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    }
    for (int i = 0; i < 2; ++i)
      d[i] = op(_mm256_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44), _mm256_shuffle_ps(c[2 * i], c[2 * i + 1], 0xEE));
    return op(_mm256_shuffle_ps(d[0], d[1], 0x88), _mm256_shuffle_ps(d[0], d[1], 0xDD));
  }
  template <class Op>
  static void reduce8(const __m256 (&v)[8], double (&out)[8], Op op) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, reduce8(v, op));
    for (int k = 0; k < 8; ++k) out[k] = lanes[k];
  }
  static void group_hmax(const __m256 (&v)[8], double (&out)[8]) {
    reduce8(v, out, [](__m256 a, __m256 b) { return _mm256_max_ps(a, b); });
  }
  static void group_hsum(const __m256 (&v)[8], double (&out)[8]) {
    reduce8(v, out, [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); });
  }
  static __m256 group_hsum_lanes(const __m256 (&v)[8]) {
    return reduce8(v, [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); });
  }
};

template <class H>
struct HalfF32x8 : F32x8, GroupReduce8 {
  using Ops = HalfFormatOps<H>;
  using F32x8::load;
  using F32x8::load_tail;
  using F32x8::store;
  using F32x8::store_tail;
  static constexpr size_t stream_align = 0;
  // half_rows.h's wide_tiny_rows (rows in registers) for the rows of 16 and
  // 32 where they beat the buffered short rows (Zen 3, 4 Mi elements, one
  // thread, medians of 5 interleaved processes, load 8-12, time / buffered):
  // float16 softmax 16 0.86, log_softmax 16 0.80, 32 0.92; bfloat16
  // log_softmax 16 0.85-0.89. Not taken: float16 softmax 32 0.92-0.98,
  // bfloat16 softmax 16 1.08-1.09, 32 1.04-1.11, log_softmax 32 1.05-1.14
  // (bfloat16 softmax 16: 5.6 instructions per element against 9.0, yet
  // slower; not profiled further: each row's butterflies and division are
  // serial, two rows at a time).
  static constexpr size_t wide_softmax_max = std::is_same<H, F16Bits>::value ? 16 : 0;
  static constexpr size_t wide_log_softmax_max = std::is_same<H, F16Bits>::value ? 32 : 16;
  static reg load(const H* p) { return Ops::load8(p); }
  static reg load_tail(const H* p, size_t n, double fill) {
    alignas(16) uint16_t tmp[8] = {};
    std::memcpy(tmp, p, n * sizeof(H));
    const reg v = Ops::widen8(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
    return _mm256_blendv_ps(set1(fill), v, _mm256_castsi256_ps(first(n)));
  }
  static void store(H* p, reg v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), Ops::narrow8(v)); }
  static void store_tail(H* p, reg v, size_t n) {
    alignas(16) uint16_t tmp[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), Ops::narrow8(v));
    std::memcpy(p, tmp, n * sizeof(H));
  }
  static void stream(H* p, reg v) { store(p, v); }
  // 2^(j - 127) from u = 2^23 + j, j in [1, 254]: u's low 9 mantissa bits
  // moved into the exponent field (F32x8::pow2 without its add; half_rows.h
  // exp2_scaled rounds t with that add).
  static reg pow2_biased(reg u) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(u), 23)); }
  static void store_finite(H* p, reg v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), Ops::narrow8_finite(v)); }
  // Two vectors to 2 W values (half_rows.h write_row, HasPairStore): bfloat16
  // packs both at once; float16 converts each (the same two stores).
  static void store2_finite(H* p, reg a, reg b) {
    if constexpr (std::is_same<H, BF16Bits>::value) {
      Ops::store2_finite(p, a, b);
    } else {
      store_finite(p, a);
      store_finite(p + 8, b);
    }
  }
  // Rows of K entries (count values, whole rows) into slots of N lanes
  // (half_rows.h HasSpread: rows of 3 and 5-7 take the kernels of rows of
  // 4 and 8), and back, rounded (no NaN lanes): the words' loads and stores
  // in pieces (load_words), one byte shuffle each way.
  template <size_t K, size_t N>
  static reg load_spread(const H* p, size_t count) {
    static constexpr Slots<K, N> s{};
    return Ops::widen_slots(load_words<Slots<K, N>::kValues>(p, count), s);
  }
  template <size_t K, size_t N>
  static void store_spread(H* p, reg v, size_t count) {
    static constexpr Slots<K, N> s{};
    store_words<Slots<K, N>::kValues>(p, _mm_shuffle_epi8(Ops::narrow8_finite(v), load128(s.from)), count);
  }
  // Lanes 2k and 2k + 1 exchanged (softmax_pairs' partners).
  static reg swap_pairs(reg v) { return _mm256_permute_ps(v, 0xB1); }
  // Lane pairs 2k and 2k + 1 exchanged (softmax_quads').
  static reg swap_quads(reg v) { return _mm256_permute_ps(v, 0x4E); }
  // The two halves of the vector exchanged (rows of eight).
  static reg swap_octs(reg v) { return _mm256_permute2f128_ps(v, v, 0x01); }
};

template <class H>
struct HalfF64x4 : F64x4 {
  using Ops = HalfFormatOps<H>;
  using F64x4::load;
  using F64x4::load_tail;
  static reg load(const H* p) {
    return _mm256_cvtps_pd(Ops::widen4(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static reg load_tail(const H* p, size_t n, double fill) {
    alignas(16) uint16_t tmp[8] = {};
    std::memcpy(tmp, p, n * sizeof(H));
    const reg v = _mm256_cvtps_pd(Ops::widen4(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp))));
    return _mm256_blendv_pd(set1(fill), v, _mm256_castsi256_pd(first(n)));
  }
};

inline __m256 div_lanes(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }

}  // namespace
}  // namespace avx2
}  // namespace ssm

#include "half_rows.h"

namespace ssm {
namespace avx2 {
namespace {

// The float32 kernels' tuning (softmax_avx2.cpp).
constexpr int kUnrollStore = 4, kBlockStore = 2;
constexpr int kUnrollFast = 4, kBlockFast = 2;
constexpr int kUnrollLse = 8, kBlockLse = 1;  // the float64 lanes' fast-sum tuning

// softmax's last pass on rows past the short-row kernels (driver_half.cpp
// softmax_ref_cached, softmax_reload_cached): y = term * factor from the
// float32 terms, rounded once. The caller has checked that the terms'
// sum is finite, so no term is NaN or inf and every y is in [0, 1]: the
// rounding without the NaN guard (store_finite), bfloat16 two vectors per
// store (store2_finite: one pack and one permute for both). The generic
// pass (half_generic.h) stores each vector with the guard (bfloat16: 4 of
// its 12 vector operations) and its own pack and permute. Same bits: the
// guard changes NaN lanes only, and the pair store rounds each lane as the
// single one. Four vectors a step; the rest through the generic tail.
template <class H>
void scale_terms(const float* x, uint16_t* out, size_t n, double factor) {
  using V = HalfF32x8<H>;
  constexpr size_t W = V::width;
  H* y = reinterpret_cast<H*>(out);
  const __m256 f = V::set1(factor);
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const __m256 a = _mm256_mul_ps(_mm256_loadu_ps(x + i), f), b = _mm256_mul_ps(_mm256_loadu_ps(x + i + W), f);
    const __m256 c = _mm256_mul_ps(_mm256_loadu_ps(x + i + 2 * W), f);
    const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(x + i + 3 * W), f);
    V::store2_finite(y + i, a, b);
    V::store2_finite(y + i + 2 * W, c, d);
  }
  for (; i + W <= n; i += W) V::store_finite(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), f));
  if (i < n) V::store_tail(y + i, _mm256_mul_ps(V::load_tail(x + i, n - i, 0.0), f), n - i);
}

// log_softmax's write on rows past the short-row kernels (driver_half.cpp
// log_softmax_fused): y = (x - hi) - lo, rounded once, bfloat16 two vectors
// per store and without narrow8's NaN guard. Same bits, NaN rows included:
// a NaN lane here is x's NaN quieted (x is widened bfloat16: its low 16 bits
// are 0) or the default NaN, and the rounding's carry (at most 0x8000 on a
// low half of 0) leaves the upper half, quiet bit set, as the guard does.
// Four vectors a step (the generic pass's unroll), x prefetched as there.
template <class H>
void shift_row(const uint16_t* xb, uint16_t* out, size_t n, double hi, double lo) {
  using V = HalfF32x8<H>;
  constexpr size_t W = V::width;
  const H* x = reinterpret_cast<const H*>(xb);
  H* y = reinterpret_cast<H*>(out);
  const __m256 vhi = V::set1(hi), vlo = V::set1(lo);
  auto shift = [vhi, vlo](__m256 v) SSM_INLINE { return _mm256_sub_ps(_mm256_sub_ps(v, vhi), vlo); };
  const size_t ahead = prefetch_distance(n * sizeof(H)) / sizeof(H);
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    if (ahead) SSM_PREFETCH(reinterpret_cast<const char*>(x + i + ahead));
    const __m256 a = shift(V::load(x + i)), b = shift(V::load(x + i + W));
    const __m256 c = shift(V::load(x + i + 2 * W)), d = shift(V::load(x + i + 3 * W));
    V::store2_finite(y + i, a, b);
    V::store2_finite(y + i + 2 * W, c, d);
  }
  for (; i + W <= n; i += W) V::store_finite(y + i, shift(V::load(x + i)));
  if (i < n) V::store_tail(y + i, shift(V::load_tail(x + i, n - i, 0.0)), n - i);
}

template <class H>
HalfKernels make_format() {
  HalfKernels k = make_half_kernels<HalfF32x8<H>, HalfF64x4<H>, H, kUnrollFast, kBlockFast, kUnrollStore,
                                    kBlockStore, kUnrollLse, kBlockLse>();
  k.scale_from_f32 = &scale_terms<H>;
  k.write_shift = &shift_row<H>;
  // Short rows: faster than the buffered and fused paths up to n = 1024
  // (bfloat16, 4 Mi elements, one thread: 1.0-5x, n = 8-1024). Longer, the
  // time with the kernels off over on (Zen 5, 1 Mi elements, one thread,
  // minima of interleaved calls): softmax to 2048 (n = 2048: 1.05-1.06;
  // 3072: 0.91-1.00; 4096: 0.92-0.99), log_softmax and logsumexp to 4096
  // (n = 4096: 1.01-1.03).
  add_half_rows<HalfF32x8<H>, H>(k, {2048, kHalfRowsMax, kHalfRowsMax});
  return k;
}

}  // namespace
}  // namespace avx2

const HalfKernelSet& half_kernels_avx2() {
  static const HalfKernelSet set{"avx2", avx2::make_format<F16Bits>(), avx2::make_format<BF16Bits>()};
  return set;
}
}  // namespace ssm
