"""float64 log_softmax of batches of rows of 16 to 256 elements on the
one-row-at-a-time path (kernels/rows_log_softmax_direct.h), whose terms are
exp(x - e ln2) with e = round(max log2 e), x - n ln2 reduced exactly, and
the others' sum divided by the max's own term (taken once per row to
double-double): maxima near the path's limit 2^20 (beyond it the per-row
path takes the row), entries below the exp's clamp -2^21, maxima at the
edges of the max's reduction (max log2 e near a half-integer), ties at the
max, dominant entries far from 0, special rows with such rows at every
position of a set of rows; against the long double reference of
test_log_softmax_two_pass.py, on every kernel set; a row's result does not
depend on its place in the batch (rotating the rows gives the same bits).
"""
import numpy as np
import pytest
import scipy.special

import simdsoftmax as ssm
from simdsoftmax import _core
from test_log_softmax_f64_direct import check_batch
from test_log_softmax_two_pass import assert_log_softmax_contract

LIMIT = 2.0**20  # kFastLimit
LN2 = float(np.log(2.0))


def lanes(isa):
    return _core.testing.tiles(isa, "float64")["lanes"]


def lengths(w):
    """The path's first length (128 bytes), a tail of every size around two
    vectors, both sides of 4 KiB sets of W rows (written overlapped with the
    next set's sums from there: 64 on AVX-512, 128 on AVX2, 256 on NEON),
    its upper limit."""
    return sorted({16, 2 * w - 1 + 16, 2 * w + 16, 2 * w + 17, 63, 64, 100, 127, 128, 255, 256})


def row_counts(w):
    return sorted({1, w - 1 if w > 1 else 2, w + 1, 2 * w + 3})


def check_rotated(x, key):
    """Within contract, in place the same bits, and each row the same bits
    wherever it sits in the batch."""
    y = check_batch(x, key)
    if x.shape[0] > 1:
        y2 = check_batch(np.roll(x, 1, axis=0), key)
        assert np.array_equal(np.roll(y, 1, axis=0), y2), key
    return y


def near_limit_rows(rng, rows, n):
    """Maxima just inside and just outside +-2^20 and at 2^20 - 0.5 ln2 (the
    reduction at its widest), the others spread below them."""
    tops = [LIMIT, -LIMIT, np.nextafter(LIMIT, 0), np.nextafter(LIMIT, np.inf), -np.nextafter(LIMIT, np.inf),
            LIMIT - 0.5 * LN2, 3.0e6, -3.0e6]
    x = rng.standard_normal((rows, n)) * 3.0
    for r in range(rows):
        top = tops[r % len(tops)]
        x[r] += top - x[r].max()
    return x


@pytest.mark.parametrize("kind", ["near_limit", "below_clamp", "half_ln2", "ties", "dominant_far"])
def test_scaled_rows(isa, kind):
    w = lanes(isa)
    for n in lengths(w):
        for rows in row_counts(w):
            rng = np.random.default_rng([n, rows, len(kind)])
            if kind == "near_limit":
                x = near_limit_rows(rng, rows, n)
            elif kind == "below_clamp":
                # max near -2^20, entries below -2^21 (their terms are 0),
                # one -inf; a row with the max at the vector tail.
                x = rng.standard_normal((rows, n)) - LIMIT + 5.0
                x[:, 1::3] = -2.0**21 - rng.uniform(0, 1e3, (rows, len(range(1, n, 3))))
                x[:, 2] = -np.inf
                x[0, n - 1] = -LIMIT + 40.0
            elif kind == "half_ln2":
                # max log2 e at k + 1/2 give or take an ulp: r = max - e ln2
                # at +-ln2/2, the max's own term at the edge of its range.
                k = rng.integers(-1000, 1000, rows).astype(np.float64) + 0.5
                tops = k * LN2 + rng.choice([-1, 0, 1], rows) * np.spacing(k * LN2)
                x = tops[:, None] - np.abs(rng.standard_normal((rows, n))) * rng.uniform(0.1, 30.0, (rows, 1))
                x[np.arange(rows), rng.integers(n, size=rows)] = tops
            elif kind == "ties":
                # k = 1..4 copies of the max: S - 1 = (k - 1) + rest.
                x = rng.standard_normal((rows, n)) * 2.0 + rng.uniform(-500, 500, (rows, 1))
                for r in range(rows):
                    cols = rng.choice(n, size=1 + r % 4, replace=False)
                    x[r, cols] = x[r].max() + 1.0
            else:
                # One entry 3 to 40 above the others' lse, far from 0 (the
                # reduction's n up to ~1.4e6): y there is -log1p(small).
                x = rng.standard_normal((rows, n)) * 2.0
                top = rng.integers(n, size=rows)
                others = np.where(np.arange(n) == top[:, None], -np.inf, x)
                lse = np.log(np.exp(others).sum(axis=1))
                x[np.arange(rows), top] = lse + np.linspace(3.0, 40.0, rows)
                x += rng.choice([-9.5e5, -3.3e3, 0.0, 7.1e2, 9.9e5], rows)[:, None]
            check_rotated(x, (isa, kind, n, rows))


@pytest.mark.parametrize("n", [16, 17, 63, 256])
def test_special_rows_among_scaled(isa, n):
    """NaN, +inf, all -inf, a single finite entry and a max beyond 2^20 at
    every position of a batch of 2W + 1 rows whose other rows sit near the
    limit: SciPy's values for the special rows, the contract for the rest."""
    w = lanes(isa)
    rows = 2 * w + 1
    rng = np.random.default_rng(n)
    base = near_limit_rows(rng, rows, n)
    kinds = {
        "nan": lambda r: r.__setitem__(n - 1, np.nan),
        "+inf": lambda r: r.__setitem__(n // 2, np.inf),
        "all -inf": lambda r: r.fill(-np.inf),
        "one finite": lambda r: (r.fill(-np.inf), r.__setitem__(n - 2, 1.5e6)),
        "beyond": lambda r: r.__setitem__(0, 4.0e7),
    }
    for name, make in kinds.items():
        for p in range(rows):
            x = base.copy()
            make(x[p])
            y = check_rotated(x, (isa, n, name, p)) if name in ("one finite", "beyond") else None
            if y is None:
                y = np.full_like(x, 7.0)
                with np.errstate(invalid="ignore", over="ignore"):
                    ssm.log_softmax(x, axis=-1, out=y)
                    want = scipy.special.log_softmax(x, axis=-1)
                assert np.array_equal(y[p], want[p], equal_nan=True), (isa, n, name, p)
                keep = np.arange(rows) != p
                assert_log_softmax_contract(x[keep], y[keep], (isa, n, name, p))
