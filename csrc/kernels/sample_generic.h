// The selection passes of sample() and topk(), written once over a lane type
// V and the ISA's random primitives R; included after gumbel_generic.h by
// sample_<isa>.cpp (same namespace rules: everything in an anonymous
// namespace of ssm::SSM_ISA).
//
// Every filter of sample() keeps the tokens whose logit is >= some threshold
// (top-k: the k-th largest logit; top-p: the smallest logit whose strictly
// larger tokens hold less than top_p of the mass; min-p: the smallest logit
// with p >= min_p * p_max), so a filtered draw is the Gumbel-max draw over
// x >= floor. The passes here find those thresholds without sorting the row:
//  * select: a running k-th best. A vector is looked at lane by lane only when
//    one of its lanes reaches the current k-th value (and, in a long chunk, a
//    floor a sample of the chunk predicts: see select_floor), which after the
//    first few thousand elements of a row almost never happens. Where k is
//    large against a chunk (most values would enter the heap), select_collect
//    instead: one filtered pass into a small candidate buffer, nth_element.
//  * mass_pass: the masses exp((x - max) / T) of a whole chunk in float64
//    lanes, with the project's vector exp (exp_core.h: fused multiply-adds in
//    the same order on every kernel set, so the same bits everywhere), each
//    rounded to a multiple of 2^-64 and split into two integers a 2^-32 +
//    b 2^-64 (|a| <= 2^32.5, |b| <= 2^31) that float64 lanes add exactly for
//    2^20 vectors; they are flushed into 128-bit FixedMass sums before that.
//    Integer sums do not depend on the order of the adds, so the total and
//    the sums above a few pivots are the same bits on every kernel set,
//    thread count and chunking, and no element is handled one at a time
//    except the few values in the collect range (clo, chi].
//  * mass_estimate: mass_pass's sums from a cheaper exp (a Taylor polynomial,
//    after the 16-entry table on AVX-512) in plain float64 lanes, with a
//    rigorous bound on their distance from mass_pass's exact sums; the
//    driver uses them where the bound decides the threshold.
//  * value_mass: the same mass for a few values (the driver's exact finish).
#ifndef SSM_ISA
#error "define SSM_ISA before including sample_generic.h"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "pick_order.h"
#include "sample_api.h"
#include "sample_fixed.h"

