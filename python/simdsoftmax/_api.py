"""softmax, log_softmax and logsumexp with scipy.special's semantics.

Every call is reduced to the one layout the kernels take: the reduced axes are
moved last and the array is viewed as C-contiguous (rows, n) float32 or
float64 (copying only when it is not already so). The kernels compute
ordinary rows and report the rest (NaN, +inf, all -inf, zero weighted sum);
those rows, and the dtypes the kernels do not cover (complex, long double),
go through NumPy transcriptions of SciPy's formulas, so special values,
warnings and dtypes come out as SciPy gives them.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from . import _core

try:
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # NumPy < 2.0
    from numpy.core.numeric import normalize_axis_tuple

__all__ = ["softmax", "log_softmax", "logsumexp", "ALGORITHMS"]

# Defined once, by the extension: "auto" first, then the algorithms it picks from.
ALGORITHMS = tuple(_core.ALGORITHMS)

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)

# result dtype -> dtype the kernels compute it in. float16 is widened (and the
# kernels' float32 is more accurate than SciPy's float16 arithmetic); dtypes
# missing here (complex, long double) are computed entirely by the NumPy
# formulas in their own precision.
_KERNEL_DTYPE = {_F32: _F32, _F64: _F64, _F16: _F32}

_PY_SCALARS = (int, float, complex, bool)


# --------------------------------------------------------------------------
# Layout and argument checks


def _reduced_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    # SciPy (through NumPy's reductions) takes an int or a tuple; a list or a
    # string is a TypeError there too, and the message should say which argument.
    items = axis if isinstance(axis, tuple) else (axis,)
    try:
        items = tuple(operator.index(a) for a in items)
    except TypeError:
        got = type(axis).__name__
        if isinstance(axis, tuple):
            got = "a tuple containing " + ", ".join(sorted({type(a).__name__ for a in axis}))
        raise TypeError(f"axis must be None, an int or a tuple of ints, got {got}") from None
    return normalize_axis_tuple(items, ndim, "axis")


def _layout(shape: tuple[int, ...], axes: tuple[int, ...]):
    """Return (perm, rows, n): `perm` (None if identity) moves `axes` last."""
    ndim, nred = len(shape), len(axes)
    if axes == tuple(range(ndim - nred, ndim)):
        return None, math.prod(shape[: ndim - nred]), math.prod(shape[ndim - nred :])
    kept = tuple(i for i in range(ndim) if i not in axes)
    return kept + axes, math.prod(shape[i] for i in kept), math.prod(shape[i] for i in axes)



def _reduction_layout(shape, axis, keepdims):
    """(perm, rows, n, result shape) of a reduction of `shape` over `axis`.

    perm moves the reduced axes last (None: already a (rows, n) view in C
    order, or axis None), rows x n is the moved array, and the result shape
    follows `keepdims` as in NumPy.
    """
    if axis is None:
        size = math.prod(shape)
        return None, 1, size, ((1,) * len(shape) if keepdims else ())
    axes = _reduced_axes(axis, len(shape))
    perm, rows, n = _layout(shape, axes)
    if keepdims:
        res_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
    else:
        res_shape = tuple(d for i, d in enumerate(shape) if i not in axes)
    return perm, rows, n, res_shape

def _layout_of(x: np.ndarray, axis):
    """`_layout` for an `axis` argument, without the general machinery in the common cases."""
    if axis is None:
        return None, 1, x.size
    if type(axis) is int and x.ndim and (axis == -1 or axis == x.ndim - 1):
        n = x.shape[-1]
        return None, (x.size // n if n else math.prod(x.shape[:-1])), n
    return _layout(x.shape, _reduced_axes(axis, x.ndim))


def _as_rows(x: np.ndarray, perm, rows: int, n: int, dtype):
    """(`x` as an aligned C-contiguous (rows, n) array with the reduced axes last, copied?)"""
    if perm is not None:
        x = x.transpose(perm)
    x = x.reshape(rows, n)
    copied = x.dtype != dtype or not (x.flags.c_contiguous and x.flags.aligned)
    if copied:
        x = np.array(x, dtype=dtype, order="C")
    # _core recognises dtypes by identity: an equal but distinct instance
    # (e.g. from dtype.newbyteorder("="), kept by copies) is rejected unless re-viewed.
    return (x if x.dtype is dtype else x.view(dtype)), copied


def _from_rows(y2: np.ndarray, shape, perm) -> np.ndarray:
    """Inverse of `_as_rows` for a result with the input's shape."""
    if perm is None:
        return y2.reshape(shape)
    y = y2.reshape(tuple(shape[i] for i in perm))
    return y.transpose(np.argsort(perm))


