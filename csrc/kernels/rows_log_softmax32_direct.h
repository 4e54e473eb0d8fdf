// float32 log_softmax of short rows one row at a time, whole vectors along
// the row (softmax's layout, rows_direct.h): included by rows_generic.h (its
// anonymous namespace, lane types, over_max_term, log1p_small, and
// column_sums of rows_log_softmax_direct.h) on lane types with the float32
// table exp (expsum_table32.h: AVX-512, AVX2, NEON). No transposes in or
// out, no per-row call, context or chunking. Per G rows (G = the float64
// lane count): the rows' max passes, then e = round(max log2 e) in one
// vector; per row the other entries' table-exp terms exp(x) 2^-e, each
// widened to float64 and summed there, and the count k of the max's own
// entries; per G rows: the rows' lane sums
// added across (column_sums), rest = their sum over the max's own term
// (over_max_term), v = log1p((k - 1) + rest) and its certificate in the G
// lanes; then each row is written from x again while the next G rows are
// summed (the G rows, at most 8 KiB, are still in L1).
//
// Accuracy (the row kernels' float32 contract, log_softmax_row with
// expsum_lse32): every other term is within eps = Table32Exp::kErrUnits
// 2^-24 (1.35 with AVX-512's and NEON's one-float table, 1.29 with AVX2's
// one-float table of its own scale) relative, the float64 sums, the
// product by the table scale's rounded reciprocal and the division add
// below 2^-44, the max's own terms count exactly (k), so z = S - 1 is
// within eps z' + f
// (z' <= z: the others' share; f = n 2^-124 where terms below 2^-126 of
// 2^e flush, n 2^-118 on AVX2, whose terms below the clamp (e - 120) ln2
// add below 2^-119 of 2^e instead: Lsm32RowAcc) and
// v = log1p(z) moves by dv <= eps z / (1 + z) + f + 2^-50 v, with
// z / (1 + z) <= v: the relative error of a dominant entry's -v stays near
// eps. The write takes the row kernels' budgets (softmax_rows.h,
// shift_certified, lse32_shift): the float32 write (x - max) - float(v)
// rounds x - max and the result, 0.5 ulp of y each, which leaves ulp(y)
// for v's own rounding and dv; as |y| >= v - dv, it is certified where
// |float(v) - v| + dv <= ulp32(v - dv) (round_off32, ulp32_below), the
// rounding taken as it fell rather than as its bound 2^-25 v: every v in
// [2, 4) and most in [0.5, 2) pass (standard normal rows, the share of
// rows the float32 write takes, the bound 2^-25 (v - dv) / this one, with
// 1.35 / 1.23: n = 48 0.16 / 0.96, 0.47 / 0.99; n = 64 0.35 / 0.98, 0.67 /
// 0.99; n = 128 0.80 / 1.00, 0.93 / 1.00; the group kernel below keeps
// the bound). Else the write in float64 lanes with one rounding where dv <=
// 1.4 * 2^-24 (v - dv), which every row passes but those whose v is near
// f 2^24 / 1.4 or below (n 2^-94.5 on AVX2, 2^-100.5 elsewhere: the
// others at most ~e^-60 of the max, or all -inf but the max: their flushed
// terms may be all of v). Those, NaN, +-inf, all
// -inf rows and maxima beyond kTable32Limit are left unwritten and flagged
// for the per-row path.

// How a row is written: not here (flagged), (x - max) - v in float32, or
// in float64 lanes with one rounding.
enum class Lsm32Write : unsigned char { Flag, Narrow, Wide };