namespace ssm {
namespace SSM_ISA {
namespace {

// The largest T below v (v itself for -inf), as double: "x > below(v)" is
// "x >= v" for x of type T.
template <class T>
inline double below(double v) {
  return static_cast<double>(next_below(static_cast<T>(v)));
}

// A min-heap of (value, index), root = worst (lowest value, then highest
// index), over caller-provided arrays.
struct ValueHeap {
  double* value;
  uint64_t* index;
  size_t k, size = 0;
  bool better(double va, uint64_t ia, double vb, uint64_t ib) const { return va > vb || (va == vb && ia < ib); }
  void swap(size_t a, size_t b) {
    const double v = value[a];
    value[a] = value[b];
    value[b] = v;
    const uint64_t i = index[a];
    index[a] = index[b];
    index[b] = i;
  }
  void sift_down(size_t i) {
    for (;;) {
      size_t worst = i;
      const size_t l = 2 * i + 1, r = l + 1;
      if (l < size && better(value[worst], index[worst], value[l], index[l])) worst = l;
      if (r < size && better(value[worst], index[worst], value[r], index[r])) worst = r;
      if (worst == i) return;
      swap(i, worst);
      i = worst;
    }
  }
  void push(double v, uint64_t i) {
    size_t j = size++;
    value[j] = v;
    index[j] = i;
    while (j > 0 && better(value[(j - 1) / 2], index[(j - 1) / 2], value[j], index[j])) {
      swap(j, (j - 1) / 2);
      j = (j - 1) / 2;
    }
  }
  void sort() {
    const size_t n = size;
    while (size > 1) {
      swap(0, size - 1);
      --size;
      sift_down(0);
    }
    size = n;
  }
};

// A floor for the k best of a long chunk, from a sample: the m-th largest of
// kSelectRuns runs of kSelectRun values evenly spread over it, m about twice
// the sample's expected share of the k best plus 8, so that fewer than k
// values of the chunk reach it only for rows whose order defeats the sample
// (sorted ones; for shuffled values the chance is below 1e-9). -inf: no floor
// (a short chunk, a large k, or too few values in the sample). Only a guess:
// select() checks that k values reached it and otherwise starts over. A
// run none of whose values exceeds the current m-th is skipped by one
// vector test (most runs, once the sample's first few are in), as its
// values would be one by one.
constexpr size_t kSelectRuns = 128, kSelectRun = 16;  // a run: one 64-byte line of float32
constexpr size_t kSelectSample = kSelectRuns * kSelectRun;

template <class V, class T>
double select_floor(const T* x, size_t n, size_t k) {
  constexpr size_t W = V::width;
  static_assert(kSelectRun % W == 0, "a run is whole vectors");
  if (n < 32 * kSelectSample) return -kInf;
  const size_t m = (2 * k * kSelectSample + n - 1) / n + 8;
  if (16 * m > kSelectSample) return -kInf;
  double top[kSelectSample / 16];  // the m best so far, descending
  size_t size = 0;
  for (size_t r = 0; r < kSelectRuns; ++r) {
    const T* run = x + (n - kSelectRun) * r / (kSelectRuns - 1);
    if (size == m) {
      const Reg<V> vthr = V::set1(top[m - 1]);
      auto any = V::gt(V::load(run), vthr);
      for (size_t j = W; j < kSelectRun; j += W) any = V::mask_or(any, V::gt(V::load(run + j), vthr));
      if (!V::any(any)) continue;
    }
    for (size_t j = 0; j < kSelectRun; ++j) {
      const double v = static_cast<double>(run[j]);
      if (!(v > (size < m ? -kInf : top[m - 1]))) continue;  // NaN and -inf too
      size_t at = size < m ? size++ : m - 1;
      for (; at > 0 && top[at - 1] < v; --at) top[at] = top[at - 1];
      top[at] = v;
    }
  }
  return size == m ? top[m - 1] : -kInf;
}

// The lanes of a vector compare as bits (lane l: bit l) where the mask type
// gives them cheaply; elsewhere every lane, and the caller tests each lane's
// value itself (it does so everywhere: the bits only skip lanes).
template <class M>
inline uint32_t lane_bits(M, size_t width) {
  return width >= 32 ? ~uint32_t{0} : (uint32_t{1} << width) - 1u;
}
#if defined(__AVX512F__)
inline uint32_t lane_bits(__mmask16 m, size_t) { return m; }
inline uint32_t lane_bits(__mmask8 m, size_t) { return m; }
#endif
#if defined(__AVX2__)
inline uint32_t lane_bits(__m256 m, size_t) { return static_cast<uint32_t>(_mm256_movemask_ps(m)); }
inline uint32_t lane_bits(__m256d m, size_t) { return static_cast<uint32_t>(_mm256_movemask_pd(m)); }
#endif

// The k best of x[0..n) among the values >= floor (every value for -inf),
// NaN flagged: the first k such values fill the heap, and a vector is looked
// at lane by lane only when one of its lanes reaches max(floor, the current
// k-th value) or is NaN.
template <class V, class T>
SelectResult select_above(const T* x, size_t n, uint64_t start, size_t k, double* value, uint64_t* index,
                          double floor) {
  constexpr size_t W = V::width;
  constexpr size_t U = 4;  // vectors per test: one mask test for 4 compares
  SelectResult res;
  ValueHeap heap{value, index, k};
  // Elements equal to the root's value that are not in the heap: they came
  // later than the root (higher index) or were evicted by a better one while
  // the root's value stayed the same. A larger root value starts over.
  uint64_t ties = 0;
  auto offer = [&](double v, uint64_t i) {
    if (v != v) {
      res.nan = true;
      return;
    }
    res.posinf = res.posinf || v == kInf;
    if (heap.size < k) {
      heap.push(v, i);
      return;
    }
    const double root = value[0];
    if (v > root) {
      value[0] = v;
      index[0] = i;
      heap.sift_down(0);
      ties = value[0] == root ? ties + 1 : 0;
    } else if (v == root) {
      ++ties;
    }
  };
  size_t i = 0;
  if (floor == -kInf)  // no floor: -inf values count too, until the heap is full
    for (; i < n && heap.size < k; ++i) offer(static_cast<double>(x[i]), start + i);
  // Lanes with x > low (x >= the floor or the k-th value) or NaN can enter
  // the heap, tie or flag; the others cannot.
  auto low_now = [&] { return heap.size < k ? below<T>(floor) : below<T>(value[0]); };
  double low = low_now();
  Reg<V> vlow = V::set1(low);
  // the lanes of the vector at `at` whose compare with vlow (x > low or NaN) set `bits`
  auto lanes = [&](size_t at, uint32_t bits) {
    for (; bits != 0; bits &= bits - 1) {
      const size_t l = at + static_cast<size_t>(__builtin_ctz(bits));
      const double v = static_cast<double>(x[l]);
      if (!(v <= low)) offer(v, start + l);
    }
  };
  for (; i + U * W <= n; i += U * W) {
    Reg<V> xv[U];
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) xv[u] = V::load(x + i + u * W);
    const auto any = V::mask_or(V::mask_or(V::not_le(xv[0], vlow), V::not_le(xv[1], vlow)),
                                V::mask_or(V::not_le(xv[2], vlow), V::not_le(xv[3], vlow)));
    if (!V::any(any)) continue;
    // loaded again, not kept from above: kept, the U vectors were stored to
    // the stack on every step for this rare branch (4 stores per 4 loads)
    for (size_t u = 0; u < U; ++u) {
      const auto m = V::not_le(V::load(x + i + u * W), vlow);
      if (V::any(m)) lanes(i + u * W, lane_bits(m, W));
    }
    low = low_now();
    vlow = V::set1(low);
  }
  for (; i + W <= n; i += W) {
    const auto m = V::not_le(V::load(x + i), vlow);
    if (!V::any(m)) continue;
    lanes(i, lane_bits(m, W));
    low = low_now();
    vlow = V::set1(low);
  }
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    if (!(v <= low)) offer(v, start + i);
    low = low_now();
  }
  heap.sort();
  res.count = heap.size;
  res.ties = heap.size == k ? ties : 0;
  return res;
}

// select_collect's candidates are ssm::Pick (pick_order.h), ordered by the
// baseline translation unit's std::nth_element and std::sort.

constexpr size_t kPickCap = 1024;      // select_collect's buffer (16 KB of stack)
constexpr size_t kPickSample = 64;     // values of the sample that places its first threshold
constexpr size_t kPickMaxK = kPickCap / 4;  // larger k: the heap (prunes would come too often)
// The heap for k < 8 (a few compares per value: topk(x, 2) of 64 x 1000
// took 27 us by the heap, 60-73 by the buffer), and for chunks longer than
// 24 k^2, 448 k or 32768 values. The heap's cost grows with k (each value
// that enters it), the buffer's with n (a prune per 1024 candidates; in a
// long chunk its first threshold lets through more values than stay in the
// k best): they meet near n = 24-30 k^2 for k = 8..24 (k = 8 at ~1900,
// 16 at ~7000), near 15000 for k = 32, and beyond 32768 values only for
// k >= 48. topk, 32 rows of N(0, 1) float32, 1 thread, avx512, this Xeon,
// buffer/heap time: k = 8 0.72-0.80 at n = 1000, 0.93 at 1500, 1.03-1.11
// at 2048; k = 16 0.85 at 4096, 0.91 at 6000, 1.04-1.07 at 8192; k = 24
// 0.95 at 12000, 1.01-1.08 at 16384; k = 32 0.77 at 12000, 1.03-1.06 at
// 16384; k = 64 0.56 at 32768.
constexpr size_t kSelectCollectMinK = 8;
constexpr size_t kSelectCollectSquare = 24, kSelectCollectPerK = 448, kSelectCollectMax = 32768;

// A first threshold for select_collect: the m-th largest of kPickSample
// values evenly spread over the chunk, m the sample's expected share of the
// k best plus two standard deviations plus 3, so that k values reach it for
// all but unusual orders (and those only cost a second pass); -inf when that
// m is most of the sample (then every finite value is collected).
template <class T>
double pick_threshold(const T* x, size_t n, size_t k) {
  const double share = static_cast<double>(k) * static_cast<double>(kPickSample) / static_cast<double>(n);
  const size_t m = static_cast<size_t>(share + 2.0 * std::sqrt(share)) + 3;
  if (n < 2 * kPickSample || 2 * m > kPickSample) return -kInf;
  Pick s[kPickSample];
  size_t got = 0;
  // Entry j (n - 1) / (kPickSample - 1), rounded down, stepped without a
  // division per entry (64 divisions were most of a short row's cost).
  constexpr size_t kGaps = kPickSample - 1;
  const size_t step = (n - 1) / kGaps, extra = (n - 1) % kGaps;
  size_t at = 0, frac = 0;
  for (size_t j = 0; j < kPickSample; ++j) {
    const double v = static_cast<double>(x[at]);
    if (v > -kInf && v < kInf) s[got++] = Pick{v, static_cast<uint32_t>(j)};  // NaN, +-inf: no guess from them
    at += step;
    frac += extra;
    if (frac >= kGaps) {
      frac -= kGaps;
      ++at;
    }
  }
  if (got < m) return -kInf;
  select_nth_pick(s, got, m - 1);
  return s[m - 1].value;
}

// The k best of x[0..n) by one filtered pass into a small buffer, for k
// large against n (where select_above's heap takes most values in and its
// lane-by-lane visits cover nearly every vector): the lanes >= the current
// threshold t are appended to the buffer (a vector compare per vector, the
// passing lanes by their bits); when it fills, the k best of it are kept
// (nth_element) and t rises to their k-th value, the values equal to t
// beyond the k best counted as ties (they come later than every value kept,
// or were ranked after one equal to them). At the end the same again, and
// the k best sorted. Exact whatever the first threshold: with fewer than k
// values >= it (an unlucky sample) the chunk is done again from -inf, where
// every finite value counts (and the heap does the rare row with fewer than
// k finite values). ok = false: the caller's heap must do it.
template <class V, class T>
SelectResult select_collect(const T* x, size_t n, uint64_t start, size_t k, double* value, uint64_t* index,
                            double first, bool& ok) {
  constexpr size_t W = V::width;
  SelectResult res;
  Pick buf[kPickCap];
  size_t count = 0;
  uint64_t ties = 0;             // values equal to t dropped by a prune
  double t = first, low = below<T>(t);
  // Keep the k best of buf (count > k), t their k-th value.
  auto prune = [&] {
    select_nth_pick(buf, count, k - 1);
    const double kth = buf[k - 1].value;
    uint64_t equal = 0;
    for (size_t j = k; j < count; ++j) equal += buf[j].value == kth ? 1 : 0;
    ties = (kth == t ? ties : 0) + equal;
    count = k;
    t = kth;
    low = below<T>(t);
  };
  auto lanes = [&](size_t at, uint32_t bits) {
    for (; bits != 0; bits &= bits - 1) {
      const size_t l = at + static_cast<size_t>(__builtin_ctz(bits));
      const double v = static_cast<double>(x[l]);
      if (v <= low) continue;
      if (v != v) {
        res.nan = true;
        return;
      }
      res.posinf = res.posinf || v == kInf;
      buf[count++] = Pick{v, static_cast<uint32_t>(l)};
    }
  };
  size_t i = 0;
  Reg<V> vlow = V::set1(low);
  for (; i + W <= n && !res.nan; i += W) {
    if (count + W > kPickCap) {
      prune();
      vlow = V::set1(low);
    }
    const auto m = V::not_le(V::load(x + i), vlow);
    if (V::any(m)) lanes(i, lane_bits(m, W));
  }
  if (count + W > kPickCap) prune();
  if (!res.nan) lanes(i, lane_bits(true, n - i));
  if (res.nan) {
    ok = true;
    return res;
  }
  if (count < k) {
    if (t == -kInf) return res;  // fewer than k finite values: ok stays false
    return select_collect<V, T>(x, n, start, k, value, index, -kInf, ok);
  }
  if (count > k) prune();
  sort_picks(buf, k);
  if (buf[k - 1].value != t) ties = 0;  // the dropped ties were of a lower value
  for (size_t j = 0; j < k; ++j) {
    value[j] = buf[j].value;
    index[j] = start + buf[j].at;
  }
  res.count = k;
  res.ties = ties;
  ok = true;
  return res;
}

// The k best of a chunk: by select_collect when k is large against the
// chunk (n <= 24 k^2 and 448 k, at most 32768 values: shorter than a
// sampled floor needs); above the sample's floor when k values reach it (the same
// result: the k best and the k-th value's ties are all >= it); else over
// every value. A NaN ends the search (the caller reports it).
template <class V, class T>
SelectResult select(const T* x, size_t n, uint64_t start, size_t k, double* value, uint64_t* index) {
  if (k == 0) return SelectResult{};
  const int method = select_method();
  const bool rule = k >= kSelectCollectMinK && n <= kSelectCollectMax && n <= kSelectCollectSquare * k * k &&
                    n <= kSelectCollectPerK * k;
  if (k <= kPickMaxK && n <= 0xFFFFFFFFu && (method == 1 || (method == 0 && rule))) {
    bool ok = false;
    const SelectResult res = select_collect<V, T>(x, n, start, k, value, index, pick_threshold(x, n, k), ok);
    if (ok) return res;
  }
  const double floor = select_floor<V>(x, n, k);
  if (floor > -kInf) {
    const SelectResult res = select_above<V, T>(x, n, start, k, value, index, floor);
    if (res.count == k || res.nan) return res;
  }
  return select_above<V, T>(x, n, start, k, value, index, -kInf);
}

// The lanes in (lo, hi] (ninf: -inf, hoisted).
template <class V>
SSM_INLINE inline typename V::mask in_open(Reg<V> xv, Reg<V> lo, Reg<V> hi, Reg<V> ninf) {
  return V::gt(V::select(V::gt(xv, hi), ninf, xv), lo);
}

// v where the mask is set, else 0: a select, or on AVX2 one and (the
// blend's sign test costs an extra instruction per vector in the mass pass).
template <class VW>
SSM_INLINE inline Reg<VW> keep(typename VW::mask m, Reg<VW> v) {
  return VW::select(m, v, VW::set1(0.0));
}
#if defined(__AVX2__) && !defined(__AVX512F__)
template <>
SSM_INLINE inline __m256d keep<F64x4>(__m256d m, __m256d v) {
  return _mm256_and_pd(m, v);
}
#endif

// The lanes of x in (lo, hi] appended to out (while they fit cap; count
// counts them all), where the lanes' in-range bits are at hand: AVX-512
// compresses them in one store, AVX2 visits the set bits. Else false (the
// caller's lane loop). The padding of a tail is -inf: never in range.
template <class R>
inline bool collect_lanes(R, R, R, double*, size_t, uint64_t&) {
  return false;
}
#if defined(__AVX512F__)
inline bool collect_lanes(__m512d x, __m512d lo, __m512d hi, double* out, size_t cap, uint64_t& count) {
  const __mmask8 in = _mm512_cmp_pd_mask(x, lo, _CMP_GT_OQ) & _mm512_cmp_pd_mask(x, hi, _CMP_LE_OQ);
  const unsigned got = static_cast<unsigned>(__builtin_popcount(in));
  if (count + got <= cap) _mm512_mask_compressstoreu_pd(out + count, in, x);
  count += got;  // past cap the values are not used: none needs storing
  return true;
}
#endif
#if defined(__AVX2__)
inline bool collect_lanes(__m256d x, __m256d lo, __m256d hi, double* out, size_t cap, uint64_t& count) {
  const __m256d in = _mm256_and_pd(_mm256_cmp_pd(x, lo, _CMP_GT_OQ), _mm256_cmp_pd(x, hi, _CMP_LE_OQ));
  alignas(32) double v[4];
  _mm256_store_pd(v, x);
  for (unsigned bits = static_cast<unsigned>(_mm256_movemask_pd(in)); bits != 0; bits &= bits - 1) {
    if (count < cap) out[count] = v[__builtin_ctz(bits)];
    ++count;
  }
  return true;
}
#endif

// The same for float32 lanes (the float32 estimate pass): each half in
// float64 (exact; lo and hi are broadcasts), low lanes first.
#if defined(__AVX512F__)
inline bool collect_lanes(__m512 x, __m512 lo, __m512 hi, double* out, size_t cap, uint64_t& count) {
  const __m512d lo_d = _mm512_cvtps_pd(_mm512_castps512_ps256(lo)), hi_d = _mm512_cvtps_pd(_mm512_castps512_ps256(hi));
  collect_lanes(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), lo_d, hi_d, out, cap, count);
  const __m256 upper = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
  return collect_lanes(_mm512_cvtps_pd(upper), lo_d, hi_d, out, cap, count);
}
#endif
#if defined(__AVX2__)
inline bool collect_lanes(__m256 x, __m256 lo, __m256 hi, double* out, size_t cap, uint64_t& count) {
  const __m256d lo_d = _mm256_cvtps_pd(_mm256_castps256_ps128(lo)), hi_d = _mm256_cvtps_pd(_mm256_castps256_ps128(hi));
  collect_lanes(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), lo_d, hi_d, out, cap, count);
  return collect_lanes(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), lo_d, hi_d, out, cap, count);
}
#endif

