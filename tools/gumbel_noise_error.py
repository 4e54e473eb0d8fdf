"""Maximum error of the Gumbel noise g = -log(-log u), the kernels' log
polynomials included, against a float64 transform of the same Philox words,
for every kernel set this CPU runs (or --isa).

The reference uniforms (fine words, gates and top elements, as
gumbel_generic.h defines them) are tests/test_gumbel.py's. The error is
|g - exact| / max(1, |exact|) in units of the dtype's eps; docs/design.md
quotes it.

    python tools/gumbel_noise_error.py [--log2n 20] [--isa NAME]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from test_gumbel import reference_uniforms  # noqa: E402

from simdsoftmax import _core  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log2n", type=int, default=20, help="elements: 2^N (default 20)")
    parser.add_argument("--isa", action="append", help="kernel set(s) (default: all supported)")
    args = parser.parse_args()
    n, row, key = 1 << args.log2n, 3, (1, 2)
    u, q, _ = reference_uniforms(n, row, *key)
    exact = -np.log(np.where(u > 0.5, -np.log1p(-q), -np.log(u)))
    previous = _core.get_isa()
    for isa in args.isa or _core.supported_isas():
        _core.set_isa(isa)
        cells = []
        for dtype in (np.float32, np.float64):
            g = np.empty((1, n), dtype)
            _core.testing.gumbel_noise(g, *key, 0, row, 0)
            err = np.abs(g.ravel().astype(np.float64) - exact) / np.maximum(1, np.abs(exact))
            cells.append(f"{np.dtype(dtype).name} {err.max() / np.finfo(dtype).eps:.2f} eps")
        print(f"{isa:7s} noise error over 2^{args.log2n} elements: " + ", ".join(cells), flush=True)
    _core.set_isa(previous)


if __name__ == "__main__":
    main()
