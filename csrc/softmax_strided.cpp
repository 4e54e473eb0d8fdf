// Reductions over any axis: x is (outer, n, inner) in C order and each column
// (o, j) is reduced over the middle axis. The strided kernels vectorize
// across the contiguous columns, panel by panel; the rare columns they cannot
// finish are redone contiguously by the row algorithms (softmax_rows.h).
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "driver.h"
#include "softmax_rows.h"
#include "thread_pool.h"

namespace ssm {
namespace {

using namespace detail;

// Column gather / scatter for the rare columns the strided kernels cannot
// finish (NaN, inf, out of the fast range, uncertified log-sum-exp).
template <class T>
void gather(const T* x, size_t n, size_t stride, T* out) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i * stride];
}
template <class T>
void scatter(const T* in, size_t n, size_t stride, T* y) {
  for (size_t i = 0; i < n; ++i) y[i * stride] = in[i];
}

// fn(o, j0, cols, special_out) over panels of columns. The panel width only
// decides which lanes share a vector, and lanes never mix: results do not
// depend on it, so it can follow the thread count.
template <class T, class Fn>
std::vector<size_t> run_strided(const Kernels<T>& k, size_t outer, size_t n, size_t inner, Fn&& fn) {
  (void)k;
  std::vector<size_t> special;
  if (outer == 0 || n == 0 || inner == 0) return special;
  const int threads = get_num_threads();
  const bool parallel = threads > 1 && outer * n * inner >= parallel_min();
  size_t panels = 1;
  if (parallel && outer < size_t(2 * threads)) panels = (size_t(2 * threads) + outer - 1) / outer;
  size_t width = (inner + panels - 1) / panels;
  width = std::max<size_t>(64, (width + 63) / 64 * 64);
  panels = (inner + width - 1) / width;
  const size_t tasks = outer * panels;
  std::vector<std::vector<size_t>> found(tasks);
  auto task = [&](size_t t) {
    const size_t o = t / panels, j0 = (t % panels) * width;
    fn(o, j0, std::min(width, inner - j0), found[t]);
  };
  if (parallel)
    parallel_for(tasks, task);
  else
    for (size_t t = 0; t < tasks; ++t) task(t);
  for (auto& f : found) special.insert(special.end(), f.begin(), f.end());
  return special;
}

// A contiguous single-thread context for redone columns.
template <class T>
Ctx<T> column_ctx(const Kernels<T>& k, size_t n) {
  Ctx<T> c = make_ctx(k, 0);
  (void)n;
  c.stream = false;
  return c;
}

// The columns of a panel the vectorized pass cannot finish (NaN, inf, out of
// the fast range): their x, and y unless in place, are saved before the
// write pass overwrites y; redo() then computes each contiguously with
// row(c, col_x, col_y) -> ok and scatters it back, or, for a special column,
// puts its old y back (the Python layer overwrites it with SciPy's formula).
template <class T>
class SavedColumns {
 public:
  SavedColumns(const T* xo, T* yo, size_t n, size_t inner, std::vector<size_t> flagged)
      : xo_(xo), yo_(yo), n_(n), inner_(inner), flagged_(std::move(flagged)), x_(flagged_.size()), y_(flagged_.size()) {
    for (size_t f = 0; f < flagged_.size(); ++f) {
      x_[f].resize(n);
      gather(xo + flagged_[f], n, inner, x_[f].data());
      if (xo != static_cast<const T*>(yo)) {
        y_[f].resize(n);
        gather(static_cast<const T*>(yo + flagged_[f]), n, inner, y_[f].data());
      }
    }
  }

  template <class Row>
  void redo(const Kernels<T>& k, size_t special_base, std::vector<size_t>& special, Row&& row) const {
    const Ctx<T> c = column_ctx(k, n_);
    std::vector<T> out(n_);
    for (size_t f = 0; f < flagged_.size(); ++f) {
      const size_t j = flagged_[f];
      if (row(c, x_[f].data(), out.data())) {
        scatter(out.data(), n_, inner_, yo_ + j);
      } else {
        scatter(xo_ == yo_ ? x_[f].data() : y_[f].data(), n_, inner_, yo_ + j);
        special.push_back(special_base + j);
      }
    }
  }

 private:
  const T* xo_;
  T* yo_;
  size_t n_, inner_;
  std::vector<size_t> flagged_;
  std::vector<std::vector<T>> x_, y_;
};

// Per-column max and accurate max-relative sum (m + m_lo) of a panel; a
// column is usable when its max and sum are finite.
template <class T>
void strided_rel(const Kernels<T>& k, const T* xo, size_t n, size_t inner, size_t cols, std::vector<T>& max,
                 std::vector<double>& m, std::vector<double>& m_lo) {
  max.resize(cols);
  m.resize(cols);
  m_lo.resize(cols);
  k.expsum_strided_online(xo, n, inner, cols, max.data(), m.data(), m_lo.data());
}

bool rel_ok(double max, double m) { return std::isfinite(max) && std::isfinite(m) && m >= 1.0; }

double log1p_of(double m, double m_lo) { return std::log1p((m - 1.0) + m_lo); }

}  // namespace

