// How the drivers cut a call into work: the chunks of a long row (always the
// same cut for a row of a given length, whatever the thread count), runs of
// whole rows for the thread pool, and the reductions of per-chunk partials in
// chunk order, which make results bit-identical for any thread count.
// Baseline code only (no intrinsics): shared by the softmax and Gumbel drivers.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/certify_f32.h"
#include "kernels/kernel_api.h"
#include "settings.h"
#include "thread_pool.h"

namespace ssm {

// Per-chunk pass-1 partials m * 2^e of one row, combined in chunk order
// (double-double): the same chunks give the same bits whoever computed them.
// NaN if a partial is not finite; max and special are combined too.
ExpSum combine_partials(const ExpSum* first, size_t count);

namespace detail {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLog2e = 1.4426950408889634;

// --------------------------------------------------------------------------
// Reductions of per-chunk partials, always in chunk order.

// Deliberately not shared with the kernels' copy (kernels/exp_core.h): an inline struct
// included both here (baseline flags) and in the AVX translation units could
// be linked to its AVX-compiled instance (ODR), so each side keeps its own.
struct DoubleDouble {
  double hi = 0.0, lo = 0.0;
  void add(double a) {
    const double s = hi + a;
    const double bb = s - hi;
    lo += (hi - (s - bb)) + (a - bb);
    hi = s;
  }
  double value() const { return hi + lo; }
  // As out.m + out.m_lo, renormalized.
  void store(ExpSum& out) const {
    out.m = hi + lo;
    out.m_lo = lo - (out.m - hi);
  }
};

// Sums m * 2^e combined exactly up to the double-double's rounding
// (combine_partials, below).
inline ExpSum combine_sums(const std::vector<ExpSum>& parts) { return combine_partials(parts.data(), parts.size()); }

inline ExpSum combine_max(const std::vector<ExpSum>& parts) {
  ExpSum out;
  for (const ExpSum& p : parts) {
    out.max = std::max(out.max, p.max);
    out.special = out.special || p.special;
  }
  return out;
}

// exp(a - b) with a - b formed exactly.
inline double exp_diff(double a, double b) {
  const double d = a - b;
  if (!(d > -1000.0)) return 0.0;  // also -inf - x
  const double bb = d - a;
  const double err = (a - (d - bb)) - (b + bb);
  return std::exp(d) * (1.0 + err);
}

// Online partials, m + m_lo = sum exp(x - max_i) per chunk, rescaled to the
// global max. A chunk holding the global max keeps its exact 1 (factor 1).
inline ExpSum combine_online(const std::vector<ExpSum>& parts) {
  ExpSum out = combine_max(parts);
  DoubleDouble sum;
  if (out.max > -kInf && out.max < kInf)
    for (const ExpSum& p : parts) {
      const double f = exp_diff(p.max, out.max);
      if (f == 0.0) continue;
      sum.add(p.m * f);
      sum.add(p.m_lo * f);
      out.mag += p.mag * f;
    }
  sum.store(out);
  out.e = 0.0;
  return out;
}

// --------------------------------------------------------------------------
// Row context and chunking

template <class T>
struct Ctx {
  const Kernels<T>& k;
  size_t chunk, chunked_row;
  bool stream;
  bool parallel;           // this row's chunks may run on the pool
  size_t concurrent_rows;  // rows processed at the same time (auto's cache share)
};

template <class T>
Ctx<T> make_ctx(const Kernels<T>& k, size_t out_bytes) {
  return Ctx<T>{k, chunk_elements(), chunked_row(), use_stream(out_bytes), false, 1};
}

template <class T>
size_t chunks_of(const Ctx<T>& c, size_t n) {
  return n <= c.chunked_row ? 1 : (n + c.chunk - 1) / c.chunk;
}

// fn(begin, count) over the row's chunks.
template <class T, class Fn>
void for_chunks(const Ctx<T>& c, size_t n, Fn&& fn) {
  const size_t nc = chunks_of(c, n);
  if (nc == 1) {
    fn(size_t(0), n);
    return;
  }
  auto task = [&](size_t i) {
    const size_t begin = i * c.chunk;
    fn(begin, std::min(c.chunk, n - begin));
  };
  if (c.parallel)
    parallel_for(nc, task);
  else
    for (size_t i = 0; i < nc; ++i) task(i);
}

// Partials of fn(begin, count) -> ExpSum over the chunks, reduced by combine.
template <class T, class Fn, class Combine>
ExpSum reduce_chunks(const Ctx<T>& c, size_t n, Fn&& fn, Combine&& combine) {
  const size_t nc = chunks_of(c, n);
  if (nc == 1) return fn(size_t(0), n);
  std::vector<ExpSum> parts(nc);
  for_chunks(c, n, [&](size_t begin, size_t count) { parts[begin / c.chunk] = fn(begin, count); });
  return combine(parts);
}

inline bool in_fast_range(double max) { return max <= kFastLimit && max >= -kFastLimit; }

// A row the kernels compute: no NaN, and a finite max.
inline bool ordinary(const ExpSum& s) { return !s.special && std::isfinite(s.max); }

// A fast pass's sum proves the row ordinary and in the fast range (see
// kFastExp); anything else (NaN, inf, out of range, all -inf) is classified
// again by a max pass.
inline bool fast_ok(double m, double e) {
  return m > 0.5 && m < 0x1p+100 && e >= -kFastExp && e <= kFastExp - 128.0;
}

// ref + e*ln2 + log(m) as an unevaluated double-double (hi + lo): enough for
// float64 log_softmax, where x - lse must not lose the low bits of lse.
inline void lse_parts(double ref, double e, double m, double& hi, double& lo) {
  // m in [1, 2): log(m) is then tiny and so is its rounding error.
  int k = 0;
  m = std::frexp(m, &k) * 2.0;
  e += k - 1;
  constexpr double ln2_hi31 = 0x1.62e42fecp-1;  // e * ln2_hi31 is exact for |e| < 2^22
  constexpr double ln2_lo31 = 0x1.d1cf79abc9e3bp-32;
  const double terms[4] = {ref, e * ln2_hi31, std::log(m), e * ln2_lo31};
  hi = 0.0;
  lo = 0.0;
  for (double a : terms) {
    const double s = hi + a;
    const double bb = s - hi;
    lo += (hi - (s - bb)) + (a - bb);
    hi = s;
  }
  const double s = hi + lo;
  lo = lo - (s - hi);
  hi = s;
}

// Is a log-sum-exp known to within abs_err good enough for the dtype's
// contract? float32: every value within abs_err rounds to f or a neighbour,
// so f is within 1 ulp of the correctly rounded result (certify_f32.h).
// float64: 1e-15 relative, a tenth of the 1e-14 bound.
template <class T>
bool certified(double lse, double abs_err);
template <>
inline bool certified<float>(double lse, double abs_err) {
  return certified_f32(lse, abs_err);
}
template <>
inline bool certified<double>(double lse, double abs_err) {
  return abs_err <= 1e-15 * std::fabs(lse);
}

// Relative error bound of a fast sum S = exp(max + v) (v = lse - max):
// err + err_rest (1 - exp(-v)), 1 - exp(-v) being the share of S that is not
// the max's own term (kernel_api.h). v is only known to within the bound
// itself; the callers' factor 1.02 covers that (err_rest < 1e-8).
inline double sum_rel_err(const ExpSum& s, double v) {
  if (s.err_rest == 0.0) return s.err;
  return s.err + s.err_rest * -std::expm1(-std::max(v, 0.0));  // NaN v gives NaN: certifies nothing
}

// Absolute error of log(m * 2^e) from the sum's relative error err, plus the
// double-precision log and the double-double assembly.
inline double lse_abs_err(double lse, double err) { return 1.02 * err + 0x1p-52 * (std::fabs(lse) + 1.0); }

// log-sum-exp from a fast sum m * 2^e (err, err_rest: its error bound), when
// that bound certifies the result for data of type T; false: no result (a
// special or out-of-range row, or a result too close to a rounding boundary).
template <class T>
bool fast_lse(const ExpSum& s, double& lse) {
  if (!fast_ok(s.m, s.e)) return false;
  double hi, lo;
  lse_parts(0.0, s.e, s.m, hi, lo);
  if (!certified<T>(hi + lo, lse_abs_err(hi, sum_rel_err(s, (hi - s.max) + lo)))) return false;
  lse = hi + lo;
  return true;
}

// log of a max-relative sum S = sum b*exp(x - max) held as m + m_lo: the
// max's own term is exactly 1, so log1p(S - 1) keeps full relative accuracy
// when the other terms are tiny (log_softmax of a dominant entry, lse ~ max).
// A weighted |S| below 1/2 (small weights, or weights that cancel) would
// lose its digits in S - 1 (2^-53 absolute, against |S| itself): log |S|.
inline double log_of_sum(const ExpSum& s) {
  const double a = std::fabs(s.m), a_lo = s.m < 0 ? -s.m_lo : s.m_lo;
  if (a < 0.5) return std::log(a) + a_lo / a;
  return std::log1p((a - 1.0) + a_lo);
}

// --------------------------------------------------------------------------
// Row tasks for the pool

// Work items of a call: runs of whole rows of about chunk_elements elements
// (at least one row), or, when split, every row cut into chunks of
// chunk_elements (the same cut whatever the thread count; row r's chunks are
// tasks r * per_row ...).
struct RowTask {
  size_t row0, row1;  // rows [row0, row1) ...
  size_t lo, hi;      // ... columns [lo, hi) (a chunk: row1 = row0 + 1)
};

// Rows per task when whole rows are grouped.
inline size_t rows_per_task(size_t n, size_t chunk_elements) {
  return std::max<size_t>(1, chunk_elements / std::max<size_t>(n, 1));
}

inline std::vector<RowTask> row_tasks(size_t rows, size_t n, bool split, size_t chunk_elements) {
  std::vector<RowTask> tasks;
  if (split) {
    for (size_t r = 0; r < rows; ++r)
      for (size_t lo = 0; lo < n; lo += chunk_elements)
        tasks.push_back({r, r + 1, lo, std::min(n, lo + chunk_elements)});
  } else {
    const size_t per = rows_per_task(n, chunk_elements);
    for (size_t r = 0; r < rows; r += per) tasks.push_back({r, std::min(rows, r + per), 0, n});
  }
  return tasks;
}

// body(t) for t in [0, count), on the pool when the call (elements in all)
// is big enough to pay for waking it.
template <class Body>
void run_tasks(size_t count, size_t elements, const Body& body) {
  if (count > 1 && elements >= parallel_min())
    parallel_for(count, body);
  else
    for (size_t t = 0; t < count; ++t) body(t);
}

}  // namespace detail
}  // namespace ssm
