"""Measure softmax's error in ulps against the exact result, per kernel set
and algorithm, next to SciPy and PyTorch on the same inputs.

Inputs: N(0, 8^2) float32 logits; the exact result is computed in float64
from the same float32 inputs (for float64 data: in longdouble). The error is
max |y - exact| / exact over outputs above the smallest normal, in units of
2^-23 (float32) / 2^-52 (float64). The README quotes this table.

    python tools/softmax_ulp.py                 # float32, sizes 31 .. 1e5 and 2^24
    python tools/softmax_ulp.py --dtype float64
"""
import argparse

import numpy as np

import simdsoftmax as ssm

ALGORITHMS = ["two-pass", "three-pass-recompute", "three-pass-reload", "online"]


def exact(x):
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    xw = x.astype(wide)
    e = np.exp(xw - xw.max())
    return e / e.sum()


def ulps(y, ref, dtype):
    keep = ref > np.finfo(dtype).tiny
    rel = np.abs(y[keep].astype(ref.dtype) - ref[keep]) / ref[keep]
    return float(rel.max() / np.finfo(dtype).eps)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--sizes", default="31,1000,100000,16777216")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    sizes = [int(s) for s in args.sizes.split(",")]
    peers = {}
    try:
        import scipy.special

        peers["scipy"] = scipy.special.softmax
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
        peers["torch"] = lambda a: torch.softmax(torch.from_numpy(a), 0).numpy()
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    cols = [f"{isa}/{a}" for isa in ssm.available_isas() for a in ALGORITHMS] + list(peers)
    print(f"max error in ulps, {dtype}, N(0, 8^2) logits")
    print("n".rjust(9) + "".join(c.rjust(max(12, len(c) + 2)) for c in cols))
    for n in sizes:
        x = (rng.standard_normal(n) * 8).astype(dtype)
        ref = exact(x)
        row = []
        for isa in ssm.available_isas():
            with ssm.use_isa(isa):
                for a in ALGORITHMS:
                    row.append(ulps(ssm.softmax(x, algorithm=a), ref, dtype))
        for f in peers.values():
            row.append(ulps(f(x), ref, dtype))
        print(f"{n:9d}" + "".join(f"{v:.2f}".rjust(max(12, len(c) + 2)) for v, c in zip(row, cols)), flush=True)


if __name__ == "__main__":
    main()
