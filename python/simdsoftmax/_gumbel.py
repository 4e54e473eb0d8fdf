"""Sampling from unnormalized log-probabilities with Gumbel noise.

gumbel_argmax, gumbel_topk and gumbel_softmax read the logits once (twice
for gumbel_softmax) and never store the noise: the C++ kernels regenerate it
from a counter-based generator (Philox4x32-10) whose counter for element i of
row r is a fixed function of (r, i), keyed by 128 bits drawn from `rng`. For
the same `rng` state the result is therefore bit-identical whatever kernel
set, thread count or chunking computes it.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from . import _core
from ._api import _asarray, _check_out, _layout_of, _same_buffer

__all__ = ["gumbel_argmax", "gumbel_topk", "gumbel_softmax"]

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


# NumPy's bit generators whose raw outputs are full 64-bit words (MT19937's
# are 32-bit; a third-party one is not assumed to be either).
_RAW64 = tuple(
    getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "Philox", "SFC64") if hasattr(np.random, name)
)


def _key(rng):
    """(k0, k1, row offset): 128 bits from `rng` (anything
    numpy.random.default_rng takes; a Generator passed in is advanced, so
    successive calls differ). Two raw 64-bit words where the bit generator
    makes them (0.4 us; Generator.integers costs 3 us, most of a small
    call's time), else four 32-bit integers."""
    try:
        generator = np.random.default_rng(rng)
    except (TypeError, ValueError) as error:
        raise type(error)(
            f"rng must be None, an int >= 0, a SeedSequence, a BitGenerator or a Generator ({error})"
        ) from None
    bits = generator.bit_generator
    if type(bits) in _RAW64:
        # two scalar draws: the words random_raw(2) gives, without its array
        lo = bits.random_raw()
        return lo & 0xFFFFFFFF, lo >> 32, bits.random_raw()
    words = generator.integers(0, 2**32, size=4, dtype=np.uint64)
    return int(words[0]), int(words[1]), int(words[2]) | (int(words[3]) << 32)


_GENERATOR = np.random.Generator
# The one-step calls (_core.gumbel_topk_call, sample_call) take the rng itself
# and draw its key in C++: the same two raw words for a Generator over one of
# _RAW64 (without _key's Python calls, most of a small call's overhead), and
# _key(rng) for anything else.
_core.set_rng_key_source(_GENERATOR, _RAW64, _key)


def _per_row(rng) -> bool:
    """Is `rng` a sequence of per-row rngs (a list, tuple or array with at
    least one axis) rather than one rng? (A Generator, the common rng, is
    answered first.)"""
    if type(rng) is _GENERATOR:
        return False
    return isinstance(rng, (list, tuple)) or (isinstance(rng, np.ndarray) and rng.ndim >= 1)


def _check_temperature(value, name: str, allow_zero: bool) -> float:
    if type(value) is float and 0.0 < value < math.inf:  # the common value, checked at once
        return value
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    if math.isnan(t) or math.isinf(t) or t < 0 or (t == 0 and not allow_zero):
        need = "finite and >= 0" if allow_zero else "finite and > 0"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return t


def _work_dtype(dtype: np.dtype):
    """(result dtype for gumbel_softmax, kernel dtype) of a logits dtype."""
    if dtype.kind == "f":
        native = np.dtype(dtype.type)
        if native in (_F16, _F32):
            return native, _F32
        if native == _F64:
            return native, _F64
        raise TypeError(f"logits dtype {dtype} is not supported (use float16, float32 or float64)")
    if dtype.kind in "biu":
        return _F64, _F64
    raise TypeError(f"logits must have a real numeric dtype, got {dtype}")


def _rows(logits, axis):
    """(logits as an array, C-contiguous (rows, n) kernel array, batch shape, axis, result dtype)."""
    x = _asarray(logits, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an int, got {type(axis).__name__}") from None
    if not -x.ndim <= axis < x.ndim:
        raise np.exceptions.AxisError(axis, x.ndim, "axis") if hasattr(np, "exceptions") else ValueError(
            f"axis {axis} is out of bounds for logits of dimension {x.ndim}"
        )
    axis %= x.ndim
    result, work = _work_dtype(x.dtype)
    perm, rows, n = _layout_of(x, axis)
    moved = x if perm is None else x.transpose(perm)
    x2 = moved.reshape(rows, n)
    # Contiguous is not enough: an unaligned buffer (a view one byte into a
    # bytes object, say) would hand the kernels misaligned float pointers.
    if x2.dtype != work or not (x2.flags.c_contiguous and x2.flags.aligned):
        x2 = np.array(x2, dtype=work, order="C")
    if x2.dtype is not work:
        x2 = x2.view(work)
    batch = moved.shape[:-1]
    return x, x2, batch, axis, result


def _rows_of_out(out, x2, axis):
    """`out` as the kernel's (rows, n) output array when it can be written
    directly (no temporary, no copy), else None: same dtype as the kernel
    rows, C-contiguous along `axis`, aligned, and not overlapping x2 unless it
    is x2 itself (in place: each element is read before it is written)."""
    if out is None or out.dtype != x2.dtype:
        return None
    o = np.moveaxis(out, axis, -1)
    if not (o.flags.c_contiguous and o.flags.aligned and o.flags.writeable):
        return None
    o2 = o.reshape(x2.shape)
    if np.may_share_memory(o2, x2) and not (_same_buffer(o2, x2) and o2.strides == x2.strides):
        return None
    return o2


def _one_call(x, axis) -> bool:
    """Can the one-step calls (gumbel_softmax_call; _core.gumbel_topk_call
    checks the same in C++) take `x` as it is: an ndarray, float32 or float64 in native order,
    C-contiguous and aligned, reduced over its last axis, with non-empty rows?
    (Everything else goes through _rows.)"""
    return (
        type(x) is np.ndarray
        and (x.dtype is _F32 or x.dtype is _F64)
        and type(axis) is int
        and x.ndim > 0
        and (axis == -1 or axis == x.ndim - 1)
        and x.shape[-1] > 0
        and _contiguous_aligned(x.flags)
    )


def _contiguous_aligned(flags) -> bool:
    return flags.c_contiguous and flags.aligned


def _out_one_call(out, x) -> bool:
    """Can gumbel_softmax_call write `out` for `x` (see _one_call): None, or an
    ndarray of x's shape and dtype, C-contiguous, aligned, writeable, and x
    itself or apart from it?"""
    return out is None or (
        type(out) is np.ndarray
        and out.dtype is x.dtype
        and out.shape == x.shape
        and out.flags.c_contiguous
        and out.flags.aligned
        and out.flags.writeable
        and (out is x or not np.may_share_memory(out, x))
    )


def _raise_bad_row(batch, row: int, reason: str, name: str = "logits"):
    where = np.unravel_index(row, batch) if batch else ()
    label = f"row {tuple(int(i) for i in where)}" if batch else "the row"
    raise ValueError(f"{name}: {label} {reason}")


def _greedy(x2: np.ndarray, k: int, batch):
    """temperature=0: the k largest logits, lowest index first on ties."""
    bad = np.isnan(x2).any(axis=1)
    reasons = np.where(bad, "contains NaN", "")
    posinf = np.isposinf(x2).any(axis=1) & ~bad
    reasons = np.where(posinf, "contains +inf", reasons)
    short = (np.isfinite(x2).sum(axis=1) < k) & ~bad & ~posinf
    reasons = np.where(short, "has no finite logit" if k == 1 else "has fewer finite logits than k", reasons)
    first = np.flatnonzero(reasons != "")
    if first.size:
        _raise_bad_row(batch, int(first[0]), str(reasons[first[0]]))
    if k == 1:
        return np.argmax(x2, axis=1)[:, None].astype(np.intp)
    return np.argsort(-x2, axis=1, kind="stable")[:, :k].astype(np.intp)


def _topk_rows(x2, k, temperature, rng, batch, prune=True):
    rows = x2.shape[0]
    if temperature == 0:
        _key(rng)  # advance a Generator all the same: successive calls stay independent
        return _greedy(x2, k, batch)
    k0, k1, offset = _key(rng)
    idx = np.empty((rows, k), np.intp)
    score = np.empty((rows, k), np.float64)
    bad, reason = _core.gumbel_topk(x2, k, 1.0 / temperature, k0, k1, offset, idx, score, prune)
    if bad >= 0:
        _raise_bad_row(batch, bad, reason)
    return idx


NOT_TAKEN = object()


def argmax_one_step(logits, axis, temperature, rng):
    """gumbel_argmax's common call (see _one_call; one rng, or a list or tuple
    of one per row) checked and run in one C++ step; NOT_TAKEN when it is not,
    with nothing drawn. The public `gumbel_argmax` tries it before the
    array-type wrapper (whose checks cost ~0.5 us of a 20 us call on an LLM
    row)."""
    return _topk_one_step(logits, axis, 1, True, temperature, rng)


def topk_one_step(logits, k, axis, temperature, rng):
    """gumbel_topk's common call, as argmax_one_step."""
    return _topk_one_step(logits, axis, k, False, temperature, rng)


def _topk_one_step(logits, axis, k, argmax, temperature, rng):
    if type(rng) is _GENERATOR or type(rng) in (list, tuple) or not _per_row(rng):
        found = _core.gumbel_topk_call(logits, axis, k, argmax, temperature, rng)
        if found is not None:
            if type(found) is tuple:
                _raise_bad_row(logits.shape[:-1], *found)
            return found
    return NOT_TAKEN


def gumbel_argmax(logits, axis=-1, *, temperature=1.0, rng=None):
    r"""Draw one category per row from ``softmax(logits / temperature)``.

    The Gumbel-max trick: ``argmax(logits / temperature + g)`` with ``g``
    standard Gumbel noise, in one streaming pass over the logits and without
    computing a softmax or storing any noise. Most elements are ruled out by
    a bound on their noise before any logarithm is evaluated.

    Parameters
    ----------
    logits : array_like
        Unnormalized log-probabilities (float16/32/64, or integers as
        float64). ``-inf`` entries are never drawn.
    axis : int, optional
        The axis of categories. Default -1.
    temperature : float, optional
        Sampling temperature, finite and >= 0. 0 is greedy argmax (the lowest
        index among ties).
    rng : None, int, SeedSequence, BitGenerator, Generator, or a sequence of them, optional
        Anything `numpy.random.default_rng` takes (SPEC 7). A Generator is
        advanced, so two calls give independent draws; an int gives the same
        draw every time, on every kernel set and thread count. A list, tuple
        or array with one entry per row gives each row its own rng, as if it
        were the only row of its own call (see `sample`).

    Returns
    -------
    numpy.intp or ndarray of intp
        The drawn index along `axis`; shape of `logits` without `axis`.

    Raises
    ------
    ValueError
        Bad temperature; a row with a NaN or +inf logit, or with no finite
        logit (the message names the first such row).

    See Also
    --------
    gumbel_topk : k draws without replacement.
    gumbel_softmax : a relaxed (differentiable) sample.
    simdsoftmax.dask.gumbel_argmax : the same draws over a Dask array.

    Examples
    --------
    >>> import numpy as np, simdsoftmax as ssm
    >>> logits = np.log(np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]]))
    >>> ssm.gumbel_argmax(logits, rng=0).shape
    (2,)
    >>> int(ssm.gumbel_argmax(logits, rng=0)[1])
    2
    """
    found = argmax_one_step(logits, axis, temperature, rng)
    if found is not NOT_TAKEN:
        return found
    t = _check_temperature(temperature, "temperature", allow_zero=True)
    if _per_row(rng):
        from ._sample import sample  # one rng per row: sample() without filters is this draw

        return sample(logits, axis, temperature=t, rng=rng)
    x, x2, batch, axis, _ = _rows(logits, axis)
    if x2.shape[0] == 0:
        return np.empty(batch, np.intp)
    idx = _topk_rows(x2, 1, t, rng, batch)[:, 0].reshape(batch)
    return idx[()] if idx.ndim == 0 else idx


def gumbel_topk(logits, k, axis=-1, *, temperature=1.0, rng=None):
    r"""Draw `k` categories per row without replacement (Gumbel-top-k).

    The indices of the `k` largest ``logits / temperature + g``, ordered by
    perturbed score: a draw from the Plackett-Luce model of
    ``softmax(logits / temperature)``, i.e. sampling without replacement.
    One pass over the logits with a small per-row candidate heap.

    Parameters
    ----------
    logits : array_like
        Unnormalized log-probabilities; ``-inf`` entries are never drawn.
    k : int
        How many to draw, 0 <= k <= the number of finite logits in each row.
    axis : int, optional
        The axis of categories. Default -1.
    temperature : float, optional
        Finite and >= 0; 0 returns the k largest logits (lowest index first
        on ties).
    rng : None, int, SeedSequence, BitGenerator, Generator, or a sequence of them, optional
        As in `gumbel_argmax` (one entry per row: each row draws as the only
        row of its own call).

    Returns
    -------
    ndarray of intp
        Shape ``logits.shape`` without `axis`, plus a last axis of length `k`:
        the drawn indices, first drawn first.

    Raises
    ------
    TypeError
        `k` is not an integer.
    ValueError
        Negative `k`, bad temperature, or a row with a NaN or +inf logit or
        fewer than `k` finite logits (the message names the first such row).

    See Also
    --------
    gumbel_argmax : one draw (the first of these).
    simdsoftmax.dask.gumbel_topk : the same draws over a Dask array.

    Examples
    --------
    >>> import numpy as np, simdsoftmax as ssm
    >>> draws = ssm.gumbel_topk(np.zeros((4, 10)), 3, rng=1)
    >>> draws.shape
    (4, 3)
    >>> all(len(set(r)) == 3 for r in draws.tolist())
    True
    """
    found = topk_one_step(logits, k, axis, temperature, rng)
    if found is not NOT_TAKEN:
        return found
    if isinstance(k, (bool, np.bool_)):
        raise TypeError("k must be an integer, got bool")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"k must be an integer, got {type(k).__name__}") from None
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    t = _check_temperature(temperature, "temperature", allow_zero=True)
    if _per_row(rng):
        return _topk_per_row(logits, k, axis, t, rng)
    x, x2, batch, axis, _ = _rows(logits, axis)
    if x2.shape[0] == 0 or k == 0:
        if k > x2.shape[1] and x2.shape[0]:
            _raise_bad_row(batch, 0, "has fewer finite logits than k")
        return np.empty(batch + (k,), np.intp)
    return _topk_rows(x2, k, t, rng, batch).reshape(batch + (k,))


def _topk_per_row(logits, k, axis, t, rng):
    """gumbel_topk with one rng per row: row r as the only row of its own call."""
    x, x2, batch, axis, _ = _rows(logits, axis)
    rows = x2.shape[0]
    entries = np.asarray(rng, dtype=object)
    if entries.shape != tuple(batch) and entries.shape != (rows,):
        raise ValueError(
            f"rng: a sequence of per-row rngs needs one entry per row: shape {tuple(batch)} "
            f"or ({rows},), got {entries.shape}"
        )
    out = np.empty((rows, k), np.intp)
    for r, entry in enumerate(entries.reshape(-1)):
        try:
            out[r] = gumbel_topk(x2[r], k, temperature=t, rng=entry)
        except ValueError as error:
            if "logits: the row" not in str(error) or not batch:
                raise
            _raise_bad_row(batch, r, str(error).split("logits: the row ", 1)[1])
    return out.reshape(batch + (k,))


def gumbel_softmax(logits, axis=-1, *, tau=1.0, hard=False, rng=None, out=None):
    r"""A relaxed categorical sample: ``softmax((logits + g) / tau)``.

    Computed by the two-pass softmax algorithm, with no noise array: the
    Gumbel noise ``g`` is made in pass 1 and kept in the output for pass 2
    where the output is a separate array, and regenerated in pass 2 where it
    is computed in place (two reads and one write of the data either way);
    batches of rows that fit one noise tile (64 elements) are done several
    rows at a time. ``hard=True`` returns the one-hot of ``argmax(logits + g)``
    -- the same draw the soft sample concentrates on for the same `rng`.

    Parameters
    ----------
    logits : array_like
        Unnormalized log-probabilities; ``-inf`` entries get probability 0.
    axis : int, optional
        The axis of categories. Default -1.
    tau : float, optional
        Temperature, finite and >= 0; ``tau=0`` is the limit, the one-hot.
    hard : bool, optional
        Return the one-hot sample instead of the relaxed one.
    rng : None, int, SeedSequence, BitGenerator or Generator, optional
        As in `gumbel_argmax`.
    out : ndarray, optional
        A writeable array of the result's shape and dtype (may be `logits`
        itself); untouched if an error is raised.

    Returns
    -------
    ndarray
        Same shape as `logits`; float32 for float16/float32 input computed in
        float32 (returned as float16 for float16), float64 otherwise. Rows sum
        to 1.

    Raises
    ------
    ValueError
        Bad tau; a row with a NaN or +inf logit or no finite logit.

    See Also
    --------
    gumbel_argmax : the draw that ``hard=True`` encodes as a one-hot.
    softmax

    Examples
    --------
    >>> import numpy as np, simdsoftmax as ssm
    >>> y = ssm.gumbel_softmax(np.zeros((2, 5), np.float32), tau=0.5, rng=3)
    >>> np.allclose(y.sum(axis=-1), 1)
    True
    >>> h = ssm.gumbel_softmax(np.zeros((2, 5)), hard=True, rng=3)
    >>> h.sum(axis=-1).tolist()
    [1.0, 1.0]
    """
    t = _check_temperature(tau, "tau", allow_zero=True)
    if not hard and t > 0 and _one_call(logits, axis) and _out_one_call(out, logits):
        # every row is read before any is written: a bad row leaves out untouched
        bad, reason, y = _core.gumbel_softmax_call(logits, out, 1.0 / t, *_key(rng))
        if bad >= 0:
            _raise_bad_row(logits.shape[:-1], bad, reason)
        return y
    x, x2, batch, axis, result = _rows(logits, axis)
    shape = x.shape
    if out is not None:
        _check_out(out, shape, result)
    rows, n = x2.shape
    if rows == 0 or n == 0:
        if rows and n == 0:
            _raise_bad_row(batch, 0, "has no finite logit")
        return np.empty(shape, result) if out is None else out
    if hard or t == 0:
        idx = _topk_rows(x2, 1, 1.0, rng, batch)[:, 0]
        y2 = np.zeros((rows, n), result)
        y2[np.arange(rows), idx] = 1
    else:
        k0, k1, offset = _key(rng)
        y2 = _rows_of_out(out, x2, axis)
        direct = y2 is not None
        if not direct:
            y2 = np.empty_like(x2)
        # The kernel reads every row before it writes any, so a bad row leaves
        # `out` untouched even when it is written directly.
        bad, reason = _core.gumbel_softmax(x2, y2, 1.0 / t, k0, k1, offset, fresh=not direct)
        if bad >= 0:
            _raise_bad_row(batch, bad, reason)
        if direct:
            return out
    y = np.moveaxis(y2.reshape(batch + (n,)), -1, axis)
    if out is not None:
        out[...] = y
        return out
    return y.astype(result, copy=False)
