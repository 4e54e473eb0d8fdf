// pybind11 bindings of sample() and topk() (registered into _core by
// bindings.cpp). Rows are the last axis of 2-D C-contiguous float32/float64
// arrays; python/simdsoftmax/_sample.py checks and broadcasts the parameters.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "one_call.h"
#include "sample_driver.h"

namespace py = pybind11;

namespace {

void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

template <class A>
const A& row_array(const A& a, size_t rows, const char* what) {
  require(a.ndim() == 1 && static_cast<size_t>(a.shape(0)) == rows, std::string(what) + " must have one entry per row");
  require((a.flags() & py::array::c_style) != 0, std::string(what) + " must be contiguous");
  return a;
}

bool rows_of(const py::array& x, size_t& rows, size_t& n) {
  require(x.ndim() == 2 && (x.flags() & py::array::c_style) != 0, "x must be 2-D and C-contiguous");
  const bool f32 = py::isinstance<py::array_t<float>>(x);
  require(f32 || py::isinstance<py::array_t<double>>(x), "x must be float32 or float64");
  rows = static_cast<size_t>(x.shape(0));
  n = static_cast<size_t>(x.shape(1));
  return f32;
}

py::tuple sample_call(const py::array& x, const py::array_t<double>& temperature, const py::array_t<int64_t>& top_k,
                      const py::array_t<double>& top_p, const py::array_t<double>& min_p,
                      const py::array_t<uint64_t>& keys, bool per_row_keys, int logprobs) {
  size_t rows, n;
  const bool f32 = rows_of(x, rows, n);
  require(n > 0 || rows == 0, "rows must not be empty");
  row_array(temperature, rows, "temperature");
  row_array(top_k, rows, "top_k");
  row_array(top_p, rows, "top_p");
  row_array(min_p, rows, "min_p");
  require(keys.ndim() == 2 && keys.shape(1) == 3 && (keys.flags() & py::array::c_style) != 0 &&
              static_cast<size_t>(keys.shape(0)) == (per_row_keys ? rows : 1),
          "keys must be (rows or 1, 3)");
  require(logprobs >= 0 && logprobs <= 2, "logprobs must be 0, 1 or 2");
  std::vector<ssm::GumbelKey> key(static_cast<size_t>(keys.shape(0)));
  const uint64_t* kp = keys.data();
  for (size_t i = 0; i < key.size(); ++i) {
    key[i].k0 = static_cast<uint32_t>(kp[3 * i]);
    key[i].k1 = static_cast<uint32_t>(kp[3 * i + 1]);
    key[i].row_offset = kp[3 * i + 2];
  }
  ssm::SampleRequest req{temperature.data(), top_k.data(), top_p.data(), min_p.data(), key.data(), per_row_keys,
                         logprobs};
  py::array_t<int64_t> token(static_cast<py::ssize_t>(rows));
  py::object lp = py::none();
  double* lpp = nullptr;
  if (logprobs) {
    py::array_t<double> a(static_cast<py::ssize_t>(rows));
    lpp = a.mutable_data();
    lp = a;
  }
  int64_t* tp = token.mutable_data();
  ssm::RowStatus st;
  {
    py::gil_scoped_release release;
    st = f32 ? ssm::sample_batch<float>(static_cast<const float*>(x.data()), rows, n, req, tp, lpp)
             : ssm::sample_batch<double>(static_cast<const double*>(x.data()), rows, n, req, tp, lpp);
  }
  if (st.first >= 0) return py::make_tuple(st.first, st.second, py::none(), py::none());
  return py::make_tuple(st.first, st.second, token, lp);
}

// One entry of a setting: a Python number as ssm::real_number takes it, or
// for top_k (int64_t) an exact int.
bool setting_number(py::handle v, double& out) { return ssm::real_number(v, out); }
bool setting_number(py::handle v, int64_t& out) {
  long long k = 0;
  if (!ssm::int_in(v, INT64_MIN, INT64_MAX, k)) return false;
  out = static_cast<int64_t>(k);
  return true;
}

// `count` elements of type `elem` at p into out (float32 / float64 to a
// double setting, int64 to top_k's); false for any other pairing.
template <class T>
bool copy_entries(ssm::interop::Elem elem, const void* p, size_t count, std::vector<T>& out) {
  using ssm::interop::Elem;
  out.resize(count);
  if constexpr (std::is_same_v<T, int64_t>) {
    if (elem != Elem::I64) return false;
    std::copy_n(static_cast<const int64_t*>(p), count, out.data());
  } else if (elem == Elem::F64) {
    std::copy_n(static_cast<const double*>(p), count, out.data());
  } else if (elem == Elem::F32) {
    std::copy_n(static_cast<const float*>(p), count, out.data());
  } else {
    return false;
  }
  return true;
}

// One setting of sample()'s one-step call as a value per row in `out`
// (copied: the kernels read it without the GIL, while the caller's array may
// change): None (`fallback` for every row), a Python number, or one entry per
// row: an array of x's library (an ndarray, not a subclass, or a plain CPU
// torch tensor: mixed types are the general path's TypeError) of the batch
// shape x.shape[:-1], C-contiguous and aligned, float32 or float64 (int64
// for top_k), or a list or tuple of Python numbers when the batch is 1-D.
// false for anything else (the general path converts it or raises the error
// naming it); ranges are checked by the caller.
template <class T>
bool row_setting(py::handle v, const ssm::OneCallInput& x, T fallback, std::vector<T>& out) {
  using ssm::interop::Elem;
  const size_t rows = x.rows();
  const int nd = x.in.ndim - 1;  // the batch's axes
  T one = fallback;
  if (v.is_none() || setting_number(v, one)) {
    out.assign(rows, one);
    return true;
  }
  if (PyList_CheckExact(v.ptr()) || PyTuple_CheckExact(v.ptr())) {
    PyObject* seq = v.ptr();
    const bool list = PyList_CheckExact(seq);
    if (nd != 1 || static_cast<size_t>(list ? PyList_GET_SIZE(seq) : PyTuple_GET_SIZE(seq)) != rows) return false;
    out.resize(rows);
    for (size_t r = 0; r < rows; ++r) {
      const auto i = static_cast<Py_ssize_t>(r);
      if (!setting_number(list ? PyList_GET_ITEM(seq, i) : PyTuple_GET_ITEM(seq, i), out[r])) return false;
    }
    return true;
  }
  const auto& api = py::detail::npy_api::get();
  if (Py_TYPE(v.ptr()) == api.PyArray_Type_) {
    if (x.torch) return false;
    const auto* proxy = py::detail::array_proxy(v.ptr());
    constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if (proxy->nd != nd || (proxy->flags & kFlags) != kFlags ||
        !std::equal(x.in.shape, x.in.shape + nd, proxy->dimensions))
      return false;
    const auto a = py::reinterpret_borrow<py::array>(v);
    if (py::isinstance<py::array_t<double>>(a)) return copy_entries(Elem::F64, proxy->data, rows, out);
    if (py::isinstance<py::array_t<float>>(a)) return copy_entries(Elem::F32, proxy->data, rows, out);
    if (py::isinstance<py::array_t<int64_t>>(a)) return copy_entries(Elem::I64, proxy->data, rows, out);
    return false;
  }
  ssm::interop::Input t;
  if (!x.torch || !ssm::interop::read_tensor(v.ptr(), t, true) || t.ndim != nd ||
      !std::equal(x.in.shape, x.in.shape + nd, t.shape))
    return false;
  return copy_entries(t.elem, t.data, rows, out);
}

// The draw's keys: one for the call, or one per row as ssm::rng_entries
// takes them, each as ssm::rng_key draws it, in row order (an entry it
// refuses raises _key's error after the entries before it are drawn, as on
// the general path). false, nothing drawn, for a sequence it does not take.
bool draw_keys(py::handle rng, size_t rows, std::vector<ssm::GumbelKey>& keys, bool& per_row) {
  const int entries = ssm::rng_entries(rng, rows);
  if (entries < 0) return false;
  per_row = entries == 1;
  if (!per_row) {
    keys.assign(1, ssm::rng_key(rng));
    return true;
  }
  const auto seq = py::reinterpret_borrow<py::sequence>(rng);
  keys.resize(rows);
  for (size_t r = 0; r < rows; ++r) keys[r] = ssm::rng_key(seq[r]);
  return true;
}

// sample()'s common call in one step: x and axis as ssm::one_call_input
// takes them (else None, nothing drawn: the caller takes its general path),
// each setting as row_setting takes it and in range (else None, as before),
// the rng as draw_keys takes it (keys drawn here, after the checks) -> (first bad
// row or -1, reason, tokens of x.shape[:-1] or None, logprobs of x's dtype
// and that shape, or None), in x's library: intp arrays (NumPy scalars for
// one row) or torch int64 tensors.
py::object sample_one_call(const py::handle& xh, const py::handle& axis, const py::handle& temperature,
                           const py::handle& top_k, const py::handle& top_p, const py::handle& min_p,
                           const py::handle& rng, int logprobs) {
  ssm::OneCallInput x;
  if (!ssm::one_call_input(xh, axis, x)) return py::none();
  const size_t n = x.n(), rows = x.rows();
  const bool f32 = x.f32;
  require(logprobs >= 0 && logprobs <= 2, "logprobs must be 0, 1 or 2");
  std::vector<double> t, p, m;
  std::vector<int64_t> k;
  if (!row_setting(temperature, x, 1.0, t) || !row_setting(top_k, x, int64_t{0}, k) ||
      !row_setting(top_p, x, 1.0, p) || !row_setting(min_p, x, 0.0, m))
    return py::none();
  // NaN fails every test
  const bool in_range = std::all_of(t.begin(), t.end(), [](double v) { return v >= 0 && v < HUGE_VAL; }) &&
                        std::all_of(k.begin(), k.end(), [](int64_t v) { return v >= 0; }) &&
                        std::all_of(p.begin(), p.end(), [](double v) { return v > 0 && v <= 1; }) &&
                        std::all_of(m.begin(), m.end(), [](double v) { return v >= 0 && v <= 1; });
  if (!in_range) return py::none();
  for (int64_t& v : k) v = std::min<int64_t>(v, static_cast<int64_t>(n));  // k >= n keeps every token
  std::vector<ssm::GumbelKey> keys;
  bool per_row = false;
  if (!draw_keys(rng, rows, keys, per_row)) return py::none();
  const ssm::SampleRequest req{t.data(), k.data(), p.data(), m.data(), keys.data(), per_row, logprobs};
  static_assert(sizeof(py::ssize_t) == sizeof(int64_t), "intp tokens are written as int64");
  ssm::OneCallResult token(x, ssm::OneCallResult::Index);
  std::unique_ptr<ssm::OneCallResult> lp;
  // float64 logprobs straight into the result, float32 ones through a copy
  std::vector<double> lp_buf(logprobs && f32 ? rows : 0);
  double* lpp = nullptr;
  if (logprobs) {
    lp = std::make_unique<ssm::OneCallResult>(x, ssm::OneCallResult::Value);
    lpp = f32 ? lp_buf.data() : static_cast<double*>(lp->data());
  }
  auto* tp = static_cast<int64_t*>(token.data());
  ssm::RowStatus st;
  {
    py::gil_scoped_release release;
    st = f32 ? ssm::sample_batch<float>(reinterpret_cast<const float*>(x.in.data), rows, n, req, tp, lpp)
             : ssm::sample_batch<double>(reinterpret_cast<const double*>(x.in.data), rows, n, req, tp, lpp);
  }
  if (st.first >= 0) return py::make_tuple(st.first, st.second, py::none(), py::none());
  if (logprobs && f32) {
    auto* out = static_cast<float*>(lp->data());
    for (size_t r = 0; r < rows; ++r) out[r] = static_cast<float>(lp_buf[r]);
  }
  return py::make_tuple(st.first, st.second, token.finish(), lp ? lp->finish() : py::none());
}

py::tuple topk_call(const py::array& x, size_t k) {
  size_t rows, n;
  const bool f32 = rows_of(x, rows, n);
  require(k >= 1 && k <= n, "k must be in [1, n]");
  const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(k)};
  py::array value(x.dtype(), shape);
  py::array_t<int64_t> index(shape);
  void* vp = value.mutable_data();
  int64_t* ip = index.mutable_data();
  ssm::RowStatus st;
  {
    py::gil_scoped_release release;
    st = f32 ? ssm::topk_batch<float>(static_cast<const float*>(x.data()), rows, n, k, static_cast<float*>(vp), ip)
             : ssm::topk_batch<double>(static_cast<const double*>(x.data()), rows, n, k, static_cast<double*>(vp), ip);
  }
  if (st.first >= 0) return py::make_tuple(st.first, st.second, py::none(), py::none());
  return py::make_tuple(st.first, st.second, value, index);
}

