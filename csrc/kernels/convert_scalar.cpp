// float16 / bfloat16 conversions without vector instructions (any CPU).
#include <cstddef>

#include "convert_api.h"
#define SSM_CONVERT_NS convert_scalar_ns
#include "convert_generic.h"

namespace ssm {
const HalfConvert& convert_scalar() {
  using namespace convert_scalar_ns;
  static const HalfConvert set{"scalar", &f16_to_f32_tail, &bf16_to_f32_tail, &f32_to_f16_tail,
                               &f32_to_bf16_tail};
  return set;
}
}  // namespace ssm
