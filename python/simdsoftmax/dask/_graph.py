"""The Dask graphs behind simdsoftmax.dask: per-chunk kernels and tree reductions.

Block functions (run on workers, one chunk each) and the graph builders that
wire them: partial normalizers reduced as a tree for softmax, log_softmax and
logsumexp; candidate lists reduced as a tree for the Gumbel samplers. The
public functions and their documentation are in _functions.py; the package
docstring of simdsoftmax.dask describes the tasks, traffic and memory.
"""

from __future__ import annotations

import functools
import math
import operator

import dask.array as da
import numpy as np

from .. import _core
from .._api import (
    _KERNEL_DTYPE,
    _ROWWISE_DTYPES,
    _as_rows,
    _elementwise_dtypes,
    _from_rows,
    _layout,
    _logsumexp_dtype,
    _reduced_axes,
    _sign,
)
from .._api import logsumexp as _np_logsumexp
from .._gumbel import _key, _raise_bad_row, _work_dtype

_F64 = np.dtype(np.float64)

# One row's partial normalizer: sum b*exp(x - max) = hi + lo. `flag` holds
# _core.row_partials' bits; `plain` is the row's sum b*exp(x) in the data's
# precision, with IEEE infinities and NaNs, which SciPy's logsumexp falls back
# to for special rows (NaN, +inf, all -inf, zero sum) -- kept so those rows
# get SciPy's answer without a second look at the data.
_PARTIAL = np.dtype([("max", "f8"), ("hi", "f8"), ("lo", "f8"), ("flag", "u1"), ("plain", "f8")])
_SPECIAL, _HUGE = 1, 2  # see _core.row_partials

# logsumexp's partials also carry the row's sum b*exp(x) relative to 0 as a
# double-double `near` + `near_lo` (_core.row_sums_dd), exact to ~2^-100,
# for rows whose log-sum-exp may be near 0, where max + log S cancels: such
# sums of chunks add up, and log1p(sum - 1) is then accurate to a few
# 2^-53 relative. `near_ok`: every chunk of the row supplied its part.
_PARTIAL_LSE = np.dtype(_PARTIAL.descr + [("near", "f8"), ("near_lo", "f8"), ("near_ok", "u1")])

# A row's float64 result lse = max + log S is within 2^-49 |log S| + 2^-53
# |lse| (the in-memory kernels' lse_cancel_ok): below |lse| = 2^-20 |log S|
# that can exceed what float32 (1 ulp) and float64 (2^-26 relative near 0,
# docs/design.md) allow, and the row takes its double-double sum instead.
_NEAR_ZERO = 2.0**-20
# Chunks whose own log-sum-exp is below this give their float64 sum as the
# double-double's part: at most e^-40 ~ 2^-57.7, within a few 2^-53 of
# that, i.e. ~2^-109 absolute (the double-double's own error, (n + 4)
# 2^-100, is the larger).
_NEAR_FLOOR = -40.0

# Gumbel candidate status bits (see _core.gumbel_candidates).
_HAS_NAN, _HAS_POSINF = 1, 2


# --------------------------------------------------------------------------
# Arguments


def _as_dask(x) -> da.Array:
    return x if isinstance(x, da.Array) else da.asarray(x)


def _require_known_chunks(x: da.Array, axes, what: str) -> None:
    for ax in axes:
        if any(math.isnan(c) for c in x.chunks[ax]):
            raise ValueError(
                f"{what}: the chunk sizes along axis {ax} are unknown; "
                "call .compute_chunk_sizes() on the array first"
            )


def _keepdims_chunks(x: da.Array, axes) -> tuple:
    """Chunks of a per-chunk partial: one entry per chunk along `axes`."""
    return tuple((1,) * len(c) if i in axes else c for i, c in enumerate(x.chunks))


