// sample() and topk(): the row pipeline on top of the selection passes
// (kernels/sample_generic.h) and the Gumbel draw (kernels/gumbel_generic.h).
//
// Passes over a row, per setting (each a read of the row; "scan" = max only):
//   no filter, no logprobs:  1 (the draw, exactly gumbel_argmax's pass)
//   temperature = 0:         1-2 (max, then the first index holding it)
//   top_k (+ top_p, min_p):  1 (running k-th best, from a sampled floor in
//                            long chunks; a filtered pass into a candidate
//                            buffer where k is large against the chunk),
//                            then top-p and min-p on the k candidates
//                            (O(k log k), no pass), and the draw on the
//                            candidates' own noise (no pass) when
//                            24 x kept <= n + 256 (kDrawAtCost); else, or
//                            when ties at the k-th value are kept beyond k,
//                            the masked draw (1)
//   min_p:                   2 (max; the draw masked at the min-p threshold,
//                            a threshold on z found without a pass)
//   top_p (no logprobs or "raw"): 2 in about top_p of the calls (the
//                            unfiltered draw, then the coarse pass that
//                            checks its winner against the filters, and
//                            finds the max for min-p). A winner filtered
//                            out: those 2, the max pass where not known,
//                            the draw's next best scores (its pass with k =
//                            kNextBest) and a coarse pass per candidate
//                            until one is kept (most often the first); the
//                            search only when all are dropped or the bounds
//                            leave one open.
//                            In a batch the coarse pass prefetches the next
//                            row's start for its draw (RowSampler::next_row;
//                            256 KiB, none on avx512: CoarseTuning)
//   top_p:                   3 typically (max; one mass pass that also
//                            collects the values of the zone a sample of the
//                            row predicts for the threshold; the masked
//                            draw). The mass pass is first the estimate
//                            (float64 sums of a cheaper exp with a rigorous
//                            error bound); only when its bound cannot decide
//                            the threshold, or logprobs="processed" wants the
//                            exact kept mass, the exact pass (one exact
//                            vector exp per element) runs as well. The finish
//                            over the zone's values: value buckets with exact
//                            mass sums, then a quickselect on the masses of
//                            the boundary bucket's values. A zone that the
//                            estimate shows to miss the threshold is followed
//                            by the next zone out on that side (two margins
//                            wide), collected by a pass without masses (a
//                            read); beyond that, or on the exact passes, a
//                            miss costs one more mass pass per bisection step.
//                            Rows of at most 4096 values: no estimate and
//                            no mass pass; their finite values are
//                            collected (a read) and each one's exact mass
//                            computed once, for the total and the finish.
//   logprobs="raw":          + 1 (max and log-sum-exp in one pass:
//                            log_softmax's first pass, for float32 rows its
//                            float32 table-exp sum, and its certified shift
//                            lse - max; the float64 sum, then the exact
//                            online pass, only where that is not certified)
//                            unless it replaces the max pass; with top-k
//                            (float32), logsumexp's own pass where the
//                            token's logprob is likely large enough for its
//                            bound (raw_fast_likely)
//   logprobs="processed":    + 1 (the kept mass) unless known from top-k or top-p
//
// Short rows (those the Gumbel short-row kernel takes) with one temperature
// > 0 and one key for the call and no logprobs: each row's filters as above
// but without the draw, then a block of rows, copied with each row's logits
// below its floor set to -inf, drawn at once by the short-row kernel (no
// per-row draw setup; the same tokens).
#include "sample_driver.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <functional>
#include <type_traits>
#include <vector>

#include "dispatch.h"
#include "driver.h"
#include "gumbel_driver.h"
#include "kernels/sample_api.h"
#include "kernels/sample_fixed.h"
#include "kernels/vecmath_common.h"
#include "softmax_rows.h"
#include "thread_pool.h"

namespace ssm {
namespace {

constexpr double kInfD = std::numeric_limits<double>::infinity();

std::atomic<bool> g_estimates{true};
std::atomic<uint64_t> g_decided{0}, g_undecided{0};
std::atomic<bool> g_draw_first{true};
std::atomic<uint64_t> g_first_kept{0}, g_first_dropped{0}, g_first_undecided{0};
std::atomic<uint64_t> g_next_best[3] = {};  // the next candidates after a dropped winner: kept, dropped, open
std::atomic<int> g_top_k_draw{0};  // top-k's draw: 0 by the rule, 1 on the candidates' noise, 2 the masked pass
std::atomic<int> g_select_method{0};  // select_method(): 0 by the rule, 1 the candidate buffer, 2 the heap

enum Fault { kFine = 0, kNaN, kPosInf, kNoFinite };

RowStatus fault_status(size_t row, Fault f) {
  const auto r = static_cast<long long>(row);
  if (f == kNaN) return {r, "contains NaN"};
  if (f == kPosInf) return {r, "contains +inf"};
  return {r, "has no finite logit"};
}

// a * c for c < 2^32, exact (no overflow for the masses of a row).
FixedMass fixed_times(const FixedMass& a, uint64_t c) {
  const uint64_t p0 = (a.lo & 0xFFFFFFFFu) * c, p1 = (a.lo >> 32) * c;
  FixedMass r;
  r.lo = p0 + (p1 << 32);
  r.hi = a.hi * c + (p1 >> 32) + (r.lo < p0 ? 1u : 0u);
  return r;
}

// count tokens of mass one each.
FixedMass fixed_of(const FixedMass& one, uint64_t count) {
  FixedMass r;
  while (count > 0) {  // count may exceed 2^32 only in theory; take it in steps
    const uint64_t c = std::min<uint64_t>(count, 0xFFFFFFFFu);
    fixed_add(r, fixed_times(one, c));
    count -= c;
  }
  return r;
}

// The largest T below v, as double: "x > below<T>(v)" is "x >= v" for x of type T.
template <class T>
double below(double v) {
  return static_cast<double>(std::nextafter(static_cast<T>(v), -std::numeric_limits<T>::infinity()));
}

double mass_of(double v, double ref, double inv_temp) {
  return v == ref ? 1.0 : std::exp((v - ref) * inv_temp);
}

// The chunks of a row: chunk c is [c * size, min(n, (c + 1) * size)).
struct Chunking {
  size_t n, size, count;
  explicit Chunking(size_t n_) : n(n_) {
    size = n > chunked_row() ? chunk_elements() : std::max<size_t>(n, 1);
    count = (n + size - 1) / size;
  }
  size_t lo(size_t c) const { return c * size; }
  size_t len(size_t c) const { return std::min(n, (c + 1) * size) - c * size; }
};

// body(c) for every chunk of a row; on the pool only for a call of one row
// (a batch runs its rows in parallel instead: the pool does not nest).
template <class Body>
void for_chunks(const Chunking& ch, bool parallel, const Body& body) {
  if (parallel && ch.count > 1 && ch.n >= settings().parallel_min)
    parallel_for(ch.count, body);
  else
    for (size_t c = 0; c < ch.count; ++c) body(c);
}

// The smallest and largest of count > 0 values, none NaN: four running
// pairs, not one chain of dependent min/max. Not inlined: inlined into walk,
// GCC kept the running values on the stack (a store-to-load chain per value,
// ~15% of a short row's top-p).
SSM_NOINLINE std::pair<double, double> value_range(const double* v, size_t count) {
  double lo[4] = {v[0], v[0], v[0], v[0]}, hi[4] = {v[0], v[0], v[0], v[0]};
  size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    for (size_t j = 0; j < 4; ++j) {
      lo[j] = v[i + j] < lo[j] ? v[i + j] : lo[j];
      hi[j] = v[i + j] > hi[j] ? v[i + j] : hi[j];
    }
  }
  for (; i < count; ++i) {
    lo[0] = v[i] < lo[0] ? v[i] : lo[0];
    hi[0] = v[i] > hi[0] ? v[i] : hi[0];
  }
  return {std::min(std::min(lo[0], lo[1]), std::min(lo[2], lo[3])),
          std::max(std::max(hi[0], hi[1]), std::max(hi[2], hi[3]))};
}

struct Group {
  double value;
  uint64_t count;
};

// The distinct values of a descending list, with their counts, into g.
void groups_of(const double* v, size_t count, std::vector<Group>& g) {
  g.clear();
  for (size_t i = 0; i < count; ++i) {
    if (!g.empty() && g.back().value == v[i])
      ++g.back().count;
    else
      g.push_back({v[i], 1});
  }
}

// T's values in order as unsigned integers (bit patterns with the sign
// folded), for bisection over every value of the type.
template <class T>
struct Ordered {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static constexpr U kSign = U{1} << (8 * sizeof(T) - 1);
  static U key(T v) {
    U b;
    std::memcpy(&b, &v, sizeof b);
    return (b & kSign) ? static_cast<U>(~b) : static_cast<U>(b | kSign);
  }
  static T value(U k) {
    const U b = (k & kSign) ? static_cast<U>(k & ~kSign) : static_cast<U>(~k);
    T v;
    std::memcpy(&v, &b, sizeof v);
    return v;
  }
};

// The smallest T value t with mass(t) >= min_p, i.e. min-p's threshold on
// the logits: {x >= t} is exactly {x : p(x) >= min_p p_max} (mass is
// monotone in x; no pass over the row). -inf: all. The search starts at
// max + T log(min_p), the threshold up to the roundings, and steps over T's
// values from there (one or two steps, each an exp); bisection over T's
// values only when a few steps do not find it.
template <class T>
double min_p_threshold(double max, double inv_temp, double min_p) {
  using O = Ordered<T>;
  using U = typename O::U;
  auto ok = [&](T t) { return mass_of(static_cast<double>(t), max, inv_temp) >= min_p; };
  const T lowest = std::numeric_limits<T>::lowest();
  if (ok(lowest)) return -kInfD;
  U bad = O::key(lowest), good = O::key(static_cast<T>(max));  // ok(max): mass 1
  constexpr int kSteps = 8;
  const double guess = std::max(max + std::log(min_p) / inv_temp, static_cast<double>(lowest));
  const U start = std::min(std::max(O::key(static_cast<T>(guess)), bad + 1), good);
  if (ok(O::value(start))) {
    good = start;
    for (int s = 0; s < kSteps && good - bad > 1; ++s) {
      if (!ok(O::value(good - 1))) return static_cast<double>(O::value(good));
      --good;
    }
  } else {
    bad = start;
    for (int s = 0; s < kSteps && good - bad > 1; ++s) {
      if (ok(O::value(bad + 1))) return static_cast<double>(O::value(bad + 1));
      ++bad;
    }
  }
  while (good - bad > 1) {
    const U mid = bad + (good - bad) / 2;
    (ok(O::value(mid)) ? good : bad) = mid;
  }
  return static_cast<double>(O::value(good));
}

// A mass below top-p's target? Exactly (err = 0: fixed_value(up) < target),
// or for an estimated up and target (err bounds |up - exact up| + |target -
// exact target|, where the exact target is top_p * fixed_value(exact
// total)): the exact comparison's answer when the bound decides it, else
// false with undecided set. The slack 2^-50 (up + target) covers the
// roundings of fixed_value, of the estimate's conversion to FixedMass and of
// the products and sums here.
struct Judge {
  double target, err = 0;
  bool undecided = false;
  bool below(const FixedMass& up) {
    const double u = fixed_value(up);
    const double e = err == 0 ? 0.0 : err + (u + target) * 0x1p-50;
    if (u + e < target) return true;
    if (u - e >= target) return false;
    undecided = true;
    return false;
  }
};

// The FixedMass nearest below a mass 0 <= v < 2^31.
FixedMass fixed_from(double v) {
  FixedMass r;
  const double scaled = v * 0x1p32, whole = std::floor(scaled);
  r.hi = static_cast<uint64_t>(whole);
  r.lo = static_cast<uint64_t>((scaled - whole) * 0x1p64);
  return r;
}

// top-k draws on its candidates' own noise when kDrawAtCost x their count <=
// n + kDrawAtSlack, else by the masked pass. The two meet (1 thread, float32,
// median of 7 interleaved rounds) at k ~ 24-28 of n = 256, 60-65 of 1000,
// ~13 of 64, above 8 of 16, and at 127 (avx512) or well above 200 (avx2) of
// 4096: a candidate's noise (its own Philox gate block) costs about 24
// tokens of the pass, plus the pass's own start.
constexpr size_t kDrawAtCost = 24, kDrawAtSlack = 256;
constexpr size_t kCollectAll = 4096;  // a row this short has its values collected whole
constexpr size_t kCollectMax = 8192;  // the most values of a zone collected for the exact finish
constexpr size_t kSample = 2048;      // the sample that places the zone: values ...
constexpr size_t kSampleRun = 32;     // ... in runs this long, evenly spread over the row
constexpr size_t kMargin = 40;        // sample values either side of the predicted threshold
constexpr size_t kNextBest = 4;       // top-p's draw first: the winner and the next best scores

// A row's scratch vectors, kept per thread so that a batch of short rows
// allocates nothing per row (sample_row is not reentrant on a thread).
struct RowScratch {
  std::vector<double> value, group_value;
  std::vector<uint64_t> index;
  std::vector<Group> groups;
  std::vector<FixedMass> w;
  std::vector<double> zone;            // top-p's values of a short row
  std::vector<FixedMass> zone_mass;    // and their masses
  std::vector<Candidate> cand;         // top-p's next candidates after a dropped winner
};

RowScratch& row_scratch() {
  thread_local RowScratch s;
  return s;
}

template <class T>
class RowSampler {
 public:
  // The kernel tables are the caller's (looked up once per call, on the
  // calling thread, so that pool threads run the kernel set the call chose).
  RowSampler(const T* x, size_t n, bool parallel, const SampleKernels<T>& sk, const Kernels<T>& sm)
      : x_(x), n_(n), ch_(n), parallel_(parallel), sk_(sk), sm_(sm) {}

