"""Same-run ratios for the sampling targets: sample(), topk() and the Gumbel
functions on LLM rows, batches and short rows.

Every figure is a ratio of medians measured in the same run, with the
functions interleaved round by round (each round times every function once),
so a noisy machine slows numerator and denominator alike. Absolute times are
printed only as context.

1. One float32 row of 151,936 (an LLM vocabulary, cache-resident), logits
   N(0, s^2) for s = 1 and 3, one thread, every kernel set this machine runs:
   gumbel_argmax and gumbel_topk(k=8) against the extension's read probe of
   the same row; sample(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05)
   against the read probe (and with logprobs="raw" against logsumexp + 3
   reads); sample(temperature=0.7, top_p=0.95) against logsumexp; torch's
   sort-based top-p path and torch.multinomial(torch.softmax) against
   sample (when torch is installed; timed in rounds of their own, so that
   torch's temporaries do not evict the row between our calls).
2. The same for a batch of 64 such rows, 1 and 2 threads (and 2 threads
   against 1).
3. Short-row batches (1,000,000 x 8, 100,000 x 64, 10,000 x 1000):
   gumbel_argmax and gumbel_topk(k=2) against the faster of NumPy's
   gumbel + argmax and torch's exponential race; gumbel_softmax against
   softmax.

    python bench/sampling.py                 # every part, ~3-5 minutes
    python bench/sampling.py --parts 1 --rounds 31
    python bench/sampling.py --parts 3 --isa avx2
"""
import argparse
import itertools
import statistics
import time

import numpy as np

import simdsoftmax as ssm
from simdsoftmax import _core

try:
    import torch
except ImportError:  # torch is optional: its rows are skipped
    torch = None

VOCAB = 151_936
FILTERED = dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05)
NUCLEUS = dict(temperature=0.7, top_p=0.95)


def interleaved(fns, rounds):
    """name -> median seconds, the functions timed in turn, round by round."""
    for fn in fns.values():
        fn()  # warm-up
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in samples.items()}


def torch_fns(x):
    """torch's sort-based top-p (the vLLM CPU sampler's steps) and multinomial."""
    if torch is None:
        return {}
    tx = torch.from_numpy(x)

    def top_p_sorted(p=0.95, t=0.7):
        logits = tx / t
        sorted_logits, order = torch.sort(logits, dim=-1, descending=False)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        mask = cum <= 1 - p
        mask[..., -1] = False
        sorted_logits.masked_fill_(mask, -float("inf"))
        logits = torch.empty_like(sorted_logits).scatter_(-1, order, sorted_logits)
        probs = logits.softmax(dim=-1)
        return probs.div_(torch.empty_like(probs).exponential_()).argmax(dim=-1)

    def multinomial():
        return torch.multinomial(torch.softmax(tx, dim=-1), 1)

    return {"torch sort top-p": top_p_sorted, "torch multinomial": multinomial}


def row_fns(x):
    flat = x.reshape(-1)
    # One Generator for every call, as in a decode loop: rng=<int> would time
    # NumPy's Generator construction (tens of microseconds) with each draw.
    gen = np.random.default_rng(1)
    # The C++ draw alone (no key drawn from a Generator, no Python checks).
    # A fresh key per call (a counter: nanoseconds): the pruned draw's cost
    # depends on the key, and one fixed key times one lucky or unlucky draw.
    keys = itertools.count()
    rows = x.reshape(-1, x.shape[-1])
    idx, score = np.empty((rows.shape[0], 1), np.intp), np.empty((rows.shape[0], 1))
    fns = {
        "read probe": lambda: _core.probe_read(flat),
        "logsumexp": lambda: ssm.logsumexp(x, axis=-1),
        "gumbel_argmax": lambda: ssm.gumbel_argmax(x, rng=gen),
        "gumbel_topk(8)": lambda: ssm.gumbel_topk(x, 8, rng=gen),
        "sample k50 p.9 m.05": lambda: ssm.sample(x, rng=gen, **FILTERED),
        "sample k50 p.9 m.05 raw": lambda: ssm.sample(x, rng=gen, logprobs="raw", **FILTERED),
        "sample p.95": lambda: ssm.sample(x, rng=gen, **NUCLEUS),
        "topk(50)": lambda: ssm.topk(x, 50),
        "gumbel_argmax kernel": lambda: _core.gumbel_topk(rows, 1, 1.0, next(keys), 2, 3, idx, score, True),
    }
    return fns


def timed_rows(x, rounds):
    """Our functions interleaved among themselves, then torch's in a round of their own.

    torch's sort-based path touches several row-sized temporaries: interleaved
    with ours it evicts the row from the cache between our calls, and every
    ratio above would be of cold reads. So ours are timed on the warm row, and
    torch's two paths in rounds of their own, each at its own steady state."""
    t = interleaved(row_fns(x), rounds)
    t.update(interleaved(torch_fns(x), rounds))
    return t


