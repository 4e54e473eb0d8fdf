"""Independent references and the accuracy contract, shared by every test module.

References are computed in a wider precision than the data: float64 for
float32 data (SPEC 2: "the exact result computed in float64 from the same
inputs") and NumPy long double (80-bit on x86) for float64 data; mpmath for
edge cases; the `exact_*` functions carry x - max exactly (TwoSum) in long
double for the property-based tests. The SPEC's bounds are named constants
here, so a test states which bound it checks.
"""

import numpy as np
import pytest

from simdsoftmax import _core

# The algorithm names, as the extension defines them.
ALGORITHMS = tuple(_core.ALGORITHMS)

# ---------------------------------------------------------------------------
# Bounds (SPEC 2, README "Accuracy")

F32_ULP = 2.0**-23
F32_SOFTMAX_ULP = 4  # float32 softmax: relative error <= 4 * 2^-23 above the smallest normal
F32_SOFTMAX_RTOL = F32_SOFTMAX_ULP * F32_ULP
F64_RTOL = 1e-14  # float64 results: relative error of an extended-precision reference
# float64 log-sum-exp: the sum's own rounding (half an ulp of a double) becomes
# an absolute error of the log; near lse = 0 no double-precision exp does better.
F64_LSE_ATOL = 2 * 2.0**-52
F32_LSE_ULP = 1  # float32 log-sum-exp: within 1 ulp of the rounded exact result
# Measured maxima of the kernels' exp over normal results, rounded up: float32
# by the exhaustive sweep (tools/exp_ulp_sweep.py), float64 over 10^8 samples.
EXP_MAX_ULP = {"float32": 1.1, "float64": 1.25}
# Per output dtype: (rtol, atol). The relative bound holds above the smallest
# normal; below it the error stays within the smallest normal (subnormal
# outputs go through one extra rounding in the reload rescale and the final
# scaling). float16 output is the float32 result rounded once more: 1 ulp.
SOFTMAX_BOUNDS = {
    np.dtype(np.float16): (2.0**-10, 2.0**-24),
    np.dtype(np.float32): (F32_SOFTMAX_RTOL, 2.0**-126),
    np.dtype(np.float64): (F64_RTOL, 2.0**-1022),
}
LSE_ULPS = {np.dtype(np.float16): 1, np.dtype(np.float32): F32_LSE_ULP}


def softmax_rtol(dtype):
    """The SPEC's relative bound on softmax outputs of `dtype` (float32 or float64)."""
    return F32_SOFTMAX_RTOL if np.dtype(dtype) == np.float32 else F64_RTOL


def wide(dtype):
    """The reference precision for data of `dtype`."""
    return np.float64 if np.dtype(dtype) == np.float32 else np.longdouble


# ---------------------------------------------------------------------------
# Plain references: shift by the max, exponentiate, sum, in the wide dtype


def ref_softmax(x, axis=-1, dtype=None):
    """softmax(x) over `axis` (None: all axes) in `dtype` (default: wide(x.dtype))."""
    x = np.asarray(x)
    xw = x.astype(dtype or wide(x.dtype))
    e = np.exp(xw - xw.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis=-1, dtype=None):
    x = np.asarray(x)
    xw = x.astype(dtype or wide(x.dtype))
    shifted = xw - xw.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def ref_logsumexp(a, axis=-1, b=None, keepdims=False, dtype=None):
    """(log|sum b exp(a)|, sign) over `axis` in `dtype` (default: wide(a.dtype)).

    A 0-d `a` is 1-d, as in SciPy; `b` broadcasts against `a`; a zero weight
    removes its term (so 0 * exp(+inf) is no term, as in SciPy).
    """
    a = np.atleast_1d(np.asarray(a))
    dtype = dtype or wide(a.dtype)
    aw = a.astype(dtype)
    bw = np.ones_like(aw) if b is None else np.atleast_1d(np.asarray(b)).astype(dtype)
    aw, bw = np.broadcast_arrays(aw, bw)
    with np.errstate(invalid="ignore"):  # all weights 0: no term, NaN as intended
        top = np.where(bw != 0, aw, -np.inf).max(axis=axis, keepdims=True)
        s = np.where(bw != 0, bw * np.exp(aw - top), 0).sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        res, sign = top + np.log(np.abs(s)), np.sign(s)
    if not keepdims:
        res, sign = np.squeeze(res, axis=axis), np.squeeze(sign, axis=axis)
    return res, sign


