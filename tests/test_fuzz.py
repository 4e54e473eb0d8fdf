"""Property-based tests (hypothesis) of the whole public API.

Every example draws a kernel set, a dtype (every NumPy numeric dtype, either
byte order), a shape (0-d to 4-d, zero-size included), a memory layout
(C, Fortran, permuted strides, slices with negative steps, unaligned,
read-only), values (ordinary, huge, tiny, denormal, +-inf, NaN, -inf masks),
an axis and an `out`, and checks:

* the result against an independent reference: long double with the shift
  x - max carried exactly (TwoSum), within the SPEC's accuracy bounds, for the
  dtypes the kernels compute; scipy.special itself for the rows SciPy defines
  by special values (NaN, +inf, all -inf) and for complex and long double;
* the input is never modified (nor anything around a strided view);
* `out=` is fully written (the same bits as a call without it) and returned;
* the Gumbel samplers: shape, dtype, valid draws, bit-identical results for
  every kernel set and layout, greedy temperature 0, top-k prefixes, the
  first bad row named in the error, and `out` untouched on error.

Seeded: hypothesis runs derandomized, so every run sees the same examples.
Environment: SIMDSOFTMAX_FUZZ_SCALE=0.1 scales the example counts (emulated
CPUs, sanitizers); SIMDSOFTMAX_FUZZ_RANDOM=1 draws fresh examples each run
(for local bug hunting; `--hypothesis-seed=N` replays one).
"""

import os
import re
import warnings

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import simdsoftmax as ssm
from simdsoftmax._api import ALGORITHMS

SCALE = float(os.environ.get("SIMDSOFTMAX_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("SIMDSOFTMAX_FUZZ_RANDOM", "") not in ("", "0")

# Examples per test, at SCALE 1; the total is what a CI run checks (>= 10,000).
EXAMPLES = {
    "softmax": 2500,
    "log_softmax": 2000,
    "logsumexp": 2500,
    "gumbel_argmax": 1000,
    "gumbel_topk": 1000,
    "gumbel_softmax": 1000,
}


def fuzz(name):
    return settings(
        max_examples=max(1, round(EXAMPLES[name] * SCALE)),
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


LONGDOUBLE_IS_WIDE = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)

REAL_FLOATS = [F16, F32, F64, np.dtype(np.longdouble)]
INTEGERS = [np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)]
COMPLEX = [np.dtype(t) for t in (np.complex64, np.complex128, np.clongdouble)]
ALL_DTYPES = [np.dtype(np.bool_), *INTEGERS, *REAL_FLOATS, *COMPLEX]
KERNEL_DTYPES = [F32, F64]  # drawn half of the time: the kernels' own dtypes
GUMBEL_DTYPES = [np.dtype(np.bool_), *INTEGERS, F16, F32, F64]

# Vector tails: AVX-512 float32 is 16 lanes x 4 accumulators.
LONG_SIDES = [7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 200]


# --------------------------------------------------------------------------
# Strategies


def dtypes(choices):
    kernel = [d for d in KERNEL_DTYPES if d in choices]
    return st.one_of(st.sampled_from(kernel), st.sampled_from(choices)) if kernel else st.sampled_from(choices)


@st.composite
def shapes(draw, min_dims=0, max_dims=4):
    ndim = draw(st.integers(min_dims, max_dims))
    shape = [draw(st.integers(0, 4)) for _ in range(ndim)]
    if ndim and draw(st.integers(0, 3)) == 0:
        # One long side (usually the last, where rows are) to cross every vector tail.
        axis = ndim - 1 if draw(st.booleans()) else draw(st.integers(0, ndim - 1))
        shape[axis] = draw(st.sampled_from(LONG_SIDES))
        for i in range(ndim):
            if i != axis:
                shape[i] = min(shape[i], 2)
    return tuple(shape)


def axes_for(ndim, allow_none=True, allow_tuple=True):
    options = [st.none()] if allow_none else []
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
    if allow_tuple:
        if ndim:
            options.append(
                st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).flatmap(
                    lambda axes: st.tuples(*[st.sampled_from([a, a - ndim]) for a in axes])
                )
            )
        else:
            options.append(st.just(()))
    return st.one_of(options)


