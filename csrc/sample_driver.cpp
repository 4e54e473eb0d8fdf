// sample() and topk(): the row pipeline on top of the selection passes
// (kernels/sample_generic.h) and the Gumbel draw (kernels/gumbel_generic.h).
//
// Passes over a row, per setting (each a read of the row; "scan" = max only):
//   no filter, no logprobs:  1 (the draw, exactly gumbel_argmax's pass)
//   temperature = 0:         1-2 (max, then the first index holding it)
//   top_k (+ top_p, min_p):  1 (running k-th best), then top-p and min-p on
//                            the k candidates (O(k log k), no pass), and the
//                            draw on the candidates' own noise (no pass; a
//                            full masked draw only when ties at the k-th value
//                            are kept beyond k)
//   min_p:                   2 (max; the draw masked at the min-p threshold,
//                            a threshold on z found without a pass)
//   top_p:                   4 typically (max; mass histogram with one exp per
//                            element; narrowing rounds that only compare, then
//                            the collect of the few values of the last bin;
//                            the masked draw)
//   logprobs="raw":          + 1 (max and log-sum-exp in one pass) unless it
//                            replaces the max pass
//   logprobs="processed":    + 1 (the kept mass) unless known from top-k or top-p
#include "sample_driver.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "dispatch.h"
#include "driver.h"
#include "kernels/sample_api.h"
#include "kernels/sample_fixed.h"
#include "thread_pool.h"

