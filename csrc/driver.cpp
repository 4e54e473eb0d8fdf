#include "driver.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>

#include "cache_info.h"
#include "driver_rows.h"
#include "thread_pool.h"

namespace ssm {

// -1: the default below.
std::atomic<int> g_prefetch_bytes{-1};

namespace {
// Set (by CallFootprint, below) while this thread runs a batch call whose
// whole input fits in the core's L2: its passes then read lines the
// previous pass left in the cache, and a software prefetch only costs a
// load-port slot per line (64 KiB float32 softmax: 5-7% faster without,
// issue-5 session 3 note).
thread_local bool t_call_in_cache = false;
}  // namespace

size_t prefetch_distance(size_t bytes) {
  // 16 KiB ahead: about DRAM latency x one core's bandwidth, with room to
  // spare (measured: see the issue-5 note). Not tied to the pass's size: the
  // kernels see one chunk of a long row at a time; the call's footprint
  // decides instead (t_call_in_cache).
  constexpr int kDefault = 16 << 10;
  if (bytes < (16u << 10) || t_call_in_cache) return 0;
  const int d = g_prefetch_bytes.load(std::memory_order_relaxed);
  return static_cast<size_t>(d < 0 ? kDefault : d);
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLog2e = 1.4426950408889634;

// --------------------------------------------------------------------------
// Settings

std::atomic<int> g_store_policy{static_cast<int>(StorePolicy::Auto)};
// 64 Ki elements per chunk: fine enough to balance two or more threads on
// one row, coarse enough that the per-chunk start and lane reduction (about
// 0.1 us) stay well below 1% of the chunk's time.
std::atomic<size_t> g_chunk{size_t(1) << 16};
// Rows up to 256 Ki elements are never split: a batch of them is spread over
// the threads row by row, which needs no reduction between threads; longer
// rows are split (so one 1 MiB float32 row already uses every thread).
std::atomic<size_t> g_chunked_row{size_t(1) << 18};
// Below 128 Ki elements a call is over before a sleeping worker wakes up.
std::atomic<size_t> g_parallel_min{size_t(1) << 17};

// Streaming stores pay off once the output cannot stay in the cache anyway:
// a regular store then costs a read-for-ownership plus a write-back, a
// streaming one just the write. Twice the last-level cache leaves room for
// the input, which the second pass reads back from the cache as well.
size_t stream_min_bytes() { return 2 * cache_sizes().last_level(); }

// auto: three-pass-reload reads x twice and y twice, two-pass reads x twice
// and writes once; reload does fewer operations per element and wins while x
// and y stay cached between its passes: in the core's L2, or in the shared
// last-level cache with room to spare (measured on Zen 5, 32 MiB L3: reload
// 4% faster at 4 MiB rows, even at 8 MiB, 17% slower at 12 MiB). Rows
// processed at the same time on several threads share the LLC.
size_t reload_max_bytes(size_t concurrent_rows = 1) {
  const CacheSizes& c = cache_sizes();
  return std::max(c.l2 / 2, c.last_level() / (8 * std::max<size_t>(1, concurrent_rows)));
}

// --------------------------------------------------------------------------
// Reductions of per-chunk partials, always in chunk order.

// Deliberately not shared with softmax_generic.h's copy: an inline struct
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
};

// Sums m * 2^e combined exactly up to the double-double's rounding
// (combine_partials, below).
ExpSum combine_sums(const std::vector<ExpSum>& parts) { return combine_partials(parts.data(), parts.size()); }

ExpSum combine_max(const std::vector<ExpSum>& parts) {
  ExpSum out;
  for (const ExpSum& p : parts) {
    out.max = std::max(out.max, p.max);
    out.special = out.special || p.special;
  }
  return out;
}

// exp(a - b) with a - b formed exactly.
double exp_diff(double a, double b) {
  const double d = a - b;
  if (!(d > -1000.0)) return 0.0;  // also -inf - x
  const double bb = d - a;
  const double err = (a - (d - bb)) - (b + bb);
  return std::exp(d) * (1.0 + err);
}

// Online partials, m + m_lo = sum exp(x - max_i) per chunk, rescaled to the
// global max. A chunk holding the global max keeps its exact 1 (factor 1).
ExpSum combine_online(const std::vector<ExpSum>& parts) {
  ExpSum out = combine_max(parts);
  DoubleDouble sum;
  if (out.max > -kInf && out.max < kInf)
    for (const ExpSum& p : parts) {
      const double f = exp_diff(p.max, out.max);
      if (f == 0.0) continue;
      sum.add(p.m * f);
      sum.add(p.m_lo * f);
    }
  out.m = sum.hi + sum.lo;
  out.m_lo = sum.lo - (out.m - sum.hi);
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
  return Ctx<T>{k, g_chunk.load(), g_chunked_row.load(), use_stream(out_bytes), false, 1};
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

bool in_fast_range(double max) { return max <= kFastLimit && max >= -kFastLimit; }

// A row the kernels compute: no NaN, and a finite max.
bool ordinary(const ExpSum& s) { return !s.special && std::isfinite(s.max); }

// A fast pass's sum proves the row ordinary and in the fast range (see
// kFastExp); anything else (NaN, inf, out of range, all -inf) is classified
// again by a max pass.
bool fast_ok(double m, double e) {
  return m > 0.5 && m < 0x1p+100 && e >= -kFastExp && e <= kFastExp - 128.0;
}

// ref + e*ln2 + log(m) as an unevaluated double-double (hi + lo): enough for
// float64 log_softmax, where x - lse must not lose the low bits of lse.
void lse_parts(double ref, double e, double m, double& hi, double& lo) {
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
// so f is within 1 ulp of the correctly rounded result. float64: 1e-15
// relative, a tenth of the 1e-14 bound.
template <class T>
bool certified(double lse, double abs_err);
template <>
bool certified<float>(double lse, double abs_err) {
  const float f = static_cast<float>(lse);
  if (!std::isfinite(f)) return false;
  const float lo = static_cast<float>(lse - abs_err), hi = static_cast<float>(lse + abs_err);
  return lo >= std::nextafter(f, -HUGE_VALF) && hi <= std::nextafter(f, HUGE_VALF);
}
template <>
bool certified<double>(double lse, double abs_err) {
  return abs_err <= 1e-15 * std::fabs(lse);
}

// Absolute error of log(m * 2^e) from the sum's relative error err, plus the
// double-precision log and the double-double assembly.
double lse_abs_err(double lse, double err) { return 1.02 * err + 0x1p-52 * (std::fabs(lse) + 1.0); }

// --------------------------------------------------------------------------
// Row algorithms

template <class T>
bool softmax_exact(const Ctx<T>& c, const T* x, T* y, size_t n) {
  const Kernels<T>& k = c.k;
  const ExpSum mx =
      reduce_chunks(c, n, [&](size_t b, size_t len) { return k.max_scan(x + b, len); }, combine_max);
  if (!ordinary(mx)) return false;
  const double ref = mx.max;
  const ExpSum s = reduce_chunks(
      c, n, [&](size_t b, size_t len) { return k.expsum(x + b, len, ref, true); }, combine_sums);
  const double inv = 1.0 / s.m;
  for_chunks(c, n, [&](size_t b, size_t len) { k.write_exp(x + b, y + b, len, ref, true, s.e, inv, c.stream); });
  return true;
}

// The largest of 32 entries spread evenly over the row, first and last
// included (NaN ignored; -inf if there is no other): a lower bound of the max.
template <class T>
double sampled_max(const T* x, size_t n) {
  constexpr size_t kSamples = 32;
  double guess = -kInf;
  if (n <= kSamples) {
    for (size_t i = 0; i < n; ++i) guess = x[i] > guess ? x[i] : guess;
    return guess;
  }
  for (size_t k = 0; k < kSamples; ++k) {
    const double v = x[(n - 1) * k / (kSamples - 1)];
    guess = v > guess ? v : guess;
  }
  return guess;
}

// Three-pass-reload without its max pass: the stored terms exp(x) * 2^-e_ref
// take e_ref from a sampled lower bound of the max instead. Below the true
// reference, every term (and the sum) is larger by the same exact power of
// two, which the final 1/sum removes: the written values are the max-pass
// ones bit for bit, apart from terms the max-referenced pass would round into
// float subnormals (which get more precision here). The kernel stops with a
// NaN sum as soon as a block of terms exceeds 2^100 (the guess was more than
// ~69 below the max, or the row holds NaN or +inf); the sum must also stay
// below 2^100 so that 1/sum is a normal float. Then false, y partly written,
// and the caller runs the max pass: that row pays for part of one more pass.
// Only where a special row's y may be left written (softmax_batch's
// special_y_unspecified): the max pass is what proves a row ordinary before
// anything is written, and in place x itself would be lost.
// Saves the max pass (a read of the row, ~10% of a 64 KiB row's time).
template <class T>
bool reload_guessed(const Ctx<T>& c, const T* x, T* y, size_t n) {
  const double guess = sampled_max(x, n);
  if (!in_fast_range(guess)) return false;  // also -inf (NaN and -inf samples only)
  const double e_ref = std::nearbyint(guess * kLog2e);
  const ExpSum s = reduce_chunks(
      c, n, [&](size_t b, size_t len) { return c.k.expsum_store_pow2(x + b, y + b, len, e_ref); }, combine_sums);
  if (!(s.m >= 0.5 && s.m < 0x1p+100)) return false;  // NaN too; the sampled entry alone gives >= 2^-0.5
  const double inv = 1.0 / s.m;
  for_chunks(c, n, [&](size_t b, size_t len) { c.k.scale(y + b, len, inv, c.stream); });
  return true;
}

// guess: y does not alias x and the caller overwrites special rows, so
// three-pass-reload may try reload_guessed (which writes y before it knows).
template <class T>
bool softmax_row(const Ctx<T>& c, const T* x, T* y, size_t n, Algorithm algorithm, bool guess) {
  const Kernels<T>& k = c.k;
  if (algorithm == Algorithm::Auto) algorithm = resolve_auto(n, sizeof(T), c.concurrent_rows);
  switch (algorithm) {
    case Algorithm::Auto:
    case Algorithm::TwoPass: {
      const ExpSum s =
          reduce_chunks(c, n, [&](size_t b, size_t len) { return k.expsum_fast(x + b, len); }, combine_sums);
      if (!fast_ok(s.m, s.e)) return softmax_exact(c, x, y, n);
      const double inv = 1.0 / s.m;
      for_chunks(c, n,
                 [&](size_t b, size_t len) { k.write_exp(x + b, y + b, len, 0.0, false, s.e, inv, c.stream); });
      return true;
    }
    case Algorithm::ThreePassRecompute:
    case Algorithm::ThreePassReload: {
      if (guess && algorithm == Algorithm::ThreePassReload && reload_guessed(c, x, y, n)) return true;
      const ExpSum mx =
          reduce_chunks(c, n, [&](size_t b, size_t len) { return k.max_scan(x + b, len); }, combine_max);
      if (!ordinary(mx)) return false;
      if (!in_fast_range(mx.max)) {
        if (algorithm == Algorithm::ThreePassRecompute) return softmax_exact(c, x, y, n);
        const double ref = mx.max;
        const ExpSum s = reduce_chunks(
            c, n, [&](size_t b, size_t len) { return k.expsum_store(x + b, y + b, len, ref); }, combine_sums);
        const double inv = 1.0 / s.m;
        for_chunks(c, n, [&](size_t b, size_t len) { k.scale(y + b, len, inv, c.stream); });
        return true;
      }
      // exp(x - max) as exp(x) * 2^-round(max log2 e): the same ratio up to a
      // constant factor that cancels, with no rounding of x - max at all.
      const double e_ref = std::nearbyint(mx.max * kLog2e);
      if (algorithm == Algorithm::ThreePassRecompute) {
        const ExpSum s = reduce_chunks(
            c, n, [&](size_t b, size_t len) { return k.expsum_pow2(x + b, len, e_ref); }, combine_sums);
        const double inv = 1.0 / s.m;
        for_chunks(c, n,
                   [&](size_t b, size_t len) { k.write_exp(x + b, y + b, len, 0.0, false, s.e, inv, c.stream); });
      } else {
        const ExpSum s = reduce_chunks(
            c, n, [&](size_t b, size_t len) { return k.expsum_store_pow2(x + b, y + b, len, e_ref); },
            combine_sums);
        const double inv = 1.0 / s.m;
        for_chunks(c, n, [&](size_t b, size_t len) { k.scale(y + b, len, inv, c.stream); });
      }
      return true;
    }
    case Algorithm::Online: {
      const ExpSum s =
          reduce_chunks(c, n, [&](size_t b, size_t len) { return k.expsum_online(x + b, len); }, combine_online);
      if (!ordinary(s)) return false;
      const double inv = 1.0 / s.m;
      for_chunks(c, n,
                 [&](size_t b, size_t len) { k.write_exp(x + b, y + b, len, s.max, true, 0.0, inv, c.stream); });
      return true;
    }
  }
  return false;
}

// log of a max-relative sum S = sum b*exp(x - max) held as m + m_lo: the
// max's own term is exactly 1, so log1p(S - 1) keeps full relative accuracy
// when the other terms are tiny (log_softmax of a dominant entry, lse ~ max).
double log_of_sum(const ExpSum& s) {
  const double a = std::fabs(s.m), a_lo = s.m < 0 ? -s.m_lo : s.m_lo;
  return std::log1p((a - 1.0) + a_lo);
}

// The accurate pass: one pass, max-relative, float64 arithmetic.
template <class T>
ExpSum online_wide(const Ctx<T>& c, const T* x, const T* b, size_t n) {
  return reduce_chunks(
      c, n, [&](size_t at, size_t len) { return c.k.expsum_online_wide(x + at, b ? b + at : nullptr, len); },
      combine_online);
}

template <class T>
bool log_softmax_row(const Ctx<T>& c, const T* x, T* y, size_t n) {
  const ExpSum s = online_wide(c, x, static_cast<const T*>(nullptr), n);
  if (!ordinary(s)) return false;
  // y = (x - max) - log S: x - max is exact near the max (Sterbenz) and the
  // result is never positive.
  const double log_s = log_of_sum(s);
  for_chunks(c, n, [&](size_t b, size_t len) { c.k.write_shift(x + b, y + b, len, s.max, log_s, c.stream); });
  return true;
}

template <class T>
bool logsumexp_row(const Ctx<T>& c, const T* x, const T* b, size_t n, double& lse, double& sign) {
  if (!b) {
    // One pass in T arithmetic; the accurate pass only when the fast sum's
    // error bound cannot certify the result (|lse| small, see certified()).
    const ExpSum s = reduce_chunks(
        c, n, [&](size_t at, size_t len) { return c.k.expsum_fast(x + at, len); }, combine_sums);
    if (fast_ok(s.m, s.e)) {
      double hi, lo;
      lse_parts(0.0, s.e, s.m, hi, lo);
      if (certified<T>(hi + lo, lse_abs_err(hi, s.err))) {
        lse = hi + lo;
        sign = 1.0;
        return true;
      }
    }
  }
  const ExpSum s = online_wide(c, x, b, n);
  if (!ordinary(s) || !(s.m != 0.0)) return false;
  sign = s.m < 0 ? -1.0 : 1.0;
  lse = s.max + log_of_sum(s);
  return true;
}

// --------------------------------------------------------------------------
// Batches

// Marks the running thread's kernel calls as part of a call whose input of
// `bytes` stays cached (see t_call_in_cache), for the object's lifetime.
class CallFootprint {
 public:
  explicit CallFootprint(size_t bytes) : saved_(t_call_in_cache) {
    t_call_in_cache = bytes <= cache_sizes().l2;
  }
  ~CallFootprint() { t_call_in_cache = saved_; }
  CallFootprint(const CallFootprint&) = delete;
  CallFootprint& operator=(const CallFootprint&) = delete;

 private:
  bool saved_;
};

// fn(ctx, r) -> ok for every row; rows are spread over the threads (short
// rows) or each row's chunks are (long rows).
template <class T, class Fn>
std::vector<size_t> run_batch(const Kernels<T>& k, size_t rows, size_t n, size_t out_bytes, Fn&& fn) {
  const CallFootprint footprint(rows * n * sizeof(T));  // the batch tasks below set their own
  Ctx<T> c = make_ctx(k, out_bytes);
  const bool threads = get_num_threads() > 1 && rows * n >= g_parallel_min.load();
  std::vector<size_t> special;
  if (rows == 0 || n == 0) return special;
  if (n > c.chunked_row || rows == 1) {
    c.parallel = threads;
    for (size_t r = 0; r < rows; ++r)
      if (!fn(c, r)) special.push_back(r);
    return special;
  }
  const size_t per_task = std::max<size_t>(1, c.chunk / n);
  const size_t tasks = (rows + per_task - 1) / per_task;
  if (threads) c.concurrent_rows = std::min<size_t>(tasks, static_cast<size_t>(get_num_threads()));
  std::vector<char> ok(rows, 1);
  auto task = [&](size_t t) {
    const CallFootprint on_this_thread(rows * n * sizeof(T));
    const size_t end = std::min(rows, (t + 1) * per_task);
    for (size_t r = t * per_task; r < end; ++r) ok[r] = fn(c, r);
  };
  if (threads)
    parallel_for(tasks, task);
  else
    for (size_t t = 0; t < tasks; ++t) task(t);
  for (size_t r = 0; r < rows; ++r)
    if (!ok[r]) special.push_back(r);
  return special;
}

// --------------------------------------------------------------------------
// Strided layout

// Column gather / scatter for the rare columns the strided kernels cannot
// finish (NaN, inf, out of the fast range, uncertified log-sum-exp).
template <class T>
void gather(const T* x, size_t n, size_t stride, T* out) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i * stride];
}
template <class T>
void scatter(const T* in, size_t n, size_t stride, T* y) {
  for (size_t i = 0; i < n; ++i) y[i * stride] = in[i];
}

// fn(o, j0, cols, special_out) over panels of columns. The panel width only
// decides which lanes share a vector, and lanes never mix: results do not
// depend on it, so it can follow the thread count.
template <class T, class Fn>
std::vector<size_t> run_strided(const Kernels<T>& k, size_t outer, size_t n, size_t inner, Fn&& fn) {
  (void)k;
  std::vector<size_t> special;
  if (outer == 0 || n == 0 || inner == 0) return special;
  const int threads = get_num_threads();
  const bool parallel = threads > 1 && outer * n * inner >= g_parallel_min.load();
  size_t panels = 1;
  if (parallel && outer < size_t(2 * threads)) panels = (size_t(2 * threads) + outer - 1) / outer;
  size_t width = (inner + panels - 1) / panels;
  width = std::max<size_t>(64, (width + 63) / 64 * 64);
  panels = (inner + width - 1) / width;
  const size_t tasks = outer * panels;
  std::vector<std::vector<size_t>> found(tasks);
  auto task = [&](size_t t) {
    const size_t o = t / panels, j0 = (t % panels) * width;
    fn(o, j0, std::min(width, inner - j0), found[t]);
  };
  if (parallel)
    parallel_for(tasks, task);
  else
    for (size_t t = 0; t < tasks; ++t) task(t);
  for (auto& f : found) special.insert(special.end(), f.begin(), f.end());
  return special;
}

// A contiguous single-thread context for redone columns.
template <class T>
Ctx<T> column_ctx(const Kernels<T>& k, size_t n) {
  Ctx<T> c = make_ctx(k, 0);
  (void)n;
  c.stream = false;
  return c;
}

// The columns in `flagged` of panel (xo, yo) are redone contiguously by
// row(c, col_x, col_y) -> ok; special ones get their old y back.
template <class T, class Row>
void redo_columns(const Kernels<T>& k, const T* xo, T* yo, size_t n, size_t inner,
                  const std::vector<size_t>& flagged, std::vector<std::vector<T>>& saved_x,
                  std::vector<std::vector<T>>& saved_y, size_t special_base, std::vector<size_t>& special,
                  Row&& row) {
  const Ctx<T> c = column_ctx(k, n);
  std::vector<T> out(n);
  for (size_t f = 0; f < flagged.size(); ++f) {
    const size_t j = flagged[f];
    if (row(c, saved_x[f].data(), out.data())) {
      scatter(out.data(), n, inner, yo + j);
    } else {
      scatter(xo == yo ? saved_x[f].data() : saved_y[f].data(), n, inner, yo + j);
      special.push_back(special_base + j);
    }
  }
}

}  // namespace

