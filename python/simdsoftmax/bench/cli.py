"""The command line: ``simdsoftmax-bench`` and ``python -m simdsoftmax.bench``."""

from __future__ import annotations

import argparse
import math
import sys

import simdsoftmax as ssm

from .plan import SPLIT_PROBES, UsageError, make_plan, positive_int
from .plot import write_plot
from .report import KNOWN_ISAS, PROG, collect_runtime, format_header, format_tables, print_list, write_csv, write_json
from .sizes import format_count, parse_size
from .sweep import DEFAULT_TIME_PER_POINT, MAX_REPEATS, MIN_REPEATS, MIN_SAMPLE_NS, Progress, Sweep, add_speedups
from .workloads import ALGORITHMS, DEFAULT_BATCH_ELEMENTS, FUNCTIONS, ROW_LENGTHS

EPILOG = f"""\
examples:
  {PROG}                                   default sweep, table on stdout
  {PROG} --sizes 4KiB,1MiB,256MiB --compare numpy,scipy
  {PROG} --functions softmax --algorithms two-pass,three-pass-reload --isa all
  {PROG} --dtypes float32,float64 --threads 1,2 --json out.json --csv out.csv
  {PROG} --plot gbps.png                   needs: pip install simdsoftmax[plot]
  python -m simdsoftmax.bench --list                 functions, kernel sets, peers, fields
  {PROG} --rows-sweep --compare scipy,torch  batches of rows: n = 2 .. 151936, {format_count(DEFAULT_BATCH_ELEMENTS)} elements each
  {PROG} --shape 64x151936,8192x512 --threads 1,2   your own batch shapes (rows x n)

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
  threads where that beats one thread (--split-probes) and the faster variant
  sets the bound.

batches of rows (--shape, --rows-sweep):
  --shape ROWSxN times C-contiguous (ROWS, N) arrays reduced along the last
  axis (axis=-1 for simdsoftmax, SciPy and the NumPy textbook, dim=-1 for
  torch). --rows-sweep times n in {", ".join(map(str, ROW_LENGTHS))}
  with rows = --batch-elements // n ({format_count(DEFAULT_BATCH_ELEMENTS)} elements by default; 64Mi leaves the
  cache). A batch streams the same bytes as one row of as many elements, so
  it has the same traffic and the same bound: the probes stream the batch's
  memory. logsumexp's per-row results (1/n of the input) are not counted.
  Tables name the shape; the plot's x axis is the row length n.

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
        f"'all' (every one this CPU runs), or names from {', '.join(KNOWN_ISAS)}. e.g. --isa avx2,scalar",
    )
    p.add_argument(
        "--dtypes", metavar="LIST", default="float32",
        help="float32 (default), float64, float16, bfloat16 (needs ml_dtypes), or 'all'. "
        "e.g. --dtypes float32,float16,bfloat16: the half formats' bound is their own 2-byte traffic",
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
        "--shape", metavar="ROWSxN", action="append", default=None,
        help="time batches instead of one row: ROWS rows of N elements, each row reduced (axis=-1); "
        "repeatable, or a comma list. e.g. --shape 64x151936 --shape 8192x512,1000000x5",
    )
    p.add_argument(
        "--rows-sweep", action="store_true",
        help="time batches of every row length in the row-length sweep (see below), each batch about "
        "--batch-elements elements. e.g. --rows-sweep --compare scipy,torch",
    )
    p.add_argument(
        "--row-lengths", metavar="LIST", default=None,
        help="the row lengths of the row-length sweep (implies --rows-sweep). e.g. --row-lengths 2,10,1000",
    )
    p.add_argument(
        "--batch-elements", metavar="COUNT", default=None,
        help="elements per batch in the row-length sweep (implies --rows-sweep; default "
        f"{format_count(DEFAULT_BATCH_ELEMENTS).replace(' ', '')}; Ki/Mi/Gi are powers of 2). "
        "e.g. --batch-elements 64Mi",
    )
    p.add_argument(
        "--max-bytes", metavar="SIZE", default=None, type=size_arg,
        help="largest input in bytes: the top of the default sweep; sizes in --sizes (or batch shapes) "
        "above it are skipped. e.g. --max-bytes 64MiB",
    )
    p.add_argument(
        "--repeats", metavar="N", type=positive_int, default=None,
        help=f"timed samples per point, fixed (default: adaptive, {MIN_REPEATS}..{MAX_REPEATS} "
        "to fill --time-per-point). e.g. --repeats 3",
    )
    p.add_argument(
        "--warmup", metavar="N", type=nonnegative_int, default=1,
        help="untimed calls per point before timing (default 1). e.g. --warmup 3",
    )
    p.add_argument(
        "--time-per-point", metavar="SECONDS", type=positive_float, default=DEFAULT_TIME_PER_POINT,
        help=f"target timing budget per point when --repeats is not given (default {DEFAULT_TIME_PER_POINT}). "
        "e.g. --time-per-point 1",
    )
    p.add_argument(
        "--split-probes", choices=SPLIT_PROBES, default="auto",
        help="with --threads N > 1, when to also time the probes split over N threads: 'auto' (default: "
        "where that beats one thread in the calibration calls), 'always' or 'never'. "
        "e.g. --split-probes always",
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
        help="draw GB/s against size (row length for batches) per algorithm with the probes as reference "
        "lines (.png, .svg or .pdf); needs matplotlib: pip install simdsoftmax[plot]. e.g. --plot gbps.png",
    )
    p.add_argument("--seed", metavar="N", type=nonnegative_int, default=0,
                   help="seed of the random input logits (default 0). e.g. --seed 7")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar and no notes on stderr (errors still print). e.g. --quiet")
    p.add_argument("--list", action="store_true",
                   help="list functions, algorithms, kernel sets, peers and the record fields, then exit")
    p.add_argument("--version", action="version", version=f"{PROG} (simdsoftmax {ssm.__version__})")
    return p


def size_arg(text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not size.in_bytes:
        raise argparse.ArgumentTypeError(f"{text!r}: give a unit, e.g. 64MiB")
    return size.value


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


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
    print(format_tables(records, batched=plan.batched), flush=True)
    status = 130 if interrupted else 0
    if "json" in plan.outputs:
        write_json(plan.outputs["json"], runtime, plan, records, interrupted, argv)
    if "csv" in plan.outputs:
        write_csv(plan.outputs["csv"], records)
    if "plot" in plan.outputs and records:
        try:
            write_plot(plan.outputs["plot"], records, runtime, batched=plan.batched)
        except Exception as e:  # the numbers are already out; say why the picture is not
            print(f"{PROG}: error: could not draw {plan.outputs['plot']!r}: {type(e).__name__}: {e}", file=sys.stderr)
            status = status or 1
    if interrupted:
        print(f"{PROG}: interrupted: {len(records)} measurements kept", file=sys.stderr)
    return status


def run_sweep(sweep: Sweep) -> None:
    """The only place measurement starts (tests replace it to check that bad input never gets here)."""
    sweep.run()