def _keepdims_shape(shape, axes) -> tuple:
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _broadcast_pair(a: da.Array, b: da.Array):
    """`a` and `b` broadcast to one shape with the same chunks.

    Each dimension takes the chunks of an operand that spans it (`a`'s
    first), so `a` is never rechunked and `b` only along a dimension it
    shares with `a` but chunks differently; a broadcast operand is repeated
    block by block, never copied into the graph at full size.
    """
    shape = np.broadcast_shapes(a.shape, b.shape)
    ndim = len(shape)

    def padded(x):  # (chunks, shape) with x's missing leading dimensions
        lead = ndim - x.ndim
        return (None,) * lead + x.chunks, (1,) * lead + x.shape

    operands = [padded(a), padded(b)]

    def pick(d):
        for chunks_, shape_ in operands:
            if chunks_[d] is not None and shape_[d] == shape[d]:
                return chunks_[d]
        return (shape[d],)

    chunks = tuple(pick(d) for d in range(ndim))

    def fit(x, sx):
        lead = ndim - x.ndim
        target = {d - lead: chunks[d] for d in range(lead, ndim) if sx[d] == shape[d] and sx[d] != 1}
        if any(x.chunks[d] != c for d, c in target.items()):
            x = x.rechunk(target)
        return da.broadcast_to(x, shape, chunks=chunks)

    return fit(a, operands[0][1]), fit(b, operands[1][1])


# --------------------------------------------------------------------------
# Partial normalizers (softmax, log_softmax, logsumexp)


def _chunk_plain(a2, b2, flag, mx, hi, work):
    """sum b*exp(a) per row in `work` precision, as SciPy's fallback forms it.

    Rows whose sum the partial does not determine -- NaN or a non-finite
    weight, a +inf max, or (weighted) a term that may overflow, where signs or
    a zero weight can make the sum NaN -- are summed from the data. For the
    others it follows from the partial: 0 for an empty or all -inf chunk,
    else S*exp(M) rounded to `work` (inf if it overflows there, as the sum
    of positive terms would).
    """
    with np.errstate(all="ignore"):
        plain = np.where(hi == 0, 0.0, hi * np.exp(np.where(np.isfinite(mx), mx, 0.0)))
        plain = plain.astype(work).astype(_F64)
        plain[mx == -np.inf] = 0.0
        explicit = np.flatnonzero(((flag & (_SPECIAL | _HUGE)) != 0) | (mx == np.inf))
        if explicit.size:
            terms = np.exp(a2[explicit])
            if b2 is not None:
                terms = b2[explicit] * terms
            plain[explicit] = terms.sum(axis=1)
    return plain


def _near_zero_sums(a2, b2, mx, hi, flag, row_len):
    """A chunk's part of each row's double-double sum near lse = 0:
    (near, near_lo, near_ok), see _PARTIAL_LSE.

    A row can need it (|lse| < _NEAR_ZERO |log S|) only if lse is below
    _NEAR_ZERO log(row_len), as log S <= log(row_len) for unweighted rows;
    a chunk's own log-sum-exp lse_c is at most the row's, so chunks with
    lse_c above twice that (a margin for its rounding) say near_ok = 0,
    and rows of ordinary data pay nothing more. The others give the
    double-double sum of their entries, or their float64 sum where lse_c <
    _NEAR_FLOOR. Weighted rows are covered when their weights are
    nonnegative and keep log S <= log(row_len) (e.g. weights <= 1).
    """
    near = np.zeros(mx.shape)
    near_lo = np.zeros(mx.shape)
    with np.errstate(all="ignore"):
        lse_c = mx + np.log(np.abs(hi))  # -inf: an empty or all -inf chunk, or a zero sum
        cancelled = (hi == 0) & np.isfinite(mx)  # a weighted float64 sum of 0 need not be exactly 0
        tiny = (lse_c < _NEAR_FLOOR) & ~cancelled
        near[tiny] = (hi * np.exp(mx))[tiny]  # 0 for an empty or all -inf chunk
        limit = 2.0 * _NEAR_ZERO * max(math.log(row_len), 1.0)
        redo = ~tiny & ((lse_c <= limit) | cancelled) & ((flag & _SPECIAL) == 0)
        ok = tiny | redo
    pick = np.flatnonzero(redo)
    if pick.size:
        h, lo = _core.row_sums_dd(a2, b2, pick.astype(np.int64))
        near[pick], near_lo[pick] = h, lo
        ok[pick] = np.isfinite(h)
    return near, near_lo, ok


