// What the one-step calls (gumbel_topk_call, sample_call: the common call
// checked and run in one C++ step) share, defined in gumbel_bindings.cpp:
// the array check, the 128-bit key of the draw from the user's rng,
// drawn in C++ (the common rng, a NumPy Generator, costs no Python-level key
// derivation), and the input and results in the input's library (NumPy, or
// torch through DLPack capsules: no Tensor.numpy() / torch.from_numpy round
// trip, which cost several microseconds per call).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/gumbel_api.h"
#include "tensor_interop.h"

namespace ssm {

// The key simdsoftmax._gumbel._key(rng) returns, bit for bit: two raw 64-bit
// words read straight from the bit generator (under its lock) where rng is a
// Generator whose bit generator's raw outputs are full 64-bit words, else
// _key(rng) itself (its errors included).
GumbelKey rng_key(pybind11::handle rng);

// The input of a one-step call: an ndarray (not a subclass), float32 (f32
// set) or float64 in native order, C-contiguous and aligned, or a plain CPU
// torch tensor of those dtypes (interop::read_tensor: C-contiguous, no
// grad), with at least one axis and non-empty rows, and axis an int (not
// bool) naming its last axis. `in.capsule` keeps a tensor's memory alive.
struct OneCallInput {
  interop::Input in;
  bool f32 = false;
  bool torch = false;
  size_t n() const { return static_cast<size_t>(in.shape[in.ndim - 1]); }
  size_t rows() const;
};

// How a one-step call takes rng: 0, one rng for the call (not a list or
// tuple); 1, a list or tuple with an entry per row, none of them a sequence
// or an array (each row then draws as the only row of a call with its own
// rng); -1, any other list or tuple (the general path's error or reading).
int rng_entries(pybind11::handle rng, size_t rows);

// A Python float (or a subclass: numpy.float64) or an exact int as a double
// (false: anything else, or an int too large for a double).
bool real_number(pybind11::handle v, double& out);

// An exact Python int (not bool) in [lo, hi] as an integer.
bool int_in(pybind11::handle v, long long lo, long long hi, long long& out);

// Can a one-step call take x as it is (see OneCallInput)?
bool one_call_input(pybind11::handle x, pybind11::handle axis, OneCallInput& in);

// A result of shape in.shape[:-1] (+ (extra,) when extra > 0) in the input's
// library: indices (NumPy intp, torch int64) or values of the input's dtype.
class OneCallResult {
 public:
  enum Kind { Index, Value };
  OneCallResult(const OneCallInput& in, Kind kind, int64_t extra = 0);
  void* data() const { return data_; }
  // The array (a NumPy scalar for one row, as NumPy's reductions give one)
  // or the torch tensor (0-d for one row).
  pybind11::object finish();

 private:
  pybind11::object array_;
  std::unique_ptr<interop::Result> tensor_;
  void* data_;
};

}  // namespace ssm