// The lanes of U vectors (p: their values, the first `lanes` of them real)
// in (clo, chi] appended to out: one test for the U vectors, as most hold no
// value of the range.
template <class V, size_t U, class T>
SSM_INLINE inline void collect_range(const Reg<V>* xv, Reg<V> vclo, Reg<V> vchi, Reg<V> ninf, const T* p, size_t lanes,
                                     double clo, double chi, double* out, size_t cap, uint64_t& count) {
  constexpr size_t W = V::width;
  typename V::mask in[U];
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) in[u] = in_open<V>(xv[u], vclo, vchi, ninf);
  typename V::mask any = in[0];
  SSM_UNROLL
  for (size_t u = 1; u < U; ++u) any = V::mask_or(any, in[u]);
  if (!V::any(any)) return;
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) {
    if (!V::any(in[u])) continue;
    if (collect_lanes(xv[u], vclo, vchi, out, cap, count)) continue;
    // branch-free: every lane written at out[count], counted only when in
    // the range (the next one overwrites it otherwise); about half the
    // lanes of a vector that has one are in, too many for a branch each
    for (size_t l = 0; l < W && u * W + l < lanes; ++l) {
      const double v = static_cast<double>(p[u * W + l]);
      if (count < cap) out[count] = v;
      count += (v > clo) & (v <= chi) ? 1 : 0;
    }
  }
}

// Masses below e^-46 < 2^-66 round to 0 in units of 2^-64: clamping there
// keeps every scaled mass a normal number (exact scaling) and sends -inf
// (and the padding of a tail) to 0.
constexpr double kMassFloor = -46.0;
// Float64 lanes add the pieces exactly while |sum| < 2^53: 2^20 adds of
// a <= 2^32.5; flushed well before.
constexpr size_t kFlushVectors = size_t{1} << 18;
constexpr size_t kMassUnroll = 4;  // vectors in flight in the mass pass

// round(exp((x - ref) * inv_temp) 2^64) = a 2^32 + b, both integers held in
// float64 lanes: y = m 2^(n + 64) is exact (a power-of-two scaling of a
// normal number), a = round(y 2^-32), and y - a 2^32 is exact in one fused
// multiply-add (|y - a 2^32| <= 2^31, a multiple of y's ulp), then rounded.
// (x == ref: d = 0, n = 0, m = c0 = 1, so the max weighs exactly 1.)
// m 2^k for integer k with a normal result: one pow2 and a multiply where the
// lanes build 2^k directly (AVX2, NEON), else scale2 (AVX-512's scalef, the
// portable ldexp). Both exact here, so the same bits.
template <class V, class = void>
struct HasPow2 : std::false_type {};
template <class V>
struct HasPow2<V, std::void_t<decltype(void(V::pow2(std::declval<Reg<V>>())))>> : std::true_type {};

template <class VW>
SSM_INLINE inline Reg<VW> times_pow2(Reg<VW> m, Reg<VW> k) {
  if constexpr (HasPow2<VW>::value)
    return VW::mul(m, VW::pow2(k));
  else
    return VW::scale2(m, k);
}

//
// U vectors at a time, stage by stage: one vector's exp is a long chain of
// dependent fused multiply-adds, and one chain at a time leaves the
// out-of-order core idle (about 3x slower). The operations per lane are the
// same whatever U, so the bits are too.
template <class VW, size_t U>
SSM_INLINE inline void mass_pieces(const Reg<VW>* x, Reg<VW> vref, Reg<VW> vinv, Reg<VW>* a, Reg<VW>* b) {
  using C = ExpCoeffs<double>;
  Reg<VW> r[U], n[U], p[U];
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) {
    const Reg<VW> d = VW::max(VW::mul(VW::sub(x[u], vref), vinv), VW::set1(kMassFloor));
    n[u] = VW::round(VW::mul(d, VW::set1(C::log2e)));
    r[u] = VW::reduce_ln2(d, n[u]);
    p[u] = VW::set1(C::c[C::degree]);
  }
  SSM_UNROLL
  for (int k = C::degree - 1; k >= 0; --k) {
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) p[u] = VW::fmadd(p[u], r[u], VW::set1(C::c[k]));
  }
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) {
    const Reg<VW> y = times_pow2<VW>(p[u], VW::add(n[u], VW::set1(64.0)));
    a[u] = VW::round(VW::mul(y, VW::set1(0x1p-32)));
    b[u] = VW::round(VW::fmadd(a[u], VW::set1(-0x1p32), y));
  }
}

