"""float32 softmax short rows on AVX-512 (16 rows per group): rows of 2-12
go as whole vectors through lane permutes (rows_softmax32_perm_avx512.h,
two groups at a time up to 8), rows of 13-15 as 16 x 16 register
transposes (softmax_group_regs), rows of 16 one row per vector
(softmax_group_vec16: in-vector max and float64 sums, the batch's last
partial group too, a special row alone to softmax_group) and rows of 17-31
through softmax_group_blocks; elsewhere the batch's last groups and groups
with a special row take softmax_group.

Row counts around one and two groups (16, 32) and their sums, every length
up to the direct rows (32), in place and into a framed output, against a
float64 reference and SciPy's special values, on every kernel set this
machine runs (the other sets take their own paths with the same contract).
"""
import numpy as np
import pytest

import simdsoftmax as ssm

from test_rows import SPECIALS, assert_softmax_close, ref_softmax
from test_softmax_f32_regs import check_row_counts, check_special_rows

GROUP = 16  # AVX-512 float32 lanes
LENGTHS = list(range(1, 2 * GROUP))
ROWS = [1, GROUP - 1, GROUP, GROUP + 1, 2 * GROUP - 1, 2 * GROUP, 2 * GROUP + 1, 3 * GROUP - 1, 3 * GROUP,
        3 * GROUP + 1, 4 * GROUP + 7, 9 * GROUP + 5]


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length_and_row_count(isa, n):
    check_row_counts(n, ROWS, seed=500 + n)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 31])
def test_special_rows_every_position(isa, kind, n):
    """A special row at every position of two group pairs and a partial
    last group: SciPy's value for it, the same bits as without it for the
    rows around it, in place too."""
    check_special_rows(kind, n, 4 * GROUP + 5, seed=600 + n)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 200.0])
def test_accuracy_many_rows(isa, scale):
    """Against float64, wide and narrow logits (outputs down to the
    subnormals), the max at every position, offsets to +-80."""
    rng = np.random.default_rng(int(scale * 1000) + 7)
    for n in LENGTHS:
        x = (rng.standard_normal((2048 + 17, n)) * scale).astype(np.float32)
        x[np.arange(len(x)), np.arange(len(x)) % n] += np.float32(scale)
        x += np.float32(rng.uniform(-80, 80))
        assert_softmax_close(ssm.softmax(x, axis=1), ref_softmax(x))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("n", [GROUP - 1, GROUP, GROUP + 1])
def test_rows_of_a_vector_alone_or_in_any_group(isa, n):
    """Rows of -FLT_MAX among -inf (beyond the fast range), a dominant entry
    (outputs down to the subnormals) and the max at every position, against
    float64. On AVX-512 rows of 16 take the one-vector kernel in full and
    partial groups alike: every prefix of the batch gives a row the bits it
    has in the whole batch."""
    rng = np.random.default_rng(700 + n)
    rows = 3 * GROUP + 5
    x = (rng.standard_normal((rows, n)) * 4).astype(np.float32)
    x[np.arange(rows), np.arange(rows) % n] += np.float32(6)
    x[5] = -np.inf
    x[5, n - 1] = -np.finfo(np.float32).max
    x[GROUP + 2] = -np.inf
    x[GROUP + 2, 0] = -np.finfo(np.float32).max
    x[GROUP + 3, 1] = np.float32(95)
    x[2 * GROUP + 7] -= np.float32(70)
    whole = ssm.softmax(x, axis=1)
    assert_softmax_close(whole, ref_softmax(x))
    if isa != "avx512" or n != GROUP:
        return
    for m in range(1, rows):
        np.testing.assert_array_equal(ssm.softmax(x[:m], axis=1), whole[:m], err_msg=f"first {m} rows")
