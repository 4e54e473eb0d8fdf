// float16 / bfloat16 conversions with AArch64 Advanced SIMD, 8 elements per
// step. float16: FCVTL / FCVTN (vcvt_f32_f16 / vcvt_f16_f32), which round by
// FPCR, round-to-nearest-even unless a caller changed it (Linux and macOS
// start every thread with it, and nothing here changes it); overflow gives
// inf, and a NaN comes out quiet with its sign and the top payload bits, as
// the scalar conversion does. bfloat16: integer shifts, with the
// round-to-nearest-even carry of convert_generic.h on four lanes at once.
#include <arm_neon.h>

#include <cstddef>

#include "convert_api.h"
#define SSM_CONVERT_NS convert_neon_ns
#include "convert_generic.h"

namespace ssm {
namespace convert_neon_ns {
namespace {

void f16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(x + i));
    vst1q_f32(y + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(y + i + 4, vcvt_high_f32_f16(h));
  }
  f16_to_f32_tail(x + i, y + i, n - i);
}

void f32_to_f16(const float* x, uint16_t* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x4_t lo = vcvt_f16_f32(vld1q_f32(x + i));
    vst1q_u16(y + i, vreinterpretq_u16_f16(vcvt_high_f16_f32(lo, vld1q_f32(x + i + 4))));
  }
  f32_to_f16_tail(x + i, y + i, n - i);
}

void bf16_to_f32(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t h = vld1q_u16(x + i);
    vst1q_f32(y + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
    vst1q_f32(y + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
  }
  bf16_to_f32_tail(x + i, y + i, n - i);
}

// Four floats, rounded to nearest even at bit 16 (a NaN made quiet instead),
// still in the upper half of each 32-bit lane.
inline uint32x4_t round_bf16(float32x4_t v) {
  const uint32x4_t u = vreinterpretq_u32_f32(v);
  const uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
  const uint32x4_t rounded = vaddq_u32(u, vaddq_u32(odd, vdupq_n_u32(0x7fff)));
  const uint32x4_t quiet = vorrq_u32(u, vdupq_n_u32(0x00400000));
  return vbslq_u32(vceqq_f32(v, v), rounded, quiet);  // v == v: not NaN
}

void f32_to_bf16(const float* x, uint16_t* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x4_t lo = vshrn_n_u32(round_bf16(vld1q_f32(x + i)), 16);
    vst1q_u16(y + i, vshrn_high_n_u32(lo, round_bf16(vld1q_f32(x + i + 4)), 16));
  }
  f32_to_bf16_tail(x + i, y + i, n - i);
}

}  // namespace
}  // namespace convert_neon_ns

const HalfConvert& convert_neon() {
  using namespace convert_neon_ns;
  static const HalfConvert set{"neon", &f16_to_f32, &bf16_to_f32, &f32_to_f16, &f32_to_bf16};
  return set;
}
}  // namespace ssm
