"""float32 softmax of rows of two entries (rows_generic.h softmax_rows_two
on AVX2, which splits a vector pair into first and second entries; AVX-512
takes its lane-permute kernel, the others their group kernels): 1 / (1 + t) and
t / (1 + t), t = exp(lo - hi), in float64 lanes, rows with a NaN or an
infinite entry left to the per-row path. The rows of
test_logsumexp_two.py (ties to 800 apart, huge, tiny, subnormal and -0
entries) at row counts around the lane count, in place and into another
array, streamed or not, against the long double reference within the
4-ulp contract; special entries at every position; on every kernel set
this machine runs.
"""
import numpy as np
import pytest
from scipy import special

import simdsoftmax as ssm
from simdsoftmax import _core
from test_logsumexp_two import lanes, pairs, special_entries


def ref_two(x):
    """The larger entry's 1 / (1 + t), the other's t / (1 + t), in long double."""
    xl = x.astype(np.longdouble)
    hi, lo = xl.max(axis=1), xl.min(axis=1)
    t = np.exp(lo - hi)
    big, small = 1 / (1 + t), t / (1 + t)
    a_big = xl[:, 0] > xl[:, 1]
    return np.stack([np.where(a_big, big, small), np.where(a_big, small, big)], axis=1)


def assert_within_contract(y, x, where):
    want = ref_two(x)
    # 4 ulp relative (4 * 2^-23), and subnormal results to their spacing.
    err = np.abs(y.astype(np.longdouble) - want)
    bound = 4 * 2.0**-23 * np.abs(want) + np.longdouble(2.0**-149)
    assert np.all(err <= bound), (where, float(np.max(err / bound)))


def check_row_counts(isa, seed, fn, within_contract):
    """fn(x, out=None) on rows of two at row counts around the lane count:
    within_contract(y, x, where); in place, streamed and regular stores the
    same bits; a permuted batch the permuted bits."""
    w = lanes(isa)
    rng = np.random.default_rng(seed)
    for rows in sorted({2, w - 1, w, w + 1, 3 * w + 5, 64 * w + 3, 5000}):
        if rows < 2:
            continue
        x = pairs(rng, rows)
        y = fn(x)
        within_contract(y, x, (isa, rows))
        z = x.copy()
        assert fn(z, out=z) is z
        assert z.tobytes() == y.tobytes(), (isa, rows)
        for policy in ("stream", "regular"):
            _core.testing.set_store_policy(policy)
            assert fn(x).tobytes() == y.tobytes(), (isa, rows, policy)
        _core.testing.set_store_policy("auto")
        perm = rng.permutation(rows)
        assert fn(x[perm]).tobytes() == y[perm].tobytes(), (isa, rows)


def test_every_row_count_in_place_and_streamed(isa, restore_settings):
    check_row_counts(isa, 5, lambda x, out=None: ssm.softmax(x, axis=1, out=out), assert_within_contract)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_special_entry_at_every_position(isa, value):
    for where, row, got in special_entries(isa, value, 6, lambda x: ssm.softmax(x, axis=1)):
        if value == -np.inf:  # an ordinary row: 0 and 1 within the contract
            assert_within_contract(got, row, where)
        else:  # SciPy's NaNs
            want = special.softmax(row[0].astype(np.float64)).astype(np.float32)
            np.testing.assert_array_equal(got[0], want, err_msg=str(where))
