// pybind11 bindings of the Gumbel family (registered into _core by
// bindings.cpp). Rows are the last axis of 2-D C-contiguous arrays; row_base
// and col_base give the global position of x[0, 0] (so a block of a larger
// array, e.g. a Dask chunk, draws exactly the noise the whole array would).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "dispatch.h"
#include "driver.h"
#include "thread_pool.h"

namespace py = pybind11;

namespace {

using ssm::GumbelKernels;
using ssm::GumbelKey;

template <class T>
const GumbelKernels<T>& gumbel_for(const ssm::GumbelSet& set);
template <>
const GumbelKernels<float>& gumbel_for<float>(const ssm::GumbelSet& set) { return set.f32; }
template <>
const GumbelKernels<double>& gumbel_for<double>(const ssm::GumbelSet& set) { return set.f64; }

bool is_f32(const py::array& a, const char* what) {
  if (py::isinstance<py::array_t<float>>(a)) return true;
  if (py::isinstance<py::array_t<double>>(a)) return false;
  throw py::type_error(std::string(what) + " must be float32 or float64 (native byte order)");
}

void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

void check_2d(const py::array& a, const char* what) {
  require(a.ndim() == 2, std::string(what) + " must be 2-D (rows, n)");
  require((a.flags() & py::array::c_style) != 0, std::string(what) + " must be C-contiguous");
}

void check_out(const py::array& a, py::ssize_t rows, py::ssize_t cols, const char* what) {
  check_2d(a, what);
  require(a.shape(0) == rows && a.shape(1) == cols, std::string(what) + " has the wrong shape");
  require(a.writeable(), std::string(what) + " must be writeable");
}

GumbelKey make_key(uint32_t k0, uint32_t k1, uint64_t row_offset) {
  GumbelKey key;
  key.k0 = k0;
  key.k1 = k1;
  key.row_offset = row_offset;
  return key;
}

// (first bad row or -1, what is wrong with it)
using Status = std::pair<py::ssize_t, std::string>;

constexpr double kInfD = std::numeric_limits<double>::infinity();

// What went wrong in a row (0: nothing), in the order a row is checked.
enum RowFault : uint8_t { kFine = 0, kNaN, kPosInf, kTooFew };

Status fault_status(size_t row, RowFault f, size_t k) {
  const auto r = static_cast<py::ssize_t>(row);
  if (f == kNaN) return {r, "contains NaN"};
  if (f == kPosInf) return {r, "contains +inf"};
  return {r, k == 1 ? "has no finite logit" : "has fewer finite logits than k"};
}

RowFault fault_of(const ssm::TopkResult& res, size_t k) {
  if (res.nan) return kNaN;
  if (res.posinf) return kPosInf;
  return res.count < k ? kTooFew : kFine;
}

// Work items of a call: runs of whole rows of about kTaskElements elements,
// or, when split, every row cut into chunks of chunk_elements (the same cut
// whatever the thread count; row r's chunks are tasks r * per_row ...).
struct RowTask {
  size_t row0, row1;  // rows [row0, row1) ...
  size_t lo, hi;      // ... columns [lo, hi) (a chunk: row1 = row0 + 1)
};
constexpr size_t kTaskElements = size_t{1} << 16;

std::vector<RowTask> row_tasks(size_t rows, size_t n, bool split, size_t chunk_elements) {
  std::vector<RowTask> tasks;
  if (split) {
    for (size_t r = 0; r < rows; ++r)
      for (size_t lo = 0; lo < n; lo += chunk_elements) tasks.push_back({r, r + 1, lo, std::min(n, lo + chunk_elements)});
  } else {
    const size_t per = std::max<size_t>(1, kTaskElements / std::max<size_t>(n, 1));
    for (size_t r = 0; r < rows; r += per) tasks.push_back({r, std::min(rows, r + per), 0, n});
  }
  return tasks;
}

// body(t) for every task, on the pool when the call is big enough.
template <class Body>
void run_tasks(size_t count, size_t elements, const Body& body) {
  if (count > 1 && elements >= ssm::settings().parallel_min)
    ssm::parallel_for(count, body);
  else
    for (size_t t = 0; t < count; ++t) body(t);
}

// The k best (index, score) of each of `rows` rows of n at xp into ip and sp
// (rows x k each).
template <class T>
Status topk_t(const T* xp, size_t rows, size_t n, size_t k, double inv_temp, const GumbelKey& key, py::ssize_t* ip,
              double* sp, bool prune, uint64_t row_base, uint64_t col_base) {
  const auto& kern = gumbel_for<T>(ssm::active_gumbel());
  if (k == 0 || rows == 0) return {-1, ""};
  const ssm::Settings st = ssm::settings();
  // Long rows are split (candidates merged by (score, index): the draw does
  // not depend on the split at all).
  const bool split = n > st.chunked_row && k <= st.chunk_elements;
  const std::vector<RowTask> tasks = row_tasks(rows, n, split, st.chunk_elements);
  std::vector<RowFault> fault(rows, kFine);
  // whole rows write their result directly; chunks keep candidates to merge
  std::vector<ssm::Candidate> part(split ? tasks.size() * k : 0);
  std::vector<ssm::TopkResult> part_res(split ? tasks.size() : 0);
  std::vector<std::atomic<double>> kth_best(split ? rows : 0);  // per row, published by its chunks
  for (auto& f : kth_best) f.store(-kInfD);
  py::gil_scoped_release release;
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
    std::vector<ssm::Candidate> cand(k);
    for (size_t r = tk.row0; r < tk.row1; ++r) {
      const ssm::TopkResult res =
          kern.topk(xp + r * n, n, col_base, row_base + r, key, inv_temp, k, cand.data(), prune, -kInfD);
      fault[r] = fault_of(res, k);
      if (fault[r] != kFine) continue;
      for (size_t j = 0; j < k; ++j) {
        ip[r * k + j] = static_cast<py::ssize_t>(cand[j].index);
        sp[r * k + j] = cand[j].score;
      }
    }
  };
  run_tasks(tasks.size(), rows * n, run);
  if (split) {  // merge each row's chunks
    std::vector<ssm::Candidate> all;
    for (size_t t0 = 0; t0 < tasks.size();) {
      const size_t r = tasks[t0].row0;
      ssm::TopkResult res;
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
      std::partial_sort(all.begin(), all.begin() + k, all.end(), [](const ssm::Candidate& a, const ssm::Candidate& b) {
        return a.score > b.score || (a.score == b.score && a.index < b.index);
      });
      for (size_t j = 0; j < k; ++j) {
        ip[r * k + j] = static_cast<py::ssize_t>(all[j].index);
        sp[r * k + j] = all[j].score;
      }
    }
  }
  for (size_t r = 0; r < rows; ++r)
    if (fault[r] != kFine) return fault_status(r, fault[r], k);
  return {-1, ""};
}

