"""float32 logsumexp of batches of rows of 32 (AVX2) or 28 (AVX-512) to
2047 (AVX2) or 4095 (AVX-512) elements: the short-row kernels'
one-row-at-a-time path (kernels/rows_logsumexp_direct.h) on the kernel sets
with the float32 table exp, each row's max taken in the previous row's loop
over its terms from 257 (AVX2) or 160 (AVX-512) elements on; shorter rows
take the group kernel, longer ones the per-row kernel, and the scalar set
keeps its own paths: every result must meet the same contract.

Per row: a max pass, the table-exp terms added in float32 a block of 4
vectors at a time (64 elements on AVX-512, 32 on AVX2) and certified; rows
the terms cannot certify (|lse| below ~1: no float32 term error of 1.35-1.52
* 2^-24 fits in ulp(lse) = 2^-25 there) or whose max is beyond the table's
range (2^13) are summed again in float64 lanes; rows whose lse cancels near
0, NaN, +-inf and all -inf rows go to the per-row path. Lengths around the
path's bounds and around multiples of the vectors and blocks, row counts
that are not multiples of the 16 or 8 rows of a set (two log1p vectors),
special rows at several positions; against a long double reference (within
1 ulp of the rounded exact result).
"""
import numpy as np
import pytest
from scipy import special

import simdsoftmax as ssm
from reference import assert_lse_close, ref_logsumexp
from test_logsumexp_short_lanes import check  # logsumexp over the last axis against the reference

# The path's bounds +- 1 (32 on AVX2, 28 on AVX-512; 2047 and 4095), the
# fused maxima's (257, 160), every tail of the 8- and 16-lane vectors
# around the 4-vector blocks (32, 64), lengths between.
LENGTHS = [23, 24, 25, 27, 28, 29, 31, 32, 33, 39, 40, 41, 47, 48, 63, 64, 65, 79, 80, 96, 100, 127, 128, 129, 159,
           160, 161, 191, 192, 254, 255, 256, 257, 258, 300, 383, 513, 1000, 1024, 1025, 1500, 2046, 2047, 2048, 2049,
           3000, 4094, 4095, 4096, 4097]
