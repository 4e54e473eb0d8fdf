"""float64 log_softmax of batches of rows of 128 bytes (16 elements) to 256
elements: the short-row kernels' one-row-at-a-time path
(kernels/rows_log_softmax_direct.h, every kernel set), whose rows go W at
a time (W = 8 float64 lanes on AVX-512, 4 on AVX2, 2 on NEON, 1 scalar) for
one vector log1p per W rows. Every length from 16 to 3 x 16 + 1 and every tail of the
longer ones, batches that end in a partial set of rows, special rows at
every position of a set, dominant entries, in place; on every kernel set,
against the long double reference of test_log_softmax_two_pass.py.
"""
import numpy as np
import pytest
import scipy.special

import simdsoftmax as ssm
from test_log_softmax_two_pass import assert_log_softmax_contract

# From 16 (128 bytes, the path's threshold) to 3 x 16 + 1, then every tail
# size of the 8- and 4-lane vectors near the upper limit (256; 257 takes the
# row kernels).
LENGTHS = sorted(set(range(16, 50)) | {63, 64, 65, 97, 127, 128, 129, 250, 255, 256})
# Row counts: a partial set of rows (1..7 of 8), exact sets, and both.
ROWS = [1, 3, 8, 13]


def check_batch(x, key):
    """log_softmax of the batch x within contract, the same bits in place;
    returns it."""
    y = np.full_like(x, 7.0)
    ssm.log_softmax(x, axis=-1, out=y)
    assert_log_softmax_contract(x, y, key)
    z = x.copy()
    ssm.log_softmax(z, axis=-1, out=z)
    assert np.array_equal(z, y), key
    return y


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length(isa, n):
    rng = np.random.default_rng(n)
    for rows in ROWS:
        scale = np.geomspace(0.05, 40.0, rows)[:, None]  # lse - max from ~log n down to ~0
        x = rng.standard_normal((rows, n)) * scale + rng.uniform(-60, 60, (rows, 1))
        if n > 20:
            x[0, n - 3] = -np.inf  # a masked entry in the last, partial vector
        check_batch(x, (isa, n, rows))


@pytest.mark.parametrize("n", [16, 17, 31, 100, 256])
def test_dominant_entry(isa, n):
    """One entry 1 to 40 above the others' log-sum-exp: y there is
    -log1p(small) to 4 eps relative, at every position of a set of rows."""
    rng = np.random.default_rng(60 + n)
    rows = 19
    x = rng.standard_normal((rows, n)) * 2.0
    top = rng.integers(n, size=rows)
    others = np.where(np.arange(n) == top[:, None], -np.inf, x)
    lse_others = np.log(np.exp(others).sum(axis=1))
    x[np.arange(rows), top] = lse_others + np.linspace(1.0, 40.0, rows)
    y = ssm.log_softmax(x, axis=-1)
    assert_log_softmax_contract(x, y, (isa, n))


@pytest.mark.parametrize("n", [16, 25, 33, 256])
def test_special_rows_every_position(isa, n):
    """NaN (in the row's tail), +inf, all -inf and one finite entry, in each
    row of 11 (a set of 8 and a partial one; every position on 1-, 2- and
    4-lane sets): SciPy's values for the special row, the contract for the
    others."""
    rng = np.random.default_rng(n)
    base = rng.standard_normal((11, n)) * 3.0
    kinds = {
        "nan": lambda r: r.__setitem__(n - 1, np.nan),
        "+inf": lambda r: r.__setitem__(n // 2, np.inf),
        "all -inf": lambda r: r.fill(-np.inf),
        "one finite": lambda r: (r.fill(-np.inf), r.__setitem__(n - 2, -4.0)),
    }
    for name, make in kinds.items():
        for p in range(base.shape[0]):
            x = base.copy()
            make(x[p])
            y = ssm.log_softmax(x, axis=-1)
            with np.errstate(invalid="ignore"):
                want = scipy.special.log_softmax(x, axis=-1)
            if name in ("nan", "+inf", "all -inf"):
                assert np.array_equal(y[p], want[p], equal_nan=True), (isa, n, name, p)
                keep = np.arange(x.shape[0]) != p
                assert_log_softmax_contract(x[keep], y[keep], (isa, n, name, p))
            else:
                assert_log_softmax_contract(x, y, (isa, n, name, p))


@pytest.mark.parametrize("n", [16, 17, 23, 24, 31, 32, 33, 40])
def test_tied_max(isa, n):
    """The max held by 1 to 4 entries (k, counted apart from the others'
    terms), one of them in the last, partial vector, the others far below or
    near: rows of 2 to 5 vectors, on both sides of the tree-summed short rows
    (up to 4 vectors)."""
    rng = np.random.default_rng(200 + n)
    rows = 13
    x = rng.standard_normal((rows, n)) * np.geomspace(0.1, 20.0, rows)[:, None]
    top = x.max(axis=1) + rng.uniform(0.0, 30.0, rows)
    for r in range(rows):
        ties = rng.choice(n - 1, size=r % 4, replace=False)
        x[r, ties] = top[r]
        x[r, n - 1] = top[r]
    check_batch(x, (isa, n))
