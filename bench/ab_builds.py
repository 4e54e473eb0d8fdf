"""Two builds of simdsoftmax, A against B, in interleaved processes.

A change to a kernel is judged against the build before it, on the same
machine in the same run. Install each build into its own folder, e.g.

    pip install --no-deps --no-build-isolation -C build-dir=/tmp/build_a -t /tmp/a .

(and the same for B from the other checkout), then

    SIMDSOFTMAX_ISA=avx2 python bench/ab_builds.py /tmp/a /tmp/b \\
        log_softmax:float32:16 softmax:float32:256 sample_top_p:float32:151936

Each case is FUNCTION:DTYPE:N, a batch of --elements elements in rows of N
(N(0, sigma^2) logits, a fixed seed). FUNCTION is softmax or log_softmax
(written with out= into a preallocated array, as bench/rows.py does),
logsumexp, sample_top_p (sample(temperature=0.7, top_p=0.95), a new seed
per call), or gumbel_softmax (tau = 1) and gumbel_softmax_scaled (tau = 0.5),
with out= and a new seed per call. Every round starts one process per build, in alternating order,
and each process times every case (warm-up, then the minimum of --repeats
calls) in one thread by its thread CPU time, so that other load on the
machine moves both builds alike; a process's own memory layout (where its
arrays fall within their pages) varies, which is why rounds are processes.
The verdict is the median over rounds of each build's ns per element and
their ratio B / A (< 1: B is faster). Time a case whose code neither build
changed beside the others, as a control: on a 2-vCPU Zen 3 VM such controls
came out at 1.01-1.02 in 25 rounds at load <= 1, and at 0.99-1.21 in 15
rounds at load 5-8; read ratios as no change unless they lie well outside
the control's distance from 1. On that VM a process's times can also fall
in one of two modes ~1.3-1.4x apart (the same build, the same case, every
process with its arrays on transparent huge pages at the same addresses
modulo 2 MiB): a median of rounds can then flip between modes, so the
ratio of the builds' fastest processes is printed beside it.

The kernel set is the environment's SIMDSOFTMAX_ISA (both builds get it).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def parse_case(text):
    func, dtype, n = text.split(":")
    if func not in ("softmax", "log_softmax", "logsumexp", "sample_top_p", "gumbel_softmax", "gumbel_softmax_scaled"):
        raise argparse.ArgumentTypeError(f"unknown function {func!r} in {text!r}")
    return func, dtype, int(n)


def child(folder, cases, elements, sigma, repeats):
    """Runs in the measuring process: simdsoftmax imported from `folder`."""
    sys.path.insert(0, folder)
    import time

    import numpy as np

    import simdsoftmax as ssm

    ssm.set_num_threads(1)
    out = {}
    for text in cases:
        func, dtype, n = parse_case(text)
        rows = max(1, elements // n)
        x = (np.random.default_rng(1).standard_normal((rows, n)) * sigma).astype(dtype)
        y = np.empty_like(x)
        seed = [0]
        if func == "logsumexp":
            call = lambda: ssm.logsumexp(x, axis=-1)  # noqa: E731
        elif func == "sample_top_p":

            def call():
                seed[0] += 1
                ssm.sample(x, temperature=0.7, top_p=0.95, rng=seed[0])

        elif func.startswith("gumbel_softmax"):
            tau = 0.5 if func == "gumbel_softmax_scaled" else 1.0

            def call():
                seed[0] += 1
                ssm.gumbel_softmax(x, tau=tau, rng=seed[0], out=y)

        else:
            fn = getattr(ssm, func)
            call = lambda: fn(x, axis=-1, out=y)  # noqa: E731
        call()
        call()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.thread_time_ns()
            call()
            best = min(best, time.thread_time_ns() - t0)
        out[text] = best / (rows * n)
    print(json.dumps(out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", help="folder holding build A's simdsoftmax package")
    p.add_argument("b", help="folder holding build B's simdsoftmax package")
    p.add_argument("cases", nargs="+", type=parse_case, help="FUNCTION:DTYPE:N")
    p.add_argument("--rounds", type=int, default=15, help="processes per build (default 15)")
    p.add_argument("--elements", type=int, default=1 << 22, help="elements per batch (default 4 Mi)")
    p.add_argument("--sigma", type=float, default=1.0, help="the logits' standard deviation (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per case and process (default 5)")
    args = p.parse_args(argv)
    for folder in (args.a, args.b):
        if not os.path.isdir(os.path.join(folder, "simdsoftmax")):
            p.error(f"{folder} holds no simdsoftmax package")
    texts = [":".join(map(str, c)) for c in args.cases]
    times = {args.a: {t: [] for t in texts}, args.b: {t: [] for t in texts}}
    for r in range(args.rounds):
        for folder in (args.a, args.b) if r % 2 == 0 else (args.b, args.a):
            cmd = [sys.executable, __file__, "--child", folder, ",".join(texts),
                   str(args.elements), str(args.sigma), str(args.repeats)]
            result = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            for t, v in result.items():
                times[folder][t].append(v)
        print(f"\rround {r + 1}/{args.rounds}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"kernel set {os.environ.get('SIMDSOFTMAX_ISA', 'auto')}, 1 thread, {args.rounds} rounds, "
          f"{args.elements} elements, sigma {args.sigma}; ns per element (medians), B / A; and of the minima")
    for t in texts:
        a = statistics.median(times[args.a][t])
        b = statistics.median(times[args.b][t])
        lo_a, lo_b = min(times[args.a][t]), min(times[args.b][t])
        print(f"{t:32s} A {a:8.3f}  B {b:8.3f}  B/A {b / a:6.3f}   minima B/A {lo_b / lo_a:6.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
