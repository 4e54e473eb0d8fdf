"""Same-run ratios for Gumbel sampling on batches of short rows: gumbel_argmax
and gumbel_topk(k=2) of (E / n) x n batches (E = 2^23 elements by default),
with the short-row path, without it (_core.testing.set_gumbel_short_rows_max(0)),
against NumPy (argmax / argpartition of x + rng.gumbel(size=x.shape)) and,
when torch is installed, the exponential race
(argmax / topk of x - log(Exponential(1)), the same distribution).

    python bench/gumbel_short_rows.py [--dtype float32] [--elements 8388608] [n ...]

One thread everywhere. Each ratio is of medians over interleaved rounds
(ours, ours without the path, numpy, torch, ours, ...), each round the mean
of a few calls; > 1 means ours is faster. The issue's target is
peer / ours >= 5 against the faster peer.
"""
import argparse

import numpy as np

import simdsoftmax as ssm
from half_arrays import interleaved  # bench/ is on sys.path when this script runs
from simdsoftmax import _core

try:
    import torch

    torch.set_num_threads(1)
except ImportError:
    torch = None


def with_limit(fn, limit):
    def run():
        _core.testing.set_gumbel_short_rows_max(limit)
        try:
            fn()
        finally:
            _core.testing.set_gumbel_short_rows_max(1 << 30)

    return run


def cases(x, k):
    """{name: callable} of one draw per row (k = 1) or k draws without replacement."""
    gen = np.random.default_rng(2)
    ours = (lambda: ssm.gumbel_argmax(x, rng=1)) if k == 1 else (lambda: ssm.gumbel_topk(x, k, rng=1))

    def numpy_draw():
        z = x + gen.gumbel(size=x.shape).astype(x.dtype)
        return np.argmax(z, axis=-1) if k == 1 else np.argpartition(-z, k - 1, axis=-1)[:, :k]

    out = {"ours": ours, "no-short": with_limit(ours, 0), "numpy": numpy_draw}
    if torch is not None:
        xt = torch.from_numpy(x)

        def torch_race():
            z = xt - torch.empty_like(xt).exponential_().log()
            return torch.argmax(z, -1) if k == 1 else torch.topk(z, k, -1).indices

        out["torch"] = torch_race
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="*", default=[2, 3, 5, 8, 16, 32, 64, 128, 256, 1000])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--elements", type=int, default=1 << 23)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    ssm.set_num_threads(1)
    dt = np.dtype(args.dtype)
    print(f"simdsoftmax {ssm.__version__}, kernel set {ssm.isa()}, {dt}, 1 thread, {args.elements} elements per batch; "
          f"torch {'not installed' if torch is None else torch.__version__}")
    print(f"{'n':>5} {'k':>2} {'ours ms':>9} {'no-short/ours':>14} {'numpy/ours':>11} {'torch/ours':>11} {'best peer/ours':>15}")
    for n in args.n:
        x = (np.random.default_rng(n).standard_normal((max(1, args.elements // n), n)) * 3).astype(dt)
        for k in (1, 2):
            if k > n:
                continue
            fns = cases(x, k)
            med = dict(zip(fns, interleaved(list(fns.values()), args.rounds, args.calls)))
            ratio = {name: med[name] / med["ours"] for name in med}
            peer = min(med[p] for p in ("numpy", "torch") if p in med) / med["ours"]
            torch_text = f"{ratio['torch']:11.2f}" if "torch" in ratio else f"{'-':>11}"
            print(f"{n:>5} {k:>2} {med['ours'] * 1e3:9.2f} {ratio['no-short']:14.2f} {ratio['numpy']:11.2f} "
                  f"{torch_text} {peer:15.2f}")


if __name__ == "__main__":
    main()
