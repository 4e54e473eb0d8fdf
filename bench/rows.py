"""Batches of rows at every row length: the speed targets for short and long rows, same run.

For float32 and float64 batches (rows x n, C order, each row reduced) holding
4 Mi and 64 Mi elements, n in 2, 3, 5, 8, 10, 16, 32, 64, 100, 128, 256, 1000,
1024, 4096, 10000, 151936 and one row of all the elements, on 1 and 2
threads and every SIMD kernel set this machine runs, it times softmax,
log_softmax and logsumexp of simdsoftmax, torch (if installed) and
scipy.special, and the extension's read and copy probes over the same bytes.
Then it prints same-run ratios with a PASS/MISS verdict against the targets:

  vs torch   each function >= 2x torch's speed at the same thread count, or
             >= 0.85 of the memory bound, whichever comes first
  vs scipy   each function >= 3x scipy.special's speed
  lsm/sm     log_softmax time <= 1.05 x softmax time
  lse/sm     logsumexp time <= 0.6 x softmax time
  eff        out of cache (batch >= 4 x the last-level cache), n >= 8 and the
             single row: softmax and log_softmax >= 0.9 of read + copy,
             logsumexp >= 0.9 of read
  2t/1t      2 threads against 1: >= 0.9 x the read probe's own 2-thread
             speedup for batches >= 16 MiB, and >= 0.97 (never slower) always

Ratios are of medians of repeated samples, every implementation of one shape
interleaved round by round (rotating the order), so a disturbance hits all of
them alike. simdsoftmax writes into a preallocated out= (as the probes do;
--alloc times it allocating its result like torch and SciPy). SciPy is
single-threaded: its one timing per shape serves both thread counts.
Samples per timing: --repeats, cut to as few as 3 where they would last
more than --budget seconds. Run it on a quiet machine (`uptime` load near
0); the full run takes about an hour on 2 cores (longer while short rows are
slow) and needs ~4 GiB of memory (64 Mi float64 with SciPy's temporaries);
--elements 4Mi is the in-cache half, --quick a first look.

torch picks its own kernels from the CPU at import (the header prints which):
on an AVX-512 machine, `--isa avx2` alone sets simdsoftmax's AVX2 kernels
against torch's AVX-512 ones. To compare like with like, as on a CPU without
AVX-512, run that kernel set in its own process with torch limited too:
`ATEN_CPU_CAPABILITY=avx2 python bench/rows.py --isa avx2`.

    python bench/rows.py --quick        # float32, 4 Mi elements, 5 row lengths, ~2 min
    python bench/rows.py                # everything; see REGENERATE below for the results files
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import simdsoftmax as ssm
from simdsoftmax import _core
from simdsoftmax.bench import ROW_LENGTHS, Workload, format_bytes, parse_count
from simdsoftmax.bench.sizes import format_count
from simdsoftmax.bench.report import render_table
from simdsoftmax.bench.sweep import probe_calls

REGENERATE = (
    "python bench/rows.py --json bench/results/rows.json | tee bench/results/rows.txt",
    "simdsoftmax-bench --rows-sweep --dtypes float32,float64 --threads 1,2 "
    "--functions softmax,log_softmax,logsumexp --algorithms auto --compare numpy,scipy,torch "
    "--json bench/results/rows_cli.json --csv bench/results/rows_cli.csv --plot bench/results/rows_cli.png -q "
    "| tee bench/results/rows_cli.txt",
)

FUNCTIONS = ("softmax", "log_softmax", "logsumexp")
SHORT = {"softmax": "sm", "log_softmax": "lsm", "logsumexp": "lse"}
QUICK_ROW_LENGTHS = (2, 5, 32, 1000, 151936)
MIN_REPEATS = 3

TORCH_SPEEDUP = 2.0
BOUND_ESCAPE = 0.85  # ... or this fraction of the memory bound, whichever comes first
SCIPY_SPEEDUP = 3.0
LSM_OVER_SM = 1.05
LSE_OVER_SM = 0.6
OUT_OF_CACHE_EFF = 0.9
OUT_OF_CACHE_MIN_N = 8
THREADS_VS_READ = 0.9
THREADS_VS_READ_MIN_BYTES = 16 << 20
NEVER_SLOWER = 0.97


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="float32, 4 Mi elements, n in 2,5,32,1000,151936, 3 repeats (a first look, ~2 min)")
    p.add_argument("--dtypes", default=None, help="comma list (default float32,float64)")
    p.add_argument("--elements", default=None, help="elements per batch, comma list (default 4Mi,64Mi)")
    p.add_argument("--row-lengths", default=None, help="comma list of n (default: the list above)")
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    p.add_argument("--isa", default=None,
                   help="comma list of kernel sets (default: every SIMD set this CPU runs, else scalar)")
    p.add_argument("--peers", default="torch,scipy", help="peers to time: torch, scipy (default both)")
    p.add_argument("--repeats", type=int, default=None, help="samples per timing (default 7; --quick 3)")
    p.add_argument("--scipy-repeats", type=int, default=None,
                   help="samples per SciPy timing, the slowest peer by far (default 3; --quick 1)")
    p.add_argument("--budget", type=float, default=2.0,
                   help="seconds of samples per timing before its repeats are cut (not below 3; default 2)")
    p.add_argument("--alloc", action="store_true", help="simdsoftmax allocates its result (no out=), like the peers")
    p.add_argument("--json", metavar="FILE", help="also write every median and verdict as JSON")
    args = p.parse_args(argv)
    split = lambda text: [t.strip() for t in text.split(",") if t.strip()]  # noqa: E731
    args.dtypes = [np.dtype(d) for d in split(args.dtypes or ("float32" if args.quick else "float32,float64"))]
    args.elements = [parse_count(e) for e in split(args.elements or ("4Mi" if args.quick else "4Mi,64Mi"))]
    lengths = QUICK_ROW_LENGTHS if args.quick else ROW_LENGTHS
    args.row_lengths = [int(n) for n in split(args.row_lengths)] if args.row_lengths else list(lengths)
    args.threads = sorted({int(t) for t in split(args.threads)})
    simd = [i for i in ssm.available_isas() if i != "scalar"] or ["scalar"]
    args.isas = split(args.isa) if args.isa else simd
    for isa in args.isas:
        if isa not in ssm.available_isas():
            p.error(f"--isa: this CPU or build cannot run {isa!r} (it runs {', '.join(ssm.available_isas())})")
    args.peers = split(args.peers)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.scipy_repeats = args.scipy_repeats or min(args.repeats, 1 if args.quick else 3)
    return args


def load_peers(names):
    torch = special = None
    if "torch" in names:
        try:
            import torch
        except ImportError:
            print("# torch is not installed: no torch columns (pip install torch)", flush=True)
    if "scipy" in names:
        try:
            import scipy.special as special
        except ImportError:
            print("# scipy is not installed: no scipy columns (pip install scipy)", flush=True)
    return torch, special


def torch_version(torch) -> str:
    """torch's version and the kernels it dispatches to (AVX512, AVX2, ...), or '-'."""
    if torch is None:
        return "-"
    try:
        return f"{torch.__version__} ({torch.backends.cpu.get_cpu_capability()} kernels)"
    except AttributeError:  # torch before 2.1
        return torch.__version__