def _elementwise_dtypes(dtype: np.dtype):
    """(result dtype, kernel dtype or None) of softmax/log_softmax for an input dtype."""
    kind = dtype.kind
    if kind == "f":
        native = np.dtype(dtype.type)
        return native, _KERNEL_DTYPE.get(native)
    if kind in "biu":
        # SciPy's x - max(x) wraps around for unsigned ints, fails for bools,
        # and np.exp turns small ints into float16/float32; integers are
        # exact in float64 up to 2**53 (the spec: ints and bools -> float64).
        return _F64, _F64
    if kind == "c":
        return np.dtype(dtype.type), None
    raise TypeError(f"x must have a real or complex numeric dtype, got {dtype}")


# Input dtype -> (result dtype, kernel dtype) for the common inputs.
_ROWWISE_DTYPES = {
    _F32: (_F32, _F32),
    _F64: (_F64, _F64),
    _F16: (_F16, _F32),
    **{np.dtype(t): (_F64, _F64) for t in (np.bool_, np.int32, np.int64)},
}


def _asarray(value, name: str) -> np.ndarray:
    """np.asarray, with the argument's name in the error (ragged nested lists,
    objects whose __array__ fails)."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name} cannot be converted to an array: {error}") from None


def _check_out(out, shape, dtype) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but the result has shape {shape}")
    if out.dtype.newbyteorder("=") != dtype:
        raise ValueError(f"out has dtype {out.dtype}, but the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


def _same_buffer(a: np.ndarray, b: np.ndarray) -> bool:
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0]


# --------------------------------------------------------------------------
# SciPy's formulas over the last axis of a 2-D (rows, n >= 1) array, for the
# rows the kernels leave to us and for complex / long double inputs.


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _log_softmax_rows(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0
    shifted = x - top
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _max_real(a: np.ndarray):
    """Per row: (reference term, mask of the terms equal to it).

    Real rows: the max and every entry equal to it. Complex rows: one entry of
    largest real part (the last one, as SciPy picks).
    """
    if a.dtype.kind != "c":
        top = a.max(axis=1, keepdims=True)
        return top, a == top
    real = a.real
    candidates = real == real.max(axis=1, keepdims=True)
    index = np.where(candidates, np.arange(a.shape[1]), -1)
    chosen = index == index.max(axis=1, keepdims=True)
    return np.where(chosen, a, 0).sum(axis=1, keepdims=True, dtype=a.dtype), chosen


def _sign(x: np.ndarray) -> np.ndarray:
    """The array-API sign SciPy uses: x/|x| for complex (NaN at infinities), 0 at 0."""
    if x.dtype.kind != "c":
        return np.sign(x)
    out = np.asarray(x / np.abs(x))
    out[x == 0] = 0
    return out


def _wrap_phase(angle: np.ndarray) -> np.ndarray:
    """Map angles into (-pi, pi], leaving those already inside untouched (exact)."""
    wrapped = -(np.mod(np.pi - angle, 2 * np.pi) - np.pi)
    return np.where(np.abs(angle) < np.pi, angle, wrapped)


def _logsumexp_rows(a: np.ndarray, b, return_sign: bool):
    """SciPy's logsumexp over axis 1 of `a` (rows, n >= 1): returns (lse, sign) 1-D.

    A sum relative to the largest term, which is kept out of the sum for
    precision; where that result is not finite, log of the plain sum of
    b*exp(a) instead, so that inf and NaN follow np.exp and np.log.
    """
    complex_ = a.dtype.kind == "c"
    with np.errstate(all="ignore"):
        plain = (np.exp(a) if b is None else b * np.exp(a)).sum(axis=1)
        if return_sign:
            plain_sign, plain = _sign(plain), np.abs(plain)
        plain = np.log(plain)

        if b is not None:
            # A zero weight drops its term even if a is inf or NaN there.
            a = np.where(b == 0, -np.inf, a)
        top, is_top = _max_real(a)
        # The largest terms are counted exactly in m, the others summed relative to them.
        # (b * mask, not where(mask, b, 0): an inf weight off the max makes m NaN in SciPy.)
        mask = is_top.astype(a.dtype)
        m = (mask if b is None else b * mask).sum(axis=1, keepdims=True)
        terms = np.exp(np.where(is_top, -np.inf, a) - top)
        s = (terms if b is None else b * terms).sum(axis=1, keepdims=True)
        s = np.where(s == 0, s, s / m)
        sign = _sign(s + 1) * _sign(m)
        if complex_:
            sign = sign * np.exp(1j * top.imag)
        else:
            # log1p(s) + log(m) of a negative total -s-1 = log|total| with the sign apart
            s = np.where(s < -1, -s - 2, s)
            m = np.abs(m)
        lse = (np.log1p(s) + np.log(m) + top)[:, 0]
        sign = sign[:, 0]
        if return_sign:
            lse = lse.real
        elif not complex_:
            lse[sign < 0] = np.nan
        finite = np.isfinite(lse)
        lse = np.where(finite, lse, plain)
        if return_sign:
            sign = np.where(finite, sign, plain_sign)
        elif complex_:
            lse = lse.real + 1j * _wrap_phase(lse.imag)
    return lse, sign


# --------------------------------------------------------------------------
# Public functions


# Reductions over a non-last axis run in place with the strided kernels
# (vectors across the contiguous inner axis) when the inner axis has at least
# this many elements; below it most vector lanes would idle and the
# transposed copy of the general path is faster.
_STRIDED_MIN_INNER = 16


def _in_place_view(x: np.ndarray, axis, work):
    """How the kernels can read `x` without a copy, or None.

    Returns ``(kind, view, transposed, run)``: `view` is `x` (C order) or
    ``x.T`` (F order: the reversed axes are C order) and `run` the reduced
    axes of `view` as a (first, last) consecutive range; kind is "rows" when
    the run ends at the last axis (rows of the contiguous kernels) and
    "strided" when an inner axis of at least _STRIDED_MIN_INNER elements
    follows it. Only for aligned arrays already in the kernels' dtype.
    """
    if x.dtype is not work or not x.flags.aligned or x.ndim < 2:
        return None
    axes = _reduced_axes(axis, x.ndim)
    if x.flags.c_contiguous:
        view, transposed = x, False
    elif x.flags.f_contiguous:
        view, transposed = x.T, True
        axes = tuple(sorted(x.ndim - 1 - a for a in axes))
    else:
        return None
    first, last = axes[0], axes[-1]
    if axes != tuple(range(first, last + 1)):
        return None
    if last == x.ndim - 1:
        return "rows", view, transposed, (first, last)
    if math.prod(view.shape[last + 1 :]) < _STRIDED_MIN_INNER:
        return None
    return "strided", view, transposed, (first, last)


def _rowwise_in_place(x, axis, out, work, kernels, formula, kernel_args):
    """softmax / log_softmax without copies of x when _in_place_view allows, else None."""
    layout = _in_place_view(x, axis, work)
    if layout is None:
        return None
    kind, view, transposed, (first, last) = layout
    # The values depend on x's layout only: another `out` layout gets a copy.
    direct = out is not None and out.dtype is work and out.strides == x.strides
    if out is not None and not direct and np.may_share_memory(out, x):
        return None
    y = out if direct else np.empty_like(x)
    yv = y.T if transposed else y
    outer = math.prod(view.shape[:first])
    n = math.prod(view.shape[first : last + 1])
    if kind == "rows":
        x2, y2 = view.reshape(outer, n), yv.reshape(outer, n)
        special = kernels[0](x2, y2, *kernel_args)
        if special.size:
            y2[special] = formula(x2[special])
        return _finish_into(out, y)
    inner = math.prod(view.shape[last + 1 :])
    x3, y3 = view.reshape(outer, n, inner), yv.reshape(outer, n, inner)
    special = kernels[1](x3, y3, *kernel_args)
    if special.size:
        o, j = np.divmod(special, inner)
        y3[o, :, j] = formula(x3[o, :, j])
    return _finish_into(out, y)


def _finish_into(out, y):
    if out is None or out is y:
        return y
    out[...] = y
    return out


def _rowwise(x, axis, out, kernel, formula, *kernel_args, strided=None):
    """softmax / log_softmax: same shape in and out, one result row per input row.

    `strided` is the kernel for a reduction over a non-last axis of a
    C- or F-contiguous array (no transposed copy), or None.
    """
    x = _asarray(x, "x")
    dtypes = _ROWWISE_DTYPES.get(x.dtype)
    dtype, work = dtypes if dtypes is not None else _elementwise_dtypes(x.dtype)
    perm, rows, n = _layout_of(x, axis)
    if out is not None:
        _check_out(out, x.shape, dtype)
    if rows == 0 or n == 0:
        return np.empty(x.shape, dtype) if out is None else out
    if perm is not None and strided is not None and work is dtype:
        y = _rowwise_in_place(x, axis, out, work, (kernel, strided), formula, kernel_args)
        if y is not None:
            return y

    x2, copied = _as_rows(x, perm, rows, n, x.dtype if work is None else work)
    direct = False  # is y2 a view of `out`?
    if work is None:
        y2 = formula(x2)
    else:
        y2 = x2 if copied else None  # a private copy: compute in place
        if out is not None and out.dtype == work and out.flags.aligned:
            o2 = out if perm is None else out.transpose(perm)
            if o2.flags.c_contiguous:
                o2 = o2.reshape(rows, n)
                if o2.dtype is not work:
                    o2 = o2.view(work)  # see _as_rows
                # out=x computes in place; any other overlap with x needs a temporary.
                if not np.may_share_memory(o2, x2) or _same_buffer(o2, x2):
                    y2, direct = o2, True
        if y2 is None:
            y2 = np.empty((rows, n), work)
        special = kernel(x2, y2, *kernel_args)
        if special.size:
            # Those rows of x2 are intact even when y2 is x2: the kernel skipped them.
            y2[special] = formula(x2[special])
    if direct:
        return out
    y = _from_rows(y2, x.shape, perm)
    if out is not None:
        out[...] = y
        return out
    if work is not dtype and work is not None:
        y = y.astype(dtype)
    return y[()] if y.ndim == 0 else y


def softmax(x, axis=None, *, out=None, algorithm="auto"):
    r"""Compute the softmax function, a drop-in for `scipy.special.softmax`.

    ``softmax(x) = exp(x) / sum(exp(x))`` over `axis`, computed without
    overflow for any finite input by the SIMD kernels of the active kernel set
    (see `isa`).

    Parameters
    ----------
    x : array_like
        Input array. Any layout, byte order or alignment; never modified
        unless it is also `out`.
    axis : None or int or tuple of ints, optional
        Axis or axes to normalize over. Default None: the whole array.
    out : ndarray, optional
        Where to write the result: a writeable array of exactly the result's
        shape and dtype, any layout; may be `x` itself (in place). Checked
        before anything is written.
    algorithm : str, optional
        ``"auto"`` (default; the fastest for the row size and CPU),
        ``"two-pass"``, ``"three-pass-recompute"``, ``"three-pass-reload"`` or
        ``"online"``. All give results within the same accuracy bound; the
        choice only affects speed. Ignored for complex and long double input.

    Returns
    -------
    s : ndarray or scalar
        Same shape as `x`; sums to 1 along `axis`. A NumPy scalar if `x` is
        0-d (unless `out` is given, which is returned).

    Raises
    ------
    ValueError
        If `algorithm` is unknown, an axis is repeated, or `out` has the wrong
        shape or dtype or is read-only.
    numpy.exceptions.AxisError
        If an axis is out of range.
    TypeError
        If `out` is not an ndarray or `x` is not numeric.

    See Also
    --------
    log_softmax, logsumexp, scipy.special.softmax

    Notes
    -----
    Dtypes follow SciPy: float32 gives float32 and float64 gives float64;
    float16 is computed in float32 and returned as float16; complex and long
    double are computed by NumPy in their own precision. Integers and bools
    give float64 (SciPy wraps around on unsigned integers, rejects bools and
    returns float16/float32 for 8/16-bit integers).

    Special values are SciPy's: ``-inf`` entries get 0 and do not affect the
    others; a slice containing NaN or ``+inf``, or with every entry ``-inf``,
    is all NaN. Unlike SciPy, an empty reduced axis gives an empty result
    instead of an error.

    Examples
    --------
    >>> import numpy as np
    >>> import simdsoftmax as ssm
    >>> x = np.array([[1.0, 0.5, 0.2, 3.0],
    ...               [1.0, -1.0, 7.0, 3.0]])
    >>> ssm.softmax(x, axis=1).round(3)
    array([[0.106, 0.064, 0.048, 0.782],
           [0.002, 0.   , 0.979, 0.018]])
    >>> ssm.softmax([0.0, -np.inf, 0.0])
    array([0.5, 0. , 0.5])
    >>> y = np.float32([1, 2, 3])
    >>> _ = ssm.softmax(y, out=y)  # in place
    >>> y.round(4)
    array([0.09  , 0.2447, 0.6652], dtype=float32)
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}; got {algorithm!r}"
        )
    # A C-contiguous float32/float64 ndarray over its last axis or all of it,
    # with or without a plain `out`: checked and run in one _core call.
    y = _core.softmax_call(x, axis, out, algorithm)
    if y is not None:
        if type(y) is tuple:
            y, special, n = y
            y.reshape(-1, n)[special] = _softmax_rows(x.reshape(-1, n)[special])
        return y
    # The strided layout implements the two-pass algorithm only.
    strided = _core.softmax_strided if algorithm in ("auto", "two-pass") else None
    return _rowwise(x, axis, out, _core.softmax, _softmax_rows, algorithm, strided=strided)


