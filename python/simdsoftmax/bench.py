"""simdsoftmax-bench: memory-bandwidth benchmark with a same-run roofline.

Sweeps input sizes from L1-resident to far beyond the last-level cache and
times each function / algorithm / kernel set / dtype / thread count asked for.
Every kernel time is set against a *bound* composed from the extension's own
bandwidth probes (``_core.probe_read`` / ``probe_copy`` / ``probe_write``),
timed at the same size, dtype and kernel set, interleaved with the kernels in
the same run: efficiency = bound time / measured time.

Run ``simdsoftmax-bench --help`` for the options, ``--list`` for what this
build and machine can measure and for the fields of the JSON/CSV records.
Also runnable as ``python -m simdsoftmax.bench``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

import simdsoftmax as ssm
from simdsoftmax import _core

PROG = "simdsoftmax-bench"

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# Timing policy. A timed sample is a batch of back-to-back calls lasting at
# least MIN_SAMPLE_NS, so timer resolution and loop overhead stay below ~0.1%
# even for L1-resident inputs that take a microsecond. The sample count adapts
# to --time-per-point, within [MIN_REPEATS, MAX_REPEATS]: large inputs (one
# call is tens of ms) get the minimum, which is plenty because their spread is
# small; small ones get many cheap samples so the median is stable.
MIN_SAMPLE_NS = 1_000_000
MAX_INNER = 1_000_000
MIN_REPEATS = 5
MAX_REPEATS = 100
DEFAULT_TIME_PER_POINT = 0.2

# The default sweep: x4 steps from 1 KiB up to max(4 x LLC, 256 MiB), but
# never more than 1/MEMORY_FRACTION of the available memory (the input, the
# output and a peer's temporaries must fit next to what others are running).
DEFAULT_MIN_BYTES = 1 * KiB
DEFAULT_STEP = 4
DEFAULT_FLOOR_MAX_BYTES = 256 * MiB
MEMORY_FRACTION = 8
# Arrays alive at once, in units of the input size: x and out, plus (with
# peers) a scratch buffer for the NumPy textbook and the temporaries SciPy and
# torch allocate per call.
ARRAYS_NO_PEERS = 2
ARRAYS_WITH_PEERS = 5

ALGORITHMS = ("two-pass", "three-pass-recompute", "three-pass-reload", "online", "auto")
KNOWN_ISAS = ("avx512", "avx2", "neon", "scalar")
DTYPES = {"float32": np.float32, "float64": np.float64}
DTYPE_ALIASES = {"f32": "float32", "single": "float32", "f64": "float64", "double": "float64"}


class UsageError(Exception):
    """Bad command line: reported as one line on stderr, exit status 2."""


# --------------------------------------------------------------------------
# Registry of benchmarked functions and peers.
#
# Adding a function is one BenchFunction entry: its traffic per algorithm
# (which also defines its roofline bound), how to call it on a Workload, and
# optionally how each peer computes the same thing.
# --------------------------------------------------------------------------


class Workload:
    """The arrays one size and dtype is measured on (built once, shared by all calls).

    Buffers are 64-byte aligned: NumPy only promises 16, and whether a row
    starts on a cache line changes the speed of SIMD loads, so pin it down.
    """

    def __init__(self, n: int, dtype: np.dtype, seed: int):
        self.n = n
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.x = aligned_empty(n, self.dtype)
        # Standard normal logits: every row is ordinary (no special values),
        # so the kernels take their fast path like on real model outputs.
        # Drawn in place: no temporary the size of the input.
        self.rng.standard_normal(dtype=self.dtype, out=self.x)
        self.out = aligned_empty(n, self.dtype)
        self.out.fill(0)  # fault the pages in now, not in the first timed call
        self._scratch: np.ndarray | None = None

    def scratch(self) -> np.ndarray:
        """A second output-sized buffer, for peers that need a temporary."""
        if self._scratch is None:
            self._scratch = aligned_empty(self.n, self.dtype)
            self._scratch.fill(0)
        return self._scratch


def aligned_empty(n: int, dtype: np.dtype, align: int = 64) -> np.ndarray:
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + align, dtype=np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + n * dtype.itemsize].view(dtype)


Call = Callable[[], object]


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


# -- NumPy "textbook" peers: max, exp, sum, divide; written with out= so they
# time the arithmetic, not NumPy's allocator (the fairest NumPy can do).


def _np_softmax(np_, w: Workload) -> Call:
    x, out = w.x, w.out

    def run():
        m = x.max()
        np_.subtract(x, m, out=out)
        np_.exp(out, out=out)
        s = out.sum()
        np_.divide(out, s, out=out)

    return run


def _np_log_softmax(np_, w: Workload) -> Call:
    x, out, tmp = w.x, w.out, w.scratch()

    def run():
        m = x.max()
        np_.subtract(x, m, out=out)
        np_.exp(out, out=tmp)
        np_.subtract(out, np_.log(tmp.sum()), out=out)

    return run


def _np_logsumexp(np_, w: Workload) -> Call:
    x, tmp = w.x, w.scratch()

    def run():
        m = x.max()
        np_.subtract(x, m, out=tmp)
        np_.exp(tmp, out=tmp)
        return np_.log(tmp.sum()) + m

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


def _np_gumbel_argmax(np_, w: Workload) -> Call:
    perturb = _np_gumbel_perturb(np_, w)
    return lambda: np_.argmax(perturb())


GUMBEL_TOPK_K = 16


def _np_gumbel_topk(np_, w: Workload) -> Call:
    perturb = _np_gumbel_perturb(np_, w)
    k = min(GUMBEL_TOPK_K, w.n)
    return lambda: np_.argpartition(perturb(), w.n - k)[w.n - k :]


def _np_gumbel_softmax(np_, w: Workload) -> Call:
    perturb, out = _np_gumbel_perturb(np_, w), w.out

    def run():
        z = perturb()
        np_.subtract(z, z.max(), out=out)
        np_.exp(out, out=out)
        np_.divide(out, out.sum(), out=out)

    return run


def _torch_call(fn_name: str) -> Callable[[Any, Workload], Call]:
    def make(torch, w: Workload) -> Call:
        t = torch.from_numpy(w.x)  # shares memory: same input as everyone else
        fn = getattr(torch, fn_name)
        return lambda: fn(t, 0)

    return make


def _scipy_call(fn_name: str) -> Callable[[Any, Workload], Call]:
    def make(special, w: Workload) -> Call:
        fn, x = getattr(special, fn_name), w.x
        return lambda: fn(x)

    return make


def _ssm_softmax(w: Workload, algorithm: str) -> Call:
    fn, x, out = ssm.softmax, w.x, w.out
    return lambda: fn(x, out=out, algorithm=algorithm)


def _ssm_log_softmax(w: Workload, _algorithm) -> Call:
    fn, x, out = ssm.log_softmax, w.x, w.out
    return lambda: fn(x, out=out)


def _ssm_logsumexp(w: Workload, _algorithm) -> Call:
    fn, x = ssm.logsumexp, w.x
    return lambda: fn(x)


def _ssm_gumbel_argmax(w: Workload, _algorithm) -> Call:
    fn, x, rng = ssm.gumbel_argmax, w.x, w.rng
    return lambda: fn(x, rng=rng)


def _ssm_gumbel_topk(w: Workload, _algorithm) -> Call:
    fn, x, rng, k = ssm.gumbel_topk, w.x, w.rng, min(GUMBEL_TOPK_K, w.n)
    return lambda: fn(x, k, rng=rng)


def _ssm_gumbel_softmax(w: Workload, _algorithm) -> Call:
    fn, x, rng, out = ssm.gumbel_softmax, w.x, w.rng, w.out
    return lambda: fn(x, rng=rng, out=out)


FUNCTIONS: dict[str, BenchFunction] = {
    f.name: f
    for f in (
        BenchFunction(
            "softmax",
            "softmax of the whole array, out= preallocated",
            {
                "two-pass": (2, 1),
                "three-pass-recompute": (3, 1),
                "three-pass-reload": (3, 2),
                "online": (2, 1),
                "auto": (2, 1),  # charged the cheapest algorithm: bound = best possible
            },
            _ssm_softmax,
            {"numpy": _np_softmax, "scipy": _scipy_call("softmax"), "torch": _torch_call("softmax")},
        ),
        BenchFunction(
            "log_softmax",
            "log-softmax of the whole array, out= preallocated",
            {None: (2, 1)},
            _ssm_log_softmax,
            {"numpy": _np_log_softmax, "scipy": _scipy_call("log_softmax"), "torch": _torch_call("log_softmax")},
        ),
        BenchFunction(
            "logsumexp",
            "log-sum-exp of the whole array (one pass)",
            {None: (1, 0)},
            _ssm_logsumexp,
            {"numpy": _np_logsumexp, "scipy": _scipy_call("logsumexp"), "torch": _torch_call("logsumexp")},
        ),
        BenchFunction(
            "gumbel_argmax",
            "one categorical draw; noise never stored (one read)",
            {None: (1, 0)},
            _ssm_gumbel_argmax,
            {"numpy": _np_gumbel_argmax},
        ),
        BenchFunction(
            "gumbel_topk",
            f"k={GUMBEL_TOPK_K} draws without replacement (one read)",
            {None: (1, 0)},
            _ssm_gumbel_topk,
            {"numpy": _np_gumbel_topk},
        ),
        BenchFunction(
            "gumbel_softmax",
            "relaxed sample, noise regenerated in both passes",
            {None: (2, 1)},
            _ssm_gumbel_softmax,
            {"numpy": _np_gumbel_softmax},
        ),
    )
}


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

PROBES = {  # probe -> (reads, writes) it streams
    "read": (1, 0),
    "copy": (1, 1),
    "write": (0, 1),
}


# --------------------------------------------------------------------------
# Output record: one per measurement. The names and meanings here are the
# documented JSON/CSV schema (also printed by --list, and in the README).
# --------------------------------------------------------------------------

RECORD_FIELDS: dict[str, str] = {
    "impl": "who ran it: 'simdsoftmax', a peer ('numpy', 'scipy', 'torch') or 'probe'",
    "function": "softmax, log_softmax, logsumexp, gumbel_*; for probes: read, copy or write",
    "algorithm": "softmax algorithm (two-pass, three-pass-recompute, three-pass-reload, online, auto); "
    "null for functions without a choice, peers and probes",
    "isa": "active kernel set (avx512, avx2, scalar); null for peers",
    "dtype": "float32 or float64",
    "threads": "simdsoftmax thread count (set_num_threads); torch's is set to match",
    "probe_threads": "threads a probe was split over (probes only, else null)",
    "size_bytes": "input size in bytes",
    "n": "input size in elements (one contiguous 1-D row)",
    "repeats": "timed samples taken (the median is reported)",
    "inner": "back-to-back calls per timed sample",
    "time_s": "median seconds per call",
    "time_min_s": "fastest sample, seconds per call",
    "time_max_s": "slowest sample, seconds per call",
    "reads": "passes that read an input-sized array (traffic model)",
    "writes": "passes that write an input-sized array (traffic model)",
    "traffic_bytes": "(reads + writes) * size_bytes",
    "gbps": "traffic_bytes / time_s / 1e9",
    "elements_per_s": "n / time_s",
    "bound_s": "roofline time: (reads - writes) * read probe + writes * copy probe, same group; "
    "null for probes",
    "efficiency": "bound_s / time_s (1 = streams at probe speed); null for probes",
    **{f"speedup_vs_{p}": f"{p} time / this time at the same size, dtype and threads "
       "(simdsoftmax rows only; null when not measured)" for p in PEERS},
}


# --------------------------------------------------------------------------
# Sizes and machine facts
# --------------------------------------------------------------------------

_UNIT_BYTES = {
    "b": 1,
    "k": KiB, "kib": KiB, "m": MiB, "mib": MiB, "g": GiB, "gib": GiB, "t": 1 << 40, "tib": 1 << 40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}  # fmt: skip


@dataclass(frozen=True)
class Size:
    """A requested size: bytes of input (with a unit) or an element count (plain integer)."""

    value: int
    in_bytes: bool

    def elements(self, dtype: np.dtype) -> int:
        return self.value // np.dtype(dtype).itemsize if self.in_bytes else self.value

    def __str__(self) -> str:
        return format_bytes(self.value) if self.in_bytes else f"{self.value} elements"


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> Size:
    """'64MiB' / '1.5 GiB' / '4KB' -> bytes; '4096' -> 4096 elements."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"cannot read size {text!r} (examples: 1KiB, 64MiB, 1.5GiB, 4096)")
    number, unit = m.group(1), m.group(2).lower()
    if not unit:
        if not number.isdigit():
            raise ValueError(f"element count {text!r} must be a whole number (or give a unit: 1.5MiB)")
        value, in_bytes = int(number), False
    elif unit in _UNIT_BYTES:
        value, in_bytes = int(float(number) * _UNIT_BYTES[unit]), True
    else:
        raise ValueError(f"unknown unit {m.group(2)!r} in {text!r} (use B, KiB, MiB, GiB, KB, MB, GB)")
    if value <= 0:
        raise ValueError(f"size {text!r} must be positive")
    return Size(value, in_bytes)