def report_rows(t, label):
    read, lse = t["read probe"], t["logsumexp"]
    print(f"  {label}: read probe {read * 1e6:.1f} us, logsumexp {lse * 1e6:.1f} us (context only)")
    checks = [
        ("gumbel_argmax / read", t["gumbel_argmax"] / read, "<= 2.5"),
        ("gumbel_topk(8) / read", t["gumbel_topk(8)"] / read, "<= 3"),
        ("sample(k50,p.9,m.05) / read", t["sample k50 p.9 m.05"] / read, "<= 3"),
        ("sample(..., raw) / (logsumexp + 3 reads)", t["sample k50 p.9 m.05 raw"] / (lse + 3 * read), "<= 1"),
        ("sample(p.95) / logsumexp", t["sample p.95"] / lse, "<= 1.5"),
        ("topk(50) / read", t["topk(50)"] / read, "(no target)"),
        ("gumbel_argmax kernel only / read", t["gumbel_argmax kernel"] / read, "(no target; no rng draw)"),
    ]
    if "torch sort top-p" in t:
        print(f"    (torch sort top-p {t['torch sort top-p'] * 1e6:.0f} us, "
              f"torch multinomial {t['torch multinomial'] * 1e6:.0f} us, context only)")
        checks.append(("torch sort top-p / sample(p.95)", t["torch sort top-p"] / t["sample p.95"], ">= 100"))
        checks.append(("torch multinomial / sample(p.95)", t["torch multinomial"] / t["sample p.95"], ">= 20"))
    for name, ratio, target in checks:
        print(f"    {name:44s} {ratio:8.2f}   target {target}")


def part_rows(isas, rounds, batch, threads_list):
    for sigma in (1.0, 3.0):
        x = np.random.default_rng(0).normal(0, sigma, (batch, VOCAB)).astype(np.float32)
        if batch == 1:
            x = x[0]
        for isa in isas:
            per_threads = {}
            for threads in threads_list:
                ssm.set_num_threads(threads)
                if torch is not None:
                    torch.set_num_threads(threads)
                with ssm.use_isa(isa):
                    per_threads[threads] = timed_rows(x, rounds)
                report_rows(per_threads[threads], f"sigma={sigma:g} isa={isa} rows={batch} threads={threads}")
            if 1 in per_threads and 2 in per_threads:
                for name in ("gumbel_argmax", "sample k50 p.9 m.05", "sample p.95"):
                    speedup = per_threads[1][name] / per_threads[2][name]
                    print(f"    {name + ': 1 thread / 2 threads':44s} {speedup:8.2f}   target >= 1.8")


def part_short(isas, rounds):
    g = np.random.default_rng(0)
    for rows, n in ((1_000_000, 8), (100_000, 64), (10_000, 1000)):
        x = g.normal(0, 1, (rows, n)).astype(np.float32)
        peers = {"numpy gumbel+argmax": lambda: np.argmax(x + g.gumbel(size=x.shape).astype(np.float32), axis=-1)}
        if torch is not None:
            tx = torch.from_numpy(x)
            peers["torch exponential race"] = lambda: torch.argmax(tx - torch.empty_like(tx).exponential_().log(), -1)
        for isa in isas:
            with ssm.use_isa(isa):
                fns = dict(peers)
                fns["gumbel_argmax"] = lambda: ssm.gumbel_argmax(x, rng=1)
                fns["gumbel_topk(2)"] = lambda: ssm.gumbel_topk(x, 2, rng=1)
                fns["gumbel_softmax"] = lambda: ssm.gumbel_softmax(x, rng=1)
                fns["softmax"] = lambda: ssm.softmax(x, axis=-1)
                t = interleaved(fns, rounds)
            peer = min(t[name] for name in peers)
            print(f"  {rows} x {n} isa={isa}:")
            print(f"    {'best peer / gumbel_argmax':44s} {peer / t['gumbel_argmax']:8.2f}   target >= 5")
            print(f"    {'best peer / gumbel_topk(2)':44s} {peer / t['gumbel_topk(2)']:8.2f}   target >= 5")
            print(f"    {'gumbel_softmax / softmax':44s} {t['gumbel_softmax'] / t['softmax']:8.2f}   target <= 3")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="123", help="which parts to run (digits 1-3)")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--isa", action="append", help="kernel set(s) to run (default: every one available)")
    args = parser.parse_args()
    isas = args.isa or ssm.available_isas()
    threads_before = ssm.get_num_threads()
    print(ssm.show_runtime() or "", end="")
    print(f"torch: {torch.__version__ if torch is not None else 'not installed (its rows are skipped)'}")
    print("Ratios of medians, functions interleaved in the same run.")
    try:
        if "1" in args.parts:
            print("1. one row of 151,936 float32, 1 thread")
            part_rows(isas, args.rounds, 1, [1])
        if "2" in args.parts:
            print("2. 64 rows of 151,936 float32, 1 and 2 threads")
            part_rows(isas, max(3, args.rounds // 4), 64, [1, 2])
        if "3" in args.parts:
            print("3. short-row batches, default threads")
            ssm.set_num_threads(threads_before)
            part_short(isas, max(3, args.rounds // 4))
    finally:
        ssm.set_num_threads(threads_before)


if __name__ == "__main__":
    main()
