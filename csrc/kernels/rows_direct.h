// softmax of short rows one row at a time, whole vectors along the row:
// included by rows_generic.h (its anonymous namespace, lane types and
// pow2_term). From a few vectors per row on, a row is cheaper this way than
// as a lane of a transposed group: no transposes in or out, and the two lane
// reductions per row (max and sum) cost less than the transposes once a
// row spans two or more vectors. Still no per-row call, context or chunking:
// one loop over the batch, the row held in L1 (a 1-2 KiB row) between its
// three passes (max; terms exp(x) * 2^(kTermShift - round(max log2 e)) kept
// in a stack buffer and summed; scale into y).
//
// Accuracy: the terms are pow2_term's (rows_generic.h: the float32 ones
// with the degree-6 exp, the float64 ones with the degree-11); float32
// terms are summed in float64 lanes (exact widening, at most kMaxN adds:
// below 2^-45 relative), float64 terms with Kahan2, then 1/sum and the
// product (0.5 ulp each): within the group kernel's bound. y is written
// only once the row is known to be ordinary (so in place works): a max
// beyond kFastLimit, +-inf, all -inf or a NaN (its sum) leave the row
// unwritten and flagged for the per-row path.
//
// Tried (Zen 3, AVX2 float32): two rows at a time, each row's steps as
// alone (max; terms and sum; scale: the same bits), so that one row's lane
// reductions, nearbyint and 1 / sum overlap the other row's vector work
// (GCC 12 then needs flatten, else it calls pow2_term out of line). No
// gain: thread CPU time / one row at a time, medians of 9 interleaved
// processes at load 7, 4 Mi-element batches n = 32 1.00, 64 0.97, 128
// 1.05; 2^15-element batches (in L2) 1.00, 0.98, 1.02; callgrind
// instructions per element in the extension n = 32 7.11 -> 7.39, 64 6.07
// -> 6.28. These rows are bound by instruction throughput (the same ns per
// element in L2 as from DRAM, about 25 instructions per vector in the
// terms' loop), not by each row's serial tail: the core already overlaps
// consecutive rows.
//
// The three passes go two vectors per loop step (each_vector), and AVX2
// float32 terms fold the row's exponent offset into the scale's bias
// (folded_term: 26 instructions per vector in the terms' loop, was 27);
// the same bits (sha1 of the outputs of 495 batches, n = 28-79 and to 256,
// logits up to 300 and maxima to +-9.5e5, special rows, avx2 and scalar;
// and rows sweeping the flush threshold at maxima across +-2^20). Zen 3,
// callgrind instructions per element in the extension (1 Mi-element N(0,
// 1) batches, 1 thread), main / both: n = 32 6.62 / 6.34, 40 6.21 / 5.89,
// 64 5.59 / 5.17, 100 5.42 / 4.96, 128 5.08 / 4.58, 256 4.82 / 4.29. Thread
// CPU time / main's, 4 Mi-element batches, medians of 9 interleaved
// processes, load 0-1.2: n = 32 0.96, 48 0.98, 64 0.99, 100 0.99, 128
// 0.88, 256 0.90 (n = 16, unchanged: 1.00); at load 6.5 n = 128 0.86,
// 256 0.84, 32-100 within that load's noise (0.89-1.20 between runs).
// Tried: x clamped at a per-row bound instead of kClampLow, so that k
// needs no clamp (25 instructions per vector; callgrind n = 32 6.31, 64
// 5.09, 128 4.48): every step of the terms then waits for the row's max
// and e_ref, and n = 32 took 1.07x main's time (64 1.03x, 128 0.88x, 11
// rounds); #pragma GCC unroll 4 on the loops instead of two per step (GCC
// peels a vector and branches on the count mod 4 per row): callgrind 32
// 6.78, 64 5.20, 128 4.41 (with that clamp); summing the terms from buf by
// widening loads (two instructions where widen takes three): GCC forwards
// the stored value and emits widen's three anyway.
//
// AVX2 float32 rows take folded_term's constants from the batch
// (FoldedConsts: GCC broadcast nine of them again for every row) and form
// 2^23 + 127 - e_ref in one subtraction: about 13 instructions fewer per
// row, the same bits (sha1 of avx2 and scalar outputs n = 1-256 with
// special rows, and of the flush-threshold sweep, unchanged). Zen 3,
// callgrind instructions per element in the extension (1 Mi-element N(0,
// 1) batches, 1 thread), main / this: n = 32 6.31 / 5.90, 33 7.24 / 6.87,
// 40 5.85 / 5.53, 64 5.14 / 4.90, 100 4.93 / 4.77, 128 4.55 / 4.40, 256
// 4.26 / 4.15; with the row sum's horizontal add (RowSumTotal, 3 fewer
// per row) n = 32 5.81, 64 4.85, 128 4.38.
// Thread CPU time / main's, 4 Mi-element batches, medians of 7
// interleaved processes at load 6.5-7 (noisy: the unchanged n = 16 came
// out 1.10): n = 32 1.02, 33 0.93, 48 0.93, 64 0.95, 128 0.99, 256 0.96.
//
// The max starts from the row's first vector and takes each further vector
// as max's second operand (a memory operand: one instruction per vector,
// was a load and a max), its range is one compare on |mx| (was two), and
// the overlap tail's lane mask is made once per batch (DirectTailLanes:
// GCC rebuilt it, 7 instructions, every row); the row's c now stays in a
// register (log2e is the spilled constant, a memory operand). The same
// bits (sha1 of avx2 and scalar outputs n = 32-79 and to 256, scales
// 0.5-300, offsets to +-9.5e5, special rows, out= and in place, and a
// flush-threshold sweep, unchanged). Zen 3, callgrind instructions per
// element in softmax_rows<F32x8> (1 Mi-element N(0, 1) batches, 4 calls,
// 1 thread), main / this: n = 32 5.78 / 5.50, 33 6.76 / 6.82, 40 5.43 /
// 5.15, 64 4.83 / 4.66, 128 4.35 / 4.24. n = 33 rose: GCC now calls
// FoldedConsts::term out of line for the overlap tail, spilling 16
// registers around the call. Forcing it inline (SSM_INLINE) was worse
// everywhere (n = 32 6.03, 33 7.30, 64 4.92: GCC's allocation of the
// whole loop changed). Thread CPU time / main's, 4 Mi-element batches,
// medians of 5, 9 and 9 interleaved processes, load 3.4-3.9: n = 32 0.98
// / 1.00 / 1.06 (minima 0.97 / 1.00 / 0.99), 33 0.95 / 0.92 / 0.90, 40
// 1.01 / 0.97, 64 0.99 / 1.00 / 0.81, 128 0.96 / 1.06 / 0.80 (noise).