def parse_sizes(text: str) -> list[Size]:
    """Comma list of sizes and geometric ranges START:STOP[:FACTOR] (factor default 4)."""
    sizes: list[Size] = []
    for token in (t for t in text.split(",") if t.strip()):
        parts = token.split(":")
        if len(parts) == 1:
            sizes.append(parse_size(token))
            continue
        if len(parts) > 3:
            raise ValueError(f"range {token!r} must be START:STOP or START:STOP:FACTOR")
        start, stop = parse_size(parts[0]), parse_size(parts[1])
        if start.in_bytes != stop.in_bytes:
            raise ValueError(f"range {token!r} mixes bytes and element counts")
        try:
            factor = float(parts[2].strip().lstrip("xX")) if len(parts) == 3 else float(DEFAULT_STEP)
        except ValueError:
            raise ValueError(f"range factor in {token!r} must be a number > 1, e.g. 1KiB:1GiB:2") from None
        if not factor > 1:
            raise ValueError(f"range factor in {token!r} must be > 1")
        sizes.extend(Size(v, start.in_bytes) for v in geometric(start.value, stop.value, factor))
    if not sizes:
        raise ValueError("no sizes given")
    return sizes


def geometric(start: int, stop: int, factor: float) -> list[int]:
    """start, start*factor, ... <= stop, plus stop itself if the steps miss it."""
    values, v = [], float(start)
    while v <= stop * (1 + 1e-9):
        values.append(int(round(v)))
        v *= factor
    if values and values[-1] < stop:
        values.append(stop)
    return values


