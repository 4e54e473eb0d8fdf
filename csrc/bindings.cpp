// The pybind11 module simdsoftmax._core: thin. It checks that arrays are
// exactly what the kernels take (2-D, C-contiguous, float32/float64, out
// writeable) — the Python layer has already converted them — releases the
// GIL and runs the active kernel set row by row.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <vector>

#include "cpu_features.h"
#include "dispatch.h"
#include "driver.h"

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

Rows check_rows(const py::array& x) {
  if (x.ndim() != 2) throw py::value_error("x must be 2-D (rows, n)");
  require_c_contiguous(x, "x");
  return {static_cast<size_t>(x.shape(0)), static_cast<size_t>(x.shape(1))};
}

py::array_t<py::ssize_t> to_array(const std::vector<py::ssize_t>& v) {
  py::array_t<py::ssize_t> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

template <class T, class Fn>
std::vector<py::ssize_t> for_rows(const py::array& x, const py::array& y, Rows r, Fn&& fn) {
  const T* xp = static_cast<const T*>(x.data());
  T* yp = static_cast<T*>(const_cast<void*>(y.data()));
  std::vector<py::ssize_t> special;
  py::gil_scoped_release release;
  if (r.n == 0) return special;
  for (size_t i = 0; i < r.rows; ++i)
    if (!fn(xp + i * r.n, yp + i * r.n)) special.push_back(static_cast<py::ssize_t>(i));
  return special;
}

template <class T>
const Kernels<T>& kernels_for(const ssm::KernelSet& set);
template <>
const Kernels<float>& kernels_for<float>(const ssm::KernelSet& set) { return set.f32; }
template <>
const Kernels<double>& kernels_for<double>(const ssm::KernelSet& set) { return set.f64; }

template <class T>
std::vector<py::ssize_t> softmax_t(const py::array& x, const py::array& out, Rows r, ssm::Algorithm a) {
  const auto& k = kernels_for<T>(ssm::active_kernels());
  return for_rows<T>(x, out, r, [&](const T* xr, T* yr) { return ssm::softmax_row<T>(k, xr, yr, r.n, a); });
}

template <class T>
std::vector<py::ssize_t> log_softmax_t(const py::array& x, const py::array& out, Rows r) {
  const auto& k = kernels_for<T>(ssm::active_kernels());
  return for_rows<T>(x, out, r, [&](const T* xr, T* yr) { return ssm::log_softmax_row<T>(k, xr, yr, r.n); });
}

template <class T>
std::vector<py::ssize_t> logsumexp_t(const py::array& x, const py::array* b, const py::array& out,
                                     const py::array* sign, Rows r) {
  const auto& k = kernels_for<T>(ssm::active_kernels());
  const T* xp = static_cast<const T*>(x.data());
  const T* bp = b ? static_cast<const T*>(b->data()) : nullptr;
  T* op = static_cast<T*>(const_cast<void*>(out.data()));
  T* sp = sign ? static_cast<T*>(const_cast<void*>(sign->data())) : nullptr;
  std::vector<py::ssize_t> special;
  py::gil_scoped_release release;
  for (size_t i = 0; i < r.rows; ++i) {
    double lse, s;
    if (r.n == 0 || !ssm::logsumexp_row<T>(k, xp + i * r.n, bp ? bp + i * r.n : nullptr, r.n, lse, s)) {
      special.push_back(static_cast<py::ssize_t>(i));
      continue;
    }
    op[i] = static_cast<T>(lse);
    if (sp) sp[i] = static_cast<T>(s);
  }
  return special;
}

void check_out_1d(const py::array& x, const py::array& out, Rows r, const char* what) {
  if (out.ndim() != 1 || static_cast<size_t>(out.shape(0)) != r.rows || !out.dtype().equal(x.dtype()))
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

template <class T>
const Kernels<T>& active() {
  return kernels_for<T>(ssm::active_kernels());
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
    active<float>().probe_copy(static_cast<const float*>(x.data()), static_cast<float*>(y), n);
  else
    active<double>().probe_copy(static_cast<const double*>(x.data()), static_cast<double*>(y), n);
}

void probe_write(const py::array& out, double value) {
  const DType dt = dtype_of(out, "out");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  const size_t n = static_cast<size_t>(out.size());
  void* y = const_cast<void*>(out.data());
  py::gil_scoped_release release;
  if (dt == DType::F32)
    active<float>().probe_fill(static_cast<float*>(y), n, value);
  else
    active<double>().probe_fill(static_cast<double*>(y), n, value);
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
  m.def("log_softmax", &log_softmax, py::arg("x"), py::arg("out"));
  m.def("logsumexp", &logsumexp, py::arg("x"), py::arg("out"));
  m.def("logsumexp_weighted", &logsumexp_weighted, py::arg("x"), py::arg("b"), py::arg("out"), py::arg("sign"));
  m.def("exp", &vexp, py::arg("x"), py::arg("out"));
  m.def("probe_read", &probe_read, py::arg("x"));
  m.def("probe_copy", &probe_copy, py::arg("x"), py::arg("out"));
  m.def("probe_write", &probe_write, py::arg("out"), py::arg("value"));
  register_gumbel(m);
  register_partials(m);
}