ExpSum combine_partials(const ExpSum* first, size_t count) {
  const ExpSum* const last = first + count;
  ExpSum out;
  double emax = -kInf;
  bool bad = false;
  for (const ExpSum* q = first; q != last; ++q) {
    const ExpSum& p = *q;
    out.max = std::max(out.max, p.max);
    out.special = out.special || p.special;
    out.err = std::max(out.err, p.err);
    if (!std::isfinite(p.m) || !std::isfinite(p.e))
      bad = bad || p.m != 0.0;
    else if (p.m != 0.0 && p.e > emax)
      emax = p.e;
  }
  if (bad) {
    out.m = std::numeric_limits<double>::quiet_NaN();
    out.e = 0.0;
    return out;
  }
  if (emax == -kInf) {
    out.m = 0.0;
    out.e = 0.0;
    return out;
  }
  DoubleDouble sum;
  for (const ExpSum* q = first; q != last; ++q) {
    const ExpSum& p = *q;
    if (p.m == 0.0 || !std::isfinite(p.e)) continue;
    const double k = p.e - emax;
    if (k < -2200.0) continue;
    sum.add(std::ldexp(p.m, static_cast<int>(k)));
  }
  out.m = sum.value();
  out.e = emax;
  out.err += 0x1p-52;
  return out;
}