// topk()'s common call in one step: x and axis as ssm::one_call_input takes
// them and k an int in [1, n] (else None: the caller takes its general path)
// -> (first bad row or -1, reason, values, indices) of x.shape[:-1] + (k,)
// in x's library (indices intp, or torch int64), or None for both when a
// row is bad.
py::object topk_one_call(const py::handle& xh, const py::handle& axis, const py::handle& kh) {
  ssm::OneCallInput x;
  if (!ssm::one_call_input(xh, axis, x) || !PyLong_CheckExact(kh.ptr())) return py::none();
  const size_t n = x.n(), rows = x.rows();
  int overflow = 0;
  const long long k = PyLong_AsLongLongAndOverflow(kh.ptr(), &overflow);
  if (overflow || k < 1 || static_cast<unsigned long long>(k) > n) {
    PyErr_Clear();
    return py::none();
  }
  ssm::OneCallResult value(x, ssm::OneCallResult::Value, k), index(x, ssm::OneCallResult::Index, k);
  auto* ip = static_cast<int64_t*>(index.data());
  const size_t kk = static_cast<size_t>(k);
  ssm::RowStatus st;
  {
    py::gil_scoped_release release;
    st = x.f32 ? ssm::topk_batch<float>(reinterpret_cast<const float*>(x.in.data), rows, n, kk,
                                        static_cast<float*>(value.data()), ip)
               : ssm::topk_batch<double>(reinterpret_cast<const double*>(x.in.data), rows, n, kk,
                                         static_cast<double*>(value.data()), ip);
  }
  if (st.first >= 0) return py::make_tuple(st.first, st.second, py::none(), py::none());
  return py::make_tuple(st.first, st.second, value.finish(), index.finish());
}

