"""The public functions of simdsoftmax.dask: arguments checked, documented, handed to _graph."""

from __future__ import annotations

import operator

import dask.array as da
import numpy as np

from .._api import log_softmax as _np_log_softmax
from .._api import softmax as _np_softmax
from .._gumbel import _check_temperature
from ._graph import _gumbel, _logsumexp, _rowwise


def softmax(x, axis=None, *, split_every=None) -> da.Array:
    r"""Softmax of a Dask array, lazily: `simdsoftmax.softmax` chunk by chunk.

    ``exp(x) / sum(exp(x))`` over `axis` as a tree reduction of per-chunk
    partial normalizers plus one blockwise pass (2 reads + 1 write of the
    data; see the module docstring for the tasks and memory it takes).

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input, any chunking (also several chunks along `axis`). Not a Dask
        array: converted with `dask.array.asarray`.
    axis : None or int or tuple of ints, optional
        Axis or axes to normalize over. Default None: the whole array (as
        SciPy).
    split_every : int or dict, optional
        How many partials each task of the tree reduction combines (Dask's
        `split_every`; default: Dask's configuration).

    Returns
    -------
    dask.array.Array
        Same shape and chunks as `x`; the dtype of `simdsoftmax.softmax`
        (float16/32/64 kept, integers and bools -> float64).

    Raises
    ------
    ValueError
        A repeated axis, or unknown chunk sizes along `axis`.
    numpy.exceptions.AxisError
        An axis out of range.
    TypeError
        `x` is not numeric.

    See Also
    --------
    simdsoftmax.softmax, log_softmax, logsumexp

    Notes
    -----
    Special values are SciPy's: ``-inf`` entries get 0; a slice with NaN or
    ``+inf``, or all ``-inf``, is NaN. Values agree with the in-memory
    function within its accuracy bound (float32: a few ulp). Complex and long
    double inputs are rechunked to one chunk along `axis` and computed by
    NumPy. There is no ``out=``: the result is a new Dask array.

    Examples
    --------
    >>> import dask.array as da
    >>> import simdsoftmax.dask as ssd
    >>> x = da.from_array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], chunks=(1, 2))
    >>> ssd.softmax(x, axis=1).compute().round(4)
    array([[0.09  , 0.2447, 0.6652],
           [0.3333, 0.3333, 0.3333]])
    """
    return _rowwise(x, axis, split_every, False, _np_softmax)


def log_softmax(x, axis=None, *, split_every=None) -> da.Array:
    r"""Log-softmax of a Dask array, lazily: `simdsoftmax.log_softmax` chunk by chunk.

    ``x - logsumexp(x)`` over `axis`: a tree reduction of per-chunk partials
    (one read) and one blockwise pass (one read, one write).

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input, any chunking.
    axis : None or int or tuple of ints, optional
        Axis or axes to normalize over. Default None: the whole array.
    split_every : int or dict, optional
        Partials per task of the tree reduction (Dask's `split_every`).

    Returns
    -------
    dask.array.Array
        Same shape and chunks as `x`; dtype as `simdsoftmax.log_softmax`.

    Raises
    ------
    ValueError
        A repeated axis, or unknown chunk sizes along `axis`.
    numpy.exceptions.AxisError
        An axis out of range.
    TypeError
        `x` is not numeric.

    See Also
    --------
    simdsoftmax.log_softmax, softmax, logsumexp

    Notes
    -----
    Special values are SciPy's: ``-inf`` gives ``-inf``; a slice with NaN,
    or all ``-inf``, is NaN; in a slice with ``+inf`` (and no NaN) the
    ``+inf`` entries give NaN and the others ``-inf``.

    Examples
    --------
    >>> import dask.array as da
    >>> import simdsoftmax.dask as ssd
    >>> x = da.from_array([1000.0, 1.0, 0.0], chunks=2)
    >>> ssd.log_softmax(x).compute().round(6)
    array([    0., -999., -1000.])
    """
    return _rowwise(x, axis, split_every, True, _np_log_softmax)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, *, split_every=None):
    r"""``log(sum(b * exp(a)))`` of a Dask array, lazily: one read of the data.

    A tree reduction of the kernels' exact per-chunk partials (the max and
    the double-double sum relative to it), so the result is as accurate as
    the in-memory `simdsoftmax.logsumexp` however `a` is chunked.

    Parameters
    ----------
    a : dask.array.Array or array_like
        Input, any chunking.
    axis : None or int or tuple of ints, optional
        Axis or axes to sum over. Default None: all.
    b : dask.array.Array or array_like, optional
        Weights, broadcast against `a` (chunks are matched to `a`'s; a small
        `b` is repeated, not copied). May be negative.
    keepdims : bool, optional
        Keep the reduced axes with size one.
    return_sign : bool, optional
        Also return the sign of the sum (else a negative sum gives NaN).
    split_every : int or dict, optional
        Partials per task of the tree reduction (Dask's `split_every`).

    Returns
    -------
    res : dask.array.Array
        The log-sum-exp; dtype as `simdsoftmax.logsumexp` (SciPy's promotion
        of `a` and `b`).
    sgn : dask.array.Array
        Only with `return_sign`: +1, -1 or 0 (a complex phase for complex
        input).

    Raises
    ------
    ValueError
        `b` does not broadcast to `a`, a repeated axis, or unknown chunk
        sizes along `axis`.
    numpy.exceptions.AxisError
        An axis out of range.

    See Also
    --------
    simdsoftmax.logsumexp, softmax, log_softmax

    Notes
    -----
    As in memory (and SciPy): a 0-d `a` is treated as 1-d; an empty sum
    gives ``-inf`` (sign -1); NaN (with a nonzero weight) gives NaN; ``+inf``
    gives ``+inf``; a zero weight removes its term. Special rows get SciPy's
    fallback ``log(sum(b*exp(a)))``, which is carried through the reduction,
    so no second pass is needed. Nor near 0, where max + log(sum) cancels:
    chunks that may belong to such a row also carry a double-double sum
    (rows with negative weights, or weights that make log(sum) exceed
    log(n), keep the float64 bound, ~1e-16 times the max, there).

    Examples
    --------
    >>> import dask.array as da
    >>> import simdsoftmax.dask as ssd
    >>> x = da.arange(10, chunks=3)
    >>> float(ssd.logsumexp(x).compute())
    9.45862974442671
    >>> res, sgn = ssd.logsumexp(da.from_array([1.0, 2.0], chunks=1), b=[1, -1],
    ...                          return_sign=True)
    >>> round(float(res.compute()), 12), float(sgn.compute())
    (1.541324854613, -1.0)
    """
    return _logsumexp(a, axis, b, keepdims, return_sign, split_every)


