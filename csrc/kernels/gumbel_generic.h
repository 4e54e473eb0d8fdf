// The Gumbel family's kernels, written once over a lane type V and the ISA's
// random primitives R (random_<isa>.h), compiled once per instruction set by
// gumbel_<isa>.cpp (same namespace rules as simd_loops.h).
//
// Noise. Element i of row r (group G = i/16 of 16 elements) gets a uniform
// u from three Philox4x32-10 streams, all with counter high words
// r + row_offset:
//   fine word f   = word (i%64)/16 of block 16*(i/64) + i%16,
//   gate word A_G = word (G%64)/16 of block 2^63 + 16*(G/64) + G%16,
//   open group G: words 0..11 of blocks 2^62 + 4G + b, b = 0, 1, 2.
// Element i is "top" (u >= 1 - 2^-12) with probability 2^-12, independently:
// its group holds a top element iff A_G >= kGateClosed ~ 2^32 (1 - 2^-12)^16
// (the probability that none of 16 is top, exact to 2^-32); then the first
// top element J is word 0 of the group's blocks against the thresholds
// kFirstTop (P(J <= j | open), same precision), and each element m > J is
// top iff the low 12 bits of 16-bit half m + 1 of those words are all ones.
// The common case, a closed group (99.6%), costs one gate word per 16
// elements and no other bits.
//   not top: u = (1 - 2^-12)(f + 1/2) 2^-32, q = 1 - u formed from ~f;
//   top:     q = 1 - u = (~f + 1/2) 2^-44.
// u and q never reach 0 or 1 and both tails keep full precision: E = -log u
// uses log(u) for u <= 1/2 and log1p(-q) (log of c = fl(1-q) plus the exact
// rounding error of c) above; g = -log E. Bounds: u >= (1 - 2^-12) 2^-33 and
// q >= 2^-45, so g lies in [-3.13, 45 ln 2 = 31.19].
//
// Exact pruning, in two levels. -log u >= 1 - u = q, so g <= -log q <=
// -floor(log2 q) ln 2: the exponent of q bounds an element's score. An
// element that is not top has q >= 2^-12, so g < 12 ln 2: a closed group
// (most groups) is ruled out by its largest logit and its gate word alone,
// before its fine words are generated. A vector whose bounds are all <= the
// current k-th best score cannot place (ties go to the lower index, and
// later elements have higher ones), so its logs are skipped.
//
// Bit-identity. Only exact operations (exponent/mantissa extraction, scaling
// by powers of two), correctly rounded + - * / and fused multiply-adds are
// used, in the same order on every kernel set; gumbel_softmax sums in 64
// fixed slots (element i -> slot i % 64) combined in slot order.
#ifndef SSM_ISA
#error "define SSM_ISA (and include the ISA's random_<isa>.h) before including gumbel_generic.h"
#endif
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "exp_core.h"
#include "gumbel_api.h"
#include "philox_constants.h"
#include "topk_lanes.h"

