// _core.testing: test and tuning hooks (not part of the package's API).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "array_checks.h"
#include "dispatch.h"
#include "driver_rows.h"
#include "settings.h"
#include "softmax_rows.h"
#include "thread_pool.h"

void register_gumbel_testing(pybind11::module_& t);  // gumbel_bindings.cpp

namespace {

namespace py = pybind11;
using namespace ssm::bind;
using ssm::Kernels;

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

// logsumexp of one contiguous row by the active kernels' row path (no short-row
// groups, no threads) -> (lse, passes over the row, ok).
template <class T>
py::tuple lse_passes_of(const T* x, const T* b, size_t n) {
  double lse = 0.0, sign = 1.0;
  int passes = 0;
  bool ok;
  {
    py::gil_scoped_release release;
    const auto c = ssm::detail::make_ctx(active<T>(), 0);
    ok = ssm::detail::logsumexp_row(c, x, b, n, lse, sign, &passes);
  }
  return py::make_tuple(lse, passes, ok);
}

py::tuple lse_passes(const py::array& x, const py::object& b) {
  const DType dt = dtype_of(x, "x");
  if (x.ndim() != 1) throw py::value_error("x must be 1-D");
  require_c_contiguous(x, "x");
  const size_t n = static_cast<size_t>(x.shape(0));
  if (n == 0) throw py::value_error("x must not be empty");
  if (b.is_none())
    return dt == DType::F32 ? lse_passes_of(data_of<float>(x), static_cast<const float*>(nullptr), n)
                            : lse_passes_of(data_of<double>(x), static_cast<const double*>(nullptr), n);
  const py::array w = b;
  if (w.ndim() != 1 || static_cast<size_t>(w.shape(0)) != n || dtype_of(w, "b") != dt)
    throw py::value_error("b must be a 1-D array of x's shape and dtype");
  require_c_contiguous(w, "b");
  return dt == DType::F32 ? lse_passes_of(data_of<float>(x), data_of<float>(w), n)
                          : lse_passes_of(data_of<double>(x), data_of<double>(w), n);
}

// The active set's expsum_lse32 (fast: expsum_lse32_fast) over one float32
// row (one chunk) and whether it certifies log_softmax -> (m, m_lo, e, max,
// err, err_rest, certified, v) with certified 0 (no), 1 (the float32 write)
// or 2 (the float64 write), or None where the set has no such pass.
py::object lse32_sum(const py::array& x, bool fast) {
  if (dtype_of(x, "x") != DType::F32) throw py::value_error("x must be float32");
  if (x.ndim() != 1) throw py::value_error("x must be 1-D");
  require_c_contiguous(x, "x");
  const Kernels<float>& k = active<float>();
  if (fast ? !k.expsum_lse32_fast : !k.expsum_lse32) return py::none();
  ssm::ExpSum f;
  double v = 0.0;
  int certified;
  {
    py::gil_scoped_release release;
    const float* p = data_of<float>(x);
    const size_t n = static_cast<size_t>(x.shape(0));
    f = fast ? k.expsum_lse32_fast(p, nullptr, n) : k.expsum_lse32(p, n);
    certified = static_cast<int>(ssm::detail::lse32_shift(f, v));
  }
  return py::make_tuple(f.m, f.m_lo, f.e, f.max, f.err, f.err_rest, certified, v);
}

// The loop geometry of a kernel set's kernels for one dtype (see TileList).
py::dict tiles(const std::string& isa, const std::string& dtype) {
  if (dtype != "float32" && dtype != "float64") throw py::value_error("dtype must be 'float32' or 'float64'");
  const ssm::Implementation& impl = ssm::find_implementation(isa);
  const bool f32 = dtype == "float32";
  py::dict d;
  for (const ssm::TileList* list : {f32 ? &impl.softmax().f32.tiles : &impl.softmax().f64.tiles,
                                    f32 ? &impl.gumbel().f32.tiles : &impl.gumbel().f64.tiles})
    for (int i = 0; i < list->count; ++i) d[list->item[i].name] = list->item[i].elements;
  return d;
}

}  // namespace

