"""The NumPy-facing API across the families: scipy.special semantics (dtypes,
shapes, axes, special values, out=), any input layout, and numeric agreement
with an extended-precision reference, on every kernel set this machine can
run. Each function's own semantics (algorithm=, weights, signs) are in its
family's module (test_softmax.py, test_log_softmax.py, test_logsumexp.py)."""

import warnings

import numpy as np
import pytest
import scipy.special as sp

import simdsoftmax as ssm
from reference import (
    SPECIAL_ROWS,
    assert_like_scipy,
    random_logits,
    ref_log_softmax,
    ref_logsumexp,
    ref_softmax,
    tol,
    ulp_distance,
)
from tiles import ROW_KERNELS, tiles

inf, nan = np.inf, np.nan
AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError

FUNCS = ["softmax", "log_softmax", "logsumexp"]

# Independent references, in long double whatever the dtype.
REF = {
    "softmax": lambda x, axis: ref_softmax(x, axis, dtype=np.longdouble),
    "log_softmax": lambda x, axis: ref_log_softmax(x, axis, dtype=np.longdouble),
    "logsumexp": lambda x, axis: ref_logsumexp(x, axis, dtype=np.longdouble)[0],
}


def call(func, x, axis=None, **kwargs):
    return getattr(ssm, func)(x, axis=axis, **kwargs)


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


# (a, b) rows whose weighted sum is well conditioned, or exactly zero, or special.


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
    """float16 out, within 1 ulp of float16 of the exact result (the half contract:
    computed in float32 and rounded once; the short half-row kernels' float32
    arithmetic is not the float32 path's, so their bits may differ from it)."""
    x = random_logits((3, 50), np.float16)
    exact = (ref_softmax if func == "softmax" else ref_log_softmax)(x.astype(np.float64), axis=1)
    actual = call(func, x, 1)
    assert actual.dtype == np.float16
    assert ulp_distance(actual, exact, np.float16).max() <= 1.0


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
# Numbers


def row_edge_sizes():
    """tile - 1, tile, tile + 1 and 2 * tile - 1 of every row kernel of every
    kernel set this machine runs, next to a fixed list."""
    sizes = {1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 4099}
    for name in ssm.available_isas():
        for dt in ("float32", "float64"):
            t = tiles(name, dt)
            for kernel in ROW_KERNELS:
                sizes |= {t[kernel] - 1, t[kernel], t[kernel] + 1, 2 * t[kernel] - 1} - {0}
    return sorted(sizes)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("n", row_edge_sizes())
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


@pytest.mark.parametrize(
    "name",
    ["softmax", "log_softmax", "logsumexp", "isa", "available_isas", "use_isa",
     "set_num_threads", "get_num_threads", "show_runtime"],
)  # fmt: skip
def test_public_names_are_documented(name):
    assert name in ssm.__all__
    assert "\n    Examples\n    --------\n" in getattr(ssm, name).__doc__


