"""What a sweep prints and writes: the run header, the tables, JSON and CSV.

RECORD_FIELDS is the documented schema of one measurement (JSON "records",
CSV columns, ``--list``); the plot lives in plot.py.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import sys
from typing import TYPE_CHECKING

import numpy as np

import simdsoftmax as ssm

from .. import _core
from .machine import cpu_brand
from .peers import PEERS
from .sizes import format_bytes, format_seconds
from .workloads import ALGORITHMS, FUNCTIONS, PROBES

if TYPE_CHECKING:
    from .plan import Plan

PROG = "simdsoftmax-bench"
KNOWN_ISAS = tuple(_core.ISA_NAMES)  # every kernel set the project has, compiled here or not
# bfloat16 is ml_dtypes' NumPy dtype (the one JAX uses), imported only when asked for.
DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": "ml_dtypes.bfloat16"}

RECORD_FIELDS: dict[str, str] = {
    "impl": "who ran it: 'simdsoftmax', a peer ('numpy', 'scipy', 'torch') or 'probe'",
    "function": "softmax, log_softmax, logsumexp, gumbel_*; for probes: read, copy or write",
    "algorithm": "softmax algorithm (two-pass, three-pass-recompute, three-pass-reload, online, auto); "
    "null for functions without a choice, peers and probes",
    "isa": "active kernel set (avx512, avx2, scalar); null for peers",
    "dtype": "float32, float64, float16 or bfloat16 (the half formats' bound is their own 2-byte traffic)",
    "threads": "simdsoftmax thread count (set_num_threads); torch's is set to match",
    "probe_threads": "threads a probe was split over (probes only, else null)",
    "size_bytes": "input size in bytes (the whole batch)",
    "rows": "rows in the batch (--shape, --rows-sweep); 1 for the --sizes sweep's one contiguous row",
    "n": "elements per row (the reduced axis); for the --sizes sweep, the whole input",
    "repeats": "timed samples taken (the median is reported)",
    "inner": "back-to-back calls per timed sample",
    "time_s": "median seconds per call",
    "time_min_s": "fastest sample, seconds per call",
    "time_max_s": "slowest sample, seconds per call",
    "reads": "passes that read an input-sized array (traffic model)",
    "writes": "passes that write an input-sized array (traffic model)",
    "traffic_bytes": "(reads + writes) * size_bytes",
    "gbps": "traffic_bytes / time_s / 1e9",
    "elements_per_s": "rows * n / time_s",
    "bound_s": "roofline time: (reads - writes) * read probe + writes * copy probe, same group; "
    "null for probes",
    "efficiency": "bound_s / time_s (1 = streams at probe speed); null for probes",
    **{f"speedup_vs_{p}": f"{p} time / this time at the same shape, dtype and threads "
       "(simdsoftmax rows only; null when not measured)" for p in PEERS},
}


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
        "probes run on 1 thread" + {"auto": " (and on N threads when N > 1, where that beats 1 thread)",
                                    "always": " and on N threads when N > 1", "never": " only"}[plan.split_probes],
    ]
    algos = f" [{', '.join(plan.algorithms)}]" if any(f.has_algorithms for f in plan.functions) else ""
    if plan.batched:
        size_text = "; ".join(
            f"{d}: {len(shapes)} batch shapes (rows x n) {', '.join(map(str, shapes))}"
            for d, shapes in plan.shapes.items() if shapes
        )  # fmt: skip
    else:
        size_text = "; ".join(
            f"{d}: {len(shapes)} sizes {format_bytes(shapes[0].n * np.dtype(d).itemsize)}.."
            f"{format_bytes(shapes[-1].n * np.dtype(d).itemsize)}"
            for d, shapes in plan.shapes.items() if shapes
        )  # fmt: skip
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


def _point(r: dict) -> tuple:
    """Where a record was measured: its size and shape."""
    return r["size_bytes"], r["rows"], r["n"]


def _points_in_order(records: list[dict]) -> list[tuple]:
    """1-D sizes ascending; batch shapes in the order they were measured (as asked)."""
    points = list(dict.fromkeys(_point(r) for r in records))
    if all(rows == 1 for _, rows, _ in points):
        points.sort()
    return points


def format_tables(records: list[dict], batched: bool = False) -> str:
    """One block per (dtype, threads): the probes, then one table per function."""
    if not records:
        return "(nothing was measured)"
    blocks = []
    peers_present = [p for p in PEERS if any(r["impl"] == p for r in records)]
    where = ["size", "shape"] if batched else ["size", "n"]

    def place(size, rows, n):
        return [format_bytes(size), f"{rows}x{n}" if batched else str(n)]

    for dtype, threads in dict.fromkeys((r["dtype"], r["threads"]) for r in records):
        probes = [r for r in records if r["impl"] == "probe" and r["dtype"] == dtype and r["threads"] == threads]
        if probes:
            rows = {}
            for r in probes:
                rows.setdefault((*_point(r), r["isa"], r["probe_threads"]), {})[r["function"]] = r
            table = []
            for (size, nrows, n, isa, pt), by in rows.items():
                read = by.get("read")
                table.append([
                    *(place(size, nrows, n) if batched else [format_bytes(size)]), isa, str(pt),
                    format_seconds(read["time_s"]) if read else "-",
                    *(_num(by[p]["gbps"], ".2f") if p in by else "-" for p in PROBES),
                ])  # fmt: skip
            title = f"== bandwidth probes: {dtype}, {threads} thread(s) (copy counts read + write) =="
            head = [*(where if batched else ["size"]), "isa", "thr", "read time", "read GB/s", "copy GB/s", "write GB/s"]
            blocks.append(title + "\n" + render_table(head, table, left=len(head) - 4))
        functions = list(dict.fromkeys(r["function"] for r in records if r["impl"] != "probe"))
        for fn in functions:
            rows_ = [r for r in records if r["impl"] != "probe" and r["function"] == fn
                     and r["dtype"] == dtype and r["threads"] == threads]  # fmt: skip
            if not rows_:
                continue
            header = [*where, "isa", "algorithm", "time", "GB/s", "Gelem/s", "eff"]
            header += [f"vs {p}" for p in peers_present]
            table, last = [], None
            for point in _points_in_order(rows_):
                at_point = [r for r in rows_ if _point(r) == point]
                # simdsoftmax rows first, then peers, each in measurement order
                at_point.sort(key=lambda r: r["impl"] != "simdsoftmax")
                for r in at_point:
                    first = point != last
                    last = point
                    name = r["algorithm"] or ("-" if r["impl"] == "simdsoftmax" else f"[{r['impl']}]")
                    table.append([
                        *(place(*point) if first else ["", ""]),
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
            "batched": plan.batched,
            # 1-D sweep: element counts per dtype; batches: [rows, n] per dtype.
            "sizes_elements": {} if plan.batched else {d: [s.n for s in v] for d, v in plan.shapes.items()},
            "shapes": {d: [[s.rows, s.n] for s in v] for d, v in plan.shapes.items()} if plan.batched else {},
            "peers": [p.name for p, _ in plan.peers],
            "repeats": plan.repeats,
            "warmup": plan.warmup,
            "time_per_point_s": plan.time_per_point,
            "split_probes": plan.split_probes,
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
