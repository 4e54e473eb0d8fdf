// The contract of the half-precision kernels (half_<isa>.cpp): the float32
// passes of the softmax family reading and writing float16 / bfloat16 values
// directly, 2 bytes per element. Each is the float32 kernel of the same name
// (kernel_api.h) compiled over a lane type whose loads widen the half values
// exactly and whose stores round to the format once (nearest even, overflow
// to inf, NaN kept quiet): the conversion rides along with the loads and
// stores instead of costing a separate pass through a float32 buffer.
// Plain C++ types only (half values travel as their uint16_t bits), so the
// baseline half driver (driver_half.cpp) calls any set through the same table.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernel_api.h"

namespace ssm {

// Element types that tell a lane type's load and store overloads which
// format the bits are in (same size and alignment as uint16_t).
struct F16Bits {
  uint16_t bits;
};
struct BF16Bits {
  uint16_t bits;
};

// The longest row of the short-row kernels: a group of 8 rows of float32
// terms (128 KiB, plus the rows' padding: half_rows.h) stays in L2 between
// the passes.
constexpr size_t kHalfRowsMax = 4096;

// The longest rows of the one-vector kernels (softmax_tiny; rows of 2 or 4
// whole vectors: half_rows.h wide_tiny_rows).
constexpr size_t kHalfTinyMax = 32;

// One format's passes; see Kernels<float> for what each computes.
struct HalfKernels {
  ExpSum (*expsum_fast)(const uint16_t* x, size_t n);
  ExpSum (*max_scan)(const uint16_t* x, size_t n);
  ExpSum (*expsum)(const uint16_t* x, size_t n, double ref, bool exact);
  ExpSum (*expsum_online_wide)(const uint16_t* x, size_t n);
  // The fast sum in float64 lanes with the row's max (log_softmax's pass 1).
  ExpSum (*expsum_lse)(const uint16_t* x, size_t n);
  // y may be x (in place): every element is read before it is written.
  void (*write_exp)(const uint16_t* x, uint16_t* y, size_t n, double ref, bool exact, double e, double inv);
  void (*write_shift)(const uint16_t* x, uint16_t* y, size_t n, double shift_hi, double shift_lo);
  // Three-pass-reload's stored terms into a float32 buffer: y = exp(x) *
  // 2^-e_ref, and their sum (Kernels<float>::expsum_store_pow2).
  ExpSum (*expsum_store_pow2_f32)(const uint16_t* x, float* y, size_t n, double e_ref);
  // y = x * factor from float32 x, rounded once to the format
  // (three-pass-reload's last pass over terms kept in a float32 buffer).
  void (*scale_from_f32)(const float* x, uint16_t* y, size_t n, double factor);
  // Batches of short rows (half_rows.h), rows_min_n <= n <= kHalfRowsMax:
  // `rows` contiguous rows of n elements; flag[r] = 1 for a row left
  // unwritten (NaN, +-inf, no finite entry) for the caller's exact path, 0
  // otherwise. y may be x. A row's bits do not depend on the rest of the batch.
  void (*softmax_rows)(const uint16_t* x, uint16_t* y, size_t rows, size_t n, unsigned char* flag);
  // `rows` contiguous rows of n elements (rows >= 1), at index n = 2 ..
  // kHalfTinyMax, flag and y as softmax_rows'. Null: the set has none for
  // that length (a row must fit a vector; lengths other than powers of two
  // need the lane type's spread loads: half_rows.h tiny_rows).
  using TinyRows = void (*)(const uint16_t* x, uint16_t* y, size_t rows, unsigned char* flag);
  TinyRows softmax_tiny[kHalfTinyMax + 1];
  TinyRows log_softmax_tiny[kHalfTinyMax + 1];
  void (*log_softmax_rows)(const uint16_t* x, uint16_t* y, size_t rows, size_t n, unsigned char* flag);
  // out[r]: the row's log-sum-exp in float32, within a quarter ulp of the
  // format (flag[r] = 1 where that is not certain: the caller's exact path).
  void (*logsumexp_rows)(const uint16_t* x, float* out, size_t rows, size_t n, unsigned char* flag);
  // Long rows' log_softmax pass 1 on a block of n >= 1 elements: max = the
  // block's max, m = sum exp(x - max) with the format's cheap exp (e = 0),
  // err and err_rest as ExpSum's (half_rows.h max_sum_block); m is NaN
  // where the block holds a NaN (max then may or may not be NaN), +inf (max
  // +inf) or a value beyond +-32768 (for the caller's other passes). Null:
  // the set has none.
  ExpSum (*max_sum_block)(const uint16_t* x, size_t n);
  // logsumexp's: max_sum_block with the format's own polynomial (half_rows.h
  // Exp2Poly; max_sum_block takes bfloat16's for both). Null: none.
  ExpSum (*lse_block)(const uint16_t* x, size_t n);
  // softmax's pass 1 on a cached long row: t = exp(x - ref) * 2^64 (float32),
  // m = their sum / 2^64, max = the row's max (half_rows.h terms_from_ref);
  // |ref| <= 4096, the terms exact up to a common factor in [1, 2^(2^-11)).
  ExpSum (*terms_from_ref)(const uint16_t* x, float* t, size_t n, double ref);
  size_t rows_min_n;  // the lane count: the shortest row fills one vector
  // The longest row each function's drivers give them by default (same-run
  // A/B timings of the set against the paths they replace: half_<isa>.cpp).
  struct RowsMax {
    size_t softmax, log_softmax, logsumexp;
  };
  RowsMax rows_auto_max;
  // Loop geometry (kernel_api.h's Tile): lanes, each pass's main-loop step.
  TileList tiles;
};

struct HalfKernelSet {
  const char* name;
  HalfKernels f16;
  HalfKernels bf16;
};

// One per kernel translation unit; call only the set the CPU runs (avx2's
// also needs F16C: see dispatch.cpp).
const HalfKernelSet& half_kernels_scalar();
#if defined(SSM_HAVE_X86_KERNELS)
const HalfKernelSet& half_kernels_avx2();
const HalfKernelSet& half_kernels_avx512();
#endif
#if defined(SSM_HAVE_AVX512BF16_KERNELS)
// The avx512 set's kernels with AVX512_BF16's bfloat16 rounding: call only
// where CPUID reports AVX512_BF16 besides the avx512 set's requirement.
const HalfKernelSet& half_kernels_avx512bf16();
#endif

}  // namespace ssm
