// The sampling family's kernel table: the selection passes behind sample()
// and topk() (see sample_generic.h for the algorithms). Plain C++ types only,
// like kernel_api.h and gumbel_api.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gumbel_api.h"

namespace ssm {

// A non-negative sum of probability masses exp(z - zmax) <= 1 in fixed point,
// units of 2^-96, as a 128-bit integer (hi, lo): integer addition is
// associative, so a row's mass sums are the same bits however the row is cut
// into chunks and whichever kernel set added them (a mass below 2^-96 counts
// as 0; a row would need 2^31 elements to overflow).
struct FixedMass {
  uint64_t hi = 0, lo = 0;
};

// One bin of a mass histogram: the elements x whose bin is this one, their
// count, mass and the smallest and largest of them.
struct MassBin {
  FixedMass mass;
  uint64_t count = 0;
  double lo = 0, hi = 0;  // valid when count > 0
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
  // The mass histogram of the elements x in [lo, hi] (bins 0..bins-1, bin
  // min(floor((hi - x) * scale), bins - 1): larger x, lower bin) and, when
  // sink is set, of the finite x < lo (bin `bins`). Mass: exp((x - ref) *
  // inv_temp) (1 where x = ref). Adds into out.
  void (*histogram)(const T* x, size_t n, double ref, double inv_temp, double lo, double hi, double scale,
                    size_t bins, bool sink, MassBin* out);
  // The values x in [lo, hi], appended to out (at most cap); returns how many
  // there are (possibly more than cap).
  size_t (*collect)(const T* x, size_t n, double lo, double hi, double* out, size_t cap);
  // The mass of the elements x >= floor, added into out.
  void (*mass)(const T* x, size_t n, double ref, double inv_temp, double floor, FixedMass* out);
  // gumbel_argmax's pass over the chunk with every x < floor taken as -inf
  // (GumbelKernels::topk with k = 1 on the masked logits, bit for bit).
  TopkResult (*draw)(const T* x, size_t n, uint64_t start, uint64_t row, const GumbelKey& key, double inv_temp,
                     T floor, Candidate* out);
  // The same scores for a few elements only (the candidates of a top-k
  // filter): the best of x[index[j]]'s scores, j < count (x: the whole row).
  Candidate (*draw_at)(const T* x, const uint64_t* index, size_t count, uint64_t row, const GumbelKey& key,
                       double inv_temp);
};

struct SampleSet {
  SampleKernels<float> f32;
  SampleKernels<double> f64;
};

const SampleSet& sample_kernels_scalar();
#if defined(SSM_HAVE_X86_KERNELS)
const SampleSet& sample_kernels_avx2();
const SampleSet& sample_kernels_avx512();
#endif
#if defined(SSM_HAVE_NEON_KERNELS)
const SampleSet& sample_kernels_neon();
#endif

}  // namespace ssm
