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
const RowsKernelSet& rows_kernels_avx2() {
  static const RowsKernelSet set{"avx2", avx2::rows::make_rows_kernels<avx2::F32x8, avx2::F64x4, float>(),
                                 avx2::rows::make_rows_kernels<avx2::F64x4, avx2::F64x4, double>()};
  return set;
}
}  // namespace ssm
