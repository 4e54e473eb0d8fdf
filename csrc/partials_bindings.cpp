// pybind11 bindings for computing over an array one chunk at a time
// (simdsoftmax.dask): per-row partial results of a chunk, which combine
// associatively into the whole row's, and the normalization pass that uses
// the combined result. Registered into _core by bindings.cpp.
//
// Partials are max-relative: a chunk of a row contributes (M_c, S_c) with
// M_c = max x and S_c = sum b*exp(x - M_c) as a double-double. The row's
// normalizer is S = sum_c S_c exp(M_c - M) with M = max_c M_c; since every
// term of S_c is at most 1 relative to M_c, this is exact for any finite
// input (no overflow, and |x| up to the largest float keeps x - M exact in
// the kernels' TwoSum). The max plays the part of the exponent of the
// two-pass algorithm's (mantissa, exponent) pairs.
//
// Loops are serial and release the GIL; a Dask worker runs one chunk per
// thread.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "dispatch.h"
#include "softmax_rows.h"

namespace py = pybind11;

namespace {

using ssm::ExpSum;
using ssm::Kernels;

constexpr double kInf = std::numeric_limits<double>::infinity();

using ssm::gumbel_for;
using ssm::kernels_for;

void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

bool is_f32(const py::array& a, const char* what) {
  if (py::isinstance<py::array_t<float>>(a)) return true;
  if (py::isinstance<py::array_t<double>>(a)) return false;
  throw py::type_error(std::string(what) + " must be float32 or float64 (native byte order)");
}

void check_2d(const py::array& a, const char* what) {
  require(a.ndim() == 2, std::string(what) + " must be 2-D (rows, n)");
  require((a.flags() & py::array::c_style) != 0, std::string(what) + " must be C-contiguous");
}

void check_like(const py::array& x, const py::array& a, const char* what, bool writeable) {
  check_2d(a, what);
  require(a.shape(0) == x.shape(0) && a.shape(1) == x.shape(1) && a.dtype().equal(x.dtype()),
          std::string(what) + " must have the shape and dtype of x");
  if (writeable) require(a.writeable(), std::string(what) + " must be writeable");
}

// A 1-D C-contiguous float64 array with one entry per row (per-row parameters).
const double* row_params(const py::array& a, py::ssize_t rows, const char* what) {
  require(py::isinstance<py::array_t<double>>(a) && a.ndim() == 1 && a.shape(0) == rows &&
              (a.flags() & py::array::c_style) != 0,
          std::string(what) + " must be a 1-D C-contiguous float64 array with one entry per row");
  return static_cast<const double*>(a.data());
}

// --------------------------------------------------------------------------
// row_partials

using Partials = std::tuple<py::array_t<double>, py::array_t<double>, py::array_t<double>, py::array_t<uint8_t>>;

// Flag bits of row_partials' last output.
constexpr uint8_t kSpecial = 1;  // NaN x (where b != 0) or non-finite b: the row needs SciPy's formula
// Weighted: an x whose exp may overflow (or a NaN x under a zero weight).
// SciPy's fallback sum b*exp(x) for special rows then holds +-inf or NaN
// terms (0*inf, inf - inf) that the partial cannot tell: the caller forms
// that chunk's sum from the data.
constexpr uint8_t kHuge = 2;

// Below the smallest x whose exp overflows in T (float32: 88.72, float64:
// 709.78), with a margin for exp implementations that round differently.
template <class T>
constexpr T huge_exp_arg() {
  return sizeof(T) == 4 ? T(88) : T(709);
}

template <class T>
void partials_t(const py::array& x, const py::array* b, bool wide, double* mx, double* hi, double* lo,
                uint8_t* flag) {
  const auto& k = kernels_for<T>(ssm::active_kernels());
  const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
  const T* xp = static_cast<const T*>(x.data());
  const T* bp = b ? static_cast<const T*>(b->data()) : nullptr;
  py::gil_scoped_release release;
  for (size_t r = 0; r < rows; ++r) {
    ExpSum s;  // an empty chunk: max -inf, sum 0 (contributes nothing)
    uint8_t f = 0;
    if (n) {
      const T* xr = xp + r * n;
      const T* br = bp ? bp + r * n : nullptr;
      // Softmax only needs the sum to the data's own precision: the online
      // pass in the data's lanes (twice as many for float32) is that of the
      // in-memory "online" algorithm. Log-sum-exp needs the float64 one.
      s = wide ? k.expsum_online_wide(xr, br, n) : k.expsum_online(xr, n);
      if (br) {
        // The kernels drop zero-weight terms whatever x is (SciPy's main
        // formula does too), but SciPy's fallback sum for special rows keeps
        // them (0 * exp(800) is NaN there) and may overflow with either
        // sign: flag the rows where that can happen. The row is hot in
        // cache, so this second look costs little next to the exp.
        bool huge = false;
        const T limit = huge_exp_arg<T>();
        for (size_t i = 0; i < n; ++i) {
          const bool above = !(xr[i] <= limit);  // also NaN
          huge |= above & ((br[i] == T(0)) | (xr[i] == xr[i]));
        }
        if (huge) f |= kHuge;
      }
    }
    if (s.special) f |= kSpecial;
    mx[r] = s.max;
    hi[r] = s.m;
    lo[r] = s.m_lo;
    flag[r] = f;
  }
}

Partials row_partials(const py::array& x, const py::object& b_obj, bool wide) {
  const bool f32 = is_f32(x, "x");
  check_2d(x, "x");
  py::array b;
  const bool weighted = !b_obj.is_none();
  if (weighted) {
    require(wide, "weights need wide=True");
    b = py::reinterpret_borrow<py::array>(b_obj);
    check_like(x, b, "b", false);
  }
  const py::ssize_t rows = x.shape(0);
  py::array_t<double> mx(rows), hi(rows), lo(rows);
  py::array_t<uint8_t> flag(rows);
  if (f32)
    partials_t<float>(x, weighted ? &b : nullptr, wide, mx.mutable_data(), hi.mutable_data(), lo.mutable_data(),
                      flag.mutable_data());
  else
    partials_t<double>(x, weighted ? &b : nullptr, wide, mx.mutable_data(), hi.mutable_data(), lo.mutable_data(),
                       flag.mutable_data());
  return {mx, hi, lo, flag};
}

// --------------------------------------------------------------------------
// row_sums_dd: a chunk's sums near lse = 0

// For the rows picked: sum b*exp(x) in double-double relative to 0 (not to
// the chunk's max), ~2^-100 relative per term (softmax_rows.h,
// dd_expsum_add). Such sums of chunks simply add up, and where the row's
// log-sum-exp is near 0 (the whole sum ~1) log1p(sum - 1) keeps it to full
// relative accuracy, which max + log S cannot (it cancels). Rows with an x
// whose term may overflow (x >= 700) get a NaN sum.
template <class T>
void sums_dd_t(const py::array& x, const py::array* b, const int64_t* pick, size_t count, double* hi, double* lo) {
  const size_t n = static_cast<size_t>(x.shape(1));
  const T* xp = static_cast<const T*>(x.data());
  const T* bp = b ? static_cast<const T*>(b->data()) : nullptr;
  py::gil_scoped_release release;
  for (size_t j = 0; j < count; ++j) {
    const size_t r = static_cast<size_t>(pick[j]);
    ssm::detail::Dd s = {0.0, 0.0};
    ssm::detail::dd_expsum_add(xp + r * n, bp ? bp + r * n : nullptr, n, 0.0, s);
    hi[j] = s.hi;
    lo[j] = s.lo;
  }
}

std::tuple<py::array_t<double>, py::array_t<double>> row_sums_dd(const py::array& x, const py::object& b_obj,
                                                                 const py::array& rows) {
  const bool f32 = is_f32(x, "x");
  check_2d(x, "x");
  py::array b;
  const bool weighted = !b_obj.is_none();
  if (weighted) {
    b = py::reinterpret_borrow<py::array>(b_obj);
    check_like(x, b, "b", false);
  }
  require(py::isinstance<py::array_t<int64_t>>(rows) && rows.ndim() == 1 && (rows.flags() & py::array::c_style) != 0,
          "rows must be a 1-D C-contiguous int64 array");
  const auto count = static_cast<size_t>(rows.shape(0));
  const auto* pick = static_cast<const int64_t*>(rows.data());
  for (size_t j = 0; j < count; ++j) require(pick[j] >= 0 && pick[j] < x.shape(0), "rows out of range");
  py::array_t<double> hi(rows.shape(0)), lo(rows.shape(0));
  if (f32)
    sums_dd_t<float>(x, weighted ? &b : nullptr, pick, count, hi.mutable_data(), lo.mutable_data());
  else
    sums_dd_t<double>(x, weighted ? &b : nullptr, pick, count, hi.mutable_data(), lo.mutable_data());
  return {hi, lo};
}

// --------------------------------------------------------------------------
// Normalization passes

// The write passes use regular stores (stream = false): a chunk is often
// consumed right away by the next task on the same worker.

template <class T>
void softmax_apply_t(const py::array& x, const py::array& out, const double* ref, const double* inv) {
  const auto& k = kernels_for<T>(ssm::active_kernels());
  const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
  const T* xp = static_cast<const T*>(x.data());
  T* yp = static_cast<T*>(const_cast<void*>(out.data()));
  py::gil_scoped_release release;
  for (size_t r = 0; r < rows; ++r) {
    // Special rows (NaN, +inf, all -inf) are the caller's.
    if (!(std::isfinite(ref[r]) && std::isfinite(inv[r]))) continue;
    // Relative to the row's max, formed exactly: the second pass of the
    // in-memory "online" algorithm.
    k.write_exp(xp + r * n, yp + r * n, n, ref[r], true, 0.0, inv[r], false);
  }
}

void softmax_apply(const py::array& x, const py::array& out, const py::array& ref, const py::array& inv) {
  const bool f32 = is_f32(x, "x");
  check_2d(x, "x");
  check_like(x, out, "out", true);
  const double* rp = row_params(ref, x.shape(0), "ref");
  const double* ip = row_params(inv, x.shape(0), "inv");
  if (f32)
    softmax_apply_t<float>(x, out, rp, ip);
  else
    softmax_apply_t<double>(x, out, rp, ip);
}

template <class T>
void log_softmax_apply_t(const py::array& x, const py::array& out, const double* hi, const double* lo) {
  const auto& k = kernels_for<T>(ssm::active_kernels());
  const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
  const T* xp = static_cast<const T*>(x.data());
  T* yp = static_cast<T*>(const_cast<void*>(out.data()));
  py::gil_scoped_release release;
  for (size_t r = 0; r < rows; ++r) {
    if (!(std::isfinite(hi[r]) && std::isfinite(lo[r]))) continue;
    k.write_shift(xp + r * n, yp + r * n, n, hi[r], lo[r], false);
  }
}

void log_softmax_apply(const py::array& x, const py::array& out, const py::array& hi, const py::array& lo) {
  const bool f32 = is_f32(x, "x");
  check_2d(x, "x");
  check_like(x, out, "out", true);
  const double* hp = row_params(hi, x.shape(0), "hi");
  const double* lp = row_params(lo, x.shape(0), "lo");
  if (f32)
    log_softmax_apply_t<float>(x, out, hp, lp);
  else
    log_softmax_apply_t<double>(x, out, hp, lp);
}

// --------------------------------------------------------------------------
// Gumbel-top-k candidates of a chunk

// Status bits per row.
constexpr uint8_t kHasNaN = 1;
constexpr uint8_t kHasPosInf = 2;

template <class T>
void candidates_t(const py::array& x, size_t k, double inv_temp, const ssm::GumbelKey& key, const py::array& idx,
                  const py::array& score, const py::array& status, uint64_t row_base, uint64_t col_base) {
  const auto& kern = gumbel_for<T>(ssm::active_gumbel());
  const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
  const T* xp = static_cast<const T*>(x.data());
  auto* ip = static_cast<py::ssize_t*>(const_cast<void*>(idx.data()));
  auto* sp = static_cast<double*>(const_cast<void*>(score.data()));
  auto* st = static_cast<uint8_t*>(const_cast<void*>(status.data()));
  std::vector<ssm::Candidate> cand(k);
  py::gil_scoped_release release;
  for (size_t r = 0; r < rows; ++r) {
    // Unlike gumbel_topk, a chunk with fewer than k finite logits (or a bad
    // one) is no error: whether the whole row is fine is decided after the
    // merge, so the candidates and the flags go out as they are.
    const ssm::TopkResult res = kern.topk(xp + r * n, n, col_base, row_base + r, key, inv_temp, k, cand.data(), true,
                                              -std::numeric_limits<double>::infinity());
    for (size_t j = 0; j < k; ++j) {
      const bool have = j < res.count;
      ip[r * k + j] = have ? static_cast<py::ssize_t>(cand[j].index) : -1;
      sp[r * k + j] = have ? cand[j].score : -kInf;
    }
    st[r] = static_cast<uint8_t>((res.nan ? kHasNaN : 0) | (res.posinf ? kHasPosInf : 0));
  }
}

void gumbel_candidates(const py::array& x, size_t k, double inv_temp, uint32_t k0, uint32_t k1,
                       uint64_t row_offset, const py::array& idx, const py::array& score, const py::array& status,
                       uint64_t row_base, uint64_t col_base) {
  const bool f32 = is_f32(x, "x");
  check_2d(x, "x");
  require(k >= 1, "k must be >= 1");
  const py::ssize_t rows = x.shape(0), kk = static_cast<py::ssize_t>(k);
  check_2d(idx, "idx");
  check_2d(score, "score");
  require(py::isinstance<py::array_t<py::ssize_t>>(idx) && idx.shape(0) == rows && idx.shape(1) == kk &&
              idx.writeable(),
          "idx must be a writeable intp array of shape (rows, k)");
  require(py::isinstance<py::array_t<double>>(score) && score.shape(0) == rows && score.shape(1) == kk &&
              score.writeable(),
          "score must be a writeable float64 array of shape (rows, k)");
  require(py::isinstance<py::array_t<uint8_t>>(status) && status.ndim() == 1 && status.shape(0) == rows &&
              (status.flags() & py::array::c_style) != 0 && status.writeable(),
          "status must be a writeable 1-D uint8 array with one entry per row");
  ssm::GumbelKey key;
  key.k0 = k0;
  key.k1 = k1;
  key.row_offset = row_offset;
  if (f32)
    candidates_t<float>(x, k, inv_temp, key, idx, score, status, row_base, col_base);
  else
    candidates_t<double>(x, k, inv_temp, key, idx, score, status, row_base, col_base);
}

}  // namespace

