"""The peers timed side by side with simdsoftmax, on the same arrays.

NumPy's "textbook" (max, exp, sum, divide, written with out= so it times the
arithmetic rather than NumPy's allocator: the fairest NumPy can do), SciPy's
``scipy.special`` and PyTorch on ``torch.from_numpy`` views (no copy). Each
peer function returns a zero-argument callable that runs once on a Workload:
one contiguous row, or a batch of rows reduced along the last axis.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from .workloads import Call, Workload

# gumbel_topk's k, for simdsoftmax and the NumPy peer alike (fewer if the row is shorter).
GUMBEL_TOPK_K = 16


@dataclass(frozen=True)
class Peer:
    name: str
    module: str  # what to import
    distribution: str  # for the version and the install hint
    note: str

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.distribution) is not None
        except (ImportError, ValueError):
            return False

    def load(self):
        return importlib.import_module(self.module)

    def version(self) -> str:
        mod = importlib.import_module(self.distribution)
        return str(getattr(mod, "__version__", "?"))


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer("numpy", "numpy", "numpy", "textbook max/exp/sum/divide with out= buffers, single-threaded"),
        Peer("scipy", "scipy.special", "scipy", "scipy.special.softmax/log_softmax/logsumexp, single-threaded"),
        Peer("torch", "torch", "torch", "torch.softmax/log_softmax/logsumexp on torch.from_numpy, threads matched"),
    )
}


# -- NumPy textbook. `w.reduce` is {} for one row (reduce everything) and
# axis=-1, keepdims=True for a batch, so the same code serves both.


def np_softmax(np_, w: Workload) -> Call:
    x, out, red = w.x, w.out, w.reduce

    def run():
        m = x.max(**red)
        np_.subtract(x, m, out=out)
        np_.exp(out, out=out)
        s = out.sum(**red)
        np_.divide(out, s, out=out)

    return run


def np_log_softmax(np_, w: Workload) -> Call:
    x, out, tmp, red = w.x, w.out, w.scratch(), w.reduce

    def run():
        m = x.max(**red)
        np_.subtract(x, m, out=out)
        np_.exp(out, out=tmp)
        np_.subtract(out, np_.log(tmp.sum(**red)), out=out)

    return run


def np_logsumexp(np_, w: Workload) -> Call:
    x, tmp, red = w.x, w.scratch(), w.reduce

    def run():
        m = x.max(**red)
        np_.subtract(x, m, out=tmp)
        np_.exp(tmp, out=tmp)
        return np_.log(tmp.sum(**red)) + m

    return run


def _np_gumbel_perturb(np_, w: Workload) -> Callable[[], np.ndarray]:
    """scratch = x + Gumbel noise, with the noise materialized (what NumPy must do)."""
    x, tmp, rng = w.x, w.scratch(), w.rng

    def run():
        rng.random(dtype=tmp.dtype, out=tmp)
        np_.log(tmp, out=tmp)  # log u < 0
        np_.negative(tmp, out=tmp)
        np_.log(tmp, out=tmp)  # log(-log u) = -gumbel
        np_.subtract(x, tmp, out=tmp)
        return tmp

    return run


def np_gumbel_argmax(np_, w: Workload) -> Call:
    perturb = _np_gumbel_perturb(np_, w)
    return lambda: np_.argmax(perturb(), axis=-1)


def np_gumbel_topk(np_, w: Workload) -> Call:
    perturb = _np_gumbel_perturb(np_, w)
    k = min(GUMBEL_TOPK_K, w.n)
    return lambda: np_.argpartition(perturb(), w.n - k, axis=-1)[..., w.n - k :]


def np_gumbel_softmax(np_, w: Workload) -> Call:
    perturb, out, red = _np_gumbel_perturb(np_, w), w.out, w.reduce

    def run():
        z = perturb()
        np_.subtract(z, z.max(**red), out=out)
        np_.exp(out, out=out)
        np_.divide(out, out.sum(**red), out=out)

    return run


def torch_call(fn_name: str) -> Callable[[Any, Workload], Call]:
    def make(torch, w: Workload) -> Call:
        t = torch.from_numpy(w.x)  # shares memory: same input as everyone else
        fn = getattr(torch, fn_name)
        return lambda: fn(t, -1)

    return make


def scipy_call(fn_name: str) -> Callable[[Any, Workload], Call]:
    def make(special, w: Workload) -> Call:
        fn, x, axis = getattr(special, fn_name), w.x, w.axis
        return lambda: fn(x, **axis)

    return make
