"""float64 log_softmax's row path around its pass-1 choice: rows shorter
than 512 start with expsum_top, longer ones with expsum_lse, whose error
bound uses the chunk's own terms per lane. Rows whose lse - max straddles
the certification thresholds (~3.4-4.6), dominant entries and special
values, on every kernel set, in batches (the row kernels; short rows too,
through the batch path) and chunked rows on several threads, against the
long double reference of test_log_softmax_two_pass.py."""

import numpy as np
import pytest
import scipy.special

import simdsoftmax as ssm
from simdsoftmax import _core
from test_log_softmax_two_pass import assert_log_softmax_contract

LENGTHS = [1, 2, 3, 17, 100, 128, 256, 257, 300, 511, 512, 513, 1000, 1024, 4096]


def spread_rows(n, rows, seed):
    """Normal logits with scales from 0.01 to 30: lse - max from ~log n down
    to ~0 (a dominant entry), covering both pass-1 choices' thresholds."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.01, 30.0, rows)[:, None]
    return rng.standard_normal((rows, n)) * scales + rng.uniform(-50, 50, (rows, 1))


@pytest.mark.parametrize("n", LENGTHS)
def test_spreads_within_contract(isa, n):
    x = spread_rows(n, 24, n)
    y = np.full_like(x, 7.0)
    ssm.log_softmax(x, axis=-1, out=y)
    assert_log_softmax_contract(x, y, (isa, n))
    # In place gives the same bits.
    z = x.copy()
    ssm.log_softmax(z, axis=-1, out=z)
    assert np.array_equal(z, y, equal_nan=True), (isa, n)


@pytest.mark.parametrize("n", [2, 5, 300, 511, 1000])
def test_dominant_entry(isa, n):
    """One entry far above the others: y at it is -log1p(small), relative."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((12, n))
    gaps = np.linspace(5.0, 40.0, 12)
    pos = rng.integers(0, n, 12)
    x[np.arange(12), pos] = x.max(axis=1) + gaps + np.log(n)
    y = ssm.log_softmax(x, axis=-1)
    assert_log_softmax_contract(x, y, (isa, n))


@pytest.mark.parametrize("n", [1, 2, 9, 300, 600])
def test_special_rows_every_position(isa, n):
    """NaN, +inf, -inf, all -inf and a single finite entry at each position
    (every tenth for the long rows) give SciPy's values."""
    positions = range(n) if n <= 9 else range(0, n, 37)
    base = np.random.default_rng(3).standard_normal(n)
    rows = []
    for p in positions:
        for value in (np.nan, np.inf, -np.inf):
            r = base.copy()
            r[p] = value
            rows.append(r)
        single = np.full(n, -np.inf)
        single[p] = 1.5
        rows.append(single)
    rows.append(np.full(n, -np.inf))
    x = np.array(rows)
    with np.errstate(invalid="ignore"):
        ref = scipy.special.log_softmax(x, axis=-1)
    y = ssm.log_softmax(x, axis=-1)
    # Rows with NaN or +inf (and all -inf): SciPy's values exactly (NaN, -inf).
    odd = np.isnan(ref).any(axis=1)
    assert np.array_equal(y[odd], ref[odd], equal_nan=True), (isa, n)
    # The others (some -inf entries, a single finite one): the contract.
    assert_log_softmax_contract(x[~odd], y[~odd], (isa, n))


@pytest.mark.parametrize("n", [300, 1000, 4096])
def test_bit_identical_across_threads(isa, small_chunks, n):
    """Chunked rows (chunks of 37) on 1 and 2 threads: the same bits."""
    x = spread_rows(n, 16, 11)
    out = []
    for threads in (1, 2):
        small_chunks(threads)
        out.append(ssm.log_softmax(x, axis=-1))
    assert np.array_equal(out[0], out[1]), (isa, n)
    assert_log_softmax_contract(x, out[0], (isa, n))


def test_single_rows_match_batch(isa):
    """A row alone (no batch kernel) and in a batch: both within contract."""
    for n in (3, 100, 257, 511):
        x = spread_rows(n, 6, n + 1)
        for r in x:
            y = ssm.log_softmax(r)
            assert_log_softmax_contract(r[None, :], y[None, :], (isa, n))
    assert _core is not None


def rows_with_shift(n, shifts, seed):
    """Rows whose v = lse - max is each of `shifts`: an entry 0 (the max)
    and n - 1 entries -|z| + t, t fitted so that their exps sum to e^v - 1
    (t <= 0 for the shifts used: e^v - 1 below the sum of exp(-|z|))."""
    rng = np.random.default_rng(seed)
    rows = []
    for v in shifts:
        rest = -np.abs(rng.standard_normal(n - 1))
        t = np.log(np.expm1(v)) - np.log(np.exp(rest).sum())
        assert t <= 0
        rows.append(np.concatenate(([0.0], rest + t)) + rng.uniform(-30, 30))
    return np.array(rows)


@pytest.mark.parametrize("n", [513, 1000, 4096, 40000])
def test_rows_at_the_certification_boundary(isa, n):
    """lse - max swept finely over 3.2 .. 5.0, where expsum_lse's bound stops
    certifying: on AVX-512 (table exp, one-fma reduction) the boundary moves
    with the terms per lane, ceil(n / 8) here from 65 to 5000
    (short_reduce_slack); rows on either side, certified or not, within
    the contract."""
    x = rows_with_shift(n, np.linspace(3.2, 5.0, 37), n)
    y = ssm.log_softmax(x, axis=-1)
    assert_log_softmax_contract(x, y, (isa, n))