def normalized_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        return (axis % ndim,)
    return tuple(a % ndim for a in axis)


def _finite_recipe(rng, shape, kind, scale, loc):
    size = int(np.prod(shape))
    if kind == "normal":
        return rng.standard_normal(size) * scale + loc
    if kind == "logspace":  # magnitudes from denormal to near overflow (float64)
        return rng.choice([-1.0, 1.0], size) * 2.0 ** rng.uniform(-1074, 1023.9, size)
    if kind == "ties":
        return np.full(size, loc) + rng.integers(0, 2, size) * scale
    return np.round(rng.standard_normal(size) * scale + loc)  # integral


@st.composite
def values(draw, dtype, shape):
    """A native-byte-order array of `dtype` and `shape` with adversarial values."""
    size = int(np.prod(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "b":
        return (rng.random(size) < draw(st.sampled_from([0.0, 0.5, 1.0]))).reshape(shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if draw(st.booleans()):
            flat = rng.integers(info.min, info.max, size, dtype=dtype, endpoint=True)
        else:
            flat = rng.integers(max(info.min, -20), 20, size, endpoint=True).astype(dtype)
        if size and draw(st.booleans()):
            flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from([info.min, info.max, 0]))
        return flat.reshape(shape)

    part = np.dtype(dtype.char.lower()) if dtype.kind == "c" else dtype
    part = {"F": F32, "D": F64, "G": np.dtype(np.longdouble)}.get(dtype.char, part)
    fi = np.finfo(part)

    def component():
        kind = draw(st.sampled_from(["normal", "normal", "logspace", "ties", "integral"]))
        scale = draw(st.sampled_from([1e-30, 1e-3, 1.0, 8.0, 100.0, 1e4, 1e30, 1e300]))
        loc = draw(st.sampled_from([0.0, 0.0, 50.0, -1e4, 1e6, -3e38, 1e300]))
        raw = _finite_recipe(rng, shape, kind, scale, loc)
        limit = float(fi.max)
        return np.clip(raw, -limit, limit).astype(part)

    flat = component()
    if dtype.kind == "c":
        flat = flat + 1j * component()
        flat = flat.astype(dtype)
    if size:
        mask_rate = draw(st.sampled_from([0.0, 0.0, 0.0, 0.3, 0.9, 1.0]))
        if mask_rate:
            flat[rng.random(size) < mask_rate] = -np.inf
        specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, fi.max, -fi.max, fi.tiny, fi.smallest_subnormal,
                    -fi.smallest_subnormal]
        for _ in range(draw(st.integers(0, 3))):
            where = draw(st.integers(0, size - 1))
            value = draw(st.sampled_from(specials))
            if dtype.kind == "c" and draw(st.booleans()):
                flat[where] = complex(flat[where].real, value)
            else:
                flat[where] = value
    return flat.reshape(shape)


def relayout(draw, x, may_be_readonly=True, allow_swap=True):
    """The same values as `x` in another memory layout, maybe the other byte
    order, maybe read-only. Returns (view, owner): `owner` is the whole buffer
    the view lives in (to check that nothing around the view is touched)."""
    dtype = x.dtype
    if allow_swap and dtype.itemsize > 1 and draw(st.booleans()):
        dtype = dtype.newbyteorder()
    kind = draw(st.sampled_from(["c", "c", "f", "transpose", "strided", "unaligned"]))
    if kind == "c" or x.ndim == 0 and kind in ("f", "transpose", "strided"):
        view = np.array(x, dtype=dtype, order="C")
        owner = view
    elif kind == "f":
        view = np.array(x, dtype=dtype, order="F")
        owner = view
    elif kind == "transpose":
        perm = draw(st.permutations(range(x.ndim)))
        owner = np.array(x.transpose(perm), dtype=dtype, order="C")  # always a copy
        view = owner.transpose(np.argsort(perm))
    elif kind == "strided":
        steps = [draw(st.sampled_from([1, 2, 3, -1, -2])) for _ in range(x.ndim)]
        owner = np.empty(tuple(max(1, d * abs(s)) + 1 for d, s in zip(x.shape, steps)), dtype)
        owner[...] = 7 if dtype.kind in "biu" else np.nan  # never part of a result
        view = owner[tuple(slice(1, 1 + d * abs(s), abs(s)) for d, s in zip(x.shape, steps))]
        for axis, s in enumerate(steps):
            if s < 0:
                view = np.flip(view, axis)
        view[...] = x
    else:  # unaligned: one byte into a byte buffer
        owner = np.zeros(x.nbytes + dtype.itemsize + 1, np.uint8)
        view = owner[1 : 1 + x.nbytes].view(dtype).reshape(x.shape)
        view[...] = x
    if may_be_readonly and draw(st.integers(0, 4)) == 0:
        view.flags.writeable = False
    return view, owner


def result_dtype(dtype):
    """softmax/log_softmax/logsumexp result dtype of an input dtype (SPEC 3)."""
    if dtype.kind in "biu":
        return F64
    return np.dtype(dtype.type)


def work_dtype(dtype):
    """The dtype the kernels compute in, or None for the NumPy path."""
    return {F16: F32, F32: F32, F64: F64}.get(np.dtype(dtype.type), F64 if dtype.kind in "biu" else None)


# --------------------------------------------------------------------------
# Checks


def raw(a):
    """The bytes of an array's elements (any layout, 0-d too), for exact comparisons."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def assert_identical(a, b, what):
    """Same values bit for bit (long double: value for value, its padding bytes are undefined)."""
    if a.dtype.itemsize > 8 and a.dtype.char in "gG":
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        np.testing.assert_array_equal(raw(a), raw(b), err_msg=what)


def quiet():
    """SciPy's and our special-value warnings are part of the semantics, not of these properties."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")
    return ctx


def assert_same_nonfinite(actual, expected, what):
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape, (what, a.shape, e.shape)
    for part in ("real", "imag") if a.dtype.kind == "c" else (None,):
        ap = getattr(a, part) if part else a
        ep = getattr(e, part) if part else e
        np.testing.assert_array_equal(np.isnan(ap), np.isnan(ep), err_msg=f"{what}: NaN positions")
        inf = np.isinf(ep)
        np.testing.assert_array_equal(ap[inf], ep[inf], err_msg=f"{what}: infinities")


def assert_close_to_scipy(actual, expected, what):
    """Same NaN/inf pattern as SciPy; finite values close (NumPy-path dtypes compute
    SciPy's own formula, possibly in another summation order)."""
    assert_same_nonfinite(actual, expected, what)
    a, e = np.asarray(actual), np.asarray(expected)
    # At least float64's eps: SciPy's formulas use float64 constants (np.pi in the
    # complex phase wrap) even for long double.
    eps = max(float(np.finfo(e.dtype).eps) if e.dtype.kind in "fc" else 0.0, 2.0**-52)
    for part in ("real", "imag") if a.dtype.kind == "c" else (None,):
        ap = getattr(a, part) if part else a
        ep = getattr(e, part) if part else e
        fin = np.isfinite(ep) & np.isfinite(ap)
        np.testing.assert_array_equal(np.isfinite(ap), np.isfinite(ep), err_msg=f"{what}: finite positions")
        err = np.abs(ap[fin].astype(np.longdouble) - ep[fin].astype(np.longdouble))
        bound = 256 * eps * (np.abs(ep[fin].astype(np.longdouble)) + 1)
        assert np.all(err <= bound), f"{what}: max error {err.max()} vs SciPy"


def assert_within(actual, ref, rtol, atol, what, extra=0.0):
    """|actual - ref| <= rtol*|ref| + atol + extra, where ref is exact (long
    double); non-finite values must match the reference rounded to the output
    dtype, except at the overflow threshold."""
    actual = np.asarray(actual)
    rounded = ref.astype(actual.dtype)
    limit = float(np.finfo(actual.dtype).max) * (1 - 8 * float(np.finfo(actual.dtype).eps))
    edge = np.isinf(actual) & np.isfinite(rounded) & (np.abs(ref) >= limit) & (np.sign(actual) == np.sign(ref))
    nonfinite = ~np.isfinite(rounded) | ~np.isfinite(actual)
    check = nonfinite & ~edge
    np.testing.assert_array_equal(actual[check], rounded[check], err_msg=f"{what}: non-finite values")
    fin = ~nonfinite
    err = np.abs(actual[fin].astype(np.longdouble) - ref[fin])
    bound = rtol * np.abs(ref[fin]) + atol + (extra[fin] if np.ndim(extra) else extra)
    bad = err > bound
    if np.any(bad):
        i = np.flatnonzero(bad)[0]
        raise AssertionError(
            f"{what}: {bad.sum()} values outside the bound, e.g. {actual[fin][i]!r} vs exact "
            f"{ref[fin][i]!r} (error {err[i]:.3g} > {bound[i]:.3g})"
        )


# Accuracy bounds (SPEC 2, README "Accuracy"), per output dtype: (rtol, atol).
# The relative bound holds for outputs above the smallest normal; below it the
# contract is an absolute error within the smallest normal (subnormal outputs
# go through one extra rounding in the reload rescale and the final scaling).
# float16 output is the float32 result rounded once more: 1 float16 ulp.
SOFTMAX_BOUNDS = {F16: (2.0**-10, 2.0**-24), F32: (4 * 2.0**-23, 2.0**-126), F64: (1e-14, 2.0**-1022)}
LSE_ULPS = {F16: 1, F32: 1}


def two_diff(a, b):
    """a - b as hi + lo exactly (TwoSum), with lo = 0 where hi is not finite."""
    hi = a - b
    bb = hi - a
    lo = (a - (hi - bb)) - (b + bb)
    return hi, np.where(np.isfinite(hi), lo, 0)


def ref_rowwise(xw, axes):
    """Exact-ish softmax and log_softmax of the work-dtype array xw over `axes`
    in long double, and the mask of special rows (NaN, +inf, all -inf)."""
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


# --------------------------------------------------------------------------
# softmax and log_softmax


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
        soft, logsoft, log_s, special = ref_rowwise(xw, axes)
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


# --------------------------------------------------------------------------
# logsumexp


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


def ref_logsumexp(aw, bw, axes, keepdims):
    """(lse, sign, special mask, slack) in long double, over `axes`, keepdims."""
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
        lse, sign, special, slack = ref_logsumexp(a1.astype(work), None if b1 is None else b1.astype(work),
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


# --------------------------------------------------------------------------
# Gumbel family


@st.composite
def gumbel_cases(draw):
    dtype = draw(dtypes(GUMBEL_DTYPES + [np.dtype(np.longdouble), np.dtype(np.complex128)]))
    shape = draw(shapes(min_dims=0))
    x = draw(values(dtype, shape))
    view, owner = relayout(draw, x)
    axis = draw(st.integers(-len(shape), len(shape) - 1)) if shape else draw(st.sampled_from([0, -1]))
    temperature = draw(st.sampled_from([1.0, 1.0, 0.5, 3.0, 1e-3, 0.0]))
    seed = draw(st.integers(0, 2**63))
    isas = ssm.available_isas()
    return x, view, owner, axis, temperature, seed, draw(st.sampled_from(isas))


def row_view(x, axis):
    """Rows of x (work dtype) along `axis`, batch positions in C order."""
    moved = np.moveaxis(x, axis, -1)
    return moved.reshape(int(np.prod(moved.shape[:-1])), moved.shape[-1]), moved.shape[:-1]


def first_bad_row(xw, axis, k):
    """(batch index, reason) of the first row a Gumbel sampler must reject, or None."""
    rows, batch = row_view(xw, axis)
    for r, row in enumerate(rows):
        if np.isnan(row).any():
            reason = "contains NaN"
        elif np.isposinf(row).any():
            reason = "contains +inf"
        elif np.isfinite(row).sum() < k:
            reason = "finite logit"
        else:
            continue
        return (tuple(int(i) for i in np.unravel_index(r, batch)) if batch else None), reason
    return None


def gumbel_rejects(x, view, axis):
    """The error a Gumbel call must raise for the input alone, or None."""
    if x.ndim == 0:
        return ValueError
    if x.dtype.kind not in "biuf" or np.dtype(x.dtype.type) == np.longdouble:
        return TypeError
    return None


def expect_bad_row(excinfo, bad):
    where, reason = bad
    message = str(excinfo.value)
    assert message.startswith("logits:"), message
    assert reason in message, message
    if where is not None:
        assert f"row {where}" in message, message


@fuzz("gumbel_argmax")
@given(gumbel_cases())
def test_gumbel_argmax(case):
    x, view, owner, axis, temperature, seed, isa = case
    note(f"isa={isa} dtype={view.dtype} shape={view.shape} axis={axis} T={temperature}")
    owner_before = owner.copy()
    error = gumbel_rejects(x, view, axis)
    if error is not None:
        with pytest.raises(error, match="logits"):
            ssm.gumbel_argmax(view, axis=axis, temperature=temperature, rng=seed)
        return
    xw = x.astype(work_dtype(x.dtype))
    bad = first_bad_row(xw, axis, 1)
    with ssm.use_isa(isa):
        if bad is not None:
            with pytest.raises(ValueError) as excinfo:
                ssm.gumbel_argmax(view, axis=axis, temperature=temperature, rng=seed)
            expect_bad_row(excinfo, bad)
            return
        got = np.asarray(ssm.gumbel_argmax(view, axis=axis, temperature=temperature, rng=seed))
    np.testing.assert_array_equal(raw(owner), raw(owner_before))
    rows, batch = row_view(xw, axis)
    assert got.dtype == np.intp and got.shape == batch
    idx = got.reshape(-1)
    assert np.all((idx >= 0) & (idx < max(rows.shape[1], 1)))
    if rows.size:
        assert np.all(np.isfinite(rows[np.arange(len(idx)), idx])), "drew a masked logit"
    if temperature == 0 and rows.size:
        np.testing.assert_array_equal(idx, np.argmax(rows, axis=1))
    # the same draw on the scalar kernels, from a C-contiguous native copy
    with ssm.use_isa("scalar"):
        again = ssm.gumbel_argmax(np.ascontiguousarray(xw), axis=axis, temperature=temperature, rng=seed)
    np.testing.assert_array_equal(got, again)


@fuzz("gumbel_topk")
@given(gumbel_cases(), st.integers(0, 6))
def test_gumbel_topk(case, k):
    x, view, owner, axis, temperature, seed, isa = case
    note(f"isa={isa} dtype={view.dtype} shape={view.shape} axis={axis} T={temperature} k={k}")
    error = gumbel_rejects(x, view, axis)
    if error is not None:
        with pytest.raises(error, match="logits"):
            ssm.gumbel_topk(view, k, axis=axis, temperature=temperature, rng=seed)
        return
    xw = x.astype(work_dtype(x.dtype))
    rows, batch = row_view(xw, axis)
    bad = first_bad_row(xw, axis, k) if k else None
    if k and rows.shape[1] == 0 and rows.shape[0]:
        bad = bad or ((0,) * len(batch) if batch else None, "finite logit")
    with ssm.use_isa(isa):
        if bad is not None:
            with pytest.raises(ValueError) as excinfo:
                ssm.gumbel_topk(view, k, axis=axis, temperature=temperature, rng=seed)
            expect_bad_row(excinfo, bad)
            return
        got = ssm.gumbel_topk(view, k, axis=axis, temperature=temperature, rng=seed)
    assert got.dtype == np.intp and got.shape == batch + (k,)
    flat = got.reshape(rows.shape[0], k)
    for r, drawn in enumerate(flat):
        assert len(set(drawn.tolist())) == k, "drew an index twice"
        assert np.all(np.isfinite(rows[r, drawn])), "drew a masked logit"
    if temperature == 0 and k and rows.size:
        np.testing.assert_array_equal(flat, np.argsort(-rows, axis=1, kind="stable")[:, :k])
    if k:
        # top-k is ordered by perturbed score: its first draw is gumbel_argmax's, and a
        # smaller k is a prefix (same rng)
        first = ssm.gumbel_argmax(np.ascontiguousarray(xw), axis=axis, temperature=temperature, rng=seed)
        np.testing.assert_array_equal(flat[:, 0], np.asarray(first).reshape(-1))
        with ssm.use_isa("scalar"):
            prefix = ssm.gumbel_topk(np.ascontiguousarray(xw), k - 1, axis=axis, temperature=temperature, rng=seed)
        np.testing.assert_array_equal(flat[:, : k - 1], prefix.reshape(rows.shape[0], k - 1))


@fuzz("gumbel_softmax")
@given(gumbel_cases(), st.booleans(), st.sampled_from(["none", "new", "inplace"]), st.data())
def test_gumbel_softmax(case, hard, out_mode, data):
    x, view, owner, axis, tau, seed, isa = case
    note(f"isa={isa} dtype={view.dtype} shape={view.shape} axis={axis} tau={tau} hard={hard} out={out_mode}")
    error = gumbel_rejects(x, view, axis)
    if error is not None:
        with pytest.raises(error, match="logits"):
            ssm.gumbel_softmax(view, axis=axis, tau=tau, hard=hard, rng=seed)
        return
    res = result_dtype(x.dtype)
    xw = x.astype(work_dtype(x.dtype))
    out = None
    if out_mode == "inplace" and view.dtype == res and view.flags.writeable:
        out = view
    elif out_mode != "none":
        out, _ = relayout(data.draw, np.full(x.shape, -7, res), may_be_readonly=False)
    out_before = None if out is None else out.copy()
    owner_before = owner.copy()
    rows, batch = row_view(xw, axis)
    bad = first_bad_row(xw, axis, 1)
    if rows.shape[0] and rows.shape[1] == 0:
        bad = bad or ((0,) * len(batch) if batch else None, "finite logit")
    with ssm.use_isa(isa):
        if bad is not None:
            with pytest.raises(ValueError) as excinfo:
                ssm.gumbel_softmax(view, axis=axis, tau=tau, hard=hard, rng=seed, out=out)
            expect_bad_row(excinfo, bad)
            if out is not None:  # untouched on error
                np.testing.assert_array_equal(raw(out), raw(out_before))
            np.testing.assert_array_equal(raw(owner), raw(owner_before))
            return
        got = ssm.gumbel_softmax(view, axis=axis, tau=tau, hard=hard, rng=seed, out=out)
    if out is not None:
        assert got is out
    else:
        np.testing.assert_array_equal(raw(owner), raw(owner_before))
    assert got.dtype.newbyteorder("=") == res and got.shape == x.shape
    y, _ = row_view(np.asarray(got, dtype=np.float64), axis)
    if y.size == 0:
        return
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=2e-3 if res == F16 else 1e-5)
    assert np.all(y[~np.isfinite(rows)] == 0), "a masked logit got probability"
    assert np.all(y >= 0)
    draw = np.asarray(ssm.gumbel_argmax(np.ascontiguousarray(xw), axis=axis, temperature=1.0, rng=seed))
    draw = draw.reshape(-1)
    if hard or tau == 0:
        one_hot = np.zeros_like(y)
        one_hot[np.arange(len(draw)), draw] = 1
        np.testing.assert_array_equal(y, one_hot)
    else:
        # The relaxed sample concentrates on the same draw: where its largest entry
        # stands clear of the others (rounding of (x + g)/tau can swap near-ties,
        # amplified by a small tau), that entry is the draw.
        top2 = np.sort(y, axis=1)[:, -2:] if y.shape[1] > 1 else np.concatenate([np.zeros_like(y), y], axis=1)
        clear = top2[:, 0] <= 0.9 * top2[:, 1]
        np.testing.assert_array_equal(np.argmax(y, axis=1)[clear], draw[clear])
        with ssm.use_isa("scalar"):
            again = ssm.gumbel_softmax(np.ascontiguousarray(xw), axis=axis, tau=tau, rng=seed)
        np.testing.assert_array_equal(np.asarray(got), again.astype(res))



# --------------------------------------------------------------------------
# Logits whose scaled value x/T leaves the dtype's range (found by fuzzing;
# the kernels now rescale scores by a power of two and subtract the row's
# largest x + g before dividing by tau).


def test_scaled_logits_overflow_masked_row():
    # finfo.min is a common way to mask logits; a fully masked row is still a row of finite logits
    x = np.full(3, np.finfo(np.float32).min)
    assert ssm.gumbel_argmax(x, temperature=0.5, rng=0) in (0, 1, 2)
    assert sorted(ssm.gumbel_topk(x, 3, temperature=0.5, rng=0)) == [0, 1, 2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scaled_logits_overflow_picks_the_larger(dtype):
    # 3.1e38 exceeds 3e38 by 1e37: at T=0.5 every draw must be index 1
    big = np.finfo(dtype).max
    x = np.array([big * 0.9, big * 0.95, 1.0], dtype)
    for isa in ssm.available_isas():
        with ssm.use_isa(isa):
            assert all(ssm.gumbel_argmax(x, temperature=0.5, rng=s) == 1 for s in range(20))
            assert all(list(ssm.gumbel_topk(x, 2, temperature=1e-3, rng=s)) == [1, 0] for s in range(5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_temperature_is_greedy_without_overflow(dtype):
    # 1/T beyond the dtype's range: the draw is the largest logit, as at T -> 0
    # (and 1/tau beyond it: gumbel_softmax is the one-hot of its draw)
    x = np.array([1.0, 3.0, -2.0, 2.5], dtype)
    tiny = float(np.finfo(dtype).tiny) / 4  # 1/T overflows the dtype
    for isa in ssm.available_isas():
        with ssm.use_isa(isa):
            assert ssm.gumbel_argmax(x, temperature=tiny, rng=1) == 1
            assert list(ssm.gumbel_topk(x, 3, temperature=tiny, rng=1)) == [1, 3, 0]
            # softmax((x + g)/tau) -> the one-hot of argmax(x + g): hard=True's draw
            hard = ssm.gumbel_softmax(x, tau=1.0, hard=True, rng=1)
            np.testing.assert_array_equal(ssm.gumbel_softmax(x, tau=tiny, rng=1), hard)


def test_scaled_logits_overflow_gumbel_softmax():
    for isa in ssm.available_isas():
        with ssm.use_isa(isa):
            y = ssm.gumbel_softmax(np.array([3e38, 3.1e38, 1.0], np.float32), tau=0.5, rng=0)
            np.testing.assert_array_equal(y, [0, 1, 0])