// The float64 lane sum of a row's float32 terms: VW::hsum, or the same
// additions in the same order with fewer instructions where the kernel set
// specialises it (rows_avx2.cpp).
template <class VW>
struct RowSumTotal {
  static double of(Reg<VW> a) { return VW::hsum(a); }
};

// Row sums: float32 terms in float64 lanes, float64 terms compensated.
template <class VN, bool Narrow = std::is_same<typename VN::scalar, float>::value>
struct RowSum;
template <class VN>
struct RowSum<VN, true> {
  using VW = typename VN::wide;
  Reg<VW> s0 = VW::set1(0.0), s1 = VW::set1(0.0);
  void add(size_t, Reg<VN> t) {
    Reg<VW> lo, hi;
    VN::widen(t, lo, hi);
    s0 = VW::add(s0, lo);
    s1 = VW::add(s1, hi);
  }
  double total() const { return RowSumTotal<VW>::of(VW::add(s0, s1)); }
};
template <class VN>
struct RowSum<VN, false> {
  Kahan2<VN> k;
  void add(size_t j, Reg<VN> t) { k.add(static_cast<int>(j & 1), t); }
  double total() const {
    double out[VN::width];
    k.totals(out);
    double s = 0.0;
    for (double v : out) s += v;
    return s;
  }
};

// Rows of n >= W elements, n % W != 0, take their last W elements as one
// whole vector (overlapping the one before it) where the lane type's masked
// loads and stores cost more than that: the max takes those lanes twice,
// the terms of the overlap are computed again (the same values into buf),
// only the last n % W lanes are summed, and the product is stored again
// over the same elements (y is written after x's last read, so in place
// too). The row's last n % W terms then sit in the vector's upper lanes,
// not its lower ones: the float64 (float32 data) or Kahan lane sums add
// them in another order, which may move the last bit of 1 / sum (the
// bound is the same). AVX2 float32 sets it (rows_avx2.cpp: the masked
// store, vmaskmovps, is slow on Zen 3).
template <class VN>
struct DirectOverlapTail : std::false_type {};

