// Portable short-row kernels: one row per group, double arithmetic for both
// dtypes. Still one call for the whole batch instead of one per row.
#include "vecmath_scalar.h"

// Lane-wise division for rows_generic.h (the lane types have none).
namespace ssm {
namespace scalar {
namespace rows {
namespace {
inline double div_lanes(double a, double b) { return a / b; }
}  // namespace
}  // namespace rows
}  // namespace scalar
}  // namespace ssm

#define SSM_ISA scalar
#include "rows_generic.h"

namespace ssm {
const RowsKernelSet& rows_kernels_scalar() {
  static const RowsKernelSet set{"scalar", scalar::rows::make_rows_kernels<scalar::F64x1, scalar::F64x1, float>(),
                                 scalar::rows::make_rows_kernels<scalar::F64x1, scalar::F64x1, double>()};
  return set;
}
}  // namespace ssm