double top_p_floor_call(const py::array& x, double temperature, double top_p, bool exact) {
  size_t rows, n;
  const bool f32 = rows_of(x, rows, n);
  require(rows == 1 && n > 0 && temperature > 0, "one non-empty row and temperature > 0");
  py::gil_scoped_release release;
  return f32 ? ssm::top_p_floor<float>(static_cast<const float*>(x.data()), n, temperature, top_p, exact)
             : ssm::top_p_floor<double>(static_cast<const double*>(x.data()), n, temperature, top_p, exact);
}

std::array<double, 5> top_p_coarse_call(const py::array_t<float>& x, double ref, double inv_temp, double pivot,
                                        bool find_max) {
  require(x.ndim() == 1 && (x.flags() & py::array::c_style) != 0, "x must be 1-D, contiguous float32");
  py::gil_scoped_release release;
  return ssm::top_p_coarse(x.data(), static_cast<size_t>(x.shape(0)), ref, inv_temp, pivot, find_max);
}

uint64_t estimate_collect_call(const py::array_t<float>& x, double ref, double inv_temp, double pivot, double clo,
                               double chi, py::array_t<double>& out, size_t cap) {
  require(x.ndim() == 1 && (x.flags() & py::array::c_style) != 0, "x must be 1-D, contiguous float32");
  require(out.ndim() == 1 && (out.flags() & py::array::c_style) != 0 && static_cast<size_t>(out.shape(0)) >= cap,
          "out must be 1-D, contiguous float64, with room for cap values");
  double* o = out.mutable_data();
  py::gil_scoped_release release;
  return ssm::top_p_estimate_collect(x.data(), static_cast<size_t>(x.shape(0)), ref, inv_temp, pivot, clo, chi, o,
                                     cap);
}