def _partials_block(a, b=None, *, axes, work, wide, with_plain, row_len=1):
    """One chunk -> its per-row partial normalizers, shaped like the chunk with
    1 along `axes`. with_plain (logsumexp): _PARTIAL_LSE records, `row_len`
    the length of a whole row."""
    perm, rows, n = _layout(a.shape, axes)
    out = np.zeros(_keepdims_shape(a.shape, axes), _PARTIAL_LSE if with_plain else _PARTIAL)
    flat = out.reshape(rows)
    if rows == 0:
        return out
    if n == 0:
        flat["max"] = -np.inf  # an empty chunk contributes nothing
        if with_plain:
            flat["near_ok"] = 1
        return out
    a2 = _as_rows(a, perm, rows, n, work)[0]
    b2 = None if b is None else _as_rows(b, perm, rows, n, work)[0]
    mx, hi, lo, flag = _core.row_partials(a2, b2, wide)
    flat["max"], flat["hi"], flat["lo"], flat["flag"] = mx, hi, lo, flag
    if with_plain:
        flat["plain"] = _chunk_plain(a2, b2, flag, mx, hi, work)
        flat["near"], flat["near_lo"], flat["near_ok"] = _near_zero_sums(a2, b2, mx, hi, flag, row_len)
    return out


def _same(p, axis=None, keepdims=None, **kwargs):
    return p


def _combine_partials(p, axis, keepdims=True, *, work, **kwargs):
    """Combine the partials along `axis` into one per row (keepdims shape).

    S = sum_c S_c exp(M_c - M): M_c - M is formed exactly (TwoSum) and the
    sum is a double-double, so the tiny remainder S - 1 that log_softmax and
    logsumexp need near a dominant entry is kept to full relative precision.
    """
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(ax % p.ndim for ax in axes)
    perm, rows, m = _layout(p.shape, axes)
    out = np.zeros(_keepdims_shape(p.shape, axes), p.dtype)
    if rows == 0:
        return out
    q = (p if perm is None else p.transpose(perm)).reshape(rows, m)
    mx, hi, lo = q["max"], q["hi"], q["lo"]
    with np.errstate(all="ignore"):
        top = mx.max(axis=1)
        ref = np.where(np.isfinite(top), top, 0.0)[:, None]
        d = mx - ref
        bb = d - mx
        err = (mx - (d - bb)) - (ref + bb)
        factor = np.where(d > -1000.0, np.exp(d) * (1.0 + np.where(np.isfinite(err), err, 0.0)), 0.0)
        flat = out.reshape(rows)
        flat["max"] = top
        flat["hi"], flat["lo"] = _dd_sum_columns(hi * factor, lo * factor)
        flat["flag"] = np.bitwise_or.reduce(q["flag"], axis=1)
        flat["plain"] = q["plain"].astype(work).sum(axis=1, dtype=work)
        if "near" in p.dtype.names:
            flat["near"], flat["near_lo"] = _dd_sum_columns(q["near"], q["near_lo"])
            flat["near_ok"] = np.logical_and.reduce(q["near_ok"] != 0, axis=1)
    return out


def _dd_sum_columns(hi, lo):
    """Row sums of the double-doubles hi + lo, (rows, m) -> (sum_hi, sum_lo):
    TwoSum on the high parts, their errors and the low parts added plainly."""
    s_hi = np.zeros(hi.shape[0])
    s_lo = np.zeros(hi.shape[0])
    for c in range(hi.shape[1]):
        term = hi[:, c]
        t = s_hi + term
        bb = t - s_hi
        s_lo += (s_hi - (t - bb)) + (term - bb) + lo[:, c]
        s_hi = t
    total = s_hi + s_lo
    return total, s_lo - (total - s_hi)


def _normalizer(a: da.Array, b, axes, work, *, wide: bool, with_plain: bool, split_every) -> da.Array:
    """The per-row combined partials of `a` (and weights `b`) over `axes`, keepdims shape."""
    args = (a,) if b is None else (a, b)
    record = _PARTIAL_LSE if with_plain else _PARTIAL
    parts = da.map_blocks(
        _partials_block,
        *args,
        chunks=_keepdims_chunks(a, axes),
        dtype=record,
        meta=np.empty((0,) * a.ndim, record),
        axes=axes,
        work=work,
        wide=wide,
        with_plain=with_plain,
        row_len=math.prod(a.shape[ax] for ax in axes),
        token="simdsoftmax-partials",
    )
    combine = functools.partial(_combine_partials, work=work)
    return da.reduction(
        parts,
        _same,
        combine,
        combine=combine,
        axis=axes,
        keepdims=True,
        dtype=record,
        meta=np.empty((0,) * a.ndim, record),
        split_every=split_every,
        name="simdsoftmax-normalizer",
        concatenate=True,
    )


