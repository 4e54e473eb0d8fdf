// Short half-precision rows (half_api.h: softmax_rows, log_softmax_rows,
// logsumexp_rows; rows of 2 to 16 entries: tiny_rows below, AVX2 rows of
// 16 and 32 where half_avx2.cpp takes them: wide_tiny_rows):
// batches of float16 / bfloat16 rows of rows_min_n (one vector) to
// kHalfRowsMax elements, kRowGroup rows at a time. Each row is read along
// its length in whole vectors; the last partial vector is the row's last
// vector-width elements, overlapping the one before (its repeated lanes are
// weighted 0 in the sums), so no row needs a scalar or masked tail. The
// passes interleave the group's rows (kRowGroup independent dependency
// chains per pass), and the per-row work (a reciprocal, a log1p, the special
// row tests) is done on the group's values side by side.
//
// Three passes, the three-pass-reload algorithm on a row in cache (L1, or L2
// for the longest):
//  1. max m of the row, widened into a float32 (scalar set: float64) buffer;
//  2. softmax: t = exp(x - m) stored over x in the buffer and summed; log_softmax: d = x - m stored, and S - 1 summed as
//     the terms of the entries below the max plus the count of max entries
//     minus one (exactly), so that log S = log1p(S - 1) keeps its relative
//     accuracy for a dominant entry (its result is -log S);
//  3. y = t / S, or y = d - log S, rounded once to the half format. Pass 3
//     reads only the buffer, so y may be x.
// log_softmax on rows whose group's buffer would not fit kOverlapBytes
// keeps no buffer: passes 2 and 3 read x again and recompute d (the same
// bits; y may still be x: each vector is read before it is written, the
// overlapping last one first).
// Accuracy (a half ulp is 2^-12 relative or more): x - m is rounded once
// (2^-24 |x - m|, at most 2^-17 relative in exp(x - m) where the result is
// above the smallest half subnormal); the exp is ExpCoeffsFast's (1.4 float32
// ulp); a float32 sum of n <= kHalfRowsMax terms, each lane summing n / W of
// them, is within (n / W + log2 W) 2^-24 <= 2^-15 relative (AVX2's 8 lanes);
// log1p_lanes within 2 float32 ulp (AVX-512's table log1p, log1p_fast: 2.1).
// All together below 2^-13 relative before
// the one rounding to the half format: within 1 ulp of it. log_softmax takes
// bfloat16's polynomial for both formats (1.02e-4: Exp2Poly): its error
// reaches log S only through the terms below the max, (1 - 1/S) <= log S of
// it, and every result is log S or more in magnitude, so 1.02e-4 relative
// at most; with the sum's 2^-15 S (over log S >= log 1.5 where S - 1 is
// taken from S; exact_rest's terms below) 1.8e-4 (2^-12.4) in all, under
// 0.4 ulp of float16 before its rounding. The same bits whatever the batch
// or group split (rows never mix).
// logsumexp: passes 1 and 2 of log_softmax reading x twice (nothing stored),
// max + log S with a certified error bound (logsumexp_rows).
// Rows with NaN, +-inf or no finite entry are flagged and not written (the
// caller's exact path handles them); everything else, including -inf entries
// and entries down to -3e38, is finished here.
//
// The including half_<isa>.cpp defines SSM_ISA, includes its vecmath header
// and defines div_lanes(reg, reg) (lane-wise division) for its lane type.
#ifndef SSM_ISA
#error "define SSM_ISA and div_lanes before including half_rows.h"
#endif
#pragma once

#include <cstddef>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

#include "exp_core.h"
#include "half_api.h"
#include "simd_loops.h"