Status gumbel_topk(const py::array& x, size_t k, double inv_temp, uint32_t k0, uint32_t k1, uint64_t row_offset,
                   const py::array& idx, const py::array& score, bool prune, uint64_t row_base, uint64_t col_base) {
  const bool f32 = is_f32(x, "x");
  check_2d(x, "x");
  check_out(idx, x.shape(0), static_cast<py::ssize_t>(k), "idx");
  check_out(score, x.shape(0), static_cast<py::ssize_t>(k), "score");
  require(py::isinstance<py::array_t<py::ssize_t>>(idx), "idx must be intp");
  require(py::isinstance<py::array_t<double>>(score), "score must be float64");
  const GumbelKey key = make_key(k0, k1, row_offset);
  const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
  auto* ip = static_cast<py::ssize_t*>(const_cast<void*>(idx.data()));
  auto* sp = static_cast<double*>(const_cast<void*>(score.data()));
  return f32 ? topk_t<float>(static_cast<const float*>(x.data()), rows, n, k, inv_temp, key, ip, sp, prune, row_base,
                             col_base)
             : topk_t<double>(static_cast<const double*>(x.data()), rows, n, k, inv_temp, key, ip, sp, prune,
                              row_base, col_base);
}

// The rows of a one-step call: x C-contiguous and aligned, float32 or
// float64 in native order (the caller checked the rest), reduced over its last
// axis of n > 0 -> (f32?, rows, n).
struct Rows {
  bool f32;
  size_t rows, n;
};
Rows one_call_rows(const py::array& x) {
  const bool f32 = is_f32(x, "x");
  require(x.ndim() >= 1 && (x.flags() & py::array::c_style) != 0, "x must be C-contiguous with at least one axis");
  const size_t n = static_cast<size_t>(x.shape(x.ndim() - 1));
  require(n > 0, "rows must not be empty");
  require(reinterpret_cast<uintptr_t>(x.data()) % (f32 ? sizeof(float) : sizeof(double)) == 0, "x must be aligned");
  return {f32, static_cast<size_t>(x.size()) / n, n};
}