// The others' terms exp(x) 2^-e (the table's scale included) widened and
// summed in two float64 halves (lanes 0..W/2-1 and W/2..W-1), and the count
// of the max's own entries; m the lanes' max, bias = e + X::kBias. e rounds
// to nearest, so floor(k) - e <= 0 (the term at 2^-e never exceeds 2^0.6);
// below the table's clamp (-inf too) a term flushes to 0; a NaN x reaches
// the sums.
// The count goes by the others (one masked add per vector on AVX-512,
// where the term's select is its scalef's zero mask): the max's own
// entries are the lane's vectors less them.
template <class VN, class X>
struct Lsm32Acc {
  using VW = typename VN::wide;
  Reg<VW> s0 = VW::set1(0.0), s1 = VW::set1(0.0);
  Reg<VN> others = VN::set1(0.0);
  SSM_INLINE void add(const X& texp, Reg<VN> xv, Reg<VN> m, Reg<VN> bias) {
    const auto other = VN::not_le(m, xv);  // x < max, or NaN
    Reg<VN> k;
    const Reg<VN> raw = texp.term(VN::max(VN::set1(X::kLow), xv), k);  // sets k first
    const Reg<VN> t = VN::scale2_acc_where(other, raw, VN::sub(k, bias));
    others = VN::add_where(other, others, VN::set1(1.0));
    Reg<VW> lo, hi;
    VN::widen(t, lo, hi);
    s0 = VW::add(s0, lo);
    s1 = VW::add(s1, hi);
  }
  // The count of the max's own entries per lane after `vectors` adds.
  Reg<VN> count(size_t vectors) const { return VN::sub(VN::set1(static_cast<double>(vectors)), others); }
};

// Does VN count mask lanes in int32 lanes (count_add, count_value)?
template <class V, class = void>
struct HasMaskCountInt : std::false_type {};
template <class V>
struct HasMaskCountInt<V, std::void_t<decltype(V::mask_count_int)>> : std::true_type {};

// Lsm32Acc for one row of the direct rows, its max mx and e given. Where
// VN builds the table exp's power of two from t's bits (pow2_table32: AVX2),
// the term takes magic kMagic + 127 - e, so t holds the biased exponent 127
// + floor(k/T) - e, and 2^(floor(k/T) - e) costs two shifts instead of
// scale2_acc's four operations (the sub of bias, the clamp, the add and the
// shift), as logsumexp's direct rows (table_lane_sums); x is clamped at
// (e - 120) ln2 instead of kLow to keep that exponent in [6, 127] (e rounds
// to nearest: floor(k/T) - e <= 0 for x <= mx): an entry below the clamp
// (-inf too, and the tail's padding) adds a term below 2^-119 of 2^e
// instead of flushing (the caller's flushed bound: n 2^-118 of the max's
// term, >= 2^-0.5 2^e); a NaN stays NaN (max returns its second operand).
// Where VN counts in int32 lanes (count_add: AVX2) the others' count is
// one integer subtraction per vector instead of an and and an add. Else
// (AVX-512, NEON) the same operations as Lsm32Acc, the same bits.
template <class VN, class X>
struct Lsm32RowAcc {
  using VW = typename VN::wide;
  static constexpr bool kBits = HasPow2Table32<VN>::value, kIntCount = HasMaskCountInt<VN>::value;
  Reg<VW> s0 = VW::set1(0.0), s1 = VW::set1(0.0);
  Reg<VN> others = VN::set1(0.0);
  const Reg<VN> m, low, magic;
  Lsm32RowAcc(double mx, double e)
      : m(VN::set1(mx)),
        low(VN::set1(kBits ? static_cast<float>((e - 120.0) * 0x1.62e42fefa39efp-1) : static_cast<float>(X::kLow))),
        magic(VN::set1(kBits ? static_cast<float>(X::kMagic + 127.0 - e) : e + X::kBias)) {}
  SSM_INLINE void add(const X& texp, Reg<VN> xv) {
    const auto other = VN::not_le(m, xv);  // x < max, or NaN
    Reg<VN> t;
    if constexpr (kBits) {
      Reg<VN> k, bits;
      const Reg<VN> raw = texp.term_biased(VN::max(low, xv), magic, k, bits);
      t = VN::keep_where(other, VN::mul(raw, VN::pow2_table32(bits)));
    } else {
      Reg<VN> k;
      const Reg<VN> raw = texp.term(VN::max(low, xv), k);  // sets k first
      t = VN::scale2_acc_where(other, raw, VN::sub(k, magic));  // magic holds e + kBias here
    }
    if constexpr (kIntCount)
      others = VN::count_add(other, others);
    else
      others = VN::add_where(other, others, VN::set1(1.0));
    Reg<VW> lo, hi;
    VN::widen(t, lo, hi);
    s0 = VW::add(s0, lo);
    s1 = VW::add(s1, hi);
  }
  // The count of the max's own entries per lane after `vectors` adds.
  Reg<VN> count(size_t vectors) const {
    Reg<VN> o;
    if constexpr (kIntCount)
      o = VN::count_value(others);
    else
      o = others;
    return VN::sub(VN::set1(static_cast<double>(vectors)), o);
  }
};

