// The softmax family's kernel table for one instruction set, assembled from
// kernels written once over a lane type V (vecmath_<isa>.h) and compiled once
// per set by softmax_<isa>.cpp, which defines SSM_ISA and includes its vecmath
// header first. Where each job lives:
//   exp_core.h          exp(x) = m * 2^n, exact differences, (m, n) sums
//   expsum_fast.h       sum exp(x) with no max pass: the two-pass algorithm's
//                       first pass and the fast log-sum-exp
//   expsum_exact.h      max-relative and online sums, the max pass
//   write_passes.h      y = exp(x) * 2^-e / sum (every algorithm's last pass),
//                       reload's stored terms, y *= f, log_softmax's y = x - lse
//   strided_kernels.h   the same jobs across columns (reductions over any axis)
//   bandwidth_probes.h  read / copy / fill at the kernels' memory speed
//   simd_loops.h        the loop drivers under all of them
// The algorithms that compose these passes (two-pass, three-pass-recompute,
// three-pass-reload, online) are in ../softmax_rows.h.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace before including softmax_generic.h"
#endif
#pragma once

#include "bandwidth_probes.h"
#include "exp_dd.h"
#include "expsum_exact.h"
#include "expsum_fast.h"
#include "expsum_table32.h"
#include "strided_kernels.h"
#include "write_passes.h"

namespace ssm {
namespace SSM_ISA {
namespace {

// Unroll (U independent chains) and block (B terms per chain before the
// fold) of the fast sums, per lane type: the default here, specialized by
// softmax_<isa>.cpp with the (U, B) that _core.testing.tune_expsum measured
// fastest on an in-cache row. strided_block: rows per block of the strided
// sums; store_unroll x store_block: the same for three-pass-reload's stored
// terms.
template <class V>
struct Tuning {
  static constexpr int unroll = 4, block = 2, strided_block = 4, store_unroll = 4, store_block = 2;
};
// expsum_lse (float64 lanes) for data of type T: the fast sums' tuning of
// the float64 lane type unless specialized.
template <class V, class T>
struct LseTuning {
  static constexpr int unroll = Tuning<V>::unroll, block = Tuning<V>::block;
};
// expsum_top's unroll: U accumulator pairs (s, c) and U vectors of terms in
// flight; 4 keeps them in 16 registers besides the polynomial's constants.
template <class V>
struct TopTuning {
  static constexpr int unroll = 4;
};
// (unroll, block) of the expsum_fast instantiations offered for tuning.
constexpr int kVariantUB[6][2] = {{2, 2}, {4, 1}, {4, 2}, {8, 1}, {2, 4}, {8, 2}};

// expsum_lse32 for float32 data on lanes with the float32 table exp; null
// otherwise (the driver then starts with expsum_lse).
template <class VN, class T>
constexpr ExpSum (*lse32_entry())(const T*, size_t) {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value)
    return &expsum_lse32<VN, T>;
  else
    return nullptr;
}
// expsum_lse32_copy where the tuning asks for it, else null.
template <class VN, class T>
constexpr ExpSum (*lse32_copy_entry())(const T*, T*, size_t) {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value && Lse32Tuning<VN>::copy)
    return &expsum_lse32_copy<VN, T>;
  else
    return nullptr;
}
// expsum_lse32_fast where the tuning asks for it, else null.
template <class VN, class T>
constexpr ExpSum (*lse32_fast_entry())(const T*, T*, size_t) {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value && Lse32Tuning<VN>::fast)
    return &expsum_lse32_fast<VN, T>;
  else
    return nullptr;
}
// expsum_lse32_copy_fast where the tuning offers both the copy and the
// one-float table, else null.
template <class VN, class T>
constexpr ExpSum (*lse32_copy_fast_entry())(const T*, T*, size_t) {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value && Lse32Tuning<VN>::copy &&
                Lse32Tuning<VN>::fast)
    return &expsum_lse32_copy_fast<VN, T>;
  else
    return nullptr;
}
// expsum_lse32's err_rest (0 where there is none).
template <class VN, class T>
constexpr double lse32_err_rest() {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value)
    return Table32Exp<VN>::kErrUnits * 0x1p-24;
  else
    return 0.0;
}
// write_shift_wide wherever expsum_lse32 is (float32 data), else null.
template <class VN, class VW, class T>
constexpr void (*shift_wide_entry())(const T*, T*, size_t, double, double) {
  if constexpr (std::is_same<T, float>::value && HasTable32<VN>::value)
    return &write_shift_wide<VW, T>;
  else
    return nullptr;
}

