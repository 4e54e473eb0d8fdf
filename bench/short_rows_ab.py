"""Same-run A/B of the short-row path: softmax, log_softmax and logsumexp of
(2^22 / n) x n batches, the short-row kernels against the per-row path
(_core.testing.set_short_rows_max(0)) and against torch when installed.

    python bench/short_rows_ab.py [float32|float64] [n ...]

Prints ratios only (best of 7 calls, three interleaved rounds); run it on a
quiet machine, one thread.
"""
import sys
import time

import numpy as np

import simdsoftmax as ssm
from simdsoftmax import _core

try:
    import torch

    torch.set_num_threads(1)
except ImportError:
    torch = None


def best(f, reps=7, clock=time.perf_counter):
    b = float("inf")
    for _ in range(reps):
        t0 = clock()
        f()
        b = min(b, clock() - t0)
    return b


def main(argv):
    dt = np.dtype(argv[0]) if argv else np.dtype(np.float32)
    ns = [int(a) for a in argv[1:]] or [2, 3, 5, 8, 10, 16, 32, 64, 100, 128, 256]
    ssm.set_num_threads(1)
    print(f"kernel set {ssm.isa()}, {dt}, 1 thread; ratios > 1 mean the short-row path is faster")
    print(f"{'n':>5} {'function':>12} {'per-row/short':>14} {'torch/short':>12}")
    for n in ns:
        rows = (1 << 22) // n
        x = (np.random.default_rng(n).standard_normal((rows, n)) * 4).astype(dt)
        y, out = np.empty_like(x), np.empty(rows, dt)
        tx = torch.from_numpy(x) if torch else None
        cases = {
            "softmax": (lambda: _core.softmax(x, y, "auto"), tx is not None and (lambda: torch.softmax(tx, -1))),
            "log_softmax": (lambda: _core.log_softmax(x, y), tx is not None and (lambda: torch.log_softmax(tx, -1))),
            "logsumexp": (lambda: _core.logsumexp(x, out), tx is not None and (lambda: torch.logsumexp(tx, -1))),
        }
        for name, (ours, theirs) in cases.items():
            t_short = t_rows = t_torch = float("inf")
            for _ in range(3):
                _core.testing.set_short_rows_max(1 << 30)
                t_short = min(t_short, best(ours))
                _core.testing.set_short_rows_max(0)
                t_rows = min(t_rows, best(ours))
                if theirs:
                    t_torch = min(t_torch, best(theirs))
            _core.testing.set_short_rows_max(1 << 30)
            torch_ratio = f"{t_torch / t_short:12.2f}" if theirs else f"{'-':>12}"
            print(f"{n:>5} {name:>12} {t_rows / t_short:14.2f} {torch_ratio}")


if __name__ == "__main__":
    main(sys.argv[1:])
