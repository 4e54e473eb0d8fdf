// float32 log_softmax's first pass where it can be certified cheaply: the
// row max and sum exp(x) with every term computed in float32 by a table exp
// (T = 16 entries on AVX-512 and NEON, 8 on AVX2: one permute per half of
// the table pair), widened to float64 (exact) and summed in float64, and the
// row max's own term replaced by an accurate one. Half the lanes' work of
// expsum_lse (float64 terms) per element; the price is a term error of
// ~1.1-1.23 * 2^-24 instead of 2e-9, which certifies log_softmax only where
// lse - max is above ~2.0-2.3 (the driver then takes expsum_lse).
//
// Term: x = k/T ln2 + r (k = round(T x log2e), |r| <= ln2/(2T) + 2.2e-4:
// log2e in float32 for |x| <= 2^14), exp(x) = 2^floor(k/T) 2^(j/T) e^r,
// j = k mod T, 2^(j/T) = hi + lo (ExpTable32), e^r = 1 + q with q the Taylor
// polynomial r (1 + r (1/2 + r (1/6 + r/24))), term = hi + fma(hi, q, lo).
// Relative error of a term, u = 2^-24:
//   * the final add rounds once: <= u;
//   * fma(hi, q, lo) rounds once: <= u |q| / (1 - |q|);
//   * q: r's rounding (the reduction's first fma is exact, x and k/T ln2_hi
//     being multiples of a common 2^-28/-29 and |r| < 2^-5.4; the second fma
//     rounds once; ln2_hi + ln2_lo is ln2 to 2^-54, times |k/T| <= 2^14.6),
//     two Horner roundings that matter and the product's: <= 3.1 u |q|; the
//     truncated r^5/120 e^|r|: 4.6e-11 (T = 16), 1.5e-9 (T = 8);
//   * lo's rounding: 2^-47.
// With |q| <= 0.0225 (T = 16) and 0.0455 (T = 8): 1.098 u and 1.221 u,
// taken as 1.1 u and 1.23 u (kErrUnits). Powers of two are exact: terms
// below 2^-126 of their lane's reference flush, less than n 2^-125 of the
// max's term, which is >= 2^-0.6 of its lane's reference (AVX2: those below
// 2^-120 are raised to below 2^-119 instead, n 2^-118.4; expsum_lse32_impl).
//
// References: each lane's e, raised (as expsum_top does) before a block
// whose running max exceeds (e + 60) ln2, so terms stay below 2^61 and
// never overflow float32 or the float64 chains. The max's term: the same
// operations on the same input give the same bits (fp-contract is off), so
// m += (exp(max) 2^-f - term(max)) 2^(f - e), f = floor(k/T), with the
// accurate exp in float64 (exp_below). Relative error bound of m 2^e as
// sum exp(x): err = 1.25 (4 + k) 2^-53 (the max's term and its correction,
// k float64 additions per lane: chains, the chain and lane combination; 5
// with the scaled table, whose max's term is scaled once more) and
// err_rest = kErrUnits u for the other terms (kernel_api.h, ExpSum).
//
// expsum_lse32_fast: the same pass with one float per table entry
// (Table32Exp<V, false>): 21 instead of 23 vector operations per vector on
// AVX-512, err_rest 1.35u instead of 1.1u; on AVX2 the 8-entry table of
// its own scale (Tight), err_rest 1.29u instead of 1.23u.
//
// Range: x is clamped below at -2^14 (-inf: exp is 0 relative to any max
// the driver accepts); the driver certifies only rows whose max lies within
// kTable32Limit = 2^13 (beyond it the chunk reports NaN); a chunk whose max
// is below -(2^13 + 2000) reports an empty sum (its terms are below e^-2000
// of any accepted row max). NaN poisons the sum; +inf too (NaN or inf m).
#pragma once
#include "expsum_fast.h"  // checks SSM_ISA; gamma_bound

