"""The public functions, taking and returning the arrays of any library.

Each is the NumPy implementation (`_api`, `_gumbel`, `_sample`) wrapped by
`_arrays.array_api`: a NumPy call goes straight through; torch, JAX,
array-api-strict and other DLPack arrays are viewed as NumPy arrays and the
result handed back in their library; Dask arrays go to `simdsoftmax.dask`;
float16 and bfloat16 go to the 2-byte paths of `_half`. `sample` and
`gumbel_argmax` first try their one-step NumPy calls (`_sample.one_step`,
`_gumbel.argmax_one_step`), then the wrapper.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _api, _core, _gumbel, _half, _sample
from ._arrays import array_api

__all__ = ["softmax", "log_softmax", "logsumexp", "gumbel_argmax", "gumbel_topk", "gumbel_softmax", "sample", "topk"]

softmax = array_api(_api.softmax, arrays=("x",), out="out", half=_half.softmax, tensor=_core.tensor_softmax)
log_softmax = array_api(
    _api.log_softmax, arrays=("x",), out="out", half=_half.log_softmax, tensor=_core.tensor_log_softmax
)
logsumexp = array_api(
    _api.logsumexp, arrays=("a", "b"), out=None, half=_half.logsumexp, tensor=_core.tensor_logsumexp
)
_gumbel_argmax_arrays = array_api(_gumbel.gumbel_argmax, arrays=("logits",), out=None, promote=False)
gumbel_topk = array_api(_gumbel.gumbel_topk, arrays=("logits",), out=None, promote=False)
gumbel_softmax = array_api(_gumbel.gumbel_softmax, arrays=("logits",), out="out", promote=False)
_sample_arrays = array_api(
    _sample.sample, arrays=("logits", "temperature", "top_k", "top_p", "min_p"), out=None, promote=False
)


@functools.wraps(_sample.sample)
def sample(logits, axis=-1, *, temperature=1.0, top_k=None, top_p=None, min_p=None, rng=None, logprobs=None):
    # A NumPy call in one C++ step before the wrapper's checks (~1 us of a
    # 30 us call on an LLM row); anything else through the wrapper.
    if type(logits) is np.ndarray:
        found = _sample.one_step(logits, axis, temperature, top_k, top_p, min_p, rng, logprobs)
        if found is not _sample.NOT_TAKEN:
            return found
    return _sample_arrays(
        logits, axis, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, rng=rng, logprobs=logprobs
    )


@functools.wraps(_gumbel.gumbel_argmax)
def gumbel_argmax(logits, axis=-1, *, temperature=1.0, rng=None):
    # As sample: a NumPy call in one C++ step before the wrapper's checks.
    if type(logits) is np.ndarray:
        found = _gumbel.argmax_one_step(logits, axis, temperature, rng)
        if found is not _gumbel.NOT_TAKEN:
            return found
    return _gumbel_argmax_arrays(logits, axis, temperature=temperature, rng=rng)


topk = array_api(_sample.topk, arrays=("x",), out=None, promote=False)
