// The contract between the per-ISA kernel translation units and the rest of the
// extension. Plain C++ types only: no intrinsics cross this boundary, so the
// driver (compiled for baseline x86-64) can call any kernel set through the
// same table of function pointers.
#pragma once
#include <cstddef>
#include <limits>

namespace ssm {

// A sum of exp(x_i - ref) kept as m * 2^e, so it neither overflows nor
// underflows for any finite input. Partial sums over chunks combine exactly
// up to one rounding (see combine() in driver.cpp).
struct ExpSum {
  double m = 0.0;                                        // mantissa part (signed for weighted sums)
  double m_lo = 0.0;                                     // low part: m + m_lo is the sum to ~2^-100
  double e = -std::numeric_limits<double>::infinity();  // integer-valued exponent
  double max = -std::numeric_limits<double>::infinity(); // largest x seen (NaN ignored; weighted: over b != 0)
  bool special = false;  // a NaN (or, weighted, a non-finite weight) was seen
};

// Inputs with |x| above this are outside the fast two-pass range reduction:
// exp(x) = m * 2^n with n = round(x * log2(e)) stays exact for |n| < 2^22 (the
// fma-based reduction, and the 31-bit Cody-Waite split of the scalar path).
// Rows whose max leaves [-kFastLimit, kFastLimit] are redone relative to their
// max, where x - max is computed exactly (TwoSum), so every finite input works.
constexpr double kFastLimit = 1048576.0;     // 2^20
constexpr double kClampLow = -2097152.0;     // -2^21: exp(x) is 0 relative to any in-range max

template <class T>
struct Kernels {
  // sum exp(x - ref) as m * 2^e, plus max(x) and NaN flag. exact: x - ref is
  // formed exactly (TwoSum), needed whenever ref != 0.
  ExpSum (*expsum)(const T* x, size_t n, double ref, bool exact);
  // Online normalizer: per-lane running max with a rescaled sum. Returns
  // m = sum exp(x - max), e = 0, max = max(x).
  ExpSum (*expsum_online)(const T* x, size_t n);
  // max(x) and the NaN flag only (pass 1 of the three-pass algorithms).
  ExpSum (*max_scan)(const T* x, size_t n);
  // y = exp(x - ref) (x - ref exact); returns the sum of the stored y (e = 0).
  ExpSum (*expsum_store)(const T* x, T* y, size_t n, double ref);
  // y *= factor.
  void (*scale)(T* y, size_t n, double factor);
  // y = exp(x - ref) * 2^-e * inv.
  void (*write_exp)(const T* x, T* y, size_t n, double ref, bool exact, double e, double inv);
  // y = x - (shift_hi + shift_lo)   (log_softmax's second pass)
  void (*write_shift)(const T* x, T* y, size_t n, double shift_hi, double shift_lo);
  // Log-sum-exp pass in float64 arithmetic whatever T is (so a float32
  // logsumexp is correctly rounded in practice); b (may be null) weights each
  // term. With b, max is over b != 0 and `special` flags NaN x or non-finite b.
  ExpSum (*expsum_wide)(const T* x, const T* b, size_t n, double ref, bool exact);
  // One pass, max-relative, in float64 arithmetic whatever T is: max = max x
  // (over b != 0 when weighted), m + m_lo = sum b*exp(x - max) with e = 0. The
  // max's own term is exactly 1, so m - 1 + m_lo keeps the small remainder
  // that log_softmax and logsumexp need near 0 (log1p of it).
  ExpSum (*expsum_online_wide)(const T* x, const T* b, size_t n);
  // exp(x) by the kernel's own exp (test and accuracy-sweep hook).
  void (*vexp)(const T* x, T* y, size_t n);
  // Bandwidth probes with the same loads and stores as the kernels: a
  // streaming sum, a copy, and a store-only fill.
  double (*probe_read)(const T* x, size_t n);
  void (*probe_copy)(const T* x, T* y, size_t n);
  void (*probe_fill)(T* y, size_t n, double value);
};

struct KernelSet {
  const char* name;
  Kernels<float> f32;
  Kernels<double> f64;
};

// One per kernel translation unit.
const KernelSet& kernels_scalar();
#if defined(SSM_HAVE_X86_KERNELS)
const KernelSet& kernels_avx2();
const KernelSet& kernels_avx512();
#endif

}  // namespace ssm
