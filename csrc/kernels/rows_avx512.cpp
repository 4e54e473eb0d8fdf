// Short-row kernels for AVX-512 F/DQ/BW/VL: sixteen float32 rows (eight
// float64 rows) per group, one per lane. Called only where dispatch.cpp
// found AVX-512.
#include "vecmath_avx512.h"

// Lane-wise division for rows_generic.h (the lane types have none).
namespace ssm {
namespace avx512 {
namespace rows {
namespace {
inline __m512d div_lanes(__m512d a, __m512d b) { return _mm512_div_pd(a, b); }
}  // namespace
}  // namespace rows
}  // namespace avx512
}  // namespace ssm

#define SSM_ISA avx512
#include "rows_generic.h"

namespace ssm {
namespace avx512 {
namespace rows {
namespace {
// float32 logsumexp's direct rows from 28 to 256 (kMaxN) since they go in
// sets of 16 rows (4 Mi-element batches, 1 thread, ns per element, medians
// of 3 interleaved runs on a loaded machine, direct / group or per-row:
// n = 16 1.51 / 0.69, n = 20 1.43 / 0.86, n = 24 1.00 / 0.70, n = 28 0.84
// / 0.86, n = 31 0.79 / 0.97, n = 256 0.32 / 0.40). Before the sets
// (medians of 3, direct / group or per-row): n = 16 2.32 / 1.08, n = 32
// 0.99 / 1.26, n = 64 0.59 / 1.05, n = 128 0.46 / 0.98, n = 224 0.61 /
// 0.73, n = 256 0.56 / 0.51.
// Rows of 257-4095 took the per-row kernels (expsum_fast's one pass, but a
// per-row call and no prefetch below 16 KiB a row: 0.12-0.47 ns per
// element at 257-4095 against 0.15-0.17 at 256) until the direct rows took
// them, each row's max taken in the previous row's loop over its terms
// from fused_min_n on (Fused). Zen 5, 4 Mi-element batches, 1 thread,
// bench/ab_builds.py, two runs of 11 rounds, fastest processes, time /
// before: n = 160 0.95, 0.93; 200 0.87, 0.93; 256 0.86, 0.82; 257 0.48,
// 0.50; 300 0.46, 0.47; 512 0.29, 0.31; 1000 0.57, 0.45; 1024 0.62, 0.53;
// 2048 0.92, 0.93; 3000 0.87, 0.86; 4095 1.01, 0.88 (0.10-0.14 ns per
// element from 257 on; controls n = 128 0.99, 0.97, n = 4096 1.00, 1.07);
// earlier runs (7 rounds): n = 4096 1.12, 5000 1.03, 10000 1.15, where the
// per-row kernels prefetch. The sets' maxima first (unfused) took 0.14-0.17
// ns per element at 257-10000, 1.23-1.48x the per-row time from n = 1792
// on. Fused / the sets' maxima first (5 rounds): n = 32 1.21, 48 1.04, 64
// 1.03, 100 1.03, 128 0.98, 200 0.86, 256 0.84.
template <>
struct LseDirectRange<F32x16> {
  static constexpr size_t min_n = 28, max_n = 4095, regs_min_n = 3, regs_max_n = 0, fused_min_n = 160;
  static constexpr bool regs_n2 = false;
};
// float32 log_softmax's direct rows from 24 (rows_generic.h's 48; rows up
// to Lsm32PermRange's max_n take the permute kernel first, below): with
// each set's maxima first they beat the group kernel from there. Zen 5, 4
// Mi-element batches, 1 thread, bench/ab_builds.py, 11 rounds, fastest
// processes, direct / group time: n = 17 1.34, 20 1.16, 21 1.06, 22 1.12,
// 23 0.99, 24 0.86-0.93, 26 0.88, 28 0.79, 31 0.74, 32 0.80 (the group
// pairs), 36 0.93, 39 0.78 (n = 48 and the softmax control 0.97-1.01).
// Earlier, from 40 (bench/rows.py
// --row-lengths 32,36,40,44,47,48 --dtypes float32 --isa avx512, idle, two
// runs each, ns per element, group / direct: n = 32 0.81, 0.76 / 0.80, 0.86;
// n = 36 0.82, 0.88 / 0.89, 0.97; n = 40 0.80, 0.95 / 0.79, 0.84; n = 44
// 0.84, 0.96 / 0.74, 0.81; n = 47 0.86, 0.92 / 0.70, 0.77). AVX2 keeps 48:
// its direct rows took more instructions below (callgrind, per element,
// group / direct: n = 32 9.95 / 12.8, n = 40 10.2 / 11.2).
template <>
struct Lsm32DirectRange<F32x16> {
  static constexpr size_t min_n = 24, max_n = kMaxN;
};
// float32 softmax rows of 2-12 go as whole vectors through lane permutes
// (rows_softmax32_perm_avx512.h: two groups at a time up to 8, one from
// 9), 13-15 as 16 x 16 register transposes, one group at a time
// (softmax_group_regs), 17-31 as blocks through buf, two groups at a time
// (softmax_group_blocks); all were softmax_group (element copies into and
// out of buf below 16, and a partial block's copies above), which keeps
// 16 (whole blocks, no copies: the transposes in registers took 1.18x its
// time, fastest of 9 interleaved processes, 1.32x the median). The same bits
// (sha1 of the outputs over n = 1-40, 47, 48, 63, 64, 100, 256, 1-1000
// rows, scales 0.2-300, offsets to -9.5e5, special rows, out= and in
// place, 1 and 2 threads). Zen 5, 4 Mi-element batches, 1 thread,
// bench/ab_builds.py, 9 rounds at load 9-11, time / softmax_group's
// (fastest processes): n = 2 0.23, 3 0.25, 5 0.30, 8 0.43, 10 0.44, 12
// 0.47, 13 0.60, 15 0.56, 17 0.75, 20 0.65, 24 0.70, 28 0.86, 31 0.85 (n =
// 16, 64 unchanged: 0.94, 0.95); ns per element n = 2 1.50 -> 0.35, 5 1.00
// -> 0.31, 8 0.77 -> 0.33. Earlier runs (5-7 interleaved processes, ns per
// element), permutes against transposes, one group at a time: n = 9 0.37
// / 0.49, 11 0.37 / 0.44, 13 0.43 / 0.42, 14 0.50 / 0.40, 16 0.53 / 0.43;
// two groups of transposes at a time instead of one (32 columns in
// registers spill), time / one's: n = 10-15 1.1-1.5, 9 and 16 0.9-1.25
// between runs; blocks one group at a time instead of two: n = 17-26
// 0.92-1.17, 28-31 1.17-1.22. (Valgrind runs no AVX-512: no callgrind
// counts for this set.)
// Rows of 16 now take vector_n's kernel (one row per vector, float64 sums:
// rows_softmax32_perm_avx512.h), not softmax_group (group_n below no longer
// reaches it).
template <>
struct SoftmaxPermRange<F32x16> {
  static constexpr size_t max_n = 12, vector_n = 16;
  // Defined in rows_softmax32_perm_avx512.h.
  static void rows(const float* x, float* y, size_t rows, size_t n, float* buf, float* obuf, bool stream,
                   unsigned char* flag);
};
template <>
struct SoftmaxRegsRange<F32x16> {
  static constexpr size_t max_n = 16, groups1 = 1, groups2 = 1, groups3 = 1, group_n = 16;
};
template <>
struct SoftmaxBlocksRange<F32x16> {
  static constexpr size_t max_n = 31, groups = 2;
};
#include "rows_softmax32_perm_avx512.h"

// float32 log_softmax rows of 1 take the AVX2 set's kernels (eight rows a
// group, 8 x 8 blocks kept in registers) instead of these groups of
// sixteen (16 x 16 transposes through L1 buffers); rows of two take
// log_softmax_rows_two_table (rows_log_softmax32_perm_avx512.h: the layout
// of the pair kernel it replaced, a shorter chain per 16 rows, 0.58-0.64
// of its time). Zen 5 at load ~6, 4
// Mi-element batches, 1 thread, ns per element, fastest of 7 interleaved
// calls in one process (thread CPU time), avx2 / avx512 kernels: n = 1
// 3.13 / 4.68, 2 1.56 / 2.94, 5 1.12 / 2.00, 8 0.96 / 1.77, 12 0.86 /
// 1.76, 15 0.82 / 1.59, 16 0.86 / 1.09, 17 1.11 / 0.86. A row's bits are
// then the AVX2 set's (within the same contract; lanes never mix in
// either). (Softmax rows of 2-31 took the AVX2 kernels too, 1.2-1.8x
// faster than the old groups, until the permute, register and block
// kernels above beat both: n = 5 0.75 with the AVX2 kernels, 0.31 above.)
// Rows of 3-16 took them too, until the permute kernel
// (rows_log_softmax32_perm_avx512.h: 16 rows as whole vectors, the AVX2
// kernels' sums and write, then log1p_perm, now log1p_table), one group at a time. Zen 5, 4
// Mi-element batches, 1 thread, fastest of 3 interleaved processes, ns per
// element, AVX2 kernels / one group / two groups at a time (as the
// softmax permutes up to 8; 32 columns and their float64 halves spill):
// n = 3 1.46 / 0.60 / 0.68, 5 1.10 / 0.50 / 0.64, 8 0.97 / 0.52 / 0.56,
// 10 0.90 / 0.51 / 0.84, 13 0.84 / 0.52 / 0.84, 15 0.81 / 0.60 / 0.85;
// log1p_small (degree 23, its halving steps) in place of log1p_perm: n = 3
// 0.72 against 0.61, 5 0.59 / 0.50, 8 0.54 / 0.49, 16 0.60 / 0.55.
// Rows from transpose_min_n take their columns by 16 x 16 register
// transposes instead of the permutes (the same columns, the same bits):
// fastest of 3 interleaved processes, time / the permutes': n = 3 1.11,
// 5 1.01, 7 1.01, 8 0.95, 9 0.96-0.97, 10 0.96, 11 0.95, 12 0.93, 13 0.91,
// 14 0.75, 15 0.77, 16 0.73 (softmax controls 1.01).
// Rows of 17-52 take it too, their columns by two to four transposes,
// instead of log_softmax_rows_group32 (17-23) and the direct rows (24-52),
// first up to 44, with the columns in registers:
// Zen 5, 4 Mi-element batches, 1 thread, bench/ab_builds.py, 11 rounds,
// time / before, medians and fastest processes: n = 17 0.49, 0.48; 20
// 0.44, 0.46; 23 0.48, 0.48; 24 0.50, 0.50; 28 0.56, 0.55; 32 0.73-0.75,
// 0.67; 33 0.65, 0.57; 36 0.63, 0.61; 40 0.82, 0.73; 41 0.82, 0.80; 43
// 0.91, 0.84; 44 0.95, 0.90; 45 1.01, 0.97; 47 1.04, 0.99; 48 1.10, 0.99;
// 56 1.12, 1.10; 64 1.22, 1.16 (softmax controls 0.98-1.04), so the
// direct rows kept 45 on. From buffer_min_n on the columns go through an
// L1 buffer, the max taken as each transpose gives them (in registers,
// GCC's spills of up to 52 columns around the terms): the same bits;
// time / the registers' (or, from 45, the direct rows'), two runs of 11
// rounds, medians and fastest processes: n = 33 0.92, 0.97 (0.91, 0.93);
// 36 0.99, 1.06 (1.03, 0.95); 40 0.97, 0.94 (0.90, 0.93); 44 0.90, 0.88
// (0.83, 0.85); 45 0.83, 0.90 (0.76, 0.83); 48 1.03, 1.02 (0.99, 1.00;
// 0.88, 0.81 in an earlier run); 50 0.87, 0.91 (0.83, 0.83); 52 0.95,
// 0.98 (0.88, 0.94); 56 1.03 (0.91); 64 0.99-1.15; below 33 the buffer
// took 1.04-1.11 (n = 17-32). Every length then summed the N - 1 losers
// of the max's tournament only (perm_row_terms: no max term, no count of
// its entries), and buffer_min_n went from 33 to 28 (GCC's spills of the
// losers from there): time / the count's, two runs of 11 rounds, medians
// and fastest processes: n = 3 0.79, 0.78 (0.78, 0.78), 4 0.74, 0.73
// (0.74, 0.73), 5 0.75, 0.74 (0.73, 0.74), 6 0.76 (0.76), 8 0.73, 0.74
// (0.74), 10 0.93 (0.91, 0.93), 12 0.93, 0.94 (0.92, 0.93), 16 0.95, 0.97
// (0.96), 17 0.94, 0.90 (0.94, 0.98), 20 0.97, 0.91 (0.97, 0.99), 24
// 0.89, 0.90 (0.95), 40 0.86, 0.89 (0.91, 0.89), 48 0.82, 0.84 (0.82,
// 0.80; against the direct rows), 52 0.79, 0.76 (0.77, 0.75); with the
// losers in registers up to 32 n = 32 1.02-1.05 (1.04-1.07), through buf
// from 28 against that: 28 0.93, 0.92 (0.91, 0.92), 30 0.92, 0.89 (0.89,
// 0.93), 32 0.71, 0.70 (0.71, 0.74), 25-27 0.91-1.06 (softmax controls
// 0.99-1.02). With the losers, max_n went from 52 to 60: time / the
// direct rows', two runs: n = 53 0.85, 0.90 (0.81, 0.81), 56 0.82, 0.83
// (0.81, 0.77), 60 0.96, 0.97 (0.94, 0.95); 63 1.05-1.07, 64 1.03-1.04
// (0.97) kept them (unchanged n = 52 1.03-1.04 in the same runs).
template <class VN>
struct Lsm32PermRange;
template <>
struct Lsm32PermRange<F32x16> {
  static constexpr size_t max_n = 60, transpose_min_n = 8, buffer_min_n = 28;
};
#include "rows_log_softmax32_perm_avx512.h"
// Rows of 61 to Lsm32SetsRange's max_n take log_softmax_rows_sets32
// (rows_log_softmax32_sets_avx512.h: the direct rows' terms, sums and
// writes, the work between rows kept short: the maxima, sums and counts
// added across by shuffle trees, the max's own term before the sums, the
// table log and no division after them; sixteen rows a set up to
// sets16_max_n, eight above) instead of log_softmax_rows_direct32, whose
// set chain (TwoSum column sums through memory, log1p_small's division
// and halving steps, the certificate's division, a vector reload of eight
// scalar stores) took 32% of a batch's cpu-clock samples at n = 64 (the
// terms' loop 36%). Zen 5, 4 Mi-element batches, 1 thread,
// bench/ab_builds.py, 11 rounds, time / main's, medians and fastest
// processes, two runs: n = 61 0.79, 0.79 (0.78, 0.79); 64 0.78, 0.76
// (0.77, 0.75); 80 0.81, 0.80 (0.80, 0.79); 96 0.84, 0.85 (0.82, 0.84);
// 100 0.81, 0.83 (0.83, 0.82); 112 0.82, 0.82 (0.84, 0.82); 128 0.81,
// 0.81 (0.83, 0.83); 129 0.88, 0.89 (0.87, 0.87); 160 0.97, 0.97 (0.95,
// 0.95); 192 1.00, 1.00 (0.98, 1.02), so max_n 160 (controls: softmax n =
// 64, 128 and logsumexp n = 64 0.98-1.03). Sets of sixteen rows against
// eight (7 rounds): n = 64 0.92 (0.95), 100 0.99 (1.00), 128 1.13 (1.13;
// a set of 8 KiB), 256 0.98 (1.01).
struct Lsm32SetsRange {
  static constexpr size_t max_n = 160, sets16_max_n = 96;
};
#include "rows_log_softmax32_sets_avx512.h"

void log_softmax_f32(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if (n >= 3 && n <= Lsm32PermRange<F32x16>::max_n) return log_softmax_rows_perm_n<3>(x, y, rows, n, flag);
  if (n > Lsm32PermRange<F32x16>::max_n && n <= Lsm32SetsRange::max_n) {
    if (n <= Lsm32SetsRange::sets16_max_n) return log_softmax_rows_sets32<2>(x, y, rows, n, flag);
    return log_softmax_rows_sets32<1>(x, y, rows, n, flag);
  }
  if (n == 1) return rows_kernels_avx2().f32.log_softmax(x, y, rows, n, stream, flag);
  if (n == 2) return log_softmax_rows_two_table(x, y, rows, stream, flag);
  log_softmax_rows<F32x16, F64x8, float>(x, y, rows, n, stream, flag);
}

// float64 softmax rows of 4-7 likewise (four-row groups): Zen 5 at load
// ~12, as above, avx2 / avx512: n = 4 1.57 / 2.55, 5 1.70 / 2.75, 6 1.95 /
// 2.57, 7 1.83 / 2.68; n = 3 3.10 / 2.71, 8 1.37 / 0.85, 9 1.37 / 0.99.
void softmax_f64(const double* x, double* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if (n >= 4 && n <= 7) return rows_kernels_avx2().f64.softmax(x, y, rows, n, stream, flag);
  softmax_rows<F64x8, double>(x, y, rows, n, stream, flag);
}

// float32 logsumexp rows of 3-12, unweighted, go as whole vectors through
// lane permutes (rows_logsumexp32_perm_avx512.h: sets of two groups up to
// groups_max_n, one above), 13-16 as 16 x 16 register transposes, one
// group at a time (lse_rows_regs), instead of lse_groups' transposes
// through buf: the same arithmetic, the same bits (sha1 of logsumexp, with
// return_sign and keepdims, over n = 1-40, 47, 48, 64, 1-1000 rows, scales
// 0.2-300, offsets to -9.5e5, NaN, +inf, all -inf, one finite, dominant
// and lse-near-0 rows, 1 and 2 threads). Zen 5, 4 Mi-element batches, 1
// thread, bench/ab_builds.py, 11 rounds, fastest processes, time /
// lse_groups': n = 3 0.47-0.49, 4 0.47-0.50, 5 0.51-0.55, 8 0.63-0.65, 10
// 0.71, 12 0.74-0.76, 13 0.75, 15 0.77, 16 0.81 (softmax control
// 0.93-0.98); ns per element n = 3 1.33 -> 0.64, 5 0.86 -> 0.46, 8 0.67
// -> 0.43. Two groups of transposes at a time: n = 13-16 0.78-0.86. The
// permutes at n = 15, one group at a time, without the blocks' separate
// log1p loop: 1.05. Rows of 17-27 as two blocks of transposes per group:
// 0.98-1.03 (harness calls outside the driver had shown 0.75-0.81), so
// they stay with lse_groups.
// All of these (and lse_groups for rows of up to kLseTableMaxN) take the
// table terms and log (LseTableTerms, F64x8::log_table: no division, 1/50
// of the degree-6 terms' error): ab_builds as above, time / the degree-6
// terms and log1p_small_finite's: n = 3 0.66, 5 0.81, 8 0.84-0.88, 12
// 0.86-0.88, 16 0.85-0.86 (n = 17-20 unchanged: 1.00-1.02; softmax
// controls 0.98-1.02).
// The permutes' rows then summed the N - 1 losers of the max's tournament
// only (S = 1 + z; rows not ordinary or not certified redone lane by lane,
// the batch's last partial group on a copy, no lse_groups): within the
// same bounds, 1 of 7.8 M rows of n = 2-16 (scales 1e-3-1e3, offsets,
// ties, lse near 0) moved to a neighbouring float, every one within 1 ulp
// of a long double reference. Zen 5, 4 Mi-element batches, 1 thread,
// bench/ab_builds.py, 11 rounds, two runs, time / the full sums'
// (medians, fastest processes): n = 3 0.81, 0.81 (0.80, 0.79), 4 0.79,
// 0.74 (0.80, 0.79), 5 0.89, 0.90 (0.88, 0.90), 6 0.92 (0.91), 8 0.98,
// 1.00 (0.98, 1.00), 10 0.95 (0.94), 12 0.95, 0.99 (0.96, 0.99); n = 16
// and softmax controls 0.98-1.01.
struct LsePermRange {
  static constexpr size_t min_n = 3, max_n = 12, groups_max_n = 8, regs_groups = 1;
  static constexpr size_t groups(size_t n) { return n <= groups_max_n ? 2 : 1; }
  // Defined in rows_logsumexp32_perm_avx512.h.
  static void rows(const float* x, float* out, float* sign, size_t rows, size_t n, unsigned char* flag);
};
#include "rows_logsumexp32_perm_avx512.h"

// float64 logsumexp's direct rows up to 511 (rows_generic.h's 256): rows
// of 257-511 took the per-row kernels (no prefetch below 16 KiB a row)
// at 0.39-0.58 ns per element against 0.34 at 256. Zen 5, 2 Mi-element
// batches, 1 thread, bench/ab_builds.py, 11 rounds, fastest processes,
// time / the per-row kernels' with max_n 1023: n = 257 0.63, 300 0.58,
// 384 0.79, 511 0.79, 512 0.94, 768 1.07, 1000 1.09, 1023 1.11 (controls n
// = 256 1.03, 1024 1.00, float32 n = 1000 1.01).
template <>
struct Lse64DirectRange<F64x8> {
  static constexpr size_t max_n = 511;
};

// float32 logsumexp rows of 2, unweighted, take lse_rows_two_table
// (rows_logsumexp32_two_avx512.h: the table exp and log, no division, a
// certificate that is one compare) instead of lse_rows_two (the degree-15
// log1p_small and its division, a certificate of four operations): Zen 5,
// 4 Mi-element batches, 1 thread, bench/ab_builds.py, 11 rounds, fastest
// processes, time / lse_rows_two's: 0.55, 0.57 in two runs (0.87 -> 0.48
// ns per element at load ~10; softmax controls 0.99-1.01). Their results
// agree to the bit on the sha1 sweep of logsumexp's rows and on all but 2
// of 5.2 M N(0, s^2) rows (both within ~2^-40 before the float32
// rounding); both within the 1-ulp contract.
#include "rows_logsumexp32_two_avx512.h"

// The other rows (logsumexp_rows: the direct rows, lse_groups, weighted
// rows) out of line: inlined into logsumexp_f32 beside the kernels above,
// the direct rows of 28-47 (degree 4) took 1.07-1.09x their time before
// the table kernels (n = 32, four runs of bench/ab_builds.py, 11 rounds,
// fastest processes; their code unchanged); out of line n = 28 1.00-1.01,
// 32 0.99-1.00, 48 0.97, 17 1.00 against main.
SSM_NOINLINE void logsumexp_rows_out_of_line(const float* x, const float* b, float* out, float* sign, size_t rows,
                                             size_t n, unsigned char* flag) {
  logsumexp_rows<F32x16, F64x8, float>(x, b, out, sign, rows, n, flag);
}

void logsumexp_f32(const float* x, const float* b, float* out, float* sign, size_t rows, size_t n,
                   unsigned char* flag) {
  if (!b && n == 2) return lse_rows_two_table(x, out, sign, rows, flag);
  if (!b && n >= LsePermRange::min_n && n <= LsePermRange::max_n)
    return LsePermRange::rows(x, out, sign, rows, n, flag);
  if (!b && n > LsePermRange::max_n && n <= 16) {
    // One 16 x 16 block per group; MaxT 17: S <= 16 (1 + 2^-28) < 17.
    alignas(64) float buf[kMaxN * 16];
    return lse_rows_regs<F32x16, F64x8, 1, LsePermRange::regs_groups, 17>(x, out, sign, rows, n, buf, flag);
  }
  logsumexp_rows_out_of_line(x, b, out, sign, rows, n, flag);
}

RowsKernels<double> make_rows_kernels_f64() {
  RowsKernels<double> k = make_rows_kernels<F64x8, F64x8, double>();
  k.softmax = &softmax_f64;
  return k;
}

RowsKernels<float> make_rows_kernels_f32() {
  RowsKernels<float> k = make_rows_kernels<F32x16, F64x8, float>();
  k.log_softmax = &log_softmax_f32;
  k.logsumexp = &logsumexp_f32;
  return k;
}
}  // namespace
}  // namespace rows
}  // namespace avx512
}  // namespace ssm

namespace ssm {
const RowsKernelSet& rows_kernels_avx512() {
  static const RowsKernelSet set{"avx512", avx512::rows::make_rows_kernels_f32(),
                                 avx512::rows::make_rows_kernels_f64()};
  return set;
}
}  // namespace ssm