void register_testing(py::module_& m) {
  py::module_ t = m.def_submodule("testing", "Test and tuning hooks (not part of the package's API).");
  t.def("tiles", &tiles, py::arg("isa"), py::arg("dtype"),
        "{name: elements} of a runnable kernel set's loops for 'float32' or 'float64': each kernel's main-loop "
        "step (vector lanes x unroll; the fast sums' block of unroll x block vectors), 'lanes' and "
        "'lanes_wide' (float64 lanes of the log-sum-exp passes), the strided kernels' 'strided_panel' "
        "(columns) and 'strided_rows', the expsum_fast tuning variants, and the Gumbel kernels' "
        "'gumbel.*' (lanes, group, tile, gate_span).");
  t.def("exp", &vexp, py::arg("x"), py::arg("out"), "exp(x) by the active kernel set's exp of the written values.");
  t.def("set_store_policy", [](const std::string& p) { ssm::set_store_policy(ssm::parse_store_policy(p)); },
        py::arg("policy"), "'auto' (stream when the output is far larger than the cache), 'stream' or 'regular'.");
  t.def("set_chunking", &ssm::set_chunking, py::arg("chunk_elements"), py::arg("chunked_row"),
        "Chunk size, and the row length above which rows are chunked.");
  t.def("set_parallel_min", &ssm::set_parallel_min, py::arg("elements"),
        "Smallest call (in elements) that may use threads.");
  t.def("wake_latency_ns", &ssm::wake_latency_ns,
        "Measured time (ns, moving average) a sleeping pool worker takes to join a call.");
  t.def("set_short_rows_max", &ssm::set_short_rows_max, py::arg("n"),
        "A/B hook: longest row the short-row kernels take (0: none; above their limit: their limit).");
  t.def("set_prefetch", [](int bytes) { ssm::g_prefetch_bytes.store(bytes < 0 ? -1 : bytes); }, py::arg("bytes"),
        "Software prefetch distance of the streaming passes (0: none, -1: default).");
  t.def("tune_expsum", &tune_expsum, py::arg("x"), py::arg("variant"), py::arg("repeats") = 1,
        "Run an (unroll, block) instantiation of the two-pass first pass -> (name, m, e).");
  t.def("set_lse_vector_tier", [](bool on) { ssm::g_lse_vector_tier.store(on); }, py::arg("on"),
        "Test hook: False sends the row path's near-zero log-sum-exp rows straight to the scalar double-double "
        "sum (the short-row kernels keep their vector tier).");
  t.def("lse_passes", &lse_passes, py::arg("x"), py::arg("b") = py::none(),
        "logsumexp of a 1-D float32/float64 row (b: weights of its shape and dtype, or None) by the active "
        "kernel set's row path -> (lse, passes, ok): passes is how many passes over the row it took (1: "
        "the fast sum certified the result; near lse = 0 the last is the vector double-double sum, or that "
        "and the scalar one).");
  t.def("lse32_sum", &lse32_sum, py::arg("x"), py::arg("fast") = false,
        "The active kernel set's float32 table-exp log_softmax pass (fast: the one with the one-float table) over "
        "a 1-D float32 row -> (m, m_lo, e, max, err, err_rest, certified, v), or None where the set has none.");
  t.def("lse32_retry", [](double m, double m_lo, double e, double max, double err, double err_rest) {
          ssm::ExpSum f;
          f.m = m; f.m_lo = m_lo; f.e = e; f.max = max; f.err = err; f.err_rest = err_rest;
          return ssm::detail::lse32_retry(f, active<float>().lse32_err_rest);
        },
        py::arg("m"), py::arg("m_lo"), py::arg("e"), py::arg("max"), py::arg("err"), py::arg("err_rest"),
        "Would the row whose expsum_lse32_fast sum this is be retried with expsum_lse32 (log_softmax's driver)?");
  register_gumbel_testing(t);
}
