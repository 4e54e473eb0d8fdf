"""Per-call cost of a torch tensor in and out over the same call on NumPy arrays.

For softmax, log_softmax and logsumexp over the last axis of small arrays
(float32, float64, float16, bfloat16; NumPy bfloat16 is ml_dtypes'), each
call on a NumPy array and on a torch CPU tensor of the same values is timed
interleaved in one run; the script prints the medians' difference (the
tensor's extra cost per call) and their ratio, never a lone time.

It also times, in the same run, the bare torch calls any implementation must
make per call (the floor of that difference): reading the input tensor's
data pointer, and creating the result tensor around memory already computed
(torch._C._from_dlpack of a capsule, which simdsoftmax uses, and
torch.from_numpy). Differences are printed against the first of these floors.

Usage: python bench/torch_overhead.py [--quick] [--sizes 16,1024] [--repeats 41] [--min]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import simdsoftmax as ssm
from half_arrays import interleaved  # bench/ is on sys.path when this script runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--sizes", default="16,1024", help="row lengths (one row each)")
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--min", action="store_true", help="least time instead of the median (a loaded machine)")
    args = parser.parse_args(argv)
    summary = min if args.min else statistics.median
    import torch

    try:
        import ml_dtypes
    except ImportError:
        ml_dtypes = None
    torch.set_num_threads(1)
    ssm.set_num_threads(1)
    repeats = 11 if args.quick else args.repeats
    inner = 1000 if args.quick else 3000
    stat = "least" if args.min else "medians"
    print(f"simdsoftmax {ssm.__version__}, isa={ssm.isa()}, torch {torch.__version__}; {stat} of {repeats}")

    t16 = torch.zeros(16)
    a16 = np.zeros(16, np.float32)
    capsule_source = np.zeros(16, np.float32)
    from_dlpack = torch._C._from_dlpack
    noop, data_ptr, dlpack_out, numpy_out, numpy_in = interleaved(
        [
            lambda: None,
            lambda: t16.data_ptr(),
            lambda: from_dlpack(capsule_source.__dlpack__()),
            lambda: torch.from_numpy(a16),
            lambda: t16.numpy(),
        ],
        repeats,
        inner,
        summary,
    )
    floor = (data_ptr - noop) + (dlpack_out - noop)
    print(
        "floor (bare torch calls, us, loop overhead removed): "
        f"t.data_ptr() {(data_ptr - noop) * 1e6:.2f}, "
        f"torch._C._from_dlpack(capsule) {(dlpack_out - noop) * 1e6:.2f} "
        f"(incl. making the capsule), torch.from_numpy {(numpy_out - noop) * 1e6:.2f}, "
        f"t.numpy() {(numpy_in - noop) * 1e6:.2f}; data_ptr + from_dlpack = {floor * 1e6:.2f}"
    )
    print(f"\n{'n':>6s} {'dtype':9s} {'function':12s} {'torch-numpy us':>14s} {'torch/numpy':>11s} {'over floor':>10s}")
    dtypes = [("float32", torch.float32, np.float32), ("float64", torch.float64, np.float64),
              ("float16", torch.float16, np.float16)]
    if ml_dtypes is not None:
        dtypes.append(("bfloat16", torch.bfloat16, ml_dtypes.bfloat16))
    functions = (
        ("softmax", lambda a: ssm.softmax(a, axis=-1)),
        ("log_softmax", lambda a: ssm.log_softmax(a, axis=-1)),
        ("logsumexp", lambda a: ssm.logsumexp(a, axis=-1)),
    )
    for n in (int(s) for s in args.sizes.split(",")):
        values = np.random.default_rng(0).normal(size=(1, n)).astype(np.float32)
        for label, torch_dtype, numpy_dtype in dtypes:
            a = values.astype(numpy_dtype)
            t = torch.from_numpy(values).to(torch_dtype)
            for name, call in functions:
                call(t)  # the first tensor call sets the fast path up
                np_t, torch_t = interleaved([lambda: call(a), lambda: call(t)], repeats, inner, summary)
                extra = torch_t - np_t
                print(
                    f"{n:6d} {label:9s} {name:12s} {extra * 1e6:+14.2f} {torch_t / np_t:11.3f} "
                    f"{(extra - floor) * 1e6:+10.2f}"
                )


if __name__ == "__main__":
    main()