// A sum of pieces per lane, flushed into a FixedMass (units 2^-96).
template <class VW>
struct PieceSum {
  Reg<VW> a, b;
  void init() { a = b = VW::set1(0.0); }
  SSM_INLINE void add(Reg<VW> pa, Reg<VW> pb) {
    a = VW::add(a, pa);
    b = VW::add(b, pb);
  }
  void flush(FixedMass& out) {
    constexpr size_t W = VW::width;
    double sa[W], sb[W];
    VW::to_array(a, sa);
    VW::to_array(b, sb);
    for (size_t l = 0; l < W; ++l) fixed_add_pieces(out, static_cast<int64_t>(sa[l]), static_cast<int64_t>(sb[l]));
    init();
  }
};

// The estimate pass's exp (mass_estimate): the same d = max((x - ref) T^-1,
// -46) as mass_pieces, then a Taylor polynomial, cheaper than the exact
// degree-11 fit and the 2^-64 rounding:
//  * with the 16-entry table (AVX-512 float64): exp(d) = 2^(k/16) p4(r),
//    |r| <= ln2/32 + 2^-40, Taylor remainder |r|^5/5! e^|r| < 4.1e-11;
//  * else: exp(d) = 2^n p7(r), |r| <= ln2/2 + 2^-40, remainder
//    |r|^8/8! e^|r| < 7.5e-9.
// Horner's, the reduction's and the table's roundings add well below 2^-46
// (|r| < 0.35, d >= -46 formed exactly as in the exact pass), and the exact
// mass is itself within 2^-52 relative and 2^-65 absolute of exp(d) (its
// polynomial, then the rounding to a multiple of 2^-64). estimate_rel bounds
// |estimate - exact| / estimate per element, kEstimateAbs the absolute part
// (also every -inf: the estimate's e^-46 < 2^-66 against the exact 0). The
// degrees are as low as the driver's use allows: it compares differences of
// sums whose errors largely cancel (see the driver's estimated_threshold),
// so 7.5e-9 per element leaves an undecided threshold rare (a boundary token
// of a 150,000-token row weighs ~1e-6 of the row).
constexpr double kTaylor[8] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040};
constexpr double kEstimateAbs = 0x1p-65;

template <class VW>
constexpr double estimate_rel() {
  return (HasExpTable<VW>::value ? 4.1e-11 : 7.5e-9) + 0x1p-45;
}

template <class VW, size_t U>
SSM_INLINE inline void mass_estimates(const Reg<VW>* x, Reg<VW> vref, Reg<VW> vinv, Reg<VW>* m) {
  constexpr bool kTable = HasExpTable<VW>::value;
  constexpr int degree = kTable ? 4 : 7;
  Reg<VW> r[U], n[U], scale[U];
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) {
    const Reg<VW> d = VW::max(VW::mul(VW::sub(x[u], vref), vinv), VW::set1(kMassFloor));
    if constexpr (kTable) {
      const Reg<VW> t = VW::fmadd(d, VW::set1(ExpCoeffs<double>::log2e), VW::set1(ExpTable16::magic));
      n[u] = VW::sub(t, VW::set1(ExpTable16::magic));
      scale[u] = VW::scale2_term(VW::exp_table(t, VW::table_lo(), VW::table_hi()), n[u]);
    } else {
      n[u] = VW::round(VW::mul(d, VW::set1(ExpCoeffs<double>::log2e)));
    }
    r[u] = VW::reduce_ln2(d, n[u]);
    m[u] = VW::set1(kTaylor[degree]);
  }
  SSM_UNROLL
  for (int k = degree - 1; k >= 0; --k) {
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) m[u] = VW::fmadd(m[u], r[u], VW::set1(kTaylor[k]));
  }
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) {
    if constexpr (kTable)
      m[u] = VW::mul(m[u], scale[u]);
    else
      m[u] = times_pow2<VW>(m[u], n[u]);
  }
}

// A float64 sum of estimated masses per lane, flushed into a double.
template <class VW>
struct EstimateSum {
  Reg<VW> s;
  void init() { s = VW::set1(0.0); }
  SSM_INLINE void add(Reg<VW> m) { s = VW::add(s, m); }
  void flush(double& out) {
    double lane[VW::width];
    VW::to_array(s, lane);
    for (double v : lane) out += v;
    init();
  }
};

// The exact sums (Res = MassPass: mass_pieces into PieceSums) or their
// estimates (Res = MassEstimate: mass_estimates into EstimateSums).
template <class VW, class T, size_t P, class Res>
void mass_pass_p(const T* x, size_t n, double ref, double inv_temp, const double* pivot, double clo, double chi,
                 double* out, size_t cap, Res* res) {
  constexpr size_t W = VW::width;
  constexpr bool kEstimate = std::is_same<Res, MassEstimate>::value;
  using Sum = std::conditional_t<kEstimate, EstimateSum<VW>, PieceSum<VW>>;
  const Reg<VW> vref = VW::set1(ref), vinv = VW::set1(inv_temp);
  const Reg<VW> vclo = VW::set1(clo), vchi = VW::set1(chi), ninf = VW::set1(-kInf);
  Reg<VW> vpivot[P > 0 ? P : 1];
  Sum total, above[P > 0 ? P : 1];
  total.init();
  if constexpr (P > 0) {
    for (size_t j = 0; j < P; ++j) {
      vpivot[j] = VW::set1(pivot[j]);
      above[j].init();
    }
  }
  uint64_t count = res->count;
  // U vectors: their masses into the sums, and their lanes in (clo, chi]
  // (few: looked at one by one) into out.
  auto body = [&](auto unroll, const Reg<VW>* xv, const T* p, size_t lanes) SSM_INLINE {
    constexpr size_t U = decltype(unroll)::value;
    if constexpr (kEstimate) {
      Reg<VW> m[U];
      mass_estimates<VW, U>(xv, vref, vinv, m);
      SSM_UNROLL
      for (size_t u = 0; u < U; ++u) {
        total.add(m[u]);
        if constexpr (P > 0)
          for (size_t j = 0; j < P; ++j) above[j].add(keep<VW>(VW::gt(xv[u], vpivot[j]), m[u]));
      }
    } else {
      Reg<VW> a[U], b[U];
      mass_pieces<VW, U>(xv, vref, vinv, a, b);
      SSM_UNROLL
      for (size_t u = 0; u < U; ++u) {
        total.add(a[u], b[u]);
        if constexpr (P > 0) {
          for (size_t j = 0; j < P; ++j) {
            const auto gt = VW::gt(xv[u], vpivot[j]);
            above[j].add(keep<VW>(gt, a[u]), keep<VW>(gt, b[u]));
          }
        }
      }
    }
    collect_range<VW, U>(xv, vclo, vchi, ninf, p, lanes, clo, chi, out, cap, count);
  };
  auto flush = [&]() {
    total.flush(res->total);
    if constexpr (P > 0)
      for (size_t j = 0; j < P; ++j) above[j].flush(res->above[j]);
  };
  constexpr size_t U = kMassUnroll;
  size_t i = 0, since = 0;
  for (; i + U * W <= n; i += U * W) {
    Reg<VW> xv[U];
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) xv[u] = VW::load(x + i + u * W);
    body(std::integral_constant<size_t, U>{}, xv, x + i, U * W);
    if (++since == kFlushVectors / U) {
      flush();
      since = 0;
    }
  }
  for (; i < n; i += W) {
    alignas(64) T buf[W];
    copy_padded(buf, W, 0, x + i, n - i, -static_cast<T>(kInf));
    const Reg<VW> xv = VW::load(buf);
    body(std::integral_constant<size_t, 1>{}, &xv, buf, W);
  }
  flush();
  res->count = count;
  if constexpr (kEstimate) {
    // Per element: rel * estimate + abs (the padding lanes too). The float64
    // adds, all of positive terms: a lane's chain of n / W + 1 terms, the
    // flushes (W lanes, n / (W kFlushVectors) + 1 times) onto res's sum, so
    // gamma_k = k 2^-53 (1 + 2^-40) of the final sum for k below `adds`.
    const double elements = static_cast<double>(n + W);
    const double adds = elements / W + (elements / (W * kFlushVectors) + 2) * W + 2;
    const double round = adds * 0x1p-53 * (1 + 0x1p-40);
    res->rel = estimate_rel<VW>() * (1 + 0x1p-40);
    res->abs += elements * kEstimateAbs;
    res->total_round += round * res->total;
    for (size_t j = 0; j < P; ++j) res->above_round[j] += round * res->above[j];
  }
}

template <class VW, class T, class Res>
void mass_pass(const T* x, size_t n, double ref, double inv_temp, const double* pivot, size_t pivots, double clo,
               double chi, double* out, size_t cap, Res* res) {
  switch (pivots) {
    case 0: return mass_pass_p<VW, T, 0>(x, n, ref, inv_temp, pivot, clo, chi, out, cap, res);
    case 1: return mass_pass_p<VW, T, 1>(x, n, ref, inv_temp, pivot, clo, chi, out, cap, res);
    case 2: return mass_pass_p<VW, T, 2>(x, n, ref, inv_temp, pivot, clo, chi, out, cap, res);
    case 3: return mass_pass_p<VW, T, 3>(x, n, ref, inv_temp, pivot, clo, chi, out, cap, res);
    default: return mass_pass_p<VW, T, kMaxPivots>(x, n, ref, inv_temp, pivot, clo, chi, out, cap, res);
  }
}

