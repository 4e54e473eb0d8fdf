"""gumbel_softmax's cost against softmax's on the same batch, per kernel set:

    python bench/gumbel_softmax_cost.py [--shapes 1000000x8,100000x64,10000x1000,1x151936]
        [--threads 1] [--repeats 7] [--isa avx512,avx2] [--fresh]

For each shape (rows x n, float32, N(0, 1) logits) and each kernel set this
CPU runs (or those --isa names): softmax (two-pass) and gumbel_softmax at
tau = 1 (the unit form: one logarithm per element) and tau = 0.5 (two), all
with out= so no call allocates (--fresh: gumbel_softmax into a new array,
page faults included). Each figure is the median over --repeats rounds in
which the three calls alternate; the ratios gumbel_softmax / softmax of the
same round's medians are what the issue's target (<= 3) is about.
"""
import argparse
import os
import sys

import numpy as np

import simdsoftmax as ssm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from half_arrays import interleaved  # noqa: E402


def parse_shape(text):
    rows, n = text.lower().split("x")
    return int(rows), int(n)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="1000000x8,100000x64,10000x1000,1x151936")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--isa", default=None, help="comma-separated kernel sets (default: all this CPU runs)")
    parser.add_argument("--fresh", action="store_true", help="gumbel_softmax into a new array instead of out=")
    args = parser.parse_args()
    isas = args.isa.split(",") if args.isa else [i for i in ssm.available_isas() if i != "scalar"]
    saved = ssm.get_num_threads()
    ssm.set_num_threads(args.threads)
    try:
        print(f"simdsoftmax {ssm.__version__} ({ssm.__file__}), float32, {args.threads} thread(s), "
              f"medians of {args.repeats} interleaved rounds; ms per call")
        for shape in map(parse_shape, args.shapes.split(",")):
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            y = np.empty_like(x)
            inner = max(1, (1 << 22) // x.size)
            for isa in isas:
                with ssm.use_isa(isa):
                    def gumbel(tau):
                        if args.fresh:
                            return lambda: ssm.gumbel_softmax(x, tau=tau, rng=1)
                        return lambda: ssm.gumbel_softmax(x, tau=tau, rng=1, out=y)

                    fns = [lambda: ssm.softmax(x, out=y, algorithm="two-pass"), gumbel(1.0), gumbel(0.5)]
                    for fn in fns:
                        fn()
                    sm, g1, g5 = interleaved(fns, args.repeats, inner)
                print(f"  {shape[0]:>8d} x {shape[1]:<7d} {isa:<7s} softmax {sm * 1e3:8.3f}"
                      f"   gumbel_softmax tau=1 {g1 * 1e3:8.3f} ({g1 / sm:5.2f}x)"
                      f"   tau=0.5 {g5 * 1e3:8.3f} ({g5 / sm:5.2f}x)", flush=True)
    finally:
        ssm.set_num_threads(saved)


if __name__ == "__main__":
    main()
