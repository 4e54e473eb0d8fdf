"""float16 and bfloat16: read and written at 2 bytes per element, computed in float32.

Half arrays travel as their uint16 bits (`_Half`, below), so bfloat16 needs
neither torch nor ml_dtypes here. softmax, log_softmax and logsumexp over
rows run in the kernels' half drivers (`_core.half_*`): each row is
converted to float32 a block at a time into a per-thread buffer, the float32
passes run on the blocks, and results are rounded to the half format once
(round to nearest even). Rows the kernels leave to Python (NaN, +-inf, all
-inf) and every other function are computed in float32 from the exactly
widened values, and floating results rounded back once: float32 holds every
float16 and bfloat16 value exactly, so the Gumbel functions draw exactly
what they draw for the same values in float32.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._api import (
    ALGORITHMS,
    _from_rows,
    _layout_of,
    _log_softmax_rows,
    _logsumexp_rows,
    _reduction_layout,
    _softmax_rows,
)

__all__ = ["widen", "narrow", "generic", "softmax", "log_softmax", "logsumexp", "KERNELS"]


class _Half:
    """A float16 or bfloat16 array as its uint16 bits, with the format."""

    __slots__ = ("bits", "fmt", "dtype")

    def __init__(self, bits: np.ndarray, fmt: str, dtype):
        self.bits, self.fmt, self.dtype = bits, fmt, dtype  # dtype: the NumPy dtype to give back, or None


_U16 = np.dtype(np.uint16)
_FORMAT_CODE = {"float16": 0, "bfloat16": 1}

# Are the 2-byte kernels compiled in? (Else everything is widened to float32.)
KERNELS = hasattr(_core, "half_softmax")


def widen(h) -> np.ndarray:
    """The float32 values of a _Half (exact)."""
    if h.fmt == "float16":
        return h.bits.view(np.float16).astype(np.float32)
    return (h.bits.astype(np.uint32) << 16).view(np.float32)


def narrow_bits(y: np.ndarray, fmt: str) -> np.ndarray:
    """float32 (or float64) values rounded once to the format, as uint16 bits (round to nearest even)."""
    if KERNELS and type(y) is np.ndarray and y.dtype == np.float32 and y.flags.c_contiguous:
        # The kernels' conversion: no temporaries, no floating-point warnings to silence.
        bits = np.empty(y.shape, _U16)
        _core.half_convert(y, bits, _FORMAT_CODE[fmt], True)
        return bits
    if fmt == "float16":
        with np.errstate(over="ignore"):
            return np.asarray(y, np.float16).view(np.uint16)
    y = np.asarray(y, np.float32)
    b = y.view(np.uint32)
    # Add 0x7fff plus the lowest kept bit, then truncate: ties go to even; a
    # carry out of the mantissa moves to the next binade (or to inf). NaN
    # keeps its sign and becomes quiet.
    rounded = ((b + (np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(y)
    if nan.any():
        rounded = np.where(nan, ((b >> np.uint32(16)) | np.uint32(0x0040)).astype(np.uint16), rounded)
    return rounded


def narrow(y, like):
    """A floating NumPy result rounded to `like`'s half format, as a _Half."""
    return _Half(np.asarray(narrow_bits(y, like.fmt)), like.fmt, like.dtype)


def _check_half_out(out, shape, x) -> None:
    name = "out"
    if not isinstance(out, _Half):
        dtype = getattr(out, "dtype", type(out).__name__)
        raise ValueError(f"{name} has dtype {dtype}, but the result has dtype {x.fmt}")
    if out.fmt != x.fmt:
        raise ValueError(f"{name} has dtype {out.fmt}, but the result has dtype {x.fmt}")
    if out.bits.shape != shape:
        raise ValueError(f"{name} has shape {out.bits.shape}, but the result has shape {shape}")
    if not out.bits.flags.writeable:
        raise ValueError(f"{name} is read-only")


def generic(fn, args, kwargs, primary, out_param, keep=True):
    """fn on the float32 values; floating results rounded back to the input's format
    (unless `keep` is False: another argument promoted the result past it)."""
    x = primary.get(args, kwargs)
    primary.set(args, kwargs, widen(x))
    out = out_param.get(args, kwargs) if out_param is not None else None
    if out is not None:
        out_param.set(args, kwargs, None)
    result = fn(*args, **kwargs)

    def back(y):
        if keep and isinstance(y, (np.ndarray, np.generic)) and y.dtype == np.float32:
            return narrow(y, x)
        return y

    if out is not None:
        if not isinstance(result, np.ndarray):
            raise TypeError(f"{fn.__name__} returned no array for out")
        _check_half_out(out, result.shape, x)
        out.bits[...] = narrow_bits(result, x.fmt)
        return out
    if type(result) is tuple:
        return tuple(back(r) for r in result)
    return back(result)


def _arg(args, kwargs, position, name, default):
    if position < len(args):
        return args[position]
    return kwargs.get(name, default)


