// What the one-step calls (gumbel_topk_call, sample_call: the common call
// checked and run in one C++ step) share, defined in gumbel_bindings.cpp:
// the array check, the 128-bit key of the draw from the user's rng,
// drawn in C++ (the common rng, a NumPy Generator, costs no Python-level key
// derivation), and a NumPy scalar for one row.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "kernels/gumbel_api.h"

namespace ssm {

// The key simdsoftmax._gumbel._key(rng) returns, bit for bit: two raw 64-bit
// words read straight from the bit generator (under its lock) where rng is a
// Generator whose bit generator's raw outputs are full 64-bit words, else
// _key(rng) itself (its errors included).
GumbelKey rng_key(pybind11::handle rng);

// Can a one-step call take x as it is: an ndarray (not a subclass), float32
// (f32 set) or float64 in native order, C-contiguous and aligned, with at
// least one axis and non-empty rows, and axis an int (not bool) naming its
// last axis?
bool one_call_array(pybind11::handle x, pybind11::handle axis, bool& f32);

// A 0-d array's element as a NumPy scalar (a[()], as NumPy's reductions
// return one row's result), else the array itself.
pybind11::object scalar_if_0d(const pybind11::array& a);

}  // namespace ssm