  // The batch's next row (next_n values at next), whose start the coarse
  // pass prefetches for that row's draw: up to the kernel set's
  // SampleKernels::coarse_next_bytes.
  void next_row(const T* next, size_t next_n) {
    next_ = next;
    next_n_ = next_n;
  }

  // The k best (value desc, index asc) and how many more elements equal the
  // k-th value; fault if a NaN (or, for sample, +inf) was seen.
  Fault select(size_t k, std::vector<double>& value, std::vector<uint64_t>& index, uint64_t& extra_ties,
               bool posinf_ok) {
    if (ch_.count == 1) {  // one chunk: straight into value and index
      value.resize(k);
      index.resize(k);
      const SelectResult r = sk_.select(x_, n_, 0, k, value.data(), index.data());
      if (r.nan) return kNaN;
      if (r.posinf && !posinf_ok) return kPosInf;
      value.resize(r.count);
      index.resize(r.count);
      extra_ties = r.ties;
      return kFine;
    }
    std::vector<double> cv(ch_.count * k);
    std::vector<uint64_t> ci(ch_.count * k);
    std::vector<SelectResult> res(ch_.count);
    for_chunks(ch_, parallel_, [&](size_t c) {
      res[c] = sk_.select(x_ + ch_.lo(c), ch_.len(c), ch_.lo(c), k, cv.data() + c * k, ci.data() + c * k);
    });
    bool posinf = false;
    for (const auto& r : res) {
      if (r.nan) return kNaN;
      posinf = posinf || r.posinf;
    }
    if (posinf && !posinf_ok) return kPosInf;
    std::vector<size_t> order;
    for (size_t c = 0; c < ch_.count; ++c)
      for (size_t j = 0; j < res[c].count; ++j) order.push_back(c * k + j);
    const size_t keep = std::min(k, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                      [&](size_t a, size_t b) { return cv[a] > cv[b] || (cv[a] == cv[b] && ci[a] < ci[b]); });
    value.resize(keep);
    index.resize(keep);
    for (size_t j = 0; j < keep; ++j) {
      value[j] = cv[order[j]];
      index[j] = ci[order[j]];
    }
    extra_ties = 0;
    if (keep == k) {
      // Elements equal to the k-th value L: in some chunk's candidates, or
      // left out by a chunk whose own k-th value is L (its ties).
      const double kth = value[k - 1];
      uint64_t equal = 0, taken = 0;
      for (size_t c = 0; c < ch_.count; ++c) {
        for (size_t j = 0; j < res[c].count; ++j) equal += cv[c * k + j] == kth ? 1 : 0;
        if (res[c].count == k && cv[c * k + k - 1] == kth) equal += res[c].ties;
      }
      for (size_t j = 0; j < k; ++j) taken += value[j] == kth ? 1 : 0;
      extra_ties = equal - taken;
    }
    return kFine;
  }

  // max, and NaN -> fault (max +inf / -inf are the caller's to judge).
  Fault max(double& out) {
    if (ch_.count == 1) {
      const ExpSum p = sm_.max_scan(x_, n_);
      if (p.special) return kNaN;
      out = std::max(-kInfD, p.max);
      return kFine;
    }
    std::vector<ExpSum> part(ch_.count);
    for_chunks(ch_, parallel_, [&](size_t c) { part[c] = sm_.max_scan(x_ + ch_.lo(c), ch_.len(c)); });
    out = -kInfD;
    for (const auto& p : part) {
      if (p.special) return kNaN;
      out = std::max(out, p.max);
    }
    return kFine;
  }

  // max and shift = lse - max (log-sum-exp at temperature 1) in one pass,
  // the first pass of log_softmax (softmax_rows.h: raw logprobs are
  // log_softmax's values, to its accuracy): for float32 rows its float32
  // table-exp sum (expsum_lse32, after the cheaper expsum_lse32_fast where
  // offered), certified by lse32_shift for the float64 write, which is what
  // the logprob is ((x - max) - shift in float64, rounded once); else, or
  // where that is not certified (a dominant entry, a row out of the table's
  // range, NaN or +inf), expsum_lse's float64 sum and its certified shift;
  // else the exact online max-relative pass.
  Fault max_lse(double& max, double& shift) {
    const detail::Ctx<T> c = ctx();
    auto first_pass = [&](auto kernel) {
      return detail::reduce_chunks(c, n_, [&](size_t b, size_t len) { return kernel(x_ + b, len); },
                                   detail::combine_sums);
    };
    if (sm_.expsum_lse32 && n_ >= detail::kLse32MinRow) {
      const bool fast = sm_.expsum_lse32_fast && n_ >= detail::kLse32FastMinRow;
      ExpSum f = fast ? first_pass([&](const T* p, size_t len) { return sm_.expsum_lse32_fast(p, nullptr, len); })
                      : first_pass(sm_.expsum_lse32);
      bool certified = detail::lse32_shift(f, shift) != detail::Lse32Write::None;
      if (fast && !certified && detail::lse32_retry(f, sm_.lse32_err_rest))
        certified = detail::lse32_shift(f = first_pass(sm_.expsum_lse32), shift) != detail::Lse32Write::None;
      if (certified) {
        max = f.max;
        return kFine;
      }
    }
    const ExpSum f = first_pass(sm_.expsum_lse);
    if (f.special) return kNaN;
    max = f.max;
    if (detail::certified_shift<T>(f, shift)) return kFine;
    std::vector<ExpSum> part(ch_.count);
    for_chunks(ch_, parallel_, [&](size_t c) {
      part[c] = sm_.expsum_online_wide(x_ + ch_.lo(c), nullptr, ch_.len(c));
    });
    max = -kInfD;
    for (const auto& p : part) {
      if (p.special) return kNaN;
      max = std::max(max, p.max);
    }
    if (!(max > -kInfD && max < kInfD)) return kFine;
    if (ch_.count == 1) {
      shift = std::log1p((part[0].m - 1.0) + part[0].m_lo);
      return kFine;
    }
    double sum = 0;
    for (const auto& p : part)
      if (p.max > -kInfD) sum += (p.m + p.m_lo) * std::exp(p.max - max);
    shift = std::log(sum);
    return kFine;
  }

