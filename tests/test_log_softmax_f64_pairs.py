"""float64 log_softmax of batches of short rows through the group kernel two
groups at a time (kernels/rows_generic.h, log_softmax_groups_f64: rows up to
kMaxN / 2 = 128 elements that are not taken by the one-row-at-a-time path),
with a last group alone when the batch holds an odd number of groups. Row
counts around one, two, three and four groups of W rows (W = the float64
lane count of the kernel set), lengths below the direct path's 16 (and
64-129, which the AVX-512 group kernel took before the direct path took
every float64 length from 16: they check the direct path the same way),
special rows in either group of a pair and in the lone last group; on
every kernel set, against the long double reference of
test_log_softmax_two_pass.py. A pair
computes each lane as a group alone does: rotating the batch by one group
(which rows pair, and which group is alone, changes) gives the same bits.
"""
import numpy as np
import pytest
import scipy.special

import simdsoftmax as ssm
from simdsoftmax import _core
from test_log_softmax_f64_direct import check_batch
from test_log_softmax_two_pass import assert_log_softmax_contract

LENGTHS = [1, 2, 3, 5, 8, 10, 15, 64, 100, 128, 129]


def lanes(isa):
    return _core.testing.tiles(isa, "float64")["lanes"]


def row_counts(w):
    """A group and a part, a pair less a row, a pair, a pair and one row, a
    third group less a row, two pairs and one row."""
    return sorted({c for c in (w + 1, 2 * w - 1, 2 * w, 2 * w + 1, 3 * w - 1, 4 * w + 1) if c >= 2})


@pytest.mark.parametrize("n", LENGTHS)
def test_pairs_within_contract_and_rotation(isa, n):
    w = lanes(isa)
    rng = np.random.default_rng(100 + n)
    for rows in row_counts(w):
        scale = np.geomspace(0.05, 40.0, rows)[:, None]  # lse - max from ~log n down to ~0
        x = rng.standard_normal((rows, n)) * scale + rng.uniform(-60, 60, (rows, 1))
        y = check_batch(x, (isa, n, rows))  # within contract, in place the same bits
        rolled = ssm.log_softmax(np.roll(x, w, axis=0), axis=-1)
        assert np.array_equal(rolled, np.roll(y, w, axis=0)), (isa, n, rows)


def special_kinds(n):
    """Ways to make a row of n special (NaN, +inf, all -inf) or nearly so
    (one finite entry: an ordinary row for the contract)."""
    return {
        "nan": lambda r: r.__setitem__(n - 1, np.nan),
        "+inf": lambda r: r.__setitem__(n // 2, np.inf),
        "all -inf": lambda r: r.fill(-np.inf),
        "one finite": lambda r: (r.fill(-np.inf), r.__setitem__(max(n - 2, 0), -4.0)),
    }


def check_special_row_in_either_group(isa, n, dtype, w, kinds, ordinary=("one finite",)):
    """Each kind of row at each position of 2 w + 1 rows of dtype: SciPy's
    values (float64) for a special row, the contract for the `ordinary`
    kinds, unchanged bits for the other rows."""
    rows = 2 * w + 1
    rng = np.random.default_rng(n)
    base = (rng.standard_normal((rows, n)) * 3.0).astype(dtype)
    clean = ssm.log_softmax(base, axis=-1)
    assert_log_softmax_contract(base, clean, (isa, n))
    for name, make in kinds.items():
        for p in range(rows):
            x = base.copy()
            make(x[p])
            y = ssm.log_softmax(x, axis=-1)
            keep = np.arange(rows) != p
            assert np.array_equal(y[keep], clean[keep]), (isa, n, name, p)
            with np.errstate(invalid="ignore", over="ignore"):
                want = scipy.special.log_softmax(x[p].astype(np.float64), axis=-1).astype(dtype)
            if name in ordinary:
                assert_log_softmax_contract(x[p:p + 1], y[p:p + 1], (isa, n, name, p))
            else:
                assert np.array_equal(y[p], want, equal_nan=True), (isa, n, name, p)


@pytest.mark.parametrize("n", [2, 5, 10, 100])
def test_special_row_in_either_group(isa, n):
    """NaN, +inf, all -inf and one finite entry in each row of 2 W + 1 (the
    first or second group of a pair, or the lone last group): SciPy's values
    for the special row, the contract and unchanged bits for the others."""
    check_special_row_in_either_group(isa, n, np.float64, lanes(isa), special_kinds(n))
