"""float32 log_softmax of rows of two entries (rows_generic.h
log_softmax_rows_two on AVX-512, which splits a vector pair into first and
second entries and has the float64 exp table; the others take their group
kernels): -log1p(t) for the larger entry and d - log1p(t) for the other, d
the smaller less the larger, t = exp(d), in float64 lanes; rows with a NaN,
a +inf or two -inf left to the per-row path. The rows of
test_logsumexp_two.py at row counts around the lane count, in place and
into another array, streamed or not, against the long double reference
within the 2-ulp contract (the dominant entry's -log1p(t) relatively
accurate down to t far below float32's epsilon); special entries at every
position; on every kernel set this machine runs.
"""
import numpy as np
import pytest
from scipy import special

import simdsoftmax as ssm
from test_logsumexp_two import special_entries
from test_softmax_two import check_row_counts


def ref_two(x):
    """(x - max) - log1p(exp(d)) in long double."""
    xl = x.astype(np.longdouble)
    hi, lo = xl.max(axis=1), xl.min(axis=1)
    with np.errstate(invalid="ignore"):
        big_l = np.log1p(np.exp(lo - hi))
    return xl - hi[:, None] - big_l[:, None]


def assert_within_contract(y, x, where):
    want = ref_two(x)
    finite = np.isfinite(want)
    assert np.array_equal(np.isfinite(y), finite) and np.all(y[~finite] == want[~finite]), where
    # 2 ulp of the exact result (float32 spacing at its magnitude; subnormal
    # results to their spacing).
    err = np.abs(y[finite].astype(np.longdouble) - want[finite])
    bound = 2 * np.spacing(np.abs(want[finite]).astype(np.float32)).astype(np.longdouble)
    assert np.all(err <= bound), (where, float(np.max(err / bound)))


def test_every_row_count_in_place_and_streamed(isa, restore_settings):
    check_row_counts(isa, 7, lambda x, out=None: ssm.log_softmax(x, axis=1, out=out), assert_within_contract)


def test_dominant_entry_keeps_relative_accuracy(isa):
    """The larger entry's result is -log1p(exp(d)): relatively accurate for
    d from -1e-6 to -100 (exp(d) down to 1e-44, below float32's epsilon)."""
    rows = 4096
    rng = np.random.default_rng(8)
    d = -np.geomspace(1e-6, 100.0, rows)
    m = rng.uniform(-50, 50, rows)
    x = np.stack([m, m + d], axis=1).astype(np.float32)
    assert_within_contract(ssm.log_softmax(x, axis=1), x, isa)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_special_entry_at_every_position(isa, value):
    for where, row, got in special_entries(isa, value, 9, lambda x: ssm.log_softmax(x, axis=1)):
        if value == -np.inf:  # an ordinary row: 0 (or -0) and -inf
            assert_within_contract(got, row, where)
        else:  # SciPy's NaNs
            want = special.log_softmax(row[0].astype(np.float64)).astype(np.float32)
            np.testing.assert_array_equal(got[0], want, err_msg=str(where))