// gumbel_argmax's and gumbel_topk's common call in one step (1 <= k <= n):
// -> (first bad row or -1, reason, intp array of x.shape[:-1] (argmax) or
// x.shape[:-1] + (k,)), the array None when a row is bad.
py::tuple gumbel_topk_call(const py::array& x, size_t k, bool argmax, double inv_temp, uint32_t k0, uint32_t k1,
                           uint64_t row_offset) {
  const Rows r = one_call_rows(x);
  require(k >= 1 && k <= r.n && (!argmax || k == 1), "k must be in [1, n] (1 for argmax)");
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim() - 1);
  if (!argmax) shape.push_back(static_cast<py::ssize_t>(k));
  py::array_t<py::ssize_t> idx(shape);
  std::vector<double> score(r.rows * k);
  const GumbelKey key = make_key(k0, k1, row_offset);
  py::ssize_t* ip = idx.mutable_data();
  const Status st = r.f32 ? topk_t<float>(static_cast<const float*>(x.data()), r.rows, r.n, k, inv_temp, key, ip,
                                          score.data(), true, 0, 0)
                          : topk_t<double>(static_cast<const double*>(x.data()), r.rows, r.n, k, inv_temp, key, ip,
                                           score.data(), true, 0, 0);
  if (st.first >= 0) return py::make_tuple(st.first, st.second, py::none());
  return py::make_tuple(st.first, st.second, idx);
}

