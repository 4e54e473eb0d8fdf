"""Digest of the kernels' exp outputs, to show two kernel sets give the same bits.

tools/exp_ulp_sweep.py measures the exp error against a float64/longdouble
reference, which is slow where that reference is (under emulation, and on
aarch64, where longdouble is a software quad). When two kernel sets compute
exp with the same correctly rounded operations in the same order (neon and
avx2 do), their outputs are identical and so is their error: this script
hashes _core.exp over every float32 bit pattern whose exp is a normal float32
and over --samples uniform float64 inputs (the same inputs on every platform:
NumPy's PCG64 uniforms are exact integer arithmetic), so the digests printed
on two machines can be compared.

    python tools/exp_bits_digest.py [--isa NAME] [--samples N]
"""
import argparse
import hashlib

import numpy as np

from simdsoftmax import _core

CHUNK = 1 << 22
# Bit patterns with exp(x) a normal float32: x in [-87.33655, 88.72283].
F32_RANGES = ((0x00000000, 0x42B17218), (0x80000000, 0xC2AEAC50))


def digest_f32():
    h = hashlib.sha256()
    y = np.empty(CHUNK, np.float32)
    for lo, hi in F32_RANGES:
        for start in range(lo, hi + 1, CHUNK):
            x = np.arange(start, min(start + CHUNK, hi + 1), dtype=np.uint32).view(np.float32)
            _core.testing.exp(x, y[: x.size])
            h.update(y[: x.size].tobytes())
    return h.hexdigest()[:32]


def digest_f64(samples, seed=0):
    rng = np.random.default_rng(seed)
    h = hashlib.sha256()
    for done in range(0, samples, CHUNK):
        x = rng.uniform(-708.3, 709.7, min(CHUNK, samples - done))
        y = np.empty_like(x)
        _core.testing.exp(x, y)
        h.update(y.tobytes())
    return h.hexdigest()[:32]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10**8, help="float64 random samples (default 1e8)")
    parser.add_argument("--isa", action="append", help="kernel set(s) (default: all supported)")
    args = parser.parse_args()
    previous = _core.get_isa()
    for isa in args.isa or _core.supported_isas():
        _core.set_isa(isa)
        print(f"{isa:7s} float32 {digest_f32()}  float64 {digest_f64(args.samples)} ({args.samples:.0e} samples)",
              flush=True)
    _core.set_isa(previous)


if __name__ == "__main__":
    main()