def format_bytes(b: float) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if b >= scale:
            v = b / scale
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.3g} {unit}"
    return f"{int(b)} B"


def format_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.4g} {unit}"
    return f"{s / 1e-9:.4g} ns"


def cache_sizes() -> dict[str, int]:
    """Data/unified cache sizes of CPU 0 by level ('L1d', 'L2', 'L3'), from sysfs or sysconf."""
    caches: dict[str, int] = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(e for e in os.listdir(base) if e.startswith("index"))
    except OSError:
        entries = []
    for entry in entries:
        try:
            with open(f"{base}/{entry}/level") as f:
                level = int(f.read())
            with open(f"{base}/{entry}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/{entry}/size") as f:
                size = parse_size(f.read().strip()).value  # e.g. "32768K"
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        caches[f"L{level}d" if level == 1 else f"L{level}"] = size
    if not caches:  # not Linux sysfs: glibc knows on most Unixes
        for key, name in (("L1d", "SC_LEVEL1_DCACHE_SIZE"), ("L2", "SC_LEVEL2_CACHE_SIZE"),
                          ("L3", "SC_LEVEL3_CACHE_SIZE")):  # fmt: skip
            try:
                value = os.sysconf(name)
            except (ValueError, OSError, AttributeError):
                continue
            if value and value > 0:
                caches[key] = int(value)
    return caches


def last_level_cache(caches: dict[str, int]) -> int:
    # Unknown: assume a large server L3 so the default sweep still leaves it.
    return caches[max(caches, key=lambda k: int(k[1]))] if caches else 64 * MiB


def memory_available() -> int | None:
    """Bytes the kernel says can be allocated without swapping (MemAvailable), if known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_max_bytes(caches: dict[str, int], available: int | None) -> int:
    top = max(4 * last_level_cache(caches), DEFAULT_FLOOR_MAX_BYTES)
    if available:
        top = min(top, available // MEMORY_FRACTION)
    return max(top, DEFAULT_MIN_BYTES)


def cpu_brand() -> str:
    try:
        brand = str(_core.cpu_info().get("brand", "")).strip()
    except Exception:
        brand = ""
    if not brand:
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return brand or platform.processor() or "unknown CPU"


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

EPILOG = f"""\
examples:
  {PROG}                                   default sweep, table on stdout
  {PROG} --sizes 4KiB,1MiB,256MiB --compare numpy,scipy
  {PROG} --functions softmax --algorithms two-pass,three-pass-reload --isa all
  {PROG} --dtypes float32,float64 --threads 1,2 --json out.json --csv out.csv
  {PROG} --plot gbps.png                   needs: pip install simdsoftmax[plot]
  python -m simdsoftmax.bench --list                 functions, kernel sets, peers, fields

how traffic is counted:
  Each pass over an input-sized array counts its size once: a pass that reads
  the input (or the output) is a read, a pass that stores is a write. Per element:
    softmax three-pass-recompute  3 reads + 1 write    bound = 2 x read + copy
    softmax three-pass-reload     3 reads + 2 writes   bound = read + 2 x copy
                                  (the in-place rescale y *= 1/sum is a read+write = copy)
    softmax two-pass, online      2 reads + 1 write    bound = read + copy
    softmax auto                  2 reads + 1 write    (charged the cheapest algorithm)
    log_softmax                   2 reads + 1 write    bound = read + copy
    logsumexp                     1 read               bound = read
  In general bound = (reads - writes) x t_read + writes x t_copy: each write is
  paired with a read and priced as a copy. GB/s = (reads + writes) x size / time,
  1 GB = 1e9 bytes. Cache-line reads caused by stores (write-allocate) are not
  added; the copy probe uses the kernels' own stores, so the bound pays the same
  price. Peers are charged the function's cheapest traffic, like auto.

efficiency:
  bound time / measured time, where t_read and t_copy are the medians of the
  extension's read and copy probes at the same size, dtype, kernel set and
  thread count, timed in this run interleaved with the kernels. 1.0 means the
  function runs as fast as merely streaming its data; below 1 it is limited by
  arithmetic or call overhead. It can exceed 1 for cache-resident sizes: the
  bound adds the per-call overhead of two probe calls, and data can stay in
  cache between passes. three-pass-reload can exceed 1 at any size: its
  in-place rescale touches one array, which streams faster than the copy it is
  priced as. With --threads N > 1 the probes are also timed split over N
  threads and the faster variant sets the bound.

