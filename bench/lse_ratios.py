"""log_softmax / softmax and logsumexp / softmax, same run, per row length.

The targets: log_softmax time <= 1.05 x softmax time and logsumexp time
<= 0.6 x softmax time of the same data (float32 and float64 batches of
standard normal logits, rows x n = --elements, 1 thread). Each build given
runs in its own subprocess (import path first on sys.path), so a build of
another branch can be compared in the same run:

    python bench/lse_ratios.py                          # the installed simdsoftmax
    python bench/lse_ratios.py BUILD_A BUILD_B          # directories holding a simdsoftmax package
                                                        # (pip install . --target BUILD_A)

Samples of the three functions are interleaved, so a disturbance hits all
three alike; the printed figures are ratios of medians. passes/row: the
mean number of passes over memory logsumexp's row path takes on (up to 64
of) the rows (_core.testing.lse_passes; 1 is the target; "-" for a build
without the hook; rows short enough for the batched short-row kernels are
read once by those instead).

--scale s draws N(0, s^2) logits instead (the float64 certification of
log_softmax depends on lse - max, which grows with n and shrinks with the
spread: N(0, 9) rows of 1000 have lse - max ~ 1.7, N(0, 0.01^2) ~ 6.9);
--dtypes picks float32 and/or float64.

--data dominant gives every row one entry 8 above the others' log-sum-exp
(lse - max ~ 3.4e-4, a confident classifier's logits): the rows whose
log_softmax needs the max's own term exactly.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import sys, time
import numpy as np
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
import simdsoftmax as ssm
elements, repeats = int(sys.argv[2]), int(sys.argv[3])
lengths = [int(v) for v in sys.argv[4].split(",")]
ssm.set_num_threads(int(sys.argv[5]))
dominant = sys.argv[6] == "dominant"
scale = float(sys.argv[7])
dtypes = [np.dtype(d).type for d in sys.argv[8].split(",")]
rng = np.random.default_rng(0)
print(f"  {ssm.isa()}  {ssm.__file__}  N(0, {scale:g}^2)")
print(f"  {'dtype':8} {'n':>9} {'rows':>7} {'lsm/sm':>7} {'lse/sm':>7} {'passes/row':>10}")
hook = getattr(ssm._core.testing, "lse_passes", None)
for dt in dtypes:
    for n in lengths:
        rows = max(1, elements // n)
        x = rng.standard_normal((rows, n)) * scale
        if dominant and n > 1:
            top = x.max(axis=1)
            x[:, 0] = top + np.log(np.exp(x - top[:, None]).sum(axis=1)) + 8.0
        x = x.astype(dt)
        y = np.empty_like(x)
        calls = (lambda: ssm.softmax(x, axis=-1, out=y), lambda: ssm.log_softmax(x, axis=-1, out=y),
                 lambda: ssm.logsumexp(x, axis=-1))
        for f in calls:
            f()
        times = [[], [], []]
        for r in range(repeats):
            for i in range(3):
                j = (i + r) % 3
                t0 = time.perf_counter()
                calls[j]()
                times[j].append(time.perf_counter() - t0)
        sm, lsm, lse = (float(np.median(t)) for t in times)
        passes = f"{np.mean([hook(row)[1] for row in x[:64]]):10.2f}" if hook else f"{'-':>10}"
        print(f"  {np.dtype(dt).name:8} {n:>9} {rows:>7} {lsm / sm:7.2f} {lse / sm:7.2f} {passes}", flush=True)
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("builds", nargs="*", help="directories holding a simdsoftmax package (default: the installed one)")
    p.add_argument("--elements", type=int, default=1 << 22, help="elements per batch (default 4 Mi)")
    p.add_argument("--row-lengths", default="1000,1024,10000,151936,4194304", help="comma list of n")
    p.add_argument("--repeats", type=int, default=15, help="samples per function and shape (default 15)")
    p.add_argument("--threads", type=int, default=1, help="thread count (default 1)")
    p.add_argument("--data", choices=("normal", "dominant"), default="normal",
                   help="normal logits, or one dominant entry per row")
    p.add_argument("--scale", type=float, default=1.0, help="standard deviation of the logits (default 1)")
    p.add_argument("--dtypes", default="float32,float64", help="comma list of float32, float64 (default both)")
    args = p.parse_args(argv)
    for build in args.builds or [""]:
        print(build or "installed simdsoftmax")
        cmd = [sys.executable, "-c", CHILD, build, str(args.elements), str(args.repeats), args.row_lengths,
               str(args.threads), args.data, str(args.scale), args.dtypes]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