// float32 lane types whose 2^k is one shift of k + (2^23 + 127)
// (pow2_biased32: AVX2) may take pow2_term's scale with the row's offset
// folded in (folded_term): the same bits, one operation fewer per vector.
// pow2_term takes max(n - e_ref, -127) + 2^23 + 127 (2^-127 gives exponent
// field 0, a 0 term); here max(n + c, 2^23), c = 2^23 + 127 - e_ref: the
// same integers (every one below 2^24 in magnitude: exact), a NaN n gives
// 2^23 both ways (max returns its second operand). Only the last steps
// wait for the row's e_ref, as in pow2_term.
template <class VN>
struct DirectFoldedScale : std::false_type {};

// folded_term: pow2_term with the row's offset folded in (above), its
// constants made once per batch (softmax_rows_direct) and
// passed through an empty asm so that GCC no longer knows their values:
// it kept rematerialising them, nine broadcasts per row, where now they
// stay in registers across the rows. The same operations and operands as
// folded_term (the same bits); kernel sets without DirectFoldedScale get
// an empty struct.
template <class VN, bool = DirectFoldedScale<VN>::value>
struct FoldedConsts {};
template <class VN>
struct FoldedConsts<VN, true> {
  using C = ExpCoeffs<float>;
  static_assert(C::degree == 6 && C::c[1] == 1.0 && C::c[0] == 1.0, "one register for c[1] and c[0]");
  Reg<VN> clamp, log2e, ln2_hi, ln2_lo, c6, c5, c4, c3, c2, one, bias_min;
  FoldedConsts()
      : clamp(VN::set1(kClampLow)), log2e(VN::set1(C::log2e)), ln2_hi(VN::set1(C::ln2_hi)),
        ln2_lo(VN::set1(C::ln2_lo)), c6(VN::set1(C::c[6])), c5(VN::set1(C::c[5])), c4(VN::set1(C::c[4])),
        c3(VN::set1(C::c[3])), c2(VN::set1(C::c[2])), one(VN::set1(1.0)), bias_min(VN::set1(0x1p23)) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __asm__("" : "+x"(clamp), "+x"(log2e), "+x"(ln2_hi), "+x"(ln2_lo), "+x"(c6), "+x"(c5));
    __asm__("" : "+x"(c4), "+x"(c3), "+x"(c2), "+x"(one), "+x"(bias_min));
#endif
  }
  // pow2_term's operations (poly, reduce_ln2) with the folded scale.
  Reg<VN> term(Reg<VN> x, Reg<VN> c) const {
    const Reg<VN> xc = VN::max(clamp, x);
    const Reg<VN> n = VN::round(VN::mul(xc, log2e));
    const Reg<VN> r = VN::fnmadd(n, ln2_lo, VN::fnmadd(n, ln2_hi, xc));
    Reg<VN> p = VN::fmadd(c6, r, c5);
    p = VN::fmadd(p, r, c4);
    p = VN::fmadd(p, r, c3);
    p = VN::fmadd(p, r, c2);
    p = VN::fmadd(p, r, one);
    p = VN::fmadd(p, r, one);
    return VN::mul(p, VN::pow2_biased32(VN::max(VN::add(n, c), bias_min)));
  }
};

// f(j) for j = 0, W, ..., full - W in order, two vectors per loop step (the
// loop's index, compare and branch once per two vectors).
template <size_t W, class F>
SSM_INLINE inline void each_vector(size_t full, F&& f) {
  size_t j = 0;
  for (; j + 2 * W <= full; j += 2 * W) {
    f(j);
    f(j + W);
  }
  if (j < full) f(j);
}

