"""logsumexp of rows whose exact result is within 1e-11 to 1e-7 of 0, on
every kernel set: there lse = max + log S cancels, and max + log S in
float64 is off by ~1e-16 |max|, far more than ulp(1e-11) in float32.
Short-row groups, single rows (the row path), the strided path and the
weighted one must each recognize such rows and sum them again in
double-double: first in vector lanes (kernels/exp_dd.h), whose error bound
certifies all but extreme rows, then for those in scalar arithmetic
(softmax_rows.h, lse_accurate); the tests below reach each tier. float64's bound near 0
(docs/design.md): 1e-14 relative plus 2^-49 log S absolute, and never
worse than 2^-26 relative (rows below 2^-23 log S take the double-double
sum). References: mpmath at 200 bits from the rows' own values."""

import functools

import mpmath
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core
from tiles import tiles

LENGTHS = (2, 3, 5, 8, 17, 100, 1000)
TARGETS = (1e-11, 1e-9, 1e-7)
PER_TARGET = 3


def exact_lse(row):
    with mpmath.workprec(200):
        return mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in row))


def near_zero_row(rng, n, target, dtype):
    """A row whose exact log-sum-exp has magnitude about target.

    float64: shift a random row by its exact lse, plus target. float32
    cannot shift that finely: after the shift, its largest entry is set to
    log(1 - the other terms) and its second largest stepped over 8193
    neighbouring floats, keeping the pair whose lse (float64, within ~1e-16
    of exact here) is nearest the target in magnitude."""
    row = rng.standard_normal(n) * 2
    if dtype == np.float64:
        return row - float(exact_lse(row)) + target
    row = (row - float(exact_lse(row))).astype(np.float32)
    order = np.argsort(row)
    top, second = order[-1], order[-2]
    terms = np.exp(row.astype(np.float64))
    rest = terms.sum() - terms[top] - terms[second]
    steps = np.arange(-4096, 4097)
    cand = (row[second] + steps * np.spacing(row[second])).astype(np.float32)
    left = 1.0 - rest - np.exp(cand.astype(np.float64))
    usable = left > 0
    top_val = np.log(np.where(usable, left, 1.0)).astype(np.float32)
    lse = np.log(rest + np.exp(cand.astype(np.float64)) + np.exp(top_val.astype(np.float64)))
    score = np.where(usable, np.abs(np.abs(lse) - target), np.inf)
    best = int(np.argmin(score))
    row[second], row[top] = cand[best], top_val[best]
    return row


@functools.lru_cache(maxsize=None)
def cases(dtype):
    """{n: (rows, exact lse)} for every length, shared by the kernel sets."""
    rng = np.random.default_rng(13)
    out = {}
    for n in LENGTHS:
        rows = np.array([near_zero_row(rng, n, t, dtype) for t in TARGETS for _ in range(PER_TARGET)], dtype)
        out[n] = (rows, [exact_lse(r) for r in rows])
    return out


def log_s(row):
    """log sum exp(x - max), the size of the cancelling terms (float64 is enough)."""
    r = np.asarray(row, np.float64)
    return float(np.log(np.exp(r - r.max()).sum()))


def assert_contract(got, exact, dtype, where, rows):
    for i, (g, e) in enumerate(zip(np.asarray(got).ravel(), exact)):
        if dtype == np.float32:
            want = np.float32(float(e))
            ulps = abs(float(g) - float(want)) / float(np.spacing(abs(want)))
            assert ulps <= 1, (where, i, float(g), float(e), ulps)
        else:
            err = abs(mpmath.mpf(float(g)) - e)
            rel = err / abs(e)
            bound = 1e-14 * abs(e) + 2.0**-49 * log_s(rows[i])
            assert err <= bound and rel <= 2.0**-26, (where, i, float(g), float(e), float(rel))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_near_zero(isa, dtype):
    for n, (rows, exact) in cases(dtype).items():
        # The rows really are that close to 0 (else this tests nothing).
        assert max(abs(float(e)) for e in exact) < 2e-7, n
        assert_contract(ssm.logsumexp(rows, axis=-1), exact, dtype, f"batch n={n}", rows)
        single = [ssm.logsumexp(r) for r in rows]
        assert_contract(single, exact, dtype, f"row n={n}", rows)
        strided = ssm.logsumexp(np.ascontiguousarray(rows.T), axis=0)
        assert_contract(strided, exact, dtype, f"strided n={n}", rows)
        res, sgn = ssm.logsumexp(rows, axis=-1, b=np.ones_like(rows), return_sign=True)
        assert np.all(sgn == 1)
        assert_contract(res, exact, dtype, f"weighted n={n}", rows)


