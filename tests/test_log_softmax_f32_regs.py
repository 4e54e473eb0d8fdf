"""float32 log_softmax short rows whose group columns stay in registers
(rows_generic.h log_softmax_group_regs: AVX2 rows of 1-47 elements but
32, rows of 2-16 one instantiation per length, 2-4 with their columns from
the group's whole vectors, rows_columns_avx2.h, rows of 17-47 as three to
six 8 x 8 blocks, rows_avx2.cpp's BlocksRowsRange: the same bits; every
length up to the direct rows, 1-49, here: AVX2 rows of 32 take the pairs,
log_softmax_groups_f32, 48 on the direct rows; AVX-512 rows of 3-60 take
their columns by lane permutes or register transposes,
rows_log_softmax32_perm_avx512.h, a group of 16 rows at a time, the
batch's last rows and groups with a special row through its masked
kernels, and 61 on the direct rows).

As softmax_group_regs, a group of 8 rows is read as 8 x 8 blocks at
stride n; where n % 8 != 0 the last block of each row reaches into the
rows after it (the group's last row into the next group). Rows of 8 and 16
are written back as such blocks; other lengths are written from x's own
layout (n whole vectors per group, each lane's row max and log S picked
into it), with no spill; a group with
a special row, and the batch's last groups, fall back to the buffer kernel
(log_softmax_groups_f32), which computes each lane with the same
arithmetic. These tests check that nothing outside the output moves, that
in place, streamed and threaded calls (task boundaries between groups) give
the same bits, that a special row anywhere changes no other row's bits,
and the 2-ulp contract (and the dominant entry's) against the long double
reference, on every kernel set this machine runs.
"""
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core
from test_log_softmax_f32_pairs import logits
from test_log_softmax_two_pass import assert_log_softmax_contract
from test_rows import SPECIALS

GROUP = 8  # AVX2 float32 lanes; other sets take other paths with the same contract
PERM_GROUP = 16  # AVX-512 float32 lanes (the permute kernel's group)
PERM_LENGTHS = list(range(3, 62))  # 17-60: two to four transposes per group (28 on through buf); 61: the direct rows
PERM_ROWS = [PERM_GROUP - 1, PERM_GROUP, PERM_GROUP + 1, 2 * PERM_GROUP - 1, 2 * PERM_GROUP, 2 * PERM_GROUP + 1,
             3 * PERM_GROUP - 1, 3 * PERM_GROUP, 3 * PERM_GROUP + 1, 4 * PERM_GROUP + 3, 7 * PERM_GROUP + 9]
LENGTHS = list(range(1, 50))
ROWS = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 4 * GROUP + 7, 11 * GROUP + 5]


def written(x, key, pad=GROUP + 3):
    """log_softmax(x) into a slice of a sentinel-filled buffer (nothing
    else of it may change) and in place (the same bits): returns it."""
    sentinel = np.float32(-7.25)
    frame = np.full(x.size + 2 * pad, sentinel, np.float32)
    y = frame[pad:pad + x.size].reshape(x.shape)
    assert ssm.log_softmax(x, axis=1, out=y) is y
    assert np.all(frame[:pad] == sentinel) and np.all(frame[pad + x.size:] == sentinel), key
    z = x.copy()
    assert ssm.log_softmax(z, axis=1, out=z) is z
    assert z.tobytes() == y.tobytes(), key
    return y


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length_and_row_count(isa, n):
    rng = np.random.default_rng(500 + n)
    for rows in ROWS:
        x = logits(rng, rows, n)
        for r in range(0, rows, 3):  # a dominant entry (S - 1 down to ~e^-30), at every position
            x[r, r % n] = x[r].max() + np.float32(1.0 + r % 29)
        if n > 2:
            x[rows // 2, (rows // 2) % n] = -np.inf
        y = written(x, (isa, n, rows))
        assert_log_softmax_contract(x, y, (isa, n, rows))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 24, 25, 31, 32, 33, 40, 41, 47, 48])
def test_special_rows_every_position_in_place(isa, kind, n):
    """A special row at every position of five groups and a partial last
    one, in place and into a framed output: the special row gets SciPy's
    value (the contract for the ordinary kinds), the rows around it (into
    which the row before spills) the same bits as without it."""
    check_special_rows_every_position(isa, kind, n, 5 * GROUP + 5, seed=600 + n)


def check_special_rows_every_position(isa, kind, n, rows, seed):
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(seed)
    base = logits(rng, rows, n)
    plain = ssm.log_softmax(base, axis=1)
    assert_log_softmax_contract(base, plain, (isa, n))
    for p in range(rows):
        x = base.copy()
        SPECIALS[kind](x[p])
        y = written(x, (isa, n, kind, p))
        others = np.arange(rows) != p
        assert y[others].tobytes() == plain[others].tobytes(), (isa, n, kind, p)
        if kind in ("huge max", "huge negative", "largest finite", "one finite"):
            assert_log_softmax_contract(x[p:p + 1], y[p:p + 1], (isa, n, kind, p))
        else:
            with np.errstate(all="ignore"):
                want = special.log_softmax(x[p].astype(np.float64)).astype(np.float32)
            np.testing.assert_array_equal(y[p], want, err_msg=f"{kind} p={p}")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 25, 31, 32, 33, 40, 41, 47])
