"""Batches of short rows (the short-row kernels: a group of rows per vector,
one row per lane), through the public API, on every kernel set this machine
runs, both dtypes.

References are independent: float64 for float32 data and NumPy longdouble
(80-bit on x86) for float64 data; special values against scipy.special.
Row counts are not multiples of the rows per group (16 float32 rows on
AVX-512, 8 on AVX2), and special rows sit at every position of a group.
"""
import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core

# Widest group: 16 float32 lanes (AVX-512). Every n up to 3 * 16 + 1, then the
# lengths users have (classes, mixtures, gates, attention rows), including
# ones past the short-row kernels' limit (256), which take the row kernels.
WIDEST = 16
LENGTHS = sorted(set(range(1, 3 * WIDEST + 2)) | {2, 3, 5, 8, 10, 16, 32, 64, 100, 128, 256, 1000, 1024, 4096})
ROWS = [2, 3, WIDEST - 1, WIDEST + 1, 2 * WIDEST + 3]
F32_SOFTMAX_ULP = 4
F64_RTOL = 1e-14


def wide(dtype):
    return np.float64 if dtype == np.float32 else np.longdouble


def ref_softmax(x):
    xw = x.astype(wide(x.dtype))
    e = np.exp(xw - xw.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_logsumexp(x, b=None):
    xw = x.astype(wide(x.dtype))
    bw = np.ones_like(xw) if b is None else b.astype(xw.dtype)
    mx = np.where(bw != 0, xw, -np.inf).max(axis=-1, keepdims=True)
    s = (bw * np.exp(xw - mx)).sum(axis=-1)
    return mx[..., 0] + np.log(np.abs(s)), np.sign(s)


def assert_softmax_close(y, ref):
    """float32 <= 4 ulp relative (outputs above the smallest normal), float64 <= 1e-14."""
    tiny = np.finfo(y.dtype).tiny
    big = ref > tiny
    rel = np.abs(y[big].astype(ref.dtype) - ref[big]) / ref[big]
    bound = F32_SOFTMAX_ULP * 2.0**-23 if y.dtype == np.float32 else F64_RTOL
    assert rel.size == 0 or rel.max() <= bound, f"max relative error {float(rel.max()):.3g}"
    assert np.all(np.abs(y[~big].astype(ref.dtype) - ref[~big]) <= 2 * tiny)


def assert_log_softmax_close(y, x):
    """Within 2 ulp of the exact x - lse, plus float64 rounding of lse."""
    xw = x.astype(wide(x.dtype))
    lse = ref_logsumexp(x)[0][..., None]
    ref = xw - lse
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(y), fin)
    err = np.abs(y[fin].astype(ref.dtype) - ref[fin])
    bound = 2 * np.spacing(np.abs(ref[fin]).astype(x.dtype)).astype(ref.dtype)
    bound += 4 * np.finfo(np.float64).eps * np.abs(lse * np.ones_like(ref))[fin]
    assert np.all(err <= bound)


def assert_lse_close(got, ref, dtype):
    """float32 within 1 ulp of the rounded exact result; float64 1e-14 relative."""
    if dtype == np.float32:
        rounded = ref.astype(np.float32)
        ulp = np.spacing(np.abs(rounded))
        assert np.all(np.abs(got - rounded) <= ulp), np.abs(got - rounded).max()
    else:
        err = np.abs(got.astype(np.longdouble) - ref)
        assert np.all(err <= F64_RTOL * np.maximum(np.abs(ref), 1e-300) + 2 * 2.0**-52)


def logits(rng, rows, n, dtype, scale=8.0):
    return (rng.standard_normal((rows, n)) * scale).astype(dtype)


@pytest.mark.parametrize("n", LENGTHS)
def test_softmax_every_length(isa, dtype, n):
    rng = np.random.default_rng(n)
    for rows in ROWS:
        x = logits(rng, rows, n, dtype, scale=20.0)
        if n > 2:
            x[rows // 2, rng.integers(n)] = -np.inf
        y = ssm.softmax(x, axis=-1)
        assert y.dtype == dtype
        assert_softmax_close(y, ref_softmax(x))


@pytest.mark.parametrize("n", LENGTHS)
def test_log_softmax_every_length(isa, dtype, n):
    rng = np.random.default_rng(100 + n)
    for rows in ROWS:
        for scale in (1.0, 30.0, 1e4):
            x = logits(rng, rows, n, dtype, scale=scale)
            if n > 3:
                x[0, 1] = -np.inf
            assert_log_softmax_close(ssm.log_softmax(x, axis=-1), x)


@pytest.mark.parametrize("n", LENGTHS)
def test_logsumexp_every_length(isa, dtype, n):
    rng = np.random.default_rng(200 + n)
    for rows in ROWS:
        for scale in (1e-3, 1.0, 8.0, 1e3, 1e6):
            x = logits(rng, rows, n, dtype, scale=scale)
            got = ssm.logsumexp(x, axis=-1)
            assert got.dtype == dtype
            assert_lse_close(got, ref_logsumexp(x)[0], dtype)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 17, 64, 256])