# _core.testing.lse_passes: passes of the row path over a near-zero row
# (float32 rows near 0 start with the float64 sum; float64 rows with the
# fast one): that sum, the online one, the vector tier (counted also where
# the float64 sum proves the row beyond its reach and it is skipped), and
# the scalar tier when the vector bound does not certify the result.
# Weighted rows have no first pass.
VECTOR_TIER, SCALAR_TIER = 3, 4


def flagged_row(rng, n, dtype):
    """A near_zero_row (target 1e-10) whose result is well inside the band
    the float64 sums leave to the double-double ones (|lse| < 2^-23 log S)."""
    for _ in range(50):
        row = near_zero_row(rng, n, 1e-10, dtype)
        if abs(float(exact_lse(row))) < 2.0**-25 * log_s(row):
            return row
    raise AssertionError(f"no near-zero row of {n}")


def check_tier(rows, exact, dtype, tier, where, weights=None):
    """Each row through the row path takes `tier` passes, within the contract."""
    got = []
    for i, row in enumerate(rows):
        b = None if weights is None else weights[i]
        lse, passes, ok = _core.testing.lse_passes(row, b)
        assert ok and passes == tier - (b is not None), (where, i, passes)
        got.append(lse)
    assert_contract(np.array(got, dtype), exact, dtype, where, rows)
    return got


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_vector_tier_every_tail(isa, dtype):
    """The vector tier alone certifies rows within 1e-9 of 0 of every length
    that reaches a tail of its loop (2 .. 2 tiles, 3 tiles), unweighted and
    weighted by ones (sign +1), as single rows and as one batch."""
    tile = tiles(isa, dtype)["lse_dd"]
    rng = np.random.default_rng(29)
    sizes = sorted({n for n in range(2, 2 * tile)} | {3 * tile})
    for n in sizes:
        rows = np.array([flagged_row(rng, n, dtype) for _ in range(2)], dtype)
        exact = [exact_lse(r) for r in rows]
        check_tier(rows, exact, dtype, VECTOR_TIER, f"row n={n}")
        check_tier(rows, exact, dtype, VECTOR_TIER, f"weighted row n={n}", np.ones_like(rows))
        # Batches of whole groups and a partial one (the short-row kernels'
        # lanes): 5 copies of the two rows.
        batch = np.tile(rows, (5, 1))
        assert_contract(ssm.logsumexp(batch, axis=-1), exact * 5, dtype, f"batch n={n}", batch)
        res, sgn = ssm.logsumexp(batch, axis=-1, b=np.ones_like(batch), return_sign=True)
        assert np.all(sgn == 1)
        assert_contract(res, exact * 5, dtype, f"weighted batch n={n}", batch)


@functools.lru_cache(maxsize=None)
def long_row(dtype):
    row = flagged_row(np.random.default_rng(31), 5003, dtype)
    return row, exact_lse(row)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_vector_tier_long_row(isa, dtype):
    """One row of 5003 entries within ~1e-10 of 0: the vector tier's sum over
    many vectors per accumulator, the single row and the strided path."""
    row, e = long_row(dtype)
    exact = [e]
    check_tier(row[None, :], exact, dtype, VECTOR_TIER, "long row")
    assert_contract([ssm.logsumexp(row)], exact, dtype, "long row", [row])
    col = np.ascontiguousarray(np.stack([row, row], axis=1))
    assert_contract(ssm.logsumexp(col, axis=0), exact * 2, dtype, "long column", [row, row])


@functools.lru_cache(maxsize=None)
def below_reach_rows():
    """float64 rows whose exact result is the rounding left after shifting
    them by their own log-sum-exp, kept where that is below 2^-56 (about a
    tenth of them): two of each length, with their exact results."""
    rng = np.random.default_rng(37)
    rows = []
    for n in (2, 3, 8, 17, 100, 1000):
        kept = 0
        while kept < 2:
            r = rng.standard_normal(n) * 2
            r = r - float(exact_lse(r))
            if 0 < abs(float(exact_lse(r))) < 2.0**-56:
                rows.append(r)
                kept += 1
    return rows, [exact_lse(r) for r in rows]