// --------------------------------------------------------------------------
// Public entry points

Algorithm parse_algorithm(const std::string& name) {
  if (name == "two-pass") return Algorithm::TwoPass;
  if (name == "three-pass-recompute") return Algorithm::ThreePassRecompute;
  if (name == "three-pass-reload") return Algorithm::ThreePassReload;
  if (name == "online") return Algorithm::Online;
  if (name == "auto") return Algorithm::Auto;
  throw std::invalid_argument("algorithm must be one of 'auto', 'two-pass', 'three-pass-recompute', "
                              "'three-pass-reload', 'online'; got '" + name + "'");
}

const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::TwoPass: return "two-pass";
    case Algorithm::ThreePassRecompute: return "three-pass-recompute";
    case Algorithm::ThreePassReload: return "three-pass-reload";
    case Algorithm::Online: return "online";
    case Algorithm::Auto: return "auto";
  }
  return "auto";
}

StorePolicy parse_store_policy(const std::string& name) {
  if (name == "auto") return StorePolicy::Auto;
  if (name == "stream") return StorePolicy::Stream;
  if (name == "regular") return StorePolicy::Regular;
  throw std::invalid_argument("store policy must be 'auto', 'stream' or 'regular'; got '" + name + "'");
}

const char* store_policy_name(StorePolicy p) {
  return p == StorePolicy::Stream ? "stream" : p == StorePolicy::Regular ? "regular" : "auto";
}

