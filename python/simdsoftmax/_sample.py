"""Filtered sampling for LLM decoding (`sample`) and `topk`, without sorting.

Every filter of `sample` keeps the tokens whose logit is at least some
threshold, so a filtered draw is gumbel_argmax's draw over ``x >= floor``:
the same noise, the same pass, the filtered tokens counted as -inf. The C++
side finds the thresholds by selection over the row (a running k-th best, one
exact mass pass around a zone a sample of the row predicts for top-p, a
threshold on z for min-p); see csrc/sample_driver.cpp for the passes per
setting.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from . import _core
from ._gumbel import _GENERATOR, _key, _one_call, _per_row, _raise_bad_row, _rows

__all__ = ["sample", "topk"]

_LOGPROBS = {None: 0, "raw": 1, "processed": 2}


def _keys(rng, batch, rows):
    """((m, 3) uint64 array of (k0, k1, row offset), per_row): one key for
    the call, or one per row when `rng` is a sequence with an entry per row
    (each row then draws as the only row of a call with its own rng)."""
    if not _per_row(rng):
        return np.array([_key(rng)], np.uint64), False
    try:
        entries = np.asarray(rng, dtype=object)
    except ValueError:
        raise ValueError("rng: a sequence of per-row rngs must have the batch shape") from None
    if entries.shape != tuple(batch) and entries.shape != (rows,):
        raise ValueError(
            f"rng: a sequence of per-row rngs needs one entry per row: shape {tuple(batch)} "
            f"or ({rows},), got {entries.shape}"
        )
    keys = np.array([_key(entry) for entry in entries.reshape(-1)], np.uint64).reshape(rows, 3)
    return keys, True


def _filled(rows, value, dtype):
    """A (rows,) array of `value` (np.array for one row: 3x cheaper than np.full)."""
    return np.array([value], dtype) if rows == 1 else np.full(rows, value, dtype)


def _param(value, name, batch, default, dtype):
    """A per-row parameter as a contiguous (rows,) array of `dtype`, None
    (or None entries) meaning `default`; ValueError naming the parameter if
    it does not broadcast to the batch shape."""
    if value is None:
        return _filled(math.prod(batch), default, dtype)
    arr = np.asarray(value)
    if arr.dtype == object:
        try:
            arr = np.frompyfunc(lambda v: default if v is None else v, 1, 1)(arr)
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric (or None), got {value!r}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real number or an array of them, got dtype {arr.dtype}")
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} must be a number, not bool")
    try:
        arr = np.broadcast_to(arr, batch)
    except ValueError:
        raise ValueError(f"{name} of shape {arr.shape} does not broadcast to the batch shape {tuple(batch)}") from None
    return arr.reshape(-1)


def _first_bad(bad: np.ndarray, name: str, arr, what: str):
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be {what}, got {arr[i]!r}" + (f" (entry {i})" if arr.size > 1 else ""))


def _scalar_values(temperature, top_k, top_p, min_p):
    """(t, k, p, m): the common call's parameters (None or Python numbers)
    checked without NumPy's per-array overhead (tens of microseconds for
    five small arrays); None when a parameter is anything else or out of
    range (the general path converts it or raises the right error)."""
    if top_k is None and min_p is None:
        if top_p is None:  # no filter: the commonest call, checked at once
            if type(temperature) in (int, float) and 0 <= temperature < math.inf:
                return temperature, 0, 1.0, 0.0
            return None
        if type(top_p) is float and type(temperature) is float and 0 < top_p <= 1 and 0 <= temperature < math.inf:
            return temperature, 0, top_p, 0.0  # top-p alone (nucleus sampling), checked at once
    elif type(top_k) is int and type(top_p) is float and type(min_p) is float and type(temperature) is float:
        # every filter as a Python number (a decoding server's call), checked at once
        if top_k >= 0 and 0 < top_p <= 1 and 0 <= min_p <= 1 and 0 <= temperature < math.inf:
            return temperature, top_k, top_p, min_p
        return None
    values = []
    for v, default in ((temperature, 1.0), (top_k, 0), (top_p, 1.0), (min_p, 0.0)):
        if v is None:
            v = default
        if type(v) not in (int, float):
            return None
        values.append(v)
    t, k, p, m = values
    if type(k) is not int or k < 0 or not (0 <= t < math.inf):
        return None
    if not (0 < p <= 1) or not (0 <= m <= 1):
        return None
    return t, k, p, m


def _scalar_params(rows, n, temperature, top_k, top_p, min_p):
    """_scalar_values as the (rows,) arrays of _params, or None."""
    values = _scalar_values(temperature, top_k, top_p, min_p)
    if values is None:
        return None
    t, k, p, m = values
    return [_filled(rows, t, np.float64), _filled(rows, min(k, n), np.int64), _filled(rows, p, np.float64),
            _filled(rows, m, np.float64)]


def _row_params(batch, n, temperature, top_k, top_p, min_p):
    """_params' arrays for a decode loop's per-request settings: each one
    None, a Python number, or already a contiguous array of the batch shape
    (float64; int64 for top_k), all in range; checked by their extremes (a NaN fails
    every comparison) instead of broadcasting and masking each one, a third
    of the cost. None when anything is otherwise: the general path converts
    it or raises the error naming it."""
    rows = math.prod(batch)
    out = []
    for v, default, dtype in ((temperature, 1.0, _F64), (top_k, 0, _I64), (top_p, 1.0, _F64), (min_p, 0.0, _F64)):
        if v is None:
            v = default
        if type(v) is np.ndarray:
            if v.shape != tuple(batch) or v.dtype != dtype or not v.flags.c_contiguous:
                return None
            v = v.reshape(-1).copy()  # the kernels read it without the GIL: the caller's array may change meanwhile
        elif type(v) is (int if dtype is _I64 else float):
            v = _filled(rows, v, dtype)
        else:
            return None
        out.append(v)
    t, k, p, m = out
    if not (t.min() >= 0 and t.max() < math.inf and k.min() >= 0):
        return None
    if not (p.min() > 0 and p.max() <= 1 and m.min() >= 0 and m.max() <= 1):
        return None
    return [t, np.minimum(k, n), p, m]  # k >= n keeps every token


_F64, _I64 = np.dtype(np.float64), np.dtype(np.int64)


def _params(batch, n, temperature, top_k, top_p, min_p):
    rows = math.prod(batch)  # np.prod of a shape costs ~9 us, most of a small call
    fast = _scalar_params(rows, n, temperature, top_k, top_p, min_p)
    if fast is None:
        fast = _row_params(batch, n, temperature, top_k, top_p, min_p)
    if fast is not None:
        return fast
    t = _param(temperature, "temperature", batch, 1.0, np.float64).astype(np.float64)
    _first_bad(~(np.isfinite(t) & (t >= 0)), "temperature", t, "finite and >= 0")
    if top_k is None:
        k = np.zeros(t.size, np.int64)
    else:
        raw = _param(top_k, "top_k", batch, 0, np.int64)
        if raw.dtype.kind == "f":
            _first_bad(~(np.isfinite(raw) & (raw == np.floor(raw))), "top_k", raw, "an integer")
        _first_bad(raw < 0, "top_k", raw, ">= 0")
        k = np.minimum(raw, n).astype(np.int64)  # k >= n keeps every token
    p = _param(top_p, "top_p", batch, 1.0, np.float64).astype(np.float64)
    _first_bad(~((p > 0) & (p <= 1)), "top_p", p, "in (0, 1]")
    m = _param(min_p, "min_p", batch, 0.0, np.float64).astype(np.float64)
    _first_bad(~((m >= 0) & (m <= 1)), "min_p", m, "in [0, 1]")
    return [np.ascontiguousarray(a) for a in (t, k, p, m)]


NOT_TAKEN = object()


def one_step(logits, axis, temperature, top_k, top_p, min_p, rng, logprobs):
    """sample()'s common call (an ndarray or plain torch tensor as the
    kernels take it, checked in C++ as _one_call does; each setting a number,
    None, or in range per row as the decode loop gives them: an ndarray or
    tensor of the batch shape, a list; a valid `logprobs`; one rng, or a list
    or tuple of one per row) run in one C++ step, its keys drawn there;
    NOT_TAKEN when it is not, with nothing drawn. The public `sample` tries
    it before the array-type wrapper (whose checks cost ~1 us, a few percent
    of a call on an LLM row); per-row settings cost ~11 us more on the
    general path, per-row Generators ~2.5 us a row."""
    mode = 0 if logprobs is None else _LOGPROBS.get(logprobs) if type(logprobs) is str else None
    if mode is None or (type(rng) is not _GENERATOR and type(rng) not in (list, tuple) and _per_row(rng)):
        return NOT_TAKEN  # an array of rngs: the general path
    found = _core.sample_call(logits, axis, temperature, top_k, top_p, min_p, rng, mode)
    if found is None:
        return NOT_TAKEN
    bad, reason, tokens, lp = found
    if bad >= 0:
        _raise_bad_row(logits.shape[:-1], bad, reason)
    return (tokens, lp) if mode else tokens


def topk_one_step(x, k, axis):
    """topk()'s common call (an ndarray or a plain torch tensor as the kernel
    takes it, rows along the last axis, k an int in [1, n]) in one C++ step,
    the results in x's library; NOT_TAKEN when it is not."""
    found = _core.topk_call(x, axis, k)
    if found is None:
        return NOT_TAKEN
    bad, reason, values, indices = found
    if bad >= 0:
        _raise_bad_row(x.shape[:-1], bad, reason, "x")
    return values, indices


