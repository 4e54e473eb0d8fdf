// The Gumbel family's driver: rows split into tasks for the thread pool the
// way the softmax driver splits them (chunking.h): runs of whole rows, or,
// for rows longer than settings().chunked_row, chunks of chunk_elements with
// their candidates merged (top-k) or their sums combined in chunk order
// (gumbel_softmax), so results do not depend on the thread count.
#include "gumbel_driver.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "chunking.h"
#include "dispatch.h"
#include "sample_driver.h"
#include "settings.h"

namespace ssm {
namespace {

using detail::RowTask;
using detail::row_tasks;
using detail::run_tasks;

constexpr double kInfD = std::numeric_limits<double>::infinity();

// What went wrong in a row (0: nothing), in the order a row is checked.
enum RowFault : uint8_t { kFine = 0, kNaN, kPosInf, kTooFew };

GumbelStatus fault_status(size_t row, RowFault f, size_t k) {
  const auto r = static_cast<std::ptrdiff_t>(row);
  if (f == kNaN) return {r, "contains NaN"};
  if (f == kPosInf) return {r, "contains +inf"};
  return {r, k == 1 ? "has no finite logit" : "has fewer finite logits than k"};
}

RowFault fault_of(const TopkResult& res, size_t k) {
  if (res.nan) return kNaN;
  if (res.posinf) return kPosInf;
  return res.count < k ? kTooFew : kFine;
}

std::atomic<size_t> g_short_rows_max{~size_t(0)};
std::atomic<bool> g_softmax_keep{true};

}  // namespace

void set_gumbel_short_rows_max(size_t n) { g_short_rows_max.store(n); }

void set_gumbel_softmax_keep(bool keep) { g_softmax_keep.store(keep); }

// Does a row of n go to the short-row kernel?
template <class T>
bool gumbel_takes_short_rows(const GumbelKernels<T>& kern, size_t n) {
  return kern.topk_rows != nullptr && n >= 1 && n <= kern.short_rows_max &&
         n <= g_short_rows_max.load(std::memory_order_relaxed);
}

template <class T>
GumbelStatus gumbel_topk_rows(const GumbelKernels<T>& kern, const T* xp, size_t rows, size_t n, size_t k,
                              double inv_temp, const GumbelKey& key, std::ptrdiff_t* ip, double* sp, bool prune,
                              uint64_t row_base, uint64_t col_base) {
  if (k == 0 || rows == 0) return {-1, ""};
  const Settings st = settings();
  // Long rows are split (candidates merged by (score, index): the draw does
  // not depend on the split at all).
  const bool split = n > st.chunked_row && k <= st.chunk_elements;
  const std::vector<RowTask> tasks = row_tasks(rows, n, split, st.chunk_elements);
  std::vector<RowFault> fault(rows, kFine);
  // whole rows write their result directly; chunks keep candidates to merge
  std::vector<Candidate> part(split ? tasks.size() * k : 0);
  std::vector<TopkResult> part_res(split ? tasks.size() : 0);
  std::vector<std::atomic<double>> kth_best(split ? rows : 0);  // per row, published by its chunks
  for (auto& f : kth_best) f.store(-kInfD);
  const bool short_rows = !split && gumbel_takes_short_rows(kern, n);
  auto keep = [&](size_t r, const TopkResult& res, const Candidate* cand) {
    fault[r] = fault_of(res, k);
    if (fault[r] != kFine) return;
    for (size_t j = 0; j < k; ++j) {
      ip[r * k + j] = static_cast<std::ptrdiff_t>(cand[j].index);
      if (sp) sp[r * k + j] = cand[j].score;
    }
  };
  auto run = [&](size_t t) {
    const RowTask& tk = tasks[t];
    if (split) {
      const size_t len = tk.hi - tk.lo;
      // Prune with the best k-th score another chunk of the row has found
      // (any lower bound of the row's k-th best keeps pruning exact).
      std::atomic<double>& shared = kth_best[tk.row0];
      const size_t kk = std::min(k, len);
      part_res[t] = kern.topk(xp + tk.row0 * n + tk.lo, len, col_base + tk.lo, row_base + tk.row0, key, inv_temp,
                              kk, part.data() + t * k, prune, prune ? shared.load() : -kInfD);
      if (kk == k && part_res[t].count == k) {
        const double mine = part[t * k + k - 1].score;
        double seen = shared.load();
        while (mine > seen && !shared.compare_exchange_weak(seen, mine)) {
        }
      }
      return;
    }
    if (short_rows) {  // a block of rows per kernel call, the kernel batching them further
      // (no bigger than the task: a call of one short row allocated and
      // cleared 4096 rows' slots)
      const size_t block =
          std::min(tk.row1 - tk.row0, std::max<size_t>(64, std::min<size_t>(4096, 65536 / (k * n))));
      std::vector<Candidate> cand(block * k);
      std::vector<TopkResult> res(block);
      for (size_t r0 = tk.row0; r0 < tk.row1; r0 += block) {
        const size_t m = std::min(block, tk.row1 - r0);
        kern.topk_rows(xp + r0 * n, m, n, col_base, row_base + r0, key, inv_temp, k, cand.data(), res.data());
        for (size_t j = 0; j < m; ++j) keep(r0 + j, res[j], cand.data() + j * k);
      }
      return;
    }
    std::vector<Candidate> cand(k);
    for (size_t r = tk.row0; r < tk.row1; ++r)
      keep(r, kern.topk(xp + r * n, n, col_base, row_base + r, key, inv_temp, k, cand.data(), prune, -kInfD),
           cand.data());
  };
  run_tasks(tasks.size(), rows * n, run);
  if (split) {  // merge each row's chunks
    std::vector<Candidate> all;
    for (size_t t0 = 0; t0 < tasks.size();) {
      const size_t r = tasks[t0].row0;
      TopkResult res;
      all.clear();
      size_t t = t0;
      for (; t < tasks.size() && tasks[t].row0 == r; ++t) {
        res.nan = res.nan || part_res[t].nan;
        res.posinf = res.posinf || part_res[t].posinf;
        all.insert(all.end(), part.begin() + t * k, part.begin() + t * k + part_res[t].count);
      }
      t0 = t;
      res.count = all.size();
      fault[r] = fault_of(res, k);
      if (fault[r] != kFine) continue;
      std::partial_sort(all.begin(), all.begin() + k, all.end(), [](const Candidate& a, const Candidate& b) {
        return a.score > b.score || (a.score == b.score && a.index < b.index);
      });
      for (size_t j = 0; j < k; ++j) {
        ip[r * k + j] = static_cast<std::ptrdiff_t>(all[j].index);
        if (sp) sp[r * k + j] = all[j].score;
      }
    }
  }
  for (size_t r = 0; r < rows; ++r)
    if (fault[r] != kFine) return fault_status(r, fault[r], k);
  return {-1, ""};
}

namespace {

// A row's fault from its pass-1 sum, in the order gumbel_softmax reports
// them (NaN, +inf, no finite logit; GumbelKernels::scan_rows finds the same
// from the logits alone).
RowFault sum_fault(const ExpSum& s) {
  if (s.special) return kNaN;
  if (s.max == kInfD) return kPosInf;
  if (!(s.max > -kInfD)) return kTooFew;
  return kFine;
}

// Is the row's largest scaled term (s.max: the largest x + g, or x in the
// unit form) outside the fast range? Then it is redone relative to s.max:
// (x + g - ref) * inv_tau <= 31.2 in either case.
bool needs_exact(const ExpSum& s, double inv_tau) {
  const double zmax = s.max * inv_tau;
  return !(zmax <= kFastLimit && zmax >= -kFastLimit);
}

GumbelStatus first_fault(const std::vector<uint8_t>& fault) {
  // 8 rows' faults a word at a time (a byte loop cost 6 instructions a row:
  // 0.75 per element at n = 8, twice per call)
  size_t r = 0;
  for (uint64_t word = 0; r + 8 <= fault.size(); r += 8) {
    std::memcpy(&word, fault.data() + r, sizeof word);
    if (word != 0) break;
  }
  for (; r < fault.size(); ++r)
    if (fault[r] != kFine) return fault_status(r, static_cast<RowFault>(fault[r]), 1);
  return {-1, ""};
}

}  // namespace

template <class T>
GumbelStatus gumbel_softmax_rows(const GumbelKernels<T>& kern, const T* xp, T* yp, size_t rows, size_t n,
                                 double inv_tau, const GumbelKey& key, uint64_t row_base, uint64_t col_base,
                                 bool fresh) {
  const Settings st = settings();
  // Rows longer than chunked_row are always split, whatever the thread count:
  // their chunk partials are combined in chunk order, so the bits do not
  // depend on the threads.
  const bool split = n > st.chunked_row;
  const std::vector<RowTask> tasks = row_tasks(rows, n, split, st.chunk_elements);
  const size_t per_row = split ? tasks.size() / rows : 0;  // chunks of a split row
  auto run_all = [&](auto&& body) { run_tasks(tasks.size(), rows * n, body); };
  // tau = 1 has its own form (one log per element instead of two); rows
  // whose largest logit (unit form) or x + g (scaled form) leaves the fast
  // range are redone relative to it.
  const int fast_form = inv_tau == 1.0 ? kUnitForm : kScaledForm;
  // Where y does not overlap x, pass 1 keeps its noise in y for pass 2
  // (the noise costs several times the rest; the unit form keeps each
  // term's mantissa exp(x) / E, so pass 2 takes no exp or divide), and
  // short rows are done in one go (GumbelKernels::softmax_rows): either
  // writes y before every row is known to be good, so unless y is a new
  // array the rows are checked first.
  const auto xa = reinterpret_cast<uintptr_t>(xp), ya = reinterpret_cast<uintptr_t>(yp);
  const bool apart = ya + rows * n * sizeof(T) <= xa || xa + rows * n * sizeof(T) <= ya;
  const bool short_rows = kern.softmax_rows != nullptr && !split && col_base % 64 + n <= kern.softmax_rows_max &&
                          n <= g_short_rows_max.load(std::memory_order_relaxed);
  const bool keep = apart && g_softmax_keep.load(std::memory_order_relaxed);
  if ((short_rows || keep) && !fresh) {
    const std::vector<RowTask> whole = split ? row_tasks(rows, n, false, st.chunk_elements) : tasks;
    std::vector<uint8_t> fault(rows, kFine);
    run_tasks(whole.size(), rows * n, [&](size_t t) {
      const size_t r0 = whole[t].row0;
      kern.scan_rows(xp + r0 * n, whole[t].row1 - r0, n, fault.data() + r0);
    });
    const GumbelStatus bad = first_fault(fault);
    if (bad.first >= 0) return bad;
  }
  if (short_rows) {
    std::vector<uint8_t> fault(rows, kFine);
    run_all([&](size_t t) {
      const RowTask& tk = tasks[t];
      kern.softmax_rows(xp + tk.row0 * n, yp + tk.row0 * n, tk.row1 - tk.row0, n, col_base, row_base + tk.row0, key,
                        inv_tau, fault.data() + tk.row0);
    });
    return first_fault(fault);
  }
  if (keep && !split) {  // each row's two passes back to back, the row still in cache
    std::vector<uint8_t> fault(rows, kFine);
    run_all([&](size_t t) {
      for (size_t r = tasks[t].row0; r < tasks[t].row1; ++r) {
        const T* xr = xp + r * n;
        T* yr = yp + r * n;
        double ref = 0.0;
        int form = fast_form;
        ExpSum s = kern.expsum(xr, n, col_base, row_base + r, key, inv_tau, ref, form, yr);
        fault[r] = sum_fault(s);
        if (fault[r] != kFine) continue;
        if (needs_exact(s, inv_tau)) {
          ref = s.max;
          form = kExactForm;
          s = kern.expsum(xr, n, col_base, row_base + r, key, inv_tau, ref, form, yr);
        }
        kern.write_kept(xr, yr, n, yr, inv_tau, ref, form, s.e, 1.0 / s.m);
      }
    });
    return first_fault(fault);
  }
  // pass 1 results: per chunk (split) or per row
  std::vector<ExpSum> part(split ? tasks.size() : rows);
  std::vector<double> ref(rows, 0.0);
  std::vector<int> form(rows, fast_form);
  auto pass1 = [&](size_t t) {
    const RowTask& tk = tasks[t];
    for (size_t r = tk.row0; r < tk.row1; ++r) {
      const T* xr = xp + r * n + tk.lo;
      ExpSum& slot = part[split ? t : r];
      slot = kern.expsum(xr, tk.hi - tk.lo, col_base + tk.lo, row_base + r, key, inv_tau, ref[r], form[r],
                         keep ? yp + r * n + tk.lo : nullptr);
    }
  };
  auto row_sum = [&](size_t r) {
    return split ? combine_partials(part.data() + r * per_row, per_row) : part[r];
  };
  // Every row's first pass before any write: a bad row leaves out untouched.
  run_all(pass1);
  bool redo = false;
  for (size_t r = 0; r < rows; ++r) {
    const ExpSum s = row_sum(r);
    const RowFault f = sum_fault(s);
    if (f != kFine) return fault_status(r, f, 1);
    if (needs_exact(s, inv_tau)) {
      ref[r] = s.max;
      form[r] = kExactForm;
      redo = true;
    }
  }
  if (redo) {
    run_all([&](size_t t) {
      if (std::any_of(form.begin() + static_cast<std::ptrdiff_t>(tasks[t].row0),
                      form.begin() + static_cast<std::ptrdiff_t>(tasks[t].row1),
                      [](int f) { return f == kExactForm; }))
        pass1(t);  // rows that were fine are recomputed identically
    });
  }
  std::vector<ExpSum> sum(rows);
  for (size_t r = 0; r < rows; ++r) sum[r] = row_sum(r);
  run_all([&](size_t t) {
    const RowTask& tk = tasks[t];
    for (size_t r = tk.row0; r < tk.row1; ++r) {
      const T* xr = xp + r * n + tk.lo;
      T* yr = yp + r * n + tk.lo;
      if (keep)
        kern.write_kept(xr, yr, tk.hi - tk.lo, yr, inv_tau, ref[r], form[r], sum[r].e, 1.0 / sum[r].m);
      else
        kern.write(xr, yr, tk.hi - tk.lo, col_base + tk.lo, row_base + r, key, inv_tau, ref[r], form[r], sum[r].e,
                   1.0 / sum[r].m);
    }
  });
  return {-1, ""};
}

template <class T>
bool gumbel_sample_short_rows(const T* x, size_t rows, size_t n, const SampleRequest& req, int64_t* token,
                              double* logprob, GumbelStatus& status) {
  const GumbelKernels<T>& kern = gumbel_for<T>(active_gumbel());
  if (rows == 0 || req.per_row_keys || req.logprobs != 0 || !gumbel_takes_short_rows(kern, n)) return false;
  const double temperature = req.temperature[0];
  if (!(temperature > 0)) return false;
  for (size_t r = 0; r < rows; ++r)
    if (req.temperature[r] != temperature || (req.top_k[r] > 0 && static_cast<uint64_t>(req.top_k[r]) < n) ||
        req.top_p[r] < 1.0 || req.min_p[r] > 0.0)
      return false;
  static_assert(sizeof(int64_t) == sizeof(std::ptrdiff_t), "tokens are intp");
  status = gumbel_topk_rows<T>(kern, x, rows, n, 1, 1.0 / temperature, req.keys[0],
                               reinterpret_cast<std::ptrdiff_t*>(token), nullptr, true, 0, 0);
  if (logprob)
    for (size_t r = 0; r < rows; ++r) logprob[r] = 0;
  return true;
}

template bool gumbel_takes_short_rows<float>(const GumbelKernels<float>&, size_t);
template bool gumbel_takes_short_rows<double>(const GumbelKernels<double>&, size_t);
template bool gumbel_sample_short_rows<float>(const float*, size_t, size_t, const SampleRequest&, int64_t*, double*,
                                              GumbelStatus&);
template bool gumbel_sample_short_rows<double>(const double*, size_t, size_t, const SampleRequest&, int64_t*,
                                               double*, GumbelStatus&);
template GumbelStatus gumbel_topk_rows<float>(const GumbelKernels<float>&, const float*, size_t, size_t, size_t,
                                              double, const GumbelKey&, std::ptrdiff_t*, double*, bool, uint64_t,
                                              uint64_t);
template GumbelStatus gumbel_topk_rows<double>(const GumbelKernels<double>&, const double*, size_t, size_t, size_t,
                                               double, const GumbelKey&, std::ptrdiff_t*, double*, bool, uint64_t,
                                               uint64_t);
template GumbelStatus gumbel_softmax_rows<float>(const GumbelKernels<float>&, const float*, float*, size_t, size_t,
                                                 double, const GumbelKey&, uint64_t, uint64_t, bool);
template GumbelStatus gumbel_softmax_rows<double>(const GumbelKernels<double>&, const double*, double*, size_t,
                                                  size_t, double, const GumbelKey&, uint64_t, uint64_t, bool);

}  // namespace ssm
