"""Same-run ratios for array types and half precision (print only ratios and
per-call differences measured interleaved in one run; the machine decides
absolute times).

1. Cost of a torch tensor in and out over the same call on NumPy arrays
   (softmax, log_softmax, logsumexp, gumbel_argmax, gumbel_topk, sample,
   topk; float32, small rows).
2. simdsoftmax vs torch's own CPU softmax / log_softmax / logsumexp on
   bfloat16 and float16 tensors, one thread (torch.set_num_threads), batches of rows of
   every length 2 .. 151936 (the bench CLI's --rows-sweep lengths), each
   batch about --elements elements.
3. float16 / bfloat16 vs float32 elements per second (simdsoftmax), in cache
   and out of cache: the half-width bound is about 2x float32 out of cache.
4. The short half-row kernels (rows of one vector to 4096 elements; softmax,
   log_softmax, logsumexp) on vs off
   (_core.half_set_rows_max), same batches as part 2.
5. The bound of each batch shape of part 2, in one run: nanoseconds per
   element of our float32 path, our half path, torch's half softmax family
   and the bandwidth probes on the half batch's own bytes (2 B per element:
   read + copy for softmax and log_softmax, read for logsumexp), our half
   path's fraction of that bound (probe time / our time), and torch/bound:
   the largest torch/ours that a path at the bound would reach (a target
   ratio above it asks for more than the bound allows).

Usage: python bench/half_arrays.py [--quick] [--threads 1] [--elements 4194304] [--parts 1,2,3,4,5]
       [--ops softmax,log_softmax,logsumexp] [--lengths 16,4096] [--dtypes bfloat16,float16]
       [--clock wall|thread]

The half-width bound out of cache (read 2 B + write 2 B per element) is in
the bench CLI: simdsoftmax-bench --dtypes float32,float16,bfloat16.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import simdsoftmax as ssm


CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}
clock = time.perf_counter


def interleaved(fns, repeats, inner, stat=statistics.median):
    """Median (or `stat`) seconds per call of each fn, measured in alternation."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = clock()
            for _ in range(inner):
                fn()
            times[i].append((clock() - t0) / inner)
    return [stat(t) for t in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--elements", type=int, default=1 << 22, help="elements per batch in parts 2, 4 and 5")
    parser.add_argument("--parts", default="1,2,3,4", help="which parts to run, e.g. 2,4")
    parser.add_argument("--ops", default="softmax,log_softmax,logsumexp", help="functions in parts 2, 4 and 5")
    parser.add_argument("--lengths", default=None, help="row lengths in parts 2, 4 and 5 (default: the sweep's)")
    parser.add_argument("--dtypes", default="bfloat16,float16", help="half formats in parts 2, 4 and 5")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="'thread': the calling thread's CPU time (one thread only: time the machine gives "
                        "other processes is not counted)")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread needs --threads 1")
    parts = {int(p) for p in args.parts.split(",")}
    ops = args.ops.split(",")
    lengths = tuple(int(n) for n in args.lengths.split(",")) if args.lengths else None
    import torch

    dtypes = [getattr(torch, d) for d in args.dtypes.split(",")]
    torch.set_num_threads(args.threads)
    ssm.set_num_threads(args.threads)
    repeats = 5 if args.quick else 15
    print(f"simdsoftmax {ssm.__version__}, isa={ssm.isa()}, threads={args.threads}, torch {torch.__version__}")

    if 1 in parts:
        part_torch_overhead(torch, repeats)
    total = args.elements if not args.quick else 1 << 20
    if 2 in parts:
        part_torch_half(torch, total, args.quick, repeats, ops, lengths, dtypes)
    if 3 in parts:
        part_half_vs_float32(torch, args.quick, repeats)
    if 4 in parts:
        part_rows_path(torch, total, args.quick, repeats, ops, lengths, dtypes)
    if 5 in parts:
        part_bound(torch, total, args.quick, repeats, ops, lengths, dtypes)


