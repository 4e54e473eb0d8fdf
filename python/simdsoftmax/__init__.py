"""SIMD softmax, log-softmax, log-sum-exp and Gumbel sampling for NumPy arrays.

Drop-in replacements for `scipy.special.softmax`, `log_softmax` and
`logsumexp`; streaming samplers (`gumbel_argmax`, `gumbel_topk`,
`gumbel_softmax`) whose noise is never stored; filtered sampling for LLM
decoding (`sample`: temperature, top-k, top-p, min-p, log-probabilities) and
`topk`, without sorting. Computed by C++ kernels (AVX-512, AVX2+FMA, NEON or
portable scalar) picked at import for the CPU at hand. See `show_runtime` for
what was picked. `simdsoftmax.dask` (optional extra ``simdsoftmax[dask]``,
imported only on request) runs the same functions over Dask arrays.
"""

from . import _core
from ._public import gumbel_argmax, gumbel_softmax, gumbel_topk, log_softmax, logsumexp, sample, softmax, topk
from ._runtime import (
    _apply_environment,
    available_isas,
    get_num_threads,
    isa,
    set_num_threads,
    show_runtime,
    use_isa,
)

__version__: str = _core.version()

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "gumbel_argmax",
    "gumbel_topk",
    "gumbel_softmax",
    "sample",
    "topk",
    "isa",
    "available_isas",
    "use_isa",
    "set_num_threads",
    "get_num_threads",
    "show_runtime",
    "__version__",
]

_apply_environment()
del _apply_environment

# Registers simdsoftmax's thread pool with threadpoolctl when that is installed.
from . import _threadpoolctl  # noqa: E402,F401
