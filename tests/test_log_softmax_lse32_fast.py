"""float32 log_softmax's cheaper first pass where a kernel set offers it
(expsum_lse32_fast: the float32 table exp with one float per entry, a scaled
table, kernels/expsum_table32.h) and the fallback after it: rows it leaves
to expsum_lse32 (lse - max in the band between the two bounds' reach) and
rows beyond both, against long double and 50-digit references. (Its sum within its bound at every tail of its loop, the writes
it certifies, chunked rows and special values: test_log_softmax_table32.py,
at row lengths that take this pass.)"""

import numpy as np
import pytest
from test_log_softmax import assert_log_softmax_close
from test_log_softmax_table32 import FAST_MIN_ROW, WIDE, has_lse32, lse32, rows_with_shift

import simdsoftmax as ssm
from reference import assert_log_softmax_rows
from simdsoftmax import _core
from tiles import tiles

def has_fast(isa):
    return has_lse32(isa, fast=True)


def row_sizes(isa):
    """Rows the driver starts with the pass: FAST_MIN_ROW and every tail of
    a block after it (on sets without the pass, the same rows and 1000)."""
    t = tiles(isa, "float32")
    block = t.get("expsum_lse32_fast", t["lanes"])
    return sorted({FAST_MIN_ROW - 1, 1000} | {FAST_MIN_ROW + k for k in range(block + 1)})


def test_fast_offered_on_avx512_and_avx2(isa):
    """A tuning of the AVX-512 and AVX2 sets (their pass 1 is bound by its
    arithmetic); float32 only."""
    assert has_fast(isa) == (isa in ("avx512", "avx2"))
    assert (lse32(np.zeros(4, np.float32), True) is None) == (not has_fast(isa))
    assert "expsum_lse32_fast" not in tiles(isa, "float64")


@pytest.mark.parametrize("v", [3e-6, 1e-9])
def test_fast_fallback_rows(isa, v):
    """A confident top entry with lse - max = v: at 3e-6 (rows of 1000 and
    more) the pass cannot certify the float64 write but expsum_lse32 can,
    and the driver predicts so (lse32_retry); at 1e-9 neither can, and the
    driver goes on without expsum_lse32. Either way what log_softmax writes is
    within 2 ulp of long double, and of 50 digits for a few rows."""
    rng = np.random.default_rng(54)
    for n in row_sizes(isa):
        x = np.stack([rows_with_shift(rng, n, v) for _ in range(2)])
        if has_fast(isa) and n >= 1000:
            for row in x:
                m, m_lo, e, top, err, err_rest, certified, _ = lse32(row, True)
                assert certified == 0, (n, v)
                retry = _core.testing.lse32_retry(m, m_lo, e, top, err, err_rest)
                accurate = lse32(row, False)[6]
                assert retry == (v > 1e-7), (n, v)
                assert accurate == (WIDE if v > 1e-7 else 0), (n, v)
        y = ssm.log_softmax(x, axis=-1)
        assert_log_softmax_close(x, y, f"n={n} v={v}")
        if n == FAST_MIN_ROW:
            assert_log_softmax_rows(x[:1], y[:1], 2 * 2.0**-23, np.float32, f"n={n} v={v}")


def in_place(x):
    """log_softmax of x's rows written over a copy of x: no copy pass, so
    rows of FAST_MIN_ROW and more start with expsum_lse32_fast where the set
    offers it (AVX2 takes expsum_lse32_copy for rows that stay cached when
    y is another array)."""
    z = x.copy()
    with np.errstate(invalid="ignore"):
        ssm.log_softmax(z, axis=-1, out=z)
    return z


def copied(x):
    """log_softmax of x's rows into another array: rows that stay cached take
    the copy in pass 1 where the set offers it (AVX2), from FAST_MIN_ROW with
    the one-float table (expsum_lse32_copy_fast), whose values must be the
    in-place ones (expsum_lse32_fast) bit for bit; x stays untouched."""
    before = x.copy()
    with np.errstate(invalid="ignore"):
        y = ssm.log_softmax(x, axis=-1, out=np.empty_like(x))
    assert np.array_equal(x, before, equal_nan=True)
    assert np.array_equal(y, in_place(x), equal_nan=True)
    return y


WRITERS = {"in_place": in_place, "copied": copied}


def test_copy_fast_offered_where_copy_and_fast_are(isa):
    t = tiles(isa, "float32")
    assert ("expsum_lse32_copy_fast" in t) == ("expsum_lse32_copy" in t and "expsum_lse32_fast" in t)
    assert ("expsum_lse32_copy_fast" in t) == (isa == "avx2")
    assert "expsum_lse32_copy_fast" not in tiles(isa, "float64")


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("threads", [1, 2])
def test_fast_rows_in_place(isa, writer, threads, restore_settings):
    """Rows of FAST_MIN_ROW and every tail of a block after it, and of
    1000: spreads and shifts on both sides of the float32 write's threshold,
    a confident top entry (lse - max from 1e-9 to 0.05), entries far below
    the max (85 to 90 below: around the flush of a term, AVX2's clamp)
    and -inf, within 2 ulp of long double; written in place or into another
    array (copied: the in-place bits), on 1 and 2 threads."""
    ssm.set_num_threads(threads)
    rng = np.random.default_rng(55)
    for n in row_sizes(isa):
        rows = [(rng.standard_normal(n) * s + o).astype(np.float32) for s, o in ((0.01, 0), (1, 3000), (30, -700))]
        rows += [rows_with_shift(rng, n, v) for v in (1e-9, 3e-6, 0.05, 0.5, 2.2, 6.0)]
        far = rows_with_shift(rng, n, 0.3)
        far[1::3] = far.max() - rng.uniform(85.0, 90.0, len(far[1::3])).astype(np.float32)
        far[2::7] = -np.inf
        rows.append(far)
        x = np.stack(rows)
        assert_log_softmax_close(x, WRITERS[writer](x), f"n={n}")


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("n", [FAST_MIN_ROW + 33, 1000])
def test_fast_special_entry_at_every_position(isa, n, writer):
    """One NaN, +inf, -inf or dominant entry at every position of a row
    (every lane and vector of the pass's block, the tail): NaN rows give
    NaN, +inf rows SciPy's values, the others within 2 ulp of long double;
    in place or copied (the in-place bits)."""
    rng = np.random.default_rng(56)
    base = (rng.standard_normal(n) * 3).astype(np.float32)
    for special in (np.nan, np.inf, -np.inf, 40.0):
        x = np.tile(base, (n, 1))
        x[np.arange(n), np.arange(n)] = special
        y = WRITERS[writer](x)
        if np.isnan(special):
            assert np.isnan(y).all()
        elif special == np.inf:
            assert np.isnan(y[np.arange(n), np.arange(n)]).all()
            off = ~np.eye(n, dtype=bool)
            assert (y[off] == -np.inf).all()
        else:
            assert_log_softmax_close(x, y, f"n={n} special={special}")