namespace ssm {
namespace {

constexpr double kInfD = std::numeric_limits<double>::infinity();

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

FixedMass fixed_of(double m, uint64_t count) {
  FixedMass one;
  fixed_add_mass(one, m);
  FixedMass r;
  while (count > 0) {  // count may exceed 2^32 only in theory; take it in steps
    const uint64_t c = std::min<uint64_t>(count, 0xFFFFFFFFu);
    fixed_add(r, fixed_times(one, c));
    count -= c;
  }
  return r;
}

double mass_of(double v, double ref, double inv_temp) {
  return v == ref ? 1.0 : std::exp((v - ref) * inv_temp);
}

// The chunks of a row: chunk c is [c * size, min(n, (c + 1) * size)).
struct Chunking {
  size_t n, size, count;
  explicit Chunking(size_t n_) : n(n_) {
    const Settings st = settings();
    size = n > st.chunked_row ? st.chunk_elements : std::max<size_t>(n, 1);
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

struct Group {
  double value;
  uint64_t count;
};

// The distinct values of a descending list, with their counts.
std::vector<Group> groups_of(const double* v, size_t count) {
  std::vector<Group> g;
  for (size_t i = 0; i < count; ++i) {
    if (!g.empty() && g.back().value == v[i])
      ++g.back().count;
    else
      g.push_back({v[i], 1});
  }
  return g;
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
// monotone in x; bisection over T's values, no pass over the row). -inf: all.
template <class T>
double min_p_threshold(double max, double inv_temp, double min_p) {
  using O = Ordered<T>;
  auto ok = [&](T t) { return mass_of(static_cast<double>(t), max, inv_temp) >= min_p; };
  const T lowest = std::numeric_limits<T>::lowest();
  if (ok(lowest)) return -kInfD;
  typename O::U bad = O::key(lowest), good = O::key(static_cast<T>(max));  // ok(max): mass 1
  while (good - bad > 1) {
    const typename O::U mid = bad + (good - bad) / 2;
    (ok(O::value(mid)) ? good : bad) = mid;
  }
  return static_cast<double>(O::value(good));
}

constexpr size_t kBins = 1024;         // histogram bins per narrowing round
constexpr size_t kCollectMax = 2048;   // a range this small is collected and finished exactly

template <class T>
class RowSampler {
 public:
  // The kernel tables are the caller's (looked up once per call, on the
  // calling thread, so that pool threads run the kernel set the call chose).
  RowSampler(const T* x, size_t n, bool parallel, const SampleKernels<T>& sk, const Kernels<T>& sm)
      : x_(x), n_(n), ch_(n), parallel_(parallel), sk_(sk), sm_(sm) {}

  // The k best (value desc, index asc) and how many more elements equal the
  // k-th value; fault if a NaN (or, for sample, +inf) was seen.
  Fault select(size_t k, std::vector<double>& value, std::vector<uint64_t>& index, uint64_t& extra_ties,
               bool posinf_ok) {
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
    if (ch_.count == 1) {
      value.assign(cv.begin(), cv.begin() + static_cast<std::ptrdiff_t>(res[0].count));
      index.assign(ci.begin(), ci.begin() + static_cast<std::ptrdiff_t>(res[0].count));
      extra_ties = res[0].ties;
      return kFine;
    }
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
    std::vector<ExpSum> part(ch_.count);
    for_chunks(ch_, parallel_, [&](size_t c) { part[c] = sm_.max_scan(x_ + ch_.lo(c), ch_.len(c)); });
    out = -kInfD;
    for (const auto& p : part) {
      if (p.special) return kNaN;
      out = std::max(out, p.max);
    }
    return kFine;
  }

  // max and log-sum-exp (temperature 1) in one pass.
  Fault max_lse(double& max, double& lse) {
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
      lse = max + std::log1p((part[0].m - 1.0) + part[0].m_lo);
      return kFine;
    }
    double sum = 0;
    for (const auto& p : part)
      if (p.max > -kInfD) sum += (p.m + p.m_lo) * std::exp(p.max - max);
    lse = max + std::log(sum);
    return kFine;
  }

  uint64_t first_index_of(double v) const {
    for (size_t i = 0; i < n_; ++i)
      if (static_cast<double>(x_[i]) == v) return i;
    return 0;
  }

  FixedMass mass_at_least(double ref, double inv_temp, double floor) {
    std::vector<FixedMass> part(ch_.count);
    for_chunks(ch_, parallel_, [&](size_t c) { sk_.mass(x_ + ch_.lo(c), ch_.len(c), ref, inv_temp, floor, &part[c]); });
    FixedMass total;
    for (const auto& p : part) fixed_add(total, p);
    return total;
  }

  // top-p's threshold over the whole row: the smallest logit L whose
  // strictly larger tokens hold less than top_p of the mass; kept = the mass
  // of x >= L. By narrowing histograms (see the file comment).
  double top_p_threshold(double max, double inv_temp, double temperature, double top_p, FixedMass& kept) {
    double hi = max, lo = max - 80.0 * temperature;  // exp(-80): 1.8e-35 per element, the rest in the sink
    const double floor_lo = hi >= 0 ? hi - std::numeric_limits<double>::max() : std::numeric_limits<double>::lowest();
    if (!(lo >= floor_lo)) lo = floor_lo;
    bool sink = true;
    FixedMass above, total;
    double target = 0, lowest = max;
    if (n_ <= kCollectMax) {  // a short row: its finite values are few enough to take them all
      const double all = std::numeric_limits<double>::lowest();
      std::vector<double> value = collect(all, max, n_);
      for (const Group& g : groups_of(value.data(), value.size()))
        fixed_add(total, fixed_of(mass_of(g.value, max, inv_temp), g.count));
      return finish(all, max, n_, max, inv_temp, above, top_p * fixed_value(total), kept);
    }
    std::vector<MassBin> bins(kBins + 1);
    std::vector<std::vector<MassBin>> part(ch_.count, std::vector<MassBin>(kBins + 1));
    for (int round = 0;; ++round) {
      if (!(hi - lo > 0)) {  // one value left (or a range too narrow to split): all of it
        kept = mass_at_least(max, inv_temp, lo);
        return lo;
      }
      const double scale = static_cast<double>(kBins) / (hi - lo);
      for_chunks(ch_, parallel_, [&](size_t c) {
        std::fill(part[c].begin(), part[c].end(), MassBin{});
        sk_.histogram(x_ + ch_.lo(c), ch_.len(c), max, inv_temp, lo, hi, scale, kBins, sink, part[c].data());
      });
      std::fill(bins.begin(), bins.end(), MassBin{});
      for (size_t c = 0; c < ch_.count; ++c)
        for (size_t b = 0; b <= kBins; ++b) {
          const MassBin& p = part[c][b];
          if (p.count == 0) continue;
          MassBin& q = bins[b];
          fixed_add(q.mass, p.mass);
          q.lo = q.count ? std::min(q.lo, p.lo) : p.lo;
          q.hi = q.count ? std::max(q.hi, p.hi) : p.hi;
          q.count += p.count;
        }
      if (round == 0) {
        for (const auto& b : bins)
          if (b.count) {
            fixed_add(total, b.mass);
            lowest = std::min(lowest, b.lo);
          }
        target = top_p * fixed_value(total);
      }
      size_t pick = bins.size();
      for (size_t b = 0; b < bins.size(); ++b) {
        if (bins[b].count == 0) continue;
        FixedMass next = above;
        fixed_add(next, bins[b].mass);
        if (fixed_value(next) >= target) {
          pick = b;
          break;
        }
        above = next;
      }
      if (pick == bins.size()) {  // the truncated tail never reaches top_p: every finite token
        kept = total;
        return lowest;
      }
      const MassBin& bin = bins[pick];
      if (bin.lo == bin.hi || round > 60) {  // (60 rounds: only a subnormal-wide range gets there; keep it whole)
        kept = above;
        fixed_add(kept, bin.mass);
        return bin.lo;
      }
      if (bin.count <= kCollectMax) return finish(bin.lo, bin.hi, bin.count, max, inv_temp, above, target, kept);
      lo = bin.lo;
      hi = bin.hi;
      sink = false;
    }
  }

  // The values x in [lo, hi] (at most cap of them), descending.
  std::vector<double> collect(double lo, double hi, size_t cap) {
    std::vector<size_t> got(ch_.count);
    std::vector<std::vector<double>> cv(ch_.count, std::vector<double>(cap));
    for_chunks(ch_, parallel_, [&](size_t c) {
      got[c] = sk_.collect(x_ + ch_.lo(c), ch_.len(c), lo, hi, cv[c].data(), cap);
    });
    std::vector<double> value;
    for (size_t c = 0; c < ch_.count; ++c)
      for (size_t j = 0; j < got[c] && value.size() < cap; ++j) value.push_back(cv[c][j]);
    std::sort(value.begin(), value.end(), [](double a, double b) { return a > b; });
    return value;
  }

  // top-p's exact finish over the values in [lo, hi] (the tokens above hi
  // hold `above`): walk them down, one distinct value at a time, while the
  // mass strictly above stays below target.
  double finish(double lo, double hi, size_t cap, double max, double inv_temp, FixedMass above, double target,
                FixedMass& kept) {
    const std::vector<double> value = collect(lo, hi, cap);
    double threshold = hi;
    FixedMass cum = above;
    for (const Group& g : groups_of(value.data(), value.size())) {
      if (!(fixed_value(cum) < target)) break;
      threshold = g.value;
      fixed_add(cum, fixed_of(mass_of(g.value, max, inv_temp), g.count));
    }
    kept = cum;
    return threshold;
  }

  // The Gumbel-max draw over x >= floor (gumbel_argmax's pass when floor is -inf).
  Fault draw(uint64_t row, const GumbelKey& key, double inv_temp, double floor, uint64_t& token) {
    std::vector<Candidate> best(ch_.count);
    std::vector<TopkResult> res(ch_.count);
    const T tfloor = floor == -kInfD ? -std::numeric_limits<T>::infinity() : static_cast<T>(floor);
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

  Candidate draw_at(const uint64_t* index, size_t count, uint64_t row, const GumbelKey& key, double inv_temp) {
    return sk_.draw_at(x_, index, count, row, key, inv_temp);
  }

 private:
  const T* x_;
  size_t n_;
  Chunking ch_;
  bool parallel_;
  const SampleKernels<T>& sk_;
  const Kernels<T>& sm_;
};

template <class T>
Fault sample_row(const T* x, size_t n, size_t r, const SampleRequest& req, bool parallel, const SampleKernels<T>& sk,
                 const Kernels<T>& sm, int64_t& token_out, double& logprob_out) {
  RowSampler<T> rs(x, n, parallel, sk, sm);
  const GumbelKey& key = req.per_row_keys ? req.keys[r] : req.keys[0];
  const uint64_t noise_row = req.per_row_keys ? 0 : r;
  const double temperature = req.temperature[r];
  const bool greedy = temperature == 0;
  const double inv_temp = greedy ? kInfD : 1.0 / temperature;
  const size_t k = req.top_k[r] > 0 ? static_cast<size_t>(req.top_k[r]) : 0;
  const bool use_k = k > 0 && k < n;
  const bool use_p = req.top_p[r] < 1.0, use_m = req.min_p[r] > 0.0;
  const int mode = req.logprobs;

  double max = -kInfD, lse = 0;
  std::vector<double> value;
  std::vector<uint64_t> index;
  uint64_t extra_ties = 0;
  Fault f = kFine;
  if (use_k) {
    f = rs.select(k, value, index, extra_ties, false);
    if (f == kFine && !value.empty()) max = value[0];
    if (f == kFine && mode == 1 && max > -kInfD) f = rs.max_lse(max, lse);
  } else if (mode == 1) {
    f = rs.max_lse(max, lse);
  } else if (greedy || use_p || use_m || mode == 2) {
    f = rs.max(max);
  } else {  // the plain draw: gumbel_argmax's own pass and checks
    uint64_t token = 0;
    f = rs.draw(noise_row, key, inv_temp, -kInfD, token);
    token_out = static_cast<int64_t>(token);
    return f;
  }
  if (f != kFine) return f;
  if (max == kInfD) return kPosInf;
  if (!(max > -kInfD)) return kNoFinite;

  uint64_t token = 0;
  FixedMass kept;
  bool kept_known = false;
  if (greedy) {
    token = use_k ? index[0] : rs.first_index_of(max);
  } else if (use_k) {
    const double kth = value[k - 1];
    std::vector<Group> groups = groups_of(value.data(), value.size());
    groups.back().count += extra_ties;
    double floor = kth;
    FixedMass total;
    std::vector<FixedMass> w(groups.size());
    for (size_t g = 0; g < groups.size(); ++g) {
      w[g] = fixed_of(mass_of(groups[g].value, max, inv_temp), groups[g].count);
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
    for (size_t g = 0; g < groups.size(); ++g)
      if (groups[g].value >= floor) fixed_add(kept, w[g]);
    kept_known = true;
    if (floor > kth || extra_ties == 0) {
      size_t count = 0;
      while (count < value.size() && value[count] >= floor) ++count;
      token = rs.draw_at(index.data(), count, noise_row, key, inv_temp).index;
    } else {
      f = rs.draw(noise_row, key, inv_temp, floor, token);
    }
  } else {
    double floor = -kInfD;
    if (use_p) {
      floor = rs.top_p_threshold(max, inv_temp, temperature, req.top_p[r], kept);
      kept_known = true;
    }
    if (use_m) {
      const double m_floor = min_p_threshold<T>(max, inv_temp, req.min_p[r]);
      if (m_floor > floor) {
        floor = m_floor;
        kept_known = false;
      }
    }
    f = rs.draw(noise_row, key, inv_temp, floor, token);
    if (f == kFine && mode == 2 && !kept_known) {
      kept = rs.mass_at_least(max, inv_temp, floor);
      kept_known = true;
    }
  }
  if (f != kFine) return f;
  token_out = static_cast<int64_t>(token);
  const double xt = static_cast<double>(x[token]);
  if (mode == 1) logprob_out = xt - lse;
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

}  // namespace

template <class T>
RowStatus sample_batch(const T* x, size_t rows, size_t n, const SampleRequest& req, int64_t* token,
                       double* logprob) {
  std::vector<Fault> fault(rows, kFine);
  const bool chunk_parallel = rows == 1;
  const SampleKernels<T>& sk = sample_for<T>(active_sample());
  const Kernels<T>& sm = kernels_for<T>(active_kernels());
  for_rows(rows, n, [&](size_t r) {
    double lp = 0;
    fault[r] = sample_row<T>(x + r * n, n, r, req, chunk_parallel, sk, sm, token[r], lp);
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
  const Kernels<T>& sm = kernels_for<T>(active_kernels());
  for_rows(rows, n, [&](size_t r) {
    RowSampler<T> rs(x + r * n, n, rows == 1, sk, sm);
    std::vector<double> v;
    std::vector<uint64_t> i;
    uint64_t ties = 0;
    fault[r] = rs.select(k, v, i, ties, true);
    if (fault[r] != kFine) return;
    for (size_t j = 0; j < k; ++j) {
      value[r * k + j] = static_cast<T>(v[j]);
      index[r * k + j] = static_cast<int64_t>(i[j]);
    }
  });
  for (size_t r = 0; r < rows; ++r)
    if (fault[r] != kFine) return fault_status(r, fault[r]);
  return {-1, ""};
}

template RowStatus sample_batch<float>(const float*, size_t, size_t, const SampleRequest&, int64_t*, double*);
template RowStatus sample_batch<double>(const double*, size_t, size_t, const SampleRequest&, int64_t*, double*);
template RowStatus topk_batch<float>(const float*, size_t, size_t, size_t, float*, int64_t*);
template RowStatus topk_batch<double>(const double*, size_t, size_t, size_t, double*, int64_t*);

}  // namespace ssm
