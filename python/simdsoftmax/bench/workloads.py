"""What is timed: the input arrays, and the registry of benchmarked functions.

Adding a function is one BenchFunction entry: its traffic per algorithm
(which also defines its roofline bound), how to call it on a Workload, and
optionally how each peer computes the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import simdsoftmax as ssm

from .. import _core
from . import peers as p
from .sizes import MiB

# The extension's names (defined once, in C++), `auto` last: the tables list
# the algorithms it chooses from before its choice.
ALGORITHMS = (*(a for a in _core.ALGORITHMS if a != "auto"), "auto")

PROBES = {  # probe -> (reads, writes) it streams
    "read": (1, 0),
    "copy": (1, 1),
    "write": (0, 1),
}

# The row-length sweep (--rows-sweep): class logits, mixture responsibilities,
# MoE gates, attention rows and LLM vocabularies, each as a batch of about
# DEFAULT_BATCH_ELEMENTS elements (16 MiB of float32: past L2, inside a
# server's L3) unless --batch-elements says otherwise (64Mi: out of cache).
ROW_LENGTHS = (2, 3, 5, 8, 10, 16, 32, 64, 100, 128, 256, 1000, 1024, 4096, 10000, 151936)
DEFAULT_BATCH_ELEMENTS = 4 * MiB

Call = Callable[[], object]


class Workload:
    """The arrays one shape and dtype is measured on (built once, shared by all calls).

    One contiguous row of `n` elements (`rows` is None: the functions reduce
    the whole 1-D array), or a C-contiguous batch of `rows` x `n` reduced
    along the last axis. Buffers are 64-byte aligned: NumPy only promises 16,
    and whether a row starts on a cache line changes the speed of SIMD loads,
    so pin it down.
    """

    def __init__(self, n: int, dtype: np.dtype, seed: int, rows: int | None = None):
        self.n = n
        self.rows = 1 if rows is None else rows
        self.batched = rows is not None
        self.shape = (rows, n) if self.batched else (n,)
        self.elements = self.rows * n
        self.dtype = np.dtype(dtype)
        self.nbytes = self.elements * self.dtype.itemsize
        # Keyword arguments that make every implementation reduce the same
        # axis: nothing for one row (the default reduces it all, as before
        # batches existed), the last axis for a batch.
        self.axis: dict = {"axis": -1} if self.batched else {}
        self.reduce: dict = {"axis": -1, "keepdims": True} if self.batched else {}
        self.rng = np.random.default_rng(seed)
        # Half formats: whole float32 words behind the buffers, so the probes
        # can stream the same bytes as float32 (the half-width bound: the
        # kernels read and write 2 bytes per element).
        words = -(-self.elements * self.dtype.itemsize // 4)
        x_raw = aligned_empty(words * 4 // self.dtype.itemsize, self.dtype)
        out_raw = aligned_empty(words * 4 // self.dtype.itemsize, self.dtype)
        self.x = x_raw[: self.elements].reshape(self.shape)
        # Standard normal logits: every row is ordinary (no special values),
        # so the kernels take their fast path like on real model outputs.
        # Drawn in place: no temporary the size of the input (half formats:
        # drawn in float32 a block at a time and rounded).
        if self.dtype in (np.float32, np.float64):
            self.rng.standard_normal(dtype=self.dtype, out=self.x)
        else:
            flat = self.x.reshape(-1)
            for at in range(0, flat.size, 1 << 20):
                part = flat[at : at + (1 << 20)]
                part[...] = self.rng.standard_normal(part.size, dtype=np.float32).astype(self.dtype)
        self.out = out_raw[: self.elements].reshape(self.shape)
        out_raw.fill(0)  # fault the pages in now, not in the first timed call
        if self.dtype.itemsize < 4:
            x_raw[self.elements :] = 0  # the probes' last word: a finite float32
            self.probe_x, self.probe_out = x_raw.view(np.float32), out_raw.view(np.float32)
        else:
            self.probe_x, self.probe_out = self.x.reshape(-1), self.out.reshape(-1)
        self._scratch: np.ndarray | None = None

    def scratch(self) -> np.ndarray:
        """A second output-sized buffer, for peers that need a temporary."""
        if self._scratch is None:
            self._scratch = aligned_empty(self.elements, self.dtype).reshape(self.shape)
            self._scratch.fill(0)
        return self._scratch


def aligned_empty(n: int, dtype: np.dtype, align: int = 64) -> np.ndarray:
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + align, dtype=np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + n * dtype.itemsize].view(dtype)


@dataclass(frozen=True)
class BenchFunction:
    name: str
    summary: str
    # algorithm -> (reads, writes): whole passes over an array of the input's
    # size. The key None means the function has no algorithm choice.
    traffic: dict
    # (workload, algorithm) -> zero-argument callable that runs it once.
    make: Callable[[Workload, Any], Call]
    # peer name -> (peer module, workload) -> zero-argument callable.
    peers: dict = field(default_factory=dict)

    @property
    def has_algorithms(self) -> bool:
        return None not in self.traffic

    @property
    def min_traffic(self) -> tuple[int, int]:
        """The cheapest algorithm's traffic: what `auto` and the peers are charged."""
        return min(self.traffic.values(), key=lambda rw: (rw[0] + rw[1], rw[1]))

    def available(self) -> bool:
        return callable(getattr(ssm, self.name, None))


