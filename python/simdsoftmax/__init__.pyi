from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, TypeAlias, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__version__: str

_Axis: TypeAlias = int | Sequence[int] | None
_Algorithm: TypeAlias = Literal[
    "auto", "two-pass", "three-pass-recompute", "three-pass-reload", "online"
]
_Out: TypeAlias = NDArray[Any]
# Array results, or a NumPy scalar where the result is 0-d.
_Result: TypeAlias = NDArray[np.inexact[Any]] | np.inexact[Any]

def softmax(
    x: ArrayLike,
    axis: _Axis = None,
    *,
    out: _Out | None = None,
    algorithm: _Algorithm = "auto",
) -> _Result: ...
def log_softmax(x: ArrayLike, axis: _Axis = None, *, out: _Out | None = None) -> _Result: ...
@overload
def logsumexp(
    a: ArrayLike,
    axis: _Axis = None,
    b: ArrayLike | None = None,
    keepdims: bool = False,
    return_sign: Literal[False] = False,
) -> _Result: ...
@overload
def logsumexp(
    a: ArrayLike,
    axis: _Axis = None,
    b: ArrayLike | None = None,
    keepdims: bool = False,
    *,
    return_sign: Literal[True],
) -> tuple[_Result, _Result]: ...
@overload
def logsumexp(
    a: ArrayLike,
    axis: _Axis,
    b: ArrayLike | None,
    keepdims: bool,
    return_sign: Literal[True],
) -> tuple[_Result, _Result]: ...
_Rng1: TypeAlias = (
    int | np.random.SeedSequence | np.random.BitGenerator | np.random.Generator | None
)
# One rng for the call, or one per row.
_Rng: TypeAlias = _Rng1 | Sequence[_Rng1] | NDArray[Any]
_Param: TypeAlias = float | ArrayLike | None

def gumbel_argmax(
    logits: ArrayLike, axis: int = -1, *, temperature: float = 1.0, rng: _Rng = None
) -> NDArray[np.intp] | np.intp: ...
def gumbel_topk(
    logits: ArrayLike, k: int, axis: int = -1, *, temperature: float = 1.0, rng: _Rng = None
) -> NDArray[np.intp]: ...
def gumbel_softmax(
    logits: ArrayLike,
    axis: int = -1,
    *,
    tau: float = 1.0,
    hard: bool = False,
    rng: _Rng = None,
    out: _Out | None = None,
) -> NDArray[np.floating[Any]]: ...
@overload
def sample(
    logits: ArrayLike,
    axis: int = -1,
    *,
    temperature: float | ArrayLike = 1.0,
    top_k: int | ArrayLike | None = None,
    top_p: _Param = None,
    min_p: _Param = None,
    rng: _Rng = None,
    logprobs: None = None,
) -> NDArray[np.intp] | np.intp: ...
@overload
def sample(
    logits: ArrayLike,
    axis: int = -1,
    *,
    temperature: float | ArrayLike = 1.0,
    top_k: int | ArrayLike | None = None,
    top_p: _Param = None,
    min_p: _Param = None,
    rng: _Rng = None,
    logprobs: Literal["raw", "processed"],
) -> tuple[NDArray[np.intp] | np.intp, NDArray[np.floating[Any]] | np.floating[Any]]: ...
def topk(x: ArrayLike, k: int, axis: int = -1) -> tuple[NDArray[np.floating[Any]], NDArray[np.intp]]: ...
def isa() -> Literal["avx512", "avx2", "neon", "scalar"]: ...
def available_isas() -> list[str]: ...
def use_isa(name: str) -> AbstractContextManager[str]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
@overload
def show_runtime(*, as_dict: Literal[False] = False) -> None: ...
@overload
def show_runtime(*, as_dict: Literal[True]) -> dict[str, Any]: ...
