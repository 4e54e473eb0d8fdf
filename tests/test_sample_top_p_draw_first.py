"""top-p's draw first: without top-k, sample() draws the unfiltered
Gumbel-max winner first and returns it when the filters keep it (the tokens
above it weigh < top_p of the row, decided by the estimate pass's bound, and
min-p's threshold lies below it); otherwise, or when the bound cannot tell,
the threshold search and the masked draw run as before. The tokens must be
the threshold search's ones to the bit for every seed: checked with the step
on and off over many seeds, on rows where the winner sits at the top-p
boundary (cumulative mass 0 .. 1e-6 relative from top_p, on either side) and
in a tie group holding the boundary, with min-p, raw log-probabilities and
per-row parameters, and against the sorted float64 reference where that is
unambiguous; on every kernel set."""

import math

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core
from test_sample_top_p import check_row, masked, ref_top_p


def counts():
    return np.array(_core.sample_top_p_draw_first_counts())


def both_ways(x, **kw):
    """sample(x, **kw) with the draw first on and off: (on, off)."""
    on = ssm.sample(x, **kw)
    previous = _core.sample_top_p_draw_first(False)
    try:
        off = ssm.sample(x, **kw)
    finally:
        _core.sample_top_p_draw_first(previous)
    return on, off


def assert_same(x, **kw):
    on, off = both_ways(x, **kw)
    if isinstance(on, tuple):
        np.testing.assert_array_equal(on[0], off[0])
        np.testing.assert_array_equal(on[1], off[1])
    else:
        np.testing.assert_array_equal(on, off)
    return on


@pytest.fixture
def row_by_row():
    """Short rows (n <= 256) row by row: a batch of them otherwise takes the
    short-row path (each row's floor, then one masked draw for the block),
    which never draws first."""
    _core.testing.set_gumbel_short_rows_max(0)
    yield
    _core.testing.set_gumbel_short_rows_max(1 << 30)


@pytest.mark.parametrize("n", [17, 4096, 4097, 20011, 151_936])
def test_same_tokens_as_the_threshold_search(isa, dtype, n, row_by_row):
    g = np.random.default_rng(n)
    before = counts()
    seeds = range(40) if n > 20011 else range(100)
    for sigma in (1.0, 3.0):
        x = g.normal(0, sigma, n).astype(dtype)
        for top_p in (0.5, 0.95):
            for seed in seeds:
                assert_same(x, temperature=0.7, top_p=top_p, rng=seed)
        for seed in range(10):
            assert_same(x, temperature=0.7, top_p=0.9, min_p=0.05, rng=seed)
            assert_same(x, temperature=0.7, top_p=0.95, rng=seed, logprobs="raw")
    kept, dropped, _ = counts() - before
    # both outcomes: the winner kept (most calls) and filtered out
    assert kept > 0 and dropped > 0, (kept, dropped)


def test_rows_far_wider_than_the_coarse_range(isa, dtype, row_by_row):
    """Values spread over hundreds of binary orders at the temperature (the
    coarse pass's masses span 126): its reference, the unfiltered winner,
    lies within 50 orders of the max by the noise's bounds, so the pass
    keeps no running max; with min-p (which needs the max) it does. Masked
    and hugely negative entries too. The tokens are the threshold search's,
    and against the sorted reference."""
    g = np.random.default_rng(31)
    for n in (300, 20011):
        x = g.normal(0, 1, n).astype(dtype)
        x[::5] = -np.inf
        x[1::97] = -1e30
        for t in (0.02, 0.1):
            for top_p in (0.5, 0.95):
                kept_set = ref_top_p(x, t, top_p)
                for seed in range(12):
                    got = assert_same(x, temperature=t, top_p=top_p, rng=seed)
                    assert got == ssm.gumbel_argmax(masked(x, kept_set), temperature=t, rng=seed)
            for seed in range(4):
                assert_same(x, temperature=t, top_p=0.95, min_p=0.01, rng=seed)
                assert_same(x, temperature=t, top_p=0.95, rng=seed, logprobs="raw")


