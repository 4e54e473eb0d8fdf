// The k best of a stream of values in one vector of values and one of their
// indices (k <= a vector's lanes), over a kernel set's lane operations L (a
// vector F of values, one I of indices, lane masks M: topk_lanes_avx512.h,
// topk_lanes_avx2.h, which specialize TopkLanes<T>). Included by
// gumbel_generic.h (same namespace rules: everything in an anonymous
// namespace of ssm::SSM_ISA); used by topk's short rows (sample_generic.h's
// short_topk_lanes) and gumbel_topk's (gumbel_generic.h).
#ifndef SSM_ISA
#error "define SSM_ISA before including topk_lanes.h"
#endif
#pragma once

#include <cstddef>
#include <cstdint>

namespace ssm {
namespace SSM_ISA {
namespace {

// A kernel set's lane operations for T: none (width 0) unless its
// topk_lanes_<isa>.h specializes them.
template <class T>
struct TopkLanes {
  static constexpr size_t width = 0;
};

// Lanes 0..k-1 hold the k best so far, best first. Inserting v with index i
// where the lanes in `beaten` (a run up to lane k-1) hold smaller values:
// the first beaten lane takes v, the others their left neighbour's value.
// Values offered in index order keep ties by lower index (a value equal to
// the k-th does not enter, and one equal to a kept value goes after it).
template <class L, class T>
struct LaneTopk {
  using M = typename L::M;
  const M keep;
  const typename L::I shift = L::shift();
  typename L::F best;
  typename L::I at = L::index_bcast(0);
  typename L::F vkth;  // lane k-1 of best in every lane
  T kth;
  const size_t k;
  // Every lane `start` (index 0): only values > start enter (start = -inf:
  // an empty list; lanes still -inf at the end were never filled).
  LaneTopk(size_t k_, T start) : keep(L::first(k_)), best(L::bcast(start)), vkth(best), kth(start), k(k_) {}
  void insert(T v, size_t i, M beaten) {
    const M moved = L::moved(beaten);  // beaten lanes but the first: their left neighbour's
    best = L::blend(beaten, best, L::blend(moved, L::bcast(v), L::shifted(best, shift)));
    at = L::blend(beaten, at, L::blend(moved, L::index_bcast(i), L::shifted(at, shift)));
  }
  // v (> kth) into its place; the k-th follows.
  void place(T v, size_t i) {
    insert(v, i, L::gt(keep, L::bcast(v), best));
    vkth = L::lane(best, k - 1);
    kth = L::first_lane(vkth);
  }
};

// The lanes of x[i..n) that compare above the list's k-th as it rises (x >
// k-th, or NaN), in index order, to visit(j, bits) (bit l: x[j + l]; false
// from visit stops the walk and is returned): once the k-th is high, most
// blocks of 4 vectors pass one test.
template <class L, class T, class Visit>
bool visit_above(const LaneTopk<L, T>& list, const T* x, size_t i, size_t n, Visit&& visit) {
  constexpr size_t W = L::width;
  for (; i + 4 * W <= n; i += 4 * W) {
    if ((L::above_all(x + i, list.vkth) | L::above_all(x + i + W, list.vkth) |
         L::above_all(x + i + 2 * W, list.vkth) | L::above_all(x + i + 3 * W, list.vkth)) == 0)
      continue;
    for (size_t u = 0; u < 4; ++u)
      if (!visit(i + u * W, L::above_all(x + i + u * W, list.vkth))) return false;
  }
  for (; i < n; i += W)
    if (!visit(i, L::above(L::first(n - i < W ? n - i : W), x + i, list.vkth))) return false;
  return true;
}

// SampleKernels::short_topk over L. The first k values fill the list (an
// unfilled lane counts as beaten); then the values above the k-th
// (visit_above) are placed one by one. False on a NaN.
template <class L, class T>
bool short_topk_lanes(const T* x, size_t n, size_t k, T* value, int64_t* index) {
  using M = typename L::M;
  LaneTopk<L, T> list(k, T(0));
  for (size_t i = 0; i < k; ++i) {
    const T v = x[i];
    if (v != v) return false;
    const M filled = L::first(i);
    list.insert(v, i, L::or_not(L::gt(filled, L::bcast(v), list.best), filled, list.keep));
  }
  list.vkth = L::lane(list.best, k - 1);
  list.kth = L::first_lane(list.vkth);
  const bool ok = visit_above(list, x, k, n, [&](size_t i, uint32_t cand) {
    for (; cand != 0; cand &= cand - 1) {
      const size_t j = i + static_cast<size_t>(__builtin_ctz(cand));
      const T v = x[j];
      if (v != v) return false;
      if (v > list.kth) list.place(v, j);  // (else the k-th rose past it meanwhile)
    }
    return true;
  });
  if (ok) L::store(value, index, list.best, list.at, list.keep);
  return ok;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