def test_below_certificate_float64(isa):
    """float64 rows with 0 < |lse| < 2^-56, below what the vector bound
    (2^-100.6 + 2^-52 |lse|) certifies at 2^-47 relative. Unweighted, their
    result stands on the scalar sum's own bound, (n + 4) 2^-100 absolute,
    which the vector bound is below: the vector tier decides. Weighted (by
    ones), the scalar sum does. Every path."""
    rows, exact = below_reach_rows()
    for n in sorted({r.size for r in rows}):
        sel = [i for i, r in enumerate(rows) if r.size == n]
        batch = np.array([rows[i] for i in sel])
        ex = [exact[i] for i in sel]
        assert_dd_bound(check_tier(batch, ex, np.float64, VECTOR_TIER, f"row n={n}"), ex, batch, f"row n={n}")
        got = check_tier(batch, ex, np.float64, SCALAR_TIER, f"weighted row n={n}", np.ones_like(batch))
        assert_dd_bound(got, ex, batch, f"weighted row n={n}")
        assert_dd_bound(ssm.logsumexp(batch, axis=-1), ex, batch, f"batch n={n}")
        res, sgn = ssm.logsumexp(batch, axis=-1, b=np.ones_like(batch), return_sign=True)
        assert np.all(sgn == 1)
        assert_dd_bound(res, ex, batch, f"weighted batch n={n}")
        assert_dd_bound(ssm.logsumexp(np.ascontiguousarray(batch.T), axis=0), ex, batch, f"strided n={n}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_scalar_tier_forced(isa, dtype):
    """float32 rows reach the scalar tier only below ~2^-68 (no such row
    is practical to build from float32 entries): with the vector tier off
    (a test hook; the row path only), flagged rows go straight to the
    scalar sum, unweighted and weighted by ones, and still meet the
    contract."""
    rng = np.random.default_rng(41)
    rows = [flagged_row(rng, n, dtype) for n in (2, 7, 33, 300) for _ in range(2)]
    exact = [exact_lse(r) for r in rows]
    _core.testing.set_lse_vector_tier(False)
    try:
        for i, r in enumerate(rows):
            check_tier(r[None, :], exact[i : i + 1], dtype, SCALAR_TIER, f"row n={r.size}")
            check_tier(r[None, :], exact[i : i + 1], dtype, SCALAR_TIER, f"weighted n={r.size}", np.ones_like(r)[None, :])
    finally:
        _core.testing.set_lse_vector_tier(True)


def assert_dd_bound(got, exact, rows, where):
    """float64 results of the double-double tiers: within 2^-47 relative, or
    within (n + 4) 2^-100 absolute (the scalar sum's own bound), besides
    the contract."""
    assert_contract(got, exact, np.float64, where, rows)
    for i, (g, e) in enumerate(zip(np.asarray(got).ravel(), exact)):
        err = abs(mpmath.mpf(float(g)) - e)
        assert err <= max(2.0**-47 * abs(e), (rows[i].size + 4) * 2.0**-100), (where, i, float(g), float(e))


@functools.lru_cache(maxsize=None)
def log_probability_cases(isa):
    """{n: (rows, exact lse)}: float64 log-probabilities, np.log of Dirichlet
    rows (|lse| ~ 1e-17 .. 1e-15, the rounding of their sum), and rows
    shifted to |lse| ~ 1e-15 .. 1e-12, at lengths that reach the vector
    tier's tails and the group kernels' sizes."""
    rng = np.random.default_rng(43)
    tile = tiles(isa, np.float64)["lse_dd"]
    out = {}
    for n in sorted({2, 3, 8, 17, 100, 1000, max(tile - 1, 2), tile + 1, 2 * tile + 3}):
        rows = [np.log(rng.dirichlet(np.ones(n))) for _ in range(6)]
        rows += [near_zero_row(rng, n, t, np.float64) for t in (1e-15, 1e-14, 1e-13, 1e-12)]
        out[n] = (np.array(rows), [exact_lse(r) for r in rows])
    return out


def test_log_probabilities_float64(isa):
    """float64 log-probability rows (|lse| 1e-17 .. 1e-12) on every path:
    single rows through the row path (the vector tier decides every one:
    2^-47 relative down to |lse| ~ 2^-53.5, the scalar sum's own bound
    below), the group kernels, the strided path and the weighted one, all
    within what the double-double tiers promise (mpmath at 200 bits)."""
    for n, (rows, exact) in log_probability_cases(isa).items():
        got = []
        for i, row in enumerate(rows):
            lse, passes, ok = _core.testing.lse_passes(row, None)
            assert ok and passes == VECTOR_TIER, (n, i, passes)
            got.append(lse)
        assert_dd_bound(got, exact, rows, f"row n={n}")
        assert_dd_bound(ssm.logsumexp(rows, axis=-1), exact, rows, f"batch n={n}")
        assert_dd_bound(ssm.logsumexp(np.ascontiguousarray(rows.T), axis=0), exact, rows, f"strided n={n}")
        res, sgn = ssm.logsumexp(rows, axis=-1, b=np.ones_like(rows), return_sign=True)
        assert np.all(sgn == 1)
        assert_dd_bound(res, exact, rows, f"weighted batch n={n}")
