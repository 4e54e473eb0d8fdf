"""float32 logsumexp of short rows whose group columns stay in registers
(rows_generic.h lse_group_regs: AVX2 unweighted rows of 3-16, four groups
of 8 rows at a time, one instantiation per length (rows_avx2.cpp); every
length up to the direct rows, 1-33, here).

A group's rows are read as 8 x 8 blocks at stride n (where n % 8 != 0 the
last block reaches into the rows after it: read only), rows of 3 and 4 as
their group's whole vectors (rows_columns_avx2.h: blends and a lane
permute, or 128-bit halves and a 4 x 4 transpose); four groups with a
special row or a result the degree-6 terms cannot certify (|lse| near 0)
go through the buffer kernel (lse_groups), which computes each lane with
the same arithmetic, and so do the batch's last rows. These tests check
the 1-ulp contract against the long double reference, SciPy's values for
special rows at every position (and no other row's bits moved), rows near
lse = 0 in any group of the four, return_sign / keepdims, and the same bits
for any thread count and task size, on every kernel set this machine runs.
The test_perm_* tests do the same across the AVX-512 kernels' blocks of
eight 16-row groups (rows of 3-12 by lane permutes, 13-16 by register
transposes; the same arithmetic as lse_groups).
"""
import numpy as np
import pytest
from scipy import special

import simdsoftmax as ssm
from simdsoftmax import _core
from reference import assert_lse_close, ref_logsumexp
from test_rows import SPECIALS

GROUP = 8  # AVX2 float32 lanes; other sets take other paths with the same contract
LENGTHS = list(range(1, 34))
ROWS = [1, 2, 7, 8, 9, 31, 32, 33, 4 * GROUP + 7, 8 * GROUP, 11 * GROUP + 5]
# AVX-512 float32 rows of 3-12 take lane permutes (rows_logsumexp32_perm_avx512.h)
# and 13-16 register transposes: groups of 16 rows, sums a set of one or two
# groups at a time in blocks of eight groups, then single groups, the batch's
# last partial group through lse_groups.
PERM_GROUP = 16
PERM_BLOCK = 8 * PERM_GROUP
PERM_LENGTHS = list(range(3, 18))
PERM_ROWS = [15, 16, 17, 33, PERM_BLOCK - 1, PERM_BLOCK, PERM_BLOCK + 1, PERM_BLOCK + 3 * PERM_GROUP + 5,
             2 * PERM_BLOCK + PERM_GROUP]


def lse_checked(x, where):
    """logsumexp(x) over the last axis, with return_sign and keepdims the
    same bits, within 1 ulp of the long double reference where it is finite."""
    out = ssm.logsumexp(x, axis=-1)
    res, sign = ssm.logsumexp(x, axis=-1, return_sign=True)
    assert res.tobytes() == out.tobytes(), where
    assert ssm.logsumexp(x, axis=-1, keepdims=True).tobytes() == out.tobytes(), where
    with np.errstate(invalid="ignore", over="ignore"):
        ref = ref_logsumexp(x, dtype=np.longdouble)[0]
    finite = np.isfinite(ref)
    assert np.all(sign[finite] == 1.0), where
    assert_lse_close(out[finite], ref[finite], where)
    return out


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length_and_row_count(isa, n):
    rng = np.random.default_rng(800 + n)
    for rows in ROWS:
        scale = np.geomspace(0.01, 90.0, rows)[:, None]
        x = rng.standard_normal((rows, n)) * scale + rng.uniform(-3000, 3000, (rows, 1))
        x = x.astype(np.float32)
        for r in range(0, rows, 3):  # a dominant entry, at every position
            x[r, r % n] = x[r].max() + np.float32(1.0 + r % 29)
        if n > 2:
            x[rows // 2, (rows // 2) % n] = -np.inf
        lse_checked(x, (isa, n, rows))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 10, 11, 13, 16, 17])
def test_special_rows_every_position(isa, kind, n):
    """A special row at every position of five groups and a partial last
    one: SciPy's value there (the contract where it is finite), the other
    rows' bits as without it."""
    check_special_rows(isa, kind, n, 5 * GROUP + 5, None, 900 + n)


def check_special_rows(isa, kind, n, rows, positions, seed):
    """A special row at each of `positions` (every row: None) of a batch of
    N(0, 9) rows: SciPy's value there, every other row's bits as without it."""
    rng = np.random.default_rng(seed)
    base = (rng.standard_normal((rows, n)) * 3).astype(np.float32)
    plain = lse_checked(base, (isa, n))
    for p in range(rows) if positions is None else positions:
        x = base.copy()
        SPECIALS[kind](x[p])
        out = lse_checked(x, (isa, n, kind, p))
        others = np.arange(rows) != p
        assert out[others].tobytes() == plain[others].tobytes(), (isa, n, kind, p)
        with np.errstate(all="ignore"):
            want = special.logsumexp(x[p].astype(np.float64))
        if not np.isfinite(want):
            np.testing.assert_array_equal(out[p], np.float32(want), err_msg=f"{kind} p={p}")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 10, 12, 16])
