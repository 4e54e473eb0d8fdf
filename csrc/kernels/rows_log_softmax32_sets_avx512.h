// float32 log_softmax of rows of Lsm32PermRange's max_n + 1 to
// Lsm32SetsRange's max_n elements on AVX-512, one row at a time along whole
// vectors, eight or sixteen rows a set:
// included by rows_avx512.cpp after rows_log_softmax32_perm_avx512.h (its
// log1p_table) and rows_generic.h (rows_log_softmax32_direct.h's
// round_off32 and lsm32_write_row, over_max_term_from, exp_hi_lo).
//
// The direct rows' arithmetic (rows_log_softmax32_direct.h: each row's
// terms exp(x) 2^-e of the entries below its max by the 16-entry table,
// widened and summed in two float64 halves, the count of the max's own
// entries, z = (k - 1) + rest, the certificate and the two writes), with
// the set's work between the rows kept short, so that it overlaps the
// next set's rows instead of holding them up:
// - the set's maxima from the rows' lane maxima by trees of shuffles
//   (no horizontal max per row, no stores of scalars reloaded as one
//   vector), the max's own term exp(max - e ln2) (exp_hi_lo) and its
//   reciprocal computed before the rows' sums, from the maxima alone;
// - each row's lane sums and counts added across by trees of shuffles and
//   plain adds (no transposes through memory, no TwoSum: three roundings,
//   2^-51 relative);
// - log S = log1p(z) by log1p_table (no division; within 2^-30.9 relative
//   where log1p_small's halving steps, division and degree-15 series were
//   within 2^-50), the certificate's z / (1 + z) bounded from above by
//   vrcp14pd (2^-14 relative) times 1 + 2^-13 (no division), and the
//   float32 spacing at v - dv by getexp (ulp32_getexp: exact, where
//   ulp32_below took three float32 roundings and may give half of it).
// The certificate takes log1p_table's error into dv (2^-30 v where it took
// 2^-50 v): dv <= eps z / (1 + z) (1 + 2^-13) + 2^-30 v + f, still inside
// the float64 write's 1.4 * 2^-24 (v - dv) wherever the direct rows' dv
// was (1.35 (1 + 2^-13) + 2^-6 < 1.4), and a few 2^-30 v more against the
// float32 write's ulp32(v - dv). So each row is written as the direct rows'
// contract allows (2 ulp), flagged in the same cases (NaN, +-inf, all
// -inf, maxima beyond kTable32Limit, v near the flushed terms' bound), and
// its bits depend on its own entries only (every lane of the trees adds
// its own row's values in a fixed order).

// Lanes 0-7: op over the eight floats of f[l] (rows l = 0..7).
template <class Op>
SSM_INLINE inline __m256 across8_ps(const __m256* f, Op op) {
  __m256 a[4], c[2];
  for (int i = 0; i < 4; ++i)  // per 128 bits: f2i (0, 2), f2i+1 (0, 2), f2i (1, 3), f2i+1 (1, 3)
    a[i] = op(_mm256_unpacklo_ps(f[2 * i], f[2 * i + 1]), _mm256_unpackhi_ps(f[2 * i], f[2 * i + 1]));
  for (int h = 0; h < 2; ++h)  // per 128 bits: rows 4h .. 4h + 3, each over its four floats there
    c[h] = op(_mm256_shuffle_ps(a[2 * h], a[2 * h + 1], 0x44), _mm256_shuffle_ps(a[2 * h], a[2 * h + 1], 0xEE));
  return op(_mm256_permute2f128_ps(c[0], c[1], 0x20), _mm256_permute2f128_ps(c[0], c[1], 0x31));
}