// One row's sums, its max mx within kTable32Limit and e = round(mx log2 e)
// given: at part / cnt the lane sums (float64 lanes) of the others' terms
// exp(x) 2^-e (the table's scale included; NaN reaches them) and of the
// count of the max's own entries.
template <class VN, class X>
inline void lsm32_row_sums(const float* xr, size_t n, const X& texp, double mx, double e, double* part,
                           double* cnt) {
  using VW = typename VN::wide;
  constexpr size_t W = VN::width;
  const size_t full = n - n % W, rem = n % W;
  Lsm32RowAcc<VN, X> acc(mx, e);
  for (size_t j = 0; j < full; j += W) acc.add(texp, VN::load(xr + j));
  if (rem) acc.add(texp, VN::load_tail(xr + full, rem, -kInf));
  VW::store(part, VW::add(acc.s0, acc.s1));
  Reg<VW> clo, chi;
  VN::widen(acc.count(full / W + (rem != 0)), clo, chi);
  VW::store(cnt, VW::add(clo, chi));
}

// y = (x - hi) - lo of one row: in float32 (Narrow: hi, lo as floats) or in
// float64 lanes, rounded once at the store. Narrow takes it as (-lo) - (hi
// - x): rounding to nearest is odd (RN(-a) = -RN(a)), so hi - x and then
// (-lo) - (hi - x) are -(x - hi) and (x - hi) - lo to the bit, but for a
// zero's sign where x = hi and lo = 0 (flagged rows only: v = 0 never
// passes lsm32_log_s's certificate, dv >= flushed > 0), and x takes
// the first subtraction's second operand: a memory operand on x86, two
// instructions and the store per vector instead of three (the load apart).
template <class VN>
inline void lsm32_write_row(const float* xr, float* yr, size_t n, double hi, double lo, Lsm32Write how) {
  if (how == Lsm32Write::Narrow) {
    constexpr size_t W = VN::width;
    const size_t full = n - n % W, rem = n % W;
    const Reg<VN> vhi = VN::set1(static_cast<float>(hi)), vnlo = VN::set1(-static_cast<float>(lo));
    for (size_t j = 0; j < full; j += W) VN::store(yr + j, VN::sub(vnlo, VN::sub(vhi, VN::load(xr + j))));
    if (rem) VN::store_tail(yr + full, VN::sub(vnlo, VN::sub(vhi, VN::load_tail(xr + full, rem, 0.0))), rem);
    return;
  }
  using VW = typename VN::wide;
  constexpr size_t WW = VW::width;
  const size_t full = n - n % WW, rem = n % WW;
  const Reg<VW> vhi = VW::set1(hi), vlo = VW::set1(lo);
  for (size_t j = 0; j < full; j += WW) VW::store(yr + j, VW::sub(VW::sub(VW::load(xr + j), vhi), vlo));
  if (rem) VW::store_tail(yr + full, VW::sub(VW::sub(VW::load_tail(xr + full, rem, 0.0), vhi), vlo), rem);
}

// |float(v) - v|: what the float32 write's rounding of v takes (v as a
// float, the narrowing store's round to nearest; the difference is exact
// within 2^-53 of itself).
template <class VW>
inline SSM_INLINE Reg<VW> round_off32(Reg<VW> v) {
  const Reg<VW> d = VW::sub(narrow32<VW>(v), v);
  return VW::max(d, VW::sub(VW::set1(0.0), d));
}

// A power of two u <= ulp32(a), the float32 spacing at a > 0, and u =
// ulp32(a) but for a within about 2^-22 above a power of two (u is then
// half): b = float(a (1 - 2^-22)) lies in a's binade or the one below
// (a 2^-22 is at least two of a's ulps), and b + 0.75 b 2^-23 (0.75 to 1.5
// ulp32(b) above b, exact in float64) rounds to b + ulp32(b). a <= 0 or a
// NaN give u <= 0 or NaN (nothing certified); a float32 subnormal b gives
// 0 or its spacing.
template <class VW>
inline SSM_INLINE Reg<VW> ulp32_below(Reg<VW> a) {
  return ulp32_above<VW>(narrow32<VW>(VW::mul(a, VW::set1(1.0 - 0x1p-22))));
}

