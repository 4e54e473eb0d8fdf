"""Measurement: timing, the same-run probes, and the sweep over a Plan.

Every item of one group (shape, dtype, kernel set, thread count) -- kernels,
peers and bandwidth probes -- is timed round-robin, so drift and neighbours'
noise hit them alike; each item's time is the median of its samples.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

import simdsoftmax as ssm

from .. import _core
from .peers import PEERS
from .report import RECORD_FIELDS
from .sizes import format_bytes
from .workloads import PROBES, Call, Workload

if TYPE_CHECKING:
    from .plan import Plan

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
    calibration_s: float = 0.0  # seconds per call in the calibration batch


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
    item.calibration_s = elapsed / 1e9 / inner
    return elapsed / 1e9


def probe_calls(work: Workload, threads: int, pool: ThreadPoolExecutor | None) -> dict[str, Call]:
    """The probes on this workload's bytes, on one thread or split over `threads` (GIL released)."""
    x, out = work.probe_x, work.probe_out  # views: the same memory as the kernels'
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
            restore.enter_context(_keep_isa())
            # The NumPy Gumbel peer takes log(0) once in ~2^24 draws: harmless
            # (that element gets no chance), but not worth a warning mid-table.
            restore.enter_context(np.errstate(divide="ignore", over="ignore", invalid="ignore"))
            torch = next((mod for peer, mod in plan.peers if peer.name == "torch"), None)
            if torch is not None:
                restore.enter_context(_keep_torch_threads(torch))
            for dtype in plan.dtypes:
                for shape in plan.shapes[dtype.name]:
                    work = Workload(shape.n, dtype, plan.seed, rows=shape.rows if plan.batched else None)
                    for threads in plan.threads:
                        _set_threads(threads, torch)
                        pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
                        try:
                            for i, isa in enumerate(plan.isas):
                                # Process-wide (the setter, not `with`): the split
                                # probes run in pool threads, which must see it too.
                                ssm.use_isa(isa)
                                # Peers do not depend on the kernel set: time them once.
                                self.measure_group(work, isa, threads, pool, with_peers=(i == 0))
                        finally:
                            if pool is not None:
                                pool.shutdown()
                    del work  # free this shape before allocating the next

    def build_items(self, work: Workload, threads: int, pool, with_peers: bool) -> list[Item]:
        plan = self.plan
        items = []
        variants = [1] if threads == 1 or plan.split_probes == "never" else [1, threads]
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
        label = f"{work.dtype.name} {format_bytes(work.nbytes)}"
        label += f" {work.rows}x{work.n}" if work.batched else ""
        label += f" {isa} x{threads}"
        self.progress.describe(label)
        items = self.build_items(work, threads, pool, with_peers)
        context = dict(isa=isa, dtype=work.dtype.name, threads=threads, size_bytes=work.nbytes,
                       rows=work.rows, n=work.n)  # fmt: skip
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
            if plan.split_probes == "auto":
                live = drop_split_probes_that_cannot_pay(live, threads)
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


DECIDE_BATCHES = 3  # batches per probe behind drop_split_probes_that_cannot_pay's decision


def drop_split_probes_that_cannot_pay(items: list[Item], threads: int) -> list[Item]:
    """Keep the probes split over N threads only where the split beats one thread.

    Handing work to a pool thread costs a wake-up (tens to hundreds of
    microseconds on a VM), so at small sizes the split probes time the
    hand-off, not the memory: rows of "150 us, 0.01 GB/s" that say nothing.
    The calibration that just ran has each item's time per call; each probe
    is timed again for DECIDE_BATCHES - 1 more batches of the same size and
    the least time kept (on a busy machine a preempted batch only ever adds
    time: one such batch of the one-thread probes made a 1 KiB split look
    faster). If the split read + copy is not faster than the same on one
    thread, the split rows are dropped (the bound takes the faster variant
    anyway, so it is unchanged).
    """
    per_call = {
        (i.function, i.probe_threads): min(
            [i.calibration_s] + [time_batch(i.call, i.inner) / 1e9 / i.inner for _ in range(DECIDE_BATCHES - 1)]
        )
        for i in items
        if i.impl == "probe" and i.function in ("read", "copy")
    }
    try:
        single = per_call[("read", 1)] + per_call[("copy", 1)]
        split = per_call[("read", threads)] + per_call[("copy", threads)]
    except KeyError:
        return items
    if split < single:
        return items
    return [i for i in items if i.impl != "probe" or i.probe_threads == 1]


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
            rows=context["rows"],
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
            elements_per_s=context["rows"] * context["n"] / t,
            bound_s=bound,
            efficiency=None if bound is None else bound / t,
        )
        records.append(rec)
    return records


def add_speedups(records: list[dict]) -> None:
    """speedup_vs_PEER = peer time / simdsoftmax time at the same function, dtype, threads and shape."""
    peer_time = {
        (r["impl"], r["function"], r["dtype"], r["threads"], r["rows"], r["n"]): r["time_s"]
        for r in records
        if r["impl"] in PEERS
    }
    for r in records:
        if r["impl"] != "simdsoftmax":
            continue
        for p in PEERS:
            t = peer_time.get((p, r["function"], r["dtype"], r["threads"], r["rows"], r["n"]))
            r[f"speedup_vs_{p}"] = None if t is None else t / r["time_s"]


@contextmanager
def _keep_threads() -> Iterator[None]:
    before = ssm.get_num_threads()
    try:
        yield
    finally:
        ssm.set_num_threads(before)


@contextmanager
def _keep_isa() -> Iterator[None]:
    before = ssm.isa()
    try:
        yield
    finally:
        ssm.use_isa(before)


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