def test_filtered_out_winners_fall_back(isa, dtype):
    """top_p small: the winner is almost always above the kept set's few
    tokens, and the threshold search decides; the reference agrees."""
    g = np.random.default_rng(11)
    x = g.normal(0, 1, 30_000).astype(dtype)
    before = counts()
    kept_set = ref_top_p(x, 0.7, 0.01)
    for seed in range(30):
        got = assert_same(x, temperature=0.7, top_p=0.01, rng=seed)
        assert got == ssm.gumbel_argmax(masked(x, kept_set), temperature=0.7, rng=seed)
    assert counts()[1] - before[1] >= 20


def test_dropped_winners_against_the_reference(isa, dtype):
    """A winner filtered out lies below the threshold, so the search's zone
    starts at its value: the tokens of such calls (and of the kept ones)
    against the sorted reference, on rows longer than the collect-all size,
    at a low top_p (many winners dropped) and at 0.95."""
    g = np.random.default_rng(21)
    dropped = 0
    for n, sigma in ((20011, 3.0), (151_936, 1.0)):
        x = g.normal(0, sigma, n).astype(dtype)
        for top_p in (0.6, 0.95):
            kept_set = ref_top_p(x, 0.7, top_p)
            for seed in range(24):
                before = counts()
                got = ssm.sample(x, temperature=0.7, top_p=top_p, rng=seed)
                dropped += (counts() - before)[1]
                assert got == ssm.gumbel_argmax(masked(x, kept_set), temperature=0.7, rng=seed), (n, top_p, seed)
    assert dropped >= 8, dropped


def winner_top_ps(x, temperature, seed, deltas):
    """top_p values that put the cumulative mass of the tokens strictly
    above the unfiltered winner's value at top_p (relative offsets delta),
    and just past the winner's own group (its ties)."""
    w = int(ssm.gumbel_argmax(x, temperature=temperature, rng=seed))
    xf = np.asarray(x, np.float64)
    fin = xf[xf > -np.inf]
    m = fin.max()
    mass = np.exp((fin - m) / temperature)
    total = math.fsum(mass)
    above = math.fsum(mass[fin > xf[w]]) / total
    through = math.fsum(mass[fin >= xf[w]]) / total
    out = []
    for base in (above, through):
        for d in deltas:
            p = base * (1 + d)
            if 0 < p < 1:
                out.append((p, abs(d)))
    return out


DELTAS = (0.0, 1e-15, -1e-15, 1e-12, -1e-12, 1e-9, -1e-9, 1e-7, -1e-7, 1e-6, -1e-6)


@pytest.mark.parametrize("n", [4097, 20011])
def test_winner_at_the_boundary(isa, dtype, n):
    g = np.random.default_rng(n + 5)
    before = counts()
    for sigma, t in ((1.0, 0.7), (3.0, 0.7)):
        x = g.normal(0, sigma, n).astype(dtype)
        for seed in range(6):
            for top_p, delta in winner_top_ps(x, t, seed, DELTAS):
                assert_same(x, temperature=t, top_p=top_p, rng=seed)
                if delta >= 1e-9:  # the reference's sums decide these too
                    check_row(x, t, top_p, seeds=(seed,))
    kept, dropped, undecided = counts() - before
    # the closest ones are left open by the bound and decided by the search
    assert kept > 0 and dropped > 0 and undecided > 0, (kept, dropped, undecided)


@pytest.mark.parametrize("n", [33, 5000, 30_000])
def test_winner_in_a_tie_group_at_the_boundary(isa, dtype, n):
    g = np.random.default_rng(n)
    x = (np.round(g.normal(0, 1, n) * 4) / 4).astype(dtype)  # few distinct values
    for t in (0.7, 1.0):
        for seed in range(4):
            for top_p, delta in winner_top_ps(x, t, seed, (0.0, 1e-12, -1e-12, 1e-6, -1e-6)):
                assert_same(x, temperature=t, top_p=top_p, rng=seed)
                if delta >= 1e-6:
                    check_row(x, t, top_p, seeds=(seed,))


