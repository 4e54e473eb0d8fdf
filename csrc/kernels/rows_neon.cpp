// Short-row kernels for AArch64 Advanced SIMD (NEON): four float32 rows (two
// float64 rows) per group, one per lane. NEON is the AArch64 baseline, so
// this set runs on every arm64 CPU.
#include "vecmath_neon.h"

// Lane-wise division for rows_generic.h (the lane types have none).
namespace ssm {
namespace neon {
namespace rows {
namespace {
inline float64x2_t div_lanes(float64x2_t a, float64x2_t b) { return vdivq_f64(a, b); }
}  // namespace
}  // namespace rows
}  // namespace neon
}  // namespace ssm

#define SSM_ISA neon
#include "rows_generic.h"

namespace ssm {
const RowsKernelSet& rows_kernels_neon() {
  static const RowsKernelSet set{"neon", neon::rows::make_rows_kernels<neon::F32x4, neon::F64x2, float>(),
                                 neon::rows::make_rows_kernels<neon::F64x2, neon::F64x2, double>()};
  return set;
}
}  // namespace ssm