def log_softmax(x, axis=None, *, out=None):
    r"""Compute the logarithm of softmax, a drop-in for `scipy.special.log_softmax`.

    ``log_softmax(x) = x - logsumexp(x)`` over `axis`, accurate also where
    softmax itself underflows to 0.

    Parameters
    ----------
    x : array_like
        Input array. Any layout, byte order or alignment; never modified
        unless it is also `out`.
    axis : None or int or tuple of ints, optional
        Axis or axes to normalize over. Default None: the whole array.
    out : ndarray, optional
        Where to write the result: a writeable array of exactly the result's
        shape and dtype, any layout; may be `x` itself (in place). Checked
        before anything is written.

    Returns
    -------
    s : ndarray or scalar
        Same shape as `x`; ``exp(s)`` sums to 1 along `axis`. A NumPy scalar
        if `x` is 0-d (unless `out` is given, which is returned).

    Raises
    ------
    ValueError
        If an axis is repeated, or `out` has the wrong shape or dtype or is
        read-only.
    numpy.exceptions.AxisError
        If an axis is out of range.
    TypeError
        If `out` is not an ndarray or `x` is not numeric.

    See Also
    --------
    softmax, logsumexp, scipy.special.log_softmax

    Notes
    -----
    Dtypes as in `softmax`. Special values are SciPy's: ``-inf`` entries give
    ``-inf``; a slice containing NaN, or with every entry ``-inf``, is all NaN;
    in a slice containing ``+inf`` (and no NaN) the ``+inf`` entries give NaN
    and the others ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> import simdsoftmax as ssm
    >>> float(ssm.log_softmax([1000.0, 1.0])[1])  # np.log(softmax) would give -inf
    -999.0
    >>> ssm.log_softmax(np.float32([[0, 0], [0, np.log(3)]]), axis=1).round(4)
    array([[-0.6931, -0.6931],
           [-1.3863, -0.2877]], dtype=float32)
    """
    # A C-contiguous float32/float64 ndarray over its last axis or all of it,
    # with or without a plain `out`: checked and run in one _core call.
    y = _core.log_softmax_call(x, axis, out)
    if y is not None:
        if type(y) is tuple:
            y, special, n = y
            y.reshape(-1, n)[special] = _log_softmax_rows(x.reshape(-1, n)[special])
        return y
    # Over a non-last axis the strided kernel keeps a dominant entry's
    # log-probability -log1p(S - 1) to full relative accuracy, as the row
    # kernel does: one online max-relative pass per column, then x - max - lse.
    return _rowwise(x, axis, out, _core.log_softmax, _log_softmax_rows, strided=_core.log_softmax_strided)


