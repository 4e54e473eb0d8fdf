// pybind11 bindings of the Gumbel family (registered into _core by
// bindings.cpp): argument checks, then the Gumbel driver (gumbel_driver.h)
// with the GIL released. Rows are the last axis of 2-D C-contiguous arrays;
// row_base and col_base give the global position of x[0, 0] (so a block of a
// larger array, e.g. a Dask chunk, draws exactly the noise the whole array
// would).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dispatch.h"
#include "gumbel_driver.h"
#include "one_call.h"

namespace py = pybind11;

namespace {

using ssm::GumbelKernels;
using ssm::GumbelKey;
using ssm::gumbel_for;
using ssm::int_in;
using ssm::real_number;

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
using Status = ssm::GumbelStatus;
static_assert(sizeof(py::ssize_t) == sizeof(std::ptrdiff_t), "intp is ptrdiff_t");

template <class T>
Status topk_t(const T* xp, size_t rows, size_t n, size_t k, double inv_temp, const GumbelKey& key, py::ssize_t* ip,
              double* sp, bool prune, uint64_t row_base, uint64_t col_base) {
  const auto& kern = gumbel_for<T>(ssm::active_gumbel());
  py::gil_scoped_release release;
  return ssm::gumbel_topk_rows<T>(kern, xp, rows, n, k, inv_temp, key, reinterpret_cast<std::ptrdiff_t*>(ip), sp,
                                  prune, row_base, col_base);
}

template <class T>
Status softmax_t(const T* xp, T* yp, size_t rows, size_t n, double inv_tau, const GumbelKey& key, uint64_t row_base,
                 uint64_t col_base, bool fresh) {
  const auto& kern = gumbel_for<T>(ssm::active_gumbel());
  py::gil_scoped_release release;
  return ssm::gumbel_softmax_rows<T>(kern, xp, yp, rows, n, inv_tau, key, row_base, col_base, fresh);
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

// NumPy's bitgen_t (numpy/random/bitgen.h, part of its C API): what a
// BitGenerator's `capsule` ("BitGenerator") points to.
struct NumpyBitGen {
  void* state;
  uint64_t (*next_uint64)(void*);
  uint32_t (*next_uint32)(void*);
  double (*next_double)(void*);
  uint64_t (*next_raw)(void*);
};

// Set once at import by simdsoftmax._gumbel (set_rng_key_source); the
// references are kept for the life of the process.
struct KeySource {
  PyObject* generator = nullptr;  // numpy.random.Generator
  PyObject* raw64[8] = {};        // bit generator types whose raw outputs are 64-bit words
  size_t raw64_count = 0;
  PyObject* key_fn = nullptr;  // _gumbel._key, for every other rng
  PyObject *bit_generator = nullptr, *capsule = nullptr, *lock = nullptr, *acquire = nullptr, *release = nullptr;
};
KeySource key_source;

void set_rng_key_source(const py::object& generator, const py::tuple& raw64, const py::object& key_fn) {
  require(raw64.size() <= 8, "at most 8 raw-64 bit generator types");
  key_source.generator = generator.inc_ref().ptr();
  key_source.raw64_count = 0;
  for (const py::handle t : raw64) key_source.raw64[key_source.raw64_count++] = t.inc_ref().ptr();
  key_source.key_fn = key_fn.inc_ref().ptr();
  key_source.bit_generator = PyUnicode_InternFromString("bit_generator");
  key_source.capsule = PyUnicode_InternFromString("capsule");
  key_source.lock = PyUnicode_InternFromString("lock");
  key_source.acquire = PyUnicode_InternFromString("acquire");
  key_source.release = PyUnicode_InternFromString("release");
}

py::object checked(PyObject* p) {
  if (p == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(p);
}

bool is_raw64(PyObject* type) {
  for (size_t i = 0; i < key_source.raw64_count; ++i)
    if (key_source.raw64[i] == type) return true;
  return false;
}

// The fast path of _gumbel._key: bits.random_raw() twice (under the bit
// generator's lock, as random_raw takes it), without the Python calls.
bool raw64_key(py::handle rng, GumbelKey& key) {
  const KeySource& s = key_source;
  if (s.generator == nullptr || reinterpret_cast<PyObject*>(Py_TYPE(rng.ptr())) != s.generator) return false;
  const py::object bits = checked(PyObject_GetAttr(rng.ptr(), s.bit_generator));
  if (!is_raw64(reinterpret_cast<PyObject*>(Py_TYPE(bits.ptr())))) return false;
  const py::object capsule = checked(PyObject_GetAttr(bits.ptr(), s.capsule));
  auto* gen = static_cast<NumpyBitGen*>(PyCapsule_GetPointer(capsule.ptr(), "BitGenerator"));
  if (gen == nullptr) throw py::error_already_set();
  const py::object lock = checked(PyObject_GetAttr(bits.ptr(), s.lock));
  checked(PyObject_CallMethodObjArgs(lock.ptr(), s.acquire, nullptr));
  const uint64_t lo = gen->next_raw(gen->state), offset = gen->next_raw(gen->state);
  checked(PyObject_CallMethodObjArgs(lock.ptr(), s.release, nullptr));
  key = make_key(static_cast<uint32_t>(lo), static_cast<uint32_t>(lo >> 32), offset);
  return true;
}

// gumbel_argmax's and gumbel_topk's common call in one step, checked here:
// x as ssm::one_call_input takes it, temperature a finite int or float > 0,
// k an int in [1, n] (1 for argmax), rng as ssm::rng_entries takes it (per
// row, gumbel_topk only: row r drawn as the call on x's row r alone, its key
// drawn just before it, so a bad row leaves the later rows' rngs untouched,
// as the general path's loop of such calls does). -> None when any of that fails (nothing drawn from rng: the
// caller takes its general path), else (first bad row, reason) when a row is
// bad, else the indices of x.shape[:-1] (argmax; a NumPy scalar for one row)
// or x.shape[:-1] + (k,): intp, or torch int64 for a tensor.
py::object gumbel_topk_call(const py::handle& xh, const py::handle& axis, const py::handle& kh, bool argmax,
                            const py::handle& temperature, const py::handle& rng) {
  ssm::OneCallInput x;
  if (!ssm::one_call_input(xh, axis, x)) return py::none();
  const size_t n = x.n(), rows = x.rows();
  long long k = 0;
  double t = 0;
  if (!int_in(kh, 1, argmax ? 1 : static_cast<long long>(n), k) || !real_number(temperature, t) ||
      !(t > 0 && t < HUGE_VAL))
    return py::none();
  const int per_row = ssm::rng_entries(rng, rows);
  if (per_row < 0 || (per_row == 1 && argmax)) return py::none();  // per-row argmax: sample()'s
  ssm::OneCallResult idx(x, ssm::OneCallResult::Index, argmax ? 0 : k);
  static_assert(sizeof(py::ssize_t) == sizeof(int64_t), "intp indices are written as torch's int64");
  auto* ip = static_cast<py::ssize_t*>(idx.data());
  const size_t kk = static_cast<size_t>(k);
  const auto run = [&](size_t first, size_t count, const GumbelKey& key) {
    return x.f32 ? topk_t<float>(reinterpret_cast<const float*>(x.in.data) + first * n, count, n, kk, 1.0 / t, key,
                                 ip + first * kk, nullptr, true, 0, 0)
                 : topk_t<double>(reinterpret_cast<const double*>(x.in.data) + first * n, count, n, kk, 1.0 / t,
                                  key, ip + first * kk, nullptr, true, 0, 0);
  };
  if (per_row == 0) {
    const Status st = run(0, rows, ssm::rng_key(rng));
    if (st.first >= 0) return py::make_tuple(st.first, st.second);
  } else {
    const auto entries = py::reinterpret_borrow<py::sequence>(rng);
    for (size_t r = 0; r < rows; ++r) {
      const Status st = run(r, 1, ssm::rng_key(entries[r]));
      if (st.first >= 0) return py::make_tuple(static_cast<int64_t>(r), st.second);
    }
  }
  return idx.finish();
}

Status gumbel_softmax(const py::array& x, const py::array& out, double inv_tau, uint32_t k0, uint32_t k1,
                      uint64_t row_offset, uint64_t row_base, uint64_t col_base, bool fresh) {
  const bool f32 = is_f32(x, "x");
  check_2d(x, "x");
  check_out(out, x.shape(0), x.shape(1), "out");
  require(out.dtype().equal(x.dtype()), "out must have the dtype of x");
  require(x.shape(1) > 0, "rows must not be empty");
  const GumbelKey key = make_key(k0, k1, row_offset);
  const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
  void* yp = const_cast<void*>(out.data());
  return f32 ? softmax_t<float>(static_cast<const float*>(x.data()), static_cast<float*>(yp), rows, n, inv_tau, key,
                                row_base, col_base, fresh)
             : softmax_t<double>(static_cast<const double*>(x.data()), static_cast<double*>(yp), rows, n, inv_tau, key,
                                 row_base, col_base, fresh);
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
  const bool fresh = out.is_none();  // a bad row drops it: no need to check the rows first
  const Status st =
      r.f32 ? softmax_t<float>(static_cast<const float*>(x.data()), static_cast<float*>(yp), r.rows, r.n, inv_tau, key,
                               0, 0, fresh)
            : softmax_t<double>(static_cast<const double*>(x.data()), static_cast<double*>(yp), r.rows, r.n, inv_tau,
                                key, 0, 0, fresh);
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

bool ssm::real_number(py::handle v, double& out) {
  if (PyFloat_Check(v.ptr())) {
    out = PyFloat_AS_DOUBLE(v.ptr());
    return true;
  }
  if (!PyLong_CheckExact(v.ptr())) return false;
  out = PyLong_AsDouble(v.ptr());
  if (out == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  return true;
}

bool ssm::int_in(py::handle v, long long lo, long long hi, long long& out) {
  if (!PyLong_CheckExact(v.ptr())) return false;
  int overflow = 0;
  out = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
  if (out == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  return overflow == 0 && out >= lo && out <= hi;
}

GumbelKey ssm::rng_key(py::handle rng) {
  GumbelKey key;
  if (raw64_key(rng, key)) return key;
  if (key_source.key_fn == nullptr) throw py::value_error("set_rng_key_source was not called");
  const py::tuple words = checked(PyObject_CallOneArg(key_source.key_fn, rng.ptr()));
  return make_key(words[0].cast<uint32_t>(), words[1].cast<uint32_t>(), words[2].cast<uint64_t>());
}

int ssm::rng_entries(py::handle rng, size_t rows) {
  if (!PyList_CheckExact(rng.ptr()) && !PyTuple_CheckExact(rng.ptr())) return 0;
  const auto entries = py::reinterpret_borrow<py::sequence>(rng);
  if (entries.size() != rows) return -1;
  const auto& api = py::detail::npy_api::get();
  for (const py::handle e : entries)
    if (PyList_Check(e.ptr()) || PyTuple_Check(e.ptr()) || api.PyArray_Check_(e.ptr())) return -1;
  return 1;
}

bool ssm::one_call_input(py::handle xh, py::handle axis, OneCallInput& x) {
  const auto& api = py::detail::npy_api::get();
  interop::Input& in = x.in;
  if (Py_TYPE(xh.ptr()) == api.PyArray_Type_) {
    const auto* proxy = py::detail::array_proxy(xh.ptr());
    constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if (proxy->nd < 1 || proxy->nd > interop::kMaxDims || (proxy->flags & kFlags) != kFlags) return false;
    const auto a = py::reinterpret_borrow<py::array>(xh);
    x.f32 = py::isinstance<py::array_t<float>>(a);
    if (!x.f32 && !py::isinstance<py::array_t<double>>(a)) return false;
    in.ndim = proxy->nd;
    for (int d = 0; d < proxy->nd; ++d) in.numpy_shape[d] = proxy->dimensions[d];
    in.shape = in.numpy_shape;
    in.data = proxy->data;
    in.descr = proxy->descr;
  } else {
    if (!interop::read_tensor(xh.ptr(), in) || (in.elem != interop::Elem::F32 && in.elem != interop::Elem::F64))
      return false;
    x.f32 = in.elem == interop::Elem::F32;
    x.torch = true;
  }
  long long a = 0;
  return in.shape[in.ndim - 1] > 0 && int_in(axis, -1, in.ndim - 1, a) && (a == -1 || a == in.ndim - 1);
}

size_t ssm::OneCallInput::rows() const {
  size_t r = 1;
  for (int d = 0; d + 1 < in.ndim; ++d) r *= static_cast<size_t>(in.shape[d]);
  return r;
}

ssm::OneCallResult::OneCallResult(const OneCallInput& x, Kind kind, int64_t extra) {
  const interop::Input& in = x.in;
  int64_t shape[interop::kMaxDims];
  int nd = in.ndim - 1;
  std::copy(in.shape, in.shape + nd, shape);
  if (extra > 0) shape[nd++] = extra;
  if (x.torch) {
    tensor_ = std::make_unique<interop::Result>(
        kind == Index ? interop::Elem::I64 : x.f32 ? interop::Elem::F32 : interop::Elem::F64, shape, nd);
    data_ = tensor_->data();
  } else {
    const std::vector<py::ssize_t> dims(shape, shape + nd);
    py::array a = kind == Index ? py::array(py::array_t<py::ssize_t>(dims))
                                : py::array(py::reinterpret_borrow<py::dtype>(in.descr), dims);
    data_ = a.mutable_data();
    array_ = std::move(a);
  }
}

py::object ssm::OneCallResult::finish() {
  if (tensor_) {
    PyObject* t = tensor_->adopt();
    if (!t) throw std::runtime_error("torch did not adopt the result's DLPack capsule");
    return py::reinterpret_steal<py::object>(t);
  }
  // One row: a NumPy scalar (a[()]), as NumPy's reductions give one.
  if (py::reinterpret_borrow<py::array>(array_).ndim() == 0)
    return checked(PyObject_GetItem(array_.ptr(), py::tuple().ptr()));
  return array_;
}

void register_gumbel(py::module_& m) {
  m.def("gumbel_topk", &gumbel_topk, py::arg("x"), py::arg("k"), py::arg("inv_temp"), py::arg("key0"),
        py::arg("key1"), py::arg("row_offset"), py::arg("idx"), py::arg("score"), py::arg("prune") = true,
        py::arg("row_base") = 0, py::arg("col_base") = 0,
        "Best k of x*inv_temp + Gumbel noise per row -> (first bad row or -1, reason).");
  m.def("gumbel_topk_call", &gumbel_topk_call, py::arg("x"), py::arg("axis"), py::arg("k"), py::arg("argmax"),
        py::arg("temperature"), py::arg("rng"),
        "gumbel_topk (argmax: k = 1 without its axis) in one step where the call allows it -> None (it does not: "
        "nothing drawn), (bad row, reason), or the indices.");
  m.def("set_rng_key_source", &set_rng_key_source, py::arg("generator"), py::arg("raw64"), py::arg("key_fn"),
        "numpy.random.Generator, the bit generator types with 64-bit raw outputs, and _gumbel._key (the key of "
        "any other rng): how the one-step calls draw their keys.");
  m.def("gumbel_softmax_call", &gumbel_softmax_call, py::arg("x"), py::arg("out"), py::arg("inv_tau"),
        py::arg("key0"), py::arg("key1"), py::arg("row_offset"),
        "gumbel_softmax over the last axis of a C-contiguous float32/float64 array, into out (None: a new array) -> "
        "(bad row or -1, reason, the result or None).");
  m.def("gumbel_softmax", &gumbel_softmax, py::arg("x"), py::arg("out"), py::arg("inv_tau"), py::arg("key0"),
        py::arg("key1"), py::arg("row_offset"), py::arg("row_base") = 0, py::arg("col_base") = 0,
        py::arg("fresh") = false,
        "softmax((x + g) * inv_tau) per row -> (bad row or -1, reason); fresh: out is a new array the caller drops "
        "on error (else nothing is written when a row is bad).");
}

void register_gumbel_testing(py::module_& t) {
  t.def("gumbel_noise", &gumbel_noise, py::arg("out"), py::arg("key0"), py::arg("key1"), py::arg("row_offset"),
        py::arg("row_base") = 0, py::arg("col_base") = 0, "The Gumbel noise itself.");
  t.def("set_gumbel_short_rows_max", &ssm::set_gumbel_short_rows_max, py::arg("n"),
        "A/B hook: longest row gumbel_argmax / gumbel_topk / sample / gumbel_softmax give their short-row kernels (0: "
        "none; above a kernel's limit: its limit).");
  t.def("set_gumbel_softmax_keep", &ssm::set_gumbel_softmax_keep, py::arg("keep"),
        "A/B hook: false makes gumbel_softmax regenerate the noise in pass 2 instead of keeping it in the output.");
  t.def("philox16", &philox16, py::arg("base"), py::arg("c2"), py::arg("c3"), py::arg("key0"), py::arg("key1"),
        "Philox4x32-10 words of blocks base..base+15: out[16*w + l] = word w of block base + l.");
}