// The float64 lanes' chain of a set of rows: sum2e, the others' terms at
// 2^-e (the table's scale removed), mx the max (NaN: a lane for the per-row
// path), e, k the count of the max's own entries -> v = log S =
// log1p((k - 1) + sum2e / the max's own term) and how each row is written
// (0 flagged, 1 Narrow, 2 Wide: the header's budgets, eps the terms'
// relative error with the sums', flushed the flushed terms' bound): the
// float32 write where v's rounding as it fell and dv fit within ulp32(v -
// dv). The group kernel writes every row it does not flag in float64
// lanes (how 1 or 2 alike): with Narrow false the float32 write's test
// (round_off32 and ulp32_below, three float32 roundings) is skipped and how
// is 0 or 1, the same v and the same rows flagged.
template <class VW, bool Narrow = true>
inline SSM_INLINE Reg<VW> lsm32_log_s(Reg<VW> sum2e, Reg<VW> vmx, Reg<VW> e, Reg<VW> k, double eps, double flushed,
                           Reg<VW>& how) {
  const auto special = VW::notfinite(vmx);
  const Reg<VW> rest = over_max_term<VW>(sum2e, VW::select(special, VW::set1(0.0), vmx), e);
  const Reg<VW> z0 = VW::add(VW::sub(k, VW::set1(1.0)), rest);
  const auto bad = VW::mask_or(special, VW::notfinite(z0));  // a NaN in the row
  const Reg<VW> z = VW::select(bad, VW::set1(0.0), z0);
  const Reg<VW> v = log1p_small<VW>(z);
  const Reg<VW> dv = VW::fmadd(VW::set1(eps), div_lanes(z, VW::add(VW::set1(1.0), z)),
                               VW::fmadd(v, VW::set1(0x1p-50), VW::set1(flushed)));
  const Reg<VW> low = VW::sub(v, dv);
  const auto wide = VW::not_le(dv, VW::mul(low, VW::set1(1.4 * 0x1p-24)));  // true: not wide either
  if constexpr (Narrow) {
    const auto narrow = VW::not_le(VW::add(round_off32<VW>(v), dv), ulp32_below<VW>(low));  // true: not narrow
    how = VW::select(VW::mask_or(bad, wide), VW::set1(0.0), VW::select(narrow, VW::set1(2.0), VW::set1(1.0)));
  } else {
    how = VW::select(VW::mask_or(bad, wide), VW::set1(0.0), VW::set1(1.0));
  }
  return v;
}

