// sample() and topk() over batches of contiguous rows (baseline code: no
// intrinsics; the passes come from the active kernel set's SampleKernels).
//
// A row longer than settings().chunked_row is cut into chunks of
// settings().chunk_elements whatever the thread count, and every pass
// combines its chunks' results in chunk order (masses are exact fixed-point
// sums, candidates merge by (value, index)), so the result does not depend on
// the threads: a batch runs its rows in parallel, a single row its chunks.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "kernels/gumbel_api.h"

namespace ssm {

// Per-row settings of a sample() call; arrays of `rows` entries.
struct SampleRequest {
  const double* temperature;  // >= 0; 0: greedy
  const int64_t* top_k;       // 0: off
  const double* top_p;        // in (0, 1]; 1: off
  const double* min_p;        // in [0, 1]; 0: off
  const GumbelKey* keys;      // one per row (per_row_keys) or keys[0] for all
  bool per_row_keys;          // row r draws as row 0 of its own key
  int logprobs;               // 0: none, 1: raw, 2: processed
};

// (first bad row or -1, what is wrong with it)
using RowStatus = std::pair<long long, std::string>;

template <class T>
RowStatus sample_batch(const T* x, size_t rows, size_t n, const SampleRequest& req, int64_t* token,
                       double* logprob);

// The k largest of each row, descending, lower index first among equals.
template <class T>
RowStatus topk_batch(const T* x, size_t rows, size_t n, size_t k, T* value, int64_t* index);

// Testing hook of top-k's draw (sample_driver.cpp): 0 (the default) picks
// between the draw on the candidates' own noise and the masked pass by the
// row's length and the candidates' count, 1 forces the former, 2 the latter
// (where both apply: same tokens either way). Returns the previous setting.
int set_top_k_draw(int how);

// Testing hook of the k-best selection's method (see select_method in
// kernels/sample_api.h): 0 by the rule, 1 the candidate buffer, 2 the heap.
// Returns the previous setting.
int set_select_method(int how);

// Testing hooks of top-p's estimate pass (sample_driver.cpp): on (the
// default) or off (the exact passes alone; returns the previous setting), and
// how often, since the process started, its bounds decided the threshold and
// how often they left it to the exact passes (rows whose zone did not hold
// the threshold are in neither count).
bool set_top_p_estimates(bool on);
// Testing hooks of top-p's draw first (sample_driver.cpp, without top-k and
// logprobs="processed"): on (the default) or off (the threshold search
// always; the same tokens either way; returns the previous setting), and
// how often since the process started the drawn winner was decided kept,
// decided filtered out, or left open by the estimate's bounds.
bool set_top_p_draw_first(bool on);
std::array<uint64_t, 3> top_p_draw_first_counts();
// Testing: top-p's next candidates after a dropped winner (kept, dropped, left open by the bounds).
std::array<uint64_t, 3> top_p_next_best_counts();
// top-p's threshold for one row with finite max (temperature > 0): the
// smallest kept logit, from the exact passes alone (exact) or as sample()
// finds it.
template <class T>
double top_p_floor(const T* x, size_t n, double temperature, double top_p, bool exact);

// Testing: the active kernel set's draw-first coarse pass (mass_coarse) over
// a whole float32 row as one chunk -> {ok, above, rest, round, max} (max
// -inf unless find_max).
std::array<double, 5> top_p_coarse(const float* x, size_t n, double ref, double inv_temp, double pivot,
                                   bool find_max);
// Testing: the active kernel set's estimate pass (mass_estimate) over a whole
// float32 row as one chunk, collecting the x in (clo, chi] into out (room
// for cap values; the caller checks what lies past them) -> how many there are.
uint64_t top_p_estimate_collect(const float* x, size_t n, double ref, double inv_temp, double pivot, double clo,
                                double chi, double* out, size_t cap);
std::pair<uint64_t, uint64_t> top_p_estimate_counts();
// Testing: the pass that collects a zone's values without masses (top-p's
// next zone out, short rows whole) over a row as one chunk: the x in (clo,
// chi] into out in row order while they fit cap -> how many there are.
template <class T>
uint64_t top_p_collect(const T* x, size_t n, double clo, double chi, double* out, size_t cap);

}  // namespace ssm
