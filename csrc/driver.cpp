#include "driver.h"

#include <cmath>
#include <stdexcept>

namespace ssm {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool in_fast_range(double max) { return max <= kFastLimit && max >= -kFastLimit; }

// A row the kernels compute: no NaN, and a finite max.
bool ordinary(const ExpSum& s) { return !s.special && std::isfinite(s.max); }

// ref + e*ln2 + log(m) as an unevaluated double-double (hi + lo): enough for
// float64 log_softmax, where x - lse must not lose the low bits of lse.
void lse_parts(double ref, double e, double m, double& hi, double& lo) {
  constexpr double ln2_hi31 = 0x1.62e42fecp-1;  // e * ln2_hi31 is exact for |e| < 2^22
  constexpr double ln2_lo31 = 0x1.d1cf79abc9e3bp-32;
  const double terms[4] = {ref, e * ln2_hi31, std::log(m), e * ln2_lo31};
  hi = 0.0;
  lo = 0.0;
  for (double a : terms) {
    const double s = hi + a;
    const double bb = s - hi;
    lo += (hi - (s - bb)) + (a - bb);
    hi = s;
  }
  const double s = hi + lo;
  lo = lo - (s - hi);
  hi = s;
}

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

template <class T>
bool log_softmax_row(const Kernels<T>& k, const T* x, T* y, size_t n) {
  ExpSum s = k.expsum_wide(x, nullptr, n, 0.0, false);
  if (!ordinary(s)) return false;
  double ref = 0.0;
  if (!in_fast_range(s.max)) {
    ref = s.max;
    s = k.expsum_wide(x, nullptr, n, ref, true);
  }
  double hi, lo;
  lse_parts(ref, s.e, s.m, hi, lo);
  // Re-split at the data's precision: the kernel computes (x - hi) - lo in T,
  // so hi must be a T and lo must carry everything below it.
  const double hi_t = static_cast<T>(hi);
  k.write_shift(x, y, n, hi_t, (hi - hi_t) + lo);
  return true;
}

template <class T>
bool logsumexp_row(const Kernels<T>& k, const T* x, const T* b, size_t n, double& lse, double& sign) {
  ExpSum s = k.expsum_wide(x, b, n, 0.0, false);
  if (!ordinary(s)) return false;
  double ref = 0.0;
  if (!in_fast_range(s.max)) {
    ref = s.max;
    s = k.expsum_wide(x, b, n, ref, true);
  }
  if (!(s.m != 0.0)) return false;
  sign = s.m < 0 ? -1.0 : 1.0;
  double hi, lo;
  lse_parts(ref, s.e, std::fabs(s.m), hi, lo);
  lse = hi + lo;
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