Settings settings() {
  return Settings{static_cast<StorePolicy>(g_store_policy.load()), g_chunk.load(), g_chunked_row.load(),
                  g_parallel_min.load(), stream_min_bytes(), reload_max_bytes()};
}

void set_store_policy(StorePolicy p) { g_store_policy.store(static_cast<int>(p)); }

void set_chunking(size_t chunk_elements, size_t chunked_row) {
  // Kernels assume a call of at most 2^24 elements (lane sums cannot overflow).
  if (chunk_elements < 1 || chunk_elements > (size_t(1) << 24) || chunked_row > (size_t(1) << 24))
    throw std::invalid_argument("chunk sizes must be in [1, 2^24]");
  g_chunk.store(chunk_elements);
  g_chunked_row.store(chunked_row);
}

void set_parallel_min(size_t elements) { g_parallel_min.store(elements); }

bool use_stream(size_t out_bytes) {
  switch (static_cast<StorePolicy>(g_store_policy.load())) {
    case StorePolicy::Stream: return true;
    case StorePolicy::Regular: return false;
    case StorePolicy::Auto: break;
  }
  return out_bytes >= stream_min_bytes();
}

Algorithm resolve_auto(size_t n, size_t elem_size, size_t concurrent_rows) {
  return n * elem_size <= reload_max_bytes(concurrent_rows) ? Algorithm::ThreePassReload : Algorithm::TwoPass;
}

