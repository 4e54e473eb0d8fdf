#!/usr/bin/env python3
"""The README's Dask number: softmax of a 4 GiB float32 array on a
dask.distributed LocalCluster of 2 worker processes, against NumPy and SciPy
(and in-memory simdsoftmax) on the same data, in the same run.

    python bench/dask_softmax.py                 # 4 GiB, ~12 GiB of memory, a few minutes
    python bench/dask_softmax.py --gib 0.25      # a quick look

The data is (rows, 32768) standard-normal float32 logits made by Dask's
random generator from a fixed seed; the in-process contenders get exactly
that array (computed from the same graph), the cluster makes its own copy in
the workers' memory. Softmax is over the last axis (a row is a 32768-entry
vocabulary), chunked by whole rows (each chunk is one task running the
in-memory kernels); then the cluster runs again with every row split into
--split-rows chunks (same data, rechunked in the workers), so the normalizer
goes through the tree reduction (2 reads + 1 write, 3 tasks per chunk).

Timed (median of --repeat runs, after one warm-up each):
  numpy                  np.exp(x - max) / sum, the textbook formula, 1 process
  scipy                  scipy.special.softmax(x, axis=1), 1 process
  simdsoftmax            simdsoftmax.softmax(x, axis=1), 1 process
  simdsoftmax.dask (threads)  the Dask version on Dask's threaded scheduler, 1 process
  dask (plain)           the textbook formula as Dask array operations, on the cluster
  simdsoftmax.dask       simdsoftmax.dask.softmax(x, axis=1), on the cluster
The cluster runs persist() and waits, so the result stays in the workers'
memory (nothing is sent back). Throughput = input bytes / time. A sample of
rows of every result is checked against float64.

Writes bench/results/dask_softmax.{json,md} (Markdown with the "Machine:" and
"Command:" lines); prints the table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

N_COLS = 32768
SEED = 20240607


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gib", type=float, default=4.0, help="array size in GiB (float32), default 4")
    p.add_argument("--row-chunk", type=int, default=1024, help="rows per chunk (default 1024: 128 MiB chunks)")
    p.add_argument("--col-chunk", type=int, default=None, help="columns per chunk (default: whole rows)")
    p.add_argument("--split-rows", type=int, default=4,
                   help="with whole-row chunks, also time the cluster with every row split into this many chunks "
                        "(the tree-reduction path; default 4, 1 = no)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--memory-limit", default="10GiB", help="per worker (default 10GiB)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip", default="", help="comma-separated contenders to leave out (e.g. numpy,scipy)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "dask_softmax"),
                   help="path prefix for .json and .md (default bench/results/dask_softmax)")
    return p.parse_args(argv)


def timed(fn, repeat: int, keep):
    """(median seconds of `repeat` calls after a warm-up, keep(last result))."""
    keep(fn())  # warm-up: first touch of memory, imports in the workers
    times = []
    for _ in range(repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        kept = keep(result)
    return statistics.median(times), kept


def release(client, collection, timeout=120.0):
    """Free a persisted result on the cluster and wait until the scheduler has
    forgotten its keys: the next run builds the same keys (Dask names them by
    content), which must not meet the cancellation of these."""
    keys = list(_flat_keys(collection.__dask_keys__()))
    client.cancel(collection)
    deadline = time.monotonic() + timeout
    while client.run_on_scheduler(lambda dask_scheduler: sum(k in dask_scheduler.tasks for k in keys)):
        if time.monotonic() > deadline:
            raise TimeoutError("the cluster did not release a result")
        time.sleep(0.05)


def _flat_keys(keys):
    if isinstance(keys, list):
        for k in keys:
            yield from _flat_keys(k)
    else:
        yield keys


def numpy_softmax(x):
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def check_rows(name, y_rows, x_rows, failures):
    """Max relative error of sampled rows against float64."""
    x64 = x_rows.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    exact = e / e.sum(axis=1, keepdims=True)
    err = float(np.max(np.abs(y_rows.astype(np.float64) / exact - 1)))
    if not err < 1e-4:
        failures.append(f"{name}: max relative error {err:.2e}")
    return err


def main(argv=None) -> int:
    args = parse_args(argv)
    import dask
    import dask.array as da
    import distributed

    import simdsoftmax as ssm
    import simdsoftmax.dask as ssd

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    rows = max(1, int(round(args.gib * 2**30 / 4 / N_COLS)))
    shape = (rows, N_COLS)
    chunks = (min(args.row_chunk, rows), args.col_chunk or N_COLS)
    nbytes = rows * N_COLS * 4

    def make(chunks_):
        return da.random.default_rng(SEED).standard_normal(shape, dtype=np.float32, chunks=chunks_) * 4

    sample = np.random.default_rng(1).choice(rows, size=min(rows, 64), replace=False)
    sample.sort()
    results, errors, failures, worker_isas = {}, {}, [], []

    print(f"softmax over the last axis of float32 {shape} = {nbytes / 2**30:.2f} GiB, chunks {chunks}", file=sys.stderr)
    x = make(chunks).compute(scheduler="threads")  # the cluster regenerates exactly this
    x_sample = x[sample]

    # In one process.
    import scipy.special

    x_local = da.from_array(x, chunks=chunks, name=False)  # (no hashing of 4 GiB for a name)
    contenders = {
        "numpy": lambda: numpy_softmax(x),
        "scipy": lambda: scipy.special.softmax(x, axis=1),
        "simdsoftmax": lambda: ssm.softmax(x, axis=1),
        # The same graph in this process on Dask's threaded scheduler (as many
        # threads as the cluster has): the cost of the graph without the cluster.
        "simdsoftmax.dask (threads)": lambda: ssd.softmax(x_local, axis=1).persist(
            scheduler="threads", num_workers=args.workers * args.threads_per_worker
        ),
    }
    for name, fn in contenders.items():
        if name in skip or name.split()[0] in skip:
            continue
        print(f"  {name} ...", file=sys.stderr)
        results[name], y_sample = timed(fn, args.repeat, keep=lambda y: np.asarray(y[sample]))
        errors[name] = check_rows(name, y_sample, x_sample, failures)
        gc.collect()
    del x, x_local, contenders
    gc.collect()

    # On the cluster.
    with dask.config.set({"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
                          "distributed.worker.memory.pause": False}):
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                                      processes=True, memory_limit=args.memory_limit, dashboard_address=None,
                                      silence_logs=40) as cluster, distributed.Client(cluster) as client:
            def time_layout(xd, suffix):
                dask_contenders = {
                    "dask (plain)": lambda: numpy_softmax(xd),
                    "simdsoftmax.dask": lambda: ssd.softmax(xd, axis=1),
                }
                for name, build in dask_contenders.items():
                    if name.split()[0] in skip or name in skip:
                        continue
                    name += suffix
                    print(f"  {name} ...", file=sys.stderr)

                    def run():
                        y = client.persist(build())
                        distributed.wait(y)
                        return y

                    def keep(y):
                        rows_ = y[sample].compute()
                        release(client, y)
                        return rows_

                    results[name], y_sample = timed(run, args.repeat, keep)
                    errors[name] = check_rows(name, y_sample, x_sample, failures)

            xd = client.persist(make(chunks))
            distributed.wait(xd)
            worker_isas[:] = sorted(set(client.run(lambda: __import__("simdsoftmax").isa()).values()))
            time_layout(xd, "")
            if args.split_rows > 1 and chunks[1] == N_COLS:
                # The same data with every row split across chunks: the
                # normalizer now goes through the tree reduction. (Rebinding
                # xd lets the cluster drop the first layout.)
                xd = client.persist(xd.rechunk({1: N_COLS // args.split_rows}))
                distributed.wait(xd)
                time_layout(xd, f", rows in {args.split_rows} chunks")

    report = {
        "shape": shape,
        "chunks": chunks,
        "split_rows": args.split_rows,
        "bytes": nbytes,
        "workers": args.workers,
        "threads_per_worker": args.threads_per_worker,
        "repeat": args.repeat,
        "seconds": results,
        "max_rel_error_sampled_rows": errors,
        "machine": {
            "cpu": str(ssm._core.cpu_info().get("brand", "")).strip() or platform.processor(),
            "cpus": os.cpu_count(),
            "isa": ssm.isa(),
            "worker_isas": worker_isas,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "simdsoftmax": ssm.__version__,
        },
        "argv": list(sys.argv[1:] if argv is None else argv),
    }
    md = render(report)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(md)
    print(f"wrote {out}.json and {out}.md", file=sys.stderr)
    for f in failures:
        print("ACCURACY CHECK FAILED:", f, file=sys.stderr)
    return 1 if failures else 0


def render(report) -> str:
    m = report["machine"]
    gib = report["bytes"] / 2**30
    lines = [
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, kernel set {m['isa']}; Python {m['python']}, NumPy {m['numpy']}, "
        f"SciPy {m['scipy']}, Dask {m['dask']}, simdsoftmax {m['simdsoftmax']}",
        "Command: `python bench/dask_softmax.py " + " ".join(report["argv"]) + "`",
        "",
        f"softmax over axis 1 of float32 {tuple(report['shape'])} ({gib:.2f} GiB), chunks {tuple(report['chunks'])}; "
        f"cluster: {report['workers']} worker processes x {report['threads_per_worker']} thread; "
        f"median of {report['repeat']}; \"rows in N chunks\": the same data rechunked in the workers",
        "",
        "| | where | time | GB/s (input) | vs SciPy |",
        "|---|---|---:|---:|---:|",
    ]
    secs = report["seconds"]
    ref = secs.get("scipy")
    for name, t in secs.items():
        if "threads" in name:
            where = f"1 process, {report['workers'] * report['threads_per_worker']} threads"
        elif "dask" in name:
            where = f"LocalCluster, {report['workers']} workers"
        else:
            where = "1 process"
        ratio = f"{ref / t:.1f}x" if ref else "-"
        lines.append(f"| {name} | {where} | {t:.2f} s | {report['bytes'] / t / 1e9:.2f} | {ratio} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
