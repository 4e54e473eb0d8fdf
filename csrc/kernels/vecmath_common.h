// Constants shared by every kernel set: the exp polynomials and tables, and
// the inlining macros. Data and macros only (no functions), so including it
// in translation units compiled with different instruction sets is safe.
//
// exp(r) on |r| <= ln(2)/2 is a polynomial with c0 = 1 fitted for minimal
// relative error by tools/fit_exp.py (Lawson's algorithm); the rounded
// coefficients approximate exp to 1.8e-8 (float32, degree 6, 0.3 ulp) and
// 1.3e-17 (float64, degree 11, 0.1 ulp) before evaluation rounding. The
// measured end-to-end error of the kernels' exp is in README.md
// (tools/exp_ulp_sweep.py).
#pragma once

// Kernel bodies are lambdas handed to a loop driver; they must be inlined into
// the loop or every vector becomes a call with its state in memory.
#if defined(__GNUC__) || defined(__clang__)
#define SSM_INLINE __attribute__((always_inline))
#define SSM_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define SSM_INLINE
#define SSM_NOINLINE __declspec(noinline)
#else
#define SSM_INLINE
#define SSM_NOINLINE
#endif

template <class S>
struct ExpCoeffs;

template <>
struct ExpCoeffs<float> {
  static constexpr int degree = 6;
  static constexpr double c[degree + 1] = {
      1.0, 0x1p+0, 0x1.fffffcp-2, 0x1.555418p-3, 0x1.555826p-5, 0x1.12682cp-7, 0x1.6ae69p-10};
  static constexpr double log2e = 0x1.715476p+0;
  // float(ln2) and the float nearest to the remainder: with fma, n*ln2_hi is
  // exact and x - n*ln2_hi is exact while |n| < 2^22 (see kernel_api.h).
  static constexpr double ln2_hi = 0x1.62e43p-1;
  static constexpr double ln2_lo = -0x1.05c61p-29;
};

// The sums of the fast passes (two-pass pass 1, the fast log-sum-exp) can
// afford a degree-5 float32 polynomial: 1.4 ulp (2.75 * 2^-24 relative) after
// float32 evaluation, and an error that is mostly averaged away in a sum. The
// values written out always use ExpCoeffs (the degree-6 fit).
template <class S>
struct ExpCoeffsFast : ExpCoeffs<S> {};

template <>
struct ExpCoeffsFast<float> {
  static constexpr int degree = 5;
  static constexpr double c[degree + 1] = {1.0, 0x1.fffffp-1, 0x1.fffdcp-2, 0x1.555ce2p-3, 0x1.573c0ap-5, 0x1.0ebae2p-7};
  static constexpr double log2e = ExpCoeffs<float>::log2e;
  static constexpr double ln2_hi = ExpCoeffs<float>::ln2_hi;
  static constexpr double ln2_lo = ExpCoeffs<float>::ln2_lo;
};

// Lane types with a 16-entry table lookup (AVX-512 float64: one vpermt2pd)
// evaluate exp(x) as 2^(k/16) * p(r), k = round(16 x log2 e), |r| <= ln2/32:
// a degree-6 polynomial (tools/fit_exp.py, 7.6e-18 = 0.07 * 2^-53 relative
// with the rounded coefficients) instead of degree 11 on |r| <= ln2/2. With
// the table's and the product's roundings and Horner's, below 1.6 * 2^-53.
// Used by the fast sums and by the written values (where the table is
// multiplied by the row's 1/sum once per call).
struct ExpTable16 {
  static constexpr int degree = 6;
  static constexpr double c[degree + 1] = {1.0,
                                           0x1.000000000000ap+0,
                                           0x1.fffffffffffcdp-2,
                                           0x1.55555554046b9p-3,
                                           0x1.55555557919bap-5,
                                           0x1.11126f6459fd7p-7,
                                           0x1.6c15fd6222b7cp-10};
  // 2^(j/16), j = 0..15, correctly rounded.
  static constexpr double table[16] = {
      0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
      0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
      0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
      0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};
  // 2^(j/16) - table[j] (mpmath, 40 digits): the written values use the
  // table as a double-double (see WriteExp in softmax_generic.h).
  static constexpr double table_lo[16] = {
      0.0,                    0x1.8a62e4adc610bp-54,  -0x1.19041b9d78a76p-55, 0x1.9b07eb6c70573p-54,
      0x1.6f46ad23182e4p-55,  0x1.ada0911f09ebcp-55,  0x1.d4397afec42e2p-56,  0x1.6324c054647adp-54,
      -0x1.bdd3413b26456p-54, -0x1.41577ee04992fp-55, 0x1.6e9f156864b27p-54,  0x1.c7c46b071f2bep-56,
      0x1.7a1cd345dcc81p-54,  0x1.11065895048ddp-55,  0x1.2ed02d75b3707p-55,  -0x1.e9c23179c2893p-54};
  // fma(x, log2e, magic) rounds x log2 e to a multiple of 1/16 and leaves
  // k mod 16 in the low mantissa bits (magic's ulp is 1/16).
  static constexpr double magic = 0x1.8p+48;
};

