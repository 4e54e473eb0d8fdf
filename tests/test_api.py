"""The NumPy-facing API: scipy.special semantics (dtypes, shapes, axes, special
values, weights, out=), any input layout, and numeric agreement with an
extended-precision reference, on every kernel set this machine can run."""

import warnings

import numpy as np
import pytest
import scipy.special as sp

import simdsoftmax as ssm

inf, nan = np.inf, np.nan
AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError

ALGORITHMS = ["auto", "two-pass", "three-pass-recompute", "three-pass-reload", "online"]
FUNCS = ["softmax", "log_softmax", "logsumexp"]

# softmax: relative (probabilities can be tiny); log-space results: absolute too,
# since an entry near 0 carries the error of the log-sum-exp it was shifted by.
TOL = {
    ("softmax", np.float32): dict(rtol=1e-5, atol=1e-37),
    ("softmax", np.float64): dict(rtol=1e-12, atol=1e-300),
    ("log", np.float32): dict(rtol=1e-5, atol=1e-6),
    ("log", np.float64): dict(rtol=1e-12, atol=1e-14),
}


def tol(func, dtype):
    return TOL[("softmax" if func == "softmax" else "log", np.dtype(dtype).type)]


# Rows of every special kind, next to ordinary ones, so the kernels' result and
# the fill-in of special rows meet in one call.
SPECIAL_ROWS = [
    [1.0, 2.0, 3.0, 0.5],
    [-inf, 1.0, 2.0, -inf],  # masked logits
    [-inf, -inf, -inf, -inf],  # everything masked
    [inf, 1.0, 2.0, 0.0],
    [inf, inf, 1.0, -inf],
    [nan, 1.0, 2.0, 3.0],
    [nan, inf, -inf, 1.0],
    [inf, -inf, -inf, -inf],
    [-inf, -inf, 5.0, -inf],
    [-1.0, -2.0, -3.0, -4.0],
    [inf, inf, inf, inf],
    [nan, nan, nan, nan],
]


# --------------------------------------------------------------------------
# Independent references


def ref_softmax(x, axis=None):
    x = np.asarray(x, np.longdouble)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis=None):
    x = np.asarray(x, np.longdouble)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def ref_logsumexp(a, axis=None, b=None, keepdims=False):
    """(log|sum b exp(a)|, sign) in long double; a 0-d a is 1-d, as in SciPy."""
    a = np.atleast_1d(np.asarray(a, np.longdouble))
    b = np.ones_like(a) if b is None else np.atleast_1d(np.asarray(b, np.longdouble))
    a, b = np.broadcast_arrays(a, b)
    top = a.max(axis=axis, keepdims=True)
    s = (b * np.exp(a - top)).sum(axis=axis, keepdims=True)
    res, sign = top + np.log(np.abs(s)), np.sign(s)
    if not keepdims:
        res, sign = np.squeeze(res, axis=axis), np.squeeze(sign, axis=axis)
    return res, sign


REF = {"softmax": ref_softmax, "log_softmax": ref_log_softmax, "logsumexp": lambda x, axis: ref_logsumexp(x, axis)[0]}


def call(func, x, axis=None, **kwargs):
    return getattr(ssm, func)(x, axis=axis, **kwargs)


def assert_like_scipy(actual, expected, **tolerance):
    """Same type (scalar or array), dtype, shape and non-finite values; finite values close."""
    assert type(actual) is type(expected), (type(actual), type(expected))
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg="NaN positions")
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~finite], expected[~finite], err_msg="inf values")
    np.testing.assert_allclose(actual[finite], expected[finite], **tolerance)


def random_logits(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# --------------------------------------------------------------------------
# Special values


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [1, 0, None])
def test_special_rows_like_scipy(isa, dtype, func, axis):
    x = np.array(SPECIAL_ROWS, dtype)
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    if axis is None:
        for row in x:
            assert_like_scipy(call(func, row), getattr(sp, func)(row), **tol(func, dtype))
    else:
        assert_like_scipy(call(func, x, axis), getattr(sp, func)(x, axis=axis), **tol(func, dtype))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_special_rows_every_algorithm(isa, dtype, algorithm):
    x = np.array(SPECIAL_ROWS, dtype)
    assert_like_scipy(ssm.softmax(x, axis=1, algorithm=algorithm), sp.softmax(x, axis=1), **tol("softmax", dtype))