def test_rows_near_zero_in_any_group(isa, n):
    """A row with |lse| below ~0.05 (not certified by the degree-6 terms:
    its four groups go through the buffer kernel, which sums its group
    again) at every fifth position: every result within 1 ulp, the other
    groups' bits unchanged."""
    rng = np.random.default_rng(1000 + n)
    rows = 8 * GROUP + 3
    base = (rng.standard_normal((rows, n)) * 2).astype(np.float32)
    plain = lse_checked(base, (isa, n))
    for near in range(0, rows, 5):
        x = base.copy()
        x[near] -= np.float32(np.logaddexp.reduce(x[near].astype(np.float64)) - rng.uniform(-0.05, 0.05))
        out = lse_checked(x, (isa, n, near))
        others = np.arange(rows) // GROUP != near // GROUP  # its own group is summed again
        assert out[others].tobytes() == plain[others].tobytes(), (isa, n, near)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 12, 16, 17])
def test_task_boundaries_and_threads(isa, small_chunks, n):
    rng = np.random.default_rng(1100 + n)
    rows = 40 * GROUP + 7
    x = (rng.standard_normal((rows, n)) * 4).astype(np.float32)
    x[5 * GROUP - 1, 0] = np.nan  # a fallback just before a task boundary
    small_chunks(1)
    _core.testing.set_chunking(1 << 20, 1 << 20)
    want = ssm.logsumexp(x, axis=-1)
    for per_task in (2, 3, 5):
        _core.testing.set_chunking(per_task * GROUP * n, 1 << 20)
        for threads in (1, 2, 3):
            small_chunks(threads)
            assert ssm.logsumexp(x, axis=-1).tobytes() == want.tobytes(), (per_task, threads)


@pytest.mark.parametrize("n", PERM_LENGTHS)
def test_perm_blocks_every_row_count(isa, n):
    """Row counts around the AVX-512 kernels' groups and blocks, mixed scales
    and offsets, dominant entries and a -inf entry: within 1 ulp."""
    rng = np.random.default_rng(1200 + n)
    for rows in PERM_ROWS:
        scale = np.geomspace(0.01, 90.0, rows)[:, None]
        x = rng.standard_normal((rows, n)) * scale + rng.uniform(-300, 300, (rows, 1))
        x[rows // 3 :: 4] -= rng.uniform(-3, 3, (len(x[rows // 3 :: 4]), 1)) + x[rows // 3 :: 4].max(1, keepdims=True)
        x = x.astype(np.float32)
        for r in range(0, rows, 5):
            x[r, r % n] = x[r].max() + np.float32(1.0 + r % 31)
        x[rows // 2, (rows // 2) % n] = -np.inf
        lse_checked(x, (isa, n, rows))


def perm_positions(rows):
    return sorted(set(range(0, rows, 7)) | {0, 15, 16, 31, 32, 47, 127, 128, 143, 144, rows - 1} - {rows})


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("n", [3, 4, 7, 8, 9, 12, 13, 16])
def test_perm_blocks_special_rows(isa, kind, n):
    """A special row at positions across a block of eight groups, the single
    group after it and the partial last group: SciPy's value there, every
    other row's bits as without it."""
    rows = PERM_BLOCK + PERM_GROUP + 5
    check_special_rows(isa, kind, n, rows, perm_positions(rows), 1300 + n)


@pytest.mark.parametrize("n", [3, 4, 5, 8, 11, 12, 13, 16])
def test_perm_blocks_rows_near_zero(isa, n):
    """Rows with |lse| below ~0.05 (redone by the buffer kernel) at positions
    across a block: within 1 ulp, every other row's bits unchanged."""
    rng = np.random.default_rng(1400 + n)
    rows = PERM_BLOCK + PERM_GROUP + 5
    base = (rng.standard_normal((rows, n)) * 2).astype(np.float32)
    plain = lse_checked(base, (isa, n))
    for near in perm_positions(rows):
        x = base.copy()
        x[near] -= np.float32(np.logaddexp.reduce(x[near].astype(np.float64)) - rng.uniform(-0.05, 0.05))
        out = lse_checked(x, (isa, n, near))
        others = np.arange(rows) != near
        assert out[others].tobytes() == plain[others].tobytes(), (isa, n, near)
