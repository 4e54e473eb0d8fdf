"""float32 log_softmax's first pass with float32 table-exp terms
(expsum_lse32, kernels/expsum_table32.h): its sum within its own error
bound at every tail of its loop, rows on both sides of the lse - max where
that bound stops certifying (so both the pass and the fallback after it
write results), chunked rows and special values, against long double and
50-digit references, on every kernel set that has the pass."""

import numpy as np
import pytest
from test_log_softmax import assert_log_softmax_close

import simdsoftmax as ssm
from reference import assert_log_softmax_rows
from simdsoftmax import _core
from tiles import sizes_for, tiles

MIN_ROW = 32  # softmax_rows.h: kLse32MinRow
FAST_MIN_ROW = 512  # softmax_rows.h: kLse32FastMinRow
# expsum_lse32_fast's err_rest in units of 2^-24 (expsum_table32.h): the
# 16-entry one-float table, and AVX2's 8-entry one of its own scale.
FAST_ERR_REST = {"avx512": 1.35, "avx2": 1.29}


def lse32(x, fast=False):
    """The active set's expsum_lse32 (fast: expsum_lse32_fast) over a float32
    row, or None without it."""
    return _core.testing.lse32_sum(np.ascontiguousarray(x, dtype=np.float32), fast=fast)


def has_lse32(isa, fast=False):
    return ("expsum_lse32_fast" if fast else "expsum_lse32") in tiles(isa, "float32")


def kernel_sizes(isa, fast=False):
    """1 .. 3 vectors + 1, and every tail of the loop's block, also after
    the shortest row the driver hands the pass (MIN_ROW, FAST_MIN_ROW)."""
    t = tiles(isa, "float32")
    lanes, block = t["lanes"], t["expsum_lse32_fast" if fast else "expsum_lse32"]
    sizes = set(range(1, 3 * lanes + 2)) | set(sizes_for(block))
    sizes |= {(FAST_MIN_ROW if fast else MIN_ROW) + k for k in range(2 * block + 1)}
    return sorted(sizes)


def rows_with_shift(rng, n, v):
    """N(0, 1) logits whose entry 0 is moved so that lse - max is about v:
    v = log(1 + sum over the others of exp(x_i - x_0)) where x_0 stays the
    max (for large v and short rows it cannot: it is then the others' max)."""
    x = rng.standard_normal(n).astype(np.longdouble)
    rest = x[1:]
    top = rest.max()
    others = np.log(np.exp(rest - top).sum()) + top  # lse of the others
    x[0] = max(others - np.log(np.expm1(np.longdouble(v))), top)
    return x.astype(np.float32)


def exact_shift(x):
    """lse - max of a float32 row in long double."""
    return float(np.log(exact_sum(x)[1]))


def exact_sum(x):
    """(max, sum exp(x - max)) in long double; -inf entries contribute 0."""
    xl = x.astype(np.longdouble)
    top = xl.max()
    return top, np.exp(xl - top).sum()


@pytest.mark.parametrize("fast", [False, True])
def test_lse32_sum_within_its_bound(isa, fast):
    """m * 2^e is sum exp(x) within err + err_rest * (1 - exp(-v)) relative,
    for every tail of the loop, spreads that put lse - max on either side of
    the threshold, and masked entries (fast: expsum_lse32_fast, err_rest
    1.35 * 2^-24, AVX2 1.29 * 2^-24)."""
    if not has_lse32(isa, fast):
        assert lse32(np.zeros(4, np.float32), fast) is None
        pytest.skip(f"{isa} has no such float32 table-exp pass")
    rng = np.random.default_rng(32)
    for n in kernel_sizes(isa, fast):
        for scale in (0.1, 1.0, 4.0, 40.0):
            x = (rng.standard_normal(n) * scale + rng.uniform(-50, 50)).astype(np.float32)
            if n > 3:
                x[rng.integers(n)] = -np.inf
            m, m_lo, e, top, err, err_rest, _, _ = lse32(x, fast)
            assert not fast or err_rest == FAST_ERR_REST[isa] * 2.0**-24
            ref_max, s = exact_sum(x)
            assert top == ref_max, (n, scale)
            got = (np.longdouble(m) + np.longdouble(m_lo)) * np.exp2(np.longdouble(e) - 0) / np.exp(ref_max)
            v = float(np.log(s))
            bound = (err + err_rest * -np.expm1(-v)) * s
            assert abs(got - s) <= bound, (n, scale, float(got), float(s), float(bound))