def axis_reference(func, x, axis):
    """softmax, log_softmax or logsumexp over `axis` in the wide dtype, with
    rows whose max is not finite shifted by 0 (their values are then NaN/inf)."""
    xw = x.astype(wide(x.dtype))
    with np.errstate(all="ignore"):
        mx = np.max(xw, axis=axis, keepdims=True)
        mx = np.where(np.isfinite(mx), mx, 0)
        s = np.exp(xw - mx).sum(axis=axis, keepdims=True)
        lse = mx + np.log(s)
        if func == "softmax":
            return np.exp(xw - lse)
        if func == "log_softmax":
            return xw - lse
        return np.squeeze(lse, axis=axis)


# ---------------------------------------------------------------------------
# Checks against the bounds


def ulp_of(values, dtype):
    """The spacing of `dtype` at |values| rounded to `dtype`, as float64 (long double for float64)."""
    rounded = np.abs(np.asarray(values)).astype(dtype)
    return np.spacing(rounded).astype(wide(dtype))


def ulp_distance(actual, exact, dtype=None):
    """|actual - exact| in ulps of `dtype` (default: actual's dtype) at the exact value."""
    actual = np.asarray(actual)
    dtype = np.dtype(dtype or actual.dtype)
    exact = np.asarray(exact)
    return np.abs(actual.astype(exact.dtype) - exact) / ulp_of(exact, dtype).astype(exact.dtype)


def assert_softmax_close(y, ref, where=""):
    """The accuracy contract: float32 <= 4 ulp relative, float64 <= 1e-14
    relative, for outputs above the smallest normal; below it the absolute
    error stays below twice the smallest normal."""
    dt = y.dtype
    tiny = np.finfo(dt).tiny
    big = ref > tiny
    rel = np.abs(y[big].astype(ref.dtype) - ref[big]) / ref[big]
    bound = softmax_rtol(dt)
    assert rel.size == 0 or rel.max() <= bound, f"{where} max relative error {rel.max():.3g} > {bound:.3g}"
    assert np.all(np.abs(y[~big].astype(ref.dtype) - ref[~big]) <= 2 * tiny), where


def assert_lse_close(out, ref, where=""):
    """float32: within 1 ulp of the float32-rounded exact result; float64:
    1e-14 relative plus the sum's own rounding (F64_LSE_ATOL)."""
    out = np.asarray(out)
    if out.dtype == np.float32:
        r32 = np.asarray(ref).astype(np.float32)
        err = np.abs(out.astype(np.float64) - r32)
        assert np.all(err <= F32_LSE_ULP * np.spacing(np.abs(r32)).astype(np.float64)), where
    else:
        np.testing.assert_allclose(out, np.asarray(ref).astype(np.float64), rtol=F64_RTOL, atol=F64_LSE_ATOL,
                                   err_msg=where)


def assert_same_normal_values(y, expected):
    """Equal bits wherever the result is a normal number; below it (where the
    max-pass path rounds twice into subnormals) within the smallest normal."""
    tiny = np.finfo(y.dtype).tiny
    normal = np.abs(expected) >= 2 * tiny
    np.testing.assert_array_equal(y[normal], expected[normal])
    assert np.all(np.abs(y[~normal] - expected[~normal]) <= tiny)


# ---------------------------------------------------------------------------
# mpmath references (edge cases)


def mp_softmax_and_lse(row):
    """softmax and log-sum-exp of a float64 row in 60-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(60):
        xs = [mpmath.mpf(float(v)) if np.isfinite(v) else None for v in row]
        finite = [v for v in xs if v is not None]
        m = max(finite)
        terms = [mpmath.exp(v - m) if v is not None else mpmath.mpf(0) for v in xs]
        s = mpmath.fsum(terms)
        return [float(t / s) for t in terms], float(m + mpmath.log(s))


def assert_log_softmax_rows(xm, ym, bound, dtype, where):
    """Each log_softmax value ym[r, i] within `bound` relative of x_i - lse(x)
    for row xm[r], in 50-digit arithmetic (exact zeros and values below the
    dtype's smallest normal, where relative error means nothing, skipped)."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        for row, out in zip(xm, ym):
            vals = [mpmath.mpf(float(v)) for v in row]
            m = max(vals)
            lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in vals))
            for v, got in zip(vals, out):
                exact = v - lse
                if exact != 0 and abs(exact) > np.finfo(dtype).tiny:
                    assert abs(mpmath.mpf(float(got)) - exact) <= bound * abs(exact), (where, float(got), float(exact))