namespace ssm {
namespace SSM_ISA {
namespace {

constexpr size_t kTile = 64;

// The complemented fine words ~f of one vector, as T (top elements' q).
template <class V, class R>
inline Reg<V> complement_words(const uint32_t* w) {
  if constexpr (sizeof(typename V::scalar) == 4)
    return R::complement_f32(w);
  else
    return R::complement_f64(w);
}

// log(y) for normal y > 0: y = 2^e m, m in [sqrt(1/2), sqrt(2)), f = m - 1
// (exact). float32: log(1 + f) = f + f^2 (-1/2 + f P(f)), P of degree 7
// fitted by tools/fit_log.py (7.9e-9 relative, no division: a vector divide
// costs as much as the rest of the log). float64: 2 atanh(s), s = f / (2 + f),
// z = s^2, = 2s + s z P(z), P the atanh series (|s| < 0.1716: < 2^-60).
template <class V, class R>
inline Reg<V> log_positive(Reg<V> y) {
  using S = typename V::scalar;
  Reg<V> e = R::exponent(y), m = R::mantissa(y);
  const auto big = V::gt(m, V::set1(1.4142135623730951));
  m = V::select(big, V::mul(m, V::set1(0.5)), m);
  e = V::select(big, V::add(e, V::set1(1.0)), e);
  const Reg<V> f = V::sub(m, V::set1(1.0));
  Reg<V> l;
  if constexpr (sizeof(S) == 4) {
    constexpr double c[8] = {0x1.555554p-2,  -0x1.000228p-2, 0x1.99a008p-3,  -0x1.547244p-3,
                             0x1.22da22p-3,  -0x1.0d8552p-3, 0x1.055b46p-3,  -0x1.38b4ccp-4};
    // Estrin's scheme: a third of Horner's dependency chain
    const Reg<V> f2 = V::mul(f, f), f4 = V::mul(f2, f2);
    const Reg<V> a0 = V::fmadd(V::set1(c[1]), f, V::set1(c[0])), a1 = V::fmadd(V::set1(c[3]), f, V::set1(c[2]));
    const Reg<V> a2 = V::fmadd(V::set1(c[5]), f, V::set1(c[4])), a3 = V::fmadd(V::set1(c[7]), f, V::set1(c[6]));
    const Reg<V> p = V::fmadd(V::fmadd(a3, f2, a2), f4, V::fmadd(a1, f2, a0));
    l = V::fmadd(f2, V::fmadd(f, p, V::set1(-0.5)), f);
  } else {
    const Reg<V> s = R::div(f, V::add(f, V::set1(2.0)));
    const Reg<V> z = V::mul(s, s);
    constexpr int terms = 9;  // 2/(2j+1), j = 1..9
    Reg<V> p = V::set1(2.0 / (2 * terms + 1));
    for (int j = terms - 1; j >= 1; --j) p = V::fmadd(p, z, V::set1(2.0 / (2 * j + 1)));
    l = V::fmadd(V::mul(s, z), p, V::add(s, s));
  }
  using C = ExpCoeffs<S>;
  return V::fmadd(e, V::set1(C::ln2_hi), V::fmadd(e, V::set1(C::ln2_lo), l));
}

// Upper bound of g from q (see the header comment; +1e-3 covers rounding).
template <class V, class R>
inline Reg<V> noise_bound(Reg<V> q) {
  return V::fmadd(R::exponent(q), V::set1(-0.6931471805599453), V::set1(1e-3));
}

constexpr double kTopP = 0x1p-12;  // probability of a top element

// The bound for an element that is not top: q >= 2^-12.
constexpr double kNotTopBound = 12 * 0.6931471805599453 + 1e-3;

// The folded fine words of one vector (R::fold_f32/f64): v = f, or ~f where
// f >= 2^31 (hi), as T.
template <class V, class R>
inline Reg<V> fold_words(const uint32_t* w, typename V::mask& hi) {
  if constexpr (sizeof(typename V::scalar) == 4)
    return R::fold_f32(w, hi);
  else
    return R::fold_f64(w, hi);
}

constexpr double kUScale = (1 - kTopP) * 0x1p-32;
constexpr double kUOffset = (1 - kTopP) * 0x1p-33;        // u = v kUScale + kUOffset (f < 2^31)
constexpr double kQOffset = (1 - kTopP) * 0x1p-33 + kTopP;  // q = v kUScale + kQOffset (f >= 2^31, v = ~f)

// The argument of the first log for one vector: c = u where f < 2^31 (then
// u < 1/2), else c = fl(1 - q) with corr the correction of log c: fl(1 - q)
// plus its exact rounding error, divided by c ~ multiplied by 2 - c (the
// error term is below 2^-25, so the approximation costs < 2^-27). qb is q, or
// 1/2 where u < 1/2, for the pruning bound (noise_bound(1/2) = ln 2 exceeds
// every g there, which is below -log(ln 2) = 0.37). has_top: some element of
// the tile is top (1.5% of tiles); only then are the top flags read, and a
// top element's q comes from its whole complemented word.
template <class V, class R, class T>
inline void noise_argument(const uint32_t* w, const T* top, bool has_top, Reg<V>& c, Reg<V>& corr, Reg<V>& qb) {
  typename V::mask hi;
  const Reg<V> v = fold_words<V, R>(w, hi);
  Reg<V> t = V::fmadd(v, V::set1(kUScale), V::select(hi, V::set1(kQOffset), V::set1(kUOffset)));  // u or q
  if (has_top) {
    const auto is_top = V::gt(V::load(top), V::set1(0.5));
    t = V::select(is_top, V::fmadd(complement_words<V, R>(w), V::set1(0x1p-44), V::set1(0x1p-45)), t);
    hi = V::mask_or(hi, is_top);
  }
  const Reg<V> one = V::set1(1.0), zero = V::set1(0.0);
  c = V::select(hi, V::sub(one, t), t);
  const Reg<V> err = V::sub(V::sub(zero, t), V::sub(c, one));
  corr = V::select(hi, V::mul(err, V::sub(V::set1(2.0), c)), zero);
  qb = V::select(hi, t, V::set1(0.5));
}

// -log u = -(log c + corr), for the argument above.
template <class V, class R>
inline Reg<V> minus_log_u(Reg<V> c, Reg<V> corr) {
  return V::sub(V::set1(0.0), V::add(log_positive<V, R>(c), corr));
}

// g = -log(-log u) for one vector, given its argument.
template <class V, class R>
inline Reg<V> gumbel_noise(Reg<V> c, Reg<V> corr) {
  return V::sub(V::set1(0.0), log_positive<V, R>(minus_log_u<V, R>(c, corr)));
}

// One Philox4x32-10 block in plain 64-bit integer arithmetic (the same
// function as R::philox16's lanes), for the rare open groups.
inline void philox_block(uint64_t block, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out) {
  uint32_t x0 = static_cast<uint32_t>(block), x1 = static_cast<uint32_t>(block >> 32), x2 = c2, x3 = c3;
  for (uint32_t round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(x0) * kPhiloxM0, p1 = static_cast<uint64_t>(x2) * kPhiloxM1;
    x0 = static_cast<uint32_t>(p1 >> 32) ^ x1 ^ (k0 + round * kPhiloxW0);
    x2 = static_cast<uint32_t>(p0 >> 32) ^ x3 ^ (k1 + round * kPhiloxW1);
    x1 = static_cast<uint32_t>(p1);
    x3 = static_cast<uint32_t>(p0);
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

constexpr uint64_t kGateStream = uint64_t{1} << 63;  // block-counter bits of the gate ...
constexpr uint64_t kOpenStream = uint64_t{1} << 62;  // ... and open-group streams

// The top elements of an open group, as a 16-bit mask, from its 12 words
// (word j of block b at w[4 b + j]) ...
inline unsigned top_mask_of_words(const uint32_t* w) {
  unsigned first = 0;
  for (uint32_t t : kFirstTop) first += w[0] >= t ? 1u : 0u;
  unsigned mask = 1u << first;
  for (unsigned m = first + 1; m < 16; ++m) {
    const unsigned h = m + 1;  // 16-bit half h of the words
    if (((w[h / 2] >> (16 * (h % 2))) & 0xFFFu) == 0xFFFu) mask |= 1u << m;
  }
  return mask;
}

// ... of open group `group` of the row with counter high words (c2, c3).
inline unsigned open_group_top_mask(uint64_t group, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  uint32_t w[12];
  for (uint64_t b = 0; b < 3; ++b) philox_block(kOpenStream | (4 * group + b), c2, c3, k0, k1, w + 4 * b);
  return top_mask_of_words(w);
}

// The words of one row: the gate words of the current span of 16 tiles
// (1024 elements, filled by the walker below) and, evaluated on demand, the
// fine words and top flags of one tile.
//
// Streaming (every tile visited, gumbel_softmax): the fine words come two
// tiles at a time, and each pair's when the previous pair starts, so the
// Philox rounds' latency hides behind two tiles' arithmetic instead of
// stalling the loads that follow (about 8% faster per element). Top-k
// visits few tiles and makes only the tile's own words.
template <class R, class T>
struct RowNoise {
  uint32_t c2, c3, k0, k1;
  bool stream;
  uint64_t fine_tile = ~uint64_t{0}, fine_pair = ~uint64_t{0}, next_pair = ~uint64_t{0};
  alignas(64) uint32_t gates[kTile];              // group G's gate word at [G % 64]
  alignas(64) uint32_t pair_words[2][2 * kTile];  // fine words of tile pairs fine_pair, next_pair
  unsigned cur = 0;                               // pair_words[cur]: fine_pair's
  const uint32_t* words = pair_words[0];          // fine_tile's, element e at [e]
  alignas(64) T top[kTile] = {};                  // its top flags
  bool top_set = false;                           // is any of them 1?
  RowNoise(uint64_t row, const GumbelKey& key, bool streaming)
      : c2(static_cast<uint32_t>(row + key.row_offset)),
        c3(static_cast<uint32_t>((row + key.row_offset) >> 32)),
        k0(key.k0),
        k1(key.k1),
        stream(streaming) {}
  // Tiles first_tile..last_tile hold the chunk: a pair's tile outside it is
  // not drawn (a short row needs one tile's 16 blocks, not a pair's 32, and
  // no next pair).
  uint64_t first_tile = 0, last_tile = ~uint64_t{0};
  void fill_pair(uint64_t pair, uint32_t* out) const {
    const uint64_t t0 = 2 * pair;
    const bool lo = t0 >= first_tile && t0 <= last_tile, hi = t0 + 1 >= first_tile && t0 + 1 <= last_tile;
    if (lo && hi)
      R::philox32(pair * 32, c2, c3, k0, k1, out);
    else if (lo)
      R::philox16(pair * 32, c2, c3, k0, k1, out);
    else if (hi)
      R::philox16(pair * 32 + 16, c2, c3, k0, k1, out + kTile);
  }
  void fill_gates(uint64_t tile) { R::philox16(kGateStream | (tile / 16 * 16), c2, c3, k0, k1, gates); }
  // Does group G (of the current span) hold a top element? Tile t's 4 groups?
  bool open(uint64_t group) const { return gates[group % kTile] >= kGateClosed; }
  bool tile_open(uint64_t tile) const {
    const uint32_t* g = gates + (tile * 4) % kTile;
    return (g[0] >= kGateClosed) | (g[1] >= kGateClosed) | (g[2] >= kGateClosed) | (g[3] >= kGateClosed);
  }
  // The top elements of an open group, as a 16-bit mask.
  unsigned top_mask(uint64_t group) const { return open_group_top_mask(group, c2, c3, k0, k1); }
  // Fine words and top flags of tile t. Not inlined: pruning makes it rare,
  // and the loop around it stays small.
  SSM_NOINLINE void fill_tile(uint64_t tile) {
    if (!stream) {
      R::philox16(tile * 16, c2, c3, k0, k1, pair_words[0]);
      words = pair_words[0];
    } else {
      const uint64_t pair = tile / 2;
      if (pair != fine_pair) {
        if (pair == next_pair)
          cur ^= 1u;
        else
          fill_pair(pair, pair_words[cur]);
        fine_pair = pair;
        fill_pair(pair + 1, pair_words[cur ^ 1u]);
        next_pair = pair + 1;
      }
      words = pair_words[cur] + (tile % 2) * kTile;
    }
    if (tile_open(tile) || top_set) {  // else the flags are all 0 already
      top_set = false;
      for (size_t g = 0; g < 4; ++g) {
        const unsigned mask = open(tile * 4 + g) ? top_mask(tile * 4 + g) : 0u;
        top_set = top_set || mask != 0;
        for (size_t l = 0; l < 16; ++l) top[16 * g + l] = static_cast<T>((mask >> l) & 1u);
      }
    }
    fine_tile = tile;
  }
  SSM_INLINE void load_tile(uint64_t tile) {
    if (tile != fine_tile) fill_tile(tile);
  }
};

// Visit every vector of the chunk, tile by tile: body(noise, tile, j, x_vec,
// goff, buf) where j is the vector's offset in its tile, x_vec its logits
// (-inf outside the chunk), goff the global index of lane 0; partial vectors
// (chunk head/tail) go through buf (else null) so no load or store crosses
// the chunk. skip(noise, tile, p) may rule out a whole tile inside the chunk
// (its 64 logits at p) before its vectors are visited. The input is prefetched
// ahead like the softmax passes. Stream: the noise streams its fine words
// ahead (see RowNoise); false where most tiles are skipped (top-k).
struct NoSkip {
  template <class Noise, class T>
  bool operator()(Noise&, uint64_t, const T*) const {
    return false;
  }
};

struct NoBegin {
  template <class Noise>
  void operator()(Noise&, uint64_t) const {}
};

template <class V, class R, class T, bool Stream = true, class Body, class Skip = NoSkip, class Begin = NoBegin>
inline void for_each_tile_vector(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key,
                                 Body&& body, Skip&& skip = Skip{}, Begin&& begin = Begin{}) {
  constexpr size_t W = V::width;
  if (n == 0) return;
  RowNoise<R, T> noise(row, key, Stream);
  const uint64_t end = start + n;
  noise.first_tile = start / kTile;
  noise.last_tile = (end - 1) / kTile;
  const size_t ahead = prefetch_distance(n * sizeof(T)) / sizeof(T);
  for (uint64_t tile = start / kTile; tile * kTile < end; ++tile) {
    if (tile % 16 == 0 || tile == start / kTile) noise.fill_gates(tile);
    const uint64_t t0 = tile * kTile;
    if (ahead && t0 >= start && t0 + kTile + ahead <= end) prefetch_block<kTile * sizeof(T)>(x + (t0 - start) + ahead);
    begin(noise, tile);
    if (t0 >= start && t0 + kTile <= end) {
      if (skip(noise, tile, x + (t0 - start))) continue;
      SSM_UNROLL
      for (size_t j = 0; j < kTile; j += W) body(noise, tile, j, V::load(x + (t0 - start) + j), t0 + j, static_cast<T*>(nullptr));
      continue;
    }
    for (size_t j = 0; j < kTile; j += W) {
      const uint64_t g0 = t0 + j;
      if (g0 + W <= start || g0 >= end) continue;
      if (g0 >= start && g0 + W <= end) {
        body(noise, tile, j, V::load(x + (g0 - start)), g0, static_cast<T*>(nullptr));
      } else {
        alignas(64) T buf[W];
        const uint64_t a = g0 > start ? g0 : start, b = g0 + W < end ? g0 + W : end;
        copy_padded(buf, W, static_cast<size_t>(a - g0), x + (a - start), static_cast<size_t>(b - a),
                    -static_cast<T>(kInf));
        body(noise, tile, j, V::load(buf), g0, buf);
      }
    }
  }
}

// A min-heap of the k best candidates (root = worst: lowest score, then
// highest index), hand-written so no std:: template is instantiated with AVX
// flags in this translation unit (ODR, see softmax_generic.h).
struct TopK {
  Candidate* heap;
  size_t k, size = 0;
  static bool better(const Candidate& a, const Candidate& b) {
    return a.score > b.score || (a.score == b.score && a.index < b.index);
  }
  double threshold() const { return size < k ? -kInf : heap[0].score; }
  void sift_down(size_t i) {
    for (;;) {
      size_t worst = i;
      const size_t l = 2 * i + 1, r = l + 1;
      if (l < size && better(heap[worst], heap[l])) worst = l;
      if (r < size && better(heap[worst], heap[r])) worst = r;
      if (worst == i) return;
      const Candidate t = heap[i];
      heap[i] = heap[worst];
      heap[worst] = t;
      i = worst;
    }
  }
  void offer(double score, uint64_t index) {
    const Candidate c{score, index};
    if (size < k) {
      size_t i = size++;
      heap[i] = c;
      while (i > 0 && better(heap[(i - 1) / 2], heap[i])) {
        const Candidate t = heap[i];
        heap[i] = heap[(i - 1) / 2];
        heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
      }
    } else if (better(c, heap[0])) {
      heap[0] = c;
      sift_down(0);
    }
  }
  // Best first, in place.
  void sort() {
    const size_t n = size;
    while (size > 1) {
      const Candidate t = heap[0];
      heap[0] = heap[size - 1];
      heap[size - 1] = t;
      --size;
      sift_down(0);
    }
    size = n;
  }
};

// 2^-s with 2^s the power of two just above inv_temp (1 for inv_temp <= 1):
// inv_temp 2^-s lies in [1/2, 1), so x inv_temp 2^-s cannot overflow.
// inv_temp = inf (T subnormal) gives 0: the noise drops out, as at T = 0.
inline double noise_scale(double inv_temp) {
  if (!(inv_temp > 1.0)) return 1.0;
  if (inv_temp == kInf) return 0.0;
  int e;
  std::frexp(inv_temp, &e);  // inv_temp = f 2^e, f in [1/2, 1)
  return std::ldexp(1.0, -e);
}

// A row's NaN and +inf flags (only looked for when a vector flagged one).
template <class T>
inline void find_bad(TopkResult& res, const T* x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    res.nan = res.nan || x[i] != x[i];
    res.posinf = res.posinf || x[i] > kMaxFinite<T>;
  }
}

// The walk's result: the candidates sorted, and, when a lane flagged a bad
// logit (rare: the call fails), which kind it was.
template <class T>
TopkResult finish_topk(TopK& best, bool any_bad, const T* x, size_t n) {
  TopkResult res;
  best.sort();
  res.count = best.size;
  if (any_bad) find_bad(res, x, n);
  return res;
}

// Does topk_lanes.h's vector insert take the k best of n scores of T in
// vectors of W lanes? k up to a vector's lanes (k <= 2 on short rows has its
// own interleaved path), local indices as the lanes' int32 (float) or int64.
template <class T, size_t W>
constexpr bool lane_topk_takes(size_t k, size_t n) {
  return TopkLanes<T>::width == W && k <= W && n < (size_t{1} << 31);
}

// The candidates in `list` (local index + start), best first, those above
// `floor` (the list's starting value: lanes never filled still hold it).
template <class L, class T>
TopkResult lane_topk_finish(const LaneTopk<L, T>& list, T floor, uint64_t start, Candidate* out) {
  alignas(64) T value[L::width];
  alignas(64) int64_t index[L::width];
  L::store(value, index, list.best, list.at, list.keep);
  TopkResult res;
  for (; res.count < list.k && value[res.count] > floor; ++res.count)
    out[res.count] = Candidate{static_cast<double>(value[res.count]), start + static_cast<uint64_t>(index[res.count])};
  return res;
}

// The unpruned walk: every element's noise and score, in index order (the
// reference the pruned kernel below must match bit for bit).
template <class V, class R, class T>
TopkResult topk_all(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp,
                    size_t k, Candidate* out, double min_score) {
  constexpr size_t W = V::width;
  if (k == 0) return TopkResult{};
  TopK best{out, k};
  // Scores are (x/T + g) 2^-s with 2^-s = noise_scale(inv_temp): an exact
  // power-of-two rescaling (same order, same ties, unless g 2^-s is
  // subnormal) that keeps x/T inside the data's range however small T is.
  const double gs = noise_scale(inv_temp);
  const Reg<V> vinv = V::set1(gs == 0.0 ? 0.5 : inv_temp * gs), vgs = V::set1(gs);
  const Reg<V> vmaxfinite = V::set1(static_cast<double>(kMaxFinite<T>));
  typename V::mask bad = V::none();  // NaN or +inf seen
  // Scores below min_score are not wanted: start from the largest score of
  // type T below it (tests are "score > thr", so min_score itself passes).
  const double ext = min_score > -kInf ? static_cast<double>(next_below(static_cast<T>(min_score))) : -kInf;
  if constexpr (TopkLanes<T>::width == W) {
    if (lane_topk_takes<T, W>(k, n)) {  // the k best in one vector: no branch per offer on the heap
      using L = TopkLanes<T>;
      const T floor = static_cast<T>(ext);
      LaneTopk<L, T> list(k, floor);
      for_each_tile_vector<V, R, T, false>(x, n, start, row, key, [&](RowNoise<R, T>& src, uint64_t tile, size_t j, Reg<V> xv, uint64_t g0, T*) SSM_INLINE {
        bad = V::mask_or(bad, V::not_le(xv, vmaxfinite));
        src.load_tile(tile);
        Reg<V> c, corr, qb;
        noise_argument<V, R>(src.words + j, src.top + j, src.top_set, c, corr, qb);
        alignas(64) T s[W];
        V::store(s, V::add(V::mul(xv, vinv), V::mul(gumbel_noise<V, R>(c, corr), vgs)));
        // lanes outside the chunk hold -inf: never placed
        for (uint32_t cand = L::above_all(s, list.vkth); cand != 0; cand &= cand - 1) {
          const size_t l = static_cast<size_t>(__builtin_ctz(cand));
          if (s[l] > list.kth) list.place(s[l], static_cast<size_t>(g0 + l - start));
        }
      });
      TopkResult res = lane_topk_finish(list, floor, start, out);
      if (V::any(bad)) find_bad(res, x, n);
      return res;
    }
  }
  double thr = ext;
  for_each_tile_vector<V, R, T, false>(x, n, start, row, key, [&](RowNoise<R, T>& src, uint64_t tile, size_t j, Reg<V> xv, uint64_t g0, T*) SSM_INLINE {
    bad = V::mask_or(bad, V::not_le(xv, vmaxfinite));
    src.load_tile(tile);
    Reg<V> c, corr, qb;
    noise_argument<V, R>(src.words + j, src.top + j, src.top_set, c, corr, qb);
    const Reg<V> score = V::add(V::mul(xv, vinv), V::mul(gumbel_noise<V, R>(c, corr), vgs));
    double s[W];
    V::to_array(score, s);
    for (size_t l = 0; l < W; ++l)
      if (s[l] > thr) {
        best.offer(s[l], g0 + l);
        thr = best.threshold() > ext ? best.threshold() : ext;
      }
  });
  return finish_topk(best, V::any(bad), x, n);
}

// The lanes of a comparison as bits (lane l -> bit l): AVX-512 and scalar
// masks are integers already, AVX2 has R::lane_bits (movemask), others go
// through the lanes.
template <class R, class M, class = void>
struct HasLaneBits : std::false_type {};
template <class R, class M>
struct HasLaneBits<R, M, std::void_t<decltype(R::lane_bits(std::declval<M>()))>> : std::true_type {};

// R::at_least_bits64 (which of 64 words reach a threshold, as bits, without
// a branch) where the kernel set has it.
template <class R, class = void>
struct HasAtLeastBits : std::false_type {};
template <class R>
struct HasAtLeastBits<R, std::void_t<decltype(&R::at_least_bits64)>> : std::true_type {};

// R::unordered(a, b) (the lanes where a or b is NaN: one compare for two
// vectors) where the kernel set has it for V, else two.
template <class V, class R, class = void>
struct HasUnordered : std::false_type {};
template <class V, class R>
struct HasUnordered<V, R, std::void_t<decltype(void(R::unordered(std::declval<Reg<V>>(), std::declval<Reg<V>>())))>>
    : std::true_type {};

template <class V, class R>
inline typename V::mask unordered(Reg<V> a, Reg<V> b) {
  if constexpr (HasUnordered<V, R>::value)
    return R::unordered(a, b);
  else
    return V::mask_or(V::unord(a), V::unord(b));
}

template <class V, class R>
inline unsigned lane_bits(typename V::mask m) {
  using M = typename V::mask;
  if constexpr (std::is_integral_v<M>) {
    return static_cast<unsigned>(m);
  } else if constexpr (HasLaneBits<R, M>::value) {
    return R::lane_bits(m);
  } else {
    double a[V::width];
    V::to_array(V::select(m, V::set1(1.0), V::set1(0.0)), a);
    unsigned bits = 0;
    for (size_t l = 0; l < V::width; ++l) bits |= (a[l] != 0.0 ? 1u : 0u) << l;
    return bits;
  }
}

// Elements whose noise is wanted, gathered kBatch at a time: each one's
// fine word comes from its own Philox block, the blocks of a batch in plain
// lane loops the compiler vectorizes (integer arithmetic: exact everywhere),
// and lane l of a noise vector computes the same function of the element's
// word and top flag whatever the lane, so gathering changes no bit.
constexpr size_t kBatch = 16;  // a multiple of every lane count

constexpr size_t kSparseLanes = 8;  // up to this many lanes of a tile: a Philox block each (see topk_pruned)

template <class T, size_t Batch = kBatch>
struct PendingNoise {
  static_assert(Batch % kBatch == 0, "whole vectors of every lane count");
  // Batch lanes a batch, plus room for one tile's sparse lanes past it
  // (add_lanes): count < Batch between calls, and the batch is flushed
  // (its first Batch lanes, the rest moved down: take_rest) as soon as
  // count reaches Batch.
  static constexpr size_t kCap = Batch + kSparseLanes;
  alignas(64) uint32_t words[Batch];
  alignas(64) T top[kCap];
  alignas(64) T x[kCap];
  alignas(64) uint64_t index[kCap];
  size_t count = 0;
  bool has_top = false;
  // Element i (logit xi, top flag); true when the batch is full. Only what
  // the element is: its block and word come from i in batch_words, for the
  // whole batch in one vectorized loop (a third of the pruned top-k's
  // instructions per element were these stores, done one element at a time).
  bool add(uint64_t i, T xi, bool is_top) {
    top[count] = is_top ? T(1) : T(0);
    x[count] = xi;
    index[count] = i;
    has_top = has_top || is_top;
    return ++count >= Batch;
  }
  // The lanes `bits` (at most kSparseLanes, none top) of the tile at p, its
  // element e at global index t0 + e, compacted onto the batch in a fixed
  // kFixedLanes steps without a branch, and the rest (a tile of more than
  // kFixedLanes lanes: 7-11% of the visited tiles of a top-8 walk, under 1%
  // of an argmax walk's) in further runs: the steps past the last lane write
  // lane 63's values into slots past the new count (room: kCap), which the
  // next lanes overwrite. True when the batch is full. (Against 4 steps a
  // run: one row of 151,936 N(0, s^2) float32, avx2, kernel instructions
  // per call (callgrind, 20 keys) top-8 511k -> 499k (s = 1), 673k -> 663k
  // (s = 3), argmax 277k -> 270k (s = 3); the few more second runs cost
  // less than the step every visited tile saves.)
  static constexpr size_t kFixedLanes = 3;
  static_assert((kSparseLanes + kFixedLanes - 1) / kFixedLanes * kFixedLanes <= kSparseLanes + 1,
                "the last run's steps stay inside kCap (count < Batch on entry)");
  bool add_lanes(uint64_t bits, const T* p, uint64_t t0) {
    size_t c = count;
    const size_t got = static_cast<size_t>(__builtin_popcountll(bits));
    for (size_t run = 0; run < kSparseLanes; run += kFixedLanes) {
      for (size_t j = 0; j < kFixedLanes; ++j) {
        const size_t e = static_cast<size_t>(__builtin_ctzll(bits | (uint64_t{1} << 63)));
        top[c + run + j] = T(0);
        x[c + run + j] = p[e];
        index[c + run + j] = t0 + e;
        bits &= bits - 1;
      }
      if (bits == 0) break;
    }
    count = c + got;
    return count >= Batch;
  }
  // After a flush of the first Batch lanes: the lanes past them moved down.
  void take_rest() {
    const size_t rest = count > Batch ? count - Batch : 0;
    has_top = false;
    for (size_t l = 0; l < rest; ++l) {
      top[l] = top[Batch + l];
      x[l] = x[Batch + l];
      index[l] = index[Batch + l];
      has_top = has_top || top[l] != T(0);
    }
    count = rest;
  }
};

// The fine words of a batch (see the header comment: element i's is word
// (i % 64) / 16 of block 16 (i / 64) + i % 16).
// Philox4x32-10 of `count` arbitrary counters (x0[l], x1[l], x2[l], x3[l]),
// each replaced by its block's words, in plain lane loops.
inline void philox_lanes_plain(uint32_t* x0, uint32_t* x1, uint32_t* x2, uint32_t* x3, size_t count, uint32_t k0,
                               uint32_t k1) {
  for (uint32_t round = 0; round < 10; ++round) {
    const uint32_t key0 = k0 + round * kPhiloxW0, key1 = k1 + round * kPhiloxW1;
    for (size_t l = 0; l < count; ++l) {
      const uint64_t p0 = static_cast<uint64_t>(x0[l]) * kPhiloxM0, p1 = static_cast<uint64_t>(x2[l]) * kPhiloxM1;
      x0[l] = static_cast<uint32_t>(p1 >> 32) ^ x1[l] ^ key0;
      x2[l] = static_cast<uint32_t>(p0 >> 32) ^ x3[l] ^ key1;
      x1[l] = static_cast<uint32_t>(p1);
      x3[l] = static_cast<uint32_t>(p0);
    }
  }
}

// R::philox_lanes where the kernel set has one (x86: wide registers; count a
// multiple of 16), else the plain loops.
template <class R, class = void>
struct HasPhiloxLanes : std::false_type {};
template <class R>
struct HasPhiloxLanes<R, std::void_t<decltype(&R::philox_lanes)>> : std::true_type {};

template <class R>
inline void philox_lanes(uint32_t* x0, uint32_t* x1, uint32_t* x2, uint32_t* x3, size_t count, uint32_t k0,
                         uint32_t k1) {
  if constexpr (HasPhiloxLanes<R>::value)
    R::philox_lanes(x0, x1, x2, x3, count, k0, k1);
  else
    philox_lanes_plain(x0, x1, x2, x3, count, k0, k1);
}

// R::philox_rows (the counters made in registers) where the kernel set has it.
template <class R, class = void>
struct HasPhiloxRows : std::false_type {};
template <class R>
struct HasPhiloxRows<R, std::void_t<decltype(&R::philox_rows)>> : std::true_type {};

// R (void: the plain loops) gives the blocks; the words are the same.
template <class R, class T, size_t Batch>
inline void batch_words(PendingNoise<T, Batch>& p, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  alignas(64) uint32_t x0[Batch], x1[Batch], x2[Batch], x3[Batch], word_of[Batch];
  for (size_t l = 0; l < Batch; ++l) {
    const uint64_t i = p.index[l], block = 16 * (i / kTile) + i % 16;
    x0[l] = static_cast<uint32_t>(block);
    x1[l] = static_cast<uint32_t>(block >> 32);
    x2[l] = c2;
    x3[l] = c3;
    word_of[l] = static_cast<uint32_t>((i % kTile) / 16);  // which word of its block
  }
  philox_lanes<R>(x0, x1, x2, x3, Batch, k0, k1);
  // word w = 2 b1 + b0 by masks (no branch: the loop vectorizes)
  for (size_t l = 0; l < Batch; ++l) {
    const uint32_t m0 = 0u - (word_of[l] & 1u), m1 = 0u - (word_of[l] >> 1);
    const uint32_t low = (x0[l] & ~m0) | (x1[l] & m0), high = (x2[l] & ~m0) | (x3[l] & m0);
    p.words[l] = (low & ~m1) | (high & m1);
  }
}

// The batch padded to Batch lanes (-inf logits, never offered) and its
// fine words (from R's wide Philox lanes where given).
template <class R = void, class T, size_t Batch>
inline void seal_batch(PendingNoise<T, Batch>& p, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (size_t l = p.count; l < Batch; ++l) {  // (none when count >= Batch)
    p.index[l] = 0;
    p.top[l] = T(0);
    p.x[l] = -static_cast<T>(kInf);
  }
  batch_words<R>(p, c2, c3, k0, k1);
}

// The top masks of open groups groups[0..count) of the row with counter
// high words (c2, c3): the same words as open_group_top_mask's, the blocks
// of 16 groups (48) from one philox_lanes call instead of one at a time.
template <class R>
inline void open_group_top_masks(const uint64_t* groups, size_t count, uint32_t c2, uint32_t c3, uint32_t k0,
                                 uint32_t k1, uint16_t* masks) {
  constexpr size_t G = 16;
  for (size_t g0 = 0; g0 < count; g0 += G) {
    alignas(64) uint32_t x0[3 * G], x1[3 * G], x2[3 * G], x3[3 * G];
    const size_t m = count - g0 < G ? count - g0 : G, lanes = (3 * m + 15) / 16 * 16;
    for (size_t l = 0; l < lanes; ++l) {
      const uint64_t block = l < 3 * m ? kOpenStream | (4 * groups[g0 + l / 3] + l % 3) : 0;
      x0[l] = static_cast<uint32_t>(block);
      x1[l] = static_cast<uint32_t>(block >> 32);
      x2[l] = c2;
      x3[l] = c3;
    }
    philox_lanes<R>(x0, x1, x2, x3, lanes, k0, k1);
    for (size_t j = 0; j < m; ++j) {
      uint32_t w[12];
      for (size_t b = 0; b < 3; ++b) {
        w[4 * b] = x0[3 * j + b];
        w[4 * b + 1] = x1[3 * j + b];
        w[4 * b + 2] = x2[3 * j + b];
        w[4 * b + 3] = x3[3 * j + b];
      }
      masks[g0 + j] = static_cast<uint16_t>(top_mask_of_words(w));
    }
  }
}

// The largest xb with fl(fl(x inv) + add) <= cut for every x <= xb (T
// arithmetic, as the lanes do it; the left side never falls as x rises), so
// that "fl(fl(x inv) + add) > cut" is "x > xb" for every x but NaN (false
// both ways): pass 2's check of a tile's lanes compares the logits
// themselves. -inf (every lane looked at: still exact, only slower) where
// the search does not settle.
template <class T>
inline T x_cut(T inv, T add, T cut) {
  const T minus_inf = -static_cast<T>(kInf);
  if (!(cut > minus_inf)) return minus_inf;
  auto over = [&](T v) {
    const T a = v * inv;
    const T b = a + add;
    return b > cut;
  };
  const double guess = (static_cast<double>(cut) - static_cast<double>(add)) / static_cast<double>(inv);
  const double most = static_cast<double>(kMaxFinite<T>);
  T v = static_cast<T>(guess >= most ? most : guess <= -most ? -most : guess);
  for (int step = 0; step < 64; ++step) {
    if (over(v)) {
      v = next_below(v);
    } else {
      const T up = next_above(v);
      if (over(up)) return v;
      v = up;
    }
  }
  return minus_inf;
}

// The pruned top-k, exact (the same candidates, scores and order as
// topk_all), in two passes over each window of up to kWindowSpans gate spans:
//  1. the gate words alone (one Philox block per 16 elements' group, 16 at
//     a time): the open groups' top elements (u >= 1 - 2^-12, ~1 in 4096,
//     noise >= 8.3) are scored and offered first. Their k-th best is a real
//     score, so the running best starts high.
//  2. the logits, one read in index order: every other element has
//     q >= 2^-12, so its score is at most x/T + 12 ln 2. A tile (64
//     logits) whose largest cannot reach the running k-th best is done;
//     the others' lanes are checked against it in logit space (x_cut). A
//     lane that can place gets its fine word from its own Philox block,
//     its bound from the exponent of its q, and its noise only if that
//     bound reaches the cut, in batches (PendingNoise); a tile with many
//     such lanes gets its 16 blocks at once instead.
//     (Replaced: a read of each tile's largest logit during pass 1, then
//     the tiles that could place visited again by levels of it, highest
//     first, so that the cut rose sooner. Its second visit of the tiles
//     cost more than that saved. One row of 151,936 N(0, s^2) float32
//     logits, avx2, kernel instructions per call (callgrind): top-8 584k
//     -> 499k (s = 1), 688k -> 695k (s = 3); argmax 201k -> 196k (s = 1),
//     321k -> 294k (s = 3). Zen 3, kernel alone: top-8 62-66 -> 51-61 us
//     (s = 1), 74-76 -> 66-69 us (s = 3); argmax 23 us either way.)
// The k-th best only rises, and an element is ruled out only when its bound
// is below it, so nothing that could place (ties included: offer() breaks
// them by index whatever the order) is missed. Masked: logits below floor
// count as -inf.
constexpr size_t kWindowSpans = 256;  // 2 KiB of open-group bits on the stack
constexpr size_t kSpan = 16 * kTile;  // the elements of one call of fill_gates
constexpr size_t kOpenKept = 512;     // open groups' top masks pass 2 finds without Philox, per window
// The bytes of a window prefetched during pass 1 (see topk_pruned). Zen 5,
// avx512, 64 x 151,936 float32 (beyond L3), 1 thread, sample(temperature=
// 0.7, top_p=0.95) at sigma 1, median of 9 interleaved processes, us per
// row: none 26.3, 64 KiB 24.4, 128 KiB 23.4, 192 KiB 24.6 (1 MiB, the whole
// window: 26.9 against 26.2); at sigma 3, whose pass 2 does more work per
// byte, the same with and without.
constexpr size_t kGatePrefetch = size_t{128} << 10;
// Pass 2's noise batches: 64 lanes, Philox blocks and noise vectors whose
// chains overlap (16 lanes waited on one chain of ten rounds), and fewer
// flushes (32 lanes measured 2-4% slower).
constexpr size_t kPass2Batch = 4 * kBatch;

template <class V, class R, class T, bool Masked>
TopkResult topk_pruned(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp,
                       size_t k, Candidate* out, double min_score, T floor) {
  constexpr size_t W = V::width, U = kTile / W;
  if (k == 0 || n == 0) return TopkResult{};
  TopK best{out, k};
  const double gs = noise_scale(inv_temp);
  const Reg<V> vinv = V::set1(gs == 0.0 ? 0.5 : inv_temp * gs), vgs = V::set1(gs);
  const Reg<V> vmaxfinite = V::set1(static_cast<double>(kMaxFinite<T>));
  const Reg<V> vfloor = V::set1(static_cast<double>(floor)), vminus_inf = V::set1(-kInf);
  auto mask = [&](Reg<V> v) SSM_INLINE {
    if constexpr (Masked) return V::select(V::gt(vfloor, v), vminus_inf, v);
    else return v;
  };
  typename V::mask bad = V::none();  // NaN or +inf seen
  // Wanted: scores >= lo (min_score: a k-th best found by another chunk)
  // and >= the current k-th best; "bound > cut", cut the largest T below
  // that, rules out exactly what cannot be wanted.
  const double lo = min_score;
  double cut = static_cast<double>(next_below(static_cast<T>(lo)));
  Reg<V> vcut = V::set1(cut);
  // look()'s check of a logit x, "fl(fl(mask(x) inv) + 12 ln 2) > cut", as
  // x > xcut (Masked: and x >= floor, i.e. x > next_below(floor))
  const T inv_t = static_cast<T>(gs == 0.0 ? 0.5 : inv_temp * gs), not_top_t = static_cast<T>(kNotTopBound * gs);
  auto x_cut_of = [&](double c) {
    T xb = x_cut(inv_t, not_top_t, static_cast<T>(c));
    if (Masked && floor > -static_cast<T>(kInf) && next_below(floor) > xb) xb = next_below(floor);
    return V::set1(static_cast<double>(xb));
  };
  Reg<V> vxcut = x_cut_of(cut);
  RowNoise<R, T> src(row, key, false);
  PendingNoise<T, kPass2Batch> pend;
  auto raise_cut = [&] {
    const double kth = best.threshold() > lo ? best.threshold() : lo;
    cut = static_cast<double>(next_below(static_cast<T>(kth)));
    vcut = V::set1(cut);
    vxcut = x_cut_of(cut);
  };
  auto flush = [&] {
    seal_batch<R>(pend, src.c2, src.c3, src.k0, src.k1);
    bool offered = false;
    const size_t lanes = pend.count < kPass2Batch ? pend.count : kPass2Batch;
    for (size_t u = 0; u < lanes; u += W) {
      Reg<V> c, corr, qb;
      noise_argument<V, R>(pend.words + u, pend.top + u, pend.has_top, c, corr, qb);
      const Reg<V> base = V::mul(V::load(pend.x + u), vinv);
      if (!V::any(V::gt(V::add(base, V::mul(noise_bound<V, R>(qb), vgs)), vcut))) continue;
      const Reg<V> score = V::add(base, V::mul(gumbel_noise<V, R>(c, corr), vgs));
      double sc[W];
      V::to_array(score, sc);
      for (size_t l = 0; l < W && u + l < lanes; ++l)
        if (sc[l] > cut) {
          best.offer(sc[l], pend.index[u + l]);
          offered = true;
        }
    }
    pend.take_rest();
    if (offered) raise_cut();
  };
  auto push = [&](uint64_t i, T xi, bool top) {
    if (pend.add(i, xi, top)) flush();
  };
  const uint64_t end = start + n;
  const size_t ahead = prefetch_distance(n * sizeof(T)) / sizeof(T);
  uint64_t open_bits[kWindowSpans];
  uint32_t open_rank[kWindowSpans];  // open groups in the window's earlier spans
  uint16_t open_top[kOpenKept];      // their top masks, in order (~64 expected per window)
  uint64_t open_group[kOpenKept];    // and the groups
  const uint64_t spans_end = (end + kSpan - 1) / kSpan;
  for (uint64_t span0 = start / kSpan; span0 < spans_end; span0 += kWindowSpans) {
    const uint64_t span1 = span0 + kWindowSpans < spans_end ? span0 + kWindowSpans : spans_end;
    const uint64_t lo_i = span0 * kSpan > start ? span0 * kSpan : start;
    const uint64_t hi_i = span1 * kSpan < end ? span1 * kSpan : end;
    const uint64_t tile_lo = lo_i / kTile, tile_hi = (hi_i + kTile - 1) / kTile;  // the window's tiles
    // Tiles [full_lo, full_hi) lie inside the chunk; those below pf_hi
    // prefetch ahead.
    const uint64_t full_lo = (start + kTile - 1) / kTile, full_hi = end / kTile;
    const uint64_t pf_hi = ahead && end >= kTile + ahead ? (end - kTile - ahead) / kTile + 1 : 0;
    // 1. the window's gates; its top elements scored first, before the
    // other logits are read. (Reading each span's tiles between its gate
    // blocks, so that the loads overlap the Philox rounds, measured no
    // faster on Zen 3.) Where pass 2 prefetches (ahead: chunks of 16 KiB
    // and more, unless the call fits L2), the window's first kGatePrefetch
    // bytes are prefetched, spread over the gate blocks, so that a row from
    // DRAM starts arriving during the Philox rounds.
    const char* gate_pf = reinterpret_cast<const char*>(x + (lo_i - start));
    const size_t window_bytes = static_cast<size_t>(hi_i - lo_i) * sizeof(T);
    const size_t gate_pf_lines = ahead ? (window_bytes < kGatePrefetch ? window_bytes : kGatePrefetch) / 64 : 0;
    const size_t gate_pf_per = (gate_pf_lines + (span1 - span0) - 1) / (span1 - span0);
    const char* const gate_pf_end = gate_pf + gate_pf_lines * 64;
    size_t opened = 0;
    auto push_top = [&](uint64_t group, unsigned top) {  // the group's top elements, scored
      for (; top != 0; top &= top - 1) {
        const uint64_t i = group * 16 + static_cast<unsigned>(__builtin_ctz(top));
        if (i < start || i >= end) continue;
        const T xi = x[i - start];
        if (!(xi > -static_cast<T>(kInf) && xi <= kMaxFinite<T>)) continue;  // NaN, +-inf: pass 2 sees them
        if (Masked && xi < floor) continue;
        push(i, xi, true);
      }
    };
    for (uint64_t span = span0; span < span1; ++span) {
      for (size_t q = 0; q < gate_pf_per && gate_pf < gate_pf_end; ++q, gate_pf += 64) SSM_PREFETCH(gate_pf);
      src.fill_gates(span * 16);
      // The open groups as bits. Where R has at_least_bits64, without a
      // branch: a branch on the gate words (22% of spans hold an open
      // group) mispredicts once the Philox rounds are done; the open groups
      // are listed after the loop. Else most spans (78%) have no open group: one
      // vectorized max says so.
      uint64_t bits = 0;
      if constexpr (HasAtLeastBits<R>::value) {
        bits = R::at_least_bits64(src.gates, kGateClosed);
      } else {
        uint32_t most = 0;
        for (size_t g = 0; g < kTile; ++g) most = src.gates[g] > most ? src.gates[g] : most;
        if (most >= kGateClosed)
          for (size_t g = 0; g < kTile; ++g) bits |= static_cast<uint64_t>(src.gates[g] >= kGateClosed) << g;
      }
      // only the groups that overlap the chunk
      const uint64_t g0 = span * kTile, first = start / 16 > g0 ? start / 16 - g0 : 0;
      const uint64_t last = (end + 15) / 16 - g0 < kTile ? (end + 15) / 16 - g0 : kTile;
      if (first > 0) bits &= ~uint64_t{0} << first;
      if (last < kTile) bits &= (uint64_t{1} << last) - 1;
      open_bits[span - span0] = bits;
    }
    for (uint64_t span = span0; span < span1; ++span) {
      open_rank[span - span0] = static_cast<uint32_t>(opened);
      for (uint64_t b = open_bits[span - span0]; b != 0; b &= b - 1) {
        const uint64_t group = span * kTile + static_cast<uint64_t>(__builtin_ctzll(b));
        if (opened < kOpenKept)
          open_group[opened] = group;  // its mask below, with the others'
        else
          push_top(group, src.top_mask(group));
        ++opened;
      }
    }
    const size_t kept = opened < kOpenKept ? opened : kOpenKept;
    open_group_top_masks<R>(open_group, kept, src.c2, src.c3, src.k0, src.k1, open_top);
    for (size_t j = 0; j < kept; ++j) push_top(open_group[j], open_top[j]);
    if (pend.count) flush();
    // 2. the logits of the window. Is element i top? Its group's mask from
    // pass 1 (the open groups' rank in the window: how many open bits come
    // before), or made again past the first kOpenKept.
    auto is_top = [&](uint64_t i) {
      const uint64_t group = i / 16, bits = open_bits[i / kSpan - span0], g = group % kTile;
      if (!((bits >> g) & 1u)) return false;
      const size_t rank = open_rank[i / kSpan - span0] +
                          static_cast<size_t>(__builtin_popcountll(bits & ((uint64_t{1} << g) - 1)));
      const unsigned top = rank < kOpenKept ? open_top[rank] : src.top_mask(group);
      return ((top >> (i % 16)) & 1u) != 0;
    };
    // A tile whose bound reaches the cut: its lanes that can, `all` as bits
    // (element e of the tile: bit e). The rare cases, out of line: a tile
    // with a top element among its groups, or with many lanes.
    auto look_rest = [&](const T* p, uint64_t t0, uint64_t all) SSM_NOINLINE {
      if (static_cast<size_t>(__builtin_popcountll(all)) <= kSparseLanes) {
        for (; all != 0; all &= all - 1) {
          const size_t e = static_cast<size_t>(__builtin_ctzll(all));
          if (!is_top(t0 + e)) push(t0 + e, p[e], false);
        }
        return;
      }
      alignas(64) uint32_t words[kTile];
      alignas(64) T no_top[W] = {};
      R::philox16(t0 / kTile * 16, src.c2, src.c3, src.k0, src.k1, words);
      for (size_t u = 0; u < U; ++u) {
        if (((all >> (u * W)) & ((uint64_t{1} << W) - 1)) == 0) continue;
        Reg<V> c, corr, qb;
        noise_argument<V, R>(words + u * W, no_top, false, c, corr, qb);
        const Reg<V> base = V::mul(mask(V::load(p + u * W)), vinv);
        if (!V::any(V::gt(V::add(base, V::mul(noise_bound<V, R>(qb), vgs)), vcut))) continue;
        const Reg<V> score = V::add(base, V::mul(gumbel_noise<V, R>(c, corr), vgs));
        double s[W];
        V::to_array(score, s);
        bool offered = false;
        for (size_t l = 0; l < W; ++l) {
          const uint64_t i = t0 + u * W + l;
          if (s[l] > cut && !is_top(i)) {  // a top lane's noise here is not its own: pass 1 scored it
            best.offer(s[l], i);
            offered = true;
          }
        }
        if (offered) raise_cut();
      }
    };
    // A tile: its NaN/+inf flags, and its lanes over the cut, looked for
    // only when its largest is (most tiles of a top-1 walk are not: the
    // maximum costs a third of the lane bits). NaN by one unordered compare
    // per two vectors (U is even), +inf from the tile's largest (a lane of
    // it may be NaN: flagged, and the call fails). Against a not_le compare
    // per vector: avx2, one row of 151,936 N(0, s^2) float32, kernel
    // instructions per call (callgrind, 20 keys), argmax 210k -> 195k
    // (s = 1), 302k -> 287k (s = 3); top-8 491k -> 477k (s = 1), 675k ->
    // 660k (s = 3). Kernel time on Zen 3 unchanged within noise (load 10):
    // the read and the candidates' branches set it, not this arithmetic.
    static_assert(U % 2 == 0, "look takes a tile's vectors two at a time");
    auto look = [&](const T* p, uint64_t t0) SSM_INLINE {
      Reg<V> a = V::load(p), b = V::load(p + W);
      typename V::mask odd = unordered<V, R>(a, b);
      Reg<V> hi = V::max(b, a);
      for (size_t u = 2; u < U; u += 2) {
        a = V::load(p + u * W);
        b = V::load(p + (u + 1) * W);
        odd = V::mask_or(odd, unordered<V, R>(a, b));
        hi = V::max(b, V::max(a, hi));
      }
      bad = V::mask_or(bad, V::mask_or(odd, V::not_le(hi, vmaxfinite)));
      if (!V::any(V::gt(hi, vxcut))) return;
      uint64_t all = 0;
      for (size_t u = 0; u < U; ++u)
        all |= static_cast<uint64_t>(lane_bits<V, R>(V::gt(V::load(p + u * W), vxcut))) << (u * W);
      // the tile's 4 groups: does any hold a top element?
      const bool any_open = ((open_bits[t0 / kSpan - span0] >> ((t0 / 16) % kTile)) & 0xFu) != 0;
      if (!any_open && static_cast<size_t>(__builtin_popcountll(all)) <= kSparseLanes) {
        // (98% of tiles) no lane is top: all of them, compacted at once
        if (pend.add_lanes(all, p, t0)) flush();
        return;
      }
      look_rest(p, t0, all);
    };
    // 2a. the window's whole tiles in index order, prefetched ahead like the
    // softmax passes.
    const uint64_t whole_lo = tile_lo > full_lo ? tile_lo : full_lo, whole_hi = tile_hi < full_hi ? tile_hi : full_hi;
    for (uint64_t t = whole_lo; t < whole_hi; ++t) {
      const T* p = x + (t * kTile - start);
      if (t < pf_hi) prefetch_block<kTile * sizeof(T)>(p + ahead);
      look(p, t * kTile);
    }
    if (pend.count) flush();
    // 2b. the partial tiles at the chunk's head or tail (only the window's
    // first and last tiles can be): -inf outside it
    const uint64_t edge_tile[2] = {tile_lo, tile_hi - 1};
    for (size_t e = 0; e < (tile_hi - 1 > tile_lo ? 2u : 1u); ++e) {
      const uint64_t t0 = edge_tile[e] * kTile;
      if (t0 >= start && t0 + kTile <= end) continue;
      alignas(64) T buf[kTile];
      const uint64_t a = t0 > start ? t0 : start, b = t0 + kTile < end ? t0 + kTile : end;
      copy_padded(buf, kTile, static_cast<size_t>(a - t0), x + (a - start), static_cast<size_t>(b - a),
                  -static_cast<T>(kInf));
      look(buf, t0);
    }
  }
  if (pend.count) flush();
  return finish_topk(best, V::any(bad), x, n);
}

template <class V, class R, class T>
TopkResult topk(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp,
                size_t k, Candidate* out, bool prune, double min_score) {
  // A chunk shorter than a gate span has too few top elements to seed the
  // running best: the plain walk is faster there (and identical).
  if (!prune || n < kSpan) return topk_all<V, R, T>(x, n, start, row, key, inv_temp, k, out, min_score);
  return topk_pruned<V, R, T, false>(x, n, start, row, key, inv_temp, k, out, min_score, T(0));
}

// Short rows (n <= kShortRowsMax), several at a time. A row of n elements
// needs only the Philox blocks that cover them: at most n fine blocks and
// one gate block per group of 16 it touches, where the row walk above draws
// a whole tile's 16 fine blocks and a gate span's 16 gate blocks (an
// 8-element row: 9 blocks instead of 32). A batch of whole rows, about
// kShortBatch elements, gets all its blocks from one philox_lanes call (its
// lanes are any counters: other rows, other offsets), then the noise of its
// elements vector by vector across row boundaries (lane l of a noise vector
// computes the same function of its element's word and top flag whatever
// the lane, so every bit is the row walk's), then each row's best k in
// index order, as topk_all offers them.
constexpr size_t kShortRowsMax = 256;
constexpr size_t kShortBatch = 512;  // elements per batch (at least one row)
// Rows up to this long with k > 2 take best_k_of_rows on 256- and 512-bit
// lanes where a batch holds a vector's lanes of rows (Zen 5, 1 thread,
// float32, ns per element, gumbel_topk interleaved / one row at a time into a
// vector / the heap before: avx512 n = 16 k = 4 2.8 / 8.2 / 10.4; n = 64 k = 8
// (8 rows a batch: into a vector) - / 4.3 / 9.4; avx2, interleaved / without:
// 16/4 5.6 / 9.1, 32/8 5.2 / 7.2, 64/8 4.9 / 5.3, though with 79.6
// instructions per element against 66.2 at 64/8 (callgrind: the heap's
// branches mispredict). Not on scalar: 15% more time.
constexpr size_t kInterleavedTopkMaxN = 64;

// Where each element of a row finds its words, the same for every row of a
// call: blocks [0, fine) are the fine blocks, [fine, fine + gates) the gate
// blocks of groups first_group, first_group + 1, ...
struct ShortRowLayout {
  uint64_t block[kShortRowsMax + 32];
  size_t fine = 0, gates = 0;
  uint64_t first_group = 0;
  uint16_t lane[kShortRowsMax];  // element e: its word is word `word[e]` of block lane[e]
  uint8_t word[kShortRowsMax];
  uint8_t gate_word[32];  // group g's gate: word gate_word[g] of block fine + g
  bool direct = true;     // element e's word is word 0 of block e (rows within one group of 16)
  uint64_t start;         // the rows' first column
  // Elements run_elem[j] .. run_elem[j + 1] - 1 take words run_word[j] of
  // consecutive blocks from run_lane[j] (at most 16: one group's blocks).
  size_t runs = 0;
  uint16_t run_elem[kShortRowsMax + 1], run_lane[kShortRowsMax];
  uint8_t run_word[kShortRowsMax];
  ShortRowLayout(uint64_t start_, size_t n) : start(start_) {
    const uint64_t end = start + n;
    for (uint64_t tile = start / kTile; tile * kTile < end; ++tile) {
      const uint64_t lo = tile * kTile > start ? tile * kTile : start;
      const uint64_t hi = (tile + 1) * kTile < end ? (tile + 1) * kTile : end;
      const uint64_t j0 = lo % 16, count = hi - lo < 16 ? hi - lo : 16, base = fine;
      for (uint64_t q = 0; q < count; ++q) block[fine++] = 16 * tile + (j0 + q) % 16;
      for (uint64_t i = lo; i < hi; ++i) {
        lane[i - start] = static_cast<uint16_t>(base + (i % 16 + 16 - j0) % 16);
        word[i - start] = static_cast<uint8_t>((i % kTile) / 16);
        direct = direct && lane[i - start] == i - start && word[i - start] == 0;
      }
    }
    for (size_t e = 0; e < n; ++e) {
      if (e == 0 || word[e] != word[e - 1] || lane[e] != lane[e - 1] + 1) {
        run_elem[runs] = static_cast<uint16_t>(e);
        run_lane[runs] = lane[e];
        run_word[runs++] = word[e];
      }
    }
    run_elem[runs] = static_cast<uint16_t>(n);
    first_group = start / 16;
    for (uint64_t group = first_group; group * 16 < end; ++group) {
      gate_word[gates++] = static_cast<uint8_t>((group % kTile) / 16);
      block[fine + gates - 1] = kGateStream | (16 * (group / kTile) + group % 16);
    }
  }
};

// The best one (or two) of each of m rows of n scores, element e of every
// row before element e + 1 of any: each row's running best sits in its own
// array slot, so no compare waits on the row's previous one and no branch
// depends on the data. Ties keep the lower index, as TopK::offer does;
// -inf and NaN never place (b = -inf: nothing found).
template <class T, bool Two>
inline void best_of_rows(const T* s, size_t m, size_t n, T* b1, uint32_t* a1, T* b2, uint32_t* a2) {
  for (size_t r = 0; r < m; ++r) {
    b1[r] = b2[r] = -static_cast<T>(kInf);
    a1[r] = a2[r] = 0;
  }
  for (uint32_t e = 0; e < n; ++e)
    for (size_t r = 0; r < m; ++r) {
      const T v = s[r * n + e];
      const bool gt1 = v > b1[r];
      if constexpr (Two) {
        const bool gt2 = v > b2[r];
        b2[r] = gt1 ? b1[r] : (gt2 ? v : b2[r]);
        a2[r] = gt1 ? a1[r] : (gt2 ? e : a2[r]);
      }
      b1[r] = gt1 ? v : b1[r];
      a1[r] = gt1 ? e : a1[r];
    }
}

// The best k of each of m rows of n scores (k <= n), interleaved as in
// best_of_rows: row r's list in b[j m + r], a[j m + r] (j = 0: the best),
// element e of every row placed before element e + 1 of any, with no branch
// on the data: slot j takes slot j-1's entry where e beats slot j-1, e where
// e beats slot j alone, else keeps its own (slots from the last up, each
// compare against the old list; no chain from slot to slot). e comes after
// every entry, so a tie leaves it below (the lower index first). Fill =
// false: -inf and NaN never place (b = -inf: a slot never filled); Fill =
// true: the first k values fill the list whatever they are (topk's rows:
// -inf values are kept; a NaN row's lists are not used). v: m slots.
template <class T, bool Fill = false>
inline void best_k_of_rows(const T* s, size_t m, size_t n, size_t k, T* __restrict b, uint32_t* __restrict a,
                           T* __restrict v) {
  for (size_t q = 0; q < k * m; ++q) {
    b[q] = -static_cast<T>(kInf);
    a[q] = 0;
  }
  for (uint32_t e = 0; e < n; ++e) {
    for (size_t r = 0; r < m; ++r) v[r] = s[r * n + e];
    // Fill: slots past e are not filled yet, and slot e takes e or slot e-1's
    // entry (separate loops: a loop-invariant test inside kept GCC from
    // vectorizing, topk n = 16 k = 4 12.6 ns per element against 1.1)
    for (size_t j = Fill && e < k ? e + 1 : k; j-- > 0;) {
      T* __restrict bj = b + j * m;
      uint32_t* __restrict aj = a + j * m;
      if (Fill && e == 0) {  // (j = 0)
        for (size_t r = 0; r < m; ++r) {
          bj[r] = v[r];
          aj[r] = 0;
        }
        continue;
      }
      if (j == 0) {
        for (size_t r = 0; r < m; ++r) {
          const bool here = v[r] > bj[r];
          bj[r] = here ? v[r] : bj[r];
          aj[r] = here ? e : aj[r];
        }
        continue;
      }
      const T* __restrict bp = bj - m;
      const uint32_t* __restrict ap = aj - m;
      if (Fill && j == e) {
        for (size_t r = 0; r < m; ++r) {
          const bool above = v[r] > bp[r];
          bj[r] = above ? bp[r] : v[r];
          aj[r] = above ? ap[r] : e;
        }
        continue;
      }
      for (size_t r = 0; r < m; ++r) {
        const bool here = v[r] > bj[r], above = v[r] > bp[r];
        bj[r] = above ? bp[r] : (here ? v[r] : bj[r]);
        aj[r] = above ? ap[r] : (here ? e : aj[r]);
      }
    }
  }
}

// The first index of a row's largest score (n if none is > -inf), by a
// vector max and a scan for it.
template <class V, class T>
inline size_t first_max(const T* s, size_t n) {
  constexpr size_t W = V::width;
  Reg<V> acc = V::set1(-kInf);
  size_t e = 0;
  for (; e + W <= n; e += W) acc = V::max(V::load(s + e), acc);
  T best = static_cast<T>(V::hmax(acc));
  for (; e < n; ++e) best = s[e] > best ? s[e] : best;
  if (!(best > -static_cast<T>(kInf))) return n;
  for (e = 0; e < n; ++e)
    if (s[e] == best) return e;
  return n;
}

// The words of a batch of short rows (ShortRowLayout, the same for every
// row of a call): all their Philox blocks from one philox_lanes call, then
// each element's fine word (ew[j], element j of the batch, rows one after
// the other) and its top flag (top[j]; has_top: some flag is set).
template <class R, class T, size_t Batch = kShortBatch>
struct ShortRowWords {
  static constexpr size_t kLanes = 2 * Batch + 32;  // fine blocks <= elements, gate blocks <= elements
  const ShortRowLayout lay;
  const size_t n, per_batch, fine_lanes, lanes;
  alignas(64) uint32_t lane_lo[kLanes], lane_hi[kLanes], lane_row[kLanes];
  alignas(64) uint32_t words[4][kLanes];
  alignas(64) uint32_t elem_words[Batch + kTile] = {};
  alignas(64) T top[Batch + kTile] = {};
  const uint32_t* ew = elem_words;
  bool has_top = false;     // some flag in top[] is set
  unsigned gate_words = 0;  // bit w: some gate is word w of its block
  // The counters of a batch's blocks, but for the row number: lane l holds
  // block (lo[l], hi[l]) of row r0 + lane_row[l]; fine blocks first, then
  // gate blocks.
  // A call of fewer rows than a full batch (rows >= 1) gets a batch of just
  // those rows: a lane's words depend on its counter alone, so only the
  // work changes (one row of 16 draws 32 lanes, not 544).
  ShortRowWords(uint64_t start, size_t n_, size_t rows, size_t batch = Batch)
      : lay(start, n_),
        n(n_),
        per_batch(batch / n_ < rows ? batch / n_ : rows),
        fine_lanes(per_batch * lay.fine),
        lanes(lane_count(lay, per_batch, n_)) {
    size_t l = 0;
    auto set_lane = [&](size_t r, uint64_t block) {
      lane_lo[l] = static_cast<uint32_t>(block);
      lane_hi[l] = static_cast<uint32_t>(block >> 32);
      lane_row[l++] = static_cast<uint32_t>(r);
    };
    for (size_t r = 0; r < per_batch; ++r)
      for (size_t b = 0; b < lay.fine; ++b) set_lane(r, lay.block[b]);
    for (size_t r = 0; r < per_batch; ++r)
      for (size_t g = 0; g < lay.gates; ++g) set_lane(r, lay.block[lay.fine + g]);
    while (l < lanes) set_lane(0, 0);  // padding
    for (size_t g = 0; g < lay.gates; ++g) gate_words |= 1u << lay.gate_word[g];
  }
  // Lanes drawn per batch: its blocks, in whole registers of 16; where the
  // noise loops read the words in place (lay.direct), at least the tiles its
  // elements span, which they read whole (a full batch has that many anyway).
  static size_t lane_count(const ShortRowLayout& lay, size_t per_batch, size_t n) {
    const size_t blocks = (per_batch * (lay.fine + lay.gates) + 15) / 16 * 16;
    const size_t tiles = (per_batch * n + kTile - 1) / kTile * kTile;
    return lay.direct && tiles > blocks ? tiles : blocks;
  }
  // The words and top flags of rows row0 .. row0 + m (counter high words,
  // row_offset included), m <= per_batch.
  void draw(uint64_t row0, size_t m, const GumbelKey& key) {
    if constexpr (HasPhiloxRows<R>::value) {
      R::philox_rows(lane_lo, lane_hi, lane_row, row0, words[0], words[1], words[2], words[3], lanes, key.k0, key.k1);
    } else {
      for (size_t l = 0; l < lanes; ++l) {
        const uint64_t c = row0 + lane_row[l];
        words[0][l] = lane_lo[l];
        words[1][l] = lane_hi[l];
        words[2][l] = static_cast<uint32_t>(c);
        words[3][l] = static_cast<uint32_t>(c >> 32);
      }
      philox_lanes<R>(words[0], words[1], words[2], words[3], lanes, key.k0, key.k1);
    }
    ew = words[0];
    if (!lay.direct) {
      // each run of a row as 16 words (one vector copy, not a load of an
      // index and a word per element): the words past a run's end land on
      // the elements after it, which later runs and rows overwrite, or in
      // elem_words' slack past the batch; and they come from lanes below
      // per_batch * fine + 16 <= kLanes
      for (size_t r = 0; r < m; ++r)
        for (size_t j = 0; j < lay.runs; ++j)
          std::memcpy(elem_words + r * n + lay.run_elem[j], words[lay.run_word[j]] + r * lay.fine + lay.run_lane[j],
                      16 * sizeof(uint32_t));
      ew = elem_words;
    }
    // top flags: the open groups (~1 in 270) of the batch, looked for only
    // when some gate word of the batch (the words its gates use) is open
    if (has_top)
      for (auto& t : top) t = T(0);
    has_top = false;
    bool any_open = false;
    for (unsigned w = 0; w < 4; ++w) {
      if (!((gate_words >> w) & 1u)) continue;
      bool open = false;
      for (size_t l = fine_lanes; l < fine_lanes + m * lay.gates; ++l) open |= words[w][l] >= kGateClosed;
      any_open = any_open || open;
    }
    for (size_t r = 0; any_open && r < m; ++r)
      for (size_t g = 0; g < lay.gates; ++g) {
        if (words[lay.gate_word[g]][fine_lanes + r * lay.gates + g] < kGateClosed) continue;
        const uint64_t c = row0 + r, group = lay.first_group + g;
        const unsigned mask =
            open_group_top_mask(group, static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), key.k0, key.k1);
        for (uint64_t i = group * 16; i < group * 16 + 16; ++i)
          if (i >= lay.start && i < lay.start + n && ((mask >> (i % 16)) & 1u)) {
            top[r * n + (i - lay.start)] = T(1);
            has_top = true;
          }
      }
  }
};

// The next batch's logits (rows r0 .. r0 + m of n at x), requested now: this
// batch's Philox rounds hide their latency (the hardware prefetcher alone
// left the first loads of every batch waiting on memory).
template <class T>
inline void prefetch_rows(const T* x, size_t bytes) {
  const char* next = reinterpret_cast<const char*>(x);
  for (size_t b = 0; b < bytes; b += 64) SSM_PREFETCH(next + b);
}

// The vector of x[u..u+W), -inf past x[elems - 1].
template <class V, class T>
inline Reg<V> load_padded(const T* x, size_t u, size_t elems) {
  constexpr size_t W = V::width;
  if (u + W <= elems) return V::load(x + u);
  alignas(64) T buf[W];
  copy_padded(buf, W, 0, x + u, u < elems ? elems - u : 0, -static_cast<T>(kInf));
  return V::load(buf);
}

template <class V, class R, class T>
void topk_rows(const T* x, size_t rows, size_t n, uint64_t start, uint64_t row, const GumbelKey& key,
               double inv_temp, size_t k, Candidate* out, TopkResult* res) {
  constexpr size_t W = V::width;
  if (rows == 0 || n == 0 || n > kShortRowsMax || k == 0) return;
  ShortRowWords<R, T> src(start, n, rows);
  const size_t per_batch = src.per_batch;
  alignas(64) T score[kShortBatch + 16];
  alignas(64) T b1[kShortBatch], b2[kShortBatch];
  alignas(64) uint32_t a1[kShortBatch], a2[kShortBatch];
  const double gs = noise_scale(inv_temp);
  const Reg<V> vinv = V::set1(gs == 0.0 ? 0.5 : inv_temp * gs), vgs = V::set1(gs);
  const Reg<V> vmaxfinite = V::set1(static_cast<double>(kMaxFinite<T>));
  for (size_t r0 = 0; r0 < rows; r0 += per_batch) {
    const size_t m = rows - r0 < per_batch ? rows - r0 : per_batch, elems = m * n;
    if (r0 + m < rows)
      prefetch_rows(x + (r0 + m) * n, (rows - r0 - m < per_batch ? rows - r0 - m : per_batch) * n * sizeof(T));
    src.draw(row + r0 + key.row_offset, m, key);
    const uint32_t* ew = src.ew;
    const T* top = src.top;
    const bool has_top = src.has_top;
    const T* xb = x + r0 * n;
    typename V::mask bad = V::none();
    for (size_t u = 0; u < elems; u += W) {
      const Reg<V> xv = load_padded<V>(xb, u, elems);
      bad = V::mask_or(bad, V::not_le(xv, vmaxfinite));
      Reg<V> c, corr, qb;
      noise_argument<V, R>(ew + u, top + u, has_top, c, corr, qb);
      V::store(score + u, V::add(V::mul(xv, vinv), V::mul(gumbel_noise<V, R>(c, corr), vgs)));
    }
    const bool any_bad = V::any(bad);
    Candidate* ob = out + r0 * k;
    TopkResult* rb = res + r0;
    if ((k == 1 && n < 64) || (k == 2 && n <= 64)) {  // many rows: interleaved
      if (k == 1)
        best_of_rows<T, false>(score, m, n, b1, a1, b2, a2);
      else
        best_of_rows<T, true>(score, m, n, b1, a1, b2, a2);
      for (size_t r = 0; r < m; ++r) {
        rb[r] = TopkResult{};
        ob[r * k] = Candidate{static_cast<double>(b1[r]), start + a1[r]};
        if (k == 2) ob[r * k + 1] = Candidate{static_cast<double>(b2[r]), start + a2[r]};
        rb[r].count = (b1[r] > -static_cast<T>(kInf) ? 1 : 0) + (k == 2 && b2[r] > -static_cast<T>(kInf) ? 1 : 0);
      }
    } else if (k > 2 && W * sizeof(T) >= 32 && m >= W && k * m <= kShortBatch && n <= kInterleavedTopkMaxN) {
      best_k_of_rows<T>(score, m, n, k, b1, a1, b2);
      for (size_t r = 0; r < m; ++r) {
        rb[r] = TopkResult{};
        for (; rb[r].count < k && b1[rb[r].count * m + r] > -static_cast<T>(kInf); ++rb[r].count)
          ob[r * k + rb[r].count] = Candidate{static_cast<double>(b1[rb[r].count * m + r]), start + a1[rb[r].count * m + r]};
      }
    } else if (k == 1) {  // few long rows: a vector max each
      for (size_t r = 0; r < m; ++r) {
        const size_t at = first_max<V>(score + r * n, n);
        rb[r] = TopkResult{};
        rb[r].count = at < n ? 1 : 0;
        if (at < n) ob[r] = Candidate{static_cast<double>(score[r * n + at]), start + at};
      }
    } else if (lane_topk_takes<T, W>(k, n)) {  // as topk_all offers them, into one vector
      if constexpr (TopkLanes<T>::width == W) {
        using L = TopkLanes<T>;
        constexpr T kMinus = -static_cast<T>(kInf);
        for (size_t r = 0; r < m; ++r) {
          const T* s = score + r * n;
          LaneTopk<L, T> list(k, kMinus);
          visit_above(list, s, 0, n, [&](size_t i, uint32_t cand) SSM_INLINE {
            for (; cand != 0; cand &= cand - 1) {
              const size_t e = i + static_cast<size_t>(__builtin_ctz(cand));
              if (s[e] > list.kth) list.place(s[e], e);  // (NaN: the row fails)
            }
            return true;
          });
          rb[r] = lane_topk_finish(list, kMinus, start, ob + r * k);
        }
      }
    } else {  // as topk_all offers them
      for (size_t r = 0; r < m; ++r) {
        const T* s = score + r * n;
        TopK best{ob + r * k, k};
        double thr = -kInf;
        for (size_t e = 0; e < n; ++e)
          if (static_cast<double>(s[e]) > thr) {
            best.offer(static_cast<double>(s[e]), start + e);
            thr = best.threshold();
          }
        rb[r] = finish_topk(best, false, s, n);
      }
    }
    if (any_bad)
      for (size_t r = 0; r < m; ++r) find_bad(rb[r], xb + r * n, n);
  }
}

template <class V, class R, class T>
void noise(T* g, size_t n, uint64_t start, uint64_t row, const GumbelKey& key) {
  constexpr size_t W = V::width;
  for (size_t i = 0; i < n; ++i) g[i] = 0;  // the walk below loads "logits" from g
  for_each_tile_vector<V, R>(g, n, start, row, key, [&](RowNoise<R, T>& src, uint64_t tile, size_t j, Reg<V>, uint64_t g0, T* buf) SSM_INLINE {
    src.load_tile(tile);
    Reg<V> c, corr, qb;
    noise_argument<V, R>(src.words + j, src.top + j, src.top_set, c, corr, qb);
    const Reg<V> v = gumbel_noise<V, R>(c, corr);
    if (!buf) {
      V::store(g + (g0 - start), v);
      return;
    }
    V::store(buf, v);
    for (size_t l = 0; l < W; ++l)
      if (g0 + l >= start && g0 + l < start + n) g[g0 + l - start] = buf[l];
  });
}

// gumbel_softmax's terms come in three forms (SoftmaxForm in gumbel_api.h):
//   kScaled: exp(z), z = (x + g) * inv_tau;
//   kExact:  exp((x + g - ref) * inv_tau), ref the row's largest x + g
//            (subtracted first, so a large 1/tau cannot overflow);
//   kUnit:   tau = 1 only: exp(x + g) = exp(x) / E with E = -log u, so the
//            second log of the noise (g = -log E) is never taken.
// Each returns the term as m * 2^k (m not normalized in the unit form).
template <class V, class R, int Form>
inline void softmax_term(Reg<V> xv, Reg<V> noise, Reg<V> vref, Reg<V> vinv, Reg<V>& m, Reg<V>& k) {
  if constexpr (Form == kUnitForm) {
    exp_split<V>(V::max(xv, V::set1(kClampLow)), m, k);
    m = R::div(m, noise);
  } else {
    const Reg<V> p = V::add(xv, noise);
    const Reg<V> z = Form == kExactForm ? V::mul(V::sub(p, vref), vinv) : V::mul(p, vinv);
    exp_split<V>(V::max(z, V::set1(kClampLow)), m, k);
  }
}

// The noise of a whole tile (64 elements) into g, the same operations per
// element as gumbel_noise but issued stage by stage over the tile's vectors:
// each element's noise is a long dependency chain (two logs), and one
// vector at a time leaves the out-of-order window too few independent
// chains (gumbel_softmax ran ~3x slower that way). Unit = true stops at
// E = -log u (g = -log E).
template <class V, class R, class T, bool Unit = false>
inline void noise_tile(const uint32_t* w, const T* top, bool has_top, T* g) {
  constexpr size_t W = V::width, U = kTile / W;
  Reg<V> c[U], corr[U], l[U], qb;
  const Reg<V> zero = V::set1(0.0);
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) noise_argument<V, R>(w + u * W, top + u * W, has_top, c[u], corr[u], qb);
  SSM_UNROLL
  for (size_t u = 0; u < U; ++u) l[u] = log_positive<V, R>(c[u]);
  if constexpr (Unit) {
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) V::store(g + u * W, V::sub(zero, V::add(l[u], corr[u])));
  } else {
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) l[u] = log_positive<V, R>(V::sub(zero, V::add(l[u], corr[u])));
    SSM_UNROLL
    for (size_t u = 0; u < U; ++u) V::store(g + u * W, V::sub(zero, l[u]));
  }
}

