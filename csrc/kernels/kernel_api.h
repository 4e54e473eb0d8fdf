// The contract between the per-ISA kernel translation units and the rest of the
// extension. Plain C++ types only: no intrinsics cross this boundary, so the
// driver (compiled for baseline x86-64) can call any kernel set through the
// same table of function pointers.
#pragma once
#include <cstddef>
#include <limits>

namespace ssm {

// A sum of exp(x_i - ref) kept as m * 2^e, so it neither overflows nor
// underflows for any finite input. Partial sums over chunks combine exactly
// up to one rounding (see combine_partials() in chunking.h).
struct ExpSum {
  double m = 0.0;                                        // mantissa part (signed for weighted sums)
  double m_lo = 0.0;                                     // low part: m + m_lo is the sum to ~2^-100
  double e = -std::numeric_limits<double>::infinity();  // integer-valued exponent
  double max = -std::numeric_limits<double>::infinity(); // largest x seen (NaN ignored; weighted: over b != 0)
  bool special = false;  // a NaN (or, weighted, a non-finite weight) was seen
  // Bound on the error of m * 2^e as the exact sum S (fast passes only; the
  // driver uses it to decide whether a result is certainly accurate):
  // err * S + err_rest * (S - exp(max)), err_rest for the terms other than
  // the row max's own (sums that compute that term accurately: expsum_lse
  // for data narrower than float64; else 0). With v = log S - max, the
  // relative error is err + err_rest * (1 - exp(-v)).
  double err = 0.0;
  double err_rest = 0.0;
  // The part of err that the one-fma reduction's worst case (2^21 terms per
  // lane) over-counts for a sum whose lanes hold fewer terms (expsum_fast.h,
  // kShortReduceErr): err - err_lane_slack still bounds it. Only float64
  // log_softmax's certification reads it; chunks combine to the minimum.
  double err_lane_slack = 0.0;
  // expsum_top only: the row max's own term as the kernel computed it, at
  // 2^e (m + m_lo then holds every other term; see expsum_top).
  double top = 0.0;
  // Weighted online sums only (expsum_online_wide with b): sum |b exp(x -
  // max)| over the terms (within n 2^-53 relative; with no negative weight
  // the sum m + m_lo itself). Where weights of both signs cancel, the sum's
  // error grows with it, not with |S| (lse_cancel_excess in softmax_rows.h).
  double mag = 0.0;
};

// A weighted sum's bound on the error of its terms other than the max's own
// (lse_cancel_excess in softmax_rows.h; the weighted group kernel in
// rows_generic.h) takes the max's weights k off the magnitudes: all of |k|
// where every weight has one sign, 1 - 2^-4 of it with weights of both signs,
// whose compensated steps may drop a carry of 2^-53 |k| (counted at 2^-49,
// as the other terms: the 2^-4 left).
constexpr double kMixedMaxWeightsOff = 1.0 - 0x1p-4;

// Inputs with |x| above this are outside the fast two-pass range reduction:
// exp(x) = m * 2^n with n = round(x * log2(e)) stays exact for |n| < 2^22 (the
// fma-based reduction, and the 31-bit Cody-Waite split of the scalar path).
// Rows whose max leaves [-kFastLimit, kFastLimit] are redone relative to their
// max, where x - max is computed exactly (TwoSum), so every finite input works.
constexpr double kFastLimit = 1048576.0;     // 2^20
constexpr double kClampLow = -2097152.0;     // -2^21: exp(x) is 0 relative to any in-range max
// The fast passes track no max: a sum m * 2^e whose exponent lies in
// [-kFastExp, kFastExp - 128] (with 2^-1 < m < 2^100) proves that the row's
// max was within about kFastLimit, i.e. that every term was reduced exactly.
constexpr double kFastExp = 1512775.0;       // floor(2^20 * log2(e))
// expsum_lse32 (float32 table-exp terms) covers rows with |max| <= 2^13.
constexpr double kTable32Limit = 8192.0;
// The scalar double-double sum's own bound on an unweighted row's lse
// (lse_accurate in softmax_rows.h): (n + 4) kLseScalarErr absolute. A
// float64 result of the vector tier whose bound is below it stands even
// where it does not certify 2^-47 relative: the scalar sum could not do
// better.
constexpr double kLseScalarErr = 0x1p-100;
// Below these |lse| (float32, float64) the vector tier of the log-sum-exp
// near 0 (Kernels::lse_dd; exp_dd.h) cannot certify the result (float32: 1
// ulp, its terms within 2^-94; float64: 2^-47 relative, its bound on an
// unweighted row below 2^-100.6 + 2^-52 |lse|), so rows whose float64 sum
// proves |lse| below them go straight to the scalar double-double sum. A
// speed choice only: either tier's result is checked. float64: none, as
// unweighted rows' results stand on kLseScalarErr (a weighted row below
// 2^-54, which needs 2^-47 relative, tries the vector tier in vain).
constexpr double kLseDdReach32 = 0x1p-67;
constexpr double kLseDdReach64 = 0.0;

// Loop geometry of a kernel table, for tests that must reach every vector
// tail: name -> elements (a kernel's main-loop step, a block, a panel). Filled
// by the kernel set's make_* function from the constants its loops use.
// Plain data: nothing here may be an inline function (it would be compiled
// once per instruction set and merged by the linker).
struct Tile {
  const char* name;
  size_t elements;
};
struct TileList {
  static constexpr int kCapacity = 48;
  Tile item[kCapacity];
  int count;
};

// Strided layout: element (i, j) of a reduction over i (n steps) for column j
// (cols of them) is at x[i * stride + j]; the columns are contiguous.
template <class T>
struct Kernels {
  // Pass 1 of the two-pass algorithm (and the fast log-sum-exp): sum exp(x)
  // as m * 2^e in T arithmetic (float32: terms and block sums; the blocks
  // are added in float64 lanes), with no max and no NaN test. NaN or +inf make
  // m NaN, out-of-range inputs push e out of [-kFastExp, kFastExp]; the
  // caller classifies such rows with max_scan. Sets err.
  ExpSum (*expsum_fast)(const T* x, size_t n);
  // Same sum with every term relative to the fixed power of two 2^e_ref
  // (e_ref = round(max * log2 e), known from a max pass): no overflow checks.
  ExpSum (*expsum_pow2)(const T* x, size_t n, double e_ref);
  // sum exp(x - ref) as m * 2^e, plus max(x) and NaN flag. exact: x - ref is
  // formed exactly (TwoSum), needed whenever ref != 0.
  ExpSum (*expsum)(const T* x, size_t n, double ref, bool exact);
  // Online normalizer: per-lane running max with a rescaled sum. Returns
  // m = sum exp(x - max), e = 0, max = max(x).
  ExpSum (*expsum_online)(const T* x, size_t n);
  // max(x) and the NaN flag only (pass 1 of the three-pass algorithms).
  ExpSum (*max_scan)(const T* x, size_t n);
  // y = exp(x) * 2^-e_ref (in range); returns the sum of the stored y (e = 0).
  // Regular stores only: the next pass reads y back from the cache, and the
  // sum's grouping must not depend on y's alignment. e_ref may be a guess
  // below the max's: a block summing above 2^100 (or NaN: a NaN or +inf x)
  // ends the pass early with m = NaN and y partly written, and the caller
  // redoes the row from its max (softmax_generic.h).
  ExpSum (*expsum_store_pow2)(const T* x, T* y, size_t n, double e_ref);
  // y = exp(x - ref) (x - ref exact); returns the sum of the stored y (e = 0).
  ExpSum (*expsum_store)(const T* x, T* y, size_t n, double ref);
  // y *= factor.
  void (*scale)(T* y, size_t n, double factor, bool stream);
  // y = exp(x - ref) * 2^-e * inv.
  void (*write_exp)(const T* x, T* y, size_t n, double ref, bool exact, double e, double inv, bool stream);
  // y = x - (shift_hi + shift_lo)   (log_softmax's second pass)
  void (*write_shift)(const T* x, T* y, size_t n, double shift_hi, double shift_lo, bool stream);
  // Log-sum-exp pass in float64 arithmetic whatever T is (so a float32
  // logsumexp is correctly rounded in practice); b (may be null) weights each
  // term. With b, max is over b != 0 and `special` flags NaN x or non-finite b.
  ExpSum (*expsum_wide)(const T* x, const T* b, size_t n, double ref, bool exact);
  // One pass, max-relative, in float64 arithmetic whatever T is: max = max x
  // (over b != 0 when weighted), m + m_lo = sum b*exp(x - max) with e = 0. The
  // max's own term is exactly 1, so m - 1 + m_lo keeps the small remainder
  // that log_softmax and logsumexp need near 0 (log1p of it).
  ExpSum (*expsum_online_wide)(const T* x, const T* b, size_t n);
  // The vector tier of the accurate log-sum-exp near lse = 0 (exp_dd.h):
  // S = sum b exp(x - max) in double-double lanes (b null: 1; max: the
  // row's, over b != 0), out = {max + log S, sign of S, a bound on the
  // error of the first}. false: S below 2^-900 or above 2^1000 in
  // magnitude (the scalar path decides).
  bool (*lse_dd)(const T* x, const T* b, size_t n, double max, double* out);

