// The contract of the short-row kernels (rows_<isa>.cpp): batches of
// contiguous rows too short to fill the row kernels' vectors. Plain C++ types
// only, like kernel_api.h, so the baseline driver can call any set.
#pragma once
#include <cstddef>

namespace ssm {

// Each kernel takes `rows` contiguous rows of n <= max_n elements and handles
// them a group of `group` rows at a time, one row per vector lane (the group
// is transposed into an L1 buffer, so a vector holds one column of `group`
// rows). flag[r] is set to 1 for a row the kernel left unwritten for the
// per-row path (NaN, +-inf, all -inf, a max outside the fast range, a
// weighted sum that is zero or tiny) and to 0 otherwise. Lanes never mix:
// a row's result does not depend on the other rows of its group, so any
// split of the batch (threads) gives the same bits. y may be x (in place).
// Rows from about 100 bytes on may go one row at a time instead, along their
// vectors, under the same contract (softmax: rows_direct.h; float64
// log_softmax: rows_log_softmax_direct.h; float32 log_softmax:
// rows_log_softmax32_direct.h; float32 logsumexp: rows_logsumexp_direct.h;
// float64 logsumexp: rows_logsumexp64_direct.h).
template <class T>
struct RowsKernels {
  size_t max_n;
  size_t group;
  // softmax: three passes over the transposed group in registers/L1 (max,
  // stored terms exp(x) * 2^-round(max log2 e) with their compensated sum,
  // scale), the exact-difference reference of the three-pass algorithms.
  // stream: y may be written with non-temporal stores (an output beyond the
  // cache, use_stream); the kernel fences before it returns.
  void (*softmax)(const T* x, T* y, size_t rows, size_t n, bool stream, unsigned char* flag);
  // log_softmax: y = (x - max) - log1p(S - 1), S = sum exp(x - max) in
  // float64 arithmetic with the max's own terms counted apart (exactly).
  void (*log_softmax)(const T* x, T* y, size_t rows, size_t n, bool stream, unsigned char* flag);
  // out[r] = max + log|S| with S = sum b exp(x - max) (b may be null: 1;
  // max over b != 0); sign (may be null) gets +-1.
  void (*logsumexp)(const T* x, const T* b, T* out, T* sign, size_t rows, size_t n, unsigned char* flag);
  // Longest row the driver gives logsumexp without weights (beyond it the
  // per-row kernels are faster); may exceed max_n where the set's float32
  // direct rows take it (rows_logsumexp_direct.h: any length, no buffer).
  size_t logsumexp_max_n;
  // Longest row the driver gives log_softmax (beyond it the per-row
  // kernels are faster); may exceed max_n where the set's float32 direct
  // rows take it (rows_log_softmax32_direct.h: no buffer; AVX2).
  size_t log_softmax_max_n;
};

struct RowsKernelSet {
  const char* name;
  RowsKernels<float> f32;
  RowsKernels<double> f64;
};

// One per kernel translation unit; call only the set the CPU runs.
const RowsKernelSet& rows_kernels_scalar();
#if defined(SSM_HAVE_X86_KERNELS)
const RowsKernelSet& rows_kernels_avx2();
const RowsKernelSet& rows_kernels_avx512();
#endif
#if defined(SSM_HAVE_NEON_KERNELS)
const RowsKernelSet& rows_kernels_neon();
#endif

}  // namespace ssm