// The same noise for vectors u_lo..u_hi-1 of a tile only (a tile the chunk
// covers in part: the other vectors' noise is never read), a vector at a time.
template <class V, class R, class T, bool Unit = false>
inline void noise_vectors(const uint32_t* w, const T* top, bool has_top, T* g, size_t u_lo, size_t u_hi) {
  constexpr size_t W = V::width;
  for (size_t u = u_lo; u < u_hi; ++u) {
    Reg<V> c, corr, qb;
    noise_argument<V, R>(w + u * W, top + u * W, has_top, c, corr, qb);
    V::store(g + u * W, Unit ? minus_log_u<V, R>(c, corr) : gumbel_noise<V, R>(c, corr));
  }
}

// 1/tau in the data's precision, at most its largest finite value (1/tau
// overflows it for a subnormal tau: the result is then the one-hot of the
// largest x + g, as it should be).
template <class T>
inline double tau_inverse(double inv_tau) {
  const double big = static_cast<double>(kMaxFinite<T>);
  return inv_tau < big ? inv_tau : big;
}

// Visit every vector of a chunk with its noise for the given form (g, or E
// in the unit form), computed a tile at a time and one tile ahead: the noise
// of tile t + 1 is issued before the vectors of tile t, so the out-of-order
// core works on both at once.
template <class V, class R, class T, int Form, class Body>
inline void for_each_noisy_vector(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key,
                                  Body&& body) {
  alignas(64) T gbuf[2][kTile];  // tile t's noise in gbuf[t % 2]
  const uint64_t first = start / kTile, last = n ? (start + n - 1) / kTile : 0;
  constexpr size_t W = V::width;
  auto make = [&](RowNoise<R, T>& src, uint64_t tile) {
    src.load_tile(tile);
    const uint64_t t0 = tile * kTile, lo = start > t0 ? start - t0 : 0, hi = start + n - t0 < kTile ? start + n - t0 : kTile;
    if (lo == 0 && hi == kTile)
      noise_tile<V, R, T, Form == kUnitForm>(src.words, src.top, src.top_set, gbuf[tile % 2]);
    else
      noise_vectors<V, R, T, Form == kUnitForm>(src.words, src.top, src.top_set, gbuf[tile % 2], lo / W, (hi + W - 1) / W);
  };
  auto begin = [&](RowNoise<R, T>& src, uint64_t tile) SSM_INLINE {
    if (tile == first) make(src, tile);
    if (tile < last) {
      if ((tile + 1) % 16 == 0) src.fill_gates(tile + 1);  // a new span: the walker refills them, identically
      make(src, tile + 1);
    }
  };
  for_each_tile_vector<V, R>(x, n, start, row, key, [&](RowNoise<R, T>&, uint64_t tile, size_t j, Reg<V> xv, uint64_t g0, T* buf) SSM_INLINE {
    body(j, xv, V::load(gbuf[tile % 2] + j), g0, buf);
  }, NoSkip{}, begin);
}