  // The row passes' context (softmax_rows.h) with the cut of Chunking: the same chunks.
  detail::Ctx<T> ctx() const {
    const Settings st = settings();
    return detail::Ctx<T>{sm_, st.chunk_elements, st.chunked_row, false, parallel_ && n_ >= st.parallel_min, 1};
  }

  // Raw logprobs of a top-k draw (float32 rows) from logsumexp's own pass
  // (expsum_fast, no max: cheaper than log_softmax's first pass) where the
  // drawn token's logprob y = x - lse is large enough for that sum's bound
  // (~4-6 2^-24 relative, so |y| >= ~4.5): where lse - max, guessed from the
  // k candidates (value, best first, max = value[0]) and 64 values spread
  // over the row, is at least kRawFastShift. A guess only: the token's
  // bound is checked (raw_fast_logprob), else max_lse runs.
  static constexpr double kRawFastShift = 6.5;
  bool raw_fast_likely(double max, const std::vector<double>& value) const {
    if (!std::is_same<T, float>::value || value.empty() || n_ < 1024) return false;
    double top = 0, rest = 0;
    for (const double v : value) top += std::exp(v - max);
    const double kth = value.back();
    for (size_t j = 0; j < 64; ++j) {
      const double v = static_cast<double>(x_[(n_ - 1) * j / 63]);
      if (v < kth) rest += std::exp(v - max);
    }
    const double guess = std::log(top + rest * static_cast<double>(n_ - value.size()) / 64.0);
    return guess >= kRawFastShift;
  }

  // logsumexp's pass: lse = hi + lo within err; false where the sum is out of its range.
  bool fast_lse(double& hi, double& lo, double& err) {
    const ExpSum f = detail::reduce_chunks(
        ctx(), n_, [&](size_t b, size_t len) { return sm_.expsum_fast(x_ + b, len); }, detail::combine_sums);
    if (f.special || !detail::fast_ok(f.m, f.e)) return false;
    detail::lse_parts(0.0, f.e, f.m, hi, lo);
    err = detail::lse_abs_err(hi, detail::sum_rel_err(f, kInfD));  // the bound at any lse - max
    return true;
  }

  uint64_t first_index_of(double v) const {
    for (size_t i = 0; i < n_; ++i)
      if (static_cast<double>(x_[i]) == v) return i;
    return 0;
  }

  // The mass of the x >= floor (the whole row's finite mass for -inf).
  FixedMass mass_at_least(double ref, double inv_temp, double floor) {
    std::vector<double> none;
    if (floor == -kInfD) return mass_pass(ref, inv_temp, nullptr, 0, kInfD, kInfD, 0, none).total;
    const double pivot = below<T>(floor);  // x > pivot is x >= floor for x of type T
    return mass_pass(ref, inv_temp, &pivot, 1, kInfD, kInfD, 0, none).above[0];
  }

  // One exact mass pass (SampleKernels::mass_pass) over every chunk, summed;
  // value: the x in (clo, chi], complete when the returned count <= cap.
  MassPass mass_pass(double ref, double inv_temp, const double* pivot, size_t pivots, double clo, double chi,
                     size_t cap, std::vector<double>& value) {
    return chunk_passes<MassPass>(sk_.mass_pass, ref, inv_temp, pivot, pivots, clo, chi, cap, value);
  }

  // The same pass estimated (SampleKernels::mass_estimate, or with fine set
  // its float64-lane version), with error bounds.
  MassEstimate mass_estimate(bool fine, double ref, double inv_temp, const double* pivot, size_t pivots, double clo,
                             double chi, size_t cap, std::vector<double>& value) {
    return chunk_passes<MassEstimate>(fine ? sk_.mass_estimate_fine : sk_.mass_estimate, ref, inv_temp, pivot, pivots,
                                      clo, chi, cap, value);
  }

  static void add_part(MassPass& sum, const MassPass& part, size_t pivots) {
    fixed_add(sum.total, part.total);
    for (size_t j = 0; j < pivots; ++j) fixed_add(sum.above[j], part.above[j]);
  }

  // Float64 sums of positive chunk sums: each add's rounding (at most 2^-53
  // of its result, itself at most the final sum) joins the rounding bound.
  static void add_part(MassEstimate& sum, const MassEstimate& part, size_t pivots) {
    auto add = [](double& s, double& round, double v, double v_round) {
      s += v;
      round += v_round + s * 0x1p-52;
    };
    add(sum.total, sum.total_round, part.total, part.total_round);
    for (size_t j = 0; j < pivots; ++j) add(sum.above[j], sum.above_round[j], part.above[j], part.above_round[j]);
    sum.rel = std::max(sum.rel, part.rel);
    sum.abs += part.abs;
  }

  template <class Res, class Pass>
  Res chunk_passes(Pass pass, double ref, double inv_temp, const double* pivot, size_t pivots, double clo, double chi,
                   size_t cap, std::vector<double>& value) {
    std::vector<Res> part(ch_.count);
    // chunk c's values at offset[c]: at most min(cap, its length) of them
    std::vector<size_t> offset(ch_.count + 1, 0);
    for (size_t c = 0; c < ch_.count; ++c) offset[c + 1] = offset[c] + std::min(cap, ch_.len(c));
    std::unique_ptr<double[]> buf(offset.back() ? new double[offset.back()] : nullptr);
    for_chunks(ch_, parallel_, [&](size_t c) {
      pass(x_ + ch_.lo(c), ch_.len(c), ref, inv_temp, pivot, pivots, clo, chi, buf.get() + offset[c],
           offset[c + 1] - offset[c], &part[c]);
    });
    Res sum;
    value.clear();
    for (size_t c = 0; c < ch_.count; ++c) {
      add_part(sum, part[c], pivots);
      sum.count += part[c].count;
      const size_t got = std::min<uint64_t>(part[c].count, offset[c + 1] - offset[c]);
      if (value.size() + got <= cap) value.insert(value.end(), buf.get() + offset[c], buf.get() + offset[c] + got);
    }
    return sum;
  }

  // top-p's threshold over the whole row: the smallest logit L whose
  // strictly larger tokens hold less than top_p of the mass; kept = the mass
  // of x >= L (see the file comment for the passes).
  // need_kept: kept is wanted (else it may be left unset). below: a value
  // the threshold is known to lie above (the draw-first test's dropped
  // winner; -inf: none), which raises the zone's lower end.
  double top_p_threshold(double max, double inv_temp, double top_p, FixedMass& kept, bool need_kept,
                         double below = -kInfD) {
    if (n_ <= kCollectAll) {
      // A short row: its finite values collected (a read) and each one's
      // exact mass computed once, for the total and for walk. The total is
      // the mass pass's to the bit: the same mass per value, and integer
      // sums do not depend on the order of the adds (-inf weighs 0 there).
      std::vector<double>& value = row_scratch().zone;
      value.resize(n_);
      value.resize(sk_.collect(x_, n_, -kInfD, max, value.data(), n_));
      std::vector<FixedMass>& w = row_scratch().zone_mass;
      w.resize(value.size());
      sk_.value_mass(value.data(), value.size(), max, inv_temp, w.data());
      FixedMass total;
      for (const FixedMass& m : w) fixed_add(total, m);
      double threshold = max;
      Judge judge{top_p * fixed_value(total)};
      walk(value, max, inv_temp, FixedMass{}, judge, threshold, kept, w.data());
      return threshold;
    }
    std::vector<double> value;
    // The zone (lo, hi] that most likely holds the threshold, from a sample:
    // one pass gives the total, the mass above hi and the zone's values; a
    // zone that turns out not to hold it is narrowed by bisection. The pass
    // is first the estimate with error bounds: its threshold is the exact
    // one whenever the bounds decide every comparison on the way.
    std::vector<double> sample = take_sample(max);
    double hi = max, lo = -kInfD, hi2 = max, lo2 = -kInfD;
    estimate_zone(sample, max, inv_temp, top_p, lo, hi, lo2, hi2);
    if (below > lo && below < hi) {  // fewer values to collect: the threshold is in (below, hi] if in the zone
      lo = below;
      if (!(lo2 < lo)) lo2 = -kInfD;
    }
    if (!need_kept && g_estimates.load(std::memory_order_relaxed)) {
      // The float32-lane estimate first (float32 rows); where its bound
      // cannot decide, the float64-lane one, about 30x tighter.
      double threshold = hi;
      bool undecided = false;
      if (estimated_threshold(false, lo, hi, lo2, hi2, max, inv_temp, top_p, threshold, undecided)) return threshold;
      if (undecided && sk_.mass_estimate_fine != sk_.mass_estimate &&
          estimated_threshold(true, lo, hi, lo2, hi2, max, inv_temp, top_p, threshold, undecided))
        return threshold;
    }
    const MassPass r = mass_pass(max, inv_temp, &hi, 1, lo, hi, kCollectMax, value);
    const double target = top_p * fixed_value(r.total);
    FixedMass above = r.above[0];
    Judge judge{target};
    if (!judge.below(above)) {  // higher: (hi, max]
      lo = hi;
      hi = max;
      above = FixedMass{};
    } else if (r.count <= kCollectMax) {
      double threshold = hi;
      if (walk(value, max, inv_temp, above, judge, threshold, kept) || lo == -kInfD) return threshold;
      above = kept;  // lower: (-inf, lo], below the zone's mass
      hi = lo;
      lo = -kInfD;
    }
    return narrow(sample, lo, hi, above, max, inv_temp, target, kept);
  }

