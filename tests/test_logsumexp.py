"""logsumexp: the one-pass kernels (plain and weighted) on every kernel set at
sizes that cross every tail of their loops, float32 within 1 ulp of the
rounded exact result and float64 within 1e-14; then the public function's
SciPy semantics (special rows, weights, signs, dtypes, keepdims)."""

import warnings

import numpy as np
import pytest
import scipy.special as sp

import simdsoftmax as ssm
from reference import (
    SPECIAL_ROWS,
    assert_like_scipy,
    assert_lse_close,
    random_logits,
    ref_logsumexp,
    tol,
)
from simdsoftmax import _core
from tiles import lse_sizes

FIXED_SIZES = list(range(1, 130))

inf, nan = np.inf, np.nan


# --------------------------------------------------------------------------
# Kernels


def test_logsumexp_one_ulp(isa, dtype):
    rng = np.random.default_rng(10)
    for n in [1, 2, 3] + FIXED_SIZES[::5] + [10**5, 10**6 + 3]:
        for scale in (1e-3, 1.0, 8.0, 1e3, 1e6, 1e20):
            rows = 3 if n < 10**5 else 1
            x = (rng.standard_normal((rows, n)) * scale).astype(dtype)
            out = np.empty(rows, dtype)
            assert _core.logsumexp(x, out).size == 0
            assert_lse_close(out, ref_logsumexp(x)[0], f"n={n} scale={scale}")


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_logsumexp_every_tail(isa, dtype, scale):
    """Every tail of the log-sum-exp passes (fast sums, float64 lanes)."""
    rng = np.random.default_rng(20)
    for n in sorted(set(lse_sizes(isa, dtype)) | set(FIXED_SIZES)):
        x = (rng.standard_normal((3, n)) * scale).astype(dtype)
        if n > 2:
            x[1, rng.integers(n)] = -np.inf
        out = np.empty(3, dtype)
        assert _core.logsumexp(x, out).size == 0
        assert_lse_close(out, ref_logsumexp(x)[0], f"n={n}")


def test_logsumexp_near_zero_result(isa, dtype):
    """lse close to 0 is where a float32-arithmetic pass loses hundreds of
    ulps; the float64-arithmetic pass keeps float32 within 1 ulp."""
    x = np.array([[0.0, -7.0], [-0.5, -1.2], [-3.0, -0.0001]], dtype=dtype)
    out = np.empty(3, dtype)
    _core.logsumexp(x, out)
    assert_lse_close(out, ref_logsumexp(x)[0])


def check_weighted(x, b, n):
    rows = x.shape[0]
    out = np.empty(rows, x.dtype)
    sign = np.empty(rows, x.dtype)
    special = _core.logsumexp_weighted(x, b, out, sign)
    ref, rsign = ref_logsumexp(np.where(b == 0, 0, x).astype(x.dtype), b=b)
    ok = np.setdiff1d(np.arange(rows), special)
    assert np.array_equal(sign[ok], rsign[ok].astype(x.dtype))
    rtol = 1e-6 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out[ok], ref[ok].astype(np.float64), rtol=rtol, atol=rtol, err_msg=f"n={n}")
    return special


def test_logsumexp_weighted(isa, dtype):
    rng = np.random.default_rng(11)
    for n in (1, 7, 64, 129, 5000):
        x = (rng.standard_normal((4, n)) * 5).astype(dtype)
        b = rng.standard_normal((4, n)).astype(dtype)
        b[0] = np.abs(b[0])
        b[1, ::3] = 0
        x[1, ::3] = np.inf  # masked by b == 0, as in SciPy
        special = check_weighted(x, b, n)
        # n == 1: row 1's only weight is 0 -> no term at all (special, as SciPy's -inf)
        assert special.tolist() == ([1] if n == 1 else []) or (n > 1 and set(special) <= {2, 3})


def test_logsumexp_weighted_every_tail(isa, dtype):
    """The weighted pass at every tail of its loops: positive weights (never
    special) and zero weights hiding +inf."""
    rng = np.random.default_rng(21)
    for n in sorted(set(lse_sizes(isa, dtype)) | set(FIXED_SIZES)):
        x = (rng.standard_normal((2, n)) * 5).astype(dtype)
        b = rng.uniform(0.1, 2.0, (2, n)).astype(dtype)
        if n > 1:
            b[1, ::2] = 0
            x[1, ::2] = np.inf
        assert check_weighted(x, b, n).size == 0


def test_logsumexp_special_rows(isa, dtype):
    x = np.array([[1.0, np.nan], [1.0, np.inf], [-np.inf, -np.inf], [0.0, 0.0]], dtype=dtype)
    out = np.full(4, 9.0, dtype)
    assert _core.logsumexp(x, out).tolist() == [0, 1, 2]
    assert out[:3].tolist() == [9.0, 9.0, 9.0]
    assert out[3] == dtype.type(np.log(2.0))
    b = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, -1.0], [1.0, np.inf]], dtype=dtype)
    x = np.zeros((4, 2), dtype)
    sign = np.empty(4, dtype)
    out = np.full(4, 9.0, dtype)
    # all-zero weights, an exactly-cancelling sum and an infinite weight are special
    assert _core.logsumexp_weighted(x, b, out, sign).tolist() == [1, 2, 3]
    assert out[0] == dtype.type(np.log(2.0)) and sign[0] == 1


# --------------------------------------------------------------------------
# The public function: SciPy's semantics


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


def test_logsumexp_0d_is_treated_as_1d():
    # As in SciPy: a 0-d input is made 1-d first.
    assert ssm.logsumexp(2.0, keepdims=True).shape == (1,)
    assert ssm.logsumexp(2.0, axis=0) == 2.0
    assert ssm.logsumexp(2.0, axis=-1) == 2.0


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
    expected = ref_logsumexp(a, axis=axis, b=b, keepdims=keepdims, dtype=np.longdouble)[0].astype(dtype)
    np.testing.assert_allclose(actual, expected, **tol("logsumexp", dtype))


def test_logsumexp_b_not_broadcastable():
    with pytest.raises(ValueError, match="broadcast"):
        ssm.logsumexp(np.ones((2, 3)), b=np.ones(2))


def test_logsumexp_signed_weights(isa, dtype):
    a = random_logits((6, 40), dtype)
    b = random_logits((6, 40), dtype, seed=1)  # mixed signs: some sums negative
    b[0] = np.abs(b[0])
    b[1] = -np.abs(b[1])
    expected, expected_sign = ref_logsumexp(a, axis=1, b=b, dtype=np.longdouble)
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
# The fast path (_core.logsumexp_call) and signs in any layout


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

