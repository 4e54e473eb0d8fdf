// The NumPy-internals fast path: ssm.softmax, log_softmax and logsumexp
// called with an exact, aligned, C-contiguous float32/float64 ndarray over its
// last axis (or all of it) are checked and run here in one call, reading the
// arrays' structs directly (pybind11's npy_api and array_proxy: private API,
// which is why pyproject.toml pins pybind11 to the tested range). Anything
// else returns None and takes the general path of _api.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "array_checks.h"
#include "dispatch.h"
#include "driver.h"

namespace ssm {
namespace bind {

// Special-row lists are almost always empty: share one read-only empty array
// instead of allocating a fresh one per call (part of the small-call cost).
py::array_t<py::ssize_t> to_array(const std::vector<size_t>& v) {
  if (v.empty()) {
    static py::array_t<py::ssize_t>* empty = [] {
      auto* a = new py::array_t<py::ssize_t>(0);
      py::detail::array_proxy(a->ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
      return a;
    }();
    return *empty;
  }
  py::array_t<py::ssize_t> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

}  // namespace bind
}  // namespace ssm

namespace {

namespace py = pybind11;
using ssm::bind::active;
using ssm::bind::to_array;

// The Python fast path of ssm.softmax, checked here in one call: the argument
// handling of the general path (np.asarray, dtype tables, _check_out, the
// overlap test through __array_interface__) costs 0.4-1.9 us per call,
// several times a 64 KiB kernel's margin over torch. Takes x and out as they
// came from the user and returns
//  * None when this is not the simple case (the general path then handles it,
//    raising its errors): x not an exact float32/float64 ndarray, C-contiguous,
//    aligned, non-empty, ndim >= 1; axis not None and not the last axis; out
//    (if given) not a writeable, aligned, C-contiguous ndarray of x's shape and
//    dtype, or overlapping x other than exactly (out=x computes in place);
//  * y (a new array, or out) when every row was ordinary;
//  * (y, special, n): the special rows (indices into y viewed as (-1, n)) are
//    for the Python layer's SciPy formulas to overwrite (x's rows are intact
//    there even when out is x; otherwise y's may be partly written).
// axis None normalizes over the whole array: one row of x.size elements.
template <class T>
bool exact_dtype(PyObject* descr) {
  static PyObject* const want = py::dtype::of<T>().release().ptr();  // kept for the process
  return descr == want || py::detail::npy_api::get().PyArray_EquivTypes_(descr, want);
}

// The fast calls' input check (see above): x and axis as the user gave them.
struct FastRows {
  const py::detail::PyArray_Proxy* xa = nullptr;
  bool f32 = false;
  size_t size = 1, n = 0, rows = 0;
};

bool fast_rows(py::handle x, py::handle axis, FastRows& f) {
  constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if (Py_TYPE(x.ptr()) != py::detail::npy_api::get().PyArray_Type_) return false;
  const auto* xa = py::detail::array_proxy(x.ptr());
  f.xa = xa;
  f.f32 = exact_dtype<float>(xa->descr);
  if ((!f.f32 && !exact_dtype<double>(xa->descr)) || xa->nd < 1 || (xa->flags & kFlags) != kFlags) return false;
  for (int d = 0; d < xa->nd; ++d) f.size *= static_cast<size_t>(xa->dimensions[d]);
  if (f.size == 0) return false;
  f.n = f.size;
  if (!axis.is_none()) {
    if (!PyLong_CheckExact(axis.ptr())) return false;
    const long ax = PyLong_AsLong(axis.ptr());
    if (ax != -1 && ax != xa->nd - 1) return false;  // also catches the overflow error's -1 below
    if (PyErr_Occurred()) {
      PyErr_Clear();
      return false;
    }
    f.n = static_cast<size_t>(xa->dimensions[xa->nd - 1]);
  }
  f.rows = f.size / f.n;
  return true;
}

// The output of a same-shape fast call: a new array like x (out None), out
// itself when it is a writeable, aligned, C-contiguous ndarray of x's shape
// and dtype that is x or does not overlap it, else None.
py::object fast_out(const FastRows& f, py::handle out) {
  const auto* xa = f.xa;
  if (out.is_none())
    return py::array(py::reinterpret_borrow<py::dtype>(xa->descr),
                     std::vector<py::ssize_t>(xa->dimensions, xa->dimensions + xa->nd));
  constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                         py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  if (!py::detail::npy_api::get().PyArray_Check_(out.ptr())) return py::none();
  const auto* oa = py::detail::array_proxy(out.ptr());
  if (oa->nd != xa->nd || !std::equal(xa->dimensions, xa->dimensions + xa->nd, oa->dimensions)) return py::none();
  if (!(f.f32 ? exact_dtype<float>(oa->descr) : exact_dtype<double>(oa->descr))) return py::none();
  if ((oa->flags & kFlags) != kFlags) return py::none();
  // Same buffer: in place. Partial overlap would read values already written.
  const size_t bytes = f.size * (f.f32 ? sizeof(float) : sizeof(double));
  if (oa->data != xa->data && oa->data < xa->data + bytes && xa->data < oa->data + bytes) return py::none();
  return py::reinterpret_borrow<py::object>(out);
}

// A same-shape fast call: the checks above, then run(xp, yp, rows, n) with
// the GIL released (xp, yp as T* of the right type), returning the special
// rows. y, or (y, special rows, n) for the Python layer to overwrite.
template <class Run>
py::object same_shape_call(py::handle x, py::handle axis, py::handle out, Run&& run) {
  FastRows f;
  if (!fast_rows(x, axis, f)) return py::none();
  py::object y = fast_out(f, out);
  if (y.is_none()) return y;
  char* const xp = f.xa->data;
  char* const yp = py::detail::array_proxy(y.ptr())->data;
  std::vector<size_t> special;
  {
    py::gil_scoped_release release;
    special = f.f32 ? run(reinterpret_cast<const float*>(xp), reinterpret_cast<float*>(yp), f.rows, f.n)
                    : run(reinterpret_cast<const double*>(xp), reinterpret_cast<double*>(yp), f.rows, f.n);
  }
  if (special.empty()) return y;
  return py::make_tuple(std::move(y), to_array(special), f.n);
}

py::object softmax_call(py::handle x, py::handle axis, py::handle out, const std::string& algorithm) {
  const ssm::Algorithm a = ssm::parse_algorithm(algorithm);
  return same_shape_call(x, axis, out, [&](const auto* xp, auto* yp, size_t rows, size_t n) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
    // The caller overwrites special rows: unless in place, their y may be
    // left partly written (three-pass-reload then needs no max pass).
    const bool scratch = static_cast<const void*>(xp) != static_cast<const void*>(yp);
    return ssm::softmax_batch<T>(active<T>(), xp, yp, rows, n, a, scratch);
  });
}

// ssm.log_softmax's fast path, as softmax_call (in place, special rows are
// left unwritten by the kernel, so x's are intact; else their y may be
// written, and the caller overwrites them).
py::object log_softmax_call(py::handle x, py::handle axis, py::handle out) {
  return same_shape_call(x, axis, out, [](const auto* xp, auto* yp, size_t rows, size_t n) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
    const bool scratch = static_cast<const void*>(xp) != static_cast<const void*>(yp);
    return ssm::log_softmax_batch<T>(active<T>(), xp, yp, rows, n, scratch);
  });
}

// ssm.logsumexp's fast path (no b, keepdims or return_sign): a new array of
// x's shape without its last axis (0-d for axis None or a 1-D x), or None
// when this is not the simple case or a row is special (the general path
// then handles the whole call).
py::object logsumexp_call(py::handle x, py::handle axis) {
  FastRows f;
  if (!fast_rows(x, axis, f)) return py::none();
  const auto* xa = f.xa;
  std::vector<py::ssize_t> shape;
  if (!axis.is_none()) shape.assign(xa->dimensions, xa->dimensions + xa->nd - 1);
  py::array res(py::reinterpret_borrow<py::dtype>(xa->descr), shape);
  char* const xp = xa->data;
  char* const rp = py::detail::array_proxy(res.ptr())->data;
  std::vector<size_t> special;
  {
    py::gil_scoped_release release;
    special = f.f32 ? ssm::logsumexp_batch<float>(active<float>(), reinterpret_cast<const float*>(xp), nullptr,
                                                  reinterpret_cast<float*>(rp), nullptr, f.rows, f.n)
                    : ssm::logsumexp_batch<double>(active<double>(), reinterpret_cast<const double*>(xp), nullptr,
                                                   reinterpret_cast<double*>(rp), nullptr, f.rows, f.n);
  }
  if (!special.empty()) return py::none();
  return std::move(res);
}

}  // namespace

void register_fast_path(py::module_& m) {
  m.def("softmax_call", &softmax_call, py::arg("x"), py::arg("axis"), py::arg("out"), py::arg("algorithm"),
        "ssm.softmax's fast path: y, (y, special rows, n), or None for the general path.");
  m.def("log_softmax_call", &log_softmax_call, py::arg("x"), py::arg("axis"), py::arg("out"),
        "ssm.log_softmax's fast path, as softmax_call.");
  m.def("logsumexp_call", &logsumexp_call, py::arg("x"), py::arg("axis"),
        "ssm.logsumexp's fast path: the result array, or None (the general path handles the call).");
}