namespace ssm {
namespace SSM_ISA {
namespace {

// Do V's float32 lanes have the table lookup (and float64 lanes to sum in)?
template <class V, class = void>
struct HasTable32 : std::false_type {};
template <class V>
struct HasTable32<V, std::void_t<decltype(V::exp_table32_size), typename V::wide>> : std::true_type {};

// Does V::scale2_term take 2^floor(k) for a fractional k (AVX-512 scalef)?
// Else it rounds k to nearest (the exponent-field pow2), and the exponent
// floor(k/T) - e is passed as k/T - e - (T - 1)/(2T), which rounds to it.
template <class V, class = void>
struct Scale2Floors : std::false_type {};
template <class V>
struct Scale2Floors<V, std::void_t<decltype(V::scale2_floors)>> : std::true_type {};

// Does V build the table exp's power of two from t's bits (pow2_table32:
// AVX2; Table32Exp::term_biased)?
template <class V, class = void>
struct HasPow2Table32 : std::false_type {};
template <class V>
struct HasPow2Table32<V, std::void_t<decltype(V::pow2_table32_bits)>> : std::true_type {};

// expsum_lse32's unroll: U float32 vectors per block, and C pairs of
// float64 chains (lanes 0..W/2-1 and W/2..W-1) that vector u adds into
// (u mod C). A block's terms take ~40 cycles, the chains' adds U/C times
// the add latency: one pair keeps up, two leave slack. copy: offer
// expsum_lse32_copy (where the copy's store costs less than the read for
// ownership it moves into the exp arithmetic; see softmax_rows.h).
template <class V>
struct Lse32Tuning {
  static constexpr int unroll = 4, chains = 2;
  static constexpr bool copy = false;
  static constexpr bool fast = false;  // offer expsum_lse32_fast
};

// Pair: the table as hi + lo (ExpTable32; term hi + fma(hi, q, lo)), else
// one float per entry, scale * 2^(j/16) (ExpTable32Scaled; term
// fma(hi, q, hi), the sum divided by scale at the end): the entry's
// 0.268u and the fma's one rounding u instead of lo's 2^-47 and the last
// add's u, so with q's 3.1u|q| + 4.6e-11 (|q| <= 0.0225) 1.340u, taken as
// 1.35u, for one permute and one add fewer per vector (expsum_lse32_fast).
// With 8 entries (AVX2; logsumexp's direct rows) the one-float table is
// that table's even entries (kExpTable32Scaled8, the same 0.268u) and
// |q| <= 0.0455 (|r| <= ln2/16 + 2.2e-4): 0.268u + u + 3.1u|q| / (1 - |q|)
// (0.148u) + the truncated r^5/120 e^|r| (1.5e-9, 0.025u) = 1.441u, taken
// as 1.45u. Tight (expsum_lse32_fast on 8-entry sets): the table of its own
// scale (ExpTable32Scaled8Tight: 0.110u instead of 0.268u), so 1.283u,
// taken as 1.29u: 1.02 * 1.29u is inside the float64 write's 1.4u
// (softmax_rows.h, lse32_shift) for every lse - max, as 1.35u is with 16
// entries; with 1.45u rows of lse - max below ~0.1 (a top entry of
// probability above ~0.9) would take a second pass.
// Degree: q's Taylor degree. 3 (one fma fewer per vector; one-float table
// only, logsumexp's direct rows): the truncated r^4/24 + ... is at most
// r^4/24 e^|r| of e^r's e^-|r|, |r| <= 0.02188: 9.98e-9 = 0.168u; q's
// roundings (r's, the two Horner fmas', the product's; 1/6 rounded to
// float32 moves q by 2^-24 r^3/6) stay within 3.1u|q|; so the entry's
// 0.268u, the fma's u, 3.1u|q| / (1 - |q|) = 0.072u and 0.168u: 1.508u,
// taken as 1.52u.
template <class V, bool Pair = true, int Degree = 4, bool Tight = false>
struct Table32Exp {
  static constexpr int kSize = V::exp_table32_size;
  static constexpr bool kTight8 = Tight && !Pair && kSize == 8;
  static_assert(Pair || kSize == 16 || kSize == 8, "the one-float tables have 16 or 8 entries");
  static_assert(Degree == 4 || (Degree == 3 && !Pair && kSize == 16),
                "degree 3 only with the 16-entry one-float table (|r| <= ln2/32)");
  // fma(x, log2e, magic) rounds x log2 e to a multiple of 1/T and leaves
  // k mod T in the low mantissa bits (magic's ulp is 1/T; |x log2 e| < 2^18).
  static constexpr double kMagic = 1.5 * 8388608.0 / kSize;
  static constexpr double kBias = Scale2Floors<V>::value ? 0.0 : (kSize - 1) / (2.0 * kSize);
  static constexpr double kErrUnits =
      !Pair ? (Degree == 3 ? 1.52 : kSize >= 16 ? 1.35 : kTight8 ? 1.29 : 1.45) : kSize >= 16 ? 1.1 : 1.23;
  static constexpr double kScale = Pair ? 1.0 : kTight8 ? ExpTable32Scaled8Tight::scale : ExpTable32Scaled::scale;
  static constexpr double kLow = -16384.0;  // the clamp, -2^14
  typename V::table32 hi, lo;
  Table32Exp()
      : hi(V::load_table32(!Pair ? (kSize >= 16 ? ExpTable32Scaled::hi
                                    : kTight8   ? ExpTable32Scaled8Tight::hi
                                                : kExpTable32Scaled8.hi)
                                 : kSize >= 16 ? kExpTable32x16.hi : kExpTable32x8.hi)),
        lo(V::load_table32(kSize >= 16 ? kExpTable32x16.lo : kExpTable32x8.lo)) {}
  // exp(x) * 2^-floor(n) for clamped x; n receives k/T.
  Reg<V> term(Reg<V> x, Reg<V>& n) const {
    Reg<V> t;
    return term_biased(x, V::set1(kMagic), n, t);
  }
  // term with magic = kMagic + c (c an integer, |c| < 2^19 / T less the
  // range of x log2 e): t = fma(x, log2e, magic) = kMagic + c + k/T is
  // rounded as with kMagic (same binade, magic a multiple of 1/T), so n and
  // the result are term's bits, and t's low mantissa bits hold
  // 2^22 + T c + k (V::pow2_table32).
  Reg<V> term_biased(Reg<V> x, Reg<V> magic, Reg<V>& n, Reg<V>& t) const {
    t = V::fmadd(x, V::set1(ExpCoeffs<float>::log2e), magic);
    n = V::sub(t, magic);
    const Reg<V> r = V::reduce_ln2(x, n);
    Reg<V> p = Degree == 4 ? V::fmadd(V::set1(1.0 / 24.0), r, V::set1(1.0 / 6.0)) : V::set1(1.0 / 6.0);
    p = V::fmadd(p, r, V::set1(0.5));
    p = V::fmadd(p, r, V::set1(1.0));
    const Reg<V> q = V::mul(p, r);
    const Reg<V> h = V::lookup32(t, hi);
    if constexpr (Pair)
      return V::add(h, V::fmadd(h, q, V::lookup32(t, lo)));
    else
      return V::fmadd(h, q, h);
  }
};

// exp(x) 2^-f, f = floor(k/T) (an integer, |f| < 2^15), for float32 x,
// |x| <= 2^14, to ~3 * 2^-53: x - f ln2_hi31 is exact (both multiples of
// 2^-31 or finer, the difference below 1.1), the ln2_lo31 step rounds once
// (2^-53 of a number below 1.1), std::exp within 1 ulp.
inline double exp_below(double x, double f) {
  constexpr double ln2_hi31 = 0x1.62e42fecp-1, ln2_lo31 = 0x1.d1cf79abc9e3bp-32;
  return std::exp((x - f * ln2_hi31) - f * ln2_lo31);
}

// The pass (kernel_api.h: expsum_lse32); In is float. Copy: y also
// receives x, stored as each vector is loaded (expsum_lse32_copy). Pair:
// the table exp's table (Table32Exp; expsum_lse32_fast without). Own: y's
// lines are prefetched for writing, one per vector of the main loop (a
// load-port operation, no vector one), so that pass 2 finds them owned.
template <class V, bool Copy, class In, bool Pair = true, bool Own = false>
ExpSum expsum_lse32_impl(const In* x, In* y, size_t n) {
  using D = typename V::wide;
  using X = Table32Exp<V, Pair, 4, !Pair>;
  constexpr int U = Lse32Tuning<V>::unroll, C = Lse32Tuning<V>::chains;
  static_assert(U % C == 0, "vectors spread evenly over the chains");
  constexpr size_t W = V::width;
  constexpr size_t kBlock = U * W;
  const X texp;
  Reg<D> slo[C], shi[C];
  for (int u = 0; u < C; ++u) slo[u] = shi[u] = D::set1(0.0);
  Reg<V> e = V::set1(-32768.0), ebias = V::set1(-32768.0 + X::kBias), vmax = V::set1(-kInf);
  Reg<V> xlimit = V::set1(-kInf);
  // Where V builds the power of two from t's bits (pow2_table32: AVX2),
  // each lane's term takes magic kMagic + 127 - e, so that t holds the
  // biased exponent 127 + floor(k/T) - e and 2^(floor(k/T) - e) costs two
  // shifts instead of the sub of ebias and scale2_acc's four operations
  // (the same bits: term_biased). Its x is clamped at low = max((e - 120)
  // ln2, kLow) (kLow before the lane's first raise), which keeps that
  // exponent in [6, 188] (x <= xlimit = (e + 60) ln2): an entry below the
  // clamp, -inf too, adds a term below 2^-119 of 2^e instead of 0, at most
  // n 2^-118.4 of the max's term in all (n <= 2^24: 2^-94, inside the
  // driver's 2^-52 absolute in v: shift_of_sum). low stays below the
  // lane's running max (e <= round(vmax log2 e)), so vmax, and the row max
  // reported, are those of the kLow clamp. Every lane raises in the first
  // block (x >= kLow > its first xlimit) before any term is made, and a
  // block that raises is clamped again at the new low.
  constexpr bool kBits = HasPow2Table32<V>::value;
  [[maybe_unused]] Reg<V> magic = V::set1(X::kMagic), low = V::set1(X::kLow);
  auto raise = [&]() SSM_INLINE {
    const Reg<V> enew = V::max(V::round(V::mul(vmax, V::set1(ExpCoeffs<float>::log2e))), e);
    Reg<D> a, b;
    V::widen(V::sub(e, enew), a, b);
    for (int u = 0; u < C; ++u) {
      slo[u] = D::scale2_acc(slo[u], a);
      shi[u] = D::scale2_acc(shi[u], b);
    }
    e = enew;
    ebias = V::add(e, V::set1(X::kBias));
    xlimit = V::mul(V::add(e, V::set1(60.0)), V::set1(0.6931471805599453));
    if constexpr (kBits) {
      magic = V::sub(V::set1(X::kMagic + 127.0), e);
      low = V::max(V::mul(V::sub(e, V::set1(120.0)), V::set1(0.6931471805599453)), V::set1(X::kLow));
    }
  };
  // The term exp(x) 2^-e of a clamped x. scale2_acc: the power of two is
  // at most 2^62 here (no clamp above needed), and terms below 2^-126 of
  // the reference may flush.
  auto term = [&](Reg<V> xv) SSM_INLINE {
    Reg<V> nv;
    if constexpr (kBits) {
      Reg<V> t;
      const Reg<V> raw = texp.term_biased(xv, magic, nv, t);
      return V::mul(raw, V::pow2_table32(t));
    } else {
      const Reg<V> raw = texp.term(xv, nv);
      return V::scale2_acc(raw, V::sub(nv, ebias));
    }
  };
  auto add = [&](int u, Reg<V> t) SSM_INLINE {
    Reg<D> a, b;
    V::widen(t, a, b);
    slo[u] = D::add(slo[u], a);
    shi[u] = D::add(shi[u], b);
  };
  const size_t ahead = prefetch_distance(n * sizeof(In)) / sizeof(In);
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    if (ahead) prefetch_block<kBlock * sizeof(In)>(x + i + ahead);
    Reg<V> xv[U];
    SSM_UNROLL for (int u = 0; u < U; ++u) {
      const Reg<V> raw = V::load(x + i + u * W);
      if (Copy) V::store(y + i + u * W, raw);
      if (Own) SSM_PREFETCH_WRITE(y + i + u * W);
      xv[u] = V::max(low, raw);
    }
    SSM_UNROLL for (int u = 0; u < U; ++u) vmax = V::max(xv[u], vmax);  // NaN ignored
    if (V::any(V::gt(vmax, xlimit))) {
      raise();
      if constexpr (kBits) SSM_UNROLL for (int u = 0; u < U; ++u) xv[u] = V::max(low, xv[u]);
    }
    SSM_UNROLL for (int u = 0; u < U; ++u) add(u % C, term(xv[u]));
  }
  for (; i < n; i += W) {
    const size_t count = n - i < W ? n - i : W;
    const Reg<V> raw = load_n<V>(x + i, count, -kInf);
    if (Copy) store_n<V>(y + i, raw, count);
    Reg<V> xv = V::max(low, raw);
    vmax = V::max(xv, vmax);
    if (V::any(V::gt(vmax, xlimit))) {
      raise();
      if constexpr (kBits) xv = V::max(low, xv);
    }
    add(0, term(xv));
  }
  for (int u = 1; u < C; ++u) {
    slo[0] = D::add(slo[0], slo[u]);
    shi[0] = D::add(shi[0], shi[u]);
  }
  ExpSum out;
  out.max = V::hmax(vmax);
  out.e = 0.0;
  if (!(out.max > -kInf)) {  // empty, or every entry NaN
    out.m = n ? kNaN : 0.0;
    return out;
  }
  const double emax = V::hmax(e);
  Reg<D> ka, kb;
  V::widen(V::sub(e, V::set1(emax)), ka, kb);
  out.m = D::hsum(D::add(D::scale2_acc(slo[0], ka), D::scale2_acc(shi[0], kb)));
  if (!is_finite(out.m) || !(out.max <= kTable32Limit)) {
    out.m = kNaN;  // NaN, +inf or out of range: the driver takes another pass
    return out;
  }
  if (out.max < -(kTable32Limit + 2000.0)) {
    out.m = 0.0;  // negligible beside any row max the driver accepts
    return out;
  }
  // The max's term as the loop computed it, then the accurate one.
  Reg<V> nm;
  const Reg<V> tm = texp.term(V::set1(out.max), nm);
  double tt[W], nn[W];
  V::to_array(tm, tt);
  V::to_array(nm, nn);
  const double f = std::floor(nn[0]);
  const double k = f - emax;
  if (!(k >= -4.0 && k <= 100.0)) {
    out.m = kNaN;
    return out;
  }
  const double scale = pow2_int(static_cast<int>(k));
  // (With the scaled table, the accurate term times scale rounds once more.)
  const double d = (X::kScale * exp_below(out.max, f) - tt[0]) * scale;
  double m = out.m + d;
  double m_lo = (out.m - m) + d;
  if constexpr (!Pair) {
    // (m + m_lo) / scale as a pair: the fma's remainder is exact.
    const double q = m / X::kScale;
    m_lo = (std::fma(-q, X::kScale, m) + m_lo) / X::kScale;
    m = q;
  }
  out.m = m;
  out.m_lo = m_lo;
  out.e = emax;
  // A lane of one chain holds n / (W C) terms of the main loop, fewer than
  // U of the tail; then the chains, the halves, the lanes and d.
  const double adds = static_cast<double>(n / (W * C) + U + W + 8);
  out.err = 1.25 * ((Pair ? 4.0 : 5.0) * 0x1p-53 + gamma_bound(adds, 0x1p-53));
  out.err_rest = X::kErrUnits * 0x1p-24;
  return out;
}

template <class V, class In>
ExpSum expsum_lse32(const In* x, size_t n) {
  return expsum_lse32_impl<V, false, In>(x, nullptr, n);
}

// expsum_lse32 with the one-float table (kernel_api.h: expsum_lse32_fast);
// y (if not null) prefetched for writing.
template <class V, class In>
ExpSum expsum_lse32_fast(const In* x, In* y, size_t n) {
  if (y) return expsum_lse32_impl<V, false, In, false, true>(x, y, n);
  return expsum_lse32_impl<V, false, In, false>(x, nullptr, n);
}

// expsum_lse32 that also copies x to y (kernel_api.h: expsum_lse32_copy).
template <class V, class In>
ExpSum expsum_lse32_copy(const In* x, In* y, size_t n) {
  return expsum_lse32_impl<V, true, In>(x, y, n);
}

// expsum_lse32_fast that also copies x to y (kernel_api.h:
// expsum_lse32_copy_fast): the same arithmetic as expsum_lse32_fast, so
// the same bits.
template <class V, class In>
ExpSum expsum_lse32_copy_fast(const In* x, In* y, size_t n) {
  return expsum_lse32_impl<V, true, In, false>(x, y, n);
}

}  // namespace
}  // namespace SSM_ISA
}  // namespace ssm
