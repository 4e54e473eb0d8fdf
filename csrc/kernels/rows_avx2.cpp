// Short-row kernels for AVX2 + FMA: eight float32 rows (four float64 rows)
// per group, one per lane.
#include "vecmath_avx2.h"

// Lane-wise division for rows_generic.h (the lane types have none).
namespace ssm {
namespace avx2 {
namespace rows {
namespace {
inline __m256d div_lanes(__m256d a, __m256d b) { return _mm256_div_pd(a, b); }
}  // namespace
}  // namespace rows
}  // namespace avx2
}  // namespace ssm

#define SSM_ISA avx2
#include "rows_generic.h"

namespace ssm {
namespace avx2 {
namespace rows {
namespace {
// float32 logsumexp's direct rows from 32 to 256 (kMaxN) since they go in
// sets of 8 rows (4 Mi-element batches, 1 thread, ns per element, medians
// of 5 interleaved runs on a loaded machine, direct / group or per-row:
// n = 20 1.43 / 1.27, n = 24 1.05 / 1.28, n = 28 0.98 / 1.25, n = 192
// 0.50 / 0.55, n = 256 0.455 / 0.462). Since the group kernel's cheaper
// terms and columns (lse_groups_f32) the cut-over is 32, not 24 (Zen 3,
// idle, medians of 9 interleaved processes, time with min_n 32 / 24: n =
// 24 0.76, 28 0.88, 31 0.99; n = 20 and 32, whose path is the same, 0.98
// and 0.97).
// Rows of 5 to 10 keep their group columns in registers, four groups at a
// time (lse_group_regs; the same bits). Zen 3, N(0, 1) rows, callgrind
// instructions per element, lse_groups' pairs / registers: n = 2 25.7 /
// 26.7, n = 3 19.0 / 21.7, n = 5 16.1 / 13.6, n = 8 12.3 / 10.7, n = 10
// 12.4 / 10.4, n = 16 7.2 / 8.2 (rows of 2-4 and from 11 keep the pairs;
// 4 not measured; these totals vary by up to 10% between runs here);
// time / the pairs', 4 Mi-element batches, 1 thread, medians of 5
// interleaved processes at load 1: n = 5 0.75, n = 8 0.83, n = 10 0.73
// (ns per element n = 5 1.99 -> 1.50, softmax 1.33).
// Rows of 2 too since group_sums_regs sums their one other term as the
// pairs do (the same bits): callgrind per element, pairs / registers, n = 2
// 30.3 / 27.9 (Zen 3, N(0, 1), the same runs' method as above).
// Rows of 257-2047 too, each row's max taken in the previous row's loop
// over its terms (Fused, as on AVX-512), in place of the per-row kernels.
// Zen 5, 4 Mi-element batches, 1 thread, bench/ab_builds.py, two runs of
// 11 rounds, fastest processes, time / before: n = 257 0.73, 0.75; 300
// 0.71, 0.72; 512 0.84, 0.84; 1000 0.45, 0.46; 1500 0.42, 0.41; 2047 0.94,
// 0.90 (0.22-0.29 ns per element; controls n = 256 1.02, 1.00, 2048 1.00,
// 1.02); callgrind instructions per element (N(0, 1), 2 Mi-element
// batches), before / after: n = 257 5.82 / 3.60, 512 4.21 / 3.71, 1000
// 3.77 / 3.34, 1500 3.66 / 3.45, 2047 3.60 / 3.11. From 2048 on the
// per-row kernels tie or win in time (7 rounds, direct / per-row: n = 2048
// 1.04, 3000 1.01, 4096 1.07, 10000 1.13) though they take more
// instructions (2048 3.52 / 3.34, 4096 3.34 / 3.14). Rows up to 256 keep
// the sets' maxima first: fused / those at n = 128-256 0.96-0.98 (5
// rounds, within the noise).
template <>
struct LseDirectRange<F32x8> {
  static constexpr size_t min_n = 32, max_n = 2047, regs_min_n = 5, regs_max_n = 10, fused_min_n = 257;
  static constexpr bool regs_n2 = true;
};
// float64 logsumexp's direct rows up to 128. Set by set they lost to the
// per-row kernels from 64 on (4 Mi-element batches, 1 thread, ns per
// element, medians of 3 interleaved runs on a loaded machine, direct /
// per-row: n = 64 2.02 / 1.83, n = 100 1.79 / 1.67, n = 128 1.79 / 1.60,
// n = 256 1.65 / 1.65); with two sets in flight (staged) they win up to
// 100 and tie at 128 (medians of 8 interleaved runs, per-row / direct:
// n = 64 1.70 / 1.39, n = 100 1.56 / 1.28, n = 128 1.30 / 1.28).
template <>
struct Lse64DirectRange<F64x4> {
  static constexpr size_t max_n = 128;
};
// float32 softmax rows up to 24 keep their group's columns in registers,
// four groups at a time up to 16 elements, two from 17
// (softmax_group_regs; the same bits as
// softmax_group). Zen 3, 1 thread, thread CPU time, medians of 5
// interleaved processes at load 8-12, time / softmax_group's, two groups
// at a time everywhere: 2^15-element batches (in L2) n = 2 0.70, 3 0.71, 5
// 0.61, 8 0.80, 10 0.84, 16 0.93, 24 0.88, 31 0.91; 4 Mi-element batches n =
// 2 0.70, 5 0.62, 8 0.80, 16 0.92, 24 0.89-1.00, 31 1.02; four groups at a
// time up to 8 (4 Mi): n = 2 0.67, 5 0.58, 8 0.77; up to 16 (4 Mi, load
// 7-8): n = 10 0.79, 12 0.74, 16 0.90 (two: 0.84, 0.81, 0.92). One
// group at a time it was 1.04-1.20 from n = 8 on (0.82 at n = 5): a
// group's chain (max, terms, the two Kahan chains, 1 / sum, write) is
// longer than the core's window, so one group's latency was the time.
// From 25 to the direct rows' 32 (kDirectMinBytes) four blocks per row in
// registers spill them (4 Mi, load 9, two groups / four groups at a time,
// time / softmax_group's: n = 17 0.94 / 0.98, 20 0.91 / 1.01, 24 0.98 /
// 1.13, 28 1.11 / 1.18, 31 1.04 / 1.07): those rows keep their columns in
// buf instead, two groups at a time (softmax_group_blocks; the same bits).
// Zen 3, 4 Mi-element batches, 1 thread, thread CPU time, load 12, medians
// of 7 interleaved processes, time / softmax_group's, two groups / one: n =
// 25 0.85 / 0.89, 26 0.90 / 0.94, 28 0.86 / 0.88, 29 0.86 / 0.86, 31 0.82 /
// 0.84. At n = 32 they tie with the direct rows (1.00-1.02, 5 rounds),
// which stay there.
template <>
struct SoftmaxRegsRange<F32x8> {
  static constexpr size_t max_n = 24, groups1 = 4, groups2 = 4, groups3 = 2, group_n = 0;
};
template <>
struct SoftmaxBlocksRange<F32x8> {
  static constexpr size_t max_n = 31, groups = 2;
};
// float32 direct rows whose length is not a multiple of 8 end in one whole
// overlapping vector, not a masked load and store (Zen 3, 4 Mi-element
// batches, 1 thread, thread CPU time, load 12, medians of 7 interleaved
// processes, time / the masked tail's: n = 33 0.89, 60 0.90, 100 0.94, 127
// 0.94; n = 40 and 64, no tail, 1.05 and 1.02: noise).
template <>
struct DirectOverlapTail<F32x8> : std::true_type {};
// F64x4::hsum's (a0 + a1) + (a2 + a3) without the trip through memory:
// one horizontal add gives both pairs (the same bits; 5 instructions where
// GCC made 8 of the store and four scalar adds).
template <>
struct RowSumTotal<F64x4> {
  static double of(__m256d a) {
    const __m128d h = _mm_hadd_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  }
};
// float32 direct rows take folded_term (rows_direct.h: the same bits as
// pow2_term, one operation fewer per vector).
template <>
struct DirectFoldedScale<F32x8> : std::true_type {};
// float32 log_softmax rows below 28 took the group pairs
// (log_softmax_groups_f32), the table-exp group kernel from there to the
// direct rows (Zen 3, 4 Mi-element batches, 1 thread, thread CPU time,
// medians of 5 interleaved runs on a loaded machine (load 12-16), pairs /
// group32 ns per element: n = 12 2.06 / 2.48, n = 16 1.72 / 1.98, n = 20
// 1.83 / 1.90, n = 24 1.61 / 1.80, n = 28 1.76 / 1.74, n = 32 1.67 /
// 1.54, n = 47 1.73 / 1.65). Rows of up to 16 (regs_max_n) keep their
// columns in registers, four groups at a time (log_softmax_group_regs; the
// same bits). Zen 3, 4 Mi-element batches, 1 thread, medians of 5
// interleaved processes at load 1, time / the pairs': n = 2 0.68, n = 3
// 0.68, n = 5 0.66, n = 8 0.90, n = 10 0.85, n = 16 0.92 (ns per element
// n = 5 3.35 -> 2.22, softmax 1.33); at load 10-12 two groups at a time
// instead of four was 1.15-1.2x slower up to 12, and rows of 17-24 in
// registers (three blocks, two groups) took more instructions than the
// pairs (callgrind per element n = 20 12.6 / 12.3, n = 24 12.6 / 11.4).
// From 28 to the direct rows' 48 (Lsm32DirectRange below) the pairs beat
// the table-exp group kernel (min_n 48: it is never taken on AVX2; the
// register blocks of BlocksRowsRange take 17-47 but 32): that kernel takes one
// group at a time, whose chain (max, terms, sums, three float64 divisions
// per half, write) the core waits on, while the pairs overlap two. Zen 3,
// 4 Mi-element batches, 1 thread, medians of interleaved processes, time /
// group32's: at load 4-5 (5 rounds) n = 28 0.91, 32 0.96, 36 0.96, 40
// 0.96, 44 0.94, 47 0.95; at load 5-6.5 (7 rounds, the unchanged n = 24
// and 48 1.00 and 0.99) n = 28 0.93, 32 0.94, 36 0.97, 40 0.98, 47 0.98:
// from 36 on within the noise (a few %). Callgrind per element, group32 /
// pairs: n = 28 11.54 / 12.21, 30 11.42 / 11.74, 32 13.12 / 10.81, 36
// 10.65 / 11.08, 40 10.02 / 10.61 (the direct rows: 14.01, 12.93, 11.80,
// 11.66, 11.48). Other bits than group32's at 28-47: the pairs' own
// contract, as at 17-27 and on the scalar set.
template <>
struct Lsm32GroupRange<F32x8> {
  static constexpr size_t min_n = 48, regs_max_n = 16;
};
// float32 log_softmax's direct rows from 48 (BlocksRowsRange's register
// blocks take 44-47 in 0.83-0.89 of the direct rows' time) to 640
// (rows_generic.h's 256; beyond, the per-row kernels, which take expsum_lse32_fast's
// cheaper table from 512 on). Zen 5 run as avx2, callgrind instructions
// per element in the extension (N(0, 1), 1 Mi-element batches), main (the
// group pairs below 48, the per-row kernels above 256) / direct: n = 44
// 12.10 / 11.61, 45 12.12 / 11.39, 46 12.10 / 11.18, 47 12.12 / 10.98, 300
// 8.63 / 7.27, 512 7.17 / 6.92, 600 7.12 / 6.87, 640 6.94 / 6.84 (n = 40
// and 42 took more there, 11.64 / 11.84 and 12.10 / 12.46, and keep the
// pairs); bench/ab_builds.py, 4 Mi-element
// batches, 1 thread, two runs of 11 rounds, time / main's (fastest
// processes): n = 44 0.97, 0.97; 47 0.85, 0.84; 257 0.70, 0.70; 300 0.73,
// 0.72; 512 0.90, 0.92; 640 0.96, 0.96 (controls: log_softmax n = 32, 64,
// 1000 0.98-1.02, softmax n = 64, 300 0.98-1.00); fastest of 5-7
// interleaved processes, n = 41 0.99, 384 0.78, 600 0.95, 768 1.04-1.11,
// 1000 0.95-1.18, 1500 1.21. The rows' float64 sums stay within the
// header's 2^-44: at most n / 8 + 8 adds per lane.
template <>
struct Lsm32DirectRange<F32x8> {
  static constexpr size_t min_n = 48, max_n = 640;
};
static_assert(Lsm32DirectRange<F32x8>::max_n / 8 + 8 < 0x1p9, "the direct rows' float64 sums within 2^-44");
#include "rows_columns_avx2.h"

// float32 log_softmax rows of 2 to 16 and logsumexp rows of 3 to 16,
// unweighted: the register groups (log_softmax_rows_regs, lse_rows_regs)
// instantiated per row length N, their loops over columns unrolled to N
// and rows of 2-4 taking their columns from whole vectors
// (rows_columns_avx2.h); the same arithmetic lane for lane, so the same
// bits as with a run-time n (and, for logsumexp rows of 3, 4 and 11-16, as
// lse_groups, which took them). Zen 5 run as avx2, N(0, 1) rows, callgrind
// instructions per element in the extension, before / after: logsumexp n
// = 3 24.67 / 17.41, 4 19.39 / 12.87, 8 10.59 / 9.49, 12 10.86 / 9.20, 16
// 9.30 / 8.36; log_softmax n = 2 18.83 / 14.09, 3 19.10 / 16.65, 4 16.53 /
// 14.62, 8 13.20 / 12.07. bench/ab_builds.py, 4 Mi-element batches, 1
// thread, 11 rounds, time / before (fastest processes): logsumexp n = 3
// 0.61, 4 0.56, 8 0.90, 12 0.71, 16 0.81; log_softmax n = 2 0.81, 3 0.88,
// 4 0.91, 8 1.01, 16 0.96 (softmax n = 8 control 1.02).
struct FixedRowsRange {
  static constexpr size_t lsm_min_n = 2, lse_min_n = 3, max_n = 16;
};

template <size_t N>
void log_softmax_rows_fixed(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if constexpr (N <= FixedRowsRange::max_n) {
    if (n != N) return log_softmax_rows_fixed<N + 1>(x, y, rows, n, stream, flag);
    alignas(64) float buf[kMaxN * 8], obuf[kMaxN * 8];
    log_softmax_rows_regs<F32x8, F64x4, (N + 7) / 8, 4, N>(x, y, rows, n, buf, obuf, stream, flag);
    if (stream) F32x8::fence();
  }
}

template <size_t N>
void lse_rows_fixed(const float* x, float* out, float* sign, size_t rows, size_t n, unsigned char* flag) {
  if constexpr (N <= FixedRowsRange::max_n) {
    if (n != N) return lse_rows_fixed<N + 1>(x, out, sign, rows, n, flag);
    // MaxT as lse_groups (rows of up to 10 skip log1p_small's step by 2^4).
    alignas(64) float buf[kMaxN * 8];
    lse_rows_regs<F32x8, F64x4, (N + 7) / 8, 4, N <= 10 ? 11 : static_cast<int>(kMaxN / 2 + 1), N>(x, out, sign, rows,
                                                                                                   n, buf, flag);
  }
}

// float32 softmax rows of 3-16 the same way (softmax_rows_regs per N; the
// transposes for every N: the columns past n go back as loaded). Zen 5 run
// as avx2, callgrind per element, run-time n / per N: n = 3 13.18 / 10.23,
// 5 9.77 / 7.89, 8 7.95 / 5.95, 12 7.29 / 6.23; bench/ab_builds.py, 4
// Mi-element batches, 11 rounds, time / run-time n's (fastest processes):
// n = 3 0.79-0.82, 4 0.79, 5 0.82-0.85, 8 0.85-0.86, 12 0.92 (n = 2,
// unchanged, 1.00).
template <size_t N>
void softmax_rows_fixed(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if constexpr (N <= FixedRowsRange::max_n) {
    if (n != N) return softmax_rows_fixed<N + 1>(x, y, rows, n, stream, flag);
    alignas(64) float buf[kMaxN * 8], obuf[kMaxN * 8];
    softmax_rows_regs<F32x8, (N + 7) / 8, N <= 8 ? SoftmaxRegsRange<F32x8>::groups1 : SoftmaxRegsRange<F32x8>::groups2,
                      false, N>(x, y, rows, n, buf, obuf, stream, flag);
    if (stream) F32x8::fence();
  }
}

void softmax_f32(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if (n >= FixedRowsRange::lse_min_n && n <= FixedRowsRange::max_n)
    return softmax_rows_fixed<FixedRowsRange::lse_min_n>(x, y, rows, n, stream, flag);
  softmax_rows<F32x8, float>(x, y, rows, n, stream, flag);
}

// float32 log_softmax rows of 17 to 47 but 32 (BlocksRowsRange) keep their
// group columns in registers too, as W x W blocks (log_softmax_rows_regs at
// a run-time n: NB blocks per row, three blocks two groups at a time, four
// to six one group), where log_softmax_groups_f32's pairs staged them in
// buf: the same arithmetic lane for lane, so the same bits, and the rows
// of 44-47 leave the direct rows for them (other bits there: the pairs'
// contract; a sweep of 480 K outputs, n = 44-47, spreads 0.03-40, offsets
// to +-3000, dominant and masked entries: 3.4% change, the largest error
// 0.620 of the 2-ulp bound, 0.605-0.621 before). Zen 5 run as avx2,
// bench/ab_builds.py, 4 Mi-element batches, 1 thread, two runs of 11 and 13
// rounds, time / before (fastest processes): n = 17 0.82, 0.81; 20 0.80,
// 0.82; 24 0.94, 0.93; 25 0.80 (one run); 28 0.88, 0.87; 36 0.78, 0.81; 40
// 0.93, 0.91; 43 0.87, 0.86; 44 0.83, 0.83; 47 0.88, 0.89 (controls
// log_softmax n = 64 1.02, 1.00, softmax n = 40 0.98, 1.00). Rows of 32
// keep the pairs (four blocks: 0.88-1.15x their time in four runs, where
// the pairs' own time at 32 is bimodal), rows of 48 the direct rows (six
// blocks: 1.05 and 1.15x their time).
struct BlocksRowsRange {
  static constexpr size_t min_n = 17, max_n = 47, skip_n = 32;
};

template <size_t NB, size_t P>
void log_softmax_rows_blocks(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  alignas(64) float buf[kMaxN * 8], obuf[kMaxN * 8];
  log_softmax_rows_regs<F32x8, F64x4, NB, P>(x, y, rows, n, buf, obuf, stream, flag);
  if (stream) F32x8::fence();
}

void log_softmax_f32(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if (n >= FixedRowsRange::lsm_min_n && n <= FixedRowsRange::max_n)
    return log_softmax_rows_fixed<FixedRowsRange::lsm_min_n>(x, y, rows, n, stream, flag);
  if (n >= BlocksRowsRange::min_n && n <= BlocksRowsRange::max_n && n != BlocksRowsRange::skip_n) {
    static_assert(BlocksRowsRange::max_n <= 6 * 8 && BlocksRowsRange::max_n < Lsm32DirectRange<F32x8>::min_n,
                  "at most six blocks, below the direct rows");
    if (n <= 3 * 8) return log_softmax_rows_blocks<3, 2>(x, y, rows, n, stream, flag);
    if (n <= 4 * 8) return log_softmax_rows_blocks<4, 1>(x, y, rows, n, stream, flag);
    if (n <= 5 * 8) return log_softmax_rows_blocks<5, 1>(x, y, rows, n, stream, flag);
    return log_softmax_rows_blocks<6, 1>(x, y, rows, n, stream, flag);
  }
  log_softmax_rows<F32x8, F64x4, float>(x, y, rows, n, stream, flag);
}

void logsumexp_f32(const float* x, const float* b, float* out, float* sign, size_t rows, size_t n,
                   unsigned char* flag) {
  if (!b && n >= FixedRowsRange::lse_min_n && n <= FixedRowsRange::max_n)
    return lse_rows_fixed<FixedRowsRange::lse_min_n>(x, out, sign, rows, n, flag);
  logsumexp_rows<F32x8, F64x4, float>(x, b, out, sign, rows, n, flag);
}

RowsKernels<float> make_rows_kernels_f32() {
  RowsKernels<float> k = make_rows_kernels<F32x8, F64x4, float>();
  k.softmax = &softmax_f32;
  k.log_softmax = &log_softmax_f32;
  k.logsumexp = &logsumexp_f32;
  return k;
}
}  // namespace
}  // namespace rows
}  // namespace avx2
}  // namespace ssm

namespace ssm {
const RowsKernelSet& rows_kernels_avx2() {
  static const RowsKernelSet set{"avx2", avx2::rows::make_rows_kernels_f32(),
                                 avx2::rows::make_rows_kernels<avx2::F64x4, avx2::F64x4, double>()};
  return set;
}
}  // namespace ssm
