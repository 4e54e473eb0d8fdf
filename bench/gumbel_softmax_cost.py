"""gumbel_softmax's cost per element against softmax's, one run, per kernel set:

    python bench/gumbel_softmax_cost.py [--n 16777216] [--threads 1]

For each kernel set this CPU runs: softmax (two-pass) and gumbel_softmax at
tau = 1 (one logarithm per element per pass) and tau = 0.5 (two), all with
out= so no call allocates; then, on the best kernel set, gumbel_softmax into a
fresh array (page faults of a new result included). Medians of --repeats.
"""
import argparse
import statistics
import time

import numpy as np

import simdsoftmax as ssm


def median_ns(fn, n, repeats):
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) / n * 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1 << 24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n = args.n
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    saved = ssm.get_num_threads()
    ssm.set_num_threads(args.threads)
    try:
        print(f"simdsoftmax {ssm.__version__}, n = {n} float32, {args.threads} thread(s); ns per element")
        for isa in ssm.available_isas():
            reps = args.repeats if isa != "scalar" else 1
            with ssm.use_isa(isa):
                sm = median_ns(lambda: ssm.softmax(x, out=y, algorithm="two-pass"), n, reps)
                g1 = median_ns(lambda: ssm.gumbel_softmax(x, rng=1, out=y), n, reps)
                g5 = median_ns(lambda: ssm.gumbel_softmax(x, tau=0.5, rng=1, out=y), n, reps)
            print(f"  {isa:<7s} softmax {sm:7.3f}   gumbel_softmax tau=1 {g1:8.3f} ({g1 / sm:5.2f}x)"
                  f"   tau=0.5 {g5:8.3f} ({g5 / sm:5.2f}x)")
        fresh = median_ns(lambda: ssm.gumbel_softmax(x, rng=1), n, args.repeats)
        print(f"  {ssm.available_isas()[0]}: gumbel_softmax tau=1 into a new array {fresh:.3f}")
    finally:
        ssm.set_num_threads(saved)


if __name__ == "__main__":
    main()
