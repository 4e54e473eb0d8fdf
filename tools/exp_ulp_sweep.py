"""Measure the kernels' exp error in ulps, for every kernel set this CPU runs.

float32: every bit pattern whose exp is a normal float32 (x in [-87.33655,
88.72283], about 2.2e9 inputs; --f32-step S takes every S-th of them
instead, which still visits every binade); float64: --samples uniform random
inputs over [-708.3, 709.7]. The reference is np.exp in float64 (float32
inputs; its 0.5-ulp-of-double error is far below a float32 ulp) and np.exp
in longdouble (float64 inputs; 80-bit on x86-64, a software IEEE quad on
aarch64). Prints the maximum error per kernel set; the README quotes it.
--digest adds digests of the outputs over the same inputs, so that a run on
another machine (or under emulation) can show it computes the same bits.

    python tools/exp_ulp_sweep.py            # ~1-2 min per kernel set
    python tools/exp_ulp_sweep.py --samples 100000000
    # under emulation (tools/emulated_arm64.sh builds the root):
    python tools/exp_ulp_sweep.py --isa neon --f32-step 16 --samples 1000000 --digest
"""
import argparse
import hashlib
import time

import numpy as np

from simdsoftmax import _core

CHUNK = 1 << 24
# Bit patterns with exp(x) a normal float32 (the ends are filtered exactly below).
F32_RANGES = ((0x00000000, 0x42B17218), (0x80000000, 0xC2AEAC50))


def sweep_f32(step=1, digest=None):
    worst, worst_x, count = 0.0, None, 0
    y = np.empty(CHUNK, np.float32)
    tiny, big = np.finfo(np.float32).tiny, np.finfo(np.float32).max
    for lo, hi in F32_RANGES:
        for start in range(lo, hi + 1, CHUNK * step):
            stop = min(start + CHUNK * step, hi + 1)
            x = np.arange(start, stop, step, dtype=np.uint64).astype(np.uint32).view(np.float32)
            out = y[: x.size]
            _core.testing.exp(x, out)
            if digest:
                digest.update(out.tobytes())
            ref = np.exp(x.astype(np.float64))
            keep = (ref >= tiny) & (ref <= big)
            count += int(keep.sum())
            ulp = np.abs(out[keep].astype(np.float64) - ref[keep]) / np.spacing(ref[keep].astype(np.float32)).astype(
                np.float64
            )
            if ulp.size:
                i = int(np.argmax(ulp))
                if ulp[i] > worst:
                    worst, worst_x = float(ulp[i]), float(x[keep][i])
    return worst, worst_x, count


def sweep_f64(samples, seed=0, digest=None):
    rng = np.random.default_rng(seed)
    worst, worst_x = 0.0, None
    for done in range(0, samples, CHUNK):
        x = rng.uniform(-708.3, 709.7, min(CHUNK, samples - done))
        y = np.empty_like(x)
        _core.testing.exp(x, y)
        if digest:
            digest.update(y.tobytes())
        ref = np.exp(x.astype(np.longdouble))
        ulp = np.abs(y.astype(np.longdouble) - ref) / np.spacing(ref.astype(np.float64)).astype(np.longdouble)
        i = int(np.argmax(ulp))
        if ulp[i] > worst:
            worst, worst_x = float(ulp[i]), float(x[i])
    return worst, worst_x


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10**8, help="float64 random samples (default 1e8)")
    parser.add_argument("--f32-step", type=int, default=1, help="every S-th float32 bit pattern (default 1: all)")
    parser.add_argument("--digest", action="store_true",
                        help="also print digests of the outputs: two kernel sets with equal digests gave the same bits")
    parser.add_argument("--isa", action="append", help="kernel set(s) to sweep (default: all supported)")
    args = parser.parse_args()
    previous = _core.get_isa()
    for isa in args.isa or _core.supported_isas():
        _core.set_isa(isa)
        start = time.perf_counter()
        d32, d64 = hashlib.sha256(), hashlib.sha256()
        w32, x32, n32 = sweep_f32(args.f32_step, d32 if args.digest else None)
        w64, x64 = sweep_f64(args.samples, digest=d64 if args.digest else None)
        print(
            f"{isa:7s} float32 max {w32:.4f} ulp (x={x32!r}, {n32} inputs)   "
            f"float64 max {w64:.4f} ulp (x={x64!r}, {args.samples:.0e} samples)   "
            f"[{time.perf_counter() - start:.0f} s]",
            flush=True,
        )
        if args.digest:
            print(f"{isa:7s} output digests: float32 {d32.hexdigest()[:32]}  float64 {d64.hexdigest()[:32]}", flush=True)
    _core.set_isa(previous)


if __name__ == "__main__":
    main()