def part_torch_overhead(torch, repeats):
    print("\n1. torch tensor in and out: extra time per call over the NumPy call (us)")
    for n in (16, 4096):
        x = np.random.default_rng(0).normal(size=(1, n)).astype(np.float32)
        t = torch.from_numpy(x.copy())
        gen = np.random.default_rng(1)  # a decode loop's Generator
        for name, call in (
            ("softmax", lambda a: ssm.softmax(a, axis=-1)),
            ("log_softmax", lambda a: ssm.log_softmax(a, axis=-1)),
            ("logsumexp", lambda a: ssm.logsumexp(a, axis=-1)),
            ("gumbel_argmax", lambda a: ssm.gumbel_argmax(a, rng=1)),
            ("gumbel_topk", lambda a: ssm.gumbel_topk(a, 2, rng=gen)),
            ("sample", lambda a: ssm.sample(a, temperature=0.7, top_p=0.9, rng=gen)),
            ("sample logprobs", lambda a: ssm.sample(a, temperature=0.7, top_p=0.9, rng=gen, logprobs="raw")),
            ("topk", lambda a: ssm.topk(a, 2)),
        ):
            # The fastest of many short samples: the extra work per call is
            # fixed, and other load on the machine only ever adds time.
            np_t, torch_t = interleaved([lambda: call(x), lambda: call(t)], 20 * repeats, 50 if n == 16 else 10, min)
            print(f"  {name:15s} n={n:5d}: +{(torch_t - np_t) * 1e6:5.2f} us  (torch/numpy {torch_t / np_t:.3f})")