NARROW, WIDE = 1, 2  # lse32_sum's certified: the float32 write, the float64 one


@pytest.mark.parametrize("fast", [False, True])
def test_lse32_certifies_above_its_threshold_only(isa, fast):
    """Rows with lse - max from 0.3 to 6: the pass certifies the float32
    write for the large ones (above ~2.0, AVX2 ~2.3; fast: ~2.5) and the
    float64 write for the small ones; the log_softmax written either way is
    within the contract (fast: rows of FAST_MIN_ROW and every tail of a block
    after it, which the driver starts with it)."""
    rng = np.random.default_rng(33)
    seen = set()
    narrow, wide = (2.9, 2.0) if fast else (2.6, 1.8)
    sizes = (MIN_ROW, 100, 131, 256, 1000, 4097)
    if fast:
        block = tiles(isa, "float32").get("expsum_lse32_fast", 16)
        sizes = sorted({FAST_MIN_ROW - 1, 1000} | {FAST_MIN_ROW + k for k in range(block + 1)})
    for n in sizes:
        for v in (0.3, 1.0, 1.8, 2.0, 2.1, 2.2, 2.3, 2.4, 2.6, 2.9, 3.0, 6.0):
            x = rows_with_shift(rng, n, v)[None, :]
            exact = exact_shift(x[0])
            if has_lse32(isa, fast):
                certified, shift = lse32(x[0], fast)[6:]
                seen.add(certified)
                assert certified in (NARROW, WIDE), (n, exact)
                if exact >= narrow:
                    assert certified == NARROW, (n, exact)
                if exact <= wide:
                    assert certified == WIDE, (n, exact)
                budget = 2.0**-25 if certified == NARROW else 1.4 * 2.0**-24
                assert abs(shift - exact) <= budget * exact, (n, exact)
            y = np.empty_like(x)
            assert _core.log_softmax(x, y).size == 0
            assert_log_softmax_close(x, y, f"n={n} v={v}")
    if has_lse32(isa, fast):
        assert seen == {NARROW, WIDE}


@pytest.mark.parametrize("top", [2.0, 8.0, 14.0, 18.0, 30.0])
def test_lse32_confident_rows(isa, top):
    """A confident top entry (N(0, 1) logits with one at `top`, lse - max
    from ~0.2 down to ~1e-10): the float64 write where the sum certifies it
    (down to lse - max ~ 2e-8), else the exact path; every tail of the write
    (float64 lanes), within 2 ulp of long double and (short rows) of
    50 digits."""
    rng = np.random.default_rng(37)
    t = tiles(isa, "float32")
    sizes = {MIN_ROW, 1000, 4099}
    if "write_shift_wide" in t:
        sizes |= {MIN_ROW + k for k in range(t["write_shift_wide"] + 1)}
    for n in sorted(sizes):
        x = rng.standard_normal((3, n)).astype(np.float32)
        x[np.arange(3), rng.integers(n, size=3)] = top
        x[2] += np.float32(-37.25)
        if has_lse32(isa):
            exact = exact_shift(x[0])
            certified = lse32(x[0])[6]
            if 1e-7 < exact < 1.8:
                assert certified == WIDE, (n, top, exact)
        y = ssm.log_softmax(x, axis=-1)
        assert_log_softmax_close(x, y, f"n={n} top={top}")
        if n <= 2 * MIN_ROW:
            assert_log_softmax_rows(x, y, 2 * 2.0**-23, np.float32, f"n={n} top={top}")


def test_lse32_rows_against_50_digits(isa):
    """Certified rows, each value within 2 ulp + 2^-25 relative of
    x_i - lse(x) in 50-digit arithmetic."""
    rng = np.random.default_rng(34)
    x = np.stack([rows_with_shift(rng, 200, v) for v in (2.2, 2.5, 4.0)])
    y = ssm.log_softmax(x, axis=-1)
    assert_log_softmax_rows(x, y, 2 * 2.0**-23, np.float32, "rows of 200")


