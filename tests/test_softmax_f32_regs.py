"""float32 softmax short rows read and written as 8 x 8 blocks at stride n
(rows_generic.h softmax_group_regs: AVX2 rows of 1-24 elements, the group's
columns in registers, rows of 3-16 one instantiation per length,
rows_avx2.cpp; softmax_group_blocks: rows of 25-31, the columns in
an L1 buffer, two groups at a time; lengths up to 31 here).

A group of 8 rows is read and written as 8 x 8 blocks at stride n; where
n % 8 != 0 the last block of each row reaches into the rows after it (the
group's last row into the next group), whose elements go back unchanged and
are overwritten in row order. These tests check that nothing outside the
output moves, that in-place and threaded calls (task boundaries between
groups) give the same bits, that a group that falls back to the buffer
kernel (a special row in it, the batch's last groups) gives the same bits
as the register kernel for its ordinary rows, and the accuracy contract
against a float64 reference, on every kernel set this machine runs.
"""
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

from test_rows import SPECIALS, assert_softmax_close, logits, ref_softmax

GROUP = 8  # AVX2 float32 lanes; other sets take other paths with the same contract
LENGTHS = list(range(1, 4 * GROUP))  # every n up to the direct rows (32)
ROWS = [2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 3 * GROUP + 3, 11 * GROUP + 5]


def framed_softmax(x, pad=GROUP + 3):
    """softmax(x) written into a slice of a larger buffer whose other
    elements hold a sentinel; returns the result and whether they held."""
    sentinel = np.float32(-7.25)
    buf = np.full(x.size + 2 * pad, sentinel, np.float32)
    out = buf[pad:pad + x.size].reshape(x.shape)
    assert ssm.softmax(x, axis=1, out=out) is out
    return out, bool(np.all(buf[:pad] == sentinel) and np.all(buf[pad + x.size:] == sentinel))


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length_and_row_count(isa, n):
    check_row_counts(n, ROWS, seed=100 + n)


def check_row_counts(n, row_counts, seed):
    """Batches of each row count: the framed output's outside intact, the
    accuracy contract, the same bits in place."""
    rng = np.random.default_rng(seed)
    for rows in row_counts:
        x = logits(rng, rows, n, np.float32)
        y, intact = framed_softmax(x)
        assert intact, f"rows={rows}: elements outside the output changed"
        assert_softmax_close(y, ref_softmax(x))
        z = x.copy()
        assert ssm.softmax(z, axis=1, out=z) is z
        np.testing.assert_array_equal(z, y, err_msg=f"in place, rows={rows}")


@pytest.mark.parametrize("n", LENGTHS)
def test_fallback_groups_give_the_same_bits(isa, n):
    """A NaN row sends its group to the buffer kernel (softmax_group): the
    group's other rows must come out as from the register kernel."""
    rng = np.random.default_rng(200 + n)
    rows = 6 * GROUP + 3
    x = logits(rng, rows, n, np.float32)
    want = ssm.softmax(x, axis=1)
    for p in range(0, 5 * GROUP, 3):
        z = x.copy()
        z[p, n // 2] = np.nan
        got = ssm.softmax(z, axis=1)
        assert np.all(np.isnan(got[p]))
        keep = np.arange(rows) != p
        np.testing.assert_array_equal(got[keep], want[keep], err_msg=f"NaN row {p}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("n", [2, 3, 5, 7, 8, 9, 13, 16, 17, 24, 25, 31])
def test_special_rows_every_position_in_place(isa, kind, n):
    """A special row at every position of three groups and the partial
    last one, in place and into a framed output: the special row gets
    SciPy's value, the rows around it (into which the row before spills)
    the same bits as without it."""
    check_special_rows(kind, n, 3 * GROUP + 5, seed=300 + n)


def check_special_rows(kind, n, rows, seed):
    """A special row of `kind` at every position of a batch of `rows` rows:
    SciPy's value for it, the same bits as without it for the others, in
    place as into a framed output."""
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(seed)
    base = logits(rng, rows, n, np.float32)
    plain = ssm.softmax(base, axis=1)
    for p in range(rows):
        x = base.copy()
        SPECIALS[kind](x[p])
        with np.errstate(all="ignore"):
            want = special.softmax(x.astype(np.float64), axis=1).astype(np.float32)
        y, intact = framed_softmax(x)
        assert intact
        z = x.copy()
        ssm.softmax(z, axis=1, out=z)
        np.testing.assert_array_equal(z, y, err_msg=f"in place, p={p}")
        others = np.arange(rows) != p
        np.testing.assert_array_equal(y[others], plain[others], err_msg=f"p={p}")
        if kind in ("huge max", "huge negative", "largest finite", "one finite"):
            assert_softmax_close(y[p:p + 1], ref_softmax(x[p:p + 1]))
        else:
            np.testing.assert_array_equal(y[p], want[p], err_msg=f"p={p}")


@pytest.mark.parametrize("n", [1, 3, 5, 6, 7, 8, 10, 12, 15, 16, 19, 24, 27, 31])
def test_task_boundaries_and_threads(isa, small_chunks, n):
    """Tasks of two or three groups (the spill never crosses into another
    task's rows): bits as with one thread and as with one big task."""
    rng = np.random.default_rng(400 + n)
    rows = 40 * GROUP + 7
    x = logits(rng, rows, n, np.float32)
    x[5 * GROUP - 1, 0] = np.nan  # a fallback group just before a task boundary
    small_chunks(1)
    _core.testing.set_chunking(1 << 20, 1 << 20)
    want = ssm.softmax(x, axis=1)
    for per_task in (2, 3):
        _core.testing.set_chunking(per_task * GROUP * n, 1 << 20)
        for threads in (1, 2, 3):
            small_chunks(threads)
            y, intact = framed_softmax(x)
            assert intact
            np.testing.assert_array_equal(y, want, err_msg=f"{per_task} groups per task, {threads} threads")
            z = x.copy()
            ssm.softmax(z, axis=1, out=z)
            np.testing.assert_array_equal(z, want, err_msg=f"in place, {per_task} groups per task")


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 200.0])
def test_accuracy_many_rows(isa, scale):
    """Against float64 over many rows per length, wide and narrow logits
    (outputs down to the subnormals), the max at every position."""
    rng = np.random.default_rng(int(scale * 1000) + 5)
    for n in LENGTHS:
        x = (rng.standard_normal((2000, n)) * scale).astype(np.float32)
        x[np.arange(2000), np.arange(2000) % n] += np.float32(scale)
        x += np.float32(rng.uniform(-80, 80))
        assert_softmax_close(ssm.softmax(x, axis=1), ref_softmax(x))