def sample(logits, axis=-1, *, temperature=1.0, top_k=None, top_p=None, min_p=None, rng=None, logprobs=None):
    r"""Draw one token per row from filtered ``softmax(logits / temperature)``.

    With ``z = logits / temperature`` and ``p = softmax(z)``, the filters
    apply in the order top-k, top-p, min-p, each to what the previous one
    kept, and always keep the most probable token:

    * top-k keeps the tokens whose logit is >= the k-th largest logit (every
      tie at the boundary is kept);
    * top-p keeps token i iff the tokens kept so far that are strictly more
      probable than i hold less than `top_p` of their mass (the smallest
      most-probable set reaching `top_p`, ties at the boundary kept);
    * min-p keeps token i iff ``p_i >= min_p * max(p)``.

    The draw is the argmax over the kept tokens of ``z_i + g_i`` with exactly
    the noise ``g`` of `gumbel_argmax`: for the same `rng` state, `sample`
    without filters returns what `gumbel_argmax` returns, and with filters
    what `gumbel_argmax` returns for the logits with every filtered token set
    to ``-inf``.

    Nothing is sorted and nothing of the row's size is allocated: a filter
    is a threshold on the logits, found by selection over the row. Passes
    over a row (reads of it), by setting:

    * no filter: 1, the draw itself (gumbel_argmax's pass, most noise never
      computed);
    * `top_k` (with or without `top_p` and `min_p`): 1, a running k-th best;
      top-p and min-p then look at the k candidates only, and the draw uses
      the candidates' own noise;
    * `min_p` alone: 2, the row's max, then the draw with the threshold
      ``z >= z_max + log(min_p)``;
    * `top_p` without `top_k`: 3 typically, the max, one pass of probability
      masses that also collects the values of the zone a sample of the row
      predicts for the threshold, and the draw (when that zone misses, a
      read collecting the next zone out, else one more mass pass per
      bisection step). The mass pass estimates the sums
      with a cheaper exp and a rigorous error bound; the exact pass (one exact
      vector exp per element) runs only where the bound cannot decide the
      threshold, or for ``logprobs="processed"``;
    * ``logprobs="raw"`` adds one pass (max and log-sum-exp together) unless
      it replaces the max pass; ``"processed"`` one (the kept mass) when the
      filters did not already give it.

    Parameters
    ----------
    logits : array_like
        Unnormalized log-probabilities (float16/32/64; integers as float64);
        ``-inf`` entries are never drawn.
    axis : int, optional
        The vocabulary axis. Default -1.
    temperature : float or array_like, optional
        Finite and >= 0, a scalar or one per row (broadcast to the batch
        shape, ``logits.shape`` without `axis`). 0 is greedy argmax (the
        lowest index among ties), whatever the filters.
    top_k : int or array_like, optional
        Integers >= 0; None or 0 disables. k >= the number of finite logits
        keeps them all.
    top_p : float or array_like, optional
        In (0, 1]; None or 1 disables.
    min_p : float or array_like, optional
        In [0, 1]; None or 0 disables.
    rng : None, int, SeedSequence, BitGenerator, Generator, or a sequence of them, optional
        Anything `numpy.random.default_rng` takes, as in `gumbel_argmax` (a
        Generator is advanced). A list, tuple or array with one entry per row
        (shape of the batch, or flat) gives every row its own rng:
        ``sample(X, rng=[s0, s1, ...])[r] == sample(X[r], rng=s_r)``, so a
        request's token does not depend on its neighbours in the batch. (To
        seed from a list of integers as entropy, pass
        ``np.random.SeedSequence(list)``.)
    logprobs : None, "raw" or "processed", optional
        Also return a log-probability per token: ``"raw"`` is
        ``log_softmax(logits)[token]`` (temperature 1, no filter);
        ``"processed"`` the log-probability the token was drawn with (after
        temperature and filters; 0 when greedy).

    Returns
    -------
    tokens : numpy.intp or ndarray of intp
        One index along `axis` per row; the batch shape.
    logprobs : floating scalar or ndarray
        Only with `logprobs`: the batch shape, float32 for float16/float32
        logits (float16 for float16), float64 otherwise.

    Raises
    ------
    ValueError
        A parameter out of range, not an integer (`top_k`) or not
        broadcastable to the batch shape (the message names the parameter);
        a row with a NaN or +inf logit or no finite logit (the message names
        the first such row). Nothing is returned in that case.
    TypeError
        A non-numeric parameter or logits dtype.

    See Also
    --------
    gumbel_argmax : the unfiltered draw, with the same noise.
    topk : the k largest values and their indices.

    Examples
    --------
    >>> import numpy as np, simdsoftmax as ssm
    >>> logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4]]))
    >>> int(ssm.sample(logits, top_k=1, rng=0)[0])
    0
    >>> tokens, lp = ssm.sample(logits, top_p=[0.5, 1.0], rng=0, logprobs="raw")
    >>> tokens.shape, lp.dtype
    ((2,), dtype('float64'))
    >>> bool(np.all(ssm.sample(logits, rng=7) == ssm.gumbel_argmax(logits, rng=7)))
    True
    """
    found = one_step(logits, axis, temperature, top_k, top_p, min_p, rng, logprobs)
    if found is not NOT_TAKEN:
        return found
    try:
        mode = _LOGPROBS[logprobs]
    except (KeyError, TypeError):
        raise ValueError(f'logprobs must be None, "raw" or "processed", got {logprobs!r}') from None
    x, x2, batch, axis, result = _rows(logits, axis)
    rows, n = x2.shape
    t, k, p, m = _params(batch, n, temperature, top_k, top_p, min_p)
    keys, per_row = _keys(rng, batch, rows)
    if rows and n == 0:
        _raise_bad_row(batch, 0, "has no finite logit")
    if rows == 0:
        tokens, lp = np.empty(batch, np.intp), np.empty(batch, result)
    else:
        bad, reason, tokens, lp = _core.sample(x2, t, k, p, m, keys, per_row, mode)
        if bad >= 0:
            _raise_bad_row(batch, bad, reason)
        tokens = tokens.astype(np.intp, copy=False).reshape(batch)
        if mode:
            lp = lp.astype(result, copy=False).reshape(batch)
    if tokens.ndim == 0:
        tokens = tokens[()]
        if mode:
            lp = lp[()]
    return (tokens, lp) if mode else tokens


