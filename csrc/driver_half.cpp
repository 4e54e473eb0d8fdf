#include "driver_half.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "chunking.h"
#include "dispatch.h"
#include "softmax_rows.h"
#include "thread_pool.h"

namespace ssm {

namespace {

// The partial-sum reductions and row tests of the float32 drivers.
using detail::combine_max;
using detail::in_fast_range;
using detail::kLog2e;
using detail::combine_online;
using detail::combine_sums;
using detail::fast_ok;
using detail::log_of_sum;
using detail::ordinary;

constexpr double kLn2 = 0.6931471805599453;
// A thread's float32 work space: kHalfWholeRow floats, reused by every call.
float* thread_buffer() {
  thread_local std::vector<float> buffer(kHalfWholeRow);
  return buffer.data();
}

// Three-pass-reload's float32 terms for rows longer than thread_buffer()
// holds (up to the reload limit of resolve_auto: a few MiB), grown on demand.
float* terms_buffer(size_t n) {
  thread_local std::vector<float> terms;
  if (terms.size() < n) terms.resize(n);
  return terms.data();
}

struct Half {
  const Kernels<float>& k;
  const HalfConvert& cv;
  HalfFormat f;
  void load(const uint16_t* x, float* buf, size_t n) const {
    (f == HalfFormat::Float16 ? cv.f16_to_f32 : cv.bf16_to_f32)(x, buf, n);
  }
  void store(const float* buf, uint16_t* y, size_t n) const {
    (f == HalfFormat::Float16 ? cv.f32_to_f16 : cv.f32_to_bf16)(buf, y, n);
  }
};

Half make_half(HalfFormat f) { return Half{active_kernels().f32, active_convert(), f}; }

// fn(begin, len) -> ExpSum over the blocks of a long row (each loaded into
// buf first), combined in block order.
template <class Fn, class Combine>
ExpSum over_blocks(const Half& h, const uint16_t* x, size_t n, float* buf, Fn&& fn, Combine&& combine) {
  std::vector<ExpSum> parts;
  parts.reserve((n + kHalfBlock - 1) / kHalfBlock);
  for (size_t b = 0; b < n; b += kHalfBlock) {
    const size_t len = std::min(kHalfBlock, n - b);
    h.load(x + b, buf, len);
    parts.push_back(fn(buf, len));
  }
  return combine(parts);
}

// --- long rows, block by block -------------------------------------------

bool softmax_long(const Half& h, const uint16_t* x, uint16_t* y, size_t n, float* buf) {
  const Kernels<float>& k = h.k;
  ExpSum s = over_blocks(h, x, n, buf, [&](const float* b, size_t len) { return k.expsum_fast(b, len); },
                         combine_sums);
  double ref = 0.0;
  bool exact = false;
  if (!fast_ok(s.m, s.e)) {
    // NaN, inf or |x| beyond the fast range (bfloat16 reaches 3e38): the max
    // pass classifies the row, then sums relative to the max.
    const ExpSum mx = over_blocks(h, x, n, buf, [&](const float* b, size_t len) { return k.max_scan(b, len); },
                                  combine_max);
    if (!ordinary(mx)) return false;
    ref = mx.max;
    exact = true;
    s = over_blocks(h, x, n, buf, [&](const float* b, size_t len) { return k.expsum(b, len, ref, true); },
                    combine_sums);
  }
  const double inv = 1.0 / s.m;
  for (size_t b = 0; b < n; b += kHalfBlock) {
    const size_t len = std::min(kHalfBlock, n - b);
    h.load(x + b, buf, len);
    k.write_exp(buf, buf, len, ref, exact, s.e, inv, false);
    h.store(buf, y + b, len);
  }
  return true;
}

ExpSum online_long(const Half& h, const uint16_t* x, size_t n, float* buf) {
  return over_blocks(
      h, x, n, buf, [&](const float* b, size_t len) { return h.k.expsum_online_wide(b, nullptr, len); },
      combine_online);
}

bool log_softmax_long(const Half& h, const uint16_t* x, uint16_t* y, size_t n, float* buf) {
  const ExpSum s = online_long(h, x, n, buf);
  if (!ordinary(s)) return false;
  const double log_s = log_of_sum(s);
  for (size_t b = 0; b < n; b += kHalfBlock) {
    const size_t len = std::min(kHalfBlock, n - b);
    h.load(x + b, buf, len);
    h.k.write_shift(buf, buf, len, s.max, log_s, false);
    h.store(buf, y + b, len);
  }
  return true;
}

// One ulp of the format at |v| (subnormal spacing as the floor, also at 0).
double format_ulp(double v, HalfFormat f) {
  const bool f16 = f == HalfFormat::Float16;
  const double floor = f16 ? 0x1p-24 : 0x1p-133;
  if (!(v != 0.0)) return floor;
  int e = 0;
  std::frexp(std::fabs(v), &e);
  return std::max(std::ldexp(1.0, e - 1 - (f16 ? 10 : 7)), floor);
}

// Is a result lse within abs_err of the exact one certainly within a
// quarter ulp of the format? The ulp is taken where the exact result may
// be smallest, |lse| - abs_err (near 0 a computed lse, even 0, can be far
// larger than the exact one).
bool within_quarter_ulp(double lse, double abs_err, HalfFormat f) {
  return abs_err <= 0.25 * format_ulp(std::max(std::fabs(lse) - abs_err, 0.0), f);
}

// The fast float32 sum is certainly good enough when its error bound is a
// quarter ulp of the format: with the float32 rounding (2^-13 ulp or less)
// and the caller's final rounding (half an ulp) the result stays within 1 ulp.
bool lse_fast(HalfFormat f, const ExpSum& s, float& out) {
  if (!fast_ok(s.m, s.e)) return false;
  const double lse = s.e * kLn2 + std::log(s.m);
  const double abs_err = 1.02 * s.err + 0x1p-52 * (std::fabs(lse) + 1.0);
  if (!within_quarter_ulp(lse, abs_err, f)) return false;
  out = static_cast<float>(lse);
  return true;
}

// The accurate pass's result (max-relative, float64), or false for a special
// row. Near lse = 0, max + log S cancels: its float64 error, 2^-49 log S +
// 2^-53 |lse| (lse_cancel_ok, softmax_rows.h), can exceed the format's ulp
// there (bfloat16 keeps float32's exponent range: ulp(1e-20) ~ 2^-74;
// float16's subnormal spacing 2^-24 never lets it). Where it is above a
// quarter ulp (as lse_fast), the row is summed again in double-double:
// redo(ref, s) adds the row's sum exp(x - ref) into s (dd_sum_half).
template <class DdAdd>
bool lse_accurate(HalfFormat f, const ExpSum& o, float& out, DdAdd&& redo) {
  if (!ordinary(o) || !(o.m != 0.0)) return false;
  const double log_s = log_of_sum(o);
  double lse = o.max + log_s;
  if (!within_quarter_ulp(lse, 0x1p-49 * std::fabs(log_s) + 0x1p-53 * std::fabs(lse), f)) {
    detail::Dd s = {0.0, 0.0};
    redo(o.max, s);
    double sign;
    detail::lse_of_dd(s, o.max, lse, sign);  // unweighted, S >= 1
  }
  out = static_cast<float>(lse);
  return true;
}

// s += sum exp(x - ref) over a half row in double-double, block by block
// through buf (kHalfBlock floats or more).
void dd_sum_half(const Half& h, const uint16_t* x, size_t n, float* buf, double ref, detail::Dd& s) {
  for (size_t b = 0; b < n; b += kHalfBlock) {
    const size_t len = std::min(kHalfBlock, n - b);
    h.load(x + b, buf, len);
    detail::dd_expsum_add(buf, static_cast<const float*>(nullptr), len, ref, s);
  }
}

// Rows shorter than this on the buffered path take the float32 batch driver
// (one vector of the widest set: the half sets' short-row kernels start there).
constexpr size_t kShortLogsumexpMax = 16;

bool logsumexp_long(const Half& h, const uint16_t* x, size_t n, float* buf, float& out) {
  const ExpSum s = over_blocks(h, x, n, buf, [&](const float* b, size_t len) { return h.k.expsum_fast(b, len); },
                               combine_sums);
  if (lse_fast(h.f, s, out)) return true;
  return lse_accurate(h.f, online_long(h, x, n, buf), out,
                      [&](double ref, detail::Dd& dd) { dd_sum_half(h, x, n, buf, ref, dd); });
}

// A row already converted into buf.
bool logsumexp_whole(const Half& h, const float* buf, size_t n, float& out) {
  if (lse_fast(h.f, h.k.expsum_fast(buf, n), out)) return true;
  return lse_accurate(h.f, h.k.expsum_online_wide(buf, nullptr, n), out, [&](double ref, detail::Dd& dd) {
    detail::dd_expsum_add(buf, static_cast<const float*>(nullptr), n, ref, dd);
  });
}

// --- fused kernels: the half rows read and written in place ------------------

// Rows longer than this are summed in chunks of this many elements, their
// partials combined in chunk order (the fast sums' bounds hold for any chunk
// up to 2^24 elements; chunks keep a row's result independent of how the
// calls are split).
constexpr size_t kFusedChunk = size_t(1) << 16;

template <class Fn, class Combine>
ExpSum over_chunks(size_t n, Fn&& fn, Combine&& combine) {
  if (n <= kFusedChunk) return fn(size_t(0), n);
  std::vector<ExpSum> parts;
  parts.reserve((n + kFusedChunk - 1) / kFusedChunk);
  for (size_t b = 0; b < n; b += kFusedChunk) parts.push_back(fn(b, std::min(kFusedChunk, n - b)));
  return combine(parts);
}

// The two-pass algorithm on half data: pass 1 sums exp(x) as m * 2^e,
// pass 2 writes exp(x) * 2^-e / m; rows the fast sum cannot vouch for
// (NaN, inf, |x| beyond the fast range) go max-relative, as in the float32
// drivers (softmax_rows.h).
bool softmax_fused(const HalfKernels& k, const uint16_t* x, uint16_t* y, size_t n) {
  const ExpSum s = over_chunks(n, [&](size_t b, size_t len) { return k.expsum_fast(x + b, len); }, combine_sums);
  if (fast_ok(s.m, s.e)) {
    k.write_exp(x, y, n, 0.0, false, s.e, 1.0 / s.m);
    return true;
  }
  const ExpSum mx = over_chunks(n, [&](size_t b, size_t len) { return k.max_scan(x + b, len); }, combine_max);
  if (!ordinary(mx)) return false;
  const double ref = mx.max;
  const ExpSum e =
      over_chunks(n, [&](size_t b, size_t len) { return k.expsum(x + b, len, ref, true); }, combine_sums);
  k.write_exp(x, y, n, ref, true, e.e, 1.0 / e.m);
  return true;
}

// detail::sampled_max (softmax_rows.h) of the widened values: the largest of
// 32 entries spread evenly over the row, a lower bound of the max.
double sampled_max(const HalfConvert& cv, HalfFormat f, const uint16_t* x, size_t n) {
  constexpr size_t kSamples = 32;
  uint16_t picked[kSamples];
  const size_t count = std::min(n, kSamples);
  for (size_t k = 0; k < count; ++k) picked[k] = x[n <= kSamples ? k : (n - 1) * k / (kSamples - 1)];
  float wide[kSamples];
  (f == HalfFormat::Float16 ? cv.f16_to_f32 : cv.bf16_to_f32)(picked, wide, count);
  return detail::sampled_max(wide, count);
}

// In cache (rows the float32 drivers' auto runs as three-pass-reload, see
// resolve_auto): the terms exp(x) * 2^-e_ref of the half row stored in the
// thread's float32 buffer and summed (e_ref from a sampled
// lower bound of the max, as reload_guessed in softmax_rows.h), then
// y = term / sum rounded to the format once: reload's multiply as the last
// pass instead of two-pass's second exp. False (nothing written to y) when
// the guess does not hold (NaN, inf, a max far above the samples): the
// caller runs softmax_fused.
bool softmax_reload_cached(const HalfKernels& hk, const HalfConvert& cv, HalfFormat f, const uint16_t* x,
                           uint16_t* y, size_t n, float* buf) {
  const double guess = sampled_max(cv, f, x, n);
  if (!in_fast_range(guess)) return false;
  const double e_ref = std::nearbyint(guess * kLog2e);
  const ExpSum s = hk.expsum_store_pow2_f32(x, buf, n, e_ref);
  if (!(s.m >= 0.5 && s.m < 0x1p+100)) return false;
  hk.scale_from_f32(buf, y, n, 1.0 / s.m);
  return true;
}

// softmax_reload_cached with the format's own exp (half_api.h
// terms_from_ref; the short-row kernels' polynomial, half_rows.h) in place
// of the float32 one: the terms exp(x - g) 2^64, g the sampled guess, then
// y = term * 2^-64 / S rounded once. Taken where the row's max M (from the
// same pass) is at most 25 above g: S <= n e^25 keeps the factor a normal
// float32, and x - g, no larger in magnitude than x - M + 25, keeps each
// term within half_rows.h's 2^-13 budget. False (nothing written): a NaN,
// inf or out-of-range row (a guess beyond +-4096: terms_from_ref's range),
// or a guess too far below the max.
bool softmax_ref_cached(const HalfKernels& hk, const HalfConvert& cv, HalfFormat f, const uint16_t* x, uint16_t* y,
                        size_t n, float* buf) {
  if (!hk.terms_from_ref || n > (size_t(1) << 24)) return false;
  const double guess = sampled_max(cv, f, x, n);
  if (!(std::fabs(guess) <= 4096.0)) return false;  // terms_from_ref's range
  const ExpSum s = hk.terms_from_ref(x, buf, n, guess);
  if (!(s.max - guess <= 25.0 && s.m >= 1.0 && s.m < 0x1p+62)) return false;
  hk.scale_from_f32(buf, y, n, 0x1p-64 / s.m);
  return true;
}

ExpSum online_fused(const HalfKernels& k, const uint16_t* x, size_t n) {
  return over_chunks(n, [&](size_t b, size_t len) { return k.expsum_online_wide(x + b, len); }, combine_online);
}

// The fast float32 sum of a row with its max: per block of kHalfBlock
// elements the max (max_scan), then the sum reading the block again from L1
// (the float32 sum's kernel does not track the max); the blocks' sums
// combined in block order, whatever the thread count.
ExpSum fast_sum_and_max(const HalfKernels& k, const uint16_t* x, size_t n) {
  std::vector<ExpSum> parts;
  parts.reserve((n + kHalfBlock - 1) / kHalfBlock);
  double mx = -std::numeric_limits<double>::infinity();
  for (size_t b = 0; b < n; b += kHalfBlock) {
    const size_t len = std::min(kHalfBlock, n - b);
    mx = std::max(mx, k.max_scan(x + b, len).max);
    parts.push_back(k.expsum_fast(x + b, len));
  }
  ExpSum f = combine_sums(parts);
  f.max = mx;
  return f;
}

// Is v = lse - max, within dv of the exact one, accurate enough for every
// y = (x - max) - v of the row to be within 1 ulp of the format? |y| >= v,
// the format's ulp at |y| is at least 2^-p |y| (p = 11 for float16, 8 for
// bfloat16), and the write pass adds at most three float32 roundings (x -
// max, v, the difference: 3 * 2^-24 |y|) before the final rounding's half
// ulp: dv <= 0.45 * 2^-p v leaves a margin. A dominant entry (v below ~4e-4
// for bfloat16, ~3e-3 for float16) fails; NaN, inf and out-of-range rows
// fail their callers' checks.
bool shift_error_ok(double dv, double v, HalfFormat fmt) {
  return dv <= 0.45 * (fmt == HalfFormat::Float16 ? 0x1p-11 : 0x1p-8) * v;
}

// v from the fast float32 sum f (with the row's max), certified so.
bool half_shift_certified(const ExpSum& f, HalfFormat fmt, double& v) {
  double dv, hi;
  if (!detail::shift_of_sum(f, v, dv, hi)) return false;
  dv += 0x1p-52 * std::fabs(hi);  // a further margin of 2^-52 |lse|
  return shift_error_ok(dv, v, fmt);
}

// log S of a long row from its blocks' partial sums (block: half_api.h
// max_sum_block or lse_block): per kHalfBlock elements the block's max and
// its sum relative to that max, combined relative to the row's max M in
// block order: S = sum_b m_b exp(max_b - M) (float64; a block of -inf or NaN
// has max -inf, weight 0, and m 0 or NaN), v = log S. The block maxima's
// terms are exact, so S is within err S + err_rest (S - 1), and v within dv
// = that over S, plus (blocks + 4) 2^-52 for the float64 steps (exp,
// products, sums, log). False: a NaN, inf or all -inf row, or a block the
// kernel left to the other passes (m NaN).
template <class Block>
bool log_sum_by_blocks(Block block, const uint16_t* x, size_t n, double& mx, double& v, double& dv) {
  std::vector<ExpSum> parts;
  parts.reserve((n + kHalfBlock - 1) / kHalfBlock);
  mx = -std::numeric_limits<double>::infinity();
  for (size_t b = 0; b < n; b += kHalfBlock) {
    parts.push_back(block(x + b, std::min(kHalfBlock, n - b)));
    mx = std::max(mx, parts.back().max);
  }
  if (!(std::fabs(mx) < std::numeric_limits<double>::infinity())) return false;
  double s = 0.0, err = 0.0, err_rest = 0.0;
  for (const ExpSum& p : parts) {
    s += p.m * std::exp(p.max - mx);
    err = std::max(err, p.err);
    err_rest = std::max(err_rest, p.err_rest);
  }
  if (!(s >= 1.0 && s < std::numeric_limits<double>::infinity())) return false;
  v = std::log(s);
  dv = 1.01 * (err + err_rest * (1.0 - 1.0 / s)) + double(parts.size() + 4) * 0x1p-52;
  return true;
}

// log_softmax's pass 1 with the format's own exp (half_api.h max_sum_block),
// v = log S by log_sum_by_blocks, certified by shift_error_ok (dv <= 0.45
// 2^-p v). err_rest (~1e-4, both formats) alone never fails that (1 - 1/S
// <= v); err (~1e-5) fails only for v below ~6e-3 (bfloat16) or ~0.05-0.08
// (float16): a dominant entry. False (nothing written): not certified, or
// a NaN, inf or all -inf row.
bool shift_by_blocks(const HalfKernels& k, HalfFormat fmt, const uint16_t* x, size_t n, double& mx, double& v) {
  double dv;
  return k.max_sum_block && log_sum_by_blocks(k.max_sum_block, x, n, mx, v, dv) && shift_error_ok(dv, v, fmt);
}

// log_softmax = x - lse in two passes, with no exp in the second: pass 1
// shift_by_blocks where the set has it; else (or where it does not
// certify) the float32 fast sum with the row's max, certified for the format (above);
// pass 2 (x - max) - (lse - max) rounded once. Else the exact online float64
// sum, whose max term is exactly 1 (log1p(S - 1) keeps a dominant entry's
// log-probability relatively accurate), then the same write.
bool log_softmax_fused(const HalfKernels& k, HalfFormat fmt, const uint16_t* x, uint16_t* y, size_t n) {
  double v, mx;
  if (shift_by_blocks(k, fmt, x, n, mx, v)) {
    k.write_shift(x, y, n, mx, v);
    return true;
  }
  const ExpSum f = fast_sum_and_max(k, x, n);
  if (half_shift_certified(f, fmt, v)) {
    k.write_shift(x, y, n, f.max, v);
    return true;
  }
  const ExpSum s = online_fused(k, x, n);
  if (!ordinary(s)) return false;
  k.write_shift(x, y, n, s.max, log_of_sum(s));
  return true;
}

// buf: the thread's buffer, for the double-double sum of rows near lse = 0.
// First the format's own exp in one read (half_api.h lse_block), lse = M +
// log S within dv + 2^-52 |lse| (log_sum_by_blocks, the addition), kept
// where that is a quarter ulp of the format (as lse_fast); else the float32
// fast sum, then the accurate pass. Zen 5, one thread, 1 Mi elements in
// rows of 32000, least thread CPU time, against the float32 fast sum alone:
// avx512 float16 0.93, bfloat16 0.78 the time; avx2 0.80 and 0.68. float16
// vs float32 logsumexp of the same values in cache (2 rows of 32768,
// bench/half_arrays.py part 3): 0.87 -> 0.92-0.93 the float32 rate.
bool logsumexp_fused(const HalfKernels& k, HalfFormat f, const uint16_t* x, size_t n, float* buf, float& out) {
  double mx, v, dv;
  if (k.lse_block && log_sum_by_blocks(k.lse_block, x, n, mx, v, dv)) {
    const double lse = mx + v;
    if (within_quarter_ulp(lse, dv + 0x1p-52 * std::fabs(lse), f)) {
      out = static_cast<float>(lse);
      return true;
    }
  }
  const ExpSum s = over_chunks(n, [&](size_t b, size_t len) { return k.expsum_fast(x + b, len); }, combine_sums);
  if (lse_fast(f, s, out)) return true;
  return lse_accurate(f, online_fused(k, x, n), out,
                      [&](double ref, detail::Dd& dd) { dd_sum_half(make_half(f), x, n, buf, ref, dd); });
}

constexpr size_t kFusedMinAuto = ~size_t(0);
std::atomic<size_t> g_fused_min_n{kFusedMinAuto};

// Fused kernels for the two-pass algorithm (auto included); the other
// algorithms, and rows shorter than the threshold, take the buffered path.
// Default threshold: just above the active set's short-row kernels (a group
// of rows per vector, rows_api.h), which the buffered path's float32 batch
// drivers use and which beat any row-by-row pass on such rows.
bool use_fused(size_t n, Algorithm a) {
  if (a != Algorithm::Auto && a != Algorithm::TwoPass) return false;
  size_t min_n = g_fused_min_n.load(std::memory_order_relaxed);
  if (min_n == kFusedMinAuto) {
    const Implementation& impl = active_implementation();
    min_n = impl.rows ? impl.rows().f32.max_n + 1 : 0;
  }
  return n >= min_n;
}

const HalfKernels* fused_kernels(HalfFormat f) {
  const HalfKernelSet* set = active_half();
  if (!set) return nullptr;
  return f == HalfFormat::Float16 ? &set->f16 : &set->bf16;
}

// task(t, found) for t in [0, tasks), on the pool where the call (elements
// in all) pays for waking it (detail::run_tasks); the rows the tasks
// appended to `found`, in task order.
template <class Task>
std::vector<size_t> run_collecting(size_t tasks, size_t elements, Task&& task) {
  std::vector<std::vector<size_t>> found(tasks);
  detail::run_tasks(tasks, elements, [&](size_t t) { task(t, found[t]); });
  std::vector<size_t> special;
  for (auto& v : found) special.insert(special.end(), v.begin(), v.end());
  return special;
}

// Rows in tasks of `per` rows spread over the threads for big calls;
// row(r, buf) computes row r (buf: the thread's float32 work space) and
// returns false for a special row.
template <class Row>
std::vector<size_t> run_fused(size_t rows, size_t n, Row&& row) {
  if (rows == 0 || n == 0) return {};
  const size_t per = std::max<size_t>(1, kHalfWholeRow / n);
  const size_t tasks = (rows + per - 1) / per;
  auto task = [&](size_t t, std::vector<size_t>& found) {
    float* buf = thread_buffer();
    const size_t end = std::min(rows, (t + 1) * per);
    for (size_t r = t * per; r < end; ++r)
      if (!row(r, buf)) found.push_back(r);
  };
  return run_collecting(tasks, rows * n, task);
}

// --- short rows: the half row kernels (half_rows.h) --------------------------

constexpr size_t kRowsAuto = ~size_t(0);
std::atomic<size_t> g_rows_max{kRowsAuto};

// Batches of rows of the set's rows_min_n to its rows_auto_max elements for
// the function (`which`: its measured range, half_api.h) take the set's
// short-row kernels.
bool use_rows(const HalfKernels* k, size_t HalfKernels::RowsMax::*which, size_t rows, size_t n) {
  // One row alone: the redo of a flagged row (rows = 1) must not come back.
  if (!k || !k->softmax_rows || rows < 2 || n < k->rows_min_n || n > kHalfRowsMax) return false;
  const size_t forced = g_rows_max.load(std::memory_order_relaxed);
  return n <= (forced != kRowsAuto ? forced : k->rows_auto_max.*which);
}

// Batches of rows of n elements take the set's one-vector kernel table[n]
// (softmax_tiny, log_softmax_tiny) where it has one, unless the short-row
// kernels are forced off (set_half_rows_max below n); else null.
HalfKernels::TinyRows tiny_kernel(const HalfKernels::TinyRows (&table)[kHalfTinyMax + 1], size_t rows, size_t n) {
  if (rows < 2 || n < 2 || n > kHalfTinyMax) return nullptr;
  const size_t forced = g_rows_max.load(std::memory_order_relaxed);
  if (forced != kRowsAuto && n > forced) return nullptr;
  return table[n];
}

// kernel(r0, count, flag) over runs of rows (on the pool where the call pays
// for waking it: run_tasks); then redo(r) -> ok for each flagged row, and the
// rows it could not finish are the special rows.
template <class Kernel, class Redo>
std::vector<size_t> run_rows(size_t rows, size_t n, Kernel&& kernel, Redo&& redo) {
  std::vector<unsigned char> flag(rows);
  const size_t per = std::max<size_t>(8, kHalfWholeRow / n / 8 * 8);
  const size_t tasks = (rows + per - 1) / per;
  auto task = [&](size_t t) {
    const size_t r0 = t * per;
    kernel(r0, std::min(per, rows - r0), flag.data() + r0);
  };
  detail::run_tasks(tasks, rows * n, task);
  // The flagged rows by memchr (the flags are 0 or 1): a loop over every
  // row's byte took a third of softmax on bfloat16 rows of two.
  std::vector<size_t> special;
  const unsigned char* const begin = flag.data();
  const unsigned char* const end = begin + rows;
  for (const unsigned char* p = begin; (p = static_cast<const unsigned char*>(std::memchr(p, 1, size_t(end - p))));
       ++p)
    if (!redo(size_t(p - begin))) special.push_back(size_t(p - begin));
  return special;
}

// --- driver ----------------------------------------------------------------

// Rows in groups that fill the buffer (short rows) or one at a time (long
// rows); groups spread over the threads for big calls. group(h, r0, count,
// buf, special) handles rows [r0, r0 + count) and appends special rows.
template <class Group>
std::vector<size_t> run_half(HalfFormat f, size_t rows, size_t n, Group&& group) {
  if (rows == 0 || n == 0) return {};
  const Half h = make_half(f);
  const size_t per = n <= kHalfWholeRow ? std::max<size_t>(1, kHalfWholeRow / n) : 1;
  const size_t tasks = (rows + per - 1) / per;
  return run_collecting(tasks, rows * n, [&](size_t t, std::vector<size_t>& found) {
    group(h, t * per, std::min(per, rows - t * per), thread_buffer(), found);
  });
}

}  // namespace

void set_half_rows_max(size_t n) { g_rows_max.store(n, std::memory_order_relaxed); }
void reset_half_rows_max() { g_rows_max.store(kRowsAuto, std::memory_order_relaxed); }

void set_half_fused_min(size_t n) { g_fused_min_n.store(n, std::memory_order_relaxed); }
void reset_half_fused_min() { g_fused_min_n.store(kFusedMinAuto, std::memory_order_relaxed); }

std::vector<size_t> half_softmax_batch(const uint16_t* x, uint16_t* y, size_t rows, size_t n, HalfFormat f,
                                       Algorithm a) {
  const HalfKernels* k = fused_kernels(f);
  const HalfKernels::TinyRows tiny = a == Algorithm::Auto && k ? tiny_kernel(k->softmax_tiny, rows, n) : nullptr;
  if (tiny) {
    return run_rows(
        rows, n, [&](size_t r0, size_t count, unsigned char* flag) { tiny(x + r0 * n, y + r0 * n, count, flag); },
        [&](size_t r) { return half_softmax_batch(x + r * n, y + r * n, 1, n, f, a).empty(); });
  }
  if (a == Algorithm::Auto && use_rows(k, &HalfKernels::RowsMax::softmax, rows, n))
    return run_rows(
        rows, n,
        [&](size_t r0, size_t count, unsigned char* flag) { k->softmax_rows(x + r0 * n, y + r0 * n, count, n, flag); },
        [&](size_t r) { return half_softmax_batch(x + r * n, y + r * n, 1, n, f, a).empty(); });
  if (k && use_fused(n, a)) {
    const bool reload = a == Algorithm::Auto && resolve_auto(n, sizeof(float), 1) == Algorithm::ThreePassReload;
    const HalfConvert& cv = active_convert();
    return run_fused(rows, n, [&](size_t r, float* buf) {
      float* terms = n <= kHalfWholeRow ? buf : terms_buffer(n);
      if (reload && (softmax_ref_cached(*k, cv, f, x + r * n, y + r * n, n, terms) ||
                     softmax_reload_cached(*k, cv, f, x + r * n, y + r * n, n, terms)))
        return true;
      return softmax_fused(*k, x + r * n, y + r * n, n);
    });
  }
  return run_half(f, rows, n, [&](const Half& h, size_t r0, size_t count, float* buf, std::vector<size_t>& sp) {
    if (n > kHalfWholeRow) {
      if (!softmax_long(h, x + r0 * n, y + r0 * n, n, buf)) sp.push_back(r0);
      return;
    }
    h.load(x + r0 * n, buf, count * n);
    // In place in the buffer: special rows are left as they were (the
    // caller overwrites them anyway).
    for (size_t r : softmax_batch<float>(h.k, buf, buf, count, n, a, false)) sp.push_back(r0 + r);
    h.store(buf, y + r0 * n, count * n);
  });
}

std::vector<size_t> half_log_softmax_batch(const uint16_t* x, uint16_t* y, size_t rows, size_t n, HalfFormat f) {
  const HalfKernels* k = fused_kernels(f);
  if (const HalfKernels::TinyRows tiny = k ? tiny_kernel(k->log_softmax_tiny, rows, n) : nullptr)
    return run_rows(
        rows, n, [&](size_t r0, size_t count, unsigned char* flag) { tiny(x + r0 * n, y + r0 * n, count, flag); },
        [&](size_t r) { return half_log_softmax_batch(x + r * n, y + r * n, 1, n, f).empty(); });
  if (use_rows(k, &HalfKernels::RowsMax::log_softmax, rows, n))
    return run_rows(
        rows, n,
        [&](size_t r0, size_t count, unsigned char* flag) { k->log_softmax_rows(x + r0 * n, y + r0 * n, count, n, flag); },
        [&](size_t r) { return half_log_softmax_batch(x + r * n, y + r * n, 1, n, f).empty(); });
  if (k && use_fused(n, Algorithm::TwoPass))
    return run_fused(rows, n, [&](size_t r, float*) { return log_softmax_fused(*k, f, x + r * n, y + r * n, n); });
  return run_half(f, rows, n, [&](const Half& h, size_t r0, size_t count, float* buf, std::vector<size_t>& sp) {
    if (n > kHalfWholeRow) {
      if (!log_softmax_long(h, x + r0 * n, y + r0 * n, n, buf)) sp.push_back(r0);
      return;
    }
    h.load(x + r0 * n, buf, count * n);
    for (size_t r : log_softmax_batch<float>(h.k, buf, buf, count, n)) sp.push_back(r0 + r);
    h.store(buf, y + r0 * n, count * n);
  });
}

std::vector<size_t> half_logsumexp_batch(const uint16_t* x, float* out, size_t rows, size_t n, HalfFormat f) {
  const HalfKernels* k = fused_kernels(f);
  if (use_rows(k, &HalfKernels::RowsMax::logsumexp, rows, n))
    return run_rows(
        rows, n,
        [&](size_t r0, size_t count, unsigned char* flag) { k->logsumexp_rows(x + r0 * n, out + r0, count, n, flag); },
        [&](size_t r) { return half_logsumexp_batch(x + r * n, out + r, 1, n, f).empty(); });
  if (k && use_fused(n, Algorithm::TwoPass))
    return run_fused(rows, n, [&](size_t r, float* buf) { return logsumexp_fused(*k, f, x + r * n, n, buf, out[r]); });
  return run_half(f, rows, n, [&](const Half& h, size_t r0, size_t count, float* buf, std::vector<size_t>& sp) {
    if (n > kHalfWholeRow) {
      if (!logsumexp_long(h, x + r0 * n, n, buf, out[r0])) sp.push_back(r0);
      return;
    }
    h.load(x + r0 * n, buf, count * n);
    // The float32 batch driver (its short-row kernels: a group of rows per
    // vector) on the widened rows: within 1 float32 ulp of the rounded exact
    // result, so within 1 ulp of the format after the caller's rounding.
    if (n < kShortLogsumexpMax) {
      for (size_t r : logsumexp_batch<float>(h.k, buf, nullptr, out + r0, nullptr, count, n)) sp.push_back(r0 + r);
      return;
    }
    for (size_t r = 0; r < count; ++r)
      if (!logsumexp_whole(h, buf + r * n, n, out[r0 + r])) sp.push_back(r0 + r);
  });
}

}  // namespace ssm
