// Bandwidth probes with the same loads, stores and prefetches as the kernels:
// a streaming sum (read), a copy and a store-only fill. The benchmark's
// roofline divides by their times, so it compares like with like.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace (and include its vecmath_<isa>.h) first"
#endif
#pragma once

#include "simd_loops.h"

namespace ssm {
namespace SSM_ISA {
namespace {

template <class V, class In>
double probe_read(const In* x, size_t n) {
  Reg<V> s[kUnroll];
  for (auto& v : s) v = V::set1(0.0);
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int u) SSM_INLINE {
    if (ahead && u == 0) prefetch_block<kUnroll * V::width * sizeof(In)>(x + i + ahead);
    s[u] = V::add(s[u], load_n<V>(x + i, count, 0.0));
  });
  double total = 0.0;
  for (auto& v : s) total += V::hsum(v);
  return total;
}

template <class V, bool Stream, class In>
void probe_copy_impl(const In* x, In* y, size_t n) {
  constexpr size_t W = V::width;
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  store_loop_blocks<V, kUnroll, Stream>(
      y, n, [&](size_t i, size_t count) SSM_INLINE { return load_n<V>(x + i, count, 0.0); },
      [&](size_t i, Reg<V>(&v)[kUnroll]) SSM_INLINE {
        if (ahead) prefetch_block<kUnroll * W * sizeof(In)>(x + i + ahead);
        for (int u = 0; u < kUnroll; ++u) v[u] = V::load(x + i + u * W);
      });
}

template <class V, class In>
void probe_copy(const In* x, In* y, size_t n, bool stream) {
  if (stream)
    probe_copy_impl<V, true>(x, y, n);
  else
    probe_copy_impl<V, false>(x, y, n);
}

template <class V, class In>
void probe_fill(In* y, size_t n, double value, bool stream) {
  const Reg<V> v = V::set1(value);
  store_loop<V>(stream, y, n, [&](size_t, size_t) SSM_INLINE { return v; });
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