  // top-p's threshold in the zone (lo, hi] from the estimate pass: false
  // (threshold unset) unless the zone holds it, its values fit the collect
  // buffer and the error bounds decide every comparison of walk, which then
  // takes exactly the exact pass's steps. A zone the bounds show to be
  // missed (the sample's prediction is off by more than its margin) is
  // followed by the next zone out, (lo2, lo] or (hi, hi2], whose values a
  // pass without masses collects: the mass above it is the estimate's plus
  // or minus exact masses, so the same bound decides there too.
  // undecided_out: the bound (not the zone) was what fell short.
  bool estimated_threshold(bool fine, double lo, double hi, double lo2, double hi2, double max, double inv_temp,
                           double top_p, double& threshold, bool& undecided_out) {
    std::vector<double> value;
    undecided_out = false;
    const MassEstimate r = mass_estimate(fine, max, inv_temp, &hi, 1, lo, hi, kCollectMax, value);
    if (r.count > kCollectMax) return false;
    Judge judge{top_p * r.total, estimate_error(r, top_p)};
    const FixedMass above = fixed_from(r.above[0]);
    bool decided = false, undecided = false;
    FixedMass kept;
    if (judge.below(above)) {
      threshold = hi;
      bool inside = walk(value, max, inv_temp, above, judge, threshold, kept);
      if (!inside && lo > -kInfD && !judge.undecided && collect(lo2, lo, value)) {
        // below the zone: the tokens above lo weigh kept
        const FixedMass above_lo = kept;
        inside = walk(value, max, inv_temp, above_lo, judge, threshold, kept) || lo2 == -kInfD;
      }
      decided = !judge.undecided && (inside || lo == -kInfD);
      undecided = judge.undecided;
    } else if (!judge.undecided && hi < max && hi < hi2 && collect(hi, hi2, value)) {
      // above the zone: the tokens above hi2 weigh the estimated above minus
      // the values collected in (hi, hi2]; the comparisons of walk, shifted
      // by that, against a target moved by the same amount (its rounding
      // added to the bound)
      std::vector<FixedMass> w(value.size());
      sk_.value_mass(value.data(), value.size(), max, inv_temp, w.data());
      FixedMass zone;
      for (const FixedMass& m : w) fixed_add(zone, m);
      const double z = fixed_value(zone);
      Judge shifted{judge.target - r.above[0] + z, judge.err + (judge.target + r.above[0] + z) * 0x1p-50};
      if (shifted.below(FixedMass{})) {
        threshold = hi2;
        decided = walk(value, max, inv_temp, FixedMass{}, shifted, threshold, kept) && !shifted.undecided;
      }
      undecided = shifted.undecided;
    }
    undecided = undecided || judge.undecided;
    undecided_out = undecided;
    if (undecided) g_undecided.fetch_add(1, std::memory_order_relaxed);
    if (decided) g_decided.fetch_add(1, std::memory_order_relaxed);
    return decided;
  }

  // The x in (clo, chi] into value: false when more than kCollectMax.
  bool collect(double clo, double chi, std::vector<double>& value) {
    auto pass = [this](const T* x, size_t n, double, double, const double*, size_t, double lo, double hi, double* out,
                       size_t cap, MassPass* res) { res->count += sk_.collect(x, n, lo, hi, out, cap); };
    return chunk_passes<MassPass>(pass, 0, 0, nullptr, 0, clo, chi, kCollectMax, value).count <= kCollectMax;
  }

  // A bound on the error of Judge's comparisons in estimated_threshold, each
  // of u - target with u = above + z (z exact) and target = top_p total:
  // against the exact sums, u - target is off by (1 - top_p) times the
  // above elements' estimate errors minus top_p times the others' (the
  // above elements are in total too: their errors partly cancel), plus the
  // additions' roundings: at most rel ((1 - top_p) A + top_p R) + abs +
  // above_round + top_p total_round, A and R the real sums of the above and
  // the other elements' estimates (bounded through the roundings). Near
  // top_p = 1 or 0 this is far below the errors of above and total added.
  static double estimate_error(const MassEstimate& r, double top_p) {
    const double a = r.above[0] + r.above_round[0];
    const double rest = std::max(0.0, (r.total + r.total_round) - (r.above[0] - r.above_round[0]));
    const double err = r.rel * ((1 - top_p) * a + top_p * rest) + r.abs + r.above_round[0] + top_p * r.total_round;
    return err * (1 + 0x1p-40);
  }

  // Whether top-p keeps the tokens of value v (the drawn winner's): the
  // tokens above v weigh < top_p of the row's mass. Decided first by the
  // coarse pass (float32 rows) with v as its pivot and, when the row's max
  // is not known (max = -inf on entry), as its reference too. The coarse
  // masses need every x within 126 binary orders above the reference,
  // which the winner of the unfiltered draw guarantees: its score
  // fl(fl(x_w a) + fl(g_w 2^-s)) (a = fl(inv_temp 2^-s), gumbel_generic.h)
  // is the largest, g lies in [-3.13, 31.19] and |x_w a| <= 2^12 2^-s (the
  // pass's own range check), so an x with x a >= x_w a + 34.4 2^-s would
  // score at least fl(x_w a + 31.25 2^-s), more than x_w's at most fl(x_w a
  // + 31.21 2^-s) (both roundings of the scores below 2^-12 2^-s): every x
  // lies below x_w + 34.4 (1 + 2^-23) T, 49.7 binary orders. So the pass
  // keeps no running max (need_max: min-p, which needs it, asks for it).
  // The sums are scaled by a power of two into [1, 2) (fixed_from's range);
  // the exact masses' rounding, 2^-65 of the max's mass each, is bounded
  // through the total, which holds the max's mass. Where the coarse bound
  // cannot tell, the estimate pass with v as its pivot (Judge's first
  // comparison in estimated_threshold, the same bound), float32 then
  // float64 lanes. 1 kept, 0 not, -1 still open; max is the row's max on
  // return but for 1 without need_max (then left as on entry).
  int top_p_keeps(double v, double inv_temp, double top_p, bool need_max, double& max) {
    const bool known = max > -kInfD, find_max = !known && need_max;
    CoarseMass c;
    if (sk_.mass_coarse && coarse(known ? max : v, inv_temp, v, find_max, c) && c.above + c.rest > 0) {
      if (find_max) max = c.max;
      const double k = std::ldexp(1.0, -std::ilogb(c.above + c.rest));  // exact
      MassEstimate r;
      r.above[0] = c.above * k;
      r.total = (c.above + c.rest) * k;
      r.above_round[0] = c.round * k + r.above[0] * 0x1p-50;
      r.total_round = c.round * k + r.total * 0x1p-50;
      r.rel = kCoarseRel + 0x1p-40;
      const double count = static_cast<double>(c.count);
      const double top = (1 + kCoarseRel) * r.total + r.total_round + count * 0x1p-124 * k;  // >= the max's mass
      r.abs = count * 0x1p-65 * top * (1 + 0x1p-40);  // kEstimateAbs per element, at the max's scale
      Judge judge{top_p * r.total, estimate_error(r, top_p)};
      const bool below = judge.below(fixed_from(r.above[0]));
      if (!judge.undecided && below) return 1;
      if (!(max > -kInfD)) this->max(max);
      if (!judge.undecided) return 0;
    }
    if (!(max > -kInfD)) this->max(max);
    std::vector<double> none;
    for (const bool fine : {false, true}) {
      if (fine && sk_.mass_estimate_fine == sk_.mass_estimate) break;
      const MassEstimate r = mass_estimate(fine, max, inv_temp, &v, 1, kInfD, kInfD, 0, none);
      Judge judge{top_p * r.total, estimate_error(r, top_p)};
      const bool below = judge.below(fixed_from(r.above[0]));
      if (!judge.undecided) return below ? 1 : 0;
    }
    return -1;
  }

  // SampleKernels::mass_coarse over every chunk, summed: false where the
  // kernel cannot take ref and inv_temp.
  bool coarse(double ref, double inv_temp, double pivot, bool find_max, CoarseMass& sum) {
    std::vector<CoarseMass> part(ch_.count);
    std::vector<char> ok(ch_.count, 0);
    // the next row's first values to prefetch, shared among the chunks in
    // proportion to their lengths
    const size_t ahead = next_ ? std::min(next_n_, sk_.coarse_next_bytes / sizeof(T)) : 0;
    for_chunks(ch_, parallel_, [&](size_t c) {
      const size_t lo = ahead * ch_.lo(c) / n_, hi = ahead * (ch_.lo(c) + ch_.len(c)) / n_;
      ok[c] = sk_.mass_coarse(x_ + ch_.lo(c), ch_.len(c), ref, inv_temp, pivot, find_max, &part[c],
                              next_ ? next_ + lo : nullptr, hi - lo)
                  ? 1
                  : 0;
    });
    for (size_t c = 0; c < ch_.count; ++c) {
      if (!ok[c]) return false;
      sum.above += part[c].above;
      sum.rest += part[c].rest;
      sum.round += part[c].round + (sum.above + sum.rest) * 0x1p-52;
      sum.max = std::max(sum.max, part[c].max);
      sum.count += part[c].count;
    }
    return true;
  }

  // About kSample values of the row in evenly spread runs, the finite ones below max.
  std::vector<double> take_sample(double max) const {
    std::vector<double> s;
    s.reserve(kSample);
    const size_t runs = kSample / kSampleRun;
    for (size_t b = 0; b < runs; ++b) {
      const size_t start = (n_ - kSampleRun) * b / (runs - 1);
      for (size_t i = start; i < start + kSampleRun; ++i) {
        const double v = static_cast<double>(x_[i]);
        if (v < max && v > -kInfD) s.push_back(v);
      }
    }
    return s;
  }