template <class T>
std::vector<size_t> softmax_batch(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n, Algorithm a,
                                  bool special_y_unspecified) {
  std::vector<size_t> special;
  if (a == Algorithm::Auto && short_rows_softmax(k, x, y, rows, n, special)) return special;
  return run_batch(k, rows, n, rows * n * sizeof(T), [&](const Ctx<T>& c, size_t r) {
    return softmax_row(c, x + r * n, y + r * n, n, a, special_y_unspecified);
  });
}

template <class T>
std::vector<size_t> log_softmax_batch(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n) {
  std::vector<size_t> special;
  if (short_rows_log_softmax(k, x, y, rows, n, special)) return special;
  return run_batch(k, rows, n, rows * n * sizeof(T),
                   [&](const Ctx<T>& c, size_t r) { return log_softmax_row(c, x + r * n, y + r * n, n); });
}

template <class T>
std::vector<size_t> logsumexp_batch(const Kernels<T>& k, const T* x, const T* b, T* out, T* sign, size_t rows,
                                    size_t n) {
  std::vector<size_t> special;
  if (n == 0) {
    for (size_t r = 0; r < rows; ++r) special.push_back(r);
    return special;
  }
  if (short_rows_logsumexp(k, x, b, out, sign, rows, n, special)) return special;
  return run_batch(k, rows, n, 0, [&](const Ctx<T>& c, size_t r) {
    double lse, s;
    if (!logsumexp_row(c, x + r * n, b ? b + r * n : nullptr, n, lse, s)) return false;
    out[r] = static_cast<T>(lse);
    if (sign) sign[r] = static_cast<T>(s);
    return true;
  });
}