// log(t) for t >= 1 in lanes with a 16-entry table lookup (AVX-512
// float64, F64x8::log_table): t = 2^E M, M in [1, 2) (getexp, getmant),
// i = M's top four fraction bits, q = M inv[i] - 1 in one fma (|q| <= 1/32
// + 2^-52), log t = E ln2 + log[i] + log1p(q), the series to degree 7
// (tail |q|^8 / 8 < 2^-42.9). inv[i] = 1 / (1 + (i + 1/2) / 16) rounded,
// log[i] = -log(inv[i]) (the rounded inverse's own log, so inv's rounding
// costs nothing), within 2^-54 (mpmath, 200 bits). With the roundings of q
// (2^-53 |q|), Horner's and the last two sums, and ln2's in E ln2 (|E|
// 2^-54: 2^-50 for the short rows' sums, t < 2^15), the result is within
// 2^-42.5 + 2^-53 |log t| + |E| 2^-54 of log t, with no division.
struct LogTable16 {
  static constexpr double inv[16] = {
      0x1.f07c1f07c1f08p-1, 0x1.d41d41d41d41dp-1, 0x1.bacf914c1bad0p-1, 0x1.a41a41a41a41ap-1,
      0x1.8f9c18f9c18fap-1, 0x1.7d05f417d05f4p-1, 0x1.6c16c16c16c17p-1, 0x1.5c9882b931057p-1,
      0x1.4e5e0a72f0539p-1, 0x1.4141414141414p-1, 0x1.3521cfb2b78c1p-1, 0x1.29e4129e4129ep-1,
      0x1.1f7047dc11f70p-1, 0x1.15b1e5f75270dp-1, 0x1.0c9714fbcda3bp-1, 0x1.0410410410410p-1};
  static constexpr double log[16] = {
      0x1.f829b0e7832f8p-6, 0x1.6f0d28ae56b4ep-4, 0x1.29552f81ff521p-3, 0x1.9525a9cf456b6p-3,
      0x1.fb9186d5e3e29p-3, 0x1.2e8e2bae11d31p-2, 0x1.5d1bdbf5809cap-2, 0x1.89a3386c1425bp-2,
      0x1.b44f77bcc8f64p-2, 0x1.dd46a04c1c4a1p-2, 0x1.02552a5a5d0ffp-1, 0x1.154c3d2f4d5eap-1,
      0x1.2795e1289b11bp-1, 0x1.393e0d3562a1ap-1, 0x1.4a4f85db03ebbp-1, 0x1.5ad404c359f2dp-1};
};

// 2^(j/T), j = 0..T-1 (T = 8 or 16), as a float32 pair hi + lo (hi the
// float nearest, lo the float nearest the remainder: hi + lo within 2^-47
// relative), for the float32 table exp of expsum_lse32 (expsum_table32.h),
// whose lanes look them up with one permute each.
struct ExpTable32 {
  float hi[16], lo[16];
  constexpr explicit ExpTable32(int size) : hi(), lo() {
    for (int j = 0; j < size; ++j) {
      const double d = ExpTable16::table[j * (16 / size)];
      const float h = static_cast<float>(d);
      hi[j] = h;
      lo[j] = static_cast<float>((d - static_cast<double>(h)) + ExpTable16::table_lo[j * (16 / size)]);
    }
  }
};
inline constexpr ExpTable32 kExpTable32x16{16}, kExpTable32x8{8};

// scale * 2^(j/16), j = 0..15, each the float nearest: expsum_lse32_fast's
// table of one float per entry (no lo: one permute fewer and an fma in place
// of an fma and an add per vector). A scale of 1 leaves entries up to
// 0.79 * 2^-24 from 2^(j/16); this scale (the best of 4 Mi random doubles in
// [1, 2)) leaves every entry within 0.268 * 2^-24 of scale * 2^(j/16)
// (mpmath, 200 bits); the sum is divided by scale at the end.
struct ExpTable32Scaled {
  static constexpr double scale = 0x1.c6219f8fbaae1p+0;
  static constexpr float hi[16] = {0x1.c621a0p+0f, 0x1.da3ccap+0f, 0x1.ef3bd6p+0f, 0x1.02946ep+1f,
                                   0x1.0e0732p+1f, 0x1.19fbb8p+1f, 0x1.2677bep+1f, 0x1.338144p+1f,
                                   0x1.411e8ep+1f, 0x1.4f5626p+1f, 0x1.5e2ee2p+1f, 0x1.6dafe4p+1f,
                                   0x1.7de09ep+1f, 0x1.8ec8dap+1f, 0x1.a070b6p+1f, 0x1.b2e0aep+1f};
};

