// The pybind11 module simdsoftmax._core: thin. It checks that arrays are
// exactly what the kernels take (2-D, C-contiguous, float32/float64, out
// writeable) — the Python layer has already converted them — releases the
// GIL and runs the active kernel set row by row.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "cache_info.h"
#include "cpu_features.h"
#include "dispatch.h"
#include "driver.h"
#include "driver_rows.h"
#include "thread_pool.h"

namespace py = pybind11;

void register_gumbel(py::module_& m);  // gumbel_bindings.cpp
void register_partials(py::module_& m);  // partials_bindings.cpp

namespace {

using ssm::Kernels;

enum class DType { F32, F64 };

DType dtype_of(const py::array& a, const char* what) {
  if (py::isinstance<py::array_t<float>>(a)) return DType::F32;
  if (py::isinstance<py::array_t<double>>(a)) return DType::F64;
  throw py::type_error(std::string(what) + " must be float32 or float64 (native byte order)");
}

void require_c_contiguous(const py::array& a, const char* what) {
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(what) + " must be C-contiguous");
}

void require_writeable(const py::array& a, const char* what) {
  if (!a.writeable()) throw py::value_error(std::string(what) + " must be writeable");
}

void require_same(const py::array& a, const py::array& b, const char* what) {
  if (a.ndim() != b.ndim() || !a.dtype().equal(b.dtype()))
    throw py::value_error(std::string(what) + " must have the shape and dtype of x");
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.shape(d) != b.shape(d)) throw py::value_error(std::string(what) + " must have the shape and dtype of x");
}

struct Rows {
  size_t rows, n;
};

// (rows, n), or any C-contiguous array of ndim >= 1 whose last axis is the
// row (so the Python fast path passes arrays without reshaping them).
Rows check_rows(const py::array& x) {
  if (x.ndim() < 1) throw py::value_error("x must be 2-D (rows, n) or have a last axis");
  require_c_contiguous(x, "x");
  const size_t n = static_cast<size_t>(x.shape(x.ndim() - 1));
  size_t rows = 1;
  for (py::ssize_t d = 0; d + 1 < x.ndim(); ++d) rows *= static_cast<size_t>(x.shape(d));
  return {rows, n};
}

template <class T>
const Kernels<T>& kernels_for(const ssm::KernelSet& set);
template <>
const Kernels<float>& kernels_for<float>(const ssm::KernelSet& set) { return set.f32; }
template <>
const Kernels<double>& kernels_for<double>(const ssm::KernelSet& set) { return set.f64; }

template <class T>
const Kernels<T>& active() {
  return kernels_for<T>(ssm::active_kernels());
}

template <class T>
T* data_of(const py::array& a) {
  return static_cast<T*>(const_cast<void*>(a.data()));
}

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

template <class T>
std::vector<size_t> softmax_t(const py::array& x, const py::array& out, Rows r, ssm::Algorithm a) {
  const auto& k = active<T>();
  const T* xp = data_of<T>(x);
  T* yp = data_of<T>(out);
  py::gil_scoped_release release;
  return ssm::softmax_batch<T>(k, xp, yp, r.rows, r.n, a);
}

template <class T>
std::vector<size_t> log_softmax_t(const py::array& x, const py::array& out, Rows r) {
  const auto& k = active<T>();
  const T* xp = data_of<T>(x);
  T* yp = data_of<T>(out);
  py::gil_scoped_release release;
  return ssm::log_softmax_batch<T>(k, xp, yp, r.rows, r.n);
}

template <class T>
std::vector<size_t> logsumexp_t(const py::array& x, const py::array* b, const py::array& out,
                                const py::array* sign, Rows r) {
  const auto& k = active<T>();
  const T* xp = data_of<T>(x);
  const T* bp = b ? data_of<T>(*b) : nullptr;
  T* op = data_of<T>(out);
  T* sp = sign ? data_of<T>(*sign) : nullptr;
  py::gil_scoped_release release;
  return ssm::logsumexp_batch<T>(k, xp, bp, op, sp, r.rows, r.n);
}

void check_out_1d(const py::array& x, const py::array& out, Rows r, const char* what) {
  // 1-D, or shaped like x without its last axis (same element order).
  bool shaped = out.ndim() == 1 && static_cast<size_t>(out.shape(0)) == r.rows;
  if (!shaped && out.ndim() + 1 == x.ndim()) {
    shaped = true;
    for (py::ssize_t d = 0; d < out.ndim(); ++d) shaped = shaped && out.shape(d) == x.shape(d);
  }
  if (!shaped || !out.dtype().equal(x.dtype()))
    throw py::value_error(std::string(what) + " must be 1-D with one entry per row and the dtype of x");
  require_c_contiguous(out, what);
  require_writeable(out, what);
}