def test_logsumexp_near_zero_in_any_lane(isa, n):
    """float32 results near 0, where the short-row kernels' first, cheaper
    sum cannot certify 1 ulp, at each position of a group of ordinary rows:
    that group is summed again with the accurate terms, and every row of it
    (the ordinary ones too) meets the contract."""
    rng = np.random.default_rng(7 + n)
    rows = WIDEST + 5
    base = logits(rng, rows, n, np.float32, scale=1.0)
    for lse_target in (3e-5, -2e-3, 0.04):
        for p in range(rows):
            x = base.copy()
            row = x[p].astype(np.float64)
            # Shift the row so that its exact log-sum-exp is near lse_target.
            x[p] = (row - ref_logsumexp(row[None, :])[0][0] + lse_target).astype(np.float32)
            ref = ref_logsumexp(x)[0]
            assert abs(ref[p]) < 0.05
            got = ssm.logsumexp(x, axis=-1)
            assert_lse_close(got, ref, np.float32)


def test_log_softmax_dominant_entry(isa, dtype):
    """A dominant entry's log-probability -log1p(sum of the others' terms)
    keeps full relative accuracy (the max's own terms counted apart)."""
    rng = np.random.default_rng(3)
    for n in (2, 3, 5, 8, 17, 32, 100):
        x = (rng.standard_normal((2 * WIDEST + 3, n)) * 3 - 25).astype(dtype)
        top = rng.integers(n, size=x.shape[0])
        x[np.arange(x.shape[0]), top] = rng.standard_normal(x.shape[0])
        y = ssm.log_softmax(x, axis=1)
        xl = x.astype(np.longdouble)
        mx = xl.max(axis=1, keepdims=True)
        others = np.where(xl == mx, 0, np.exp(xl - mx)).sum(axis=1)
        exact = -np.log1p(others)
        got = y[np.arange(x.shape[0]), top].astype(np.longdouble)
        assert np.all(np.abs(got - exact) <= 4 * np.finfo(dtype).eps * np.abs(exact)), n


def test_log_softmax_dominant_entry_every_entry(isa, dtype):
    """Every entry of rows with one dominant entry, lse - max from 1 down to
    1e-12, within the 2-ulp contract (float32's other terms use a degree-6
    exp whose error shrinks with lse - max; the max's own terms are exact),
    rows at every position of a group."""
    rng = np.random.default_rng(5)
    rows = 2 * WIDEST + 3
    for n in (2, 3, 5, 8, 9, 17, 31, 32, 33, 100, 256):
        for v in (1.0, 1e-2, 2e-3, 1e-4, 1e-6, 6e-8, 1e-9, 1e-12):
            x = rng.standard_normal((rows, n)) * 0.5 - 3.0
            top = rng.integers(n, size=rows)
            others = np.where(np.arange(n) == top[:, None], -np.inf, x)
            lse_others = np.log(np.exp(others).sum(axis=1)) if n > 1 else np.zeros(rows)
            x[np.arange(rows), top] = lse_others - np.log(np.expm1(v))
            x = x.astype(dtype)
            y = ssm.log_softmax(x, axis=1)
            assert_log_softmax_close(y, x)
            xl = x.astype(np.longdouble)
            mx = xl.max(axis=1, keepdims=True)
            exact = -np.log1p(np.where(xl == mx, 0, np.exp(xl - mx)).sum(axis=1))
            got = y[np.arange(rows), np.argmax(xl, axis=1)].astype(np.longdouble)  # the max (v = 1: not top)
            assert np.all(np.abs(got - exact) <= 4 * np.finfo(dtype).eps * np.abs(exact)), (n, v)


def test_ties_at_the_max(isa, dtype):
    """Several entries equal to the max: each is one exact term of the sum."""
    for n in (2, 3, 8, 33):
        x = np.zeros((WIDEST + 3, n), dtype)
        x[:, 1:] = -30
        x[:, -1] = 0
        x[3, :] = 5  # all equal
        assert_softmax_close(ssm.softmax(x, axis=1), ref_softmax(x))
        assert_log_softmax_close(ssm.log_softmax(x, axis=1), x)
        assert_lse_close(ssm.logsumexp(x, axis=1), ref_logsumexp(x)[0], dtype)


