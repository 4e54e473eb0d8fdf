"""gumbel_softmax's fast paths: short rows (rows inside one 64-element tile,
several per batch, each element's noise made once) and the kept noise (pass 1
stores the noise in the output, pass 2 reads it back instead of generating
it again). Both must give the bits of the row-by-row walk that regenerates
the noise (both switched off through _core.testing), on every kernel set and
thread count, at row lengths that cross every vector, group and tile tail and
row counts that leave partial batches; match a float64 softmax of
(x + g) / tau built from the same noise; and report a bad row as the row walk
does, writing nothing (unless the output is a new array).
"""
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core
from simdsoftmax._gumbel import _key
from tiles import tiles

KEY = (3, 4, 5)
TILE = 64
WIDEST = max(tiles(isa, np.float32)["gumbel.lanes"] for isa in ssm.available_isas())
# every length up to three of the widest vectors and one more, then the
# group and tile boundaries, and past the short-row limit (one tile)
SIZES = sorted(set(range(1, 3 * WIDEST + 2)) | {15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 127, 128, 129})


@pytest.fixture(autouse=True)
def paths_on():
    """Every test starts and ends with both paths on."""
    _core.testing.set_gumbel_short_rows_max(1 << 30)
    _core.testing.set_gumbel_softmax_keep(True)
    yield
    _core.testing.set_gumbel_short_rows_max(1 << 30)
    _core.testing.set_gumbel_softmax_keep(True)


def kernel(x, inv_tau, fast, how="out", row_base=0, col_base=0):
    """(status, result) of _core.gumbel_softmax with the fast paths on or off;
    how: "out" (an array of -7s), "fresh" (the same, told it is new) or
    "inplace" (a copy of x as both input and output)."""
    _core.testing.set_gumbel_short_rows_max(1 << 30 if fast else 0)
    _core.testing.set_gumbel_softmax_keep(fast)
    try:
        if how == "inplace":
            y = x.copy()
            return _core.gumbel_softmax(y, y, inv_tau, *KEY, row_base, col_base, False), y
        y = np.full_like(x, -7)
        return _core.gumbel_softmax(x, y, inv_tau, *KEY, row_base, col_base, how == "fresh"), y
    finally:
        _core.testing.set_gumbel_short_rows_max(1 << 30)
        _core.testing.set_gumbel_softmax_keep(True)


