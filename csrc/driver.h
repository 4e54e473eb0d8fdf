// The softmax family's driver: batches of rows (softmax_batch.cpp) and
// reductions over any axis (softmax_strided.cpp), split into tasks for the
// thread pool (chunking.h), each row computed by the row algorithms of
// softmax_rows.h from a kernel set's passes. Baseline code: no intrinsics.
// A row whose result is not an ordinary finite softmax (NaN, +inf, all -inf,
// zero weighted sum) is reported as special and left unwritten; the Python
// layer fills it with SciPy's exact semantics.
//
// Bit-identical for any thread count: a row longer than settings().chunked_row
// (2^18) elements is always split into chunks of settings().chunk_elements
// (2^16), whatever the thread count; its per-chunk (m, e) partials are reduced
// in chunk order, and shorter rows are never split. Threads only decide who
// runs which chunk or row.
#pragma once
#include <cstddef>
#include <vector>

#include "kernels/kernel_api.h"
#include "settings.h"

namespace ssm {

// Batches of contiguous rows: x and y are (rows, n), C order. Each returns
// the indices of special rows, ascending.
// special_y_unspecified: y does not overlap x, and the caller overwrites the
// special rows itself, so their y may be left partly written (three-pass-reload
// then skips its max pass, see reload_guessed in softmax_rows.h; log_softmax
// may copy x to y in its first pass, see log_softmax_row).
template <class T>
std::vector<size_t> softmax_batch(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n, Algorithm a,
                                  bool special_y_unspecified = false);
template <class T>
std::vector<size_t> log_softmax_batch(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n,
                                      bool special_y_unspecified = false);
// b may be null; sign may be null. out[r] = log|sum b exp(x)|, sign[r] = +-1.
template <class T>
std::vector<size_t> logsumexp_batch(const Kernels<T>& k, const T* x, const T* b, T* out, T* sign, size_t rows,
                                    size_t n);

// Strided layout: x is (outer, n, inner) in C order and the reduction runs
// over the middle axis; column (o, j) is special index o * inner + j.
template <class T>
std::vector<size_t> softmax_strided(const Kernels<T>& k, const T* x, T* y, size_t outer, size_t n, size_t inner);
template <class T>
std::vector<size_t> log_softmax_strided(const Kernels<T>& k, const T* x, T* y, size_t outer, size_t n,
                                        size_t inner);
// out is (outer, inner).
template <class T>
std::vector<size_t> logsumexp_strided(const Kernels<T>& k, const T* x, T* out, size_t outer, size_t n,
                                      size_t inner);

// Bandwidth probes split like the kernels' calls (same store policy).
template <class T>
void probe_copy(const Kernels<T>& k, const T* x, T* y, size_t n);
template <class T>
void probe_fill(const Kernels<T>& k, T* y, size_t n, double value);

}  // namespace ssm
