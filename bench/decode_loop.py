"""A decode loop's sample() call: the cost of per-request settings and rngs over one scalar call.

An LLM server calls `sample` once per decode step on a (batch, vocab) block of
logits, with a temperature / top-k / top-p / min-p per request and often a
Generator per request (its `seed`). This script times, interleaved in one run,
the same draw with every setting a Python number and one Generator (the
reference) and with the settings and rngs in the forms a server holds them:
NumPy arrays of the batch shape, Python lists, torch tensors beside torch
logits, a list of Generators, a list of int seeds. It prints each form's extra
time per call over the reference and the ratio, never a lone time: on a short
vocabulary the extra is the whole story, on an LLM vocabulary it should vanish
in the kernel's time.

Usage: python bench/decode_loop.py [--quick] [--shapes 4x16,64x151936] [--min]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import simdsoftmax as ssm
from half_arrays import interleaved  # bench/ is on sys.path when this script runs


def forms(x, rows, torch):
    """name -> the call, its settings and rngs in one form (the first: the reference)."""
    gen = np.random.default_rng(1)
    t, k, p, m = np.full(rows, 0.7), np.full(rows, 50, np.int64), np.full(rows, 0.9), np.full(rows, 0.05)
    gens = [np.random.default_rng(10 + r) for r in range(rows)]
    seeds = list(range(100, 100 + rows))
    calls = {
        "scalar settings, one Generator": lambda: ssm.sample(x, temperature=0.7, top_k=50, top_p=0.9, min_p=0.05,
                                                             rng=gen),
        "per-row ndarrays": lambda: ssm.sample(x, temperature=t, top_k=k, top_p=p, min_p=m, rng=gen),
        "per-row lists": lambda: ssm.sample(x, temperature=t.tolist(), top_k=k.tolist(), top_p=p.tolist(),
                                            min_p=m.tolist(), rng=gen),
        "per-row Generators": lambda: ssm.sample(x, temperature=0.7, top_k=50, top_p=0.9, min_p=0.05, rng=gens),
        "per-row int seeds": lambda: ssm.sample(x, temperature=0.7, top_k=50, top_p=0.9, min_p=0.05, rng=seeds),
        "per-row ndarrays + logprobs": lambda: ssm.sample(x, temperature=t, top_k=k, top_p=p, min_p=m, rng=gen,
                                                          logprobs="raw"),
    }
    if torch is not None:
        xt = torch.from_numpy(x)
        tt, kt, pt, mt = (torch.from_numpy(a) for a in (t, k, p, m))
        calls["torch: scalar settings"] = lambda: ssm.sample(xt, temperature=0.7, top_k=50, top_p=0.9, min_p=0.05,
                                                             rng=gen)
        calls["torch: per-row tensors"] = lambda: ssm.sample(xt, temperature=tt, top_k=kt, top_p=pt, min_p=mt, rng=gen)
    return calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--shapes", default="4x16,64x4096,64x151936", help="ROWSxVOCAB batches")
    parser.add_argument("--min", action="store_true", help="least time instead of the median (a loaded machine)")
    args = parser.parse_args(argv)
    stat = min if args.min else statistics.median
    try:
        import torch
    except ImportError:  # torch is optional: its rows are skipped
        torch = None
    print(f"simdsoftmax {ssm.__version__}, isa={ssm.isa()}, threads={ssm.get_num_threads()}; "
          f"{'least' if args.min else 'median'} time per call, interleaved; extra over the first row")
    for shape in args.shapes.split(","):
        rows, vocab = (int(v) for v in shape.lower().split("x"))
        x = np.random.default_rng(0).normal(0, 2, (rows, vocab)).astype(np.float32)
        calls = forms(x, rows, torch)
        small = rows * vocab <= 1 << 16
        repeats = (15 if args.quick else 41) if small else (5 if args.quick else 15)
        times = interleaved(list(calls.values()), repeats, 20 if small else 1, stat)
        print(f"\n{rows} x {vocab} float32: reference {times[0] * 1e6:.1f} us")
        for name, t in zip(calls, times):
            print(f"  {name:32s} {(t - times[0]) * 1e6:+8.2f} us  ({t / times[0]:.3f})")


if __name__ == "__main__":
    main()