// The terms: the 16-entry one-float table (AVX-512, NEON; 1.35), on AVX2's
// 8 entries the one-float table of its own scale (Table32Exp's Tight: 1.29
// where the pair gave 1.23, one permute and one add fewer per vector). Each
// row's write is certified from its own dv (lsm32_log_s), so the larger eps
// only moves rows between the writes: dv <= (1.29 + 2^-20 + 2^-26) 2^-24 v
// + f, inside the float64 write's 1.4 * 2^-24 (v - dv) for v >= f 2^24 /
// 0.109 (n 2^-90.8 on AVX2, others ~e^-60 below the max; 0.169 with
// 1.23). A sweep of 1.97 M outputs (n 48-256, spreads 0.03-40, offsets to
// +-3000, dominant entries, ties, a third masked): 0.58% of them change,
// the largest error 0.687 of the 2-ulp bound (0.615 before), the largest
// relative error 0.241 of 4 eps (unchanged).
template <class VN>
void log_softmax_rows_direct32(const float* x, float* y, size_t rows, size_t n, unsigned char* flag) {
  using VW = typename VN::wide;
  using X = Table32Exp<VN, false, 4, (VN::exp_table32_size == 8)>;
  constexpr size_t G = VW::width;
  const X texp;
  // The terms' relative error with the float64 sums' and the division's.
  constexpr double eps = X::kErrUnits * 0x1p-24 + 0x1p-44;
  // The terms flushed (or, with pow2_table32, raised to the clamp's):
  // Lsm32RowAcc.
  const double flushed = static_cast<double>(n) * (HasPow2Table32<VN>::value ? 0x1p-118 : 0x1p-124);
  alignas(64) double part[G * G], cnt[G * G], mx[G], eref[G], how[G];
  // The previous set is written while this one is summed, as
  // rows_log_softmax_direct.h's sets of 4 KiB and more: here at every
  // length (4 Mi-element batches, 1 thread, ns per element, medians of 3
  // interleaved runs on a loaded machine, each set written after its log1p
  // / overlapped: AVX-512 n = 32 1.18 / 1.14, n = 64 0.88 / 0.98, n = 100
  // 1.15 / 0.87, n = 128 1.35 / 1.20, n = 256 0.67 / 0.59; AVX2 n = 32
  // 2.00 / 1.92, n = 64 1.41 / 1.32, n = 100 1.25 / 1.12, n = 128 1.97 /
  // 1.58, n = 256 1.11 / 0.99). Each set's max, log S and write go to one
  // of two slots, the previous set's in the other (no copies).
  alignas(64) double set_mx[2][G], set_log_s[2][G];
  // The max pass is the first to touch a set's rows: it prefetches
  // prefetch_distance() ahead, as logsumexp's direct rows (its loads
  // otherwise stall on memory: 29% of a batch's cpu-clock samples at
  // AVX-512 n = 64, the max loop's two loads).
  const size_t ahead = prefetch_distance(rows * n * sizeof(float)) / sizeof(float);
  Lsm32Write set_how[2][G];
  size_t prev_r0 = 0, prev_g = 0, cur = 0;
  auto write_prev = [&](size_t l) SSM_INLINE {
    const size_t p = cur ^ 1;
    if (l < prev_g && set_how[p][l] != Lsm32Write::Flag)
      lsm32_write_row<VN>(x + (prev_r0 + l) * n, y + (prev_r0 + l) * n, n, set_mx[p][l], set_log_s[p][l],
                          set_how[p][l]);
  };
  for (size_t r0 = 0; r0 < rows; r0 += G) {
    const size_t g = rows - r0 < G ? rows - r0 : G;
    // The set's maxima first (NaN ignored), then e = round(max log2 e) in
    // one vector: no row's sums wait on its own max's lane reduction and
    // rounding. NaN marks a lane flagged: no row, or one beyond
    // kTable32Limit (+-inf, all -inf).
    for (size_t l = 0; l < G; ++l) {
      const double m = l < g ? row_max<VN>(x + (r0 + l) * n, n, ahead) : kNaN;
      mx[l] = m >= -kTable32Limit && m <= kTable32Limit ? m : kNaN;
    }
    const Reg<VW> vmx = VW::load(mx);
    VW::store(eref, VW::select(VW::notfinite(vmx), VW::set1(0.0), VW::round(VW::mul(vmx, VW::set1(kLog2e)))));
    for (size_t l = 0; l < G; ++l) {
      if (mx[l] == mx[l]) {
        lsm32_row_sums<VN>(x + (r0 + l) * n, n, texp, mx[l], eref[l], part + l * G, cnt + l * G);
      } else {
        // No row, or one for the per-row path: k = 1 and rest = 0, an
        // ordinary lane whose result is unused.
        VW::store(part + l * G, VW::set1(0.0));
        VW::store(cnt + l * G, VW::set1(0.0));
        cnt[l * G] = 1.0;
      }
      // Then row l of the previous set (in place, a row's x is read by its
      // own set's max and sums and then by its own write only). After this
      // row's loads, not before: a set of 4 KiB (AVX-512 n = 128, AVX2
      // n = 256) puts row l's x exactly 4 KiB past the previous set's row
      // l, so where y and x share their address bits below 4 KiB (as two
      // page-aligned arrays do) those loads, issued after the stores, were
      // taken as depending on them (4 KiB aliasing).
      write_prev(l);
    }
    const Reg<VW> sum2e = VW::mul(column_sums<VW>(part), VW::set1(1.0 / X::kScale));
    Reg<VW> vhow;
    VW::store(set_log_s[cur], lsm32_log_s<VW>(sum2e, vmx, VW::load(eref), column_adds<VW>(cnt), eps, flushed, vhow));
    VW::store(set_mx[cur], vmx);
    VW::to_array(vhow, how);
    for (size_t l = 0; l < g; ++l) {
      // how is 0, 1 or 2: Lsm32Write's order.
      set_how[cur][l] = static_cast<Lsm32Write>(static_cast<int>(how[l]));
      flag[r0 + l] = how[l] == 0.0;
    }
    prev_r0 = r0;
    prev_g = g;
    cur ^= 1;
  }
  for (size_t l = 0; l < prev_g; ++l) write_prev(l);
}