template <class T>
void check_1d(const py::array& a, const char* what) {
  if (a.ndim() != 1) throw py::value_error(std::string(what) + " must be 1-D");
  require_c_contiguous(a, what);
}

py::array_t<py::ssize_t> softmax(const py::array& x, const py::array& out, const std::string& algorithm) {
  const ssm::Algorithm a = ssm::parse_algorithm(algorithm);
  const DType dt = dtype_of(x, "x");
  const Rows r = check_rows(x);
  require_same(x, out, "out");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  return to_array(dt == DType::F32 ? softmax_t<float>(x, out, r, a) : softmax_t<double>(x, out, r, a));
}

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

// ssm.log_softmax's fast path, as softmax_call (special rows are left
// unwritten by the kernel, so x's are intact even in place).
py::object log_softmax_call(py::handle x, py::handle axis, py::handle out) {
  return same_shape_call(x, axis, out, [](const auto* xp, auto* yp, size_t rows, size_t n) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
    return ssm::log_softmax_batch<T>(active<T>(), xp, yp, rows, n);
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

py::array_t<py::ssize_t> log_softmax(const py::array& x, const py::array& out) {
  const DType dt = dtype_of(x, "x");
  const Rows r = check_rows(x);
  require_same(x, out, "out");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  return to_array(dt == DType::F32 ? log_softmax_t<float>(x, out, r) : log_softmax_t<double>(x, out, r));
}

py::array_t<py::ssize_t> logsumexp(const py::array& x, const py::array& out) {
  const DType dt = dtype_of(x, "x");
  const Rows r = check_rows(x);
  check_out_1d(x, out, r, "out");
  return to_array(dt == DType::F32 ? logsumexp_t<float>(x, nullptr, out, nullptr, r)
                                   : logsumexp_t<double>(x, nullptr, out, nullptr, r));
}

py::array_t<py::ssize_t> logsumexp_weighted(const py::array& x, const py::array& b, const py::array& out,
                                            const py::array& sign) {
  const DType dt = dtype_of(x, "x");
  const Rows r = check_rows(x);
  require_same(x, b, "b");
  require_c_contiguous(b, "b");
  check_out_1d(x, out, r, "out");
  check_out_1d(x, sign, r, "sign");
  return to_array(dt == DType::F32 ? logsumexp_t<float>(x, &b, out, &sign, r)
                                   : logsumexp_t<double>(x, &b, out, &sign, r));
}

void vexp(const py::array& x, const py::array& out) {
  const DType dt = dtype_of(x, "x");
  if (x.ndim() != 1) throw py::value_error("x must be 1-D");
  require_c_contiguous(x, "x");
  require_same(x, out, "out");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  const size_t n = static_cast<size_t>(x.shape(0));
  void* y = const_cast<void*>(out.data());
  py::gil_scoped_release release;
  if (dt == DType::F32)
    active<float>().vexp(static_cast<const float*>(x.data()), static_cast<float*>(y), n);
  else
    active<double>().vexp(static_cast<const double*>(x.data()), static_cast<double*>(y), n);
}

double probe_read(const py::array& x) {
  const DType dt = dtype_of(x, "x");
  require_c_contiguous(x, "x");
  const size_t n = static_cast<size_t>(x.size());
  py::gil_scoped_release release;
  return dt == DType::F32 ? active<float>().probe_read(static_cast<const float*>(x.data()), n)
                          : active<double>().probe_read(static_cast<const double*>(x.data()), n);
}

void probe_copy(const py::array& x, const py::array& out) {
  const DType dt = dtype_of(x, "x");
  require_c_contiguous(x, "x");
  if (out.size() != x.size() || !out.dtype().equal(x.dtype())) throw py::value_error("out must match x");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  const size_t n = static_cast<size_t>(x.size());
  void* y = const_cast<void*>(out.data());
  py::gil_scoped_release release;
  if (dt == DType::F32)
    ssm::probe_copy<float>(active<float>(), static_cast<const float*>(x.data()), static_cast<float*>(y), n);
  else
    ssm::probe_copy<double>(active<double>(), static_cast<const double*>(x.data()), static_cast<double*>(y), n);
}

void probe_write(const py::array& out, double value) {
  const DType dt = dtype_of(out, "out");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  const size_t n = static_cast<size_t>(out.size());
  void* y = const_cast<void*>(out.data());
  py::gil_scoped_release release;
  if (dt == DType::F32)
    ssm::probe_fill<float>(active<float>(), static_cast<float*>(y), n, value);
  else
    ssm::probe_fill<double>(active<double>(), static_cast<double*>(y), n, value);
}

struct Strided {
  size_t outer, n, inner;
};

Strided check_strided(const py::array& x) {
  if (x.ndim() != 3) throw py::value_error("x must be 3-D (outer, n, inner)");
  require_c_contiguous(x, "x");
  return {static_cast<size_t>(x.shape(0)), static_cast<size_t>(x.shape(1)), static_cast<size_t>(x.shape(2))};
}

py::array_t<py::ssize_t> softmax_strided(const py::array& x, const py::array& out, const std::string& algorithm) {
  ssm::parse_algorithm(algorithm);  // validated; the strided layout runs the two-pass algorithm
  const DType dt = dtype_of(x, "x");
  const Strided s = check_strided(x);
  require_same(x, out, "out");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  std::vector<size_t> special;
  {
    py::gil_scoped_release release;
    special = dt == DType::F32
                      ? ssm::softmax_strided<float>(active<float>(), data_of<float>(x), data_of<float>(out), s.outer,
                                                    s.n, s.inner)
                      : ssm::softmax_strided<double>(active<double>(), data_of<double>(x), data_of<double>(out),
                                                     s.outer, s.n, s.inner);
  }
  return to_array(special);
}

py::array_t<py::ssize_t> log_softmax_strided(const py::array& x, const py::array& out) {
  const DType dt = dtype_of(x, "x");
  const Strided s = check_strided(x);
  require_same(x, out, "out");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  std::vector<size_t> special;
  {
    py::gil_scoped_release release;
    special = dt == DType::F32 ? ssm::log_softmax_strided<float>(active<float>(), data_of<float>(x),
                                                                     data_of<float>(out), s.outer, s.n, s.inner)
                                   : ssm::log_softmax_strided<double>(active<double>(), data_of<double>(x),
                                                                      data_of<double>(out), s.outer, s.n, s.inner);
  }
  return to_array(special);
}

py::array_t<py::ssize_t> logsumexp_strided(const py::array& x, const py::array& out) {
  const DType dt = dtype_of(x, "x");
  const Strided s = check_strided(x);
  if (out.ndim() != 2 || static_cast<size_t>(out.shape(0)) != s.outer ||
      static_cast<size_t>(out.shape(1)) != s.inner || !out.dtype().equal(x.dtype()))
    throw py::value_error("out must be 2-D (outer, inner) with the dtype of x");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  std::vector<size_t> special;
  {
    py::gil_scoped_release release;
    special = dt == DType::F32 ? ssm::logsumexp_strided<float>(active<float>(), data_of<float>(x),
                                                                   data_of<float>(out), s.outer, s.n, s.inner)
                                   : ssm::logsumexp_strided<double>(active<double>(), data_of<double>(x),
                                                                    data_of<double>(out), s.outer, s.n, s.inner);
  }
  return to_array(special);
}

void set_num_threads(int n) {
  if (n < 1) throw py::value_error("number of threads must be >= 1");
  ssm::set_num_threads(n);
}

py::dict runtime_settings() {
  const ssm::Settings st = ssm::settings();
  const ssm::CacheSizes& c = ssm::cache_sizes();
  py::dict d;
  d["l1d_bytes"] = c.l1d;
  d["l2_bytes"] = c.l2;
  d["l3_bytes"] = c.l3;
  d["cache_source"] = c.source;
  d["store_policy"] = std::string(ssm::store_policy_name(st.store_policy));
  d["stream_min_bytes"] = st.stream_min_bytes;
  d["reload_max_bytes"] = st.reload_max_bytes;
  d["chunk_elements"] = st.chunk_elements;
  d["chunked_row"] = st.chunked_row;
  d["parallel_min"] = st.parallel_min;
  d["num_threads"] = ssm::get_num_threads();
  d["prefetch_bytes"] = ssm::prefetch_distance(~size_t(0));
  d["default_num_threads"] = ssm::default_num_threads();
  return d;
}

// Times one of the expsum_fast instantiations on x (tuning by measurement).
py::tuple tune_expsum(const py::array& x, int variant, int repeats) {
  const DType dt = dtype_of(x, "x");
  require_c_contiguous(x, "x");
  if (variant < 0 || variant >= Kernels<float>::kVariants) throw py::value_error("variant out of range");
  const size_t n = static_cast<size_t>(x.size());
  ssm::ExpSum s;
  std::string name;
  {
    py::gil_scoped_release release;
    for (int r = 0; r < repeats; ++r) {
      if (dt == DType::F32) {
        s = active<float>().expsum_fast_variant[variant](data_of<float>(x), n);
        name = active<float>().variant_name[variant];
      } else {
        s = active<double>().expsum_fast_variant[variant](data_of<double>(x), n);
        name = active<double>().variant_name[variant];
      }
    }
  }
  return py::make_tuple(name, s.m, s.e);
}

py::dict cpu_info() {
  const auto& f = ssm::cpu_features();
  py::dict d;
  d["vendor"] = f.vendor;
  d["brand"] = f.brand;
  d["sse2"] = f.sse2;
  d["sse41"] = f.sse41;
  d["avx"] = f.avx;
  d["avx2"] = f.avx2;
  d["fma"] = f.fma;
  d["f16c"] = f.f16c;
  d["avx512f"] = f.avx512f;
  d["avx512dq"] = f.avx512dq;
  d["avx512bw"] = f.avx512bw;
  d["avx512vl"] = f.avx512vl;
  d["os_saves_ymm"] = f.os_saves_ymm;
  d["os_saves_zmm"] = f.os_saves_zmm;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "simdsoftmax's C++ kernels (internal; use the simdsoftmax package)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("cpu_info", &cpu_info, "CPU vendor, brand and the features the dispatcher looks at.");
  m.def("compiled_isas", &ssm::compiled_isas, "Kernel sets compiled into this build, best first.");
  m.def("supported_isas", &ssm::supported_isas, "Kernel sets this CPU and OS can run, best first.");
  m.def("get_isa", [] { return std::string(ssm::active_kernels().name); }, "The active kernel set.");
  m.def("set_isa", &ssm::set_active_isa, py::arg("name"), "Make a kernel set active (process-wide).");
  m.def("version", [] { return std::string(SSM_VERSION); });
  m.def("softmax", &softmax, py::arg("x"), py::arg("out"), py::arg("algorithm"));
  m.def("log_softmax_call", &log_softmax_call, py::arg("x"), py::arg("axis"), py::arg("out"),
        "ssm.log_softmax's fast path, as softmax_call.");
  m.def("logsumexp_call", &logsumexp_call, py::arg("x"), py::arg("axis"),
        "ssm.logsumexp's fast path: the result array, or None (the general path handles the call).");
  m.def("softmax_call", &softmax_call, py::arg("x"), py::arg("axis"), py::arg("out"), py::arg("algorithm"),
        "ssm.softmax's fast path: y, (y, special rows, n), or None for the general path.");
  m.def("log_softmax", &log_softmax, py::arg("x"), py::arg("out"));
  m.def("logsumexp", &logsumexp, py::arg("x"), py::arg("out"));
  m.def("logsumexp_weighted", &logsumexp_weighted, py::arg("x"), py::arg("b"), py::arg("out"), py::arg("sign"));
  m.def("exp", &vexp, py::arg("x"), py::arg("out"));
  m.def("softmax_strided", &softmax_strided, py::arg("x"), py::arg("out"), py::arg("algorithm"),
        "softmax over axis 1 of a C-contiguous (outer, n, inner) array, vectors across the inner axis.");
  m.def("log_softmax_strided", &log_softmax_strided, py::arg("x"), py::arg("out"));
  m.def("logsumexp_strided", &logsumexp_strided, py::arg("x"), py::arg("out"));
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Threads the kernels may use (process-wide).");
  m.def("get_num_threads", &ssm::get_num_threads);
  m.def("default_num_threads", &ssm::default_num_threads, "CPUs this process may run on.");
  m.def("runtime_settings", &runtime_settings, "Cache sizes, store policy, thresholds, chunking, threads.");
  m.def("set_store_policy", [](const std::string& p) { ssm::set_store_policy(ssm::parse_store_policy(p)); },
        py::arg("policy"), "'auto' (stream when the output is far larger than the cache), 'stream' or 'regular'.");
  m.def("resolve_auto", [](size_t n, const std::string& dtype) {
        return std::string(ssm::algorithm_name(ssm::resolve_auto(n, dtype == "float64" ? 8 : 4)));
      }, py::arg("n"), py::arg("dtype"), "The algorithm `auto` runs for rows of n elements.");
  m.def("_set_chunking", &ssm::set_chunking, py::arg("chunk_elements"), py::arg("chunked_row"),
        "Test hook: chunk size, and the row length above which rows are chunked.");
  m.def("_set_parallel_min", &ssm::set_parallel_min, py::arg("elements"),
        "Test hook: smallest call (in elements) that may use threads.");
  m.def("_set_short_rows_max", &ssm::set_short_rows_max, py::arg("n"),
        "A/B hook: longest row the short-row kernels take (0: none; above their limit: their limit).");
  m.def("_set_prefetch", [](int bytes) { ssm::g_prefetch_bytes.store(bytes < 0 ? -1 : bytes); }, py::arg("bytes"),
        "Tuning hook: software prefetch distance of the streaming passes (0: none, -1: default).");
  m.def("_tune_expsum", &tune_expsum, py::arg("x"), py::arg("variant"), py::arg("repeats") = 1,
        "Tuning hook: run an (unroll, block) instantiation of the two-pass first pass.");
  m.def("probe_read", &probe_read, py::arg("x"));
  m.def("probe_copy", &probe_copy, py::arg("x"), py::arg("out"));
  m.def("probe_write", &probe_write, py::arg("out"), py::arg("value"));
  register_gumbel(m);
  register_partials(m);
}
