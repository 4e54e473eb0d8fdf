// pybind11 bindings of the float16 / bfloat16 drivers (driver_half.h).
// Half arrays arrive as their uint16 bits, 2-D (rows, n) and C-contiguous
// (the Python layer, simdsoftmax._half, has arranged that), with a format
// code: 0 float16, 1 bfloat16. Registered into _core by bindings.cpp.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dispatch.h"
#include "driver_half.h"

namespace py = pybind11;

namespace {

using Bits = py::array_t<uint16_t, 0>;

void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

// A threshold's test hook: an int sets it, None restores the default.
std::function<void(py::object)> threshold_hook(void (*set)(size_t), void (*reset)()) {
  return [set, reset](py::object n) {
    if (n.is_none())
      reset();
    else
      set(n.cast<size_t>());
  };
}

ssm::HalfFormat format_of(int code) {
  if (code == 0) return ssm::HalfFormat::Float16;
  if (code == 1) return ssm::HalfFormat::BFloat16;
  throw py::value_error("format must be 0 (float16) or 1 (bfloat16)");
}

void check_rows(const py::array& a, const char* what, bool writeable) {
  require(py::isinstance<py::array_t<uint16_t>>(a), std::string(what) + " must be uint16 (the half values' bits)");
  require(a.ndim() == 2, std::string(what) + " must be 2-D (rows, n)");
  require((a.flags() & py::array::c_style) != 0, std::string(what) + " must be C-contiguous");
  if (writeable) require(a.writeable(), std::string(what) + " must be writeable");
}

py::array_t<py::ssize_t> to_array(const std::vector<size_t>& v) {
  py::array_t<py::ssize_t> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

template <class Run>
py::array_t<py::ssize_t> same_shape(const py::array& x, const py::array& y, Run&& run) {
  check_rows(x, "x", false);
  check_rows(y, "out", true);
  require(x.shape(0) == y.shape(0) && x.shape(1) == y.shape(1), "out must have the shape of x");
  const auto* xp = static_cast<const uint16_t*>(x.data());
  auto* yp = static_cast<uint16_t*>(const_cast<void*>(y.data()));
  const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
  std::vector<size_t> special;
  {
    py::gil_scoped_release release;
    special = run(xp, yp, rows, n);
  }
  return to_array(special);
}

}  // namespace

void register_half(py::module_& m) {
  m.def(
      "half_softmax",
      [](const py::array& x, const py::array& out, int format, const std::string& algorithm) {
        const ssm::Algorithm a = ssm::parse_algorithm(algorithm);
        const ssm::HalfFormat f = format_of(format);
        return same_shape(x, out, [&](const uint16_t* xp, uint16_t* yp, size_t rows, size_t n) {
          return ssm::half_softmax_batch(xp, yp, rows, n, f, a);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("format"), py::arg("algorithm") = "auto",
      "softmax over the rows of float16 (format 0) / bfloat16 (1) bits; returns the special rows.");
  m.def(
      "half_log_softmax",
      [](const py::array& x, const py::array& out, int format) {
        const ssm::HalfFormat f = format_of(format);
        return same_shape(x, out, [&](const uint16_t* xp, uint16_t* yp, size_t rows, size_t n) {
          return ssm::half_log_softmax_batch(xp, yp, rows, n, f);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("format"),
      "log_softmax over the rows of float16 (0) / bfloat16 (1) bits; returns the special rows.");
  m.def(
      "half_logsumexp",
      [](const py::array& x, const py::array& out, int format) {
        const ssm::HalfFormat f = format_of(format);
        check_rows(x, "x", false);
        require(py::isinstance<py::array_t<float>>(out) && out.ndim() == 1 && out.shape(0) == x.shape(0) &&
                    (out.flags() & py::array::c_style) && out.writeable(),
                "out must be a writeable 1-D float32 array with one entry per row");
        const auto* xp = static_cast<const uint16_t*>(x.data());
        auto* op = static_cast<float*>(const_cast<void*>(out.data()));
        const size_t rows = static_cast<size_t>(x.shape(0)), n = static_cast<size_t>(x.shape(1));
        std::vector<size_t> special;
        {
          py::gil_scoped_release release;
          special = ssm::half_logsumexp_batch(xp, op, rows, n, f);
        }
        return to_array(special);
      },
      py::arg("x"), py::arg("out"), py::arg("format"),
      "logsumexp of the rows of float16 (0) / bfloat16 (1) bits into float32 out; returns the special rows.");
  m.def(
      "half_convert",
      [](const py::array& x, const py::array& out, int format, bool to_half) {
        const ssm::HalfFormat f = format_of(format);
        const ssm::HalfConvert& cv = ssm::active_convert();
        require((x.flags() & py::array::c_style) && (out.flags() & py::array::c_style) && out.writeable() &&
                    x.size() == out.size(),
                "x and out must be C-contiguous, of the same size, out writeable");
        const size_t n = static_cast<size_t>(x.size());
        if (to_half) {
          require(py::isinstance<py::array_t<float>>(x) && py::isinstance<py::array_t<uint16_t>>(out),
                  "to_half: x float32, out uint16");
          (f == ssm::HalfFormat::Float16 ? cv.f32_to_f16 : cv.f32_to_bf16)(
              static_cast<const float*>(x.data()), static_cast<uint16_t*>(const_cast<void*>(out.data())), n);
        } else {
          require(py::isinstance<py::array_t<uint16_t>>(x) && py::isinstance<py::array_t<float>>(out),
                  "from half: x uint16, out float32");
          (f == ssm::HalfFormat::Float16 ? cv.f16_to_f32 : cv.bf16_to_f32)(
              static_cast<const uint16_t*>(x.data()), static_cast<float*>(const_cast<void*>(out.data())), n);
        }
      },
      py::arg("x"), py::arg("out"), py::arg("format"), py::arg("to_half"),
      "The active kernel set's half conversions (test hook).");
  m.def(
      "half_set_fused_min", threshold_hook(&ssm::set_half_fused_min, &ssm::reset_half_fused_min), py::arg("n"),
      "Rows of at least n elements take the fused half kernels; None: the default (test and A/B hook).");
  m.def(
      "half_set_rows_max", threshold_hook(&ssm::set_half_rows_max, &ssm::reset_half_rows_max), py::arg("n"),
      "Batches of rows of at most n elements take the short half-row kernels (0: never); None: the default "
      "ranges (test and A/B hook).");
  m.def(
      "half_tiles",
      [](const std::string& isa, int format) {
        const ssm::Implementation& impl = ssm::find_implementation(isa);
        py::dict out;
        const ssm::HalfKernelSet* set = impl.half ? impl.half() : nullptr;
        if (!set) return out;
        const ssm::HalfKernels& k = format_of(format) == ssm::HalfFormat::Float16 ? set->f16 : set->bf16;
        for (int i = 0; i < k.tiles.count; ++i) out[k.tiles.item[i].name] = k.tiles.item[i].elements;
        return out;
      },
      py::arg("isa"), py::arg("format"),
      "Loop geometry of a runnable set's fused half kernels (empty: it has none).");
  m.def("half_fused_isa",
        [] {
          const ssm::HalfKernelSet* set = ssm::active_half();
          return std::string(set ? set->name : "");
        },
        "Which kernel set's fused half kernels the half drivers use (\"\": none).");
  m.def(
      "half_bf16_instructions",
      [](py::object allow) {
        if (!allow.is_none()) ssm::allow_half_bf16_instructions(allow.cast<bool>());
        return ssm::half_bf16_instructions();
      },
      py::arg("allow") = py::none(),
      "Whether the avx512 set's bfloat16 kernels round with AVX512_BF16's vcvtneps2bf16; allow=False / True "
      "turns that off / back on where the CPU has it (test and A/B hook).");
  m.def("half_convert_isa", [] { return std::string(ssm::active_convert().name); },
        "Which kernel set's conversions the half drivers use.");
}
