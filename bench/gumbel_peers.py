"""The numbers behind the README's Gumbel sampling claims, one run: one
thread for 1-3, then 1 and 2 again with every thread the pool may use.

1. gumbel_argmax over a 1-D float32 array of 2^26 logits, against
   torch.argmax(x - torch.empty_like(x).exponential_().log()) and
   np.argmax(x + rng.gumbel(size=n)), and against the read probe (how much of
   the single-core read bandwidth it reaches).
2. gumbel_softmax against softmax (two-pass) on the same input.
3. A batch of 64 rows x 151,936 (an LLM vocabulary): time per row against
   torch.multinomial(torch.softmax(x, -1), 1).
4. 1 and 2 at the default thread count (the read probe stays one thread).

    python bench/gumbel_peers.py            # ~1 minute
    python bench/gumbel_peers.py --n 16777216 --repeats 5
"""
import argparse
import statistics
import time

import numpy as np

import simdsoftmax as ssm
from simdsoftmax import _core


def median_time(fn, repeats):
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1 << 26)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print("# regenerate the published results (quiet machine): "
          "python bench/gumbel_peers.py | tee bench/results/gumbel_peers.txt")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    default_threads = ssm.get_num_threads()
    ssm.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.n).astype(np.float32)
    r = args.repeats
    print(f"simdsoftmax {ssm.__version__}, kernel set {ssm.isa()}, 1 thread, n = {args.n} float32 "
          f"({x.nbytes / 2**20:.0f} MiB)")

    t_read = median_time(lambda: _core.probe_read(x), r)
    t_ours = median_time(lambda: ssm.gumbel_argmax(x, rng=1), r)
    gen = np.random.default_rng(2)
    t_np = median_time(lambda: np.argmax(x + gen.gumbel(size=x.size).astype(np.float32)), max(3, r // 2))
    print(f"\n1. gumbel_argmax, 1-D, {args.n} elements")
    print(f"   read probe            {t_read * 1e3:9.2f} ms  ({x.nbytes / t_read / 1e9:.1f} GB/s)")
    print(f"   simdsoftmax           {t_ours * 1e3:9.2f} ms  ({x.nbytes / t_ours / 1e9:.1f} GB/s of logits, "
          f"{t_read / t_ours:.0%} of the read probe)")
    print(f"   numpy gumbel+argmax   {t_np * 1e3:9.2f} ms  -> simdsoftmax {t_np / t_ours:.1f}x faster")
    if torch is not None:
        xt = torch.from_numpy(x)
        t_torch = median_time(lambda: torch.argmax(xt - torch.empty_like(xt).exponential_().log()), max(3, r // 2))
        print(f"   torch exp+log+argmax  {t_torch * 1e3:9.2f} ms  -> simdsoftmax {t_torch / t_ours:.1f}x faster")

    y = np.empty_like(x)
    t_sm = median_time(lambda: ssm.softmax(x, out=y, algorithm="two-pass"), r)
    t_gs = median_time(lambda: ssm.gumbel_softmax(x, rng=1, out=y), r)
    print(f"\n2. gumbel_softmax vs softmax (two-pass), same input")
    print(f"   softmax               {t_sm * 1e3:9.2f} ms")
    print(f"   gumbel_softmax        {t_gs * 1e3:9.2f} ms  -> {t_gs / t_sm:.2f}x the softmax time")

    batch = rng.standard_normal((64, 151_936)).astype(np.float32) * 3
    t_b = median_time(lambda: ssm.gumbel_argmax(batch, rng=1), r)
    print(f"\n3. batch 64 x 151,936 float32")
    print(f"   simdsoftmax gumbel_argmax      {t_b / 64 * 1e6:9.1f} us per row")
    if torch is not None:
        bt = torch.from_numpy(batch)
        t_tb = median_time(lambda: torch.multinomial(torch.softmax(bt, -1), 1), max(3, r // 2))
        print(f"   torch multinomial(softmax)     {t_tb / 64 * 1e6:9.1f} us per row -> simdsoftmax {t_tb / t_b:.1f}x faster")

    if default_threads > 1:
        t_read = median_time(lambda: _core.probe_read(x), r)  # still one thread
        ssm.set_num_threads(default_threads)
        t_ours = median_time(lambda: ssm.gumbel_argmax(x, rng=1), r)
        t_sm = median_time(lambda: ssm.softmax(x, out=y, algorithm="two-pass"), r)
        t_gs = median_time(lambda: ssm.gumbel_softmax(x, rng=1, out=y), r)
        t_b = median_time(lambda: ssm.gumbel_argmax(batch, rng=1), r)
        print(f"\n4. {default_threads} threads (the default here); read probe on one thread")
        print(f"   read probe            {t_read * 1e3:9.2f} ms  ({x.nbytes / t_read / 1e9:.1f} GB/s)")
        print(f"   gumbel_argmax         {t_ours * 1e3:9.2f} ms  ({t_read / t_ours:.0%} of the one-thread read probe)")
        print(f"   softmax               {t_sm * 1e3:9.2f} ms")
        print(f"   gumbel_softmax        {t_gs * 1e3:9.2f} ms  -> {t_gs / t_sm:.2f}x the softmax time")
        print(f"   batch gumbel_argmax   {t_b / 64 * 1e6:9.1f} us per row")


if __name__ == "__main__":
    main()