def topk(x, k, axis=-1):
    r"""The `k` largest values along `axis` and their indices.

    Descending, and among equal values the lower index first (what
    `torch.topk` and `jax.lax.top_k` return; NumPy has no such function).
    One pass over each row with a running k-th best: a vector of the row is
    looked at lane by lane only when one of its values reaches the current
    k-th, so nothing is sorted but the k results.

    Parameters
    ----------
    x : array_like
        float16/32/64 (integers and bools as float64); ``-inf`` and ``+inf``
        are ordinary values.
    k : int
        0 <= k <= the length of `axis`.
    axis : int, optional
        The axis to select along. Default -1.

    Returns
    -------
    values : ndarray
        `x`'s shape with `axis` of length `k`; float16, float32 or float64
        like `x` (float64 for integer input).
    indices : ndarray of intp
        The positions of `values` along `axis`.

    Raises
    ------
    ValueError
        `k` out of range, or a row containing NaN (the message names the
        first such row).
    TypeError
        `k` is not an integer.

    Examples
    --------
    >>> import numpy as np, simdsoftmax as ssm
    >>> values, indices = ssm.topk(np.array([1.0, 3.0, 2.0, 3.0]), 3)
    >>> values.tolist(), indices.tolist()
    ([3.0, 3.0, 2.0], [1, 3, 2])
    """
    found = topk_one_step(x, k, axis)
    if found is not NOT_TAKEN:
        return found
    if isinstance(k, (bool, np.bool_)):
        raise TypeError("k must be an integer, got bool")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"k must be an integer, got {type(k).__name__}") from None
    if _one_call(x, axis) and 0 < k <= x.shape[-1] and x.size:
        # the common call (an ndarray as the kernel takes it, rows along the
        # last axis): no axis moves, which cost several times the kernel
        bad, reason, values, indices = _core.topk(x.reshape(-1, x.shape[-1]), k)
        if bad >= 0:
            _raise_bad_row(x.shape[:-1], bad, reason, "x")
        shape = x.shape[:-1] + (k,)
        return values.reshape(shape), indices.astype(np.intp, copy=False).reshape(shape)
    arr, x2, batch, axis, result = _rows(x, axis)
    rows, n = x2.shape
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}] (the length of axis {axis}), got {k}")
    if rows == 0 or k == 0:
        values, indices = np.empty((rows, k), result), np.empty((rows, k), np.intp)
    else:
        bad, reason, values, indices = _core.topk(x2, k)
        if bad >= 0:
            _raise_bad_row(batch, bad, reason, "x")
        values = values.astype(result, copy=False)
        indices = indices.astype(np.intp, copy=False)
    values = np.moveaxis(values.reshape(batch + (k,)), -1, axis)
    indices = np.moveaxis(indices.reshape(batch + (k,)), -1, axis)
    return values, indices
