// The torch-tensor fast path: ssm.softmax, log_softmax and logsumexp called
// with a plain CPU torch tensor (float32, float64, float16 or bfloat16;
// C-contiguous; no grad; over its last axis or all of it) are read and run
// here in one call, and the result comes back as a new torch tensor (or, for
// the half formats, in an out= of the same kind: apart from the input, or
// the input itself).
//
// Why not through NumPy: viewing the tensor as an ndarray (Tensor.numpy(),
// about 1 us) and wrapping the result (torch.from_numpy, about 0.8 us) cost
// twice a small call's kernel time. Here the input is read and the result
// made through DLPack capsules (tensor_interop.h: no copy, no NumPy array;
// bfloat16 needs no view). torch is never imported or linked: the Python
// layer hands the two functions over once (tensor_setup) when it first sees
// a tensor.
//
// NumPy float16 / bfloat16 arrays take the same path (the result is then an
// ndarray of the input's dtype): the general half path's Python work costs
// ten times a small float32 call.
//
// Anything unusual returns None, and the general path of _arrays.py takes
// the call (raising its errors: another device, requires_grad...). Rows
// with special values also return None: the general path computes them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "array_checks.h"
#include "dispatch.h"
#include "driver.h"
#include "driver_half.h"
#include "tensor_interop.h"

namespace {

namespace py = pybind11;
using ssm::bind::active;

using ssm::interop::Elem;
using ssm::interop::Input;
using ssm::interop::item_size;
using ssm::interop::kMaxDims;
using ssm::interop::read_tensor;

enum class Op { Softmax = 0, LogSoftmax = 1, LogSumExp = 2 };

// Interned keyword names.
struct Names {
  PyObject *axis, *out, *algorithm, *b, *keepdims, *return_sign;
};
const Names& names() {
  static const Names n = [] {
    auto s = [](const char* text) { return PyUnicode_InternFromString(text); };
    return Names{s("axis"), s("out"), s("algorithm"), s("b"), s("keepdims"), s("return_sign")};
  }();
  return n;
}

// NumPy's half formats, read by the same kernels: float16 and, once the
// Python layer has seen one, ml_dtypes.bfloat16 (set_numpy_bfloat16).
PyObject* numpy_bfloat16 = nullptr;

// A native-order, aligned, C-contiguous, non-empty float16 / bfloat16
// ndarray (float32 and float64 have their own path: numpy_fast_path.cpp).
bool read_ndarray(PyObject* x, Input& in) {
  namespace d = py::detail;
  constexpr int kFlags = d::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | d::npy_api::NPY_ARRAY_ALIGNED_;
  const auto* xa = d::array_proxy(x);
  const auto* descr = d::array_descriptor_proxy(xa->descr);
  if (xa->nd < 1 || xa->nd > kMaxDims || (xa->flags & kFlags) != kFlags) return false;
  static PyObject* const f16 = py::dtype("float16").release().ptr();  // kept for the process
  if (xa->descr == f16 || (descr->type_num == 23 /* NPY_HALF */ && descr->byteorder != '>'))
    in.elem = Elem::F16;
  else if (numpy_bfloat16 && xa->descr == numpy_bfloat16)
    in.elem = Elem::BF16;
  else
    return false;
  in.ndim = xa->nd;
  for (int k = 0; k < xa->nd; ++k) {
    in.numpy_shape[k] = xa->dimensions[k];
    if (in.numpy_shape[k] <= 0) return false;
  }
  in.shape = in.numpy_shape;
  in.data = xa->data;
  in.descr = xa->descr;
  return true;
}

// The call's arguments: op's signature, with only what the fast path takes.
struct Call {
  PyObject* axis = Py_None;
  PyObject* out = Py_None;  // softmax / log_softmax: see half_out
  ssm::Algorithm algorithm = ssm::Algorithm::Auto;
};

bool parse_call(Op op, PyObject* const* args, Py_ssize_t nargs, PyObject* kwargs, Call& c) {
  const Names& n = names();
  if (nargs < 1 || nargs > 2) return false;
  if (nargs == 2) c.axis = args[1];
  if (!kwargs) return true;
  if (!PyDict_Check(kwargs)) return false;
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(kwargs, &pos, &key, &value)) {
    if (key == n.axis && nargs < 2) {
      c.axis = value;
    } else if (key == n.out && op != Op::LogSumExp) {
      c.out = value;
    } else if (key == n.algorithm && op == Op::Softmax) {
      if (!PyUnicode_Check(value)) return false;
      const char* text = PyUnicode_AsUTF8(value);
      if (!text) {
        PyErr_Clear();
        return false;
      }
      try {
        c.algorithm = ssm::parse_algorithm(text);
      } catch (const std::exception&) {
        return false;  // the general path raises the error naming the choices
      }
    } else if (key == n.b && op == Op::LogSumExp) {
      if (value != Py_None) return false;
    } else if ((key == n.keepdims || key == n.return_sign) && op == Op::LogSumExp) {
      if (value != Py_False) return false;
    } else {
      return false;  // unknown, duplicated or not interned: the general path decides
    }
  }
  return true;
}

