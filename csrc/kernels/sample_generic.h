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
//    one of its lanes reaches the current k-th value, which after the first
//    few thousand elements of a row almost never happens.
//  * histogram: masses exp((x - max) / T) binned by logit over a range, as
//    exact fixed-point sums (sample_fixed.h), so the bin holding the top-p
//    threshold is the same on every kernel set, thread count and chunking;
//    the driver narrows the range to that bin until it holds few elements.
//  * collect: the values of that last range (few), for an exact finish.
//  * mass: the kept mass, for logprobs="processed".
// Vectors only filter (is any lane in range?); the per-element work is scalar
// float64 arithmetic with std::exp, identical on every kernel set.
#ifndef SSM_ISA
#error "define SSM_ISA before including sample_generic.h"
#endif

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

inline double element_mass(double x, double ref, double inv_temp) {
  return x == ref ? 1.0 : std::exp((x - ref) * inv_temp);
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

template <class V, class T>
SelectResult select(const T* x, size_t n, uint64_t start, size_t k, double* value, uint64_t* index) {
  constexpr size_t W = V::width;
  SelectResult res;
  if (k == 0) return res;
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
  for (; i < n && heap.size < k; ++i) offer(static_cast<double>(x[i]), start + i);
  // x > below(root) or NaN: the lanes that can enter the heap, tie or flag.
  Reg<V> vlow = V::set1(below<T>(value[0]));
  for (; i + W <= n; i += W) {
    if (!V::any(V::not_le(V::load(x + i), vlow))) continue;
    for (size_t l = 0; l < W; ++l) offer(static_cast<double>(x[i + l]), start + i + l);
    vlow = V::set1(below<T>(value[0]));
  }
  for (; i < n; ++i) offer(static_cast<double>(x[i]), start + i);
  heap.sort();
  res.count = heap.size;
  res.ties = heap.size == k ? ties : 0;
  return res;
}

// The lanes of x in [lo, hi] (lo_below = below(lo)), or, with sink, every
// lane <= hi (NaN too: the caller has checked there is none).
template <class V>
inline bool any_in(Reg<V> xv, Reg<V> lo_below, Reg<V> hi) {
  return V::any(V::gt(V::select(V::gt(xv, hi), V::set1(-kInf), xv), lo_below));
}

template <class V, class T>
void histogram(const T* x, size_t n, double ref, double inv_temp, double lo, double hi, double scale, size_t bins,
               bool sink, MassBin* out) {
  constexpr size_t W = V::width;
  auto add = [&](double v) {
    size_t b;
    if (v >= lo && v <= hi) {
      const double t = (hi - v) * scale;
      b = t < static_cast<double>(bins - 1) ? static_cast<size_t>(t) : bins - 1;
    } else if (sink && v < lo && v > -kInf) {
      b = bins;
    } else {
      return;
    }
    MassBin& bin = out[b];
    fixed_add_mass(bin.mass, element_mass(v, ref, inv_temp));
    if (bin.count == 0) bin.lo = bin.hi = v;
    bin.lo = v < bin.lo ? v : bin.lo;
    bin.hi = v > bin.hi ? v : bin.hi;
    ++bin.count;
  };
  const Reg<V> vlo = V::set1(sink ? -kInf : below<T>(lo)), vhi = V::set1(hi);
  size_t i = 0;
  for (; i + W <= n; i += W) {
    if (!any_in<V>(V::load(x + i), vlo, vhi)) continue;
    for (size_t l = 0; l < W; ++l) add(static_cast<double>(x[i + l]));
  }
  for (; i < n; ++i) add(static_cast<double>(x[i]));
}

template <class V, class T>
size_t collect(const T* x, size_t n, double lo, double hi, double* out, size_t cap) {
  constexpr size_t W = V::width;
  size_t count = 0;
  auto add = [&](double v) {
    if (!(v >= lo && v <= hi)) return;
    if (count < cap) out[count] = v;
    ++count;
  };
  const Reg<V> vlo = V::set1(below<T>(lo)), vhi = V::set1(hi);
  size_t i = 0;
  for (; i + W <= n; i += W) {
    if (!any_in<V>(V::load(x + i), vlo, vhi)) continue;
    for (size_t l = 0; l < W; ++l) add(static_cast<double>(x[i + l]));
  }
  for (; i < n; ++i) add(static_cast<double>(x[i]));
  return count;
}

template <class V, class T>
void mass(const T* x, size_t n, double ref, double inv_temp, double floor, FixedMass* out) {
  constexpr size_t W = V::width;
  auto add = [&](double v) {
    if (v >= floor && v > -kInf) fixed_add_mass(*out, element_mass(v, ref, inv_temp));
  };
  const Reg<V> vlo = V::set1(below<T>(floor));
  size_t i = 0;
  for (; i + W <= n; i += W) {
    if (!V::any(V::gt(V::load(x + i), vlo))) continue;
    for (size_t l = 0; l < W; ++l) add(static_cast<double>(x[i + l]));
  }
  for (; i < n; ++i) add(static_cast<double>(x[i]));
}

template <class V, class R, class T>
TopkResult draw(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp, T floor,
                Candidate* out) {
  return topk_pruned<V, R, T, true>(x, n, start, row, key, inv_temp, 1, out, -kInf, floor);
}

// The score topk() computes for element i, (x inv + g gs) in T arithmetic
// with the same two roundings and the same constants.
template <class V, class R, class T>
Candidate draw_at(const T* x, const uint64_t* index, size_t count, uint64_t row, const GumbelKey& key,
                  double inv_temp) {
  const double gs = noise_scale(inv_temp);
  const T inv = static_cast<T>(gs == 0.0 ? 0.5 : inv_temp * gs), tgs = static_cast<T>(gs);
  Candidate best{-kInf, ~uint64_t{0}};
  for (size_t j = 0; j < count; ++j) {
    const uint64_t i = index[j];
    T g;
    noise<V, R, T>(&g, 1, i, row, key);
    const T base = x[i] * inv;
    const T noise_term = g * tgs;
    const double score = static_cast<double>(static_cast<T>(base + noise_term));
    if (score > best.score || (score == best.score && i < best.index)) best = Candidate{score, i};
  }
  return best;
}

template <class V, class R, class T>
SampleKernels<T> make_sample_kernels() {
  SampleKernels<T> k;
  k.select = &select<V, T>;
  k.histogram = &histogram<V, T>;
  k.collect = &collect<V, T>;
  k.mass = &mass<V, T>;
  k.draw = &draw<V, R, T>;
  k.draw_at = &draw_at<V, R, T>;
  return k;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