// One row of n elements (any n >= 1; rows_generic.h takes kDirectMinBytes on)
// -> true, y written; false: y untouched. buf: at least n rounded up to a
// whole vector elements.
// The last partial vector's lanes that the row's sum takes (the batch's
// rows share n: made once per batch, not per row).
template <class VN, bool OverlapTail = DirectOverlapTail<VN>::value>
struct DirectTailLanes {
  using T = typename VN::scalar;
  typename VN::mask in_row;
  explicit DirectTailLanes(size_t n) {
    constexpr size_t W = VN::width;
    static_assert(W <= 16, "lane index table");
    alignas(64) static constexpr T kLane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const size_t rem = n % W;
    if (OverlapTail && n >= W)  // the overlapping vector's upper rem lanes
      in_row = VN::gt(VN::load(kLane), VN::set1(static_cast<double>(W - rem) - 0.5));
    else  // the masked tail's lower rem lanes
      in_row = VN::gt(VN::set1(static_cast<double>(rem)), VN::load(kLane));
  }
};

template <class VN, class T, bool OverlapTail = DirectOverlapTail<VN>::value>
bool softmax_row_direct(const T* x, T* y, size_t n, T* buf, const FoldedConsts<VN>& K,
                        const DirectTailLanes<VN>& tail) {
  constexpr size_t W = VN::width;
  const size_t full = n - n % W, rem = n % W;
  // The max from the first vector on, the row's vector as max's second
  // operand (a memory operand on x86): a NaN lane may then reach mx or
  // not, by position, but a row with a NaN is flagged either way (mx not
  // finite here, or the NaN term makes the sum NaN below); other rows get
  // the same max (exact, any order).
  Reg<VN> vmax;
  if (full) {
    vmax = VN::load(x);
    each_vector<W>(full - W, [&](size_t j) { vmax = VN::max(vmax, VN::load(x + W + j)); });
  } else {
    vmax = VN::set1(-kInf);
  }
  if (OverlapTail && rem && n >= W)
    vmax = VN::max(vmax, VN::load(x + n - W));
  else if (rem)
    vmax = VN::max(vmax, VN::load_tail(x + full, rem, -kInf));
  const double mx = VN::hmax(vmax);
  if (!(std::fabs(mx) <= kFastLimit)) return false;  // also +-inf, all -inf, NaN
  // folded: 2^23 + 127 - e_ref in one subtraction (integers below 2^24:
  // exact, the same value).
  const double e_ref = std::nearbyint(mx * kLog2e) - kTermShift;
  const double c_ref = (8388735.0 + kTermShift) - std::nearbyint(mx * kLog2e);
  auto term = [e_ref, c_ref, &K](Reg<VN> xv) {
    if constexpr (DirectFoldedScale<VN>::value)
      return K.term(xv, VN::set1(c_ref));
    else
      return pow2_term<VN>(xv, VN::set1(static_cast<T>(e_ref)));
  };
  RowSum<VN> sum;
  each_vector<W>(full, [&](size_t j) {
    const Reg<VN> t = term(VN::load(x + j));
    VN::store(buf + j, t);
    sum.add(j / W, t);
  });
  if (OverlapTail && rem && n >= W) {
    const Reg<VN> t = term(VN::load(x + n - W));
    VN::store(buf + n - W, t);
    sum.add(full / W, VN::select(tail.in_row, t, VN::set1(0.0)));
  } else if (rem) {
    // The lanes past the row's end add 0.
    const Reg<VN> t =
        VN::select(tail.in_row, term(VN::load_tail(x + full, rem, -kInf)), VN::set1(0.0));
    VN::store(buf + full, t);
    sum.add(full / W, t);
  }
  // The max's own term is at least 2^-1.5 (times kTermShift's scale): a
  // smaller or non-finite sum means a NaN somewhere in the row.
  const double total = sum.total();
  if (!(total > kMinShiftedSum && total < 1e300)) return false;
  const Reg<VN> inv = VN::set1(static_cast<T>(1.0 / total));
  each_vector<W>(full, [&](size_t j) { VN::store(y + j, VN::mul(VN::load(buf + j), inv)); });
  if (OverlapTail && rem && n >= W)
    VN::store(y + n - W, VN::mul(VN::load(buf + n - W), inv));
  else if (rem)
    VN::store_tail(y + full, VN::mul(VN::load(buf + full), inv), rem);
  return true;
}

template <class VN, class T>
void softmax_rows_direct(const T* x, T* y, size_t rows, size_t n, unsigned char* flag) {
  alignas(64) T buf[kMaxN + 16];
  const FoldedConsts<VN> K;
  const DirectTailLanes<VN> tail(n);
  for (size_t r = 0; r < rows; ++r) flag[r] = !softmax_row_direct<VN>(x + r * n, y + r * n, n, buf, K, tail);
}
