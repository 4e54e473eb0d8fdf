"""The kernels' exp (the core of every pass) on every kernel set: its measured
maximum ulp error over the finite range where the result is normal, its
overflow, underflow and special values, and every tail of its loop."""

import numpy as np

from reference import EXP_MAX_ULP, wide
from simdsoftmax import _core
from tiles import sizes_for, tiles


def exp_ulps(x):
    y = np.full_like(x, 7.0)
    _core.testing.exp(x, y)
    ref = np.exp(x.astype(wide(x.dtype)))
    return np.abs(y.astype(ref.dtype) - ref) / np.spacing(np.abs(ref.astype(x.dtype))).astype(ref.dtype)


def test_exp_kernel_accuracy(isa, dtype):
    """The kernel's exp over random bit patterns of the finite range where the
    result is normal; the full float32 sweep is tools/exp_ulp_sweep.py."""
    rng = np.random.default_rng(12)
    if dtype == np.float32:
        x = rng.uniform(-87.3, 88.7, 2_000_003).astype(np.float32)
    else:
        x = rng.uniform(-708.0, 709.7, 2_000_003)
    assert exp_ulps(x).max() <= EXP_MAX_ULP[dtype.name]
    # edges: overflow, underflow, specials
    edge = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1000.0, -1e6, -3e38 if dtype == np.float32 else -1e300], dtype)
    out = np.empty_like(edge)
    _core.testing.exp(edge, out)
    assert out[0] == np.inf and out[1] == 0 and np.isnan(out[2]) and out[3] == 1 and out[4] == 1
    assert out[5] == np.inf and out[6] == 0 and out[7] == 0


def test_exp_every_tail(isa, dtype):
    """Every length 1 .. 2*tile-1 of the exp loop, each element within the
    measured bound, nothing written past the end."""
    rng = np.random.default_rng(13)
    for n in sizes_for(tiles(isa, dtype)["vexp"]):
        buf = np.full(n + 16, 7.0, dtype)
        x = rng.uniform(-80.0, 80.0, n).astype(dtype)
        _core.testing.exp(x, buf[:n])
        assert np.all(buf[n:] == 7.0), n
        ref = np.exp(x.astype(wide(dtype)))
        ulps = np.abs(buf[:n].astype(ref.dtype) - ref) / np.spacing(np.abs(ref.astype(dtype))).astype(ref.dtype)
        assert ulps.max() <= EXP_MAX_ULP[dtype.name], n
