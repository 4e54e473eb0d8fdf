"""top-p's estimate pass in float32 lanes (float32 and float16 rows): the
masses 2^n p7(r) from a float32 reduction against an exact c + n split,
summed in float32 trees, then float64, with a bound about 30x looser than
the float64-lane estimate's. Where that bound cannot decide, the float64-lane
estimate runs, then the exact passes: the threshold must be the exact
passes' one to the bit whatever decided it. Checked at cumulative masses
around the float32 bound's size, near the limits of the float32 reduction
(|max / T| around 2^12 / log2(e), large |x| in the row, tiny and huge
temperatures), at sizes around the float32 tiles, on chunked rows, and for
float16 and float64 rows; and how often ordinary LLM rows need more than the
float32 estimate."""

import math

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core
from test_sample_top_p import check_row
from test_sample_top_p_estimate import assert_same_floor, boundary_top_ps

LOG2E = 1 / math.log(2)


def counts():
    return np.array(_core.sample_top_p_estimate_counts())


@pytest.mark.parametrize("top_p", [0.5, 0.95, 0.999])
def test_boundary_close_at_the_float32_bound(isa, top_p):
    """Cumulative masses 1e-9 .. 3e-6 relative from top_p: on both sides of
    the float32 bound (~2.4e-7 per element, ~2.3e-8 of the row at top_p=.95)
    and of the float64 one; the same threshold as the exact passes."""
    before = counts()
    for n in (4097, 20011, 70001):
        g = np.random.default_rng(n + 31)
        for sigma, t in ((1.0, 0.7), (3.0, 0.7), (1.0, 1.5)):
            x = g.normal(0, sigma, n).astype(np.float32)
            for p, delta in boundary_top_ps(x, t, quantiles=(top_p,)):
                if delta > 0:
                    continue
                for d in (0.0, 1e-9, -1e-9, 1e-8, -1e-8, 3e-8, -3e-8, 1e-7, -1e-7, 3e-7, -3e-7, 3e-6, -3e-6):
                    if 0 < p * (1 + d) < 1:
                        assert_same_floor(x, t, p * (1 + d))
    decided, undecided = counts() - before
    assert decided > 0 and undecided > 0, (decided, undecided)


@pytest.mark.parametrize("n", [4097, 4103, 4111, 4127, 4128, 4129, 4159, 4160, 4161, 4191])
def test_sizes_around_the_float32_tiles(isa, n):
    # kMassUnroll = 4 vectors of 8 (AVX2) or 16 (AVX-512) float32 lanes: every
    # tail of 1 .. 63 lanes after 4096 + some whole tiles
    x = np.random.default_rng(n).normal(0, 1, n).astype(np.float32)
    for t, top_p in ((0.7, 0.95), (1.0, 0.5), (0.3, 0.99)):
        assert_same_floor(x, t, top_p)
    check_row(x, 0.7, 0.95, seeds=(n,))


@pytest.mark.parametrize("offset", [0.0, 1000.0, -1000.0, 2000.0, 2100.0, -2100.0, 3e4, -1e6, 1e30])
def test_large_logits_and_the_reduction_limit(isa, offset):
    """Rows far from 0: |max| s = |max| log2(e) / T on both sides of 2^12
    (the float32 reduction's limit, else the float64 estimate) and far
    beyond; the spacing of float32 values there is part of the row."""
    n = 20011
    g = np.random.default_rng(abs(int(offset)) % 1000 + 5)
    x = (np.float32(offset) + g.normal(0, 1, n).astype(np.float32)).astype(np.float32)
    for t in (0.7, 1.0, 4.0):
        for top_p in (0.5, 0.95):
            assert_same_floor(x, t, top_p)
    check_row(x, 0.7, 0.95, seeds=(1,))


def test_rows_with_huge_negative_values_and_masks(isa):
    """Values far below the max (clamped to xlo before the reduction, mass 0
    in the exact pass), -inf masks and -FLT_MAX, next to an ordinary bulk."""
    n = 30011
    g = np.random.default_rng(77)
    x = g.normal(0, 1, n).astype(np.float32)
    far = g.random(n)
    x[far < 0.1] = -3e38
    x[(far >= 0.1) & (far < 0.2)] = -np.inf
    x[(far >= 0.2) & (far < 0.25)] = np.finfo(np.float32).min
    x[(far >= 0.25) & (far < 0.3)] = -60.0  # d between -46 and the clamp at T = 1
    for t in (0.7, 1.0, 1.3):
        for top_p in (0.3, 0.95, 0.99999):
            assert_same_floor(x, t, top_p)
        check_row(x, t, 0.95, seeds=(2,))


@pytest.mark.parametrize("t", [1e-30, 1e-6, 1e-3, 0.05, 30.0, 1e6, 1e19, 1e30])
def test_tiny_and_huge_temperatures(isa, t):
    # s = log2(e) / T from ~1e30 (float64 estimate) to ~1e-30 (below 2^-60:
    # float64 estimate), through the float32 reduction's range
    n = 20011
    x = np.random.default_rng(int(-math.log10(t)) + 40).normal(0, 2, n).astype(np.float32)
    for top_p in (0.05, 0.5, 0.95, 0.999999):
        assert_same_floor(x, t, top_p)
    check_row(x, t, 0.95, seeds=(3,))


def test_float16_and_float64_rows(isa):
    """float16 rows run the float32 estimate (as float32 rows), float64 rows
    the float64-lane one: both give the exact passes' threshold and the
    sorted reference's draws, at the float32 bound's edges too."""
    g = np.random.default_rng(16)
    for dtype in (np.float16, np.float64):
        x = g.normal(0, 2, 30011).astype(dtype)
        for p, delta in boundary_top_ps(x, 0.7, quantiles=(0.9, 0.95)):
            for d in (0.0, 3e-8, -3e-8, 3e-7, -3e-7):
                assert_same_floor(x, 0.7, p * (1 + d))
        check_row(x, 0.7, 0.9, seeds=(4,))


def test_chunked_rows_and_threads(isa, restore_settings):
    # chunks of uneven lengths (each its own tail and float64 rounding bound),
    # on 2 threads: the same draws as one chunk
    x = np.random.default_rng(12).normal(0, 1, 151_936).astype(np.float32)
    ssm.set_num_threads(1)
    want = [int(ssm.sample(x, temperature=0.7, top_p=0.95, rng=s)) for s in range(3)]
    _core.testing.set_chunking(10007, 20000)
    _core.testing.set_parallel_min(0)
    ssm.set_num_threads(2)
    got = [int(ssm.sample(x, temperature=0.7, top_p=0.95, rng=s)) for s in range(3)]
    assert got == want
    assert_same_floor(x, 0.7, 0.95)


def test_how_often_llm_rows_need_more_than_the_float32_estimate(isa):
    """Ordinary rows (151,936 N(0, s^2) float32 logits, T = 0.7, top_p = 0.95):
    every row decided by an estimate, the float32 one left undecided on few
    (about 2% at s = 1 by the gap distribution; 0 at s = 3)."""
    rows = 0
    before = counts()
    for sigma in (1.0, 3.0):
        for seed in range(12):
            x = np.random.default_rng(1000 + seed).normal(0, sigma, 151_936).astype(np.float32)
            assert_same_floor(x, 0.7, 0.95)
            rows += 1
    decided, undecided = counts() - before
    assert decided == rows, (decided, rows)
    assert undecided <= 3, (undecided, rows)