def test_task_boundaries_threads_and_stores(isa, small_chunks, restore_settings, n):
    """Tasks of two or three groups (the spill never crosses into another
    task's rows), streamed or regular stores: bits as with one thread and
    one big task."""
    rng = np.random.default_rng(700 + n)
    rows = 40 * GROUP + 7
    x = logits(rng, rows, n)
    x[5 * GROUP - 1, 0] = np.nan  # a fallback group just before a task boundary
    small_chunks(1)
    _core.testing.set_chunking(1 << 20, 1 << 20)
    want = ssm.log_softmax(x, axis=1)
    for policy in ("stream", "regular"):
        _core.testing.set_store_policy(policy)
        for per_task in (2, 3):
            _core.testing.set_chunking(per_task * GROUP * n, 1 << 20)
            for threads in (1, 2, 3):
                small_chunks(threads)
                y = written(x, (policy, per_task, threads))
                assert y.tobytes() == want.tobytes(), (policy, per_task, threads)


@pytest.mark.parametrize("n", list(range(1, 48)))
def test_register_groups_match_buffer_kernel(isa, n):
    """Rows written by the register groups (a batch of 4 groups and more;
    from x's layout where n % 8 != 0, as blocks at 8, 16, 24 and 40) have the bits
    the buffer kernel gives the same rows (a batch of one group: the
    batch's last rows go through log_softmax_groups_f32), scales, offsets,
    ties, dominant and masked entries, -0.0 and 0.0 rows included."""
    rng = np.random.default_rng(800 + n)
    rows = 16 * GROUP
    for scale, offset in ((1.0, 0.0), (0.01, 3.0), (30.0, -3000.0), (90.0, 1e30)):
        x = (rng.standard_normal((rows, n)) * scale + offset).astype(np.float32)
        x[1] = x[1, 0]  # ties
        x[2, n // 2] += np.float32(40.0)  # a dominant entry
        x[3] = np.float32(-0.0)
        x[4] = np.float32(0.0)
        if n > 1:
            x[5::9, n - 1] = -np.inf
        y = written(x, (isa, n, scale))
        for r in range(0, rows, GROUP):
            alone = ssm.log_softmax(x[r:r + GROUP], axis=1)
            assert alone.tobytes() == y[r:r + GROUP].tobytes(), (isa, n, scale, r)


@pytest.mark.parametrize("scale", [0.01, 1.0, 30.0, 90.0])
def test_accuracy_many_rows(isa, scale):
    """Against long double over many rows per length: narrow and wide
    logits, offsets up to 3000, the max at every position, masked and far
    entries."""
    rng = np.random.default_rng(int(scale * 100) + 9)
    for n in LENGTHS:
        rows = 1200
        x = rng.standard_normal((rows, n)) * scale + rng.uniform(-3000, 3000, (rows, 1))
        x[np.arange(rows), np.arange(rows) % n] += scale
        x = x.astype(np.float32)
        if n > 1:
            x[::7, (n - 1) // 2] = -np.inf
            x[3::11, n - 1] = x[3::11].max(axis=1) - np.float32(200.0)  # a far entry
        assert_log_softmax_contract(x, ssm.log_softmax(x, axis=1), (isa, n, scale))


@pytest.mark.parametrize("n", PERM_LENGTHS)
def test_permute_groups_row_counts_and_bits_alone(isa, n):
    """Row counts around one, two and three groups of 16 (the permute
    kernel's full groups and the batch's last rows, masked), in place and
    into a framed output, a dominant entry at every position, masked
    entries, entries whose term is below float64's range (-1000 and
    -FLT_MAX / 2 from the max), maxima near FLT_MAX and of -FLT_MAX (with
    -inf entries), within the contract against long double; every row has
    the bits it has in a batch of two copies of it (the masked kernel; a
    row alone takes the per-row path)."""
    rng = np.random.default_rng(900 + n)
    lowest = -np.finfo(np.float32).max / 2  # its result stays finite, its term 0
    for rows in PERM_ROWS:
        x = logits(rng, rows, n)
        for r in range(0, rows, 2):  # S - 1 down to ~e^-30, at every position
            x[r, (r // 2) % n] = x[r].max() + np.float32(1.0 + r % 29)
        x[1::5, (n - 1) // 2] = -np.inf
        x[2::6, n - 1] = x[2::6].max(axis=1) - np.float32(1000.0)
        x[3::14, 0] = lowest
        x[4::14] = np.float32(3e38) - np.abs(x[4::14]) * np.float32(1e35)
        x[4::14, 1] = -np.inf
        x[5::14] = -np.inf  # one finite entry, the lowest float: 0 there
        x[5::14, n // 2] = -np.finfo(np.float32).max
        x[6::14] = -np.finfo(np.float32).max  # all the lowest float: -log n each
        y = written(x, (isa, n, rows))
        assert_log_softmax_contract(x, y, (isa, n, rows))
        # Beside |lse| ~ FLT_MAX the contract's 4 eps |lse| says nothing: exact values.
        assert np.all(y[5::14, n // 2] == 0) and np.all(np.isneginf(np.delete(y[5::14], n // 2, axis=1)))
        np.testing.assert_allclose(y[6::14], -np.log(n), rtol=2 ** -22)
        for r in range(rows):
            alone = ssm.log_softmax(np.repeat(x[r:r + 1], 2, axis=0), axis=1)
            assert alone[:1].tobytes() == y[r:r + 1].tobytes(), (isa, n, rows, r)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("n", [3, 4, 6, 10, 11, 13, 16, 17, 20, 27, 28, 31, 32, 33, 44, 48, 52, 60])
def test_permute_groups_special_rows_every_position(isa, kind, n):
    """A special row at every position of three groups of 16 and a partial
    last one (the masked kernel): SciPy's value (the contract for the
    ordinary kinds) for it, the same bits as without it for the others."""
    check_special_rows_every_position(isa, kind, n, 3 * PERM_GROUP + 5, seed=1000 + n)