// Two consecutive groups of W rows of whole vectors (n a multiple of W; the
// second group may be partial: rows_left >= W + 1) with log_softmax_rows_group32's
// arithmetic lane for lane (the same bits), the two groups' chains (max,
// terms, sums, lsm32_log_s' divisions, the write) side by side, the float32
// write's certificate skipped (lsm32_log_s' Narrow: the group kernel
// writes in float64 halves), and a group whose rows are all written
// transposed from the columns straight into y, each store a whole row
// segment, instead of staged in obuf and copied out (with stream the
// staging stays: from_columns' non-temporal run). Zen 5, AVX-512, 1
// thread, out=, ratio of the fastest of 7-11 interleaved processes to the
// one-group loop: 64 Ki-element batches (in L2) n = 16 0.79, n = 32 0.86;
// 4 Mi-element batches n = 16 0.83, 0.83, 0.94, n = 32 0.90, 1.02, 0.97.
// Other lengths keep the one-group loop: with pairs, the last n % W
// columns in as one overlapping block (to_columns_whole) and the direct
// write, in L2 0.70-0.84 of it at n = 20-39, but at 4 Mi elements n = 20
// 1.04-1.29, n = 36 1.05-1.47 (the direct write's partial-line stores at
// a row stride of n), and the one-group loop with the skipped certificate
// alone n = 17 and 36 1.09-1.12.
template <class VN, class X>
SSM_INLINE inline void lsm32_pairs(const float* x, float* y, size_t n, size_t rows_left, const X& texp,
                                   double flushed, float* buf, float* obuf, bool stream, unsigned char* flag) {
  constexpr size_t P = 2;
  using VW = typename VN::wide;
  constexpr size_t W = VN::width, WW = VW::width;
  constexpr double eps = X::kErrUnits * 0x1p-24 + 0x1p-44;
  size_t g[P];
  for (size_t p = 0; p < P; ++p) {
    g[p] = rows_left - p * W < W ? rows_left - p * W : W;
    to_columns<VN>(x + p * W * n, n, g[p], buf + p * n * W, 0.0f);
  }
  Reg<VN> vmax[P];
  for (size_t p = 0; p < P; ++p) vmax[p] = VN::set1(-kInf);
  for (size_t j = 0; j < n; ++j)
    for (size_t p = 0; p < P; ++p) vmax[p] = VN::max(VN::load(buf + (p * n + j) * W), vmax[p]);  // NaN ignored
  // Lanes beyond kTable32Limit (+-inf, all -inf) take max 0 for their
  // terms and NaN for the chain (flagged).
  alignas(64) float mxf[P * W], ef[P * W];
  Reg<VN> m[P], bias[P];
  Lsm32Acc<VN, X> acc[P];
  for (size_t p = 0; p < P; ++p) {
    const auto special = VN::not_le(VN::max(vmax[p], VN::sub(VN::set1(0.0), vmax[p])), VN::set1(kTable32Limit));
    m[p] = VN::select(special, VN::set1(0.0), vmax[p]);
    const Reg<VN> ve = VN::round(VN::mul(m[p], VN::set1(kLog2e)));
    bias[p] = VN::add(ve, VN::set1(X::kBias));
    VN::store(mxf + p * W, VN::select(special, VN::set1(kNaN), vmax[p]));
    VN::store(ef + p * W, ve);
  }
  for (size_t j = 0; j < n; ++j)
    for (size_t p = 0; p < P; ++p) acc[p].add(texp, VN::load(buf + (p * n + j) * W), m[p], bias[p]);
  const Reg<VW> scale = VW::set1(1.0 / X::kScale);
  alignas(64) double how[P * W];
  Reg<VW> v[2 * P], mw[2 * P];
  for (size_t p = 0; p < P; ++p) {
    Reg<VW> cnt[2];
    VN::widen(acc[p].count(n), cnt[0], cnt[1]);
    const Reg<VW> s[2] = {acc[p].s0, acc[p].s1};
    for (size_t h = 0; h < 2; ++h) {
      const size_t q = 2 * p + h;
      Reg<VW> vhow;
      mw[q] = VW::load(mxf + q * WW);
      v[q] = lsm32_log_s<VW, false>(VW::mul(s[h], scale), mw[q], VW::load(ef + q * WW), cnt[h], eps, flushed, vhow);
      VW::store(how + q * WW, vhow);
    }
  }
  // y = (x - max) - log S in float64 halves, rounded once, as the row
  // kernels' write_shift: x - max is exact near the max (Sterbenz) and the
  // result is never positive. Every lane the same way, whatever the other
  // rows of its group (a row's bits do not depend on them).
  for (size_t j = 0; j < n; ++j)
    for (size_t p = 0; p < P; ++p) {
      float* at = buf + (p * n + j) * W;
      const Reg<VW> y0 = VW::sub(VW::sub(VW::load(at), mw[2 * p]), v[2 * p]);
      const Reg<VW> y1 = VW::sub(VW::sub(VW::load(at + WW), mw[2 * p + 1]), v[2 * p + 1]);
      VW::store(at, y0);
      VW::store(at + WW, y1);
    }
  for (size_t p = 0; p < P; ++p) {
    bool ok[W], all = g[p] == W;
    for (size_t l = 0; l < W; ++l) {
      ok[l] = l < g[p] && how[p * W + l] != 0.0;
      all = all && ok[l];
    }
    const float* cols = buf + p * n * W;
    float* out = y + p * W * n;
    if (all && !stream) {
      for (size_t j = 0; j < n; j += W) transpose_block<VN>(cols + j * W, W, out + j, n);
    } else {
      from_columns<VN>(cols, n, g[p], ok, obuf, out, stream);
    }
    for (size_t l = 0; l < g[p]; ++l) flag[p * W + l] = !ok[l];
  }
}