@pytest.mark.parametrize("n", [MIN_ROW, 1000, 4099])
def test_lse32_chunked_rows(isa, small_chunks, n):
    """Rows cut into chunks of 37: every chunk's sum corrects its own max's
    term; rows certified or not (at 1000 and 4099 on AVX-512 by
    expsum_lse32_fast, 3e-6 after a retry with expsum_lse32), every thread
    count, the same bits."""
    rng = np.random.default_rng(35)
    x = np.stack([rows_with_shift(rng, n, v) for v in (1e-9, 3e-6, 0.5, 2.2, 3.0, 6.0)])
    x[5, 5] = -np.inf
    outs = []
    for threads in (1, 2):
        small_chunks(threads)
        y = np.empty_like(x)
        assert _core.log_softmax(x, y).size == 0
        assert_log_softmax_close(x, y, f"n={n} threads={threads}")
        outs.append(y)
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("n", [MIN_ROW, 257, 515])
def test_lse32_special_values(isa, n):
    """NaN, +-inf, all -inf, one finite entry, maxima around the pass's range
    limit (2^13) and the chunk's empty-sum limit, against SciPy's values
    (515: expsum_lse32_fast's rows on AVX-512)."""
    scipy_special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(36)
    base = (rng.standard_normal(n) * 2).astype(np.float32)
    rows = []
    for k, special in enumerate((np.nan, np.inf, -np.inf)):
        r = base.copy()
        r[(7 * k + 3) % n] = special
        rows.append(r)
    rows.append(np.full(n, -np.inf, np.float32))
    one = np.full(n, -np.inf, np.float32)
    one[n // 2] = 3.5
    rows.append(one)
    for shift in (8190.0, 8200.0, -8190.0, -8200.0, -10500.0, -20000.0, 1e30):
        rows.append((base + np.float32(shift)).astype(np.float32))
    x = np.stack(rows)
    with np.errstate(invalid="ignore"):
        y = ssm.log_softmax(x, axis=-1)
        ref = scipy_special.log_softmax(x.astype(np.float64), axis=-1)
    assert np.array_equal(np.isnan(y), np.isnan(ref))
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(y), fin)
    assert np.array_equal(y[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)].astype(np.float32))
    finite_rows = [i for i, r in enumerate(rows) if np.isfinite(r).any() and not (np.isnan(r) | np.isposinf(r)).any()]
    assert_log_softmax_close(x[finite_rows], y[finite_rows], f"n={n}")


@pytest.mark.parametrize("threads", [1, 2])
def test_lse32_copy_same_bits_as_in_place(isa, small_chunks, threads):
    """Where the set copies x to y in pass 1 (expsum_lse32_copy: out= not x,
    rows that stay cached), the values are those of the in-place call (no
    copy) bit for bit, at every tail of the pass's loop, for rows the float32
    write certifies, rows the float64 write does, rows that take the exact
    path and special rows (SciPy's values; x untouched); chunked or not, on
    any thread count."""
    if not has_lse32(isa):
        pytest.skip("no float32 table-exp pass")
    rng = np.random.default_rng(37)
    for n in [k for k in kernel_sizes(isa) if k >= MIN_ROW] + [99, 100, 101, 1000]:
        small_chunks(threads)
        if n < 100:  # also unchunked rows (the defaults chunk none of these)
            _core.testing.set_chunking(1 << 16, 1 << 18)
        rows = [rows_with_shift(rng, n, v) for v in (1e-9, 0.5, 3.0, 6.0)]
        for at, special in ((0, np.nan), (n - 1, np.inf), (n // 2, -np.inf)):
            r = rng.standard_normal(n).astype(np.float32)
            r[at] = special
            rows.append(r)
        x = np.stack(rows)
        x_before = x.copy()
        with np.errstate(invalid="ignore"):
            y = ssm.log_softmax(x, axis=-1, out=np.empty_like(x))
            z = x.copy()
            ssm.log_softmax(z, axis=-1, out=z)
        assert np.array_equal(x, x_before, equal_nan=True)
        assert np.array_equal(y, z, equal_nan=True), f"n={n} threads={threads}"
        ok = [0, 1, 2, 3, 6]
        assert_log_softmax_close(x[ok], y[ok], f"n={n}")


def test_lse32_copy_offered_on_avx2_only(isa):
    """The copy is a tuning of the AVX2 set (its pass 1 costs no more than
    softmax's; on AVX-512 the store lengthened the exp-bound pass)."""
    assert ("expsum_lse32_copy" in tiles(isa, "float32")) == (isa == "avx2")
    assert "expsum_lse32_copy" not in tiles(isa, "float64")