// The estimate pass in float32 lanes (float32 rows, twice the lanes of
// mass_estimates), for one pivot at most. In log2 units y = (x - ref) s,
// s = inv_temp log2(e) split into float32 s_hi + s_lo, and c = ref s rounded
// to a multiple of 2^-10:
//   n = round(fma(x, s_hi, -c)),  r = fma(x, s_lo, fma(x, s_hi, -(c + n))),
//   mass = 2^n p7(r),  p7 the degree-7 Taylor polynomial of 2^r.
// c + n is exact in float32 while |c| < 2^12 (a multiple of 2^-10 below
// 2^13), so each fma rounds once, at a result below 1: r is within 2^-24 of
// x s_hi + x s_lo - (c + n), and the estimate is 2^(y + delta) with the
// common shift delta = ref (s_hi + s_lo) - c that the chunk's sums undo in
// float64 (times 2^-delta). Per element, relative to 2^y (kNarrowRel):
//  * the reduction's two roundings: 2^(2^-24) - 1 < 4.14e-8;
//  * p7 on |r| <= 0.501 (|x s_lo| <= 2^-11 and the rounding of the first
//    fma move r at most that far past 1/2): truncation 7.15e-9, the float32
//    coefficients 1.66e-9, Horner's roundings 6.7e-8 (summed at their
//    worst over r, tools-free: the half ulps of each partial result);
//  * the sums: masses above and not above the pivot go into separate float32
//    trees of kMassUnroll vectors (two roundings, 2^-23 + 2^-48), then
//    float64 lanes. Each element is in one tree only, so the trees' roundings
//    are per-element errors shared by above and total (total = above + the
//    rest in float64), which the driver's difference bound needs;
//  * 2^-delta, the split of s and the exact pass's own error: below 2^-40.
// x is first raised to xlo ~ ref - 68.5 / s (-inf too): every x at or below
// it has d < -46, mass 0 in the exact pass, and n >= -69 for every x (2^n
// normal, |r| <= 0.501), so any x with d < -46 gets 2^y (1 + kNarrowRel)
// < 2^-66.3 < kEstimateAbs. Usable when |x s| <= 2^13 over [xlo, ref] and
// 2^-60 <= s (s_lo normal); else the float64 estimate runs instead.
constexpr float kTaylor2[8] = {0x1p+0f,         0x1.62e43p-1f,   0x1.ebfbep-3f,   0x1.c6b08ep-5f,
                               0x1.3b2ab6p-7f,  0x1.5d87fep-10f, 0x1.430912p-13f, 0x1.ffcbfcp-17f};
constexpr double kNarrowRel = 2.4e-7;  // 4.14e-8 + 7.15e-9 + 1.66e-9 + 6.7e-8 + 1.193e-7 + 2^-40, over 1 - that

struct NarrowReduction {
  bool ok = false;
  float s_hi = 0, s_lo = 0, negc = 0, xlo = 0;
  double undo = 1;  // 2^-delta
};

// Compile-time constants (an unoptimized build would call numeric_limits'
// functions, emitted as weak code in this AVX-compiled object).
constexpr float kInfFloat = std::numeric_limits<float>::infinity();
constexpr float kMaxFloat = std::numeric_limits<float>::max();

// The largest float <= v.
inline float float_at_most(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) > v) f = std::nextafterf(f, -kInfFloat);
  return f;
}

inline NarrowReduction narrow_reduction(double ref, double inv_temp) {
  NarrowReduction nr;
  const double s = inv_temp * ExpCoeffs<double>::log2e;
  if (!(s >= 0x1p-60 && s <= 0x1p60 && std::fabs(ref) * s <= 0x1p12)) return nr;
  nr.s_hi = static_cast<float>(s);
  nr.s_lo = static_cast<float>(s - static_cast<double>(nr.s_hi));
  const double c = std::nearbyint(ref * s * 0x1p10) * 0x1p-10;
  nr.negc = static_cast<float>(-c);  // exact: |c| <= 2^12 + 1, a multiple of 2^-10
  const double xlo = ref - 68.5 / s;
  nr.xlo = xlo < -static_cast<double>(kMaxFloat) ? -kMaxFloat : float_at_most(xlo);
  if (!(std::fabs(static_cast<double>(nr.xlo)) * s <= 0x1p13)) return nr;
  const double delta = std::fma(ref, static_cast<double>(nr.s_hi), -c) + ref * static_cast<double>(nr.s_lo);
  nr.undo = std::exp2(-delta);
  nr.ok = true;
  return nr;
}

// v where the mask is clear, else 0.
template <class V>
SSM_INLINE inline Reg<V> drop(typename V::mask m, Reg<V> v) {
  return V::select(m, V::set1(0.0), v);
}
#if defined(__AVX2__) && !defined(__AVX512F__)
template <>
SSM_INLINE inline __m256 keep<F32x8>(__m256 m, __m256 v) {
  return _mm256_and_ps(m, v);
}
template <>
SSM_INLINE inline __m256 drop<F32x8>(__m256 m, __m256 v) {
  return _mm256_andnot_ps(m, v);
}
#endif

// m added to acc in the set lanes of the mask: an add of keep, or on
// AVX-512 one masked add (the same bits: a lane adds m or keeps its sum,
// where the add of 0 kept it too).
template <class V>
SSM_INLINE inline Reg<V> add_where(typename V::mask in, Reg<V> acc, Reg<V> m) {
  return V::add(acc, keep<V>(in, m));
}
#if defined(__AVX512F__)
template <>
SSM_INLINE inline __m512 add_where<F32x16>(__mmask16 in, __m512 acc, __m512 m) {
  return _mm512_mask_add_ps(acc, in, acc, m);
}
#endif

// How much of the batch's next row mass_coarse prefetches by default
// (SampleKernels::coarse_next_bytes): about what DRAM delivers while the
// pass runs (Zen 3, AVX2, 64 x 151,936 float32: the next draw 48 -> 40 us
// with its first 256 KiB in cache).
constexpr size_t kCoarseNextBytes = size_t{256} << 10;

// mass_coarse's vectors in flight and its next-row prefetch, per lane type
// (a kernel set specializes it: sample_avx2.cpp, sample_avx512.cpp).
template <class V>
struct CoarseTuning {
  static constexpr size_t unroll = kMassUnroll;
  static constexpr size_t next_bytes = kCoarseNextBytes;
};

// SampleKernels::short_topk per lane type and element type: none unless a
// kernel set specializes it (sample_avx512.cpp, sample_avx2.cpp: topk_lanes.h's
// short_topk_lanes over the set's TopkLanes).
template <class V, class T>
struct ShortTopk {
  static constexpr size_t max_k = 0;
  static constexpr bool (*run)(const T*, size_t, size_t, T*, int64_t*) = nullptr;
};

// ShortTopk of a kernel set with lane operations L for T.
template <class L, class T>
struct ShortTopkBy {
  static constexpr size_t max_k = L::width;
  static constexpr bool (*run)(const T*, size_t, size_t, T*, int64_t*) = &short_topk_lanes<L, T>;
};

// float32 lanes into float64 accumulators (exact conversion).
template <class V, class VW>
SSM_INLINE inline void add_wide(Reg<V> v, Reg<VW>& lo, Reg<VW>& hi) {
  if constexpr (V::width == 1) {
    lo = VW::add(lo, static_cast<double>(v));
    (void)hi;
  } else {
    Reg<VW> a, b;
    V::widen(v, a, b);
    lo = VW::add(lo, a);
    hi = VW::add(hi, b);
  }
}

// The sum of the lanes of two float64 accumulators (lo's and hi's lanes
// paired, in lane order).
template <class VW>
SSM_INLINE inline double lanes_sum(Reg<VW> lo, Reg<VW> hi) {
  double l[VW::width], h[VW::width], s = 0;
  VW::to_array(lo, l);
  VW::to_array(hi, h);
  for (size_t j = 0; j < VW::width; ++j) s += l[j] + h[j];
  return s;
}

template <class V, size_t U>
SSM_INLINE inline void narrow_masses(const Reg<V>* x, const NarrowReduction& nr, Reg<V>* m) {
  const Reg<V> vshi = V::set1(nr.s_hi), vslo = V::set1(nr.s_lo), vnegc = V::set1(nr.negc);
  Reg<V> r[U], n[U];
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) {
    const Reg<V> xc = V::max(x[u], V::set1(nr.xlo));
    n[u] = V::round(V::fmadd(xc, vshi, vnegc));
    r[u] = V::fmadd(xc, vslo, V::fmadd(xc, vshi, V::sub(vnegc, n[u])));  // -(c + n): exact
    m[u] = V::set1(kTaylor2[7]);
  }
  SSM_UNROLL
  for (int k = 6; k >= 0; --k) {
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) m[u] = V::fmadd(m[u], r[u], V::set1(kTaylor2[k]));
  }
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) m[u] = times_pow2<V>(m[u], n[u]);
}

