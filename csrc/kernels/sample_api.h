// The sampling family's kernel table: the selection passes behind sample()
// and topk() (see sample_generic.h for the algorithms). Plain C++ types only,
// like kernel_api.h and gumbel_api.h.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "gumbel_api.h"

namespace ssm {

// A non-negative sum of probability masses exp(z - zmax) <= 1 in fixed point,
// units of 2^-96, as a 128-bit integer (hi, lo): integer addition is
// associative, so a row's mass sums are the same bits however the row is cut
// into chunks and whichever kernel set added them (a row would need 2^31
// elements to overflow).
//
// sample()'s masses (SampleKernels::mass_pass and value_mass) are the
// project's float64 vector exp of (x - max) / T, bit-identical on every kernel
// set, rounded to the nearest multiple of 2^-64: a token with mass below
// 2^-65 counts as 0.
struct FixedMass {
  uint64_t hi = 0, lo = 0;
};

// mass_pass takes at most this many pivots.
constexpr size_t kMaxPivots = 4;

// What mass_pass returns for a chunk: the mass of every finite x, the mass of
// the x > pivot[j], and how many x lie in (clo, chi] (all counted, at most cap
// of them written).
struct MassPass {
  FixedMass total;
  FixedMass above[kMaxPivots];
  uint64_t count = 0;
};

// What mass_estimate returns for a chunk: MassPass's sums as float64
// estimates, with the parts of a bound on their distance from the exact sums
// (the FixedMass sums of the exact masses of the same elements, as real
// numbers) kept apart, so that a caller comparing a difference of two sums
// can bound the difference's error from the same elements once:
//  * per element, |estimate - exact mass| <= rel * estimate + (its share of
//    abs): abs is the absolute parts of all the chunk's elements together;
//  * the float64 additions: |total - the real sum of the estimates| <=
//    total_round, and likewise above[j] with above_round[j].
// So |total - exact total| <= rel (total + total_round) + abs + total_round.
struct MassEstimate {
  double total = 0, above[kMaxPivots] = {};
  double rel = 0, abs = 0;
  double total_round = 0, above_round[kMaxPivots] = {};
  uint64_t count = 0;
};

// mass_coarse's bound per element, relative to its estimate.
constexpr double kCoarseRel = 0.031;

// What mass_coarse returns for a chunk: coarse float64 sums of the masses
// 2^((x - ref) s) of the x above and not above a pivot (each within
// kCoarseRel = 0.031 of the element's estimate, or below 2^-124 both), a
// bound on the sums' rounding, the chunk's max (when asked for; else
// left as it was) and its element count.
struct CoarseMass {
  double above = 0, rest = 0, round = 0;
  double max = -HUGE_VAL;
  uint64_t count = 0;
};

struct SelectResult {
  size_t count = 0;     // candidates written: min(k, non-NaN elements)
  uint64_t ties = 0;    // elements equal to the k-th value left out (count == k)
  bool nan = false;     // a NaN was seen
  bool posinf = false;  // a +inf was seen
};

template <class T>
struct SampleKernels {
  // The k best elements of a chunk (x[0..n) at global indices start..):
  // largest value first, the lower index first among equal values, into
  // value/index (capacity k), best first. NaN is skipped (and flagged).
  SelectResult (*select)(const T* x, size_t n, uint64_t start, size_t k, double* value, uint64_t* index);
  // One pass of exact masses exp((x - ref) * inv_temp) (see FixedMass): the
  // total over the finite x, the sums over x > pivot[j] for j < pivots (at
  // most kMaxPivots), and the values x with clo < x <= chi, appended to out
  // (at most cap; res->count counts them all). Adds into res.
  void (*mass_pass)(const T* x, size_t n, double ref, double inv_temp, const double* pivot, size_t pivots,
                    double clo, double chi, double* out, size_t cap, MassPass* res);
  // mass_pass's sums estimated with a cheaper exp (sample_generic.h), each
  // with a rigorous error bound against mass_pass's exact sums; the same
  // collected values. Adds into res. ref must be at least every x (the
  // row's max).
  void (*mass_estimate)(const T* x, size_t n, double ref, double inv_temp, const double* pivot, size_t pivots,
                        double clo, double chi, double* out, size_t cap, MassEstimate* res);
  // The same estimate in float64 lanes, with a bound about 30x tighter: for
  // float32 rows mass_estimate computes in float32 lanes (the driver tries
  // this one when that bound cannot decide); for float64 rows the same
  // function as mass_estimate.
  void (*mass_estimate_fine)(const T* x, size_t n, double ref, double inv_temp, const double* pivot, size_t pivots,
                             double clo, double chi, double* out, size_t cap, MassEstimate* res);
  // top-p's draw-first test (float32 rows; nullptr for float64): coarse
  // sums of the masses relative to ref (any finite value) above and not
  // above pivot, and with find_max the chunk's max (see CoarseMass; valid
  // while every x <= ref + 127 / (inv_temp log2 e), which the caller checks
  // on the max or knows). Adds into res; false (nothing added) where the
  // reduction does not hold. The lines of next[0, next_n) (the batch's next
  // row, nullptr: none) are prefetched, spread over the pass: a hint for the
  // next row's draw, no effect on any result.
  bool (*mass_coarse)(const T* x, size_t n, double ref, double inv_temp, double pivot, bool find_max,
                      CoarseMass* res, const T* next, size_t next_n);
  // How much of the batch's next row (its first bytes) the caller hands
  // mass_coarse to prefetch: the kernel set's own figure (sample_generic.h's
  // CoarseTuning), 0 where the prefetch measured slower than none. (No
  // default member initializer: it would give the struct a constructor that
  // an unoptimized build emits, with the kernel file's AVX flags, as a weak
  // symbol outside the ISA namespace; make_sample_kernels sets it.)
  size_t coarse_next_bytes;
  // The values x with clo < x <= chi (clo, chi: values of T or +-inf),
  // appended to out (at most cap); returns how many there are.
  uint64_t (*collect)(const T* x, size_t n, double clo, double chi, double* out, size_t cap);
  // The same mass for each of count values v (one FixedMass each, into out).
  void (*value_mass)(const double* v, size_t count, double ref, double inv_temp, FixedMass* out);
  // gumbel_argmax's pass over the chunk with every x < floor taken as -inf
  // (GumbelKernels::topk with k = 1 on the masked logits, bit for bit).
  TopkResult (*draw)(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp,
                     T floor, Candidate* out);
  // The k best scores of the unmasked draw over the chunk (GumbelKernels::
  // topk's, bit for bit: score descending, the lower index first; out[0] is
  // draw's winner): top-p's next candidates when the filters drop the winner.
  TopkResult (*draw_best)(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp,
                          size_t k, Candidate* out);
  // The same scores for a few elements only (the candidates of a top-k
  // filter): the best of x[index[j]]'s scores, j < count (x: the whole row).
  Candidate (*draw_at)(const T* x, const uint64_t* index, size_t count, uint64_t row, const GumbelKey& key,
                       double inv_temp);
  // The k best of a short row (1 <= k <= short_topk_max_k, k <= n < 2^31)
  // into value / index: the input's values, largest first, the lower index
  // first among equals; false (outputs unspecified) for a row with a NaN.
  // The k best kept in one vector, each value that beats the k-th inserted
  // by a compare, a one-lane shift and two blends, 16 values at a time
  // tested against the k-th first. nullptr (short_topk_max_k 0) where the
  // kernel set has none: the driver's scalar scan (topk_short_row).
  bool (*short_topk)(const T* x, size_t n, size_t k, T* value, int64_t* index);
  size_t short_topk_max_k;
  // The k best of each of rows rows of n (1 <= k <= n <= rows_topk_max_n, k
  // <= 16), row r's to value / index + r k, as short_topk gives them, many
  // rows at a time (gumbel_generic.h's best_k_of_rows: no branch on the
  // data); nan[r] = 1 for a row with a NaN (its outputs unspecified), else
  // 0. nullptr (rows_topk_max_n 0) where the kernel set has none.
  void (*rows_topk)(const T* x, size_t rows, size_t n, size_t k, T* value, int64_t* index, uint8_t* nan);
  size_t rows_topk_max_n;
};

struct SampleSet {
  SampleKernels<float> f32;
  SampleKernels<double> f64;
};

// Testing hook of the k-best selection (SampleKernels::select), defined in
// the baseline code (sample_driver.cpp): 0 (the default) chooses between the
// running heap and the candidate buffer by the rule in sample_generic.h, 1
// takes the buffer wherever it applies, 2 the heap (same results either way).
int select_method();

const SampleSet& sample_kernels_scalar();
#if defined(SSM_HAVE_X86_KERNELS)
const SampleSet& sample_kernels_avx2();
const SampleSet& sample_kernels_avx512();
#endif
#if defined(SSM_HAVE_NEON_KERNELS)
const SampleSet& sample_kernels_neon();
#endif

}  // namespace ssm
