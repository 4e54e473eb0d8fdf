"""Measure the kernels' exp error in ulps, for every kernel set this CPU runs.

float32: every one of the 2^32 bit patterns whose exp is a normal float32
(x in [-87.33, 88.72]); float64: --samples uniform random inputs over
[-708.3, 709.7]. The reference is np.exp in float64 (float32 inputs; its
0.5-ulp-of-double error is far below a float32 ulp) and np.exp in longdouble
(float64 inputs). Prints the maximum error per kernel set; the README quotes it.

    python tools/exp_ulp_sweep.py            # ~1-2 min per kernel set
    python tools/exp_ulp_sweep.py --samples 100000000
"""
import argparse

import numpy as np

from simdsoftmax import _core

CHUNK = 1 << 24


def sweep_f32():
    worst, worst_x = 0.0, None
    y = np.empty(CHUNK, np.float32)
    for start in range(0, 1 << 32, CHUNK):
        bits = np.arange(start, start + CHUNK, dtype=np.uint64).astype(np.uint32)
        x = bits.view(np.float32)
        ref = np.exp(x.astype(np.float64))
        keep = np.isfinite(x) & (ref >= np.finfo(np.float32).tiny) & (ref <= np.finfo(np.float32).max)
        if not keep.any():
            continue
        _core.testing.exp(x, y)
        ulp = np.abs(y[keep].astype(np.float64) - ref[keep]) / np.spacing(ref[keep].astype(np.float32)).astype(np.float64)
        i = int(np.argmax(ulp))
        if ulp[i] > worst:
            worst, worst_x = float(ulp[i]), float(x[keep][i])
    return worst, worst_x


def sweep_f64(samples, seed=0):
    rng = np.random.default_rng(seed)
    worst, worst_x = 0.0, None
    for done in range(0, samples, CHUNK):
        x = rng.uniform(-708.3, 709.7, min(CHUNK, samples - done))
        y = np.empty_like(x)
        _core.testing.exp(x, y)
        ref = np.exp(x.astype(np.longdouble))
        ulp = np.abs(y.astype(np.longdouble) - ref) / np.spacing(ref.astype(np.float64)).astype(np.longdouble)
        i = int(np.argmax(ulp))
        if ulp[i] > worst:
            worst, worst_x = float(ulp[i]), float(x[i])
    return worst, worst_x


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10**8, help="float64 random samples (default 1e8)")
    parser.add_argument("--isa", action="append", help="kernel set(s) to sweep (default: all supported)")
    args = parser.parse_args()
    previous = _core.get_isa()
    for isa in args.isa or _core.supported_isas():
        _core.set_isa(isa)
        w32, x32 = sweep_f32()
        w64, x64 = sweep_f64(args.samples)
        print(f"{isa:7s} float32 max {w32:.4f} ulp (x={x32!r})   float64 max {w64:.4f} ulp (x={x64!r}, {args.samples:.0e} samples)", flush=True)
    _core.set_isa(previous)


if __name__ == "__main__":
    main()