  // The fast sum in float64 arithmetic whatever T is, plus max = max(x)
  // (clamped below at kClampLow; NaN ignored): log_softmax's first pass and
  // the accurate log-sum-exp. Sets err (~1e-15 for float64 data, ~1.5e-15
  // for narrower data, whose exp polynomial is cut to err_rest ~2.6e-9 for
  // all terms but the max's). As expsum_fast, a
  // NaN, inf or out-of-range row shows in m and e (fast_ok).
  ExpSum (*expsum_lse)(const T* x, size_t n);

  // float64 log_softmax's first pass: max = max(x) (clamped below at
  // kClampLow; NaN ignored) and the sum of exp(x) at 2^e split into top, one
  // occurrence of the max's own term exactly as computed, and m + m_lo
  // (double-double), all the other terms, each compensated (TwoSum) so that
  // (m + m_lo) / exp(max) is relatively accurate however small.
  // err: relative error bound of each term; err_rest: absolute bound (at
  // 2^e) of the summation. NaN or +inf make m NaN. See expsum_fast.h.
  ExpSum (*expsum_top)(const T* x, size_t n);

  // float32 log_softmax's cheaper first pass (null where the lanes have no
  // float32 table exp, and for float64 data): as expsum_lse, with float32
  // table-exp terms summed in float64 and the max's term accurate: err_rest
  // ~1.1-1.23 * 2^-24 (expsum_table32.h). Rows whose max lies outside
  // [-kTable32Limit, kTable32Limit] show NaN m or are not to be certified.
  ExpSum (*expsum_lse32)(const T* x, size_t n);
  // expsum_lse32 that also copies x to y (y must not overlap x): pass 2 then
  // rewrites y in place from the cache, and the write traffic of y (its
  // read for ownership) overlaps the exp arithmetic as in softmax's
  // three-pass-reload. Null wherever expsum_lse32 is.
  ExpSum (*expsum_lse32_copy)(const T* x, T* y, size_t n);
  // expsum_lse32 with one float per table entry (a scaled table): err_rest
  // 1.35 * 2^-24, one permute and one add fewer per vector. Where it is
  // offered the driver tries it first and runs expsum_lse32 only for rows
  // its bound cannot certify but expsum_lse32's, whose err_rest
  // (lse32_err_rest) it then predicts from this pass's lse - max. y: null,
  // or the row's output, whose lines it prefetches for writing (where they
  // stay cached until pass 2, which then finds them owned: the read for
  // ownership overlaps this pass's arithmetic, as expsum_lse32_copy's store
  // does on AVX2, without the store). Null where not offered (kernel sets
  // with an 8-entry table; Lse32Tuning<V>::fast says which offer it, AVX2
  // among them).
  ExpSum (*expsum_lse32_fast)(const T* x, T* y, size_t n);
  double lse32_err_rest;
  // expsum_lse32_fast that also copies x to y, as expsum_lse32_copy does
  // (same bits as expsum_lse32_fast): the copied rows of kLse32FastMinRow
  // or more start with it and are retried as expsum_lse32_fast's are. Null
  // where not offered (sets with no copy or no expsum_lse32_fast).
  ExpSum (*expsum_lse32_copy_fast)(const T* x, T* y, size_t n);
  // write_shift in float64 arithmetic with one rounding to float at the
  // store (write_passes.h), where expsum_lse32's sum cannot certify the
  // float32 write; null wherever expsum_lse32 is.
  void (*write_shift_wide)(const T* x, T* y, size_t n, double shift_hi, double shift_lo);