// rows x n of the call (axis None: one row of every element), or false.
bool row_shape(const Input& in, PyObject* axis, size_t& rows, size_t& n) {
  size_t size = 1;
  for (int d = 0; d < in.ndim; ++d) size *= static_cast<size_t>(in.shape[d]);
  n = size;
  if (axis != Py_None) {
    if (!PyLong_CheckExact(axis)) return false;
    int overflow = 0;
    const long ax = PyLong_AsLongAndOverflow(axis, &overflow);
    if (overflow || (ax != -1 && ax != in.ndim - 1)) return false;
    n = static_cast<size_t>(in.shape[in.ndim - 1]);
  }
  rows = size / n;
  return true;
}

template <class T>
std::vector<size_t> run_float(Op op, ssm::Algorithm a, const void* x, void* y, size_t rows, size_t n) {
  const auto* xp = static_cast<const T*>(x);
  auto* yp = static_cast<T*>(y);
  if (op == Op::Softmax) return ssm::softmax_batch<T>(active<T>(), xp, yp, rows, n, a, true);
  if (op == Op::LogSoftmax) return ssm::log_softmax_batch<T>(active<T>(), xp, yp, rows, n, xp != yp);
  return ssm::logsumexp_batch<T>(active<T>(), xp, nullptr, yp, nullptr, rows, n);
}

std::vector<size_t> run_half(Op op, Elem e, ssm::Algorithm a, const void* x, void* y, size_t rows, size_t n) {
  const auto f = e == Elem::F16 ? ssm::HalfFormat::Float16 : ssm::HalfFormat::BFloat16;
  const auto* xp = static_cast<const uint16_t*>(x);
  auto* yp = static_cast<uint16_t*>(y);
  if (op == Op::Softmax) return ssm::half_softmax_batch(xp, yp, rows, n, f, a);
  if (op == Op::LogSoftmax) return ssm::half_log_softmax_batch(xp, yp, rows, n, f);
  // logsumexp in float32, rounded once to the half format.
  std::vector<float> res(rows);
  std::vector<size_t> special = ssm::half_logsumexp_batch(xp, res.data(), rows, n, f);
  if (special.empty()) {
    const ssm::HalfConvert& cv = ssm::active_convert();
    (e == Elem::F16 ? cv.f32_to_f16 : cv.f32_to_bf16)(res.data(), yp, rows);
  }
  return special;
}