def gumbel_argmax(logits, axis=-1, *, temperature=1.0, rng=None, split_every=None) -> da.Array:
    r"""One categorical draw per row of a Dask array, lazily: `simdsoftmax.gumbel_argmax` chunk by chunk.

    ``argmax(logits / temperature + g)`` with Gumbel noise ``g`` that is a
    fixed function of each element's global position and the key drawn from
    `rng`: the result is bit-identical to the in-memory function's for the
    same `rng`, whatever the chunking. One read of the data; chunks along
    `axis` send their best (score, index) to a tree reduction.

    Parameters
    ----------
    logits : dask.array.Array or array_like
        Unnormalized log-probabilities, any chunking (chunk sizes must be
        known). ``-inf`` is never drawn.
    axis : int, optional
        The axis of categories. Default -1.
    temperature : float, optional
        Finite and >= 0; 0 is greedy argmax (lowest index on ties).
    rng : None, int, SeedSequence, BitGenerator or Generator, optional
        As `simdsoftmax.gumbel_argmax`; the key is drawn when this function
        is called (a Generator is advanced then, once), not at compute time,
        so computing the result twice, or a retried task, gives the same draw.
    split_every : int or dict, optional
        Partials per task of the tree reduction (Dask's `split_every`).

    Returns
    -------
    dask.array.Array of intp
        The drawn index along `axis`; shape of `logits` without `axis`.

    Raises
    ------
    ValueError
        Bad temperature or unknown chunk sizes (at once); a row with NaN or
        +inf, or no finite logit (when computed; the message names the row).

    See Also
    --------
    simdsoftmax.gumbel_argmax, gumbel_topk

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import simdsoftmax, simdsoftmax.dask as ssd
    >>> logits = np.log(np.random.default_rng(0).dirichlet(np.ones(50), size=4))
    >>> lazy = ssd.gumbel_argmax(da.from_array(logits, chunks=(3, 16)), rng=7)
    >>> bool((lazy.compute() == simdsoftmax.gumbel_argmax(logits, rng=7)).all())
    True
    """
    t = _check_temperature(temperature, "temperature", allow_zero=True)
    return _gumbel(logits, 1, axis, t, rng, split_every)[..., 0]


def gumbel_topk(logits, k, axis=-1, *, temperature=1.0, rng=None, split_every=None) -> da.Array:
    r"""`k` draws without replacement per row of a Dask array, lazily: `simdsoftmax.gumbel_topk` chunk by chunk.

    The indices of the `k` largest ``logits / temperature + g``, best
    first; every chunk sends its rows' best k (score, global index) to a tree
    reduction that keeps the best k by score, then lower index. Bit-identical
    to the in-memory function for the same `rng`, whatever the chunking.

    Parameters
    ----------
    logits : dask.array.Array or array_like
        Unnormalized log-probabilities, any chunking (chunk sizes must be
        known).
    k : int
        How many to draw, 0 <= k <= the number of finite logits in each row.
    axis : int, optional
        The axis of categories. Default -1.
    temperature : float, optional
        Finite and >= 0; 0 gives the k largest logits.
    rng : None, int, SeedSequence, BitGenerator or Generator, optional
        As in `gumbel_argmax` (the key is drawn at call time).
    split_every : int or dict, optional
        Partials per task of the tree reduction (Dask's `split_every`).

    Returns
    -------
    dask.array.Array of intp
        Shape ``logits.shape`` without `axis`, plus a last axis of length `k`
        (one chunk): the drawn indices, first drawn first.

    Raises
    ------
    TypeError
        `k` is not an integer.
    ValueError
        Negative `k`, bad temperature, unknown chunk sizes (at once); a row
        with NaN or +inf, or fewer than `k` finite logits (when computed).

    See Also
    --------
    simdsoftmax.gumbel_topk, gumbel_argmax

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import simdsoftmax, simdsoftmax.dask as ssd
    >>> logits = np.zeros((6, 100), np.float32)
    >>> lazy = ssd.gumbel_topk(da.from_array(logits, chunks=(4, 30)), 5, rng=2)
    >>> lazy.shape
    (6, 5)
    >>> bool((lazy.compute() == simdsoftmax.gumbel_topk(logits, 5, rng=2)).all())
    True
    """
    if isinstance(k, (bool, np.bool_)):
        raise TypeError("k must be an integer, got bool")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"k must be an integer, got {type(k).__name__}") from None
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    t = _check_temperature(temperature, "temperature", allow_zero=True)
    return _gumbel(logits, k, axis, t, rng, split_every)