def _logsumexp_dtype(a, a_arr, b, b_arr):
    """SciPy's promotion: a and b together, Python scalars weakly, at least float."""
    for name, arr in (("a", a_arr), ("b", b_arr)):
        if arr is not None and arr.dtype.kind not in "biufc":
            raise TypeError(f"{name} must have a real or complex numeric dtype, got {arr.dtype}")
    args = [a if type(a) in _PY_SCALARS else a_arr.dtype]
    if b is not None:
        args.append(b if type(b) in _PY_SCALARS else b_arr.dtype)
    dtype = np.result_type(*args, 1.0)
    if dtype.kind not in "fc":
        raise TypeError(f"logsumexp needs numeric a and b, got dtype {dtype}")
    return dtype


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    r"""Compute ``log(sum(b * exp(a)))`` stably, a drop-in for `scipy.special.logsumexp`.

    Parameters
    ----------
    a : array_like
        Input array (any layout, byte order or alignment; never modified).
    axis : None or int or tuple of ints, optional
        Axis or axes to sum over. Default None: all of them.
    b : array_like, optional
        Weights for ``exp(a)``, broadcast against `a` (the result takes the
        broadcast shape). May be negative; a zero weight removes its term
        even where `a` is ``inf`` or NaN.
    keepdims : bool, optional
        If True, the reduced axes are kept with size one.
    return_sign : bool, optional
        If True, return ``(log|sum|, sign(sum))``; if False (default), a
        negative sum gives NaN (without a warning, as SciPy).

    Returns
    -------
    res : ndarray or scalar
        The log-sum-exp; a NumPy scalar when the result is 0-d.
    sgn : ndarray or scalar
        Only if `return_sign` is True: +1, -1 or 0 (for real input; a complex
        phase for complex input), the sign of the sum.

    Raises
    ------
    ValueError
        If `b` cannot be broadcast to `a` or an axis is repeated.
    numpy.exceptions.AxisError
        If an axis is out of range.

    See Also
    --------
    softmax, log_softmax, scipy.special.logsumexp, numpy.logaddexp

    Notes
    -----
    Dtypes follow SciPy: `a` and `b` are promoted together (Python scalars
    weakly) to at least a floating type; float16 is computed in float32 and
    returned as float16; complex and long double are computed by NumPy in
    their own precision. The float32 result is correctly rounded in practice
    (the sum is formed in float64).

    As in SciPy, a 0-d `a` is treated as 1-d (so ``keepdims=True`` gives
    shape ``(1,)``); an empty sum gives ``-inf`` (and sign -1, as SciPy);
    NaN anywhere (with nonzero weight) gives NaN; ``+inf`` gives ``+inf``.

    Examples
    --------
    >>> import numpy as np
    >>> import simdsoftmax as ssm
    >>> float(ssm.logsumexp(np.arange(10)))
    9.45862974442671
    >>> float(ssm.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    >>> ssm.logsumexp([[0, 0], [0, -np.inf]], axis=1)
    array([0.69314718, 0.        ])
    >>> res, sgn = ssm.logsumexp([1, 2], b=[1, -1], return_sign=True)
    >>> round(float(res), 12), float(sgn)
    (1.541324854613, -1.0)
    """
    if b is None and not keepdims and not return_sign:
        # A C-contiguous float32/float64 ndarray over its last axis or all of
        # it, no special row: checked and run in one _core call.
        res = _core.logsumexp_call(a, axis)
        if res is not None:
            return res[()] if res.ndim == 0 else res
    a_arr = _asarray(a, "a")
    b_arr = None if b is None else _asarray(b, "b")
    dtype = _KERNEL_DTYPE.get(a_arr.dtype) and a_arr.dtype if b is None else None
    if dtype is None:
        dtype = _logsumexp_dtype(a, a_arr, b, b_arr)
    work = _KERNEL_DTYPE.get(dtype)

    if a_arr.ndim == 0:
        a_arr = a_arr.reshape(1)
    if b_arr is not None:
        if b_arr.ndim == 0:
            b_arr = b_arr.reshape(1)
        if b_arr.shape != a_arr.shape:
            try:
                shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)
            except ValueError:
                raise ValueError(
                    f"b with shape {b_arr.shape} cannot be broadcast to a with shape {a_arr.shape}"
                ) from None
            a_arr, b_arr = np.broadcast_to(a_arr, shape), np.broadcast_to(b_arr, shape)

    shape = a_arr.shape
    perm, rows, n, res_shape = _reduction_layout(shape, axis, keepdims)

    layout = None
    if perm is not None and b_arr is None and work is dtype and rows and n:
        layout = _in_place_view(a_arr, axis, work)
    if layout is not None:
        # Reduced axes in place: rows of the (transposed) view, or strided.
        kind, view, transposed, (first, last) = layout
        outer = math.prod(view.shape[:first])
        n = math.prod(view.shape[first : last + 1])
        inner = math.prod(view.shape[last + 1 :])
        # Ordinary rows have sign +1; special ones (all -inf: 0, NaN: NaN)
        # take value and sign from SciPy's formula.
        if kind == "rows":
            a2 = view.reshape(outer, n)
            res = np.empty(outer, work)
            sgn = np.ones(outer, work) if return_sign else None
            special = _core.logsumexp(a2, res)
            if special.size:
                res[special], sgn_special = _logsumexp_rows(a2[special], None, return_sign)
                if return_sign:
                    sgn[special] = sgn_special
        else:
            a3 = view.reshape(outer, n, inner)
            res = np.empty((outer, inner), work)
            sgn = np.ones((outer, inner), work) if return_sign else None
            special = _core.logsumexp_strided(a3, res)
            if special.size:
                o, j = np.divmod(special, inner)
                res[o, j], sgn_special = _logsumexp_rows(a3[o, :, j], None, return_sign)
                if return_sign:
                    sgn[o, j] = sgn_special
        kept = view.shape[:first] + view.shape[last + 1 :]
        res = res.reshape(kept)
        if return_sign:
            sgn = sgn.reshape(kept)
        if transposed:
            res = res.T
            if return_sign:
                sgn = sgn.T
    elif rows == 0 or n == 0:
        res = np.full(res_shape, -np.inf, dtype)
        with np.errstate(invalid="ignore"):
            sgn = _sign(res) if return_sign else None
    elif work is None:
        a2 = _as_rows(a_arr, perm, rows, n, dtype)[0]
        b2 = None if b_arr is None else _as_rows(b_arr, perm, rows, n, dtype)[0]
        res, sgn = _logsumexp_rows(a2, b2, return_sign)
    else:
        a2 = _as_rows(a_arr, perm, rows, n, work)[0]
        res = np.empty(rows, work)
        if b_arr is None:
            special = _core.logsumexp(a2, res)
            sgn = np.ones(rows, work) if return_sign else None
        else:
            b2 = _as_rows(b_arr, perm, rows, n, work)[0]
            sgn = np.empty(rows, work)
            special = _core.logsumexp_weighted(a2, b2, res, sgn)
            if not return_sign:
                # A negative sum is NaN. (SciPy gives -inf instead when every
                # term underflows in its fallback b*exp(a) sum, making it -0.)
                sgn[special] = 1  # unwritten; filled below
                res[sgn < 0] = np.nan
        if special.size:
            b_special = None if b_arr is None else b2[special]
            res[special], sgn_special = _logsumexp_rows(a2[special], b_special, return_sign)
            if return_sign:
                sgn[special] = sgn_special

    narrow = work is not None and work is not dtype  # float16 computed in float32
    res = res.reshape(res_shape)
    if narrow:
        res = res.astype(dtype)
    if res.ndim == 0:
        res = res[()]
    if not return_sign:
        return res
    sgn = sgn.reshape(res_shape)
    if narrow:
        sgn = sgn.astype(dtype)
    return res, (sgn[()] if sgn.ndim == 0 else sgn)
