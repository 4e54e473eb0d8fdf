"""float32 log_softmax of batches of short rows through the group kernel two
groups at a time (kernels/rows_generic.h, log_softmax_groups_f32: rows below
the table-exp group kernel's Lsm32GroupRange min_n, 16, 48 on AVX2, and on
the scalar kernel set every float32 row it takes), with a last group alone
when the batch holds an odd number of groups; the rows' last n % W columns
come in as one transposed block (W the float32 lane count). Row
counts around one, two, three and four groups of W rows, lengths at every
tail of the W x W block below and around 28 and on to 48, rows whose max
entry dominates (log_softmax near 0, -log1p(S - 1)), special rows in either
group of a pair and in the lone last group; on every kernel set, against
the long double reference of test_log_softmax_two_pass.py. A pair computes
each lane as a group alone does: rotating the batch by one group (which
rows pair, and which group is alone, changes) gives the same bits.
The table-exp group kernel (kernels/rows_log_softmax32_direct.h,
log_softmax_rows_group32: AVX-512 rows of 16-23, NEON 16-47) takes rows
whose length is a multiple of W two groups at a time too (lsm32_pairs, a
group whose rows are all written transposed straight into y): the same
row counts and checks cover its pairs at n = 16 (and 32 on NEON).
"""
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core
from test_log_softmax_f64_direct import check_batch
from test_log_softmax_f64_pairs import check_special_row_in_either_group, special_kinds
from test_log_softmax_two_pass import assert_log_softmax_contract

LENGTHS = [1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 15, 16, 17, 20, 23, 24, 25, 27, 28, 31, 32, 33, 39, 40, 41, 47, 48]


def lanes(isa):
    return _core.testing.tiles(isa, "float32")["lanes"]


def row_counts(w):
    """A group and a part, a pair less a row, a pair, a pair and one row, a
    third group less a row, two pairs and one row."""
    return sorted({c for c in (w + 1, 2 * w - 1, 2 * w, 2 * w + 1, 3 * w - 1, 4 * w + 1) if c >= 2})


def logits(rng, rows, n):
    scale = np.geomspace(0.05, 40.0, rows)[:, None]  # lse - max from ~log n down to ~0
    x = rng.standard_normal((rows, n)) * scale + rng.uniform(-60, 60, (rows, 1))
    return x.astype(np.float32)


@pytest.mark.parametrize("n", LENGTHS)
def test_pairs_within_contract_and_rotation(isa, n):
    w = lanes(isa)
    rng = np.random.default_rng(300 + n)
    for rows in row_counts(w):
        x = logits(rng, rows, n)
        # A dominant entry (S - 1 down to ~e^-30) at every position of the
        # row, one row each, and a masked entry in another.
        for r in range(min(rows, n)):
            x[r, r] = x[r].max() + np.float32(2.0 + r)
        if n > 2:
            x[rows - 1, n // 2] = -np.inf
        y = check_batch(x, (isa, n, rows))  # within contract, in place the same bits
        rolled = ssm.log_softmax(np.roll(x, w, axis=0), axis=-1)
        assert np.array_equal(rolled, np.roll(y, w, axis=0)), (isa, n, rows)


@pytest.mark.parametrize("n", LENGTHS)
def test_pairs_write_only_their_rows(isa, restore_settings, n):
    """Outputs at every 4-byte offset of a cache line, streamed and regular,
    leave the elements around them untouched, with the same bits (the tail
    block's masked loads read only the rows' own elements)."""
    w = lanes(isa)
    rows = 4 * w + 1
    x = logits(np.random.default_rng(n), rows, n)
    want = None
    for policy in ("stream", "regular"):
        _core.testing.set_store_policy(policy)
        for offset in range(0, 17):
            ybuf = np.full(rows * n + offset + 16, 7.0, np.float32)
            y = ybuf[offset:offset + rows * n].reshape(rows, n)
            assert _core.log_softmax(x, y).size == 0
            assert np.all(ybuf[:offset] == 7.0) and np.all(ybuf[offset + rows * n:] == 7.0), (policy, offset)
            if want is None:
                want = y.copy()
                assert_log_softmax_contract(x, want, (isa, n))
            assert y.tobytes() == want.tobytes(), (policy, offset)


@pytest.mark.parametrize("n", [1, 2, 5, 9, 10, 16, 17, 27, 28, 32, 40, 47])
def test_special_row_in_either_group(isa, n):
    """NaN, +inf, all -inf, one finite entry and a max beyond the kernel's
    range (the per-row path's) in each row of 2 W + 1 (the first or second
    group of a pair, or the lone last group): SciPy's values for the special
    row, the contract for the finite ones, unchanged bits for the others."""
    kinds = dict(special_kinds(n), **{"huge max": lambda r: r.__setitem__(0, 3e38)})
    check_special_row_in_either_group(isa, n, np.float32, lanes(isa), kinds, ("one finite", "huge max"))
