"""Property-based tests (hypothesis) of softmax and log_softmax: any dtype,
shape, layout, axis, out= and kernel set (strategies.py draws them).

Checked: the result against an exact long double reference (x - max carried
exactly) within the SPEC's bounds for the dtypes the kernels compute; SciPy
itself for the rows SciPy defines by special values (NaN, +inf, all -inf) and
for complex and long double; the input never modified (nor anything around a
strided view); `out=` fully written (the same bits as a call without it) and
returned.
"""

import numpy as np
import scipy.special as sp
from hypothesis import given, note
from hypothesis import strategies as st

import simdsoftmax as ssm
from reference import SOFTMAX_BOUNDS, exact_rowwise
from reference import ALGORITHMS
from strategies import (
    ALL_DTYPES,
    F64,
    assert_close_to_scipy,
    assert_identical,
    assert_same_nonfinite,
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
def rowwise_cases(draw, func):
    dtype = draw(dtypes(ALL_DTYPES))
    shape = draw(shapes())
    x = draw(values(dtype, shape))
    axis = draw(axes_for(len(shape)))
    res = result_dtype(dtype)
    out_mode = draw(st.sampled_from(["none", "none", "new", "inplace"]))
    inplace = out_mode == "inplace" and dtype == res  # out=x needs x to have the result's dtype
    view, owner = relayout(draw, x, may_be_readonly=not inplace)
    kwargs = {}
    if func == "softmax":
        kwargs["algorithm"] = draw(st.sampled_from(ALGORITHMS))
    out = None
    if inplace:
        out = view
    elif out_mode != "none":
        out, _ = relayout(draw, np.full(shape, -7 if func == "softmax" else 3, res), may_be_readonly=False)
    isa = draw(st.sampled_from(ssm.available_isas()))
    return x, view, owner, axis, out, kwargs, isa


def check_rowwise(func, case):
    x, view, owner, axis, out, kwargs, isa = case
    note(f"isa={isa} dtype={view.dtype} shape={view.shape} strides={view.strides} axis={axis} "
         f"out={'x' if out is view else None if out is None else (out.dtype, out.strides)} {kwargs}")
    fn = getattr(ssm, func)
    res = result_dtype(x.dtype)
    in_place = out is view
    owner_before = owner.copy()
    ctx = quiet()
    try:
        with ssm.use_isa(isa):
            expected = fn(view.copy() if in_place else view, axis=axis, **kwargs)
            if not in_place:
                # the input, and everything around a strided view, is untouched
                np.testing.assert_array_equal(raw(owner), raw(owner_before))
            got = expected if out is None else fn(view, axis=axis, out=out, **kwargs)
        expected = np.asarray(expected)
        assert expected.dtype == res and expected.shape == x.shape
        if out is not None:
            assert got is out
            # fully written: the same bits as the call without out
            assert_identical(np.asarray(out).astype(res), expected, "out")
        if x.size == 0:
            return
        axes = normalized_axes(axis, x.ndim)
        work = work_dtype(x.dtype)
        if work is None:  # complex, long double: SciPy's formulas
            ref = getattr(sp, func)(x, axis=axes)
            assert_close_to_scipy(expected, ref, func)
            return
        xw = x.astype(work)
        soft, logsoft, log_s, special = exact_rowwise(xw, axes)
        if special.any():
            sref = getattr(sp, func)(xw.astype(F64), axis=axes).astype(res)
            assert_same_nonfinite(expected[special], sref[special], f"{func} special rows")
            np.testing.assert_array_equal(expected[special], sref[special], err_msg=f"{func} special rows")
        ordinary = ~special
        rtol, atol = SOFTMAX_BOUNDS[res]
        if func == "softmax":
            assert_within(expected[ordinary], soft[ordinary], rtol, atol, "softmax")
        else:
            # y = (x - max) - log S: both terms <= 0, so |y| bounds every rounding.
            assert_within(expected[ordinary], logsoft[ordinary], rtol, atol, "log_softmax",
                          extra=rtol * np.abs(log_s[ordinary]))
    finally:
        ctx.__exit__(None, None, None)


@fuzz("softmax")
@given(st.data())
def test_softmax(data):
    check_rowwise("softmax", data.draw(rowwise_cases("softmax")))


@fuzz("log_softmax")
@given(st.data())
def test_log_softmax(data):
    check_rowwise("log_softmax", data.draw(rowwise_cases("log_softmax")))