@pytest.mark.parametrize("return_sign", [False, True])
@pytest.mark.parametrize("axis", [1, 0])
def test_logsumexp_special_rows_like_scipy(isa, dtype, axis, return_sign):
    x = np.array(SPECIAL_ROWS, dtype)
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    actual = ssm.logsumexp(x, axis=axis, return_sign=return_sign)
    expected = sp.logsumexp(x, axis=axis, return_sign=return_sign)
    if return_sign:
        assert_like_scipy(actual[1], expected[1])
        actual, expected = actual[0], expected[0]
    assert_like_scipy(actual, expected, **tol("logsumexp", dtype))


# (a, b) rows whose weighted sum is well conditioned, or exactly zero, or special.
WEIGHTED_ROWS = [
    ([1, 2], [1, -1]),  # negative sum
    ([1, 2], [-1, 1]),
    ([1, 2], [-1, -1]),
    ([0, 0], [1, -1]),  # exactly zero
    ([1000, 1000], [1, -1]),  # exactly zero relative to the max; SciPy: NaN
    ([nan, 1], [0, 1]),  # zero weight hides NaN ...
    ([inf, 1], [0, 1]),  # ... and inf
    ([inf, -inf], [0, 1]),  # SciPy: NaN (0 * inf in its fallback sum)
    ([1, 2], [0, 0]),
    ([1, 2], [inf, 1]),
    ([1, 2], [nan, 1]),
    ([1, 2], [-inf, 1]),
    ([inf, 1], [-1, 1]),
    ([inf, inf], [-1, 1]),
    ([-inf, 1], [1, 1]),
    ([-inf, -inf], [1, 1]),
    ([3, 2], [0.5, 2]),
    ([-5, 7], [1e-30, 3]),
]