  // The zone (lo, hi] around the threshold the sample predicts, kMargin
  // sample values either side. Only a guess: the exact pass checks it.
  void estimate_zone(std::vector<double>& s, double max, double inv_temp, double top_p, double& lo, double& hi,
                     double& lo2, double& hi2) const {
    const double f = static_cast<double>(n_) / static_cast<double>(kSample);  // row elements per sample value
    std::vector<double> w(s.size());
    std::vector<FixedMass> mass(s.size());
    sk_.value_mass(s.data(), s.size(), max, inv_temp, mass.data());
    double total = 1.0;  // the max (its ties unknown: counted once)
    for (size_t i = 0; i < s.size(); ++i) total += (w[i] = f * fixed_value(mass[i]));
    const double target = top_p * total;
    // The sample ordered by value buckets (a counting sort: equal-width
    // buckets from the largest value down, unordered within a bucket; a
    // bucket is sorted only where an order statistic is read from it), then
    // rank = how many sample values are above the predicted threshold.
    const size_t m = s.size(), buckets = m / 8 + 1;
    double vmax = -kInfD, vmin = kInfD;
    for (double v : s) {
      vmax = std::max(vmax, v);
      vmin = std::min(vmin, v);
    }
    const double scale = vmax > vmin && vmax - vmin < kInfD ? static_cast<double>(buckets) / (vmax - vmin) : 0.0;
    auto bucket_of = [&](double v) { return std::min(buckets - 1, static_cast<size_t>((vmax - v) * scale)); };
    std::vector<size_t> start(buckets + 1, 0);
    std::vector<double> bucket_w(buckets, 0.0);
    for (size_t i = 0; i < m; ++i) {
      ++start[bucket_of(s[i]) + 1];
      bucket_w[bucket_of(s[i])] += w[i];
    }
    for (size_t b = 0; b < buckets; ++b) start[b + 1] += start[b];
    std::vector<std::pair<double, double>> item(m);  // (value, weight) by bucket
    {
      std::vector<size_t> at(start.begin(), start.end() - 1);
      for (size_t i = 0; i < m; ++i) item[at[bucket_of(s[i])]++] = {s[i], w[i]};
    }
    std::vector<bool> sorted(buckets, false);
    auto sort_bucket = [&](size_t b) {
      if (!sorted[b])
        std::sort(item.begin() + static_cast<std::ptrdiff_t>(start[b]),
                  item.begin() + static_cast<std::ptrdiff_t>(start[b + 1]), std::greater<std::pair<double, double>>());
      sorted[b] = true;
    };
    size_t rank = 0;
    double cum = 1.0;
    for (size_t b = 0; b < buckets; ++b) {
      if (cum + bucket_w[b] < target) {
        cum += bucket_w[b];
        rank = start[b + 1];
        continue;
      }
      sort_bucket(b);
      for (size_t i = start[b]; i < start[b + 1] && cum + item[i].second < target; ++i) {
        cum += item[i].second;
        rank = i + 1;
      }
      break;
    }
    auto nth = [&](size_t k) {  // the k-th largest sample value
      sort_bucket(static_cast<size_t>(std::upper_bound(start.begin(), start.end(), k) - start.begin()) - 1);
      return item[k].first;
    };
    hi = rank < kMargin ? max : nth(rank - kMargin);
    lo = rank + kMargin >= m ? -kInfD : nth(rank + kMargin);
    if (!(lo < hi)) lo = -kInfD;
    // the next zones out, 2 kMargin sample values wide, for a miss
    hi2 = rank < 3 * kMargin ? max : nth(rank - 3 * kMargin);
    lo2 = rank + 3 * kMargin >= m ? -kInfD : nth(rank + 3 * kMargin);
    if (!(lo2 < lo)) lo2 = -kInfD;
  }

  // The threshold in a zone (lo, hi] known to hold it (the tokens above hi
  // weigh `above`), by bisection with exact passes until the zone's values fit
  // the collect buffer.
  double narrow(const std::vector<double>& sample, double lo, double hi, FixedMass above, double max, double inv_temp,
                double target, FixedMass& kept) {
    using O = Ordered<T>;
    std::vector<double> value;
    for (;;) {
      const typename O::U klo = O::key(static_cast<T>(lo)), khi = O::key(static_cast<T>(hi));
      if (khi - klo <= 1) {  // one value left: the threshold is hi, every token equal to it kept
        const MassPass r = mass_pass(max, inv_temp, nullptr, 0, lo, hi, 0, value);
        FixedMass one;
        sk_.value_mass(&hi, 1, max, inv_temp, &one);
        kept = above;
        fixed_add(kept, fixed_of(one, r.count));
        return hi;
      }
      // the pivot: the sample's median in the zone, or the middle of its values
      std::vector<double> in;
      for (double v : sample)
        if (v > lo && v < hi) in.push_back(v);
      double mid = O::value(klo + (khi - klo) / 2);
      if (in.size() >= 16) {
        std::nth_element(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(in.size() / 2), in.end());
        mid = in[in.size() / 2];
      }
      const MassPass r = mass_pass(max, inv_temp, &mid, 1, lo, hi, kCollectMax, value);
      if (r.count <= kCollectMax) {
        double threshold = hi;
        Judge judge{target};
        walk(value, max, inv_temp, above, judge, threshold, kept);
        return threshold;
      }
      if (fixed_value(r.above[0]) < target) {
        hi = mid;
        above = r.above[0];
      } else {
        lo = mid;
      }
    }
  }

  // top-p's exact finish over the values of a zone (unordered), the tokens
  // above it weighing `above`: the smallest value v with above + mass(x > v)
  // < target, by quickselect on the values with their exact masses. Returns
  // false when even the zone's smallest value has above + mass(x > v) +
  // mass(v) < target (then the threshold lies below the zone; threshold is
  // that value and kept the mass of the whole zone and above).
  bool walk(const std::vector<double>& value, double max, double inv_temp, FixedMass above, Judge& judge,
            double& threshold, FixedMass& kept, const FixedMass* mass = nullptr) {
    // Value buckets first: equal-width ones from the largest value down (a
    // larger value never lands in a lower bucket, equal values share one),
    // with the exact sums of their masses; the threshold lies in the first
    // bucket whose sum takes the mass above it to the target, and only that
    // bucket's values go through the exact walk. mass: the values' masses
    // when the caller has them (else computed here).
    constexpr size_t kPerBucket = 16;
    if (value.size() <= 4 * kPerBucket)
      return walk_exact(value, max, inv_temp, above, judge, threshold, kept, mass);
    const auto [vmin, vmax] = value_range(value.data(), value.size());
    // one value, or a range beyond float64 (float64 rows): the exact walk alone
    if (!(vmax > vmin && vmax - vmin < kInfD))
      return walk_exact(value, max, inv_temp, above, judge, threshold, kept, mass);
    const size_t buckets = value.size() / kPerBucket;
    const double scale = static_cast<double>(buckets) / (vmax - vmin);
    auto bucket_of = [buckets, scale, vmax](double v) {
      const double b = (vmax - v) * scale;
      return b < static_cast<double>(buckets - 1) ? static_cast<size_t>(b) : buckets - 1;
    };
    std::vector<FixedMass> own, sum(buckets);
    if (!mass) {
      own.resize(value.size());
      sk_.value_mass(value.data(), value.size(), max, inv_temp, own.data());
      mass = own.data();
    }
    std::vector<uint32_t> bucket(value.size());  // each value's bucket, found once
    for (size_t i = 0; i < value.size(); ++i) {
      bucket[i] = static_cast<uint32_t>(bucket_of(value[i]));
      fixed_add(sum[bucket[i]], mass[i]);
    }
    for (size_t b = 0; b < buckets; ++b) {
      FixedMass up = above;
      fixed_add(up, sum[b]);
      if (judge.below(up)) {
        above = up;
        continue;
      }
      std::vector<double> in;
      std::vector<FixedMass> in_mass;
      for (size_t i = 0; i < value.size(); ++i) {
        if (bucket[i] != b) continue;
        in.push_back(value[i]);
        in_mass.push_back(mass[i]);
      }
      return walk_exact(in, max, inv_temp, above, judge, threshold, kept, in_mass.data());
    }
    threshold = vmin;  // below the zone: every value kept
    kept = above;
    return false;
  }

  // walk's exact finish: quickselect on the values with their masses.
  bool walk_exact(const std::vector<double>& value, double max, double inv_temp, FixedMass above, Judge& judge,
                  double& threshold, FixedMass& kept, const FixedMass* mass = nullptr) {
    struct Item {
      double v;
      FixedMass w;
    };
    std::vector<FixedMass> own;
    if (!mass) {
      own.resize(value.size());
      sk_.value_mass(value.data(), value.size(), max, inv_temp, own.data());
      mass = own.data();
    }
    std::vector<Item> item(value.size());
    for (size_t i = 0; i < item.size(); ++i) item[i] = {value[i], mass[i]};
    size_t first = 0, last = item.size();  // the candidates item[first, last)
    kept = above;
    while (first < last) {
      const double p = item[first + (last - first) / 2].v;
      // three-way partition (> p, == p, < p) summing the masses above and at p
      size_t gt = first, i = first, lt = last;
      FixedMass g, e;
      while (i < lt) {
        const double v = item[i].v;
        if (v > p) {
          fixed_add(g, item[i].w);
          std::swap(item[i++], item[gt++]);
        } else if (v < p) {
          std::swap(item[i], item[--lt]);
        } else {
          fixed_add(e, item[i++].w);
        }
      }
      FixedMass up = above;
      fixed_add(up, g);
      if (judge.below(up)) {  // the threshold is p or below
        fixed_add(up, e);
        threshold = p;
        kept = up;
        if (!judge.below(up)) return true;
        above = up;
        first = lt;  // below p
      } else {
        last = gt;  // above p
      }
    }
    return false;
  }