// out= of a float16 / bfloat16 call (the float32 / float64 ones take the
// general path): the input's exact type, element type and shape,
// C-contiguous (NumPy: writeable, the input's dtype; torch: no grad), and
// either not overlapping the input at all, so that returning None for
// special rows (the general path then recomputes every row from the
// untouched input) is safe, or the input's own memory (in_place: the
// kernels read each row before writing it and leave special rows unwritten,
// which finish_in_place then computes). Its data pointer, or null for the
// general path.
void* half_out(PyObject* out, PyObject* x, const Input& in, bool numpy, bool& in_place) {
  if (in.elem != Elem::F16 && in.elem != Elem::BF16) return nullptr;
  if (Py_TYPE(out) != Py_TYPE(x)) return nullptr;
  Input o;
  if (numpy) {
    if (!read_ndarray(out, o) || o.descr != in.descr ||
        !(py::detail::array_proxy(out)->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
      return nullptr;
  } else if (!read_tensor(out, o)) {
    return nullptr;
  }
  if (o.elem != in.elem || o.ndim != in.ndim) return nullptr;
  size_t bytes = item_size(in.elem);
  for (int d = 0; d < in.ndim; ++d) {
    if (o.shape[d] != in.shape[d]) return nullptr;
    bytes *= static_cast<size_t>(in.shape[d]);
  }
  in_place = o.data == in.data;
  if (!in_place && !(o.data + bytes <= in.data || in.data + bytes <= o.data)) return nullptr;
  // o.capsule (torch's export of out) may go: the caller's reference keeps out alive.
  return const_cast<char*>(o.data);
}

// The special rows (NaN, +-inf, all -inf) of an in-place softmax /
// log_softmax, which still hold the input: through the general path's
// formula (simdsoftmax._half.finish_rows) on those rows alone, as the
// general path does after its own in-place kernel call.
void finish_in_place(Op op, PyObject* out, Elem e, void* y, size_t rows, size_t n,
                     const std::vector<size_t>& special) {
  py::array_t<py::ssize_t> picked(static_cast<py::ssize_t>(special.size()));
  for (size_t i = 0; i < special.size(); ++i) picked.mutable_data()[i] = static_cast<py::ssize_t>(special[i]);
  const py::ssize_t step = static_cast<py::ssize_t>(n * sizeof(uint16_t));
  // A view of out's memory (out keeps it alive: the caller holds it).
  py::array bits(py::dtype::of<uint16_t>(), {static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(n)},
                 {step, static_cast<py::ssize_t>(sizeof(uint16_t))}, y, py::handle(out));
  py::module_::import("simdsoftmax._half")
      .attr("finish_rows")(op == Op::Softmax ? "softmax" : "log_softmax", bits, picked, e == Elem::F16 ? 0 : 1);
}

PyObject* tensor_call(Op op, PyObject* const* args, Py_ssize_t nargs, PyObject* kwargs) {
  Call c;
  Input in;
  if (nargs < 1 || !parse_call(op, args, nargs, kwargs, c)) Py_RETURN_NONE;
  const bool numpy = Py_TYPE(args[0]) == py::detail::npy_api::get().PyArray_Type_;
  if (numpy ? !read_ndarray(args[0], in) : !read_tensor(args[0], in)) Py_RETURN_NONE;
  size_t rows = 0, n = 0;
  if (!row_shape(in, c.axis, rows, n)) Py_RETURN_NONE;
  // logsumexp drops the last axis (all of them for axis None).
  const int out_ndim = op != Op::LogSumExp ? in.ndim : c.axis == Py_None ? 0 : in.ndim - 1;
  std::unique_ptr<ssm::interop::Result> b;
  py::object array;
  void* y;
  bool in_place = false;
  if (c.out != Py_None) {
    y = half_out(c.out, args[0], in, numpy, in_place);
    if (!y) Py_RETURN_NONE;
  } else if (numpy) {
    array = py::array(py::reinterpret_borrow<py::dtype>(in.descr),
                      std::vector<py::ssize_t>(in.shape, in.shape + out_ndim));
    y = py::detail::array_proxy(array.ptr())->data;
  } else {
    b = std::make_unique<ssm::interop::Result>(in.elem, in.shape, out_ndim);
    y = b->data();
  }
  std::vector<size_t> special;
  {
    py::gil_scoped_release release;
    switch (in.elem) {
      case Elem::F32: special = run_float<float>(op, c.algorithm, in.data, y, rows, n); break;
      case Elem::F64: special = run_float<double>(op, c.algorithm, in.data, y, rows, n); break;
      default: special = run_half(op, in.elem, c.algorithm, in.data, y, rows, n); break;
    }
  }
  if (!special.empty() && in_place) {
    finish_in_place(op, c.out, in.elem, y, rows, n, special);
  } else if (!special.empty()) {
    Py_RETURN_NONE;  // NaN / inf rows: the general path applies SciPy's rules
  }
  if (c.out != Py_None) {
    Py_INCREF(c.out);
    return c.out;
  }
  if (numpy) return array.release().ptr();
  PyObject* tensor = b->adopt();
  if (!tensor) Py_RETURN_NONE;  // a torch that does not adopt this capsule: the general path
  return tensor;
}

template <Op op>
PyObject* entry(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  // args: (call's args tuple, call's kwargs dict)
  if (nargs != 2 || !PyTuple_Check(args[0])) {
    PyErr_SetString(PyExc_TypeError, "expected (args tuple, kwargs dict)");
    return nullptr;
  }
  PyObject* call_args = args[0];
  try {
    return tensor_call(op, &PyTuple_GET_ITEM(call_args, 0), PyTuple_GET_SIZE(call_args),
                       args[1] == Py_None ? nullptr : args[1]);
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  } catch (py::error_already_set& e) {
    e.restore();
    return nullptr;
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
}

PyMethodDef kEntries[] = {
    {"tensor_softmax", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&entry<Op::Softmax>)),
     METH_FASTCALL,
     "tensor_softmax(args, kwargs): ssm.softmax's torch fast path, the result tensor or None (general path)."},
    {"tensor_log_softmax", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&entry<Op::LogSoftmax>)),
     METH_FASTCALL, "tensor_log_softmax(args, kwargs): ssm.log_softmax's torch fast path, as tensor_softmax."},
    {"tensor_logsumexp", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&entry<Op::LogSumExp>)),
     METH_FASTCALL, "tensor_logsumexp(args, kwargs): ssm.logsumexp's torch fast path, as tensor_softmax."},
};

}  // namespace

void register_tensor_fast_path(py::module_& m) {
  for (PyMethodDef& def : kEntries) {
    PyObject* fn = PyCFunction_NewEx(&def, nullptr, nullptr);
    if (!fn) throw py::error_already_set();
    m.add_object(def.ml_name, py::reinterpret_steal<py::object>(fn));
  }
  m.def(
      "set_numpy_bfloat16", [](py::dtype dtype) { numpy_bfloat16 = dtype.release().ptr(); }, py::arg("dtype"),
      "The NumPy bfloat16 dtype (ml_dtypes) the fast path reads as bfloat16 (set when the Python layer first sees it).");
  m.def(
      "tensor_setup",
      [](py::object to_dlpack, py::object from_dlpack) {
        ssm::interop::set_torch(to_dlpack.ptr(), from_dlpack.ptr());
      },
      py::arg("to_dlpack"), py::arg("from_dlpack"),
      "Hand torch._C._to_dlpack and torch._C._from_dlpack to the tensor fast path "
      "(called once, when a tensor is first seen).");
}