@pytest.mark.parametrize("return_sign", [False, True])
def test_logsumexp_weighted_special_like_scipy(isa, dtype, return_sign):
    a = np.array([r[0] for r in WEIGHTED_ROWS], dtype)
    b = np.array([r[1] for r in WEIGHTED_ROWS], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SciPy warns about none of this
        actual = ssm.logsumexp(a, axis=1, b=b, return_sign=return_sign)
    expected = sp.logsumexp(a, axis=1, b=b, return_sign=return_sign)
    if return_sign:
        assert_like_scipy(actual[1], expected[1])
        actual, expected = actual[0], expected[0]
    assert_like_scipy(actual, expected, **tol("logsumexp", dtype))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_masked_logits_are_exactly_zero(isa, dtype, algorithm):
    x = random_logits((5, 37), dtype)
    x[:, ::3] = -inf
    x[2, :] = -inf
    x[2, 4] = 0.5  # a single live entry
    y = ssm.softmax(x, axis=1, algorithm=algorithm)
    assert np.all(y[x == -inf] == 0)
    assert np.all(np.isfinite(y))
    assert abs(y[2, 4] - 1) <= 4 * np.finfo(dtype).eps  # (float32 two-pass: 1 ULP low on AVX)
    np.testing.assert_allclose(y, ref_softmax(x, axis=1).astype(dtype), **tol("softmax", dtype))
    ly = ssm.log_softmax(x, axis=1)
    assert np.all(ly[x == -inf] == -inf)
    assert not np.any(np.isnan(ly))


@pytest.mark.parametrize("func", FUNCS)
def test_extreme_finite_inputs(isa, dtype, func):
    big = np.finfo(dtype).max
    x = np.array([[big, big, 0], [-big, 0, 1], [big, -big, big / 2], [-big, -big, -big]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        actual = call(func, x, 1)
    with np.errstate(over="ignore"):  # log_softmax(x)[2, 1] = -2 * max: -inf, as SciPy
        expected = REF[func](x, 1).astype(dtype)
    np.testing.assert_allclose(actual, expected, **tol(func, dtype))


# --------------------------------------------------------------------------
# Dtypes

INT_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
ALL_DTYPES = ["bool", *INT_DTYPES, "float16", "float32", "float64", "longdouble", "complex64", "complex128", "clongdouble"]


@pytest.mark.parametrize("dt", ALL_DTYPES)
def test_logsumexp_dtype_like_scipy(dt):
    x = np.array([[1, 0, 1], [0, 1, 1]], dt)
    for kwargs in ({}, {"axis": 1}, {"b": np.array([1, 2, 1], dt)}, {"return_sign": True}):
        actual, expected = ssm.logsumexp(x, **kwargs), sp.logsumexp(x, **kwargs)
        if kwargs.get("return_sign"):
            assert_like_scipy(actual[1], expected[1])
            actual, expected = actual[0], expected[0]
        rtol = 1e-3 if dt == "float16" else 1e-6
        assert_like_scipy(actual, expected, rtol=rtol)


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dt", ALL_DTYPES)
def test_elementwise_dtype(func, dt):
    x = np.array([[1, 0, 1], [0, 1, 3]], dt)
    actual = call(func, x, 1)
    if dt in ("bool", "int8", "uint8", "int16", "uint16", "uint32", "uint64"):
        # SciPy: bool fails, small ints give float16/float32, unsigned ints wrap
        # around in x - max(x); the contract is float64 like int32/int64.
        assert actual.dtype == np.float64
        np.testing.assert_allclose(actual, call(func, x.astype(np.float64), 1), rtol=1e-15)
    else:
        expected = getattr(sp, func)(x, axis=1)
        rtol = {"float16": 2e-3, "float32": 1e-6, "complex64": 1e-6}.get(dt, 1e-12)
        assert_like_scipy(actual, expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_float16_is_computed_in_float32(isa, func):
    x = random_logits((3, 50), np.float16)
    expected = call(func, x.astype(np.float32), 1).astype(np.float16)
    actual = call(func, x, 1)
    assert actual.dtype == np.float16
    np.testing.assert_array_equal(actual, expected)


def test_float16_logsumexp_is_computed_in_float32(isa):
    a, b = random_logits((3, 50), np.float16), random_logits((3, 50), np.float16, seed=1)
    res, sgn = ssm.logsumexp(a, axis=1, b=b, return_sign=True)
    res32, sgn32 = ssm.logsumexp(a.astype(np.float32), axis=1, b=b.astype(np.float32), return_sign=True)
    assert res.dtype == sgn.dtype == np.float16
    np.testing.assert_array_equal(res, res32.astype(np.float16))
    np.testing.assert_array_equal(sgn, sgn32.astype(np.float16))


@pytest.mark.parametrize(
    "a, b",
    [
        (np.float32([1, 2]), 2),  # Python scalars promote weakly
        (np.float32([1, 2]), 2.0),
        (np.float32([1, 2]), [1, 2]),  # a list of ints is int64: float64
        (np.float32([1, 2]), np.float64(2)),
        (np.float32([1, 2]), np.float32([1, 3])),
        (np.float16([1, 2]), np.float32([1, 1])),
        (np.float16([1, 2]), 3),
        (np.float32([1, 2]), np.int8([1, 1])),
        (np.float64([1, 2]), np.complex64([1, 1j])),
        (np.int16([1, 2]), np.bool_([True, False])),
        (3, None),
        (np.float32(3), None),
        (np.float32(3), 2.0),
        (True, None),
        (1j, None),
        ([1, 2], None),
        (np.array(2.5, np.float32), None),
    ],
)
def test_logsumexp_promotion_like_scipy(a, b):
    assert_like_scipy(ssm.logsumexp(a, b=b), sp.logsumexp(a, b=b), rtol=1e-6)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("x", [3, 3.5, -2.0, np.float32(3), np.float64(-1), np.float16(2), 1 + 2j, np.array(0.5)])
def test_scalars_give_numpy_scalars(func, x):
    assert_like_scipy(call(func, x), getattr(sp, func)(x), rtol=1e-6, atol=1e-15)


def test_unsupported_dtypes_raise():
    for func in FUNCS:
        with pytest.raises(TypeError):
            call(func, np.array(["a", "b"]))
        with pytest.raises(TypeError):
            call(func, np.array([1, 2], dtype="m8[s]"))


# --------------------------------------------------------------------------
# Shapes and axes

SHAPE_AXES = [
    ((), [None, ()]),
    ((1,), [None, 0, -1]),
    ((7,), [None, 0, -1, (0,)]),
    ((3, 5), [None, 0, 1, -1, -2, (0, 1), (1, 0), ()]),
    ((2, 3, 4), [None, 0, 1, 2, -1, (0, 2), (1, 2), (2, 0), (0, 1, 2)]),
    ((2, 3, 2, 5), [None, 0, 3, -3, (1, 3), (0, 2), (0, 1, 3), (-1, -4)]),
]
SHAPE_AXIS_CASES = [(shape, axis) for shape, axes in SHAPE_AXES for axis in axes]


@pytest.mark.parametrize("shape, axis", SHAPE_AXIS_CASES, ids=str)
def test_shapes_and_axes(isa, dtype, shape, axis):
    x = random_logits(shape, dtype)
    for func in FUNCS:
        actual = call(func, x, axis)
        expected = getattr(sp, func)(x, axis=axis)
        assert_like_scipy(actual, expected, rtol=1e-3, atol=1e-3)  # SciPy is the looser one
        np.testing.assert_allclose(actual, REF[func](x, axis).astype(dtype), **tol(func, dtype))


@pytest.mark.parametrize("shape, axis", SHAPE_AXIS_CASES, ids=str)
def test_logsumexp_keepdims(dtype, shape, axis):
    x = random_logits(shape, dtype)
    assert_like_scipy(ssm.logsumexp(x, axis, keepdims=True), sp.logsumexp(x, axis, keepdims=True), rtol=1e-5)
    res, sgn = ssm.logsumexp(x, axis, keepdims=True, return_sign=True)
    assert sgn.shape == res.shape and np.all(sgn == 1)


def test_logsumexp_0d_is_treated_as_1d():
    # As in SciPy: a 0-d input is made 1-d first.
    assert ssm.logsumexp(2.0, keepdims=True).shape == (1,)
    assert ssm.logsumexp(2.0, axis=0) == 2.0
    assert ssm.logsumexp(2.0, axis=-1) == 2.0


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (2, 0, 4), (0, 0)])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, -1), ()])
def test_empty_inputs(shape, axis, dtype):
    x = np.zeros(shape, dtype)
    if isinstance(axis, tuple) and len(shape) == 1 and len(axis) == 2:
        pytest.skip("repeated axis")
    for func in ("softmax", "log_softmax"):
        y = call(func, x, axis)
        assert y.shape == shape and y.dtype == dtype
        out = np.empty_like(x)
        assert call(func, x, axis, out=out) is out
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis) % len(shape)
    kept = tuple(n for i, n in enumerate(shape) if i not in axes)
    expected = np.full(kept, -inf, dtype)
    res, sgn = ssm.logsumexp(x, axis, return_sign=True)
    assert_like_scipy(res, expected[()])
    assert_like_scipy(sgn, np.sign(expected)[()])  # -1, as SciPy
    if axis == ():
        return  # SciPy 1.17 returns shape (1, ..., 1): it sets shape[()] = 1
    try:
        scipy_res = sp.logsumexp(x, axis)
    except IndexError:  # SciPy 1.17 fails on empty multi-axis reductions
        return
    assert_like_scipy(res, scipy_res)


