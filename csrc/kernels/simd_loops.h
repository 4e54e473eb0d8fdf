// The loop drivers every kernel family runs over a lane type V (see
// vecmath_<isa>.h): blocks of U vectors, single vectors and one masked tail;
// loads and stores of partial vectors; software prefetch; streaming stores.
//
// These headers are included by one kernel translation unit per instruction
// set, which defines SSM_ISA (the ISA's namespace) and includes its vecmath
// header first. Everything lands in ssm::SSM_ISA, in an anonymous namespace,
// so code compiled with AVX flags never leaks into the baseline code through
// a shared inline symbol (ODR); tools/check_symbols.sh checks the objects.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace (and include its vecmath_<isa>.h) first"
#endif
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "kernel_api.h"

// Stage-wise loops over the U vectors of a block must be fully unrolled
// (their registers are the point).
#if defined(__GNUC__) || defined(__clang__)
#define SSM_UNROLL _Pragma("GCC unroll 16")
#else
#define SSM_UNROLL
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#if defined(_M_X64) || defined(_M_IX86)
#include <xmmintrin.h>
#define SSM_PREFETCH(p) _mm_prefetch(p, _MM_HINT_T0)
#else
#define SSM_PREFETCH(p) ((void)(p))
#endif
#else
#define SSM_PREFETCH(p) __builtin_prefetch(p, 0, 3)
#endif

// Prefetch a line for writing (its read for ownership now): prefetchw on
// x86 (every AVX-512 CPU has it; the build does not enable -mprfchw, under
// which __builtin_prefetch would emit a read prefetch), else the compiler's.
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define SSM_PREFETCH_WRITE(p) __asm__ volatile("prefetchw %0" : : "m"(*(const char*)(p)))
#elif defined(_MSC_VER) && !defined(__clang__)
#define SSM_PREFETCH_WRITE(p) SSM_PREFETCH(reinterpret_cast<const char*>(p))
#else
#define SSM_PREFETCH_WRITE(p) __builtin_prefetch(p, 1, 3)
#endif