template <class T>
Status softmax_t(const T* xp, T* yp, size_t rows, size_t n, double inv_tau, const GumbelKey& key, uint64_t row_base,
                 uint64_t col_base) {
  const auto& kern = gumbel_for<T>(ssm::active_gumbel());
  const ssm::Settings st = ssm::settings();
  // Rows longer than chunked_row are always split, whatever the thread count:
  // their chunk partials are combined in chunk order, so the bits do not
  // depend on the threads.
  const bool split = n > st.chunked_row;
  const std::vector<RowTask> tasks = row_tasks(rows, n, split, st.chunk_elements);
  const size_t per_row = split ? tasks.size() / rows : 0;  // chunks of a split row
  auto run_all = [&](auto&& body) { run_tasks(tasks.size(), rows * n, body); };
  // pass 1 results: per chunk (split) or per row
  std::vector<ssm::ExpSum> part(split ? tasks.size() : rows);
  // tau = 1 has its own form (one log per element instead of two); rows
  // whose largest logit (unit form) or x + g (scaled form) leaves the fast
  // range are redone relative to it.
  const int fast_form = inv_tau == 1.0 ? ssm::kUnitForm : ssm::kScaledForm;
  std::vector<double> ref(rows, 0.0);
  std::vector<int> form(rows, fast_form);
  auto pass1 = [&](size_t t) {
    const RowTask& tk = tasks[t];
    for (size_t r = tk.row0; r < tk.row1; ++r) {
      const T* xr = xp + r * n + tk.lo;
      ssm::ExpSum& slot = part[split ? t : r];
      slot = kern.expsum(xr, tk.hi - tk.lo, col_base + tk.lo, row_base + r, key, inv_tau, ref[r], form[r]);
    }
  };
  auto row_sum = [&](size_t r) {
    return split ? ssm::combine_partials(part.data() + r * per_row, per_row) : part[r];
  };
  py::gil_scoped_release release;
  // Every row's first pass before any write: a bad row leaves out untouched.
  run_all(pass1);
  bool redo = false;
  for (size_t r = 0; r < rows; ++r) {
    const ssm::ExpSum s = row_sum(r);
    if (s.special) return fault_status(r, kNaN, 1);
    if (s.max == std::numeric_limits<double>::infinity()) return fault_status(r, kPosInf, 1);
    if (!(s.max > -std::numeric_limits<double>::infinity())) return fault_status(r, kTooFew, 1);
    const double zmax = s.max * inv_tau;  // s.max: the largest x + g, or x (unit form, inv_tau = 1)
    if (!(zmax <= ssm::kFastLimit && zmax >= -ssm::kFastLimit)) {
      ref[r] = s.max;  // redone relative to it: (x + g - ref) * inv_tau <= 31.2 in either case
      form[r] = ssm::kExactForm;
      redo = true;
    }
  }
  if (redo) {
    run_all([&](size_t t) {
      if (std::any_of(form.begin() + static_cast<std::ptrdiff_t>(tasks[t].row0),
                      form.begin() + static_cast<std::ptrdiff_t>(tasks[t].row1),
                      [](int f) { return f == ssm::kExactForm; }))
        pass1(t);  // rows that were fine are recomputed identically
    });
  }
  std::vector<ssm::ExpSum> sum(rows);
  for (size_t r = 0; r < rows; ++r) sum[r] = row_sum(r);
  run_all([&](size_t t) {
    const RowTask& tk = tasks[t];
    for (size_t r = tk.row0; r < tk.row1; ++r)
      kern.write(xp + r * n + tk.lo, yp + r * n + tk.lo, tk.hi - tk.lo, col_base + tk.lo, row_base + r, key, inv_tau,
                 ref[r], form[r], sum[r].e, 1.0 / sum[r].m);
  });
  return {-1, ""};
}

Status gumbel_softmax(const py::array& x, const py::array& out, double inv_tau, uint32_t k0, uint32_t k1,
                      uint64_t row_offset, uint64_t row_base, uint64_t col_base) {
  const bool f32 = is_f32(x, "x");
  check_2d(x, "x");
  check_out(out, x.shape(0), x.shape(1), "out");
  require(out.dtype().equal(x.dtype()), "out must have the dtype of x");
  require(x.shape(1) > 0, "rows must not be empty");
  const GumbelKey key = make_key(k0, k1, row_offset);
  const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
  void* yp = const_cast<void*>(out.data());
  return f32 ? softmax_t<float>(static_cast<const float*>(x.data()), static_cast<float*>(yp), rows, n, inv_tau, key,
                                row_base, col_base)
             : softmax_t<double>(static_cast<const double*>(x.data()), static_cast<double*>(yp), rows, n, inv_tau, key,
                                 row_base, col_base);
}

// gumbel_softmax's common call in one step: x as for gumbel_topk_call, out
// None or an array of x's shape and dtype, C-contiguous, aligned, writeable,
// and either x itself or not overlapping it (the caller checked) -> (first bad
// row or -1, reason, the result or None).
py::tuple gumbel_softmax_call(const py::array& x, const py::object& out, double inv_tau, uint32_t k0, uint32_t k1,
                              uint64_t row_offset) {
  const Rows r = one_call_rows(x);
  py::array y = out.is_none() ? py::array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()))
                              : py::reinterpret_borrow<py::array>(out);
  require(y.dtype().equal(x.dtype()) && y.ndim() == x.ndim() && std::equal(x.shape(), x.shape() + x.ndim(), y.shape()) &&
              y.writeable() &&
              (y.flags() & py::array::c_style) != 0,
          "out must be a writeable C-contiguous array of x's shape and dtype");
  const GumbelKey key = make_key(k0, k1, row_offset);
  void* yp = y.mutable_data();
  const Status st =
      r.f32 ? softmax_t<float>(static_cast<const float*>(x.data()), static_cast<float*>(yp), r.rows, r.n, inv_tau, key,
                               0, 0)
            : softmax_t<double>(static_cast<const double*>(x.data()), static_cast<double*>(yp), r.rows, r.n, inv_tau,
                                key, 0, 0);
  if (st.first >= 0) return py::make_tuple(st.first, st.second, py::none());
  return py::make_tuple(st.first, st.second, y);
}