template <class T>
std::vector<size_t> softmax_strided(const Kernels<T>& k, const T* x, T* y, size_t outer, size_t n, size_t inner) {
  const bool stream = use_stream(outer * n * inner * sizeof(T));
  return run_strided(k, outer, n, inner, [&](size_t o, size_t j0, size_t cols, std::vector<size_t>& special) {
    const T* xo = x + o * n * inner + j0;
    T* yo = y + o * n * inner + j0;
    std::vector<double> m(cols), e(cols);
    std::vector<T> ecol(cols), inv(cols);
    k.expsum_strided_fast(xo, n, inner, cols, m.data(), e.data());
    std::vector<size_t> flagged;
    for (size_t j = 0; j < cols; ++j) {
      if (fast_ok(m[j], e[j])) {
        ecol[j] = static_cast<T>(e[j]);
        inv[j] = static_cast<T>(1.0 / m[j]);
      } else {
        ecol[j] = inv[j] = T(0);
        flagged.push_back(j);
      }
    }
    const SavedColumns<T> saved(xo, yo, n, inner, std::move(flagged));
    k.write_exp_strided(xo, yo, n, inner, cols, ecol.data(), inv.data(), stream);
    saved.redo(k, o * inner + j0, special,
                 [&](const Ctx<T>& c, const T* cx, T* cy) { return softmax_row(c, cx, cy, n, Algorithm::TwoPass, false); });
  });
}

template <class T>
std::vector<size_t> log_softmax_strided(const Kernels<T>& k, const T* x, T* y, size_t outer, size_t n,
                                        size_t inner) {
  const bool stream = use_stream(outer * n * inner * sizeof(T));
  return run_strided(k, outer, n, inner, [&](size_t o, size_t j0, size_t cols, std::vector<size_t>& special) {
    const T* xo = x + o * n * inner + j0;
    T* yo = y + o * n * inner + j0;
    std::vector<T> hi, lo(cols);
    std::vector<double> m, m_lo;
    strided_rel(k, xo, n, inner, cols, hi, m, m_lo);
    std::vector<size_t> flagged;
    for (size_t j = 0; j < cols; ++j) {
      if (rel_ok(static_cast<double>(hi[j]), m[j])) {
        lo[j] = static_cast<T>(log1p_of(m[j], m_lo[j]));
      } else {
        hi[j] = lo[j] = T(0);
        flagged.push_back(j);
      }
    }
    const SavedColumns<T> saved(xo, yo, n, inner, std::move(flagged));
    k.write_shift_strided(xo, yo, n, inner, cols, hi.data(), lo.data(), stream);
    saved.redo(k, o * inner + j0, special,
                 [&](const Ctx<T>& c, const T* cx, T* cy) { return log_softmax_row(c, cx, cy, n); });
  });
}

template <class T>
std::vector<size_t> logsumexp_strided(const Kernels<T>& k, const T* x, T* out, size_t outer, size_t n,
                                      size_t inner) {
  return run_strided(k, outer, n, inner, [&](size_t o, size_t j0, size_t cols, std::vector<size_t>& special) {
    const T* xo = x + o * n * inner + j0;
    T* oo = out + o * inner + j0;
    std::vector<double> m(cols), e(cols);
    k.expsum_strided_fast(xo, n, inner, cols, m.data(), e.data());
    std::vector<size_t> uncertain;
    for (size_t j = 0; j < cols; ++j) {
      ExpSum s;
      s.m = m[j];
      s.e = e[j];
      s.err = k.err_strided_fast;
      double lse;
      if (fast_lse<T>(s, lse))
        oo[j] = static_cast<T>(lse);
      else
        uncertain.push_back(j);
    }
    if (uncertain.empty()) return;
    // The accurate pass over the whole panel (vectorized), then the
    // contiguous path for columns that are not ordinary.
    std::vector<T> max;
    std::vector<double> m_lo;
    strided_rel(k, xo, n, inner, cols, max, m, m_lo);
    const Ctx<T> c = column_ctx(k, n);
    std::vector<T> col(n);
    for (size_t j : uncertain) {
      if (rel_ok(static_cast<double>(max[j]), m[j])) {
        const double log_s = log1p_of(m[j], m_lo[j]);
        const double lse = static_cast<double>(max[j]) + log_s;
        // Near lse = 0 the contiguous path sums again in double-double.
        if (lse_cancel_ok<T>(lse, log_s)) {
          oo[j] = static_cast<T>(lse);
          continue;
        }
      }
      gather(xo + j, n, inner, col.data());
      double lse, sign;
      if (logsumexp_row(c, col.data(), static_cast<const T*>(nullptr), n, lse, sign))
        oo[j] = static_cast<T>(lse);
      else
        special.push_back(o * inner + j0 + j);
    }
  });
}

#define SSM_INSTANTIATE(T)                                                                                     \
  template std::vector<size_t> softmax_strided<T>(const Kernels<T>&, const T*, T*, size_t, size_t, size_t);    \
  template std::vector<size_t> log_softmax_strided<T>(const Kernels<T>&, const T*, T*, size_t, size_t,         \
                                                      size_t);                                                 \
  template std::vector<size_t> logsumexp_strided<T>(const Kernels<T>&, const T*, T*, size_t, size_t, size_t);

SSM_INSTANTIATE(float)
SSM_INSTANTIATE(double)
#undef SSM_INSTANTIATE

}  // namespace ssm
