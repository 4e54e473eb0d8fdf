// Row-level algorithms composed from a kernel set's passes (baseline code:
// no intrinsics here), and the batch / strided drivers that split a call into
// tasks for the thread pool. A row whose result is not an ordinary finite
// softmax (NaN, +inf, all -inf, zero weighted sum) is reported as special and
// left unwritten; the Python layer fills it with SciPy's exact semantics.
//
// Bit-identical for any thread count: a row longer than settings().chunked_row
// (2^18) elements is always split into chunks of settings().chunk_elements
// (2^16), whatever the thread count; its per-chunk (m, e) partials are reduced
// in chunk order, and shorter rows are never split. Threads only decide who
// runs which chunk or row.
#pragma once
#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

#include "kernels/kernel_api.h"

namespace ssm {

enum class Algorithm { TwoPass, ThreePassRecompute, ThreePassReload, Online, Auto };

// Every algorithm's name, "auto" first (exported as _core.ALGORITHMS).
std::vector<std::string> algorithm_names();
// Throws std::invalid_argument naming the valid algorithms.
Algorithm parse_algorithm(const std::string& name);
const char* algorithm_name(Algorithm a);

enum class StorePolicy { Auto, Stream, Regular };
StorePolicy parse_store_policy(const std::string& name);
const char* store_policy_name(StorePolicy p);

// Software prefetch distance setting (bytes; -1 = default), see
// prefetch_distance() in kernels/kernel_api.h.
extern std::atomic<int> g_prefetch_bytes;

// Run-time settings (process-wide). The setters exist for tests and tuning.
struct Settings {
  StorePolicy store_policy;
  size_t chunk_elements;     // chunk size of rows longer than chunked_row
  size_t chunked_row;        // rows longer than this are split into chunks
  size_t parallel_min;       // fewer elements than this in a call: no threads
  size_t stream_min_bytes;   // Auto stores: stream when the output is at least this big
  size_t reload_max_bytes;   // auto algorithm: three-pass-reload while a row is at most this big (1 row at a time)
};
Settings settings();
void set_store_policy(StorePolicy p);
void set_chunking(size_t chunk_elements, size_t chunked_row);
void set_parallel_min(size_t elements);
// Would a call writing this many bytes use streaming stores?
bool use_stream(size_t out_bytes);
// What `auto` runs for a row of n elements of elem_size bytes, when that
// many rows are processed at the same time (one per thread).
Algorithm resolve_auto(size_t n, size_t elem_size, size_t concurrent_rows = 1);

// Per-chunk pass-1 partials m * 2^e of one row, combined in chunk order
// (double-double): the same chunks give the same bits whoever computed them.
// NaN if a partial is not finite; max and special are combined too.
ExpSum combine_partials(const ExpSum* first, size_t count);

// Batches of contiguous rows: x and y are (rows, n), C order. Each returns
// the indices of special rows, ascending.
// special_y_unspecified: y does not overlap x, and the caller overwrites the
// special rows itself, so their y may be left partly written (three-pass-reload
// then skips its max pass, see reload_guessed in driver.cpp).
template <class T>
std::vector<size_t> softmax_batch(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n, Algorithm a,
                                  bool special_y_unspecified = false);
template <class T>
std::vector<size_t> log_softmax_batch(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n);
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
