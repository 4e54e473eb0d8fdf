// Sampling kernels for AVX-512.
#include "random_avx512.h"
#define SSM_ISA avx512
#include "gumbel_generic.h"
#include "sample_generic.h"
#include "topk_lanes_avx512.h"

namespace ssm {
namespace avx512 {
namespace {
// mass_coarse: 8 vectors in flight (24 sums and maxes of 32 registers):
// the pass alone over one warm row of 151,936 float32, against 4 (the
// default): 0.62 -> 0.58 of logsumexp of the same row (3 alternating runs,
// medians of 500)
// No next-row prefetch: the 256 KiB the other kernel sets prefetch, spread
// over this pass, made the batch slower (Zen 5, 64 x 151,936 float32,
// 1 thread, sample(temperature=0.7, top_p=0.95), fastest of 7 interleaved
// processes: 33.8 -> 30.1 us per row at sigma 1, 33.5 -> 29.2 at sigma 3;
// 64 or 128 KiB: the same as none).
template <>
struct CoarseTuning<F32x16> {
  static constexpr size_t unroll = 8;
  static constexpr size_t next_bytes = 0;
};

template <>
struct ShortTopk<F32x16, float> : ShortTopkBy<TopkLanes<float>, float> {};
template <>
struct ShortTopk<F64x8, double> : ShortTopkBy<TopkLanes<double>, double> {};
}  // namespace
}  // namespace avx512
}  // namespace ssm

namespace ssm {
const SampleSet& sample_kernels_avx512() {
  static const SampleSet set{avx512::make_sample_kernels<avx512::F32x16, avx512::F64x8, avx512::Random, float>(),
                             avx512::make_sample_kernels<avx512::F64x8, avx512::F64x8, avx512::Random, double>()};
  return set;
}
}  // namespace ssm
