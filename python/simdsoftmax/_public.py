"""The public functions, taking and returning the arrays of any library.

Each is the NumPy implementation (`_api`, `_gumbel`, `_sample`) wrapped by
`_arrays.array_api`: a NumPy call goes straight through; torch, JAX,
array-api-strict and other DLPack arrays are viewed as NumPy arrays and the
result handed back in their library; Dask arrays go to `simdsoftmax.dask`;
float16 and bfloat16 go to the 2-byte paths of `_half`. `sample`,
`gumbel_argmax`, `gumbel_topk` and `topk` first try their one-step calls
(`_sample.one_step`, `_gumbel.argmax_one_step`, `_gumbel.topk_one_step`,
`_sample.topk_one_step`:
a NumPy array or a plain torch tensor read, and the result made in its
library, in one C++ step), then the wrapper.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _api, _arrays, _core, _gumbel, _half, _sample
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
_gumbel_topk_arrays = array_api(_gumbel.gumbel_topk, arrays=("logits",), out=None, promote=False)
gumbel_softmax = array_api(_gumbel.gumbel_softmax, arrays=("logits",), out="out", promote=False)
_sample_arrays = array_api(
    _sample.sample, arrays=("logits", "temperature", "top_k", "top_p", "min_p"), out=None, promote=False
)


@functools.wraps(_sample.sample)
def sample(logits, axis=-1, *, temperature=1.0, top_k=None, top_p=None, min_p=None, rng=None, logprobs=None):
    # A NumPy or torch call in one C++ step before the wrapper's checks (~1 us
    # of a 30 us call on an LLM row; a torch tensor's round trip through
    # NumPy took 10-20 us); anything else through the wrapper.
    if _one_step_input(logits):
        found = _sample.one_step(logits, axis, temperature, top_k, top_p, min_p, rng, logprobs)
        if found is not _sample.NOT_TAKEN:
            return found
    return _sample_arrays(
        logits, axis, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, rng=rng, logprobs=logprobs
    )


@functools.wraps(_gumbel.gumbel_argmax)
def gumbel_argmax(logits, axis=-1, *, temperature=1.0, rng=None):
    # As sample: a NumPy or torch call in one C++ step before the wrapper's checks.
    if _one_step_input(logits):
        found = _gumbel.argmax_one_step(logits, axis, temperature, rng)
        if found is not _gumbel.NOT_TAKEN:
            return found
    return _gumbel_argmax_arrays(logits, axis, temperature=temperature, rng=rng)


@functools.wraps(_gumbel.gumbel_topk)
def gumbel_topk(logits, k, axis=-1, *, temperature=1.0, rng=None):
    # As sample: a NumPy or torch call in one C++ step before the wrapper's checks.
    if _one_step_input(logits):
        found = _gumbel.topk_one_step(logits, k, axis, temperature, rng)
        if found is not _gumbel.NOT_TAKEN:
            return found
    return _gumbel_topk_arrays(logits, k, axis, temperature=temperature, rng=rng)


def _one_step_input(logits) -> bool:
    """Is `logits` an ndarray or a torch tensor (the one-step calls' inputs;
    torch.Tensor is known once the wrapper has seen a tensor)?"""
    t = type(logits)
    return t is np.ndarray or t is _arrays._TORCH_TENSOR[0]


_topk_arrays = array_api(_sample.topk, arrays=("x",), out=None, promote=False)


@functools.wraps(_sample.topk)
def topk(x, k, axis=-1):
    # As sample: a NumPy or torch call in one C++ step before the wrapper's checks.
    if _one_step_input(x):
        found = _sample.topk_one_step(x, k, axis)
        if found is not _sample.NOT_TAKEN:
            return found
    return _topk_arrays(x, k, axis)
