"""Reductions over a non-last axis (and Fortran order): the strided kernels,
which keep vectors across the contiguous inner axis and reduce down the
columns in place, in panels of columns and blocks of rows.

Kernel sweeps cross every column tail of the vector loops, the panel
boundary (4096 columns) and every row-block tail, on every kernel set;
the public functions then check layouts, special columns and accuracy.
"""

import numpy as np
import pytest

import simdsoftmax as ssm
from reference import assert_log_softmax_rows, axis_reference, softmax_rtol
from simdsoftmax import _core
from tiles import STRIDED_COLUMN_KERNELS, strided_column_sizes, strided_row_sizes, tiles, union_sizes

FUNCS = ["softmax", "log_softmax", "logsumexp"]


def logits(rng, shape, dtype, scale=6.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def check_against_reference(func, y, ref, dtype, where=""):
    eps = np.finfo(dtype).eps
    ref = np.asarray(ref)
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(y), fin), where
    if func == "softmax":
        big = ref > np.finfo(dtype).tiny
        rel = np.abs(y[big].astype(ref.dtype) - ref[big]) / ref[big]
        assert rel.max() <= softmax_rtol(dtype), where
    else:
        np.testing.assert_allclose(y[fin], ref[fin].astype(np.float64), rtol=4 * eps, atol=4 * eps, err_msg=where)


def run_strided(func, x3):
    """The strided kernel of `func` over axis 1 of a C-contiguous (outer, n, inner) array."""
    if func == "logsumexp":
        out = np.full((x3.shape[0], x3.shape[2]), 7.0, x3.dtype)
        special = _core.logsumexp_strided(x3, out)
    else:
        out = np.full_like(x3, 7.0)
        special = _core.softmax_strided(x3, out, "auto") if func == "softmax" else _core.log_softmax_strided(x3, out)
    return out, special


# --------------------------------------------------------------------------
# Kernels, every tail


@pytest.mark.parametrize("func", FUNCS)
def test_strided_kernels_every_column_tail(isa, dtype, func):
    """Inner lengths 1 .. 2*panel-1 (sparse inside the long ranges, dense near
    their ends): every vector tail, a full panel, and one past it."""
    rng = np.random.default_rng(30)
    n = tiles(isa, dtype)["strided_rows"] + 1  # a full block of rows and a remainder
    for inner in strided_column_sizes(isa, dtype):
        x3 = logits(rng, (1, n, inner), dtype)
        x3[0, 1, rng.integers(inner)] = -np.inf  # a masked logit in one column
        y, special = run_strided(func, x3)
        assert special.size == 0, inner
        check_against_reference(func, y, axis_reference(func, x3, 1), dtype, f"inner={inner}")


@pytest.mark.parametrize("func", FUNCS)
def test_strided_kernels_every_row_tail(isa, dtype, func):
    """Reduced lengths 1 .. 2*block-1 of the row blocks, each with inner lengths
    at every tail of the column vectors, two outer slices."""
    rng = np.random.default_rng(31)
    t = tiles(isa, dtype)
    inners = union_sizes(t[k] for k in STRIDED_COLUMN_KERNELS)
    for n in strided_row_sizes(isa, dtype):
        for inner in inners:
            x3 = logits(rng, (2, n, inner), dtype)
            y, special = run_strided(func, x3)
            assert special.size == 0, (n, inner)
            check_against_reference(func, y, axis_reference(func, x3, 1), dtype, f"n={n} inner={inner}")


def test_strided_panel_is_crossed(isa, dtype):
    """The column sweep above reaches past one panel."""
    panel = tiles(isa, dtype)["strided_panel"]
    assert {panel - 1, panel, panel + 1, 2 * panel - 1} <= set(strided_column_sizes(isa, dtype))


# --------------------------------------------------------------------------
# Public functions


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize(
    "shape,axis",
    [((40, 33), 0), ((7, 50, 17), 1), ((3, 5, 64), 0), ((6, 4, 65), (0, 1)), ((129, 16), 0), ((2, 3, 4, 20), 1)],
)
@pytest.mark.parametrize("order", ["C", "F"])
def test_non_last_axes_and_fortran_order(isa, dtype, func, shape, axis, order):
    rng = np.random.default_rng(8)
    x = np.asarray(logits(rng, shape, dtype), order=order)
    ref = axis_reference(func, x, axis)
    y = getattr(ssm, func)(x, axis=axis)
    check_against_reference(func, y, ref, dtype)
    if func != "logsumexp":
        z = x.copy(order="K")
        assert getattr(ssm, func)(z, axis=axis, out=z) is z
        np.testing.assert_array_equal(z, y)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # SciPy-formula rows with NaN/inf, as SciPy