@pytest.mark.parametrize("func", FUNCS)
def test_bad_axis(func):
    x = np.ones((2, 3))
    with pytest.raises(AxisError, match="axis"):
        call(func, x, 2)
    with pytest.raises(AxisError, match="axis"):
        call(func, x, (0, -3))
    with pytest.raises(ValueError, match="axis"):
        call(func, x, (1, -1))
    with pytest.raises(TypeError):
        call(func, x, 1.0)
    with pytest.raises(TypeError):
        call(func, x, "1")


def test_softmax_of_0d_rejects_an_axis():
    with pytest.raises(AxisError):
        ssm.softmax(1.0, axis=0)


# --------------------------------------------------------------------------
# Weights


@pytest.mark.parametrize(
    "a_shape, b_shape, axis",
    [
        ((2, 3), (3,), 1),
        ((2, 3), (2, 1), 1),
        ((2, 3), (), None),
        ((2, 3), (2, 3), 0),
        ((3,), (4, 2, 3), -1),  # b adds dimensions: the result takes them
        ((4, 1, 3), (2, 3), (0, 2)),
        ((), (5,), None),
    ],
)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_b_broadcasting(isa, dtype, a_shape, b_shape, axis, keepdims):
    a = random_logits(a_shape, dtype)
    b = np.abs(random_logits(b_shape, dtype, seed=1)) + dtype.type(0.1)
    actual = ssm.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    assert_like_scipy(actual, sp.logsumexp(a, axis=axis, b=b, keepdims=keepdims), rtol=1e-5)
    expected = ref_logsumexp(a, axis=axis, b=b, keepdims=keepdims)[0].astype(dtype)
    np.testing.assert_allclose(actual, expected, **tol("logsumexp", dtype))