template <class T>
std::vector<size_t> softmax_strided(const Kernels<T>& k, const T* x, T* y, size_t outer, size_t n, size_t inner) {
  const bool stream = use_stream(outer * n * inner * sizeof(T));
  return run_strided(k, outer, n, inner, [&](size_t o, size_t j0, size_t cols, std::vector<size_t>& special) {
    const T* xo = x + o * n * inner + j0;
    T* yo = y + o * n * inner + j0;
    std::vector<double> m(cols), e(cols);
    std::vector<T> ecol(cols), inv(cols);
    k.expsum_strided_fast(xo, n, inner, cols, m.data(), e.data());
    std::vector<size_t> flagged;
    for (size_t j = 0; j < cols; ++j) {
      if (fast_ok(m[j], e[j])) {
        ecol[j] = static_cast<T>(e[j]);
        inv[j] = static_cast<T>(1.0 / m[j]);
      } else {
        ecol[j] = inv[j] = T(0);
        flagged.push_back(j);
      }
    }
    std::vector<std::vector<T>> saved_x(flagged.size()), saved_y(flagged.size());
    for (size_t f = 0; f < flagged.size(); ++f) {
      saved_x[f].resize(n);
      gather(xo + flagged[f], n, inner, saved_x[f].data());
      if (xo != static_cast<const T*>(yo)) {
        saved_y[f].resize(n);
        gather(static_cast<const T*>(yo + flagged[f]), n, inner, saved_y[f].data());
      }
    }
    k.write_exp_strided(xo, yo, n, inner, cols, ecol.data(), inv.data(), stream);
    redo_columns(k, xo, yo, n, inner, flagged, saved_x, saved_y, o * inner + j0, special,
                 [&](const Ctx<T>& c, const T* cx, T* cy) { return softmax_row(c, cx, cy, n, Algorithm::TwoPass, false); });
  });
}

