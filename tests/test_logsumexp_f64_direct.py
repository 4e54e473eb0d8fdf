"""float64 logsumexp of batches of rows of 16 to 256 (511 on AVX-512) elements: the short-row
kernels' one-row-at-a-time path (kernels/rows_logsumexp64_direct.h, every
kernel set), whose rows go W at a time (W = 8 float64 lanes on AVX-512, 4 on
AVX2, 2 on NEON, 1 scalar) for one vector log1p and one certificate per W
rows. Shorter rows take the group kernel, longer ones the per-row kernels:
every result must meet the same contract.

Per row: a max pass; tier 1 sums the terms exp(x - e ln2) plainly and keeps
lse = e ln2 + log S where its error bound is below 2^-47 |lse| (|lse| above
about 0.1 to 1); the other rows (lse nearer 0, NaN) are summed again
relative to the max with the max's own terms counted apart (tier 2), and
those within 2^-23 log S of 0 (near zero), NaN, +-inf, all -inf rows and
maxima beyond 2^20 go to the per-row path. Lengths around the path's bounds
and every tail of the 8-, 4- and 2-lane vectors, row counts that are not
multiples of the set, special rows at every position of a set, rows for
each tier; against the long double reference (SPEC: 1e-14 relative) and,
near 0, mpmath with the bound of docs/design.md (1e-14 relative plus 2^-49
log S absolute, never worse than 2^-26 relative).
"""
import functools

import mpmath
import numpy as np
import pytest
from scipy import special

import simdsoftmax as ssm
from reference import assert_lse_close, ref_logsumexp

# 15 (the group kernel), 16 (128 bytes: the path's threshold) to 3 x 16 + 1,
# every tail near the upper limits (256, 511 on AVX-512; beyond them the row kernels).
LENGTHS = sorted(set(range(15, 50)) | {63, 64, 65, 97, 100, 127, 128, 129, 250, 255, 256, 257, 300, 510, 511, 512,
                                       513})
# Row counts: a partial set (1..7 of 8, 1..3 of 4), exact sets, both.
ROWS = [2, 7, 8, 13]


def check(x, key):
    """logsumexp of the batch x within 1e-14 of the long double reference,
    sign 1; returns it."""
    out, sgn = ssm.logsumexp(x, axis=-1, return_sign=True)
    ref = ref_logsumexp(x, dtype=np.longdouble)[0]
    assert out.dtype == np.float64 and out.shape == x.shape[:-1], key
    assert_lse_close(out, ref, key)
    assert np.all(sgn == 1), key
    return out


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length(isa, n):
    """Rows of every spread and offset: lse from ~-60 to ~65, lse - max from
    ~0 to ~log n; a masked entry in the last, partial vector."""
    rng = np.random.default_rng(n)
    for rows in ROWS:
        scale = np.geomspace(0.05, 40.0, rows)[:, None]
        x = rng.standard_normal((rows, n)) * scale + rng.uniform(-60, 60, (rows, 1))
        x[0, n - 3] = -np.inf
        check(x, (isa, n, rows))


@pytest.mark.parametrize("n", [16, 17, 40, 64, 129, 256])
def test_same_bits_in_any_set(isa, n):
    """A row's result does not depend on the rows beside it in its set of W
    (threads split batches anywhere in whole sets; here every offset)."""
    rng = np.random.default_rng(40 + n)
    x = rng.standard_normal((19, n)) * 3.0
    x[5] += 2.0**21  # a row for the per-row path among them
    whole = ssm.logsumexp(x, axis=-1)
    for start in range(0, 17):
        part = ssm.logsumexp(x[start:start + 2], axis=-1)
        np.testing.assert_array_equal(part, whole[start:start + 2], err_msg=f"{isa} {n} {start}")


def exact_lse(row):
    with mpmath.workprec(200):
        return mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in row))


def log_s(row):
    """log sum exp(x - max): the size of the terms that cancel near lse = 0."""
    return float(np.log(np.exp(row - row.max()).sum()))


def assert_near_zero_contract(got, rows, exact, key):
    """docs/design.md near 0: within 1e-14 relative plus 2^-49 log S, and
    never worse than 2^-26 relative."""
    for i, (g, e) in enumerate(zip(got, exact)):
        err = abs(mpmath.mpf(float(g)) - e)
        assert err <= 1e-14 * abs(e) + 2.0**-49 * log_s(rows[i]), (key, i, float(g), float(e))
        assert err <= 2.0**-26 * abs(e), (key, i, float(g), float(e))


# Targets for lse: tier 1's range down to where it hands rows to tier 2
# (about 0.1 to 1), tier 2's down to the near-zero band (2^-23 log S, below
# ~1e-6) and within it (the per-row path's double-double tiers).
TARGETS = [3.0, -3.0, 1.0, -1.0, 0.5, -0.5, 0.2, -0.2, 0.05, -0.05, 1e-2, -1e-3, 1e-4, -1e-5, 3e-6, 1e-6,
           -1e-7, 1e-9, -1e-11]


