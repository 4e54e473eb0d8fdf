"""top-p's collect pass without masses (kernels/sample_generic.h, collect:
the next zone out when the sampled zone missed the threshold, and short rows
collected whole): the values x with clo < x <= chi, in row order, stored
while they fit the buffer and counted past it. Its vector test runs on
bounds widened to the row's type and only the lanes it flags are checked
exactly, so bounds between two float32 values, on a value, infinite or
empty, every tail length after the 4-vector groups, ties, -inf and +inf
logits, dense and sparse zones, float32 and float64, on every kernel set."""

import numpy as np
import pytest

from simdsoftmax import _core

SENTINEL = -12345.0


def check(x, clo, chi, cap):
    out = np.full(cap + 24, SENTINEL)
    count = _core.sample_top_p_collect(x, clo, chi, out, cap)
    xd = x.astype(np.float64)
    want = xd[(xd > clo) & (xd <= chi)]
    assert count == want.size, (x.dtype, x.size, clo, chi, cap)
    got = min(cap, want.size)
    np.testing.assert_array_equal(out[:got], want[:got])
    assert (out[got:] == SENTINEL).all()  # nothing stored past the zone or cap


def bounds(x):
    """Bounds on values of x, between two of them (one float64 ulp off a
    float32 value, and midway), infinite, and an empty range."""
    f = np.sort(x[np.isfinite(x)].astype(np.float64))
    if f.size == 0:
        return [(-np.inf, np.inf), (0.0, 1.0)]
    a, b = f[f.size // 4], f[(3 * f.size) // 4]
    out = [(a, b), (np.nextafter(a, np.inf), np.nextafter(b, -np.inf)), (np.nextafter(a, -np.inf), np.nextafter(b, np.inf))]
    if x.dtype == np.float32:
        ua = float(np.nextafter(np.float32(a), np.float32(np.inf)))
        ub = float(np.nextafter(np.float32(b), np.float32(-np.inf)))
        out += [((a + ua) / 2, (b + ub) / 2), ((a + ua) / 2, b), (a, (b + ub) / 2)]
    out += [(-np.inf, b), (a, np.inf), (-np.inf, np.inf), (b, a), (a, a), (-np.inf, -np.inf), (f[-1], np.inf)]
    return out


@pytest.mark.parametrize("n", list(range(1, 80)) + [127, 128, 129, 1000, 4097])
def test_every_length_and_bound(isa, dtype, n):
    g = np.random.default_rng(n)
    x = g.normal(0, 1, n).astype(dtype)
    if n > 3:
        x[g.integers(0, n, n // 4)] = x[0]  # ties
    if n > 7:
        x[n // 3] = -np.inf
        x[n // 2] = np.inf
    for clo, chi in bounds(x):
        for cap in (n + 8, max(0, n // 3)):
            check(x, clo, chi, cap)


@pytest.mark.parametrize("dense", [0.001, 0.04, 0.5, 1.0])
def test_long_rows_sparse_and_dense_zones(isa, dtype, dense):
    g = np.random.default_rng(int(dense * 1000))
    n = 151_936
    x = g.normal(0, 1, n).astype(dtype)
    xs = np.sort(x.astype(np.float64))
    clo = xs[int((n - 1) * (0.5 - dense / 2))] if dense < 1 else -np.inf
    chi = xs[int((n - 1) * (0.5 + dense / 2))]
    want = int(((x > clo) & (x <= chi)).sum())
    for cap in (want + 8, want, want - 1, want // 2, 0):
        check(x, clo, chi, max(cap, 0))
    # a bound between two values of the row's type
    check(x, float(np.nextafter(clo, np.inf)) if clo > -np.inf else clo, float(np.nextafter(chi, -np.inf)), want + 8)
