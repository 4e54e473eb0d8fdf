#include "driver_half.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "chunking.h"
#include "dispatch.h"
#include "thread_pool.h"

namespace ssm {

namespace {

// The partial-sum reductions and row tests of the float32 drivers.
using detail::combine_max;
using detail::combine_online;
using detail::combine_sums;
using detail::fast_ok;
using detail::log_of_sum;
using detail::ordinary;

constexpr double kLn2 = 0.6931471805599453;
// Below this many elements a call runs on the calling thread (as the float32
// drivers' parallel_min: a sleeping worker wakes up too late to help).
constexpr size_t kParallelMin = size_t(1) << 17;

// A thread's float32 work space: kHalfWholeRow floats, reused by every call.
float* thread_buffer() {
  thread_local std::vector<float> buffer(kHalfWholeRow);
  return buffer.data();
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

// One ulp of the format at |v| (subnormal spacing as the floor).
double format_ulp(double v, HalfFormat f) {
  int e = 0;
  std::frexp(std::fabs(v), &e);
  const bool f16 = f == HalfFormat::Float16;
  return std::max(std::ldexp(1.0, e - 1 - (f16 ? 10 : 7)), f16 ? 0x1p-24 : 0x1p-133);
}

// The fast float32 sum is certainly good enough when its error bound is a
// quarter ulp of the format: with the float32 rounding (2^-13 ulp or less)
// and the caller's final rounding (half an ulp) the result stays within 1 ulp.
bool lse_fast(const Half& h, const ExpSum& s, float& out) {
  if (!fast_ok(s.m, s.e)) return false;
  const double lse = s.e * kLn2 + std::log(s.m);
  const double abs_err = 1.02 * s.err + 0x1p-52 * (std::fabs(lse) + 1.0);
  if (!(abs_err <= 0.25 * format_ulp(lse, h.f))) return false;
  out = static_cast<float>(lse);
  return true;
}

// The accurate pass's result (max-relative, float64), or false for a special row.
bool lse_accurate(const ExpSum& o, float& out) {
  if (!ordinary(o) || !(o.m != 0.0)) return false;
  out = static_cast<float>(o.max + log_of_sum(o));
  return true;
}

bool logsumexp_long(const Half& h, const uint16_t* x, size_t n, float* buf, float& out) {
  const ExpSum s = over_blocks(h, x, n, buf, [&](const float* b, size_t len) { return h.k.expsum_fast(b, len); },
                               combine_sums);
  if (lse_fast(h, s, out)) return true;
  return lse_accurate(online_long(h, x, n, buf), out);
}

// A row already converted into buf.
bool logsumexp_whole(const Half& h, const float* buf, size_t n, float& out) {
  if (lse_fast(h, h.k.expsum_fast(buf, n), out)) return true;
  return lse_accurate(h.k.expsum_online_wide(buf, nullptr, n), out);
}

// --- driver ----------------------------------------------------------------

// Rows in groups that fill the buffer (short rows) or one at a time (long
// rows); groups spread over the threads for big calls. group(h, r0, count,
// buf, special) handles rows [r0, r0 + count) and appends special rows.
template <class Group>
std::vector<size_t> run_half(HalfFormat f, size_t rows, size_t n, Group&& group) {
  std::vector<size_t> special;
  if (rows == 0 || n == 0) return special;
  const Half h = make_half(f);
  const size_t per = n <= kHalfWholeRow ? std::max<size_t>(1, kHalfWholeRow / n) : 1;
  const size_t tasks = (rows + per - 1) / per;
  const bool threads = get_num_threads() > 1 && tasks > 1 && rows * n >= kParallelMin;
  if (!threads) {
    float* buf = thread_buffer();
    for (size_t t = 0; t < tasks; ++t) group(h, t * per, std::min(per, rows - t * per), buf, special);
    return special;
  }
  std::vector<std::vector<size_t>> found(tasks);
  parallel_for(tasks, [&](size_t t) { group(h, t * per, std::min(per, rows - t * per), thread_buffer(), found[t]); });
  for (auto& v : found) special.insert(special.end(), v.begin(), v.end());
  return special;
}

}  // namespace

std::vector<size_t> half_softmax_batch(const uint16_t* x, uint16_t* y, size_t rows, size_t n, HalfFormat f,
                                       Algorithm a) {
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
  return run_half(f, rows, n, [&](const Half& h, size_t r0, size_t count, float* buf, std::vector<size_t>& sp) {
    if (n > kHalfWholeRow) {
      if (!logsumexp_long(h, x + r0 * n, n, buf, out[r0])) sp.push_back(r0);
      return;
    }
    h.load(x + r0 * n, buf, count * n);
    for (size_t r = 0; r < count; ++r)
      if (!logsumexp_whole(h, buf + r * n, n, out[r0 + r])) sp.push_back(r0 + r);
  });
}

}  // namespace ssm
