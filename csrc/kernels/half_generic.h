// The half-precision kernel table for one instruction set (half_api.h):
// the float32 passes of expsum_fast.h, expsum_exact.h and write_passes.h,
// instantiated over element types F16Bits / BF16Bits. The including
// half_<isa>.cpp defines SSM_ISA, includes its vecmath header, and defines
// for each format H two lane types: HN<H>, the float32 lanes of its softmax
// kernels plus load / load_tail / store / store_tail for `H` pointers
// (widening exactly on load, rounding to nearest even once on store), and
// HW<H>, the float64 lanes of its wide passes plus load / load_tail. The
// lane types set stream_align = 0: half rows are written with ordinary
// stores (the drivers ask for no streaming), and stream(H*, v) is a store.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace (and include its vecmath_<isa>.h) first"
#endif
#pragma once

#include "expsum_exact.h"
#include "expsum_fast.h"
#include "half_api.h"
#include "write_passes.h"

namespace ssm {
namespace SSM_ISA {
namespace {

// VN, VW: lane types with the loads (and VN the stores) of element type H;
// the unrolls and blocks are the float32 kernels' tuning.
// U x B: the fast sum's unroll and block; SU x SB: the stored terms'; LU x
// LB: the float64 sum's (expsum_lse).
template <class VN, class VW, class H, int U, int B, int SU, int SB, int LU, int LB>
HalfKernels make_half_kernels() {
  HalfKernels k;
  k.expsum_fast = [](const uint16_t* x, size_t n) {
    return expsum_fast<VN, U, B, H>(reinterpret_cast<const H*>(x), n);
  };
  k.max_scan = [](const uint16_t* x, size_t n) { return max_scan<VN, H>(reinterpret_cast<const H*>(x), n); };
  k.expsum = [](const uint16_t* x, size_t n, double ref, bool exact) {
    return expsum<VN, H>(reinterpret_cast<const H*>(x), n, ref, exact);
  };
  k.expsum_online_wide = [](const uint16_t* x, size_t n) {
    return expsum_online_wide<VW, H>(reinterpret_cast<const H*>(x), static_cast<const H*>(nullptr), n);
  };
  k.expsum_lse = [](const uint16_t* x, size_t n) {
    return expsum_lse<VW, LU, LB, H>(reinterpret_cast<const H*>(x), n);
  };
  k.write_exp = [](const uint16_t* x, uint16_t* y, size_t n, double ref, bool exact, double e, double inv) {
    write_exp<VN, H>(reinterpret_cast<const H*>(x), reinterpret_cast<H*>(y), n, ref, exact, e, inv, false);
  };
  k.write_shift = [](const uint16_t* x, uint16_t* y, size_t n, double hi, double lo) {
    write_shift<VN, H>(reinterpret_cast<const H*>(x), reinterpret_cast<H*>(y), n, hi, lo, false);
  };
  k.expsum_store_pow2_f32 = [](const uint16_t* x, float* y, size_t n, double e_ref) {
    return expsum_store_pow2<VN, SU, SB>(reinterpret_cast<const H*>(x), y, n, e_ref);
  };
  k.scale_from_f32 = [](const float* x, uint16_t* y, size_t n, double factor) {
    const Reg<VN> f = VN::set1(factor);
    store_loop<VN, false>(reinterpret_cast<H*>(y), n, [&](size_t i, size_t count) SSM_INLINE {
      return VN::mul(load_n<VN>(x + i, count, 0.0), f);
    });
  };
  TileList& t = k.tiles;
  t.count = 0;
  add_tile(t, "lanes", VN::width);
  add_tile(t, "lanes_wide", VW::width);
  add_tile(t, "expsum_fast", size_t(U) * B * VN::width);
  add_tile(t, "expsum_store_pow2_f32", size_t(SU) * SB * VN::width);
  const char* unrolled[] = {"max_scan", "expsum", "write_exp", "write_shift", "scale_from_f32"};
  for (const char* name : unrolled) add_tile(t, name, kUnroll * VN::width);
  add_tile(t, "expsum_online_wide", kUnroll * VW::width);
  add_tile(t, "expsum_lse", size_t(LU) * LB * VW::width);
  return k;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