// Lanes 0-7: the sums of the eight doubles of p[l] (rows l = 0..7), three
// roundings each.
SSM_INLINE inline __m512d across8_pd(const __m512d* p) {
  __m512d a[4], b[2];
  for (int i = 0; i < 4; ++i)  // per 128 bits: row 2i's pair, row 2i + 1's pair
    a[i] = _mm512_add_pd(_mm512_unpacklo_pd(p[2 * i], p[2 * i + 1]), _mm512_unpackhi_pd(p[2 * i], p[2 * i + 1]));
  for (int h = 0; h < 2; ++h)  // rows 4h, 4h + 1 (lanes 0-3, 4-7), rows 4h + 2, 4h + 3
    b[h] = _mm512_add_pd(_mm512_shuffle_f64x2(a[2 * h], a[2 * h + 1], 0x88),
                         _mm512_shuffle_f64x2(a[2 * h], a[2 * h + 1], 0xDD));
  return _mm512_add_pd(_mm512_shuffle_f64x2(b[0], b[1], 0x88), _mm512_shuffle_f64x2(b[0], b[1], 0xDD));
}

// A row's lane maxima (NaN ignored, -inf for the tail's padding), its lines
// `ahead` elements further on prefetched as row_max's.
SSM_INLINE inline __m512 row_lane_max(const float* x, size_t n, size_t full, __mmask16 tail, size_t ahead) {
  using VN = F32x16;
  __m512 m0 = VN::set1(-kInf), m1 = VN::set1(-kInf);
  size_t j = 0;
  for (; j + 32 <= full; j += 32) {
    if (ahead) prefetch_block<32 * sizeof(float)>(x + j + ahead);
    m0 = VN::max(VN::load(x + j), m0);
    m1 = VN::max(VN::load(x + j + 16), m1);
  }
  if (ahead)
    for (size_t b = j * sizeof(float); b < n * sizeof(float); b += 64)
      SSM_PREFETCH(reinterpret_cast<const char*>(x + ahead) + b);
  if (j < full) m0 = VN::max(VN::load(x + j), m0);
  if (tail) m1 = VN::max(_mm512_mask_loadu_ps(VN::set1(-kInf), tail, x + full), m1);
  return VN::max(m0, m1);
}

// One row's sums (Lsm32RowAcc's operations on AVX-512, the same terms):
// sum, the float64 lanes of the others' terms exp(x) 2^-e (the table's
// scale included; NaN reaches them), others8 the lanes' counts of the
// entries below the max (or NaN; the tail's padding too), m the max and
// bias e + X::kBias broadcast.
template <class X>
SSM_INLINE inline void row_set_sums(const X& texp, const float* xr, size_t full, __mmask16 tail, __m512 m,
                                    __m512 bias, __m512d& sum, __m256& others8) {
  using VN = F32x16;
  using VW = F64x8;
  __m512d s0 = VW::set1(0.0), s1 = VW::set1(0.0);
  __m512 others = VN::set1(0.0);
  auto add = [&](__m512 xv) SSM_INLINE {
    const __mmask16 other = VN::not_le(m, xv);  // x < max, or NaN
    __m512 k;
    const __m512 raw = texp.term(VN::max(VN::set1(X::kLow), xv), k);
    const __m512 t = VN::scale2_acc_where(other, raw, VN::sub(k, bias));
    others = VN::add_where(other, others, VN::set1(1.0));
    __m512d lo, hi;
    VN::widen(t, lo, hi);
    s0 = VW::add(s0, lo);
    s1 = VW::add(s1, hi);
  };
  for (size_t j = 0; j < full; j += 16) add(VN::load(xr + j));
  if (tail) add(_mm512_mask_loadu_ps(VN::set1(-kInf), tail, xr + full));
  sum = VW::add(s0, s1);
  others8 = _mm256_add_ps(_mm512_castps512_ps256(others), _mm512_extractf32x8_ps(others, 1));
}

// The float32 spacing at a > 0 (a normal float32 value or above; below,
// a power of two under it): 2^(floor(log2 a) - 23) by getexp, exact. a <= 0
// or NaN give 0 or NaN (nothing certified).
SSM_INLINE inline __m512d ulp32_getexp(__m512d a) {
  return _mm512_scalef_pd(F64x8::set1(1.0), F64x8::sub(_mm512_getexp_pd(a), F64x8::set1(23.0)));
}

