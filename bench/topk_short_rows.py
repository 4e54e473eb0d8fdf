"""topk, gumbel_topk and sample(top_k) on batches of short rows (MoE routing's shapes), against torch.topk.

For each (n, k), a (2^20 / n) x n float32 batch of N(0, 4) logits: the
least thread CPU time of several calls (other load on the machine only ever
adds wall time; thread time leaves out what the machine gives other
processes) of ssm.topk(x, k), ssm.gumbel_topk(x, k), ssm.sample(x,
top_k=k), ssm.logsumexp (the cost of reading the batch, for scale) and, when
torch is installed, torch.topk, all on one thread. Prints ns per element.

Usage: python bench/topk_short_rows.py [N:K ...]   (default: 8:2 16:4 64:2 64:8 128:8 256:8 512:8 1024:8 1024:16 2048:8)
"""

from __future__ import annotations

import sys
import time

import numpy as np

import simdsoftmax as ssm
from short_rows_ab import best  # bench/ is on sys.path when this script runs

try:
    import torch
except ImportError:  # torch is optional: its column is left out
    torch = None

CASES = [(8, 2), (16, 4), (64, 2), (64, 8), (128, 8), (256, 8), (512, 8), (1024, 8), (1024, 16), (2048, 8)]


def least_thread_time(fn, repeats=9):
    fn()  # warm-up
    return best(fn, repeats, time.thread_time)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    cases = [tuple(int(v) for v in a.split(":")) for a in argv] or CASES
    ssm.set_num_threads(1)
    if torch is not None:
        torch.set_num_threads(1)
    print(f"simdsoftmax {ssm.__version__}, isa={ssm.isa()}, 1 thread; ns per element (least thread CPU time of 9)")
    for n, k in cases:
        x = np.random.default_rng(0).normal(0, 2, (max(1, (1 << 20) // n), n)).astype(np.float32)
        fns = {
            "topk": lambda: ssm.topk(x, k),
            "gumbel_topk": lambda: ssm.gumbel_topk(x, k, rng=1),
            "sample(top_k)": lambda: ssm.sample(x, top_k=k, rng=1),
            "logsumexp": lambda: ssm.logsumexp(x, axis=-1),
        }
        if torch is not None:
            xt = torch.from_numpy(x)
            fns["torch.topk"] = lambda: torch.topk(xt, k)
        cells = "  ".join(f"{name} {least_thread_time(fn) / x.size * 1e9:7.3f}" for name, fn in fns.items())
        print(f"n={n:6d} k={k:3d}  {cells}")


if __name__ == "__main__":
    main()
