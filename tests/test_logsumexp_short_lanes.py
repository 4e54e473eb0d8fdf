"""logsumexp of batches of short rows, one row per vector lane (the short-row
kernels' unweighted path: float32 results certified per lane from the
degree-6 terms, else the group summed again with the degree-11 terms), on
every kernel set: every n from 1 to 3 x the widest group + 1 and the listed
lengths, row counts that are not multiples of the group, special rows at
every position in a group, results near 0 (the certification's fallback),
keepdims / b / return_sign, and bit-identical results for any thread
count."""

import numpy as np
import pytest
from scipy import special

import simdsoftmax as ssm
from reference import assert_lse_close, ref_logsumexp

WIDEST = 16  # float32 rows per group on avx512
LENGTHS = sorted(set(range(1, 3 * WIDEST + 2)) | {64, 96, 100, 128, 256})


def check(x, where):
    out = ssm.logsumexp(x, axis=-1)
    ref = ref_logsumexp(x, dtype=np.longdouble)[0]
    assert out.dtype == x.dtype and out.shape == x.shape[:-1], where
    assert_lse_close(out, ref, where)
    return out


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length(isa, dtype, n):
    rng = np.random.default_rng(n)
    for rows in (2, 7, WIDEST + 3, 2 * WIDEST + 5):
        x = (rng.standard_normal((rows, n)) * 3).astype(dtype)
        check(x, f"n={n} rows={rows}")


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_results_near_zero(isa, dtype, n):
    """Rows shifted so their log-sum-exp is within ~0.05 of 0, where the
    degree-6 terms cannot certify float32 and the group is summed again."""
    rng = np.random.default_rng(100 + n)
    x = rng.standard_normal((67, n))
    lse = np.logaddexp.reduce(x, axis=1)
    x -= (lse - rng.uniform(-0.05, 0.05, 67))[:, None]
    check(x.astype(dtype), f"n={n}")


@pytest.mark.parametrize("n", [2, 3, 8, 16])
def test_pairs_of_groups(isa, dtype, n):
    """float32 groups go two at a time: one row near lse = 0 (its group
    summed again with the degree-11 terms, the other group of the pair
    not) at every seventh position, in batches that end in a pair, a whole
    lone group or a partial one."""
    rng = np.random.default_rng(300 + n)
    for rows in (WIDEST + 1, 2 * WIDEST, 2 * WIDEST + 1, 3 * WIDEST - 1, 4 * WIDEST + 3):
        base = rng.standard_normal((rows, n)) * 2
        for near in range(0, rows, 7):
            x = base.copy()
            x[near] -= np.logaddexp.reduce(x[near]) - 1e-3
            check(x.astype(dtype), f"n={n} rows={rows} near={near}")


@pytest.mark.parametrize("n", [2, 7, 16, 23])
def test_ties_at_the_max(isa, n):
    """float32 groups sum the max's own terms (each exactly 1) with the
    others: rows whose max appears 1 to n times, the others within a few
    units below it or far below, and shifted so the result is near the
    certificate's edge (|lse| ~ 0.03-0.3) or ordinary."""
    rng = np.random.default_rng(500 + n)
    rows = []
    for k in range(1, n + 1):
        for spread in (0.5, 4.0, 60.0):
            row = -rng.uniform(0, spread, n)
            row[rng.permutation(n)[:k]] = 0.0
            rows.append(row)
    x = np.array(rows) + rng.uniform(-3, 3, (len(rows), 1))
    check(x.astype(np.float32), f"n={n} ordinary")
    lse = np.logaddexp.reduce(x, axis=1)
    edge = x - (lse - rng.choice([-1, 1], len(rows)) * rng.uniform(0.03, 0.3, len(rows)))[:, None]
    check(edge.astype(np.float32), f"n={n} near the edge")


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 8, 9, 10, 11, 13, 15, 16, 17, 20, 23, 24])
def test_many_rows_near_small_results(isa, n):
    """float32 groups' first tier (degree-6 terms raised to -708 below the
    max, its log1p range by n) over many rows shifted so the result is near
    0, +-1 and +-2 (where a float32 ulp is smallest against the terms'
    error), and rows with entries 700 to 1000 below their max or -inf
    (the raised terms), against a long double reference, in full groups
    (the whole-block transposes) and a partial last one."""
    rng = np.random.default_rng(900 + n)
    rows = 4001
    for target in (0.0, 1.0, -1.0, 2.0, -2.0):
        x = rng.standard_normal((rows, n)) * rng.choice([0.3, 1.0, 4.0], (rows, 1))
        lse = np.logaddexp.reduce(x, axis=1)
        x -= (lse - target - rng.uniform(-0.06, 0.06, rows))[:, None]
        check(x.astype(np.float32), f"n={n} near {target}")
    x = rng.standard_normal((rows, n)) * 2
    far = rng.random((rows, n)) < 0.4
    x[far] -= rng.uniform(700, 1000, far.sum())
    x[rng.random((rows, n)) < 0.05] = -np.inf
    x[:, 0] = rng.standard_normal(rows)  # a finite max in every row
    check(x.astype(np.float32), f"n={n} far below the max")