  // The Gumbel-max draw over x >= floor (gumbel_argmax's pass when floor is -inf).
  Fault draw(uint64_t row, const GumbelKey& key, double inv_temp, double floor, uint64_t& token) {
    const T tfloor = floor == -kInfD ? -std::numeric_limits<T>::infinity() : static_cast<T>(floor);
    if (ch_.count == 1) {
      Candidate best;
      const TopkResult r = sk_.draw(x_, n_, 0, row, key, inv_temp, tfloor, &best);
      if (r.nan) return kNaN;
      if (r.posinf) return kPosInf;
      if (r.count == 0) return kNoFinite;
      token = best.index;
      return kFine;
    }
    std::vector<Candidate> best(ch_.count);
    std::vector<TopkResult> res(ch_.count);
    for_chunks(ch_, parallel_, [&](size_t c) {
      res[c] = sk_.draw(x_ + ch_.lo(c), ch_.len(c), ch_.lo(c), row, key, inv_temp, tfloor, &best[c]);
    });
    bool any = false, posinf = false;
    Candidate pick{-kInfD, 0};
    for (size_t c = 0; c < ch_.count; ++c) {
      if (res[c].nan) return kNaN;
      posinf = posinf || res[c].posinf;
      if (res[c].count == 0) continue;
      if (!any || best[c].score > pick.score || (best[c].score == pick.score && best[c].index < pick.index))
        pick = best[c];
      any = true;
    }
    if (posinf) return kPosInf;
    if (!any) return kNoFinite;
    token = pick.index;
    return kFine;
  }

  // The k best scores of the unmasked draw over the row, best first (score
  // descending, the lower index first): the chunks' k best merged.
  void draw_best(uint64_t row, const GumbelKey& key, double inv_temp, size_t k, std::vector<Candidate>& best) {
    best.resize(ch_.count * k);
    std::vector<TopkResult> res(ch_.count);
    for_chunks(ch_, parallel_, [&](size_t c) {
      res[c] = sk_.draw_best(x_ + ch_.lo(c), ch_.len(c), ch_.lo(c), row, key, inv_temp, k, best.data() + c * k);
    });
    size_t count = 0;
    for (size_t c = 0; c < ch_.count; ++c)
      for (size_t j = 0; j < res[c].count; ++j) best[count++] = best[c * k + j];
    best.resize(count);
    if (ch_.count > 1)
      std::sort(best.begin(), best.end(), [](const Candidate& a, const Candidate& b) {
        return a.score > b.score || (a.score == b.score && a.index < b.index);
      });
    if (best.size() > k) best.resize(k);
  }

  Candidate draw_at(const uint64_t* index, size_t count, uint64_t row, const GumbelKey& key, double inv_temp) {
    return sk_.draw_at(x_, index, count, row, key, inv_temp);
  }