def _ssm_softmax(w: Workload, algorithm: str) -> Call:
    fn, x, out, axis = ssm.softmax, w.x, w.out, w.axis
    return lambda: fn(x, out=out, algorithm=algorithm, **axis)


def _ssm_log_softmax(w: Workload, _algorithm) -> Call:
    fn, x, out, axis = ssm.log_softmax, w.x, w.out, w.axis
    return lambda: fn(x, out=out, **axis)


def _ssm_logsumexp(w: Workload, _algorithm) -> Call:
    fn, x, axis = ssm.logsumexp, w.x, w.axis
    return lambda: fn(x, **axis)


def _ssm_gumbel_argmax(w: Workload, _algorithm) -> Call:
    fn, x, rng = ssm.gumbel_argmax, w.x, w.rng
    return lambda: fn(x, rng=rng)


def _ssm_gumbel_topk(w: Workload, _algorithm) -> Call:
    fn, x, rng, k = ssm.gumbel_topk, w.x, w.rng, min(p.GUMBEL_TOPK_K, w.n)
    return lambda: fn(x, k, rng=rng)


def _ssm_gumbel_softmax(w: Workload, _algorithm) -> Call:
    fn, x, rng, out = ssm.gumbel_softmax, w.x, w.rng, w.out
    return lambda: fn(x, rng=rng, out=out)


FUNCTIONS: dict[str, BenchFunction] = {
    f.name: f
    for f in (
        BenchFunction(
            "softmax",
            "softmax of each row, out= preallocated",
            {
                "two-pass": (2, 1),
                "three-pass-recompute": (3, 1),
                "three-pass-reload": (3, 2),
                "online": (2, 1),
                "auto": (2, 1),  # charged the cheapest algorithm: bound = best possible
            },
            _ssm_softmax,
            {"numpy": p.np_softmax, "scipy": p.scipy_call("softmax"), "torch": p.torch_call("softmax")},
        ),
        BenchFunction(
            "log_softmax",
            "log-softmax of each row, out= preallocated",
            {None: (2, 1)},
            _ssm_log_softmax,
            {"numpy": p.np_log_softmax, "scipy": p.scipy_call("log_softmax"), "torch": p.torch_call("log_softmax")},
        ),
        BenchFunction(
            "logsumexp",
            "log-sum-exp of each row (one pass)",
            {None: (1, 0)},
            _ssm_logsumexp,
            {"numpy": p.np_logsumexp, "scipy": p.scipy_call("logsumexp"), "torch": p.torch_call("logsumexp")},
        ),
        BenchFunction(
            "gumbel_argmax",
            "one categorical draw per row; noise never stored (one read)",
            {None: (1, 0)},
            _ssm_gumbel_argmax,
            {"numpy": p.np_gumbel_argmax},
        ),
        BenchFunction(
            "gumbel_topk",
            f"k={p.GUMBEL_TOPK_K} draws without replacement per row (one read)",
            {None: (1, 0)},
            _ssm_gumbel_topk,
            {"numpy": p.np_gumbel_topk},
        ),
        BenchFunction(
            "gumbel_softmax",
            "relaxed sample, noise made once, kept in the output",
            {None: (2, 1)},
            _ssm_gumbel_softmax,
            {"numpy": p.np_gumbel_softmax},
        ),
    )
}