def test_logsumexp_b_not_broadcastable():
    with pytest.raises(ValueError, match="broadcast"):
        ssm.logsumexp(np.ones((2, 3)), b=np.ones(2))


def test_logsumexp_signed_weights(isa, dtype):
    a = random_logits((6, 40), dtype)
    b = random_logits((6, 40), dtype, seed=1)  # mixed signs: some sums negative
    b[0] = np.abs(b[0])
    b[1] = -np.abs(b[1])
    expected, expected_sign = ref_logsumexp(a, axis=1, b=b)
    res, sgn = ssm.logsumexp(a, axis=1, b=b, return_sign=True)
    np.testing.assert_array_equal(sgn, expected_sign.astype(dtype))
    assert sgn[0] == 1 and sgn[1] == -1
    np.testing.assert_allclose(res, expected.astype(dtype), **tol("logsumexp", dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = ssm.logsumexp(a, axis=1, b=b)
    np.testing.assert_array_equal(np.isnan(plain), sgn < 0)
    np.testing.assert_array_equal(plain[sgn > 0], res[sgn > 0])


def test_logsumexp_negative_sum_of_tiny_terms_is_nan(isa, dtype):
    # Deliberately unlike SciPy 1.17, whose fallback sum underflows to -0 here
    # and gives -inf: the sum is negative, so the result is NaN.
    a, b = np.array([-1e30, -2e30], dtype), np.array([-1, 0.5], dtype)
    assert np.isnan(ssm.logsumexp(a, b=b))
    res, sgn = ssm.logsumexp(a, b=b, return_sign=True)
    assert (res, sgn) == (dtype.type(-1e30), -1)
    assert (res, sgn) == sp.logsumexp(a, b=b, return_sign=True)


def test_logsumexp_zero_weights_mask_entries(isa, dtype):
    a = random_logits((4, 9), dtype)
    b = np.ones_like(a)
    a[:, 0], a[:, 1], a[:, 2] = inf, nan, -inf
    b[:, :3] = 0
    expected = ssm.logsumexp(a[:, 3:], axis=1)
    np.testing.assert_allclose(ssm.logsumexp(a, axis=1, b=b), expected, **tol("logsumexp", dtype))
    b[1] = 0
    b[2, 3:] = 0
    a[2, :3] = 1.0
    res, sgn = ssm.logsumexp(a, axis=1, b=b, return_sign=True)
    assert res[2] == -inf and sgn[2] == 0  # an empty sum
    # ... but with no term left, SciPy falls back to the plain sum, where 0 * inf is NaN
    assert np.isnan(res[1]) and np.isnan(sgn[1])
    assert np.isnan(sp.logsumexp(a[1], b=b[1]))


# --------------------------------------------------------------------------
# Input layouts: every layout gives the contiguous result bit for bit and the
# input is left as it was.


def unaligned(x):
    buf = np.zeros(x.nbytes + x.itemsize, np.uint8)
    view = buf[1 : 1 + x.nbytes].view(x.dtype).reshape(x.shape)
    view[...] = x
    assert not view.flags.aligned
    return view


def readonly(x):
    x = x.copy()
    x.flags.writeable = False
    return x


LAYOUTS = {
    "strided": lambda x: np.repeat(x, 2, axis=-1)[..., ::2],
    "negative-strides": lambda x: np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1],
    "fortran": np.asfortranarray,
    "unaligned": unaligned,
    "big-endian": lambda x: x.astype(x.dtype.newbyteorder(">")),
    "read-only": readonly,
    "list": lambda x: x.tolist(),
    "__array__": lambda x: type("ArrayLike", (), {"__array__": lambda self, dtype=None, copy=None: x})(),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [None, 1, 0])
def test_layouts_give_the_contiguous_result(isa, dtype, layout, axis):
    x = random_logits((5, 33), dtype)
    x[1, 3] = -inf
    x[2, 5] = nan
    view = LAYOUTS[layout](x)
    before = np.array(view, copy=True)
    # The same values, contiguous and native (a list of Python floats is float64).
    plain = np.ascontiguousarray(before, before.dtype.newbyteorder("="))
    b = np.abs(plain) + 1
    # A non-last axis of a C- or F-ordered array runs in place on the strided
    # kernels (another summation order than rows): equal within a few ulp.
    rtol = 32 * np.finfo(plain.dtype).eps
    for func in FUNCS:
        expected = call(func, plain, axis)
        actual = call(func, view, axis)
        assert type(actual) is type(expected)
        assert np.asarray(actual).dtype.isnative
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)
    expected = ssm.logsumexp(plain, axis, b=b)
    np.testing.assert_array_equal(ssm.logsumexp(view, axis, b=LAYOUTS[layout](b)), expected)
    np.testing.assert_array_equal(ssm.logsumexp(plain, axis, b=LAYOUTS[layout](b)), expected)
    if isinstance(view, np.ndarray):
        np.testing.assert_array_equal(view, before)