def test_strided_special_columns(isa, dtype, func):
    """Columns with NaN, +inf, all -inf, masks and out-of-range values are
    redone contiguously (or left to the SciPy formulas) column by column."""
    rng = np.random.default_rng(9)
    x = logits(rng, (50, 40), dtype)
    x[3, 1] = np.nan
    x[7, 2] = np.inf
    x[:, 3] = -np.inf
    x[::2, 4] = -np.inf
    big = 3e6 if dtype == np.float32 else 1e300
    x[10, 5] = big
    x[:, 6] = -big + np.arange(50)
    x[:, 7] = x[:, 7] * 0 + 1e-30
    y = ssm.softmax(x, axis=0)
    with np.errstate(all="ignore"):
        expected_rows = ssm.softmax(np.ascontiguousarray(x.T), axis=1).T
    if func == "softmax":
        np.testing.assert_allclose(y, expected_rows, rtol=32 * np.finfo(dtype).eps, atol=0)
        assert np.all(np.isnan(y[:, 1:4]))
        assert np.all(y[::2, 4] == 0)
    got = getattr(ssm, func)(x, axis=0)
    with np.errstate(all="ignore"):
        want = getattr(ssm, func)(np.ascontiguousarray(x.T), axis=1)
        want = want.T if func != "logsumexp" else want
    # log_softmax near 0: both paths are accurate to a few eps absolute
    atol = 0 if func == "softmax" else 64 * np.finfo(dtype).eps
    np.testing.assert_allclose(got, want, rtol=32 * np.finfo(dtype).eps, atol=atol)
    # in place: special columns are filled by the formulas from intact input
    z = x.copy()
    if func != "logsumexp":
        getattr(ssm, func)(z, axis=0, out=z)
        np.testing.assert_allclose(z, want, rtol=32 * np.finfo(dtype).eps, atol=atol)


def test_strided_logsumexp_near_zero(isa, dtype):
    """Normalized log-probabilities: lse ~ 0, where the fast pass cannot certify
    the result and the accurate per-column pass must take over."""
    rng = np.random.default_rng(12)
    x = logits(rng, (300, 70), dtype, scale=2.0)
    lp = ssm.log_softmax(x, axis=0)
    got = ssm.logsumexp(lp, axis=0)
    got_rows = ssm.logsumexp(np.ascontiguousarray(lp.T), axis=1)
    ref = axis_reference("logsumexp", lp, 0)
    if dtype == np.float32:
        # 1 ulp, plus the float64 sum's own rounding (2^-52 absolute): at
        # |lse| ~ 1e-9 a float32 ulp is smaller than that (README, Accuracy)
        r32 = ref.astype(np.float32)
        for g in (got, got_rows):
            err = np.abs(g.astype(np.float64) - r32)
            assert np.all(err <= np.spacing(np.abs(r32)).astype(np.float64) + 2 * 2.0**-52)
    else:
        for g in (got, got_rows):
            np.testing.assert_allclose(g, ref.astype(np.float64), rtol=1e-14, atol=2 * 2.0**-52)


@pytest.mark.parametrize("order", ["C", "F"])
def test_log_softmax_dominant_entry_strided(isa, dtype, order):
    """The same over a non-last axis with an inner axis of >= 16 elements (the
    in-place strided kernels): columns of 40 small terms (x ~ -25) and one
    dominant entry at a random row, so -log1p(S - 1) needs S - 1 to full
    relative accuracy whichever row holds the max (50-digit reference)."""
    pytest.importorskip("mpmath")
    rng = np.random.default_rng(22)
    x = (rng.standard_normal((40, 2, 24)) * 3 - 25).astype(dtype)
    for j in range(2):
        for k in range(24):
            x[rng.integers(40), j, k] = rng.standard_normal() * 2
    x = np.asarray(x, order=order)
    axis = 0 if order == "C" else 2
    if order == "F":
        x = np.asfortranarray(np.moveaxis(x, 0, 2))  # reduced axis last, in F order: strided in memory
    bound = 4 * np.finfo(dtype).eps
    y = ssm.log_softmax(x, axis=axis)
    y_in_place = x.copy(order="A")
    assert ssm.log_softmax(y_in_place, axis=axis, out=y_in_place) is y_in_place
    np.testing.assert_array_equal(y_in_place, y)
    xm = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    ym = np.moveaxis(y, axis, -1).reshape(-1, x.shape[axis])
    assert_log_softmax_rows(xm, ym, bound, dtype, axis)
