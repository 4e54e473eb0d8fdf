#include "driver_rows.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "dispatch.h"
#include "kernels/rows_api.h"
#include "thread_pool.h"

namespace ssm {
namespace {

std::atomic<size_t> g_short_rows_max{~size_t(0)};

template <class T>
const Kernels<T>& of(const KernelSet& s);
template <>
const Kernels<float>& of<float>(const KernelSet& s) { return s.f32; }
template <>
const Kernels<double>& of<double>(const KernelSet& s) { return s.f64; }

template <class T>
const RowsKernels<T>& of(const RowsKernelSet& s);
template <>
const RowsKernels<float>& of<float>(const RowsKernelSet& s) { return s.f32; }
template <>
const RowsKernels<double>& of<double>(const RowsKernelSet& s) { return s.f64; }

// The short-row kernels of the set `k` belongs to, or null: `k` must be the
// active implementation's (the only one known to run here; a set switched
// meanwhile by another thread simply takes the per-row path) and the
// implementation must have short-row kernels.
template <class T>
const RowsKernels<T>* rows_kernels_for(const Kernels<T>& k) {
  const Implementation& impl = active_implementation();
  if (&of<T>(impl.softmax()) != &k || impl.rows == nullptr) return nullptr;
  return &of<T>(impl.rows());
}

// Runs kernel(first_row, count, flags) over the batch, split into tasks of
// whole groups for the thread pool when the call is big enough, then redo(r)
// -> ok for each flagged row in order. Lanes never mix, so the split does not
// change any bit.
template <class T, class Kernel, class Redo>
void run_short_rows(const RowsKernels<T>& rk, size_t rows, size_t n, Kernel&& kernel, Redo&& redo,
                    std::vector<size_t>& special) {
  std::vector<unsigned char> flag(rows);
  const size_t group = rk.group;
  // About one row chunk of elements per task, in whole groups.
  const size_t per_task = std::max<size_t>(1, chunk_elements() / (n * group)) * group;
  const size_t tasks = (rows + per_task - 1) / per_task;
  auto task = [&](size_t t) {
    const size_t r0 = t * per_task;
    kernel(r0, std::min(per_task, rows - r0), flag.data() + r0);
  };
  if (tasks > 1 && get_num_threads() > 1 && rows * n >= parallel_min())
    parallel_for(tasks, task);
  else
    for (size_t t = 0; t < tasks; ++t) task(t);
  // The flags (0 or 1) found by memchr: a byte loop per row took 5-7% of a
  // batch of rows of 32 (AVX-512 float32 logsumexp, cpu-clock samples).
  const unsigned char* f = flag.data();
  for (size_t r = 0; r < rows; ++r) {
    const void* at = std::memchr(f + r, 1, rows - r);
    if (!at) break;
    r = static_cast<size_t>(static_cast<const unsigned char*>(at) - f);
    if (!redo(r)) special.push_back(r);
  }
}

// softmax takes the short-row kernels up to their max_n: rows of a few
// vectors or more go one row at a time along the row there
// (kernels/rows_direct.h), with no per-row call, context or chunking, which
// beat the per-row two-pass and reload kernels (see rows_generic.h's
// kDirectMinBytes for the figures).
constexpr size_t kSoftmaxShortMax = 256;

// log_softmax: the kernel set's log_softmax_max_n. Unweighted logsumexp:
// its logsumexp_max_n (float32 rows on AVX-512 and AVX2: beyond max_n, the
// direct rows take any length); weighted, its max_n. limit: that length.
template <class T>
bool applies(const RowsKernels<T>* rk, size_t rows, size_t n, size_t limit) {
  // One row alone gains nothing from a group; it also keeps the per-row
  // redo of a flagged row (rows = 1) from coming back here.
  return rk && rows >= 2 && n >= 1 && n <= limit && n <= g_short_rows_max.load(std::memory_order_relaxed);
}

}  // namespace

void set_short_rows_max(size_t n) { g_short_rows_max.store(n); }

template <class T>
bool short_rows_softmax(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n, std::vector<size_t>& special) {
  const RowsKernels<T>* rk = rows_kernels_for(k);
  if (!applies(rk, rows, n, rk ? std::min(kSoftmaxShortMax, rk->max_n) : 0)) return false;
  const bool stream = use_stream(rows * n * sizeof(T));  // as the row kernels' write passes
  run_short_rows(
      *rk, rows, n,
      [&](size_t r0, size_t count, unsigned char* f) { rk->softmax(x + r0 * n, y + r0 * n, count, n, stream, f); },
      [&](size_t r) { return softmax_batch<T>(k, x + r * n, y + r * n, 1, n, Algorithm::TwoPass).empty(); },
      special);
  return true;
}

template <class T>
bool short_rows_log_softmax(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n,
                            std::vector<size_t>& special) {
  const RowsKernels<T>* rk = rows_kernels_for(k);
  if (!applies(rk, rows, n, rk ? rk->log_softmax_max_n : 0)) return false;
  const bool stream = use_stream(rows * n * sizeof(T));
  run_short_rows(
      *rk, rows, n,
      [&](size_t r0, size_t count, unsigned char* f) { rk->log_softmax(x + r0 * n, y + r0 * n, count, n, stream, f); },
      [&](size_t r) { return log_softmax_batch<T>(k, x + r * n, y + r * n, 1, n).empty(); }, special);
  return true;
}

template <class T>
bool short_rows_logsumexp(const Kernels<T>& k, const T* x, const T* b, T* out, T* sign, size_t rows, size_t n,
                          std::vector<size_t>& special) {
  const RowsKernels<T>* rk = rows_kernels_for(k);
  if (!applies(rk, rows, n, !rk ? 0 : b ? rk->max_n : rk->logsumexp_max_n)) return false;
  run_short_rows(
      *rk, rows, n,
      [&](size_t r0, size_t count, unsigned char* f) {
        rk->logsumexp(x + r0 * n, b ? b + r0 * n : nullptr, out + r0, sign ? sign + r0 : nullptr, count, n, f);
      },
      [&](size_t r) {
        return logsumexp_batch<T>(k, x + r * n, b ? b + r * n : nullptr, out + r, sign ? sign + r : nullptr, 1, n)
            .empty();
      },
      special);
  return true;
}

#define SSM_INSTANTIATE(T)                                                                                     \
  template bool short_rows_softmax<T>(const Kernels<T>&, const T*, T*, size_t, size_t, std::vector<size_t>&);  \
  template bool short_rows_log_softmax<T>(const Kernels<T>&, const T*, T*, size_t, size_t,                     \
                                          std::vector<size_t>&);                                               \
  template bool short_rows_logsumexp<T>(const Kernels<T>&, const T*, const T*, T*, T*, size_t, size_t,         \
                                        std::vector<size_t>&);

SSM_INSTANTIATE(float)
SSM_INSTANTIATE(double)
#undef SSM_INSTANTIATE

}  // namespace ssm