# ---------------------------------------------------------------------------
# Exact-shift references (long double, x - max carried as hi + lo)


def two_diff(a, b):
    """a - b as hi + lo exactly (TwoSum), with lo = 0 where hi is not finite."""
    hi = a - b
    bb = hi - a
    lo = (a - (hi - bb)) - (b + bb)
    return hi, np.where(np.isfinite(hi), lo, 0)


def exact_rowwise(xw, axes):
    """Exact-ish softmax and log_softmax of the work-dtype array xw over `axes`
    in long double, log S, and the mask of special rows (NaN, +inf, all -inf)."""
    L = xw.astype(np.longdouble)
    top = L.max(axis=axes, keepdims=True)
    special = np.isnan(L).any(axis=axes, keepdims=True) | np.isinf(top)
    top = np.where(special, 0, top)
    d, d_lo = two_diff(L, top)
    e = np.exp(d) * (1 + d_lo)
    # S = 1 + rest, where the max's own term is exactly 1: log1p(rest) keeps the
    # relative accuracy of a log-softmax near 0 (a dominant entry).
    at_top = (d == 0) & (d_lo == 0)
    rest = np.where(at_top, 0, e).sum(axis=axes, keepdims=True) + (at_top.sum(axis=axes, keepdims=True) - 1)
    s = 1 + rest
    log_s = np.log1p(rest)
    special = np.broadcast_to(special, L.shape)
    return e / s, (d + d_lo) - log_s, np.broadcast_to(log_s, L.shape), special


def exact_logsumexp(aw, bw, axes, keepdims):
    """(lse, sign, special mask, slack) in long double over `axes`: the exact
    weighted log-sum-exp and the rounding slack the float64 passes may add."""
    A = aw.astype(np.longdouble)
    B = np.ones_like(A) if bw is None else bw.astype(np.longdouble)
    A, B = np.broadcast_arrays(A, B)
    live = B != 0
    A = np.where(live, A, -np.inf)  # a zero weight removes its term (SciPy)
    top = A.max(axis=axes, keepdims=True)
    special = (np.isnan(A) & live).any(axis=axes, keepdims=True) | ~np.isfinite(B).all(axis=axes, keepdims=True)
    special |= ~np.isfinite(top)
    top = np.where(special, 0, top)
    d, d_lo = two_diff(A, top)
    terms = np.exp(d) * (1 + d_lo)
    # The max's terms are exactly b: |S| - 1 = (+-sum_top - 1) +- rest keeps the
    # relative accuracy of a log-sum-exp near max (log1p of it).
    at_top = (d == 0) & (d_lo == 0) & live
    sum_top = np.where(at_top, B, 0).sum(axis=axes, keepdims=True)
    rest = np.where(at_top, 0, B * terms).sum(axis=axes, keepdims=True)
    s = sum_top + rest
    magnitude = (np.abs(B) * terms).sum(axis=axes, keepdims=True)
    special |= s == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log1p(np.where(s >= 0, (sum_top - 1) + rest, (-sum_top - 1) - rest))
        lse = top + log_s
        # The kernels sum in float64: each term's exp and the compensated sum
        # cost a few float64 ulps of the sum of |terms|, amplified in the log
        # by cancellation; then max + log S rounds once more in float64.
        eps = 2.0**-52
        slack = 8 * eps * magnitude / np.abs(s) + 4 * eps * (np.abs(top) + np.abs(log_s))
    sign = np.sign(s)
    if not keepdims:
        lse, sign, special, slack = (np.squeeze(v, axis=axes) for v in (lse, sign, special, slack))
    return lse, sign, special, slack


# ---------------------------------------------------------------------------
# The public functions against SciPy and the references

# softmax: relative (probabilities can be tiny); log-space results: absolute too,
# since an entry near 0 carries the error of the log-sum-exp it was shifted by.
API_TOL = {
    ("softmax", np.float32): dict(rtol=1e-5, atol=1e-37),
    ("softmax", np.float64): dict(rtol=1e-12, atol=1e-300),
    ("log", np.float32): dict(rtol=1e-5, atol=1e-6),
    ("log", np.float64): dict(rtol=1e-12, atol=1e-14),
}


def tol(func, dtype):
    """assert_allclose tolerances of the public `func` for `dtype` (float32 or float64)."""
    return API_TOL[("softmax" if func == "softmax" else "log", np.dtype(dtype).type)]


inf, nan = np.inf, np.nan
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
