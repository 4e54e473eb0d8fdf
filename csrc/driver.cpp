#include "driver.h"

#include <cmath>
#include <stdexcept>

namespace ssm {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool in_fast_range(double max) { return max <= kFastLimit && max >= -kFastLimit; }

// A row the kernels compute: no NaN, and a finite max.
bool ordinary(const ExpSum& s) { return !s.special && std::isfinite(s.max); }

}  // namespace

Algorithm parse_algorithm(const std::string& name) {
  if (name == "two-pass") return Algorithm::TwoPass;
  if (name == "three-pass-recompute") return Algorithm::ThreePassRecompute;
  if (name == "three-pass-reload") return Algorithm::ThreePassReload;
  if (name == "online") return Algorithm::Online;
  if (name == "auto") return Algorithm::Auto;
  throw std::invalid_argument("algorithm must be one of 'auto', 'two-pass', 'three-pass-recompute', "
                              "'three-pass-reload', 'online'; got '" + name + "'");
}

template <class T>
bool softmax_row(const Kernels<T>& k, const T* x, T* y, size_t n, Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::Auto:
    case Algorithm::TwoPass: {
      ExpSum s = k.expsum(x, n, 0.0, false);
      if (!ordinary(s)) return false;
      if (in_fast_range(s.max)) {
        k.write_exp(x, y, n, 0.0, false, s.e, 1.0 / s.m);
      } else {
        // Outside the fast reduction's range: redo the sum relative to the max.
        const double ref = s.max;
        s = k.expsum(x, n, ref, true);
        k.write_exp(x, y, n, ref, true, s.e, 1.0 / s.m);
      }
      return true;
    }
    case Algorithm::ThreePassRecompute: {
      const ExpSum mx = k.max_scan(x, n);
      if (!ordinary(mx)) return false;
      const ExpSum s = k.expsum(x, n, mx.max, true);
      k.write_exp(x, y, n, mx.max, true, s.e, 1.0 / s.m);
      return true;
    }
    case Algorithm::ThreePassReload: {
      const ExpSum mx = k.max_scan(x, n);
      if (!ordinary(mx)) return false;
      const ExpSum s = k.expsum_store(x, y, n, mx.max);
      k.scale(y, n, 1.0 / s.m);
      return true;
    }
    case Algorithm::Online: {
      const ExpSum s = k.expsum_online(x, n);
      if (!ordinary(s)) return false;
      k.write_exp(x, y, n, s.max, true, 0.0, 1.0 / s.m);
      return true;
    }
  }
  return false;
}

// log of a max-relative sum S = sum b*exp(x - max) held as m + m_lo: the
// max's own term is exactly 1, so log1p(S - 1) keeps full relative accuracy
// when the other terms are tiny (log_softmax of a dominant entry, lse ~ max).
double log_of_sum(const ExpSum& s) {
  const double a = std::fabs(s.m), a_lo = s.m < 0 ? -s.m_lo : s.m_lo;
  return std::log1p((a - 1.0) + a_lo);
}

template <class T>
bool log_softmax_row(const Kernels<T>& k, const T* x, T* y, size_t n) {
  const ExpSum s = k.expsum_online_wide(x, nullptr, n);
  if (!ordinary(s)) return false;
  // y = (x - max) - log S: x - max is exact near the max (Sterbenz) and the
  // result is never positive.
  k.write_shift(x, y, n, s.max, log_of_sum(s));
  return true;
}

template <class T>
bool logsumexp_row(const Kernels<T>& k, const T* x, const T* b, size_t n, double& lse, double& sign) {
  const ExpSum s = k.expsum_online_wide(x, b, n);
  if (!ordinary(s) || !(s.m != 0.0)) return false;
  sign = s.m < 0 ? -1.0 : 1.0;
  lse = s.max + log_of_sum(s);
  return true;
}

template bool softmax_row<float>(const Kernels<float>&, const float*, float*, size_t, Algorithm);
template bool softmax_row<double>(const Kernels<double>&, const double*, double*, size_t, Algorithm);
template bool log_softmax_row<float>(const Kernels<float>&, const float*, float*, size_t);
template bool log_softmax_row<double>(const Kernels<double>&, const double*, double*, size_t);
template bool logsumexp_row<float>(const Kernels<float>&, const float*, const float*, size_t, double&, double&);
template bool logsumexp_row<double>(const Kernels<double>&, const double*, const double*, size_t, double&,
                                    double&);

}  // namespace ssm