timing:
  Median over repeated samples after --warmup calls; a sample is a batch of
  back-to-back calls lasting >= {MIN_SAMPLE_NS // 1000000} ms. Without --repeats the sample count
  adapts to --time-per-point ({MIN_REPEATS}..{MAX_REPEATS} samples; beyond that, samples get longer).
  Items of one size are measured round-robin so drift hits all of them alike. Ctrl-C stops the sweep and
  prints (and writes) what was measured so far, exit status 130. Bad arguments:
  a one-line error and exit status 2 before anything is measured.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, caught by main()
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Memory-bandwidth benchmark of simdsoftmax's kernels, with a roofline from "
        "bandwidth probes timed in the same run, optional peers (NumPy, SciPy, PyTorch), "
        "a table on stdout, JSON/CSV records and a GB/s-vs-size plot.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--functions", metavar="LIST", default="all",
        help="comma list of functions to time, or 'all' (default: every one this build has). "
        f"Known: {', '.join(FUNCTIONS)}. e.g. --functions softmax,logsumexp",
    )
    p.add_argument(
        "--algorithms", metavar="LIST", default="all",
        help="softmax algorithms, or 'all' (default). Functions without a choice ignore it. "
        f"Known: {', '.join(ALGORITHMS)}. e.g. --algorithms two-pass,auto",
    )
    p.add_argument(
        "--isa", metavar="LIST", default="active",
        help="kernel sets: 'active' (default: the one selected at import, see SIMDSOFTMAX_ISA), "
        "'all' (every one this CPU runs), or names from avx512, avx2, neon, scalar. e.g. --isa avx2,scalar",
    )
    p.add_argument(
        "--dtypes", metavar="LIST", default="float32",
        help="float32 (default), float64, or 'all'. e.g. --dtypes float32,float64",
    )
    p.add_argument(
        "--threads", metavar="LIST", default=None,
        help="simdsoftmax thread counts to run with (default: the current get_num_threads()). "
        "e.g. --threads 1,2",
    )
    p.add_argument(
        "--sizes", metavar="LIST", default=None,
        help="input sizes: bytes with a unit (B, KiB, MiB, GiB; KB, MB, GB are powers of 10), plain "
        "integers are element counts, START:STOP[:FACTOR] is a geometric range (factor 4 if omitted). "
        "Default: 1KiB up to max(4 x last-level cache, 256MiB) in x4 steps, at most 1/8 of the available "
        "memory. e.g. --sizes 1KiB,64MiB,1GiB  or  --sizes 4KiB:1GiB:2  or  --sizes 1000,1000000",
    )
    p.add_argument(
        "--max-bytes", metavar="SIZE", default=None, type=_size_arg,
        help="largest input in bytes: the top of the default sweep; sizes in --sizes above it are "
        "skipped. e.g. --max-bytes 64MiB",
    )
    p.add_argument(
        "--repeats", metavar="N", type=_positive_int, default=None,
        help=f"timed samples per point, fixed (default: adaptive, {MIN_REPEATS}..{MAX_REPEATS} "
        "to fill --time-per-point). e.g. --repeats 3",
    )
    p.add_argument(
        "--warmup", metavar="N", type=_nonnegative_int, default=1,
        help="untimed calls per point before timing (default 1). e.g. --warmup 3",
    )
    p.add_argument(
        "--time-per-point", metavar="SECONDS", type=_positive_float, default=DEFAULT_TIME_PER_POINT,
        help=f"target timing budget per point when --repeats is not given (default {DEFAULT_TIME_PER_POINT}). "
        "e.g. --time-per-point 1",
    )
    p.add_argument(
        "--compare", metavar="LIST", default="",
        help="peers timed on the same inputs: numpy (textbook max/exp/sum/divide), scipy "
        "(scipy.special), torch (threads matched), or 'all'. Missing packages are skipped with a "
        "note. Adds 'vs PEER' speedup columns. e.g. --compare numpy,scipy,torch",
    )
    p.add_argument("--json", metavar="FILE", help="write the run header and all records as JSON. e.g. --json run.json")
    p.add_argument("--csv", metavar="FILE", help="write one CSV row per record. e.g. --csv run.csv")
    p.add_argument(
        "--plot", metavar="FILE",
        help="draw GB/s against size per algorithm with the probes as reference lines (.png, .svg or .pdf); "
        "needs matplotlib: pip install simdsoftmax[plot]. e.g. --plot gbps.png",
    )
    p.add_argument("--seed", metavar="N", type=_nonnegative_int, default=0,
                   help="seed of the random input logits (default 0). e.g. --seed 7")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar and no notes on stderr (errors still print). e.g. --quiet")
    p.add_argument("--list", action="store_true",
                   help="list functions, algorithms, kernel sets, peers and the record fields, then exit")
    p.add_argument("--version", action="version", version=f"{PROG} (simdsoftmax {ssm.__version__})")
    return p