// Its even entries, scale * 2^(j/8), j = 0..7 (each within the same 0.268 *
// 2^-24): the one-float table of the 8-entry (AVX2) float32 table exp,
// logsumexp's direct rows (expsum_table32.h, Table32Exp).
struct ExpTable32Scaled8 {
  float hi[8];
  constexpr ExpTable32Scaled8() : hi() {
    for (int j = 0; j < 8; ++j) hi[j] = ExpTable32Scaled::hi[2 * j];
  }
};
inline constexpr ExpTable32Scaled8 kExpTable32Scaled8{};

// scale * 2^(j/8), j = 0..7, each the float nearest, for its own scale
// 0x1.0e4cp+0 (1.05584716796875, a float: entry 0 is exact): of the 2^20
// multiples of 2^-20 in [1, 2) the one whose entries' largest rounding is
// the least, 0.110 * 2^-24 relative (mpmath, 200 bits; the even entries
// above leave 0.268). expsum_lse32_fast's one-float table on 8-entry sets
// (AVX2): err_rest 1.29u instead of 1.45u (expsum_table32.h), inside the
// float64 write's 1.4 * 2^-24 / 1.02 for every lse - max.
struct ExpTable32Scaled8Tight {
  static constexpr double scale = 0x1.0e4cp+0;
  static constexpr float hi[8] = {0x1.0e4cp+0f,   0x1.26c2c6p+0f, 0x1.41706p+0f,  0x1.5e881cp+0f,
                                  0x1.7e41ecp+0f, 0x1.a0dad2p+0f, 0x1.c69556p+0f, 0x1.efba06p+0f};
};

template <>
struct ExpCoeffs<double> {
  static constexpr int degree = 11;
  static constexpr double c[degree + 1] = {
      1.0,
      0x1.0p+0,
      0x1.000000000000bp-1,
      0x1.55555555554b2p-3,
      0x1.55555555500e4p-5,
      0x1.111111112fbd4p-7,
      0x1.6c16c185827f6p-10,
      0x1.a01a011107028p-13,
      0x1.a01996ed474f3p-16,
      0x1.71df49b41445ap-19,
      0x1.28b00093cc1d7p-22,
      0x1.ad592b569acccp-26};
  static constexpr double log2e = 0x1.71547652b82fep+0;
  static constexpr double ln2_hi = 0x1.62e42fefa39efp-1;
  static constexpr double ln2_lo = 0x1.abc9e3b39803fp-56;
  // Cody-Waite split for the path without fma: ln2_hi31 has 31 significant
  // bits, so n*ln2_hi31 is exact for |n| < 2^22.
  static constexpr double ln2_hi31 = 0x1.62e42fecp-1;
  static constexpr double ln2_lo31 = 0x1.d1cf79abc9e3bp-32;
};

// exp on float64 lanes for data narrower than float64 (float32, half), in
// expsum_lse (kernels/expsum_fast.h), whose sum only has to certify
// float32 results: degree 6 on |r| <= ln2/2 (tools/fit_exp.py: 1.99e-9 relative with these rounded
// coefficients) instead of degree 11, and the argument reduction in one fma
// (poly_reduce). That is far from float32's own 2^-24, but expsum_lse then
// recomputes the row max's own term with the accurate exp (corrected_max):
// the error left is err relative to the other terms only, whose share of the
// sum, 1 - exp(-(lse - max)), shrinks with lse - max exactly where
// log_softmax needs lse - max most accurately (a dominant entry). Terms cost
// 2 vectors per float32 vector, so every fma saved counts twice. The
// short-row log_softmax (rows_generic.h) uses it on max-relative terms.
struct ExpCoeffsMid {
  static constexpr int degree = 6;
  static constexpr double c[degree + 1] = {1.0,
                                           0x1.0000008af0777p+0,
                                           0x1.fffffc173acf7p-2,
                                           0x1.55541829345dfp-3,
                                           0x1.55582519184bcp-5,
                                           0x1.12682b4e6928fp-7,
                                           0x1.6ae69068a4e56p-10};
  static constexpr double log2e = 0x1.71547652b82fep+0;
  // Relative error of a term: the polynomial (1.99e-9), the one-fma
  // reduction (poly_reduce: |n| (ln2 - ln2_hi) <= 3.1e6 * 2.4e-17 = 7.3e-11)
  // and float64 evaluation (Horner and the power of two: a few 2^-53),
  // rounded up.
  static constexpr double err = 2.08e-9;
  static constexpr bool one_fma_reduction = true;
};
