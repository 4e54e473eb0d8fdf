"""Hypothesis strategies and checks shared by the property-based tests
(test_fuzz_softmax.py, test_fuzz_logsumexp.py, test_fuzz_gumbel.py).

Every example draws a kernel set, a dtype (every NumPy numeric dtype, either
byte order), a shape (0-d to 4-d, zero-size included, long sides at every
kernel's tile edges), a memory layout (C, Fortran, permuted strides, slices
with negative steps, unaligned, read-only), values (ordinary, huge, tiny,
denormal, +-inf, NaN, -inf masks), an axis and an `out`.

Seeded: hypothesis runs derandomized, so every run sees the same examples.
Environment: SIMDSOFTMAX_FUZZ_SCALE=0.1 scales the example counts (emulated
CPUs, sanitizers); SIMDSOFTMAX_FUZZ_RANDOM=1 draws fresh examples each run
(for local bug hunting; `--hypothesis-seed=N` replays one).
"""

import os
import warnings

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import simdsoftmax as ssm
from tiles import GUMBEL_KERNELS, ROW_KERNELS, tiles

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


def long_sides():
    """Long sides that cross every vector tail: a fixed list, and tile - 1,
    tile, tile + 1 and 2 * tile - 1 of the row and Gumbel kernels of every
    kernel set this machine runs (AVX-512 float32 16 lanes x 4 accumulators,
    its fast sums 256 elements)."""
    sides = {7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 200}
    for name in ssm.available_isas():
        for dt in ("float32", "float64"):
            t = tiles(name, dt)
            for kernel in ROW_KERNELS + GUMBEL_KERNELS:
                sides |= {t[kernel] - 1, t[kernel], t[kernel] + 1, 2 * t[kernel] - 1} - {0}
    return sorted(sides)


LONG_SIDES = long_sides()


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