  // Strided (any-axis) kernels: vectors run across the contiguous columns.
  // Per-column sums m[j] * 2^e[j] of exp(x[., j]) in T arithmetic, no max,
  // no NaN test (the driver redoes flagged columns contiguously);
  // err_strided_fast bounds their relative error.
  void (*expsum_strided_fast)(const T* x, size_t n, size_t stride, size_t cols, double* m, double* e);
  double err_strided_fast;
  // Per-column max[j] (NaN ignored) and m[j] + m_lo[j] = sum exp(x[., j] -
  // max[j]) in float64 arithmetic, x - max exact, in one read (online: the
  // accurate, max-relative pass). A NaN makes m[j] NaN.
  void (*expsum_strided_online)(const T* x, size_t n, size_t stride, size_t cols, T* max, double* m,
                                double* m_lo);
  // y[., j] = exp(x[., j]) * 2^-e[j] * inv[j]   (per-column e and inv)
  void (*write_exp_strided)(const T* x, T* y, size_t n, size_t stride, size_t cols, const T* e, const T* inv,
                            bool stream);
  // y[., j] = (x[., j] - hi[j]) - lo[j]
  void (*write_shift_strided)(const T* x, T* y, size_t n, size_t stride, size_t cols, const T* hi, const T* lo,
                              bool stream);

