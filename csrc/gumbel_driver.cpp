// The Gumbel family's driver: rows split into tasks for the thread pool the
// way the softmax driver splits them (chunking.h): runs of whole rows, or,
// for rows longer than settings().chunked_row, chunks of chunk_elements with
// their candidates merged (top-k) or their sums combined in chunk order
// (gumbel_softmax), so results do not depend on the thread count.
#include "gumbel_driver.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "chunking.h"
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

}  // namespace

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
    std::vector<Candidate> cand(k);
    for (size_t r = tk.row0; r < tk.row1; ++r) {
      const TopkResult res =
          kern.topk(xp + r * n, n, col_base, row_base + r, key, inv_temp, k, cand.data(), prune, -kInfD);
      fault[r] = fault_of(res, k);
      if (fault[r] != kFine) continue;
      for (size_t j = 0; j < k; ++j) {
        ip[r * k + j] = static_cast<std::ptrdiff_t>(cand[j].index);
        sp[r * k + j] = cand[j].score;
      }
    }
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
        sp[r * k + j] = all[j].score;
      }
    }
  }
  for (size_t r = 0; r < rows; ++r)
    if (fault[r] != kFine) return fault_status(r, fault[r], k);
  return {-1, ""};
}

template <class T>
GumbelStatus gumbel_softmax_rows(const GumbelKernels<T>& kern, const T* xp, T* yp, size_t rows, size_t n,
                                 double inv_tau, const GumbelKey& key, uint64_t row_base, uint64_t col_base) {
  const Settings st = settings();
  // Rows longer than chunked_row are always split, whatever the thread count:
  // their chunk partials are combined in chunk order, so the bits do not
  // depend on the threads.
  const bool split = n > st.chunked_row;
  const std::vector<RowTask> tasks = row_tasks(rows, n, split, st.chunk_elements);
  const size_t per_row = split ? tasks.size() / rows : 0;  // chunks of a split row
  auto run_all = [&](auto&& body) { run_tasks(tasks.size(), rows * n, body); };
  // pass 1 results: per chunk (split) or per row
  std::vector<ExpSum> part(split ? tasks.size() : rows);
  // tau = 1 has its own form (one log per element instead of two); rows
  // whose largest logit (unit form) or x + g (scaled form) leaves the fast
  // range are redone relative to it.
  const int fast_form = inv_tau == 1.0 ? kUnitForm : kScaledForm;
  std::vector<double> ref(rows, 0.0);
  std::vector<int> form(rows, fast_form);
  auto pass1 = [&](size_t t) {
    const RowTask& tk = tasks[t];
    for (size_t r = tk.row0; r < tk.row1; ++r) {
      const T* xr = xp + r * n + tk.lo;
      ExpSum& slot = part[split ? t : r];
      slot = kern.expsum(xr, tk.hi - tk.lo, col_base + tk.lo, row_base + r, key, inv_tau, ref[r], form[r]);
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
    if (s.special) return fault_status(r, kNaN, 1);
    if (s.max == std::numeric_limits<double>::infinity()) return fault_status(r, kPosInf, 1);
    if (!(s.max > -std::numeric_limits<double>::infinity())) return fault_status(r, kTooFew, 1);
    const double zmax = s.max * inv_tau;  // s.max: the largest x + g, or x (unit form, inv_tau = 1)
    if (!(zmax <= kFastLimit && zmax >= -kFastLimit)) {
      ref[r] = s.max;  // redone relative to it: (x + g - ref) * inv_tau <= 31.2 in either case
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
    for (size_t r = tk.row0; r < tk.row1; ++r)
      kern.write(xp + r * n + tk.lo, yp + r * n + tk.lo, tk.hi - tk.lo, col_base + tk.lo, row_base + r, key, inv_tau,
                 ref[r], form[r], sum[r].e, 1.0 / sum[r].m);
  });
  return {-1, ""};
}

template GumbelStatus gumbel_topk_rows<float>(const GumbelKernels<float>&, const float*, size_t, size_t, size_t,
                                              double, const GumbelKey&, std::ptrdiff_t*, double*, bool, uint64_t,
                                              uint64_t);
template GumbelStatus gumbel_topk_rows<double>(const GumbelKernels<double>&, const double*, size_t, size_t, size_t,
                                               double, const GumbelKey&, std::ptrdiff_t*, double*, bool, uint64_t,
                                               uint64_t);
template GumbelStatus gumbel_softmax_rows<float>(const GumbelKernels<float>&, const float*, float*, size_t, size_t,
                                                 double, const GumbelKey&, uint64_t, uint64_t);
template GumbelStatus gumbel_softmax_rows<double>(const GumbelKernels<double>&, const double*, double*, size_t,
                                                  size_t, double, const GumbelKey&, uint64_t, uint64_t);

}  // namespace ssm
