"""top-p's draw-first coarse pass (mass_coarse, float32 rows) on its own:
the row's max exactly (when asked for; without it the same sums to the
bit), and the masses above and not above a pivot,
relative to a reference, within the pass's stated bound of the exact sums
(each element's mass 2^((x - ref) s), s = log2(e) / T, within kCoarseRel =
0.031 of its estimate or below 2^-124 both; plus the sums' rounding bound
the pass returns). Rows with the max (a unique one) at every position of
the first group of vectors in flight, around a sum block's end and in the
tail, so that a lost accumulator or a max kept by one group only would
fail. And the float32 estimate pass's collect of a zone's values: in row
order, counted past the buffer, nothing written past it, at every fill of
the buffer's last vector. Every kernel set."""

import math

import numpy as np
import pytest

from simdsoftmax import _core

COARSE_REL = 0.031  # kCoarseRel, csrc/kernels/sample_api.h
LOG2E = math.log2(math.e)
# The widest loop step of the pass: 8 vectors of 16 float32 lanes (AVX-512,
# CoarseTuning); the float32 sums are flushed every 64 steps (kCoarseBlock).
STEP = 128
BLOCK = 64 * STEP


def exact_masses(x, ref, inv_temp, pivot):
    s = inv_temp * LOG2E
    xf = x.astype(np.float64)
    y = (xf - ref) * s
    m = np.exp2(np.maximum(y, -1000.0))
    # float64 sums (pairwise: ~1e-15 relative, far inside the bound)
    return float(np.sum(m[xf > pivot])), float(np.sum(m[xf <= pivot]))


def check(x, ref, inv_temp, pivot):
    ok, above, rest, rnd, mx = _core.sample_top_p_coarse(x, ref, inv_temp, pivot)
    assert ok == 1.0
    assert mx == float(x.max())
    # without the running max: the same sums to the bit, the max not found
    assert list(_core.sample_top_p_coarse(x, ref, inv_temp, pivot, find_max=False)) == [ok, above, rest, rnd, -math.inf]
    a, r = exact_masses(x, ref, inv_temp, pivot)
    tiny = x.size * 2.0**-124
    assert abs(a - above) <= COARSE_REL * above + rnd + tiny, (a, above, rnd)
    assert abs(r - rest) <= COARSE_REL * rest + rnd + tiny, (r, rest, rnd)


