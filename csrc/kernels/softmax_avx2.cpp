// Softmax-family kernels for AVX2 + FMA (Haswell and later, Zen).
#include "vecmath_avx2.h"
#define SSM_ISA avx2
#include "softmax_generic.h"

namespace ssm {
namespace avx2 {
namespace {
// Unroll x block of the fast sums, picked with _core.testing.tune_expsum on a
// 256 KiB in-cache row (the fastest variant, measured on Zen 5).
template <>
struct Tuning<F32x8> {
  static constexpr int unroll = 4, block = 2, strided_block = 4, store_unroll = 4, store_block = 2;
};
template <>
struct Tuning<F64x4> {
  static constexpr int unroll = 8, block = 1, strided_block = 4, store_unroll = 4, store_block = 2;
};
// expsum_lse of float32 data: 4 x 2 rather than the float64 sum's 8 x 1.
// Its terms keep the max and the converted loads live besides the chains,
// and 16 ymm registers do not hold 8 of them: fewer spills (objdump: 7.31
// -> 7.09 instructions per element; log_softmax / softmax 5-9% lower in
// same-run A/B, noisy). For float64 data 4 x 2 ran 5-9% slower: 8 x 1 kept.
template <>
struct LseTuning<F64x4, float> {
  static constexpr int unroll = 4, block = 2;
};
// expsum_top on 16 ymm registers: U = 2 (the degree-11 polynomial's
// staged r, n and terms for 4 vectors besides 4 (s, c) pairs spill).
template <>
struct TopTuning<F64x4> {
  static constexpr int unroll = 2;
};
// expsum_lse32 on 16 ymm registers: one pair of float64 chains (two
// pairs spilled to the stack at U = 4). The copy: AVX2's pass 1 costs no
// more than softmax's, so log_softmax's extra time was pass 2's read for
// ownership of y after it (a standalone kernel A/B, 1024 rows of 4096
// in the shared cache, min of 200: lse32 + write 0.547 ns per element,
// copy 0.512, softmax 0.553). On AVX-512 the copy's store lengthened the
// exp-bound pass instead (0.359 -> 0.372; softmax 0.318): not offered.
// fast: rows of kLse32FastMinRow or more that take no copy start with the
// one-float table of its own scale (expsum_table32.h, Tight: err_rest
// 1.29u), one permute and one add fewer per vector (Zen 3, one 4 Mi-element
// row: the pass 3.63 -> 3.35 instructions per element, callgrind; with
// pow2_table32's bits, log_softmax 0.95-0.96 of the time before, CPU time
// of interleaved processes under load 7-12). The prefetch of y for
// writing (Own) on such rows too: no change (1.006 at 4 Mi, 1.003 at 2 Mi).
// Copied rows of kLse32FastMinRow or more take the one-float table too
// (copy and fast: expsum_lse32_copy_fast), which the table pair had kept:
// on Zen 3 the table pass is bound by its vector operations (single-row
// thread CPU time, n = 151936, per element: expsum_fast 1.00, expsum_lse32
// 1.57, expsum_lse32_fast 1.36). 4 Mi-element log_softmax with out= another
// array, thread CPU time, medians of 9 interleaved rounds, main -> this, in
// three runs (load 5-7; 7-8 with two builds besides; 3-6): n = 1000 0.915,
// 0.965, 0.906; 10000 0.809, 0.999, 0.899; 151936 0.902, 0.995, 0.850
// (softmax, unchanged: 0.950, 1.073, 1.037). Callgrind, rows of 10000,
// both passes: 4.87 -> 4.72 instructions per element.
template <>
struct Lse32Tuning<F32x8> {
  static constexpr int unroll = 4, chains = 1;
  static constexpr bool copy = true;
  static constexpr bool fast = true;
};
}  // namespace
}  // namespace avx2
}  // namespace ssm

namespace ssm {
const KernelSet& kernels_avx2() {
  static const KernelSet set{"avx2", avx2::make_kernels<avx2::F32x8, avx2::F64x4, float>(),
                             avx2::make_kernels<avx2::F64x4, avx2::F64x4, double>()};
  return set;
}
}  // namespace ssm