// Per-column max and accurate max-relative sum (m + m_lo) of a panel; a
// column is usable when its max and sum are finite.
template <class T>
void strided_rel(const Kernels<T>& k, const T* xo, size_t n, size_t inner, size_t cols, std::vector<T>& max,
                 std::vector<double>& m, std::vector<double>& m_lo) {
  max.resize(cols);
  m.resize(cols);
  m_lo.resize(cols);
  k.expsum_strided_online(xo, n, inner, cols, max.data(), m.data(), m_lo.data());
}

bool rel_ok(double max, double m) { return std::isfinite(max) && std::isfinite(m) && m >= 1.0; }

double log1p_of(double m, double m_lo) { return std::log1p((m - 1.0) + m_lo); }

template <class T>
std::vector<size_t> log_softmax_strided(const Kernels<T>& k, const T* x, T* y, size_t outer, size_t n,
                                        size_t inner) {
  const bool stream = use_stream(outer * n * inner * sizeof(T));
  return run_strided(k, outer, n, inner, [&](size_t o, size_t j0, size_t cols, std::vector<size_t>& special) {
    const T* xo = x + o * n * inner + j0;
    T* yo = y + o * n * inner + j0;
    std::vector<T> hi, lo(cols);
    std::vector<double> m, m_lo;
    strided_rel(k, xo, n, inner, cols, hi, m, m_lo);
    std::vector<size_t> flagged;
    for (size_t j = 0; j < cols; ++j) {
      if (rel_ok(static_cast<double>(hi[j]), m[j])) {
        lo[j] = static_cast<T>(log1p_of(m[j], m_lo[j]));
      } else {
        hi[j] = lo[j] = T(0);
        flagged.push_back(j);
      }
    }
    std::vector<std::vector<T>> saved_x(flagged.size()), saved_y(flagged.size());
    for (size_t f = 0; f < flagged.size(); ++f) {
      saved_x[f].resize(n);
      gather(xo + flagged[f], n, inner, saved_x[f].data());
      if (xo != static_cast<const T*>(yo)) {
        saved_y[f].resize(n);
        gather(static_cast<const T*>(yo + flagged[f]), n, inner, saved_y[f].data());
      }
    }
    k.write_shift_strided(xo, yo, n, inner, cols, hi.data(), lo.data(), stream);
    redo_columns(k, xo, yo, n, inner, flagged, saved_x, saved_y, o * inner + j0, special,
                 [&](const Ctx<T>& c, const T* cx, T* cy) { return log_softmax_row(c, cx, cy, n); });
  });
}