def test_masked_arrays_use_their_data():
    m = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    for func in FUNCS:
        assert_like_scipy(call(func, m), getattr(sp, func)(m), rtol=1e-12)


# --------------------------------------------------------------------------
# out=


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [None, 1, 0, (0, 1)])
def test_out(isa, dtype, func, axis):
    x = random_logits((4, 17), dtype)
    x[0, 0] = nan
    expected = call(func, x, axis)
    out = np.empty_like(x)
    assert call(func, x, axis, out=out) is out
    np.testing.assert_array_equal(out, expected)

    strided = np.zeros((4, 34), dtype)[:, ::2]
    assert call(func, x, axis, out=strided) is strided
    np.testing.assert_array_equal(strided, expected)

    fortran = np.zeros((4, 17), dtype, order="F")
    call(func, x, axis, out=fortran)
    np.testing.assert_array_equal(fortran, expected)


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [None, 1, 0])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "fortran", "float16"])
def test_out_in_place(isa, dtype, func, axis, layout):
    x = random_logits((6, 21), dtype)
    x[1, :] = -inf
    x[2, 2] = inf
    if layout == "float16":
        x = x.astype(np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = call(func, x, axis)
        if layout == "strided":
            base = np.repeat(x, 2, axis=1)
            x, gaps = base[:, ::2], base[:, 1::2].copy()
        elif layout == "fortran":
            x = np.asfortranarray(x)
        assert call(func, x, axis, out=x) is x
    if axis == 0 and layout in ("strided", "fortran"):
        # expected came from the strided kernels (axis 0 of a C-ordered
        # array); these layouts run as rows: equal within a few ulp.
        np.testing.assert_allclose(x, expected, rtol=32 * np.finfo(x.dtype).eps, atol=0)
    else:
        np.testing.assert_array_equal(x, expected)
    if layout == "strided":
        np.testing.assert_array_equal(base[:, 1::2], gaps)


def test_out_overlapping_input_differently(isa, dtype):
    x = random_logits((8, 8), dtype)
    expected = ssm.softmax(x, axis=1)
    out = x.T  # same memory, other layout
    ssm.softmax(x, axis=1, out=out)
    np.testing.assert_array_equal(out, expected)

    buf = random_logits(21, dtype)
    x, out = buf[:20].reshape(2, 10), buf[1:].reshape(2, 10)  # both contiguous, one element apart
    expected = ssm.log_softmax(x, axis=1)
    ssm.log_softmax(x, axis=1, out=out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("axis", [None, -1, 1])
@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_softmax_fast_path_edges(isa, dtype, axis, func):
    """_core.softmax_call's and log_softmax_call's cases against the general
    path (a transposed copy)."""
    f = getattr(ssm, func)
    x = random_logits((3, 37), dtype)
    x[1, 5] = nan
    x[2, :] = -inf
    general = f(np.asfortranarray(x), axis=axis)  # not C-contiguous: general path
    np.testing.assert_array_equal(f(x, axis=axis), general)
    out = np.full_like(x, 7)
    assert f(x, axis=axis, out=out) is out
    np.testing.assert_array_equal(out, general)
    inplace = x.copy()
    assert f(inplace, axis=axis, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, general)
    # out overlapping x one element apart (both C-contiguous): a temporary.
    buf = np.concatenate([x.reshape(-1), random_logits(1, dtype)])
    xs, outs = buf[:-1].reshape(x.shape), buf[1:].reshape(x.shape)
    assert f(xs, axis=axis, out=outs) is outs
    np.testing.assert_array_equal(outs, general)
    # other byte order, read-only, wrong shape: the general path decides.
    swapped = np.empty(x.shape, x.dtype.newbyteorder())
    assert f(x, axis=axis, out=swapped) is swapped
    np.testing.assert_array_equal(swapped, general)
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        f(x, axis=axis, out=ro)
    with pytest.raises(ValueError, match="shape"):
        f(x, axis=axis, out=np.empty((3, 36), dtype))
    with pytest.raises(TypeError):
        f(x, axis=axis, out=[0.0] * x.size)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("axis", [None, -1, 1])
def test_logsumexp_fast_path_edges(isa, dtype, axis):
    """_core.logsumexp_call against the general path (keepdims=True takes it,
    same layout): ordinary rows, special rows (the whole call falls back), a
    1-D row and axis=None giving NumPy scalars of the input's dtype."""
    x = random_logits((3, 37), dtype)
    for special in (False, True):
        if special:
            x[1, 5] = nan
            x[2, :] = -inf
        general = ssm.logsumexp(x, axis=axis, keepdims=True)
        got = ssm.logsumexp(x, axis=axis)
        np.testing.assert_array_equal(got, general.reshape(np.shape(got)))
        if axis is None:
            assert isinstance(got, np.floating) and got.dtype == dtype
        else:
            assert isinstance(got, np.ndarray) and got.shape == (3,) and got.dtype == dtype
    row = ssm.logsumexp(x[0], axis=axis if axis is None else 0)
    assert isinstance(row, np.floating) and row.dtype == dtype
    assert row == ssm.logsumexp(x[0], keepdims=True)[0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dt", ["complex128", "longdouble", "int32"])
def test_out_other_dtypes(dt):
    x = np.array([[1, 2, 3], [0, -1, 2]], dt)
    for func in ("softmax", "log_softmax"):
        expected = call(func, x, 1)
        out = np.empty(x.shape, expected.dtype)
        assert call(func, x, 1, out=out) is out
        np.testing.assert_array_equal(out, expected)


def test_out_0d():
    out = np.empty((), np.float64)
    assert ssm.softmax(np.float64(3), out=out) is out
    assert out == 1.0


def bad_outs(x, dtype):
    ro = np.zeros(x.shape, dtype)
    ro.flags.writeable = False
    other = np.float32 if dtype == np.float64 else np.float64
    return {
        "shape": (ValueError, np.zeros((x.shape[0], x.shape[1] + 1), dtype)),
        "transposed shape": (ValueError, np.zeros(x.shape[::-1], dtype)),
        "dtype": (ValueError, np.zeros(x.shape, other)),
        "read-only": (ValueError, ro),
        "list": (TypeError, np.zeros(x.shape, dtype).tolist()),
    }


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("case", ["shape", "transposed shape", "dtype", "read-only", "list"])
def test_bad_out_raises_before_writing(dtype, func, case):
    x = random_logits((3, 4), dtype)
    error, out = bad_outs(x, dtype)[case]
    before = np.array(out, copy=True)
    with pytest.raises(error, match="out"):
        call(func, x, 1, out=out)
    np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_bad_out_in_place_leaves_input(func):
    x = np.arange(6, dtype=np.int64).reshape(2, 3)  # the result is float64
    with pytest.raises(ValueError, match="out"):
        call(func, x, out=x)
    np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3))
    f16 = np.float16([1, 2])
    with pytest.raises(ValueError, match="out"):
        call(func, f16, out=np.empty(2, np.float32))  # float16 results must go to float16


def test_bad_out_does_not_hide_bad_axis():
    x, out = np.ones((2, 3)), np.full((2, 3), 7.0)
    with pytest.raises(AxisError):
        ssm.softmax(x, axis=2, out=out)
    assert np.all(out == 7)


# --------------------------------------------------------------------------
# algorithm=


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("n", [1, 7, 16, 33, 1000])
def test_algorithms(isa, dtype, algorithm, n):
    x = random_logits((3, n), dtype, seed=n)
    y = ssm.softmax(x, axis=1, algorithm=algorithm)
    np.testing.assert_allclose(y, ref_softmax(x, axis=1).astype(dtype), **tol("softmax", dtype))


@pytest.mark.parametrize("algorithm", ["fast", "", "Two-Pass", None, 2])
def test_bad_algorithm(algorithm):
    with pytest.raises(ValueError, match="algorithm") as info:
        ssm.softmax([1.0, 2.0], algorithm=algorithm)
    for name in ALGORITHMS:
        assert repr(name) in str(info.value)


def test_bad_algorithm_is_checked_first():
    out = np.zeros(0)
    with pytest.raises(ValueError, match="algorithm"):
        ssm.softmax(np.zeros(0), out=out, algorithm="nope")


# --------------------------------------------------------------------------
# Numbers


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("n", [1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 4099])
def test_row_sizes_against_reference(isa, dtype, func, n):
    x = random_logits((2, n), dtype, seed=n, scale=10)
    np.testing.assert_allclose(call(func, x, 1), REF[func](x, 1).astype(dtype), **tol(func, dtype))


def test_no_warnings_for_finite_input(isa, dtype):
    x = random_logits((4, 50), dtype, scale=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for func in FUNCS:
            call(func, x, 1)
        ssm.logsumexp(x, axis=1, b=-np.ones_like(x))


def test_inputs_are_not_modified(isa):
    x = random_logits((4, 9), np.float32)
    x[0, 0] = nan
    x[1] = -inf
    before = x.copy()
    for func in FUNCS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            call(func, x, 1)
    ssm.logsumexp(x, axis=1, b=np.abs(x))
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("row", [[5.0], [1.0, -50.0], [100.0, 0.0], [-3.0, -inf], [0.5, 0.5 - 2**-20]])
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


def test_threads_give_the_serial_results(isa):
    from concurrent.futures import ThreadPoolExecutor

    inputs = [random_logits((64, 257), np.float32, seed=i) for i in range(8)]
    serial = [ssm.softmax(x, axis=1) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda x: ssm.softmax(x, axis=1), inputs))
    for a, b in zip(threaded, serial):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "name",
    ["softmax", "log_softmax", "logsumexp", "isa", "available_isas", "use_isa",
     "set_num_threads", "get_num_threads", "show_runtime"],
)  # fmt: skip
def test_public_names_are_documented(name):
    assert name in ssm.__all__
    assert "\n    Examples\n    --------\n" in getattr(ssm, name).__doc__


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("special", [-np.inf, np.nan, np.inf])
def test_logsumexp_sign_of_special_rows_in_any_layout(order, special):
    """return_sign for all -inf (0), NaN (NaN) and +inf rows, also where the
    reduction runs in place (non-last axes, F order): as SciPy."""
    a = np.zeros((3, 2, 16), np.float32)
    a[:, 0, 0] = special
    a = np.asarray(a, order=order)
    for axis in (0, 1, 2, (0, 1), (1, 2)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res, sgn = ssm.logsumexp(a, axis=axis, return_sign=True)
            eres, esgn = sp.logsumexp(a, axis=axis, return_sign=True)
        np.testing.assert_array_equal(sgn, esgn)
        np.testing.assert_allclose(res, eres, rtol=1e-6)