template <class V, class VW, size_t P>
void mass_estimate_narrow_p(const float* x, size_t n, const NarrowReduction& nr, const double* pivot, double clo,
                            double chi, double* out, size_t cap, MassEstimate* res) {
  constexpr size_t W = V::width;
  const Reg<V> vpivot = V::set1(P > 0 ? float_at_most(pivot[0]) : 0.0f);
  const Reg<V> vclo = V::set1(float_at_most(clo)), vchi = V::set1(float_at_most(chi)), ninf = V::set1(-kInf);
  // float64 accumulators, lanes of the low and high halves: above, rest
  Reg<VW> above_lo = VW::set1(0.0), above_hi = above_lo, rest_lo = above_lo, rest_hi = above_lo;
  uint64_t count = res->count;
  auto body = [&](auto unroll, const Reg<V>* xv, const float* p, size_t lanes) SSM_INLINE {
    constexpr size_t U = decltype(unroll)::value;
    Reg<V> m[U];
    [[maybe_unused]] Reg<V> a[U];
    narrow_masses<V, U>(xv, nr, m);
    if constexpr (P > 0) {
      SSM_UNROLL
      for (size_t u = 0; u < U; ++u) {
        const auto gt = V::gt(xv[u], vpivot);
        a[u] = keep<V>(gt, m[u]);
        m[u] = drop<V>(gt, m[u]);
      }
    }
    // pairwise trees: log2(U) float32 roundings per element
    SSM_UNROLL
    for (size_t w = U / 2; w >= 1; w /= 2) {
      SSM_UNROLL
      for (size_t u = 0; u < w; ++u) {
        m[u] = V::add(m[u], m[u + w]);
        if constexpr (P > 0) a[u] = V::add(a[u], a[u + w]);
      }
    }
    add_wide<V, VW>(m[0], rest_lo, rest_hi);
    if constexpr (P > 0) add_wide<V, VW>(a[0], above_lo, above_hi);
    collect_range<V, U>(xv, vclo, vchi, ninf, p, lanes, clo, chi, out, cap, count);
  };
  constexpr size_t U = kMassUnroll;
  static_assert((U & (U - 1)) == 0, "the trees pair vectors");
  size_t i = 0;
  for (; i + U * W <= n; i += U * W) {
    Reg<V> xv[U];
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) xv[u] = V::load(x + i + u * W);
    body(std::integral_constant<size_t, U>{}, xv, x + i, U * W);
  }
  for (; i < n; i += W) {
    alignas(64) float buf[W];
    copy_padded(buf, W, 0, x + i, n - i, -kInfFloat);
    const Reg<V> xv = V::load(buf);
    body(std::integral_constant<size_t, 1>{}, &xv, buf, W);
  }
  res->count = count;
  // Float64 roundings, all of positive terms: a lane's chain of at most
  // n / (U W) + U adds (the tail one vector at a time), then 2 VW::width
  // lanes, then the product by undo
  // (one more), each at most 2^-53 of the final sum.
  const double elements = static_cast<double>(n + W);
  const double chain = elements / static_cast<double>(U * W) + 2 * VW::width + 8;
  const double round = chain * 0x1p-53 * (1 + 0x1p-40);
  const double above = lanes_sum<VW>(above_lo, above_hi) * nr.undo, rest = lanes_sum<VW>(rest_lo, rest_hi) * nr.undo;
  const double total = above + rest;
  res->total += total;
  res->total_round += round * (above + rest) + (total + res->total) * 0x1p-53 * (1 + 0x1p-40);
  if constexpr (P > 0) {
    res->above[0] += above;
    res->above_round[0] += round * above + res->above[0] * 0x1p-53 * (1 + 0x1p-40);
  }
  res->rel = res->rel > kNarrowRel ? res->rel : kNarrowRel;
  res->abs += elements * kEstimateAbs;
}

// The estimate for float32 rows: in float32 lanes where narrow_reduction
// allows (at most one pivot), else mass_pass's float64 estimate.
template <class V, class VW>
void mass_estimate_narrow(const float* x, size_t n, double ref, double inv_temp, const double* pivot, size_t pivots,
                          double clo, double chi, double* out, size_t cap, MassEstimate* res) {
  const NarrowReduction nr = pivots <= 1 ? narrow_reduction(ref, inv_temp) : NarrowReduction{};
  if (!nr.ok) return mass_pass<VW, float, MassEstimate>(x, n, ref, inv_temp, pivot, pivots, clo, chi, out, cap, res);
  if (pivots == 0) return mass_estimate_narrow_p<V, VW, 0>(x, n, nr, pivot, clo, chi, out, cap, res);
  return mass_estimate_narrow_p<V, VW, 1>(x, n, nr, pivot, clo, chi, out, cap, res);
}

// 2^(e 2^-23 - 127) with the mantissa linear between powers of two: the
// float32 whose bits are e rounded to an integer (Schraudolph's exp, 1999),
// for 2^23 <= e < 255 2^23 (other e: some value the caller discards).
inline float linear_pow2(float e) {
  if (!(e >= 0x1p23f && e < 0x1p31f)) return 0.0f;
  const int32_t bits = static_cast<int32_t>(std::nearbyint(e));
  float m;
  std::memcpy(&m, &bits, sizeof m);
  return m;
}
#if defined(__AVX512F__)
inline __m512 linear_pow2(__m512 e) { return _mm512_castsi512_ps(_mm512_cvtps_epi32(e)); }
#endif
#if defined(__AVX2__)
inline __m256 linear_pow2(__m256 e) { return _mm256_castsi256_ps(_mm256_cvtps_epi32(e)); }
#endif
#if defined(SSM_NEON_TYPES)  // vecmath_neon.h: the NEON files only
inline float32x4_t linear_pow2(float32x4_t e) { return vreinterpretq_f32_s32(vcvtnq_s32_f32(e)); }
#endif

// top-p's draw-first test (the driver's sample_row): the masses of a float32
// row above and not above one pivot, coarsely, relative to a reference ref
// that need not be the max (the winner's value: the pass finds the max
// itself, so that the row needs no max pass before it). In log2 units
// y = (x - ref) s, s = inv_temp log2(e), computed as e = max(fma(x, s 2^23,
// (127 - ref s) 2^23), 2^23) = (y + 127) 2^23 (clamped at y = -126) with
// both constants rounded to float32, the mass is linear_pow2(e) = 2^n (1 + f)
// for y = n + f, 0 <= f < 1, times kCoarseScale. Per element, against
// 2^((x - ref) s):
//  * e's roundings (s 2^23 and the constant to float32, the fma, the
//    integer), while |x s| <= 2^13 and |ref s| <= 2^12: at most 2^-11 +
//    2^-12 + 2^-17 + 2^-23 < 7.41e-4 in log2 units, a factor a = 2^(+-7.41e-4);
//  * 1 + f against 2^f: a factor in [1, R], R = max (1 + f) / 2^f = 1.061476
//    (at f = 1 / ln 2 - 1);
// so the true mass over the estimate lies in [1 / (c R a), a / c] with c =
// kCoarseScale = 0.97106 (which about centres it): within [0.96966,
// 1.03034], i.e. within 0.0304 < kCoarseRel of the estimate (kCoarseRel,
// sample_api.h).
// Elements with y clamped at -126 weigh below 2^-124 either way.
// The sums: float32 lanes over kCoarseBlock vectors (each add's rounding at
// most 2^-24 of the lane's block sum), then float64 lanes; round bounds their
// distance from the real sums of the estimates. Valid while every x is at
// most ref + 127 / s (2^n a normal float): the caller checks that against the
// returned max (or knows: its ref is the max, or the Gumbel winner, which
// no value lies 50 binary orders above, see sample_driver.cpp's
// top_p_keeps, and then takes Max = false: the pass keeps no running max).
// False (nothing added) when |ref s| > 2^12 or s < 2^-60.
constexpr size_t kCoarseBlock = 64;
constexpr double kCoarseScale = 0.97106;