SPECIALS = {
    "nan": lambda row: row.__setitem__(len(row) // 2, np.nan),
    "+inf": lambda row: row.__setitem__(0, np.inf),
    "two +inf": lambda row: (row.__setitem__(0, np.inf), row.__setitem__(-1, np.inf)),
    "all -inf": lambda row: row.fill(-np.inf),
    "one finite": lambda row: (row.fill(-np.inf), row.__setitem__(len(row) - 1, 3.0)),
    "huge max": lambda row: row.__setitem__(0, 3e6),
    "huge negative": lambda row: row.__iadd__(-5e6),
    "largest finite": lambda row: row.__setitem__(0, np.finfo(row.dtype).max),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # SciPy formulas on NaN rows
@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 17, 64])
def test_special_rows_every_position(isa, dtype, kind, n):
    """A special row at each position of a group (and of the partial last
    group) gives SciPy's result; the ordinary rows around it are untouched by it."""
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(4)
    rows = WIDEST + 5
    base = logits(rng, rows, n, dtype)
    for p in range(rows):
        x = base.copy()
        SPECIALS[kind](x[p])
        for name, ours, theirs in (
            ("softmax", ssm.softmax, special.softmax),
            ("log_softmax", ssm.log_softmax, special.log_softmax),
        ):
            with np.errstate(all="ignore"):
                want = theirs(x.astype(wide(dtype)), axis=1)
            got = ours(x, axis=1)
            ordinary = np.ones(rows, bool)
            ordinary[p] = kind in ("huge max", "huge negative", "largest finite", "one finite")
            # Ordinary rows (finite special ones too) to the accuracy contract
            # against our references (SciPy's float64 log_softmax loses a
            # dominant entry's -log1p(tiny) to rounding).
            if name == "softmax":
                assert_softmax_close(got[ordinary], ref_softmax(x[ordinary]))
            elif kind != "largest finite":
                assert_log_softmax_close(got[ordinary], x[ordinary])
            if not ordinary[p]:  # SciPy's special values, exactly
                np.testing.assert_array_equal(got[p], want[p].astype(dtype), err_msg=f"{name} p={p}")
        with np.errstate(all="ignore"):
            want = special.logsumexp(x.astype(wide(dtype)), axis=1)
        got = ssm.logsumexp(x, axis=1)
        np.testing.assert_allclose(got, want.astype(dtype), rtol=2e-7 if dtype == np.float32 else 1e-14)


def test_weighted_logsumexp_and_sign(isa, dtype):
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 5, 8, 16, 17, 100):
        rows = 2 * WIDEST + 3
        x = logits(rng, rows, n, dtype, scale=3.0)
        b = rng.standard_normal((rows, n)).astype(dtype)
        b[1] = 0  # all weights zero: -inf, sign 0
        b[2, 0] = 0
        x[2, 0] = np.nan  # masked out by its zero weight
        b[4, -1] = np.inf
        x[5, 0] = np.nan
        if n > 1:
            b[6, :2] = [1, -1]
            x[6, :2] = 2.0  # the max's terms cancel
            b[7] = np.abs(b[7])
        got, sgn = ssm.logsumexp(x, axis=1, b=b, return_sign=True)
        with np.errstate(all="ignore"):
            want, wsgn = special.logsumexp(x.astype(wide(dtype)), axis=1, b=b.astype(wide(dtype)), return_sign=True)
        np.testing.assert_array_equal(sgn, wsgn.astype(dtype))
        fin = np.isfinite(want)
        np.testing.assert_array_equal(np.isfinite(got), fin)
        np.testing.assert_array_equal(got[~fin], want[~fin].astype(dtype))
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got[fin], want[fin], rtol=tol, atol=tol)
        # no sign: negative sums are NaN
        plain = ssm.logsumexp(x, axis=1, b=b)
        neg = wsgn < 0
        assert np.all(np.isnan(plain[neg]))
        np.testing.assert_array_equal(plain[~neg], got[~neg])


def test_weighted_matches_unweighted_with_unit_weights(isa, dtype):
    rng = np.random.default_rng(6)
    for n in (1, 2, 7, 16, 33):
        x = logits(rng, 2 * WIDEST + 1, n, dtype)
        ref = ref_logsumexp(x)[0]
        assert_lse_close(ssm.logsumexp(x, axis=1, b=np.ones_like(x)), ref, dtype)
        res, sgn = ssm.logsumexp(x, axis=1, return_sign=True)
        assert_lse_close(res, ref, dtype)
        assert np.all(sgn == 1)


@pytest.mark.parametrize("n", [2, 5, 16, 33])
def test_out_and_in_place(isa, dtype, n):
    rng = np.random.default_rng(7)
    x = logits(rng, 2 * WIDEST + 3, n, dtype)
    x[3, 0] = np.nan
    for fn in (ssm.softmax, ssm.log_softmax):
        want = fn(x, axis=1)
        out = np.empty_like(x)
        assert fn(x, axis=1, out=out) is out
        np.testing.assert_array_equal(out, want)
        y = x.copy()
        assert fn(y, axis=1, out=y) is y
        np.testing.assert_array_equal(y, want)