void gumbel_noise(const py::array& out, uint32_t k0, uint32_t k1, uint64_t row_offset, uint64_t row_base,
                  uint64_t col_base) {
  const bool f32 = is_f32(out, "out");
  check_out(out, out.ndim() == 2 ? out.shape(0) : -1, out.ndim() == 2 ? out.shape(1) : -1, "out");
  const GumbelKey key = make_key(k0, k1, row_offset);
  const size_t rows = static_cast<size_t>(out.shape(0)), n = static_cast<size_t>(out.shape(1));
  void* p = const_cast<void*>(out.data());
  py::gil_scoped_release release;
  for (size_t r = 0; r < rows; ++r) {
    if (f32)
      gumbel_for<float>(ssm::active_gumbel()).noise(static_cast<float*>(p) + r * n, n, col_base, row_base + r, key);
    else
      gumbel_for<double>(ssm::active_gumbel()).noise(static_cast<double*>(p) + r * n, n, col_base, row_base + r, key);
  }
}

py::array_t<uint32_t> philox16(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  require(base % 16 == 0, "base must be a multiple of 16");
  py::array_t<uint32_t> out(64);
  gumbel_for<float>(ssm::active_gumbel()).philox16(base, c2, c3, k0, k1, out.mutable_data());
  return out;
}

}  // namespace

void register_gumbel(py::module_& m) {
  m.def("gumbel_topk", &gumbel_topk, py::arg("x"), py::arg("k"), py::arg("inv_temp"), py::arg("key0"),
        py::arg("key1"), py::arg("row_offset"), py::arg("idx"), py::arg("score"), py::arg("prune") = true,
        py::arg("row_base") = 0, py::arg("col_base") = 0,
        "Best k of x*inv_temp + Gumbel noise per row -> (first bad row or -1, reason).");
  m.def("gumbel_topk_call", &gumbel_topk_call, py::arg("x"), py::arg("k"), py::arg("argmax"), py::arg("inv_temp"),
        py::arg("key0"), py::arg("key1"), py::arg("row_offset"),
        "gumbel_topk (argmax: k = 1 without its axis) over the last axis of a C-contiguous float32/float64 array -> "
        "(bad row or -1, reason, indices or None).");
  m.def("gumbel_softmax_call", &gumbel_softmax_call, py::arg("x"), py::arg("out"), py::arg("inv_tau"),
        py::arg("key0"), py::arg("key1"), py::arg("row_offset"),
        "gumbel_softmax over the last axis of a C-contiguous float32/float64 array, into out (None: a new array) -> "
        "(bad row or -1, reason, the result or None).");
  m.def("gumbel_softmax", &gumbel_softmax, py::arg("x"), py::arg("out"), py::arg("inv_tau"), py::arg("key0"),
        py::arg("key1"), py::arg("row_offset"), py::arg("row_base") = 0, py::arg("col_base") = 0,
        "softmax((x + g) * inv_tau) per row, noise regenerated in both passes -> (bad row or -1, reason).");
}

void register_gumbel_testing(py::module_& t) {
  t.def("gumbel_noise", &gumbel_noise, py::arg("out"), py::arg("key0"), py::arg("key1"), py::arg("row_offset"),
        py::arg("row_base") = 0, py::arg("col_base") = 0, "The Gumbel noise itself.");
  t.def("philox16", &philox16, py::arg("base"), py::arg("c2"), py::arg("c3"), py::arg("key0"), py::arg("key1"),
        "Philox4x32-10 words of blocks base..base+15: out[16*w + l] = word w of block base + l.");
}