def test_winner_against_min_p(isa, dtype):
    """min-p's threshold at the winner's value: the winner kept or not by
    min-p alone, top-p loose."""
    g = np.random.default_rng(8)
    x = g.normal(0, 1, 20_000).astype(dtype)
    xf = np.asarray(x, np.float64)
    for seed in range(8):
        w = int(ssm.gumbel_argmax(x, temperature=0.7, rng=seed))
        ratio = math.exp((xf[w] - xf.max()) / 0.7)
        for min_p in (ratio, ratio * (1 - 1e-9), ratio * (1 + 1e-9), ratio * 0.5, min(1.0, ratio * 2)):
            assert_same(x, temperature=0.7, top_p=0.999, min_p=min_p, rng=seed)


def test_per_row_parameters_in_a_batch(isa, dtype):
    g = np.random.default_rng(21)
    x = g.normal(0, 2, (12, 9000)).astype(dtype)
    top_p = np.array([0.01, 0.5, 0.9, 0.95, 0.99, 1.0] * 2)
    min_p = np.array([0.0] * 6 + [0.05] * 6)
    temperature = np.array([0.7, 1.0, 1.3] * 4)
    for seed in range(5):
        assert_same(x, temperature=temperature, top_p=top_p, min_p=min_p, rng=seed)
        assert_same(x, temperature=temperature, top_p=top_p, rng=[seed + r for r in range(12)])
        assert_same(x, temperature=0.7, top_p=0.95, rng=seed, logprobs="raw")


F_WORST = 1 / math.log(2) - 1  # where 1 + f is furthest above 2^f (6.1%)


def lopsided_row(temperature, groups, rng):
    """A float32 row of groups (y, count), y in log2 units from v = 0.25
    (x = v + y T / log2(e)), shuffled."""
    s = math.log2(math.e) / temperature
    v = np.float32(0.25)
    x = np.concatenate([np.full(count, v + y / s) for y, count in groups]).astype(np.float32)
    return x[rng.permutation(x.size)]


# The draw-first test's coarse pass (float32 rows) estimates a token's mass
# relative to the winner's value v; its exp is furthest off (6.1% high) at
# y = n + F_WORST and exact at whole y. harmful: 1251 tokens at y = 1, 1000
# at v, 2205 at y = -1 + F_WORST: the tokens above v weigh 0.50035 of the
# row, estimated 0.4913, so a winner at v (20% of draws) is dropped by
# top_p = 0.5 and the bound must leave it open (one below 0.0174 of the
# estimate would keep it). Not harmful: 1470 at y = F_WORST, 1000 at v, 2000
# at y = -1: above v 0.49977, estimated 0.5147; the winner is kept, and a
# too tight bound would only cost time.
LOPSIDED = {
    True: ([(1.0, 1251), (0.0, 1000), (-1 + F_WORST, 2205)], 0.5),
    False: ([(F_WORST, 1470), (0.0, 1000), (-1.0, 2000)], 0.5),
}


