"""float32 log_softmax of batches of rows of 48 (AVX-512: 24) to
256 (AVX2: 640) elements on the one-row-at-a-time path (kernels/rows_log_softmax32_direct.h,
the kernel sets with the float32 table exp; the scalar set keeps its group
kernel up to 48 and the row kernels beyond), and of rows of 16 to 47
(AVX-512: 23) on those sets' group kernel with the same terms and certificate (one row per lane), whose rows go G at a time (G = the
float64 lane count: 8 on AVX-512, 4 on AVX2, 2 on NEON) for one vector
log1p and certificate per G rows, each row then written in float32 or in
float64 lanes (by its certificate) or left to the per-row path. Every
length from 16 to 3 x 16 + 1 and every tail of the longer ones, batches
that end in a partial set of rows, spreads from a dominant entry to ~log n
(both writes), ties at the max, entries below the table's clamp, the
others at the edge of the terms' flush (the certificate's floor), special
rows and maxima beyond 2^13 at every position of a set, in place, rotated
batches (a row's bits do not depend on its place); on every kernel set,
against the long double reference of test_log_softmax_two_pass.py.
"""
import numpy as np
import pytest
import scipy.special

import simdsoftmax as ssm
from simdsoftmax import _core
from test_log_softmax_f64_direct_scaled import check_rotated, row_counts
from test_log_softmax_two_pass import assert_log_softmax_contract

# The group kernel's last lengths (16 to 47; AVX-512 16 to 23), the path's
# first (48 to 3 x 16 + 1; AVX-512 24 on), then the tails of the 16-, 8- and 4-lane vectors near 64,
# 100, 128 and the upper limits (256, AVX2 640; beyond, the row kernels).
LENGTHS = sorted(set(range(16, 50)) | {63, 64, 65, 97, 100, 127, 128, 129, 250, 255, 256, 257, 300, 511, 639, 640, 641})
TABLE_LIMIT = 8192.0  # kTable32Limit: beyond it the per-row path


def sets(isa):
    """G, the rows per set: the float64 lane count."""
    return _core.testing.tiles(isa, "float64")["lanes"]


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length(isa, n):
    """Spreads from ~0.05 (v = lse - max near log n, the float32 write) to
    ~40 (a dominant entry, the float64 write), offsets up to +-60."""
    rng = np.random.default_rng(n)
    for rows in row_counts(sets(isa)):
        scale = np.geomspace(0.05, 40.0, rows)[:, None]
        x = (rng.standard_normal((rows, n)) * scale + rng.uniform(-60, 60, (rows, 1))).astype(np.float32)
        if n > 20:
            x[0, n - 3] = -np.inf  # a masked entry in the last, partial vector
        check_rotated(x, (isa, n, rows))


@pytest.mark.parametrize("n", [16, 24, 32, 40, 48, 49, 63, 100, 256, 300])
def test_dominant_entry(isa, n):
    """One entry 0.5 to 80 above the others' log-sum-exp: y there is
    -log1p(small) to 4 eps relative (from ~67 on v is at the terms' flush
    floor and the row goes to the per-row path), at every position of two
    sets of rows; offsets to near the table's limit."""
    rng = np.random.default_rng(60 + n)
    rows = 2 * sets(isa) + 3
    x = rng.standard_normal((rows, n)) * 2.0
    top = rng.integers(n, size=rows)
    lse_others = scipy.special.logsumexp(x, axis=1, b=np.arange(n) != top[:, None])
    x[np.arange(rows), top] = lse_others + np.geomspace(0.5, 80.0, rows)
    x += rng.choice([-8100.0, -700.0, 0.0, 90.0, 8000.0], rows)[:, None]
    check_rotated(x.astype(np.float32), (isa, n))