  // exp(x) by the kernel's own exp (test and accuracy-sweep hook).
  void (*vexp)(const T* x, T* y, size_t n);
  // Bandwidth probes with the same loads and stores as the kernels: a
  // streaming sum, a copy, and a store-only fill.
  double (*probe_read)(const T* x, size_t n);
  void (*probe_copy)(const T* x, T* y, size_t n, bool stream);
  void (*probe_fill)(T* y, size_t n, double value, bool stream);

  // Instantiations of expsum_fast over (unroll, block) for tuning by
  // measurement (_core.testing.tune_expsum); expsum_fast is one of them.
  static constexpr int kVariants = 6;
  ExpSum (*expsum_fast_variant[kVariants])(const T* x, size_t n);
  const char* variant_name[kVariants];

  TileList tiles;
};

// Software prefetch distance, in bytes ahead of the current load, for a
// streaming pass over `bytes` bytes of input: 0 (hardware prefetchers only)
// below 16 KiB, else the distance set by _core.testing.set_prefetch (default
// 16 KiB, the measured best). While the core is busy with the exp arithmetic
// its out-of-order window alone keeps too few cache lines in flight to reach
// DRAM bandwidth. The bandwidth probes prefetch the
// same way, so the roofline compares like with like. Defined in settings.cpp.
size_t prefetch_distance(size_t bytes);

struct KernelSet {
  const char* name;
  Kernels<float> f32;
  Kernels<double> f64;
};

// One per kernel translation unit.
const KernelSet& kernels_scalar();
#if defined(SSM_HAVE_X86_KERNELS)
const KernelSet& kernels_avx2();
const KernelSet& kernels_avx512();
#endif
#if defined(SSM_HAVE_NEON_KERNELS)
const KernelSet& kernels_neon();
#endif

}  // namespace ssm