uint64_t collect_call(const py::array& x, double clo, double chi, py::array_t<double>& out, size_t cap) {
  const bool f32 = x.dtype().is(py::dtype::of<float>()), f64 = x.dtype().is(py::dtype::of<double>());
  require(x.ndim() == 1 && (x.flags() & py::array::c_style) != 0 && (f32 || f64),
          "x must be 1-D, contiguous float32 or float64");
  require(out.ndim() == 1 && (out.flags() & py::array::c_style) != 0 && static_cast<size_t>(out.shape(0)) >= cap,
          "out must be 1-D, contiguous float64, with room for cap values");
  double* o = out.mutable_data();
  const size_t n = static_cast<size_t>(x.shape(0));
  const void* p = x.data();
  py::gil_scoped_release release;
  return f32 ? ssm::top_p_collect(static_cast<const float*>(p), n, clo, chi, o, cap)
             : ssm::top_p_collect(static_cast<const double*>(p), n, clo, chi, o, cap);
}

}  // namespace

void register_sample(py::module_& m) {
  m.def("sample", &sample_call, py::arg("x"), py::arg("temperature"), py::arg("top_k"), py::arg("top_p"),
        py::arg("min_p"), py::arg("keys"), py::arg("per_row_keys"), py::arg("logprobs"),
        "Filtered Gumbel-max sampling per row -> (bad row or -1, reason, tokens or None, logprobs or None).");
  m.def("sample_call", &sample_one_call, py::arg("x"), py::arg("axis"), py::arg("temperature"), py::arg("top_k"),
        py::arg("top_p"), py::arg("min_p"), py::arg("rng"), py::arg("logprobs"),
        "sample() in one step, settings scalar or per row -> None (x, axis or a setting is not one it takes: "
        "nothing drawn), or (bad row or -1, reason, tokens or None, logprobs or None).");
  m.def("sample_top_k_draw", &ssm::set_top_k_draw, py::arg("how"),
        "Testing: top-k's draw by the rule (0), on the candidates' own noise (1) or by the masked pass (2) -> "
        "the previous setting.");
  m.def("sample_select_method", &ssm::set_select_method, py::arg("how"),
        "Testing: the k-best selection by the rule (0), the candidate buffer wherever it applies (1) or the "
        "heap (2) -> the previous setting.");
  m.def("sample_top_p_estimates", &ssm::set_top_p_estimates, py::arg("on"),
        "Testing: top-p's estimate pass on or off (the exact passes alone) -> the previous setting.");
  m.def("sample_top_p_estimate_counts", &ssm::top_p_estimate_counts,
        "Testing: (rows whose threshold the estimate pass decided, rows its bounds left undecided).");
  m.def("sample_top_p_draw_first", &ssm::set_top_p_draw_first, py::arg("on"),
        "Testing: top-p's draw first (the winner checked against the filters before any threshold search) on "
        "or off -> the previous setting.");
  m.def("sample_top_p_next_best_counts", &ssm::top_p_next_best_counts,
        "Testing: top-p's next candidates (the draw's next best scores) tried after a dropped winner: (kept, "
        "dropped, left open by the bounds).");
  m.def("sample_top_p_draw_first_counts", &ssm::top_p_draw_first_counts,
        "Testing: (winners decided kept, decided filtered out, left open by the estimate's bounds).");
  m.def("sample_top_p_floor", &top_p_floor_call, py::arg("x"), py::arg("temperature"), py::arg("top_p"),
        py::arg("exact"),
        "Testing: top-p's threshold (smallest kept logit) of one row (1, n) with a finite max, from the exact "
        "passes alone or as sample() finds it.");
  m.def("sample_top_p_coarse", &top_p_coarse_call, py::arg("x"), py::arg("ref"), py::arg("inv_temp"),
        py::arg("pivot"), py::arg("find_max") = true,
        "Testing: the draw-first test's coarse masses of a 1-D float32 row (one chunk) relative to ref -> "
        "(ok, above pivot, not above, rounding bound, max; -inf without find_max); the kernel set with no "
        "such pass: ok = 0.");
  m.def("sample_top_p_estimate_collect", &estimate_collect_call, py::arg("x"), py::arg("ref"), py::arg("inv_temp"),
        py::arg("pivot"), py::arg("clo"), py::arg("chi"), py::arg("out"), py::arg("cap"),
        "Testing: top-p's estimate pass over a 1-D float32 row (one chunk), its values in (clo, chi] into "
        "out[:cap] in row order while they fit -> how many there are.");
  m.def("sample_top_p_collect", &collect_call, py::arg("x"), py::arg("clo"), py::arg("chi"), py::arg("out"),
        py::arg("cap"),
        "Testing: top-p's collect pass (no masses) over a 1-D float32 or float64 row (one chunk), its values in "
        "(clo, chi] into out[:cap] in row order while they fit -> how many there are.");
  m.def("topk_call", &topk_one_call, py::arg("x"), py::arg("axis"), py::arg("k"),
        "topk() in one step -> None (x, axis or k is not one it takes), or (bad row or -1, reason, values or "
        "None, indices or None) in x's library.");
  m.def("topk", &topk_call, py::arg("x"), py::arg("k"),
        "The k largest per row, descending, lower index first on ties -> (bad row or -1, reason, values, indices).");
}