def scipy_version() -> str:
    try:
        import scipy
    except ImportError:
        return "-"
    return scipy.__version__


def timed(items: dict, repeats: dict, budget: float) -> dict:
    """Median seconds of each item's call; items are (prepare, call), prepare untimed.

    Round-robin with a rotating start, every item once per round until it has
    its samples: a slow minute of the machine lands on all items alike. An
    item takes its repeats, or fewer (at least MIN_REPEATS) where they would
    last more than `budget` seconds: calls of seconds are steady, and the
    peers' shortest rows would otherwise take hours at 64 Mi elements.
    """
    samples = {k: [] for k in items}
    repeats = dict(repeats)
    for k, (prepare, call) in items.items():
        prepare()
        t0 = time.perf_counter()
        call()  # warm-up: page faults, pool threads, torch's first-call setup
        first = time.perf_counter() - t0
        repeats[k] = max(min(repeats[k], MIN_REPEATS), min(repeats[k], int(budget / max(first, 1e-9))))
    keys = list(items)
    for r in range(max(repeats.values())):
        start = r % len(keys)
        for k in keys[start:] + keys[:start]:
            if len(samples[k]) >= repeats[k]:
                continue
            prepare, call = items[k]
            prepare()
            t0 = time.perf_counter()
            call()
            samples[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def shape_items(work: Workload, args, torch, special, pool) -> tuple[dict, dict]:
    """Everything timed on one batch: probes, ours per kernel set, peers; per thread count."""
    items, repeats = {}, {}
    x, out = work.x, work.out

    def threads(t):
        def prepare():
            ssm.set_num_threads(t)
            if torch is not None:
                torch.set_num_threads(t)

        return prepare

    def ours_prepare(isa, t):
        def prepare():
            ssm.use_isa(isa)
            ssm.set_num_threads(t)

        return prepare

    ours = {
        "softmax": (lambda: ssm.softmax(x, axis=-1)) if args.alloc else (lambda: ssm.softmax(x, axis=-1, out=out)),
        "log_softmax": (lambda: ssm.log_softmax(x, axis=-1)) if args.alloc
        else (lambda: ssm.log_softmax(x, axis=-1, out=out)),
        "logsumexp": lambda: ssm.logsumexp(x, axis=-1),
    }
    for t in args.threads:
        # The probes run on the first kernel set (they are the bound, not a contestant).
        calls = probe_calls(work, t, pool if t > 1 else None)
        for probe in ("read", "copy"):
            items[("probe", probe, t)] = (ours_prepare(args.isas[0], 1), calls[probe])
        for isa in args.isas:
            for fn, call in ours.items():
                items[("ours", isa, fn, t)] = (ours_prepare(isa, t), call)
        if torch is not None:
            tx = torch.from_numpy(x)
            for fn in FUNCTIONS:
                f = getattr(torch, fn)
                items[("torch", fn, t)] = (threads(t), lambda f=f, tx=tx: f(tx, -1))
    if special is not None:
        for fn in FUNCTIONS:
            f = getattr(special, fn)
            items[("scipy", fn)] = (threads(1), lambda f=f: f(x, axis=-1))
    for k in items:
        repeats[k] = args.scipy_repeats if k[0] == "scipy" else args.repeats
    return items, repeats


def verdicts(med, isa, t, nbytes, n, llc):
    """Per function: ns/element inputs and ratio cells, plus the list of missed targets."""
    ours = {fn: med[("ours", isa, fn, t)] for fn in FUNCTIONS}
    read, copy = med[("probe", "read", t)], med[("probe", "copy", t)]
    if t > 1 and ("probe", "read", 1) in med:  # the split is only the bound where it is faster
        read, copy = min(read, med[("probe", "read", 1)]), min(copy, med[("probe", "copy", 1)])
    bound = {"softmax": read + copy, "log_softmax": read + copy, "logsumexp": read}
    eff = {fn: bound[fn] / ours[fn] for fn in FUNCTIONS}
    cells, missed = {}, []
    for fn in FUNCTIONS:
        cells[f"eff {SHORT[fn]}"] = eff[fn]
        tt = med.get(("torch", fn, t))
        if tt is not None:
            cells[f"torch {SHORT[fn]}"] = tt / ours[fn]
            if tt / ours[fn] < TORCH_SPEEDUP and eff[fn] < BOUND_ESCAPE:
                missed.append(f"torch:{SHORT[fn]}")
        st = med.get(("scipy", fn))
        if st is not None:
            cells[f"scipy {SHORT[fn]}"] = st / ours[fn]
            if st / ours[fn] < SCIPY_SPEEDUP:
                missed.append(f"scipy:{SHORT[fn]}")
    cells["lsm/sm"] = ours["log_softmax"] / ours["softmax"]
    cells["lse/sm"] = ours["logsumexp"] / ours["softmax"]
    if cells["lsm/sm"] > LSM_OVER_SM:
        missed.append("lsm/sm")
    if cells["lse/sm"] > LSE_OVER_SM:
        missed.append("lse/sm")
    if nbytes >= 4 * llc and n >= OUT_OF_CACHE_MIN_N:
        missed += [f"eff:{SHORT[fn]}" for fn in FUNCTIONS if eff[fn] < OUT_OF_CACHE_EFF]
    return ours, cells, missed


def thread_verdicts(med, isa, nbytes, t):
    """Speedups of t threads over 1 for ours, against the read probe's own."""
    read_speedup = med[("probe", "read", 1)] / med[("probe", "read", t)]
    cells, missed = {"read": read_speedup}, []
    for fn in FUNCTIONS:
        s = med[("ours", isa, fn, 1)] / med[("ours", isa, fn, t)]
        cells[SHORT[fn]] = s
        if s < NEVER_SLOWER:
            missed.append(f"slower:{SHORT[fn]}")
        elif nbytes >= THREADS_VS_READ_MIN_BYTES and s < THREADS_VS_READ * read_speedup:
            missed.append(f"vs-read:{SHORT[fn]}")
    return cells, missed


def with_verdicts(header, table):
    """render_table with the last column (the verdict, of any width) left-aligned."""
    body = render_table(header[:-1], [row[:-1] for row in table]).split("\n")
    last = [header[-1], "-" * len(header[-1]), *(row[-1] for row in table)]
    return "\n".join(f"{line}  {v}" for line, v in zip(body, last))


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    args = parse_args(argv)
    torch, special = load_peers(args.peers)
    caches = _core.cache_sizes()
    llc = caches["l3_bytes"] or caches["l2_bytes"]
    info = ssm.show_runtime(as_dict=True) or {}
    print(f"# python {' '.join(sys.argv)}")
    print("# regenerate the published results (quiet machine):")
    for command in REGENERATE:
        print(f"#   {command}")
    print(f"# simdsoftmax {ssm.__version__}; CPU {info.get('cpu', {}).get('brand', '?')}; kernel sets {', '.join(args.isas)}; "
          f"caches L2 {format_bytes(caches['l2_bytes'])}, L3 {format_bytes(caches['l3_bytes'])} ({caches['source']}); "
          f"torch {torch_version(torch)}; scipy {scipy_version()}; "
          f"{args.repeats} repeats (scipy {args.scipy_repeats}); ours {'allocating' if args.alloc else 'out='}; "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC", flush=True)  # fmt: skip

    saved_isa, saved_threads = ssm.isa(), ssm.get_num_threads()
    saved_torch = torch.get_num_threads() if torch is not None else None
    pool = ThreadPoolExecutor(max(args.threads) - 1) if max(args.threads) > 1 else None
    results, tally = {"medians": [], "verdicts": []}, {}
    try:
        for dtype in args.dtypes:
            for elements in args.elements:
                lengths = list(dict.fromkeys([*args.row_lengths, elements]))  # the last: one row of it all
                shapes = [(max(1, elements // n), n) for n in lengths]
                measured = []
                for rows, n in shapes:
                    work = Workload(n, dtype, seed=0, rows=rows)
                    items, repeats = shape_items(work, args, torch, special, pool)
                    med = timed(items, repeats, args.budget)
                    measured.append((rows, n, work.nbytes, med))
                    results["medians"].append({"dtype": dtype.name, "elements": elements, "rows": rows, "n": n,
                                    "median_s": {"/".join(map(str, k)): v for k, v in med.items()}})  # fmt: skip
                    del work, items
                for isa in args.isas:
                    report(isa, dtype, elements, measured, args, llc, tally, results)
    finally:
        ssm.use_isa(saved_isa)
        ssm.set_num_threads(saved_threads)
        if torch is not None:
            torch.set_num_threads(saved_torch)
        if pool is not None:
            pool.shutdown()

    print("\n== summary: targets met / measured ==")
    for key in sorted(tally):
        met, total = tally[key]
        print(f"  {key:<12} {met:4d} / {total:<4d} {'PASS' if met == total else 'MISS'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "runtime": info, "regenerate": REGENERATE, "results": results}, f, indent=1,
                      default=str)  # fmt: skip
            f.write("\n")


def count(tally, missed, checked):
    for key in checked:
        met, total = tally.get(key, (0, 0))
        tally[key] = (met + (key not in missed), total + 1)


def report(isa, dtype, elements, measured, args, llc, tally, results):
    """One table per thread count, then 2 threads against 1."""
    nbytes = elements * dtype.itemsize
    title = f"{isa}, {dtype.name}, batches of {format_count(elements)} elements ({format_bytes(nbytes)})"
    for t in args.threads:
        header = ["n", "rows", *(f"{SHORT[fn]} ns/el" for fn in FUNCTIONS), *(f"{SHORT[fn]} x torch" for fn in FUNCTIONS),
                  *(f"{SHORT[fn]} x scipy" for fn in FUNCTIONS), "lsm/sm", "lse/sm",
                  *(f"{SHORT[fn]} eff" for fn in FUNCTIONS), "verdict"]  # fmt: skip
        table = []
        for rows, n, size, med in measured:
            ours, cells, missed = verdicts(med, isa, t, size, n, llc)
            elems = rows * n
            table.append([
                str(n), str(rows), *(fmt(ours[fn] / elems * 1e9, ".3g") for fn in FUNCTIONS),
                *(fmt(cells.get(f"torch {SHORT[fn]}")) for fn in FUNCTIONS),
                *(fmt(cells.get(f"scipy {SHORT[fn]}")) for fn in FUNCTIONS),
                fmt(cells["lsm/sm"]), fmt(cells["lse/sm"]), *(fmt(cells[f"eff {SHORT[fn]}"]) for fn in FUNCTIONS),
                "PASS" if not missed else "MISS " + ",".join(missed),
            ])  # fmt: skip
            checked = [f"{p}:{SHORT[fn]}" for p in ("torch", "scipy") for fn in FUNCTIONS if f"{p} {SHORT[fn]}" in cells]
            checked += ["lsm/sm", "lse/sm"]
            if size >= 4 * llc and n >= OUT_OF_CACHE_MIN_N:
                checked += [f"eff:{SHORT[fn]}" for fn in FUNCTIONS]
            count(tally, missed, checked)
            results["verdicts"].append({"isa": isa, "dtype": dtype.name, "rows": rows, "n": n, "threads": t,
                                        "ratios": cells, "missed": missed})  # fmt: skip
        print(f"\n== {title}, {t} thread(s) ==\n"
              "ns/el: median ns per element; x PEER: PEER time / ours (speed ratio); lsm/sm, lse/sm: time ratios; "
              "eff: bound / time (sm, lsm: read + copy; lse: read)")
        print(with_verdicts(header, table))
    for t in (t for t in args.threads if t > 1 and 1 in args.threads):
        table = []
        for rows, n, size, med in measured:
            cells, missed = thread_verdicts(med, isa, size, t)
            table.append([str(n), str(rows), fmt(cells["read"]), *(fmt(cells[SHORT[fn]]) for fn in FUNCTIONS),
                          "PASS" if not missed else "MISS " + ",".join(missed)])  # fmt: skip
            count(tally, missed, [f"slower:{SHORT[fn]}" for fn in FUNCTIONS]
                  + ([f"vs-read:{SHORT[fn]}" for fn in FUNCTIONS] if size >= THREADS_VS_READ_MIN_BYTES else []))
            results["verdicts"].append({"isa": isa, "dtype": dtype.name, "rows": rows, "n": n,
                                        "threads": f"{t}/1", "ratios": cells, "missed": missed})  # fmt: skip
        print(f"\n== {title}: {t} threads / 1 thread (speedups; read = the read probe split over {t} threads) ==")
        print(with_verdicts(["n", "rows", "read", "sm", "lsm", "lse", "verdict"], table))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