def _log_of_sum(hi, lo):
    """log|hi + lo| with full relative accuracy of the small remainder |S| - 1
    (the max's own term is exactly 1); as the in-memory kernels' driver,
    log|S| directly below 1/2 (weighted: small weights, or weights that
    cancel), where S - 1 would keep only 2^-53 absolute of S."""
    a = np.abs(hi)
    a_lo = np.where(hi < 0, -lo, lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        small = np.log(a) + a_lo / a
    return np.where(a < 0.5, small, np.log1p((a - 1.0) + a_lo))


# --------------------------------------------------------------------------
# softmax and log_softmax


def _rowwise_block(x, p, *, axes, work, result, log):
    """One chunk of softmax / log_softmax from its rows' combined partials."""
    perm, rows, n = _layout(x.shape, axes)
    if rows == 0 or n == 0:
        return np.empty(x.shape, result)
    x2, copied = _as_rows(x, perm, rows, n, work)
    p = p.reshape(rows)
    # A private copy of the chunk is written in place; Dask's own never is.
    y2 = x2 if copied else np.empty((rows, n), work)
    top, hi, lo = p["max"], p["hi"], p["lo"]
    nan_row = ((p["flag"] & _SPECIAL) != 0) | (top == -np.inf)
    posinf_row = ~nan_row & (top == np.inf)
    ordinary = ~(nan_row | posinf_row)
    with np.errstate(all="ignore"):
        ref = np.where(ordinary, top, np.nan)
        if log:
            _core.log_softmax_apply(x2, y2, ref, _log_of_sum(hi, lo))
        else:
            _core.softmax_apply(x2, y2, ref, 1.0 / hi)
    # Special rows as SciPy gives them (see _api): softmax is NaN; log_softmax
    # is NaN, except a row with +inf (and no NaN): NaN at +inf, -inf elsewhere.
    if nan_row.any():
        y2[nan_row] = np.nan
    if posinf_row.any():
        y2[posinf_row] = np.nan if not log else np.where(x2[posinf_row] == np.inf, np.nan, -np.inf)
    y = _from_rows(y2, x.shape, perm)
    return y if y.dtype == result else y.astype(result)


def _quietly(block, fn, **kwargs):
    """fn(block, **kwargs) without NumPy's floating-point warnings: the SciPy
    formulas for special rows warn, the tree path does not, and a warning on
    a worker reaches no one."""
    with np.errstate(all="ignore"):
        return fn(block, **kwargs)


def _rowwise(x, axis, split_every, log: bool, in_memory) -> da.Array:
    x = _as_dask(x)
    dtypes = _ROWWISE_DTYPES.get(x.dtype)
    result, work = dtypes if dtypes is not None else _elementwise_dtypes(x.dtype)
    if x.ndim == 0:
        # A 0-d array is one row of one element (as in memory).
        return _rowwise(x.reshape(1), None, split_every, log, in_memory).reshape(())
    axes = _reduced_axes(axis, x.ndim)
    if work is None:
        # Complex / long double have no kernels: one chunk along the reduced
        # axes (a rechunk, i.e. a shuffle of the data, if there were more),
        # then the in-memory NumPy path below.
        x = x.rechunk({ax: -1 for ax in axes})
    _require_known_chunks(x, axes, "softmax" if not log else "log_softmax")
    if x.size == 0:
        return x.astype(result)
    if all(len(x.chunks[ax]) == 1 for ax in axes):
        # Every row lies in one chunk (e.g. axis=-1 with chunks of whole
        # rows): the in-memory function per chunk is the same two passes in
        # one task, with no chunk held waiting for a reduction.
        return x.map_blocks(
            _quietly,
            in_memory,
            axis=axes,
            dtype=result,
            meta=np.empty((0,) * x.ndim, result),
            token="simdsoftmax-log_softmax" if log else "simdsoftmax-softmax",
        )
    norm = _normalizer(x, None, axes, work, wide=log, with_plain=False, split_every=split_every)
    kept = [i for i in range(x.ndim) if i not in axes]
    index = tuple(range(x.ndim))
    return da.blockwise(
        _rowwise_block,
        index,
        x,
        index,
        norm.squeeze(axis=axes),
        tuple(kept),
        dtype=result,
        meta=np.empty((0,) * x.ndim, result),
        axes=axes,
        work=work,
        result=result,
        log=log,
        token="simdsoftmax-log_softmax" if log else "simdsoftmax-softmax",
    )


# --------------------------------------------------------------------------
# logsumexp


def _lse_block(p, *, work, return_sign, empty):
    """Combined partials -> (log|sum|, sign) records in `work` dtype."""
    out = np.empty(p.shape, [("res", work), ("sgn", work)])
    top, hi, lo, flag, plain = p["max"], p["hi"], p["lo"], p["flag"], p["plain"]
    with np.errstate(all="ignore"):
        log_s = _log_of_sum(hi, lo)
        lse = top + log_s
        sgn = np.where(hi < 0, -1.0, 1.0)
        # Near 0, max + log S cancels: the rows' double-double sums instead.
        near = (p["near_ok"] != 0) & (np.abs(lse) < _NEAR_ZERO * np.abs(log_s))
        if near.any():
            lse[near] = _log_of_sum(p["near"][near], p["near_lo"][near])
            sgn[near] = np.where(p["near"][near] < 0, -1.0, 1.0)
        res = lse.astype(work)
        sgn = sgn.astype(work)
        if not return_sign:
            res[sgn < 0] = np.nan  # a negative sum has no real log (SciPy: NaN, no warning)
        special = ((flag & _SPECIAL) != 0) | ~np.isfinite(top) | (hi == 0)
        if special.any():
            # SciPy's answer for these rows is the log of its plain sum.
            s = plain[special].astype(work)
            if return_sign:
                res[special], sgn[special] = np.log(np.abs(s)), _sign(s)
            else:
                res[special] = np.log(s)
        if empty:
            res[...], sgn[...] = -np.inf, -1  # an empty sum: -inf, sign -1 (SciPy)
    out["res"], out["sgn"] = res, sgn
    return out


def _np_lse_records(a, b=None, *, axes, return_sign, records):
    """The in-memory logsumexp of a chunk holding whole rows, as records."""
    out = np.empty(_keepdims_shape(a.shape, axes), records)
    if return_sign:
        out["res"], out["sgn"] = _np_logsumexp(a, axis=axes, b=b, keepdims=True, return_sign=True)
    else:
        out["res"], out["sgn"] = _np_logsumexp(a, axis=axes, b=b, keepdims=True), 0
    return out


def _logsumexp(a, axis, b, keepdims, return_sign, split_every):
    """The graph of logsumexp: partials reduced as a tree, then one map over the per-row results."""
    a_d = _as_dask(a)
    b_d = None if b is None else _as_dask(b)
    dtype = _logsumexp_dtype(a, a_d, b, b_d)
    work = _KERNEL_DTYPE.get(dtype)
    if a_d.ndim == 0:
        a_d = a_d.reshape(1)
    if b_d is not None:
        if b_d.ndim == 0:
            b_d = b_d.reshape(1)
        try:
            np.broadcast_shapes(a_d.shape, b_d.shape)
        except ValueError:
            raise ValueError(
                f"b with shape {b_d.shape} cannot be broadcast to a with shape {a_d.shape}"
            ) from None
        a_d, b_d = _broadcast_pair(a_d, b_d)
    axes = tuple(range(a_d.ndim)) if axis is None else _reduced_axes(axis, a_d.ndim)

    if work is None:
        # Complex / long double: one chunk along the reduced axes, then NumPy.
        rechunk = {ax: -1 for ax in axes}
        a_d = a_d.rechunk(rechunk)
        # with return_sign the log is of |sum|: real
        res_dtype = np.empty(0, dtype).real.dtype if return_sign else dtype
        records = np.dtype([("res", res_dtype), ("sgn", dtype)])
        args = (a_d,) if b_d is None else (a_d, b_d.rechunk(a_d.chunks))
        recs = da.map_blocks(
            _np_lse_records,
            *args,
            chunks=_keepdims_chunks(a_d, axes),
            dtype=records,
            meta=np.empty((0,) * a_d.ndim, records),
            axes=axes,
            return_sign=return_sign,
            records=records,
            token="simdsoftmax-logsumexp-numpy",
        )
    else:
        _require_known_chunks(a_d, axes, "logsumexp")
        empty = math.prod(a_d.shape[ax] for ax in axes) == 0
        norm = _normalizer(a_d, b_d, axes, work, wide=True, with_plain=True, split_every=split_every)
        records = np.dtype([("res", work), ("sgn", work)])  # float16 is narrowed below
        recs = norm.map_blocks(
            _lse_block,
            dtype=records,
            meta=np.empty((0,) * a_d.ndim, records),
            work=work,
            return_sign=return_sign,
            empty=empty,
        )
    res = recs["res"].astype(records["res"] if work is None else dtype)
    sgn = recs["sgn"].astype(dtype)
    if not keepdims:
        res, sgn = res.squeeze(axis=axes), sgn.squeeze(axis=axes)
    return (res, sgn) if return_sign else res


# --------------------------------------------------------------------------
# Gumbel-max / Gumbel-top-k


def _candidate_dtype(k: int) -> np.dtype:
    return np.dtype([("idx", np.intp, (k,)), ("score", "f8", (k,)), ("status", "u1")])


def _row_runs(starts, block_shape, full_shape):
    """Runs of a chunk's rows whose global row numbers are consecutive.

    Rows are numbered in C order over the batch dimensions (the logits'
    shape without `axis`). A chunk's rows are consecutive globally along its
    trailing batch dimensions that span the whole array, plus the one before
    them: yields (first local row, number of rows, first global row).
    """
    nb = len(block_shape)
    if nb == 0:
        yield 0, 1, 0
        return
    strides = [math.prod(full_shape[d + 1 :]) for d in range(nb)]
    j = nb - 1
    while j > 0 and block_shape[j] == full_shape[j]:
        j -= 1
    run = math.prod(block_shape[j:])
    if run == 0:
        return
    base_j = starts[j] * strides[j]
    for r, outer in enumerate(np.ndindex(*block_shape[:j])):
        base = base_j + sum((starts[d] + o) * strides[d] for d, o in enumerate(outer))
        yield r * run, run, base


def _candidates_block(x, *, axis, k, work, inv_temp, key, batch_shape, block_info=None):
    """One chunk -> each row's best k (global index, score) and status,
    shaped like the chunk with 1 along `axis`."""
    loc = block_info[0]["array-location"]
    out = np.empty(_keepdims_shape(x.shape, (axis,)), _candidate_dtype(k))
    moved = np.moveaxis(x, axis, -1)
    block_batch, n = moved.shape[:-1], moved.shape[-1]
    rows = math.prod(block_batch)
    flat = out.reshape(rows)
    if rows == 0:
        return out
    idx = np.full((rows, k), -1, np.intp)
    score = np.full((rows, k), -np.inf)
    status = np.zeros(rows, np.uint8)
    col_base = loc[axis][0]
    if n:
        x2 = moved.reshape(rows, n)
        # aligned too, not only contiguous: the kernels take float pointers (see _gumbel._rows)
        if x2.dtype != work or not (x2.flags.c_contiguous and x2.flags.aligned):
            x2 = np.array(x2, dtype=work, order="C")
        if x2.dtype is not work:
            x2 = x2.view(work)  # _core recognises dtypes by identity (see _api._as_rows)
        if inv_temp is None:
            # temperature=0 (greedy): the k largest logits, lowest index first
            # on ties, as the in-memory stable sort; -inf is never a candidate.
            take = min(k, n)
            order = np.argsort(-x2, axis=1, kind="stable")[:, :take]
            vals = np.take_along_axis(x2, order, axis=1).astype(np.float64)
            finite = vals > -np.inf
            idx[:, :take] = np.where(finite, order + col_base, -1)
            score[:, :take] = np.where(finite, vals, -np.inf)
            status |= np.where(np.isnan(x2).any(axis=1), _HAS_NAN, 0).astype(np.uint8)
            status |= np.where(np.isposinf(x2).any(axis=1), _HAS_POSINF, 0).astype(np.uint8)
        else:
            k0, k1, offset = key
            starts = [loc[d][0] for d in range(x.ndim) if d != axis]
            for first, count, row_base in _row_runs(starts, block_batch, batch_shape):
                sl = slice(first, first + count)
                _core.gumbel_candidates(
                    x2[sl], k, inv_temp, k0, k1, offset, idx[sl], score[sl], status[sl], row_base, col_base
                )
    flat["idx"], flat["score"], flat["status"] = idx, score, status
    return out


def _merge_candidates(p, axis, keepdims=True, *, k, **kwargs):
    """Keep each row's best k candidates over `axis`: by score, then lower
    global index -- the order the in-memory kernel keeps."""
    axis = axis[0] if isinstance(axis, (tuple, list)) else axis
    moved = np.moveaxis(p, axis, -1)
    batch, m = moved.shape[:-1], moved.shape[-1]
    rows = math.prod(batch)
    out = np.empty(_keepdims_shape(p.shape, (axis,)), p.dtype)
    flat = out.reshape(rows)
    if rows == 0:
        return out
    q = moved.reshape(rows, m)
    idx = q["idx"].reshape(rows, m * k)
    score = q["score"].reshape(rows, m * k)
    order = np.lexsort((idx, -score), axis=-1)[:, :k]
    flat["idx"] = np.take_along_axis(idx, order, axis=1)
    flat["score"] = np.take_along_axis(score, order, axis=1)
    flat["status"] = np.bitwise_or.reduce(q["status"], axis=1)
    return out


def _draws_block(p, *, k, batch_shape, block_info=None):
    """Merged candidates of a chunk of rows -> the drawn indices, or the
    in-memory function's ValueError for the chunk's first bad row."""
    rows = p.size
    flat = p.reshape(rows)
    status = flat["status"]
    found = (flat["score"] > -np.inf).sum(axis=1) if rows else np.zeros(0, np.intp)
    bad = np.flatnonzero((status != 0) | (found < k))
    if bad.size:
        r = int(bad[0])
        if status[r] & _HAS_NAN:
            reason = "contains NaN"
        elif status[r] & _HAS_POSINF:
            reason = "contains +inf"
        else:
            reason = "has no finite logit" if k == 1 else "has fewer finite logits than k"
        starts = [lo for lo, _ in block_info[0]["array-location"]]
        local = np.unravel_index(r, p.shape) if p.ndim else ()
        global_row = (
            int(np.ravel_multi_index(tuple(s + i for s, i in zip(starts, local)), batch_shape)) if p.ndim else 0
        )
        _raise_bad_row(batch_shape, global_row, reason)
    return p["idx"].reshape(p.shape + (k,))


def _gumbel(logits, k: int, axis, temperature, rng, split_every) -> da.Array:
    x = _as_dask(logits)
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an int, got {type(axis).__name__}") from None
    (axis,) = _reduced_axes(axis, x.ndim)  # AxisError if out of range
    _, work = _work_dtype(x.dtype)
    _require_known_chunks(x, range(x.ndim), "gumbel")
    batch_shape = x.shape[:axis] + x.shape[axis + 1 :]
    batch_chunks = x.chunks[:axis] + x.chunks[axis + 1 :]
    rows, n = math.prod(batch_shape), x.shape[axis]
    if rows == 0 or k == 0:
        # As in memory: nothing to draw, and the rng is left alone.
        if k > n and rows:
            _raise_bad_row(batch_shape, 0, "has fewer finite logits than k")
        return da.empty(batch_shape + (k,), dtype=np.intp, chunks=batch_chunks + ((k,),))
    key = _key(rng)  # drawn now, once: every chunk and every retry uses the same noise
    if k > n:
        # Every row is short (in memory too, after the key is drawn): say so now.
        _raise_bad_row(batch_shape, 0, "has no finite logit" if k == 1 else "has fewer finite logits than k")
    ctype = _candidate_dtype(k)
    meta = np.empty((0,) * x.ndim, ctype)
    cands = x.map_blocks(
        _candidates_block,
        chunks=_keepdims_chunks(x, (axis,)),
        dtype=ctype,
        meta=meta,
        axis=axis,
        k=k,
        work=work,
        inv_temp=None if temperature == 0 else 1.0 / temperature,
        key=key,
        batch_shape=batch_shape,
        token="simdsoftmax-gumbel-candidates",
    )
    merge = functools.partial(_merge_candidates, k=k)
    best = da.reduction(
        cands,
        _same,
        merge,
        combine=merge,
        axis=axis,
        keepdims=True,
        dtype=ctype,
        meta=meta,
        split_every=split_every,
        name="simdsoftmax-gumbel-merge",
        concatenate=True,
    ).squeeze(axis=axis)
    return best.map_blocks(
        _draws_block,
        chunks=batch_chunks + ((k,),),
        new_axis=len(batch_shape),
        dtype=np.intp,
        meta=np.empty((0,) * (len(batch_shape) + 1), np.intp),
        k=k,
        batch_shape=batch_shape,
        token="simdsoftmax-gumbel-draws",
    )