@pytest.mark.parametrize("harmful", [True, False])
def test_coarse_bound_on_lopsided_rows(isa, harmful):
    g = np.random.default_rng(17)
    groups, top_p = LOPSIDED[harmful]
    for t in (0.7, 1.0):
        x = lopsided_row(t, groups, g)
        kept_set = ref_top_p(x, t, top_p)
        at_v = np.flatnonzero(x == np.float32(0.25))
        assert kept_set[at_v].all() != harmful  # a winner at v: dropped (harmful) or kept
        drawn_at_v = 0
        for seed in range(40):
            got = assert_same(x, temperature=t, top_p=top_p, rng=seed)
            assert got == ssm.gumbel_argmax(masked(x, kept_set), temperature=t, rng=seed)
            drawn_at_v += int(ssm.gumbel_argmax(x, temperature=t, rng=seed) in at_v)
        assert drawn_at_v > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_rows_as_alone(isa, threads):
    """In a batch, each row's coarse pass prefetches the start of the next
    row (a hint for its draw, on every kernel set but avx512): every row's
    token is the one it gets alone, with the draw first on and off, at 1
    and 2 threads (rows split among them, so a row may prefetch another
    thread's), for rows whose winner is kept and dropped, top_p small and
    near 1, ties and -inf entries, and rows shorter and longer than the
    prefetched length (65,536 float32)."""
    hooks = getattr(_core, "testing", None)
    set_min = hooks.set_parallel_min if hooks else _core._set_parallel_min
    before_min = _core.runtime_settings()["parallel_min"]
    before_threads = ssm.get_num_threads()
    g = np.random.default_rng(31)
    try:
        set_min(0)
        ssm.set_num_threads(threads)
        for rows, n in ((7, 20011), (3, 70001)):
            x = g.normal(0, 1, (rows, n)).astype(np.float32)
            x[1, ::5] = -np.inf
            x[2, : n // 2] = np.round(x[2, : n // 2] * 2) / 2  # ties
            before = counts()
            for top_p in (0.05, 0.9, 0.95, 0.999999):
                for seed in range(6):
                    keys = [seed * 100 + r for r in range(rows)]
                    batch = assert_same(x, temperature=0.7, top_p=top_p, rng=keys)
                    alone = [int(ssm.sample(x[r], temperature=0.7, top_p=top_p, rng=keys[r])) for r in range(rows)]
                    np.testing.assert_array_equal(batch, alone)
            kept, dropped, _ = counts() - before
            assert kept > 0 and dropped > 0, (kept, dropped)
    finally:
        set_min(before_min)
        ssm.set_num_threads(before_threads)


def next_best_counts():
    return np.array(_core.sample_top_p_next_best_counts())


@pytest.mark.parametrize("chunked", [False, True])
def test_next_best_after_a_dropped_winner(isa, dtype, chunked, small_chunks):
    """A dropped winner: the draw's next best scores are tried in order (as
    many as sample_driver.cpp's kNextBest - 1), the first the filters keep is
    the token; all dropped, or one too close to the boundary for the bounds,
    and the threshold search runs. top_p from 0.02 (most candidates dropped:
    the search) to 0.95, with min-p (a winner min-p alone drops), raw
    log-probabilities, -inf entries and ties; against the step off, against
    the sorted reference and against gumbel_argmax of the masked row; rows
    in one chunk and in chunks of 37 (the chunks' best merged), 1 and 2
    threads."""
    if not chunked:
        _core.testing.set_chunking(1 << 16, 1 << 18)
    g = np.random.default_rng(41)
    before = next_best_counts()
    dropped_winners = 0
    for n, sigma in ((5003, 1.0), (20011, 3.0)):
        x = g.normal(0, sigma, n).astype(dtype)
        x[3::7] = -np.inf
        x[: n // 4] = np.round(x[: n // 4] * 4) / 4  # ties
        for threads in (1, 2):
            small_chunks(threads)
            for t, top_p in ((0.7, 0.02), (0.7, 0.3), (1.0, 0.6), (0.7, 0.95)):
                kept_set = ref_top_p(x, t, top_p)
                for seed in range(16 if threads == 1 else 4):
                    c0 = counts()
                    got = assert_same(x, temperature=t, top_p=top_p, rng=seed)
                    dropped_winners += (counts() - c0)[1]
                    assert kept_set[got]
                    assert got == ssm.gumbel_argmax(masked(x, kept_set), temperature=t, rng=seed), (n, top_p, seed)
            for seed in range(6):
                assert_same(x, temperature=0.7, top_p=0.6, min_p=0.1, rng=seed)
                assert_same(x, temperature=0.7, top_p=0.999, min_p=0.3, rng=seed)
                assert_same(x, temperature=0.7, top_p=0.5, rng=seed, logprobs="raw")
    kept, dropped, _ = next_best_counts() - before
    assert dropped_winners > 0 and kept > 0 and dropped > 0, (dropped_winners, kept, dropped)
