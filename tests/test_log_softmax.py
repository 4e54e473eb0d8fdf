"""log_softmax: the row kernel on every kernel set at sizes that cross every
tail of its loops, across the finite range, and the relative accuracy of a
dominant entry's log-probability -log1p(sum of the others), against float64 /
long double and mpmath references."""

import numpy as np
import pytest

import simdsoftmax as ssm
from reference import assert_log_softmax_rows, ref_logsumexp, wide
from simdsoftmax import _core
from tiles import row_sizes

FIXED_SIZES = list(range(1, 130))


def assert_log_softmax_close(x, y, where):
    """Finite where the reference is; within 2 ulps of the result's dtype at
    the value plus 4 float64 eps of |lse| (the shift's own rounding)."""
    dtype = x.dtype
    xw = x.astype(wide(dtype))
    lse = ref_logsumexp(x)[0]
    ref = xw - lse[:, None]
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(y), fin), where
    err = np.abs(y[fin].astype(ref.dtype) - ref[fin])
    lse_b = np.abs(lse)[:, None] * np.ones_like(ref)
    bound = 2 * np.spacing(np.abs(ref[fin]).astype(dtype)) + 4 * np.finfo(np.float64).eps * lse_b[fin]
    assert np.all(err <= bound.astype(ref.dtype)), where


def test_log_softmax(isa, dtype):
    rng = np.random.default_rng(9)
    for n in FIXED_SIZES[::7] + [1000, 10**5]:
        for scale in (1.0, 30.0, 1e4, 1e7, 1e30):
            x = np.clip(rng.standard_normal((2, n)) * scale, -1e38, 1e38).astype(dtype)
            if n > 3:
                x[0, 1] = -np.inf
            y = np.empty_like(x)
            assert _core.log_softmax(x, y).size == 0
            assert_log_softmax_close(x, y, f"n={n} scale={scale}")


def test_log_softmax_every_tail(isa, dtype):
    """Every tail of the row kernels' loops (the fast sums' block included),
    ordinary logits and a masked one."""
    rng = np.random.default_rng(19)
    for n in sorted(set(row_sizes(isa, dtype)) | set(FIXED_SIZES)):
        x = (rng.standard_normal((3, n)) * 8).astype(dtype)
        if n > 2:
            x[1, rng.integers(n)] = -np.inf
        y = np.full_like(x, 7.0)
        assert _core.log_softmax(x, y).size == 0
        assert_log_softmax_close(x, y, f"n={n}")


def test_log_softmax_dominant_entry_after_a_max_jump(isa, dtype):
    """A lane whose running max jumps (79 -> 107, rescaling its sum to ~7e-13)
    and then adds the new max's own term 1 breaks Fast2Sum's |s| >= |y|; the
    low part lost there is all of log1p(S - 1) that matters for the max entry
    (the property-based tests found it 1e-10 relative off on every kernel set).
    The three 64-element blocks put the jump in every lane of every ISA."""
    for p in (0, 1, 5, 17, 63):
        x = np.concatenate([np.full(64, 79.0), np.full(64, -1000.0), np.full(64, 89.0)]).astype(dtype)
        x[64 + p] = 107.0
        y = np.empty((1, x.size), dtype)
        assert _core.log_softmax(x[None, :], y).size == 0
        xl = x.astype(np.longdouble)
        exact = -np.log1p(np.exp(xl[xl < 107] - 107).sum())  # the others' terms alone
        err = abs(y[0, 64 + p] - exact) / abs(exact)
        assert err <= 4 * np.finfo(dtype).eps, f"p={p}: relative error {float(err):.3g}"


@pytest.mark.parametrize("order", ["C", "F"])
def test_log_softmax_dominant_entry_any_axis(isa, dtype, order):
    """A dominant entry's log-probability -log1p(sum of the others) keeps its
    relative accuracy whatever the layout and axis (50-digit reference)."""
    pytest.importorskip("mpmath")
    rng = np.random.default_rng(21)
    x = np.asarray((rng.standard_normal((6, 3, 5)) * 15).astype(dtype), order=order)
    bound = 4 * np.finfo(dtype).eps
    for axis in (0, 1, 2):
        y = ssm.log_softmax(x, axis=axis)
        xm, ym = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis]), np.moveaxis(y, axis, -1).reshape(-1, x.shape[axis])
        assert_log_softmax_rows(xm, ym, bound, dtype, axis)


@pytest.mark.parametrize("row", [[5.0], [1.0, -50.0], [100.0, 0.0], [-3.0, -np.inf], [0.5, 0.5 - 2**-20]])
def test_log_softmax_of_a_dominant_entry(isa, dtype, row):
    """The max entry's log-probability is -log1p(sum of the others' exp(x - max)):
    exactly 0 alone, never positive, and relatively accurate even where SciPy
    rounds it to 0 (1 + 1.9e-22 == 1)."""
    x = np.array(row, dtype)
    y = ssm.log_softmax(x)
    others = np.exp(x[1:].astype(np.float64) - np.float64(x[0]))
    exact = -np.log1p(others.sum())
    assert y[0] <= 0
    if len(row) == 1 or exact == 0:
        assert y[0] == 0
    else:
        assert abs(y[0] - exact) <= 4 * np.finfo(dtype).eps * abs(exact) + np.finfo(dtype).smallest_subnormal