// VN: lane type for the data's own precision; VW: float64 lanes (log-sum-exp).
template <class VN, class VW, class T>
Kernels<T> make_kernels() {
  using Tu = Tuning<VN>;
  using S = typename VN::scalar;
  Kernels<T> k;
  k.expsum_fast = &expsum_fast<VN, Tu::unroll, Tu::block, T>;
  k.expsum_pow2 = &expsum_pow2<VN, Tu::unroll, Tu::block, T>;
  k.expsum = &expsum<VN, T>;
  k.expsum_online = &expsum_online<VN, T>;
  k.max_scan = &max_scan<VN, T>;
  k.expsum_store_pow2 = &expsum_store_pow2<VN, Tu::store_unroll, Tu::store_block, T>;
  k.expsum_store = &expsum_store<VN, T>;
  k.scale = &scale<VN, T>;
  k.write_exp = &write_exp<VN, T>;
  k.write_shift = &write_shift<VN, T>;
  k.expsum_wide = &expsum_wide<VW, T>;
  k.expsum_online_wide = &expsum_online_wide<VW, T>;
  k.lse_dd = &lse_dd<VW, T>;
  k.expsum_lse = &expsum_lse<VW, LseTuning<VW, T>::unroll, LseTuning<VW, T>::block, T>;
  k.expsum_top = &expsum_top<VW, TopTuning<VW>::unroll, T>;
  k.expsum_lse32 = lse32_entry<VN, T>();
  k.expsum_lse32_copy = lse32_copy_entry<VN, T>();
  k.expsum_lse32_fast = lse32_fast_entry<VN, T>();
  k.expsum_lse32_copy_fast = lse32_copy_fast_entry<VN, T>();
  k.lse32_err_rest = lse32_err_rest<VN, T>();
  k.write_shift_wide = shift_wide_entry<VN, VW, T>();
  k.expsum_strided_fast = &expsum_strided_entry<VN, Tu::strided_block, T>;
  k.expsum_strided_online = &expsum_strided_online<VW, Tu::strided_block, T>;
  k.err_strided_fast = fast_sum_err<S, Tu::strided_block, 1, HasExpTable<VN>::value>();  // full blocks are one tree of B terms
  k.write_exp_strided = &write_exp_strided<VN, T>;
  k.write_shift_strided = &write_shift_strided<VN, T>;
  k.vexp = &vexp<VN, T>;
  k.probe_read = &probe_read<VN, T>;
  k.probe_copy = &probe_copy<VN, T>;
  k.probe_fill = &probe_fill<VN, T>;
  k.expsum_fast_variant[0] = &expsum_fast<VN, kVariantUB[0][0], kVariantUB[0][1], T>;
  k.expsum_fast_variant[1] = &expsum_fast<VN, kVariantUB[1][0], kVariantUB[1][1], T>;
  k.expsum_fast_variant[2] = &expsum_fast<VN, kVariantUB[2][0], kVariantUB[2][1], T>;
  k.expsum_fast_variant[3] = &expsum_fast<VN, kVariantUB[3][0], kVariantUB[3][1], T>;
  k.expsum_fast_variant[4] = &expsum_fast<VN, kVariantUB[4][0], kVariantUB[4][1], T>;
  k.expsum_fast_variant[5] = &expsum_fast<VN, kVariantUB[5][0], kVariantUB[5][1], T>;
  const char* names[] = {"u2b2", "u4b1", "u4b2", "u8b1", "u2b4", "u8b2"};
  for (int v = 0; v < Kernels<T>::kVariants; ++v) k.variant_name[v] = names[v];
  constexpr size_t W = VN::width, WW = VW::width;
  TileList& t = k.tiles;
  t.count = 0;
  add_tile(t, "lanes", W);
  add_tile(t, "lanes_wide", WW);
  // The fast sums: blocks of U x B vectors summed plainly, then single vectors.
  add_tile(t, "expsum_fast", size_t(Tu::unroll) * Tu::block * W);
  add_tile(t, "expsum_pow2", size_t(Tu::unroll) * Tu::block * W);
  add_tile(t, "expsum_store_pow2", size_t(Tu::store_unroll) * Tu::store_block * W);
  // for_each_block / store_loop: kUnroll vectors per step.
  const char* unrolled[] = {"expsum", "expsum_online", "max_scan",  "expsum_store", "scale",     "write_exp",
                            "write_shift", "vexp",      "probe_read", "probe_copy",   "probe_fill"};
  for (const char* name : unrolled) add_tile(t, name, kUnroll * W);
  add_tile(t, "expsum_wide", kUnroll * WW);
  add_tile(t, "expsum_online_wide", kUnroll * WW);
  add_tile(t, "lse_dd", kLseDdUnroll * WW);
  add_tile(t, "expsum_lse", size_t(LseTuning<VW, T>::unroll) * LseTuning<VW, T>::block * WW);
  add_tile(t, "expsum_top", size_t(TopTuning<VW>::unroll) * WW);
  if (k.expsum_lse32) add_tile(t, "expsum_lse32", size_t(Lse32Tuning<VN>::unroll) * W);
  if (k.expsum_lse32_copy) add_tile(t, "expsum_lse32_copy", size_t(Lse32Tuning<VN>::unroll) * W);
  if (k.expsum_lse32_fast) add_tile(t, "expsum_lse32_fast", size_t(Lse32Tuning<VN>::unroll) * W);
  if (k.expsum_lse32_copy_fast) add_tile(t, "expsum_lse32_copy_fast", size_t(Lse32Tuning<VN>::unroll) * W);
  if (k.write_shift_wide) add_tile(t, "write_shift_wide", kUnroll * WW);
  // Strided kernels: columns in vectors (W, or kUnroll x W in the write
  // passes) within panels of kPanel columns, rows in blocks of strided_block.
  add_tile(t, "strided_panel", kPanel);
  add_tile(t, "strided_rows", Tu::strided_block);
  add_tile(t, "expsum_strided_fast", W);
  add_tile(t, "expsum_strided_online", WW);
  add_tile(t, "write_exp_strided", kUnroll * W);
  add_tile(t, "write_shift_strided", kUnroll * W);
  const char* tile_names[] = {"expsum_fast.u2b2", "expsum_fast.u4b1", "expsum_fast.u4b2",
                              "expsum_fast.u8b1", "expsum_fast.u2b4", "expsum_fast.u8b2"};
  for (int v = 0; v < Kernels<T>::kVariants; ++v)
    add_tile(t, tile_names[v], size_t(kVariantUB[v][0]) * kVariantUB[v][1] * W);
  return k;
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