def test_the_max_in_every_position(isa):
    g = np.random.default_rng(3)
    n = 2 * BLOCK + 3 * STEP + 7  # two sum blocks, full steps and a 7-lane tail
    base = g.normal(0, 1, n).astype(np.float32)
    positions = list(range(STEP + 8)) + list(range(BLOCK - 3, BLOCK + 3)) + list(range(n - 12, n))
    for p in positions:
        x = base.copy()
        x[p] = 9.0  # far above the rest (their max ~4.3): any other max is wrong
        ref = float(x[p // 2])  # a reference that is not the max, as the draw's winner
        check(x, ref, 1 / 0.7, pivot=float(x[(p * 7) % n]))


@pytest.mark.parametrize("sigma", [1e-3, 1.0, 3.0, 30.0])
def test_masses_within_the_bound(isa, sigma):
    g = np.random.default_rng(int(sigma * 1000))
    for n in (1, 15, 17, STEP - 1, STEP + 1, BLOCK + 5, 20011):
        x = g.normal(0, sigma, n).astype(np.float32)
        xs = np.sort(x)
        for t in (0.7, 1.0):
            # the reference at the max, at the median and near the bottom;
            # pivots below everything, inside and at the max
            for ref in (float(xs[-1]), float(xs[n // 2]), float(xs[n // 50])):
                if (float(xs[-1]) - ref) * LOG2E / t > 126:
                    continue  # outside the pass's range (the driver retries from the max)
                for pivot in (-math.inf, float(xs[n // 3]), float(xs[(9 * n) // 10]), float(xs[-1])):
                    check(x, ref, 1 / t, pivot)


def test_elements_far_below_the_reference(isa):
    """Masses below 2^-126 of the reference are clamped there: -inf and
    values thousands of units below add nothing measurable."""
    g = np.random.default_rng(5)
    x = g.normal(0, 1, 3 * STEP + 5).astype(np.float32)
    x[::3] = -np.inf
    x[1::7] = -1e30
    check(x, float(np.max(x)), 1.0, float(np.median(x[np.isfinite(x)])))


# top-p's estimate pass also collects the row's values in a zone (clo, chi]
# for the exact finish: in row order, into a buffer of cap values, counted
# past it (nothing stored past cap, every value stored while they fit).
SENTINEL = -12345.0


def collect(x, clo, chi, cap, ref=None, t=0.7):
    out = np.full(cap + 40, SENTINEL)
    ref = float(x.max()) if ref is None else ref
    count = _core.sample_top_p_estimate_collect(x, ref, 1 / t, float(np.median(x)), clo, chi, out, cap)
    assert (out[cap:] == SENTINEL).all()  # nothing written past cap
    # What was stored (all of the zone when it fits; else as many whole
    # vectors or lanes as fit, the kernel set's choice) is the zone's
    # first values in row order, with nothing stored after a gap.
    xd = x.astype(np.float64)
    want = xd[(xd > clo) & (xd <= chi)]
    stored = out[:cap]
    gap = np.flatnonzero(stored == SENTINEL)
    k = int(gap[0]) if gap.size else cap
    assert (stored[k:] == SENTINEL).all()
    np.testing.assert_array_equal(stored[:k], want[:k])
    return count, out


def test_collected_zone_in_row_order(isa):
    g = np.random.default_rng(9)
    for n, dense in ((20011, 0.5), (20011, 0.04), (4099, 0.9), (70, 1.0)):
        x = g.normal(0, 1, n).astype(np.float32)
        xs = np.sort(x)
        clo, chi = float(xs[int(n * (0.5 - dense / 2))]), float(xs[min(n - 1, int(n * (0.5 + dense / 2)))])
        want = x[(x > clo) & (x <= chi)].astype(np.float64)
        for cap in (want.size + 40, want.size, want.size - 1, want.size - 15, want.size - 16, want.size - 17, 0):
            if cap < 0:
                continue
            count, out = collect(x, clo, chi, cap)
            assert count == want.size
            if cap >= want.size:
                np.testing.assert_array_equal(out[:count], want)


def test_collect_buffer_fills_up_to_its_end(isa):
    """Every count that reaches the buffer's last 16 slots: the values
    stored while they fit are the first ones in row order."""
    g = np.random.default_rng(10)
    x = g.normal(0, 1, 3000).astype(np.float32)
    clo, chi = -0.5, 0.7
    want = x[(x > np.float32(clo)) & (x <= np.float32(chi))].astype(np.float64)
    for cap in range(want.size - 20, want.size + 3):
        count, out = collect(x, clo, chi, cap)
        assert count == want.size
        if cap >= want.size:
            np.testing.assert_array_equal(out[:count], want)


def test_collect_bounds_between_floats_and_infinite(isa):
    """clo and chi that are not float32 values, -inf and +inf: the zone is
    the float32 values x with clo < x <= chi; -inf logits never in it."""
    g = np.random.default_rng(11)
    x = g.normal(0, 1, 5000).astype(np.float32)
    x[::11] = -np.inf
    for clo, chi in ((-0.1 + 1e-12, 0.3 - 1e-12), (-np.inf, 0.0), (0.2, np.inf), (-np.inf, np.inf)):
        xd = x.astype(np.float64)
        want = xd[(xd > clo) & (xd <= chi)]
        count, out = collect(x, clo, chi, want.size + 16, ref=float(x.max()))
        assert count == want.size
        np.testing.assert_array_equal(out[:count], want)