// Rows shorter than Lsm32DirectRange's min_n, from Lsm32GroupRange's (16;
// 28 on AVX2, where shorter ones go faster through the degree-6 terms two
// groups at a time, log_softmax_groups_f32): the group kernel's layout
// (rows_generic.h: W rows transposed into columns, one row per lane) with
// the terms, sums and certificate above, the terms in the data's float32
// lanes (the group kernel's float64 degree-6 terms took two float64 halves
// per column): per column the table-exp term at 2^-e of every entry below
// its lane's max, widened and added in the two float64 halves, and the
// count of the max's own entries; per group lsm32_log_s in each half; then
// the columns written in float64 halves with one rounding, every lane that
// is not flagged (a float32 write per lane, as the direct rows', took a
// blend in each group of both kinds: AVX-512 on Zen 5, 4 Mi-element
// batches, 1 thread, fastest of 9 interleaved processes, against writing a group in
// float32 where all its rows could be, else all in float64, which made a
// row's bits depend on the rows beside it: n = 16, 20, 33 at sigma 1 1.10,
// 1.15, 1.08, at sigma 0.2 1.08, 1.09, 1.12; float64 only 1.09, 1.01,
// 0.93 and 0.99, 0.95, 0.96). e = round(max log2 e) in
// float32 lanes: within 2^-9.5 of max log2 e for |max| <= kTable32Limit,
// so a term stays below 2^0.51 and |max - e ln2| below ln2/2 + 2^-10
// (exp_hi_lo's polynomial there as accurate as at ln2/2).
template <class VN>
void log_softmax_rows_group32(const float* x, float* y, size_t rows, size_t n, bool stream, unsigned char* flag) {
  using VW = typename VN::wide;
  using X = Table32Exp<VN, (VN::exp_table32_size < 16)>;
  constexpr size_t W = VN::width, WW = VW::width;
  static_assert(W == 2 * WW, "widen's two halves");
  const X texp;
  constexpr double eps = X::kErrUnits * 0x1p-24 + 0x1p-44;
  const double flushed = static_cast<double>(n) * 0x1p-124;
  alignas(64) float buf[kMaxN * W], obuf[kMaxN * W];
  alignas(64) float mxf[W], ef[W];
  alignas(64) double how[W];
  size_t r = 0;
  // Rows of whole vectors two groups at a time (lsm32_pairs), their lines
  // prefetched prefetch_distance() ahead (as logsumexp's group pairs).
  if (n % W == 0 && 2 * n <= kMaxN) {
    const size_t ahead = prefetch_distance(rows * n * sizeof(float)) / sizeof(float);
    for (; r + W < rows; r += 2 * W) {
      if (ahead)
        for (size_t i = 0; i < 2 * W * n; i += 64 / sizeof(float)) SSM_PREFETCH(x + r * n + ahead + i);
      lsm32_pairs<VN>(x + r * n, y + r * n, n, rows - r, texp, flushed, buf, obuf, stream, flag + r);
    }
  }
  for (; r < rows; r += W) {
    const size_t g = rows - r < W ? rows - r : W;
    to_columns<VN>(x + r * n, n, g, buf, 0.0f);
    Reg<VN> vmax = VN::set1(-kInf);
    for (size_t j = 0; j < n; ++j) vmax = VN::max(VN::load(buf + j * W), vmax);  // NaN ignored
    // Lanes beyond kTable32Limit (+-inf, all -inf) take max 0 for their
    // terms and NaN for the chain (flagged).
    const auto special = VN::not_le(VN::max(vmax, VN::sub(VN::set1(0.0), vmax)), VN::set1(kTable32Limit));
    const Reg<VN> m = VN::select(special, VN::set1(0.0), vmax);
    const Reg<VN> ve = VN::round(VN::mul(m, VN::set1(kLog2e)));
    const Reg<VN> bias = VN::add(ve, VN::set1(X::kBias));
    Lsm32Acc<VN, X> acc;
    for (size_t j = 0; j < n; ++j) acc.add(texp, VN::load(buf + j * W), m, bias);
    const Reg<VW> s0 = acc.s0, s1 = acc.s1;
    const Reg<VN> count = acc.count(n);
    VN::store(mxf, VN::select(special, VN::set1(kNaN), vmax));
    VN::store(ef, ve);
    Reg<VW> clo, chi;
    VN::widen(count, clo, chi);
    const Reg<VW> scale = VW::set1(1.0 / X::kScale);
    Reg<VW> v[2], vhow[2];
    v[0] = lsm32_log_s<VW>(VW::mul(s0, scale), VW::load(mxf), VW::load(ef), clo, eps, flushed, vhow[0]);
    v[1] = lsm32_log_s<VW>(VW::mul(s1, scale), VW::load(mxf + WW), VW::load(ef + WW), chi, eps, flushed, vhow[1]);
    VW::store(how, vhow[0]);
    VW::store(how + WW, vhow[1]);
    bool ok[W];
    for (size_t l = 0; l < W; ++l) ok[l] = l < g && how[l] != 0.0;
    // y = (x - max) - log S in float64 halves, rounded once, as the row
    // kernels' write_shift: x - max is exact near the max (Sterbenz) and the
    // result is never positive. Every lane the same way, whatever the other
    // rows of its group (a row's bits do not depend on them).
    const Reg<VW> m0 = VW::load(mxf), m1 = VW::load(mxf + WW);
    for (size_t j = 0; j < n; ++j) {
      float* at = buf + j * W;
      const Reg<VW> y0 = VW::sub(VW::sub(VW::load(at), m0), v[0]);
      const Reg<VW> y1 = VW::sub(VW::sub(VW::load(at + WW), m1), v[1]);
      VW::store(at, y0);
      VW::store(at + WW, y1);
    }
    from_columns<VN>(buf, n, g, ok, obuf, y + r * n, stream);
    for (size_t l = 0; l < g; ++l) flag[r + l] = !ok[l];
  }
  if (stream) VN::fence();
}
