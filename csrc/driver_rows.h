// Batches of short contiguous rows (n <= the short-row kernels' max_n, or
// their logsumexp_max_n), run a group of rows per vector (kernels/rows_api.h)
// or one row after another without a per-row call, instead of row by row.
// Each returns false when the batch is not for this path (the caller then
// runs its per-row path); otherwise it fills `special` (ascending) exactly as
// the per-row path would: rows the kernels flag are redone one by one by the
// per-row path, which computes them or reports them special.
#pragma once
#include <cstddef>
#include <vector>

#include "driver.h"

namespace ssm {

// Longest row routed here (default and ceiling: the kernels' max_n, or
// logsumexp_max_n; 0 turns the path off). For same-run A/B timings against the per-row path.
void set_short_rows_max(size_t n);

template <class T>
bool short_rows_softmax(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n, std::vector<size_t>& special);
template <class T>
bool short_rows_log_softmax(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n,
                            std::vector<size_t>& special);
template <class T>
bool short_rows_logsumexp(const Kernels<T>& k, const T* x, const T* b, T* out, T* sign, size_t rows, size_t n,
                          std::vector<size_t>& special);

}  // namespace ssm