template <class V, class R, class T, int Form>
ExpSum softmax_expsum_form(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_tau,
                           double ref, T* keep) {
  constexpr size_t W = V::width, U = kTile / W;
  ExpAcc<V, true> slot[U];
  for (auto& s : slot) s.init();
  Reg<V> vmax = V::set1(-kInf);
  typename V::mask special = V::none();
  const Reg<V> vinv = V::set1(tau_inverse<T>(inv_tau)), vref = V::set1(ref);
  for_each_noisy_vector<V, R, T, Form>(x, n, start, row, key, [&](size_t j, Reg<V> xv, Reg<V> noise, uint64_t g0, T* buf) SSM_INLINE {
    Reg<V> m, k;
    softmax_term<V, R, Form>(xv, noise, vref, vinv, m, k);
    if (keep) {
      // the unit form keeps the term's mantissa exp(x) / E itself (its
      // exponent k depends on x alone): pass 2 then takes no exp and no divide
      const Reg<V> kept_v = Form == kUnitForm ? m : noise;
      if (!buf) {
        V::store(keep + (g0 - start), kept_v);
      } else {
        alignas(64) T kept[W];
        V::store(kept, kept_v);
        for (size_t l = 0; l < W; ++l)
          if (g0 + l >= start && g0 + l < start + n) keep[g0 + l - start] = kept[l];
      }
    }
    special = V::mask_or(special, V::unord(xv));
    vmax = V::max(Form == kUnitForm ? xv : V::add(xv, noise), vmax);
    slot[j / W].add(m, k);
  });
  // Slots in order 0..63 whatever the lane count: the same sum everywhere.
  double s[kTile], c[kTile], e[kTile];
  for (size_t u = 0; u < U; ++u) {
    V::to_array(slot[u].s, s + u * W);
    V::to_array(slot[u].c, c + u * W);
    V::to_array(slot[u].e, e + u * W);
  }
  // The largest exponent by a vector max (exact in any order: a short row
  // waited on a 64-step scalar chain here).
  Reg<V> ev = slot[0].e;
  for (size_t u = 1; u < U; ++u) ev = V::max(ev, slot[u].e);
  const double hmax = V::hmax(ev), emax = hmax > kEmptyExp ? hmax : kEmptyExp;
  DoubleDouble sum;
  for (size_t i = 0; i < kTile; ++i) {
    const double kk = e[i] - emax;
    if (kk < -1100.0) continue;
    // an exact power-of-two multiply rounds like std::ldexp (a library call)
    const double f = kk >= -1000.0 ? pow2_int(static_cast<int>(kk)) : 0.0;
    sum.add(f != 0.0 ? s[i] * f : std::ldexp(s[i], static_cast<int>(kk)));
    sum.add(f != 0.0 ? -(c[i] * f) : -std::ldexp(c[i], static_cast<int>(kk)));
  }
  ExpSum out;
  out.m = sum.value();
  out.e = emax;
  out.max = V::hmax(vmax);
  out.special = V::any(special);
  return out;
}

