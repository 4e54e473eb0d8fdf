// The pybind11 module simdsoftmax._core: thin. It checks that arrays are
// exactly what the kernels take (array_checks.h; the Python layer has already
// converted them), releases the GIL and calls the drivers (driver.h) with the
// active kernel set. The rest of the module is registered from
// numpy_fast_path.cpp (the one-call fast paths), gumbel_bindings.cpp,
// partials_bindings.cpp (simdsoftmax.dask) and testing_bindings.cpp
// (_core.testing).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "cache_info.h"
#include "cpu_features.h"
#include "array_checks.h"
#include "dispatch.h"
#include "driver.h"
#include "thread_pool.h"

namespace py = pybind11;

void register_cache(py::module_& m);      // cache_bindings.cpp
void register_fast_path(py::module_& m);  // numpy_fast_path.cpp
void register_gumbel(py::module_& m);     // gumbel_bindings.cpp
void register_half(py::module_& m);       // half_bindings.cpp
void register_partials(py::module_& m);   // partials_bindings.cpp
void register_sample(py::module_& m);     // sample_bindings.cpp
void register_testing(py::module_& m);    // testing_bindings.cpp
void register_tensor_fast_path(py::module_& m);  // tensor_fast_path.cpp

namespace {

using namespace ssm::bind;
using ssm::Kernels;


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

py::dict cpu_info() {
  const auto& f = ssm::cpu_features();
  py::dict d;
  d["vendor"] = f.vendor;
  d["brand"] = f.brand;
  // The features of this build's architecture only, so the runtime report
  // lists as missing only what the dispatcher could have used here.
#if defined(__aarch64__) || defined(_M_ARM64)
  d["neon"] = f.neon;
#else
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
  d["avx512bf16"] = f.avx512bf16;
  d["os_saves_ymm"] = f.os_saves_ymm;
  d["os_saves_zmm"] = f.os_saves_zmm;
#endif
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
  m.def("get_isa", [] { return std::string(ssm::active_implementation().name); },
        "The kernel set calls on this thread use.");
  m.def("set_isa", &ssm::set_active_isa, py::arg("name"), "Make a kernel set active (process-wide).");
  m.def("process_isa", &ssm::process_isa, "The process-wide kernel set (threads without an override use it).");
  m.def("set_thread_isa", &ssm::set_thread_isa, py::arg("name"),
        "Override the kernel set for the calling thread ('': no override, the process-wide set applies).");
  m.def("thread_isa", &ssm::thread_isa, "The calling thread's override, or ''.");
  m.attr("ISA_NAMES") = py::tuple(py::cast(ssm::known_isas()));
  m.attr("ALGORITHMS") = py::tuple(py::cast(ssm::algorithm_names()));
  m.def("version", [] { return std::string(SSM_VERSION); });
  m.def("softmax", &softmax, py::arg("x"), py::arg("out"), py::arg("algorithm"));
  m.def("log_softmax", &log_softmax, py::arg("x"), py::arg("out"));
  m.def("logsumexp", &logsumexp, py::arg("x"), py::arg("out"));
  m.def("logsumexp_weighted", &logsumexp_weighted, py::arg("x"), py::arg("b"), py::arg("out"), py::arg("sign"));
  m.def("softmax_strided", &softmax_strided, py::arg("x"), py::arg("out"), py::arg("algorithm"),
        "softmax over axis 1 of a C-contiguous (outer, n, inner) array, vectors across the inner axis.");
  m.def("log_softmax_strided", &log_softmax_strided, py::arg("x"), py::arg("out"));
  m.def("logsumexp_strided", &logsumexp_strided, py::arg("x"), py::arg("out"));
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Threads the kernels may use (process-wide).");
  m.def("get_num_threads", &ssm::get_num_threads);
  m.def("default_num_threads", &ssm::default_num_threads, "CPUs this process may run on.");
  m.def("runtime_settings", &runtime_settings, "Cache sizes, store policy, thresholds, chunking, threads.");
  m.def("resolve_auto", [](size_t n, const std::string& dtype) {
        return std::string(ssm::algorithm_name(ssm::resolve_auto(n, dtype == "float64" ? 8 : 4)));
      }, py::arg("n"), py::arg("dtype"), "The algorithm `auto` runs for rows of n elements.");
  m.def("probe_read", &probe_read, py::arg("x"));
  m.def("probe_copy", &probe_copy, py::arg("x"), py::arg("out"));
  m.def("probe_write", &probe_write, py::arg("out"), py::arg("value"));
  register_cache(m);
  register_fast_path(m);
  register_gumbel(m);
  register_partials(m);
  register_half(m);
  register_sample(m);
  register_testing(m);
  register_tensor_fast_path(m);
}
