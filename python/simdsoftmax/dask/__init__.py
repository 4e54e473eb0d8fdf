"""simdsoftmax on Dask arrays: arrays larger than memory, or spread over a cluster.

``softmax``, ``log_softmax``, ``logsumexp``, ``gumbel_argmax`` and
``gumbel_topk`` take a `dask.array.Array` (or anything `dask.array.asarray`
takes), with any chunking -- including several chunks along the reduced
axes -- and return a lazy Dask array. They run on any Dask scheduler,
``dask.distributed`` included. Install with ``pip install simdsoftmax[dask]``;
``import simdsoftmax`` alone never imports Dask.

How the work is split (n = number of chunks of the input):

* Normalizer: every chunk's kernels compute, per row, its max M_c and the
  sum S_c = sum b*exp(x - M_c) as a double-double (one read). These partials
  combine associatively -- M = max M_c, S = sum S_c*exp(M_c - M) -- so Dask
  reduces them as a tree (``split_every`` chunks per task) into one partial
  per row. That is all `logsumexp` needs: one read of the data. (Near
  lse = 0, where M + log S cancels, chunks that may belong to such a row
  also send sum b*exp(x) in double-double, which the tree adds up; chunks
  of ordinary logits do not.)
* `softmax` and `log_softmax` then make one blockwise pass that reads each
  chunk again and writes the result: 2 reads + 1 write per element, as the
  in-memory two-pass algorithm. About 2n + n/split_every tasks; the partials
  are 33 bytes per row and chunk, so nothing big moves between workers.
  Memory: every chunk of a group of rows is held until the group's
  normalizer is known. When each row lies within one chunk (e.g. ``axis=-1``
  and chunks of whole rows) there is nothing to reduce: each chunk is one
  task running the in-memory function, n tasks in all.
* `gumbel_argmax` / `gumbel_topk` read each chunk once: the kernels return
  each row's best k (score, global index) candidates, and the tree keeps the
  best k by score, then lower index. The noise of an element is a fixed
  function of its global position and the key drawn from `rng`, so the draws
  are **bit-identical** to the in-memory functions' for the same `rng`,
  whatever the chunking.

Results match the in-memory functions: the same dtypes and special values
(SciPy's), and values within the same accuracy bounds (softmax is the
in-memory ``algorithm="online"``'s, up to the rounding of combining partials).
Complex and long double inputs, which have no kernels, are rechunked to one
chunk along the reduced axes and computed by the in-memory functions.

Data-dependent errors (a NaN logit for the samplers) are raised when the
result is computed; they name a bad row, the first of its output chunk (with
several bad chunks, which one is reported depends on the scheduler).
"""

from __future__ import annotations

try:
    import dask.array  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError(
        "simdsoftmax.dask needs Dask: pip install 'simdsoftmax[dask]' (or dask[array])"
    ) from exc

from ._functions import gumbel_argmax, gumbel_topk, log_softmax, logsumexp, softmax

__all__ = ["softmax", "log_softmax", "logsumexp", "gumbel_argmax", "gumbel_topk"]

for _f in (softmax, log_softmax, logsumexp, gumbel_argmax, gumbel_topk):
    _f.__module__ = __name__  # documented and shown as simdsoftmax.dask.<name>
del _f