 private:
  const T* x_;
  size_t n_;
  const T* next_ = nullptr;
  size_t next_n_ = 0;
  Chunking ch_;
  bool parallel_;
  const SampleKernels<T>& sk_;
  const Kernels<T>& sm_;
};

// One row of sample(): the token (and logprob_out for logprobs). With
// floor_out set (temperature > 0 and no logprobs only), the row's filters
// alone: *floor_out = the smallest kept logit (-inf: no filter, or a row
// the draw will find at fault), for the caller's draw over the masked row.
template <class T>
Fault sample_row(const T* x, size_t n, size_t r, const SampleRequest& req, bool parallel, const SampleKernels<T>& sk,
                 const Kernels<T>& sm, int64_t& token_out, double& logprob_out, double* floor_out = nullptr,
                 const T* next = nullptr) {
  RowSampler<T> rs(x, n, parallel, sk, sm);
  rs.next_row(next, next ? n : 0);
  const GumbelKey& key = req.per_row_keys ? req.keys[r] : req.keys[0];
  const uint64_t noise_row = req.per_row_keys ? 0 : r;
  const double temperature = req.temperature[r];
  const bool greedy = temperature == 0;
  const double inv_temp = greedy ? kInfD : 1.0 / temperature;
  // The masses' 1/T: finite, so that (x - max) / T is 0, not NaN, at the max
  // (1/T overflows only for a subnormal T).
  const double inv_mass = std::min(inv_temp, std::numeric_limits<double>::max());
  const size_t k = req.top_k[r] > 0 ? static_cast<size_t>(req.top_k[r]) : 0;
  const bool use_k = k > 0 && k < n;
  const bool use_p = req.top_p[r] < 1.0, use_m = req.min_p[r] > 0.0;
  const int mode = req.logprobs;

  // top-p without top-k: the draw first. The winner w over the whole row is
  // the winner over any kept set that holds it, so when the filters keep w
  // (the tokens above it weigh < top_p, min-p's threshold on z below it:
  // about top_p of the calls) w is the token, with no threshold search.
  // Otherwise, or when the bounds cannot tell, the threshold and the masked
  // draw below, as without this step. Without logprobs the row's max comes
  // from the test's coarse pass (no max pass before the draw). Not with
  // floor_out: that caller draws the block of rows itself.
  const bool first = !use_k && !greedy && use_p && mode != 2 && !floor_out &&
                     g_draw_first.load(std::memory_order_relaxed);
  double max = -kInfD, shift = 0;  // shift: lse - max (logprobs="raw")
  bool raw_fast = false;           // top-k's raw logprobs from lse = lse_hi + lse_lo (within lse_err)
  double lse_hi = 0, lse_lo = 0, lse_err = 0;
  double p_below = -kInfD;         // a value top-p's threshold is known to lie above
  RowScratch& scratch = row_scratch();
  std::vector<double>& value = scratch.value;
  std::vector<uint64_t>& index = scratch.index;
  uint64_t extra_ties = 0;
  Fault f = kFine;
  if (use_k) {
    f = rs.select(k, value, index, extra_ties, false);
    if (f == kFine && !value.empty()) max = value[0];
    if (f == kFine && mode == 1 && max > -kInfD) {
      raw_fast = rs.raw_fast_likely(max, value) && rs.fast_lse(lse_hi, lse_lo, lse_err);
      if (!raw_fast) f = rs.max_lse(max, shift);
    }
  } else if (mode == 1) {
    f = rs.max_lse(max, shift);
  } else if (greedy || use_p || use_m || mode == 2) {
    if (!first) f = rs.max(max);  // else from the draw-first test
  } else if (floor_out) {  // the caller's draw finds the faults
    *floor_out = -kInfD;
    return kFine;
  } else {  // the plain draw: gumbel_argmax's own pass and checks
    uint64_t token = 0;
    f = rs.draw(noise_row, key, inv_temp, -kInfD, token);
    token_out = static_cast<int64_t>(token);
    return f;
  }
  if (f != kFine) return f;
  if (first && (mode == 0 || (max > -kInfD && max < kInfD))) {
    uint64_t w = 0;
    f = rs.draw(noise_row, key, inv_temp, -kInfD, w);
    if (f != kFine) return f;
    const double xw = static_cast<double>(x[w]);
    int keeps = rs.top_p_keeps(xw, inv_mass, req.top_p[r], use_m, max);
    const bool p_keeps_w = keeps == 1;
    if (keeps == 0) p_below = xw;  // the tokens above xw weigh >= top_p: the threshold lies above it
    if (keeps == 1 && use_m && xw < min_p_threshold<T>(max, inv_temp, req.min_p[r])) keeps = 0;
    (keeps == 1 ? g_first_kept : keeps == 0 ? g_first_dropped : g_first_undecided)
        .fetch_add(1, std::memory_order_relaxed);
    if (keeps == 0) {
      // The winner is filtered out: the token is the best score among the
      // kept tokens, so the draw's next best scores are tried in order, each
      // against the filters as the winner was (kept with probability about
      // top_p). The filters keep every x at or above a threshold, so a
      // candidate at or below a dropped value is dropped too. Up to
      // kNextBest - 1 of them; all dropped, or one the bounds leave open:
      // the threshold search below, above the highest value top-p dropped.
      // (A winner that only min-p drops: top-p keeps every candidate above it.)
      std::vector<Candidate>& cand = scratch.cand;
      rs.draw_best(noise_row, key, inv_temp, kNextBest, cand);
      double dropped = xw, m_floor = -kInfD;
      if (use_m) m_floor = min_p_threshold<T>(max, inv_temp, req.min_p[r]);  // max: known after a drop
      for (size_t j = 1; j < cand.size(); ++j) {
        const double xc = static_cast<double>(x[cand[j].index]);
        if (xc <= dropped) continue;
        int kc = p_keeps_w ? 1 : rs.top_p_keeps(xc, inv_mass, req.top_p[r], use_m, max);
        if (kc == 0) p_below = xc;
        if (kc == 1 && xc < m_floor) kc = 0;
        g_next_best[kc == 1 ? 0 : kc == 0 ? 1 : 2].fetch_add(1, std::memory_order_relaxed);
        if (kc == 1) {
          token_out = static_cast<int64_t>(cand[j].index);
          if (mode == 1) logprob_out = (xc - max) - shift;
          return kFine;
        }
        if (kc != 0) break;
        dropped = xc;
      }
    }
    if (keeps == 1) {
      token_out = static_cast<int64_t>(w);
      if (mode == 1) logprob_out = (xw - max) - shift;
      return kFine;
    }
  }
  if (max == kInfD) return kPosInf;
  if (!(max > -kInfD)) return kNoFinite;

  uint64_t token = 0;
  FixedMass kept;
  bool kept_known = false;
  if (greedy) {
    token = use_k ? index[0] : rs.first_index_of(max);
  } else if (use_k) {
    const double kth = value[k - 1];
    std::vector<Group>& groups = scratch.groups;
    groups_of(value.data(), value.size(), groups);
    groups.back().count += extra_ties;
    double floor = kth;
    FixedMass total;
    std::vector<FixedMass>& w = scratch.w;
    w.assign(groups.size(), FixedMass{});
    std::vector<double>& group_value = scratch.group_value;
    group_value.resize(groups.size());
    for (size_t g = 0; g < groups.size(); ++g) group_value[g] = groups[g].value;
    sk.value_mass(group_value.data(), groups.size(), max, inv_mass, w.data());  // one token's mass ...
    for (size_t g = 0; g < groups.size(); ++g) {
      w[g] = fixed_of(w[g], groups[g].count);  // ... times the group's count
      fixed_add(total, w[g]);
    }
    if (use_p) {
      const double target = req.top_p[r] * fixed_value(total);
      FixedMass cum;
      for (size_t g = 0; g < groups.size() && fixed_value(cum) < target; ++g) {
        floor = groups[g].value;
        fixed_add(cum, w[g]);
      }
    }
    if (use_m) {
      double m_floor = groups[0].value;
      for (const Group& g : groups)
        if (mass_of(g.value, max, inv_temp) >= req.min_p[r]) m_floor = g.value;
      floor = std::max(floor, m_floor);
    }
    if (floor_out) {
      *floor_out = floor;
      return kFine;
    }
    for (size_t g = 0; g < groups.size(); ++g)
      if (groups[g].value >= floor) fixed_add(kept, w[g]);
    kept_known = true;
    size_t count = 0;
    while (count < value.size() && value[count] >= floor) ++count;
    // The candidates' own noise (draw_at: a Philox gate block per token) only
    // when they are few against the row; otherwise the masked pass, cheaper
    // per token, over the same tokens (x >= floor are candidates) and scores.
    const int how = g_top_k_draw.load(std::memory_order_relaxed);
    const bool at = how == 0 ? count * kDrawAtCost <= n + kDrawAtSlack : how == 1;
    if ((floor > kth || extra_ties == 0) && at) {
      token = rs.draw_at(index.data(), count, noise_row, key, inv_temp).index;
    } else {
      f = rs.draw(noise_row, key, inv_temp, floor, token);
    }
  } else {
    double floor = -kInfD;
    if (use_p) {
      floor = rs.top_p_threshold(max, inv_mass, req.top_p[r], kept, mode == 2, p_below);
      kept_known = true;
    }
    if (use_m) {
      const double m_floor = min_p_threshold<T>(max, inv_temp, req.min_p[r]);
      if (m_floor > floor) {
        floor = m_floor;
        kept_known = false;
      }
    }
    if (floor_out) {
      *floor_out = floor;
      return kFine;
    }
    f = rs.draw(noise_row, key, inv_temp, floor, token);
    if (f == kFine && mode == 2 && !kept_known) {
      kept = rs.mass_at_least(max, inv_mass, floor);
      kept_known = true;
    }
  }
  if (f != kFine) return f;
  token_out = static_cast<int64_t>(token);
  const double xt = static_cast<double>(x[token]);
  if (mode == 1 && raw_fast) {
    // y = (x - hi) - lo in float64, rounded once to the output: certified as
    // lse32_shift's float64 write is (1.4 2^-24 |y| of the 2-ulp budget),
    // the float64 roundings (2^-52 each) added to lse's error
    const double y = (xt - lse_hi) - lse_lo;
    const double d = lse_err + 0x1p-51 * (std::fabs(y) + std::fabs(lse_lo));
    if (d <= 1.4 * 0x1p-24 * (std::fabs(y) - d)) {
      logprob_out = y;
      return kFine;
    }
    f = rs.max_lse(max, shift);
    if (f != kFine) return f;
  }
  if (mode == 1) logprob_out = (xt - max) - shift;
  if (mode == 2) logprob_out = greedy ? 0.0 : (xt == max ? 0.0 : (xt - max) * inv_temp) - std::log(fixed_value(kept));
  return kFine;
}

// body(r) for every row: rows in parallel when the call is big enough.
template <class Body>
void for_rows(size_t rows, size_t n, const Body& body) {
  if (rows > 1 && rows * n >= settings().parallel_min)
    parallel_for(rows, body);
  else
    for (size_t r = 0; r < rows; ++r) body(r);
}

// topk of a short row (n <= kTopkShortMaxN, k <= kTopkShortMaxK): one scan
// keeping the k best so far in value / index, descending, the lower index
// first among equals (a value enters only above the current k-th and moves
// ahead only of strictly smaller ones), without the long-row selection's
// per-row setup (RowSampler's chunk plan and scratch vectors, the sampled
// floor, the heap: most of a short row's time, ~90 ns a row even at n = 8).
// After the first few k values most fail one compare with the current k-th;
// a NaN fails it too and is caught on the slow side. Values and indices as
// the long-row path gives them (the same order, the input's values).
// false: the row has a NaN.
constexpr size_t kTopkShortMaxN = 1024, kTopkShortMaxK = 16;

template <class T>
bool topk_short_row(const T* x, size_t n, size_t k, T* value, int64_t* index) {
  // x[i] into the sorted k best, its first `size` places taken
  auto insert = [&](size_t i, T v, size_t size) {
    size_t at = size;
    for (; at > 0 && value[at - 1] < v; --at) {
      value[at] = value[at - 1];
      index[at] = index[at - 1];
    }
    value[at] = v;
    index[at] = static_cast<int64_t>(i);
  };
  for (size_t i = 0; i < k; ++i) {  // the first k fill it
    if (x[i] != x[i]) return false;
    insert(i, x[i], i);
  }
  T low = value[k - 1];  // in a register: value may alias x for all the compiler knows
  for (size_t i = k; i < n; ++i) {
    const T v = x[i];
    if (v <= low) continue;
    if (v != v) return false;
    insert(i, v, k - 1);
    low = value[k - 1];
  }
  return true;
}

// Rows the kernel set's vector insert (SampleKernels::short_topk) takes: up
// to 16384 values, where it still beats the long-row selection (Zen 5,
// avx512, topk of 2^20 float32 N(0, 4) values, 1 thread, least thread CPU
// time, ns per element, vector insert / long-row selection: k = 8 at n =
// 2048 0.32 / 0.86, 4096 0.16 / 0.48, 8192 0.11 / 0.26; k = 16 at 4096
// 0.30 / 1.17, 16384 0.12 / 0.32; k = 8 at 32768 0.074 / 0.050), and from
// 16 values, below which its setup costs more than topk_short_row's scan
// (n = 8, k = 2: 6.1 / 5.7; n = 16, k = 4: 5.95 / 7.3).
constexpr size_t kShortTopkVectorMinN = 16, kShortTopkVectorMaxN = 16384;

template <class T>
bool vector_topk(const SampleKernels<T>& sk, size_t n, size_t k) {
  return sk.short_topk && k <= sk.short_topk_max_k && n >= kShortTopkVectorMinN && n <= kShortTopkVectorMaxN;
}

// Does topk_short take the row (1 <= k <= n)?
template <class T>
bool takes_short_topk(const SampleKernels<T>& sk, size_t n, size_t k) {
  return k >= 1 && k <= n && (vector_topk(sk, n, k) || (n <= kTopkShortMaxN && k <= kTopkShortMaxK));
}

// The k best of a row that takes_short_topk takes: by the kernel set's
// vector insert where it has one, else topk_short_row.
template <class T>
bool topk_short(const SampleKernels<T>& sk, const T* x, size_t n, size_t k, T* value, int64_t* index) {
  return vector_topk(sk, n, k) ? sk.short_topk(x, n, k, value, index) : topk_short_row(x, n, k, value, index);
}

// sample() of short rows with filters: each row's filters give its floor
// (sample_row), the rows of a block are copied with the logits below their
// floor set to -inf, and the short-row kernel draws the block at once:
// gumbel_argmax of the masked rows, which is the filtered draw by
// definition (the same bits as the row-by-row draw). One temperature > 0 and
// one key for every row, no logprobs, rows the kernel takes; else false and
// nothing done.
template <class T>
bool sample_short_rows(const T* x, size_t rows, size_t n, const SampleRequest& req, const SampleKernels<T>& sk,
                       const Kernels<T>& sm, int64_t* token, std::vector<Fault>& fault) {
  const GumbelKernels<T>& kern = gumbel_for<T>(active_gumbel());
  if (rows == 0 || req.per_row_keys || req.logprobs != 0 || !gumbel_takes_short_rows(kern, n)) return false;
  const double temperature = req.temperature[0];
  if (!(temperature > 0)) return false;
  for (size_t r = 1; r < rows; ++r)
    if (req.temperature[r] != temperature) return false;
  const double inv_temp = 1.0 / temperature;
  // blocks of at most 16K logits (the masked copy stays in L1/L2), 64-1024 rows
  const size_t block = std::min<size_t>(1024, std::max<size_t>(64, 16384 / n));
  const size_t blocks = (rows + block - 1) / block;
  for_rows(blocks, block * n, [&](size_t b) {
    const size_t r0 = b * block, m = std::min(block, rows - r0);
    thread_local std::vector<T> masked;
    thread_local std::vector<Candidate> cand;
    thread_local std::vector<TopkResult> res;
    masked.resize(m * n);
    cand.resize(m);
    res.resize(m);
    // every row of the block top-k alone with one k: all their k-th values
    // at once (rows_topk), for rows of up to 32 (Zen 5, 1 thread, ns per
    // element against the per-row scans: avx2 n = 8 k = 2 6.7 / 11.0, 32/8
    // 5.9 / 8.1, 64/2 4.9 / 4.5)
    thread_local std::vector<T> kth_value;
    thread_local std::vector<int64_t> kth_index;
    thread_local std::vector<uint8_t> kth_nan;
    const int64_t k0 = req.top_k[r0];
    bool block_topk = sk.rows_topk && k0 > 0 && static_cast<size_t>(k0) < n && n <= 32 && n <= sk.rows_topk_max_n &&
                      static_cast<size_t>(k0) <= kTopkShortMaxK;
    for (size_t j = 0; block_topk && j < m; ++j)
      block_topk = req.top_k[r0 + j] == k0 && !(req.top_p[r0 + j] < 1.0) && !(req.min_p[r0 + j] > 0.0);
    if (block_topk) {
      const size_t k = static_cast<size_t>(k0);
      kth_value.resize(m * k);
      kth_index.resize(m * k);
      kth_nan.resize(m);
      sk.rows_topk(x + r0 * n, m, n, k, kth_value.data(), kth_index.data(), kth_nan.data());
    }
    for (size_t j = 0; j < m; ++j) {
      const size_t r = r0 + j;
      const T* xr = x + r * n;
      T* out = masked.data() + j * n;
      double floor = -kInfD, unused = 0;
      int64_t none = 0;
      const size_t k = req.top_k[r] > 0 ? static_cast<size_t>(req.top_k[r]) : 0;
      if (block_topk) {
        if (kth_nan[j])
          fault[r] = kNaN;
        else
          floor = static_cast<double>(kth_value[j * k + k - 1]);
      } else if (k > 0 && k < n && k <= kTopkShortMaxK && takes_short_topk(sk, n, k) && !(req.top_p[r] < 1.0) &&
                 !(req.min_p[r] > 0.0)) {
        // top-k alone: its floor is the k-th largest logit, found by one scan
        // (sample_row's selection costs several times that on short rows)
        T best[kTopkShortMaxK];
        int64_t at[kTopkShortMaxK];
        if (topk_short(sk, xr, n, k, best, at))
          floor = static_cast<double>(best[k - 1]);
        else
          fault[r] = kNaN;
      } else {
        fault[r] = sample_row<T>(xr, n, r, req, false, sk, sm, none, unused, &floor);
      }
      if (floor == -kInfD) {
        std::memcpy(out, xr, n * sizeof(T));
        continue;
      }
      const T tfloor = static_cast<T>(floor), ninf = -std::numeric_limits<T>::infinity();
      for (size_t i = 0; i < n; ++i) out[i] = xr[i] < tfloor ? ninf : xr[i];
    }
    kern.topk_rows(masked.data(), m, n, 0, r0, req.keys[0], inv_temp, 1, cand.data(), res.data());
    for (size_t j = 0; j < m; ++j) {
      Fault& f = fault[r0 + j];
      if (f == kFine) f = res[j].nan ? kNaN : res[j].posinf ? kPosInf : res[j].count == 0 ? kNoFinite : kFine;
      if (f == kFine) token[r0 + j] = static_cast<int64_t>(cand[j].index);
    }
  });
  return true;
}

}  // namespace