// The lines of [p, p + bytes) prefetched evenly over a loop of `steps`
// steps, one step() each: the pass is compute-bound (on Zen 3, AVX2, about
// 21 us for a 151,936-value row from L2/L3) while the next row's draw waits
// on DRAM (about 48 us cold, 40 with its first 256 KiB in cache, 33 warm),
// so the memory system fetches the next row's start during the pass.
struct SpreadPrefetch {
  const char* p = nullptr;
  const char* end = nullptr;
  size_t per = 0, every = 1, left = 1;
  SpreadPrefetch(const void* start, size_t bytes, size_t steps) {
    const size_t lines = (bytes + 63) / 64;
    if (start == nullptr || lines == 0 || steps == 0) return;
    p = static_cast<const char*>(start);
    end = p + lines * 64;
    if (lines >= steps) {
      per = (lines + steps - 1) / steps;
    } else {
      per = 1;
      every = left = steps / lines;
    }
  }
  SSM_INLINE inline void step() {
    if (--left != 0) return;
    left = every;
    for (size_t k = 0; k < per && p < end; ++k, p += 64) SSM_PREFETCH(p);
  }
};

template <class V, class VW, bool Max>
bool mass_coarse_pass(const float* x, size_t n, double ref, double inv_temp, double pivot, CoarseMass* res,
                      const float* next, size_t next_n) {
  constexpr size_t W = V::width, U = CoarseTuning<V>::unroll;
  const double s = inv_temp * ExpCoeffs<double>::log2e;
  if (!(s >= 0x1p-60 && s <= 0x1p60 && std::fabs(ref) * s <= 0x1p12)) return false;
  SpreadPrefetch prefetch(next, next_n * sizeof(float), n / (U * W));
  const Reg<V> vs = V::set1(static_cast<float>(s * 0x1p23)), vc = V::set1(static_cast<float>((127 - ref * s) * 0x1p23));
  const Reg<V> vpivot = V::set1(float_at_most(pivot)), vfloor = V::set1(0x1p23f);
  Reg<VW> above_lo = VW::set1(0.0), above_hi = above_lo, total_lo = above_lo, total_hi = above_lo;
  // the running max per vector in flight: one register for all of them is
  // a chain of dependent maxes, 4 cycles a vector (AVX-512), as long as the
  // rest of a vector's work
  Reg<V> vmax[U];
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) vmax[u] = V::set1(-kInfFloat);
  // a: the masses above the pivot, t: all of them (not the rest apart: one
  // add and no mask complement fewer per vector; rest = t - a at the end)
  auto masses = [&](Reg<V> xv, Reg<V>& a, Reg<V>& t, [[maybe_unused]] Reg<V>& mx) SSM_INLINE {
    if constexpr (Max) mx = V::max(mx, xv);
    const Reg<V> m = linear_pow2(V::max(V::fmadd(xv, vs, vc), vfloor));
    a = add_where<V>(V::gt(xv, vpivot), a, m);
    t = V::add(t, m);
  };
  size_t i = 0;
  while (i + U * W <= n) {
    const size_t stop = n - (n - i) % (U * W), block = i + kCoarseBlock * U * W;
    const size_t end = block < stop ? block : stop;  // no std::min: no std template instances in ISA objects
    Reg<V> a[U], t[U];
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) a[u] = t[u] = V::set1(0.0f);
    for (; i < end; i += U * W) {
      SSM_UNROLL
      for (size_t u = 0; u < U; ++u) masses(V::load(x + i + u * W), a[u], t[u], vmax[u]);
      prefetch.step();
    }
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) {
      add_wide<V, VW>(a[u], above_lo, above_hi);
      add_wide<V, VW>(t[u], total_lo, total_hi);
    }
  }
  {
    Reg<V> a = V::set1(0.0f), t = a;
    for (; i < n; i += W) {
      alignas(64) float buf[W];
      copy_padded(buf, W, 0, x + i, n - i, -kInfFloat);  // reads x[i, n) only
      masses(V::load(buf), a, t, vmax[0]);
    }
    // the tail's -inf lanes count as clamped elements (2^-126 each), below any bound
    add_wide<V, VW>(a, above_lo, above_hi);
    add_wide<V, VW>(t, total_lo, total_hi);
  }
  if constexpr (Max) {
    SSM_UNROLL
    for (size_t u = 1; u < U; ++u) vmax[0] = V::max(vmax[0], vmax[u]);
    double mx[W];
    V::to_array(vmax[0], mx);
    for (size_t l = 0; l < W; ++l)
      if (static_cast<double>(mx[l]) > res->max) res->max = static_cast<double>(mx[l]);
  }
  const double above = lanes_sum<VW>(above_lo, above_hi) * kCoarseScale;
  const double total = lanes_sum<VW>(total_lo, total_hi) * kCoarseScale;
  // The rest, and the sums' rounding: the two trees' roundings are at most
  // the bound below of the above and of the total sum (above <= total), so
  // above is within it of its real sum and above + rest (total, up to the
  // subtraction's and that add's roundings, 2 ulps) too, which is all the
  // caller uses: float32 blocks, then a float64 chain per lane of one add
  // per block, the lanes' sum, those 2 roundings and the caller's adds of
  // chunks. rest >= 0 (a real sum of masses is), so clamping keeps it within.
  const double rest = total > above ? total - above : 0.0;
  const double chain = static_cast<double>(n) / static_cast<double>(kCoarseBlock * U * W) + 2 * VW::width + 10;
  res->round += (static_cast<double>(kCoarseBlock) * 0x1p-24 + chain * 0x1p-53) * (above + rest) * (1 + 0x1p-20);
  res->above += above;
  res->rest += rest;
  res->count += n;
  return true;
}

template <class V, class VW>
bool mass_coarse(const float* x, size_t n, double ref, double inv_temp, double pivot, bool find_max,
                 CoarseMass* res, const float* next, size_t next_n) {
  return find_max ? mass_coarse_pass<V, VW, true>(x, n, ref, inv_temp, pivot, res, next, next_n)
                  : mass_coarse_pass<V, VW, false>(x, n, ref, inv_temp, pivot, res, next, next_n);
}

// The values in (clo, chi] without their masses (top-p's second zone when
// the first missed): one test per 4 vectors, then only the lanes of those
// vectors whose bits are set (lane_bits), each checked exactly in float64.
// The vector test runs on bounds widened to T's values (the largest T <=
// clo, the smallest T >= chi; exact in V's lanes), so its bits hold every
// lane of the range: the same values in the same order as a test of every
// lane. A group with more than half its lanes flagged (a short row
// collected whole) still has every lane tested: walking the bits cost more
// there (avx2, callgrind, 2000 x 1000 and 500 x 4000 top-p rows: collect
// 4.97M -> 6.89M instructions). (Was: every lane of a group once any was in
// range. A zone holds ~4% of a 151,936-value N(0, 1) row, so ~3 in 4 groups
// have one: 6.7 -> 2.9 instructions per element of the row, avx2.)
template <class V, class T>
uint64_t collect(const T* x, size_t n, double clo, double chi, double* out, size_t cap) {
  constexpr size_t W = V::width, U = 4;
  double wlo = clo, whi = chi;
  if constexpr (std::is_same<T, float>::value) {
    wlo = static_cast<double>(float_at_most(clo));
    whi = -static_cast<double>(float_at_most(-chi));
  }
  const Reg<V> vlo = V::set1(wlo), vhi = V::set1(whi), ninf = V::set1(-kInf);
  uint64_t count = 0;
  auto take = [&](double v) {
    if (!(v > clo && v <= chi)) return;
    if (count < cap) out[count] = v;
    ++count;
  };
  auto lanes = [&](const T* p, uint32_t bits) {
    for (; bits != 0; bits &= bits - 1) take(static_cast<double>(p[__builtin_ctz(bits)]));
  };
  size_t i = 0;
  for (; i + U * W <= n; i += U * W) {
    typename V::mask in[U];
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) in[u] = in_open<V>(V::load(x + i + u * W), vlo, vhi, ninf);
    typename V::mask any = in[0];
    SSM_UNROLL
    for (size_t u = 1; u < U; ++u) any = V::mask_or(any, in[u]);
    if (!V::any(any)) continue;
    uint32_t bits[U];
    size_t set = 0;
    for (size_t u = 0; u < U; ++u) set += static_cast<size_t>(__builtin_popcount(bits[u] = lane_bits(in[u], W)));
    if (2 * set > U * W) {  // mostly in range (a short row collected whole): every lane, no bit walk
      for (size_t l = 0; l < U * W; ++l) take(static_cast<double>(x[i + l]));
    } else {
      for (size_t u = 0; u < U; ++u) lanes(x + i + u * W, bits[u]);
    }
  }
  for (; i < n; ++i) take(static_cast<double>(x[i]));
  return count;
}