@pytest.mark.parametrize("kind", ["ties", "below_clamp", "flush_edge", "near_limit"])
def test_shaped_rows(isa, kind):
    g = sets(isa)
    for n in (48, 49, 2 * 8 - 1 + 48, 64, 100, 255, 256, 300):
        rows = 2 * g + 1
        rng = np.random.default_rng([n, len(kind)])
        if kind == "ties":
            # k = 1..4 copies of the max: S - 1 = (k - 1) + rest; spreads
            # narrow to wide.
            x = rng.standard_normal((rows, n)) * np.geomspace(0.1, 30.0, rows)[:, None]
            for r in range(rows):
                cols = rng.choice(n, size=1 + r % 4, replace=False)
                x[r, cols] = x[r].max() + 0.5
        elif kind == "below_clamp":
            # max near -8000, entries below the table's clamp -2^14 (terms
            # 0), one -inf; a row with its max at the vector tail.
            x = rng.standard_normal((rows, n)) - 8000.0
            x[:, 1::3] = -2.0**14 - rng.uniform(0, 1e3, (rows, len(range(1, n, 3))))
            x[:, 2] = -np.inf
            x[0, n - 1] = -7950.0
        elif kind == "flush_edge":
            # The others 55 to 100 below the max: v from ~n e^-55 (certified)
            # through the certificate's floor ~n 2^-97 to terms that flush.
            x = rng.standard_normal((rows, n)) * 0.5
            top = rng.integers(n, size=rows)
            x[np.arange(rows), top] = x.max(axis=1) + np.linspace(55.0, 100.0, rows)
        else:
            # maxima just inside and outside +-2^13 (beyond: the per-row path).
            tops = [TABLE_LIMIT, -TABLE_LIMIT, TABLE_LIMIT - 0.5, TABLE_LIMIT + 1.0, -TABLE_LIMIT - 1.0]
            x = rng.standard_normal((rows, n)) * 3.0
            for r in range(rows):
                x[r] += tops[r % len(tops)] - x[r].max()
        check_rotated(x.astype(np.float32), (isa, kind, n))


@pytest.mark.parametrize("n", [16, 24, 37, 48, 57, 65, 256, 300])
def test_special_rows_every_position(isa, n):
    """NaN (in the row's tail), +inf, all -inf, one finite entry and a max
    beyond 2^13 in each row of 2G + 1: SciPy's values for the special row,
    the contract for the others."""
    rows = 2 * sets(isa) + 1
    rng = np.random.default_rng(n)
    base = (rng.standard_normal((rows, n)) * 3.0).astype(np.float32)
    kinds = {
        "nan": lambda r: r.__setitem__(n - 1, np.nan),
        "+inf": lambda r: r.__setitem__(n // 2, np.inf),
        "all -inf": lambda r: r.fill(-np.inf),
        "one finite": lambda r: (r.fill(-np.inf), r.__setitem__(n - 2, -4.0)),
        "beyond": lambda r: r.__setitem__(0, 3.0e4),
    }
    for name, make in kinds.items():
        for p in range(rows):
            x = base.copy()
            make(x[p])
            if name in ("one finite", "beyond"):
                check_rotated(x, (isa, n, name, p))
                continue
            y = np.full_like(x, 7.0)
            with np.errstate(invalid="ignore"):
                ssm.log_softmax(x, axis=-1, out=y)
                want = scipy.special.log_softmax(x, axis=-1)
            assert np.array_equal(y[p], want[p], equal_nan=True), (isa, n, name, p)
            keep = np.arange(rows) != p
            assert_log_softmax_contract(x[keep], y[keep], (isa, n, name, p))


@pytest.mark.parametrize("n", [16, 24, 33, 64, 100])
def test_float32_write_at_its_certificate_edge(isa, n):
    """v = lse - max from 0.4 to ~log n, dense around 0.5, 1, 2 and 4 (where
    the float32 spacing of v, which the float32 write's certificate takes,
    doubles) and spread over v's own rounding, at every position of a set:
    the float32 write where v's rounding as it fell and the sum's bound fit
    within ulp32(v), the float64 one else; n from the group kernel's first
    length to the direct rows' 16-lane tails."""
    rng = np.random.default_rng(70 + n)
    edges = [b * (1.0 + s * d) for b in (0.5, 1.0, 2.0, 4.0) for s in (-1.0, 1.0) for d in (2.0**-23, 2.0**-21, 2.0**-18)]
    targets = np.concatenate([edges, rng.uniform(0.4, 4.2, 2 * sets(isa) + 16)])
    targets = targets[targets < 0.8 * np.log(n)]
    x = rng.uniform(-2.0, 0.0, (targets.size, n))
    top = rng.integers(n, size=targets.size)
    lse_others = scipy.special.logsumexp(x, axis=1, b=np.arange(n) != top[:, None])
    x[np.arange(targets.size), top] = lse_others - np.log(np.expm1(targets))
    x += rng.choice([0.0, 0.0, -37.0, 5.5], targets.size)[:, None]
    check_rotated(x.astype(np.float32), (isa, n))