SPECIALS = {
    "nan": lambda row: np.put(row, len(row) // 2, np.nan),
    "+inf": lambda row: np.put(row, 0, np.inf),
    "-inf one": lambda row: np.put(row, len(row) - 1, -np.inf),
    "all -inf": lambda row: row.fill(-np.inf),
    "huge": lambda row: row.__iadd__(1e30),
    "tiny": lambda row: row.__imul__(1e-30),
}


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 10, 13, 17])
@pytest.mark.parametrize("kind", list(SPECIALS))
def test_special_row_at_every_position(isa, dtype, n, kind):
    rng = np.random.default_rng(7)
    rows = 2 * WIDEST + 1
    base = rng.standard_normal((rows, n)).astype(dtype)
    for pos in range(WIDEST + 1):
        x = base.copy()
        SPECIALS[kind](x[pos])
        SPECIALS[kind](x[(pos + WIDEST + 1) % rows])
        with np.errstate(invalid="ignore", over="ignore"):
            out = ssm.logsumexp(x, axis=-1)
            ref = ref_logsumexp(x, dtype=np.longdouble)[0]
            expect = special.logsumexp(x, axis=-1)  # SciPy's values for the special rows
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(out[~finite], expect[~finite], err_msg=f"{kind} at {pos}")
        assert_lse_close(out[finite], ref[finite], f"{kind} at {pos}")


@pytest.mark.parametrize("n", [2, 5, 16, 33])
def test_keepdims_weights_sign_axis(isa, dtype, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((3, 19, n)).astype(dtype)
    plain = ssm.logsumexp(x, axis=-1)
    np.testing.assert_array_equal(ssm.logsumexp(x, axis=-1, keepdims=True), plain[..., None])
    res, sgn = ssm.logsumexp(x, axis=2, return_sign=True)
    np.testing.assert_array_equal(res, plain)
    np.testing.assert_array_equal(sgn, np.ones_like(plain))
    b = rng.uniform(-1, 2, x.shape).astype(dtype)
    res, sgn = ssm.logsumexp(x, axis=-1, b=b, return_sign=True)
    ref, ref_sign = ref_logsumexp(x, b=b, dtype=np.longdouble)
    np.testing.assert_array_equal(sgn, ref_sign.astype(dtype))
    assert_lse_close(res[ref_sign != 0], ref[ref_sign != 0])
    xt = np.ascontiguousarray(np.swapaxes(x, 1, 2))
    assert_lse_close(ssm.logsumexp(xt, axis=1), ref_logsumexp(x, dtype=np.longdouble)[0])  # strided: its own kernels


@pytest.mark.parametrize("n", [2, 8, 100])
def test_threads_bit_identical(isa, dtype, n):
    x = np.random.default_rng(n).standard_normal(((1 << 19) // n + 3, n)).astype(dtype)
    x[::97, 0] = -np.inf
    before = ssm.get_num_threads()
    try:
        results = []
        for t in (1, 2, 3):
            ssm.set_num_threads(t)
            results.append(ssm.logsumexp(x, axis=-1))
    finally:
        ssm.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
