// Argument checks shared by the binding files: arrays must be exactly what
// the kernels take (float32/float64 in native order, C-contiguous, out
// writeable); the Python layer has already converted them.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>
#include <vector>

#include "dispatch.h"

namespace ssm {
namespace bind {

namespace py = pybind11;

enum class DType { F32, F64 };

inline DType dtype_of(const py::array& a, const char* what) {
  if (py::isinstance<py::array_t<float>>(a)) return DType::F32;
  if (py::isinstance<py::array_t<double>>(a)) return DType::F64;
  throw py::type_error(std::string(what) + " must be float32 or float64 (native byte order)");
}

inline void require_c_contiguous(const py::array& a, const char* what) {
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(what) + " must be C-contiguous");
}

inline void require_writeable(const py::array& a, const char* what) {
  if (!a.writeable()) throw py::value_error(std::string(what) + " must be writeable");
}

inline void require_same(const py::array& a, const py::array& b, const char* what) {
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
inline Rows check_rows(const py::array& x) {
  if (x.ndim() < 1) throw py::value_error("x must be 2-D (rows, n) or have a last axis");
  require_c_contiguous(x, "x");
  const size_t n = static_cast<size_t>(x.shape(x.ndim() - 1));
  size_t rows = 1;
  for (py::ssize_t d = 0; d + 1 < x.ndim(); ++d) rows *= static_cast<size_t>(x.shape(d));
  return {rows, n};
}

template <class T>
const Kernels<T>& active() {
  return ssm::kernels_for<T>(ssm::active_kernels());
}

template <class T>
T* data_of(const py::array& a) {
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// The special rows of a call as an intp array (numpy_fast_path.cpp: the empty
// list, by far the most common, is one shared read-only array).
py::array_t<py::ssize_t> to_array(const std::vector<size_t>& v);

}  // namespace bind
}  // namespace ssm
