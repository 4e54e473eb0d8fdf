// The Gumbel family's kernel table (see gumbel_generic.h for the algorithms).
// Plain C++ types only, like kernel_api.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernel_api.h"

namespace ssm {

// Philox4x32-10 key (k0, k1) plus a 64-bit offset added to the row number to
// form the upper half of the counter: 128 bits drawn from the user's rng.
struct GumbelKey {
  uint32_t k0 = 0, k1 = 0;
  uint64_t row_offset = 0;
};

// gumbel_softmax's term forms (see GumbelKernels::expsum).
constexpr int kScaledForm = 0, kExactForm = 1, kUnitForm = 2;

struct Candidate {
  double score;
  uint64_t index;  // global position along the row
};

struct TopkResult {
  size_t count = 0;      // candidates written (min(k, finite entries))
  bool nan = false;      // a NaN logit was seen
  bool posinf = false;   // a +inf logit was seen
};

template <class T>
struct GumbelKernels {
  // Best k of (x*inv_temp + g) 2^-s (2^-s: noise_scale in gumbel_generic.h,
  // 1 when inv_temp <= 1) over a chunk of one row: x[0..n) holds the
  // elements with global indices start..start+n of row `row`. `out` (capacity
  // k) receives them sorted by score, then by lower index. prune=false
  // evaluates every element's noise (the check that pruning changes nothing).
  // min_score: only scores >= min_score are wanted (-inf: all); a lower bound
  // of the row's k-th best score found elsewhere (another chunk), for pruning.
  TopkResult (*topk)(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp,
                     size_t k, Candidate* out, bool prune, double min_score);
  // The noise itself (test hook): g for global indices start..start+n of row.
  void (*noise)(T* g, size_t n, uint64_t start, uint64_t row, const GumbelKey& key);
  // gumbel_softmax's two passes, the noise regenerated in each, in one of
  // three forms: sum exp((x + g) * inv_tau) (kScaledForm), exp((x + g - ref)
  // * inv_tau) (kExactForm, ref the row's largest x + g), or, for inv_tau =
  // 1 only, exp(x) / E with g = -log E (kUnitForm: one log per element, not
  // two), as m*2^e; max is the largest x + g (not scaled), or the largest x
  // in the unit form. keep (or null): where pass 1 leaves what pass 2 needs
  // of each element (the term's mantissa exp(x) / E in the unit form, else
  // the noise g) ...
  ExpSum (*expsum)(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_tau,
                   double ref, int form, T* keep);
  // ... and y = that exponential * 2^-e * inv, the noise regenerated ...
  void (*write)(const T* x, T* y, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_tau,
                double ref, int form, double e, double inv);
  // ... or read from what expsum kept in the same form (noise may be y).
  void (*write_kept)(const T* x, T* y, size_t n, const T* noise, double inv_tau, double ref, int form, double e,
                     double inv);
  // gumbel_softmax of short rows, several at a time, each row's noise made
  // once: rows x n logits at x (row r at global row row + r, columns
  // start..start+n) with start % 64 + n <= softmax_rows_max (one tile);
  // row r's result to y + r n, bit for bit what expsum/write give (form
  // and redo as gumbel_softmax_rows chooses them), or fault[r] = 1 (NaN),
  // 2 (+inf), 3 (no finite logit) and row r not written.
  void (*softmax_rows)(const T* x, T* y, size_t rows, size_t n, uint64_t start, uint64_t row, const GumbelKey& key,
                       double inv_tau, uint8_t* fault);
  size_t softmax_rows_max;
  // Each of rows x n logits' fault, in the order gumbel_softmax reports them:
  // fault[r] = 0, or 1 (NaN), 2 (+inf), 3 (no finite logit).
  void (*scan_rows)(const T* x, size_t rows, size_t n, uint8_t* fault);
  // Short rows, several at a time: rows x n logits at x (row r at global row
  // row + r, columns start..start+n), n <= short_rows_max; row r's best k go
  // to out[r k ..] and its result to res[r], exactly as topk gives them
  // (min_score -inf).
  void (*topk_rows)(const T* x, size_t rows, size_t n, uint64_t start, uint64_t row, const GumbelKey& key,
                    double inv_temp, size_t k, Candidate* out, TopkResult* res);
  size_t short_rows_max;
  // The raw Philox4x32-10 words of 16 consecutive blocks (test hook):
  // out[16*w + l] = word w of block (base + l), counter high words (c2, c3).
  void (*philox16)(uint64_t base, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t* out);

  TileList tiles;
};

struct GumbelSet {
  GumbelKernels<float> f32;
  GumbelKernels<double> f64;
};

const GumbelSet& gumbel_kernels_scalar();
#if defined(SSM_HAVE_X86_KERNELS)
const GumbelSet& gumbel_kernels_avx2();
const GumbelSet& gumbel_kernels_avx512();
#endif
#if defined(SSM_HAVE_NEON_KERNELS)
const GumbelSet& gumbel_kernels_neon();
#endif

}  // namespace ssm
