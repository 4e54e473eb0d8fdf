"""top-p without top-k: the threshold found by the exact mass pass, its zone
and the bisection that narrows a zone the row's sample mispredicts, against
an independent float64 reference (masses np.exp, sums math.fsum, the kept set
by sorting). Every row is checked through the exact property
sample == gumbel_argmax(logits with the dropped tokens at -inf) for the same
rng, and, for float64 rows, through the processed log-probability, whose
normalizer is the kept set's mass. Also: bit-identity across kernel sets,
thread counts and chunkings on rows that take each path."""

import math

import numpy as np
import pytest

import simdsoftmax as ssm
from simdsoftmax import _core


def ref_top_p(x, temperature, top_p):
    """The kept set of one row: token i kept iff the mass of the tokens with a
    strictly larger logit is < top_p of the whole (every tie kept)."""
    x = np.asarray(x, np.float64)
    where = np.flatnonzero(x > -np.inf)
    xf = x[where]
    order = np.argsort(-xf, kind="stable")
    xs = xf[order]
    ws = np.exp((xs - xs[0]) / temperature)
    total = math.fsum(ws)
    start = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])  # first element of each distinct value
    group_of = np.cumsum(np.r_[True, xs[1:] != xs[:-1]]) - 1
    above = np.r_[0.0, np.cumsum(np.add.reduceat(ws, start))[:-1]]
    keep_group = above < top_p * total
    # the cumulative sums only locate the boundary: decide the groups next to
    # it with exact (fsum) sums
    k = np.flatnonzero(keep_group).max()
    for g in (k, k + 1):
        if g < start.size:
            keep_group[g] = math.fsum(ws[: start[g]]) < top_p * total
    kept = np.zeros(x.size, bool)
    kept[where[order]] = keep_group[group_of]
    return kept


def masked(x, kept):
    return np.where(kept, x, np.array(-np.inf, x.dtype)).astype(x.dtype)


def check_row(x, temperature, top_p, seeds=(0, 1, 2)):
    kept = ref_top_p(x, temperature, top_p)
    for seed in seeds:
        got = ssm.sample(x, temperature=temperature, top_p=top_p, rng=seed)
        want = ssm.gumbel_argmax(masked(x, kept), temperature=temperature, rng=seed)
        assert got == want, (x.size, temperature, top_p, seed)
        assert kept[got]
    if x.dtype == np.float64:
        tok, lp = ssm.sample(x, temperature=temperature, top_p=top_p, rng=seeds[0], logprobs="processed")
        z = x[kept] / temperature
        lq = x[tok] / temperature - (z.max() + math.log(math.fsum(np.exp(z - z.max()))))
        np.testing.assert_allclose(lp, lq, rtol=1e-9, atol=1e-12)
    return kept


# Rows of at most 4096 values are collected whole; longer ones go through the
# sample's zone. Sizes around both, and every vector tail (1..16 lanes).
SHORT = list(range(1, 18)) + [31, 32, 33, 63, 64, 65]
LONG = [4095, 4096, 4097, 4103, 5000, 8193, 20011]


@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.95, 0.999])
def test_threshold_against_reference_at_every_tail(isa, dtype, top_p):
    g = np.random.default_rng(5)
    for n in SHORT + LONG:
        for sigma, t in ((1.0, 0.7), (3.0, 1.0)):
            check_row(g.normal(0, sigma, n).astype(dtype), t, top_p, seeds=(n,))