template <class T>
std::vector<size_t> logsumexp_strided(const Kernels<T>& k, const T* x, T* out, size_t outer, size_t n,
                                      size_t inner) {
  return run_strided(k, outer, n, inner, [&](size_t o, size_t j0, size_t cols, std::vector<size_t>& special) {
    const T* xo = x + o * n * inner + j0;
    T* oo = out + o * inner + j0;
    std::vector<double> m(cols), e(cols);
    k.expsum_strided_fast(xo, n, inner, cols, m.data(), e.data());
    std::vector<size_t> uncertain;
    for (size_t j = 0; j < cols; ++j) {
      if (fast_ok(m[j], e[j])) {
        double h, l;
        lse_parts(0.0, e[j], m[j], h, l);
        if (certified<T>(h + l, lse_abs_err(h, k.err_strided_fast))) {
          oo[j] = static_cast<T>(h + l);
          continue;
        }
      }
      uncertain.push_back(j);
    }
    if (uncertain.empty()) return;
    // The accurate pass over the whole panel (vectorized), then the
    // contiguous path for columns that are not ordinary.
    std::vector<T> max;
    std::vector<double> m_lo;
    strided_rel(k, xo, n, inner, cols, max, m, m_lo);
    const Ctx<T> c = column_ctx(k, n);
    std::vector<T> col(n);
    for (size_t j : uncertain) {
      if (rel_ok(static_cast<double>(max[j]), m[j])) {
        oo[j] = static_cast<T>(static_cast<double>(max[j]) + log1p_of(m[j], m_lo[j]));
        continue;
      }
      gather(xo + j, n, inner, col.data());
      double lse, sign;
      if (logsumexp_row(c, col.data(), static_cast<const T*>(nullptr), n, lse, sign))
        oo[j] = static_cast<T>(lse);
      else
        special.push_back(o * inner + j0 + j);
    }
  });
}

template <class T>
void probe_copy(const Kernels<T>& k, const T* x, T* y, size_t n) {
  k.probe_copy(x, y, n, use_stream(n * sizeof(T)));
}

template <class T>
void probe_fill(const Kernels<T>& k, T* y, size_t n, double value) {
  k.probe_fill(y, n, value, use_stream(n * sizeof(T)));
}

#define SSM_INSTANTIATE(T)                                                                                     \
  template std::vector<size_t> softmax_batch<T>(const Kernels<T>&, const T*, T*, size_t, size_t, Algorithm, bool); \
  template std::vector<size_t> log_softmax_batch<T>(const Kernels<T>&, const T*, T*, size_t, size_t);          \
  template std::vector<size_t> logsumexp_batch<T>(const Kernels<T>&, const T*, const T*, T*, T*, size_t,      \
                                                  size_t);                                                     \
  template std::vector<size_t> softmax_strided<T>(const Kernels<T>&, const T*, T*, size_t, size_t, size_t);    \
  template std::vector<size_t> log_softmax_strided<T>(const Kernels<T>&, const T*, T*, size_t, size_t,         \
                                                      size_t);                                                 \
  template std::vector<size_t> logsumexp_strided<T>(const Kernels<T>&, const T*, T*, size_t, size_t, size_t);  \
  template void probe_copy<T>(const Kernels<T>&, const T*, T*, size_t);                                        \
  template void probe_fill<T>(const Kernels<T>&, T*, size_t, double);

SSM_INSTANTIATE(float)
SSM_INSTANTIATE(double)
#undef SSM_INSTANTIATE

}  // namespace ssm
