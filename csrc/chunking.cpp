#include "chunking.h"

namespace ssm {

using detail::DoubleDouble;
using detail::kInf;

ExpSum combine_partials(const ExpSum* first, size_t count) {
  const ExpSum* const last = first + count;
  ExpSum out;
  double emax = -kInf;
  bool bad = false;
  for (const ExpSum* q = first; q != last; ++q) {
    const ExpSum& p = *q;
    out.max = std::max(out.max, p.max);
    out.special = out.special || p.special;
    out.err = std::max(out.err, p.err);
    out.err_rest = std::max(out.err_rest, p.err_rest);  // each chunk's max term is accurate, the row's among them
    out.err_lane_slack = q == first ? p.err_lane_slack : std::min(out.err_lane_slack, p.err_lane_slack);
    if (!std::isfinite(p.m) || !std::isfinite(p.e))
      bad = bad || p.m != 0.0;
    else if (p.m != 0.0 && p.e > emax)
      emax = p.e;
  }
  if (bad) {
    out.m = std::numeric_limits<double>::quiet_NaN();
    out.e = 0.0;
    return out;
  }
  if (emax == -kInf) {
    out.m = 0.0;
    out.e = 0.0;
    return out;
  }
  DoubleDouble sum;
  for (const ExpSum* q = first; q != last; ++q) {
    const ExpSum& p = *q;
    if (p.m == 0.0 || !std::isfinite(p.e)) continue;
    const double k = p.e - emax;
    if (k < -2200.0) continue;
    sum.add(std::ldexp(p.m, static_cast<int>(k)));
  }
  out.m = sum.value();
  out.e = emax;
  out.err += 0x1p-52;
  return out;
}

}  // namespace ssm
