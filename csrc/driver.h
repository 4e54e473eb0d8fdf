// Row-level algorithms composed from a kernel set's passes (baseline code:
// no intrinsics here). A row whose result is not an ordinary finite softmax
// (NaN, +inf, all -inf, zero weighted sum) is reported as special and left
// unwritten; the Python layer fills it with SciPy's exact semantics.
#pragma once
#include <cstddef>
#include <string>

#include "kernels/kernel_api.h"

namespace ssm {

enum class Algorithm { TwoPass, ThreePassRecompute, ThreePassReload, Online, Auto };

// Throws std::invalid_argument naming the valid algorithms.
Algorithm parse_algorithm(const std::string& name);

// Each returns false when the row is special (nothing written).
template <class T>
bool softmax_row(const Kernels<T>& k, const T* x, T* y, size_t n, Algorithm algorithm);
template <class T>
bool log_softmax_row(const Kernels<T>& k, const T* x, T* y, size_t n);
// b may be null. On success: lse = log|sum b exp(x)|, sign = +1 or -1.
template <class T>
bool logsumexp_row(const Kernels<T>& k, const T* x, const T* b, size_t n, double& lse, double& sign);

}  // namespace ssm