def part_torch_half(torch, total, quick, repeats, ops, lengths, dtypes):
    print("\n2. torch's own softmax / log_softmax / logsumexp vs simdsoftmax on half tensors (time ratio torch/ours)")
    from simdsoftmax.bench.workloads import ROW_LENGTHS

    lengths = lengths or (ROW_LENGTHS if not quick else (2, 128, 32000, 151936))
    for dtype in dtypes:
        for n in lengths:
            rows = max(1, total // n)
            t = torch.randn(rows, n).to(dtype)
            out = torch.empty_like(t)
            for name, theirs, ours in (
                ("softmax", lambda: torch.softmax(t, -1), lambda: ssm.softmax(t, axis=-1, out=out)),
                ("log_softmax", lambda: torch.log_softmax(t, -1), lambda: ssm.log_softmax(t, axis=-1, out=out)),
                ("logsumexp", lambda: torch.logsumexp(t, -1), lambda: ssm.logsumexp(t, axis=-1)),
            ):
                if name not in ops:
                    continue
                a, b = interleaved([theirs, ours], repeats, 3)
                print(f"  {str(dtype)[6:]:9s} {name:12s} {rows:7d} x {n:6d}: torch/ours {a / b:6.2f}")



def part_half_vs_float32(torch, quick, repeats):
    print("\n3. half vs float32 elements per second (simdsoftmax; >1: the half format is faster)")
    sizes = (1 << 14, 1 << 16, 1 << 20, 1 << 24) if not quick else (1 << 16, 1 << 22)
    for total in sizes:
        n = min(total, 32768)
        x32 = np.random.default_rng(1).normal(size=(total // n, n)).astype(np.float32)
        y32 = np.empty_like(x32)
        x16 = x32.astype(np.float16)
        y16 = np.empty_like(x16)
        tb = torch.from_numpy(x32).to(torch.bfloat16)
        yb = torch.empty_like(tb)
        for name, f in (("softmax", ssm.softmax), ("log_softmax", ssm.log_softmax)):
            a, b, c = interleaved(
                [lambda: f(x32, axis=-1, out=y32), lambda: f(x16, axis=-1, out=y16), lambda: f(tb, axis=-1, out=yb)],
                repeats, 3 if total >= 1 << 22 else 20)
            print(f"  {name:12s} {total:9d} elements ({x32.nbytes >> 10:6d} KiB f32): "
                  f"float16/float32 {a / b:5.2f}   bfloat16/float32 {a / c:5.2f}")
        a, b = interleaved([lambda: ssm.logsumexp(x32, axis=-1), lambda: ssm.logsumexp(x16, axis=-1)], repeats,
                           3 if total >= 1 << 22 else 20)
        print(f"  {'logsumexp':12s} {total:9d} elements: float16/float32 {a / b:5.2f}")


def part_rows_path(torch, total, quick, repeats, ops, lengths, dtypes):
    from simdsoftmax import _core
    from simdsoftmax.bench.workloads import ROW_LENGTHS

    print("\n4. short half-row kernels on vs off (time ratio off/on; >1: the kernels are faster)")
    lengths = [n for n in (lengths or ROW_LENGTHS) if n <= 4096] if not quick else (16, 64, 4096)

    def forced(limit, fn):
        def call():
            _core.half_set_rows_max(limit)
            fn()
        return call

    try:
        for dtype in dtypes:
            for n in lengths:
                t = torch.randn(max(2, total // n), n).to(dtype)
                out = torch.empty_like(t)
                for name in ops:
                    fn = getattr(ssm, name)
                    kw = {} if name == "logsumexp" else {"out": out}
                    on, off = interleaved([forced(None, lambda: fn(t, axis=-1, **kw)),
                                           forced(0, lambda: fn(t, axis=-1, **kw))], repeats, 3)
                    print(f"  {str(dtype)[6:]:9s} {name:12s} {t.shape[0]:7d} x {n:6d}: off/on {off / on:6.2f}")
    finally:
        _core.half_set_rows_max(None)


def part_bound(torch, total, quick, repeats, ops, lengths, dtypes):
    from simdsoftmax import _core
    from simdsoftmax.bench.workloads import ROW_LENGTHS

    print("\n5. ns per element: ours float32, ours half, torch half, probes on the half bytes "
          "(read + copy; logsumexp: read); bound/ours = probes / ours half; torch/bound: the most torch/ours "
          "the bound allows")
    lengths = lengths or (ROW_LENGTHS if not quick else (2, 128, 32000, 151936))
    for dtype in dtypes:
        for n in lengths:
            rows = max(1, total // n)
            count = rows * n
            x32 = np.random.default_rng(2).normal(size=(rows, n)).astype(np.float32)
            y32 = np.empty_like(x32)
            t = torch.from_numpy(x32).to(dtype)
            out = torch.empty_like(t)
            # The half batch's bytes as float32 words (an odd element count
            # leaves its last 2 bytes out).
            words = t.view(-1)[: count // 2 * 2].view(torch.int16).numpy().view(np.float32)
            spare = out.view(-1)[: count // 2 * 2].view(torch.int16).numpy().view(np.float32)
            for name in ops:
                fn = getattr(ssm, name)
                kw = {} if name == "logsumexp" else {"out": out}
                kw32 = {} if name == "logsumexp" else {"out": y32}
                theirs = getattr(torch, name)
                calls = [lambda: fn(x32, axis=-1, **kw32), lambda: fn(t, axis=-1, **kw), lambda: theirs(t, -1),
                         lambda: _core.probe_read(words), lambda: _core.probe_copy(words, spare)]
                f32, half, th, rd, cp = (s * 1e9 / count for s in interleaved(calls, repeats, 3))
                bound = rd if name == "logsumexp" else rd + cp
                print(f"  {str(dtype)[6:]:9s} {name:12s} {rows:7d} x {n:6d}: f32 {f32:6.3f}  ours {half:6.3f}  "
                      f"torch {th:6.3f}  bound {bound:6.3f}   torch/ours {th / half:5.2f}  bound/ours {bound / half:5.2f}  "
                      f"torch/bound {th / bound:5.2f}")


if __name__ == "__main__":
    main()