def test_ties_at_the_boundary(isa, dtype):
    for n in (17, 5000, 30000):
        # one top token, a big group of equal values holding the boundary, the rest low
        x = np.full(n, -4.0)
        x[: n // 2] = 1.0
        x[7] = 1.5
        kept = check_row(x.astype(dtype), 1.0, 0.5)
        assert kept[: n // 2].all() and not kept[n // 2 :].any()
        # the boundary exactly at a group's end: that group kept, the next not
        x = np.zeros(n)
        x[: n // 4] = 1.0
        for top_p in (0.2, 0.5, 0.9):
            check_row(x.astype(dtype), 1.0, top_p)
        # rounded normals: few distinct values, many ties everywhere
        x = np.round(np.random.default_rng(n).normal(0, 1.5, n))
        for top_p in (0.3, 0.9, 0.95):
            check_row(x.astype(dtype), 0.7, top_p)


def test_edge_rows(isa, dtype):
    for n in (9, 4097, 20000):
        g = np.random.default_rng(n)
        # all the mass in one element
        x = g.normal(0, 1, n)
        x[n // 3] = 200.0
        kept = check_row(x.astype(dtype), 1.0, 0.95)
        assert kept.sum() == 1
        # every logit equal: nothing is strictly above anything, all kept
        kept = check_row(np.zeros(n, dtype), 1.0, 0.1)
        assert kept.all()
        # -inf entries (most of the row)
        x = g.normal(0, 1, n)
        x[g.random(n) < 0.7] = -np.inf
        x[0] = 0.5
        check_row(x.astype(dtype), 0.7, 0.9)
        # huge spread: masses from 1 down to far below the 2^-64 resolution
        x = g.normal(0, 1, n) * np.where(g.random(n) < 0.5, 1e4, 1.0)
        check_row(x.astype(dtype), 1.0, 0.95)
        check_row(x.astype(dtype), 1e-3, 0.5)
        check_row(x.astype(dtype), 1e3, 0.9)
        # tiny temperature: only the max group survives
        x = g.normal(0, 1, n)
        kept = check_row(x.astype(dtype), 1e-30, 0.99)
        assert kept.sum() == 1


def sample_positions(n, kSample=2048, run=32):
    runs = kSample // run
    return np.concatenate([np.arange(s, s + run) for s in (n - run) * np.arange(runs) // (runs - 1)])


def mispredicted_rows(n, dtype):
    """Rows whose sample says little about the threshold: the values the
    sample sees are far below (or far above) the rest, so the predicted zone
    misses and the bisection has to find the threshold."""
    g = np.random.default_rng(n)
    low = g.normal(0, 1, n)
    low[sample_positions(n)] = -20.0
    high = g.normal(0, 1, n)
    high[sample_positions(n)] = 4.0 + g.random(sample_positions(n).size)
    # more values in the true zone than the collect buffer holds (ties)
    ties = np.where(g.random(n) < 0.5, 0.0, -0.25)
    ties[sample_positions(n)] = -8.0
    return [low.astype(dtype), high.astype(dtype), ties.astype(dtype)]


def test_zone_misses_are_narrowed_exactly(isa, dtype):
    for n in (5000, 60000):
        for x in mispredicted_rows(n, dtype):
            for top_p in (0.5, 0.95):
                check_row(x, 0.7, top_p, seeds=(3,))


def test_rows_longer_than_the_collect_buffer(isa):
    # a zone of more than 8192 values: bisection before the finish
    x = np.random.default_rng(4).normal(0, 1, 600_000).astype(np.float32)
    check_row(x, 0.7, 0.95, seeds=(1,))


@pytest.fixture
def settings_back():
    before = _core.runtime_settings()
    threads = ssm.get_num_threads()
    yield
    _core.testing.set_chunking(before["chunk_elements"], before["chunked_row"])
    _core.testing.set_parallel_min(before["parallel_min"])
    ssm.set_num_threads(threads)


def test_identical_across_isas_threads_and_chunkings(settings_back):
    g = np.random.default_rng(9)
    rows = [g.normal(0, 1, 30000).astype(np.float32), g.normal(0, 3, 20011), np.zeros(9000, np.float32)]
    rows += mispredicted_rows(30000, np.float32) + mispredicted_rows(20011, np.float64)
    for x in rows:
        for params in (dict(temperature=0.7, top_p=0.95), dict(top_p=0.5), dict(top_p=0.9, min_p=0.01)):
            results = []
            for isa in ssm.available_isas():
                with ssm.use_isa(isa):
                    for chunking, threads in [((1 << 16, 1 << 24), 1), ((1000, 2000), 1), ((997, 100), 2),
                                              ((4096, 4096), 3), ((13, 64), 2)]:
                        _core.testing.set_chunking(*chunking)
                        _core.testing.set_parallel_min(0)
                        ssm.set_num_threads(threads)
                        tok, lp = ssm.sample(x, rng=5, logprobs="processed", **params)
                        results.append((isa, chunking, threads, int(tok), float(lp)))
            for isa, chunking, threads, tok, lp in results[1:]:
                # the token and the kept mass (through the log-probability) bit for bit
                assert (tok, lp) == results[0][3:], (isa, chunking, threads)