template <class V, class R, class T, int Form>
void softmax_write_form(const T* x, T* y, size_t n, uint64_t start, uint64_t row, const GumbelKey& key,
                        double inv_tau, double ref, double e, double inv) {
  constexpr size_t W = V::width;
  const Reg<V> vinv = V::set1(tau_inverse<T>(inv_tau)), vref = V::set1(ref), ve = V::set1(e), vscale = V::set1(inv);
  for_each_noisy_vector<V, R, T, Form>(x, n, start, row, key, [&](size_t, Reg<V> xv, Reg<V> noise, uint64_t g0, T* buf) SSM_INLINE {
    Reg<V> m, k;
    softmax_term<V, R, Form>(xv, noise, vref, vinv, m, k);
    const Reg<V> out = V::scale2(V::mul(m, vscale), V::sub(k, ve));
    if (!buf) {
      V::store(y + (g0 - start), out);
      return;
    }
    V::store(buf, out);
    for (size_t l = 0; l < W; ++l)
      if (g0 + l >= start && g0 + l < start + n) y[g0 + l - start] = buf[l];
  });
}

template <class V, class R, class T>
ExpSum softmax_expsum(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_tau,
                      double ref, int form, T* keep) {
  switch (form) {
    case kUnitForm: return softmax_expsum_form<V, R, T, kUnitForm>(x, n, start, row, key, inv_tau, ref, keep);
    case kExactForm: return softmax_expsum_form<V, R, T, kExactForm>(x, n, start, row, key, inv_tau, ref, keep);
    default: return softmax_expsum_form<V, R, T, kScaledForm>(x, n, start, row, key, inv_tau, ref, keep);
  }
}

