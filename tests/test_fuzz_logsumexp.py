"""Property-based tests (hypothesis) of logsumexp: any dtype, shape, layout,
axis, weights b (positive, signed, zeros, broadcast, scalar, non-finite),
keepdims, return_sign and kernel set (strategies.py draws them).

Checked: float64 within 1e-14 and float32/float16 within LSE_ULPS of the
exact weighted log-sum-exp (plus the rounding slack of cancelling sums);
SciPy's values for special rows and the NumPy-path dtypes; signs; shapes and
dtypes of the result; the input never modified.
"""

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, note
from hypothesis import strategies as st

import simdsoftmax as ssm
from reference import LSE_ULPS, exact_logsumexp
from strategies import (
    ALL_DTYPES,
    F32,
    F64,
    assert_close_to_scipy,
    assert_within,
    axes_for,
    dtypes,
    fuzz,
    normalized_axes,
    quiet,
    raw,
    relayout,
    result_dtype,
    shapes,
    values,
    work_dtype,
)


@st.composite
def logsumexp_cases(draw):
    dtype = draw(dtypes(ALL_DTYPES))
    shape = draw(shapes())
    a = draw(values(dtype, shape))
    a_view, a_owner = relayout(draw, a)
    b_kind = draw(st.sampled_from(["none", "none", "positive", "signed", "zeros", "broadcast", "scalar"]))
    b = b_view = None
    if b_kind != "none":
        b_dtype = draw(st.sampled_from([dtype, F64, F32, np.dtype(np.int64)]))
        if b_kind == "broadcast" and len(shape):
            b_shape = tuple(draw(st.sampled_from([1, d])) for d in shape)[draw(st.integers(0, len(shape))):]
        elif b_kind == "scalar":
            b_shape = ()
        else:
            b_shape = shape
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        raw = rng.uniform(0.1, 3.0, b_shape)
        if b_kind == "signed":
            raw *= rng.choice([-1.0, 1.0], b_shape)
        if b_kind in ("zeros", "signed"):
            raw[rng.random(b_shape) < 0.3] = 0.0
        if b_dtype.kind in "iu":
            raw = np.round(raw * 2)
        b = np.asarray(raw).astype(b_dtype)
        if b.size and b_dtype.kind in "fc" and draw(st.integers(0, 9)) == 0:
            b.flat[draw(st.integers(0, b.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        b_view, _ = relayout(draw, b)
    axis = draw(axes_for(max(len(shape), 1) if b is None else max(len(shape), b.ndim, 1)))
    keepdims = draw(st.booleans())
    return_sign = draw(st.booleans())
    isa = draw(st.sampled_from(ssm.available_isas()))
    return a, a_view, a_owner, b, b_view, axis, keepdims, return_sign, isa


def lse_dtype(a, b):
    args = [a.dtype] + ([] if b is None else [b.dtype])
    return np.result_type(*args, 1.0)


@fuzz("logsumexp")
@given(logsumexp_cases())
def test_logsumexp(case):
    a, a_view, a_owner, b, b_view, axis, keepdims, return_sign, isa = case
    note(f"isa={isa} a={a_view.dtype}{a_view.shape} b={None if b is None else (b.dtype, b.shape)} "
         f"axis={axis} keepdims={keepdims} return_sign={return_sign}")
    owner_before = a_owner.copy()
    ctx = quiet()
    try:
        try:
            shape = np.broadcast_shapes(np.atleast_1d(a).shape, np.atleast_1d(b).shape if b is not None else ())
            axes = normalized_axes(axis, len(shape))
        except (ValueError, np.exceptions.AxisError):
            with pytest.raises((ValueError, np.exceptions.AxisError)):
                ssm.logsumexp(a_view, axis=axis, b=b_view, keepdims=keepdims, return_sign=return_sign)
            return
        with ssm.use_isa(isa):
            got = ssm.logsumexp(a_view, axis=axis, b=b_view, keepdims=keepdims, return_sign=return_sign)
        np.testing.assert_array_equal(raw(a_owner), raw(owner_before))
        res, sgn = got if return_sign else (got, None)
        dtype = lse_dtype(a, b)
        kernel = work_dtype(dtype) is not None
        a1 = np.atleast_1d(a).astype(dtype)
        b1 = None if b is None else np.atleast_1d(b).astype(dtype)
        out_shape = np.zeros(shape, np.int8).sum(axis=axes, keepdims=keepdims).shape
        # (A reduced axis of length 0 empties the whole array.) SciPy gives shape (1,)
        # for axis=() of an empty array; the reduction over no axes keeps the shape.
        empty = int(np.prod(shape)) == 0
        # With return_sign a complex sum's log-magnitude is real (the phase is the
        # sign), except for an empty array, where SciPy keeps it complex.
        res_dtype = np.finfo(dtype).dtype if return_sign and not empty else result_dtype(dtype)
        assert np.shape(res) == out_shape and np.asarray(res).dtype == res_dtype
        assert np.ndim(res) > 0 or isinstance(res, np.generic)
        if empty:
            # Empty sums are -inf with sign -1 (complex: NaN), as SciPy (which fails on
            # some empty shapes).
            assert np.all(np.asarray(res) == -np.inf)
            if return_sign:
                assert np.all(np.isnan(sgn) if dtype.kind == "c" else np.asarray(sgn) == -1)
            return
        expected = sp.logsumexp(a1, axis=axes, b=b1, keepdims=keepdims, return_sign=return_sign)
        eres, esgn = expected if return_sign else (expected, None)
        assert np.asarray(res).dtype == np.asarray(eres).dtype
        if not kernel:
            assert_close_to_scipy(res, eres, "logsumexp")
            if return_sign:
                assert_close_to_scipy(sgn, esgn, "logsumexp sign")
            return
        work = work_dtype(dtype)
        lse, sign, special, slack = exact_logsumexp(a1.astype(work), None if b1 is None else b1.astype(work),
                                                  axes, keepdims)
        res, special = np.asarray(res), np.asarray(special)
        if special.any():
            assert_close_to_scipy(res[special], np.asarray(eres)[special], "logsumexp special")
            if return_sign:
                assert_close_to_scipy(np.asarray(sgn)[special], np.asarray(esgn)[special], "sign special")
        ordinary = ~special
        if not return_sign:
            # A negative sum has no real log: NaN (SciPy 1.17 gives -inf when its terms underflow).
            negative = ordinary & (sign < 0)
            assert np.all(np.isnan(res[negative]))
            ordinary &= ~negative
        else:
            np.testing.assert_array_equal(np.asarray(sgn)[ordinary], sign[ordinary].astype(res.dtype))
        out_dt = res.dtype
        if out_dt == F64:
            rtol, atol = 1e-14, 0.0
        else:
            # within LSE_ULPS ulps of the rounded exact result
            rounded = lse[ordinary].astype(out_dt)
            ulp = np.spacing(np.abs(rounded)).astype(np.longdouble)
            rtol, atol = 0.0, 0.0
            slack = slack.copy()
            slack[ordinary] += LSE_ULPS[out_dt] * ulp + np.abs(rounded.astype(np.longdouble) - lse[ordinary])
        assert_within(res[ordinary], lse[ordinary], rtol, atol, "logsumexp", extra=slack[ordinary])
    finally:
        ctx.__exit__(None, None, None)
