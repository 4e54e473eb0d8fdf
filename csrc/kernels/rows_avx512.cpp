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
template <>
struct LseDirectRange<F32x16> {
  static constexpr size_t min_n = 28, max_n = kMaxN, regs_min_n = 3, regs_max_n = 0;
  static constexpr bool regs_n2 = false;
};
// float32 log_softmax's direct rows from 40 (rows_generic.h's 48): with
// each set's maxima first they beat the group kernel from there (bench/rows.py
// --row-lengths 32,36,40,44,47,48 --dtypes float32 --isa avx512, idle, two
// runs each, ns per element, group / direct: n = 32 0.81, 0.76 / 0.80, 0.86;
// n = 36 0.82, 0.88 / 0.89, 0.97; n = 40 0.80, 0.95 / 0.79, 0.84; n = 44
// 0.84, 0.96 / 0.74, 0.81; n = 47 0.86, 0.92 / 0.70, 0.77). AVX2 keeps 48:
// its direct rows took more instructions below (callgrind, per element,
// group / direct: n = 32 9.95 / 12.8, n = 40 10.2 / 11.2).
template <>
struct Lsm32DirectRange<F32x16> {
  static constexpr size_t min_n = 40, max_n = kMaxN;
};

// float32 softmax rows of 3-31 and log_softmax rows of 1 and 3-16 take the
// AVX2 set's kernels (eight rows a group, 8 x 8 blocks kept in registers)
// instead of these groups of sixteen (16 x 16 transposes through L1
// buffers); rows of two take softmax_rows_two and log_softmax_rows_two
// (rows_generic.h) on both sets. Zen 5 at load ~6, 4 Mi-element batches, 1 thread, ns per
// element, fastest of 7 interleaved calls in one process (thread CPU
// time), avx2 / avx512 kernels: softmax n = 3 1.00 / 1.27, 5 0.75 / 1.04,
// 8 0.59 / 0.79, 10 0.55 / 0.87, 13 0.51 / 0.90, 15 0.48 / 0.85, 16 0.45 /
// 0.44, 17 0.59 / 0.75, 20 0.57 / 0.88, 23 0.55 / 0.70, 24 0.66 / 0.66, 27
// 0.53 / 0.65, 31 0.54 / 0.90, 32 0.49 / 0.40 (n = 1 2.29 / 1.88);
// log_softmax n = 1 3.13 / 4.68, 2 1.56 / 2.94, 5 1.12 / 2.00, 8 0.96 /
// 1.77, 12 0.86 / 1.76, 15 0.82 / 1.59, 16 0.86 / 1.09, 17 1.11 / 0.86. A
// row's bits are then the AVX2 set's (within the same contract; lanes never
// mix in either).
void softmax_f32(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if (n >= 3 && n <= 31) return rows_kernels_avx2().f32.softmax(x, y, rows, n, stream, flag);
  softmax_rows<F32x16, float>(x, y, rows, n, stream, flag);
}

void log_softmax_f32(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if (n <= 16 && n != 2) return rows_kernels_avx2().f32.log_softmax(x, y, rows, n, stream, flag);
  log_softmax_rows<F32x16, F64x8, float>(x, y, rows, n, stream, flag);
}

// float64 softmax rows of 4-7 likewise (four-row groups): Zen 5 at load
// ~12, as above, avx2 / avx512: n = 4 1.57 / 2.55, 5 1.70 / 2.75, 6 1.95 /
// 2.57, 7 1.83 / 2.68; n = 3 3.10 / 2.71, 8 1.37 / 0.85, 9 1.37 / 0.99.
void softmax_f64(const double* x, double* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  if (n >= 4 && n <= 7) return rows_kernels_avx2().f64.softmax(x, y, rows, n, stream, flag);
  softmax_rows<F64x8, double>(x, y, rows, n, stream, flag);
}

RowsKernels<double> make_rows_kernels_f64() {
  RowsKernels<double> k = make_rows_kernels<F64x8, F64x8, double>();
  k.softmax = &softmax_f64;
  return k;
}

RowsKernels<float> make_rows_kernels_f32() {
  RowsKernels<float> k = make_rows_kernels<F32x16, F64x8, float>();
  k.softmax = &softmax_f32;
  k.log_softmax = &log_softmax_f32;
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