void register_partials(py::module_& m) {
  m.def("row_partials", &row_partials, py::arg("x"), py::arg("b") = py::none(), py::arg("wide") = true,
        "Per row of a chunk: (max, s_hi, s_lo, flags) with s_hi + s_lo = sum b*exp(x - max) (a double-double). "
        "wide=False sums in the data's precision (softmax; no b). flags: 1 = NaN x (b != 0) or non-finite b, "
        "2 = (weighted) an x whose exp may overflow, or a NaN x under a zero weight. An empty chunk gives max -inf "
        "and sum 0.");
  m.def("row_sums_dd", &row_sums_dd, py::arg("x"), py::arg("b"), py::arg("rows"),
        "For the given rows of a chunk: (hi, lo) with hi + lo = sum b*exp(x) (relative to 0) in double-double, "
        "~2^-100 relative per term; NaN where an x >= 700 (under a nonzero weight) may overflow.");
  m.def("softmax_apply", &softmax_apply, py::arg("x"), py::arg("out"), py::arg("ref"), py::arg("inv"),
        "out[r] = exp(x[r] - ref[r]) * inv[r] (x - ref formed exactly); rows with non-finite ref or inv are not "
        "written.");
  m.def("log_softmax_apply", &log_softmax_apply, py::arg("x"), py::arg("out"), py::arg("hi"), py::arg("lo"),
        "out[r] = x[r] - hi[r] - lo[r]; rows with non-finite hi or lo are not written.");
  m.def("gumbel_candidates", &gumbel_candidates, py::arg("x"), py::arg("k"), py::arg("inv_temp"), py::arg("key0"),
        py::arg("key1"), py::arg("row_offset"), py::arg("idx"), py::arg("score"), py::arg("status"),
        py::arg("row_base") = 0, py::arg("col_base") = 0,
        "Best k candidates (global index, score) of each row of a chunk, as gumbel_topk, but rows with fewer than "
        "k finite logits get index -1 / score -inf in the empty slots, and bad rows are reported per row in "
        "status (1 = NaN, 2 = +inf) instead of raising.");
}