def rows_for(isa, dtype, n):
    """Two short-row batches and 3 rows more (a partial batch): a batch holds
    short_batch // n short rows, and at least a vector's lanes of them."""
    t = tiles(isa, dtype)
    per_batch = max(1, t["gumbel.short_batch"] // n, t["gumbel.lanes"] if n <= TILE else 1)
    return 2 * per_batch + 3


def logits(rng, rows, n, dtype, special=True):
    """N(0, 3^2) rows; with special rows: a masked logit, a row all -inf but
    one, a row beyond the fast range (redone relative to its max) and a row
    of the dtype's lowest value but one 0 (x / tau overflows)."""
    x = (rng.standard_normal((rows, n)) * 3).astype(dtype)
    if special and rows > 5:
        if n > 1:
            x[1, rng.integers(n)] = -np.inf
        x[2] = -np.inf
        x[2, rng.integers(n)] = 0.5
        x[3] += dtype.type(3e6)
        x[5] = np.finfo(dtype).min
        x[5, rng.integers(n)] = 0
    return x


def noise(shape, dtype, key=KEY, row_base=0, col_base=0):
    g = np.empty(shape, dtype)
    _core.testing.gumbel_noise(g, *key, row_base, col_base)
    return g


def reference(x, tau, g):
    """softmax((x + g) / tau) per row in float64."""
    z = (x.astype(np.float64) + g.astype(np.float64)) / tau
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("tau", [1.0, 0.6])  # 1.0: the unit form, exp(x) / E
def test_short_rows_match_the_row_walk(isa, dtype, tau):
    rng = np.random.default_rng(21)
    for n in SIZES:
        x = logits(rng, rows_for(isa, dtype, n), n, dtype)
        ref = kernel(x, 1 / tau, False)
        assert ref[0] == (-1, "")
        for how in ("out", "fresh", "inplace"):
            got = kernel(x, 1 / tau, True, how)
            assert got[0] == (-1, "") and got[1].tobytes() == ref[1].tobytes(), (n, how)


@pytest.mark.parametrize("col_base", [1, 5, 31, 60])
def test_short_rows_at_any_column(isa, dtype, col_base):
    """A block of a larger array (col_base): rows that stay inside one tile
    take the short path, the others the row walk, with the same bits."""
    rng = np.random.default_rng(col_base)
    for n in sorted({1, 2, 3, 7, 16, 17, TILE - col_base - 1, TILE - col_base, TILE - col_base + 1} - {0}):
        x = logits(rng, rows_for(isa, dtype, n), n, dtype)
        for tau in (1.0, 0.6):
            ref = kernel(x, 1 / tau, False, row_base=7, col_base=col_base)
            got = kernel(x, 1 / tau, True, row_base=7, col_base=col_base)
            assert got[0] == ref[0] == (-1, "") and got[1].tobytes() == ref[1].tobytes(), (n, tau)



def test_short_rows_in_calls_smaller_than_a_batch(isa, dtype):
    """Fewer rows than a batch (a batch of just those rows): the row walk's
    bits at 1 to 3 rows and around one batch, from columns 0 and 5."""
    rng = np.random.default_rng(27)
    for n in (1, 3, 8, 15, 16, 17, 33, 59, 64):
        per_batch = max(1, tiles(isa, dtype)["gumbel.short_batch"] // n)
        for rows in sorted({1, 2, 3, per_batch - 1, per_batch, per_batch + 1} - {0}):
            x = logits(rng, rows, n, dtype)
            for col_base in (0, 5) if n <= TILE - 5 else (0,):
                for tau in (1.0, 0.6):
                    ref = kernel(x, 1 / tau, False, row_base=2, col_base=col_base)
                    got = kernel(x, 1 / tau, True, "fresh", row_base=2, col_base=col_base)
                    assert got[0] == ref[0] == (-1, ""), (n, rows)
                    assert got[1].tobytes() == ref[1].tobytes(), (n, rows, col_base, tau)

# short rows whose steps are taken together: a vector of doubles (at most 8)
# for the sums, a vector of floats (the lanes, at most 16) for max, checks and sums
SUM_ROWS = max(8, WIDEST)


def test_short_row_sums_with_a_special_row_anywhere_in_a_group(isa, dtype):
    """The short rows' sums go several rows at a time, a group falling back
    to row by row when a row of it is bad or has a term over 1000 binades
    below its largest: each kind of row at every position of a group, in
    row counts that leave a partial group, gives the row walk's bits (bad
    rows: the row walk's status, and with a new array the other rows'
    bits)."""
    rng = np.random.default_rng(28)
    for n in (1, 2, 8, 13, 17):
        for rows in (SUM_ROWS - 1, 2 * SUM_ROWS + 3):
            for pos in range(min(rows, 2 * SUM_ROWS)):
                x = (rng.standard_normal((rows, n)) * 3).astype(dtype)
                kinds = ["far", "big"] + (["masked"] if n > 1 else []) + ["nan", "allinf"]
                for kind in kinds:
                    xk = x.copy()
                    if kind == "far":  # one term far below the row's largest
                        xk[pos, 0] = -2000 if n > 1 else xk[pos, 0]
                    elif kind == "big":  # beyond the fast range
                        xk[pos] += dtype.type(3e6)
                    elif kind == "masked":
                        xk[pos, n - 1] = -np.inf
                    elif kind == "nan":
                        xk[pos, n // 2] = np.nan
                    else:
                        xk[pos] = -np.inf
                    for tau in (1.0, 0.6):
                        if kind in ("nan", "allinf"):
                            status, got = kernel(xk, 1 / tau, True, "fresh")
                            assert status[0] == pos, (n, rows, pos, kind)
                            fine = np.arange(rows) != pos
                            ref = kernel(np.where(fine[:, None], xk, 0).astype(dtype), 1 / tau, False)[1]
                            assert got[fine].tobytes() == ref[fine].tobytes(), (n, rows, pos, kind, tau)
                            continue
                        ref = kernel(xk, 1 / tau, False)
                        got = kernel(xk, 1 / tau, True, "out")
                        assert got[0] == ref[0] == (-1, ""), (n, rows, pos, kind)
                        assert got[1].tobytes() == ref[1].tobytes(), (n, rows, pos, kind, tau)


@pytest.mark.parametrize("tau", [1.0, 0.6])
def test_short_rows_against_float64(isa, dtype, tau):
    rng = np.random.default_rng(22)
    rtol = 4 * 2.0**-23 + 2e-6 if dtype == np.float32 else 1e-12
    for n in SIZES:
        rows = rows_for(isa, dtype, n)
        x = logits(rng, rows, n, dtype, special=False)
        if n > 1:
            x[1, rng.integers(n)] = -np.inf
        x[2] = -np.inf
        x[2, rng.integers(n)] = 0.5
        status, y = kernel(x, 1 / tau, True, "fresh")
        assert status == (-1, "")
        g = noise(x.shape, dtype)
        ref = reference(x, tau, g)
        assert np.all(y[np.isneginf(x)] == 0)
        np.testing.assert_allclose(y[2][~np.isneginf(x[2])], 1, rtol=4 * np.finfo(dtype).eps)
        # plus z = (x + g) * (1 / tau) rounded in the data's precision: x + g,
        # 1 / tau and the product, each within epsneg |z|, move y_i by z_i's
        # error less the p-weighted mean of every z_j's error (the normalizer),
        # so by at most 3 epsneg (|z_i| + sum_j p_j |z_j|); with |z_i| alone
        # small-probability entries of rows with a dominant large |z_j| went
        # over (1.06x at 19 rows of 128, tau 0.6, on every kernel set)
        z = np.abs(x.astype(np.float64) + g) / tau
        mean = np.where(ref > 0, ref * z, 0).sum(-1, keepdims=True)  # -inf logits weigh 0
        tol = rtol + 3 * np.finfo(dtype).epsneg * (z + mean)
        big = ref > 1e-30
        assert np.all(np.abs(y[big] - ref[big]) / ref[big] < tol[big]), n
        np.testing.assert_allclose(y.astype(np.float64).sum(-1), 1, rtol=64 * np.finfo(dtype).eps)


@pytest.mark.parametrize("tau", [1.0, 0.6])
@pytest.mark.parametrize("chunks", [False, True])
def test_kept_noise_matches_regeneration(isa, dtype, tau, chunks, small_chunks):
    """Long rows (whole, or split into chunks of 37 on 3 threads): pass 2
    from the noise pass 1 kept in the output, the bits of regenerating it."""
    if chunks:
        small_chunks(3)
    rng = np.random.default_rng(23)
    for n in (65, 100, 127, 129, 1000, 4097):
        x = logits(rng, 7, n, dtype)
        ref = kernel(x, 1 / tau, False)
        assert ref[0] == (-1, "")
        for how in ("out", "fresh", "inplace"):
            got = kernel(x, 1 / tau, True, how)
            assert got[0] == (-1, "") and got[1].tobytes() == ref[1].tobytes(), (n, how)


def test_kept_noise_against_float64(isa, dtype):
    rng = np.random.default_rng(24)
    rtol = 4 * 2.0**-23 + 2e-6 if dtype == np.float32 else 1e-12
    for tau in (1.0, 0.5):
        x = logits(rng, 3, 2001, dtype, special=False)
        x[0, 5] = -np.inf
        key = _key(np.random.default_rng(99))
        y = ssm.gumbel_softmax(x, tau=tau, rng=np.random.default_rng(99))
        ref = reference(x, tau, noise(x.shape, dtype, key=key))
        big = ref > 1e-30
        assert y[0, 5] == 0 and np.max(np.abs(y[big] - ref[big]) / ref[big]) < rtol


@pytest.mark.parametrize("shape", [(2000, 8), (301, 64), (5, 1000), (1, 5000)])
def test_identical_for_any_thread_count(isa, dtype, shape, small_chunks):
    rng = np.random.default_rng(25)
    x = logits(rng, *shape, dtype)
    results = []
    for threads in (1, 2, 3):
        small_chunks(threads)
        for tau in (1.0, 0.7):
            results.append((threads, tau, ssm.gumbel_softmax(x, tau=tau, rng=5)))
            results.append((threads, tau, ssm.gumbel_softmax(x, tau=tau, rng=5, out=np.empty_like(x))))
    for threads, tau, y in results:
        first = next(r for t, tt, r in results if tt == tau)
        assert y.tobytes() == first.tobytes(), (threads, tau)


@pytest.mark.parametrize("n", [1, 8, 64, 65, 1000])
def test_bad_rows_raise_and_write_nothing(isa, dtype, n):
    """The first bad row is named with the row walk's reason, whatever comes
    after it; out= and in place are left untouched."""
    rng = np.random.default_rng(26)
    rows = rows_for(isa, dtype, min(n, TILE))
    for value, reason in ((np.nan, "contains NaN"), (np.inf, r"contains \+inf"), (None, "has no finite logit")):
        x = logits(rng, rows, n, dtype)
        bad = rows - 2
        if value is None:
            x[bad] = -np.inf
        else:
            x[bad, n // 2] = value
        x[-1] = np.nan  # a later bad row
        where = rf"row \({bad},\) {reason}"
        with pytest.raises(ValueError, match=where):
            ssm.gumbel_softmax(x, rng=3)
        out = np.full_like(x, -7)
        with pytest.raises(ValueError, match=where):
            ssm.gumbel_softmax(x, tau=0.6, rng=3, out=out)
        assert np.all(out == -7)
        before = x.copy()
        with pytest.raises(ValueError, match=where):
            ssm.gumbel_softmax(x, rng=3, out=x)
        assert np.array_equal(x, before, equal_nan=True)
        for fast in (False, True):
            for how in ("out", "fresh", "inplace"):
                status = kernel(x, 1.0, fast, how)[0]
                assert status[0] == bad and status[1] == reason.replace("\\", ""), (fast, how)


def test_hard_is_the_argmax_draw_on_short_rows(isa):
    rng = np.random.default_rng(27)
    x = rng.standard_normal((1001, 8)).astype(np.float32)
    h = ssm.gumbel_softmax(x, hard=True, rng=9)
    idx = ssm.gumbel_argmax(x, rng=9)
    assert np.array_equal(h, np.eye(8, dtype=np.float32)[idx])
    soft = ssm.gumbel_softmax(x, rng=9)
    assert np.array_equal(np.argmax(soft, axis=1), idx)


@pytest.mark.parametrize("tau, span", [(1.0, 900.0), (0.5, 450.0), (0.01, 9.0)])
@pytest.mark.parametrize("order", ["random", "rising"])
@pytest.mark.parametrize("chunks", [False, True])
def test_wide_term_ranges_identical_across_isas(dtype, tau, span, order, chunks, small_chunks):
    """Terms that span more binades than the data's normal exponents (x / tau
    over [-span / tau, 0]: exp reaches 2^-1298), so that pass 1's sums and
    the writes meet terms both above and below 2^-126 (2^-1022) of their
    slot's largest, and, with rising logits, a new largest in most vectors:
    the exact scalings (scale2) must give the same bits on every kernel set,
    in every path (short rows, kept noise, regenerated noise; whole rows and
    chunks of 37 on 3 threads)."""
    if chunks:
        small_chunks(3)
    rng = np.random.default_rng(31)
    for n in (8, 24, 64, 65, 200, 1000, 4097):
        x = -rng.uniform(0, span, (6, n))
        if order == "rising":
            x.sort(axis=-1)
        x[1, n // 2] = -np.inf
        x[2] *= 1e-3  # a narrow row among the wide ones
        x = x.astype(dtype)
        per_isa = []
        for isa in ssm.available_isas():
            with ssm.use_isa(isa):
                got = [kernel(x, 1 / tau, fast)[1] for fast in (True, False)]
                got.append(ssm.gumbel_softmax(x, tau=tau, rng=17))
            per_isa.append([y.tobytes() for y in got])
        assert all(p == per_isa[0] for p in per_isa[1:]), (n, tau)
        assert per_isa[0][0] == per_isa[0][1], n  # the fast paths give the row walk's bits
        y = np.frombuffer(per_isa[0][0], dtype).reshape(x.shape)
        assert y[1, n // 2] == 0
        np.testing.assert_allclose(y.astype(np.float64).sum(-1), 1, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("n", [1, 3, 8, 17, 64, 65, 1000])
def test_no_finite_row_found_without_other_special_rows(isa, dtype, n):
    """A row all -inf with no NaN or +inf anywhere (the rows check's -inf
    lanes, not its NaN/+inf ones, must find it), at the first row, in the
    middle, past the first 8 rows and at the last (the block's vector tail);
    rows holding -inf beside a finite logit are fine, and a block with no
    -inf at all is fine on every path."""
    rng = np.random.default_rng(31)
    rows = rows_for(isa, dtype, min(n, TILE))
    clean = (rng.standard_normal((rows, n)) * 3).astype(dtype)
    want = kernel(clean, 1.0, False, "out")
    assert want[0][0] == -1
    for how in ("out", "fresh", "inplace"):
        for fast in (False, True):
            status, y = kernel(clean, 1.0, fast, how)
            assert status[0] == -1 and np.array_equal(y, want[1]), (how, fast)
    masked = clean.copy()
    if n > 1:
        masked[:, rng.integers(n)] = -np.inf  # every row masked somewhere, none bad
        status, y = kernel(masked, 1.0, True, "out")
        assert status[0] == -1 and np.array_equal(y, kernel(masked, 1.0, False, "out")[1])
    for bad in sorted({0, rows // 2, 9, rows - 1}):
        x = masked.copy()
        x[bad] = -np.inf
        where = rf"row \({bad},\) has no finite logit"
        out = np.full_like(x, -7)
        with pytest.raises(ValueError, match=where):
            ssm.gumbel_softmax(x, rng=3, out=out)
        assert np.all(out == -7)
        for fast in (False, True):
            for how in ("out", "fresh", "inplace"):
                status, y = kernel(x, 1.0, fast, how)
                assert status[0] == bad and status[1] == "has no finite logit", (fast, how)
                if how == "out":
                    assert np.all(y == -7)


@pytest.mark.parametrize("n", [1, 8, 16, 40, 64])
def test_short_rows_across_the_counter_words(isa, dtype, n):
    """Rows whose counter (row + row_offset) carries into its high word
    within a batch, or wraps past 2^64: the short-row kernel's counters (made
    in registers) give the row walk's bits."""
    rng = np.random.default_rng(32)
    rows = rows_for(isa, dtype, n)
    x = logits(rng, rows, n, dtype)
    for row_base, row_offset in ((2**32 - rows // 2, 5), (3, 2**64 - rows // 3), (2**40, 2**32 - 7)):
        got, want = np.full_like(x, -7), np.full_like(x, -7)
        for y, fast in ((got, True), (want, False)):
            _core.testing.set_gumbel_short_rows_max(1 << 30 if fast else 0)
            _core.testing.set_gumbel_softmax_keep(fast)
            try:
                status = _core.gumbel_softmax(x, y, 1.0, 3, 4, row_offset, row_base, 0, False)
            finally:
                _core.testing.set_gumbel_short_rows_max(1 << 30)
                _core.testing.set_gumbel_softmax_keep(True)
            assert status == (-1, "")
        assert np.array_equal(got, want), (row_base, row_offset)