template <class V, class R, class T>
void softmax_write(const T* x, T* y, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_tau,
                   double ref, int form, double e, double inv) {
  switch (form) {
    case kUnitForm: return softmax_write_form<V, R, T, kUnitForm>(x, y, n, start, row, key, inv_tau, ref, e, inv);
    case kExactForm: return softmax_write_form<V, R, T, kExactForm>(x, y, n, start, row, key, inv_tau, ref, e, inv);
    default: return softmax_write_form<V, R, T, kScaledForm>(x, y, n, start, row, key, inv_tau, ref, e, inv);
  }
}

// Each row's fault from its logits alone, as gumbel_softmax reports them
// (fault[r] = 0, or 1 NaN, 2 +inf, 3 no finite logit), for rows x n at x:
// one vector pass for NaN and +inf over the whole block, and, for rows of
// up to kScanLowMax, for -inf (or NaN: below -max) beside it; rows are
// looked at one by one only when it finds some (else every row holds a
// finite logit: all fine). The loop per row cost about as much as the pass
// at n = 8 (avx2: 2.9 -> 0.9 instructions per element); on longer rows the
// -inf compare costs more than the loop it saves (151,936: 0.63 -> 0.88).
constexpr size_t kScanLowMax = 64;

template <class V, class T>
void scan_rows(const T* x, size_t rows, size_t n, uint8_t* fault) {
  constexpr size_t W = V::width;
  const Reg<V> vmaxfinite = V::set1(static_cast<double>(kMaxFinite<T>));
  const Reg<V> vlowest = V::set1(-static_cast<double>(kMaxFinite<T>));
  const size_t total = rows * n;
  typename V::mask b0 = V::none(), b1 = V::none(), l0 = V::none(), l1 = V::none();
  const bool lows = n <= kScanLowMax;
  size_t i = 0;
  if (lows) {
    for (; i + 2 * W <= total; i += 2 * W) {
      const Reg<V> a = V::load(x + i), b = V::load(x + i + W);
      b0 = V::mask_or(b0, V::not_le(a, vmaxfinite));
      b1 = V::mask_or(b1, V::not_le(b, vmaxfinite));
      l0 = V::mask_or(l0, V::not_le(vlowest, a));
      l1 = V::mask_or(l1, V::not_le(vlowest, b));
    }
  } else {
    for (; i + 2 * W <= total; i += 2 * W) {
      b0 = V::mask_or(b0, V::not_le(V::load(x + i), vmaxfinite));
      b1 = V::mask_or(b1, V::not_le(V::load(x + i + W), vmaxfinite));
    }
  }
  for (; i < total; i += W) {
    alignas(64) T buf[W];
    copy_padded(buf, W, 0, x + i, total - i < W ? total - i : W, T(0));
    const Reg<V> a = V::load(buf);
    b0 = V::mask_or(b0, V::not_le(a, vmaxfinite));
    l0 = V::mask_or(l0, V::not_le(vlowest, a));
  }
  const bool bad = V::any(V::mask_or(b0, b1));
  if (lows && !bad && !V::any(V::mask_or(l0, l1))) {
    std::memset(fault, 0, rows);
    return;
  }
  const T minus_inf = -static_cast<T>(kInf);
  for (size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    uint8_t f = 0;
    if (bad) {
      bool nan = false, posinf = false;
      for (size_t e = 0; e < n; ++e) {
        nan = nan || xr[e] != xr[e];
        posinf = posinf || xr[e] > kMaxFinite<T>;
      }
      f = nan ? 1 : posinf ? 2 : 0;
    }
    if (f == 0) {
      size_t e = 0;
      while (e < n && !(xr[e] > minus_inf)) ++e;
      f = e == n ? 3 : 0;
    }
    fault[r] = f;
  }
}