// U vectors at a time for the chains' overlap (see mass_pieces), the tail
// padded with -inf one vector at a time: the same bits per value.
template <class VW>
void value_mass(const double* v, size_t count, double ref, double inv_temp, FixedMass* out) {
  constexpr size_t W = VW::width, U = kMassUnroll;
  const Reg<VW> vref = VW::set1(ref), vinv = VW::set1(inv_temp);
  auto store = [&](const Reg<VW>& a, const Reg<VW>& b, size_t at) {
    double sa[W], sb[W];
    VW::to_array(a, sa);
    VW::to_array(b, sb);
    for (size_t l = 0; l < W && at + l < count; ++l) {
      out[at + l] = FixedMass{};
      fixed_add_pieces(out[at + l], static_cast<int64_t>(sa[l]), static_cast<int64_t>(sb[l]));
    }
  };
  size_t i = 0;
  for (; i + U * W <= count; i += U * W) {
    Reg<VW> xv[U], a[U], b[U];
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) xv[u] = VW::load(v + i + u * W);
    mass_pieces<VW, U>(xv, vref, vinv, a, b);
    for (size_t u = 0; u < U; ++u) store(a[u], b[u], i + u * W);
  }
  for (; i < count; i += W) {
    alignas(64) double buf[W];
    copy_padded(buf, W, 0, v + i, count - i, -kInf);  // reads v[i, count) only
    Reg<VW> a, b;
    const Reg<VW> xv = VW::load(buf);
    mass_pieces<VW, 1>(&xv, vref, vinv, &a, &b);
    store(a, b, i);
  }
}

// With no floor (-inf: the unfiltered draw, top-p's draw first) the
// unmasked walk, gumbel_argmax's own: the mask of -inf is the identity and
// costs a compare and a blend per vector of the walk's read.
template <class V, class R, class T>
TopkResult draw(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp, T floor,
                Candidate* out) {
  if (!(floor > -static_cast<T>(kInf)))
    return topk_pruned<V, R, T, false>(x, n, start, row, key, inv_temp, 1, out, -kInf, floor);
  return topk_pruned<V, R, T, true>(x, n, start, row, key, inv_temp, 1, out, -kInf, floor);
}

// The unmasked draw's k best (top-p's next candidates after a dropped winner).
template <class V, class R, class T>
TopkResult draw_best(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp,
                     size_t k, Candidate* out) {
  return topk_pruned<V, R, T, false>(x, n, start, row, key, inv_temp, k, out, -kInf, T(0));
}

// The score topk() computes for element i, (x inv + g gs) in T arithmetic
// with the same two roundings and the same constants, for a few elements:
// each one's gate word from its own Philox block, kBatch blocks at a time
// (its top flag from the group's open stream when the gate is open, ~1.5% of
// groups), then the fine words and the noise kBatch elements at a time, as
// topk_pruned's pending batches (the same function of the word and flag
// whatever the lane).
template <class V, class R, class T>
Candidate draw_at(const T* x, const uint64_t* index, size_t count, uint64_t row, const GumbelKey& key,
                  double inv_temp) {
  constexpr size_t W = V::width;
  const double gs = noise_scale(inv_temp);
  const Reg<V> vinv = V::set1(gs == 0.0 ? 0.5 : inv_temp * gs), vgs = V::set1(gs);
  const RowNoise<R, T> src(row, key, false);
  PendingNoise<T> pend;
  Candidate best{-kInf, ~uint64_t{0}};
  auto flush = [&] {
    seal_batch(pend, src.c2, src.c3, src.k0, src.k1);
    for (size_t u = 0; u < pend.count; u += W) {
      Reg<V> c, corr, qb;
      noise_argument<V, R>(pend.words + u, pend.top + u, pend.has_top, c, corr, qb);
      const Reg<V> score = V::add(V::mul(V::load(pend.x + u), vinv), V::mul(gumbel_noise<V, R>(c, corr), vgs));
      double sc[W];
      V::to_array(score, sc);
      for (size_t l = 0; l < W && u + l < pend.count; ++l) {
        const uint64_t i = pend.index[u + l];
        if (sc[l] > best.score || (sc[l] == best.score && i < best.index)) best = Candidate{sc[l], i};
      }
    }
    pend.count = 0;
    pend.has_top = false;
  };
  // gate word of group G: word (G % 64) / 16 of gate block 16 (G / 64) + G % 16 (RowNoise::fill_gates),
  // the blocks of kBatch elements from one philox_lanes call (the lanes past count repeat the first)
  for (size_t j0 = 0; j0 < count; j0 += kBatch) {
    const size_t m = count - j0 < kBatch ? count - j0 : kBatch;
    alignas(64) uint32_t w0[kBatch], w1[kBatch], w2[kBatch], w3[kBatch];
    for (size_t l = 0; l < kBatch; ++l) {
      const uint64_t group = index[j0 + (l < m ? l : 0)] / 16, slot = group % kTile;
      const uint64_t block = kGateStream | (group / kTile * 16 + slot % 16);
      w0[l] = static_cast<uint32_t>(block);
      w1[l] = static_cast<uint32_t>(block >> 32);
      w2[l] = src.c2;
      w3[l] = src.c3;
    }
    philox_lanes<R>(w0, w1, w2, w3, kBatch, src.k0, src.k1);
    for (size_t l = 0; l < m; ++l) {
      const uint64_t i = index[j0 + l], group = i / 16, word = group % kTile / 16;
      const uint32_t gate = word == 0 ? w0[l] : word == 1 ? w1[l] : word == 2 ? w2[l] : w3[l];
      const bool top = gate >= kGateClosed && ((src.top_mask(group) >> (i % 16)) & 1u) != 0;
      if (pend.add(i, x[i], top)) flush();
    }
  }
  if (pend.count) flush();
  return best;
}

// SampleKernels::rows_topk: batches of kRowsTopkBatch rows (several vectors'
// lanes of rows per pass of best_k_of_rows), each row's NaN by one pass.
constexpr size_t kRowsTopkMaxN = 64, kRowsTopkMaxK = 16, kRowsTopkBatch = 64;

template <class V, class T>
void rows_topk(const T* x, size_t rows, size_t n, size_t k, T* value, int64_t* index, uint8_t* nan) {
  alignas(64) T b[kRowsTopkMaxK * kRowsTopkBatch], v[kRowsTopkBatch];
  alignas(64) uint32_t a[kRowsTopkMaxK * kRowsTopkBatch];
  if (k == 0 || k > kRowsTopkMaxK || k > n || n > kRowsTopkMaxN) return;
  for (size_t r0 = 0; r0 < rows; r0 += kRowsTopkBatch) {
    const size_t m = rows - r0 < kRowsTopkBatch ? rows - r0 : kRowsTopkBatch;
    const T* xb = x + r0 * n;
    best_k_of_rows<T, true>(xb, m, n, k, b, a, v);
    for (size_t r = 0; r < m; ++r) {
      bool odd = false;
      for (size_t e = 0; e < n; ++e) odd |= xb[r * n + e] != xb[r * n + e];
      nan[r0 + r] = odd ? 1 : 0;
      for (size_t j = 0; j < k; ++j) {
        value[(r0 + r) * k + j] = b[j * m + r];
        index[(r0 + r) * k + j] = static_cast<int64_t>(a[j * m + r]);
      }
    }
  }
}

// V: the data's lanes; VW: float64 lanes for the masses (V itself for float64).
template <class V, class VW, class R, class T>
SampleKernels<T> make_sample_kernels() {
  SampleKernels<T> k;
  k.select = &select<V, T>;
  k.mass_pass = &mass_pass<VW, T, MassPass>;
  if constexpr (std::is_same<T, float>::value)
    k.mass_estimate = &mass_estimate_narrow<V, VW>;
  else
    k.mass_estimate = &mass_pass<VW, T, MassEstimate>;
  k.mass_estimate_fine = &mass_pass<VW, T, MassEstimate>;
  if constexpr (std::is_same<T, float>::value) {
    k.mass_coarse = &mass_coarse<V, VW>;
    k.coarse_next_bytes = CoarseTuning<V>::next_bytes;
  } else {
    k.mass_coarse = nullptr;
    k.coarse_next_bytes = 0;
  }
  k.collect = &collect<V, T>;
  k.value_mass = &value_mass<VW>;
  k.draw = &draw<V, R, T>;
  k.draw_best = &draw_best<V, R, T>;
  k.draw_at = &draw_at<V, R, T>;
  k.short_topk = ShortTopk<V, T>::run;
  k.short_topk_max_k = ShortTopk<V, T>::max_k;
  // SIMD sets only (256-bit lanes and up). Zen 5, python bench/topk_short_rows.py,
  // ns per element, without -> with: avx2 topk n = 8 k = 2 5.9 -> 1.2, 16/4
  // 5.3 -> 1.6, 64/8 3.0 -> 1.9, sample(top_k) 8/2 11.3 -> 7.0 (callgrind: 25.1
  // instructions per element against 23.0 at 8/2, the old scan's branches
  // mispredicted); scalar topk 16/4 7.5 -> 11.7, 32/8 8.4 -> 21.8
  constexpr bool wide = V::width * sizeof(T) >= 32;
  k.rows_topk = wide ? &rows_topk<V, T> : nullptr;
  k.rows_topk_max_n = wide ? kRowsTopkMaxN : 0;
  return k;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
