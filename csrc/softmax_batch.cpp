// Batches of contiguous rows: rows are spread over the threads (short rows,
// in runs of whole rows) or each long row's chunks are (chunking.h); every
// row runs one of the row algorithms of softmax_rows.h.
#include <algorithm>
#include <vector>

#include "cache_info.h"
#include "driver.h"
#include "driver_rows.h"
#include "softmax_rows.h"
#include "thread_pool.h"

namespace ssm {
namespace {

using namespace detail;

// fn(ctx, r) -> ok for every row; rows are spread over the threads (short
// rows) or each row's chunks are (long rows).
template <class T, class Fn>
std::vector<size_t> run_batch(const Kernels<T>& k, size_t rows, size_t n, size_t out_bytes, Fn&& fn) {
  const CallFootprint footprint(rows * n * sizeof(T));  // the batch tasks below set their own
  Ctx<T> c = make_ctx(k, out_bytes);
  const bool threads = get_num_threads() > 1 && rows * n >= parallel_min();
  std::vector<size_t> special;
  if (rows == 0 || n == 0) return special;
  if (n > c.chunked_row || rows == 1) {
    c.parallel = threads;
    for (size_t r = 0; r < rows; ++r)
      if (!fn(c, r)) special.push_back(r);
    return special;
  }
  const size_t per_task = rows_per_task(n, c.chunk);  // as the Gumbel driver groups rows
  const size_t tasks = (rows + per_task - 1) / per_task;
  if (threads) c.concurrent_rows = std::min<size_t>(tasks, static_cast<size_t>(get_num_threads()));
  std::vector<char> ok(rows, 1);
  auto task = [&](size_t t) {
    const CallFootprint on_this_thread(rows * n * sizeof(T));
    const size_t end = std::min(rows, (t + 1) * per_task);
    for (size_t r = t * per_task; r < end; ++r) ok[r] = fn(c, r);
  };
  if (threads)
    parallel_for(tasks, task);
  else
    for (size_t t = 0; t < tasks; ++t) task(t);
  for (size_t r = 0; r < rows; ++r)
    if (!ok[r]) special.push_back(r);
  return special;
}

}  // namespace

template <class T>
std::vector<size_t> softmax_batch(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n, Algorithm a,
                                  bool special_y_unspecified) {
  std::vector<size_t> special;
  if (a == Algorithm::Auto && short_rows_softmax(k, x, y, rows, n, special)) return special;
  return run_batch(k, rows, n, rows * n * sizeof(T), [&](const Ctx<T>& c, size_t r) {
    return softmax_row(c, x + r * n, y + r * n, n, a, special_y_unspecified);
  });
}

template <class T>
std::vector<size_t> log_softmax_batch(const Kernels<T>& k, const T* x, T* y, size_t rows, size_t n,
                                      bool special_y_unspecified) {
  std::vector<size_t> special;
  if (short_rows_log_softmax(k, x, y, rows, n, special)) return special;
  return run_batch(k, rows, n, rows * n * sizeof(T), [&](const Ctx<T>& c, size_t r) {
    return log_softmax_row(c, x + r * n, y + r * n, n, special_y_unspecified);
  });
}

template <class T>
std::vector<size_t> logsumexp_batch(const Kernels<T>& k, const T* x, const T* b, T* out, T* sign, size_t rows,
                                    size_t n) {
  std::vector<size_t> special;
  if (n == 0) {
    for (size_t r = 0; r < rows; ++r) special.push_back(r);
    return special;
  }
  if (short_rows_logsumexp(k, x, b, out, sign, rows, n, special)) return special;
  return run_batch(k, rows, n, 0, [&](const Ctx<T>& c, size_t r) {
    double lse, s;
    if (!logsumexp_row(c, x + r * n, b ? b + r * n : nullptr, n, lse, s)) return false;
    out[r] = static_cast<T>(lse);
    if (sign) sign[r] = static_cast<T>(s);
    return true;
  });
}

template <class T>
void probe_copy(const Kernels<T>& k, const T* x, T* y, size_t n) {
  k.probe_copy(x, y, n, use_stream(n * sizeof(T)));
}

template <class T>
void probe_fill(const Kernels<T>& k, T* y, size_t n, double value) {
  k.probe_fill(y, n, value, use_stream(n * sizeof(T)));
}

#define SSM_INSTANTIATE(T)                                                                                     \
  template std::vector<size_t> softmax_batch<T>(const Kernels<T>&, const T*, T*, size_t, size_t, Algorithm, bool); \
  template std::vector<size_t> log_softmax_batch<T>(const Kernels<T>&, const T*, T*, size_t, size_t, bool);    \
  template std::vector<size_t> logsumexp_batch<T>(const Kernels<T>&, const T*, const T*, T*, T*, size_t,      \
                                                  size_t);                                                     \
  template void probe_copy<T>(const Kernels<T>&, const T*, T*, size_t);                                        \
  template void probe_fill<T>(const Kernels<T>&, T*, size_t, double);

SSM_INSTANTIATE(float)
SSM_INSTANTIATE(double)
#undef SSM_INSTANTIATE

}  // namespace ssm