def _size_arg(text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not size.in_bytes:
        raise argparse.ArgumentTypeError(f"{text!r}: give a unit, e.g. 64MiB")
    return size.value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _split(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    return list(dict.fromkeys(items))  # de-duplicate, keep order


# --------------------------------------------------------------------------
# Plan: everything validated before any measurement starts
# --------------------------------------------------------------------------


@dataclass
class Plan:
    functions: list[BenchFunction]
    algorithms: list[str]
    isas: list[str]
    dtypes: list[np.dtype]
    threads: list[int]
    sizes: dict[str, list[int]]  # dtype name -> element counts, ascending
    peers: list[tuple[Peer, Any]]  # (peer, loaded module)
    repeats: int | None
    warmup: int
    time_per_point: float
    seed: int
    quiet: bool
    outputs: dict[str, str]  # "json"/"csv"/"plot" -> path
    caches: dict[str, int]
    memory_available: int | None
    notes: list[str] = field(default_factory=list)

    def groups(self) -> int:
        return sum(len(v) for v in self.sizes.values()) * len(self.threads) * len(self.isas)


def make_plan(args: argparse.Namespace) -> Plan:
    """Turn arguments into a Plan, or raise UsageError. Measures nothing."""
    notes: list[str] = []

    # Functions: unknown names and names this build lacks are both errors.
    if args.functions == "all":
        functions = [f for f in FUNCTIONS.values() if f.available()]
    else:
        functions = []
        for name in _split(args.functions):
            if name not in FUNCTIONS:
                raise UsageError(f"unknown function {name!r}; choose from {', '.join(FUNCTIONS)}")
            if not FUNCTIONS[name].available():
                raise UsageError(f"function {name!r} is not available in simdsoftmax {ssm.__version__}")
            functions.append(FUNCTIONS[name])
    if not functions:
        raise UsageError("no function to benchmark")

    if args.algorithms == "all":
        algorithms = list(ALGORITHMS)
    else:
        algorithms = _split(args.algorithms)
        for a in algorithms:
            if a not in ALGORITHMS:
                raise UsageError(f"unknown algorithm {a!r}; choose from {', '.join(ALGORITHMS)}")
        if not algorithms:
            raise UsageError("no algorithm given")

    supported = list(ssm.available_isas())
    compiled = list(_core.compiled_isas())
    if args.isa == "active":
        isas = [ssm.isa()]
    elif args.isa == "all":
        isas = supported
    else:
        isas = _split(args.isa)
        for name in isas:
            if name not in KNOWN_ISAS and name not in compiled:
                raise UsageError(f"unknown kernel set {name!r}; choose from all, active, {', '.join(KNOWN_ISAS)}")
            if name not in compiled:
                raise UsageError(f"kernel set {name!r} is not compiled into this build (has: {', '.join(compiled)})")
            if name not in supported:
                raise UsageError(f"this CPU cannot run kernel set {name!r} (it can run: {', '.join(supported)})")
        if not isas:
            raise UsageError("no kernel set given")

    names = list(DTYPES) if args.dtypes == "all" else [DTYPE_ALIASES.get(d, d) for d in _split(args.dtypes)]
    for d in names:
        if d not in DTYPES:
            raise UsageError(f"unsupported dtype {d!r}; choose from {', '.join(DTYPES)}")
    if not names:
        raise UsageError("no dtype given")
    dtypes = [np.dtype(DTYPES[d]) for d in dict.fromkeys(names)]

    if args.threads is None:
        threads = [ssm.get_num_threads()]
    else:
        threads = []
        for t in _split(args.threads):
            try:
                threads.append(_positive_int(t))
            except argparse.ArgumentTypeError as e:
                raise UsageError(f"--threads: {e}") from None
        if not threads:
            raise UsageError("no thread count given")
        threads = list(dict.fromkeys(threads))

    peers = []
    requested = list(PEERS) if args.compare.strip() == "all" else _split(args.compare)
    for name in requested:
        if name not in PEERS:
            raise UsageError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
        peer = PEERS[name]
        if not peer.installed():
            notes.append(f"{name} is not installed: its columns are left out (pip install {peer.distribution})")
            continue
        try:
            peers.append((peer, peer.load()))
        except Exception as e:  # a broken install is a note, not a reason to refuse the run
            notes.append(f"{name} failed to import ({type(e).__name__}: {e}): its columns are left out")

    outputs = {k: getattr(args, k) for k in ("json", "csv", "plot") if getattr(args, k)}
    for option, path in outputs.items():
        check_writable(path, f"--{option}")
    if "plot" in outputs:
        if os.path.splitext(outputs["plot"])[1].lower() not in (".png", ".svg", ".pdf"):
            raise UsageError(f"--plot {outputs['plot']!r}: the file name must end in .png, .svg or .pdf")
        if not have_module("matplotlib"):
            raise UsageError("--plot needs matplotlib, which is not installed: pip install simdsoftmax[plot]")

    caches = cache_sizes()
    available = memory_available()
    max_bytes = args.max_bytes
    if args.sizes is None:
        top = max_bytes if max_bytes is not None else default_max_bytes(caches, available)
        requested_sizes = [Size(b, True) for b in geometric(DEFAULT_MIN_BYTES, max(top, DEFAULT_MIN_BYTES), DEFAULT_STEP)]
        if top < DEFAULT_MIN_BYTES:
            requested_sizes = [Size(top, True)]
    else:
        try:
            requested_sizes = parse_sizes(args.sizes)
        except ValueError as e:
            raise UsageError(f"--sizes: {e}") from None

    arrays = ARRAYS_WITH_PEERS if peers else ARRAYS_NO_PEERS
    sizes: dict[str, list[int]] = {}
    for dtype in dtypes:
        counts = set()
        for s in requested_sizes:
            n = s.elements(dtype)
            if n < 1:
                raise UsageError(f"size {s} is smaller than one {dtype.name} element")
            nbytes = n * dtype.itemsize
            if max_bytes is not None and nbytes > max_bytes:
                notes.append(f"skipping {format_bytes(nbytes)} of {dtype.name}: above --max-bytes {format_bytes(max_bytes)}")
                continue
            need = arrays * nbytes
            if available is not None and need > 0.9 * available:
                raise UsageError(
                    f"size {format_bytes(nbytes)} of {dtype.name} needs about {format_bytes(need)} of memory "
                    f"({arrays} arrays), but only {format_bytes(available)} is available"
                )
            counts.add(n)
        sizes[dtype.name] = sorted(counts)
    if not any(sizes.values()):
        raise UsageError("no size left to measure (all above --max-bytes?)")

    return Plan(
        functions=functions, algorithms=algorithms, isas=isas, dtypes=dtypes, threads=threads,
        sizes=sizes, peers=peers, repeats=args.repeats, warmup=args.warmup,
        time_per_point=args.time_per_point, seed=args.seed, quiet=args.quiet, outputs=outputs,
        caches=caches, memory_available=available, notes=notes,
    )  # fmt: skip


def check_writable(path: str, option: str) -> None:
    """Refuse an output path we could not write, before spending minutes measuring."""
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise UsageError(f"{option} {path!r} is a directory")
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        raise UsageError(f"{option} {path!r}: directory {parent!r} does not exist")
    if os.path.exists(full):
        if not os.access(full, os.W_OK):
            raise UsageError(f"{option} {path!r} is not writable")
    elif not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path!r}: directory {parent!r} is not writable")


def have_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------


@dataclass
class Item:
    """One thing timed at one size: a kernel, a peer or a probe."""

    impl: str
    function: str
    algorithm: str | None
    call: Call
    reads: int
    writes: int
    probe_threads: int | None = None
    inner: int = 1
    repeats: int = 0
    samples: list[float] = field(default_factory=list)  # seconds per call


def time_batch(call: Call, inner: int) -> int:
    """Nanoseconds for `inner` back-to-back calls."""
    start = time.perf_counter_ns()
    for _ in range(inner):
        call()
    return time.perf_counter_ns() - start


def calibrate(item: Item, min_sample_ns: int) -> float:
    """Set item.inner so a sample lasts >= min_sample_ns; return seconds per sample."""
    inner = 1
    while True:
        elapsed = time_batch(item.call, inner)
        if elapsed >= min_sample_ns or inner >= MAX_INNER:
            break
        # Aim 20% past the target so the next try usually lands.
        inner = min(MAX_INNER, max(2 * inner, math.ceil(inner * 1.2 * min_sample_ns / max(elapsed, 1))))
    item.inner = inner
    return elapsed / 1e9


def probe_calls(work: Workload, threads: int, pool: ThreadPoolExecutor | None) -> dict[str, Call]:
    """The probes on this workload, run on one thread or split over `threads` (GIL released)."""
    x, out = work.x, work.out
    if threads == 1 or pool is None:
        return {
            "read": lambda: _core.probe_read(x),
            "copy": lambda: _core.probe_copy(x, out),
            "write": lambda: _core.probe_write(out, 0.0),
        }
    # Contiguous chunks starting on cache lines, one per thread; the calling
    # thread takes the first so only threads-1 tasks go through the pool.
    per_line = 64 // x.itemsize
    chunk = math.ceil(math.ceil(x.size / threads) / per_line) * per_line
    bounds = [(i, min(i + chunk, x.size)) for i in range(0, x.size, chunk)]
    xs = [x[a:b] for a, b in bounds]
    outs = [out[a:b] for a, b in bounds]

    def split(fn, *arrays_lists, extra=()):
        jobs = list(zip(*arrays_lists))

        def run():
            futures = [pool.submit(fn, *job, *extra) for job in jobs[1:]]
            fn(*jobs[0], *extra)
            for f in futures:
                f.result()

        return run

    return {
        "read": split(_core.probe_read, xs),
        "copy": split(_core.probe_copy, xs, outs),
        "write": split(_core.probe_write, outs, extra=(0.0,)),
    }


class Progress:
    """tqdm bar on stderr when it is a terminal; silent otherwise (or with --quiet)."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled and total > 0:
            try:
                from tqdm import tqdm
            except ImportError:  # a declared dependency, but a bar is not worth failing for
                return
            self.bar = tqdm(total=total, file=sys.stderr, leave=False, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}")  # fmt: skip

    def describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)

    def advance(self, amount: float) -> None:
        if self.bar is not None:
            self.bar.update(amount)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Sweep:
    """Runs a Plan; `records` holds what has been measured, also after Ctrl-C."""

    def __init__(self, plan: Plan, progress: Progress, warn: Callable[[str], None]):
        self.plan = plan
        self.progress = progress
        self.warn = warn
        self.records: list[dict] = []

    def run(self) -> None:
        plan = self.plan
        with ExitStack() as restore:
            restore.enter_context(_keep_threads())
            # The NumPy Gumbel peer takes log(0) once in ~2^24 draws: harmless
            # (that element gets no chance), but not worth a warning mid-table.
            restore.enter_context(np.errstate(divide="ignore", over="ignore", invalid="ignore"))
            torch = next((mod for peer, mod in plan.peers if peer.name == "torch"), None)
            if torch is not None:
                restore.enter_context(_keep_torch_threads(torch))
            for dtype in plan.dtypes:
                for n in plan.sizes[dtype.name]:
                    work = Workload(n, dtype, plan.seed)
                    for threads in plan.threads:
                        _set_threads(threads, torch)
                        pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
                        try:
                            for i, isa in enumerate(plan.isas):
                                with ssm.use_isa(isa):
                                    # Peers do not depend on the kernel set: time them once.
                                    self.measure_group(work, isa, threads, pool, with_peers=(i == 0))
                        finally:
                            if pool is not None:
                                pool.shutdown()
                    del work  # free this size before allocating the next

    def build_items(self, work: Workload, threads: int, pool, with_peers: bool) -> list[Item]:
        plan = self.plan
        items = []
        variants = [1] if threads == 1 else [1, threads]
        for probe_threads in variants:
            calls = probe_calls(work, probe_threads, pool)
            for name, (reads, writes) in PROBES.items():
                items.append(Item("probe", name, None, calls[name], reads, writes, probe_threads))
        for fn in plan.functions:
            algorithms = plan.algorithms if fn.has_algorithms else [None]
            for algorithm in algorithms:
                reads, writes = fn.traffic[algorithm]
                items.append(Item("simdsoftmax", fn.name, algorithm, fn.make(work, algorithm), reads, writes))
            if with_peers:
                for peer, module in plan.peers:
                    make = fn.peers.get(peer.name)
                    if make is None:
                        continue
                    try:
                        call = make(module, work)
                    except Exception as e:  # e.g. an old peer version without this function
                        self.warn(f"{peer.name} {fn.name}: {type(e).__name__}: {e}; skipped")
                        continue
                    reads, writes = fn.min_traffic
                    items.append(Item(peer.name, fn.name, None, call, reads, writes))
        return items

    def measure_group(self, work: Workload, isa: str, threads: int, pool, with_peers: bool) -> None:
        plan = self.plan
        label = f"{work.dtype.name} {format_bytes(work.n * work.dtype.itemsize)} {isa} x{threads}"
        self.progress.describe(label)
        items = self.build_items(work, threads, pool, with_peers)
        context = dict(isa=isa, dtype=work.dtype.name, threads=threads, size_bytes=work.n * work.dtype.itemsize, n=work.n)
        # Adaptive mode spends --time-per-point on MAX_REPEATS samples at most:
        # once the count is capped, longer samples use the rest of the budget.
        min_sample_ns = MIN_SAMPLE_NS
        if plan.repeats is None:
            min_sample_ns = max(MIN_SAMPLE_NS, int(plan.time_per_point * 1e9 / MAX_REPEATS))
        gc_was_enabled = gc.isenabled()
        gc.disable()  # a collection landing in one sample would skew it, as timeit knows
        try:
            live = []
            for item in items:
                try:
                    for _ in range(plan.warmup):
                        item.call()
                    sample_s = calibrate(item, min_sample_ns)
                except Exception as e:  # a failing peer or kernel: report it, measure the rest
                    self.warn(f"{item.impl} {item.function} {item.algorithm or ''} failed at {label}: "
                              f"{type(e).__name__}: {e}; skipped")  # fmt: skip
                    continue
                if plan.repeats is not None:
                    item.repeats = plan.repeats
                else:
                    wanted = round(plan.time_per_point / max(sample_s, 1e-9))
                    item.repeats = min(MAX_REPEATS, max(MIN_REPEATS, wanted))
                live.append(item)
            rounds = max((item.repeats for item in live), default=0)
            for r in range(rounds):
                # Rotate the starting item so none always follows the same
                # neighbour (whose cache footprint it would inherit).
                start = r % len(live)
                for item in live[start:] + live[:start]:
                    if len(item.samples) < item.repeats:
                        item.samples.append(time_batch(item.call, item.inner) / item.inner / 1e9)
                self.progress.advance(1 / rounds)
            if rounds == 0:
                self.progress.advance(1)
        finally:
            if gc_was_enabled:
                gc.enable()
            # Also on Ctrl-C: whatever has samples is reported.
            self.records.extend(group_records(items, context))


def group_records(items: list[Item], context: dict) -> list[dict]:
    """Records for one group; kernels' bounds come from this group's probes."""
    best: dict[str, float] = {}
    for item in items:
        if item.impl == "probe" and item.samples:
            t = statistics.median(item.samples)
            best[item.function] = min(t, best.get(item.function, math.inf))
    records = []
    for item in items:
        if not item.samples:
            continue
        t = statistics.median(item.samples)
        size = context["size_bytes"]
        traffic = (item.reads + item.writes) * size
        bound = None
        if item.impl != "probe":
            need_read = item.reads - item.writes
            if (need_read == 0 or "read" in best) and (item.writes == 0 or "copy" in best):
                bound = need_read * best.get("read", 0.0) + item.writes * best.get("copy", 0.0)
        rec = dict.fromkeys(RECORD_FIELDS)
        rec.update(
            impl=item.impl,
            function=item.function,
            algorithm=item.algorithm,
            isa=None if item.impl in PEERS else context["isa"],
            dtype=context["dtype"],
            threads=context["threads"],
            probe_threads=item.probe_threads if item.impl == "probe" else None,
            size_bytes=size,
            n=context["n"],
            repeats=len(item.samples),
            inner=item.inner,
            time_s=t,
            time_min_s=min(item.samples),
            time_max_s=max(item.samples),
            reads=item.reads,
            writes=item.writes,
            traffic_bytes=traffic,
            gbps=traffic / t / 1e9,
            elements_per_s=context["n"] / t,
            bound_s=bound,
            efficiency=None if bound is None else bound / t,
        )
        records.append(rec)
    return records


def add_speedups(records: list[dict]) -> None:
    """speedup_vs_PEER = peer time / simdsoftmax time at the same function, dtype, threads and size."""
    peer_time = {
        (r["impl"], r["function"], r["dtype"], r["threads"], r["n"]): r["time_s"]
        for r in records
        if r["impl"] in PEERS
    }
    for r in records:
        if r["impl"] != "simdsoftmax":
            continue
        for p in PEERS:
            t = peer_time.get((p, r["function"], r["dtype"], r["threads"], r["n"]))
            r[f"speedup_vs_{p}"] = None if t is None else t / r["time_s"]


@contextmanager
def _keep_threads() -> Iterator[None]:
    before = ssm.get_num_threads()
    try:
        yield
    finally:
        ssm.set_num_threads(before)


@contextmanager
def _keep_torch_threads(torch) -> Iterator[None]:
    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _set_threads(threads: int, torch) -> None:
    ssm.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def collect_runtime(plan: Plan) -> dict:
    """Everything needed to compare two runs: machine, build, versions, settings."""
    try:
        info = ssm.show_runtime(as_dict=True)
    except Exception:  # the report must not stop a benchmark
        info = {}
    info = dict(info or {})
    info.setdefault("simdsoftmax", getattr(ssm, "__version__", "?"))
    info.setdefault("numpy", np.__version__)
    info.setdefault("python", sys.version.split()[0])
    info.setdefault("platform", platform.platform())
    cpu = dict(info.get("cpu") or {})
    cpu["brand"] = cpu.get("brand") or cpu_brand()
    cpu["logical_cpus"] = os.cpu_count()
    if hasattr(os, "sched_getaffinity"):
        cpu["usable_cpus"] = len(os.sched_getaffinity(0))
    cpu["caches"] = dict(plan.caches)
    info["cpu"] = cpu
    info.setdefault("kernel_sets", {
        "compiled": list(_core.compiled_isas()),
        "supported": list(ssm.available_isas()),
        "active": ssm.isa(),
    })  # fmt: skip
    info["num_threads"] = ssm.get_num_threads()
    info["memory_available_bytes"] = plan.memory_available
    info["peers"] = {peer.name: peer.version() for peer, _ in plan.peers}
    info["date_utc"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return info


def format_header(runtime: dict, plan: Plan) -> str:
    cpu, sets = runtime.get("cpu", {}), runtime.get("kernel_sets", {})
    caches = ", ".join(f"{k} {format_bytes(v)}" for k, v in cpu.get("caches", {}).items()) or "unknown"
    mem = format_bytes(plan.memory_available) if plan.memory_available else "unknown"
    usable = cpu.get("usable_cpus", cpu.get("logical_cpus"))
    lines = [
        f"{PROG}: simdsoftmax {runtime.get('simdsoftmax')}, numpy {runtime.get('numpy')}, "
        f"Python {runtime.get('python')}, {runtime.get('platform')}",
        f"CPU: {cpu.get('brand')} ({usable} CPUs usable); caches {caches}; {mem} memory available",
        f"CPU features: {' '.join(cpu.get('features', [])) or 'unknown'}",
        f"kernel sets: compiled {' '.join(sets.get('compiled', []))}; runnable {' '.join(sets.get('supported', []))}; "
        f"active {sets.get('active')}" + (" (forced by SIMDSOFTMAX_ISA)" if sets.get("forced_by_env") else ""),
        f"threads: {runtime.get('num_threads')} now; measured with {', '.join(map(str, plan.threads))}; "
        "probes run on 1 thread (and on N threads when N > 1)",
    ]
    algos = f" [{', '.join(plan.algorithms)}]" if any(f.has_algorithms for f in plan.functions) else ""
    size_text = "; ".join(
        f"{d}: {len(ns)} sizes {format_bytes(ns[0] * np.dtype(d).itemsize)}..{format_bytes(ns[-1] * np.dtype(d).itemsize)}"
        for d, ns in plan.sizes.items()
        if ns
    )
    lines.append(f"functions: {', '.join(f.name for f in plan.functions)}{algos}")
    lines.append(f"kernel sets measured: {', '.join(plan.isas)}; dtypes: {', '.join(d.name for d in plan.dtypes)}; {size_text}")
    timing = f"{plan.repeats} samples" if plan.repeats else f"~{plan.time_per_point:g} s per point"
    peers = ", ".join(f"{p.name} {runtime['peers'][p.name]}" for p, _ in plan.peers) or "none"
    lines.append(f"timing: median, {timing}, {plan.warmup} warm-up; peers: {peers}; {runtime.get('date_utc')}")
    return "\n".join(lines)


def render_table(header: list[str], rows: list[list[str]], left: int = 0) -> str:
    """Aligned text table: the first `left` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_tables(records: list[dict]) -> str:
    if not records:
        return "(nothing was measured)"
    blocks = []
    peers_present = [p for p in PEERS if any(r["impl"] == p for r in records)]
    for dtype, threads in dict.fromkeys((r["dtype"], r["threads"]) for r in records):
        probes = [r for r in records if r["impl"] == "probe" and r["dtype"] == dtype and r["threads"] == threads]
        if probes:
            rows = {}
            for r in probes:
                key = (r["size_bytes"], r["isa"], r["probe_threads"])
                rows.setdefault(key, {})[r["function"]] = r
            table = []
            for (size, isa, pt), by in rows.items():
                read = by.get("read")
                table.append([
                    format_bytes(size), isa, str(pt),
                    format_seconds(read["time_s"]) if read else "-",
                    *(_num(by[p]["gbps"], ".2f") if p in by else "-" for p in PROBES),
                ])  # fmt: skip
            title = f"== bandwidth probes: {dtype}, {threads} thread(s) (copy counts read + write) =="
            blocks.append(title + "\n" + render_table(
                ["size", "isa", "thr", "read time", "read GB/s", "copy GB/s", "write GB/s"], table, left=3))
        functions = list(dict.fromkeys(r["function"] for r in records if r["impl"] != "probe"))
        for fn in functions:
            rows_ = [r for r in records if r["impl"] != "probe" and r["function"] == fn
                     and r["dtype"] == dtype and r["threads"] == threads]  # fmt: skip
            if not rows_:
                continue
            header = ["size", "n", "isa", "algorithm", "time", "GB/s", "Gelem/s", "eff"]
            header += [f"vs {p}" for p in peers_present]
            table, last_size = [], None
            for size in sorted(dict.fromkeys(r["size_bytes"] for r in rows_)):
                at_size = [r for r in rows_ if r["size_bytes"] == size]
                # simdsoftmax rows first, then peers, each in measurement order
                at_size.sort(key=lambda r: r["impl"] != "simdsoftmax")
                for r in at_size:
                    first = size != last_size
                    last_size = size
                    name = r["algorithm"] or ("-" if r["impl"] == "simdsoftmax" else f"[{r['impl']}]")
                    table.append([
                        format_bytes(size) if first else "",
                        str(r["n"]) if first else "",
                        r["isa"] or "",
                        name,
                        format_seconds(r["time_s"]),
                        _num(r["gbps"], ".2f"),
                        _num(r["elements_per_s"] / 1e9, ".3f"),
                        _num(r["efficiency"], ".2f"),
                        *(_num(r.get(f"speedup_vs_{p}"), ".2f") + ("x" if r.get(f"speedup_vs_{p}") else "")
                          for p in peers_present),
                    ])  # fmt: skip
            blocks.append(f"== {fn}: {dtype}, {threads} thread(s) ==\n" + render_table(header, table, left=4))
    return "\n\n".join(blocks)


def write_json(path: str, runtime: dict, plan: Plan, records: list[dict], interrupted: bool, argv: list[str]) -> None:
    doc = {
        "schema": "simdsoftmax-bench/1",
        "runtime": runtime,
        "config": {
            "argv": argv,
            "functions": [f.name for f in plan.functions],
            "algorithms": plan.algorithms,
            "isas": plan.isas,
            "dtypes": [d.name for d in plan.dtypes],
            "threads": plan.threads,
            "sizes_elements": plan.sizes,
            "peers": [p.name for p, _ in plan.peers],
            "repeats": plan.repeats,
            "warmup": plan.warmup,
            "time_per_point_s": plan.time_per_point,
            "seed": plan.seed,
        },
        "interrupted": interrupted,
        "fields": RECORD_FIELDS,
        "records": records,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def write_csv(path: str, records: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(RECORD_FIELDS))
        writer.writeheader()
        for r in records:
            writer.writerow({k: ("" if v is None else v) for k, v in r.items()})


def write_plot(path: str, records: list[dict], runtime: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    work = [r for r in records if r["impl"] != "probe"]
    probes = [r for r in records if r["impl"] == "probe"]
    functions = list(dict.fromkeys(r["function"] for r in work)) or ["(probes only)"]
    # Label series only by the parameters that vary in this run.
    ours = [r for r in records if r["impl"] == "simdsoftmax"] or work
    varying = [k for k in ("isa", "dtype", "threads") if len({r[k] for r in ours}) > 1]

    fig, axes = plt.subplots(len(functions), 1, figsize=(9, 3.9 * len(functions)), squeeze=False, sharex=True)
    sizes = sorted({r["size_bytes"] for r in records})
    for ax, fn in zip(axes[:, 0], functions):
        series: dict[tuple, list[dict]] = {}
        for r in work:
            if r["function"] == fn:
                series.setdefault((r["impl"], r["algorithm"], r["isa"], r["dtype"], r["threads"]), []).append(r)
        for (impl, algorithm, isa, dtype, threads), rs in series.items():
            rs.sort(key=lambda r: r["size_bytes"])
            name = algorithm or (fn if impl == "simdsoftmax" else impl)
            extra = [str({"isa": isa, "dtype": dtype, "threads": f"{threads} thr"}[k]) for k in varying
                     if impl == "simdsoftmax" or k != "isa"]  # fmt: skip
            label = " ".join([name, *extra])
            style = dict(marker="o", markersize=3, linewidth=1.5) if impl == "simdsoftmax" else dict(
                marker="x", markersize=4, linewidth=1.0, linestyle=":")
            ax.plot([r["size_bytes"] for r in rs], [r["gbps"] for r in rs], label=label, **style)
        # Reference lines: the best probe GB/s per size (over kernel sets and
        # probe thread splits) for each dtype/thread count plotted.
        for probe, color in (("read", "0.25"), ("copy", "0.55")):
            for dtype, threads in dict.fromkeys((r["dtype"], r["threads"]) for r in work if r["function"] == fn):
                best: dict[int, float] = {}
                for r in probes:
                    if r["function"] == probe and r["dtype"] == dtype and r["threads"] == threads:
                        best[r["size_bytes"]] = max(best.get(r["size_bytes"], 0.0), r["gbps"])
                if best:
                    xs = sorted(best)
                    extra = " ".join(str({"dtype": dtype, "threads": f"{threads} thr"}[k]) for k in varying if k != "isa")
                    ax.plot(xs, [best[x] for x in xs], color=color, linestyle="--", linewidth=1.2,
                            label=f"{probe} probe {extra}".strip())  # fmt: skip
        for level, b in runtime.get("cpu", {}).get("caches", {}).items():
            ax.axvline(b, color="0.85", linewidth=0.8, zorder=0)
            ax.annotate(level, (b, 1), xycoords=("data", "axes fraction"), xytext=(2, -10),
                        textcoords="offset points", fontsize=7, color="0.45")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("GB/s of algorithm traffic")
        ax.set_title(fn, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="best")
    bottom = axes[-1, 0]
    bottom.set_xticks(sizes)
    bottom.set_xticklabels([format_bytes(s).replace(" ", "") for s in sizes], rotation=45, ha="right", fontsize=8)
    bottom.minorticks_off()
    bottom.set_xlabel("input size (one row, log scale)")
    cpu = runtime.get("cpu", {})
    fig.suptitle(f"simdsoftmax {runtime.get('simdsoftmax')} on {cpu.get('brand')}, "
                 f"{runtime.get('date_utc', '')[:10]}", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def print_list() -> None:
    supported, compiled = list(ssm.available_isas()), list(_core.compiled_isas())
    print("functions (traffic per element: reads + writes):")
    for f in FUNCTIONS.values():
        state = "" if f.available() else "   [not in this build]"
        if f.has_algorithms:
            traffic = ", ".join(f"{a} {r}R+{w}W" for a, (r, w) in f.traffic.items())
        else:
            r, w = f.traffic[None]
            traffic = f"{r}R+{w}W"
        print(f"  {f.name:<15} {traffic}{state}\n  {'':<15} {f.summary}; peers: {', '.join(f.peers) or 'none'}")
    print(f"algorithms: {', '.join(ALGORITHMS)}")
    print("kernel sets: " + ", ".join(
        f"{i}{' (active)' if i == ssm.isa() else ''}" + ("" if i in supported else
                                                          " [not compiled]" if i not in compiled else " [CPU lacks it]")
        for i in KNOWN_ISAS))  # fmt: skip
    print(f"dtypes: {', '.join(DTYPES)}")
    print("peers:")
    for p in PEERS.values():
        print(f"  {p.name:<6} {'installed' if p.installed() else 'not installed':<14} {p.note}")
    print("record fields (JSON 'records' and CSV columns):")
    for name, meaning in RECORD_FIELDS.items():
        print(f"  {name:<18} {meaning}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.list:
            print_list()
            return 0
        plan = make_plan(args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0

    def warn(message: str) -> None:
        if not plan.quiet:
            print(f"{PROG}: note: {message}", file=sys.stderr)

    for note in plan.notes:
        warn(note)
    runtime = collect_runtime(plan)
    print(format_header(runtime, plan), flush=True)

    progress = Progress(plan.groups(), enabled=not plan.quiet and sys.stderr.isatty())
    sweep = Sweep(plan, progress, warn)
    interrupted = False
    try:
        run_sweep(sweep)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()

    records = sweep.records
    add_speedups(records)
    print()
    print(format_tables(records), flush=True)
    status = 130 if interrupted else 0
    if "json" in plan.outputs:
        write_json(plan.outputs["json"], runtime, plan, records, interrupted, argv)
    if "csv" in plan.outputs:
        write_csv(plan.outputs["csv"], records)
    if "plot" in plan.outputs and records:
        try:
            write_plot(plan.outputs["plot"], records, runtime)
        except Exception as e:  # the numbers are already out; say why the picture is not
            print(f"{PROG}: error: could not draw {plan.outputs['plot']!r}: {type(e).__name__}: {e}", file=sys.stderr)
            status = status or 1
    if interrupted:
        print(f"{PROG}: interrupted: {len(records)} measurements kept", file=sys.stderr)
    return status


def run_sweep(sweep: Sweep) -> None:
    """The only place measurement starts (tests replace it to check that bad input never gets here)."""
    sweep.run()


if __name__ == "__main__":
    sys.exit(main())
