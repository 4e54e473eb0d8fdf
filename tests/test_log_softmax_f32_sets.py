"""float32 log_softmax of rows of 59 to 193 elements; AVX-512 sends 61 to 160 to
kernels/rows_log_softmax32_sets_avx512.h (one row at a time along whole
16-lane vectors, sets of sixteen rows up to 96 elements and of eight above,
the set's maxima, sums and counts added across by trees of shuffles, log S
by the table log); the other kernel sets take their own paths for these
lengths, tested the same way. Every 16-lane tail near 64, 80, 96, 112, 128,
160 and 192 and the lengths on both sides of the range's ends (and 192) and of the
switch between set sizes; batches of one row, a set less or more one row
and two sets and three rows; special rows (NaN, +inf, all -inf, one finite
entry, a max of -FLT_MAX beside -inf entries, a max beyond 2^13) at every
position of two sets; dominant entries, ties and a masked tail; in place
and rotated batches (a row's bits do not depend on its neighbours or its
place); against the long double reference of test_log_softmax_two_pass.py.
"""
import numpy as np
import pytest
import scipy.special

import simdsoftmax as ssm
from test_log_softmax_f32_direct import test_float32_write_at_its_certificate_edge as certificate_edge
from test_log_softmax_f64_direct_scaled import check_rotated
from test_log_softmax_two_pass import assert_log_softmax_contract

SET16_MAX_N, SETS_MAX_N = 96, 160
LENGTHS = sorted(
    {59, 60, 61, 62, 63, 64, 65, 79, 80, 81, 95, 96, 97, 98, 111, 112, 113, 127, 128, 129, 159, 160, 161, 191, 192, 193}
)
# Rows per set: sixteen up to SET16_MAX_N, eight above; batches that end in
# a partial set, a full one, and one row more.
ROW_COUNTS = [1, 7, 8, 9, 15, 16, 17, 35]


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length(isa, n):
    """Spreads from ~0.05 (v near log n, the float32 write) to ~40 (a
    dominant entry, the float64 write), offsets up to +-60, one -inf in
    the last, partial vector."""
    rng = np.random.default_rng(n)
    for rows in ROW_COUNTS:
        scale = np.geomspace(0.05, 40.0, rows)[:, None]
        x = (rng.standard_normal((rows, n)) * scale + rng.uniform(-60, 60, (rows, 1))).astype(np.float32)
        x[0, n - 3] = -np.inf
        check_rotated(x, (isa, n, rows))


@pytest.mark.parametrize("n", [61, 64, 96, 97, 128, 160])
def test_dominant_and_ties(isa, n):
    """One entry 0.5 to 80 above the others' log-sum-exp (y there is
    -log1p(small)), and rows with 2-4 copies of the max, at every position
    of two sets; offsets to near the table's limit."""
    rng = np.random.default_rng(600 + n)
    rows = 35
    x = rng.standard_normal((rows, n)) * 2.0
    top = rng.integers(n, size=rows)
    lse_others = scipy.special.logsumexp(x, axis=1, b=np.arange(n) != top[:, None])
    x[np.arange(rows), top] = lse_others + np.geomspace(0.5, 80.0, rows)
    x += rng.choice([-8100.0, -700.0, 0.0, 90.0, 8000.0], rows)[:, None]
    check_rotated(x.astype(np.float32), (isa, n, "dominant"))
    t = rng.standard_normal((rows, n)) * np.geomspace(0.1, 30.0, rows)[:, None]
    for r in range(rows):
        cols = rng.choice(n, size=1 + r % 4, replace=False)
        t[r, cols] = t[r].max() + 0.5
    check_rotated(t.astype(np.float32), (isa, n, "ties"))


def special_kinds(n):
    """Row makers: SciPy's exact values expected (True), or the contract."""
    fmax = np.finfo(np.float32).max

    def put(**at):
        def make(r, fill=None):
            if fill is not None:
                r.fill(fill)
            for j, value in at.items():
                r[int(j[1:])] = value
        return make

    return [
        ("nan", True, lambda r: put(**{f"j{n - 1}": np.nan})(r)),
        ("+inf", True, lambda r: put(**{f"j{n // 2}": np.inf})(r)),
        ("all -inf", True, lambda r: r.fill(-np.inf)),
        ("one finite", False, lambda r: put(**{f"j{n - 2}": -4.0})(r, -np.inf)),
        ("-FLT_MAX", False, lambda r: put(j3=-fmax, **{f"j{n - 1}": -fmax})(r, -np.inf)),
        ("beyond", False, lambda r: put(j0=3.0e4)(r)),
    ]


@pytest.mark.parametrize("n", [61, 80, 96, 97, 127, 160])
def test_special_rows_every_position(isa, n):
    """Each special row at each position of 2 x 16 + 1 rows: SciPy's values
    for NaN, +inf and all -inf rows, the contract for the others (one
    finite entry, a max of -FLT_MAX beside -inf, a max beyond 2^13), which
    the special row must not disturb."""
    rows = 33
    base = (np.random.default_rng(n).standard_normal((rows, n)) * 3.0).astype(np.float32)
    for name, exact, make in special_kinds(n):
        for p in range(rows):
            x = base.copy()
            make(x[p])
            key = (isa, n, name, p)
            if not exact:
                check_rotated(x, key)
                continue
            out = np.full_like(x, 7.0)
            with np.errstate(invalid="ignore"):
                ssm.log_softmax(x, axis=-1, out=out)
                scipy_rows = scipy.special.log_softmax(x, axis=-1)
            assert np.array_equal(out[p], scipy_rows[p], equal_nan=True), key
            others = np.arange(rows) != p
            assert_log_softmax_contract(x[others], out[others], key)


@pytest.mark.parametrize("n", [61, 64, 97, 128, 160])
def test_float32_write_at_its_certificate_edge(isa, n):
    """v = lse - max near 0.5, 1, 2 and 4 (where the float32 spacing of v
    doubles) and spread over v's own rounding: the float32 write where the
    certificate holds, the float64 one else (the direct rows' test)."""
    certificate_edge(isa, n)


def test_flush_edge_and_clamp(isa):
    """The others 55 to 100 below the max (v from ~n e^-55 through the
    certificate's floor to terms that flush), and entries below the table's
    clamp with the max near -8000."""
    for n in (61, 96, 97, 160):
        rows = 35
        rng = np.random.default_rng([n, 9])
        x = rng.standard_normal((rows, n)) * 0.5
        top = rng.integers(n, size=rows)
        x[np.arange(rows), top] = x.max(axis=1) + np.linspace(55.0, 100.0, rows)
        check_rotated(x.astype(np.float32), (isa, n, "flush"))
        c = rng.standard_normal((rows, n)) - 8000.0
        c[:, 1::3] = -(2.0**14) - rng.uniform(0, 1e3, (rows, len(range(1, n, 3))))
        c[:, 2] = -np.inf
        c[0, n - 1] = -7950.0
        check_rotated(c.astype(np.float32), (isa, n, "clamp"))