namespace ssm {
namespace SSM_ISA {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
template <class T>
constexpr T kMaxFinite = std::numeric_limits<T>::max();

// The few library functions the kernels call at run time that are inline in
// <cmath> / <limits> (std::isfinite, the float overload of std::nextafter),
// taken from the compiler or the C library instead: an unoptimized (Debug)
// build would emit the std:: inline functions compiled with this file's AVX
// flags as weak symbols, and the linker may pick those for baseline code too.
// Constants above are evaluated at compile time for the same reason.
inline bool is_finite(double x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_isfinite(x);
#else
  return std::isfinite(x);
#endif
}
inline float next_below(float x) { return ::nextafterf(x, -HUGE_VALF); }
inline double next_below(double x) { return ::nextafter(x, -HUGE_VAL); }
inline float next_above(float x) { return ::nextafterf(x, HUGE_VALF); }
inline double next_above(double x) { return ::nextafter(x, HUGE_VAL); }
// Initial exponent of an empty accumulator: far below any real n (|n| < 2^22),
// and exact in float.
constexpr double kEmptyExp = -16777216.0;

// buf[0..size) = fill, except buf[at..at+m) = src[0..m), m = min(count,
// size - at); no element of src past those is read. Two plain loops, not
// one select per slot: GCC turns `inside ? src[e] : fill` into masked
// vector loads (vmaskmovps/pd) over the whole buffer. A CPU never faults on
// a masked-off lane, but qemu's emulation (7.2) does when those lanes cross
// into an unmapped page, as past the end of an array that ends a mapping.
template <class T>
inline void copy_padded(T* buf, size_t size, size_t at, const T* src, size_t count, T fill) {
  for (size_t e = 0; e < size; ++e) buf[e] = fill;
  const size_t m = count < size - at ? count : size - at;
  for (size_t e = 0; e < m; ++e) buf[at + e] = src[e];
}

template <class V>
using Reg = typename V::reg;

// Does the lane type have the 16-entry exp table (ExpTable16)?
template <class V, class = void>
struct HasExpTable : std::false_type {};
template <class V>
struct HasExpTable<V, std::void_t<decltype(V::has_exp_table)>> : std::bool_constant<V::has_exp_table> {};

// Does V::fmadd round once? (The scalar lanes' is a multiply and an add.)
template <class V, class = void>
struct FusedFma : std::true_type {};
template <class V>
struct FusedFma<V, std::void_t<decltype(V::unfused_fma)>> : std::false_type {};

// Drive body(offset, count, unroll_slot) over [0, n): U full vectors per step
// (independent accumulators hide latency), then single vectors, then one
// masked tail. count == V::width on the full paths, so the loads fold.
template <class V, int U, class Body>
inline void for_each_block(size_t n, Body&& body) {
  constexpr size_t W = V::width;
  size_t i = 0;
  for (; i + U * W <= n; i += U * W) {
#if defined(__GNUC__)
#pragma GCC unroll 8
#endif
    for (int u = 0; u < U; ++u) body(i + u * W, W, u);
  }
  for (; i + W <= n; i += W) body(i, W, 0);
  if (i < n) body(i, n - i, 0);
}

template <class V, class In>
inline Reg<V> load_n(const In* p, size_t count, double fill) {
  return count == V::width ? V::load(p) : V::load_tail(p, count, fill);
}

template <class V, class Out>
inline void store_n(Out* p, Reg<V> v, size_t count) {
  if (count == V::width)
    V::store(p, v);
  else
    V::store_tail(p, v, count);
}

// Touch the Bytes bytes at p (one prefetch per cache line) for the cache,
// so that more lines are in flight than the out-of-order window alone
// would request while it is busy with the exp arithmetic.
template <size_t Bytes, class T>
inline void prefetch_block(const T* p) {
  const char* c = reinterpret_cast<const char*>(p);
  for (size_t b = 0; b < Bytes; b += 64) SSM_PREFETCH(c + b);
}

// Unroll of the simple streaming loops (probes, scale, the write passes):
// enough independent vectors in flight to cover the load latency.
constexpr int kUnroll = 4;

// t[0] + ... + t[U-1] as a balanced tree, fully unrolled (a loop over the
// tree levels sends the partial sums through the stack).
template <class V, int Lo, int Hi>
inline Reg<V> tree_sum(const Reg<V>* t) {
  if constexpr (Hi - Lo == 1)
    return t[Lo];
  else
    return V::add(tree_sum<V, Lo, (Lo + Hi) / 2>(t), tree_sum<V, (Lo + Hi) / 2, Hi>(t));
}

// Store loop: y[i] = value(i, count) over [0, n). Streaming: a head up to the
// first stream_align boundary of y, aligned non-temporal stores, a masked
// tail, then a store fence so the data is globally visible before the caller
// (or another thread) reads it.
template <class V, bool Stream, class Out, class Fn>
inline void store_loop(Out* y, size_t n, Fn&& value) {
  constexpr size_t W = V::width;
  if constexpr (Stream && V::stream_align != 0) {
    static_assert(W * sizeof(Out) == V::stream_align, "one vector per aligned store");
    const uintptr_t addr = reinterpret_cast<uintptr_t>(y);
    if (addr % sizeof(Out) == 0) {
      size_t i = (V::stream_align - addr % V::stream_align) % V::stream_align / sizeof(Out);
      if (i > n) i = n;
      if (i) store_n<V>(y, value(size_t(0), i), i);
      for (; i + kUnroll * W <= n; i += kUnroll * W)
        for (int u = 0; u < kUnroll; ++u) V::stream(y + i + u * W, value(i + u * W, W));
      for (; i + W <= n; i += W) V::stream(y + i, value(i, W));
      if (i < n) store_n<V>(y + i, value(i, n - i), n - i);
      V::fence();
      return;
    }
  }
  for_each_block<V, kUnroll>(n, [&](size_t i, size_t count, int) SSM_INLINE { store_n<V>(y + i, value(i, count), count); });
}

// store_loop with the full unrolled steps computed by block(i, v[U]) (stage
// by stage) and heads, single vectors and tails by value(i, count).
// Fence = false leaves the store fence to the caller (one per call, not one
// per row: each sfence waits for the write-combining buffers to drain).
template <class V, int U, bool Stream, bool Fence = true, class Out, class Fn, class Block>
inline void store_loop_blocks(Out* y, size_t n, Fn&& value, Block&& block) {
  constexpr size_t W = V::width;
  size_t i = 0;
  bool stream = false;
  if constexpr (Stream && V::stream_align != 0) {
    static_assert(W * sizeof(Out) == V::stream_align, "one vector per aligned store");
    const uintptr_t addr = reinterpret_cast<uintptr_t>(y);
    if (addr % sizeof(Out) == 0) {
      stream = true;
      i = (V::stream_align - addr % V::stream_align) % V::stream_align / sizeof(Out);
      if (i > n) i = n;
      if (i) store_n<V>(y, value(size_t(0), i), i);
    }
  }
  for (; i + U * W <= n; i += U * W) {
    Reg<V> v[U];
    block(i, v);
    for (int u = 0; u < U; ++u) {
      if (stream)
        V::stream(y + i + u * W, v[u]);
      else
        V::store(y + i + u * W, v[u]);
    }
  }
  for (; i + W <= n; i += W) {
    if (stream)
      V::stream(y + i, value(i, W));
    else
      V::store(y + i, value(i, W));
  }
  if (i < n) store_n<V>(y + i, value(i, n - i), n - i);
  if (Fence && stream) V::fence();
}

template <class V, class Out, class Fn>
inline void store_loop(bool stream, Out* y, size_t n, Fn&& value) {
  if (stream)
    store_loop<V, true>(y, n, value);
  else
    store_loop<V, false>(y, n, value);
}

// Does the lane type transpose a W x W block in registers (V::transpose)?
template <class V, class = void>
struct Transposes : std::false_type {};
template <class V>
struct Transposes<V, std::void_t<decltype(V::transpose(std::declval<Reg<V> (&)[V::width]>()))>> : std::true_type {};

// dst[k * dst_step + i] = src[i * src_step + k] for the W x W block: W
// vector loads, the transpose, W vector stores where the lane type has one.
template <class V, class T>
inline void transpose_block(const T* src, size_t src_step, T* dst, size_t dst_step) {
  constexpr size_t W = V::width;
  if constexpr (Transposes<V>::value) {
    Reg<V> v[W];
    for (size_t i = 0; i < W; ++i) v[i] = V::load(src + i * src_step);
    V::transpose(v);
    for (size_t k = 0; k < W; ++k) V::store(dst + k * dst_step, v[k]);
  } else {
    for (size_t i = 0; i < W; ++i)
      for (size_t k = 0; k < W; ++k) dst[k * dst_step + i] = src[i * src_step + k];
  }
}

inline void add_tile(TileList& t, const char* name, size_t elements) {
  if (t.count < TileList::kCapacity) t.item[t.count++] = Tile{name, elements};
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
