// The 128-bit key of a Gumbel or sample() draw from the user's rng, drawn in
// C++ (gumbel_bindings.cpp): the one-step calls take the rng itself, so the
// common call (a NumPy Generator) costs no Python-level key derivation.
#pragma once

#include <pybind11/pybind11.h>

#include "kernels/gumbel_api.h"

namespace ssm {

// The key simdsoftmax._gumbel._key(rng) returns, bit for bit: two raw 64-bit
// words read straight from the bit generator (under its lock) where rng is a
// Generator whose bit generator's raw outputs are full 64-bit words, else
// _key(rng) itself (its errors included).
GumbelKey rng_key(pybind11::handle rng);

}  // namespace ssm
