// The Gumbel family's driver (gumbel_driver.cpp): gumbel_argmax / gumbel_topk
// and gumbel_softmax over batches of contiguous rows, on the thread pool.
// Baseline code: no intrinsics, no Python.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "kernels/gumbel_api.h"
#include "sample_driver.h"

namespace ssm {

// (first bad row or -1, what is wrong with it: "contains NaN", ...). A call
// with a bad row writes nothing.
using GumbelStatus = std::pair<std::ptrdiff_t, std::string>;

// The k best (index, score) of each of `rows` rows of n at xp, into ip and sp
// (rows x k each, best first, ties by lower index; sp may be null). row_base and col_base
// give the global position of xp[0] (a block of a larger array draws the
// noise the whole array would). prune=false evaluates every element's noise.
template <class T>
GumbelStatus gumbel_topk_rows(const GumbelKernels<T>& kern, const T* xp, size_t rows, size_t n, size_t k,
                              double inv_temp, const GumbelKey& key, std::ptrdiff_t* ip, double* sp, bool prune,
                              uint64_t row_base, uint64_t col_base);

// A/B and test hook: the longest row gumbel_topk_rows and
// gumbel_softmax_rows give their short-row kernels
// (GumbelKernels::topk_rows, softmax_rows; 0: none; above a kernel's limit:
// its limit).
void set_gumbel_short_rows_max(size_t n);

// Does a row of n go to kern's short-row kernel (GumbelKernels::topk_rows)?
template <class T>
bool gumbel_takes_short_rows(const GumbelKernels<T>& kern, size_t n);

// sample() without filters or logprobs, with one key and one temperature > 0
// for all rows (its draw is gumbel_argmax's), on rows the short-row kernel
// takes: the tokens and the status, as gumbel_argmax gives them (the same
// draws and messages). false: not such a call, nothing done.
template <class T>
bool gumbel_sample_short_rows(const T* x, size_t rows, size_t n, const SampleRequest& req, int64_t* token,
                              double* logprob, GumbelStatus& status);

// y = softmax((x + g) * inv_tau) per row by the two-pass algorithm: short
// rows (one tile) several at a time with their noise made once; else, where
// y does not overlap x, pass 1 keeps the noise in y for pass 2; else (in
// place) the noise is regenerated in pass 2. The same bits every way. A bad
// row writes nothing, unless fresh (y is a new array the caller drops on
// error: the rows are then not checked before y is written).
template <class T>
GumbelStatus gumbel_softmax_rows(const GumbelKernels<T>& kern, const T* xp, T* yp, size_t rows, size_t n,
                                 double inv_tau, const GumbelKey& key, uint64_t row_base, uint64_t col_base,
                                 bool fresh);

// A/B and test hook: false makes gumbel_softmax regenerate the noise in pass 2
// instead of keeping it in y (the short-row path is switched by
// set_gumbel_short_rows_max).
void set_gumbel_softmax_keep(bool keep);

}  // namespace ssm