// gumbel_softmax's second pass from what pass 1 kept (softmax_expsum's
// keep: the term's mantissa exp(x) / E in the unit form, else g): the same
// terms element by element (a lane's term depends on its element alone),
// with no noise generated (and in the unit form no exp or divide either:
// the exponent is round(x log2 e) again). noise may be y itself (each
// vector is read before it is written).
template <class V, class R, class T, int Form>
void softmax_write_kept_form(const T* x, T* y, size_t n, const T* noise, double inv_tau, double ref, double e,
                             double inv) {
  constexpr size_t W = V::width;
  const Reg<V> vinv = V::set1(tau_inverse<T>(inv_tau)), vref = V::set1(ref), ve = V::set1(e), vscale = V::set1(inv);
  auto term = [&](Reg<V> xv, Reg<V> gv) SSM_INLINE {
    Reg<V> m, k;
    if constexpr (Form == kUnitForm) {
      // gv is the term's mantissa (see softmax_expsum_form); its exponent is
      // exp_split's round(x log2 e), x clamped as softmax_term clamps it
      m = gv;
      k = V::round(V::mul(V::max(xv, V::set1(kClampLow)), V::set1(ExpCoeffs<typename V::scalar>::log2e)));
    } else {
      softmax_term<V, R, Form>(xv, gv, vref, vinv, m, k);
    }
    return V::scale2(V::mul(m, vscale), V::sub(k, ve));
  };
  size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const Reg<V> a = term(V::load(x + i), V::load(noise + i)), b = term(V::load(x + i + W), V::load(noise + i + W));
    V::store(y + i, a);
    V::store(y + i + W, b);
  }
  for (; i < n; i += W) {
    alignas(64) T xb[W], gb[W], out[W];
    copy_padded(xb, W, 0, x + i, n - i, -static_cast<T>(kInf));
    copy_padded(gb, W, 0, noise + i, n - i, T(1));
    V::store(out, term(V::load(xb), V::load(gb)));
    for (size_t l = 0; l < W && i + l < n; ++l) y[i + l] = out[l];
  }
}

template <class V, class R, class T>
void softmax_write_kept(const T* x, T* y, size_t n, const T* noise, double inv_tau, double ref, int form, double e,
                        double inv) {
  switch (form) {
    case kUnitForm: return softmax_write_kept_form<V, R, T, kUnitForm>(x, y, n, noise, inv_tau, ref, e, inv);
    case kExactForm: return softmax_write_kept_form<V, R, T, kExactForm>(x, y, n, noise, inv_tau, ref, e, inv);
    default: return softmax_write_kept_form<V, R, T, kScaledForm>(x, y, n, noise, inv_tau, ref, e, inv);
  }
}

// gumbel_softmax of short rows, several at a time: rows inside one tile
// (start % kTile + n <= kTile, so element e is alone in its sum slot
// (start + e) % kTile and the slots are summed in element order). Each
// batch's noise comes from ShortRowWords once per element (the row walk
// generates it in both passes and draws whole tiles and gate spans), its
// terms vector by vector across row boundaries (a lane's term depends on its
// element alone), then each row's max, form and sum as softmax_expsum_form
// and the driver make them -- a slot holding one term m 2^k has s = m, c = 0,
// e = k, and an empty or padded slot lies below the row's largest exponent
// by far more than the 1100 binades the sum skips -- and the write as
// softmax_write_form. Every bit is the row walk's. fault[r]: 0, or the
// RowFault of row r (1 NaN, 2 +inf, 3 no finite logit), which is then not
// written.
constexpr size_t kSoftmaxRowsMax = kTile;

// The sums of G short rows at once (terms m 2^k, row r's n terms at
// m + r * n, k + r * n): each row's largest exponent and its DoubleDouble
// sum of m 2^(k - emax) in element order, the operations softmax_expsum_form
// does for the row, only interleaved across the rows (one row's sum was a
// chain of dependent adds, the top cost of gumbel_softmax at n = 8). False
// (nothing stored) if a row is faulty or has a term more than 1000 binades
// below its largest (the row-by-row code then handles the group). G: the
// doubles of one of the kernel set's vectors (wider generic vectors, split
// by the compiler, ran slower than the row-by-row code on avx2).
template <size_t G>
struct SumLanes;  // the compiler's generic vectors of G lanes
template <>
struct SumLanes<2> {
  typedef double D __attribute__((vector_size(16)));
  typedef uint64_t U __attribute__((vector_size(16)));
  typedef float F __attribute__((vector_size(8)));
};
template <>
struct SumLanes<4> {
  typedef double D __attribute__((vector_size(32)));
  typedef uint64_t U __attribute__((vector_size(32)));
  typedef float F __attribute__((vector_size(16)));
};
template <>
struct SumLanes<8> {
  typedef double D __attribute__((vector_size(64)));
  typedef uint64_t U __attribute__((vector_size(64)));
  typedef float F __attribute__((vector_size(32)));
};

template <size_t G, class T>
inline bool sum_rows_fast(const T* m, const T* k, size_t n, const uint8_t* fault, double* sum, double* emax) {
  // one lane a row, in the compiler's generic vectors (the scalar loops
  // left the double -> int -> exponent steps scalar)
  using D = typename SumLanes<G>::D;
  using U = typename SumLanes<G>::U;
  using L = std::conditional_t<std::is_same<T, float>::value, typename SumLanes<G>::F, D>;
  for (size_t r = 0; r < G; ++r)
    if (fault[r] != 0) return false;
  // the terms transposed: element e of the rows side by side
  alignas(64) T mt[kSoftmaxRowsMax * G], kt[kSoftmaxRowsMax * G];
  for (size_t r = 0; r < G; ++r)
    for (size_t e = 0; e < n; ++e) {
      mt[e * G + r] = m[r * n + e];
      kt[e * G + r] = k[r * n + e];
    }
  auto load = [](const T* p) SSM_INLINE {
    L v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, D);
  };
  D top = kEmptyExp - D{}, low = D{};
  for (size_t e = 0; e < n; ++e) {
    const D kr = load(kt + e * G);
    top = kr > top ? kr : top;
  }
  for (size_t e = 0; e < n; ++e) {
    const D kk = load(kt + e * G) - top;
    low = kk < low ? kk : low;
  }
  for (size_t r = 0; r < G; ++r)
    if (!(low[r] >= -1000.0)) return false;
  D hi = D{}, lo = D{};
  for (size_t e = 0; e < n; ++e) {
    const D kk = load(kt + e * G) - top;
    // pow2_int(kk): kk + 1.5 * 2^52 holds the integer kk in its low bits,
    // exactly (-1000 <= kk <= 0); 2^kk's exponent field is kk + 1023 from
    // there, the magic number's own bits shifted out
    const D f = reinterpret_cast<D>((reinterpret_cast<U>(kk + 6755399441055744.0) + 1023) << 52);
    const D a = load(mt + e * G) * f;
    // DoubleDouble::add, lane by lane
    const D s = hi + a, bb = s - hi;
    lo += (hi - (s - bb)) + (a - bb);
    hi = s;
  }
  for (size_t r = 0; r < G; ++r) {
    sum[r] = hi[r] + lo[r];
    emax[r] = top[r];
  }
  return true;
}

