"""logsumexp of rows whose exact result is within 1e-11 to 1e-7 of 0, on
every kernel set: there lse = max + log S cancels, and max + log S in
float64 is off by ~1e-16 |max|, far more than ulp(1e-11) in float32.
Short-row groups, single rows (the row path), the strided path and the
weighted one must each recognize such rows and sum them again in
double-double (softmax_rows.h, lse_accurate). float64's bound near 0
(docs/design.md): 1e-14 relative plus 2^-49 log S absolute, and never
worse than 2^-26 relative (rows below 2^-23 log S take the double-double
sum). References: mpmath at 200 bits from the rows' own values."""

import functools

import mpmath
import numpy as np
import pytest

import simdsoftmax as ssm

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