def _rowwise(fn, args, kwargs, primary, out_param, kernel, formula, extra):
    """softmax / log_softmax of a _Half through the 2-byte row kernels."""
    x = primary.get(args, kwargs)
    axis = _arg(args, kwargs, 1, "axis", None)
    out = out_param.get(args, kwargs)
    bits = x.bits
    perm, rows, n = _layout_of(bits, axis)
    if out is not None:
        _check_half_out(out, bits.shape, x)
    if rows == 0 or n == 0:
        return out if out is not None else _Half_like(np.empty(bits.shape, _U16), x)
    moved = bits if perm is None else bits.transpose(perm)
    x2 = moved.reshape(rows, n)
    if not (x2.flags.c_contiguous and x2.flags.aligned):
        x2 = np.ascontiguousarray(x2)
    y2 = None
    if out is not None and perm is None:
        o2 = out.bits.reshape(rows, n) if out.bits.flags.c_contiguous else None
        if o2 is not None and o2.flags.aligned:
            # In place (the same buffer) or apart: the kernels read each
            # element before writing it; a partial overlap goes through a copy.
            if not np.may_share_memory(o2, x2) or (
                o2.__array_interface__["data"][0] == x2.__array_interface__["data"][0]
            ):
                y2 = o2
    direct = y2 is not None
    if y2 is None:
        y2 = np.empty((rows, n), _U16)
    special = kernel(x2, y2, _FORMAT_CODE[x.fmt], *extra)
    if special.size:
        _special_rows(formula, x2, y2, special, x.fmt)
    if direct:
        return out
    y = _from_rows(y2, bits.shape, perm)
    if out is not None:
        out.bits[...] = y
        return out
    return _Half_like(y, x)


def finish_rows(name: str, bits: np.ndarray, special: np.ndarray, code: int) -> None:
    """Rows `special` of the (rows, n) uint16 `bits` of an in-place softmax /
    log_softmax (C++ fast path) that the kernels left unwritten (NaN, +-inf,
    all -inf: they still hold the input), in place, as `_rowwise` computes
    them."""
    formula = _softmax_rows if name == "softmax" else _log_softmax_rows
    _special_rows(formula, bits, bits, special, "float16" if code == 0 else "bfloat16")


def _special_rows(formula, x2, y2, special, fmt: str) -> None:
    """y2's rows `special` from x2's (uint16 bits) in float32, rounded once."""
    rows_f32 = widen(_Half(x2[special], fmt, None))
    with np.errstate(all="ignore"):
        y2[special] = narrow_bits(formula(rows_f32), fmt)


def _Half_like(bits, x):
    return _Half(bits, x.fmt, x.dtype)


def softmax(fn, args, kwargs, primary, out_param, keep=True):
    """softmax of float16 / bfloat16 input (result in the same format)."""
    if not KERNELS:
        return generic(fn, args, kwargs, primary, out_param)
    algorithm = kwargs.get("algorithm", "auto")
    if algorithm not in ALGORITHMS:
        return fn(widen(primary.get(args, kwargs)), algorithm=algorithm)  # raises SciPy's error
    return _rowwise(fn, args, kwargs, primary, out_param, _core.half_softmax, _softmax_rows, (algorithm,))


def log_softmax(fn, args, kwargs, primary, out_param, keep=True):
    """log_softmax of float16 / bfloat16 input (result in the same format)."""
    if not KERNELS:
        return generic(fn, args, kwargs, primary, out_param)
    return _rowwise(fn, args, kwargs, primary, out_param, _core.half_log_softmax, _log_softmax_rows, ())


def logsumexp(fn, args, kwargs, primary, out_param, keep=True):
    """logsumexp of float16 / bfloat16 `a` (result in the same format, or promoted with `b`)."""
    x = primary.get(args, kwargs)
    b = _arg(args, kwargs, 2, "b", None)
    if not KERNELS or b is not None:
        # With weights: the NumPy path on the widened values (b already widened
        # if it was half too; `keep` says whether the result stays half).
        return generic(fn, args, kwargs, primary, out_param, keep)
    axis = _arg(args, kwargs, 1, "axis", None)
    keepdims = bool(_arg(args, kwargs, 3, "keepdims", False))
    return_sign = bool(_arg(args, kwargs, 4, "return_sign", False))
    bits = x.bits if x.bits.ndim else x.bits.reshape(1)
    shape = bits.shape
    perm, rows, n, res_shape = _reduction_layout(shape, axis, keepdims)
    res = np.empty(rows, np.float32)  # the kernels write every row
    sgn = np.ones(rows, np.float32)
    if not (rows and n):
        res.fill(-np.inf)
    if rows and n:
        moved = bits if perm is None else bits.transpose(perm)
        x2 = moved.reshape(rows, n)
        if not (x2.flags.c_contiguous and x2.flags.aligned):
            x2 = np.ascontiguousarray(x2)
        special = _core.half_logsumexp(x2, res, _FORMAT_CODE[x.fmt])
        if special.size:
            res[special], sgn[special] = _logsumexp_rows(widen(_Half_like(x2[special], x)), None, True)
            if not return_sign:
                res[special[sgn[special] < 0]] = np.nan
    else:
        sgn[:] = -1.0  # the empty sum, as the float path (SciPy's sign of -inf)
    res_h = narrow(res.reshape(res_shape), x)
    if not return_sign:
        return res_h
    return res_h, narrow(sgn.reshape(res_shape), x)