// Steps 3 and 4 of softmax_rows for W = V::width float rows at once, one a
// lane, with no per-row loop: the rows' x + g (x in the unit form), term
// mantissas and exponents transposed a W x W block at a time (column e =
// element e of the W rows), then each row's max by vector max, its checks
// as lane masks, and its largest exponent and DoubleDouble sum in element
// order as sum_rows_fast makes them (m 2^kk with -1000 <= kk <= 0 is exact,
// the same as s * pow2_int(kk)). False (nothing stored) if a row is faulty,
// leaves the fast range or has a term more than 1000 binades below its
// largest: the row-by-row steps then take the group. Reads up to W - 1
// elements past the group's last row (never used).
template <class V, class T>
inline bool finish_rows_lanes(const T* top_of, const T* tm, const T* tk, size_t n, double inv_tau, double* total,
                              double* emax) {
  using D = typename V::wide;
  constexpr size_t W = V::width;
  alignas(64) T ct[kSoftmaxRowsMax * W], cm[kSoftmaxRowsMax * W], ck[kSoftmaxRowsMax * W];
  for (size_t j = 0; j < n; j += W) {
    transpose_block<V>(top_of + j, n, ct + j * W, W);
    transpose_block<V>(tm + j, n, cm + j * W, W);
    transpose_block<V>(tk + j, n, ck + j * W, W);
  }
  Reg<V> best = V::load(ct), kmax = V::load(ck);
  for (size_t e = 1; e < n; ++e) {
    best = V::max(V::load(ct + e * W), best);
    kmax = V::max(V::load(ck + e * W), kmax);
  }
  if (V::any(V::notfinite(best))) return false;  // +inf, or no finite value (NaN rows never come here)
  Reg<D> b[2], top[2];
  V::widen(best, b[0], b[1]);
  V::widen(V::max(kmax, V::set1(kEmptyExp)), top[0], top[1]);
  const Reg<D> vinv = D::set1(inv_tau), lim = D::set1(kFastLimit), neg_lim = D::set1(-kFastLimit);
  for (size_t h = 0; h < 2; ++h) {
    const Reg<D> z = D::mul(b[h], vinv);
    if (D::any(D::mask_or(D::not_le(z, lim), D::not_le(neg_lim, z)))) return false;
  }
  const Reg<D> zero = D::set1(0.0);
  Reg<D> hi[2] = {zero, zero}, lo[2] = {zero, zero}, low[2] = {zero, zero};
  for (size_t e = 0; e < n; ++e) {
    Reg<D> k[2], mv[2];
    V::widen(V::load(ck + e * W), k[0], k[1]);
    V::widen(V::load(cm + e * W), mv[0], mv[1]);
    for (size_t h = 0; h < 2; ++h) {
      const Reg<D> kk = D::sub(k[h], top[h]);
      low[h] = D::min(kk, low[h]);
      const Reg<D> a = D::scale2_term(mv[h], kk);
      // DoubleDouble::add, lane by lane
      const Reg<D> sum = D::add(hi[h], a), bb = D::sub(sum, hi[h]);
      lo[h] = D::add(lo[h], D::add(D::sub(hi[h], D::sub(sum, bb)), D::sub(a, bb)));
      hi[h] = sum;
    }
  }
  const Reg<D> floor = D::set1(-1000.0);
  if (D::any(D::mask_or(D::not_le(floor, low[0]), D::not_le(floor, low[1])))) return false;
  for (size_t h = 0; h < 2; ++h) {
    D::to_array(D::add(hi[h], lo[h]), total + h * D::width);
    D::to_array(top[h], emax + h * D::width);
  }
  return true;
}

template <class V, class R, class T, size_t Batch>
void softmax_rows_batch(const T* x, T* y, size_t rows, size_t n, uint64_t start, uint64_t row, const GumbelKey& key,
                        double inv_tau, uint8_t* fault) {
  constexpr size_t W = V::width;
  ShortRowWords<R, T, Batch> src(start, n, rows, Batch / n >= W ? Batch : W * n);
  const size_t per_batch = src.per_batch;
  const bool unit = inv_tau == 1.0;
  constexpr size_t kBuf = Batch + kTile;
  alignas(64) T g[kBuf], term_m[kBuf], term_k[kBuf], top_of[kBuf], row_scale[kBuf], row_exp[kBuf];
  // rows whose sums are taken together (sum_rows_fast): a vector's doubles,
  // at least 2
  constexpr size_t kSumRows = V::width * sizeof(T) >= 2 * sizeof(double) ? V::width * sizeof(T) / sizeof(double) : 2;
  alignas(64) double sums[kSumRows], emaxes[kSumRows];
  // rows whose steps 3 and 4 are done in the lanes of float vectors
  // (finish_rows_lanes): kernel sets that transpose in registers
  constexpr bool kLanes = std::is_same<T, float>::value && Transposes<V>::value;
  constexpr size_t kChunk = W > kSumRows ? W : kSumRows;
  alignas(64) double lane_total[W], lane_emax[W];
  const Reg<V> vinv = V::set1(tau_inverse<T>(inv_tau)), vmaxfinite = V::set1(static_cast<double>(kMaxFinite<T>));
  const T minus_inf = -static_cast<T>(kInf);
  for (size_t r0 = 0; r0 < rows; r0 += per_batch) {
    const size_t m = rows - r0 < per_batch ? rows - r0 : per_batch, elems = m * n;
    if (r0 + m < rows)
      prefetch_rows(x + (r0 + m) * n, (rows - r0 - m < per_batch ? rows - r0 - m : per_batch) * n * sizeof(T));
    if (r0 + m < rows) {  // the next batch's output lines, owned before its burst of stores
      const char* next = reinterpret_cast<const char*>(y + (r0 + m) * n);
      const size_t bytes = (rows - r0 - m < per_batch ? rows - r0 - m : per_batch) * n * sizeof(T);
      for (size_t b = 0; b < bytes; b += 64) SSM_PREFETCH_WRITE(next + b);
    }
    src.draw(row + r0 + key.row_offset, m, key);
    const T* xb = x + r0 * n;
    T* yb = y + r0 * n;
    // 1. the noise (E in the unit form), a tile of elements at a time
    for (size_t u = 0; u < elems; u += kTile) {
      if (unit)
        noise_tile<V, R, T, true>(src.ew + u, src.top + u, src.has_top, g + u);
      else
        noise_tile<V, R, T, false>(src.ew + u, src.top + u, src.has_top, g + u);
    }
    // 2. the terms in the fast form, and what each row's max is taken of
    typename V::mask bad = V::none();
    for (size_t u = 0; u < elems; u += W) {
      const Reg<V> xv = load_padded<V>(xb, u, elems);
      bad = V::mask_or(bad, V::not_le(xv, vmaxfinite));
      const Reg<V> gv = V::load(g + u);
      Reg<V> tm, tk;
      if (unit) {
        V::store(top_of + u, xv);
        softmax_term<V, R, kUnitForm>(xv, gv, vinv, vinv, tm, tk);
      } else {
        V::store(top_of + u, V::add(xv, gv));
        softmax_term<V, R, kScaledForm>(xv, gv, vinv, vinv, tm, tk);
      }
      V::store(term_m + u, tm);
      V::store(term_k + u, tk);
    }
    const bool any_bad = V::any(bad);
    bool faulty = false;
    // Row r's scale and exponent under each of its elements, a vector at a
    // time: the vectors past the row's end land on the next rows' elements,
    // which their own set_row overwrites (rows are set in increasing order),
    // or in the arrays' slack past the batch (a faulty row is not set and
    // not written).
    auto set_row = [&](size_t r, double total, double emax) SSM_INLINE {
      const Reg<V> scale = V::set1(static_cast<double>(static_cast<T>(1.0 / total)));
      const Reg<V> exp = V::set1(static_cast<double>(static_cast<T>(emax)));
      for (size_t e = 0; e < n; e += W) {
        V::store(row_scale + r * n + e, scale);
        V::store(row_exp + r * n + e, exp);
      }
    };
    // 3 and 4 a chunk of rows at a time: W rows in lanes where they pass
    // (finish_rows_lanes), else row by row
    for (size_t ra = 0; ra < m; ra += kChunk) {
      const size_t rb = m - ra < kChunk ? m : ra + kChunk;
      if constexpr (kLanes) {
        if (!any_bad && rb - ra == W &&
            finish_rows_lanes<V>(top_of + ra * n, term_m + ra * n, term_k + ra * n, n, inv_tau, lane_total, lane_emax)) {
          for (size_t r = 0; r < W; ++r) {
            fault[r0 + ra + r] = 0;
            set_row(ra + r, lane_total[r], lane_emax[r]);
          }
          continue;
        }
      }
      // 3. each row: its fault, its form (rows outside the fast range redone
      // relative to their max, as the driver does)
      for (size_t r = ra; r < rb; ++r) {
        const T* xr = xb + r * n;
        const size_t o = r * n;
        T best = minus_inf;
        for (size_t e = 0; e < n; ++e) best = top_of[o + e] > best ? top_of[o + e] : best;
        uint8_t f = 0;
        if (any_bad)
          for (size_t e = 0; e < n; ++e) f = xr[e] != xr[e] ? uint8_t{1} : f;
        if (f == 0 && best == static_cast<T>(kInf)) f = 2;
        if (f == 0 && !(best > minus_inf)) f = 3;
        fault[r0 + r] = f;
        if (f != 0) {
          faulty = true;
          continue;
        }
        const double top = static_cast<double>(best), zmax = top * inv_tau;
        if (!(zmax <= kFastLimit && zmax >= -kFastLimit)) {
          for (size_t e = 0; e < n; e += W) {
            alignas(64) T xt[W], gt[W], mt[W], kt[W];
            copy_padded(xt, W, 0, xr + e, n - e, minus_inf);  // reads the row's own elements only
            copy_padded(gt, W, 0, g + o + e, n - e, T(1));
            Reg<V> gv = V::load(gt), tm, tk;
            if (unit) gv = V::sub(V::set1(0.0), log_positive<V, R>(gv));  // g = -log E
            softmax_term<V, R, kExactForm>(V::load(xt), gv, V::set1(top), vinv, tm, tk);
            V::store(mt, tm);
            V::store(kt, tk);
            for (size_t l = 0; l < W && e + l < n; ++l) {
              term_m[o + e + l] = mt[l];
              term_k[o + e + l] = kt[l];
            }
          }
        }
      }
      for (size_t r1 = ra; r1 < rb; r1 += kSumRows) {
        const size_t g = rb - r1 < kSumRows ? rb - r1 : kSumRows;
        if (g == kSumRows && sum_rows_fast<kSumRows>(term_m + r1 * n, term_k + r1 * n, n, fault + r0 + r1, sums, emaxes)) {
          for (size_t r = 0; r < kSumRows; ++r) set_row(r1 + r, sums[r], emaxes[r]);
          continue;
        }
        for (size_t r = r1; r < r1 + g; ++r) {
          if (fault[r0 + r] != 0) continue;
          const size_t o = r * n;
          double emax = kEmptyExp;
          for (size_t e = 0; e < n; ++e) {
            const double k = static_cast<double>(term_k[o + e]);
            emax = k > emax ? k : emax;
          }
          DoubleDouble sum;
          for (size_t e = 0; e < n; ++e) {
            const double kk = static_cast<double>(term_k[o + e]) - emax, s = static_cast<double>(term_m[o + e]);
            if (kk < -1100.0) continue;
            const double f2 = kk >= -1000.0 ? pow2_int(static_cast<int>(kk)) : 0.0;
            sum.add(f2 != 0.0 ? s * f2 : std::ldexp(s, static_cast<int>(kk)));
          }
          set_row(r, sum.value(), emax);
        }
      }
    }
    // 5. the write
    for (size_t u = 0; u < elems; u += W) {
      const Reg<V> out = V::scale2(V::mul(V::load(term_m + u), V::load(row_scale + u)),
                                   V::sub(V::load(term_k + u), V::load(row_exp + u)));
      if (u + W <= elems && !faulty) {
        V::store(yb + u, out);
        continue;
      }
      alignas(64) T buf[W];
      V::store(buf, out);
      for (size_t l = 0; l < W && u + l < elems; ++l)
        if (fault[r0 + (u + l) / n] == 0) yb[u + l] = buf[l];
    }
  }
}

template <class V, class R, class T>
void softmax_rows(const T* x, T* y, size_t rows, size_t n, uint64_t start, uint64_t row, const GumbelKey& key,
                  double inv_tau, uint8_t* fault) {
  constexpr size_t W = V::width, kWide = W * kSoftmaxRowsMax;
  if (rows == 0 || n == 0 || start % kTile + n > kTile) return;
  // Batches of at least W rows where the lanes take them (finish_rows_lanes:
  // AVX-512 float rows of 33-64 come 16 at a time, not 512 / n); shorter
  // rows keep the smaller batch (and its smaller frame).
  if constexpr (kWide > kShortBatch) {
    if (kShortBatch / n < W) return softmax_rows_batch<V, R, T, kWide>(x, y, rows, n, start, row, key, inv_tau, fault);
  }
  softmax_rows_batch<V, R, T, kShortBatch>(x, y, rows, n, start, row, key, inv_tau, fault);
}

template <class V, class R, class T>
GumbelKernels<T> make_gumbel_kernels() {
  GumbelKernels<T> k;
  k.topk = &topk<V, R, T>;
  k.noise = &noise<V, R, T>;
  k.expsum = &softmax_expsum<V, R, T>;
  k.write = &softmax_write<V, R, T>;
  k.philox16 = &R::philox16;
  k.topk_rows = &topk_rows<V, R, T>;
  k.short_rows_max = kShortRowsMax;
  k.write_kept = &softmax_write_kept<V, R, T>;
  k.softmax_rows = &softmax_rows<V, R, T>;
  k.softmax_rows_max = kSoftmaxRowsMax;
  k.scan_rows = &scan_rows<V, T>;
  // Every Gumbel kernel walks tiles of kTile elements (4 groups of 16), and
  // refills its gate words every 16 tiles.
  TileList& t = k.tiles;
  t.count = 0;
  add_tile(t, "gumbel.lanes", V::width);
  add_tile(t, "gumbel.group", 16);
  add_tile(t, "gumbel.tile", kTile);
  add_tile(t, "gumbel.gate_span", 16 * kTile);
  // The pruned top-k reads the gates of this many elements before their logits.
  add_tile(t, "gumbel.window", kWindowSpans * kSpan);
  // Its lanes' noise comes kBatch at a time; a tile with up to kSparseLanes
  // lanes that can place gives them to the batch at once (compacted).
  add_tile(t, "gumbel.noise_batch", kBatch);
  add_tile(t, "gumbel.sparse_lanes", kSparseLanes);
  // topk_rows: the longest row it takes, and its batch (elements; rows of n
  // come kShortBatch / n at a time).
  add_tile(t, "gumbel.short_rows", kShortRowsMax);
  add_tile(t, "gumbel.short_batch", kShortBatch);
  // ... whose rows up to this long take k > 2 interleaved (best_k_of_rows)
  // when a batch holds a vector's lanes of rows; k up to gumbel.lanes of the
  // AVX-512 and AVX2 sets takes one vector of the k best (topk_lanes.h).
  add_tile(t, "gumbel.interleaved_rows", kInterleavedTopkMaxN);
  return k;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