# Group outputs of 2 KiB and more are streamed (whole lines inside the run,
# regular stores at its ends): lengths on both sides of that size for every
# group width, the output at every 8-byte offset of a cache line.
@pytest.mark.parametrize("n", [15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129, 255, 256])
def test_short_rows_streamed_and_regular_stores_agree(isa, dtype, restore_settings, n):
    rng = np.random.default_rng(11)
    rows = 2 * WIDEST + 3
    x = logits(rng, rows, n, dtype)
    x[5, n // 2] = np.nan  # a flagged row inside a group: the group is written row by row
    results = {}
    for policy in ("stream", "regular"):
        _core.testing.set_store_policy(policy)
        for offset in range(0, 64 // x.itemsize + 1):
            ybuf = np.full(rows * n + offset + 8, 7.0, dtype)
            y = ybuf[offset : offset + rows * n].reshape(rows, n)
            got = []
            for fn in (_core.softmax, _core.log_softmax):
                special = fn(x, y) if fn is _core.log_softmax else fn(x, y, "auto")
                assert list(special) == [5]
                got.append(np.delete(y, 5, axis=0).copy())
            assert np.all(ybuf[:offset] == 7.0) and np.all(ybuf[offset + rows * n :] == 7.0)
            assert np.all(y[5] == 7.0)  # the special row is left for the caller
            results[(policy, offset)] = got
    first = results[("regular", 0)]
    for key, got in results.items():
        for a, b in zip(got, first):
            assert a.tobytes() == b.tobytes(), key
    ok = np.delete(x, 5, axis=0)
    assert_softmax_close(first[0], ref_softmax(ok))
    assert_log_softmax_close(first[1], ok)
    y = x.copy()  # in place, streamed
    _core.testing.set_store_policy("stream")
    _core.log_softmax(y, y)
    assert np.delete(y, 5, axis=0).tobytes() == first[1].tobytes()


@pytest.mark.parametrize("order", ["C", "F"])
def test_other_axes_and_layouts(isa, dtype, order):
    """Short rows along a non-last axis, Fortran order, keepdims."""
    rng = np.random.default_rng(8)
    x = np.asarray(logits(rng, 6 * 7, 5, dtype).reshape(6, 7, 5), order=order)
    for axis in (0, 1, 2):
        xm = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
        y = np.moveaxis(ssm.softmax(x, axis=axis), axis, -1).reshape(xm.shape)
        assert_softmax_close(y, ref_softmax(xm))
        y = np.moveaxis(ssm.log_softmax(x, axis=axis), axis, -1).reshape(xm.shape)
        assert_log_softmax_close(y, xm)
        res = ssm.logsumexp(x, axis=axis, keepdims=True)
        assert res.shape == tuple(1 if i == axis else d for i, d in enumerate(x.shape))
        assert_lse_close(np.moveaxis(res, axis, -1).reshape(-1), ref_logsumexp(xm)[0], dtype)


def test_bit_identical_for_any_thread_count(isa, dtype):
    """Groups are split between threads; lanes never mix, so no bit moves."""
    rng = np.random.default_rng(9)
    previous = ssm.get_num_threads()
    try:
        for n in (2, 5, 32, 100):
            x = logits(rng, (1 << 18) // n + 3, n, dtype)
            x[7, 0] = np.nan
            x[-1, 0] = 3e6
            results = []
            for threads in (1, 2, 3):
                ssm.set_num_threads(threads)
                results.append(
                    (ssm.softmax(x, axis=1), ssm.log_softmax(x, axis=1), ssm.logsumexp(x, axis=1))
                )
            for other in results[1:]:
                for a, b in zip(results[0], other):
                    np.testing.assert_array_equal(a, b)
    finally:
        ssm.set_num_threads(previous)


def test_core_reports_special_rows(isa, dtype):
    """The kernels' list of special rows is the per-row path's (ascending)."""
    rng = np.random.default_rng(10)
    x = logits(rng, 2 * WIDEST + 3, 6, dtype)
    bad = [0, 5, 16, 17, 34]
    x[bad, 2] = np.nan
    x[9, 1] = 3e6  # out of the fast range: computed by the per-row path, not special
    for fn in (_core.softmax, _core.log_softmax):
        y = np.empty_like(x)
        args = ("auto",) if fn is _core.softmax else ()
        assert list(fn(x, y, *args)) == bad
    out = np.empty(x.shape[0], dtype)
    assert list(_core.logsumexp(x, out)) == bad