// Rows in sets of G = 8 H: the set's chain in H float64 vectors.
template <size_t H>
void log_softmax_rows_sets32(const float* x, float* y, size_t rows, size_t n, unsigned char* flag) {
  using VN = F32x16;
  using VW = F64x8;
  using X = Table32Exp<VN, false, 4, false>;
  constexpr size_t G = 8 * H;
  const X texp;
  // The terms' relative error with the float64 sums' and the division's.
  constexpr double eps = X::kErrUnits * 0x1p-24 + 0x1p-44;
  const double flushed = static_cast<double>(n) * 0x1p-124;
  const size_t full = n - n % 16, vectors = (n + 15) / 16;
  const __mmask16 tail = VN::first(n % 16);
  const size_t ahead = prefetch_distance(rows * n * sizeof(float)) / sizeof(float);
  // Each set's writes (the max and log S, the rows written Narrow and those
  // written at all) go to one of two slots, the previous set's in the
  // other, written while this one is summed.
  alignas(64) double set_mx[2][G], set_v[2][G];
  uint32_t set_ok[2] = {0, 0}, set_narrow[2] = {0, 0};
  size_t prev_r0 = 0, prev_g = 0, cur = 0;
  auto write_prev = [&](size_t l) SSM_INLINE {
    const size_t p = cur ^ 1;
    if (l >= prev_g || !((set_ok[p] >> l) & 1)) return;
    const float* xr = x + (prev_r0 + l) * n;
    float* yr = y + (prev_r0 + l) * n;
    lsm32_write_row<VN>(xr, yr, n, set_mx[p][l], set_v[p][l],
                        (set_narrow[p] >> l) & 1 ? Lsm32Write::Narrow : Lsm32Write::Wide);
  };
  for (size_t r0 = 0; r0 < rows; r0 += G) {
    const size_t g = rows - r0 < G ? rows - r0 : G;
    // The set's maxima (NaN ignored; -inf for no row), eight rows to a
    // float32 vector.
    __m256 mxf[H];
    for (size_t h = 0; h < H; ++h) {
      __m256 lane_max[8];
      for (size_t i = 0; i < 8; ++i) {
        const size_t l = 8 * h + i;
        const __m512 m = l < g ? row_lane_max(x + (r0 + l) * n, n, full, tail, ahead) : VN::set1(-kInf);
        lane_max[i] = _mm256_max_ps(_mm512_castps512_ps256(m), _mm512_extractf32x8_ps(m, 1));
      }
      mxf[h] = across8_ps(lane_max, [](__m256 a, __m256 b) SSM_INLINE { return _mm256_max_ps(a, b); });
    }
    // Lanes beyond kTable32Limit (+-inf, all -inf, no row): flagged, their
    // sums not taken; max 0 and e = 0 for the chain. The max's own term at
    // 2^-e (double-double) and 1 / its high part from the maxima alone:
    // computed while the rows are summed.
    __m512d vmx[H], own_hi[H], own_lo[H], own_inv[H];
    __m512 params[H];
    uint32_t special = 0;
    for (size_t h = 0; h < H; ++h) {
      vmx[h] = _mm512_cvtps_pd(mxf[h]);
      const __mmask8 sp = _mm512_cmp_pd_mask(VW::max(vmx[h], VW::sub(VW::set1(0.0), vmx[h])),
                                             VW::set1(kTable32Limit), _CMP_NLE_UQ);
      special |= static_cast<uint32_t>(sp) << (8 * h);
      const __m512d m = VW::select(sp, VW::set1(0.0), vmx[h]);
      const __m512d e = VW::round(VW::mul(m, VW::set1(kLog2e)));
      exp_hi_lo<VW>(VW::reduce_ln2(m, e), own_hi[h], own_lo[h]);
      own_inv[h] = _mm512_div_pd(VW::set1(1.0), own_hi[h]);
      // Per row: its max and e + kBias as floats (Lsm32RowAcc's m and magic).
      params[h] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(m)),
                                     _mm512_cvtpd_ps(VW::add(e, VW::set1(X::kBias))), 1);
    }
    __m512d part[G];
    __m256 others[G];
    for (size_t l = 0; l < G; ++l) {
      if (!((special >> l) & 1)) {
        const __m512 p = params[l / 8];
        const __m512 row_m = _mm512_permutexvar_ps(_mm512_set1_epi32(static_cast<int>(l % 8)), p);
        const __m512 row_bias = _mm512_permutexvar_ps(_mm512_set1_epi32(static_cast<int>(l % 8 + 8)), p);
        row_set_sums(texp, x + (r0 + l) * n, full, tail, row_m, row_bias, part[l], others[l]);
      } else {
        part[l] = VW::set1(0.0);
        others[l] = _mm256_setzero_ps();
      }
      // Then row l of the previous set, after this row's loads (4 KiB
      // aliasing: lsm32's direct rows).
      write_prev(l);
    }
    uint32_t ok_all = 0, narrow_all = 0;
    for (size_t h = 0; h < H; ++h) {
      const __m512d sum2e = VW::mul(across8_pd(part + 8 * h), VW::set1(1.0 / X::kScale));
      const __m512d other_count =
          _mm512_cvtps_pd(across8_ps(others + 8 * h, [](__m256 a, __m256 b) SSM_INLINE { return _mm256_add_ps(a, b); }));
      // k - 1: the max's own entries less one.
      const __m512d k1 = VW::sub(VW::set1(static_cast<double>(16 * vectors - 1)), other_count);
      const __m512d z0 = VW::add(k1, over_max_term_from<VW>(sum2e, own_hi[h], own_lo[h], own_inv[h]));
      const __mmask8 bad = static_cast<__mmask8>(((special >> (8 * h)) & 0xFF) | VW::notfinite(z0));
      const __m512d z = VW::select(bad, VW::set1(0.0), z0);
      const __m512d v = log1p_table(z);
      // z / (1 + z) from above: rcp14 within 2^-14, the product's rounding.
      const __m512d share =
          VW::mul(VW::mul(z, _mm512_rcp14_pd(VW::add(VW::set1(1.0), z))), VW::set1(1.0 + 0x1p-13));
      const __m512d dv = VW::fmadd(VW::set1(eps), share, VW::fmadd(v, VW::set1(0x1p-30), VW::set1(flushed)));
      const __m512d low = VW::sub(v, dv);
      const __mmask8 wide = VW::not_le(dv, VW::mul(low, VW::set1(1.4 * 0x1p-24)));  // not wide either
      const __mmask8 not_narrow = VW::not_le(VW::add(round_off32<VW>(v), dv), ulp32_getexp(low));
      const __mmask8 ok = static_cast<__mmask8>(~(bad | wide));
      ok_all |= static_cast<uint32_t>(ok) << (8 * h);
      narrow_all |= static_cast<uint32_t>(ok & ~not_narrow & 0xFF) << (8 * h);
      _mm512_store_pd(set_mx[cur] + 8 * h, vmx[h]);
      _mm512_store_pd(set_v[cur] + 8 * h, v);
    }
    set_ok[cur] = ok_all;
    set_narrow[cur] = narrow_all;
    const __mmask16 in_set = static_cast<__mmask16>((1u << g) - 1u);
    _mm_mask_storeu_epi8(flag + r0, in_set, _mm_maskz_set1_epi8(static_cast<__mmask16>(~ok_all), 1));
    prev_r0 = r0;
    prev_g = g;
    cur ^= 1;
  }
  for (size_t l = 0; l < prev_g; ++l) write_prev(l);
}