ROWS = [2, 9, 13]


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length(isa, n):
    """Rows of every spread: lse from ~-40 to ~60, lse - max from ~0 to ~log n."""
    rng = np.random.default_rng(n)
    for rows in ROWS:
        scale = np.geomspace(0.01, 30.0, rows)[:, None]
        x = rng.standard_normal((rows, n)) * scale + rng.uniform(-40, 40, (rows, 1))
        x[rows // 2, n // 3] = -np.inf  # a masked entry
        check(x.astype(np.float32), (isa, n, rows))


@pytest.mark.parametrize("n", [32, 33, 64, 100, 160, 255, 300, 2047, 4095])
def test_uncertified_rows(isa, n):
    """Rows shifted so that lse lies in [-2, 2] (most beyond what the table
    terms certify: summed again in float64), down to 1e-3 of 0, and rows of
    a large dynamic range (entries spread over 60 below the max)."""
    rng = np.random.default_rng(200 + n)
    rows = 45
    x = rng.standard_normal((rows, n)) * np.geomspace(0.05, 8.0, rows)[:, None]
    x[::3] = rng.uniform(-60.0, 0.0, (len(x[::3]), n))
    lse = np.logaddexp.reduce(x, axis=1)
    target = np.concatenate([np.linspace(-2.0, 2.0, 37), [1e-3, -1e-3, 0.01, -0.01, 0.3, -0.3, 0.7, 1.2]])
    x -= (lse - target)[:, None]
    check(x.astype(np.float32), (isa, n))


@pytest.mark.parametrize("n", [32, 64, 129, 255, 161, 1000])
def test_beyond_table_range(isa, n):
    """Rows whose max is beyond +-2^13 (the float32 table's range) or near
    it: summed in float64 relative to the max, or certified as usual."""
    rng = np.random.default_rng(300 + n)
    offsets = np.array([8191.0, 8192.0, 8193.0, -8191.0, -8193.0, 1e5, -1e5, 3e7, -3e7, 1e30, -1e30])
    x = rng.standard_normal((len(offsets), n)) * 3.0 + offsets[:, None]
    check(x.astype(np.float32), (isa, n))


KINDS = {
    "ordinary": lambda row: row,
    "beyond the table": lambda row: row.__iadd__(1e5),
    "uncertified": lambda row: row.__isub__(np.logaddexp.reduce(row) - 0.6),
    "near zero": lambda row: row.__isub__(np.logaddexp.reduce(row) - 1e-6),
    "nan": lambda row: np.put(row, len(row) // 3, np.nan),
    "+inf": lambda row: np.put(row, 1, np.inf),
}


@pytest.mark.parametrize("n", [24, 28, 33, 100, 256, 160, 1000, 4095])
def test_mixed_sets(isa, n):
    """Rows go in sets of 16 (AVX-512) or 8 (AVX2) whose results are stored
    at once when all pass: every kind of row at every position of a set
    among ordinary ones, the batch ending in a partial set."""
    rng = np.random.default_rng(400 + n)
    kinds = list(KINDS)
    for shift in range(9):
        x = rng.standard_normal((19, n)) * 2.0
        for r in range(19):
            KINDS[kinds[(r + shift) // 3 % len(kinds)] if (r + shift) % 3 == 0 else "ordinary"](x[r])
        x = x.astype(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            out = ssm.logsumexp(x, axis=-1)
            ref = ref_logsumexp(x, dtype=np.longdouble)[0]
            expect = special.logsumexp(x, axis=-1)
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(out[~finite], expect[~finite], err_msg=f"shift {shift}")
        assert_lse_close(out[finite], ref[finite], (isa, n, shift))


SPECIALS = {
    "nan": lambda row: np.put(row, len(row) - 1, np.nan),
    "+inf": lambda row: np.put(row, len(row) // 2, np.inf),
    "-inf": lambda row: np.put(row, 0, -np.inf),
    "all -inf": lambda row: row.fill(-np.inf),
    "one finite": lambda row: (row.fill(-np.inf), np.put(row, len(row) - 2, -3.0)),
    "near zero": lambda row: row.__isub__(np.logaddexp.reduce(row.astype(np.float64)) - 1e-6),
}


@pytest.mark.parametrize("n", [32, 40, 128, 255, 160, 300, 2047])
@pytest.mark.parametrize("kind", list(SPECIALS))
def test_special_rows(isa, n, kind):
    """A special row at positions 0, 3, 7, 8, 15 and the last of 17 rows
    (both ends of the 16-row and 8-row sets): SciPy's value for it, the contract
    for the others; return_sign is 1 for every ordinary row."""
    rng = np.random.default_rng(n)
    base = (rng.standard_normal((17, n)) * 2.0).astype(np.float32)
    for pos in (0, 3, 7, 8, 15, 16):
        x = base.copy()
        SPECIALS[kind](x[pos])
        with np.errstate(invalid="ignore", over="ignore"):
            out, sgn = ssm.logsumexp(x, axis=-1, return_sign=True)
            ref = ref_logsumexp(x, dtype=np.longdouble)[0]
            expect = special.logsumexp(x, axis=-1)
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(out[~finite], expect[~finite], err_msg=f"{kind} at {pos}")
        assert_lse_close(out[finite], ref[finite], (isa, n, kind, pos))
        np.testing.assert_array_equal(out, ssm.logsumexp(x, axis=-1))
        assert np.all(sgn[finite] == 1), (isa, n, kind, pos)


@pytest.mark.parametrize("n", [32, 45, 100, 200, 1000])
def test_far_below_the_max(isa, n):
    """Entries 0 to 200 below the row max, a quarter of them 82-85 below
    (around the AVX2 terms' clamp, 120 ln2 below 2^floor(max log2 e)), one
    -inf, with the max at offsets up to the table's range: the terms far
    below the max are negligible however the clamp rounds them, and
    nothing wraps around the exponent field."""
    rng = np.random.default_rng(500 + n)
    offsets = np.array([3.0, -5.0, 40.0, -80.0, 1000.0, -1000.0, 8000.0, -8000.0, 8191.0, -8191.0])
    x = -rng.uniform(0.0, 200.0, (len(offsets), n))
    x[:, ::4] = -rng.uniform(82.0, 85.0, (len(offsets), (n + 3) // 4))
    x[:, 1] = 0.0
    x[:, 2] = -np.inf
    x += offsets[:, None]
    check(x.astype(np.float32), (isa, n))


@pytest.mark.parametrize("n", [32, 72, 129, 160, 300, 1000])
def test_neighbouring_rows_apart(isa, n):
    """Neighbouring rows of a set (whose e, log1p and certificate go
    through one vector) with maxima far apart, every row count up to a set
    and a half, rows beyond the table's range at both parities: each row's
    result whatever its neighbours (the same bits beside its own copy and
    with the rows reversed)."""
    rng = np.random.default_rng(600 + n)
    offsets = np.array([60.0, -70.0, -1e5, 2000.0, -5.0, 1e5, 40.0, -8000.0])
    for rows in range(1, 25):
        x = (rng.standard_normal((rows, n)) * 2.0 + np.resize(offsets, rows)[:, None]).astype(np.float32)
        out = check(x, (isa, n, rows))
        if rows == 1 and n >= 160:
            continue  # a lone row this long takes the per-row kernels: other bits within the contract
        # Each row beside another neighbour: its copy, or the rows reversed.
        twice = ssm.logsumexp(np.repeat(x, 2, axis=0), axis=-1)
        np.testing.assert_array_equal(out, twice[::2], err_msg=f"{isa} n={n} rows={rows}")
        np.testing.assert_array_equal(out, ssm.logsumexp(x[::-1].copy(), axis=-1)[::-1], err_msg=f"{isa} n={n}")


@pytest.mark.parametrize("n", [32, 100, 256, 160, 1000, 4095])
def test_at_the_certificate_edge(isa, n):
    """Rows of n equal entries x0 = (i/32 +- 2^-12) ln2, the reduced
    argument of every table entry near its largest |r| (T = 16 and T = 8):
    each term then carries the table entry's rounding and the polynomial's
    truncation with the same sign, and the float32 adds of equal terms are
    exact, so the sum is off by the whole coherent part of the term error
    (about 1.5 * 2^-24 with the degree-3 polynomial). lse = x0 + log n runs
    from 2^-5 to 8: results whose float32 spacing exceeds the certificate's
    bound are kept from the table sum, the others must be summed again
    (float64 lanes or the per-row path). A term error beyond kErrUnits (a
    lower degree, or a coarser table than the bound assumes) leaves results
    here more than 1 ulp off."""
    lo, hi = (2.0**-5 - np.log(n)) / np.log(2), (8.0 - np.log(n)) / np.log(2)
    i = np.arange(np.ceil(lo * 32), np.floor(hi * 32))
    x0 = np.concatenate([(i / 32 - 2.0**-12) * np.log(2), (i / 32 + 2.0**-12) * np.log(2)]).astype(np.float32)
    ref = x0.astype(np.float64) + np.log(n)
    x = np.repeat(x0[:, None], n, axis=1)
    out = ssm.logsumexp(x, axis=-1)
    assert_lse_close(out, ref, (isa, n))
