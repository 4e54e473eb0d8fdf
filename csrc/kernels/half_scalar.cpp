// Portable half-precision softmax-family kernels: the scalar float32 passes
// (one lane, double arithmetic) with each float16 / bfloat16 value widened
// exactly on load and rounded once to nearest even on store, by the bit
// manipulations of convert_generic.h. The stored value goes double -> float
// (the float32 kernels' own store) -> half: the same bits as the float32
// scalar kernels' results converted afterwards.
#include "vecmath_scalar.h"
#define SSM_ISA scalar
#include "half_generic.h"
#define SSM_CONVERT_NS scalar
#include "convert_generic.h"

namespace ssm {
namespace scalar {
namespace {

template <class H>
struct HalfFormatOps;
template <>
struct HalfFormatOps<F16Bits> {
  static float widen(uint16_t h) { return f16_to_f32_one(h); }
  static uint16_t narrow(float f) { return f32_to_f16_one(f); }
};
template <>
struct HalfFormatOps<BF16Bits> {
  static float widen(uint16_t h) { return bf16_to_f32_one(h); }
  static uint16_t narrow(float f) { return f32_to_bf16_one(f); }
};

template <class H>
struct HalfF64x1 : F64x1 {
  using Ops = HalfFormatOps<H>;
  using F64x1::load;
  using F64x1::load_tail;
  using F64x1::store;
  using F64x1::store_tail;
  static reg load(const H* p) { return Ops::widen(p->bits); }
  static reg load_tail(const H* p, size_t, double) { return Ops::widen(p->bits); }
  static void store(H* p, reg v) { p->bits = Ops::narrow(static_cast<float>(v)); }
  static void store_tail(H* p, reg v, size_t) { store(p, v); }
  static void store_finite(H* p, reg v) { store(p, v); }
  template <class Out>
  static void stream(Out* p, reg v) { store(p, v); }
};

inline double div_lanes(double a, double b) { return a / b; }

}  // namespace
}  // namespace scalar
}  // namespace ssm

#include "half_rows.h"

namespace ssm {
namespace scalar {
namespace {

// The float32 kernels' tuning (softmax_scalar.cpp).
constexpr int kUnrollStore = 4, kBlockStore = 2;
constexpr int kUnrollFast = 8, kBlockFast = 2;
constexpr int kUnrollLse = 8, kBlockLse = 2;  // the float64 lanes' fast-sum tuning

template <class H>
HalfKernels make_format() {
  HalfKernels k = make_half_kernels<HalfF64x1<H>, HalfF64x1<H>, H, kUnrollFast, kBlockFast, kUnrollStore,
                                    kBlockStore, kUnrollLse, kBlockLse>();
  // Short rows: no faster than the buffered path's float32 kernels (0.96-1.1x
  // up to n = 16, 0.84-0.96x from 64 on, bfloat16, 1 Mi elements).
  add_half_rows<HalfF64x1<H>, H>(k, {16, 16, 16});
  return k;
}

}  // namespace
}  // namespace scalar

const HalfKernelSet& half_kernels_scalar() {
  static const HalfKernelSet set{"scalar", scalar::make_format<F16Bits>(), scalar::make_format<BF16Bits>()};
  return set;
}
}  // namespace ssm
