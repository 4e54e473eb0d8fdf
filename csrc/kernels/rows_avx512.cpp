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
}  // namespace
}  // namespace rows
}  // namespace avx512
}  // namespace ssm

namespace ssm {
const RowsKernelSet& rows_kernels_avx512() {
  static const RowsKernelSet set{"avx512",
                                 avx512::rows::make_rows_kernels<avx512::F32x16, avx512::F64x8, float>(),
                                 avx512::rows::make_rows_kernels<avx512::F64x8, avx512::F64x8, double>()};
  return set;
}
}  // namespace ssm