template <class T>
RowStatus sample_batch(const T* x, size_t rows, size_t n, const SampleRequest& req, int64_t* token,
                       double* logprob) {
  if (GumbelStatus plain; gumbel_sample_short_rows<T>(x, rows, n, req, token, logprob, plain)) return plain;
  std::vector<Fault> fault(rows, kFine);
  const bool chunk_parallel = rows == 1;
  const SampleKernels<T>& sk = sample_for<T>(active_sample());
  const Kernels<T>& sm = kernels_for<T>(active_kernels());
  if (!sample_short_rows<T>(x, rows, n, req, sk, sm, token, fault)) for_rows(rows, n, [&](size_t r) {
    double lp = 0;
    // the next row's start is prefetched during this row's coarse pass (a
    // hint: with threads, that row may be another thread's)
    fault[r] = sample_row<T>(x + r * n, n, r, req, chunk_parallel, sk, sm, token[r], lp, nullptr,
                             r + 1 < rows ? x + (r + 1) * n : nullptr);
    if (logprob) logprob[r] = lp;
  });
  for (size_t r = 0; r < rows; ++r)
    if (fault[r] != kFine) return fault_status(r, fault[r]);
  return {-1, ""};
}

template <class T>
RowStatus topk_batch(const T* x, size_t rows, size_t n, size_t k, T* value, int64_t* index) {
  std::vector<Fault> fault(rows, kFine);
  const SampleKernels<T>& sk = sample_for<T>(active_sample());
  if (sk.rows_topk && k >= 1 && k <= n && n <= sk.rows_topk_max_n && k <= kTopkShortMaxK) {
    // many rows of up to 64 values: blocks of rows at once (rows_topk; Zen
    // 5, avx512, 1 thread, ns per element against the per-row scans: n = 8
    // k = 2 1.0 / 6.0, 16/4 1.15 / 6.3, 32/8 2.5 / 5.8, 64/8 2.1 / 3.8; at
    // 128/2 1.11 / 1.11, and sample(top_k) there 3.1 / 2.6)
    constexpr size_t kBlock = 1024;
    std::vector<uint8_t> nan(rows, 0);
    for_rows((rows + kBlock - 1) / kBlock, kBlock * n, [&](size_t b) {
      const size_t r0 = b * kBlock, m = std::min(kBlock, rows - r0);
      sk.rows_topk(x + r0 * n, m, n, k, value + r0 * k, index + r0 * k, nan.data() + r0);
    });
    for (size_t r = 0; r < rows; ++r)
      if (nan[r]) fault[r] = kNaN;
  } else if (takes_short_topk(sk, n, k)) {
    for_rows(rows, n, [&](size_t r) {
      if (!topk_short(sk, x + r * n, n, k, value + r * k, index + r * k)) fault[r] = kNaN;
    });
  } else {
    const Kernels<T>& sm = kernels_for<T>(active_kernels());
    for_rows(rows, n, [&](size_t r) {
      RowSampler<T> rs(x + r * n, n, rows == 1, sk, sm);
      std::vector<double>& v = row_scratch().value;
      std::vector<uint64_t>& i = row_scratch().index;
      uint64_t ties = 0;
      fault[r] = rs.select(k, v, i, ties, true);
      if (fault[r] != kFine) return;
      for (size_t j = 0; j < k; ++j) {
        value[r * k + j] = static_cast<T>(v[j]);
        index[r * k + j] = static_cast<int64_t>(i[j]);
      }
    });
  }
  for (size_t r = 0; r < rows; ++r)
    if (fault[r] != kFine) return fault_status(r, fault[r]);
  return {-1, ""};
}

bool set_top_p_estimates(bool on) { return g_estimates.exchange(on); }

bool set_top_p_draw_first(bool on) { return g_draw_first.exchange(on); }

std::array<uint64_t, 3> top_p_draw_first_counts() {
  return {g_first_kept.load(), g_first_dropped.load(), g_first_undecided.load()};
}

std::array<uint64_t, 3> top_p_next_best_counts() {
  return {g_next_best[0].load(), g_next_best[1].load(), g_next_best[2].load()};
}

int set_top_k_draw(int how) { return g_top_k_draw.exchange(how); }

int set_select_method(int how) { return g_select_method.exchange(how); }

int select_method() { return g_select_method.load(std::memory_order_relaxed); }

std::pair<uint64_t, uint64_t> top_p_estimate_counts() { return {g_decided.load(), g_undecided.load()}; }

template <class T>
double top_p_floor(const T* x, size_t n, double temperature, double top_p, bool exact) {
  RowSampler<T> rs(x, n, false, sample_for<T>(active_sample()), kernels_for<T>(active_kernels()));
  double max = -kInfD;
  rs.max(max);
  FixedMass kept;
  return rs.top_p_threshold(max, std::min(1.0 / temperature, std::numeric_limits<double>::max()), top_p, kept,
                            exact);
}

std::array<double, 5> top_p_coarse(const float* x, size_t n, double ref, double inv_temp, double pivot, bool find_max) {
  CoarseMass c;
  const auto pass = sample_for<float>(active_sample()).mass_coarse;
  const bool ok = pass && pass(x, n, ref, inv_temp, pivot, find_max, &c, nullptr, 0);
  return {ok ? 1.0 : 0.0, c.above, c.rest, c.round, c.max};
}

uint64_t top_p_estimate_collect(const float* x, size_t n, double ref, double inv_temp, double pivot, double clo,
                                double chi, double* out, size_t cap) {
  MassEstimate r;
  sample_for<float>(active_sample()).mass_estimate(x, n, ref, inv_temp, &pivot, 1, clo, chi, out, cap, &r);
  return r.count;
}

template <class T>
uint64_t top_p_collect(const T* x, size_t n, double clo, double chi, double* out, size_t cap) {
  return sample_for<T>(active_sample()).collect(x, n, clo, chi, out, cap);
}

template double top_p_floor<float>(const float*, size_t, double, double, bool);
template double top_p_floor<double>(const double*, size_t, double, double, bool);
template RowStatus sample_batch<float>(const float*, size_t, size_t, const SampleRequest&, int64_t*, double*);
template RowStatus sample_batch<double>(const double*, size_t, size_t, const SampleRequest&, int64_t*, double*);
template RowStatus topk_batch<float>(const float*, size_t, size_t, size_t, float*, int64_t*);
template RowStatus topk_batch<double>(const double*, size_t, size_t, size_t, double*, int64_t*);
template uint64_t top_p_collect<float>(const float*, size_t, double, double, double*, size_t);
template uint64_t top_p_collect<double>(const double*, size_t, double, double, double*, size_t);

}  // namespace ssm
