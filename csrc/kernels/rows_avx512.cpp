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
const RowsKernelSet& rows_kernels_avx512() {
  static const RowsKernelSet set{"avx512",
                                 avx512::rows::make_rows_kernels<avx512::F32x16, avx512::F64x8, float>(),
                                 avx512::rows::make_rows_kernels<avx512::F64x8, avx512::F64x8, double>()};
  return set;
}
}  // namespace ssm