namespace ssm {
namespace SSM_ISA {
namespace {
namespace half_rows {

constexpr size_t kRowGroup = 8;

inline bool lane_finite(double v) { return v - v == 0.0; }  // false for NaN and +-inf

// log1p(z) for 0 <= z < 2^15 in every lane (NaN lanes: garbage, unused).
// t = 1 + z is brought into [2^-1/2, 2^1/2) by four exact compare-and-halve
// steps (t * 2^-e), and log t = 2 atanh(s), s = f / (2 + f), f = t - 1
// (exact), as a series in s^2 (|s| <= 0.1716: five terms reach 2^-25
// relative in float32, eleven 2^-60 in float64). Where e = 0, f is z itself,
// not (1 + z) - 1: small z keeps all its bits. No branches. Largest: the
// largest step kept (1 where z <= 1: the others never halve; same bits).
template <class V, int Largest = 8>
inline Reg<V> log1p_lanes(Reg<V> z) {
  using S = typename V::scalar;
  constexpr int kTerms = std::is_same<S, float>::value ? 5 : 11;
  Reg<V> t = V::add(V::set1(1.0), z);
  Reg<V> e = V::set1(0.0);
  constexpr int kSteps[4] = {8, 4, 2, 1};
  for (int p : kSteps) {
    if (p > Largest) continue;
    const auto big = V::gt(t, V::set1(0.70710678118654752 * double(1 << p)));
    t = V::select(big, V::mul(t, V::set1(1.0 / double(1 << p))), t);
    e = V::select(big, V::add(e, V::set1(p)), e);
  }
  const Reg<V> f = V::select(V::nonzero(e), V::sub(t, V::set1(1.0)), z);
  const Reg<V> s = div_lanes(f, V::add(V::set1(2.0), f));
  const Reg<V> w = V::mul(s, s);
  Reg<V> q = V::set1(1.0 / (2 * kTerms + 1));
  for (int k = kTerms - 1; k >= 1; --k) q = V::fmadd(q, w, V::set1(1.0 / (2 * k + 1)));
  const Reg<V> two_s = V::add(s, s);
  const Reg<V> log_t = V::fmadd(V::mul(two_s, w), q, two_s);
  // e ln2 with ln2 split so that e * hi is exact (e <= 15).
  using C = ExpCoeffs<float>;
  return V::fmadd(e, V::set1(C::ln2_hi), V::fmadd(e, V::set1(C::ln2_lo), log_t));
}

// log1p_lanes, or the lane type's table log1p where it has one (AVX-512:
// half_avx512.h log1p_table, within 2.1 float32 ulp, no division): the
// group's log S is on the serial chain between its sums and its writes.
template <class V, class = void>
struct HasLog1pTable : std::false_type {};
template <class V>
struct HasLog1pTable<V, decltype(void(V::log1p_table(std::declval<Reg<V>>())))> : std::true_type {};
template <class V>
inline Reg<V> log1p_fast(Reg<V> z) {
  if constexpr (HasLog1pTable<V>::value)
    return V::log1p_table(z);
  else
    return log1p_lanes<V>(z);
}

// 2^f with c0 = 1 (so exp(0) is exactly 1) on |f| <= 1/2 (`nearest`) or
// 0 <= f < 1 (`floor`), fitted for the least maximum relative error (a
// linear program on 4001 points; the coefficients rounded to float32 and the
// error measured on 200001): degree 3 for bfloat16 (a half ulp is 2^-9
// relative or more), 1.02e-4 (2^-13.3) nearest, 8.6e-5 (2^-13.5) floor;
// degree 4 for float16 (2^-12), 2.84e-6 (2^-18.4) and 2.92e-6 (2^-18.4).
template <class H>
struct Exp2Poly;
template <>
struct Exp2Poly<BF16Bits> {
  static constexpr int degree = 3;
  static constexpr double error = 1.02e-4;  // the larger variant's
  static constexpr double nearest[degree + 1] = {1.0, 0x1.62f5fap-1, 0x1.f00c4ep-3, 0x1.c2a25cp-5};
  static constexpr double floor[degree + 1] = {1.0, 0x1.63e654p-1, 0x1.d23788p-3, 0x1.3baadcp-4};
};
template <>
struct Exp2Poly<F16Bits> {
  static constexpr int degree = 4;
  static constexpr double error = 2.92e-6;
  static constexpr double nearest[degree + 1] = {1.0, 0x1.62e12ap-1, 0x1.ec0382p-3, 0x1.c9fd1ep-5, 0x1.3a007ap-7};
  static constexpr double floor[degree + 1] = {1.0, 0x1.62d6d0p-1, 0x1.ee2374p-3, 0x1.abfe7ep-5, 0x1.b7ea5cp-7};
};

// Lane types with frac_floor(t) = t - floor(t) and scale2_floor(p, t) =
// p 2^floor(t) (AVX-512: vreduceps, vscalefps) take the `floor` polynomial
// and no rounding step.
template <class V, class = void>
struct HasFloorExp2 : std::false_type {};
template <class V>
struct HasFloorExp2<V, decltype(void(V::frac_floor(std::declval<Reg<V>>())))> : std::true_type {};

template <class V, int Degree>
inline Reg<V> poly_scaled(Reg<V> f, const double (&c)[Degree + 1], double scale) {
  Reg<V> p = V::set1(c[Degree] * scale);
  for (int i = Degree - 1; i >= 0; --i) p = V::fmadd(p, f, V::set1(c[i] * scale));
  return p;
}

// The terms are kept as exp(d) * 2^kTermShift: the smallest that reach a
// bfloat16 result (2^-133 of a sum of at most 2^10 terms, down to 2^-143)
// are then normal float32 numbers, which every set's scale2_acc gives
// exactly (AVX2's flushes below 2^-126); the scale is undone in the one
// rounding at the end (softmax: 1 / sum of the scaled terms) or exactly
// (log_softmax: S - 1 in float64).
constexpr int kTermShift = 64;
constexpr double kTermScale = 0x1p64;
static_assert(kTermScale == double(uint64_t(1) << 63) * 2, "2^kTermShift");

// exp(d) * 2^kTermShift for d <= 0 (NaN stays NaN: the max keeps its second
// operand), as 2^t, t = d log2 e: t's rounding moves the result by at most
// 2^-16.8 relative where it can reach a half result (|t| < 150).
constexpr double kLog2e = 1.4426950408889634;

// float32 lane types with pow2_biased(u) = 2^(j - 127) from the bits of
// u = 2^23 + j (AVX2) round t and build the scale from one sum (below).
template <class V, class = void>
struct HasPow2Biased : std::false_type {};
template <class V>
struct HasPow2Biased<V, decltype(void(V::pow2_biased(std::declval<Reg<V>>())))>
    : std::is_same<typename V::scalar, float> {};

// 2^t * 2^kTermShift for t <= 0 (t = d log2 e).
template <class V, class H>
inline Reg<V> exp2_scaled(Reg<V> t) {
  using C = Exp2Poly<H>;
  if constexpr (HasPow2Biased<V>::value) {
    // u = 2^23 + 190 + t rounds t to the nearest integer k, ties to even (u
    // stays in [2^23, 2^24), where the spacing is 1, and 2^23 + 190 is even:
    // the same k as V::round), and its low bits hold k + 190 = (k + 63) + 127:
    // the scale 2^(k + 63), and the other factor two of 2^kTermShift rides
    // in the coefficients (exact: every Horner step is exactly twice the
    // unscaled one). Two operations fewer than round, the shift's add, the
    // clamp and pow2's add. The clamp at -190 keeps k + 190 >= 0, and
    // k + 190 = 0 (t <= -189.5, -inf entries too) gives u = 2^23 exactly,
    // whose shifted bits are +0: the term is exactly 0, as it rounds to in
    // every half result (2^-189.5 of the max's term; terms of t in
    // (-189.5, -189] are 2^-125.5 to 2^-125, absorbed by every float32 sum
    // holding the max's 2^kTermShift). A clamp at -189 gave every -inf entry
    // the term 2^-125, whose t / S (softmax) and t 2^-kTermShift (tiny
    // log_softmax rows) underflowed: a microcode assist per vector on
    // Zen 3. bfloat16 softmax, rows with half their entries -inf, 4 Mi
    // elements, one thread, load 11-13, time at -190 / at -189 (medians of
    // 5 interleaved processes): n = 7 0.44, 64 0.64, 1000 0.68;
    // float16 n = 256 0.80. At -189 those rows took 1.65x (n = 64) and
    // 1.43x (n = 1000) the time of the same rows unmasked; now 1.04 and
    // 0.99. Rows without such entries: the same time.
    constexpr double kMagic = 0x1p23 + 127 + (kTermShift - 1);
    t = V::max(V::set1(-190.0), t);
    const Reg<V> u = V::add(t, V::set1(kMagic));
    const Reg<V> k = V::sub(u, V::set1(kMagic));
    return V::mul(poly_scaled<V, C::degree>(V::sub(t, k), C::nearest, 2.0), V::pow2_biased(u));
  } else if constexpr (HasFloorExp2<V>::value) {
    // No clamp: vreduceps(-inf) = 0 and vscalefps(p, -inf) = 0. The scale
    // rides in the coefficients (exact powers of two).
    return V::scale2_floor(poly_scaled<V, C::degree>(V::frac_floor(t), C::floor, kTermScale), t);
  } else {
    t = V::max(V::set1(-300.0), t);
    const Reg<V> k = V::round(t);
    return V::scale2_acc(poly_scaled<V, C::degree>(V::sub(t, k), C::nearest, 1.0), V::add(k, V::set1(kTermShift)));
  }
}

template <class V, class H>
inline Reg<V> exp_scaled(Reg<V> d) {
  return exp2_scaled<V, H>(V::mul(d, V::set1(kLog2e)));
}

// The geometry of a row of n >= V::width elements: vectors at j * width,
// the last one at n - width (in the buffer at tail = (count - 1) * width,
// after the others); keep: 0 on its lanes already counted.
template <class V>
struct RowVectors {
  size_t count, last, tail;
  Reg<V> keep;
  explicit RowVectors(size_t n) {
    constexpr size_t W = V::width;
    alignas(64) typename V::scalar ramp[2 * W];
    for (size_t i = 0; i < 2 * W; ++i) ramp[i] = i < W ? 0 : 1;
    count = (n + W - 1) / W;
    last = n - W;
    tail = (count - 1) * W;
    keep = V::load(ramp + W - (count * W - n));
  }
};

// A group starting at row r0: its row count g, the row pointers (rows past
// the batch's end repeat its first row: computed, never written) and pass 1,
// the widened max of each row.
// Each of a group's vectors reduced to one value (its lanes' max or sum):
// the lane type's transposing reduction where it has one (AVX-512: about 23
// shuffles and operations for the eight instead of eight of each; AVX2: 21,
// half_avx2.cpp), else one vector at a time.
template <class V, class = void>
struct HasGroupReduce : std::false_type {};
template <class V>
struct HasGroupReduce<V, decltype(void(V::group_hsum(std::declval<const Reg<V> (&)[kRowGroup]>(),
                                                     std::declval<double (&)[kRowGroup]>())))> : std::true_type {};
template <class V, bool Max>
inline void group_reduce(const Reg<V> (&v)[kRowGroup], double (&out)[kRowGroup]) {
  if constexpr (!HasGroupReduce<V>::value)
    for (size_t r = 0; r < kRowGroup; ++r) out[r] = Max ? V::hmax(v[r]) : V::hsum(v[r]);
  else if constexpr (Max)
    V::group_hmax(v, out);
  else
    V::group_hsum(v, out);
}

// The group's sums in one vector, row r in lane r (lane types whose
// transposing reduction leaves them there: AVX-512's and AVX2's, one
// vector for the group), and as float64 values in out. The per-row work that follows reads
// that vector, never one assembled from single-lane stores: a vector load
// spanning several smaller in-flight stores waits for them to reach the
// cache (bfloat16 n = 64: about 10% of softmax's samples sat there).
template <class V, class = void>
struct HasGroupLanes : std::false_type {};
template <class V>
struct HasGroupLanes<V, decltype(void(V::group_hsum_lanes(std::declval<const Reg<V> (&)[kRowGroup]>())))>
    : std::true_type {};
template <class V>
inline Reg<V> group_sums(const Reg<V> (&v)[kRowGroup], double (&out)[kRowGroup]) {
  static_assert(V::width >= kRowGroup, "the group in one vector");
  const Reg<V> s = V::group_hsum_lanes(v);
  alignas(64) typename V::scalar lanes[V::width];
  V::store(lanes, s);
  for (size_t r = 0; r < kRowGroup; ++r) out[r] = lanes[r];
  return s;
}

// The group's rows in the calling thread's buffer, `stride` elements apart:
// the row's whole vectors plus padding that puts consecutive rows 576 bytes
// past a multiple of 4 KiB. Rows a power-of-two size apart would put the
// eight rows' j-th vectors at the same offset within a 4 KiB page, where a
// load waits for every in-flight store to the same offset (the core compares
// the low 12 address bits first), and in the same L1 sets; 576 spreads them.
template <class V>
struct GroupRows {
  using S = typename V::scalar;
  static constexpr size_t kPadMax = 4096 / sizeof(S);
  S* row[kRowGroup];
  S* operator[](size_t r) const { return row[r]; }
  // The buffer (128 KiB of float32, 256 KiB of float64 plus the padding:
  // L2-resident for the longest rows; too big for some threads' stacks).
  // `which` (0 or 1): one of two buffers, for a kernel that works on two
  // groups at once (softmax_rows).
  explicit GroupRows(const RowVectors<V>& geo, int which = 0) {
    struct alignas(64) Space {
      S values[kRowGroup * (kHalfRowsMax + kPadMax)];
    };
    thread_local std::unique_ptr<Space> spaces[2];
    std::unique_ptr<Space>& space = spaces[which];
    if (!space) space.reset(new Space);
    const size_t bytes = (geo.tail + V::width) * sizeof(S);
    const size_t stride = (bytes + (576 + 4096 - bytes % 4096) % 4096) / sizeof(S);
    for (size_t r = 0; r < kRowGroup; ++r) row[r] = space->values + r * stride;
  }
};

// Pass 2 works from the buffer (or from rows pass 1 just brought into L1)
// while the next group's rows, and the lines pass 3 will write, may still
// be in L3 or memory: each of pass 2's vector steps asks for its share of
// both (`per_step` lines of each), so that pass 1 of the next group and
// pass 3 find them in cache instead of waiting for them one row at a time.
struct GroupPrefetch {
  const char* next = nullptr;  // the next group's input
  const char* out = nullptr;   // this group's output
  size_t next_lines = 0, out_lines = 0, per_step = 0;
  GroupPrefetch(const uint16_t* x, void* y, size_t rows, size_t n, size_t r0, size_t steps) {
    if (steps == 0) return;
    const size_t r1 = r0 + kRowGroup < rows ? r0 + kRowGroup : rows;
    const size_t r2 = r1 + kRowGroup < rows ? r1 + kRowGroup : rows;
    next = reinterpret_cast<const char*>(x + r1 * n);
    next_lines = ((r2 - r1) * n * sizeof(uint16_t) + 63) / 64;
    if (y) {
      out = static_cast<const char*>(y) + r0 * n * sizeof(uint16_t);
      out_lines = ((r1 - r0) * n * sizeof(uint16_t) + 63) / 64;
    }
    const size_t lines = next_lines > out_lines ? next_lines : out_lines;
    per_step = (lines + steps - 1) / steps;
  }
  void step(size_t j) const {
    for (size_t l = j * per_step; l < (j + 1) * per_step; ++l) {
      if (l < next_lines) SSM_PREFETCH(next + l * 64);
      if (l < out_lines) SSM_PREFETCH(out + l * 64);
    }
  }
};

// Store: pass 1 also widens the rows into the buffer (else a later pass
// reads them again from xr, the group's row pointers).
template <class V, class H, bool Store = true>
inline size_t start_group(const uint16_t* x, size_t rows, size_t n, size_t r0, const RowVectors<V>& geo,
                          const GroupRows<V>& buf, double (&mx)[kRowGroup], const H* (&xr)[kRowGroup]) {
  constexpr size_t W = V::width;
  const size_t g = rows - r0 < kRowGroup ? rows - r0 : kRowGroup;
  for (size_t r = 0; r < kRowGroup; ++r) xr[r] = reinterpret_cast<const H*>(x) + (r0 + (r < g ? r : 0)) * n;
  Reg<V> m[kRowGroup];
  for (size_t r = 0; r < kRowGroup; ++r) {
    m[r] = V::load(xr[r] + geo.last);
    if constexpr (Store) V::store(buf[r] + geo.tail, m[r]);
  }
  for (size_t j = 0; j + 1 < geo.count; ++j)
    for (size_t r = 0; r < kRowGroup; ++r) {
      const Reg<V> v = V::load(xr[r] + j * W);
      if constexpr (Store) V::store(buf[r] + j * W, v);
      m[r] = V::max(v, m[r]);  // NaN ignored
    }
  group_reduce<V, true>(m, mx);
  return g;
}

// acc + (m ? v : 0): one masked add where the lane type has it (AVX-512).
template <class V, class = void>
struct HasMaskedAdd : std::false_type {};
template <class V>
struct HasMaskedAdd<V, decltype(void(V::add_masked(std::declval<typename V::mask>(), std::declval<Reg<V>>(),
                                                   std::declval<Reg<V>>())))> : std::true_type {};
template <class V>
inline Reg<V> add_where(typename V::mask m, Reg<V> acc, Reg<V> v) {
  if constexpr (HasMaskedAdd<V>::value)
    return V::add_masked(m, acc, v);
  else
    return V::add(acc, V::select(m, v, V::set1(0.0)));
}

// Pass 3 of a row: out = op(buffer) rounded to the format, two vectors per
// store where the lane type packs them into one (AVX-512 bfloat16).
template <class V, class = void>
struct HasPairStore : std::false_type {};
template <class V>
struct HasPairStore<V, decltype(void(V::store2_finite(nullptr, std::declval<Reg<V>>(), std::declval<Reg<V>>())))>
    : std::true_type {};
// Normal: the caller knows that no result is below 2^-126 in magnitude
// (zeros aside), which spares the lane type's pair store (AVX512_BF16's
// vcvtne2ps2bf16, which flushes float32 subnormals) its test for them.
template <class V, class = void>
struct HasPairStoreNormal : std::false_type {};
template <class V>
struct HasPairStoreNormal<V, decltype(void(V::store2_normal(nullptr, std::declval<Reg<V>>(), std::declval<Reg<V>>())))>
    : std::true_type {};
// b: the buffer (its last vector at tail = geo.tail) or the row itself (an
// H pointer, tail = geo.last; out may be that row: the last vector, which
// overlaps the one before, is read before anything is written).
template <class V, bool Normal = false, class H, class P, class Op>
inline void write_row(H* out, const P* b, size_t tail, const RowVectors<V>& geo, Op op) {
  constexpr size_t W = V::width;
  const Reg<V> last = op(V::load(b + tail));
  // The row's full vectors (all but the last): where the lane type pairs
  // them, an odd one first alone, then pairs. The earlier form (pairs while
  // j + 2 < count, then a loop of singles) cost rows of two vectors (AVX2
  // bfloat16 n = 9-16) 8 instructions per row more than before the pair
  // stores. bfloat16 softmax n = 16, 16384 rows, 3 calls, callgrind, the
  // kernel's per-row and per-group code: 8.21 instructions per element at
  // 596a173, 8.93 with the pair stores, 8.38 now (per row 48, 56, 47: GCC
  // still puts the odd vector's store out of line; per group 477, 498,
  // 500, the rest of the gap: spills). Zen 3, one thread, medians of 7
  // interleaved processes, load 5-9: 0.97x the time of 193104d, still
  // 1.035x that of 596a173.
  const size_t full = geo.count - 1;
  size_t j = 0;
  if constexpr (HasPairStore<V>::value) {
    if (full % 2) {
      V::store_finite(out, op(V::load(b)));
      j = 1;
    }
    for (; j < full; j += 2) {
      if constexpr (Normal && HasPairStoreNormal<V>::value)
        V::store2_normal(out + j * W, op(V::load(b + j * W)), op(V::load(b + j * W + W)));
      else
        V::store2_finite(out + j * W, op(V::load(b + j * W)), op(V::load(b + j * W + W)));
    }
  } else {
    for (; j < full; ++j) V::store_finite(out + j * W, op(V::load(b + j * W)));
  }
  V::store_finite(out + geo.last, last);
}

// Groups whose two buffers fit in L1 beside the rows are software-pipelined
// over them: pass 1 of the next group runs between this group's 1 / S and
// its pass 3, so that the group's serial steps (the max's and the sum's
// reductions, the division, the per-row tests) overlap independent work
// instead of stalling the passes that wait on them (bfloat16, n = 64: about
// a third of the time went there). Longer rows keep one buffer (two push
// pass 3's terms out of L1: bfloat16 n = 512 ran 9% slower, n = 1000 20%)
// and run pass 1 of the next group after pass 3.
constexpr size_t kOverlapBytes = 8192;

template <class V>
inline bool group_overlaps(const RowVectors<V>& geo) {
  return kRowGroup * (geo.tail + V::width) * sizeof(typename V::scalar) <= kOverlapBytes;
}

template <class V, class H>
void softmax_rows(const uint16_t* x, uint16_t* y, size_t rows, size_t n, unsigned char* flag) {
  constexpr size_t W = V::width;
  const RowVectors<V> geo(n);
  const bool overlap = group_overlaps(geo);
  const GroupRows<V> first(geo, 0);
  const GroupRows<V> bufs[2] = {first, overlap ? GroupRows<V>(geo, 1) : first};
  double mxs[2][kRowGroup];
  size_t gs[2];
  const H* xr[kRowGroup];
  gs[0] = rows ? start_group<V, H>(x, rows, n, 0, geo, bufs[0], mxs[0], xr) : 0;
  for (size_t r0 = 0, cur = 0; r0 < rows; r0 += kRowGroup, cur ^= 1) {
    const GroupRows<V>& buf = bufs[cur];
    const double(&mx)[kRowGroup] = mxs[cur];
    const size_t g = gs[cur];
    // Where every row's |max| <= 64, t = x log2 e - max log2 e in one fma:
    // max log2 e is rounded by at most 2^-18.5, which moves a term by less
    // than 2^-18.9 relative (else x - max first, then the product).
    bool small = true;
    for (size_t r = 0; r < kRowGroup; ++r) small = small && std::fabs(mx[r]) <= 64.0;
    Reg<V> sum[kRowGroup];
    // fused: std::true_type or std::false_type (read through ::value: the
    // types' operator bool would be emitted outside the ISA namespace).
    auto pass2 = [&](auto fused) SSM_INLINE {
      constexpr bool kFused = decltype(fused)::value;
      Reg<V> vm[kRowGroup];
      const Reg<V> log2e = V::set1(kLog2e);
      for (size_t r = 0; r < kRowGroup; ++r) {
        const double m = lane_finite(mx[r]) ? mx[r] : 0.0;
        vm[r] = V::set1(kFused ? -m * kLog2e : m);
      }
      auto term = [&](Reg<V> x, size_t r) SSM_INLINE {
        return kFused ? exp2_scaled<V, H>(V::fmadd(x, log2e, vm[r])) : exp_scaled<V, H>(V::sub(x, vm[r]));
      };
      for (size_t r = 0; r < kRowGroup; ++r) {
        const Reg<V> t = term(V::load(buf[r] + geo.tail), r);
        V::store(buf[r] + geo.tail, t);
        sum[r] = V::mul(t, geo.keep);
      }
      const GroupPrefetch ahead(x, y, rows, n, r0, geo.count - 1);
      for (size_t j = 0; j + 1 < geo.count; ++j) {
        ahead.step(j);
        for (size_t r = 0; r < kRowGroup; ++r) {
          const Reg<V> t = term(V::load(buf[r] + j * W), r);
          V::store(buf[r] + j * W, t);
          sum[r] = V::add(sum[r], t);
        }
      }
    };
    if (small)
      pass2(std::true_type{});
    else
      pass2(std::false_type{});
    double sums[kRowGroup];
    // The group's 1 / S side by side: with a transposing reduction (AVX-512,
    // AVX2: their sums are float32 values) one vector division instead of a
    // float64 one per row (their throughput was a fair share of a short
    // row's time). Same bits: the correctly rounded float32 quotient 1 / S
    // equals the float64 one rounded to float32 (a float64 quotient on a
    // float32 midpoint would need S m = 1 for a 25-bit m: only S a power of
    // two, whose 1 / S is exact). Other lane types (the scalar set's) sum in
    // float64: per row.
    using S = typename V::scalar;
    constexpr size_t kPad = (kRowGroup + W - 1) / W * W;
    alignas(64) S inverses[kPad];
    if constexpr (HasGroupLanes<V>::value) {
      V::store(inverses, div_lanes(V::set1(1.0), group_sums<V>(sum, sums)));
    } else {
      group_reduce<V, false>(sum, sums);
      for (size_t r = 0; r < g; ++r) inverses[r] = static_cast<S>(1.0 / sums[r]);
    }
    auto next_group = [&] {
      if (r0 + kRowGroup < rows)
        gs[cur ^ 1] = start_group<V, H>(x, rows, n, r0 + kRowGroup, geo, bufs[cur ^ 1], mxs[cur ^ 1], xr);
    };
    if (overlap) next_group();
    for (size_t r = 0; r < g; ++r) {
      const double s = sums[r];
      // The max's own term is 2^kTermShift: a smaller or non-finite sum means a NaN.
      const bool ok = lane_finite(mx[r]) && s >= kTermScale && lane_finite(s);
      flag[r0 + r] = !ok;
      if (!ok) continue;
      const Reg<V> inv = V::set1(inverses[r]);
      H* out = reinterpret_cast<H*>(y) + (r0 + r) * n;
      write_row<V>(out, buf[r], geo.tail, geo, [inv](Reg<V> v) SSM_INLINE { return V::mul(v, inv); });
    }
    if (!overlap) next_group();
  }
}

// Rows of 2 to 16 entries, whole rows per vector (half_api.h softmax_tiny,
// log_softmax_tiny; lengths other than 2, 4, 8 and 16 in slots of the next
// power of two, padded with -inf: HasSpread below): t_i = exp(x_i - max) by the format's
// polynomial, as the longer rows' terms (2^kTermShift: the max's term is
// exactly 2^kTermShift); softmax y_i = t_i / S, S the row's sum of terms;
// log_softmax y_i = (x_i - max) - log1p(z), z = S - 1 summed without the
// max's own term: rows of two, the smaller term unscaled (exp(-|x_0 -
// x_1|)); longer rows, the terms of the entries below the max plus (the
// count of max entries - 1), exactly as exact_rest (below), so that log S
// keeps its relative accuracy for a dominant entry. Within half_rows.h's
// 2^-13 budget: one rounding of x - max, the polynomial, then sums of 16
// terms at most and one division, or log1p_lanes (|d log1p(z)| <= |dz| /
// (1 + z) <= (|dz| / z) log1p(z): the sum's relative error, relative to the
// result, whose magnitude is log S or more) and one difference. A row's
// lanes meet by butterflies (swap<D>: lanes i and i ^ D exchanged): no
// reductions, one exp per entry. A row with NaN, +inf or no finite entry
// gives NaN in its lanes: flagged, not written (y may be x). A row's bits do
// not depend on the batch. Lane types with the swaps only (the scalar set's
// single lane: no faster than the buffered path).
template <class V, class = void>
struct HasSwapPairs : std::false_type {};
template <class V>
struct HasSwapPairs<V, decltype(void(V::swap_pairs(std::declval<Reg<V>>())),
                                void(V::swap_quads(std::declval<Reg<V>>())))> : std::true_type {};

// Lanes i and i ^ D exchanged, D = 1, 2, 4 or 8 (lane types with swap_octs
// and swap_halves: vectors of 8 and 16 lanes).
template <size_t D, class V>
SSM_INLINE inline Reg<V> swap(Reg<V> v) {
  if constexpr (D == 1)
    return V::swap_pairs(v);
  else if constexpr (D == 2)
    return V::swap_quads(v);
  else if constexpr (D == 4)
    return V::swap_octs(v);
  else
    return V::swap_halves(v);
}

inline bool nan_bits(F16Bits h) { return (h.bits & 0x7fff) > 0x7c00; }
inline bool nan_bits(BF16Bits h) { return (h.bits & 0x7fff) > 0x7f80; }

// op over each row's N lanes, in every lane of the row.
template <class V, size_t N, size_t D = 1, class Op>
SSM_INLINE inline Reg<V> across_row(Reg<V> v, Op op) {
  if constexpr (D >= N)
    return v;
  else
    return across_row<V, N, 2 * D>(op(v, swap<D, V>(v)), op);
}

// ZeroSpare: the spare lanes of rows in slots (live false: -inf lanes)
// take the term 0 (lane types whose exp is clamped, AVX2's: their term
// 2^-125 then underflows in t / S or t 2^-kTermShift, a microcode assist
// per vector on Zen 3; a term absorbed by every sum, so the same sums).
template <class V, class H, size_t N, bool Log, bool ZeroSpare = false>
SSM_INLINE inline Reg<V> tiny_row_lanes(Reg<V> v, typename V::mask live = {}) {
  auto add = [](Reg<V> a, Reg<V> b) SSM_INLINE { return V::add(a, b); };
  const Reg<V> d = V::sub(v, across_row<V, N>(v, [](Reg<V> a, Reg<V> b) SSM_INLINE { return V::max(a, b); }));
  Reg<V> t = exp_scaled<V, H>(d);
  if constexpr (ZeroSpare) t = V::select(live, t, V::set1(0.0));
  if constexpr (!Log) {
    return div_lanes(t, across_row<V, N>(t, add));
  } else if constexpr (N == 2) {
    return V::sub(d, log1p_lanes<V, 1>(V::mul(V::min(t, V::swap_pairs(t)), V::set1(1.0 / kTermScale))));
  } else {
    // 1 + z <= N: log1p_lanes' halvings by 2^1 and 2^2 bring up to 8
    // within [2^-1/2, 2^1/2), and 2^4 up to 16.
    const auto below = V::nonzero(d);  // NaN too: the row is flagged anyway
    const Reg<V> rest = V::select(below, V::mul(t, V::set1(1.0 / kTermScale)), V::set1(0.0));
    const Reg<V> ties = V::select(below, V::set1(0.0), V::set1(1.0));
    const Reg<V> z = V::add(across_row<V, N>(rest, add), V::sub(across_row<V, N>(ties, add), V::set1(1.0)));
    return V::sub(d, log1p_lanes<V, (N <= 8 ? 2 : 4)>(z));
  }
}

// The smallest power of two at or above k.
constexpr size_t pow2_at_least(size_t k) {
  size_t p = 1;
  while (p < k) p *= 2;
  return p;
}

// Lane types that read rows of K entries into slots of a power of two N > K
// lanes, the spare lanes -inf, and write them back (load_spread,
// store_spread: AVX-512's vpermw, AVX2's byte shuffles): rows of 3, 5-7 and 9-15 (AVX2: 3, 5-7) take the
// kernels of rows of N, the -inf lanes adding 0 to every sum (as a row's
// own -inf entries: the same bits as the row padded with -inf).
template <class V, class = void>
struct HasSpread : std::false_type {};
template <class V>
struct HasSpread<V, decltype(void(V::template load_spread<3, 4>(nullptr, size_t(0))))> : std::true_type {};

// Rows of K entries, whole rows per vector in slots of N = pow2_at_least(K)
// lanes: E = (W / N) K values per vector.
template <class V, class H, size_t K, bool Log>
void tiny_rows(const uint16_t* bits, uint16_t* out, size_t rows, unsigned char* flag) {
  constexpr size_t W = V::width;
  constexpr size_t N = pow2_at_least(K);
  static_assert(W % N == 0, "whole rows per vector");
  constexpr size_t E = W / N * K;
  const H* x = reinterpret_cast<const H*>(bits);
  H* y = reinterpret_cast<H*>(out);
  std::memset(flag, 0, rows);
  const size_t total = K * rows;
  // The lanes rows fill (for ZeroSpare in tiny_row_lanes: lane types
  // whose -inf term is not exactly 0: neither the floor exp nor
  // exp2_scaled's pow2_biased, whose clamp at -190 gives 0).
  constexpr bool kZeroSpare = K != N && !HasFloorExp2<V>::value && !HasPow2Biased<V>::value;
  typename V::mask live{};
  if constexpr (kZeroSpare) {
    alignas(64) typename V::scalar used[W];
    for (size_t l = 0; l < W; ++l) used[l] = l % N < K ? 1 : 0;
    live = V::nonzero(V::load(used));
  }
  auto lanes = [live](Reg<V> v) SSM_INLINE { return tiny_row_lanes<V, H, N, Log, kZeroSpare>(v, live); };
  // count values (whole rows) at i into their slots; back from them.
  auto load = [x](size_t i, size_t count) SSM_INLINE {
    if constexpr (K != N)
      return V::template load_spread<K, N>(x + i, count);
    else
      return count == W ? V::load(x + i) : V::load_tail(x + i, count, 0.0);
  };
  auto store = [y](size_t i, Reg<V> v, size_t count) SSM_INLINE {
    if constexpr (K != N)
      V::template store_spread<K, N>(y + i, v, count);
    else if (count == W)
      V::store_finite(y + i, v);
    else
      V::store_tail(y + i, v, count);
  };
  // The rows of a vector holding a NaN: the others one at a time.
  auto some = [&](size_t i, size_t count, Reg<V> v) {
    H rounded[W];
    V::store(rounded, v);
    for (size_t l = 0; l * K < count; ++l) {
      bool special = false;
      for (size_t c = 0; c < K; ++c) special = special || nan_bits(rounded[l * N + c]);
      if (special)
        flag[i / K + l] = 1;
      else
        std::memcpy(y + i + l * K, rounded + l * N, K * sizeof(H));
    }
  };
  size_t i = 0;
  for (; i + 2 * E <= total; i += 2 * E) {
    const Reg<V> a = lanes(load(i, E));
    const Reg<V> b = lanes(load(i + E, E));
    if (__builtin_expect(V::any(V::mask_or(V::unord(a), V::unord(b))), 0)) {
      some(i, E, a);
      some(i + E, E, b);
      continue;
    }
    store(i, a, E);
    store(i + E, b, E);
  }
  for (; i < total; i += E) {
    const size_t count = total - i < E ? total - i : E;
    const Reg<V> a = lanes(load(i, count));
    if (V::any(V::unord(a)))
      some(i, count, a);
    else
      store(i, a, count);
  }
}

// Rows of M whole vectors (n = M W, M = 2 or 4: AVX2's rows of 16 and 32;
// lane types that set wide_softmax_max / wide_log_softmax_max = M W or
// more): tiny_row_lanes' work on
// a row held in M registers, no buffer. The max and the sum over the M
// vectors lane by lane, then across the lanes by butterflies (every lane
// gets the same bits: each step adds or compares a pair both ways round);
// softmax y = t (1 / S), one division per row (the short rows' t inv);
// log_softmax y = d - log1p(z), z as tiny_row_lanes' (the terms below the
// max scaled back, plus the count of max entries - 1; 1 + z <= 32: the
// halvings up to 2^4). Two rows per step (their dependency chains side by
// side), the batch's odd row alone. A row with NaN, +inf or no finite
// entry has a NaN in its results: flagged, not written (y may be x).
// Within half_rows.h's budget as the short rows (n / W + log2 W float32
// roundings in a sum, 1 / S and the product). Against the buffered short
// rows (bfloat16, 4 Mi elements, one thread, Zen 3): see half_avx2.cpp.
template <class V, class = void>
struct WideTinyMax {
  static constexpr size_t softmax = 0, log_softmax = 0;
};
template <class V>
struct WideTinyMax<V, decltype(void(V::wide_softmax_max + V::wide_log_softmax_max))> {
  static constexpr size_t softmax = V::wide_softmax_max, log_softmax = V::wide_log_softmax_max;
};

template <class V, class H, size_t M, bool Log>
void wide_tiny_rows(const uint16_t* bits, uint16_t* out, size_t rows, unsigned char* flag) {
  constexpr size_t W = V::width;
  constexpr size_t n = M * W;
  const H* x = reinterpret_cast<const H*>(bits);
  H* y = reinterpret_cast<H*>(out);
  std::memset(flag, 0, rows);
  auto max = [](Reg<V> a, Reg<V> b) SSM_INLINE { return V::max(a, b); };
  auto add = [](Reg<V> a, Reg<V> b) SSM_INLINE { return V::add(a, b); };
  // R rows from row r, each written unless it has a NaN (then flagged).
  auto rows_at = [&](size_t r, auto count) SSM_INLINE {
    constexpr size_t R = decltype(count)::value;
    Reg<V> v[R][M], mx[R];
    for (size_t q = 0; q < R; ++q) {
      for (size_t i = 0; i < M; ++i) v[q][i] = V::load(x + (r + q) * n + i * W);
      mx[q] = v[q][0];
      for (size_t i = 1; i < M; ++i) mx[q] = V::max(v[q][i], mx[q]);
    }
    for (size_t q = 0; q < R; ++q) mx[q] = across_row<V, W>(mx[q], max);
    Reg<V> acc[R], ties[R];
    for (size_t q = 0; q < R; ++q) {
      acc[q] = V::set1(0.0);
      ties[q] = V::set1(0.0);
      for (size_t i = 0; i < M; ++i) {
        const Reg<V> d = V::sub(v[q][i], mx[q]);
        const Reg<V> t = exp_scaled<V, H>(d);
        if constexpr (Log) {
          const auto below = V::nonzero(d);  // NaN too: the row is flagged anyway
          acc[q] = V::add(acc[q], V::select(below, V::mul(t, V::set1(1.0 / kTermScale)), V::set1(0.0)));
          ties[q] = V::add(ties[q], V::select(below, V::set1(0.0), V::set1(1.0)));
          v[q][i] = d;
        } else {
          acc[q] = V::add(acc[q], t);
          v[q][i] = t;
        }
      }
    }
    for (size_t q = 0; q < R; ++q) {
      const Reg<V> s = across_row<V, W>(acc[q], add);
      Reg<V> any = V::set1(0.0);
      if constexpr (Log) {
        const Reg<V> z = V::add(s, V::sub(across_row<V, W>(ties[q], add), V::set1(1.0)));
        const Reg<V> l = log1p_lanes<V, 4>(z);
        for (size_t i = 0; i < M; ++i) v[q][i] = V::sub(v[q][i], l);
      } else {
        const Reg<V> inv = div_lanes(V::set1(1.0), s);
        for (size_t i = 0; i < M; ++i) v[q][i] = V::mul(v[q][i], inv);
      }
      for (size_t i = 0; i < M; ++i) any = V::add(any, v[q][i]);  // NaN reaches the sum (results <= 0 or in [0, 1])
      const bool bad = V::any(V::unord(any));
      if (bad) flag[r + q] = 1;
      if (!bad) {
        H* out = y + (r + q) * n;
        if constexpr (HasPairStore<V>::value)
          for (size_t i = 0; i < M; i += 2) V::store2_finite(out + i * W, v[q][i], v[q][i + 1]);
        else
          for (size_t i = 0; i < M; ++i) V::store_finite(out + i * W, v[q][i]);
      }
    }
  };
  size_t r = 0;
  for (; r + 2 <= rows; r += 2) rows_at(r, std::integral_constant<size_t, 2>{});
  if (r < rows) rows_at(r, std::integral_constant<size_t, 1>{});
}

// S - 1 of a row whose differences d = x - max are b's values minus
// `shift` (0: b holds d; the max: it holds x), b's last vector at `tail`:
// the terms of the entries below the max (NaN included: nonzero is
// unordered) plus (their count - 1) for the max's own entries, which are
// exactly 1 each.
template <class V, class H, class P>
double exact_rest(const P* b, size_t tail, const RowVectors<V>& geo, size_t n, Reg<V> shift) {
  constexpr size_t W = V::width;
  const Reg<V> d_last = V::sub(V::load(b + tail), shift);
  const auto below_last = V::nonzero(d_last);
  Reg<V> rest = V::mul(V::select(below_last, exp_scaled<V, H>(d_last), V::set1(0.0)), geo.keep);
  Reg<V> below_count = V::select(below_last, geo.keep, V::set1(0.0));
  for (size_t j = 0; j + 1 < geo.count; ++j) {
    const Reg<V> d = V::sub(V::load(b + j * W), shift);
    const auto below = V::nonzero(d);
    rest = add_where<V>(below, rest, exp_scaled<V, H>(d));
    below_count = add_where<V>(below, below_count, V::set1(1.0));
  }
  return (double(n) - V::hsum(below_count) - 1.0) + V::hsum(rest) / kTermScale;
}

// exact_rest of a group's row: d in the buffer (StoreD), or x - shift read from x.
template <class V, class E, bool StoreD, class H>
double rest_of(const typename V::scalar* b, const H* x, const RowVectors<V>& geo, size_t n, Reg<V> shift) {
  if constexpr (StoreD)
    return exact_rest<V, E>(b, geo.tail, geo, n, V::set1(0.0));
  else
    return exact_rest<V, E>(x, geo.last, geo, n, shift);
}

// Passes 1 and 2 of log_softmax and logsumexp for the group at row r0:
// mx[r] the row's max, log_s[r] = log S, S the sum of exp(d), d = x - mx
// (terms by E's exp polynomial); ok[r] false for a row past the batch or a
// special row (NaN, +-inf, no finite entry). StoreD (log_softmax): pass 1
// widens x into the buffer and pass 2 stores d over it; else (logsumexp)
// pass 2 reads x again, in cache, and nothing is stored. Returns the
// group's row count.
// log_sum_started: the same after pass 1 (start_group: g rows, their max
// mx and row pointers xr).
template <class V, class H, class E, bool StoreD>
void log_sum_started(const uint16_t* x, void* y, size_t rows, size_t n, size_t r0, size_t g,
                     const RowVectors<V>& geo, const GroupRows<V>& buf, const double (&mx)[kRowGroup],
                     const H* const (&xr)[kRowGroup], double (&log_s)[kRowGroup], bool (&ok)[kRowGroup]) {
  constexpr size_t W = V::width;
  using S = typename V::scalar;
  // Per-row values side by side, whole vectors of them.
  constexpr size_t kPad = (kRowGroup + W - 1) / W * W;
  Reg<V> vm[kRowGroup], sum[kRowGroup];
  for (size_t r = 0; r < kRowGroup; ++r) {
    vm[r] = V::set1(lane_finite(mx[r]) ? mx[r] : 0.0);
    const Reg<V> d = V::sub(StoreD ? V::load(buf[r] + geo.tail) : V::load(xr[r] + geo.last), vm[r]);
    if constexpr (StoreD) V::store(buf[r] + geo.tail, d);
    sum[r] = V::mul(exp_scaled<V, E>(d), geo.keep);
  }
  const GroupPrefetch ahead(x, y, rows, n, r0, geo.count - 1);
  for (size_t j = 0; j + 1 < geo.count; ++j) {
    ahead.step(j);
    for (size_t r = 0; r < kRowGroup; ++r) {
      const Reg<V> d = V::sub(StoreD ? V::load(buf[r] + j * W) : V::load(xr[r] + j * W), vm[r]);
      if constexpr (StoreD) V::store(buf[r] + j * W, d);
      sum[r] = V::add(sum[r], exp_scaled<V, E>(d));
    }
  }
  alignas(64) S z[kPad] = {};
  double sums[kRowGroup];
  // With the sums in one vector (group_sums), S - 1 for every row in it: t
  // - 1 in the lane type, t = S 2^-kTermShift exact, is the float64 t - 1
  // (exact) rounded, the same bits as below; rows not ok get garbage,
  // unused. Only rows that need exact_rest are patched through memory.
  constexpr bool kLanes = HasGroupLanes<V>::value;
  Reg<V> zv = V::set1(0.0);
  alignas(64) S logs[kPad];
  if constexpr (kLanes) {
    const Reg<V> t = V::mul(group_sums<V>(sum, sums), V::set1(1.0 / kTermScale));
    zv = V::sub(t, V::set1(1.0));
    // The usual group: every row's S finite and 3/2 or more (so its max is
    // finite: an infinite or NaN max, or no finite entry, gives S infinite,
    // NaN or 0) takes z from zv: the per-row tests below, decided by two
    // compares on the vector (rows past the batch repeat its first row).
    // The kernel alone, Zen 5, one thread, bfloat16 log_softmax, rows of 32
    // / 64 / 128: 0.247 -> 0.222, 0.177 -> 0.163, 0.138 -> 0.135 ns per
    // element.
    if (!V::any(V::mask_or(V::not_le(V::set1(1.5), t), V::notfinite(t)))) {
      V::store(logs, log1p_fast<V>(zv));
      for (size_t r = 0; r < kRowGroup; ++r) {
        ok[r] = r < g;
        log_s[r] = logs[r];
      }
      return;
    }
    V::store(z, zv);
  } else {
    group_reduce<V, false>(sum, sums);
  }
  bool patched = false;
  for (size_t r = 0; r < kRowGroup; ++r) {
    // NaN reaches the sum; the max's own term is 2^kTermShift.
    const double total = sums[r] / kTermScale;
    ok[r] = r < g && lane_finite(mx[r]) && lane_finite(total) && total >= 1.0;
    if (!ok[r]) continue;
    // S - 1 from S keeps its relative accuracy while S - 1 >= 1/2: the
    // float32 S is within k 2^-24 S of the sum of its terms, k = n / W +
    // log2 W <= 515 (each lane sums n / W terms, then the lanes' tree),
    // so S - 1 is within 3 k 2^-24 < 2^-13.4 relative. Below that (one
    // entry dominates), the terms apart from the max's, exactly.
    if (total - 1.0 >= 0.5) {
      if constexpr (!kLanes) z[r] = static_cast<S>(total - 1.0);
    } else {
      z[r] = static_cast<S>(rest_of<V, E, StoreD>(buf[r], xr[r], geo, n, vm[r]));
      patched = true;
    }
  }
  if constexpr (kLanes)
    V::store(logs, log1p_fast<V>(patched ? V::load(z) : zv));
  else
    for (size_t h = 0; h < kPad; h += W) V::store(logs + h, log1p_fast<V>(V::load(z + h)));
  for (size_t r = 0; r < kRowGroup; ++r) log_s[r] = logs[r];
}

template <class V, class H, class E, bool StoreD>
size_t log_sum_group(const uint16_t* x, void* y, size_t rows, size_t n, size_t r0, const RowVectors<V>& geo,
                     const GroupRows<V>& buf, double (&mx)[kRowGroup], double (&log_s)[kRowGroup],
                     bool (&ok)[kRowGroup]) {
  const H* xr[kRowGroup];
  const size_t g = start_group<V, H, StoreD>(x, rows, n, r0, geo, buf, mx, xr);
  log_sum_started<V, H, E, StoreD>(x, y, rows, n, r0, g, geo, buf, mx, xr, log_s, ok);
  return g;
}

// Groups whose buffer fits kOverlapBytes: pipelined over two buffers as
// softmax_rows, pass 1 of the next group between this group's log S and its
// write. Longer rows (FromX) keep no buffer: passes 2 and 3 read the group's
// half rows again from cache (2 bytes per element, where the buffer cost 4
// stored by pass 1, 4 loaded and stored by pass 2 and 4 loaded by pass 3,
// and pushed pass 3's output lines out of L1) and compute d = x - max again:
// the same float32 d, the same bits. They are pipelined too while the
// group's x and y rows and the next group's x fit 32 KiB (n <= 682: 5-8%
// faster at n = 300-680 than after pass 3, avx512 and avx2).
template <class V, class H, bool FromX>
void log_softmax_rows_from(const uint16_t* x, uint16_t* y, size_t rows, size_t n, unsigned char* flag) {
  const RowVectors<V> geo(n);
  // FromX: the group's x and y rows and the next group's x in L1.
  const bool overlap = FromX ? 3 * kRowGroup * n * sizeof(uint16_t) <= 4 * kOverlapBytes : group_overlaps(geo);
  const GroupRows<V> first(geo, 0);
  const GroupRows<V> bufs[2] = {first, overlap && !FromX ? GroupRows<V>(geo, 1) : first};
  double mxs[2][kRowGroup];
  size_t gs[2];
  const H* xrs[2][kRowGroup];
  gs[0] = rows ? start_group<V, H, !FromX>(x, rows, n, 0, geo, bufs[0], mxs[0], xrs[0]) : 0;
  for (size_t r0 = 0, cur = 0; r0 < rows; r0 += kRowGroup, cur ^= 1) {
    const GroupRows<V>& buf = bufs[cur];
    const size_t g = gs[cur];
    double log_s[kRowGroup];
    bool ok[kRowGroup];
    log_sum_started<V, H, BF16Bits, !FromX>(x, y, rows, n, r0, g, geo, buf, mxs[cur], xrs[cur], log_s, ok);
    auto next_group = [&] {
      if (r0 + kRowGroup < rows)
        gs[cur ^ 1] =
            start_group<V, H, !FromX>(x, rows, n, r0 + kRowGroup, geo, bufs[cur ^ 1], mxs[cur ^ 1], xrs[cur ^ 1]);
    };
    if (overlap) next_group();
    for (size_t r = 0; r < g; ++r) {
      flag[r0 + r] = !ok[r];
      if (!ok[r]) continue;
      // d - log S: both never positive, so no cancellation, and every
      // result is at least log S in magnitude.
      const Reg<V> l = V::set1(log_s[r]);
      const Reg<V> vm = V::set1(mxs[cur][r]);
      H* out = reinterpret_cast<H*>(y) + (r0 + r) * n;
      auto shift = [l](Reg<V> v) SSM_INLINE { return V::sub(v, l); };
      auto shift_x = [l, vm](Reg<V> v) SSM_INLINE { return V::sub(V::sub(v, vm), l); };
      // 0x1p-126f: float32's smallest normal, as a literal (numeric_limits'
      // min() is a function, which a Debug build emits, weak, in this object).
      const bool normal = static_cast<typename V::scalar>(log_s[r]) >= 0x1p-126f;
      if constexpr (FromX) {
        if (normal)
          write_row<V, true>(out, xrs[cur][r], geo.last, geo, shift_x);
        else
          write_row<V>(out, xrs[cur][r], geo.last, geo, shift_x);
      } else {
        if (normal)
          write_row<V, true>(out, buf[r], geo.tail, geo, shift);
        else
          write_row<V>(out, buf[r], geo.tail, geo, shift);
      }
    }
    if (!overlap) next_group();
  }
}

template <class V, class H>
void log_softmax_rows(const uint16_t* x, uint16_t* y, size_t rows, size_t n, unsigned char* flag) {
  if (group_overlaps<V>(RowVectors<V>(n)))
    log_softmax_rows_from<V, H, false>(x, y, rows, n, flag);
  else
    log_softmax_rows_from<V, H, true>(x, y, rows, n, flag);
}

// One ulp of format H at |v| (its subnormal spacing as the floor): 2^-p
// times the power of two at or below |v| (v's exponent bits alone), with no
// libm call (frexp and ldexp cost short rows more than their sums).
template <class H>
inline double format_ulp(double v) {
  constexpr bool kF16 = std::is_same<H, F16Bits>::value;
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits &= 0x7ff0000000000000u;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const double ulp = scale * (kF16 ? 0x1p-10 : 0x1p-7);
  return ulp > (kF16 ? 0x1p-24 : 0x1p-133) ? ulp : (kF16 ? 0x1p-24 : 0x1p-133);
}

// logsumexp = max + log S, with log_softmax's passes 1 and 2 and float16's
// exp polynomial for both formats (2.92e-6 relative; bfloat16's 1e-4 would
// cost most rows with |lse| below 2 their certificate). out[r] in float32
// for the caller to round to the format: kept only where its error bound is
// a quarter ulp of the format (then, with float32's rounding and the
// caller's, within 1 ulp), else the row is flagged for the exact path. The
// bound on log S, relative to S (|d log S| = |dS| / S):
//  - the polynomial: 4e-6 (its measured 2.92e-6 plus Horner's roundings);
//  - t = (x - max) log2 e: within 2^-22 |t| (three float32 roundings), so the
//    terms are within ln 2 * 2^-22 * sum 2^t |t| <= ln 2 * 2^-22 log2(n) S
//    (sum p log2(1/p) <= log2 n for p = 2^t / S, and S >= 1);
//  - the sum: (n / W + 2 + log2 W) roundings of positive terms, and S - 1
//    rounded once to the lane type;
// plus log1p_fast's 2.1 ulp of log S (5 kEps relative) and the float64
// addition.
template <class V, class H>
void logsumexp_rows(const uint16_t* x, float* out, size_t rows, size_t n, unsigned char* flag) {
  constexpr size_t W = V::width;
  constexpr double kEps = std::numeric_limits<typename V::scalar>::epsilon() / 2;
  const RowVectors<V> geo(n);
  const GroupRows<V> buf(geo);
  const double rel = 4e-6 + 0.6931471805599453 * 0x1p-22 * std::log2(double(n)) +
                     (double(n / W) + 3.0 + std::log2(double(W))) * kEps;
  for (size_t r0 = 0; r0 < rows; r0 += kRowGroup) {
    double mx[kRowGroup], log_s[kRowGroup];
    bool ok[kRowGroup];
    const size_t g = log_sum_group<V, H, F16Bits, false>(x, nullptr, rows, n, r0, geo, buf, mx, log_s, ok);
    for (size_t r = 0; r < g; ++r) {
      const double lse = mx[r] + log_s[r];
      const double err = 1.01 * rel + 5 * kEps * log_s[r] + 0x1p-52 * std::fabs(lse);
      const bool certain = ok[r] && err <= 0.25 * format_ulp<H>(lse);
      flag[r0 + r] = !certain;
      if (certain) out[r0 + r] = static_cast<float>(lse);
    }
  }
}

// Pass 1 of log_softmax on a block of a long row (half_api.h max_sum_block),
// in one read: the block's max m and the sum of 2^t, t = fma(x, L, -c), by
// E's polynomial: bfloat16's for both formats in log_softmax (Exp2Poly: 3-4
// fewer vector operations per vector than the float32 fast sum's exp,
// which is four times as accurate as a half result can use); logsumexp's
// (lse_block) the format's own (float16's degree 4: its certificate, a
// quarter ulp of lse, needs 2.92e-6 where |lse| is below ~0.4; bfloat16's
// degree 3 certifies |lse| down to ~0.05). L = log2 e in the lane type
// and c an integer reference: round(L top) for the largest value `top`
// seen when it was set, raised (the partial sums scaled by 2^(c_old -
// c_new), exact) only where a step's values pass top + kRefLag. So each
// term is exp(x - top) with top at most kRefLag below m, one fma where
// the max-relative form took a subtraction and a product, and the block is
// read once where the max pass read it twice. Zen 5, one thread, 1 Mi
// elements in rows of 32000 / 151936 (L2), least thread CPU time of 31
// calls of the pass, avx512: bfloat16 0.086 -> 0.066 ns per element,
// float16 0.093 -> 0.074; callgrind (avx2) per element, rows of 32000:
// bfloat16 2.64 -> 2.55, float16 2.35 -> 2.43 (vcvtph2ps reads from memory
// in one instruction, so the second read cost float16 little; the time
// still fell, log_softmax 0.86-0.88 of it).
// The max's term is then replaced by the exact 2^(m L - c) (m L exact in
// float64 for float32 lanes), so that, relative to m, it is exactly 1 as
// in the max-relative form and the polynomial's error weighs only on the
// other terms (err_rest): m_out = 1 + (sum - p(m)) 2^(c - m L), p(m) the
// max's term by the same operations on the same input (the same bits:
// fp-contract is off). Error of m_out as sum exp(x - m), u the lane type's
// unit roundoff:
//  - t: fma rounds once, |dt| <= u |t| with t = t' + C, t' = (x - m) L and
//    C = m L - c in [0, kRefLag L + 1/2]; L's own rounding moves t' by
//    u |t'|: 2u |t'| + u C in all (an unfused fma, the scalar set's double
//    lanes, adds u |x L| <= u 2^15 L; |m| <= kRefMax). The 2u |t'| part
//    moves the terms by at most 2 ln2 u log2(n) S (sum 2^t' |t'| <= S
//    log2 n, as in logsumexp_rows, S >= 1): err (taken as 3 ln2 u
//    log2(n + 1), the max-relative form's figure); the u C part, ln2 u C
//    relative on each term but the max's: err_rest;
//  - the sum: each lane's C chains add n / (W C) + 1 terms, then the
//    chains' and the lanes' trees: k = n / (W C) + 2 + log2 C + log2 W
//    roundings of positive terms, gamma_k; the rescales are exact (a term
//    that a rescale takes below float32's normal range is below 2^-100 of
//    the max's, and its loss below n 2^-100 S);
//  - the polynomial: Exp2Poly<E>::error relative (1.02e-4 or 2.92e-6,
//    either variant), plus its Horner and scale roundings (4u): err_rest;
//  - float64: m L - c, its exp2 and the correction, 8 2^-53 relative.
// |t| <= C + 1 keeps the scaled terms below 2^100 (exp2_scaled holds for
// t > 0 too: AVX-512's scalef, AVX2's biased exponent up to 226, the
// scalar set's scale), and n of them below float32's overflow. NaN
// entries poison the sum (m NaN; the max may be NaN or miss entries);
// +inf, or a max beyond kRefMax in magnitude, ends the block early with m
// NaN and max that value (+inf: the caller's special-row test; else the
// caller's other passes, which take any finite row). Entries of -inf, and
// the masked tail's lanes, add 0 (exp2_scaled's clamp, or scalef's 0).
template <class V, class H, class E = BF16Bits>
ExpSum max_sum_block(const uint16_t* bits, size_t n) {
  using S = typename V::scalar;
  constexpr size_t W = V::width;
  constexpr size_t U = 4;  // vectors per step (add_half_rows' tile: U W)
  static_assert(U == 4, "the step's max is a tree of four");
  // Sum chains: two on 8-lane sets (AVX2's 16 registers; callgrind per
  // element, float16 / bfloat16 rows of 32000: 2.43 / 2.55 against four
  // chains' 2.40 / 2.59, the same time), four on wider ones.
  constexpr size_t C = W >= 16 ? 4 : (W >= 8 ? 2 : 4);
  constexpr double kU = std::numeric_limits<S>::epsilon() / 2;
  constexpr double kRefLag = 24.0, kRefMax = 32768.0;
  // L as the lanes hold it (t's fma multiplies by exactly this).
  constexpr double kL = static_cast<double>(static_cast<S>(kLog2e));
  const H* x = reinterpret_cast<const H*>(bits);
  const double inf = std::numeric_limits<double>::infinity();
  const Reg<V> vl = V::set1(kL);
  Reg<V> top = V::set1(-inf), sum[C];
  for (size_t u = 0; u < C; ++u) sum[u] = V::set1(0.0);
  // No reference before the first finite value: until then every term is
  // 0 (entries of -inf), and the first raise rescales nothing.
  double c = 0.0;
  bool have_ref = false;
  Reg<V> neg_c = V::set1(0.0), limit = V::set1(-inf);
  ExpSum out;
  out.e = 0.0;
  auto term = [&](Reg<V> v) SSM_INLINE { return exp2_scaled<V, E>(V::fmadd(v, vl, neg_c)); };
  // Raised to the running max `m`; false: +inf, NaN or beyond kRefMax
  // (out set for the caller).
  auto raise = [&](Reg<V> m) {
    const double t = V::hmax(m);
    if (!(std::fabs(t) <= kRefMax)) {
      out.max = t;
      out.m = kNaN;
      out.err = out.err_rest = 0.0;
      return false;
    }
    const double c_new = std::nearbyint(t * kL);
    if (have_ref) {
      const Reg<V> f = V::set1(std::ldexp(1.0, static_cast<int>(c - c_new)));
      for (size_t u = 0; u < C; ++u) sum[u] = V::mul(sum[u], f);
    }
    c = c_new;
    have_ref = true;
    neg_c = V::set1(-c);
    limit = V::set1(t + kRefLag);
    return true;
  };
  // Prefetched prefetch_distance() ahead, into the row's next block (the
  // caller's blocks of 4096 are each too short for the distance to count
  // them in): log_softmax of float16 rows of 32768 and bfloat16 rows of
  // 151936, 16 Mi elements, one thread, Zen 5, minima of interleaved
  // processes: 0.80 and 0.88 the time without (AVX-512), 0.89 and 0.85
  // (AVX2); in cache the same time. A whole line or more per step (the
  // scalar set's steps of 8 bytes take none).
  constexpr size_t kStepBytes = U * W * sizeof(H);
  const size_t ahead = prefetch_distance(size_t(16) << 10) / sizeof(H);
  size_t i = 0;
  for (; i + U * W <= n; i += U * W) {
    if constexpr (kStepBytes >= 64)
      if (ahead) prefetch_block<kStepBytes>(x + i + ahead);
    Reg<V> v[U];
    for (size_t u = 0; u < U; ++u) v[u] = V::load(x + i + u * W);
    top = V::max(V::max(V::max(v[0], v[1]), V::max(v[2], v[3])), top);
    if (__builtin_expect(V::any(V::gt(top, limit)), 0))
      if (!raise(top)) return out;
    for (size_t u = 0; u < U; ++u) sum[u % C] = V::add(sum[u % C], term(v[u]));
  }
  for (; i < n; i += W) {
    const Reg<V> v = V::load_tail(x + i, n - i < W ? n - i : W, -inf);
    top = V::max(v, top);
    if (V::any(V::gt(top, limit)))
      if (!raise(top)) return out;
    sum[0] = V::add(sum[0], term(v));
  }
  for (size_t u = 1; u < C; ++u) sum[0] = V::add(sum[0], sum[u]);
  const double total = V::hsum(sum[0]);
  out.max = V::hmax(top);
  const double k = double(n / (W * C)) + 2.0 + std::log2(double(C)) + std::log2(double(W));
  out.err = k * kU / (1.0 - k * kU) + 3.0 * 0.6931471805599453 * kU * std::log2(double(n) + 1.0) + 8 * 0x1p-53;
  // float64 lanes: m L rounded, 2^-53 |m L| in the max's exponent.
  if constexpr (!std::is_same<S, float>::value) out.err += 0.6931471805599453 * 0x1p-53 * kRefMax * kL;
  out.err_rest = Exp2Poly<E>::error + 4.0 * kU;
  if (!have_ref || !lane_finite(out.max)) {
    out.m = total / kTermScale;  // 0 (every entry -inf) or NaN
    return out;
  }
  const double shift = out.max * kL - c;  // C: exact for float32 lanes
  const double p_max = V::hmax(term(V::set1(out.max)));
  out.m = 1.0 + (total - p_max) * std::exp2(-shift) / kTermScale;
  const double unfused = FusedFma<V>::value ? 0.0 : kRefMax * kL;
  out.err_rest += 0.6931471805599453 * kU * (shift + unfused);
  return out;
}

// log_softmax's pass 2 on a long row (half_api.h write_shift): y = (x -
// hi) - lo, hi the row's max, four vectors a step and x not prefetched
// (pass 1 has just read the row), for lane types that round two vectors
// into one store without a test for subnormal lanes (AVX512_BF16's
// vcvtne2ps2bf16: store2_normal) and for AVX-512's float16 lanes (no pair
// store). Where lo (log S as the lanes hold it) is float32's smallest
// normal or more, every result is lo or more in magnitude (x - hi <= 0), so
// no lane is subnormal: one conversion and one store per 32 values, where
// the one-vector store (write_passes.h write_shift) tests each vector for
// subnormal lanes before its conversion. The same bits as write_passes.h's
// pass. Zen 5, avx512, one thread, rows of 32000 (1 Mi elements, L2), least
// thread CPU time of 31 calls: bfloat16 0.045 -> 0.032 ns per element,
// float16 (write_passes.h's loop prefetched each vector's x) 0.044 ->
// 0.035.
template <class V, class H>
void shift_write(const uint16_t* bits, uint16_t* out, size_t n, double hi, double lo) {
  constexpr size_t W = V::width;
  const H* x = reinterpret_cast<const H*>(bits);
  H* y = reinterpret_cast<H*>(out);
  const Reg<V> vhi = V::set1(hi), vlo = V::set1(lo);
  auto value = [&](Reg<V> v) SSM_INLINE { return V::sub(V::sub(v, vhi), vlo); };
  size_t i = 0;
  if constexpr (HasPairStoreNormal<V>::value) {
    // 0x1p-126f: float32's smallest normal (see log_softmax_rows_from).
    if (static_cast<typename V::scalar>(lo) >= 0x1p-126f)
      for (; i + 4 * W <= n; i += 4 * W) {
        V::store2_normal(y + i, value(V::load(x + i)), value(V::load(x + i + W)));
        V::store2_normal(y + i + 2 * W, value(V::load(x + i + 2 * W)), value(V::load(x + i + 3 * W)));
      }
  } else {
    for (; i + 4 * W <= n; i += 4 * W)
      for (size_t u = 0; u < 4; ++u) V::store(y + i + u * W, value(V::load(x + i + u * W)));
  }
  for (; i + W <= n; i += W) V::store(y + i, value(V::load(x + i)));
  if (i < n) V::store_tail(y + i, value(V::load_tail(x + i, n - i, 0.0)), n - i);
}

// softmax's reload pass 1 on a cached long row (half_api.h terms_from_ref):
// terms exp(x - ref) 2^kTermShift by the format's polynomial into `terms`,
// their sum (m, relative to exp(ref)) and the row's max (NaN ignored). The
// terms are exact in form for x - ref <= 40 (2^t 2^64 stays finite in every
// lane type); beyond that the caller discards the pass (it checks the max).
// |ref| <= 4096: t = x L - c in one fma, L = log2 e and c = ref L rounded
// down in the lane type, so each term is exp(x - ref) times the common
// factor 2^(ref L - c), in [1, 2^(2^-11)), which cancels in softmax's
// t / S (and keeps m >= 1 where ref is the max); t is rounded once where
// x - ref and its product rounded twice (the scalar set's unfused fma
// rounds x L too: 2^-53 |x L|, below 2^-40 for the terms that count, x
// within 200 of ref). Zen 5, one thread, least thread CPU time: the pass
// on 2 rows of 32768 (L2), float16 0.095 -> 0.084 ns per element, bfloat16
// 0.077 -> 0.064; softmax of 1 Mi elements in rows of 32768, avx512 0.93
// (float16) and 0.91 (bfloat16) the time, avx2 0.90 and 0.89.
template <class V, class H>
ExpSum terms_from_ref(const uint16_t* bits, float* terms, size_t n, double ref) {
  using S = typename V::scalar;
  constexpr size_t W = V::width;
  constexpr size_t U = 4;
  const H* x = reinterpret_cast<const H*>(bits);
  const double inf = std::numeric_limits<double>::infinity();
  constexpr double kL = static_cast<double>(static_cast<S>(kLog2e));
  const double ref_l = ref * kL;  // exact for float32 lanes (ref: a half value)
  S c = static_cast<S>(ref_l);
  if (c > ref_l) c = next_below(c);
  const Reg<V> vl = V::set1(kL), neg_c = V::set1(-static_cast<double>(c));
  auto term = [&](Reg<V> v) SSM_INLINE { return exp2_scaled<V, H>(V::fmadd(v, vl, neg_c)); };
  // The terms are summed in the lane type per block of kSumBlock (each lane
  // chain adds at most kSumBlock / (U W) of them: within 2^-16.9 relative
  // even on AVX2's 8 lanes), the blocks' sums in float64.
  constexpr size_t kSumBlock = 4096;
  static_assert(kSumBlock % (U * W) == 0, "whole main-loop steps per block");
  Reg<V> m[U], sum[U];
  for (size_t u = 0; u < U; ++u) m[u] = V::set1(-inf);
  double total = 0.0;
  // x prefetched prefetch_distance() ahead, past the row's end too (the
  // batch's next row; a short row alone gives the hardware prefetcher no
  // stream to learn), a whole line or more per step (the scalar set's steps
  // of 8 bytes take none). softmax of float16 rows of 32768 and bfloat16
  // rows of 65536, 16 Mi elements, one thread, Zen 5, minima of interleaved
  // processes: 0.56 and 0.53 the time without (AVX-512), 0.69 and 0.68
  // (AVX2); in cache (65536 elements) the same time (0.98-1.03).
  constexpr size_t kStepBytes = U * W * sizeof(H);
  const size_t ahead = prefetch_distance(size_t(16) << 10) / sizeof(H);
  for (size_t i = 0; i < n;) {
    const size_t end = n - i > kSumBlock ? i + kSumBlock : n;
    for (size_t u = 0; u < U; ++u) sum[u] = V::set1(0.0);
    for (; i + U * W <= end; i += U * W) {
      if constexpr (kStepBytes >= 64)
        if (ahead) prefetch_block<kStepBytes>(x + i + ahead);
      for (size_t u = 0; u < U; ++u) {
        const Reg<V> v = V::load(x + i + u * W);
        m[u] = V::max(v, m[u]);  // NaN ignored
        const Reg<V> t = term(v);
        V::store(terms + i + u * W, t);
        sum[u] = V::add(sum[u], t);
      }
    }
    for (; i < end; i += W) {
      const size_t count = end - i < W ? end - i : W;
      const Reg<V> v = V::load_tail(x + i, count, -inf);
      m[0] = V::max(v, m[0]);
      const Reg<V> t = term(v);
      V::store_tail(terms + i, t, count);
      sum[0] = V::add(sum[0], t);
    }
    for (size_t u = 1; u < U; ++u) sum[0] = V::add(sum[0], sum[u]);
    total += V::hsum(sum[0]);
  }
  for (size_t u = 1; u < U; ++u) m[0] = V::max(m[u], m[0]);
  ExpSum out;
  out.e = 0.0;
  out.max = V::hmax(m[0]);
  out.m = total / kTermScale;
  return out;
}

}  // namespace half_rows

// The one-vector kernels of rows of K into the table (lengths other than
// powers of two: lane types with the spread loads); log_softmax only for
// several rows per vector: a row filling the vector computes its log1p in
// every lane, and ran slower than log_softmax_rows (bfloat16, 4 Mi
// elements, one thread: AVX-512 n = 16 1.43x the time, AVX2 n = 8
// 1.23-1.38x) and no faster than the buffered path (AVX-512 n = 12: 1.83
// vs 1.74 ns per element).
template <class V, class H, size_t K>
void add_tiny(HalfKernels& k) {
  constexpr size_t N = half_rows::pow2_at_least(K);
  constexpr size_t W = V::width;
  if constexpr (K == N && K > W && (K / W == 2 || K / W == 4)) {
    if constexpr (K <= half_rows::WideTinyMax<V>::softmax)
      k.softmax_tiny[K] = &half_rows::wide_tiny_rows<V, H, K / W, false>;
    if constexpr (K <= half_rows::WideTinyMax<V>::log_softmax)
      k.log_softmax_tiny[K] = &half_rows::wide_tiny_rows<V, H, K / W, true>;
  } else if constexpr (K >= 2 && N <= V::width && (K == N || half_rows::HasSpread<V>::value)) {
    k.softmax_tiny[K] = &half_rows::tiny_rows<V, H, K, false>;
    if constexpr (N < V::width) k.log_softmax_tiny[K] = &half_rows::tiny_rows<V, H, K, true>;
  }
}

template <class V, class H, size_t... K>
void add_tiny_lengths(HalfKernels& k, std::index_sequence<K...>) {
  (add_tiny<V, H, K>(k), ...);
}

// The short-row kernels of one format into its table.
template <class V, class H>
void add_half_rows(HalfKernels& k, HalfKernels::RowsMax auto_max) {
  k.softmax_rows = &half_rows::softmax_rows<V, H>;
  for (size_t i = 0; i <= kHalfTinyMax; ++i) k.softmax_tiny[i] = k.log_softmax_tiny[i] = nullptr;
  if constexpr (half_rows::HasSwapPairs<V>::value)
    add_tiny_lengths<V, H>(k, std::make_index_sequence<kHalfTinyMax + 1>{});
  k.log_softmax_rows = &half_rows::log_softmax_rows<V, H>;
  k.logsumexp_rows = &half_rows::logsumexp_rows<V, H>;
  k.rows_min_n = V::width;
  k.rows_auto_max = auto_max;
  k.max_sum_block = &half_rows::max_sum_block<V, H>;
  k.lse_block = &half_rows::max_sum_block<V, H, H>;
  if constexpr (half_rows::HasPairStoreNormal<V>::value || (!half_rows::HasPairStore<V>::value && V::width >= 16))
    k.write_shift = &half_rows::shift_write<V, H>;
  k.terms_from_ref = &half_rows::terms_from_ref<V, H>;
  add_tile(k.tiles, "rows_group", half_rows::kRowGroup);
  add_tile(k.tiles, "max_sum_block", 4 * V::width);
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
