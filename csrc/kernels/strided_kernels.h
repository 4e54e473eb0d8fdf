// Strided (any-axis) kernels: the reduction runs over rows x[i * stride + j]
// and the vectors run across the contiguous columns j. Each lane is its own
// column (its own softmax row): the per-column state lives in small buffers
// (L1/L2) and the x rows stream through contiguously, B rows at a time, so a
// column sum of B terms is one plain tree folded into the column's Kahan sum.
#ifndef SSM_ISA
#error "define SSM_ISA to the instruction set's namespace (and include its vecmath_<isa>.h) first"
#endif
#pragma once

#include "expsum_fast.h"

namespace ssm {
namespace SSM_ISA {
namespace {

// Columns per panel: the per-column state (s, c, e) of a panel stays in L1/L2.
constexpr size_t kPanel = 4096;

// write_terms for the strided write pass: vector u has its own columns' e
// and inv (loaded from the per-column arrays at u * W).
template <class V, int U, class In>
inline void write_terms_cols(const In* x, const In* e, const In* inv, Reg<V> (&t)[U]) {
  using C = ExpCoeffs<typename V::scalar>;
  constexpr size_t W = V::width;
  Reg<V> r[U], n[U];
#define SSM_STAGE(stmt) \
  SSM_UNROLL for (int u = 0; u < U; ++u) { stmt; }
  SSM_STAGE(r[u] = V::max(V::load(x + u * W), V::set1(kClampLow)))
  SSM_STAGE(n[u] = V::round(V::mul(r[u], V::set1(C::log2e))))
  SSM_STAGE(r[u] = V::reduce_ln2(r[u], n[u]))
  SSM_STAGE(t[u] = V::fmadd(V::set1(C::c[C::degree]), r[u], V::set1(C::c[C::degree - 1])))
  for (int k = C::degree - 2; k >= 0; --k) SSM_STAGE(t[u] = V::fmadd(t[u], r[u], V::set1(C::c[k])))
  SSM_STAGE(t[u] = V::scale2(V::mul(t[u], V::load(inv + u * W)), V::sub(n[u], V::load(e + u * W))))
#undef SSM_STAGE
}

template <class V, int B, class In>
void expsum_strided(const In* x, size_t n, size_t stride, size_t cols, double* m_out, double* e_out) {
  using S = typename V::scalar;
  constexpr size_t W = V::width;
  alignas(64) S sb[kPanel], cb[kPanel], eb[kPanel];
  const Reg<V> limit = V::set1(FastLimits<S>::check);
  const bool prefetch = prefetch_distance(n * cols * sizeof(In)) != 0;
  for (size_t p0 = 0; p0 < cols; p0 += kPanel) {
    const size_t pc = cols - p0 < kPanel ? cols - p0 : kPanel;
    const In* xp = x + p0;
    Reg<V> nv;
    for (size_t j = 0; j < pc; j += W) {
      const size_t cnt = pc - j < W ? pc - j : W;
      fast_term<V>(load_n<V>(xp + j, cnt, -kInf), V::set1(0.0), nv);
      V::store(eb + j, V::round(V::max(nv, V::set1(kEmptyExp))));
      V::store(sb + j, V::set1(0.0));
      V::store(cb + j, V::set1(0.0));
    }
    auto column_block = [&](size_t i, size_t rows) SSM_INLINE {
      for (size_t j = 0; j < pc; j += W) {
        const size_t cnt = pc - j < W ? pc - j : W;
        LaneSum<V> acc;
        acc.e = V::load(eb + j);
        Reg<V> q;
        if (rows == size_t(B) && cnt == W) {
          // The next block's rows, one block (B rows of the panel) ahead.
          if (prefetch)
            for (int b = 0; b < B; ++b) SSM_PREFETCH(reinterpret_cast<const char*>(xp + (i + B + b) * stride + j));
          Reg<V> t[B];
          fast_terms<V, B>(xp + i * stride + j, acc.e, t, stride);
          q = tree_sum<V, 0, B>(t);
        } else {
          q = fast_term<V>(load_n<V>(xp + i * stride + j, cnt, -kInf), acc.e, nv);
          for (size_t b = 1; b < rows; ++b)
            q = V::add(q, fast_term<V>(load_n<V>(xp + (i + b) * stride + j, cnt, -kInf), acc.e, nv));
        }
        acc.s = V::load(sb + j);
        acc.c = V::load(cb + j);
        if (V::any(V::not_le(q, limit))) {
          // Raise the references of this column vector to the block's max.
          Reg<V> nmax = V::set1(-kInf);
          for (size_t b = 0; b < rows; ++b) {
            fast_term<V>(load_n<V>(xp + (i + b) * stride + j, cnt, -kInf), acc.e, nv);
            nmax = V::max(nv, nmax);
          }
          acc.raise(V::round(V::max(nmax, acc.e)));
          V::store(eb + j, acc.e);
          q = V::set1(0.0);
          for (size_t b = 0; b < rows; ++b)
            q = V::add(q, fast_term<V>(load_n<V>(xp + (i + b) * stride + j, cnt, -kInf), acc.e, nv));
        }
        acc.fold(q);
        V::store(sb + j, acc.s);
        V::store(cb + j, acc.c);
      }
    };
    size_t i = 0;
    for (; i + B <= n; i += B) column_block(i, B);
    for (; i < n; ++i) column_block(i, 1);
    for (size_t j = 0; j < pc; j += W) {
      double s[W], c[W], e[W];
      V::to_array(V::load(sb + j), s);
      V::to_array(V::load(cb + j), c);
      V::to_array(V::load(eb + j), e);
      for (size_t l = 0; l < W && j + l < pc; ++l) {
        m_out[p0 + j + l] = s[l] - c[l];
        e_out[p0 + j + l] = e[l];
      }
    }
  }
}

template <class V, int B, class In>
void expsum_strided_entry(const In* x, size_t n, size_t stride, size_t cols, double* m, double* e) {
  expsum_strided<V, B>(x, n, stride, cols, m, e);
}

// Per-column online max-relative sums in float64 lanes (V = VW): one read
// of x gives max[j] and m[j] + m_lo[j] = sum exp(x[., j] - max[j]), the max's
// own term exactly 1, so S - 1 keeps full relative accuracy (log_softmax of a
// dominant entry, log-sum-exp near 0).
//  * The sum is A = 1 + S = s + c (s rounded, c the sum of the exact
//    rounding errors, Neumaier's variant of compensation). Starting at 1
//    instead of 0 keeps |s| >= 1 >= every term, so each step's error
//    (s - t) + term is exact without a branch (Fast2Sum). Kahan's form, which
//    feeds c back into the next term, would lose c whenever the next term is
//    the max's 1 (1 - c rounds to 1): 1e-9 relative on S - 1 in a test of
//    40 terms; starting at 0, the 1 would arrive at |s| < 1 and lose the low
//    bits of the smaller terms (1e-6).
//  * When a block of B rows raises a column's max, A - 1 is rescaled by
//    f = exp(old - new) (exactly 0 from -inf) and 1 + (s - 1) f is formed by
//    TwoSum, its error joining c. s - 1 is exact (s >= 1), and the product's
//    rounding is relative to the new S - 1, which contains it.
//  * A NaN x poisons its column's sum; inf and all -inf columns show in max.
template <class V, int B, class In>
void expsum_strided_online(const In* x, size_t n, size_t stride, size_t cols, In* max_out, double* m_out,
                           double* mlo_out) {
  static_assert(std::is_same<typename V::scalar, double>::value, "float64 lanes");
  constexpr size_t W = V::width;
  alignas(64) double mb[kPanel], sb[kPanel], cb[kPanel];
  const bool prefetch = prefetch_distance(n * cols * sizeof(In)) != 0;
  const Reg<V> one = V::set1(1.0);
  for (size_t p0 = 0; p0 < cols; p0 += kPanel) {
    const size_t pc = cols - p0 < kPanel ? cols - p0 : kPanel;
    const In* xp = x + p0;
    for (size_t j = 0; j < pc; j += W) {
      V::store(mb + j, V::set1(-kInf));
      V::store(sb + j, one);
      V::store(cb + j, V::set1(0.0));
    }
    auto column_block = [&](size_t i, size_t rows) SSM_INLINE {
      for (size_t j = 0; j < pc; j += W) {
        const size_t cnt = pc - j < W ? pc - j : W;
        if (prefetch && rows == size_t(B) && cnt == W)
          for (int b = 0; b < B; ++b) SSM_PREFETCH(reinterpret_cast<const char*>(xp + (i + B + b) * stride + j));
        Reg<V> xv[B];
        Reg<V> mx = V::load(mb + j), s = V::load(sb + j), c = V::load(cb + j);
        Reg<V> nm = mx;
        for (size_t b = 0; b < rows; ++b) {
          xv[b] = load_n<V>(xp + (i + b) * stride + j, cnt, -kInf);
          nm = V::max(xv[b], nm);  // a NaN x leaves the max alone
        }
        const typename V::mask moved = V::gt(nm, mx);
        if (V::any(moved)) {
          Reg<V> fm, fk;
          exp_split_diff<V>(mx, nm, fm, fk);
          const Reg<V> f = V::scale2_acc(fm, fk);
          const Reg<V> v = V::mul(V::sub(s, one), f);
          const Reg<V> t = V::add(one, v);
          const Reg<V> bb = V::sub(t, one);
          const Reg<V> err = V::add(V::sub(one, V::sub(t, bb)), V::sub(v, bb));
          s = V::select(moved, t, s);
          c = V::select(moved, V::add(V::mul(c, f), err), c);
          mx = nm;
          V::store(mb + j, mx);
        }
        Reg<V> term[B];
        for (size_t b = 0; b < rows; ++b) {
          Reg<V> m, k;
          exp_split_diff<V>(xv[b], mx, m, k);
          term[b] = V::select(V::unord(xv[b]), xv[b], V::scale2_acc(m, k));
        }
        for (size_t b = 0; b < rows; ++b) {
          const Reg<V> t = V::add(s, term[b]);
          c = V::add(c, V::add(V::sub(s, t), term[b]));
          s = t;
        }
        V::store(sb + j, s);
        V::store(cb + j, c);
      }
    };
    size_t i = 0;
    for (; i + B <= n; i += B) column_block(i, B);
    for (; i < n; ++i) column_block(i, 1);
    for (size_t j = 0; j < pc; ++j) {
      max_out[p0 + j] = static_cast<In>(mb[j]);
      m_out[p0 + j] = sb[j] - 1.0;  // exact: s >= 1
      mlo_out[p0 + j] = cb[j];
    }
  }
}

template <class V, bool Stream, class In>
void write_exp_strided_impl(const In* x, In* y, size_t n, size_t stride, size_t cols, const In* e, const In* inv) {
  const size_t ahead = prefetch_distance(n * cols * sizeof(In)) / sizeof(In);
  for (size_t i = 0; i < n; ++i) {
    const In* xr = x + i * stride;
    // The head of a streamed row shifts the vector grid off the columns'
    // e/inv grid only in memory, not in value: column j always uses e[j].
    store_loop_blocks<V, kUnroll, Stream, false>(
        y + i * stride, cols,
        [&](size_t j, size_t count) SSM_INLINE {
          Reg<V> m, k;
          exp_split<V>(V::max(load_n<V>(xr + j, count, -kInf), V::set1(kClampLow)), m, k);
          return V::scale2(V::mul(m, load_n<V>(inv + j, count, 0.0)), V::sub(k, load_n<V>(e + j, count, 0.0)));
        },
        [&](size_t j, Reg<V>(&v)[kUnroll]) SSM_INLINE {
          if (ahead) prefetch_block<kUnroll * V::width * sizeof(In)>(xr + j + ahead);
          write_terms_cols<V, kUnroll>(xr + j, e + j, inv + j, v);
        });
  }
  if (Stream) V::fence();
}

template <class V, class In>
void write_exp_strided(const In* x, In* y, size_t n, size_t stride, size_t cols, const In* e, const In* inv,
                       bool stream) {
  if (stream)
    write_exp_strided_impl<V, true>(x, y, n, stride, cols, e, inv);
  else
    write_exp_strided_impl<V, false>(x, y, n, stride, cols, e, inv);
}

template <class V, bool Stream, class In>
void write_shift_strided_impl(const In* x, In* y, size_t n, size_t stride, size_t cols, const In* hi,
                              const In* lo) {
  constexpr size_t W = V::width;
  const size_t ahead = prefetch_distance(n * cols * sizeof(In)) / sizeof(In);
  for (size_t i = 0; i < n; ++i) {
    const In* xr = x + i * stride;
    auto value = [&](size_t j, size_t count) SSM_INLINE {
      return V::sub(V::sub(load_n<V>(xr + j, count, 0.0), load_n<V>(hi + j, count, 0.0)),
                    load_n<V>(lo + j, count, 0.0));
    };
    store_loop_blocks<V, kUnroll, Stream, false>(y + i * stride, cols, value, [&](size_t j, Reg<V>(&v)[kUnroll]) SSM_INLINE {
      if (ahead) prefetch_block<kUnroll * W * sizeof(In)>(xr + j + ahead);
      for (int u = 0; u < kUnroll; ++u) v[u] = value(j + u * W, W);
    });
  }
  if (Stream) V::fence();
}

template <class V, class In>
void write_shift_strided(const In* x, In* y, size_t n, size_t stride, size_t cols, const In* hi, const In* lo,
                         bool stream) {
  if (stream)
    write_shift_strided_impl<V, true>(x, y, n, stride, cols, hi, lo);
  else
    write_shift_strided_impl<V, false>(x, y, n, stride, cols, hi, lo);
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