@functools.lru_cache(maxsize=None)
def shifted_rows(n):
    """Rows of several spreads shifted by their exact lse onto TARGETS, with
    that exact lse (mpmath, from the rows' float64 values)."""
    rng = np.random.default_rng(500 + n)
    k = len(TARGETS)
    x = rng.standard_normal((k, n)) * np.geomspace(0.1, 6.0, k)[:, None]
    x[1::4] = rng.uniform(-40.0, 0.0, (len(x[1::4]), n))  # a large dynamic range
    x[2::5, n // 2] += 30.0  # one dominant entry: S - 1 tiny
    x = np.array([row - float(exact_lse(row)) + t for row, t in zip(x, TARGETS)])
    return x, tuple(exact_lse(row) for row in x)


@pytest.mark.parametrize("n", [16, 23, 32, 64, 100, 256, 511])
def test_results_near_zero(isa, n):
    """Every tier by |lse|: the plain sums where they certify, the
    max-relative sums below, the per-row path's double-double sums in the
    near-zero band; rows at every position of a few sets."""
    x, exact = shifted_rows(n)
    assert abs(float(exact[-1])) < 2e-11, n  # the band is really reached
    for perm in (np.arange(len(x)), np.arange(len(x))[::-1]):
        got = ssm.logsumexp(x[perm], axis=-1)
        assert_near_zero_contract(got, x[perm], [exact[i] for i in perm], (isa, n))


@pytest.mark.parametrize("n", [16, 33, 128, 256, 300])
def test_maxima_near_the_limits(isa, n):
    """Maxima about the fast range's bound 2^20 (in range: summed here;
    beyond: the per-row path) and large ones; e ln2 far from 0."""
    rng = np.random.default_rng(600 + n)
    lim = 2.0**20
    offsets = np.array([lim - 1.0, lim - 4.0, lim + 1.0, -lim + 1.0, -lim - 1.0, 2.0 * lim, -2.0 * lim, 1e30, -1e30,
                        700.0, -700.0, 745.0, -745.0])
    x = rng.standard_normal((len(offsets), n)) * 3.0
    x -= x.max(axis=1, keepdims=True)
    x += offsets[:, None]
    check(x, (isa, n))


SPECIALS = {
    "nan": lambda r: r.__setitem__(len(r) - 1, np.nan),
    "+inf": lambda r: r.__setitem__(len(r) // 2, np.inf),
    "-inf": lambda r: r.__setitem__(0, -np.inf),
    "all -inf": lambda r: r.fill(-np.inf),
    "one finite": lambda r: (r.fill(-np.inf), r.__setitem__(len(r) - 2, -4.0)),
    "beyond 2^20": lambda r: r.__iadd__(3.0 * 2.0**20),
}


def check_specials(x, key):
    """SciPy's value for the rows whose reference is not finite; the
    contract and sign 1 for the others."""
    with np.errstate(invalid="ignore", over="ignore"):
        got = ssm.logsumexp(x, axis=-1, return_sign=True)
        want = (ref_logsumexp(x, dtype=np.longdouble)[0], special.logsumexp(x, axis=-1))
    ordinary = np.isfinite(want[0])
    assert_lse_close(got[0][ordinary], want[0][ordinary], key)
    assert np.all(got[1][ordinary] == 1), key
    np.testing.assert_array_equal(got[0][~ordinary], want[1][~ordinary], err_msg=str(key))


@pytest.mark.parametrize("n", [16, 25, 64, 256, 257, 511])
@pytest.mark.parametrize("kind", list(SPECIALS))
def test_special_rows_every_position(isa, n, kind):
    """A special row at each position of 11 rows (a set of 8 and a partial
    one; every position of the 1-, 2- and 4-lane sets)."""
    base = np.random.default_rng(700 + n).standard_normal((11, n)) * 3.0
    for pos in range(len(base)):
        x = base.copy()
        SPECIALS[kind](x[pos])
        check_specials(x, (isa, n, kind, pos))


@pytest.mark.parametrize("n", [16, 33, 128, 511])
def test_terms_far_below_the_max(isa, n):
    """Entries about 1020 ln2 (707) below the max, where the terms without
    an exp table raise x to (e - 1020) ln2 so that 2^(n - e) stays a normal
    power of two (lse64_term; raised terms must stay negligible). Distances
    on both sides of it, -inf and huge ones, at maxima from -2^20 to 2^20."""
    dist = np.array([700.0, 706.0, 706.7, 707.0, 707.3, 707.7, 708.0, 708.4, 709.0, 710.0, 720.0, 744.0, 746.0,
                     800.0, 1e4, 1e6, np.inf])
    maxima = [3.0, -3.0, 0.75, 1e5 + 0.3, -1e5 - 0.3, 2.0**20 - 1.0, -(2.0**20) + 1.0, 700.0]
    rng = np.random.default_rng(800 + n)
    x = np.empty((len(maxima) * 3, n))
    for i, m in enumerate(maxima):
        for j in range(3):
            row = x[3 * i + j]
            row[:] = m - rng.choice(dist, n)
            row[rng.integers(n)] = m
            if j == 1:  # a second entry near the max: log S away from 0
                row[rng.integers(n)] = m - 0.5
            if j == 2:  # the far entries sliding over the bound by 1/64
                row[:] = np.where(row < m - 1.0, m - 707.0 + (np.arange(n) % 64 - 32) / 64.0, row)
    check(x, (isa, n))


def test_degree_10_fit_within_its_bound():
    """Lse64Exp10 (the terms of tier 1 without an exp table): the rounded
    coefficients in the header approximate exp to within the 2.5 * 2^-53
    relative that term_err() counts for them, on |r| <= ln2/2 (1 + 2^-10)
    (long double: 2^-64 evaluation, far below the fit's error)."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "csrc/kernels/rows_logsumexp64_direct.h").read_text()
    body = re.search(r"struct Lse64Exp10 \{.*?\{(.*?)\};", text, re.S).group(1)
    coeffs = [float.fromhex(c.strip()) if "0x" in c else float(c) for c in body.split(",")]
    assert len(coeffs) == 11 and coeffs[0] == 1.0
    half = np.log(2.0) / 2 * (1 + 2.0**-10)
    r = np.linspace(-half, half, 200_001).astype(np.longdouble)
    p = np.zeros_like(r)
    for c in coeffs[::-1]:
        p = p * r + np.longdouble(c)
    err = np.abs(p / np.exp(r) - 1).max()
    assert err <= 2.5 * 2.0**-53, float(err) / 2.0**-53
